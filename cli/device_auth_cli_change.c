
/*
 * device-auth: the commands that change a device's or a signer's state
 * (device_auth_cli_change.h).  Synchronous hiredis, pipelined: a batch of
 * script calls in one write, their replies in order.
 */


#define _GNU_SOURCE

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ngx_device_auth_registration.h"
#include "device_auth_cli.h"
#include "device_auth_cli_change.h"


#define DEVICE_AUTH_CLI_CHANGE_PIPELINE 512
#define DEVICE_AUTH_CLI_CHANGE_FILES    16
#define DEVICE_AUTH_CLI_CHANGE_FOR_MAX  (366LL * 86400)
#define DEVICE_AUTH_CLI_CHANGE_BY_MAX   64

#define DEVICE_AUTH_CLI_OPT_REASON      0x400
#define DEVICE_AUTH_CLI_OPT_BATCH       0x401
#define DEVICE_AUTH_CLI_OPT_FOR         0x402
#define DEVICE_AUTH_CLI_OPT_SIGNER      0x403
#define DEVICE_AUTH_CLI_OPT_COMPROMISED 0x404
#define DEVICE_AUTH_CLI_OPT_REPLACE     0x405
#define DEVICE_AUTH_CLI_OPT_BY          0x406
#define DEVICE_AUTH_CLI_OPT_DRY_RUN     0x407

/* the script's arguments */
#define DEVICE_AUTH_CLI_CHANGE_KEYS     4
#define DEVICE_AUTH_CLI_CHANGE_ARGS     11


/*
 * One change, decided and made in Redis in one step.
 *
 * KEYS[1] the key changed: P{SN}:revoked, P{SN}:registered, or
 *         Psigner:<id>:revoked|compromised
 * KEYS[2] Paudit
 * KEYS[3] P{SN}:seen, KEYS[4] P{SN}:registered (revoke, unrevoke,
 *         quarantine, release of a device)
 *
 * ARGV: what (the command), value (written; or the reason of a lift),
 * px (quarantine), flags ("d" dry run, "r" replace), "serial" or
 * "signer", the id, user, by, host, source, the audit's MAXLEN.
 *
 * Returns { "done"|"unchanged"|"kept"|"refused", the value there (or
 * nil), its PTTL (-2 absent), the places in :seen (-1 wrong type),
 * registered (0, 1, 2 cannot tell), the registration (or the error) }.
 * A key of the wrong type at KEYS[1] fails the script before it writes.
 */

static const char  device_auth_cli_change_script[] =
    "local what, value, flags = ARGV[1], ARGV[2], ARGV[4]\n"
    "local dry = string.find(flags, 'd', 1, true) ~= nil\n"
    "local replace = string.find(flags, 'r', 1, true) ~= nil\n"
    "local old = redis.call('GET', KEYS[1])\n"
    "local pttl = -2\n"
    "if old then pttl = redis.call('PTTL', KEYS[1]) end\n"
    "local q = old and string.sub(old, 1, 12) == 'quarantined:'\n"
    "local places, reg, regv = 0, 0, false\n"
    "if KEYS[3] then\n"
    "    places = redis.pcall('ZCARD', KEYS[3])\n"
    "    if type(places) ~= 'number' then places = -1 end\n"
    "    regv = redis.pcall('GET', KEYS[4])\n"
    "    if type(regv) == 'table' then reg, regv = 2, regv.err\n"
    "    elseif regv then reg = 1 end\n"
    "end\n"
    "local result = 'done'\n"
    "if what == 'revoke' or what == 'register' then\n"
    "    if old == value and (what == 'register' or pttl == -1) then\n"
    "        result = 'unchanged'\n"
    "    elseif what == 'register' and old then\n"
    "        if not replace then result = 'kept'\n"
    "        elseif string.find(old, 'spki_sha256=', 1, true)\n"
    "               and not string.find(value, 'spki_sha256=', 1, true)\n"
    "        then result = 'refused' end\n"
    "    end\n"
    "elseif what == 'quarantine' then\n"
    "    if old and not q then result = 'refused' end\n"
    "elseif what == 'release' then\n"
    "    if old and not q then result = 'refused'\n"
    "    elseif not old and places == 0 then result = 'unchanged' end\n"
    "elseif not old then\n"
    "    result = 'unchanged'\n"
    "end\n"
    "local lift = what == 'release' or (what == 'unrevoke' and q\n"
    "                                   and KEYS[3] ~= nil)\n"
    "if result == 'done' and not dry then\n"
    "    local a = { 'XADD', KEYS[2], 'MAXLEN', '~', ARGV[11], '*',\n"
    "                'what', what, ARGV[5], ARGV[6], 'key', KEYS[1],\n"
    "                'user', ARGV[7] }\n"
    "    local function add(k, v) a[#a + 1] = k; a[#a + 1] = v end\n"
    "    if ARGV[8] ~= '' then add('by', ARGV[8]) end\n"
    "    add('host', ARGV[9])\n"
    "    add('source', ARGV[10])\n"
    "    if what == 'register' then add('value', value)\n"
    "    elseif value ~= '' then add('reason', value) end\n"
    "    if what == 'quarantine' then add('ttl_ms', ARGV[3]) end\n"
    "    if old then add('previous', old) end\n"
    "    if pttl >= 0 then add('previous_ttl_ms', tostring(pttl)) end\n"
    "    if lift and places ~= 0 then add('places', tostring(places)) end\n"
    "    redis.call(unpack(a))\n"
    "    if what == 'revoke' or what == 'register' then\n"
    "        redis.call('SET', KEYS[1], value)\n"
    "    elseif what == 'quarantine' then\n"
    "        redis.call('SET', KEYS[1], value, 'PX', ARGV[3])\n"
    "    elseif lift then\n"
    "        redis.call('DEL', KEYS[1], KEYS[3])\n"
    "    else\n"
    "        redis.call('DEL', KEYS[1])\n"
    "    end\n"
    "end\n"
    "return { result, old, pttl, places, reg, regv }\n";


