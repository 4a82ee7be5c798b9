
/*
 * Metrics in a shared memory zone, summed over all workers and kept across
 * reloads (counters stay monotonic), served by "device_auth_metrics;" in
 * the Prometheus text exposition format.  Gauges are added to and
 * subtracted from by each worker, so overlapping old and new workers
 * during a reload add up correctly.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_metrics.h"


#define NGX_HTTP_DEVICE_AUTH_BUCKETS  12


typedef struct {
    ngx_atomic_t  decisions[NGX_HTTP_DEVICE_AUTH_S_N][2];
    ngx_atomic_t  cert_errors[NGX_DEVICE_AUTH_R_N];
    ngx_atomic_t  redis_errors[NGX_HTTP_DEVICE_AUTH_RE_N];
    ngx_atomic_t  latency[NGX_HTTP_DEVICE_AUTH_BUCKETS + 1];
    ngx_atomic_t  latency_count;
    ngx_atomic_t  latency_usec;
    ngx_atomic_t  reconnects;
    ngx_atomic_t  cache[NGX_HTTP_DEVICE_AUTH_CM_N];
    ngx_atomic_t  forged;
    ngx_atomic_t  inflight;
    ngx_atomic_t  ready;
    ngx_atomic_t  links;
    ngx_atomic_t  canary_missing;

    /* of the configuration: the earliest notAfter of the pins (s) */
    ngx_atomic_t  pins_expiry;

    /* read from Redis by one worker: 0 until then */
    ngx_atomic_t  keys_counted;
    ngx_atomic_t  keys_revoked;
    ngx_atomic_t  keys_registered;
    ngx_atomic_t  devices_read;
    ngx_atomic_t  devices_fleet;
    ngx_atomic_t  devices_edge;

    /* per worker: when its invalidation link last proved alive (ms);
     * 0: no link */
    ngx_atomic_t  alive[NGX_HTTP_DEVICE_AUTH_WORKERS_MAX];

    ngx_atomic_t  ticket_copies;
} ngx_http_device_auth_shm_t;


static ngx_int_t ngx_http_device_auth_metrics_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_device_auth_metrics_handler(ngx_http_request_t *r);
static ngx_http_device_auth_shm_t *ngx_http_device_auth_shm(
    ngx_http_device_auth_main_conf_t *dmcf);


static ngx_uint_t  ngx_http_device_auth_buckets[NGX_HTTP_DEVICE_AUTH_BUCKETS]
    = { 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
        500000, 1000000 };


/*
 * The results each decision can have (1: rejected, 2: allowed): their
 * series are listed from 0, so that increase() sees the first one.  The
 * reason label is the decision's name ($device_auth_status).
 */

static u_char  ngx_http_device_auth_decision_results[NGX_HTTP_DEVICE_AUTH_S_N]
    = {
    2,      /* ok */
    1,      /* no_cert */
    1,      /* invalid */
    1,      /* misdirected */
    1,      /* revoked */
    1,      /* signer_revoked */
    1,      /* signer_compromised */
    1,      /* unregistered */
    1,      /* key_mismatch */
    1,      /* quarantined */
    1|2,    /* duplicate: deny, quarantine; log */
    2,      /* unchecked */
    1,      /* error */
    1       /* too_early */
};


static char  *ngx_http_device_auth_cache_names[NGX_HTTP_DEVICE_AUTH_CM_N] = {
    "hit",
    "miss",
    "invalidation",
    "eviction",
    "flush",
    "grace"
};


/* what this worker added to the gauges, to take it away again */

static ngx_uint_t  ngx_http_device_auth_shown_inflight;
static ngx_uint_t  ngx_http_device_auth_shown_ready;
static ngx_uint_t  ngx_http_device_auth_shown_link;
static ngx_uint_t  ngx_http_device_auth_shown_canary;


static char  *ngx_http_device_auth_redis_error_names[] = {
    "timeout",
    "disconnected",
    "not_connected",
    "error_reply",
    "bad_reply",
    "noscript",
    "wrongpass",
    "noauth",
    "noperm",
    "canary_missing"
};


ngx_int_t
ngx_http_device_auth_metrics_zone(ngx_conf_t *cf,
    ngx_http_device_auth_main_conf_t *dmcf)
{
    ngx_str_t  name = ngx_string("device_auth_metrics");

    dmcf->metrics = ngx_shared_memory_add(cf, &name, 16 * ngx_pagesize,
                                          &ngx_http_device_auth_module);
    if (dmcf->metrics == NULL) {
        return NGX_ERROR;
    }

    dmcf->metrics->init = ngx_http_device_auth_metrics_init_zone;
    dmcf->metrics->data = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_device_auth_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t             *shpool;
    ngx_http_device_auth_shm_t  *sh;

    /* a reload keeps the counters */

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_device_auth_shm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    shm_zone->data = sh;

    return NGX_OK;
}


