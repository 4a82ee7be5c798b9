
/*
 * fuzz_reply: the replies of Redis as the edge reads them
 * (src/ngx_device_auth_reply.c), the decision made from the facts they
 * bring (src/ngx_device_auth_decide.c) and the key names that Redis pushes
 * in invalidation messages (src/ngx_device_auth_keys.c), for any reply
 * shape.
 *
 * Input, by its first byte:
 *
 *   '*' '$' ':' '+' '-'   RESP wire bytes, fed to hiredis' own reader
 *                         (redisReaderCreate/Feed/GetReply): every reply
 *                         it returns is read, so every shape the wire can
 *                         carry is covered, nested arrays and nil included.
 *   anything else         a reply tree built directly from the bytes that
 *                         follow, for shapes hiredis 0.14 never returns but
 *                         a reader must survive: NULL elements, "element"
 *                         NULL with any element count (4, 2^31, 2^40,
 *                         SIZE_MAX), strings whose "str" is NULL while
 *                         "len" is not, hiredis 1.x types (double, bool,
 *                         map, set, push, ...) and unknown types.
 *
 * Every reply, and NULL (the connection lost) on every run, is read as the
 * device script's reply for the serial FUZZ_SERIAL, as a GET's, as an
 * error, as a message of the invalidation channel, as a SCAN's and a
 * PFCOUNT's, and each string in it as a registered value (the key it
 * binds).
 *
 * Node encoding of a built tree (missing bytes read as 0):
 *
 *   type   0xff: a NULL child; else reply->type = type % 16
 *   flags  0x01: integer from the next 8 bytes (big-endian)
 *          0x02: a string of len = next byte (0x04: next two bytes),
 *                bytes from the input, NUL-terminated like hiredis does
 *          0x08: (without 0x02) str NULL, len = next two bytes
 *          0x10: element array of (next byte % 17) children, each a node
 *                (NULL below depth 8)
 *          0x20: (without 0x10) element NULL, elements = 4, 2^31, 2^40 or
 *                SIZE_MAX by the next byte
 *
 * In a built tree, "elements" is the true size of "element" whenever
 * "element" is not NULL, as in every tree hiredis builds.
 *
 * The decision: a device reply read as OK gives the facts as the module
 * keeps them (ngx_http_device_auth_op_device_reply(), _cache_facts(),
 * _lookup_decide()); what the reply does not say comes from the input's
 * last byte XOR '\n' (FUZZ_CTX_*: a RESP input as it is, ending in "\n",
 * adds nothing), the texts from the input's first and last bytes; the
 * certificate's key is the registered one when the input's length is
 * even, else the input's last 32 bytes.
 *
 * Checked besides the sanitizers:
 *
 *   device  OK only from an array of exactly 11 non-NULL elements whose
 *           first is the serial as a string, every field as the element
 *           it came from says (fetched 0/1; registered: a string, whose
 *           key is the registered value's, or nil; pttl -2..2^53; sight
 *           and event one of their names; places 0..2^31; own 0..2;
 *           texts are the reply's strings), a quarantined sighting never
 *           without a revoked value; DESYNC exactly from an array of 11
 *           whose first element is not that serial; NOSCRIPT exactly from
 *           an error reply starting with NOSCRIPT; on an error, no fact at
 *           all.
 *   key     a registered value binds the key of its first token
 *           "spki_sha256=" when 64 hex digits follow, and nothing else,
 *           malformed with anything else after it, none without one
 *           (checked against a second, naive reading).
 *   GET     OK exactly from nil (no value) or a string (that string).
 *   error   ERROR or NOSCRIPT, for any reply.
 *   push    SUBSCRIBED, INVALIDATE, FLUSH, PONG exactly from their shapes;
 *           INVALIDATE keys are the reply's strings, str != NULL.  Each
 *           key is parsed with the prefix "device_auth:" and without one:
 *           the kind in range, the id inside the key and valid for its
 *           kind, and the writer writes the key back from kind and id,
 *           into a buffer of exactly its size (one byte less: marked full,
 *           nothing written).  The key's bytes are written as the id of
 *           every kind, and read back as that kind and id when valid.
 *   decide  a decision (OK ... KEY_MISMATCH) in the documented order
 *           (revoked, signer revoked, signer compromised or unregistered,
 *           key mismatch, sighting), its cause and event; a plain text is
 *           the reason as it is.
 *   scan    OK exactly from [decimal cursor < 2^64, [strings]]: the cursor
 *           and the keys are the reply's; PFCOUNT an integer >= 0.
 *   reason  every one, of errors and decisions: terminated at reason_len,
 *           printable, without '"'; an error has one, and no cause, event
 *           or places.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_reply.h"
#include "ngx_device_auth_keys.h"
#include "fuzz_common.h"


/*
 * hiredis 0.14 allocates an array of "n" pointers as soon as it reads the
 * header "*n", up to n = 2^31 - 1 (16 GiB), before any element arrived.
 * Wrapped here so that the fuzzer does not stop on that allocation; see
 * fuzz/README.md.
 */
#define FUZZ_MAX_ARRAY   4096

#define FUZZ_MAX_DEPTH   8
#define FUZZ_MAX_NODES   512

/* the serial of the lookup the replies are read for */
#define FUZZ_SERIAL      "0123A1B2C3D4E5F601"
#define FUZZ_SERIAL_LEN  (sizeof(FUZZ_SERIAL) - 1)

/* the default device_auth_redis_prefix */
#define FUZZ_PREFIX      "device_auth:"
#define FUZZ_PREFIX_LEN  (sizeof(FUZZ_PREFIX) - 1)

