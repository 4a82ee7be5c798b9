
/*
 * device-auth: subcommand dispatch, usage, and the little every
 * subcommand shares.
 */


#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "ngx_device_auth_cert.h"
#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"


static const device_auth_cli_command_t  device_auth_cli_commands[] = {

    { "check",
      "[-p atecc608|generic] [-d depth] -r roots.pem [-s signers.pem] "
      "device.pem [chain.pem ...]",
      "what an edge with these pins would decide for a certificate",
      device_auth_cli_check },

    { "import-manifest",
      "--roots F [--signers F] --log-signers F [--redis ADDR] [--prefix P] "
      "[--dry-run] [--replace] [--quiet] [--jobs N] MANIFEST...",
      "verify Microchip manifests and register their devices in Redis",
      device_auth_cli_import },

    { "show",
      "SERIAL [--redis ADDR] [--prefix P] [--events N]",
      "everything Redis holds about one device",
      device_auth_cli_show },

    { NULL, NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    const device_auth_cli_command_t  *c;

    /* before any thread: jansson's hash seed is set once, here */
    json_object_seed(0);

    if (argc < 2 || strcmp(argv[1], "help") == 0
        || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
    {
        if (argc > 2) {
            return device_auth_cli_usage(argv[2]);
        }

        printf("usage: device-auth COMMAND [ARGS...]\n\ncommands:\n");

        for (c = device_auth_cli_commands; c->name; c++) {
            printf("  %-16s %s\n", c->name, c->summary);
        }

        printf("\n\"device-auth help COMMAND\" shows its arguments; see "
               "docs/operations.md.\n");

        return argc < 2 ? DEVICE_AUTH_CLI_ERROR : DEVICE_AUTH_CLI_OK;
    }

    for (c = device_auth_cli_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            return c->run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "device-auth: unknown command \"%s\" (device-auth help "
            "lists them)\n", argv[1]);

    return DEVICE_AUTH_CLI_ERROR;
}


int
device_auth_cli_usage(const char *name)
{
    const device_auth_cli_command_t  *c;

    for (c = device_auth_cli_commands; c->name; c++) {
        if (strcmp(name, c->name) == 0) {
            fprintf(stderr, "usage: device-auth %s %s\n", c->name, c->usage);
            return DEVICE_AUTH_CLI_ERROR;
        }
    }

    fprintf(stderr, "device-auth: unknown command \"%s\"\n", name);

    return DEVICE_AUTH_CLI_ERROR;
}


void
device_auth_cli_error(const char *name, const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "device-auth %s: ", name);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


/* a whole decimal number within [min, max] */

int
device_auth_cli_number(const char *s, long min, long max, long *n)
{
    char  *end;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    *n = strtol(s, &end, 10);

    return *end != '\0' || *n < min || *n > max ? -1 : 0;
}


/*
 * The canonical serial, as an edge writes it, into NGX_DEVICE_AUTH_SERIAL_MAX
 * + 1 bytes: an atecc608 serial (18 hex digits, "sn" before them or not)
 * upper-cased; any other, a generic profile's CN, as it is.
 */

int
device_auth_cli_serial(const char *arg, char *serial)
{
    size_t  i, len;

    len = strlen(arg);

    if (len == 20 && (arg[0] == 's' || arg[0] == 'S')
        && (arg[1] == 'n' || arg[1] == 'N')
        && strspn(arg + 2, "0123456789abcdefABCDEF") == 18)
    {
        arg += 2;
        len = 18;
    }

    if (len == 18 && strspn(arg, "0123456789abcdefABCDEF") == 18) {
        for (i = 0; i < 18; i++) {
            serial[i] = (arg[i] >= 'a' && arg[i] <= 'f')
                        ? (char) (arg[i] - 'a' + 'A') : arg[i];
        }

        serial[18] = '\0';

        return 0;
    }

    if (len == 0 || len > NGX_DEVICE_AUTH_SERIAL_MAX || arg[0] == ' '
        || arg[len - 1] == ' '
        || !ngx_device_auth_registration_token(arg, len,
                                               NGX_DEVICE_AUTH_SERIAL_MAX,
                                               " ._:@/+=-"))
    {
        return -1;
    }

    memcpy(serial, arg, len + 1);

    return 0;
}


/* what Redis or a file holds, shown on a terminal: bytes escaped */

void
device_auth_cli_print(FILE *f, const char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            fputc(c, f);
        } else {
            fprintf(f, "\\x%02X", c);
        }
    }
}


/* seconds, for the durations shown with the progress */

double
device_auth_cli_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}
