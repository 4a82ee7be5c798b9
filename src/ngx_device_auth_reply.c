
/*
 * Replies of Redis.
 *
 * The device script answers { serial, fetched, revoked, pttl, registered,
 * sight, places, reason, event, edges, own }: registered is the value of
 * P{SN}:registered, of which the edge keeps whether it exists and the key
 * it binds (spki_sha256=<hex>).  Anything else, from an error reply to a
 * reply of another shape (a script changed by hand, a proxy in between),
 * is an error, which the fail mode handles; it is never read as a fact.  A
 * reply for another serial than the one asked about means that replies
 * and commands are no longer paired (a reply too many or too few on the
 * connection): it is told apart, so that the connection can be dropped.
 *
 * The invalidation channel's messages (RESP2, hiredis 0.14) are arrays:
 * ["subscribe", channel, n], ["message", channel, [keys] or nil] (nil:
 * everything, after FLUSHALL or FLUSHDB), ["pong", ""].
 */


#include <string.h>

#include "ngx_device_auth_reply.h"


#define NGX_DEVICE_AUTH_DEVICE_REPLY  11
#define NGX_DEVICE_AUTH_SPKI_FIELD    "spki_sha256="
#define NGX_DEVICE_AUTH_SPKI_FIELD_LEN  (sizeof(NGX_DEVICE_AUTH_SPKI_FIELD) - 1)


static int ngx_device_auth_reply_is(const redisReply *r, const char *s);
static int ngx_device_auth_reply_int(const redisReply *r, long long min,
    long long max, long long *n);
static int ngx_device_auth_hex_digit(char c);


/*
 * NGX_DEVICE_AUTH_V_OK with the reply read into d; otherwise the error
 * (V_ERROR, V_NOSCRIPT, V_DESYNC) with its reason in err.
 */

int
ngx_device_auth_reply_device(const redisReply *reply, const char *serial,
    size_t serial_len, ngx_device_auth_device_reply_t *d,
    ngx_device_auth_verdict_t *err)
{
    int                      i;
    long long                n;
    const redisReply        *e, *sight;
    ngx_device_auth_text_t   text;

    memset(d, 0, sizeof(ngx_device_auth_device_reply_t));
    memset(err, 0, sizeof(ngx_device_auth_verdict_t));

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_device_auth_reply_error(reply, err);
    }

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != NGX_DEVICE_AUTH_DEVICE_REPLY
        || reply->element == NULL)
    {
        goto unexpected;
    }

    for (i = 0; i < NGX_DEVICE_AUTH_DEVICE_REPLY; i++) {
        if (reply->element[i] == NULL) {
            goto unexpected;
        }
    }

    /* the serial first: a reply of another lookup says nothing of this */

    e = reply->element[0];

    if (e->type != REDIS_REPLY_STRING || e->str == NULL
        || e->len != serial_len || memcmp(e->str, serial, serial_len) != 0)
    {
        err->status = NGX_DEVICE_AUTH_V_DESYNC;

        if (e->type == REDIS_REPLY_STRING && e->str) {
            ngx_device_auth_verdict_text(err, "reply of another lookup "
                                         "(serial ", e->str, e->len);
        } else {
            ngx_device_auth_verdict_text(err, "reply of another lookup "
                                         "(serial ?", NULL, 0);
        }

        ngx_device_auth_verdict_append(err, ")", 1);
        return err->status;
    }

    if (ngx_device_auth_reply_int(reply->element[1], 0, 1, &n) != 0) {
        goto unexpected;
    }

    d->fetched = (int) n;

    e = reply->element[2];

    if (e->type == REDIS_REPLY_STRING && e->str) {
        d->revoked.data = e->str;
        d->revoked.len = e->len;

    } else if (e->type != REDIS_REPLY_NIL) {
        goto unexpected;
    }

    if (ngx_device_auth_reply_int(reply->element[3], -2, 1LL << 53,
                                  &d->pttl)
        != 0)
    {
        goto unexpected;
    }

    /* the registration's value: a key it binds, or none */

    e = reply->element[4];

    if (e->type == REDIS_REPLY_STRING && e->str) {
        text.data = e->str;
        text.len = e->len;

        d->registered = 1;
        d->key = ngx_device_auth_registered_key(&text, d->key_sha256);

    } else if (e->type != REDIS_REPLY_NIL) {
        goto unexpected;
    }

    sight = reply->element[5];

    if (ngx_device_auth_reply_is(sight, "")) {
        d->sight = NGX_DEVICE_AUTH_SIGHT_NONE;

    } else if (ngx_device_auth_reply_is(sight, "ok")) {
        d->sight = NGX_DEVICE_AUTH_SIGHT_OK;

    } else if (ngx_device_auth_reply_is(sight, "duplicate")) {
        d->sight = NGX_DEVICE_AUTH_SIGHT_DUPLICATE;

    } else if (ngx_device_auth_reply_is(sight, "quarantined")) {
        d->sight = NGX_DEVICE_AUTH_SIGHT_QUARANTINED;

    } else {
        goto unexpected;
    }

    if (ngx_device_auth_reply_int(reply->element[6], 0, 1LL << 31,
                                  &d->places)
        != 0)
    {
        goto unexpected;
    }

    e = reply->element[7];

    if (e->type != REDIS_REPLY_STRING || e->str == NULL) {
        goto unexpected;
    }

    d->reason.data = e->str;
    d->reason.len = e->len;

    e = reply->element[8];

    for (i = 0; i < NGX_DEVICE_AUTH_EV_N; i++) {
        if (ngx_device_auth_reply_is(e, ngx_device_auth_event_name(i))) {
            break;
        }
    }

    if (i == NGX_DEVICE_AUTH_EV_N) {
        goto unexpected;
    }

    d->event = i;

    e = reply->element[9];

    if (e->type != REDIS_REPLY_STRING || e->str == NULL) {
        goto unexpected;
    }

    d->edges.data = e->str;
    d->edges.len = e->len;

    if (ngx_device_auth_reply_int(reply->element[10], 0, 2, &d->own) != 0) {
        goto unexpected;
    }

    /* what cannot be: a quarantine that left no revocation */

    if (d->sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED && !d->revoked.data) {
        goto unexpected;
    }

    return NGX_DEVICE_AUTH_V_OK;

