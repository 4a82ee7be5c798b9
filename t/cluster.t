#!/usr/bin/perl

# Redis Cluster (issue 12): three primaries and three replicas with a
# password, made by redis-cli --cluster create, on loopback; an nginx edge
# of two workers configured with three of them as seeds.
#
#   - the slot map: a device is read from the node of its {SN}'s slot, a
#     revocation written with "redis-cli -c" through any node applies, a
#     signer's facts (two keys, two slots) too, and the runbook's commands
#     work with -c;
#   - 1,000 devices spread over the slots of all three primaries, under
#     load: "redis-cli --cluster reshard" moves 2,000 slots (-MOVED, -ASK,
#     -TRYAGAIN as keys migrate) and no request is refused; a device cached
#     before its slot moved is refused once revoked on its new node;
#   - CLUSTER FAILOVER of a replica under load: no request refused, a
#     revocation on the new primary applies;
#   - the edge cut off from a primary, no failover (its password changed,
#     the edge's connections there killed, reconnections refused with
#     WRONGPASS): a cached device of its slots keeps its verdict, one not
#     cached gets the fail mode, a revocation written there meanwhile
#     applies at the first request once the edge's link there is up again
#     (nothing read before the loss is trusted);
#   - SIGKILL of a primary (cluster-node-timeout 2000), the one of the
#     signer's revocation key: while its slots have no primary, a cached
#     device of theirs keeps its verdict (the grace), one not cached gets
#     the fail mode (closed 503, open "unchecked"), a device of another
#     primary not cached is read there, its signer's facts in their grace,
#     the load on the open location gets no refusal; once a replica took
#     over, a revocation written there applies on an open connection; the
#     time from the kill to the first decision read from the replica is
#     reported (DEVICE_AUTH_FAILOVERS=5: five kills, and the median);
#   - "redis-cli -c" runbook commands, and the listing of revoked devices
#     node by node as docs/operations.md has it.
#
# cluster-require-full-coverage no: the other slots are served while one
# has no primary (docs/operations.md).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use DeviceAuth::Test;
use DeviceAuth::RedisHA qw(redis_node cli poll ka_open ka_get loadgen
                           others errors device status becomes revoke
                           count_log wait_log key_slot cluster_nodes
                           %PASSWORD);

my $t = DeviceAuth::Test->new();

plan(skip_all => 'no bench/loadgen (make -C bench)')
    unless -x DeviceAuth::Test->repo . '/bench/loadgen';

$t->skip_under_valgrind('two workers, six cluster nodes');

my $pw = 'c1uster-secret';
my $slow = $t->sanitizer ? 3 : 1;
my @names = map { "c$_" } 1 .. 6;

%PASSWORD = map { $_ => $pw } @names;

sub node_start {
    my ($n) = @_;
    redis_node($t, $n, '--cluster-enabled', 'yes',
               '--cluster-port', $t->port("$n-bus"),
               '--cluster-config-file', 'nodes.conf',
               '--cluster-node-timeout', 2000,
               '--cluster-require-full-coverage', 'no',
               '--requirepass', $pw, '--masterauth', $pw);
}

node_start($_) for @names;

{
    my $out = `redis-cli --no-auth-warning -a $pw --cluster create @{[
        join ' ', map { '127.0.0.1:' . $t->port($_) } @names ]} --cluster-replicas 1 --cluster-yes 2>&1`;
    like($out, qr/All 16384 slots covered/, 'redis-cli --cluster create')
        or diag($out);
}

my %name_of = map { $t->port($_) => $_ } @names;

# the primaries and their replicas, as the first node alive sees them
sub topology {
    my @n;
    for my $name (grep { $t->daemon_pid($_) } @names) {
        last if @n = cluster_nodes($t, $name);
    }
    my %by = map { $_->{id} => $_ } @n;
    my @p = grep { $_->{flags} =~ /master/ && $_->{flags} !~ /fail/
                   && @{ $_->{slots} } } @n;
    my @r = grep { $_->{flags} =~ /slave/ && $_->{flags} !~ /fail/ } @n;
    return (\@p, \@r, \%by);
}

sub settled {
    for my $n (@_) {
        return 0 unless grep { /^cluster_state:ok/ }
                        cli($t, $n, 'CLUSTER', 'INFO');
    }
    my ($p, $r) = topology();
    return 0 unless @$p == 3 && @$r == 3;

    # each replica in sync: it may take over
    for my $n (@$r) {
        return 0 unless grep { /^master_link_status:up/ }
                        cli($t, $name_of{$n->{port}}, 'INFO', 'replication');
    }
    return 1;
}

