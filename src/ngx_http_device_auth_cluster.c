
/*
 * Redis Cluster.
 *
 * Each worker keeps the slot map (CLUSTER SLOTS: which primary serves each
 * of the 16384 slots) and, per primary it needs, a link of its own: a
 * command connection and a subscriber on that node, tracking into each
 * other (ngx_http_device_auth_link.c; client-side caching is per node),
 * made on demand when an operation needs a slot of that node.  The map is
 * read from a seed (the addresses of device_auth_redis, in turn) at start,
 * and read again from a node that is connected when a node is lost, when
 * a command is answered -MOVED (the slot is moved at once, the map read
 * behind it), and every max(device_auth_redis_timeout, 1s) anyway: a slot
 * migrated with no command of this worker to tell it (a device whose
 * facts are cached needs none) is noticed within that.  At most one
 * question is out, one per 100 ms at most, backing off to 5 s while none
 * is answered.
 *
 * A device's keys are in the slot of its {SN}; a signer's two keys and the
 * events stream are in slots of their own.  What an operation asks goes
 * to the node of its slot; -MOVED sends it there again, -ASK sends it to
 * the node the slot is being migrated to behind ASKING (not tracked: the
 * slot is on the move), -TRYAGAIN waits for the next map.
 *
 * What the cache may trust: a fact is read from the node of its slot in
 * that node's link's epoch.  The cache's epoch is a counter of the whole
 * cluster: a node's link coming up takes a new value of it, and so does a
 * slot that gets a new node.  A fact is current while its slots' nodes are
 * up, and the greater of each node's and slot's epochs is still the one
 * it was read in (a signer's facts: two slots, the greatest of all); it
 * serves for the grace while one of those nodes is down and nothing else
 * changed.  A node's loss, a failover, a slot migrated: what was read
 * there is read again, and the rest of the cache stays.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_topology.h"
#include "ngx_device_auth_keys.h"


static ngx_http_device_auth_cnode_t *ngx_http_device_auth_cluster_node(
    ngx_http_device_auth_cluster_t *c, ngx_device_auth_node_addr_t *addr);
static void ngx_http_device_auth_cluster_start(
    ngx_http_device_auth_cnode_t *cn);
static void ngx_http_device_auth_cluster_follow(
    ngx_http_device_auth_cnode_t *cn);
static void ngx_http_device_auth_cluster_ask(
    ngx_http_device_auth_cluster_t *c);
static void ngx_http_device_auth_cluster_timer(ngx_event_t *ev);
static void ngx_http_device_auth_cluster_check(ngx_event_t *ev);
static void ngx_http_device_auth_cluster_slots_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_http_device_auth_cluster_apply(
    ngx_http_device_auth_cluster_t *c, redisReply *reply);
static void ngx_http_device_auth_cluster_wake(
    ngx_http_device_auth_cluster_t *c, ngx_int_t rc);
static void ngx_http_device_auth_cluster_links(
    ngx_http_device_auth_cluster_t *c);


ngx_int_t
ngx_http_device_auth_cluster_init(ngx_http_device_auth_link_t *main,
    ngx_cycle_t *cycle)
{
    ngx_http_device_auth_cluster_t  *c;

    c = ngx_pcalloc(cycle->pool, sizeof(ngx_http_device_auth_cluster_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->main = main;
    c->cache = &main->cache;
    c->pool = cycle->pool;
    c->log = cycle->log;
    c->conf = main->conf;
    c->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;

    c->seeds = c->conf->redis_nodes->elts;
    c->nseeds = c->conf->redis_nodes->nelts;

    ngx_queue_init(&c->waiting);

    c->timer.handler = ngx_http_device_auth_cluster_timer;
    c->timer.data = c;
    c->timer.log = cycle->log;
    c->timer.cancelable = 1;

    c->check.handler = ngx_http_device_auth_cluster_check;
    c->check.data = c;
    c->check.log = cycle->log;
    c->check.cancelable = 1;

    ngx_add_timer(&c->check, ngx_max(c->conf->redis_timeout, 1000));

    main->cluster = c;
    main->cache.cluster = c;

    ngx_http_device_auth_cluster_refresh(c);

    return NGX_OK;
}


void
ngx_http_device_auth_cluster_exit(ngx_http_device_auth_cluster_t *c)
{
    ngx_uint_t  i;

    c->exiting = 1;

    if (c->timer.timer_set) {
        ngx_del_timer(&c->timer);
    }

    if (c->check.timer_set) {
        ngx_del_timer(&c->check);
    }

    for (i = 0; i < c->n; i++) {
        ngx_http_device_auth_link_exit(&c->nodes[i]->link);
    }

    ngx_http_device_auth_cluster_wake(c, NGX_ERROR);
}


/*
 * The link of the node that serves a slot: NGX_OK (*nl ready to send on),
 * NGX_AGAIN (w waits for its handshake, or for the map), NGX_DECLINED
 * (nothing to send on now: the grace or the fail mode).
 */

