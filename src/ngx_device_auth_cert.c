
/*
 * Device certificate policy: pinned trust anchors, chain verification,
 * certificate profiles and device identity.  Plain C and OpenSSL.
 *
 * Strict where it protects: trust comes only from the pinned files, the
 * chain depth is bounded, the device key, signature algorithm and subject
 * must match the profile, and nothing is copied from a certificate into an
 * identity without being checked against a fixed alphabet.
 *
 * Lenient where real parts differ: X509_V_FLAG_X509_STRICT stays off,
 * because Microchip's Root CA 002 has no keyUsage extension and its
 * Root CA 001 has a non-critical basicConstraints; OpenSSL's default
 * parser accepts the '_' that device SANs put in a PrintableString, and
 * GeneralizedTime notAfter values before 2050.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ngx_device_auth_cert.h"


#define NGX_DEVICE_AUTH_APPDATA_VERSION  2


static int ngx_device_auth_bundle_read(ngx_device_auth_bundle_t *b, BIO *bio,
    const char *what, char *err, size_t errlen);
static void ngx_device_auth_name(X509_NAME *name, char *buf, size_t len);
static int ngx_device_auth_is_hex(const unsigned char *p, size_t n);
static int ngx_device_auth_serial(int profile, X509 *leaf,
    ngx_device_auth_identity_t *id);
static const unsigned char *ngx_device_auth_anchor_id(
    ngx_device_auth_policy_t *p, X509 *x, unsigned char *buf);
static int ngx_device_auth_policy_id(ngx_device_auth_policy_t *p);
static void ngx_device_auth_chain_reason(ngx_device_auth_policy_t *p,
    X509_STORE_CTX *vctx, ngx_device_auth_identity_t *id);
static int ngx_device_auth_invalid(ngx_device_auth_identity_t *id, int error,
    const char *fmt, ...);
static int ngx_device_auth_fail(ngx_device_auth_identity_t *id, int code,
    const char *fmt, ...);


const char  *ngx_device_auth_reason_names[NGX_DEVICE_AUTH_R_N] = {
    "none",
    "signer_not_pinned",
    "unpinned_root",
    "expired",
    "not_yet_valid",
    "chain_too_long",
    "bad_signature",
    "issuer_not_ca",
    "purpose",
    "key_type",
    "curve",
    "signature_algorithm",
    "device_is_ca",
    "subject",
    "resumed_session",
    "other"
};


ngx_device_auth_bundle_t *
ngx_device_auth_bundle_load(const char *path, char *err, size_t errlen)
{
    BIO                       *bio;
    ngx_device_auth_bundle_t  *b;

    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 strerror(errno ? errno : ENOENT));
        ERR_clear_error();
        return NULL;
    }

    b = calloc(1, sizeof(ngx_device_auth_bundle_t));
    if (b == NULL || ngx_device_auth_bundle_read(b, bio, path, err, errlen)) {
        BIO_free(bio);
        ngx_device_auth_bundle_free(b);
        return NULL;
    }

    BIO_free(bio);

    return b;
}


ngx_device_auth_bundle_t *
ngx_device_auth_bundle_from_mem(const char *data, size_t len, char *err,
    size_t errlen)
{
    BIO                       *bio;
    ngx_device_auth_bundle_t  *b;

    bio = BIO_new_mem_buf(data, (int) len);
    b = calloc(1, sizeof(ngx_device_auth_bundle_t));

    if (bio == NULL || b == NULL
        || ngx_device_auth_bundle_read(b, bio, "memory", err, errlen))
    {
        BIO_free(bio);
        ngx_device_auth_bundle_free(b);
        return NULL;
    }

    BIO_free(bio);

    return b;
}


static int
ngx_device_auth_bundle_read(ngx_device_auth_bundle_t *b, BIO *bio,
    const char *what, char *err, size_t errlen)
{
    int                   i;
    long                  len;
    char                 *name, *header;
    X509                 *x;
    unsigned char        *data;
    unsigned long         e;
    const unsigned char  *p;

    b->certs = sk_X509_new_null();
    if (b->certs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for ( ;; ) {
        name = NULL;
        header = NULL;
        data = NULL;

        if (PEM_read_bio(bio, &name, &header, &data, &len) == 0) {
            e = ERR_peek_last_error();
            ERR_clear_error();

            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE
                && sk_X509_num(b->certs) > 0)
            {
                break;
            }

            if (sk_X509_num(b->certs) == 0) {
                snprintf(err, errlen, "no PEM certificate found in \"%s\"",
                         what);
            } else {
                snprintf(err, errlen, "invalid PEM data after certificate "
                         "#%d in \"%s\"", sk_X509_num(b->certs), what);
            }

            return -1;
        }

        if (strcmp(name, PEM_STRING_X509) != 0
            && strcmp(name, PEM_STRING_X509_OLD) != 0)
        {
            snprintf(err, errlen, "\"%s\" holds a \"%.40s\" PEM block, "
                     "only certificates are allowed", what, name);
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(data);
            return -1;
        }

        p = data;
        x = d2i_X509(NULL, &p, len);

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);

        if (x == NULL) {
            ERR_clear_error();
            snprintf(err, errlen, "certificate #%d in \"%s\" cannot be "
                     "parsed", sk_X509_num(b->certs) + 1, what);
            return -1;
        }

        if (sk_X509_push(b->certs, x) == 0) {
            X509_free(x);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    b->n = sk_X509_num(b->certs);
    b->ids = calloc(b->n, NGX_DEVICE_AUTH_ID_LEN);
    if (b->ids == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (i = 0; i < b->n; i++) {
        if (ngx_device_auth_cert_id(sk_X509_value(b->certs, i), b->ids[i])) {
            snprintf(err, errlen, "cannot hash certificate #%d in \"%s\"",
                     i + 1, what);
            return -1;
        }
    }

    return 0;
}


void
ngx_device_auth_bundle_free(ngx_device_auth_bundle_t *b)
{
    if (b == NULL) {
        return;
    }

    sk_X509_pop_free(b->certs, X509_free);
    free(b->ids);
    free(b);
}


int
ngx_device_auth_bundle_find(ngx_device_auth_bundle_t *b,
    const unsigned char *id)
{
    int  i;

    for (i = 0; i < b->n; i++) {
        if (memcmp(b->ids[i], id, NGX_DEVICE_AUTH_ID_LEN) == 0) {
            return i;
        }
    }

    return -1;
}


/* the same certificates in the same order, whichever files they came from */

