
/*
 * manifest-gen: a large Microchip-style manifest, fast, for the tests and
 * the measurement of docs/performance.md.
 *
 *   manifest-gen -n N --signer-cert F --signer-key F --log-cert F
 *                --log-key F -o OUT
 *
 * N device certificates issued by the signer come from the load
 * generator's fleet code (bench/lg_fleet_gen.c: a DER template, one
 * scalar multiplication and one signature per device, no openssl command
 * per entry).  Each entry is laid out as Microchip's are (see
 * t/data/atecc608/manifest-trustandgo-atecc608a-mah4i.json): payload with
 * the part number, the provisioning time, uniqueId and five JWKs, the
 * first with x5c [device, signer]; protected header with ES256, the log
 * signer's kid (base64url of its subject key identifier) and x5t#S256;
 * the unprotected header with uniqueId; an ES256 signature, r || s.
 * One entry per line.
 *
 * OUT.serials gets a line per entry: "SERIAL SPKI_SHA256", the SHA-256 of
 * the device's SubjectPublicKeyInfo that the import records.
 */


#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lg_fleet.h"
#include "ngx_device_auth_base64.h"
#include "ngx_device_auth_jws.h"


#define MG_SIG_LEN    NGX_DEVICE_AUTH_JWS_SIG_LEN
#define MG_COORD_LEN  32

/* SubjectPublicKeyInfo of a P-256 key, before the 65-byte point */
static const unsigned char  mg_spki_prefix[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
    0x42, 0x00
};


static char *mg_b64(int variant, const unsigned char *p, size_t len);
static json_t *mg_payload(const char *uid, const unsigned char *der,
    size_t der_len, const unsigned char *pub, const char *signer_b64,
    unsigned i);
static void *mg_read_pem(const char *path, int key);


int
main(int argc, char **argv)
{
    int              c, rc;
    char            *out, *pay_json, *pay_b64, *prot_b64, *input, *line;
    char            *signer_b64, *sig_b64, *kid, *x5t, path[4096];
    char             uid[LG_SERIAL_LEN + 1], hex[65];
    long             n;
    FILE            *f, *fs;
    X509            *log_cert, *signer;
    size_t           len;
    uint32_t         i;
    json_t          *payload, *prot, *entry;
    EVP_PKEY        *log_key;
    lg_fleet_t       fl;
    unsigned int     mdlen;
    unsigned char   *der, *sder, *spki, sig[MG_SIG_LEN], md[EVP_MAX_MD_SIZE];
    const char      *signer_cert, *signer_key, *log_cert_file, *log_key_file;
    const ASN1_OCTET_STRING  *ski;

    static const struct option  opts[] = {
        { "signer-cert", required_argument, NULL, 's' },
        { "signer-key", required_argument, NULL, 'k' },
        { "log-cert", required_argument, NULL, 'l' },
        { "log-key", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 }
    };

    n = 0;
    out = NULL;
    signer_cert = signer_key = log_cert_file = log_key_file = NULL;

    while ((c = getopt_long(argc, argv, "n:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'n': n = atol(optarg); break;
        case 'o': out = optarg; break;
        case 's': signer_cert = optarg; break;
        case 'k': signer_key = optarg; break;
        case 'l': log_cert_file = optarg; break;
        case 'L': log_key_file = optarg; break;
        default: n = -1;
        }
    }

    if (n <= 0 || n > 10000000 || out == NULL || signer_cert == NULL
        || signer_key == NULL || log_cert_file == NULL
        || log_key_file == NULL)
    {
        fprintf(stderr, "usage: manifest-gen -n N --signer-cert F "
                "--signer-key F --log-cert F --log-key F -o OUT\n");
        return 2;
    }

    json_object_seed(1);

    memset(&fl, 0, sizeof(lg_fleet_t));

    log_cert = mg_read_pem(log_cert_file, 0);
    signer = mg_read_pem(signer_cert, 0);
    log_key = mg_read_pem(log_key_file, 1);

    if (log_cert == NULL || signer == NULL || log_key == NULL
        || lg_fleet_open(&fl, signer_cert, signer_key, (uint32_t) n, NULL, 0,
                         1) != 0)
    {
        ERR_print_errors_fp(stderr);
        return 1;
    }

    /* the log signer as Microchip names it: kid and x5t#S256 */

    ski = X509_get0_subject_key_id(log_cert);
    if (ski == NULL) {
        fprintf(stderr, "manifest-gen: the log signer has no "
                "subjectKeyIdentifier\n");
        return 1;
    }

    kid = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, ASN1_STRING_get0_data(ski),
                 ASN1_STRING_length(ski));

    X509_digest(log_cert, EVP_sha256(), md, &mdlen);
    x5t = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, md, mdlen);

    sder = NULL;
    len = (size_t) i2d_X509(signer, &sder);
    signer_b64 = mg_b64(NGX_DEVICE_AUTH_BASE64_STD, sder, len);

    prot = json_pack("{s:s, s:s, s:s, s:s}", "typ", "JWT", "alg", "ES256",
                     "kid", kid, "x5t#S256", x5t);
    line = json_dumps(prot, JSON_COMPACT | JSON_PRESERVE_ORDER);
    prot_b64 = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, (unsigned char *) line,
                      strlen(line));
    free(line);

    snprintf(path, sizeof(path), "%s.serials", out);

    f = fopen(out, "w");
    fs = fopen(path, "w");
    spki = malloc(sizeof(mg_spki_prefix) + LG_PUB_LEN);

    if (f == NULL || fs == NULL || spki == NULL) {
        perror(out);
        return 1;
    }

    memcpy(spki, mg_spki_prefix, sizeof(mg_spki_prefix));

    fputs("[\n", f);
    rc = 0;

    for (i = 0; i < fl.n; i++) {
        lg_fleet_serial(&fl, i, uid);

        der = fl.data + fl.dev[i].off + 2;
        memcpy(spki + sizeof(mg_spki_prefix),
               der + fl.dev[i].der_len + LG_PRIV_LEN, LG_PUB_LEN);
        EVP_Digest(spki, sizeof(mg_spki_prefix) + LG_PUB_LEN, md, &mdlen,
                   EVP_sha256(), NULL);

        for (c = 0; c < 32; c++) {
            snprintf(hex + 2 * c, 3, "%02x", md[c]);
        }

        fprintf(fs, "%s %s\n", uid, hex);

        /* Microchip writes uniqueId in lower case */
        for (c = 0; uid[c]; c++) {
            uid[c] = (uid[c] >= 'A' && uid[c] <= 'F') ? uid[c] + 32 : uid[c];
        }

        payload = mg_payload(uid, der, fl.dev[i].der_len,
                             der + fl.dev[i].der_len + LG_PRIV_LEN,
                             signer_b64, i);
        pay_json = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
        pay_b64 = mg_b64(NGX_DEVICE_AUTH_BASE64_URL,
                         (unsigned char *) pay_json, strlen(pay_json));

        len = strlen(prot_b64) + 1 + strlen(pay_b64);
        input = malloc(len + 1);
        snprintf(input, len + 1, "%s.%s", prot_b64, pay_b64);

        if (ngx_device_auth_jws_sign(log_key, input, len, sig) != 0) {
            fprintf(stderr, "manifest-gen: signing failed\n");
            rc = 1;
            break;
        }

        sig_b64 = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, sig, MG_SIG_LEN);

        entry = json_pack("{s:s, s:s, s:{s:s}, s:s}", "payload", pay_b64,
                          "protected", prot_b64, "header", "uniqueId", uid,
                          "signature", sig_b64);
        line = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER);

        fprintf(f, "%s%s\n", line, i + 1 < fl.n ? "," : "");

        free(line);
        json_decref(entry);
        free(sig_b64);
        free(input);
        free(pay_b64);
        free(pay_json);
        json_decref(payload);
    }

    fputs("]\n", f);

    if (fclose(f) != 0 || fclose(fs) != 0) {
        perror(out);
        rc = 1;
    }

    free(spki);
    free(prot_b64);
    free(signer_b64);
    free(kid);
    free(x5t);
    json_decref(prot);
    OPENSSL_free(sder);
    X509_free(log_cert);
    X509_free(signer);
    EVP_PKEY_free(log_key);
    lg_fleet_free(&fl);

    return rc;
}


