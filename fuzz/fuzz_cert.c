
/*
 * fuzz_cert: the device certificate policy (src/ngx_device_auth_cert.c) on
 * arbitrary DER or PEM input.
 *
 * Input: one or more certificates, the first being the device certificate
 * and the others the chain it sends (leaf first, like the untrusted stack
 * OpenSSL hands to the verify callback).  The same bytes are read twice:
 *
 *   DER  concatenated DER certificates read with d2i_X509(); whatever
 *        follows the last certificate is the session verdict (ticket
 *        appdata) presented to ngx_device_auth_resume();
 *   PEM  a bundle read with ngx_device_auth_bundle_from_mem() and, from a
 *        memfd, with ngx_device_auth_bundle_load(): both must agree
 *        (for inputs without NUL bytes, see fuzz_pem()).
 *
 * Each certificate list is run through:
 *
 *   - the pinned policies: roots and signers compiled in from
 *     fuzz/seeds/cert (the real Microchip Root CA 001/002 and their
 *     signers), with pinned signers (depth 1) and without (depth 1 and 2),
 *     each for profiles atecc608 and generic;
 *   - self-pinned policies: the last certificate of the input pinned as the
 *     root, the ones between leaf and root pinned as signers, so that the
 *     generated test PKI in the seeds reaches the success paths;
 *   - ngx_device_auth_check_profile() for both profiles;
 *   - ngx_device_auth_resume() with the verdict encoded by a successful
 *     verification (must resume), with bit flips of it, with the trailing
 *     input bytes, with the last 68 input bytes, and with a well-formed
 *     verdict naming a pinned anchor.
 *
 * The direct verification and the verified-leaf cache
 * (src/ngx_device_auth_verify.c) against X509_verify_cert() alone
 * (ngx_device_auth_verify_chain()): each policy forgets what it learnt,
 * then verifies the input three times (the chain, which learns the signer;
 * directly, the device forgotten; from the cache), then copies of the
 * device certificate with one byte changed (the signature's last, one in
 * the middle, one chosen by the input) under what it learnt: every verdict,
 * reason and identity must be the one of the chain alone.
 *
 * Besides the sanitizers, the identity is checked after every call: status
 * and return code agree, strings are terminated and printable, a serial is
 * only ever set from the profile's alphabet, "ok" comes with a serial and
 * no reason, "invalid" with a reason and a reason code.
 */


#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ngx_device_auth_cert.h"
#include "ngx_device_auth_verify.h"
#include "fuzz_common.h"

/* generated from fuzz/seeds/cert/{root,signer}-*.pem by the Makefile */
#include "fuzz_cert_pins.h"


#define FUZZ_MAX_CERTS     8
#define FUZZ_NPOLICIES     6


static ngx_device_auth_bundle_t  *fuzz_roots;
static ngx_device_auth_bundle_t  *fuzz_signers;
static ngx_device_auth_policy_t  *fuzz_policies[FUZZ_NPOLICIES];

static int                        fuzz_memfd = -1;
static char                       fuzz_memfd_path[64];


