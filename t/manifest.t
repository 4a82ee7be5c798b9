#!/usr/bin/perl

# device-auth import-manifest against a real redis-server, and what an edge
# with device_auth_registry on then decides:
#
# - Microchip's real Trust&GO manifest (t/data/atecc608): both entries
#   verify against Root CA 002 and Log Signer 002 and are registered with
#   where they came from and their key.  The chips' private keys stay in
#   the chips, so their certificates cannot be presented to the edge: the
#   edge is shown devices of the test PKI that carry the same serials,
#   refused before the import and let in after it; that the registered
#   keys are the real chips' is checked on the values themselves.
# - manifests made here (t/lib/DeviceAuth/Manifest.pm) for devices of the
#   test PKI, whose keys the tests have: imported, then the devices
#   themselves are let in; and one entry per way a manifest can be wrong.
# - files that are not manifests: nothing written.
# - values already there: never overwritten silently.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use Test::More;
use DeviceAuth::Test;
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();
my $m = DeviceAuth::Manifest->new($t);
my $pki = $t->pki;

my $real = $ENV{DEVICE_AUTH_TESTDATA}
           || DeviceAuth::Test->repo . '/t/data/atecc608';

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

        location / {
            device_auth on;
            device_auth_registry on;
            error_page 403 = /why;
            return 200 "ok $device_auth_serial\n";
        }

        location = /why {
            return 403 "$device_auth_status $device_auth_serial\n";
        }
    }
}
EOF

my $port = $t->redis_start();
$t->run();

sub cli { $t->redis_cli(@_) }
sub key { "device_auth:{$_[0]}:registered" }

# device-auth import-manifest with the test Redis: { rc, out, err, lines
# => [{ file, n, serial, what }], sum => { entries, registered, ... } }
sub import_manifest {
    my (@args) = @_;
    my ($rc, $out, $err) = $t->device_auth_split('import-manifest',
        '--redis', "127.0.0.1:$port", @args);
    my (@lines, %sum);

    for (split /\n/, $out) {
        if (/^summary: (\d+) entries in (\d+) files?, (\d+) (?:registered|to register), (\d+) already registered, (\d+) kept with another value, (\d+) (?:replaced|to replace), (\d+) rejected/) {
            @sum{qw(entries files registered already kept replaced rejected)}
                = ($1, $2, $3, $4, $5, $6, $7);
        } elsif (/^(\S+):(\d+) (\S+) (.*)$/) {
            push @lines, { file => $1, n => $2, serial => $3, what => $4 };
        } else {
            push @lines, { what => "unexpected line: $_" };
        }
    }

    return { rc => $rc, out => $out, err => $err, lines => \@lines,
             sum => \%sum };
}

sub sum_is {
    my ($r, $want, $name) = @_;
    my %w = (entries => 0, files => 1, registered => 0, already => 0,
             kept => 0, replaced => 0, rejected => 0, %$want);
    is_deeply($r->{sum}, \%w, "$name: summary") or diag($r->{out}, $r->{err});
}

# GET of a registration, fields split
sub registration {
    my ($serial, $prefix) = @_;
    my $v = cli('GET', ($prefix || 'device_auth:') . "{$serial}:registered");
    return undef unless length $v;
    my %f = map { /^([a-z0-9_]+)=(.*)$/ ? ($1, $2) : (bad => $_) }
            split / /, $v;
    $f{value} = $v;
    return \%f;
}

sub status {
    my ($device) = @_;
    my $r = $t->https_get(device => $device, path => '/');
    my $body = $r->{body} || $r->{error} || '';
    chomp $body;
    return ($r->{status} || 0) . " $body";
}


###############################################################################
# Microchip's manifest

my $manifest = "$real/manifest-trustandgo-atecc608a-mah4i.json";
my $root002 = "$real/root-crypto-authentication-root-ca-002.pem";
my $root001 = "$real/root-atecc-root-ca-001.pem";
my $log002 = "$real/manifest-signer-log-signer-002.pem";
my $log001 = "$real/manifest-signer-log-signer-001.pem";
my $all_logs = $t->write_file('mchp-log-signers.pem', join '',
    map { $t->read_file("$real/manifest-signer-log-signer-00$_.pem") } 1 .. 3);
