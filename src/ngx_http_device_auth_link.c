
/*
 * The invalidation link of a worker.
 *
 * Both connections start at once.  The subscriber's client id is where
 * the command connection's tracking sends invalidations: the command
 * connection tracks into it from its handshake if the subscriber was
 * first, or is retracked when it comes.  The link is up once both are
 * ready and the tracking names the subscriber that is there; it goes down
 * when either is lost, and the cache's epoch ends with it (see
 * ngx_http_device_auth_cache.c).  While only the command connection is up
 * (the subscriber cannot connect, or may not subscribe), facts are read
 * for each request and not kept.
 *
 * Operations made while a handshake is under way (the worker just
 * started, Redis just came back) wait for it, each with its own timer, so
 * that the first requests of a worker are not refused for being first.
 *
 * With Sentinel, both connections go to the master the sentinels name
 * (ngx_http_device_auth_sentinel.c), and the link reconnects them itself:
 * when either is lost, the sentinels are asked again first; when the
 * master switches, both are dropped and made to the new one (tracking and
 * its redirect must be on the same node), and the epoch ends as for any
 * loss: nothing cached is trusted until read from the new master, the
 * grace serves meanwhile.  The command connection checks with ROLE that
 * its node is a master, at the handshake and at each heartbeat, and
 * drops the connection on a "-READONLY": it never writes to a replica.
 *
 * With a cluster, the worker's link keeps the cache and the slot map
 * (ngx_http_device_auth_cluster.c), and each node it needs has a link of
 * its own, made here (ngx_http_device_auth_link_child()): its connections,
 * its epochs, told to the cluster; its invalidations go to the worker's
 * cache.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_http_device_auth_metrics.h"


static void ngx_http_device_auth_link_sub_ready(void *data, long long id);
static void ngx_http_device_auth_link_sub_lost(void *data);
static void ngx_http_device_auth_link_invalidate(void *data,
    const u_char *key, size_t len);
static void ngx_http_device_auth_link_flush(void *data);
static void ngx_http_device_auth_link_cmd_ready(void *data);
static void ngx_http_device_auth_link_cmd_going(void *data);
static void ngx_http_device_auth_link_cmd_lost(void *data);
static void ngx_http_device_auth_link_down(ngx_http_device_auth_link_t *link);
static void ngx_http_device_auth_link_wake(ngx_http_device_auth_link_t *link,
    ngx_int_t rc);
static ngx_int_t ngx_http_device_auth_link_node(
    ngx_http_device_auth_link_t *link, ngx_cycle_t *cycle);
static void ngx_http_device_auth_link_master(void *data,
    ngx_device_auth_node_addr_t *addr);
static void ngx_http_device_auth_link_no_master(void *data);
static void ngx_http_device_auth_link_resolve(
    ngx_http_device_auth_link_t *link);


ngx_int_t
ngx_http_device_auth_link_init(ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf)
{
    ngx_http_device_auth_link_t                 *link;
    ngx_http_device_auth_redis_handlers_t        ch;
    ngx_http_device_auth_subscriber_handlers_t   sh;

    link = ngx_pcalloc(cycle->pool, sizeof(ngx_http_device_auth_link_t));
    if (link == NULL) {
        return NGX_ERROR;
    }

    link->log = cycle->log;
    link->conf = dmcf;
    link->main = link;
    ngx_queue_init(&link->waiting);
    ngx_queue_init(&link->free);

    ngx_http_device_auth_cache_init(&link->cache, dmcf, cycle->log);

    ch.ready = ngx_http_device_auth_link_cmd_ready;
    ch.going = ngx_http_device_auth_link_cmd_going;
    ch.lost = ngx_http_device_auth_link_cmd_lost;
    ch.data = link;

    ngx_http_device_auth_redis_init(&link->cmd, cycle, dmcf, &ch);

    sh.ready = ngx_http_device_auth_link_sub_ready;
    sh.lost = ngx_http_device_auth_link_sub_lost;
    sh.invalidate = ngx_http_device_auth_link_invalidate;
    sh.flush = ngx_http_device_auth_link_flush;
    sh.data = link;

    ngx_http_device_auth_subscriber_init(&link->sub, cycle, dmcf, &sh);

    if (ngx_http_device_auth_link_node(link, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    dmcf->link = link;

    if (dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_CLUSTER) {
        /* the nodes' links connect when the map names them */
        return ngx_http_device_auth_cluster_init(link, cycle);
    }

    if (link->sentinel) {
        /* the connections start when the sentinels named the master */
        ngx_http_device_auth_sentinel_resolve(link->sentinel);
        return NGX_OK;
    }

    ngx_http_device_auth_subscriber_start(&link->sub);
    ngx_http_device_auth_redis_connect(&link->cmd);

    return NGX_OK;
}


