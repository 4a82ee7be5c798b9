
/*
 * The device check of a request, from the state the worker holds.
 *
 * The decision needs the facts of the device and of its signer, and, where
 * clones are counted, a sighting of the device at the request's place.
 * Facts that the cache holds for the current epoch of the invalidation
 * link are used as they are; a sighting made from this worker less than a
 * tenth of the window ago still counts.  A request whose facts are cached
 * and whose sighting is fresh makes no Redis round trip at all.  Whatever
 * is missing is asked for in one pipelined round trip (the device's facts
 * and sighting in one script call, the signer's two facts), and the
 * request waits for it, as do the other requests for the same device
 * (HTTP/2 streams, keepalive requests, other connections) meanwhile.  When
 * the reply came, the request checks again from the top.
 *
 * Without a link (Redis down, or restarting), the facts of the epoch that
 * just ended serve for device_auth_grace: a device whose facts were cached
 * keeps its verdict through a Redis restart; no sighting is recorded
 * meanwhile.  Past the grace, or for a device not cached, the fail mode
 * decides, as before.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_ops.h"
#include "ngx_http_device_auth_lookup.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_http_device_auth_stats.h"
#include "ngx_device_auth_decide.h"


static ngx_int_t ngx_http_device_auth_lookup_unsent(
    ngx_http_device_auth_ctx_t *ctx, ngx_http_device_auth_link_t *link,
    ngx_int_t rc);
static ngx_int_t ngx_http_device_auth_lookup_wait(
    ngx_http_device_auth_ctx_t *ctx, ngx_http_device_auth_entry_t *e);
static void ngx_http_device_auth_lookup_wake(void *data,
    ngx_http_device_auth_op_t *op);
static ngx_int_t ngx_http_device_auth_lookup_decide(
    ngx_http_device_auth_ctx_t *ctx, ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *dev, ngx_http_device_auth_entry_t *sig,
    ngx_uint_t graced);
static void ngx_http_device_auth_apply(ngx_http_device_auth_ctx_t *ctx,
    ngx_device_auth_verdict_t *v, ngx_uint_t graced);
static void ngx_http_device_auth_fail(ngx_http_device_auth_ctx_t *ctx,
    ngx_str_t *why);
static ngx_int_t ngx_http_device_auth_copy(ngx_http_request_t *r,
    ngx_str_t *dst, u_char *data, size_t len);
static ngx_int_t ngx_http_device_auth_unavailable(
    ngx_http_device_auth_ctx_t *ctx, ngx_http_device_auth_link_t *link);


ngx_int_t
ngx_http_device_auth_lookup(ngx_http_request_t *r,
    ngx_http_device_auth_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_str_t                          why;
    ngx_uint_t                         state, need_dev, need_sig, sight;
    ngx_uint_t                         graced;
    u_char                             buf[NGX_DEVICE_AUTH_REPLY_REASON_MAX];
    ngx_http_device_auth_link_t       *link;
    ngx_http_device_auth_conn_t       *dc;
    ngx_http_device_auth_entry_t      *dev, *sig, *wait;
    ngx_http_device_auth_op_args_t     args;
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
    link = dmcf->link;

    if (link == NULL) {
        ngx_str_set(&why, "redis not configured in this worker");
        ngx_http_device_auth_fail(ctx, &why);
        return ctx->rc;
    }

    /* the place, for the sighting and the log, once per request */

    if (ctx->location.data == NULL) {
        if (ngx_http_complex_value(r, dlcf->location, &ctx->location)
            != NGX_OK
            || ngx_http_device_auth_fault("location"))
        {
            return ngx_http_device_auth_internal_error(ctx, "cannot "
                                                "evaluate device_auth_location");
        }

        if (ctx->location.len == 0) {
            ngx_str_set(&ctx->location, "-");
        }

        ctx->location.len = ngx_min(ctx->location.len,
                                    NGX_HTTP_DEVICE_AUTH_PLACE_MAX);
    }

    /* the day's distinct devices: once per connection */

    if (!dc->counted && link->cluster) {
        /* the node of the day's keys may not be connected yet: later */
        dc->counted = (ngx_http_device_auth_stats_device(link, &dc->serial)
                       == NGX_OK);

    } else if (!dc->counted) {
        state = ngx_http_device_auth_link_state(link);

        if (state == NGX_HTTP_DEVICE_AUTH_LINK_UP
            || state == NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED)
        {
            (void) ngx_http_device_auth_stats_device(link, &dc->serial);
            dc->counted = 1;
        }
    }

    /* found once per connection, and held by it */

    if (dc->dev) {
        dev = dc->dev;
        sig = dc->sig;

    } else {
        dev = ngx_http_device_auth_cache_get(&link->cache, 0, dc->serial.data,
                               dc->serial.len,
                               ngx_http_device_auth_cache_hash(0,
                                             dc->serial.data, dc->serial.len));
        sig = ngx_http_device_auth_cache_get(&link->cache, 1, dc->signer,
                               NGX_DEVICE_AUTH_HEX_LEN,
                               ngx_http_device_auth_cache_hash(1, dc->signer,
                                                     NGX_DEVICE_AUTH_HEX_LEN));

        if (dev == NULL || sig == NULL) {
            return ngx_http_device_auth_internal_error(ctx, "out of memory "
                                                       "for the device state");
        }

        if (ngx_http_device_auth_cache_hold(&link->cache, dev, dc->pool)
            == NGX_OK
            && ngx_http_device_auth_cache_hold(&link->cache, sig, dc->pool)
               == NGX_OK)
        {
            dc->dev = dev;
            dc->sig = sig;
        }
    }

    /* Redis failed this request once: what the grace allows, or the fail
     * mode */

    if (ctx->failed) {
        if (ngx_http_device_auth_cache_in_grace(&link->cache, dev, sig,
                                                dlcf->grace))
        {
            return ngx_http_device_auth_lookup_decide(ctx, link, dev, sig, 1);
        }

        ngx_http_device_auth_fail(ctx, &ctx->failure);
        return ctx->rc;
    }

    /* read for this request (untracked, they are not kept): they serve */

    need_dev = !(ctx->dev_seq && dev->read_seq >= ctx->dev_seq)
               && !ngx_http_device_auth_cache_current(&link->cache, dev);
    need_sig = !(ctx->sig_seq && sig->read_seq >= ctx->sig_seq)
               && !ngx_http_device_auth_cache_current(&link->cache, sig);

    sight = dlcf->dup_limit > 0 && !ctx->sighted
            && ngx_http_device_auth_cache_sighting(&link->cache, dev,
                                                   &ctx->location,
                                                   dlcf->dup_window,
                                                   dlcf->dup_limit)
               == NULL;

    /*
     * A cluster: the facts whose node is down serve in their grace while
     * those of another node are read (a device and its signer's keys are
     * in different slots); a device whose node is down is not sighted.
     */

    graced = 0;

    if (link->cluster) {
        if (need_dev
            && ngx_http_device_auth_cache_graced(&link->cache, dev,
                                                 dlcf->grace))
        {
            need_dev = 0;
            sight = 0;
            graced = 1;
        }

        if (need_sig
            && ngx_http_device_auth_cache_graced(&link->cache, sig,
                                                 dlcf->grace))
        {
            need_sig = 0;
            graced = 1;
        }
    }

    if (!need_dev && !need_sig) {
        ngx_http_device_auth_metrics_cache(dmcf,
                                           NGX_HTTP_DEVICE_AUTH_CM_HIT);

        if (!sight) {
            return ngx_http_device_auth_lookup_decide(ctx, link, dev, sig,
                                                      graced);
        }

        /* refused by the facts: no sighting needed */

        rc = ngx_http_device_auth_lookup_decide(ctx, link, dev, sig, 2);
        if (rc != NGX_AGAIN) {
            return rc;
        }
    }

    state = ngx_http_device_auth_link_state_for(link,
                                          (need_dev || sight) ? dev : NULL,
                                          need_sig ? sig : NULL);

    if (state == NGX_HTTP_DEVICE_AUTH_LINK_DOWN) {

        /* nothing to ask now: the grace, or the fail mode */

        if (!need_dev && !need_sig) {
            /* a sighting that cannot be made: the facts decide */
            return ngx_http_device_auth_lookup_decide(ctx, link, dev, sig, 1);
        }

        if (ngx_http_device_auth_cache_in_grace(&link->cache, dev, sig,
                                                dlcf->grace))
        {
            ngx_http_device_auth_metrics_redis_error(dmcf,
                               ngx_http_device_auth_link_why(link, buf,
                                                             sizeof(buf),
                                                             &why.len));
            return ngx_http_device_auth_lookup_decide(ctx, link, dev, sig, 1);
        }

        return ngx_http_device_auth_unavailable(ctx, link);
    }

    ngx_http_device_auth_metrics_cache(dmcf, NGX_HTTP_DEVICE_AUTH_CM_MISS);

    /*
     * One round trip for all that is missing; or join what is in flight.
     * The request waits for the device's operation first (its sighting
     * counts for the request it was made for), then for the signer's if
     * that is still in flight.  A sighting reads the device's facts too:
     * a revoked device is not sighted, its revocation never overwritten
     * by a quarantine.  With the link up, it also waits for the signer's
     * facts, as the checks' order wants (a device of a revoked signer is
     * not sighted): they are kept then, so that costs a second round
     * trip once per signer.  Untracked, they would be read again for
     * each request: the sighting goes in the same round trip.
     */

    wait = NULL;

    if (need_sig && state == NGX_HTTP_DEVICE_AUTH_LINK_UP) {
        sight = 0;
    }

    if (need_dev || sight) {
        if (dev->op == NULL) {
            args.what = NGX_HTTP_DEVICE_AUTH_OP_FETCH
                        | (sight ? NGX_HTTP_DEVICE_AUTH_OP_SIGHT : 0);
            args.place = ctx->location;
            args.window = dlcf->dup_window;
            args.limit = dlcf->dup_limit;
            args.action = dlcf->dup_action;
            args.signer = dc->signer;

            rc = ngx_http_device_auth_op_device(link, dev, &args);

            if (rc != NGX_OK) {
                return ngx_http_device_auth_lookup_unsent(ctx, link, rc);
            }
        }

        ctx->dev_seq = ((ngx_http_device_auth_op_t *) dev->op)->seq;

        wait = dev;
    }

    if (need_sig) {
        if (sig->op == NULL) {
            rc = ngx_http_device_auth_op_signer(link, sig);

            if (rc != NGX_OK) {
                return ngx_http_device_auth_lookup_unsent(ctx, link, rc);
            }
        }

        ctx->sig_seq = ((ngx_http_device_auth_op_t *) sig->op)->seq;

        if (wait == NULL) {
            wait = sig;
        }
    }

    return ngx_http_device_auth_lookup_wait(ctx, wait);
}


