
/*
 * device-auth and Redis: connection, keys, pipelined commands.
 */


#define _GNU_SOURCE

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

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
