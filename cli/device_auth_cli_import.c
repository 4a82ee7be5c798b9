
/*
 * device-auth import-manifest --roots F [--signers F] --log-signers F
 *     [--depth N] [--redis ADDR] [--prefix P] [--dry-run] [--replace]
 *     [--quiet] [--jobs N] MANIFEST...
 *
 * Every file is read whole first: one that is not a well-formed manifest
 * (not JSON, truncated, not an array of objects) stops the command before
 * anything is written.  Then every entry is verified, duplicates are
 * found, and what passed is registered; one line per entry and a summary
 * say what became of each.  Exit 1 when an entry was rejected.
 */


#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "device_auth_cli.h"
#include "device_auth_cli_import.h"


/* from this many entries on, progress is reported on stderr */
#define DEVICE_AUTH_CLI_PROGRESS_MIN  1000

/* about 1.4 KB each until the end: a reel is a few thousand */
#define DEVICE_AUTH_CLI_ENTRIES_MAX   1000000

#define DEVICE_AUTH_CLI_OPT_SIGNERS   0x200
#define DEVICE_AUTH_CLI_OPT_LOG       0x201
#define DEVICE_AUTH_CLI_OPT_DRY_RUN   0x202
#define DEVICE_AUTH_CLI_OPT_REPLACE   0x203


typedef struct {
    const char                *path;
    int                        fd;
    char                      *data;        /* mapped */
    size_t                     len;
    char                       sha256[NGX_DEVICE_AUTH_HEX_LEN + 1];
} device_auth_cli_file_t;


typedef struct {
    const char                *roots_file;
    const char                *signers_file;
    const char                *log_file;
    long                       depth;
    long                       jobs;
    int                        dry_run;
    int                        replace;
    int                        quiet;

    device_auth_cli_file_t    *files;
    int                        nfiles;
    device_auth_cli_entry_t   *entries;
    size_t                     n;

    ngx_device_auth_bundle_t  *roots;
    ngx_device_auth_bundle_t  *signers;
    ngx_device_auth_bundle_t  *log_certs;
    ngx_device_auth_manifest_t m;
    device_auth_cli_redis_t    redis;
} device_auth_cli_import_t;


static const struct option  device_auth_cli_import_options[] = {
    { "roots", required_argument, NULL, 'r' },
    { "signers", required_argument, NULL, DEVICE_AUTH_CLI_OPT_SIGNERS },
    { "log-signers", required_argument, NULL, DEVICE_AUTH_CLI_OPT_LOG },
    { "depth", required_argument, NULL, 'd' },
    { "dry-run", no_argument, NULL, DEVICE_AUTH_CLI_OPT_DRY_RUN },
    { "replace", no_argument, NULL, DEVICE_AUTH_CLI_OPT_REPLACE },
    { "quiet", no_argument, NULL, 'q' },
    { "jobs", required_argument, NULL, 'j' },
    DEVICE_AUTH_CLI_REDIS_OPTIONS,
    { NULL, 0, NULL, 0 }
};


static int device_auth_cli_import_options_parse(device_auth_cli_import_t *im,
    int argc, char **argv);
static int device_auth_cli_import_pins(device_auth_cli_import_t *im);
static int device_auth_cli_import_file(device_auth_cli_import_t *im,
    device_auth_cli_file_t *f);
static int device_auth_cli_import_sha256(device_auth_cli_file_t *f);
static int device_auth_cli_import_duplicates(device_auth_cli_import_t *im);
static int device_auth_cli_import_by_serial(const void *a, const void *b);
static int device_auth_cli_import_report(device_auth_cli_import_t *im);
static void device_auth_cli_import_free(device_auth_cli_import_t *im);


