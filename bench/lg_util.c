
/*
 * loadgen and revprobe: the clock and the parsing of numeric options.
 */


#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lg_util.h"


/* microseconds of the monotonic clock */

uint64_t
lg_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* the value of option --name, or exit(2) saying why */

double
lg_number(const char *name, const char *s, double min, double max)
{
    char    *e;
    double   v;

    v = strtod(s, &e);

    if (e == s || *e != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: bad --%s \"%s\" (%g..%g)\n",
                program_invocation_short_name, name, s, min, max);
        exit(2);
    }

    return v;
}
