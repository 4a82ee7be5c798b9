
/*
 * TLS side of device_auth.
 *
 * In every server where device_auth is on, the module asks for the client
 * certificate itself (SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT) and
 * replaces OpenSSL's chain verification with its own, against the pinned
 * certificates only.  The handshake always completes: a missing or bad
 * certificate is answered at the HTTP level with 496 or 495, as nginx does
 * for ssl_verify_client, so that error_page and the logs work as usual.
 *
 * The identity is computed once, in the handshake, and kept with the
 * connection; the session carries a compact verdict (ticket appdata, which
 * OpenSSL stores in session tickets and in serialized sessions alike) so
 * that a resumed session, which brings only the device certificate, gets
 * its identity back without the chain.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_metrics.h"
#include "ngx_device_auth_ticket.h"


/* what the module keeps with the SSL_CTX of every server of http{} */

typedef struct {
    ngx_http_device_auth_srv_conf_t   *dscf;     /* NULL: device_auth off */
    ngx_http_device_auth_main_conf_t  *dmcf;

    /* its session ID context: the id of the context a session was made in */
    u_char                             context[NGX_DEVICE_AUTH_ID_LEN];

    /* nginx's session cache lookup, which the module's wraps */
    SSL_SESSION                     *(*get_session)(SSL *ssl_conn,
                                          const unsigned char *id, int len,
                                          int *copy);
} ngx_http_device_auth_ssl_ctx_t;


static int ngx_http_device_auth_verify_cert(X509_STORE_CTX *x509_store,
    void *arg);
static ngx_http_device_auth_conn_t *ngx_http_device_auth_conn_create(
    ngx_pool_t *pool, ngx_device_auth_policy_t *policy,
    ngx_device_auth_identity_t *id);
static ngx_int_t ngx_http_device_auth_hook(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_http_device_auth_srv_conf_t *dscf);
static ngx_int_t ngx_http_device_auth_session_contexts(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_http_ssl_srv_conf_t *sscf,
    ngx_device_auth_policy_t *policy, u_char *context);
static ngx_http_device_auth_ssl_ctx_t *ngx_http_device_auth_guard_sessions(
    ngx_conf_t *cf, ngx_http_ssl_srv_conf_t *sscf,
    ngx_http_device_auth_srv_conf_t *dscf);
static int ngx_http_device_auth_ticket_make(SSL *ssl_conn, void *arg);
static void ngx_http_device_auth_ticket_cleanup(void *data);
static void ngx_http_device_auth_ticket_exit(void *data);
static void ngx_http_device_auth_ticket_check(ngx_log_t *log,
    const char *where);
static SSL_TICKET_RETURN ngx_http_device_auth_ticket(SSL *ssl_conn,
    SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
    SSL_TICKET_STATUS status, void *arg);
static SSL_SESSION *ngx_http_device_auth_get_session(SSL *ssl_conn,
    const unsigned char *id, int len, int *copy);
static ngx_uint_t ngx_http_device_auth_session_fits(SSL *ssl_conn,
    SSL_SESSION *sess, ngx_http_device_auth_main_conf_t *dmcf);




static int  ngx_http_device_auth_ssl_index = -1;
static int  ngx_http_device_auth_ctx_index = -1;


