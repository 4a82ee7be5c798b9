#!/usr/bin/perl
# The summary of bench/profile.sh: profile-report.pl DIR
#
# callgrind: instructions (Ir) per request from callgrind_annotate, for the
# whole event loop of nginx (stock and module) and for what runs inside the
# module's entry points; the top functions there, and the split by object.
# perf: the flat profiles (share of cpu-clock samples) by object and symbol.

use strict;
use warnings;

use JSON::PP;

my $dir = shift or die "usage: profile-report.pl DIR\n";

sub num { my $n = shift; $n =~ tr/,//d; return $n + 0 }

sub loadgen {
    my ($f) = @_;
    open my $fh, "<", $f or return undef;
    local $/;
    my $d = decode_json(<$fh>);
    close $fh;
    return $d;
}

sub object_of {
    my ($fn, $obj) = @_;
    return 'module' if ($obj // '') =~ /ngx_http_device_auth_module\.so/
                       || (!defined $obj && $fn =~ /^(ngx_http_device_auth|ngx_device_auth)_/);
    return 'other' unless defined $obj;
    return 'hiredis' if $obj =~ /libhiredis/;
    return 'libcrypto' if $obj =~ /libcrypto/;
    return 'libssl' if $obj =~ /libssl/;
    return 'libc' if $obj =~ /libc\.so/;
    return 'nginx' if $obj =~ m{/nginx$};
    return 'luajit' if $obj =~ /luajit/;
    return 'redis-server' if $obj =~ /redis-(server|check-rdb)/;
    $obj =~ s{.*/}{};
    return $obj;
}

# -> { total, funcs => [ [Ir, function, object-class] ... ], by_object }
sub annotate {
    my ($f) = @_;
    return undef unless -s $f;
    my @lines = `callgrind_annotate --threshold=100 '$f' 2>/dev/null`;
    my %r = (funcs => [], by_object => {});
    for (@lines) {
        chomp;
        if (/^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/) {
            $r{total} = num($1);
        } elsif (/^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?):(\S+?)(?:'\d+)?(?:\s+\[(.+)\])?\s*$/) {
            my ($ir, $fn, $obj) = (num($1), $3, $4);
            my $class = object_of($fn, $obj);
            push @{ $r{funcs} }, [ $ir, $fn, $class ];
            $r{by_object}{$class} += $ir;
        }
    }
    return \%r;
}

my @out;
my $cg = 0;

sub per { my ($ir, $n) = @_; return $n ? $ir / $n : 0 }

sub section {
    my ($title, $stock, $mod, $tog, $unit) = @_;
    my ($s, $m, $t) = map { $_ ? annotate("$dir/callgrind-$_.out") : undef }
                      $stock, $mod, $tog;
    return unless $m && $m->{total};
    my ($ls, $lm, $lt) = map { $_ ? loadgen("$dir/callgrind-$_.loadgen.json") : undef }
                         $stock, $mod, $tog;
    $cg = 1;
    my $nm = $lm->{requests};
    push @out, $title;
    my $pm = per($m->{total}, $nm);
    if ($s && $s->{total}) {
        my $ps = per($s->{total}, $ls->{requests});
        push @out, sprintf('  stock nginx, event loop           %9.0f Ir/%s', $ps, $unit);
        push @out, sprintf('  nginx + module, event loop        %9.0f Ir/%s  (%+.0f, %+.1f%%)',
                           $pm, $unit, $pm - $ps, 100 * ($pm - $ps) / $ps);
    } else {
        push @out, sprintf('  nginx + module, event loop        %9.0f Ir/%s', $pm, $unit);
    }
    return unless $t && $t->{total};
    my $nt = $lt->{requests};
    my $pt = per($t->{total}, $nt);
    push @out, sprintf('  inside the module\'s entry points  %9.0f Ir/%s  (%.1f%% of the loop)',
                       $pt, $unit, 100 * $pt / $pm);
    push @out, '  by object, inside the entry points (Ir/' . $unit . ', share):';
    for my $o (sort { $t->{by_object}{$b} <=> $t->{by_object}{$a} } keys %{ $t->{by_object} }) {
        my $v = per($t->{by_object}{$o}, $nt);
        next if $v < 1;
        push @out, sprintf('    %-12s %8.0f  %5.1f%%', $o, $v, 100 * $t->{by_object}{$o} / $t->{total});
    }
    push @out, '  top functions inside the entry points (self Ir/' . $unit . '):';
    my @f = sort { $b->[0] <=> $a->[0] } @{ $t->{funcs} };
    my %seen;
    my $k = 0;
    for my $x (@f) {
        last if $k >= 20;
        next if $seen{"$x->[1] $x->[2]"}++;
        push @out, sprintf('    %8.0f  %5.1f%%  %-46s %s', per($x->[0], $nt),
                           100 * $x->[0] / $t->{total}, $x->[1], $x->[2]);
        $k++;
    }
    push @out, '';
}

push @out, 'callgrind: instructions (Ir), nginx in single-process mode under valgrind,';
push @out, 'only ngx_process_events_and_timers (the event loop) counted';
push @out, '';
section('keepalive: module+redis cached (a cache miss per connection, then '
        . 'hits), vs stock', 'ka-stock-loop', 'ka-loop', 'ka-module', 'request');
section('keepalive: module+redis untracked (each request one script call), '
        . 'vs stock', 'ka-stock-loop', 'ka4-loop', 'ka4-module', 'request');
section('handshake: module+redis cached (one handshake + one request, a new '
        . 'device: one miss), vs stock', 'hs-stock-loop', 'hs-loop',
        'hs-module', 'handshake');

for my $p ([ 'ka', 'perf, nginx worker, module+redis cached, keepalive' ],
           [ 'ka4', 'perf, nginx worker, module+redis untracked, keepalive' ],
           [ 'ka4-redis', 'perf, redis-server during the same run' ],
           [ 'hs', 'perf, nginx worker, module+redis cached, handshake' ]) {
    my ($name, $title) = @$p;
    my $fd = "$dir/perf-$name.dso.txt";
    my $fs = "$dir/perf-$name.sym.txt";
    next unless -s $fd;
    push @out, "$title: share of cpu-clock samples";
    open my $f, '<', $fd or next;
    my $k = 0;
    while (<$f>) {
        next unless /^\s*([\d.]+)%\s+(\S+)/;
        last if $k++ >= 8;
        my ($pct, $dso) = ($1, $2);
        $dso = 'redis-server' if $dso eq 'redis-check-rdb';
        push @out, sprintf('    %6.2f%%  %s', $pct, $dso);
    }
    close $f;
    push @out, '  top symbols:';
    open $f, '<', $fs or next;
    $k = 0;
    while (<$f>) {
        next unless /^\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*?)\s*$/;
        last if $k++ >= 15;
        my ($pct, $dso, $sym) = ($1, $2, $3);
        $dso = 'redis-server' if $dso eq 'redis-check-rdb';
        push @out, sprintf('    %6.2f%%  %-30s %s', $pct, $dso, $sym);
    }
    close $f;
    if ($name !~ /-redis$/) {
        my $lg = loadgen("$dir/perf-$name.loadgen.json");
        push @out, sprintf('  (load: %s, %.0f requests/s, %.0f connections/s)',
                           $lg->{mode}, $lg->{rps}, $lg->{connections_per_s})
            if $lg;
    }
    push @out, '';
}

print join("\n", @out), "\n";
