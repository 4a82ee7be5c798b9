
/*
 * device-auth unregister SERIAL... [--from FILE] [--reason TEXT]
 *     [--by NAME] [--dry-run] [--quiet] [--profile generic] [--redis ADDR]
 *     [--prefix P]
 *
 * Deletes "{prefix}{SN}:registered": with device_auth_registry on, or
 * under a compromised signer, the device gets 403 (unregistered) from its
 * next request on.  The line says what the registration was.
 */


#include <stdio.h>

#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


static void device_auth_cli_unregister_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f);


static const device_auth_cli_change_op_t  device_auth_cli_unregister_op = {
    "unregister", "unregistered", "unregistered", "registered",
    DEVICE_AUTH_CLI_CHANGE_REASON, 0,
    device_auth_cli_unregister_result
};


int
device_auth_cli_unregister(int argc, char **argv)
{
    return device_auth_cli_change(&device_auth_cli_unregister_op, argc, argv);
}


static void
device_auth_cli_unregister_result(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, device_auth_cli_found_t *f)
{
    if (f->result == DEVICE_AUTH_CLI_CHANGE_UNCHANGED) {
        (void) device_auth_cli_input_message(it, it->outcome,
                                             "not registered");
        return;
    }

    (void) device_auth_cli_input_message(it, it->outcome,
                                         "unregistered, was %s",
                                         device_auth_cli_change_quote(c, 0,
                                                                      f->old));
}
