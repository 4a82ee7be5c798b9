
/*
 * Direct verification of device certificates (issue 16).
 *
 * X509_verify_cert() builds the chain and verifies every signature in it
 * on every handshake, although the link between a signer and the pins
 * never changes: only the device certificate is new.  So once the full
 * verification has accepted a device under a signer (the one issuing
 * device certificates: a pinned signer, or without pinned signers the
 * intermediate the device sends, directly under a pinned root), the
 * signer is kept with its key, decoded once, and the next device that
 * comes with the very same signer is verified directly: its issuer and
 * signature against that key, its validity period and the signer's (and
 * the root's), its purpose (TLS client), and nothing in it that the full
 * verification would look at further (critical or invalid extensions,
 * a proxy certificate, a device that is itself pinned or self-issued).
 *
 * The direct path only ever accepts: whatever it does not recognise
 * exactly, it declines, and the full verification runs and gives its
 * verdict and its reason, so that a refusal is the same whichever path
 * came first.  What the direct path skips is what does not depend on the
 * device certificate and was checked when the signer was learnt: the
 * signer's own signature and extensions (CA, purpose, path length), the
 * root's, and the choice of the issuer among the pins (exactly one pinned
 * certificate may issue the device, or the signer).  Signers and roots
 * with name constraints, which depend on the device, are never learnt.
 *
 * The verified-leaf cache: a device certificate whose signature has been
 * verified under a learnt signer is kept (its DER, at most
 * NGX_DEVICE_AUTH_LEAF_DER_MAX bytes) in a slot chosen by its signature
 * bytes; a device that comes again with the very same DER skips the
 * signature verification, and only that: validity periods, purpose and
 * profile are checked on every handshake, and the device still proves
 * that it holds the key in CertificateVerify.  Everything here lives in
 * the policy, in each process (nginx: per worker), and goes with it when
 * a reload makes new policies.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ngx_device_auth_verify.h"


typedef struct {
    X509                 *signer;      /* a reference of its own */
    X509                 *anchor;      /* the pinned root above; NULL
                                          when the signer is pinned */
    EVP_PKEY             *key;         /* the signer's, in the X509 */
    unsigned char         signer_id[NGX_DEVICE_AUTH_ID_LEN];
    unsigned char         anchor_id[NGX_DEVICE_AUTH_ID_LEN];
} ngx_device_auth_signer_t;


typedef struct {
    unsigned char        *der;
    int                   len;
    int                   signer;      /* index + 1; 0: empty */
} ngx_device_auth_leaf_t;


struct ngx_device_auth_direct_s {
    int                        nsigners;
    ngx_device_auth_signer_t   signers[NGX_DEVICE_AUTH_DIRECT_SIGNERS];
    ngx_device_auth_leaf_t    *leaves;  /* NGX_DEVICE_AUTH_LEAF_CACHE */
};


#define NGX_DEVICE_AUTH_DIRECT_DECLINED  -1

/*
 * what the full verification looks at further in a device certificate:
 * critical or invalid extensions, proxy certificates, invalid policies,
 * a device that names itself as its issuer
 */
#define NGX_DEVICE_AUTH_LEAF_FLAGS                                            \
    (EXFLAG_CRITICAL | EXFLAG_INVALID | EXFLAG_PROXY | EXFLAG_INVALID_POLICY \
     | EXFLAG_SI | EXFLAG_SS)


static int ngx_device_auth_find_signer(ngx_device_auth_policy_t *p,
    X509 *leaf, STACK_OF(X509) *sent);
static int ngx_device_auth_pinned_issuer(ngx_device_auth_bundle_t *b,
    X509 *x, X509 **issuer);
static int ngx_device_auth_valid_now(X509 *x);
static int ngx_device_auth_has_constraints(X509 *x);
static ngx_device_auth_leaf_t *ngx_device_auth_leaf_slot(
    ngx_device_auth_direct_t *d, X509 *leaf, unsigned char *der, int *len);
