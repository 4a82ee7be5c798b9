
/*
 * A stateless ticket costs OpenSSL 3.0 an encoding of the session, a
 * decoding of that encoding ("a fresh copy") and an encoding of the copy,
 * which is then freed.  Decoding the copy decodes the device certificate
 * in it, and its key through the provider decoder: about 1.2 million
 * instructions, a tenth of a device's handshake, for a key nobody uses
 * (the copy is encoded again from the certificate's saved DER).
 *
 * OpenSSL decodes a certificate key with its built-in EC code instead when
 * an ENGINE is registered for EC keys.  This file registers one in the
 * ticket callback, right before the copy is made, and removes it as soon
 * as the copy is decoded: from the SSL_SESSION constructor that
 * d2i_SSL_SESSION() calls right after decoding.  An nginx worker is one
 * thread, so nothing else decodes a key in between (docs/threat-model.md
 * has the review).
 */


#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/objects.h>
#include <openssl/evp.h>
#include <openssl/err.h>

#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

#include "ngx_device_auth_ticket.h"


#ifndef OPENSSL_NO_ENGINE

static int ngx_device_auth_ticket_init(void);
static int ngx_device_auth_ticket_pkey_meths(ENGINE *e,
    EVP_PKEY_METHOD **pmeth, const int **nids, int nid);
static void ngx_device_auth_ticket_session_new(void *parent, void *ptr,
    CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);


static ENGINE         *ngx_device_auth_ticket_engine;
static int             ngx_device_auth_ticket_ready;   /* 1 ok, -1 failed */
static int             ngx_device_auth_ticket_index = -1;
static int             ngx_device_auth_ticket_is_open;
static unsigned long   ngx_device_auth_ticket_decoded;
static const int       ngx_device_auth_ticket_nids[] = { EVP_PKEY_EC };


int
ngx_device_auth_ticket_open(SSL *ssl)
{
    long                options;
    X509               *peer;
    SSL_SESSION        *sess;
    ASN1_OBJECT        *alg;
    const X509_PUBKEY  *spki;

    if (ngx_device_auth_ticket_is_open) {
        return 1;
    }

    sess = SSL_get0_session(ssl);
    peer = sess ? SSL_SESSION_get0_peer(sess) : NULL;

    if (peer == NULL) {
        return 0;
    }

    /* only what x509_pubkey_decode() will look the ENGINE up for */

    spki = X509_get_X509_PUBKEY(peer);

    if (spki == NULL
        || X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, spki) != 1
        || OBJ_obj2nid(alg) != EVP_PKEY_EC)
    {
        return 0;
    }

    /*
     * A TLS 1.3 ticket is stateful (no copy is decoded) with
     * SSL_OP_NO_TICKET or with early data under anti-replay: the
     * conditions of tls_construct_new_session_ticket()
     */

    options = SSL_get_options(ssl);

    if (SSL_version(ssl) == TLS1_3_VERSION
        && ((options & SSL_OP_NO_TICKET)
            || (SSL_get_max_early_data(ssl) > 0
                && !(options & SSL_OP_NO_ANTI_REPLAY))))
    {
        return 0;
    }

    if (ngx_device_auth_ticket_init() != 1) {
        return 0;
    }

    if (ENGINE_register_pkey_meths(ngx_device_auth_ticket_engine) != 1) {
        ERR_clear_error();
        return 0;
    }

    ngx_device_auth_ticket_is_open = 1;

    return 1;
}


int
ngx_device_auth_ticket_close(void)
{
    if (!ngx_device_auth_ticket_is_open) {
        return 0;
    }

    ngx_device_auth_ticket_is_open = 0;

    ENGINE_unregister_pkey_meths(ngx_device_auth_ticket_engine);

    return 1;
}


static int
ngx_device_auth_ticket_init(void)
{
    ENGINE  *e;

    if (ngx_device_auth_ticket_ready) {
        return ngx_device_auth_ticket_ready;
    }

    ngx_device_auth_ticket_ready = -1;

    /* every SSL_SESSION_new() calls it: the close right after the decode */

    ngx_device_auth_ticket_index = SSL_SESSION_get_ex_new_index(0, NULL,
                                       ngx_device_auth_ticket_session_new,
                                       NULL, NULL);

    if (ngx_device_auth_ticket_index < 0) {
        ERR_clear_error();
        return -1;
    }

    e = ENGINE_new();
    if (e == NULL) {
        ERR_clear_error();
        return -1;
    }

    if (ENGINE_set_id(e, "device_auth_ticket") != 1
        || ENGINE_set_name(e, "device_auth: built-in EC keys for a ticket's "
                           "session copy") != 1
        || ENGINE_set_pkey_meths(e, ngx_device_auth_ticket_pkey_meths) != 1)
    {
        ENGINE_free(e);
        ERR_clear_error();
        return -1;
    }

    /* kept for the life of the process, registered only while open */

    ngx_device_auth_ticket_engine = e;
    ngx_device_auth_ticket_ready = 1;

    return 1;
}


/*
 * Only x509_pubkey_decode() asks while it is registered, and it only asks
 * whether an ENGINE is there; were a key context made meanwhile, it would
 * get OpenSSL's own EC method, not anything of this module.
 */

static int
ngx_device_auth_ticket_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth,
    const int **nids, int nid)
{
    if (pmeth == NULL) {
        *nids = ngx_device_auth_ticket_nids;
        return 1;
    }

    if (nid == EVP_PKEY_EC) {
        *pmeth = (EVP_PKEY_METHOD *) EVP_PKEY_meth_find(EVP_PKEY_EC);
        return *pmeth != NULL;
    }

    *pmeth = NULL;

    return 0;
}


static void
ngx_device_auth_ticket_session_new(void *parent, void *ptr,
    CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    if (ngx_device_auth_ticket_close()) {
        ngx_device_auth_ticket_decoded++;
    }
}


/*
 * At a worker's exit, and when a configuration cycle ends: the callback
 * must not outlive the module's code (a single-process nginx unloads the
 * old module at a reload)
 */

void
ngx_device_auth_ticket_exit(void)
{
    (void) ngx_device_auth_ticket_close();

    if (ngx_device_auth_ticket_index >= 0) {
        (void) CRYPTO_free_ex_index(CRYPTO_EX_INDEX_SSL_SESSION,
                                    ngx_device_auth_ticket_index);
        ngx_device_auth_ticket_index = -1;
    }

    if (ngx_device_auth_ticket_engine) {
        ENGINE_free(ngx_device_auth_ticket_engine);
        ngx_device_auth_ticket_engine = NULL;
    }

    ngx_device_auth_ticket_ready = 0;
}


unsigned long
ngx_device_auth_ticket_copies(void)
{
    unsigned long  n;

    n = ngx_device_auth_ticket_decoded;
    ngx_device_auth_ticket_decoded = 0;

    return n;
}


#else /* OPENSSL_NO_ENGINE */


int
ngx_device_auth_ticket_open(SSL *ssl)
{
    return 0;
}


int
ngx_device_auth_ticket_close(void)
{
    return 0;
}


unsigned long
ngx_device_auth_ticket_copies(void)
{
    return 0;
}


void
ngx_device_auth_ticket_exit(void)
{
}


#endif
