#!/usr/bin/env bash
#
# mkpki.sh OUTDIR: the test PKI of the suite (OpenSSL 3.0 command line).
#
# Idempotent: does nothing when OUTDIR/.done exists.  Every certificate is
# NAME.pem with its key NAME.key (EC P-256 unless said otherwise); every
# device also gets NAME.chain.pem, the device followed by the CAs it sends
# (its signer, or inter2 + inter1 for dev_deep).  dev_rogue.fullchain.pem
# and dev1.fullchain.pem add the root; dev1.toolong.pem sends 4 certificates.
#
#   root           company root CA (self-signed, CA:TRUE critical)
#   root2          another company's root, never pinned
#   signer1/2      CA:TRUE pathlen:0, issued by root; pinned in signers.pem
#   signer3        issued by root, NOT in signers.pem
#   rogue_signer   issued by root2
#   inter1, inter2 root -> inter1 -> inter2 -> dev_deep (one level too deep)
#
#   dev1, dev2     ATECC608A profile, signer1
#   dev3           signer2
#   dev_noexpiry   signer1, notBefore UTCTime, notAfter 99991231235959Z,
#                  SAN dirName serialNumber=eui48_... (as real Trust&GO parts)
#   dev_tng        CN "<18 hex> ATECC" (older Trust&GO form, lower-case hex)
#   dev_unpinned_signer  signer3
#   dev_rogue      rogue_signer (root2 chain)
#   dev_expired, dev_future   outside their validity now
#   dev_rsa        RSA-2048 key        dev_p384    P-384 key
#   dev_sha384     ecdsa-with-SHA384   dev_badcn   CN "device-42"
#   dev_inject     CN with CR LF and a header line
#   dev_ca         CA:TRUE device      dev_deep    root->inter1->inter2->dev
#   dev_generic    CN "meter-0042", for profile generic
#
#   server         TLS server certificate, CN localhost, SAN localhost and
#                  127.0.0.1 (self-signed)
#
#   roots.pem (root), signers.pem (signer1+signer2), roots_both.pem
#   (root+root2); bad files for nginx -t: notpem.txt, key-only.pem,
#   leaf-as-root.pem (dev1, not a CA), rogue-signer-bundle.pem
#   (rogue_signer, does not chain to root).
#
# Each device's serial (the 18 hex digits of its CN, upper-cased) is in
# NAME.serial; serials.txt lists "NAME SERIAL" for all of them.

set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

OUT=$1

if [ -e "$OUT/.done" ]; then
    exit 0
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CA="$OUT/ca"

rm -rf "$CA"
mkdir -p "$CA/new"
: > "$CA/index.txt"

cd "$OUT"

# dates: fixed, so that the PKI does not depend on the day it was made

CA_START=20200101000000Z
CA_END=20491231235959Z
DEV_START=20240101000000Z
DEV_END=20441231235959Z

O="/O=Device Auth Test Inc"

cat > "$CA/openssl.cnf" <<EOF
[ ca ]
default_ca = test_ca

[ test_ca ]
dir             = $CA
database        = $CA/index.txt
new_certs_dir   = $CA/new
serial          = $CA/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
copy_extensions = none
email_in_dn     = no
preserve        = yes
default_days    = 3650

[ policy_any ]
organizationName = optional
commonName       = optional

[ req ]
distinguished_name = req_dn
string_mask        = utf8only
prompt             = no