/* an operation that could not be started: no memory, or no link now */

static ngx_int_t
ngx_http_device_auth_lookup_unsent(ngx_http_device_auth_ctx_t *ctx,
    ngx_http_device_auth_link_t *link, ngx_int_t rc)
{
    if (rc == NGX_ERROR) {
        return ngx_http_device_auth_internal_error(ctx, "out of memory for "
                                                   "a lookup");
    }

    return ngx_http_device_auth_unavailable(ctx, link);
}


/* the request waits for the entry's operation, then checks again */

static ngx_int_t
ngx_http_device_auth_lookup_wait(ngx_http_device_auth_ctx_t *ctx,
    ngx_http_device_auth_entry_t *e)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    ctx->waiter.handler = ngx_http_device_auth_lookup_wake;
    ctx->waiter.data = ctx;

    ngx_http_device_auth_op_wait(e, &ctx->waiter);
    ctx->state = NGX_HTTP_DEVICE_AUTH_WAITING;

    /* a client that goes away meanwhile is noticed */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


/* an operation the request waited for is over: what it brought */

static void
ngx_http_device_auth_lookup_wake(void *data, ngx_http_device_auth_op_t *op)
{
    ngx_http_device_auth_ctx_t *ctx = data;

    ngx_http_request_t                *r;
    ngx_http_device_auth_loc_conf_t   *dlcf;
    ngx_http_device_auth_main_conf_t  *dmcf;

    r = ctx->request;
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);
    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);

    ctx->state = NGX_HTTP_DEVICE_AUTH_NEW;

    if (op->failed) {
        ctx->failed = 1;

        if (ngx_http_device_auth_copy(r, &ctx->failure,
                                      (u_char *) op->result.reason,
                                      op->result.reason_len)
            != NGX_OK)
        {
            ngx_str_set(&ctx->failure, "redis lookup failed");
        }

    } else {

        /* a sighting counts for the request whose place it was */

        /*
         * A sighting counts for the request whose place it was; one the
         * script did not make (the device is revoked) is not asked again.
         */

        if ((op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGHT)
            && op->window == dlcf->dup_window && op->limit == dlcf->dup_limit
            && op->place_len == ctx->location.len
            && ngx_memcmp(op->place, ctx->location.data, op->place_len) == 0)
        {
            ctx->sighted = 1;
            ctx->sight = op->sight;

            if (ngx_http_device_auth_copy(r, &ctx->sight_reason,
                                          (u_char *) op->result.reason,
                                          op->result.reason_len)
                != NGX_OK)
            {
                ngx_str_null(&ctx->sight_reason);
            }
        }
    }

    if (dmcf->link->exiting) {
        /* the worker is terminating: nothing runs requests any more */
        ctx->state = NGX_HTTP_DEVICE_AUTH_DONE;
        ctx->rc = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    ngx_http_device_auth_wake(ctx);
}