int
ngx_device_auth_bundle_equal(ngx_device_auth_bundle_t *a,
    ngx_device_auth_bundle_t *b)
{
    if (a == b) {
        return 1;
    }

    if (a == NULL || b == NULL || a->n != b->n) {
        return 0;
    }

    return memcmp(a->ids, b->ids, (size_t) a->n * NGX_DEVICE_AUTH_ID_LEN)
           == 0;
}


int
ngx_device_auth_bundle_check_ca(ngx_device_auth_bundle_t *b, char *err,
    size_t errlen)
{
    int    i;
    X509  *x;
    char   subject[NGX_DEVICE_AUTH_SUBJECT_MAX];

    for (i = 0; i < b->n; i++) {
        x = sk_X509_value(b->certs, i);

        /* 1: basicConstraints CA:TRUE; v1 and Netscape CAs are refused */

        if (X509_check_ca(x) != 1) {
            ngx_device_auth_subject(x, subject, sizeof(subject));
            snprintf(err, errlen, "certificate \"%s\" is not a CA "
                     "(no basicConstraints CA:TRUE)", subject);
            ERR_clear_error();
            return -1;
        }
    }

    return 0;
}


int
ngx_device_auth_profile_parse(const char *name)
{
    if (strcmp(name, "atecc608") == 0) {
        return NGX_DEVICE_AUTH_PROFILE_ATECC608;
    }

    if (strcmp(name, "generic") == 0) {
        return NGX_DEVICE_AUTH_PROFILE_GENERIC;
    }

    return -1;
}


const char *
ngx_device_auth_profile_name(int profile)
{
    return profile == NGX_DEVICE_AUTH_PROFILE_ATECC608 ? "atecc608"
                                                       : "generic";
}


/*
 * With pinned signers the store holds the signers themselves, checked here
 * once against the pinned roots: a handshake then verifies one signature
 * (device by signer) and the device must be issued by one of them.
 * Without pinned signers the store holds the roots and the device chain may
 * carry up to "depth" intermediates of its own.
 */

