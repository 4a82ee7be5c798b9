
/*
 * Helpers shared by the fuzz targets: property checks that abort with a
 * message, so that a broken invariant is reported by libFuzzer like a
 * crash, with the input saved.
 */


#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define fuzz_assert(cond, ...)                                               \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "\nfuzz property violated at %s:%d: %s\n  ",      \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)


/* a C string within "size" bytes whose bytes are all printable ASCII */

static inline int
fuzz_is_printable(const char *s, size_t size)
{
    size_t  i;

    for (i = 0; i < size; i++) {
        if (s[i] == '\0') {
            return 1;
        }

        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f) {
            return 0;
        }
    }

    return 0;    /* not terminated */
}


#endif /* _FUZZ_COMMON_H_INCLUDED_ */
