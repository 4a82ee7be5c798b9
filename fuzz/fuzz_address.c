
/*
 * fuzz_address: the arguments of "device_auth_redis"
 * (src/ngx_device_auth_address.c).
 *
 * Input: the directive's arguments separated by '\n' (an argument may hold
 * any other byte, NUL included); an empty input is no argument at all.
 * Each argument is copied into a buffer of exactly its length, without a
 * terminating NUL, so that any read past "lens[i]" is caught by ASan.
 *
 * Checked besides the sanitizers: the result is the same with a large and
 * a tiny error buffer; a refusal comes with a terminated, non-empty error
 * message; an accepted address is an IP literal with a port in 1..65535
 * or an absolute unix socket path, db in 0..2^20, user only with a
 * password, all strings terminated within their fields.  The same input
 * is read by ngx_device_auth_address_parse_topology() (sentinels, cluster
 * seeds): 1 to 16 distinct IP addresses, a unix path only for one Redis,
 * several addresses only with "sentinel=" or "cluster", a master name of
 * printable characters without space, no "db=" with "cluster", whatever
 * the one-Redis parser accepts accepted alike.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "ngx_device_auth_address.h"
#include "fuzz_common.h"


#define FUZZ_MAX_ARGS  24


static void
fuzz_check_field(const char *s, size_t size, const char *what)
{
    fuzz_assert(memchr(s, '\0', size) != NULL, "%s not terminated", what);
}


static void
fuzz_check_node(ngx_device_auth_node_addr_t *node)
{
    unsigned char  buf[16];

    fuzz_check_field(node->host, sizeof(node->host), "node host");
    fuzz_assert(node->port > 0 && node->port <= 65535, "node port %d",
                node->port);
    fuzz_assert(inet_pton(AF_INET, node->host, buf) == 1
                || inet_pton(AF_INET6, node->host, buf) == 1,
                "node host \"%s\" is not an IP literal", node->host);
}


/* the topology parser: one Redis as above, or sentinels, or cluster seeds */

