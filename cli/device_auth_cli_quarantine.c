
/*
 * device-auth quarantine SERIAL... [--from FILE] --for DURATION
 *     --reason TEXT [--by NAME] [--dry-run] [--quiet] [--profile generic]
 *     [--redis ADDR] [--prefix P]
 *
 * Sets "{prefix}{SN}:revoked" to "quarantined: <reason>" with the
 * duration as its TTL, as the edge does for a clone: 403 (quarantined)
 * until it ends.  A quarantine there is replaced (a new reason and
 * duration); a revocation is not: a quarantine would make it temporary,
 * the entry is refused.
 */


#include <stdio.h>

#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_quarantine_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_quarantine_op = {
    "quarantine", "quarantined", "quarantined", "revoked",
    DEVICE_AUTH_CLI_CHANGE_REASON | DEVICE_AUTH_CLI_CHANGE_FOR, 1,
    device_auth_cli_quarantine_result
};


int
device_auth_cli_quarantine(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_quarantine_op, argc, argv);
}


static void
device_auth_cli_quarantine_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    char         span[48];
    const char  *old;

    old = device_auth_cli_change_quote(c, 0, f->old);
    device_auth_cli_duration(span, sizeof(span), c->seconds * 1000);

    if (f->result == DEVICE_AUTH_CLI_CHANGE_REFUSED) {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "refused: revoked, not quarantined: %s: a quarantine "
                   "never replaces a revocation (device-auth unrevoke "
                   "first)", old);

    } else if (f->old->type == REDIS_REPLY_STRING) {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "quarantined for %s, replacing %s (%s)", span, old,
                   device_auth_cli_change_left(c, f->pttl));

    } else {
        (void) device_auth_cli_input_message(it, it->outcome,
                                             "quarantined for %s", span);
    }
}
