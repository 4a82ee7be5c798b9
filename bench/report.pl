#!/usr/bin/perl
# The report of bench/run.sh.
#
#   report.pl DIR          DIR/index.tsv + DIR/runs/* -> DIR/summary.json,
#                          DIR/table.txt (also printed), DIR/table.md,
#                          DIR/bench.png (gnuplot), DIR/plot/*
#   report.pl --line FILE LABEL
#                          one line about one loadgen JSON (progress)
#
# Per run: loadgen's numbers (measured window) and the deltas of the
# snapshots taken before and after it (whole run, warmup included), divided
# by nginx's own request count (stub_status): CPU per request of the nginx
# workers, of redis-server and of the load generator; Redis commands and
# bytes per request.  Per cell (variant, mode, workers): the median over
# the rounds; "spread" is (max - min) / median of the throughput.

use strict;
use warnings;

use JSON::PP;
use List::Util qw(sum max min);

my $json = JSON::PP->new->canonical->pretty;

sub slurp_json {
    my ($f) = @_;
    open my $fh, '<', $f or return;
    local $/;
    my $d = eval { decode_json(<$fh>) };
    close $fh;
    return $d;
}

sub errors_of { my ($d) = @_; return sum(0, values %{ $d->{errors} || {} }) }

sub ok_of {
    my ($d) = @_;
    return sum(0, map { $d->{status}{$_} } grep { /^2/ } keys %{ $d->{status} || {} });
}

if (@ARGV && $ARGV[0] eq '--line') {
    my (undef, $f, $label) = @ARGV;
    my $d = slurp_json($f) or do { print STDERR "  $label: no result\n"; exit 1 };
    my $st = join ', ', map { "$_: $d->{status}{$_}" }
             sort keys %{ $d->{status} || {} };
    if ($d->{mode} eq 'idle') {
        printf STDERR "  %-52s %6d held, %s, %d errors\n", $label,
            $d->{held}, $st || 'no status', errors_of($d);
    } else {
        printf STDERR "  %-52s %9.0f req/s  p50 %6.2f  p99 %6.2f  p99.9 %6.2f ms"
            . "  %s  errors %d\n", $label, $d->{rps}, $d->{latency_ms}{p50},
            $d->{latency_ms}{p99}, $d->{latency_ms}{'p99.9'},
            $st || 'no status', errors_of($d);
    }
    exit 0;
}

my $dir = shift or die "usage: report.pl DIR | --line FILE LABEL\n";

# ------------------------------------------------------------------ input

my %env;
if (open my $f, '<', "$dir/env.txt") {
    while (<$f>) { chomp; $env{$1} = $2 if /^(\w+)=(.*)$/ }
    close $f;
}

my %vname = (
    1 => 'stock',
    2 => 'module chain only',
    3 => 'module+redis recheck 0',
    4 => 'module+redis recheck 10s',
    5 => 'lua peer (resty.redis)',
);

