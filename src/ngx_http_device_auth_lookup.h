
/*
 * Device state lookup: one Redis round trip per check, shared by the
 * requests and HTTP/2 streams of a connection while it is in flight.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_redis.h"


ngx_int_t ngx_http_device_auth_lookup(ngx_http_request_t *r,
    ngx_http_device_auth_ctx_t *ctx);
void ngx_http_device_auth_lookup_cleanup(ngx_http_device_auth_redis_t *redis);
char *ngx_http_device_auth_lookup_prepare(ngx_conf_t *cf,
    ngx_http_device_auth_loc_conf_t *dlcf);


#endif /* _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_ */
