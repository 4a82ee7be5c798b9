
/*
 * loadgen: counters, latency histograms and the report.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_stats.h"


static const char  *lg_err_names[LG_ERR_N] = {
    "connect", "tls", "timeout", "parse", "closed", "keepalive"
};

static const char  *lg_role_names[LG_ROLE_N] = {
    "normal", "revoked", "clone"
};

static const double  lg_quantiles[] = { 0.50, 0.90, 0.99, 0.999 };
static const char   *lg_quantile_names[] = { "p50", "p90", "p99", "p99.9" };


static unsigned lg_hist_index(uint64_t v);
static uint64_t lg_hist_upper(unsigned i);
static void lg_stats_hist_json(FILE *f, const char *name, lg_hist_t *h);
static void lg_stats_counts_json(FILE *f, lg_counts_t *c, double elapsed);
static void lg_json_str(FILE *f, const char *name, const char *s);


static unsigned
lg_hist_index(uint64_t v)
{
    unsigned  msb, shift;

    if (v < (1u << LG_HIST_SUB_BITS)) {
        return (unsigned) v;
    }

    msb = 63 - __builtin_clzll(v);
    shift = msb - LG_HIST_SUB_BITS;

    return ((shift + 1) << LG_HIST_SUB_BITS)
           + (unsigned) (v >> shift) - (1u << LG_HIST_SUB_BITS);
}


static uint64_t
lg_hist_upper(unsigned i)
{
    unsigned  shift;
    uint64_t  sub;

    if (i < (1u << LG_HIST_SUB_BITS)) {
        return i;
    }

    shift = (i >> LG_HIST_SUB_BITS) - 1;
    sub = (i & ((1u << LG_HIST_SUB_BITS) - 1)) + (1u << LG_HIST_SUB_BITS);

    return (sub << shift) + ((uint64_t) 1 << shift) - 1;
}


void
lg_hist_add(lg_hist_t *h, uint64_t v)
{
    if (h->count == 0 || v < h->min) {
        h->min = v;
    }

    if (v > h->max) {
        h->max = v;
    }

    h->count++;
    h->sum += (double) v;
    h->b[lg_hist_index(v)]++;
}


/* the highest value equivalent to the q-quantile's bucket, as HdrHistogram */

uint64_t
lg_hist_quantile(lg_hist_t *h, double q)
{
    unsigned  i;
    uint64_t  want, seen, v;

    if (h->count == 0) {
        return 0;
    }

    want = (uint64_t) (q * (double) h->count + 0.5);
    if (want < 1) {
        want = 1;
    }

    seen = 0;

    for (i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            v = lg_hist_upper(i);
            return v > h->max ? h->max : (v < h->min ? h->min : v);
        }
    }

    return h->max;
}


void
lg_stats_status(lg_stats_t *st, int role, int status)
{
    if (status < 0 || status >= LG_STATUS_MAX) {
        status = 0;
    }

    st->all.requests++;
    st->all.status[status]++;
    st->role[role].requests++;
    st->role[role].status[status]++;
}


void
lg_stats_error(lg_stats_t *st, int role, int err)
{
    st->all.errors[err]++;
    st->role[role].errors[err]++;
}


