#!/usr/bin/env bash
# bench/profile.sh: where the CPU time goes (run by "make bench-profile").
#
#   1. perf: cpu-clock samples (no hardware counters needed) of the nginx
#      worker while bench/loadgen drives the module with Redis, default
#      settings (variant 3 of bench/run.sh: the device state cache),
#      keepalive and handshake modes, and of the worker and redis-server
#      while it drives the untracked module (variant 4: one script call
#      per request); flat profiles by object (dso) and by symbol.
#   2. callgrind: nginx in single-process mode (master_process off) under
#      valgrind, a fixed number of requests; only the event loop is
#      counted (--toggle-collect=ngx_process_events_and_timers).  Then a
#      second run counts only what runs inside the module's entry points
#      (header strip, rewrite-phase handler, Redis and subscriber
#      read/write handlers, TLS verify callback), the resumed request
#      excluded, which gives the module's share in instructions.
#   3. redis-benchmark: Redis CPU per call of the module's script (each of
#      its operations) and of the commands the Lua peer sends.
#   4. perf stat tracepoints: syscalls of the nginx worker per request,
#      stock, module (cached and untracked), Lua peer.
#
# Output: bench/results/profile-<date>-<time>/ (PROFILE_OUT), summary.txt
# printed.  Environment: PROFILE_DURATION (8 s of samples), PROFILE_REQUESTS
# (20000 keepalive requests under callgrind), PROFILE_HANDSHAKES (150),
# BENCH_FLEET (10000), BENCH_NGINX, DEVICE_AUTH_MODULE, BENCH_KEEP=1.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

STATE=${BENCH_STATE:-$repo/build/bench}
LOADGEN=$here/loadgen
TLS=${BENCH_TLS:-1.3}
REVOKED=${BENCH_REVOKED:-0.01}
FLEET=${BENCH_FLEET:-10000}
DUR=${PROFILE_DURATION:-8}
NREQ=${PROFILE_REQUESTS:-20000}
NHS=${PROFILE_HANDSHAKES:-150}
stamp=$(date +%Y%m%d-%H%M%S)
OUT=${PROFILE_OUT:-$here/results/profile-$stamp}

. "$here/lib.sh"

declare -A VNAME_SHORT=([1]=stock [3]="module+redis cached"
                        [4]="module+redis untracked" [5]="lua peer")

command -v perf >/dev/null || die "perf missing (apt-get install linux-perf)"
command -v valgrind >/dev/null || die "valgrind missing"
[ -f "$SO" ] || die "no module at $SO: make"
[ -x "$LOADGEN" ] || die "no $LOADGEN: make -C bench"

mkdir -p "$OUT"
bench_setup
fleet_files "$FLEET"
start_redis main
load_revoked main "$FLEET_REVOKED"
redis_pid=$(redis-cli -p "${RPORT[main]}" INFO server \
            | awk -F: '/^process_id/ { print $2 }' | tr -d '\r')

# -------------------------------------------------------------- 1. perf

perf_run() {      # name variant mode conc
    local name=$1 v=$2 mode=$3 c=$4 worker
    start_nginx "p$name" "$v" 1 main
    worker=$(ps --ppid "${MPID[p$name]}" -o pid= | head -1 | tr -d ' ')
    "$LOADGEN" "${LG_FLEET[@]}" -N "$FLEET" --revoked "$REVOKED" -m "$mode" \
        -c "$c" -d $((DUR + 2)) -w 1 -q --json "$OUT/perf-$name.loadgen.json" \
        "https://127.0.0.1:${PORT[p$name]}/" &
    BG_PID=$!
    sleep 1.5
    perf record -q -e cpu-clock -F 2999 -p "$worker" \
        -o "$OUT/perf-$name.data" -- sleep "$DUR" >/dev/null 2>&1 &
    local p1=$!
    local p2=""
    if [ "$v" = 4 ]; then
        perf record -q -e cpu-clock -F 2999 -p "$redis_pid" \
            -o "$OUT/perf-$name-redis.data" -- sleep "$DUR" \
            >/dev/null 2>&1 &
        p2=$!
    fi
    wait $p1
    [ -n "$p2" ] && wait "$p2"
    wait "$BG_PID" || true
    BG_PID=""
    stop_nginx "p$name"
    for f in "$OUT/perf-$name.data" "$OUT/perf-$name-redis.data"; do
        [ -f "$f" ] || continue
        perf report -i "$f" --no-children --sort dso --stdio 2>/dev/null \
            | grep -v -e '^#' -e '^$' > "${f%.data}.dso.txt" || true
        perf report -i "$f" --no-children --sort dso,sym --stdio \
            2>/dev/null | grep -v -e '^#' -e '^$' > "${f%.data}.sym.txt" \
            || true
        rm -f "$f"
    done
}

