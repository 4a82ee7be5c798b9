
/*
 * Metrics: counters in a shared memory zone, summed over all workers, and
 * the "device_auth_metrics" handler that serves them in the Prometheus
 * text format.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_METRICS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"


#define NGX_HTTP_DEVICE_AUTH_RE_TIMEOUT        0
#define NGX_HTTP_DEVICE_AUTH_RE_DISCONNECTED   1   /* lost with it in flight */
#define NGX_HTTP_DEVICE_AUTH_RE_NOT_CONNECTED  2   /* failed fast */
#define NGX_HTTP_DEVICE_AUTH_RE_ERROR_REPLY    3
#define NGX_HTTP_DEVICE_AUTH_RE_BAD_REPLY      4
#define NGX_HTTP_DEVICE_AUTH_RE_NOSCRIPT       5   /* resent as EVAL */
/* no connection, and why: its handshake was refused so */
#define NGX_HTTP_DEVICE_AUTH_RE_WRONGPASS      6
#define NGX_HTTP_DEVICE_AUTH_RE_NOAUTH         7
#define NGX_HTTP_DEVICE_AUTH_RE_NOPERM         8
#define NGX_HTTP_DEVICE_AUTH_RE_CANARY         9   /* the canary is missing */
#define NGX_HTTP_DEVICE_AUTH_RE_N              10

#define NGX_HTTP_DEVICE_AUTH_WORKERS_MAX       64

/* what the device state cache of the workers saw */
#define NGX_HTTP_DEVICE_AUTH_CM_HIT            0   /* decided from it */
#define NGX_HTTP_DEVICE_AUTH_CM_MISS           1   /* asked Redis */
#define NGX_HTTP_DEVICE_AUTH_CM_INVALIDATION   2   /* a key pushed */
#define NGX_HTTP_DEVICE_AUTH_CM_EVICTION       3   /* dropped for room */
#define NGX_HTTP_DEVICE_AUTH_CM_FLUSH          4   /* all forgotten */
#define NGX_HTTP_DEVICE_AUTH_CM_GRACE          5   /* decided in the grace */
#define NGX_HTTP_DEVICE_AUTH_CM_N              6


ngx_int_t ngx_http_device_auth_metrics_zone(ngx_conf_t *cf,
    ngx_http_device_auth_main_conf_t *dmcf);
char *ngx_http_device_auth_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

void ngx_http_device_auth_metrics_decision(ngx_http_request_t *r,
    ngx_uint_t status, ngx_uint_t allowed, ngx_uint_t cert_reason);
void ngx_http_device_auth_metrics_forged(ngx_http_request_t *r);
void ngx_http_device_auth_metrics_tickets(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t copies);
void ngx_http_device_auth_metrics_cache(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t kind);
void ngx_http_device_auth_metrics_link(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t up);
void ngx_http_device_auth_metrics_link_alive(
    ngx_http_device_auth_main_conf_t *dmcf);
void ngx_http_device_auth_metrics_redis_error(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t kind);
void ngx_http_device_auth_metrics_latency(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_msec_int_t usec);
void ngx_http_device_auth_metrics_reconnect(
    ngx_http_device_auth_main_conf_t *dmcf);
void ngx_http_device_auth_metrics_worker(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t inflight,
    ngx_uint_t ready);
void ngx_http_device_auth_metrics_canary(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t missing);
void ngx_http_device_auth_metrics_pins(ngx_http_device_auth_main_conf_t *dmcf,
    long long earliest);
void ngx_http_device_auth_metrics_keys(ngx_http_device_auth_main_conf_t *dmcf,
    ngx_uint_t revoked, ngx_uint_t registered);
void ngx_http_device_auth_metrics_devices(
    ngx_http_device_auth_main_conf_t *dmcf, ngx_uint_t fleet,
    ngx_uint_t edge);


#endif /* _NGX_HTTP_DEVICE_AUTH_METRICS_H_INCLUDED_ */
