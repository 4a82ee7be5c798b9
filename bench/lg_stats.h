
/*
 * loadgen: counters, latency histograms and the report (table and JSON).
 *
 * Latencies go into log-linear buckets as in HdrHistogram: exact below
 * 128 us, then 128 sub-buckets per power of two (relative error < 0.8%),
 * so recording is O(1) and memory does not grow with the request count.
 */


#ifndef _LG_STATS_H_INCLUDED_
#define _LG_STATS_H_INCLUDED_


#include <stdint.h>
#include <stdio.h>

#include "lg_fleet.h"


#define LG_HIST_SUB_BITS   7
#define LG_HIST_BUCKETS    ((64 - LG_HIST_SUB_BITS) << LG_HIST_SUB_BITS)
#define LG_STATUS_MAX      600

#define LG_ERR_CONNECT     0        /* socket, bind, connect */
#define LG_ERR_TLS         1        /* handshake failed, alert received */
#define LG_ERR_TIMEOUT     2        /* no progress within --timeout */
#define LG_ERR_PARSE       3        /* not a valid HTTP/1.x response */
#define LG_ERR_CLOSED      4        /* closed or reset before the response */
#define LG_ERR_KEEPALIVE   5        /* a reused connection closed before any
                                       byte of the response: the server
                                       closed it idle as the request went
                                       out (clients retry those) */
#define LG_ERR_N           6


typedef struct {
    uint64_t         count;
    uint64_t         min;
    uint64_t         max;
    double           sum;
    uint64_t         b[LG_HIST_BUCKETS];
} lg_hist_t;


typedef struct {
    uint64_t         requests;
    uint64_t         status[LG_STATUS_MAX];
    uint64_t         errors[LG_ERR_N];
} lg_counts_t;


typedef struct {
    lg_counts_t      all;
    lg_counts_t      role[LG_ROLE_N];
    uint64_t         connections;       /* TLS handshakes completed */
    uint64_t         resumed;           /* of which resumed */
    lg_hist_t        latency;           /* request (see README) */
    lg_hist_t        handshake;         /* TCP connect + TLS handshake */
} lg_stats_t;


typedef struct {
    const char      *label;
    const char      *mode;
    const char      *url;
    const char      *tls;
    int              concurrency;
    uint32_t         fleet;
    uint32_t         revoked;
    uint32_t         clones;
    int              clone_addrs;
    int              keepalive_requests;
    double           warmup;
    double           elapsed;           /* measured seconds */
    double           cpu_user;          /* loadgen's own CPU, measured */
    double           cpu_sys;
    uint64_t         held;              /* idle mode: connections open */
    uint32_t         first_device;      /* the first device used */
    uint32_t         next_device;       /* the one after the last used */
    double           rate;              /* paced: requests/s asked for */
} lg_report_t;


void lg_hist_add(lg_hist_t *h, uint64_t v);
uint64_t lg_hist_quantile(lg_hist_t *h, double q);

void lg_stats_status(lg_stats_t *st, int role, int status);
void lg_stats_error(lg_stats_t *st, int role, int err);

void lg_stats_print(FILE *f, lg_stats_t *st, lg_report_t *rp);
int lg_stats_json(const char *path, lg_stats_t *st, lg_report_t *rp);


#endif /* _LG_STATS_H_INCLUDED_ */
