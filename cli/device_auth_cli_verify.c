
/*
 * device-auth import-manifest: the entries verified by several processes.
 *
 * An entry costs two or three ECDSA verifications and the decoding of its
 * device certificate: 100,000 entries are more than a minute of one core.
 * Processes rather than threads: each keeps its own cache of decoded CA
 * certificates (ngx_device_auth_manifest_t) without a lock, they do not
 * meet on the locks OpenSSL 3.0 takes in its decoder and provider stores
 * for every certificate decoded (pthread_rwlock calls are 3-4% of the
 * profile of one process), and one that fails cannot spoil the verdicts
 * of the others.  They share nothing but the results: each takes the next
 * chunk of entries from a counter in a shared mapping and writes its
 * verdicts into a shared array, which this process copies back when all
 * have exited, while it reports the progress.
 */


#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "device_auth_cli.h"
#include "device_auth_cli_import.h"


#define DEVICE_AUTH_CLI_JOBS_MAX   16
#define DEVICE_AUTH_CLI_CHUNK      64


typedef struct {
    size_t                             next;      /* atomic */
    size_t                             done;      /* atomic */
    ngx_device_auth_manifest_entry_t   e[];
} device_auth_cli_shared_t;


typedef struct {
    size_t                             n;         /* 0: not shown */
    int                                tty;
    size_t                             step;
    size_t                             shown;
    double                             t0;
    double                             last;
    double                             cpu0;      /* this process's */
} device_auth_cli_progress_t;


static void device_auth_cli_verify_chunks(ngx_device_auth_manifest_t *m,
    device_auth_cli_entry_t *entries, size_t n, device_auth_cli_shared_t *sh);
static void device_auth_cli_progress_init(device_auth_cli_progress_t *pr,
    size_t n);
static void device_auth_cli_progress(device_auth_cli_progress_t *pr,
    size_t done);
static void device_auth_cli_progress_end(device_auth_cli_progress_t *pr,
    int jobs);
static double device_auth_cli_cpu(int who);


int
device_auth_cli_verify(ngx_device_auth_manifest_t *m,
    device_auth_cli_entry_t *entries, size_t n, int jobs, int progress)
{
    int                          i, started, running, status, failed;
    long                         cpus;
    pid_t                        pid[DEVICE_AUTH_CLI_JOBS_MAX];
    size_t                       k, size;
    device_auth_cli_shared_t    *sh;
    device_auth_cli_progress_t   pr;

    if (jobs <= 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = cpus > 0 ? (int) cpus : 1;
    }

    if (jobs > DEVICE_AUTH_CLI_JOBS_MAX) {
        jobs = DEVICE_AUTH_CLI_JOBS_MAX;
    }

    /* a small manifest is not worth a process */

    if ((size_t) jobs > n / (4 * DEVICE_AUTH_CLI_CHUNK) + 1) {
        jobs = (int) (n / (4 * DEVICE_AUTH_CLI_CHUNK) + 1);
    }

    size = sizeof(device_auth_cli_shared_t)
           + n * sizeof(ngx_device_auth_manifest_entry_t);

    sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
              -1, 0);

    if (sh == MAP_FAILED) {
        device_auth_cli_error("import-manifest", "cannot map %zu bytes: %s",
                              size, strerror(errno));
        return -1;
    }

    sh->next = 0;
    sh->done = 0;

    device_auth_cli_progress_init(&pr, progress ? n : 0);

    started = 0;

    if (jobs > 1) {
        fflush(stdout);
        fflush(stderr);

        for (started = 0; started < jobs; started++) {
            pid[started] = fork();

            if (pid[started] < 0) {
                break;
            }

            if (pid[started] == 0) {
                device_auth_cli_verify_chunks(m, entries, n, sh);
                _exit(0);
            }
        }
    }

    if (started == 0) {
        device_auth_cli_verify_chunks(m, entries, n, sh);
    }

    /* the progress until every process has exited */

    failed = 0;
    running = started;

    while (running > 0) {
        usleep(50000);

        for (i = 0; i < started; i++) {
            if (pid[i] == 0 || waitpid(pid[i], &status, WNOHANG) != pid[i]) {
                continue;
            }

            pid[i] = 0;
            running--;

            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                device_auth_cli_error("import-manifest", "a verifying "
                    "process failed (%s %d)",
                    WIFSIGNALED(status) ? "signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status)
                                        : WEXITSTATUS(status));
                failed = 1;
            }
        }

        device_auth_cli_progress(&pr,
                                 __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE));
    }

    device_auth_cli_progress_end(&pr, started ? started : 1);

    if (!failed && sh->done != n) {
        device_auth_cli_error("import-manifest", "%zu of %zu entries were "
                              "verified", sh->done, n);
        failed = 1;
    }

    if (!failed) {
        for (k = 0; k < n; k++) {
            entries[k].e = sh->e[k];
            entries[k].outcome = sh->e[k].status == NGX_DEVICE_AUTH_MANIFEST_OK
                                 ? DEVICE_AUTH_CLI_PENDING
                                 : DEVICE_AUTH_CLI_REJECTED;
        }
    }

    munmap(sh, size);

    return failed ? -1 : 0;
}


