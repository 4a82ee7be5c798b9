
/*
 * The Redis operations on a worker's device state.
 *
 * A device: one script call (src/ngx_http_device_auth_script.lua) that
 * reads its facts, records its sighting, or both, preceded by "CLIENT
 * CACHING yes" when the facts are to be kept: Redis then tracks the keys
 * the script reads and pushes their invalidation to the subscriber.  A
 * signer: two GETs, each after "CLIENT CACHING yes", since its keys are in
 * other Cluster slots than any device's.  An event: a script call that
 * rate-limits it in the device's slot, then XADD to the events stream,
 * which lives in a slot of its own.  The events that a sighting produces
 * (a clone seen, a quarantine written) are rate-limited by the sighting
 * itself.
 *
 * With a Redis Cluster, each command goes to the node of its key's slot
 * (ngx_http_device_auth_cluster.c): the device's script to its {SN}'s, a
 * signer's two GETs each to its own, the XADD to the stream's.  A -MOVED
 * or -ASK sends the operation there again (up to 5 times), a -TRYAGAIN
 * after the next slot map.
 *
 * An operation lives outside any request pool: hiredis keeps its pointer
 * until every reply came (or the connection ended).  At most one is in
 * flight per entry; requests wait on it, leave it when they end, and are
 * told the outcome.  Each operation has its own timer: replies come in
 * order, so one that is late holds back all behind it, and the connection
 * is dropped rather than wait.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ops.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_topology.h"
#include "ngx_device_auth_keys.h"
#include "ngx_device_auth_reply.h"
#include "ngx_device_auth_resp.h"


#define NGX_HTTP_DEVICE_AUTH_CMD_MAX       4096
#define NGX_HTTP_DEVICE_AUTH_EVENT_RATE    "60000"   /* ms */
#define NGX_HTTP_DEVICE_AUTH_EVENT_RATE_MS 60000
#define NGX_HTTP_DEVICE_AUTH_EVENTS_MAX    "100000"
#define NGX_HTTP_DEVICE_AUTH_REDIRECTS     5

#define ngx_http_device_auth_resp_str(cmd, s)                                 \
    ngx_device_auth_resp_bulk(cmd, s, sizeof(s) - 1)


static ngx_http_device_auth_op_t *ngx_http_device_auth_op_alloc(
    ngx_http_device_auth_link_t *link, ngx_uint_t what,
    ngx_http_device_auth_entry_t *e);
static ngx_int_t ngx_http_device_auth_op_start(ngx_http_device_auth_op_t *op);
static ngx_int_t ngx_http_device_auth_op_route(ngx_http_device_auth_op_t *op);
static ngx_int_t ngx_http_device_auth_op_redirected(
    ngx_http_device_auth_op_t *op, redisReply *r);
