#!/usr/bin/perl

# Sentinels that say what the test wants (issue 12): t/lib/fakesentinel.pl
# in front of real redis-server nodes.  The edge asks the sentinels in the
# order of device_auth_redis, and goes on to the next one when a sentinel
# knows no such master, names it by a host name, answers an error, says
# nothing, or cannot be reached; it uses a node only once ROLE says it is
# a master, and never sends a script, a read or a write to a replica; it
# follows "+switch-master"; a master demoted under it (REPLICAOF) is left
# at the next heartbeat or write; while there is no master, cached devices
# keep their verdict for the grace and others get the fail mode.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test;
use DeviceAuth::RedisHA qw(redis_node cli commandstats edge_commands poll ka_open
                           ka_get device status becomes count_log wait_log);

my $t = DeviceAuth::Test->new();

$t->skip_under_valgrind('the sentinels are followed by every worker');

my $m = redis_node($t, 'm');
my $r = redis_node($t, 'r', '--replicaof', '127.0.0.1', $t->port('m'));

for my $f (qw(f1 f2)) {
    mkdir $t->testdir . "/$f";
    $t->write_file("$f/master", "nil\n");
    $t->daemon_start($f, $t->port($f), $^X,
                     $t->repo . '/t/lib/fakesentinel.pl', $t->port($f),
                     $t->testdir . "/$f", $t->testdir . "/$f.log");
}

# f0: nothing listens there
my $f0 = $t->port('f0');

$t->write_conf(<<"EOF");
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:$f0 127.0.0.1:%%PORT_f1%% 127.0.0.1:%%PORT_f2%%
                      sentinel=devices sentinel_password=s3ntinel;
    device_auth_redis_timeout 1s;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status \$device_auth_status always;
        add_header X-Reason \$device_auth_reason always;

        location / {
            device_auth on;
            device_auth_grace 60s;
            return 200 "\$device_auth_status\\n";
        }

        location /open {
            device_auth on;
            device_auth_grace 0;
            device_auth_fail_mode open;
            return 200 "\$device_auth_status\\n";
        }
    }
}
EOF


sub fake_log { $t->read_file("$_[0].log") }

# what reached a replica from a client: scripts, reads, tracking, the
# subscription, a refused write (ROLE may come)
sub touched { edge_commands($t, $_[0]) }

###############################################################################
# the master is asked of the sentinels in turn

$t->write_file('f2/master', "127.0.0.1 $m\n");

my $mark = $t->log_mark();
$t->run();

ok(wait_log($t, qr/master "devices" is at "127\.0\.0\.1:$m"/, 2, $mark),
   'each worker found the master through the third sentinel');
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$m" up/, 2, $mark),
   'each worker: the invalidation link is up on the master');
like($t->read_error_log($mark),
     qr/redis sentinel at "127\.0\.0\.1:$f0": cannot connect/,
     'the first sentinel cannot be reached: said');
like($t->read_error_log($mark),
     qr/redis sentinel at "127\.0\.0\.1:\d+": it knows no master "devices"/,
     'the second one knows no such master: said');
like(fake_log('f1'), qr/SENTINEL get-master-addr-by-name/,
     'the second sentinel was asked');
like(fake_log('f2'), qr/SUBSCRIBE \+switch-master/,
     'the third one is followed');

my $d1 = device($t, 'AB');
is(status($t, $d1), '200 ok', 'a device is let in');
cli($t, 'm', 'SET', "device_auth:{$d1->{serial}}:revoked", 'stolen');
ok(becomes($t, $d1, '403 revoked'), 'a revocation on the master applies');
cli($t, 'm', 'DEL', "device_auth:{$d1->{serial}}:revoked");
ok(becomes($t, $d1, '200 ok'), 'and its end');

is(touched('r'), '', 'nothing was sent to the replica');

###############################################################################
# a switch to a node that is no master: refused by ROLE; the grace and the
# fail mode meanwhile

my $cached = device($t, 'AB');
is(status($t, $cached), '200 ok', 'a device, cached');
my $ka = ka_open($t, $cached->{name});
is(ka_get($ka, '/'), '200 ok', 'the device on a keepalive connection');

$t->write_file('f1/master', "127.0.0.1 $r\n");
$t->write_file('f2/master', "127.0.0.1 $r\n");

$mark = $t->log_mark();
$t->write_file('f2/switch', "devices 127.0.0.1 $m 127.0.0.1 $r\n");

ok(wait_log($t, qr/master "devices" switched from "127\.0\.0\.1:$m" to "127\.0\.0\.1:$r"/, 2, $mark),
   '+switch-master: each worker follows');
ok(wait_log($t, qr/redis at "127\.0\.0\.1:$r" is not a master \(ROLE\)/, 1, $mark),
   'the new node is a replica: refused');

is(ka_get($ka, '/'), '200 ok',
   'no master: the cached device keeps its verdict (the grace)');
is(status($t, device($t, 'AB')), '503 error', 'no master: a device not cached gets the '
   . 'fail mode (closed)');
is(status($t, device($t, 'AB'), '/open'), '200 unchecked', 'or open');

