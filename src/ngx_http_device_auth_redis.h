
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

#include "ngx_http_device_auth_module.h"


#define NGX_HTTP_DEVICE_AUTH_REDIS_IDLE        0   /* waiting to reconnect */
#define NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING  1   /* connect, AUTH, LOAD */
#define NGX_HTTP_DEVICE_AUTH_REDIS_READY       2

#define NGX_HTTP_DEVICE_AUTH_SHA1_LEN          40


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
    ngx_uint_t                         inflight;   /* commands sent */
    ngx_uint_t                         shown_inflight;  /* in the gauges */
    ngx_uint_t                         shown_ready;

    u_char                             sha[NGX_HTTP_DEVICE_AUTH_SHA1_LEN];

    /* "EVALSHA <sha> 7", formatted once */
    size_t                             head_len;
    u_char                             head[64];
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
void ngx_http_device_auth_redis_reset(ngx_http_device_auth_redis_t *redis,
    const char *why);


#endif /* _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_ */