/*
 * The decision from the facts of the entries and the request's sighting.
 * graced: 1 when the facts serve for the grace; 2 when a sighting is still
 * to come: NGX_AGAIN then, unless the facts refuse the device already.
 */

static ngx_int_t
ngx_http_device_auth_lookup_decide(ngx_http_device_auth_ctx_t *ctx,
    ngx_http_device_auth_link_t *link, ngx_http_device_auth_entry_t *dev,
    ngx_http_device_auth_entry_t *sig, ngx_uint_t graced)
{
    ngx_device_auth_facts_t           facts;
    ngx_device_auth_rules_t           rules;
    ngx_device_auth_verdict_t         v;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_device_auth_module);

    ngx_http_device_auth_cache_facts(dev, sig, &facts);
    facts.cert_key = ctx->dc->spki;

    if (ctx->sighted) {
        facts.sight = ctx->sight;
        facts.sight_reason.data = (char *) ctx->sight_reason.data;
        facts.sight_reason.len = ctx->sight_reason.len;

    } else if (graced != 2) {
        facts.sight = NGX_DEVICE_AUTH_SIGHT_OK;
    }

    rules.registry = dlcf->registry;
    rules.key_binding = (int) dlcf->key_binding;

    ngx_device_auth_decide(&facts, &rules, &v);

    if (graced == 2) {
        if (v.status == NGX_DEVICE_AUTH_V_OK) {
            return NGX_AGAIN;
        }

        graced = 0;
    }

    /* the event of a refusal by the facts (a sighting sent its own) */

    if (v.event != NGX_DEVICE_AUTH_EV_NONE
        && !(ctx->sighted && ctx->sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED))
    {
        ngx_http_device_auth_op_event(link, dev, v.event, ctx->dc->signer,
                                      &ctx->location, &v);
    }

    ngx_http_device_auth_apply(ctx, &v, graced);

    return ctx->rc;
}