sleep(1);
is(touched('r'), '', 'nothing but ROLE was sent to the replica');

###############################################################################
# the replica becomes a master: the next question finds it

cli($t, 'r', 'REPLICAOF', 'NO', 'ONE');
$mark = $t->log_mark();

ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$r" up/, 2, $mark),
   'promoted: each worker takes it (asking again, paced)');
is(ka_get($ka, '/'), '200 ok', 'the cached device, read again');

my $d2 = device($t, 'AB');
is(status($t, $d2), '200 ok', 'a new device is read from the new master');
cli($t, 'r', 'SET', "device_auth:{$d2->{serial}}:revoked", 'stolen');
ok(becomes($t, $d2, '403 revoked'), 'a revocation on the new master applies');
cli($t, 'r', 'SET', "device_auth:{$cached->{serial}}:revoked", 'stolen');
ok(poll(10, sub { ka_get($ka, '/') eq '403 revoked' }),
   'at once on an open connection too');

###############################################################################
# the master demoted under the edge (REPLICAOF by hand, no sentinel to kill
# its clients): left at the next heartbeat (ROLE) or write (-READONLY)

$mark = $t->log_mark();
cli($t, 'r', 'REPLICAOF', '127.0.0.1', $m);

ok(wait_log($t, qr/dropping redis connection to "127\.0\.0\.1:$r": it (is no longer a master \(ROLE\)|is a replica now \(READONLY\))/, 2, $mark),
   'a demoted master is left');

my $before = commandstats($t, 'r');
sleep(2);
my $after = commandstats($t, 'r');
is(($after->{evalsha} // 0) + ($after->{eval} // 0),
   ($before->{evalsha} // 0) + ($before->{eval} // 0),
   'no script ran on it since');

$t->write_file('f1/master', "127.0.0.1 $m\n");
$mark = $t->log_mark();
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$m" up/, 2, $mark),
   'the master the sentinels name now is taken');
is(status($t, $d2), '200 ok', 'its facts (the revocation is not there)');

###############################################################################
# sentinels that answer badly: a host name, an error, nothing

$t->write_file('f1/master', "redis.example.com $m\n");
$t->write_file('f2/master', "silent\n");
$mark = $t->log_mark();
$t->write_file('f1/switch', "devices 127.0.0.1 $m 127.0.0.1 $r\n");

ok(wait_log($t, qr/master "devices" switched from "127\.0\.0\.1:$m" to "127\.0\.0\.1:$r"/, 2, $mark),
   'a switch to a replica again');
ok(wait_log($t, qr/it names the master by a host name, which would need a blocking DNS lookup/, 1, $mark),
   'a host name: refused');
ok(wait_log($t, qr/redis sentinel at "127\.0\.0\.1:\d+": no answer to the handshake in 1000 ms/, 1, $mark),
   'a silent sentinel: left after the timeout');
ok(wait_log($t, qr/no sentinel named the master "devices"; asking again/, 1, $mark),
   'no sentinel named the master: said');

$t->write_file('f2/master', "error\n");
ok(wait_log($t, qr/unexpected reply to "SENTINEL get-master-addr-by-name": ERR no answer today/, 1, $mark),
   'an error reply: said');

$t->write_file('f2/master', "127.0.0.1 $m\n");
$mark = $t->log_mark();
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$m" up/, 2, $mark),
   'a good answer again: the master is taken');
is(status($t, device($t, 'AB')), '200 ok', 'a new device is let in');

is(count_log($t, qr/no sentinel named the master/), 2,
   'that no sentinel answers was said once by each worker');

###############################################################################
# sentinels that refuse the edge's sentinel_password: said in the log and
# in each request's reason (the fail mode decides)

$t->write_file("$_/wrongpass", "\n") for qw(f1 f2);
$mark = $t->log_mark();

# the edge's command connections to the master end: it asks the sentinels
cli($t, 'm', 'CLIENT', 'KILL', 'TYPE', 'normal');

ok(wait_log($t, qr/redis sentinel at "127\.0\.0\.1:\d+": .*WRONGPASS/, 1,
            $mark), 'a sentinel refusing the password: logged');
ok(wait_log($t, qr/no sentinel named the master "devices"; asking again/, 1,
            $mark), 'no sentinel named the master: said');

{
    my $res = $t->https_get(device => device($t, 'AB')->{name}, path => '/');
    is(($res->{status} || 0) . ' ' . ($res->{headers}{'x-status'} || '-'),
       '503 error', 'meanwhile a device not cached gets the fail mode');
    like($res->{headers}{'x-reason'} // '',
         qr/^redis not connected: no sentinel named the master \\x22devices\\x22/,
         'its reason: no sentinel named the master, and why');
}

unlink map { $t->testdir . "/$_/wrongpass" } qw(f1 f2);
$mark = $t->log_mark();
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$m" up/, 2, $mark),
   'the password accepted again: the master is taken');
is(status($t, device($t, 'AB')), '200 ok', 'a new device is let in');

close $ka;
$t->check_error_log();

done_testing();
