#!/usr/bin/perl

# Virtual servers on one "listen ... ssl" with SNI: device_auth on in one,
# off in another, other pins in a third; TLS server name and Host that
# differ (421 where the identity came from other pins).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers new_session_cache);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

    ssl_session_cache shared:SNI:1m;

    proxy_set_header X-Client-Cert $ssl_client_fingerprint;
    proxy_set_header X-Server a;

    # the default server
    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name a.example;
        device_auth on;

        location / {
            proxy_set_header X-Server a;
            proxy_pass http://%%ECHO%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name b.example;

        location / {
            proxy_set_header X-Server b;
            proxy_pass http://%%ECHO%%;
        }
    }

    # other pins: signers
    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name c.example;
        device_auth on;
        device_auth_signers %%PKI%%/signers.pem;

        location / {
            proxy_set_header X-Server c;
            proxy_pass http://%%ECHO%%;
        }
    }

    # the same pins as a.example
    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name d.example;

        location / {
            device_auth on;
            proxy_set_header X-Server d;
            proxy_pass http://%%ECHO%%;
        }
    }

    # the same roots as a.example, one more intermediate allowed
    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name f.example;
        device_auth on;
        device_auth_verify_depth 2;

        location / {
            proxy_set_header X-Server f;
            proxy_pass http://%%ECHO%%;
        }
    }

    # nginx's own client certificate verification, another company's CA
    server {
        listen 127.0.0.1:%%PORT_0%% ssl http2;
        server_name e.example;
        ssl_verify_client on;
        ssl_client_certificate %%PKI%%/root2.pem;

        location / {
            proxy_set_header X-Server e;
            proxy_set_header X-Verify $ssl_client_verify;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

sub get {
    my ($sni, $host, %args) = @_;
    my $mark = $t->log_mark();
    my $r = $t->https_get(sni => $sni, host => $host, %args);
    $r->{log} = $t->read_error_log($mark);
    return $r;
}

sub server_of {
    my ($r) = @_;
    return join ',', upstream_values($r, 'X-Server');
}

my $serial = $t->serial('dev1');
my $r;

# matching SNI and Host

for my $v ('TLSv1_2', 'TLSv1_3') {
    $r = get('a.example', 'a.example', device => 'dev1', ssl_version => $v);
    is($r->{status}, 200, "a: device, $v");
    is(server_of($r), 'a', "a: served by a, $v");
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
              "a: identity, $v");

    $r = get('a.example', 'a.example', ssl_version => $v);
    is($r->{status}, 400, "a: no certificate, $v");
    like($r->{log}, qr/device rejected: code=496/, "a: 496, $v");

    $r = get('b.example', 'b.example', ssl_version => $v);
    is($r->{status}, 200, "b: no certificate, $v");
    is(server_of($r), 'b', "b: served by b, $v");

    $r = get('b.example', 'b.example', device => 'dev1', ssl_version => $v);
    is($r->{status}, 200, "b: device, $v");
    is_deeply([upstream_values($r, 'X-Client-Cert')], [],
              "b: no client certificate asked for, $v");
    ok(!grep({ $_->[0] =~ /^x-device-/i } upstream_headers($r)),
       "b: no identity headers, $v");

    $r = get('c.example', 'c.example', device => 'dev1', leaf_only => 1,
             ssl_version => $v);
    is($r->{status}, 200, "c: leaf only, signers pinned, $v");
    is(server_of($r), 'c', "c: served by c, $v");
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
              "c: identity, $v");

    $r = get('c.example', 'c.example', device => 'dev_unpinned_signer',
             ssl_version => $v);
    is($r->{status}, 400, "c: unpinned signer, $v");
    like($r->{log}, qr/device rejected: code=495 [^\n]*signer not pinned/,
         "c: 495 signer not pinned, $v");

    $r = get('a.example', 'a.example', device => 'dev_unpinned_signer',
             ssl_version => $v);
    is($r->{status}, 200, "a: signer3 chains to the root, $v");
}

# no SNI, unknown SNI: the default server

$r = get(undef, 'a.example', device => 'dev1');
is($r->{status}, 200, 'no SNI: default server, device');
is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
          'no SNI: identity');

$r = get('unknown.example', 'unknown.example', device => 'dev1');
is($r->{status}, 200, 'unknown SNI and Host: default server');
is(server_of($r), 'a', 'unknown SNI and Host: served by a');

# TLS server name and Host differ

$r = get('a.example', 'c.example', device => 'dev1');
is($r->{status}, 421, 'SNI a, Host c (other pins): 421');
like($r->{log}, qr/device rejected: code=421 status=misdirected /,
     'SNI a, Host c: logged as misdirected');
ok(!$r->{headers}{'x-echo'}, 'SNI a, Host c: upstream not reached');