ngx_int_t
ngx_http_device_auth_cluster_route(ngx_http_device_auth_cluster_t *c,
    int slot, ngx_http_device_auth_link_waiter_t *w,
    ngx_http_device_auth_link_t **nl)
{
    ngx_uint_t  idx;

    *nl = NULL;

    if (c->exiting || slot < 0 || slot >= NGX_DEVICE_AUTH_SLOTS) {
        return NGX_DECLINED;
    }

    idx = c->owner[slot];

    if (idx == 0) {
        if (c->mapped && !c->wanted && c->asking == NULL) {
            /* the cluster serves no such slot now */
            return NGX_DECLINED;
        }

        return ngx_http_device_auth_cluster_wait_map(c, w);
    }

    return ngx_http_device_auth_cluster_route_node(c, c->nodes[idx - 1], w,
                                                   nl);
}


/* a node's link: connected now if it is not, and may be */

ngx_int_t
ngx_http_device_auth_cluster_route_node(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_cnode_t *cn, ngx_http_device_auth_link_waiter_t *w,
    ngx_http_device_auth_link_t **nl)
{
    ngx_http_device_auth_link_t  *link;

    link = &cn->link;
    *nl = link;

    switch (ngx_http_device_auth_link_state(link)) {

    case NGX_HTTP_DEVICE_AUTH_LINK_UP:
    case NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED:
        return NGX_OK;

    case NGX_HTTP_DEVICE_AUTH_LINK_COMING:
        break;

    default:

        /* never connected, or not to reconnect by itself: on demand */

        if (link->cmd.ac || link->cmd.reconnect.timer_set) {
            return NGX_DECLINED;
        }

        ngx_http_device_auth_cluster_start(cn);

        if (ngx_http_device_auth_link_state(link)
            != NGX_HTTP_DEVICE_AUTH_LINK_COMING)
        {
            return NGX_DECLINED;
        }
    }

    if (w == NULL) {
        return NGX_DECLINED;
    }

    ngx_queue_insert_tail(&link->waiting, &w->queue);

    return NGX_AGAIN;
}


/* w waits for the next map (a slot without a node, -TRYAGAIN) */

ngx_int_t
ngx_http_device_auth_cluster_wait_map(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_link_waiter_t *w)
{
    ngx_http_device_auth_cluster_refresh(c);

    if (w == NULL || c->exiting) {
        return NGX_DECLINED;
    }

    ngx_queue_insert_tail(&c->waiting, &w->queue);

    return NGX_AGAIN;
}


/* the link state for a slot, as a request sees it */

