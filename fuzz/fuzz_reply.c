
/*
 * fuzz_reply: the verdict from a Redis script reply
 * (src/ngx_device_auth_reply.c), for any reply shape.
 *
 * Input, by its first byte:
 *
 *   '*' '$' ':' '+' '-'   RESP wire bytes, fed to hiredis' own reader
 *                         (redisReaderCreate/Feed/GetReply): every reply
 *                         it returns is parsed, so every shape the wire can
 *                         carry is covered, nested arrays and nil included.
 *   anything else         a reply tree built directly from the bytes that
 *                         follow, for shapes hiredis 0.14 never returns but
 *                         a parser must survive: NULL elements, "element"
 *                         NULL with any element count (4, 2^31, 2^40,
 *                         SIZE_MAX), strings whose "str" is NULL while
 *                         "len" is not, hiredis 1.x types (double, bool,
 *                         map, set, push, ...) and unknown types.
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
 * Checked besides the sanitizers: status, cause and reason are in range;
 * the reason is terminated at reason_len and printable without quotes; a
 * device verdict (ok ... duplicate) comes only from an array of 5 whose
 * first element is that verdict's name as a string and whose last is the
 * serial of the lookup; NOSCRIPT only from an error reply starting with
 * NOSCRIPT; "places" only from an integer.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_reply.h"
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

/* the serial of the lookup the replies are parsed for */
#define FUZZ_SERIAL      "0123A1B2C3D4E5F601"
#define FUZZ_SERIAL_LEN  (sizeof(FUZZ_SERIAL) - 1)


typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
    int             nodes;
} fuzz_input_t;


static redisReplyObjectFunctions   fuzz_fns;
static void                     *(*fuzz_create_array)(const redisReadTask *,
                                                      int);


static void
fuzz_check(const redisReply *r, const ngx_device_auth_verdict_t *v)
{
    const char        *name;
    const redisReply  *e;

    fuzz_assert(v->status >= NGX_DEVICE_AUTH_V_OK
                && v->status <= NGX_DEVICE_AUTH_V_DESYNC, "status %d",
                v->status);
    fuzz_assert(v->cause >= NGX_DEVICE_AUTH_CAUSE_NONE
                && v->cause <= NGX_DEVICE_AUTH_CAUSE_REGISTRY, "cause %d",
                v->cause);
    fuzz_assert(v->reason_len < sizeof(v->reason)
                && v->reason[v->reason_len] == '\0'
                && strlen(v->reason) == v->reason_len,
                "reason_len %zu", v->reason_len);
    fuzz_assert(fuzz_is_printable(v->reason, sizeof(v->reason))
                && strchr(v->reason, '"') == NULL,
                "reason not printable: \"%s\"", v->reason);

    name = ngx_device_auth_verdict_name(v->status);
    fuzz_assert(name != NULL, "no name for status %d", v->status);

    if (v->status == NGX_DEVICE_AUTH_V_NOSCRIPT) {
        fuzz_assert(r && r->type == REDIS_REPLY_ERROR && r->str
                    && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0,
                    "NOSCRIPT from another reply");
    }

    if (v->status == NGX_DEVICE_AUTH_V_DESYNC) {
        fuzz_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 5
                    && r->element && r->element[4]
                    && !(r->element[4]->type == REDIS_REPLY_STRING
                         && r->element[4]->str
                         && r->element[4]->len == FUZZ_SERIAL_LEN
                         && memcmp(r->element[4]->str, FUZZ_SERIAL,
                                   FUZZ_SERIAL_LEN) == 0),
                    "desync from a reply of the lookup's serial");
    }

    if (v->status == NGX_DEVICE_AUTH_V_ERROR
        || v->status == NGX_DEVICE_AUTH_V_NOSCRIPT
        || v->status == NGX_DEVICE_AUTH_V_DESYNC)
    {
        fuzz_assert(v->places == 0 && v->cause == 0,
                    "error with places %lld, cause %d", v->places, v->cause);
        fuzz_assert(v->reason_len > 0, "error without a reason");
        return;
    }

    /* a device verdict: only from { verdict, reason, places, cause, sn } */

    fuzz_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 5
                && r->element, "verdict %s from a reply that is not an "
                "array of 5", name);

    e = r->element[4];
    fuzz_assert(e && e->type == REDIS_REPLY_STRING && e->str
                && e->len == FUZZ_SERIAL_LEN
                && memcmp(e->str, FUZZ_SERIAL, FUZZ_SERIAL_LEN) == 0,
                "verdict %s for another serial", name);

    e = r->element[0];
    fuzz_assert(e && e->type == REDIS_REPLY_STRING && e->str
                && e->len == strlen(name) && memcmp(e->str, name, e->len) == 0,
                "verdict %s from another first element", name);

    e = r->element[2];
    fuzz_assert(e && (e->type == REDIS_REPLY_INTEGER
                      ? v->places == e->integer : v->places == 0),
                "places %lld", v->places);

    e = r->element[3];
    fuzz_assert(v->cause == 0
                || (e && e->type == REDIS_REPLY_STRING && e->str),
                "cause %d without a cause string", v->cause);
}


static void
fuzz_parse(const redisReply *r)
{
    ngx_device_auth_verdict_t  v;

    memset(&v, 0xa5, sizeof(v));

    ngx_device_auth_reply_parse(r, FUZZ_SERIAL, FUZZ_SERIAL_LEN, &v);
    fuzz_check(r, &v);
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
fuzz_wire(const uint8_t *data, size_t size)
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

        fuzz_parse(reply);
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
fuzz_tree(const uint8_t *data, size_t size)
{
    redisReply    *r;
    fuzz_input_t   in;

    in.p = data;
    in.end = data + size;
    in.nodes = 0;

    r = fuzz_node(&in, 0);

    fuzz_parse(r);

    fuzz_free_tree(r, r && r->element ? r->elements : 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse(NULL);

    if (size == 0) {
        return 0;
    }

    if (strchr("*$:+-", data[0]) != NULL && data[0] != '\0') {
        fuzz_wire(data, size);

    } else {
        fuzz_tree(data + 1, size - 1);
    }

    return 0;
}
