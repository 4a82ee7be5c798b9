
/*
 * Device state lookup.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_lookup.h"


ngx_int_t
ngx_http_device_auth_lookup(ngx_http_request_t *r,
    ngx_http_device_auth_ctx_t *ctx)
{
    /* without device_auth_redis the chain checks decide alone */

    ngx_http_device_auth_decide(ctx, NGX_DECLINED, "ok", NULL);

    return ctx->rc;
}