static void
fuzz_topology(int argc, const char *const *argv, size_t *lens, int single_rc,
    ngx_device_auth_address_t *single)
{
    int                         rc, i, j;
    char                        err[512];
    size_t                      k;
    ngx_device_auth_address_t   a;

    memset(&a, 0xa5, sizeof(a));

    rc = ngx_device_auth_address_parse_topology(argc, argv, lens, &a, err,
                                                sizeof(err));

    fuzz_assert(rc == 0 || rc == -1, "topology rc %d", rc);

    if (single_rc == 0) {
        fuzz_assert(rc == 0 && a.topology == NGX_DEVICE_AUTH_ADDR_SINGLE
                    && memcmp(&a, single, sizeof(a)) == 0,
                    "one Redis accepted alone, not by the topology parser");
    }

    if (rc != 0) {
        fuzz_assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
                    "topology refused without a message");
        return;
    }

    fuzz_check_field(a.sentinel, sizeof(a.sentinel), "sentinel");
    fuzz_check_field(a.sentinel_user, sizeof(a.sentinel_user),
                     "sentinel_user");
    fuzz_check_field(a.sentinel_password, sizeof(a.sentinel_password),
                     "sentinel_password");

    fuzz_assert(a.nnodes >= 1 && a.nnodes <= NGX_DEVICE_AUTH_ADDR_NODES_MAX,
                "%d addresses", a.nnodes);

    switch (a.topology) {

    case NGX_DEVICE_AUTH_ADDR_SINGLE:
        fuzz_assert(a.nnodes == 1, "one Redis with %d addresses", a.nnodes);
        fuzz_assert(a.sentinel[0] == '\0' && a.sentinel_password[0] == '\0',
                    "sentinel options for one Redis");
        fuzz_assert(single_rc == 0, "one Redis accepted by the topology "
                    "parser alone");
        break;

    case NGX_DEVICE_AUTH_ADDR_SENTINEL:
        fuzz_assert(a.sentinel[0] != '\0', "sentinels without a name");

        for (k = 0; a.sentinel[k]; k++) {
            fuzz_assert(a.sentinel[k] > ' ' && a.sentinel[k] <= '~',
                        "master name byte 0x%02x",
                        (unsigned char) a.sentinel[k]);
        }

        break;

    case NGX_DEVICE_AUTH_ADDR_CLUSTER:
        fuzz_assert(a.db == 0 && a.sentinel[0] == '\0',
                    "cluster with db %ld or a master name", a.db);
        break;

    default:
        fuzz_assert(0, "topology %d", a.topology);
    }

    if (a.topology != NGX_DEVICE_AUTH_ADDR_SINGLE || a.port) {
        fuzz_assert(a.path[0] == '\0', "unix path \"%s\" with topology %d",
                    a.path, a.topology);

        for (i = 0; i < a.nnodes; i++) {
            fuzz_check_node(&a.nodes[i]);

            for (j = 0; j < i; j++) {
                fuzz_assert(a.nodes[i].port != a.nodes[j].port
                            || strcmp(a.nodes[i].host, a.nodes[j].host) != 0,
                            "duplicate address %s:%d", a.nodes[i].host,
                            a.nodes[i].port);
            }
        }

        fuzz_assert(a.port == a.nodes[0].port
                    && strcmp(a.host, a.nodes[0].host) == 0,
                    "the first address differs from the first node");
    }

    fuzz_assert(a.user[0] == '\0' || a.password[0] != '\0',
                "user without a password");
    fuzz_assert(a.sentinel_user[0] == '\0' || a.sentinel_password[0] != '\0',
                "sentinel user without a password");
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                         argc, rc, rc2, i;
    char                       *argv[FUZZ_MAX_ARGS];
    char                        err[512], *tiny;
    size_t                      lens[FUZZ_MAX_ARGS], tiny_len, n;
    const uint8_t              *p, *end, *nl;
    unsigned char               buf[16];
    ngx_device_auth_address_t   a, a2;

    argc = 0;
    p = data;
    end = data + size;

    while (size && argc < FUZZ_MAX_ARGS) {
        nl = memchr(p, '\n', (size_t) (end - p));
        n = (size_t) ((nl ? nl : end) - p);

        /* exactly "n" bytes: no terminating NUL to lean on */
        argv[argc] = malloc(n ? n : 1);
        if (argv[argc] == NULL) {
            abort();
        }

        memcpy(argv[argc], p, n);
        lens[argc] = n;
        argc++;

        if (nl == NULL) {
            break;
        }

        p = nl + 1;
    }

    memset(err, 0xa5, sizeof(err));
    memset(&a, 0xa5, sizeof(a));

    rc = ngx_device_auth_address_parse(argc, (const char *const *) argv, lens,
                                       &a, err, sizeof(err));

    fuzz_assert(rc == 0 || rc == -1, "rc %d", rc);

    /* the same with an error buffer of a few bytes, exactly allocated */

    tiny_len = 1 + size % 8;
    tiny = malloc(tiny_len);
    if (tiny == NULL) {
        abort();
    }

    rc2 = ngx_device_auth_address_parse(argc, (const char *const *) argv,
                                        lens, &a2, tiny, tiny_len);

    fuzz_assert(rc == rc2, "rc %d with a large error buffer, %d with %zu "
                "bytes", rc, rc2, tiny_len);

    if (rc != 0) {
        fuzz_assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
                    "refused without a terminated error message");
        fuzz_assert(memchr(tiny, '\0', tiny_len) != NULL,
                    "tiny error buffer not terminated");
        goto done;
    }

    fuzz_assert(memcmp(&a, &a2, sizeof(a)) == 0,
                "two parses of the same arguments differ");

    fuzz_check_field(a.host, sizeof(a.host), "host");
    fuzz_check_field(a.path, sizeof(a.path), "path");
    fuzz_check_field(a.user, sizeof(a.user), "user");
    fuzz_check_field(a.password, sizeof(a.password), "password");

    fuzz_assert(argc >= 1 && argc <= 4, "accepted %d arguments", argc);

    if (a.port == 0) {
        fuzz_assert(a.path[0] == '/' && a.host[0] == '\0',
                    "unix socket \"%s\", host \"%s\"", a.path, a.host);

        /* the argument it came from, wherever it stands */
        for (i = 0; i < argc; i++) {
            if (lens[i] > 5 && memcmp(argv[i], "unix:", 5) == 0
                && strlen(a.path) == lens[i] - 5
                && memcmp(a.path, argv[i] + 5, lens[i] - 5) == 0)
            {
                break;
            }
        }

        fuzz_assert(i < argc, "unix socket path differs from the argument");

    } else {
        fuzz_assert(a.port > 0 && a.port <= 65535, "port %d", a.port);
        fuzz_assert(a.path[0] == '\0', "path \"%s\" with a port", a.path);
        fuzz_assert(inet_pton(AF_INET, a.host, buf) == 1
                    || inet_pton(AF_INET6, a.host, buf) == 1,
                    "host \"%s\" is not an IP literal", a.host);
    }

    fuzz_assert(a.db >= 0 && a.db <= (1 << 20), "db %ld", a.db);
    fuzz_assert(a.user[0] == '\0' || a.password[0] != '\0',
                "user without a password");

done:

    fuzz_topology(argc, (const char *const *) argv, lens, rc, &a);

    free(tiny);

    for (i = 0; i < argc; i++) {
        free(argv[i]);
    }

    return 0;
}
