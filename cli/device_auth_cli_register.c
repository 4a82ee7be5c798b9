
/*
 * device-auth import-manifest: the verified entries written to Redis,
 * "{prefix}{SN}:registered", pipelined in batches.
 *
 * A value already there is never overwritten silently.  SET ... NX writes
 * the new ones; for the others the value there is read and compared: the
 * same value is "already registered"; another value stays ("kept"), or
 * with --replace is replaced, and either way is reported; a registration
 * that records another key for the serial is refused even with
 * --replace: a chip's key does not change, two keys for one serial are a
 * clone or a forgery to look into.  A dry run only reads.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_auth_cli.h"
#include "device_auth_cli_import.h"


#define DEVICE_AUTH_CLI_BATCH   512

/* what a batch entry waits for */
#define DEVICE_AUTH_CLI_STEP_SET      1        /* SET NX */
#define DEVICE_AUTH_CLI_STEP_GET      2
#define DEVICE_AUTH_CLI_STEP_REPLACE  3        /* SET */


typedef struct {
    device_auth_cli_entry_t  *en;
    int                       step;
    size_t                    key_len;
    size_t                    value_len;
    char                      key[DEVICE_AUTH_CLI_KEY_MAX];
    char                      value[NGX_DEVICE_AUTH_REGISTRATION_MAX];
} device_auth_cli_write_t;


typedef struct {
    device_auth_cli_redis_t  *r;
    int                       dry_run;
    int                       replace;
    device_auth_cli_write_t  *w;
    size_t                    n;
} device_auth_cli_batch_t;


static int device_auth_cli_register_step(device_auth_cli_batch_t *b,
    int step);
static void device_auth_cli_register_found(device_auth_cli_batch_t *b,
    device_auth_cli_write_t *w, redisReply *reply);


int
device_auth_cli_register(device_auth_cli_redis_t *r,
    device_auth_cli_entry_t *entries, size_t n, int dry_run, int replace)
{
    int                       step;
    size_t                    i;
    device_auth_cli_write_t  *w;
    device_auth_cli_batch_t   b;

    w = calloc(DEVICE_AUTH_CLI_BATCH, sizeof(device_auth_cli_write_t));
    if (w == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return -1;
    }

    b.r = r;
    b.dry_run = dry_run;
    b.replace = replace;
    b.w = w;
    b.n = 0;

    for (i = 0; i <= n; i++) {

        if (b.n == DEVICE_AUTH_CLI_BATCH || (i == n && b.n > 0)) {

            /* a dry run only reads what is there */

            for (step = dry_run ? DEVICE_AUTH_CLI_STEP_GET
                                : DEVICE_AUTH_CLI_STEP_SET;
                 step <= DEVICE_AUTH_CLI_STEP_REPLACE;
                 step++)
            {
                if (device_auth_cli_register_step(&b, step) != 0) {
                    free(w);
                    return -1;
                }
            }

            b.n = 0;
        }

        if (i == n || entries[i].outcome != DEVICE_AUTH_CLI_PENDING) {
            continue;
        }

        w[b.n].en = &entries[i];
        w[b.n].step = dry_run ? DEVICE_AUTH_CLI_STEP_GET
                              : DEVICE_AUTH_CLI_STEP_SET;
        w[b.n].key_len = device_auth_cli_redis_key(r, w[b.n].key,
                                                   "{%s}:registered",
                                                   entries[i].e.serial);
        w[b.n].value_len = ngx_device_auth_registration_format(
                               &entries[i].e.reg, w[b.n].value,
                               sizeof(w[b.n].value));

        if (w[b.n].key_len == 0 || w[b.n].value_len == 0) {
            entries[i].outcome = DEVICE_AUTH_CLI_REJECTED;
            snprintf(entries[i].e.reason, sizeof(entries[i].e.reason),
                     "the key or the value is too long");
            continue;
        }

        b.n++;
    }

    free(w);

    return 0;
}


/* one round trip: the commands of the entries at this step, then replies */

static int
device_auth_cli_register_step(device_auth_cli_batch_t *b, int step)
{
    int                       argc;
    size_t                    i, lens[4];
    const char               *argv[4];
    redisReply               *reply;
    device_auth_cli_write_t  *w;

    argv[0] = step == DEVICE_AUTH_CLI_STEP_GET ? "GET" : "SET";
    argv[3] = "NX";
    lens[0] = 3;
    lens[3] = 2;
    argc = step == DEVICE_AUTH_CLI_STEP_GET ? 2
           : step == DEVICE_AUTH_CLI_STEP_SET ? 4 : 3;

    for (i = 0; i < b->n; i++) {
        w = &b->w[i];

        if (w->step != step) {
            continue;
        }

        argv[1] = w->key;
        argv[2] = w->value;
        lens[1] = w->key_len;
        lens[2] = w->value_len;

        if (device_auth_cli_redis_append(b->r, argc, argv, lens) != 0) {
            return -1;
        }
    }

    for (i = 0; i < b->n; i++) {
        w = &b->w[i];

        if (w->step != step) {
            continue;
        }

        reply = device_auth_cli_redis_reply(b->r);
        if (reply == NULL) {
            return -1;
        }

        w->step = 0;

        if (reply->type == REDIS_REPLY_ERROR) {
            w->en->outcome = DEVICE_AUTH_CLI_REJECTED;
            snprintf(w->en->e.reason, sizeof(w->en->e.reason),
                     "redis: %s: %.200s", argv[0], reply->str);

        } else if (step == DEVICE_AUTH_CLI_STEP_GET) {
            device_auth_cli_register_found(b, w, reply);

        } else if (reply->type == REDIS_REPLY_NIL) {
            /* SET NX found a value: read it */
            w->step = DEVICE_AUTH_CLI_STEP_GET;

        } else {
            w->en->outcome = w->en->old ? DEVICE_AUTH_CLI_REPLACED
                                        : DEVICE_AUTH_CLI_REGISTERED;
        }

        freeReplyObject(reply);
    }

    return 0;
}


static void
device_auth_cli_register_found(device_auth_cli_batch_t *b,
    device_auth_cli_write_t *w, redisReply *reply)
{
    ngx_device_auth_registration_t  old;

    if (reply->type == REDIS_REPLY_NIL) {

        /* nothing there: new, or deleted since SET NX saw it */

        if (b->dry_run) {
            w->en->outcome = DEVICE_AUTH_CLI_REGISTERED;
        } else {
            w->step = DEVICE_AUTH_CLI_STEP_REPLACE;
        }

        return;
    }

    if ((size_t) reply->len == w->value_len
        && memcmp(reply->str, w->value, w->value_len) == 0)
    {
        w->en->outcome = DEVICE_AUTH_CLI_ALREADY;
        return;
    }

    w->en->old = strndup(reply->str, reply->len);

    if (ngx_device_auth_registration_parse(reply->str, reply->len, &old) == 0
        && strcmp(old.spki_sha256, w->en->e.reg.spki_sha256) != 0)
    {
        w->en->outcome = DEVICE_AUTH_CLI_REJECTED;
        snprintf(w->en->e.reason, sizeof(w->en->e.reason),
                 "registered already with another key, which is kept");
        return;
    }

    if (!b->replace) {
        w->en->outcome = DEVICE_AUTH_CLI_KEPT;
        return;
    }

    if (b->dry_run) {
        w->en->outcome = DEVICE_AUTH_CLI_REPLACED;
    } else {
        w->step = DEVICE_AUTH_CLI_STEP_REPLACE;
    }
}
