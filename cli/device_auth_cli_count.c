
/*
 * device-auth count [--days N] [--redis ADDR] [--prefix P]
 *
 * How many distinct devices the edges saw, per UTC day: the edges add
 * each device to the HyperLogLog "{prefix}devices:<YYYY-MM-DD>" (PFADD),
 * and this reads it (PFCOUNT; about 0.8% of error).  Today (by Redis'
 * clock) first, then the days before; with --days N > 1, the distinct
 * devices of those days together too (PFCOUNT of the keys at once):
 *
 *   2026-11-30 1234
 *   2026-11-29 none counted
 *   2 days: 1301 distinct devices
 *
 * Exit 1 when a key cannot be read (of another type).
 */


#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_auth_cli.h"
#include "device_auth_cli_redis.h"


#define DEVICE_AUTH_CLI_COUNT_DAYS_MAX  366
#define DEVICE_AUTH_CLI_COUNT_DAY_MS    (86400LL * 1000)


static const struct option  device_auth_cli_count_options[] = {
    { "days", required_argument, NULL, 'd' },
    DEVICE_AUTH_CLI_REDIS_OPTIONS,
    { NULL, 0, NULL, 0 }
};


int
device_auth_cli_count(int argc, char **argv)
{
    int                      c, rc, bad;
    long                     days, i;
    char                     date[16];
    char                   (*keys)[DEVICE_AUTH_CLI_KEY_MAX];
    long long                now;
    redisReply              *reply;
    const char             **cmd, *exists[2];
    device_auth_cli_redis_t  redis;

    device_auth_cli_redis_init(&redis);
    days = 1;

    while ((c = getopt_long(argc, argv, "d:", device_auth_cli_count_options,
                            NULL))
           != -1)
    {
        rc = device_auth_cli_redis_option(&redis, c, optarg);

        if (rc < 0) {
            device_auth_cli_error("count", "%s", redis.err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        if (rc > 0) {
            continue;
        }

        if (c != 'd'
            || device_auth_cli_number(optarg, 1, DEVICE_AUTH_CLI_COUNT_DAYS_MAX,
                                      &days)
               != 0)
        {
            return device_auth_cli_usage("count");
        }
    }

    if (optind != argc) {
        return device_auth_cli_usage("count");
    }

    keys = calloc(days, DEVICE_AUTH_CLI_KEY_MAX);
    cmd = calloc(days + 1, sizeof(const char *));

    if (keys == NULL || cmd == NULL) {
        free(keys);
        free(cmd);
        device_auth_cli_error("count", "out of memory");
        return DEVICE_AUTH_CLI_ERROR;
    }

    rc = DEVICE_AUTH_CLI_ERROR;

    if (device_auth_cli_redis_connect(&redis) != 0) {
        device_auth_cli_error("count", "%s", redis.err);
        goto done;
    }

    now = device_auth_cli_redis_time(&redis);
    if (now < 0) {
        device_auth_cli_error("count", "%s", redis.err);
        goto done;
    }

    /* EXISTS and PFCOUNT of each day, in one round trip */

    cmd[0] = "PFCOUNT";

    for (i = 0; i < days; i++) {
        device_auth_cli_date(now - i * DEVICE_AUTH_CLI_COUNT_DAY_MS, date,
                             sizeof(date));

        if (device_auth_cli_redis_key(&redis, keys[i], "devices:%s", date)
            == 0)
        {
            device_auth_cli_error("count", "the prefix is too long");
            goto done;
        }

        cmd[1] = keys[i];
        exists[0] = "EXISTS";
        exists[1] = keys[i];

        if (device_auth_cli_redis_append(&redis, 2, exists, NULL) != 0
            || device_auth_cli_redis_append(&redis, 2, cmd, NULL) != 0)
        {
            device_auth_cli_error("count", "%s", redis.err);
            goto done;
        }
    }

    bad = 0;

    for (i = 0; i < days; i++) {
        reply = device_auth_cli_redis_reply(&redis);
        if (reply == NULL) {
            device_auth_cli_error("count", "%s", redis.err);
            goto done;
        }

        c = reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
        freeReplyObject(reply);

        reply = device_auth_cli_redis_reply(&redis);
        if (reply == NULL) {
            device_auth_cli_error("count", "%s", redis.err);
            goto done;
        }

        printf("%s ", keys[i] + strlen(redis.prefix) + 8);

        if (reply->type == REDIS_REPLY_ERROR) {
            bad++;
            printf("cannot tell: error ");
            device_auth_cli_print(stdout, reply->str, reply->len);
            printf(" (%s)\n", keys[i]);

        } else if (!c) {
            printf("none counted (no %s)\n", keys[i]);

        } else {
            printf("%lld\n", reply->integer);
        }

        freeReplyObject(reply);
    }

    if (days > 1) {
        for (i = 0; i < days; i++) {
            cmd[i + 1] = keys[i];
        }

        reply = device_auth_cli_redis_command(&redis, (int) days + 1, cmd,
                                              NULL);
        if (reply == NULL) {
            device_auth_cli_error("count", "%s", redis.err);
            goto done;
        }

        if (reply->type == REDIS_REPLY_INTEGER) {
            printf("%ld days: %lld distinct devices\n", days,
                   reply->integer);
        } else {
            bad++;
        }

        freeReplyObject(reply);
    }

    rc = bad ? DEVICE_AUTH_CLI_FAILED : DEVICE_AUTH_CLI_OK;

done:

    free(keys);
    free(cmd);
    device_auth_cli_redis_close(&redis);

    return rc;
}
