
/*
 * The log lines of the decisions.
 *
 * One line per rejected request (and per clone or unchecked device let
 * through), of key=value fields:
 *
 *   device_auth: device rejected: code=403 status=revoked
 *       serial="0123A1B2C3D4E5F6A7" signer=<hex> location="10.0.0.7"
 *       reason="stolen, ticket 4711"
 *
 * Names and numbers are bare; anything else is quoted, with '"', '\' and
 * every byte that is not printable ASCII escaped ("\"", "\\", "\xNN"): a
 * quote or a ", client: " in a reason or a place cannot end its value nor
 * forge a field, and nginx's own fields (", client: ...") follow the last
 * one.  A certificate that did not pass only claims its serial:
 * claimed_serial= and its subject=.
 *
 * The level is the decision's (device_auth_log_level [decision] level).
 * Within device_auth_log_interval, a worker writes one line per serial and
 * decision (per place, for a request without a certificate); the next
 * line after it says how many it left out: suppressed=N.  The table that
 * remembers them is a fixed array: two keys of one slot only cost a line
 * each, never one left out.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_device_auth_module.h"
#include "ngx_http_device_auth_ssl.h"
#include "ngx_http_device_auth_handler.h"
#include "ngx_http_device_auth_log.h"


#define NGX_HTTP_DEVICE_AUTH_LOG_SLOTS    1024
#define NGX_HTTP_DEVICE_AUTH_LOG_ID_MAX   130
#define NGX_HTTP_DEVICE_AUTH_LOG_LINE     4096


typedef struct {
    ngx_msec_t                  last;        /* its line was written */
    ngx_uint_t                  suppressed;  /* lines left out since */
    ngx_uint_t                  status;
    size_t                      len;
    u_char                      id[NGX_HTTP_DEVICE_AUTH_LOG_ID_MAX];
} ngx_http_device_auth_log_slot_t;


static ngx_uint_t ngx_http_device_auth_log_gate(ngx_uint_t status,
    u_char *id, size_t len, ngx_msec_t interval, ngx_uint_t *suppressed);
static u_char *ngx_http_device_auth_log_field(u_char *p, u_char *last,
    char *name, ngx_str_t *value);


static ngx_http_device_auth_log_slot_t  *ngx_http_device_auth_log_slots;


void
ngx_http_device_auth_log_decision(ngx_http_device_auth_ctx_t *ctx,
    ngx_int_t code, ngx_uint_t status)
{
    u_char                           *p, *last;
    size_t                            len;
    ngx_str_t                         signer, *serial;
    ngx_uint_t                        suppressed, verified;
    ngx_http_request_t               *r;
    ngx_http_device_auth_conn_t      *dc;
    ngx_http_device_auth_loc_conf_t  *dlcf;
    u_char                            id[NGX_HTTP_DEVICE_AUTH_LOG_ID_MAX];
    u_char                            line[NGX_HTTP_DEVICE_AUTH_LOG_LINE];

    r = ctx->request;
    dc = ctx->dc;
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_device_auth_module);

    if (r->connection->log->log_level < dlcf->log_levels[status]) {
        return;
    }

    verified = dc && dc->status == NGX_HTTP_DEVICE_AUTH_CONN_OK;
    serial = (dc && dc->serial.len) ? &dc->serial : NULL;

    /* what the interval counts by: the serial, else the place */

    if (serial) {
        id[0] = verified ? 's' : 'c';
        len = ngx_min(serial->len, sizeof(id) - 1);
        ngx_memcpy(id + 1, serial->data, len);

    } else {
        id[0] = 'p';
        len = ngx_min(ctx->location.len, sizeof(id) - 1);
        ngx_memcpy(id + 1, ctx->location.data, len);
    }

    if (!ngx_http_device_auth_log_gate(status, id, len + 1,
                                       dlcf->log_interval, &suppressed))
    {
        return;
    }

    p = line;
    last = line + sizeof(line);

    p = ngx_slprintf(p, last, "code=%i status=%V", code, &ctx->status);

    if (verified) {
        signer.len = NGX_DEVICE_AUTH_HEX_LEN;
        signer.data = dc->signer;

        p = ngx_http_device_auth_log_field(p, last, "serial", serial);
        p = ngx_slprintf(p, last, " signer=%V", &signer);

    } else {
        /* anyone can put any CN in a certificate: only claimed */

        if (serial) {
            p = ngx_http_device_auth_log_field(p, last, "claimed_serial",
                                               serial);
        }

        if (dc && dc->subject.len) {
            p = ngx_http_device_auth_log_field(p, last, "subject",
                                               &dc->subject);
        }
    }

    if (ctx->location.len) {
        p = ngx_http_device_auth_log_field(p, last, "location",
                                           &ctx->location);
    }

    p = ngx_http_device_auth_log_field(p, last, "reason", &ctx->reason);

    if (suppressed) {
        p = ngx_slprintf(p, last, " suppressed=%ui", suppressed);
    }

    ngx_log_error(dlcf->log_levels[status], r->connection->log, 0,
                  "device_auth: device %s: %*s",
                  code == NGX_HTTP_OK ? "allowed" : "rejected",
                  (size_t) (p - line), line);
}


