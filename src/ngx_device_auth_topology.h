
/*
 * What Redis Sentinel and Redis Cluster answer about where the data is:
 * ROLE, SENTINEL get-master-addr-by-name, the "+switch-master" channel,
 * CLUSTER SLOTS, -MOVED and -ASK.  Plain C over hiredis' reply type, no
 * nginx types, so any reply shape can be fuzzed.
 */


#ifndef _NGX_DEVICE_AUTH_TOPOLOGY_H_INCLUDED_
#define _NGX_DEVICE_AUTH_TOPOLOGY_H_INCLUDED_


#include <stddef.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_address.h"


/* ROLE */
#define NGX_DEVICE_AUTH_ROLE_BAD          0
#define NGX_DEVICE_AUTH_ROLE_MASTER       1
#define NGX_DEVICE_AUTH_ROLE_REPLICA      2
#define NGX_DEVICE_AUTH_ROLE_SENTINEL     3

/* SENTINEL get-master-addr-by-name */
#define NGX_DEVICE_AUTH_MASTER_BAD        0
#define NGX_DEVICE_AUTH_MASTER_KNOWN      1
#define NGX_DEVICE_AUTH_MASTER_UNKNOWN    2   /* no such master name */
#define NGX_DEVICE_AUTH_MASTER_HOSTNAME   3   /* not an IP: no DNS here */

/* a reply on the "+switch-master" channel */
#define NGX_DEVICE_AUTH_SWITCH_BAD        0
#define NGX_DEVICE_AUTH_SWITCH_SUBSCRIBED 1
#define NGX_DEVICE_AUTH_SWITCH_MASTER     2   /* ours, at its new address */
#define NGX_DEVICE_AUTH_SWITCH_OTHER      3   /* another master's */
#define NGX_DEVICE_AUTH_SWITCH_PONG       4

#define NGX_DEVICE_AUTH_SWITCH_CHANNEL    "+switch-master"

/* an error reply that sends the command elsewhere */
#define NGX_DEVICE_AUTH_REDIRECT_NONE     0
#define NGX_DEVICE_AUTH_REDIRECT_MOVED    1
#define NGX_DEVICE_AUTH_REDIRECT_ASK      2
#define NGX_DEVICE_AUTH_REDIRECT_READONLY 3   /* a replica now */
#define NGX_DEVICE_AUTH_REDIRECT_DOWN     4   /* CLUSTERDOWN */
#define NGX_DEVICE_AUTH_REDIRECT_TRYAGAIN 5   /* a slot being migrated */

#define NGX_DEVICE_AUTH_SLOTS             16384


/* a range of slots and the primary that serves it */

typedef struct {
    int                           first;
    int                           last;
    ngx_device_auth_node_addr_t   node;
} ngx_device_auth_slot_range_t;


int ngx_device_auth_reply_role(const redisReply *reply);
int ngx_device_auth_reply_master(const redisReply *reply,
    ngx_device_auth_node_addr_t *node);
int ngx_device_auth_reply_switch(const redisReply *reply, const char *name,
    ngx_device_auth_node_addr_t *node);
int ngx_device_auth_reply_redirect(const redisReply *reply, int *slot,
    ngx_device_auth_node_addr_t *node);
int ngx_device_auth_reply_slots(const redisReply *reply,
    ngx_device_auth_slot_range_t *ranges, size_t max, size_t *n);

int ngx_device_auth_node_from(const char *host, size_t host_len,
    const char *port, size_t port_len, ngx_device_auth_node_addr_t *node);


#endif /* _NGX_DEVICE_AUTH_TOPOLOGY_H_INCLUDED_ */
