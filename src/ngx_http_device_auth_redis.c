
/*
 * The command connection of a worker to Redis: hiredis' async API, driven
 * by nginx's event loop.
 *
 * hiredis asks for read and write interest through addRead, delRead,
 * addWrite and delWrite; they map onto level-triggered events of an nginx
 * connection wrapping hiredis' socket, because hiredis reads at most 16k
 * per call and expects to be called again while data is pending.  hiredis
 * 0.14 has no timeouts: the connect and handshake timeout is a timer here,
 * and each command of the operations has its own.  Every command of every
 * request of the worker is pipelined on this one connection.
 *
 * On connect: AUTH and SELECT when configured, SCRIPT LOAD, then CLIENT
 * TRACKING, which makes Redis push the invalidation of the keys read after
 * "CLIENT CACHING yes" to the worker's subscriber (OPTIN: only what the
 * cache keeps).  Not NOLOOP: Redis 7 skips a NOLOOP client for every
 * invalidation made while its own command runs, including the keys it
 * evicts from a full tracking table then (tracking-table-max-keys), and
 * those would be lost; the edge's own writes come back instead: the
 * script says how many, and the cache knows them for its own
 * (ngx_http_device_auth_cache_sighting_end()).
 * Nothing else is sent before all of them succeeded (a command queued
 * behind a refused SELECT would run in db 0).  A lost connection fails
 * what is in flight and is reopened with exponential backoff; the timers
 * are cancelable so that a graceful reload or shutdown never waits.  A
 * PING every max(device_auth_redis_timeout, 1s) must be answered before
 * the next: a silent peer would otherwise keep a tracking connection that
 * Redis no longer has.
 *
 * Where the node is a master that a sentinel named (redis->role), the
 * handshake starts with ROLE, and nothing else is sent before it said
 * "master"; the heartbeat is ROLE instead of PING, and a "-READONLY"
 * reply drops the connection: a master demoted under the edge is left
 * within a heartbeat, and never written to.  There the owner reconnects
 * (redis->follow), after asking the sentinels again.
 *
 * The bytes Redis sends are read here, not by hiredis: they are framed
 * (ngx_device_auth_resp.c) and counted against the commands sent before
 * hiredis parses them, because hiredis' async layer aborts the process on
 * a reply nobody asked for.  Such a reply, or bytes that are no reply the
 * module can have asked for, drop the connection.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/sha.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_redis.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_http_device_auth_script.h"
#include "ngx_device_auth_topology.h"


#define NGX_HTTP_DEVICE_AUTH_STEP_AUTH      "AUTH"
#define NGX_HTTP_DEVICE_AUTH_STEP_ROLE      "ROLE"
#define NGX_HTTP_DEVICE_AUTH_STEP_SELECT    "SELECT"
#define NGX_HTTP_DEVICE_AUTH_STEP_LOAD      "SCRIPT LOAD"
#define NGX_HTTP_DEVICE_AUTH_STEP_UNTRACK   "CLIENT TRACKING off"
#define NGX_HTTP_DEVICE_AUTH_STEP_TRACK     "CLIENT TRACKING on"


static void ngx_http_device_auth_redis_schedule(
    ngx_http_device_auth_redis_t *redis);
static void ngx_http_device_auth_redis_failed(
    ngx_http_device_auth_redis_t *redis);
static void ngx_http_device_auth_redis_drop(
    ngx_http_device_auth_redis_t *redis);
static ngx_int_t ngx_http_device_auth_redis_setup(
    ngx_http_device_auth_redis_t *redis);
static void ngx_http_device_auth_redis_going(
    ngx_http_device_auth_redis_t *redis);
static void ngx_http_device_auth_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_device_auth_redis_timeout_handler(ngx_event_t *ev);
static void ngx_http_device_auth_redis_ping_handler(ngx_event_t *ev);
static void ngx_http_device_auth_redis_pong(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_msec_t ngx_http_device_auth_redis_interval(
    ngx_http_device_auth_redis_t *redis);
static void ngx_http_device_auth_redis_read_handler(ngx_event_t *ev);
static void ngx_http_device_auth_redis_write_handler(ngx_event_t *ev);
static void ngx_http_device_auth_redis_add_read(void *data);
static void ngx_http_device_auth_redis_del_read(void *data);
static void ngx_http_device_auth_redis_add_write(void *data);
static void ngx_http_device_auth_redis_del_write(void *data);
static void ngx_http_device_auth_redis_cleanup(void *data);
static void ngx_http_device_auth_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_device_auth_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_device_auth_redis_handshake(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_http_device_auth_redis_command(
    ngx_http_device_auth_redis_t *redis, const char *step,
    const char *fmt, ...);
static void ngx_http_device_auth_redis_track(
    ngx_http_device_auth_redis_t *redis);


const char    *ngx_http_device_auth_script = ngx_http_device_auth_script_src;
const size_t   ngx_http_device_auth_script_len =
                                  sizeof(ngx_http_device_auth_script_src) - 1;


void
ngx_http_device_auth_redis_init(ngx_http_device_auth_redis_t *redis,
    ngx_cycle_t *cycle, ngx_http_device_auth_main_conf_t *dmcf,
    ngx_http_device_auth_redis_handlers_t *handlers)
{
    u_char  md[SHA_DIGEST_LENGTH];

    ngx_memzero(redis, sizeof(ngx_http_device_auth_redis_t));

    redis->log = cycle->log;
    redis->conf = dmcf;
    redis->handlers = *handlers;
    redis->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;
    redis->redirect = -1;
    redis->tracking = -1;
    redis->cause = NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED;

    SHA1((u_char *) ngx_http_device_auth_script,
         ngx_http_device_auth_script_len, md);
    ngx_hex_dump(redis->sha, md, SHA_DIGEST_LENGTH);

    redis->reconnect.handler = ngx_http_device_auth_redis_reconnect_handler;
    redis->timeout.handler = ngx_http_device_auth_redis_timeout_handler;
    redis->ping.handler = ngx_http_device_auth_redis_ping_handler;

    redis->reconnect.data = redis;
    redis->timeout.data = redis;
    redis->ping.data = redis;

    redis->reconnect.log = cycle->log;
    redis->timeout.log = cycle->log;
    redis->ping.log = cycle->log;

    redis->reconnect.cancelable = 1;
    redis->timeout.cancelable = 1;
    redis->ping.cancelable = 1;
}


void
ngx_http_device_auth_redis_exit(ngx_http_device_auth_redis_t *redis)
{
    redis->exiting = 1;

    if (redis->reconnect.timer_set) {
        ngx_del_timer(&redis->reconnect);
    }

    if (redis->timeout.timer_set) {
        ngx_del_timer(&redis->timeout);
    }

    if (redis->ping.timer_set) {
        ngx_del_timer(&redis->ping);
    }

    if (redis->ac) {
        redisAsyncFree(redis->ac);
    }

    ngx_http_device_auth_metrics_worker(redis->conf, 0, 0);
}


ngx_uint_t
ngx_http_device_auth_redis_ready(ngx_http_device_auth_redis_t *redis)
{
    return redis->state == NGX_HTTP_DEVICE_AUTH_REDIS_READY
           && redis->ac != NULL
           && !(redis->ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING));
}


/* NGX_DECLINED: not ready now; the caller does not queue behind it */

