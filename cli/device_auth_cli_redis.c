
/*
 * device-auth and Redis: connection, keys, pipelined commands.
 */


#define _GNU_SOURCE

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ngx_device_auth_cert.h"
#include "device_auth_cli.h"
#include "device_auth_cli_redis.h"


#define DEVICE_AUTH_CLI_ADDRESS_ARGS  8


/* the defaults: the environment's, else redis-cli's and the module's */

void
device_auth_cli_redis_init(device_auth_cli_redis_t *r)
{
    const char  *env;

    memset(r, 0, sizeof(device_auth_cli_redis_t));

    env = getenv("DEVICE_AUTH_REDIS");
    r->address = env && env[0] ? env : DEVICE_AUTH_CLI_REDIS_DEFAULT;

    env = getenv("DEVICE_AUTH_PREFIX");
    r->prefix = env && env[0] ? env : DEVICE_AUTH_CLI_PREFIX_DEFAULT;
}


/* 1: the option was --redis or --prefix, 0: another one, -1: invalid */

int
device_auth_cli_redis_option(device_auth_cli_redis_t *r, int opt,
    const char *arg)
{
    switch (opt) {

    case DEVICE_AUTH_CLI_OPT_REDIS:
        r->address = arg;
        return 1;

    case DEVICE_AUTH_CLI_OPT_PREFIX:
        if (strlen(arg) > DEVICE_AUTH_CLI_PREFIX_MAX) {
            snprintf(r->err, sizeof(r->err), "--prefix is longer than %d "
                     "characters", DEVICE_AUTH_CLI_PREFIX_MAX);
            return -1;
        }
        r->prefix = arg;
        return 1;

    default:
        return 0;
    }
}


/*
 * The options of a command that only reads Redis: --redis, --prefix, and
 * --profile; the arguments left begin at optind.  DEVICE_AUTH_CLI_OK, or
 * the exit status of a mistake, said.
 */

