
/*
 * Microchip manifests: the file's structure, and each entry's verification.
 *
 * The file is read as a JSON array whose elements jansson parses one at a
 * time in place (JSON_DISABLE_EOF_CHECK tells where each ends), so that a
 * file of any size costs the memory of its largest entry, and the entries
 * can then be verified in any order, by several threads.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ngx_device_auth_base64.h"
#include "ngx_device_auth_manifest.h"


#define NGX_DEVICE_AUTH_MANIFEST_COORD  64       /* compare 32-byte x, y */


static size_t ngx_device_auth_manifest_ws(const char *data, size_t len,
    size_t pos);
static void ngx_device_auth_manifest_text(json_error_t *e, char *buf);
static void ngx_device_auth_manifest_where(const char *data, size_t pos,
    char *buf, size_t size);
static int ngx_device_auth_manifest_payload(ngx_device_auth_manifest_t *m,
    ngx_device_auth_jws_t *jws, json_t *payload,
    ngx_device_auth_manifest_entry_t *e);
static json_t *ngx_device_auth_manifest_jwk(json_t *payload,
    ngx_device_auth_manifest_entry_t *e);
static int ngx_device_auth_manifest_coord(json_t *jwk, const char *name,
    unsigned char *out, ngx_device_auth_manifest_entry_t *e);
static STACK_OF(X509) *ngx_device_auth_manifest_x5c(
    ngx_device_auth_manifest_t *m, json_t *x5c,
    ngx_device_auth_manifest_entry_t *e);
static X509 *ngx_device_auth_manifest_d2i(ngx_device_auth_manifest_t *m,
    unsigned char *der, size_t len, int ca);
static int ngx_device_auth_manifest_claim(json_t *obj, char *serial);
static const char *ngx_device_auth_manifest_string(json_t *obj,
    const char *name, size_t max, const char *extra,
    ngx_device_auth_manifest_entry_t *e);
static int ngx_device_auth_manifest_reject(ngx_device_auth_manifest_entry_t *e,
    const char *fmt, ...);


/* at most "max" entries: their verdicts are kept until all are verified */

int
ngx_device_auth_manifest_scan(const char *data, size_t len, size_t max,
    ngx_device_auth_manifest_span_t **spans, size_t *n, char *err,
    size_t errlen)
{
    char                              where[64];
    char                              text[NGX_DEVICE_AUTH_SUBJECT_MAX];
    size_t                            pos, cap;
    json_t                           *v;
    json_error_t                      e;
    ngx_device_auth_manifest_span_t  *s, *tmp;

    *spans = NULL;
    *n = 0;
    s = NULL;
    cap = 0;

    /* a UTF-8 byte order mark, as some Windows tools write, is skipped */

    pos = (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    pos = ngx_device_auth_manifest_ws(data, len, pos);

    if (pos == len) {
        snprintf(err, errlen, "empty file, not a manifest");
        return -1;
    }

    if (data[pos] != '[') {
        ngx_device_auth_manifest_where(data, pos, where, sizeof(where));
        snprintf(err, errlen, "not a manifest: a JSON array of entries "
                 "must start at %s", where);
        return -1;
    }

    pos = ngx_device_auth_manifest_ws(data, len, pos + 1);

    if (pos < len && data[pos] == ']') {
        snprintf(err, errlen, "the manifest holds no entries");
        return -1;
    }

    for ( ;; ) {

        if (pos == len) {
            snprintf(err, errlen, "the file ends before entry %zu "
                     "(truncated?)", *n + 1);
            goto failed;
        }

        if (data[pos] != '{') {
            ngx_device_auth_manifest_where(data, pos, where, sizeof(where));
            snprintf(err, errlen, "entry %zu is not a JSON object (%s)",
                     *n + 1, where);
            goto failed;
        }

        if (*n == max) {
            snprintf(err, errlen, "more than %zu entries: split the file",
                     max);
            goto failed;
        }

        v = json_loadb(data + pos, len - pos, JSON_DISABLE_EOF_CHECK, &e);

        if (v == NULL) {
            ngx_device_auth_manifest_where(data,
                                           pos + (size_t) (e.position > 0
                                                           ? e.position : 0),
                                           where, sizeof(where));
            ngx_device_auth_manifest_text(&e, text);
            snprintf(err, errlen, "entry %zu is not valid JSON: %s (%s)",
                     *n + 1, text, where);
            goto failed;
        }

        json_decref(v);

        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            tmp = realloc(s, cap * sizeof(ngx_device_auth_manifest_span_t));
            if (tmp == NULL) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
            s = tmp;
        }

        s[*n].offset = pos;
        s[*n].len = (size_t) e.position;
        (*n)++;

        pos = ngx_device_auth_manifest_ws(data, len, pos + (size_t) e.position);

        if (pos == len) {
            snprintf(err, errlen, "the file ends after entry %zu, without "
                     "the closing ']' (truncated?)", *n);
            goto failed;
        }

        if (data[pos] == ']') {
            break;
        }

        if (data[pos] != ',') {
            ngx_device_auth_manifest_where(data, pos, where, sizeof(where));
            snprintf(err, errlen, "',' or ']' expected after entry %zu (%s)",
                     *n, where);
            goto failed;
        }

        pos = ngx_device_auth_manifest_ws(data, len, pos + 1);
    }

    pos = ngx_device_auth_manifest_ws(data, len, pos + 1);

    if (pos != len) {
        ngx_device_auth_manifest_where(data, pos, where, sizeof(where));
        snprintf(err, errlen, "data after the end of the array (%s)", where);
        goto failed;
    }

    *spans = s;

    return 0;

failed:

    free(s);
    *n = 0;

    return -1;
}


