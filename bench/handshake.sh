#!/usr/bin/env bash
# bench/handshake.sh: what a device's TLS handshake costs the nginx worker,
# stock vs module, in one run (issue 16; run by "make bench-handshake").
#
#   1. callgrind: nginx in single-process mode under valgrind, only the
#      event loop counted (as bench/profile.sh), HS_COUNT connections of
#      loadgen, each a handshake and one request: instructions per
#      connection for TLS 1.3 full handshakes of new devices, TLS 1.2 full
#      handshakes, TLS 1.3 full handshakes of 2 devices that come again
#      (the module's verified-leaf cache) and TLS 1.3 resumed ones (resume
#      mode, 2 devices: the first connection of each is a full handshake,
#      the report takes them out).
#   2. loadgen handshake mode (TLS 1.3, a new device each connection),
#      1 worker, HS_ROUNDS interleaved rounds of HS_DURATION seconds:
#      handshakes per second and the worker's CPU per handshake (utime +
#      stime from /proc, bench/snapshot.pl), medians.  Two more cells,
#      stock_seen and seen (stock and the module with its defaults), run
#      the same rounds with HS_SEEN_N devices (16) that come again and
#      again: the devices of a fleet reconnecting after a sleep, whose
#      certificates the worker has verified before; HS_SEEN=0 leaves
#      them out.
#
# Variants: stock (1: ssl_verify_client, as bench/run.sh), the module with
# chain checks only (2) and with Redis, default settings (3), and the
# module with "device_auth_tls13_tickets 2" (OpenSSL's number of tickets,
# what the module sent before issue 16) and 0 (no TLS 1.3 resumption),
# and with "device_auth_fast_tickets off" (OpenSSL's provider decoder for
# the ticket's session copy); HS_BASELINE=0 leaves these three out.
#
# Output: bench/results/handshake-<date>-<time>/ (HS_OUT), summary.txt
# printed.  Environment: HS_COUNT (150), HS_ROUNDS (5), HS_DURATION (3),
# HS_CONC (16), HS_SEEN (1), HS_SEEN_N (16), HS_CALLGRIND=0 / HS_THROUGHPUT=0 to skip a part,
# BENCH_FLEET (10000), BENCH_NGINX, DEVICE_AUTH_MODULE, BENCH_KEEP=1.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

TLS=1.3
NHS=${HS_COUNT:-150}
ROUNDS=${HS_ROUNDS:-5}
DUR=${HS_DURATION:-3}
CONC=${HS_CONC:-16}
BASELINE=${HS_BASELINE:-1}
SEEN=${HS_SEEN:-1}
SEEN_N=${HS_SEEN_N:-16}
stamp=$(date +%Y%m%d-%H%M%S)
OUT=${HS_OUT:-$here/results/handshake-$stamp}

. "$here/lib.sh"

callgrind_setup

# name variant extra-directives
CELLS=("stock 1 -" "chain 2 -" "cached 3 -")
[ "$BASELINE" = 1 ] \
    && CELLS+=("tickets2 3 device_auth_tls13_tickets 2;"
               "tickets0 3 device_auth_tls13_tickets 0;"
               "fastoff 3 device_auth_fast_tickets off;")

# throughput only: the same devices again and again (loadgen arguments)
declare -A LGX
if [ "$SEEN" = 1 ]; then
    CELLS+=("stock_seen 1 -" "seen 3 -")
    LGX[stock_seen]="-N $SEEN_N"
    LGX[seen]="-N $SEEN_N"
fi

cell() {          # "name variant directives" -> NAME V EXTRA
    NAME=${1%% *}
    local rest=${1#* }
    V=${rest%% *}
    EXTRA=${rest#* }
    [ "$EXTRA" = - ] && EXTRA=""
    return 0
}

# ---------------------------------------------------------- 1. callgrind

if [ "${HS_CALLGRIND:-1}" = 1 ]; then
    for c in "${CELLS[@]}"; do
        cell "$c"
        [ -n "${LGX[$NAME]:-}" ] && continue
        say "handshake: callgrind, $NAME, TLS 1.3 full"
        MODULE_SRV_EXTRA=$EXTRA cg_run "$NAME-13" "$V" handshake "$NHS" loop
        say "handshake: callgrind, $NAME, TLS 1.2 full"
        MODULE_SRV_EXTRA=$EXTRA cg_run "$NAME-12" "$V" handshake "$NHS" loop \
            --tls 1.2
        say "handshake: callgrind, $NAME, TLS 1.3 full, devices seen before"
        MODULE_SRV_EXTRA=$EXTRA cg_run "$NAME-13s" "$V" handshake "$NHS" loop \
            -N 2
        say "handshake: callgrind, $NAME, TLS 1.3 resumed"
        MODULE_SRV_EXTRA=$EXTRA cg_run "$NAME-13r" "$V" resume "$NHS" loop \
            -N 2
    done
fi

# --------------------------------------------------------- 2. throughput

if [ "${HS_THROUGHPUT:-1}" = 1 ]; then
    for c in "${CELLS[@]}"; do
        cell "$c"
        MODULE_SRV_EXTRA=$EXTRA start_nginx "t$NAME" "$V" 1 main
    done
    declare -A NEXT
    for ((r = 0; r < ROUNDS; r++)); do
        n=${#CELLS[@]}
        for ((k = 0; k < n; k++)); do
            cell "${CELLS[$(((k + r) % n))]}"
            say "handshake: round $((r + 1))/$ROUNDS, $NAME"
            snapshot "t$NAME" - > "$OUT/tp-$NAME-$r.before.json"
            "$LOADGEN" "${LG_FLEET[@]}" -N "$FLEET" --revoked "$REVOKED" \
                -m handshake -c "$CONC" -d "$DUR" -w 0.5 -q \
                --first "${NEXT[$NAME]:-0}" ${LGX[$NAME]:-} \
                --json "$OUT/tp-$NAME-$r.loadgen.json" \
                "https://127.0.0.1:${PORT[t$NAME]}/"
            snapshot "t$NAME" - > "$OUT/tp-$NAME-$r.after.json"
            NEXT[$NAME]=$(perl -MJSON::PP -0777 -ne \
                'print decode_json($_)->{next_device}' \
                "$OUT/tp-$NAME-$r.loadgen.json")
        done
    done
    for c in "${CELLS[@]}"; do
        cell "$c"
        stop_nginx "t$NAME"
    done
fi

names=()
for c in "${CELLS[@]}"; do
    cell "$c"
    names+=("$NAME")
done

perl "$here/handshake-report.pl" "$OUT" "$ROUNDS" "${names[@]}" \
    | tee "$OUT/summary.txt"
