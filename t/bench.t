#!/usr/bin/perl

# Smoke test of the benchmark harness (bench/run.sh, issues 4 and 10): its
# quick mode with a tiny fleet and very short runs, every variant and both
# modes and worker counts, and the extra measurements.  Checks that every
# variant answered (200s, no load generator errors), that the counters
# show what the variants are: the module with its device state cache
# (variant 3) makes a Redis round trip per new connection, not per
# request, and has its invalidation link; the untracked module (variant
# 4) one script call per request and no link; that every revocation of
# the probe was refused at the three edges; that the memory per cached
# device was measured over a pass of misses and a pass of hits; and that
# the report, the JSON and the plot were written.  No timing is asserted:
# the numbers of such short runs mean nothing; counts and bounds are.
#
# Always the stock /usr/sbin/nginx and build/ngx_http_device_auth_module.so
# (the Lua peer is a module built for Debian's nginx); "make test" installs
# what it needs (make bench-deps) and builds bench/loadgen.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

my $repo = "$FindBin::Bin/..";
my $so = "$repo/build/ngx_http_device_auth_module.so";

plan skip_all => "no $so (make)" unless -f $so;
for my $b (qw(loadgen revprobe)) {
    plan skip_all => "no bench/$b (make -C bench)" unless -x "$repo/bench/$b";
}
for my $f ('/usr/lib/nginx/modules/ngx_http_lua_module.so',
           '/usr/share/lua/5.1/nginx/redis.lua') {
    plan skip_all => "no $f (make bench-deps)" unless -f $f;
}
for my $p (qw(redis-server redis-cli gnuplot)) {
    plan skip_all => "no $p (make bench-deps)"
        unless system("sh -c 'command -v $p' >/dev/null") == 0;
}

my $out = tempdir('device-auth-bench-t.XXXXXX', TMPDIR => 1, CLEANUP => 1);

my %env = (
    BENCH_QUICK => 1,
    BENCH_DURATION => 0.3,
    BENCH_WARMUP => 0.1,
    BENCH_FLEET => 40,
    BENCH_REVOKED => 0.05,
    BENCH_CONC_KA => 4,
    BENCH_CONC_HS => 2,
    BENCH_FLEETS => '20 40',
    BENCH_REVOKED_KEYS => 1000,
    BENCH_IDLE => 40,
    BENCH_IDLE_HOLD => 0.3,
    BENCH_REVOCATIONS => 20,
    BENCH_CACHE_DEVICES => 100,
    BENCH_OUT => $out,
    BENCH_NGINX => '/usr/sbin/nginx',
    DEVICE_AUTH_MODULE => $so,
);

my $start = time;
my $cmd = join(' ', map { "$_='$env{$_}'" } sort keys %env)
          . " timeout -k 10 300 bash $repo/bench/run.sh"
          . " > $out/stdout.txt 2> $out/stderr.txt";
my $rc = system($cmd);
my $took = time - $start;

is($rc, 0, "bench/run.sh in quick mode exits 0 ($took s)")
    or diag(`tail -30 $out/stderr.txt`);
cmp_ok($took, '<', 120, 'quick smoke run is short');

for my $f (qw(summary.json table.txt table.md index.tsv env.txt bench.png)) {
    ok(-s "$out/$f", "$f written");
}

open my $png, '<:raw', "$out/bench.png";
my $magic = '';
read($png, $magic, 8) if $png;
is($magic, "\x89PNG\r\n\x1a\n", 'bench.png is a PNG');

my $table = do { local (@ARGV, $/) = "$out/table.txt"; <> } // '';
like($table, qr/Targets of issue 10/, 'table has the targets');
like($table, qr/lua peer/, 'table has the Lua peer');
like($table, qr/^Revocation latency/m, 'table has the revocation latency');
like($table, qr/^Worker memory per cached device/m,
     'table has the memory per cached device');
