
/*
 * device-auth: key names taken apart (device_auth_cli_keys.h).
 */


#include <string.h>

#include "ngx_device_auth_cert.h"
#include "ngx_device_auth_registration.h"
#include "device_auth_cli_keys.h"


/* a key's name without the prefix */

void
device_auth_cli_key_parse(const char *name, size_t len,
    device_auth_cli_key_t *k)
{
    const char  *p, *end, *colon;

    memset(k, 0, sizeof(device_auth_cli_key_t));

    end = name + len;

    if (len == 6 && memcmp(name, "events", 6) == 0) {
        k->type = DEVICE_AUTH_CLI_KEY_EVENTS;
        return;
    }

    if (len == 5 && memcmp(name, "audit", 5) == 0) {
        k->type = DEVICE_AUTH_CLI_KEY_AUDIT;
        return;
    }

    if (len > 8 && memcmp(name, "devices:", 8) == 0) {
        k->type = DEVICE_AUTH_CLI_KEY_DEVICES;
        k->suffix = name + 8;
        k->suffix_len = len - 8;
        return;
    }

    if (len > 7 && memcmp(name, "signer:", 7) == 0) {
        k->type = DEVICE_AUTH_CLI_KEY_SIGNER;
        k->id = name + 7;

        for (colon = NULL, p = k->id; p < end; p++) {
            if (*p == ':') {
                colon = p;
            }
        }

        k->id_len = (colon ? colon : end) - k->id;

        if (colon) {
            k->suffix = colon + 1;
            k->suffix_len = end - colon - 1;
        }

        return;
    }

    if (len > 0 && name[0] == '{') {
        p = memchr(name, '}', len);
        if (p == NULL) {
            return;
        }

        k->type = DEVICE_AUTH_CLI_KEY_DEVICE;
        k->braces = 1;
        k->id = name + 1;
        k->id_len = p - name - 1;

        if (p + 1 < end && p[1] == ':') {
            k->suffix = p + 2;
            k->suffix_len = end - p - 2;
        }

        return;
    }

    /* "0123A1B2C3D4E5F6A7:revoked": a device key without its braces */

    for (colon = NULL, p = name; p < end; p++) {
        if (*p == ':') {
            colon = p;
        }
    }

    if (colon != NULL && colon > name) {
        k->type = DEVICE_AUTH_CLI_KEY_DEVICE;
        k->id = name;
        k->id_len = colon - name;
        k->suffix = colon + 1;
        k->suffix_len = end - colon - 1;
    }
}


int
device_auth_cli_key_suffix(device_auth_cli_key_t *k, const char *suffix)
{
    return k->suffix != NULL && k->suffix_len == strlen(suffix)
           && memcmp(k->suffix, suffix, k->suffix_len) == 0;
}


/* 1: a serial the edge computes, in its canonical form */

int
device_auth_cli_key_serial(const char *id, size_t len, int profile)
{
    size_t  i;

    if (profile == NGX_DEVICE_AUTH_PROFILE_GENERIC) {
        return len > 0 && id[0] != ' ' && id[len - 1] != ' '
               && ngx_device_auth_registration_token(id, len,
                                                     NGX_DEVICE_AUTH_SERIAL_MAX,
                                                     " ._:@/+=-");
    }

    if (len != 18) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/* 1: a signer id as the edge writes it, 64 lower-case hex digits */

int
device_auth_cli_key_signer(const char *id, size_t len)
{
    size_t  i;

    if (len != NGX_DEVICE_AUTH_HEX_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}
