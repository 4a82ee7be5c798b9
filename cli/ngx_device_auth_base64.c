
/*
 * Strict base64 and base64url, decoding and encoding.
 */


#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ngx_device_auth_base64.h"


static const char  ngx_device_auth_base64_alphabet[2][65] = {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
};


/* 0-63, or 0xff for a byte outside the alphabet; built on first use */

static unsigned char  ngx_device_auth_base64_values[2][256];


static void
ngx_device_auth_base64_init(void)
{
    int  v, i;

    memset(ngx_device_auth_base64_values, 0xff,
           sizeof(ngx_device_auth_base64_values));

    for (v = 0; v < 2; v++) {
        for (i = 0; i < 64; i++) {
            ngx_device_auth_base64_values[v]
                [(unsigned char) ngx_device_auth_base64_alphabet[v][i]]
                = (unsigned char) i;
        }
    }
}


int
ngx_device_auth_base64_decode(int variant, const char *in, size_t len,
    unsigned char *out, size_t *outlen, char *err, size_t errlen)
{
    size_t                 i, n, data;
    unsigned               acc, bits, v;
    const char            *name;
    static pthread_once_t  once = PTHREAD_ONCE_INIT;

    (void) pthread_once(&once, ngx_device_auth_base64_init);

    name = variant == NGX_DEVICE_AUTH_BASE64_URL ? "base64url" : "base64";

    data = len;

    if (variant == NGX_DEVICE_AUTH_BASE64_STD) {
        if (len % 4 != 0) {
            snprintf(err, errlen, "%s: length %zu is not a multiple of 4",
                     name, len);
            return -1;
        }

        while (data > 0 && len - data < 2 && in[data - 1] == '=') {
            data--;
        }
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < data; i++) {
        v = ngx_device_auth_base64_values[variant][(unsigned char) in[i]];

        if (v == 0xff) {
            if ((unsigned char) in[i] >= 0x20 && (unsigned char) in[i] < 0x7f)
            {
                snprintf(err, errlen, "%s: invalid character '%c' at offset "
                         "%zu", name, in[i], i);
            } else {
                snprintf(err, errlen, "%s: invalid byte 0x%02X at offset %zu",
                         name, (unsigned char) in[i], i);
            }

            return -1;
        }

        acc = (acc << 6) | v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    /* a bad character is named first: it says more than the length */

    if (data % 4 == 1) {
        snprintf(err, errlen, "%s: length %zu is not possible", name, data);
        return -1;
    }

    /* the bits left over must be zero: a single spelling per string */

    if (acc != 0) {
        snprintf(err, errlen, "%s: non-canonical encoding (trailing bits "
                 "are not zero)", name);
        return -1;
    }

    *outlen = n;

    return 0;
}


size_t
ngx_device_auth_base64_encode(int variant, const unsigned char *in,
    size_t len, char *out)
{
    size_t       i, n;
    unsigned     v;
    const char  *a;

    a = ngx_device_auth_base64_alphabet[variant];
    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 0x3f];
        out[n++] = a[(v >> 6) & 0x3f];
        out[n++] = a[v & 0x3f];
    }

    if (i < len) {
        v = (unsigned) in[i] << 16 | (i + 1 < len ? (unsigned) in[i + 1] << 8
                                                  : 0);
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 0x3f];

        if (i + 1 < len) {
            out[n++] = a[(v >> 6) & 0x3f];

        } else if (variant == NGX_DEVICE_AUTH_BASE64_STD) {
            out[n++] = '=';
        }

        if (variant == NGX_DEVICE_AUTH_BASE64_STD) {
            out[n++] = '=';
        }
    }

    out[n] = '\0';

    return n;
}