ngx_device_auth_policy_t *
ngx_device_auth_policy_create(ngx_device_auth_bundle_t *roots,
    ngx_device_auth_bundle_t *signers, int depth, int profile, char *err,
    size_t errlen)
{
    int                        i, rc;
    X509                      *x;
    X509_STORE                *rstore;
    X509_STORE_CTX            *vctx;
    ngx_device_auth_policy_t  *p;
    char                       subject[NGX_DEVICE_AUTH_SUBJECT_MAX];

    if (ngx_device_auth_bundle_check_ca(roots, err, errlen)) {
        return NULL;
    }

    p = calloc(1, sizeof(ngx_device_auth_policy_t));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    p->roots = roots;
    p->signers = signers;
    p->depth = depth;
    p->profile = profile;

    p->store = X509_STORE_new();
    if (p->store == NULL) {
        goto nomem;
    }

    for (i = 0; i < roots->n; i++) {
        if (X509_STORE_add_cert(p->store, sk_X509_value(roots->certs, i))
            == 0)
        {
            goto nomem;
        }
    }

    if (X509_STORE_set_flags(p->store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        goto nomem;
    }

    if (signers == NULL) {
        goto done;
    }

    if (depth < 1) {
        snprintf(err, errlen, "pinned signers need a verify depth of at "
                 "least 1");
        goto failed;
    }

    /* each signer must be a CA that chains to a pinned root */

    rstore = p->store;

    for (i = 0; i < signers->n; i++) {
        x = sk_X509_value(signers->certs, i);
        ngx_device_auth_subject(x, subject, sizeof(subject));

        if (X509_check_ca(x) != 1) {
            snprintf(err, errlen, "signer \"%s\" is not a CA "
                     "(no basicConstraints CA:TRUE)", subject);
            goto failed;
        }

        vctx = X509_STORE_CTX_new();
        if (vctx == NULL
            || X509_STORE_CTX_init(vctx, rstore, x, signers->certs) == 0)
        {
            X509_STORE_CTX_free(vctx);
            goto nomem;
        }

        /* validity in time is checked in every handshake, not here */

        X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_NO_CHECK_TIME);
        X509_STORE_CTX_set_depth(vctx, depth - 1);

        rc = X509_verify_cert(vctx);

        if (rc <= 0) {
            snprintf(err, errlen, "signer \"%s\" does not chain to a pinned "
                     "root: %s", subject,
                     X509_verify_cert_error_string(
                                             X509_STORE_CTX_get_error(vctx)));
            X509_STORE_CTX_free(vctx);
            goto failed;
        }

        X509_STORE_CTX_free(vctx);
    }

    p->store = X509_STORE_new();
    if (p->store == NULL) {
        p->store = rstore;
        goto nomem;
    }

    X509_STORE_free(rstore);

    for (i = 0; i < signers->n; i++) {
        if (X509_STORE_add_cert(p->store, sk_X509_value(signers->certs, i))
            == 0)
        {
            goto nomem;
        }
    }

    if (X509_STORE_set_flags(p->store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        goto nomem;
    }

done:

    if (ngx_device_auth_policy_id(p) != 0) {
        goto nomem;
    }

    return p;

nomem:

    snprintf(err, errlen, "out of memory");

failed:

    ERR_clear_error();
    p->roots = NULL;
    p->signers = NULL;
    ngx_device_auth_policy_free(p);

    return NULL;
}


/*
 * The identity of a policy: a session verified under it resumes only where
 * the very same policy applies.  Anything added to the policy that changes
 * a verdict must be hashed here too.
 */

static int
ngx_device_auth_policy_id(ngx_device_auth_policy_t *p)
{
    int                        i, k;
    unsigned int               len;
    unsigned char              params[4];
    EVP_MD_CTX                *md;
    ngx_device_auth_bundle_t  *b;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return -1;
    }

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(md, "device_auth policy 1", 20) != 1)
    {
        goto failed;
    }

    for (k = 0; k < 2; k++) {
        b = k == 0 ? p->roots : p->signers;

        /* "no signers" differs from any list of signers */

        params[0] = (unsigned char) k;
        params[1] = b ? 1 : 0;
        params[2] = (unsigned char) ((b ? b->n : 0) >> 8);
        params[3] = (unsigned char) (b ? b->n : 0);

        if (EVP_DigestUpdate(md, params, 4) != 1) {
            goto failed;
        }

        for (i = 0; b && i < b->n; i++) {
            if (EVP_DigestUpdate(md, b->ids[i], NGX_DEVICE_AUTH_ID_LEN) != 1) {
                goto failed;
            }
        }
    }

    params[0] = (unsigned char) p->depth;
    params[1] = (unsigned char) p->profile;

    if (EVP_DigestUpdate(md, params, 2) != 1
        || EVP_DigestFinal_ex(md, p->id, &len) != 1
        || len != NGX_DEVICE_AUTH_ID_LEN)
    {
        goto failed;
    }

    EVP_MD_CTX_free(md);

    return 0;

failed:

    EVP_MD_CTX_free(md);
    ERR_clear_error();

    return -1;
}


void
ngx_device_auth_policy_free(ngx_device_auth_policy_t *p)
{
    if (p == NULL) {
        return;
    }

    X509_STORE_free(p->store);
    free(p);
}