int
device_auth_cli_import(int argc, char **argv)
{
    int                        i, rc, progress;
    size_t                     k, bytes;
    double                     t;
    device_auth_cli_import_t   im;

    memset(&im, 0, sizeof(device_auth_cli_import_t));
    device_auth_cli_redis_init(&im.redis);

    rc = device_auth_cli_import_options_parse(&im, argc, argv);
    if (rc != DEVICE_AUTH_CLI_OK) {
        return rc;
    }

    rc = DEVICE_AUTH_CLI_ERROR;

    im.nfiles = argc - optind;
    im.files = calloc(im.nfiles, sizeof(device_auth_cli_file_t));
    if (im.files == NULL) {
        device_auth_cli_error("import-manifest", "out of memory");
        goto done;
    }

    for (i = 0; i < im.nfiles; i++) {
        im.files[i].path = argv[optind + i];
        im.files[i].fd = -1;
    }

    if (device_auth_cli_import_pins(&im) != 0) {
        goto done;
    }

    /* all files are checked before anything is verified or written */

    t = device_auth_cli_now();
    bytes = 0;

    for (i = 0; i < im.nfiles; i++) {
        if (device_auth_cli_import_file(&im, &im.files[i]) != 0) {
            goto done;
        }

        bytes += im.files[i].len;
    }

    /* big files: how long each step takes, on stderr */

    progress = im.n >= DEVICE_AUTH_CLI_PROGRESS_MIN;

    if (progress) {
        fprintf(stderr, "read %zu entries (%.1f MB) in %.1f s\n", im.n,
                bytes / 1e6, device_auth_cli_now() - t);
    }

    /* Redis is reached before the long part: fail early */

    if (device_auth_cli_redis_connect(&im.redis) != 0) {
        device_auth_cli_error("import-manifest", "%s", im.redis.err);
        goto done;
    }

    if (device_auth_cli_verify(&im.m, im.entries, im.n, (int) im.jobs,
                               progress)
        != 0)
    {
        goto done;
    }

    for (k = 0; k < im.n; k++) {
        memcpy(im.entries[k].e.reg.manifest,
               im.files[im.entries[k].file].sha256,
               NGX_DEVICE_AUTH_HEX_LEN + 1);
    }

    if (device_auth_cli_import_duplicates(&im) != 0) {
        device_auth_cli_error("import-manifest", "out of memory");
        goto done;
    }

    for (k = 0, bytes = 0; k < im.n; k++) {
        bytes += im.entries[k].outcome == DEVICE_AUTH_CLI_PENDING;
    }

    t = device_auth_cli_now();

    if (device_auth_cli_register(&im.redis, im.entries, im.n, im.dry_run,
                                 im.replace)
        != 0)
    {
        device_auth_cli_error("import-manifest", "%s", im.redis.err);
        (void) device_auth_cli_import_report(&im);
        goto done;
    }

    if (progress) {
        t = device_auth_cli_now() - t;
        fprintf(stderr, "redis: %zu verified entries %s in %.1f s (%.0f "
                "entries/s)\n", bytes, im.dry_run ? "looked up" : "written",
                t, t > 0 ? bytes / t : 0.0);
    }

    rc = device_auth_cli_import_report(&im);

done:

    device_auth_cli_import_free(&im);

    return rc;
}


