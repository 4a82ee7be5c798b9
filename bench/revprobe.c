
/*
 * revprobe: how long a revocation written to Redis takes to be refused at
 * each edge (issue 10's "revocation latency").
 *
 * For each of -n revocations, a device of a fleet of its own (no other
 * client presents it): one keepalive TLS connection per edge URL, a few
 * requests that must answer 200 (the edge now holds the device's facts),
 * then requests back to back on every connection; once each connection
 * had --pre answers, "SET <prefix>{SN}:revoked revprobe" is written to
 * Redis.  The time from writing the SET to the arrival of the first 403
 * on a connection is the revocation latency at that edge.  It is an upper
 * bound: the edge refused somewhere within the round trip of that
 * request, whose distribution (all requests sent back to back) is
 * reported as the resolution.  Then the connections are closed (RST),
 * the key is deleted, and after --pause ms the next device is revoked.
 *
 * One thread, poll(); sockets blocking while a connection is set up and
 * non-blocking while the requests go back to back.
 */


#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lg_fleet.h"
#include "lg_http.h"
#include "lg_util.h"


#define RP_EDGES_MAX     8
#define RP_REQ_MAX       512
#define RP_KEY_MAX       256


enum {
    E_SEND = 0,
    E_READ,
    E_REFUSED
};


typedef struct {
    const char          *url;
    struct sockaddr_in   addr;
    char                 request[RP_REQ_MAX];
    int                  request_len;

    int                  fd;
    SSL                 *ssl;
    int                  state;
    int                  answers;        /* back-to-back answers so far */
    uint64_t             t_sent;
    lg_http_resp_t       resp;

    uint64_t            *lat;            /* per revocation, us */
    uint32_t             nlat;
    uint64_t             refused;
    uint64_t             timeouts;
    uint64_t             after_set;      /* 200s answered after the SET */
} rp_edge_t;


typedef struct {
    uint64_t            *v;
    uint32_t             n;
    uint32_t             size;
} rp_samples_t;


typedef struct {
    rp_edge_t            edges[RP_EDGES_MAX];
    int                  nedges;
    int                  rfd;             /* Redis */
    SSL_CTX             *ctx;
    lg_fleet_t           fl;
    const char          *prefix;
    int                  warm;
    int                  pre;
    double               timeout_ms;

    uint32_t             done;            /* revocations tried */
    uint64_t             errors;
    rp_samples_t         all;             /* until every edge refused */
    rp_samples_t         rtt;             /* back-to-back round trips */
    rp_samples_t         set;             /* the SET's round trip */
} rp_probe_t;


static int rp_revoke(rp_probe_t *p, uint32_t dev);
static int rp_warm(rp_probe_t *p, uint32_t dev, const char *serial);
static int rp_measure(rp_probe_t *p, const char *key, const char *serial,
    uint64_t *t_set);
static int rp_answer(rp_probe_t *p, rp_edge_t *e, int status, int set_sent,
    uint64_t t_set, const char *serial);
static void rp_print(rp_probe_t *p, uint64_t *lat, uint32_t nlat,
    uint64_t timeouts);
static int rp_json(rp_probe_t *p, const char *path, uint64_t *lat,
    uint32_t nlat, uint64_t timeouts, uint32_t first, double pause_ms);
static int rp_parse_url(const char *url, struct sockaddr_in *sin,
    char *hostport, size_t len);
static int rp_connect(struct sockaddr_in *sin);
static int rp_edge_open(SSL_CTX *ctx, lg_fleet_t *fl, uint32_t dev,
    rp_edge_t *e);
static void rp_edge_close(rp_edge_t *e);
static int rp_request_blocking(rp_edge_t *e);
static int rp_send(rp_edge_t *e, uint64_t now);
static int rp_read(rp_edge_t *e);
static int rp_redis(int fd, const char *cmd, const char *key,
    const char *value, const char *expect);
static int rp_redis_reply(int fd, const char *expect);
static int rp_add(rp_samples_t *s, uint64_t v);
static int rp_cmp(const void *a, const void *b);
static uint64_t rp_quantile(uint64_t *v, uint32_t n, double q);
static void rp_json_stats(FILE *f, const char *name, uint64_t *v,
    uint32_t n, const char *end);
static void rp_usage(FILE *f);
static void rp_on_signal(int signo);


static volatile sig_atomic_t  rp_stop;
static unsigned char          rp_rbuf[16384];