static const struct option  device_auth_cli_change_options[] = {
    { "from", required_argument, NULL, 'f' },
    { "reason", required_argument, NULL, DEVICE_AUTH_CLI_OPT_REASON },
    { "batch", required_argument, NULL, DEVICE_AUTH_CLI_OPT_BATCH },
    { "for", required_argument, NULL, DEVICE_AUTH_CLI_OPT_FOR },
    { "signer", no_argument, NULL, DEVICE_AUTH_CLI_OPT_SIGNER },
    { "compromised", no_argument, NULL, DEVICE_AUTH_CLI_OPT_COMPROMISED },
    { "replace", no_argument, NULL, DEVICE_AUTH_CLI_OPT_REPLACE },
    { "by", required_argument, NULL, DEVICE_AUTH_CLI_OPT_BY },
    { "dry-run", no_argument, NULL, DEVICE_AUTH_CLI_OPT_DRY_RUN },
    { "quiet", no_argument, NULL, 'q' },
    { "profile", required_argument, NULL, 'p' },
    DEVICE_AUTH_CLI_REDIS_OPTIONS,
    { NULL, 0, NULL, 0 }
};


typedef struct {
    device_auth_cli_item_t  *it;
    size_t                   len[DEVICE_AUTH_CLI_CHANGE_KEYS
                                 + DEVICE_AUTH_CLI_CHANGE_ARGS + 3];
    char                     keys[DEVICE_AUTH_CLI_CHANGE_KEYS]
                                 [DEVICE_AUTH_CLI_KEY_MAX];
    char                     source[DEVICE_AUTH_CLI_KEY_MAX];
    const char              *argv[DEVICE_AUTH_CLI_CHANGE_KEYS
                                  + DEVICE_AUTH_CLI_CHANGE_ARGS + 3];
    int                      argc;
} device_auth_cli_call_t;


static int device_auth_cli_change_parse(device_auth_cli_change_t *c,
    int argc, char **argv, const char **files, int *nfiles);
static int device_auth_cli_change_valid(void *data, const char *id);
static void device_auth_cli_change_check(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it);
static void device_auth_cli_change_duplicates(device_auth_cli_change_t *c);
static int device_auth_cli_change_by_id(const void *a, const void *b);
static void device_auth_cli_change_who(device_auth_cli_change_t *c);
static int device_auth_cli_change_load(device_auth_cli_change_t *c);
static int device_auth_cli_change_run(device_auth_cli_change_t *c);
static int device_auth_cli_change_call(device_auth_cli_change_t *c,
    device_auth_cli_call_t *call, int eval);
static int device_auth_cli_change_reply(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, redisReply *reply);
static void device_auth_cli_change_source(device_auth_cli_item_t *it,
    char *buf, size_t size);
static void device_auth_cli_change_print(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it);
static int device_auth_cli_change_summary(device_auth_cli_change_t *c);


