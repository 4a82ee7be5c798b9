
/*
 * The device verdict from the Redis script's reply.  Plain C over hiredis'
 * reply type, no nginx types, so any reply shape can be fuzzed.
 */


#ifndef _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_
#define _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_


#include <stddef.h>
#include <hiredis/hiredis.h>


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

#define NGX_DEVICE_AUTH_REPLY_REASON_MAX  256


typedef struct {
    int         status;                   /* NGX_DEVICE_AUTH_V_* */
    int         cause;                    /* NGX_DEVICE_AUTH_CAUSE_* */
    long long   places;

    /* printable ASCII only: it goes to the error log and variables */
    size_t      reason_len;
    char        reason[NGX_DEVICE_AUTH_REPLY_REASON_MAX];
} ngx_device_auth_verdict_t;


void ngx_device_auth_reply_parse(const redisReply *reply,
    const char *serial, size_t serial_len, ngx_device_auth_verdict_t *v);
const char *ngx_device_auth_verdict_name(int status);


#endif /* _NGX_DEVICE_AUTH_REPLY_H_INCLUDED_ */
