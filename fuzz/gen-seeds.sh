#!/usr/bin/env bash
#
# Seed corpora for the fuzz targets, generated at build time (nothing
# binary is committed):
#
#   fuzz-seeds/fuzz_cert/     the committed Microchip PEMs, their DER forms,
#                             device+signer(+root) chains as DER and PEM,
#                             with and without a session verdict appended,
#                             and a test PKI made here with the openssl CLI
#                             (good devices and one per profile/chain fault)
#   fuzz-seeds/fuzz_address/  one file per line of fuzz/seeds/address.txt
#   fuzz-seeds/fuzz_reply/    one file per line of fuzz/seeds/reply.txt
#   fuzz-seeds/fuzz_topology/ one file per line of fuzz/seeds/topology.txt
#   fuzz-seeds/fuzz_manifest/ Microchip's manifest (t/data/atecc608), each
#                             of its entries, in both JSON serializations,
#                             and registration values
#   fuzz-seeds/pki/           keys, CSRs and CA files of the test PKI
#
# usage: fuzz/gen-seeds.sh OUTDIR

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: gen-seeds.sh OUTDIR}

rm -rf "$out"
mkdir -p "$out/fuzz_cert" "$out/fuzz_address" "$out/fuzz_reply" "$out/pki" \
         "$out/fuzz_manifest" "$out/fuzz_topology"

certs=$out/fuzz_cert
pki=$out/pki

der() { openssl x509 -in "$1" -outform DER; }

# A session verdict as ngx_device_auth_appdata_encode() writes it:
# "DA", version 2, status 0 (ok), signer id, anchor id (SHA-256 of DER),
# policy id and context (zeros here: the fuzzer finds its way from there).
verdict() {
    local signer=$1 anchor=$2
    printf 'DA\002\000'
    der "$signer" | openssl dgst -sha256 -binary
    der "$anchor" | openssl dgst -sha256 -binary
    head -c 64 /dev/zero
}

subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
issuer()  { openssl x509 -in "$1" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//'; }

# the certificate among $2... whose subject is the issuer of $1
find_issuer() {
    local cert=$1 c want
    shift
    want=$(issuer "$cert")
    for c in "$@"; do
        [ "$(subject "$c")" = "$want" ] && [ "$c" != "$cert" ] && { echo "$c"; return; }
    done
    return 0
}

# seeds for one device: alone, with its signer, with signer and root
chain_seeds() {
    local name=$1 dev=$2 signer=$3 root=$4

    cp "$dev" "$certs/$name.pem"
    der "$dev" > "$certs/$name.der"

    [ -n "$signer" ] || return 0

    { der "$dev"; der "$signer"; } > "$certs/$name+signer.der"
    cat "$dev" "$signer" > "$certs/$name+signer.pem"
    { der "$dev"; der "$signer"; verdict "$signer" "$signer"; } \
        > "$certs/$name+signer+verdict.der"

    [ -n "$root" ] || return 0

    { der "$dev"; der "$signer"; der "$root"; } > "$certs/$name+chain.der"
    cat "$dev" "$signer" "$root" > "$certs/$name+chain.pem"
    { der "$dev"; der "$signer"; der "$root"; verdict "$signer" "$root"; } \
        > "$certs/$name+chain+verdict.der"
}


# ---- the real Microchip certificates (fuzz/seeds/cert) -----------------

mc=$here/seeds/cert
signers=("$mc"/signer-*.pem)
roots=("$mc"/root-*.pem)

for f in "$mc"/*.pem; do
    n=$(basename "$f" .pem)
    cp "$f" "$certs/$n.pem"
    der "$f" > "$certs/$n.der"
done

for d in "$mc"/device-*.pem; do
    s=$(find_issuer "$d" "${signers[@]}")
    r=
    [ -z "$s" ] || r=$(find_issuer "$s" "${roots[@]}")
    chain_seeds "mc-$(basename "$d" .pem)" "$d" "$s" "$r"
done


# ---- a test PKI made with the openssl CLI -----------------------------

cat > "$pki/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = dn
[ dn ]
[ bmp ]
distinguished_name = dn
string_mask = MASK:0x800

[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ signer ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ inter ]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
[ dev ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[ dev_san ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:urn:dev:sn0123456789ABCDEF01, otherName:1.3.6.1.4.1.311.20.2.3;UTF8:dev_1@example
[ dev_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
[ dev_kcs ]
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
[ dev_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
[ dev_none ]
subjectKeyIdentifier = hash

[ ca ]
default_ca = fuzzca
[ fuzzca ]
database = $ENV::FUZZ_PKI/index.txt
new_certs_dir = $ENV::FUZZ_PKI
serial = $ENV::FUZZ_PKI/serial
default_md = sha256
policy = anything
unique_subject = no
x509_extensions = dev
[ anything ]
commonName = optional
EOF

export FUZZ_PKI=$pki OPENSSL_CONF=$pki/openssl.cnf
: > "$pki/index.txt"
echo 1000 > "$pki/serial"
cnf=$pki/openssl.cnf
serial=100

key() {                                   # key NAME [ec-curve|rsa|explicit]
    local curve=${2:-prime256v1}
    case $curve in
    explicit)
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
             -pkeyopt ec_param_enc:explicit -out "$pki/$1.key" ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
             -out "$pki/$1.key" 2>/dev/null ;;
    *)   openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" \
             -out "$pki/$1.key" ;;
    esac
}

csr() {                                   # csr NAME SUBJECT [req-section]
    openssl req -new -config "$cnf" -section "${3:-req}" -key "$pki/$1.key" \
        -subj "$2" -utf8 -out "$pki/$1.csr"
}

sign() {                                  # sign NAME ISSUER EXT [md]
    serial=$((serial + 1))
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" \
        -CAkey "$pki/$2.key" -set_serial "$serial" -days 7300 \
        "-${4:-sha256}" -extfile "$cnf" -extensions "$3" \
        -out "$pki/$1.pem" 2>/dev/null
}

key root
openssl req -new -x509 -config "$cnf" -key "$pki/root.key" -sha256 \
    -subj "/O=Fuzz Test/CN=Fuzz Test Root CA" -days 7300 \
    -extensions root -out "$pki/root.pem"

key signer; csr signer "/O=Fuzz Test/CN=Fuzz Test Signer 0001"
sign signer root signer

key inter; csr inter "/O=Fuzz Test/CN=Fuzz Test Intermediate"
sign inter root inter
key signer2; csr signer2 "/O=Fuzz Test/CN=Fuzz Test Signer 0002"
sign signer2 inter signer

key rogue
openssl req -new -x509 -config "$cnf" -key "$pki/rogue.key" -sha256 \
    -subj "/O=Fuzz Test/CN=Fuzz Test Root CA" -days 7300 \
    -extensions root -out "$pki/rogue.pem"

# device NAME SUBJECT [EXT] [KEY] [MD] [REQ-SECTION] [ISSUER]
device() {
    key "$1" "${4:-prime256v1}"
    csr "$1" "$2" "${6:-req}"
    sign "$1" "${7:-signer}" "${3:-dev}" "${5:-sha256}"
}

device dev-atecc      "/O=Fuzz Test/CN=sn0123456789ABCDEF01"
device dev-atecc-low  "/O=Fuzz Test/CN=sn0123abcdef0123ab01"
device dev-tng        "/O=Fuzz Test/CN=0123F00DCAFE000001 ATECC"
device dev-san        "/O=Fuzz Test/CN=sn0123456789ABCDEF02" dev_san
device dev-generic    '/O=Fuzz Test/CN=pump-7.site:42@fleet\/a\+b=c-d'
device dev-generic64  "/CN=$(printf 'g%.0s' {1..64})"
# 64 characters, 65 bytes: openssl refuses a CN of more than 64 characters
device dev-generic65  "/CN=$(printf 'g%.0s' {1..63})ü"
device dev-space      "/CN= leading space"
device dev-utf8       "/CN=sn0123456789ABCDEF0ü"
device dev-escapes    '/O=a,b\+c"d\\e;f<g>=h/CN=sn0123456789ABCDEF03'
device dev-rsa        "/CN=sn0123456789ABCDEF04" dev rsa
device dev-explicit   "/CN=sn0123456789ABCDEF0F" dev explicit
device dev-p384       "/CN=sn0123456789ABCDEF05" dev secp384r1
device dev-sha384     "/CN=sn0123456789ABCDEF06" dev prime256v1 sha384
device dev-isca       "/CN=sn0123456789ABCDEF07" dev_ca
device dev-kcs        "/CN=sn0123456789ABCDEF08" dev_kcs
device dev-server     "/CN=sn0123456789ABCDEF09" dev_server
device dev-noext      "/CN=sn0123456789ABCDEF0A" dev_none
device dev-nocn       "/O=Fuzz Test/OU=no common name"
device dev-2cn        "/CN=sn0123456789ABCDEF0B/CN=sn0123456789ABCDEF0C"
device dev-bmp        "/CN=sn0123456789ABCDEF0D" dev prime256v1 sha256 bmp
device dev-badprefix  "/CN=sn4567456789ABCDEF0E"
device dev-depth2     "/CN=sn0123456789ABCDEF10" dev prime256v1 sha256 req signer2
device dev-rogue      "/CN=sn0123456789ABCDEF11" dev prime256v1 sha256 req rogue

# outside the validity period: "openssl ca" takes explicit dates
for v in expired:20200101000000Z:20210101000000Z \
         notyet:20990101000000Z:20991231000000Z; do
    IFS=: read -r n start end <<< "$v"
    key "dev-$n"; csr "dev-$n" "/CN=sn0123456789ABCDEF1${#n}"
    openssl ca -batch -notext -preserveDN -config "$cnf" \
        -cert "$pki/signer.pem" -keyfile "$pki/signer.key" \
        -startdate "$start" -enddate "$end" -in "$pki/dev-$n.csr" \
        -out "$pki/dev-$n.pem" 2>/dev/null
done

for d in "$pki"/dev-*.pem; do
    n=$(basename "$d" .pem)
    case $n in
    dev-depth2) s=signer2 ;;
    dev-rogue)  s=rogue ;;
    *)          s=signer ;;
    esac
    chain_seeds "test-$n" "$d" "$pki/$s.pem" "$pki/root.pem"
done

# longer and odd chains
{ der "$pki/dev-depth2.pem"; der "$pki/signer2.pem"; der "$pki/inter.pem"; \
  der "$pki/root.pem"; } > "$certs/test-depth2+full.der"
cat "$pki/dev-depth2.pem" "$pki/signer2.pem" "$pki/inter.pem" \
    "$pki/root.pem" > "$certs/test-depth2+full.pem"
{ der "$pki/dev-atecc.pem"; for i in 1 2 3 4 5; do der "$pki/signer.pem"; done; \
  der "$pki/root.pem"; } > "$certs/test-too-many.der"
{ der "$pki/dev-atecc.pem"; der "$pki/root.pem"; } > "$certs/test-no-signer.der"
{ der "$pki/dev-atecc.pem"; der "$pki/dev-generic.pem"; } \
    > "$certs/test-leaf-as-issuer.der"
for n in root signer inter rogue; do
    cp "$pki/$n.pem" "$certs/test-$n.pem"
    der "$pki/$n.pem" > "$certs/test-$n.der"
done
cat "$pki/root.pem" "$pki/signer.pem" > "$certs/test-root+signer.pem"

# PEM shapes the bundle reader must refuse or skip
{ echo "comment before the block"; cat "$pki/dev-atecc.pem"; \
  echo "trailing text"; } > "$certs/pem-text-around.pem"
cp "$pki/dev-atecc.key" "$certs/pem-private-key.pem"
{ cat "$pki/dev-atecc.pem"; cat "$pki/dev-atecc.key"; } > "$certs/pem-cert+key.pem"
sed 's/CERTIFICATE/TRUSTED CERTIFICATE/' "$pki/dev-atecc.pem" \
    > "$certs/pem-trusted.pem"
sed 's/CERTIFICATE/X509 CERTIFICATE/' "$pki/dev-atecc.pem" \
    > "$certs/pem-x509-old.pem"
sed '3d' "$pki/dev-atecc.pem" > "$certs/pem-truncated.pem"
printf -- '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' \
    > "$certs/pem-empty.pem"


# ---- device_auth_redis arguments: one line each ------------------------

i=0
while IFS= read -r line; do
    case $line in '#'*) continue ;; esac
    i=$((i + 1))
    # arguments are separated by spaces in the file, by '\n' in the input
    printf '%s' "$line" | tr ' ' '\n' > "$out/fuzz_address/$(printf 'line-%03d' "$i")"
done < "$here/seeds/address.txt"


# ---- Redis replies: one line each --------------------------------------

perl "$here/seeds/reply2bin.pl" "$here/seeds/reply.txt" "$out/fuzz_reply"
perl "$here/seeds/reply2bin.pl" "$here/seeds/topology.txt" \
    "$out/fuzz_topology"

# fuzz_resp: the wire seeds of fuzz_reply behind a byte that cuts them into
# pieces, and commands for the encoder ("E", buffer size, pieces)
mkdir -p "$out/fuzz_resp"
for f in "$out"/fuzz_reply/*; do
    case $(head -c 1 "$f") in
    '*'|'$'|':'|'+'|'-')
        { printf '\003'; cat "$f"; } > "$out/fuzz_resp/$(basename "$f")" ;;
    esac
done
printf 'E\377\007EVALSHA\0410123456789abcdef0123456789abcdef01234567\0017' \
    > "$out/fuzz_resp/evalsha"
printf 'E\030\007EVALSHA\001x' > "$out/fuzz_resp/evalsha-short-buffer"
printf 'E\000' > "$out/fuzz_resp/empty"

# ---- manifests: Microchip's, its entries, registration values ----------

mf=$out/fuzz_manifest
cp "$here/../t/data/atecc608/manifest-trustandgo-atecc608a-mah4i.json" \
   "$mf/mchp-manifest.json"

perl -MJSON::PP -e '
    my ($in, $dir) = @ARGV;
    open my $fh, "<", $in or die "$in: $!";
    my $m = decode_json(do { local $/; <$fh> });
    my $j = JSON::PP->new->canonical;
    my $i = 0;
    for my $e (@$m) {
        $i++;
        my %w = ("entry-$i.json" => $e,
                 "entry-$i-general.json" => { payload => $e->{payload},
                     signatures => [ { map { $_ => $e->{$_} }
                                       qw(protected header signature) } ] },
                 "entry-$i-unsigned.json" => { %$e, signature => "" },
                 "manifest-entry-$i.json" => [ $e ]);
        for my $f (keys %w) {
            open my $o, ">", "$dir/$f" or die "$dir/$f: $!";
            print $o $j->encode($w{$f});
            close $o;
        }
    }' "$mf/mchp-manifest.json" "$mf"

printf '[]' > "$mf/empty-array.json"
printf '[{}]' > "$mf/empty-entry.json"
printf 'manifest=%064d part=ATECC608A-MAH4I provisioned=2020-06-09T22:49:52.470Z signer=%064d spki_sha256=%064d' \
    0 0 0 > "$mf/registration-value"
printf 'batch-2026-11' > "$mf/registration-by-hand"

echo "fuzz seeds in $out: $(ls "$certs" | wc -l) cert, " \
     "$(ls "$out/fuzz_address" | wc -l) address, " \
     "$(ls "$out/fuzz_reply" | wc -l) reply, " \
     "$(ls "$out/fuzz_resp" | wc -l) resp, " \
     "$(ls "$out/fuzz_topology" | wc -l) topology, " \
     "$(ls "$mf" | wc -l) manifest"
