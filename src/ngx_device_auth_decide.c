
/*
 * The device decision, from facts held at the edge.
 *
 * The order is the one the Redis script followed when it decided alone:
 * the device revoked (a quarantine when the value says so), its signer
 * revoked, a serial missing from the manufacturing registry when its
 * signer is compromised or the registry is required, a certificate whose
 * key is not the one the registration binds (when its signer is
 * compromised, or always by the rules), then the sighting (more places
 * than the limit).  The facts come from Redis, kept current by its
 * invalidations; the sighting from the script that recorded it.
 *
 * Each decision has one name, used for $device_auth_status, the metrics
 * and the events alike.
 */


#include <string.h>

#include "ngx_device_auth_decide.h"


#define NGX_DEVICE_AUTH_QUARANTINE      "quarantined:"
#define NGX_DEVICE_AUTH_QUARANTINE_LEN  (sizeof(NGX_DEVICE_AUTH_QUARANTINE) - 1)
#define NGX_DEVICE_AUTH_UNREGISTERED                                          \
    ") and serial not in the manufacturing registry"


static void ngx_device_auth_verdict_hex(ngx_device_auth_verdict_t *v,
    const unsigned char *key);


static const struct {
    const char  *name;
    int          status;
} ngx_device_auth_verdicts[] = {
    { "ok", NGX_DEVICE_AUTH_V_OK },
    { "revoked", NGX_DEVICE_AUTH_V_REVOKED },
    { "signer_revoked", NGX_DEVICE_AUTH_V_SIGNER_REVOKED },
    { "unregistered", NGX_DEVICE_AUTH_V_UNREGISTERED },
    { "quarantined", NGX_DEVICE_AUTH_V_QUARANTINED },
    { "duplicate", NGX_DEVICE_AUTH_V_DUPLICATE },
    { "signer_compromised", NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED },
    { "key_mismatch", NGX_DEVICE_AUTH_V_KEY_MISMATCH },
    { NULL, 0 }
};


static const char  *ngx_device_auth_events[NGX_DEVICE_AUTH_EV_N] = {
    "", "revoked", "quarantined", "signer_revoked", "unregistered",
    "duplicate", "signer_compromised", "key_mismatch"
};


void
ngx_device_auth_decide(const ngx_device_auth_facts_t *f,
    const ngx_device_auth_rules_t *rules, ngx_device_auth_verdict_t *v)
{
    memset(v, 0, sizeof(ngx_device_auth_verdict_t));

    if (f->revoked.data) {
        if (ngx_device_auth_is_quarantine(&f->revoked)) {
            v->status = NGX_DEVICE_AUTH_V_QUARANTINED;
            v->event = NGX_DEVICE_AUTH_EV_QUARANTINED;

        } else {
            v->status = NGX_DEVICE_AUTH_V_REVOKED;
            v->event = NGX_DEVICE_AUTH_EV_REVOKED;
        }

        ngx_device_auth_verdict_text(v, "", f->revoked.data, f->revoked.len);
        return;
    }

    if (f->signer_revoked.data) {
        v->status = NGX_DEVICE_AUTH_V_SIGNER_REVOKED;
        v->event = NGX_DEVICE_AUTH_EV_SIGNER_REVOKED;
        ngx_device_auth_verdict_text(v, "", f->signer_revoked.data,
                                     f->signer_revoked.len);
        return;
    }

    if (!f->registered) {

        /* a leaked factory key: only the units already shipped work */

        if (f->signer_compromised.data) {
            v->status = NGX_DEVICE_AUTH_V_SIGNER_COMPROMISED;
            v->cause = NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED;
            v->event = NGX_DEVICE_AUTH_EV_SIGNER_COMPROMISED;
            ngx_device_auth_verdict_text(v, "signer compromised (",
                                         f->signer_compromised.data,
                                         f->signer_compromised.len);
            ngx_device_auth_verdict_append(v, NGX_DEVICE_AUTH_UNREGISTERED,
                                  sizeof(NGX_DEVICE_AUTH_UNREGISTERED) - 1);
            return;
        }

        if (rules->registry) {
            v->status = NGX_DEVICE_AUTH_V_UNREGISTERED;
            v->cause = NGX_DEVICE_AUTH_CAUSE_REGISTRY;
            v->event = NGX_DEVICE_AUTH_EV_UNREGISTERED;
            ngx_device_auth_verdict_text(v, "serial not in the "
                                         "manufacturing registry", NULL, 0);
            return;
        }

    } else if (f->key != NGX_DEVICE_AUTH_REGKEY_NONE
               && (f->signer_compromised.data
                   || rules->key_binding == NGX_DEVICE_AUTH_BIND_ALWAYS)
               && (f->key != NGX_DEVICE_AUTH_REGKEY_SHA256
                   || f->key_sha256 == NULL || f->cert_key == NULL
                   || memcmp(f->key_sha256, f->cert_key,
                             NGX_DEVICE_AUTH_KEY_LEN)
                      != 0))
    {
        /*
         * A forger with the signer's key can issue a certificate for a
         * registered serial, but not with the chip's key.
         */

        v->status = NGX_DEVICE_AUTH_V_KEY_MISMATCH;
        v->cause = f->signer_compromised.data
                   ? NGX_DEVICE_AUTH_CAUSE_SIGNER_COMPROMISED
                   : NGX_DEVICE_AUTH_CAUSE_KEY_BINDING;
        v->event = NGX_DEVICE_AUTH_EV_KEY_MISMATCH;

        ngx_device_auth_verdict_text(v, "certificate key spki_sha256 ", NULL,
                                     0);
        ngx_device_auth_verdict_hex(v, f->cert_key);

        if (f->key == NGX_DEVICE_AUTH_REGKEY_SHA256 && f->key_sha256) {
            ngx_device_auth_verdict_append(v, " is not the registered ",
                                           sizeof(" is not the registered ")
                                           - 1);
            ngx_device_auth_verdict_hex(v, f->key_sha256);

        } else {
            ngx_device_auth_verdict_append(v, ", the registered one is "
                                           "malformed",
                                           sizeof(", the registered one is "
                                                  "malformed") - 1);
        }

        if (f->signer_compromised.data) {
            ngx_device_auth_verdict_append(v, " (signer compromised: ",
                                   sizeof(" (signer compromised: ") - 1);
            ngx_device_auth_verdict_append(v, f->signer_compromised.data,
                                           f->signer_compromised.len);
            ngx_device_auth_verdict_append(v, ")", 1);
        }

        return;
    }

    if (f->sight == NGX_DEVICE_AUTH_SIGHT_DUPLICATE
        || f->sight == NGX_DEVICE_AUTH_SIGHT_QUARANTINED)
    {
        /* the event was sent by the script that counted the places */

        v->status = f->sight == NGX_DEVICE_AUTH_SIGHT_DUPLICATE
                    ? NGX_DEVICE_AUTH_V_DUPLICATE
                    : NGX_DEVICE_AUTH_V_QUARANTINED;
        ngx_device_auth_verdict_text(v, "", f->sight_reason.data,
                                     f->sight_reason.len);
        return;
    }

    v->status = NGX_DEVICE_AUTH_V_OK;
    v->reason[0] = '\0';
}


