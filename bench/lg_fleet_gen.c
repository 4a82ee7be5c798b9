
/*
 * loadgen: fleet generation.
 *
 * One certificate is built with the X509 API as a template, with
 * placeholders for the serial number, the CN, the public key and the
 * subject key identifier, and signed once so that OpenSSL fills in the
 * algorithm identifiers.  All placeholders have a fixed size, so for each
 * device the DER of the TBSCertificate is the template with four fields
 * overwritten; what remains per device is one fixed-base scalar
 * multiplication (the key), a SHA-256 and one ECDSA signature.  The records
 * are laid out as in the cache file (see lg_fleet.c).
 */


#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "lg_fleet.h"


#define LG_SERIAL_NUM_LEN   16       /* bytes of the X.509 serial number */
#define LG_SKI_LEN          20
#define LG_SIG_MAX          160
#define LG_BATCH            1024
#define LG_VALIDITY_YEARS   28       /* as Microchip's device certificates */

#define LG_PH_SERIAL        "LGSERIALPLACEHLD"
#define LG_PH_INDEX         "QQQQQQQQ"
#define LG_PH_SKI           "LGSUBJECTKEYIDPLACEH"


typedef struct {
    unsigned char   *tbs;
    int              tbs_len;
    unsigned char   *alg;
    int              alg_len;
    int              off_serial;
    int              off_index;
    int              off_pub;
    int              off_ski;
} lg_tmpl_t;


static int lg_fleet_template(lg_tmpl_t *t, X509 *signer, EVP_PKEY *skey,
    const char *tag);
static int lg_fleet_find(const unsigned char *buf, int len, const void *pat,
    int plen, const char *what);
static size_t lg_der_len(unsigned char *p, size_t len);
static double lg_now(void);


static int
lg_fleet_template(lg_tmpl_t *t, X509 *signer, EVP_PKEY *skey,
    const char *tag)
{
    int                  rc, i;
    char                 cn[64];
    time_t               now;
    size_t               plen;
    X509                *x;
    EVP_PKEY            *dummy;
    X509_NAME           *name;
    ASN1_INTEGER        *serial;
    ASN1_BIT_STRING     *ku;
    const X509_ALGOR    *alg;
    AUTHORITY_KEYID     *akid;
    BASIC_CONSTRAINTS   *bc;
    ASN1_OCTET_STRING   *ski;
    X509_NAME_ENTRY     *ne;
    const ASN1_OCTET_STRING  *sski;
    unsigned char        pub[LG_PUB_LEN];

    memset(t, 0, sizeof(lg_tmpl_t));

    rc = -1;
    x = X509_new();
    name = X509_NAME_new();
    serial = ASN1_INTEGER_new();
    ku = ASN1_BIT_STRING_new();
    bc = BASIC_CONSTRAINTS_new();
    ski = ASN1_OCTET_STRING_new();
    akid = NULL;
    dummy = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (x == NULL || name == NULL || serial == NULL || ku == NULL
        || bc == NULL || ski == NULL || dummy == NULL)
    {
        goto done;
    }

    if (!X509_set_version(x, X509_VERSION_3)
        || !ASN1_STRING_set(serial, LG_PH_SERIAL, LG_SERIAL_NUM_LEN)
        || !X509_set_serialNumber(x, serial)
        || !X509_set_issuer_name(x, X509_get_subject_name(signer)))
    {
        goto done;
    }

    /* notBefore on the hour, as Microchip's compressed certificates */
    now = time(NULL);
    now -= now % 3600 + 86400;

    if (ASN1_TIME_set(X509_getm_notBefore(x), now) == NULL
        || ASN1_TIME_set(X509_getm_notAfter(x),
                         now + (time_t) LG_VALIDITY_YEARS * 365 * 86400)
           == NULL)
    {
        goto done;
    }

    /* subject: the signer's O (if any), CN = sn0123<tag><index> */
    i = X509_NAME_get_index_by_NID(X509_get_subject_name(signer),
                                   NID_organizationName, -1);
    if (i >= 0) {
        ne = X509_NAME_get_entry(X509_get_subject_name(signer), i);
        if (!X509_NAME_add_entry(name, ne, -1, 0)) {
            goto done;
        }

    } else if (!X509_NAME_add_entry_by_NID(name, NID_organizationName,
                   MBSTRING_ASC, (unsigned char *) "loadgen fleet", -1,
                   -1, 0))
    {
        goto done;
    }

    snprintf(cn, sizeof(cn), "sn0123%s%s", tag, LG_PH_INDEX);

    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
                                    (unsigned char *) cn, -1, -1, 0)
        || !X509_set_subject_name(x, name)
        || !X509_set_pubkey(x, dummy))
    {
        goto done;
    }

    bc->ca = 0;

    if (!ASN1_BIT_STRING_set_bit(ku, 0, 1)          /* digitalSignature */
        || !ASN1_BIT_STRING_set_bit(ku, 4, 1)       /* keyAgreement */
        || !ASN1_OCTET_STRING_set(ski, (unsigned char *) LG_PH_SKI,
                                  LG_SKI_LEN)
        || !X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0)
        || !X509_add1_ext_i2d(x, NID_key_usage, ku, 1, 0)
        || !X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0))
    {
        goto done;
    }

    sski = X509_get0_subject_key_id(signer);
    if (sski != NULL) {
        akid = AUTHORITY_KEYID_new();
        if (akid == NULL) {
            goto done;
        }
        akid->keyid = ASN1_OCTET_STRING_dup(sski);
        if (akid->keyid == NULL
            || !X509_add1_ext_i2d(x, NID_authority_key_identifier, akid,
                                  0, 0))
        {
            goto done;
        }
    }

    /* signing once fills in both signature AlgorithmIdentifiers */
    if (!X509_sign(x, skey, EVP_sha256())) {
        goto done;
    }

    t->tbs = NULL;
    t->tbs_len = i2d_re_X509_tbs(x, &t->tbs);
    X509_get0_signature(NULL, &alg, x);
    t->alg = NULL;
    t->alg_len = i2d_X509_ALGOR(alg, &t->alg);

    if (t->tbs_len <= 0 || t->alg_len <= 0) {
        goto done;
    }

    if (EVP_PKEY_get_octet_string_param(dummy,
                                        OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        pub, sizeof(pub), &plen) != 1
        || plen != LG_PUB_LEN)
    {
        goto done;
    }

    t->off_serial = lg_fleet_find(t->tbs, t->tbs_len, LG_PH_SERIAL,
                                  LG_SERIAL_NUM_LEN, "serial");
    t->off_index = lg_fleet_find(t->tbs, t->tbs_len, LG_PH_INDEX, 8, "CN");
    t->off_pub = lg_fleet_find(t->tbs, t->tbs_len, pub, LG_PUB_LEN, "key");
    t->off_ski = lg_fleet_find(t->tbs, t->tbs_len, LG_PH_SKI, LG_SKI_LEN,
                               "SKI");

    if (t->off_serial < 0 || t->off_index < 0 || t->off_pub < 0
        || t->off_ski < 0)
    {
        goto done;
    }

    rc = 0;