#define FUZZ_QUARANTINE      "quarantined:"
#define FUZZ_QUARANTINE_LEN  (sizeof(FUZZ_QUARANTINE) - 1)

/* the rest of a decision's facts, from the input's last byte XOR '\n' */
#define FUZZ_CTX_REVOKED      0x01  /* not fetched: a revocation cached */
#define FUZZ_CTX_REGISTERED   0x02  /* not fetched: registered cached */
#define FUZZ_CTX_SIGNER       0x04  /* the signer revoked */
#define FUZZ_CTX_COMPROMISED  0x08  /* the signer compromised */
#define FUZZ_CTX_SIGHTED      0x10  /* no sighting in the reply: OK */
#define FUZZ_CTX_REGISTRY     0x20  /* device_auth_registry on */
#define FUZZ_CTX_EXPIRED      0x40  /* the revocation's PTTL has passed */
#define FUZZ_CTX_BIND_ALWAYS  0x80  /* device_auth_key_binding always */

#define FUZZ_HEAD_MAX    64
#define FUZZ_TAIL_MAX    320


typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
    int             nodes;
} fuzz_input_t;


/* what the input gives a decision besides the reply */

typedef struct {
    unsigned                 bits;        /* FUZZ_CTX_* */
    ngx_device_auth_text_t   head;        /* the input's first bytes */
    ngx_device_auth_text_t   tail;        /* its last bytes */
    int                      same_key;    /* the certificate's: registered */
    unsigned char            key[NGX_DEVICE_AUTH_KEY_LEN];
} fuzz_context_t;


static redisReplyObjectFunctions   fuzz_fns;
static void                     *(*fuzz_create_array)(const redisReadTask *,
                                                      int);

static const char  *fuzz_sights[] = { "", "ok", "duplicate", "quarantined" };


static int
fuzz_is(const redisReply *r, const char *s, size_t len)
{
    return r && r->type == REDIS_REPLY_STRING && r->str && r->len == len
           && memcmp(r->str, s, len) == 0;
}


static int
fuzz_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && r->len >= 8
           && memcmp(r->str, "NOSCRIPT", 8) == 0;
}


/* an array of n elements, none of them NULL */

static int
fuzz_is_array(const redisReply *r, size_t n)
{
    size_t  i;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != n
        || r->element == NULL)
    {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (r->element[i] == NULL) {
            return 0;
        }
    }

    return 1;
}


/* printable, without '"' and '\\': a reason shows it as it is */

