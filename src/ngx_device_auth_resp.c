
/*
 * The Redis wire (RESP2).
 *
 * Commands are written into a buffer of the caller's with a bound on every
 * write: a command that does not fit is marked, never written past the
 * buffer (the head of the lookup command once overflowed a fixed buffer).
 *
 * The scanner frames replies as their bytes arrive, without allocating,
 * and counts the replies it completed.  It accepts nothing that hiredis'
 * reader would refuse (numbers are "0" or [-][1-9][0-9]*, as hiredis reads
 * them), so that hiredis never holds a reply that was not counted.  The connection compares that count
 * with the commands it sent before the bytes reach hiredis, whose async
 * layer aborts the process on a reply nobody asked for, and refuses what
 * no reply of the module's can be: a nesting deeper than it uses, an array
 * of more elements or a bulk string longer than it reads (hiredis would
 * allocate for a "*2147483647" before the elements even arrive).
 */


#include <string.h>

#include "ngx_device_auth_resp.h"


#define NGX_DEVICE_AUTH_RESP_S_TYPE     0
#define NGX_DEVICE_AUTH_RESP_S_LINE     1
#define NGX_DEVICE_AUTH_RESP_S_LINE_LF  2
#define NGX_DEVICE_AUTH_RESP_S_NUM      3
#define NGX_DEVICE_AUTH_RESP_S_NUM_LF   4
#define NGX_DEVICE_AUTH_RESP_S_BULK     5
#define NGX_DEVICE_AUTH_RESP_S_ERROR    6


static void ngx_device_auth_resp_put(ngx_device_auth_resp_t *r,
    const void *data, size_t len);
static int ngx_device_auth_resp_element(ngx_device_auth_resp_scan_t *s);
static int ngx_device_auth_resp_header(ngx_device_auth_resp_scan_t *s);


void
ngx_device_auth_resp_init(ngx_device_auth_resp_t *r, unsigned char *buf,
    size_t size)
{
    r->start = buf;
    r->pos = buf;
    r->end = buf + size;
    r->full = 0;
}


void
ngx_device_auth_resp_array(ngx_device_auth_resp_t *r, size_t n)
{
    ngx_device_auth_resp_put(r, "*", 1);
    ngx_device_auth_resp_number(r, (long long) n);
    ngx_device_auth_resp_crlf(r);
}


void
ngx_device_auth_resp_bulk(ngx_device_auth_resp_t *r, const void *data,
    size_t len)
{
    ngx_device_auth_resp_bulk_start(r, len);
    ngx_device_auth_resp_raw(r, data, len);
    ngx_device_auth_resp_crlf(r);
}


/* a bulk string written in pieces: its length first, then raw, then crlf */

void
ngx_device_auth_resp_bulk_start(ngx_device_auth_resp_t *r, size_t len)
{
    ngx_device_auth_resp_put(r, "$", 1);
    ngx_device_auth_resp_number(r, (long long) len);
    ngx_device_auth_resp_crlf(r);
}


void
ngx_device_auth_resp_raw(ngx_device_auth_resp_t *r, const void *data,
    size_t len)
{
    ngx_device_auth_resp_put(r, data, len);
}


void
ngx_device_auth_resp_crlf(ngx_device_auth_resp_t *r)
{
    ngx_device_auth_resp_put(r, "\r\n", 2);
}


/* decimal digits by hand: this is the hot path of every lookup */

