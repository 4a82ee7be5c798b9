#!/usr/bin/perl

# What the fleet looks like from an edge (issue 15, section 5):
#
#   - the distinct devices of the day: each TLS connection of a device
#     adds its serial once (PFADD, pipelined) to the fleet's HyperLogLog
#     "device_auth:devices:<YYYY-MM-DD>" (UTC) and this edge's
#     "...:<YYYY-MM-DD>:<edge>"; one worker reads both (PFCOUNT) every
#     device_auth_stats_interval for the metric;
#   - device_auth_edge_name names the edge in events and that key;
#   - a clone's event names every edge that sighted it within the window,
#     two edges sharing one Redis here;
#   - a lookup that fails (a Redis that does not answer) is measured in the
#     latency histogram too, for the time it waited.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();
$t->skip_under_valgrind('two edges, and a Redis stopped');

my $P = 'device_auth:';

my $template = <<'EOF';
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:#REDIS#;
    device_auth_redis_timeout #TIMEOUT#;
    device_auth_edge_name #EDGE#;
    device_auth_stats_interval 1s;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;

        location / {
            device_auth on;
            device_auth_grace 0;
            return 200 "$device_auth_status\n";
        }

        location /clones {
            device_auth on;
            device_auth_location $http_x_place;
            device_auth_duplicate_limit 2;
            return 200 "$device_auth_status\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }
}
EOF

sub conf {
    my ($e, $edge, $timeout) = @_;
    (my $c = $template) =~ s/#REDIS#/$t->redis_port/e;
    $c =~ s/#EDGE#/$edge/;
    $c =~ s/#TIMEOUT#/$timeout || $e->expand('%%REDIS_TIMEOUT%%')/e;
    $e->write_conf($c);
}

