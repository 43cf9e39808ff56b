/* retry.h - when a deferred message is tried next, and when the scheduler gives up on it.
 * Pure functions of the configuration and the clock (unit-tested in test_retry.c). */
#ifndef TANDEM_RETRY_H
#define TANDEM_RETRY_H

#include <stddef.h>
#include <time.h>

struct conf;

enum retry_verdict { RETRY_LATER, RETRY_GIVE_UP };

/* The wait before retry number k (1 = the first retry): the k-th of retry_intervals, the
 * last one repeating; never less than a second. */
unsigned retry_interval(const struct conf *c, unsigned k);

/* A delivery attempt made at `now`, the `attempts`-th for a message that arrived at
 * `arrival`, left recipients deferred.  RETRY_GIVE_UP once retry_give_up has passed since
 * arrival; otherwise RETRY_LATER with *next set to the time of the next attempt, which is
 * never later than the give-up time (so the last attempt happens right at it). */
enum retry_verdict retry_next(const struct conf *c, time_t arrival, unsigned attempts, time_t now,
                              time_t *next);

#endif
