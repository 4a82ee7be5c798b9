#!/usr/bin/perl

# The certificate policy code (src/ngx_device_auth_cert.c) through
# "build/device-auth check": on the test PKI, and on the real Microchip
# ATECC608 certificates in /work/shared/testdata/atecc608 (their private
# keys stay in the chips, so they cannot be used in a TLS handshake).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;

sub check {
    my (@args) = @_;
    my ($rc, $out) = $t->certcheck(@args);
    chomp $out;
    my %f;

    if ($out =~ /^ok serial=(.*) signer=(\S+) fingerprint=(\S+) anchor=(\S+)$/) {
        @f{qw(serial signer fingerprint anchor)} = ($1, $2, $3, $4);

    } elsif ($out =~ /^invalid error=(\d+) serial=(.*?) reason=(.*) subject=(.*)$/) {
        @f{qw(error serial reason subject)} = ($1, $2, $3, $4);
    }

    return ($rc, $out, \%f);
}

sub accepted {
    my ($name, $expect, @args) = @_;
    my ($rc, $out, $f) = check(@args);

    is($rc, 0, "$name: accepted") or diag($out);
    like($out, qr/^ok /, "$name: ok line");

    for my $k (sort keys %$expect) {
        is($f->{$k}, $expect->{$k}, "$name: $k");
    }
}

sub rejected {
    my ($name, $reason, @args) = @_;
    my ($rc, $out, $f) = check(@args);

    is($rc, 1, "$name: rejected") or diag($out);
    like($out, qr/^invalid error=\d+ /, "$name: invalid line");
    like($f->{reason} || '', $reason, "$name: reason") if $reason;
}

###############################################################################
# test PKI

my $s1 = $t->fingerprint('signer1');
my $s2 = $t->fingerprint('signer2');

for my $d (qw(dev1 dev2 dev_noexpiry dev_tng)) {
    accepted("$d chain, roots only",
             { serial => $t->serial($d), signer => $s1,
               fingerprint => $t->fingerprint($d),
               anchor => $t->fingerprint('root') },
             '-r', "$pki/roots.pem", "$pki/$d.chain.pem");

    accepted("$d leaf only, signers pinned",
             { serial => $t->serial($d), signer => $s1,
               fingerprint => $t->fingerprint($d), anchor => $s1 },
             '-r', "$pki/roots.pem", '-s', "$pki/signers.pem", "$pki/$d.pem");
}

accepted('dev3 via signer2', { serial => '0123A1B2C3D4E5F603', signer => $s2 },
         '-r', "$pki/roots.pem", '-s', "$pki/signers.pem", "$pki/dev3.pem");

accepted('dev_tng serial upper-cased', { serial => '0123C0C1C2C3C4C501' },
         '-r', "$pki/roots.pem", "$pki/dev_tng.chain.pem");

accepted('dev1 with the root in the chain', { serial => $t->serial('dev1') },
         '-r', "$pki/roots.pem", "$pki/dev1.fullchain.pem");

rejected('dev1 leaf only, no signers pinned', qr/chain does not end/,
         '-r', "$pki/roots.pem", "$pki/dev1.pem");

rejected('4 certificates sent with depth 1', qr/device sent 4 certificates/,
         '-r', "$pki/roots.pem", "$pki/dev1.toolong.pem");

# an unpinned signer: refused with pinned signers, accepted without them
# (it chains to the pinned root)

rejected('signer3, signers pinned', qr/^signer not pinned/,
         '-r', "$pki/roots.pem", '-s', "$pki/signers.pem",
         "$pki/dev_unpinned_signer.chain.pem");

accepted('signer3, no signers pinned',
         { signer => $t->fingerprint('signer3'),
           serial => $t->serial('dev_unpinned_signer') },
         '-r', "$pki/roots.pem", "$pki/dev_unpinned_signer.chain.pem");

rejected('rogue chain', qr/chain does not end in a pinned root/,
         '-r', "$pki/roots.pem", "$pki/dev_rogue.chain.pem");
# with its own root the rogue chain has 2 untrusted CAs: at depth 1 OpenSSL
# stops at the length before it sees the unpinned root
rejected('rogue chain with its root', qr/chain ends in an unpinned root|^chain longer than the verify depth 1/,
         '-r', "$pki/roots.pem", "$pki/dev_rogue.fullchain.pem");
