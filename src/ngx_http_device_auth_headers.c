
/*
 * Identity headers.
 *
 * Any client header whose name starts with a configured prefix is removed
 * in the post-read phase, before realip, rewrite, maps or any upstream
 * module can see it, in every server and location, and again when a
 * request enters the phases by an internal redirect or a named location
 * (error_page of a request nginx answered before the post-read phase).
 * The module's own identity headers survive: their names are the very
 * strings of the prefix's table, which no client header can be.  The comparison treats
 * '_' as '-', because FastCGI, uwsgi and SCGI turn both into '_' and an
 * "X_Device_Serial" header would otherwise reach them as HTTP_X_DEVICE_SERIAL.
 * The identity headers are then added to the request headers themselves,
 * so proxy_pass, grpc_pass and fastcgi_pass pass them with no further
 * configuration.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_headers.h"
#include "ngx_http_device_auth_metrics.h"


static ngx_int_t ngx_http_device_auth_filter(ngx_http_request_t *r,
    ngx_uint_t client);
static ngx_uint_t ngx_http_device_auth_forged(ngx_array_t *prefixes,
    ngx_table_elt_t *h, ngx_uint_t client);


static ngx_str_t  ngx_http_device_auth_header_names[] = {
    ngx_string("Serial"),
    ngx_string("Signer"),
    ngx_string("Fingerprint"),
    ngx_string("Status"),
    ngx_string("Early-Data"),
};


/* checked where it is set, so that nginx -t names the line */

