#!/usr/bin/perl

# build/device-auth: its commands and usage, and "device-auth show" on the
# state an edge and ops leave in a real redis-server: a device registered
# from a manifest, seen at three places by the edge and quarantined as a
# clone, its signer marked compromised, events in a stream long enough to
# be read a page at a time; values set by hand, keys of the wrong type,
# the address options, a password.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Test::More;
use POSIX qw(strftime);
use DeviceAuth::Test;
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;

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

        device_auth_location $http_x_place;

        location / {
            device_auth on;
            device_auth_registry on;
            device_auth_duplicate_limit 2;
            device_auth_duplicate_action quarantine;
            return 200 "ok\n";
        }
    }
}
EOF

my $port = $t->redis_start();
$t->run();

sub cli { $t->redis_cli(@_) }

# device-auth show with the test Redis: (exit code, stdout, stderr)
sub show {
    my (@args) = @_;
    return $t->device_auth_split('show', @args, '--redis',
                                 "127.0.0.1:$port");
}

# the value of a label ("state:") and its continuation lines
sub section {
    my ($out, $label) = @_;
    my ($s) = $out =~ /^\Q$label\E +(.*?)(?=^\S|\z)/ms;
    return defined $s ? $s =~ s/\n\z//r : undef;
}


###############################################################################
# the commands

my ($rc, $out, $err) = $t->device_auth_split();
is($rc, 2, 'no command: exit 2');
like($out, qr/^usage: device-auth COMMAND/, 'no command: the usage');

($rc, $out) = $t->device_auth_split('help');
is($rc, 0, 'help: exit 0');
like($out, qr/^  $_ /m, "help: lists $_") for qw(check import-manifest show);

($rc, $out, $err) = $t->device_auth_split('help', 'show');
is($rc, 2, 'help show: exit 2 (usage)');
is($err, "usage: device-auth show SERIAL [--redis ADDR] [--prefix P] "
         . "[--events N]\n", 'help show: its arguments');

($rc, $out, $err) = $t->device_auth_split('frobnicate');
is($rc, 2, 'an unknown command: exit 2');
like($err, qr/unknown command "frobnicate"/, 'an unknown command: named');

($rc, $out, $err) = $t->device_auth_split('check', '-p', 'nope', '-r',
                                          "$pki/roots.pem", "$pki/dev1.pem");
is($rc, 2, 'check, unknown profile: exit 2');
like($err, qr/^device-auth check: unknown profile "nope"$/m,
     'check, unknown profile: said');

($rc, $out, $err) = $t->device_auth_split('check', '--roots',
    "$pki/roots.pem", '--signers', "$pki/signers.pem", "$pki/dev1.pem");
is($rc, 0, 'check with long options');
like($out, qr/^ok serial=${\ $t->serial('dev1')} /, 'check: the serial');

($rc, $out, $err) = show();
is($rc, 2, 'show without a serial: exit 2');

($rc, $out, $err) = show('0123{x}');
is($rc, 2, 'show, not a serial: exit 2');
like($err, qr/"0123\{x\}" is not a serial/, 'show, not a serial: said');


###############################################################################
# a device registered, seen, quarantined, its signer compromised

my $m = DeviceAuth::Manifest->new($t);
my $log = $m->log_signer('log');
my $reel = $m->write('reel.json',
                     $m->entry(device => $t->pki_file('dev1'), signer => $log));

($rc, $out, $err) = $t->device_auth_split('import-manifest', '--redis',
    "127.0.0.1:$port", '--roots', "$pki/roots.pem", '--log-signers',
    $log->{cert}, $reel);
is($rc, 0, 'dev1 imported') or diag($out, $err);

my $SN = $t->serial('dev1');
my $signer = $t->fingerprint('signer1');

my @got;
for my $place (qw(A B C C)) {
    my $r = $t->https_get(device => 'dev1', path => '/',
                          headers => [['X-Place', $place]]);
    push @got, $r->{status};
}
is_deeply(\@got, [200, 200, 403, 403],
          'dev1 at places A, B, C: quarantined as a clone at the third');

cli('SET', "device_auth:signer:$signer:compromised", 'factory key leaked');

($rc, $out, $err) = show($SN);
is($rc, 0, 'show: exit 0') or diag($err);
is($err, '', 'show: nothing on stderr');

like($out, qr/^device $SN in redis 127\.0\.0\.1:$port db 0, prefix "device_auth:"\n/,
     'show: the device, the Redis and the prefix first');