ngx_int_t
ngx_http_device_auth_ssl_init(ngx_conf_t *cf)
{
    ngx_uint_t                         s, p, a, i, ssl, needed;
    ngx_pool_cleanup_t                *cln;
    ngx_http_conf_addr_t              *addr;
    ngx_http_conf_port_t              *port;
    ngx_http_ssl_srv_conf_t           *sscf;
    ngx_http_core_srv_conf_t         **cscfp, **servers;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_device_auth_srv_conf_t   *dscf;

    if (ngx_http_device_auth_ssl_index == -1) {
        ngx_http_device_auth_ssl_index = SSL_get_ex_new_index(0, NULL, NULL,
                                                              NULL, NULL);
        if (ngx_http_device_auth_ssl_index == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    if (ngx_http_device_auth_ctx_index == -1) {
        ngx_http_device_auth_ctx_index = SSL_CTX_get_ex_new_index(0, NULL,
                                                                  NULL, NULL,
                                                                  NULL);
        if (ngx_http_device_auth_ctx_index == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "SSL_CTX_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    /* the ticket decoding's OpenSSL callback ends with the cycle */

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_device_auth_ticket_exit;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    needed = 0;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        dscf = cscfp[s]->ctx->srv_conf[ngx_http_device_auth_module.ctx_index];
        needed |= dscf->needed;
    }

    for (s = 0; s < cmcf->servers.nelts; s++) {

        dscf = cscfp[s]->ctx->srv_conf[ngx_http_device_auth_module.ctx_index];
        sscf = cscfp[s]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        /*
         * Any server of a listener may be the one whose SSL_CTX looks up a
         * session for a device_auth server (OpenSSL resumes before the
         * server name switches the context): all of them check sessions.
         */

        if (needed && sscf->ssl.ctx
            && ngx_http_device_auth_guard_sessions(cf, sscf,
                                                   dscf->needed ? dscf : NULL)
               == NULL)
        {
            return NGX_ERROR;
        }

        if (!dscf->needed) {
            continue;
        }

        /*
         * is the server reachable on a "listen ... ssl" address, or a
         * "listen ... quic" one (same SSL context, TLS inside QUIC)?
         */

        ssl = 0;
        port = cmcf->ports ? cmcf->ports->elts : NULL;

        for (p = 0; port && p < cmcf->ports->nelts && !ssl; p++) {
            addr = port[p].addrs.elts;

            for (a = 0; a < port[p].addrs.nelts && !ssl; a++) {
#if (NGX_HTTP_V3)
                if (!addr[a].opt.ssl && !addr[a].opt.quic) {
                    continue;
                }
#else
                if (!addr[a].opt.ssl) {
                    continue;
                }
#endif

                servers = addr[a].servers.elts;

                for (i = 0; i < addr[a].servers.nelts; i++) {
                    if (servers[i] == cscfp[s]) {
                        ssl = 1;
                        break;
                    }
                }
            }
        }

        if (!ssl) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth\" in %s:%ui needs a server that "
                          "listens with \"ssl\""
#if (NGX_HTTP_V3)
                          " or \"quic\""
#endif
                          , dscf->on_file, dscf->on_line);
            return NGX_ERROR;
        }

        if (dscf->policy == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth\" in %s:%ui needs "
                          "\"device_auth_certificate\" in its server or "
                          "at http level", dscf->on_file, dscf->on_line);
            return NGX_ERROR;
        }

        if (ngx_http_device_auth_hook(cf, cscfp[s], dscf) != NGX_OK) {

            /* whatever failed: nginx -t names the directive */

            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"device_auth\" in %s:%ui: cannot set up the "
                          "verification of client certificates",
                          dscf->on_file, dscf->on_line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_device_auth_hook(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf,
    ngx_http_device_auth_srv_conf_t *dscf)
{
    int                              i, mode;
    X509_NAME                       *name;
    STACK_OF(X509_NAME)             *names;
    ngx_http_ssl_srv_conf_t         *sscf;
    ngx_http_device_auth_ssl_ctx_t  *sc, **psc;

    sscf = cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

    if (sscf->verify) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"ssl_verify_client\" is also on in the server of "
                      "\"device_auth\" in %s:%ui: nginx answers 495 and 496 "
                      "itself, before device_auth, in every location of "
                      "that server", dscf->on_file, dscf->on_line);
    }

    if (sscf->ssl.ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"device_auth\" in %s:%ui needs an SSL context: no "
                      "\"ssl_certificate\" in its server", dscf->on_file,
                      dscf->on_line);
        return NGX_ERROR;
    }

    /*
     * Ask for a client certificate whatever ssl_verify_client says; the
     * HTTP phase decides what a missing one means in each location.
     */

    mode = SSL_CTX_get_verify_mode(sscf->ssl.ctx);
    SSL_CTX_set_verify(sscf->ssl.ctx, mode | SSL_VERIFY_PEER,
                       SSL_CTX_get_verify_callback(sscf->ssl.ctx));

    sc = SSL_CTX_get_ex_data(sscf->ssl.ctx, ngx_http_device_auth_ctx_index);

    SSL_CTX_set_cert_verify_callback(sscf->ssl.ctx,
                                     ngx_http_device_auth_verify_cert, sc);

    /* the CA names in the CertificateRequest: the pins, unless configured */

    names = SSL_CTX_get_client_CA_list(sscf->ssl.ctx);

    if (names == NULL || sk_X509_NAME_num(names) == 0) {
        names = ngx_http_device_auth_fault("ca_names") ? NULL
                : sk_X509_NAME_new_null();
        if (names == NULL) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "sk_X509_NAME_new_null() failed");
            return NGX_ERROR;
        }

        for (i = 0; i < dscf->roots->n; i++) {
            name = X509_NAME_dup(X509_get_subject_name(
                                     sk_X509_value(dscf->roots->certs, i)));
            if (name == NULL || sk_X509_NAME_push(names, name) == 0) {
                ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                              "X509_NAME_dup() failed");
                X509_NAME_free(name);
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                return NGX_ERROR;
            }
        }

        SSL_CTX_set_client_CA_list(sscf->ssl.ctx, names);
    }

    if (ngx_http_device_auth_session_contexts(cf, cscf, sscf, dscf->policy,
                                              sc->context)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    psc = ngx_array_push(&sc->dmcf->contexts);
    if (psc == NULL) {
        return NGX_ERROR;
    }

    *psc = sc;

    return NGX_OK;
}


