
/*
 * The fleet's figures at the edge.
 *
 * Keys: once the link first serves after a start or a reload, worker 0
 * counts the revoked and the registered keys under the prefix with SCAN
 * on its command connection, one step of COUNT 500 at a time (the next
 * step is sent when the previous one answered), pipelined with the
 * lookups like any command: a request never waits for it, and Redis is
 * never blocked (SCAN does a bounded amount of work per call).  The count
 * is logged once and kept as a metric; a lost connection starts it again.
 *
 * Distinct devices: each TLS connection of a device adds its serial to
 * the day's HyperLogLogs (UTC, the edge's clock), the fleet's
 * "<prefix>devices:<YYYY-MM-DD>" and this edge's
 * "<prefix>devices:<YYYY-MM-DD>:<edge>", once per connection, pipelined
 * and not waited for, like the events.  Worker 0 reads both with PFCOUNT
 * every device_auth_stats_interval for the metrics, and keeps them for 40
 * days (EXPIRE).
 *
 * With a Redis Cluster each day's key is in a slot of its own: the
 * commands go to its node (a node not connected yet: not counted then),
 * the map follows a -MOVED; the keys are spread over the primaries, so
 * the SCAN count is not made.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_stats.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_http_device_auth_log.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_device_auth_topology.h"
#include "ngx_device_auth_keys.h"
#include "ngx_device_auth_reply.h"
#include "ngx_device_auth_resp.h"


#define NGX_HTTP_DEVICE_AUTH_SCAN_COUNT   "500"
#define NGX_HTTP_DEVICE_AUTH_DAYS_TTL     "3456000"     /* 40 days */
#define NGX_HTTP_DEVICE_AUTH_DATE_LEN     10            /* YYYY-MM-DD */
#define NGX_HTTP_DEVICE_AUTH_DAY_ID_MAX   (NGX_HTTP_DEVICE_AUTH_DATE_LEN + 66)


static void ngx_http_device_auth_stats_scan(ngx_http_device_auth_link_t *link);
static void ngx_http_device_auth_stats_scan_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_stats_read(ngx_event_t *ev);
static void ngx_http_device_auth_stats_fleet_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_stats_edge_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_device_auth_stats_count(ngx_http_device_auth_link_t *link,
    void *r, ngx_uint_t which);
static ngx_uint_t ngx_http_device_auth_stats_moved(
    ngx_http_device_auth_link_t *link, void *r);
static void ngx_http_device_auth_stats_pfadd_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static size_t ngx_http_device_auth_stats_day(ngx_http_device_auth_link_t *link,
    u_char *id, ngx_uint_t edge);
static ngx_int_t ngx_http_device_auth_stats_send(
    ngx_http_device_auth_link_t *link, redisCallbackFn *fn,
    ngx_device_auth_resp_t *cmd, u_char *day, size_t day_len);


void
ngx_http_device_auth_stats_init(ngx_http_device_auth_link_t *link)
{
    ngx_http_device_auth_stats_t  *st;

    st = &link->stats;

    ngx_memzero(st, sizeof(ngx_http_device_auth_stats_t));

    st->timer.handler = ngx_http_device_auth_stats_read;
    st->timer.data = link;
    st->timer.log = link->log;
    st->timer.cancelable = 1;
}


void
ngx_http_device_auth_stats_exit(ngx_http_device_auth_link_t *link)
{
    if (link->stats.timer.timer_set) {
        ngx_del_timer(&link->stats.timer);
    }
}


/* the link serves: worker 0 counts the keys once, and reads the days */

void
ngx_http_device_auth_stats_ready(ngx_http_device_auth_link_t *link)
{
    ngx_http_device_auth_stats_t  *st;

    st = &link->stats;

    if (ngx_worker != 0 || link->exiting) {
        return;
    }

    if (link->cluster) {
        /* the keys are spread over the primaries: no count */
        st->counted = 1;
    }

    if (!st->counted && !st->scanning) {
        st->cursor = 0;
        st->revoked = 0;
        st->registered = 0;
        st->keys = 0;
        st->steps = 0;
        st->start = ngx_current_msec;

        ngx_http_device_auth_stats_scan(link);
    }

    if (!st->timer.timer_set) {
        ngx_add_timer(&st->timer, 1);
    }
}


