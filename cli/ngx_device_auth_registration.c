
/*
 * The "registered" value of a device imported from a manifest: written,
 * and read back (device-auth show, and an import that finds the serial
 * already registered).
 */


#include <stdio.h>
#include <string.h>

#include "ngx_device_auth_registration.h"


typedef struct {
    const char  *name;
    size_t       offset;
    size_t       size;
} ngx_device_auth_registration_field_t;


static ngx_device_auth_registration_field_t
    ngx_device_auth_registration_fields[] =
{
    { "manifest", offsetof(ngx_device_auth_registration_t, manifest),
      NGX_DEVICE_AUTH_HEX_LEN + 1 },
    { "part", offsetof(ngx_device_auth_registration_t, part),
      NGX_DEVICE_AUTH_PART_MAX + 1 },
    { "provisioned", offsetof(ngx_device_auth_registration_t, provisioned),
      NGX_DEVICE_AUTH_TIME_MAX + 1 },
    { "signer", offsetof(ngx_device_auth_registration_t, signer),
      NGX_DEVICE_AUTH_HEX_LEN + 1 },
    { "spki_sha256", offsetof(ngx_device_auth_registration_t, spki_sha256),
      NGX_DEVICE_AUTH_HEX_LEN + 1 },
    { NULL, 0, 0 }
};


static int ngx_device_auth_registration_find(const char *s, size_t len,
    const char *name);


size_t
ngx_device_auth_registration_format(const ngx_device_auth_registration_t *r,
    char *buf, size_t size)
{
    int  n;

    n = snprintf(buf, size, "manifest=%s part=%s provisioned=%s signer=%s "
                 "spki_sha256=%s", r->manifest, r->part, r->provisioned,
                 r->signer, r->spki_sha256);

    return n < 0 || (size_t) n >= size ? 0 : (size_t) n;
}


/*
 * 0: the value has the fields of an import, a key among them (the other
 * fields may be empty); -1: any other value, such as one set by hand
 */

int
ngx_device_auth_registration_parse(const char *s, size_t len,
    ngx_device_auth_registration_t *r)
{
    size_t                                 i, nlen, vlen;
    const char                            *p, *end, *eq, *sp;
    ngx_device_auth_registration_field_t  *f;

    memset(r, 0, sizeof(ngx_device_auth_registration_t));

    p = s;
    end = s + len;

    while (p < end) {
        sp = memchr(p, ' ', (size_t) (end - p));
        if (sp == NULL) {
            sp = end;
        }

        eq = memchr(p, '=', (size_t) (sp - p));
        if (eq == NULL || eq == p || eq + 1 == sp) {
            return -1;
        }

        nlen = (size_t) (eq - p);
        vlen = (size_t) (sp - eq - 1);

        for (i = 0; i < nlen; i++) {
            if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
                  || p[i] == '_'))
            {
                return -1;
            }
        }

        for (i = 0; i < vlen; i++) {
            if (eq[1 + i] <= 0x20 || eq[1 + i] >= 0x7f) {
                return -1;
            }
        }

        for (f = ngx_device_auth_registration_fields; f->name; f++) {
            if (strlen(f->name) == nlen && memcmp(f->name, p, nlen) == 0
                && vlen < f->size)
            {
                memcpy((char *) r + f->offset, eq + 1, vlen);
                ((char *) r + f->offset)[vlen] = '\0';
            }
        }

        p = sp + 1;
    }

    if (strlen(r->spki_sha256) != NGX_DEVICE_AUTH_HEX_LEN
        || strspn(r->spki_sha256, "0123456789abcdef")
           != NGX_DEVICE_AUTH_HEX_LEN)
    {
        return -1;
    }

    return 0;
}


/*
 * What a "registered" value is: the format of an import (a key recorded,
 * hashes in lower-case hex), free text written by hand ("batch-2026-11"),
 * or neither: empty, control characters (a CR left by a CRLF file), or
 * fields of the import's that do not parse (a reader would take it for a
 * registration without a key).  "why" says what is wrong with the last.
 */

int
ngx_device_auth_registration_kind(const char *s, size_t len,
    const char **why)
{
    size_t                           i;
    const char                      *hex;
    ngx_device_auth_registration_t   r;
    static const char               *fields[] = {
        "manifest=", "part=", "provisioned=", "signer=", "spki_sha256=",
        NULL
    };

    hex = "0123456789abcdef";

    if (len == 0) {
        *why = "empty";
        return NGX_DEVICE_AUTH_REGISTRATION_NEITHER;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            *why = "control characters (a CR from a CRLF file?)";
            return NGX_DEVICE_AUTH_REGISTRATION_NEITHER;
        }
    }

    if (ngx_device_auth_registration_parse(s, len, &r) == 0) {
        if ((r.manifest[0] && (strlen(r.manifest) != NGX_DEVICE_AUTH_HEX_LEN
                               || strspn(r.manifest, hex)
                                  != NGX_DEVICE_AUTH_HEX_LEN))
            || (r.signer[0] && (strlen(r.signer) != NGX_DEVICE_AUTH_HEX_LEN
                                || strspn(r.signer, hex)
                                   != NGX_DEVICE_AUTH_HEX_LEN)))
        {
            *why = "manifest= or signer= is not 64 lower-case hex digits";
            return NGX_DEVICE_AUTH_REGISTRATION_NEITHER;
        }

        *why = NULL;
        return NGX_DEVICE_AUTH_REGISTRATION_IMPORT;
    }

    for (i = 0; fields[i]; i++) {
        if ((len >= strlen(fields[i])
             && memcmp(s, fields[i], strlen(fields[i])) == 0)
            || ngx_device_auth_registration_find(s, len, fields[i]))
        {
            *why = "fields of an import, without a valid spki_sha256= "
                   "(64 lower-case hex digits)";
            return NGX_DEVICE_AUTH_REGISTRATION_NEITHER;
        }
    }

    *why = NULL;

    return NGX_DEVICE_AUTH_REGISTRATION_HAND;
}


/* " name=" inside a value */

static int
ngx_device_auth_registration_find(const char *s, size_t len,
    const char *name)
{
    size_t  i, n;

    n = strlen(name);

    for (i = 0; i + n + 1 <= len; i++) {
        if (s[i] == ' ' && memcmp(s + i + 1, name, n) == 0) {
            return 1;
        }
    }

    return 0;
}


/* 1-max characters of A-Z a-z 0-9 and "extra" */

int
ngx_device_auth_registration_token(const char *s, size_t len, size_t max,
    const char *extra)
{
    size_t  i;

    if (len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9')
              || (s[i] != '\0' && strchr(extra, s[i]) != NULL)))
        {
            return 0;
        }
    }

    return 1;
}
