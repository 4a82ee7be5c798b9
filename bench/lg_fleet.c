
/*
 * loadgen: the device fleet: cache file, lazy parsing, roles, exports.
 *
 * Cache file (host byte order, it is a local cache):
 *   lg_fleet_hdr_t, then n records: u16 DER length, DER, 32-byte private
 *   scalar (big endian), 65-byte public point.
 */


#define _GNU_SOURCE
/* EC_KEY: see lg_fleet_parse() */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "lg_fleet.h"


#define LG_FLEET_MAGIC      "LGFLEET1"


typedef struct {
    char             magic[8];
    uint32_t         n;
    char             tag[8];
    unsigned char    signer_fp[32];
    uint64_t         data_len;
} lg_fleet_hdr_t;


static int lg_fleet_load(lg_fleet_t *fl, const char *path,
    const unsigned char *fp);
static int lg_fleet_save(lg_fleet_t *fl, const char *path,
    const unsigned char *fp);
static int lg_fleet_index(lg_fleet_t *fl);
static EVP_PKEY *lg_fleet_pkey(const unsigned char *priv,
    const unsigned char *pub);
static int lg_fleet_parse(lg_fleet_t *fl, lg_device_t *dev, X509 **px,
    EVP_PKEY **ppk);
static int lg_mkdirs(const char *dir);


int
lg_fleet_open(lg_fleet_t *fl, const char *signer_cert,
    const char *signer_key, uint32_t n, const char *cache_dir, int send_chain,
    int verbose)
{
    int             rc;
    char            path[4096];
    FILE           *f;
    X509           *signer;
    EVP_PKEY       *skey;
    unsigned int    fplen;
    unsigned char   fp[32];

    memset(fl, 0, sizeof(lg_fleet_t));
    fl->n = n;

    signer = NULL;
    skey = NULL;
    rc = -1;

    f = fopen(signer_cert, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot open \"%s\": %s\n", signer_cert,
                strerror(errno));
        return -1;
    }
    signer = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    f = fopen(signer_key, "r");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot open \"%s\": %s\n", signer_key,
                strerror(errno));
        goto done;
    }
    skey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (signer == NULL || skey == NULL) {
        fprintf(stderr, "loadgen: no PEM %s in \"%s\"\n",
                signer ? "private key" : "certificate",
                signer ? signer_key : signer_cert);
        goto done;
    }

    if (EVP_PKEY_get_base_id(skey) != EVP_PKEY_EC) {
        fprintf(stderr, "loadgen: the signer key must be an EC key "
                "(devices are signed with ecdsa-with-SHA256)\n");
        goto done;
    }

    if (!X509_check_private_key(signer, skey)) {
        fprintf(stderr, "loadgen: \"%s\" is not the key of \"%s\"\n",
                signer_key, signer_cert);
        goto done;
    }

    if (!X509_digest(signer, EVP_sha256(), fp, &fplen)) {
        goto done;
    }

    if (cache_dir != NULL) {
        snprintf(path, sizeof(path),
                 "%s/fleet-%02x%02x%02x%02x%02x%02x%02x%02x-%u.bin",
                 cache_dir, fp[0], fp[1], fp[2], fp[3], fp[4], fp[5], fp[6],
                 fp[7], n);

        if (lg_fleet_load(fl, path, fp) == 0) {
            if (verbose) {
                fprintf(stderr, "loadgen: fleet of %u devices from %s\n",
                        n, path);
            }
            rc = 0;
            goto done;
        }
    }

    if (lg_fleet_generate(fl, signer, skey, fp, verbose) != 0
        || lg_fleet_index(fl) != 0)
    {
        goto done;
    }

    if (cache_dir != NULL) {
        if (lg_mkdirs(cache_dir) != 0 || lg_fleet_save(fl, path, fp) != 0) {
            fprintf(stderr, "loadgen: warning: fleet not cached in %s\n",
                    path);
        }
    }

    rc = 0;