static ngx_device_auth_bundle_t *
fuzz_bundle_pem(const char *pem, const char *what)
{
    char                       err[NGX_DEVICE_AUTH_ERR_MAX];
    ngx_device_auth_bundle_t  *b;

    b = ngx_device_auth_bundle_from_mem(pem, strlen(pem), err, sizeof(err));
    if (b == NULL) {
        fprintf(stderr, "fuzz_cert: pinned %s: %s\n", what, err);
        abort();
    }

    return b;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int   i, profile;
    char  err[NGX_DEVICE_AUTH_ERR_MAX];

    fuzz_roots = fuzz_bundle_pem(fuzz_pinned_roots, "roots");
    fuzz_signers = fuzz_bundle_pem(fuzz_pinned_signers, "signers");

    i = 0;

    for (profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
         profile <= NGX_DEVICE_AUTH_PROFILE_GENERIC;
         profile++)
    {
        fuzz_policies[i++] = ngx_device_auth_policy_create(fuzz_roots,
                                 fuzz_signers, 1, profile, err, sizeof(err));
        fuzz_policies[i++] = ngx_device_auth_policy_create(fuzz_roots, NULL,
                                 1, profile, err, sizeof(err));
        fuzz_policies[i++] = ngx_device_auth_policy_create(fuzz_roots, NULL,
                                 2, profile, err, sizeof(err));
    }

    for (i = 0; i < FUZZ_NPOLICIES; i++) {
        if (fuzz_policies[i] == NULL) {
            fprintf(stderr, "fuzz_cert: pinned policy %d: %s\n", i, err);
            abort();
        }
    }

    if (ngx_device_auth_bundle_load("/nonexistent/fuzz_cert.pem", err,
                                    sizeof(err))
        != NULL || strstr(err, "cannot open") == NULL)
    {
        fprintf(stderr, "fuzz_cert: a missing file loads: %s\n", err);
        abort();
    }

    if (ngx_device_auth_profile_parse("atecc608")
        != NGX_DEVICE_AUTH_PROFILE_ATECC608
        || ngx_device_auth_profile_parse("generic")
           != NGX_DEVICE_AUTH_PROFILE_GENERIC
        || ngx_device_auth_profile_parse("atecc") != -1
        || strcmp(ngx_device_auth_profile_name(
                      NGX_DEVICE_AUTH_PROFILE_GENERIC), "generic") != 0)
    {
        fprintf(stderr, "fuzz_cert: profile names\n");
        abort();
    }

    /* ngx_device_auth_bundle_load() reads the input from here */

    fuzz_memfd = memfd_create("fuzz_cert", 0);
    if (fuzz_memfd >= 0) {
        snprintf(fuzz_memfd_path, sizeof(fuzz_memfd_path),
                 "/proc/self/fd/%d", fuzz_memfd);
    }

    return 0;
}


static void
fuzz_check_serial(const ngx_device_auth_identity_t *id, int profile)
{
    size_t      i;
    const char *s;

    fuzz_assert(id->serial_len <= NGX_DEVICE_AUTH_SERIAL_MAX,
                "serial_len %zu", id->serial_len);
    fuzz_assert(id->serial[id->serial_len] == '\0'
                && strlen(id->serial) == id->serial_len,
                "serial not terminated at serial_len %zu", id->serial_len);

    if (id->serial_len == 0) {
        return;
    }

    s = id->serial;

    if (profile == NGX_DEVICE_AUTH_PROFILE_ATECC608) {
        fuzz_assert(id->serial_len == 18 && memcmp(s, "0123", 4) == 0,
                    "atecc608 serial \"%s\"", s);

        for (i = 0; i < 18; i++) {
            fuzz_assert((s[i] >= '0' && s[i] <= '9')
                        || (s[i] >= 'A' && s[i] <= 'F'),
                        "atecc608 serial \"%s\"", s);
        }

        return;
    }

    fuzz_assert(s[0] != ' ' && s[id->serial_len - 1] != ' ',
                "generic serial \"%s\" starts or ends with a space", s);

    for (i = 0; i < id->serial_len; i++) {
        fuzz_assert((s[i] >= 'a' && s[i] <= 'z')
                    || (s[i] >= 'A' && s[i] <= 'Z')
                    || (s[i] >= '0' && s[i] <= '9')
                    || strchr(" ._:@/+=-", s[i]) != NULL,
                    "generic serial has byte 0x%02x", (unsigned char) s[i]);
    }
}