[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_signer ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_inter ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_device ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyAgreement
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# SAN dirName serialNumber=eui48_0004A3112233 as Trust&GO parts encode it:
# a PrintableString holding '_' (not in its alphabet, so raw DER here)
[ v3_device_san ]
subjectAltName         = DER:30:21:a4:1f:30:1d:31:1b:30:19:06:03:55:04:05:13:12:65:75:69:34:38:5f:30:30:30:34:41:33:31:31:32:32:33:33
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyAgreement
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_device_rsa ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_device_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, digitalSignature, keyAgreement, keyCertSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, DNS:a.example, DNS:b.example, IP:127.0.0.1
EOF

export OPENSSL_CONF="$CA/openssl.cnf"

key() {   # key NAME [ec-curve | rsa]
    local name=$1 type=${2:-P-256}

    if [ "$type" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out "$name.key" 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$type" \
            -pkeyopt ec_param_enc:named_curve -out "$name.key"
    fi
}

# issue NAME ISSUER SUBJECT EXTENSIONS START END [MD]
issue() {
    local name=$1 issuer=$2 subj=$3 ext=$4 start=$5 end=$6 md=${7:-sha256}
    local selfsign=()

    openssl req -new -key "$name.key" -subj "$subj" -out "$CA/$name.csr"

    if [ "$issuer" = self ]; then
        selfsign=(-selfsign -keyfile "$name.key")
    else
        selfsign=(-cert "$issuer.pem" -keyfile "$issuer.key")
    fi

    openssl ca -batch -notext -rand_serial -preserveDN -utf8 \
        -config "$CA/openssl.cnf" "${selfsign[@]}" \
        -in "$CA/$name.csr" -subj "$subj" -extensions "$ext" \
        -startdate "$start" -enddate "$end" -md "$md" \
        -out "$name.pem" 2>"$CA/$name.log" \
        || { cat "$CA/$name.log" >&2; exit 1; }
}

ca_cert() {   # ca_cert NAME ISSUER CN EXT
    key "$1"
    issue "$1" "$2" "$O/CN=$3" "$4" "$CA_START" "$CA_END"
}

# device NAME ISSUER CN [EXT [KEYTYPE [START END [MD]]]]
device() {
    local name=$1 issuer=$2 cn=$3 ext=${4:-v3_device} ktype=${5:-P-256}
    local start=${6:-$DEV_START} end=${7:-$DEV_END} md=${8:-sha256}

    key "$name" "$ktype"
    issue "$name" "$issuer" "$O/CN=$cn" "$ext" "$start" "$end" "$md"
}

chain() {     # chain NAME CA...
    local name=$1
    shift
    cat "$name.pem" > "$name.chain.pem"
    for c in "$@"; do
        cat "$c.pem" >> "$name.chain.pem"
    done
}

# CAs

ca_cert root self "Device Auth Test Root CA" v3_root
ca_cert root2 self "Other Company Root CA" v3_root
ca_cert signer1 root "Device Auth Test Signer 1" v3_signer
ca_cert signer2 root "Device Auth Test Signer 2" v3_signer
ca_cert signer3 root "Device Auth Test Signer 3 (not pinned)" v3_signer
ca_cert rogue_signer root2 "Rogue Signer" v3_signer
ca_cert inter1 root "Device Auth Test Intermediate 1" v3_inter
ca_cert inter2 inter1 "Device Auth Test Intermediate 2" v3_signer

# devices

SERIAL_DEV1=0123A1B2C3D4E5F601
SERIAL_DEV2=0123A1B2C3D4E5F602
SERIAL_DEV3=0123A1B2C3D4E5F603

device dev1 signer1 "sn$SERIAL_DEV1"
device dev2 signer1 "sn$SERIAL_DEV2"
device dev3 signer2 "sn$SERIAL_DEV3"
device dev_noexpiry signer1 sn0123B0B1B2B3B4B501 v3_device_san P-256 \
    200101000000Z 99991231235959Z
device dev_tng signer1 "0123c0c1c2c3c4c501 ATECC"
device dev_unpinned_signer signer3 sn0123D0D1D2D3D4D501
device dev_rogue rogue_signer sn0123E0E1E2E3E4E501
device dev_expired signer1 sn0123E1E1E1E1E1E101 v3_device P-256 \
    20200101000000Z 20210101000000Z
device dev_future signer1 sn0123E2E2E2E2E2E201 v3_device P-256 \
    20900101000000Z 20910101000000Z
device dev_rsa signer1 sn0123F1F1F1F1F1F101 v3_device_rsa rsa
device dev_p384 signer1 sn0123F2F2F2F2F2F201 v3_device P-384
device dev_sha384 signer1 sn0123F3F3F3F3F3F301 v3_device P-256 \
    "$DEV_START" "$DEV_END" sha384
device dev_badcn signer1 device-42
device dev_inject signer1 $'sn0123A1B2C3D4E5F6A7\r\nX-Injected: 1'
device dev_ca signer1 sn0123F4F4F4F4F4F401 v3_device_ca
device dev_deep inter2 sn0123F5F5F5F5F5F501
device dev_generic signer1 meter-0042

for d in dev1 dev2 dev_noexpiry dev_tng dev_expired dev_future dev_rsa \
         dev_p384 dev_sha384 dev_badcn dev_inject dev_ca dev_generic
do
    chain "$d" signer1
done

chain dev3 signer2
chain dev_unpinned_signer signer3
chain dev_rogue rogue_signer
cat dev_rogue.chain.pem root2.pem > dev_rogue.fullchain.pem
cat dev1.chain.pem root.pem > dev1.fullchain.pem
cat dev1.chain.pem root.pem root2.pem > dev1.toolong.pem
chain dev_deep inter2 inter1

# serials as the atecc608 profile computes them

: > serials.txt
for d in dev1 dev2 dev3 dev_noexpiry dev_tng dev_unpinned_signer dev_rogue \
         dev_expired dev_future dev_rsa dev_p384 dev_sha384 dev_ca dev_deep
do
    cn=$(openssl x509 -in "$d.pem" -noout -subject -nameopt multiline \
         | sed -n 's/^ *commonName *= *//p')
    s=${cn#sn}
    s=${s% ATECC}
    s=${s^^}
    echo "$s" > "$d.serial"
    echo "$d $s" >> serials.txt
done

echo meter-0042 > dev_generic.serial
echo "dev_generic meter-0042" >> serials.txt

# TLS server certificate

key server
issue server self "/CN=localhost" v3_server "$CA_START" "$CA_END"

# bundles

cat root.pem > roots.pem
cat signer1.pem signer2.pem > signers.pem
cat root.pem root2.pem > roots_both.pem
cat signer1.pem signer2.pem signer3.pem > signers_all.pem

# bad files for nginx -t

echo "this is not a PEM file" > notpem.txt
cp dev1.key key-only.pem
cp dev1.pem leaf-as-root.pem
cp rogue_signer.pem rogue-signer-bundle.pem
cat root.pem dev1.key > cert-and-key.pem

# sanity: what must verify does, with the openssl command line

openssl verify -CAfile roots.pem -untrusted signer1.pem dev1.pem >/dev/null
openssl verify -CAfile roots.pem -untrusted signer1.pem dev_noexpiry.pem \
    >/dev/null
openssl verify -CAfile roots.pem -untrusted inter1.pem -untrusted inter2.pem \
    dev_deep.pem >/dev/null

chmod -R a+rX "$OUT"
touch "$OUT/.done"