ok(poll(60 * $slow, sub { settled(@names) }),
   'three primaries, three replicas, every node says ok');

# the node (name) that serves a slot now
sub owner {
    my ($slot) = @_;
    my ($p) = topology();
    for my $n (@$p) {
        for (@{ $n->{slots} }) {
            return $name_of{$n->{port}}
                if $slot >= $_->[0] && $slot <= $_->[1];
        }
    }
    return '';
}

sub dev_slot { key_slot("device_auth:{$_[0]->{serial}}:revoked") }

# a new device whose slot a given node serves (and passes a test)
sub device_on {
    my ($node, $ok) = @_;
    for (1 .. 2000) {
        my $d = device($t, 'EF');
        return $d if owner(dev_slot($d)) eq $node
                     && (!$ok || $ok->(dev_slot($d)));
    }
    die "no device for $node";
}

$t->write_conf(<<"EOF");
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%PORT_c1%% 127.0.0.1:%%PORT_c2%%
                      127.0.0.1:%%PORT_c3%% cluster password=$pw;
    device_auth_redis_timeout @{[ 2 * $slow ]}s;

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

my $mark = $t->log_mark();
$t->run();

ok(wait_log($t, qr/redis cluster slot map read from/, 2, $mark),
   'each worker read the slot map from a seed');
my $pc1 = $t->port('c1');
like($t->read_error_log($mark),
     qr/ redis="?127\.0\.0\.1:$pc1"? cluster db=0 prefix=/,
     'the start line names the first seed and the cluster');

###############################################################################
# each device from the node of its slot; revocations through any node

my ($primaries) = topology();
my @pnames = map { $name_of{$_->{port}} } @$primaries;
my %dev;

for my $p (@pnames) {
    $dev{$p} = device_on($p);
    is(status($t, $dev{$p}), '200 ok', "a device of $p\'s slots is let in");
}

for my $p (@pnames) {
    my $other = (grep { $_ ne $p } @pnames)[0];
    is(revoke($t, $other, $dev{$p}, '-c'), 'OK',
       "redis-cli -c SET through $other: redirected to $p");
    ok(becomes($t, $dev{$p}, '403 revoked'),
       "the revocation on $p applies");
}

# the runbook's listing, as docs/operations.md has it, on the cluster
{
    my $doc = $t->read_file(DeviceAuth::Test->repo . '/docs/operations.md');
    my ($list) = $doc =~ /```sh\n(redis-cli -c CLUSTER NODES [^\n]*)\n```/;
    ok($list, 'operations.md: the cluster listing');

    my $bin = $t->testdir . '/bin';
    mkdir $bin;
    my ($real) = grep { -x } map { "$_/redis-cli" } split /:/, $ENV{PATH};
    $t->write_file("$bin/redis-cli",
                   "#!/bin/sh\nexec $real -h 127.0.0.1 -p "
                   . $t->port('c1') . " \"\$@\"\n");
    chmod 0755, "$bin/redis-cli";

    local $ENV{PATH} = "$bin:$ENV{PATH}";
    local $ENV{REDISCLI_AUTH} = $pw;
    my $out = `( $list ) 2>&1`;

    is(join(' ', sort(split(/\n/, $out))),
       join(' ', sort map { "device_auth:{$dev{$_}{serial}}:revoked" } @pnames),
       'it lists the revoked devices of every primary') or diag($out);
}

is(cli($t, $pnames[0], '-c', 'GET',
       "device_auth:{$dev{$pnames[1]}{serial}}:revoked"), 'stolen',
   'runbook: GET with -c');
is(cli($t, $pnames[0], '-c', 'TTL',
       "device_auth:{$dev{$pnames[2]}{serial}}:revoked"), '-1',
   'runbook: TTL with -c');

for my $p (@pnames) {
    cli($t, $p, '-c', 'DEL', "device_auth:{$dev{$p}{serial}}:revoked");
    ok(becomes($t, $dev{$p}, '200 ok'), "runbook: DEL with -c, on $p");
}

my $signer = "device_auth:signer:" . $t->fingerprint('signer1');
is(cli($t, 'c1', '-c', 'SET', "$signer:revoked", 'retired'), 'OK',
   'runbook: a signer revoked with -c');
