#!/usr/bin/perl

# Redis Sentinel (issue 12): a primary, a replica and three redis-sentinel
# processes with passwords, on loopback; an nginx edge of two workers
# configured with the three sentinels.
#
#   - discovery: each worker asks the sentinels for the master and uses it
#     (both connections: tracking and its invalidations on one node);
#     nothing is sent to the replica;
#   - SENTINEL FAILOVER under load (fail mode closed): each worker follows
#     "+switch-master", no request is refused, a revocation written on the
#     new primary applies, and once the old primary is a replica nothing is
#     sent to it any more;
#   - SIGKILL of the primary under load, while no replica may be promoted
#     (replica-priority 0): no master at all for a while.  A cached device
#     keeps its verdict (the grace), a device not cached gets the fail mode
#     (503 closed, "unchecked" open), the load on the open location gets no
#     refusal; a revocation written meanwhile (on the replica promoted
#     next) applies at the first request once the edge's link is up on the
#     new primary; a revocation on the new primary applies on an open
#     connection;
#   - SIGKILL of the primary and failover: the seconds from the kill to
#     the first decision read from the new primary (a device never seen
#     before, asked every 20 ms), DEVICE_AUTH_FAILOVERS times (default 1;
#     5 for docs/performance.md, with the median); the killed node comes
#     back as a replica and is sent nothing.
#
# Sentinels: quorum 2, down-after-milliseconds 1000, failover-timeout 3000.
# Bounds are generous (a loaded 2-core machine); times are reported.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test;
use DeviceAuth::RedisHA qw(redis_node sentinel cli info edge_commands poll
                           ka_open ka_get loadgen others errors device status
                           becomes revoke count_log wait_log %PASSWORD);

my $t = DeviceAuth::Test->new();

plan(skip_all => 'no redis-sentinel (make deps)')
    unless grep { -x "$_/redis-sentinel" } split /:/, $ENV{PATH};
plan(skip_all => 'no bench/loadgen (make -C bench)')
    unless -x DeviceAuth::Test->repo . '/bench/loadgen';

$t->skip_under_valgrind('two workers follow the sentinels');

my $pw = 'n0de-secret';
my $spw = 's3ntinel-secret';
my $slow = $t->sanitizer ? 3 : 1;

%PASSWORD = (a => $pw, b => $pw, s1 => $spw, s2 => $spw, s3 => $spw);

my @auth = ('--requirepass', $pw, '--masterauth', $pw);

redis_node($t, 'a', @auth);
redis_node($t, 'b', @auth, '--replicaof', '127.0.0.1', $t->port('a'));

# the canary (edge-state): set once on the primary, replicated; each
# worker reads it on every master it is given, before serving
cli($t, 'a', 'SET', 'device_auth:canary', 'set by ops');

ok(poll(20, sub { (info($t, 'b', 'replication')->{master_link_status} // '')
                  eq 'up' }), 'the replica is in sync');

for my $s (qw(s1 s2 s3)) {
    sentinel($t, $s, $t->port('a'),
             'sentinel down-after-milliseconds devices 1000',
             'sentinel failover-timeout devices 3000',
             "sentinel auth-pass devices $pw",
             "requirepass $spw");
}

ok(poll(30, sub {
       for my $s (qw(s1 s2 s3)) {
           my @r = cli($t, $s, 'SENTINEL', 'sentinels', 'devices');
           my @n = grep { /^name$/ } @r;
           return 0 unless @n == 2;
           return 0 unless grep { /^name$/ }
                           cli($t, $s, 'SENTINEL', 'replicas', 'devices');
       }
       return 1;
   }), 'the sentinels know each other and the replica');

my $timeout = (2 * $slow) . 's';

$t->write_conf(<<"EOF");
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%PORT_s1%% 127.0.0.1:%%PORT_s2%%
                      127.0.0.1:%%PORT_s3%% sentinel=devices password=$pw
                      sentinel_password=$spw;
    device_auth_redis_timeout $timeout;
    device_auth_redis_canary canary;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        access_log off;
        keepalive_requests 100000;

        add_header X-Status \$device_auth_status always;

        location / {
            device_auth on;
            device_auth_grace 120s;
            return 200 "\$device_auth_status\\n";
        }

        location /open {
            device_auth on;
            device_auth_grace 120s;
            device_auth_fail_mode open;
            return 200 "\$device_auth_status\\n";
        }
    }
}
EOF

my $url = 'https://127.0.0.1:' . $t->port(0);