int
device_auth_cli_redis_getopt(const char *name, int argc, char **argv,
    device_auth_cli_redis_t *r, int *profile)
{
    int                          c, rc;
    static const struct option   options[] = {
        { "profile", required_argument, NULL, 'p' },
        DEVICE_AUTH_CLI_REDIS_OPTIONS,
        { NULL, 0, NULL, 0 }
    };

    *profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;

    while ((c = getopt_long(argc, argv, "p:", options, NULL)) != -1) {
        rc = device_auth_cli_redis_option(r, c, optarg);

        if (rc < 0) {
            device_auth_cli_error(name, "%s", r->err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        if (rc > 0) {
            continue;
        }

        if (c != 'p') {
            return device_auth_cli_usage(name);
        }

        *profile = ngx_device_auth_profile_parse(optarg);

        if (*profile < 0) {
            device_auth_cli_error(name, "unknown profile \"%s\"", optarg);
            return DEVICE_AUTH_CLI_ERROR;
        }
    }

    return DEVICE_AUTH_CLI_OK;
}


/*
 * "--redis" takes what "device_auth_redis" takes, in one argument:
 * "127.0.0.1:6379 db=2 user=ops password=...".  Without "password=", the
 * REDISCLI_AUTH environment variable gives it, as it does to redis-cli:
 * a password in the arguments is visible to every user of the machine.
 */

int
device_auth_cli_redis_connect(device_auth_cli_redis_t *r)
{
    int              argc, i, have_password;
    char            *copy, *p, *tok, *env, *pw;
    char             err[256], where[160];
    size_t           lens[DEVICE_AUTH_CLI_ADDRESS_ARGS + 1];
    const char      *argv[DEVICE_AUTH_CLI_ADDRESS_ARGS + 1];
    const char      *cmd[3];
    redisReply      *reply;
    struct timeval   tv;

    if (strlen(r->prefix) > DEVICE_AUTH_CLI_PREFIX_MAX) {
        snprintf(r->err, sizeof(r->err), "the prefix is longer than %d "
                 "characters", DEVICE_AUTH_CLI_PREFIX_MAX);
        return -1;
    }

    copy = strdup(r->address);
    pw = NULL;
    if (copy == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return -1;
    }

    argc = 0;
    have_password = 0;

    for (p = copy; (tok = strtok(p, " ")) != NULL; p = NULL) {
        if (argc == DEVICE_AUTH_CLI_ADDRESS_ARGS) {
            snprintf(r->err, sizeof(r->err), "--redis: too many words");
            goto failed;
        }

        have_password |= strncmp(tok, "password=", 9) == 0;
        argv[argc] = tok;
        lens[argc++] = strlen(tok);
    }

    env = getenv("REDISCLI_AUTH");

    if (!have_password && env != NULL && env[0] != '\0') {
        if (asprintf(&pw, "password=%s", env) < 0) {
            pw = NULL;
            snprintf(r->err, sizeof(r->err), "out of memory");
            goto failed;
        }

        argv[argc] = pw;
        lens[argc++] = strlen(pw);
    }

    if (ngx_device_auth_address_parse(argc, argv, lens, &r->addr, err,
                                      sizeof(err))
        != 0)
    {
        snprintf(r->err, sizeof(r->err), "--redis \"%s\": %s", r->address,
                 err);
        goto failed;
    }

    free(copy);
    free(pw);
    copy = NULL;
    pw = NULL;

    tv.tv_sec = DEVICE_AUTH_CLI_REDIS_TIMEOUT;
    tv.tv_usec = 0;

    r->ctx = r->addr.port ? redisConnectWithTimeout(r->addr.host,
                                                    r->addr.port, tv)
                          : redisConnectUnixWithTimeout(r->addr.path, tv);

    device_auth_cli_redis_describe(r, where, sizeof(where));

    if (r->ctx == NULL || r->ctx->err) {
        snprintf(r->err, sizeof(r->err), "cannot connect to redis at %s: %s",
                 where, r->ctx ? r->ctx->errstr : "out of memory");
        goto failed;
    }

    if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        snprintf(r->err, sizeof(r->err), "redis at %s: cannot set a "
                 "timeout", where);
        goto failed;
    }

    /* AUTH, SELECT, then PING: a server that wants a password says so */

    for (i = 0; i < 3; i++) {
        if (i == 0 && r->addr.password[0]) {
            argc = 0;
            cmd[argc++] = "AUTH";
            if (r->addr.user[0]) {
                cmd[argc++] = r->addr.user;
            }
            cmd[argc++] = r->addr.password;

        } else if (i == 1 && r->addr.db) {
            snprintf(err, sizeof(err), "%ld", r->addr.db);
            argc = 2;
            cmd[0] = "SELECT";
            cmd[1] = err;

        } else if (i == 2) {
            argc = 1;
            cmd[0] = "PING";

        } else {
            continue;
        }

        reply = device_auth_cli_redis_command(r, argc, cmd, NULL);

        if (reply == NULL) {
            goto failed;
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(r->err, sizeof(r->err), "redis at %s: %s: %s", where,
                     cmd[0], reply->str);
            freeReplyObject(reply);
            goto failed;
        }

        freeReplyObject(reply);
    }

    return 0;

failed:

    free(copy);
    free(pw);
    device_auth_cli_redis_close(r);

    return -1;
}


void
device_auth_cli_redis_close(device_auth_cli_redis_t *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}


/* the address for a person, without the password */

void
device_auth_cli_redis_describe(device_auth_cli_redis_t *r, char *buf,
    size_t size)
{
    if (r->addr.port == 0) {
        snprintf(buf, size, "unix:%s db %ld", r->addr.path, r->addr.db);

    } else if (strchr(r->addr.host, ':') != NULL) {
        snprintf(buf, size, "[%s]:%d db %ld", r->addr.host, r->addr.port,
                 r->addr.db);

    } else {
        snprintf(buf, size, "%s:%d db %ld", r->addr.host, r->addr.port,
                 r->addr.db);
    }
}


/* prefix + what fmt says, into DEVICE_AUTH_CLI_KEY_MAX bytes; 0: too long */

size_t
device_auth_cli_redis_key(device_auth_cli_redis_t *r, char *buf,
    const char *fmt, ...)
{
    int      n;
    size_t   plen;
    va_list  args;

    plen = strlen(r->prefix);
    memcpy(buf, r->prefix, plen);

    va_start(args, fmt);
    n = vsnprintf(buf + plen, DEVICE_AUTH_CLI_KEY_MAX - plen, fmt, args);
    va_end(args);

    if (n < 0 || plen + (size_t) n >= DEVICE_AUTH_CLI_KEY_MAX) {
        return 0;
    }

    return plen + (size_t) n;
}


int
device_auth_cli_redis_append(device_auth_cli_redis_t *r, int argc,
    const char **argv, const size_t *lens)
{
    if (redisAppendCommandArgv(r->ctx, argc, argv, lens) != REDIS_OK) {
        snprintf(r->err, sizeof(r->err), "redis: %s", r->ctx->errstr);
        return -1;
    }

    return 0;
}


/* the next reply, an error reply included; NULL: the connection failed */

redisReply *
device_auth_cli_redis_reply(device_auth_cli_redis_t *r)
{
    void  *reply;

    if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
        snprintf(r->err, sizeof(r->err), "redis: %s",
                 r->ctx->err ? r->ctx->errstr : "no reply");
        return NULL;
    }

    return reply;
}


redisReply *
device_auth_cli_redis_command(device_auth_cli_redis_t *r, int argc,
    const char **argv, const size_t *lens)
{
    if (device_auth_cli_redis_append(r, argc, argv, lens) != 0) {
        return NULL;
    }

    return device_auth_cli_redis_reply(r);
}


/* a glob of SCAN MATCH that matches s literally; 0: it does not fit */