/* the verdict, as the location of the request configures it */

static void
ngx_http_device_auth_apply(ngx_http_device_auth_ctx_t *ctx,
    ngx_device_auth_verdict_t *v, ngx_uint_t graced)
{
    ngx_str_t                         reason;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_device_auth_module);

    if (ngx_http_device_auth_copy(ctx->request, &reason, (u_char *) v->reason,
                                  v->reason_len)
        != NGX_OK)
    {
        (void) ngx_http_device_auth_internal_error(ctx, "out of memory");
        return;
    }

    if (graced) {
        ngx_http_device_auth_metrics_cache(
                      ngx_http_get_module_main_conf(ctx->request,
                                                    ngx_http_device_auth_module),
                      NGX_HTTP_DEVICE_AUTH_CM_GRACE);
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
                                    NGX_HTTP_DEVICE_AUTH_S_UNREGISTERED,
                                    &reason);
        return;

    case NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_SIGNER_COMPROMISED,
                                    &reason);
        return;

    case NGX_DEVICE_AUTH_V_KEY_MISMATCH:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_KEY_MISMATCH,
                                    &reason);
        return;

    default: /* NGX_DEVICE_AUTH_V_QUARANTINED */
        ngx_http_device_auth_decide(ctx, NGX_HTTP_FORBIDDEN,
                                    NGX_HTTP_DEVICE_AUTH_S_QUARANTINED,
                                    &reason);
        return;
    }
}


