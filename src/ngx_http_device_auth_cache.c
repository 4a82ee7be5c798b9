
/*
 * The device state a worker holds.
 *
 * An entry holds what Redis said of a device (revoked, and for how long;
 * registered, and the key the registration binds) or of a signer (revoked, compromised), read by the worker's
 * command connection after "CLIENT CACHING yes": Redis then pushes the
 * invalidation of those keys to the worker's subscriber, and the entry
 * forgets them.  A fact is current only when it was read in the current
 * epoch of the link: the link's epoch ends whenever the command connection
 * or the subscriber is lost, because invalidations may have been missed
 * from then on.  Facts of the epoch that ended serve for the grace
 * (device_auth_grace) while the link is down; after that, and as soon as
 * it is up again, they are read anew.
 *
 * An invalidation that arrives while the entry is being read (the reply
 * and the message travel on different connections, in either order) marks
 * it stale: the reply serves the requests that waited for it, but is not
 * kept.  A revocation with a TTL (a quarantine) ends locally when its TTL
 * does, whenever Redis' expiry gets to send the invalidation.
 *
 * Entries live outside any pool (ngx_alloc), in a tree by serial or signer
 * id and a least-recently-used queue; past device_auth_cache_size, the
 * least recently used entries with nothing in flight are dropped.
 *
 * With a Redis Cluster, each node has a link of its own: what is current
 * is what the cluster says of the entry's slots and their nodes
 * (ngx_http_device_auth_cluster_epoch()), the cache's epoch its counter.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_cache.h"
#include "ngx_http_device_auth_cluster.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_keys.h"


static ngx_http_device_auth_entry_t *ngx_http_device_auth_cache_find(
    ngx_http_device_auth_cache_t *cache, ngx_uint_t signer, u_char *id,
    size_t len, uint32_t hash);
static void ngx_http_device_auth_cache_release(void *data);
static void ngx_http_device_auth_cache_unsight(
    ngx_http_device_auth_entry_t *e);
static void ngx_http_device_auth_cache_evict(
    ngx_http_device_auth_cache_t *cache);
static void ngx_http_device_auth_cache_free(
    ngx_http_device_auth_cache_t *cache, ngx_http_device_auth_entry_t *e);
static void ngx_http_device_auth_cache_forget(
    ngx_http_device_auth_entry_t *e);
static ngx_int_t ngx_http_device_auth_cache_text(u_char **data,
    size_t *len, ngx_device_auth_text_t *value);


void
ngx_http_device_auth_cache_init(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_main_conf_t *dmcf, ngx_log_t *log)
{
    ngx_memzero(cache, sizeof(ngx_http_device_auth_cache_t));

    ngx_rbtree_init(&cache->tree, &cache->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&cache->lru);

    cache->max = dmcf->cache_size;
    cache->epoch = 1;
    cache->log = log;
    cache->conf = dmcf;
}


void
ngx_http_device_auth_cache_exit(ngx_http_device_auth_cache_t *cache)
{
    ngx_queue_t                   *q;
    ngx_http_device_auth_entry_t  *e;

    while (!ngx_queue_empty(&cache->lru)) {
        q = ngx_queue_last(&cache->lru);
        e = ngx_queue_data(q, ngx_http_device_auth_entry_t, lru);
        ngx_http_device_auth_cache_free(cache, e);
    }
}


/*
 * The entry of a device or signer, made when there is none; NULL: no
 * memory.  The hash is ngx_http_device_auth_cache_hash()'s of the id: a
 * connection computes it once, not at each of its requests.
 */

ngx_http_device_auth_entry_t *
ngx_http_device_auth_cache_get(ngx_http_device_auth_cache_t *cache,
    ngx_uint_t signer, u_char *id, size_t len, uint32_t hash)
{
    ngx_http_device_auth_entry_t  *e;

    e = ngx_http_device_auth_cache_find(cache, signer, id, len, hash);

    if (e) {
        ngx_queue_remove(&e->lru);
        ngx_queue_insert_head(&cache->lru, &e->lru);
        return e;
    }

    e = ngx_http_device_auth_fault("cache_entry") ? NULL
        : ngx_alloc(offsetof(ngx_http_device_auth_entry_t, id) + len,
                    cache->log);
    if (e == NULL) {
        return NULL;
    }

    ngx_memzero(e, offsetof(ngx_http_device_auth_entry_t, id));

    ngx_memcpy(e->id, id, len);
    e->signer = signer;
    e->sn.str.len = len;
    e->sn.str.data = e->id;
    e->sn.node.key = hash;

    ngx_rbtree_insert(&cache->tree, &e->sn.node);
    ngx_queue_insert_head(&cache->lru, &e->lru);
    cache->count++;

    ngx_http_device_auth_cache_evict(cache);

    return e;
}


