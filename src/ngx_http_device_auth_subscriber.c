
/*
 * The invalidation subscriber of a worker.
 *
 * Redis 7 in RESP2 (hiredis 0.14) pushes the invalidation of tracked keys
 * as messages of the channel "__redis__:invalidate" to a client that the
 * tracking connection names (CLIENT TRACKING ... REDIRECT <id>).  This is
 * that client: AUTH when configured, CLIENT ID, SUBSCRIBE, then messages.
 *
 * It needs no callbacks and no pipelining, only to read: the connection is
 * nginx's own (ngx_event_connect_peer(), no DNS, a unix socket too) and
 * hiredis' reader parses what comes.  hiredis' async layer would not do:
 * in subscribed mode it asserts on a message of an unexpected shape (one
 * byte too many from a proxy aborts the worker) and keeps a callback for
 * every PING for ever.  Bytes are framed first (ngx_device_auth_resp.c):
 * nothing over the module's sizes reaches the reader.
 *
 * RESP2 does not tell the tracking connection that its redirect target is
 * gone, and a silent peer (a dead host, a partition) could leave the
 * cache without its invalidations for as long as TCP does not notice: a
 * PING every max(device_auth_redis_timeout, 1s) must be answered before
 * the next one, or the connection is dropped.  A lost subscriber is told
 * to the owner, whose cache then stops trusting what it holds.
 *
 * Made to a sentinel (sub->sentinel: the master's name), the same
 * connection sends AUTH when configured, "SENTINEL
 * get-master-addr-by-name", and subscribes to "+switch-master": the
 * owner hears where the master is, then each switch of that master.
 *
 * A subscriber that follows a node (sub->follow: the master a sentinel
 * names, a cluster node) does not reconnect by itself: its owner is told
 * of every failure, and decides where and when to connect again.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_subscriber.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_reply.h"
#include "ngx_device_auth_topology.h"


#define NGX_HTTP_DEVICE_AUTH_SUB_IDLE        0
#define NGX_HTTP_DEVICE_AUTH_SUB_CONNECTING  1
#define NGX_HTTP_DEVICE_AUTH_SUB_HANDSHAKE   2
#define NGX_HTTP_DEVICE_AUTH_SUB_READY       3

/* the handshake's replies, in order */
#define NGX_HTTP_DEVICE_AUTH_SUB_AUTH        0
#define NGX_HTTP_DEVICE_AUTH_SUB_ID          1
#define NGX_HTTP_DEVICE_AUTH_SUB_SUBSCRIBE   2


static void ngx_http_device_auth_subscriber_connect(
    ngx_http_device_auth_subscriber_t *sub);
static void ngx_http_device_auth_subscriber_reset(
    ngx_http_device_auth_subscriber_t *sub, const char *fmt, ...);
static void ngx_http_device_auth_subscriber_write_handler(ngx_event_t *wev);
static void ngx_http_device_auth_subscriber_read_handler(ngx_event_t *rev);
static ngx_int_t ngx_http_device_auth_subscriber_reply(
    ngx_http_device_auth_subscriber_t *sub, redisReply *reply);
static ngx_int_t ngx_http_device_auth_subscriber_master(
    ngx_http_device_auth_subscriber_t *sub, redisReply *reply);
static void ngx_http_device_auth_subscriber_command(
    ngx_http_device_auth_subscriber_t *sub, ngx_str_t *args, ngx_uint_t n);
static void ngx_http_device_auth_subscriber_flush(
    ngx_http_device_auth_subscriber_t *sub);
static void ngx_http_device_auth_subscriber_reconnect_handler(
    ngx_event_t *ev);
static void ngx_http_device_auth_subscriber_timeout_handler(ngx_event_t *ev);
static void ngx_http_device_auth_subscriber_ping_handler(ngx_event_t *ev);
static ngx_msec_t ngx_http_device_auth_subscriber_interval(
    ngx_http_device_auth_subscriber_t *sub);


