
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
#include "ngx_http_device_auth_log.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_ops.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_address.h"
#include "ngx_device_auth_ticket.h"


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
static char *ngx_http_device_auth_check_timeout(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_device_auth_check_canary(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_device_auth_check_edge(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_device_auth_redis_only(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_device_auth_log_level(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_device_auth_check_expiry(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *file, ngx_device_auth_bundle_t *b);
static void ngx_http_device_auth_pins_line(ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf);
static u_char *ngx_http_device_auth_pins(u_char *p, u_char *last,
    ngx_device_auth_bundle_t *b, long long *earliest);
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


static ngx_conf_num_bounds_t  ngx_http_device_auth_tickets_bounds = {
    ngx_http_device_auth_check_num, 0, 2
};


static ngx_conf_enum_t  ngx_http_device_auth_profiles[] = {
    { ngx_string("atecc608"), NGX_DEVICE_AUTH_PROFILE_ATECC608 },
    { ngx_string("generic"), NGX_DEVICE_AUTH_PROFILE_GENERIC },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_timeout_bounds = {
    ngx_http_device_auth_check_timeout, 1, 3600000
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_stats_bounds = {
    ngx_http_device_auth_check_msec, 1000, 86400000
};


static ngx_conf_num_bounds_t  ngx_http_device_auth_log_interval_bounds = {
    ngx_http_device_auth_check_msec, 0, 86400000
};


static ngx_conf_post_t  ngx_http_device_auth_canary_post = {
    ngx_http_device_auth_check_canary
};


static ngx_conf_post_t  ngx_http_device_auth_edge_post = {
    ngx_http_device_auth_check_edge
};


static ngx_conf_enum_t  ngx_http_device_auth_key_bindings[] = {
    { ngx_string("compromised"), NGX_DEVICE_AUTH_BIND_COMPROMISED },
    { ngx_string("always"), NGX_DEVICE_AUTH_BIND_ALWAYS },
    { ngx_null_string, 0 }
};


/*
 * Directives that only mean something with "device_auth_redis": set
 * without it, they would silently do nothing (a registry required, clones
 * counted, a canary checked: none of it would be), so nginx -t refuses
 * them (ngx_http_device_auth_init_main_conf()).  Their handlers.
 */

typedef struct {
    ngx_str_t                   name;
    char                     *(*set)(ngx_conf_t *cf, ngx_command_t *cmd,
                                     void *conf);
} ngx_http_device_auth_redis_only_t;


static ngx_http_device_auth_redis_only_t  ngx_http_device_auth_redis_only_set[]
    = {
    { ngx_string("device_auth_redis_timeout"), ngx_conf_set_msec_slot },
    { ngx_string("device_auth_redis_prefix"), ngx_conf_set_str_slot },
    { ngx_string("device_auth_redis_canary"), ngx_conf_set_str_slot },
    { ngx_string("device_auth_fail_mode"), ngx_http_device_auth_set_enum },
    { ngx_string("device_auth_grace"), ngx_conf_set_msec_slot },
    { ngx_string("device_auth_cache_size"), ngx_conf_set_num_slot },
    { ngx_string("device_auth_registry"), ngx_conf_set_flag_slot },
    { ngx_string("device_auth_key_binding"), ngx_http_device_auth_set_enum },
    { ngx_string("device_auth_duplicate_window"), ngx_conf_set_msec_slot },
    { ngx_string("device_auth_duplicate_limit"), ngx_conf_set_num_slot },
    { ngx_string("device_auth_duplicate_action"),
      ngx_http_device_auth_set_enum },
    { ngx_string("device_auth_edge_name"), ngx_conf_set_str_slot },
    { ngx_string("device_auth_stats_interval"), ngx_conf_set_msec_slot },
    { ngx_null_string, NULL }
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

    { ngx_string("device_auth_tls13_tickets"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, tickets),
      &ngx_http_device_auth_tickets_bounds },

    { ngx_string("device_auth_fast_tickets"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_device_auth_srv_conf_t, fast_tickets),
      NULL },

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
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_device_auth_log_level,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, log_level),
      &ngx_http_device_auth_log_levels },

    { ngx_string("device_auth_log_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, log_interval),
      &ngx_http_device_auth_log_interval_bounds },

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
      ngx_http_device_auth_redis_only,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, redis_timeout),
      &ngx_http_device_auth_timeout_bounds },

    { ngx_string("device_auth_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, redis_prefix),
      &ngx_http_device_auth_redis_prefix_post },

    { ngx_string("device_auth_redis_canary"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, canary),
      &ngx_http_device_auth_canary_post },

    { ngx_string("device_auth_edge_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, edge),
      &ngx_http_device_auth_edge_post },

    { ngx_string("device_auth_stats_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_device_auth_main_conf_t, stats_interval),
      &ngx_http_device_auth_stats_bounds },

    { ngx_string("device_auth_fail_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, fail_mode),
      &ngx_http_device_auth_fail_modes },

    { ngx_string("device_auth_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, grace),
      NULL },

    { ngx_string("device_auth_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
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
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, registry),
      NULL },

    { ngx_string("device_auth_key_binding"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, key_binding),
      &ngx_http_device_auth_key_bindings },

    { ngx_string("device_auth_location"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, location),
      NULL },

    { ngx_string("device_auth_duplicate_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, dup_window),
      &ngx_http_device_auth_window_bounds },

    { ngx_string("device_auth_duplicate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_device_auth_loc_conf_t, dup_limit),
      &ngx_http_device_auth_limit_bounds },

    { ngx_string("device_auth_duplicate_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_device_auth_redis_only,
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
    char                              *fault;
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_device_auth_main_conf_t  *dmcf;

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

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_device_auth_module);

    if (ngx_http_device_auth_metrics_zone(cf, dmcf) != NGX_OK
        || ngx_http_device_auth_log_zone(cf, dmcf) != NGX_OK)
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
    dmcf->stats_interval = NGX_CONF_UNSET_MSEC;

    return dmcf;
}


static char *
ngx_http_device_auth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_device_auth_main_conf_t *dmcf = conf;

    u_char  *p;

    /*
     * Redis-only directives without Redis would be silently ignored: a
     * registry thought required, clones thought counted
     */

    if (dmcf->redis_addr.len == 0 && dmcf->redis_only.len) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%V\" in %s:%ui needs \"device_auth_redis\" in the "
                      "http block: without it no device state is read from "
                      "redis (revocations, registry, clones), and \"%V\" "
                      "would do nothing", &dmcf->redis_only,
                      dmcf->redis_only_file, dmcf->redis_only_line,
                      &dmcf->redis_only);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(dmcf->redis_timeout, 200);
    ngx_conf_init_uint_value(dmcf->cache_size, 100000);
    ngx_conf_init_msec_value(dmcf->stats_interval, 60000);

    /* events name the edge that decided: the host name by default */

    if (dmcf->edge.data == NULL) {
        dmcf->edge = cf->cycle->hostname;
        dmcf->edge.len = ngx_min(dmcf->edge.len, 64);
    }

    if (dmcf->redis_prefix.data == NULL) {
        ngx_str_set(&dmcf->redis_prefix, "device_auth:");
    }

    /*
     * A cluster spreads the keys over its primaries: one key is on one of
     * them, and could not tell that another restarted empty
     */

    if (dmcf->canary.len
        && dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_CLUSTER)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"device_auth_redis_canary\" cannot be used "
                           "with a redis cluster: its key is on one node "
                           "only");
        return NGX_CONF_ERROR;
    }

    if (dmcf->canary.len) {
        dmcf->canary_key.len = dmcf->redis_prefix.len + dmcf->canary.len;
        dmcf->canary_key.data = ngx_pnalloc(cf->pool, dmcf->canary_key.len);
        if (dmcf->canary_key.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(dmcf->canary_key.data, dmcf->redis_prefix.data,
                       dmcf->redis_prefix.len);
        ngx_memcpy(p, dmcf->canary.data, dmcf->canary.len);
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
    dscf->tickets = NGX_CONF_UNSET;
    dscf->fast_tickets = NGX_CONF_UNSET;

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

    /*
     * One ticket: a device resumes with the last one it got, and every
     * ticket costs the server an encoding of the session, client
     * certificate included (OpenSSL sends two by default).
     */

    ngx_conf_merge_value(conf->tickets, prev->tickets, 1);
    ngx_conf_merge_value(conf->fast_tickets, prev->fast_tickets, 1);

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
    ngx_uint_t                        i;
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
    dlcf->log_interval = NGX_CONF_UNSET_MSEC;
    dlcf->key_binding = NGX_CONF_UNSET_UINT;

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_S_N; i++) {
        dlcf->log_levels[i] = NGX_CONF_UNSET_UINT;
    }

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

    ngx_uint_t                         i;
    ngx_http_device_auth_srv_conf_t   *dscf;
    ngx_http_compile_complex_value_t   ccv;
    static ngx_str_t                   remote_addr = ngx_string("$remote_addr");

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->early_data, prev->early_data, 0);
    ngx_conf_merge_uint_value(conf->fail_mode, prev->fail_mode,
                              NGX_HTTP_DEVICE_AUTH_FAIL_CLOSED);
    ngx_conf_merge_msec_value(conf->grace, prev->grace, 30000);
    ngx_conf_merge_value(conf->registry, prev->registry, 0);
    ngx_conf_merge_uint_value(conf->key_binding, prev->key_binding,
                              NGX_DEVICE_AUTH_BIND_COMPROMISED);
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

    /*
     * The level of each decision: set for it here, for all here, set for
     * it above, for all above, warn.  The http block's own values are
     * never merged: its "all" is looked at too.
     */

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_S_N; i++) {
        if (conf->log_levels[i] != NGX_CONF_UNSET_UINT) {
            continue;
        }

        conf->log_levels[i] = conf->log_level != NGX_CONF_UNSET_UINT
                              ? conf->log_level
                              : prev->log_levels[i] != NGX_CONF_UNSET_UINT
                                ? prev->log_levels[i]
                                : prev->log_level != NGX_CONF_UNSET_UINT
                                  ? prev->log_level : NGX_LOG_WARN;
    }

    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_WARN);
    ngx_conf_merge_msec_value(conf->log_interval, prev->log_interval, 60000);

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

    ngx_http_device_auth_check_expiry(cf, &cmd->name, file, b);

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
 * A pinned root or signer that expired refuses every device it anchors
 * (495, expired), one about to: said at nginx -t, at start and at every
 * reload, while there is time to act.
 */

#define NGX_HTTP_DEVICE_AUTH_EXPIRY_SOON  (30 * 86400)

static void
ngx_http_device_auth_check_expiry(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *file, ngx_device_auth_bundle_t *b)
{
    int         i;
    X509       *x;
    long long   t, now;
    char        subject[NGX_DEVICE_AUTH_SUBJECT_MAX];
    char        id[NGX_DEVICE_AUTH_HEX_LEN + 1];
    char        when[32];

    now = (long long) ngx_time();

    for (i = 0; i < b->n; i++) {
        x = sk_X509_value(b->certs, i);

        if (ngx_device_auth_not_after(x, &t) != 0
            || t - now > NGX_HTTP_DEVICE_AUTH_EXPIRY_SOON)
        {
            continue;
        }

        ngx_device_auth_subject(x, subject, sizeof(subject));
        ngx_device_auth_hex(b->ids[i], NGX_DEVICE_AUTH_ID_LEN, id);
        ngx_device_auth_time(t, when, sizeof(when));

        if (t <= now) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "\"%V\" \"%V\": pinned certificate \"%s\" "
                               "(id %s) expired on %s: every device it "
                               "anchors is refused (495, expired)",
                               name, file, subject, id, when);

        } else {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "\"%V\" \"%V\": pinned certificate \"%s\" "
                               "(id %s) expires in %L days, on %s: every "
                               "device it anchors will be refused then",
                               name, file, subject, id,
                               (t - now + 86399) / 86400, when);
        }
    }
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


/*
 * The prefix must end with ":": ops write "device_auth:{SN}:revoked" (the
 * runbook, device-auth); with "device_auth" the edge would read
 * "device_auth{SN}:revoked", which nobody writes, and let every revoked
 * device in without a word.
 */

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

    if (prefix->len == 0 || prefix->data[prefix->len - 1] != ':') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"device_auth_redis_prefix\" \"%V\" does not end "
                           "with \":\": the module would read the key "
                           "\"%V{SN}:revoked\", not the \"%V:{SN}:revoked\" "
                           "that operations write", prefix, prefix, prefix);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * nginx reads a time without a unit as seconds: "200" is 200 s, where
 * 200 ms was meant, and a request would wait that long for a silent Redis
 */

static char *
ngx_http_device_auth_check_timeout(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    char        *rv;
    ngx_str_t   *value;
    ngx_uint_t   i, bare;

    rv = ngx_http_device_auth_check_msec(cf, post, data);
    if (rv != NGX_CONF_OK || *ms <= 10000) {
        return rv;
    }

    value = cf->args->elts;
    bare = 1;

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] < '0' || value[1].data[i] > '9') {
            bare = 0;
        }
    }

    if (bare) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"device_auth_redis_timeout\" %V is %V seconds "
                           "(a time without a unit is in seconds), more than "
                           "10s: a request would wait that long for a redis "
                           "that does not answer; write \"%Vms\" for "
                           "milliseconds", &value[1], &value[1], &value[1]);

    } else {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"device_auth_redis_timeout\" %V is more than "
                           "10s: a request would wait that long for a redis "
                           "that does not answer", &value[1]);
    }

    return NGX_CONF_OK;
}