static json_t *
mg_payload(const char *uid, const unsigned char *der, size_t der_len,
    const unsigned char *pub, const char *signer_b64, unsigned i)
{
    int      k;
    char    *x, *y, *dev_b64, time[32], id[2];
    json_t  *keys, *org, *payload;

    x = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, pub + 1, MG_COORD_LEN);
    y = mg_b64(NGX_DEVICE_AUTH_BASE64_URL, pub + 1 + MG_COORD_LEN,
               MG_COORD_LEN);
    dev_b64 = mg_b64(NGX_DEVICE_AUTH_BASE64_STD, der, der_len);

    /* the chip's other slots: keys without certificates */

    keys = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:[s, s]}]", "kid", "0",
                     "kty", "EC", "crv", "P-256", "x", x, "y", y, "x5c",
                     dev_b64, signer_b64);

    for (k = 1; k <= 4; k++) {
        id[0] = (char) ('0' + k);
        id[1] = '\0';
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s}",
                                              "kid", id, "kty", "EC", "crv",
                                              "P-256", "x", y, "y", x));
    }

    snprintf(time, sizeof(time), "2026-01-%02uT%02u:%02u:%02u.%03uZ",
             1 + i / 86400 % 28, i / 3600 % 24, i / 60 % 60, i % 60,
             i % 1000);

    org = json_pack("{s:s, s:s}", "organizationName",
                    "Microchip Technology Inc", "organizationalUnitName",
                    "Secure Products Group");

    payload = json_pack("{s:i, s:s, s:s, s:O, s:O, s:O, s:s, s:s, s:s, "
                        "s:{s:o}}", "version", 1, "model", "ATECC608A",
                        "partNumber", "ATECC608A-MAH4I", "manufacturer", org,
                        "provisioner", org, "distributor", org, "groupId",
                        "1", "provisioningTimestamp", time, "uniqueId", uid,
                        "publicKeySet", "keys", keys);

    json_decref(org);
    free(x);
    free(y);
    free(dev_b64);

    return payload;
}


static char *
mg_b64(int variant, const unsigned char *p, size_t len)
{
    char  *s;

    s = malloc(ngx_device_auth_base64_encoded_max(len) + 1);
    if (s == NULL) {
        abort();
    }

    (void) ngx_device_auth_base64_encode(variant, p, len, s);

    return s;
}


/* the first certificate, or the private key, of a PEM file */

static void *
mg_read_pem(const char *path, int key)
{
    FILE  *f;
    void  *p;

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return NULL;
    }

    p = key ? (void *) PEM_read_PrivateKey(f, NULL, NULL, NULL)
            : (void *) PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    return p;
}