size_t
device_auth_cli_redis_glob(const char *s, char *buf, size_t size)
{
    size_t  n;

    for (n = 0; *s; s++) {
        if (n + 3 > size) {
            return 0;
        }

        if (strchr("*?[]\\", *s) != NULL) {
            buf[n++] = '\\';
        }

        buf[n++] = *s;
    }

    if (n + 1 > size) {
        return 0;
    }

    buf[n] = '\0';

    return n;
}


/*
 * The keys SCAN is told of are remembered by a 64-bit hash of their name,
 * a few bytes per key, so that a key SCAN returns twice (it does while
 * Redis resizes its table) is handed over once
 */

typedef struct {
    uint64_t  *slots;
    size_t     size;           /* a power of 2 */
    size_t     n;
} device_auth_cli_seen_t;


static int
device_auth_cli_seen_add(device_auth_cli_seen_t *s, const char *key,
    size_t len)
{
    size_t     i, k, size;
    uint64_t   h, *slots;

    /* FNV-1a; 0 marks an empty slot */

    h = 14695981039346656037ULL;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) key[i]) * 1099511628211ULL;
    }

    h = h ? h : 1;

    if (2 * (s->n + 1) > s->size) {
        size = s->size ? 2 * s->size : 4096;
        slots = calloc(size, sizeof(uint64_t));
        if (slots == NULL) {
            return -1;
        }

        for (k = 0; k < s->size; k++) {
            if (s->slots[k]) {
                for (i = s->slots[k] & (size - 1); slots[i];
                     i = (i + 1) & (size - 1))
                {
                    /* void */
                }
                slots[i] = s->slots[k];
            }
        }

        free(s->slots);
        s->slots = slots;
        s->size = size;
    }

    for (i = h & (s->size - 1); s->slots[i]; i = (i + 1) & (s->size - 1)) {
        if (s->slots[i] == h) {
            return 0;
        }
    }

    s->slots[i] = h;
    s->n++;

    return 1;
}


int
device_auth_cli_redis_scan(device_auth_cli_redis_t *r, const char *match,
    device_auth_cli_scan_pt handler, void *data)
{
    int                      rc, added;
    char                     cursor[32], count[16];
    size_t                   i, n;
    redisReply              *reply, *keys, **page;
    const char              *cmd[6];
    device_auth_cli_seen_t   seen;

    memset(&seen, 0, sizeof(device_auth_cli_seen_t));
    snprintf(cursor, sizeof(cursor), "0");
    snprintf(count, sizeof(count), "%d", DEVICE_AUTH_CLI_SCAN_COUNT);

    cmd[0] = "SCAN";
    cmd[1] = cursor;
    cmd[2] = "MATCH";
    cmd[3] = match;
    cmd[4] = "COUNT";
    cmd[5] = count;

    page = NULL;
    rc = -1;

    do {
        reply = device_auth_cli_redis_command(r, 6, cmd, NULL);
        if (reply == NULL) {
            goto done;
        }

        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len >= sizeof(cursor)
            || reply->element[1]->type != REDIS_REPLY_ARRAY)
        {
            snprintf(r->err, sizeof(r->err), "redis: SCAN: %s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str
                                                      : "unexpected reply");
            freeReplyObject(reply);
            goto done;
        }

        memcpy(cursor, reply->element[0]->str, reply->element[0]->len + 1);
        keys = reply->element[1];

        free(page);
        page = malloc((keys->elements + 1) * sizeof(redisReply *));
        if (page == NULL) {
            snprintf(r->err, sizeof(r->err), "out of memory");
            freeReplyObject(reply);
            goto done;
        }

        for (i = 0, n = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }

            added = device_auth_cli_seen_add(&seen, keys->element[i]->str,
                                             keys->element[i]->len);
            if (added < 0) {
                snprintf(r->err, sizeof(r->err), "out of memory");
                freeReplyObject(reply);
                goto done;
            }

            if (added) {
                page[n++] = keys->element[i];
            }
        }

        if (n > 0 && handler(data, page, n) != 0) {
            freeReplyObject(reply);
            goto done;
        }

        freeReplyObject(reply);

    } while (strcmp(cursor, "0") != 0);

    rc = 0;

done:

    free(page);
    free(seen.slots);

    return rc;
}


/* Redis' clock, ms since the epoch, the one the edges' scripts use; -1 */

long long
device_auth_cli_redis_time(device_auth_cli_redis_t *r)
{
    long long    ms;
    redisReply  *reply;
    const char  *cmd[1];

    cmd[0] = "TIME";

    reply = device_auth_cli_redis_command(r, 1, cmd, NULL);
    if (reply == NULL) {
        return -1;
    }

    ms = -1;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ms = atoll(reply->element[0]->str) * 1000
             + atoll(reply->element[1]->str) / 1000;

    } else {
        snprintf(r->err, sizeof(r->err), "redis: TIME: unexpected reply");
    }

    freeReplyObject(reply);

    return ms;
}
