
/*
 * The Redis keys of a device and of a signer, as operations staff write
 * them with redis-cli (docs/operations.md): written into commands, and
 * read back from the names that Redis' invalidation messages carry.
 * Plain C, no nginx types.
 */


#ifndef _NGX_DEVICE_AUTH_KEYS_H_INCLUDED_
#define _NGX_DEVICE_AUTH_KEYS_H_INCLUDED_


#include <stddef.h>

#include "ngx_device_auth_resp.h"


#define NGX_DEVICE_AUTH_KEY_OTHER               0
#define NGX_DEVICE_AUTH_KEY_REVOKED             1   /* P{SN}:revoked */
#define NGX_DEVICE_AUTH_KEY_REGISTERED          2   /* P{SN}:registered */
#define NGX_DEVICE_AUTH_KEY_SEEN                3   /* P{SN}:seen */
#define NGX_DEVICE_AUTH_KEY_EVRL                4   /* P{SN}:evrl */
#define NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED      5   /* Psigner:<id>:revoked */
#define NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED  6   /* ...:compromised */
#define NGX_DEVICE_AUTH_KEY_EVENTS              7   /* Pevents */
#define NGX_DEVICE_AUTH_KEY_EDGES               8   /* P{SN}:edges */
#define NGX_DEVICE_AUTH_KEY_DEVICES             9   /* Pdevices:<date> */


void ngx_device_auth_key_write(ngx_device_auth_resp_t *cmd,
    const void *prefix, size_t prefix_len, int kind, const void *id,
    size_t id_len);
int ngx_device_auth_key_parse(const void *prefix, size_t prefix_len,
    const void *key, size_t key_len, const unsigned char **id,
    size_t *id_len);
int ngx_device_auth_key_slot(const void *prefix, size_t prefix_len, int kind,
    const void *id, size_t id_len);


#endif /* _NGX_DEVICE_AUTH_KEYS_H_INCLUDED_ */