int
device_auth_cli_change(const device_auth_cli_change_op_t *op, int argc,
    char **argv)
{
    int                        i, rc, nfiles;
    char                       err[512];
    size_t                     k, pending;
    const char                *files[DEVICE_AUTH_CLI_CHANGE_FILES];
    device_auth_cli_change_t  *c;

    c = calloc(1, sizeof(device_auth_cli_change_t));
    if (c == NULL) {
        device_auth_cli_error(op->name, "out of memory");
        return DEVICE_AUTH_CLI_ERROR;
    }

    c->op = op;
    c->profile = NGX_DEVICE_AUTH_PROFILE_ATECC608;
    c->in.valid = device_auth_cli_change_valid;
    c->in.data = c;
    device_auth_cli_redis_init(&c->redis);

    rc = device_auth_cli_change_parse(c, argc, argv, files, &nfiles);
    if (rc != DEVICE_AUTH_CLI_OK) {
        goto done;
    }

    rc = DEVICE_AUTH_CLI_ERROR;

    /* every file is read, and every entry checked, before any write */

    for (i = optind; i < argc; i++) {
        if (device_auth_cli_input_arg(&c->in, argv[i], i - optind + 1) != 0)
        {
            device_auth_cli_error(op->name, "out of memory");
            goto done;
        }
    }

    for (i = 0; i < nfiles; i++) {
        if (device_auth_cli_input_file(&c->in, files[i], err, sizeof(err))
            != 0)
        {
            device_auth_cli_error(op->name, "%s", err);
            goto done;
        }
    }

    pending = 0;

    for (k = 0; k < c->in.n; k++) {
        device_auth_cli_change_check(c, &c->in.items[k]);
        pending += c->in.items[k].outcome != DEVICE_AUTH_CLI_ITEM_HEADER;
    }

    if (pending == 0) {
        for (k = 0; k < c->in.n; k++) {
            device_auth_cli_change_print(c, &c->in.items[k]);   /* headers */
        }

        fflush(stdout);
        device_auth_cli_error(op->name, "no %s given: as arguments, or in a "
                              "file with --from", c->signer ? "signer id"
                                                            : "serial");
        goto done;
    }

    device_auth_cli_change_duplicates(c);

    for (k = 0, pending = 0; k < c->in.n; k++) {
        pending += c->in.items[k].outcome == DEVICE_AUTH_CLI_ITEM_PENDING;
    }

    if (pending > 0) {
        if (device_auth_cli_redis_connect(&c->redis) != 0) {
            device_auth_cli_error(op->name, "%s", c->redis.err);
            goto done;
        }

        device_auth_cli_change_who(c);

        if (device_auth_cli_change_load(c) != 0) {
            device_auth_cli_error(op->name, "%s", c->redis.err);
            goto done;
        }
    }

    if (device_auth_cli_change_run(c) != 0) {
        fflush(stdout);
        device_auth_cli_error(op->name, "%s", c->redis.err);
        goto done;
    }

    rc = device_auth_cli_change_summary(c);

done:

    device_auth_cli_redis_close(&c->redis);
    device_auth_cli_input_free(&c->in);
    free(c);

    return rc;
}


