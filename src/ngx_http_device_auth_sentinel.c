
/*
 * Redis Sentinel: where the master is.
 *
 * One connection per worker to one sentinel at a time (the subscriber's
 * code, ngx_http_device_auth_subscriber.c): AUTH with sentinel_password
 * when configured, "SENTINEL get-master-addr-by-name <name>", then
 * SUBSCRIBE "+switch-master", pipelined: the sentinel answers the question
 * and subscribes in the same pass of its event loop, so that no switch
 * falls between the answer and the subscription.  The owner (the link)
 * hears of the master at once, then of each of its switches.
 *
 * The owner asks again (ngx_http_device_auth_sentinel_resolve()) when its
 * connections to the master are lost, or the master is no longer one: a
 * new connection to the next sentinel asks the question anew (a sentinel
 * cut off from the others may name a master that is gone).  A sentinel
 * that cannot be reached, does not know the master, or answers something
 * else, is followed by the next one in the order of the directive at
 * once; when a whole round failed, the owner is told, and the next round
 * waits.
 * Questions are paced: at most one per backoff (100 ms, doubling up to
 * 5 s, back to 100 ms once the link to the master is up), so that a master
 * that is down while the sentinels still name it (before they fail over)
 * is not hammered.  Meanwhile the subscription stays: the switch comes as
 * soon as the sentinels made it.
 *
 * Nothing blocks: nginx's connections and timers, IP addresses only (a
 * sentinel announcing host names is refused: that would need DNS).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_sentinel.h"


static void ngx_http_device_auth_sentinel_ask(
    ngx_http_device_auth_sentinel_t *s);
static void ngx_http_device_auth_sentinel_schedule(
    ngx_http_device_auth_sentinel_t *s);
static void ngx_http_device_auth_sentinel_timer(ngx_event_t *ev);
static void ngx_http_device_auth_sentinel_ready(void *data, long long id);
static void ngx_http_device_auth_sentinel_lost(void *data);
static void ngx_http_device_auth_sentinel_master(void *data,
    ngx_device_auth_node_addr_t *addr);


ngx_int_t
ngx_http_device_auth_sentinel_init(ngx_http_device_auth_sentinel_t *s,
    ngx_cycle_t *cycle, ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_sentinel_handlers_t *handlers)
{
    ngx_http_device_auth_subscriber_handlers_t  sh;

    ngx_memzero(s, sizeof(ngx_http_device_auth_sentinel_t));

    s->log = cycle->log;
    s->conf = dmcf;
    s->handlers = *handlers;
    s->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;

    s->addrs = dmcf->redis_nodes->elts;
    s->n = dmcf->redis_nodes->nelts;

    s->outages = ngx_pcalloc(cycle->pool,
                             s->n * sizeof(ngx_http_device_auth_outage_t));
    if (s->outages == NULL) {
        return NGX_ERROR;
    }

    ngx_http_device_auth_node_init(&s->node);

    ngx_memzero(&sh, sizeof(ngx_http_device_auth_subscriber_handlers_t));
    sh.ready = ngx_http_device_auth_sentinel_ready;
    sh.lost = ngx_http_device_auth_sentinel_lost;
    sh.master = ngx_http_device_auth_sentinel_master;
    sh.data = s;

    ngx_http_device_auth_subscriber_init(&s->conn, cycle, dmcf, &sh);

    s->conn.node = &s->node;
    s->conn.user = &dmcf->redis_sentinel_user;
    s->conn.password = &dmcf->redis_sentinel_password;
    s->conn.sentinel = &dmcf->redis_sentinel;
    s->conn.follow = 1;

    s->timer.handler = ngx_http_device_auth_sentinel_timer;
    s->timer.data = s;
    s->timer.log = cycle->log;
    s->timer.cancelable = 1;

    return NGX_OK;
}


/* the owner wants to know where the master is now */

void
ngx_http_device_auth_sentinel_resolve(ngx_http_device_auth_sentinel_t *s)
{
    if (s->exiting) {
        return;
    }

    s->wanted = 1;

    if (s->asking) {
        return;
    }

    /* the last answer led nowhere: the next sentinel is asked */

    if (s->asked) {
        s->next = (s->next + 1) % s->n;
    }

    ngx_http_device_auth_sentinel_schedule(s);
}