static void
fuzz_check_identity(const ngx_device_auth_identity_t *id, int rc,
    int profile, const char *what)
{
    fuzz_assert(rc == NGX_DEVICE_AUTH_CERT_OK
                || rc == NGX_DEVICE_AUTH_CERT_INVALID, "%s: rc %d", what, rc);
    fuzz_assert(rc == id->status, "%s: rc %d, status %d", what, rc,
                id->status);

    fuzz_assert(fuzz_is_printable(id->reason, sizeof(id->reason)),
                "%s: reason not terminated or not printable", what);
    fuzz_assert(fuzz_is_printable(id->subject, sizeof(id->subject))
                && strchr(id->subject, '"') == NULL,
                "%s: subject not terminated, not printable or quoted", what);

    fuzz_check_serial(id, profile);

    if (rc == NGX_DEVICE_AUTH_CERT_OK) {
        fuzz_assert(id->serial_len > 0, "%s: ok without a serial", what);
        fuzz_assert(id->reason[0] == '\0', "%s: ok with reason \"%s\"",
                    what, id->reason);
        fuzz_assert(id->x509_error == 0 && id->reason_code == 0,
                    "%s: ok with x509 error %d, reason code %d", what,
                    id->x509_error, id->reason_code);
        return;
    }

    fuzz_assert(id->reason[0] != '\0', "%s: invalid without a reason", what);
    fuzz_assert(id->reason_code > NGX_DEVICE_AUTH_R_NONE
                && id->reason_code < NGX_DEVICE_AUTH_R_N,
                "%s: reason code %d", what, id->reason_code);
}


static int
fuzz_resume(ngx_device_auth_policy_t *p, X509 *leaf,
    const unsigned char *appdata, size_t len, ngx_device_auth_identity_t *id)
{
    int  rc;

    rc = ngx_device_auth_resume(p, leaf, appdata, len, id);
    fuzz_check_identity(id, rc, p->profile, "resume");

    return rc;
}


static void
fuzz_same_verdict(const ngx_device_auth_identity_t *a,
    const ngx_device_auth_identity_t *b, const char *what)
{
    fuzz_assert(a->status == b->status && a->x509_error == b->x509_error
                && a->reason_code == b->reason_code
                && strcmp(a->reason, b->reason) == 0,
                "%s: direct \"%s\" (%d), chain \"%s\" (%d)", what,
                a->reason, a->status, b->reason, b->status);

    fuzz_assert(memcmp(a->fingerprint, b->fingerprint,
                       NGX_DEVICE_AUTH_ID_LEN) == 0
                && memcmp(a->spki, b->spki, NGX_DEVICE_AUTH_ID_LEN) == 0
                && strcmp(a->serial, b->serial) == 0
                && strcmp(a->subject, b->subject) == 0,
                "%s: another device", what);

    if (a->status == NGX_DEVICE_AUTH_CERT_OK) {
        fuzz_assert(memcmp(a->signer_id, b->signer_id,
                           NGX_DEVICE_AUTH_ID_LEN) == 0
                    && memcmp(a->anchor_id, b->anchor_id,
                              NGX_DEVICE_AUTH_ID_LEN) == 0,
                    "%s: another signer or anchor", what);
    }
}


/* the direct path and the cache against the chain alone */

static void
fuzz_direct(ngx_device_auth_policy_t *p, X509 *leaf, STACK_OF(X509) *sent,
    const uint8_t *data, size_t size)
{
    int                          i, k, rc, len, at[3];
    X509                        *x;
    unsigned char               *der, *q;
    const unsigned char         *cq;
    STACK_OF(X509)              *sk;
    ngx_device_auth_identity_t   id, cid;

    /* the chain (learns), directly against the signer, from the cache */

    for (i = 0; i < 3; i++) {
        if (i < 2) {
            ngx_device_auth_direct_reset(p->direct, i == 0);
        }

        rc = ngx_device_auth_verify(p, leaf, sent, &id);
        fuzz_check_identity(&id, rc, p->profile, "verify, direct");
        (void) ngx_device_auth_verify_chain(p, leaf, sent, &cid);
        fuzz_same_verdict(&id, &cid, "verify");
    }

    len = i2d_X509(leaf, NULL);
    if (len <= 0) {
        ERR_clear_error();
        return;
    }

    der = malloc(len);
    if (der == NULL) {
        abort();
    }

    q = der;
    (void) i2d_X509(leaf, &q);

    at[0] = len - 1;
    at[1] = len / 2;
    at[2] = size ? data[size - 1] * len / 256 : 0;

    for (k = 0; k < 3; k++) {
        der[at[k]] ^= 0x01;

        cq = der;
        x = d2i_X509(NULL, &cq, len);

        if (x) {
            sk = sk_X509_dup(sent);
            if (sk == NULL || sk_X509_set(sk, 0, x) == NULL) {
                abort();
            }

            rc = ngx_device_auth_verify(p, x, sk, &id);
            fuzz_check_identity(&id, rc, p->profile, "tampered, direct");
            (void) ngx_device_auth_verify_chain(p, x, sk, &cid);
            fuzz_same_verdict(&id, &cid, "tampered device");

            sk_X509_free(sk);
            X509_free(x);
        }

        der[at[k]] ^= 0x01;
    }

    free(der);
    ERR_clear_error();
}