void
ngx_http_device_auth_subscriber_init(ngx_http_device_auth_subscriber_t *sub,
    ngx_cycle_t *cycle, ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_subscriber_handlers_t *handlers)
{
    ngx_memzero(sub, sizeof(ngx_http_device_auth_subscriber_t));

    sub->log = cycle->log;
    sub->conf = dmcf;
    sub->handlers = *handlers;
    sub->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;
    sub->user = &dmcf->redis_user;
    sub->password = &dmcf->redis_password;

    sub->reconnect.handler = ngx_http_device_auth_subscriber_reconnect_handler;
    sub->timeout.handler = ngx_http_device_auth_subscriber_timeout_handler;
    sub->ping.handler = ngx_http_device_auth_subscriber_ping_handler;

    sub->reconnect.data = sub;
    sub->timeout.data = sub;
    sub->ping.data = sub;

    sub->reconnect.log = cycle->log;
    sub->timeout.log = cycle->log;
    sub->ping.log = cycle->log;

    /* a graceful shutdown never waits for them */
    sub->reconnect.cancelable = 1;
    sub->timeout.cancelable = 1;
    sub->ping.cancelable = 1;
}


/* connects, unless a connection is there or under way */

void
ngx_http_device_auth_subscriber_start(ngx_http_device_auth_subscriber_t *sub)
{
    if (sub->state != NGX_HTTP_DEVICE_AUTH_SUB_IDLE) {
        return;
    }

    if (sub->reconnect.timer_set) {
        ngx_del_timer(&sub->reconnect);
    }

    ngx_http_device_auth_subscriber_connect(sub);
}


ngx_uint_t
ngx_http_device_auth_subscriber_ready(ngx_http_device_auth_subscriber_t *sub)
{
    return sub->state == NGX_HTTP_DEVICE_AUTH_SUB_READY;
}


/* the connection is closed; the owner is not told, nothing is scheduled */

void
ngx_http_device_auth_subscriber_stop(ngx_http_device_auth_subscriber_t *sub)
{
    if (sub->reconnect.timer_set) {
        ngx_del_timer(&sub->reconnect);
    }

    if (sub->state == NGX_HTTP_DEVICE_AUTH_SUB_IDLE) {
        return;
    }

    sub->stopping = 1;
    ngx_http_device_auth_subscriber_reset(sub, NULL);
    sub->stopping = 0;
}


void
ngx_http_device_auth_subscriber_exit(ngx_http_device_auth_subscriber_t *sub)
{
    sub->exiting = 1;

    if (sub->reconnect.timer_set) {
        ngx_del_timer(&sub->reconnect);
    }

    if (sub->state != NGX_HTTP_DEVICE_AUTH_SUB_IDLE) {
        ngx_http_device_auth_subscriber_reset(sub, NULL);
    }
}