static int
fuzz_is_plain(const ngx_device_auth_text_t *t)
{
    size_t          i;
    unsigned char   c;

    if (t->len > 200) {
        return 0;
    }

    for (i = 0; i < t->len; i++) {
        c = (unsigned char) t->data[i];

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_check_reason(const char *what, const ngx_device_auth_verdict_t *v)
{
    fuzz_assert(v->reason_len < sizeof(v->reason)
                && v->reason[v->reason_len] == '\0'
                && strlen(v->reason) == v->reason_len,
                "%s: reason_len %zu", what, v->reason_len);
    fuzz_assert(fuzz_is_printable(v->reason, sizeof(v->reason))
                && strchr(v->reason, '"') == NULL,
                "%s: reason not printable: \"%s\"", what, v->reason);
}


static void
fuzz_check_error(const char *what, int rc, const ngx_device_auth_verdict_t *v)
{
    fuzz_assert(rc == v->status, "%s: returns %d, status %d", what, rc,
                v->status);
    fuzz_assert(v->status == NGX_DEVICE_AUTH_V_ERROR
                || v->status == NGX_DEVICE_AUTH_V_NOSCRIPT
                || v->status == NGX_DEVICE_AUTH_V_DESYNC,
                "%s: status %d", what, v->status);
    fuzz_assert(v->cause == NGX_DEVICE_AUTH_CAUSE_NONE
                && v->event == NGX_DEVICE_AUTH_EV_NONE && v->places == 0,
                "%s: an error with cause %d, event %d, places %lld", what,
                v->cause, v->event, v->places);

    fuzz_check_reason(what, v);

    fuzz_assert(v->reason_len > 0, "%s: an error without a reason", what);
}


/* the error an error reply or no reply is: NOSCRIPT or ERROR */

static int
fuzz_error_status(const redisReply *r)
{
    return fuzz_is_noscript(r) ? NGX_DEVICE_AUTH_V_NOSCRIPT
                               : NGX_DEVICE_AUTH_V_ERROR;
}


/* the decision, from the facts the reply brings and the context */

static void
fuzz_decide(const ngx_device_auth_device_reply_t *d,
    const fuzz_context_t *ctx)
{
    int                         status, cause, event;
    const char                 *name;
    ngx_device_auth_text_t      text;
    ngx_device_auth_facts_t     f;
    ngx_device_auth_rules_t     rules;
    ngx_device_auth_verdict_t   v;

    memset(&f, 0, sizeof(ngx_device_auth_facts_t));

    /*
     * the device's facts as the operation keeps them: from the reply when
     * it fetched them or wrote a quarantine, else as cached before; the
     * cache drops a revocation whose PTTL has passed (0 has, at once)
     */

    if (d->fetched || d->sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED) {
        f.revoked = d->revoked;

        if (d->revoked.data && d->pttl >= 0
            && (d->pttl == 0 || (ctx->bits & FUZZ_CTX_EXPIRED)))
        {
            f.revoked.data = NULL;
            f.revoked.len = 0;
        }

    } else if (ctx->bits & FUZZ_CTX_REVOKED) {
        f.revoked = ctx->tail;
    }

    f.registered = d->fetched ? d->registered
                              : (ctx->bits & FUZZ_CTX_REGISTERED) != 0;

    if (d->fetched) {
        f.key = d->key;
        f.key_sha256 = d->key_sha256;
    }

    /* the certificate's key: the registered one, or another */

    f.cert_key = (ctx->same_key && f.key == NGX_DEVICE_AUTH_REGKEY_SHA256)
                 ? d->key_sha256 : ctx->key;

    /* the signer's, from GET replies */

    if (ctx->bits & FUZZ_CTX_SIGNER) {
        f.signer_revoked = ctx->head;
    }

    if (ctx->bits & FUZZ_CTX_COMPROMISED) {
        f.signer_compromised = ctx->tail;
    }

    /*
     * the request's sighting, or none asked for (then OK, unless one is
     * still to come); the module passes the reason escaped once already,
     * the raw bytes are the harder input
     */

    if (d->sight != NGX_DEVICE_AUTH_SIGHT_NONE) {
        f.sight = d->sight;
        f.sight_reason = d->reason;

    } else {
        f.sight = (ctx->bits & FUZZ_CTX_SIGHTED) ? NGX_DEVICE_AUTH_SIGHT_OK
                                                 : NGX_DEVICE_AUTH_SIGHT_NONE;
    }

    rules.registry = (ctx->bits & FUZZ_CTX_REGISTRY) != 0;
    rules.key_binding = (ctx->bits & FUZZ_CTX_BIND_ALWAYS)
                        ? NGX_DEVICE_AUTH_BIND_ALWAYS
                        : NGX_DEVICE_AUTH_BIND_COMPROMISED;

    memset(&v, 0xa5, sizeof(ngx_device_auth_verdict_t));

    ngx_device_auth_decide(&f, &rules, &v);

    fuzz_assert(v.status >= NGX_DEVICE_AUTH_V_OK
                && v.status < NGX_DEVICE_AUTH_V_DECISIONS,
                "decide: status %d is not a decision", v.status);
    fuzz_assert(v.event >= NGX_DEVICE_AUTH_EV_NONE
                && v.event < NGX_DEVICE_AUTH_EV_N, "decide: event %d",
                v.event);
    fuzz_assert(v.places == 0, "decide: places %lld", v.places);

    fuzz_check_reason("decide", &v);

    name = ngx_device_auth_verdict_name(v.status);
    fuzz_assert(name != NULL && strcmp(name, "error") != 0,
                "decide: no name for status %d", v.status);

    /* the order of src/ngx_device_auth_decide.c */

    cause = NGX_DEVICE_AUTH_CAUSE_NONE;
    event = NGX_DEVICE_AUTH_EV_NONE;
    text.data = NULL;
    text.len = 0;

    if (f.revoked.data) {
        if (f.revoked.len >= FUZZ_QUARANTINE_LEN
            && memcmp(f.revoked.data, FUZZ_QUARANTINE, FUZZ_QUARANTINE_LEN)
               == 0)
        {
            status = NGX_DEVICE_AUTH_V_QUARANTINED;
            event = NGX_DEVICE_AUTH_EV_QUARANTINED;

        } else {
            status = NGX_DEVICE_AUTH_V_REVOKED;
            event = NGX_DEVICE_AUTH_EV_REVOKED;
        }

        text = f.revoked;

    } else if (f.signer_revoked.data) {
        status = NGX_DEVICE_AUTH_V_SIGNER_REVOKED;
        event = NGX_DEVICE_AUTH_EV_SIGNER_REVOKED;
        text = f.signer_revoked;

    } else if (!f.registered && f.signer_compromised.data) {
        status = NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED;
        cause = NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED;
        event = NGX_DEVICE_AUTH_EV_SIGNER_COMPROMISED;

    } else if (!f.registered && rules.registry) {
        status = NGX_DEVICE_AUTH_V_UNREGISTERED;
        cause = NGX_DEVICE_AUTH_CAUSE_REGISTRY;
        event = NGX_DEVICE_AUTH_EV_UNREGISTERED;

    } else if (f.registered && f.key != NGX_DEVICE_AUTH_REGKEY_NONE
               && (f.signer_compromised.data
                   || rules.key_binding == NGX_DEVICE_AUTH_BIND_ALWAYS)
               && !(f.key == NGX_DEVICE_AUTH_REGKEY_SHA256
                    && memcmp(f.key_sha256, f.cert_key,
                              NGX_DEVICE_AUTH_KEY_LEN) == 0))
    {
        status = NGX_DEVICE_AUTH_V_KEY_MISMATCH;
        cause = f.signer_compromised.data
                ? NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED
                : NGX_DEVICE_AUTH_CAUSE_KEY_BINDING;
        event = NGX_DEVICE_AUTH_EV_KEY_MISMATCH;

    } else if (f.sight == NGX_DEVICE_AUTH_SIGHT_DUPLICATE) {
        status = NGX_DEVICE_AUTH_V_DUPLICATE;
        text = f.sight_reason;

    } else if (f.sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED) {
        status = NGX_DEVICE_AUTH_V_QUARANTINED;
        text = f.sight_reason;

    } else {
        status = NGX_DEVICE_AUTH_V_OK;
    }

    fuzz_assert(v.status == status && v.cause == cause && v.event == event,
                "decide: status %d cause %d event %d, not %d %d %d",
                v.status, v.cause, v.event, status, cause, event);

    if (status == NGX_DEVICE_AUTH_V_OK) {
        fuzz_assert(v.reason_len == 0, "decide: ok with reason \"%s\"",
                    v.reason);
    }

    if (text.data && fuzz_is_plain(&text)) {
        fuzz_assert(v.reason_len == text.len
                    && memcmp(v.reason, text.data, text.len) == 0,
                    "decide: reason \"%s\" for a plain text of %zu bytes",
                    v.reason, text.len);
    }

    if (status == NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED) {
        fuzz_assert(strncmp(v.reason, "signer compromised (", 20) == 0,
                    "decide: reason \"%s\"", v.reason);
    }

    if (status == NGX_DEVICE_AUTH_V_KEY_MISMATCH) {
        fuzz_assert(strncmp(v.reason, "certificate key spki_sha256 ", 28)
                    == 0, "decide: reason \"%s\"", v.reason);
    }
}


/*
 * A second reading of a registered value's key, by another method: the
 * first token that starts with "spki_sha256=" (tokens split on ' ')
 */

static int
fuzz_key_bound(const char *s, size_t len, unsigned char *key)
{
    size_t        i, start, end;
    unsigned int  b;
    char          hex[3];

    memset(key, 0, NGX_DEVICE_AUTH_KEY_LEN);

    for (start = 0; start <= len; start = end + 1) {
        for (end = start; end < len && s[end] != ' '; end++) { /* void */ }

        if (end - start < 12 || memcmp(s + start, "spki_sha256=", 12) != 0) {
            continue;
        }

        if (end - start != 12 + 64) {
            return NGX_DEVICE_AUTH_REGKEY_MALFORMED;
        }

        for (i = 0; i < 32; i++) {
            hex[0] = s[start + 12 + 2 * i];
            hex[1] = s[start + 13 + 2 * i];
            hex[2] = '\0';

            if (strspn(hex, "0123456789abcdefABCDEF") != 2
                || sscanf(hex, "%2x", &b) != 1)
            {
                memset(key, 0, NGX_DEVICE_AUTH_KEY_LEN);
                return NGX_DEVICE_AUTH_REGKEY_MALFORMED;
            }

            key[i] = (unsigned char) b;
        }

        return NGX_DEVICE_AUTH_REGKEY_SHA256;
    }

    return NGX_DEVICE_AUTH_REGKEY_NONE;
}


/* every string of a reply, as a registered value */

static void
fuzz_registered(const redisReply *r, int depth)
{
    int                      rc;
    size_t                   i;
    char                    *copy;
    unsigned char            key[NGX_DEVICE_AUTH_KEY_LEN];
    unsigned char            want[NGX_DEVICE_AUTH_KEY_LEN];
    ngx_device_auth_text_t   t;

    if (r == NULL || depth > FUZZ_MAX_DEPTH) {
        return;
    }

    if (r->type == REDIS_REPLY_STRING && r->str) {

        /* exactly its bytes: no NUL to stop a read past them */

        copy = malloc(r->len ? r->len : 1);
        if (copy == NULL) {
            abort();
        }

        memcpy(copy, r->str, r->len);

        t.data = copy;
        t.len = r->len;

        memset(key, 0xa5, sizeof(key));
        rc = ngx_device_auth_registered_key(&t, key);

        fuzz_assert(rc == fuzz_key_bound(r->str, r->len, want)
                    && memcmp(key, want, sizeof(key)) == 0,
                    "registered key: %d", rc);

        free(copy);
    }

    if (r->type == REDIS_REPLY_ARRAY && r->element) {
        for (i = 0; i < r->elements && i < 64; i++) {
            fuzz_registered(r->element[i], depth + 1);
        }
    }
}


/* a SCAN's reply, a PFCOUNT's */

static void
fuzz_scan(const redisReply *r)
{
    int                       rc, ok;
    size_t                    i, n;
    unsigned long long        cursor, want;
    const redisReply         *c, *k;
    const redisReply *const  *keys;
    long long                 count;

    c = NULL;
    k = NULL;
    want = 0;

    rc = ngx_device_auth_reply_scan(r, &cursor, &keys, &n);

    ok = fuzz_is_array(r, 2);

    if (ok) {
        c = r->element[0];
        k = r->element[1];

        ok = c->type == REDIS_REPLY_STRING && c->str && c->len > 0
             && c->len <= 20 && strspn(c->str, "0123456789") >= c->len
             && k->type == REDIS_REPLY_ARRAY
             && (k->elements == 0 || k->element);

        want = 0;

        for (i = 0; ok && i < c->len; i++) {
            if (want > (~0ULL - (unsigned long long) (c->str[i] - '0')) / 10) {
                ok = 0;
                break;
            }

            want = want * 10 + (unsigned long long) (c->str[i] - '0');
        }

        for (i = 0; ok && i < k->elements; i++) {
            ok = k->element[i] && k->element[i]->type == REDIS_REPLY_STRING
                 && k->element[i]->str;
        }
    }

    fuzz_assert(ok ? rc == 0 : rc == -1, "scan: %d", rc);

    if (rc == 0) {
        fuzz_assert(cursor == want
                    && keys == (const redisReply *const *) k->element
                    && n == k->elements, "scan: not the reply's");

    } else {
        fuzz_assert(cursor == 0 && keys == NULL && n == 0,
                    "scan: an error with keys");
    }

    rc = ngx_device_auth_reply_integer(r, &count);

    fuzz_assert(rc == ((r && r->type == REDIS_REPLY_INTEGER
                        && r->integer >= 0) ? 0 : -1)
                && count == (rc == 0 ? r->integer : 0),
                "integer: %d", rc);
}


/* the device script's reply */

static void
fuzz_device(const redisReply *r, const fuzz_context_t *ctx)
{
    int                              rc, expect;
    unsigned char                    key[NGX_DEVICE_AUTH_KEY_LEN];
    const redisReply                *e;
    ngx_device_auth_verdict_t        err;
    ngx_device_auth_device_reply_t   d;

    memset(&d, 0xa5, sizeof(ngx_device_auth_device_reply_t));
    memset(&err, 0xa5, sizeof(ngx_device_auth_verdict_t));

    rc = ngx_device_auth_reply_device(r, FUZZ_SERIAL, FUZZ_SERIAL_LEN, &d,
                                      &err);

    /* the shape alone decides, but for the fields: -1 */

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        expect = fuzz_error_status(r);

    } else if (!fuzz_is_array(r, 11)) {
        expect = NGX_DEVICE_AUTH_V_ERROR;

    } else if (!fuzz_is(r->element[0], FUZZ_SERIAL, FUZZ_SERIAL_LEN)) {
        expect = NGX_DEVICE_AUTH_V_DESYNC;

    } else {
        expect = -1;
    }

    if (expect != -1) {
        fuzz_assert(rc == expect, "device reply: %d, not %d", rc, expect);

    } else {
        fuzz_assert(rc == NGX_DEVICE_AUTH_V_OK
                    || rc == NGX_DEVICE_AUTH_V_ERROR,
                    "device reply of the serial: %d", rc);
    }

    if (rc != NGX_DEVICE_AUTH_V_OK) {
        fuzz_check_error("device reply", rc, &err);

        /* no fact from an error */

        fuzz_assert(d.fetched == 0 && d.revoked.data == NULL
                    && d.revoked.len == 0 && d.pttl == 0 && d.registered == 0
                    && d.key == NGX_DEVICE_AUTH_REGKEY_NONE
                    && d.sight == NGX_DEVICE_AUTH_SIGHT_NONE && d.places == 0
                    && d.reason.data == NULL && d.reason.len == 0
                    && d.event == NGX_DEVICE_AUTH_EV_NONE
                    && d.edges.data == NULL && d.edges.len == 0
                    && d.own == 0,
                    "device reply: an error with facts");
        return;
    }

    fuzz_assert(expect == -1, "device reply: ok from another shape");
    fuzz_assert(err.status == NGX_DEVICE_AUTH_V_OK, "device reply: ok, "
                "err.status %d", err.status);

    /* { serial, fetched, revoked, pttl, registered, sight, places, ... } */

    e = r->element[1];
    fuzz_assert(e->type == REDIS_REPLY_INTEGER && e->integer == d.fetched
                && (d.fetched == 0 || d.fetched == 1),
                "device reply: fetched %d", d.fetched);

    e = r->element[2];
    fuzz_assert(d.revoked.data
                ? e->type == REDIS_REPLY_STRING && d.revoked.data == e->str
                  && d.revoked.len == e->len
                : e->type == REDIS_REPLY_NIL && d.revoked.len == 0,
                "device reply: revoked not the reply's (type %d)", e->type);

    e = r->element[3];
    fuzz_assert(e->type == REDIS_REPLY_INTEGER && e->integer == d.pttl
                && d.pttl >= -2 && d.pttl <= (1LL << 53),
                "device reply: pttl %lld", d.pttl);

    e = r->element[4];
    fuzz_assert(d.registered
                ? e->type == REDIS_REPLY_STRING && e->str
                  && d.key == fuzz_key_bound(e->str, e->len, key)
                  && (d.key != NGX_DEVICE_AUTH_REGKEY_SHA256
                      || memcmp(d.key_sha256, key, sizeof(key)) == 0)
                : e->type == REDIS_REPLY_NIL
                  && d.key == NGX_DEVICE_AUTH_REGKEY_NONE,
                "device reply: registered %d, key %d (type %d)",
                d.registered, d.key, e->type);

    e = r->element[5];
    fuzz_assert(d.sight >= NGX_DEVICE_AUTH_SIGHT_NONE
                && d.sight <= NGX_DEVICE_AUTH_SIGHT_QUARANTINED
                && fuzz_is(e, fuzz_sights[d.sight],
                           strlen(fuzz_sights[d.sight])),
                "device reply: sight %d", d.sight);

    e = r->element[6];
    fuzz_assert(e->type == REDIS_REPLY_INTEGER && e->integer == d.places
                && d.places >= 0 && d.places <= (1LL << 31),
                "device reply: places %lld", d.places);

    e = r->element[7];
    fuzz_assert(e->type == REDIS_REPLY_STRING && e->str
                && d.reason.data == e->str && d.reason.len == e->len,
                "device reply: reason not the reply's (type %d)", e->type);

    e = r->element[8];
    fuzz_assert(d.event >= NGX_DEVICE_AUTH_EV_NONE
                && d.event < NGX_DEVICE_AUTH_EV_N
                && fuzz_is(e, ngx_device_auth_event_name(d.event),
                           strlen(ngx_device_auth_event_name(d.event))),
                "device reply: event %d", d.event);

    e = r->element[9];
    fuzz_assert(e->type == REDIS_REPLY_STRING && e->str
                && d.edges.data == e->str && d.edges.len == e->len,
                "device reply: edges not the reply's (type %d)", e->type);

    e = r->element[10];
    fuzz_assert(e->type == REDIS_REPLY_INTEGER && e->integer == d.own
                && d.own >= 0 && d.own <= 2,
                "device reply: own %lld", d.own);

    fuzz_assert(d.sight != NGX_DEVICE_AUTH_SIGHT_QUARANTINED
                || d.revoked.data, "device reply: quarantined, not revoked");

    fuzz_decide(&d, ctx);
}


/* a GET's reply: a signer's fact */

static void
fuzz_get(const redisReply *r)
{
    int                        rc, nil, string;
    ngx_device_auth_text_t     value;
    ngx_device_auth_verdict_t  err;

    memset(&value, 0xa5, sizeof(ngx_device_auth_text_t));
    memset(&err, 0xa5, sizeof(ngx_device_auth_verdict_t));

    rc = ngx_device_auth_reply_get(r, &value, &err);

    nil = r && r->type == REDIS_REPLY_NIL;
    string = r && r->type == REDIS_REPLY_STRING && r->str;

    if (nil || string) {
        fuzz_assert(rc == NGX_DEVICE_AUTH_V_OK
                    && err.status == NGX_DEVICE_AUTH_V_OK,
                    "GET: %d from a %s", rc, nil ? "nil" : "string");
        fuzz_assert(nil ? value.data == NULL && value.len == 0
                        : value.data == r->str && value.len == r->len,
                    "GET: a value not the reply's");
        return;
    }

    fuzz_assert(rc == (r == NULL || r->type == REDIS_REPLY_ERROR
                       ? fuzz_error_status(r) : NGX_DEVICE_AUTH_V_ERROR),
                "GET: %d from type %d", rc, r ? r->type : -1);
    fuzz_assert(value.data == NULL && value.len == 0,
                "GET: an error with a value");

    fuzz_check_error("GET", rc, &err);
}


static void
fuzz_error(const redisReply *r)
{
    int                        rc;
    ngx_device_auth_verdict_t  err;

    memset(&err, 0xa5, sizeof(ngx_device_auth_verdict_t));

    rc = ngx_device_auth_reply_error(r, &err);

    fuzz_assert(rc == fuzz_error_status(r), "error: %d from type %d", rc,
                r ? r->type : -1);

    fuzz_check_error("error", rc, &err);
}


/* an id the writer writes so that the parser reads it back */

static int
fuzz_key_id_valid(int kind, const unsigned char *id, size_t len)
{
    if (kind == NGX_DEVICE_AUTH_KEY_EVENTS) {
        return len == 0;
    }

    return len > 0 && memchr(id, '{', len) == NULL
           && memchr(id, '}', len) == NULL
           && ((kind != NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED
                && kind != NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED)
               || memchr(id, ':', len) == NULL);
}


/*
 * The key of that kind and id as a bulk string into a buffer of exactly
 * "size" bytes (nothing past it, ASan watching); the key's bytes in *key.
 */

static size_t
fuzz_key_write(const char *prefix, size_t prefix_len, int kind,
    const unsigned char *id, size_t id_len, unsigned char *buf, size_t size,
    const unsigned char **key)
{
    size_t                   len, n;
    unsigned long            klen;
    ngx_device_auth_resp_t   cmd;

    ngx_device_auth_resp_init(&cmd, buf, size);
    ngx_device_auth_key_write(&cmd, prefix, prefix_len, kind, id, id_len);

    len = ngx_device_auth_resp_len(&cmd);

    fuzz_assert(cmd.pos <= cmd.end, "key write: past the buffer");
    fuzz_assert(cmd.full ? len == 0 : len == (size_t) (cmd.pos - buf),
                "key write: length %zu, full %d", len, cmd.full);

    if (len == 0) {
        return 0;
    }

    /* "$<n>\r\n<key>\r\n" */

    fuzz_assert(len >= 6 && buf[0] == '$', "key write: not a bulk string");

    klen = 0;

    for (n = 1; n < len && buf[n] >= '0' && buf[n] <= '9'; n++) {
        klen = klen * 10 + (buf[n] - '0');
    }

    fuzz_assert(n < len - 1 && buf[n] == '\r' && buf[n + 1] == '\n'
                && len == n + 2 + klen + 2 && buf[len - 2] == '\r'
                && buf[len - 1] == '\n', "key write: bulk string framing");

    *key = buf + n + 2;

    return klen;
}


/* a key pushed by Redis: untrusted bytes */

static void
fuzz_key_parse(const char *prefix, size_t prefix_len,
    const unsigned char *key, size_t len)
{
    int                   kind;
    size_t                id_len, size, klen;
    unsigned char        *buf;
    const unsigned char  *id, *back;

    id = (const unsigned char *) "x";
    id_len = 1;

    kind = ngx_device_auth_key_parse(prefix, prefix_len, key, len, &id,
                                     &id_len);

    fuzz_assert(kind >= NGX_DEVICE_AUTH_KEY_OTHER
                && kind <= NGX_DEVICE_AUTH_KEY_DEVICES, "key: kind %d", kind);

    if (kind == NGX_DEVICE_AUTH_KEY_OTHER) {
        fuzz_assert(id == NULL && id_len == 0, "key: other, with an id");
        return;
    }

    fuzz_assert(len >= prefix_len && memcmp(key, prefix, prefix_len) == 0,
                "key: kind %d without the prefix", kind);
    fuzz_assert(id >= key + prefix_len && id <= key + len
                && id_len <= (size_t) (key + len - id),
                "key: kind %d, the id not inside the key", kind);
    fuzz_assert(fuzz_key_id_valid(kind, id, id_len),
                "key: kind %d with an id of %zu bytes not valid for it",
                kind, id_len);

    /* the writer writes it back, from kind and id, to the byte */

    size = len + 32;
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    klen = fuzz_key_write(prefix, prefix_len, kind, id, id_len, buf, size,
                          &back);

    fuzz_assert(klen == len && memcmp(back, key, len) == 0,
                "key: kind %d written back as %zu bytes, not %zu", kind,
                klen, len);

    /* exactly its size, then a byte less */

    size = (size_t) (back - buf) + len + 2;
    free(buf);

    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    klen = fuzz_key_write(prefix, prefix_len, kind, id, id_len, buf, size,
                          &back);
    fuzz_assert(klen == len, "key: not written into its own size");

    free(buf);

    buf = malloc(size - 1);
    if (buf == NULL) {
        abort();
    }

    klen = fuzz_key_write(prefix, prefix_len, kind, id, id_len, buf,
                          size - 1, &back);
    fuzz_assert(klen == 0, "key: written into a byte less than its size");

    free(buf);
}


/* the key's bytes as the id of every kind: read back when valid */

static void
fuzz_key_kinds(const char *prefix, size_t prefix_len,
    const unsigned char *id, size_t len)
{
    int                   kind, back;
    size_t                size, klen, id_len;
    unsigned char        *buf;
    const unsigned char  *key, *id2;

    size = prefix_len + len + 64;
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    for (kind = -1; kind <= NGX_DEVICE_AUTH_KEY_DEVICES + 1; kind++) {
        key = NULL;
        klen = fuzz_key_write(prefix, prefix_len, kind, id, len, buf, size,
                              &key);

        if (kind <= NGX_DEVICE_AUTH_KEY_OTHER
            || kind > NGX_DEVICE_AUTH_KEY_DEVICES)
        {
            fuzz_assert(klen == 0, "key: kind %d written", kind);
            continue;
        }

        fuzz_assert(klen >= prefix_len + len, "key: kind %d not written",
                    kind);

        if (!fuzz_key_id_valid(kind, id, len)) {
            continue;
        }

        back = ngx_device_auth_key_parse(prefix, prefix_len, key, klen, &id2,
                                         &id_len);

        fuzz_assert(back == kind && id_len == len
                    && memcmp(id2, id, len) == 0,
                    "key: kind %d with an id of %zu bytes read back as kind "
                    "%d, %zu bytes", kind, len, back, id_len);
    }

    free(buf);
}


static void
fuzz_key(const redisReply *k)
{
    unsigned char  *key;

    /* a copy of exactly its bytes: no NUL to stop a read past them */

    key = malloc(k->len ? k->len : 1);
    if (key == NULL) {
        abort();
    }

    memcpy(key, k->str, k->len);

    fuzz_key_parse(FUZZ_PREFIX, FUZZ_PREFIX_LEN, key, k->len);
    fuzz_key_parse("", 0, key, k->len);

    fuzz_key_kinds(FUZZ_PREFIX, FUZZ_PREFIX_LEN, key, k->len);

    free(key);
}


/* a message of the invalidation channel */

static void
fuzz_push(const redisReply *r)
{
    int                       rc, expect;
    size_t                    i, n;
    const redisReply         *e;
    const redisReply *const  *keys;

    keys = (const redisReply *const *) &keys;
    n = 0xa5;

    rc = ngx_device_auth_reply_push(r, &keys, &n);

    fuzz_assert(rc >= NGX_DEVICE_AUTH_PUSH_BAD
                && rc <= NGX_DEVICE_AUTH_PUSH_PONG, "push: %d", rc);

    /* ["pong", x], [kind, "__redis__:invalidate", x] */

    expect = NGX_DEVICE_AUTH_PUSH_BAD;
    e = NULL;

    if (fuzz_is_array(r, 2)) {
        if (fuzz_is(r->element[0], "pong", 4)) {
            expect = NGX_DEVICE_AUTH_PUSH_PONG;
        }

    } else if (fuzz_is_array(r, 3)
               && fuzz_is(r->element[1], NGX_DEVICE_AUTH_INVALIDATE_CHANNEL,
                          sizeof(NGX_DEVICE_AUTH_INVALIDATE_CHANNEL) - 1))
    {
        e = r->element[2];

        if (fuzz_is(r->element[0], "subscribe", 9)) {
            if (e->type == REDIS_REPLY_INTEGER) {
                expect = NGX_DEVICE_AUTH_PUSH_SUBSCRIBED;
            }

        } else if (fuzz_is(r->element[0], "message", 7)) {

            /* the keys, or nil: all of them; hiredis makes *0 element NULL */

            if (e->type == REDIS_REPLY_NIL) {
                expect = NGX_DEVICE_AUTH_PUSH_FLUSH;

            } else if (e->type == REDIS_REPLY_ARRAY && e->element) {
                expect = NGX_DEVICE_AUTH_PUSH_INVALIDATE;

                for (i = 0; i < e->elements; i++) {
                    if (e->element[i] == NULL
                        || e->element[i]->type != REDIS_REPLY_STRING
                        || e->element[i]->str == NULL)
                    {
                        expect = NGX_DEVICE_AUTH_PUSH_BAD;
                        break;
                    }
                }
            }
        }
    }

    fuzz_assert(rc == expect, "push: %d, not %d", rc, expect);

    if (rc != NGX_DEVICE_AUTH_PUSH_INVALIDATE) {
        fuzz_assert(keys == NULL && n == 0, "push: %d with keys", rc);
        return;
    }

    fuzz_assert(keys == (const redisReply *const *) e->element
                && n == e->elements, "push: keys not the message's");

    for (i = 0; i < n; i++) {
        fuzz_assert(keys[i] && keys[i]->type == REDIS_REPLY_STRING
                    && keys[i]->str, "push: key %zu not a string", i);

        fuzz_key(keys[i]);
    }
}


static void
fuzz_parse(const redisReply *r, const fuzz_context_t *ctx)
{
    fuzz_device(r, ctx);
    fuzz_get(r);
    fuzz_error(r);
    fuzz_push(r);
    fuzz_scan(r);
    fuzz_registered(r, 0);
}


/* hiredis' own reader: every shape the wire can carry */

static void *
fuzz_capped_array(const redisReadTask *task, int elements)
{
    if (elements > FUZZ_MAX_ARRAY) {
        return NULL;            /* the reader reports "Out of memory" */
    }

    return fuzz_create_array(task, elements);
}


static void
fuzz_wire(const uint8_t *data, size_t size, const fuzz_context_t *ctx)
{
    int           n;
    void         *reply;
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        abort();
    }

    if (fuzz_create_array == NULL) {
        fuzz_fns = *reader->fn;
        fuzz_create_array = fuzz_fns.createArray;
        fuzz_fns.createArray = fuzz_capped_array;
    }

    reader->fn = &fuzz_fns;

    if (redisReaderFeed(reader, (const char *) data, size) != REDIS_OK) {
        redisReaderFree(reader);
        return;
    }

    /* a pipeline: replies come one after another */

    for (n = 0; n < 1024; n++) {
        reply = NULL;

        if (redisReaderGetReply(reader, &reply) != REDIS_OK
            || reply == NULL)
        {
            break;
        }

        fuzz_parse(reply, ctx);
        freeReplyObject(reply);
    }

    redisReaderFree(reader);
}


