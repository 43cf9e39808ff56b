/* msgid.h - message ids in Exim's classic 16-character form TTTTTT-PPPPPP-FF (base 62):
 * seconds since the epoch, process id, and a fraction of a second in 1/3844 s.
 * msgid_new() and msgid_valid() are declared in store/store.h; these are the parts beneath them. */
#ifndef TANDEM_MSGID_H
#define TANDEM_MSGID_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp/smtp.h"

#define MSGID_FRAC_MAX 3844u /* 62 * 62: the fraction is in [0, MSGID_FRAC_MAX) */

/* The last (seconds, fraction) a process issued; ids are strictly increasing within it. */
struct msgid_clock {
    uint64_t sec;
    unsigned frac;
};

/* Issue the next id for pid at time (sec, usec): the later of that time and one fraction
 * step past *last, which is updated. */
void msgid_next(struct msgid_clock *last, uint64_t sec, long usec, unsigned long pid,
                char out[MSGID_LEN + 1]);
/* Split a valid id into its parts; false if s is not a valid id. */
bool msgid_parse(const char *s, uint64_t *sec, unsigned long *pid, unsigned *frac);
/* Order two valid ids by issue time (seconds, fraction), then by pid. */
int msgid_cmp(const char *a, const char *b);

#endif
