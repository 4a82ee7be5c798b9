
/*
 * Device certificate policy: pinned trust anchors, chain verification,
 * certificate profiles and device identity.
 *
 * Plain C and OpenSSL, no nginx types: the same code runs in the TLS
 * handshake, in build/device-auth (cli/) and in the fuzz targets.
 */


#ifndef _NGX_DEVICE_AUTH_CERT_H_INCLUDED_
#define _NGX_DEVICE_AUTH_CERT_H_INCLUDED_


#include <stddef.h>
#include <openssl/x509.h>


#define NGX_DEVICE_AUTH_ID_LEN        32     /* SHA-256 */
#define NGX_DEVICE_AUTH_HEX_LEN       64
#define NGX_DEVICE_AUTH_SERIAL_MAX    64
#define NGX_DEVICE_AUTH_REASON_MAX    256
#define NGX_DEVICE_AUTH_SUBJECT_MAX   160
#define NGX_DEVICE_AUTH_ERR_MAX       512

/* verdict of the certificate checks */
#define NGX_DEVICE_AUTH_CERT_OK       0
#define NGX_DEVICE_AUTH_CERT_INVALID  1

#define NGX_DEVICE_AUTH_PROFILE_ATECC608  0
#define NGX_DEVICE_AUTH_PROFILE_GENERIC   1

/* failure classes, for metrics: see ngx_device_auth_reason_names */
#define NGX_DEVICE_AUTH_R_NONE               0
#define NGX_DEVICE_AUTH_R_SIGNER_NOT_PINNED  1
#define NGX_DEVICE_AUTH_R_UNPINNED_ROOT      2
#define NGX_DEVICE_AUTH_R_EXPIRED            3
#define NGX_DEVICE_AUTH_R_NOT_YET_VALID      4
#define NGX_DEVICE_AUTH_R_CHAIN_TOO_LONG     5
#define NGX_DEVICE_AUTH_R_BAD_SIGNATURE      6
#define NGX_DEVICE_AUTH_R_ISSUER_NOT_CA      7
#define NGX_DEVICE_AUTH_R_PURPOSE            8
#define NGX_DEVICE_AUTH_R_KEY_TYPE           9
#define NGX_DEVICE_AUTH_R_CURVE              10
#define NGX_DEVICE_AUTH_R_SIGNATURE_ALG      11
#define NGX_DEVICE_AUTH_R_DEVICE_IS_CA       12
#define NGX_DEVICE_AUTH_R_SUBJECT            13
#define NGX_DEVICE_AUTH_R_RESUMED_SESSION    14
#define NGX_DEVICE_AUTH_R_OTHER              15
#define NGX_DEVICE_AUTH_R_N                  16

/*
 * Serialized identity kept in the TLS session (ticket appdata): "DA",
 * version, status, signer id, anchor id, id of the policy that verified
 * it, and an id of the context it was verified in, chosen by the caller
 * (the module's: the server).
 */
#define NGX_DEVICE_AUTH_APPDATA_LEN   (4 + 4 * NGX_DEVICE_AUTH_ID_LEN)


typedef struct {
    STACK_OF(X509)      *certs;
    unsigned char      (*ids)[NGX_DEVICE_AUTH_ID_LEN];
    int                  n;
} ngx_device_auth_bundle_t;


typedef struct {
    X509_STORE                *store;
    ngx_device_auth_bundle_t  *roots;
    ngx_device_auth_bundle_t  *signers;    /* NULL: any intermediate */
    int                        depth;
    int                        profile;

    /* SHA-256 of everything above that decides: pins, depth, profile */
    unsigned char              id[NGX_DEVICE_AUTH_ID_LEN];
} ngx_device_auth_policy_t;


typedef struct {
    int                  status;           /* NGX_DEVICE_AUTH_CERT_* */
    int                  x509_error;       /* X509_V_ERR_* when invalid */
    int                  reason_code;      /* NGX_DEVICE_AUTH_R_* */

    unsigned char        fingerprint[NGX_DEVICE_AUTH_ID_LEN];
    /* SHA-256 of the DER SubjectPublicKeyInfo: what a registry binds */
    unsigned char        spki[NGX_DEVICE_AUTH_ID_LEN];
    unsigned char        signer_id[NGX_DEVICE_AUTH_ID_LEN];
    unsigned char        anchor_id[NGX_DEVICE_AUTH_ID_LEN];

    size_t               serial_len;       /* 0: unknown */
    char                 serial[NGX_DEVICE_AUTH_SERIAL_MAX + 1];

    char                 reason[NGX_DEVICE_AUTH_REASON_MAX];
    char                 subject[NGX_DEVICE_AUTH_SUBJECT_MAX];
} ngx_device_auth_identity_t;


ngx_device_auth_bundle_t *ngx_device_auth_bundle_load(const char *path,
    char *err, size_t errlen);
ngx_device_auth_bundle_t *ngx_device_auth_bundle_from_mem(const char *data,
    size_t len, char *err, size_t errlen);
void ngx_device_auth_bundle_free(ngx_device_auth_bundle_t *b);
int ngx_device_auth_bundle_find(ngx_device_auth_bundle_t *b,
    const unsigned char *id);
int ngx_device_auth_bundle_equal(ngx_device_auth_bundle_t *a,
    ngx_device_auth_bundle_t *b);
int ngx_device_auth_bundle_check_ca(ngx_device_auth_bundle_t *b,
    char *err, size_t errlen);

ngx_device_auth_policy_t *ngx_device_auth_policy_create(
    ngx_device_auth_bundle_t *roots, ngx_device_auth_bundle_t *signers,
    int depth, int profile, char *err, size_t errlen);
void ngx_device_auth_policy_free(ngx_device_auth_policy_t *p);
int ngx_device_auth_profile_parse(const char *name);
const char *ngx_device_auth_profile_name(int profile);

int ngx_device_auth_verify(ngx_device_auth_policy_t *p, X509 *leaf,
    STACK_OF(X509) *sent, ngx_device_auth_identity_t *id);
int ngx_device_auth_check_profile(int profile, X509 *leaf,
    ngx_device_auth_identity_t *id);

size_t ngx_device_auth_appdata_encode(ngx_device_auth_policy_t *p,
    ngx_device_auth_identity_t *id, const unsigned char *context,
    unsigned char *buf);
const unsigned char *ngx_device_auth_appdata_context(
    const unsigned char *appdata, size_t len);
int ngx_device_auth_resume(ngx_device_auth_policy_t *p, X509 *leaf,
    const unsigned char *appdata, size_t len, ngx_device_auth_identity_t *id);

extern const char *ngx_device_auth_reason_names[NGX_DEVICE_AUTH_R_N];

void ngx_device_auth_hex(const unsigned char *in, size_t len, char *out);
void ngx_device_auth_subject(X509 *x, char *buf, size_t len);
void ngx_device_auth_issuer(X509 *x, char *buf, size_t len);
void ngx_device_auth_printable(const unsigned char *data, size_t len,
    char *buf, size_t size);
int ngx_device_auth_cert_id(X509 *x, unsigned char *id);
int ngx_device_auth_spki_id(X509 *x, unsigned char *id);
int ngx_device_auth_not_after(X509 *x, long long *t);
void ngx_device_auth_time(long long t, char *buf, size_t len);


#endif /* _NGX_DEVICE_AUTH_CERT_H_INCLUDED_ */