char *
ngx_http_device_auth_headers_check_prefix(ngx_conf_t *cf, void *post,
    void *data)
{
    ngx_str_t  *prefix = data;

    ngx_uint_t          i;
    ngx_http_header_t  *std;

    if (prefix->len == 0 || prefix->len > NGX_HTTP_DEVICE_AUTH_PREFIX_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"device_auth_header_prefix\" must be 1 to %d "
                           "characters", NGX_HTTP_DEVICE_AUTH_PREFIX_MAX);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < prefix->len; i++) {
        if (!(isalnum(prefix->data[i]) || prefix->data[i] == '-')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"device_auth_header_prefix\" \"%V\" may "
                               "only hold letters, digits and \"-\"", prefix);
            return NGX_CONF_ERROR;
        }
    }

    /* a prefix must not swallow a header nginx itself interprets */

    for (std = ngx_http_headers_in; std->name.len; std++) {
        if (std->name.len >= prefix->len
            && ngx_strncasecmp(std->name.data, prefix->data, prefix->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"device_auth_header_prefix\" \"%V\" would "
                               "remove the \"%V\" header", prefix, &std->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* the identity headers of a location's prefix, made once per prefix */

char *
ngx_http_device_auth_headers_prepare(ngx_conf_t *cf,
    ngx_http_device_auth_loc_conf_t *dlcf)
{
    u_char                             *p;
    ngx_str_t                          *prefix, *name;
    ngx_uint_t                          i;
    ngx_table_elt_t                    *h;
    ngx_http_device_auth_prefix_t      *dp, **dpp;
    ngx_http_device_auth_main_conf_t   *dmcf;

    prefix = &dlcf->header_prefix;

    /* every prefix in use is stripped from every request */

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_device_auth_module);

    dpp = dmcf->prefixes.elts;
    for (i = 0; i < dmcf->prefixes.nelts; i++) {
        if (dpp[i]->name.len == prefix->len
            && ngx_strncasecmp(dpp[i]->name.data, prefix->data, prefix->len)
               == 0)
        {
            dlcf->headers = dpp[i]->headers;
            return NGX_CONF_OK;
        }
    }

    dp = ngx_pcalloc(cf->pool, sizeof(ngx_http_device_auth_prefix_t));
    if (dp == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_HDR_N; i++) {
        h = &dp->headers[i];
        name = &ngx_http_device_auth_header_names[i];

        h->key.len = prefix->len + name->len;
        h->key.data = ngx_pnalloc(cf->pool, h->key.len);
        h->lowcase_key = ngx_pnalloc(cf->pool, h->key.len);
        if (h->key.data == NULL || h->lowcase_key == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(h->key.data, prefix->data, prefix->len);
        ngx_memcpy(p, name->data, name->len);

        h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, h->key.len);
    }

    dp->name.len = prefix->len;
    dp->name.data = dp->headers[0].lowcase_key;

    dpp = ngx_array_push(&dmcf->prefixes);
    if (dpp == NULL) {
        return NGX_CONF_ERROR;
    }

    *dpp = dp;
    dlcf->headers = dp->headers;

    return NGX_CONF_OK;
}


/* POST_READ: every request */

ngx_int_t
ngx_http_device_auth_strip_handler(ngx_http_request_t *r)
{
    if (ngx_http_device_auth_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * SERVER_REWRITE: where every internal redirect starts over, and where an
 * error_page of a request nginx answered before POST_READ (a 400, 405,
 * 414, 494) enters the phases for the first time
 */

ngx_int_t
ngx_http_device_auth_restrip_handler(ngx_http_request_t *r)
{
    if (r->internal && ngx_http_device_auth_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* removes the client's headers that carry a prefix in use */

ngx_int_t
ngx_http_device_auth_strip(ngx_http_request_t *r)
{
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);

    if (dmcf->prefixes.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_device_auth_filter(r, 1);
}


/*
 * Removes the headers that carry a prefix in use: the client's, which are
 * logged, or (client 0) all of them, the module's own included: for a
 * subrequest, whose header list is a shallow copy of its parent's (pushing
 * to it would write into the parent's), it makes the private list the
 * identity headers are then added to.
 */

static ngx_int_t
ngx_http_device_auth_filter(ngx_http_request_t *r, ngx_uint_t client)
{
    ngx_uint_t                         i, n, forged;
    ngx_list_t                         old;
    ngx_list_part_t                   *part;
    ngx_table_elt_t                   *h, *nh;
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_device_auth_module);

    n = 0;
    forged = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            n++;
            forged += ngx_http_device_auth_forged(&dmcf->prefixes, &h[i],
                                                  client);
        }
    }

    if (forged == 0 && client) {
        return NGX_OK;
    }

    /*
     * A list cannot drop elements: build a new one.  The old elements stay
     * in the request pool, so pointers nginx keeps to standard headers stay
     * valid; no standard header can match a prefix.
     */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool,
                      n - forged + NGX_HTTP_DEVICE_AUTH_HDR_N,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &old.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {

            if (ngx_http_device_auth_forged(&dmcf->prefixes, &h[i], client)) {
                if (client) {
                    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                                  "device_auth: removed client header "
                                  "\"%V\"", &h[i].key);
                    ngx_http_device_auth_metrics_forged(r);
                }

                continue;
            }

            nh = ngx_list_push(&r->headers_in.headers);
            if (nh == NULL) {
                return NGX_ERROR;
            }

            *nh = h[i];
        }
    }

    return NGX_OK;
}


/* a header with a prefix in use; with client, not one the module added */

static ngx_uint_t
ngx_http_device_auth_forged(ngx_array_t *prefixes, ngx_table_elt_t *h,
    ngx_uint_t client)
{
    u_char                          c;
    ngx_str_t                      *prefix;
    ngx_uint_t                      i, j, k;
    ngx_http_device_auth_prefix_t **dp;

    dp = prefixes->elts;

    for (i = 0; i < prefixes->nelts; i++) {
        prefix = &dp[i]->name;

        if (h->key.len < prefix->len) {
            continue;
        }

        for (j = 0; j < prefix->len; j++) {
            c = h->lowcase_key[j];

            if (c == '_') {
                c = '-';
            }

            if (c != prefix->data[j]) {
                break;
            }
        }

        if (j < prefix->len) {
            continue;
        }

        for (k = 0; client && k < NGX_HTTP_DEVICE_AUTH_HDR_N; k++) {
            if (h->key.data == dp[i]->headers[k].key.data) {
                return 0;
            }
        }

        return 1;
    }

    return 0;
}


ngx_int_t
ngx_http_device_auth_set_headers(ngx_http_request_t *r,
    ngx_http_device_auth_conn_t *dc, ngx_str_t *status, ngx_uint_t early)
{
    ngx_uint_t                        i, n;
    ngx_table_elt_t                  *h;
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);

    if (r != r->main && ngx_http_device_auth_filter(r, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a request line nginx refused (414) has no header list yet */

    if (r->headers_in.headers.last == NULL
        && ngx_list_init(&r->headers_in.headers, r->pool,
                         NGX_HTTP_DEVICE_AUTH_HDR_N, sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = early ? NGX_HTTP_DEVICE_AUTH_HDR_N : NGX_HTTP_DEVICE_AUTH_HDR_STATUS + 1;

    for (i = 0; i < n; i++) {
        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = dlcf->headers[i];

        switch (i) {

        case NGX_HTTP_DEVICE_AUTH_HDR_SERIAL:
            h->value = dc->serial;
            break;

        case NGX_HTTP_DEVICE_AUTH_HDR_SIGNER:
            h->value.len = NGX_DEVICE_AUTH_HEX_LEN;
            h->value.data = dc->signer;
            break;

        case NGX_HTTP_DEVICE_AUTH_HDR_FINGERPRINT:
            h->value.len = NGX_DEVICE_AUTH_HEX_LEN;
            h->value.data = dc->fingerprint;
            break;

        case NGX_HTTP_DEVICE_AUTH_HDR_STATUS:
            h->value = *status;
            break;

        default: /* NGX_HTTP_DEVICE_AUTH_HDR_EARLY_DATA */
            ngx_str_set(&h->value, "1");
            break;
        }
    }

    return NGX_OK;
}
