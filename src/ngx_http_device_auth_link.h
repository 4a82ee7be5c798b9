
/*
 * The invalidation link of a worker: its command connection, its
 * subscriber, and the cache they keep current together.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_LINK_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_LINK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_subscriber.h"
#include "ngx_http_device_auth_cache.h"
#include "ngx_http_device_auth_node.h"
#include "ngx_http_device_auth_sentinel.h"
#include "ngx_http_device_auth_stats.h"


#define NGX_HTTP_DEVICE_AUTH_LINK_DOWN      0   /* nothing to send on */
#define NGX_HTTP_DEVICE_AUTH_LINK_COMING    1   /* a handshake under way */
#define NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED 2   /* commands, no invalidations */
#define NGX_HTTP_DEVICE_AUTH_LINK_UP        3


typedef struct ngx_http_device_auth_cluster_s  ngx_http_device_auth_cluster_t;


/* something waiting for the link to come up, or not */

typedef struct {
    ngx_queue_t                        queue;
    void                             (*handler)(void *data, ngx_int_t rc);
    void                              *data;
} ngx_http_device_auth_link_waiter_t;


#define NGX_HTTP_DEVICE_AUTH_CANARY_UNKNOWN  0   /* to read */
#define NGX_HTTP_DEVICE_AUTH_CANARY_PRESENT  1
#define NGX_HTTP_DEVICE_AUTH_CANARY_MISSING  2   /* redis is unavailable */


struct ngx_http_device_auth_link_s {
    ngx_http_device_auth_redis_t       cmd;
    ngx_http_device_auth_subscriber_t  sub;
    ngx_http_device_auth_cache_t       cache;
    ngx_http_device_auth_stats_t       stats;

    /* where both connections go: fixed, or the master a sentinel names */
    ngx_http_device_auth_node_t        node;
    ngx_http_device_auth_sentinel_t   *sentinel;

    /*
     * A cluster: the worker's link has the cache and the slot map, each
     * node a link of its own (main: the worker's link; itself otherwise)
     */
    ngx_http_device_auth_cluster_t    *cluster;
    ngx_http_device_auth_link_t       *main;

    ngx_queue_t                        waiting;    /* link waiters */
    ngx_queue_t                        free;       /* the operations' */
    ngx_uint_t                         seq;        /* operations made */

    /* device_auth_redis_canary: what the last read of it said, and why */
    ngx_uint_t                         canary;
    ngx_event_t                        canary_poll;
    size_t                             canary_why_len;
    u_char                             canary_why[256];

    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;

    unsigned                           exiting:1;
    unsigned                           switching:1;  /* to a new master */
    unsigned                           checking:1;  /* canary read sent */
    unsigned                           recheck:1;   /* read it again */
    unsigned                           canary_logged:1;
};


ngx_int_t ngx_http_device_auth_link_init(ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf);
void ngx_http_device_auth_link_exit(ngx_http_device_auth_link_t *link);
ngx_uint_t ngx_http_device_auth_link_state(ngx_http_device_auth_link_t *link);
void ngx_http_device_auth_link_wake_queue(ngx_queue_t *waiting, ngx_int_t rc);
ngx_int_t ngx_http_device_auth_link_wait(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_link_waiter_t *w);
ngx_int_t ngx_http_device_auth_link_route(ngx_http_device_auth_link_t *link,
    int slot, ngx_http_device_auth_link_waiter_t *w,
    ngx_http_device_auth_link_t **nl);
ngx_uint_t ngx_http_device_auth_link_state_for(
    ngx_http_device_auth_link_t *link, ngx_http_device_auth_entry_t *dev,
    ngx_http_device_auth_entry_t *sig);
ngx_int_t ngx_http_device_auth_link_child(ngx_http_device_auth_link_t *child,
    ngx_http_device_auth_link_t *main, ngx_device_auth_node_addr_t *addr);
void ngx_http_device_auth_link_start(ngx_http_device_auth_link_t *link);
ngx_uint_t ngx_http_device_auth_link_why(ngx_http_device_auth_link_t *link,
    u_char *buf, size_t size, size_t *len);


#endif /* _NGX_HTTP_DEVICE_AUTH_LINK_H_INCLUDED_ */