unexpected:

    memset(d, 0, sizeof(ngx_device_auth_device_reply_t));
    err->status = NGX_DEVICE_AUTH_V_ERROR;
    ngx_device_auth_verdict_text(err, "unexpected reply from the script",
                                 NULL, 0);

    return err->status;
}


/* a GET: the value, or absent (nil); anything else is an error */

int
ngx_device_auth_reply_get(const redisReply *reply,
    ngx_device_auth_text_t *value, ngx_device_auth_verdict_t *err)
{
    memset(err, 0, sizeof(ngx_device_auth_verdict_t));

    value->data = NULL;
    value->len = 0;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_device_auth_reply_error(reply, err);
    }

    if (reply->type == REDIS_REPLY_NIL) {
        return NGX_DEVICE_AUTH_V_OK;
    }

    if (reply->type == REDIS_REPLY_STRING && reply->str) {
        value->data = reply->str;
        value->len = reply->len;
        return NGX_DEVICE_AUTH_V_OK;
    }

    err->status = NGX_DEVICE_AUTH_V_ERROR;
    ngx_device_auth_verdict_text(err, "unexpected reply to GET", NULL, 0);

    return err->status;
}


/* no reply (the connection was lost), or an error reply */

int
ngx_device_auth_reply_error(const redisReply *reply,
    ngx_device_auth_verdict_t *err)
{
    memset(err, 0, sizeof(ngx_device_auth_verdict_t));
    err->status = NGX_DEVICE_AUTH_V_ERROR;

    if (reply == NULL) {
        ngx_device_auth_verdict_text(err, "no reply: connection lost", NULL,
                                     0);
        return err->status;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        if (reply->str && reply->len >= 8
            && memcmp(reply->str, "NOSCRIPT", 8) == 0)
        {
            err->status = NGX_DEVICE_AUTH_V_NOSCRIPT;
        }

        ngx_device_auth_verdict_text(err, "redis error: ", reply->str,
                                     reply->str ? reply->len : 0);
        return err->status;
    }

    ngx_device_auth_verdict_text(err, "unexpected reply", NULL, 0);

    return err->status;
}


/*
 * The key a registration binds: the field spki_sha256=<64 hex digits> of
 * its value (fields "name=value" separated by a space, written by
 * "device-auth import-manifest"); a value without that field (a batch
 * name set by hand) binds none.  A field that holds no such hash is
 * malformed: it matches no key.
 */

