
/*
 * device-auth lint [--profile generic] [--redis ADDR] [--prefix P]
 *
 * Redis accepts any key: this finds those an edge would never read, or
 * fails on.  Every key of the database is looked at (SCAN, never
 * blocking; the types and the values that matter read in pipelined round
 * trips a page at a time), and one line is printed per finding:
 *
 *   CODE "KEY": what is wrong[; what the edge reads instead]
 *
 *   lower-case-serial, sn-prefix   P{0123a1...}:revoked, P{sn0123...}:...
 *   not-a-serial      braces around what no edge computes (17 digits...)
 *   no-braces         P0123A1B2C3D4E5F6A7:revoked
 *   unknown-suffix    P{SN}:revokd, Psigner:<id>:revoked2
 *   signer-id         upper case, colons, another length
 *   wrong-type        a hash at :revoked, a string at :seen...: the edge
 *                     fails on it (the fail mode decides)
 *   registered-value  neither the format of an import nor free text
 *   control-characters a reason with a CR (a CRLF file) or another one
 *   not-hyperloglog   a devices:<day> key PFCOUNT cannot read
 *   unknown-key       under the prefix, of no kind the edge knows
 *   outside-prefix    a device or signer key under another prefix (a
 *                     "device_auth" without its ":")
 *
 * Then a summary: the keys, the findings, how the registrations were
 * written (the import's format, or free text by hand: both valid).  Exit 1
 * when something was found.  The canary (device_auth_redis_canary) is the
 * key DEVICE_AUTH_CANARY names under the prefix, "canary" by default.
 */


#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"
#include "device_auth_cli_redis.h"
#include "device_auth_cli_keys.h"


/* what is read of a key after its TYPE */
#define DEVICE_AUTH_CLI_LINT_NOTHING     0
#define DEVICE_AUTH_CLI_LINT_REASON      1      /* :revoked, signers */
#define DEVICE_AUTH_CLI_LINT_REGISTERED  2
#define DEVICE_AUTH_CLI_LINT_HLL         3


typedef struct {
    int                     ours;       /* under the prefix */
    int                     read;       /* DEVICE_AUTH_CLI_LINT_* */
    const char             *type;       /* the type expected */
    device_auth_cli_key_t   k;
} device_auth_cli_lint_key_t;


typedef struct {
    device_auth_cli_redis_t      redis;
    int                          profile;
    const char                  *canary;    /* DEVICE_AUTH_CANARY */
    size_t                       plen;
    size_t                       ours;
    size_t                       others;
    size_t                       findings;
    size_t                       registered[3];
    device_auth_cli_lint_key_t  *keys;
    size_t                       size;
} device_auth_cli_lint_t;


static int device_auth_cli_lint_page(void *data, redisReply **keys,
    size_t n);
static void device_auth_cli_lint_name(device_auth_cli_lint_t *l,
    redisReply *key, device_auth_cli_lint_key_t *lk);
static void device_auth_cli_lint_device(device_auth_cli_lint_t *l,
    redisReply *key, device_auth_cli_lint_key_t *lk);
static void device_auth_cli_lint_signer(device_auth_cli_lint_t *l,
    redisReply *key, device_auth_cli_lint_key_t *lk);
static void device_auth_cli_lint_outside(device_auth_cli_lint_t *l,
    redisReply *key);
static void device_auth_cli_lint_value(device_auth_cli_lint_t *l,
    redisReply *key, device_auth_cli_lint_key_t *lk, redisReply *value);
