
/*
 * The Redis operations on a worker's device state: read a device's facts,
 * record its sighting, read a signer's facts, send an event.  Requests
 * wait on them; the replies update the cache.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_OPS_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_OPS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_link.h"
#include "ngx_http_device_auth_cache.h"
#include "ngx_device_auth_decide.h"


#define NGX_HTTP_DEVICE_AUTH_OP_FETCH     0x01   /* a device's facts */
#define NGX_HTTP_DEVICE_AUTH_OP_SIGHT     0x02   /* and/or its sighting */
#define NGX_HTTP_DEVICE_AUTH_OP_SIGNER    0x04   /* a signer's facts */
#define NGX_HTTP_DEVICE_AUTH_OP_EVENT     0x08   /* an event's rate limit */

#define NGX_HTTP_DEVICE_AUTH_PLACE_MAX    128
#define NGX_HTTP_DEVICE_AUTH_EDGES_MAX    (10 * 66)   /* 10 names, ", " */


typedef struct ngx_http_device_auth_op_s  ngx_http_device_auth_op_t;


/* a request waiting for an operation; it leaves the queue when it ends */

typedef struct {
    ngx_queue_t                        queue;
    void                             (*handler)(void *data,
                                          ngx_http_device_auth_op_t *op);
    void                              *data;
} ngx_http_device_auth_op_waiter_t;


/* what a device's operation is about */

typedef struct {
    ngx_uint_t                         what;        /* FETCH, SIGHT */
    ngx_str_t                          place;
    ngx_msec_t                         window;
    ngx_int_t                          limit;
    ngx_uint_t                         action;      /* ..._DUP_* */
    u_char                            *signer;      /* hex id, for events */
} ngx_http_device_auth_op_args_t;


struct ngx_http_device_auth_op_s {
    ngx_queue_t                        waiters;
    ngx_queue_t                        link;        /* in the free list */
    ngx_http_device_auth_link_t       *lk;
    ngx_http_device_auth_entry_t      *entry;       /* device or signer */

    /*
     * Where its commands go: the link, or with a cluster the links of the
     * nodes of its key slots (a signer's two keys are in two slots)
     */
    ngx_http_device_auth_link_t       *nl[2];
    int                                slot[2];
    ngx_uint_t                         nslots;
    ngx_uint_t                         epoch;       /* sent in */
    ngx_uint_t                         redirects;
    void                              *ask;         /* -ASK: that node */

    ngx_uint_t                         what;
    ngx_uint_t                         seq;         /* of the link, from 1 */
    ngx_uint_t                         pending;     /* callbacks to come */
    ngx_event_t                        timer;
    ngx_http_device_auth_link_waiter_t  waiter;     /* for the link */
    ngx_msec_int_t                     start;       /* usec */

    unsigned                           done:1;
    unsigned                           failed:1;
    unsigned                           waiting:1;   /* for the link */
    unsigned                           cached:1;    /* CLIENT CACHING yes */
    unsigned                           retried:1;   /* NOSCRIPT: EVAL */
    unsigned                           desync:1;
    unsigned                           sent:1;      /* a command written */
    unsigned                           got:2;       /* signer replies */
    unsigned                           lost:1;      /* the connection was */
    unsigned                           resent:1;    /* on a new one */
    unsigned                           redirect:1;  /* -MOVED, -ASK */
    unsigned                           tryagain:1;  /* -TRYAGAIN */
    unsigned                           own:2;       /* seen's, to come */

    /* the outcome: an error, or a sighting */
    ngx_device_auth_verdict_t          result;
    int                                sight;

    /* kept to resend as EVAL and for the events */
    ngx_msec_t                         window;
    ngx_int_t                          limit;
    ngx_uint_t                         action;
    int                                event;
    size_t                             serial_len;
    size_t                             place_len;
    size_t                             edges_len;
    u_char                             serial[NGX_DEVICE_AUTH_SERIAL_MAX];
    u_char                             signer[NGX_DEVICE_AUTH_HEX_LEN];
    u_char                             place[NGX_HTTP_DEVICE_AUTH_PLACE_MAX];

    /* the edges that sighted a clone: "edge1, edge2" */
    u_char                             edges[NGX_HTTP_DEVICE_AUTH_EDGES_MAX];
};


ngx_int_t ngx_http_device_auth_op_device(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e, ngx_http_device_auth_op_args_t *args);
ngx_int_t ngx_http_device_auth_op_signer(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e);
void ngx_http_device_auth_op_event(ngx_http_device_auth_link_t *link,
    ngx_http_device_auth_entry_t *e, int event, u_char *signer,
    ngx_str_t *place, ngx_device_auth_verdict_t *v);
void ngx_http_device_auth_op_wait(ngx_http_device_auth_entry_t *e,
    ngx_http_device_auth_op_waiter_t *w);
void ngx_http_device_auth_op_cleanup(ngx_http_device_auth_link_t *link);


#endif /* _NGX_HTTP_DEVICE_AUTH_OPS_H_INCLUDED_ */
