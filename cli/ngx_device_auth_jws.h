
/*
 * A JWS in the JSON serialization (RFC 7515 section 7.2), signed with
 * ES256 by one of a set of pinned signer certificates: Microchip's
 * manifest entries.  The "kid" of the protected header names the signer:
 * the base64url of its subject key identifier, as Microchip writes it.
 *
 * Plain C, OpenSSL and jansson.
 */


#ifndef _NGX_DEVICE_AUTH_JWS_H_INCLUDED_
#define _NGX_DEVICE_AUTH_JWS_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ngx_device_auth_cert.h"


#define NGX_DEVICE_AUTH_JWS_KID_MAX   88      /* base64url of 64 bytes */
#define NGX_DEVICE_AUTH_JWS_SIG_LEN   64      /* ES256: r || s */


typedef struct {
    EVP_PKEY        *key;                 /* decoded once */
    char             kid[NGX_DEVICE_AUTH_JWS_KID_MAX + 1];
    unsigned char    sha256[NGX_DEVICE_AUTH_ID_LEN];    /* "x5t#S256" */
    char             subject[NGX_DEVICE_AUTH_SUBJECT_MAX];
} ngx_device_auth_jws_signer_t;


typedef struct {
    ngx_device_auth_jws_signer_t  *signers;
    int                            n;
} ngx_device_auth_jws_keys_t;


/* one JWS, decoded but not verified yet; the strings point into "jws" */
typedef struct {
    json_t          *protected_header;    /* owned */
    json_t          *header;              /* unprotected, borrowed, or NULL */
    const char      *protected_b64;
    size_t           protected_len;
    const char      *payload_b64;
    size_t           payload_len;
    unsigned char   *payload;             /* owned, decoded, NUL-terminated */
    size_t           payload_size;
    const char      *kid;                 /* borrowed from the header */
    unsigned char    signature[NGX_DEVICE_AUTH_JWS_SIG_LEN];
} ngx_device_auth_jws_t;


ngx_device_auth_jws_keys_t *ngx_device_auth_jws_keys_create(
    ngx_device_auth_bundle_t *certs, char *err, size_t errlen);
void ngx_device_auth_jws_keys_free(ngx_device_auth_jws_keys_t *keys);

int ngx_device_auth_jws_parse(json_t *jws, ngx_device_auth_jws_t *j,
    char *err, size_t errlen);
int ngx_device_auth_jws_verify(ngx_device_auth_jws_keys_t *keys,
    ngx_device_auth_jws_t *j, char *err, size_t errlen);
void ngx_device_auth_jws_free(ngx_device_auth_jws_t *j);

/* for test manifests: an ES256 signature, r || s, of "input" */
int ngx_device_auth_jws_sign(EVP_PKEY *key, const char *input, size_t len,
    unsigned char *sig);


#endif /* _NGX_DEVICE_AUTH_JWS_H_INCLUDED_ */