void
ngx_device_auth_resp_number(ngx_device_auth_resp_t *r, long long n)
{
    unsigned char       *d, digits[24];
    unsigned long long   u;

    d = digits + sizeof(digits);
    u = n < 0 ? 0 - (unsigned long long) n : (unsigned long long) n;

    do {
        *--d = (unsigned char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (n < 0) {
        *--d = '-';
    }

    ngx_device_auth_resp_put(r, d, (size_t) (digits + sizeof(digits) - d));
}


/* the length written, or 0 when something did not fit */

size_t
ngx_device_auth_resp_len(ngx_device_auth_resp_t *r)
{
    return r->full ? 0 : (size_t) (r->pos - r->start);
}


static void
ngx_device_auth_resp_put(ngx_device_auth_resp_t *r, const void *data,
    size_t len)
{
    if (r->full || len > (size_t) (r->end - r->pos)) {
        r->full = 1;
        return;
    }

    if (len) {
        memcpy(r->pos, data, len);
        r->pos += len;
    }
}


void
ngx_device_auth_resp_scan_init(ngx_device_auth_resp_scan_t *s)
{
    memset(s, 0, sizeof(ngx_device_auth_resp_scan_t));
    s->state = NGX_DEVICE_AUTH_RESP_S_TYPE;
}


/*
 * Feeds the next bytes of the stream: returns how many replies they
 * completed, or -1 once the stream is not a stream of replies the module
 * could have asked for (the scanner stays so).
 */

long
ngx_device_auth_resp_scan(ngx_device_auth_resp_scan_t *s,
    const unsigned char *data, size_t len)
{
    long            replies;
    size_t          i, n;
    unsigned char   c;

    replies = 0;

    for (i = 0; i < len; i++) {
        c = data[i];

        switch (s->state) {

        case NGX_DEVICE_AUTH_RESP_S_TYPE:
            s->type = c;

            switch (c) {
            case '+':
            case '-':
                s->line = 0;
                s->state = NGX_DEVICE_AUTH_RESP_S_LINE;
                break;

            case ':':
            case '$':
            case '*':
                s->number = 0;
                s->sign = 1;
                s->digits = 0;
                s->zero = 0;
                s->state = NGX_DEVICE_AUTH_RESP_S_NUM;
                break;

            default:
                goto error;
            }

            break;

        case NGX_DEVICE_AUTH_RESP_S_LINE:
            if (c == '\r') {
                s->state = NGX_DEVICE_AUTH_RESP_S_LINE_LF;
                break;
            }

            if (c == '\n' || ++s->line > NGX_DEVICE_AUTH_RESP_LINE_MAX) {
                goto error;
            }

            break;

        case NGX_DEVICE_AUTH_RESP_S_LINE_LF:
            if (c != '\n') {
                goto error;
            }

            replies += ngx_device_auth_resp_element(s);
            break;

        case NGX_DEVICE_AUTH_RESP_S_NUM:
            if (c == '-' && s->digits == 0 && s->sign == 1) {
                s->sign = -1;
                break;
            }

            /* "0" alone, no "-0", no leading zeros; lengths of 10 digits */

            if (c >= '0' && c <= '9' && !s->zero
                && s->digits < (s->type == ':' ? 18 : 10))
            {
                if (c == '0' && s->digits == 0) {
                    if (s->sign == -1) {
                        goto error;
                    }

                    s->zero = 1;
                }

                s->number = s->number * 10 + (c - '0');
                s->digits++;
                break;
            }

            if (c == '\r' && s->digits > 0) {
                s->number *= s->sign;
                s->state = NGX_DEVICE_AUTH_RESP_S_NUM_LF;
                break;
            }

            goto error;

        case NGX_DEVICE_AUTH_RESP_S_NUM_LF:
            if (c != '\n') {
                goto error;
            }

            if (s->type == ':') {
                replies += ngx_device_auth_resp_element(s);
                break;
            }

            switch (ngx_device_auth_resp_header(s)) {
            case -1:
                goto error;
            case 1:
                replies += ngx_device_auth_resp_element(s);
                break;
            }

            break;

        case NGX_DEVICE_AUTH_RESP_S_BULK:

            /* the data at once, then its CR LF byte by byte */

            if (s->bulk > 2) {
                n = len - i;
                if ((long long) n > s->bulk - 2) {
                    n = (size_t) (s->bulk - 2);
                }

                s->bulk -= (long long) n;
                i += n - 1;
                break;
            }

            if ((s->bulk == 2 && c != '\r') || (s->bulk == 1 && c != '\n')) {
                goto error;
            }

            if (--s->bulk == 0) {
                replies += ngx_device_auth_resp_element(s);
            }

            break;

        default: /* NGX_DEVICE_AUTH_RESP_S_ERROR */
            return -1;
        }
    }

    return replies;

error:

    s->state = NGX_DEVICE_AUTH_RESP_S_ERROR;

    return -1;
}


/* the header line of a bulk string or an array: 1 when that is all of it */

static int
ngx_device_auth_resp_header(ngx_device_auth_resp_scan_t *s)
{
    if (s->type == '$') {
        if (s->number == -1) {
            return 1;                                  /* null */
        }

        if (s->number < 0 || s->number > NGX_DEVICE_AUTH_RESP_BULK_MAX) {
            return -1;
        }

        s->bulk = s->number + 2;
        s->state = NGX_DEVICE_AUTH_RESP_S_BULK;

        return 0;
    }

    if (s->number == -1 || s->number == 0) {
        return 1;                                      /* null, empty */
    }

    if (s->number < 0 || s->number > NGX_DEVICE_AUTH_RESP_ELEMENTS
        || s->depth == NGX_DEVICE_AUTH_RESP_DEPTH)
    {
        return -1;
    }

    s->left[s->depth++] = s->number;
    s->state = NGX_DEVICE_AUTH_RESP_S_TYPE;

    return 0;
}


/* an element is complete: 1 when it completes a reply */

static int
ngx_device_auth_resp_element(ngx_device_auth_resp_scan_t *s)
{
    s->state = NGX_DEVICE_AUTH_RESP_S_TYPE;

    while (s->depth > 0) {
        if (--s->left[s->depth - 1] > 0) {
            return 0;
        }

        s->depth--;
    }

    return 1;
}