static size_t
ngx_device_auth_manifest_ws(const char *data, size_t len, size_t pos)
{
    while (pos < len && (data[pos] == ' ' || data[pos] == '\t'
                         || data[pos] == '\n' || data[pos] == '\r'))
    {
        pos++;
    }

    return pos;
}


/* jansson's message quotes the input near the error: escaped, it may hold
 * any byte */

static void
ngx_device_auth_manifest_text(json_error_t *e, char *buf)
{
    ngx_device_auth_printable((const unsigned char *) e->text,
                              strnlen(e->text, sizeof(e->text)), buf, 120);
}


/* "line L, column C": counted only when there is an error to report */

static void
ngx_device_auth_manifest_where(const char *data, size_t pos, char *buf,
    size_t size)
{
    size_t       line, col;
    const char  *p, *nl;

    line = 1;
    p = data;

    while ((nl = memchr(p, '\n', (size_t) (data + pos - p))) != NULL) {
        line++;
        p = nl + 1;
    }

    col = (size_t) (data + pos - p) + 1;

    snprintf(buf, size, "line %zu, column %zu", line, col);
}


int
ngx_device_auth_manifest_entry(ngx_device_auth_manifest_t *m,
    const char *data, size_t len, ngx_device_auth_manifest_entry_t *e)
{
    int                     rc;
    char                    err[NGX_DEVICE_AUTH_ERR_MAX];
    char                    text[NGX_DEVICE_AUTH_SUBJECT_MAX];
    json_t                 *root, *payload;
    json_error_t            je;
    ngx_device_auth_jws_t   jws;

    memset(e, 0, sizeof(ngx_device_auth_manifest_entry_t));
    e->status = NGX_DEVICE_AUTH_MANIFEST_REJECTED;
    e->log_signer = -1;

    if (len > NGX_DEVICE_AUTH_MANIFEST_ENTRY_MAX) {
        return ngx_device_auth_manifest_reject(e, "entry is %zu bytes, at "
                   "most %d allowed", len, NGX_DEVICE_AUTH_MANIFEST_ENTRY_MAX);
    }

    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        ngx_device_auth_manifest_text(&je, text);
        return ngx_device_auth_manifest_reject(e, "entry is not valid JSON: "
                                               "%s at byte %d", text,
                                               je.position);
    }

    /* until the payload is read, the unsigned header names the entry */

    (void) ngx_device_auth_manifest_claim(json_object_get(root, "header"),
                                          e->serial);

    if (ngx_device_auth_jws_parse(root, &jws, err, sizeof(err)) != 0) {
        json_decref(root);
        return ngx_device_auth_manifest_reject(e, "%s", err);
    }

    payload = json_loadb((const char *) jws.payload, jws.payload_size,
                         JSON_REJECT_DUPLICATES, &je);

    if (payload == NULL) {
        ngx_device_auth_manifest_text(&je, text);
        rc = ngx_device_auth_manifest_reject(e, "payload is not valid JSON: "
                                             "%s at byte %d", text,
                                             je.position);
    } else if (!json_is_object(payload)) {
        rc = ngx_device_auth_manifest_reject(e, "payload is not a JSON "
                                             "object");
    } else {
        rc = ngx_device_auth_manifest_payload(m, &jws, payload, e);
    }

    json_decref(payload);
    ngx_device_auth_jws_free(&jws);
    json_decref(root);

    return rc;
}


