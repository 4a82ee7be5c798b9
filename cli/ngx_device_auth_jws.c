
/*
 * ES256 JWS in the JSON serialization, verified against pinned signer
 * certificates.
 *
 * Both JSON forms are read: the flattened one ("protected", "header",
 * "payload", "signature" side by side, as Microchip writes its manifest
 * entries) and the general one ("payload" and a "signatures" array), which
 * must then hold exactly one signature.  Only "alg": "ES256" is accepted,
 * never "none" nor an HMAC that a public key could be misused for; a
 * "crit" header is refused, as RFC 7515 4.1.11 wants for extensions that
 * are not understood.  The signature is the raw r || s of RFC 7518 3.4,
 * turned into the DER that OpenSSL verifies.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ngx_device_auth_base64.h"
#include "ngx_device_auth_jws.h"


static int ngx_device_auth_jws_signer_init(ngx_device_auth_jws_signer_t *s,
    X509 *x, char *err, size_t errlen);
static int ngx_device_auth_jws_string(json_t *obj, const char *name,
    const char **s, size_t *len, char *err, size_t errlen);
static json_t *ngx_device_auth_jws_header(const char *b64, size_t len,
    char *err, size_t errlen);
static int ngx_device_auth_jws_es256(EVP_PKEY *key, ngx_device_auth_jws_t *j);


ngx_device_auth_jws_keys_t *
ngx_device_auth_jws_keys_create(ngx_device_auth_bundle_t *certs, char *err,
    size_t errlen)
{
    int                          i, k;
    ngx_device_auth_jws_keys_t  *keys;

    keys = calloc(1, sizeof(ngx_device_auth_jws_keys_t));
    if (keys == NULL
        || (keys->signers = calloc(certs->n,
                                   sizeof(ngx_device_auth_jws_signer_t)))
           == NULL)
    {
        free(keys);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    for (i = 0; i < certs->n; i++) {

        /* counted first: what the init decoded is freed on failure */
        keys->n++;

        if (ngx_device_auth_jws_signer_init(&keys->signers[i],
                                            sk_X509_value(certs->certs, i),
                                            err, errlen)
            != 0)
        {
            goto failed;
        }

        /* a kid must name one signer */

        for (k = 0; k < i; k++) {
            if (strcmp(keys->signers[k].kid, keys->signers[i].kid) == 0) {
                snprintf(err, errlen, "log signers \"%s\" and \"%s\" have "
                         "the same key identifier \"%s\"",
                         keys->signers[k].subject, keys->signers[i].subject,
                         keys->signers[i].kid);
                goto failed;
            }
        }
    }

    return keys;

failed:

    ngx_device_auth_jws_keys_free(keys);

    return NULL;
}


static int
ngx_device_auth_jws_signer_init(ngx_device_auth_jws_signer_t *s, X509 *x,
    char *err, size_t errlen)
{
    char                      group[64];
    size_t                    glen;
    unsigned int              n;
    unsigned char             md[EVP_MAX_MD_SIZE];
    const unsigned char      *id;
    const ASN1_OCTET_STRING  *ski;

    ngx_device_auth_subject(x, s->subject, sizeof(s->subject));

    if (ngx_device_auth_cert_id(x, s->sha256) != 0) {
        snprintf(err, errlen, "cannot hash log signer \"%s\"", s->subject);
        return -1;
    }

    /* the key is decoded once here, never per entry */

    s->key = X509_get_pubkey(x);

    if (s->key == NULL || EVP_PKEY_get_base_id(s->key) != EVP_PKEY_EC
        || EVP_PKEY_get_group_name(s->key, group, sizeof(group), &glen) != 1
        || OBJ_sn2nid(group) != NID_X9_62_prime256v1)
    {
        ERR_clear_error();
        snprintf(err, errlen, "log signer \"%s\" has no P-256 key (ES256 "
                 "needs one)", s->subject);
        return -1;
    }

    /* no subjectKeyIdentifier: RFC 5280 4.2.1.2 method 1, as Microchip */

    ski = X509_get0_subject_key_id(x);

    if (ski != NULL && ASN1_STRING_length(ski) > 0
        && ASN1_STRING_length(ski) <= 64)
    {
        id = ASN1_STRING_get0_data(ski);
        n = (unsigned int) ASN1_STRING_length(ski);

    } else {
        if (X509_pubkey_digest(x, EVP_sha1(), md, &n) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "cannot hash the key of log signer \"%s\"",
                     s->subject);
            return -1;
        }

        id = md;
    }

    (void) ngx_device_auth_base64_encode(NGX_DEVICE_AUTH_BASE64_URL, id, n,
                                         s->kid);

    return 0;
}