int
ngx_device_auth_is_quarantine(const ngx_device_auth_text_t *revoked)
{
    return revoked->data && revoked->len >= NGX_DEVICE_AUTH_QUARANTINE_LEN
           && memcmp(revoked->data, NGX_DEVICE_AUTH_QUARANTINE,
                     NGX_DEVICE_AUTH_QUARANTINE_LEN) == 0;
}


const char *
ngx_device_auth_verdict_name(int status)
{
    int  i;

    for (i = 0; ngx_device_auth_verdicts[i].name; i++) {
        if (ngx_device_auth_verdicts[i].status == status) {
            return ngx_device_auth_verdicts[i].name;
        }
    }

    return "error";
}


const char *
ngx_device_auth_event_name(int event)
{
    return event > 0 && event < NGX_DEVICE_AUTH_EV_N
           ? ngx_device_auth_events[event] : "";
}


/* reasons are set by hand with redis-cli: escape what is not printable */

void
ngx_device_auth_verdict_text(ngx_device_auth_verdict_t *v,
    const char *prefix, const char *s, size_t len)
{
    size_t  n;

    n = strlen(prefix);
    if (n > sizeof(v->reason) - 1) {
        n = sizeof(v->reason) - 1;
    }

    memcpy(v->reason, prefix, n);
    v->reason[n] = '\0';
    v->reason_len = n;

    ngx_device_auth_verdict_append(v, s, s ? len : 0);
}


void
ngx_device_auth_verdict_append(ngx_device_auth_verdict_t *v, const char *s,
    size_t len)
{
    size_t             i, n;
    unsigned char      c;
    static const char  hex[] = "0123456789abcdef";

    n = v->reason_len;

    for (i = 0; s && i < len && n + 4 < sizeof(v->reason); i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            v->reason[n++] = (char) c;
            continue;
        }

        v->reason[n++] = '\\';
        v->reason[n++] = 'x';
        v->reason[n++] = hex[c >> 4];
        v->reason[n++] = hex[c & 0xf];
    }

    v->reason[n] = '\0';
    v->reason_len = n;
}


static void
ngx_device_auth_verdict_hex(ngx_device_auth_verdict_t *v,
    const unsigned char *key)
{
    size_t             i;
    char               hex[2 * NGX_DEVICE_AUTH_KEY_LEN];
    static const char  digits[] = "0123456789abcdef";

    if (key == NULL) {
        ngx_device_auth_verdict_append(v, "?", 1);
        return;
    }

    for (i = 0; i < NGX_DEVICE_AUTH_KEY_LEN; i++) {
        hex[2 * i] = digits[key[i] >> 4];
        hex[2 * i + 1] = digits[key[i] & 0xf];
    }

    ngx_device_auth_verdict_append(v, hex, sizeof(hex));
}