void
lg_stats_print(FILE *f, lg_stats_t *st, lg_report_t *rp)
{
    int          i, r, any_role;
    double       el;
    uint64_t     errs;
    lg_counts_t *c;

    el = rp->elapsed > 0 ? rp->elapsed : 1;

    fprintf(f, "\n%s  %s  mode %s  tls %s  concurrency %d  fleet %u",
            rp->label ? rp->label : "loadgen", rp->url, rp->mode, rp->tls,
            rp->concurrency, rp->fleet);
    if (rp->revoked || rp->clones) {
        fprintf(f, " (%u revoked, %u clones x%d)", rp->revoked, rp->clones,
                rp->clone_addrs);
    }
    fprintf(f, "\n\n");

    fprintf(f, "  %-22s %12.3f s\n", "measured", rp->elapsed);
    fprintf(f, "  %-22s %12llu\n", "responses",
            (unsigned long long) st->all.requests);
    fprintf(f, "  %-22s %12.1f /s\n", "throughput",
            st->all.requests / el);
    fprintf(f, "  %-22s %12llu  (%.1f /s, %llu resumed)\n",
            "TLS handshakes", (unsigned long long) st->connections,
            st->connections / el, (unsigned long long) st->resumed);
    if (rp->held) {
        fprintf(f, "  %-22s %12llu\n", "connections held",
                (unsigned long long) rp->held);
    }
    fprintf(f, "  %-22s %12.2f s user + %.2f s sys (%.0f%% of a core)\n",
            "loadgen CPU", rp->cpu_user, rp->cpu_sys,
            100 * (rp->cpu_user + rp->cpu_sys) / el);

    fprintf(f, "\n  %-22s %9s %9s %9s %9s %9s %9s\n", "latency (ms)",
            "mean", "p50", "p90", "p99", "p99.9", "max");

    fprintf(f, "  %-22s %9.3f", "request",
            st->latency.count ? st->latency.sum / st->latency.count / 1000
                              : 0.0);
    for (i = 0; i < 4; i++) {
        fprintf(f, " %9.3f",
                lg_hist_quantile(&st->latency, lg_quantiles[i]) / 1000.0);
    }
    fprintf(f, " %9.3f\n", st->latency.max / 1000.0);

    if (st->handshake.count) {
        fprintf(f, "  %-22s %9.3f", "connect + handshake",
                st->handshake.sum / st->handshake.count / 1000);
        for (i = 0; i < 4; i++) {
            fprintf(f, " %9.3f",
                    lg_hist_quantile(&st->handshake, lg_quantiles[i])
                    / 1000.0);
        }
        fprintf(f, " %9.3f\n", st->handshake.max / 1000.0);
    }

    any_role = st->role[LG_ROLE_REVOKED].requests
               || st->role[LG_ROLE_CLONE].requests;
    for (i = 0; i < LG_ERR_N; i++) {
        if (st->role[LG_ROLE_REVOKED].errors[i]
            || st->role[LG_ROLE_CLONE].errors[i])
        {
            any_role = 1;
        }
    }

    fprintf(f, "\n  %-22s %12s", "status / error", "all");
    if (any_role) {
        for (r = 0; r < LG_ROLE_N; r++) {
            fprintf(f, " %12s", lg_role_names[r]);
        }
    }
    fprintf(f, "\n");

    for (i = 0; i < LG_STATUS_MAX; i++) {
        if (st->all.status[i] == 0) {
            continue;
        }
        fprintf(f, "  %-22d %12llu", i,
                (unsigned long long) st->all.status[i]);
        for (r = 0; any_role && r < LG_ROLE_N; r++) {
            fprintf(f, " %12llu",
                    (unsigned long long) st->role[r].status[i]);
        }
        fprintf(f, "\n");
    }

    errs = 0;
    for (i = 0; i < LG_ERR_N; i++) {
        c = &st->all;
        errs += c->errors[i];
        if (c->errors[i] == 0) {
            continue;
        }
        fprintf(f, "  error %-16s %12llu", lg_err_names[i],
                (unsigned long long) c->errors[i]);
        for (r = 0; any_role && r < LG_ROLE_N; r++) {
            fprintf(f, " %12llu",
                    (unsigned long long) st->role[r].errors[i]);
        }
        fprintf(f, "\n");
    }

    if (errs == 0) {
        fprintf(f, "  %-22s %12d\n", "errors", 0);
    }

    fprintf(f, "\n");
}


