
/*
 * What Redis Sentinel and Redis Cluster answer about where the data is.
 *
 * ROLE: ["master", offset, [replicas]], ["slave", host, port, state,
 * offset], ["sentinel", [masters]].  SENTINEL get-master-addr-by-name:
 * [ip, port], or a nil array when the sentinel knows no such master.  The
 * sentinel's "+switch-master" channel (RESP2): ["subscribe", channel, n],
 * ["message", channel, "<name> <old ip> <old port> <new ip> <new port>"],
 * ["pong", ""].  CLUSTER SLOTS: [[first, last, [ip, port, id, ...],
 * [replica]...]...].  Redirections: "-MOVED <slot> <ip>:<port>", "-ASK
 * <slot> <ip>:<port>", "-READONLY ...", "-CLUSTERDOWN ...", "-TRYAGAIN".
 *
 * Addresses must be IP literals: a host name (Sentinel's
 * "announce-hostnames", Cluster's "cluster-preferred-endpoint-type
 * hostname") would need a DNS lookup, which would block a worker.
 */


#include <string.h>
#include <arpa/inet.h>

#include "ngx_device_auth_topology.h"


static int ngx_device_auth_topology_is(const redisReply *r, const char *s);
static int ngx_device_auth_topology_prefix(const redisReply *r,
    const char *s);
static int ngx_device_auth_topology_int(const redisReply *r, long long min,
    long long max, long long *n);
static int ngx_device_auth_topology_words(const char *s, size_t len,
    const char **words, size_t *lens, int max);


int
ngx_device_auth_reply_role(const redisReply *reply)
{
    const redisReply  *e;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1 || reply->element == NULL)
    {
        return NGX_DEVICE_AUTH_ROLE_BAD;
    }

    e = reply->element[0];

    if (e == NULL) {
        return NGX_DEVICE_AUTH_ROLE_BAD;
    }

    if (ngx_device_auth_topology_is(e, "master")) {
        return NGX_DEVICE_AUTH_ROLE_MASTER;
    }

    if (ngx_device_auth_topology_is(e, "slave")
        || ngx_device_auth_topology_is(e, "replica"))
    {
        return NGX_DEVICE_AUTH_ROLE_REPLICA;
    }

    if (ngx_device_auth_topology_is(e, "sentinel")) {
        return NGX_DEVICE_AUTH_ROLE_SENTINEL;
    }

    return NGX_DEVICE_AUTH_ROLE_BAD;
}


int
ngx_device_auth_reply_master(const redisReply *reply,
    ngx_device_auth_node_addr_t *node)
{
    int                rc;
    const redisReply  *host, *port;

    memset(node, 0, sizeof(ngx_device_auth_node_addr_t));

    if (reply == NULL) {
        return NGX_DEVICE_AUTH_MASTER_BAD;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        return NGX_DEVICE_AUTH_MASTER_UNKNOWN;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element == NULL)
    {
        return NGX_DEVICE_AUTH_MASTER_BAD;
    }

    host = reply->element[0];
    port = reply->element[1];

    if (host == NULL || port == NULL || host->type != REDIS_REPLY_STRING
        || port->type != REDIS_REPLY_STRING || host->str == NULL
        || port->str == NULL)
    {
        return NGX_DEVICE_AUTH_MASTER_BAD;
    }

    rc = ngx_device_auth_node_from(host->str, host->len, port->str,
                                   port->len, node);

    if (rc == 1) {
        return NGX_DEVICE_AUTH_MASTER_HOSTNAME;
    }

    return rc == 0 ? NGX_DEVICE_AUTH_MASTER_KNOWN : NGX_DEVICE_AUTH_MASTER_BAD;
}


