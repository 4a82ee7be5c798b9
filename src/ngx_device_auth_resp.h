
/*
 * The Redis wire (RESP2), both ways, in plain C with no nginx types, so
 * that it can be fuzzed on its own: commands encoded into a fixed buffer
 * that they can never overflow, and a streaming scanner that frames the
 * replies as their bytes arrive.
 */


#ifndef _NGX_DEVICE_AUTH_RESP_H_INCLUDED_
#define _NGX_DEVICE_AUTH_RESP_H_INCLUDED_


#include <stddef.h>


/* what a reply may hold: the module's are small */
#define NGX_DEVICE_AUTH_RESP_DEPTH        4
#define NGX_DEVICE_AUTH_RESP_ELEMENTS     4096
#define NGX_DEVICE_AUTH_RESP_BULK_MAX     (1024 * 1024)
#define NGX_DEVICE_AUTH_RESP_LINE_MAX     4096


/* a command being written: nothing is written past end */

typedef struct {
    unsigned char  *start;
    unsigned char  *pos;
    unsigned char  *end;
    int             full;             /* something did not fit */
} ngx_device_auth_resp_t;


/* the framing state of a reply stream */

typedef struct {
    int             state;
    int             depth;            /* open arrays */
    long long       left[NGX_DEVICE_AUTH_RESP_DEPTH]; /* elements to come */
    long long       bulk;             /* bytes of bulk data to come */
    long long       number;           /* of the header line */
    int             sign;
    int             digits;
    int             zero;             /* the number is "0" */
    size_t          line;             /* length of a simple line so far */
    unsigned char   type;
} ngx_device_auth_resp_scan_t;


void ngx_device_auth_resp_init(ngx_device_auth_resp_t *r, unsigned char *buf,
    size_t size);
void ngx_device_auth_resp_array(ngx_device_auth_resp_t *r, size_t n);
void ngx_device_auth_resp_bulk(ngx_device_auth_resp_t *r,
    const void *data, size_t len);
void ngx_device_auth_resp_bulk_start(ngx_device_auth_resp_t *r, size_t len);
void ngx_device_auth_resp_raw(ngx_device_auth_resp_t *r, const void *data,
    size_t len);
void ngx_device_auth_resp_crlf(ngx_device_auth_resp_t *r);
void ngx_device_auth_resp_number(ngx_device_auth_resp_t *r, long long n);
size_t ngx_device_auth_resp_len(ngx_device_auth_resp_t *r);

void ngx_device_auth_resp_scan_init(ngx_device_auth_resp_scan_t *s);
long ngx_device_auth_resp_scan(ngx_device_auth_resp_scan_t *s,
    const unsigned char *data, size_t len);


#endif /* _NGX_DEVICE_AUTH_RESP_H_INCLUDED_ */