/* the master that was named answers: the next question may come soon */

void
ngx_http_device_auth_sentinel_ok(ngx_http_device_auth_sentinel_t *s)
{
    s->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;
}


/* a question the owner waits for is out: its answer is coming */

ngx_uint_t
ngx_http_device_auth_sentinel_asking(ngx_http_device_auth_sentinel_t *s)
{
    return s->wanted && s->asking;
}


void
ngx_http_device_auth_sentinel_exit(ngx_http_device_auth_sentinel_t *s)
{
    s->exiting = 1;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    ngx_http_device_auth_subscriber_exit(&s->conn);
}


/* the next question: now, or one backoff after the last one */

static void
ngx_http_device_auth_sentinel_schedule(ngx_http_device_auth_sentinel_t *s)
{
    ngx_msec_t  elapsed;

    if (s->timer.timer_set
        || s->exiting || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return;
    }

    elapsed = ngx_current_msec - s->asked;

    if (s->asked && elapsed < s->backoff) {
        ngx_add_timer(&s->timer, s->backoff - elapsed);

    } else {
        ngx_http_device_auth_sentinel_ask(s);
    }

    s->backoff = ngx_min(s->backoff * 2, NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX);
}


static void
ngx_http_device_auth_sentinel_timer(ngx_event_t *ev)
{
    ngx_http_device_auth_sentinel_t *s = ev->data;

    if (s->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_device_auth_sentinel_ask(s);
}


/*
 * A new connection to the next sentinel asks the question and subscribes;
 * the one it replaces (following switches meanwhile) is closed.  Each
 * sentinel's failures are logged once per cause.
 */

static void
ngx_http_device_auth_sentinel_ask(ngx_http_device_auth_sentinel_t *s)
{
    ngx_uint_t  prev;

    ngx_http_device_auth_subscriber_stop(&s->conn);

    if (s->node.gen) {
        for (prev = 0; prev < s->n; prev++) {
            if (ngx_http_device_auth_node_is(&s->node, &s->addrs[prev])) {
                s->outages[prev] = s->conn.outage;
                break;
            }
        }
    }

    if (ngx_http_device_auth_node_set(&s->node, &s->addrs[s->next])
        != NGX_OK)
    {
        /* the configuration checked the address: not reached */
        return;
    }

    s->conn.outage = s->outages[s->next];
    s->asked = ngx_current_msec;
    s->asking = 1;

    ngx_http_device_auth_subscriber_start(&s->conn);
}


static void
ngx_http_device_auth_sentinel_ready(void *data, long long id)
{
    /* subscribed: the switches of the master come on this connection */
}


static void
ngx_http_device_auth_sentinel_master(void *data,
    ngx_device_auth_node_addr_t *addr)
{
    ngx_http_device_auth_sentinel_t *s = data;

    s->asking = 0;
    s->wanted = 0;
    s->failures = 0;
    s->silent = 0;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    s->handlers.master(s->handlers.data, addr);
}


/*
 * The connection failed or ended.  Before it answered: the next sentinel
 * is asked at once, until every one failed in this round; then the owner
 * is told, and the next round is paced.  After: the switches are
 * followed on a new connection, asking the question again.
 */

static void
ngx_http_device_auth_sentinel_lost(void *data)
{
    ngx_http_device_auth_sentinel_t *s = data;

    if (s->exiting) {
        return;
    }

    s->next = (s->next + 1) % s->n;

    if (!s->asking) {
        ngx_http_device_auth_sentinel_schedule(s);
        return;
    }

    if (++s->failures < s->n) {
        ngx_http_device_auth_sentinel_ask(s);
        return;
    }

    s->failures = 0;
    s->asking = 0;

    if (!s->silent) {
        s->silent = 1;
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "device_auth: no sentinel named the master \"%V\"; "
                      "asking again", &s->conf->redis_sentinel);
    }

    if (s->wanted) {
        s->handlers.failed(s->handlers.data);
    }

    ngx_http_device_auth_sentinel_schedule(s);
}
