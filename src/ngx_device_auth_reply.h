
/*
 * Replies of Redis, read into what the edge holds: the device script's,
 * a signer fact's, and the invalidation channel's messages.  Plain C over
 * hiredis' reply type, no nginx types, so any reply shape can be fuzzed.
 */


#ifndef _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_
#define _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_


#include <stddef.h>
#include <hiredis/hiredis.h>

#include "ngx_device_auth_decide.h"


/* a message of the invalidation channel */
#define NGX_DEVICE_AUTH_PUSH_BAD          0
#define NGX_DEVICE_AUTH_PUSH_SUBSCRIBED   1
#define NGX_DEVICE_AUTH_PUSH_INVALIDATE   2   /* these keys changed */
#define NGX_DEVICE_AUTH_PUSH_FLUSH        3   /* every key changed */
#define NGX_DEVICE_AUTH_PUSH_PONG         4

#define NGX_DEVICE_AUTH_INVALIDATE_CHANNEL  "__redis__:invalidate"


/* the device script's reply; texts point into the reply */

typedef struct {
    int                      fetched;     /* the facts below were read */
    ngx_device_auth_text_t   revoked;
    long long                pttl;        /* of revoked, ms; -1: none */
    int                      registered;
    int                      key;         /* NGX_DEVICE_AUTH_REGKEY_* */
    unsigned char            key_sha256[NGX_DEVICE_AUTH_KEY_LEN];

    int                      sight;       /* NGX_DEVICE_AUTH_SIGHT_* */
    long long                places;
    ngx_device_auth_text_t   reason;      /* of the sighting */
    int                      event;       /* NGX_DEVICE_AUTH_EV_* due */
    ngx_device_auth_text_t   edges;       /* that saw it, for a clone */
    long long                own;         /* its invalidations of seen */
} ngx_device_auth_device_reply_t;


int ngx_device_auth_reply_device(const redisReply *reply, const char *serial,
    size_t serial_len, ngx_device_auth_device_reply_t *d,
    ngx_device_auth_verdict_t *err);
int ngx_device_auth_reply_get(const redisReply *reply,
    ngx_device_auth_text_t *value, ngx_device_auth_verdict_t *err);
int ngx_device_auth_reply_push(const redisReply *reply,
    const redisReply *const **keys, size_t *n);
int ngx_device_auth_reply_error(const redisReply *reply,
    ngx_device_auth_verdict_t *err);
int ngx_device_auth_registered_key(const ngx_device_auth_text_t *value,
    unsigned char *key);
int ngx_device_auth_reply_scan(const redisReply *reply,
    unsigned long long *cursor, const redisReply *const **keys, size_t *n);
int ngx_device_auth_reply_integer(const redisReply *reply, long long *n);


#endif /* _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_ */
