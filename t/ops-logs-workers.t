#!/usr/bin/perl

# The decision lines' interval holds for the whole edge, not per worker
# (issue 15, section 5: "at most one line per serial and reason per
# interval"): two workers behind a "reuseport" listener, a revoked device
# that reconnects 30 times, its connections spread by the kernel over both
# workers; one line, whichever worker wrote it.  A reload keeps what was
# logged (the shared table survives it, as the metrics do).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(decision_lines);

my $t = DeviceAuth::Test->new();

$t->skip_under_valgrind('two workers and a reload');

$t->write_conf(<<'EOF');
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl reuseport;
        server_name localhost;

        add_header X-Status $device_auth_status always;
        add_header X-Pid $pid always;

        location / {
            device_auth on;
            device_auth_log_interval 1h;
            return 200 "$device_auth_status\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $sn = $t->serial('dev1');

$t->redis_cli('SET', "device_auth:{$sn}:revoked", 'stolen, ticket 9');

# each request is a connection of its own
sub attempts {
    my ($n) = @_;
    my (%pids, @st);

    for (1 .. $n) {
        my $r = $t->https_get(device => 'dev1');
        push @st, $r->{status} // $r->{error};
        $pids{ $r->{headers}{'x-pid'} }++ if $r->{headers}{'x-pid'};
    }

    return (\@st, \%pids);
}

# the line of a request is written before its response: every line of
# these 30 is in the log once the last answer is read
my $mark = $t->log_mark();
my ($st, $pids) = attempts(30);

is_deeply($st, [(403) x 30], 'a revoked device reconnecting: 403 each time');
is(scalar keys %$pids, 2, 'its connections reached both workers')
    or diag(explain($pids));

my @l = grep { ($_->{serial} // '') eq $sn }
        decision_lines($t->read_error_log($mark));
is(scalar @l, 1, 'one line for the serial and decision, not one per worker');
is($l[0] && $l[0]{status}, 'revoked', 'the line: revoked');

# a reload: the new workers know what the old ones logged
SKIP: {
    skip 'reload failed', 3 unless $t->reload();

    my $old = $pids;

    $mark = $t->log_mark();
    ($st, $pids) = attempts(10);

    is_deeply($st, [(403) x 10], 'after a reload: 403');
    ok(keys %$pids && !grep({ $old->{$_} } keys %$pids),
       'after a reload: the new workers answered');
    @l = grep { ($_->{serial} // '') eq $sn }
         decision_lines($t->read_error_log($mark));
    is(scalar @l, 0, 'after a reload: no new line within the interval');
}

$t->stop();

done_testing();
