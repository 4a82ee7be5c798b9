
/*
 * Direct verification of a device certificate against a signer whose link
 * to the pins is already known, and the cache of verified device
 * certificates (issue 16).  Plain C and OpenSSL, as ngx_device_auth_cert.c.
 */


#ifndef _NGX_DEVICE_AUTH_VERIFY_H_INCLUDED_
#define _NGX_DEVICE_AUTH_VERIFY_H_INCLUDED_


#include "ngx_device_auth_cert.h"


/* signers learnt per policy; a fleet has a handful */
#define NGX_DEVICE_AUTH_DIRECT_SIGNERS   16

/* verified device certificates per policy (and per process) */
#define NGX_DEVICE_AUTH_LEAF_CACHE       1024
#define NGX_DEVICE_AUTH_LEAF_DER_MAX     1536


ngx_device_auth_direct_t *ngx_device_auth_direct_create(void);
void ngx_device_auth_direct_free(ngx_device_auth_direct_t *d);
void ngx_device_auth_direct_reset(ngx_device_auth_direct_t *d, int signers);

int ngx_device_auth_direct_verify(ngx_device_auth_policy_t *p, X509 *leaf,
    STACK_OF(X509) *sent, ngx_device_auth_identity_t *id);
void ngx_device_auth_direct_learn(ngx_device_auth_policy_t *p,
    STACK_OF(X509) *chain, STACK_OF(X509) *sent,
    ngx_device_auth_identity_t *id);


#endif /* _NGX_DEVICE_AUTH_VERIFY_H_INCLUDED_ */
