
/*
 * Microchip manifests: a JSON array of JWS entries, one per chip, each
 * signed by a Microchip log signer.  An entry is accepted when its
 * signature verifies with a pinned log signer, its device certificate
 * (JWK "x5c") passes the edge's own policy (ngx_device_auth_cert.c: the
 * pinned roots and signers, the atecc608 profile), the JWK is the
 * certificate's key and "uniqueId" is the certificate's serial.
 *
 * Plain C, OpenSSL and jansson: the entry parser is fuzzed on its own
 * (fuzz/fuzz_manifest.c).
 */


#ifndef _NGX_DEVICE_AUTH_MANIFEST_H_INCLUDED_
#define _NGX_DEVICE_AUTH_MANIFEST_H_INCLUDED_


#include <stddef.h>

#include "ngx_device_auth_cert.h"
#include "ngx_device_auth_jws.h"
#include "ngx_device_auth_registration.h"


/* real entries are about 4 KB: a bound on what one entry may cost */
#define NGX_DEVICE_AUTH_MANIFEST_ENTRY_MAX   65536
#define NGX_DEVICE_AUTH_MANIFEST_X5C_MAX     4

#define NGX_DEVICE_AUTH_MANIFEST_CACHE      8

#define NGX_DEVICE_AUTH_MANIFEST_OK          0
#define NGX_DEVICE_AUTH_MANIFEST_REJECTED    1


/*
 * Every entry of a reel repeats the same signer certificate, and OpenSSL
 * 3.0 takes about as long to decode a certificate as to verify a
 * signature: the CA certificates of x5c are decoded once and kept here,
 * by their DER.  Not thread-safe: one object per thread or process.
 */
typedef struct {
    unsigned char               *der;
    size_t                       len;
    X509                        *x509;
} ngx_device_auth_manifest_cached_t;


typedef struct {
    ngx_device_auth_policy_t           *policy;     /* device certificates */
    ngx_device_auth_jws_keys_t         *log_signers;
    ngx_device_auth_manifest_cached_t   cache[NGX_DEVICE_AUTH_MANIFEST_CACHE];
    int                                 ncached;
} ngx_device_auth_manifest_t;


typedef struct {
    size_t                           offset;    /* in the file */
    size_t                           len;
} ngx_device_auth_manifest_span_t;


typedef struct {
    int                              status;    /* NGX_DEVICE_AUTH_MANIFEST_* */

    /* accepted: the verified serial; rejected: the serial claimed, or "" */
    char                             serial[NGX_DEVICE_AUTH_SERIAL_MAX + 1];

    /* accepted: what the registration records ("manifest" left empty) */
    ngx_device_auth_registration_t   reg;
    int                              log_signer;    /* index */

    char                             reason[NGX_DEVICE_AUTH_REASON_MAX];
} ngx_device_auth_manifest_entry_t;


int ngx_device_auth_manifest_scan(const char *data, size_t len, size_t max,
    ngx_device_auth_manifest_span_t **spans, size_t *n, char *err,
    size_t errlen);
int ngx_device_auth_manifest_entry(ngx_device_auth_manifest_t *m,
    const char *data, size_t len, ngx_device_auth_manifest_entry_t *e);
void ngx_device_auth_manifest_cache_free(ngx_device_auth_manifest_t *m);


#endif /* _NGX_DEVICE_AUTH_MANIFEST_H_INCLUDED_ */
