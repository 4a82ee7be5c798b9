
/*
 * fuzz_resp: the Redis wire (src/ngx_device_auth_resp.c).
 *
 * Input, by its first byte:
 *
 *   'E'            the encoder: byte 1 is the size of the buffer (0-255,
 *                  allocated to the byte, so that ASan sees a write past
 *                  it), then pieces "<length byte><bytes>" until the input
 *                  ends.  The pieces are written as a command (an array of
 *                  bulk strings).  Checked: nothing past the buffer; when
 *                  it fits, hiredis' reader reads back one array of exactly
 *                  those strings, and when it does not, the length is 0.
 *   anything else  the scanner, on the bytes that follow byte 0: whole,
 *                  and again cut into pieces at the offsets byte 0 chooses.
 *                  Checked: both give the same count; when the scanner
 *                  accepts the stream, hiredis' own reader finds exactly
 *                  that many complete replies in it, and no error.  That
 *                  is what makes the count trustworthy: hiredis never has
 *                  a reply the scanner did not count.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_resp.h"
#include "fuzz_common.h"


#define FUZZ_MAX_PIECES  64


static void
fuzz_encoder(const uint8_t *data, size_t size)
{
    int             i, n;
    void           *reply;
    size_t          len, bufsize, plen[FUZZ_MAX_PIECES];
    redisReply     *r;
    redisReader    *reader;
    unsigned char  *buf;
    const uint8_t  *p, *end, *piece[FUZZ_MAX_PIECES];
    ngx_device_auth_resp_t  cmd;

    if (size < 2) {
        return;
    }

    bufsize = data[1];
    p = data + 2;
    end = data + size;

    for (n = 0; n < FUZZ_MAX_PIECES && p < end; n++) {
        len = *p++;
        if (len > (size_t) (end - p)) {
            len = (size_t) (end - p);
        }

        piece[n] = p;
        plen[n] = len;
        p += len;
    }

    buf = malloc(bufsize ? bufsize : 1);
    if (buf == NULL) {
        abort();
    }

    ngx_device_auth_resp_init(&cmd, buf, bufsize);
    ngx_device_auth_resp_array(&cmd, (size_t) n);

    for (i = 0; i < n; i++) {
        ngx_device_auth_resp_bulk(&cmd, piece[i], plen[i]);
    }

    len = ngx_device_auth_resp_len(&cmd);

    fuzz_assert(cmd.pos <= cmd.end, "wrote past the buffer");
    fuzz_assert(cmd.full ? len == 0 : len == (size_t) (cmd.pos - buf),
                "length %zu, full %d", len, cmd.full);

    if (len == 0) {
        free(buf);
        return;
    }

    reader = redisReaderCreate();
    if (reader == NULL) {
        abort();
    }

    reply = NULL;

    fuzz_assert(redisReaderFeed(reader, (const char *) buf, len) == REDIS_OK
                && redisReaderGetReply(reader, &reply) == REDIS_OK
                && reply != NULL, "the command does not read back");

    r = reply;
    fuzz_assert(r->type == REDIS_REPLY_ARRAY && r->elements == (size_t) n,
                "read back as type %d with %zu elements", r->type,
                r->elements);

    for (i = 0; i < n; i++) {
        fuzz_assert(r->element[i]->type == REDIS_REPLY_STRING
                    && r->element[i]->len == plen[i]
                    && memcmp(r->element[i]->str, piece[i], plen[i]) == 0,
                    "piece %d differs", i);
    }

    freeReplyObject(reply);

    reply = NULL;
    fuzz_assert(redisReaderGetReply(reader, &reply) == REDIS_OK
                && reply == NULL, "bytes after the command");

    redisReaderFree(reader);
    free(buf);
}


static void
fuzz_scanner(const uint8_t *data, size_t size)
{
    long                         whole, cut, rc;
    void                        *reply;
    size_t                       off, step;
    redisReader                 *reader;
    ngx_device_auth_resp_scan_t  s;

    step = size ? (size_t) (data[0] % 7) + 1 : 1;
    data++;
    size = size ? size - 1 : 0;

    ngx_device_auth_resp_scan_init(&s);
    whole = ngx_device_auth_resp_scan(&s, data, size);

    /* the same bytes as they may arrive: in pieces */

    ngx_device_auth_resp_scan_init(&s);
    cut = 0;

    for (off = 0; off < size; off += step) {
        rc = ngx_device_auth_resp_scan(&s, data + off,
                                       step < size - off ? step : size - off);
        if (rc < 0) {
            cut = -1;
            break;
        }

        cut += rc;
    }

    fuzz_assert(whole == cut, "%ld replies whole, %ld in pieces of %zu",
                whole, cut, step);

    if (whole < 0) {
        return;
    }

    /* what the scanner accepts, hiredis reads as just as many replies */

    reader = redisReaderCreate();
    if (reader == NULL) {
        abort();
    }

    if (size) {
        fuzz_assert(redisReaderFeed(reader, (const char *) data, size)
                    == REDIS_OK, "feed");
    }

    for (rc = 0; ; rc++) {
        reply = NULL;

        fuzz_assert(redisReaderGetReply(reader, &reply) == REDIS_OK,
                    "hiredis refuses a stream the scanner accepts, at reply "
                    "%ld: %s", rc, reader->errstr);

        if (reply == NULL) {
            break;
        }

        freeReplyObject(reply);
    }

    fuzz_assert(rc == whole, "hiredis finds %ld replies, the scanner %ld",
                rc, whole);

    redisReaderFree(reader);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 'E') {
        fuzz_encoder(data, size);
        return 0;
    }

    fuzz_scanner(data, size);

    return 0;
}