/* trees built by hand: shapes hiredis does not make */

static unsigned
fuzz_byte(fuzz_input_t *in)
{
    return in->p < in->end ? *in->p++ : 0;
}


static void
fuzz_free_tree(redisReply *r, size_t count)
{
    size_t  i;

    if (r == NULL) {
        return;
    }

    if (r->element) {
        for (i = 0; i < count; i++) {
            fuzz_free_tree(r->element[i], r->element[i]
                                          ? r->element[i]->elements : 0);
        }

        free(r->element);
    }

    free(r->str);
    free(r);
}


static redisReply *
fuzz_node(fuzz_input_t *in, int depth)
{
    int          i;
    size_t       len, avail;
    unsigned     type, flags;
    redisReply  *r;

    static const size_t  huge[] = {
        4, (size_t) 1 << 31, (size_t) 1 << 40, SIZE_MAX
    };

    type = fuzz_byte(in);

    if (type == 0xff || in->nodes >= FUZZ_MAX_NODES) {
        return NULL;
    }

    in->nodes++;

    r = calloc(1, sizeof(redisReply));
    if (r == NULL) {
        abort();
    }

    r->type = (int) (type % 16);
    flags = fuzz_byte(in);

    if (flags & 0x01) {
        for (i = 0; i < 8; i++) {
            r->integer = (long long) (((unsigned long long) r->integer << 8)
                                      | fuzz_byte(in));
        }
    }

    if (flags & 0x02) {
        len = fuzz_byte(in);

        if (flags & 0x04) {
            len = (len << 8) | fuzz_byte(in);
        }

        r->str = malloc(len + 1);
        if (r->str == NULL) {
            abort();
        }

        avail = (size_t) (in->end - in->p);
        avail = avail < len ? avail : len;

        memcpy(r->str, in->p, avail);
        memset(r->str + avail, 'x', len - avail);
        r->str[len] = '\0';
        r->len = len;
        in->p += avail;

    } else if (flags & 0x08) {
        r->len = (fuzz_byte(in) << 8) | fuzz_byte(in);
    }

    if (flags & 0x10) {
        r->elements = fuzz_byte(in) % 17;
        r->element = calloc(r->elements ? r->elements : 1,
                            sizeof(redisReply *));
        if (r->element == NULL) {
            abort();
        }

        for (i = 0; i < (int) r->elements; i++) {
            r->element[i] = depth < FUZZ_MAX_DEPTH ? fuzz_node(in, depth + 1)
                                                   : NULL;
        }

    } else if (flags & 0x20) {
        r->elements = huge[fuzz_byte(in) % 4];
    }

    return r;
}