my $file_sha = sha256_hex($t->read_file($manifest));

my %chip = (
    '01230390B3D1450C01' => {
        cert => "$real/device-sn01230390b3d1450c01.pem",
        signer => "$real/signer-2c00.pem",
        time => '2020-06-09T22:49:52.470Z' },
    '0123D26E26E688C901' => {
        cert => "$real/device-sn0123d26e26e688c901.pem",
        signer => "$real/signer-2c10.pem",
        time => '2020-06-09T22:52:06.803Z' },
);
my @chips = sort keys %chip;

# test devices with the chips' serials, for the edge
my %twin = map { $_ => $t->make_device(name => "twin$_", serial => $_) }
           @chips;
my $other = $t->make_device(name => 'other', serial => '0123D26E26E688C9FF');

is(status($twin{$_}), "403 unregistered $_", "$_: refused before the import")
    for @chips;

my $r = import_manifest('--roots', $root002, '--log-signers', $log002,
                        $manifest);
is($r->{rc}, 0, 'Microchip manifest: exit 0') or diag($r->{out}, $r->{err});
is_deeply([map { "$_->{n} $_->{serial} $_->{what}" } @{ $r->{lines} }],
          ["1 01230390B3D1450C01 registered", "2 0123D26E26E688C901 registered"],
          'Microchip manifest: one line per entry');
is($r->{lines}[0]{file}, $manifest, 'the lines name the file');
sum_is($r, { entries => 2, registered => 2 }, 'Microchip manifest');
is($r->{err}, '', 'Microchip manifest: nothing on stderr');

for my $sn (@chips) {
    my $reg = registration($sn);
    is_deeply([sort keys %$reg],
              [qw(manifest part provisioned signer spki_sha256 value)],
              "$sn: the fields of the value") or diag(explain $reg);
    is($reg->{manifest}, $file_sha, "$sn: the SHA-256 of the manifest file");
    is($reg->{part}, 'ATECC608A-MAH4I', "$sn: the part number");
    is($reg->{provisioned}, $chip{$sn}{time}, "$sn: the provisioning time");
    is($reg->{signer}, $t->fingerprint($chip{$sn}{signer}),
       "$sn: the signer id, as the edge computes it");
    is($reg->{spki_sha256}, DeviceAuth::Manifest::spki_sha256($chip{$sn}{cert}),
       "$sn: the SHA-256 of the chip's public key (SubjectPublicKeyInfo)");
    like($reg->{value}, qr/^manifest=[0-9a-f]{64} part=\S+ provisioned=\S+ signer=[0-9a-f]{64} spki_sha256=[0-9a-f]{64}$/,
         "$sn: one line, name=value fields in order");
}

is(status($twin{$_}), "200 ok $_", "$_: let in after the import")
    for @chips;
like(status($other), qr/^403 unregistered /,
     'a serial not in the manifest is still refused');

# again: nothing changes
$r = import_manifest('--roots', $root002, '--log-signers', $log002,
                     $manifest);
is($r->{rc}, 0, 'again: exit 0');
is_deeply([map { $_->{what} } @{ $r->{lines} }],
          ['already registered', 'already registered'],
          'again: already registered');
sum_is($r, { entries => 2, already => 2 }, 'again');

# the pins decide
$r = import_manifest('--roots', $root002, '--log-signers', $log001,
                     '--dry-run', $manifest);
is($r->{rc}, 1, 'log signer 001 only: exit 1');
like($_->{what}, qr/^rejected: "kid": "8VeKGdyU2d8wev6_VzNJOBOv-cA" names no pinned log signer$/,
     "log signer 001 only: entry $_->{n} rejected") for @{ $r->{lines} };

$r = import_manifest('--roots', $root001, '--log-signers', $log002,
                     '--dry-run', $manifest);
