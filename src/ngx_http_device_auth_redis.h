
/*
 * The command connection of a worker to Redis: hiredis' async API driven
 * by nginx's event loop, every command of the worker pipelined on it.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_device_auth_resp.h"
#include "ngx_device_auth_address.h"
#include "ngx_http_device_auth_node.h"


/*
 * Exported by hiredis (0.14 and 1.x) but not declared in its headers: what
 * redisAsyncHandleRead() does once it read the bytes.  The module reads
 * them itself, to check them first (config tests that it links).
 */
void redisProcessCallbacks(redisAsyncContext *ac);


#define NGX_HTTP_DEVICE_AUTH_REDIS_IDLE        0   /* waiting to reconnect */
#define NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING  1   /* connect, handshake */
#define NGX_HTTP_DEVICE_AUTH_REDIS_READY       2

#define NGX_HTTP_DEVICE_AUTH_SHA1_LEN          40

#define NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN       100
#define NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX       5000

/* AUTH with a user and a password, CLIENT ID, SUBSCRIBE <channel> */
#define NGX_HTTP_DEVICE_AUTH_HANDSHAKE_MAX                                    \
    (NGX_DEVICE_AUTH_ADDR_USER_MAX + NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX + 256)


/* what was last logged of an outage: a new cause is logged again */

typedef struct {
    size_t                             len;
    u_char                             msg[256];
} ngx_http_device_auth_outage_t;


/* what the connection tells its owner */

typedef struct {
    void                             (*ready)(void *data);
    void                             (*going)(void *data);  /* may be NULL */
    void                             (*lost)(void *data);
    void                              *data;
} ngx_http_device_auth_redis_handlers_t;


struct ngx_http_device_auth_redis_s {
    redisAsyncContext                 *ac;
    ngx_connection_t                  *conn;       /* wraps ac->c.fd */
    ngx_uint_t                         state;

    ngx_http_device_auth_node_t       *node;       /* where it connects */
    ngx_uint_t                         gen;        /* node->gen then */

    ngx_event_t                        reconnect;  /* backoff */
    ngx_event_t                        timeout;    /* connect, handshake */
    ngx_event_t                        ping;
    ngx_uint_t                         pings;      /* not answered yet */
    ngx_msec_t                         backoff;

    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;

    /* the subscriber to track into, and the one tracked into (or -1) */
    long long                          redirect;
    long long                          tracking;
    ngx_uint_t                         steps;      /* handshake replies due */

    ngx_uint_t                         inflight;   /* commands sent */

    /* replies framed against the commands sent on this connection */
    ngx_device_auth_resp_scan_t        scan;
    ngx_uint_t                         sent;
    ngx_uint_t                         replies;

    u_char                             sha[NGX_HTTP_DEVICE_AUTH_SHA1_LEN];

    ngx_http_device_auth_redis_handlers_t  handlers;
    ngx_http_device_auth_outage_t      outage;

    /* why it is not connected: NGX_HTTP_DEVICE_AUTH_RE_* (metrics.h) */
    ngx_uint_t                         cause;

    unsigned                           exiting:1;
    unsigned                           writing:1;  /* in HandleWrite */
    unsigned                           connected:1; /* handshake done once */

    /* the owner reconnects it; the node must be a master (ROLE) */
    unsigned                           follow:1;
    unsigned                           role:1;
};


extern const char    *ngx_http_device_auth_script;
extern const size_t   ngx_http_device_auth_script_len;


void ngx_http_device_auth_redis_init(ngx_http_device_auth_redis_t *redis,
    ngx_cycle_t *cycle, ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_redis_handlers_t *handlers);
void ngx_http_device_auth_redis_connect(ngx_http_device_auth_redis_t *redis);
void ngx_http_device_auth_redis_retrack(ngx_http_device_auth_redis_t *redis,
    long long redirect);
void ngx_http_device_auth_redis_exit(ngx_http_device_auth_redis_t *redis);
ngx_int_t ngx_http_device_auth_redis_send(ngx_http_device_auth_redis_t *redis,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len);
void ngx_http_device_auth_redis_reset(ngx_http_device_auth_redis_t *redis,
    const char *why);
ngx_uint_t ngx_http_device_auth_redis_ready(
    ngx_http_device_auth_redis_t *redis);
ngx_uint_t ngx_http_device_auth_redis_readonly(
    ngx_http_device_auth_redis_t *redis, redisReply *reply);
ngx_uint_t ngx_http_device_auth_redis_cause(redisReply *reply);

void ngx_http_device_auth_outage(ngx_log_t *log,
    ngx_http_device_auth_outage_t *outage, const char *fmt, ...);
void ngx_http_device_auth_outage_clear(ngx_http_device_auth_outage_t *outage);


#endif /* _NGX_HTTP_DEVICE_AUTH_REDIS_H_INCLUDED_ */
