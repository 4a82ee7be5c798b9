
/*
 * Identity headers: removing forged ones, adding the authenticated ones.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_HEADERS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_HEADERS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"


char *ngx_http_device_auth_headers_prepare(ngx_conf_t *cf,
    ngx_http_device_auth_loc_conf_t *dlcf);
char *ngx_http_device_auth_headers_check_prefix(ngx_conf_t *cf, void *post,
    void *data);
ngx_int_t ngx_http_device_auth_strip_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_device_auth_restrip_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_device_auth_strip(ngx_http_request_t *r);
ngx_int_t ngx_http_device_auth_set_headers(ngx_http_request_t *r,
    ngx_http_device_auth_conn_t *dc, ngx_str_t *status, ngx_uint_t early);


#endif /* _NGX_HTTP_DEVICE_AUTH_HEADERS_H_INCLUDED_ */
