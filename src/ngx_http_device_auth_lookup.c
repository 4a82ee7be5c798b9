
/*
 * Device state lookup.
 *
 * One EVALSHA per check: the script reads the device and signer keys,
 * records the sighting, counts places, writes events and returns the
 * verdict.  A lookup lives outside any request pool, because hiredis keeps
 * its pointer until the reply (or the end of the connection) comes; the
 * requests waiting for it are a queue that their pool cleanups leave, so a
 * request finalized meanwhile (client gone, HTTP/2 stream reset) is never
 * touched again.  With device_auth_recheck, the requests and streams of one
 * TLS connection share the lookup in flight and reuse its good verdict.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_lookup.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_reply.h"


#define NGX_HTTP_DEVICE_AUTH_LOCATION_MAX  128
#define NGX_HTTP_DEVICE_AUTH_EVENT_RATE    60000     /* ms */
#define NGX_HTTP_DEVICE_AUTH_EVENTS_MAX    "100000"
#define NGX_HTTP_DEVICE_AUTH_CMD_MAX       4096


struct ngx_http_device_auth_lookup_s {
    ngx_queue_t                     waiters;    /* of contexts */
    ngx_queue_t                     link;       /* in redis->free */
    ngx_http_device_auth_redis_t   *redis;
    ngx_http_device_auth_conn_t    *dc;         /* shared by a connection */
    void                           *conf;       /* loc conf it was sent for */
    ngx_event_t                     timer;
    ngx_http_device_auth_redis_waiter_t  waiter;
    ngx_msec_int_t                  start;      /* usec, for the histogram */

    unsigned                        done:1;
    unsigned                        in_redis:1; /* hiredis holds it */
    unsigned                        waiting:1;  /* for the handshake */
    unsigned                        retried:1;  /* NOSCRIPT: sent as EVAL */

    /* the command's arguments, kept to resend it as EVAL */
    size_t                          serial_len;
    size_t                          location_len;
    u_char                          serial[NGX_DEVICE_AUTH_SERIAL_MAX];
    u_char                          signer[NGX_DEVICE_AUTH_HEX_LEN];
    u_char                          location[NGX_HTTP_DEVICE_AUTH_LOCATION_MAX];
};


static ngx_int_t ngx_http_device_auth_lookup_send(
    ngx_http_device_auth_lookup_t *lookup, ngx_uint_t eval);
static void ngx_http_device_auth_lookup_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_lookup_timeout(ngx_event_t *ev);
static void ngx_http_device_auth_lookup_ready(void *data, ngx_int_t rc);
static void ngx_http_device_auth_lookup_resolve(
    ngx_http_device_auth_lookup_t *lookup, ngx_device_auth_verdict_t *v);
static void ngx_http_device_auth_lookup_free(
    ngx_http_device_auth_lookup_t *lookup);
static void ngx_http_device_auth_apply(ngx_http_device_auth_ctx_t *ctx,
    ngx_device_auth_verdict_t *v);
static void ngx_http_device_auth_fail(ngx_http_device_auth_ctx_t *ctx,
    const char *why);
static void ngx_http_device_auth_conn_cleanup(void *data);
static ngx_msec_int_t ngx_http_device_auth_usec(void);
static void ngx_http_device_auth_key(ngx_device_auth_resp_t *cmd,
    ngx_http_device_auth_redis_t *redis, const char *open, u_char *data,
    size_t len, const char *tail);


static ngx_str_t  ngx_http_device_auth_actions[] = {
    ngx_string("log"),
    ngx_string("deny"),
    ngx_string("quarantine")
};


void
ngx_http_device_auth_lookup_cleanup(ngx_http_device_auth_redis_t *redis)
{
    ngx_queue_t                    *q;
    ngx_http_device_auth_lookup_t  *lookup;

    while (!ngx_queue_empty(&redis->free)) {
        q = ngx_queue_head(&redis->free);
        ngx_queue_remove(q);

        lookup = ngx_queue_data(q, ngx_http_device_auth_lookup_t, link);
        ngx_free(lookup);
    }
}