static int
ngx_device_auth_manifest_payload(ngx_device_auth_manifest_t *m,
    ngx_device_auth_jws_t *jws, json_t *payload,
    ngx_device_auth_manifest_entry_t *e)
{
    int                          rc;
    char                         err[NGX_DEVICE_AUTH_ERR_MAX];
    char                         other[NGX_DEVICE_AUTH_SERIAL_MAX + 1];
    json_t                      *jwk;
    X509                        *leaf;
    size_t                       i;
    unsigned int                 n;
    const char                  *part, *ptime;
    STACK_OF(X509)              *sent;
    unsigned char               *der;
    unsigned char                xy[NGX_DEVICE_AUTH_MANIFEST_COORD];
    unsigned char                md[EVP_MAX_MD_SIZE];
    const ASN1_BIT_STRING       *point;
    ngx_device_auth_identity_t   id;

    if (ngx_device_auth_manifest_claim(payload, e->serial) != 0) {
        e->serial[0] = '\0';
        return ngx_device_auth_manifest_reject(e, "payload \"uniqueId\" is "
                   "not a serial number (18 hex digits)");
    }

    /* the unsigned copy may not say otherwise than the signed one */

    if (jws->header != NULL
        && json_object_get(jws->header, "uniqueId") != NULL
        && (ngx_device_auth_manifest_claim(jws->header, other) != 0
            || strcmp(other, e->serial) != 0))
    {
        return ngx_device_auth_manifest_reject(e, "the unprotected header's "
                   "\"uniqueId\" differs from the payload's");
    }

    rc = ngx_device_auth_jws_verify(m->log_signers, jws, err, sizeof(err));
    if (rc < 0) {
        return ngx_device_auth_manifest_reject(e, "%s", err);
    }

    e->log_signer = rc;

    part = ngx_device_auth_manifest_string(payload, "partNumber",
                                           NGX_DEVICE_AUTH_PART_MAX,
                                           NGX_DEVICE_AUTH_PART_CHARS, e);
    ptime = ngx_device_auth_manifest_string(payload, "provisioningTimestamp",
                                            NGX_DEVICE_AUTH_TIME_MAX,
                                            NGX_DEVICE_AUTH_TIME_CHARS, e);
    if (part == NULL || ptime == NULL) {
        return NGX_DEVICE_AUTH_MANIFEST_REJECTED;
    }

    jwk = ngx_device_auth_manifest_jwk(payload, e);

    if (jwk == NULL
        || ngx_device_auth_manifest_coord(jwk, "x", xy, e) != 0
        || ngx_device_auth_manifest_coord(jwk, "y", xy + 32, e) != 0)
    {
        return NGX_DEVICE_AUTH_MANIFEST_REJECTED;
    }

    sent = ngx_device_auth_manifest_x5c(m, json_object_get(jwk, "x5c"), e);
    if (sent == NULL) {
        return NGX_DEVICE_AUTH_MANIFEST_REJECTED;
    }

    /* the edge's own decision on the certificate, pins and profile */

    leaf = sk_X509_value(sent, 0);

    if (ngx_device_auth_verify(m->policy, leaf, sent, &id)
        != NGX_DEVICE_AUTH_CERT_OK)
    {
        rc = ngx_device_auth_manifest_reject(e, "device certificate: %s",
                                             id.reason);
        goto done;
    }

    point = X509_get0_pubkey_bitstr(leaf);

    if (point == NULL || point->length != 1 + NGX_DEVICE_AUTH_MANIFEST_COORD
        || point->data[0] != 0x04
        || memcmp(point->data + 1, xy, NGX_DEVICE_AUTH_MANIFEST_COORD) != 0)
    {
        rc = ngx_device_auth_manifest_reject(e, "the JWK is not the key of "
                                             "the device certificate");
        goto done;
    }

    if (strcmp(e->serial, id.serial) != 0) {
        rc = ngx_device_auth_manifest_reject(e, "\"uniqueId\" %s is not the "
                                             "serial of the device "
                                             "certificate, %s", e->serial,
                                             id.serial);
        goto done;
    }

    /* the key as the edge can hash it: SubjectPublicKeyInfo, DER */

    der = NULL;
    i = (size_t) i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);

    if (der == NULL
        || EVP_Digest(der, i, md, &n, EVP_sha256(), NULL) != 1)
    {
        OPENSSL_free(der);
        ERR_clear_error();
        rc = ngx_device_auth_manifest_reject(e, "cannot hash the device "
                                             "key");
        goto done;
    }

    OPENSSL_free(der);

    ngx_device_auth_hex(md, NGX_DEVICE_AUTH_ID_LEN, e->reg.spki_sha256);
    ngx_device_auth_hex(id.signer_id, NGX_DEVICE_AUTH_ID_LEN, e->reg.signer);
    memcpy(e->reg.part, part, strlen(part) + 1);
    memcpy(e->reg.provisioned, ptime, strlen(ptime) + 1);

    e->status = NGX_DEVICE_AUTH_MANIFEST_OK;
    rc = NGX_DEVICE_AUTH_MANIFEST_OK;