/* a key name under the prefix, as ops write it with redis-cli */

static char *
ngx_http_device_auth_check_canary(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    ngx_uint_t  i;

    if (name->len == 0 || name->len > 128) {
        return "must be 1 to 128 characters";
    }

    for (i = 0; i < name->len; i++) {
        if (name->data[i] <= 0x20 || name->data[i] >= 0x7f
            || name->data[i] == '{' || name->data[i] == '}')
        {
            return "may only hold printable characters, without spaces, "
                   "\"{\" or \"}\"";
        }
    }

    return NGX_CONF_OK;
}


/* an edge name goes into events and key names: a host name's alphabet */

static char *
ngx_http_device_auth_check_edge(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > 64) {
        return "must be 1 to 64 characters";
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
        {
            return "may only hold letters, digits, \".\", \"-\" and \"_\"";
        }
    }

    return NGX_CONF_OK;
}


/*
 * A directive that needs "device_auth_redis": where it was first set is
 * remembered, for the error when there is no Redis; its own handler does
 * the rest.
 */

static char *
ngx_http_device_auth_redis_only(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_device_auth_redis_only_t  *ro;
    ngx_http_device_auth_main_conf_t   *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_device_auth_module);

    if (dmcf->redis_only.len == 0) {
        dmcf->redis_only = cmd->name;
        dmcf->redis_only_file = cf->conf_file->file.name.data;
        dmcf->redis_only_line = cf->conf_file->line;
    }

    for (ro = ngx_http_device_auth_redis_only_set; ro->set; ro++) {
        if (ro->name.len == cmd->name.len
            && ngx_strncmp(ro->name.data, cmd->name.data, cmd->name.len) == 0)
        {
            return ro->set(cf, cmd, conf);
        }
    }

    return "has no handler";
}