static int
device_auth_cli_change_parse(device_auth_cli_change_t *c, int argc,
    char **argv, const char **files, int *nfiles)
{
    int          o, rc;
    unsigned     need;
    const char  *name, *p, *opt;

    name = c->op->name;
    *nfiles = 0;

    while ((o = getopt_long(argc, argv, "f:qp:", device_auth_cli_change_options,
                            NULL))
           != -1)
    {
        rc = device_auth_cli_redis_option(&c->redis, o, optarg);

        if (rc < 0) {
            device_auth_cli_error(name, "%s", c->redis.err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        if (rc > 0) {
            continue;
        }

        need = 0;
        opt = NULL;

        switch (o) {

        case 'f':
            if (*nfiles == DEVICE_AUTH_CLI_CHANGE_FILES) {
                device_auth_cli_error(name, "more than %d --from files",
                                      DEVICE_AUTH_CLI_CHANGE_FILES);
                return DEVICE_AUTH_CLI_ERROR;
            }
            files[(*nfiles)++] = optarg;
            break;

        case DEVICE_AUTH_CLI_OPT_REASON:
            need = DEVICE_AUTH_CLI_CHANGE_REASON;
            opt = "--reason";
            c->value = optarg;
            break;

        case DEVICE_AUTH_CLI_OPT_BATCH:
            need = DEVICE_AUTH_CLI_CHANGE_BATCH;
            opt = "--batch";
            c->value = optarg;
            break;

        case DEVICE_AUTH_CLI_OPT_FOR:
            need = DEVICE_AUTH_CLI_CHANGE_FOR;
            opt = "--for";
            if (device_auth_cli_seconds(optarg, DEVICE_AUTH_CLI_CHANGE_FOR_MAX,
                                        &c->seconds)
                != 0)
            {
                device_auth_cli_error(name, "--for \"%s\": a duration from "
                                      "1s to 366d: 90, 90s, 30m, 1h30m, 1d, "
                                      "2w", optarg);
                return DEVICE_AUTH_CLI_ERROR;
            }
            break;

        case DEVICE_AUTH_CLI_OPT_SIGNER:
            need = DEVICE_AUTH_CLI_CHANGE_SIGNER;
            opt = "--signer";
            c->signer = 1;
            break;

        case DEVICE_AUTH_CLI_OPT_COMPROMISED:
            need = DEVICE_AUTH_CLI_CHANGE_SIGNER;
            opt = "--compromised";
            c->compromised = 1;
            break;

        case DEVICE_AUTH_CLI_OPT_REPLACE:
            need = DEVICE_AUTH_CLI_CHANGE_REPLACE;
            opt = "--replace";
            c->replace = 1;
            break;

        case DEVICE_AUTH_CLI_OPT_BY:
            for (p = optarg; *p; p++) {
                if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                    break;
                }
            }

            if (*p || p == optarg
                || p - optarg > DEVICE_AUTH_CLI_CHANGE_BY_MAX)
            {
                device_auth_cli_error(name, "--by: 1 to %d printable "
                                      "characters",
                                      DEVICE_AUTH_CLI_CHANGE_BY_MAX);
                return DEVICE_AUTH_CLI_ERROR;
            }

            c->by = optarg;
            break;

        case DEVICE_AUTH_CLI_OPT_DRY_RUN:
            c->dry_run = 1;
            break;

        case 'q':
            c->quiet = 1;
            break;

        case 'p':
            c->profile = ngx_device_auth_profile_parse(optarg);
            if (c->profile < 0) {
                device_auth_cli_error(name, "unknown profile \"%s\"",
                                      optarg);
                return DEVICE_AUTH_CLI_ERROR;
            }
            break;

        default:
            return device_auth_cli_usage(name);
        }

        if (need && !(c->op->options & need)) {
            device_auth_cli_error(name, "%s does not take %s", name, opt);
            return device_auth_cli_usage(name);
        }
    }

    if ((c->op->options & DEVICE_AUTH_CLI_CHANGE_FOR) && c->seconds == 0) {
        device_auth_cli_error(name, "--for is required: how long, such as "
                              "--for 1h");
        return device_auth_cli_usage(name);
    }

    if (c->compromised && !c->signer) {
        device_auth_cli_error(name, "--compromised goes with --signer");
        return device_auth_cli_usage(name);
    }

    if (optind == argc && *nfiles == 0) {
        return device_auth_cli_usage(name);
    }

    return DEVICE_AUTH_CLI_OK;
}


/* a well-formed id, for a file's header line to be told from data */

static int
device_auth_cli_change_valid(void *data, const char *id)
{
    char                       buf[NGX_DEVICE_AUTH_SERIAL_MAX + 1];
    device_auth_cli_change_t  *c;

    c = data;

    return c->signer ? device_auth_cli_signer_id(id, buf) == 0
                     : device_auth_cli_serial_profile(id, c->profile, buf)
                       == 0;
}


/* the entry's id and value, checked; its value as written */

static void
device_auth_cli_change_check(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it)
{
    int          kind;
    char        *v;
    size_t       i, len;
    const char  *value, *what, *why;

    if (it->outcome != DEVICE_AUTH_CLI_ITEM_PENDING) {
        return;
    }

    if (c->signer) {
        if (device_auth_cli_signer_id(it->raw, it->id) != 0) {
            it->id[0] = '\0';
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: not a signer id: 64 hex digits, the "
                       "SHA-256 of the signer certificate's DER");
            return;
        }

    } else if (device_auth_cli_serial_profile(it->raw, c->profile, it->id)
               != 0)
    {
        it->id[0] = '\0';
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                   c->profile == NGX_DEVICE_AUTH_PROFILE_GENERIC
                   ? "refused: not a serial: 1-64 characters of A-Z a-z 0-9 "
                     "space . _ : @ / + = -"
                   : "refused: not a serial: 18 hex digits, \"sn\" before "
                     "them or not (--profile generic for other CNs)");
        return;
    }

    what = c->op->options & DEVICE_AUTH_CLI_CHANGE_BATCH ? "batch" : "reason";
    value = it->value ? it->value : c->value;

    if (value == NULL) {
        if (c->op->value) {
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: no %s: a %s column, or --%s", what, what,
                       what);
            return;
        }

        value = "";
    }

    len = strlen(value);

    for (i = 0; i < len; i++) {
        if ((unsigned char) value[i] < 0x20 || value[i] == 0x7f) {
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: the %s holds a control character (\\x%02X)",
                       what, (unsigned char) value[i]);
            return;
        }
    }

    if (len > DEVICE_AUTH_CLI_VALUE_MAX - sizeof("quarantined: ")) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                   "refused: the %s is longer than %zu bytes", what,
                   DEVICE_AUTH_CLI_VALUE_MAX - sizeof("quarantined: "));
        return;
    }

    if (strcmp(c->op->name, "revoke") == 0 && !c->signer
        && strncmp(value, "quarantined:", 12) == 0)
    {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                   "refused: a reason starting \"quarantined:\" makes a "
                   "quarantine: device-auth quarantine --for");
        return;
    }

    if (c->op->options & DEVICE_AUTH_CLI_CHANGE_BATCH) {
        kind = ngx_device_auth_registration_kind(value, len, &why);

        if (kind == NGX_DEVICE_AUTH_REGISTRATION_NEITHER) {
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: the batch is neither free text nor the "
                       "format of an import: %s", why);
            return;
        }
    }

    /* a quarantine's value says so: the edge reads the prefix */

    if ((c->op->options & DEVICE_AUTH_CLI_CHANGE_FOR)
        && strncmp(value, "quarantined:", 12) != 0)
    {
        if (asprintf(&v, "quarantined: %s", value) < 0) {
            v = NULL;
        }

    } else {
        v = strdup(value);
    }

    free(it->value);
    it->value = v;

    if (v == NULL) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: out of memory");
    }
}