static void
ngx_http_device_auth_subscriber_connect(ngx_http_device_auth_subscriber_t *sub)
{
    ngx_int_t                          rc;
    ngx_str_t                          args[3];
    ngx_connection_t                  *c;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = sub->conf;

    ngx_memzero(&sub->peer, sizeof(ngx_peer_connection_t));

    sub->gen = sub->node->gen;
    sub->peer.sockaddr = &sub->node->sockaddr.sockaddr;
    sub->peer.socklen = sub->node->socklen;
    sub->peer.name = &sub->node->name;
    sub->peer.get = ngx_event_get_peer;
    sub->peer.log = sub->log;
    sub->peer.log_error = NGX_ERROR_ERR;

    sub->reader = redisReaderCreate();
    if (sub->reader == NULL) {
        ngx_http_device_auth_subscriber_reset(sub, "out of memory");
        return;
    }

    rc = ngx_event_connect_peer(&sub->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_http_device_auth_subscriber_reset(sub, "cannot connect");
        return;
    }

    c = sub->peer.connection;
    c->data = sub;
    c->read->handler = ngx_http_device_auth_subscriber_read_handler;
    c->write->handler = ngx_http_device_auth_subscriber_write_handler;
    c->log = sub->log;
    c->read->log = sub->log;
    c->write->log = sub->log;

    sub->state = rc == NGX_AGAIN ? NGX_HTTP_DEVICE_AUTH_SUB_CONNECTING
                                 : NGX_HTTP_DEVICE_AUTH_SUB_HANDSHAKE;
    sub->step = sub->password->len ? NGX_HTTP_DEVICE_AUTH_SUB_AUTH
                                   : NGX_HTTP_DEVICE_AUTH_SUB_ID;
    sub->pings = 0;
    sub->out_len = 0;
    ngx_device_auth_resp_scan_init(&sub->scan);

    /*
     * written once connected: AUTH, CLIENT ID, SUBSCRIBE; to a sentinel:
     * AUTH, SENTINEL get-master-addr-by-name, SUBSCRIBE
     */

    if (sub->password->len) {
        ngx_str_set(&args[0], "AUTH");

        if (sub->user->len) {
            args[1] = *sub->user;
            args[2] = *sub->password;
            ngx_http_device_auth_subscriber_command(sub, args, 3);

        } else {
            args[1] = *sub->password;
            ngx_http_device_auth_subscriber_command(sub, args, 2);
        }
    }

    if (sub->sentinel) {
        ngx_str_set(&args[0], "SENTINEL");
        ngx_str_set(&args[1], "get-master-addr-by-name");
        args[2] = *sub->sentinel;
        ngx_http_device_auth_subscriber_command(sub, args, 3);

        ngx_str_set(&args[0], "SUBSCRIBE");
        ngx_str_set(&args[1], NGX_DEVICE_AUTH_SWITCH_CHANNEL);
        ngx_http_device_auth_subscriber_command(sub, args, 2);

    } else {
        ngx_str_set(&args[0], "CLIENT");
        ngx_str_set(&args[1], "ID");
        ngx_http_device_auth_subscriber_command(sub, args, 2);

        ngx_str_set(&args[0], "SUBSCRIBE");
        ngx_str_set(&args[1], NGX_DEVICE_AUTH_INVALIDATE_CHANNEL);
        ngx_http_device_auth_subscriber_command(sub, args, 2);
    }

    if (sub->state == NGX_HTTP_DEVICE_AUTH_SUB_IDLE) {
        return;
    }

    ngx_add_timer(&sub->timeout, dmcf->redis_timeout);

    if (rc == NGX_OK) {
        ngx_http_device_auth_subscriber_flush(sub);
    }
}


/* a command, queued behind what is not written yet */

static void
ngx_http_device_auth_subscriber_command(ngx_http_device_auth_subscriber_t *sub,
    ngx_str_t *args, ngx_uint_t n)
{
    size_t                  len;
    ngx_uint_t              i;
    ngx_device_auth_resp_t  cmd;

    ngx_device_auth_resp_init(&cmd, sub->out + sub->out_len,
                              sizeof(sub->out) - sub->out_len);
    ngx_device_auth_resp_array(&cmd, n);

    for (i = 0; i < n; i++) {
        ngx_device_auth_resp_bulk(&cmd, args[i].data, args[i].len);
    }

    len = ngx_device_auth_resp_len(&cmd);

    if (len == 0) {
        ngx_http_device_auth_subscriber_reset(sub, "a command does not fit");
        return;
    }

    sub->out_len += len;
}


/* writes what is pending; what the socket did not take waits */

static void
ngx_http_device_auth_subscriber_flush(ngx_http_device_auth_subscriber_t *sub)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = sub->peer.connection;

    if (c == NULL || sub->out_len == 0) {
        return;
    }

    n = c->send(c, sub->out, sub->out_len);

    if (n == NGX_ERROR) {
        ngx_http_device_auth_subscriber_reset(sub, "write failed");
        return;
    }

    if (n > 0) {
        ngx_memmove(sub->out, sub->out + n, sub->out_len - n);
        sub->out_len -= n;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_device_auth_subscriber_reset(sub, "write event failed");
    }
}


static void
ngx_http_device_auth_subscriber_write_handler(ngx_event_t *wev)
{
    int                                 err;
    socklen_t                           len;
    ngx_connection_t                   *c;
    ngx_http_device_auth_subscriber_t  *sub;

    c = wev->data;
    sub = c->data;

    if (sub->state == NGX_HTTP_DEVICE_AUTH_SUB_CONNECTING) {

        /* the outcome of a connect in progress, as nginx's upstream asks */

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_device_auth_subscriber_reset(sub, "cannot connect: %s",
                                                  strerror(err));
            return;
        }

        sub->state = NGX_HTTP_DEVICE_AUTH_SUB_HANDSHAKE;
    }

    ngx_http_device_auth_subscriber_flush(sub);
}


