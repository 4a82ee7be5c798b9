
/*
 * device-auth import-manifest: what its parts share.  The entries of all
 * the files given are verified first (device_auth_cli_verify.c), then
 * registered in Redis (device_auth_cli_register.c), then reported.
 */


#ifndef _DEVICE_AUTH_CLI_IMPORT_H_INCLUDED_
#define _DEVICE_AUTH_CLI_IMPORT_H_INCLUDED_


#include <stddef.h>

#include "ngx_device_auth_manifest.h"
#include "device_auth_cli_redis.h"


/* what became of an entry */
#define DEVICE_AUTH_CLI_PENDING      0      /* verified, not written yet */
#define DEVICE_AUTH_CLI_REGISTERED   1
#define DEVICE_AUTH_CLI_ALREADY      2      /* the same value was there */
#define DEVICE_AUTH_CLI_KEPT         3      /* another value was, and stays */
#define DEVICE_AUTH_CLI_REPLACED     4      /* another value was (--replace) */
#define DEVICE_AUTH_CLI_REJECTED     5
#define DEVICE_AUTH_CLI_OUTCOMES     6


typedef struct {
    const char                        *data;       /* the entry's JSON */
    size_t                             len;
    int                                file;
    size_t                             index;      /* from 1, in its file */
    int                                outcome;
    char                              *old;        /* value found, if any */
    ngx_device_auth_manifest_entry_t   e;
} device_auth_cli_entry_t;


int device_auth_cli_verify(ngx_device_auth_manifest_t *m,
    device_auth_cli_entry_t *entries, size_t n, int jobs, int progress);
int device_auth_cli_register(device_auth_cli_redis_t *r,
    device_auth_cli_entry_t *entries, size_t n, int dry_run, int replace);


#endif /* _DEVICE_AUTH_CLI_IMPORT_H_INCLUDED_ */