/* SCAN <cursor> MATCH <prefix>{*}:* COUNT 500, the prefix's glob escaped */

static void
ngx_http_device_auth_stats_scan(ngx_http_device_auth_link_t *link)
{
    u_char                            *p, c;
    size_t                             i;
    ngx_device_auth_resp_t             cmd;
    ngx_http_device_auth_main_conf_t  *dmcf;
    u_char                             num[NGX_INT64_LEN];
    u_char                             match[2 * 128 + 8];
    u_char                             buf[512];

    dmcf = link->conf;

    p = match;

    for (i = 0; i < dmcf->redis_prefix.len; i++) {
        c = dmcf->redis_prefix.data[i];

        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
            *p++ = '\\';
        }

        *p++ = c;
    }

    p = ngx_cpymem(p, "{*}:*", 5);

    ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
    ngx_device_auth_resp_array(&cmd, 6);
    ngx_device_auth_resp_bulk(&cmd, "SCAN", 4);
    ngx_device_auth_resp_bulk(&cmd, num,
                              ngx_sprintf(num, "%uL",
                                          (uint64_t) link->stats.cursor)
                              - num);
    ngx_device_auth_resp_bulk(&cmd, "MATCH", 5);
    ngx_device_auth_resp_bulk(&cmd, match, p - match);
    ngx_device_auth_resp_bulk(&cmd, "COUNT", 5);
    ngx_device_auth_resp_bulk(&cmd, NGX_HTTP_DEVICE_AUTH_SCAN_COUNT,
                              sizeof(NGX_HTTP_DEVICE_AUTH_SCAN_COUNT) - 1);

    if (ngx_http_device_auth_stats_send(link,
                                        ngx_http_device_auth_stats_scan_reply,
                                        &cmd, NULL, 0)
        == NGX_OK)
    {
        link->stats.scanning = 1;
    }
}


static void
ngx_http_device_auth_stats_scan_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_link_t *link = privdata;

    u_char                            *p, *last;
    size_t                             i, n, len;
    redisReply                        *reply = r;
    ngx_msec_t                         ms;
    const redisReply *const           *keys;
    ngx_http_device_auth_stats_t      *st;
    ngx_http_device_auth_main_conf_t  *dmcf;
    u_char                             line[NGX_MAX_ERROR_STR];

    st = &link->stats;
    dmcf = link->conf;
    st->scanning = 0;

    if (reply == NULL || link->exiting) {
        /* the connection is lost: counted again from the start */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "device_auth: cannot count the keys in redis at "
                      "\"%V\": %*s", &dmcf->redis_addr,
                      ngx_min(reply->len, 128), reply->str);
        st->counted = 1;
        return;
    }

    if (ngx_device_auth_reply_scan(reply, &st->cursor, &keys, &n) != 0) {
        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "device_auth: cannot count the keys in redis at "
                      "\"%V\": unexpected reply to SCAN", &dmcf->redis_addr);
        st->counted = 1;
        return;
    }

    st->steps++;

    for (i = 0; i < n; i++) {
        len = keys[i]->len;
        st->keys++;

        if (len > 9 && ngx_strncmp(keys[i]->str + len - 9, "}:revoked", 9)
                       == 0)
        {
            st->revoked++;

        } else if (len > 12
                   && ngx_strncmp(keys[i]->str + len - 12, "}:registered",
                                  12)
                      == 0)
        {
            st->registered++;
        }
    }

    if (st->cursor != 0) {
        ngx_http_device_auth_stats_scan(link);
        return;
    }

    st->counted = 1;

    ngx_http_device_auth_metrics_keys(dmcf, st->revoked, st->registered);

    ms = ngx_current_msec - st->start;

    p = line;
    last = line + sizeof(line);

    p = ngx_slprintf(p, last, "redis=");
    p = ngx_http_device_auth_log_value(p, last, dmcf->redis_addr.data,
                                       dmcf->redis_addr.len);
    p = ngx_slprintf(p, last, " db=%i prefix=", dmcf->redis_db);
    p = ngx_http_device_auth_log_value(p, last, dmcf->redis_prefix.data,
                                       dmcf->redis_prefix.len);
    p = ngx_slprintf(p, last, " revoked=%ui registered=%ui device_keys=%ui "
                     "scan_steps=%ui scan_seconds=%M.%03M", st->revoked,
                     st->registered, st->keys, st->steps, ms / 1000,
                     ms % 1000);

    ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                  "device_auth: keys counted: %*s", (size_t) (p - line),
                  line);
}