static void
fuzz_policy(ngx_device_auth_policy_t *p, X509 *leaf, STACK_OF(X509) *sent,
    const uint8_t *tail, size_t tail_len, const uint8_t *data, size_t size)
{
    int                          rc, i, n, max;
    size_t                       len;
    unsigned char                appdata[NGX_DEVICE_AUTH_APPDATA_LEN];
    unsigned char                forged[NGX_DEVICE_AUTH_APPDATA_LEN];
    char                         hex[NGX_DEVICE_AUTH_HEX_LEN + 1];
    ngx_device_auth_bundle_t    *anchors;
    ngx_device_auth_identity_t   id, rid;
    static const int             flips[] = { 0, 1, 2, 3, 4, 35, 36, 67,
                                             68, 99, 100, 131 };
    static const unsigned char   context[NGX_DEVICE_AUTH_ID_LEN] =
                                     "a context the caller checks....";

    anchors = p->signers ? p->signers : p->roots;

    if (sent && sk_X509_num(sent) > 0) {
        fuzz_direct(p, leaf, sent, data, size);
    }

    /* with and without the chain the device sent */

    rc = ngx_device_auth_verify(p, leaf, NULL, &id);
    fuzz_check_identity(&id, rc, p->profile, "verify without chain");

    rc = ngx_device_auth_verify(p, leaf, sent, &id);
    fuzz_check_identity(&id, rc, p->profile, "verify");

    if (rc == NGX_DEVICE_AUTH_CERT_OK) {
        n = sk_X509_num(sent);
        max = (p->depth > 1 ? p->depth : 1) + 2;

        fuzz_assert(n <= max, "verified with %d certificates sent, max %d",
                    n, max);
        fuzz_assert(ngx_device_auth_bundle_find(anchors, id.anchor_id) >= 0,
                    "verified against an anchor that is not pinned");

        ngx_device_auth_hex(id.fingerprint, NGX_DEVICE_AUTH_ID_LEN, hex);
        fuzz_assert(strlen(hex) == NGX_DEVICE_AUTH_HEX_LEN
                    && strspn(hex, "0123456789abcdef")
                       == NGX_DEVICE_AUTH_HEX_LEN, "fingerprint hex");

        len = ngx_device_auth_appdata_encode(p, &id, context, appdata);
        fuzz_assert(len == NGX_DEVICE_AUTH_APPDATA_LEN, "appdata len %zu",
                    len);

        /* the verdict of a full handshake must resume */

        rc = fuzz_resume(p, leaf, appdata, len, &rid);
        fuzz_assert(rc == NGX_DEVICE_AUTH_CERT_OK,
                    "a verified device does not resume: %s", rid.reason);
        fuzz_assert(memcmp(rid.signer_id, id.signer_id,
                           NGX_DEVICE_AUTH_ID_LEN) == 0
                    && memcmp(rid.anchor_id, id.anchor_id,
                              NGX_DEVICE_AUTH_ID_LEN) == 0
                    && memcmp(rid.fingerprint, id.fingerprint,
                              NGX_DEVICE_AUTH_ID_LEN) == 0
                    && strcmp(rid.serial, id.serial) == 0,
                    "resumed identity differs from the verified one");

        /* nor under any other policy (pins, signers, depth, profile) */

        for (i = 0; i < FUZZ_NPOLICIES; i++) {
            if (fuzz_policies[i] != p) {
                rc = fuzz_resume(fuzz_policies[i], leaf, appdata, len, &rid);
                fuzz_assert(rc == NGX_DEVICE_AUTH_CERT_INVALID,
                            "a session of one policy resumed under another");
            }
        }

        /* a tampered header, status, anchor or policy must not */

        for (i = 0; i < (int) (sizeof(flips) / sizeof(flips[0])); i++) {
            memcpy(forged, appdata, len);
            forged[flips[i]] ^= (size ? data[0] : 0) | 1;

            rc = fuzz_resume(p, leaf, forged, len, &rid);

            /* the context is the caller's to check */

            if (flips[i] < 4
                || (flips[i] >= 4 + 2 * NGX_DEVICE_AUTH_ID_LEN
                    && flips[i] < 4 + 3 * NGX_DEVICE_AUTH_ID_LEN)
                || (flips[i] >= 4 + NGX_DEVICE_AUTH_ID_LEN
                    && flips[i] < 4 + 2 * NGX_DEVICE_AUTH_ID_LEN
                    && ngx_device_auth_bundle_find(anchors, forged + 36) < 0))
            {
                fuzz_assert(rc == NGX_DEVICE_AUTH_CERT_INVALID,
                            "resumed with byte %d of the verdict changed",
                            flips[i]);
            }
        }

        (void) fuzz_resume(p, leaf, appdata, len - 1, &rid);
        fuzz_assert(rid.status == NGX_DEVICE_AUTH_CERT_INVALID,
                    "resumed with a short verdict");
    }

    /* verdicts from the input */

    (void) fuzz_resume(p, leaf, tail, tail_len, &rid);

    if (size >= NGX_DEVICE_AUTH_APPDATA_LEN) {
        (void) fuzz_resume(p, leaf, data + size - NGX_DEVICE_AUTH_APPDATA_LEN,
                           NGX_DEVICE_AUTH_APPDATA_LEN, &rid);
    }

    /* a well-formed verdict of this policy naming a pinned anchor */

    memset(forged, 0, sizeof(forged));
    forged[0] = 'D';
    forged[1] = 'A';
    forged[2] = 2;
    forged[3] = NGX_DEVICE_AUTH_CERT_OK;
    memcpy(forged + 4 + NGX_DEVICE_AUTH_ID_LEN,
           anchors->ids[size % anchors->n], NGX_DEVICE_AUTH_ID_LEN);
    memcpy(forged + 4 + 2 * NGX_DEVICE_AUTH_ID_LEN, p->id,
           NGX_DEVICE_AUTH_ID_LEN);

    rc = fuzz_resume(p, leaf, forged, sizeof(forged), &rid);

    if (rc == NGX_DEVICE_AUTH_CERT_OK) {
        fuzz_assert(X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0
                    && X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0,
                    "resumed outside the validity period");

        memset(&id, 0, sizeof(id));
        fuzz_assert(ngx_device_auth_check_profile(p->profile, leaf, &id)
                    == NGX_DEVICE_AUTH_CERT_OK,
                    "resumed but the profile check fails: %s", id.reason);
    }

    forged[3] = NGX_DEVICE_AUTH_CERT_INVALID;
    rc = fuzz_resume(p, leaf, forged, sizeof(forged), &rid);
    fuzz_assert(rc == NGX_DEVICE_AUTH_CERT_INVALID,
                "resumed a session whose verdict was invalid");

    ERR_clear_error();
}