static void
ngx_http_device_auth_subscriber_read_handler(ngx_event_t *rev)
{
    long                                n;
    void                               *reply;
    ssize_t                             size;
    ngx_connection_t                   *c;
    ngx_http_device_auth_subscriber_t  *sub;
    u_char                              buf[16384];

    c = rev->data;
    sub = c->data;

    if (sub->state == NGX_HTTP_DEVICE_AUTH_SUB_CONNECTING) {
        ngx_http_device_auth_subscriber_write_handler(c->write);

        if (sub->state != NGX_HTTP_DEVICE_AUTH_SUB_HANDSHAKE) {
            return;
        }
    }

    for ( ;; ) {
        size = c->recv(c, buf, sizeof(buf));

        if (size == NGX_AGAIN) {
            break;
        }

        if (size == 0 || size == NGX_ERROR) {
            ngx_http_device_auth_subscriber_reset(sub, "connection lost");
            return;
        }

        n = ngx_device_auth_resp_scan(&sub->scan, buf, (size_t) size);

        if (n < 0 || redisReaderFeed(sub->reader, (char *) buf, size)
                     != REDIS_OK)
        {
            ngx_http_device_auth_subscriber_reset(sub, "it sent bytes that "
                                                  "are no message of the "
                                                  "invalidation channel");
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(sub->reader, &reply) != REDIS_OK) {
                ngx_http_device_auth_subscriber_reset(sub, "bad reply");
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (ngx_http_device_auth_subscriber_reply(sub, reply) != NGX_OK)
            {
                freeReplyObject(reply);
                return;
            }

            freeReplyObject(reply);
        }

        if (!rev->ready) {
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_device_auth_subscriber_reset(sub, "read event failed");
    }
}


/* NGX_OK, or the connection was dropped for it */

static ngx_int_t
ngx_http_device_auth_subscriber_reply(ngx_http_device_auth_subscriber_t *sub,
    redisReply *reply)
{
    size_t                        i, n;
    const redisReply *const      *keys;
    ngx_device_auth_node_addr_t   addr;

    if (sub->state == NGX_HTTP_DEVICE_AUTH_SUB_HANDSHAKE) {

        switch (sub->step) {

        case NGX_HTTP_DEVICE_AUTH_SUB_AUTH:
            if (reply->type != REDIS_REPLY_STATUS || reply->len != 2
                || ngx_strncmp(reply->str, "OK", 2) != 0)
            {
                ngx_http_device_auth_subscriber_reset(sub, "\"AUTH\" failed: "
                                                      "%*s",
                                                      ngx_min(reply->len, 128),
                                                      reply->str ? reply->str
                                                                 : "");
                return NGX_ERROR;
            }

            sub->step = NGX_HTTP_DEVICE_AUTH_SUB_ID;
            return NGX_OK;

        case NGX_HTTP_DEVICE_AUTH_SUB_ID:
            if (sub->sentinel) {
                return ngx_http_device_auth_subscriber_master(sub, reply);
            }

            if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0) {
                ngx_http_device_auth_subscriber_reset(sub, "unexpected reply "
                                                      "to \"CLIENT ID\"");
                return NGX_ERROR;
            }

            sub->id = reply->integer;
            sub->step = NGX_HTTP_DEVICE_AUTH_SUB_SUBSCRIBE;
            return NGX_OK;

        default: /* NGX_HTTP_DEVICE_AUTH_SUB_SUBSCRIBE */
            if (sub->sentinel
                ? ngx_device_auth_reply_switch(reply,
                                              (char *) sub->sentinel->data,
                                              &addr)
                  != NGX_DEVICE_AUTH_SWITCH_SUBSCRIBED
                : ngx_device_auth_reply_push(reply, &keys, &n)
                  != NGX_DEVICE_AUTH_PUSH_SUBSCRIBED)
            {
                ngx_http_device_auth_subscriber_reset(sub, "unexpected reply "
                                                      "to \"SUBSCRIBE\"");
                return NGX_ERROR;
            }

            if (sub->timeout.timer_set) {
                ngx_del_timer(&sub->timeout);
            }

            sub->state = NGX_HTTP_DEVICE_AUTH_SUB_READY;
            sub->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;
            ngx_http_device_auth_outage_clear(&sub->outage);

            ngx_add_timer(&sub->ping,
                          ngx_http_device_auth_subscriber_interval(sub));

            if (sub->sentinel) {
                ngx_log_error(NGX_LOG_INFO, sub->log, 0,
                              "device_auth: following the switches of "
                              "master \"%V\" at sentinel \"%V\"",
                              sub->sentinel, &sub->node->name);

            } else {
                ngx_log_error(NGX_LOG_NOTICE, sub->log, 0,
                              "device_auth: subscribed to redis "
                              "invalidations at \"%V\" (client id %L)",
                              &sub->node->name, sub->id);
            }

            sub->handlers.ready(sub->handlers.data, sub->id);
            return NGX_OK;
        }
    }

    if (sub->sentinel) {
        switch (ngx_device_auth_reply_switch(reply,
                                             (char *) sub->sentinel->data,
                                             &addr))
        {
        case NGX_DEVICE_AUTH_SWITCH_PONG:
            if (sub->pings) {
                sub->pings--;
            }

            return NGX_OK;

        case NGX_DEVICE_AUTH_SWITCH_MASTER:
            sub->handlers.master(sub->handlers.data, &addr);
            return NGX_OK;

        case NGX_DEVICE_AUTH_SWITCH_OTHER:
            return NGX_OK;

        default:
            ngx_http_device_auth_subscriber_reset(sub, "unexpected message "
                                              "on the \"%s\" channel",
                                              NGX_DEVICE_AUTH_SWITCH_CHANNEL);
            return NGX_ERROR;
        }
    }

    switch (ngx_device_auth_reply_push(reply, &keys, &n)) {

    case NGX_DEVICE_AUTH_PUSH_PONG:
        if (sub->pings) {
            sub->pings--;
        }

        ngx_http_device_auth_metrics_link_alive(sub->conf);
        return NGX_OK;

    case NGX_DEVICE_AUTH_PUSH_INVALIDATE:
        for (i = 0; i < n; i++) {
            sub->handlers.invalidate(sub->handlers.data,
                                     (u_char *) keys[i]->str, keys[i]->len);
        }

        ngx_http_device_auth_metrics_link_alive(sub->conf);
        return NGX_OK;

    case NGX_DEVICE_AUTH_PUSH_FLUSH:
        sub->handlers.flush(sub->handlers.data);
        ngx_http_device_auth_metrics_link_alive(sub->conf);
        return NGX_OK;

    default:
        ngx_http_device_auth_subscriber_reset(sub, "unexpected message on "
                                              "the invalidation channel");
        return NGX_ERROR;
    }
}