int
ngx_device_auth_verify(ngx_device_auth_policy_t *p, X509 *leaf,
    STACK_OF(X509) *sent, ngx_device_auth_identity_t *id)
{
    int              n, max, rc;
    X509            *anchor;
    X509_STORE_CTX  *vctx;
    STACK_OF(X509)  *chain;
    unsigned char    buf[NGX_DEVICE_AUTH_ID_LEN];

    memset(id, 0, sizeof(ngx_device_auth_identity_t));

    if (ngx_device_auth_cert_id(leaf, id->fingerprint)
        || ngx_device_auth_spki_id(leaf, id->spki))
    {
        return ngx_device_auth_invalid(id, X509_V_ERR_UNSPECIFIED,
                                       "cannot hash device certificate");
    }

    ngx_device_auth_subject(leaf, id->subject, sizeof(id->subject));

    /* the serial is known early only to name the device in the log */
    (void) ngx_device_auth_serial(p->profile, leaf, id);
    id->reason[0] = '\0';

    /* leaf, intermediates and an optional root: refuse anything longer */

    max = (p->depth > 1 ? p->depth : 1) + 2;
    n = sent ? sk_X509_num(sent) : 1;

    if (n > max) {
        return ngx_device_auth_invalid(id, X509_V_ERR_CERT_CHAIN_TOO_LONG,
                         "device sent %d certificates, at most %d allowed",
                         n, max);
    }

    vctx = X509_STORE_CTX_new();
    if (vctx == NULL
        || X509_STORE_CTX_init(vctx, p->store, leaf,
                               p->signers ? NULL : sent) == 0)
    {
        X509_STORE_CTX_free(vctx);
        ERR_clear_error();
        return ngx_device_auth_invalid(id, X509_V_ERR_OUT_OF_MEM,
                                       "out of memory");
    }

    /* without it, the client-auth purpose check would silently go */

    if (X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        X509_STORE_CTX_free(vctx);
        ERR_clear_error();
        return ngx_device_auth_invalid(id, X509_V_ERR_UNSPECIFIED,
                                       "cannot set the certificate purpose");
    }

    X509_STORE_CTX_set_depth(vctx, p->signers ? 0 : p->depth);

    rc = X509_verify_cert(vctx);

    if (rc <= 0) {
        ngx_device_auth_chain_reason(p, vctx, id);
        X509_STORE_CTX_free(vctx);
        ERR_clear_error();
        return id->status;
    }

    chain = X509_STORE_CTX_get0_chain(vctx);
    n = sk_X509_num(chain);

    if (n < 2) {
        X509_STORE_CTX_free(vctx);
        return ngx_device_auth_invalid(id, X509_V_ERR_INVALID_CA,
                         "device certificate is itself a pinned certificate");
    }

    /* the signer is whoever issued the device certificate */

    memcpy(id->signer_id,
           ngx_device_auth_anchor_id(p, sk_X509_value(chain, 1), buf),
           NGX_DEVICE_AUTH_ID_LEN);

    anchor = sk_X509_value(chain, n - 1);
    memcpy(id->anchor_id, ngx_device_auth_anchor_id(p, anchor, buf),
           NGX_DEVICE_AUTH_ID_LEN);

    X509_STORE_CTX_free(vctx);

    return ngx_device_auth_check_profile(p->profile, leaf, id);
}


static const unsigned char *
ngx_device_auth_anchor_id(ngx_device_auth_policy_t *p, X509 *x,
    unsigned char *buf)
{
    int  i;

    /* the store hands back the very objects of the pinned bundles */

    if (p->signers) {
        for (i = 0; i < p->signers->n; i++) {
            if (sk_X509_value(p->signers->certs, i) == x) {
                return p->signers->ids[i];
            }
        }
    }

    for (i = 0; i < p->roots->n; i++) {
        if (sk_X509_value(p->roots->certs, i) == x) {
            return p->roots->ids[i];
        }
    }

    if (ngx_device_auth_cert_id(x, buf)) {
        memset(buf, 0, NGX_DEVICE_AUTH_ID_LEN);
    }

    return buf;
}


