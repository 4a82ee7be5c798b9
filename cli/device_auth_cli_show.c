
/*
 * device-auth show SERIAL [--redis ADDR] [--prefix P] [--events N]
 *
 * Everything Redis holds about one device, for a person: revoked or
 * quarantined (reason, time left), registered (from where), the places it
 * was seen in the duplicate window, the state of its signer (known from
 * its registration or its events), its last events, and the distinct
 * devices the edges counted today ("{prefix}devices:<YYYY-MM-DD>", when
 * they count them).  Values come from Redis as they are, written by
 * anyone: bytes that are not printable are shown escaped.  Only reads.
 */


#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_device_auth_cert.h"
#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"
#include "device_auth_cli_redis.h"


#define DEVICE_AUTH_CLI_SHOW_EVENTS      5
#define DEVICE_AUTH_CLI_SHOW_SIGNERS     4
#define DEVICE_AUTH_CLI_SHOW_PAGE        1000
#define DEVICE_AUTH_CLI_SHOW_SCAN_MAX    200000   /* the stream: ~100000 */
#define DEVICE_AUTH_CLI_OPT_EVENTS       0x300

/* replies of the first round trip */
#define DEVICE_AUTH_CLI_SHOW_TIME        0
#define DEVICE_AUTH_CLI_SHOW_REVOKED     1
#define DEVICE_AUTH_CLI_SHOW_REVOKED_TTL 2
#define DEVICE_AUTH_CLI_SHOW_REGISTERED  3
#define DEVICE_AUTH_CLI_SHOW_SEEN        4
#define DEVICE_AUTH_CLI_SHOW_SEEN_TTL    5
#define DEVICE_AUTH_CLI_SHOW_N           6

#define DEVICE_AUTH_CLI_LABEL            "%-13s"


typedef struct {
    device_auth_cli_redis_t   redis;
    long                      events;
    char                      serial[NGX_DEVICE_AUTH_SERIAL_MAX + 1];
    long long                 now;                 /* Redis time, ms */
    int                       nsigners;
    char                      signers[DEVICE_AUTH_CLI_SHOW_SIGNERS]
                                     [NGX_DEVICE_AUTH_HEX_LEN + 1];
} device_auth_cli_show_t;


static const struct option  device_auth_cli_show_options[] = {
    { "events", required_argument, NULL, DEVICE_AUTH_CLI_OPT_EVENTS },
    DEVICE_AUTH_CLI_REDIS_OPTIONS,
    { NULL, 0, NULL, 0 }
};


static int device_auth_cli_show_state(device_auth_cli_show_t *s);
static int device_auth_cli_show_head(const char *label, redisReply *r,
    int type, const char *absent);
static void device_auth_cli_show_revoked(redisReply *value, redisReply *ttl);
static void device_auth_cli_show_registered(device_auth_cli_show_t *s,
    redisReply *value);
static void device_auth_cli_show_seen(device_auth_cli_show_t *s,
    redisReply *places, redisReply *ttl);
static int device_auth_cli_show_events(device_auth_cli_show_t *s);
static int device_auth_cli_show_entry(redisReply *e);
static void device_auth_cli_show_event(device_auth_cli_show_t *s,
    redisReply *entry);
static int device_auth_cli_show_signers(device_auth_cli_show_t *s);
static void device_auth_cli_show_signer(device_auth_cli_show_t *s,
    const char *id, size_t len);
static int device_auth_cli_show_fleet(device_auth_cli_show_t *s);
static void device_auth_cli_show_quoted(redisReply *r);
static void device_auth_cli_show_time(long long ms, long long now);
static void device_auth_cli_show_duration(long long ms);


