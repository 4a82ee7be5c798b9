
/*
 * device-auth: the items of a command that writes, from its arguments and
 * from --from files (device_auth_cli_input.h says what a file may hold).
 */


#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_auth_cli_input.h"


#define DEVICE_AUTH_CLI_FIELDS_MAX  64


typedef struct {
    char     *copy;                    /* the fields, unquoted */
    char     *field[DEVICE_AUTH_CLI_FIELDS_MAX];
    size_t    start[DEVICE_AUTH_CLI_FIELDS_MAX];   /* in the line */
    size_t    end[DEVICE_AUTH_CLI_FIELDS_MAX];
    int       n;
} device_auth_cli_fields_t;


typedef struct {
    int       on;
    char      delim;
    int       columns;
    int       id;
    int       value;                   /* -1: none */
} device_auth_cli_header_t;


static device_auth_cli_item_t *device_auth_cli_input_add(
    device_auth_cli_input_t *in, const char *file, size_t line);
static char device_auth_cli_input_delim(const char *p, size_t len);
static const char *device_auth_cli_input_split(const char *p, size_t len,
    char delim, device_auth_cli_fields_t *f);
static void device_auth_cli_input_header(device_auth_cli_header_t *h,
    device_auth_cli_fields_t *f, char delim, device_auth_cli_item_t *it);
static int device_auth_cli_input_name(const char *name,
    const char *const *names);
static void device_auth_cli_input_line(device_auth_cli_input_t *in,
    device_auth_cli_item_t *it, const char *p, size_t len,
    device_auth_cli_header_t *h, int first);
static char *device_auth_cli_input_dup(const char *p, size_t len);


static const char *const  device_auth_cli_input_ids[] = {
    "serial", "sn", "serialnumber", "uniqueid", "device", "deviceserial",
    "deviceid", "chipserial", "id", "signer", "signerid", "fingerprint",
    NULL
};

static const char *const  device_auth_cli_input_values[] = {
    "reason", "comment", "comments", "note", "notes", "batch", "value",
    "why", NULL
};


int
device_auth_cli_input_arg(device_auth_cli_input_t *in, const char *arg,
    size_t index)
{
    device_auth_cli_item_t  *it;

    it = device_auth_cli_input_add(in, NULL, index);
    if (it == NULL) {
        return -1;
    }

    it->raw = strdup(arg);

    return it->raw ? 0 : -1;
}


int
device_auth_cli_input_file(device_auth_cli_input_t *in, const char *path,
    char *err, size_t errlen)
{
    int                        first;
    char                      *buf, *p;
    FILE                      *f;
    size_t                     cap, line, len;
    ssize_t                    n;
    device_auth_cli_item_t    *it;
    device_auth_cli_header_t   h;

    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    memset(&h, 0, sizeof(device_auth_cli_header_t));
    buf = NULL;
    cap = 0;
    line = 0;
    first = 1;

    while ((n = getline(&buf, &cap, f)) != -1) {
        line++;
        p = buf;
        len = (size_t) n;

        if (line == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            len -= 3;
        }

        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'
                           || p[len - 1] == ' ' || p[len - 1] == '\t'))
        {
            len--;
        }

        while (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
            p++;
            len--;
        }

        if (len == 0 || p[0] == '#') {
            continue;
        }

        it = device_auth_cli_input_add(in, path, line);
        if (it == NULL) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        device_auth_cli_input_line(in, it, p, len, &h, first);
        first = 0;

        if (it->raw == NULL && it->outcome == DEVICE_AUTH_CLI_ITEM_REFUSED) {
            /* shown as it is, escaped */
            it->raw = strndup(p, len > 80 ? 80 : len);
        }

        if (it->outcome == DEVICE_AUTH_CLI_ITEM_PENDING && it->raw == NULL) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
    }

    if (ferror(f)) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path,
                 strerror(errno));
        goto failed;
    }

    free(buf);

    if (f != stdin) {
        fclose(f);
    }

    return 0;

failed:

    free(buf);

    if (f != stdin) {
        fclose(f);
    }

    return -1;
}


/* one line that is not blank nor a comment, trimmed */