done:

    if (rc != 0) {
        ERR_print_errors_fp(stderr);
        X509_free(signer);

    } else if (send_chain) {
        fl->chain = sk_X509_new_null();
        if (fl->chain == NULL || !sk_X509_push(fl->chain, signer)) {
            X509_free(signer);
            rc = -1;
        }

    } else {
        X509_free(signer);
    }

    EVP_PKEY_free(skey);

    return rc;
}


void
lg_fleet_free(lg_fleet_t *fl)
{
    uint32_t  i;

    if (fl->dev != NULL) {
        for (i = 0; i < fl->n; i++) {
            X509_free(fl->dev[i].x509);
            EVP_PKEY_free(fl->dev[i].pkey);
            SSL_SESSION_free(fl->dev[i].session);
        }
    }

    sk_X509_pop_free(fl->chain, X509_free);
    free(fl->dev);
    free(fl->data);
    memset(fl, 0, sizeof(lg_fleet_t));
}


void
lg_fleet_serial(lg_fleet_t *fl, uint32_t i, char *buf)
{
    snprintf(buf, LG_SERIAL_LEN + 1, "0123%s%08X", fl->tag, i);
}


static int
lg_fleet_index(lg_fleet_t *fl)
{
    size_t    pos;
    uint32_t  i, len;

    fl->dev = calloc(fl->n, sizeof(lg_device_t));
    if (fl->dev == NULL) {
        return -1;
    }

    pos = 0;

    for (i = 0; i < fl->n; i++) {
        if (pos + 2 > fl->data_len) {
            return -1;
        }

        len = fl->data[pos] | (fl->data[pos + 1] << 8);

        if (len == 0 || pos + 2 + len + LG_PRIV_LEN + LG_PUB_LEN
                        > fl->data_len)
        {
            return -1;
        }

        fl->dev[i].off = (uint32_t) pos;
        fl->dev[i].der_len = (uint16_t) len;
        pos += 2 + len + LG_PRIV_LEN + LG_PUB_LEN;
    }

    return pos == fl->data_len ? 0 : -1;
}


static int
lg_fleet_load(lg_fleet_t *fl, const char *path, const unsigned char *fp)
{
    int              fd;
    ssize_t          nr;
    size_t           got;
    lg_fleet_hdr_t   hdr;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    if (read(fd, &hdr, sizeof(hdr)) != (ssize_t) sizeof(hdr)
        || memcmp(hdr.magic, LG_FLEET_MAGIC, 8) != 0
        || hdr.n != fl->n
        || memcmp(hdr.signer_fp, fp, 32) != 0
        || hdr.data_len > (uint64_t) fl->n * 4096)
    {
        close(fd);
        return -1;
    }

    fl->data = malloc(hdr.data_len);
    if (fl->data == NULL) {
        close(fd);
        return -1;
    }

    for (got = 0; got < hdr.data_len; got += nr) {
        nr = read(fd, fl->data + got, hdr.data_len - got);
        if (nr <= 0) {
            break;
        }
    }

    close(fd);

    fl->data_len = got;
    memcpy(fl->tag, hdr.tag, 6);
    fl->tag[6] = '\0';

    if (got != hdr.data_len || lg_fleet_index(fl) != 0) {
        fprintf(stderr, "loadgen: ignoring corrupt fleet cache %s\n", path);
        free(fl->data);
        free(fl->dev);
        fl->data = NULL;
        fl->dev = NULL;
        return -1;
    }

    return 0;
}


static int
lg_fleet_save(lg_fleet_t *fl, const char *path, const unsigned char *fp)
{
    int              ok;
    char             tmp[4200];
    FILE            *f;
    lg_fleet_hdr_t   hdr;

    memset(&hdr, 0, sizeof(hdr));
    memcpy(hdr.magic, LG_FLEET_MAGIC, 8);
    hdr.n = fl->n;
    memcpy(hdr.tag, fl->tag, 6);
    memcpy(hdr.signer_fp, fp, 32);
    hdr.data_len = fl->data_len;

    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) getpid());

    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }

    ok = fwrite(&hdr, sizeof(hdr), 1, f) == 1
         && fwrite(fl->data, 1, fl->data_len, f) == fl->data_len;

    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }

    return 0;
}