/* an id given twice is changed once, at its first place */

static void
device_auth_cli_change_duplicates(device_auth_cli_change_t *c)
{
    char                     where[DEVICE_AUTH_CLI_KEY_MAX];
    size_t                   i, n;
    device_auth_cli_item_t **p;

    p = malloc(c->in.n * sizeof(device_auth_cli_item_t *));
    if (p == NULL) {
        return;
    }

    for (i = 0, n = 0; i < c->in.n; i++) {
        if (c->in.items[i].outcome == DEVICE_AUTH_CLI_ITEM_PENDING) {
            p[n++] = &c->in.items[i];
        }
    }

    qsort(p, n, sizeof(device_auth_cli_item_t *),
          device_auth_cli_change_by_id);

    for (i = 1; i < n; i++) {
        if (strcmp(p[i]->id, p[i - 1]->id) != 0) {
            continue;
        }

        /* p[i - 1] is the first of them, or already a duplicate of it */

        if (p[i - 1]->outcome == DEVICE_AUTH_CLI_ITEM_DUPLICATE) {
            p[i]->outcome = DEVICE_AUTH_CLI_ITEM_DUPLICATE;
            p[i]->message = p[i - 1]->message
                            ? strdup(p[i - 1]->message) : NULL;
            continue;
        }

        device_auth_cli_change_source(p[i - 1], where, sizeof(where));
        (void) device_auth_cli_input_message(p[i],
                   DEVICE_AUTH_CLI_ITEM_DUPLICATE,
                   "duplicate of %s, skipped", where);
    }

    free(p);
}


static int
device_auth_cli_change_by_id(const void *a, const void *b)
{
    int                            rc;
    const device_auth_cli_item_t  *x, *y;

    x = *(device_auth_cli_item_t * const *) a;
    y = *(device_auth_cli_item_t * const *) b;

    rc = strcmp(x->id, y->id);

    if (rc != 0) {
        return rc;
    }

    return x < y ? -1 : (x > y);
}


/* who makes the change: the OS user, the one sudo was run by, the host */

static void
device_auth_cli_change_who(device_auth_cli_change_t *c)
{
    const char     *sudo;
    struct passwd  *pw;

    pw = getpwuid(getuid());

    if (pw != NULL && pw->pw_name != NULL) {
        snprintf(c->user, sizeof(c->user), "%s", pw->pw_name);
    } else {
        snprintf(c->user, sizeof(c->user), "uid %u", (unsigned) getuid());
    }

    sudo = getenv("SUDO_USER");

    if (getuid() == 0 && sudo != NULL && sudo[0] != '\0') {
        snprintf(c->user + strlen(c->user), sizeof(c->user) - strlen(c->user),
                 " (sudo from %.64s)", sudo);
    }

    if (gethostname(c->host, sizeof(c->host) - 1) != 0 || c->host[0] == '\0')
    {
        snprintf(c->host, sizeof(c->host), "unknown");
    }
}