static void
device_auth_cli_verify_chunks(ngx_device_auth_manifest_t *m,
    device_auth_cli_entry_t *entries, size_t n, device_auth_cli_shared_t *sh)
{
    size_t  i, j, end;

    for ( ;; ) {
        i = __atomic_fetch_add(&sh->next, DEVICE_AUTH_CLI_CHUNK,
                               __ATOMIC_RELAXED);
        if (i >= n) {
            break;
        }

        end = i + DEVICE_AUTH_CLI_CHUNK < n ? i + DEVICE_AUTH_CLI_CHUNK : n;

        for (j = i; j < end; j++) {
            (void) ngx_device_auth_manifest_entry(m, entries[j].data,
                                                  entries[j].len, &sh->e[j]);
        }

        __atomic_add_fetch(&sh->done, end - i, __ATOMIC_RELEASE);
    }

    ngx_device_auth_manifest_cache_free(m);
}


/*
 * On a terminal one line redrawn; otherwise a line at each tenth of the
 * entries, nine in all whatever the timing, the last ones at the end if
 * the entries went faster than the checks
 */

static void
device_auth_cli_progress_init(device_auth_cli_progress_t *pr, size_t n)
{
    pr->n = n;
    pr->tty = isatty(STDERR_FILENO);
    pr->step = n / 10 ? n / 10 : 1;
    pr->shown = 0;
    pr->t0 = device_auth_cli_now();
    pr->last = pr->t0;
    pr->cpu0 = device_auth_cli_cpu(RUSAGE_SELF);
}


static void
device_auth_cli_progress(device_auth_cli_progress_t *pr, size_t done)
{
    double  t;

    if (pr->n == 0) {
        return;
    }

    if (pr->tty) {
        t = device_auth_cli_now();

        if (t - pr->last >= 0.5 && done < pr->n) {
            fprintf(stderr, "\rverifying: %zu/%zu entries (%zu%%)", done,
                    pr->n, done * 100 / pr->n);
            pr->last = t;
        }

        return;
    }

    while (pr->shown < 9 && (pr->shown + 1) * pr->step <= done
           && (pr->shown + 1) * pr->step < pr->n)
    {
        pr->shown++;
        fprintf(stderr, "verifying: %zu/%zu entries (%zu%%)\n",
                pr->shown * pr->step, pr->n,
                pr->shown * pr->step * 100 / pr->n);
    }
}


static void
device_auth_cli_progress_end(device_auth_cli_progress_t *pr, int jobs)
{
    double  t, cpu;

    if (pr->n == 0) {
        return;
    }

    device_auth_cli_progress(pr, pr->n);

    /*
     * The CPU time says what the wall time would be on idle cores: the
     * processes have exited and been waited for, or this one did the work
     */

    t = device_auth_cli_now() - pr->t0;
    cpu = device_auth_cli_cpu(RUSAGE_CHILDREN)
          + device_auth_cli_cpu(RUSAGE_SELF) - pr->cpu0;

    fprintf(stderr, "%sverified %zu entries in %.1f s by %d process%s "
            "(%.0f entries/s), %.1f s of CPU\n", pr->tty ? "\r" : "",
            pr->n, t, jobs, jobs > 1 ? "es" : "", t > 0 ? pr->n / t : 0.0,
            cpu);
}


static double
device_auth_cli_cpu(int who)
{
    struct rusage  ru;

    if (getrusage(who, &ru) != 0) {
        return 0;
    }

    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
