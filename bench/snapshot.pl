#!/usr/bin/perl
# One snapshot of the counters bench/run.sh compares before and after a
# load generator run, as JSON on stdout:
#
#   snapshot.pl [--nginx MASTER_PID] [--status PORT] [--metrics PORT]
#               [--redis PORT]
#
#   nginx   every worker (child of the master): utime+stime from
#           /proc/<pid>/stat (clock ticks, converted to seconds), on-CPU
#           time from /proc/<pid>/schedstat (ns) when the kernel has it,
#           VmRSS and VmHWM from /proc/<pid>/status, the private memory
#           (USS: Private_Clean + Private_Dirty) from smaps_rollup
#   status  stub_status of that nginx on 127.0.0.1:PORT: accepts,
#           requests (the snapshot's own request included)
#   metrics the module's counters (device_auth_metrics at /metrics on
#           127.0.0.1:PORT): every nginx_device_auth_* sample but the
#           histogram's, by name and labels
#   redis   INFO all of the redis-server on 127.0.0.1:PORT: CPU, network
#           bytes, commands (cmdstat_* calls, those run by scripts
#           included), memory, keys

use strict;
use warnings;

use Getopt::Long;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes ();

my %o;
GetOptions(\%o, 'nginx=i', 'status=i', 'metrics=i', 'redis=i')
    or die "bad options\n";

my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my %snap = (time => Time::HiRes::time());

sub proc_stat {
    my ($pid) = @_;
    open my $f, '<', "/proc/$pid/stat" or return;
    my $s = <$f>;
    close $f;
    # comm may hold spaces and parentheses: split after the last ')'
    $s =~ s/^.*\)\s+//s;
    my @f = split /\s+/, $s;
    # fields from 3 (state): ppid is [1], utime [11], stime [12]
    return { ppid => $f[1], utime => $f[11] / $tck, stime => $f[12] / $tck };
}

sub proc_info {
    my ($pid) = @_;
    my $st = proc_stat($pid) or return;
    if (open my $f, '<', "/proc/$pid/status") {
        while (<$f>) {
            $st->{rss_kb} = $1 if /^VmRSS:\s+(\d+)/;
            $st->{hwm_kb} = $1 if /^VmHWM:\s+(\d+)/;
        }
        close $f;
    }
    if (open my $f, '<', "/proc/$pid/smaps_rollup") {
        my $uss = 0;
        while (<$f>) { $uss += $1 if /^Private_(?:Clean|Dirty):\s+(\d+)/ }
        $st->{uss_kb} = $uss;
        close $f;
    }
    if (open my $f, '<', "/proc/$pid/schedstat") {
        my ($run, $wait) = split /\s+/, scalar <$f>;
        $st->{oncpu_s} = $run / 1e9;
        $st->{runq_wait_s} = $wait / 1e9;
        close $f;
    }
    return $st;
}

if ($o{nginx}) {
    my %w;
    opendir my $d, '/proc' or die "/proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $d) {
        my $st = proc_stat($pid) or next;
        next unless $st->{ppid} == $o{nginx};
        my $i = proc_info($pid) or next;
        $w{$pid} = $i;
    }
    closedir $d;
    $snap{workers} = \%w;
    $snap{master} = proc_info($o{nginx});
}

sub http_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Timeout => 5)
        or die "http://127.0.0.1:$port$path: $!\n";
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    return $r // '';
}

if ($o{metrics}) {
    my $r = http_get($o{metrics}, '/metrics');
    $r =~ m{^HTTP/1\.\d 200 } or die "unexpected /metrics answer: $r\n";
    my %m;
    for (split /\r?\n/, $r) {
        next unless /^(nginx_device_auth_\w+(?:\{[^}]*\})?) (\S+)$/;
        next if index($1, '_duration_seconds') >= 0;
        $m{$1} = $2 + 0;
    }
    $snap{metrics} = \%m;
}

if ($o{status}) {
    my $r = http_get($o{status}, '/');
    $r =~ /Active connections:\s*(\d+).*?\n\s*(\d+)\s+(\d+)\s+(\d+)/s
        or die "unexpected stub_status answer: $r\n";
    $snap{status} = { active => $1, accepts => $2, handled => $3,
                      requests => $4 };
}

if ($o{redis}) {
    my $info = `redis-cli -h 127.0.0.1 -p $o{redis} INFO all`;
    die "redis-cli INFO on port $o{redis} failed\n" if $? || !$info;
    my (%r, %calls);
    for (split /\r?\n/, $info) {
        if (/^cmdstat_(\S+?):calls=(\d+)/) {
            $calls{$1} = $2 + 0;
        } elsif (/^(db\d+):keys=(\d+),expires=(\d+)/) {
            $r{keys}{$1} = $2 + 0;
            $r{expires}{$1} = $3 + 0;
        } elsif (/^(used_cpu_user|used_cpu_sys|total_net_input_bytes|total_net_output_bytes|total_commands_processed|used_memory|used_memory_rss|connected_clients|process_id|redis_version|tracking_clients|tracking_total_keys|tracking_total_items|pubsub_channels):(\S+)/) {
            my ($k, $v) = ($1, $2);
            $r{$k} = $v =~ /^\d+(\.\d+)?$/ ? $v + 0 : $v;
        }
    }
    $r{calls} = \%calls;
    $snap{redis} = \%r;
}

print JSON::PP->new->canonical->encode(\%snap), "\n";