like(section($out, 'state:'),
     qr/^quarantined, reason "quarantined: [^"]+", ends in \d+m\d+s$/,
     'show: quarantined, the reason and the time left');
my $ttl = cli('TTL', "device_auth:{$SN}:revoked");
ok($ttl > 0 && $ttl <= 600, "show: the quarantine has a TTL ($ttl s)");

is(section($out, 'registered:'), join("\n",
   'yes, from manifest sha256 ' . sha256_hex($t->read_file($reel)),
   ' ' x 13 . 'part ATECC608A-TNGTLS, provisioned 2026-11-02T10:00:00.000Z',
   ' ' x 13 . 'key spki_sha256 '
   . DeviceAuth::Manifest::spki_sha256($t->pki_file('dev1.pem')),
   ' ' x 13 . "signer $signer"),
   'show: registered, from where, the key, the signer');

my $seen = section($out, 'seen:');
like($seen, qr/^3 places in the duplicate window, forgotten in \d+m\d+s:\n/,
     'show: seen at 3 places');
is_deeply([sort $seen =~ /^ +"(\w)" last \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(\d+s ago\)$/mg],
          [qw(A B C)], 'show: each place, when last seen');

# the events of a device: [type, location, reason], newest first
sub events {
    my ($out) = @_;
    my $ev = section($out, 'events:');
    my @e;
    push @e, [$1, $2, $3] while $ev =~ /^ +\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\) "(\w+)" edge "[^"]+" location "(\w)" reason "([^"]*)" signer "$signer"$/mg;
    return @e;
}

like(section($out, 'events:'), qr/^newest first:\n/, 'show: events');
my @ev = events($out);
is(scalar @ev, 1, 'show: one event (one per type and minute)')
    or diag($out);
like(join(' ', @{ $ev[0] }), qr/^quarantined C seen at 3 places within 600s: C, B, A$/,
     'show: the quarantine, its place and reason');

is(section($out, 'signer:'),
   "$signer: compromised, reason \"factory key leaked\"",
   'show: its signer compromised, with the reason');

cli('SET', "device_auth:signer:$signer:revoked", 'retired');
($rc, $out) = show("sn\L$SN");
like($out, qr/^device $SN /, 'show: "sn" and lower case give the serial');
is(section($out, 'signer:'),
   "$signer: revoked, reason \"retired\"; compromised, reason "
   . '"factory key leaked"', 'show: signer revoked and compromised');
cli('DEL', "device_auth:signer:$signer:revoked",
    "device_auth:signer:$signer:compromised");

($rc, $out) = show($SN, '--events', 1);
is(scalar(() = section($out, 'events:') =~ /^ +\d{4}-/mg), 1,
   'show --events 1: one event');

# an event of another type, then others of other devices: this device's
# events are beyond the first pages of the stream
cli('SET', "device_auth:{$SN}:revoked", 'stolen');
is($t->https_get(device => 'dev1', path => '/',
                 headers => [['X-Place', 'D']])->{status}, 403,
   'dev1 revoked: 403, a revoked event');

# the edge writes the event after its answer: wait for it to be there
{
    my $end = time() + 10;
    until (grep { $_ eq 'D' } cli('XREVRANGE', 'device_auth:events', '+', '-',
                                  'COUNT', 1)) {
        last if time() > $end;
        select(undef, undef, undef, 0.02);
    }
    ok(time() <= $end, "dev1 revoked: the event is in the stream") or diag(join "\n", grep { /rejected|event/ } split /\n/, $t->read_error_log());
}

cli('EVAL', q{for i = 1, 2500 do
    redis.call('XADD', KEYS[1], '*', 'type', 'revoked', 'serial',
               string.format('0123EE%012X', i), 'signer', ARGV[1],
               'location', 'x', 'edge', 'e', 'reason', 'noise')
end}, 1, 'device_auth:events', $signer);

($rc, $out) = show($SN, '--events', 2);
is_deeply([map { "$_->[0] $_->[1]" } events($out)],
          ['revoked D', 'quarantined C'],
          'show: both found behind 2500 events of other devices');

my $stream = cli('XLEN', 'device_auth:events');
($rc, $out) = show('0123ABABABABABAB01');
is(section($out, 'events:'),
   "none among the $stream newest of device_auth:events",
   'show, a device without events: the whole stream read');


###############################################################################
# a device Redis knows nothing of, values set by hand, wrong types

is($out, "device 0123ABABABABABAB01 in redis 127.0.0.1:$port db 0, "
         . "prefix \"device_auth:\"\n"
         . "state:       not revoked\n"
         . "registered:  no\n"
         . "seen:        nowhere in the duplicate window\n"
         . "events:      none among the $stream newest of device_auth:events\n"
         . "signer:      unknown: no registration names it, no event of "
         . "this device\n"
         # the edge counts the devices it let in today: dev1 did come
         . "fleet:       1 distinct devices seen today ("
         . strftime('%Y-%m-%d', gmtime()) . " UTC)\n",
   'show, an unknown device: the whole output');

my $S2 = '0123ABABABABABAB02';
cli('SET', "device_auth:{$S2}:registered", 'batch-2026-11');
cli('SET', "device_auth:{$S2}:revoked", "stolen \"twice\"\x01\xc3\xa9");
($rc, $out) = show($S2);
is(section($out, 'registered:'), 'yes, "batch-2026-11" (no key recorded)',
   'show: a registration by hand');
is(section($out, 'state:'),
   'revoked, reason "stolen \x22twice\x22\x01\xC3\xA9", no expiry',
   'show: a revocation, bytes escaped');

cli('DEL', "device_auth:{$S2}:revoked");
cli('HSET', "device_auth:{$S2}:revoked", 'a', 'b');
cli('SET', "device_auth:{$S2}:seen", 'x');
($rc, $out) = show($S2);
is($rc, 0, 'show, keys of the wrong type: exit 0');
like(section($out, 'state:'), qr/^cannot tell: error WRONGTYPE /,
     'show: a hash at :revoked (the edge fails on it too)');
like(section($out, 'seen:'), qr/^cannot tell: error WRONGTYPE /,
     'show: a string at :seen');

# a generic serial, as it is
cli('SET', 'device_auth:{meter-0042}:registered', 'generic batch');
($rc, $out) = show('meter-0042');
like($out, qr/^device meter-0042 .*\nstate: .*\nregistered:  yes, "generic batch"/s,
     'show: a generic serial as it is');


###############################################################################
# addresses: prefix, database, unix socket, environment, password

cli('-n', 5, 'SET', "fleet7:{$S2}:registered", 'in db 5');
($rc, $out) = $t->device_auth_split('show', $S2, '--redis',
    'unix:' . $t->redis_socket . ' db=5', '--prefix', 'fleet7:');
like($out, qr/^device $S2 in redis unix:\S+redis\.sock db 5, prefix "fleet7:"\nstate:       not revoked\nregistered:  yes, "in db 5"/,
     'show: unix socket, db=5, --prefix');

{
    local $ENV{DEVICE_AUTH_REDIS} = "127.0.0.1:$port db=5";
    local $ENV{DEVICE_AUTH_PREFIX} = 'fleet7:';
    ($rc, $out) = $t->device_auth_split('show', $S2);
    like($out, qr/^registered:  yes, "in db 5"/m,
         'show: DEVICE_AUTH_REDIS and DEVICE_AUTH_PREFIX');
}

my $closed = $t->port('closed');
($rc, $out, $err) = $t->device_auth_split('show', $S2, '--redis',
                                          "127.0.0.1:$closed");
is($rc, 2, 'show, Redis down: exit 2');
like($err, qr/^device-auth show: cannot connect to redis at 127\.0\.0\.1:$closed db 0: Connection refused$/m,
     'show, Redis down: said');

($rc, $out, $err) = $t->device_auth_split('show', $S2, '--redis',
                                          '127.0.0.1:6379 db=x');
like($err, qr/--redis "127\.0\.0\.1:6379 db=x": invalid or duplicate "db="/,
     'show, a bad address: the parser of device_auth_redis says why');

$t->redis_stop();
$t->redis_start('--requirepass', 's3cret');

($rc, $out, $err) = show($S2);
is($rc, 2, 'show, no password: exit 2');
like($err, qr/NOAUTH|Authentication required/, 'show, no password: why');

{
    local $ENV{REDISCLI_AUTH} = 's3cret';
    ($rc, $out, $err) = show($S2);
    is($rc, 0, 'show, REDISCLI_AUTH: exit 0') or diag($err);

    local $ENV{REDISCLI_AUTH} = 'wrong';
    ($rc, $out, $err) = show($S2);
    is($rc, 2, 'show, a wrong password: exit 2');
    like($err, qr/AUTH: WRONGPASS/, 'show, a wrong password: why');
}

($rc, $out, $err) = $t->device_auth_split('show', $S2, '--redis',
    "127.0.0.1:$port password=s3cret");
is($rc, 0, 'show, password= in --redis: exit 0') or diag($err);

$t->check_error_log();

done_testing();