done:

    sk_X509_pop_free(sent, X509_free);

    return rc;
}


/* the one JWK of "publicKeySet" that carries the certificate chain */

static json_t *
ngx_device_auth_manifest_jwk(json_t *payload,
    ngx_device_auth_manifest_entry_t *e)
{
    size_t   i;
    json_t  *keys, *k, *jwk, *v;

    keys = json_object_get(json_object_get(payload, "publicKeySet"), "keys");

    if (!json_is_array(keys)) {
        (void) ngx_device_auth_manifest_reject(e, "payload has no "
                                               "\"publicKeySet\" \"keys\" "
                                               "array");
        return NULL;
    }

    jwk = NULL;

    json_array_foreach(keys, i, k) {
        if (json_object_get(k, "x5c") == NULL) {
            continue;
        }

        if (jwk != NULL) {
            (void) ngx_device_auth_manifest_reject(e, "several JWKs carry "
                                                   "\"x5c\"");
            return NULL;
        }

        jwk = k;
    }

    if (jwk == NULL) {
        (void) ngx_device_auth_manifest_reject(e, "no JWK carries \"x5c\" "
                                               "(the device certificate)");
        return NULL;
    }

    v = json_object_get(jwk, "kty");

    if (!json_is_string(v) || strcmp(json_string_value(v), "EC") != 0) {
        (void) ngx_device_auth_manifest_reject(e, "the JWK's \"kty\" is not "
                                               "\"EC\"");
        return NULL;
    }

    v = json_object_get(jwk, "crv");

    if (!json_is_string(v) || strcmp(json_string_value(v), "P-256") != 0) {
        (void) ngx_device_auth_manifest_reject(e, "the JWK's \"crv\" is not "
                                               "\"P-256\"");
        return NULL;
    }

    return jwk;
}


static int
ngx_device_auth_manifest_coord(json_t *jwk, const char *name,
    unsigned char *out, ngx_device_auth_manifest_entry_t *e)
{
    char            err[NGX_DEVICE_AUTH_ERR_MAX];
    size_t          n;
    json_t         *v;
    unsigned char   buf[ngx_device_auth_base64_decoded_max(43)];

    v = json_object_get(jwk, name);

    if (!json_is_string(v) || json_string_length(v) != 43) {
        (void) ngx_device_auth_manifest_reject(e, "the JWK's \"%s\" is not "
                                               "a 32-byte base64url value",
                                               name);
        return -1;
    }

    if (ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_URL,
                                      json_string_value(v), 43, buf, &n, err,
                                      sizeof(err))
        != 0)
    {
        (void) ngx_device_auth_manifest_reject(e, "the JWK's \"%s\": %s",
                                               name, err);
        return -1;
    }

    memcpy(out, buf, 32);

    return 0;
}


/* the chain as the device would send it: its certificate first */

static STACK_OF(X509) *
ngx_device_auth_manifest_x5c(ngx_device_auth_manifest_t *m, json_t *x5c,
    ngx_device_auth_manifest_entry_t *e)
{
    char                  err[NGX_DEVICE_AUTH_ERR_MAX];
    X509                 *x;
    size_t                i, n, len;
    json_t               *v;
    unsigned char        *der;
    STACK_OF(X509)       *sent;

    if (!json_is_array(x5c) || json_array_size(x5c) == 0
        || json_array_size(x5c) > NGX_DEVICE_AUTH_MANIFEST_X5C_MAX)
    {
        (void) ngx_device_auth_manifest_reject(e, "\"x5c\" is not an array "
                   "of 1 to %d certificates", NGX_DEVICE_AUTH_MANIFEST_X5C_MAX);
        return NULL;
    }

    sent = sk_X509_new_null();
    if (sent == NULL) {
        (void) ngx_device_auth_manifest_reject(e, "out of memory");
        return NULL;
    }

    json_array_foreach(x5c, i, v) {

        if (!json_is_string(v)) {
            (void) ngx_device_auth_manifest_reject(e, "\"x5c\"[%zu] is not "
                                                   "a string", i);
            goto failed;
        }

        len = json_string_length(v);
        der = malloc(ngx_device_auth_base64_decoded_max(len) + 1);
        if (der == NULL) {
            (void) ngx_device_auth_manifest_reject(e, "out of memory");
            goto failed;
        }

        if (ngx_device_auth_base64_decode(NGX_DEVICE_AUTH_BASE64_STD,
                                          json_string_value(v), len, der, &n,
                                          err, sizeof(err))
            != 0)
        {
            free(der);
            (void) ngx_device_auth_manifest_reject(e, "\"x5c\"[%zu]: %s", i,
                                                   err);
            goto failed;
        }

        /* the device certificate is new in each entry, the CAs are not */

        x = ngx_device_auth_manifest_d2i(m, der, n, i > 0);

        if (x == NULL) {
            (void) ngx_device_auth_manifest_reject(e, "\"x5c\"[%zu] is not "
                                                   "one DER certificate", i);
            goto failed;
        }

        if (sk_X509_push(sent, x) == 0) {
            X509_free(x);
            (void) ngx_device_auth_manifest_reject(e, "out of memory");
            goto failed;
        }
    }

    return sent;

failed:

    sk_X509_pop_free(sent, X509_free);

    return NULL;
}


