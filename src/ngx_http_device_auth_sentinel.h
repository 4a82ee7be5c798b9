
/*
 * Redis Sentinel: which node is the master of the device state, asked of
 * the sentinels in turn and followed through its switches.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_SENTINEL_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_SENTINEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_node.h"
#include "ngx_http_device_auth_subscriber.h"


/* what the sentinels tell their owner */

typedef struct {
    void                             (*master)(void *data,
                                          ngx_device_auth_node_addr_t *addr);
    void                             (*failed)(void *data);
    void                              *data;
} ngx_http_device_auth_sentinel_handlers_t;


typedef struct {
    ngx_http_device_auth_subscriber_t  conn;       /* to one sentinel */
    ngx_http_device_auth_node_t        node;       /* that sentinel */

    ngx_device_auth_node_addr_t       *addrs;      /* every sentinel */
    ngx_http_device_auth_outage_t     *outages;    /* logged, of each */
    ngx_uint_t                         n;
    ngx_uint_t                         next;       /* the one to ask */
    ngx_uint_t                         failures;   /* in this round */

    ngx_event_t                        timer;      /* the next question */
    ngx_msec_t                         backoff;
    ngx_msec_t                         asked;      /* when, last */

    ngx_http_device_auth_sentinel_handlers_t  handlers;

    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;

    unsigned                           wanted:1;   /* an answer is awaited */
    unsigned                           asking:1;   /* the question is out */
    unsigned                           silent:1;   /* said no one answers */
    unsigned                           exiting:1;
} ngx_http_device_auth_sentinel_t;


ngx_int_t ngx_http_device_auth_sentinel_init(
    ngx_http_device_auth_sentinel_t *s, ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_sentinel_handlers_t *handlers);
void ngx_http_device_auth_sentinel_resolve(ngx_http_device_auth_sentinel_t *s);
void ngx_http_device_auth_sentinel_ok(ngx_http_device_auth_sentinel_t *s);
ngx_uint_t ngx_http_device_auth_sentinel_asking(
    ngx_http_device_auth_sentinel_t *s);
void ngx_http_device_auth_sentinel_exit(ngx_http_device_auth_sentinel_t *s);


#endif /* _NGX_HTTP_DEVICE_AUTH_SENTINEL_H_INCLUDED_ */