static ngx_http_device_auth_shm_t *
ngx_http_device_auth_shm(ngx_http_device_auth_main_conf_t *dmcf)
{
    return dmcf->metrics ? dmcf->metrics->data : NULL;
}


void
ngx_http_device_auth_metrics_decision(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t allowed, ngx_uint_t cert_reason)
{
    ngx_http_device_auth_shm_t        *sh;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);
    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->decisions[status][allowed ? 1 : 0], 1);

    if (status == NGX_HTTP_DEVICE_AUTH_S_INVALID
        && cert_reason < NGX_DEVICE_AUTH_R_N)
    {
        (void) ngx_atomic_fetch_add(&sh->cert_errors[cert_reason], 1);
    }
}


void
ngx_http_device_auth_metrics_forged(ngx_http_request_t *r)
{
    ngx_http_device_auth_shm_t        *sh;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);
    sh = ngx_http_device_auth_shm(dmcf);

    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->forged, 1);
    }
}


void
ngx_http_device_auth_metrics_tickets(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t copies)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh && copies) {
        (void) ngx_atomic_fetch_add(&sh->ticket_copies, copies);
    }
}


void
ngx_http_device_auth_metrics_cache(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t kind)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh && kind < NGX_HTTP_DEVICE_AUTH_CM_N) {
        (void) ngx_atomic_fetch_add(&sh->cache[kind], 1);
    }
}


/* the worker's invalidation link went up or down */

void
ngx_http_device_auth_metrics_link(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t up)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL) {
        return;
    }

    if (up != ngx_http_device_auth_shown_link) {
        (void) ngx_atomic_fetch_add(&sh->links,
                             (ngx_atomic_int_t) up
                             - (ngx_atomic_int_t)
                               ngx_http_device_auth_shown_link);
        ngx_http_device_auth_shown_link = up;
    }

    if (ngx_worker < NGX_HTTP_DEVICE_AUTH_WORKERS_MAX) {
        sh->alive[ngx_worker] = up ? (ngx_atomic_uint_t) ngx_current_msec
                                   : 0;
    }
}


/* its subscriber heard from Redis: a message, or the answer to a PING */

void
ngx_http_device_auth_metrics_link_alive(
    ngx_http_device_auth_main_conf_t *dmcf)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh && ngx_worker < NGX_HTTP_DEVICE_AUTH_WORKERS_MAX
        && sh->alive[ngx_worker])
    {
        sh->alive[ngx_worker] = (ngx_atomic_uint_t) ngx_current_msec;
    }
}


void
ngx_http_device_auth_metrics_redis_error(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t kind)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh && kind < NGX_HTTP_DEVICE_AUTH_RE_N) {
        (void) ngx_atomic_fetch_add(&sh->redis_errors[kind], 1);
    }
}


void
ngx_http_device_auth_metrics_latency(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_msec_int_t usec)
{
    ngx_uint_t                   i;
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL) {
        return;
    }

    if (usec < 0) {
        usec = 0;
    }

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_BUCKETS; i++) {
        if ((ngx_uint_t) usec <= ngx_http_device_auth_buckets[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&sh->latency[i], 1);
    (void) ngx_atomic_fetch_add(&sh->latency_count, 1);
    (void) ngx_atomic_fetch_add(&sh->latency_usec, usec);
}


void
ngx_http_device_auth_metrics_reconnect(ngx_http_device_auth_main_conf_t *dmcf)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->reconnects, 1);
    }
}


/* gauges: the difference a worker makes, added or taken away */

void
ngx_http_device_auth_metrics_worker(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t inflight, ngx_uint_t ready)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL) {
        return;
    }

    if (inflight != ngx_http_device_auth_shown_inflight) {
        (void) ngx_atomic_fetch_add(&sh->inflight,
                             (ngx_atomic_int_t) inflight
                             - (ngx_atomic_int_t)
                               ngx_http_device_auth_shown_inflight);
        ngx_http_device_auth_shown_inflight = inflight;
    }

    if (ready != ngx_http_device_auth_shown_ready) {
        (void) ngx_atomic_fetch_add(&sh->ready,
                             (ngx_atomic_int_t) ready
                             - (ngx_atomic_int_t)
                               ngx_http_device_auth_shown_ready);
        ngx_http_device_auth_shown_ready = ready;
    }
}


/* the worker finds the canary missing, or no longer */

