
/*
 * The value of "{prefix}{SN}:registered" that a manifest import writes:
 * where the fact comes from and the device's key, for a person and for a
 * program:
 *
 *   manifest=<sha256 of the manifest file> part=<part number>
 *   provisioned=<provisioning time> signer=<signer id>
 *   spki_sha256=<sha256 of the device's SubjectPublicKeyInfo, DER>
 *
 * on one line, "name=value" fields separated by one space, in this order;
 * names are [a-z0-9_], values printable ASCII without spaces; hashes are
 * 64 lower-case hex digits; the signer id is the edge's (SHA-256 of the
 * DER of the certificate that issued the device's).  A reader skips the
 * fields it does not know.  Values written by hand ("batch-2026-11") are
 * registrations too, without a key.
 */


#ifndef _NGX_DEVICE_AUTH_REGISTRATION_H_INCLUDED_
#define _NGX_DEVICE_AUTH_REGISTRATION_H_INCLUDED_


#include <stddef.h>

#include "ngx_device_auth_cert.h"


#define NGX_DEVICE_AUTH_PART_MAX         64
#define NGX_DEVICE_AUTH_TIME_MAX         40
#define NGX_DEVICE_AUTH_REGISTRATION_MAX  512

/* what a "registered" value is (ngx_device_auth_registration_kind) */
#define NGX_DEVICE_AUTH_REGISTRATION_IMPORT   0   /* the format above */
#define NGX_DEVICE_AUTH_REGISTRATION_HAND     1   /* free text */
#define NGX_DEVICE_AUTH_REGISTRATION_NEITHER  2

/* what a part number and a time may hold besides A-Z a-z 0-9 */
#define NGX_DEVICE_AUTH_PART_CHARS       "._+/-"
#define NGX_DEVICE_AUTH_TIME_CHARS       ":.+-"


typedef struct {
    char    manifest[NGX_DEVICE_AUTH_HEX_LEN + 1];
    char    part[NGX_DEVICE_AUTH_PART_MAX + 1];
    char    provisioned[NGX_DEVICE_AUTH_TIME_MAX + 1];
    char    signer[NGX_DEVICE_AUTH_HEX_LEN + 1];
    char    spki_sha256[NGX_DEVICE_AUTH_HEX_LEN + 1];
} ngx_device_auth_registration_t;


size_t ngx_device_auth_registration_format(
    const ngx_device_auth_registration_t *r, char *buf, size_t size);
int ngx_device_auth_registration_parse(const char *s, size_t len,
    ngx_device_auth_registration_t *r);
int ngx_device_auth_registration_kind(const char *s, size_t len,
    const char **why);
int ngx_device_auth_registration_token(const char *s, size_t len,
    size_t max, const char *extra);


#endif /* _NGX_DEVICE_AUTH_REGISTRATION_H_INCLUDED_ */
