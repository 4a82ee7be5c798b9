#!/usr/bin/perl

# The device state at the edge (issue 10): each worker caches the facts of
# devices and signers, and Redis pushes their changes (client-side caching:
# a subscriber per worker, CLIENT TRACKING on the command connection).
#
#   - a cached device costs no Redis command at all;
#   - every fact (device revoked, registered, signer revoked, compromised)
#     follows every way of changing it: SET, DEL, EXPIRE and PEXPIRE
#     running out, RENAME away and onto it, FLUSHDB, FLUSHALL; a quarantine
#     (SET ... EX 2) lifts by itself, also when Redis' active expiry is off
#     and no message comes;
#   - the subscriber or the command connection killed, with a revocation
#     written in the same transaction (its message is lost): it applies;
#   - Redis evicting keys from its tracking table (tracking-table-max-keys
#     10, 1,000 devices): what it evicts is invalidated, revocations apply;
#   - the grace: cached devices keep their verdict while Redis is away, for
#     device_auth_grace, then the fail mode; a device not cached gets the
#     fail mode at once; a Redis SHUTDOWN NOSAVE and restart under load
#     answers no cached device 503; a revocation written right after the
#     restart is applied by the first request once the link is back;
#   - three edges sharing one Redis: one revocation is refused by all three
#     (the time from the write to the first refusal at each is reported,
#     not asserted).
#
# Changes are pushed: the tests poll for them (bounded), they never assume
# a time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

my $loadgen = DeviceAuth::Test->repo . '/bench/loadgen';

my $signer = $t->fingerprint('signer1');

my $template = <<'EOF';
worker_processes #WORKERS#;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:#REDIS#;
    device_auth_redis_timeout 2s;
    #HTTP#

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        access_log off;
        keepalive_requests 100000;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }

        location /registry {
            device_auth on;
            device_auth_registry on;
            return 200 "$device_auth_status\n";
        }

        location /grace {
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

        location /clones {
            device_auth on;
            device_auth_location $http_x_place;
            device_auth_duplicate_limit 2;
            device_auth_duplicate_action quarantine;
            return 200 "$device_auth_status\n";
        }

        location /metrics {
            device_auth_metrics;
        }
    }
}
EOF

sub conf {
    my ($e, %o) = @_;
    (my $c = $template) =~ s/#WORKERS#/$o{workers} || 1/e;
    $c =~ s/#REDIS#/$t->redis_port/e;
    $c =~ s/#HTTP#/$o{http} || ''/e;
    $e->write_conf($c);
}

# a device of the PKI's signer1 made for one case

my $devices = 0;

sub device {
    my $serial = sprintf('0123ED%012X', ++$devices);
    return { name => $t->make_device(name => "d$devices", serial => $serial),
             serial => $serial };
}

sub status {
    my ($dev, $path, %o) = @_;
    my $e = $o{edge} || $t;
    my $r = $e->https_get(device => $dev->{name}, path => $path || '/',
        $o{place} ? (headers => [['X-Place', $o{place}]]) : ());
    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}

# polls until DEV gets WANT at PATH: the seconds it took, or undef
sub becomes {
    my ($dev, $path, $want, %o) = @_;
    my $start = time();
    my $limit = $o{limit} || 10;
    my $last;

    while (time() - $start < $limit) {
        $last = status($dev, $path, %o);
        return time() - $start if $last eq $want;
        sleep(0.02);
    }

    diag("still \"$last\" after $limit s, not \"$want\"");
    return undef;
}

