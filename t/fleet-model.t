#!/usr/bin/perl

# The fleet-scale model of docs/performance.md (issue 12), measured: what a
# device costs Redis when it connects, and when it sends requests, with the
# device state at the edge.  Skipped unless DEVICE_AUTH_FLEET_MODEL=1: it
# measures, it asserts only that the measurement ran.
#
#   1. first contact: loadgen in handshake mode over a fleet larger than
#      the run, so that every connection is a device this worker never saw:
#      Redis commands, bytes, and Redis CPU (INFO cpu, and INFO
#      commandstats per command) per connection;
#   2. the same devices again, cached, sightings fresh (handshake mode):
#      per connection;
#   3. keepalive requests of cached devices: per request;
#   4. Redis memory per device: INFO memory before the first contact and
#      after it, with the keys of the devices (their sightings) and what
#      Redis' tracking table holds for the edge (INFO stats
#      tracking_total_keys), apart;
#   5. devices that keep sending requests: the sighting made again every
#      tenth of the duplicate window (10 s here): per device and tenth.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test;
use DeviceAuth::RedisHA qw(cli info loadgen);

plan(skip_all => 'a measurement: DEVICE_AUTH_FLEET_MODEL=1')
    unless $ENV{DEVICE_AUTH_FLEET_MODEL};

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        access_log off;
        keepalive_requests 100000;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }

        location /w10 {
            device_auth on;
            device_auth_duplicate_window 10s;
            return 200 "$device_auth_status\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $url = 'https://127.0.0.1:' . $t->port(0) . '/';
my $fleet = $ENV{DEVICE_AUTH_FLEET_N} || 30000;

sub snapshot {
    my %s;
    my $i = info($t, 'redis', 'all');

    $s{cpu} = ($i->{used_cpu_user} // 0) + ($i->{used_cpu_sys} // 0);
    $s{in} = $i->{total_net_input_bytes} // 0;
    $s{out} = $i->{total_net_output_bytes} // 0;
    $s{memory} = $i->{used_memory} // 0;
    $s{keys} = ($i->{db0} // '') =~ /keys=(\d+)/ ? $1 : 0;
    $s{tracked} = $i->{tracking_total_keys} // 0;

    for (grep { /^cmdstat_/ } keys %$i) {
        my ($cmd) = /^cmdstat_(.*)$/;
        my ($calls) = $i->{$_} =~ /calls=(\d+)/;
        my ($usec) = $i->{$_} =~ /usec=(\d+)/;
        $s{calls}{$cmd} = $calls;
        $s{usec}{$cmd} = $usec;
    }

    return \%s;
}

sub report {
    my ($what, $per, $n, $a, $b) = @_;
    my ($calls, $usec) = (0, 0);
    my @cmds;

    for my $cmd (sort keys %{ $b->{calls} }) {
        next if $cmd =~ /^(info|ping|client\|id|subscribe|script\|load|client\|tracking|hello|select|auth)$/;
        my $c = $b->{calls}{$cmd} - ($a->{calls}{$cmd} // 0);
        next unless $c;
        my $u = $b->{usec}{$cmd} - ($a->{usec}{$cmd} // 0);
        $calls += $c;
        $usec += $u;
        push @cmds, sprintf('%s %.3f (%.1f us)', $cmd, $c / $n, $u / $c);
    }

    diag(sprintf("%-34s %8d %-10s  commands %.3f  bytes in %.0f out %.0f"
                 . "  redis cpu %.1f us (commands %.1f us)  [%s]",
                 $what, $n, $per, $calls / $n, ($b->{in} - $a->{in}) / $n,
                 ($b->{out} - $a->{out}) / $n,
                 ($b->{cpu} - $a->{cpu}) * 1e6 / $n, $usec / $n,
                 join ', ', @cmds));
}

# 1. first contact: each connection a device never seen

my $before = snapshot();
my $res = loadgen($t, '-N', $fleet, '-m', 'handshake', '-c', 16, '-w', 0,
                  '-d', 15, $url)->();
my $first = snapshot();
my $conns = $res->{requests};

ok($conns && $conns < $fleet, "first contact: $conns connections of new "
   . "devices");
report('first contact of a device', 'conn', $conns, $before, $first);

my $devices = $first->{keys} - $before->{keys};
diag(sprintf('redis memory: %.0f bytes per device (%d devices: %d keys, '
             . '%d tracked keys)', ($first->{memory} - $before->{memory})
             / ($conns || 1), $conns, $devices,
             $first->{tracked} - $before->{tracked}));

{
    my @keys = (cli($t, 'redis', '--scan', '--pattern',
                    'device_auth:{*}:seen'))[0 .. 99];
    my $sum = 0;
    $sum += cli($t, 'redis', 'MEMORY', 'USAGE', $_) for @keys;
    diag(sprintf('a device\'s sighting key: MEMORY USAGE %.0f bytes (mean '
                 . 'of 100), its TTL besides', $sum / 100));
}

# 2. the same devices again: cached, their sighting fresh

my $n = $conns;
$res = loadgen($t, '-N', $fleet, '-m', 'handshake', '-c', 16, '-w', 0,
               '-n', $n, $url)->();
my $again = snapshot();
ok($res->{requests}, 'the same devices again');
report('a cached device connects again', 'conn', $res->{requests}, $first,
       $again);

# 3. keepalive requests of cached devices

loadgen($t, '-N', 1000, '-m', 'keepalive', '-c', 16, '-w', 0, '-d', 3,
        $url)->();
my $warm = snapshot();
$res = loadgen($t, '-N', 1000, '-m', 'keepalive', '-c', 16, '-w', 0, '-d',
               10, $url)->();
my $ka = snapshot();
ok($res->{requests}, 'keepalive requests');
report('a request of a cached device', 'request', $res->{requests},
       $warm, $ka);

# 4. devices that keep sending requests: the sighting is made again every
#    tenth of the window (10 s here: every second); 16 devices, one
#    keepalive connection each

loadgen($t, '-N', 16, '-m', 'keepalive', '-c', 16, '-w', 0, '-d', 2,
        "${url}w10")->();
my $s0 = snapshot();
my $dur = 20;
$res = loadgen($t, '-N', 16, '-m', 'keepalive', '-c', 16, '-w', 0, '-d',
               $dur, "${url}w10")->();
my $s1 = snapshot();
ok($res->{requests}, 'active devices');
report('an active device, per W/10 (1 s)', 'dev x W/10', 16 * $dur, $s0,
       $s1);

$t->check_error_log();

done_testing();