static void
ngx_device_auth_chain_reason(ngx_device_auth_policy_t *p,
    X509_STORE_CTX *vctx, ngx_device_auth_identity_t *id)
{
    int    err, depth;
    X509  *x;
    char   name[NGX_DEVICE_AUTH_SUBJECT_MAX];

    err = X509_STORE_CTX_get_error(vctx);
    depth = X509_STORE_CTX_get_error_depth(vctx);
    x = X509_STORE_CTX_get_current_cert(vctx);

    name[0] = '\0';

    switch (err) {

    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:

        if (x) {
            ngx_device_auth_name(X509_get_issuer_name(x), name, sizeof(name));
        }

        if (p->signers) {
            (void) ngx_device_auth_invalid(id, err,
                         "signer not pinned (device issued by a "
                         "certificate that is not in the pinned signers)");
            id->reason_code = NGX_DEVICE_AUTH_R_SIGNER_NOT_PINNED;
            return;
        }

        if (err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
            || err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
        {
            (void) ngx_device_auth_invalid(id, err,
                         "chain ends in an unpinned root \"%s\"", name);
            return;
        }

        (void) ngx_device_auth_invalid(id, err,
                         "chain does not end in a pinned root (no issuer "
                         "found for \"%s\")", name);
        return;

    case X509_V_ERR_CERT_HAS_EXPIRED:
        (void) ngx_device_auth_invalid(id, err, depth == 0
                         ? "device certificate expired"
                         : "CA certificate at depth %d expired", depth);
        return;

    case X509_V_ERR_CERT_NOT_YET_VALID:
        (void) ngx_device_auth_invalid(id, err, depth == 0
                         ? "device certificate not yet valid"
                         : "CA certificate at depth %d not yet valid", depth);
        return;

    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        (void) ngx_device_auth_invalid(id, err,
                         "chain longer than the verify depth %d allows",
                         p->signers ? 1 : p->depth);
        return;

    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        (void) ngx_device_auth_invalid(id, err,
                         "bad signature on the certificate at depth %d",
                         depth);
        return;

    case X509_V_ERR_INVALID_CA:
        (void) ngx_device_auth_invalid(id, err,
                         "issuer at depth %d is not a CA", depth);
        return;

    case X509_V_ERR_INVALID_PURPOSE:
        (void) ngx_device_auth_invalid(id, err,
                         "certificate at depth %d is not allowed for TLS "
                         "client authentication", depth);
        return;

    default:
        (void) ngx_device_auth_invalid(id, err, "%s at depth %d",
                                       X509_verify_cert_error_string(err),
                                       depth);
        return;
    }
}


int
ngx_device_auth_check_profile(int profile, X509 *leaf,
    ngx_device_auth_identity_t *id)
{
    int        nid, bits;
    char       group[64];
    size_t     glen;
    uint32_t   flags, ku;
    EVP_PKEY  *pkey;

    if (profile == NGX_DEVICE_AUTH_PROFILE_ATECC608) {

        pkey = X509_get0_pubkey(leaf);

        if (pkey == NULL) {
            ERR_clear_error();
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_KEY_TYPE,
                         "device public key cannot be decoded");
        }

        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
            bits = EVP_PKEY_get_bits(pkey);
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_KEY_TYPE,
                         "key type %s-%d not allowed by profile atecc608",
                         EVP_PKEY_get0_type_name(pkey)
                         ? EVP_PKEY_get0_type_name(pkey) : "unknown",
                         bits);
        }

        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
            ERR_clear_error();
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_CURVE,
                         "device key has no named curve");
        }

        if (OBJ_sn2nid(group) != NID_X9_62_prime256v1) {
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_CURVE,
                         "curve %s not allowed by profile atecc608", group);
        }

        nid = X509_get_signature_nid(leaf);

        if (nid != NID_ecdsa_with_SHA256) {
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_SIGNATURE_ALG,
                         "signature algorithm %s not allowed by profile "
                         "atecc608",
                         nid == NID_undef ? "unknown" : OBJ_nid2sn(nid));
        }

        flags = X509_get_extension_flags(leaf);
        ku = X509_get_key_usage(leaf);

        /* without a keyUsage extension OpenSSL reports all bits set */

        if ((flags & EXFLAG_CA)
            || ((flags & EXFLAG_KUSAGE) && (ku & KU_KEY_CERT_SIGN)))
        {
            return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_DEVICE_IS_CA,
                         "device certificate is a CA, not allowed by profile "
                         "atecc608");
        }
    }

    if (ngx_device_auth_serial(profile, leaf, id) != 0) {
        return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_SUBJECT,
                                    "%s", id->reason);
    }

    id->status = NGX_DEVICE_AUTH_CERT_OK;
    id->x509_error = X509_V_OK;
    id->reason[0] = '\0';

    return NGX_DEVICE_AUTH_CERT_OK;
}


/*
 * atecc608: CN "sn" + 18 hex digits starting with 0123 (the ATECC608A
 * serial number layout), or the older Trust&GO "<18 hex digits> ATECC";
 * the serial is the 18 digits, upper-cased.
 * generic: the CN itself, 1-64 characters of [A-Za-z0-9 ._:@/+=-], no
 * leading or trailing space.
 */