say "profile: perf, module+redis cached, keepalive"
perf_run ka 3 keepalive 32
say "profile: perf, module+redis untracked, keepalive"
perf_run ka4 4 keepalive 32
say "profile: perf, module+redis cached, handshake"
perf_run hs 3 handshake 16

# --------------------------------------------------------- 2. callgrind

# module entry points; a toggle nested inside another flips collection
# off, so the resumed request (ngx_http_device_auth_wake) is excluded
# while the module's own re-entry into its phase handler is counted
MODULE_TOGGLES=(
    --toggle-collect=ngx_http_device_auth_strip_handler
    --toggle-collect=ngx_http_device_auth_handler
    --toggle-collect=ngx_http_device_auth_redis_read_handler
    --toggle-collect=ngx_http_device_auth_redis_write_handler
    --toggle-collect=ngx_http_device_auth_subscriber_read_handler
    --toggle-collect=ngx_http_device_auth_subscriber_write_handler
    --toggle-collect=ngx_http_device_auth_wake
    --toggle-collect=ngx_http_device_auth_verify_cert
)

cg_run() {        # name variant mode count what(loop|module) [loadgen args]
    local name=$1 v=$2 mode=$3 n=$4 what=$5 d port i pid
    shift 5
    d=$tmp/cg-$name-$what
    port=$(free_port)
    mkdir -p "$d/tmp"
    local main="" http="" srv
    srv="ssl_verify_client on; ssl_verify_depth 2;
        ssl_client_certificate $pki/root-signer.pem;"
    if [ "$v" != 1 ]; then
        main="load_module $SO;"
        srv="device_auth_certificate $pki/root.pem; device_auth on;"
        # valgrind slows the worker ~50x: a reply may wait in the socket
        # longer than the default 200 ms lookup timeout
        case $v in
        3)  http="device_auth_redis 127.0.0.1:${RPORT[main]};
    device_auth_redis_timeout 20s;" ;;
        4)  http="device_auth_redis 127.0.0.1:${RPORT[main]}
        user=$UNTRACKED_USER password=$UNTRACKED_PASSWORD;
    device_auth_redis_timeout 20s;" ;;
        esac
    fi
    cat > "$d/nginx.conf" <<EOF