/*
 * Parsing without OpenSSL 3.0's slow paths.
 *
 * d2i_X509() in OpenSSL 3.0 decodes the public key with the provider
 * decoder framework, which builds a decoder chain on every call: about
 * 190 us per certificate, more than the client's share of a handshake.
 * Here the certificate is parsed in a library context that has only the
 * "null" provider (no decoders: the key is left undecoded, ~20 us), and
 * the public key is then set from a legacy EC_KEY built from the stored
 * point, whose encoder is the fast built-in one.  The DER re-encoded for
 * the handshake is byte for byte the one that was signed (checked once per
 * run).  The same legacy key is the private key of the connection.
 */

static EVP_PKEY *
lg_fleet_pkey(const unsigned char *priv, const unsigned char *pub)
{
    EC_KEY           *ek;
    BIGNUM           *d;
    EVP_PKEY         *pk;
    static EC_GROUP  *group;

    if (group == NULL) {
        group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        if (group == NULL) {
            return NULL;
        }
    }

    pk = NULL;
    ek = EC_KEY_new();
    d = BN_bin2bn(priv, LG_PRIV_LEN, NULL);

    if (ek == NULL || d == NULL
        || !EC_KEY_set_group(ek, group)
        || !EC_KEY_oct2key(ek, pub, LG_PUB_LEN, NULL)
        || !EC_KEY_set_private_key(ek, d)
        || (pk = EVP_PKEY_new()) == NULL
        || !EVP_PKEY_assign_EC_KEY(pk, ek))
    {
        EVP_PKEY_free(pk);
        EC_KEY_free(ek);
        BN_clear_free(d);
        return NULL;
    }

    BN_clear_free(d);

    return pk;
}


static int
lg_fleet_parse(lg_fleet_t *fl, lg_device_t *dev, X509 **px, EVP_PKEY **ppk)
{
    X509                 *x;
    EVP_PKEY             *pk;
    unsigned char        *der;
    const unsigned char  *p;
    static int            checked;
    static OSSL_LIB_CTX  *nodec;

    if (nodec == NULL) {
        nodec = OSSL_LIB_CTX_new();
        if (nodec == NULL || OSSL_PROVIDER_load(nodec, "null") == NULL) {
            return -1;
        }
    }

    p = fl->data + dev->off + 2;
    x = (X509 *) ASN1_item_d2i_ex(NULL, &p, dev->der_len,
                                  ASN1_ITEM_rptr(X509), nodec, NULL);
    pk = lg_fleet_pkey(p, p + LG_PRIV_LEN);

    if (x == NULL || pk == NULL || !X509_set_pubkey(x, pk)) {
        X509_free(x);
        EVP_PKEY_free(pk);
        return -1;
    }

    if (!checked) {
        der = NULL;
        if (i2d_X509(x, &der) != dev->der_len
            || memcmp(der, fl->data + dev->off + 2, dev->der_len) != 0)
        {
            fprintf(stderr, "loadgen: re-encoded certificate differs\n");
            OPENSSL_free(der);
            X509_free(x);
            EVP_PKEY_free(pk);
            return -1;
        }
        OPENSSL_free(der);
        checked = 1;
    }

    *px = x;
    *ppk = pk;

    return 0;
}


int
lg_fleet_use(lg_fleet_t *fl, uint32_t i, SSL *ssl)
{
    int            ok;
    X509          *x;
    EVP_PKEY      *pk;
    lg_device_t   *dev;

    dev = &fl->dev[i];
    x = dev->x509;
    pk = dev->pkey;

    if (x == NULL) {
        if (lg_fleet_parse(fl, dev, &x, &pk) != 0) {
            return -1;
        }

        if (fl->keep_parsed) {
            dev->x509 = x;
            dev->pkey = pk;
        }
    }

    ok = SSL_use_cert_and_key(ssl, x, pk, fl->chain, 1) == 1;

    if (dev->x509 == NULL) {
        /* the SSL object holds its own references */
        X509_free(x);
        EVP_PKEY_free(pk);
    }

    return ok ? 0 : -1;
}