int
ngx_device_auth_reply_switch(const redisReply *reply, const char *name,
    ngx_device_auth_node_addr_t *node)
{
    size_t             i, lens[6];
    const char        *words[6];
    const redisReply  *e;

    memset(node, 0, sizeof(ngx_device_auth_node_addr_t));

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->element == NULL || reply->elements < 2)
    {
        return NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i] == NULL) {
            return NGX_DEVICE_AUTH_SWITCH_BAD;
        }
    }

    if (reply->elements == 2
        && ngx_device_auth_topology_is(reply->element[0], "pong"))
    {
        return NGX_DEVICE_AUTH_SWITCH_PONG;
    }

    if (reply->elements != 3
        || !ngx_device_auth_topology_is(reply->element[1],
                                        NGX_DEVICE_AUTH_SWITCH_CHANNEL))
    {
        return NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    e = reply->element[2];

    if (ngx_device_auth_topology_is(reply->element[0], "subscribe")) {
        return e->type == REDIS_REPLY_INTEGER
               ? NGX_DEVICE_AUTH_SWITCH_SUBSCRIBED : NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    if (!ngx_device_auth_topology_is(reply->element[0], "message")
        || e->type != REDIS_REPLY_STRING || e->str == NULL)
    {
        return NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    /* "<name> <old ip> <old port> <new ip> <new port>" */

    if (ngx_device_auth_topology_words(e->str, e->len, words, lens, 6) != 5) {
        return NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    if (lens[0] != strlen(name) || memcmp(words[0], name, lens[0]) != 0) {
        return NGX_DEVICE_AUTH_SWITCH_OTHER;
    }

    if (ngx_device_auth_node_from(words[3], lens[3], words[4], lens[4], node)
        != 0)
    {
        return NGX_DEVICE_AUTH_SWITCH_BAD;
    }

    return NGX_DEVICE_AUTH_SWITCH_MASTER;
}


/*
 * A redirection, with its slot and node (port 0: the node is not said, or
 * not as an IP address: ask for the slot map); NONE for any other reply.
 */

int
ngx_device_auth_reply_redirect(const redisReply *reply, int *slot,
    ngx_device_auth_node_addr_t *node)
{
    int          kind, n;
    size_t       lens[4];
    long long    v;
    const char  *words[4];

    *slot = -1;
    memset(node, 0, sizeof(ngx_device_auth_node_addr_t));

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || reply->str == NULL)
    {
        return NGX_DEVICE_AUTH_REDIRECT_NONE;
    }

    if (ngx_device_auth_topology_prefix(reply, "READONLY")) {
        return NGX_DEVICE_AUTH_REDIRECT_READONLY;
    }

    if (ngx_device_auth_topology_prefix(reply, "CLUSTERDOWN")) {
        return NGX_DEVICE_AUTH_REDIRECT_DOWN;
    }

    if (ngx_device_auth_topology_prefix(reply, "TRYAGAIN")) {
        return NGX_DEVICE_AUTH_REDIRECT_TRYAGAIN;
    }

    if (ngx_device_auth_topology_prefix(reply, "MOVED")) {
        kind = NGX_DEVICE_AUTH_REDIRECT_MOVED;

    } else if (ngx_device_auth_topology_prefix(reply, "ASK")) {
        kind = NGX_DEVICE_AUTH_REDIRECT_ASK;

    } else {
        return NGX_DEVICE_AUTH_REDIRECT_NONE;
    }

    n = ngx_device_auth_topology_words(reply->str, reply->len, words, lens,
                                       4);

    if (n != 3) {
        return kind;
    }

    v = 0;

    for (n = 0; n < (int) lens[1]; n++) {
        if (lens[1] > 5 || words[1][n] < '0' || words[1][n] > '9') {
            return kind;
        }

        v = v * 10 + (words[1][n] - '0');
    }

    if (lens[1] == 0 || v >= NGX_DEVICE_AUTH_SLOTS) {
        return kind;
    }

    *slot = (int) v;

    if (ngx_device_auth_address_node(words[2], lens[2], node) != 0) {
        memset(node, 0, sizeof(ngx_device_auth_node_addr_t));
    }

    return kind;
}


/*
 * CLUSTER SLOTS: the ranges and their primaries, at most "max"; 0, or -1
 * for a reply of another shape, a slot out of range, or a primary that is
 * not an IP address.
 */

int
ngx_device_auth_reply_slots(const redisReply *reply,
    ngx_device_auth_slot_range_t *ranges, size_t max, size_t *n)
{
    size_t             i;
    long long          first, last;
    const redisReply  *r, *node;

    *n = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || (reply->elements && reply->element == NULL))
    {
        return -1;
    }

    for (i = 0; i < reply->elements; i++) {
        r = reply->element[i];

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3
            || r->element == NULL || r->element[0] == NULL
            || r->element[1] == NULL || r->element[2] == NULL
            || ngx_device_auth_topology_int(r->element[0], 0,
                                            NGX_DEVICE_AUTH_SLOTS - 1, &first)
               != 0
            || ngx_device_auth_topology_int(r->element[1], first,
                                            NGX_DEVICE_AUTH_SLOTS - 1, &last)
               != 0)
        {
            return -1;
        }

        node = r->element[2];

        if (node->type != REDIS_REPLY_ARRAY || node->elements < 2
            || node->element == NULL || node->element[0] == NULL
            || node->element[1] == NULL
            || node->element[0]->type != REDIS_REPLY_STRING
            || node->element[0]->str == NULL
            || node->element[0]->len >= NGX_DEVICE_AUTH_ADDR_HOST_MAX
            || *n == max)
        {
            return -1;
        }

        ranges[*n].first = (int) first;
        ranges[*n].last = (int) last;

        if (ngx_device_auth_topology_int(node->element[1], 1, 65535, &last)
            != 0)
        {
            return -1;
        }

        memcpy(ranges[*n].node.host, node->element[0]->str,
               node->element[0]->len);
        ranges[*n].node.host[node->element[0]->len] = '\0';
        ranges[*n].node.port = (int) last;

        if (ngx_device_auth_node_from(ranges[*n].node.host,
                                      node->element[0]->len, NULL, 0,
                                      &ranges[*n].node)
            != 0)
        {
            return -1;
        }

        (*n)++;
    }

    return 0;
}