ngx_int_t
ngx_http_device_auth_redis_send(ngx_http_device_auth_redis_t *redis,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len)
{
    if (!ngx_http_device_auth_redis_ready(redis)) {
        return NGX_DECLINED;
    }

    if (redisAsyncFormattedCommand(redis->ac, fn, privdata, (char *) cmd, len)
        != REDIS_OK)
    {
        return NGX_DECLINED;
    }

    redis->sent++;

    return NGX_OK;
}


/* drops the connection: what is in flight fails, a reconnect follows */

void
ngx_http_device_auth_redis_reset(ngx_http_device_auth_redis_t *redis,
    const char *why)
{
    if (redis->ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "device_auth: dropping redis connection to \"%V\": %s",
                  &redis->node->name, why);

    ngx_http_device_auth_redis_drop(redis);
}


/*
 * The connection ends: the owner hears it before hiredis calls back what
 * is in flight with no reply, so that the requests those callbacks wake
 * already find the link down (the grace, not the fail mode, for what was
 * cached).  Then hiredis frees it, and the owner hears "lost".
 */

static void
ngx_http_device_auth_redis_drop(ngx_http_device_auth_redis_t *redis)
{
    redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_IDLE;

    ngx_http_device_auth_redis_going(redis);

    redisAsyncFree(redis->ac);
}