static int
ngx_device_auth_serial(int profile, X509 *leaf, ngx_device_auth_identity_t *id)
{
    int                   i, idx;
    size_t                len;
    X509_NAME            *name;
    ASN1_STRING          *s;
    const unsigned char  *data, *hex;
    char                  shown[64];

    id->serial_len = 0;
    id->serial[0] = '\0';

    name = X509_get_subject_name(leaf);

    idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) {
        snprintf(id->reason, sizeof(id->reason), "subject has no CN");
        return -1;
    }

    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
        snprintf(id->reason, sizeof(id->reason), "subject has several CNs");
        return -1;
    }

    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    data = ASN1_STRING_get0_data(s);
    len = (size_t) ASN1_STRING_length(s);

    switch (ASN1_STRING_type(s)) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
        break;
    default:
        snprintf(id->reason, sizeof(id->reason),
                 "subject CN has string type %d, not allowed",
                 ASN1_STRING_type(s));
        return -1;
    }

    if (profile == NGX_DEVICE_AUTH_PROFILE_ATECC608) {

        hex = NULL;

        if (len == 20 && data[0] == 's' && data[1] == 'n') {
            hex = data + 2;

        } else if (len == 24 && memcmp(data + 18, " ATECC", 6) == 0) {
            hex = data;
        }

        if (hex == NULL || !ngx_device_auth_is_hex(hex, 18)
            || memcmp(hex, "0123", 4) != 0)
        {
            ngx_device_auth_printable(data, len, shown, sizeof(shown));
            snprintf(id->reason, sizeof(id->reason),
                     "subject CN \"%s\" does not match profile atecc608 "
                     "(sn + 18 hex digits starting with 0123)", shown);
            return -1;
        }

        for (i = 0; i < 18; i++) {
            id->serial[i] = (hex[i] >= 'a' && hex[i] <= 'f')
                            ? (char) (hex[i] - 'a' + 'A') : (char) hex[i];
        }

        id->serial[18] = '\0';
        id->serial_len = 18;

        return 0;
    }

    if (len == 0 || len > NGX_DEVICE_AUTH_SERIAL_MAX
        || data[0] == ' ' || data[len - 1] == ' ')
    {
        goto bad_generic;
    }

    for (i = 0; i < (int) len; i++) {
        if ((data[i] >= 'a' && data[i] <= 'z')
            || (data[i] >= 'A' && data[i] <= 'Z')
            || (data[i] >= '0' && data[i] <= '9')
            || strchr(" ._:@/+=-", data[i]) != NULL)
        {
            if (data[i] != '\0') {
                continue;
            }
        }

        goto bad_generic;
    }

    memcpy(id->serial, data, len);
    id->serial[len] = '\0';
    id->serial_len = len;

    return 0;

bad_generic:

    ngx_device_auth_printable(data, len, shown, sizeof(shown));
    snprintf(id->reason, sizeof(id->reason),
             "subject CN \"%s\" is not a valid serial for profile generic "
             "(1-64 characters of A-Z a-z 0-9 space . _ : @ / + = -)", shown);

    return -1;
}


size_t
ngx_device_auth_appdata_encode(ngx_device_auth_policy_t *p,
    ngx_device_auth_identity_t *id, const unsigned char *context,
    unsigned char *buf)
{
    buf[0] = 'D';
    buf[1] = 'A';
    buf[2] = NGX_DEVICE_AUTH_APPDATA_VERSION;
    buf[3] = (unsigned char) id->status;
    memcpy(buf + 4, id->signer_id, NGX_DEVICE_AUTH_ID_LEN);
    memcpy(buf + 4 + NGX_DEVICE_AUTH_ID_LEN, id->anchor_id,
           NGX_DEVICE_AUTH_ID_LEN);
    memcpy(buf + 4 + 2 * NGX_DEVICE_AUTH_ID_LEN, p->id,
           NGX_DEVICE_AUTH_ID_LEN);
    memcpy(buf + 4 + 3 * NGX_DEVICE_AUTH_ID_LEN, context,
           NGX_DEVICE_AUTH_ID_LEN);

    return NGX_DEVICE_AUTH_APPDATA_LEN;
}


/*
 * The context of a session's verdict; NULL when the appdata is not a
 * device_auth verdict of this version (a session of an older build, or of
 * no device_auth server at all).
 */

