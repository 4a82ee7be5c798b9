#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark of issues 4 and 10 (run by
# "make bench").
#
# On this host, with the same trivial upstream ("location / { return 200; }")
# and the same device fleet (bench/loadgen, 1% of it revoked in Redis):
#
#   1 stock   Debian nginx, ssl_verify_client on, ssl_verify_depth 2,
#             ssl_client_certificate root+signer, no module loaded
#   2 chain   the module, chain checks only (no device_auth_redis)
#   3 cache   the module + Redis, default settings: each worker's device
#             state cache, kept current by Redis' invalidations
#   4 untracked  the module + Redis as a Redis user that may not SUBSCRIBE
#             (ACL): no invalidation link, so the worker reads the facts
#             with one script call per request, as before the cache
#   5 lua     stock mTLS + the same Redis checks in Lua (lua-nginx-module,
#             resty.redis, pooled connection, one pipeline: bench/lua/)
#
# Variants 3, 4 and 5 have a redis-server each.  Every connection presents
# a device its nginx has not seen in this benchmark: each run of an
# instance continues the fleet where its previous run stopped (loadgen
# --first), so a new connection costs variant 3 a cache miss (until the
# fleet wraps around).
#
# for keepalive and handshake modes, 1 and 2 workers, INTERLEAVED: every
# round runs every cell once (variants A B C D E, the starting variant
# rotated each round), so the machine's drift and other jobs on it spread
# over all variants alike.  Each run is bracketed by snapshots
# (bench/snapshot.pl): nginx worker CPU from /proc, requests from
# stub_status, the module's metrics, Redis INFO (CPU, commands, bytes,
# memory).  Then, unless BENCH_EXTRA=0, the extra measurements: the
# revocation latency across 3 edges under load (bench/revprobe), worker
# memory per cached device, throughput vs fleet size, 1,000,000 revoked
# keys vs none, worker memory per idle connection (stock vs module) and
# Redis memory per tracked device.  bench/report.pl makes the table, the
# JSON and the plot.
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
#   BENCH_REVOCATIONS  200  (quick 50)  devices revoked per probe run
#   BENCH_REVOKE_RATE  4000             background requests/s per edge
#                                       during the paced probe run
#   BENCH_REVOKE_CONC  4                background connections per edge
#   BENCH_REVOKE_CLOSED 1               also a probe run under closed-loop
#                                       (saturating) background load
#   BENCH_CACHE_DEVICES 10000 (quick 300)  devices cached for the worker
#                                       memory per cached device
#   BENCH_TLS        1.3
#   BENCH_EXTRA      1      0: main matrix only
#   BENCH_EXTRA_ROUNDS 3    (quick 1)
#   BENCH_FLEETS     "100 10000 100000"  (quick "100 1000")
#   BENCH_REVOKED_KEYS 1000000           (quick 10000)
#   BENCH_IDLE       10000  (quick 300)  idle connections
#   BENCH_IDLE_HOLD  3      (quick 1)    seconds they are held
#   BENCH_NGINX      /usr/sbin/nginx
#   BENCH_PIN        0      1: nginx on the last CPU, loadgen and
#                           redis-server on the others (taskset)
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
    d_revs=50 d_cdev=300
else
    d_rounds=5 d_dur=3 d_warm=0.5 d_fleet=10000 d_cka=32 d_chs=16 d_xr=3
    d_fleets="100 10000 100000" d_rkeys=1000000 d_idle=10000 d_hold=3
    d_revs=200 d_cdev=10000
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
REVS=${BENCH_REVOCATIONS:-$d_revs}
REV_RATE=${BENCH_REVOKE_RATE:-4000}
REV_CONC=${BENCH_REVOKE_CONC:-4}
REV_CLOSED=${BENCH_REVOKE_CLOSED:-1}
CDEV=${BENCH_CACHE_DEVICES:-$d_cdev}

stamp=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$here/results/$stamp}
STATE=${BENCH_STATE:-$repo/build/bench}    # PKI and fleet cache, kept
LOADGEN=$here/loadgen
REVPROBE=$here/revprobe

