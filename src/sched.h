/* sched.h - the scheduler process: owns the queue, runs deliveries, retries, bounces. */
#ifndef TANDEM_SCHED_H
#define TANDEM_SCHED_H

#include "util.h"

struct conf;

/* Run the scheduler; notify_fd receives message ids from the workers.  Never returns. */
NORETURN void sched_run(const struct conf *c, int notify_fd);

#endif