static void
device_auth_cli_input_line(device_auth_cli_input_t *in,
    device_auth_cli_item_t *it, const char *p, size_t len,
    device_auth_cli_header_t *h, int first)
{
    int                       k, last;
    char                      delim, name[3];
    const char               *bad;
    device_auth_cli_fields_t  f;

    if (memchr(p, '\0', len) != NULL) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: a NUL byte: not a "
                                             "text file");
        return;
    }

    if (len > DEVICE_AUTH_CLI_LINE_MAX) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: longer than %d bytes",
                                             DEVICE_AUTH_CLI_LINE_MAX);
        return;
    }

    delim = h->on ? h->delim : device_auth_cli_input_delim(p, len);

    bad = device_auth_cli_input_split(p, len, delim, &f);
    if (bad != NULL) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_REFUSED,
                                             "refused: %s", bad);
        free(f.copy);
        return;
    }

    /* empty fields at the end ("0123...,,") are no value */

    while (f.n > 1 && f.field[f.n - 1][0] == '\0') {
        f.n--;
    }

    /* the first line is a header when its first field is a name */

    if (first && f.field[0][0] != '\0'
        && strpbrk(f.field[0], "0123456789") == NULL
        && !in->valid(in->data, f.field[0]))
    {
        device_auth_cli_input_header(h, &f, delim, it);
        free(f.copy);
        return;
    }

    if (h->on) {
        if (f.n > h->columns
            && (h->value < 0 || h->value != h->columns - 1))
        {
            snprintf(name, sizeof(name), "%s", delim == '\t' ? "\\t"
                     : (delim == ',' ? "," : ";"));
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: %d fields where the header has %d: quote "
                       "a field that holds a \"%s\"", f.n, h->columns, name);
            free(f.copy);
            return;
        }

        if (h->id >= f.n) {
            (void) device_auth_cli_input_message(it,
                       DEVICE_AUTH_CLI_ITEM_REFUSED,
                       "refused: no field %d (the header's id column)",
                       h->id + 1);
            free(f.copy);
            return;
        }

        it->raw = strdup(f.field[h->id]);
        k = h->value < f.n ? h->value : -1;
        last = h->columns - 1;

    } else {
        it->raw = strdup(f.field[0]);
        k = f.n > 1 ? 1 : -1;
        last = 1;
    }

    /*
     * the value: its field; or, when it is the last column and the line
     * has more fields, the rest of the line (a reason with commas,
     * unquoted)
     */

    if (k < 0) {
        /* none */

    } else if (k == last && f.n > last + 1) {
        it->value = device_auth_cli_input_dup(p + f.start[k],
                                              f.end[f.n - 1] - f.start[k]);
    } else {
        it->value = device_auth_cli_input_dup(f.field[k], strlen(f.field[k]));
    }

    free(f.copy);
}


static void
device_auth_cli_input_header(device_auth_cli_header_t *h,
    device_auth_cli_fields_t *f, char delim, device_auth_cli_item_t *it)
{
    int  i;

    h->on = 1;
    h->delim = delim;
    h->columns = f->n;
    h->id = -1;
    h->value = -1;

    for (i = 0; i < f->n; i++) {
        if (h->id < 0
            && device_auth_cli_input_name(f->field[i],
                                          device_auth_cli_input_ids))
        {
            h->id = i;

        } else if (h->value < 0
                   && device_auth_cli_input_name(f->field[i],
                                                 device_auth_cli_input_values))
        {
            h->value = i;
        }
    }

    if (h->id < 0) {
        h->id = 0;
        h->value = f->n > 1 ? 1 : -1;
    }

    if (h->value >= 0) {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_HEADER,
                                             "header: id in column %d, value "
                                             "in column %d", h->id + 1,
                                             h->value + 1);
    } else {
        (void) device_auth_cli_input_message(it, DEVICE_AUTH_CLI_ITEM_HEADER,
                                             "header: id in column %d, no "
                                             "value column", h->id + 1);
    }
}


/* a column name, compared in lower case without " ", "_" and "-" */

