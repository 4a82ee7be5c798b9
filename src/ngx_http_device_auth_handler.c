
/*
 * The per-request decision.
 *
 * It runs first in the rewrite phase, not in the access phase: "return"
 * and "rewrite" in a location, and "satisfy any", would otherwise answer
 * or let a request through before the device was checked.  The context
 * survives internal redirects (error_page, try_files, rewrite ... last)
 * through its pool cleanup, so a request is decided, and looked up in
 * Redis, once.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_headers.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_lookup.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_http_device_auth_log.h"


static void ngx_http_device_auth_ctx_cleanup(void *data);


/* $device_auth_status, and the name of the decision everywhere else */

ngx_str_t  ngx_http_device_auth_status_names[NGX_HTTP_DEVICE_AUTH_S_N] = {
    ngx_string("ok"),
    ngx_string("no_cert"),
    ngx_string("invalid"),
    ngx_string("misdirected"),
    ngx_string("revoked"),
    ngx_string("signer_revoked"),
    ngx_string("signer_compromised"),
    ngx_string("unregistered"),
    ngx_string("key_mismatch"),
    ngx_string("quarantined"),
    ngx_string("duplicate"),
    ngx_string("unchecked"),
    ngx_string("error"),
    ngx_string("too_early")
};


ngx_int_t
ngx_http_device_auth_handler(ngx_http_request_t *r)
{
    ngx_str_t                          reason, early;
    ngx_pool_cleanup_t                *cln;
    ngx_http_device_auth_ctx_t        *ctx;
    ngx_http_device_auth_conn_t       *dc;
    ngx_http_device_auth_loc_conf_t   *dlcf;
    ngx_http_device_auth_srv_conf_t   *dscf;

    /* a named location starts here, not at SERVER_REWRITE */

    if (r->internal && ngx_http_device_auth_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);

    /*
     * Subrequests (SSI include, auth_request, mirror) are decided too: the
     * location they reach may be protected when the main one is not.
     */

    if (!dlcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_device_auth_get_ctx(r);

    if (ctx) {
        /*
         * decided; waiting for a Redis operation that will wake it; or
         * woken by one, to check again.  A context is never left waiting
         * with nothing to wake it.
         */

        switch (ctx->state) {

        case NGX_HTTP_DEVICE_AUTH_DONE:
            return ctx->rc;

        case NGX_HTTP_DEVICE_AUTH_WAITING:
            return NGX_DONE;

        default:
            return ngx_http_device_auth_lookup(r, ctx);
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_device_auth_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_device_auth_ctx_t));

    cln->handler = ngx_http_device_auth_ctx_cleanup;

    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_http_device_auth_module);

    dc = ngx_http_device_auth_get_conn(r);
    ctx->dc = dc;

    if (dc == NULL || ngx_http_device_auth_fault("identity")) {
        if (r->connection->ssl) {
            ctx->dc = NULL;
            return ngx_http_device_auth_internal_error(ctx,
                                     "cannot keep the device identity of "
                                     "the connection");
        }

        ngx_str_set(&reason, "plain HTTP connection, no client certificate");
        ngx_http_device_auth_decide(ctx, NGX_HTTPS_NO_CERT,
                                    NGX_HTTP_DEVICE_AUTH_S_NO_CERT, &reason);
        return ctx->rc;
    }

    switch (dc->status) {

    case NGX_HTTP_DEVICE_AUTH_CONN_NO_CERT:
        ngx_str_set(&reason, "no client certificate");
        ngx_http_device_auth_decide(ctx, NGX_HTTPS_NO_CERT,
                                    NGX_HTTP_DEVICE_AUTH_S_NO_CERT, &reason);
        return ctx->rc;

    case NGX_HTTP_DEVICE_AUTH_CONN_INVALID:
        ngx_http_device_auth_forget_session(r);
        ngx_http_device_auth_decide(ctx, NGX_HTTPS_CERT_ERROR,
                                    NGX_HTTP_DEVICE_AUTH_S_INVALID,
                                    &dc->reason);
        return ctx->rc;

    case NGX_HTTP_DEVICE_AUTH_CONN_MISDIRECTED:
        ngx_http_device_auth_decide(ctx, NGX_HTTP_MISDIRECTED_REQUEST,
                                    NGX_HTTP_DEVICE_AUTH_S_MISDIRECTED,
                                    &dc->reason);
        return ctx->rc;
    }

    /* verified in the handshake: by the pins of this very server? */

    dscf = ngx_http_get_module_srv_conf(r, ngx_http_device_auth_module);

    if (dc->policy != dscf->policy) {
        ngx_str_set(&reason, "certificate was verified by the pins of "
                             "another server (TLS server name differs "
                             "from Host)");
        ngx_http_device_auth_decide(ctx, NGX_HTTP_MISDIRECTED_REQUEST,
                                    NGX_HTTP_DEVICE_AUTH_S_MISDIRECTED,
                                    &reason);
        return ctx->rc;
    }

    /*
     * 0-RTT data is not bound to this handshake: whoever captured it can
     * send it again, with the device's identity.  Clients retry a 425
     * once the handshake is complete (RFC 8470).
     */

    if (ngx_ssl_get_early_data(r->connection, r->pool, &early) != NGX_OK) {
        return ngx_http_device_auth_internal_error(ctx, "cannot tell early "
                                                   "data");
    }

    if (early.len) {
        ctx->early_data = 1;

        if (!dlcf->early_data) {
            ngx_str_set(&reason, "request sent in TLS 1.3 early data "
                                 "(0-RTT), which can be replayed");
            ngx_http_device_auth_decide(ctx, NGX_HTTP_DEVICE_AUTH_TOO_EARLY,
                                        NGX_HTTP_DEVICE_AUTH_S_TOO_EARLY,
                                        &reason);
            return ctx->rc;
        }
    }

    return ngx_http_device_auth_lookup(r, ctx);
}


