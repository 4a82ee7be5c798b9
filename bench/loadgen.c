
/*
 * loadgen: an HTTPS load generator for device fleets.
 *
 * Presents a different ATECC608A-profile client certificate per
 * connection (round robin over a generated fleet), in three modes:
 * keepalive, handshake, resume (and idle, to hold connections open).
 * See bench/README.md.
 */


#define _GNU_SOURCE

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "lg_fleet.h"
#include "lg_http.h"
#include "lg_run.h"
#include "lg_stats.h"
#include "lg_util.h"


#define LG_KEEP_PARSED_MAX   20000
#define LG_HEADERS_MAX       4096


static void lg_usage(FILE *f);
static int lg_parse_url(const char *url, char *host, size_t hlen,
    char *port, size_t plen, const char **path);
static int lg_is_ip(const char *host);
static void lg_on_signal(int signo);


static const char  *lg_mode_names[] = {
    "keepalive", "handshake", "resume", "idle"
};


enum {
    OPT_TLS = 256,
    OPT_GROUPS,
    OPT_CIPHERS,
    OPT_SNI,
    OPT_HOST_HEADER,
    OPT_METHOD,
    OPT_CAFILE,
    OPT_CLOSE,
    OPT_SIGNER_CERT,
    OPT_SIGNER_KEY,
    OPT_FLEET_CACHE,
    OPT_NO_CACHE,
    OPT_LEAF_ONLY,
    OPT_KEEP_PARSED,
    OPT_REVOKED,
    OPT_CLONES,
    OPT_CLONE_ADDRS,
    OPT_REVOKED_OUT,
    OPT_CLONES_OUT,
    OPT_SERIALS_OUT,
    OPT_EXPORT_PEM,
    OPT_EXPORT_COUNT,
    OPT_GEN_ONLY,
    OPT_JSON,
    OPT_LABEL,
    OPT_READY_FILE,
    OPT_FIRST,
    OPT_RATE
};


static struct option  lg_options[] = {
    { "mode",               required_argument, NULL, 'm' },
    { "concurrency",        required_argument, NULL, 'c' },
    { "duration",           required_argument, NULL, 'd' },
    { "requests",           required_argument, NULL, 'n' },
    { "warmup",             required_argument, NULL, 'w' },
    { "keepalive-requests", required_argument, NULL, 'k' },
    { "timeout",            required_argument, NULL, 't' },
    { "header",             required_argument, NULL, 'H' },
    { "fleet",              required_argument, NULL, 'N' },
    { "quiet",              no_argument,       NULL, 'q' },
    { "verbose",            no_argument,       NULL, 'v' },
    { "help",               no_argument,       NULL, 'h' },
    { "tls",                required_argument, NULL, OPT_TLS },
    { "groups",             required_argument, NULL, OPT_GROUPS },
    { "ciphers",            required_argument, NULL, OPT_CIPHERS },
    { "sni",                required_argument, NULL, OPT_SNI },
    { "host-header",        required_argument, NULL, OPT_HOST_HEADER },
    { "method",             required_argument, NULL, OPT_METHOD },
    { "cafile",             required_argument, NULL, OPT_CAFILE },
    { "close",              required_argument, NULL, OPT_CLOSE },
    { "signer-cert",        required_argument, NULL, OPT_SIGNER_CERT },
    { "signer-key",         required_argument, NULL, OPT_SIGNER_KEY },
    { "fleet-cache",        required_argument, NULL, OPT_FLEET_CACHE },
    { "no-cache",           no_argument,       NULL, OPT_NO_CACHE },
    { "leaf-only",          no_argument,       NULL, OPT_LEAF_ONLY },
    { "keep-parsed",        required_argument, NULL, OPT_KEEP_PARSED },
    { "revoked",            required_argument, NULL, OPT_REVOKED },
    { "clones",             required_argument, NULL, OPT_CLONES },
    { "clone-addrs",        required_argument, NULL, OPT_CLONE_ADDRS },
    { "revoked-out",        required_argument, NULL, OPT_REVOKED_OUT },
    { "clones-out",         required_argument, NULL, OPT_CLONES_OUT },
    { "serials-out",        required_argument, NULL, OPT_SERIALS_OUT },
    { "export-pem",         required_argument, NULL, OPT_EXPORT_PEM },
    { "export-count",       required_argument, NULL, OPT_EXPORT_COUNT },
    { "gen-only",           no_argument,       NULL, OPT_GEN_ONLY },
    { "json",               required_argument, NULL, OPT_JSON },
    { "label",              required_argument, NULL, OPT_LABEL },
    { "ready-file",         required_argument, NULL, OPT_READY_FILE },
    { "first",              required_argument, NULL, OPT_FIRST },
    { "rate",               required_argument, NULL, OPT_RATE },
    { NULL, 0, NULL, 0 }
};