void
ngx_device_auth_jws_keys_free(ngx_device_auth_jws_keys_t *keys)
{
    int  i;

    if (keys == NULL) {
        return;
    }

    for (i = 0; i < keys->n; i++) {
        EVP_PKEY_free(keys->signers[i].key);
    }

    free(keys->signers);
    free(keys);
}


int
ngx_device_auth_jws_parse(json_t *jws, ngx_device_auth_jws_t *j, char *err,
    size_t errlen)
{
    char          sub[NGX_DEVICE_AUTH_ERR_MAX];
    size_t        len, n;
    json_t       *sigs, *sig, *v, *alg, *kid;
    const char   *s, *name;

    memset(j, 0, sizeof(ngx_device_auth_jws_t));

    if (!json_is_object(jws)) {
        snprintf(err, errlen, "entry is not a JSON object");
        return -1;
    }

    /* general serialization: one signature; flattened: the entry itself */

    sigs = json_object_get(jws, "signatures");

    if (sigs != NULL) {
        if (json_object_get(jws, "signature") != NULL
            || json_object_get(jws, "protected") != NULL
            || json_object_get(jws, "header") != NULL)
        {
            snprintf(err, errlen, "JWS has both \"signatures\" and a "
                     "flattened signature");
            return -1;
        }

        if (!json_is_array(sigs) || json_array_size(sigs) != 1) {
            snprintf(err, errlen, "JWS \"signatures\" must be an array of "
                     "one signature");
            return -1;
        }

        sig = json_array_get(sigs, 0);

        if (!json_is_object(sig)) {
            snprintf(err, errlen, "JWS signature is not a JSON object");
            return -1;
        }

    } else {
        sig = jws;
    }

    if (ngx_device_auth_jws_string(jws, "payload", &j->payload_b64,
                                   &j->payload_len, err, errlen) != 0
        || ngx_device_auth_jws_string(sig, "protected", &j->protected_b64,
                                      &j->protected_len, err, errlen) != 0
        || ngx_device_auth_jws_string(sig, "signature", &s, &len, err,
                                      errlen) != 0)
    {
        return -1;
    }

    /* the signature first: it is cheap to check and has a fixed size */

    if (len != (NGX_DEVICE_AUTH_JWS_SIG_LEN * 4 + 2) / 3) {
        snprintf(err, errlen, "signature is %zu base64url characters, "
                 "ES256 needs %d (r || s, 64 bytes)", len,
                 (NGX_DEVICE_AUTH_JWS_SIG_LEN * 4 + 2) / 3);
        return -1;
    }

    if (ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_URL, s, len,
                                      j->signature, &n, sub, sizeof(sub))
        != 0)
    {
        snprintf(err, errlen, "signature: %s", sub);
        return -1;
    }

    j->protected_header = ngx_device_auth_jws_header(j->protected_b64,
                                                     j->protected_len, err,
                                                     errlen);
    if (j->protected_header == NULL) {
        return -1;
    }

    alg = json_object_get(j->protected_header, "alg");

    if (!json_is_string(alg)) {
        snprintf(err, errlen, "protected header has no \"alg\"");
        goto failed;
    }

    if (strcmp(json_string_value(alg), "ES256") != 0
        || json_string_length(alg) != 5)
    {
        ngx_device_auth_printable((const unsigned char *)
                                  json_string_value(alg),
                                  json_string_length(alg), sub, 64);
        snprintf(err, errlen, "\"alg\": \"%s\" is not allowed, only ES256",
                 sub);
        goto failed;
    }

    if (json_object_get(j->protected_header, "crit") != NULL) {
        snprintf(err, errlen, "protected header has \"crit\": no extension "
                 "is supported");
        goto failed;
    }

    kid = json_object_get(j->protected_header, "kid");

    if (!json_is_string(kid)) {
        snprintf(err, errlen, "protected header has no \"kid\" naming the "
                 "log signer");
        goto failed;
    }

    j->kid = json_string_value(kid);

    /* RFC 7515 7.2.1: protected and unprotected names are disjoint */

    j->header = json_object_get(sig, "header");

    if (j->header != NULL) {
        if (!json_is_object(j->header)) {
            snprintf(err, errlen, "unprotected \"header\" is not a JSON "
                     "object");
            goto failed;
        }

        json_object_foreach(j->header, name, v) {
            if (json_object_get(j->protected_header, name) != NULL) {
                ngx_device_auth_printable((const unsigned char *) name,
                                          strlen(name), sub, 64);
                snprintf(err, errlen, "\"%s\" is both in the protected and "
                         "the unprotected header", sub);
                goto failed;
            }
        }
    }

    j->payload = malloc(ngx_device_auth_base64_decoded_max(j->payload_len)
                        + 1);
    if (j->payload == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    if (ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_URL,
                                      j->payload_b64, j->payload_len,
                                      j->payload, &j->payload_size, sub,
                                      sizeof(sub))
        != 0)
    {
        snprintf(err, errlen, "payload: %s", sub);
        goto failed;
    }

    j->payload[j->payload_size] = '\0';

    return 0;