/*
 * Sessions are bound to the policy.  nginx made the session ID context
 * from the server certificates and the client CA list before the pins were
 * known; it is made again here with the id of the whole certificate policy
 * (pins, depth, profile).  OpenSSL checks it against the context of the
 * server that looks the session up, which is the listener's default server
 * (the server name switches contexts later): the module's own session
 * checks below cover the others, with the context a device is verified in,
 * made here too: the session ID context, the server's names and its
 * listening addresses, the same over reloads that change none of them,
 * and different between servers.
 */

static ngx_int_t
ngx_http_device_auth_session_contexts(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_http_ssl_srv_conf_t *sscf,
    ngx_device_auth_policy_t *policy, u_char *context)
{
    int                          i, n;
    X509                        *cert;
    u_char                       buf[EVP_MAX_MD_SIZE];
    ngx_str_t                   *certs;
    ngx_uint_t                   k, p, a;
    EVP_MD_CTX                  *md;
    X509_NAME                   *name;
    unsigned int                 len;
    STACK_OF(X509_NAME)         *list;
    ngx_http_conf_addr_t        *addr;
    ngx_http_conf_port_t        *port;
    ngx_http_server_name_t      *sn;
    ngx_http_core_srv_conf_t   **servers;
    ngx_http_core_main_conf_t   *cmcf;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 0
        || EVP_DigestUpdate(md, "HTTP device_auth", 16) == 0)
    {
        goto failed;
    }