my @runs;
open my $idx, '<', "$dir/index.tsv" or die "$dir/index.tsv: $!\n";
my $hdr = <$idx>;
chomp $hdr;
my @cols = split /\t/, $hdr;
while (<$idx>) {
    chomp;
    my %r;
    @r{@cols} = split /\t/;
    push @runs, \%r;
}
close $idx;

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub worker_sum {      # snapshot pair -> (cpu s, oncpu s, runq s, user s, sys s)
    my ($b, $a) = @_;
    my ($cpu, $on, $rq, $us, $sy) = (0, 0, 0, 0, 0);
    for my $pid (keys %{ $a->{workers} || {} }) {
        my $x = $b->{workers}{$pid} or next;
        my $y = $a->{workers}{$pid};
        $cpu += ($y->{utime} + $y->{stime}) - ($x->{utime} + $x->{stime});
        $us += $y->{utime} - $x->{utime};
        $sy += $y->{stime} - $x->{stime};
        $on += ($y->{oncpu_s} // 0) - ($x->{oncpu_s} // 0);
        $rq += ($y->{runq_wait_s} // 0) - ($x->{runq_wait_s} // 0);
    }
    return ($cpu, $on, $rq, $us, $sy);
}

sub rss_kb {
    my ($s) = @_;
    return sum(0, map { $_->{rss_kb} // 0 } values %{ $s->{workers} || {} });
}

for my $r (@runs) {
    my $id = $r->{id};
    my $d = slurp_json("$dir/runs/$id.json");
    my $b = slurp_json("$dir/runs/$id.before.json");
    my $a = slurp_json("$dir/runs/$id.after.json");
    $r->{missing} = 1, next unless $d && $b && $a;

    $r->{rps} = $d->{rps};
    $r->{requests} = $d->{requests};
    $r->{connections} = $d->{connections};
    $r->{lat} = $d->{latency_ms};
    $r->{hs} = $d->{handshake_ms};
    $r->{status} = $d->{status} || {};
    $r->{ok} = ok_of($d);
    $r->{non2xx} = sum(0, map { $d->{status}{$_} } grep { !/^2/ } keys %{ $d->{status} || {} });
    $r->{errors} = errors_of($d);
    $r->{error_kinds} = $d->{errors};
    $r->{revoked_requests} = $d->{by_role}{revoked}{requests} // 0;
    $r->{held} = $d->{held};
    $r->{loadgen_cpu} = $d->{cpu}{user_s} + $d->{cpu}{sys_s};
    $r->{loadgen_util} = $d->{cpu}{util};

    my $nreq = $a->{status}{requests} - $b->{status}{requests} - 1;
    $nreq = 1 if $nreq < 1;
    $r->{nginx_requests} = $nreq;
    $r->{wall_s} = $a->{time} - $b->{time};
    my ($cpu, $on, $rq, $us, $sy) = worker_sum($b, $a);
    $r->{nginx_cpu_s} = $cpu;
    $r->{nginx_user_us_per_req} = 1e6 * $us / $nreq;
    $r->{nginx_sys_us_per_req} = 1e6 * $sy / $nreq;
    $r->{nginx_oncpu_s} = $on;
    $r->{nginx_runq_s} = $rq;
    $r->{nginx_cores} = $r->{wall_s} > 0 ? $on / $r->{wall_s} : 0;
    $r->{nginx_us_per_req} = 1e6 * ($on || $cpu) / $nreq;
    $r->{loadgen_us_per_req} = $d->{requests}
                               ? 1e6 * $r->{loadgen_cpu} / $d->{requests} : 0;

    if ($a->{redis} && $b->{redis}) {
        my ($ra, $rb) = ($a->{redis}, $b->{redis});
        my $rcpu = ($ra->{used_cpu_user} + $ra->{used_cpu_sys})
                   - ($rb->{used_cpu_user} + $rb->{used_cpu_sys});
        my %calls;
        for my $c (keys %{ $ra->{calls} }) {
            my $n = $ra->{calls}{$c} - ($rb->{calls}{$c} // 0);
            $calls{$c} = $n if $n > 0;
        }
        delete $calls{info};    # the snapshots' own
        $r->{redis} = {
            cpu_s => $rcpu,
            us_per_req => 1e6 * $rcpu / $nreq,
            cores => $r->{wall_s} > 0 ? $rcpu / $r->{wall_s} : 0,
            calls => \%calls,
            calls_per_req => { map { $_ => $calls{$_} / $nreq } keys %calls },
            commands_per_req => sum(0, values %calls) / $nreq,
            lookups_per_req => (($calls{evalsha} // 0) + ($calls{eval} // 0))
                               / $nreq,
            in_bytes_per_req => ($ra->{total_net_input_bytes}
                                 - $rb->{total_net_input_bytes}) / $nreq,
            out_bytes_per_req => ($ra->{total_net_output_bytes}
                                  - $rb->{total_net_output_bytes}) / $nreq,
            used_memory => $ra->{used_memory},
            used_memory_delta => $ra->{used_memory} - $rb->{used_memory},
            keys => $ra->{keys}{db0} // 0,
            keys_delta => ($ra->{keys}{db0} // 0) - ($rb->{keys}{db0} // 0),
        };
    }

    if ($r->{group} eq 'idle') {
        my $h = slurp_json("$dir/runs/$id.hold.json");
        if ($h) {
            $r->{rss_base_kb} = rss_kb($b);
            $r->{rss_hold_kb} = rss_kb($h);
            $r->{bytes_per_conn} = $d->{held}
                ? 1024 * ($r->{rss_hold_kb} - $r->{rss_base_kb}) / $d->{held}
                : undef;
            if ($h->{redis} && $b->{redis}) {
                my $k = ($h->{redis}{keys}{db0} // 0)
                        - ($b->{redis}{keys}{db0} // 0);
                $r->{redis_devices} = $k;
                $r->{redis_bytes_per_device} = $k
                    ? ($h->{redis}{used_memory} - $b->{redis}{used_memory}) / $k
                    : undef;
            }
        }
    }
}

# ------------------------------------------------------------------ cells

my (%cells, @order);
for my $r (grep { !$_->{missing} } @runs) {
    my $key = join '|', $r->{group}, $r->{variant}, $r->{mode}, $r->{workers},
                        $r->{fleet};
    push @order, $key unless $cells{$key};
    push @{ $cells{$key}{runs} }, $r;
}

for my $key (@order) {
    my $c = $cells{$key};
    my @r = @{ $c->{runs} };
    @$c{qw(group variant mode workers fleet)} = split /\|/, $key;
    $c->{name} = $vname{ $c->{variant} };
    $c->{rounds} = scalar @r;
    $c->{rps} = median(map { $_->{rps} } @r);
    $c->{rps_min} = min(map { $_->{rps} } @r);
    $c->{rps_max} = max(map { $_->{rps} } @r);
    $c->{spread_pct} = $c->{rps} ? 100 * ($c->{rps_max} - $c->{rps_min}) / $c->{rps} : 0;
    for my $q (qw(mean p50 p90 p99 p99.9 max)) {
        $c->{latency_ms}{$q} = median(map { $_->{lat}{$q} } @r);
    }
    $c->{requests} = sum(map { $_->{requests} } @r);
    $c->{ok} = sum(map { $_->{ok} } @r);
    $c->{non2xx} = sum(map { $_->{non2xx} } @r);
    $c->{errors} = sum(map { $_->{errors} } @r);
    my %st;
    for my $r (@r) { $st{$_} += $r->{status}{$_} for keys %{ $r->{status} } }
    $c->{status} = \%st;
    $c->{nginx_us_per_req} = median(map { $_->{nginx_us_per_req} } @r);
    $c->{nginx_cores} = median(map { $_->{nginx_cores} } @r);
    $c->{nginx_user_us_per_req} = median(map { $_->{nginx_user_us_per_req} } @r);
    $c->{nginx_sys_us_per_req} = median(map { $_->{nginx_sys_us_per_req} } @r);
    $c->{nginx_runq_s} = median(map { $_->{nginx_runq_s} } @r);
    $c->{loadgen_us_per_req} = median(map { $_->{loadgen_us_per_req} } @r);
    $c->{loadgen_util} = median(map { $_->{loadgen_util} } @r);
    $c->{connections} = sum(map { $_->{connections} // 0 } @r);
    $c->{revoked_requests} = sum(map { $_->{revoked_requests} // 0 } @r);
    if (grep { $_->{redis} } @r) {
        my @rr = map { $_->{redis} } grep { $_->{redis} } @r;
        my %cpr;
        for my $x (@rr) { $cpr{$_} = 1 for keys %{ $x->{calls_per_req} } }
        $c->{redis} = {
            us_per_req => median(map { $_->{us_per_req} } @rr),
            cores => median(map { $_->{cores} } @rr),
            commands_per_req => median(map { $_->{commands_per_req} } @rr),
            lookups_per_req => median(map { $_->{lookups_per_req} } @rr),
            in_bytes_per_req => median(map { $_->{in_bytes_per_req} } @rr),
            out_bytes_per_req => median(map { $_->{out_bytes_per_req} } @rr),
            calls_per_req => { map { my $k = $_; $k => median(map { $_->{calls_per_req}{$k} // 0 } @rr) } keys %cpr },
            used_memory => max(map { $_->{used_memory} } @rr),
            keys => max(map { $_->{keys} } @rr),
        };
    }
    if ($c->{group} eq 'idle') {
        my ($r) = @r;
        $c->{$_} = $r->{$_} for qw(held rss_base_kb rss_hold_kb bytes_per_conn
                                   redis_devices redis_bytes_per_device);
    }
    delete $c->{runs};
    $c->{run_ids} = [ map { $_->{id} } @r ];
}

sub cell { my $k = join '|', @_; return $cells{$k} }

my $fleet = $env{fleet} // '';
my @modes = grep { my $m = $_; grep { $_->{group} eq 'main' && $_->{mode} eq $m } values %cells } qw(keepalive handshake);
my @workers = sort { $a <=> $b } keys %{{ map { $_->{workers} => 1 } grep { $_->{group} eq 'main' } values %cells }};
my @variants = sort { $a <=> $b } keys %{{ map { $_->{variant} => 1 } grep { $_->{group} eq 'main' } values %cells }};

for my $c (grep { $_->{group} eq 'main' } values %cells) {
    my $s = cell('main', 1, $c->{mode}, $c->{workers}, $c->{fleet});
    my $l = cell('main', 5, $c->{mode}, $c->{workers}, $c->{fleet});
    $c->{x_stock} = $s && $s->{rps} ? $c->{rps} / $s->{rps} : undef;
    $c->{x_lua} = $l && $l->{rps} ? $c->{rps} / $l->{rps} : undef;
    $c->{p99_minus_stock_ms} = $s ? $c->{latency_ms}{p99} - $s->{latency_ms}{p99} : undef;
}

# ---------------------------------------------------------------- targets

sub cpu_total {
    my ($c) = @_;
    return $c->{nginx_us_per_req} + ($c->{redis} ? $c->{redis}{us_per_req} : 0)
           + $c->{loadgen_us_per_req};
}

sub cpu_detail {      # variant cell, reference cell, threshold
    my ($c, $s, $min) = @_;
    my $edge = $c->{nginx_us_per_req} ? $s->{nginx_us_per_req} / $c->{nginx_us_per_req} : 0;
    my $box = cpu_total($c) ? cpu_total($s) / cpu_total($c) : 0;
    return sprintf('; by CPU per request: nginx %.1f vs %.1f us -> %.3f%s, '
                   . 'nginx+redis+loadgen %.1f vs %.1f us -> %.3f%s',
                   $c->{nginx_us_per_req}, $s->{nginx_us_per_req}, $edge,
                   $edge >= $min ? ' holds' : ' does not hold',
                   cpu_total($c), cpu_total($s), $box,
                   $box >= $min ? ' holds' : ' does not hold');
}

my @targets;
sub target {
    my ($name, $value, $pass, $detail) = @_;
    push @targets, { target => $name, value => $value,
                     holds => $pass ? JSON::PP::true : JSON::PP::false,
                     detail => $detail };
}

for my $w (@workers) {
    my $wl = $w == 1 ? '1 worker' : "$w workers";
    my $s = cell('main', 1, 'keepalive', $w, $fleet);
    my $v3 = cell('main', 3, 'keepalive', $w, $fleet);
    my $v4 = cell('main', 4, 'keepalive', $w, $fleet);
    my $l = cell('main', 5, 'keepalive', $w, $fleet);
    if ($s && $v4) {
        target("keepalive, recheck 10s: >= 0.95 x stock ($wl)",
               sprintf('%.3f', $v4->{x_stock}), $v4->{x_stock} >= 0.95,
               sprintf('%.0f vs %.0f req/s', $v4->{rps}, $s->{rps})
               . cpu_detail($v4, $s, 0.95));
        target("keepalive, recheck 10s: p99 within 1 ms of stock ($wl)",
               sprintf('%+.2f ms', $v4->{p99_minus_stock_ms}),
               $v4->{p99_minus_stock_ms} <= 1.0,
               sprintf('p99 %.2f vs %.2f ms', $v4->{latency_ms}{p99},
                       $s->{latency_ms}{p99}));
    }
    if ($s && $v3) {
        target("keepalive, recheck 0: >= 0.80 x stock ($wl)",
               sprintf('%.3f', $v3->{x_stock}), $v3->{x_stock} >= 0.80,
               sprintf('%.0f vs %.0f req/s', $v3->{rps}, $s->{rps})
               . cpu_detail($v3, $s, 0.80));
    }
    if ($l && $v3) {
        target("keepalive, recheck 0: >= 1.5 x lua peer ($wl)",
               sprintf('%.3f', $v3->{x_lua}), $v3->{x_lua} >= 1.5,
               sprintf('%.0f vs %.0f req/s', $v3->{rps}, $l->{rps})
               . cpu_detail($v3, $l, 1.5));
    }
    my $hs = cell('main', 1, 'handshake', $w, $fleet);
    for my $v (2, 3, 4) {
        my $h = cell('main', $v, 'handshake', $w, $fleet) or next;
        next unless $hs;
        target("handshake, $vname{$v}: >= 0.90 x stock ($wl)",
               sprintf('%.3f', $h->{x_stock}), $h->{x_stock} >= 0.90,
               sprintf('%.0f vs %.0f req/s', $h->{rps}, $hs->{rps})
               . cpu_detail($h, $hs, 0.90));
    }
}

for my $mode (@modes) {
    my $w = $workers[0] // 1;
    my $v3 = cell('main', 3, $mode, $w, $fleet);
    if ($v3 && $v3->{redis}) {
        my $x = $v3->{redis};
        my $rt = $x->{lookups_per_req};
        target("one Redis round trip per lookup ($mode, recheck 0)",
               sprintf('%.4f EVALSHA/request', $rt),
               abs($rt - 1) <= 0.01 && !($x->{calls_per_req}{eval}),
               sprintf('%.2f commands per request inside the script, '
                       . '%.0f bytes in, %.0f bytes out', $x->{commands_per_req},
                       $x->{in_bytes_per_req}, $x->{out_bytes_per_req}));
    }
    my $v4 = cell('main', 4, $mode, $w, $fleet);
    if ($v4 && $v4->{redis} && $mode eq 'keepalive' && $v4->{requests}) {
        my $exp = ($v4->{connections} + $v4->{revoked_requests})
                  / $v4->{requests};
        my $got = $v4->{redis}{lookups_per_req};
        target('no lookup for a connection whose verdict is fresh '
               . '(keepalive, recheck 10s)',
               sprintf('%.4f lookups/request', $got),
               $got <= $exp * 1.25 + 0.001,
               sprintf('expected <= %.4f: (new connections + requests of '
                       . 'revoked devices) / requests', $exp));
    }
}

my $idle_s = cell('idle', 1, 'idle', 1, $env{idle} // '');
for my $v (2, 4) {
    my $i = cell('idle', $v, 'idle', 1, $env{idle} // '');
    next unless $i && $idle_s && $idle_s->{bytes_per_conn};
    my $ratio = $i->{bytes_per_conn} / $idle_s->{bytes_per_conn};
    target("worker memory per idle connection within 10% of stock "
           . "($vname{$v})",
           sprintf('%.3f', $ratio), $ratio <= 1.10,
           sprintf('%.0f vs %.0f bytes per connection, %d connections',
                   $i->{bytes_per_conn}, $idle_s->{bytes_per_conn},
                   $i->{held}));
}

# ------------------------------------------------------------------ table

sub f { my ($fmt, $v) = @_; return defined $v ? sprintf($fmt, $v) : '-' }

my @out;
my @md;
push @out, sprintf('device_auth bench, %s: %s, %s cores, %s, kernel %s',
                   $env{date} // '?', $env{cpu} // '?', $env{nproc} // '?',
                   $env{os} // '?', $env{kernel} // '?');
push @out, sprintf('nginx %s, %s, redis %s; fleet %s devices (%s revoked), '
                   . 'TLS %s, %s round(s) x %s s (+%s s warmup)%s',
                   $env{nginx} // '?', $env{openssl} // '?',
                   $env{redis} // '?', $fleet, $env{revoked} // '?',
                   $env{tls} // '?', $env{rounds} // '?',
                   $env{duration} // '?', $env{warmup} // '?',
                   $env{quick} ? ', QUICK mode' : '');
push @out, sprintf('load average %s at start, %s at end; %s s in all',
                   $env{loadavg_start} // '?', $env{loadavg_end} // '?',
                   $env{elapsed_s} // '?');
push @out, '';

my $hfmt = '%-26s %9s %5s %7s %7s %7s %8s %7s %4s %6s %6s %7s %7s %7s';
my @hcols = ('variant', 'req/s', 'sprd', 'p50', 'p99', 'p99.9', '2xx',
             'other', 'err', 'xstock', 'xlua', 'nginx', 'redis', 'loadgen');
push @md, '| mode | workers | variant | req/s | spread | p50 ms | p99 ms | p99.9 ms | 2xx | other | errors | × stock | × lua | nginx µs/req | redis µs/req | loadgen µs/req |';
push @md, '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';

for my $mode (@modes) {
    for my $w (@workers) {
        my $c0 = cell('main', 1, $mode, $w, $fleet) // cell('main', $variants[0], $mode, $w, $fleet);
        push @out, sprintf('%s, %d worker%s, %d connections%s', $mode, $w,
                           $w == 1 ? '' : 's',
                           $mode eq 'keepalive' ? $env{conc_keepalive} // 0
                                                : $env{conc_handshake} // 0,
                           $mode eq 'handshake'
                           ? ' (latency: connect + full handshake + request)'
                           : ' (keepalive_requests 1000)');
        push @out, sprintf($hfmt, @hcols);
        push @out, sprintf($hfmt, ('') x 3, '', 'ms', '', '', '', '', '', '',
                           'us/req', 'us/req', 'us/req');
        for my $v (@variants) {
            my $c = cell('main', $v, $mode, $w, $fleet) or next;
            my @row = ("$v $c->{name}", f('%.0f', $c->{rps}),
                       f('%.0f%%', $c->{spread_pct}),
                       f('%.2f', $c->{latency_ms}{p50}),
                       f('%.2f', $c->{latency_ms}{p99}),
                       f('%.2f', $c->{latency_ms}{'p99.9'}),
                       $c->{ok}, $c->{non2xx}, $c->{errors},
                       f('%.3f', $c->{x_stock}), f('%.3f', $c->{x_lua}),
                       f('%.1f', $c->{nginx_us_per_req}),
                       $c->{redis} ? f('%.1f', $c->{redis}{us_per_req}) : '-',
                       f('%.1f', $c->{loadgen_us_per_req}));
            push @out, sprintf($hfmt, @row);
            push @md, '| ' . join(' | ', $mode, $w, @row) . ' |';
        }
        push @out, '';
    }
}

push @out, 'CPU per request: nginx = its workers (on-CPU time from '
           . '/proc/<pid>/schedstat), redis = redis-server (INFO used_cpu),';
push @out, 'loadgen = its own; all divided by the requests nginx counted. '
           . '"other" = non-2xx answers (403 for revoked devices).';
push @out, '';

# where the CPU goes, and what bounds the throughput
push @out, 'CPU per request and cores used (median over rounds; user/sys of the '
           . 'nginx workers from /proc/<pid>/stat)';
my $bfmt = '%-10s %2s %-26s %7s %7s %7s %7s %7s %8s | %6s %6s %6s %6s';
push @out, sprintf($bfmt, 'mode', 'w', 'variant', 'ngx usr', 'ngx sys',
                   'redis', 'loadgen', 'total', '2-core', 'nginx', 'redis',
                   'loadgn', 'sum');
push @out, sprintf($bfmt, '', '', '', 'us', 'us', 'us', 'us', 'us', 'max/s',
                   'cores', 'cores', 'cores', 'cores');
for my $mode (@modes) {
    for my $w (@workers) {
        for my $v (@variants) {
            my $c = cell('main', $v, $mode, $w, $fleet) or next;
            my $rd = $c->{redis} ? $c->{redis}{us_per_req} : 0;
            my $tot = $c->{nginx_us_per_req} + $rd + $c->{loadgen_us_per_req};
            my $rc = $c->{redis} ? $c->{redis}{cores} : 0;
            push @out, sprintf($bfmt, $mode, $w, "$v $c->{name}",
                               f('%.1f', $c->{nginx_user_us_per_req}),
                               f('%.1f', $c->{nginx_sys_us_per_req}),
                               f('%.1f', $rd), f('%.1f', $c->{loadgen_us_per_req}),
                               f('%.1f', $tot),
                               f('%.0f', $tot ? ($env{nproc} || 2) * 1e6 / $tot : undef),
                               f('%.2f', $c->{nginx_cores}), f('%.2f', $rc),
                               f('%.2f', $c->{loadgen_util}),
                               f('%.2f', $c->{nginx_cores} + $rc + $c->{loadgen_util}));
        }
    }
}
push @out, '"2-core max/s" = cores / (total CPU per request): the rate at which '
           . 'nginx, redis-server and the load';
push @out, 'generator together would use every core of this machine.';
push @out, '';

# Redis per request
my @rcells = grep { $_->{group} eq 'main' && $_->{redis} } map { $cells{$_} } @order;
if (@rcells) {
    push @out, 'Redis per request (median over rounds)';
    my $rfmt = '%-10s %2s %-26s %8s %9s %9s %9s %9s  %s';
    push @out, sprintf($rfmt, 'mode', 'w', 'variant', 'lookups', 'commands',
                       'bytes in', 'bytes out', 'redis us', 'commands per request');
    for my $c (@rcells) {
        my $x = $c->{redis};
        my $cp = join ' ', map { sprintf '%s %.3f', $_, $x->{calls_per_req}{$_} }
                 grep { $x->{calls_per_req}{$_} >= 0.0005 }
                 sort keys %{ $x->{calls_per_req} };
        push @out, sprintf($rfmt, $c->{mode}, $c->{workers},
                           "$c->{variant} $c->{name}",
                           f('%.4f', $c->{variant} == 5 ? undef : $x->{lookups_per_req}),
                           f('%.2f', $x->{commands_per_req}),
                           f('%.0f', $x->{in_bytes_per_req}),
                           f('%.0f', $x->{out_bytes_per_req}),
                           f('%.1f', $x->{us_per_req}), $cp);
    }
    push @out, 'lookups = EVALSHA (+EVAL) per request; commands = all command '
               . 'calls Redis counted (the script\'s own included);';
    push @out, 'the Lua peer sends its 5 commands per request as one pipeline '
               . '(one round trip).';
    push @out, '';
}

# extras
my @fl = grep { $_->{group} eq 'fleet' } map { $cells{$_} } @order;
if (@fl) {
    push @out, 'Throughput vs fleet size (module+redis recheck 0, keepalive, '
               . '1 worker; Redis prefilled with a sighting per device)';
    push @out, sprintf('%10s %9s %7s %7s %9s %9s %12s', 'devices', 'req/s',
                       'p99 ms', 'errors', 'nginx us', 'redis us', 'redis keys');
    for my $c (sort { $a->{fleet} <=> $b->{fleet} } @fl) {
        push @out, sprintf('%10d %9.0f %7.2f %7d %9.1f %9.1f %12d', $c->{fleet},
                           $c->{rps}, $c->{latency_ms}{p99}, $c->{errors},
                           $c->{nginx_us_per_req}, $c->{redis}{us_per_req},
                           $c->{redis}{keys});
    }
    push @out, '';
}

my ($r0) = grep { $_->{group} eq 'rev0' } map { $cells{$_} } @order;
my ($rm) = grep { $_->{group} eq 'revmany' } map { $cells{$_} } @order;
if ($r0 && $rm) {
    push @out, sprintf('Revoked keys in Redis (module+redis recheck 0, '
                       . 'keepalive, 1 worker; loaded with redis-cli --pipe in %s s)',
                       $env{revoked_load_s} // '?');
    push @out, sprintf('%-22s %9s %7s %7s %9s %9s %14s', 'revoked keys',
                       'req/s', 'p99 ms', 'errors', 'nginx us', 'redis us',
                       'redis memory');
    for my $p ([ 'fleet only', $r0 ], [ "fleet + $env{revoked_keys}", $rm ]) {
        my $c = $p->[1];
        push @out, sprintf('%-22s %9.0f %7.2f %7d %9.1f %9.1f %11.1f MB',
                           $p->[0], $c->{rps}, $c->{latency_ms}{p99},
                           $c->{errors}, $c->{nginx_us_per_req},
                           $c->{redis}{us_per_req},
                           $c->{redis}{used_memory} / 1048576);
    }
    push @out, sprintf('ratio %.3f', $rm->{rps} / $r0->{rps}) if $r0->{rps};
    push @out, '';
}

my @idle = grep { $_->{group} eq 'idle' } map { $cells{$_} } @order;
if (@idle) {
    push @out, sprintf('Idle device connections (1 worker, RSS of the worker '
                       . 'from /proc, %s connections held)', $env{idle} // '?');
    push @out, sprintf('%-26s %7s %10s %10s %10s %8s %14s', 'variant', 'held',
                       'RSS base', 'RSS held', 'B/conn', 'x stock',
                       'redis B/device');
    for my $c (@idle) {
        push @out, sprintf('%-26s %7d %7.1f MB %7.1f MB %10.0f %8s %14s',
                           "$c->{variant} $c->{name}", $c->{held} // 0,
                           ($c->{rss_base_kb} // 0) / 1024,
                           ($c->{rss_hold_kb} // 0) / 1024,
                           $c->{bytes_per_conn} // 0,
                           $idle_s && $idle_s->{bytes_per_conn}
                           ? sprintf('%.3f', $c->{bytes_per_conn} / $idle_s->{bytes_per_conn})
                           : '-',
                           defined $c->{redis_bytes_per_device}
                           ? sprintf('%.0f (%d dev)', $c->{redis_bytes_per_device},
                                     $c->{redis_devices})
                           : '-');
    }
    push @out, '';
}

if (@targets) {
    push @out, 'Targets of issue 4 (yes/NO by the measured throughput; "by CPU per '
               . 'request": the same ratio from the';
    push @out, 'CPU each request cost nginx alone (the capacity of an edge whose '
               . 'Redis runs elsewhere) and nginx+redis+loadgen';
    push @out, '(this host), which other jobs on the machine disturb far less than '
               . 'the throughput)';
    for my $t (@targets) {
        push @out, sprintf('  %-4s %-66s %s  (%s)', $t->{holds} ? 'yes' : 'NO',
                           $t->{target}, $t->{value}, $t->{detail});
    }
    push @out, '';
}

my $errors = sum(0, map { $_->{errors} } grep { !$_->{missing} } @runs);
my @missing = map { $_->{id} } grep { $_->{missing} } @runs;
push @out, sprintf('%d runs, %d load generator errors%s', scalar @runs,
                   $errors, @missing ? ', MISSING: ' . join(' ', @missing) : '');
push @out, "nginx alerts: see $dir/nginx-alerts.log" if -s "$dir/nginx-alerts.log";

open my $t, '>', "$dir/table.txt" or die;
print $t join("\n", @out), "\n";
close $t;
open $t, '>', "$dir/table.md" or die;
print $t join("\n", @md), "\n";
close $t;
print join("\n", @out), "\n";

# ------------------------------------------------------------------- JSON

my %summary = (
    env => \%env,
    cells => [ map { $cells{$_} } @order ],
    targets => \@targets,
    runs => [ map { my %x = %$_; \%x } @runs ],
    errors => $errors,
    missing => \@missing,
);
open $t, '>', "$dir/summary.json" or die;
print $t $json->encode(\%summary);
close $t;

# ------------------------------------------------------------------- plot

mkdir "$dir/plot";
my @pm;
for my $mode (@modes) {
    open my $p, '>', "$dir/plot/$mode.dat" or die;
    print $p "# variant";
    print $p " rps_w$_ rps_min_w$_ rps_max_w$_ p99_w$_" for @workers;
    print $p "\n";
    for my $v (@variants) {
        print $p qq{"$v $vname{$v}"};
        for my $w (@workers) {
            my $c = cell('main', $v, $mode, $w, $fleet);
            printf $p ' %.1f %.1f %.1f %.3f', $c ? ($c->{rps}, $c->{rps_min},
                      $c->{rps_max}, $c->{latency_ms}{p99}) : (0, 0, 0, 0);
        }
        print $p "\n";
    }
    close $p;
    push @pm, $mode;
}

if (@pm && `sh -c 'command -v gnuplot'`) {
    my $nw = @workers;
    open my $g, '>', "$dir/plot/bench.gp" or die;
    print $g <<"EOF";
set terminal pngcairo size 1500,950 font "sans,10" noenhanced
set output '$dir/bench.png'
set multiplot layout 2,${\ scalar @pm} title "device_auth bench: $env{cpu}, $env{nproc} cores, fleet $fleet, TLS $env{tls}, median of $env{rounds} round(s), bars: min..max" font "sans,12"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set xtics rotate by -25 nomirror
set key outside top center horizontal
EOF
    # throughput row, then p99 row
    for my $mode (@pm) {
        my @pl;
        for my $i (0 .. $#workers) {
            my $b = 2 + 4 * $i;
            push @pl, sprintf(q{'%s' using %d:%d:%d%s title '%s'},
                              "$dir/plot/$mode.dat", $b, $b + 1, $b + 2,
                              $i == 0 ? ':xtic(1)' : '',
                              $workers[$i] == 1 ? '1 worker' : "$workers[$i] workers");
        }
        print $g "set title '$mode: throughput (requests/s)'\n";
        print $g 'plot ', join(', ', @pl), "\n";
    }
    print $g "set style histogram clustered gap 2\n";
    for my $mode (@pm) {
        my @pl;
        for my $i (0 .. $#workers) {
            my $b = 5 + 4 * $i;
            push @pl, sprintf(q{'%s' using %d%s title '%s'},
                              "$dir/plot/$mode.dat", $b,
                              $i == 0 ? ':xtic(1)' : '',
                              $workers[$i] == 1 ? '1 worker' : "$workers[$i] workers");
        }
        print $g "set title '$mode: p99 latency (ms)'\n";
        print $g 'plot ', join(', ', @pl), "\n";
    }
    print $g "unset multiplot\n";
    close $g;
    system('gnuplot', "$dir/plot/bench.gp") == 0
        or warn "gnuplot failed\n";
}
