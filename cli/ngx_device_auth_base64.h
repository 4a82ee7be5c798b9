
/*
 * Strict base64 (RFC 4648): the alphabet of section 4 with its padding,
 * as JWK "x5c" uses it, or that of section 5 without padding, as JWS
 * (RFC 7515 section 2) uses it.  Only the canonical encoding of a byte
 * string is accepted: a signed document has one spelling.
 */


#ifndef _NGX_DEVICE_AUTH_BASE64_H_INCLUDED_
#define _NGX_DEVICE_AUTH_BASE64_H_INCLUDED_


#include <stddef.h>


#define NGX_DEVICE_AUTH_BASE64_STD  0     /* "+/", "=" padding required */
#define NGX_DEVICE_AUTH_BASE64_URL  1     /* "-_", no padding */

/* bytes at most decoded from, and characters encoded for, len inputs */
#define ngx_device_auth_base64_decoded_max(len)  (((len) + 3) / 4 * 3)
#define ngx_device_auth_base64_encoded_max(len)  (((len) + 2) / 3 * 4)


int ngx_device_auth_base64_decode(int variant, const char *in, size_t len,
    unsigned char *out, size_t *outlen, char *err, size_t errlen);
size_t ngx_device_auth_base64_encode(int variant, const unsigned char *in,
    size_t len, char *out);


#endif /* _NGX_DEVICE_AUTH_BASE64_H_INCLUDED_ */