ngx_uint_t
ngx_http_device_auth_cluster_state(ngx_http_device_auth_cluster_t *c,
    int slot)
{
    ngx_uint_t                     idx, state;
    ngx_http_device_auth_cnode_t  *cn;

    if (slot < 0 || slot >= NGX_DEVICE_AUTH_SLOTS) {
        return NGX_HTTP_DEVICE_AUTH_LINK_DOWN;
    }

    idx = c->owner[slot];

    if (idx == 0) {
        return (c->mapped && !c->wanted && c->asking == NULL)
               ? NGX_HTTP_DEVICE_AUTH_LINK_DOWN
               : NGX_HTTP_DEVICE_AUTH_LINK_COMING;
    }

    cn = c->nodes[idx - 1];
    state = ngx_http_device_auth_link_state(&cn->link);

    if (state == NGX_HTTP_DEVICE_AUTH_LINK_DOWN && cn->link.cmd.ac == NULL
        && !cn->link.cmd.reconnect.timer_set)
    {
        /* connected on demand */
        return NGX_HTTP_DEVICE_AUTH_LINK_COMING;
    }

    return state;
}


/*
 * A -MOVED or -ASK: the node named (NULL when it is not named by an IP
 * address).  MOVED moves the slot at once; the map is read again.
 */

ngx_http_device_auth_cnode_t *
ngx_http_device_auth_cluster_moved(ngx_http_device_auth_cluster_t *c,
    int kind, int slot, ngx_device_auth_node_addr_t *addr)
{
    ngx_http_device_auth_cnode_t  *cn;

    if (kind == NGX_DEVICE_AUTH_REDIRECT_MOVED) {
        ngx_http_device_auth_cluster_refresh(c);
    }

    if (addr->port == 0) {
        return NULL;
    }

    cn = ngx_http_device_auth_cluster_node(c, addr);

    if (cn == NULL || kind != NGX_DEVICE_AUTH_REDIRECT_MOVED || slot < 0
        || slot >= NGX_DEVICE_AUTH_SLOTS)
    {
        return cn;
    }

    if (c->owner[slot] != cn->index + 1) {
        c->owner[slot] = (u_char) (cn->index + 1);
        c->since[slot] = ++c->cache->epoch;
    }

    if (!cn->primary) {
        cn->primary = 1;
        ngx_http_device_auth_cluster_follow(cn);
    }

    return cn;
}


/* the map is to be read again: now, or one backoff after the last */

