
/*
 * The device decision: a pure function of the facts the edge holds about
 * a device and its signer, of the device's sighting, and of the location's
 * rules.  Plain C, no nginx types: fuzzed and tested on its own.
 */


#ifndef _NGX_DEVICE_AUTH_DECIDE_H_INCLUDED_
#define _NGX_DEVICE_AUTH_DECIDE_H_INCLUDED_


#include <stddef.h>


#define NGX_DEVICE_AUTH_V_OK              0
#define NGX_DEVICE_AUTH_V_REVOKED         1
#define NGX_DEVICE_AUTH_V_SIGNER_REVOKED  2
#define NGX_DEVICE_AUTH_V_UNREGISTERED    3
#define NGX_DEVICE_AUTH_V_QUARANTINED     4
#define NGX_DEVICE_AUTH_V_DUPLICATE       5
#define NGX_DEVICE_AUTH_V_NOSCRIPT        6   /* script not cached: EVAL */
#define NGX_DEVICE_AUTH_V_ERROR           7   /* error or unexpected reply */
#define NGX_DEVICE_AUTH_V_DESYNC          8   /* another lookup's reply */

#define NGX_DEVICE_AUTH_CAUSE_NONE               0
#define NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED 1
#define NGX_DEVICE_AUTH_CAUSE_REGISTRY           2

/* what a sighting said */
#define NGX_DEVICE_AUTH_SIGHT_NONE        0   /* none made, none fresh */
#define NGX_DEVICE_AUTH_SIGHT_OK          1
#define NGX_DEVICE_AUTH_SIGHT_DUPLICATE   2   /* more places than the limit */
#define NGX_DEVICE_AUTH_SIGHT_QUARANTINED 3   /* and quarantined for it */

/* the events of the stream */
#define NGX_DEVICE_AUTH_EV_NONE           0
#define NGX_DEVICE_AUTH_EV_REVOKED        1
#define NGX_DEVICE_AUTH_EV_QUARANTINED    2
#define NGX_DEVICE_AUTH_EV_SIGNER_REVOKED 3
#define NGX_DEVICE_AUTH_EV_UNREGISTERED   4
#define NGX_DEVICE_AUTH_EV_DUPLICATE      5
#define NGX_DEVICE_AUTH_EV_N              6

#define NGX_DEVICE_AUTH_REPLY_REASON_MAX  256


/* a text from Redis: not terminated, any bytes */

typedef struct {
    const char  *data;                    /* NULL: absent */
    size_t       len;
} ngx_device_auth_text_t;


typedef struct {
    ngx_device_auth_text_t   revoked;     /* P{SN}:revoked */
    int                      registered;  /* P{SN}:registered exists */
    ngx_device_auth_text_t   signer_revoked;
    ngx_device_auth_text_t   signer_compromised;

    int                      sight;       /* NGX_DEVICE_AUTH_SIGHT_* */
    ngx_device_auth_text_t   sight_reason;
} ngx_device_auth_facts_t;


typedef struct {
    int                      registry;    /* the registry is required */
} ngx_device_auth_rules_t;


typedef struct {
    int                      status;      /* NGX_DEVICE_AUTH_V_* */
    int                      cause;       /* NGX_DEVICE_AUTH_CAUSE_* */
    int                      event;       /* NGX_DEVICE_AUTH_EV_* to send */
    long long                places;

    /* printable ASCII only: it goes to the error log and variables */
    size_t                   reason_len;
    char                     reason[NGX_DEVICE_AUTH_REPLY_REASON_MAX];
} ngx_device_auth_verdict_t;


void ngx_device_auth_decide(const ngx_device_auth_facts_t *f,
    const ngx_device_auth_rules_t *rules, ngx_device_auth_verdict_t *v);
int ngx_device_auth_is_quarantine(const ngx_device_auth_text_t *revoked);
void ngx_device_auth_verdict_text(ngx_device_auth_verdict_t *v,
    const char *prefix, const char *s, size_t len);
void ngx_device_auth_verdict_append(ngx_device_auth_verdict_t *v,
    const char *s, size_t len);
const char *ngx_device_auth_verdict_name(int status);
const char *ngx_device_auth_event_name(int event);


#endif /* _NGX_DEVICE_AUTH_DECIDE_H_INCLUDED_ */
