
/*
 * device-auth pins [--days N] FILE...
 *
 * The certificates of PEM files as an edge loads them (the files of
 * device_auth_certificate and device_auth_signers): each is read by the
 * edge's own code (ngx_device_auth_bundle_load, ngx_device_auth_cert.c),
 * which computes its id as the edge does, the lowercase hex SHA-256 of
 * its DER: the signer id of X-Device-Signer, of the events and of the
 * "signer:<id>" keys.  One line per certificate:
 *
 *   FILE:N STATUS id=<hex> not_after=<UTC> days_left=<n> ca=yes|no
 *       subject="..." issuer="..."
 *
 * STATUS is ok, expiring (within --days, default 30), expired,
 * not-yet-valid or not-a-ca (an edge refuses a pin that is no CA).  Then
 * a summary with the earliest expiry.  Exit 0 when all are ok, 1 when one
 * is not, 2 when a file cannot be loaded (the edge's message says why).
 */


#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ngx_device_auth_cert.h"
#include "device_auth_cli.h"


#define DEVICE_AUTH_CLI_PINS_DAYS  30


static const struct option  device_auth_cli_pins_options[] = {
    { "days", required_argument, NULL, 'd' },
    { NULL, 0, NULL, 0 }
};


static void device_auth_cli_pins_time(const ASN1_TIME *t, char *buf,
    size_t size);


int
device_auth_cli_pins(int argc, char **argv)
{
    int                        c, i, k, days, secs, ca, bad, total;
    long                       warn;
    char                       err[NGX_DEVICE_AUTH_ERR_MAX];
    char                       hex[NGX_DEVICE_AUTH_HEX_LEN + 1];
    char                       subject[NGX_DEVICE_AUTH_SUBJECT_MAX];
    char                       issuer[NGX_DEVICE_AUTH_SUBJECT_MAX];
    char                       after[32], earliest[32];
    char                       earliest_subject[NGX_DEVICE_AUTH_SUBJECT_MAX];
    X509                      *x;
    const char                *status;
    const ASN1_TIME           *na;
    ngx_device_auth_bundle_t  *b;

    warn = DEVICE_AUTH_CLI_PINS_DAYS;

    while ((c = getopt_long(argc, argv, "d:", device_auth_cli_pins_options,
                            NULL))
           != -1)
    {
        if (c != 'd' || device_auth_cli_number(optarg, 0, 36500, &warn) != 0)
        {
            return device_auth_cli_usage("pins");
        }
    }

    if (optind == argc) {
        return device_auth_cli_usage("pins");
    }

    bad = 0;
    total = 0;
    earliest[0] = '\0';
    earliest_subject[0] = '\0';

    for (i = optind; i < argc; i++) {

        b = ngx_device_auth_bundle_load(argv[i], err, sizeof(err));
        if (b == NULL) {
            fflush(stdout);
            device_auth_cli_error("pins", "%s", err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        for (k = 0; k < b->n; k++) {
            x = sk_X509_value(b->certs, k);
            total++;

            ngx_device_auth_hex(b->ids[k], NGX_DEVICE_AUTH_ID_LEN, hex);
            ngx_device_auth_subject(x, subject, sizeof(subject));
            ngx_device_auth_issuer(x, issuer, sizeof(issuer));

            na = X509_get0_notAfter(x);
            device_auth_cli_pins_time(na, after, sizeof(after));

            days = 0;
            secs = 0;
            (void) ASN1_TIME_diff(&days, &secs, NULL, na);

            ca = X509_check_ca(x) == 1;

            if (X509_cmp_current_time(na) <= 0) {
                status = "expired";
            } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
                status = "not-yet-valid";
            } else if (!ca) {
                status = "not-a-ca";
            } else if (days < warn) {
                status = "expiring";
            } else {
                status = "ok";
            }

            bad += strcmp(status, "ok") != 0;

            if (earliest[0] == '\0' || strcmp(after, earliest) < 0) {
                memcpy(earliest, after, sizeof(earliest));
                memcpy(earliest_subject, subject, sizeof(subject));
            }

            printf("%s:%d %s id=%s not_after=%s days_left=%d ca=%s "
                   "subject=\"%s\" issuer=\"%s\"\n", argv[i], k + 1, status,
                   hex, after, days, ca ? "yes" : "no", subject, issuer);
        }

        ngx_device_auth_bundle_free(b);
    }

    ERR_clear_error();

    printf("summary: %d certificate%s in %d file%s, %d not ok; the "
           "earliest expiry %s (\"%s\")\n", total, total == 1 ? "" : "s",
           argc - optind, argc - optind == 1 ? "" : "s", bad, earliest,
           earliest_subject);

    return bad ? DEVICE_AUTH_CLI_FAILED : DEVICE_AUTH_CLI_OK;
}


/* "2058-11-08T19:12:19Z" (sortable, as strings) */

static void
device_auth_cli_pins_time(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(struct tm));

    if (ASN1_TIME_to_tm(t, &tm) != 1
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "unknown");
    }
}