$main
master_process off;
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
$(temp_paths "$d")
    $http
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $pki/server.pem;
        ssl_certificate_key $pki/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        $srv
        location / { return 200; }
    }
}
EOF
    local toggles=(--toggle-collect=ngx_process_events_and_timers)
    [ "$what" = module ] && toggles=("${MODULE_TOGGLES[@]}")
    valgrind --tool=callgrind --collect-atstart=no "${toggles[@]}" \
        --callgrind-out-file="$OUT/callgrind-$name-$what.out" \
        "$NGINX_BIN" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
        > "$d/valgrind.log" 2>&1 &
    pid=$!
    BG_PID=$pid
    for ((i = 0; i < 300; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    sleep 1     # the Redis connections and SCRIPT LOAD
    "$LOADGEN" "${LG_FLEET[@]}" -N "$FLEET" --revoked "$REVOKED" -m "$mode" \
        -c 2 -n "$n" -w 0 -t 60000 -q "$@" \
        --json "$OUT/callgrind-$name-$what.loadgen.json" \
        "https://127.0.0.1:$port/" || say "profile: loadgen failed ($name)"
    # nginx without a master checks for a signal only between event loop
    # iterations: a QUIT that lands just before epoll_wait waits for the
    # next event, which never comes (slow under valgrind); send it again
    # after 10 s, time enough for callgrind to write its output
    while alive "$pid"; do
        kill -QUIT "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.2
        done
    done
    wait "$pid" || true
    BG_PID=""
}

# each nginx here starts with an empty cache: in handshake mode every
# device is new to it (a miss, one round trip); in keepalive mode one
# connection in 1000 requests is
say "profile: callgrind, keepalive, $NREQ requests"
cg_run ka-stock 1 keepalive "$NREQ" loop
cg_run ka 3 keepalive "$NREQ" loop
cg_run ka 3 keepalive "$NREQ" module
cg_run ka4 4 keepalive "$NREQ" loop
cg_run ka4 4 keepalive "$NREQ" module
say "profile: callgrind, handshake, $NHS handshakes"
cg_run hs 3 handshake "$NHS" loop
cg_run hs 3 handshake "$NHS" module
cg_run hs-stock 1 handshake "$NHS" loop

# ------------------------------------------- 3. Redis CPU per command

# redis-benchmark against a private redis-server: the module's script (as
# the module sends it: 4 keys, 8 args) for each of its operations (f:
# the facts, s: the sighting, fs: both, e: an event's rate limit), and the
# plain commands the Lua peer pipelines; Redis CPU per call from INFO
# used_cpu_*, pipelined 16 deep like a busy edge's batches
say "profile: redis-benchmark"
start_redis rb
rbp=${RPORT[rb]}
sha=$(redis-cli -p "$rbp" SCRIPT LOAD "$(cat "$repo/src/ngx_http_device_auth_script.lua")")
sha_ret=$(redis-cli -p "$rbp" SCRIPT LOAD "return 1")
sha_time=$(redis-cli -p "$rbp" SCRIPT LOAD "redis.call('TIME') return 1")
rcpu() {
    redis-cli -p "$rbp" INFO cpu \
        | awk -F: '/used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'
}
P=device_auth:
S=0123AB__rand_int__
SG=$SIGNER_ID
KEYS4=("${P}{$S}:revoked" "${P}{$S}:registered" "${P}{$S}:seen"
       "${P}{$S}:evrl")
# ARGV after the serial and the operation: place, window, limit, action,
# event rate, event type
ARGS6=(127.0.0.1 600000 3 log 60000 "")
rb() {            # label command...: median of 3 runs of 100000 calls
    local label=$1 c0 c1 n=100000 i us=()
    shift
    for i in 1 2 3; do
        c0=$(rcpu)
        redis-benchmark -p "$rbp" -n $n -r 100000 -P 16 -c 8 -q "$@" \
            > "$tmp/rb.txt" 2>&1 || true
        c1=$(rcpu)
        # a call Redis refuses costs nothing: never report it as a number
        if grep -q 'Error from server' "$tmp/rb.txt"; then
            printf '%-48s FAILED: %s\n' "$label" \
                "$(grep -o -m1 'Error from server[^.]*' "$tmp/rb.txt")"
            return
        fi
        us+=("$(awk -v a="$c0" -v b="$c1" -v n=$n \
                'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')")
    done
    printf '%-48s %8.2f us of Redis CPU per call (runs: %s)\n' "$label" \
        "$(printf '%s\n' "${us[@]}" | sort -n | sed -n 2p)" "${us[*]}"
}
redis-cli -p "$rbp" SET "${P}{0123CC000000000001}:revoked" stolen >/dev/null
{
    echo "Redis CPU per call (redis-benchmark, -P 16 -c 8, 100000 serials," \
         "median of 3 runs of 100000 calls)"
    rb "EVALSHA fs: facts + sighting, random serials" EVALSHA "$sha" 4 \
        "${KEYS4[@]}" "$S" fs "${ARGS6[@]}"
    rb "EVALSHA fs: facts + place seen again" EVALSHA "$sha" 4 \
        "${KEYS4[@]/__rand_int__/000000000002}" 0123AB000000000002 fs \
        "${ARGS6[@]}"
    rb "EVALSHA f: facts (GET, EXISTS), random serials" EVALSHA "$sha" 4 \
        "${KEYS4[@]}" "$S" f "${ARGS6[@]}"
    rb "EVALSHA s: sighting, place seen again" EVALSHA "$sha" 4 \
        "${KEYS4[@]/__rand_int__/000000000002}" 0123AB000000000002 s \
        "${ARGS6[@]}"
    rb "EVALSHA fs: revoked (GET, PTTL, EXISTS)" EVALSHA "$sha" 4 \
        "${KEYS4[@]/0123AB__rand_int__/0123CC000000000001}" \
        0123CC000000000001 fs "${ARGS6[@]}"
    rb "EVALSHA e: an event's rate limit, random serials" EVALSHA "$sha" 4 \
        "${KEYS4[@]}" "$S" e 127.0.0.1 0 0 log 60000 revoked
    # what the scripting machinery costs before the script does anything
    rb "EVALSHA return 1, no arguments" EVALSHA "$sha_ret" 0
    rb "EVALSHA return 1, the module's 4 keys, 8 args" EVALSHA "$sha_ret" \
        4 "${KEYS4[@]}" "$S" fs "${ARGS6[@]}"
    rb "EVALSHA TIME only, 4 keys, 8 args" EVALSHA "$sha_time" 4 \
        "${KEYS4[@]}" "$S" fs "${ARGS6[@]}"
    rb "GET of a signer fact (one per signer and miss)" GET \
        "${P}signer:$SG:revoked"
    rb "MGET of the 4 device and signer keys (Lua peer)" MGET \
        "${KEYS4[@]:0:2}" "${P}signer:$SG:revoked" \
        "${P}signer:$SG:compromised"
    rb "ZADD P{SN}:seen" ZADD "${P}{$S}:seen" 1700000000000 127.0.0.1
    rb "ZREMRANGEBYSCORE P{SN}:seen" ZREMRANGEBYSCORE "${P}{$S}:seen" -inf 1
    rb "PEXPIRE P{SN}:seen" PEXPIRE "${P}{$S}:seen" 600000
    rb "ZCARD P{SN}:seen" ZCARD "${P}{$S}:seen"
    rb "PING" PING
    echo
} > "$OUT/redis-cost.txt"
stop_redis rb

# ------------------------------------------------ 4. syscalls per request

say "profile: syscalls per request"
sc_events=syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl
sc_events=$sc_events,syscalls:sys_enter_read,syscalls:sys_enter_write
sc_events=$sc_events,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
sc_events=$sc_events,raw_syscalls:sys_enter,context-switches
{
    echo "syscalls of the nginx worker per request (perf stat tracepoints," \
         "keepalive, 32 connections, 1 worker)"
    printf '%-26s %8s %8s %8s %8s %8s %8s %8s %8s\n' variant epoll_wt \
        epoll_ctl read write recvfrom sendto all ctxsw
} > "$OUT/syscalls.txt"
for v in 1 3 4 5; do
    start_nginx "sc$v" "$v" 1 main
    worker=$(ps --ppid "${MPID[sc$v]}" -o pid= | head -1 | tr -d ' ')
    "$LOADGEN" "${LG_FLEET[@]}" -N "$FLEET" --revoked "$REVOKED" \
        -m keepalive -c 32 -d 5 -w 1 -q "https://127.0.0.1:${PORT[sc$v]}/" &
    BG_PID=$!
    sleep 1.5
    perl "$here/snapshot.pl" --status "${SPORT[sc$v]}" > "$tmp/sc0.json"
    if ! perf stat -x, -e "$sc_events" -p "$worker" -o "$tmp/sc.perf" \
            -- sleep 3 >/dev/null 2>&1; then
        echo "perf stat: no syscall tracepoints here" >> "$OUT/syscalls.txt"
        wait "$BG_PID" || true
        BG_PID=""
        stop_nginx "sc$v"
        break
    fi
    perl "$here/snapshot.pl" --status "${SPORT[sc$v]}" > "$tmp/sc1.json"
    wait "$BG_PID" || true
    BG_PID=""
    stop_nginx "sc$v"
    perl -MJSON::PP -e '
        my ($a, $b, $f, $v) = @ARGV;
        local $/;
        open my $x, "<", $a; my $s0 = decode_json(<$x>);
        open $x, "<", $b; my $s1 = decode_json(<$x>);
        my $n = $s1->{status}{requests} - $s0->{status}{requests} - 1;
        open $x, "<", $f; my %c;
        for (split /\n/, <$x>) { my @p = split /,/; $c{$p[2]} = $p[0] if @p > 2 && $p[0] =~ /^\d+$/ }
        my @k = map { "syscalls:sys_enter_$_" } qw(epoll_wait epoll_ctl read write recvfrom sendto);
        printf "%-26s" . " %8.3f" x 8 . "\n", $v,
            (map { ($c{$_} // 0) / $n } @k, "raw_syscalls:sys_enter", "context-switches");
    ' "$tmp/sc0.json" "$tmp/sc1.json" "$tmp/sc.perf" "$v ${VNAME_SHORT[$v]}" \
        >> "$OUT/syscalls.txt"
done

perl "$here/profile-report.pl" "$OUT" | tee "$OUT/summary.txt"
cat "$OUT/redis-cost.txt" "$OUT/syscalls.txt" | tee -a "$OUT/summary.txt"
say "profile: results in $OUT"