rejected('rogue chain with its root, depth 2',
         qr/^chain ends in an unpinned root "CN=Other Company Root CA/,
         '-d', 2, '-r', "$pki/roots.pem", "$pki/dev_rogue.fullchain.pem");
accepted('rogue chain, root2 pinned too',
         { signer => $t->fingerprint('rogue_signer'),
           anchor => $t->fingerprint('root2') },
         '-r', "$pki/roots_both.pem", "$pki/dev_rogue.chain.pem");

rejected('expired', qr/^device certificate expired/,
         '-r', "$pki/roots.pem", "$pki/dev_expired.chain.pem");
rejected('not yet valid', qr/^device certificate not yet valid/,
         '-r', "$pki/roots.pem", "$pki/dev_future.chain.pem");
rejected('RSA key', qr/^key type RSA-2048 not allowed by profile atecc608/,
         '-r', "$pki/roots.pem", "$pki/dev_rsa.chain.pem");
rejected('P-384 key', qr/^curve secp384r1 not allowed by profile atecc608/,
         '-r', "$pki/roots.pem", "$pki/dev_p384.chain.pem");
rejected('SHA-384 signature',
         qr/^signature algorithm ecdsa-with-SHA384 not allowed/,
         '-r', "$pki/roots.pem", "$pki/dev_sha384.chain.pem");
rejected('CN device-42', qr/^subject CN "device-42" does not match/,
         '-r', "$pki/roots.pem", "$pki/dev_badcn.chain.pem");
rejected('CA device', qr/^device certificate is a CA/,
         '-r', "$pki/roots.pem", "$pki/dev_ca.chain.pem");
rejected('generic CN under atecc608', qr/"meter-0042" does not match/,
         '-r', "$pki/roots.pem", "$pki/dev_generic.chain.pem");

