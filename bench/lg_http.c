
/*
 * loadgen: HTTP/1.1 requests and an incremental response parser.
 */


#define _GNU_SOURCE

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lg_http.h"


enum {
    S_STATUS = 0,
    S_STATUS_LF,
    S_HDR_START,
    S_HDR_NAME,
    S_HDR_SPACE,
    S_HDR_VALUE,
    S_HDR_LF,
    S_HDRS_LF,
    S_BODY,
    S_BODY_EOF,
    S_CHUNK_SIZE,
    S_CHUNK_EXT,
    S_CHUNK_DATA,
    S_CHUNK_CR,
    S_CHUNK_LF,
    S_TRAILER_START,
    S_TRAILER,
    S_TRAILER_LF,
    S_DONE
};


static int lg_http_header(lg_http_resp_t *r);
static int lg_http_body_start(lg_http_resp_t *r);


void
lg_http_resp_init(lg_http_resp_t *r, int head)
{
    memset(r, 0, sizeof(lg_http_resp_t));
    r->state = S_STATUS;
    r->length = -1;
    r->head = head;
}


int
lg_http_started(lg_http_resp_t *r)
{
    return r->state != S_STATUS || r->pos != 0;
}


int
lg_http_parse(lg_http_resp_t *r, const unsigned char *buf, size_t len,
    size_t *used)
{
    int                   c, d;
    size_t                n;
    const unsigned char  *p, *end;

    p = buf;
    end = buf + len;

    while (p < end) {
        c = *p++;

        switch (r->state) {

        case S_STATUS:
            /* "HTTP/1.x NNN reason" */
            if (r->pos < 7) {
                if (c != "HTTP/1."[r->pos]) {
                    return LG_HTTP_ERROR;
                }

            } else if (r->pos == 7) {
                if (c < '0' || c > '9') {
                    return LG_HTTP_ERROR;
                }
                r->minor = c - '0';

            } else if (r->pos == 8) {
                if (c != ' ') {
                    return LG_HTTP_ERROR;
                }

            } else if (r->pos < 12) {
                if (c < '0' || c > '9') {
                    return LG_HTTP_ERROR;
                }
                r->status = r->status * 10 + c - '0';

            } else if (c == '\r') {
                r->state = S_STATUS_LF;
                break;

            } else if (c == '\n') {
                r->state = S_HDR_START;
                break;

            } else if (r->pos == 12 && c != ' ') {
                return LG_HTTP_ERROR;
            }

            if (r->pos == 11 && r->status < 100) {
                return LG_HTTP_ERROR;
            }

            r->pos++;
            break;

        case S_STATUS_LF:
        case S_HDR_LF:
            if (c != '\n') {
                return LG_HTTP_ERROR;
            }
            r->state = S_HDR_START;
            break;

        case S_HDR_START:
            if (c == '\r') {
                r->state = S_HDRS_LF;
                break;
            }

            if (c == '\n') {
                goto headers_done;
            }

            if (c == ':' || c == ' ' || c == '\t') {
                return LG_HTTP_ERROR;
            }

            r->nlen = 0;
            r->vlen = 0;
            r->state = S_HDR_NAME;
            /* fall through */

        case S_HDR_NAME:
            if (c == ':') {
                r->state = S_HDR_SPACE;
                break;
            }

            if (c == '\r' || c == '\n') {
                return LG_HTTP_ERROR;
            }

            if (r->nlen < (int) sizeof(r->name) - 1) {
                r->name[r->nlen] = (char) tolower(c);
            }
            r->nlen++;
            break;

        case S_HDR_SPACE:
            if (c == ' ' || c == '\t') {
                break;
            }
            r->state = S_HDR_VALUE;
            /* fall through */

        case S_HDR_VALUE:
            if (c == '\r' || c == '\n') {
                if (lg_http_header(r) != 0) {
                    return LG_HTTP_ERROR;
                }
                r->state = (c == '\r') ? S_HDR_LF : S_HDR_START;
                break;
            }

            if (r->vlen < (int) sizeof(r->value) - 1) {
                r->value[r->vlen] = (char) c;
            }
            r->vlen++;
            break;

        case S_HDRS_LF:
            if (c != '\n') {
                return LG_HTTP_ERROR;
            }

        headers_done:

            if (r->status < 200) {
                /* 1xx: an interim response, the real one follows */
                lg_http_resp_init(r, r->head);
                break;
            }

            if (lg_http_body_start(r) == LG_HTTP_DONE) {
                *used = p - buf;
                return LG_HTTP_DONE;
            }
            break;

        case S_BODY:
            p--;
            n = end - p;
            if ((int64_t) n >= r->left) {
                p += r->left;
                r->state = S_DONE;
                *used = p - buf;
                return LG_HTTP_DONE;
            }
            r->left -= n;
            p = end;
            break;

        case S_BODY_EOF:
            p = end;
            break;

        case S_CHUNK_SIZE:
            if (isxdigit(c)) {
                d = (c <= '9') ? c - '0' : (tolower(c) - 'a' + 10);
                if (r->left > (INT64_MAX >> 4)) {
                    return LG_HTTP_ERROR;
                }
                r->left = r->left * 16 + d;
                r->pos++;
                break;
            }

            if (r->pos == 0) {
                return LG_HTTP_ERROR;
            }
            r->state = S_CHUNK_EXT;
            /* fall through */

        case S_CHUNK_EXT:
            if (c == '\n') {
                r->state = r->left ? S_CHUNK_DATA : S_TRAILER_START;
            }
            break;

        case S_CHUNK_DATA:
            p--;
            n = end - p;
            if ((int64_t) n >= r->left) {
                p += r->left;
                r->left = 0;
                r->state = S_CHUNK_CR;
                break;
            }
            r->left -= n;
            p = end;
            break;

        case S_CHUNK_CR:
            if (c == '\r') {
                r->state = S_CHUNK_LF;
                break;
            }
            /* fall through */

        case S_CHUNK_LF:
            if (c != '\n') {
                return LG_HTTP_ERROR;
            }
            r->state = S_CHUNK_SIZE;
            r->pos = 0;
            r->left = 0;
            break;

        case S_TRAILER_START:
            if (c == '\r') {
                r->state = S_TRAILER_LF;
                break;
            }

            if (c == '\n') {
                r->state = S_DONE;
                *used = p - buf;
                return LG_HTTP_DONE;
            }

            r->state = S_TRAILER;
            break;

        case S_TRAILER:
            if (c == '\n') {
                r->state = S_TRAILER_START;
            }
            break;

        case S_TRAILER_LF:
            if (c != '\n') {
                return LG_HTTP_ERROR;
            }
            r->state = S_DONE;
            *used = p - buf;
            return LG_HTTP_DONE;

        default:
            return LG_HTTP_ERROR;
        }
    }

    *used = len;

    return LG_HTTP_AGAIN;
}


