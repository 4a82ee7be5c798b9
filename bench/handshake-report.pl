#!/usr/bin/perl
# The summary of bench/handshake.sh:
#
#   handshake-report.pl DIR ROUNDS NAME...   (the first NAME is stock)
#
# callgrind: instructions (Ir) per connection in the event loop, from
# callgrind_annotate's program totals and loadgen's request count; for the
# resumed runs, the full handshakes among them (loadgen's count of
# connections not resumed) are taken out at the cost of that variant's
# TLS 1.3 full handshake.  Throughput: per round, handshakes per second
# and worker CPU (on-CPU time from schedstat, else utime + stime) per
# handshake; the median of the rounds, and the ratios to stock.

use strict;
use warnings;

use JSON::PP;

my ($dir, $rounds, @names) = @ARGV;
my $stock = $names[0];

sub slurp_json {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    return decode_json(<$fh>);
}

sub total_ir {
    my ($f) = @_;
    return undef unless -s $f;
    for (`callgrind_annotate --threshold=100 '$f' 2>/dev/null`) {
        return $1 =~ tr/,//dr if /^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/;
    }
    return undef;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

my @out;
my %ir;

for my $n (@names) {
    for my $case ('13', '12', '13s', '13r') {
        my $t = total_ir("$dir/callgrind-$n-$case-loop.out");
        my $lg = slurp_json("$dir/callgrind-$n-$case-loop.loadgen.json");
        next unless defined $t && $lg && $lg->{requests};

        my $per = $t / $lg->{requests};

        # no resumption at all (0 tickets): nothing to show
        next if $case eq '13r' && !$lg->{resumed};

        if ($case eq '13r' && defined $ir{$n}{'13'}) {
            my $full = $lg->{requests} - $lg->{resumed};
            $per = ($t - $full * $ir{$n}{'13'}) / $lg->{resumed}
                if $lg->{resumed};
        }

        $ir{$n}{$case} = $per;
    }
}

if (%ir) {
    push @out, 'callgrind: instructions per connection (handshake + one '
               . 'request), event loop, nginx single process';
    push @out, '  (full: a new device each; seen: 2 devices again and again)';
    push @out, sprintf('  %-10s %14s %7s %14s %7s %14s %7s %14s %7s',
                       'variant', 'TLS 1.3 full', 'x stock',
                       'TLS 1.2 full', 'x stock', 'TLS 1.3 seen',
                       'x stock', 'TLS 1.3 resumed', 'x stock');
    for my $n (@names) {
        next unless grep { defined } values %{ $ir{$n} || {} };
        my @c;
        for my $case ('13', '12', '13s', '13r') {
            my $v = $ir{$n}{$case};
            my $s = $ir{$stock}{$case};
            push @c, defined $v ? sprintf('%14.0f', $v) : sprintf('%14s', '-');
            push @c, defined $v && $s ? sprintf('%7.3f', $v / $s)
                                      : sprintf('%7s', '-');
        }
        push @out, sprintf('  %-10s %s', $n, join(' ', @c));
    }
    push @out, '';
}

my %tp;

for my $n (@names) {
    for my $r (0 .. $rounds - 1) {
        my $lg = slurp_json("$dir/tp-$n-$r.loadgen.json");
        my $a = slurp_json("$dir/tp-$n-$r.before.json");
        my $b = slurp_json("$dir/tp-$n-$r.after.json");
        next unless $lg && $a && $b && $lg->{requests};

        my $cpu = 0;
        for my $pid (keys %{ $b->{workers} }) {
            my ($x, $y) = ($a->{workers}{$pid}, $b->{workers}{$pid});
            next unless $x;
            $cpu += defined $y->{oncpu_s} && defined $x->{oncpu_s}
                    ? $y->{oncpu_s} - $x->{oncpu_s}
                    : $y->{utime} + $y->{stime} - $x->{utime} - $x->{stime};
        }

        push @{ $tp{$n}{rate} }, $lg->{rps};
        push @{ $tp{$n}{cpu} }, $cpu * 1e6 / $lg->{requests};
        push @{ $tp{$n}{per_cpu} }, $cpu ? $lg->{requests} / $cpu : 0;
    }
}

if (%tp) {
    push @out, "loadgen handshake mode, TLS 1.3, 1 worker, medians of "
               . "$rounds interleaved rounds";
    push @out, sprintf('  %-10s %12s %7s %18s %20s %7s', 'variant',
                       'handshakes/s', 'x stock', 'worker CPU us/hs',
                       'handshakes/CPU s', 'x stock');
    my $ss = median(@{ $tp{$stock}{per_cpu} || [] });
    my $sr = median(@{ $tp{$stock}{rate} || [] });
    for my $n (@names) {
        next unless $tp{$n};
        my ($rate, $cpu, $pc) = map { median(@{ $tp{$n}{$_} }) }
                                qw(rate cpu per_cpu);
        push @out, sprintf('  %-10s %12.1f %7.3f %18.1f %20.1f %7.3f', $n,
                           $rate, $sr ? $rate / $sr : 0, $cpu, $pc,
                           $ss ? $pc / $ss : 0);
        push @out, sprintf('  %-10s rounds: %s', '',
                           join(' ', map { sprintf '%.0f', $_ }
                                     @{ $tp{$n}{per_cpu} }));
    }
    push @out, '';
}

print map { "$_\n" } @out;
