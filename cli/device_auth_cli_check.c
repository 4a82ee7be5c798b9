
/*
 * device-auth check: the edge's certificate policy (ngx_device_auth_cert.c)
 * run on files, without nginx.  Used by the suite on the real Microchip
 * certificates, whose private keys stay in the chips, and by ops to see
 * what an edge with these pins would decide for a certificate.
 *
 *   device-auth check [-p atecc608|generic] [-d depth] -r roots.pem
 *                     [-s signers.pem] device.pem [chain.pem ...]
 *
 * Prints "ok serial=... signer=... fingerprint=... anchor=..." and exits 0,
 * or "invalid error=N serial=... reason=... subject=..." and exits 1;
 * configuration errors exit 2.
 */


#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>

#include "ngx_device_auth_cert.h"
#include "device_auth_cli.h"


static const struct option  device_auth_cli_check_options[] = {
    { "profile", required_argument, NULL, 'p' },
    { "depth", required_argument, NULL, 'd' },
    { "roots", required_argument, NULL, 'r' },
    { "signers", required_argument, NULL, 's' },
    { NULL, 0, NULL, 0 }
};


int
device_auth_cli_check(int argc, char **argv)
{
    int                          c, i, j, profile, rc, status;
    long                         depth;
    char                         err[NGX_DEVICE_AUTH_ERR_MAX];
    char                         hex[3][NGX_DEVICE_AUTH_HEX_LEN + 1];
    const char                  *roots_file, *signers_file;
    STACK_OF(X509)              *sent;
    ngx_device_auth_bundle_t    *roots, *signers, *b;
    ngx_device_auth_policy_t    *policy;
    ngx_device_auth_identity_t   id;

    depth = 1;
    profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
    roots_file = NULL;
    signers_file = NULL;

    while ((c = getopt_long(argc, argv, "p:d:r:s:",
                            device_auth_cli_check_options, NULL))
           != -1)
    {
        switch (c) {
        case 'p':
            profile = ngx_device_auth_profile_parse(optarg);
            if (profile < 0) {
                device_auth_cli_error("check", "unknown profile \"%s\"",
                                      optarg);
                return DEVICE_AUTH_CLI_ERROR;
            }
            break;
        case 'd':
            if (device_auth_cli_number(optarg, 0, 16, &depth) != 0) {
                device_auth_cli_error("check", "invalid depth \"%s\"",
                                      optarg);
                return DEVICE_AUTH_CLI_ERROR;
            }
            break;
        case 'r':
            roots_file = optarg;
            break;
        case 's':
            signers_file = optarg;
            break;
        default:
            return device_auth_cli_usage("check");
        }
    }

    if (roots_file == NULL || optind >= argc) {
        return device_auth_cli_usage("check");
    }

    /* everything is freed on every path: make test-asan checks leaks */

    status = DEVICE_AUTH_CLI_ERROR;
    signers = NULL;
    policy = NULL;
    sent = NULL;

    roots = ngx_device_auth_bundle_load(roots_file, err, sizeof(err));
    if (roots == NULL) {
        device_auth_cli_error("check", "roots: %s", err);
        goto done;
    }

    if (signers_file) {
        signers = ngx_device_auth_bundle_load(signers_file, err, sizeof(err));
        if (signers == NULL) {
            device_auth_cli_error("check", "signers: %s", err);
            goto done;
        }
    }

    policy = ngx_device_auth_policy_create(roots, signers, (int) depth,
                                           profile, err, sizeof(err));
    if (policy == NULL) {
        device_auth_cli_error("check", "%s", err);
        goto done;
    }

    /* as a TLS peer sends it: the device certificate first */

    sent = sk_X509_new_null();
    if (sent == NULL) {
        device_auth_cli_error("check", "out of memory");
        goto done;
    }

    for (i = optind; i < argc; i++) {
        b = ngx_device_auth_bundle_load(argv[i], err, sizeof(err));
        if (b == NULL) {
            device_auth_cli_error("check", "%s", err);
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
        status = DEVICE_AUTH_CLI_FAILED;
        goto done;
    }

    ngx_device_auth_hex(id.signer_id, NGX_DEVICE_AUTH_ID_LEN, hex[0]);
    ngx_device_auth_hex(id.fingerprint, NGX_DEVICE_AUTH_ID_LEN, hex[1]);
    ngx_device_auth_hex(id.anchor_id, NGX_DEVICE_AUTH_ID_LEN, hex[2]);

    printf("ok serial=%s signer=%s fingerprint=%s anchor=%s\n",
           id.serial, hex[0], hex[1], hex[2]);

    status = DEVICE_AUTH_CLI_OK;

done:

    sk_X509_pop_free(sent, X509_free);
    ngx_device_auth_policy_free(policy);
    ngx_device_auth_bundle_free(roots);
    ngx_device_auth_bundle_free(signers);

    return status;
}
