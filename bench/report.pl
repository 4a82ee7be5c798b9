#!/usr/bin/perl
# The report of bench/run.sh.
#
#   report.pl DIR          DIR/index.tsv + DIR/runs/* -> DIR/summary.json,
#                          DIR/table.txt (also printed), DIR/table.md,
#                          DIR/bench.png (gnuplot), DIR/plot/*
#   report.pl --line FILE LABEL
#                          one line about one loadgen JSON (progress)
#   report.pl --revoke FILE LABEL
#                          one line about one bench/revprobe JSON
#
# Per run: loadgen's numbers (measured window) and the deltas of the
# snapshots taken before and after it (whole run, warmup included), divided
# by nginx's own request count (stub_status): CPU per request of the nginx
# workers, of redis-server and of the load generator; Redis commands and
# bytes per request and per connection (nginx's accepted connections); the
# module's cache events per request.  Per cell (variant, mode, workers):
# the median over the rounds; "spread" is (max - min) / median of the
# throughput.  The revocation latency runs (group "revoke": the probe's
# JSON, its three edges' snapshots and background loads) and the memory
# per cached device (group "cache") have their own sections.

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

sub ms { my ($us) = @_; return defined $us ? $us / 1000 : 0 }

if (@ARGV && $ARGV[0] eq '--revoke') {
    my (undef, $f, $label) = @ARGV;
    my $d = slurp_json($f) or do { print STDERR "  $label: no result\n"; exit 1 };
    printf STDERR "  %-52s %d/%d refused at every edge, %d timeouts, %d errors;"
        . " write to 403 p50 %.2f p99 %.2f max %.2f ms (request round trip"
        . " p50 %.2f ms)\n", $label, $d->{refused_everywhere},
        $d->{revocations}, $d->{timeouts}, $d->{errors},
        ms($d->{latency_us}{p50}), ms($d->{latency_us}{p99}),
        ms($d->{latency_us}{max}), ms($d->{rtt_us}{p50});
    exit 0;
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
    3 => 'module+redis cached',
    4 => 'module+redis untracked',
    5 => 'lua peer (resty.redis)',
);

my $M = 'nginx_device_auth_';

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