static int
device_auth_cli_input_name(const char *name, const char *const *names)
{
    char    buf[32];
    size_t  n;

    for (n = 0; *name && n + 1 < sizeof(buf); name++) {
        if (*name == ' ' || *name == '_' || *name == '-') {
            continue;
        }

        buf[n++] = (*name >= 'A' && *name <= 'Z') ? (char) (*name - 'A' + 'a')
                                                  : *name;
    }

    if (*name) {
        return 0;
    }

    buf[n] = '\0';

    for ( /* void */ ; *names; names++) {
        if (strcmp(buf, *names) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the first of "," ";" and tab outside quotes, or 0 */

static char
device_auth_cli_input_delim(const char *p, size_t len)
{
    int     quoted;
    size_t  i;

    for (i = 0, quoted = 0; i < len; i++) {
        if (p[i] == '"') {
            quoted = !quoted;

        } else if (!quoted && (p[i] == ',' || p[i] == ';' || p[i] == '\t')) {
            return p[i];
        }
    }

    return 0;
}


/*
 * The fields of a line, split at delim (0: one field) outside double
 * quotes, each trimmed and unquoted; NULL, or why the line is not CSV
 */

static const char *
device_auth_cli_input_split(const char *p, size_t len, char delim,
    device_auth_cli_fields_t *f)
{
    char    *o, *end;
    size_t   i;

    memset(f, 0, sizeof(device_auth_cli_fields_t));

    f->copy = malloc(len + 1);
    if (f->copy == NULL) {
        return "out of memory";
    }

    o = f->copy;
    i = 0;

    for ( ;; ) {
        if (f->n == DEVICE_AUTH_CLI_FIELDS_MAX) {
            return "too many fields";
        }

        while (i < len && (p[i] == ' ' || (p[i] == '\t' && delim != '\t'))) {
            i++;
        }

        f->start[f->n] = i;
        f->field[f->n] = o;

        if (i < len && p[i] == '"') {
            for (i++; /* void */ ; i++) {
                if (i == len) {
                    return "a quote is not closed";
                }

                if (p[i] == '"') {
                    if (i + 1 < len && p[i + 1] == '"') {
                        *o++ = '"';
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }

                *o++ = p[i];
            }

            while (i < len && (p[i] == ' '
                               || (p[i] == '\t' && delim != '\t')))
            {
                i++;
            }

            if (i < len && p[i] != delim) {
                return "text after a closing quote";
            }

        } else {
            end = o;

            for ( /* void */ ; i < len && (delim == 0 || p[i] != delim); i++)
            {
                *o++ = p[i];

                if (p[i] != ' ' && p[i] != '\t') {
                    end = o;
                }
            }

            o = end;
        }

        *o++ = '\0';
        f->end[f->n++] = i;

        if (i < len && delim != 0 && p[i] == delim) {
            i++;
            continue;
        }

        return NULL;
    }
}


static device_auth_cli_item_t *
device_auth_cli_input_add(device_auth_cli_input_t *in, const char *file,
    size_t line)
{
    size_t                   size;
    device_auth_cli_item_t  *items, *it;

    if (in->n == in->size) {
        size = in->size ? 2 * in->size : 256;
        items = realloc(in->items, size * sizeof(device_auth_cli_item_t));
        if (items == NULL) {
            return NULL;
        }

        in->items = items;
        in->size = size;
    }

    it = &in->items[in->n++];
    memset(it, 0, sizeof(device_auth_cli_item_t));
    it->file = file;
    it->line = line;

    return it;
}


/* a value, trimmed; NULL when empty (or out of memory) */

static char *
device_auth_cli_input_dup(const char *p, size_t len)
{
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    while (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        len--;
    }

    return len ? strndup(p, len) : NULL;
}


int
device_auth_cli_input_message(device_auth_cli_item_t *it, int outcome,
    const char *fmt, ...)
{
    int      n;
    char    *s;
    va_list  args;

    va_start(args, fmt);
    n = vasprintf(&s, fmt, args);
    va_end(args);

    free(it->message);
    it->message = n < 0 ? NULL : s;
    it->outcome = outcome;

    return n < 0 ? -1 : 0;
}


void
device_auth_cli_input_free(device_auth_cli_input_t *in)
{
    size_t  i;

    for (i = 0; i < in->n; i++) {
        free(in->items[i].raw);
        free(in->items[i].value);
        free(in->items[i].message);
    }

    free(in->items);
    in->items = NULL;
    in->n = 0;
    in->size = 0;
}
