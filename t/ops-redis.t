#!/usr/bin/perl

# Redis that is there but not the one operations write to (issue 15,
# section 1):
#
#   - device_auth_redis_canary: while the key is missing, Redis is
#     unavailable to the edge: logged at crit, the grace then the fail mode
#     decides, a metric says so.  At the first connect; its deletion and
#     FLUSHALL are pushed (the key is read with CLIENT CACHING), the cached
#     facts serve the grace meanwhile, and a revoked device is never let in
#     by a Redis that forgot its revocation: not after FLUSHALL, not after
#     a restart empty, not from another prefix;
#   - a wrong password (WRONGPASS), none where one is needed (NOAUTH), an
#     ACL user without a needed command (NOPERM): each request's log line,
#     $device_auth_reason and the metrics say which.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(decision_lines);

my $t = DeviceAuth::Test->new();
$t->skip_under_valgrind('restarts Redis and polls under load');

my $P = 'device_auth:';

my $template = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%% #AUTH#;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;
    #HTTP#

    device_auth_log_interval 0;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        location / {
            device_auth on;
            device_auth_grace 3s;
            return 200 "$device_auth_status\n";
        }

        location /strict {
            device_auth on;
            device_auth_grace 0;
            return 200 "$device_auth_status\n";
        }

        location /open {
            device_auth on;
            device_auth_grace 0;
            device_auth_fail_mode open;
            return 200 "$device_auth_status\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }
}
EOF

sub conf {
    my (%o) = @_;
    (my $c = $template) =~ s/#AUTH#/$o{auth} || ''/e;
    $c =~ s/#HTTP#/$o{http} || ''/e;
    $t->write_conf($c);
}

my $n = 0;

sub device {
    my $serial = sprintf('0123CA%012X', ++$n);
    return { name => $t->make_device(name => "c$n", serial => $serial),
             serial => $serial };
}

sub req {
    my ($dev, $path) = @_;
    my $r = $t->https_get($dev ? (device => $dev->{name}) : (),
                          path => $path || '/');
    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}

sub reason {
    my ($dev, $path) = @_;
    my $r = $t->https_get(device => $dev->{name}, path => $path || '/');
    return $r->{headers}{'x-reason'} // '';
}

# polls until DEV gets WANT (bounded): true or false; every answer seen
# before goes into @$seen
sub becomes {
    my ($dev, $path, $want, $seen) = @_;
    my $end = time() + 15;
    my $st = '';
    while (time() < $end) {
        $st = req($dev, $path);
        push @$seen, $st if $seen;
        return 1 if $st eq $want;
        sleep(0.05);
    }
    diag("still \"$st\", not \"$want\"");
    return 0;
}