int
lg_fleet_assign_roles(lg_fleet_t *fl, double revoked, double clones)
{
    double    acc_r, acc_c, fc;
    uint32_t  i;

    if (revoked < 0 || clones < 0 || revoked + clones > 1) {
        fprintf(stderr, "loadgen: bad revoked/clone fractions\n");
        return -1;
    }

    /* spread evenly: every 1/f-th device, clones among the others */
    fc = revoked < 1 ? clones / (1 - revoked) : 0;
    acc_r = 0.5;
    acc_c = 0.5;

    for (i = 0; i < fl->n; i++) {
        acc_r += revoked;
        if (acc_r >= 1) {
            acc_r -= 1;
            fl->dev[i].role = LG_ROLE_REVOKED;
            continue;
        }

        acc_c += fc;
        if (acc_c >= 1) {
            acc_c -= 1;
            fl->dev[i].role = LG_ROLE_CLONE;
            continue;
        }

        fl->dev[i].role = LG_ROLE_NORMAL;
    }

    return 0;
}


int
lg_fleet_write_serials(lg_fleet_t *fl, const char *path, int role)
{
    char      serial[LG_SERIAL_LEN + 1];
    FILE     *f;
    uint32_t  i;

    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "loadgen: cannot write \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }

    for (i = 0; i < fl->n; i++) {
        if (role < 0 || fl->dev[i].role == role) {
            lg_fleet_serial(fl, i, serial);
            fprintf(f, "%s\n", serial);
        }
    }

    if (fclose(f) != 0) {
        fprintf(stderr, "loadgen: cannot write \"%s\"\n", path);
        return -1;
    }

    return 0;
}


int
lg_fleet_export_pem(lg_fleet_t *fl, const char *dir, uint32_t count)
{
    int                   ok;
    char                  serial[LG_SERIAL_LEN + 1], path[4200];
    FILE                 *f, *idx;
    X509                 *x;
    EVP_PKEY             *pk;
    uint32_t              i;
    lg_device_t          *dev;
    static const char    *roles[] = { "normal", "revoked", "clone" };

    if (lg_mkdirs(dir) != 0) {
        fprintf(stderr, "loadgen: cannot create \"%s\": %s\n", dir,
                strerror(errno));
        return -1;
    }

    snprintf(path, sizeof(path), "%s/index.tsv", dir);
    idx = fopen(path, "w");
    if (idx == NULL) {
        fprintf(stderr, "loadgen: cannot write \"%s\"\n", path);
        return -1;
    }

    if (count == 0 || count > fl->n) {
        count = fl->n;
    }

    ok = 1;

    for (i = 0; ok && i < count; i++) {
        dev = &fl->dev[i];
        lg_fleet_serial(fl, i, serial);

        x = NULL;
        pk = NULL;
        ok = lg_fleet_parse(fl, dev, &x, &pk) == 0;

        snprintf(path, sizeof(path), "%s/%s.crt", dir, serial);
        f = ok ? fopen(path, "w") : NULL;
        ok = f != NULL && PEM_write_X509(f, x);
        if (f != NULL && fclose(f) != 0) {
            ok = 0;
        }

        snprintf(path, sizeof(path), "%s/%s.key", dir, serial);
        f = ok ? fopen(path, "w") : NULL;
        ok = f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL,
                                               NULL);
        if (f != NULL && fclose(f) != 0) {
            ok = 0;
        }

        X509_free(x);
        EVP_PKEY_free(pk);

        fprintf(idx, "%u\t%s\t%s\n", i, serial, roles[dev->role]);
    }

    if (fclose(idx) != 0 || !ok) {
        fprintf(stderr, "loadgen: export to \"%s\" failed\n", dir);
        return -1;
    }

    return 0;
}


static int
lg_mkdirs(const char *dir)
{
    char   buf[4096], *p;

    if (strlen(dir) >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    strcpy(buf, dir);

    for (p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }

    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return -1;
    }

    return 0;
}