static int
lg_http_header(lg_http_resp_t *r)
{
    char  *e, *v;

    if (r->nlen >= (int) sizeof(r->name) - 1) {
        return 0;
    }

    r->name[r->nlen] = '\0';

    if (r->vlen > (int) sizeof(r->value) - 1) {
        r->vlen = sizeof(r->value) - 1;
    }

    while (r->vlen > 0
           && (r->value[r->vlen - 1] == ' ' || r->value[r->vlen - 1] == '\t'))
    {
        r->vlen--;
    }

    r->value[r->vlen] = '\0';
    v = r->value;

    if (strcmp(r->name, "content-length") == 0) {
        if (*v < '0' || *v > '9') {
            return -1;
        }
        r->length = strtoll(v, &e, 10);
        if (*e != '\0' || r->length < 0) {
            return -1;
        }

    } else if (strcmp(r->name, "transfer-encoding") == 0) {
        if (strcasestr(v, "chunked") != NULL) {
            r->chunked = 1;
        }

    } else if (strcmp(r->name, "connection") == 0) {
        if (strcasestr(v, "close") != NULL) {
            r->close = 1;
        }
        if (strcasestr(v, "keep-alive") != NULL) {
            r->keepalive = 1;
        }
    }

    return 0;
}


static int
lg_http_body_start(lg_http_resp_t *r)
{
    if (r->minor == 0 && !r->keepalive) {
        r->close = 1;
    }

    if (r->head || r->status == 204 || r->status == 304) {
        r->state = S_DONE;
        return LG_HTTP_DONE;
    }

    if (r->chunked) {
        r->state = S_CHUNK_SIZE;
        r->pos = 0;
        r->left = 0;
        return LG_HTTP_AGAIN;
    }

    if (r->length >= 0) {
        if (r->length == 0) {
            r->state = S_DONE;
            return LG_HTTP_DONE;
        }
        r->left = r->length;
        r->state = S_BODY;
        return LG_HTTP_AGAIN;
    }

    r->close = 1;
    r->state = S_BODY_EOF;

    return LG_HTTP_AGAIN;
}


/* the connection closed: complete only when the body ends at close */

int
lg_http_eof(lg_http_resp_t *r)
{
    if (r->state == S_BODY_EOF) {
        r->state = S_DONE;
        return LG_HTTP_DONE;
    }

    return LG_HTTP_ERROR;
}


int
lg_http_request(char *buf, size_t size, const char *method,
    const char *host, const char *path, const char *headers)
{
    int  n;

    n = snprintf(buf, size,
                 "%s %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "User-Agent: loadgen\r\n"
                 "%s"
                 "\r\n",
                 method, path, host, headers ? headers : "");

    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    return n;
}