static void
ngx_http_device_auth_redis_going(ngx_http_device_auth_redis_t *redis)
{
    if (redis->handlers.going && !redis->exiting) {
        redis->handlers.going(redis->handlers.data);
    }
}


/*
 * Connects, tracking into the subscriber of redis->redirect if there is
 * one; without one the connection serves untracked until the owner
 * retracks it (a subscriber that cannot subscribe does not stop lookups).
 */

void
ngx_http_device_auth_redis_connect(ngx_http_device_auth_redis_t *redis)
{
    ngx_connection_t                  *c;
    redisAsyncContext                 *ac;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = redis->conf;

    if (redis->ac || redis->exiting) {
        return;
    }

    if (redis->reconnect.timer_set) {
        ngx_del_timer(&redis->reconnect);
    }

    redis->gen = redis->node->gen;
    redis->cause = NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED;

    if (redis->node->port) {
        ac = redisAsyncConnect((char *) redis->node->host, redis->node->port);
    } else {
        ac = redisAsyncConnectUnix((char *) redis->node->host);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "device_auth: cannot connect to redis at \"%V\": "
                      "out of memory", &redis->node->name);
        ngx_http_device_auth_redis_failed(redis);
        return;
    }

    if (ac->err) {
        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "cannot connect to redis at \"%V\": %s",
                                    &redis->node->name, ac->errstr);

        redisAsyncFree(ac);
        ngx_http_device_auth_redis_failed(redis);
        return;
    }

    c = ngx_get_connection(ac->c.fd, redis->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_device_auth_redis_failed(redis);
        return;
    }

    c->data = redis;
    c->read->handler = ngx_http_device_auth_redis_read_handler;
    c->write->handler = ngx_http_device_auth_redis_write_handler;
    c->read->log = redis->log;
    c->write->log = redis->log;

    redis->ac = ac;
    redis->conn = c;
    redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING;
    redis->sent = 0;
    redis->replies = 0;
    redis->pings = 0;
    redis->steps = 0;
    redis->tracking = -1;
    redis->connected = 0;
    ngx_device_auth_resp_scan_init(&redis->scan);

    ac->data = redis;
    ac->ev.data = redis;
    ac->ev.addRead = ngx_http_device_auth_redis_add_read;
    ac->ev.delRead = ngx_http_device_auth_redis_del_read;
    ac->ev.addWrite = ngx_http_device_auth_redis_add_write;
    ac->ev.delWrite = ngx_http_device_auth_redis_del_write;
    ac->ev.cleanup = ngx_http_device_auth_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_device_auth_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_device_auth_redis_disconnected);

    ngx_add_timer(&redis->timeout, dmcf->redis_timeout);

    /* pipelined behind the connect; nothing else before they succeeded */

    if (dmcf->redis_password.len) {
        if (dmcf->redis_user.len) {
            if (ngx_http_device_auth_redis_command(redis,
                                                 NGX_HTTP_DEVICE_AUTH_STEP_AUTH,
                                                 "AUTH %s %s",
                                                 dmcf->redis_user.data,
                                                 dmcf->redis_password.data)
                != NGX_OK)
            {
                return;
            }

        } else if (ngx_http_device_auth_redis_command(redis,
                                                 NGX_HTTP_DEVICE_AUTH_STEP_AUTH,
                                                 "AUTH %s",
                                                 dmcf->redis_password.data)
                   != NGX_OK)
        {
            return;
        }
    }

    /*
     * A sentinel's answer may be stale: the node must be a master now, and
     * nothing else is sent to it before ROLE said so.
     */

    if (redis->role) {
        (void) ngx_http_device_auth_redis_command(redis,
                                                NGX_HTTP_DEVICE_AUTH_STEP_ROLE,
                                                "ROLE");
        return;
    }

    (void) ngx_http_device_auth_redis_setup(redis);
}


/* the handshake after AUTH (and ROLE): SELECT, SCRIPT LOAD, tracking */

