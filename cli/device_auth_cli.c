
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


static int device_auth_cli_serial_generic(const char *arg, size_t len,
    char *serial);


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

    { "revoke",
      "SERIAL... | --from FILE  --reason TEXT  [--signer [--compromised]] "
      "[--by NAME] [--dry-run] [--quiet] [--profile generic] [--redis ADDR] "
      "[--prefix P]",
      "revoke devices (or signers), from the command line or a file",
      device_auth_cli_revoke },

    { "unrevoke",
      "SERIAL... | --from FILE  [--reason TEXT] [--signer [--compromised]] "
      "[--by NAME] [--dry-run] [--quiet] [--profile generic] [--redis ADDR] "
      "[--prefix P]",
      "lift revocations (a quarantine's places forgotten too)",
      device_auth_cli_unrevoke },

    { "quarantine",
      "SERIAL... | --from FILE  --for DURATION --reason TEXT [--by NAME] "
      "[--dry-run] [--quiet] [--profile generic] [--redis ADDR] [--prefix P]",
      "refuse devices for a while (never replaces a revocation)",
      device_auth_cli_quarantine },

    { "release",
      "SERIAL... | --from FILE  [--reason TEXT] [--by NAME] [--dry-run] "
      "[--quiet] [--profile generic] [--redis ADDR] [--prefix P]",
      "lift quarantines, the places that made them included",
      device_auth_cli_release },

    { "register",
      "SERIAL... | --from FILE  --batch NAME [--replace] [--by NAME] "
      "[--dry-run] [--quiet] [--profile generic] [--redis ADDR] [--prefix P]",
      "register a manufacturing batch by hand, without a manifest",
      device_auth_cli_registry },

    { "unregister",
      "SERIAL... | --from FILE  [--reason TEXT] [--by NAME] [--dry-run] "
      "[--quiet] [--profile generic] [--redis ADDR] [--prefix P]",
      "remove devices from the manufacturing registry",
      device_auth_cli_unregister },

    { "list",
      "revoked|quarantined|registered|signers [--profile generic] "
      "[--redis ADDR] [--prefix P]",
      "what is revoked, quarantined (time left), registered (its key)",
      device_auth_cli_list },

    { "lint",
      "[--profile generic] [--redis ADDR] [--prefix P]",
      "find the keys an edge would never read, or fails on",
      device_auth_cli_lint },

    { "pins",
      "[--days N] FILE...",
      "ids, subjects and expiry of pinned certificates, as the edge sees "
      "them",
      device_auth_cli_pins },

    { "count",
      "[--days N] [--redis ADDR] [--prefix P]",
      "distinct devices the edges saw today (and the days before)",
      device_auth_cli_count },

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

    return device_auth_cli_serial_generic(arg, len, serial);
}


/* a CN of profile generic, as it is */

static int
device_auth_cli_serial_generic(const char *arg, size_t len, char *serial)
{
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


/*
 * The serial of a command that writes.  With profile atecc608 (the
 * default): 18 hex digits, "sn" before them or not, upper-cased; anything
 * else is refused, never taken for a generic CN that no edge of the fleet
 * computes (a digit missing, an "O" for a "0").  With profile generic:
 * the CN as it is, as the edge takes it.
 */

int
device_auth_cli_serial_profile(const char *arg, int profile, char *serial)
{
    if (profile == NGX_DEVICE_AUTH_PROFILE_GENERIC) {
        return device_auth_cli_serial_generic(arg, strlen(arg), serial);
    }

    if (device_auth_cli_serial(arg, serial) != 0) {
        return -1;
    }

    return strlen(serial) == 18
           && strspn(serial, "0123456789ABCDEF") == 18 ? 0 : -1;
}


/*
 * A signer id as the edges write it, 64 lowercase hex digits, into
 * NGX_DEVICE_AUTH_HEX_LEN + 1 bytes, from what an operator may paste:
 * upper case, the colons of "openssl x509 -fingerprint -sha256", with its
 * "sha256 Fingerprint=" before it
 */

int
device_auth_cli_signer_id(const char *arg, char *id)
{
    size_t       n;
    const char  *p;

    p = strrchr(arg, '=');
    p = p ? p + 1 : arg;

    for (n = 0; *p; p++) {

        if (*p == ':') {
            if (n == 0 || n % 2 || p[1] == ':' || p[1] == '\0') {
                return -1;
            }
            continue;
        }

        if (n == NGX_DEVICE_AUTH_HEX_LEN
            || strchr("0123456789abcdefABCDEF", *p) == NULL)
        {
            return -1;
        }

        id[n++] = (*p >= 'A' && *p <= 'F') ? (char) (*p - 'A' + 'a') : *p;
    }

    id[n] = '\0';

    return n == NGX_DEVICE_AUTH_HEX_LEN ? 0 : -1;
}


/*
 * A duration as nginx writes them: "90", "90s", "30m", "1h30m", "1d",
 * "2w"; a bare number is seconds.  1 second to max.
 */

int
device_auth_cli_seconds(const char *s, long long max, long long *sec)
{
    int          digits;
    long long    n, unit, total;
    const char  *p;

    total = 0;

    for (p = s; *p; /* void */) {
        n = 0;

        for (digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
            n = n * 10 + (*p - '0');
            if (n > max) {
                return -1;
            }
        }

        if (digits == 0) {
            return -1;
        }

        switch (*p) {
        case '\0':
            unit = 1;
            break;
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            return -1;
        }

        if (*p) {
            p++;
        }

        if (n > (max - total) / unit) {
            return -1;
        }

        total += n * unit;
    }

    if (total == 0) {
        return -1;
    }

    *sec = total;

    return 0;
}


/* "9m52s", "2d0h0m5s": milliseconds rounded up to the second */

void
device_auth_cli_duration(char *buf, size_t size, long long ms)
{
    long long  s;

    s = (ms + 999) / 1000;

    if (s >= 86400) {
        snprintf(buf, size, "%lldd%lldh%lldm%llds", s / 86400, s / 3600 % 24,
                 s / 60 % 60, s % 60);

    } else if (s >= 3600) {
        snprintf(buf, size, "%lldh%lldm%llds", s / 3600, s / 60 % 60, s % 60);

    } else if (s >= 60) {
        snprintf(buf, size, "%lldm%llds", s / 60, s % 60);

    } else {
        snprintf(buf, size, "%llds", s);
    }
}


/* the UTC day of a time in ms since the epoch: "2026-11-30" */

void
device_auth_cli_date(long long ms, char *buf, size_t size)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);

    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
    {
        snprintf(buf, size, "1970-01-01");
    }
}
