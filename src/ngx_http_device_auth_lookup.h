
/*
 * The device check of a request, from the state the worker holds: no
 * Redis round trip when the facts are cached and the sighting is fresh.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_handler.h"


ngx_int_t ngx_http_device_auth_lookup(ngx_http_request_t *r,
    ngx_http_device_auth_ctx_t *ctx);


#endif /* _NGX_HTTP_DEVICE_AUTH_LOOKUP_H_INCLUDED_ */
