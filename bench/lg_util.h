
/*
 * loadgen and revprobe: the clock and the parsing of numeric options.
 */


#ifndef _LG_UTIL_H_INCLUDED_
#define _LG_UTIL_H_INCLUDED_


#include <stdint.h>


uint64_t lg_now_us(void);
double lg_number(const char *name, const char *s, double min, double max);


#endif /* _LG_UTIL_H_INCLUDED_ */
