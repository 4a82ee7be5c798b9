#!/usr/bin/perl

# HTTP/3: device_auth in servers that listen with "quic", alone or beside
# "ssl" on the same port, driven by a real HTTP/3 client, gtlsclient
# (ngtcp2 + GnuTLS, Debian package ngtcp2-client), that presents the device
# certificate: a genuine device gets 200 with its identity at the upstream,
# on every stream of its connection and on a resumed session; a foreign or
# revoked device is refused; forged identity headers are stripped (sent
# through build/tools/h3headers.so, see t/tools/h3headers.c).
#
# Runs only against an nginx built with HTTP/3 (1.25.0 and later,
# --with-http_v3_module): make test-nginx NGINX_VERSION=1.29.8.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test qw(upstream_values upstream_headers);

my $t = DeviceAuth::Test->new();

plan(skip_all => 'nginx ' . $t->nginx_version . ' (' . $t->nginx_binary
                 . ') has no HTTP/3: built without --with-http_v3_module,'
                 . ' which exists from nginx 1.25.0 on;'
                 . ' make test-nginx NGINX_VERSION=1.29.8 runs this file')
    unless $t->nginx_has_http3;

my $GTLSCLIENT = $ENV{DEVICE_AUTH_GTLSCLIENT} || '/usr/bin/gtlsclient';
my $SHIM = $ENV{DEVICE_AUTH_H3HEADERS}
           || $t->repo . '/build/tools/h3headers.so';

plan(skip_all => "no HTTP/3 client: $GTLSCLIENT not found"
                 . ' (apt-get install ngtcp2-client; make deps does)')
    unless -x $GTLSCLIENT;
plan(skip_all => "$SHIM not built (make tools, needs libnghttp3-dev)")
    unless -f $SHIM;

$t->skip_under_valgrind('QUIC under memcheck is beyond the subset');

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    shared:SSL:1m;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    # HTTP/3 only
    server {
        listen 127.0.0.1:%%PORT_0%% quic;
        server_name localhost;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /vars {
            device_auth on;
            return 200 "status=$device_auth_status serial=$device_auth_serial http3=$http3 reused=$ssl_session_reused\n";
        }

        location /open/ {
            proxy_pass http://%%ECHO%%;
        }
    }

    # TCP and QUIC on one port, pinned signers
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        listen 127.0.0.1:%%PORT_1%% quic;
        server_name localhost;

        add_header Alt-Svc 'h3=":%%PORT_1%%"; ma=60';

        device_auth_signers %%PKI%%/signers.pem;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $P = 'device_auth:';
my $n = 0;

# gtlsclient to PORT, one connection, one stream per path; the device sends
# its chain (GnuTLS sends a certificate only when its chain reaches one of
# the CA names of the CertificateRequest: the pinned roots).  Returns a
# response per path: {status, headers (lower-case names), body}.
#   device => NAME, headers => "name: value\n...", session => FILE

sub h3 {
    my (%a) = @_;
    my $port = $a{port} || $t->port(0);
    my @paths = @{ $a{paths} || [$a{path} || '/'] };
    my $dir = $t->testdir . '/h3-' . ++$n;

    mkdir $dir or die "mkdir $dir: $!";

    my @cmd = ($GTLSCLIENT, '--exit-on-all-streams-close', '--no-quic-dump',
               "--download=$dir", '--sni=localhost', '--timeout=10s',
               '--handshake-timeout=10s');
    push @cmd, '--key', $t->pki_file("$a{device}.key"),
               '--cert', $t->pki_file("$a{device}.chain.pem")
        if $a{device};
    push @cmd, "--session-file=$a{session}" if $a{session};
    push @cmd, '127.0.0.1', $port, map { "https://localhost:$port$_" } @paths;

    my $out = run_client($dir, $a{headers}, @cmd);

    # "http: stream 0x4 [:status: 200]": streams 0, 4, 8... in path order
    my %streams;

    my $field = qr/^http: stream 0x([0-9a-f]+) \[([^:\]]*|:[a-z]+): (.*)\]$/m;

    while ($out =~ /$field/g) {
        my ($id, $name, $value) = (hex($1), lc $2, $3);

        if ($name eq ':status') {
            $streams{$id}{status} = $value;
        } else {
            $streams{$id}{headers}{$name} = $value;
        }
    }

    my @res;

    for my $i (0 .. $#paths) {
        my $r = $streams{4 * $i} || { error => "no response:\n$out" };
        (my $file = $paths[$i]) =~ s{^.*/}{};
        $r->{body} = -f "$dir/$file" ? $t->read_file("$dir/$file") : '';
        $r->{headers} ||= {};
        $r->{status} ||= 0;
        $r->{out} = $out;
        push @res, $r;
    }

    return wantarray ? @res : $res[0];
}

# runs the client with the header shim, its output (stdout and stderr);
# killed if still running after 60 s (a bound, not a measurement)

sub run_client {
    my ($dir, $headers, @cmd) = @_;
    my $log = "$dir/client.log";

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        $ENV{LD_PRELOAD} = $SHIM;
        $ENV{H3_EXTRA_HEADERS} = $headers || '';
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    my $end = time() + 60;

    while (waitpid($pid, WNOHANG) == 0) {
        if (time() > $end) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep(0.02);
    }

    return $t->read_file($log);
}

sub identity_ok {
    my ($r, $name, $dev, $signer) = @_;

    is($r->{headers}{'x-echo'}, 1, "$name: upstream reached")
        or diag($r->{error} || $r->{out});
    $t->identity_ok($r, $name, $dev, $signer);
}

# 495 and 496 are sent and logged as 400, as nginx does for
# ssl_verify_client; the error log line has the module's code and reason