is($r->{rc}, 1, 'Root CA 001 only: exit 1');
like($_->{what}, qr/^rejected: device certificate: chain does not end in a pinned root/,
     "Root CA 001 only: entry $_->{n} rejected") for @{ $r->{lines} };

$r = import_manifest('--roots', $root002, '--signers', "$real/signer-2c00.pem",
                     '--log-signers', $log002, '--dry-run', $manifest);
is_deeply([map { $_->{what} } @{ $r->{lines} }],
          ['already registered',
           'rejected: device certificate: signer not pinned (device issued by a certificate that is not in the pinned signers)'],
          'signer 2C00 pinned: the 2C10 device is rejected');
is($r->{rc}, 1, 'signer 2C00 pinned: exit 1');

# a dry run writes nothing
cli('DEL', key($chips[1]));
$r = import_manifest('--roots', $root002, '--log-signers', $all_logs,
                     '--dry-run', $manifest);
is($r->{rc}, 0, 'dry run, all three log signers pinned: exit 0');
is_deeply([map { $_->{what} } @{ $r->{lines} }],
          ['already registered', 'would be registered'], 'dry run: lines');
like($r->{out}, qr/^summary: 2 entries in 1 file, 1 to register, 1 already registered, 0 kept with another value, 0 to replace, 0 rejected \(dry run: nothing written\)$/m,
     'dry run: summary');
is(cli('EXISTS', key($chips[1])), 0, 'dry run: nothing written');

# a value set by hand is kept, and said so; --replace replaces it
cli('SET', key($chips[1]), 'batch-2020-06');
$r = import_manifest('--roots', $root002, '--log-signers', $all_logs,
                     $manifest);
is($r->{rc}, 0, 'another value: exit 0');
is($r->{lines}[1]{what},
   'already registered, other value kept: "batch-2020-06"',
   'another value: kept, and shown');
sum_is($r, { entries => 2, already => 1, kept => 1 }, 'another value');
is(cli('GET', key($chips[1])), 'batch-2020-06', 'another value: unchanged');

$r = import_manifest('--roots', $root002, '--log-signers', $all_logs,
                     '--replace', $manifest);
is($r->{rc}, 0, '--replace: exit 0');
is($r->{lines}[1]{what}, 'replaced, was: "batch-2020-06"',
   '--replace: replaced, the old value shown');
sum_is($r, { entries => 2, already => 1, replaced => 1 }, '--replace');
is(registration($chips[1])->{manifest}, $file_sha, '--replace: the new value');

# a registration with another key is never replaced
my $good = cli('GET', key($chips[0]));
(my $forged = $good) =~ s/spki_sha256=[0-9a-f]{64}/'spki_sha256=' . 'ab' x 32/e;
cli('SET', key($chips[0]), $forged);
$r = import_manifest('--roots', $root002, '--log-signers', $all_logs,
                     '--replace', $manifest);
is($r->{rc}, 1, 'another key: exit 1');
is($r->{lines}[0]{what},
   "rejected: registered already with another key, which is kept: \"$forged\"",
   'another key: rejected, the value there shown');
sum_is($r, { entries => 2, already => 1, rejected => 1 }, 'another key');
is(cli('GET', key($chips[0])), $forged, 'another key: not replaced');
cli('SET', key($chips[0]), $good);

# a key of another type: that entry fails, the others are written
cli('DEL', key($_)) for @chips;
cli('HSET', key($chips[0]), 'a', 'b');
$r = import_manifest('--roots', $root002, '--log-signers', $log002,
                     $manifest);
is($r->{rc}, 1, 'a hash at the key: exit 1');
like($r->{lines}[0]{what}, qr/^rejected: redis: GET: WRONGTYPE /,
     'a hash at the key: the Redis error for that entry');
is($r->{lines}[1]{what}, 'registered', 'a hash at the key: the other written');
cli('DEL', key($chips[0]));


###############################################################################
# manifests made here, with log signers made here

my $logA = $m->log_signer('logA');
my $logB = $m->log_signer('logB');
my $logX = $m->log_signer('logX');        # never pinned
my $logs = $t->write_file('logs.pem', $t->read_file($logA->{cert})
                                      . $t->read_file($logB->{cert}));