/* every device_auth_stats_interval: the day's distinct devices */

static void
ngx_http_device_auth_stats_read(ngx_event_t *ev)
{
    ngx_http_device_auth_link_t *link = ev->data;

    size_t                         i, len;
    ngx_uint_t                     state;
    ngx_device_auth_resp_t         cmd;
    ngx_http_device_auth_stats_t  *st;
    u_char                         id[NGX_HTTP_DEVICE_AUTH_DAY_ID_MAX];
    u_char                         buf[512];

    st = &link->stats;

    if (link->exiting) {
        return;
    }

    ngx_add_timer(&st->timer, link->conf->stats_interval);

    state = ngx_http_device_auth_link_state(link);

    /* with a cluster, each key's node decides (stats_send()) */

    if (st->reading
        || (link->cluster == NULL
            && state != NGX_HTTP_DEVICE_AUTH_LINK_UP
            && state != NGX_HTTP_DEVICE_AUTH_LINK_UNTRACKED))
    {
        return;
    }

    st->got = 0;
    st->fleet = 0;
    st->edge = 0;

    for (i = 0; i < 2; i++) {
        len = ngx_http_device_auth_stats_day(link, id, i);

        ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
        ngx_device_auth_resp_array(&cmd, 2);
        ngx_device_auth_resp_bulk(&cmd, "PFCOUNT", 7);
        ngx_device_auth_key_write(&cmd, link->conf->redis_prefix.data,
                                  link->conf->redis_prefix.len,
                                  NGX_DEVICE_AUTH_KEY_DEVICES, id, len);

        if (ngx_http_device_auth_stats_send(link,
                                   i ? ngx_http_device_auth_stats_edge_reply
                                     : ngx_http_device_auth_stats_fleet_reply,
                                   &cmd, id, len)
            != NGX_OK)
        {
            return;
        }

        /* kept 40 days after they were last read */

        ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
        ngx_device_auth_resp_array(&cmd, 3);
        ngx_device_auth_resp_bulk(&cmd, "EXPIRE", 6);
        ngx_device_auth_key_write(&cmd, link->conf->redis_prefix.data,
                                  link->conf->redis_prefix.len,
                                  NGX_DEVICE_AUTH_KEY_DEVICES, id, len);
        ngx_device_auth_resp_bulk(&cmd, NGX_HTTP_DEVICE_AUTH_DAYS_TTL,
                                  sizeof(NGX_HTTP_DEVICE_AUTH_DAYS_TTL) - 1);

        if (ngx_http_device_auth_stats_send(link, NULL, &cmd, id, len)
            != NGX_OK)
        {
            return;
        }
    }

    /* both asked: their replies, on one node or two, end the read */

    st->reading = 1;
}


static void
ngx_http_device_auth_stats_fleet_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_stats_count(privdata, r, 1);
}


static void
ngx_http_device_auth_stats_edge_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_stats_count(privdata, r, 2);
}


/* the fleet's count (1) or this edge's (2): the metrics once both came */

static void
ngx_http_device_auth_stats_count(ngx_http_device_auth_link_t *link, void *r,
    ngx_uint_t which)
{
    long long                      n;
    ngx_http_device_auth_stats_t  *st;

    st = &link->stats;

    if (r == NULL || link->exiting || !st->reading) {
        st->reading = 0;
        return;
    }

    if (ngx_http_device_auth_stats_moved(link, r)
        || ngx_device_auth_reply_integer(r, &n) != 0)
    {
        n = 0;
    }

    if (which == 1) {
        st->fleet = (ngx_uint_t) n;

    } else {
        st->edge = (ngx_uint_t) n;
    }

    st->got |= which;

    if (st->got != 3) {
        return;
    }

    st->reading = 0;

    ngx_http_device_auth_metrics_devices(link->conf, st->fleet, st->edge);
}


