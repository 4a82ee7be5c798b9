#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark of issue 4 (run by "make bench").
#
# On this host, with the same trivial upstream ("location / { return 200; }")
# and the same device fleet (bench/loadgen, 1% of it revoked in Redis):
#
#   1 stock   Debian nginx, ssl_verify_client on, ssl_verify_depth 2,
#             ssl_client_certificate root+signer, no module loaded
#   2 chain   the module, chain checks only (no device_auth_redis)
#   3 redis   the module + Redis, device_auth_recheck 0
#   4 recheck the module + Redis, device_auth_recheck 10s
#   5 lua     stock mTLS + the same Redis checks in Lua (lua-nginx-module,
#             resty.redis, pooled connection, one pipeline: bench/lua/)
#
# for keepalive and handshake modes, 1 and 2 workers, INTERLEAVED: every
# round runs every cell once (variants A B C D E, the starting variant
# rotated each round), so the machine's drift and other jobs on it spread
# over all variants alike.  Each run is bracketed by snapshots
# (bench/snapshot.pl): nginx worker CPU from /proc, requests from
# stub_status, Redis INFO (CPU, commands, bytes, memory).  Then, unless
# BENCH_EXTRA=0, the extra measurements: throughput vs fleet size,
# 1,000,000 revoked keys vs none, worker memory per idle connection (stock
# vs module) and Redis memory per tracked device.  bench/report.pl makes
# the table, the JSON and the plot.
#
# Environment (defaults; BENCH_QUICK=1 has its own, smaller ones):
#   BENCH_OUT        bench/results/<date>-<time> (bench/results/latest
#                    points to the last one)
#   BENCH_ROUNDS     5      (quick 1)   rounds of the main matrix
#   BENCH_DURATION   3      (quick 1)   measured seconds per run
#   BENCH_WARMUP     0.5    (quick 0.5)
#   BENCH_FLEET      10000  (quick 200) devices
#   BENCH_REVOKED    0.01               fraction of the fleet revoked
#   BENCH_CONC_KA    32     (quick 16)  connections, keepalive mode
#   BENCH_CONC_HS    16     (quick 8)   connections, handshake mode
#   BENCH_MODES      "keepalive handshake"
#   BENCH_WORKERS    "1 2"
#   BENCH_VARIANTS   "1 2 3 4 5"
#   BENCH_TLS        1.3
#   BENCH_EXTRA      1      0: main matrix only
#   BENCH_EXTRA_ROUNDS 3    (quick 1)
#   BENCH_FLEETS     "100 10000 100000"  (quick "100 1000")
#   BENCH_REVOKED_KEYS 1000000           (quick 10000)
#   BENCH_IDLE       10000  (quick 300)  idle connections
#   BENCH_IDLE_HOLD  3      (quick 1)    seconds they are held
#   BENCH_NGINX      /usr/sbin/nginx
#   DEVICE_AUTH_MODULE build/ngx_http_device_auth_module.so
#   BENCH_KEEP=1     keep the temp dir (configs, logs)
#
# Everything runs on free loopback ports under one temp dir; every process
# started here is stopped by its pid on exit.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

QUICK=${BENCH_QUICK:-0}

if [ "$QUICK" = 1 ]; then
    d_rounds=1 d_dur=1 d_warm=0.5 d_fleet=200 d_cka=16 d_chs=8 d_xr=1
    d_fleets="100 1000" d_rkeys=10000 d_idle=300 d_hold=1
else
    d_rounds=5 d_dur=3 d_warm=0.5 d_fleet=10000 d_cka=32 d_chs=16 d_xr=3
    d_fleets="100 10000 100000" d_rkeys=1000000 d_idle=10000 d_hold=3
fi