/*
 * device_auth_log_level [decision] level: the level of every decision's
 * line, or of one ("device_auth_log_level no_cert info;": scanners),
 * several times in a block
 */

static char *
ngx_http_device_auth_log_level(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_device_auth_loc_conf_t *dlcf = conf;

    u_char           *p, *last;
    u_char            names[512];
    ngx_str_t        *value, *level, *decision;
    ngx_uint_t        i, *np;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        np = &dlcf->log_level;
        level = &value[1];
        decision = NULL;

    } else {
        decision = &value[1];
        level = &value[2];

        for (i = 1; i < NGX_HTTP_DEVICE_AUTH_S_N; i++) {
            if (ngx_http_device_auth_status_names[i].len == decision->len
                && ngx_strncmp(ngx_http_device_auth_status_names[i].data,
                               decision->data, decision->len) == 0)
            {
                break;
            }
        }

        if (i == NGX_HTTP_DEVICE_AUTH_S_N) {
            p = names;
            last = names + sizeof(names);

            for (i = 1; i < NGX_HTTP_DEVICE_AUTH_S_N; i++) {
                p = ngx_slprintf(p, last, "%s\"%V\"", i == 1 ? "" : ", ",
                                 &ngx_http_device_auth_status_names[i]);
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"device_auth_log_level\": unknown decision "
                               "\"%V\", it must be one of %*s (\"ok\" is "
                               "never logged)", decision, p - names, names);
            return NGX_CONF_ERROR;
        }

        np = &dlcf->log_levels[i];
    }

    if (*np != NGX_CONF_UNSET_UINT) {
        if (decision) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"device_auth_log_level\" of \"%V\" is "
                               "duplicate", decision);
            return NGX_CONF_ERROR;
        }

        return "is duplicate";
    }

    for (e = cmd->post; e->name.len; e++) {
        if (e->name.len == level->len
            && ngx_strcasecmp(e->name.data, level->data) == 0)
        {
            *np = e->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"device_auth_log_level\" "
                       "directive, it must be \"info\", \"notice\", "
                       "\"warn\" or \"error\"", level);

    return NGX_CONF_ERROR;
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
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_device_auth_main_conf_t  *dmcf;

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

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_device_auth_module);

    if (dmcf && !ngx_test_config) {
        ngx_http_device_auth_pins_line(cycle, dmcf);
    }

    return NGX_OK;
}