static void
fuzz_tree(const uint8_t *data, size_t size, const fuzz_context_t *ctx)
{
    redisReply    *r;
    fuzz_input_t   in;

    in.p = data;
    in.end = data + size;
    in.nodes = 0;

    r = fuzz_node(&in, 0);

    fuzz_parse(r, ctx);

    fuzz_free_tree(r, r && r->element ? r->elements : 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          n;
    fuzz_context_t  ctx;

    ctx.bits = size ? (unsigned) (data[size - 1] ^ '\n') : 0;

    n = size < FUZZ_HEAD_MAX ? size : FUZZ_HEAD_MAX;
    ctx.head.data = (const char *) data;
    ctx.head.len = n;

    n = size < FUZZ_TAIL_MAX ? size : FUZZ_TAIL_MAX;
    ctx.tail.data = (const char *) data + size - n;
    ctx.tail.len = n;

    ctx.same_key = (size % 2 == 0);
    memset(ctx.key, 0, sizeof(ctx.key));
    n = size < sizeof(ctx.key) ? size : sizeof(ctx.key);
    memcpy(ctx.key, data + size - n, n);

    fuzz_parse(NULL, &ctx);

    if (size == 0) {
        return 0;
    }

    if (strchr("*$:+-", data[0]) != NULL && data[0] != '\0') {
        fuzz_wire(data, size, &ctx);

    } else {
        fuzz_tree(data + 1, size - 1, &ctx);
    }

    return 0;
}