static int
device_auth_cli_change_load(device_auth_cli_change_t *c)
{
    int          rc;
    redisReply  *reply;
    const char  *cmd[3];

    cmd[0] = "SCRIPT";
    cmd[1] = "LOAD";
    cmd[2] = device_auth_cli_change_script;

    reply = device_auth_cli_redis_command(&c->redis, 3, cmd, NULL);
    if (reply == NULL) {
        return -1;
    }

    rc = -1;

    if (reply->type == REDIS_REPLY_STRING && reply->len < sizeof(c->sha)) {
        memcpy(c->sha, reply->str, reply->len + 1);
        rc = 0;

    } else {
        snprintf(c->redis.err, sizeof(c->redis.err), "redis: SCRIPT LOAD: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str
                                                  : "unexpected reply");
    }

    freeReplyObject(reply);

    return rc;
}


/*
 * The entries in order, a batch of script calls at a time; each line is
 * printed once its batch is answered.  A connection lost in a batch stops
 * the command: what came before is written, that batch may be in part.
 */

static int
device_auth_cli_change_run(device_auth_cli_change_t *c)
{
    int                      eval;
    char                     where[DEVICE_AUTH_CLI_KEY_MAX];
    size_t                   i, end, k, n, retry, printed;
    redisReply              *reply;
    device_auth_cli_call_t  *calls;

    calls = calloc(DEVICE_AUTH_CLI_CHANGE_PIPELINE,
                   sizeof(device_auth_cli_call_t));
    if (calls == NULL) {
        snprintf(c->redis.err, sizeof(c->redis.err), "out of memory");
        return -1;
    }

    printed = 0;

    for (i = 0; i < c->in.n; i = end) {

        for (end = i, n = 0;
             end < c->in.n && n < DEVICE_AUTH_CLI_CHANGE_PIPELINE;
             end++)
        {
            if (c->in.items[end].outcome == DEVICE_AUTH_CLI_ITEM_PENDING) {
                calls[n++].it = &c->in.items[end];
            }
        }

        /* EVALSHA; the entries whose script Redis lost again by EVAL */

        for (eval = 0; n > 0 && eval < 2; eval++) {

            for (k = 0; k < n; k++) {
                if (device_auth_cli_change_call(c, &calls[k], eval) != 0) {
                    goto failed;
                }
            }

            for (k = 0, retry = 0; k < n; k++) {
                reply = device_auth_cli_redis_reply(&c->redis);
                if (reply == NULL) {
                    goto failed;
                }

                if (eval == 0 && reply->type == REDIS_REPLY_ERROR
                    && strncmp(reply->str, "NOSCRIPT", 8) == 0)
                {
                    calls[retry++].it = calls[k].it;
                    freeReplyObject(reply);
                    continue;
                }

                if (device_auth_cli_change_reply(c, calls[k].it, reply)
                    != 0)
                {
                    freeReplyObject(reply);
                    snprintf(c->redis.err, sizeof(c->redis.err),
                             "out of memory");
                    goto failed;
                }

                freeReplyObject(reply);
            }

            n = retry;
        }

        for ( /* void */ ; printed < end; printed++) {
            device_auth_cli_change_print(c, &c->in.items[printed]);
        }
    }

    free(calls);

    return 0;

failed:

    for ( /* void */ ; printed < c->in.n; printed++) {
        if (c->in.items[printed].outcome == DEVICE_AUTH_CLI_ITEM_PENDING) {
            break;
        }
        device_auth_cli_change_print(c, &c->in.items[printed]);
    }

    if (printed < c->in.n) {
        device_auth_cli_change_source(&c->in.items[printed], where,
                                      sizeof(where));
        snprintf(c->redis.err + strlen(c->redis.err),
                 sizeof(c->redis.err) - strlen(c->redis.err),
                 ": stopped at %s; the entries above are done, that one and "
                 "the next ones of its batch may be (device-auth list, "
                 "show)", where);
    }

    free(calls);

    return -1;
}


/* appends the script call of an entry to the pipeline */