/* where the connections go: the configured node, or the sentinels' master */

static ngx_int_t
ngx_http_device_auth_link_node(ngx_http_device_auth_link_t *link,
    ngx_cycle_t *cycle)
{
    ngx_int_t                                  rc;
    ngx_http_device_auth_main_conf_t          *dmcf;
    ngx_device_auth_node_addr_t               *addrs;
    ngx_http_device_auth_sentinel_handlers_t   h;

    dmcf = link->conf;

    ngx_http_device_auth_node_init(&link->node);

    link->cmd.node = &link->node;
    link->sub.node = &link->node;

    if (dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_SENTINEL) {
        link->sentinel = ngx_pcalloc(cycle->pool,
                                     sizeof(ngx_http_device_auth_sentinel_t));
        if (link->sentinel == NULL) {
            return NGX_ERROR;
        }

        h.master = ngx_http_device_auth_link_master;
        h.failed = ngx_http_device_auth_link_no_master;
        h.data = link;

        if (ngx_http_device_auth_sentinel_init(link->sentinel, cycle, dmcf,
                                               &h)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        link->cmd.follow = 1;
        link->cmd.role = 1;
        link->sub.follow = 1;

        return NGX_OK;
    }

    if (dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_CLUSTER) {
        return NGX_OK;
    }

    if (dmcf->redis_port) {
        addrs = dmcf->redis_nodes->elts;
        rc = ngx_http_device_auth_node_set(&link->node, &addrs[0]);

    } else {
        rc = ngx_http_device_auth_node_set_unix(&link->node,
                                                dmcf->redis_host.data);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "device_auth: invalid redis address \"%V\"",
                      &dmcf->redis_addr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the link of a cluster node: made now, connected on demand */

ngx_int_t
ngx_http_device_auth_link_child(ngx_http_device_auth_link_t *child,
    ngx_http_device_auth_link_t *main, ngx_device_auth_node_addr_t *addr)
{
    ngx_cycle_t                                 *cycle;
    ngx_http_device_auth_redis_handlers_t        ch;
    ngx_http_device_auth_subscriber_handlers_t   sh;

    cycle = (ngx_cycle_t *) ngx_cycle;

    child->log = main->log;
    child->conf = main->conf;
    child->main = main;
    ngx_queue_init(&child->waiting);
    ngx_queue_init(&child->free);

    /* its own holds nothing: its "up" is what link_state() reads */
    ngx_http_device_auth_cache_init(&child->cache, main->conf, main->log);

    ngx_memzero(&ch, sizeof(ngx_http_device_auth_redis_handlers_t));
    ch.ready = ngx_http_device_auth_link_cmd_ready;
    ch.going = ngx_http_device_auth_link_cmd_going;
    ch.lost = ngx_http_device_auth_link_cmd_lost;
    ch.data = child;

    ngx_http_device_auth_redis_init(&child->cmd, cycle, main->conf, &ch);

    ngx_memzero(&sh, sizeof(ngx_http_device_auth_subscriber_handlers_t));
    sh.ready = ngx_http_device_auth_link_sub_ready;
    sh.lost = ngx_http_device_auth_link_sub_lost;
    sh.invalidate = ngx_http_device_auth_link_invalidate;
    sh.flush = ngx_http_device_auth_link_flush;
    sh.data = child;

    ngx_http_device_auth_subscriber_init(&child->sub, cycle, main->conf, &sh);

    ngx_http_device_auth_node_init(&child->node);

    if (ngx_http_device_auth_node_set(&child->node, addr) != NGX_OK) {
        return NGX_ERROR;
    }

    child->cmd.node = &child->node;
    child->sub.node = &child->node;

    return NGX_OK;
}


/* both connections, unless there or under way */

void
ngx_http_device_auth_link_start(ngx_http_device_auth_link_t *link)
{
    ngx_http_device_auth_subscriber_start(&link->sub);

    if (link->cmd.ac == NULL) {
        ngx_http_device_auth_redis_connect(&link->cmd);
    }
}


void
ngx_http_device_auth_link_exit(ngx_http_device_auth_link_t *link)
{
    link->exiting = 1;

    if (link->cluster) {
        ngx_http_device_auth_cluster_exit(link->cluster);
    }

    if (link->sentinel) {
        ngx_http_device_auth_sentinel_exit(link->sentinel);
    }

    ngx_http_device_auth_subscriber_exit(&link->sub);
    ngx_http_device_auth_redis_exit(&link->cmd);
    ngx_http_device_auth_link_wake(link, NGX_ERROR);
    ngx_http_device_auth_cache_exit(&link->cache);

    if (link->main == link) {
        ngx_http_device_auth_metrics_link(link->conf, 0);
    }
}


ngx_uint_t
ngx_http_device_auth_link_state(ngx_http_device_auth_link_t *link)
{
    if (link->cache.up) {
        return NGX_HTTP_DEVICE_AUTH_LINK_UP;
    }

    if (link->exiting) {
        return NGX_HTTP_DEVICE_AUTH_LINK_DOWN;
    }

    if (link->cmd.state == NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING) {
        return NGX_HTTP_DEVICE_AUTH_LINK_COMING;
    }

    if (ngx_http_device_auth_redis_ready(&link->cmd)) {
        return NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED;
    }

    /*
     * the connections are being made to a new master, or the sentinels
     * are asked where the master is: a connect follows
     */

    if (link->switching
        || (link->sentinel
            && ngx_http_device_auth_sentinel_asking(link->sentinel)))
    {
        return NGX_HTTP_DEVICE_AUTH_LINK_COMING;
    }

    return NGX_HTTP_DEVICE_AUTH_LINK_DOWN;
}


/*
 * NGX_OK: send now (up, or untracked); NGX_AGAIN: the waiter's handler is
 * called when a handshake under way ends (NGX_OK) or fails; NGX_DECLINED:
 * nothing to send on now: the caller does not wait for a reconnect.
 */

ngx_int_t
ngx_http_device_auth_link_wait(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_link_waiter_t *w)
{
    switch (ngx_http_device_auth_link_state(link)) {

    case NGX_HTTP_DEVICE_AUTH_LINK_UP:
    case NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED:
        return NGX_OK;

    case NGX_HTTP_DEVICE_AUTH_LINK_COMING:
        ngx_queue_insert_tail(&link->waiting, &w->queue);
        return NGX_AGAIN;

    default:
        return NGX_DECLINED;
    }
}


/*
 * The link to send a command for a key slot on (*nl): the link itself, or
 * with a cluster, the link of the node that serves the slot.  As
 * ngx_http_device_auth_link_wait(); w NULL: nothing waits (NGX_DECLINED
 * rather than NGX_AGAIN).
 */

ngx_int_t
ngx_http_device_auth_link_route(ngx_http_device_auth_link_t *link, int slot,
    ngx_http_device_auth_link_waiter_t *w, ngx_http_device_auth_link_t **nl)
{
    ngx_uint_t  state;

    if (link->cluster) {
        return ngx_http_device_auth_cluster_route(link->cluster, slot, w, nl);
    }

    *nl = link;

    if (w) {
        return ngx_http_device_auth_link_wait(link, w);
    }

    state = ngx_http_device_auth_link_state(link);

    return (state == NGX_HTTP_DEVICE_AUTH_LINK_UP
            || state == NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED)
           ? NGX_OK : NGX_DECLINED;
}


/*
 * The state of the link for a request that needs the facts of these
 * entries (NULL: not needed): with a cluster, the worst of their nodes'.
 */

ngx_uint_t
ngx_http_device_auth_link_state_for(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *dev, ngx_http_device_auth_entry_t *sig)
{
    int                            i, n, slots[2];
    ngx_uint_t                     k, state, worst;
    ngx_http_device_auth_entry_t  *e[2];

    if (link->cluster == NULL) {
        return ngx_http_device_auth_link_state(link);
    }

    e[0] = dev;
    e[1] = sig;
    worst = NGX_HTTP_DEVICE_AUTH_LINK_UP;

    for (k = 0; k < 2; k++) {
        if (e[k] == NULL) {
            continue;
        }

        n = ngx_http_device_auth_cluster_slots(link->cluster, e[k], slots);

        for (i = 0; i < n; i++) {
            state = ngx_http_device_auth_cluster_state(link->cluster,
                                                       slots[i]);
            worst = ngx_min(worst, state);
        }
    }

    return worst;
}


/* the waiters learn how the handshake ended; each leaves the queue first */

static void
ngx_http_device_auth_link_wake(ngx_http_device_auth_link_t *link,
    ngx_int_t rc)
{
    ngx_queue_t                         *q;
    ngx_http_device_auth_link_waiter_t  *w;

    while (!ngx_queue_empty(&link->waiting)) {
        q = ngx_queue_head(&link->waiting);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_device_auth_link_waiter_t, queue);
        w->handler(w->data, rc);
    }
}


static void
ngx_http_device_auth_link_sub_ready(void *data, long long id)
{
    ngx_http_device_auth_link_t *link = data;

    /* a handshake under way or a reconnect takes it up; a ready one now */

    if (link->sub.gen != link->cmd.gen && link->cmd.ac) {
        /* not the node the command connection is on: it follows */
        link->cmd.redirect = -1;
        return;
    }

    link->cmd.redirect = id;

    ngx_http_device_auth_redis_retrack(&link->cmd, id);
}


static void
ngx_http_device_auth_link_sub_lost(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    /* the command connection stays; a reconnect of it is untracked */
    link->cmd.redirect = -1;

    ngx_http_device_auth_link_down(link);
    ngx_http_device_auth_link_resolve(link);
}


static void
ngx_http_device_auth_link_invalidate(void *data, const u_char *key,
    size_t len)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_cache_invalidate(&link->main->cache, (u_char *) key,
                                          len);
}


static void
ngx_http_device_auth_link_flush(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_cache_flush(&link->main->cache);
}


static void
ngx_http_device_auth_link_cmd_ready(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    if (link->sentinel) {
        /* a master (ROLE): its subscriber may come */
        ngx_http_device_auth_subscriber_start(&link->sub);
    }

    if (link->main != link) {
        /* a cluster node: the slot map may be asked there */
        ngx_http_device_auth_cluster_node_ready(link);
    }

    if (!ngx_http_device_auth_subscriber_ready(&link->sub)
        || link->sub.gen != link->cmd.gen)
    {
        /* untracked: the subscriber gets the tracking when it comes */
        ngx_http_device_auth_link_wake(link, NGX_OK);
        return;
    }

    if (link->cmd.tracking != link->sub.id) {
        /* the subscriber came, or was replaced, during the handshake */
        ngx_http_device_auth_redis_retrack(&link->cmd, link->sub.id);
        return;
    }

    ngx_http_device_auth_cache_link(&link->cache, 1);

    if (link->main != link) {
        ngx_http_device_auth_cluster_node_up(link, 1);

    } else {
        ngx_http_device_auth_metrics_link(link->conf, 1);
    }

    if (link->sentinel) {
        ngx_http_device_auth_sentinel_ok(link->sentinel);
    }

    ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                  "device_auth: invalidation link to \"%V\" up: device "
                  "state is cached (epoch %ui)", &link->node.name,
                  link->main->cache.epoch);

    ngx_http_device_auth_link_wake(link, NGX_OK);
}