void
ngx_http_device_auth_cluster_refresh(ngx_http_device_auth_cluster_t *c)
{
    ngx_msec_t  elapsed;

    if (c->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    c->wanted = 1;

    if (c->asking || c->timer.timer_set) {
        return;
    }

    elapsed = ngx_current_msec - c->asked;

    if (c->asked && elapsed < c->backoff) {
        ngx_add_timer(&c->timer, c->backoff - elapsed);
        return;
    }

    ngx_http_device_auth_cluster_ask(c);
}


static void
ngx_http_device_auth_cluster_timer(ngx_event_t *ev)
{
    ngx_http_device_auth_cluster_t *c = ev->data;

    if (c->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_device_auth_cluster_ask(c);
}


/* the map is read again every max(device_auth_redis_timeout, 1s) */

static void
ngx_http_device_auth_cluster_check(ngx_event_t *ev)
{
    ngx_http_device_auth_cluster_t *c = ev->data;

    if (c->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_device_auth_cluster_refresh(c);

    ngx_add_timer(&c->check, ngx_max(c->conf->redis_timeout, 1000));
}


/*
 * CLUSTER SLOTS to a node whose command connection is ready, a primary
 * first; with none, the next seed is connected, and asked once ready (or
 * the one after it, one backoff later).
 */

static void
ngx_http_device_auth_cluster_ask(ngx_http_device_auth_cluster_t *c)
{
    ngx_uint_t                     i;
    ngx_http_device_auth_cnode_t  *cn, *pick;

    static u_char  slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

    if (c->timer.timer_set) {
        ngx_del_timer(&c->timer);
    }

    c->asked = ngx_current_msec;

    pick = NULL;

    for (i = 0; i < c->n; i++) {
        cn = c->nodes[i];

        if (ngx_http_device_auth_redis_ready(&cn->link.cmd)
            && (pick == NULL || (cn->primary && !pick->primary)))
        {
            pick = cn;
        }
    }

    if (pick
        && ngx_http_device_auth_redis_send(&pick->link.cmd,
                                     ngx_http_device_auth_cluster_slots_reply,
                                     c, slots, sizeof(slots) - 1)
           == NGX_OK)
    {
        c->asking = pick;
        c->wanted = 0;
        return;
    }

    cn = ngx_http_device_auth_cluster_node(c, &c->seeds[c->seed]);
    c->seed = (c->seed + 1) % c->nseeds;

    if (cn && cn->link.cmd.ac == NULL && !cn->link.cmd.reconnect.timer_set) {
        ngx_http_device_auth_cluster_start(cn);
    }

    /* that seed, or the next one after a backoff */

    if (!c->timer.timer_set && !c->exiting) {
        ngx_add_timer(&c->timer, c->backoff);
    }

    c->backoff = ngx_min(c->backoff * 2, NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX);
}


static void
ngx_http_device_auth_cluster_slots_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                      *reply = r;
    ngx_http_device_auth_cluster_t  *c = privdata;

    ngx_http_device_auth_redis_t  *redis;

    c->asking = NULL;

    if (c->exiting) {
        return;
    }

    if (reply == NULL) {
        /* the connection was lost: another node is asked */
        ngx_http_device_auth_cluster_refresh(c);
        return;
    }

    redis = ac->data;

    if (ngx_http_device_auth_cluster_apply(c, reply) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "device_auth: unexpected reply to \"CLUSTER SLOTS\" "
                      "from redis at \"%V\"%s%*s", &redis->node->name,
                      reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply->type == REDIS_REPLY_ERROR
                      ? ngx_min(reply->len, 128) : 0,
                      reply->str ? reply->str : "");

        c->backoff = ngx_min(c->backoff * 2,
                             NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX);

        ngx_http_device_auth_cluster_wake(c, NGX_ERROR);
        ngx_http_device_auth_cluster_refresh(c);
        return;
    }

    if (!c->mapped) {
        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
                      "device_auth: redis cluster slot map read from "
                      "\"%V\"", &redis->node->name);
    }

    c->mapped = 1;
    c->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;

    ngx_http_device_auth_cluster_links(c);
    ngx_http_device_auth_cluster_wake(c, NGX_OK);

    if (c->wanted) {
        ngx_http_device_auth_cluster_refresh(c);
    }
}


/*
 * The map of a CLUSTER SLOTS reply: each slot that gets another node gets
 * a new epoch; the nodes that serve slots reconnect by themselves when
 * lost, the others do not.
 */

static ngx_int_t
ngx_http_device_auth_cluster_apply(ngx_http_device_auth_cluster_t *c,
    redisReply *reply)
{
    size_t                          i, n;
    ngx_int_t                       rc;
    ngx_uint_t                      s, k, stamp;
    ngx_http_device_auth_cnode_t   *cn;
    ngx_device_auth_slot_range_t   *ranges;
    u_char                          owner[NGX_DEVICE_AUTH_SLOTS];
    u_char                          used[NGX_HTTP_DEVICE_AUTH_CLUSTER_NODES];

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        return NGX_ERROR;
    }

    ranges = ngx_alloc(reply->elements * sizeof(ngx_device_auth_slot_range_t),
                       c->log);
    if (ranges == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_device_auth_reply_slots(reply, ranges, reply->elements, &n) != 0)
    {
        goto done;
    }

    ngx_memzero(owner, sizeof(owner));
    ngx_memzero(used, sizeof(used));

    for (i = 0; i < n; i++) {
        cn = ngx_http_device_auth_cluster_node(c, &ranges[i].node);
        if (cn == NULL) {
            goto done;
        }

        used[cn->index] = 1;

        for (s = ranges[i].first; s <= (ngx_uint_t) ranges[i].last; s++) {
            owner[s] = (u_char) (cn->index + 1);
        }
    }

    stamp = ++c->cache->epoch;

    for (s = 0; s < NGX_DEVICE_AUTH_SLOTS; s++) {
        if (owner[s] != c->owner[s]) {
            c->owner[s] = owner[s];
            c->since[s] = stamp;
        }
    }

    for (k = 0; k < c->n; k++) {
        cn = c->nodes[k];

        if (cn->primary != used[k]) {
            cn->primary = used[k];
            ngx_http_device_auth_cluster_follow(cn);
        }
    }

    rc = NGX_OK;

