
/*
 * ngx_http_device_auth_module: directives, configuration and phase
 * handlers.  See docs/design.md for the request path.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <dlfcn.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_headers.h"
#include "ngx_http_device_auth_variables.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_ops.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_address.h"


/* the addresses, and every option once */
#define NGX_HTTP_DEVICE_AUTH_REDIS_ARGS  (NGX_DEVICE_AUTH_ADDR_NODES_MAX + 8)


static ngx_int_t ngx_http_device_auth_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_device_auth_init(ngx_conf_t *cf);
static void *ngx_http_device_auth_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_device_auth_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_device_auth_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_device_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_device_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_device_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_device_auth_certificate(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_device_auth_policy_t *ngx_http_device_auth_policy(ngx_conf_t *cf,
    ngx_http_device_auth_srv_conf_t *dscf);
static char *ngx_http_device_auth_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_device_auth_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_device_auth_removed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_device_auth_set_enum(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_device_auth_check_num(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_device_auth_check_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_device_auth_check_redis_prefix(ngx_conf_t *cf,
    void *post, void *data);
static ngx_int_t ngx_http_device_auth_strdup(ngx_pool_t *pool,
    const char *src, ngx_str_t *dst);
static ngx_int_t ngx_http_device_auth_init_module(ngx_cycle_t *cycle);
static void ngx_http_device_auth_check_order(ngx_cycle_t *cycle,
    ngx_http_core_main_conf_t *cmcf, ngx_uint_t phase,
    ngx_http_handler_pt handler, char *name);
static ngx_int_t ngx_http_device_auth_init_process(ngx_cycle_t *cycle);
static void ngx_http_device_auth_exit_process(ngx_cycle_t *cycle);
static void ngx_http_device_auth_cleanup_bundle(void *data);
static void ngx_http_device_auth_cleanup_policy(void *data);


u_char  ngx_http_device_auth_fault_point[32];


static ngx_conf_num_bounds_t  ngx_http_device_auth_depth_bounds = {
    ngx_http_device_auth_check_num, 0, 16
};


static ngx_conf_enum_t  ngx_http_device_auth_profiles[] = {
    { ngx_string("atecc608"), NGX_DEVICE_AUTH_PROFILE_ATECC608 },
    { ngx_string("generic"), NGX_DEVICE_AUTH_PROFILE_GENERIC },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_timeout_bounds = {
    ngx_http_device_auth_check_msec, 1, 3600000
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_window_bounds = {
    ngx_http_device_auth_check_msec, 1000, 30 * (ngx_int_t) 86400000
};


static ngx_conf_post_t  ngx_http_device_auth_prefix_post = {
    ngx_http_device_auth_headers_check_prefix
};


static ngx_conf_post_t  ngx_http_device_auth_redis_prefix_post = {
    ngx_http_device_auth_check_redis_prefix
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_limit_bounds = {
    ngx_http_device_auth_check_num, 0, 100
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_cache_bounds = {
    ngx_http_device_auth_check_num, 16, 100000000
};


static ngx_conf_enum_t  ngx_http_device_auth_fail_modes[] = {
    { ngx_string("closed"), NGX_HTTP_DEVICE_AUTH_FAIL_CLOSED },
    { ngx_string("open"), NGX_HTTP_DEVICE_AUTH_FAIL_OPEN },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_device_auth_dup_actions[] = {
    { ngx_string("log"), NGX_HTTP_DEVICE_AUTH_DUP_LOG },
    { ngx_string("deny"), NGX_HTTP_DEVICE_AUTH_DUP_DENY },
    { ngx_string("quarantine"), NGX_HTTP_DEVICE_AUTH_DUP_QUARANTINE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_device_auth_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_device_auth_commands[] = {

    { ngx_string("device_auth"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_device_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, enable),
      NULL },

    { ngx_string("device_auth_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_certificate,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, certificate),
      NULL },

    { ngx_string("device_auth_signers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_certificate,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, signers),
      NULL },

    { ngx_string("device_auth_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, depth),
      &ngx_http_device_auth_depth_bounds },

    { ngx_string("device_auth_profile"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_set_enum,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, profile),
      &ngx_http_device_auth_profiles },

    { ngx_string("device_auth_early_data"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, early_data),
      NULL },

    { ngx_string("device_auth_header_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, header_prefix),
      &ngx_http_device_auth_prefix_post },

    { ngx_string("device_auth_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, log_level),
      &ngx_http_device_auth_log_levels },

    { ngx_string("device_auth_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_device_auth_metrics,
      0,
      0,
      NULL },

    { ngx_string("device_auth_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_device_auth_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("device_auth_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, redis_timeout),
      &ngx_http_device_auth_timeout_bounds },

    { ngx_string("device_auth_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, redis_prefix),
      &ngx_http_device_auth_redis_prefix_post },

    { ngx_string("device_auth_fail_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, fail_mode),
      &ngx_http_device_auth_fail_modes },

    { ngx_string("device_auth_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, grace),
      NULL },

    { ngx_string("device_auth_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, cache_size),
      &ngx_http_device_auth_cache_bounds },

    /* not released in any version: said so, rather than "unknown" */

    { ngx_string("device_auth_recheck"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_removed,
      0,
      0,
      NULL },

    { ngx_string("device_auth_registry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, registry),
      NULL },

    { ngx_string("device_auth_location"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, location),
      NULL },

    { ngx_string("device_auth_duplicate_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, dup_window),
      &ngx_http_device_auth_window_bounds },

    { ngx_string("device_auth_duplicate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, dup_limit),
      &ngx_http_device_auth_limit_bounds },

    { ngx_string("device_auth_duplicate_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, dup_action),
      &ngx_http_device_auth_dup_actions },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_device_auth_module_ctx = {
    ngx_http_device_auth_preconfiguration, /* preconfiguration */
    ngx_http_device_auth_init,             /* postconfiguration */

    ngx_http_device_auth_create_main_conf, /* create main configuration */
    ngx_http_device_auth_init_main_conf,   /* init main configuration */

    ngx_http_device_auth_create_srv_conf,  /* create server configuration */
    ngx_http_device_auth_merge_srv_conf,   /* merge server configuration */

    ngx_http_device_auth_create_loc_conf,  /* create location configuration */
    ngx_http_device_auth_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_device_auth_module = {
    NGX_MODULE_V1,
    &ngx_http_device_auth_module_ctx,      /* module context */
    ngx_http_device_auth_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_device_auth_init_module,      /* init module */
    ngx_http_device_auth_init_process,     /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_device_auth_exit_process,     /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_device_auth_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_device_auth_add_variables(cf);
}


static ngx_int_t
ngx_http_device_auth_init(ngx_conf_t *cf)
{
    char                       *fault;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    /* read by the master: workers inherit it, whatever "env" says */

    fault = getenv("DEVICE_AUTH_FAULT");

    ngx_cpystrn(ngx_http_device_auth_fault_point,
                (u_char *) (fault ? fault : ""),
                sizeof(ngx_http_device_auth_fault_point));

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Handlers of a phase run in the reverse order of registration, and
     * this module registers after the static ones: forged headers go before
     * realip sees them, and devices are checked before "return".
     *
     * A request that nginx answers itself before the phases (400, 405,
     * 414, 494...) enters them only through error_page: an internal
     * redirect starts at SERVER_REWRITE, a named location at REWRITE, and
     * both strip the headers again (the REWRITE handler does it first).
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_device_auth_strip_handler;

    h = ngx_array_push(
                    &cmcf->phases[NGX_HTTP_SERVER_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_device_auth_restrip_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_device_auth_handler;

    if (ngx_http_device_auth_metrics_zone(cf,
            ngx_http_conf_get_module_main_conf(cf, ngx_http_device_auth_module))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_device_auth_ssl_init(cf);
}


static void *
ngx_http_device_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_device_auth_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&dmcf->prefixes, cf->pool, 2, sizeof(void *))
        != NGX_OK
        || ngx_array_init(&dmcf->policies, cf->pool, 2,
                          sizeof(ngx_http_device_auth_policy_cache_t))
           != NGX_OK
        || ngx_array_init(&dmcf->contexts, cf->pool, 2, sizeof(void *))
           != NGX_OK)
    {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dmcf->redis_addr = { 0, NULL };
     *     dmcf->redis_prefix = { 0, NULL };
     *     dmcf->link = NULL;
     */

    dmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->cache_size = NGX_CONF_UNSET_UINT;

    return dmcf;
}


static char *
ngx_http_device_auth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_device_auth_main_conf_t *dmcf = conf;

    ngx_conf_init_msec_value(dmcf->redis_timeout, 200);
    ngx_conf_init_uint_value(dmcf->cache_size, 100000);

    /* events name the edge that decided */
    dmcf->edge = cf->cycle->hostname;

    if (dmcf->redis_prefix.data == NULL) {
        ngx_str_set(&dmcf->redis_prefix, "device_auth:");
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_device_auth_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_device_auth_srv_conf_t  *dscf;

    dscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_device_auth_srv_conf_t));
    if (dscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dscf->certificate = { 0, NULL };
     *     dscf->signers = { 0, NULL };
     *     dscf->policy = NULL;
     *     dscf->needed = 0;
     *     dscf->on_file = NULL;
     */

    dscf->roots = NGX_CONF_UNSET_PTR;
    dscf->signer_bundle = NGX_CONF_UNSET_PTR;
    dscf->depth = NGX_CONF_UNSET;
    dscf->profile = NGX_CONF_UNSET_UINT;

    return dscf;
}


static char *
ngx_http_device_auth_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_device_auth_srv_conf_t *prev = parent;
    ngx_http_device_auth_srv_conf_t *conf = child;

    ngx_conf_merge_str_value(conf->certificate, prev->certificate, "");
    ngx_conf_merge_str_value(conf->signers, prev->signers, "");
    ngx_conf_merge_ptr_value(conf->roots, prev->roots, NULL);
    ngx_conf_merge_ptr_value(conf->signer_bundle, prev->signer_bundle, NULL);
    ngx_conf_merge_value(conf->depth, prev->depth, 1);
    ngx_conf_merge_uint_value(conf->profile, prev->profile,
                              NGX_DEVICE_AUTH_PROFILE_ATECC608);

    if (conf->roots == NULL) {
        if (conf->signer_bundle) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth_signers\" \"%V\" needs "
                          "\"device_auth_certificate\" with the roots it "
                          "chains to", &conf->signers);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    conf->policy = ngx_http_device_auth_policy(cf, conf);
    if (conf->policy == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* servers with the same pins share one policy, and so one verdict */

static ngx_device_auth_policy_t *
ngx_http_device_auth_policy(ngx_conf_t *cf,
    ngx_http_device_auth_srv_conf_t *dscf)
{
    char                                  err[NGX_DEVICE_AUTH_ERR_MAX];
    ngx_uint_t                            i;
    ngx_pool_cleanup_t                   *cln;
    ngx_device_auth_policy_t             *policy;
    ngx_http_device_auth_main_conf_t     *dmcf;
    ngx_http_device_auth_policy_cache_t  *pc;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_device_auth_module);

    pc = dmcf->policies.elts;
    for (i = 0; i < dmcf->policies.nelts; i++) {
        if (ngx_device_auth_bundle_equal(pc[i].roots, dscf->roots)
            && ngx_device_auth_bundle_equal(pc[i].signers, dscf->signer_bundle)
            && pc[i].depth == dscf->depth
            && pc[i].profile == dscf->profile)
        {
            return pc[i].policy;
        }
    }

    policy = ngx_device_auth_policy_create(dscf->roots, dscf->signer_bundle,
                                           (int) dscf->depth,
                                           (int) dscf->profile,
                                           err, sizeof(err));
    if (policy == NULL) {
        if (dscf->signer_bundle) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth_signers\" \"%V\": %s (pinned roots "
                          "from \"device_auth_certificate\" \"%V\", "
                          "\"device_auth_verify_depth\" %i)",
                          &dscf->signers, err, &dscf->certificate,
                          dscf->depth);
        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth_certificate\" \"%V\": %s",
                          &dscf->certificate, err);
        }

        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_device_auth_policy_free(policy);
        return NULL;
    }

    cln->handler = ngx_http_device_auth_cleanup_policy;
    cln->data = policy;

    pc = ngx_array_push(&dmcf->policies);
    if (pc == NULL) {
        return NULL;
    }

    pc->roots = dscf->roots;
    pc->signers = dscf->signer_bundle;
    pc->depth = dscf->depth;
    pc->profile = dscf->profile;
    pc->policy = policy;

    return policy;
}


static void *
ngx_http_device_auth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_device_auth_loc_conf_t  *dlcf;

    dlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_device_auth_loc_conf_t));
    if (dlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dlcf->header_prefix = { 0, NULL };
     *     dlcf->headers = NULL;
     */

    dlcf->enable = NGX_CONF_UNSET;
    dlcf->early_data = NGX_CONF_UNSET;
    dlcf->log_level = NGX_CONF_UNSET_UINT;
    dlcf->fail_mode = NGX_CONF_UNSET_UINT;
    dlcf->grace = NGX_CONF_UNSET_MSEC;
    dlcf->registry = NGX_CONF_UNSET;
    dlcf->location = NGX_CONF_UNSET_PTR;
    dlcf->dup_window = NGX_CONF_UNSET_MSEC;
    dlcf->dup_limit = NGX_CONF_UNSET;
    dlcf->dup_action = NGX_CONF_UNSET_UINT;

    return dlcf;
}


static char *
ngx_http_device_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_device_auth_loc_conf_t *prev = parent;
    ngx_http_device_auth_loc_conf_t *conf = child;

    ngx_http_device_auth_srv_conf_t   *dscf;
    ngx_http_compile_complex_value_t   ccv;
    static ngx_str_t                   remote_addr = ngx_string("$remote_addr");

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->early_data, prev->early_data, 0);
    ngx_conf_merge_uint_value(conf->fail_mode, prev->fail_mode,
                              NGX_HTTP_DEVICE_AUTH_FAIL_CLOSED);
    ngx_conf_merge_msec_value(conf->grace, prev->grace, 30000);
    ngx_conf_merge_value(conf->registry, prev->registry, 0);
    ngx_conf_merge_msec_value(conf->dup_window, prev->dup_window, 600000);
    ngx_conf_merge_value(conf->dup_limit, prev->dup_limit, 3);
    ngx_conf_merge_uint_value(conf->dup_action, prev->dup_action,
                              NGX_HTTP_DEVICE_AUTH_DUP_LOG);
    ngx_conf_merge_ptr_value(conf->location, prev->location, NULL);

    if (conf->location == NULL) {
        if (prev->location == NGX_CONF_UNSET_PTR || prev->location == NULL) {
            prev->location = ngx_palloc(cf->pool,
                                        sizeof(ngx_http_complex_value_t));
            if (prev->location == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
            ccv.cf = cf;
            ccv.value = &remote_addr;
            ccv.complex_value = prev->location;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
        }

        conf->location = prev->location;
    }
    ngx_conf_merge_str_value(conf->header_prefix, prev->header_prefix,
                             "X-Device-");
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_WARN);

    if (conf->enable) {
        dscf = ngx_http_conf_get_module_srv_conf(cf,
                                                 ngx_http_device_auth_module);
        dscf->needed = 1;
    }

    return ngx_http_device_auth_headers_prepare(cf, conf);
}


static char *
ngx_http_device_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_device_auth_loc_conf_t *dlcf = conf;

    char                             *rv;
    ngx_http_device_auth_srv_conf_t  *dscf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* remembered to name it in errors found after the whole file is read */

    dscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_device_auth_module);

    if (dlcf->enable && dscf->on_file == NULL) {
        dscf->on_file = cf->conf_file->file.name.data;
        dscf->on_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/* device_auth_certificate and device_auth_signers: PEM bundles */

static char *
ngx_http_device_auth_certificate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_device_auth_srv_conf_t *dscf = conf;

    char                       err[NGX_DEVICE_AUTH_ERR_MAX];
    u_char                    *path;
    ngx_str_t                 *value, *file;
    ngx_pool_cleanup_t        *cln;
    ngx_device_auth_bundle_t  *b, **bp;

    file = (ngx_str_t *) ((char *) conf + cmd->offset);

    if (file->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *file = value[1];

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path = ngx_pnalloc(cf->pool, file->len + 1);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(path, file->data, file->len + 1);

    b = ngx_device_auth_bundle_load((char *) path, err, sizeof(err));
    if (b == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s",
                           &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_device_auth_bundle_free(b);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_device_auth_cleanup_bundle;
    cln->data = b;

    if (cmd->offset == offsetof(ngx_http_device_auth_srv_conf_t,
                                certificate))
    {
        if (ngx_device_auth_bundle_check_ca(b, err, sizeof(err)) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" \"%V\": %s, a pinned root must be a CA",
                               &cmd->name, file, err);
            return NGX_CONF_ERROR;
        }

        bp = &dscf->roots;

    } else {
        bp = &dscf->signer_bundle;
    }

    *bp = b;

    return NGX_CONF_OK;
}


/*
 * ngx_conf_set_enum_slot() and ngx_conf_check_num_bounds() do not name the
 * directive in their errors; these do, as "device_auth" (a flag) does.
 */

static char *
ngx_http_device_auth_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *last, *q;
    u_char            names[256];
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    q = names;
    last = names + sizeof(names);

    for (i = 0; e[i].name.len; i++) {
        q = ngx_slprintf(q, last, "%s\"%V\"",
                         i == 0 ? "" : e[i + 1].name.len ? ", " : " or ",
                         &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be %*s",
                       &value[1], &cmd->name, q - names, names);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_device_auth_check_num(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    if (*np < bounds->low || *np > bounds->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be between %i and %i",
                           (ngx_str_t *) cf->args->elts,
                           bounds->low, bounds->high);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the same for times */

static char *
ngx_http_device_auth_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_msec_t             *ms = data;

    if (*ms < (ngx_msec_t) bounds->low || *ms > (ngx_msec_t) bounds->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be between %ims and %ims",
                           (ngx_str_t *) cf->args->elts,
                           bounds->low, bounds->high);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_device_auth_check_redis_prefix(ngx_conf_t *cf, void *post,
    void *data)
{
    ngx_str_t  *prefix = data;

    if (prefix->len > 128 || ngx_strlchr(prefix->data,
                                         prefix->data + prefix->len, '{')
        || ngx_strlchr(prefix->data, prefix->data + prefix->len, '}'))
    {
        return "must be at most 128 characters, without \"{\" or \"}\"";
    }

    return NGX_CONF_OK;
}


/*
 * device_auth_redis <address>... [db=<n>] [password=<p>] [user=<u>]
 *     [sentinel=<master> [sentinel_password=<p>] [sentinel_user=<u>]
 *     | cluster]
 */

static char *
ngx_http_device_auth_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_device_auth_main_conf_t *dmcf = conf;

    int                           argc, i;
    char                          err[NGX_DEVICE_AUTH_ERR_MAX];
    size_t                        lens[NGX_HTTP_DEVICE_AUTH_REDIS_ARGS];
    ngx_str_t                    *value;
    const char                   *argv[NGX_HTTP_DEVICE_AUTH_REDIS_ARGS];
    ngx_device_auth_address_t     a;
    ngx_device_auth_node_addr_t  *node;

    if (dmcf->redis_addr.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    argc = (int) cf->args->nelts - 1;

    if (argc > NGX_HTTP_DEVICE_AUTH_REDIS_ARGS) {
        return "has too many arguments";
    }

    for (i = 0; i < argc; i++) {
        argv[i] = (char *) value[i + 1].data;
        lens[i] = value[i + 1].len;
    }

    if (ngx_device_auth_address_parse_topology(argc, argv, lens, &a, err,
                                               sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"device_auth_redis\": %s",
                           err);
        return NGX_CONF_ERROR;
    }

    dmcf->redis_addr = value[1];
    dmcf->redis_port = a.port;
    dmcf->redis_db = a.db;
    dmcf->redis_topology = a.topology;

    /* IP literals or a unix path (the parser refused host names): no DNS */

    dmcf->redis_nodes = ngx_array_create(cf->pool, a.nnodes,
                                         sizeof(ngx_device_auth_node_addr_t));
    if (dmcf->redis_nodes == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < a.nnodes && a.port; i++) {
        node = ngx_array_push(dmcf->redis_nodes);
        if (node == NULL) {
            return NGX_CONF_ERROR;
        }

        *node = a.nodes[i];
    }

    /* NUL-terminated: hiredis takes C strings */

    if (ngx_http_device_auth_strdup(cf->pool, a.port ? a.host : a.path,
                                    &dmcf->redis_host) != NGX_OK
        || ngx_http_device_auth_strdup(cf->pool, a.user, &dmcf->redis_user)
           != NGX_OK
        || ngx_http_device_auth_strdup(cf->pool, a.password,
                                       &dmcf->redis_password) != NGX_OK
        || ngx_http_device_auth_strdup(cf->pool, a.sentinel,
                                       &dmcf->redis_sentinel) != NGX_OK
        || ngx_http_device_auth_strdup(cf->pool, a.sentinel_user,
                                       &dmcf->redis_sentinel_user) != NGX_OK
        || ngx_http_device_auth_strdup(cf->pool, a.sentinel_password,
                                       &dmcf->redis_sentinel_password)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_device_auth_removed(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" is no longer needed: each worker caches the "
                       "device state and Redis pushes its changes; remove "
                       "it (docs/directives.md)", &cmd->name);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_device_auth_strdup(ngx_pool_t *pool, const char *src, ngx_str_t *dst)
{
    dst->len = ngx_strlen(src);
    dst->data = ngx_pnalloc(pool, dst->len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, dst->len + 1);

    return NGX_OK;
}


/*
 * nginx runs the handlers of a phase in the reverse order of their
 * registration, and modules register in the order of "load_module": a
 * module loaded after this one (Lua's rewrite_by_lua, ...) runs first in
 * the rewrite phase and may answer before device_auth decided, or see
 * forged headers in the post-read phase before they are removed.  Said at
 * nginx -t and at every start, once all modules registered.
 */

static ngx_int_t
ngx_http_device_auth_init_module(ngx_cycle_t *cycle)
{
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);

    if (cmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_device_auth_check_order(cycle, cmcf, NGX_HTTP_POST_READ_PHASE,
                                     ngx_http_device_auth_strip_handler,
                                     "post-read");
    ngx_http_device_auth_check_order(cycle, cmcf,
                                     NGX_HTTP_SERVER_REWRITE_PHASE,
                                     ngx_http_device_auth_restrip_handler,
                                     "server rewrite");
    ngx_http_device_auth_check_order(cycle, cmcf, NGX_HTTP_REWRITE_PHASE,
                                     ngx_http_device_auth_handler,
                                     "rewrite");

    return NGX_OK;
}


static void
ngx_http_device_auth_check_order(ngx_cycle_t *cycle,
    ngx_http_core_main_conf_t *cmcf, ngx_uint_t phase,
    ngx_http_handler_pt handler, char *name)
{
    Dl_info               info;
    ngx_uint_t            i, n;
    ngx_http_handler_pt  *h;

    h = cmcf->phases[phase].handlers.elts;
    n = cmcf->phases[phase].handlers.nelts;

    for (i = 0; i < n && h[i] != handler; i++) { /* void */ }

    for (i++; i < n; i++) {
        ngx_memzero(&info, sizeof(Dl_info));
        (void) dladdr((void *) h[i], &info);

        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "device_auth: a handler of \"%s\"%s%s%s runs in the "
                      "%s phase before device_auth: load that module "
                      "before ngx_http_device_auth_module",
                      info.dli_fname ? info.dli_fname : "another module",
                      info.dli_sname ? " (" : "",
                      info.dli_sname ? info.dli_sname : "",
                      info.dli_sname ? ")" : "", name);
    }
}


static ngx_int_t
ngx_http_device_auth_init_process(ngx_cycle_t *cycle)
{
    ngx_http_device_auth_main_conf_t  *dmcf;

    /* workers only: not the cache manager and loader */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_device_auth_module);

    if (dmcf == NULL || dmcf->redis_addr.len == 0) {
        return NGX_OK;
    }

    return ngx_http_device_auth_link_init(cycle, dmcf);
}


static void
ngx_http_device_auth_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_device_auth_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_device_auth_module);

    if (dmcf && dmcf->link) {
        ngx_http_device_auth_link_exit(dmcf->link);
        ngx_http_device_auth_op_cleanup(dmcf->link);
    }
}


static void
ngx_http_device_auth_cleanup_bundle(void *data)
{
    ngx_device_auth_bundle_free(data);
}


static void
ngx_http_device_auth_cleanup_policy(void *data)
{
    ngx_device_auth_policy_free(data);
}
