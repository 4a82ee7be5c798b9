
/*
 * A Redis node a worker connects to, by IP address or unix socket: the
 * hiredis form (a C string and a port) and nginx's (a sockaddr) of one
 * address, and its name for the log.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_device_auth_node.h"


static void ngx_http_device_auth_node_named(ngx_http_device_auth_node_t *node);


static ngx_uint_t  ngx_http_device_auth_node_gen;


void
ngx_http_device_auth_node_init(ngx_http_device_auth_node_t *node)
{
    ngx_memzero(node, sizeof(ngx_http_device_auth_node_t));

    node->name.data = node->text;
    node->name.len = ngx_sprintf(node->text, "(unknown)") - node->text;
}


/* an IP address and port (the parsers checked them); a new number */

ngx_int_t
ngx_http_device_auth_node_set(ngx_http_device_auth_node_t *node,
    ngx_device_auth_node_addr_t *addr)
{
    size_t                len;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    len = ngx_strlen(addr->host);

    if (len >= sizeof(node->host)) {
        return NGX_ERROR;
    }

    ngx_memzero(&node->sockaddr, sizeof(ngx_sockaddr_t));

    sin = &node->sockaddr.sockaddr_in;
#if (NGX_HAVE_INET6)
    sin6 = &node->sockaddr.sockaddr_in6;
#endif

    if (inet_pton(AF_INET, addr->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((in_port_t) addr->port);
        node->socklen = sizeof(struct sockaddr_in);

#if (NGX_HAVE_INET6)
    } else if (inet_pton(AF_INET6, addr->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((in_port_t) addr->port);
        node->socklen = sizeof(struct sockaddr_in6);
#endif

    } else {
        return NGX_ERROR;
    }

    ngx_memcpy(node->host, addr->host, len + 1);
    node->port = addr->port;

    ngx_http_device_auth_node_named(node);

    return NGX_OK;
}


ngx_int_t
ngx_http_device_auth_node_set_unix(ngx_http_device_auth_node_t *node,
    u_char *path)
{
#if (NGX_HAVE_UNIX_DOMAIN)
    size_t               len;
    struct sockaddr_un  *saun;

    len = ngx_strlen(path);
    saun = &node->sockaddr.sockaddr_un;

    if (len >= sizeof(node->host) || len >= sizeof(saun->sun_path)) {
        return NGX_ERROR;
    }

    ngx_memzero(&node->sockaddr, sizeof(ngx_sockaddr_t));

    saun->sun_family = AF_UNIX;
    ngx_memcpy(saun->sun_path, path, len + 1);
    node->socklen = sizeof(struct sockaddr_un);

    ngx_memcpy(node->host, path, len + 1);
    node->port = 0;

    ngx_http_device_auth_node_named(node);

    return NGX_OK;
#else
    return NGX_ERROR;
#endif
}


/* the node is at this address now */

ngx_uint_t
ngx_http_device_auth_node_is(ngx_http_device_auth_node_t *node,
    ngx_device_auth_node_addr_t *addr)
{
    return node->gen && node->port == addr->port
           && ngx_strcmp(node->host, addr->host) == 0;
}


static void
ngx_http_device_auth_node_named(ngx_http_device_auth_node_t *node)
{
    node->name.data = node->text;
    node->name.len = ngx_sock_ntop(&node->sockaddr.sockaddr, node->socklen,
                                   node->text, sizeof(node->text), 1);

    /* unique over the worker's nodes: a connection names the one it had */
    node->gen = ++ngx_http_device_auth_node_gen;
}