done:

    X509_free(x);
    X509_NAME_free(name);
    ASN1_INTEGER_free(serial);
    ASN1_BIT_STRING_free(ku);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_OCTET_STRING_free(ski);
    AUTHORITY_KEYID_free(akid);
    EVP_PKEY_free(dummy);

    return rc;
}


static int
lg_fleet_find(const unsigned char *buf, int len, const void *pat, int plen,
    const char *what)
{
    const unsigned char  *p, *q;

    p = memmem(buf, len, pat, plen);

    if (p == NULL) {
        fprintf(stderr, "loadgen: template: %s placeholder not found\n",
                what);
        return -1;
    }

    q = memmem(p + 1, len - (p + 1 - buf), pat, plen);

    if (q != NULL) {
        fprintf(stderr, "loadgen: template: %s placeholder twice\n", what);
        return -1;
    }

    return (int) (p - buf);
}


int
lg_fleet_generate(lg_fleet_t *fl, X509 *signer, EVP_PKEY *skey,
    const unsigned char *fp, int verbose)
{
    int              rc;
    char             hex[16];
    size_t           siglen, rec_max, pos, body;
    double           t0;
    uint32_t         i;
    BIGNUM          *d;
    BN_CTX          *bnctx;
    EC_POINT        *q;
    EC_GROUP        *group;
    lg_tmpl_t        t;
    const BIGNUM    *order;
    EVP_PKEY_CTX    *sctx;
    unsigned char   *tbs, *rec, *p, *r, *priv, *pub;
    unsigned char    tagb[32 + sizeof(uint32_t)], dg[SHA256_DIGEST_LENGTH];
    unsigned char    sig[LG_SIG_MAX];
    static unsigned char  rnd[LG_BATCH * (LG_PRIV_LEN + LG_SERIAL_NUM_LEN)];

    t0 = lg_now();
    rc = -1;
    tbs = NULL;
    d = BN_new();
    bnctx = BN_CTX_new();
    group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    q = group ? EC_POINT_new(group) : NULL;
    sctx = EVP_PKEY_CTX_new(skey, NULL);

    if (d == NULL || bnctx == NULL || q == NULL || sctx == NULL
        || EVP_PKEY_sign_init(sctx) != 1
        || EVP_PKEY_CTX_set_signature_md(sctx, EVP_sha256()) != 1)
    {
        goto done;
    }

    /*
     * The serials' common part comes from the signer and the fleet size,
     * so a regenerated fleet has the same serials (and the same revoked
     * and cloned ones) while fleets of other sizes do not collide.
     */
    memcpy(tagb, fp, 32);
    memcpy(tagb + 32, &fl->n, sizeof(uint32_t));
    SHA256(tagb, 32 + sizeof(uint32_t), dg);

    snprintf(fl->tag, sizeof(fl->tag), "%02X%02X%02X", dg[0], dg[1], dg[2]);

    if (lg_fleet_template(&t, signer, skey, fl->tag) != 0) {
        goto done;
    }

    order = EC_GROUP_get0_order(group);
    rec_max = 2 + 4 + t.tbs_len + t.alg_len + 4 + LG_SIG_MAX
              + LG_PRIV_LEN + LG_PUB_LEN;

    fl->data = malloc(rec_max * fl->n);
    tbs = malloc(t.tbs_len);
    if (fl->data == NULL || tbs == NULL) {
        goto done;
    }

    memcpy(tbs, t.tbs, t.tbs_len);
    pos = 0;

    for (i = 0; i < fl->n; i++) {

        if (i % LG_BATCH == 0 && RAND_bytes(rnd, sizeof(rnd)) != 1) {
            goto done;
        }

        r = rnd + (i % LG_BATCH) * (LG_PRIV_LEN + LG_SERIAL_NUM_LEN);
        rec = fl->data + pos;
        p = rec + 2;

        /* the key: a random scalar in [1, n-1] times G */

        for ( ;; ) {
            if (BN_bin2bn(r, LG_PRIV_LEN, d) == NULL) {
                goto done;
            }
            if (!BN_is_zero(d) && BN_cmp(d, order) < 0) {
                break;
            }
            if (RAND_bytes(r, LG_PRIV_LEN) != 1) {
                goto done;
            }
        }

        if (!EC_POINT_mul(group, q, d, NULL, NULL, bnctx)
            || EC_POINT_point2oct(group, q, POINT_CONVERSION_UNCOMPRESSED,
                                  tbs + t.off_pub, LG_PUB_LEN, bnctx)
               != LG_PUB_LEN)
        {
            goto done;
        }

        /* positive, minimal DER: first byte 0x40..0x7f */
        memcpy(tbs + t.off_serial, r + LG_PRIV_LEN, LG_SERIAL_NUM_LEN);
        tbs[t.off_serial] = (tbs[t.off_serial] & 0x3f) | 0x40;

        snprintf(hex, sizeof(hex), "%08X", i);
        memcpy(tbs + t.off_index, hex, 8);

        /* RFC 5280 4.2.1.2 (1): SHA-1 of the subjectPublicKey bits */
        SHA1(tbs + t.off_pub, LG_PUB_LEN, tbs + t.off_ski);

        SHA256(tbs, t.tbs_len, dg);

        siglen = sizeof(sig);
        if (EVP_PKEY_sign(sctx, sig, &siglen, dg, sizeof(dg)) != 1) {
            goto done;
        }

        body = t.tbs_len + t.alg_len + 1 + (siglen + 1 < 128 ? 1 : 2)
               + 1 + siglen;

        *p++ = 0x30;
        p += lg_der_len(p, body);
        memcpy(p, tbs, t.tbs_len);
        p += t.tbs_len;
        memcpy(p, t.alg, t.alg_len);
        p += t.alg_len;
        *p++ = 0x03;
        p += lg_der_len(p, siglen + 1);
        *p++ = 0x00;
        memcpy(p, sig, siglen);
        p += siglen;

        rec[0] = (unsigned char) ((p - rec - 2) & 0xff);
        rec[1] = (unsigned char) ((p - rec - 2) >> 8);

        priv = p;
        pub = p + LG_PRIV_LEN;
        memcpy(priv, r, LG_PRIV_LEN);
        memcpy(pub, tbs + t.off_pub, LG_PUB_LEN);

        pos = pub + LG_PUB_LEN - fl->data;
    }

    fl->data_len = pos;

    if (verbose) {
        fprintf(stderr, "loadgen: generated %u devices in %.2f s\n",
                fl->n, lg_now() - t0);
    }

    rc = 0;

done:

    if (rc != 0) {
        fprintf(stderr, "loadgen: fleet generation failed\n");
    }

    free(tbs);
    OPENSSL_free(t.tbs);
    OPENSSL_free(t.alg);
    BN_free(d);
    BN_CTX_free(bnctx);
    EC_POINT_free(q);
    EC_GROUP_free(group);
    EVP_PKEY_CTX_free(sctx);

    return rc;
}


static size_t
lg_der_len(unsigned char *p, size_t len)
{
    if (len < 0x80) {
        p[0] = (unsigned char) len;
        return 1;
    }

    if (len < 0x100) {
        p[0] = 0x81;
        p[1] = (unsigned char) len;
        return 2;
    }

    p[0] = 0x82;
    p[1] = (unsigned char) (len >> 8);
    p[2] = (unsigned char) (len & 0xff);
    return 3;
}


static double
lg_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}