/*
 * At start and at every reload, one line per device_auth server: what it
 * pins (ids, expiry), and where its device state is read (Redis address,
 * db, prefix, canary); the earliest expiry of all pins goes to the metrics.
 */

static void
ngx_http_device_auth_pins_line(ngx_cycle_t *cycle,
    ngx_http_device_auth_main_conf_t *dmcf)
{
    u_char                            *p, *last;
    ngx_str_t                          file;
    long long                          earliest;
    ngx_uint_t                         s;
    ngx_http_core_srv_conf_t         **cscfp;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_device_auth_srv_conf_t   *dscf;
    u_char                             line[NGX_MAX_ERROR_STR];

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);
    cscfp = cmcf->servers.elts;
    earliest = 0;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        dscf = cscfp[s]->ctx->srv_conf[ngx_http_device_auth_module.ctx_index];

        if (!dscf->needed || dscf->roots == NULL) {
            continue;
        }

        p = line;
        last = line + sizeof(line);

        p = ngx_slprintf(p, last, "server=");
        p = ngx_http_device_auth_log_value(p, last,
                                           cscfp[s]->server_name.data,
                                           cscfp[s]->server_name.len);

        if (dscf->on_file) {
            file.data = dscf->on_file;
            file.len = ngx_strlen(dscf->on_file);
            p = ngx_slprintf(p, last, " conf=");
            p = ngx_http_device_auth_log_value(p, last, file.data, file.len);
            p = ngx_slprintf(p, last, " line=%ui", dscf->on_line);
        }

        p = ngx_slprintf(p, last, " roots=");
        p = ngx_http_device_auth_pins(p, last, dscf->roots, &earliest);

        if (dscf->signer_bundle) {
            p = ngx_slprintf(p, last, " signers=");
            p = ngx_http_device_auth_pins(p, last, dscf->signer_bundle,
                                          &earliest);
        }

        p = ngx_slprintf(p, last, " depth=%i profile=%s", dscf->depth,
                         ngx_device_auth_profile_name((int) dscf->profile));

        if (dmcf->redis_addr.len) {
            p = ngx_slprintf(p, last, " redis=");
            p = ngx_http_device_auth_log_value(p, last, dmcf->redis_addr.data,
                                               dmcf->redis_addr.len);

            /* the first address: of a sentinel, or a cluster's seed */

            if (dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_SENTINEL) {
                p = ngx_slprintf(p, last, " sentinel=");
                p = ngx_http_device_auth_log_value(p, last,
                                                 dmcf->redis_sentinel.data,
                                                 dmcf->redis_sentinel.len);

            } else if (dmcf->redis_topology == NGX_DEVICE_AUTH_ADDR_CLUSTER) {
                p = ngx_slprintf(p, last, " cluster");
            }

            p = ngx_slprintf(p, last, " db=%i prefix=", dmcf->redis_db);
            p = ngx_http_device_auth_log_value(p, last,
                                               dmcf->redis_prefix.data,
                                               dmcf->redis_prefix.len);

            if (dmcf->canary_key.len) {
                p = ngx_slprintf(p, last, " canary=");
                p = ngx_http_device_auth_log_value(p, last,
                                                   dmcf->canary_key.data,
                                                   dmcf->canary_key.len);
            }

            p = ngx_slprintf(p, last, " edge=%V", &dmcf->edge);

        } else {
            p = ngx_slprintf(p, last, " redis=none");
        }

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "device_auth: %*s",
                      (size_t) (p - line), line);
    }

    ngx_http_device_auth_metrics_pins(dmcf, earliest);
}