my @pins = ('--roots', "$pki/roots.pem", '--log-signers', $logs);

my @good = qw(dev1 dev2 dev3 dev_tng);
my $reel = $m->write('reel.json',
    map { $m->entry(device => $t->pki_file($_), signer => $logA) } @good);

is(status('dev1'), '403 unregistered ' . $t->serial('dev1'),
   'dev1 refused before its manifest is imported');

$r = import_manifest(@pins, $reel);
is($r->{rc}, 0, 'own manifest: exit 0') or diag($r->{out}, $r->{err});
is_deeply([map { "$_->{serial} $_->{what}" } @{ $r->{lines} }],
          [map { $t->serial($_) . ' registered' } @good],
          'own manifest: every device registered');

for my $d (@good) {
    is(status($d), '200 ok ' . $t->serial($d), "$d: let in by the edge");
    is(registration($t->serial($d))->{spki_sha256},
       DeviceAuth::Manifest::spki_sha256($t->pki_file("$d.pem")),
       "$d: its key recorded");
}
is(registration($t->serial('dev3'))->{signer}, $t->fingerprint('signer2'),
   'dev3: signer2 recorded');
like(status('dev_noexpiry'), qr/^403 unregistered /,
     'a device of the PKI not in the manifest: refused');

# the same with the signers pinned: the same values
$r = import_manifest(@pins, '--signers', "$pki/signers.pem", $reel);
sum_is($r, { entries => 4, already => 4 }, 'signers pinned: the same values');


###############################################################################
# one entry per fault, between good ones: each rejected with its reason,
# the good ones registered