like(do { local (@ARGV, $/) = "$out/stdout.txt"; <> } // '',
     qr/Targets of issue 10/, 'table printed');

my $s = eval { local (@ARGV, $/) = "$out/summary.json"; decode_json(<>) };
ok($s, 'summary.json parses') or diag($@);
$s //= { cells => [] };

my %cell;
for my $c (@{ $s->{cells} }) {
    $cell{join '|', @$c{qw(group variant mode workers)}} = $c;
}

for my $mode (qw(keepalive handshake)) {
    for my $w (1, 2) {
        for my $v (1 .. 5) {
            my $c = $cell{"main|$v|$mode|$w"};
            my $n = "variant $v, $mode, $w worker(s)";
            ok($c, "$n ran") or next;
            cmp_ok($c->{ok}, '>', 0, "$n: 200s ($c->{ok})");
            is($c->{errors}, 0, "$n: no load generator errors");
            if ($v >= 3) {
                ok($c->{redis}, "$n: Redis counters");
            }
        }
    }
}

sub scripts {
    my ($c) = @_;
    return 0 unless $c && $c->{redis};
    return ($c->{redis}{calls}{evalsha} // 0) + ($c->{redis}{calls}{eval} // 0);
}

for my $w (1, 2) {
    # the cache: every connection presents a device new to its nginx, one
    # script call (facts and sighting); a revoked one adds its event's
    # rate limit and, while the signer is not cached yet, a sighting
    # (docs/performance.md); then no Redis round trip for the requests
    # that follow on the connection
    my $v3 = $cell{"main|3|keepalive|$w"};
    my ($sc, $n, $conns) = (scripts($v3), $v3->{nginx_requests} // 0,
                            $v3->{nginx_connections} // 0);
    cmp_ok($sc, '>', 0, "cached, $w worker(s): Redis asked for new devices");
    cmp_ok($sc, '<=', 3 * $conns,
           "cached, $w worker(s): at most 3 script calls per connection "
           . "($sc for $conns connections)");
    cmp_ok($sc, '<', $n / 4,
           "cached, $w worker(s): far fewer script calls than requests "
           . "($sc for $n)");
    for my $mode (qw(keepalive handshake)) {
        is($cell{"main|3|$mode|$w"}{links_up}, $w,
           "cached, $mode, $w worker(s): every worker's invalidation link up");
    }

    # untracked: the facts read by a script call for every request
    for my $mode (qw(keepalive handshake)) {
        my $v4 = $cell{"main|4|$mode|$w"};
        my ($s4, $n4, $ref) = (scripts($v4), $v4->{nginx_requests} // 0,
                               $v4->{refused} // 0);
        is($v4->{links_up}, 0, "untracked, $mode, $w worker(s): no link");
        cmp_ok($n4, '>', 0, "untracked, $mode, $w worker(s): requests");
        cmp_ok($s4, '>=', $n4, "untracked, $mode, $w worker(s): a script "
               . "call per request ($s4 for $n4)");
        cmp_ok($s4, '<=', $n4 + 2 * $ref, "untracked, $mode, $w worker(s): "
               . "and at most two more per refusal ($ref)");
        cmp_ok($s4, '<=', $n4 + $ref, "untracked, $mode, $w worker(s): "
               . "at most one more per refusal, its event");
    }
}

my $v5 = $cell{'main|5|keepalive|1'};
my $cpr = $v5 && $v5->{redis} ? $v5->{redis}{commands_per_req} : 0;
cmp_ok(abs($cpr - 5), '<', 0.1, "Lua peer: five commands per request ($cpr)");

# revoked devices are refused by the Redis variants, not by stock nginx
my ($ref, $stock_ref) = (0, 0);
for my $w (1, 2) {
    $ref += $cell{"main|$_|handshake|$w"}{status}{403} // 0 for 3, 4, 5;
    $stock_ref += $cell{"main|1|handshake|$w"}{status}{403} // 0;
}
cmp_ok($ref, '>', 0, "revoked devices got 403 from the Redis variants ($ref)");
is($stock_ref, 0, 'stock nginx knows nothing of revocations');

# extras
for my $n (20, 40) {
    my ($c) = grep { $_->{group} eq 'fleet' && $_->{fleet} == $n } @{ $s->{cells} };
    ok($c && $c->{ok} > 0 && $c->{errors} == 0, "fleet size $n answered");
}
for my $g (qw(rev0 revmany)) {
    my ($c) = grep { $_->{group} eq $g } @{ $s->{cells} };
    ok($c && $c->{ok} > 0 && $c->{errors} == 0, "$g answered");
}
for my $g (qw(fleet rev0 revmany)) {
    for my $v (3, 4) {
        ok(grep({ $_->{group} eq $g && $_->{variant} == $v } @{ $s->{cells} }),
           "$g ran with variant $v");
    }
}
for my $v (1, 2, 3) {
    my $c = $cell{"idle|$v|idle|1"};
    ok($c && $c->{held} == 40, "idle connections held, variant $v")
        or diag(explain($c));
    ok($c && defined $c->{bytes_per_conn}, "worker memory measured, variant $v");
}
ok(defined $cell{'idle|3|idle|1'}{redis_bytes_per_device},
   'Redis memory per tracked device measured');
cmp_ok($cell{'idle|3|idle|1'}{redis_tracked_keys} // 0, '>', 0,
       'the idle devices\' keys are in Redis\' tracking table');

# the revocation latency: every revocation refused at the three edges,
# under paced and closed-loop load
for my $load (qw(paced closed)) {
    my $x = $s->{revoke}{$load};
    ok($x, "revocation probe ran, $load load") or next;
    my $p = $x->{probe};
    is($p->{edges}, 3, "$load: three edges");
    is($p->{revocations}, 20, "$load: 20 revocations");
    is($p->{refused_everywhere}, 20, "$load: each refused at every edge");
    is($p->{timeouts} + $p->{errors}, 0, "$load: no timeout, no error");
    is($p->{latency_us}{count}, 60, "$load: a latency per edge and "
       . "revocation");
    cmp_ok($p->{rtt_us}{count}, '>=', 60 * 3, "$load: the round trips of "
           . "the back-to-back requests measured (the resolution)");
    cmp_ok($x->{load_rps}, '>', 0, "$load: background load ran");
    is($x->{load_errors}, 0, "$load: background load without errors");
    cmp_ok($x->{cache}{invalidation}, '>=', 2 * 60, "$load: each edge got "
           . "the invalidations of the SET and the DEL");
}

# memory per cached device: 100 devices once (all misses), then again
# (all hits: nothing asked of Redis)
my ($p1, $p2) = @{ $s->{cache} }{1, 2};
ok($p1 && $p2, 'memory per cached device: both passes ran');
is($p1->{errors}, 0, 'pass 1 without errors');
cmp_ok($p1->{misses}, '>=', 100, "pass 1: every device a miss ($p1->{misses})");
cmp_ok($p1->{redis_tracked_keys}, '>=', 200,
       "pass 1: their facts tracked by Redis ($p1->{redis_tracked_keys} keys)");
is($p2->{misses}, 0, 'pass 2: no miss');
cmp_ok($p2->{hits}, '>=', 100, "pass 2: every device a hit ($p2->{hits})");
is(join(',', grep { /^(evalsha|eval|get|client\|caching)$/ }
              sort keys %{ $p2->{redis_calls} // {} }), '',
   'pass 2: nothing read from Redis');
ok(defined $p1->{uss_bytes_per_device}, 'bytes per cached device measured');

ok(@{ $s->{targets} } >= 8, 'targets evaluated');

ok(!-e "$out/nginx-alerts.log", 'no alert, crit or emerg in any nginx log')
    or diag(`head -20 $out/nginx-alerts.log`);

done_testing();
