#!/usr/bin/perl

# Faults under load: while bench/loadgen drives hundreds of concurrent
# device connections, nginx is reloaded several times, Redis is restarted
# and paused past the timeout, and other clients flood the edge with
# handshakes of a foreign CA, garbage bytes, stalled handshakes and
# requests, and HTTP/2 streams reset while their lookup is in flight.
# Afterwards: no crash, no [alert], the good devices got 200 (or 503 by
# the closed fail mode while Redis was away), and the workers' file
# descriptors and memory are back to their baseline.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IO::Socket::INET;
use IO::Socket::SSL;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

my $loadgen = DeviceAuth::Test->repo . '/bench/loadgen';
plan(skip_all => "no $loadgen (make -C bench)") unless -x $loadgen;

# the Redis timeout, and the pauses that must exceed it: long enough that a
# worker busy with hundreds of handshakes on a loaded 2-core machine still
# reads Redis' answers within it (slower under sanitizers)
my $timeout = 1000 * ($t->sanitizer ? 3 : 1);

(my $conf = <<'EOF') =~ s/%%TIMEOUT%%/${timeout}ms/;
worker_processes 2;

http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    keepalive_timeout      1s;
    keepalive_requests     200;
    client_header_timeout  2s;
    http2_recv_timeout     2s;
    http2_idle_timeout     2s;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        listen 127.0.0.1:%%PORT_1%% ssl http2;
        server_name localhost;

        access_log off;

        location / {
            device_auth on;
            device_auth_duplicate_limit 0;
            return 200 "ok $device_auth_serial\n";
        }
    }
}
EOF

$t->write_conf($conf);
$t->redis_start();
$t->run();

my $dir = $t->testdir;
my $url = 'https://127.0.0.1:' . $t->port(0) . '/';
my @fleet = ('--signer-cert', $t->pki_file('signer1.pem'),
             '--signer-key', $t->pki_file('signer1.key'),
             '--fleet-cache', "$dir/fleet", '-q');

my $run = 0;

# loadgen in the background; returns a sub that waits and returns its JSON
sub load {
    my (@args) = @_;
    my $json = "$dir/load." . ++$run . '.json';

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', "$json.out";
        open STDERR, '>&', \*STDOUT;
        exec $loadgen, @args, '--json', $json;
        exit 127;
    }

    return sub {
        waitpid($pid, 0);
        return parse_json($json);
    };
}

# the loadgen JSON is flat enough for a few regexps
sub parse_json {
    my ($file) = @_;
    open my $fh, '<', $file or return { missing => 1 };
    local $/;
    my $j = <$fh>;
    close $fh;

    my %r;
    my ($status) = $j =~ /"status"\s*:\s*\{([^}]*)\}/;
    $r{status}{$1} = $2 while ($status // '') =~ /"(\d+)"\s*:\s*(\d+)/g;
    my ($errors) = $j =~ /"errors"\s*:\s*\{([^}]*)\}/;
    $r{errors}{$1} = $2 while ($errors // '') =~ /"(\w+)"\s*:\s*(\d+)/g;
    ($r{requests}) = $j =~ /"requests"\s*:\s*(\d+)/;

    return \%r;
}

sub others {
    my ($r, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;
    return join ' ', map { "$_=$r->{status}{$_}" }
                     grep { !$ok{$_} } sort keys %{ $r->{status} };
}

# transport errors; "keepalive" (a reused connection closed by nginx, idle,
# as the next request went out: before any byte of the response) is the
# race every keepalive client has, and retries, not a failure
sub errors {
    my ($r, @allowed) = @_;
    my %ok = map { $_ => 1 } 'keepalive', @allowed;
    return join ' ', map { "$_=$r->{errors}{$_}" }
                     grep { !$ok{$_} && $r->{errors}{$_} }
                     sort keys %{ $r->{errors} };
}

sub workers {
    my $master = $t->nginx_pid;
    my @w;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $s = <$fh>;
        close $fh;
        next unless $s && $s =~ /^(\d+) \((.*)\) (\S) (\d+) /;

        next unless $4 == $master && $3 ne 'Z';

        # not a helper such as ASan's llvm-symbolizer
        my $pid = $1;
        open my $cl, '<', "/proc/$pid/cmdline" or next;
        my $cmd = <$cl> // '';
        close $cl;

        push @w, $pid if $cmd =~ /^nginx: worker/;
    }

    return sort { $a <=> $b } @w;
}