sub role { (cli($t, $_[0], 'ROLE'))[0] // '' }

# the sentinels see NODE as a replica that is up (a failover may take it)
sub replica_ok {
    my ($node) = @_;
    my $port = $t->port($node);

    for my $s (qw(s1 s2 s3)) {
        my @r = cli($t, $s, 'SENTINEL', 'replicas', 'devices');
        my (@replicas, $cur);

        for (my $i = 0; $i < $#r; $i += 2) {
            push @replicas, $cur = {} if $r[$i] eq 'name';
            $cur->{$r[$i]} = $r[$i + 1] if $cur;
        }

        return 0 unless grep { ($_->{port} // 0) == $port
                               && ($_->{flags} // '') eq 'slave'
                               && ($_->{'master-link-status'} // '') eq 'ok'
                             } @replicas;
    }

    return 1;
}

###############################################################################
# discovery

my $pa = $t->port('a');
my $pb = $t->port('b');

my $mark = $t->log_mark();
$t->run();

ok(wait_log($t, qr/master "devices" is at "127\.0\.0\.1:$pa"/, 2, $mark),
   'each worker asked the sentinels for the master');
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$pa" up/, 2, $mark),
   'each worker: both connections on the master, tracking');
my $ps1 = $t->port('s1');
like($t->read_error_log($mark),
     qr/ redis="?127\.0\.0\.1:$ps1"? sentinel="?devices"? db=0 prefix="?device_auth:"? canary="?device_auth:canary"?/,
     'the start line names the first sentinel, the master\'s name, the canary');

my $d1 = device($t, 'CD');
is(status($t, $d1), '200 ok', 'a device is let in');
revoke($t, 'a', $d1);
ok(becomes($t, $d1, '403 revoked'), 'a revocation on the primary applies');
is(edge_commands($t, 'b'), '', 'nothing was sent to the replica');

###############################################################################
# SENTINEL FAILOVER under load, fail mode closed: nobody refused

my $wait = loadgen($t, '-N', 200, '-m', 'keepalive', '-k', 20, '-c', 8,
                   '-w', 4, '-d', 12, "$url/");
sleep(7);

$mark = $t->log_mark();
my $t0 = time();
is(cli($t, 's1', 'SENTINEL', 'FAILOVER', 'devices'), 'OK',
   'SENTINEL FAILOVER devices');

ok(wait_log($t, qr/master "devices" switched from "127\.0\.0\.1:$pa" to "127\.0\.0\.1:$pb"/, 2, $mark),
   'each worker follows "+switch-master"');
my $followed = time() - $t0;
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$pb" up/, 2, $mark),
   'each worker: the link is up on the new primary');
note(sprintf('SENTINEL FAILOVER: both workers followed %.2f s after it',
             $followed));

my $res = $wait->();
ok($res->{requests}, 'the load ran') or diag(explain($res));
is(others($res, 200), '', 'no request refused during the failover');
is(errors($res), '', 'no transport error');

my $d2 = device($t, 'CD');
is(status($t, $d2), '200 ok', 'another device');
revoke($t, 'b', $d2);
ok(becomes($t, $d2, '403 revoked'), 'a revocation on the new primary applies');
cli($t, 'b', 'DEL', "device_auth:{$d1->{serial}}:revoked");
ok(becomes($t, $d1, '200 ok'), 'and its end, for a device revoked before');

ok(poll(60 * $slow, sub { role('a') eq 'slave' }),
   'the old primary becomes a replica');

my $sent = edge_commands($t, 'a');
is(status($t, device($t, 'CD')), '200 ok', 'a new device, read');
is(status($t, device($t, 'CD'), '/open'), '200 ok', 'and another');
sleep(2);
is(edge_commands($t, 'a'), $sent,
   'nothing was sent to the old primary since it became a replica');

###############################################################################
# SIGKILL of the primary while no replica may be promoted: no master at all

cli($t, 'a', 'CONFIG', 'SET', 'replica-priority', '0');
ok(poll(30 * $slow, sub {
       !grep { (join ' ', cli($t, $_, 'SENTINEL', 'replicas', 'devices'))
               !~ /slave-priority 0/ } qw(s1 s2 s3) }),
   'the sentinels know that the replica may not be promoted');

my $cached = device($t, 'CD');
my $ka = ka_open($t, $cached->{name});
is(ka_get($ka, '/'), '200 ok', 'a device on a keepalive connection');

$wait = loadgen($t, '-N', 200, '-m', 'keepalive', '-k', 20, '-c', 8,
                '-w', 2, '-d', 14, "$url/open");
sleep(4);

$mark = $t->log_mark();
$t->daemon_stop('b', 'KILL');

ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$pb" down/, 2, $mark),
   'SIGKILL of the primary: each worker\'s link is down');

is(ka_get($ka, '/'), '200 ok',
   'no master: the cached device keeps its verdict (the grace)');
is(status($t, device($t, 'CD')), '503 error',
   'no master: a device not cached gets the fail mode (closed)');
is(status($t, device($t, 'CD'), '/open'), '200 unchecked', 'or open');

sleep(2);
is(count_log($t, qr/switched from/, $mark), 0, 'no failover meanwhile');

# the cached device is revoked while the edge has no master: written on
# the replica (writable for it) that is promoted next
cli($t, 'a', 'CONFIG', 'SET', 'replica-read-only', 'no');
is(revoke($t, 'a', $cached), 'OK', 'revoked on the replica, no master');
cli($t, 'a', 'CONFIG', 'SET', 'replica-read-only', 'yes');
is(ka_get($ka, '/'), '200 ok', 'no master: the cached verdict still');

cli($t, 'a', 'CONFIG', 'SET', 'replica-priority', '100');

ok(wait_log($t, qr/master "devices" switched from "127\.0\.0\.1:$pb" to "127\.0\.0\.1:$pa"/, 2, $mark, 60 * $slow),
   'the replica may be promoted: each worker follows');
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$pa" up/, 2, $mark,
            60 * $slow),
   'each worker: the link is up on the new primary');