static void ngx_device_auth_leaf_add(ngx_device_auth_leaf_t *slot,
    int signer, unsigned char *der, int len);


ngx_device_auth_direct_t *
ngx_device_auth_direct_create(void)
{
    return calloc(1, sizeof(ngx_device_auth_direct_t));
}


void
ngx_device_auth_direct_free(ngx_device_auth_direct_t *d)
{
    if (d == NULL) {
        return;
    }

    ngx_device_auth_direct_reset(d, 1);
    free(d);
}


/*
 * Forget the verified devices, and with "signers" every signer too: the
 * full verification again (the fuzz target goes through each path so).
 */

void
ngx_device_auth_direct_reset(ngx_device_auth_direct_t *d, int signers)
{
    int  i;

    for (i = 0; signers && i < d->nsigners; i++) {
        X509_free(d->signers[i].signer);
        X509_free(d->signers[i].anchor);
    }

    if (signers) {
        d->nsigners = 0;
    }

    if (d->leaves) {
        for (i = 0; i < NGX_DEVICE_AUTH_LEAF_CACHE; i++) {
            free(d->leaves[i].der);
        }

        free(d->leaves);
        d->leaves = NULL;
    }
}


/*
 * NGX_DEVICE_AUTH_CERT_OK with the signer and anchor ids set in id (the
 * caller checks the profile), or NGX_DEVICE_AUTH_DIRECT_DECLINED: the full
 * verification decides.  id has the device's fingerprint.
 */

int
ngx_device_auth_direct_verify(ngx_device_auth_policy_t *p, X509 *leaf,
    STACK_OF(X509) *sent, ngx_device_auth_identity_t *id)
{
    int                        s, len;
    unsigned char              der[NGX_DEVICE_AUTH_LEAF_DER_MAX];
    ngx_device_auth_leaf_t    *slot;
    ngx_device_auth_signer_t  *sg;
    ngx_device_auth_direct_t  *d;

    d = p->direct;

    if (d == NULL || d->nsigners == 0) {
        return NGX_DEVICE_AUTH_DIRECT_DECLINED;
    }

    if (X509_get_extension_flags(leaf) & NGX_DEVICE_AUTH_LEAF_FLAGS) {
        return NGX_DEVICE_AUTH_DIRECT_DECLINED;
    }

    /* a pinned device: the full verification says why not */

    if (ngx_device_auth_bundle_find(p->roots, id->fingerprint) >= 0
        || (p->signers
            && ngx_device_auth_bundle_find(p->signers, id->fingerprint) >= 0))
    {
        return NGX_DEVICE_AUTH_DIRECT_DECLINED;
    }

    s = ngx_device_auth_find_signer(p, leaf, sent);
    if (s < 0) {
        return NGX_DEVICE_AUTH_DIRECT_DECLINED;
    }

    sg = &d->signers[s];

    /* as X509_verify_cert() checks them on every verification */

    if (!ngx_device_auth_valid_now(leaf)
        || !ngx_device_auth_valid_now(sg->signer)
        || (sg->anchor && !ngx_device_auth_valid_now(sg->anchor))
        || X509_check_purpose(leaf, X509_PURPOSE_SSL_CLIENT, 0) != 1)
    {
        ERR_clear_error();
        return NGX_DEVICE_AUTH_DIRECT_DECLINED;
    }

    slot = ngx_device_auth_leaf_slot(d, leaf, der, &len);

    if (slot && slot->signer == s + 1 && slot->len == len
        && memcmp(slot->der, der, len) == 0)
    {
        id->path = NGX_DEVICE_AUTH_PATH_CACHED;

    } else {
        if (X509_verify(leaf, sg->key) != 1) {
            ERR_clear_error();
            return NGX_DEVICE_AUTH_DIRECT_DECLINED;
        }

        ngx_device_auth_leaf_add(slot, s, der, len);
        id->path = NGX_DEVICE_AUTH_PATH_DIRECT;
    }

    memcpy(id->signer_id, sg->signer_id, NGX_DEVICE_AUTH_ID_LEN);
    memcpy(id->anchor_id, sg->anchor_id, NGX_DEVICE_AUTH_ID_LEN);

    return NGX_DEVICE_AUTH_CERT_OK;
}