declare -A VNAME=(
    [1]="stock"
    [2]="module chain only"
    [3]="module+redis cached"
    [4]="module+redis untracked"
    [5]="lua peer (resty.redis)"
)

t_start=$(date +%s)

. "$here/lib.sh"

# ------------------------------------------------------------- preflight

[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN"
[ -x "$LOADGEN" ] || die "no $LOADGEN: make -C bench"
if [ "$EXTRA" = 1 ] && [ ! -x "$REVPROBE" ]; then
    die "no $REVPROBE: make -C bench"
fi
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

# the device each instance's next run starts with (loadgen --first)
declare -A NEXTDEV

run_load() {      # group variant mode workers round fleet conc instance redis [loadgen args]
    local group=$1 v=$2 mode=$3 w=$4 round=$5 n=$6 c=$7 inst=$8 rname=$9
    shift 9
    local id next
    nrun=$((nrun + 1))
    id=$(printf '%03d-%s-v%s-%s-w%s-r%s-n%s' "$nrun" "$group" "$v" "$mode" \
         "$w" "$round" "$n")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$group" "$v" \
        "$mode" "$w" "$round" "$n" "$c" "$inst" >> "$OUT/index.tsv"

    snapshot "$inst" "$rname" > "$OUT/runs/$id.before.json"
    "${PIN_LOAD[@]}" "$LOADGEN" "${LG_FLEET[@]}" -N "$n" \
        --revoked "$REVOKED" -m "$mode" -c "$c" -d "$DURATION" \
        -w "$WARMUP" -q --label "$id" \
        --first "${NEXTDEV[$inst]:-0}" --json "$OUT/runs/$id.json" "$@" \
        "https://127.0.0.1:${PORT[$inst]}/" \
        || say "bench: loadgen failed for $id"
    snapshot "$inst" "$rname" > "$OUT/runs/$id.after.json"
    next=$(sed -n 's/^ *"next_device": \([0-9]*\),$/\1/p' \
           "$OUT/runs/$id.json" 2>/dev/null) || true
    [ -n "$next" ] && NEXTDEV[$inst]=$next
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
    echo "pin=${BENCH_PIN:-0}"
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
    echo "revocations=$REVS"
    echo "revoke_rate=$REV_RATE"
    echo "revoke_conc=$REV_CONC"
    echo "cache_devices=$CDEV"
    echo "signer_id=$SIGNER_ID"
} > "$OUT/env.txt"

# --------------------------------------------------------- main matrix

say "bench: fleet of $FLEET devices ($REVOKED revoked), TLS $TLS, $ROUNDS" \
    "round(s) x ${DURATION}s (+${WARMUP}s warmup), output $OUT"

fleet_files "$FLEET"
MAIN_REVOKED=$FLEET_REVOKED
for v in $VARIANTS; do
    if [ "$v" -ge 3 ]; then
        start_redis "r$v"
        load_revoked "r$v" "$MAIN_REVOKED"
    fi
done

for w in $WORKERS; do
    for v in $VARIANTS; do
        rn=-
        [ "$v" -ge 3 ] && rn=r$v
        start_nginx "v${v}w$w" "$v" "$w" "$rn"
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
                rn=-
                [ "$v" -ge 3 ] && rn=r$v
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
for v in $VARIANTS; do
    if [ "$v" -ge 3 ]; then
        stop_redis "r$v"
    fi
done

say "bench: main matrix done in $(( $(date +%s) - t_start )) s"

# ---------------------------------------------------------------- extras

snapshot_group() {  # id suffix redis-name instance... : one file each
    local id=$1 sfx=$2 rn=$3 inst
    shift 3
    for inst in "$@"; do
        snapshot "$inst" "$rn" > "$OUT/runs/$id.$inst.$sfx.json"
        rn=-    # Redis once
    done
}

if [ "$EXTRA" = 1 ]; then

    # revocation latency: 3 edges (the module, default settings, 1 worker
    # each) sharing one Redis, background load from loadgen on each edge
    # (paced at REV_RATE requests/s, then closed loop), and bench/revprobe
    # revoking REVS devices of a fleet of its own one after the other
    start_redis revoke
    load_revoked revoke "$MAIN_REVOKED"
    edges=(rev1 rev2 rev3)
    urls=()
    for inst in "${edges[@]}"; do
        start_nginx "$inst" 3 1 revoke
        urls+=("https://127.0.0.1:${PORT[$inst]}/")
    done
    # another fleet size, so other serials than the load's
    pfleet=$((REVS * 2 + 1000))
    [ "$pfleet" = "$FLEET" ] && pfleet=$((pfleet + 1))
    pfirst=0
    loads=(paced)
    [ "$REV_CLOSED" = 1 ] && loads+=(closed)
    for load in "${loads[@]}"; do
        nrun=$((nrun + 1))
        id=$(printf '%03d-revoke-%s' "$nrun" "$load")
        printf '%s\trevoke\t3\trevoke-%s\t1\t1\t%s\t%s\t%s\n' "$id" \
            "$load" "$FLEET" "$REV_CONC" "${edges[*]}" >> "$OUT/index.tsv"
        rate=()
        [ "$load" = paced ] && rate=(--rate "$REV_RATE")
        snapshot_group "$id" before revoke "${edges[@]}"
        for inst in "${edges[@]}"; do
            "$LOADGEN" "${LG_FLEET[@]}" -N "$FLEET" --revoked "$REVOKED" \
                -m keepalive -c "$REV_CONC" "${rate[@]}" -d 86400 -w 0 -q \
                --label "$id-$inst" --json "$OUT/runs/$id.load-$inst.json" \
                "https://127.0.0.1:${PORT[$inst]}/" &
            BG_PIDS+=($!)
        done
        # the background load's first handshakes, before the first probe
        sleep 0.5
        "$REVPROBE" --signer-cert "$pki/signer.pem" \
            --signer-key "$pki/signer.key" --fleet-cache "$STATE/fleet" \
            --tls "$TLS" -N "$pfleet" --first "$pfirst" \
            --redis "127.0.0.1:${RPORT[revoke]}" -n "$REVS" -q \
            --json "$OUT/runs/$id.json" "${urls[@]}" \
            || say "bench: revprobe failed for $id"
        pfirst=$((pfirst + REVS))
        for pid in "${BG_PIDS[@]}"; do
            kill -TERM "$pid" 2>/dev/null || true
        done
        for pid in "${BG_PIDS[@]}"; do
            wait "$pid" || say "bench: background loadgen failed for $id"
        done
        BG_PIDS=()
        snapshot_group "$id" after revoke "${edges[@]}"
        perl "$here/report.pl" --revoke "$OUT/runs/$id.json" \
            "revoke $load: 3 edges, $REVS revocations" >&2 || true
    done
    for inst in "${edges[@]}"; do
        stop_nginx "$inst"
    done
    stop_redis revoke

    # worker memory per cached device: one worker, default settings, a
    # Redis of its own.  The heap first grows to what CONC_HS handshakes
    # at a time need (400 handshakes of 16 other devices); then CDEV
    # devices are seen once each (a cache miss each: their facts and
    # sighting kept), then, after an unmeasured pass that counts the
    # places again, the same devices again (cache hits: nothing should
    # grow; the control)
    fleet_files "$CDEV"
    start_redis cache
    load_revoked cache "$FLEET_REVOKED"
    start_nginx cache 3 1 cache
    "$LOADGEN" "${LG_FLEET[@]}" -N 16 -m handshake -c "$CONC_HS" -n 400 \
        -w 0 -q "https://127.0.0.1:${PORT[cache]}/" >/dev/null \
        || say "bench: loadgen failed (cache warm-up)"
    for pass in 1 2; do
        # before the control: the sightings pass 1 wrote come back as
        # invalidations of the places (docs/design.md, "why not NOLOOP"),
        # and each device is counted once more (a read, nothing written)
        [ "$pass" = 2 ] && { "$LOADGEN" "${LG_FLEET[@]}" -N "$CDEV" \
            --revoked "$REVOKED" -m handshake -c "$CONC_HS" -n "$CDEV" -w 0 \
            --first 0 -q "https://127.0.0.1:${PORT[cache]}/" >/dev/null \
            || say "bench: loadgen failed (cache settle)"; }
        nrun=$((nrun + 1))
        id=$(printf '%03d-cache-pass%s' "$nrun" "$pass")
        printf '%s\tcache\t3\tcache\t1\t%s\t%s\t%s\tcache\n' "$id" \
            "$pass" "$CDEV" "$CONC_HS" >> "$OUT/index.tsv"
        snapshot cache cache > "$OUT/runs/$id.before.json"
        "$LOADGEN" "${LG_FLEET[@]}" -N "$CDEV" --revoked "$REVOKED" \
            -m handshake -c "$CONC_HS" -n "$CDEV" -w 0 --first 0 -q \
            --label "$id" --json "$OUT/runs/$id.json" \
            "https://127.0.0.1:${PORT[cache]}/" \
            || say "bench: loadgen failed for $id"
        snapshot cache cache > "$OUT/runs/$id.after.json"
        perl "$here/report.pl" --line "$OUT/runs/$id.json" \
            "cache pass $pass: $CDEV devices" >&2 || true
    done
    stop_nginx cache
    stop_redis cache

    # throughput vs fleet size: variants 3 and 4, keepalive, 1 worker;
    # each fleet size has its own Redis, prefilled with what the module
    # leaves for every device of the fleet (a sighting with the window as
    # TTL) and with the fleet's revoked devices
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
        for v in 3 4; do
            start_nginx "fleet${n}v$v" "$v" 1 "fleet$n"
        done
    done
    farr=($FLEETS)
    for ((r = 1; r <= XROUNDS; r++)); do
        for ((i = 0; i < ${#farr[@]}; i++)); do
            n=${farr[$(( (i + r - 1) % ${#farr[@]} ))]}
            for v in 3 4; do
                run_load fleet "$v" keepalive 1 "$r" "$n" "$CONC_KA" \
                    "fleet${n}v$v" "fleet$n"
            done
        done
    done
    for n in $FLEETS; do
        for v in 3 4; do
            stop_nginx "fleet${n}v$v"
        done
        stop_redis "fleet$n"
    done

    # 1,000,000 revoked keys vs none: variants 3 and 4, keepalive, 1
    # worker, two Redis servers that differ only by the synthetic
    # revocations
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
    for g in rev0 revmany; do
        for v in 3 4; do
            start_nginx "${g}v$v" "$v" 1 "$g"
        done
    done
    for ((r = 1; r <= XROUNDS; r++)); do
        for g in rev0 revmany; do
            for v in 3 4; do
                run_load "$g" "$v" keepalive 1 "$r" "$FLEET" "$CONC_KA" \
                    "${g}v$v" "$g"
            done
        done
    done
    for g in rev0 revmany; do
        for v in 3 4; do
            stop_nginx "${g}v$v"
        done
    done
    perl "$here/snapshot.pl" --redis "${RPORT[revmany]}" \
        > "$OUT/runs/redis-revmany.json"
    perl "$here/snapshot.pl" --redis "${RPORT[rev0]}" \
        > "$OUT/runs/redis-rev0.json"
    stop_redis rev0
    stop_redis revmany

    # worker memory per idle device connection: IDLE connections held
    # open (loadgen idle mode: handshake, one request, then nothing), 1
    # worker; the module with Redis (default settings: each connection's
    # device cached too) also gives Redis memory per tracked device (a
    # fresh Redis: only the sightings and tracked keys of this run)
    start_redis idle
    # nginx closes idle keepalive connections ("worker_connections are not
    # enough, reusing connections") once fewer than 1/16 are free
    wc=$((IDLE * 2 + 1024))
    for v in 1 2 3; do
        inst=idle$v
        rn=-
        [ "$v" = 3 ] && rn=idle
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
