#!/usr/bin/env bash
#
# demo/demo.sh start|stop: a demo edge on this machine.
#
# start: under demo/run/ (git-ignored), generates a sample PKI with
# t/lib/mkpki.sh, starts a redis-server (no persistence), an upstream that
# echoes the identity headers it receives (demo/upstream.pl), and nginx with
# the module, all on loopback ports; then drives it with curl and redis-cli,
# step by step, and leaves it running.  Starting again restarts it.
#
# stop: stops what start started, by the PID files in demo/run/; keeps the
# PKI and the logs.
#
# Run through "make demo", which builds the module first, and
# "make demo-stop".  Environment: NGINX (default /usr/sbin/nginx),
# DEVICE_AUTH_MKPKI (default t/lib/mkpki.sh), DEMO_PORT, DEMO_UPSTREAM_PORT,
# DEMO_REDIS_PORT, DEMO_METRICS_PORT (preferred ports, default 8443, 8081,
# 6390, 9145; another free port is taken when one is busy).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

RUN=demo/run                      # relative to the repository root
ARUN=$ROOT/$RUN                   # absolute, for nginx and redis
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=$ROOT/build/ngx_http_device_auth_module.so
MKPKI=${DEVICE_AUTH_MKPKI:-$ROOT/t/lib/mkpki.sh}
PKI=$RUN/pki
PREFIX=device_auth:

# What nginx's workers write (request bodies, buffered responses) must be
# reachable by them: started by root they run as "nobody", and a checkout
# in a private directory such as /root is closed to them.  One directory
# per checkout, outside it.
WTMP=${TMPDIR:-/tmp}/device-auth-demo.$(printf %s "$ROOT" | sha256sum \
                                        | cut -c1-12)


die() {
    echo "demo: $*" >&2

    # a start that failed half-way stops what it started
    if [ -n "${STARTING:-}" ]; then
        stop > /dev/null 2>&1 || true
    fi

    exit 1
}


# ---------------------------------------------------------------- stop

# is PID alive and the process we started (its command line has MARK)?

ours() {
    local pid=$1 mark=$2

    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$mark"
}


stop_one() {
    local name=$1 pidfile=$2 mark=$3 pid i

    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null || true)

    if ours "$pid" "$mark"; then
        kill -TERM "$pid" 2>/dev/null || true

        for i in $(seq 1 100); do
            ours "$pid" "$mark" || break
            sleep 0.1
        done

        if ours "$pid" "$mark"; then
            echo "demo: $name (pid $pid) did not stop in 10 s, killing it"
            kill -KILL $(ps -o pid= --ppid "$pid") "$pid" 2>/dev/null || true
        fi

        echo "stopped $name (pid $pid)"
        STOPPED=$(( STOPPED + 1 ))
    fi

    rm -f "$pidfile"
}


stop() {
    local redis_port=

    STOPPED=0

    if [ -f "$RUN/ports.env" ]; then
        redis_port=$(sed -n 's/^REDIS_PORT=//p' "$RUN/ports.env")
    fi

    # nginx first: its workers hold connections to the other two
    stop_one nginx "$RUN/nginx.pid" "$ARUN/"
    stop_one upstream "$RUN/upstream.pid" "$ROOT/demo/upstream.pl"
    stop_one redis-server "$RUN/redis.pid" "redis-server 127.0.0.1:$redis_port"

    if [ "$STOPPED" = 0 ]; then
        echo "the demo was not running"
    fi
}


# ---------------------------------------------------------------- start

# a free loopback port: the preferred one if it is free
free_port() {
    perl -MIO::Socket::INET -e '
        for my $p ($ARGV[0], 0) {
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
                                          LocalPort => $p, Listen => 1,
                                          ReuseAddr => 1) or next;
            print $s->sockport, "\n";
            exit 0;
        }
        exit 1;' "$1"
}


wait_for() {      # wait_for SECONDS COMMAND...
    local n=$(( $1 * 10 ))
    shift

    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$(( n - 1 ))
    done

    return 1
}


