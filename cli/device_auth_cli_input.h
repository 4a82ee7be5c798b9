
/*
 * device-auth: what a command that writes is given to change, from its
 * arguments and from files (--from FILE, "-" for stdin): one serial (or
 * signer id) per line, or CSV.  Files come from spreadsheets, inventories
 * and other tools, so a file is read the way people write them, and every
 * line that is not used says why:
 *
 *   - CRLF or LF line ends, a UTF-8 byte order mark, blank lines, lines
 *     starting with "#", spaces around fields;
 *   - one column, or several separated by "," ";" or a tab (the first of
 *     them on the line), fields quoted with double quotes ("" inside);
 *   - a header line first: a line whose first field has no digit and is
 *     not an id; its names choose the columns of the id (serial, sn,
 *     uniqueId, device, signer, ...) and of the value (reason, comment,
 *     batch, ...), else the first two; a header line is reported;
 *   - without a header, the first field is the id and the rest of the
 *     line the value, commas and all; with a header whose last column is
 *     the value, the same; any other count of fields is refused.
 *
 * The ids are taken as written here; the command validates them.
 */


#ifndef _DEVICE_AUTH_CLI_INPUT_H_INCLUDED_
#define _DEVICE_AUTH_CLI_INPUT_H_INCLUDED_


#include <stddef.h>


#define DEVICE_AUTH_CLI_LINE_MAX       4096

/* what became of an item */
#define DEVICE_AUTH_CLI_ITEM_PENDING   0
#define DEVICE_AUTH_CLI_ITEM_DONE      1       /* written */
#define DEVICE_AUTH_CLI_ITEM_UNCHANGED 2       /* nothing to write */
#define DEVICE_AUTH_CLI_ITEM_KEPT      3       /* another value stays */
#define DEVICE_AUTH_CLI_ITEM_REFUSED   4
#define DEVICE_AUTH_CLI_ITEM_DUPLICATE 5       /* the same id came before */
#define DEVICE_AUTH_CLI_ITEM_HEADER    6       /* a file's header line */
#define DEVICE_AUTH_CLI_ITEM_OUTCOMES  7


typedef struct {
    const char  *file;         /* NULL: an argument */
    size_t       line;         /* in the file from 1, or the argument's */
    char        *raw;          /* the id as written */
    char        *value;        /* its value column; NULL: none */
    int          outcome;
    char        *message;      /* what became of it, for the person */
    char         id[72];       /* canonical: serial or signer id */
} device_auth_cli_item_t;


/* 1: the id column of a data line is well-formed (not a header) */
typedef int (*device_auth_cli_input_valid_pt)(void *data, const char *id);


typedef struct {
    device_auth_cli_item_t          *items;
    size_t                           n;
    size_t                           size;
    device_auth_cli_input_valid_pt   valid;
    void                            *data;
} device_auth_cli_input_t;


int device_auth_cli_input_arg(device_auth_cli_input_t *in, const char *arg,
    size_t index);
int device_auth_cli_input_file(device_auth_cli_input_t *in, const char *path,
    char *err, size_t errlen);
int device_auth_cli_input_message(device_auth_cli_item_t *it, int outcome,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void device_auth_cli_input_free(device_auth_cli_input_t *in);


#endif /* _DEVICE_AUTH_CLI_INPUT_H_INCLUDED_ */
