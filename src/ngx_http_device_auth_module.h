
/*
 * ngx_http_device_auth_module: pinned device-certificate authentication
 * with live device state in Redis.  Shared types of the module.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_MODULE_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_device_auth_cert.h"


/* identity headers, in the order of the header keys in the loc conf */
#define NGX_HTTP_DEVICE_AUTH_HDR_SERIAL       0
#define NGX_HTTP_DEVICE_AUTH_HDR_SIGNER       1
#define NGX_HTTP_DEVICE_AUTH_HDR_FINGERPRINT  2
#define NGX_HTTP_DEVICE_AUTH_HDR_STATUS       3
#define NGX_HTTP_DEVICE_AUTH_HDR_EARLY_DATA   4   /* only when it came so */
#define NGX_HTTP_DEVICE_AUTH_HDR_N            5

#define NGX_HTTP_DEVICE_AUTH_PREFIX_MAX       48

#define NGX_HTTP_DEVICE_AUTH_FAIL_CLOSED      0
#define NGX_HTTP_DEVICE_AUTH_FAIL_OPEN        1

#define NGX_HTTP_DEVICE_AUTH_DUP_LOG          0
#define NGX_HTTP_DEVICE_AUTH_DUP_DENY         1
#define NGX_HTTP_DEVICE_AUTH_DUP_QUARANTINE   2

/*
 * What device_auth decided: one name each, the same in $device_auth_status,
 * the metrics, the log lines and the events (ngx_http_device_auth_status_names)
 */
#define NGX_HTTP_DEVICE_AUTH_S_OK                  0
#define NGX_HTTP_DEVICE_AUTH_S_NO_CERT             1
#define NGX_HTTP_DEVICE_AUTH_S_INVALID             2
#define NGX_HTTP_DEVICE_AUTH_S_MISDIRECTED         3
#define NGX_HTTP_DEVICE_AUTH_S_REVOKED             4
#define NGX_HTTP_DEVICE_AUTH_S_SIGNER_REVOKED      5
#define NGX_HTTP_DEVICE_AUTH_S_SIGNER_COMPROMISED  6
#define NGX_HTTP_DEVICE_AUTH_S_UNREGISTERED        7
#define NGX_HTTP_DEVICE_AUTH_S_KEY_MISMATCH        8
#define NGX_HTTP_DEVICE_AUTH_S_QUARANTINED         9
#define NGX_HTTP_DEVICE_AUTH_S_DUPLICATE           10
#define NGX_HTTP_DEVICE_AUTH_S_UNCHECKED           11
#define NGX_HTTP_DEVICE_AUTH_S_ERROR               12
#define NGX_HTTP_DEVICE_AUTH_S_TOO_EARLY           13
#define NGX_HTTP_DEVICE_AUTH_S_N                   14


typedef struct ngx_http_device_auth_redis_s  ngx_http_device_auth_redis_t;
typedef struct ngx_http_device_auth_link_s   ngx_http_device_auth_link_t;


/* the policies of a configuration, one per distinct set of pins */

typedef struct {
    ngx_device_auth_bundle_t   *roots;
    ngx_device_auth_bundle_t   *signers;
    ngx_int_t                   depth;
    ngx_uint_t                  profile;
    ngx_device_auth_policy_t   *policy;
} ngx_http_device_auth_policy_cache_t;


/*
 * A header prefix in use and the identity headers made with it, shared by
 * the locations that use it: a request header whose name is one of these
 * very strings was added by the module; any other with the prefix came
 * from the client.
 */

typedef struct {
    ngx_str_t                   name;         /* lower case */
    ngx_table_elt_t             headers[NGX_HTTP_DEVICE_AUTH_HDR_N];
} ngx_http_device_auth_prefix_t;