enum {
    OPT_SIGNER_CERT = 256,
    OPT_SIGNER_KEY,
    OPT_FLEET_CACHE,
    OPT_FIRST,
    OPT_REDIS,
    OPT_PREFIX,
    OPT_WARM,
    OPT_PRE,
    OPT_PAUSE,
    OPT_TLS,
    OPT_JSON
};


static struct option  rp_options[] = {
    { "revocations", required_argument, NULL, 'n' },
    { "fleet",       required_argument, NULL, 'N' },
    { "timeout",     required_argument, NULL, 't' },
    { "quiet",       no_argument,       NULL, 'q' },
    { "help",        no_argument,       NULL, 'h' },
    { "signer-cert", required_argument, NULL, OPT_SIGNER_CERT },
    { "signer-key",  required_argument, NULL, OPT_SIGNER_KEY },
    { "fleet-cache", required_argument, NULL, OPT_FLEET_CACHE },
    { "first",       required_argument, NULL, OPT_FIRST },
    { "redis",       required_argument, NULL, OPT_REDIS },
    { "prefix",      required_argument, NULL, OPT_PREFIX },
    { "warm",        required_argument, NULL, OPT_WARM },
    { "pre",         required_argument, NULL, OPT_PRE },
    { "pause",       required_argument, NULL, OPT_PAUSE },
    { "tls",         required_argument, NULL, OPT_TLS },
    { "json",        required_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 }
};