#if (nginx_version >= 1027002)

    /* nginx 1.27.2 keeps the server certificates in ngx_ssl_t.certs */

    for (k = 0; k < sscf->ssl.certs.nelts; k++) {
        cert = ((X509 **) sscf->ssl.certs.elts)[k];

        if (X509_digest(cert, EVP_sha256(), buf, &len) == 0
            || EVP_DigestUpdate(md, buf, len) == 0)
        {
            goto failed;
        }
    }

    if (sscf->ssl.certs.nelts == 0 && sscf->certificates != NULL) {

#else

    for (cert = SSL_CTX_get_ex_data(sscf->ssl.ctx, ngx_ssl_certificate_index);
         cert;
         cert = X509_get_ex_data(cert, ngx_ssl_next_certificate_index))
    {
        if (X509_digest(cert, EVP_sha256(), buf, &len) == 0
            || EVP_DigestUpdate(md, buf, len) == 0)
        {
            goto failed;
        }
    }

    if (SSL_CTX_get_ex_data(sscf->ssl.ctx, ngx_ssl_certificate_index) == NULL
        && sscf->certificates != NULL)
    {

#endif

        /* certificates with variables: their names, as nginx does */

        certs = sscf->certificates->elts;

        for (k = 0; k < sscf->certificates->nelts; k++) {
            if (EVP_DigestUpdate(md, certs[k].data, certs[k].len) == 0) {
                goto failed;
            }
        }
    }

    list = SSL_CTX_get_client_CA_list(sscf->ssl.ctx);
    n = list ? sk_X509_NAME_num(list) : 0;

    for (i = 0; i < n; i++) {
        name = sk_X509_NAME_value(list, i);

        if (X509_NAME_digest(name, EVP_sha256(), buf, &len) == 0
            || EVP_DigestUpdate(md, buf, len) == 0)
        {
            goto failed;
        }
    }

    /* the whole certificate policy: pins, depth, profile */

    if (EVP_DigestUpdate(md, policy->id, NGX_DEVICE_AUTH_ID_LEN) == 0
        || EVP_DigestFinal_ex(md, buf, &len) == 0)
    {
        goto failed;
    }

    if (len > SSL_MAX_SID_CTX_LENGTH) {
        len = SSL_MAX_SID_CTX_LENGTH;
    }

    if (SSL_CTX_set_session_id_context(sscf->ssl.ctx, buf, len) == 0) {
        EVP_MD_CTX_free(md);
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_session_id_context() failed");
        return NGX_ERROR;
    }

    /* the server's context: that, its names, its addresses */

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 0
        || EVP_DigestUpdate(md, "device_auth server", 18) == 0
        || EVP_DigestUpdate(md, buf, len) == 0)
    {
        goto failed;
    }

    sn = cscf->server_names.elts;

    for (k = 0; k < cscf->server_names.nelts; k++) {
        if (EVP_DigestUpdate(md, sn[k].name.data, sn[k].name.len) == 0
            || EVP_DigestUpdate(md, "", 1) == 0)
        {
            goto failed;
        }
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    port = cmcf->ports ? cmcf->ports->elts : NULL;

    for (p = 0; port && p < cmcf->ports->nelts; p++) {
        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {
            servers = addr[a].servers.elts;

            for (k = 0; k < addr[a].servers.nelts; k++) {
                if (servers[k] == cscf
                    && (EVP_DigestUpdate(md, addr[a].opt.addr_text.data,
                                         addr[a].opt.addr_text.len) == 0
                        || EVP_DigestUpdate(md, "", 1) == 0))
                {
                    goto failed;
                }
            }
        }
    }

    if (EVP_DigestFinal_ex(md, context, &len) == 0) {
        goto failed;
    }

    EVP_MD_CTX_free(md);

    return NGX_OK;

failed:

    EVP_MD_CTX_free(md);
    ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                  "device_auth: session context digest failed");

    return NGX_ERROR;
}


/*
 * OpenSSL looks a session up (ticket or cache) before the server name
 * callback switches to the SSL_CTX of the server that SNI selects, and it
 * checks the session ID context of the listener's default server: a session
 * verified by the pins of one server would resume on another server of the
 * same listener, whose policy may refuse the device.  So every SSL_CTX of
 * http{} checks the sessions it is offered: one made under a policy that no
 * longer exists, or for another server name than the ClientHello asks for,
 * is not resumed (a full handshake verifies the device against the pins of
 * the server it asks for).  A resumption that still reaches a server whose
 * policy differs is refused with 495 (ngx_device_auth_resume()).
 */

