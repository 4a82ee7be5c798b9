
/*
 * The Redis keys of a device and of a signer.
 *
 * A device's keys carry its serial in braces, the hash tag that keeps them
 * in one Redis Cluster slot: "<prefix>{<SN>}:revoked".  A signer's are
 * "<prefix>signer:<id>:revoked" with the lowercase hex id.  The distinct
 * devices of a day are "<prefix>devices:<YYYY-MM-DD>" (the fleet's) and
 * "<prefix>devices:<YYYY-MM-DD>:<edge>" (one edge's): the id is what
 * follows "devices:".  The parser is
 * the writer's inverse, and exact: an invalidation for a key the edge does
 * not read is told apart, never taken for one it does.
 */


#include <string.h>

#include "ngx_device_auth_keys.h"
#include "ngx_device_auth_slot.h"


static const struct {
    const char  *open;
    const char  *tail;
} ngx_device_auth_key_forms[] = {
    { "", "" },
    { "{", "}:revoked" },
    { "{", "}:registered" },
    { "{", "}:seen" },
    { "{", "}:evrl" },
    { "signer:", ":revoked" },
    { "signer:", ":compromised" },
    { "events", "" },
    { "{", "}:edges" },
    { "devices:", "" }
};

#define NGX_DEVICE_AUTH_KEY_FORMS                                             \
    (int) (sizeof(ngx_device_auth_key_forms)                                  \
           / sizeof(ngx_device_auth_key_forms[0]))


/* the key as a RESP bulk string */

void
ngx_device_auth_key_write(ngx_device_auth_resp_t *cmd, const void *prefix,
    size_t prefix_len, int kind, const void *id, size_t id_len)
{
    size_t       olen, tlen;
    const char  *open, *tail;

    if (kind <= NGX_DEVICE_AUTH_KEY_OTHER
        || kind >= NGX_DEVICE_AUTH_KEY_FORMS)
    {
        cmd->full = 1;
        return;
    }

    open = ngx_device_auth_key_forms[kind].open;
    tail = ngx_device_auth_key_forms[kind].tail;
    olen = strlen(open);
    tlen = strlen(tail);

    ngx_device_auth_resp_bulk_start(cmd, prefix_len + olen + id_len + tlen);
    ngx_device_auth_resp_raw(cmd, prefix, prefix_len);
    ngx_device_auth_resp_raw(cmd, open, olen);
    ngx_device_auth_resp_raw(cmd, id, id_len);
    ngx_device_auth_resp_raw(cmd, tail, tlen);
    ngx_device_auth_resp_crlf(cmd);
}


/*
 * The kind of a key and the serial or signer id in it, or
 * NGX_DEVICE_AUTH_KEY_OTHER.  The id is a part of the key, as it is.
 */

int
ngx_device_auth_key_parse(const void *prefix, size_t prefix_len,
    const void *key, size_t key_len, const unsigned char **id,
    size_t *id_len)
{
    int                   kind;
    size_t                olen, tlen;
    const unsigned char  *p;

    *id = NULL;
    *id_len = 0;

    if (key_len < prefix_len || memcmp(key, prefix, prefix_len) != 0) {
        return NGX_DEVICE_AUTH_KEY_OTHER;
    }

    p = (const unsigned char *) key + prefix_len;
    key_len -= prefix_len;

    for (kind = 1; kind < NGX_DEVICE_AUTH_KEY_FORMS; kind++) {
        olen = strlen(ngx_device_auth_key_forms[kind].open);
        tlen = strlen(ngx_device_auth_key_forms[kind].tail);

        if (key_len < olen + tlen
            || memcmp(p, ngx_device_auth_key_forms[kind].open, olen) != 0
            || memcmp(p + key_len - tlen, ngx_device_auth_key_forms[kind].tail,
                      tlen)
               != 0)
        {
            continue;
        }

        /*
         * no braces in an id (a serial in profile generic may hold a
         * colon, a signer id may not)
         */

        if (memchr(p + olen, '{', key_len - olen - tlen)
            || memchr(p + olen, '}', key_len - olen - tlen)
            || ((kind == NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED
                 || kind == NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED)
                && memchr(p + olen, ':', key_len - olen - tlen)))
        {
            continue;
        }

        if (kind == NGX_DEVICE_AUTH_KEY_EVENTS ? key_len != olen
                                               : key_len == olen + tlen)
        {
            continue;
        }

        *id = p + olen;
        *id_len = key_len - olen - tlen;

        return kind;
    }

    return NGX_DEVICE_AUTH_KEY_OTHER;
}


/* the Redis Cluster slot of a key; -1 when it would not fit in 512 bytes */

int
ngx_device_auth_key_slot(const void *prefix, size_t prefix_len, int kind,
    const void *id, size_t id_len)
{
    char         key[512], *p;
    size_t       olen, tlen;
    const char  *open, *tail;

    if (kind <= NGX_DEVICE_AUTH_KEY_OTHER
        || kind >= NGX_DEVICE_AUTH_KEY_FORMS)
    {
        return -1;
    }

    open = ngx_device_auth_key_forms[kind].open;
    tail = ngx_device_auth_key_forms[kind].tail;
    olen = strlen(open);
    tlen = strlen(tail);

    if (prefix_len + olen + id_len + tlen > sizeof(key)) {
        return -1;
    }

    p = key;

    if (prefix_len) {
        memcpy(p, prefix, prefix_len);
        p += prefix_len;
    }

    memcpy(p, open, olen);
    p += olen;

    if (id_len) {
        memcpy(p, id, id_len);
        p += id_len;
    }

    memcpy(p, tail, tlen);
    p += tlen;

    return ngx_device_auth_slot(key, (size_t) (p - key));
}