done:

    ngx_free(ranges);

    return rc;
}


/* the node of an address, made when there is none yet; NULL: too many */

static ngx_http_device_auth_cnode_t *
ngx_http_device_auth_cluster_node(ngx_http_device_auth_cluster_t *c,
    ngx_device_auth_node_addr_t *addr)
{
    ngx_uint_t                     i;
    ngx_http_device_auth_cnode_t  *cn;

    for (i = 0; i < c->n; i++) {
        if (ngx_http_device_auth_node_is(&c->nodes[i]->link.node, addr)) {
            return c->nodes[i];
        }
    }

    if (c->n == NGX_HTTP_DEVICE_AUTH_CLUSTER_NODES) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "device_auth: more than %d redis cluster nodes",
                      NGX_HTTP_DEVICE_AUTH_CLUSTER_NODES);
        return NULL;
    }

    cn = ngx_pcalloc(c->pool, sizeof(ngx_http_device_auth_cnode_t));
    if (cn == NULL) {
        return NULL;
    }

    if (ngx_http_device_auth_link_child(&cn->link, c->main, addr) != NGX_OK) {
        return NULL;
    }

    cn->cluster = c;
    cn->index = c->n;
    c->nodes[c->n++] = cn;

    ngx_http_device_auth_cluster_follow(cn);

    return cn;
}


static void
ngx_http_device_auth_cluster_start(ngx_http_device_auth_cnode_t *cn)
{
    cn->started = 1;

    ngx_http_device_auth_cluster_follow(cn);
    ngx_http_device_auth_link_start(&cn->link);
}


/* a primary's link reconnects by itself; another's is not kept up */

static void
ngx_http_device_auth_cluster_follow(ngx_http_device_auth_cnode_t *cn)
{
    cn->link.cmd.follow = !cn->primary;
    cn->link.sub.follow = !cn->primary;
}


/* the waiters for the map learn how the question ended */

static void
ngx_http_device_auth_cluster_wake(ngx_http_device_auth_cluster_t *c,
    ngx_int_t rc)
{
    ngx_http_device_auth_link_wake_queue(&c->waiting, rc);
}


/* a node's link went up (tracked: a new epoch) or down */

void
ngx_http_device_auth_cluster_node_up(ngx_http_device_auth_link_t *nl,
    ngx_uint_t up)
{
    ngx_http_device_auth_cnode_t    *cn;
    ngx_http_device_auth_cluster_t  *c;

    cn = (ngx_http_device_auth_cnode_t *) nl;
    c = cn->cluster;

    if (up) {
        cn->up = 1;
        cn->epoch = ++c->cache->epoch;

    } else if (cn->up) {
        cn->up = 0;
        cn->lost_at = ngx_current_msec;
    }

    ngx_http_device_auth_cluster_links(c);
}


/* a node's command connection is ready: the map may be asked there */

void
ngx_http_device_auth_cluster_node_ready(ngx_http_device_auth_link_t *nl)
{
    ngx_http_device_auth_cnode_t    *cn;
    ngx_http_device_auth_cluster_t  *c;

    cn = (ngx_http_device_auth_cnode_t *) nl;
    c = cn->cluster;

    if (c->wanted && c->asking == NULL && !c->exiting) {
        ngx_http_device_auth_cluster_ask(c);
    }
}