/* the command connection is ending: what fails in flight finds the link down */

static void
ngx_http_device_auth_link_cmd_going(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_link_down(link);
}


static void
ngx_http_device_auth_link_cmd_lost(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_link_down(link);

    /* a switch: what waits, waits for the connection to the new master */

    if (!link->exiting && !link->switching) {
        ngx_http_device_auth_link_wake(link, NGX_ERROR);
    }

    if (link->main != link && !link->exiting) {
        ngx_http_device_auth_cluster_node_lost(link);
    }

    ngx_http_device_auth_link_resolve(link);
}


static void
ngx_http_device_auth_link_down(ngx_http_device_auth_link_t *link)
{
    if (link->cache.up && !link->exiting) {
        ngx_log_error(NGX_LOG_WARN, link->log, 0,
                      "device_auth: invalidation link to \"%V\" down: "
                      "cached device state serves for the grace, then the "
                      "fail mode decides", &link->node.name);
    }

    ngx_http_device_auth_cache_link(&link->cache, 0);

    if (link->main != link) {
        ngx_http_device_auth_cluster_node_up(link, 0);

    } else {
        ngx_http_device_auth_metrics_link(link->conf, 0);
    }
}


/*
 * A connection to the master was lost, or refused: where is the master
 * now?  Not when the link itself dropped it for a switch.
 */

