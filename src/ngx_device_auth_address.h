
/*
 * The arguments of "device_auth_redis": address and options.  Plain C, no
 * nginx types, so the parser can be fuzzed on its own.
 */


#ifndef _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_
#define _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_


#include <stddef.h>


#define NGX_DEVICE_AUTH_ADDR_HOST_MAX      64
#define NGX_DEVICE_AUTH_ADDR_PATH_MAX      108     /* sun_path */
#define NGX_DEVICE_AUTH_ADDR_USER_MAX      128
#define NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX  256


typedef struct {
    int     port;                 /* 0: unix socket */
    char    host[NGX_DEVICE_AUTH_ADDR_HOST_MAX];
    char    path[NGX_DEVICE_AUTH_ADDR_PATH_MAX];
    long    db;
    char    user[NGX_DEVICE_AUTH_ADDR_USER_MAX];
    char    password[NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX];
} ngx_device_auth_address_t;


int ngx_device_auth_address_parse(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen);


#endif /* _NGX_DEVICE_AUTH_ADDRESS_H_INCLUDED_ */