static int
device_auth_cli_import_options_parse(device_auth_cli_import_t *im, int argc,
    char **argv)
{
    int  c, rc;

    im->depth = 1;
    im->jobs = 0;

    while ((c = getopt_long(argc, argv, "r:d:qj:",
                            device_auth_cli_import_options, NULL))
           != -1)
    {
        rc = device_auth_cli_redis_option(&im->redis, c, optarg);

        if (rc < 0) {
            device_auth_cli_error("import-manifest", "%s", im->redis.err);
            return DEVICE_AUTH_CLI_ERROR;
        }

        if (rc > 0) {
            continue;
        }

        switch (c) {
        case 'r':
            im->roots_file = optarg;
            break;
        case DEVICE_AUTH_CLI_OPT_SIGNERS:
            im->signers_file = optarg;
            break;
        case DEVICE_AUTH_CLI_OPT_LOG:
            im->log_file = optarg;
            break;
        case 'd':
        case 'j':
            if (device_auth_cli_number(optarg, 1, c == 'd' ? 16 : 64,
                                       c == 'd' ? &im->depth : &im->jobs)
                != 0)
            {
                device_auth_cli_error("import-manifest", "invalid --%s "
                                      "\"%s\"", c == 'd' ? "depth"
                                                         : "jobs", optarg);
                return DEVICE_AUTH_CLI_ERROR;
            }
            break;
        case DEVICE_AUTH_CLI_OPT_DRY_RUN:
            im->dry_run = 1;
            break;
        case DEVICE_AUTH_CLI_OPT_REPLACE:
            im->replace = 1;
            break;
        case 'q':
            im->quiet = 1;
            break;
        default:
            return device_auth_cli_usage("import-manifest");
        }
    }

    if (im->roots_file == NULL || im->log_file == NULL) {
        device_auth_cli_error("import-manifest", "--roots and --log-signers "
                              "are required");
        return device_auth_cli_usage("import-manifest");
    }

    if (optind >= argc) {
        device_auth_cli_error("import-manifest", "no manifest file given");
        return device_auth_cli_usage("import-manifest");
    }

    return DEVICE_AUTH_CLI_OK;
}


/* the pins, as an edge would load them, and the log signers' keys */

static int
device_auth_cli_import_pins(device_auth_cli_import_t *im)
{
    char  err[NGX_DEVICE_AUTH_ERR_MAX];

    im->roots = ngx_device_auth_bundle_load(im->roots_file, err, sizeof(err));
    if (im->roots == NULL) {
        device_auth_cli_error("import-manifest", "--roots: %s", err);
        return -1;
    }

    if (im->signers_file) {
        im->signers = ngx_device_auth_bundle_load(im->signers_file, err,
                                                  sizeof(err));
        if (im->signers == NULL) {
            device_auth_cli_error("import-manifest", "--signers: %s", err);
            return -1;
        }
    }

    /* manifests are of ATECC608 parts: uniqueId is the chip's serial */

    im->m.policy = ngx_device_auth_policy_create(im->roots, im->signers,
                       (int) im->depth, NGX_DEVICE_AUTH_PROFILE_ATECC608, err,
                       sizeof(err));
    if (im->m.policy == NULL) {
        device_auth_cli_error("import-manifest", "%s", err);
        return -1;
    }

    im->log_certs = ngx_device_auth_bundle_load(im->log_file, err,
                                                sizeof(err));
    if (im->log_certs == NULL) {
        device_auth_cli_error("import-manifest", "--log-signers: %s", err);
        return -1;
    }

    im->m.log_signers = ngx_device_auth_jws_keys_create(im->log_certs, err,
                                                        sizeof(err));
    if (im->m.log_signers == NULL) {
        device_auth_cli_error("import-manifest", "--log-signers: %s", err);
        return -1;
    }

    return 0;
}