const unsigned char *
ngx_device_auth_appdata_context(const unsigned char *appdata, size_t len)
{
    if (appdata == NULL || len != NGX_DEVICE_AUTH_APPDATA_LEN
        || appdata[0] != 'D' || appdata[1] != 'A'
        || appdata[2] != NGX_DEVICE_AUTH_APPDATA_VERSION)
    {
        return NULL;
    }

    return appdata + 4 + 3 * NGX_DEVICE_AUTH_ID_LEN;
}


/*
 * A resumed session brings only the device certificate; the chain was
 * verified in the full handshake, whose verdict the session carries.  The
 * whole policy that verified it must be the one that applies here (pins,
 * depth, profile: a device with two intermediates accepted under depth 2
 * must not resume under depth 1), the anchor must be pinned, and the device
 * certificate must still be in its validity period and match the profile.
 */

int
ngx_device_auth_resume(ngx_device_auth_policy_t *p, X509 *leaf,
    const unsigned char *appdata, size_t len, ngx_device_auth_identity_t *id)
{
    memset(id, 0, sizeof(ngx_device_auth_identity_t));

    if (ngx_device_auth_cert_id(leaf, id->fingerprint)
        || ngx_device_auth_spki_id(leaf, id->spki))
    {
        return ngx_device_auth_invalid(id, X509_V_ERR_UNSPECIFIED,
                                       "cannot hash device certificate");
    }

    ngx_device_auth_subject(leaf, id->subject, sizeof(id->subject));
    (void) ngx_device_auth_serial(p->profile, leaf, id);
    id->reason[0] = '\0';

    if (ngx_device_auth_appdata_context(appdata, len) == NULL) {
        return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_RESUMED_SESSION,
                         "resumed session carries no device_auth verdict");
    }

    if (appdata[3] != NGX_DEVICE_AUTH_CERT_OK) {
        return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_RESUMED_SESSION,
                         "resumed session failed device verification");
    }

    if (memcmp(appdata + 4 + 2 * NGX_DEVICE_AUTH_ID_LEN, p->id,
               NGX_DEVICE_AUTH_ID_LEN)
        != 0)
    {
        return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_RESUMED_SESSION,
                         "resumed session was verified under another "
                         "certificate policy (pins, depth or profile)");
    }

    memcpy(id->signer_id, appdata + 4, NGX_DEVICE_AUTH_ID_LEN);
    memcpy(id->anchor_id, appdata + 4 + NGX_DEVICE_AUTH_ID_LEN,
           NGX_DEVICE_AUTH_ID_LEN);

    if (ngx_device_auth_bundle_find(p->signers ? p->signers : p->roots,
                                    id->anchor_id) < 0)
    {
        return ngx_device_auth_fail(id, NGX_DEVICE_AUTH_R_RESUMED_SESSION,
                         "resumed session was verified against a trust "
                         "anchor that is not pinned here");
    }

    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        return ngx_device_auth_invalid(id, X509_V_ERR_CERT_HAS_EXPIRED,
                                       "device certificate expired");
    }

    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
        return ngx_device_auth_invalid(id, X509_V_ERR_CERT_NOT_YET_VALID,
                                       "device certificate not yet valid");
    }

    return ngx_device_auth_check_profile(p->profile, leaf, id);
}


int
ngx_device_auth_cert_id(X509 *x, unsigned char *id)
{
    unsigned int  n;

    if (X509_digest(x, EVP_sha256(), id, &n) != 1
        || n != NGX_DEVICE_AUTH_ID_LEN)
    {
        ERR_clear_error();
        return -1;
    }

    return 0;
}


/*
 * SHA-256 of the DER of the SubjectPublicKeyInfo, as "openssl x509 -pubkey
 * | openssl pkey -pubin -outform DER | sha256sum" computes it (not
 * X509_pubkey_digest(), which hashes the key bits alone)
 */

int
ngx_device_auth_spki_id(X509 *x, unsigned char *id)
{
    int             len;
    unsigned int    n;
    unsigned char  *der;

    der = NULL;
    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

    if (len <= 0 || der == NULL
        || EVP_Digest(der, (size_t) len, id, &n, EVP_sha256(), NULL) != 1
        || n != NGX_DEVICE_AUTH_ID_LEN)
    {
        OPENSSL_free(der);
        ERR_clear_error();
        return -1;
    }

    OPENSSL_free(der);

    return 0;
}


/*
 * notAfter as seconds since the epoch: 0; 1: no expiry (99991231235959Z,
 * as compressed certificates encode it); -1: it cannot be read
 */