/* a bundle of certificates [from, to) of a stack, as the loader makes it */

static ngx_device_auth_bundle_t *
fuzz_bundle_slice(STACK_OF(X509) *sk, int from, int to)
{
    int                        i;
    X509                      *x;
    ngx_device_auth_bundle_t  *b;

    b = calloc(1, sizeof(ngx_device_auth_bundle_t));
    if (b == NULL) {
        abort();
    }

    b->certs = sk_X509_new_null();
    b->ids = calloc(to - from, NGX_DEVICE_AUTH_ID_LEN);
    if (b->certs == NULL || b->ids == NULL) {
        abort();
    }

    for (i = from; i < to; i++) {
        x = sk_X509_value(sk, i);

        if (ngx_device_auth_cert_id(x, b->ids[b->n]) != 0) {
            /* nothing can be pinned that cannot be hashed */
            ngx_device_auth_bundle_free(b);
            return NULL;
        }

        X509_up_ref(x);
        if (sk_X509_push(b->certs, x) == 0) {
            abort();
        }

        b->n++;
    }

    return b;
}


static void
fuzz_self_pinned(STACK_OF(X509) *chain, const uint8_t *tail, size_t tail_len,
    const uint8_t *data, size_t size)
{
    int                        n, depth, profile;
    char                       err[NGX_DEVICE_AUTH_ERR_MAX];
    X509                      *leaf;
    ngx_device_auth_bundle_t  *roots, *signers;
    ngx_device_auth_policy_t  *p;

    n = sk_X509_num(chain);
    leaf = sk_X509_value(chain, 0);

    roots = fuzz_bundle_slice(chain, n - 1, n);
    if (roots == NULL) {
        return;
    }

    signers = n >= 3 ? fuzz_bundle_slice(chain, 1, n - 1) : NULL;

    depth = n - 2;
    depth = depth < 1 ? 1 : depth > 4 ? 4 : depth;

    for (profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
         profile <= NGX_DEVICE_AUTH_PROFILE_GENERIC;
         profile++)
    {
        err[0] = '\0';
        p = ngx_device_auth_policy_create(roots, NULL, depth, profile, err,
                                          sizeof(err));
        fuzz_assert(p != NULL || memchr(err, '\0', sizeof(err)) != NULL,
                    "policy error not terminated");

        if (p) {
            fuzz_policy(p, leaf, chain, tail, tail_len, data, size);
            ngx_device_auth_policy_free(p);
        }

        if (signers == NULL) {
            continue;
        }

        p = ngx_device_auth_policy_create(roots, signers, 1, profile, err,
                                          sizeof(err));
        if (p) {
            fuzz_policy(p, leaf, chain, tail, tail_len, data, size);
            ngx_device_auth_policy_free(p);
        }
    }

    ngx_device_auth_bundle_free(signers);
    ngx_device_auth_bundle_free(roots);
    ERR_clear_error();
}


