
/*
 * h3headers.so: an LD_PRELOAD shim for gtlsclient (ngtcp2's HTTP/3 client,
 * Debian package ngtcp2-client), which has no option to send request
 * header fields of one's own.  It adds the fields of H3_EXTRA_HEADERS, one
 * "name: value" per line (names in lower case, as HTTP/3 requires), to
 * every request gtlsclient submits, so that t/http3.t can send forged
 * identity headers over HTTP/3 with a real client.
 *
 *   H3_EXTRA_HEADERS="$(printf 'x-device-serial: forged\n')" \
 *   LD_PRELOAD=build/tools/h3headers.so gtlsclient ...
 */


#define _GNU_SOURCE

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp3/nghttp3.h>


#define H3_EXTRA_MAX  16


typedef int (*submit_request_pt)(nghttp3_conn *conn, int64_t stream_id,
    const nghttp3_nv *nva, size_t nvlen, const nghttp3_data_reader *dr,
    void *stream_user_data);


static nghttp3_nv  extra[H3_EXTRA_MAX];
static size_t      nextra;


/* splits a copy of H3_EXTRA_HEADERS into extra[], once */

static void
h3_parse_extra(void)
{
    char        *buf, *line, *next, *colon, *value;
    const char  *env;

    env = getenv("H3_EXTRA_HEADERS");
    if (env == NULL) {
        return;
    }

    buf = strdup(env);
    if (buf == NULL) {
        return;
    }

    for (line = buf; line && *line && nextra < H3_EXTRA_MAX; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }

        colon = strchr(line, ':');
        if (colon == NULL || colon == line) {
            continue;
        }

        *colon = '\0';

        for (value = colon + 1; *value == ' '; value++) { /* void */ }

        extra[nextra].name = (uint8_t *) line;
        extra[nextra].namelen = strlen(line);
        extra[nextra].value = (uint8_t *) value;
        extra[nextra].valuelen = strlen(value);
        extra[nextra].flags = NGHTTP3_NV_FLAG_NONE;
        nextra++;
    }
}


int
nghttp3_conn_submit_request(nghttp3_conn *conn, int64_t stream_id,
    const nghttp3_nv *nva, size_t nvlen, const nghttp3_data_reader *dr,
    void *stream_user_data)
{
    int                       rc;
    nghttp3_nv               *all;
    static int                parsed;
    static submit_request_pt  next;

    if (next == NULL) {
        next = (submit_request_pt) dlsym(RTLD_NEXT,
                                         "nghttp3_conn_submit_request");
        if (next == NULL) {
            fprintf(stderr, "h3headers: %s\n", dlerror());
            abort();
        }
    }

    if (!parsed) {
        h3_parse_extra();
        parsed = 1;
    }

    all = malloc((nvlen + nextra) * sizeof(nghttp3_nv));
    if (all == NULL) {
        return NGHTTP3_ERR_NOMEM;
    }

    memcpy(all, nva, nvlen * sizeof(nghttp3_nv));
    memcpy(all + nvlen, extra, nextra * sizeof(nghttp3_nv));

    /* nghttp3 copies the fields before it returns */
    rc = next(conn, stream_id, all, nvlen + nextra, dr, stream_user_data);

    free(all);

    return rc;
}
