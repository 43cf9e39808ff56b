/* conn_limits.h - connection counts shared by all workers (smtp_accept_max and
 * smtp_accept_max_per_host).  Each worker writes only its own slot, so a crashed worker's
 * counts are simply zeroed when it is replaced. */
#ifndef TANDEM_CONN_LIMITS_H
#define TANDEM_CONN_LIMITS_H

#include <stdbool.h>

struct conn_limits;

/* Shared anonymous memory for nworkers slots; created by the parent before forking. */
struct conn_limits *conn_limits_create(unsigned nworkers);
void conn_limits_reset_worker(struct conn_limits *cl, unsigned worker);

/* Would one more connection from ip exceed a limit?  Returns NULL if not, else the reason. */
const char *conn_limits_check(struct conn_limits *cl, const char *ip, unsigned max_total,
                              unsigned max_per_host);
void conn_limits_add(struct conn_limits *cl, unsigned worker, const char *ip);
void conn_limits_remove(struct conn_limits *cl, unsigned worker, const char *ip);

#endif