write_nginx_conf() {
    cat > "$RUN/nginx.conf" <<EOF
# demo/run/nginx.conf, written by demo/demo.sh: the demo edge.

load_module $MODULE;

worker_processes 2;
error_log $ARUN/logs/error.log info;
pid $ARUN/nginx.pid;

events {
    worker_connections 256;
}

http {
    log_format device '\$remote_addr "\$request" \$status '
                      'device_auth=\$device_auth_status '
                      'serial=\$device_auth_serial '
                      'location=\$demo_location '
                      'reason="\$device_auth_reason"';

    access_log $ARUN/logs/access.log device;

    client_body_temp_path $WTMP/client_body;
    proxy_temp_path       $WTMP/proxy;
    fastcgi_temp_path     $WTMP/fastcgi;
    uwsgi_temp_path       $WTMP/uwsgi;
    scgi_temp_path        $WTMP/scgi;

    # the pins: the company root, and the two signers that issue devices
    device_auth_certificate $ARUN/pki/roots.pem;
    device_auth_signers     $ARUN/pki/signers.pem;

    device_auth_redis 127.0.0.1:$REDIS_PORT;

    # "a place" is where a request comes from.  In production that is
    # \$remote_addr (the default) or a map of it (a /24, a geoip region);
    # here the client names its place in an X-Demo-Location header, so
    # that one machine can play several places.
    map \$http_x_demo_location \$demo_location {
        ""       \$remote_addr;
        default  \$http_x_demo_location;
    }

    device_auth_location \$demo_location;
    device_auth_duplicate_window 10m;
    device_auth_duplicate_limit 2;

    # the key ops set once (redis-cli SET device_auth:canary ...): while it
    # is missing (a Redis restarted empty), Redis counts as unavailable
    device_auth_redis_canary canary;

    # the day's distinct devices are read for the metrics this often
    device_auth_stats_interval 5s;

    upstream echo {
        server 127.0.0.1:$UPSTREAM_PORT;
    }

    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        server_name localhost;

        ssl_certificate     $ARUN/pki/server.pem;
        ssl_certificate_key $ARUN/pki/server.key;

        device_auth on;

        # a clone beyond the limit: logged, X-Device-Status: duplicate
        location / {
            proxy_pass http://echo;
        }

        # a clone beyond the limit: 403, and the serial is quarantined
        # for device_auth_duplicate_window at every edge
        location /strict/ {
            device_auth_duplicate_action quarantine;
            proxy_pass http://echo;
        }

        # no device authentication; client X-Device-* headers are still
        # removed
        location /public/ {
            device_auth off;
            proxy_pass http://echo;
        }
    }

    # the Prometheus metrics of all workers (docs/metrics.md), plain HTTP,
    # for this machine only
    server {
        listen 127.0.0.1:$METRICS_PORT;
        server_name localhost;

        location = /metrics {
            device_auth_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }
}
EOF
}


# -------------------------------------------------------- the walk-through

rcli() {
    redis-cli -p "$REDIS_PORT" "$@"
}

title() {
    echo
    echo "== $* =="
}

say() {
    echo "   $*"
}

# the command, quoted as one would type it
show_cmd() {
    local a out=

    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+=" $a"
        else
            out+=" '$a'"
        fi
    done

    echo "\$$out"
}

# error.log lines written by device_auth since the mark, shortened
log_since() {
    local mark=$1 file=$2

    tail -c +"$(( mark + 1 ))" "$file" \
        | grep -F 'device_auth:' \
        | grep -vF 'connected to redis' \
        | sed -e 's/^[0-9\/]* [0-9:]* \(\[[a-z]*\]\) [0-9#]*: \(\*[0-9]* \)\{0,1\}/\1 /' \
              -e 's/, client: .*$//' \
        | sed 's/^/     /' || true
}

log_size() {
    stat -c %s "$RUN/logs/error.log"
}

# request DESCRIPTION... : runs curl with the arguments in CURL_ARGS,
# prints the command, the status and what the upstream received
request() {
    local mark status reason out head body

    out=$RUN/tmp/curl.body
    head=$RUN/tmp/curl.head

    show_cmd curl "${CURL_ARGS[@]}"
    mark=$(log_size)

    status=$(curl -sS -o "$out" -D "$head" -w '%{http_code}' \
                  "${CURL_ARGS[@]}") || true

    sleep 0.1     # let nginx write its log lines

    if grep -qi '^X-Demo-Upstream:' "$head" 2>/dev/null; then
        say "-> $status; the upstream received:"
        sed 's/^/        /' "$out"
    else
        reason=$(sed -n 's/.*<title>\(.*\)<\/title>.*/\1/p' "$out" | head -1)
        say "-> $status ${reason:+(nginx: \"$reason\")}; the upstream saw nothing"
    fi

    body=$(log_since "$mark" "$RUN/logs/error.log")

    if [ -n "$body" ]; then
        say "error.log:"
        echo "$body"
    fi
}

