
/*
 * certcheck: run the module's certificate policy code on files, without
 * nginx.  Used by the suite on the real Microchip certificates, whose
 * private keys stay in the chips, and by ops to see what the edge would
 * decide for a certificate.
 *
 *   certcheck [-p atecc608|generic] [-d depth] -r roots.pem [-s signers.pem]
 *             device.pem [intermediate.pem ...]
 *
 * Prints "ok serial=... signer=... fingerprint=... anchor=..." and exits 0,
 * or "invalid error=N reason=..." and exits 1; configuration errors exit 2.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/x509.h>

#include "ngx_device_auth_cert.h"


static void
usage(void)
{
    fprintf(stderr, "usage: certcheck [-p atecc608|generic] [-d depth] "
            "-r roots.pem [-s signers.pem] device.pem [chain.pem ...]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                         c, i, j, depth, profile, rc, status;
    char                        err[NGX_DEVICE_AUTH_ERR_MAX];
    char                        hex[3][NGX_DEVICE_AUTH_HEX_LEN + 1];
    const char                 *roots_file, *signers_file;
    STACK_OF(X509)             *sent;
    ngx_device_auth_bundle_t   *roots, *signers, *b;
    ngx_device_auth_policy_t   *policy;
    ngx_device_auth_identity_t  id;

    depth = 1;
    profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
    roots_file = NULL;
    signers_file = NULL;

    while ((c = getopt(argc, argv, "p:d:r:s:")) != -1) {
        switch (c) {
        case 'p':
            profile = ngx_device_auth_profile_parse(optarg);
            if (profile < 0) {
                usage();
            }
            break;
        case 'd':
            depth = atoi(optarg);
            break;
        case 'r':
            roots_file = optarg;
            break;
        case 's':
            signers_file = optarg;
            break;
        default:
            usage();
        }
    }

    if (roots_file == NULL || optind >= argc) {
        usage();
    }

    /* everything is freed on every path: make test-asan checks leaks */

    status = 2;
    signers = NULL;
    policy = NULL;
    sent = NULL;

    roots = ngx_device_auth_bundle_load(roots_file, err, sizeof(err));
    if (roots == NULL) {
        fprintf(stderr, "certcheck: roots: %s\n", err);
        goto done;
    }

    if (signers_file) {
        signers = ngx_device_auth_bundle_load(signers_file, err, sizeof(err));
        if (signers == NULL) {
            fprintf(stderr, "certcheck: signers: %s\n", err);
            goto done;
        }
    }

    policy = ngx_device_auth_policy_create(roots, signers, depth, profile,
                                           err, sizeof(err));
    if (policy == NULL) {
        fprintf(stderr, "certcheck: %s\n", err);
        goto done;
    }

    /* as a TLS peer sends it: the device certificate first */

    sent = sk_X509_new_null();
    if (sent == NULL) {
        fprintf(stderr, "certcheck: out of memory\n");
        goto done;
    }

    for (i = optind; i < argc; i++) {
        b = ngx_device_auth_bundle_load(argv[i], err, sizeof(err));
        if (b == NULL) {
            fprintf(stderr, "certcheck: %s\n", err);
            goto done;
        }

        for (j = 0; j < b->n; j++) {
            X509_up_ref(sk_X509_value(b->certs, j));
            sk_X509_push(sent, sk_X509_value(b->certs, j));
        }

        ngx_device_auth_bundle_free(b);
    }

    rc = ngx_device_auth_verify(policy, sk_X509_value(sent, 0), sent, &id);

    if (rc != NGX_DEVICE_AUTH_CERT_OK) {
        printf("invalid error=%d serial=%s reason=%s subject=%s\n",
               id.x509_error, id.serial_len ? id.serial : "-", id.reason,
               id.subject);
        status = 1;
        goto done;
    }

    ngx_device_auth_hex(id.signer_id, NGX_DEVICE_AUTH_ID_LEN, hex[0]);
    ngx_device_auth_hex(id.fingerprint, NGX_DEVICE_AUTH_ID_LEN, hex[1]);
    ngx_device_auth_hex(id.anchor_id, NGX_DEVICE_AUTH_ID_LEN, hex[2]);

    printf("ok serial=%s signer=%s fingerprint=%s anchor=%s\n",
           id.serial, hex[0], hex[1], hex[2]);

    status = 0;

done:

    sk_X509_pop_free(sent, X509_free);
    ngx_device_auth_policy_free(policy);
    ngx_device_auth_bundle_free(roots);
    ngx_device_auth_bundle_free(signers);

    return status;
}