static int
device_auth_cli_import_file(device_auth_cli_import_t *im,
    device_auth_cli_file_t *f)
{
    char                              err[NGX_DEVICE_AUTH_ERR_MAX];
    size_t                            i, n;
    struct stat                       st;
    device_auth_cli_entry_t          *tmp;
    ngx_device_auth_manifest_span_t  *spans;

    f->fd = open(f->path, O_RDONLY);

    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        device_auth_cli_error("import-manifest", "%s: %s", f->path,
                              strerror(errno));
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        device_auth_cli_error("import-manifest", "%s: not a regular file",
                              f->path);
        return -1;
    }

    f->len = (size_t) st.st_size;

    if (f->len == 0) {
        device_auth_cli_error("import-manifest", "%s: empty file, not a "
                              "manifest", f->path);
        return -1;
    }

    f->data = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, f->fd, 0);

    if (f->data == MAP_FAILED) {
        f->data = NULL;
        device_auth_cli_error("import-manifest", "%s: %s", f->path,
                              strerror(errno));
        return -1;
    }

    (void) madvise(f->data, f->len, MADV_SEQUENTIAL);

    if (device_auth_cli_import_sha256(f) != 0) {
        device_auth_cli_error("import-manifest", "%s: cannot hash it",
                              f->path);
        return -1;
    }

    if (ngx_device_auth_manifest_scan(f->data, f->len,
                                      DEVICE_AUTH_CLI_ENTRIES_MAX, &spans,
                                      &n, err, sizeof(err))
        != 0)
    {
        device_auth_cli_error("import-manifest", "%s: %s; nothing was "
                              "imported", f->path, err);
        return -1;
    }

    if (im->n + n > DEVICE_AUTH_CLI_ENTRIES_MAX) {
        free(spans);
        device_auth_cli_error("import-manifest", "%s: %zu entries after %zu "
                              "in the files before it: more than %d in one "
                              "import; nothing was imported", f->path, n,
                              im->n, DEVICE_AUTH_CLI_ENTRIES_MAX);
        return -1;
    }

    tmp = realloc(im->entries, (im->n + n) * sizeof(device_auth_cli_entry_t));
    if (tmp == NULL) {
        free(spans);
        device_auth_cli_error("import-manifest", "out of memory");
        return -1;
    }

    im->entries = tmp;

    for (i = 0; i < n; i++) {
        memset(&im->entries[im->n + i], 0, sizeof(device_auth_cli_entry_t));
        im->entries[im->n + i].data = f->data + spans[i].offset;
        im->entries[im->n + i].len = spans[i].len;
        im->entries[im->n + i].file = (int) (f - im->files);
        im->entries[im->n + i].index = i + 1;
    }

    im->n += n;
    free(spans);

    return 0;
}


static int
device_auth_cli_import_sha256(device_auth_cli_file_t *f)
{
    unsigned int   n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(f->data, f->len, md, &n, EVP_sha256(), NULL) != 1) {
        return -1;
    }

    ngx_device_auth_hex(md, NGX_DEVICE_AUTH_ID_LEN, f->sha256);

    return 0;
}


/*
 * A serial twice among the verified entries of the files given: the same
 * key again is a repeated entry, the first one counts; another key means
 * two chips claim one serial, and none of them is registered.
 */

static int
device_auth_cli_import_duplicates(device_auth_cli_import_t *im)
{
    size_t                    i, j, k, n, conflict;
    device_auth_cli_entry_t  *first, *en, **ok;

    ok = malloc((im->n ? im->n : 1) * sizeof(device_auth_cli_entry_t *));
    if (ok == NULL) {
        return -1;
    }

    n = 0;

    for (i = 0; i < im->n; i++) {
        if (im->entries[i].outcome == DEVICE_AUTH_CLI_PENDING) {
            ok[n++] = &im->entries[i];
        }
    }

    /* by serial, then in the order of the files */
    qsort(ok, n, sizeof(device_auth_cli_entry_t *),
          device_auth_cli_import_by_serial);

    for (i = 0; i < n; i = j) {
        first = ok[i];
        conflict = 0;

        for (j = i + 1;
             j < n && strcmp(ok[j]->e.serial, first->e.serial) == 0;
             j++)
        {
            conflict |= strcmp(ok[j]->e.reg.spki_sha256,
                               first->e.reg.spki_sha256) != 0;
        }

        for (k = i + (conflict ? 0 : 1); k < j; k++) {
            en = ok[k];
            en->outcome = DEVICE_AUTH_CLI_REJECTED;

            if (conflict) {
                snprintf(en->e.reason, sizeof(en->e.reason), "serial in "
                         "%s:%zu too, with another key",
                         im->files[ok[k == i ? i + 1 : i]->file].path,
                         ok[k == i ? i + 1 : i]->index);
            } else {
                snprintf(en->e.reason, sizeof(en->e.reason), "duplicate of "
                         "%s:%zu", im->files[first->file].path,
                         first->index);
            }
        }
    }

    free(ok);

    return 0;
}


