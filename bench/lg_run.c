
/*
 * loadgen: the engine.
 *
 * Each connection slot is a small state machine driven by edge-triggered
 * epoll events: CONNECT -> HANDSHAKE -> (WRITE -> READ)+ -> close, then the
 * slot starts over with the next device of the fleet.  Every socket
 * operation is non-blocking; a state waits only after OpenSSL reported
 * WANT_READ or WANT_WRITE, i.e. after the socket returned EAGAIN, so the
 * next edge always wakes it.  Timers (timeouts, reconnect delays) are found
 * by a scan of all slots every 10 ms (every 1 ms when requests are paced:
 * --rate makes a keepalive slot wait, PACE, until its next request is due).
 */


#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lg_http.h"
#include "lg_run.h"
#include "lg_util.h"


#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT  24
#endif

#define LG_SCAN_US          10000
#define LG_PACE_SCAN_US     1000
#define LG_RETRY_US         10000
#define LG_EVENTS           1024
#define LG_MAX_ERR_LOG      10
#define LG_IDLE_RAMP        64      /* idle mode: handshakes at a time */
#define LG_IDLE_SLACK_US    120000000


enum {
    C_DONE = 0,                     /* retired */
    C_WAIT,                         /* reconnect at deadline */
    C_CONNECT,
    C_HANDSHAKE,
    C_WRITE,
    C_READ,
    C_HOLD,                         /* idle mode: connection kept open */
    C_PACE                          /* --rate: the next request is not due */
};


typedef struct {
    int              fd;
    int              state;
    uint32_t         gen;           /* tells stale epoll events apart */
    SSL             *ssl;
    uint32_t         dev;
    int              role;
    int              src;           /* 127.0.0.<src>, 0: any */
    int              nreq;
    int              got;           /* bytes of the current response */
    int              measured;      /* the current request counts */
    int              starting;      /* in lg_conn_start() */
    int              paced;         /* the pace was waited for */
    uint64_t         next_at;       /* --rate: the next request is due */
    uint64_t         t_conn;
    uint64_t         t_req;
    uint64_t         deadline;
    lg_http_resp_t   resp;
} lg_conn_t;


typedef struct {
    lg_conf_t       *cf;
    lg_fleet_t      *fl;
    lg_stats_t      *st;
    SSL_CTX         *ctx;
    int              ep;
    lg_conn_t       *conns;
    uint64_t         now;
    uint64_t         t_measure;
    uint64_t         t_end;
    int              measuring;
    int              stopping;      /* start nothing new */
    uint64_t         started;       /* measured requests started */
    uint64_t         period;        /* --rate: us between a slot's requests */
    uint64_t         scan_us;
    uint32_t         rr;            /* next device */
    int              rr_rep;        /* times rr was repeated (clones) */
    int              active;        /* slots not retired */
    int              held;
    int              next_slot;     /* idle mode: slots not yet started */
    int              errlog;
    const char      *version;       /* negotiated TLS version */
} lg_engine_t;


static void lg_conn_start(lg_engine_t *e, lg_conn_t *c);
static void lg_conn_open(lg_engine_t *e, lg_conn_t *c);
static void lg_conn_event(lg_engine_t *e, lg_conn_t *c);
static int lg_request_begin(lg_engine_t *e, lg_conn_t *c);
static int lg_pace(lg_engine_t *e, lg_conn_t *c);
static int lg_request_done(lg_engine_t *e, lg_conn_t *c);
static void lg_conn_close(lg_engine_t *e, lg_conn_t *c, int graceful);
static void lg_conn_restart(lg_engine_t *e, lg_conn_t *c);
static void lg_conn_fail(lg_engine_t *e, lg_conn_t *c, int err,
    const char *what);
static void lg_conn_retire(lg_engine_t *e, lg_conn_t *c);
static void lg_pick(lg_engine_t *e, lg_conn_t *c);
static SSL_CTX *lg_ctx_create(lg_conf_t *cf);
static int lg_new_session(SSL *ssl, SSL_SESSION *sess);
static double lg_cpu(struct rusage *ru, int sys);
static void lg_touch(const char *path);