int
main(int argc, char **argv)
{
    int               o, i, rc, quiet, gen_only, leaf_only, keep_parsed;
    int               cache, n;
    char              host[256], port[16], hosthdr[300];
    char              headers[LG_HEADERS_MAX], cache_dir[4096];
    char             *request;
    double            revoked, clones;
    uint32_t          fleet_n, export_count, nrev, nclone;
    lg_conf_t         cf;
    lg_fleet_t        fl;
    lg_stats_t       *st;
    lg_result_t       res;
    lg_report_t       rp;
    const char       *url, *path, *method, *sni, *host_header, *signer_cert;
    const char       *signer_key, *fleet_cache, *revoked_out, *clones_out;
    const char       *serials_out, *export_pem, *json, *label;
    struct addrinfo   hints, *ai;
    struct sockaddr_in  *sin;

    memset(&cf, 0, sizeof(lg_conf_t));
    cf.mode = LG_MODE_KEEPALIVE;
    cf.concurrency = 16;
    cf.duration = 10;
    cf.warmup = 1;
    cf.timeout_ms = 5000;
    cf.groups = "P-256";
    cf.clone_addrs = 4;

    quiet = 0;
    gen_only = 0;
    leaf_only = 0;
    keep_parsed = -1;
    cache = 1;
    fleet_n = 100;
    export_count = 0;
    revoked = 0;
    clones = 0;
    method = "GET";
    sni = NULL;
    host_header = NULL;
    signer_cert = NULL;
    signer_key = NULL;
    fleet_cache = NULL;
    revoked_out = NULL;
    clones_out = NULL;
    serials_out = NULL;
    export_pem = NULL;
    json = NULL;
    label = NULL;
    request = NULL;
    headers[0] = '\0';
    hosthdr[0] = '\0';

    while ((o = getopt_long(argc, argv, "m:c:d:n:w:k:t:H:N:qvh", lg_options,
                            NULL))
           != -1)
    {
        switch (o) {

        case 'm':
            for (i = 0; i < 4; i++) {
                if (strcmp(optarg, lg_mode_names[i]) == 0) {
                    break;
                }
            }
            if (i == 4) {
                fprintf(stderr, "loadgen: unknown mode \"%s\"\n", optarg);
                return 2;
            }
            cf.mode = i;
            break;

        case 'c':
            cf.concurrency = (int) lg_number("concurrency", optarg, 1, 1e6);
            break;

        case 'd':
            cf.duration = lg_number("duration", optarg, 0.001, 1e6);
            break;

        case 'n':
            cf.requests = (uint64_t) lg_number("requests", optarg, 1, 1e15);
            break;

        case 'w':
            cf.warmup = lg_number("warmup", optarg, 0, 1e6);
            break;

        case 'k':
            cf.keepalive_requests = (int) lg_number("keepalive-requests",
                                                    optarg, 0, 1e9);
            break;

        case 't':
            cf.timeout_ms = (int) lg_number("timeout", optarg, 1, 1e8);
            break;

        case 'H':
            if (strlen(headers) + strlen(optarg) + 3 > sizeof(headers)) {
                fprintf(stderr, "loadgen: too many headers\n");
                return 2;
            }
            strcat(headers, optarg);
            strcat(headers, "\r\n");
            break;

        case 'N':
            fleet_n = (uint32_t) lg_number("fleet", optarg, 1, 10000000);
            break;

        case 'q':
            quiet = 1;
            break;

        case 'v':
            cf.verbose = 1;
            break;

        case 'h':
            lg_usage(stdout);
            return 0;

        case OPT_TLS:
            if (strcmp(optarg, "1.2") == 0) {
                cf.tls_version = TLS1_2_VERSION;
            } else if (strcmp(optarg, "1.3") == 0) {
                cf.tls_version = TLS1_3_VERSION;
            } else if (strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "loadgen: --tls 1.2, 1.3 or auto\n");
                return 2;
            }
            break;

        case OPT_GROUPS:
            cf.groups = optarg[0] ? optarg : NULL;
            break;

        case OPT_CIPHERS:
            cf.ciphers = optarg;
            break;

        case OPT_SNI:
            sni = optarg;
            break;

        case OPT_HOST_HEADER:
            host_header = optarg;
            break;

        case OPT_METHOD:
            method = optarg;
            break;

        case OPT_CAFILE:
            cf.cafile = optarg;
            break;

        case OPT_CLOSE:
            if (strcmp(optarg, "fin") == 0) {
                cf.close_fin = 1;
            } else if (strcmp(optarg, "rst") != 0) {
                fprintf(stderr, "loadgen: --close fin or rst\n");
                return 2;
            }
            break;

        case OPT_SIGNER_CERT:
            signer_cert = optarg;
            break;

        case OPT_SIGNER_KEY:
            signer_key = optarg;
            break;

        case OPT_FLEET_CACHE:
            fleet_cache = optarg;
            break;

        case OPT_NO_CACHE:
            cache = 0;
            break;

        case OPT_LEAF_ONLY:
            leaf_only = 1;
            break;

        case OPT_KEEP_PARSED:
            keep_parsed = (int) lg_number("keep-parsed", optarg, 0, 1);
            break;

        case OPT_REVOKED:
            revoked = lg_number("revoked", optarg, 0, 1);
            break;

        case OPT_CLONES:
            clones = lg_number("clones", optarg, 0, 1);
            break;

        case OPT_CLONE_ADDRS:
            cf.clone_addrs = (int) lg_number("clone-addrs", optarg, 1, 253);
            break;

        case OPT_REVOKED_OUT:
            revoked_out = optarg;
            break;

        case OPT_CLONES_OUT:
            clones_out = optarg;
            break;

        case OPT_SERIALS_OUT:
            serials_out = optarg;
            break;

        case OPT_EXPORT_PEM:
            export_pem = optarg;
            break;

        case OPT_EXPORT_COUNT:
            export_count = (uint32_t) lg_number("export-count", optarg, 0,
                                                1e9);
            break;

        case OPT_GEN_ONLY:
            gen_only = 1;
            break;

        case OPT_JSON:
            json = optarg;
            break;

        case OPT_LABEL:
            label = optarg;
            break;

        case OPT_READY_FILE:
            cf.ready_file = optarg;
            break;

        case OPT_FIRST:
            cf.first = (uint32_t) lg_number("first", optarg, 0, 4e9);
            break;

        case OPT_RATE:
            cf.rate = lg_number("rate", optarg, 0, 1e8);
            break;

        default:
            lg_usage(stderr);
            return 2;
        }
    }

    url = optind < argc ? argv[optind] : NULL;

    if (signer_cert == NULL || signer_key == NULL) {
        fprintf(stderr, "loadgen: --signer-cert and --signer-key are "
                "required\n");
        lg_usage(stderr);
        return 2;
    }

    if (!gen_only && (url == NULL || optind + 1 != argc)) {
        fprintf(stderr, "loadgen: one URL, https://HOST:PORT/PATH\n");
        lg_usage(stderr);
        return 2;
    }

    if (cf.mode == LG_MODE_IDLE) {
        cf.warmup = 0;
        cf.requests = 0;
    }

    if (cf.rate > 0 && cf.mode != LG_MODE_KEEPALIVE) {
        fprintf(stderr, "loadgen: --rate is for keepalive mode\n");
        return 2;
    }

    /* the target */

    if (!gen_only) {
        if (lg_parse_url(url, host, sizeof(host), port, sizeof(port), &path)
            != 0)
        {
            fprintf(stderr, "loadgen: bad URL \"%s\"\n", url);
            return 2;
        }

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;

        rc = getaddrinfo(host, port, &hints, &ai);
        if (rc != 0) {
            fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(rc));
            return 1;
        }

        memcpy(&cf.addr, ai->ai_addr, ai->ai_addrlen);
        cf.addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);

        if (clones > 0) {
            sin = (struct sockaddr_in *) &cf.addr;
            if (cf.addr.ss_family != AF_INET
                || (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
            {
                fprintf(stderr, "loadgen: --clones needs an IPv4 loopback "
                        "target (sources are 127.0.0.2 ...)\n");
                return 2;
            }
        }

        if (host_header == NULL) {
            snprintf(hosthdr, sizeof(hosthdr),
                     strchr(host, ':') ? "[%s]%s%s" : "%s%s%s", host,
                     strcmp(port, "443") ? ":" : "",
                     strcmp(port, "443") ? port : "");
            host_header = hosthdr;
        }

        if (sni == NULL && !lg_is_ip(host)) {
            sni = host;
        }

        cf.sni = (sni && sni[0]) ? sni : NULL;
        cf.head = strcasecmp(method, "HEAD") == 0;

        request = malloc(LG_HEADERS_MAX + 1024);
        if (request == NULL) {
            return 1;
        }

        cf.request_len = lg_http_request(request, LG_HEADERS_MAX + 1024,
                                         method, host_header, path, headers);
        if (cf.request_len < 0) {
            fprintf(stderr, "loadgen: request too long\n");
            return 2;
        }
        cf.request = request;
    }

    /* the fleet */

    if (fleet_cache == NULL && cache) {
        snprintf(cache_dir, sizeof(cache_dir), "%s/loadgen-fleet",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        fleet_cache = cache_dir;
    }

    if (lg_fleet_open(&fl, signer_cert, signer_key, fleet_n,
                      cache ? fleet_cache : NULL, !leaf_only, !quiet)
        != 0)
    {
        return 1;
    }

    fl.keep_parsed = keep_parsed >= 0 ? keep_parsed
                                      : fleet_n <= LG_KEEP_PARSED_MAX;

    if (lg_fleet_assign_roles(&fl, revoked, clones) != 0) {
        return 2;
    }

    nrev = 0;
    nclone = 0;
    for (n = 0; n < (int) fl.n; n++) {
        nrev += fl.dev[n].role == LG_ROLE_REVOKED;
        nclone += fl.dev[n].role == LG_ROLE_CLONE;
    }

    if ((revoked_out
         && lg_fleet_write_serials(&fl, revoked_out, LG_ROLE_REVOKED) != 0)
        || (clones_out
            && lg_fleet_write_serials(&fl, clones_out, LG_ROLE_CLONE) != 0)
        || (serials_out && lg_fleet_write_serials(&fl, serials_out, -1) != 0)
        || (export_pem
            && lg_fleet_export_pem(&fl, export_pem, export_count) != 0))
    {
        return 1;
    }

    if (gen_only) {
        lg_fleet_free(&fl);
        return 0;
    }

    /* the run */

    st = calloc(1, sizeof(lg_stats_t));
    if (st == NULL) {
        return 1;
    }

    signal(SIGINT, lg_on_signal);
    signal(SIGTERM, lg_on_signal);

    if (!quiet) {
        fprintf(stderr, "loadgen: %s %s, %d connections, ",
                lg_mode_names[cf.mode], url, cf.concurrency);
        if (cf.requests) {
            fprintf(stderr, "%llu requests", (unsigned long long) cf.requests);
        } else {
            fprintf(stderr, "%g s", cf.duration);
        }
        fprintf(stderr, " after %g s warmup\n", cf.warmup);
    }

    memset(&res, 0, sizeof(res));

    if (lg_run(&cf, &fl, st, &res) != 0) {
        return 1;
    }

    memset(&rp, 0, sizeof(rp));
    rp.label = label;
    rp.mode = lg_mode_names[cf.mode];
    rp.url = url;
    rp.tls = res.version;
    rp.concurrency = cf.concurrency;
    rp.fleet = fl.n;
    rp.revoked = nrev;
    rp.clones = nclone;
    rp.clone_addrs = nclone ? cf.clone_addrs : 0;
    rp.keepalive_requests = cf.keepalive_requests;
    rp.warmup = cf.warmup;
    rp.elapsed = res.elapsed;
    rp.cpu_user = res.cpu_user;
    rp.cpu_sys = res.cpu_sys;
    rp.held = res.held;
    rp.first_device = cf.first % fl.n;
    rp.next_device = res.next_device;
    rp.rate = cf.rate;

    if (!quiet) {
        lg_stats_print(stdout, st, &rp);
    }

    rc = 0;

    if (json && lg_stats_json(json, st, &rp) != 0) {
        rc = 1;
    }

    free(st);
    free(request);
    lg_fleet_free(&fl);

    return rc;
}


static void
lg_usage(FILE *f)
{
    fprintf(f,
"usage: loadgen --signer-cert FILE --signer-key FILE [options] "
"https://HOST:PORT/PATH\n"
"\n"
"load:\n"
"  -m, --mode MODE          keepalive (default), handshake, resume, idle\n"
"  -c, --concurrency N      connections in flight (16)\n"
"  -d, --duration SEC       measured time (10)\n"
"  -n, --requests N         stop after N measured requests instead\n"
"  -w, --warmup SEC         unmeasured time before (1)\n"
"  -k, --keepalive-requests N  requests per connection in keepalive mode\n"
"                           (0: until the server closes it; default 0)\n"
"  -t, --timeout MS         connect, handshake, response timeout (5000)\n"
"  -H, --header 'N: V'      extra request header (repeatable)\n"
"      --method M           GET (default) or HEAD\n"
"      --host-header H      Host header (default HOST[:PORT])\n"
"      --ready-file FILE    idle mode: create FILE once all connections\n"
"                           are open (the hold time -d starts then)\n"
"      --rate R             keepalive mode: R requests/s in all, each\n"
"                           connection paced to R/N (default: closed\n"
"                           loop, as fast as the answers come)\n"
"  TLS:\n"
"      --tls 1.2|1.3|auto   protocol version (auto)\n"
"      --groups LIST        key exchange groups (P-256, as the chip)\n"
"      --ciphers LIST       TLS 1.2 cipher list or TLS 1.3 suites\n"
"      --sni NAME           server name ('' for none; default HOST if it\n"
"                           is a name)\n"
"      --cafile FILE        verify the server (default: no verification)\n"
"      --close rst|fin      end connections with RST (default, no\n"
"                           TIME_WAIT) or close_notify + FIN\n"
"fleet:\n"
"      --signer-cert FILE   signer certificate (PEM), EC key\n"
"      --signer-key FILE    its private key (PEM)\n"
"  -N, --fleet N            devices (100)\n"
"      --fleet-cache DIR    cache (default $TMPDIR/loadgen-fleet)\n"
"      --no-cache           always generate, never write the cache\n"
"      --leaf-only          send only the device certificate (default:\n"
"                           device + signer)\n"
"      --first I            the first device used (0); connections take\n"
"                           the next ones, round robin (the JSON's\n"
"                           next_device continues a run)\n"
"      --keep-parsed 0|1    keep parsed certificates and keys in memory\n"
"                           (default: 1 for fleets up to %d)\n"
"      --revoked F          fraction of devices that are 'revoked'\n"
"      --clones F           fraction of devices that are cloned\n"
"      --clone-addrs K      sources per clone: 127.0.0.2..K+1 (4)\n"
"      --revoked-out FILE   write the revoked serials, one per line\n"
"      --clones-out FILE    write the cloned serials\n"
"      --serials-out FILE   write all serials\n"
"      --export-pem DIR     write DIR/SERIAL.crt, .key and index.tsv\n"
"      --export-count K     only the first K devices\n"
"      --gen-only           generate/export the fleet and exit\n"
"report:\n"
"      --json FILE          write the results as JSON\n"
"      --label NAME         name of this run in the report\n"
"  -q, --quiet              no table, no progress\n"
"  -v, --verbose            log the first errors\n",
        LG_KEEP_PARSED_MAX);
}


static int
lg_parse_url(const char *url, char *host, size_t hlen, char *port,
    size_t plen, const char **path)
{
    size_t       n;
    const char  *p, *e;

    p = url;

    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    }

    if (*p == '[') {
        e = strchr(p, ']');
        if (e == NULL) {
            return -1;
        }
        n = e - p - 1;
        p++;
        e++;

    } else {
        e = p + strcspn(p, ":/");
        n = e - p;
    }

    if (n == 0 || n >= hlen) {
        return -1;
    }

    memcpy(host, p, n);
    host[n] = '\0';

    if (*e == ':') {
        e++;
        n = strcspn(e, "/");
        if (n == 0 || n >= plen) {
            return -1;
        }
        memcpy(port, e, n);
        port[n] = '\0';
        e += n;

    } else {
        snprintf(port, plen, "443");
    }

    if (*e != '\0' && *e != '/') {
        return -1;
    }

    *path = *e ? e : "/";

    return 0;
}


static int
lg_is_ip(const char *host)
{
    unsigned char  buf[16];

    return inet_pton(AF_INET, host, buf) == 1
           || inet_pton(AF_INET6, host, buf) == 1;
}


static void
lg_on_signal(int signo)
{
    (void) signo;

    lg_run_stop();
}