static void ngx_http_device_auth_op_ready(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_device_auth_op_send(ngx_http_device_auth_op_t *op);
static ngx_int_t ngx_http_device_auth_op_command(
    ngx_http_device_auth_op_t *op, ngx_http_device_auth_link_t *nl,
    redisCallbackFn *fn, ngx_device_auth_resp_t *cmd);
static ngx_int_t ngx_http_device_auth_op_caching(
    ngx_http_device_auth_op_t *op, ngx_http_device_auth_link_t *nl);
static ngx_int_t ngx_http_device_auth_op_script(ngx_http_device_auth_op_t *op,
    ngx_uint_t eval);
static void ngx_http_device_auth_op_caching_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_device_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_revoked_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_compromised_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_signer_reply(redisAsyncContext *ac,
    void *r, ngx_http_device_auth_op_t *op, ngx_uint_t compromised);
static void ngx_http_device_auth_op_event_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_xadd_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_op_replied(ngx_http_device_auth_op_t *op);
static ngx_int_t ngx_http_device_auth_op_again(ngx_http_device_auth_op_t *op);
static void ngx_http_device_auth_op_moved(ngx_http_device_auth_link_t *link,
    redisReply *r);
static void ngx_http_device_auth_op_asking(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_device_auth_op_error(ngx_http_device_auth_op_t *op,
    void *r, ngx_device_auth_verdict_t *err);
static void ngx_http_device_auth_op_fail(ngx_http_device_auth_op_t *op,
    ngx_device_auth_verdict_t *err);
static void ngx_http_device_auth_op_finish(ngx_http_device_auth_op_t *op);
static void ngx_http_device_auth_op_free(ngx_http_device_auth_op_t *op);
static void ngx_http_device_auth_op_timeout(ngx_event_t *ev);
static void ngx_http_device_auth_op_xadd(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_op_t *op, int event);
static ngx_msec_int_t ngx_http_device_auth_op_usec(void);


static ngx_str_t  ngx_http_device_auth_actions[] = {
    ngx_string("log"),
    ngx_string("deny"),
    ngx_string("quarantine")
};


/*
 * The facts and/or sighting of a device: NGX_OK (in flight, or waiting
 * for the link to come up), NGX_DECLINED (no link to send on now),
 * NGX_ERROR (no memory).
 */

ngx_int_t
ngx_http_device_auth_op_device(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e, ngx_http_device_auth_op_args_t *args)
{
    ngx_http_device_auth_op_t  *op;

    op = ngx_http_device_auth_op_alloc(link, args->what, e);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->window = args->window;
    op->limit = args->limit;
    op->action = args->action;
    op->place_len = ngx_min(args->place.len, NGX_HTTP_DEVICE_AUTH_PLACE_MAX);
    ngx_memcpy(op->place, args->place.data, op->place_len);
    ngx_memcpy(op->signer, args->signer, NGX_DEVICE_AUTH_HEX_LEN);

    if (args->what & NGX_HTTP_DEVICE_AUTH_OP_SIGHT) {
        ngx_http_device_auth_cache_sighting_start(e);
    }

    return ngx_http_device_auth_op_start(op);
}


/* the facts of a signer: as for a device */

ngx_int_t
ngx_http_device_auth_op_signer(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e)
{
    ngx_http_device_auth_op_t  *op;

    op = ngx_http_device_auth_op_alloc(link, NGX_HTTP_DEVICE_AUTH_OP_SIGNER,
                                       e);
    if (op == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_device_auth_op_start(op);
}


/*
 * The event of a decision made from the facts the worker holds, at most
 * once a minute per device and kind from this worker: the rate limit of
 * the fleet is the script's, and then the stream gets it.  Nobody waits.
 */

void
ngx_http_device_auth_op_event(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e, int event, u_char *signer,
    ngx_str_t *place, ngx_device_auth_verdict_t *v)
{
    ngx_http_device_auth_op_t  *op;

    if (event <= NGX_DEVICE_AUTH_EV_NONE || event >= NGX_DEVICE_AUTH_EV_N
        || (e->events[event]
            && ngx_current_msec - e->events[event]
               < NGX_HTTP_DEVICE_AUTH_EVENT_RATE_MS))
    {
        return;
    }

    e->events[event] = ngx_current_msec;

    op = ngx_http_device_auth_op_alloc(link, NGX_HTTP_DEVICE_AUTH_OP_EVENT,
                                       NULL);
    if (op == NULL) {
        return;
    }

    op->serial_len = e->sn.str.len;
    ngx_memcpy(op->serial, e->id, op->serial_len);
    ngx_memcpy(op->signer, signer, NGX_DEVICE_AUTH_HEX_LEN);
    op->place_len = ngx_min(place->len, NGX_HTTP_DEVICE_AUTH_PLACE_MAX);
    ngx_memcpy(op->place, place->data, op->place_len);
    op->event = event;
    op->result = *v;

    if (ngx_http_device_auth_op_start(op) != NGX_OK) {
        /* no link: the event is lost, as the decision's lookup would be */
        e->events[event] = 0;
    }
}


/* a request waits for the entry's operation in flight */

void
ngx_http_device_auth_op_wait(ngx_http_device_auth_entry_t *e,
    ngx_http_device_auth_op_waiter_t *w)
{
    ngx_http_device_auth_op_t  *op;

    op = e->op;
    ngx_queue_insert_tail(&op->waiters, &w->queue);
}


void
ngx_http_device_auth_op_cleanup(ngx_http_device_auth_link_t *link)
{
    ngx_queue_t                *q;
    ngx_http_device_auth_op_t  *op;

    while (!ngx_queue_empty(&link->free)) {
        q = ngx_queue_head(&link->free);
        ngx_queue_remove(q);

        op = ngx_queue_data(q, ngx_http_device_auth_op_t, link);
        ngx_free(op);
    }
}


static ngx_http_device_auth_op_t *
ngx_http_device_auth_op_alloc(ngx_http_device_auth_link_t *link,
    ngx_uint_t what, ngx_http_device_auth_entry_t *e)
{
    ngx_queue_t                *q;
    ngx_http_device_auth_op_t  *op;

    if (!ngx_queue_empty(&link->free)) {
        q = ngx_queue_head(&link->free);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_device_auth_op_t, link);

    } else {
        op = ngx_http_device_auth_fault("op") ? NULL
             : ngx_alloc(sizeof(ngx_http_device_auth_op_t), link->log);
        if (op == NULL) {
            return NULL;
        }
    }

    ngx_memzero(op, offsetof(ngx_http_device_auth_op_t, serial));

    ngx_queue_init(&op->waiters);
    op->lk = link;
    op->what = what;
    op->seq = ++link->seq;
    op->entry = e;
    op->start = ngx_http_device_auth_op_usec();

    op->timer.handler = ngx_http_device_auth_op_timeout;
    op->timer.data = op;
    op->timer.log = link->log;

    op->waiter.handler = ngx_http_device_auth_op_ready;
    op->waiter.data = op;

    if (e) {
        op->serial_len = e->sn.str.len;
        ngx_memcpy(op->serial, e->id, op->serial_len);
        e->op = op;
    }

    return op;
}


static ngx_int_t
ngx_http_device_auth_op_start(ngx_http_device_auth_op_t *op)
{
    ngx_int_t                  rc;
    ngx_device_auth_verdict_t  err;

    rc = ngx_http_device_auth_op_route(op);

    if (rc == NGX_AGAIN) {
        op->waiting = 1;

    } else if (rc == NGX_OK && ngx_http_device_auth_op_send(op) != NGX_OK
               && op->pending)
    {
        /* a part went out (a cluster: two nodes): its replies finish it */

        ngx_memzero(&err, sizeof(ngx_device_auth_verdict_t));
        ngx_device_auth_verdict_text(&err, "redis not connected", NULL, 0);
        ngx_http_device_auth_op_fail(op, &err);

    } else if (rc != NGX_OK || op->pending == 0) {
        if (op->entry) {
            op->entry->op = NULL;

            if (op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGHT) {
                ngx_http_device_auth_cache_sighting_end(&op->lk->cache,
                                                        op->entry, 0);
            }
        }

        op->done = 1;
        op->pending = 0;
        ngx_http_device_auth_op_free(op);

        return NGX_DECLINED;
    }

    /* not cancelable: a graceful reload lets operations in flight finish */
    ngx_add_timer(&op->timer, op->lk->conf->redis_timeout);

    return NGX_OK;
}


/* the link's handshake ended: send, or fail the waiting requests */

static void
ngx_http_device_auth_op_ready(void *data, ngx_int_t rc)
{
    ngx_http_device_auth_op_t *op = data;

    size_t                        len;
    ngx_uint_t                    kind;
    ngx_device_auth_verdict_t     err;
    ngx_http_device_auth_link_t  *nl;
    u_char                        why[NGX_DEVICE_AUTH_REPLY_REASON_MAX];

    op->waiting = 0;

    /* a node of a cluster: the slot's node may be another by now */

    if (rc == NGX_OK) {
        rc = ngx_http_device_auth_op_route(op);

        if (rc == NGX_AGAIN) {
            op->waiting = 1;
            return;
        }
    }

    if (rc == NGX_OK && ngx_http_device_auth_op_send(op) == NGX_OK) {
        return;
    }

    nl = op->nl[0] ? op->nl[0] : op->lk;

    ngx_memzero(&err, sizeof(ngx_device_auth_verdict_t));

    /* why the node's link cannot be used (with a cluster, the slot's) */

    kind = ngx_http_device_auth_link_why(nl, why, sizeof(why), &len);
    ngx_device_auth_verdict_text(&err, "", (char *) why, len);

    ngx_http_device_auth_metrics_redis_error(op->lk->conf, kind);

    ngx_http_device_auth_op_fail(op, &err);

    if (op->pending) {
        /* some of it was sent: its replies (or its timer) finish it */
        return;
    }

    ngx_http_device_auth_op_finish(op);
    ngx_http_device_auth_op_free(op);
}


/*
 * Where the operation's commands go: NGX_OK (op->nl[] ready), NGX_AGAIN
 * (op->waiter waits for a link or the slot map), NGX_DECLINED.
 */

static ngx_int_t
ngx_http_device_auth_op_route(ngx_http_device_auth_op_t *op)
{
    u_char                       *prefix;
    size_t                        plen;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_http_device_auth_link_t  *link;

    link = op->lk;
    op->nl[0] = NULL;
    op->nl[1] = NULL;

    if (link->cluster == NULL) {
        op->nslots = 1;
        op->nl[0] = link;
        return ngx_http_device_auth_link_wait(link, &op->waiter);
    }

    if (op->ask) {
        op->nslots = 1;
        return ngx_http_device_auth_cluster_route_node(link->cluster, op->ask,
                                                       &op->waiter,
                                                       &op->nl[0]);
    }

    prefix = link->conf->redis_prefix.data;
    plen = link->conf->redis_prefix.len;

    if (op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGNER) {
        op->nslots = ngx_http_device_auth_cluster_slots(link->cluster,
                                                        op->entry, op->slot);

    } else {
        op->nslots = 1;
        op->slot[0] = ngx_device_auth_key_slot(prefix, plen,
                                               NGX_DEVICE_AUTH_KEY_REVOKED,
                                               op->serial, op->serial_len);
    }

    for (i = 0; i < op->nslots; i++) {
        rc = ngx_http_device_auth_link_route(link, op->slot[i], &op->waiter,
                                             &op->nl[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_device_auth_op_send(ngx_http_device_auth_op_t *op)
{
    u_char                       *prefix;
    size_t                        plen;
    ngx_device_auth_resp_t        cmd;
    ngx_http_device_auth_link_t  *nl;
    u_char                        buf[NGX_HTTP_DEVICE_AUTH_CMD_MAX];

    /*
     * The facts are tracked, and so are the places a sighting reads, so
     * that another edge's sighting (or a DEL of them) reaches the cache
     * too.  Not an event's rate: its own write would only come back.
     */

    op->cached = ngx_http_device_auth_link_state(op->nl[0])
                 == NGX_HTTP_DEVICE_AUTH_LINK_UP
                 && (op->nl[1] == NULL
                     || ngx_http_device_auth_link_state(op->nl[1])
                        == NGX_HTTP_DEVICE_AUTH_LINK_UP)
                 && !(op->what & NGX_HTTP_DEVICE_AUTH_OP_EVENT)
                 && op->ask == NULL;

    op->epoch = (op->cached && op->entry)
                ? ngx_http_device_auth_cache_epoch(&op->lk->cache, op->entry)
                : 0;

    if (!(op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGNER)) {
        if (op->cached
            && ngx_http_device_auth_op_caching(op, op->nl[0]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* a slot on the move: its target node, for this command only */

        if (op->ask
            && ngx_http_device_auth_redis_send(&op->nl[0]->cmd,
                                               ngx_http_device_auth_op_asking,
                                               op, (u_char *)
                                               "*1\r\n$6\r\nASKING\r\n", 16)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (op->ask && op->pending++ == 0) {
            op->lk->cmd.inflight++;
        }

        return ngx_http_device_auth_op_script(op, 0);
    }

    /* the two facts of a signer, each read for the cache */

    prefix = op->lk->conf->redis_prefix.data;
    plen = op->lk->conf->redis_prefix.len;

    if (op->cached
        && ngx_http_device_auth_op_caching(op, op->nl[0]) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
    ngx_device_auth_resp_array(&cmd, 2);
    ngx_http_device_auth_resp_str(&cmd, "GET");
    ngx_device_auth_key_write(&cmd, prefix, plen,
                              NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED,
                              op->entry->id, op->entry->sn.str.len);

    if (ngx_http_device_auth_op_command(op, op->nl[0],
                                        ngx_http_device_auth_op_revoked_reply,
                                        &cmd)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    nl = op->nl[1] ? op->nl[1] : op->nl[0];

    if (op->cached && ngx_http_device_auth_op_caching(op, nl) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
    ngx_device_auth_resp_array(&cmd, 2);
    ngx_http_device_auth_resp_str(&cmd, "GET");
    ngx_device_auth_key_write(&cmd, prefix, plen,
                              NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED,
                              op->entry->id, op->entry->sn.str.len);

    return ngx_http_device_auth_op_command(op, nl,
                                    ngx_http_device_auth_op_compromised_reply,
                                    &cmd);
}


/*
 * The script, by its SHA1; after NOSCRIPT (SCRIPT FLUSH, a Redis
 * restarted under us) as EVAL with the script, which caches it again.
 */

static ngx_int_t
ngx_http_device_auth_op_script(ngx_http_device_auth_op_t *op, ngx_uint_t eval)
{
    u_char                            *buf, *last, *prefix;
    u_char                             stack[NGX_HTTP_DEVICE_AUTH_CMD_MAX];
    u_char                             what[3], num[NGX_INT64_LEN];
    size_t                             size, plen, n;
    ngx_int_t                          rc;
    ngx_str_t                         *action;
    const char                        *event;
    ngx_device_auth_resp_t             cmd;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = op->lk->conf;
    prefix = dmcf->redis_prefix.data;
    plen = dmcf->redis_prefix.len;

    buf = stack;
    size = sizeof(stack);

    if (eval) {
        size += ngx_http_device_auth_script_len;

        buf = ngx_alloc(size, op->lk->log);
        if (buf == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_device_auth_resp_init(&cmd, buf, size);
    ngx_device_auth_resp_array(&cmd, 17);

    if (eval) {
        ngx_http_device_auth_resp_str(&cmd, "EVAL");
        ngx_device_auth_resp_bulk(&cmd, ngx_http_device_auth_script,
                                  ngx_http_device_auth_script_len);
    } else {
        ngx_http_device_auth_resp_str(&cmd, "EVALSHA");
        ngx_device_auth_resp_bulk(&cmd, op->nl[0]->cmd.sha,
                                  NGX_HTTP_DEVICE_AUTH_SHA1_LEN);
    }

    ngx_http_device_auth_resp_str(&cmd, "5");

    /* KEYS: the {serial} hash tag keeps them in one slot */

    ngx_device_auth_key_write(&cmd, prefix, plen, NGX_DEVICE_AUTH_KEY_REVOKED,
                              op->serial, op->serial_len);
    ngx_device_auth_key_write(&cmd, prefix, plen,
                              NGX_DEVICE_AUTH_KEY_REGISTERED,
                              op->serial, op->serial_len);
    ngx_device_auth_key_write(&cmd, prefix, plen, NGX_DEVICE_AUTH_KEY_SEEN,
                              op->serial, op->serial_len);
    ngx_device_auth_key_write(&cmd, prefix, plen, NGX_DEVICE_AUTH_KEY_EVRL,
                              op->serial, op->serial_len);
    ngx_device_auth_key_write(&cmd, prefix, plen, NGX_DEVICE_AUTH_KEY_EDGES,
                              op->serial, op->serial_len);

    /* ARGV */

    n = 0;

    if (op->what & NGX_HTTP_DEVICE_AUTH_OP_FETCH) {
        what[n++] = 'f';
    }

    if (op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGHT) {
        what[n++] = 's';
    }

    if (op->what & NGX_HTTP_DEVICE_AUTH_OP_EVENT) {
        what[n++] = 'e';
    }

    action = &ngx_http_device_auth_actions[op->action];
    event = ngx_device_auth_event_name(op->event);

    ngx_device_auth_resp_bulk(&cmd, op->serial, op->serial_len);
    ngx_device_auth_resp_bulk(&cmd, what, n);
    ngx_device_auth_resp_bulk(&cmd, op->place, op->place_len);
    last = ngx_sprintf(num, "%M", op->window);
    ngx_device_auth_resp_bulk(&cmd, num, last - num);
    last = ngx_sprintf(num, "%i", op->limit);
    ngx_device_auth_resp_bulk(&cmd, num, last - num);
    ngx_device_auth_resp_bulk(&cmd, action->data, action->len);
    ngx_http_device_auth_resp_str(&cmd, NGX_HTTP_DEVICE_AUTH_EVENT_RATE);
    ngx_device_auth_resp_bulk(&cmd, event, ngx_strlen(event));
    ngx_device_auth_resp_bulk(&cmd, dmcf->edge.data, dmcf->edge.len);

    rc = ngx_http_device_auth_op_command(op, op->nl[0],
                                   (op->what & NGX_HTTP_DEVICE_AUTH_OP_EVENT)
                                   ? ngx_http_device_auth_op_event_reply
                                   : ngx_http_device_auth_op_device_reply,
                                   &cmd);

    if (buf != stack) {
        ngx_free(buf);
    }

    return rc;
}


/* "CLIENT CACHING yes": the next command's reads are tracked */

static ngx_int_t
ngx_http_device_auth_op_caching(ngx_http_device_auth_op_t *op,
    ngx_http_device_auth_link_t *nl)
{
    static u_char  caching[] = "*3\r\n$6\r\nCLIENT\r\n$7\r\nCACHING\r\n"
                               "$3\r\nyes\r\n";

    if (ngx_http_device_auth_redis_send(&nl->cmd,
                                        ngx_http_device_auth_op_caching_reply,
                                        op, caching, sizeof(caching) - 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* lookups in flight, not commands */
    if (op->pending++ == 0) {
        op->lk->cmd.inflight++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_device_auth_op_command(ngx_http_device_auth_op_t *op,
    ngx_http_device_auth_link_t *nl, redisCallbackFn *fn,
    ngx_device_auth_resp_t *cmd)
{
    size_t  len;

    len = ngx_device_auth_resp_len(cmd);

    if (len == 0) {
        ngx_log_error(NGX_LOG_ALERT, op->lk->log, 0,
                      "device_auth: a command for serial %*s does not fit "
                      "in %uz bytes", op->serial_len, op->serial,
                      (size_t) (cmd->end - cmd->start));
        return NGX_ERROR;
    }

    if (ngx_http_device_auth_redis_send(&nl->cmd, fn, op, cmd->start, len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    op->sent = 1;

    if (op->pending++ == 0) {
        op->lk->cmd.inflight++;
    }

    ngx_http_device_auth_metrics_worker(op->lk->conf, op->lk->cmd.inflight, 1);

    return NGX_OK;
}


static void
ngx_http_device_auth_op_caching_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                 *reply = r;
    ngx_http_device_auth_op_t  *op = privdata;

    op->lost |= (r == NULL);

    /* tracking did not take: the facts serve this once, and are not kept */

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        if (reply && !op->done) {
            ngx_log_error(NGX_LOG_ERR, op->lk->log, 0,
                          "device_auth: \"CLIENT CACHING yes\" refused for "
                          "serial %*s: %*s", op->serial_len, op->serial,
                          reply->str ? ngx_min(reply->len, 128) : 0,
                          reply->str ? reply->str : "");
        }

        op->cached = 0;
    }

    ngx_http_device_auth_op_replied(op);
}


static void
ngx_http_device_auth_op_device_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_op_t *op = privdata;

    ngx_int_t                        rc;
    ngx_str_t                        place;
    ngx_http_device_auth_entry_t    *e;
    ngx_device_auth_verdict_t        err;
    ngx_device_auth_device_reply_t   d;

    op->lost |= (r == NULL);

    if (op->done || ngx_http_device_auth_op_redirected(op, r)) {
        /* timed out before: only the memory is left to give back */
        ngx_http_device_auth_op_replied(op);
        return;
    }

    rc = ngx_device_auth_reply_device(r, (char *) op->serial, op->serial_len,
                                      &d, &err);

    if (rc == NGX_DEVICE_AUTH_V_NOSCRIPT && !op->retried) {
        op->retried = 1;

        ngx_http_device_auth_metrics_redis_error(op->lk->conf,
                                             NGX_HTTP_DEVICE_AUTH_RE_NOSCRIPT);
        ngx_log_error(NGX_LOG_NOTICE, op->lk->log, 0,
                      "device_auth: script not in the redis cache, "
                      "sending it again");

        if ((!op->cached
             || ngx_http_device_auth_op_caching(op, op->nl[0]) == NGX_OK)
            && ngx_http_device_auth_op_script(op, 1) == NGX_OK)
        {
            ngx_http_device_auth_op_replied(op);
            return;
        }
    }

    if (rc != NGX_DEVICE_AUTH_V_OK) {
        /* a master demoted under the connection: the master is asked for */
        (void) ngx_http_device_auth_redis_readonly(ac->data, r);

        op->desync = (rc == NGX_DEVICE_AUTH_V_DESYNC);
        ngx_http_device_auth_op_error(op, r, &err);
        ngx_http_device_auth_op_replied(op);
        return;
    }

    e = op->entry;

    /* the facts; a quarantine the sighting wrote (its invalidation follows) */

    if (d.fetched || d.sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED) {
        if (ngx_http_device_auth_cache_set_revoked(e, &d.revoked, d.pttl)
            != NGX_OK)
        {
            ngx_device_auth_verdict_text(&err, "out of memory", NULL, 0);
            ngx_http_device_auth_op_fail(op, &err);
        }
    }

    if (d.fetched) {
        e->registered = d.registered ? 1 : 0;
        e->key = d.key;
        ngx_memcpy(e->key_sha256, d.key_sha256, NGX_DEVICE_AUTH_KEY_LEN);
    }

    if (d.sight != NGX_DEVICE_AUTH_SIGHT_NONE) {
        place.len = op->place_len;
        place.data = op->place;

        /* without CLIENT CACHING yes its reads were not tracked */
        op->own = op->cached ? d.own : 0;

        (void) ngx_http_device_auth_cache_sighted(&op->lk->cache, e, &place,
                                                  op->window, op->limit,
                                                  d.sight);

        op->sight = d.sight;
        op->result.places = d.places;

        /* as the script wrote it: the decision escapes it, once */
        op->result.reason_len = ngx_min(d.reason.len,
                                        sizeof(op->result.reason) - 1);
        ngx_memcpy(op->result.reason, d.reason.data, op->result.reason_len);
        op->result.reason[op->result.reason_len] = '\0';

        op->edges_len = ngx_min(d.edges.len, sizeof(op->edges));
        ngx_memcpy(op->edges, d.edges.data, op->edges_len);
    }

    /* a clone seen, a quarantine written: the script let the event through */

    if (d.event != NGX_DEVICE_AUTH_EV_NONE) {
        ngx_http_device_auth_op_xadd(op->lk, op, d.event);
    }

    ngx_http_device_auth_op_replied(op);
}


static void
ngx_http_device_auth_op_revoked_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_op_signer_reply(ac, r, privdata, 0);
}


static void
ngx_http_device_auth_op_compromised_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_op_signer_reply(ac, r, privdata, 1);
}


/* a signer's fact: revoked, or compromised (from two nodes of a cluster) */

static void
ngx_http_device_auth_op_signer_reply(redisAsyncContext *ac, void *r,
    ngx_http_device_auth_op_t *op, ngx_uint_t compromised)
{
    ngx_int_t                      rc;
    ngx_device_auth_text_t         value;
    ngx_device_auth_verdict_t      err;
    ngx_http_device_auth_entry_t  *e;

    op->lost |= (r == NULL);

    if (op->done || ngx_http_device_auth_op_redirected(op, r)) {
        ngx_http_device_auth_op_replied(op);
        return;
    }

    rc = ngx_device_auth_reply_get(r, &value, &err);

    if (rc != NGX_DEVICE_AUTH_V_OK) {
        ngx_http_device_auth_op_error(op, r, &err);
        ngx_http_device_auth_op_replied(op);
        return;
    }

    e = op->entry;

    if (!compromised) {
        rc = ngx_http_device_auth_cache_set_revoked(e, &value, -1);

    } else {
        rc = ngx_http_device_auth_cache_set_compromised(e, &value);
    }

    if (rc != NGX_OK) {
        ngx_device_auth_verdict_text(&err, "out of memory", NULL, 0);
        ngx_http_device_auth_op_fail(op, &err);
    }

    ngx_http_device_auth_op_replied(op);
}


static void
ngx_http_device_auth_op_event_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_op_t *op = privdata;

    ngx_device_auth_verdict_t        err;
    ngx_device_auth_device_reply_t   d;

    op->lost |= (r == NULL);

    if (!op->done && ngx_http_device_auth_op_redirected(op, r)) {
        ngx_http_device_auth_op_replied(op);
        return;
    }

    if (!op->done
        && ngx_device_auth_reply_device(r, (char *) op->serial, op->serial_len,
                                        &d, &err)
           == NGX_DEVICE_AUTH_V_OK
        && d.event == op->event)
    {
        ngx_http_device_auth_op_xadd(op->lk, op, op->event);
    }

    (void) ngx_http_device_auth_redis_readonly(ac->data, r);

    ngx_http_device_auth_op_replied(op);
}


/* XADD to the events stream: nobody waits, a failure is logged */

static void
ngx_http_device_auth_op_xadd(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_op_t *op, int event)
{
    int                                slot;
    size_t                             len;
    const char                        *type;
    ngx_device_auth_resp_t             cmd;
    ngx_http_device_auth_link_t       *nl;
    ngx_http_device_auth_main_conf_t  *dmcf;
    u_char                             buf[NGX_HTTP_DEVICE_AUTH_CMD_MAX];

    dmcf = link->conf;
    type = ngx_device_auth_event_name(event);

    /* the stream's slot: its node, if it can be sent to now */

    slot = link->cluster
           ? ngx_device_auth_key_slot(dmcf->redis_prefix.data,
                                      dmcf->redis_prefix.len,
                                      NGX_DEVICE_AUTH_KEY_EVENTS, "", 0)
           : 0;

    ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
    ngx_device_auth_resp_array(&cmd, op->edges_len ? 20 : 18);
    ngx_http_device_auth_resp_str(&cmd, "XADD");
    ngx_device_auth_key_write(&cmd, dmcf->redis_prefix.data,
                              dmcf->redis_prefix.len,
                              NGX_DEVICE_AUTH_KEY_EVENTS, "", 0);
    ngx_http_device_auth_resp_str(&cmd, "MAXLEN");
    ngx_http_device_auth_resp_str(&cmd, "~");
    ngx_http_device_auth_resp_str(&cmd, NGX_HTTP_DEVICE_AUTH_EVENTS_MAX);
    ngx_http_device_auth_resp_str(&cmd, "*");
    ngx_http_device_auth_resp_str(&cmd, "type");
    ngx_device_auth_resp_bulk(&cmd, type, ngx_strlen(type));
    ngx_http_device_auth_resp_str(&cmd, "serial");
    ngx_device_auth_resp_bulk(&cmd, op->serial, op->serial_len);
    ngx_http_device_auth_resp_str(&cmd, "signer");
    ngx_device_auth_resp_bulk(&cmd, op->signer, NGX_DEVICE_AUTH_HEX_LEN);
    ngx_http_device_auth_resp_str(&cmd, "location");
    ngx_device_auth_resp_bulk(&cmd, op->place, op->place_len);
    ngx_http_device_auth_resp_str(&cmd, "edge");
    ngx_device_auth_resp_bulk(&cmd, dmcf->edge.data, dmcf->edge.len);
    ngx_http_device_auth_resp_str(&cmd, "reason");
    ngx_device_auth_resp_bulk(&cmd, op->result.reason, op->result.reason_len);

    /* a clone: every edge that sighted it within the window */

    if (op->edges_len) {
        ngx_http_device_auth_resp_str(&cmd, "edges");
        ngx_device_auth_resp_bulk(&cmd, op->edges, op->edges_len);
    }

    len = ngx_device_auth_resp_len(&cmd);

    if (len == 0
        || ngx_http_device_auth_link_route(link, slot, NULL, &nl) != NGX_OK
        || ngx_http_device_auth_redis_send(&nl->cmd,
                                           ngx_http_device_auth_op_xadd_reply,
                                           link, buf, len)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "device_auth: event \"%s\" of serial %*s not sent",
                      type, op->serial_len, op->serial);
    }
}


static void
ngx_http_device_auth_op_xadd_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                   *reply = r;
    ngx_http_device_auth_link_t  *link = privdata;

    if (reply && reply->type != REDIS_REPLY_STRING) {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "device_auth: event not added to the stream: %*s",
                      reply->str ? ngx_min(reply->len, 128) : 0,
                      reply->str ? reply->str : "");

        (void) ngx_http_device_auth_redis_readonly(ac->data, reply);

        if (link->cluster) {
            /* a stream that moved: the next event goes to its new node */
            ngx_http_device_auth_op_moved(link, reply);
        }
    }
}


/* one reply came (or was called back on a lost connection) */

static void
ngx_http_device_auth_op_replied(ngx_http_device_auth_op_t *op)
{
    ngx_http_device_auth_link_t  *link;

    link = op->lk;

    op->pending--;

    if (op->pending == 0 && link->cmd.inflight) {
        link->cmd.inflight--;
    }

    ngx_http_device_auth_metrics_worker(link->conf, link->cmd.inflight,
                                        op->nl[0]
                                        && ngx_http_device_auth_redis_ready(
                                                           &op->nl[0]->cmd));

    if (op->pending == 0 && !op->done) {

        if ((op->lost || op->redirect)
            && ngx_http_device_auth_op_again(op) == NGX_OK)
        {
            return;
        }

        ngx_http_device_auth_op_finish(op);
    }

    ngx_http_device_auth_op_free(op);
}


/*
 * The connection was dropped under the operation while the link makes a
 * new one at once (it switched to a new master): the operation waits for
 * it and is sent again, once, within its own timer, rather than fail a
 * device that nothing refused.
 */

static ngx_int_t
ngx_http_device_auth_op_again(ngx_http_device_auth_op_t *op)
{
    ngx_int_t                  rc;
    ngx_uint_t                 redirect, tryagain;
    ngx_device_auth_verdict_t  err;

    redirect = op->redirect;
    tryagain = op->tryagain;

    if (redirect) {
        if (op->lost || ++op->redirects > NGX_HTTP_DEVICE_AUTH_REDIRECTS) {
            ngx_memzero(&err, sizeof(ngx_device_auth_verdict_t));
            ngx_device_auth_verdict_text(&err, "redis cluster: redirected "
                                         "too often", NULL, 0);
            ngx_http_device_auth_op_fail(op, &err);
            return NGX_DECLINED;
        }

    } else if (op->resent || op->lk->cluster
               || ngx_http_device_auth_link_state(op->lk)
                  != NGX_HTTP_DEVICE_AUTH_LINK_COMING)
    {
        return NGX_DECLINED;
    }

    op->resent |= !redirect;
    op->lost = 0;
    op->redirect = 0;
    op->tryagain = 0;
    op->failed = 0;
    op->desync = 0;
    op->retried = 0;
    op->got = 0;
    op->sight = 0;
    ngx_memzero(&op->result, sizeof(ngx_device_auth_verdict_t));

    if (tryagain) {
        /* keys of a slot being migrated: after the next slot map */
        rc = ngx_http_device_auth_cluster_wait_map(op->lk->cluster,
                                                   &op->waiter);

    } else if (redirect) {
        rc = ngx_http_device_auth_op_route(op);

        if (rc == NGX_OK && ngx_http_device_auth_op_send(op) == NGX_OK) {
            return NGX_OK;
        }

    } else {
        rc = ngx_http_device_auth_link_wait(op->lk, &op->waiter);
    }

    if (rc != NGX_AGAIN) {
        ngx_memzero(&err, sizeof(ngx_device_auth_verdict_t));
        ngx_device_auth_verdict_text(&err, "redis not connected", NULL, 0);
        ngx_http_device_auth_op_fail(op, &err);

        /* some of it may have been sent: its replies finish it */
        return op->pending ? NGX_OK : NGX_DECLINED;
    }

    op->waiting = 1;

    return NGX_OK;
}


/*
 * A redirection of a cluster: -MOVED (the slot moved, the map follows),
 * -ASK (for this command, the node the slot is migrated to), -TRYAGAIN
 * (a slot's keys are split between two nodes for a moment).  The
 * operation is sent again when all its replies came: 1.
 */

static ngx_int_t
ngx_http_device_auth_op_redirected(ngx_http_device_auth_op_t *op,
    redisReply *r)
{
    int                               kind, slot;
    ngx_device_auth_node_addr_t       addr;
    ngx_http_device_auth_cluster_t   *c;
    ngx_http_device_auth_cnode_t     *cn;

    c = op->lk->cluster;

    if (c == NULL || r == NULL) {
        return 0;
    }

    kind = ngx_device_auth_reply_redirect(r, &slot, &addr);

    switch (kind) {

    case NGX_DEVICE_AUTH_REDIRECT_MOVED:
        (void) ngx_http_device_auth_cluster_moved(c, kind, slot, &addr);
        op->ask = NULL;
        break;

    case NGX_DEVICE_AUTH_REDIRECT_ASK:
        cn = ngx_http_device_auth_cluster_moved(c, kind, slot, &addr);
        if (cn == NULL) {
            return 0;
        }

        op->ask = cn;
        break;

    case NGX_DEVICE_AUTH_REDIRECT_TRYAGAIN:
        op->tryagain = 1;
        op->ask = NULL;
        break;

    case NGX_DEVICE_AUTH_REDIRECT_DOWN:
        ngx_http_device_auth_cluster_refresh(c);
        return 0;

    default:
        return 0;
    }

    op->redirect = 1;

    return 1;
}


/* a -MOVED for something nobody waits for (an event): the map follows */

static void
ngx_http_device_auth_op_moved(ngx_http_device_auth_link_t *link,
    redisReply *r)
{
    int                          kind, slot;
    ngx_device_auth_node_addr_t  addr;

    kind = ngx_device_auth_reply_redirect(r, &slot, &addr);

    if (kind == NGX_DEVICE_AUTH_REDIRECT_MOVED) {
        (void) ngx_http_device_auth_cluster_moved(link->cluster, kind, slot,
                                                  &addr);
    }
}


static void
ngx_http_device_auth_op_asking(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_op_t *op = privdata;

    op->lost |= (r == NULL);

    ngx_http_device_auth_op_replied(op);
}


/* a reply that is no answer: counted by its kind, and the operation fails */

static void
ngx_http_device_auth_op_error(ngx_http_device_auth_op_t *op, void *r,
    ngx_device_auth_verdict_t *err)
{
    ngx_http_device_auth_metrics_redis_error(op->lk->conf,
              r == NULL ? NGX_HTTP_DEVICE_AUTH_RE_DISCONNECTED
              : ((redisReply *) r)->type == REDIS_REPLY_ERROR
                ? ngx_http_device_auth_redis_cause(r)
                : NGX_HTTP_DEVICE_AUTH_RE_BAD_REPLY);

    ngx_http_device_auth_op_fail(op, err);
}


static void
ngx_http_device_auth_op_fail(ngx_http_device_auth_op_t *op,
    ngx_device_auth_verdict_t *err)
{
    if (op->failed) {
        return;
    }

    op->failed = 1;
    op->result = *err;

    if (op->result.status == NGX_DEVICE_AUTH_V_OK) {
        op->result.status = NGX_DEVICE_AUTH_V_ERROR;
    }

    if (op->entry) {
        ngx_log_error(NGX_LOG_ERR, op->lk->log, 0,
                      "device_auth: lookup of %s %*s failed: %*s",
                      op->entry->signer ? "signer" : "serial",
                      op->serial_len, op->serial, op->result.reason_len,
                      op->result.reason);
    }
}


/*
 * The outcome is known: the entry keeps the facts (unless they were not
 * tracked, or invalidated meanwhile), and each waiting request is told,
 * leaving the queue before it runs (it may end others).
 */

static void
ngx_http_device_auth_op_finish(ngx_http_device_auth_op_t *op)
{
    ngx_uint_t                         desync;
    ngx_queue_t                       *q;
    ngx_http_device_auth_entry_t      *e;
    ngx_http_device_auth_link_t       *link;
    ngx_http_device_auth_op_waiter_t  *w;

    link = op->lk;
    op->done = 1;
    desync = op->desync;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    /*
     * How long a lookup took, answered or not: a timeout counts as the
     * time it waited, a lost connection until it was noticed.  Lookups
     * never sent (no connection) fail at once and are not measured; the
     * redis errors count them.
     */

    if (op->sent && !(op->what & NGX_HTTP_DEVICE_AUTH_OP_EVENT)) {
        ngx_http_device_auth_metrics_latency(link->conf,
                                 ngx_http_device_auth_op_usec() - op->start);
    }

    e = op->entry;

    if (e && e->op == op) {
        e->op = NULL;

        if (op->what & NGX_HTTP_DEVICE_AUTH_OP_SIGHT) {
            ngx_http_device_auth_cache_sighting_end(&link->cache, e,
                                                    op->failed ? 0 : op->own);
        }

        if (!op->failed
            && (op->what & (NGX_HTTP_DEVICE_AUTH_OP_FETCH
                            |NGX_HTTP_DEVICE_AUTH_OP_SIGNER)))
        {
            /* the requests that wait for it know their facts came */
            e->read_seq = op->seq;

            if (op->cached) {
                ngx_http_device_auth_cache_keep(&link->cache, e, op->epoch);

            } else {
                e->epoch = 0;
                e->stale = 0;
            }
        }
    }

    while (!ngx_queue_empty(&op->waiters)) {
        q = ngx_queue_head(&op->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_device_auth_op_waiter_t, queue);
        w->handler(w->data, op);
    }

    /*
     * Replies and commands no longer pair up: every reply still to come
     * may be another's.  The connection is dropped (the operations in
     * flight fail) and opened again.
     */

    if (desync && op->nl[0]) {
        ngx_http_device_auth_redis_reset(&op->nl[0]->cmd, "its replies no "
                                         "longer match the lookups");
    }
}


static void
ngx_http_device_auth_op_free(ngx_http_device_auth_op_t *op)
{
    if (!op->done || op->pending || op->waiting) {
        return;
    }

    if (op->lk->exiting) {
        ngx_free(op);
        return;
    }

    ngx_queue_insert_head(&op->lk->free, &op->link);
}


static void
ngx_http_device_auth_op_timeout(ngx_event_t *ev)
{
    ngx_http_device_auth_op_t *op = ev->data;

    ngx_uint_t                     i, waiting;
    ngx_device_auth_verdict_t      err;
    ngx_http_device_auth_link_t   *link;

    link = op->lk;
    waiting = op->waiting;

    ngx_memzero(&err, sizeof(ngx_device_auth_verdict_t));
    err.status = NGX_DEVICE_AUTH_V_ERROR;
    err.reason_len = ngx_sprintf((u_char *) err.reason,
                                 "redis timeout after %M ms",
                                 link->conf->redis_timeout)
                     - (u_char *) err.reason;

    ngx_http_device_auth_metrics_redis_error(link->conf,
                                             NGX_HTTP_DEVICE_AUTH_RE_TIMEOUT);

    ngx_http_device_auth_op_fail(op, &err);

    if (waiting) {
        /* never sent: the link's handshake has its own timer */
        ngx_queue_remove(&op->waiter.queue);
        op->waiting = 0;
    }

    ngx_http_device_auth_op_finish(op);

    if (waiting) {
        ngx_http_device_auth_op_free(op);
        return;
    }

    /*
     * Replies come in order: one that is late holds back all behind it.
     * The connections are dropped; hiredis then gives this one back.
     */

    for (i = 0; i < 2; i++) {
        if (op->nl[i] && (i == 0 || op->nl[1] != op->nl[0])) {
            ngx_http_device_auth_redis_reset(&op->nl[i]->cmd,
                                             "lookup timed out");
        }
    }
}


/* the cached nginx time is in ms: a Redis round trip is well below that */

static ngx_msec_int_t
ngx_http_device_auth_op_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (ngx_msec_int_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