/* Redis unreachable, too slow or answering nonsense: the fail mode */

static void
ngx_http_device_auth_fail(ngx_http_device_auth_ctx_t *ctx, ngx_str_t *why)
{
    ngx_str_t                         reason;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_device_auth_module);

    if (ngx_http_device_auth_copy(ctx->request, &reason, why->data, why->len)
        != NGX_OK)
    {
        ngx_str_null(&reason);
    }

    if (dlcf->fail_mode == NGX_HTTP_DEVICE_AUTH_FAIL_OPEN) {
        ngx_http_device_auth_decide(ctx, NGX_DECLINED,
                                    NGX_HTTP_DEVICE_AUTH_S_UNCHECKED, &reason);
        return;
    }

    ngx_http_device_auth_decide(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_DEVICE_AUTH_S_ERROR, &reason);
}


/*
 * Redis cannot be asked now: the fail mode decides, with why (not
 * connected and what the connection was refused for, or the canary
 * missing), in the metrics too
 */

static ngx_int_t
ngx_http_device_auth_unavailable(ngx_http_device_auth_ctx_t *ctx,
    ngx_http_device_auth_link_t *link)
{
    size_t                     len;
    ngx_str_t                  why;
    ngx_uint_t                 kind;
    ngx_device_auth_verdict_t  v;
    u_char                     buf[NGX_DEVICE_AUTH_REPLY_REASON_MAX];

    kind = ngx_http_device_auth_link_why(link, buf, sizeof(buf), &len);

    ngx_http_device_auth_metrics_redis_error(link->conf, kind);

    /* printable, without quotes, as every reason */

    ngx_memzero(&v, sizeof(ngx_device_auth_verdict_t));
    ngx_device_auth_verdict_text(&v, "", (char *) buf, len);

    why.len = v.reason_len;
    why.data = (u_char *) v.reason;

    ngx_http_device_auth_fail(ctx, &why);

    return ctx->rc;
}


static ngx_int_t
ngx_http_device_auth_copy(ngx_http_request_t *r, ngx_str_t *dst, u_char *data,
    size_t len)
{
    dst->len = len;
    dst->data = (u_char *) "";

    if (len == 0) {
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(r->pool, len);
    if (dst->data == NULL) {
        dst->len = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, data, len);

    return NGX_OK;
}