ROUNDS=${BENCH_ROUNDS:-$d_rounds}
DURATION=${BENCH_DURATION:-$d_dur}
WARMUP=${BENCH_WARMUP:-$d_warm}
FLEET=${BENCH_FLEET:-$d_fleet}
REVOKED=${BENCH_REVOKED:-0.01}
CONC_KA=${BENCH_CONC_KA:-$d_cka}
CONC_HS=${BENCH_CONC_HS:-$d_chs}
MODES=${BENCH_MODES:-keepalive handshake}
WORKERS=${BENCH_WORKERS:-1 2}
VARIANTS=${BENCH_VARIANTS:-1 2 3 4 5}
TLS=${BENCH_TLS:-1.3}
EXTRA=${BENCH_EXTRA:-1}
XROUNDS=${BENCH_EXTRA_ROUNDS:-$d_xr}
FLEETS=${BENCH_FLEETS:-$d_fleets}
RKEYS=${BENCH_REVOKED_KEYS:-$d_rkeys}
IDLE=${BENCH_IDLE:-$d_idle}
HOLD=${BENCH_IDLE_HOLD:-$d_hold}

stamp=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$here/results/$stamp}
STATE=${BENCH_STATE:-$repo/build/bench}    # PKI and fleet cache, kept
LOADGEN=$here/loadgen

declare -A VNAME=(
    [1]="stock"
    [2]="module chain only"
    [3]="module+redis recheck 0"
    [4]="module+redis recheck 10s"
    [5]="lua peer (resty.redis)"
)

t_start=$(date +%s)

. "$here/lib.sh"

# ------------------------------------------------------------- preflight

[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN"
[ -x "$LOADGEN" ] || die "no $LOADGEN: make -C bench"
command -v redis-server >/dev/null || die "redis-server missing (make bench-deps)"
command -v redis-cli >/dev/null || die "redis-cli missing (make bench-deps)"
for v in $VARIANTS; do
    case $v in
        1) ;;
        2|3|4) [ -f "$SO" ] || die "no module at $SO: make" ;;
        5) [ -f "$LUA_MODULES/ngx_http_lua_module.so" ] \
               || die "libnginx-mod-http-lua missing (make bench-deps)"
           [ -f /usr/share/lua/5.1/nginx/redis.lua ] \
               || die "lua-nginx-redis missing (make bench-deps)" ;;
        *) die "unknown variant $v" ;;
    esac
done

mkdir -p "$OUT/runs"
if [ -z "${BENCH_OUT:-}" ]; then
    ln -sfn "$stamp" "$here/results/latest"
fi

bench_setup

# --------------------------------------------------------------- one run

nrun=0
printf 'id\tgroup\tvariant\tmode\tworkers\tround\tfleet\tconc\tinstance\n' \
    > "$OUT/index.tsv"

run_load() {      # group variant mode workers round fleet conc instance redis [loadgen args]
    local group=$1 v=$2 mode=$3 w=$4 round=$5 n=$6 c=$7 inst=$8 rname=$9
    shift 9
    local id
    nrun=$((nrun + 1))
    id=$(printf '%03d-%s-v%s-%s-w%s-r%s-n%s' "$nrun" "$group" "$v" "$mode" \
         "$w" "$round" "$n")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$group" "$v" \
        "$mode" "$w" "$round" "$n" "$c" "$inst" >> "$OUT/index.tsv"

    snapshot "$inst" "$rname" > "$OUT/runs/$id.before.json"
    "$LOADGEN" "${LG_FLEET[@]}" -N "$n" --revoked "$REVOKED" -m "$mode" \
        -c "$c" -d "$DURATION" -w "$WARMUP" -q --label "$id" \
        --json "$OUT/runs/$id.json" "$@" \
        "https://127.0.0.1:${PORT[$inst]}/" \
        || say "bench: loadgen failed for $id"
    snapshot "$inst" "$rname" > "$OUT/runs/$id.after.json"
    perl "$here/report.pl" --line "$OUT/runs/$id.json" \
        "$group v$v ${VNAME[$v]} $mode w$w r$round$([ "$group" = fleet ] \
         && echo " N=$n")" >&2 || true
}

# ---------------------------------------------------------- environment