sub refused {
    my ($r, $path, $code, $name, $reason) = @_;

    is($r->{status}, 400, "$name: 400") or diag($r->{error} || $r->{out});
    ok(!$r->{headers}{'x-echo'}, "$name: upstream not reached");

    my $re = "device rejected with $code " . '[^\n]*reason: ([^\n]*), '
             . 'client: [^\n]*request: "GET ' . quotemeta($path)
             . ' HTTP/3\.0"';
    $re = qr/$re/;
    my $log = $t->wait_error_log($re) // '';
    my ($why) = $log =~ $re;
    like($why // '', $reason, "$name: error log: $code, $reason");
}

my ($r, @r, $mark, $log);

###############################################################################
# a server with "listen ... quic" only

$r = h3(device => 'dev1', path => '/genuine');
identity_ok($r, 'HTTP/3 only, genuine device', 'dev1', 'signer1');
like($t->read_access_log(), qr{"GET /genuine HTTP/3\.0" 200 },
     'HTTP/3 only: the request was HTTP/3');

$r = h3(device => 'dev1', path => '/vars/v1');
is($r->{body}, 'status=ok serial=' . $t->serial('dev1')
               . " http3=h3 reused=.\n",
   'HTTP/3 only: variables, $http3, a full handshake');

# every stream of the connection reads the identity of its handshake

@r = h3(device => 'dev3', paths => [map { "/stream$_" } 1 .. 4]);
is(scalar(grep { $_->{status} == 200 } @r), 4,
   'four streams on one connection: 200 each');
is_deeply([map { upstream_values($_, 'X-Device-Serial') } @r],
          [($t->serial('dev3')) x 4],
          'four streams on one connection: the serial on each');

$r = h3(path => '/nocert');
refused($r, '/nocert', 496, 'HTTP/3, no certificate',
        qr/^no client certificate$/);

# a device of another company: its chain reaches root2, which is not among
# the CA names asked for, so GnuTLS sends no certificate at all

$r = h3(device => 'dev_rogue', path => '/foreign');
refused($r, '/foreign', 496, 'HTTP/3, foreign device (root2)',
        qr/^no client certificate$/);

$r = h3(device => 'dev_expired', path => '/expired');
refused($r, '/expired', 495, 'HTTP/3, expired device',
        qr/^device certificate expired$/);

###############################################################################
# forged identity headers over HTTP/3

my $forged = "x-device-serial: 0123FFFFFFFFFFFF01\n"
           . "x-device-status: ok\n"
           . "x-device-signer: forged\n"
           . "x-device-fingerprint: forged\n";

$mark = $t->log_mark();
$r = h3(device => 'dev1', path => '/forged', headers => $forged);
identity_ok($r, 'HTTP/3, forged headers with a genuine device', 'dev1',
            'signer1');
ok(!grep({ ($_->[1] // '') =~ /forged|FFFFFFFF/ } upstream_headers($r)),
   'HTTP/3, forged headers: no forged value reached the upstream');
$log = $t->wait_error_log(qr/removed client header "x-device-fingerprint"/,
                          mark => $mark);
like($log, qr/removed client header "x-device-serial"/,
     'HTTP/3, forged headers: the removal is logged');

$r = h3(path => '/open/forged', headers => $forged);
is($r->{status}, 200, 'HTTP/3, device_auth off, forged headers: 200');
is(scalar(grep { $_->[0] =~ /^x-device/i } upstream_headers($r)), 0,
   'HTTP/3, device_auth off: forged headers stripped all the same');

###############################################################################
# Redis state over HTTP/3: a revoked device

$t->redis_cli('SET', "$P\{" . $t->serial('dev2') . '}:revoked', 'stolen');

$r = h3(device => 'dev2', path => '/revoked');
is($r->{status}, 403, 'HTTP/3, revoked device: 403')
    or diag($r->{error} || $r->{out});
ok(!$r->{headers}{'x-echo'}, 'HTTP/3, revoked device: upstream not reached');

$r = h3(device => 'dev1', path => '/after-revoked');
identity_ok($r, 'HTTP/3, another device of the signer', 'dev1', 'signer1');

###############################################################################
# session resumption over QUIC: the verdict comes back from the ticket

my $session = $t->testdir . '/dev1.session';

$r = h3(device => 'dev1', path => '/vars/first', session => $session);
is($r->{status}, 200, 'resumption: first connection 200');

SKIP: {
    skip 'gtlsclient kept no session ticket', 2 unless -s $session;

    $r = h3(device => 'dev1', path => '/vars/resumed', session => $session);
    is($r->{body}, 'status=ok serial=' . $t->serial('dev1')
                   . " http3=h3 reused=r\n",
       'resumption: resumed, same identity');

    $r = h3(device => 'dev1', path => '/resumed', session => $session);
    identity_ok($r, 'resumption: identity at the upstream', 'dev1',
                'signer1');
}

###############################################################################
# "ssl" and "quic" on one port, pinned signers

$r = $t->https_get(port => $t->port(1), device => 'dev1', path => '/tcp');
identity_ok($r, 'ssl beside quic: over TCP', 'dev1', 'signer1');
like($r->{headers}{'alt-svc'} // '', qr/h3=/, 'ssl beside quic: Alt-Svc');

$r = h3(port => $t->port(1), device => 'dev1', path => '/udp');
identity_ok($r, 'ssl beside quic: over QUIC', 'dev1', 'signer1');

$r = h3(port => $t->port(1), device => 'dev_unpinned_signer',
        path => '/unpinned');
refused($r, '/unpinned', 495, 'ssl beside quic: signer not pinned',
        qr/^signer not pinned /);

$t->check_error_log();

done_testing();
