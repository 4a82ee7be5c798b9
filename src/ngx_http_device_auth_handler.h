
/*
 * The per-request decision: runs first in the rewrite phase of every
 * location with device_auth on, and may suspend the request while Redis
 * answers.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_HANDLER_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_HANDLER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_ops.h"


#define NGX_HTTP_DEVICE_AUTH_NEW      0   /* to check (again) */
#define NGX_HTTP_DEVICE_AUTH_WAITING  1   /* for a Redis operation */
#define NGX_HTTP_DEVICE_AUTH_DONE     2

/* RFC 8470; nginx has no name for it */
#define NGX_HTTP_DEVICE_AUTH_TOO_EARLY             425


typedef struct {
    ngx_http_request_t             *request;
    ngx_http_device_auth_conn_t    *dc;
    ngx_uint_t                      state;
    ngx_int_t                       rc;          /* phase result when done */
    ngx_str_t                       status;      /* $device_auth_status */
    ngx_str_t                       reason;      /* $device_auth_reason */
    ngx_str_t                       location;    /* device_auth_location */

    /* what the Redis operations it waited for brought */
    ngx_http_device_auth_op_waiter_t  waiter;
    ngx_str_t                       failure;
    ngx_str_t                       sight_reason;
    int                             sight;

    /*
     * The operations that read the facts for this request: the facts
     * were read once the entry's read_seq reached them, whichever
     * operation the request waited for.
     */
    ngx_uint_t                      dev_seq;
    ngx_uint_t                      sig_seq;

    unsigned                        early_data:1;  /* came in 0-RTT */
    unsigned                        failed:1;
    unsigned                        sighted:1;
} ngx_http_device_auth_ctx_t;


extern ngx_str_t  ngx_http_device_auth_status_names[NGX_HTTP_DEVICE_AUTH_S_N];


ngx_int_t ngx_http_device_auth_handler(ngx_http_request_t *r);
ngx_http_device_auth_ctx_t *ngx_http_device_auth_get_ctx(
    ngx_http_request_t *r);
void ngx_http_device_auth_decide(ngx_http_device_auth_ctx_t *ctx,
    ngx_int_t rc, ngx_uint_t status, ngx_str_t *reason);
ngx_int_t ngx_http_device_auth_internal_error(ngx_http_device_auth_ctx_t *ctx,
    char *why);
void ngx_http_device_auth_wake(ngx_http_device_auth_ctx_t *ctx);


#endif /* _NGX_HTTP_DEVICE_AUTH_HANDLER_H_INCLUDED_ */