ok(becomes($t, $dev{$_}, '403 signer_revoked'), "its device on $_ refused")
    for @pnames;
cli($t, 'c1', '-c', 'DEL', "$signer:revoked");
ok(becomes($t, $dev{$_}, '200 ok'), "unrevoked: its device on $_ let in")
    for @pnames;

is(cli($t, 'c1', '-c', 'SET', "$signer:compromised", 'key leaked'), 'OK',
   'runbook: a signer marked compromised with -c (another slot)');
ok(becomes($t, $dev{$pnames[0]}, '403 signer_compromised'),
   'its unregistered devices refused');
cli($t, 'c1', '-c', 'SET', "device_auth:{$dev{$pnames[0]}{serial}}:registered",
    '1');
ok(becomes($t, $dev{$pnames[0]}, '200 ok'), 'a registered one let in');
cli($t, 'c1', '-c', 'DEL', "$signer:compromised");

ok(poll(10, sub { cli($t, 'c2', '-c', 'XLEN', 'device_auth:events') > 0 }),
   'runbook: the events stream, with -c');

###############################################################################
# 1,000 devices over all primaries, under load; a reshard of 2,000 slots

my $serials = $t->testdir . '/serials.txt';
loadgen($t, '-N', 1000, '--gen-only', '--serials-out', $serials)->();