# redis-cli's raw XRANGE output (an id, then field/value pairs: 6, a
# clone's event 7 with its edges), readable
format_events() {
    awk '/^[0-9]+-[0-9]+$/ { print "   -> " $0; n = 0; next }
         n++ % 2 == 0 { f = $0; next }
         { printf "        %-9s %s\n", f, $0 }'
}

device_args() {     # device_args NAME URL [CURL OPTIONS...]
    local dev=$1 url=$2
    shift 2

    CURL_ARGS=(--cacert "$PKI/server.pem" --cert "$PKI/$dev.pem"
               --key "$PKI/$dev.key" "$@" "$url")
}


walk() {
    local url=https://127.0.0.1:$NGINX_PORT
    local sn1 sn2 sn3 signer1

    sn1=$(cat "$PKI/dev1.serial")
    sn2=$(cat "$PKI/dev2.serial")
    sn3=$(cat "$PKI/dev3.serial")
    signer1=$(openssl x509 -in "$PKI/signer1.pem" -noout -fingerprint -sha256 \
              | cut -d= -f2 | tr -d : | tr A-F a-f)

    echo
    echo "The edge pins the company root ($PKI/roots.pem) and its two signers"
    echo "($PKI/signers.pem), and reads device state from Redis. The upstream"
    echo "answers with the X-Device-* headers it received."

    title "1. A genuine device: dev1, serial $sn1, issued by signer 1"
    say "It sends only its own certificate; nginx pins the signers."
    device_args dev1 "$url/"
    request

    title "2. Another genuine device: dev3, serial $sn3, issued by signer 2"
    device_args dev3 "$url/"
    request

    title "3. A device of another company: issued by a signer under an unpinned root"
    say "The TLS handshake completes; the request is answered 495, which"
    say "nginx sends as 400 (use \"error_page 495\" to change that)."
    CURL_ARGS=(--cacert "$PKI/server.pem" --cert "$PKI/dev_rogue.chain.pem"
               --key "$PKI/dev_rogue.key" "$url/")
    request

    title "4. No client certificate"
    say "Answered 496, which nginx sends as 400."
    CURL_ARGS=(--cacert "$PKI/server.pem" "$url/")
    request

    title "5. A client forging identity headers"
    say "dev1 sends X-Device-Serial and X-Device-Status of its own: they are"
    say "removed before anything else sees them, and the real ones added."
    device_args dev1 "$url/" -H 'X-Device-Serial: 0123DEADBEEFDEAD01' \
                -H 'X-Device-Status: ok'
    request
    say "The same without a certificate, in /public/ where device_auth is off:"
    CURL_ARGS=(--cacert "$PKI/server.pem" -H 'X-Device-Serial: 0123DEADBEEFDEAD01'
               "$url/public/")
    request

    title "6. Revoking dev1 live with redis-cli, no reload"
    show_cmd redis-cli -p "$REDIS_PORT" SET "$PREFIX{$sn1}:revoked" "stolen, ticket 4711"
    say "-> $(rcli SET "$PREFIX{$sn1}:revoked" 'stolen, ticket 4711')"
    say "The very next request of dev1 is refused:"
    device_args dev1 "$url/"
    request
    say "Unrevoking:"
    show_cmd redis-cli -p "$REDIS_PORT" DEL "$PREFIX{$sn1}:revoked"
    say "-> $(rcli DEL "$PREFIX{$sn1}:revoked")"
    device_args dev1 "$url/"
    request

    title "7. A cloned device: dev2 (serial $sn2) seen at several places"
    say "device_auth_duplicate_limit 2: at most 2 places within the 10m window."
    for place in paris berlin; do
        device_args dev2 "$url/" -H "X-Demo-Location: $place"
        request
    done
    say "A third place, in / (device_auth_duplicate_action log): let through,"
    say "marked, logged, and an event written:"
    device_args dev2 "$url/" -H 'X-Demo-Location: tokyo'
    request
    say "A fourth place, in /strict/ (device_auth_duplicate_action quarantine):"
    device_args dev2 "$url/strict/" -H 'X-Demo-Location: sydney'
    request
    say "The serial is now quarantined at every edge, for the window:"
    show_cmd redis-cli -p "$REDIS_PORT" GET "$PREFIX{$sn2}:revoked"
    say "-> $(rcli GET "$PREFIX{$sn2}:revoked")"
    show_cmd redis-cli -p "$REDIS_PORT" TTL "$PREFIX{$sn2}:revoked"
    say "-> $(rcli TTL "$PREFIX{$sn2}:revoked")"
    say "Even from its first place, in /:"
    device_args dev2 "$url/" -H 'X-Demo-Location: paris'
    request
    say "Where it was seen (scores: Redis time in ms):"
    show_cmd redis-cli -p "$REDIS_PORT" ZRANGE "$PREFIX{$sn2}:seen" 0 -1 WITHSCORES
    rcli ZRANGE "$PREFIX{$sn2}:seen" 0 -1 WITHSCORES | paste - - \
        | while read -r place ms; do
            say "-> $place  $ms  ($(date -d "@$(( ms / 1000 ))" +%T))"
          done

    title "8. The events stream"
    show_cmd redis-cli -p "$REDIS_PORT" XRANGE "${PREFIX}events" - +
    say "(one entry per revoked, signer_revoked, signer_compromised,"
    say "unregistered, key_mismatch, duplicate and quarantined decision; at"
    say "most one per serial and type per minute; a clone's names the edges"
    say "that saw it)"
    rcli XRANGE "${PREFIX}events" - + | format_events

    title "9. The metrics endpoint"
    # the day's distinct devices are read every device_auth_stats_interval
    wait_for 7 sh -c "curl -s http://127.0.0.1:$METRICS_PORT/metrics \
                      | grep -q 'devices_today{scope=\"fleet\"} [1-9]'" || true
    show_cmd curl -s "http://127.0.0.1:$METRICS_PORT/metrics"
    say "(all of it: docs/metrics.md; the decisions so far, the canary, the"
    say "keys counted in Redis at start, the day's distinct devices:)"
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" \
        | grep -E '^nginx_device_auth_(decisions_total\{[^}]*\} [1-9]|redis_canary_missing|redis_keys|devices_today|pins_earliest)' \
        | sed 's/^/   -> /' || true

    title "The demo is running"
    cat <<EOF
   nginx      https://127.0.0.1:$NGINX_PORT/  (config $RUN/nginx.conf)
   metrics    http://127.0.0.1:$METRICS_PORT/metrics
   upstream   http://127.0.0.1:$UPSTREAM_PORT/  (demo/upstream.pl)
   redis      127.0.0.1:$REDIS_PORT  (no persistence)
   logs       $RUN/logs/error.log, $RUN/logs/access.log
   PKI        $PKI/: root.pem, signer1.pem, signer2.pem, devices dev1 dev2
              dev3 (genuine), dev_rogue (other company), dev_expired,
              dev_p384, dev_rsa, ... (names and serials: $PKI/serials.txt)

Try more, from the repository root:

   # a genuine device of signer 2; a P-384 key (495); dev1 from a new place
   curl --cacert $PKI/server.pem --cert $PKI/dev3.pem --key $PKI/dev3.key $url/
   curl --cacert $PKI/server.pem --cert $PKI/dev_p384.chain.pem --key $PKI/dev_p384.key $url/
   curl --cacert $PKI/server.pem --cert $PKI/dev1.pem --key $PKI/dev1.key -H 'X-Demo-Location: lima' $url/

   # revoke dev3, quarantine it for a minute, let dev3 and dev2 in again,
   # revoke signer 1, undo it, wait for the next event
   redis-cli -p $REDIS_PORT SET '$PREFIX{$sn3}:revoked' 'lost in transit'
   redis-cli -p $REDIS_PORT SET '$PREFIX{$sn3}:revoked' 'quarantined: under investigation' EX 60
   redis-cli -p $REDIS_PORT DEL '$PREFIX{$sn3}:revoked' '$PREFIX{$sn2}:revoked' '$PREFIX{$sn2}:seen'
   redis-cli -p $REDIS_PORT SET '${PREFIX}signer:$signer1:revoked' 'key leaked'
   redis-cli -p $REDIS_PORT DEL '${PREFIX}signer:$signer1:revoked'
   redis-cli -p $REDIS_PORT XREAD BLOCK 0 STREAMS ${PREFIX}events '\$'
   tail -f $RUN/logs/error.log $RUN/logs/access.log

   # the same with build/device-auth, written to ${PREFIX}audit: lift dev2's
   # quarantine with its places, list what is revoked, look for keys no
   # edge reads, the pins as the edge sees them
   export DEVICE_AUTH_REDIS=127.0.0.1:$REDIS_PORT DEVICE_AUTH_PREFIX=$PREFIX
   build/device-auth release $sn2 --reason 'moved'
   build/device-auth list revoked
   build/device-auth lint
   build/device-auth pins $PKI/root.pem $PKI/signer1.pem $PKI/signer2.pem

   # the signer id of a certificate file
   openssl x509 -in $PKI/signer1.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f

Stop it with: make demo-stop   (keeps $RUN/ with the PKI and the logs)
See docs/operations.md for the runbook.
EOF
}