typedef struct {
    ngx_array_t                 prefixes;     /* of ..._prefix_t * */
    ngx_array_t                 policies;     /* of ..._policy_cache_t */
    ngx_array_t                 contexts;     /* of ..._ssl_ctx_t *: the
                                                 device_auth servers' */

    /* device_auth_redis */
    ngx_str_t                   redis_addr;   /* "host:port" or unix path */
    ngx_str_t                   redis_host;   /* the first address */
    ngx_int_t                   redis_port;   /* 0: unix socket */
    ngx_str_t                   redis_user;
    ngx_str_t                   redis_password;
    ngx_int_t                   redis_db;
    ngx_msec_t                  redis_timeout;
    ngx_str_t                   redis_prefix;

    /* one Redis, sentinels or cluster seeds: ..._topology.h */
    ngx_uint_t                  redis_topology;
    ngx_array_t                *redis_nodes;  /* ngx_device_auth_node_addr_t */
    ngx_str_t                   redis_sentinel;       /* the master's name */
    ngx_str_t                   redis_sentinel_user;
    ngx_str_t                   redis_sentinel_password;

    /* device_auth_redis_canary, and the key it names: prefix + name */
    ngx_str_t                   canary;
    ngx_str_t                   canary_key;

    /* device_auth_cache_size: devices (and signers) per worker */
    ngx_uint_t                  cache_size;

    /* device_auth_edge_name: this edge in events (the host name) */
    ngx_str_t                   edge;

    /* device_auth_stats_interval: the fleet figures are read this often */
    ngx_msec_t                  stats_interval;

    /* the first Redis-only directive set, for an error without Redis */
    ngx_str_t                   redis_only;
    u_char                     *redis_only_file;
    ngx_uint_t                  redis_only_line;

    ngx_http_device_auth_link_t  *link;       /* per worker */
    ngx_shm_zone_t             *metrics;
    ngx_shm_zone_t             *log_zone;   /* the decision lines' gate */
} ngx_http_device_auth_main_conf_t;


typedef struct {
    ngx_str_t                   certificate;
    ngx_str_t                   signers;
    ngx_device_auth_bundle_t   *roots;
    ngx_device_auth_bundle_t   *signer_bundle;
    ngx_int_t                   depth;
    ngx_uint_t                  profile;
    ngx_device_auth_policy_t   *policy;

    /* device_auth_tls13_tickets: TLS 1.3 session tickets for a device */
    ngx_int_t                   tickets;
    /* device_auth_fast_tickets: the ticket's session copy, built-in EC */
    ngx_flag_t                  fast_tickets;

    /* device_auth is on in this server or one of its locations */
    unsigned                    needed:1;
    u_char                     *on_file;
    ngx_uint_t                  on_line;
} ngx_http_device_auth_srv_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_flag_t                  early_data;
    ngx_str_t                   header_prefix;
    ngx_table_elt_t            *headers;      /* [NGX_HTTP_DEVICE_AUTH_HDR_N] */

    /* device_auth_log_level: of every decision, and of each */
    ngx_uint_t                  log_level;
    ngx_uint_t                  log_levels[NGX_HTTP_DEVICE_AUTH_S_N];
    ngx_msec_t                  log_interval;

    ngx_uint_t                  fail_mode;
    ngx_msec_t                  grace;
    ngx_flag_t                  registry;
    ngx_uint_t                  key_binding;  /* NGX_DEVICE_AUTH_BIND_* */
    ngx_http_complex_value_t   *location;
    ngx_msec_t                  dup_window;
    ngx_int_t                   dup_limit;
    ngx_uint_t                  dup_action;
} ngx_http_device_auth_loc_conf_t;


/*
 * Fault injection for the tests of error paths no input can reach (an
 * allocation that fails): DEVICE_AUTH_FAULT=<point> in the environment of
 * nginx's master makes that point fail (t/error-paths.t).
 */
#define ngx_http_device_auth_fault(point)                                     \
    (ngx_http_device_auth_fault_point[0]                                      \
     && ngx_strcmp(ngx_http_device_auth_fault_point, point) == 0)


extern ngx_module_t  ngx_http_device_auth_module;
extern u_char        ngx_http_device_auth_fault_point[32];


#endif /* _NGX_HTTP_DEVICE_AUTH_MODULE_H_INCLUDED_ */