/* "<id> until <notAfter>, ...", quoted; the earliest expiry kept */

static u_char *
ngx_http_device_auth_pins(u_char *p, u_char *last,
    ngx_device_auth_bundle_t *b, long long *earliest)
{
    int         i;
    u_char     *q, *end;
    long long   t;
    char        id[NGX_DEVICE_AUTH_HEX_LEN + 1];
    char        when[32];
    u_char      buf[NGX_MAX_ERROR_STR];

    q = buf;
    end = buf + sizeof(buf);

    for (i = 0; i < b->n; i++) {
        ngx_device_auth_hex(b->ids[i], NGX_DEVICE_AUTH_ID_LEN, id);

        switch (ngx_device_auth_not_after(sk_X509_value(b->certs, i), &t)) {

        case 0:
            ngx_device_auth_time(t, when, sizeof(when));

            if (*earliest == 0 || t < *earliest) {
                *earliest = t;
            }

            break;

        case 1:
            ngx_cpystrn((u_char *) when, (u_char *) "never", sizeof(when));
            break;

        default:
            ngx_cpystrn((u_char *) when, (u_char *) "?", sizeof(when));
        }

        q = ngx_slprintf(q, end, "%s%s until %s", i ? ", " : "", id, when);
    }

    return ngx_http_device_auth_log_value(p, last, buf, q - buf);
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

    ngx_device_auth_ticket_exit();
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