failed:

    ngx_device_auth_jws_free(j);

    return -1;
}


static int
ngx_device_auth_jws_string(json_t *obj, const char *name, const char **s,
    size_t *len, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (!json_is_string(v)) {
        snprintf(err, errlen, v == NULL ? "JWS has no \"%s\""
                                        : "JWS \"%s\" is not a string", name);
        return -1;
    }

    *s = json_string_value(v);
    *len = json_string_length(v);

    return 0;
}


static json_t *
ngx_device_auth_jws_header(const char *b64, size_t len, char *err,
    size_t errlen)
{
    char            sub[NGX_DEVICE_AUTH_ERR_MAX];
    size_t          n;
    json_t         *h;
    json_error_t    e;
    unsigned char  *buf;

    buf = malloc(ngx_device_auth_base64_decoded_max(len) + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_URL, b64, len,
                                      buf, &n, sub, sizeof(sub))
        != 0)
    {
        snprintf(err, errlen, "protected header: %s", sub);
        free(buf);
        return NULL;
    }

    h = json_loadb((const char *) buf, n, JSON_REJECT_DUPLICATES, &e);
    free(buf);

    if (h == NULL) {
        /* jansson quotes the input near the error: escaped here */
        ngx_device_auth_printable((const unsigned char *) e.text,
                                  strlen(e.text), sub, 120);
        snprintf(err, errlen, "protected header is not JSON: %s at byte %d",
                 sub, e.position);
        return NULL;
    }

    if (!json_is_object(h)) {
        snprintf(err, errlen, "protected header is not a JSON object");
        json_decref(h);
        return NULL;
    }

    return h;
}


int
ngx_device_auth_jws_verify(ngx_device_auth_jws_keys_t *keys,
    ngx_device_auth_jws_t *j, char *err, size_t errlen)
{
    int                            i, rc;
    char                           shown[64];
    size_t                         n;
    json_t                        *x5t;
    unsigned char                  sha[NGX_DEVICE_AUTH_ID_LEN + 3];
    ngx_device_auth_jws_signer_t  *s;

    s = NULL;

    for (i = 0; i < keys->n; i++) {
        if (strcmp(keys->signers[i].kid, j->kid) == 0) {
            s = &keys->signers[i];
            break;
        }
    }

    if (s == NULL) {
        ngx_device_auth_printable((const unsigned char *) j->kid,
                                  strlen(j->kid), shown, sizeof(shown));
        snprintf(err, errlen, "\"kid\": \"%s\" names no pinned log signer",
                 shown);
        return -1;
    }

    /* a thumbprint, when there is one, must name the same certificate */

    x5t = json_object_get(j->protected_header, "x5t#S256");

    if (x5t != NULL) {
        if (!json_is_string(x5t)
            || json_string_length(x5t) != 43
            || ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_URL,
                                             json_string_value(x5t), 43, sha,
                                             &n, shown, sizeof(shown))
               != 0
            || memcmp(sha, s->sha256, NGX_DEVICE_AUTH_ID_LEN) != 0)
        {
            snprintf(err, errlen, "\"x5t#S256\" is not the thumbprint of "
                     "log signer \"%s\" that \"kid\" names", s->subject);
            return -1;
        }
    }

    rc = ngx_device_auth_jws_es256(s->key, j);

    if (rc != 1) {
        snprintf(err, errlen, rc == 0 ? "signature does not verify with "
                 "log signer \"%s\" (kid %s)" : "cannot verify the signature "
                 "with log signer \"%s\" (kid %s)", s->subject, s->kid);
        return -1;
    }

    return i;
}