static lg_engine_t            *lg_engine;
static volatile sig_atomic_t   lg_stop_flag;
static unsigned char           lg_rbuf[16384];


void
lg_run_stop(void)
{
    lg_stop_flag = 1;
}


int
lg_run(lg_conf_t *cf, lg_fleet_t *fl, lg_stats_t *st, lg_result_t *res)
{
    int                  i, n, ready_said;
    uint64_t             next_scan;
    lg_conn_t           *c;
    lg_engine_t          eng, *e;
    struct rlimit        rl;
    struct rusage        ru0, ru1;
    struct epoll_event   ev[LG_EVENTS];

    e = &eng;
    memset(e, 0, sizeof(lg_engine_t));
    e->cf = cf;
    e->fl = fl;
    e->st = st;
    e->version = "-";
    lg_engine = e;

    signal(SIGPIPE, SIG_IGN);

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0
        && rl.rlim_cur < (rlim_t) cf->concurrency + 32)
    {
        fprintf(stderr, "loadgen: concurrency %d needs more than %lu open "
                "files (ulimit -n)\n", cf->concurrency,
                (unsigned long) rl.rlim_cur);
        return -1;
    }

    e->ctx = lg_ctx_create(cf);
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    e->conns = calloc(cf->concurrency, sizeof(lg_conn_t));

    if (e->ctx == NULL || e->ep == -1 || e->conns == NULL) {
        fprintf(stderr, "loadgen: cannot set up the engine\n");
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(e->ctx);
        free(e->conns);
        if (e->ep != -1) {
            close(e->ep);
        }
        return -1;
    }

    e->now = lg_now_us();
    e->t_measure = e->now + (uint64_t) (cf->warmup * 1e6);
    e->active = cf->concurrency;
    e->rr = cf->first % fl->n;
    e->scan_us = LG_SCAN_US;

    if (cf->rate > 0) {
        e->period = (uint64_t) (cf->concurrency * 1e6 / cf->rate);
        e->scan_us = LG_PACE_SCAN_US;
    }
    ready_said = 0;

    if (cf->warmup <= 0) {
        e->measuring = 1;
        e->t_end = e->t_measure + (uint64_t) (cf->duration * 1e6);
    }

    getrusage(RUSAGE_SELF, &ru0);

    e->next_slot = cf->concurrency;

    if (cf->mode == LG_MODE_IDLE) {
        /*
         * Open the connections LG_IDLE_RAMP at a time, so that thousands
         * of simultaneous handshakes do not run into the timeout; the
         * hold time starts when all of them are open.
         */
        e->next_slot = cf->concurrency < LG_IDLE_RAMP ? cf->concurrency
                                                      : LG_IDLE_RAMP;
        e->t_end = e->now + (uint64_t) (cf->duration * 1e6)
                   + LG_IDLE_SLACK_US;
    }

    for (i = 0; i < cf->concurrency; i++) {
        c = &e->conns[i];
        c->fd = -1;
        c->state = C_WAIT;
        c->deadline = UINT64_MAX;

        if (i < e->next_slot) {
            lg_conn_start(e, c);
        }
    }

    next_scan = e->now + e->scan_us;

    while (e->active > 0 && !lg_stop_flag) {

        n = epoll_wait(e->ep, ev, LG_EVENTS, e->scan_us / 1000);

        if (n == -1 && errno != EINTR) {
            fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
            break;
        }

        e->now = lg_now_us();

        for (i = 0; i < n; i++) {
            c = &e->conns[ev[i].data.u64 & 0xffffffff];

            if ((uint32_t) (ev[i].data.u64 >> 32) == c->gen
                && c->state >= C_CONNECT)
            {
                lg_conn_event(e, c);
            }
        }

        if (!e->measuring && e->now >= e->t_measure) {
            e->measuring = 1;
            e->t_measure = e->now;
            e->t_end = e->now + (uint64_t) (cf->duration * 1e6);
            getrusage(RUSAGE_SELF, &ru0);
        }

        if (e->measuring && cf->requests == 0 && e->now >= e->t_end) {
            break;
        }

        if (cf->mode == LG_MODE_IDLE && !ready_said
            && e->held == cf->concurrency)
        {
            fprintf(stderr, "loadgen: %d connections open and idle\n",
                    e->held);

            if (cf->ready_file) {
                lg_touch(cf->ready_file);
            }

            ready_said = 1;
            e->t_end = e->now + (uint64_t) (cf->duration * 1e6);
        }

        if (e->now < next_scan) {
            continue;
        }

        next_scan = e->now + e->scan_us;

        for (i = 0; i < cf->concurrency; i++) {
            c = &e->conns[i];

            if (c->state == C_PACE) {
                if (e->now >= c->deadline) {
                    c->paced = 1;
                    if (lg_request_begin(e, c)) {
                        lg_conn_event(e, c);
                    }
                }

            } else if (c->state == C_WAIT && e->now >= c->deadline) {
                lg_conn_start(e, c);

            } else if (c->state >= C_CONNECT && c->state != C_HOLD
                       && e->now >= c->deadline)
            {
                errno = ETIMEDOUT;
                lg_conn_fail(e, c, LG_ERR_TIMEOUT, "timeout");
            }
        }
    }

    e->now = lg_now_us();
    getrusage(RUSAGE_SELF, &ru1);

    res->elapsed = e->measuring ? (e->now - e->t_measure) / 1e6 : 0;
    res->cpu_user = lg_cpu(&ru1, 0) - lg_cpu(&ru0, 0);
    res->cpu_sys = lg_cpu(&ru1, 1) - lg_cpu(&ru0, 1);
    res->held = e->held;
    res->next_device = e->rr;
    res->version = e->version;

    for (i = 0; i < cf->concurrency; i++) {
        lg_conn_close(e, &e->conns[i], 1);
    }

    free(e->conns);
    close(e->ep);
    SSL_CTX_free(e->ctx);
    lg_engine = NULL;

    return 0;
}


