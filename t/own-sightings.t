#!/usr/bin/perl

# A sighting's own writes (issue 10).  The edge tracks the places it reads
# (P{SN}:seen) without NOLOOP, so the script's write of them comes back to
# the worker's subscriber as an invalidation, before or after the script's
# reply: Redis does not order the two connections.  The script says how
# many it caused; the worker takes the ones that follow the reply for its
# own, and does not sight the device again (a Redis round trip) for them.
# A write by anyone else is still news.
#
# A proxy in front of Redis (t/lib/holdproxy.pl) holds what goes to the
# subscriber while a file exists, which makes the messages come after the
# reply: the order this test needs, every time.
#
#   - a new device's sighting: its own invalidation comes after the reply;
#     the next request costs no Redis read;
#   - the places written by another client afterwards: sighted again;
#   - both held together (own first, then another's): the other's is not
#     taken for the edge's own: sighted again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

my $hold = $t->testdir . '/hold';

$t->redis_start();

my $proxy = $t->port('proxy');
$t->daemon_start('holdproxy', $proxy, $^X, "$FindBin::Bin/lib/holdproxy.pl",
                 $proxy, $t->redis_port, $hold);

$t->write_conf(<<"EOF");
worker_processes 1;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:$proxy;

    # a held subscriber must not look dead: PINGs every 30 s
    device_auth_redis_timeout 30s;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        access_log off;

        add_header X-Status \$device_auth_status always;

        location / {
            device_auth on;
            return 200 "\$device_auth_status\\n";
        }

        location /metrics {
            device_auth_metrics;
        }
    }
}
EOF

$t->run();


my $devices = 0;

sub device {
    my $serial = sprintf('0123EE%012X', ++$devices);
    return { name => $t->make_device(name => "d$devices", serial => $serial),
             serial => $serial };
}

sub status {
    my ($dev) = @_;
    my $r = $t->https_get(device => $dev->{name}, path => '/');
    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}

sub metric {
    my ($name) = @_;
    my $r = $t->https_get(path => '/metrics');
    for (split /\n/, $r->{body} || '') {
        return $1 if /^\Q$name\E (\S+)$/;
    }
    return 0;
}

sub invalidations {
    metric('nginx_device_auth_cache_total{event="invalidation"}');
}

# until the worker has received N invalidations in all (bounded)
sub until_invalidations {
    my ($n) = @_;
    my $end = time() + 15;
    while (time() < $end) {
        return 1 if invalidations() >= $n;
        sleep(0.02);
    }
    diag('invalidations: ' . invalidations() . ", not $n");
    return 0;
}

# the reads of facts and places Redis ran, for anyone
sub reads {
    my %c;
    for ($t->redis_cli('INFO', 'commandstats')) {
        $c{$1} = $2 if /^cmdstat_(\w+):calls=(\d+)/;
    }
    return ($c{evalsha} // 0) + ($c{eval} // 0) + ($c{get} // 0);
}

sub key { "device_auth:{$_[0]}:$_[1]" }

sub hold { open my $f, '>', $hold or die "$hold: $!"; close $f }
sub release { unlink $hold }

# the link up: the signer's facts cached by a first device
{
    my $end = time() + 15;
    sleep(0.05) while time() < $end
        && metric('nginx_device_auth_invalidation_links_up') != 1;
    is(metric('nginx_device_auth_invalidation_links_up'), 1,
       'the invalidation link is up');

    my $d = device();
    my $inv = invalidations();
    is(status($d), '200 ok', 'a first device: 200 ok');

    # its own invalidations (the places, the edges) in before the next
    ok(until_invalidations($inv + 2), 'a first device: its invalidations');
}


###############################################################################
# the edge's own write, its invalidation after the reply

{
    my $d = device();
    my $inv = invalidations();

    hold();
    is(status($d), '200 ok', 'own: a new device, sighted: 200 ok');
    is(invalidations(), $inv, 'own: its invalidations held back');
    release();

    # the places and the edges key
    ok(until_invalidations($inv + 2), 'own: then they came');

    my $reads = reads();
    is(status($d), '200 ok', 'own: the next request: 200 ok');
    is(reads(), $reads, 'own: not sighted again for its own write');

    # another client writes the places: news
    my $seen = key($d->{serial}, 'seen');
    my ($place) = $t->redis_cli('ZRANGE', $seen, 0, 0);
    $inv = invalidations();
    $t->redis_cli('ZADD', $seen, int(time() * 1000), $place);
    ok(until_invalidations($inv + 1), 'own: another\'s write came');

    $reads = reads();
    is(status($d), '200 ok', 'own: after another\'s write: 200 ok');
    cmp_ok(reads(), '>', $reads, 'own: sighted again for another\'s write');

    $reads = reads();
    is(status($d), '200 ok', 'own: and then: 200 ok');
    is(reads(), $reads, 'own: no read again');
}


###############################################################################
# the edge's own invalidation and another's, held together: the other's is
# not taken for the edge's own

{
    my $d = device();
    my $seen = key($d->{serial}, 'seen');
    my $inv = invalidations();

    hold();
    is(status($d), '200 ok', 'both: a new device, sighted: 200 ok');
    my ($place) = $t->redis_cli('ZRANGE', $seen, 0, 0);
    $t->redis_cli('ZADD', $seen, int(time() * 1000) + 1, $place);
    is(invalidations(), $inv, 'both: the invalidations held back');
    release();

    # the places (own), the edges (own), the places (another's)
    ok(until_invalidations($inv + 3), 'both: then they came');

    my $reads = reads();
    is(status($d), '200 ok', 'both: the next request: 200 ok');
    cmp_ok(reads(), '>', $reads, 'both: sighted again for another\'s write');
}

$t->stop();
$t->check_error_log();

done_testing();