/*
 * An entry held by a connection, until its pool goes: it is not evicted
 * meanwhile (the limit may be passed by as many entries as connections
 * hold), and the connection's requests use it without a search.  A
 * worker's connections close before its cache goes, or never (exit).
 */

typedef struct {
    ngx_http_device_auth_cache_t  *cache;
    ngx_http_device_auth_entry_t  *entry;
} ngx_http_device_auth_hold_t;


ngx_int_t
ngx_http_device_auth_cache_hold(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_pool_t *pool)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_device_auth_hold_t  *h;

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_device_auth_hold_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    h = cln->data;
    h->cache = cache;
    h->entry = e;

    cln->handler = ngx_http_device_auth_cache_release;

    e->refs++;

    return NGX_OK;
}


static void
ngx_http_device_auth_cache_release(void *data)
{
    ngx_http_device_auth_hold_t *h = data;

    ngx_http_device_auth_entry_t  *e;

    e = h->entry;

    if (--e->refs) {
        return;
    }

    /* used until now: the most recent */

    ngx_queue_remove(&e->lru);
    ngx_queue_insert_head(&h->cache->lru, &e->lru);

    ngx_http_device_auth_cache_evict(h->cache);
}


static ngx_http_device_auth_entry_t *
ngx_http_device_auth_cache_find(ngx_http_device_auth_cache_t *cache,
    ngx_uint_t signer, u_char *id, size_t len, uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_device_auth_entry_t  *e;

    node = cache->tree.root;
    sentinel = cache->tree.sentinel;

    /* as ngx_str_rbtree_lookup(), and devices apart from signers */

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        e = (ngx_http_device_auth_entry_t *) node;

        if (len != e->sn.str.len) {
            node = (len < e->sn.str.len) ? node->left : node->right;
            continue;
        }

        rc = ngx_memcmp(id, e->sn.str.data, len);

        if (rc == 0 && (ngx_uint_t) e->signer == signer) {
            return e;
        }

        node = (rc < 0 || (rc == 0 && (ngx_uint_t) e->signer > signer))
               ? node->left : node->right;
    }

    return NULL;
}


uint32_t
ngx_http_device_auth_cache_hash(ngx_uint_t signer, u_char *id, size_t len)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, (u_char *) (signer ? "s" : "d"), 1);
    ngx_crc32_update(&crc, id, len);
    ngx_crc32_final(crc);

    return crc;
}


/* past the limit: the least recently used entries with nothing in flight */

static void
ngx_http_device_auth_cache_evict(ngx_http_device_auth_cache_t *cache)
{
    ngx_uint_t                     tries;
    ngx_queue_t                   *q;
    ngx_http_device_auth_entry_t  *e;

    for (tries = 0; cache->count > cache->max && tries < 16; tries++) {
        q = ngx_queue_last(&cache->lru);
        e = ngx_queue_data(q, ngx_http_device_auth_entry_t, lru);

        if (e->op || e->refs) {
            /* requests wait on it, or a connection holds it: it stays */
            ngx_queue_remove(q);
            ngx_queue_insert_head(&cache->lru, q);
            continue;
        }

        ngx_http_device_auth_cache_free(cache, e);
        ngx_http_device_auth_metrics_cache(cache->conf,
                                          NGX_HTTP_DEVICE_AUTH_CM_EVICTION);
    }
}


static void
ngx_http_device_auth_cache_free(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e)
{
    ngx_uint_t  i;

    ngx_rbtree_delete(&cache->tree, &e->sn.node);
    ngx_queue_remove(&e->lru);
    cache->count--;

    ngx_http_device_auth_cache_forget(e);

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_SIGHTINGS; i++) {
        if (e->sightings[i].place) {
            ngx_free(e->sightings[i].place);
        }
    }

    ngx_free(e);
}


/*
 * What Redis said is forgotten: it is to be read again; the decisions
 * from the new facts are news, their events are sent again.
 */

