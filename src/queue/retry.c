/* retry.c - retry intervals and give-up (see retry.h). */
#include "retry.h"

#include "conf/conf.h"

#define RETRY_DEFAULT_INTERVAL 900 /* when retry_intervals is empty (the parser forbids it) */

unsigned retry_interval(const struct conf *c, unsigned k)
{
    unsigned v;
    if (c->nretry_intervals == 0)
        v = RETRY_DEFAULT_INTERVAL;
    else if (k == 0 || k > c->nretry_intervals)
        v = c->retry_intervals[k == 0 ? 0 : c->nretry_intervals - 1];
    else
        v = c->retry_intervals[k - 1];
    return v ? v : 1;
}

enum retry_verdict retry_next(const struct conf *c, time_t arrival, unsigned attempts, time_t now,
                              time_t *next)
{
    time_t deadline = arrival + (time_t)c->retry_give_up;
    if (now >= deadline)
        return RETRY_GIVE_UP;
    time_t t = now + (time_t)retry_interval(c, attempts ? attempts : 1);
    *next = t < deadline ? t : deadline;
    return RETRY_LATER;
}