int
ngx_device_auth_not_after(X509 *x, long long *t)
{
    long long         y, m, d, era, yoe, doy, days;
    struct tm         tm;
    const ASN1_TIME  *na;

    *t = 0;

    na = X509_get0_notAfter(x);

    if (na == NULL) {
        return -1;
    }

    if (na->type == V_ASN1_GENERALIZEDTIME && na->length == 15
        && memcmp(na->data, "99991231235959Z", 15) == 0)
    {
        return 1;
    }

    if (ASN1_TIME_to_tm(na, &tm) != 1) {
        ERR_clear_error();
        return -1;
    }

    /* days from the civil date (H. Hinnant's algorithm): no time zone */

    y = (long long) tm.tm_year + 1900;
    m = tm.tm_mon + 1;
    d = tm.tm_mday;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;

    *t = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;

    return 0;
}


/* "2026-11-30T04:12:01Z" */

void
ngx_device_auth_time(long long t, char *buf, size_t len)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, len, "%lld", t);
    }
}


void
ngx_device_auth_hex(const unsigned char *in, size_t len, char *out)
{
    size_t             i;
    static const char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }

    out[2 * len] = '\0';
}


static int
ngx_device_auth_is_hex(const unsigned char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9')
              || (p[i] >= 'a' && p[i] <= 'f')
              || (p[i] >= 'A' && p[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/* RFC 2253 form with control and non-ASCII bytes escaped: safe to log */

void
ngx_device_auth_subject(X509 *x, char *buf, size_t len)
{
    ngx_device_auth_name(X509_get_subject_name(x), buf, len);
}


void
ngx_device_auth_issuer(X509 *x, char *buf, size_t len)
{
    ngx_device_auth_name(X509_get_issuer_name(x), buf, len);
}


static void
ngx_device_auth_name(X509_NAME *name, char *buf, size_t len)
{
    int   n;
    BIO  *bio;

    buf[0] = '\0';

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }

    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
    {
        n = BIO_read(bio, buf, (int) len - 1);
        buf[n > 0 ? n : 0] = '\0';
    }

    BIO_free(bio);
    ERR_clear_error();

    ngx_device_auth_printable((unsigned char *) buf, strlen(buf), buf, len);
}


void
ngx_device_auth_printable(const unsigned char *data, size_t len, char *buf,
    size_t size)
{
    size_t             i, n;
    unsigned char      c, tmp[NGX_DEVICE_AUTH_SUBJECT_MAX];
    static const char  hex[] = "0123456789ABCDEF";

    /* the input may be the output buffer */

    if (len > sizeof(tmp)) {
        len = sizeof(tmp);
    }

    memcpy(tmp, data, len);

    for (i = 0, n = 0; i < len && n + 5 < size; i++) {
        c = tmp[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[n++] = (char) c;
            continue;
        }

        buf[n++] = '\\';
        buf[n++] = 'x';
        buf[n++] = hex[c >> 4];
        buf[n++] = hex[c & 0xf];
    }

    buf[n] = '\0';
}


static int
ngx_device_auth_invalid(ngx_device_auth_identity_t *id, int error,
    const char *fmt, ...)
{
    char     buf[NGX_DEVICE_AUTH_REASON_MAX];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    memcpy(id->reason, buf, sizeof(buf));

    id->status = NGX_DEVICE_AUTH_CERT_INVALID;
    id->x509_error = error;

    switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        id->reason_code = NGX_DEVICE_AUTH_R_UNPINNED_ROOT;
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        id->reason_code = NGX_DEVICE_AUTH_R_EXPIRED;
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        id->reason_code = NGX_DEVICE_AUTH_R_NOT_YET_VALID;
        break;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        id->reason_code = NGX_DEVICE_AUTH_R_CHAIN_TOO_LONG;
        break;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        id->reason_code = NGX_DEVICE_AUTH_R_BAD_SIGNATURE;
        break;
    case X509_V_ERR_INVALID_CA:
        id->reason_code = NGX_DEVICE_AUTH_R_ISSUER_NOT_CA;
        break;
    case X509_V_ERR_INVALID_PURPOSE:
        id->reason_code = NGX_DEVICE_AUTH_R_PURPOSE;
        break;
    default:
        id->reason_code = NGX_DEVICE_AUTH_R_OTHER;
    }

    return NGX_DEVICE_AUTH_CERT_INVALID;
}


static int
ngx_device_auth_fail(ngx_device_auth_identity_t *id, int code,
    const char *fmt, ...)
{
    char     buf[NGX_DEVICE_AUTH_REASON_MAX];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    (void) ngx_device_auth_invalid(id, X509_V_ERR_APPLICATION_VERIFICATION,
                                   "%s", buf);
    id->reason_code = code;

    return NGX_DEVICE_AUTH_CERT_INVALID;
}