static ngx_int_t
ngx_http_device_auth_redis_setup(ngx_http_device_auth_redis_t *redis)
{
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = redis->conf;

    if (dmcf->redis_db
        && ngx_http_device_auth_redis_command(redis,
                                              NGX_HTTP_DEVICE_AUTH_STEP_SELECT,
                                              "SELECT %d", (int) dmcf->redis_db)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_device_auth_redis_command(redis,
                                           NGX_HTTP_DEVICE_AUTH_STEP_LOAD,
                                           "SCRIPT LOAD %b",
                                           ngx_http_device_auth_script,
                                           ngx_http_device_auth_script_len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (redis->redirect >= 0) {
        ngx_http_device_auth_redis_track(redis);
    }

    return NGX_OK;
}


/*
 * A subscriber came, or was replaced: tracking is redirected to it (off,
 * then on: Redis does not change the redirect of a tracking client).  The
 * connection stays up; the owner hears "ready" again when it is done.
 */

void
ngx_http_device_auth_redis_retrack(ngx_http_device_auth_redis_t *redis,
    long long redirect)
{
    redis->redirect = redirect;

    if (!ngx_http_device_auth_redis_ready(redis) || redirect < 0) {
        return;
    }

    redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_CONNECTING;

    if (redis->ping.timer_set) {
        ngx_del_timer(&redis->ping);
    }

    ngx_add_timer(&redis->timeout, redis->conf->redis_timeout);

    if (ngx_http_device_auth_redis_command(redis,
                                           NGX_HTTP_DEVICE_AUTH_STEP_UNTRACK,
                                           "CLIENT TRACKING off")
        != NGX_OK)
    {
        return;
    }

    if (redis->redirect >= 0) {
        ngx_http_device_auth_redis_track(redis);
    }
}


static void
ngx_http_device_auth_redis_track(ngx_http_device_auth_redis_t *redis)
{
    (void) ngx_http_device_auth_redis_command(redis,
                                              NGX_HTTP_DEVICE_AUTH_STEP_TRACK,
                                              "CLIENT TRACKING on REDIRECT "
                                              "%lld OPTIN",
                                              redis->redirect);
}


/* a command of the handshake; one that cannot be queued drops it all */

static ngx_int_t
ngx_http_device_auth_redis_command(ngx_http_device_auth_redis_t *redis,
    const char *step, const char *fmt, ...)
{
    int      rc;
    va_list  args;

    va_start(args, fmt);
    rc = redisvAsyncCommand(redis->ac, ngx_http_device_auth_redis_handshake,
                            (void *) step, fmt, args);
    va_end(args);

    if (rc != REDIS_OK) {
        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "cannot send \"%s\" to redis at \"%V\"",
                                    step, &redis->node->name);
        ngx_http_device_auth_redis_drop(redis);
        return NGX_ERROR;
    }

    redis->sent++;
    redis->steps++;

    return NGX_OK;
}


static void
ngx_http_device_auth_redis_handshake(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply *reply = r;

    char                          *step;
    ngx_http_device_auth_redis_t  *redis;

    redis = ac->data;
    step = privdata;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {

        /* a password or an ACL refused: said in each request's line */

        redis->cause = ngx_http_device_auth_redis_cause(reply);

        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "redis \"%s\" failed at \"%V\": %*s",
                                    step, &redis->node->name,
                                    ngx_min(reply->len, 128), reply->str);

        ngx_http_device_auth_redis_drop(redis);
        return;
    }

    if (ngx_strcmp(step, NGX_HTTP_DEVICE_AUTH_STEP_ROLE) == 0) {

        if (ngx_device_auth_reply_role(reply) != NGX_DEVICE_AUTH_ROLE_MASTER)
        {
            ngx_http_device_auth_outage(redis->log, &redis->outage,
                                        "redis at \"%V\" is not a master "
                                        "(ROLE)", &redis->node->name);
            ngx_http_device_auth_redis_drop(redis);
            return;
        }

        /* a master: the rest of the handshake */

        if (ngx_http_device_auth_redis_setup(redis) != NGX_OK) {
            return;
        }

        goto done;
    }

    if (ngx_strcmp(step, NGX_HTTP_DEVICE_AUTH_STEP_LOAD) == 0) {

        if (reply->type != REDIS_REPLY_STRING
            || reply->len != NGX_HTTP_DEVICE_AUTH_SHA1_LEN
            || ngx_strncasecmp((u_char *) reply->str, redis->sha,
                               NGX_HTTP_DEVICE_AUTH_SHA1_LEN)
               != 0)
        {
            ngx_http_device_auth_outage(redis->log, &redis->outage,
                                        "unexpected reply to \"%s\" from "
                                        "redis at \"%V\"", step,
                                        &redis->node->name);
            ngx_http_device_auth_redis_reset(redis, "handshake failed");
            return;
        }

        goto done;
    }

    /* AUTH, SELECT, CLIENT TRACKING say +OK, or they did not do it */

    if (reply->type != REDIS_REPLY_STATUS || reply->len != 2
        || ngx_strncmp(reply->str, "OK", 2) != 0)
    {
        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "unexpected reply to \"%s\" from redis "
                                    "at \"%V\"", step,
                                    &redis->node->name);
        ngx_http_device_auth_redis_reset(redis, "handshake failed");
        return;
    }

    if (ngx_strcmp(step, NGX_HTTP_DEVICE_AUTH_STEP_TRACK) == 0) {
        redis->tracking = redis->redirect;

    } else if (ngx_strcmp(step, NGX_HTTP_DEVICE_AUTH_STEP_UNTRACK) == 0) {
        redis->tracking = -1;
    }