sub metrics {
    my $r = $t->https_get(path => '/metrics');
    return { map { /^([^#\s]\S*) (\S+)$/ ? ($1 => $2) : () }
             split /\n/, $r->{body} || '' };
}

sub redis_errors { metrics()->{"nginx_device_auth_redis_errors_total{kind=\"$_[0]\"}"} // 0 }

sub key { "$P\{$_[0]}:$_[1]" }


###############################################################################
# the canary

$t->redis_start();
conf(http => 'device_auth_redis_canary canary;');

my $mark = $t->log_mark();
$t->run();

my $d1 = device();
my $d2 = device();

# missing at the first connect: unavailable

is(req($d1, '/strict'), '503 error', 'canary missing at start: 503');
like(reason($d1, '/strict'), qr/^redis canary \\x22device_auth:canary\\x22 missing$/,
     'canary missing: $device_auth_reason says so');
is(req($d1, '/open'), '200 unchecked', 'canary missing: fail mode open');

my $log = $t->wait_error_log(qr/\[crit\]/, mark => $mark);
like($log, qr/\[crit\] [^\n]*device_auth: redis canary "device_auth:canary" missing at "127\.0\.0\.1:\d+" db 0: redis was restarted empty or flushed, or this is not the database or prefix that operations write; it is treated as unavailable: the grace, then device_auth_fail_mode decides/,
     'canary missing: logged at crit, with what it means');
is(scalar(() = $log =~ /\[crit\]/g), 1, 'canary missing: logged once');

my ($line) = grep { $_->{status} eq 'error' } decision_lines($log);
is($line->{reason}, 'redis canary \x22device_auth:canary\x22 missing',
   'canary missing: the rejection line says why');

is(metrics()->{nginx_device_auth_redis_canary_missing}, 1,
   'metric: the worker finds the canary missing');
ok(redis_errors('canary_missing') >= 2,
   'metric: the requests that failed for it');

# set: the link comes up (read again every heartbeat while missing)

$mark = $t->log_mark();
$t->redis_cli('SET', "${P}canary", 'set once, ticket 4800');
ok(becomes($d1, '/strict', '200 ok'), 'canary set: 200 ok');
like($t->wait_error_log(qr/canary "device_auth:canary" found/, mark => $mark) // '',
     qr/\[notice\] [^\n]*device_auth: redis canary "device_auth:canary" found at "127\.0\.0\.1:\d+" db 0: device state is read from redis again/,
     'canary found: said at notice');
is(metrics()->{nginx_device_auth_redis_canary_missing}, 0,
   'metric: the canary is there');

# the canary deleted while the link is up: pushed; cached devices get the
# grace, others the fail mode

$t->redis_cli('SET', key($d2->{serial}, 'revoked'), 'stolen');
is(req($d2, '/'), '403 revoked', 'a revoked device: 403');
is(req($d1, '/'), '200 ok', 'a genuine device: 200, cached');
my $d3 = device();

$mark = $t->log_mark();
$t->redis_cli('DEL', "${P}canary");

ok($t->wait_error_log(qr/\[crit\][^\n]*canary/, mark => $mark),
   'canary deleted: noticed at once (pushed), crit');
is(req($d1, '/'), '200 ok', 'canary deleted: a cached device keeps its '
   . 'verdict for the grace');
is(req($d2, '/'), '403 revoked', 'canary deleted: a cached revocation too');
is(req($d3, '/'), '503 error', 'canary deleted: a device not cached: 503');
is(req($d1, '/strict'), '503 error', 'canary deleted: grace 0: 503');

my @seen;
ok(becomes($d2, '/', '503 error', \@seen),
   'canary deleted: past the grace, the revoked device gets 503');
ok(!grep({ /^200/ } @seen), 'canary deleted: the revoked device is never '
   . 'let in') or diag(join ', ', @seen);
ok(becomes($d1, '/', '503 error'), 'canary deleted: past the grace, 503');

$t->redis_cli('SET', "${P}canary", 'set again');
ok(becomes($d1, '/', '200 ok'), 'canary set again: 200 ok');
is(req($d2, '/'), '403 revoked', 'canary set again: the revocation holds');

# FLUSHALL: the revocation is gone from Redis, the canary with it; the
# revoked device is never let in, and the genuine one after the grace gets
# the fail mode until ops restore the canary

is(req($d1, '/'), '200 ok', 'before FLUSHALL: genuine, cached');
is(req($d2, '/'), '403 revoked', 'before FLUSHALL: revoked, cached');

$mark = $t->log_mark();
$t->redis_cli('FLUSHALL');

@seen = ();
my $end = time() + 5;
while (time() < $end) {
    push @seen, req($d2, '/');
    sleep(0.05);
}
ok(!grep({ /^200/ } @seen), 'FLUSHALL: the revoked device is never let in')
    or diag(join ', ', @seen);
is($seen[-1], '503 error', 'FLUSHALL: past the grace, 503');
like($t->read_error_log($mark), qr/\[crit\][^\n]*canary "device_auth:canary" missing/,
     'FLUSHALL: crit');

# ops restore the data and the canary (from their backup)
$t->redis_cli('SET', key($d2->{serial}, 'revoked'), 'stolen');
$t->redis_cli('SET', "${P}canary", 'restored');
ok(becomes($d1, '/', '200 ok'), 'restored: 200 ok');
is(req($d2, '/'), '403 revoked', 'restored: 403 revoked');

# Redis restarted empty (no persistence): the same

is(req($d2, '/'), '403 revoked', 'before the restart: revoked, cached');
$mark = $t->log_mark();
$t->redis_stop();
$t->redis_start();

@seen = ();
$end = time() + 6;
while (time() < $end) {
    push @seen, req($d2, '/');
    sleep(0.05);
}
ok(!grep({ /^200/ } @seen), 'restarted empty: the revoked device is never '
   . 'let in') or diag(join ', ', @seen);
is($seen[-1], '503 error', 'restarted empty: 503');
like($t->read_error_log($mark), qr/\[crit\][^\n]*canary "device_auth:canary" missing/,
     'restarted empty: crit');
is(req($d1, '/open'), '200 unchecked', 'restarted empty: fail mode open');

$t->redis_cli('SET', "${P}canary", 'restored');
$t->redis_cli('SET', key($d2->{serial}, 'revoked'), 'stolen');
ok(becomes($d2, '/', '403 revoked'), 'canary and revocation restored: 403');

$t->check_error_log();


###############################################################################
# without client-side caching (an ACL without SUBSCRIBE): the canary is
# read again every heartbeat

$t->redis_cli('ACL', 'SETUSER', 'nosub', 'on', '>secret', '~*', '&*', '+@all',
              '-subscribe');
conf(auth => 'user=nosub password=secret',
     http => 'device_auth_redis_canary canary;');
$t->run();

is(req($d1, '/strict'), '200 ok', 'untracked: the canary there, 200');
is(req($d2, '/strict'), '403 revoked', 'untracked: revoked, 403');
is(metrics()->{nginx_device_auth_invalidation_links_up}, 0,
   'untracked: no invalidation link');

$mark = $t->log_mark();
$t->redis_cli('DEL', "${P}canary");
@seen = ();
ok(becomes($d2, '/strict', '503 error', \@seen),
   'untracked: the canary deleted is found out, 503');
ok(!grep({ /^200/ } @seen), 'untracked: the revoked device never let in');
$t->redis_cli('SET', "${P}canary", 'back');
ok(becomes($d1, '/strict', '200 ok'), 'untracked: the canary back, 200');

$t->check_error_log();


###############################################################################
# another prefix than the one operations write: the canary is not found

conf(http => 'device_auth_redis_canary canary; '
             . 'device_auth_redis_prefix staging:;');
$mark = $t->log_mark();
$t->run();

is(req($d2, '/strict'), '503 error',
   'another prefix: the canary is missing there, 503 (not 200)');
like($t->wait_error_log(qr/\[crit\]/, mark => $mark) // '',
     qr/redis canary "staging:canary" missing/,
     'another prefix: crit names the key it looked for');

$t->check_error_log();


###############################################################################
# a wrong password, none, an ACL that refuses

sub refused {
    my ($name, %o) = @_;

    $t->redis_stop();
    $t->redis_start(@{ $o{redis} });
    $t->redis_cli(@$_) for @{ $o{setup} || [] };

    conf(auth => $o{auth});
    my $mark = $t->log_mark();
    $t->run();

    my $before = redis_errors($o{kind});
    my $d = device();
    my $r = $t->https_get(device => $d->{name}, path => '/strict');

    is(($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-'),
       '503 error', "$name: 503");
    like($r->{headers}{'x-reason'} // '', $o{reason},
         "$name: \$device_auth_reason says why");

    my ($l) = grep { $_->{status} eq 'error' }
              decision_lines($t->wait_error_log(qr/device rejected/,
                                                mark => $mark) // '');
    like($l->{reason} // '', $o{reason},
         "$name: the request's log line says why");

    $r = $t->https_get(device => $d->{name}, path => '/open');
    like($r->{headers}{'x-reason'} // '', $o{reason},
         "$name: an unchecked request too");

    cmp_ok(redis_errors($o{kind}) - $before, '>=', 2,
           "$name: metric redis_errors{kind=\"$o{kind}\"}");
    is(metrics()->{'nginx_device_auth_redis_errors_total{kind="not_connected"}'},
       0, "$name: not counted as not_connected");

    $t->check_error_log();
}

refused('wrong password',
        redis => ['--requirepass', 'right'], auth => 'password=wrong',
        kind => 'wrongpass',
        reason => qr/^redis not connected: redis \\x22AUTH\\x22 failed at \\x22127\.0\.0\.1:\d+\\x22: WRONGPASS invalid username-password pair/);

refused('no password',
        redis => ['--requirepass', 'right'], auth => '',
        kind => 'noauth',
        reason => qr/^redis not connected: redis \\x22SCRIPT LOAD\\x22 failed at \\x22127\.0\.0\.1:\d+\\x22: NOAUTH Authentication required/);

refused('an ACL without SCRIPT LOAD',
        redis => [],
        setup => [['ACL', 'SETUSER', 'edge', 'on', '>secret', '~device_auth:*',
                   '&__redis__:invalidate', '+@all', '-script|load']],
        auth => 'user=edge password=secret',
        kind => 'noperm',
        reason => qr/^redis not connected: redis \\x22SCRIPT LOAD\\x22 failed at \\x22127\.0\.0\.1:\d+\\x22: NOPERM /);

done_testing();