int
main(int argc, char **argv)
{
    int                  o, i, tls, quiet;
    char                 hostport[64];
    double               pause_ms;
    uint32_t             n, fleet_n, first, nlat, k;
    uint64_t            *lat, timeouts;
    rp_edge_t           *e;
    rp_probe_t          *p;
    struct timespec      ts;
    struct sockaddr_in   raddr;
    const char          *signer_cert, *signer_key, *fleet_cache, *redis;
    const char          *json;

    p = calloc(1, sizeof(rp_probe_t));
    if (p == NULL) {
        return 1;
    }

    n = 200;
    fleet_n = 1000;
    first = 0;
    quiet = 0;
    tls = TLS1_3_VERSION;
    pause_ms = 10;
    signer_cert = NULL;
    signer_key = NULL;
    fleet_cache = NULL;
    redis = NULL;
    json = NULL;
    p->prefix = "device_auth:";
    p->warm = 2;
    p->pre = 2;
    p->timeout_ms = 2000;

    while ((o = getopt_long(argc, argv, "n:N:t:qh", rp_options, NULL)) != -1)
    {
        switch (o) {

        case 'n':
            n = (uint32_t) lg_number("revocations", optarg, 1, 1e7);
            break;

        case 'N':
            fleet_n = (uint32_t) lg_number("fleet", optarg, 1, 1e7);
            break;

        case 't':
            p->timeout_ms = lg_number("timeout", optarg, 1, 1e7);
            break;

        case 'q':
            quiet = 1;
            break;

        case 'h':
            rp_usage(stdout);
            return 0;

        case OPT_SIGNER_CERT:
            signer_cert = optarg;
            break;

        case OPT_SIGNER_KEY:
            signer_key = optarg;
            break;

        case OPT_FLEET_CACHE:
            fleet_cache = optarg;
            break;

        case OPT_FIRST:
            first = (uint32_t) lg_number("first", optarg, 0, 4e9);
            break;

        case OPT_REDIS:
            redis = optarg;
            break;

        case OPT_PREFIX:
            p->prefix = optarg;
            break;

        case OPT_WARM:
            p->warm = (int) lg_number("warm", optarg, 1, 1000);
            break;

        case OPT_PRE:
            p->pre = (int) lg_number("pre", optarg, 1, 1000);
            break;

        case OPT_PAUSE:
            pause_ms = lg_number("pause", optarg, 0, 1e6);
            break;

        case OPT_TLS:
            if (strcmp(optarg, "1.2") == 0) {
                tls = TLS1_2_VERSION;

            } else if (strcmp(optarg, "1.3") == 0) {
                tls = TLS1_3_VERSION;

            } else {
                fprintf(stderr, "revprobe: --tls 1.2 or 1.3\n");
                return 2;
            }
            break;

        case OPT_JSON:
            json = optarg;
            break;

        default:
            rp_usage(stderr);
            return 2;
        }
    }

    p->nedges = argc - optind;

    if (signer_cert == NULL || signer_key == NULL || redis == NULL
        || p->nedges < 1 || p->nedges > RP_EDGES_MAX)
    {
        rp_usage(stderr);
        return 2;
    }

    if (rp_parse_url(redis, &raddr, hostport, sizeof(hostport)) != 0) {
        fprintf(stderr, "revprobe: bad --redis \"%s\" (IPv4:PORT)\n",
                redis);
        return 2;
    }

    for (i = 0; i < p->nedges; i++) {
        e = &p->edges[i];
        e->url = argv[optind + i];
        e->fd = -1;

        if (rp_parse_url(e->url, &e->addr, hostport, sizeof(hostport))
            != 0)
        {
            fprintf(stderr, "revprobe: bad URL \"%s\" "
                    "(https://IPv4:PORT/)\n", e->url);
            return 2;
        }

        e->request_len = lg_http_request(e->request, RP_REQ_MAX, "GET",
                                         hostport, "/", "");
        e->lat = calloc(n, sizeof(uint64_t));

        if (e->request_len < 0 || e->lat == NULL) {
            return 1;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, rp_on_signal);
    signal(SIGTERM, rp_on_signal);

    if (lg_fleet_open(&p->fl, signer_cert, signer_key, fleet_n, fleet_cache,
                      1, !quiet)
        != 0)
    {
        return 1;
    }

    /* every device is used once */
    p->fl.keep_parsed = 0;

    p->ctx = SSL_CTX_new(TLS_client_method());

    if (p->ctx == NULL
        || !SSL_CTX_set_min_proto_version(p->ctx, tls)
        || !SSL_CTX_set_max_proto_version(p->ctx, tls)
        || !SSL_CTX_set1_groups_list(p->ctx, "P-256"))
    {
        ERR_print_errors_fp(stderr);
        return 1;
    }

    SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(p->ctx, SSL_SESS_CACHE_OFF);

    p->rfd = rp_connect(&raddr);
    if (p->rfd == -1) {
        fprintf(stderr, "revprobe: redis %s: %s\n", redis, strerror(errno));
        return 1;
    }

    for (p->done = 0; p->done < n && !rp_stop; p->done++) {

        if (rp_revoke(p, (first + p->done) % p->fl.n) != 0) {
            p->errors++;
            p->done++;
            break;
        }

        if (pause_ms > 0) {
            ts.tv_sec = (time_t) (pause_ms / 1000);
            ts.tv_nsec = (long) ((pause_ms - ts.tv_sec * 1000.0) * 1e6);
            (void) nanosleep(&ts, NULL);
        }
    }

    /* the latencies of all edges together */

    nlat = 0;
    timeouts = 0;

    for (i = 0; i < p->nedges; i++) {
        nlat += p->edges[i].nlat;
        timeouts += p->edges[i].timeouts;
    }

    lat = calloc(nlat + 1, sizeof(uint64_t));
    if (lat == NULL) {
        return 1;
    }

    k = 0;

    for (i = 0; i < p->nedges; i++) {
        memcpy(lat + k, p->edges[i].lat, p->edges[i].nlat * sizeof(uint64_t));
        k += p->edges[i].nlat;
    }

    if (!quiet) {
        rp_print(p, lat, nlat, timeouts);
    }

    if (json && rp_json(p, json, lat, nlat, timeouts, first, pause_ms) != 0)
    {
        return 1;
    }

    return p->errors ? 1 : 0;
}


/*
 * One revocation: the device's connections, its facts cached at every
 * edge, then the SET and the requests back to back until every edge
 * refused (or the timeout), the connections closed and the key deleted.
 * Returns -1 when the probe cannot go on.
 */

static int
rp_revoke(rp_probe_t *p, uint32_t dev)
{
    int         i, rc, all, measured;
    char        serial[LG_SERIAL_LEN + 1], key[RP_KEY_MAX];
    uint64_t    t_set, worst;
    rp_edge_t  *e;

    lg_fleet_serial(&p->fl, dev, serial);
    snprintf(key, sizeof(key), "%s{%s}:revoked", p->prefix, serial);

    for (i = 0; i < p->nedges; i++) {
        p->edges[i].state = E_SEND;
        p->edges[i].answers = 0;
    }

    t_set = 0;
    rc = rp_warm(p, dev, serial);

    if (rc == 0) {
        rc = rp_measure(p, key, serial, &t_set);
    }

    measured = (rc == 0 && t_set != 0);
    all = measured;
    worst = 0;

    for (i = 0; i < p->nedges; i++) {
        e = &p->edges[i];

        if (e->state == E_REFUSED) {
            if (e->lat[e->nlat - 1] > worst) {
                worst = e->lat[e->nlat - 1];
            }

        } else if (measured) {
            e->timeouts++;
            all = 0;
        }

        rp_edge_close(e);
    }

    if (all && rp_add(&p->all, worst) != 0) {
        return -1;
    }

    if (t_set && rp_redis(p->rfd, "DEL", key, NULL, ":1\r\n") != 0) {
        fprintf(stderr, "revprobe: DEL failed\n");
        return -1;
    }

    return rc;
}


/* a connection per edge, and "warm" requests on each that must answer 200 */

static int
rp_warm(rp_probe_t *p, uint32_t dev, const char *serial)
{
    int         i, k, rc;
    rp_edge_t  *e;

    for (i = 0; i < p->nedges; i++) {
        e = &p->edges[i];

        if (rp_edge_open(p->ctx, &p->fl, dev, e) != 0) {
            fprintf(stderr, "revprobe: %s: cannot connect\n", e->url);
            return -1;
        }

        for (k = 0; k < p->warm; k++) {
            rc = rp_request_blocking(e);

            if (rc != 200) {
                fprintf(stderr, "revprobe: %s: device %s answered %d before "
                        "its revocation\n", e->url, serial, rc);
                return -1;
            }
        }

        if (fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) | O_NONBLOCK) == -1)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Requests back to back on every connection; the SET once each had "pre"
 * answers; until every edge answered 403, or the timeout after the SET.
 */

static int
rp_measure(rp_probe_t *p, const char *key, const char *serial,
    uint64_t *t_set)
{
    int             i, k, rc, nfds, set_sent, set_acked, refused;
    int             pfd_edge[RP_EDGES_MAX];
    uint64_t        now, deadline;
    rp_edge_t      *e;
    struct pollfd   pfd[RP_EDGES_MAX + 1];

    set_sent = 0;
    set_acked = 0;
    refused = 0;
    deadline = lg_now_us() + (uint64_t) (p->timeout_ms * 1000);

    while (refused < p->nedges && !rp_stop) {

        now = lg_now_us();

        if (now >= deadline) {
            break;
        }

        for (i = 0; i < p->nedges; i++) {
            e = &p->edges[i];

            if (e->state == E_SEND && rp_send(e, now) != 0) {
                fprintf(stderr, "revprobe: %s: write failed\n", e->url);
                return -1;
            }
        }

        if (!set_sent) {
            for (i = 0; i < p->nedges; i++) {
                if (p->edges[i].answers < p->pre) {
                    break;
                }
            }

            if (i == p->nedges) {
                if (rp_redis(p->rfd, "SET", key, "revprobe", NULL) != 0) {
                    fprintf(stderr, "revprobe: SET failed\n");
                    return -1;
                }

                *t_set = lg_now_us();
                set_sent = 1;
                deadline = *t_set + (uint64_t) (p->timeout_ms * 1000);
            }
        }

        nfds = 0;

        for (i = 0; i < p->nedges; i++) {
            pfd_edge[i] = -1;

            if (p->edges[i].state == E_READ) {
                pfd_edge[i] = nfds;
                pfd[nfds].fd = p->edges[i].fd;
                pfd[nfds].events = POLLIN;
                pfd[nfds].revents = 0;
                nfds++;
            }
        }

        k = -1;

        if (set_sent && !set_acked) {
            k = nfds;
            pfd[nfds].fd = p->rfd;
            pfd[nfds].events = POLLIN;
            pfd[nfds].revents = 0;
            nfds++;
        }

        if (poll(pfd, nfds, 10) == -1) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }

        if (k >= 0 && pfd[k].revents) {
            if (rp_redis_reply(p->rfd, "+OK\r\n") != 0
                || rp_add(&p->set, lg_now_us() - *t_set) != 0)
            {
                fprintf(stderr, "revprobe: SET not answered +OK\n");
                return -1;
            }

            set_acked = 1;
        }

        for (i = 0; i < p->nedges; i++) {
            e = &p->edges[i];

            if (pfd_edge[i] < 0 || pfd[pfd_edge[i]].revents == 0) {
                continue;
            }

            rc = rp_read(e);

            if (rc == 0) {
                continue;
            }

            if (rc < 0) {
                fprintf(stderr, "revprobe: %s: read failed\n", e->url);
                return -1;
            }

            if (rp_answer(p, e, rc, set_sent, *t_set, serial) != 0) {
                return -1;
            }

            refused += e->state == E_REFUSED;
        }
    }

    if (set_sent && !set_acked) {
        if (rp_redis_reply(p->rfd, "+OK\r\n") != 0
            || rp_add(&p->set, lg_now_us() - *t_set) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* a complete answer on a back-to-back connection */

static int
rp_answer(rp_probe_t *p, rp_edge_t *e, int status, int set_sent,
    uint64_t t_set, const char *serial)
{
    uint64_t  now;

    now = lg_now_us();

    if (rp_add(&p->rtt, now - e->t_sent) != 0) {
        return -1;
    }

    e->answers++;

    if (status == 403 && set_sent) {
        e->lat[e->nlat++] = now - t_set;
        e->refused++;
        e->state = E_REFUSED;
        return 0;
    }

    if (status != 200) {
        fprintf(stderr, "revprobe: %s: device %s answered %d\n", e->url,
                serial, status);
        return -1;
    }

    if (set_sent) {
        e->after_set++;
    }

    e->state = E_SEND;

    return 0;
}


static void
rp_print(rp_probe_t *p, uint64_t *lat, uint32_t nlat, uint64_t timeouts)
{
    printf("revprobe: %u revocation(s) at %d edge(s): %u refused at every "
           "edge, %llu timeouts, %llu errors\n", p->done, p->nedges, p->all.n,
           (unsigned long long) timeouts, (unsigned long long) p->errors);
    printf("  write to first 403, per edge (us): p50 %llu  p99 %llu  "
           "max %llu  (%u)\n",
           (unsigned long long) rp_quantile(lat, nlat, 0.5),
           (unsigned long long) rp_quantile(lat, nlat, 0.99),
           (unsigned long long) rp_quantile(lat, nlat, 1), nlat);
    printf("  write to refusal at all edges (us): p50 %llu  p99 %llu  "
           "max %llu\n",
           (unsigned long long) rp_quantile(p->all.v, p->all.n, 0.5),
           (unsigned long long) rp_quantile(p->all.v, p->all.n, 0.99),
           (unsigned long long) rp_quantile(p->all.v, p->all.n, 1));
    printf("  request round trip, the resolution (us): p50 %llu  p99 %llu  "
           "max %llu  (%u)\n",
           (unsigned long long) rp_quantile(p->rtt.v, p->rtt.n, 0.5),
           (unsigned long long) rp_quantile(p->rtt.v, p->rtt.n, 0.99),
           (unsigned long long) rp_quantile(p->rtt.v, p->rtt.n, 1),
           p->rtt.n);
    printf("  SET round trip (us): p50 %llu  p99 %llu  max %llu\n",
           (unsigned long long) rp_quantile(p->set.v, p->set.n, 0.5),
           (unsigned long long) rp_quantile(p->set.v, p->set.n, 0.99),
           (unsigned long long) rp_quantile(p->set.v, p->set.n, 1));
}


static int
rp_json(rp_probe_t *p, const char *path, uint64_t *lat, uint32_t nlat,
    uint64_t timeouts, uint32_t first, double pause_ms)
{
    int         i;
    FILE       *f;
    rp_edge_t  *e;

    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "revprobe: cannot write \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }

    fprintf(f, "{\n  \"edges\": %d,\n  \"revocations\": %u,\n"
            "  \"refused_everywhere\": %u,\n  \"timeouts\": %llu,\n"
            "  \"errors\": %llu,\n  \"fleet\": %u,\n"
            "  \"first_device\": %u,\n  \"warm\": %d,\n  \"pre\": %d,\n"
            "  \"pause_ms\": %g,\n  \"timeout_ms\": %g,\n",
            p->nedges, p->done, p->all.n, (unsigned long long) timeouts,
            (unsigned long long) p->errors, p->fl.n, first % p->fl.n,
            p->warm, p->pre, pause_ms, p->timeout_ms);
    rp_json_stats(f, "latency_us", lat, nlat, ",\n");
    rp_json_stats(f, "all_edges_us", p->all.v, p->all.n, ",\n");
    rp_json_stats(f, "rtt_us", p->rtt.v, p->rtt.n, ",\n");
    rp_json_stats(f, "set_us", p->set.v, p->set.n, ",\n");
    fprintf(f, "  \"per_edge\": [\n");

    for (i = 0; i < p->nedges; i++) {
        e = &p->edges[i];
        fprintf(f, "    {\"url\": \"%s\", \"refused\": %llu, "
                "\"timeouts\": %llu, \"ok_after_set\": %llu,\n  ",
                e->url, (unsigned long long) e->refused,
                (unsigned long long) e->timeouts,
                (unsigned long long) e->after_set);
        rp_json_stats(f, "latency_us", e->lat, e->nlat, "");
        fprintf(f, "}%s\n", i + 1 < p->nedges ? "," : "");
    }

    fprintf(f, "  ]\n}\n");

    return fclose(f) == 0 ? 0 : -1;
}


static int
rp_parse_url(const char *url, struct sockaddr_in *sin, char *hostport,
    size_t len)
{
    char         host[32];
    size_t       n;
    const char  *p, *c;
    char        *end;
    long         port;

    p = url;

    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    }

    c = strchr(p, ':');
    if (c == NULL || (size_t) (c - p) >= sizeof(host)) {
        return -1;
    }

    n = c - p;
    memcpy(host, p, n);
    host[n] = '\0';

    port = strtol(c + 1, &end, 10);
    if (end == c + 1 || (*end != '\0' && *end != '/') || port < 1
        || port > 65535)
    {
        return -1;
    }

    memset(sin, 0, sizeof(struct sockaddr_in));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t) port);

    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        return -1;
    }

    snprintf(hostport, len, "%s:%ld", host, port);

    return 0;
}