sub usage {
    my (%u);

    for my $pid (workers()) {
        my @fds = glob "/proc/$pid/fd/*";
        open my $fh, '<', "/proc/$pid/status" or next;
        my ($rss) = join('', <$fh>) =~ /^VmRSS:\s+(\d+) kB/m;
        close $fh;
        $u{$pid} = { fds => scalar @fds, rss => $rss };
    }

    return \%u;
}

sub quiet {
    # idle keepalive (1 s) and stalled clients (2 s) are closed by then
    sleep(3);
}

###############################################################################
# warm up and take the baseline of the workers

my $r = load(@fleet, '-N', 300, '-c', 100, '-d', 2, '-w', 0.5, $url)->();
ok($r->{requests} > 500, "warmup: $r->{requests} requests");
is(others($r, 200), '', 'warmup: all 200');

###############################################################################
# reloads under load

my $wait = load(@fleet, '-N', 300, '-c', 200, '-d', 6, '-w', 0.2, $url);

for my $at (1.5, 3, 4.5) {
    sleep(1.5);
    ok($t->reload(), "reload at ${at}s under load");
}

$r = $wait->();
ok($r->{requests} > 1000, "reloads: $r->{requests} requests answered");
is(others($r, 200), '', 'reloads: every answer was 200');

# a keepalive connection closed by an old worker as the next request was
# sent is the usual keepalive race ("keepalive"), not a failure
is(errors($r), '', 'reloads: no connect, TLS, timeout, parse or close error');

quiet();

# the old workers finish their last requests, then exit
# (under ASan, LeakSanitizer's check at exit takes its time)
for (1 .. 50 * ($t->sanitizer ? 4 : 1)) {
    last if (my @w = workers()) == 2;
    sleep(0.2);
}

my $base = usage();
is(scalar keys %$base, 2, 'two workers after the reloads')
    or diag(`ps -o pid,stat,etime,args --ppid ${\ $t->nginx_pid}`);

###############################################################################
# Redis restarted, then paused past the timeout, under load

$wait = load(@fleet, '-N', 300, '-c', 200, '-d', 7, '-w', 0.2, $url);

sleep(1.5);
$t->redis_stop();
sleep(0.5);
$t->redis_start();

sleep(2);
$t->redis_cli('CLIENT', 'PAUSE', 3 * $timeout, 'ALL');

$r = $wait->();
ok($r->{requests} > 1000, "redis faults: $r->{requests} requests answered");
is(others($r, 200, 503), '',
   'redis faults: only 200, and 503 by the closed fail mode');
ok($r->{status}{503}, "redis faults: the fail-mode windows were seen "
                      . "($r->{status}{503} x 503)");
ok($r->{status}{200} > $r->{status}{503},
   'redis faults: most requests got 200');
is(errors($r), '', 'redis faults: no transport error');

###############################################################################
# abuse while good devices work

my @kids;

sub child(&) {
    my ($code) = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) { $code->(); exit 0 }
    push @kids, $pid;
}

$wait = load(@fleet, '-N', 300, '-c', 50, '-d', 6, '-w', 0.2, $url);

# devices of a foreign CA, a full handshake each
my $rogue = load('--signer-cert', $t->pki_file('rogue_signer.pem'),
                 '--signer-key', $t->pki_file('rogue_signer.key'),
                 '--fleet-cache', "$dir/fleet-rogue", '-q', '-N', 50,
                 '-m', 'handshake', '-c', 16, '-d', 5, '-w', 0, $url);

my $port = $t->port(0);

# garbage bytes instead of a ClientHello
child {
    for (1 .. 300) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
            or next;
        print $s join '', map { chr(int rand 256) } 1 .. 1 + int rand 4096;
        close $s;
    }
};

