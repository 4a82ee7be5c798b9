#!/usr/bin/perl

# A location with device_auth on reached indirectly: internal redirects
# (rewrite, error_page, try_files) and subrequests (SSI include,
# auth_request, mirror) from a location where device_auth is off.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers);

my $t = DeviceAuth::Test->new();

mkdir $t->testdir . '/html';
$t->write_file('html/page.html',
               "before\n<!--# include virtual=\"/secure/ssi\" -->\nafter\n");

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        root %%TESTDIR%%/html;

        location /secure/ {
            device_auth on;
            proxy_set_header X-Secure 1;
            proxy_pass http://%%ECHO%%;
        }

        location /rewrite/ {
            rewrite ^ /secure/rewritten last;
        }

        location /errpage/ {
            error_page 404 = /secure/errpage;
            return 404;
        }

        location /tryfiles/ {
            try_files /nonexistent /secure/tryfiles;
        }

        location /ssi/ {
            ssi on;
            alias %%TESTDIR%%/html/;
        }

        # (not "return": it would answer before these phases run)

        location /auth/ {
            auth_request /secure/auth;
            proxy_pass http://%%ECHO%%;
        }

        location /mirror/ {
            mirror /secure/mirror;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

my $serial = $t->serial('dev1');

# internal redirects are checked

for my $p ('/rewrite/', '/errpage/', '/tryfiles/') {
    my $r = $t->https_get(path => $p);
    is($r->{status}, 400, "$p, no certificate: 400");
    ok(!$r->{headers}{'x-echo'}, "$p, no certificate: upstream not reached");

    $r = $t->https_get(path => $p, device => 'dev1');
    is($r->{status}, 200, "$p, device: 200");
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
              "$p, device: identity");
}

# subrequests: the device_auth location must not answer without a device

my $r = $t->https_get(path => '/ssi/page.html', device => 'dev1');
is($r->{status}, 200, 'SSI, device: 200');
like($r->{body}, qr/^X-Secure: 1$/m, 'SSI, device: included');

$r = $t->https_get(path => '/auth/', device => 'dev1');
is($r->{status}, 200, 'auth_request, device: 200');
ok(grep({ m{^GET /secure/auth } } $t->echo_requests()),
   'auth_request, device: the subrequest reached the upstream');

$r = $t->https_get(path => '/mirror/');
is($r->{status}, 200, 'mirror, no certificate: the main request answered');

# the mirror subrequest ends after the main request: give it time
select undef, undef, undef, 0.5;
my @mirrored = grep { m{^GET /secure/mirror } } $t->echo_requests();

{
    $r = $t->https_get(path => '/ssi/page.html', device => 'dev1');
    like($r->{body}, qr/^X-Device-Serial: \Q$serial\E$/m,
         'SSI include of a device_auth location, device: identity');

    $r = $t->https_get(path => '/ssi/page.html');
    unlike($r->{body}, qr/^X-Secure: 1$/m,
           'SSI include of a device_auth location, no certificate: '
           . 'protected upstream not reached');

    $r = $t->https_get(path => '/ssi/page.html', device => 'dev_p384');
    unlike($r->{body}, qr/^X-Secure: 1$/m,
           'SSI include of a device_auth location, invalid device: '
           . 'protected upstream not reached');

    $r = $t->https_get(path => '/auth/');
    isnt($r->{status}, 200,
         'auth_request to a device_auth location, no certificate: refused');

    $r = $t->https_get(path => '/auth/', device => 'dev_expired');
    isnt($r->{status}, 200,
         'auth_request to a device_auth location, invalid device: refused');

    is(scalar @mirrored, 0, 'mirror to a device_auth location, no '
       . 'certificate: protected upstream not reached');
}

$t->check_error_log();

done_testing();