done:

    if (--redis->steps) {
        return;
    }

    if (redis->timeout.timer_set) {
        ngx_del_timer(&redis->timeout);
    }

    redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_READY;
    redis->backoff = NGX_HTTP_DEVICE_AUTH_BACKOFF_MIN;
    ngx_http_device_auth_outage_clear(&redis->outage);

    ngx_http_device_auth_metrics_worker(redis->conf, redis->inflight, 1);

    ngx_add_timer(&redis->ping, ngx_http_device_auth_redis_interval(redis));

    if (!redis->connected) {
        redis->connected = 1;
        ngx_log_error(NGX_LOG_NOTICE, redis->log, 0,
                      "device_auth: connected to redis at \"%V\"",
                      &redis->node->name);
    }

    redis->handlers.ready(redis->handlers.data);
}


/* the kind of an error reply: WRONGPASS, NOAUTH, NOPERM, or another */

ngx_uint_t
ngx_http_device_auth_redis_cause(redisReply *reply)
{
    static struct {
        ngx_str_t   prefix;
        ngx_uint_t  kind;
    } causes[] = {
        { ngx_string("WRONGPASS"), NGX_HTTP_DEVICE_AUTH_RE_WRONGPASS },
        { ngx_string("NOAUTH"), NGX_HTTP_DEVICE_AUTH_RE_NOAUTH },
        { ngx_string("NOPERM"), NGX_HTTP_DEVICE_AUTH_RE_NOPERM },
        { ngx_null_string, NGX_HTTP_DEVICE_AUTH_RE_ERROR_REPLY }
    };

    ngx_uint_t  i;

    for (i = 0; causes[i].prefix.len; i++) {
        if (reply->str && reply->len >= causes[i].prefix.len
            && ngx_strncmp(reply->str, causes[i].prefix.data,
                           causes[i].prefix.len) == 0)
        {
            break;
        }
    }

    return causes[i].kind;
}


static void
ngx_http_device_auth_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_device_auth_redis_t  *redis;

    redis = ac->data;

    if (status != REDIS_OK) {
        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "cannot connect to redis at \"%V\": %s",
                                    &redis->node->name, ac->errstr);
    }
}


static void
ngx_http_device_auth_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_device_auth_redis_t  *redis;

    redis = ac->data;

    if (status != REDIS_OK && !redis->exiting) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "device_auth: redis connection to \"%V\" lost: %s",
                      &redis->node->name, ac->errstr);
    }
}


static void
ngx_http_device_auth_redis_ping_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_redis_t *redis = ev->data;

    if (!ngx_http_device_auth_redis_ready(redis)) {
        return;
    }

    if (redis->pings) {
        ngx_http_device_auth_redis_reset(redis, "no answer to PING");
        return;
    }

    /* a master must still be one: a demoted one would keep serving reads */

    if (ngx_http_device_auth_redis_send(redis, ngx_http_device_auth_redis_pong,
                                        NULL,
                                        (u_char *) (redis->role
                                                    ? "*1\r\n$4\r\nROLE\r\n"
                                                    : "*1\r\n$4\r\nPING\r\n"),
                                        14)
        != NGX_OK)
    {
        return;
    }

    redis->pings++;

    ngx_add_timer(&redis->ping, ngx_http_device_auth_redis_interval(redis));
}


