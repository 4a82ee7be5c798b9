
/*
 * The arguments of "device_auth_redis": addresses and options.  Plain C,
 * no nginx types, so the parser can be fuzzed on its own.
 */


#ifndef _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_
#define _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_


#include <stddef.h>


#define NGX_DEVICE_AUTH_ADDR_HOST_MAX      64
#define NGX_DEVICE_AUTH_ADDR_PATH_MAX      108     /* sun_path */
#define NGX_DEVICE_AUTH_ADDR_USER_MAX      128
#define NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX  256
#define NGX_DEVICE_AUTH_ADDR_NAME_MAX      64      /* a sentinel master */
#define NGX_DEVICE_AUTH_ADDR_NODES_MAX     16

/* what the addresses are */
#define NGX_DEVICE_AUTH_ADDR_SINGLE        0       /* one Redis */
#define NGX_DEVICE_AUTH_ADDR_SENTINEL      1       /* sentinels to ask */
#define NGX_DEVICE_AUTH_ADDR_CLUSTER       2       /* seeds of a cluster */


typedef struct {
    int     port;
    char    host[NGX_DEVICE_AUTH_ADDR_HOST_MAX];   /* an IP literal */
} ngx_device_auth_node_addr_t;


typedef struct {
    /* the first address */
    int     port;                 /* 0: unix socket */
    char    host[NGX_DEVICE_AUTH_ADDR_HOST_MAX];
    char    path[NGX_DEVICE_AUTH_ADDR_PATH_MAX];

    long    db;
    char    user[NGX_DEVICE_AUTH_ADDR_USER_MAX];
    char    password[NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX];

    /* every address, the first one too (a unix socket: port 0, no host) */
    int     topology;             /* NGX_DEVICE_AUTH_ADDR_SINGLE, ... */
    int     nnodes;
    ngx_device_auth_node_addr_t  nodes[NGX_DEVICE_AUTH_ADDR_NODES_MAX];

    /* sentinel=, sentinel_user=, sentinel_password= */
    char    sentinel[NGX_DEVICE_AUTH_ADDR_NAME_MAX];
    char    sentinel_user[NGX_DEVICE_AUTH_ADDR_USER_MAX];
    char    sentinel_password[NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX];
} ngx_device_auth_address_t;


/* one Redis only: what device-auth (the command line) connects to */
int ngx_device_auth_address_parse(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen);

/* one Redis, sentinels ("sentinel=") or cluster seeds ("cluster") */
int ngx_device_auth_address_parse_topology(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen);

/* "ip:port" or "[ipv6]:port" into a node address; -1: not one */
int ngx_device_auth_address_node(const char *s, size_t len,
    ngx_device_auth_node_addr_t *node);


#endif /* _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_ */