# nothing read before the loss counts: the first request once the link is
# up reads the device again, and the revocation of the gap applies
is(ka_get($ka, '/'), '403 revoked',
   'the revocation written without a master applies at the first request');

$res = $wait->();
ok($res->{requests}, 'the load ran') or diag(explain($res));
is(others($res, 200), '', 'no request refused at the open location');
is(errors($res), '', 'no transport error');

cli($t, 'a', 'DEL', "device_auth:{$cached->{serial}}:revoked");
ok(poll(20 * $slow, sub { ka_get($ka, '/') eq '200 ok' }),
   'its end, on the new primary, applies on the open connection');
revoke($t, 'a', $cached);
ok(poll(20 * $slow, sub { ka_get($ka, '/') eq '403 revoked' }),
   'a revocation on the new primary applies on the open connection');
close $ka;

###############################################################################
# SIGKILL and automatic failover: the time to the first decision read from
# the new primary

my @times;
my ($primary, $replica) = ('a', 'b');
my $rounds = $ENV{DEVICE_AUTH_FAILOVERS} || 1;

for my $round (1 .. $rounds) {

    # the killed node comes back as a replica of the new primary
    redis_node($t, $replica, @auth, '--replicaof', '127.0.0.1',
               $t->port($primary));

    ok(poll(60 * $slow, sub { replica_ok($replica) }),
       "round $round: the sentinels see the restarted node as a replica");

    # a failover of the same master waits 2 x failover-timeout
    sleep(7);

    my $fresh = device($t, 'CD');
    my $pp = $t->port($primary);
    my $rp = $t->port($replica);
    my %seen;

    $mark = $t->log_mark();
    my $start = time();
    $t->daemon_stop($primary, 'KILL');

    my $ok = poll(60 * $slow, sub {
        my $st = status($t, $fresh);
        $seen{$st}++;
        return $st eq '200 ok' ? time() : 0;
    });

    ok($ok, "round $round: a device never seen is let in, read from the "
       . "new primary");
    push @times, $ok - $start if $ok;
    is(join(' ', grep { $_ ne '200 ok' && $_ ne '503 error' } keys %seen),
       '', "round $round: meanwhile only the fail mode");
    like($t->read_error_log($mark),
         qr/master "devices" switched from "127\.0\.0\.1:$pp" to "127\.0\.0\.1:$rp"/,
         "round $round: to the new primary");

    my $d = device($t, 'CD');
    revoke($t, $replica, $d);
    ok(becomes($t, $d, '403 revoked'),
       "round $round: a revocation on the new primary applies");

    ($primary, $replica) = ($replica, $primary);
}

# the last node killed, back as a replica: nothing is sent to it
redis_node($t, $replica, @auth, '--replicaof', '127.0.0.1',
           $t->port($primary));
ok(poll(20 * $slow, sub {
       (info($t, $replica, 'replication')->{master_link_status} // '')
       eq 'up' }), 'the killed primary is back, as a replica');
is(status($t, device($t, 'CD')), '200 ok', 'a new device');
sleep(1);
is(edge_commands($t, $replica), '',
   'nothing was sent to the old primary, back as a replica');

my @sorted = sort { $a <=> $b } @times;
diag(sprintf('failover after SIGKILL, kill to the first decision read from '
             . 'the new primary: %s s%s', join(', ', map { sprintf '%.2f', $_ }
                                              @times),
             @sorted > 1 ? sprintf(' (median %.2f s)',
                                   $sorted[$#sorted / 2]) : ''))
    if @times;

$t->check_error_log();

done_testing();
