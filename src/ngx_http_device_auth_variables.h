
/*
 * $device_auth_serial, $device_auth_signer, $device_auth_fingerprint,
 * $device_auth_status, $device_auth_reason.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_VARIABLES_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_VARIABLES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_device_auth_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_DEVICE_AUTH_VARIABLES_H_INCLUDED_ */