static void
lg_conn_start(lg_engine_t *e, lg_conn_t *c)
{
    c->starting = 1;
    lg_conn_open(e, c);
    c->starting = 0;
}


static void
lg_conn_open(lg_engine_t *e, lg_conn_t *c)
{
    int                  one;
    lg_conf_t           *cf;
    struct linger        lin;
    struct sockaddr_in   sin;
    struct epoll_event   ev;

    cf = e->cf;

    if (e->stopping) {
        lg_conn_retire(e, c);
        return;
    }

    lg_pick(e, c);

    e->now = lg_now_us();
    c->gen++;
    c->nreq = 0;
    c->t_conn = e->now;
    c->deadline = e->now + (uint64_t) cf->timeout_ms * 1000;
    c->measured = 0;

    if (cf->mode == LG_MODE_HANDSHAKE || cf->mode == LG_MODE_RESUME) {
        /* the request begins with the connection */
        c->t_req = e->now;
        c->measured = e->measuring;

        if (c->measured && cf->requests) {
            if (e->started >= cf->requests) {
                e->stopping = 1;
                lg_conn_retire(e, c);
                return;
            }
            e->started++;
        }
    }

    c->fd = socket(cf->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        lg_conn_fail(e, c, LG_ERR_CONNECT, "socket");
        return;
    }

    one = 1;
    (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (!cf->close_fin) {
        /*
         * no TIME_WAIT on our side: a full handshake per request would
         * run out of ephemeral ports within a minute
         */
        lin.l_onoff = 1;
        lin.l_linger = 0;
        (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    }

    if (c->src) {
        (void) setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                          sizeof(one));
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(0x7f000000 | c->src);

        if (bind(c->fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
            lg_conn_fail(e, c, LG_ERR_CONNECT, "bind");
            return;
        }
    }

    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = (uint64_t) (c - e->conns) | ((uint64_t) c->gen << 32);

    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
        lg_conn_fail(e, c, LG_ERR_CONNECT, "epoll_ctl");
        return;
    }

    c->ssl = SSL_new(e->ctx);
    if (c->ssl == NULL
        || !SSL_set_fd(c->ssl, c->fd)
        || (cf->sni && !SSL_set_tlsext_host_name(c->ssl, cf->sni))
        || lg_fleet_use(e->fl, c->dev, c->ssl) != 0)
    {
        lg_conn_fail(e, c, LG_ERR_TLS, "client certificate");
        return;
    }

    SSL_set_app_data(c->ssl, c);
    SSL_set_connect_state(c->ssl);

    if (cf->mode == LG_MODE_RESUME && e->fl->dev[c->dev].session != NULL) {
        (void) SSL_set_session(c->ssl, e->fl->dev[c->dev].session);
    }

    if (connect(c->fd, (struct sockaddr *) &cf->addr, cf->addrlen) == -1
        && errno != EINPROGRESS)
    {
        lg_conn_fail(e, c, LG_ERR_CONNECT, "connect");
        return;
    }

    c->state = C_CONNECT;
}


static void
lg_conn_event(lg_engine_t *e, lg_conn_t *c)
{
    int         n, err, rc, fail;
    size_t      used;
    socklen_t   len;
    lg_conf_t  *cf;

    cf = e->cf;

    for ( ;; ) {

        switch (c->state) {

        case C_CONNECT:
            err = 0;
            len = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1
                || err != 0)
            {
                errno = err;
                lg_conn_fail(e, c, LG_ERR_CONNECT, "connect");
                return;
            }

            c->state = C_HANDSHAKE;
            break;

        case C_HANDSHAKE:
            n = SSL_do_handshake(c->ssl);

            if (n != 1) {
                err = SSL_get_error(c->ssl, n);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                {
                    return;
                }
                lg_conn_fail(e, c, LG_ERR_TLS, "handshake");
                return;
            }

            e->now = lg_now_us();

            if (e->measuring && c->t_conn >= e->t_measure) {
                e->st->connections++;
                if (SSL_session_reused(c->ssl)) {
                    e->st->resumed++;
                }
                lg_hist_add(&e->st->handshake, e->now - c->t_conn);
                e->version = SSL_get_version(c->ssl);
            }

            if (!lg_request_begin(e, c)) {
                return;
            }
            break;

        case C_WRITE:
            n = SSL_write(c->ssl, cf->request, cf->request_len);

            if (n <= 0) {
                err = SSL_get_error(c->ssl, n);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                {
                    return;
                }
                lg_conn_fail(e, c, err == SSL_ERROR_SSL ? LG_ERR_TLS
                                   : c->nreq ? LG_ERR_KEEPALIVE
                                   : LG_ERR_CLOSED,
                             "write");
                return;
            }

            lg_http_resp_init(&c->resp, cf->head);
            c->got = 0;
            c->state = C_READ;

            /*
             * Wait for the response without a read() that would only
             * return EAGAIN: its arrival is a new edge on the socket.
             */
            return;

        case C_READ:
        case C_HOLD:
            n = SSL_read(c->ssl, lg_rbuf, sizeof(lg_rbuf));

            if (n <= 0) {
                err = SSL_get_error(c->ssl, n);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                {
                    return;
                }

                fail = (err == SSL_ERROR_SSL) ? LG_ERR_TLS : LG_ERR_CLOSED;

                if (c->state == C_READ && fail == LG_ERR_CLOSED
                    && lg_http_eof(&c->resp) == LG_HTTP_DONE)
                {
                    (void) lg_request_done(e, c);
                    lg_conn_restart(e, c);
                    return;
                }

                if (c->state == C_READ && fail == LG_ERR_CLOSED
                    && c->nreq && c->got == 0)
                {
                    fail = LG_ERR_KEEPALIVE;
                }

                lg_conn_fail(e, c, fail, "read");
                return;
            }

            if (c->state == C_HOLD) {
                /* nothing is expected on an idle connection */
                break;
            }

            c->got += n;
            rc = lg_http_parse(&c->resp, lg_rbuf, n, &used);

            if (rc == LG_HTTP_ERROR) {
                lg_conn_fail(e, c, LG_ERR_PARSE, "response");
                return;
            }

            if (rc == LG_HTTP_AGAIN) {
                break;
            }

            if (lg_request_done(e, c)) {
                lg_conn_restart(e, c);
                return;
            }

            if (cf->mode == LG_MODE_IDLE) {
                c->state = C_HOLD;
                e->held++;

                if (e->next_slot < cf->concurrency) {
                    lg_conn_start(e, &e->conns[e->next_slot++]);
                }
                break;
            }

            if (!lg_request_begin(e, c)) {
                return;
            }
            break;

        default:
            return;
        }
    }
}