$r = get('c.example', 'a.example', device => 'dev1', leaf_only => 1);
is($r->{status}, 421, 'SNI c, Host a (other pins): 421');
like($r->{log}, qr/device rejected: code=421 status=misdirected /,
     'SNI c, Host a: logged as misdirected');

$r = get('a.example', 'd.example', device => 'dev1');
is($r->{status}, 200, 'SNI a, Host d (the same pins): 200');
is(server_of($r), 'd', 'SNI a, Host d: served by d');
is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
          'SNI a, Host d: identity');

$r = get('a.example', 'b.example', device => 'dev1',
         headers => [['X-Device-Serial', '0123FFFFFFFFFFFF01']]);
is($r->{status}, 200, 'SNI a, Host b (device_auth off): 200');
is(server_of($r), 'b', 'SNI a, Host b: served by b');
ok(!grep({ $_->[0] =~ /^x-device-/i } upstream_headers($r)),
   'SNI a, Host b: no identity, forged header removed');

$r = get('b.example', 'a.example', device => 'dev1');
is($r->{status}, 400, 'SNI b (no certificate asked), Host a: 400');
like($r->{log}, qr/device rejected: code=496/, 'SNI b, Host a: 496');

# a certificate nginx verified (ssl_verify_client in e), used in a
# device_auth server

$r = get('e.example', 'a.example', device => 'dev_rogue',
         cert => $t->pki_file('dev_rogue.fullchain.pem'));
is($r->{status}, 421, 'SNI e (nginx verification), Host a: 421');
ok(!$r->{headers}{'x-echo'}, 'SNI e, Host a: upstream not reached');
like($r->{log}, qr/device rejected: code=421 status=misdirected [^\n]*not verified by device_auth/,
     'SNI e, Host a: the certificate was not verified by device_auth');

$r = get('e.example', 'e.example', device => 'dev_rogue',
         cert => $t->pki_file('dev_rogue.fullchain.pem'));
is($r->{status}, 200, 'e: its own client certificate');
is_deeply([upstream_values($r, 'X-Verify')], ['SUCCESS'],
          'e: verified by nginx');

# the identity of a device_auth server does not count as nginx's
# verification in a server where ssl_verify_client applies (nginx's own
# check on the Host's server)

$r = get('a.example', 'e.example', device => 'dev1');
is($r->{status}, 421, 'SNI a, Host e (ssl_verify_client, other CA): 421')
    or diag(explain [upstream_headers($r)]);

# a session resumed under one server's pins, used with the Host of a
# server with stricter pins: misdirected, as after a full handshake

for my $v ('TLSv1_2', 'TLSv1_3') {
    my $cache = new_session_cache();
    my %a = (device => 'dev_deep', session_cache => $cache,
             ssl_version => $v);

    $r = get('f.example', 'f.example', %a);
    is($r->{status}, 200, "f (depth 2): deep device, $v");

    $r = get('f.example', 'f.example', %a);
    is($r->{reused}, 1, "f: resumed, $v");
    is_deeply([upstream_values($r, 'X-Device-Serial')],
              [$t->serial('dev_deep')], "f: resumed, identity, $v");

    $r = get('f.example', 'a.example', %a);
    is($r->{reused}, 1, "SNI f, Host a (depth 1), resumed: $v");
    is($r->{status}, 421, "SNI f, Host a, resumed: 421, $v");
    ok(!$r->{headers}{'x-echo'}, "SNI f, Host a, resumed: no upstream, $v");

    $r = get('a.example', 'a.example', device => 'dev_deep',
             ssl_version => $v);
    is($r->{status}, 400, "a: deep device, full handshake: refused, $v");
}

# HTTP/2: :authority of another server

my $port = $t->port(0);
my ($rc, $out, $err) = $t->curl('--http2', '-k',
    '--cert', $t->pki_file('dev1.chain.pem'), '--key', $t->pki_file('dev1.key'),
    '--resolve', "a.example:$port:127.0.0.1",
    '-H', 'Host: c.example', '-o', '/dev/null',
    '-w', '%{http_code} %{http_version}',
    "https://a.example:$port/", "https://a.example:$port/");
like($out, qr/^421 2/, 'HTTP/2, SNI a, :authority c: 421');

($rc, $out, $err) = $t->curl('--http2', '-k',
    '--cert', $t->pki_file('dev1.chain.pem'), '--key', $t->pki_file('dev1.key'),
    '--resolve', "a.example:$port:127.0.0.1",
    '-H', 'Host: d.example', '-w', '%{http_code} %{http_version}\n',
    "https://a.example:$port/");
like($out, qr/^X-Device-Serial: \Q$serial\E$/m,
     'HTTP/2, SNI a, :authority d (the same pins): identity');
like($out, qr/^200 2$/m, 'HTTP/2, SNI a, :authority d: 200');

$t->check_error_log();

done_testing();
