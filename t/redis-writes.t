#!/usr/bin/perl

# Commands to Redis go out from a posted write event at the end of the
# event loop iteration, not through epoll (docs/design.md, "Pipelining"):
# once connected, a worker makes no epoll_ctl() for its Redis socket.
#
# This also guards the lookup command's head (issue 9, item 5): it used to
# be formatted into a 64-byte buffer that its 72 bytes overran, onto the
# connection's flags that follow it: "writing" stuck at 1 sent every batch
# of commands through epoll_ctl() instead, two calls a request.  The calls
# are counted with strace on the worker, for 50 requests on one keepalive
# connection: a count, not a time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use DeviceAuth::Test;

plan skip_all => 'no strace (make deps)'
    unless system('sh -c "command -v strace" >/dev/null') == 0;

my $t = DeviceAuth::Test->new();

$t->skip_under_valgrind('strace cannot attach to a process under valgrind');

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;
        keepalive_requests 1000;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $r = $t->https_get(device => 'dev1');
is($r->{body}, "ok\n", 'a device is checked in redis');

# the worker, as the master names it: under ASan the master may have
# another child (the symbolizer, reading its stdin)
my ($worker) = $t->read_error_log() =~ /start worker process (\d+)/;
ok($worker && _ppid($worker) == $t->nginx_pid, "the worker: pid $worker");

my $trace = $t->testdir . '/strace.out';
my $st = fork();
die "fork: $!" unless defined $st;

if ($st == 0) {
    open STDERR, '>', $t->testdir . '/strace.stderr';
    exec 'strace', '-q', '-p', $worker, '-e', 'trace=epoll_ctl,read,write',
         '-o', $trace;
    exit 127;
}

# attached once a request shows in the trace
my $end = time() + 10;
while (time() < $end) {
    $t->https_get(device => 'dev1');
    last if -s $trace && $t->read_file($trace) =~ /^(read|write)\(/m;
    sleep(0.1);
}
ok(-s $trace, 'strace attached to the worker');

my $mark = length $t->read_file($trace);

$r = $t->https_get(device => 'dev1', keepalive => 50);
is(scalar(grep { ($_->{body} // '') eq "ok\n" } @{ $r->{responses} }), 50,
   '50 requests on one connection, each checked in redis');

# strace writes as the calls happen: the trace is complete once the
# worker is idle again; a last request closes the keepalive connection
sleep(0.2);
kill 'INT', $st;
waitpid($st, 0);

my $calls = substr($t->read_file($trace), $mark);
my $ctl = () = $calls =~ /^epoll_ctl\(/mg;
my $writes = () = $calls =~ /^write\(/mg;

ok($writes >= 50, "commands written to redis ($writes writes traced)");
cmp_ok($ctl, '<=', 6, 'no epoll_ctl() per command: the posted write '
       . "($ctl epoll_ctl for 50 requests)");

$t->check_error_log();

done_testing();


sub _ppid {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $line = <$fh> // '';
    return $line =~ /^\d+ \(.*\) \S+ (\d+) /s ? $1 : 0;
}
