
/*
 * device-auth list revoked|quarantined|registered|signers
 *     [--profile generic] [--redis ADDR] [--prefix P]
 *
 * One line per key, fields separated by a tab, in the order SCAN finds
 * them (pipe to sort for another):
 *
 *   revoked      SERIAL  revoked|quarantined  TIME-LEFT|-  "REASON"
 *   quarantined  the same, the quarantines only
 *   registered   SERIAL  manifest|hand|neither  SPKI_SHA256|-  "VALUE"
 *   signers      ID  revoked|compromised  TIME-LEFT|-  "REASON"
 *
 * "revoked" lists every "{SN}:revoked" key, as the edge reads it: a
 * reason starting "quarantined:" is a quarantine.  A registration is
 * "manifest" when it has the import's format (its key recorded), "hand"
 * for free text, "neither" for a value that is not what it seems (device-
 * auth lint says why).  Values are escaped as show escapes them (a tab is
 * \x09).  SCAN never blocks Redis; each page of keys is read in one
 * pipelined round trip.  A summary goes to stderr; keys that match but
 * that no edge reads (a lower-case serial...) or of the wrong type are
 * counted there, not listed, and make the exit status 1.
 */


#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"
#include "device_auth_cli_redis.h"
#include "device_auth_cli_keys.h"


#define DEVICE_AUTH_CLI_LIST_REVOKED      0
#define DEVICE_AUTH_CLI_LIST_QUARANTINED  1
#define DEVICE_AUTH_CLI_LIST_REGISTERED   2
#define DEVICE_AUTH_CLI_LIST_SIGNERS      3

/* the counts */
#define DEVICE_AUTH_CLI_LIST_KEYS         0    /* read */
#define DEVICE_AUTH_CLI_LIST_A            1    /* revoked, manifest */
#define DEVICE_AUTH_CLI_LIST_B            2    /* quarantined, hand, comp. */
#define DEVICE_AUTH_CLI_LIST_C            3    /* neither */
#define DEVICE_AUTH_CLI_LIST_UNREAD       4    /* names no edge reads */
#define DEVICE_AUTH_CLI_LIST_WRONGTYPE    5
#define DEVICE_AUTH_CLI_LIST_N            6


typedef struct {
    device_auth_cli_redis_t   redis;
    int                       what;
    int                       profile;
    size_t                    plen;
    size_t                    n[DEVICE_AUTH_CLI_LIST_N];
    device_auth_cli_key_t    *k;
    size_t                    size;
} device_auth_cli_list_t;


static const char  *device_auth_cli_list_names[] = {
    "revoked", "quarantined", "registered", "signers", NULL
};


static int device_auth_cli_list_page(void *data, redisReply **keys,
    size_t n);
static int device_auth_cli_list_wanted(device_auth_cli_list_t *l,
    redisReply *key, device_auth_cli_key_t *k);
static void device_auth_cli_list_line(device_auth_cli_list_t *l,
    device_auth_cli_key_t *k, redisReply *value, redisReply *pttl);
static void device_auth_cli_list_summary(device_auth_cli_list_t *l);


int
device_auth_cli_list(int argc, char **argv)
{
    int                      rc;
    char                     glob[2 * DEVICE_AUTH_CLI_KEY_MAX];
    size_t                   g;
    device_auth_cli_list_t   l;

    memset(&l, 0, sizeof(device_auth_cli_list_t));
    device_auth_cli_redis_init(&l.redis);

    rc = device_auth_cli_redis_getopt("list", argc, argv, &l.redis,
                                      &l.profile);
    if (rc != DEVICE_AUTH_CLI_OK) {
        return rc;
    }

    if (optind + 1 != argc) {
        return device_auth_cli_usage("list");
    }

    for (l.what = 0; device_auth_cli_list_names[l.what]; l.what++) {
        if (strcmp(argv[optind], device_auth_cli_list_names[l.what]) == 0) {
            break;
        }
    }

    if (device_auth_cli_list_names[l.what] == NULL) {
        device_auth_cli_error("list", "\"%s\": revoked, quarantined, "
                              "registered or signers", argv[optind]);
        return DEVICE_AUTH_CLI_ERROR;
    }

    if (device_auth_cli_redis_connect(&l.redis) != 0) {
        device_auth_cli_error("list", "%s", l.redis.err);
        return DEVICE_AUTH_CLI_ERROR;
    }

    l.plen = strlen(l.redis.prefix);
    g = device_auth_cli_redis_glob(l.redis.prefix, glob, sizeof(glob) - 16);

    snprintf(glob + g, sizeof(glob) - g, "%s",
             l.what == DEVICE_AUTH_CLI_LIST_SIGNERS ? "signer:*"
             : l.what == DEVICE_AUTH_CLI_LIST_REGISTERED ? "{*}:registered"
             : "{*}:revoked");

    rc = DEVICE_AUTH_CLI_ERROR;

    if (device_auth_cli_redis_scan(&l.redis, glob, device_auth_cli_list_page,
                                   &l)
        != 0)
    {
        fflush(stdout);
        device_auth_cli_error("list", "%s", l.redis.err);

    } else {
        fflush(stdout);
        device_auth_cli_list_summary(&l);
        rc = l.n[DEVICE_AUTH_CLI_LIST_UNREAD]
             + l.n[DEVICE_AUTH_CLI_LIST_WRONGTYPE]
             ? DEVICE_AUTH_CLI_FAILED : DEVICE_AUTH_CLI_OK;
    }

    free(l.k);
    device_auth_cli_redis_close(&l.redis);

    return rc;
}


