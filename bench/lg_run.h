
/*
 * loadgen: the engine.  One process, one epoll loop, non-blocking sockets,
 * closed loop: each connection slot sends its next request when the
 * previous response is complete.
 */


#ifndef _LG_RUN_H_INCLUDED_
#define _LG_RUN_H_INCLUDED_


#include <stdint.h>
#include <sys/socket.h>

#include "lg_fleet.h"
#include "lg_stats.h"


#define LG_MODE_KEEPALIVE   0       /* many requests per TLS connection */
#define LG_MODE_HANDSHAKE   1       /* a full handshake per request */
#define LG_MODE_RESUME      2       /* a resumed session per request */
#define LG_MODE_IDLE        3       /* one request, then hold the connection */


typedef struct {
    int                      mode;
    int                      concurrency;
    double                   duration;        /* measured seconds */
    uint64_t                 requests;        /* instead of duration */
    double                   warmup;          /* seconds, not measured */
    int                      keepalive_requests;  /* 0: no limit */
    int                      timeout_ms;
    int                      tls_version;     /* 0: negotiate */
    int                      close_fin;       /* FIN (default: RST) */
    int                      clone_addrs;     /* sources per clone device */
    uint32_t                 first;           /* the first device used */
    double                   rate;            /* keepalive: requests/s of
                                                 all slots; 0: closed loop */

    struct sockaddr_storage  addr;
    socklen_t                addrlen;

    const char              *sni;             /* NULL: none */
    const char              *cafile;          /* NULL: no verification */
    const char              *groups;
    const char              *ciphers;
    const char              *request;         /* the full HTTP request */
    int                      request_len;
    int                      head;            /* the request is HEAD */
    const char              *ready_file;      /* idle: created when open */
    int                      verbose;
} lg_conf_t;


typedef struct {
    double                   elapsed;
    double                   cpu_user;
    double                   cpu_sys;
    uint64_t                 held;
    uint32_t                 next_device;     /* the next one --first */
    const char              *version;         /* negotiated, e.g. TLSv1.3 */
} lg_result_t;


int lg_run(lg_conf_t *cf, lg_fleet_t *fl, lg_stats_t *st, lg_result_t *res);
void lg_run_stop(void);


#endif /* _LG_RUN_H_INCLUDED_ */
