
/*
 * Redis Cluster: the slot map of a worker, and its links to the nodes
 * that serve the slots, each a command connection and a subscriber of its
 * own (client-side caching is per node).
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_cache.h"
#include "ngx_device_auth_address.h"
#include "ngx_device_auth_slot.h"


#define NGX_HTTP_DEVICE_AUTH_CLUSTER_NODES  250   /* an index fits a byte */


/* a node of the cluster, and the worker's link to it */

typedef struct {
    ngx_http_device_auth_link_t        link;       /* first: cast from it */
    ngx_http_device_auth_cluster_t    *cluster;
    ngx_uint_t                         index;

    /* the cluster epoch its link came up in; 0: never up */
    ngx_uint_t                         epoch;
    ngx_msec_t                         lost_at;

    unsigned                           up:1;       /* tracked */
    unsigned                           primary:1;  /* serves slots */
    unsigned                           started:1;
} ngx_http_device_auth_cnode_t;


struct ngx_http_device_auth_cluster_s {
    ngx_http_device_auth_link_t       *main;
    ngx_http_device_auth_cache_t      *cache;      /* main's: its epoch */
    ngx_pool_t                        *pool;
    ngx_log_t                         *log;
    ngx_http_device_auth_main_conf_t  *conf;

    ngx_http_device_auth_cnode_t
                                      *nodes[NGX_HTTP_DEVICE_AUTH_CLUSTER_NODES];
    ngx_uint_t                         n;

    /*
     * The slot map: the node serving each slot (index + 1; 0: none), and
     * the cluster epoch it has served it since.
     */
    u_char                             owner[NGX_DEVICE_AUTH_SLOTS];
    ngx_uint_t                         since[NGX_DEVICE_AUTH_SLOTS];

    ngx_queue_t                        waiting;    /* for the map */

    ngx_device_auth_node_addr_t       *seeds;
    ngx_uint_t                         nseeds;
    ngx_uint_t                         seed;       /* the next one */

    ngx_event_t                        timer;      /* the next question */
    ngx_event_t                        check;      /* the map, anyway */
    ngx_msec_t                         asked;
    ngx_msec_t                         backoff;
    ngx_http_device_auth_cnode_t      *asking;     /* CLUSTER SLOTS is out */

    unsigned                           mapped:1;   /* a map was read */
    unsigned                           wanted:1;   /* a new map is due */
    unsigned                           exiting:1;
};


ngx_int_t ngx_http_device_auth_cluster_init(ngx_http_device_auth_link_t *main,
    ngx_cycle_t *cycle);
void ngx_http_device_auth_cluster_exit(ngx_http_device_auth_cluster_t *c);

ngx_int_t ngx_http_device_auth_cluster_route(
    ngx_http_device_auth_cluster_t *c, int slot,
    ngx_http_device_auth_link_waiter_t *w, ngx_http_device_auth_link_t **nl);
ngx_int_t ngx_http_device_auth_cluster_route_node(
    ngx_http_device_auth_cluster_t *c, ngx_http_device_auth_cnode_t *cn,
    ngx_http_device_auth_link_waiter_t *w, ngx_http_device_auth_link_t **nl);
ngx_int_t ngx_http_device_auth_cluster_wait_map(
    ngx_http_device_auth_cluster_t *c, ngx_http_device_auth_link_waiter_t *w);
ngx_uint_t ngx_http_device_auth_cluster_state(
    ngx_http_device_auth_cluster_t *c, int slot);

ngx_http_device_auth_cnode_t *ngx_http_device_auth_cluster_moved(
    ngx_http_device_auth_cluster_t *c, int kind, int slot,
    ngx_device_auth_node_addr_t *addr);
void ngx_http_device_auth_cluster_refresh(ngx_http_device_auth_cluster_t *c);

ngx_uint_t ngx_http_device_auth_cluster_epoch(
    ngx_http_device_auth_cluster_t *c, ngx_http_device_auth_entry_t *e,
    ngx_uint_t down);
ngx_uint_t ngx_http_device_auth_cluster_graced(
    ngx_http_device_auth_cluster_t *c, ngx_http_device_auth_entry_t *e,
    ngx_msec_t grace);
int ngx_http_device_auth_cluster_slots(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_entry_t *e, int *slots);

void ngx_http_device_auth_cluster_node_up(ngx_http_device_auth_link_t *nl,
    ngx_uint_t up);
void ngx_http_device_auth_cluster_node_ready(ngx_http_device_auth_link_t *nl);
void ngx_http_device_auth_cluster_node_lost(ngx_http_device_auth_link_t *nl);


#endif /* _NGX_HTTP_DEVICE_AUTH_CLUSTER_H_INCLUDED_ */