/*
 * Records the decision; for a device let through, adds the identity
 * headers, and for a rejected one (or a clone or an unchecked device let
 * through) writes its log line.
 */

void
ngx_http_device_auth_decide(ngx_http_device_auth_ctx_t *ctx, ngx_int_t rc,
    ngx_uint_t status, ngx_str_t *reason)
{
    ngx_http_request_t               *r;
    ngx_http_device_auth_conn_t      *dc;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    r = ctx->request;
    dc = ctx->dc;

    ctx->state = NGX_HTTP_DEVICE_AUTH_DONE;
    ctx->rc = rc;
    ctx->status = ngx_http_device_auth_status_names[status];

    ngx_http_device_auth_metrics_decision(r, status, rc == NGX_DECLINED,
                                          dc ? dc->reason_code : 0);

    if (reason) {
        ctx->reason = *reason;
    }

    if (rc == NGX_DECLINED) {
        if (ngx_http_device_auth_set_headers(r, dc, &ctx->status,
                                             ctx->early_data)
            != NGX_OK)
        {
            ctx->rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * a clone let through by "device_auth_duplicate_action log", or a
         * device let through unchecked by "device_auth_fail_mode open"
         */

        if (status != NGX_HTTP_DEVICE_AUTH_S_DUPLICATE
            && status != NGX_HTTP_DEVICE_AUTH_S_UNCHECKED)
        {
            return;
        }
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);

    /* the place is known once a lookup was made; else it is found here */

    if (ctx->location.len == 0
        && ngx_http_complex_value(r, dlcf->location, &ctx->location)
           != NGX_OK)
    {
        ngx_str_null(&ctx->location);
    }

    ngx_http_device_auth_log_decision(ctx, rc == NGX_DECLINED
                                           ? (ngx_int_t) NGX_HTTP_OK : rc,
                                      status);
}


/*
 * A failure of the module itself (out of memory) is a decision too: 500,
 * logged with the reason.  Returning 500 with the context still undecided
 * would make a request that error_page sends back into a device_auth
 * location wait for ever.
 */

ngx_int_t
ngx_http_device_auth_internal_error(ngx_http_device_auth_ctx_t *ctx,
    char *why)
{
    ngx_str_t  reason;

    reason.len = ngx_strlen(why);
    reason.data = (u_char *) why;

    ngx_http_device_auth_decide(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                NGX_HTTP_DEVICE_AUTH_S_ERROR, &reason);

    return ctx->rc;
}


/* resumes a request suspended while its lookup was in flight */

void
ngx_http_device_auth_wake(ngx_http_device_auth_ctx_t *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


ngx_http_device_auth_ctx_t *
ngx_http_device_auth_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_device_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_device_auth_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    /*
     * An internal redirect cleared the module contexts.  Subrequests share
     * the pool of the main request: the context must be this request's.
     */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_device_auth_ctx_cleanup) {
            ctx = cln->data;

            if (ctx->request == r) {
                ngx_http_set_ctx(r, ctx, ngx_http_device_auth_module);
                return ctx;
            }
        }
    }

    return NULL;
}


static void
ngx_http_device_auth_ctx_cleanup(void *data)
{
    ngx_http_device_auth_ctx_t *ctx = data;

    /* the request is gone: its operation, if any, must not wake it */

    if (ctx->state == NGX_HTTP_DEVICE_AUTH_WAITING) {
        ngx_queue_remove(&ctx->waiter.queue);
        ctx->state = NGX_HTTP_DEVICE_AUTH_DONE;
    }
}