/* a page of keys: GET (and PTTL) of each, in one round trip */

static int
device_auth_cli_list_page(void *data, redisReply **keys, size_t n)
{
    int                      ttl;
    size_t                   i;
    redisReply              *value, *pttl;
    const char              *cmd[2];
    device_auth_cli_list_t  *l;
    device_auth_cli_key_t   *k;

    l = data;
    ttl = l->what != DEVICE_AUTH_CLI_LIST_REGISTERED;

    if (n > l->size) {
        k = realloc(l->k, n * sizeof(device_auth_cli_key_t));
        if (k == NULL) {
            snprintf(l->redis.err, sizeof(l->redis.err), "out of memory");
            return -1;
        }

        l->k = k;
        l->size = n;
    }

    for (i = 0; i < n; i++) {
        if (!device_auth_cli_list_wanted(l, keys[i], &l->k[i])) {
            l->k[i].type = DEVICE_AUTH_CLI_KEY_OTHER;
            continue;
        }

        cmd[0] = "GET";
        cmd[1] = keys[i]->str;

        if (device_auth_cli_redis_append(&l->redis, 2, cmd, NULL) != 0) {
            return -1;
        }

        cmd[0] = "PTTL";

        if (ttl && device_auth_cli_redis_append(&l->redis, 2, cmd, NULL) != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        if (l->k[i].type == DEVICE_AUTH_CLI_KEY_OTHER) {
            continue;
        }

        value = device_auth_cli_redis_reply(&l->redis);
        if (value == NULL) {
            return -1;
        }

        pttl = ttl ? device_auth_cli_redis_reply(&l->redis) : NULL;
        if (ttl && pttl == NULL) {
            freeReplyObject(value);
            return -1;
        }

        device_auth_cli_list_line(l, &l->k[i], value, pttl);

        freeReplyObject(value);
        if (pttl) {
            freeReplyObject(pttl);
        }
    }

    return 0;
}


/* 1: a key of the kind listed, whose name an edge reads */

static int
device_auth_cli_list_wanted(device_auth_cli_list_t *l, redisReply *key,
    device_auth_cli_key_t *k)
{
    if (key->len < l->plen) {
        return 0;
    }

    device_auth_cli_key_parse(key->str + l->plen, key->len - l->plen, k);

    if (l->what == DEVICE_AUTH_CLI_LIST_SIGNERS) {
        if (k->type != DEVICE_AUTH_CLI_KEY_SIGNER) {
            return 0;
        }

        if (!device_auth_cli_key_signer(k->id, k->id_len)
            || !(device_auth_cli_key_suffix(k, "revoked")
                 || device_auth_cli_key_suffix(k, "compromised")))
        {
            l->n[DEVICE_AUTH_CLI_LIST_UNREAD]++;
            return 0;
        }

        return 1;
    }

    if (k->type != DEVICE_AUTH_CLI_KEY_DEVICE || !k->braces) {
        return 0;
    }

    if (!device_auth_cli_key_serial(k->id, k->id_len, l->profile)
        || !device_auth_cli_key_suffix(k, l->what
                                          == DEVICE_AUTH_CLI_LIST_REGISTERED
                                          ? "registered" : "revoked"))
    {
        l->n[DEVICE_AUTH_CLI_LIST_UNREAD]++;
        return 0;
    }

    return 1;
}


static void
device_auth_cli_list_line(device_auth_cli_list_t *l, device_auth_cli_key_t *k,
    redisReply *value, redisReply *pttl)
{
    int                              kind, q;
    char                             left[48];
    const char                      *status, *why;
    ngx_device_auth_registration_t   r;

    if (value->type == REDIS_REPLY_NIL) {
        return;                              /* gone since the SCAN */
    }

    if (value->type != REDIS_REPLY_STRING) {
        l->n[DEVICE_AUTH_CLI_LIST_WRONGTYPE]++;
        return;
    }

    l->n[DEVICE_AUTH_CLI_LIST_KEYS]++;

    left[0] = '-';
    left[1] = '\0';

    if (pttl != NULL && pttl->type == REDIS_REPLY_INTEGER
        && pttl->integer >= 0)
    {
        device_auth_cli_duration(left, sizeof(left), pttl->integer);
    }

    switch (l->what) {

    case DEVICE_AUTH_CLI_LIST_REGISTERED:
        kind = ngx_device_auth_registration_kind(value->str, value->len,
                                                 &why);
        l->n[DEVICE_AUTH_CLI_LIST_A + kind]++;

        snprintf(left, sizeof(left), "-");
        status = kind == NGX_DEVICE_AUTH_REGISTRATION_HAND ? "hand"
                 : kind == NGX_DEVICE_AUTH_REGISTRATION_NEITHER ? "neither"
                 : "manifest";

        if (kind == NGX_DEVICE_AUTH_REGISTRATION_IMPORT
            && ngx_device_auth_registration_parse(value->str, value->len, &r)
               == 0)
        {
            fwrite(k->id, 1, k->id_len, stdout);
            printf("\t%s\t%s\t\"", status, r.spki_sha256);

        } else {
            fwrite(k->id, 1, k->id_len, stdout);
            printf("\t%s\t-\t\"", status);
        }

        device_auth_cli_print(stdout, value->str, value->len);
        printf("\"\n");
        return;

    case DEVICE_AUTH_CLI_LIST_SIGNERS:
        q = device_auth_cli_key_suffix(k, "compromised");
        l->n[DEVICE_AUTH_CLI_LIST_A + q]++;
        status = q ? "compromised" : "revoked";
        break;

    default:
        q = value->len >= 12 && memcmp(value->str, "quarantined:", 12) == 0;
        l->n[DEVICE_AUTH_CLI_LIST_A + q]++;

        if (l->what == DEVICE_AUTH_CLI_LIST_QUARANTINED && !q) {
            return;
        }

        status = q ? "quarantined" : "revoked";
    }

    fwrite(k->id, 1, k->id_len, stdout);
    printf("\t%s\t%s\t\"", status, left);
    device_auth_cli_print(stdout, value->str, value->len);
    printf("\"\n");
}


static void
device_auth_cli_list_summary(device_auth_cli_list_t *l)
{
    size_t  *n;

    n = l->n;

    switch (l->what) {

    case DEVICE_AUTH_CLI_LIST_REGISTERED:
        fprintf(stderr, "list: %zu registered: %zu from a manifest (the "
                "chip's key recorded), %zu by hand, %zu neither",
                n[DEVICE_AUTH_CLI_LIST_KEYS], n[DEVICE_AUTH_CLI_LIST_A],
                n[DEVICE_AUTH_CLI_LIST_B], n[DEVICE_AUTH_CLI_LIST_C]);
        break;

    case DEVICE_AUTH_CLI_LIST_SIGNERS:
        fprintf(stderr, "list: %zu signer keys: %zu revoked, %zu compromised",
                n[DEVICE_AUTH_CLI_LIST_KEYS], n[DEVICE_AUTH_CLI_LIST_A],
                n[DEVICE_AUTH_CLI_LIST_B]);
        break;

    case DEVICE_AUTH_CLI_LIST_QUARANTINED:
        fprintf(stderr, "list: %zu quarantined, of %zu revoked keys",
                n[DEVICE_AUTH_CLI_LIST_B], n[DEVICE_AUTH_CLI_LIST_KEYS]);
        break;

    default:
        fprintf(stderr, "list: %zu revoked keys: %zu revoked, %zu "
                "quarantined", n[DEVICE_AUTH_CLI_LIST_KEYS],
                n[DEVICE_AUTH_CLI_LIST_A], n[DEVICE_AUTH_CLI_LIST_B]);
    }

    if (n[DEVICE_AUTH_CLI_LIST_UNREAD] + n[DEVICE_AUTH_CLI_LIST_WRONGTYPE]) {
        fprintf(stderr, "; not listed: %zu keys whose name no edge reads, "
                "%zu of the wrong type (device-auth lint names them)",
                n[DEVICE_AUTH_CLI_LIST_UNREAD],
                n[DEVICE_AUTH_CLI_LIST_WRONGTYPE]);
    }

    fprintf(stderr, "\n");
}