int
ngx_device_auth_registered_key(const ngx_device_auth_text_t *value,
    unsigned char *key)
{
    int          hi, lo;
    size_t       i, len;
    const char  *p, *end, *sp, *v;

    memset(key, 0, NGX_DEVICE_AUTH_KEY_LEN);

    p = value->data;
    end = value->data + value->len;

    while (p && p < end) {
        sp = memchr(p, ' ', (size_t) (end - p));
        if (sp == NULL) {
            sp = end;
        }

        len = (size_t) (sp - p);

        if (len >= NGX_DEVICE_AUTH_SPKI_FIELD_LEN
            && memcmp(p, NGX_DEVICE_AUTH_SPKI_FIELD,
                      NGX_DEVICE_AUTH_SPKI_FIELD_LEN)
               == 0)
        {
            v = p + NGX_DEVICE_AUTH_SPKI_FIELD_LEN;
            len -= NGX_DEVICE_AUTH_SPKI_FIELD_LEN;

            if (len != 2 * NGX_DEVICE_AUTH_KEY_LEN) {
                return NGX_DEVICE_AUTH_REGKEY_MALFORMED;
            }

            for (i = 0; i < NGX_DEVICE_AUTH_KEY_LEN; i++) {
                hi = ngx_device_auth_hex_digit(v[2 * i]);
                lo = ngx_device_auth_hex_digit(v[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                    memset(key, 0, NGX_DEVICE_AUTH_KEY_LEN);
                    return NGX_DEVICE_AUTH_REGKEY_MALFORMED;
                }

                key[i] = (unsigned char) (hi << 4 | lo);
            }

            return NGX_DEVICE_AUTH_REGKEY_SHA256;
        }

        p = sp + 1;
    }

    return NGX_DEVICE_AUTH_REGKEY_NONE;
}


/*
 * A SCAN reply: [cursor, [keys]]; 0 with the next cursor (0: done) and
 * the keys, all strings; -1 for anything else
 */

int
ngx_device_auth_reply_scan(const redisReply *reply,
    unsigned long long *cursor, const redisReply *const **keys, size_t *n)
{
    size_t              i;
    const char         *p;
    const redisReply   *c, *k;
    unsigned long long  v;

    *cursor = 0;
    *keys = NULL;
    *n = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 || reply->element == NULL
        || reply->element[0] == NULL || reply->element[1] == NULL)
    {
        return -1;
    }

    c = reply->element[0];
    k = reply->element[1];

    if (c->type != REDIS_REPLY_STRING || c->str == NULL || c->len == 0
        || c->len > 20 || k->type != REDIS_REPLY_ARRAY
        || (k->elements && k->element == NULL))
    {
        return -1;
    }

    v = 0;

    for (p = c->str; p < c->str + c->len; p++) {
        if (*p < '0' || *p > '9'
            || v > (~0ULL - (unsigned long long) (*p - '0')) / 10)
        {
            return -1;
        }

        v = v * 10 + (unsigned long long) (*p - '0');
    }

    for (i = 0; i < k->elements; i++) {
        if (k->element[i] == NULL || k->element[i]->type != REDIS_REPLY_STRING
            || k->element[i]->str == NULL)
        {
            return -1;
        }
    }

    *cursor = v;
    *keys = (const redisReply *const *) k->element;
    *n = k->elements;

    return 0;
}


/* an integer reply (PFCOUNT): 0, or -1 for anything else */

int
ngx_device_auth_reply_integer(const redisReply *reply, long long *n)
{
    *n = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer < 0)
    {
        return -1;
    }

    *n = reply->integer;

    return 0;
}


/* a message on the invalidation channel; keys, n: the keys invalidated */

int
ngx_device_auth_reply_push(const redisReply *reply,
    const redisReply *const **keys, size_t *n)
{
    size_t             i;
    const redisReply  *e;

    *keys = NULL;
    *n = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->element == NULL || reply->elements < 2)
    {
        return NGX_DEVICE_AUTH_PUSH_BAD;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i] == NULL) {
            return NGX_DEVICE_AUTH_PUSH_BAD;
        }
    }

    if (reply->elements == 2 && ngx_device_auth_reply_is(reply->element[0],
                                                         "pong"))
    {
        return NGX_DEVICE_AUTH_PUSH_PONG;
    }

    if (reply->elements != 3
        || !ngx_device_auth_reply_is(reply->element[1],
                                     NGX_DEVICE_AUTH_INVALIDATE_CHANNEL))
    {
        return NGX_DEVICE_AUTH_PUSH_BAD;
    }

    if (ngx_device_auth_reply_is(reply->element[0], "subscribe")) {
        return reply->element[2]->type == REDIS_REPLY_INTEGER
               ? NGX_DEVICE_AUTH_PUSH_SUBSCRIBED : NGX_DEVICE_AUTH_PUSH_BAD;
    }

    if (!ngx_device_auth_reply_is(reply->element[0], "message")) {
        return NGX_DEVICE_AUTH_PUSH_BAD;
    }

    e = reply->element[2];

    if (e->type == REDIS_REPLY_NIL) {
        return NGX_DEVICE_AUTH_PUSH_FLUSH;
    }

    if (e->type != REDIS_REPLY_ARRAY || e->element == NULL) {
        return NGX_DEVICE_AUTH_PUSH_BAD;
    }

    for (i = 0; i < e->elements; i++) {
        if (e->element[i] == NULL || e->element[i]->type != REDIS_REPLY_STRING
            || e->element[i]->str == NULL)
        {
            return NGX_DEVICE_AUTH_PUSH_BAD;
        }
    }

    *keys = (const redisReply *const *) e->element;
    *n = e->elements;

    return NGX_DEVICE_AUTH_PUSH_INVALIDATE;
}


static int
ngx_device_auth_reply_is(const redisReply *r, const char *s)
{
    size_t  len;

    len = strlen(s);

    return r->type == REDIS_REPLY_STRING && r->str && r->len == len
           && memcmp(r->str, s, len) == 0;
}


static int
ngx_device_auth_reply_int(const redisReply *r, long long min, long long max,
    long long *n)
{
    if (r->type != REDIS_REPLY_INTEGER || r->integer < min
        || r->integer > max)
    {
        return -1;
    }

    *n = r->integer;

    return 0;
}


static int
ngx_device_auth_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}
