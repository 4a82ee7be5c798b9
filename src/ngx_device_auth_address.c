
/*
 * device_auth_redis <address> [db=<n>] [password=<p>] [user=<u>]
 *
 * The address is an IP literal with a port ("127.0.0.1:6379",
 * "[::1]:6379") or "unix:/path": a host name would need a DNS lookup,
 * which would block a worker, so none is accepted.
 */


#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "ngx_device_auth_address.h"


static int ngx_device_auth_address_number(const char *s, size_t len,
    long max, long *n);
static int ngx_device_auth_address_copy(char *dst, size_t size,
    const char *s, size_t len);


int
ngx_device_auth_address_parse(int argc, const char *const *argv,
    const size_t *lens, ngx_device_auth_address_t *a, char *err,
    size_t errlen)
{
    int             i, have_db, have_user, have_password;
    long            port;
    size_t          len, hlen;
    const char     *s, *colon, *host;
    unsigned char   buf[sizeof(struct in6_addr)];

    memset(a, 0, sizeof(ngx_device_auth_address_t));

    if (argc < 1) {
        snprintf(err, errlen, "no address");
        return -1;
    }

    s = argv[0];
    len = lens[0];

    if (memchr(s, '\0', len) != NULL) {
        snprintf(err, errlen, "invalid address");
        return -1;
    }

    if (len >= 5 && memcmp(s, "unix:", 5) == 0) {

        if (len < 7 || s[5] != '/' || len - 5 >= sizeof(a->path)) {
            snprintf(err, errlen, "unix socket path must be absolute and "
                     "shorter than %d characters", (int) sizeof(a->path));
            return -1;
        }

        memcpy(a->path, s + 5, len - 5);
        a->path[len - 5] = '\0';

    } else {

        colon = NULL;

        if (len && s[0] == '[') {
            host = s + 1;
            colon = memchr(s, ']', len);

            if (colon == NULL || colon + 1 >= s + len || colon[1] != ':') {
                snprintf(err, errlen, "invalid address \"%.*s\", expected "
                         "\"[ipv6]:port\"", (int) (len > 64 ? 64 : len), s);
                return -1;
            }

            hlen = (size_t) (colon - host);
            colon++;

        } else {
            host = s;

            for (i = (int) len - 1; i >= 0; i--) {
                if (s[i] == ':') {
                    colon = s + i;
                    break;
                }
            }

            if (colon == NULL) {
                snprintf(err, errlen, "invalid address \"%.*s\", expected "
                         "\"ip:port\" or \"unix:/path\"",
                         (int) (len > 64 ? 64 : len), s);
                return -1;
            }

            hlen = (size_t) (colon - host);
        }

        if (hlen == 0 || hlen >= sizeof(a->host)) {
            snprintf(err, errlen, "invalid address \"%.*s\"",
                     (int) (len > 64 ? 64 : len), s);
            return -1;
        }

        memcpy(a->host, host, hlen);
        a->host[hlen] = '\0';

        /* "2001:db8::1:80" is ambiguous: IPv6 needs its brackets */

        if (s[0] != '[' && memchr(a->host, ':', hlen) != NULL) {
            snprintf(err, errlen, "invalid address \"%.*s\", an IPv6 "
                     "address is written \"[ipv6]:port\"",
                     (int) (len > 64 ? 64 : len), s);
            return -1;
        }

        if (s[0] == '[' && memchr(a->host, ':', hlen) == NULL) {
            snprintf(err, errlen, "invalid address \"%.*s\", brackets are "
                     "for IPv6 addresses", (int) (len > 64 ? 64 : len), s);
            return -1;
        }

        if (inet_pton(AF_INET, a->host, buf) != 1
            && inet_pton(AF_INET6, a->host, buf) != 1)
        {
            snprintf(err, errlen, "\"%s\" is not an IP address (host names "
                     "would need a blocking DNS lookup)", a->host);
            return -1;
        }

        if (ngx_device_auth_address_number(colon + 1,
                                           (size_t) (s + len - colon - 1),
                                           65535, &port)
            != 0 || port == 0)
        {
            snprintf(err, errlen, "invalid port in \"%.*s\"",
                     (int) (len > 64 ? 64 : len), s);
            return -1;
        }

        a->port = (int) port;
    }

    have_db = 0;
    have_user = 0;
    have_password = 0;

    for (i = 1; i < argc; i++) {
        s = argv[i];
        len = lens[i];

        if (len > 3 && memcmp(s, "db=", 3) == 0) {
            if (have_db++
                || ngx_device_auth_address_number(s + 3, len - 3, 1 << 20,
                                                  &a->db)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"db=\"");
                return -1;
            }

            continue;
        }

        if (len > 9 && memcmp(s, "password=", 9) == 0) {
            if (have_password++
                || ngx_device_auth_address_copy(a->password,
                                                sizeof(a->password),
                                                s + 9, len - 9)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"password=\"");
                return -1;
            }

            continue;
        }

        if (len > 5 && memcmp(s, "user=", 5) == 0) {
            if (have_user++
                || ngx_device_auth_address_copy(a->user, sizeof(a->user),
                                                s + 5, len - 5)
                   != 0)
            {
                snprintf(err, errlen, "invalid or duplicate \"user=\"");
                return -1;
            }

            continue;
        }

        snprintf(err, errlen, "unknown option \"%.*s\", expected \"db=\", "
                 "\"password=\" or \"user=\"",
                 (int) (len > 32 ? 32 : len), s);
        return -1;
    }

    if (have_user && !have_password) {
        snprintf(err, errlen, "\"user=\" needs \"password=\"");
        return -1;
    }

    return 0;
}


static int
ngx_device_auth_address_number(const char *s, size_t len, long max, long *n)
{
    size_t  i;

    if (len == 0 || len > 9) {
        return -1;
    }

    *n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *n = *n * 10 + (s[i] - '0');
    }

    return *n > max ? -1 : 0;
}


static int
ngx_device_auth_address_copy(char *dst, size_t size, const char *s,
    size_t len)
{
    if (len == 0 || len >= size || memchr(s, '\0', len) != NULL) {
        return -1;
    }

    memcpy(dst, s, len);
    dst[len] = '\0';

    return 0;
}