int
device_auth_cli_show(int argc, char **argv)
{
    int                      c, rc;
    char                     where[160];
    device_auth_cli_show_t   s;

    memset(&s, 0, sizeof(device_auth_cli_show_t));
    device_auth_cli_redis_init(&s.redis);
    s.events = DEVICE_AUTH_CLI_SHOW_EVENTS;

    while ((c = getopt_long(argc, argv, "", device_auth_cli_show_options,
                            NULL))
           != -1)
    {
        rc = device_auth_cli_redis_option(&s.redis, c, optarg);

        if (rc < 0) {
            device_auth_cli_error("show", "%s", s.redis.err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        if (rc > 0) {
            continue;
        }

        if (c != DEVICE_AUTH_CLI_OPT_EVENTS
            || device_auth_cli_number(optarg, 0, 1000, &s.events) != 0)
        {
            return device_auth_cli_usage("show");
        }
    }

    if (optind + 1 != argc) {
        return device_auth_cli_usage("show");
    }

    if (device_auth_cli_serial(argv[optind], s.serial) != 0) {
        device_auth_cli_error("show", "\"%s\" is not a serial: 18 hex digits "
                              "(atecc608), or 1-64 characters of A-Z a-z 0-9 "
                              "space . _ : @ / + = - (generic)",
                              argv[optind]);
        return DEVICE_AUTH_CLI_ERROR;
    }

    if (device_auth_cli_redis_connect(&s.redis) != 0) {
        device_auth_cli_error("show", "%s", s.redis.err);
        return DEVICE_AUTH_CLI_ERROR;
    }

    device_auth_cli_redis_describe(&s.redis, where, sizeof(where));

    printf("device %s in redis %s, prefix \"%s\"\n", s.serial, where,
           s.redis.prefix);

    rc = DEVICE_AUTH_CLI_ERROR;

    if (device_auth_cli_show_state(&s) == 0
        && device_auth_cli_show_events(&s) == 0
        && device_auth_cli_show_signers(&s) == 0
        && device_auth_cli_show_fleet(&s) == 0)
    {
        rc = DEVICE_AUTH_CLI_OK;

    } else {
        fflush(stdout);
        device_auth_cli_error("show", "%s", s.redis.err);
    }

    device_auth_cli_redis_close(&s.redis);

    return rc;
}


/* the device's own keys, in one round trip */

static int
device_auth_cli_show_state(device_auth_cli_show_t *s)
{
    int                i;
    char               keys[3][DEVICE_AUTH_CLI_KEY_MAX];
    redisReply        *reply[DEVICE_AUTH_CLI_SHOW_N];
    static const int   argc[DEVICE_AUTH_CLI_SHOW_N] = { 1, 2, 2, 2, 5, 2 };

    /* in the order of DEVICE_AUTH_CLI_SHOW_* */
    const char        *cmd[DEVICE_AUTH_CLI_SHOW_N][5] = {
        { "TIME" },
        { "GET", keys[0] },
        { "PTTL", keys[0] },
        { "GET", keys[1] },
        { "ZRANGE", keys[2], "0", "-1", "WITHSCORES" },
        { "PTTL", keys[2] }
    };

    if (device_auth_cli_redis_key(&s->redis, keys[0], "{%s}:revoked",
                                  s->serial) == 0
        || device_auth_cli_redis_key(&s->redis, keys[1], "{%s}:registered",
                                     s->serial) == 0
        || device_auth_cli_redis_key(&s->redis, keys[2], "{%s}:seen",
                                     s->serial) == 0)
    {
        snprintf(s->redis.err, sizeof(s->redis.err), "key too long");
        return -1;
    }

    for (i = 0; i < DEVICE_AUTH_CLI_SHOW_N; i++) {
        if (device_auth_cli_redis_append(&s->redis, argc[i], cmd[i], NULL)
            != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < DEVICE_AUTH_CLI_SHOW_N; i++) {
        reply[i] = device_auth_cli_redis_reply(&s->redis);

        if (reply[i] == NULL) {
            while (i-- > 0) {
                freeReplyObject(reply[i]);
            }
            return -1;
        }
    }

    if (reply[0]->type == REDIS_REPLY_ARRAY && reply[0]->elements == 2) {
        s->now = atoll(reply[0]->element[0]->str) * 1000
                 + atoll(reply[0]->element[1]->str) / 1000;
    }

    device_auth_cli_show_revoked(reply[DEVICE_AUTH_CLI_SHOW_REVOKED],
                                 reply[DEVICE_AUTH_CLI_SHOW_REVOKED_TTL]);
    device_auth_cli_show_registered(s, reply[DEVICE_AUTH_CLI_SHOW_REGISTERED]);
    device_auth_cli_show_seen(s, reply[DEVICE_AUTH_CLI_SHOW_SEEN],
                              reply[DEVICE_AUTH_CLI_SHOW_SEEN_TTL]);

    for (i = 0; i < DEVICE_AUTH_CLI_SHOW_N; i++) {
        freeReplyObject(reply[i]);
    }

    return 0;
}


/*
 * The label, and the whole line when the key is absent or holds another
 * type (a key set by hand): 1 when there is a value for the caller to show
 */

static int
device_auth_cli_show_head(const char *label, redisReply *r, int type,
    const char *absent)
{
    printf(DEVICE_AUTH_CLI_LABEL, label);

    if (r->type == REDIS_REPLY_NIL
        || (r->type == REDIS_REPLY_ARRAY && r->elements == 0))
    {
        printf("%s\n", absent);
        return 0;
    }

    if (r->type != type) {
        printf("cannot tell: ");
        device_auth_cli_show_quoted(r);
        printf("\n");
        return 0;
    }

    return 1;
}


static void
device_auth_cli_show_revoked(redisReply *value, redisReply *ttl)
{
    if (!device_auth_cli_show_head("state:", value, REDIS_REPLY_STRING,
                                   "not revoked"))
    {
        return;
    }

    /* as the edge reads it: a reason starting "quarantined:" */

    printf("%s, reason ", value->len >= 12
                          && memcmp(value->str, "quarantined:", 12) == 0
                          ? "quarantined" : "revoked");
    device_auth_cli_show_quoted(value);

    if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer >= 0) {
        printf(", ends in ");
        device_auth_cli_show_duration(ttl->integer);
        printf("\n");

    } else {
        printf(", no expiry\n");
    }
}


static void
device_auth_cli_show_registered(device_auth_cli_show_t *s, redisReply *value)
{
    ngx_device_auth_registration_t  reg;

    if (!device_auth_cli_show_head("registered:", value, REDIS_REPLY_STRING,
                                   "no"))
    {
        return;
    }

    if (ngx_device_auth_registration_parse(value->str, value->len, &reg)
        != 0)
    {
        printf("yes, ");
        device_auth_cli_show_quoted(value);
        printf(" (no key recorded)\n");
        return;
    }

    printf("yes, from manifest sha256 %s\n", reg.manifest[0]
                                             ? reg.manifest : "-");
    printf(DEVICE_AUTH_CLI_LABEL "part %s, provisioned %s\n", "",
           reg.part[0] ? reg.part : "-",
           reg.provisioned[0] ? reg.provisioned : "-");
    printf(DEVICE_AUTH_CLI_LABEL "key spki_sha256 %s\n", "", reg.spki_sha256);

    if (strlen(reg.signer) == NGX_DEVICE_AUTH_HEX_LEN) {
        printf(DEVICE_AUTH_CLI_LABEL "signer %s\n", "", reg.signer);
        memcpy(s->signers[s->nsigners++], reg.signer,
               NGX_DEVICE_AUTH_HEX_LEN + 1);
    }
}


static void
device_auth_cli_show_seen(device_auth_cli_show_t *s, redisReply *places,
    redisReply *ttl)
{
    size_t  i;

    if (!device_auth_cli_show_head("seen:", places, REDIS_REPLY_ARRAY,
                                   "nowhere in the duplicate window"))
    {
        return;
    }

    printf("%zu place%s in the duplicate window", places->elements / 2,
           places->elements > 2 ? "s" : "");

    if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer >= 0) {
        printf(", forgotten in ");
        device_auth_cli_show_duration(ttl->integer);
    }

    printf(":\n");

    for (i = 0; i + 1 < places->elements; i += 2) {
        printf(DEVICE_AUTH_CLI_LABEL "  ", "");
        device_auth_cli_show_quoted(places->element[i]);
        printf(" last ");

        if (places->element[i + 1]->type == REDIS_REPLY_STRING) {
            device_auth_cli_show_time(atoll(places->element[i + 1]->str),
                                      s->now);
        }

        printf("\n");
    }
}


/*
 * The stream is shared by all devices and capped near 100000 entries: it
 * is read newest first, a page at a time, until enough of this device's
 * events are found or the stream ends.
 */

static int
device_auth_cli_show_events(device_auth_cli_show_t *s)
{
    int                 found;
    char                key[DEVICE_AUTH_CLI_KEY_MAX], end[64], page[16];
    size_t              i, j, scanned;
    redisReply         *reply, *e, *f;
    const char         *cmd[6];
    unsigned long long  ms, seq;

    if (s->events == 0) {
        return 0;
    }

    if (device_auth_cli_redis_key(&s->redis, key, "events") == 0) {
        snprintf(s->redis.err, sizeof(s->redis.err), "key too long");
        return -1;
    }

    snprintf(end, sizeof(end), "+");
    snprintf(page, sizeof(page), "%d", DEVICE_AUTH_CLI_SHOW_PAGE);

    cmd[0] = "XREVRANGE";
    cmd[1] = key;
    cmd[2] = end;
    cmd[3] = "-";
    cmd[4] = "COUNT";
    cmd[5] = page;

    found = 0;
    scanned = 0;

    while (found < s->events && scanned < DEVICE_AUTH_CLI_SHOW_SCAN_MAX) {

        reply = device_auth_cli_redis_command(&s->redis, 6, cmd, NULL);
        if (reply == NULL) {
            return -1;
        }

        if (reply->type != REDIS_REPLY_ARRAY) {
            (void) device_auth_cli_show_head("events:", reply,
                                             REDIS_REPLY_ARRAY, "");
            freeReplyObject(reply);
            return 0;
        }

        for (i = 0; i < reply->elements && found < s->events; i++) {
            e = reply->element[i];

            if (!device_auth_cli_show_entry(e)) {
                continue;
            }

            f = e->element[1];

            for (j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "serial") == 0
                    && strcmp(f->element[j + 1]->str, s->serial) == 0)
                {
                    if (found++ == 0) {
                        printf(DEVICE_AUTH_CLI_LABEL "newest first:\n",
                               "events:");
                    }

                    device_auth_cli_show_event(s, e);
                    break;
                }
            }
        }

        scanned += reply->elements;

        /* the next page ends just before the oldest id of this one */

        e = reply->elements ? reply->element[reply->elements - 1] : NULL;

        if (reply->elements < DEVICE_AUTH_CLI_SHOW_PAGE
            || !device_auth_cli_show_entry(e)
            || sscanf(e->element[0]->str, "%llu-%llu", &ms, &seq) != 2
            || (ms == 0 && seq == 0))
        {
            freeReplyObject(reply);
            break;
        }

        freeReplyObject(reply);

        if (seq > 0) {
            snprintf(end, sizeof(end), "%llu-%llu", ms, seq - 1);
        } else {
            snprintf(end, sizeof(end), "%llu-18446744073709551615", ms - 1);
        }
    }

    if (found == 0) {
        printf(DEVICE_AUTH_CLI_LABEL "none among the %zu newest of %s\n",
               "events:", scanned, key);
    }

    return 0;
}