/* a sentinel's answer to "SENTINEL get-master-addr-by-name" */

static ngx_int_t
ngx_http_device_auth_subscriber_master(ngx_http_device_auth_subscriber_t *sub,
    redisReply *reply)
{
    ngx_device_auth_node_addr_t  addr;

    switch (ngx_device_auth_reply_master(reply, &addr)) {

    case NGX_DEVICE_AUTH_MASTER_KNOWN:
        sub->step = NGX_HTTP_DEVICE_AUTH_SUB_SUBSCRIBE;
        sub->handlers.master(sub->handlers.data, &addr);
        return NGX_OK;

    case NGX_DEVICE_AUTH_MASTER_UNKNOWN:
        ngx_http_device_auth_subscriber_reset(sub, "it knows no master "
                                              "\"%V\"", sub->sentinel);
        return NGX_ERROR;

    case NGX_DEVICE_AUTH_MASTER_HOSTNAME:
        ngx_http_device_auth_subscriber_reset(sub, "it names the master by "
                                              "a host name, which would "
                                              "need a blocking DNS lookup "
                                              "(announce IP addresses)");
        return NGX_ERROR;

    default:
        ngx_http_device_auth_subscriber_reset(sub, "unexpected reply to "
                                              "\"SENTINEL "
                                              "get-master-addr-by-name\"%s"
                                              "%*s",
                                              reply->type
                                              == REDIS_REPLY_ERROR
                                              ? ": " : "",
                                              reply->type
                                              == REDIS_REPLY_ERROR
                                              ? ngx_min(reply->len, 128) : 0,
                                              reply->str ? reply->str : "");
        return NGX_ERROR;
    }
}