static ngx_http_device_auth_ssl_ctx_t *
ngx_http_device_auth_guard_sessions(ngx_conf_t *cf,
    ngx_http_ssl_srv_conf_t *sscf, ngx_http_device_auth_srv_conf_t *dscf)
{
    ngx_http_device_auth_ssl_ctx_t  *sc;

    sc = SSL_CTX_get_ex_data(sscf->ssl.ctx, ngx_http_device_auth_ctx_index);

    if (sc) {
        /* a context shared by servers (inherited from http{}): once */

        if (sc->dscf == NULL) {
            sc->dscf = dscf;
        }

        return sc;
    }

    sc = ngx_pcalloc(cf->pool, sizeof(ngx_http_device_auth_ssl_ctx_t));
    if (sc == NULL) {
        return NULL;
    }

    sc->dscf = dscf;
    sc->dmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_device_auth_module);
    sc->get_session = SSL_CTX_sess_get_get_cb(sscf->ssl.ctx);

    if (SSL_CTX_set_ex_data(sscf->ssl.ctx, ngx_http_device_auth_ctx_index, sc)
        == 0)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_ex_data() failed");
        return NULL;
    }

    if (SSL_CTX_set_session_ticket_cb(sscf->ssl.ctx,
                                      ngx_http_device_auth_ticket_make,
                                      ngx_http_device_auth_ticket, sc->dmcf)
        == 0)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_session_ticket_cb() failed");
        return NULL;
    }

    if (sc->get_session) {
        SSL_CTX_sess_set_get_cb(sscf->ssl.ctx,
                                ngx_http_device_auth_get_session);
    }

    return sc;
}


/*
 * Right before OpenSSL makes a ticket: its copy of the session, decoded
 * and thrown away, takes OpenSSL's built-in EC code for the device key
 * (ngx_device_auth_ticket.c), on the servers of device_auth.  The copy's
 * decoding closes it; the connection's cleanup closes it otherwise.
 */

static int
ngx_http_device_auth_ticket_make(SSL *ssl_conn, void *arg)
{
    ngx_connection_t                *c;
    ngx_pool_cleanup_t              *cln;
    ngx_http_device_auth_ssl_ctx_t  *sc;

    c = ngx_ssl_get_connection(ssl_conn);

    ngx_http_device_auth_ticket_check(c->log, "ticket");

    sc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl_conn),
                             ngx_http_device_auth_ctx_index);

    if (sc == NULL || sc->dscf == NULL || !sc->dscf->fast_tickets) {
        return 1;
    }

    if (ngx_device_auth_ticket_open(ssl_conn) == 0) {
        return 1;
    }

    if (ngx_http_device_auth_fault("ticket_stateful")) {
        /* as if OpenSSL made no copy: a stateful ticket */
        SSL_set_options(ssl_conn, SSL_OP_NO_TICKET);
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        (void) ngx_device_auth_ticket_close();
        return 1;
    }

    cln->handler = ngx_http_device_auth_ticket_cleanup;
    cln->data = c->log;

    return 1;
}


static void
ngx_http_device_auth_ticket_cleanup(void *data)
{
    ngx_log_t *log = data;

    ngx_http_device_auth_main_conf_t  *dmcf;

    ngx_http_device_auth_ticket_check(log, "connection close");

    dmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_device_auth_module);

    if (dmcf) {
        ngx_http_device_auth_metrics_tickets(dmcf,
                                             ngx_device_auth_ticket_copies());
    }
}


static void
ngx_http_device_auth_ticket_exit(void *data)
{
    ngx_device_auth_ticket_exit();
}


static void
ngx_http_device_auth_ticket_check(ngx_log_t *log, const char *where)
{
    if (ngx_device_auth_ticket_close()) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "device_auth: the built-in EC decoding of a ticket's "
                      "session copy was still on at the %s, and is now off",
                      where);
    }
}