static void
fuzz_chain(STACK_OF(X509) *chain, const uint8_t *tail, size_t tail_len,
    const uint8_t *data, size_t size)
{
    int                         i, rc, profile;
    X509                       *leaf;
    ngx_device_auth_identity_t  id;

    leaf = sk_X509_value(chain, 0);

    for (profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
         profile <= NGX_DEVICE_AUTH_PROFILE_GENERIC;
         profile++)
    {
        memset(&id, 0, sizeof(id));
        rc = ngx_device_auth_check_profile(profile, leaf, &id);
        fuzz_check_identity(&id, rc, profile, "check_profile");
    }

    for (i = 0; i < FUZZ_NPOLICIES; i++) {
        fuzz_policy(fuzz_policies[i], leaf, chain, tail, tail_len, data,
                    size);
    }

    if (sk_X509_num(chain) >= 2) {
        fuzz_self_pinned(chain, tail, tail_len, data, size);
    }

    ERR_clear_error();
}


static void
fuzz_der(const uint8_t *data, size_t size)
{
    X509                 *x;
    STACK_OF(X509)       *chain;
    const unsigned char  *p, *q, *end;

    chain = sk_X509_new_null();
    if (chain == NULL) {
        abort();
    }

    p = data;
    end = data + size;

    while (p < end && sk_X509_num(chain) < FUZZ_MAX_CERTS) {
        q = p;
        x = d2i_X509(NULL, &q, (long) (end - p));
        if (x == NULL) {
            break;
        }

        if (sk_X509_push(chain, x) == 0) {
            abort();
        }

        p = q;
    }

    ERR_clear_error();

    if (sk_X509_num(chain) > 0) {
        fuzz_chain(chain, p, (size_t) (end - p), data, size);
    }

    sk_X509_pop_free(chain, X509_free);
}


