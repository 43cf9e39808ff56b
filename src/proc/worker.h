/* worker.h - an unprivileged event-loop process serving inbound SMTP on inherited listeners. */
#ifndef TANDEM_WORKER_H
#define TANDEM_WORKER_H

#include <stddef.h>

#include "core/core.h"

struct conf;
struct conn_limits;
struct ssl_ctx_st;

struct worker_args {
    const struct conf *conf;
    const int *listen_fds;
    size_t nlisten;
    struct conn_limits *limits;
    unsigned slot;      /* this worker's slot in limits */
    int sched_fd;       /* datagram socket to the scheduler, -1 if none */
    struct ssl_ctx_st *tls_ctx; /* inbound TLS, loaded by the parent; NULL if none */
};

/* Run the worker until SIGTERM has been served; never returns. */
NORETURN void worker_run(const struct worker_args *a);

#endif