/* a node's command connection was lost: it may have failed over */

void
ngx_http_device_auth_cluster_node_lost(ngx_http_device_auth_link_t *nl)
{
    ngx_http_device_auth_cnode_t    *cn;
    ngx_http_device_auth_cluster_t  *c;

    cn = (ngx_http_device_auth_cnode_t *) nl;
    c = cn->cluster;

    if (cn->primary || (!c->mapped && c->asking == NULL)) {
        ngx_http_device_auth_cluster_refresh(c);
    }
}


/* the slots of an entry's keys: a device's one, a signer's two */

int
ngx_http_device_auth_cluster_slots(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_entry_t *e, int *slots)
{
    u_char  *prefix;
    size_t   plen;

    prefix = c->conf->redis_prefix.data;
    plen = c->conf->redis_prefix.len;

    if (!e->signer) {
        slots[0] = ngx_device_auth_key_slot(prefix, plen,
                                            NGX_DEVICE_AUTH_KEY_REVOKED,
                                            e->id, e->sn.str.len);
        return 1;
    }

    slots[0] = ngx_device_auth_key_slot(prefix, plen,
                                        NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED,
                                        e->id, e->sn.str.len);
    slots[1] = ngx_device_auth_key_slot(prefix, plen,
                                        NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED,
                                        e->id, e->sn.str.len);
    return 2;
}


/*
 * The epoch an entry's facts are current in now: the greatest epoch of
 * its slots and their nodes; 0 when a slot has no node, or (unless
 * "down") a node's link is not up.
 */

ngx_uint_t
ngx_http_device_auth_cluster_epoch(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_entry_t *e, ngx_uint_t down)
{
    int                            i, n, slots[2];
    ngx_uint_t                     idx, epoch;
    ngx_http_device_auth_cnode_t  *cn;

    n = ngx_http_device_auth_cluster_slots(c, e, slots);
    epoch = 0;

    for (i = 0; i < n; i++) {
        if (slots[i] < 0) {
            return 0;
        }

        idx = c->owner[slots[i]];

        if (idx == 0) {
            return 0;
        }

        cn = c->nodes[idx - 1];

        if (cn->epoch == 0 || (!down && !cn->up)) {
            return 0;
        }

        epoch = ngx_max(epoch, ngx_max(cn->epoch, c->since[slots[i]]));
    }

    return epoch;
}


/*
 * The entry was current when a node of its slots went down, nothing else
 * changed since, and that was less than the grace ago.
 */

ngx_uint_t
ngx_http_device_auth_cluster_graced(ngx_http_device_auth_cluster_t *c,
    ngx_http_device_auth_entry_t *e, ngx_msec_t grace)
{
    int                            i, n, slots[2];
    ngx_uint_t                     down;
    ngx_http_device_auth_cnode_t  *cn;

    if (grace == 0 || e->epoch == 0
        || e->epoch != ngx_http_device_auth_cluster_epoch(c, e, 1))
    {
        return 0;
    }

    n = ngx_http_device_auth_cluster_slots(c, e, slots);
    down = 0;

    for (i = 0; i < n; i++) {
        cn = c->nodes[c->owner[slots[i]] - 1];

        if (!cn->up) {
            if (ngx_current_msec - cn->lost_at >= grace) {
                return 0;
            }

            down = 1;
        }
    }

    return down;
}


/* the worker's link counts as up when every primary it uses is */

static void
ngx_http_device_auth_cluster_links(ngx_http_device_auth_cluster_t *c)
{
    ngx_uint_t                     i, any, up;
    ngx_http_device_auth_cnode_t  *cn;

    any = 0;
    up = 1;

    for (i = 0; i < c->n; i++) {
        cn = c->nodes[i];

        if (cn->primary && cn->started) {
            any = 1;
            up &= cn->up;
        }
    }

    ngx_http_device_auth_metrics_link(c->conf, any && up);
}