ngx_int_t
ngx_http_device_auth_lookup(ngx_http_request_t *r,
    ngx_http_device_auth_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_str_t                          location;
    ngx_queue_t                       *q;
    ngx_connection_t                  *c;
    ngx_pool_cleanup_t                *cln;
    ngx_device_auth_verdict_t          v;
    ngx_http_device_auth_conn_t       *dc;
    ngx_http_device_auth_redis_t      *redis;
    ngx_http_device_auth_lookup_t     *lookup;
    ngx_http_device_auth_loc_conf_t   *dlcf;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);

    /* without device_auth_redis the chain checks decide alone */

    if (dmcf->redis_addr.len == 0) {
        ngx_http_device_auth_decide(ctx, NGX_DECLINED,
                                    NGX_HTTP_DEVICE_AUTH_S_OK, NULL);
        return ctx->rc;
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);
    dc = ctx->dc;

    /*
     * A fresh good verdict of this connection, or a lookup in flight, for
     * this very location configuration: another location may require the
     * registry or count places differently.
     */

    if (dlcf->recheck && dc->verdict_valid && dc->verdict_conf == dlcf
        && ngx_current_msec - dc->verdict_time < dlcf->recheck)
    {
        v.status = (int) dc->verdict;
        v.cause = NGX_DEVICE_AUTH_CAUSE_NONE;
        v.reason_len = 0;

        ngx_http_device_auth_metrics_cache_hit(r);
        ngx_http_device_auth_apply(ctx, &v);
        return ctx->rc;
    }

    /* the place, for the sighting and the log */

    if (ngx_http_complex_value(r, dlcf->location, &location) != NGX_OK
        || ngx_http_device_auth_fault("location"))
    {
        return ngx_http_device_auth_internal_error(ctx, "cannot evaluate "
                                                   "device_auth_location");
    }

    if (location.len == 0) {
        ngx_str_set(&location, "-");
    }

    ctx->location.len = ngx_min(location.len,
                                NGX_HTTP_DEVICE_AUTH_LOCATION_MAX);
    ctx->location.data = location.data;

    if (dlcf->recheck && dc->pending && dc->pending->conf == dlcf) {
        lookup = dc->pending;
        goto wait;
    }

    redis = dmcf->redis;

    if (redis == NULL) {
        ngx_http_device_auth_fail(ctx, "redis not configured in this worker");
        return ctx->rc;
    }

    if (!ngx_queue_empty(&redis->free)) {
        q = ngx_queue_head(&redis->free);
        ngx_queue_remove(q);
        lookup = ngx_queue_data(q, ngx_http_device_auth_lookup_t, link);

    } else {
        lookup = ngx_http_device_auth_fault("lookup") ? NULL
                 : ngx_alloc(sizeof(ngx_http_device_auth_lookup_t),
                             redis->log);
        if (lookup == NULL) {
            return ngx_http_device_auth_internal_error(ctx, "out of memory "
                                                       "for a lookup");
        }
    }

    /* the connection's lookup in flight is forgotten when it closes */

    if (dlcf->recheck && dc->pending == NULL && !dc->cleanup) {
        c = ngx_ssl_get_connection(r->connection->ssl->connection);

        cln = ngx_http_device_auth_fault("conn_cleanup") ? NULL
              : ngx_pool_cleanup_add(c->pool, 0);
        if (cln == NULL) {
            ngx_queue_insert_head(&redis->free, &lookup->link);
            return ngx_http_device_auth_internal_error(ctx, "out of memory "
                                                       "for a lookup");
        }

        cln->handler = ngx_http_device_auth_conn_cleanup;
        cln->data = dc;
        dc->cleanup = 1;
    }

    ngx_memzero(lookup, sizeof(ngx_http_device_auth_lookup_t));

    ngx_queue_init(&lookup->waiters);
    lookup->redis = redis;
    lookup->conf = dlcf;
    lookup->start = ngx_http_device_auth_usec();

    lookup->serial_len = dc->serial.len;
    ngx_memcpy(lookup->serial, dc->serial.data, dc->serial.len);
    ngx_memcpy(lookup->signer, dc->signer, NGX_DEVICE_AUTH_HEX_LEN);
    lookup->location_len = ctx->location.len;
    ngx_memcpy(lookup->location, ctx->location.data, ctx->location.len);

    lookup->timer.handler = ngx_http_device_auth_lookup_timeout;
    lookup->timer.data = lookup;
    lookup->timer.log = redis->log;

    /* nothing is sent before the connection's AUTH and SELECT succeeded */

    lookup->waiter.handler = ngx_http_device_auth_lookup_ready;
    lookup->waiter.data = lookup;

    rc = ngx_http_device_auth_redis_wait(redis, &lookup->waiter);

    if (rc == NGX_AGAIN) {
        lookup->waiting = 1;

    } else if (rc != NGX_OK
               || ngx_http_device_auth_lookup_send(lookup, 0) != NGX_OK)
    {
        ngx_queue_insert_head(&redis->free, &lookup->link);
        ngx_http_device_auth_metrics_redis_error(dmcf,
                                        NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED);
        ngx_http_device_auth_fail(ctx, "redis not connected");
        return ctx->rc;
    }

    /* not cancelable: a graceful reload lets lookups in flight finish */
    ngx_add_timer(&lookup->timer, dmcf->redis_timeout);

    if (dlcf->recheck && dc->pending == NULL) {
        dc->pending = lookup;
        lookup->dc = dc;
    }

