
/*
 * The log lines of the decisions: key=value fields with quoted, escaped
 * values, at the level configured for each decision, at most one per
 * serial and decision per interval from a worker.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_LOG_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_LOG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_handler.h"


/* a value of n bytes takes at most this much once quoted and escaped */
#define ngx_http_device_auth_log_value_len(n)  (4 * (n) + 2)


void ngx_http_device_auth_log_decision(ngx_http_device_auth_ctx_t *ctx,
    ngx_int_t code, ngx_uint_t status);
u_char *ngx_http_device_auth_log_value(u_char *p, u_char *last,
    u_char *data, size_t len);


#endif /* _NGX_HTTP_DEVICE_AUTH_LOG_H_INCLUDED_ */