static SSL_TICKET_RETURN
ngx_http_device_auth_ticket(SSL *ssl_conn, SSL_SESSION *sess,
    const unsigned char *keyname, size_t keyname_len,
    SSL_TICKET_STATUS status, void *arg)
{
    ngx_http_device_auth_main_conf_t *dmcf = arg;

    switch (status) {

    case SSL_TICKET_SUCCESS:
        return ngx_http_device_auth_session_fits(ssl_conn, sess, dmcf)
               ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_IGNORE_RENEW;

    case SSL_TICKET_SUCCESS_RENEW:
        return ngx_http_device_auth_session_fits(ssl_conn, sess, dmcf)
               ? SSL_TICKET_RETURN_USE_RENEW
               : SSL_TICKET_RETURN_IGNORE_RENEW;

    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;

    default: /* SSL_TICKET_FATAL_ERR_* */
        return SSL_TICKET_RETURN_ABORT;
    }
}


static SSL_SESSION *
ngx_http_device_auth_get_session(SSL *ssl_conn, const unsigned char *id,
    int len, int *copy)
{
    SSL_SESSION                     *sess;
    ngx_http_device_auth_ssl_ctx_t  *sc;

    sc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl_conn),
                             ngx_http_device_auth_ctx_index);

    if (sc == NULL || sc->get_session == NULL) {
        return NULL;
    }

    sess = sc->get_session(ssl_conn, id, len, copy);

    if (sess == NULL
        || ngx_http_device_auth_session_fits(ssl_conn, sess, sc->dmcf))
    {
        return sess;
    }

    /* given to the caller without a reference taken: drop it here */

    if (*copy == 0) {
        SSL_SESSION_free(sess);
    }

    return NULL;
}


static ngx_uint_t
ngx_http_device_auth_session_fits(SSL *ssl_conn, SSL_SESSION *sess,
    ngx_http_device_auth_main_conf_t *dmcf)
{
    size_t                            len, hlen;
    ngx_uint_t                        i;
    const char                       *host;
    const u_char                     *p, *appdata, *context;
    ngx_http_device_auth_ssl_ctx_t  **sc;

    /* the server name of the session, and the one asked for now */

    host = SSL_SESSION_get0_hostname(sess);
    hlen = host ? ngx_strlen(host) : 0;

    if (SSL_client_hello_get0_ext(ssl_conn, TLSEXT_TYPE_server_name, &p,
                                  &len)
        == 1)
    {
        /* list length, name type, name length (RFC 6066) */

        if (len < 5 || p[2] != TLSEXT_NAMETYPE_host_name
            || (size_t) ((p[3] << 8) + p[4]) + 5 > len)
        {
            return 0;
        }

        if (hlen != (size_t) ((p[3] << 8) + p[4])
            || ngx_strncasecmp((u_char *) host, (u_char *) p + 5, hlen) != 0)
        {
            return 0;
        }

    } else if (hlen) {
        return 0;
    }

    appdata = NULL;

    if (SSL_SESSION_get0_ticket_appdata(sess, (void **) &appdata, &len) == 0
        || appdata == NULL || len == 0)
    {
        /* not verified by device_auth */
        return 1;
    }

    context = ngx_device_auth_appdata_context(appdata, len);

    if (context == NULL) {
        return 0;
    }

    /*
     * made by a device_auth server of this configuration: after a reload
     * that changed its pins, depth or profile, or its certificates, no
     */

    sc = dmcf->contexts.elts;

    for (i = 0; i < dmcf->contexts.nelts; i++) {
        if (ngx_memcmp(sc[i]->context, context, NGX_DEVICE_AUTH_ID_LEN) == 0)
        {
            /* the tickets of the server that verified the device */
            SSL_set_num_tickets(ssl_conn, sc[i]->dscf->tickets);
            return 1;
        }
    }

    return 0;
}


