
/*
 * device-auth and Redis: the address in the syntax of "device_auth_redis"
 * (ngx_device_auth_address.c), the key prefix, a blocking connection, and
 * pipelined commands.  Synchronous hiredis belongs here, in the tool,
 * never in the module's workers.
 */


#ifndef _DEVICE_AUTH_CLI_REDIS_H_INCLUDED_
#define _DEVICE_AUTH_CLI_REDIS_H_INCLUDED_


#include <stddef.h>
#include <getopt.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_address.h"


#define DEVICE_AUTH_CLI_REDIS_DEFAULT   "127.0.0.1:6379"
#define DEVICE_AUTH_CLI_PREFIX_DEFAULT  "device_auth:"
#define DEVICE_AUTH_CLI_PREFIX_MAX      128
#define DEVICE_AUTH_CLI_KEY_MAX         256
#define DEVICE_AUTH_CLI_REDIS_TIMEOUT   10        /* seconds */
#define DEVICE_AUTH_CLI_SCAN_COUNT      1000

/* the getopt_long codes and entries of --redis and --prefix */
#define DEVICE_AUTH_CLI_OPT_REDIS       0x100
#define DEVICE_AUTH_CLI_OPT_PREFIX      0x101
#define DEVICE_AUTH_CLI_REDIS_OPTIONS                                       \
    { "redis", required_argument, NULL, DEVICE_AUTH_CLI_OPT_REDIS },        \
    { "prefix", required_argument, NULL, DEVICE_AUTH_CLI_OPT_PREFIX }


/*
 * A page of keys from SCAN, each key once (SCAN may return a key twice):
 * 0 goes on, -1 stops the scan (r->err says why)
 */
typedef int (*device_auth_cli_scan_pt)(void *data, redisReply **keys,
    size_t n);


typedef struct {
    const char                 *address;     /* as given */
    const char                 *prefix;
    ngx_device_auth_address_t   addr;
    redisContext               *ctx;
    char                        err[512];
} device_auth_cli_redis_t;


void device_auth_cli_redis_init(device_auth_cli_redis_t *r);
int device_auth_cli_redis_option(device_auth_cli_redis_t *r, int opt,
    const char *arg);
int device_auth_cli_redis_getopt(const char *name, int argc, char **argv,
    device_auth_cli_redis_t *r, int *profile);
int device_auth_cli_redis_connect(device_auth_cli_redis_t *r);
void device_auth_cli_redis_close(device_auth_cli_redis_t *r);
void device_auth_cli_redis_describe(device_auth_cli_redis_t *r, char *buf,
    size_t size);

size_t device_auth_cli_redis_key(device_auth_cli_redis_t *r, char *buf,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int device_auth_cli_redis_append(device_auth_cli_redis_t *r, int argc,
    const char **argv, const size_t *lens);
redisReply *device_auth_cli_redis_reply(device_auth_cli_redis_t *r);
redisReply *device_auth_cli_redis_command(device_auth_cli_redis_t *r,
    int argc, const char **argv, const size_t *lens);

size_t device_auth_cli_redis_glob(const char *s, char *buf, size_t size);
int device_auth_cli_redis_scan(device_auth_cli_redis_t *r, const char *match,
    device_auth_cli_scan_pt handler, void *data);
long long device_auth_cli_redis_time(device_auth_cli_redis_t *r);


#endif /* _DEVICE_AUTH_CLI_REDIS_H_INCLUDED_ */
