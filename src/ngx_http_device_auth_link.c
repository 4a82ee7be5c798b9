
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
 * With device_auth_redis_canary, the command connection reads the canary
 * key (after "CLIENT CACHING yes" when it tracks) each time it is ready,
 * before anything is served: while the key is missing (Redis restarted
 * empty, FLUSHALL, another database or prefix) Redis is unavailable to
 * the edge, logged at crit, and the grace, then the fail mode, decides.
 * Its deletion is pushed like any fact's: the invalidation of the key, or
 * the flush message (which then does not forget the facts: they serve for
 * the grace, since the Redis that lost them is not to be believed), ends
 * the link's epoch at once, and the key is read again.  Without tracking,
 * and while it is missing, it is read again every heartbeat interval.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_reply.h"


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
static void ngx_http_device_auth_link_serve(ngx_http_device_auth_link_t *link);
static void ngx_http_device_auth_link_canary_check(
    ngx_http_device_auth_link_t *link);
static void ngx_http_device_auth_link_canary_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_link_canary_lost(
    ngx_http_device_auth_link_t *link, const char *what);
static void ngx_http_device_auth_link_canary_poll(ngx_event_t *ev);
static void ngx_http_device_auth_link_canary_arm(
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

    link->canary_poll.handler = ngx_http_device_auth_link_canary_poll;
    link->canary_poll.data = link;
    link->canary_poll.log = cycle->log;
    link->canary_poll.cancelable = 1;

    ngx_http_device_auth_cache_init(&link->cache, dmcf, cycle->log);
    ngx_http_device_auth_stats_init(link);

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
    if (link->canary_poll.timer_set) {
        ngx_del_timer(&link->canary_poll);
    }

    ngx_http_device_auth_stats_exit(link);

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

    /* a canary read again while it was there does not hold requests */

    if (link->cmd.state == NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING
        || (link->checking
            && link->canary != NGX_HTTP_DEVICE_AUTH_CANARY_PRESENT))
    {
        return NGX_HTTP_DEVICE_AUTH_LINK_COMING;
    }

    if (link->conf->canary_key.len
        && link->canary != NGX_HTTP_DEVICE_AUTH_CANARY_PRESENT)
    {
        return NGX_HTTP_DEVICE_AUTH_LINK_DOWN;
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
 * Why Redis cannot be asked now, for the requests' log lines and
 * $device_auth_reason: the kind (NGX_HTTP_DEVICE_AUTH_RE_*, for the
 * metrics), and the text in buf.
 */

ngx_uint_t
ngx_http_device_auth_link_why(ngx_http_device_auth_link_t *link, u_char *buf,
    size_t size, size_t *len)
{
    u_char                           *p;
    ngx_http_device_auth_sentinel_t  *s;

    if (link->conf->canary_key.len
        && link->canary == NGX_HTTP_DEVICE_AUTH_CANARY_MISSING
        && ngx_http_device_auth_redis_ready(&link->cmd))
    {
        p = ngx_slprintf(buf, buf + size, "%*s", link->canary_why_len,
                         link->canary_why);
        *len = p - buf;
        return NGX_HTTP_DEVICE_AUTH_RE_CANARY;
    }

    s = link->sentinel;

    if (s && s->silent && !ngx_http_device_auth_redis_ready(&link->cmd)) {

        /*
         * no sentinel named the master since it was lost: why the last
         * one asked did not (a sentinel's WRONGPASS is said here)
         */

        p = ngx_slprintf(buf, buf + size, "redis not connected: no sentinel "
                         "named the master \"%V\"%s%*s",
                         &link->conf->redis_sentinel,
                         s->conn.outage.len ? ": " : "",
                         s->conn.outage.len, s->conn.outage.msg);
        *len = p - buf;

        return NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED;
    }

    if (link->cmd.outage.len) {
        p = ngx_slprintf(buf, buf + size, "redis not connected: %*s",
                         link->cmd.outage.len, link->cmd.outage.msg);

    } else {
        p = ngx_slprintf(buf, buf + size, "redis not connected");
    }

    *len = p - buf;

    return link->cmd.cause;
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


/* the waiters learn how the handshake ended */

static void
ngx_http_device_auth_link_wake(ngx_http_device_auth_link_t *link,
    ngx_int_t rc)
{
    ngx_http_device_auth_link_wake_queue(&link->waiting, rc);
}


/*
 * Those waiting now are woken, each leaving the queue first.  One that
 * finds the link still coming waits again, for the next wake: told "ok"
 * by a canary read while a retrack is under way, a waiter that went back
 * into the queue it was taken from would be taken again, forever.
 */

void
ngx_http_device_auth_link_wake_queue(ngx_queue_t *waiting, ngx_int_t rc)
{
    ngx_queue_t                         *q, woken;
    ngx_http_device_auth_link_waiter_t  *w;

    if (ngx_queue_empty(waiting)) {
        return;
    }

    ngx_queue_init(&woken);
    ngx_queue_add(&woken, waiting);
    ngx_queue_init(waiting);

    while (!ngx_queue_empty(&woken)) {
        q = ngx_queue_head(&woken);
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

    /* untracked: a canary's deletion is no longer pushed */
    ngx_http_device_auth_link_canary_arm(link);
}


static void
ngx_http_device_auth_link_invalidate(void *data, const u_char *key,
    size_t len)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_str_t  *canary;

    canary = &link->conf->canary_key;

    if (canary->len && canary->len == len
        && ngx_memcmp(canary->data, key, len) == 0)
    {
        ngx_http_device_auth_link_canary_lost(link, "changed");
        return;
    }

    ngx_http_device_auth_cache_invalidate(&link->main->cache, (u_char *) key,
                                          len);
}


/*
 * FLUSHALL, FLUSHDB.  With a canary, that Redis is no longer believed:
 * the facts it held serve for the grace while the canary is read again
 * (it is gone, unless set again); without, everything is read again.
 */

static void
ngx_http_device_auth_link_flush(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    if (link->conf->canary_key.len) {
        ngx_http_device_auth_metrics_cache(link->conf,
                                           NGX_HTTP_DEVICE_AUTH_CM_FLUSH);
        ngx_http_device_auth_link_canary_lost(link, "flushed");
        return;
    }

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

    if (ngx_http_device_auth_subscriber_ready(&link->sub)
        && link->sub.gen == link->cmd.gen
        && link->cmd.tracking != link->sub.id)
    {
        /* the subscriber came, or was replaced, during the handshake */
        ngx_http_device_auth_redis_retrack(&link->cmd, link->sub.id);
        return;
    }

    if (link->conf->canary_key.len) {
        ngx_http_device_auth_link_canary_check(link);
        return;
    }

    ngx_http_device_auth_link_serve(link);
}


/*
 * Ready to serve: up (tracked into the subscriber that is there, on the
 * same node), or not
 */

static void
ngx_http_device_auth_link_serve(ngx_http_device_auth_link_t *link)
{
    /* the fleet's figures: on the worker's link (a cluster's, for each node) */
    ngx_http_device_auth_stats_ready(link->main);

    if (!ngx_http_device_auth_subscriber_ready(&link->sub)
        || link->sub.gen != link->cmd.gen
        || link->cmd.tracking != link->sub.id)
    {
        /* untracked: the subscriber gets the tracking when it comes */
        ngx_http_device_auth_link_wake(link, NGX_OK);
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

    /* the next connection may reach a Redis that forgot: read it again */
    link->canary = NGX_HTTP_DEVICE_AUTH_CANARY_UNKNOWN;

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


/*
 * The canary is read: "CLIENT CACHING yes" first when the connection
 * tracks into the subscriber, so that its deletion is pushed.  Requests
 * wait meanwhile (the link is coming).
 */

static void
ngx_http_device_auth_link_canary_check(ngx_http_device_auth_link_t *link)
{
    size_t                             len;
    ngx_uint_t                         tracked;
    ngx_device_auth_resp_t             cmd;
    ngx_http_device_auth_main_conf_t  *dmcf;
    u_char                             buf[512];
    static u_char                      caching[] = "*3\r\n$6\r\nCLIENT\r\n"
                                                   "$7\r\nCACHING\r\n"
                                                   "$3\r\nyes\r\n";

    dmcf = link->conf;

    if (link->checking) {
        /* the read in flight may be of another tracking: again after it */
        link->recheck = 1;
        return;
    }

    if (!ngx_http_device_auth_redis_ready(&link->cmd)) {
        return;
    }

    tracked = ngx_http_device_auth_subscriber_ready(&link->sub)
              && link->cmd.tracking == link->sub.id;

    ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
    ngx_device_auth_resp_array(&cmd, 2);
    ngx_device_auth_resp_bulk(&cmd, "GET", 3);
    ngx_device_auth_resp_bulk(&cmd, dmcf->canary_key.data,
                              dmcf->canary_key.len);

    len = ngx_device_auth_resp_len(&cmd);

    if (len == 0
        || (tracked
            && ngx_http_device_auth_redis_send(&link->cmd, NULL, NULL,
                                               caching, sizeof(caching) - 1)
               != NGX_OK)
        || ngx_http_device_auth_redis_send(&link->cmd,
                                       ngx_http_device_auth_link_canary_reply,
                                       link, buf, len)
           != NGX_OK)
    {
        ngx_http_device_auth_redis_reset(&link->cmd, "cannot read the canary");
        return;
    }

    link->checking = 1;
    link->recheck = 0;
}


static void
ngx_http_device_auth_link_canary_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_link_t *link = privdata;

    u_char                            *p;
    ngx_int_t                          rc;
    ngx_device_auth_text_t             value;
    ngx_device_auth_verdict_t          err;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = link->conf;
    link->checking = 0;

    if (r == NULL || link->exiting) {
        /* the connection is lost: its handler says so */
        return;
    }

    if (link->recheck) {
        ngx_http_device_auth_link_canary_check(link);
        return;
    }

    rc = ngx_device_auth_reply_get(r, &value, &err);

    if (rc == NGX_DEVICE_AUTH_V_OK && value.data) {
        if (link->canary_logged) {
            ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                          "device_auth: redis canary \"%V\" found at "
                          "\"%V\" db %i: device state is read from redis "
                          "again", &dmcf->canary_key, &link->node.name,
                          dmcf->redis_db);
            link->canary_logged = 0;
        }

        link->canary = NGX_HTTP_DEVICE_AUTH_CANARY_PRESENT;
        ngx_http_device_auth_metrics_canary(dmcf, 0);

        ngx_http_device_auth_link_serve(link);
        ngx_http_device_auth_link_canary_arm(link);
        return;
    }

    /* missing, or unreadable (a key of another type, an ACL) */

    link->canary = NGX_HTTP_DEVICE_AUTH_CANARY_MISSING;

    p = ngx_slprintf(link->canary_why, link->canary_why
                                       + sizeof(link->canary_why),
                     "redis canary \"%V\" %s%*s", &dmcf->canary_key,
                     rc == NGX_DEVICE_AUTH_V_OK ? "missing" : "unreadable: ",
                     rc == NGX_DEVICE_AUTH_V_OK ? (size_t) 0 : err.reason_len,
                     err.reason);
    link->canary_why_len = p - link->canary_why;

    if (!link->canary_logged) {
        ngx_log_error(NGX_LOG_CRIT, link->log, 0,
                      "device_auth: %*s at \"%V\" db %i: redis was "
                      "restarted empty or flushed, or this is not the "
                      "database or prefix that operations write; it is "
                      "treated as unavailable: the grace, then "
                      "device_auth_fail_mode decides",
                      link->canary_why_len, link->canary_why,
                      &link->node.name, dmcf->redis_db);
        link->canary_logged = 1;
    }

    ngx_http_device_auth_metrics_canary(dmcf, 1);

    ngx_http_device_auth_link_wake(link, NGX_ERROR);
    ngx_http_device_auth_link_canary_arm(link);
}


/* the canary changed or was flushed: nothing cached is current now */

static void
ngx_http_device_auth_link_canary_lost(ngx_http_device_auth_link_t *link,
    const char *what)
{
    if (link->cache.up) {
        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "device_auth: redis canary \"%V\" %s: the cached "
                      "device state serves for the grace until it is read "
                      "again", &link->conf->canary_key, what);

        ngx_http_device_auth_cache_link(&link->cache, 0);
        ngx_http_device_auth_metrics_link(link->conf, 0);
    }

    link->canary = NGX_HTTP_DEVICE_AUTH_CANARY_UNKNOWN;

    ngx_http_device_auth_link_canary_check(link);
}


/* read again every heartbeat interval while no push would tell */

static void
ngx_http_device_auth_link_canary_arm(ngx_http_device_auth_link_t *link)
{
    if (link->conf->canary_key.len == 0 || link->exiting
        || link->cache.up || link->canary_poll.timer_set)
    {
        return;
    }

    ngx_add_timer(&link->canary_poll,
                  ngx_max(link->conf->redis_timeout, 1000));
}


static void
ngx_http_device_auth_link_canary_poll(ngx_event_t *ev)
{
    ngx_http_device_auth_link_t *link = ev->data;

    if (link->exiting || link->cache.up) {
        return;
    }

    if (!link->checking && ngx_http_device_auth_redis_ready(&link->cmd)) {
        ngx_http_device_auth_link_canary_check(link);
    }

    ngx_http_device_auth_link_canary_arm(link);
}
