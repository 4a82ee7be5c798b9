#!/usr/bin/perl

# Device state in Redis, driven with redis-cli against a running nginx:
# revocation (also on a live keepalive connection and a resumed session),
# signer revocation and compromise, the manufacturing registry, clones seen
# from several places for each action, temporary quarantine, the events
# stream, the device state cache, HTTP/2 streams sharing one lookup, metrics, and
# 1000 requests from 50 devices over concurrent connections.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test qw(upstream_values new_session_cache decision_lines);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    shared:SSL:1m;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    # every decision's line: the lines of one device are looked at
    device_auth_log_interval 0;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        device_auth_location $http_x_test_place;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /vars {
            device_auth on;
            error_page 403 = /why;
            return 200 "status=$device_auth_status serial=$device_auth_serial reason=$device_auth_reason\n";
        }

        location = /why {
            return 200 "status=$device_auth_status serial=$device_auth_serial reason=$device_auth_reason\n";
        }

        location /registry/ {
            device_auth on;
            device_auth_registry on;
            proxy_pass http://%%ECHO%%;
        }

        location /deny/ {
            device_auth on;
            device_auth_location $remote_addr;
            device_auth_duplicate_action deny;
            proxy_pass http://%%ECHO%%;
        }

        location /quarantine/ {
            device_auth on;
            device_auth_duplicate_action quarantine;
            device_auth_duplicate_window 2s;
            proxy_pass http://%%ECHO%%;
        }

        location /nodup/ {
            device_auth on;
            device_auth_duplicate_limit 0;
            proxy_pass http://%%ECHO%%;
        }

        location /deny-again/ {
            device_auth on;
            device_auth_duplicate_action deny;
            error_page 403 = /why;
            proxy_pass http://%%ECHO%%;
        }

        location /metrics {
            device_auth_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%% ssl http2;
        server_name localhost;

        location / {
            device_auth on;
            return 200 "status=$device_auth_status serial=$device_auth_serial\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $P = 'device_auth:';

my %sn = map { $_ => $t->serial($_) } qw(dev1 dev2 dev3);
my $signer1 = $t->fingerprint('signer1');
my $signer2 = $t->fingerprint('signer2');

sub get {
    my (%a) = @_;
    my $place = delete $a{place};
    push @{ $a{headers} }, ['X-Test-Place', $place] if defined $place;
    return $t->https_get(device => 'dev1', %a);
}

sub status_of {
    my ($r) = @_;
    return $r->{status} . ' ' . (upstream_values($r, 'X-Device-Status'))[0]
        if $r->{status} == 200 && $r->{headers}{'x-echo'};
    return $r->{status};
}

sub vars {
    my (%a) = @_;
    my $r = get(path => '/vars', %a);
    return $r->{body};
}

sub evalsha_calls {
    my ($stats) = grep { /^cmdstat_evalsha:/ } $t->redis_cli('INFO', 'commandstats');
    return $stats && $stats =~ /calls=(\d+)/ ? $1 : 0;
}

sub events {
    my (@ev, $cur);

    # XRANGE in redis-cli's raw form: id, then field/value lines
    my @lines = $t->redis_cli('--raw', 'XRANGE', "${P}events", '-', '+');

    for my $l (@lines) {
        if ($l =~ /^\d+-\d+$/) {
            push @ev, $cur = { id => $l };
            next;
        }

        next unless $cur;
        if (!exists $cur->{_k}) { $cur->{_k} = $l; next }
        $cur->{ delete $cur->{_k} } = $l;
    }

    return @ev;
}

###############################################################################
# a genuine device, nothing in Redis

my $r = get();
is(status_of($r), '200 ok', 'genuine device: 200, X-Device-Status ok');
is_deeply([upstream_values($r, 'X-Device-Serial')], [$sn{dev1}],
          'genuine device: serial upstream');

###############################################################################
# revoked

my $mark = $t->log_mark();

$t->redis_cli('SET', "$P\{$sn{dev1}\}:revoked", 'stolen, ticket 4711');

$r = get();
is($r->{status}, 403, 'revoked: 403');
ok(!$r->{headers}{'x-echo'}, 'revoked: upstream not reached');
unlike($r->{body}, qr/stolen/, 'revoked: the reason is not in the body');
like(vars(), qr/^status=revoked serial=$sn{dev1} reason=stolen, ticket 4711$/m,
     'revoked: $device_auth_status and $device_auth_reason');

is_deeply([map { join ' ', @$_{qw(code status serial signer location reason)} }
           (decision_lines($t->wait_error_log(qr/device rejected: /,
                                              mark => $mark)))[0]],
          ["403 revoked $sn{dev1} $signer1 - stolen, ticket 4711"],
          'revoked: the error log names serial, signer, location and reason');

is(status_of($t->https_get(device => 'dev2')), '200 ok',
   'revoked: another device of the same signer still passes');

$t->redis_cli('DEL', "$P\{$sn{dev1}\}:revoked");
is(status_of(get()), '200 ok', 'unrevoked: 200 on the next request');

# a reason with control bytes does not break the log line

$t->redis_cli('SET', "$P\{$sn{dev1}\}:revoked", "bad\r\nline");
$mark = $t->log_mark();
is(get()->{status}, 403, 'revoked with CR LF in the reason: 403');
like($t->wait_error_log(qr/device rejected: /, mark => $mark),
     qr/ reason="bad\\\\x0d\\\\x0aline"/,
     'the reason is escaped in the log (as in $device_auth_reason, then '
     . 'for the log)');
$t->redis_cli('DEL', "$P\{$sn{dev1}\}:revoked");

###############################################################################
# revocation on a live keepalive connection and on a resumed session

# The worker applies a revocation when Redis' message reaches it, a few
# milliseconds after the write (docs/operations.md): a request that comes
# in the meantime may still pass, and under valgrind the meantime is long.
# So the request on the open connection is sent once a request on another
# connection (the same worker) was refused: what is asserted is that
# nothing the connection holds (its verdict, its identity) lets it in.
my $applied;

$r = get(keepalive => 3, between => sub {
    return unless $_[0] == 1;

    $t->redis_cli('SET', "$P\{$sn{dev1}\}:revoked", 'live');

    my $end = time() + 10 * $t->{slow};
    until ($applied = $t->https_get(device => 'dev1')->{status} == 403) {
        last if time() > $end;
        sleep(0.05);
    }
});

ok($applied, 'keepalive: revoked between requests: another connection of '
   . 'the device is refused');

is(scalar @{ $r->{responses} }, 3, 'keepalive: three responses');
is($r->{responses}[0]{status}, 200, 'keepalive: first request 200');
is($r->{responses}[1]{status}, 403,
   'keepalive: revoked between requests: the next request is 403');
is($r->{responses}[2]{status}, 403, 'keepalive: and the one after');

$t->redis_cli('DEL', "$P\{$sn{dev1}\}:revoked");

for my $v ('TLSv1_2', 'TLSv1_3') {
    my $cache = new_session_cache();

    $r = get(session_cache => $cache, ssl_version => $v);
    is($r->{status}, 200, "$v: first connection 200");

    $t->redis_cli('SET', "$P\{$sn{dev1}\}:revoked", 'resumed');

    $r = get(session_cache => $cache, ssl_version => $v);
    ok($r->{reused}, "$v: the session was resumed");
    is($r->{status}, 403, "$v: revoked device on a resumed session: 403");

    $t->redis_cli('DEL', "$P\{$sn{dev1}\}:revoked");

    $r = get(session_cache => $cache, ssl_version => $v);
    is($r->{status}, 200, "$v: unrevoked, new connection: 200");
}

###############################################################################
# signer revoked

$t->redis_cli('SET', "${P}signer:$signer1:revoked", 'factory closed');

like(vars(), qr/^status=signer_revoked .* reason=factory closed$/m,
     'signer revoked: status signer_revoked');
is(get()->{status}, 403, 'signer revoked: 403');
is($t->https_get(device => 'dev2')->{status}, 403,
   'signer revoked: every device of that signer');
is(status_of($t->https_get(device => 'dev3')), '200 ok',
   'signer revoked: a device of another signer passes');

$t->redis_cli('DEL', "${P}signer:$signer1:revoked");
is(status_of(get()), '200 ok', 'signer unrevoked: 200');

###############################################################################
# signer compromised: only registered serials keep working

$t->redis_cli('SET', "${P}signer:$signer1:compromised", 'key leaked');

is(get()->{status}, 403, 'signer compromised, serial not registered: 403');
like(vars(), qr/^status=signer_compromised .* reason=signer compromised \(key leaked\) and serial not in the manufacturing registry$/m,
     'signer compromised: status signer_compromised, reason');

$t->redis_cli('SET', "$P\{$sn{dev1}\}:registered", 'batch-2026-11');

is(status_of(get()), '200 ok',
   'signer compromised, serial registered: 200');
is($t->https_get(device => 'dev2')->{status}, 403,
   'signer compromised: another unregistered serial: 403');
is(status_of($t->https_get(device => 'dev3')), '200 ok',
   'signer compromised: devices of another signer unaffected');

$t->redis_cli('DEL', "${P}signer:$signer1:compromised");

###############################################################################
# the manufacturing registry

$r = $t->https_get(device => 'dev2', path => '/registry/');
is($r->{status}, 403, 'registry on, serial not registered: 403');
like($t->https_get(device => 'dev2', path => '/vars')->{body},
     qr/^status=ok/m, 'registry off elsewhere: the same device passes');

$t->redis_cli('SET', "$P\{$sn{dev2}\}:registered", 'batch-2026-11');
is(status_of($t->https_get(device => 'dev2', path => '/registry/')),
   '200 ok', 'registry on, serial registered: 200');

###############################################################################
# clones: seen from 4 places, limit 3, for each action

my $clone = $t->make_device(name => 'clone_log', serial => '0123C10E00000000AA');
my $csn = '0123C10E00000000AA';

for my $i (1 .. 3) {
    is(status_of($t->https_get(device => $clone, headers => [['X-Test-Place', "p$i"]])),
       '200 ok', "log action: place $i of 3: 200 ok");
}

$mark = $t->log_mark();

$r = $t->https_get(device => $clone, headers => [['X-Test-Place', 'p4']]);
is(status_of($r), '200 duplicate',
   'log action: a 4th place: 200, X-Device-Status duplicate upstream');
is_deeply([map { join ' ', @$_{qw(action code status serial signer location reason)} }
           decision_lines($t->wait_error_log(qr/device allowed: /,
                                             mark => $mark))],
          ["allowed 200 duplicate $csn $signer1 p4 seen at 4 places within 600s: p4, p3, p2, p1"],
          'log action: logged with serial, location and the places');

my @seen = $t->redis_cli('ZRANGE', "$P\{$csn\}:seen", 0, -1);
is_deeply([sort @seen], [qw(p1 p2 p3 p4)], 'the places are in P{SN}:seen');
my $ttl = $t->redis_cli('PTTL', "$P\{$csn\}:seen");
ok($ttl > 590_000 && $ttl <= 600_000, "P{SN}:seen has the window as TTL ($ttl)");

# deny, with real source addresses 127.0.0.x ($remote_addr)

my $deny = $t->make_device(name => 'clone_deny', serial => '0123C10E00000000BB');

for my $i (2 .. 4) {
    is($t->https_get(device => $deny, path => '/deny/', local_addr => "127.0.0.$i")->{status},
       200, "deny action: from 127.0.0.$i: 200");
}

$r = $t->https_get(device => $deny, path => '/deny/', local_addr => '127.0.0.5');
is($r->{status}, 403, 'deny action: from a 4th address: 403');
is($t->https_get(device => $deny, path => '/deny/', local_addr => '127.0.0.2')->{status},
   403, 'deny action: the original place too, within the window');

# deny: a refusal is never reused (issue 9, item 7): each request of the
# clone's connection is sighted again and refused with the places as
# reason

my $drc = $t->make_device(name => 'clone_drc', serial => '0123C10E00000000EE');

for my $i (1 .. 3) {
    is($t->https_get(device => $drc, path => '/deny-again/',
                     headers => [['X-Test-Place', "d$i"]])->{status},
       200, "deny: place d$i: 200");
}

{
    my $calls = evalsha_calls();

    $r = $t->https_get(device => $drc, path => '/deny-again/',
                       keepalive => 3, headers => [['X-Test-Place', 'd4']]);

    for my $n (0 .. 2) {
        like($r->{responses}[$n]{body} // '',
             qr/^status=duplicate serial=0123C10E00000000EE reason=seen at 4 places within 600s: /,
             "deny: request $n refused as duplicate, with the places");
    }

    is(evalsha_calls() - $calls, 3,
       'deny: each request sighted again, the refusal not reused');
}

# limit 0: no clone detection, no sightings written

my $nodup = $t->make_device(name => 'clone_nodup', serial => '0123C10E00000000CC');

for my $i (1 .. 5) {
    $r = $t->https_get(device => $nodup, path => '/nodup/', headers => [['X-Test-Place', "n$i"]]);
}

is(status_of($r), '200 ok', 'limit 0: 5 places: still ok');
is($t->redis_cli('EXISTS', "$P\{0123C10E00000000CC\}:seen"), '0',
   'limit 0: no sightings recorded');

# quarantine, with a window of 2 s: the serial is revoked for the window
# on every edge, then comes back by itself

my $qdev = $t->make_device(name => 'clone_q', serial => '0123C10E00000000DD');
my $qsn = '0123C10E00000000DD';

for my $i (1 .. 3) {
    $t->https_get(device => $qdev, path => '/quarantine/', headers => [['X-Test-Place', "q$i"]]);
}

$r = $t->https_get(device => $qdev, path => '/quarantine/', headers => [['X-Test-Place', 'q4']]);
is($r->{status}, 403, 'quarantine action: a 4th place: 403');

my $q = $t->redis_cli('GET', "$P\{$qsn\}:revoked");
like($q, qr/^quarantined: cloned device seen at 4 places within 2s: q4, q3, q2, q1$/,
     'quarantine: P{SN}:revoked names the places');
$ttl = $t->redis_cli('PTTL', "$P\{$qsn\}:revoked");
ok($ttl > 0 && $ttl <= 2000, "quarantine: the window is its TTL ($ttl)");

like($t->https_get(device => $qdev, path => '/vars')->{body},
     qr/^status=quarantined/m,
     'quarantined: refused everywhere, even where the action is log');

sleep(2.3);

is($t->redis_cli('EXISTS', "$P\{$qsn\}:revoked"), '0', 'quarantine expired');
is(status_of($t->https_get(device => $qdev, path => '/quarantine/', headers => [['X-Test-Place', 'q1']])),
   '200 ok', 'quarantine expired: the device passes again');

###############################################################################
# the events stream

my @ev = events();
my %types;
$types{ $_->{type} }++ for @ev;

ok($types{$_}, "events: a \"$_\" event")
    for qw(revoked signer_revoked signer_compromised unregistered duplicate
           quarantined);

my ($rev) = grep { $_->{type} eq 'revoked' && $_->{serial} eq $sn{dev1} } @ev;
is($rev->{signer}, $signer1, 'revoked event: signer');
is($rev->{reason}, 'stolen, ticket 4711', 'revoked event: reason');
is($rev->{location}, '-', 'revoked event: location');
ok(length $rev->{edge}, "revoked event: edge ($rev->{edge})");

my ($dup) = grep { $_->{type} eq 'duplicate' && $_->{serial} eq $csn } @ev;
is($dup->{location}, 'p4', 'duplicate event: location');
like($dup->{reason}, qr/^seen at 4 places/, 'duplicate event: reason');
is($dup->{edges}, $dup->{edge},
   'duplicate event: the edges that sighted it within the window (this one)');

# repeated decisions for one serial: one event per type and minute

my $before = grep { $_->{type} eq 'revoked' && $_->{serial} eq $sn{dev1} } @ev;
$t->redis_cli('SET', "$P\{$sn{dev1}\}:revoked", 'again');
get() for 1 .. 3;
my $after = grep { $_->{type} eq 'revoked' && $_->{serial} eq $sn{dev1} } events();
is($after, $before, 'repeated revoked decisions: no new event within a minute');
$t->redis_cli('DEL', "$P\{$sn{dev1}\}:revoked");

###############################################################################
# the device state cache: a device whose facts the worker holds and whose
# sighting is fresh costs no Redis command; a change pushed by Redis
# applies to the next requests of its open connections

my $calls0;

{
    my $d = $t->make_device(name => 'cached', serial => '0123CAC4ED00000001');
    my $dsn = '0123CAC4ED00000001';
    my $seen = 0;

    $r = $t->https_get(device => $d, keepalive => 3, headers => [['X-Test-Place', 'c1']],
                       between => sub { $calls0 = evalsha_calls() if $_[0] == 1 });
    is(scalar(grep { $_->{status} == 200 } @{ $r->{responses} }), 3,
       'cache: 3 requests of a new device, 200');
    is(evalsha_calls() - $calls0, 0,
       'cache: after the first, no Redis command for its requests');

    # revoked while its connection is open: refused on it, once the
    # invalidation came (pushed with the write: polled, not timed)
    my @st;
    $r = $t->https_get(device => $d, keepalive => 200, path => '/vars',
                       headers => [['X-Test-Place', 'c1']], between => sub {
        my ($i) = @_;
        $t->redis_cli('SET', "$P\{$dsn\}:revoked", 'pushed') if $i == 1;
        sleep(0.02) if $i > 1;
    });
    @st = map { $_->{body} =~ /^status=(\w+)/ ? $1 : '?' } @{ $r->{responses} };
    is($st[0], 'ok', 'cache: before the revocation, ok');
    ok((grep { $_ eq 'revoked' } @st), 'cache: revoked on the same connection')
        or diag("@st");
    my ($first) = grep { $st[$_] eq 'revoked' } 0 .. $#st;
    ok(!grep({ $_ ne 'revoked' } @st[$first .. $#st]),
       'cache: and from then on, every request');

    # unrevoked: back the same way
    $calls0 = evalsha_calls();
    $t->redis_cli('DEL', "$P\{$dsn\}:revoked");
    for (1 .. 100) {
        last if vars(device => $d, place => 'c1') =~ /^status=ok/;
        sleep(0.05);
    }
    like(vars(device => $d, place => 'c1'), qr/^status=ok/, 'cache: unrevoked, ok again');
    cmp_ok(evalsha_calls() - $calls0, '>=', 1, 'cache: the facts were read again');
}

###############################################################################
# HTTP/2: the streams of one connection share one lookup

my $port1 = $t->port(1);
my @urls = map { "https://127.0.0.1:$port1/?s=$_" } 1 .. 10;
my @tls = ('-k', '--http2', '--cert', $t->pki_file('dev1.chain.pem'),
           '--key', $t->pki_file('dev1.key'));

$calls0 = evalsha_calls();

my ($rc, $out) = $t->curl(@tls, '--parallel', '--parallel-max', '10',
                          '-w', '%{http_code} %{http_version} %{num_connects}\n',
                          '-o', '/dev/null', @urls);

my @lines = split /\n/, $out;
is(scalar(grep { /^200 2 / } @lines), 10, 'HTTP/2: 10 streams, all 200');
is(scalar(grep { / 1$/ } @lines), 1, 'HTTP/2: over one connection');
cmp_ok(evalsha_calls() - $calls0, '<=', 1,
       'HTTP/2: at most one lookup for 10 streams of a known device');

###############################################################################
# 1000 requests from 50 devices over concurrent connections

my @fleet = map {
    my $s = sprintf('0123F1EE7%09X', $_);
    { serial => $s, dev => $t->make_device(name => "fleet$_", serial => $s) }
} 1 .. 50;

$t->redis_cli('SET', "$P\{$fleet[$_]{serial}\}:revoked", 'fleet test')
    for 0 .. 4;

my @kids;
my $dir = $t->testdir;

for my $k (0 .. 9) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        my @res;

        for my $j (0 .. 4) {
            my $d = $fleet[$k * 5 + $j];
            my $r = $t->https_get(device => $d->{dev}, path => '/', keepalive => 20);

            for my $resp (@{ $r->{responses} }) {
                my ($got) = $resp->{body} =~ /^X-Device-Serial: (\S+)$/m;
                push @res, join ' ', $d->{serial}, $resp->{status}, $got // '-';
            }

            # a 403 closes the connection: count what was not answered
            push @res, "$d->{serial} closed -" for @{ $r->{responses} } .. 19;
        }

        open my $fh, '>', "$dir/fleet.$k" or die;
        print $fh "$_\n" for @res;
        close $fh;
        exit 0;
    }

    push @kids, $pid;
}

waitpid($_, 0) for @kids;

my (%count, $wrong);

for my $k (0 .. 9) {
    open my $fh, '<', "$dir/fleet.$k" or die "fleet.$k: $!";
    while (<$fh>) {
        my ($serial, $status, $got) = split;
        my $revoked = grep { $_->{serial} eq $serial } @fleet[0 .. 4];

        if ($revoked) {
            $count{revoked}++ if $status eq '403' || $status eq 'closed';
            $wrong++ unless $status eq '403' || $status eq 'closed';
        } else {
            $count{ok}++ if $status eq '200' && $got eq $serial;
            $wrong++ unless $status eq '200' && $got eq $serial;
        }
    }
}

is($count{ok}, 900, 'fleet: 45 good devices x 20 requests: 900 x 200 with their own serial');
is($count{revoked}, 100, 'fleet: 5 revoked devices refused');
ok(!$wrong, 'fleet: no wrong answer');

###############################################################################
# metrics

$r = $t->https_get(path => '/metrics');
is($r->{status}, 200, 'metrics: 200');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     'metrics: Prometheus text format');

my %m = map { /^(\S+) (\d+(?:\.\d+)?)$/ ? ($1 => $2) : () } split /\n/, $r->{body};

ok($m{'nginx_device_auth_decisions_total{result="allowed",reason="ok"}'} >= 900,
   'metrics: allowed ok counted');
ok($m{'nginx_device_auth_decisions_total{result="rejected",reason="revoked"}'} >= 5,
   'metrics: revoked counted');
ok($m{"nginx_device_auth_decisions_total{result=\"rejected\",reason=\"$_\"}"},
   "metrics: $_ counted")
    for qw(signer_revoked signer_compromised unregistered quarantined duplicate);
ok($m{'nginx_device_auth_decisions_total{result="allowed",reason="duplicate"}'},
   'metrics: duplicate allowed by the log action counted');
ok($m{'nginx_device_auth_cache_total{event="hit"}'} >= 900,
   'metrics: decisions from the cache (most of the fleet\'s requests)');
ok($m{'nginx_device_auth_cache_total{event="miss"}'} >= 50,
   'metrics: Redis asked (each device of the fleet once at least)');
ok($m{'nginx_device_auth_cache_total{event="invalidation"}'} >= 1,
   'metrics: invalidations received');
ok($m{'nginx_device_auth_redis_duration_seconds_count'} >= 50,
   'metrics: latency histogram count');
is($m{'nginx_device_auth_invalidation_links_up'}, 1,
   'metrics: the worker\'s invalidation link is up');
like($r->{body}, qr/^nginx_device_auth_invalidation_link_age_seconds\{worker="0"\} \d+\.\d{3}$/m,
     'metrics: the age of its link');
is($m{'nginx_device_auth_redis_connections_ready'}, 1,
   'metrics: the worker has a ready Redis connection');
is($m{'nginx_device_auth_lookups_in_flight'}, 0, 'metrics: nothing in flight');
like($r->{body}, qr/^# TYPE nginx_device_auth_redis_duration_seconds histogram$/m,
     'metrics: histogram type line');

$t->check_error_log();

done_testing();
