
/*
 * device-auth import-manifest: the entries verified on several threads.
 *
 * An entry costs two ECDSA verifications and the decoding of its
 * certificates: 100,000 entries are most of a minute on one core.  The
 * entries are independent, the pinned keys and X509_STORE are only read,
 * so each thread takes the next chunk of entries until none are left, and
 * this thread reports the progress.
 */


#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "device_auth_cli.h"
#include "device_auth_cli_import.h"


#define DEVICE_AUTH_CLI_THREADS_MAX   16
#define DEVICE_AUTH_CLI_CHUNK         64


typedef struct {
    ngx_device_auth_manifest_t  *m;
    device_auth_cli_entry_t     *entries;
    size_t                       n;
    size_t                       next;       /* atomic */
    size_t                       done;       /* atomic */
} device_auth_cli_work_t;


static void *device_auth_cli_verify_worker(void *arg);
static double device_auth_cli_now(void);


int
device_auth_cli_verify(ngx_device_auth_manifest_t *m,
    device_auth_cli_entry_t *entries, size_t n, int threads, int progress)
{
    int                     i, started, tty;
    long                    cpus;
    size_t                  done, step, shown;
    double                  t0, t, last;
    pthread_t               tid[DEVICE_AUTH_CLI_THREADS_MAX];
    device_auth_cli_work_t  w;

    if (threads <= 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int) cpus : 1;
    }

    if (threads > DEVICE_AUTH_CLI_THREADS_MAX) {
        threads = DEVICE_AUTH_CLI_THREADS_MAX;
    }

    if ((size_t) threads > n / DEVICE_AUTH_CLI_CHUNK + 1) {
        threads = (int) (n / DEVICE_AUTH_CLI_CHUNK + 1);
    }

    w.m = m;
    w.entries = entries;
    w.n = n;
    w.next = 0;
    w.done = 0;

    t0 = device_auth_cli_now();

    for (started = 0; started < threads; started++) {
        if (pthread_create(&tid[started], NULL,
                           device_auth_cli_verify_worker, &w)
            != 0)
        {
            break;
        }
    }

    if (started == 0) {
        (void) device_auth_cli_verify_worker(&w);
    }

    /* on a terminal one line redrawn, otherwise a line every 10% */

    tty = isatty(STDERR_FILENO);
    step = n / 10 ? n / 10 : 1;
    shown = 0;
    last = t0;

    while ((done = __atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) < n) {
        usleep(50000);

        if (!progress) {
            continue;
        }

        t = device_auth_cli_now();

        if (tty && t - last >= 0.5) {
            fprintf(stderr, "\rverifying: %zu/%zu entries (%zu%%)", done, n,
                    done * 100 / n);
            last = t;

        } else if (!tty && done / step > shown && done < n) {
            shown = done / step;
            fprintf(stderr, "verifying: %zu/%zu entries (%zu%%)\n", done, n,
                    done * 100 / n);
        }
    }

    for (i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
    }

    if (progress) {
        t = device_auth_cli_now() - t0;
        fprintf(stderr, "%sverified %zu entries in %.1f s on %d thread%s "
                "(%.0f entries/s)\n", tty ? "\r" : "", n, t,
                started ? started : 1, started > 1 ? "s" : "",
                t > 0 ? n / t : 0.0);
    }

    return 0;
}


static void *
device_auth_cli_verify_worker(void *arg)
{
    size_t                    i, j, end;
    device_auth_cli_entry_t  *en;
    device_auth_cli_work_t   *w;

    w = arg;

    for ( ;; ) {
        i = __atomic_fetch_add(&w->next, DEVICE_AUTH_CLI_CHUNK,
                               __ATOMIC_RELAXED);
        if (i >= w->n) {
            break;
        }

        end = i + DEVICE_AUTH_CLI_CHUNK < w->n ? i + DEVICE_AUTH_CLI_CHUNK
                                               : w->n;

        for (j = i; j < end; j++) {
            en = &w->entries[j];

            (void) ngx_device_auth_manifest_entry(w->m, en->data, en->len,
                                                  &en->e);

            en->outcome = en->e.status == NGX_DEVICE_AUTH_MANIFEST_OK
                          ? DEVICE_AUTH_CLI_PENDING
                          : DEVICE_AUTH_CLI_REJECTED;
        }

        __atomic_add_fetch(&w->done, end - i, __ATOMIC_RELEASE);
    }

    return NULL;
}


static double
device_auth_cli_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}