# a ClientHello that stops half way, and requests that stop half way
child {
    my @held;

    for (1 .. 50) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
            or next;
        print $s "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ('A' x 40);
        push @held, $s;
    }

    for (1 .. 30) {
        my $s = IO::Socket::SSL->new(
            PeerAddr => "127.0.0.1:$port",
            SSL_verify_mode => SSL_VERIFY_NONE,
            SSL_cert_file => $t->pki_file('dev1.chain.pem'),
            SSL_key_file => $t->pki_file('dev1.key'),
        ) or next;
        print $s "GET / HTTP/1.1\r\nHost: localhost\r\nX-Half: ";
        push @held, $s;
    }

    sleep(4);
};

# HTTP/2 streams reset while Redis holds their lookup
child {
    h2_resets($t->port(1), 4, 25);
};

sleep(1);
$t->redis_cli('CLIENT', 'PAUSE', $timeout + 100, 'ALL');
sleep(0.2);

child {
    h2_resets($t->port(1), 4, 25);
};

waitpid($_, 0) for @kids;

$r = $wait->();
ok($r->{requests} > 300, "abuse: $r->{requests} good requests answered");
is(others($r, 200, 503), '', 'abuse: good devices got 200 (or 503 while '
                             . 'Redis was paused)');
is(errors($r), '', 'abuse: no transport error for good devices');

my $rr = $rogue->();
ok($rr->{status}{400}, "abuse: foreign devices refused ($rr->{status}{400} x 400)");
is(others($rr, 400), '', 'abuse: foreign devices never got anything but 400');

###############################################################################
# after it all: good devices get 200, nothing leaked

quiet();

$r = load(@fleet, '-N', 300, '-c', 100, '-d', 2, '-w', 0.2, $url)->();
ok($r->{requests} > 500, "after: $r->{requests} requests");
is(others($r, 200), '', 'after: all 200');
is(errors($r), '', 'after: no error');

quiet();

my $now = usage();
is_deeply([sort keys %$now], [sort keys %$base],
          'the same workers as at the baseline: none crashed');

for my $pid (sort keys %$base) {
    next unless $now->{$pid};
    is($now->{$pid}{fds}, $base->{$pid}{fds},
       "worker $pid: file descriptors back to the baseline "
       . "($base->{$pid}{fds})");

    SKIP: {
        skip 'ASan keeps freed memory in quarantine', 1 if $t->sanitizer;

        my $growth = $now->{$pid}{rss} - $base->{$pid}{rss};
        ok($growth < 16 * 1024, "worker $pid: memory back near the baseline "
           . "($base->{$pid}{rss} kB, now $now->{$pid}{rss} kB)");
    }
}

like($t->read_error_log(), qr/device rejected: code=495 status=invalid /,
     'the foreign devices were logged');

$t->check_error_log();

done_testing();

###############################################################################

# HTTP/2 by hand: HEADERS then RST_STREAM (CANCEL) for each stream

sub h2_resets {
    my ($port, $conns, $streams) = @_;

    for (1 .. $conns) {
        my $s = IO::Socket::SSL->new(
            PeerAddr => "127.0.0.1:$port",
            SSL_verify_mode => SSL_VERIFY_NONE,
            SSL_alpn_protocols => ['h2'],
            SSL_cert_file => $t->pki_file('dev1.chain.pem'),
            SSL_key_file => $t->pki_file('dev1.key'),
        ) or next;

        my $out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . frame(4, 0, 0, '');

        # :method GET, :scheme https, :path /, :authority localhost
        my $block = "\x82\x87\x84\x41\x09localhost";

        for my $i (0 .. $streams - 1) {
            my $id = 1 + 2 * $i;
            $out .= frame(1, 0x5, $id, $block);
            $out .= frame(3, 0, $id, pack('N', 8));
        }

        print $s $out;
        sleep(0.05);
        close $s;
    }
}

sub frame {
    my ($type, $flags, $id, $payload) = @_;
    return substr(pack('N', length $payload), 1) . pack('CCN', $type, $flags,
                                                        $id) . $payload;
}
