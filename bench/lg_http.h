
/*
 * loadgen: HTTP/1.1 requests and an incremental response parser.
 *
 * The parser keeps no copy of the response: it runs byte by byte over
 * whatever TLS returned (shared read buffer), remembering only the status,
 * the framing (Content-Length, chunked, until close) and Connection.
 */


#ifndef _LG_HTTP_H_INCLUDED_
#define _LG_HTTP_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define LG_HTTP_AGAIN    0
#define LG_HTTP_DONE     1
#define LG_HTTP_ERROR   -1


typedef struct {
    int        state;
    int        status;
    int        minor;           /* HTTP/1.minor */
    int        close;           /* the server will close after this one */
    int        keepalive;       /* Connection: keep-alive (for HTTP/1.0) */
    int        chunked;
    int        head;            /* response to HEAD: no body */
    int64_t    length;          /* Content-Length, -1: none */
    int64_t    left;            /* body or chunk bytes still expected */
    int        pos;             /* in the status line */
    int        nlen;
    int        vlen;
    char       name[24];
    char       value[48];
} lg_http_resp_t;


void lg_http_resp_init(lg_http_resp_t *r, int head);
int lg_http_parse(lg_http_resp_t *r, const unsigned char *buf, size_t len,
    size_t *used);
int lg_http_eof(lg_http_resp_t *r);
int lg_http_started(lg_http_resp_t *r);

int lg_http_request(char *buf, size_t size, const char *method,
    const char *host, const char *path, const char *headers);


#endif /* _LG_HTTP_H_INCLUDED_ */