wait:

    ngx_queue_insert_tail(&lookup->waiters, &ctx->queue);
    ctx->lookup = lookup;
    ctx->state = NGX_HTTP_DEVICE_AUTH_WAITING;

    /* a client that goes away meanwhile is noticed */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


/*
 * EVALSHA sha 7 keys... args...; after NOSCRIPT (SCRIPT FLUSH, a Redis
 * restarted under us) the same as EVAL with the script, which loads it.
 * The command is written straight into RESP, bounded by its buffer:
 * nothing is allocated for the common case.
 */

static ngx_int_t
ngx_http_device_auth_lookup_send(ngx_http_device_auth_lookup_t *lookup,
    ngx_uint_t eval)
{
    u_char                            *buf;
    u_char                             stack[NGX_HTTP_DEVICE_AUTH_CMD_MAX];
    size_t                             size, len;
    ngx_int_t                          rc;
    ngx_device_auth_resp_t             cmd;
    ngx_http_device_auth_redis_t      *redis;
    ngx_http_device_auth_loc_conf_t   *dlcf;

    redis = lookup->redis;
    dlcf = lookup->conf;

    buf = stack;
    size = sizeof(stack);

    if (eval) {
        size += ngx_http_device_auth_script_len;

        buf = ngx_alloc(size, redis->log);
        if (buf == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_device_auth_resp_init(&cmd, buf, size);

    if (eval) {
        ngx_device_auth_resp_array(&cmd, 20);
        ngx_device_auth_resp_bulk(&cmd, "EVAL", 4);
        ngx_device_auth_resp_bulk(&cmd, ngx_http_device_auth_script,
                                  ngx_http_device_auth_script_len);
        ngx_device_auth_resp_bulk(&cmd, "7", 1);

    } else {
        ngx_device_auth_resp_raw(&cmd, redis->head, redis->head_len);
    }

    /* KEYS: the {serial} hash tag keeps a device's keys in one slot */

    ngx_http_device_auth_key(&cmd, redis, "{", lookup->serial,
                             lookup->serial_len, "}:revoked");
    ngx_http_device_auth_key(&cmd, redis, "{", lookup->serial,
                             lookup->serial_len, "}:registered");
    ngx_http_device_auth_key(&cmd, redis, "signer:", lookup->signer,
                             NGX_DEVICE_AUTH_HEX_LEN, ":revoked");
    ngx_http_device_auth_key(&cmd, redis, "signer:", lookup->signer,
                             NGX_DEVICE_AUTH_HEX_LEN, ":compromised");
    ngx_http_device_auth_key(&cmd, redis, "{", lookup->serial,
                             lookup->serial_len, "}:seen");
    ngx_http_device_auth_key(&cmd, redis, "", (u_char *) "events", 6, "");
    ngx_http_device_auth_key(&cmd, redis, "{", lookup->serial,
                             lookup->serial_len, "}:evrl");

    /* ARGV: those of the location, then those of the request */

    ngx_device_auth_resp_raw(&cmd, dlcf->redis_args.data,
                             dlcf->redis_args.len);
    ngx_device_auth_resp_bulk(&cmd, lookup->location, lookup->location_len);
    ngx_device_auth_resp_bulk(&cmd, lookup->serial, lookup->serial_len);
    ngx_device_auth_resp_bulk(&cmd, lookup->signer, NGX_DEVICE_AUTH_HEX_LEN);

    len = ngx_device_auth_resp_len(&cmd);

    if (len == 0) {
        ngx_log_error(NGX_LOG_ALERT, redis->log, 0,
                      "device_auth: lookup command of serial %*s does not "
                      "fit in %uz bytes", lookup->serial_len, lookup->serial,
                      size);
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_device_auth_redis_send(redis,
                                             ngx_http_device_auth_lookup_reply,
                                             lookup, buf, len);
    }

    if (buf != stack) {
        ngx_free(buf);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    lookup->in_redis = 1;

    return NGX_OK;
}


/*
 * The script's arguments that do not change from request to request of a
 * location, formatted once: the window, the limit, the action, whether the
 * registry is required, the edge name, the event rate and stream length.
 */

char *
ngx_http_device_auth_lookup_prepare(ngx_conf_t *cf,
    ngx_http_device_auth_loc_conf_t *dlcf)
{
    u_char                  *last;
    u_char                   num[NGX_INT64_LEN];
    size_t                   size;
    ngx_str_t               *action, *edge;
    ngx_device_auth_resp_t   args;

    action = &ngx_http_device_auth_actions[dlcf->dup_action];
    edge = &cf->cycle->hostname;

    size = 256 + edge->len;

    dlcf->redis_args.data = ngx_pnalloc(cf->pool, size);
    if (dlcf->redis_args.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_device_auth_resp_init(&args, dlcf->redis_args.data, size);

    last = ngx_sprintf(num, "%M", dlcf->dup_window);
    ngx_device_auth_resp_bulk(&args, num, last - num);
    last = ngx_sprintf(num, "%i", dlcf->dup_limit);
    ngx_device_auth_resp_bulk(&args, num, last - num);
    ngx_device_auth_resp_bulk(&args, action->data, action->len);
    ngx_device_auth_resp_bulk(&args, dlcf->registry ? "1" : "0", 1);
    ngx_device_auth_resp_bulk(&args, edge->data, edge->len);
    last = ngx_sprintf(num, "%d", NGX_HTTP_DEVICE_AUTH_EVENT_RATE);
    ngx_device_auth_resp_bulk(&args, num, last - num);
    ngx_device_auth_resp_bulk(&args, NGX_HTTP_DEVICE_AUTH_EVENTS_MAX,
                              sizeof(NGX_HTTP_DEVICE_AUTH_EVENTS_MAX) - 1);

    dlcf->redis_args.len = ngx_device_auth_resp_len(&args);

    if (dlcf->redis_args.len == 0) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_device_auth_lookup_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_lookup_t *lookup = privdata;

    ngx_device_auth_verdict_t      v;
    ngx_http_device_auth_redis_t  *redis;

    redis = lookup->redis;
    lookup->in_redis = 0;

    if (redis->inflight) {
        redis->inflight--;
    }

    ngx_http_device_auth_metrics_worker(redis->conf, redis->inflight,
                                        redis->state
                                        == NGX_HTTP_DEVICE_AUTH_REDIS_READY);

    if (lookup->done) {
        /* timed out before: only the memory is left to give back */
        ngx_http_device_auth_lookup_free(lookup);
        return;
    }

    ngx_device_auth_reply_parse(r, (char *) lookup->serial,
                                lookup->serial_len, &v);

    if (r) {
        ngx_http_device_auth_metrics_latency(redis->conf,
                                 ngx_http_device_auth_usec() - lookup->start);
    }

    if (v.status == NGX_DEVICE_AUTH_V_ERROR
        || v.status == NGX_DEVICE_AUTH_V_NOSCRIPT
        || v.status == NGX_DEVICE_AUTH_V_DESYNC)
    {
        ngx_http_device_auth_metrics_redis_error(redis->conf,
                  r == NULL ? NGX_HTTP_DEVICE_AUTH_RE_DISCONNECTED
                  : v.status == NGX_DEVICE_AUTH_V_NOSCRIPT
                    ? NGX_HTTP_DEVICE_AUTH_RE_NOSCRIPT
                  : ((redisReply *) r)->type == REDIS_REPLY_ERROR
                    ? NGX_HTTP_DEVICE_AUTH_RE_ERROR_REPLY
                    : NGX_HTTP_DEVICE_AUTH_RE_BAD_REPLY);
    }

    if (v.status == NGX_DEVICE_AUTH_V_NOSCRIPT && !lookup->retried) {
        lookup->retried = 1;

        ngx_log_error(NGX_LOG_NOTICE, redis->log, 0,
                      "device_auth: script not in the redis cache, "
                      "sending it again");

        if (ngx_http_device_auth_lookup_send(lookup, 1) == NGX_OK) {
            return;
        }
    }

    if (v.status == NGX_DEVICE_AUTH_V_ERROR
        || v.status == NGX_DEVICE_AUTH_V_NOSCRIPT
        || v.status == NGX_DEVICE_AUTH_V_DESYNC)
    {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "device_auth: lookup of serial %*s failed: %s",
                      lookup->serial_len, lookup->serial, v.reason);
    }

    ngx_http_device_auth_lookup_resolve(lookup, &v);
    ngx_http_device_auth_lookup_free(lookup);

    /*
     * Replies and lookups no longer pair up: every reply still to come may
     * be another's.  The connection is dropped (the lookups in flight fail
     * by the fail mode) and opened again.
     */

    if (v.status == NGX_DEVICE_AUTH_V_DESYNC) {
        ngx_http_device_auth_redis_reset(redis, "its replies no longer "
                                         "match the lookups");
    }
}


static void
ngx_http_device_auth_lookup_timeout(ngx_event_t *ev)
{
    ngx_http_device_auth_lookup_t *lookup = ev->data;

    ngx_device_auth_verdict_t      v;
    ngx_http_device_auth_redis_t  *redis;

    redis = lookup->redis;

    ngx_memzero(&v, sizeof(ngx_device_auth_verdict_t));
    v.status = NGX_DEVICE_AUTH_V_ERROR;
    v.reason_len = ngx_sprintf((u_char *) v.reason,
                               "redis timeout after %M ms",
                               redis->conf->redis_timeout)
                   - (u_char *) v.reason;

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "device_auth: lookup of serial %*s: %s",
                  lookup->serial_len, lookup->serial, v.reason);

    ngx_http_device_auth_metrics_redis_error(redis->conf,
                                             NGX_HTTP_DEVICE_AUTH_RE_TIMEOUT);

    ngx_http_device_auth_lookup_resolve(lookup, &v);

    if (lookup->waiting) {
        /* never sent: the handshake has its own timer */
        ngx_queue_remove(&lookup->waiter.queue);
        lookup->waiting = 0;
        ngx_http_device_auth_lookup_free(lookup);
        return;
    }

    /*
     * Replies come in order: one that is late holds back all behind it.
     * The connection is dropped; hiredis then gives this lookup back.
     */

    ngx_http_device_auth_redis_reset(redis, "lookup timed out");
}


/* the connection's handshake is over: send the lookup, or fail it */

static void
ngx_http_device_auth_lookup_ready(void *data, ngx_int_t rc)
{
    ngx_http_device_auth_lookup_t *lookup = data;

    ngx_device_auth_verdict_t      v;
    ngx_http_device_auth_redis_t  *redis;

    redis = lookup->redis;
    lookup->waiting = 0;

    if (rc == NGX_OK && ngx_http_device_auth_lookup_send(lookup, 0) == NGX_OK)
    {
        return;
    }

    ngx_memzero(&v, sizeof(ngx_device_auth_verdict_t));
    v.status = NGX_DEVICE_AUTH_V_ERROR;
    v.reason_len = ngx_sprintf((u_char *) v.reason,
                               "redis not connected: %*s",
                               ngx_min(redis->down_len, 200), redis->down)
                   - (u_char *) v.reason;

    ngx_http_device_auth_metrics_redis_error(redis->conf,
                                        NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED);

    ngx_http_device_auth_lookup_resolve(lookup, &v);
    ngx_http_device_auth_lookup_free(lookup);
}


/* wakes every request waiting for the lookup, once */

static void
ngx_http_device_auth_lookup_resolve(ngx_http_device_auth_lookup_t *lookup,
    ngx_device_auth_verdict_t *v)
{
    ngx_queue_t                  *q;
    ngx_http_device_auth_ctx_t   *ctx;
    ngx_http_device_auth_conn_t  *dc;

    lookup->done = 1;

    if (lookup->timer.timer_set) {
        ngx_del_timer(&lookup->timer);
    }

    dc = lookup->dc;

    if (dc) {
        dc->pending = NULL;
        lookup->dc = NULL;

        /*
         * only an "ok" is kept: a clone's "duplicate" is a refusal where
         * the action is deny, and its reason (the places) is not kept
         */

        if (v->status == NGX_DEVICE_AUTH_V_OK) {
            dc->verdict = v->status;
            dc->verdict_conf = lookup->conf;
            dc->verdict_time = ngx_current_msec;
            dc->verdict_valid = 1;

        } else {
            dc->verdict_valid = 0;
        }
    }

    /*
     * Waking a request may finalize others, and even close the connection:
     * each waiter is taken off the queue before it runs.
     */

    while (!ngx_queue_empty(&lookup->waiters)) {
        q = ngx_queue_head(&lookup->waiters);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_device_auth_ctx_t, queue);
        ctx->lookup = NULL;

        if (lookup->redis->exiting) {
            /* the worker is terminating: nothing runs requests any more */
            ctx->state = NGX_HTTP_DEVICE_AUTH_DONE;
            ctx->rc = NGX_HTTP_SERVICE_UNAVAILABLE;
            continue;
        }

        ngx_http_device_auth_apply(ctx, v);
        ngx_http_device_auth_wake(ctx);
    }
}


static void
ngx_http_device_auth_lookup_free(ngx_http_device_auth_lookup_t *lookup)
{
    if (!lookup->done || lookup->in_redis) {
        return;
    }

    if (lookup->redis->exiting) {
        ngx_free(lookup);
        return;
    }

    ngx_queue_insert_head(&lookup->redis->free, &lookup->link);
}


/* the verdict, as the location of each waiting request configures it */

static void
ngx_http_device_auth_apply(ngx_http_device_auth_ctx_t *ctx,
    ngx_device_auth_verdict_t *v)
{
    ngx_str_t                         reason;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_device_auth_module);

    ngx_str_null(&reason);

    if (v->reason_len) {
        reason.len = v->reason_len;
        reason.data = ngx_pnalloc(ctx->request->pool, v->reason_len);
        if (reason.data == NULL) {
            ngx_http_device_auth_decide(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        NGX_HTTP_DEVICE_AUTH_S_ERROR, NULL);
            return;
        }

        ngx_memcpy(reason.data, v->reason, v->reason_len);
    }

    /* a device refused anywhere loses the verdict its connection keeps */

    if (v->status != NGX_DEVICE_AUTH_V_OK) {
        ctx->dc->verdict_valid = 0;
    }

    switch (v->status) {

    case NGX_DEVICE_AUTH_V_OK:
        ngx_http_device_auth_decide(ctx, NGX_DECLINED,
                                    NGX_HTTP_DEVICE_AUTH_S_OK, NULL);
        return;

    case NGX_DEVICE_AUTH_V_DUPLICATE:
        ngx_http_device_auth_decide(ctx,
                               dlcf->dup_action == NGX_HTTP_DEVICE_AUTH_DUP_LOG
                               ? NGX_DECLINED : NGX_HTTP_FORBIDDEN,
                               NGX_HTTP_DEVICE_AUTH_S_DUPLICATE, &reason);
        return;

    case NGX_DEVICE_AUTH_V_REVOKED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_REVOKED, &reason);
        return;

    case NGX_DEVICE_AUTH_V_SIGNER_REVOKED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_SIGNER_REVOKED,
                                    &reason);
        return;

    case NGX_DEVICE_AUTH_V_UNREGISTERED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                            v->cause == NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED
                            ? NGX_HTTP_DEVICE_AUTH_S_SIGNER_COMPROMISED
                            : NGX_HTTP_DEVICE_AUTH_S_UNREGISTERED,
                            &reason);
        return;

    case NGX_DEVICE_AUTH_V_QUARANTINED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_QUARANTINED,
                                    &reason);
        return;

    default:
        ngx_http_device_auth_fail(ctx, v->reason);
        return;
    }
}