static void
ngx_http_device_auth_link_resolve(ngx_http_device_auth_link_t *link)
{
    if (link->sentinel && !link->switching && !link->exiting) {
        ngx_http_device_auth_sentinel_resolve(link->sentinel);
    }
}


/*
 * A sentinel named the master, in an answer or a switch.  The same node:
 * the connections that are not there are made.  Another: those to the
 * old one are dropped first (the operations in flight on it fail: the
 * grace or the fail mode), and the epoch ends.
 */

static void
ngx_http_device_auth_link_master(void *data,
    ngx_device_auth_node_addr_t *addr)
{
    ngx_http_device_auth_link_t *link = data;

    u_char  old[NGX_SOCKADDR_STRLEN];
    size_t  len;

    if (link->exiting) {
        return;
    }

    if (!ngx_http_device_auth_node_is(&link->node, addr)) {

        len = link->node.gen ? link->node.name.len : 0;
        ngx_memcpy(old, link->node.name.data, len);

        link->switching = 1;

        ngx_http_device_auth_link_down(link);
        ngx_http_device_auth_subscriber_stop(&link->sub);
        link->cmd.redirect = -1;

        if (link->cmd.ac) {
            ngx_http_device_auth_redis_reset(&link->cmd, "the master "
                                             "switched");
        }

        link->switching = 0;

        if (ngx_http_device_auth_node_set(&link->node, addr) != NGX_OK) {
            /* the reply's parser checked it: not reached */
            return;
        }

        if (len) {
            ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                          "device_auth: master \"%V\" switched from "
                          "\"%*s\" to \"%V\"", &link->conf->redis_sentinel,
                          len, old, &link->node.name);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                          "device_auth: master \"%V\" is at \"%V\"",
                          &link->conf->redis_sentinel, &link->node.name);
        }
    }

    /* the subscriber once ROLE said that the node is a master */

    if (link->cmd.ac == NULL) {
        ngx_http_device_auth_redis_connect(&link->cmd);

    } else if (ngx_http_device_auth_redis_ready(&link->cmd)) {
        ngx_http_device_auth_subscriber_start(&link->sub);
    }
}


/* no sentinel answered: what waits for the master stops waiting */

static void
ngx_http_device_auth_link_no_master(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    if (link->cmd.state != NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING) {
        ngx_http_device_auth_link_wake(link, NGX_ERROR);
    }
}