static int
device_auth_cli_change_call(device_auth_cli_change_t *c,
    device_auth_cli_call_t *call, int eval)
{
    int                      i, nkeys, rc;
    char                     px[32];
    const char              *id, *target;
    device_auth_cli_item_t  *it;

    it = call->it;
    id = it->id;

    if (c->signer) {
        rc = device_auth_cli_redis_key(&c->redis, call->keys[0],
                                       "signer:%s:%s", id,
                                       c->compromised ? "compromised"
                                                      : "revoked") == 0;
        nkeys = 2;

    } else {
        target = c->op->key;

        rc = device_auth_cli_redis_key(&c->redis, call->keys[0], "{%s}:%s",
                                       id, target) == 0
             || device_auth_cli_redis_key(&c->redis, call->keys[2],
                                          "{%s}:seen", id) == 0
             || device_auth_cli_redis_key(&c->redis, call->keys[3],
                                          "{%s}:registered", id) == 0;

        nkeys = strcmp(target, "revoked") == 0 ? 4 : 2;
    }

    rc = rc || device_auth_cli_redis_key(&c->redis, call->keys[1], "audit")
               == 0;

    if (rc) {
        snprintf(c->redis.err, sizeof(c->redis.err), "a key is longer than "
                 "%d bytes", DEVICE_AUTH_CLI_KEY_MAX);
        return -1;
    }

    device_auth_cli_change_source(it, call->source, sizeof(call->source));
    snprintf(px, sizeof(px), "%lld", c->seconds * 1000);

    call->argc = 0;
    call->argv[call->argc++] = eval ? "EVAL" : "EVALSHA";
    call->argv[call->argc++] = eval ? device_auth_cli_change_script : c->sha;
    call->argv[call->argc++] = nkeys == 4 ? "4" : "2";

    for (i = 0; i < nkeys; i++) {
        call->argv[call->argc++] = call->keys[i];
    }

    call->argv[call->argc++] = c->op->name;
    call->argv[call->argc++] = it->value;
    call->argv[call->argc++] = px;
    call->argv[call->argc++] = c->dry_run ? (c->replace ? "dr" : "d")
                                          : (c->replace ? "r" : "");
    call->argv[call->argc++] = c->signer ? "signer" : "serial";
    call->argv[call->argc++] = id;
    call->argv[call->argc++] = c->user;
    call->argv[call->argc++] = c->by ? c->by : "";
    call->argv[call->argc++] = c->host;
    call->argv[call->argc++] = call->source;
    call->argv[call->argc++] = DEVICE_AUTH_CLI_AUDIT_MAXLEN;

    /* px is on the stack: its length is all hiredis keeps (it copies) */

    for (i = 0; i < call->argc; i++) {
        call->len[i] = strlen(call->argv[i]);
    }

    return device_auth_cli_redis_append(&c->redis, call->argc, call->argv,
                                        call->len);
}


/* what the script answered for an entry: its outcome and line */

static int
device_auth_cli_change_reply(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it, redisReply *reply)
{
    size_t                   i;
    redisReply             **e;
    const char              *r;
    device_auth_cli_found_t  f;
    static const int         types[6] = {
        REDIS_REPLY_STRING, -1, REDIS_REPLY_INTEGER, REDIS_REPLY_INTEGER,
        REDIS_REPLY_INTEGER, -1
    };

    if (reply->type == REDIS_REPLY_ERROR) {
        return device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: redis: %s%s",
                                             reply->str,
                                             strstr(reply->str, "WRONGTYPE")
                                             ? " (device-auth lint)" : "");
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 6) {
        return device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: redis: unexpected "
                                             "reply");
    }

    e = reply->element;

    for (i = 0; i < 6; i++) {
        if (types[i] >= 0 ? e[i]->type != types[i]
                          : (e[i]->type != REDIS_REPLY_STRING
                             && e[i]->type != REDIS_REPLY_NIL))
        {
            return device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: redis: unexpected reply");
        }
    }

    r = e[0]->str;

    f.result = strcmp(r, "done") == 0 ? DEVICE_AUTH_CLI_CHANGE_DONE
               : strcmp(r, "unchanged") == 0 ? DEVICE_AUTH_CLI_CHANGE_UNCHANGED
               : strcmp(r, "kept") == 0 ? DEVICE_AUTH_CLI_CHANGE_KEPT
               : DEVICE_AUTH_CLI_CHANGE_REFUSED;
    f.old = e[1];
    f.pttl = e[2]->integer;
    f.places = e[3]->integer;
    f.registered = (int) e[4]->integer;
    f.value = e[5];

    it->outcome = f.result == DEVICE_AUTH_CLI_CHANGE_DONE
                  ? DEVICE_AUTH_CLI_ITEM_DONE
                  : f.result == DEVICE_AUTH_CLI_CHANGE_UNCHANGED
                  ? DEVICE_AUTH_CLI_ITEM_UNCHANGED
                  : f.result == DEVICE_AUTH_CLI_CHANGE_KEPT
                  ? DEVICE_AUTH_CLI_ITEM_KEPT
                  : DEVICE_AUTH_CLI_ITEM_REFUSED;

    c->op->result(c, it, &f);

    return it->message ? 0 : -1;
}


/* "file:12", "stdin:12", "argument 2" */

static void
device_auth_cli_change_source(device_auth_cli_item_t *it, char *buf,
    size_t size)
{
    if (it->file == NULL) {
        snprintf(buf, size, "argument %zu", it->line);

    } else {
        snprintf(buf, size, "%s:%zu", strcmp(it->file, "-") == 0
                                      ? "stdin" : it->file, it->line);
    }
}