{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command=${BENCH_COMMAND:-bench/run.sh}"
    echo "quick=$QUICK"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "nginx=$("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')"
    echo "openssl=$(openssl version)"
    echo "redis=$(redis-server --version | sed 's/ sha=.*//')"
    echo "lua_module=$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null)"
    echo "resty_redis=$(dpkg-query -W -f='${Version}' lua-nginx-redis 2>/dev/null)"
    echo "hiredis=$(dpkg-query -W -f='${Version}' libhiredis0.14 2>/dev/null)"
    echo "git=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null)$(git -C "$repo" diff --quiet -- src 2>/dev/null || echo '+src-changes')"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rounds=$ROUNDS"
    echo "duration=$DURATION"
    echo "warmup=$WARMUP"
    echo "fleet=$FLEET"
    echo "revoked=$REVOKED"
    echo "conc_keepalive=$CONC_KA"
    echo "conc_handshake=$CONC_HS"
    echo "tls=$TLS"
    echo "extra_rounds=$XROUNDS"
    echo "idle=$IDLE"
    echo "revoked_keys=$RKEYS"
    echo "signer_id=$SIGNER_ID"
} > "$OUT/env.txt"

# --------------------------------------------------------- main matrix

say "bench: fleet of $FLEET devices ($REVOKED revoked), TLS $TLS, $ROUNDS" \
    "round(s) x ${DURATION}s (+${WARMUP}s warmup), output $OUT"

fleet_files "$FLEET"
MAIN_REVOKED=$FLEET_REVOKED
start_redis main
load_revoked main "$MAIN_REVOKED"

for w in $WORKERS; do
    for v in $VARIANTS; do
        start_nginx "v${v}w$w" "$v" "$w" main
    done
done