static int
rp_connect(struct sockaddr_in *sin)
{
    int  fd, one;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (connect(fd, (struct sockaddr *) sin, sizeof(struct sockaddr_in))
        == -1)
    {
        close(fd);
        return -1;
    }

    return fd;
}


static int
rp_edge_open(SSL_CTX *ctx, lg_fleet_t *fl, uint32_t dev, rp_edge_t *e)
{
    e->fd = rp_connect(&e->addr);
    if (e->fd == -1) {
        return -1;
    }

    e->ssl = SSL_new(ctx);

    if (e->ssl == NULL
        || !SSL_set_fd(e->ssl, e->fd)
        || lg_fleet_use(fl, dev, e->ssl) != 0
        || SSL_connect(e->ssl) != 1)
    {
        ERR_print_errors_fp(stderr);
        rp_edge_close(e);
        return -1;
    }

    return 0;
}


/* RST after a quiet TLS shutdown, as loadgen: no TIME_WAIT */

static void
rp_edge_close(rp_edge_t *e)
{
    struct linger  lin;

    if (e->ssl != NULL) {
        SSL_set_shutdown(e->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(e->ssl);
        e->ssl = NULL;
    }

    if (e->fd != -1) {
        lin.l_onoff = 1;
        lin.l_linger = 0;
        (void) setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
        close(e->fd);
        e->fd = -1;
    }

    ERR_clear_error();
}


/* one request on a blocking connection: its status, or -1 */

static int
rp_request_blocking(rp_edge_t *e)
{
    int     n, rc;
    size_t  used;

    if (SSL_write(e->ssl, e->request, e->request_len) != e->request_len) {
        return -1;
    }

    lg_http_resp_init(&e->resp, 0);

    for ( ;; ) {
        n = SSL_read(e->ssl, rp_rbuf, sizeof(rp_rbuf));
        if (n <= 0) {
            return -1;
        }

        rc = lg_http_parse(&e->resp, rp_rbuf, n, &used);

        if (rc == LG_HTTP_ERROR) {
            return -1;
        }

        if (rc == LG_HTTP_DONE) {
            return e->resp.close ? -1 : e->resp.status;
        }
    }
}


/* the next request on a non-blocking connection (a few dozen bytes) */

static int
rp_send(rp_edge_t *e, uint64_t now)
{
    int  n, err;

    n = SSL_write(e->ssl, e->request, e->request_len);

    if (n <= 0) {
        err = SSL_get_error(e->ssl, n);
        return (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
               ? 0 : -1;
    }

    e->t_sent = now;
    e->state = E_READ;
    lg_http_resp_init(&e->resp, 0);

    return 0;
}


/* 0: not complete yet; the status of a complete response; -1: failed */

static int
rp_read(rp_edge_t *e)
{
    int     n, rc, err;
    size_t  used;

    for ( ;; ) {
        n = SSL_read(e->ssl, rp_rbuf, sizeof(rp_rbuf));

        if (n <= 0) {
            err = SSL_get_error(e->ssl, n);
            return (err == SSL_ERROR_WANT_READ) ? 0 : -1;
        }

        rc = lg_http_parse(&e->resp, rp_rbuf, n, &used);

        if (rc == LG_HTTP_ERROR) {
            return -1;
        }

        if (rc == LG_HTTP_DONE) {
            return e->resp.status;
        }
    }
}


/* a command of two or three arguments; with "expect", waits for it */

static int
rp_redis(int fd, const char *cmd, const char *key, const char *value,
    const char *expect)
{
    int     n;
    char    buf[RP_KEY_MAX * 2];

    if (value) {
        n = snprintf(buf, sizeof(buf), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n"
                     "$%zu\r\n%s\r\n", strlen(cmd), cmd, strlen(key), key,
                     strlen(value), value);

    } else {
        n = snprintf(buf, sizeof(buf), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                     strlen(cmd), cmd, strlen(key), key);
    }

    if (n < 0 || (size_t) n >= sizeof(buf) || write(fd, buf, n) != n) {
        return -1;
    }

    return expect ? rp_redis_reply(fd, expect) : 0;
}


static int
rp_redis_reply(int fd, const char *expect)
{
    char     buf[64];
    size_t   len, got;
    ssize_t  n;

    len = strlen(expect);
    got = 0;

    while (got < len) {
        n = read(fd, buf + got, len - got);
        if (n <= 0) {
            return -1;
        }
        got += n;
    }

    return memcmp(buf, expect, len) == 0 ? 0 : -1;
}


static int
rp_add(rp_samples_t *s, uint64_t v)
{
    uint64_t  *nv;

    if (s->n == s->size) {
        s->size = s->size ? s->size * 2 : 1024;
        nv = realloc(s->v, s->size * sizeof(uint64_t));
        if (nv == NULL) {
            return -1;
        }
        s->v = nv;
    }

    s->v[s->n++] = v;

    return 0;
}


static int
rp_cmp(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


/* the smallest sample with at least q of them at or below it */

static uint64_t
rp_quantile(uint64_t *v, uint32_t n, double q)
{
    uint32_t  i;

    if (n == 0) {
        return 0;
    }

    qsort(v, n, sizeof(uint64_t), rp_cmp);

    i = (uint32_t) (q * n + 0.999999);

    return v[i ? i - 1 : 0];
}


static void
rp_json_stats(FILE *f, const char *name, uint64_t *v, uint32_t n,
    const char *end)
{
    uint32_t  i;
    double    sum;

    sum = 0;
    for (i = 0; i < n; i++) {
        sum += v[i];
    }

    fprintf(f, "  \"%s\": {\"count\": %u, \"mean\": %.1f, \"min\": %llu, "
            "\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"max\": %llu}%s",
            name, n, n ? sum / n : 0,
            (unsigned long long) rp_quantile(v, n, 0),
            (unsigned long long) rp_quantile(v, n, 0.5),
            (unsigned long long) rp_quantile(v, n, 0.9),
            (unsigned long long) rp_quantile(v, n, 0.99),
            (unsigned long long) rp_quantile(v, n, 1), end);
}


static void
rp_on_signal(int signo)
{
    (void) signo;

    rp_stop = 1;
}


static void
rp_usage(FILE *f)
{
    fprintf(f,
"usage: revprobe --signer-cert FILE --signer-key FILE --redis IP:PORT\n"
"                [options] https://IP:PORT/ ... (up to %d edges)\n"
"\n"
"  -n, --revocations N   devices revoked one after the other (200)\n"
"  -N, --fleet N         the probe's own fleet (1000): not the load's\n"
"      --first I         its first device (0)\n"
"      --fleet-cache DIR as loadgen's\n"
"      --prefix P        the module's key prefix (device_auth:)\n"
"      --warm K          requests per edge that must answer 200 before\n"
"                        the back-to-back requests begin (2)\n"
"      --pre P           back-to-back answers per edge before the SET (2)\n"
"  -t, --timeout MS      a revocation not refused within MS counts as a\n"
"                        timeout (2000)\n"
"      --pause MS        between two revocations (10)\n"
"      --tls 1.2|1.3     (1.3)\n"
"      --json FILE       every number, as JSON\n"
"  -q, --quiet\n",
        RP_EDGES_MAX);
}