/* a cluster's -MOVED: the slot map follows, nothing else is said */

static ngx_uint_t
ngx_http_device_auth_stats_moved(ngx_http_device_auth_link_t *link, void *r)
{
    int                          kind, slot;
    ngx_device_auth_node_addr_t  addr;

    if (link->cluster == NULL) {
        return 0;
    }

    kind = ngx_device_auth_reply_redirect(r, &slot, &addr);

    if (kind == NGX_DEVICE_AUTH_REDIRECT_MOVED) {
        (void) ngx_http_device_auth_cluster_moved(link->cluster, kind, slot,
                                                  &addr);
    }

    return kind != NGX_DEVICE_AUTH_REDIRECT_NONE;
}


/*
 * A device's first request on a connection: its serial goes into the
 * day's HyperLogLogs, the fleet's and this edge's; nobody waits
 */

ngx_int_t
ngx_http_device_auth_stats_device(ngx_http_device_auth_link_t *link,
    ngx_str_t *serial)
{
    size_t                  i, len;
    ngx_device_auth_resp_t  cmd;
    u_char                  id[NGX_HTTP_DEVICE_AUTH_DAY_ID_MAX];
    u_char                  buf[512];

    for (i = 0; i < 2; i++) {
        len = ngx_http_device_auth_stats_day(link, id, i);

        ngx_device_auth_resp_init(&cmd, buf, sizeof(buf));
        ngx_device_auth_resp_array(&cmd, 3);
        ngx_device_auth_resp_bulk(&cmd, "PFADD", 5);
        ngx_device_auth_key_write(&cmd, link->conf->redis_prefix.data,
                                  link->conf->redis_prefix.len,
                                  NGX_DEVICE_AUTH_KEY_DEVICES, id, len);
        ngx_device_auth_resp_bulk(&cmd, serial->data, serial->len);

        if (ngx_http_device_auth_stats_send(link,
                                       ngx_http_device_auth_stats_pfadd_reply,
                                       &cmd, id, len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static void
ngx_http_device_auth_stats_pfadd_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_device_auth_link_t *link = privdata;

    redisReply  *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR && !link->stats.refused
        && !ngx_http_device_auth_stats_moved(link, r))
    {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "device_auth: the day's devices not counted: %*s",
                      ngx_min(reply->len, 128), reply->str);
        link->stats.refused = 1;
    }
}


/* "YYYY-MM-DD", UTC; with the edge's name: "YYYY-MM-DD:<edge>" */

static size_t
ngx_http_device_auth_stats_day(ngx_http_device_auth_link_t *link, u_char *id,
    ngx_uint_t edge)
{
    u_char    *p;
    ngx_tm_t   tm;

    ngx_gmtime(ngx_time(), &tm);

    p = ngx_sprintf(id, "%4d-%02d-%02d", tm.ngx_tm_year, tm.ngx_tm_mon,
                    tm.ngx_tm_mday);

    if (edge) {
        p = ngx_sprintf(p, ":%V", &link->conf->edge);
    }

    return p - id;
}


/*
 * On the command connection; with a cluster, on that of the node of the
 * day's key (day: NULL for SCAN, not made then)
 */

static ngx_int_t
ngx_http_device_auth_stats_send(ngx_http_device_auth_link_t *link,
    redisCallbackFn *fn, ngx_device_auth_resp_t *cmd, u_char *day,
    size_t day_len)
{
    int                           slot;
    size_t                        len;
    ngx_http_device_auth_link_t  *nl;

    len = ngx_device_auth_resp_len(cmd);

    if (len == 0) {
        return NGX_ERROR;
    }

    nl = link;

    if (link->cluster) {
        if (day == NULL) {
            return NGX_DECLINED;
        }

        slot = ngx_device_auth_key_slot(link->conf->redis_prefix.data,
                                        link->conf->redis_prefix.len,
                                        NGX_DEVICE_AUTH_KEY_DEVICES, day,
                                        day_len);

        if (ngx_http_device_auth_link_route(link, slot, NULL, &nl) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    return ngx_http_device_auth_redis_send(&nl->cmd, fn, link, cmd->start,
                                           len);
}
