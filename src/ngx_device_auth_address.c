
/*
 * device_auth_redis <address> [<address>...] [db=<n>] [password=<p>]
 *     [user=<u>] [sentinel=<master> [sentinel_password=<p>]
 *     [sentinel_user=<u>] | cluster]
 *
 * An address is an IP literal with a port ("127.0.0.1:6379",
 * "[::1]:6379") or, for one Redis only, "unix:/path": a host name would
 * need a DNS lookup, which would block a worker, so none is accepted.
 * Several addresses are the sentinels to ask for the master ("sentinel=")
 * or seeds of a Redis Cluster ("cluster").
 */


#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "ngx_device_auth_address.h"


#define NGX_DEVICE_AUTH_ADDR_SHOW(len)  (int) ((len) > 64 ? 64 : (len))


typedef struct {
    const char  *name;
    size_t       len;
    size_t       size;
    size_t       offset;
} ngx_device_auth_address_opt_t;


static int ngx_device_auth_address_one(const char *s, size_t len,
    ngx_device_auth_address_t *a, char *err, size_t errlen);
static int ngx_device_auth_address_hostport(const char *s, size_t len,
    ngx_device_auth_node_addr_t *node, char *err, size_t errlen);
static int ngx_device_auth_address_check(ngx_device_auth_address_t *a,
    int have_db, char *err, size_t errlen);
static int ngx_device_auth_address_name(const char *s, size_t len,
    char *dst);
static int ngx_device_auth_address_number(const char *s, size_t len,
    long max, long *n);
static int ngx_device_auth_address_copy(char *dst, size_t size,
    const char *s, size_t len);


/* the string options, and where they go */

static ngx_device_auth_address_opt_t  ngx_device_auth_address_opts[] = {
    { "password=", 9, NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX,
      offsetof(ngx_device_auth_address_t, password) },
    { "user=", 5, NGX_DEVICE_AUTH_ADDR_USER_MAX,
      offsetof(ngx_device_auth_address_t, user) },
    { "sentinel_password=", 18, NGX_DEVICE_AUTH_ADDR_PASSWORD_MAX,
      offsetof(ngx_device_auth_address_t, sentinel_password) },
    { "sentinel_user=", 14, NGX_DEVICE_AUTH_ADDR_USER_MAX,
      offsetof(ngx_device_auth_address_t, sentinel_user) },
    { NULL, 0, 0, 0 }
};


int
ngx_device_auth_address_parse(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen)
{
    if (ngx_device_auth_address_parse_topology(argc, argv, lens, a, err,
                                               errlen)
        != 0)
    {
        return -1;
    }

    if (a->topology != NGX_DEVICE_AUTH_ADDR_SINGLE) {
        snprintf(err, errlen, "one Redis only: several addresses, "
                 "\"sentinel=\" and \"cluster\" are for nginx");
        return -1;
    }

    return 0;
}


int
ngx_device_auth_address_parse_topology(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen)
{
    int                             i, j, have_db, have[4];
    char                           *dst;
    size_t                          len;
    const char                     *s;
    ngx_device_auth_address_opt_t  *o;

    memset(a, 0, sizeof(ngx_device_auth_address_t));
    memset(have, 0, sizeof(have));

    have_db = 0;

    for (i = 0; i < argc; i++) {
        s = argv[i];
        len = lens[i];

        if (len == 7 && memcmp(s, "cluster", 7) == 0) {
            if (a->topology == NGX_DEVICE_AUTH_ADDR_CLUSTER) {
                snprintf(err, errlen, "duplicate \"cluster\"");
                return -1;
            }

            if (a->topology == NGX_DEVICE_AUTH_ADDR_SENTINEL) {
                goto both;
            }

            a->topology = NGX_DEVICE_AUTH_ADDR_CLUSTER;
            continue;
        }

        if (len >= 9 && memcmp(s, "sentinel=", 9) == 0) {
            if (a->topology == NGX_DEVICE_AUTH_ADDR_CLUSTER) {
                goto both;
            }

            if (a->topology == NGX_DEVICE_AUTH_ADDR_SENTINEL
                || ngx_device_auth_address_name(s + 9, len - 9, a->sentinel)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"sentinel=\" "
                         "(a master name of at most %d printable "
                         "characters, no space)",
                         NGX_DEVICE_AUTH_ADDR_NAME_MAX - 1);
                return -1;
            }

            a->topology = NGX_DEVICE_AUTH_ADDR_SENTINEL;
            continue;
        }

        if (len > 3 && memcmp(s, "db=", 3) == 0) {
            if (have_db++
                || ngx_device_auth_address_number(s + 3, len - 3, 1 << 20,
                                                  &a->db)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"db=\"");
                return -1;
            }

            continue;
        }

        for (j = 0, o = ngx_device_auth_address_opts; o->name; j++, o++) {
            if (len > o->len && memcmp(s, o->name, o->len) == 0) {
                break;
            }
        }

        if (o->name) {
            dst = (char *) a + o->offset;

            if (have[j]++
                || ngx_device_auth_address_copy(dst, o->size, s + o->len,
                                                len - o->len)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"%s\"", o->name);
                return -1;
            }

            continue;
        }

        if (memchr(s, '=', len) != NULL) {
            snprintf(err, errlen, "unknown option \"%.*s\", expected "
                     "\"db=\", \"password=\", \"user=\", \"sentinel=\", "
                     "\"sentinel_password=\", \"sentinel_user=\" or "
                     "\"cluster\"", (int) (len > 32 ? 32 : len), s);
            return -1;
        }

        if (ngx_device_auth_address_one(s, len, a, err, errlen) != 0) {
            return -1;
        }
    }

    return ngx_device_auth_address_check(a, have_db, err, errlen);

