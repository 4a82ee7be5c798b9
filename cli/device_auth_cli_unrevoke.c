
/*
 * device-auth unrevoke SERIAL... [--from FILE] [--reason TEXT] [--by NAME]
 *     [--dry-run] [--quiet] [--profile generic] [--redis ADDR] [--prefix P]
 * device-auth unrevoke --signer ID... [--compromised] ...
 *
 * Deletes "{prefix}{SN}:revoked": the device is let in again from its
 * next request on.  When what it deletes is a quarantine, it also forgets
 * the device's places ("{prefix}{SN}:seen"), as release does: they would
 * quarantine it again at its next request.  The reason, if given, goes to
 * the audit stream.  With --signer: "{prefix}signer:<id>:revoked", or
 * with --compromised "...:compromised".
 */


#include <stdio.h>
#include <string.h>

#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_unrevoke_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_unrevoke_op = {
    "unrevoke", "unrevoked", "compromised marks lifted", "revoked",
    DEVICE_AUTH_CLI_CHANGE_REASON | DEVICE_AUTH_CLI_CHANGE_SIGNER, 0,
    device_auth_cli_unrevoke_result
};


int
device_auth_cli_unrevoke(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_unrevoke_op, argc, argv);
}


static void
device_auth_cli_unrevoke_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    const char  *old;

    old = device_auth_cli_change_quote(c, 0, f->old);

    if (f->result == DEVICE_AUTH_CLI_CHANGE_UNCHANGED) {
        (void) device_auth_cli_input_message(it, it->outcome, "%s",
                                             c->compromised
                                             ? "not marked compromised"
                                             : "not revoked");

    } else if (!c->signer && f->old->len >= 12
               && memcmp(f->old->str, "quarantined:", 12) == 0)
    {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "unrevoked, was quarantined: %s (%s)%s", old,
                   device_auth_cli_change_left(c, f->pttl),
                   device_auth_cli_change_places(c, f->places));

    } else {
        (void) device_auth_cli_input_message(it, it->outcome, "%s, was %s%s%s",
                                             c->compromised
                                             ? "compromised mark lifted"
                                             : "unrevoked", old,
                                             f->pttl >= 0 ? ", " : "",
                                             f->pttl >= 0
                                             ? device_auth_cli_change_left(
                                                   c, f->pttl)
                                             : "");
    }
}