static void
ngx_http_device_auth_cache_forget(ngx_http_device_auth_entry_t *e)
{
    if (e->revoked) {
        ngx_free(e->revoked);
        e->revoked = NULL;
    }

    if (e->compromised) {
        ngx_free(e->compromised);
        e->compromised = NULL;
    }

    e->revoked_len = 0;
    e->compromised_len = 0;
    e->revoked_until = 0;
    e->registered = 0;
    e->key = NGX_DEVICE_AUTH_REGKEY_NONE;
    e->epoch = 0;
    e->read_seq = 0;

    ngx_memzero(e->events, sizeof(e->events));
}


/* the epoch the entry's facts are current in now; 0: none (link down) */

ngx_uint_t
ngx_http_device_auth_cache_epoch(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e)
{
    if (cache->cluster) {
        return ngx_http_device_auth_cluster_epoch(cache->cluster, e, 0);
    }

    return cache->up ? cache->epoch : 0;
}


/* the facts of the entry were read in this epoch, and the link is up */

ngx_uint_t
ngx_http_device_auth_cache_current(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e)
{
    ngx_uint_t  epoch;

    epoch = ngx_http_device_auth_cache_epoch(cache, e);

    return epoch && e->epoch == epoch;
}


/* the link is down, and the entry was current when it went down */

ngx_uint_t
ngx_http_device_auth_cache_graced(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_msec_t grace)
{
    if (cache->cluster) {
        return ngx_http_device_auth_cluster_graced(cache->cluster, e, grace);
    }

    return !cache->up && grace && e->epoch && e->epoch == cache->lost_epoch
           && ngx_current_msec - cache->lost_at < grace;
}


/*
 * The facts of a device and its signer may decide while Redis cannot be
 * asked: each is current or in its grace, and one at least in its grace
 * (one link: both in it; with a cluster, their nodes may differ).
 */

ngx_uint_t
ngx_http_device_auth_cache_in_grace(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *dev, ngx_http_device_auth_entry_t *sig,
    ngx_msec_t grace)
{
    ngx_uint_t  gd, gs;

    gd = ngx_http_device_auth_cache_graced(cache, dev, grace);
    gs = ngx_http_device_auth_cache_graced(cache, sig, grace);

    return (gd || gs)
           && (gd || ngx_http_device_auth_cache_current(cache, dev))
           && (gs || ngx_http_device_auth_cache_current(cache, sig));
}


/* the facts of a device and its signer, for the decision */

void
ngx_http_device_auth_cache_facts(ngx_http_device_auth_entry_t *e,
    ngx_http_device_auth_entry_t *signer, ngx_device_auth_facts_t *f)
{
    ngx_memzero(f, sizeof(ngx_device_auth_facts_t));

    /* a quarantine ends with its TTL, whenever Redis says so */

    if (e->revoked && e->revoked_until
        && (ngx_msec_int_t) (ngx_current_msec - e->revoked_until) >= 0)
    {
        ngx_free(e->revoked);
        e->revoked = NULL;
        e->revoked_len = 0;
        e->revoked_until = 0;
    }

    f->revoked.data = (char *) e->revoked;
    f->revoked.len = e->revoked_len;
    f->registered = e->registered;
    f->key = e->key;
    f->key_sha256 = e->key_sha256;

    if (signer) {
        f->signer_revoked.data = (char *) signer->revoked;
        f->signer_revoked.len = signer->revoked_len;
        f->signer_compromised.data = (char *) signer->compromised;
        f->signer_compromised.len = signer->compromised_len;
    }
}


/* "pttl": of the value, ms; -1: none */

