
/*
 * fuzz_topology: what Redis Sentinel and Redis Cluster answer about where
 * the data is (src/ngx_device_auth_topology.c), and key slots
 * (src/ngx_device_auth_slot.c).
 *
 * Input: RESP wire bytes, fed to hiredis' own reader; every reply it
 * returns (a pipeline gives several) is read as a ROLE reply, a sentinel's
 * "get-master-addr-by-name" reply, a message of its "+switch-master"
 * channel for the master "devices", a redirection (-MOVED, -ASK, ...) and
 * a CLUSTER SLOTS reply.  The input's bytes are also a key, whose slot is
 * computed, and a "host:port" string.
 *
 * Checked besides the sanitizers:
 *
 *   role      MASTER, REPLICA, SENTINEL exactly from an array whose first
 *             element is "master", "slave" or "replica", "sentinel";
 *   master    KNOWN only from an array of two strings, with an IP address
 *             (inet_pton) and a port 1..65535 in the node; UNKNOWN exactly
 *             from nil; HOSTNAME never with an address in the node;
 *   switch    MASTER only from ["message", "+switch-master", text] whose
 *             first word is "devices", with an IP address and port;
 *             SUBSCRIBED, PONG exactly from their shapes;
 *   redirect  MOVED, ASK only from an error reply starting so, a slot
 *             -1 or 0..16383, a node with a port only with an IP address;
 *             NONE for anything but an error;
 *   slots     on success, ranges first <= last in 0..16383, each with an
 *             IP address and a port 1..65535, at most as many as the
 *             reply's elements;
 *   slot      0..16383, equal to a bitwise CRC16 (XMODEM) of the key or of
 *             its hash tag computed here;
 *   node      "host:port" accepted only with an IP address and port.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_topology.h"
#include "ngx_device_auth_slot.h"
#include "fuzz_common.h"


#define FUZZ_MAX_ARRAY   4096
#define FUZZ_MAX_RANGES  64


static redisReplyObjectFunctions   fuzz_fns;
static void                     *(*fuzz_create_array)(const redisReadTask *,
                                                      int);


static int
fuzz_is(const redisReply *r, const char *s)
{
    return r && (r->type == REDIS_REPLY_STRING
                 || r->type == REDIS_REPLY_STATUS)
           && r->str && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}


static void
fuzz_check_node(const ngx_device_auth_node_addr_t *node, const char *what)
{
    unsigned char  buf[16];

    fuzz_assert(memchr(node->host, '\0', sizeof(node->host)) != NULL,
                "%s: host not terminated", what);
    fuzz_assert(node->port > 0 && node->port <= 65535, "%s: port %d", what,
                node->port);
    fuzz_assert(inet_pton(AF_INET, node->host, buf) == 1
                || inet_pton(AF_INET6, node->host, buf) == 1,
                "%s: \"%s\" is not an IP address", what, node->host);
}


static void
fuzz_parse(const redisReply *r)
{
    int                            rc, slot;
    size_t                         i, n;
    ngx_device_auth_node_addr_t    node;
    ngx_device_auth_slot_range_t   ranges[FUZZ_MAX_RANGES];

    /* ROLE */

    rc = ngx_device_auth_reply_role(r);

    fuzz_assert(rc >= NGX_DEVICE_AUTH_ROLE_BAD
                && rc <= NGX_DEVICE_AUTH_ROLE_SENTINEL, "role %d", rc);

    if (rc != NGX_DEVICE_AUTH_ROLE_BAD) {
        fuzz_assert(r->type == REDIS_REPLY_ARRAY && r->elements >= 1,
                    "a role from a reply of type %d", r->type);
        fuzz_assert(rc != NGX_DEVICE_AUTH_ROLE_MASTER
                    || fuzz_is(r->element[0], "master"), "master");
        fuzz_assert(rc != NGX_DEVICE_AUTH_ROLE_REPLICA
                    || fuzz_is(r->element[0], "slave")
                    || fuzz_is(r->element[0], "replica"), "replica");
        fuzz_assert(rc != NGX_DEVICE_AUTH_ROLE_SENTINEL
                    || fuzz_is(r->element[0], "sentinel"), "sentinel");
    }

    /* SENTINEL get-master-addr-by-name */

    memset(&node, 0xa5, sizeof(node));
    rc = ngx_device_auth_reply_master(r, &node);

    switch (rc) {

    case NGX_DEVICE_AUTH_MASTER_KNOWN:
        fuzz_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2,
                    "a master from a reply of type %d", r->type);
        fuzz_check_node(&node, "master");
        break;

    case NGX_DEVICE_AUTH_MASTER_UNKNOWN:
        fuzz_assert(r->type == REDIS_REPLY_NIL, "unknown from type %d",
                    r->type);
        break;

    case NGX_DEVICE_AUTH_MASTER_HOSTNAME:
    case NGX_DEVICE_AUTH_MASTER_BAD:
        break;

    default:
        fuzz_assert(0, "master %d", rc);
    }

    /* the "+switch-master" channel */

    memset(&node, 0xa5, sizeof(node));
    rc = ngx_device_auth_reply_switch(r, "devices", &node);

    switch (rc) {

    case NGX_DEVICE_AUTH_SWITCH_MASTER:
        fuzz_assert(r->elements == 3 && fuzz_is(r->element[0], "message")
                    && fuzz_is(r->element[1], "+switch-master")
                    && r->element[2]->type == REDIS_REPLY_STRING
                    && r->element[2]->len > 8
                    && memcmp(r->element[2]->str, "devices ", 8) == 0,
                    "a switch from another shape");
        fuzz_check_node(&node, "switch");
        break;

    case NGX_DEVICE_AUTH_SWITCH_SUBSCRIBED:
        fuzz_assert(r->elements == 3 && fuzz_is(r->element[0], "subscribe")
                    && r->element[2]->type == REDIS_REPLY_INTEGER,
                    "subscribed from another shape");
        break;

    case NGX_DEVICE_AUTH_SWITCH_PONG:
        fuzz_assert(r->elements == 2 && fuzz_is(r->element[0], "pong"),
                    "pong from another shape");
        break;

    case NGX_DEVICE_AUTH_SWITCH_OTHER:
    case NGX_DEVICE_AUTH_SWITCH_BAD:
        break;

    default:
        fuzz_assert(0, "switch %d", rc);
    }

    /* -MOVED, -ASK, ... */

    memset(&node, 0xa5, sizeof(node));
    rc = ngx_device_auth_reply_redirect(r, &slot, &node);

    fuzz_assert(rc >= NGX_DEVICE_AUTH_REDIRECT_NONE
                && rc <= NGX_DEVICE_AUTH_REDIRECT_TRYAGAIN, "redirect %d", rc);
    fuzz_assert(rc == NGX_DEVICE_AUTH_REDIRECT_NONE
                || r->type == REDIS_REPLY_ERROR, "a redirect from type %d",
                r->type);
    fuzz_assert(slot >= -1 && slot < NGX_DEVICE_AUTH_SLOTS, "slot %d", slot);

    if (rc == NGX_DEVICE_AUTH_REDIRECT_MOVED
        || rc == NGX_DEVICE_AUTH_REDIRECT_ASK)
    {
        fuzz_assert((r->len >= 5 && memcmp(r->str, "MOVED", 5) == 0)
                    || (r->len >= 3 && memcmp(r->str, "ASK", 3) == 0),
                    "a redirect from \"%.*s\"", (int) r->len, r->str);

        if (node.port) {
            fuzz_check_node(&node, "redirect");
        }
    }

    /* CLUSTER SLOTS */

    rc = ngx_device_auth_reply_slots(r, ranges, FUZZ_MAX_RANGES, &n);

    fuzz_assert(rc == 0 || rc == -1, "slots %d", rc);

    if (rc == 0) {
        fuzz_assert(r->type == REDIS_REPLY_ARRAY && n == r->elements
                    && n <= FUZZ_MAX_RANGES, "%zu ranges", n);

        for (i = 0; i < n; i++) {
            fuzz_assert(ranges[i].first >= 0
                        && ranges[i].first <= ranges[i].last
                        && ranges[i].last < NGX_DEVICE_AUTH_SLOTS,
                        "range %d-%d", ranges[i].first, ranges[i].last);
            fuzz_check_node(&ranges[i].node, "slots");
        }
    }
}