static void device_auth_cli_lint_found(device_auth_cli_lint_t *l,
    const char *code, redisReply *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


int
device_auth_cli_lint(int argc, char **argv)
{
    int                      rc;
    device_auth_cli_lint_t   l;

    memset(&l, 0, sizeof(device_auth_cli_lint_t));
    device_auth_cli_redis_init(&l.redis);

    rc = device_auth_cli_redis_getopt("lint", argc, argv, &l.redis,
                                      &l.profile);
    if (rc != DEVICE_AUTH_CLI_OK) {
        return rc;
    }

    if (optind != argc) {
        return device_auth_cli_usage("lint");
    }

    if (device_auth_cli_redis_connect(&l.redis) != 0) {
        device_auth_cli_error("lint", "%s", l.redis.err);
        return DEVICE_AUTH_CLI_ERROR;
    }

    l.plen = strlen(l.redis.prefix);
    l.canary = getenv("DEVICE_AUTH_CANARY");

    if (l.canary == NULL || l.canary[0] == '\0') {
        l.canary = "canary";
    }

    rc = DEVICE_AUTH_CLI_ERROR;

    if (device_auth_cli_redis_scan(&l.redis, "*", device_auth_cli_lint_page,
                                   &l)
        != 0)
    {
        fflush(stdout);
        device_auth_cli_error("lint", "%s", l.redis.err);

    } else {
        printf("summary: %zu keys under \"", l.ours);
        device_auth_cli_print(stdout, l.redis.prefix, l.plen);
        printf("\", %zu finding%s; registered values: %zu in the import "
               "format, %zu by hand, %zu neither; %zu other keys\n",
               l.findings, l.findings == 1 ? "" : "s",
               l.registered[NGX_DEVICE_AUTH_REGISTRATION_IMPORT],
               l.registered[NGX_DEVICE_AUTH_REGISTRATION_HAND],
               l.registered[NGX_DEVICE_AUTH_REGISTRATION_NEITHER],
               l.others);

        rc = l.findings ? DEVICE_AUTH_CLI_FAILED : DEVICE_AUTH_CLI_OK;
    }

    free(l.keys);
    device_auth_cli_redis_close(&l.redis);

    return rc;
}


/*
 * A page: the names first; then TYPE of each key of ours, in one round
 * trip; then the values that matter, in another
 */

static int
device_auth_cli_lint_page(void *data, redisReply **keys, size_t n)
{
    size_t                       i;
    redisReply                  *type, *value;
    const char                  *cmd[4];
    device_auth_cli_lint_t      *l;
    device_auth_cli_lint_key_t  *lk;

    l = data;

    if (n > l->size) {
        lk = realloc(l->keys, n * sizeof(device_auth_cli_lint_key_t));
        if (lk == NULL) {
            snprintf(l->redis.err, sizeof(l->redis.err), "out of memory");
            return -1;
        }

        l->keys = lk;
        l->size = n;
    }

    for (i = 0; i < n; i++) {
        device_auth_cli_lint_name(l, keys[i], &l->keys[i]);

        if (l->keys[i].type == NULL) {
            continue;
        }

        cmd[0] = "TYPE";
        cmd[1] = keys[i]->str;

        if (device_auth_cli_redis_append(&l->redis, 2, cmd, NULL) != 0) {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        lk = &l->keys[i];

        if (lk->type == NULL) {
            continue;
        }

        type = device_auth_cli_redis_reply(&l->redis);
        if (type == NULL) {
            return -1;
        }

        if (type->type == REDIS_REPLY_STATUS
            && strcmp(type->str, "none") != 0
            && strcmp(type->str, lk->type) != 0)
        {
            device_auth_cli_lint_found(l, "wrong-type", keys[i],
                                       "a %s where the edge reads a %s: it "
                                       "fails on it (the fail mode decides)",
                                       type->str, lk->type);
            lk->read = DEVICE_AUTH_CLI_LINT_NOTHING;
        }

        if (type->type != REDIS_REPLY_STATUS
            || strcmp(type->str, "none") == 0)
        {
            lk->read = DEVICE_AUTH_CLI_LINT_NOTHING;     /* gone */
        }

        freeReplyObject(type);
    }

    for (i = 0; i < n; i++) {
        lk = &l->keys[i];

        if (lk->type == NULL || lk->read == DEVICE_AUTH_CLI_LINT_NOTHING) {
            continue;
        }

        cmd[0] = lk->read == DEVICE_AUTH_CLI_LINT_HLL ? "GETRANGE" : "GET";
        cmd[1] = keys[i]->str;
        cmd[2] = "0";
        cmd[3] = "3";

        if (device_auth_cli_redis_append(&l->redis,
                                         lk->read == DEVICE_AUTH_CLI_LINT_HLL
                                         ? 4 : 2, cmd, NULL)
            != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        lk = &l->keys[i];

        if (lk->type == NULL || lk->read == DEVICE_AUTH_CLI_LINT_NOTHING) {
            continue;
        }

        value = device_auth_cli_redis_reply(&l->redis);
        if (value == NULL) {
            return -1;
        }

        device_auth_cli_lint_value(l, keys[i], lk, value);
        freeReplyObject(value);
    }

    return 0;
}


/* the name of a key: findings, and the type and value to check */

static void
device_auth_cli_lint_name(device_auth_cli_lint_t *l, redisReply *key,
    device_auth_cli_lint_key_t *lk)
{
    memset(lk, 0, sizeof(device_auth_cli_lint_key_t));

    if (key->len < l->plen || memcmp(key->str, l->redis.prefix, l->plen) != 0)
    {
        device_auth_cli_lint_outside(l, key);
        return;
    }

    l->ours++;
    lk->ours = 1;

    /* the canary of device_auth_redis_canary, its name relative */

    if (key->len - l->plen == strlen(l->canary)
        && memcmp(key->str + l->plen, l->canary, strlen(l->canary)) == 0)
    {
        lk->type = "string";
        return;
    }

    device_auth_cli_key_parse(key->str + l->plen, key->len - l->plen, &lk->k);

    switch (lk->k.type) {

    case DEVICE_AUTH_CLI_KEY_DEVICE:
        device_auth_cli_lint_device(l, key, lk);
        break;

    case DEVICE_AUTH_CLI_KEY_SIGNER:
        device_auth_cli_lint_signer(l, key, lk);
        break;

    case DEVICE_AUTH_CLI_KEY_EVENTS:
    case DEVICE_AUTH_CLI_KEY_AUDIT:
        lk->type = "stream";
        break;

    case DEVICE_AUTH_CLI_KEY_DEVICES:
        if (lk->k.suffix_len < 10
            || strspn(lk->k.suffix, "0123456789-") < 10
            || (lk->k.suffix_len > 10 && lk->k.suffix[10] != ':'))
        {
            device_auth_cli_lint_found(l, "unknown-key", key,
                                       "the edges count devices in "
                                       "devices:<YYYY-MM-DD>");
            break;
        }

        lk->type = "string";
        lk->read = DEVICE_AUTH_CLI_LINT_HLL;
        break;

    default:
        device_auth_cli_lint_found(l, "unknown-key", key,
                                   "no edge reads such a key");
    }
}


static void
device_auth_cli_lint_device(device_auth_cli_lint_t *l, redisReply *key,
    device_auth_cli_lint_key_t *lk)
{
    int                     known;
    char                    id[NGX_DEVICE_AUTH_SERIAL_MAX + 1];
    char                    raw[NGX_DEVICE_AUTH_SERIAL_MAX + 1];
    const char             *suffix;
    device_auth_cli_key_t  *k;

    k = &lk->k;

    known = 1;

    if (device_auth_cli_key_suffix(k, "revoked")) {
        suffix = "revoked";
        lk->type = "string";
        lk->read = DEVICE_AUTH_CLI_LINT_REASON;

    } else if (device_auth_cli_key_suffix(k, "registered")) {
        suffix = "registered";
        lk->type = "string";
        lk->read = DEVICE_AUTH_CLI_LINT_REGISTERED;

    } else if (device_auth_cli_key_suffix(k, "seen")) {
        suffix = "seen";
        lk->type = "zset";

    } else if (device_auth_cli_key_suffix(k, "evrl")) {
        suffix = "evrl";
        lk->type = "hash";

    } else if (device_auth_cli_key_suffix(k, "edges")) {
        suffix = "edges";
        lk->type = "zset";

    } else {
        suffix = NULL;
        known = 0;
    }

    /* the serial as an edge would write it, if it can be told */

    id[0] = '\0';

    if (k->id_len < sizeof(raw)) {
        memcpy(raw, k->id, k->id_len);
        raw[k->id_len] = '\0';

        if (device_auth_cli_serial_profile(raw, l->profile, id) != 0) {
            id[0] = '\0';
        }
    }

    if (!k->braces) {
        if (!known) {
            device_auth_cli_lint_found(l, "unknown-key", key,
                                       "no edge reads such a key");
            lk->type = NULL;
            return;
        }

        if (id[0]) {
            device_auth_cli_lint_found(l, "no-braces", key,
                                       "the edge reads \"%s{%s}:%s\"",
                                       l->redis.prefix, id, suffix);
        } else {
            device_auth_cli_lint_found(l, "no-braces", key,
                                       "device keys are %s{SERIAL}:%s",
                                       l->redis.prefix, suffix);
        }

        lk->type = NULL;
        return;
    }

    if (!known) {
        device_auth_cli_lint_found(l, "unknown-suffix", key,
                                   "a device's keys end in :revoked, "
                                   ":registered, :seen, :edges or :evrl");
        return;
    }

    if (device_auth_cli_key_serial(k->id, k->id_len, l->profile)) {
        return;
    }

    if (id[0] == '\0') {
        device_auth_cli_lint_found(l, "not-a-serial", key,
                                   l->profile
                                   == NGX_DEVICE_AUTH_PROFILE_GENERIC
                                   ? "no CN of profile generic is that"
                                   : "no edge computes that serial: 18 "
                                     "hex digits, upper-case");
    } else {
        device_auth_cli_lint_found(l, (raw[0] == 's' || raw[0] == 'S')
                                      ? "sn-prefix" : "lower-case-serial",
                                   key, "the edge reads \"%s{%s}:%s\"",
                                   l->redis.prefix, id, suffix);
    }

    lk->type = NULL;
}


static void
device_auth_cli_lint_signer(device_auth_cli_lint_t *l, redisReply *key,
    device_auth_cli_lint_key_t *lk)
{
    char                    raw[160], id[NGX_DEVICE_AUTH_HEX_LEN + 1];
    device_auth_cli_key_t  *k;

    k = &lk->k;

    if (!device_auth_cli_key_suffix(k, "revoked")
        && !device_auth_cli_key_suffix(k, "compromised"))
    {
        device_auth_cli_lint_found(l, "unknown-suffix", key,
                                   "a signer's keys end in :revoked or "
                                   ":compromised");
        return;
    }

    if (device_auth_cli_key_signer(k->id, k->id_len)) {
        lk->type = "string";
        lk->read = DEVICE_AUTH_CLI_LINT_REASON;
        return;
    }

    id[0] = '\0';

    if (k->id_len < sizeof(raw)) {
        memcpy(raw, k->id, k->id_len);
        raw[k->id_len] = '\0';

        if (device_auth_cli_signer_id(raw, id) != 0) {
            id[0] = '\0';
        }
    }

    if (id[0]) {
        device_auth_cli_lint_found(l, "signer-id", key,
                                   "the edge reads \"%ssigner:%s:%.*s\"",
                                   l->redis.prefix, id,
                                   (int) k->suffix_len, k->suffix);
    } else {
        device_auth_cli_lint_found(l, "signer-id", key,
                                   "not a signer id: 64 lower-case hex "
                                   "digits");
    }
}


/* a key under another prefix, that looks like one of ours */

static void
device_auth_cli_lint_outside(device_auth_cli_lint_t *l, redisReply *key)
{
    size_t                 i;
    device_auth_cli_key_t  k;

    for (i = 0; i < key->len; i++) {
        if (key->str[i] == '{'
            || (key->len - i > 7 && memcmp(key->str + i, "signer:", 7) == 0))
        {
            break;
        }
    }

    if (i < key->len) {
        device_auth_cli_key_parse(key->str + i, key->len - i, &k);

        if ((k.type == DEVICE_AUTH_CLI_KEY_DEVICE && k.braces
             && (device_auth_cli_key_suffix(&k, "revoked")
                 || device_auth_cli_key_suffix(&k, "registered")
                 || device_auth_cli_key_suffix(&k, "seen")
                 || device_auth_cli_key_suffix(&k, "edges")
                 || device_auth_cli_key_suffix(&k, "evrl")))
            || (k.type == DEVICE_AUTH_CLI_KEY_SIGNER
                && (device_auth_cli_key_suffix(&k, "revoked")
                    || device_auth_cli_key_suffix(&k, "compromised"))))
        {
            device_auth_cli_lint_found(l, "outside-prefix", key,
                                       "under the prefix \"%.*s\": an edge "
                                       "with the prefix \"%s\" never reads "
                                       "it", (int) i, key->str,
                                       l->redis.prefix);
            return;
        }
    }

    l->others++;
}


static void
device_auth_cli_lint_value(device_auth_cli_lint_t *l, redisReply *key,
    device_auth_cli_lint_key_t *lk, redisReply *value)
{
    int          kind;
    size_t       i;
    const char  *why;

    if (value->type != REDIS_REPLY_STRING) {
        return;                     /* gone, or changed type since TYPE */
    }

    switch (lk->read) {

    case DEVICE_AUTH_CLI_LINT_REGISTERED:
        kind = ngx_device_auth_registration_kind(value->str, value->len,
                                                 &why);
        l->registered[kind]++;

        if (kind == NGX_DEVICE_AUTH_REGISTRATION_NEITHER) {
            device_auth_cli_lint_found(l, "registered-value", key,
                                       "neither the format of an import "
                                       "nor free text: %s", why);
        }
        break;

    case DEVICE_AUTH_CLI_LINT_HLL:
        if (value->len != 4 || memcmp(value->str, "HYLL", 4) != 0) {
            device_auth_cli_lint_found(l, "not-hyperloglog", key,
                                       "PFCOUNT cannot read it");
        }
        break;

    default:
        for (i = 0; i < value->len; i++) {
            if ((unsigned char) value->str[i] < 0x20
                || value->str[i] == 0x7f)
            {
                device_auth_cli_lint_found(l, "control-characters", key,
                                           "the reason holds \\x%02X (a CR "
                                           "from a CRLF file?)",
                                           (unsigned char) value->str[i]);
                break;
            }
        }
    }
}


static void
device_auth_cli_lint_found(device_auth_cli_lint_t *l, const char *code,
    redisReply *key, const char *fmt, ...)
{
    va_list  args;

    l->findings++;

    printf("%s \"", code);
    device_auth_cli_print(stdout, key->str, key->len);
    printf("\": ");

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
}
