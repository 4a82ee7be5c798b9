
/*
 * The device decision: a pure function of the facts the edge holds about
 * a device and its signer, of the device's sighting, and of the location's
 * rules.  Plain C, no nginx types: fuzzed and tested on its own.
 */


#ifndef _NGX_DEVICE_AUTH_DECIDE_H_INCLUDED_
#define _NGX_DEVICE_AUTH_DECIDE_H_INCLUDED_


#include <stddef.h>


/* the decisions, then what a lookup can end in instead */
#define NGX_DEVICE_AUTH_V_OK                  0
#define NGX_DEVICE_AUTH_V_REVOKED             1
#define NGX_DEVICE_AUTH_V_SIGNER_REVOKED      2
#define NGX_DEVICE_AUTH_V_UNREGISTERED        3
#define NGX_DEVICE_AUTH_V_QUARANTINED         4
#define NGX_DEVICE_AUTH_V_DUPLICATE           5
#define NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED  6   /* and not registered */
#define NGX_DEVICE_AUTH_V_KEY_MISMATCH        7   /* not the registered key */
#define NGX_DEVICE_AUTH_V_DECISIONS           8
#define NGX_DEVICE_AUTH_V_NOSCRIPT            8   /* script not cached: EVAL */
#define NGX_DEVICE_AUTH_V_ERROR               9   /* error, unexpected reply */
#define NGX_DEVICE_AUTH_V_DESYNC              10  /* another lookup's reply */

#define NGX_DEVICE_AUTH_CAUSE_NONE               0
#define NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED 1
#define NGX_DEVICE_AUTH_CAUSE_REGISTRY           2
#define NGX_DEVICE_AUTH_CAUSE_KEY_BINDING        3   /* bound always */

/* what a sighting said */
#define NGX_DEVICE_AUTH_SIGHT_NONE        0   /* none made, none fresh */
#define NGX_DEVICE_AUTH_SIGHT_OK          1
#define NGX_DEVICE_AUTH_SIGHT_DUPLICATE   2   /* more places than the limit */
#define NGX_DEVICE_AUTH_SIGHT_QUARANTINED 3   /* and quarantined for it */

/* the events of the stream: named as the decisions */
#define NGX_DEVICE_AUTH_EV_NONE               0
#define NGX_DEVICE_AUTH_EV_REVOKED            1
#define NGX_DEVICE_AUTH_EV_QUARANTINED        2
#define NGX_DEVICE_AUTH_EV_SIGNER_REVOKED     3
#define NGX_DEVICE_AUTH_EV_UNREGISTERED       4
#define NGX_DEVICE_AUTH_EV_DUPLICATE          5
#define NGX_DEVICE_AUTH_EV_SIGNER_COMPROMISED 6
#define NGX_DEVICE_AUTH_EV_KEY_MISMATCH       7
#define NGX_DEVICE_AUTH_EV_N                  8

/* the key a registration binds (spki_sha256=<hex> in its value) */
#define NGX_DEVICE_AUTH_REGKEY_NONE       0   /* none: any key */
#define NGX_DEVICE_AUTH_REGKEY_SHA256     1   /* 64 hex digits */
#define NGX_DEVICE_AUTH_REGKEY_MALFORMED  2   /* spki_sha256= but no hash */

#define NGX_DEVICE_AUTH_KEY_LEN           32   /* SHA-256 */

/* when the registered key must be the certificate's */
#define NGX_DEVICE_AUTH_BIND_COMPROMISED  0   /* its signer compromised */
#define NGX_DEVICE_AUTH_BIND_ALWAYS       1

#define NGX_DEVICE_AUTH_REPLY_REASON_MAX  256


/* a text from Redis: not terminated, any bytes */

typedef struct {
    const char  *data;                    /* NULL: absent */
    size_t       len;
} ngx_device_auth_text_t;


typedef struct {
    ngx_device_auth_text_t   revoked;     /* P{SN}:revoked */
    int                      registered;  /* P{SN}:registered exists */
    int                      key;         /* NGX_DEVICE_AUTH_REGKEY_* */
    const unsigned char     *key_sha256;  /* the registered key, 32 bytes */
    ngx_device_auth_text_t   signer_revoked;
    ngx_device_auth_text_t   signer_compromised;

    /* of the certificate: SHA-256 of its SubjectPublicKeyInfo, 32 bytes */
    const unsigned char     *cert_key;

    int                      sight;       /* NGX_DEVICE_AUTH_SIGHT_* */
    ngx_device_auth_text_t   sight_reason;
} ngx_device_auth_facts_t;


typedef struct {
    int                      registry;    /* the registry is required */
    int                      key_binding; /* NGX_DEVICE_AUTH_BIND_* */
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