/* a stream entry: [id, [field, value, ...]], all strings */

static int
device_auth_cli_show_entry(redisReply *e)
{
    size_t  j;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[0]->type != REDIS_REPLY_STRING
        || e->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return 0;
    }

    for (j = 0; j < e->element[1]->elements; j++) {
        if (e->element[1]->element[j]->type != REDIS_REPLY_STRING) {
            return 0;
        }
    }

    return 1;
}


static void
device_auth_cli_show_event(device_auth_cli_show_t *s, redisReply *entry)
{
    int          k;
    size_t       j;
    redisReply  *f, *v;
    const char  *name;
    static const char  *fields[] = { "type", "edge", "location", "reason",
                                     "signer" };

    printf(DEVICE_AUTH_CLI_LABEL "  ", "");
    device_auth_cli_show_time(atoll(entry->element[0]->str), s->now);

    f = entry->element[1];

    for (k = 0; k < (int) (sizeof(fields) / sizeof(fields[0])); k++) {
        for (j = 0; j + 1 < f->elements; j += 2) {
            name = f->element[j]->str;
            v = f->element[j + 1];

            if (strcmp(name, fields[k]) != 0) {
                continue;
            }

            printf(k == 0 ? " " : " %s ", name);
            device_auth_cli_show_quoted(v);

            if (k == 4) {
                device_auth_cli_show_signer(s, v->str, v->len);
            }
        }
    }

    printf("\n");
}


