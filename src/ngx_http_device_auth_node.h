
/*
 * A Redis node a worker connects to: one Redis, the master a sentinel
 * named, a sentinel, a node of a cluster.  Its address can change (a
 * failover): each new address has a new number, so that connections made
 * to the old one are told apart.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_NODE_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_NODE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_device_auth_address.h"


typedef struct {
    ngx_str_t                   name;       /* "ip:port", "unix:/path" */
    int                         port;       /* 0: unix socket */
    ngx_uint_t                  gen;        /* 0: no address yet */
    socklen_t                   socklen;
    ngx_sockaddr_t              sockaddr;

    /* for hiredis: the IP address or the socket path, NUL-terminated */
    u_char                      host[NGX_DEVICE_AUTH_ADDR_PATH_MAX];
    u_char                      text[NGX_SOCKADDR_STRLEN];
} ngx_http_device_auth_node_t;


void ngx_http_device_auth_node_init(ngx_http_device_auth_node_t *node);
ngx_int_t ngx_http_device_auth_node_set(ngx_http_device_auth_node_t *node,
    ngx_device_auth_node_addr_t *addr);
ngx_int_t ngx_http_device_auth_node_set_unix(
    ngx_http_device_auth_node_t *node, u_char *path);
ngx_uint_t ngx_http_device_auth_node_is(ngx_http_device_auth_node_t *node,
    ngx_device_auth_node_addr_t *addr);


#endif /* _NGX_HTTP_DEVICE_AUTH_NODE_H_INCLUDED_ */