/* returns 0 when the slot was retired, or waits for its pace, instead */

static int
lg_request_begin(lg_engine_t *e, lg_conn_t *c)
{
    lg_conf_t  *cf;

    cf = e->cf;

    if (cf->mode == LG_MODE_KEEPALIVE || cf->mode == LG_MODE_IDLE) {

        if (e->stopping) {
            lg_conn_retire(e, c);
            return 0;
        }

        if (cf->rate > 0 && lg_pace(e, c)) {
            return 0;
        }

        e->now = lg_now_us();
        c->t_req = e->now;
        c->measured = e->measuring;

        if (c->measured && cf->requests) {
            if (e->started >= cf->requests) {
                e->stopping = 1;
                lg_conn_retire(e, c);
                return 0;
            }
            e->started++;
        }
    }

    c->deadline = e->now + (uint64_t) cf->timeout_ms * 1000;
    c->state = C_WRITE;

    return 1;
}


/*
 * --rate: a slot sends a request every "period" us; one that fell behind
 * (a slow answer, a new connection) starts again from now rather than
 * catching up with a burst.  Returns 1 when the slot waits (PACE).
 */

static int
lg_pace(lg_engine_t *e, lg_conn_t *c)
{
    if (c->paced) {
        c->paced = 0;
        return 0;
    }

    e->now = lg_now_us();

    if (c->next_at + e->period < e->now) {
        c->next_at = e->now;

    } else {
        c->next_at += e->period;
    }

    if (c->next_at <= e->now) {
        return 0;
    }

    c->state = C_PACE;
    c->deadline = c->next_at;

    return 1;
}