static void
ngx_http_device_auth_redis_pong(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_redis_t  *redis;

    redis = ac->data;

    if (r && redis->pings) {
        redis->pings--;
    }

    if (r && redis->role
        && ngx_device_auth_reply_role(r) != NGX_DEVICE_AUTH_ROLE_MASTER)
    {
        ngx_http_device_auth_redis_reset(redis, "it is no longer a master "
                                         "(ROLE)");
    }
}


/*
 * A master that became a replica refuses writes: with "-READONLY" for a
 * command, a script's write, an XADD.  Where a master is followed, the
 * connection is dropped and the master asked for again: 1.
 */

ngx_uint_t
ngx_http_device_auth_redis_readonly(ngx_http_device_auth_redis_t *redis,
    redisReply *reply)
{
    int                          slot;
    ngx_device_auth_node_addr_t  node;

    if (!redis->role || reply == NULL
        || ngx_device_auth_reply_redirect(reply, &slot, &node)
           != NGX_DEVICE_AUTH_REDIRECT_READONLY)
    {
        return 0;
    }

    ngx_http_device_auth_redis_reset(redis, "it is a replica now "
                                     "(READONLY)");
    return 1;
}


static ngx_msec_t
ngx_http_device_auth_redis_interval(ngx_http_device_auth_redis_t *redis)
{
    return ngx_max(redis->conf->redis_timeout, 1000);
}


/*
 * An outage is logged once per cause, not at every reconnect attempt; a
 * new cause (the server is back, but now refuses the password) is logged.
 */

void
ngx_http_device_auth_outage(ngx_log_t *log,
    ngx_http_device_auth_outage_t *outage, const char *fmt, ...)
{
    u_char   *p;
    u_char    buf[sizeof(outage->msg)];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    if ((size_t) (p - buf) == outage->len
        && ngx_memcmp(buf, outage->msg, outage->len) == 0)
    {
        return;
    }

    outage->len = p - buf;
    ngx_memcpy(outage->msg, buf, outage->len);

    ngx_log_error(NGX_LOG_ERR, log, 0, "device_auth: %*s", outage->len,
                  outage->msg);
}


void
ngx_http_device_auth_outage_clear(ngx_http_device_auth_outage_t *outage)
{
    outage->len = 0;
}


static void
ngx_http_device_auth_redis_schedule(ngx_http_device_auth_redis_t *redis)
{
    redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_IDLE;
    ngx_http_device_auth_metrics_worker(redis->conf, redis->inflight, 0);

    if (redis->exiting || ngx_exiting || ngx_quit || ngx_terminate
        || redis->follow)
    {
        return;
    }

    if (!redis->reconnect.timer_set) {
        ngx_add_timer(&redis->reconnect, redis->backoff);
        ngx_http_device_auth_metrics_reconnect(redis->conf);
    }

    redis->backoff = ngx_min(redis->backoff * 2,
                             NGX_HTTP_DEVICE_AUTH_BACKOFF_MAX);
}


/* no connection came of it: the owner that follows a master is told */

static void
ngx_http_device_auth_redis_failed(ngx_http_device_auth_redis_t *redis)
{
    ngx_http_device_auth_redis_schedule(redis);

    if (redis->follow && !redis->exiting) {
        redis->handlers.lost(redis->handlers.data);
    }
}


static void
ngx_http_device_auth_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_redis_t *redis = ev->data;

    if (redis->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_device_auth_redis_connect(redis);
}


static void
ngx_http_device_auth_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_http_device_auth_redis_t *redis = ev->data;

    if (redis->state != NGX_HTTP_DEVICE_AUTH_REDIS_READY) {
        ngx_http_device_auth_outage(redis->log, &redis->outage,
                                    "redis at \"%V\" did not answer the "
                                    "connect and handshake in %M ms",
                                    &redis->node->name,
                                    redis->conf->redis_timeout);

        if (redis->ac) {
            ngx_http_device_auth_redis_drop(redis);

        } else {
            redis->state = NGX_HTTP_DEVICE_AUTH_REDIS_IDLE;
        }
    }
}


