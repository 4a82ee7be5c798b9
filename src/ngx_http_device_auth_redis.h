
/*
 * One hiredis async connection per worker, driven by nginx's event loop.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * Exported by hiredis (0.14 and 1.x) but not declared in its headers: what
 * redisAsyncHandleRead() does once it read the bytes.  The module reads
 * them itself, to check them first (config tests that it links).
 */
void redisProcessCallbacks(redisAsyncContext *ac);

#include "ngx_http_device_auth_module.h"
#include "ngx_device_auth_resp.h"


#define NGX_HTTP_DEVICE_AUTH_REDIS_IDLE        0   /* waiting to reconnect */
#define NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING  1   /* connect, AUTH, LOAD */
#define NGX_HTTP_DEVICE_AUTH_REDIS_READY       2

#define NGX_HTTP_DEVICE_AUTH_SHA1_LEN          40

/* "*20\r\n$7\r\nEVALSHA\r\n$40\r\n<sha1>\r\n$1\r\n7\r\n" */
#define NGX_HTTP_DEVICE_AUTH_HEAD_MAX                                         \
    (sizeof("*20\r\n$7\r\nEVALSHA\r\n$40\r\n\r\n$1\r\n7\r\n") - 1                 \
     + NGX_HTTP_DEVICE_AUTH_SHA1_LEN)


/* something that waits for the connection to be ready, or to fail */

typedef struct {
    ngx_queue_t                        queue;
    void                             (*handler)(void *data, ngx_int_t rc);
    void                              *data;
} ngx_http_device_auth_redis_waiter_t;


struct ngx_http_device_auth_redis_s {
    redisAsyncContext                 *ac;
    ngx_connection_t                  *conn;       /* wraps ac->c.fd */
    ngx_uint_t                         state;

    ngx_event_t                        reconnect;  /* backoff */
    ngx_event_t                        timeout;    /* connect, handshake */
    ngx_msec_t                         backoff;

    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;

    ngx_queue_t                        free;       /* lookups for reuse */
    ngx_queue_t                        waiting;    /* for the handshake */
    ngx_uint_t                         inflight;   /* commands sent */

    /* replies framed against the commands sent on this connection */
    ngx_device_auth_resp_scan_t        scan;
    ngx_uint_t                         sent;
    ngx_uint_t                         replies;

    ngx_uint_t                         shown_inflight;  /* in the gauges */
    ngx_uint_t                         shown_ready;

    u_char                             sha[NGX_HTTP_DEVICE_AUTH_SHA1_LEN];

    /* "EVALSHA <sha> 7", formatted once */
    size_t                             head_len;
    u_char                             head[NGX_HTTP_DEVICE_AUTH_HEAD_MAX];
    unsigned                           exiting:1;
    unsigned                           writing:1;  /* in HandleWrite */

    /* what was last logged of an outage: a new cause is logged again */
    size_t                             down_len;
    u_char                             down[256];
};


extern const char    *ngx_http_device_auth_script;
extern const size_t   ngx_http_device_auth_script_len;


ngx_int_t ngx_http_device_auth_redis_init(ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf);
void ngx_http_device_auth_redis_exit(ngx_http_device_auth_redis_t *redis);
ngx_int_t ngx_http_device_auth_redis_send(ngx_http_device_auth_redis_t *redis,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len);
ngx_int_t ngx_http_device_auth_redis_wait(ngx_http_device_auth_redis_t *redis,
    ngx_http_device_auth_redis_waiter_t *w);
void ngx_http_device_auth_redis_reset(ngx_http_device_auth_redis_t *redis,
    const char *why);


#endif /* _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_ */