ngx_int_t
ngx_http_device_auth_cache_set_revoked(ngx_http_device_auth_entry_t *e,
    ngx_device_auth_text_t *value, long long pttl)
{
    e->revoked_until = 0;

    if (ngx_http_device_auth_cache_text(&e->revoked, &e->revoked_len, value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (e->revoked && pttl >= 0) {
        e->revoked_until = ngx_current_msec + (ngx_msec_t) pttl;

        /* 0 means "none" */
        if (e->revoked_until == 0) {
            e->revoked_until = 1;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_device_auth_cache_set_compromised(ngx_http_device_auth_entry_t *e,
    ngx_device_auth_text_t *value)
{
    return ngx_http_device_auth_cache_text(&e->compromised,
                                           &e->compromised_len, value);
}


static ngx_int_t
ngx_http_device_auth_cache_text(u_char **data, size_t *len,
    ngx_device_auth_text_t *value)
{
    if (*data) {
        ngx_free(*data);
        *data = NULL;
        *len = 0;
    }

    if (value->data == NULL) {
        return NGX_OK;
    }

    /* a value of 0 bytes is a value: not NULL */

    *data = ngx_alloc(value->len + 1, ngx_cycle->log);
    if (*data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(*data, value->data, value->len);
    *len = value->len;

    return NGX_OK;
}


/*
 * The facts just read, in the epoch "epoch", are kept, unless the link
 * went down meanwhile (or with a cluster, a slot moved) or an
 * invalidation came while they were read: then they served once.
 */

void
ngx_http_device_auth_cache_keep(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_uint_t epoch)
{
    e->epoch = (epoch && !e->stale
                && epoch == ngx_http_device_auth_cache_epoch(cache, e))
               ? epoch : 0;
    e->stale = 0;
}


/* a sighting of the device at this place still fresh, or NULL */

ngx_http_device_auth_sighting_t *
ngx_http_device_auth_cache_sighting(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_str_t *place, ngx_msec_t window,
    ngx_int_t limit)
{
    ngx_uint_t                        i, epoch;
    ngx_http_device_auth_sighting_t  *s;

    epoch = ngx_http_device_auth_cache_epoch(cache, e);

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_SIGHTINGS; i++) {
        s = &e->sightings[i];

        if (s->place && epoch && s->epoch == epoch && s->window == window
            && s->limit == limit && s->place_len == place->len
            && ngx_memcmp(s->place, place->data, place->len) == 0
            && ngx_current_msec - s->time < window / 10)
        {
            return s;
        }
    }

    return NULL;
}


/*
 * The places are tracked without NOLOOP (ngx_http_device_auth_redis.c), so
 * the sighting's own writes come back as invalidations of P{SN}:seen on
 * the subscriber, before or after its reply.  The script says how many it
 * caused: those that come after the reply are not news.  What came while
 * it was in flight counts as its own first: the script read the places
 * after any write before it, and one that followed it can only be an
 * invalidation after its own on the subscriber.  A count too low costs a
 * sighting again, never a change missed.
 */

void
ngx_http_device_auth_cache_sighting_start(ngx_http_device_auth_entry_t *e)
{
    e->sighting = 1;
    e->seen_early = 0;
    e->seen_own = 0;
}


void
ngx_http_device_auth_cache_sighting_end(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_uint_t own)
{
    e->sighting = 0;
    e->own_epoch = ngx_http_device_auth_cache_epoch(cache, e);
    e->seen_own = (own > e->seen_early && e->own_epoch)
                  ? own - e->seen_early : 0;
    e->seen_early = 0;
}


/*
 * A sighting made: an "ok" stays fresh for a tenth of the window (Redis
 * counts a place seen again within it as seen); a clone is sighted again
 * at every request, as before.
 */

ngx_int_t
ngx_http_device_auth_cache_sighted(ngx_http_device_auth_cache_t *cache,
    ngx_http_device_auth_entry_t *e, ngx_str_t *place, ngx_msec_t window,
    ngx_int_t limit, int sight)
{
    ngx_uint_t                        i, epoch;
    ngx_http_device_auth_sighting_t  *s, *slot;

    /* the place's own slot, else an empty one, else the oldest */

    slot = NULL;

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_SIGHTINGS; i++) {
        s = &e->sightings[i];

        if (s->place && s->place_len == place->len
            && ngx_memcmp(s->place, place->data, place->len) == 0)
        {
            slot = s;
            break;
        }

        if (slot == NULL
            || (slot->place
                && (s->place == NULL
                    || (ngx_msec_int_t) (s->time - slot->time) < 0)))
        {
            slot = s;
        }
    }

    epoch = ngx_http_device_auth_cache_epoch(cache, e);

    if (sight != NGX_DEVICE_AUTH_SIGHT_OK || epoch == 0) {
        if (slot->place && slot->place_len == place->len
            && ngx_memcmp(slot->place, place->data, place->len) == 0)
        {
            slot->epoch = 0;
        }

        return NGX_OK;
    }

    if (slot->place_len != place->len
        || ngx_memcmp(slot->place, place->data, place->len) != 0)
    {
        if (slot->place) {
            ngx_free(slot->place);
        }

        slot->place = ngx_alloc(place->len ? place->len : 1, ngx_cycle->log);
        if (slot->place == NULL) {
            slot->place_len = 0;
            return NGX_ERROR;
        }

        ngx_memcpy(slot->place, place->data, place->len);
        slot->place_len = place->len;
    }

    slot->time = ngx_current_msec;
    slot->epoch = epoch;
    slot->window = window;
    slot->limit = limit;

    return NGX_OK;
}


/* an invalidation message of Redis: one key changed */

void
ngx_http_device_auth_cache_invalidate(ngx_http_device_auth_cache_t *cache,
    u_char *key, size_t len)
{
    int                            kind;
    size_t                         id_len;
    uint32_t                       hash;
    ngx_uint_t                     signer;
    const u_char                  *id;
    ngx_http_device_auth_entry_t  *e;

    ngx_http_device_auth_metrics_cache(cache->conf,
                                       NGX_HTTP_DEVICE_AUTH_CM_INVALIDATION);

    kind = ngx_device_auth_key_parse(cache->conf->redis_prefix.data,
                                     cache->conf->redis_prefix.len, key, len,
                                     &id, &id_len);

    switch (kind) {

    case NGX_DEVICE_AUTH_KEY_REVOKED:
    case NGX_DEVICE_AUTH_KEY_REGISTERED:
    case NGX_DEVICE_AUTH_KEY_SEEN:
    case NGX_DEVICE_AUTH_KEY_EVRL:
        signer = 0;
        break;

    case NGX_DEVICE_AUTH_KEY_SIGNER_REVOKED:
    case NGX_DEVICE_AUTH_KEY_SIGNER_COMPROMISED:
        signer = 1;
        break;

    default:
        /* the edges of a sighting, the events, the day's devices */
        return;
    }

    hash = ngx_http_device_auth_cache_hash(signer, (u_char *) id, id_len);

    e = ngx_http_device_auth_cache_find(cache, signer, (u_char *) id, id_len,
                                        hash);
    if (e == NULL) {
        return;
    }

    /*
     * The places changed (another edge sighted the device, this one, or
     * they were deleted): the next request sights it again, and counts
     * them anew; the script rewrites them at most once a tenth of the
     * window.  The event rate changed (reset, or written by a sighting
     * here): the next refusal asks the script again.
     */

    if (kind == NGX_DEVICE_AUTH_KEY_SEEN) {

        if (e->sighting) {
            e->seen_early += (e->seen_early < 3);

        } else if (e->seen_own
                   && e->own_epoch
                      == ngx_http_device_auth_cache_epoch(cache, e))
        {
            /* this worker's own write, sighted from its reply */
            e->seen_own--;
            return;
        }

        e->seen_own = 0;
        ngx_http_device_auth_cache_unsight(e);
        return;
    }

    if (kind == NGX_DEVICE_AUTH_KEY_EVRL) {
        ngx_memzero(e->events, sizeof(e->events));
        return;
    }

    if (e->op) {
        e->stale = 1;
    }

    ngx_http_device_auth_cache_forget(e);
}


/* FLUSHALL, FLUSHDB: everything changed */

void
ngx_http_device_auth_cache_flush(ngx_http_device_auth_cache_t *cache)
{
    ngx_queue_t                   *q;
    ngx_http_device_auth_entry_t  *e;

    ngx_http_device_auth_metrics_cache(cache->conf,
                                       NGX_HTTP_DEVICE_AUTH_CM_FLUSH);

    for (q = ngx_queue_head(&cache->lru);
         q != ngx_queue_sentinel(&cache->lru);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_device_auth_entry_t, lru);

        if (e->op) {
            e->stale = 1;
        }

        ngx_http_device_auth_cache_forget(e);
        ngx_http_device_auth_cache_unsight(e);
    }
}


static void
ngx_http_device_auth_cache_unsight(ngx_http_device_auth_entry_t *e)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_DEVICE_AUTH_SIGHTINGS; i++) {
        e->sightings[i].epoch = 0;
    }
}


/*
 * The link went down: its epoch ends, and what it read serves for the
 * grace; or it is up again, in a new epoch: nothing read before counts.
 */

void
ngx_http_device_auth_cache_link(ngx_http_device_auth_cache_t *cache,
    ngx_uint_t up)
{
    if (up) {
        cache->up = 1;
        return;
    }

    if (cache->up) {
        cache->lost_epoch = cache->epoch;
        cache->lost_at = ngx_current_msec;
        ngx_http_device_auth_metrics_cache(cache->conf,
                                           NGX_HTTP_DEVICE_AUTH_CM_FLUSH);
    }

    cache->up = 0;
    cache->epoch++;
}