static void
ngx_http_device_auth_redis_read_handler(ngx_event_t *ev)
{
    long                           n;
    ssize_t                        size;
    ngx_connection_t              *c;
    redisAsyncContext             *ac;
    ngx_http_device_auth_redis_t  *redis;
    u_char                         buf[16384];

    c = ev->data;
    redis = c->data;
    ac = redis->ac;

    if (ac == NULL) {
        return;
    }

    /* the connect itself, and errors and EOF: hiredis sees to them */

    if (!(ac->c.flags & REDIS_CONNECTED)) {
        redisAsyncHandleRead(ac);
        return;
    }

    size = recv(c->fd, buf, sizeof(buf), 0);

    if (size == -1 && (ngx_socket_errno == NGX_EAGAIN
                       || ngx_socket_errno == NGX_EINTR))
    {
        return;
    }

    if (size <= 0) {
        /* EOF or an error: hiredis ends the connection */
        ngx_http_device_auth_redis_going(redis);
        redisAsyncHandleRead(ac);
        return;
    }

    n = ngx_device_auth_resp_scan(&redis->scan, buf, (size_t) size);

    if (n < 0) {
        ngx_http_device_auth_redis_reset(redis, "it sent bytes that are "
                                         "no reply the module asked for");
        return;
    }

    redis->replies += (ngx_uint_t) n;

    if (redis->replies > redis->sent) {
        ngx_http_device_auth_redis_reset(redis, "it sent a reply that "
                                         "nobody asked for");
        return;
    }

    if (redisReaderFeed(ac->c.reader, (char *) buf, (size_t) size)
        != REDIS_OK)
    {
        ngx_http_device_auth_redis_reset(redis, "cannot buffer its reply");
        return;
    }

    redisProcessCallbacks(ac);
}


static void
ngx_http_device_auth_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t              *c;
    ngx_http_device_auth_redis_t  *redis;

    c = ev->data;
    redis = c->data;

    if (redis->ac) {
        redis->writing = 1;
        redisAsyncHandleWrite(redis->ac);
        redis->writing = 0;
    }
}


/*
 * hiredis calls addRead after every read and addWrite for every command:
 * the events are level-triggered and added once.
 *
 * Once connected, the socket is nearly always writable, so addWrite posts
 * the write event instead: the commands that the requests of one event
 * loop iteration queue go out in one write at its end, with no epoll_ctl
 * and no extra trip through epoll_wait.  A connect in progress, or a write
 * that could not finish (addWrite from within HandleWrite), waits for
 * writability in epoll.
 */

static void
ngx_http_device_auth_redis_add_read(void *data)
{
    ngx_http_device_auth_redis_t *redis = data;

    ngx_event_t  *rev;

    if (redis->conn == NULL) {
        return;
    }

    rev = redis->conn->read;

    if (!rev->active
        && ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, redis->log, 0,
                      "device_auth: cannot add redis read event");
    }
}


static void
ngx_http_device_auth_redis_del_read(void *data)
{
    ngx_http_device_auth_redis_t *redis = data;

    ngx_event_t  *rev;

    if (redis->conn == NULL) {
        return;
    }

    rev = redis->conn->read;

    if (rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_device_auth_redis_add_write(void *data)
{
    ngx_http_device_auth_redis_t *redis = data;

    ngx_event_t  *wev;

    if (redis->conn == NULL) {
        return;
    }

    wev = redis->conn->write;

    if ((redis->ac->c.flags & REDIS_CONNECTED) && !redis->writing) {

        if (!wev->active && !wev->posted) {
            ngx_post_event(wev, &ngx_posted_events);
        }

        return;
    }

    if (!wev->active
        && ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, redis->log, 0,
                      "device_auth: cannot add redis write event");
    }
}


static void
ngx_http_device_auth_redis_del_write(void *data)
{
    ngx_http_device_auth_redis_t *redis = data;

    ngx_event_t  *wev;

    if (redis->conn == NULL) {
        return;
    }

    wev = redis->conn->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context and closes the socket right after this */

static void
ngx_http_device_auth_redis_cleanup(void *data)
{
    ngx_http_device_auth_redis_t *redis = data;

    ngx_connection_t  *c;

    c = redis->conn;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
    }

    if (redis->timeout.timer_set) {
        ngx_del_timer(&redis->timeout);
    }

    if (redis->ping.timer_set) {
        ngx_del_timer(&redis->ping);
    }

    redis->conn = NULL;
    redis->ac = NULL;
    redis->inflight = 0;
    redis->tracking = -1;

    ngx_http_device_auth_redis_schedule(redis);

    /* hiredis called back what was in flight; the owner hears of it */
    redis->handlers.lost(redis->handlers.data);
}
