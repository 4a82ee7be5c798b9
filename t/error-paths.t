#!/usr/bin/perl

# Every exit of the decision leaves the request decided (issue 9, item 6).
# An internal failure of the module (out of memory, which no input can
# cause: DEVICE_AUTH_FAULT=<point> in nginx's environment makes that point
# fail) answers 500 with a logged reason.  It used to return 500 with the
# request undecided: with server-level "device_auth on" and the usual
# "error_page 500 /50x.html", the redirected request then waited for a
# lookup that did not exist, until the worker exited.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

$t->write_file('html/50x.html', "sorry\n") if mkdir $t->testdir . '/html';

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        device_auth on;
        error_page 500 502 503 504 /50x.html;

        location / {
            proxy_pass http://%%ECHO%%;
        }

        location = /50x.html {
            root %%TESTDIR%%/html;
        }
    }
}
EOF

$t->redis_start();

# point => [path, the reason logged]
my %fault = (
    identity     => ['/', 'cannot keep the device identity of the connection'],
    location     => ['/', 'cannot evaluate device_auth_location'],
    cache_entry  => ['/', 'out of memory for the device state'],
    op           => ['/', 'out of memory for a lookup'],
);

for my $point (sort keys %fault) {
    my ($path, $why) = @{ $fault{$point} };

    local $ENV{DEVICE_AUTH_FAULT} = $point;
    $t->run();

    for my $n (1, 2) {
        my $mark = $t->log_mark();

        # a request that never ends fails here by the client's timeout
        my $r = $t->https_get(device => 'dev1', path => $path, timeout => 10);

        ok(!$r->{error}, "$point, request $n: answered")
            or diag($r->{error});
        is($r->{status}, 500, "$point, request $n: 500");
        ok(!$r->{headers}{'x-echo'}, "$point, request $n: upstream not "
           . 'reached');
        like($t->read_error_log($mark),
             qr/device rejected: code=500 status=error (?:serial="[0-9A-F]{18}" )?.*reason="\Q$why\E"/,
             "$point, request $n: logged with the reason");
    }

    $t->check_error_log();
}

# a failure while the TLS contexts are set up: nginx -t says where
{
    local $ENV{DEVICE_AUTH_FAULT} = 'ca_names';
    my ($ok, $out) = $t->test_config();
    ok(!$ok, 'TLS setup failure: nginx -t fails');
    like($out, qr/\[emerg\] "device_auth" in \S+nginx\.conf:\d+: cannot set up the verification of client certificates/,
         'TLS setup failure: nginx -t names the directive');
}

# and without a fault the same configuration lets the device through
$t->run();
my $r = $t->https_get(device => 'dev1', path => '/');
is($r->{status}, 200, 'no fault: 200');
$t->check_error_log();

done_testing();
