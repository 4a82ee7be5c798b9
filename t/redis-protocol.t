#!/usr/bin/perl

# A Redis (or anything on the path) that breaks the protocol (issue 9,
# items 4, 5, 9): replies nobody asked for, at once or later, an extra
# error before pipelined replies, replies swapped, bytes that are no RESP,
# an array announced with 2^31 elements, a refused SELECT.  The worker must
# never abort (hiredis' async layer asserts on an unasked reply), never pair
# a reply with another lookup (a revoked device must never be let in), and
# treat all of it as a Redis error: the connection is dropped, the fail
# mode decides, the module reconnects.  Nothing may be sent before AUTH and
# SELECT succeeded.  The misbehaving server is t/lib/fakeredis.pl.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use DeviceAuth::Test qw(upstream_values);

my $t = DeviceAuth::Test->new();

my $ok_serial = $t->serial('dev1');
my $revoked_serial = $t->serial('dev2');
my $fake_log = $t->testdir . '/fake.log';

my $template = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%PORT_fake%%#DB#;
    device_auth_redis_timeout 2s;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

sub start {
    my ($mode, $db) = @_;

    unlink $fake_log;
    $t->daemon_start('fake', $t->port('fake'), $^X,
                     $t->repo . '/t/lib/fakeredis.pl', $t->port('fake'),
                     $mode, $fake_log, $revoked_serial);

    (my $c = $template) =~ s/#DB#/$db ? " db=$db" : ''/e;
    $c =~ s/^(\s*)(device_auth_redis_timeout .*)$/$1$2\n$1device_auth_redis_canary canary;/m
        if $mode eq 'slowcanary';
    $t->write_conf($c);
    $t->run();
}

sub stop {
    $t->check_error_log();
    $t->daemon_stop('fake');
}

sub get {
    my ($dev) = @_;
    my $r = $t->https_get(device => $dev);
    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '');
}

# the two devices at once, in two processes: their lookups are in flight
# together on the worker's one Redis connection
sub both {
    my %st;

    for my $dev ('dev1', 'dev2') {
        my $pid = fork();
        die "fork: $!" unless defined $pid;

        if ($pid == 0) {
            my $res = get($dev);
            $t->write_file("both.$dev", $res);
            POSIX::_exit(0);
        }

        $st{$dev} = $pid;
    }

    waitpid($_, 0) for values %st;

    return map { $_ => $t->read_file("both.$_") } qw(dev1 dev2);
}

sub fake_log { return $t->read_file($fake_log) }

# waits until the module connected again (the fake saw a new SCRIPT LOAD)
sub reconnected {
    my ($n) = @_;
    my $end = time() + 10;

    while (time() < $end) {
        my $loads = () = fake_log() =~ /SCRIPT/g;
        return 1 if $loads >= $n;
        sleep(0.05);
    }

    return 0;
}

my $dropped = qr/dropping redis connection to "127\.0\.0\.1:\d+": /;

# the fake itself answers right: the baseline
start('normal');
is(get('dev1'), '200 ok', 'normal: a device is let in');
is(get('dev2'), '403 revoked', 'normal: a revoked device is refused');
stop();

# every reply twice: the second is caught before hiredis sees it
start('double');
is(get('dev1'), '503 error', 'double: the lookup fails by the fail mode');
like($t->wait_error_log(qr/${dropped}it sent a reply that nobody asked for/)
     // '', qr/${dropped}it sent a reply that nobody asked for/,
     'double: connection dropped for the reply nobody asked for');
ok(reconnected(2), 'double: the module connects again');
is(get('dev2'), '503 error', 'double: a revoked device is not let in');
stop();

# a reply nobody asked for, later: it used to abort the worker
start('late');
is(get('dev1'), '200 ok', 'late: the reply asked for is used');
ok(reconnected(2), 'late: after the reply nobody asked for, a reconnect');
like(fake_log(), qr/sent-late/, 'late: the fake sent it');
like($t->wait_error_log(qr/${dropped}it sent a reply that nobody asked for/)
     // '', qr/${dropped}it sent a reply that nobody asked for/,
     'late: connection dropped for it');
