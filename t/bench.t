#!/usr/bin/perl

# Smoke test of the benchmark harness (bench/run.sh, issue 4): its quick
# mode with a tiny fleet and very short runs, every variant and both
# modes and worker counts, and the extra measurements.  Checks that every
# variant answered (200s, no load generator errors), that the Redis
# counting works (one EVALSHA per request with recheck 0) and that the
# report, the JSON and the plot were written.  No timing is asserted: the
# numbers of such short runs mean nothing.
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
plan skip_all => 'no bench/loadgen (make -C bench)' unless -x "$repo/bench/loadgen";
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
like($table, qr/Targets of issue 4/, 'table has the targets');
like($table, qr/lua peer/, 'table has the Lua peer');
like(do { local (@ARGV, $/) = "$out/stdout.txt"; <> } // '',
     qr/Targets of issue 4/, 'table printed');

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

# the counting itself: with recheck 0 every request is one EVALSHA
my $v3 = $cell{'main|3|keepalive|1'};
my $lpr = $v3 && $v3->{redis} ? $v3->{redis}{lookups_per_req} : 0;
cmp_ok(abs($lpr - 1), '<', 0.02, "recheck 0: one lookup per request ($lpr)");
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
for my $v (1, 2, 4) {
    my $c = $cell{"idle|$v|idle|1"};
    ok($c && $c->{held} == 40, "idle connections held, variant $v")
        or diag(explain($c));
    ok($c && defined $c->{bytes_per_conn}, "worker memory measured, variant $v");
}
ok(defined $cell{'idle|4|idle|1'}{redis_bytes_per_device},
   'Redis memory per tracked device measured');
ok(@{ $s->{targets} } >= 10, 'targets evaluated');

ok(!-e "$out/nginx-alerts.log", 'no alert, crit or emerg in any nginx log')
    or diag(`head -20 $out/nginx-alerts.log`);

done_testing();