sub metrics {
    my $e = shift || $t;
    my $r = $e->https_get(path => '/metrics');
    my %m;
    for (split /\n/, $r->{body} || '') {
        $m{$1} = $2 if /^([^#\s]\S*) (\S+)$/;
    }
    return \%m;
}

sub cache {
    my ($event, $e) = @_;
    return metrics($e)->{"nginx_device_auth_cache_total{event=\"$event\"}"}
           // 0;
}

# commands Redis ran for anyone: script calls and GETs, the reads of facts
sub reads {
    my %c;
    for ($t->redis_cli('INFO', 'commandstats')) {
        $c{$1} = $2 if /^cmdstat_(\w+):calls=(\d+)/;
    }
    return ($c{evalsha} // 0) + ($c{eval} // 0) + ($c{get} // 0);
}

# the device ends cached: within three requests, one answered WANT without
# a Redis read (the first reads; a sighting the edge wrote comes back as an
# invalidation of the places, and the next request counts them again)
sub settles {
    my ($dev, $path, $want) = @_;
    for (1 .. 3) {
        my $reads = reads();
        my $st = status($dev, $path);
        return 0 if $st ne $want;
        return 1 if reads() == $reads;
    }
    return 0;
}

# until every worker's link is up again
sub links_up {
    my ($n, $e) = @_;
    my $end = time() + 15;
    while (time() < $end) {
        return 1 if (metrics($e)->{nginx_device_auth_invalidation_links_up}
                     // 0) == $n;
        sleep(0.05);
    }
    return 0;
}

sub key { "device_auth:{$_[0]}:$_[1]" }
sub signer_key { "device_auth:signer:$signer:$_[0]" }


$t->redis_start('--enable-debug-command', 'yes');
conf($t);
$t->run();

ok(links_up(1), 'the worker\'s invalidation link is up');


###############################################################################
# a cached device: no Redis command

{
    my $d = device();
    is(status($d), '200 ok', 'first request: 200 ok');
    ok(settles($d, '/', '200 ok'), 'then cached');

    my $reads = reads();
    my $hits = cache('hit');
    my $r = $t->https_get(device => $d->{name}, keepalive => 20);
    is(scalar(grep { ($_->{status} // 0) == 200 } @{ $r->{responses} }), 20,
       'cached: 20 requests on a connection answered');
    is(status($d), '200 ok', 'cached: and on a new connection');
    is(reads(), $reads, 'cached: no Redis read for any of them');
    cmp_ok(cache('hit') - $hits, '>=', 21, 'cached: counted as hits');
}


###############################################################################
# every fact, every way it can change

my %facts = (
    'device revoked' => {
        key => sub { key($_[0]{serial}, 'revoked') }, path => '/',
        with => '403 revoked', without => '200 ok',
    },
    'device registered' => {
        key => sub { key($_[0]{serial}, 'registered') }, path => '/registry',
        with => '200 ok', without => '403 unregistered',
    },
    'signer revoked' => {
        key => sub { signer_key('revoked') }, path => '/',
        with => '403 signer_revoked', without => '200 ok',
    },
    'signer compromised' => {
        key => sub { signer_key('compromised') }, path => '/',
        with => '403 signer_compromised', without => '200 ok',
    },
);

# each change: (state before, the commands, state after)
my @changes = (
    [ 'SET', 0, sub { ['SET', $_[0], 'set'] }, 1 ],
    [ 'DEL', 1, sub { ['DEL', $_[0]] }, 0 ],
    [ 'EXPIRE running out', 1, sub { ['EXPIRE', $_[0], 1] }, 0 ],
    [ 'PEXPIRE running out', 1, sub { ['PEXPIRE', $_[0], 300] }, 0 ],
    [ 'RENAME away', 1, sub { ['RENAME', $_[0], "$_[0]:old"] }, 0 ],
    [ 'RENAME onto it', 0, sub { ['SET', "$_[0]:new", 'renamed'],
                                 ['RENAME', "$_[0]:new", $_[0]] }, 1 ],
    [ 'FLUSHDB', 1, sub { ['FLUSHDB'] }, 0 ],
    [ 'FLUSHALL', 1, sub { ['FLUSHALL'] }, 0 ],
);

for my $fname (sort keys %facts) {
    my $f = $facts{$fname};

    for my $c (@changes) {
        my ($cname, $before, $cmds, $after) = @$c;
        my $name = "$fname, $cname";
        my $d = device();
        my $key = $f->{key}->($d);

        $t->redis_cli('FLUSHALL');
        $t->redis_cli('SET', $key, "$fname by hand") if $before;

        my $want = $before ? $f->{with} : $f->{without};
        is(status($d, $f->{path}), $want, "$name: before: $want");
        ok(settles($d, $f->{path}, $want), "$name: cached: $want, no read");

        my $inv = cache('invalidation') + cache('flush');
        $t->redis_cli(@$_) for $cmds->($key);

        $want = $after ? $f->{with} : $f->{without};
        ok(defined becomes($d, $f->{path}, $want), "$name: after: $want");
        cmp_ok(cache('invalidation') + cache('flush'), '>', $inv,
               "$name: pushed by Redis");
    }
}

$t->redis_cli('FLUSHALL');


###############################################################################
# a sighting never overwrites a revocation: a device revoked while its
# signer's facts are being read again is refused as revoked at a new
# place beyond the limit, and its revocation stays as it was, without a
# TTL; a device of a revoked signer is not sighted

{
    my $d = device();
    my $revoked = key($d->{serial}, 'revoked');
    my $seen = key($d->{serial}, 'seen');

    is(status($d, '/clones', place => 'A'), '200 ok', 'clones: place A');
    is(status($d, '/clones', place => 'B'), '200 ok', 'clones: place B');

    # the signer's facts forgotten (written and deleted), then the device
    # revoked
    $t->redis_cli('SET', signer_key('compromised'), 'for a moment');
    $t->redis_cli('DEL', signer_key('compromised'));
    $t->redis_cli('SET', $revoked, 'stolen');

    ok(defined becomes($d, '/clones', '403 revoked', place => 'C'),
       'clones: revoked, at a third place: 403 revoked');
    is($t->redis_cli('GET', $revoked), 'stolen',
       'clones: the revocation is as it was written');
    is($t->redis_cli('PTTL', $revoked), -1, 'clones: and has no TTL');
    is($t->redis_cli('ZCARD', $seen), 2, 'clones: the revoked device was not sighted');

    $t->redis_cli('DEL', $revoked);
    $t->redis_cli('SET', signer_key('revoked'), 'retired');
    ok(defined becomes($d, '/clones', '403 signer_revoked', place => 'D'),
       'clones: signer revoked: 403 signer_revoked');
    is($t->redis_cli('ZCARD', $seen), 2,
       'clones: a device of a revoked signer is not sighted');
    $t->redis_cli('DEL', signer_key('revoked'));
}

# the reason of a sighting, escaped once: a quote in a place name
{
    my $d = device();
    my $r;
    for my $p ('q"1', 'q"2', 'q"3') {
        $r = $t->https_get(device => $d->{name}, path => '/clones',
                           headers => [['X-Place', $p]]);
    }
    is($r->{headers}{'x-status'}, 'quarantined', 'quoted places: quarantined');
    like($r->{headers}{'x-reason'}, qr/: q\\x223, q\\x222, q\\x221$/,
         'quoted places: the reason escaped once')
        or diag($r->{headers}{'x-reason'});
}


###############################################################################
# a quarantine lifts by itself: by the expiry's message, and by its TTL
# kept at the edge when no message comes (Redis' active expiry off: the
# key expires only when someone reads it)

for my $active (1, 0) {
    my $name = $active ? 'quarantine' : 'quarantine, no active expiry';
    my $d = device();

    $t->redis_cli('DEBUG', 'SET-ACTIVE-EXPIRE', $active);
    is(status($d), '200 ok', "$name: 200 ok before");
    ok(settles($d, '/', '200 ok'), "$name: cached and sighted");

    $t->redis_cli('SET', key($d->{serial}, 'revoked'),
                  'quarantined: for two seconds', 'EX', 2);
    ok(defined becomes($d, '/', '403 quarantined'), "$name: 403 quarantined");

    # (a refusal sends its event: a Redis command too, but not a lookup)
    my $misses = cache('miss');
    my $took = becomes($d, '/', '200 ok');
    ok(defined $took, "$name: lifted by itself");
    note(sprintf('%s: lifted %.2f s after it was seen', $name, $took // -1));

    is(cache('miss'), $misses, "$name: lifted from the cache, nothing read")
        unless $active;
}

$t->redis_cli('DEBUG', 'SET-ACTIVE-EXPIRE', 1);


###############################################################################
# the subscriber, then the command connection, killed by Redis in the same
# transaction as a revocation: its invalidation reaches nobody, and still
# the revocation applies once the link is back

for my $which ('the subscriber', 'the command connection') {
    my $d = device();
    is(status($d), '200 ok', "$which killed: 200 ok before");
    ok(settles($d, '/', '200 ok'), "$which killed: cached");

    my $kill;
    if ($which eq 'the subscriber') {
        $kill = 'CLIENT KILL TYPE pubsub';

    } else {
        my ($id) = map { /\bid=(\d+)\b/ ? $1 : () }
                   grep { /\bflags=\S*t/ } $t->redis_cli('CLIENT', 'LIST');
        ok($id, "the command connection is client $id (tracking)");
        $kill = "CLIENT KILL ID $id";
    }

    my $mark = $t->log_mark();
    my $in = $t->write_file('kill.txt', "MULTI\n$kill\n"
                            . "SET " . key($d->{serial}, 'revoked')
                            . " stolen-in-the-gap\nEXEC\n");
    system("redis-cli -p " . $t->redis_port . " < $in > /dev/null") == 0
        or fail('redis-cli');

    ok(defined becomes($d, '/', '403 revoked'),
       "$which killed: the revocation of the gap applies");
    ok($t->wait_error_log(qr/invalidation link to "[^"]*" down/, mark => $mark),
       "$which killed: the link went down");
    ok(links_up(1), "$which killed: the link is up again");
}


###############################################################################
# Redis away: the grace for cached devices, the fail mode past it, and at
# once for devices not cached

{
    my $d = device();
    my $fresh = device();

    is(status($d, '/grace'), '200 ok', 'grace: cached');
    is(status($d, '/strict'), '200 ok', 'strict: cached');
    my $graced = cache('grace');

    # The worker sees the loss once Redis closes its sockets, before
    # redis_stop() has reaped the process: count from before the stop
    # (nginx's millisecond clock: a millisecond of slack).
    my $lost = time();
    $t->redis_stop();

    is(status($d, '/grace'), '200 ok', 'redis down: cached device, in the grace: 200 ok');
    cmp_ok(cache('grace'), '>', $graced, 'redis down: the decision counted as graced');
    is(status($d, '/strict'), '503 error', 'redis down: grace 0: the fail mode');
    is(status($d, '/open'), '200 unchecked', 'redis down: grace 0, open: unchecked');
    is(status($fresh, '/grace'), '503 error', 'redis down: a device not cached: the fail mode');

    my $took = becomes($d, '/grace', '503 error');
    ok(defined $took, 'redis down: past the grace (3 s): the fail mode');
    cmp_ok(time() - $lost, '>=', 2.998, 'redis down: not before the grace ran out');

    $t->redis_start('--enable-debug-command', 'yes');
    ok(links_up(1), 'redis back: the link is up');
    is(status($d, '/grace'), '200 ok', 'redis back: 200 ok');
}


###############################################################################
# Redis shut down without saving and restarted, under load, within the
# grace (default 30 s): no cached device gets 503; a revocation written
# right after the restart is applied by the first request once the link
# is back (the restarted Redis is empty: nothing read before counts)

SKIP: {
    skip("no $loadgen (make -C bench)", 7) unless -x $loadgen;

    ok(links_up(1), 'link up');

    my $dir = $t->testdir;
    my $url = 'https://127.0.0.1:' . $t->port(0) . '/strict';
    my @fleet = ('--signer-cert', $t->pki_file('signer1.pem'),
                 '--signer-key', $t->pki_file('signer1.key'),
                 '--fleet-cache', "$dir/fleet", '-q', '-N', 200);

    # every device cached
    my $r = loadgen(@fleet, '-m', 'handshake', '-n', 400, '-c', 8, $url);
    is(others($r, 200), '', 'warm: every device 200');

    $url =~ s{/strict$}{/};
    my $victim = device();
    is(status($victim), '200 ok', 'the victim: cached');

    my $wait = loadgen_bg(@fleet, '-m', 'keepalive', '-c', 16, '-d', 4,
                          '-w', 0.2, $url);
    sleep(1);
    $t->redis_cli('SHUTDOWN', 'NOSAVE');
    $t->redis_stop();
    sleep(0.5);
    $t->redis_start('--enable-debug-command', 'yes');
    $t->redis_cli('SET', key($victim->{serial}, 'revoked'),
                  'stolen while the edge was cut off');
    my $written = time();

    ok(links_up(1), 'restart: the link is up again');
    my $st = status($victim);
    is($st, '403 revoked', 'restart: the revocation applies at once');
    note(sprintf('restart: refused %.3f s after the write', time() - $written));

    $r = $wait->();
    ok($r->{requests} > 100, "restart: $r->{requests} requests under load");
    is(others($r, 200), '', 'restart: no cached device refused, none 503');
}


###############################################################################
# tracking-table-max-keys 10, 1,000 devices: Redis evicts tracked keys and
# invalidates them; what is evicted is read again, revocations apply

SKIP: {
    skip("no $loadgen (make -C bench)", 6) unless -x $loadgen;

    $t->redis_cli('FLUSHALL');
    $t->redis_cli('CONFIG', 'SET', 'tracking-table-max-keys', 10);

    my $dir = $t->testdir;
    my $url = 'https://127.0.0.1:' . $t->port(0) . '/strict';
    my @fleet = ('--signer-cert', $t->pki_file('signer1.pem'),
                 '--signer-key', $t->pki_file('signer1.key'),
                 '--fleet-cache', "$dir/fleet1000", '-q', '-N', 1000);

    my $inv = cache('invalidation');
    my $r = loadgen(@fleet, '-m', 'handshake', '-n', 1000, '-c', 8,
                    '--export-pem', "$dir/pem", '--export-count', 20, $url);
    is(others($r, 200), '', '1,000 devices: 200');

    my $evicted = cache('invalidation') - $inv;
    cmp_ok($evicted, '>=', 900, "1,000 devices, 10 tracked keys: Redis "
           . "invalidated what it evicted ($evicted)");

    note('redis: ' . join ' ', grep { /tracking/ } $t->redis_cli('INFO'));

    # the first 20 devices, exported: 10 revoked now, 10 not
    my @pem = map { (split /\t/)[1] } grep { /\S/ }
              split /\n/, $t->read_file("$dir/pem/index.tsv");
    ok(@pem >= 20, 'exported devices');

    my $chain = $t->read_file($t->pki_file('signer1.pem'));
    $t->write_file("$dir/pem/$_.chain.pem",
                   $t->read_file("$dir/pem/$_.crt") . $chain) for @pem;

    my @revoked = @pem[0 .. 9];
    $t->redis_cli('SET', key($_, 'revoked'), 'evicted and revoked')
        for @revoked;

    my $ok = 0;
    for my $sn (@revoked) {
        my $d = { name => "$dir/pem/$sn", serial => $sn };
        $ok++ if defined becomes($d, '/strict', '403 revoked', limit => 5);
    }
    is($ok, 10, 'every revoked device refused');

    $ok = 0;
    for my $sn (@pem[10 .. 19]) {
        my $d = { name => "$dir/pem/$sn", serial => $sn };
        $ok++ if status($d, '/strict') eq '200 ok';
    }
    is($ok, 10, 'the others let in');

    $t->redis_cli('CONFIG', 'SET', 'tracking-table-max-keys', 1000000);
}


###############################################################################
# three edges, one Redis: a revocation written once is refused by all three

{
    my @edges = ($t);

    for (1, 2) {
        my $e = DeviceAuth::Test->new();
        conf($e);
        $e->run();
        push @edges, $e;
    }

    ok(links_up(1, $_), 'edge ' . $_->port(0) . ': link up') for @edges;

    # each edge polled by its own process from before the write: the time
    # from the write to the first refusal at each is its own
    my (@lat, $refused);
    my $n = 10;

    for my $i (1 .. $n) {
        my $d = device();
        my @kids;

        for my $k (0 .. $#edges) {
            my $file = "edge$k.$i";
            my $pid = fork();
            die "fork: $!" unless defined $pid;

            if ($pid == 0) {
                my $first = status($d, '/', edge => $edges[$k]);
                $t->write_file("$file.tmp", $first);
                rename($t->testdir . "/$file.tmp", $t->testdir . "/$file.ready");
                my $took = becomes($d, '/', '403 revoked', edge => $edges[$k],
                                   limit => 20);
                $t->write_file($file, defined $took ? time() : 'never');
                POSIX::_exit(0);
            }

            push @kids, $pid;
        }

        # every edge answered the device before the write
        my $end = time() + 20;
        sleep(0.01) until time() > $end
                          || !grep { !-e $t->testdir . "/edge$_.$i.ready" }
                                   0 .. $#edges;
        is(join(',', map { $t->read_file("edge$_.$i.ready") } 0 .. $#edges),
           '200 ok,200 ok,200 ok', "revocation $i: let in by the three before");

        my $written = time();
        $t->redis_cli('SET', key($d->{serial}, 'revoked'), "revocation $i");

        waitpid($_, 0) for @kids;

        for my $k (0 .. $#edges) {
            my $at = $t->read_file("edge$k.$i");
            next if $at eq 'never';
            $refused++;
            push @{ $lat[$k] }, $at - $written;
        }
    }

    is($refused, 3 * $n, "$n revocations refused at each of the three edges");

    for my $k (0 .. $#edges) {
        my @s = sort { $a <=> $b } @{ $lat[$k] || [] };
        next unless @s;
        note(sprintf('edge %d: write to refusal: median %.1f ms, max %.1f ms '
                     . '(each poll of this test is a new TLS connection: '
                     . 'that is the resolution; make bench measures it '
                     . 'finely)', $k + 1, 1000 * $s[@s / 2], 1000 * $s[-1]));
    }

    $_->check_error_log() for @edges[1, 2];
    $_->stop() for @edges[1, 2];
}


###############################################################################
# device_auth_cache_size: the least recently used device goes; it is read
# again at its next request, revocations included

{
    $t->stop();                 # nginx and Redis
    conf($t, http => 'device_auth_cache_size 16;');
    $t->redis_start();
    $t->run();
    ok(links_up(1), 'cache of 16: link up');

    my @d = map { device() } 1 .. 24;
    my $evicted = cache('eviction');

    is(status($_), '200 ok', "cache of 16: $_->{serial} let in") for @d;
    cmp_ok(cache('eviction') - $evicted, '>=', 8,
           'cache of 16, 24 devices: at least 8 evicted');

    # the first device was evicted: its revocation is read at its next
    # request, with no invalidation needed
    my $misses = cache('miss');
    $t->redis_cli('SET', key($d[0]{serial}, 'revoked'), 'evicted, revoked');
    ok(defined becomes($d[0], '/', '403 revoked'),
       'cache of 16: an evicted device revoked: 403');
    cmp_ok(cache('miss'), '>', $misses, 'cache of 16: it was read again');

    # the last ones are still cached
    my $reads = reads();
    is(status($d[-1]), '200 ok', 'cache of 16: the most recent: 200 ok');
    is(reads(), $reads, 'cache of 16: the most recent: still cached');

    # an open connection holds its device's entry: 24 other devices do not
    # evict it, and a revocation still reaches it
    my $x = device();
    my ($held, $after);
    my $r = $t->https_get(device => $x->{name}, keepalive => 3,
        between => sub {
            if ($_[0] == 1) {
                $evicted = cache('eviction');
                status($_) for map { device() } 1 .. 24;
                $held = cache('eviction') - $evicted;
                $reads = reads();
            }
            if ($_[0] == 2) {
                $after = reads() - $reads;
                $t->redis_cli('SET', key($x->{serial}, 'revoked'), 'held');
                # until another connection of the device is refused
                becomes($x, '/', '403 revoked');
            }
        });
    my @st = map { $_->{status} // 0 } @{ $r->{responses} };
    is($st[0], 200, 'cache of 16: a held device: 200');
    cmp_ok($held, '>=', 8, 'cache of 16: held: others were evicted');
    is($st[1], 200, 'cache of 16: held: its connection: 200');
    is($after, 0, 'cache of 16: held: not read again, not evicted');
    is($st[2], 403, 'cache of 16: held: revoked on its connection: 403');
}

$t->check_error_log();

done_testing();


###############################################################################
# bench/loadgen

sub loadgen {
    return loadgen_bg(@_)->();
}

sub loadgen_bg {
    my (@args) = @_;
    my $json = $t->testdir . '/load.' . int(rand(1e9)) . '.json';

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', "$json.out";
        open STDERR, '>&', \*STDOUT;
        exec $loadgen, @args, '--json', $json;
        exit 127;
    }

    return sub {
        waitpid($pid, 0);
        open my $fh, '<', $json or return { missing => 1 };
        local $/;
        my $j = <$fh>;
        my %r;
        my ($status) = $j =~ /"status"\s*:\s*\{([^}]*)\}/;
        $r{status}{$1} = $2 while ($status // '') =~ /"(\d+)"\s*:\s*(\d+)/g;
        ($r{requests}) = $j =~ /"requests"\s*:\s*(\d+)/;
        return \%r;
    };
}

sub others {
    my ($r, @allowed) = @_;
    my %ok = map { $_ => 1 } @allowed;
    return 'no result' if $r->{missing};
    return join ' ', map { "$_=$r->{status}{$_}" }
                     grep { !$ok{$_} } sort keys %{ $r->{status} };
}
