#!/usr/bin/perl

# The registry binds the device's key, not only its serial (issue 15,
# section 4).  A forger with a compromised signer's key can issue a
# certificate for any registered serial, but not with the chip's key: when
# the registration records it (spki_sha256=<hex>, written by device-auth
# import-manifest) and the device's signer is compromised, or always with
# device_auth_key_binding always, a certificate whose key (SHA-256 of its
# DER SubjectPublicKeyInfo) differs is refused: 403, key_mismatch, an
# event, a metric.  A registration without a key keeps its meaning.  The
# key is computed in the handshake, and on resumption; the registered one
# is cached with the device's facts and follows their changes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(new_session_cache decision_lines);
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    shared:SSL:1m;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;
    device_auth_log_interval 0;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }

        location /always {
            device_auth on;
            device_auth_key_binding always;
            return 200 "$device_auth_status\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }
}
EOF

my $port = $t->redis_start();
$t->run();

my $P = 'device_auth:';
my $signer = $t->fingerprint('signer1');

# a chip, and a forger's certificate for its serial with another key,
# issued by the same (leaked) signer key
my $SN = '0123B1ED00000000A1';
my $chip = $t->make_device(name => 'chip', serial => $SN);
my $forged = $t->make_device(name => 'forged', serial => $SN);

my $chip_key = DeviceAuth::Manifest::spki_sha256("$chip.pem");
my $forged_key = DeviceAuth::Manifest::spki_sha256("$forged.pem");
isnt($chip_key, $forged_key, 'the forged certificate has another key');

sub st {
    my ($dev, $path, %o) = @_;
    my $r = $t->https_get(device => $dev, path => $path || '/', %o);
    return ($r->{status} || 0) . ' ' . ($r->{headers}{'x-status'} || '-');
}

sub becomes {
    my ($dev, $path, $want) = @_;
    my $end = time() + 10;
    my $s = '';
    while (time() < $end) {
        return 1 if ($s = st($dev, $path)) eq $want;
        sleep(0.05);
    }
    diag("still \"$s\", not \"$want\"");
    return 0;
}

sub metric {
    my $r = $t->https_get(path => '/metrics');
    my ($v) = ($r->{body} || '') =~ /^\Q$_[0]\E (\d+)$/m;
    return $v // 0;
}

sub events_of {
    my ($type) = @_;
    my @l = $t->redis_cli('XRANGE', "${P}events", '-', '+');
    my (@ev, $cur);
    for my $l (@l) {
        if ($l =~ /^\d+-\d+$/) { push @ev, $cur = {}; next }
        next unless $cur;
        if (!exists $cur->{_k}) { $cur->{_k} = $l; next }
        $cur->{ delete $cur->{_k} } = $l;
    }
    return grep { $_->{type} eq $type && $_->{serial} eq $SN } @ev;
}

###############################################################################
# registered from its manifest: the value binds the chip's key

my $m = DeviceAuth::Manifest->new($t);
my $log = $m->log_signer('log');
my $reel = $m->write('reel.json', $m->entry(device => $chip, signer => $log));
my ($rc, $out, $err) = $t->device_auth_split('import-manifest', '--redis',
    "127.0.0.1:$port", '--roots', $t->pki_file('roots.pem'),
    '--log-signers', $log->{cert}, $reel);
is($rc, 0, 'the chip imported from its manifest') or diag($out, $err);
like($t->redis_cli('GET', "$P\{$SN}:registered"),
     qr/ spki_sha256=$chip_key$/, 'its registration records its key');

# the signer in service: any key passes (binding only when compromised)

is(st($chip), '200 ok', 'signer in service: the chip, 200');
is(st($forged), '200 ok', 'signer in service: another key, 200 (not bound '
   . 'by default)');
is(st($forged, '/always'), '403 key_mismatch',
   'device_auth_key_binding always: another key, 403 key_mismatch');
is(st($chip, '/always'), '200 ok', 'device_auth_key_binding always: the '
   . 'chip, 200');