both:

    snprintf(err, errlen, "\"sentinel=\" and \"cluster\" exclude each other");
    return -1;
}


/* an address: the next node, or the unix socket */

static int
ngx_device_auth_address_one(const char *s, size_t len,
    ngx_device_auth_address_t *a, char *err, size_t errlen)
{
    int                           i;
    ngx_device_auth_node_addr_t   node;

    if (memchr(s, '\0', len) != NULL) {
        snprintf(err, errlen, "invalid address");
        return -1;
    }

    if (a->nnodes == NGX_DEVICE_AUTH_ADDR_NODES_MAX) {
        snprintf(err, errlen, "more than %d addresses",
                 NGX_DEVICE_AUTH_ADDR_NODES_MAX);
        return -1;
    }

    if (len >= 5 && memcmp(s, "unix:", 5) == 0) {

        if (len < 7 || s[5] != '/' || len - 5 >= sizeof(a->path)) {
            snprintf(err, errlen, "unix socket path must be absolute and "
                     "shorter than %d characters", (int) sizeof(a->path));
            return -1;
        }

        if (a->nnodes) {
            goto local;
        }

        memcpy(a->path, s + 5, len - 5);
        a->path[len - 5] = '\0';
        a->nnodes = 1;

        return 0;
    }

    if (a->path[0]) {
        goto local;
    }

    if (ngx_device_auth_address_hostport(s, len, &node, err, errlen) != 0) {
        return -1;
    }

    for (i = 0; i < a->nnodes; i++) {
        if (a->nodes[i].port == node.port
            && strcmp(a->nodes[i].host, node.host) == 0)
        {
            snprintf(err, errlen, "duplicate address \"%.*s\"",
                     NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
            return -1;
        }
    }

    if (a->nnodes == 0) {
        a->port = node.port;
        memcpy(a->host, node.host, sizeof(a->host));
    }

    a->nodes[a->nnodes++] = node;

    return 0;

local:

    snprintf(err, errlen, "a \"unix:\" address is for one Redis alone; "
             "sentinels and cluster nodes are \"ip:port\"");
    return -1;
}


/* what the options and addresses make together */

static int
ngx_device_auth_address_check(ngx_device_auth_address_t *a, int have_db,
    char *err, size_t errlen)
{
    if (a->nnodes == 0) {
        snprintf(err, errlen, "no address");
        return -1;
    }

    if (a->user[0] && !a->password[0]) {
        snprintf(err, errlen, "\"user=\" needs \"password=\"");
        return -1;
    }

    if (a->sentinel_user[0] && !a->sentinel_password[0]) {
        snprintf(err, errlen, "\"sentinel_user=\" needs "
                 "\"sentinel_password=\"");
        return -1;
    }

    if (a->sentinel_password[0]
        && a->topology != NGX_DEVICE_AUTH_ADDR_SENTINEL)
    {
        snprintf(err, errlen, "\"sentinel_password=\" needs \"sentinel=\"");
        return -1;
    }

    if (a->topology == NGX_DEVICE_AUTH_ADDR_CLUSTER && have_db) {
        snprintf(err, errlen, "\"db=\" cannot be used with \"cluster\": a "
                 "Redis Cluster has database 0 only");
        return -1;
    }

    if (a->topology == NGX_DEVICE_AUTH_ADDR_SINGLE && a->nnodes > 1) {
        snprintf(err, errlen, "several addresses need \"sentinel=<master "
                 "name>\" (they are sentinels) or \"cluster\" (they are "
                 "cluster nodes)");
        return -1;
    }

    if (a->topology != NGX_DEVICE_AUTH_ADDR_SINGLE && a->path[0]) {
        snprintf(err, errlen, "a \"unix:\" address is for one Redis alone; "
                 "sentinels and cluster nodes are \"ip:port\"");
        return -1;
    }

    return 0;
}


int
ngx_device_auth_address_node(const char *s, size_t len,
    ngx_device_auth_node_addr_t *node)
{
    char  err[8];

    if (memchr(s, '\0', len) != NULL) {
        return -1;
    }

    return ngx_device_auth_address_hostport(s, len, node, err, sizeof(err));
}


/* "ip:port" or "[ipv6]:port" */

static int
ngx_device_auth_address_hostport(const char *s, size_t len,
    ngx_device_auth_node_addr_t *node, char *err, size_t errlen)
{
    int             i;
    long            port;
    size_t          hlen;
    const char     *colon, *host;
    unsigned char   buf[sizeof(struct in6_addr)];

    memset(node, 0, sizeof(ngx_device_auth_node_addr_t));

    colon = NULL;

    if (len && s[0] == '[') {
        host = s + 1;
        colon = memchr(s, ']', len);

        if (colon == NULL || colon + 1 >= s + len || colon[1] != ':') {
            snprintf(err, errlen, "invalid address \"%.*s\", expected "
                     "\"[ipv6]:port\"", NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
            return -1;
        }

        hlen = (size_t) (colon - host);
        colon++;

    } else {
        host = s;

        for (i = (int) len - 1; i >= 0; i--) {
            if (s[i] == ':') {
                colon = s + i;
                break;
            }
        }

        if (colon == NULL) {
            snprintf(err, errlen, "invalid address \"%.*s\", expected "
                     "\"ip:port\" or \"unix:/path\"",
                     NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
            return -1;
        }

        hlen = (size_t) (colon - host);
    }

    if (hlen == 0 || hlen >= sizeof(node->host)) {
        snprintf(err, errlen, "invalid address \"%.*s\"",
                 NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
        return -1;
    }

    memcpy(node->host, host, hlen);
    node->host[hlen] = '\0';

    /* "2001:db8::1:80" is ambiguous: IPv6 needs its brackets */

    if (s[0] != '[' && memchr(node->host, ':', hlen) != NULL) {
        snprintf(err, errlen, "invalid address \"%.*s\", an IPv6 "
                 "address is written \"[ipv6]:port\"",
                 NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
        return -1;
    }

    if (s[0] == '[' && memchr(node->host, ':', hlen) == NULL) {
        snprintf(err, errlen, "invalid address \"%.*s\", brackets are "
                 "for IPv6 addresses", NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
        return -1;
    }

    if (inet_pton(AF_INET, node->host, buf) != 1
        && inet_pton(AF_INET6, node->host, buf) != 1)
    {
        snprintf(err, errlen, "\"%s\" is not an IP address (host names "
                 "would need a blocking DNS lookup)", node->host);
        return -1;
    }

    if (ngx_device_auth_address_number(colon + 1,
                                       (size_t) (s + len - colon - 1),
                                       65535, &port)
        != 0 || port == 0)
    {
        snprintf(err, errlen, "invalid port in \"%.*s\"",
                 NGX_DEVICE_AUTH_ADDR_SHOW(len), s);
        return -1;
    }

    node->port = (int) port;

    return 0;
}


/* a sentinel's master name: printable, no space (messages split at it) */

static int
ngx_device_auth_address_name(const char *s, size_t len, char *dst)
{
    size_t  i;

    if (len == 0 || len >= NGX_DEVICE_AUTH_ADDR_NAME_MAX) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return -1;
        }
    }

    memcpy(dst, s, len);
    dst[len] = '\0';

    return 0;
}


static int
ngx_device_auth_address_number(const char *s, size_t len, long max, long *n)
{
    size_t  i;

    if (len == 0 || len > 9) {
        return -1;
    }

    *n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *n = *n * 10 + (s[i] - '0');
    }

    return *n > max ? -1 : 0;
}


static int
ngx_device_auth_address_copy(char *dst, size_t size, const char *s,
    size_t len)
{
    if (len == 0 || len >= size || memchr(s, '\0', len) != NULL) {
        return -1;
    }

    memcpy(dst, s, len);
    dst[len] = '\0';

    return 0;
}
