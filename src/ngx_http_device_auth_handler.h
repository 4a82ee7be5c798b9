
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


#define NGX_HTTP_DEVICE_AUTH_NEW      0
#define NGX_HTTP_DEVICE_AUTH_WAITING  1
#define NGX_HTTP_DEVICE_AUTH_DONE     2

/* what device_auth decided; see ngx_http_device_auth_status_names */
#define NGX_HTTP_DEVICE_AUTH_S_OK                  0
#define NGX_HTTP_DEVICE_AUTH_S_NO_CERT             1
#define NGX_HTTP_DEVICE_AUTH_S_INVALID             2
#define NGX_HTTP_DEVICE_AUTH_S_MISDIRECTED         3
#define NGX_HTTP_DEVICE_AUTH_S_REVOKED             4
#define NGX_HTTP_DEVICE_AUTH_S_SIGNER_REVOKED      5
#define NGX_HTTP_DEVICE_AUTH_S_SIGNER_COMPROMISED  6
#define NGX_HTTP_DEVICE_AUTH_S_UNREGISTERED        7
#define NGX_HTTP_DEVICE_AUTH_S_QUARANTINED         8
#define NGX_HTTP_DEVICE_AUTH_S_DUPLICATE           9
#define NGX_HTTP_DEVICE_AUTH_S_UNCHECKED           10
#define NGX_HTTP_DEVICE_AUTH_S_ERROR               11
#define NGX_HTTP_DEVICE_AUTH_S_TOO_EARLY           12
#define NGX_HTTP_DEVICE_AUTH_S_N                   13

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
    unsigned                        early_data:1;  /* came in 0-RTT */

    ngx_queue_t                     queue;       /* in a lookup's waiters */
    ngx_http_device_auth_lookup_t  *lookup;
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