sub metrics {
    my ($e) = @_;
    my $r = $e->https_get(path => '/metrics');
    return { map { /^([^#\s]\S*) (\S+)$/ ? ($1 => $2) : () }
             split /\n/, $r->{body} || '' };
}

sub pfadds {
    for ($t->redis_cli('INFO', 'commandstats')) {
        return $1 if /^cmdstat_pfadd:calls=(\d+)/;
    }
    return 0;
}

$t->redis_start();
conf($t, 'edge-a');
$t->run();

my $today = strftime('%Y-%m-%d', gmtime());

###############################################################################
# the day's distinct devices

my @devs = map { $t->make_device(name => "s$_", serial => sprintf('0123DA7E%010X', $_)) }
           1 .. 3;

my $before = pfadds();

# each device: two connections of 5 requests each
for my $d (@devs) {
    my $name = (split m{/}, $d)[-1];
    for (1 .. 2) {
        my $r = $t->https_get(device => $d, keepalive => 5);
        is(scalar(grep { ($_->{status} // 0) == 200 } @{ $r->{responses} }),
           5, "$name: 5 requests on a connection, 200");
    }
}

# the writes are not waited for: polled
my $end = time() + 10;
sleep(0.05) while pfadds() - $before < 12 && time() < $end;
is(pfadds() - $before, 12,
   'PFADD once per connection, to the fleet\'s and the edge\'s day: 2 x 6');

is($t->redis_cli('PFCOUNT', "${P}devices:$today"), 3,
   "the fleet's day, ${P}devices:$today: 3 devices");
is($t->redis_cli('PFCOUNT', "${P}devices:$today:edge-a"), 3,
   'this edge\'s day, named by device_auth_edge_name: 3 devices');

# the metric, read every second by one worker
my $m;
$end = time() + 10;
do { $m = metrics($t); sleep(0.1) }
    until ($m->{'nginx_device_auth_devices_today{scope="fleet"}'} // 0) == 3
          || time() > $end;
is($m->{'nginx_device_auth_devices_today{scope="fleet"}'}, 3,
   'metric: distinct devices today, the fleet');
is($m->{'nginx_device_auth_devices_today{scope="edge"}'}, 3,
   'metric: distinct devices today, this edge');

# kept 40 days after they were last read (EXPIRE after each PFCOUNT)
my $ttl;
$end = time() + 5;
sleep(0.05) while ($ttl = $t->redis_cli('TTL', "${P}devices:$today")) < 0
                  && time() < $end;
ok($ttl > 39 * 86400 && $ttl <= 40 * 86400, "the day is kept 40 days ($ttl)");

# a device refused by its certificate is not a device seen
$before = pfadds();
$t->https_get(device => 'dev_expired');
$t->https_get(device => $devs[0]);
$end = time() + 10;
sleep(0.05) while pfadds() - $before < 2 && time() < $end;
sleep(0.2);
is(pfadds() - $before, 2, 'a certificate refused: not counted');

###############################################################################
# two edges: a clone's event names both

my $b = DeviceAuth::Test->new();
conf($b, 'edge-b');
$b->run();

my $clone = $t->make_device(name => 'clone', serial => '0123DA7EC1000000AA');

my @got;
for my $c (['a', $t, 'p1'], ['b', $b, 'p2'], ['a', $t, 'p3']) {
    my ($name, $e, $place) = @$c;
    my $r = $e->https_get(device => $clone, path => '/clones',
                          headers => [['X-Place', $place]]);
    push @got, ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}
is_deeply(\@got, ['200 ok', '200 ok', '200 duplicate'],
          'a clone seen at 3 places by two edges, limit 2');

my @lines = $t->redis_cli('--raw', 'XRANGE', "${P}events", '-', '+');
my (@ev, $cur);
for my $l (@lines) {
    if ($l =~ /^\d+-\d+$/) { push @ev, $cur = {}; next }
    next unless $cur;
    if (!exists $cur->{_k}) { $cur->{_k} = $l; next }
    $cur->{ delete $cur->{_k} } = $l;
}
my ($dup) = grep { $_->{type} eq 'duplicate'
                   && $_->{serial} eq '0123DA7EC1000000AA' } @ev;
is($dup && $dup->{edge}, 'edge-a', 'the event: the edge that decided');
is($dup && $dup->{edges}, 'edge-a, edge-b',
   'the event: every edge that sighted it within the window, newest first');
is($t->redis_cli('ZCARD', "${P}\{0123DA7EC1000000AA}:edges"), 2,
   'the edges are kept in the device\'s own slot');
my $pttl = $t->redis_cli('PTTL', "${P}\{0123DA7EC1000000AA}:edges");
ok($pttl > 0 && $pttl <= 600000, "with the window as TTL ($pttl)");

is($t->redis_cli('PFCOUNT', "${P}devices:$today:edge-b"), 1,
   'edge-b\'s day: the clone');
is($t->redis_cli('PFCOUNT', "${P}devices:$today"), 4,
   'the fleet\'s day: 4 devices over both edges');

$b->check_error_log();

###############################################################################
# a lookup that fails is measured too

$t->check_error_log();
conf($t, 'edge-a', '300ms');
$t->run();

my $fresh = $t->make_device(name => 'fresh', serial => '0123DA7EF4E5000001');
$m = metrics($t);
my $count = $m->{nginx_device_auth_redis_duration_seconds_count} // 0;
my $sum = $m->{nginx_device_auth_redis_duration_seconds_sum} // 0;
my $timeouts = $m->{'nginx_device_auth_redis_errors_total{kind="timeout"}'} // 0;

kill 'STOP', $t->redis_pid;
my $r = $t->https_get(device => $fresh);
kill 'CONT', $t->redis_pid;

is(($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-'),
   '503 error', 'Redis not answering: 503 after the timeout');

$m = metrics($t);
cmp_ok(($m->{'nginx_device_auth_redis_errors_total{kind="timeout"}'} // 0)
       - $timeouts, '>=', 1, 'a timeout counted');
cmp_ok(($m->{nginx_device_auth_redis_duration_seconds_count} // 0) - $count,
       '>=', 1, 'and measured in the latency histogram');
cmp_ok(($m->{nginx_device_auth_redis_duration_seconds_sum} // 0) - $sum,
       '>=', 0.3, 'for the time it waited (at least the 300 ms timeout)');

$t->check_error_log();

done_testing();