my ($rc, $out) = check('-r', "$pki/roots.pem", "$pki/dev_inject.chain.pem");
is($rc, 1, 'CN with CR LF: rejected');
unlike($out, qr/[\r\x00]|\n./s, 'CN with CR LF: output escaped, one line');
like($out, qr/\\x0D\\x0AX-Injected/, 'CN with CR LF: shown escaped');
is(($out =~ tr/\n//), 0, 'CN with CR LF: no newline inside the line');

rejected('too deep, depth 1', qr/^chain longer than the verify depth 1/,
         '-r', "$pki/roots.pem", "$pki/dev_deep.chain.pem");
accepted('too deep, depth 2',
         { serial => $t->serial('dev_deep'),
           signer => $t->fingerprint('inter2') },
         '-d', 2, '-r', "$pki/roots.pem", "$pki/dev_deep.chain.pem");

accepted('profile generic', { serial => 'meter-0042', signer => $s1 },
         '-p', 'generic', '-r', "$pki/roots.pem",
         "$pki/dev_generic.chain.pem");
accepted('profile generic, RSA key', { serial => 'sn0123F1F1F1F1F1F101' },
         '-p', 'generic', '-r', "$pki/roots.pem", "$pki/dev_rsa.chain.pem");
rejected('profile generic, CN with CR LF', qr/not a valid serial/,
         '-p', 'generic', '-r', "$pki/roots.pem",
         "$pki/dev_inject.chain.pem");

($rc, $out) = check('-r', "$pki/leaf-as-root.pem", "$pki/dev1.chain.pem");
is($rc, 2, 'a non-CA pinned root is a configuration error');
like($out, qr/is not a CA/, 'non-CA root: message');

($rc, $out) = check('-r', "$pki/roots.pem", '-s',
                    "$pki/rogue-signer-bundle.pem", "$pki/dev1.pem");
is($rc, 2, 'a signer not chaining to the roots is a configuration error');
like($out, qr/signer "CN=Rogue Signer.*" does not chain to a pinned root/,
     'rogue signer: message');

# CN forms, on certificates made for the purpose

my @cn = (
    # CN, profile, accepted serial or rejection pattern
    ['sn0123a1b2c3d4e5f6a8', 'atecc608', '0123A1B2C3D4E5F6A8'],
    ['0123A1B2C3D4E5F6A9 ATECC', 'atecc608', '0123A1B2C3D4E5F6A9'],
    ['SN0123A1B2C3D4E5F6AA', 'atecc608', qr/does not match profile atecc608/],
    ['sn0124A1B2C3D4E5F6AB', 'atecc608', qr/does not match profile atecc608/],
    ['sn0123A1B2C3D4E5F6A', 'atecc608', qr/does not match profile atecc608/],
    ['sn0123A1B2C3D4E5F6ABC', 'atecc608', qr/does not match profile atecc608/],
    ['sn0123A1B2C3D4E5F6AG', 'atecc608', qr/does not match profile atecc608/],
    ['0123A1B2C3D4E5F6AC atecc', 'atecc608', qr/does not match profile/],
    ['0123A1B2C3D4E5F6AC  ATECC', 'atecc608', qr/does not match profile/],
    ['sn0123A1B2C3D4E5F6AE/CN=sn0123A1B2C3D4E5F6AF', 'atecc608',
     qr/^subject has several CNs/],
    ['sn0123A1B2C3D4E5F6B0/CN=meter-1', 'generic',
     qr/^subject has several CNs/],
    ['m' x 64, 'generic', 'm' x 64],
    ['meter 42', 'generic', 'meter 42'],
    ['meter-42 ', 'generic', qr/is not a valid serial/],
    ['a.b_c:d@e+g=h-i', 'generic', 'a.b_c:d@e+g=h-i'],
    ['meter#42', 'generic', qr/is not a valid serial/],
    ["meter\x{e9}42", 'generic',
     qr/"meter\\xC3\\xA942" is not a valid serial/],
    ["meter\t42", 'generic', qr/"meter\\x0942" is not a valid serial/],
);

for my $i (0 .. $#cn) {
    my ($cn, $profile, $want) = @{ $cn[$i] };
    my $dev = $t->make_device(name => "cn$i", cn => $cn);
    my @args = ('-p', $profile, '-r', "$pki/roots.pem", "$dev.chain.pem");
    (my $shown = $cn) =~ s/[^\x20-\x7e]/?/g;

    if (ref $want) {
        rejected("CN \"$shown\" ($profile)", $want, @args);
    } else {
        accepted("CN \"$shown\" ($profile)", { serial => $want }, @args);
    }
}

###############################################################################
# real Microchip certificates

# a copy of the shared test data (../shared/testdata) is in t/data

my $real = $ENV{DEVICE_AUTH_TESTDATA}
           || DeviceAuth::Test->repo . '/t/data/atecc608';

SKIP: {
    skip "no Microchip certificates: $real/SOURCES.md not found "
         . "(set DEVICE_AUTH_TESTDATA)", 1 unless -f "$real/SOURCES.md";

    # SHA-256 (DER) of every file, as SOURCES.md records it

    my %sha;
    my $file;

    open my $fh, '<', "$real/SOURCES.md" or die $!;
    while (<$fh>) {
        $file = $1 if /^### (\S+\.pem)\s*$/;
        $sha{$file} = $1 if $file && /^- SHA-256 \(DER\): `([0-9a-f]{64})`/;
    }
    close $fh;

    is(scalar(keys %sha), 24, 'SOURCES.md: SHA-256 of 24 certificates');

    for my $f (sort keys %sha) {
        is(DeviceAuth::Test::cert_fingerprint("$real/$f"), $sha{$f},
           "$f: SHA-256 as in SOURCES.md");
    }

    my $r002 = "$real/root-crypto-authentication-root-ca-002.pem";
    my $r001 = "$real/root-atecc-root-ca-001.pem";
    my $both = $t->write_file('microchip-roots.pem',
                              $t->read_file($r002) . $t->read_file($r001));

    # complete chains: device, signer, root (SOURCES.md table)

    my @chains = (
        [ 'device-sn01230390b3d1450c01.pem', 'signer-2c00.pem', $r002,
          '01230390B3D1450C01' ],
        [ 'device-sn0123d26e26e688c901.pem', 'signer-2c10.pem', $r002,
          '0123D26E26E688C901' ],
        [ 'device-sn01232b4e0931d16901.pem', 'signer-2c10.pem', $r002,
          '01232B4E0931D16901' ],
        [ 'device-sn01233baedaaeaa5501.pem', 'signer-2c20.pem', $r002,
          '01233BAEDAAEAA5501' ],
        [ 'device-sn0123aa24bef7983d01.pem', 'signer-2720.pem', $r002,
          '0123AA24BEF7983D01' ],
        [ 'device-012361fd5ebdaa0601-atecc.pem', 'signer-f600.pem', $r002,
          '012361FD5EBDAA0601' ],
        [ 'device-sn01238cb07dcd507001.pem', 'signer-f620.pem', $r002,
          '01238CB07DCD507001' ],
    );

    for my $c (@chains) {
        my ($dev, $signer, $root, $serial) = @$c;

        my $expect = { serial => $serial, signer => $sha{$signer},
                       fingerprint => $sha{$dev} };

        accepted("$dev chain", { %$expect, anchor => $sha{
                     'root-crypto-authentication-root-ca-002.pem'} },
                 '-r', $root, "$real/$dev", "$real/$signer");

        accepted("$dev, signer pinned", { %$expect, anchor => $sha{$signer} },
                 '-r', $root, '-s', "$real/$signer", "$real/$dev");

        accepted("$dev, both Microchip roots pinned", $expect,
                 '-r', $both, "$real/$dev", "$real/$signer");
    }

    # all Root CA 002 signers pinned at once: each device finds its own

    my $signers = $t->write_file('microchip-signers.pem', join '',
        map { $t->read_file("$real/$_") }
        qw(signer-2c00.pem signer-2c10.pem signer-2c20.pem signer-2720.pem
           signer-f600.pem signer-f620.pem));

    for my $c (@chains) {
        accepted("$c->[0], all signers pinned",
                 { serial => $c->[3], signer => $sha{$c->[1]} },
                 '-r', $r002, '-s', $signers, "$real/$c->[0]");
    }

    # MAH1H: Root CA 001 (non-critical basicConstraints, no keyUsage),
    # notAfter 9999; its CN is the part number, not a serial

    my $mah1h = 'device-atecc608a-mah1h.pem';
    my $s218b = 'signer-atecc-1h-218b.pem';

    rejected("$mah1h, profile atecc608",
             qr/^subject CN "ATECC608A-MAH1H" does not match profile atecc608/,
             '-r', $r001, "$real/$mah1h", "$real/$s218b");

    accepted("$mah1h, profile generic",
             { serial => 'ATECC608A-MAH1H', signer => $sha{$s218b},
               fingerprint => $sha{$mah1h},
               anchor => $sha{'root-atecc-root-ca-001.pem'} },
             '-p', 'generic', '-r', $r001, "$real/$mah1h", "$real/$s218b");

    accepted("$mah1h, profile generic, signer pinned",
             { serial => 'ATECC608A-MAH1H', signer => $sha{$s218b} },
             '-p', 'generic', '-r', $r001, '-s', "$real/$s218b",
             "$real/$mah1h");

    # devices whose signer is not available

    for my $dev (qw(device-sn0123a2d268f6d9fa01.pem
                    device-sn0123fe0cf960432d01.pem
                    device-sn0123ee7a14329d3d01.pem
                    device-sn0123bf8c8062ebef01.pem))
    {
        my ($rc, $out) = check('-r', $r002, "$real/$dev");
        is($rc, 1, "$dev without its signer: rejected");
        like($out, qr/^invalid error=20 .*reason=chain does not end in a pinned/,
             "$dev without its signer: unable to get issuer");

        rejected("$dev, all known signers pinned", qr/^signer not pinned/,
                 '-r', $r002, '-s', $signers, "$real/$dev");
    }

    # wrong signer (SOURCES.md negative case)

    ($rc, $out) = check('-r', $r002, "$real/device-sn0123d26e26e688c901.pem",
                        "$real/signer-2c00.pem");
    is($rc, 1, 'wrong signer: rejected');
    like($out, qr/^invalid error=20 /, 'wrong signer: error 20');

    rejected('wrong signer pinned', qr/^signer not pinned/,
             '-r', $r002, '-s', "$real/signer-2c00.pem",
             "$real/device-sn0123d26e26e688c901.pem");

    # Root CA 001 devices are not accepted under Root CA 002, and back

    rejected('Root CA 002 device under Root CA 001', qr/pinned root/,
             '-r', $r001, "$real/device-sn0123d26e26e688c901.pem",
             "$real/signer-2c10.pem");

    # a signer or root is not a device

    rejected('signer presented as a device', qr/is a CA|does not match/,
             '-r', $r002, "$real/signer-2c10.pem");

    # manifest signers are not CAs: refused as roots

    ($rc, $out) = check('-r', "$real/manifest-signer-log-signer-002.pem",
                        "$real/device-sn0123d26e26e688c901.pem");
    is($rc, 2, 'manifest signer as a root: configuration error');
    like($out, qr/is not a CA/, 'manifest signer as a root: not a CA');
}

done_testing();
