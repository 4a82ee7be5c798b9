
/*
 * The invalidation subscriber of a worker: a second Redis connection,
 * subscribed to the channel where Redis pushes the invalidation of the
 * keys the worker's command connection read for its cache.  The same
 * connection, made to a sentinel, asks it for the master and follows the
 * master's switches.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_SUBSCRIBER_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_SUBSCRIBER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_device_auth_resp.h"
#include "ngx_device_auth_address.h"
#include "ngx_http_device_auth_node.h"


typedef struct ngx_http_device_auth_subscriber_s
    ngx_http_device_auth_subscriber_t;


/* what the subscriber tells its owner */

typedef struct {
    void                             (*ready)(void *data, long long id);
    void                             (*lost)(void *data);
    void                             (*invalidate)(void *data,
                                          const u_char *key, size_t len);
    void                             (*flush)(void *data);

    /* a sentinel's: where the master is (asked, or switched to) */
    void                             (*master)(void *data,
                                          ngx_device_auth_node_addr_t *addr);
    void                              *data;
} ngx_http_device_auth_subscriber_handlers_t;


struct ngx_http_device_auth_subscriber_s {
    ngx_peer_connection_t              peer;
    ngx_http_device_auth_node_t       *node;       /* where it connects */
    ngx_uint_t                         gen;        /* node->gen then */

    /* AUTH; a sentinel's: the master's name */
    ngx_str_t                         *user;
    ngx_str_t                         *password;
    ngx_str_t                         *sentinel;
    redisReader                       *reader;
    ngx_uint_t                         state;
    ngx_uint_t                         step;       /* handshake replies */
    long long                          id;         /* CLIENT ID */

    ngx_device_auth_resp_scan_t        scan;

    ngx_event_t                        reconnect;
    ngx_event_t                        timeout;    /* handshake */
    ngx_event_t                        ping;
    ngx_uint_t                         pings;      /* not answered yet */
    ngx_msec_t                         backoff;

    /* commands not written yet: the handshake, a PING */
    size_t                             out_len;
    u_char                             out[NGX_HTTP_DEVICE_AUTH_HANDSHAKE_MAX];

    ngx_http_device_auth_subscriber_handlers_t  handlers;

    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;
    ngx_http_device_auth_outage_t      outage;

    unsigned                           exiting:1;

    /* the owner reconnects it, and hears of every failure */
    unsigned                           follow:1;
    unsigned                           stopping:1;
};


void ngx_http_device_auth_subscriber_init(
    ngx_http_device_auth_subscriber_t *sub, ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_subscriber_handlers_t *handlers);
void ngx_http_device_auth_subscriber_start(
    ngx_http_device_auth_subscriber_t *sub);
void ngx_http_device_auth_subscriber_exit(
    ngx_http_device_auth_subscriber_t *sub);
void ngx_http_device_auth_subscriber_stop(
    ngx_http_device_auth_subscriber_t *sub);
ngx_uint_t ngx_http_device_auth_subscriber_ready(
    ngx_http_device_auth_subscriber_t *sub);


#endif /* _NGX_HTTP_DEVICE_AUTH_SUBSCRIBER_H_INCLUDED_ */