/* takes "der" (malloc()ed); a certificate the caller must free, or NULL */

static X509 *
ngx_device_auth_manifest_d2i(ngx_device_auth_manifest_t *m, unsigned char *der,
    size_t len, int ca)
{
    int                                 i;
    X509                               *x;
    const unsigned char                *p;
    ngx_device_auth_manifest_cached_t  *c;

    if (ca) {
        for (i = 0; i < m->ncached; i++) {
            c = &m->cache[i];

            if (c->len == len && memcmp(c->der, der, len) == 0) {
                free(der);
                X509_up_ref(c->x509);
                return c->x509;
            }
        }
    }

    p = der;
    x = d2i_X509(NULL, &p, (long) len);

    if (x == NULL || p != der + len) {
        X509_free(x);
        free(der);
        ERR_clear_error();
        return NULL;
    }

    if (!ca || m->ncached == NGX_DEVICE_AUTH_MANIFEST_CACHE) {
        free(der);
        return x;
    }

    c = &m->cache[m->ncached++];
    c->der = der;
    c->len = len;
    c->x509 = x;
    X509_up_ref(x);

    return x;
}


void
ngx_device_auth_manifest_cache_free(ngx_device_auth_manifest_t *m)
{
    int  i;

    for (i = 0; i < m->ncached; i++) {
        X509_free(m->cache[i].x509);
        free(m->cache[i].der);
    }

    m->ncached = 0;
}


/* "uniqueId": 18 hex digits, upper-cased as the edge writes serials */

static int
ngx_device_auth_manifest_claim(json_t *obj, char *serial)
{
    int          i;
    json_t      *v;
    const char  *s;

    v = json_object_get(obj, "uniqueId");

    if (!json_is_string(v) || json_string_length(v) != 18) {
        return -1;
    }

    s = json_string_value(v);

    for (i = 0; i < 18; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            serial[i] = s[i];
        } else if (s[i] >= 'a' && s[i] <= 'f') {
            serial[i] = (char) (s[i] - 'a' + 'A');
        } else if (s[i] >= 'A' && s[i] <= 'F') {
            serial[i] = s[i];
        } else {
            serial[0] = '\0';
            return -1;
        }
    }

    serial[18] = '\0';

    return 0;
}


static const char *
ngx_device_auth_manifest_string(json_t *obj, const char *name, size_t max,
    const char *extra, ngx_device_auth_manifest_entry_t *e)
{
    char     shown[NGX_DEVICE_AUTH_SUBJECT_MAX];
    json_t  *v;

    v = json_object_get(obj, name);

    if (!json_is_string(v)) {
        (void) ngx_device_auth_manifest_reject(e, "payload has no \"%s\" "
                                               "string", name);
        return NULL;
    }

    if (!ngx_device_auth_registration_token(json_string_value(v),
                                            json_string_length(v), max,
                                            extra))
    {
        ngx_device_auth_printable((const unsigned char *)
                                  json_string_value(v),
                                  json_string_length(v), shown, 80);
        (void) ngx_device_auth_manifest_reject(e, "payload \"%s\" \"%s\" is "
                   "not 1-%zu characters of A-Z a-z 0-9 %s", name, shown,
                   max, extra);
        return NULL;
    }

    return json_string_value(v);
}


static int
ngx_device_auth_manifest_reject(ngx_device_auth_manifest_entry_t *e,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(e->reason, sizeof(e->reason), fmt, args);
    va_end(args);

    e->status = NGX_DEVICE_AUTH_MANIFEST_REJECTED;

    return NGX_DEVICE_AUTH_MANIFEST_REJECTED;
}
