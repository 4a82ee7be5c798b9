#!/usr/bin/perl

# Forged identity headers never reach an upstream through error_page
# (issue 9, item 1).  nginx answers some requests itself before any phase
# runs: 400 (no Host, two Hosts, Content-Length with Transfer-Encoding, a
# bad Content-Length), 405 (TRACE), 414 (URI too long), 494 (header too
# large), and 495/496 from its own ssl_verify_client.  With an error_page
# for them, the request enters the phases by an internal redirect (to a
# URI) or a named location, after the post-read phase that strips client
# headers.  Every combination: to a named location and to a URI, with
# device_auth on and off there, with and without a device, HTTP/1.1 and
# HTTP/2.  The upstream must see no client X-Device-* header, and where
# device_auth is on, exactly the identity the module computed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_headers upstream_values);

my $t = DeviceAuth::Test->new();

# one server per error_page target; the targets exist in every server
my %target = (
    'named, on'  => '@on',
    'named, off' => '@off',
    'URI, on'    => '/on/',
    'URI, off'   => '/off/',
);
my @targets = sort keys %target;

my $servers = '';
my $i = 0;

for my $name (@targets) {
    $servers .= <<"EOF";
    server {
        listen 127.0.0.1:%%PORT_$i%% ssl http2;
        server_name localhost;

        error_page 400 405 414 494 = $target{$name};

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location \@on {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location \@off {
            proxy_pass http://%%ECHO%%;
        }

        location /on/ {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /off/ {
            proxy_pass http://%%ECHO%%;
        }
    }

EOF
    $i++;
}

$t->write_conf(<<"EOF");
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;

    client_header_buffer_size 1k;
    large_client_header_buffers 2 1k;

$servers
    # nginx's own client certificate check, and no device_auth: its 495
    # and 496 go to a location that proxies
    server {
        listen 127.0.0.1:%%PORT_9%% ssl;
        server_name localhost;

        ssl_verify_client on;
        ssl_client_certificate %%PKI%%/roots.pem;
        ssl_verify_depth 2;

        error_page 495 496 = \@off;

        location / {
            proxy_pass http://%%ECHO%%;
        }

        location \@off {
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

my $serial = $t->serial('dev1');
my @forged = (['X-Device-Serial', '0123F0F0F0F0F0F0F0'],
              ['X-Device-Status', 'ok'],
              ['x-device-signer', 'forged'],
              ['X-DEVICE-FINGERPRINT', 'forged']);

# the requests nginx answers itself, as https_get() arguments
my %early = (
    'no Host'       => [400, host => undef],
    'two Hosts'     => [400, headers => [['Host', 'localhost']]],
    'CL and TE'     => [400, headers => [['Content-Length', '0'],
                                        ['Transfer-Encoding', 'chunked']]],
    'bad CL'        => [400, headers => [['Content-Length', 'abc']]],
    'TRACE'         => [405, method => 'TRACE'],
    'long URI'      => [414, path => '/' . ('u' x 1200)],
    'long header'   => [494, headers => [['X-Long', 'l' x 1200]]],
);

# what reached the upstream: ok when no forged value arrived and the
# identity is exactly the module's (or none)
sub check {
    my ($name, $r, $on, $dev) = @_;

    my @id = grep { $_->[0] =~ /^x[-_]device[-_]/i } upstream_headers($r);

    if (!$r->{headers}{'x-echo'}) {
        # device_auth on and no device: refused before any upstream; a URI
        # too long cannot be proxied (nginx never parsed it, nor any header)
        ok(($on && !$dev) || $name =~ /long URI/, "$name: upstream not reached")
            or diag("status $r->{status}");
        return;
    }

    ok(!grep({ ($_->[1] // '') =~ /F0F0F0|forged/ } @id),
       "$name: no forged header at the upstream")
        or diag(explain \@id);

    if ($on && $dev) {
        is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
                  "$name: exactly the device's serial");
        is(scalar(@id), 4, "$name: the 4 identity headers, once");
    } else {
        is(scalar(@id), 0, "$name: no identity header");
    }
}

for my $ti (0 .. $#targets) {
    my $target = $targets[$ti];
    my $on = $target =~ /, on$/;

    for my $case (sort keys %early) {
        my ($status, %args) = @{ $early{$case} };

        for my $dev ('dev1', undef) {
            my $name = "HTTP/1.1 $case, $target, "
                       . ($dev ? 'device' : 'no certificate');

            my @headers = (@forged, @{ $args{headers} || [] });
            my %a = (%args, headers => \@headers);

            # a long header comes last: the forged ones are parsed first
            my $r = $t->https_get(port => $t->port($ti),
                                  $dev ? (device => $dev) : (), %a);

            ok(!$r->{error} || $r->{status}, "$name: answered")
                or diag($r->{error});
            check($name, $r, $on, $dev);
        }
    }
}

# HTTP/2 (curl): the early errors it can carry
my %early_h2 = (
    'TRACE'  => ['-X', 'TRACE'],
    'bad CL' => ['-H', 'Content-Length: abc'],
);

for my $ti (0 .. $#targets) {
    my $target = $targets[$ti];
    my $on = $target =~ /, on$/;
    my $port = $t->port($ti);

    for my $case (sort keys %early_h2) {
        for my $dev ('dev1', undef) {
            my $name = "HTTP/2 $case, $target, "
                       . ($dev ? 'device' : 'no certificate');
            my $hdr = $t->testdir . '/h2.head';
            my $body = $t->testdir . '/h2.body';
            unlink $hdr, $body;

            my ($rc, $out, $err) = $t->curl(
                '--http2', '-k', '--resolve', "localhost:$port:127.0.0.1",
                '-D', $hdr, '-o', $body, '-w', '%{http_version}',
                $dev ? ('--cert', $t->pki_file("$dev.chain.pem"),
                        '--key', $t->pki_file("$dev.key")) : (),
                (map { ('-H', "$_->[0]: $_->[1]") } @forged),
                @{ $early_h2{$case} },
                "https://localhost:$port/");

            is($out, '2', "$name: over HTTP/2") or diag("curl: $err");

            # the response in the shape https_get() returns
            my $head = $t->read_file($hdr);
            my %h = map { /^([^:]+):\s*(.*?)\r?$/ ? (lc $1 => $2) : () }
                    split /\n/, $head;
            my ($st) = $head =~ m{^HTTP/\S+ (\d+)};
            check($name, { status => $st, headers => \%h,
                           body => $t->read_file($body) }, $on, $dev);
        }
    }
}

# nginx's own 495 and 496 (ssl_verify_client) to a proxying named location
for my $dev ('dev_rogue', undef) {
    my $name = "nginx's " . ($dev ? '495' : '496');
    my $r = $t->https_get(port => $t->port(9), headers => \@forged,
                          $dev ? (device => $dev) : ());

    is($r->{status}, 200, "$name: answered by the error_page location");
    check($name, $r, 0, undef);
}

$t->check_error_log();

done_testing();