# the signer compromised: the forger's certificate is refused

my $mark = $t->log_mark();
my $before = metric('nginx_device_auth_decisions_total{result="rejected",reason="key_mismatch"}');

$t->redis_cli('SET', "${P}signer:$signer:compromised", 'factory key leaked');

ok(becomes($forged, '/', '403 key_mismatch'),
   'signer compromised: the forged certificate, 403 key_mismatch');
is(st($chip), '200 ok', 'signer compromised: the chip, 200');

my $r = $t->https_get(device => $forged);
is($r->{headers}{'x-reason'},
   "certificate key spki_sha256 $forged_key is not the registered $chip_key "
   . '(signer compromised: factory key leaked)',
   'the reason names both keys and the compromise');

my ($line) = grep { $_->{status} eq 'key_mismatch' }
             decision_lines($t->read_error_log($mark));
ok($line && $line->{serial} eq $SN && $line->{code} == 403,
   'logged: status=key_mismatch, the serial, 403');

cmp_ok(metric('nginx_device_auth_decisions_total{result="rejected",reason="key_mismatch"}')
       - $before, '>=', 2, 'metric: decisions reason="key_mismatch"');

my ($ev) = events_of('key_mismatch');
ok($ev && $ev->{reason} =~ /^certificate key spki_sha256 $forged_key /
   && $ev->{signer} eq $signer, 'a key_mismatch event');

# a resumed session brings the key back from the certificate

for my $v ('TLSv1_2', 'TLSv1_3') {
    my $cache = new_session_cache();
    $t->redis_cli('DEL', "${P}signer:$signer:compromised");
    ok(becomes($forged, '/', '200 ok'), "$v: forged, signer in service: 200");
    $r = $t->https_get(device => $forged, ssl_version => $v,
                       session_cache => $cache);
    is($r->{status}, 200, "$v: a session made");

    $t->redis_cli('SET', "${P}signer:$signer:compromised", 'again');
    my $got = '';
    my $end = time() + 10;
    while (time() < $end) {
        $r = $t->https_get(device => $forged, ssl_version => $v,
                           session_cache => $cache);
        $got = ($r->{reused} ? 'resumed ' : 'full ') . ($r->{status} || 0)
               . ' ' . ($r->{headers}{'x-status'} || '-');
        last if $got =~ /403/;
        sleep(0.05);
    }
    is($got, 'resumed 403 key_mismatch',
       "$v: resumed, the forged key is refused");
}

# the registered key is cached, and follows the registration

$t->redis_cli('SET', "$P\{$SN}:registered", "batch spki_sha256=$forged_key");
ok(becomes($chip, '/', '403 key_mismatch'),
   'registration changed to the other key: the chip is refused');
is(st($forged), '200 ok', 'and the other key passes');

# a registration without a key: today's meaning

$t->redis_cli('SET', "$P\{$SN}:registered", 'batch-2026-11');
ok(becomes($forged, '/always', '200 ok'),
   'registered without a key, bound always: any key, 200');
is(st($chip), '200 ok', 'registered without a key, compromised: 200');

# a key that cannot be read matches none

$t->redis_cli('SET', "$P\{$SN}:registered", 'spki_sha256=not-a-hash');
ok(becomes($chip, '/', '403 key_mismatch'),
   'a malformed key, compromised: 403 key_mismatch');
like(($t->https_get(device => $chip))->{headers}{'x-reason'},
     qr/^certificate key spki_sha256 $chip_key, the registered one is malformed \(signer compromised: again\)$/,
     'a malformed key: the reason says so');

# not registered at all, compromised: signer_compromised as before

$t->redis_cli('DEL', "$P\{$SN}:registered");
ok(becomes($chip, '/', '403 signer_compromised'),
   'not registered, compromised: 403 signer_compromised');

$t->redis_cli('DEL', "${P}signer:$signer:compromised");
ok(becomes($chip, '/', '200 ok'), 'signer back in service: 200');

$t->check_error_log();

done_testing();