/*
 * An IP address and a port, as two strings, into a node: 0; 1 when the
 * host is a name; -1 when they are not an address.  port NULL: the port
 * is in node already.
 */

int
ngx_device_auth_node_from(const char *host, size_t host_len,
    const char *port, size_t port_len, ngx_device_auth_node_addr_t *node)
{
    size_t         i;
    long           p;
    unsigned char  buf[sizeof(struct in6_addr)];
    char           tmp[NGX_DEVICE_AUTH_ADDR_HOST_MAX];

    if (host_len == 0 || host_len >= sizeof(tmp)
        || memchr(host, '\0', host_len) != NULL)
    {
        return -1;
    }

    memcpy(tmp, host, host_len);
    tmp[host_len] = '\0';

    if (port) {
        if (port_len == 0 || port_len > 5) {
            return -1;
        }

        p = 0;

        for (i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9') {
                return -1;
            }

            p = p * 10 + (port[i] - '0');
        }

        if (p == 0 || p > 65535) {
            return -1;
        }

        node->port = (int) p;
    }

    if (inet_pton(AF_INET, tmp, buf) != 1
        && inet_pton(AF_INET6, tmp, buf) != 1)
    {
        for (i = 0; i < host_len; i++) {
            if (!((tmp[i] >= 'a' && tmp[i] <= 'z')
                  || (tmp[i] >= 'A' && tmp[i] <= 'Z')
                  || (tmp[i] >= '0' && tmp[i] <= '9')
                  || tmp[i] == '-' || tmp[i] == '.'))
            {
                return -1;
            }
        }

        return 1;
    }

    memcpy(node->host, tmp, host_len + 1);

    return 0;
}


static int
ngx_device_auth_topology_is(const redisReply *r, const char *s)
{
    size_t  len;

    len = strlen(s);

    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
           && r->str && r->len == len && memcmp(r->str, s, len) == 0;
}


/* an error reply whose first word is s */

static int
ngx_device_auth_topology_prefix(const redisReply *r, const char *s)
{
    size_t  len;

    len = strlen(s);

    return r->len >= len && memcmp(r->str, s, len) == 0
           && (r->len == len || r->str[len] == ' ');
}


static int
ngx_device_auth_topology_int(const redisReply *r, long long min,
    long long max, long long *n)
{
    if (r->type != REDIS_REPLY_INTEGER || r->integer < min
        || r->integer > max)
    {
        return -1;
    }

    *n = r->integer;

    return 0;
}


/* words separated by single spaces; how many (max + 1: too many) */

static int
ngx_device_auth_topology_words(const char *s, size_t len, const char **words,
    size_t *lens, int max)
{
    int          n;
    const char  *p, *end, *sp;

    n = 0;
    p = s;
    end = s + len;

    while (p < end) {
        if (n == max) {
            return max + 1;
        }

        sp = memchr(p, ' ', (size_t) (end - p));

        words[n] = p;
        lens[n] = (size_t) ((sp ? sp : end) - p);
        n++;

        if (sp == NULL) {
            break;
        }

        p = sp + 1;
    }

    return n;
}
