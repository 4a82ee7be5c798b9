
/*
 * The fleet's figures at the edge: how many revoked and registered keys
 * Redis holds (counted once per start or reload), how many distinct
 * devices the fleet and this edge saw today (a HyperLogLog per day).
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_STATS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"


typedef struct {
    ngx_event_t                        timer;      /* PFCOUNT, periodic */

    /* the SCAN count: its cursor, and what it found so far */
    unsigned long long                 cursor;
    ngx_uint_t                         revoked;
    ngx_uint_t                         registered;
    ngx_uint_t                         keys;
    ngx_uint_t                         steps;
    ngx_msec_t                         start;

    /* the day's distinct devices: the replies of one read */
    ngx_uint_t                         fleet;
    ngx_uint_t                         edge;
    ngx_uint_t                         got;        /* 1: fleet, 2: edge */

    unsigned                           scanning:1;  /* a step in flight */
    unsigned                           counted:1;   /* done, or refused */
    unsigned                           reading:1;   /* PFCOUNT in flight */
    unsigned                           refused:1;   /* PFADD: logged once */
} ngx_http_device_auth_stats_t;


void ngx_http_device_auth_stats_init(ngx_http_device_auth_link_t *link);
void ngx_http_device_auth_stats_ready(ngx_http_device_auth_link_t *link);
void ngx_http_device_auth_stats_exit(ngx_http_device_auth_link_t *link);
ngx_int_t ngx_http_device_auth_stats_device(
    ngx_http_device_auth_link_t *link, ngx_str_t *serial);


#endif /* _NGX_HTTP_DEVICE_AUTH_STATS_H_INCLUDED_ */