static void
fuzz_pem(const uint8_t *data, size_t size)
{
    int                        i, profile;
    char                       err[NGX_DEVICE_AUTH_ERR_MAX];
    char                       err2[NGX_DEVICE_AUTH_ERR_MAX];
    ngx_device_auth_bundle_t  *b, *b2;
    ngx_device_auth_policy_t  *p;

    err[0] = '\0';
    b = ngx_device_auth_bundle_from_mem((const char *) data, size, err,
                                        sizeof(err));

    fuzz_assert(b != NULL || (err[0] != '\0'
                              && memchr(err, '\0', sizeof(err)) != NULL),
                "bundle refused without a terminated error message");

    /* the same bytes from a file: ngx_device_auth_bundle_load() */

    if (fuzz_memfd >= 0 && ftruncate(fuzz_memfd, 0) == 0
        && pwrite(fuzz_memfd, data, size, 0) == (ssize_t) size)
    {
        err2[0] = '\0';
        b2 = ngx_device_auth_bundle_load(fuzz_memfd_path, err2, sizeof(err2));

        /*
         * A NUL byte ends a line read from a file BIO (fgets) but not one
         * read from a memory BIO, so OpenSSL's PEM reader may see other
         * lines: compare only inputs without NUL bytes.
         * fuzz/regressions/fuzz_cert/pem-nul-in-begin-line is such an input.
         */

        fuzz_assert(memchr(data, '\0', size) != NULL
                    || (b == NULL) == (b2 == NULL),
                    "from memory: %s; from a file: %s",
                    b ? "ok" : err, b2 ? "ok" : err2);

        if (b && b2 && memchr(data, '\0', size) == NULL) {
            fuzz_assert(ngx_device_auth_bundle_equal(b, b2)
                        && ngx_device_auth_bundle_equal(b2, b),
                        "bundles from memory and from a file differ");
        }

        ngx_device_auth_bundle_free(b2);
    }

    if (b == NULL) {
        ERR_clear_error();
        return;
    }

    fuzz_assert(b->n > 0 && b->n == sk_X509_num(b->certs), "bundle of %d",
                b->n);

    for (i = 0; i < b->n; i++) {
        fuzz_assert(ngx_device_auth_bundle_find(b, b->ids[i]) <= i,
                    "bundle_find");
    }

    fuzz_assert(ngx_device_auth_bundle_equal(b, b)
                && !ngx_device_auth_bundle_equal(b, NULL)
                && ngx_device_auth_bundle_equal(b, fuzz_roots)
                   == (b->n == fuzz_roots->n
                       && memcmp(b->ids, fuzz_roots->ids,
                                 (size_t) b->n * NGX_DEVICE_AUTH_ID_LEN) == 0),
                "bundle_equal");

    /* the input as a configuration: pinned roots, pinned signers */

    (void) ngx_device_auth_bundle_check_ca(b, err, sizeof(err));

    for (profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
         profile <= NGX_DEVICE_AUTH_PROFILE_GENERIC;
         profile++)
    {
        p = ngx_device_auth_policy_create(b, NULL, 1, profile, err,
                                          sizeof(err));
        ngx_device_auth_policy_free(p);

        /* signers need a depth of at least 1 */
        p = ngx_device_auth_policy_create(fuzz_roots, b, 0, profile, err,
                                          sizeof(err));
        fuzz_assert(p == NULL, "signers accepted with depth 0");

        p = ngx_device_auth_policy_create(fuzz_roots, b, 1, profile, err,
                                          sizeof(err));
        if (p) {
            fuzz_policy(p, sk_X509_value(b->certs, 0), b->certs, NULL, 0,
                        data, size);
            ngx_device_auth_policy_free(p);
        }
    }

    /* the input as what a device sends */

    if (b->n <= FUZZ_MAX_CERTS) {
        fuzz_chain(b->certs, NULL, 0, data, size);
    }

    ngx_device_auth_bundle_free(b);
    ERR_clear_error();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_der(data, size);
    fuzz_pem(data, size);

    return 0;
}
