
/*
 * TLS side of device_auth: the client-certificate verification hook and
 * the device identity kept with each TLS connection.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_SSL_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_SSL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"


#define NGX_HTTP_DEVICE_AUTH_CONN_OK           0
#define NGX_HTTP_DEVICE_AUTH_CONN_NO_CERT      1
#define NGX_HTTP_DEVICE_AUTH_CONN_INVALID      2
#define NGX_HTTP_DEVICE_AUTH_CONN_MISDIRECTED  3


/* one per TLS connection, in the connection's pool */

typedef struct {
    ngx_device_auth_policy_t       *policy;     /* pins that verified it */
    ngx_uint_t                      status;     /* ..._CONN_* */
    ngx_uint_t                      reason_code; /* NGX_DEVICE_AUTH_R_* */
    ngx_str_t                       serial;
    ngx_str_t                       reason;     /* failures only */
    ngx_str_t                       subject;    /* failures only */
    /* in hex once: headers, variables and lookups use them as they are */
    u_char                          fingerprint[NGX_DEVICE_AUTH_HEX_LEN];
    u_char                          signer[NGX_DEVICE_AUTH_HEX_LEN];
    /* SHA-256 of the device key (SubjectPublicKeyInfo, DER), binary */
    u_char                          spki[NGX_DEVICE_AUTH_ID_LEN];

    /* the pool it lives in: the connection's, not an HTTP/2 stream's */
    ngx_pool_t                     *pool;

    /*
     * The device's and signer's entries in the worker's cache, held
     * (ngx_http_device_auth_cache_hold()) for as long as the connection:
     * a keepalive request neither hashes nor searches
     */
    void                           *dev;
    void                           *sig;

    /* the device was added to the day's distinct devices */
    unsigned                        counted:1;
} ngx_http_device_auth_conn_t;


ngx_int_t ngx_http_device_auth_ssl_init(ngx_conf_t *cf);
ngx_http_device_auth_conn_t *ngx_http_device_auth_get_conn(
    ngx_http_request_t *r);
void ngx_http_device_auth_forget_session(ngx_http_request_t *r);


#endif /* _NGX_HTTP_DEVICE_AUTH_SSL_H_INCLUDED_ */
