
/*
 * device-auth revoke, unrevoke, quarantine, release, register, unregister:
 * what they share (device_auth_cli_change.c).  Each takes serials (or,
 * revoke and unrevoke, signer ids) as arguments and from --from files
 * (device_auth_cli_input.h), validates every one before anything is
 * written, then changes each in one script call, pipelined: the script
 * reads what is there, decides (a quarantine never replaces a revocation,
 * a release never lifts one), appends the change to the audit stream
 * "{prefix}audit" and makes it, in one atomic step.  One line per entry
 * says what became of it, then a summary; exit 1 when an entry was
 * refused, 2 when the command could not do its work.
 *
 * Each command's file gives its name, its options and the words of its
 * lines (the "result" handler).
 */


#ifndef _DEVICE_AUTH_CLI_CHANGE_H_INCLUDED_
#define _DEVICE_AUTH_CLI_CHANGE_H_INCLUDED_


#include "ngx_device_auth_cert.h"
#include "device_auth_cli_input.h"
#include "device_auth_cli_redis.h"


/* options a command takes */
#define DEVICE_AUTH_CLI_CHANGE_REASON      0x01  /* --reason */
#define DEVICE_AUTH_CLI_CHANGE_BATCH       0x02  /* --batch */
#define DEVICE_AUTH_CLI_CHANGE_FOR         0x04  /* --for */
#define DEVICE_AUTH_CLI_CHANGE_SIGNER      0x08  /* --signer, --compromised */
#define DEVICE_AUTH_CLI_CHANGE_REPLACE     0x10  /* --replace */

/* what the script decided */
#define DEVICE_AUTH_CLI_CHANGE_DONE        0
#define DEVICE_AUTH_CLI_CHANGE_UNCHANGED   1
#define DEVICE_AUTH_CLI_CHANGE_KEPT        2
#define DEVICE_AUTH_CLI_CHANGE_REFUSED     3

#define DEVICE_AUTH_CLI_VALUE_MAX          1024
#define DEVICE_AUTH_CLI_AUDIT_MAXLEN       "1000000"


typedef struct device_auth_cli_change_s  device_auth_cli_change_t;


/* what the script found and decided for one entry */
typedef struct {
    int            result;
    redisReply    *old;           /* the value there: string, or nil */
    long long      pttl;          /* its PTTL, -1 none, -2 absent */
    long long      places;        /* :seen, -1 of the wrong type */
    int            registered;    /* 0 no, 1 yes, 2 cannot tell */
    redisReply    *value;         /* the registration, or the error */
} device_auth_cli_found_t;


typedef struct {
    const char    *name;          /* the command, and the audit's "what" */
    const char    *done;          /* "revoked", for the summary */
    const char    *compromised;   /* the same, with --compromised */
    const char    *key;           /* the device's key it changes */
    unsigned       options;       /* DEVICE_AUTH_CLI_CHANGE_* */
    unsigned       value;         /* the value is required (write) */

    /* the line of an entry, from what the script found */
    void         (*result)(device_auth_cli_change_t *c,
                           device_auth_cli_item_t *it,
                           device_auth_cli_found_t *f);
} device_auth_cli_change_op_t;


struct device_auth_cli_change_s {
    const device_auth_cli_change_op_t  *op;
    device_auth_cli_redis_t             redis;
    device_auth_cli_input_t             in;

    int                                 signer;      /* --signer */
    int                                 compromised;
    int                                 profile;
    int                                 dry_run;
    int                                 replace;
    int                                 quiet;
    long long                           seconds;     /* --for */
    const char                         *value;       /* --reason, --batch */
    const char                         *by;
    char                                user[160];
    char                                host[256];
    char                                sha[48];     /* of the script */

    /* quoted values and durations, for the lines */
    char                                quoted[2][4 * DEVICE_AUTH_CLI_VALUE_MAX
                                                  + 8];
    char                                left[64];
    char                                places[64];
};


int device_auth_cli_change(const device_auth_cli_change_op_t *op, int argc,
    char **argv);
const char *device_auth_cli_change_quote(device_auth_cli_change_t *c, int n,
    redisReply *r);
const char *device_auth_cli_change_left(device_auth_cli_change_t *c,
    long long pttl);
const char *device_auth_cli_change_places(device_auth_cli_change_t *c,
    long long places);


#endif /* _DEVICE_AUTH_CLI_CHANGE_H_INCLUDED_ */