my %per;
{
    open my $fh, '<', $serials or die "$serials: $!";
    while (my $sn = <$fh>) {
        chomp $sn;
        $per{owner(key_slot("device_auth:{$sn}:revoked"))}++;
    }
}
ok((grep { ($per{$_} // 0) > 200 } @pnames) == 3,
   'the fleet: over 200 devices in the slots of each primary')
    or diag(explain(\%per));

# redis-cli moves the source's first slots
my ($from, $to) = @$primaries[0, 1];
my $first = (sort { $a <=> $b } map { $_->[0] } @{ $from->{slots} })[0];
my $cached = device_on($name_of{$from->{port}},
                       sub { $_[0] >= $first && $_[0] < $first + 1000 });
my $moved_slot = dev_slot($cached);
is(status($t, $cached), '200 ok', 'a device of the first primary, cached');

# the scripts each primary runs: the fleet's load is spread over them
sub scripts {
    my %n;
    for my $p (@pnames) {
        my ($l) = grep { /^cmdstat_evalsha:/ } cli($t, $p, 'INFO',
                                                   'commandstats');
        $n{$p} = $l && $l =~ /calls=(\d+)/ ? $1 : 0;
    }
    return \%n;
}

my $scripts = scripts();

my $wait = loadgen($t, '-N', 1000, '-m', 'keepalive', '-k', 20, '-c', 16,
                   '-w', 6, '-d', 20, "$url/");
sleep(9);

{
    my $now = scripts();
    my @n = map { $now->{$_} - $scripts->{$_} } @pnames;
    my $sum = 0;
    $sum += $_ for @n;
    ok($sum && !grep({ $_ < $sum / 6 } @n),
       'the fleet\'s scripts go to every primary') or diag("@n");
    note('scripts per primary during the load: ' . join ' ', @n);
}

{
    my $out = `redis-cli --no-auth-warning -a $pw --cluster reshard 127.0.0.1:$from->{port} --cluster-from $from->{id} --cluster-to $to->{id} --cluster-slots 2000 --cluster-yes --cluster-pipeline 10 2>&1`;
    is($?, 0, 'redis-cli --cluster reshard of 2000 slots, under load')
        or diag(substr($out, -2000));
}

my $res = $wait->();
ok($res->{requests}, 'the load ran') or diag(explain($res));
is(others($res, 200), '', 'no request refused while slots moved');
is(errors($res), '', 'no transport error');

# the day's distinct devices (device_auth_stats_interval): each day's key
# is in a slot of its own, counted on its node; a run across midnight (UTC)
# splits them over two days
{
    my %days = map { POSIX::strftime('%Y-%m-%d', gmtime($_)) => 1 }
               time() - 120, time();
    my @days = sort keys %days;
    ok(poll(10, sub {
           my $n = 0;
           $n += (cli($t, 'c1', '-c', 'PFCOUNT',
                      "device_auth:devices:$_"))[0] || 0 for @days;
           return $n > 100;
       }), 'the day\'s distinct devices are counted through the cluster');
}

ok(poll(30, sub { owner($moved_slot) eq $name_of{$to->{port}} }),
   'the cached device\'s slot moved')
    or diag("slot $moved_slot: " . owner($moved_slot));

revoke($t, $name_of{$from->{port}}, $cached, '-c');
ok(becomes($t, $cached, '403 revoked'),
   'revoked on its new node: the device cached before the move is refused');

###############################################################################
# CLUSTER FAILOVER of a replica, under load

($primaries, my $replicas, my $by) = topology();
my ($rep) = grep { $by->{$_->{master}}{port} == $from->{port} } @$replicas;
my $rname = $name_of{$rep->{port}};

$wait = loadgen($t, '-N', 1000, '-m', 'keepalive', '-k', 20, '-c', 16,
                '-w', 4, '-d', 12, "$url/");
sleep(7);

is(cli($t, $rname, 'CLUSTER', 'FAILOVER'), 'OK',
   "CLUSTER FAILOVER on $rname, the replica of " . $name_of{$from->{port}});
ok(poll(30 * $slow, sub { (cli($t, $rname, 'ROLE'))[0] eq 'master' }),
   "$rname is a primary");

$res = $wait->();
ok($res->{requests}, 'the load ran') or diag(explain($res));
is(others($res, 200), '', 'no request refused during the failover');
is(errors($res), '', 'no transport error');

my $d = device_on($rname);
is(status($t, $d), '200 ok', "a device of $rname\'s slots");
revoke($t, $rname, $d, '-c');
ok(becomes($t, $d, '403 revoked'), 'a revocation on the new primary applies');

###############################################################################
# the edge cut off from a primary, no failover: its password changes and
# the edge's connections there are killed (not the replication link nor
# the cluster bus); a revocation written meanwhile applies at the first
# request once the edge's link to that node is up again

{
    # a primary of neither of the signer's keys if there is one: only the
    # device's facts are read there
    ($primaries) = topology();
    my %sgn = map { owner(key_slot("$signer:$_")) => 1 }
              qw(revoked compromised);
    my @cand = map { $name_of{$_->{port}} } @$primaries;
    my ($cname) = (grep({ !$sgn{$_} } @cand), @cand);
    my $cport = $t->port($cname);
    my $cpw = 'another-secret';

    my $cut = device_on($cname);
    my $cka = ka_open($t, $cut->{name});
    is(ka_get($cka, '/'), '200 ok',
       "a device of $cname on a keepalive connection");

    $mark = $t->log_mark();

    is(cli($t, $cname, 'CONFIG', 'SET', 'requirepass', $cpw), 'OK',
       "$cname: another password");
    $PASSWORD{$cname} = $cpw;
    cli($t, $cname, 'CLIENT', 'KILL', 'TYPE', $_) for qw(normal pubsub);

    ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$cport" down/, 1,
                $mark, 30 * $slow),
       "$cname: the edge's connections killed, its link is down");
    ok(wait_log($t,
                qr/redis "AUTH" failed at "127\.0\.0\.1:$cport": WRONGPASS/,
                1, $mark, 30 * $slow),
       'a reconnection is refused (WRONGPASS)');

    is(ka_get($cka, '/'), '200 ok',
       'cut off: the cached device keeps its verdict (grace)');
    is(status($t, device_on($cname)), '503 error',
       'a device of its slots not cached: the fail mode (closed)');
    is(status($t, device_on($cname), '/open'), '200 unchecked', 'or open');

    is(revoke($t, $cname, $cut), 'OK', "revoked on $cname, the edge cut off");
    is(ka_get($cka, '/'), '200 ok', 'cut off: the cached verdict still');

    # the workers (pids) whose link there went down, or came up
    my $workers = sub {
        my ($what) = @_;
        my $log = $t->read_error_log($mark);
        my $re = qr/invalidation link to "127\.0\.0\.1:$cport" $what/;
        my %w;
        $w{$1} = 1 while $log =~ /\s(\d+)#\d+: [^\n]*$re/g;
        return \%w;
    };

    is(cli($t, $cname, 'CONFIG', 'SET', 'requirepass', $pw), 'OK',
       "$cname: its password back");
    $PASSWORD{$cname} = $pw;

    ok(poll(60 * $slow, sub {
           my ($down, $up) = map { $workers->($_) } qw(down up);
           return %$down && !grep { !$up->{$_} } keys %$down;
       }), "each worker whose link to $cname went down: it is up again");

    # nothing read before the loss counts: the first request once the link
    # is up reads the device again, and the revocation of the gap applies
    is(ka_get($cka, '/'), '403 revoked',
       'the revocation written while cut off applies at the first request');

    cli($t, $cname, 'DEL', "device_auth:{$cut->{serial}}:revoked");
    ok(poll(20 * $slow, sub { ka_get($cka, '/') eq '200 ok' }),
       'its end applies on the open connection');
    close $cka;

    ok(poll(60 * $slow, sub { settled(@names) }), 'the cluster is settled');
}

###############################################################################
# SIGKILL of a primary: no primary for its slots for a while

# the primary of the signer's revocation key: its devices and the others'
# lose the signer's facts with it (they are in the grace)
($primaries) = topology();
my $vname = owner(key_slot("$signer:revoked"));
my ($victim) = grep { $name_of{$_->{port}} eq $vname } @$primaries;
my ($other) = grep { $_ ne $vname } map { $name_of{$_->{port}} } @$primaries;

my $probe = device_on($vname);
my $ka = ka_open($t, $probe->{name});
is(ka_get($ka, '/'), '200 ok', "a device of $vname on a keepalive connection");
my $fresh = device_on($vname);
my $fresh2 = device_on($vname);
my $elsewhere = device_on($other);

$wait = loadgen($t, '-N', 1000, '-m', 'keepalive', '-k', 20, '-c', 16,
                '-w', 3, '-d', 14, "$url/open");
sleep(5);

$mark = $t->log_mark();
my $killed = time();
$t->daemon_stop($vname, 'KILL');

my $vport = $victim->{port};
ok(wait_log($t, qr/invalidation link to "127\.0\.0\.1:$vport" down/, 1,
            $mark), "SIGKILL of $vname: its link is down");

is(ka_get($ka, '/'), '200 ok', 'its cached device keeps its verdict (grace)');
is(status($t, $fresh), '503 error',
   'a device of its slots not cached: the fail mode (closed)');
is(status($t, $fresh2, '/open'), '200 unchecked', 'or open');
is(status($t, $elsewhere), '200 ok', "a device of $other\'s slots is read, "
   . 'the signer\'s facts in their grace');

my $back = poll(60 * $slow, sub {
    status($t, $fresh2) eq '200 ok' ? time() : 0 });

ok($back, 'a replica took over: a device not cached is read there');
note(sprintf('SIGKILL of a primary: %.2f s to the first decision read from '
             . 'the new one (cluster-node-timeout 2000)', $back - $killed))
    if $back;

$res = $wait->();
ok($res->{requests}, 'the load ran') or diag(explain($res));
is(others($res, 200), '', 'no request refused at the open location');
is(errors($res), '', 'no transport error');

revoke($t, $other, $probe, '-c');
ok(poll(20 * $slow, sub { ka_get($ka, '/') eq '403 revoked' }),
   'a revocation on the new primary applies on the open connection');
close $ka;

###############################################################################
# more SIGKILLs, for the median (DEVICE_AUTH_FAILOVERS=5)

my @times = $back ? ($back - $killed) : ();

for my $round (2 .. ($ENV{DEVICE_AUTH_FAILOVERS} || 1)) {

    # the killed node comes back, a replica of its replacement
    node_start($vname);
    ok(poll(60 * $slow, sub { settled(@names) }),
       "round $round: $vname is back, the cluster settled");

    ($primaries) = topology();
    $victim = $primaries->[$round % 3];
    $vname = $name_of{$victim->{port}};

    my $dev = device_on($vname);
    my $start = time();
    $t->daemon_stop($vname, 'KILL');

    my $ok = poll(60 * $slow, sub {
        status($t, $dev) eq '200 ok' ? time() : 0 });
    ok($ok, "round $round: SIGKILL of $vname, a device of its slots read "
       . "from its replica");
    push @times, $ok - $start if $ok;
}

if (@times > 1) {
    my @sorted = sort { $a <=> $b } @times;
    diag(sprintf('cluster: SIGKILL of a primary to the first decision read '
                 . 'from its replica: %s s (median %.2f s)',
                 join(', ', map { sprintf '%.2f', $_ } @times),
                 $sorted[$#sorted / 2]));
}

$t->check_error_log();

done_testing();