is(get('dev1'), '200 ok', 'late: the new connection serves');
stop();

# an extra error before two pipelined replies: counted, dropped
start('errfirst');
{
    my %st = both();
    like(fake_log(), qr/paired 2/, 'errfirst: both lookups were in flight');
    isnt($st{dev2}, '200 ok', 'errfirst: the revoked device is not let in');
    is($st{dev2}, '503 error', 'errfirst: it gets the fail mode');
    like($st{dev1}, qr/^503 error$/, 'errfirst: so does the other');
}
stop();

# the same number of replies, but each another lookup's: the serial in the
# reply tells
start('swap');
{
    my %st = both();
    like(fake_log(), qr/paired 2/, 'swap: both lookups were in flight');
    is($st{dev2}, '503 error',
       'swap: the revoked device does not get the other\'s "ok"');
    is($st{dev1}, '503 error',
       'swap: the good device does not get the other\'s "revoked"');
    like($t->read_error_log(),
         qr/reply of another lookup \(serial (\Q$ok_serial\E|\Q$revoked_serial\E)\)/,
         'swap: logged as a reply of another lookup');
    like($t->read_error_log(), qr/${dropped}its replies no longer match/,
         'swap: connection dropped');
}
stop();

# no RESP at all, and an array of 2^31 elements
for my $mode ('garbage', 'huge') {
    start($mode);
    is(get('dev1'), '503 error', "$mode: the fail mode decides");
    like($t->read_error_log(),
         qr/${dropped}it sent bytes that are no reply the module asked for/,
         "$mode: connection dropped");
    stop();
}

# SELECT refused: nothing else is sent on that connection
start('noselect', 3);
is(get('dev1'), '503 error', 'noselect: the fail mode decides');
like($t->read_error_log(), qr/redis "SELECT" failed at "127\.0\.0\.1:\d+": ERR DB index is out of range/,
     'noselect: the refusal is logged');
{
    my $log = fake_log();
    like($log, qr/^\d+ SELECT 3$/m, 'noselect: SELECT was sent');
    unlike($log, qr/EVAL/, 'noselect: no lookup ever reached redis');
}
stop();

# a message of the wrong shape on the invalidation channel: the subscriber
# is dropped (and again at each reconnect); the command connection serves
# without the cache meanwhile, each lookup read from Redis
start('badpush');
ok($t->wait_error_log(qr/redis invalidation subscriber at "127\.0\.0\.1:\d+": unexpected message on the invalidation channel/),
   'badpush: the subscriber is dropped for it');
is(get('dev1'), '200 ok', 'badpush: a device is let in');
is(get('dev2'), '403 revoked', 'badpush: a revoked device is refused');
is(get('dev2'), '403 revoked', 'badpush: and again');
{
    # the signer's facts, read for each request: none kept
    my $gets = () = fake_log() =~ /GET \S+:revoked$/mg;
    is($gets, 3, 'badpush: each lookup went to redis, none kept')
        or diag(fake_log());
}
stop();

# the subscriber is ready while the canary is still read on the command
# connection: the command connection retracks into it, and the canary's
# answer comes while that retrack is under way.  A request waiting for
# the link then was woken with "ok", found the link still coming, waited
# again in the queue being woken, and the worker looped there forever.
start('slowcanary');
{
    my $asked = time();
    is(get('dev1'), '200 ok', 'slowcanary: the request waiting for the '
                              . 'link is let in');
    my ($released) = fake_log() =~ /^\d+ released ([\d.]+)$/m;
    ok($released && $asked < $released,
       'slowcanary: it was asked while the canary was held')
        or diag(fake_log());
    like(fake_log(), qr/^(\d+) GET device_auth:canary\n(?:.*\n)*?\1 CLIENT TRACKING\n(?:.*\n)*?\1 released/m,
         'slowcanary: the retrack was sent while the canary was held');
    is(get('dev2'), '403 revoked', 'slowcanary: the worker serves on');
}
stop();

done_testing();
