#!/usr/bin/env bash
#
# mkmanifest.sh OUTDIR PKI N: a Microchip-style manifest of N devices
# issued by the test PKI's signer1 (t/lib/mkpki.sh), signed by a log signer
# made here, for t/manifest-big.t and docs/performance.md:
#
#   log-signer.pem, log-signer.key   the log signer: self-signed P-256,
#                                    CA:FALSE, with a subject key
#                                    identifier, as Microchip's
#   manifest.json                    N entries, one per line
#   manifest.json.serials            "SERIAL SPKI_SHA256" per entry
#
# Idempotent: does nothing when OUTDIR/.done exists.  Needs
# build/tools/manifest-gen (make tools).

set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 OUTDIR PKI N" >&2
    exit 2
fi

OUT=$1
PKI=$2
N=$3
GEN=$(cd "$(dirname "$0")/../.." && pwd)/build/tools/manifest-gen

if [ -e "$OUT/.done" ]; then
    exit 0
fi

mkdir -p "$OUT"

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$OUT/log-signer.key" -out "$OUT/log-signer.pem" \
    -subj "/O=Device Auth Test Inc/CN=Test Log Signer" -days 3650 \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "subjectKeyIdentifier=hash" >/dev/null 2>&1

"$GEN" -n "$N" --signer-cert "$PKI/signer1.pem" --signer-key "$PKI/signer1.key" \
    --log-cert "$OUT/log-signer.pem" --log-key "$OUT/log-signer.key" \
    -o "$OUT/manifest.json"

chmod -R a+rX "$OUT"
touch "$OUT/.done"
