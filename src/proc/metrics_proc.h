/* metrics_proc.h - the unprivileged process that serves /metrics (Prometheus text). */
#ifndef TANDEM_METRICS_PROC_H
#define TANDEM_METRICS_PROC_H

#include "core/core.h"

struct metrics;

/* Serve GET /metrics on the listening socket fd with the sums of m until SIGTERM; never
 * returns. */
NORETURN void metrics_proc_run(int fd, const struct metrics *m);

#endif