static int
ngx_http_device_auth_verify_cert(X509_STORE_CTX *x509_store, void *arg)
{
    ngx_http_device_auth_ssl_ctx_t *sc = arg;

    SSL                          *ssl_conn;
    X509                         *leaf;
    size_t                        len;
    u_char                        appdata[NGX_DEVICE_AUTH_APPDATA_LEN];
    ngx_connection_t             *c;
    ngx_http_device_auth_conn_t  *dc;
    ngx_device_auth_identity_t    id;

    ssl_conn = X509_STORE_CTX_get_ex_data(x509_store,
                                         SSL_get_ex_data_X509_STORE_CTX_idx());
    c = ngx_ssl_get_connection(ssl_conn);
    leaf = X509_STORE_CTX_get0_cert(x509_store);

    ngx_http_device_auth_ticket_check(c->log, "verification of a device");

    /*
     * The TLS 1.3 tickets for a device are set here, on the connection,
     * and not on the SSL_CTX: a connection keeps the number of the
     * listener's default server even when the server name selects
     * another context, and a server without device_auth keeps OpenSSL's.
     */

    SSL_set_num_tickets(ssl_conn, sc->dscf->tickets);

    (void) ngx_device_auth_verify(sc->dscf->policy, leaf,
                                  X509_STORE_CTX_get0_untrusted(x509_store),
                                  &id);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "device_auth: certificate %s verified %s", id.subject,
                   id.path == NGX_DEVICE_AUTH_PATH_CACHED
                   ? "directly, signature cached"
                   : id.path == NGX_DEVICE_AUTH_PATH_DIRECT
                     ? "directly against the signer" : "by the chain");

    dc = ngx_http_device_auth_conn_create(c->pool, sc->dscf->policy, &id);
    if (dc == NULL) {
        return 0;
    }

    if (SSL_set_ex_data(ssl_conn, ngx_http_device_auth_ssl_index, dc) == 0) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "SSL_set_ex_data() failed");
        return 0;
    }

    len = ngx_device_auth_appdata_encode(sc->dscf->policy, &id, sc->context,
                                         appdata);

    if (SSL_SESSION_set1_ticket_appdata(SSL_get0_session(ssl_conn),
                                        appdata, len)
        == 0)
    {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "SSL_SESSION_set1_ticket_appdata() failed");
        return 0;
    }

    if (id.status != NGX_DEVICE_AUTH_CERT_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "device_auth: certificate %s: %s",
                       id.subject, id.reason);

        /* as SSL_get_verify_result() and $ssl_client_verify will say */
        X509_STORE_CTX_set_error(x509_store, id.x509_error);
    }

    /* the handshake goes on; the HTTP phase answers 495 */

    return 1;
}


static ngx_http_device_auth_conn_t *
ngx_http_device_auth_conn_create(ngx_pool_t *pool,
    ngx_device_auth_policy_t *policy, ngx_device_auth_identity_t *id)
{
    ngx_http_device_auth_conn_t  *dc;

    dc = ngx_pcalloc(pool, sizeof(ngx_http_device_auth_conn_t));
    if (dc == NULL) {
        return NULL;
    }

    dc->policy = policy;
    dc->pool = pool;

    ngx_hex_dump(dc->fingerprint, id->fingerprint, NGX_DEVICE_AUTH_ID_LEN);
    ngx_hex_dump(dc->signer, id->signer_id, NGX_DEVICE_AUTH_ID_LEN);
    ngx_memcpy(dc->spki, id->spki, NGX_DEVICE_AUTH_ID_LEN);

    if (id->serial_len) {
        dc->serial.len = id->serial_len;
        dc->serial.data = ngx_pnalloc(pool, id->serial_len);
        if (dc->serial.data == NULL) {
            return NULL;
        }

        ngx_memcpy(dc->serial.data, id->serial, id->serial_len);
    }

    if (id->status == NGX_DEVICE_AUTH_CERT_OK) {
        dc->status = NGX_HTTP_DEVICE_AUTH_CONN_OK;
        return dc;
    }

    dc->status = NGX_HTTP_DEVICE_AUTH_CONN_INVALID;
    dc->reason_code = id->reason_code;

    dc->reason.len = ngx_strlen(id->reason);
    dc->reason.data = ngx_pnalloc(pool, dc->reason.len);
    if (dc->reason.data == NULL) {
        return NULL;
    }

    ngx_memcpy(dc->reason.data, id->reason, dc->reason.len);

    dc->subject.len = ngx_strlen(id->subject);
    dc->subject.data = ngx_pnalloc(pool, dc->subject.len);
    if (dc->subject.data == NULL) {
        return NULL;
    }

    ngx_memcpy(dc->subject.data, id->subject, dc->subject.len);

    return dc;
}