void
ngx_http_device_auth_metrics_canary(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t missing)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL || missing == ngx_http_device_auth_shown_canary) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->canary_missing,
                                (ngx_atomic_int_t) missing
                                - (ngx_atomic_int_t)
                                  ngx_http_device_auth_shown_canary);
    ngx_http_device_auth_shown_canary = missing;
}


/* by the master, at start and reload: of the configuration loaded */

void
ngx_http_device_auth_metrics_pins(ngx_http_device_auth_main_conf_t *dmcf,
    long long earliest)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh) {
        sh->pins_expiry = earliest > 0 ? (ngx_atomic_uint_t) earliest : 0;
    }
}


void
ngx_http_device_auth_metrics_keys(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t revoked, ngx_uint_t registered)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh) {
        sh->keys_revoked = revoked;
        sh->keys_registered = registered;
        sh->keys_counted = 1;
    }
}


void
ngx_http_device_auth_metrics_devices(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t fleet, ngx_uint_t edge)
{
    ngx_http_device_auth_shm_t  *sh;

    sh = ngx_http_device_auth_shm(dmcf);

    if (sh) {
        sh->devices_fleet = fleet;
        sh->devices_edge = edge;
        sh->devices_read = 1;
    }
}


char *
ngx_http_device_auth_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_device_auth_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_device_auth_metrics_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    size_t                             size;
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_msec_t                         now;
    ngx_uint_t                         i, j, cumulative;
    ngx_msec_int_t                     age;
    ngx_chain_t                        out;
    ngx_http_device_auth_shm_t        *sh;
    ngx_http_device_auth_main_conf_t  *dmcf;

    static char  *results[] = { "rejected", "allowed" };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);
    sh = ngx_http_device_auth_shm(dmcf);

    if (sh == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    size = 16384;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_decisions_total Requests decided by "
            "device_auth, by result and reason.\n"
            "# TYPE nginx_device_auth_decisions_total counter\n");

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_S_N; i++) {
        for (j = 0; j < 2; j++) {
            if (!(ngx_http_device_auth_decision_results[i] & (1 << j))
                && sh->decisions[i][j] == 0)
            {
                continue;
            }

            p = ngx_slprintf(p, b->end,
                             "nginx_device_auth_decisions_total"
                             "{result=\"%s\",reason=\"%V\"} %uA\n",
                             results[j],
                             &ngx_http_device_auth_status_names[i],
                             sh->decisions[i][j]);
        }
    }

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_cert_errors_total Device certificates "
            "refused by the chain, pin or profile checks, by reason.\n"
            "# TYPE nginx_device_auth_cert_errors_total counter\n");

    for (i = 1; i < NGX_DEVICE_AUTH_R_N; i++) {
        p = ngx_slprintf(p, b->end,
                         "nginx_device_auth_cert_errors_total"
                         "{reason=\"%s\"} %uA\n",
                         ngx_device_auth_reason_names[i], sh->cert_errors[i]);
    }

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_redis_errors_total Failed Redis "
            "lookups, by kind.\n"
            "# TYPE nginx_device_auth_redis_errors_total counter\n");

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_RE_N; i++) {
        p = ngx_slprintf(p, b->end,
                         "nginx_device_auth_redis_errors_total"
                         "{kind=\"%s\"} %uA\n",
                         ngx_http_device_auth_redis_error_names[i],
                         sh->redis_errors[i]);
    }

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_redis_duration_seconds Redis lookup "
            "round-trip time.\n"
            "# TYPE nginx_device_auth_redis_duration_seconds histogram\n");

    cumulative = 0;

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_BUCKETS; i++) {
        cumulative += sh->latency[i];
        p = ngx_slprintf(p, b->end,
                         "nginx_device_auth_redis_duration_seconds_bucket"
                         "{le=\"%ui.%06ui\"} %ui\n",
                         ngx_http_device_auth_buckets[i] / 1000000,
                         ngx_http_device_auth_buckets[i] % 1000000,
                         cumulative);
    }

    cumulative += sh->latency[NGX_HTTP_DEVICE_AUTH_BUCKETS];

    p = ngx_slprintf(p, b->end,
            "nginx_device_auth_redis_duration_seconds_bucket{le=\"+Inf\"} "
            "%ui\n"
            "nginx_device_auth_redis_duration_seconds_sum %uA.%06uA\n"
            "nginx_device_auth_redis_duration_seconds_count %uA\n",
            cumulative, sh->latency_usec / 1000000,
            sh->latency_usec % 1000000, sh->latency_count);

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_lookups_in_flight Redis lookups sent "
            "and not yet answered.\n"
            "# TYPE nginx_device_auth_lookups_in_flight gauge\n"
            "nginx_device_auth_lookups_in_flight %uA\n"
            "# HELP nginx_device_auth_redis_connections_ready Workers with a "
            "ready Redis connection.\n"
            "# TYPE nginx_device_auth_redis_connections_ready gauge\n"
            "nginx_device_auth_redis_connections_ready %uA\n"
            "# HELP nginx_device_auth_redis_reconnects_total Redis "
            "connection attempts after a failure or a loss.\n"
            "# TYPE nginx_device_auth_redis_reconnects_total counter\n"
            "nginx_device_auth_redis_reconnects_total %uA\n"
            "# HELP nginx_device_auth_forged_headers_total Client headers "
            "removed because they carried the identity header prefix.\n"
            "# TYPE nginx_device_auth_forged_headers_total counter\n"
            "nginx_device_auth_forged_headers_total %uA\n"
            "# HELP nginx_device_auth_invalidation_links_up Workers whose "
            "device state Redis keeps current (invalidation link up).\n"
            "# TYPE nginx_device_auth_invalidation_links_up gauge\n"
            "nginx_device_auth_invalidation_links_up %uA\n"
            "# HELP nginx_device_auth_ticket_fast_copies_total Session "
            "copies of stateless tickets whose device key OpenSSL decoded "
            "with its built-in EC code (device_auth_fast_tickets).\n"
            "# TYPE nginx_device_auth_ticket_fast_copies_total counter\n"
            "nginx_device_auth_ticket_fast_copies_total %uA\n",
            sh->inflight, sh->ready, sh->reconnects, sh->forged, sh->links,
            sh->ticket_copies);

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_cache_total The device state cache of "
            "the workers: decisions from it (hit), Redis asked (miss), keys "
            "invalidated, entries evicted, caches flushed, decisions in the "
            "grace.\n"
            "# TYPE nginx_device_auth_cache_total counter\n");

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_CM_N; i++) {
        p = ngx_slprintf(p, b->end,
                         "nginx_device_auth_cache_total{event=\"%s\"} %uA\n",
                         ngx_http_device_auth_cache_names[i], sh->cache[i]);
    }

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_invalidation_link_age_seconds Since "
            "a worker's invalidation link last heard from Redis.\n"
            "# TYPE nginx_device_auth_invalidation_link_age_seconds gauge\n");

    now = ngx_current_msec;

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_WORKERS_MAX; i++) {
        if (sh->alive[i] == 0) {
            continue;
        }

        age = (ngx_msec_int_t) (now - (ngx_msec_t) sh->alive[i]);
        if (age < 0) {
            age = 0;
        }

        p = ngx_slprintf(p, b->end,
                         "nginx_device_auth_invalidation_link_age_seconds"
                         "{worker=\"%ui\"} %ui.%03ui\n",
                         i, (ngx_uint_t) age / 1000,
                         (ngx_uint_t) age % 1000);
    }

    p = ngx_slprintf(p, b->end,
            "# HELP nginx_device_auth_redis_canary_missing Workers that find "
            "the device_auth_redis_canary key missing: redis is treated as "
            "unavailable.\n"
            "# TYPE nginx_device_auth_redis_canary_missing gauge\n"
            "nginx_device_auth_redis_canary_missing %uA\n",
            sh->canary_missing);

    if (sh->pins_expiry) {
        p = ngx_slprintf(p, b->end,
                "# HELP nginx_device_auth_pins_earliest_expiry_seconds The "
                "earliest notAfter of the pinned roots and signers, as a Unix "
                "time.\n"
                "# TYPE nginx_device_auth_pins_earliest_expiry_seconds gauge\n"
                "nginx_device_auth_pins_earliest_expiry_seconds %uA\n",
                sh->pins_expiry);
    }

    if (sh->keys_counted) {
        p = ngx_slprintf(p, b->end,
                "# HELP nginx_device_auth_redis_keys Device keys in redis, "
                "counted by SCAN when the edge started or reloaded.\n"
                "# TYPE nginx_device_auth_redis_keys gauge\n"
                "nginx_device_auth_redis_keys{kind=\"revoked\"} %uA\n"
                "nginx_device_auth_redis_keys{kind=\"registered\"} %uA\n",
                sh->keys_revoked, sh->keys_registered);
    }

    if (sh->devices_read) {
        p = ngx_slprintf(p, b->end,
                "# HELP nginx_device_auth_devices_today Distinct devices seen "
                "today (UTC), by the fleet and by this edge (redis "
                "HyperLogLog).\n"
                "# TYPE nginx_device_auth_devices_today gauge\n"
                "nginx_device_auth_devices_today{scope=\"fleet\"} %uA\n"
                "nginx_device_auth_devices_today{scope=\"edge\"} %uA\n",
                sh->devices_fleet, sh->devices_edge);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