static void
device_auth_cli_change_print(device_auth_cli_change_t *c,
    device_auth_cli_item_t *it)
{
    if (c->quiet && it->outcome != DEVICE_AUTH_CLI_ITEM_REFUSED) {
        return;
    }

    if (it->file) {
        printf("%s:%zu ", strcmp(it->file, "-") == 0 ? "stdin" : it->file,
               it->line);
    }

    if (it->outcome == DEVICE_AUTH_CLI_ITEM_HEADER) {
        printf("%s\n", it->message ? it->message : "header");
        return;
    }

    if (it->id[0]) {
        printf("%s ", it->id);

    } else if (it->raw != NULL) {
        printf("\"");
        device_auth_cli_print(stdout, it->raw, strlen(it->raw));
        printf("\" ");

    } else {
        printf("- ");
    }

    printf("%s%s\n", c->dry_run && (it->outcome == DEVICE_AUTH_CLI_ITEM_DONE
                                    || it->outcome
                                       == DEVICE_AUTH_CLI_ITEM_UNCHANGED)
                     ? "dry run: " : "",
           it->message ? it->message : "out of memory");
}


static int
device_auth_cli_change_summary(device_auth_cli_change_t *c)
{
    size_t  i, n[DEVICE_AUTH_CLI_ITEM_OUTCOMES], entries;

    memset(n, 0, sizeof(n));

    for (i = 0; i < c->in.n; i++) {
        n[c->in.items[i].outcome]++;
    }

    entries = c->in.n - n[DEVICE_AUTH_CLI_ITEM_HEADER];

    printf("summary: %zu entr%s, %zu %s, %zu unchanged, ", entries,
           entries == 1 ? "y" : "ies", n[DEVICE_AUTH_CLI_ITEM_DONE],
           c->compromised ? c->op->compromised : c->op->done,
           n[DEVICE_AUTH_CLI_ITEM_UNCHANGED]);

    if (c->op->options & DEVICE_AUTH_CLI_CHANGE_REPLACE) {
        printf("%zu kept with another value, ", n[DEVICE_AUTH_CLI_ITEM_KEPT]);
    }

    printf("%zu refused, %zu duplicate%s%s\n", n[DEVICE_AUTH_CLI_ITEM_REFUSED],
           n[DEVICE_AUTH_CLI_ITEM_DUPLICATE],
           n[DEVICE_AUTH_CLI_ITEM_DUPLICATE] == 1 ? "" : "s",
           c->dry_run ? "; dry run: nothing written" : "");

    return n[DEVICE_AUTH_CLI_ITEM_REFUSED] ? DEVICE_AUTH_CLI_FAILED
                                           : DEVICE_AUTH_CLI_OK;
}


/* a value from Redis, quoted and escaped, into one of the line's buffers */

const char *
device_auth_cli_change_quote(device_auth_cli_change_t *c, int n,
    redisReply *r)
{
    char           *p, *last;
    size_t          i;
    unsigned char   ch;

    p = c->quoted[n];
    last = p + sizeof(c->quoted[n]) - 8;

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        snprintf(p, sizeof(c->quoted[n]), "(nil)");
        return p;
    }

    *p++ = '"';

    for (i = 0; i < r->len && p < last; i++) {
        ch = (unsigned char) r->str[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
            *p++ = (char) ch;
        } else {
            p += sprintf(p, "\\x%02X", ch);
        }
    }

    if (i < r->len) {
        p += sprintf(p, "...");
    }

    *p++ = '"';
    *p = '\0';

    return c->quoted[n];
}


/* "9m52s left", "no expiry" */

const char *
device_auth_cli_change_left(device_auth_cli_change_t *c, long long pttl)
{
    char  buf[48];

    if (pttl < 0) {
        snprintf(c->left, sizeof(c->left), "no expiry");

    } else {
        device_auth_cli_duration(buf, sizeof(buf), pttl);
        snprintf(c->left, sizeof(c->left), "%s left", buf);
    }

    return c->left;
}


/* "; 3 places forgotten" */

const char *
device_auth_cli_change_places(device_auth_cli_change_t *c, long long places)
{
    if (places < 0) {
        snprintf(c->places, sizeof(c->places), "; a :seen key of the wrong "
                 "type deleted");

    } else if (places == 0) {
        snprintf(c->places, sizeof(c->places), "; no places to forget");

    } else {
        snprintf(c->places, sizeof(c->places), "; %lld place%s forgotten",
                 places, places == 1 ? "" : "s");
    }

    return c->places;
}
