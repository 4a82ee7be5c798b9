
/*
 * The device state a worker holds: the facts of devices and signers read
 * from Redis, kept current by its invalidations, and where the devices
 * were sighted from this worker.  Bounded, least recently used first out.
 */


#ifndef _NGX_HTTP_DEVICE_AUTH_CACHE_H_INCLUDED_
#define _NGX_HTTP_DEVICE_AUTH_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_device_auth_decide.h"


#define NGX_HTTP_DEVICE_AUTH_SIGHTINGS  2


/* a place a device was sighted at from this worker, and when */

typedef struct {
    ngx_msec_t                  time;
    ngx_uint_t                  epoch;
    ngx_msec_t                  window;
    ngx_int_t                   limit;
    size_t                      place_len;
    u_char                     *place;         /* ngx_alloc() */
} ngx_http_device_auth_sighting_t;


/* what the edge knows of one Redis fact holder: a device or a signer */

typedef struct {
    ngx_str_node_t              sn;            /* serial or signer id */
    ngx_queue_t                 lru;
    ngx_uint_t                  epoch;         /* read in; 0: not read */

    /* the operation that last read the facts; 0 once they are forgotten */
    ngx_uint_t                  read_seq;

    /* an operation in flight for it: its requests wait on it */
    void                       *op;

    /* connections that hold it (ngx_http_device_auth_cache_hold()) */
    ngx_uint_t                  refs;

    unsigned                    signer:1;
    unsigned                    stale:1;       /* invalidated in flight */

    /*
     * P{SN}:seen: a sighting in flight, the invalidations that came
     * meanwhile, and those of its own writes still to come (in own_epoch)
     */
    unsigned                    sighting:1;
    unsigned                    seen_early:2;
    unsigned                    seen_own:2;
    unsigned                    registered:1;
    unsigned                    key:2;         /* NGX_DEVICE_AUTH_REGKEY_* */

    /* the key the registration binds (spki_sha256), when key says so */
    u_char                      key_sha256[NGX_DEVICE_AUTH_KEY_LEN];

    /* device: P{SN}:revoked; signer: Psigner:<id>:revoked */
    ngx_msec_t                  revoked_until; /* a TTL; 0: none */
    size_t                      revoked_len;
    u_char                     *revoked;       /* NULL: not revoked */

    /* signer: Psigner:<id>:compromised */
    size_t                      compromised_len;
    u_char                     *compromised;

    ngx_http_device_auth_sighting_t  sightings[NGX_HTTP_DEVICE_AUTH_SIGHTINGS];
    ngx_uint_t                  own_epoch;

    /* when this worker last asked to send each event for it */
    ngx_msec_t                  events[NGX_DEVICE_AUTH_EV_N];

    u_char                      id[1];         /* the serial or signer id */
} ngx_http_device_auth_entry_t;


typedef struct {
    ngx_rbtree_t                tree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;           /* most recent first */
    ngx_uint_t                  count;         /* devices */
    ngx_uint_t                  max;

    /*
     * The link's epochs: an entry is current when it was read in this
     * epoch while the link is up; one read in the epoch that ended at
     * lost_at serves during the grace.
     */
    ngx_uint_t                  epoch;
    ngx_uint_t                  lost_epoch;
    ngx_msec_t                  lost_at;
    unsigned                    up:1;

    /* a Redis Cluster's: the epochs are its nodes' and slots' */
    void                       *cluster;

    ngx_log_t                  *log;
    ngx_http_device_auth_main_conf_t  *conf;
} ngx_http_device_auth_cache_t;


void ngx_http_device_auth_cache_init(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_main_conf_t *dmcf, ngx_log_t *log);
void ngx_http_device_auth_cache_exit(ngx_http_device_auth_cache_t *cache);
uint32_t ngx_http_device_auth_cache_hash(ngx_uint_t signer, u_char *id,
    size_t len);
ngx_http_device_auth_entry_t *ngx_http_device_auth_cache_get(
    ngx_http_device_auth_cache_t *cache, ngx_uint_t signer, u_char *id,
    size_t len, uint32_t hash);
ngx_int_t ngx_http_device_auth_cache_hold(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e,
    ngx_pool_t *pool);
ngx_uint_t ngx_http_device_auth_cache_current(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e);
ngx_uint_t ngx_http_device_auth_cache_graced(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e,
    ngx_msec_t grace);
ngx_uint_t ngx_http_device_auth_cache_in_grace(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *dev,
    ngx_http_device_auth_entry_t *sig, ngx_msec_t grace);
void ngx_http_device_auth_cache_facts(ngx_http_device_auth_entry_t *e,
    ngx_http_device_auth_entry_t *signer, ngx_device_auth_facts_t *f);
ngx_int_t ngx_http_device_auth_cache_set_revoked(
    ngx_http_device_auth_entry_t *e, ngx_device_auth_text_t *value,
    long long pttl);
ngx_int_t ngx_http_device_auth_cache_set_compromised(
    ngx_http_device_auth_entry_t *e, ngx_device_auth_text_t *value);
ngx_uint_t ngx_http_device_auth_cache_epoch(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e);
void ngx_http_device_auth_cache_keep(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_uint_t epoch);

ngx_http_device_auth_sighting_t *ngx_http_device_auth_cache_sighting(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e,
    ngx_str_t *place, ngx_msec_t window, ngx_int_t limit);
void ngx_http_device_auth_cache_sighting_start(
    ngx_http_device_auth_entry_t *e);
void ngx_http_device_auth_cache_sighting_end(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e,
    ngx_uint_t own);
ngx_int_t ngx_http_device_auth_cache_sighted(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e,
    ngx_str_t *place, ngx_msec_t window, ngx_int_t limit, int sight);

void ngx_http_device_auth_cache_invalidate(
    ngx_http_device_auth_cache_t *cache, u_char *key, size_t len);
void ngx_http_device_auth_cache_flush(ngx_http_device_auth_cache_t *cache);
void ngx_http_device_auth_cache_link(ngx_http_device_auth_cache_t *cache,
    ngx_uint_t up);


#endif /* _NGX_HTTP_DEVICE_AUTH_CACHE_H_INCLUDED_ */
