
/*
 * device-auth release SERIAL... [--from FILE] [--reason TEXT] [--by NAME]
 *     [--dry-run] [--quiet] [--profile generic] [--redis ADDR] [--prefix P]
 *
 * Lifts a quarantine, the edge's or one set by hand, for good: deletes
 * "{prefix}{SN}:revoked" when it is a quarantine, and the device's places
 * ("{prefix}{SN}:seen"), which would otherwise quarantine it again at its
 * next request.  Both go in one step.  A revocation is never lifted by a
 * release (the entry is refused: device-auth unrevoke); a device that is
 * not quarantined only has its places forgotten.
 */


#include <stdio.h>

#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_release_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_release_op = {
    "release", "released", "released", "revoked",
    DEVICE_AUTH_CLI_CHANGE_REASON, 0,
    device_auth_cli_release_result
};


int
device_auth_cli_release(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_release_op, argc, argv);
}


static void
device_auth_cli_release_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    const char  *old;

    old = device_auth_cli_change_quote(c, 0, f->old);

    if (f->result == DEVICE_AUTH_CLI_CHANGE_REFUSED) {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "refused: revoked, not quarantined: %s: release lifts "
                   "only quarantines (device-auth unrevoke lifts a "
                   "revocation)", old);

    } else if (f->result == DEVICE_AUTH_CLI_CHANGE_UNCHANGED) {
        (void) device_auth_cli_input_message(it, it->outcome,
                                             "not quarantined, no places to "
                                             "forget");

    } else if (f->old->type == REDIS_REPLY_STRING) {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "released, was %s (%s)%s", old,
                   device_auth_cli_change_left(c, f->pttl),
                   device_auth_cli_change_places(c, f->places));

    } else {
        (void) device_auth_cli_input_message(it, it->outcome,
                   "not quarantined%s",
                   device_auth_cli_change_places(c, f->places));
    }
}