int
lg_stats_json(const char *path, lg_stats_t *st, lg_report_t *rp)
{
    int     r;
    FILE   *f;
    double  el;

    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot write \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }

    el = rp->elapsed > 0 ? rp->elapsed : 1;

    fprintf(f, "{\n");
    lg_json_str(f, "label", rp->label ? rp->label : "");
    lg_json_str(f, "url", rp->url);
    lg_json_str(f, "mode", rp->mode);
    lg_json_str(f, "tls", rp->tls);
    fprintf(f, "  \"concurrency\": %d,\n", rp->concurrency);
    fprintf(f, "  \"keepalive_requests\": %d,\n", rp->keepalive_requests);
    fprintf(f, "  \"fleet\": %u,\n", rp->fleet);
    fprintf(f, "  \"revoked_devices\": %u,\n", rp->revoked);
    fprintf(f, "  \"clone_devices\": %u,\n", rp->clones);
    fprintf(f, "  \"clone_addrs\": %d,\n", rp->clone_addrs);
    fprintf(f, "  \"warmup_s\": %.3f,\n", rp->warmup);
    fprintf(f, "  \"duration_s\": %.6f,\n", rp->elapsed);
    fprintf(f, "  \"requests\": %llu,\n",
            (unsigned long long) st->all.requests);
    fprintf(f, "  \"rps\": %.3f,\n", st->all.requests / el);
    fprintf(f, "  \"connections\": %llu,\n",
            (unsigned long long) st->connections);
    fprintf(f, "  \"connections_per_s\": %.3f,\n", st->connections / el);
    fprintf(f, "  \"resumed\": %llu,\n", (unsigned long long) st->resumed);
    fprintf(f, "  \"held\": %llu,\n", (unsigned long long) rp->held);
    fprintf(f, "  \"first_device\": %u,\n", rp->first_device);
    fprintf(f, "  \"next_device\": %u,\n", rp->next_device);
    fprintf(f, "  \"rate\": %.1f,\n", rp->rate);
    fprintf(f, "  \"cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, "
               "\"util\": %.3f},\n",
            rp->cpu_user, rp->cpu_sys, (rp->cpu_user + rp->cpu_sys) / el);

    lg_stats_hist_json(f, "latency_ms", &st->latency);
    fprintf(f, ",\n");
    lg_stats_hist_json(f, "handshake_ms", &st->handshake);
    fprintf(f, ",\n");

    fprintf(f, "  ");
    lg_stats_counts_json(f, &st->all, el);
    fprintf(f, ",\n  \"by_role\": {\n");

    for (r = 0; r < LG_ROLE_N; r++) {
        fprintf(f, "    \"%s\": {", lg_role_names[r]);
        fprintf(f, "\"requests\": %llu, ",
                (unsigned long long) st->role[r].requests);
        lg_stats_counts_json(f, &st->role[r], el);
        fprintf(f, "}%s\n", r + 1 < LG_ROLE_N ? "," : "");
    }

    fprintf(f, "  }\n}\n");

    if (fclose(f) != 0) {
        fprintf(stderr, "loadgen: cannot write \"%s\"\n", path);
        return -1;
    }

    return 0;
}


static void
lg_stats_hist_json(FILE *f, const char *name, lg_hist_t *h)
{
    int  i;

    fprintf(f, "  \"%s\": {\"count\": %llu, \"mean\": %.3f, \"min\": %.3f",
            name, (unsigned long long) h->count,
            h->count ? h->sum / h->count / 1000 : 0.0, h->min / 1000.0);

    for (i = 0; i < 4; i++) {
        fprintf(f, ", \"%s\": %.3f", lg_quantile_names[i],
                lg_hist_quantile(h, lg_quantiles[i]) / 1000.0);
    }

    fprintf(f, ", \"max\": %.3f}", h->max / 1000.0);
}


static void
lg_stats_counts_json(FILE *f, lg_counts_t *c, double elapsed)
{
    int       i, first;
    uint64_t  ok;

    ok = 0;
    for (i = 200; i < 300; i++) {
        ok += c->status[i];
    }

    fprintf(f, "\"ok\": %llu, \"ok_rps\": %.3f, \"status\": {",
            (unsigned long long) ok, ok / elapsed);

    first = 1;
    for (i = 0; i < LG_STATUS_MAX; i++) {
        if (c->status[i]) {
            fprintf(f, "%s\"%d\": %llu", first ? "" : ", ", i,
                    (unsigned long long) c->status[i]);
            first = 0;
        }
    }

    fprintf(f, "}, \"errors\": {");

    for (i = 0; i < LG_ERR_N; i++) {
        fprintf(f, "%s\"%s\": %llu", i ? ", " : "", lg_err_names[i],
                (unsigned long long) c->errors[i]);
    }

    fprintf(f, "}");
}


static void
lg_json_str(FILE *f, const char *name, const char *s)
{
    fprintf(f, "  \"%s\": \"", name);

    for ( /* void */ ; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fprintf(f, "\\%c", *s);

        } else if ((unsigned char) *s < 0x20) {
            fprintf(f, "\\u%04x", (unsigned char) *s);

        } else {
            fputc(*s, f);
        }
    }

    fprintf(f, "\",\n");
}