my $n = 0;
sub dev { $t->make_device(name => 'f' . ++$n, serial => sprintf('0123FA00000000%04X', $n)) }
sub sn { my ($d) = @_; (my $s = $t->read_file("$d.serial")) =~ s/\s+//; $s }

my $signed = sub { $m->entry(signer => $logA, @_) };
my ($dx, $dy) = map { dev() } 1 .. 2;
my ($other_x) = DeviceAuth::Manifest::pubkey_xy("$dy.pem");
my $kidA = $logA->{kid};
my $subjA = 'CN=logA,O=Device Auth Test Inc';

sub spoil_payload {
    my ($e) = @_;
    my $p = DeviceAuth::Manifest::b64url_decode($e->{payload});
    $p =~ s/ATECC608A-TNGTLS/ATECC608A-TFLXTLS/ or die 'no part number';
    $e->{payload} = DeviceAuth::Manifest::b64url($p);
}

my @cases = (
    # name, entry options (device made for it unless given), reason
    ['tampered payload', { after => \&spoil_payload },
     qr/^signature does not verify with log signer "\Q$subjA\E" \(kid \Q$kidA\E\)$/],
    ['signed by an unpinned log signer', { signer => $logX },
     qr/^"kid": "\Q$logX->{kid}\E" names no pinned log signer$/],
    ['an unpinned log signer naming a pinned one',
     { signer => $logX, kid => $kidA, x5t => $logA->{x5t} },
     qr/^signature does not verify with log signer "\Q$subjA\E"/],
    ['kid naming another pinned log signer',
     { kid => $logB->{kid}, x5t => $logB->{x5t} },
     qr/^signature does not verify with log signer "CN=logB,O=Device Auth Test Inc" \(kid \Q$logB->{kid}\E\)$/],
    ['x5t#S256 of another certificate', { x5t => $logB->{x5t} },
     qr/^"x5t#S256" is not the thumbprint of log signer "\Q$subjA\E" that "kid" names$/],
    ['no kid', { kid => undef }, qr/^protected header has no "kid"/],
    ['alg none', { alg => 'none' },
     qr/^"alg": "none" is not allowed, only ES256$/],
    ['alg HS256', { alg => 'HS256' },
     qr/^"alg": "HS256" is not allowed, only ES256$/],
    ['crit', { protected_extra => { crit => ['exp'] } },
     qr/^protected header has "crit": no extension is supported$/],
    ['device certificate not chaining to the pins',
     { device => $t->pki_file('dev_rogue') },
     qr/^device certificate: chain does not end in a pinned root \(no issuer found for "CN=Other Company Root CA/],
    ['device certificate expired', { device => $t->pki_file('dev_expired') },
     qr/^device certificate: device certificate expired$/],
    ['device certificate with an RSA key',
     { device => $t->pki_file('dev_rsa'), jwk => { x => 'x' x 32, y => 'y' x 32 } },
     qr/^device certificate: key type RSA-2048 not allowed by profile atecc608$/],
    ['JWK of another key', { jwk => { x => $other_x } },
     qr/^the JWK is not the key of the device certificate$/],
    ['uniqueId of another chip', { uid => lc sn($dy) },
     qr/^"uniqueId" \Q${\ sn($dy)}\E is not the serial of the device certificate, 0123FA/],
    ['uniqueId not a serial', { uid => 'sn0123' },
     qr/^payload "uniqueId" is not a serial number \(18 hex digits\)$/],
    ['unprotected uniqueId differs', { header_uid => lc sn($dy) },
     qr/^the unprotected header's "uniqueId" differs from the payload's$/],
    ['payload not JSON', { payload_json => 'not json', uid => undef },
     qr/^payload is not valid JSON: /],
    ['no part number', { part => undef },
     qr/^payload has no "partNumber" string$/],
    ['part number with a space', { part => 'ATECC 608' },
     qr/^payload "partNumber" "ATECC 608" is not 1-64 characters of A-Z a-z 0-9 \._\+\/-$/],
    ['base64url: payload', { payload_b64 => 'eyJh*GciOiJ' },
     qr/^payload: base64url: invalid character '\*' at offset 4$/],
    ['base64url: protected header padded',
     { protected_b64 => DeviceAuth::Manifest::b64url('{"alg":"ES256","kid":"' . $kidA . '"}') . '=' },
     qr/^protected header: base64url: invalid character '=' at offset \d+$/],
    ['base64url: signature in the standard alphabet',
     { after => sub { substr($_[0]{signature}, 0, 1) = '+' } },
     qr/^signature: base64url: invalid character '\+' at offset 0$/],
    ['base64url: signature of 63 bytes',
     { after => sub { $_[0]{signature} = DeviceAuth::Manifest::b64url('s' x 63) } },
     qr/^signature is 84 base64url characters, ES256 needs 86 \(r \|\| s, 64 bytes\)$/],
    ['base64url: non-canonical signature',
     { after => sub {
           my $s = \$_[0]{signature};
           my $a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
           my $v = index($a, substr($$s, -1));
           substr($$s, -1) = substr($a, $v | 1, 1);
       } },
     qr/^signature: base64url: non-canonical encoding \(trailing bits are not zero\)$/],
    ['base64: x5c in the url alphabet',
     { x5c_b64 => ['MIIB-zCC'] },
     qr/^"x5c"\[0\]: base64: invalid character '-' at offset 4$/],
    ['base64: x5c not a certificate',
     { x5c_b64 => [ 'bm90IGEgY2VydGlmaWNhdGU=' ] },
     qr/^"x5c"\[0\] is not one DER certificate$/],
    ['JWK x of 31 bytes', { jwk => { x => 'x' x 31 } },
     qr/^the JWK's "x" is not a 32-byte base64url value$/],
);

my (@entries, @expect);

push @entries, $signed->(device => $t->pki_file('dev_noexpiry'));
push @expect, [sn($t->pki_file('dev_noexpiry')), qr/^registered$/];

for my $c (@cases) {
    my ($name, $o, $reason) = @$c;
    my %o = %$o;
    $o{device} ||= dev();
    my $e = eval { $signed->(%o) } or die "$name: $@";
    push @entries, $e;
    push @expect, [$name, qr/^rejected: /, $reason];
}

# a duplicate entry, and one serial with two keys
my $dup = $signed->(device => $dx);
push @entries, $dup, $dup;
push @expect, [sn($dx), qr/^registered$/],
              ['duplicate entry', qr/^rejected: duplicate of \S+reel-faults\.json:\d+$/];

my $twin_a = $t->make_device(name => 'twinA', serial => '0123FB000000000001');
my $twin_b = $t->make_device(name => 'twinB', serial => '0123FB000000000001');
push @entries, $signed->(device => $twin_a), $signed->(device => $twin_b);
push @expect,
    ['one serial, two keys (first)', qr/^rejected: serial in \S+:\d+ too, with another key$/],
    ['one serial, two keys (second)', qr/^rejected: serial in \S+:\d+ too, with another key$/];

# JSON-level faults of one entry, and the general serialization
my $gen_dev = dev();
my $flat = $signed->(device => $gen_dev);
my $general = { payload => $flat->{payload}, signatures => [
    { protected => $flat->{protected}, header => $flat->{header},
      signature => $flat->{signature} } ] };
my $two_sigs = { payload => $flat->{payload}, signatures => [
    $general->{signatures}[0], $general->{signatures}[0] ] };

push @entries, $general;
push @expect, [sn($gen_dev), qr/^registered$/];
push @entries, $two_sigs;
push @expect, ['two signatures', qr/^rejected: JWS "signatures" must be an array of one signature$/];
push @entries, '{"payload": "a", "payload": "b"}';
push @expect, ['duplicate member', qr/^rejected: entry is not valid JSON: duplicate object key/];
push @entries, '{"protected": 1}';
push @expect, ['protected not a string', qr/^rejected: JWS has no "payload"$/];
push @entries, '{"pad": "' . ('p' x 70000) . '"}';
push @expect, ['entry of 70 KB', qr/^rejected: entry is 70011 bytes, at most 65536 allowed$/];

push @entries, $signed->(device => $t->pki_file('dev_unpinned_signer'));
push @expect, [sn($t->pki_file('dev_unpinned_signer')), qr/^registered$/];

my $faults = $m->write('reel-faults.json', @entries);

$r = import_manifest(@pins, $faults);
is($r->{rc}, 1, 'faults: exit 1');
is(scalar @{ $r->{lines} }, scalar @expect, 'faults: a line per entry')
    or diag($r->{out});

for my $i (0 .. $#expect) {
    my ($name, $what, $reason) = @{ $expect[$i] };
    my $l = $r->{lines}[$i] || {};
    is($l->{n}, $i + 1, "faults: line " . ($i + 1) . " is entry " . ($i + 1));
    like($l->{what} || '', $what, "$name: " . ($reason ? 'rejected' : 'registered'));
    like(($l->{what} || '') =~ s/^rejected: //r, $reason, "$name: the reason")
        if $reason;
}

sum_is($r, { entries => scalar @expect, registered => 4,
             rejected => @expect - 4 }, 'faults');

for my $l (@{ $r->{lines} }) {
    next unless $l->{what} =~ /^rejected/ && $l->{serial} ne '-';
    next if $l->{serial} eq sn($dx);          # its first entry counts
    is(cli('EXISTS', key($l->{serial})), 0,
       "faults: $l->{serial} (entry $l->{n}) not registered");
}

is(status($gen_dev), '200 ok ' . sn($gen_dev),
   'the general serialization: the device let in');
is(status($dx), '200 ok ' . sn($dx), 'the duplicated entry: registered once');
like(status($twin_a), qr/^403 unregistered /,
     'one serial with two keys: neither registered');


###############################################################################
# files that are not manifests: an error, nothing written

my $text = $t->read_file($reel);
my $fresh = $m->write('fresh.json',
    $signed->(device => my $fresh_dev = dev()));
my $fresh_sn = sn($fresh_dev);

my @bad_files = (
    ['truncated', substr($text, 0, int(length($text) * 0.6)),
     qr/: entry 3 is not valid JSON: .* \(line \d+, column \d+\); nothing was imported$/],
    ['truncated after an entry', $text =~ s/,\n\{.*//sr,
     qr/: the file ends after entry 1, without the closing '\]' \(truncated\?\); nothing was imported$/],
    ['not JSON', "hello, world\n",
     qr/: not a manifest: a JSON array of entries must start at line 1, column 1; nothing was imported$/],
    ['a JSON object', '{"payload": "x"}',
     qr/: not a manifest: a JSON array of entries must start at line 1, column 1;/],
    ['an empty array', "[ ]\n", qr/: the manifest holds no entries;/],
    ['an array of numbers', '[1, 2]', qr/: entry 1 is not a JSON object \(line 1, column 2\);/],
    ['data after the array', "$text]", qr/: data after the end of the array \(line \d+, column 1\);/],
    ['no comma', $text =~ s/\},\n\{/}\n{/r,
     qr/: ',' or '\]' expected after entry 1 \(line \d+, column 1\);/],
    ['NUL bytes', "[\0\0\0]", qr/: entry 1 is not a JSON object/],
    ['empty', '', qr/: empty file, not a manifest$/],
);

for my $b (@bad_files) {
    my ($name, $content, $msg) = @$b;
    my $f = $t->write_file("bad-$name.json" =~ s/ /-/gr, $content);
    my $before = cli('DBSIZE');

    # the good file first: not written either
    $r = import_manifest(@pins, $fresh, $f);
    is($r->{rc}, 2, "$name: exit 2");
    like($r->{err}, qr/^device-auth import-manifest: \Q$f\E$msg/m,
         "$name: the message") or diag($r->{err});
    is($r->{out}, '', "$name: no report");
    is(cli('DBSIZE'), $before, "$name: nothing written");
    is(cli('EXISTS', key($fresh_sn)), 0,
       "$name: not even the good file's entries");
}

# a million entries and one: refused before anything is kept of them
my $many = $t->testdir . '/many.json';
open my $mfh, '>', $many or die $!;
print $mfh '[', join(',', ('{}') x 1000001), ']';
close $mfh;
$r = import_manifest(@pins, $many);
is($r->{rc}, 2, 'a million entries and one: exit 2');
like($r->{err}, qr/many\.json: more than 1000000 entries: split the file; nothing was imported$/,
     'a million entries and one: said');

$r = import_manifest(@pins, "$pki/no-such-file.json");
is($r->{rc}, 2, 'missing file: exit 2');
like($r->{err}, qr/no-such-file\.json: No such file or directory/,
     'missing file: the message');


###############################################################################
# arguments, pins, Redis

$r = import_manifest('--roots', "$pki/roots.pem", $fresh);
is($r->{rc}, 2, 'no --log-signers: exit 2');
like($r->{err}, qr/--roots and --log-signers are required\nusage: device-auth import-manifest --roots F/,
     'no --log-signers: the message and the usage');

$r = import_manifest('--roots', "$pki/nothing.pem", '--log-signers', $logs,
                     $fresh);
like($r->{err}, qr/--roots: cannot open ".*nothing\.pem": No such file/,
     'roots missing: the message');

$r = import_manifest('--roots', $logA->{cert}, '--log-signers', $logs, $fresh);
like($r->{err}, qr/certificate "CN=logA,O=Device Auth Test Inc" is not a CA/,
     'a log signer as a root: refused');
is($r->{rc}, 2, 'a log signer as a root: exit 2');

my $p384 = $t->testdir . '/log-p384';
system("openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 "
       . "-nodes -keyout '$p384.key' -out '$p384.pem' -subj /CN=log384 "
       . "-days 30 >/dev/null 2>&1") == 0
    or die 'openssl req';
$r = import_manifest('--roots', "$pki/roots.pem", '--log-signers',
                     "$p384.pem", $fresh);
like($r->{err}, qr/--log-signers: log signer "CN=log384" has no P-256 key \(ES256 needs one\)/,
     'a P-384 log signer: refused');

my ($rc, $out, $err) = $t->device_auth_split('import-manifest', '--redis',
    'localhost:6379', @pins, $fresh);
is($rc, 2, 'a host name: exit 2');
like($err, qr/--redis "localhost:6379": "localhost" is not an IP address/,
     'a host name: the parser of device_auth_redis says why');

my $closed = $t->port('closed');
($rc, $out, $err) = $t->device_auth_split('import-manifest', '--redis',
    "127.0.0.1:$closed", @pins, $fresh);
is($rc, 2, 'Redis down: exit 2');
like($err, qr/cannot connect to redis at 127\.0\.0\.1:$closed db 0: Connection refused/,
     'Redis down: the message');
is($out, '', 'Redis down: no report');

# the prefix, a database, the unix socket, the environment
$r = import_manifest(@pins, '--prefix', 'fleet7:', $fresh);
is($r->{rc}, 0, '--prefix: exit 0');
is(registration($fresh_sn, 'fleet7:')->{spki_sha256},
   DeviceAuth::Manifest::spki_sha256("$fresh_dev.pem"),
   '--prefix: the key under that prefix');
is(cli('EXISTS', key($fresh_sn)), 0, '--prefix: not under the default one');

($rc, $out) = $t->device_auth_split('import-manifest', '--redis',
    "unix:" . $t->redis_socket . " db=3", @pins, $fresh);
is($rc, 0, 'unix socket, db=3: exit 0') or diag($out);
is(scalar(cli('-n', 3, 'EXISTS', key($fresh_sn))), 1,
   'unix socket, db=3: written in database 3');

{
    local $ENV{DEVICE_AUTH_REDIS} = "127.0.0.1:$port db=4";
    ($rc, $out) = $t->device_auth_split('import-manifest', @pins, $fresh);
    is($rc, 0, 'DEVICE_AUTH_REDIS: exit 0');
    is(scalar(cli('-n', 4, 'EXISTS', key($fresh_sn))), 1,
       'DEVICE_AUTH_REDIS: its address and database');
}

###############################################################################
# 1000 entries (build/tools/manifest-gen): verified by two processes, with
# the progress on stderr, the same as by one

my $gen = "$FindBin::Bin/../build/tools/manifest-gen";
my $big = $t->testdir . '/m1000';
system("bash '$FindBin::Bin/lib/mkmanifest.sh' '$big' '$pki' 1000 "
       . ">'$big.log' 2>&1") == 0
    or die "mkmanifest.sh (is $gen built? make tools): "
           . $t->read_file("$big.log");

my @big_pins = ('--roots', "$pki/roots.pem", '--log-signers',
                "$big/log-signer.pem");

$r = import_manifest(@big_pins, '--dry-run', '--jobs', 1,
                     "$big/manifest.json");
is($r->{rc}, 0, '1000 entries, one process: exit 0');
like($r->{err}, qr/^verified 1000 entries in [\d.]+ s by 1 process \(\d+ entries\/s\), [\d.]+ s of CPU$/m,
     '1000 entries, one process: said so');
my @one = map { "$_->{serial} $_->{what}" } @{ $r->{lines} };

$r = import_manifest(@big_pins, '--jobs', 2, "$big/manifest.json");
is($r->{rc}, 0, '1000 entries, two processes: exit 0');
sum_is($r, { entries => 1000, registered => 1000 },
       '1000 entries, two processes');
like($r->{err}, qr/^verified 1000 entries in [\d.]+ s by 2 processes /m,
     '1000 entries: two processes');
is(scalar(() = $r->{err} =~ /^verifying: \d+\/1000 entries \(\d+%\)$/mg), 9,
   '1000 entries: a progress line per 10%');
is_deeply([map { "$_->{serial} $_->{what}" =~ s/ registered$/ would be registered/r }
           @{ $r->{lines} }], \@one,
          '1000 entries: the same verdicts, in the order of the file');

my ($sn, $spki) = split / /, (split /\n/, $t->read_file("$big/manifest.json.serials"))[999];
is(registration($sn)->{spki_sha256}, $spki, '1000 entries: the last one\'s key');

$r = import_manifest(@pins, '--quiet', $reel, $fresh);
is($r->{out} =~ tr/\n//, 1, '--quiet: only the summary when all is well');
sum_is($r, { entries => 5, files => 2, registered => 1, already => 4 },
       'two files');

$t->check_error_log();

done_testing();
