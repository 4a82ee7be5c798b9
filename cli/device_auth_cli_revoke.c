
/*
 * device-auth revoke SERIAL... [--from FILE] --reason TEXT [--by NAME]
 *     [--dry-run] [--quiet] [--profile generic] [--redis ADDR] [--prefix P]
 * device-auth revoke --signer ID... [--compromised] --reason TEXT ...
 *
 * Sets "{prefix}{SN}:revoked" to the reason, without expiry: the device
 * gets 403 from its next request on, at every edge.  A reason per entry
 * may come from the file (a second column); a reason starting
 * "quarantined:" is refused (that is a quarantine: device-auth
 * quarantine).  A quarantine there becomes a revocation; another reason
 * is replaced, and the line says what it was.  The line also shows the
 * device's registration: its key (spki_sha256) when an import recorded
 * one.  With --signer the entries are signer ids (colons and upper case
 * accepted): "{prefix}signer:<id>:revoked", or with --compromised
 * "...:compromised".
 */


#include <stdio.h>
#include <string.h>

#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_revoke_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_revoke_op = {
    "revoke", "revoked", "marked compromised", "revoked",
    DEVICE_AUTH_CLI_CHANGE_REASON | DEVICE_AUTH_CLI_CHANGE_SIGNER, 1,
    device_auth_cli_revoke_result
};


int
device_auth_cli_revoke(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_revoke_op, argc, argv);
}


static void
device_auth_cli_revoke_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    char                             reg[4 * DEVICE_AUTH_CLI_VALUE_MAX + 64];
    const char                      *what, *old;
    ngx_device_auth_registration_t   r;

    what = c->compromised ? "marked compromised" : "revoked";
    reg[0] = '\0';

    /* the device's registration, its key when one was recorded */

    if (!c->signer) {
        if (f->registered == 0) {
            snprintf(reg, sizeof(reg), "; not registered");

        } else if (f->registered == 2 || f->value->type != REDIS_REPLY_STRING)
        {
            snprintf(reg, sizeof(reg), "; registered: cannot tell: %s",
                     device_auth_cli_change_quote(c, 1, f->value));

        } else if (ngx_device_auth_registration_parse(f->value->str,
                                                      f->value->len, &r)
                   == 0)
        {
            snprintf(reg, sizeof(reg), "; registered, key spki_sha256 %s",
                     r.spki_sha256);

        } else {
            snprintf(reg, sizeof(reg), "; registered by hand: %s",
                     device_auth_cli_change_quote(c, 1, f->value));
        }
    }

    old = device_auth_cli_change_quote(c, 0, f->old);

    if (f->result == DEVICE_AUTH_CLI_CHANGE_UNCHANGED) {
        (void) device_auth_cli_input_message(it, it->outcome,
                                             "already %s, the same reason%s",
                                             what, reg);

    } else if (f->old->type != REDIS_REPLY_STRING) {
        (void) device_auth_cli_input_message(it, it->outcome, "%s%s", what,
                                             reg);

    } else if (f->old->len >= 12
               && memcmp(f->old->str, "quarantined:", 12) == 0)
    {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "%s, was quarantined: %s (%s)%s", what, old,
                   device_auth_cli_change_left(c, f->pttl), reg);

    } else {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "%s, replacing %s%s%s%s%s", what, old,
                   f->pttl >= 0 ? " (" : "",
                   f->pttl >= 0 ? device_auth_cli_change_left(c, f->pttl) : "",
                   f->pttl >= 0 ? ")" : "", reg);
    }
}
