
/*
 * Variables for logs and custom headers.  The identity variables are set
 * only for a certificate that passed the chain and profile checks, so that
 * nothing unverified can be passed on by mistake; $device_auth_status and
 * $device_auth_reason say what device_auth decided for the request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_variables.h"


#define NGX_HTTP_DEVICE_AUTH_VAR_SERIAL       0
#define NGX_HTTP_DEVICE_AUTH_VAR_SIGNER       1
#define NGX_HTTP_DEVICE_AUTH_VAR_FINGERPRINT  2
#define NGX_HTTP_DEVICE_AUTH_VAR_STATUS       3
#define NGX_HTTP_DEVICE_AUTH_VAR_REASON       4


static ngx_int_t ngx_http_device_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_device_auth_vars[] = {

    { ngx_string("device_auth_serial"), NULL,
      ngx_http_device_auth_variable, NGX_HTTP_DEVICE_AUTH_VAR_SERIAL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("device_auth_signer"), NULL,
      ngx_http_device_auth_variable, NGX_HTTP_DEVICE_AUTH_VAR_SIGNER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("device_auth_fingerprint"), NULL,
      ngx_http_device_auth_variable, NGX_HTTP_DEVICE_AUTH_VAR_FINGERPRINT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("device_auth_status"), NULL,
      ngx_http_device_auth_variable, NGX_HTTP_DEVICE_AUTH_VAR_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("device_auth_reason"), NULL,
      ngx_http_device_auth_variable, NGX_HTTP_DEVICE_AUTH_VAR_REASON,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_device_auth_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_device_auth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_device_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                    *s;
    ngx_http_device_auth_ctx_t   *ctx;
    ngx_http_device_auth_conn_t  *dc;

    /* a subrequest decided by itself, or the main request */

    ctx = ngx_http_device_auth_get_ctx(r);

    if (ctx == NULL && r != r->main) {
        ctx = ngx_http_device_auth_get_ctx(r->main);
    }

    if (data == NGX_HTTP_DEVICE_AUTH_VAR_STATUS
        || data == NGX_HTTP_DEVICE_AUTH_VAR_REASON)
    {
        if (ctx == NULL || ctx->state != NGX_HTTP_DEVICE_AUTH_DONE) {
            v->not_found = 1;
            return NGX_OK;
        }

        s = (data == NGX_HTTP_DEVICE_AUTH_VAR_STATUS) ? &ctx->status
                                                      : &ctx->reason;

        /*
         * an empty value (the reason of an "ok") points to "", not NULL:
         * the script and log code memcpy() values, and memcpy() from NULL
         * is undefined even with a length of 0
         */

        v->len = s->len;
        v->data = s->len ? s->data : (u_char *) "";
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;

        return NGX_OK;
    }

    dc = ctx ? ctx->dc : ngx_http_device_auth_get_conn(r->main);

    if (dc == NULL || dc->status != NGX_HTTP_DEVICE_AUTH_CONN_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == NGX_HTTP_DEVICE_AUTH_VAR_SERIAL) {
        v->len = dc->serial.len;
        v->data = dc->serial.data;

    } else {
        v->len = NGX_DEVICE_AUTH_HEX_LEN;
        v->data = data == NGX_HTTP_DEVICE_AUTH_VAR_SIGNER ? dc->signer
                                                          : dc->fingerprint;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