/* Redis unreachable, too slow or answering nonsense: the fail mode */

static void
ngx_http_device_auth_fail(ngx_http_device_auth_ctx_t *ctx, const char *why)
{
    ngx_str_t                         reason;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_device_auth_module);

    reason.len = ngx_strlen(why);
    reason.data = ngx_pnalloc(ctx->request->pool, reason.len);
    if (reason.data == NULL) {
        reason.len = 0;
    } else {
        ngx_memcpy(reason.data, why, reason.len);
    }

    if (dlcf->fail_mode == NGX_HTTP_DEVICE_AUTH_FAIL_OPEN) {
        ngx_http_device_auth_decide(ctx, NGX_DECLINED,
                                    NGX_HTTP_DEVICE_AUTH_S_UNCHECKED, &reason);
        return;
    }

    ngx_http_device_auth_decide(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_DEVICE_AUTH_S_ERROR, &reason);
}


static void
ngx_http_device_auth_conn_cleanup(void *data)
{
    ngx_http_device_auth_conn_t *dc = data;

    /* the connection is gone; its lookup in flight must forget it */

    if (dc->pending) {
        dc->pending->dc = NULL;
        dc->pending = NULL;
    }
}


/* a key, "<prefix><open><data><tail>", as a RESP bulk string */

static void
ngx_http_device_auth_key(ngx_device_auth_resp_t *cmd,
    ngx_http_device_auth_redis_t *redis, const char *open, u_char *data,
    size_t len, const char *tail)
{
    size_t  olen, tlen;

    olen = ngx_strlen(open);
    tlen = ngx_strlen(tail);

    ngx_device_auth_resp_bulk_start(cmd, redis->conf->redis_prefix.len + olen
                                         + len + tlen);
    ngx_device_auth_resp_raw(cmd, redis->conf->redis_prefix.data,
                             redis->conf->redis_prefix.len);
    ngx_device_auth_resp_raw(cmd, open, olen);
    ngx_device_auth_resp_raw(cmd, data, len);
    ngx_device_auth_resp_raw(cmd, tail, tlen);
    ngx_device_auth_resp_crlf(cmd);
}


/* the cached nginx time is in ms: a Redis round trip is well below that */

static ngx_msec_int_t
ngx_http_device_auth_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (ngx_msec_int_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