start() {
    local need

    for need in "$NGINX" redis-server redis-cli curl openssl perl; do
        command -v "$need" >/dev/null \
            || die "\"$need\" not found; run \"make deps\""
    done

    [ -f "$MODULE" ] || die "$MODULE not found; run \"make\""
    [ -f "$MKPKI" ] || die "$MKPKI not found (the PKI generator of the" \
                           "test suite); set DEVICE_AUTH_MKPKI to its path"

    stop >/dev/null
    STARTING=1

    mkdir -p "$RUN/logs" "$RUN/tmp" "$RUN/redis" "$WTMP"
    chmod 755 "$WTMP"
    rm -f "$RUN/redis/dump.rdb" "$RUN/tmp/curl."*
    : > "$RUN/logs/error.log"
    : > "$RUN/logs/access.log"

    echo "Generating the sample PKI in $PKI/ ..."
    bash "$MKPKI" "$PKI" > "$RUN/logs/mkpki.log" 2>&1 \
        || { cat "$RUN/logs/mkpki.log" >&2; die "PKI generation failed"; }

    NGINX_PORT=$(free_port "${DEMO_PORT:-8443}")
    UPSTREAM_PORT=$(free_port "${DEMO_UPSTREAM_PORT:-8081}")
    REDIS_PORT=$(free_port "${DEMO_REDIS_PORT:-6390}")
    METRICS_PORT=$(free_port "${DEMO_METRICS_PORT:-9145}")

    [ "$(printf '%s\n' "$NGINX_PORT" "$UPSTREAM_PORT" "$REDIS_PORT" \
         "$METRICS_PORT" | sort -u | wc -l)" = 4 ] \
        || die "could not find four distinct free ports"

    printf 'NGINX_PORT=%s\nUPSTREAM_PORT=%s\nREDIS_PORT=%s\nMETRICS_PORT=%s\n' \
        "$NGINX_PORT" "$UPSTREAM_PORT" "$REDIS_PORT" "$METRICS_PORT" \
        > "$RUN/ports.env"

    # nginx workers run as "nobody" when the master runs as root
    chmod -R a+rX "$RUN"

    echo "Starting redis-server on 127.0.0.1:$REDIS_PORT ..."
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize yes --pidfile "$ARUN/redis.pid" \
        --logfile "$ARUN/logs/redis.log" --dir "$ARUN/redis" \
        || die "redis-server did not start, see $RUN/logs/redis.log"
    wait_for 5 sh -c "redis-cli -p $REDIS_PORT PING | grep -q PONG" \
        || die "redis-server does not answer, see $RUN/logs/redis.log"

    # the canary of device_auth_redis_canary: set once, by ops
    redis-cli -p "$REDIS_PORT" SET "${PREFIX}canary" \
        "set by demo/demo.sh $(date -u +%FT%TZ)" > /dev/null \
        || die "cannot set the canary in redis"

    echo "Starting the upstream on 127.0.0.1:$UPSTREAM_PORT ..."
    nohup perl "$ROOT/demo/upstream.pl" "$UPSTREAM_PORT" \
        < /dev/null > "$RUN/logs/upstream.log" 2>&1 &
    echo $! > "$RUN/upstream.pid"
    wait_for 5 curl -sf "http://127.0.0.1:$UPSTREAM_PORT/" \
        || die "the upstream did not start, see $RUN/logs/upstream.log"

    echo "Starting nginx on 127.0.0.1:$NGINX_PORT ..."
    write_nginx_conf
    "$NGINX" -p "$ARUN/" -c "$ARUN/nginx.conf" -e "$ARUN/logs/error.log" -t \
        > "$RUN/logs/nginx-t.log" 2>&1 \
        || { cat "$RUN/logs/nginx-t.log" >&2; die "nginx -t failed"; }
    "$NGINX" -p "$ARUN/" -c "$ARUN/nginx.conf" -e "$ARUN/logs/error.log" \
        || die "nginx did not start, see $RUN/logs/error.log"
    wait_for 5 test -s "$RUN/nginx.pid" \
        || die "nginx did not start, see $RUN/logs/error.log"

    # both workers connected to Redis
    wait_for 5 sh -c "[ \$(grep -c 'connected to redis' $RUN/logs/error.log) -ge 2 ]" \
        || echo "demo: the workers did not report a Redis connection yet"

    STARTING=

    walk
}


case "${1:-}" in
start)
    start
    ;;
stop)
    stop
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