/*
 * The identity of the TLS connection a request came on: made in the
 * handshake, or here for a resumed session or a connection that sent no
 * certificate.  NULL for a plain HTTP connection.
 */

ngx_http_device_auth_conn_t *
ngx_http_device_auth_get_conn(ngx_http_request_t *r)
{
    X509                             *leaf;
    size_t                            len;
    SSL                              *ssl_conn;
    const u_char                     *appdata;
    ngx_connection_t                 *c;
    ngx_device_auth_identity_t        id;
    ngx_http_device_auth_conn_t      *dc;
    ngx_http_device_auth_ssl_ctx_t   *sc;
    ngx_http_device_auth_srv_conf_t  *dscf;

    if (r->connection->ssl == NULL || ngx_http_device_auth_ssl_index == -1) {
        return NULL;
    }

    ssl_conn = r->connection->ssl->connection;

    dc = SSL_get_ex_data(ssl_conn, ngx_http_device_auth_ssl_index);
    if (dc) {
        return dc;
    }

    /* the real connection: an HTTP/2 stream has a fake one */
    c = ngx_ssl_get_connection(ssl_conn);

    dscf = ngx_http_get_module_srv_conf(r, ngx_http_device_auth_module);

    leaf = SSL_get0_peer_certificate(ssl_conn);

    /*
     * A resumed session is checked against the pins of the server that
     * resumed it (the TLS server name), as in a full handshake: when the
     * Host names a server with other pins, the request is misdirected.
     */

    sc = NULL;

    if (leaf && SSL_session_reused(ssl_conn)) {
        sc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl_conn),
                                 ngx_http_device_auth_ctx_index);
    }

    if (leaf == NULL) {
        ngx_memzero(&id, sizeof(ngx_device_auth_identity_t));
        dc = ngx_http_device_auth_conn_create(c->pool, dscf->policy, &id);
        if (dc == NULL) {
            return NULL;
        }

        dc->status = NGX_HTTP_DEVICE_AUTH_CONN_NO_CERT;
        ngx_str_null(&dc->reason);

    } else if (sc && sc->dscf && sc->dscf->policy) {

        appdata = NULL;
        len = 0;

        if (SSL_SESSION_get0_ticket_appdata(SSL_get0_session(ssl_conn),
                                            (void **) &appdata, &len)
            == 0)
        {
            appdata = NULL;
        }

        (void) ngx_device_auth_resume(sc->dscf->policy, leaf, appdata, len,
                                      &id);

        dc = ngx_http_device_auth_conn_create(c->pool, sc->dscf->policy,
                                              &id);
        if (dc == NULL) {
            return NULL;
        }

    } else {
        /* a certificate that device_auth did not verify: another server */

        ngx_memzero(&id, sizeof(ngx_device_auth_identity_t));
        dc = ngx_http_device_auth_conn_create(c->pool, NULL, &id);
        if (dc == NULL) {
            return NULL;
        }

        dc->status = NGX_HTTP_DEVICE_AUTH_CONN_MISDIRECTED;
        ngx_str_set(&dc->reason, "client certificate was not verified by "
                                 "device_auth in the server of the TLS "
                                 "handshake");
    }

    if (SSL_set_ex_data(ssl_conn, ngx_http_device_auth_ssl_index, dc) == 0) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "SSL_set_ex_data() failed");
        return NULL;
    }

    return dc;
}


/* a rejected session must not be resumed, as nginx does for 495 */

void
ngx_http_device_auth_forget_session(ngx_http_request_t *r)
{
    if (r->connection->ssl) {
        ngx_ssl_remove_cached_session(r->connection->ssl->session_ctx,
                             SSL_get0_session(r->connection->ssl->connection));
    }
}
