#!/usr/bin/perl

# Direct verification against a learnt signer and the verified-leaf cache
# (issue 16): the first device under a signer is verified by the chain, the
# next ones directly against the signer's key, a device seen again from
# the cache; the identity is the same whichever path; every refusal is the
# same, with the same reason, before and after the signer is learnt (a bad
# signature, a certificate changed under a cached signature, expired, not
# yet valid, profile, rogue and unpinned signers, depth); a reload forgets.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use MIME::Base64 qw(decode_base64 encode_base64);
use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

# the same in both servers: the verdict, a refusal's too
my $locations = <<'EOF';
        location / {
            device_auth on;
            error_page 495 496 = /vars;
            return 200 $vars;
        }

        location = /vars {
            return 200 $vars;
        }
EOF

(my $conf = <<'EOF') =~ s/%%LOCATIONS%%\n/$locations/g;
error_log %%TESTDIR%%/error.log debug;

http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    off;
    ssl_session_tickets  off;

    device_auth_certificate %%PKI%%/roots.pem;

    map $device_auth_status $vars {
        default "status=$device_auth_status serial=$device_auth_serial signer=$device_auth_signer fingerprint=$device_auth_fingerprint reason=$device_auth_reason\n";
    }

    # roots pinned, the devices send their signer
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;

%%LOCATIONS%%
    }

    # pinned signers
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        device_auth_signers %%PKI%%/signers.pem;

%%LOCATIONS%%
    }
}
EOF

$t->write_conf($conf);

# devices made from dev1 with one byte changed: the last byte of the
# signature; a byte of the certificate's serial number (the signature
# stays dev1's, the one the cache knows)

sub tampered {
    my ($name, $where) = @_;

    my $pem = $t->read_file($t->pki_file('dev1.pem'));
    my ($b64) = $pem =~ /-----BEGIN CERTIFICATE-----\n(.*?)-----END/s;
    my $der = decode_base64($b64);

    # SEQUENCE (82 LL LL), tbs SEQUENCE (82 LL LL), version (A0 03 02 01
    # 02), serialNumber (02 LEN ...)
    die 'unexpected DER' unless substr($der, 0, 1) eq "\x30"
                                && substr($der, 4, 1) eq "\x30"
                                && substr($der, 8, 5) eq "\xA0\x03\x02\x01\x02"
                                && substr($der, 13, 1) eq "\x02";

    my $at = $where eq 'signature' ? length($der) - 1 : 16;
    substr($der, $at, 1) = chr(ord(substr($der, $at, 1)) ^ 0x01);

    my $out = "-----BEGIN CERTIFICATE-----\n" . encode_base64($der)
              . "-----END CERTIFICATE-----\n";
    $t->write_file("$name.chain.pem",
                   $out . $t->read_file($t->pki_file('signer1.pem')));

    return ("$name.chain.pem", $t->pki_file('dev1.key'));
}

my %tampered = (
    badsig => [tampered('badsig', 'signature')],
    badtbs => [tampered('badtbs', 'serial')],
);

$t->run();

sub get {
    my ($port, $dev) = @_;

    my %a = (port => $t->port($port), ssl_version => 'TLSv1_3');

    if ($tampered{$dev}) {
        my ($cert, $key) = @{ $tampered{$dev} };
        %a = (%a, cert => $t->testdir . "/$cert", key => $key);

    } else {
        $a{device} = $dev;
        $a{leaf_only} = 1 if $port == 1;
    }

    my $r = $t->https_get(%a);
    return $r->{error} ? "error: $r->{error}" : $r->{body};
}

# how the last connection's device was verified, from the debug log
my $mark = 0;

sub path {
    my $log = $t->read_error_log();
    my $new = substr($log, $mark);
    $mark = length $log;

    my @p = $new =~ /device_auth: certificate .*? verified (by the chain|directly against the signer|directly, signature cached)/g;
    return join ',', @p;
}

# devices the chain refuses, and devices the chain accepts but the
# profile (or, with pinned signers, the pins) refuses: the same verdict
# and reason whichever path
my @chain_refused = qw(badsig badtbs dev_expired dev_future dev_rogue
                       dev_deep);
my @others = qw(dev_p384 dev_rsa dev_sha384 dev_badcn dev_ca
                dev_unpinned_signer);

for my $port (0, 1) {
    my $mode = $port ? 'pinned signers' : 'roots';
    my %before;

    path();

    # before anything is learnt
    for my $dev (@chain_refused, @others) {
        $before{$dev} = get($port, $dev);
    }

    like($before{badsig}, qr/^status=invalid .* reason=bad signature on the certificate at depth 0$/m,
         "$mode: a changed signature is a bad signature");
    like($before{badtbs}, qr/^status=invalid .* reason=bad signature on the certificate at depth 0$/m,
         "$mode: a changed certificate is a bad signature");
    like($before{dev_expired}, qr/^status=invalid .* reason=device certificate expired$/m,
         "$mode: expired");
    like($before{dev_p384}, qr/^status=invalid .* reason=curve secp384r1 not allowed/m,
         "$mode: P-384");

    # the first device, then again (the cache), then another one
    # under the same signer (directly)
    path();

    my $dev1 = get($port, 'dev1');
    like($dev1, qr/^status=ok serial=\Q${\ $t->serial('dev1')}\E /,
         "$mode: dev1 ok");
    is(path(), 'directly against the signer',
       "$mode: dev1, signer1 learnt from a device the profile refused");

    is(get($port, 'dev1'), $dev1, "$mode: dev1 again, same identity");
    is(path(), 'directly, signature cached', "$mode: dev1 again: cached");

    my $dev2 = get($port, 'dev2');
    like($dev2, qr/^status=ok serial=\Q${\ $t->serial('dev2')}\E /,
         "$mode: dev2 ok");
    is(path(), 'directly against the signer',
       "$mode: dev2, same signer: directly");

    (my $signer2 = $dev2) =~ s/.*signer=(\S+).*/$1/s;
    (my $signer1 = $dev1) =~ s/.*signer=(\S+).*/$1/s;
    is($signer2, $signer1, "$mode: the same signer id on both paths");

    my $dev3 = get($port, 'dev3');
    like($dev3, qr/^status=ok /, "$mode: dev3 (signer2) ok");
    is(path(), 'by the chain', "$mode: dev3, first under signer2: chain");

    my $noexp = get($port, 'dev_noexpiry');
    like($noexp, qr/^status=ok /, "$mode: dev_noexpiry ok");
    is(path(), 'directly against the signer',
       "$mode: dev_noexpiry (notAfter 9999): directly");

    # the same verdicts, the same reasons, after
    for my $dev (@chain_refused) {
        is(get($port, $dev), $before{$dev},
           "$mode: $dev refused with the same reason after");
        is(path(), 'by the chain', "$mode: $dev: by the chain");
    }

    for my $dev (@others) {
        is(get($port, $dev), $before{$dev},
           "$mode: $dev, the same verdict and reason after");
    }

    is(get($port, 'dev1'), $dev1, "$mode: dev1 after the refusals");
}

# a reload forgets the signers and the devices

$t->reload();
path();

get(0, 'dev1');
is(path(), 'by the chain', 'after a reload: the chain again');
get(0, 'dev1');
is(path(), 'directly, signature cached', 'after a reload: then the cache');

$t->check_error_log();

done_testing();