/*
 * 1: the line is written (suppressed: how many were left out before it);
 * 0: one was written for the same serial and decision within the interval
 */

static ngx_uint_t
ngx_http_device_auth_log_gate(ngx_uint_t status, u_char *id, size_t len,
    ngx_msec_t interval, ngx_uint_t *suppressed)
{
    uint32_t                          hash;
    ngx_http_device_auth_log_slot_t  *s;

    *suppressed = 0;

    if (interval == 0) {
        return 1;
    }

    if (ngx_http_device_auth_log_slots == NULL) {
        ngx_http_device_auth_log_slots = ngx_calloc(
                                 NGX_HTTP_DEVICE_AUTH_LOG_SLOTS
                                 * sizeof(ngx_http_device_auth_log_slot_t),
                                 ngx_cycle->log);

        if (ngx_http_device_auth_log_slots == NULL) {
            return 1;
        }
    }

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, (u_char *) &status, sizeof(ngx_uint_t));
    ngx_crc32_update(&hash, id, len);
    ngx_crc32_final(hash);

    s = &ngx_http_device_auth_log_slots[hash % NGX_HTTP_DEVICE_AUTH_LOG_SLOTS];

    if (s->len == len && s->status == status
        && ngx_memcmp(s->id, id, len) == 0)
    {
        if ((ngx_msec_int_t) (ngx_current_msec - s->last)
            < (ngx_msec_int_t) interval)
        {
            s->suppressed++;
            return 0;
        }

        *suppressed = s->suppressed;

    } else {
        /* another serial's slot: it only gets its next line early */
        s->status = status;
        s->len = len;
        ngx_memcpy(s->id, id, len);
    }

    s->suppressed = 0;
    s->last = ngx_current_msec;

    return 1;
}


static u_char *
ngx_http_device_auth_log_field(u_char *p, u_char *last, char *name,
    ngx_str_t *value)
{
    p = ngx_slprintf(p, last, " %s=", name);

    return ngx_http_device_auth_log_value(p, last, value->data, value->len);
}


/*
 * "value", with '"', '\' and any byte that is not printable ASCII
 * escaped; cut, still quoted, when it does not fit before last
 */

u_char *
ngx_http_device_auth_log_value(u_char *p, u_char *last, u_char *data,
    size_t len)
{
    size_t             i;
    u_char             c;
    static u_char      hex[] = "0123456789abcdef";

    if (last - p < 2) {
        return p;
    }

    *p++ = '"';
    last--;                     /* the closing quote */

    for (i = 0; i < len; i++) {
        c = data[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (p == last) {
                break;
            }

            *p++ = c;
            continue;
        }

        if (c == '"' || c == '\\') {
            if (last - p < 2) {
                break;
            }

            *p++ = '\\';
            *p++ = c;
            continue;
        }

        if (last - p < 4) {
            break;
        }

        *p++ = '\\';
        *p++ = 'x';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    *p++ = '"';

    return p;
}
