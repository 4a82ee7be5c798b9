
/*
 * loadgen: the device fleet.
 *
 * N distinct ATECC608A-profile device certificates (EC P-256 keys,
 * ecdsa-with-SHA256, CN "sn0123" + 14 hex digits) issued by one signer,
 * generated from a DER template in which only the serial number, the CN,
 * the public key and the subject key identifier change, cached in one
 * binary file and parsed into OpenSSL objects lazily.
 */


#ifndef _LG_FLEET_H_INCLUDED_
#define _LG_FLEET_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>


#define LG_SERIAL_LEN      18       /* hex digits after "sn" */
#define LG_PRIV_LEN        32
#define LG_PUB_LEN         65       /* uncompressed P-256 point */

#define LG_ROLE_NORMAL     0
#define LG_ROLE_REVOKED    1
#define LG_ROLE_CLONE      2
#define LG_ROLE_N          3


typedef struct {
    uint32_t         off;           /* record: DER, private, public key */
    uint16_t         der_len;
    uint8_t          role;          /* LG_ROLE_* */
    uint32_t         uses;          /* times picked, rotates clone sources */
    X509            *x509;          /* parsed lazily */
    EVP_PKEY        *pkey;
    SSL_SESSION     *session;       /* resume mode: the last session */
} lg_device_t;


typedef struct {
    uint32_t         n;
    char             tag[7];        /* 6 hex digits common to all serials */
    unsigned char   *data;          /* all records */
    size_t           data_len;
    lg_device_t     *dev;
    STACK_OF(X509)  *chain;         /* sent after the device certificate */
    int              keep_parsed;   /* keep X509/EVP_PKEY after first use */
} lg_fleet_t;


int lg_fleet_open(lg_fleet_t *fl, const char *signer_cert,
    const char *signer_key, uint32_t n, const char *cache_dir, int send_chain,
    int verbose);
void lg_fleet_free(lg_fleet_t *fl);

void lg_fleet_serial(lg_fleet_t *fl, uint32_t i, char *buf);
int lg_fleet_assign_roles(lg_fleet_t *fl, double revoked, double clones);
int lg_fleet_write_serials(lg_fleet_t *fl, const char *path, int role);
int lg_fleet_export_pem(lg_fleet_t *fl, const char *dir, uint32_t count);

int lg_fleet_use(lg_fleet_t *fl, uint32_t i, SSL *ssl);

/* lg_fleet_gen.c: fills fl->tag, fl->data, fl->data_len */
int lg_fleet_generate(lg_fleet_t *fl, X509 *signer, EVP_PKEY *skey,
    const unsigned char *fp, int verbose);


#endif /* _LG_FLEET_H_INCLUDED_ */