/*
 * The learnt signer that issued the device, as X509_verify_cert() would
 * choose it: with pinned signers, the one pinned signer that issued it
 * (the chain sent is not used); without, the intermediate sent after the
 * device, when no pinned root issued the device itself.  -1: none.
 */

static int
ngx_device_auth_find_signer(ngx_device_auth_policy_t *p, X509 *leaf,
    STACK_OF(X509) *sent)
{
    int                        i;
    X509                      *x;
    ngx_device_auth_direct_t  *d;

    d = p->direct;

    if (p->signers) {
        if (ngx_device_auth_pinned_issuer(p->signers, leaf, &x) != 1
            || x == NULL)
        {
            return -1;
        }

        for (i = 0; i < d->nsigners; i++) {
            if (d->signers[i].signer == x) {
                return i;
            }
        }

        return -1;
    }

    if (sent == NULL || sk_X509_num(sent) != 2
        || X509_cmp(sk_X509_value(sent, 0), leaf) != 0
        || ngx_device_auth_pinned_issuer(p->roots, leaf, &x) != 0)
    {
        return -1;
    }

    x = sk_X509_value(sent, 1);

    for (i = 0; i < d->nsigners; i++) {
        if (X509_cmp(d->signers[i].signer, x) == 0) {
            return X509_check_issued(x, leaf) == X509_V_OK ? i : -1;
        }
    }

    return -1;
}


/*
 * How many certificates of a bundle X509_verify_cert() may take as the
 * issuer of x: by name and key identifier, as it looks them up, whether
 * their key usage then allows it or not.  *issuer: the last one, when its
 * key usage allows it, else NULL.
 */

static int
ngx_device_auth_pinned_issuer(ngx_device_auth_bundle_t *b, X509 *x,
    X509 **issuer)
{
    int    i, n, rc;
    X509  *c;

    n = 0;
    *issuer = NULL;

    for (i = 0; i < b->n; i++) {
        c = sk_X509_value(b->certs, i);
        rc = X509_check_issued(c, x);

        if (rc == X509_V_OK || rc == X509_V_ERR_KEYUSAGE_NO_CERTSIGN
            || rc == X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE)
        {
            *issuer = rc == X509_V_OK ? c : NULL;
            n++;
        }
    }

    return n;
}


static int
ngx_device_auth_valid_now(X509 *x)
{
    return X509_cmp_current_time(X509_get0_notBefore(x)) < 0
           && X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}


static int
ngx_device_auth_has_constraints(X509 *x)
{
    return X509_get_ext_by_NID(x, NID_name_constraints, -1) >= 0;
}


/*
 * After X509_verify_cert() accepted a device: its chain, and what the
 * device sent.  The signer is learnt when the chain is the one the direct
 * path recognises: device, pinned signer; or device, the intermediate it
 * sent (and nothing else), the one pinned root that issued it.  The
 * device itself goes into the cache, its signature verified.
 */

