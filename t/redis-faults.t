#!/usr/bin/perl

# Redis as a normal failure: down at nginx start, killed, paused longer than
# the timeout, restarted cleanly, its script cache flushed, a wrong
# password; an ACL user with db=3, the unix socket form; a graceful reload
# with lookups in flight; a revocation kept by Redis across a crash.  Each
# failure is checked in both fail modes (closed: 503 "error"; open: 200
# "unchecked" at the upstream), and each time the module must recover by
# itself, without a reload.  At the end: no crash, no [alert], and the
# metrics show what happened.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha1_hex);
use POSIX ();
use DeviceAuth::Test qw(upstream_values);

my $t = DeviceAuth::Test->new();

my $serial = $t->serial('dev1');
my $revoked_key = "device_auth:{$serial}:revoked";

# the script the module embeds, by its SHA-1 (SCRIPT EXISTS)
my $script_sha = do {
    open my $fh, '<', $t->repo() . '/src/ngx_http_device_auth_script.lua'
        or die "script: $!";
    local $/;
    sha1_hex(<$fh>);
};

my $template = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis #REDIS#;
    #HTTP#

    # the fail modes themselves: no grace (t/edge-state.t has the grace)
    device_auth_grace 0;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        location /closed {
            device_auth on;
            device_auth_fail_mode closed;
            proxy_pass http://%%ECHO%%;
        }

        location /open {
            device_auth on;
            device_auth_fail_mode open;
            proxy_pass http://%%ECHO%%;
        }

        location /metrics {
            device_auth_metrics;
        }
    }
}
EOF

sub conf {
    my ($redis, $http) = @_;
    (my $c = $template) =~ s/#REDIS#/$redis/;
    $c =~ s/#HTTP#/$http || ''/e;
    $t->write_conf($c);
}

# one request: (status, $device_auth_status, X-Device-Status upstream,
# seconds, response)

sub probe {
    my ($loc, %o) = @_;
    my $start = time();
    my $r = $t->https_get(device => $o{device} || 'dev1', path => "/$loc");
    my $took = time() - $start;
    return ($r->{status} || 0, $r->{headers}{'x-status'} || '',
            join(',', upstream_values($r, 'X-Device-Status')), $took, $r);
}

# a device the worker has not cached: its lookup must go to Redis
# (returns the name for probe() and its serial)

my $fresh = 0;

sub fresh {
    my $serial = sprintf('0123FE%012X', ++$fresh);
    return ($t->make_device(name => "fresh$fresh", serial => $serial),
            $serial);
}

sub is_failing {
    my ($name, %o) = @_;

    my ($st, $xs, $up) = probe('closed', %o);
    is("$st $xs", '503 error', "$name: fail mode closed: 503 error");

    ($st, $xs, $up) = probe('open', %o);
    is("$st $xs $up", '200 unchecked unchecked',
       "$name: fail mode open: 200, unchecked at the upstream");
}

sub is_ok {
    my ($name, $want) = @_;
    $want ||= 'ok';

    for my $loc (qw(closed open)) {
        my ($st, $xs, $up) = probe($loc);
        is("$st $xs $up", "200 $want $want", "$name: $loc: 200 $want");
    }
}

# polls until the closed location answers 200 ok (not by reload: by the
# module's own reconnect), then checks both locations

sub recovers {
    my ($name, $limit) = @_;
    $limit ||= 7;

    my $start = time();
    my $last = '';

    while (time() - $start < $limit) {
        my ($st, $xs) = probe('closed');
        $last = "$st $xs";
        last if $last eq '200 ok';
        sleep(0.1);
    }

    my $took = time() - $start;

    is($last, '200 ok', "$name: recovered by itself")
        or diag(sprintf('still "%s" after %.1f s', $last, $took));
    note(sprintf('%s: recovered in %.2f s', $name, $took));

    my ($st, $xs, $up) = probe('open');
    is("$st $xs $up", '200 ok ok', "$name: open location checks again");
}

