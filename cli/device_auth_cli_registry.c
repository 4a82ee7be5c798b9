
/*
 * device-auth register SERIAL... [--from FILE] --batch NAME [--replace]
 *     [--by NAME] [--dry-run] [--quiet] [--profile generic] [--redis ADDR]
 *     [--prefix P]
 *
 * A manufacturing batch registered by hand, without a manifest: sets
 * "{prefix}{SN}:registered" to the batch name (or the file's batch
 * column).  A value there is never overwritten silently: the same is
 * "unchanged", another is kept and reported, or replaced with --replace;
 * a registration that records the chip's key (an import's) is never
 * replaced by one that does not, even with --replace.
 */


#include <stdio.h>

#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_registry_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_registry_op = {
    "register", "registered", "registered", "registered",
    DEVICE_AUTH_CLI_CHANGE_BATCH | DEVICE_AUTH_CLI_CHANGE_REPLACE, 1,
    device_auth_cli_registry_result
};


int
device_auth_cli_registry(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_registry_op, argc, argv);
}


static void
device_auth_cli_registry_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    const char  *old;

    old = device_auth_cli_change_quote(c, 0, f->old);

    switch (f->result) {

    case DEVICE_AUTH_CLI_CHANGE_UNCHANGED:
        (void) device_auth_cli_input_message(it, it->outcome,
                                             "already registered, the same "
                                             "value");
        break;

    case DEVICE_AUTH_CLI_CHANGE_KEPT:
        (void) device_auth_cli_input_message(it, it->outcome,
                   "already registered, other value kept: %s (--replace "
                   "replaces it)", old);
        break;

    case DEVICE_AUTH_CLI_CHANGE_REFUSED:
        (void) device_auth_cli_input_message(it, it->outcome,
                   "refused: registered with the chip's key: %s; a value "
                   "without a key does not replace it (device-auth "
                   "unregister first)", old);
        break;

    default:
        if (f->old->type == REDIS_REPLY_STRING) {
            (void) device_auth_cli_input_message(it, it->outcome,
                                                 "registered, replacing %s",
                                                 old);
        } else {
            (void) device_auth_cli_input_message(it, it->outcome,
                                                 "registered");
        }
    }
}