static void *
fuzz_capped_array(const redisReadTask *task, int elements)
{
    if (elements > FUZZ_MAX_ARRAY) {
        return NULL;
    }

    return fuzz_create_array(task, elements);
}


/* Redis' keyHashSlot(), bit by bit */

static int
fuzz_slot(const uint8_t *key, size_t len)
{
    int       b;
    size_t    i, s, e;
    uint16_t  crc;

    for (s = 0; s < len && key[s] != '{'; s++) { /* void */ }

    if (s < len) {
        for (e = s + 1; e < len && key[e] != '}'; e++) { /* void */ }

        if (e < len && e != s + 1) {
            key += s + 1;
            len = e - s - 1;
        }
    }

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) (key[i] << 8);

        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc & (NGX_DEVICE_AUTH_SLOTS - 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                           n, slot, rc;
    void                         *reply;
    char                         *copy;
    redisReader                  *reader;
    ngx_device_auth_node_addr_t   node;
    unsigned char                 buf[16];

    /* the input as a key */

    slot = ngx_device_auth_slot(data, size);

    fuzz_assert(slot >= 0 && slot < NGX_DEVICE_AUTH_SLOTS, "slot %d", slot);
    fuzz_assert(slot == fuzz_slot(data, size), "slot %d, Redis says %d",
                slot, fuzz_slot(data, size));

    /* as "host:port", in a buffer of exactly its size */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, data, size);
    memset(&node, 0xa5, sizeof(node));

    rc = ngx_device_auth_address_node(copy, size, &node);

    if (rc == 0) {
        fuzz_assert(node.port > 0 && node.port <= 65535, "port %d",
                    node.port);
        fuzz_assert(inet_pton(AF_INET, node.host, buf) == 1
                    || inet_pton(AF_INET6, node.host, buf) == 1,
                    "\"%s\" is not an IP address", node.host);
    }

    free(copy);

    /* as RESP */

    reader = redisReaderCreate();
    if (reader == NULL) {
        abort();
    }

    if (fuzz_create_array == NULL) {
        fuzz_fns = *reader->fn;
        fuzz_create_array = fuzz_fns.createArray;
        fuzz_fns.createArray = fuzz_capped_array;
    }

    reader->fn = &fuzz_fns;

    if (redisReaderFeed(reader, (const char *) data, size) == REDIS_OK) {

        for (n = 0; n < 1024; n++) {
            reply = NULL;

            if (redisReaderGetReply(reader, &reply) != REDIS_OK
                || reply == NULL)
            {
                break;
            }

            fuzz_parse(reply);
            freeReplyObject(reply);
        }
    }

    redisReaderFree(reader);

    return 0;
}