/* a signer id worth looking up: well-formed, not yet listed */

static void
device_auth_cli_show_signer(device_auth_cli_show_t *s, const char *id,
    size_t len)
{
    int  i;

    if (len != NGX_DEVICE_AUTH_HEX_LEN
        || strspn(id, "0123456789abcdef") != NGX_DEVICE_AUTH_HEX_LEN
        || s->nsigners == DEVICE_AUTH_CLI_SHOW_SIGNERS)
    {
        return;
    }

    for (i = 0; i < s->nsigners; i++) {
        if (strcmp(s->signers[i], id) == 0) {
            return;
        }
    }

    memcpy(s->signers[s->nsigners++], id, NGX_DEVICE_AUTH_HEX_LEN + 1);
}


static int
device_auth_cli_show_signers(device_auth_cli_show_t *s)
{
    int          i, k;
    char         key[2][DEVICE_AUTH_CLI_KEY_MAX];
    const char  *cmd[2];
    redisReply  *reply[2];
    static const char  *what[2] = { "revoked", "compromised" };

    if (s->nsigners == 0) {
        printf(DEVICE_AUTH_CLI_LABEL "unknown: no registration names it, "
               "no event of this device\n", "signer:");
        return 0;
    }

    for (i = 0; i < s->nsigners; i++) {

        for (k = 0; k < 2; k++) {
            (void) device_auth_cli_redis_key(&s->redis, key[k],
                                             "signer:%s:%s", s->signers[i],
                                             what[k]);
            cmd[0] = "GET";
            cmd[1] = key[k];

            reply[k] = device_auth_cli_redis_command(&s->redis, 2, cmd, NULL);
            if (reply[k] == NULL) {
                if (k == 1) {
                    freeReplyObject(reply[0]);
                }
                return -1;
            }
        }

        printf(DEVICE_AUTH_CLI_LABEL "%s: ", "signer:", s->signers[i]);

        if (reply[0]->type == REDIS_REPLY_NIL
            && reply[1]->type == REDIS_REPLY_NIL)
        {
            printf("in service");
        }

        for (k = 0; k < 2; k++) {
            if (reply[k]->type != REDIS_REPLY_NIL) {
                printf("%s%s, reason ", k == 1
                       && reply[0]->type != REDIS_REPLY_NIL ? "; " : "",
                       what[k]);
                device_auth_cli_show_quoted(reply[k]);
            }
        }

        printf("\n");

        freeReplyObject(reply[0]);
        freeReplyObject(reply[1]);
    }

    return 0;
}


