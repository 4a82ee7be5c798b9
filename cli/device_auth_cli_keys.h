
/*
 * device-auth: the names of the keys under the prefix, taken apart the
 * way the edge builds them (docs/operations.md, "Keys"), for list and lint.
 */


#ifndef _DEVICE_AUTH_CLI_KEYS_H_INCLUDED_
#define _DEVICE_AUTH_CLI_KEYS_H_INCLUDED_


#include <stddef.h>


#define DEVICE_AUTH_CLI_KEY_OTHER     0
#define DEVICE_AUTH_CLI_KEY_DEVICE    1     /* P{SN}:suffix, or PSN:suffix */
#define DEVICE_AUTH_CLI_KEY_SIGNER    2     /* Psigner:<id>:suffix */
#define DEVICE_AUTH_CLI_KEY_EVENTS    3     /* Pevents */
#define DEVICE_AUTH_CLI_KEY_AUDIT     4     /* Paudit */
#define DEVICE_AUTH_CLI_KEY_DEVICES   5     /* Pdevices:<YYYY-MM-DD>[:...] */


typedef struct {
    int          type;
    int          braces;        /* a device key with its {SN} */
    const char  *id;            /* the serial, the signer id */
    size_t       id_len;
    const char  *suffix;        /* after the id's ":"; NULL: none */
    size_t       suffix_len;
} device_auth_cli_key_t;


void device_auth_cli_key_parse(const char *name, size_t len,
    device_auth_cli_key_t *k);
int device_auth_cli_key_suffix(device_auth_cli_key_t *k, const char *suffix);
int device_auth_cli_key_serial(const char *id, size_t len, int profile);
int device_auth_cli_key_signer(const char *id, size_t len);


#endif /* _DEVICE_AUTH_CLI_KEYS_H_INCLUDED_ */