static void
ngx_http_device_auth_subscriber_ping_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_subscriber_t *sub = ev->data;

    ngx_str_t  ping;

    if (sub->state != NGX_HTTP_DEVICE_AUTH_SUB_READY) {
        return;
    }

    if (sub->pings) {
        ngx_http_device_auth_subscriber_reset(sub, "no answer to PING in "
                                   "%M ms",
                                   ngx_http_device_auth_subscriber_interval(sub));
        return;
    }

    ngx_str_set(&ping, "PING");
    ngx_http_device_auth_subscriber_command(sub, &ping, 1);
    ngx_http_device_auth_subscriber_flush(sub);

    if (sub->state != NGX_HTTP_DEVICE_AUTH_SUB_READY) {
        return;
    }

    sub->pings++;
    ngx_add_timer(&sub->ping, ngx_http_device_auth_subscriber_interval(sub));
}


static ngx_msec_t
ngx_http_device_auth_subscriber_interval(
    ngx_http_device_auth_subscriber_t *sub)
{
    return ngx_max(sub->conf->redis_timeout, 1000);
}


static void
ngx_http_device_auth_subscriber_timeout_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_subscriber_t *sub = ev->data;

    ngx_http_device_auth_subscriber_reset(sub, "no answer to the handshake "
                                          "in %M ms",
                                          sub->conf->redis_timeout);
}


static void
ngx_http_device_auth_subscriber_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_subscriber_t *sub = ev->data;

    if (sub->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_device_auth_subscriber_connect(sub);
}


/*
 * Drops the connection (fmt: why, logged once per cause; NULL: the worker
 * exits), tells the owner when it was subscribed, and schedules the next
 * attempt with backoff.
 */

static void
ngx_http_device_auth_subscriber_reset(ngx_http_device_auth_subscriber_t *sub,
    const char *fmt, ...)
{
    u_char      *p;
    u_char       why[256];
    va_list      args;
    ngx_uint_t   was_ready;

    was_ready = sub->state == NGX_HTTP_DEVICE_AUTH_SUB_READY;

    if (sub->peer.connection) {
        ngx_close_connection(sub->peer.connection);
        sub->peer.connection = NULL;
    }

    if (sub->reader) {
        redisReaderFree(sub->reader);
        sub->reader = NULL;
    }

    if (sub->timeout.timer_set) {
        ngx_del_timer(&sub->timeout);
    }

    if (sub->ping.timer_set) {
        ngx_del_timer(&sub->ping);
    }

    sub->state = NGX_HTTP_DEVICE_AUTH_SUB_IDLE;
    sub->out_len = 0;

    if (fmt) {
        va_start(args, fmt);
        p = ngx_vslprintf(why, why + sizeof(why), fmt, args);
        va_end(args);

        ngx_http_device_auth_outage(sub->log, &sub->outage,
                                    "%s at \"%V\": %*s",
                                    sub->sentinel
                                    ? "redis sentinel"
                                    : "redis invalidation subscriber",
                                    &sub->node->name, p - why, why);
    }

    if (sub->stopping) {
        return;
    }

    if (was_ready || (sub->follow && !sub->exiting)) {
        sub->handlers.lost(sub->handlers.data);
    }

    if (sub->exiting || ngx_exiting || ngx_quit || ngx_terminate
        || sub->follow)
    {
        return;
    }

    if (!sub->reconnect.timer_set) {
        ngx_add_timer(&sub->reconnect, sub->backoff);
        ngx_http_device_auth_metrics_reconnect(sub->conf);
    }

    sub->backoff = ngx_min(sub->backoff * 2,
                           NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX);
}
