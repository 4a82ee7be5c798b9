package DeviceAuth::Manifest;

# Microchip-style manifests for the tests, made with the openssl command
# line: each entry a JWS in the flattened JSON serialization, ES256 (r || s)
# by a log signer, whose payload carries the device certificate in the x5c
# of its first JWK, as in t/data/atecc608/manifest-*.json.  Every part can
# be replaced or spoiled, for the negative cases.
#
#   my $m = DeviceAuth::Manifest->new($t);          # a DeviceAuth::Test
#   my $log = $m->log_signer('log1');               # key, cert, kid, x5t
#   my $e = $m->entry(device => $t->pki_file('dev1'), signer => $log);
#   my $file = $m->write('reel.json', $e, ...);
#
# entry() options:
#   device      base path of a certificate (NAME.pem; the x5c chain is
#               NAME.chain.pem when it exists); x5c => [PEM files] instead
#   signer      the log signer that signs (from log_signer())
#   kid, alg    protected header values (default: the signer's kid, ES256)
#   x5t         "x5t#S256" (default: the signer's; undef: none)
#   protected_extra  { name => value } more protected header fields
#   uid         payload uniqueId (default: the certificate's serial, lower
#               case); header_uid: the unprotected header's (default: uid;
#               undef: no unprotected header)
#   part, time  partNumber, provisioningTimestamp
#   jwk         { x => raw 32 bytes, y => ... } instead of the certificate's
#   x5c_b64     [texts] as the x5c strings, as they are
#   payload_json  the payload text as it is (default: built from the above)
#   payload_b64, protected_b64, signature_b64: these texts as they are
#   (for base64url errors; the signature is still made over the texts)
#   after       sub { my ($entry) = @_; ... } changes the entry once signed
#
# Helpers: b64url($bytes), b64url_decode($text), spki_sha256($pem),
# cert_der($pem), pubkey_xy($pem).

use strict;
use warnings;

use Digest::SHA qw(sha256 sha256_hex);
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX ();


sub new {
    my ($class, $t) = @_;

    my $dir = $t->testdir() . '/manifest';
    mkdir $dir unless -d $dir;

    return bless { t => $t, dir => $dir, n => 0 }, $class;
}


sub dir { $_[0]->{dir} }


# a log signer as Microchip's: self-signed P-256, CA:FALSE, with a subject
# key identifier, whose base64url is the kid

sub log_signer {
    my ($self, $name) = @_;
    my $base = "$self->{dir}/$name";

    _run('openssl', 'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt',
         'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$base.key",
         '-out', "$base.pem", '-subj', "/O=Device Auth Test Inc/CN=$name",
         '-days', '3650', '-addext', 'basicConstraints=critical,CA:FALSE',
         '-addext', 'subjectKeyIdentifier=hash');

    my $text = _run('openssl', 'x509', '-in', "$base.pem", '-noout', '-ext',
                    'subjectKeyIdentifier');
    my ($ski) = $text =~ /\n\s*([0-9A-F:]{59})\s*$/ or die "no SKI: $text";
    $ski =~ s/://g;

    return {
        name => $name,
        cert => "$base.pem",
        key  => "$base.key",
        kid  => b64url(pack('H*', $ski)),
        x5t  => b64url(sha256(cert_der("$base.pem"))),
    };
}


sub entry {
    my ($self, %o) = @_;

    my @x5c = $o{x5c} ? @{ $o{x5c} } : $self->_chain_files($o{device});
    my @der = map { cert_der($_) } @x5c;
    my %jwk = %{ $o{jwk} || {} };
    my ($x, $y) = defined $jwk{x} && defined $jwk{y} ? ()
                  : pubkey_xy($x5c[0]);
    $x = $jwk{x} if defined $jwk{x};
    $y = $jwk{y} if defined $jwk{y};

    my $uid = exists $o{uid} ? $o{uid} : lc _serial($x5c[0]);

    my %payload = (
        version => 1,
        model => 'ATECC608A',
        partNumber => exists $o{part} ? $o{part} : 'ATECC608A-TNGTLS',
        provisioningTimestamp => exists $o{time} ? $o{time}
                                 : '2026-11-02T10:00:00.000Z',
        uniqueId => $uid,
        publicKeySet => { keys => [
            { kid => '0', kty => 'EC', crv => 'P-256', x => b64url($x),
              y => b64url($y),
              x5c => $o{x5c_b64} || [ map { encode_base64($_, '') } @der ] },
            { kid => '1', kty => 'EC', crv => 'P-256', x => b64url($y),
              y => b64url($x) },
        ] },
    );

    my $signer = $o{signer} or die 'entry: signer';

    my %prot = (typ => 'JWT', alg => exists $o{alg} ? $o{alg} : 'ES256',
                kid => exists $o{kid} ? $o{kid} : $signer->{kid});
    my $x5t = exists $o{x5t} ? $o{x5t} : $signer->{x5t};
    $prot{'x5t#S256'} = $x5t if defined $x5t;
    %prot = (%prot, %{ $o{protected_extra} }) if $o{protected_extra};

    my $json = JSON::PP->new->canonical;

    my $payload_b64 = $o{payload_b64}
        || b64url(defined $o{payload_json} ? $o{payload_json}
                                           : $json->encode(\%payload));
    my $prot_b64 = $o{protected_b64} || b64url($json->encode(\%prot));

    my %e = (
        protected => $prot_b64,
        payload => $payload_b64,
        signature => $o{signature_b64}
                     || b64url($self->sign($signer, "$prot_b64.$payload_b64")),
    );

    my $hu = exists $o{header_uid} ? $o{header_uid} : $uid;
    $e{header} = { uniqueId => $hu } if defined $hu;

    $o{after}->(\%e) if $o{after};

    return \%e;
}