static int
device_auth_cli_import_by_serial(const void *a, const void *b)
{
    int                             rc;
    const device_auth_cli_entry_t  *x, *y;

    x = *(device_auth_cli_entry_t *const *) a;
    y = *(device_auth_cli_entry_t *const *) b;

    rc = strcmp(x->e.serial, y->e.serial);

    if (rc != 0) {
        return rc;
    }

    /* the entries are in file order in memory */
    return x < y ? -1 : x > y;
}


static int
device_auth_cli_import_report(device_auth_cli_import_t *im)
{
    size_t                    i, count[DEVICE_AUTH_CLI_OUTCOMES];
    const char               *what;
    device_auth_cli_entry_t  *en;
    static const char        *outcome[2][DEVICE_AUTH_CLI_OUTCOMES] = {
        { "not written", "registered", "already registered",
          "already registered, other value kept:", "replaced, was:",
          "rejected:" },
        { "not read", "would be registered", "already registered",
          "already registered, other value kept:", "would replace:",
          "rejected:" }
    };

    memset(count, 0, sizeof(count));

    for (i = 0; i < im->n; i++) {
        en = &im->entries[i];
        count[en->outcome]++;

        if (im->quiet && (en->outcome == DEVICE_AUTH_CLI_REGISTERED
                          || en->outcome == DEVICE_AUTH_CLI_ALREADY))
        {
            continue;
        }

        what = outcome[im->dry_run][en->outcome];

        printf("%s:%zu %s %s", im->files[en->file].path, en->index,
               en->e.serial[0] ? en->e.serial : "-", what);

        if (en->outcome == DEVICE_AUTH_CLI_REJECTED) {
            printf(" %s", en->e.reason);
        }

        if (en->old != NULL) {
            printf(en->outcome == DEVICE_AUTH_CLI_REJECTED ? ": \"" : " \"");
            device_auth_cli_print(stdout, en->old, strlen(en->old));
            printf("\"");
        }

        printf("\n");
    }

    printf("summary: %zu entries in %d file%s, %zu %s, %zu already "
           "registered, %zu kept with another value, %zu %s, %zu "
           "rejected%s\n", im->n, im->nfiles, im->nfiles > 1 ? "s" : "",
           count[DEVICE_AUTH_CLI_REGISTERED],
           im->dry_run ? "to register" : "registered",
           count[DEVICE_AUTH_CLI_ALREADY], count[DEVICE_AUTH_CLI_KEPT],
           count[DEVICE_AUTH_CLI_REPLACED],
           im->dry_run ? "to replace" : "replaced",
           count[DEVICE_AUTH_CLI_REJECTED],
           im->dry_run ? " (dry run: nothing written)" : "");

    fflush(stdout);

    return count[DEVICE_AUTH_CLI_REJECTED] ? DEVICE_AUTH_CLI_FAILED
                                           : DEVICE_AUTH_CLI_OK;
}


static void
device_auth_cli_import_free(device_auth_cli_import_t *im)
{
    int     i;
    size_t  k;

    for (k = 0; k < im->n; k++) {
        free(im->entries[k].old);
    }

    free(im->entries);

    for (i = 0; i < im->nfiles; i++) {
        if (im->files[i].data != NULL) {
            munmap(im->files[i].data, im->files[i].len);
        }

        if (im->files[i].fd >= 0) {
            close(im->files[i].fd);
        }
    }

    free(im->files);

    device_auth_cli_redis_close(&im->redis);
    ngx_device_auth_jws_keys_free(im->m.log_signers);
    ngx_device_auth_policy_free(im->m.policy);
    ngx_device_auth_bundle_free(im->roots);
    ngx_device_auth_bundle_free(im->signers);
    ngx_device_auth_bundle_free(im->log_certs);
}