/* records the response; returns 1 when the connection is to be closed */

static int
lg_request_done(lg_engine_t *e, lg_conn_t *c)
{
    lg_conf_t  *cf;

    cf = e->cf;
    c->nreq++;
    e->now = lg_now_us();

    if (c->measured) {
        lg_hist_add(&e->st->latency, e->now - c->t_req);
        lg_stats_status(e->st, c->role, c->resp.status);
    }

    if (c->resp.close || e->stopping) {
        return 1;
    }

    switch (cf->mode) {

    case LG_MODE_KEEPALIVE:
        return cf->keepalive_requests && c->nreq >= cf->keepalive_requests;

    case LG_MODE_IDLE:
        return 0;

    default:
        return 1;
    }
}


static void
lg_conn_close(lg_engine_t *e, lg_conn_t *c, int graceful)
{
    if (c->state == C_HOLD) {
        e->held--;
    }

    if (c->ssl != NULL) {
        if (graceful && SSL_is_init_finished(c->ssl)) {
            if (e->cf->close_fin) {
                (void) SSL_shutdown(c->ssl);

            } else {
                /* no close_notify on the wire; the session stays resumable */
                SSL_set_shutdown(c->ssl,
                                 SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            }
        }

        SSL_free(c->ssl);
        c->ssl = NULL;
    }

    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    if (c->state != C_DONE) {
        c->state = C_WAIT;
        c->deadline = e->now;
    }

    ERR_clear_error();
}


static void
lg_conn_restart(lg_engine_t *e, lg_conn_t *c)
{
    lg_conn_close(e, c, 1);
    lg_conn_start(e, c);
}


static void
lg_conn_fail(lg_engine_t *e, lg_conn_t *c, int err, const char *what)
{
    char           buf[256];
    unsigned long  ossl;

    if (e->measuring) {
        lg_stats_error(e->st, c->role, err);
    }

    if (e->cf->verbose && e->errlog < LG_MAX_ERR_LOG) {
        e->errlog++;
        ossl = ERR_peek_last_error();

        if (ossl) {
            ERR_error_string_n(ossl, buf, sizeof(buf));

        } else if (errno) {
            snprintf(buf, sizeof(buf), "%s", strerror(errno));

        } else {
            snprintf(buf, sizeof(buf), "connection closed");
        }

        fprintf(stderr, "loadgen: device %u: %s: %s\n", c->dev, what, buf);
    }

    lg_conn_close(e, c, 0);

    if (e->stopping) {
        lg_conn_retire(e, c);
        return;
    }

    if (err == LG_ERR_CONNECT || c->starting) {
        /* do not spin on a server that is not there */
        c->state = C_WAIT;
        c->deadline = e->now + LG_RETRY_US;
        return;
    }

    lg_conn_start(e, c);
}


static void
lg_conn_retire(lg_engine_t *e, lg_conn_t *c)
{
    if (c->fd != -1 || c->ssl != NULL) {
        lg_conn_close(e, c, 1);
    }

    if (c->state != C_DONE) {
        c->state = C_DONE;
        e->active--;
    }
}


/*
 * Round robin over the fleet.  A clone device is picked clone_addrs times
 * in a row, each time from another source address 127.0.0.2, .3, ..., so
 * the same certificate is in use from several places at once.
 */

static void
lg_pick(lg_engine_t *e, lg_conn_t *c)
{
    lg_device_t  *d;

    d = &e->fl->dev[e->rr];

    c->dev = e->rr;
    c->role = d->role;
    c->src = 0;

    if (d->role == LG_ROLE_CLONE && e->cf->clone_addrs > 0) {
        c->src = 2 + (int) (d->uses % (uint32_t) e->cf->clone_addrs);
        d->uses++;

        if (++e->rr_rep < e->cf->clone_addrs) {
            return;
        }

        e->rr_rep = 0;
    }

    e->rr = (e->rr + 1) % e->fl->n;
}


static SSL_CTX *
lg_ctx_create(lg_conf_t *cf)
{
    SSL_CTX  *ctx;

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        return NULL;
    }

    if (cf->tls_version
        && (!SSL_CTX_set_min_proto_version(ctx, cf->tls_version)
            || !SSL_CTX_set_max_proto_version(ctx, cf->tls_version)))
    {
        goto failed;
    }

    if (cf->groups && !SSL_CTX_set1_groups_list(ctx, cf->groups)) {
        fprintf(stderr, "loadgen: bad --groups \"%s\"\n", cf->groups);
        goto failed;
    }

    if (cf->ciphers
        && !SSL_CTX_set_cipher_list(ctx, cf->ciphers)
        && !SSL_CTX_set_ciphersuites(ctx, cf->ciphers))
    {
        fprintf(stderr, "loadgen: bad --ciphers \"%s\"\n", cf->ciphers);
        goto failed;
    }

    if (cf->cafile) {
        if (!SSL_CTX_load_verify_locations(ctx, cf->cafile, NULL)) {
            fprintf(stderr, "loadgen: cannot load \"%s\"\n", cf->cafile);
            goto failed;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }

    if (cf->mode == LG_MODE_IDLE) {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    }

    if (cf->mode == LG_MODE_RESUME) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
                                            | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, lg_new_session);
    }

    return ctx;

failed:

    SSL_CTX_free(ctx);
    return NULL;
}


/* resume mode: keep the newest session (TLS 1.3: ticket) of each device */

static int
lg_new_session(SSL *ssl, SSL_SESSION *sess)
{
    lg_conn_t    *c;
    lg_device_t  *d;

    c = SSL_get_app_data(ssl);
    if (c == NULL || lg_engine == NULL) {
        return 0;
    }

    d = &lg_engine->fl->dev[c->dev];

    SSL_SESSION_free(d->session);
    d->session = sess;

    return 1;
}


static double
lg_cpu(struct rusage *ru, int sys)
{
    struct timeval  *tv;

    tv = sys ? &ru->ru_stime : &ru->ru_utime;

    return tv->tv_sec + tv->tv_usec / 1e6;
}


static void
lg_touch(const char *path)
{
    FILE  *f;

    f = fopen(path, "w");

    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, "loadgen: cannot write \"%s\"\n", path);
    }
}