varr=($VARIANTS)
nv=${#varr[@]}

for ((r = 1; r <= ROUNDS; r++)); do
    for mode in $MODES; do
        c=$CONC_KA
        [ "$mode" = handshake ] && c=$CONC_HS
        for w in $WORKERS; do
            for ((i = 0; i < nv; i++)); do
                v=${varr[$(( (i + r - 1) % nv ))]}
                rn=main
                [ "$v" = 1 ] || [ "$v" = 2 ] && rn=-
                run_load main "$v" "$mode" "$w" "$r" "$FLEET" "$c" \
                    "v${v}w$w" "$rn"
            done
        done
    done
done

for w in $WORKERS; do
    for v in $VARIANTS; do
        stop_nginx "v${v}w$w"
    done
done

say "bench: main matrix done in $(( $(date +%s) - t_start )) s"

# ---------------------------------------------------------------- extras

if [ "$EXTRA" = 1 ]; then

    # throughput vs fleet size: variant 3, keepalive, 1 worker; each fleet
    # size has its own Redis, prefilled with what the module leaves for
    # every device of the fleet (a sighting with the window as TTL) and
    # with the fleet's revoked devices
    now_ms=$(( $(date +%s) * 1000 ))
    for n in $FLEETS; do
        fleet_files "$n"
        start_redis "fleet$n"
        load_revoked "fleet$n" "$FLEET_REVOKED"
        awk -v now="$now_ms" '{
                printf "ZADD device_auth:{%s}:seen %d 127.0.0.1\n", $1, now
                printf "PEXPIRE device_auth:{%s}:seen 600000\n", $1 }' \
            "$FLEET_SERIALS" \
            | redis-cli -p "${RPORT[fleet$n]}" --pipe >/dev/null
        start_nginx "fleet$n" 3 1 "fleet$n"
    done
    farr=($FLEETS)
    for ((r = 1; r <= XROUNDS; r++)); do
        for ((i = 0; i < ${#farr[@]}; i++)); do
            n=${farr[$(( (i + r - 1) % ${#farr[@]} ))]}
            run_load fleet 3 keepalive 1 "$r" "$n" "$CONC_KA" "fleet$n" \
                "fleet$n"
        done
    done
    for n in $FLEETS; do
        stop_nginx "fleet$n"
        stop_redis "fleet$n"
    done

    # 1,000,000 revoked keys vs none: variant 3, keepalive, 1 worker, two
    # Redis servers that differ only by the synthetic revocations
    start_redis rev0
    start_redis revmany
    load_revoked rev0 "$MAIN_REVOKED"
    load_revoked revmany "$MAIN_REVOKED"
    t0=$(date +%s.%N)
    awk -v n="$RKEYS" 'BEGIN { for (i = 0; i < n; i++)
                                   printf "0123EE%012X\n", i }' \
        > "$tmp/revoked-many.txt"
    load_revoked revmany "$tmp/revoked-many.txt"
    t1=$(date +%s.%N)
    echo "revoked_load_s=$(awk -v a="$t0" -v b="$t1" \
                           'BEGIN { printf "%.1f", b - a }')" >> "$OUT/env.txt"
    rm -f "$tmp/revoked-many.txt"
    start_nginx rev0 3 1 rev0
    start_nginx revmany 3 1 revmany
    for ((r = 1; r <= XROUNDS; r++)); do
        for inst in rev0 revmany; do
            run_load "$inst" 3 keepalive 1 "$r" "$FLEET" "$CONC_KA" \
                "$inst" "$inst"
        done
    done
    stop_nginx rev0
    stop_nginx revmany
    perl "$here/snapshot.pl" --redis "${RPORT[revmany]}" \
        > "$OUT/runs/redis-revmany.json"
    perl "$here/snapshot.pl" --redis "${RPORT[rev0]}" \
        > "$OUT/runs/redis-rev0.json"
    stop_redis rev0
    stop_redis revmany

    # worker memory per idle device connection: IDLE connections held
    # open (loadgen idle mode: handshake, one request, then nothing), 1
    # worker; the module with Redis also gives Redis memory per tracked
    # device (a fresh Redis: only the sightings of this run)
    start_redis idle
    # nginx closes idle keepalive connections ("worker_connections are not
    # enough, reusing connections") once fewer than 1/16 are free
    wc=$((IDLE * 2 + 1024))
    for v in 1 2 4; do
        inst=idle$v
        rn=-
        [ "$v" = 4 ] && rn=idle
        start_nginx "$inst" "$v" 1 idle "$wc"
        # one-time allocations before the baseline (a 16-device fleet,
        # other serials than the idle fleet's)
        "$LOADGEN" "${LG_FLEET[@]}" -N 16 -m keepalive -c 2 -n 200 -w 0 \
            -q "https://127.0.0.1:${PORT[$inst]}/" >/dev/null
        nrun=$((nrun + 1))
        id=$(printf '%03d-idle-v%s' "$nrun" "$v")
        printf '%s\tidle\t%s\tidle\t1\t1\t%s\t%s\t%s\n' "$id" "$v" "$IDLE" \
            "$IDLE" "$inst" >> "$OUT/index.tsv"
        snapshot "$inst" "$rn" > "$OUT/runs/$id.before.json"
        rm -f "$tmp/ready"
        "$LOADGEN" "${LG_FLEET[@]}" -N "$IDLE" -m idle -c "$IDLE" \
            -d "$HOLD" -q --ready-file "$tmp/ready" --label "$id" \
            --json "$OUT/runs/$id.json" \
            "https://127.0.0.1:${PORT[$inst]}/" &
        BG_PID=$!
        for ((i = 0; i < 6000; i++)); do
            [ -e "$tmp/ready" ] && break
            alive "$BG_PID" || break
            sleep 0.1
        done
        sleep 0.5
        snapshot "$inst" "$rn" > "$OUT/runs/$id.hold.json"
        wait "$BG_PID" || say "bench: idle loadgen failed for $id"
        BG_PID=""
        snapshot "$inst" "$rn" > "$OUT/runs/$id.after.json"
        perl "$here/report.pl" --line "$OUT/runs/$id.json" \
            "idle v$v ${VNAME[$v]} $IDLE connections" >&2 || true
        stop_nginx "$inst"
    done
    stop_redis idle
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
echo "elapsed_s=$(( $(date +%s) - t_start ))" >> "$OUT/env.txt"

collect_logs
perl "$here/report.pl" "$OUT"
say "bench: done in $(( $(date +%s) - t_start )) s; results in $OUT"
