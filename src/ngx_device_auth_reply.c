
/*
 * The device verdict from the Redis script's reply.
 *
 * The script answers { status, reason, places, cause, serial }.  Anything
 * else, from an error reply to a reply of another shape (a script changed
 * by hand, a proxy in between), is an error, which the fail mode handles;
 * it is never read as a good verdict.  A reply for another serial than the
 * lookup's means that replies and lookups are no longer paired (a reply
 * too many or too few on the connection): it is told apart, so that the
 * connection can be dropped.
 */


#include <string.h>

#include "ngx_device_auth_reply.h"


static void ngx_device_auth_reply_text(ngx_device_auth_verdict_t *v,
    const char *prefix, const char *s, size_t len);
static void ngx_device_auth_reply_text_append(ngx_device_auth_verdict_t *v,
    const char *s);


static const struct {
    const char  *name;
    int          status;
} ngx_device_auth_verdicts[] = {
    { "ok", NGX_DEVICE_AUTH_V_OK },
    { "revoked", NGX_DEVICE_AUTH_V_REVOKED },
    { "signer_revoked", NGX_DEVICE_AUTH_V_SIGNER_REVOKED },
    { "unregistered", NGX_DEVICE_AUTH_V_UNREGISTERED },
    { "quarantined", NGX_DEVICE_AUTH_V_QUARANTINED },
    { "duplicate", NGX_DEVICE_AUTH_V_DUPLICATE },
    { NULL, 0 }
};


void
ngx_device_auth_reply_parse(const redisReply *reply, const char *serial,
    size_t serial_len, ngx_device_auth_verdict_t *v)
{
    int                i;
    const redisReply  *e;

    memset(v, 0, sizeof(ngx_device_auth_verdict_t));
    v->status = NGX_DEVICE_AUTH_V_ERROR;

    if (reply == NULL) {
        ngx_device_auth_reply_text(v, "no reply: connection lost", NULL, 0);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (reply->str && reply->len >= 8
            && memcmp(reply->str, "NOSCRIPT", 8) == 0)
        {
            v->status = NGX_DEVICE_AUTH_V_NOSCRIPT;
        }

        ngx_device_auth_reply_text(v, "redis error: ", reply->str,
                                   reply->str ? reply->len : 0);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5
        || reply->element == NULL)
    {
        ngx_device_auth_reply_text(v, "unexpected reply from the script",
                                   NULL, 0);
        return;
    }

    for (i = 0; i < 5; i++) {
        if (reply->element[i] == NULL) {
            ngx_device_auth_reply_text(v, "unexpected reply from the script",
                                       NULL, 0);
            return;
        }
    }

    e = reply->element[4];

    if (e->type != REDIS_REPLY_STRING || e->str == NULL
        || e->len != serial_len || memcmp(e->str, serial, serial_len) != 0)
    {
        v->status = NGX_DEVICE_AUTH_V_DESYNC;
        ngx_device_auth_reply_text(v, "reply of another lookup (serial ",
                                   e->type == REDIS_REPLY_STRING && e->str
                                   ? e->str : "?",
                                   e->type == REDIS_REPLY_STRING && e->str
                                   ? e->len : 1);
        ngx_device_auth_reply_text_append(v, ")");
        return;
    }

    e = reply->element[0];

    if (e->type == REDIS_REPLY_STRING && e->str) {
        for (i = 0; ngx_device_auth_verdicts[i].name; i++) {
            if (e->len == strlen(ngx_device_auth_verdicts[i].name)
                && memcmp(e->str, ngx_device_auth_verdicts[i].name, e->len)
                   == 0)
            {
                break;
            }
        }

        if (ngx_device_auth_verdicts[i].name == NULL) {
            ngx_device_auth_reply_text(v, "unknown verdict from the script: ",
                                       e->str, e->len);
            return;
        }

        v->status = ngx_device_auth_verdicts[i].status;

    } else {
        ngx_device_auth_reply_text(v, "unexpected reply from the script",
                                   NULL, 0);
        return;
    }

    e = reply->element[1];

    if (e->type == REDIS_REPLY_STRING && e->str) {
        ngx_device_auth_reply_text(v, "", e->str, e->len);
    }

    e = reply->element[2];

    if (e->type == REDIS_REPLY_INTEGER) {
        v->places = e->integer;
    }

    e = reply->element[3];

    if (e->type == REDIS_REPLY_STRING && e->str) {
        if (e->len == 18 && memcmp(e->str, "signer_compromised", 18) == 0) {
            v->cause = NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED;

        } else if (e->len == 8 && memcmp(e->str, "registry", 8) == 0) {
            v->cause = NGX_DEVICE_AUTH_CAUSE_REGISTRY;
        }
    }
}


const char *
ngx_device_auth_verdict_name(int status)
{
    int  i;

    for (i = 0; ngx_device_auth_verdicts[i].name; i++) {
        if (ngx_device_auth_verdicts[i].status == status) {
            return ngx_device_auth_verdicts[i].name;
        }
    }

    return "error";
}


/* reasons are set by hand with redis-cli: escape what is not printable */

static void
ngx_device_auth_reply_text(ngx_device_auth_verdict_t *v, const char *prefix,
    const char *s, size_t len)
{
    size_t             i, n;
    unsigned char      c;
    static const char  hex[] = "0123456789abcdef";

    n = strlen(prefix);
    if (n > sizeof(v->reason) - 1) {
        n = sizeof(v->reason) - 1;
    }

    memcpy(v->reason, prefix, n);

    for (i = 0; s && i < len && n + 4 < sizeof(v->reason); i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            v->reason[n++] = (char) c;
            continue;
        }

        v->reason[n++] = '\\';
        v->reason[n++] = 'x';
        v->reason[n++] = hex[c >> 4];
        v->reason[n++] = hex[c & 0xf];
    }

    v->reason[n] = '\0';
    v->reason_len = n;
}


static void
ngx_device_auth_reply_text_append(ngx_device_auth_verdict_t *v,
    const char *s)
{
    size_t  n;

    n = strlen(s);

    if (n > sizeof(v->reason) - 1 - v->reason_len) {
        n = sizeof(v->reason) - 1 - v->reason_len;
    }

    memcpy(v->reason + v->reason_len, s, n);
    v->reason_len += n;
    v->reason[v->reason_len] = '\0';
}