# ES256: SHA-256 and ECDSA by openssl, the DER signature made r || s

sub sign {
    my ($self, $signer, $input) = @_;
    my $n = ++$self->{n};
    my $in = "$self->{dir}/sign$n.in";

    $self->{t}->write_file($in, $input);
    _run('openssl', 'dgst', '-sha256', '-sign', $signer->{key}, '-out',
         "$in.sig", $in);

    my $der = $self->{t}->read_file("$in.sig");
    my ($r, $s) = _der_ints($der);

    return _pad32($r) . _pad32($s);
}


# a manifest file: the entries (hashes, or JSON texts) as a JSON array

sub write {
    my ($self, $name, @entries) = @_;
    my $json = JSON::PP->new->canonical->indent->space_after;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";

    $self->{t}->write_file($path, "[\n" . join(",\n", map {
        ref $_ ? $json->encode($_) =~ s/\n$//r : $_ } @entries) . "\n]\n");

    return $path;
}


sub b64url {
    my ($bytes) = @_;
    (my $s = encode_base64($bytes, '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}


sub b64url_decode {
    my ($text) = @_;
    (my $s = $text) =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}


sub cert_der {
    my ($pem) = @_;
    return _run('openssl', 'x509', '-in', $pem, '-outform', 'DER');
}


sub spki_der {
    my ($pem) = @_;
    my $spki = _run('openssl', 'x509', '-in', $pem, '-noout', '-pubkey');
    $spki =~ /-----BEGIN PUBLIC KEY-----\n(.*)-----END PUBLIC KEY-----/s
        or die "no public key in $pem";
    return decode_base64($1);
}


# what the import records: SHA-256 of the DER SubjectPublicKeyInfo

sub spki_sha256 { sha256_hex(spki_der($_[0])) }


# the P-256 point of a certificate: (x, y), 32 bytes each

sub pubkey_xy {
    my ($pem) = @_;
    my $point = substr(spki_der($pem), -65);
    die "not an uncompressed P-256 point" unless substr($point, 0, 1) eq "\x04";
    return (substr($point, 1, 32), substr($point, 33, 32));
}


sub _serial {
    my ($pem) = @_;
    my $s = _run('openssl', 'x509', '-in', $pem, '-noout', '-subject',
                 '-nameopt', 'multiline');
    my ($cn) = $s =~ /commonName\s*=\s*(.*)$/m or die "no CN in $pem";
    $cn =~ s/^sn//;
    $cn =~ s/ ATECC$//;
    return $cn;
}


sub _chain_files {
    my ($self, $base) = @_;
    die 'entry: device or x5c' unless $base;
    my $pem = $base =~ /\.pem$/ ? $base : "$base.pem";
    (my $chain = $pem) =~ s/\.pem$/.chain.pem/;
    return ($pem) unless -f $chain;

    # the chain file holds the device and its CAs: one file each
    my @files;
    my $i = 0;
    for my $block ($self->{t}->read_file($chain) =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/sg) {
        my $f = "$chain.$i.pem";
        $self->{t}->write_file($f, $block);
        push @files, $f;
        $i++;
    }
    return @files;
}


sub _der_ints {
    my ($der) = @_;
    my @b = unpack('C*', $der);
    my $i = 0;

    die 'not a SEQUENCE' unless $b[$i++] == 0x30;
    $i += ($b[$i] & 0x80) ? 1 + ($b[$i] & 0x7f) : 1;

    my @ints;
    for (1, 2) {
        die 'not an INTEGER' unless $b[$i++] == 0x02;
        my $len = $b[$i++];
        push @ints, pack('C*', @b[$i .. $i + $len - 1]);
        $i += $len;
    }
    return @ints;
}


sub _pad32 {
    my ($n) = @_;
    $n =~ s/^\x00+//;
    return ("\x00" x (32 - length $n)) . $n;
}


sub _run {
    my (@cmd) = @_;

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }

    binmode $fh;
    local $/;
    my $out = <$fh>;
    close $fh;
    die "@cmd[0, 1] failed: exit " . ($? >> 8) if $?;

    return defined $out ? $out : '';
}


1;
