
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
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_metrics.h"


static void ngx_http_device_auth_link_sub_ready(void *data, long long id);
static void ngx_http_device_auth_link_sub_lost(void *data);
static void ngx_http_device_auth_link_invalidate(void *data,
    const u_char *key, size_t len);
static void ngx_http_device_auth_link_flush(void *data);
static void ngx_http_device_auth_link_cmd_ready(void *data);
static void ngx_http_device_auth_link_cmd_lost(void *data);
static void ngx_http_device_auth_link_down(ngx_http_device_auth_link_t *link);
static void ngx_http_device_auth_link_wake(ngx_http_device_auth_link_t *link,
    ngx_int_t rc);


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
    ngx_queue_init(&link->waiting);
    ngx_queue_init(&link->free);

    ngx_http_device_auth_cache_init(&link->cache, dmcf, cycle->log);

    ch.ready = ngx_http_device_auth_link_cmd_ready;
    ch.lost = ngx_http_device_auth_link_cmd_lost;
    ch.data = link;

    ngx_http_device_auth_redis_init(&link->cmd, cycle, dmcf, &ch);

    sh.ready = ngx_http_device_auth_link_sub_ready;
    sh.lost = ngx_http_device_auth_link_sub_lost;
    sh.invalidate = ngx_http_device_auth_link_invalidate;
    sh.flush = ngx_http_device_auth_link_flush;
    sh.data = link;

    ngx_http_device_auth_subscriber_init(&link->sub, cycle, dmcf, &sh);

    dmcf->link = link;

    ngx_http_device_auth_subscriber_start(&link->sub);
    ngx_http_device_auth_redis_connect(&link->cmd);

    return NGX_OK;
}


void
ngx_http_device_auth_link_exit(ngx_http_device_auth_link_t *link)
{
    link->exiting = 1;

    ngx_http_device_auth_subscriber_exit(&link->sub);
    ngx_http_device_auth_redis_exit(&link->cmd);
    ngx_http_device_auth_link_wake(link, NGX_ERROR);
    ngx_http_device_auth_cache_exit(&link->cache);
    ngx_http_device_auth_metrics_link(link->conf, 0);
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
}


static void
ngx_http_device_auth_link_invalidate(void *data, const u_char *key,
    size_t len)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_cache_invalidate(&link->cache, (u_char *) key, len);
}


static void
ngx_http_device_auth_link_flush(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_cache_flush(&link->cache);
}


static void
ngx_http_device_auth_link_cmd_ready(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    if (!ngx_http_device_auth_subscriber_ready(&link->sub)) {
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
    ngx_http_device_auth_metrics_link(link->conf, 1);

    ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                  "device_auth: invalidation link to \"%V\" up: device "
                  "state is cached (epoch %ui)", &link->conf->redis_addr,
                  link->cache.epoch);

    ngx_http_device_auth_link_wake(link, NGX_OK);
}


static void
ngx_http_device_auth_link_cmd_lost(void *data)
{
    ngx_http_device_auth_link_t *link = data;

    ngx_http_device_auth_link_down(link);

    if (!link->exiting) {
        ngx_http_device_auth_link_wake(link, NGX_ERROR);
    }
}


static void
ngx_http_device_auth_link_down(ngx_http_device_auth_link_t *link)
{
    if (link->cache.up && !link->exiting) {
        ngx_log_error(NGX_LOG_WARN, link->log, 0,
                      "device_auth: invalidation link to \"%V\" down: "
                      "cached device state serves for the grace, then the "
                      "fail mode decides", &link->conf->redis_addr);
    }

    ngx_http_device_auth_cache_link(&link->cache, 0);
    ngx_http_device_auth_metrics_link(link->conf, 0);
}
