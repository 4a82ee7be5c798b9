#!/usr/bin/perl

# TLS 1.3 early data (0-RTT) with "ssl_early_data on" (issue 9, item 3):
# a request that arrives in early data can be replayed by whoever captured
# it, with the device's identity attached.  In a device_auth location it
# gets 425 Too Early (RFC 8470: the client sends it again after the
# handshake) unless "device_auth_early_data on" allows it; then the
# upstream is told, with X-Device-Early-Data: 1, which no client can forge.
#
# The early requests are sent by openssl s_client (-sess_in, -early_data)
# through a relay that holds back the rest of the client's handshake (its
# Finished) until nginx has answered the request: nginx then handles it
# while the handshake is incomplete, as it would handle a replay, whose
# sender cannot complete the handshake.  Without the relay, a fast client
# completes the handshake first, and the request is no longer early.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use DeviceAuth::Test qw(upstream_values upstream_headers);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

    log_format early '$remote_addr "$request" $status early=$ssl_early_data';

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        ssl_session_cache shared:S:1m;
        ssl_early_data on;

        access_log %%TESTDIR%%/access.log early;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /allow/ {
            device_auth on;
            device_auth_early_data on;
            proxy_pass http://%%ECHO%%;
        }

        location /public/ {
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

my $port = $t->port(0);
my $relay_port = $t->port('relay');
my $dir = $t->testdir;

# the relay: one connection; the client's first flight (ClientHello and
# early data) goes through at once, the rest only once the file "release"
# exists, after the client got its response; the server's bytes always
sub relay {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    return $pid if $pid;

    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $relay_port, Listen => 1,
                                  ReuseAddr => 1) or POSIX::_exit(1);
    $t->write_file('relay.ready', '');

    my $c = $l->accept() or POSIX::_exit(1);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port) or POSIX::_exit(1);
    my $sel = IO::Select->new($c, $s);
    my ($answered, $held) = (0, '');

    while (1) {
        my $open = -e "$dir/release";

        if ($open && length $held) {
            syswrite $s, $held;
            $held = '';
        }

        for my $fh ($sel->can_read(0.02)) {
            my $n = sysread $fh, my $buf, 65536;
            POSIX::_exit(0) unless $n;

            if ($fh == $s) {
                $answered = 1;
                syswrite $c, $buf;
            } elsif (!$answered || $open) {
                syswrite $s, $buf;
            } else {
                $held .= $buf;
            }
        }
    }
}
my $pki = $t->pki;
my $n = 0;

# one connection by openssl s_client: a full handshake that saves its
# session, or (early => 1) a resumption that sends the request as early
# data; returns the response parsed as https_get() does, and s_client's
# report of the early data
sub sclient {
    my (%a) = @_;
    $n++;

    my $req = "GET $a{path} HTTP/1.1\r\nHost: localhost\r\n"
              . join('', map { "$_->[0]: $_->[1]\r\n" } @{ $a{headers} || [] })
              . "Connection: close\r\n\r\n";
    $t->write_file("req$n", $req);

    my @cmd = ('openssl', 's_client', '-tls1_3', '-ign_eof',
               '-servername', 'localhost');
    my $relay;

    if ($a{early}) {
        unlink "$dir/release", "$dir/relay.ready";
        $relay = relay();
        select(undef, undef, undef, 0.02) until -e "$dir/relay.ready";

        push @cmd, '-connect', "127.0.0.1:$relay_port",
             '-sess_in', "$dir/sess", '-early_data', "$dir/req$n";

    } else {
        push @cmd, '-connect', "127.0.0.1:$port";
        push @cmd, '-cert', "$pki/dev1.pem", '-cert_chain',
             "$pki/signer1.pem", '-key', "$pki/dev1.key",
             '-sess_out', "$dir/sess", '-quiet';
    }

    my $in = $a{early} ? '/dev/null' : "$dir/req$n";
    system(join(' ', @cmd) . " < $in > $dir/out$n 2>&1");

    # the response came (Connection: close) before the handshake ended
    if ($relay) {
        $t->write_file('release', '');
        waitpid($relay, 0);
    }

    my $out = $t->read_file("out$n");
    my %r = (early => $out =~ /Early data was accepted/ ? 1 : 0,
             reused => $out =~ /^Reused,/m ? 1 : 0);

    if ($out =~ m{(HTTP/1\.1 (\d{3})[^\n]*\n(.*?)\r\n\r\n)(.*)}s) {
        my ($status, $head, $body) = ($2, $3, $4);
        my %h = map { /^([^:]+):\s*(.*?)\r?$/ ? (lc $1 => $2) : () }
                split /\n/, $head;
        # the echo body ends where s_client's report starts, if at all
        $body =~ s/\n(?:closed|read:errno|DONE|read R BLOCK)\b.*//s;
        @r{qw(status headers body)} = ($status, \%h, $body);
    }

    return \%r;
}

# a session with early data allowed, then the early request
sub early {
    my ($path, @headers) = @_;

    my $r = sclient(path => $path);
    is($r->{status}, 200, "$path: full handshake, 200");

    return sclient(path => $path, early => 1, headers => \@headers);
}

my $serial = $t->serial('dev1');

{
    my $r = early('/');
    ok($r->{reused} && $r->{early}, '/: resumed, early data accepted');
    is($r->{status}, 425, '/: early request, 425 Too Early');
    ok(!$r->{headers}{'x-echo'}, '/: upstream not reached');
    like($t->read_access_log(), qr{"GET / HTTP/1\.1" 425 early=1$}m,
         '/: handled in early data');
    like($t->read_error_log(),
         qr/device rejected: code=425 status=too_early serial="$serial" .* reason="request sent in TLS 1\.3 early data \(0-RTT\), which can be replayed"/,
         '/: logged');
}

{
    my $r = early('/allow/', ['X-Device-Early-Data', '0']);
    ok($r->{reused} && $r->{early}, '/allow/: resumed, early data accepted');
    is($r->{status}, 200, '/allow/: early request allowed');
    like($t->read_access_log(), qr{"GET /allow/ HTTP/1\.1" 200 early=1$}m,
         '/allow/: handled in early data');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
              '/allow/: identity');
    is_deeply([upstream_values($r, 'X-Device-Early-Data')], ['1'],
              '/allow/: marked as early data, the client\'s value removed');
}

# the same location after the handshake: no mark, and a forged one removed
{
    my $r = sclient(path => '/allow/',
                    headers => [['X-Device-Early-Data', '1']]);
    is($r->{status}, 200, '/allow/, full handshake: 200');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$serial],
              '/allow/, full handshake: identity');
    is_deeply([upstream_values($r, 'X-Device-Early-Data')], [],
              '/allow/, full handshake: no early data mark, forged removed');
}

# device_auth off: not the module's decision, but forged headers go
{
    my $r = early('/public/', ['X-Device-Serial', $serial]);
    ok($r->{early}, '/public/: early data accepted');
    is($r->{status}, 200, '/public/: early request passes');
    is(scalar(grep { $_->[0] =~ /^x-device-/i } upstream_headers($r)), 0,
       '/public/: no identity header, forged one removed');
}

$t->check_error_log();

done_testing();