sub uss_kb {
    my ($s) = @_;
    return sum(0, map { $_->{uss_kb} // 0 } values %{ $s->{workers} || {} });
}

sub metrics_delta {   # snapshot pair -> { sample => after - before }
    my ($b, $a) = @_;
    return undef unless $a->{metrics} && $b->{metrics};
    my %d;
    for my $k (keys %{ $a->{metrics} }) {
        $d{$k} = $a->{metrics}{$k} - ($b->{metrics}{$k} // 0);
    }
    return \%d;
}

sub cache_events {    # metrics delta -> { hit => n, miss => n, ... }
    my ($md) = @_;
    return undef unless $md;
    my %c;
    for my $k (keys %$md) {
        $c{$1} = $md->{$k} if $k =~ /^${M}cache_total\{event="(\w+)"\}$/;
    }
    return \%c;
}

sub redis_delta {     # Redis INFO pair -> CPU s, calls by command, bytes
    my ($rb, $ra) = @_;
    my %calls;
    for my $c (keys %{ $ra->{calls} }) {
        my $n = $ra->{calls}{$c} - ($rb->{calls}{$c} // 0);
        $calls{$c} = $n if $n > 0;
    }
    delete $calls{info};    # the snapshots' own
    return {
        cpu_s => ($ra->{used_cpu_user} + $ra->{used_cpu_sys})
                 - ($rb->{used_cpu_user} + $rb->{used_cpu_sys}),
        calls => \%calls,
        in_bytes => $ra->{total_net_input_bytes} - $rb->{total_net_input_bytes},
        out_bytes => $ra->{total_net_output_bytes}
                     - $rb->{total_net_output_bytes},
    };
}

my (%revoke, %cache);

for my $r (@runs) {
    my $id = $r->{id};

    if ($r->{group} eq 'revoke') {
        my $d = slurp_json("$dir/runs/$id.json");
        $r->{missing} = 1, next unless $d;
        my @inst = split / /, $r->{instance};
        my %x = (probe => $d, load => $r->{mode} =~ s/^revoke-//r,
                 conc => $r->{conc}, edges => scalar @inst);
        my ($rps, $lerr, $cpu, $wall) = (0, 0, 0, 0);
        my (@p99, %md);
        for my $i (@inst) {
            my $l = slurp_json("$dir/runs/$id.load-$i.json");
            if ($l) {
                $rps += $l->{rps};
                $lerr += errors_of($l);
                push @p99, $l->{latency_ms}{p99};
            }
            my $b = slurp_json("$dir/runs/$id.$i.before.json");
            my $a = slurp_json("$dir/runs/$id.$i.after.json");
            next unless $a && $b;
            $cpu += (worker_sum($b, $a))[1];
            $wall = $a->{time} - $b->{time};
            my $m = metrics_delta($b, $a) || {};
            $md{$_} += $m->{$_} for keys %$m;
            if ($a->{redis} && $b->{redis}) {
                $x{redis} = redis_delta($b->{redis}, $a->{redis});
            }
        }
        $x{load_rps} = $rps;
        $x{load_errors} = $lerr;
        $x{load_p99_ms} = max(@p99) if @p99;
        $x{nginx_cores} = $wall ? $cpu / $wall : 0;
        $x{redis_cores} = $wall && $x{redis} ? $x{redis}{cpu_s} / $wall : 0;
        $x{wall_s} = $wall;
        $x{cache} = cache_events(\%md);
        $revoke{ $x{load} } = \%x;
        $r->{errors} = $lerr + $d->{errors};
        $r->{special} = 1;
        next;
    }
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

    # the after snapshot's own requests and connections: the status page,
    # and the metrics page before it
    my $own = 1 + ($a->{metrics} ? 1 : 0);
    my $nreq = $a->{status}{requests} - $b->{status}{requests} - $own;
    $nreq = 1 if $nreq < 1;
    $r->{nginx_requests} = $nreq;
    my $nconn = $a->{status}{accepts} - $b->{status}{accepts} - $own;
    $nconn = 1 if $nconn < 1;
    $r->{nginx_connections} = $nconn;
    if (my $md = metrics_delta($b, $a)) {
        my $ce = cache_events($md);
        $r->{cache_per_req} = { map { $_ => $ce->{$_} / $nreq } keys %$ce };
        $r->{refused} = sum(0, map { $md->{$_} }
                               grep { /^${M}decisions_total\{result="rejected"/ }
                               keys %$md);
        $r->{links_up} = $a->{metrics}{"${M}invalidation_links_up"};
        $r->{redis_ready} = $a->{metrics}{"${M}redis_connections_ready"};
    }
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
        my $x = redis_delta($rb, $ra);
        my $rcpu = $x->{cpu_s};
        my %calls = %{ $x->{calls} };
        my $ncmd = sum(0, values %calls);
        my $scripts = ($calls{evalsha} // 0) + ($calls{eval} // 0);
        $r->{redis} = {
            cpu_s => $rcpu,
            us_per_req => 1e6 * $rcpu / $nreq,
            us_per_conn => 1e6 * $rcpu / $nconn,
            cores => $r->{wall_s} > 0 ? $rcpu / $r->{wall_s} : 0,
            calls => \%calls,
            calls_per_req => { map { $_ => $calls{$_} / $nreq } keys %calls },
            commands_per_req => $ncmd / $nreq,
            commands_per_conn => $ncmd / $nconn,
            lookups_per_req => $scripts / $nreq,
            lookups_per_conn => $scripts / $nconn,
            in_bytes_per_req => $x->{in_bytes} / $nreq,
            out_bytes_per_req => $x->{out_bytes} / $nreq,
            in_bytes_per_conn => $x->{in_bytes} / $nconn,
            out_bytes_per_conn => $x->{out_bytes} / $nconn,
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
                $r->{redis_tracked_keys} = ($h->{redis}{tracking_total_keys}
                                            // 0)
                    - ($b->{redis}{tracking_total_keys} // 0);
            }
        }
    }

    if ($r->{group} eq 'cache') {
        my $n = $r->{fleet} || 1;
        my $ce = cache_events(metrics_delta($b, $a)) || {};
        my %x = (
            devices => $r->{fleet},
            connections => $d->{connections},
            ok => $r->{ok},
            non2xx => $r->{non2xx},
            errors => $r->{errors},
            misses => $ce->{miss} // 0,
            hits => $ce->{hit} // 0,
            evictions => $ce->{eviction} // 0,
            uss_kb => [ uss_kb($b), uss_kb($a) ],
            rss_kb => [ rss_kb($b), rss_kb($a) ],
            uss_bytes_per_device => 1024 * (uss_kb($a) - uss_kb($b)) / $n,
            rss_bytes_per_device => 1024 * (rss_kb($a) - rss_kb($b)) / $n,
        );
        if ($a->{redis} && $b->{redis}) {
            my ($ra, $rb) = ($a->{redis}, $b->{redis});
            $x{redis_bytes_per_device} = ($ra->{used_memory}
                                          - $rb->{used_memory}) / $n;
            $x{redis_keys} = ($ra->{keys}{db0} // 0) - ($rb->{keys}{db0} // 0);
            $x{redis_tracked_keys} = ($ra->{tracking_total_keys} // 0)
                                     - ($rb->{tracking_total_keys} // 0);
            $x{redis_calls} = $r->{redis}{calls};
        }
        $cache{ $r->{round} } = \%x;
        $r->{special} = 1;
    }
}

# ------------------------------------------------------------------ cells

my (%cells, @order);
for my $r (grep { !$_->{missing} && !$_->{special} } @runs) {
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
    $c->{nginx_connections} = sum(map { $_->{nginx_connections} // 0 } @r);
    $c->{nginx_requests} = sum(map { $_->{nginx_requests} // 0 } @r);
    $c->{refused} = sum(map { $_->{refused} // 0 } @r);
    if (grep { $_->{cache_per_req} } @r) {
        my @cr = map { $_->{cache_per_req} } grep { $_->{cache_per_req} } @r;
        my %ev;
        for my $x (@cr) { $ev{$_} = 1 for keys %$x }
        $c->{cache_per_req} = { map { my $k = $_; $k => median(map { $_->{$k} // 0 } @cr) } keys %ev };
        $c->{links_up} = min(map { $_->{links_up} // 0 } grep { $_->{cache_per_req} } @r);
    }
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
            us_per_conn => median(map { $_->{us_per_conn} } @rr),
            commands_per_conn => median(map { $_->{commands_per_conn} } @rr),
            lookups_per_conn => median(map { $_->{lookups_per_conn} } @rr),
            in_bytes_per_conn => median(map { $_->{in_bytes_per_conn} } @rr),
            out_bytes_per_conn => median(map { $_->{out_bytes_per_conn} } @rr),
            # all rounds together: exact counts for the checks
            calls => { map { my $k = $_; $k => sum(map { $_->{calls}{$k} // 0 } @rr) } keys %cpr },
            calls_per_req => { map { my $k = $_; $k => median(map { $_->{calls_per_req}{$k} // 0 } @rr) } keys %cpr },
            used_memory => max(map { $_->{used_memory} } @rr),
            keys => max(map { $_->{keys} } @rr),
        };
    }
    if ($c->{group} eq 'idle') {
        my ($r) = @r;
        $c->{$_} = $r->{$_} for qw(held rss_base_kb rss_hold_kb bytes_per_conn
                                   redis_devices redis_bytes_per_device
                                   redis_tracked_keys);
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

my (@targets, @checks);
sub target {
    my ($name, $value, $pass, $detail) = @_;
    push @targets, { target => $name, value => $value,
                     holds => $pass ? JSON::PP::true : JSON::PP::false,
                     detail => $detail };
}
sub check {
    my ($name, $value, $pass, $detail) = @_;
    push @checks, { check => $name, value => $value,
                    holds => $pass ? JSON::PP::true : JSON::PP::false,
                    detail => $detail };
}

# issue 10: the module with Redis, default settings (variant 3), next to
# stock; the revocation latency
for my $w (@workers) {
    my $wl = $w == 1 ? '1 worker' : "$w workers";
    my $s = cell('main', 1, 'keepalive', $w, $fleet);
    my $v3 = cell('main', 3, 'keepalive', $w, $fleet);
    if ($s && $v3) {
        target("keepalive, $vname{3}: >= 0.95 x stock ($wl)",
               sprintf('%.3f', $v3->{x_stock}), $v3->{x_stock} >= 0.95,
               sprintf('%.0f vs %.0f req/s', $v3->{rps}, $s->{rps})
               . cpu_detail($v3, $s, 0.95));
    }
    if ($v3 && $v3->{redis}) {
        my $x = $v3->{redis};
        target("keepalive, $vname{3}: <= 1 us of Redis CPU per request "
               . "($wl)", sprintf('%.3f us', $x->{us_per_req}),
               $x->{us_per_req} <= 1.0,
               sprintf('%.4f commands, %.1f bytes in, %.1f bytes out per '
                       . 'request; %.1f us of Redis CPU per connection',
                       $x->{commands_per_req}, $x->{in_bytes_per_req},
                       $x->{out_bytes_per_req}, $x->{us_per_conn}));
    }
    my $hs = cell('main', 1, 'handshake', $w, $fleet);
    my $h3 = cell('main', 3, 'handshake', $w, $fleet);
    if ($hs && $h3) {
        target("handshake, $vname{3}: >= 0.90 x stock ($wl)",
               sprintf('%.3f', $h3->{x_stock}), $h3->{x_stock} >= 0.90,
               sprintf('%.0f vs %.0f req/s', $h3->{rps}, $hs->{rps})
               . cpu_detail($h3, $hs, 0.90));
    }
}

for my $load (qw(paced closed)) {
    my $x = $revoke{$load} or next;
    my $p = $x->{probe};
    my $n = $p->{refused_everywhere};
    my $ok = $p->{latency_us}{p99} < 10000 && $n >= 200
             && $p->{timeouts} == 0 && $p->{errors} == 0;
    target("revocation latency, 3 edges, $load load: p99 < 10 ms over "
           . ">= 200 revocations",
           sprintf('p99 %.2f ms', ms($p->{latency_us}{p99})), $ok,
           sprintf('%d revocations refused at every edge, %d timeouts; write '
                   . 'to first 403 per edge p50 %.2f, max %.2f ms; at all '
                   . 'three p50 %.2f, p99 %.2f ms; resolution (request round '
                   . 'trip) p50 %.2f ms; background %.0f req/s',
                   $n, $p->{timeouts}, ms($p->{latency_us}{p50}),
                   ms($p->{latency_us}{max}), ms($p->{all_edges_us}{p50}),
                   ms($p->{all_edges_us}{p99}), ms($p->{rtt_us}{p50}),
                   $x->{load_rps}));
}

# what the counters must show (also asserted by t/bench.t)
for my $mode (@modes) {
    for my $w (@workers) {
        my $wl = $w == 1 ? '1 worker' : "$w workers";
        my $v3 = cell('main', 3, $mode, $w, $fleet);
        if ($v3 && $v3->{redis} && $mode eq 'keepalive') {
            my $x = $v3->{redis};
            check("no Redis round trip for cached facts and a fresh sighting "
                  . "($mode, $wl)",
                  sprintf('%.4f scripts/request', $x->{lookups_per_req}),
                  $x->{lookups_per_conn} <= 1.1,
                  sprintf('%.2f script calls per connection (a new device '
                          . 'per connection: one miss each; events of '
                          . 'revoked devices), %d requests per connection',
                          $x->{lookups_per_conn},
                          $v3->{nginx_requests}
                          / ($v3->{nginx_connections} || 1)));
        }
        if ($v3 && defined $v3->{links_up}) {
            check("invalidation link up in every worker ($vname{3}, $mode, "
                  . "$wl)", $v3->{links_up}, $v3->{links_up} == $w, '');
        }
        my $v4 = cell('main', 4, $mode, $w, $fleet);
        if ($v4 && $v4->{redis}) {
            # every request reads its facts; a refusal may add its event's
            # rate limit (a script call too)
            my $x = $v4->{redis};
            my $n = $v4->{nginx_requests} || 1;
            my $sc = ($x->{calls}{evalsha} // 0) + ($x->{calls}{eval} // 0);
            check("one script call per request, untracked ($mode, $wl)",
                  sprintf('%.4f scripts/request', $sc / $n),
                  $sc >= $n && $sc <= $n + $v4->{refused}
                  && ($v4->{links_up} // 1) == 0,
                  sprintf('%d scripts for %d requests, %d of them refused '
                          . '(at most one event each)%s; invalidation links '
                          . 'up: %s', $sc, $n, $v4->{refused},
                          $sc > $n + $v4->{refused}
                          ? sprintf(': %d more', $sc - $n - $v4->{refused})
                          : '', $v4->{links_up} // '?'));
        }
        my $hs = cell('main', 1, $mode, $w, $fleet);
        my $h2 = cell('main', 2, $mode, $w, $fleet);
        if ($mode eq 'handshake' && $hs && $h2) {
            check("handshake, $vname{2}: >= 0.90 x stock ($wl)",
                  sprintf('%.3f', $h2->{x_stock}), $h2->{x_stock} >= 0.90,
                  sprintf('%.0f vs %.0f req/s', $h2->{rps}, $hs->{rps})
                  . cpu_detail($h2, $hs, 0.90));
        }
    }
}

my $idle_s = cell('idle', 1, 'idle', 1, $env{idle} // '');
for my $v (2, 3) {
    my $i = cell('idle', $v, 'idle', 1, $env{idle} // '');
    next unless $i && $idle_s && $idle_s->{bytes_per_conn};
    my $ratio = $i->{bytes_per_conn} / $idle_s->{bytes_per_conn};
    check("worker memory per idle connection within 10% of stock "
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

# Redis per request and per connection, and what one Redis can serve
my @rcells = grep { $_->{group} eq 'main' && $_->{redis} } map { $cells{$_} } @order;
if (@rcells) {
    push @out, 'Redis per request and per connection (median over rounds)';
    my $rfmt = '%-10s %2s %-26s %8s %8s %8s %8s %8s | %7s %8s %8s %8s %8s | %10s';
    push @out, sprintf($rfmt, '', '', '', 'per', 'request', '', '', '',
                       'per', 'connec-', 'tion', '', '', 'one Redis');
    push @out, sprintf($rfmt, 'mode', 'w', 'variant', 'scripts', 'commands',
                       'bytes in', 'out', 'redis us', 'scripts', 'commands',
                       'bytes in', 'out', 'redis us', 'max req/s');
    for my $c (@rcells) {
        my $x = $c->{redis};
        push @out, sprintf($rfmt, $c->{mode}, $c->{workers},
                           "$c->{variant} $c->{name}",
                           f('%.4f', $c->{variant} == 5 ? undef : $x->{lookups_per_req}),
                           f('%.4f', $x->{commands_per_req}),
                           f('%.1f', $x->{in_bytes_per_req}),
                           f('%.1f', $x->{out_bytes_per_req}),
                           f('%.3f', $x->{us_per_req}),
                           f('%.2f', $c->{variant} == 5 ? undef : $x->{lookups_per_conn}),
                           f('%.2f', $x->{commands_per_conn}),
                           f('%.0f', $x->{in_bytes_per_conn}),
                           f('%.0f', $x->{out_bytes_per_conn}),
                           f('%.1f', $x->{us_per_conn}),
                           f('%.0f', $x->{us_per_req} > 0 ? 1e6 / $x->{us_per_req} : undef));
    }
    push @out, 'scripts = EVALSHA (+EVAL); commands = all command calls Redis '
               . 'counted (those inside scripts included);';
    push @out, 'per connection = per connection nginx accepted; "one Redis max '
               . 'req/s" = 1 s / (Redis CPU per request): the checked';
    push @out, 'requests per second one Redis core serves for the whole fleet '
               . 'at this mix of connections and requests.';
    push @out, 'Commands per request:';
    for my $c (@rcells) {
        my $x = $c->{redis};
        my $cp = join ' ', map { sprintf '%s %.4f', $_, $x->{calls_per_req}{$_} }
                 grep { $x->{calls_per_req}{$_} >= 0.00005 }
                 sort keys %{ $x->{calls_per_req} };
        push @out, sprintf('  %-10s %2s %-26s %s', $c->{mode}, $c->{workers},
                           "$c->{variant} $c->{name}", $cp);
    }
    push @out, '';
}

# the module's cache, per request
my @ccells = grep { $_->{group} eq 'main' && $_->{cache_per_req}
                    && $_->{variant} =~ /^[34]$/ } map { $cells{$_} } @order;
if (@ccells) {
    push @out, 'The module\'s device state cache (nginx_device_auth_cache_total '
               . 'per request, median over rounds)';
    my $cfmt = '%-10s %2s %-26s %8s %8s %8s %8s %9s';
    push @out, sprintf($cfmt, 'mode', 'w', 'variant', 'hit', 'miss',
                       'invalid.', 'evict.', 'links up');
    for my $c (@ccells) {
        my $x = $c->{cache_per_req};
        push @out, sprintf($cfmt, $c->{mode}, $c->{workers},
                           "$c->{variant} $c->{name}",
                           map({ f('%.4f', $x->{$_} // 0) }
                               qw(hit miss invalidation eviction)),
                           $c->{links_up} // '-');
    }
    push @out, 'hit = decided from facts held (untracked: the facts read for '
               . 'the request); miss = Redis asked (or an operation in';
    push @out, 'flight joined); links up = workers with an invalidation link '
               . '(the lowest over the rounds).';
    push @out, '';
}

# revocation latency
if (%revoke) {
    push @out, 'Revocation latency: Redis SET to the first 403 at each of 3 '
               . 'edges (module, default settings, 1 worker each),';
    push @out, 'one Redis; bench/revprobe, requests back to back on one '
               . 'connection per edge; background load from loadgen';
    my $vfmt = '%-7s %9s %6s %5s %5s | %6s %6s %6s %6s | %6s %6s | %6s %6s | %6s %6s %6s';
    push @out, sprintf($vfmt, '', 'backgrnd', 'revoc-', '', '', 'per', 'edge',
                       '', '', 'all 3', '', 'resolu-', 'tion', 'cores', '', '');
    push @out, sprintf($vfmt, 'load', 'req/s', 'ations', 't/o', 'err',
                       'p50 ms', 'p90', 'p99', 'max', 'p50', 'p99', 'p50',
                       'p99', 'nginx', 'redis', 'inval.');
    for my $load (qw(paced closed)) {
        my $x = $revoke{$load} or next;
        my $p = $x->{probe};
        push @out, sprintf($vfmt, $load, f('%.0f', $x->{load_rps}),
                           $p->{refused_everywhere}, $p->{timeouts},
                           $p->{errors} + $x->{load_errors},
                           f('%.2f', ms($p->{latency_us}{p50})),
                           f('%.2f', ms($p->{latency_us}{p90})),
                           f('%.2f', ms($p->{latency_us}{p99})),
                           f('%.2f', ms($p->{latency_us}{max})),
                           f('%.2f', ms($p->{all_edges_us}{p50})),
                           f('%.2f', ms($p->{all_edges_us}{p99})),
                           f('%.3f', ms($p->{rtt_us}{p50})),
                           f('%.2f', ms($p->{rtt_us}{p99})),
                           f('%.2f', $x->{nginx_cores}),
                           f('%.2f', $x->{redis_cores}),
                           $x->{cache} ? $x->{cache}{invalidation} // 0 : '-');
    }
    push @out, sprintf('paced: %s requests/s per edge asked for (%s '
                       . 'connections each); closed: as fast as the answers '
                       . 'come. Latency = from', $env{revoke_rate} // '?',
                       $env{revoke_conc} // '?');
    push @out, 'writing the SET to the arrival of the first 403, an upper '
               . 'bound: the edge refused within that request\'s round trip';
    push @out, '(resolution = round trip of the probe\'s back-to-back '
               . 'requests); "all 3" = until the last edge refused; t/o = no';
    push @out, '403 within 2 s; inval. = invalidations the three edges '
               . 'received.';
    push @out, '';
}

# memory per cached device
if (%cache) {
    push @out, sprintf('Worker memory per cached device (1 worker, default '
                       . 'settings; %s devices seen once, then again)',
                       $env{cache_devices} // '?');
    my $mfmt = '%-22s %7s %7s %7s %6s %11s %11s %10s %10s %8s %8s';
    push @out, sprintf($mfmt, 'pass', 'devices', 'misses', 'hits', 'errors',
                       'USS MB', 'RSS MB', 'USS B/dev', 'RSS B/dev',
                       'redis', 'tracked');
    push @out, sprintf($mfmt, '', '', '', '', '', 'before>after',
                       'before>after', '', '', 'B/dev', 'keys');
    for my $pass (sort keys %cache) {
        my $x = $cache{$pass};
        push @out, sprintf($mfmt,
                           $pass == 1 ? '1: all new (misses)' : '2: again (hits)',
                           $x->{devices}, $x->{misses}, $x->{hits},
                           $x->{errors},
                           sprintf('%.1f>%.1f', $x->{uss_kb}[0] / 1024,
                                   $x->{uss_kb}[1] / 1024),
                           sprintf('%.1f>%.1f', $x->{rss_kb}[0] / 1024,
                                   $x->{rss_kb}[1] / 1024),
                           f('%.0f', $x->{uss_bytes_per_device}),
                           f('%.0f', $x->{rss_bytes_per_device}),
                           f('%.0f', $x->{redis_bytes_per_device}),
                           $x->{redis_tracked_keys} // '-');
    }
    push @out, 'USS = the worker\'s private memory (smaps_rollup); B/dev = '
               . 'growth / devices; redis = used_memory growth / devices';
    push @out, '(the sighting keys and the tracking table); tracked = growth '
               . 'of Redis\' tracking table (tracking_total_keys).';
    push @out, '';
}

# extras
my @fl = grep { $_->{group} eq 'fleet' } map { $cells{$_} } @order;
if (@fl) {
    push @out, 'Throughput vs fleet size (keepalive, 1 worker; Redis '
               . 'prefilled with a sighting per device)';
    push @out, sprintf('%-26s %10s %9s %7s %7s %9s %9s %12s', 'variant',
                       'devices', 'req/s', 'p99 ms', 'errors', 'nginx us',
                       'redis us', 'redis keys');
    for my $c (sort { $a->{variant} <=> $b->{variant}
                      || $a->{fleet} <=> $b->{fleet} } @fl) {
        push @out, sprintf('%-26s %10d %9.0f %7.2f %7d %9.1f %9.2f %12d',
                           "$c->{variant} $c->{name}", $c->{fleet},
                           $c->{rps}, $c->{latency_ms}{p99}, $c->{errors},
                           $c->{nginx_us_per_req}, $c->{redis}{us_per_req},
                           $c->{redis}{keys});
    }
    push @out, '';
}

my @revk = grep { $_->{group} eq 'rev0' || $_->{group} eq 'revmany' }
           map { $cells{$_} } @order;
if (@revk) {
    push @out, sprintf('Revoked keys in Redis (keepalive, 1 worker; loaded '
                       . 'with redis-cli --pipe in %s s)',
                       $env{revoked_load_s} // '?');
    push @out, sprintf('%-26s %-22s %9s %7s %7s %9s %9s %14s', 'variant',
                       'revoked keys', 'req/s', 'p99 ms', 'errors',
                       'nginx us', 'redis us', 'redis memory');
    for my $v (3, 4) {
        my ($r0) = grep { $_->{group} eq 'rev0' && $_->{variant} == $v } @revk;
        my ($rm) = grep { $_->{group} eq 'revmany' && $_->{variant} == $v } @revk;
        next unless $r0 && $rm;
        for my $p ([ 'fleet only', $r0 ],
                   [ "fleet + $env{revoked_keys}", $rm ]) {
            my $c = $p->[1];
            push @out, sprintf('%-26s %-22s %9.0f %7.2f %7d %9.1f %9.2f '
                               . '%11.1f MB', "$v $vname{$v}", $p->[0],
                               $c->{rps}, $c->{latency_ms}{p99},
                               $c->{errors}, $c->{nginx_us_per_req},
                               $c->{redis}{us_per_req},
                               $c->{redis}{used_memory} / 1048576);
        }
        push @out, sprintf('%-26s ratio %.3f', "$v $vname{$v}",
                           $rm->{rps} / $r0->{rps}) if $r0->{rps};
    }
    push @out, '';
}

my @idle = grep { $_->{group} eq 'idle' } map { $cells{$_} } @order;
if (@idle) {
    push @out, sprintf('Idle device connections (1 worker, RSS of the worker '
                       . 'from /proc, %s connections held)', $env{idle} // '?');
    push @out, sprintf('%-26s %7s %10s %10s %10s %8s %14s %8s', 'variant',
                       'held', 'RSS base', 'RSS held', 'B/conn', 'x stock',
                       'redis B/device', 'tracked');
    for my $c (@idle) {
        push @out, sprintf('%-26s %7d %7.1f MB %7.1f MB %10.0f %8s %14s %8s',
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
                           : '-', $c->{redis_tracked_keys} // '-');
    }
    push @out, 'tracked = keys added to Redis\' tracking table while the '
               . 'connections were held.';
    push @out, '';
}

if (@targets) {
    push @out, 'Targets of issue 10 (yes/NO by the measured throughput; "by CPU '
               . 'per request": the same ratio from the';
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

if (@checks) {
    push @out, 'Checks (what the counters must show)';
    for my $t (@checks) {
        push @out, sprintf('  %-4s %-66s %s%s', $t->{holds} ? 'yes' : 'NO',
                           $t->{check}, $t->{value},
                           $t->{detail} ? "  ($t->{detail})" : '');
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
    checks => \@checks,
    revoke => \%revoke,
    cache => \%cache,
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