void
ngx_device_auth_direct_learn(ngx_device_auth_policy_t *p,
    STACK_OF(X509) *chain, STACK_OF(X509) *sent,
    ngx_device_auth_identity_t *id)
{
    int                        i, n, len;
    X509                      *leaf, *signer, *anchor, *issuer;
    unsigned char              der[NGX_DEVICE_AUTH_LEAF_DER_MAX];
    ngx_device_auth_leaf_t    *slot;
    ngx_device_auth_signer_t  *sg;
    ngx_device_auth_direct_t  *d;

    d = p->direct;

    if (d == NULL) {
        return;
    }

    n = sk_X509_num(chain);
    leaf = sk_X509_value(chain, 0);
    signer = sk_X509_value(chain, 1);
    anchor = NULL;

    if (p->signers) {
        if (n != 2
            || ngx_device_auth_pinned_issuer(p->signers, leaf, &issuer) != 1
            || issuer != signer)
        {
            return;
        }

    } else {
        anchor = n == 3 ? sk_X509_value(chain, 2) : NULL;

        if (anchor == NULL || sent == NULL || sk_X509_num(sent) != 2
            || sk_X509_value(sent, 1) != signer
            || ngx_device_auth_pinned_issuer(p->roots, signer, &issuer) != 1
            || issuer != anchor
            || ngx_device_auth_has_constraints(anchor))
        {
            return;
        }
    }

    if (ngx_device_auth_has_constraints(signer)) {
        return;
    }

    slot = ngx_device_auth_leaf_slot(d, leaf, der, &len);

    for (i = 0; i < d->nsigners; i++) {
        if (X509_cmp(d->signers[i].signer, signer) == 0) {
            ngx_device_auth_leaf_add(slot, i, der, len);
            return;
        }
    }

    if (d->nsigners == NGX_DEVICE_AUTH_DIRECT_SIGNERS) {
        return;
    }

    sg = &d->signers[d->nsigners];

    sg->key = X509_get0_pubkey(signer);
    if (sg->key == NULL) {
        ERR_clear_error();
        return;
    }

    if (X509_up_ref(signer) != 1) {
        return;
    }

    if (anchor && X509_up_ref(anchor) != 1) {
        X509_free(signer);
        return;
    }

    sg->signer = signer;
    sg->anchor = anchor;
    memcpy(sg->signer_id, id->signer_id, NGX_DEVICE_AUTH_ID_LEN);
    memcpy(sg->anchor_id, id->anchor_id, NGX_DEVICE_AUTH_ID_LEN);

    ngx_device_auth_leaf_add(slot, d->nsigners++, der, len);
}


/*
 * The cache slot of a device certificate, by its signature bytes, and its
 * DER in der (len); NULL when it does not fit or cannot be encoded.
 */

static ngx_device_auth_leaf_t *
ngx_device_auth_leaf_slot(ngx_device_auth_direct_t *d, X509 *leaf,
    unsigned char *der, int *len)
{
    int                        i, n;
    uint32_t                   h;
    unsigned char             *p;
    const unsigned char       *s;
    const ASN1_BIT_STRING     *sig;

    if (d->leaves == NULL) {
        d->leaves = calloc(NGX_DEVICE_AUTH_LEAF_CACHE,
                           sizeof(ngx_device_auth_leaf_t));
        if (d->leaves == NULL) {
            return NULL;
        }
    }

    n = i2d_X509(leaf, NULL);
    if (n <= 0 || n > NGX_DEVICE_AUTH_LEAF_DER_MAX) {
        ERR_clear_error();
        return NULL;
    }

    p = der;
    if (i2d_X509(leaf, &p) != n) {
        ERR_clear_error();
        return NULL;
    }

    *len = n;

    /* FNV-1a of the signature */

    X509_get0_signature(&sig, NULL, leaf);
    s = ASN1_STRING_get0_data(sig);
    h = 2166136261u;

    for (i = 0; i < ASN1_STRING_length(sig); i++) {
        h = (h ^ s[i]) * 16777619u;
    }

    return &d->leaves[h % NGX_DEVICE_AUTH_LEAF_CACHE];
}


/* a device verified under signer s: it takes the slot of another one */

static void
ngx_device_auth_leaf_add(ngx_device_auth_leaf_t *slot, int s,
    unsigned char *der, int len)
{
    unsigned char  *copy;

    if (slot == NULL) {
        return;
    }

    copy = slot->len >= len ? slot->der : realloc(slot->der, len);
    if (copy == NULL) {
        return;
    }

    memcpy(copy, der, len);
    slot->der = copy;
    slot->len = len;
    slot->signer = s + 1;
}