sub metrics {
    my $r = $t->https_get(path => '/metrics');
    my %m;
    for (split /\n/, $r->{body} || '') {
        $m{$1} = $2 if /^([^#\s]\S*) (\S+)$/;
    }
    return \%m;
}

# a request in a child process; the file NAME gets "status $device_auth_status
# seconds-since-SINCE"

sub background {
    my ($name, $loc, $since, $device) = @_;

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        my $r = $t->https_get(device => $device || 'dev1', path => "/$loc",
                              timeout => 10);
        $t->write_file($name, sprintf("%s %s %.3f\n", $r->{status} || 0,
                                      $r->{headers}{'x-status'} || '-',
                                      time() - $since));
        POSIX::_exit(0);
    }

    return $pid;
}

# polls the metrics until N lookups are in flight, or until the time END

sub wait_inflight {
    my ($n, $end) = @_;
    my $inflight = 0;

    while (time() < $end) {
        $inflight = metrics()->{nginx_device_auth_lookups_in_flight} || 0;
        last if $inflight >= $n;
        sleep(0.02);
    }

    return $inflight;
}

sub worker_pids {
    my $log = $t->read_error_log();
    return $log =~ /start worker process (\d+)/g;
}


###############################################################################
# wrong password, then fixed on the Redis side; an ACL user with db=3; the
# unix socket form (each a fresh nginx: device_auth_redis is http-level)

$t->redis_start('--requirepass', 'right');

conf('127.0.0.1:%%REDIS_PORT%% password=wrong');
$t->run();

is_failing('wrong password');

ok($t->wait_error_log(qr/device_auth: redis "AUTH" failed at "127\.0\.0\.1:\d+": WRONGPASS/),
   'wrong password: error log names the AUTH failure');

# the reconnects go on failing meanwhile
sleep(0.5);
is_failing('wrong password, later');

is($t->redis_cli('-a', 'right', 'CONFIG', 'SET', 'requirepass', 'wrong'), 'OK',
   'password changed on the Redis side');

recovers('wrong password fixed');

$t->check_error_log();

# an ACL user that may do only what the module does, in database 3

$t->redis_cli('-a', 'wrong', 'FLUSHALL');

is($t->redis_cli('-a', 'wrong', 'ACL', 'SETUSER', 'edge', 'on', '>pw',
                 '~device_auth:*', '&__redis__:invalidate',
                 qw(+evalsha +eval +script|load +select +ping +client|id
                 +client|tracking +client|caching +subscribe +get +xadd
                 +set +exists +pttl +hget +hset +pexpire +zadd
                 +zremrangebyscore +zremrangebyrank +zcard +zscore +zcount
                 +zrevrange +time)),
   'OK', 'ACL user edge created');

conf('127.0.0.1:%%REDIS_PORT%% user=edge password=pw db=3');
$t->run();

recovers('ACL user edge, db=3', 3);

is($t->redis_cli('-a', 'wrong', '-n', 3, 'EXISTS',
                 "device_auth:{$serial}:seen"), 1,
   'db=3: the sighting is in database 3');
is($t->redis_cli('-a', 'wrong', '-n', 0, 'EXISTS',
                 "device_auth:{$serial}:seen"), 0,
   'db=3: nothing in database 0');

$t->redis_cli('-a', 'wrong', '-n', 0, 'SET', $revoked_key, 'wrong db');
is_ok('db=3: a revocation in database 0 is not read');

$t->redis_cli('-a', 'wrong', '-n', 3, 'SET', $revoked_key, 'stolen in db 3');
for my $loc (qw(closed open)) {
    my ($st, $xs, $up, undef, $r) = probe($loc);
    is("$st $xs", '403 revoked', "db=3: revocation in database 3: $loc 403");
    is($r->{headers}{'x-reason'}, 'stolen in db 3', "db=3: $loc reason");
}

$t->check_error_log();

$t->redis_cli('-a', 'wrong', 'FLUSHALL');

conf('unix:%%REDIS_SOCKET%% password=wrong');
$t->run();

recovers('unix socket', 3);

$t->redis_cli('-a', 'wrong', 'SET', $revoked_key, 'stolen, via socket');
my ($st, $xs) = probe('closed');
is("$st $xs", '403 revoked', 'unix socket: revocation honoured');
$t->redis_cli('-a', 'wrong', 'DEL', $revoked_key);
is_ok('unix socket: unrevoked');

# the socket file goes with Redis, and comes back with it
$t->redis_stop();
is_failing('unix socket: redis down');
$t->redis_start('--requirepass', 'wrong');
recovers('unix socket: redis back');

$t->check_error_log();
$t->redis_stop();


###############################################################################
# the main configuration: Redis down when nginx starts

conf('127.0.0.1:%%REDIS_PORT%%');
my $mark = $t->log_mark();
$t->run();

is_failing('redis down at start');

ok($t->wait_error_log(qr/device_auth: cannot connect to redis at "127\.0\.0\.1:\d+"/),
   'redis down at start: error log says so');

# long enough for a few reconnect attempts with growing backoff
sleep(1.5);
is_failing('redis still down');

$t->redis_start();
recovers('redis started after nginx');

# the runbook: one line until it reconnects, and a notice when it has
my @down = $t->read_error_log($mark) =~ /(device_auth: cannot connect to redis)/g;
is(scalar(@down), 1, 'redis down at start: the failure logged once');
like($t->read_error_log($mark),
     qr/\[notice\] .*device_auth: connected to redis at "127\.0\.0\.1:\d+"/,
     'redis down at start: reconnect logged at notice');

# one outage, two causes: each is logged once (refused, then NOAUTH)

$mark = $t->log_mark();
$t->redis_stop();
is_failing('redis stopped again');
$t->redis_start('--requirepass', 'other');
is_failing('redis back, asking for a password nginx does not have');

my $causes = $t->wait_error_log(qr/"SCRIPT LOAD" failed at "127\.0\.0\.1:\d+": NOAUTH/,
                                mark => $mark);
ok($causes, 'the new cause of the outage is logged');
my @refused = ($causes // '') =~ /(cannot connect to redis|connection to "[^"]*" lost)/g;
ok(@refused >= 1, 'and the first cause was logged before it');
# the causes in the order they were logged: a cause is logged again only
# after another one (a handshake that timed out on a busy machine, say)
my @causes = ($causes // '') =~ /device_auth: (cannot connect to redis|redis connection to "[^"]*" lost|redis "SCRIPT LOAD" failed at "[^"]*": NOAUTH|redis at "[^"]*" did not answer)/g;
is(scalar(grep { $causes[$_] eq $causes[$_ - 1] } 1 .. $#causes), 0,
   'each cause once, whatever the reconnect attempts')
    or diag(join "\n", @causes);

$t->redis_stop();
$t->redis_start();
recovers('redis back without a password');


###############################################################################
# killed mid-run, then restarted on the same port

$t->redis_stop('KILL');
is_failing('redis killed');

sleep(0.3);
$t->redis_start();
recovers('redis restarted after a crash');


###############################################################################
# the connection killed by Redis (CLIENT KILL), Redis still up

$mark = $t->log_mark();
cmp_ok($t->redis_cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'),
       '>=', 1, 'CLIENT KILL: the module\'s connection killed');
ok($t->wait_error_log(qr/redis connection to "127\.0\.0\.1:\d+" lost/,
                      mark => $mark),
   'CLIENT KILL: the loss is logged');
recovers('CLIENT KILL');


###############################################################################
# an error reply (a key of the wrong type, an ops mistake): the fail mode,
# the connection stays

$mark = $t->log_mark();
$t->redis_cli('HSET', $revoked_key, 'reason', 'stolen');
is_failing('error reply');
ok($t->wait_error_log(qr/lookup of serial \Q$serial\E failed: .*WRONGTYPE/,
                      mark => $mark),
   'error reply: logged');
$t->redis_cli('DEL', $revoked_key);
is_ok('error reply gone');
unlike($t->read_error_log($mark), qr/dropping redis connection|connected to redis/,
       'error reply: the connection stayed');


###############################################################################
# stopped (SIGSTOP) past the timeout (200 ms): answered by the fail mode
# while Redis is still stopped, not when it answers again: Redis gets
# SIGCONT only after both answers came, whatever their time.  Not before
# the timeout: the answer waits at least that long.  Devices not cached:
# a cached one is answered from the cache until the heartbeat notices
# (t/edge-state.t).

$mark = $t->log_mark();

my @stopped = map { [fresh()] } 1 .. 2;

kill 'STOP', $t->redis_pid;

my ($took, $r);
($st, $xs, undef, $took) = probe('closed', device => $stopped[0][0]);
is("$st $xs", '503 error', 'stopped: closed: 503 error, Redis still stopped');
cmp_ok($took, '>=', 0.2, 'stopped: closed waited for the timeout');

($st, $xs, my $up, $took) = probe('open', device => $stopped[1][0]);
is("$st $xs $up", '200 unchecked unchecked',
   'stopped: open: 200 unchecked, Redis still stopped');

ok($t->wait_error_log(qr/lookup of serial \Q$stopped[0][1]\E failed: redis timeout after 200 ms/,
                      mark => $mark),
   'stopped: error log names the timeout');
like($t->read_error_log($mark),
     qr/device_auth: dropping redis connection to "127\.0\.0\.1:\d+": lookup timed out/,
     'stopped: the connection is dropped after a timeout');

kill 'CONT', $t->redis_pid;

recovers('stopped no more');


###############################################################################
# clean restart: the script is loaded again on connect (no NOSCRIPT)

is($t->redis_cli('SCRIPT', 'EXISTS', $script_sha), 1,
   'the script is in the Redis cache');

$t->redis_cli('SHUTDOWN', 'NOSAVE');
$t->redis_stop();
is_failing('redis shut down');

$mark = $t->log_mark();
$t->redis_start();
recovers('redis restarted cleanly');

is($t->redis_cli('SCRIPT', 'EXISTS', $script_sha), 1,
   'restart: the script is loaded again');
my $log = $t->read_error_log($mark);
like($log, qr/device_auth: connected to redis at "127\.0\.0\.1:\d+"/,
     'restart: reconnect logged');
unlike($log, qr/script not in the redis cache/,
       'restart: loaded on connect, not after NOSCRIPT');


###############################################################################
# SCRIPT FLUSH: the very next request is still answered (NOSCRIPT -> EVAL)

for my $loc (qw(closed open)) {
    $mark = $t->log_mark();
    is($t->redis_cli('SCRIPT', 'FLUSH'), 'OK', "flush before $loc");

    my ($st, $xs, $up) = probe($loc, device => (fresh())[0]);
    is("$st $xs $up", '200 ok ok', "script flushed: $loc: next request 200 ok");

    ok($t->wait_error_log(qr/\[notice\] .*device_auth: script not in the redis cache/,
                          mark => $mark),
       "script flushed: $loc: NOSCRIPT logged");
    is($t->redis_cli('SCRIPT', 'EXISTS', $script_sha), 1,
       "script flushed: $loc: EVAL loaded it again");
}


###############################################################################
# a revocation survives a Redis crash (append-only file): the device is
# refused again on reconnect, never let in as ok

$t->redis_stop();
$t->redis_start('--appendonly', 'yes', '--appendfsync', 'always');
recovers('redis with persistence');

$t->redis_cli('SET', $revoked_key, 'stolen, ticket 4711');
for my $loc (qw(closed open)) {
    my ($st, $xs) = probe($loc);
    is("$st $xs", '403 revoked', "revoked: $loc 403");
}

$t->redis_stop('KILL');

# fail open lets even a revoked device in while Redis is down: that is
# what "open" means
is_failing('revoked device, redis down');

$t->redis_start('--appendonly', 'yes', '--appendfsync', 'always');

my @seen;
my $start = time();
while (time() - $start < 7) {
    my ($st, $xs) = probe('closed');
    push @seen, "$st $xs" unless @seen && $seen[-1] eq "$st $xs";
    last if $st != 503;
    sleep(0.1);
}
is($seen[-1], '403 revoked', 'revoked after the crash: refused on reconnect')
    or diag(join ' -> ', @seen);
ok(!grep({ $_ eq '200 ok' } @seen), 'revoked after the crash: never 200 ok');
($st, $xs) = probe('open');
is("$st $xs", '403 revoked', 'revoked after the crash: open location 403');

$t->redis_cli('DEL', $revoked_key);
is_ok('unrevoked');


###############################################################################
# graceful reload with lookups in flight: the old worker finishes them.
# Redis is stopped (SIGSTOP) while they are in flight and continued once
# the reload is done: the answers come after that, by construction; the
# timeout (30 s) is far beyond anything the steps take.

conf('127.0.0.1:%%REDIS_PORT%%', 'device_auth_redis_timeout 30s;');
ok($t->reload(), 'reload to a 30 s timeout');
recovers('after reload', 3);

my ($old) = (worker_pids())[-1];
my $n = 5;

my @inflight = map { (fresh())[0] } 1 .. $n;

kill 'STOP', $t->redis_pid;
my $paused = time();

my @kids = map { background("inflight.$_", 'closed', $paused, $inflight[$_ - 1]) }
           1 .. $n;

# the lookups are waiting in Redis
is(wait_inflight($n, $paused + 20), $n, "reload: $n lookups in flight");

$mark = $t->log_mark();
ok($t->reload(), 'reload: reloaded, the lookups still wait');

my $continued = time() - $paused;
kill 'CONT', $t->redis_pid;

waitpid($_, 0) for @kids;

my @res = map { $t->read_file("inflight.$_") } 1 .. $n;
chomp @res;
is(scalar(grep { /^200 ok / } @res), $n, 'reload: every request answered 200 ok')
    or diag(join "\n", @res);
ok(!grep({ /^\S+ \S+ (\S+)/ && $1 < $continued } @res),
   'reload: answered once Redis answered, after the reload')
    or diag(join "\n", @res);

ok($t->wait_error_log(qr/worker process $old exited with code 0/,
                      mark => $mark, timeout => 5),
   'reload: the old worker exited');

is_ok('after the reload');


###############################################################################
# killed with lookups in flight (stopped, timeout 30 s): they fail at once,
# by the fail mode, for the lost connection, not for the timeout

my @killed = map { [fresh()] } 1 .. 2;

kill 'STOP', $t->redis_pid;
$paused = time();
$mark = $t->log_mark();

@kids = (background('killed.closed', 'closed', $paused, $killed[0][0]),
         background('killed.open', 'open', $paused, $killed[1][0]));

is(wait_inflight(2, $paused + 20), 2, 'kill: 2 lookups in flight');

$t->redis_stop('KILL');

waitpid($_, 0) for @kids;

for my $loc (qw(closed open)) {
    my ($res) = split /\n/, $t->read_file("killed.$loc");
    my ($st, $xs) = split / /, $res || '';
    is("$st $xs", $loc eq 'closed' ? '503 error' : '200 unchecked',
       "kill: in-flight request in $loc answered by the fail mode");
}

like($t->read_error_log($mark),
     qr/lookup of serial (\Q$killed[0][1]\E|\Q$killed[1][1]\E) failed: no reply: connection lost/,
     'kill: failed for the lost connection');
unlike($t->read_error_log($mark), qr/redis timeout after/,
       'kill: not for the timeout');

# a graceful reload while Redis is down: the reconnect timer does not
# hold the old worker back

sleep(0.5);
($old) = (worker_pids())[-1];
$mark = $t->log_mark();
ok($t->reload(), 'reload while redis is down');
ok($t->wait_error_log(qr/worker process $old exited with code 0/,
                      mark => $mark, timeout => 5),
   'reload while redis is down: the old worker exited');
is_failing('reload while redis is down');

$t->redis_start();
recovers('redis restarted after a kill with lookups in flight');


###############################################################################
# what the metrics saw

my $m = metrics();

for my $kind (qw(timeout not_connected disconnected noscript error_reply)) {
    my $k = "nginx_device_auth_redis_errors_total{kind=\"$kind\"}";
    cmp_ok($m->{$k} || 0, '>', 0, "metrics: $kind errors counted");
}
cmp_ok($m->{nginx_device_auth_redis_reconnects_total} || 0, '>', 0,
       'metrics: reconnects counted');
is($m->{nginx_device_auth_redis_connections_ready}, 1,
   'metrics: one worker connected at the end');
is($m->{nginx_device_auth_lookups_in_flight}, 0,
   'metrics: nothing in flight at the end');

$t->check_error_log();

done_testing();