/* 1: good signature, 0: bad, -1: error */

static int
ngx_device_auth_jws_es256(EVP_PKEY *key, ngx_device_auth_jws_t *j)
{
    int              rc, len;
    BIGNUM          *r, *s;
    ECDSA_SIG       *sig;
    EVP_MD_CTX      *md;
    EVP_PKEY_CTX    *ctx;
    unsigned int     dlen;
    unsigned char   *der;
    unsigned char    digest[EVP_MAX_MD_SIZE];

    rc = -1;
    der = NULL;
    ctx = NULL;
    md = EVP_MD_CTX_new();
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(j->signature, NGX_DEVICE_AUTH_JWS_SIG_LEN / 2, NULL);
    s = BN_bin2bn(j->signature + NGX_DEVICE_AUTH_JWS_SIG_LEN / 2,
                  NGX_DEVICE_AUTH_JWS_SIG_LEN / 2, NULL);

    if (md == NULL || sig == NULL || r == NULL || s == NULL
        || ECDSA_SIG_set0(sig, r, s) != 1)
    {
        BN_free(r);
        BN_free(s);
        goto done;
    }

    /* the signing input is the text as it stands: protected "." payload */

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(md, j->protected_b64, j->protected_len) != 1
        || EVP_DigestUpdate(md, ".", 1) != 1
        || EVP_DigestUpdate(md, j->payload_b64, j->payload_len) != 1
        || EVP_DigestFinal_ex(md, digest, &dlen) != 1)
    {
        goto done;
    }

    len = i2d_ECDSA_SIG(sig, &der);
    ctx = EVP_PKEY_CTX_new(key, NULL);

    if (len <= 0 || ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
        goto done;
    }

    rc = EVP_PKEY_verify(ctx, der, (size_t) len, digest, dlen) == 1 ? 1 : 0;

done:

    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);

    return rc;
}


int
ngx_device_auth_jws_sign(EVP_PKEY *key, const char *input, size_t len,
    unsigned char *sig)
{
    int                   rc;
    size_t                dlen;
    ECDSA_SIG            *es;
    EVP_MD_CTX           *md;
    const BIGNUM         *r, *s;
    unsigned char         der[160];
    const unsigned char  *p;

    rc = -1;
    es = NULL;
    dlen = sizeof(der);
    md = EVP_MD_CTX_new();

    if (md == NULL
        || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(md, der, &dlen, (const unsigned char *) input, len)
           != 1)
    {
        goto done;
    }

    /* DER to the r || s of RFC 7518 3.4 */

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) dlen);
    if (es == NULL) {
        goto done;
    }

    ECDSA_SIG_get0(es, &r, &s);

    if (BN_bn2binpad(r, sig, NGX_DEVICE_AUTH_JWS_SIG_LEN / 2)
            != NGX_DEVICE_AUTH_JWS_SIG_LEN / 2
        || BN_bn2binpad(s, sig + NGX_DEVICE_AUTH_JWS_SIG_LEN / 2,
                        NGX_DEVICE_AUTH_JWS_SIG_LEN / 2)
           != NGX_DEVICE_AUTH_JWS_SIG_LEN / 2)
    {
        goto done;
    }

    rc = 0;

done:

    ERR_clear_error();
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);

    return rc;
}


void
ngx_device_auth_jws_free(ngx_device_auth_jws_t *j)
{
    json_decref(j->protected_header);
    free(j->payload);
    j->protected_header = NULL;
    j->payload = NULL;
}