/*
 * The distinct devices the edges counted today (UTC, Redis' clock) in
 * "{prefix}devices:<YYYY-MM-DD>", when the key is there
 */

static int
device_auth_cli_show_fleet(device_auth_cli_show_t *s)
{
    int          i;
    char         key[DEVICE_AUTH_CLI_KEY_MAX], date[16];
    const char  *cmd[2][2];
    redisReply  *reply[2];

    if (s->now <= 0) {
        return 0;
    }

    device_auth_cli_date(s->now, date, sizeof(date));

    if (device_auth_cli_redis_key(&s->redis, key, "devices:%s", date) == 0) {
        return 0;
    }

    cmd[0][0] = "EXISTS";
    cmd[0][1] = key;
    cmd[1][0] = "PFCOUNT";
    cmd[1][1] = key;

    for (i = 0; i < 2; i++) {
        if (device_auth_cli_redis_append(&s->redis, 2, cmd[i], NULL) != 0) {
            return -1;
        }
    }

    for (i = 0; i < 2; i++) {
        reply[i] = device_auth_cli_redis_reply(&s->redis);

        if (reply[i] == NULL) {
            if (i == 1) {
                freeReplyObject(reply[0]);
            }
            return -1;
        }
    }

    if (reply[0]->type == REDIS_REPLY_INTEGER && reply[0]->integer > 0) {
        printf(DEVICE_AUTH_CLI_LABEL, "fleet:");

        if (reply[1]->type == REDIS_REPLY_INTEGER) {
            printf("%lld distinct devices seen today (%s UTC)\n",
                   reply[1]->integer, date);

        } else {
            printf("cannot tell: ");
            device_auth_cli_show_quoted(reply[1]);
            printf("\n");
        }
    }

    freeReplyObject(reply[0]);
    freeReplyObject(reply[1]);

    return 0;
}


/* a string value quoted and escaped; an error reply or another type named */

static void
device_auth_cli_show_quoted(redisReply *r)
{
    switch (r->type) {

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        printf("\"");
        device_auth_cli_print(stdout, r->str, r->len);
        printf("\"");
        break;

    case REDIS_REPLY_ERROR:
        printf("error ");
        device_auth_cli_print(stdout, r->str, r->len);
        break;

    case REDIS_REPLY_INTEGER:
        printf("%lld", r->integer);
        break;

    case REDIS_REPLY_NIL:
        printf("(nil)");
        break;

    default:
        printf("(reply of type %d)", r->type);
    }
}


/* "2026-11-30T04:12:01.123Z (12s ago)" */

static void
device_auth_cli_show_time(long long ms, long long now)
{
    char       buf[32];
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);

    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    {
        printf("%lld", ms);
        return;
    }

    printf("%s.%03lldZ", buf, ms % 1000);

    if (now > 0 && now >= ms) {
        printf(" (");
        device_auth_cli_show_duration(now - ms);
        printf(" ago)");
    }
}


static void
device_auth_cli_show_duration(long long ms)
{
    char  buf[64];

    device_auth_cli_duration(buf, sizeof(buf), ms);
    fputs(buf, stdout);
}
