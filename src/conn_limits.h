/* conn_limits.h - connection counts shared by all workers (smtp_accept_max and
 * smtp_accept_max_per_host).  Each worker writes only its own table, so a crashed worker's
 * counts are simply zeroed when it is replaced.  Only open connections are tracked. */
#ifndef TANDEM_CONN_LIMITS_H
#define TANDEM_CONN_LIMITS_H

#include <stdbool.h>

struct conn_limits;

/* Shared anonymous memory for nworkers tables, each able to hold the addresses of max_conns
 * connections (smtp_accept_max); created by the parent before forking. */
struct conn_limits *conn_limits_create(unsigned nworkers, unsigned max_conns);
void conn_limits_reset_worker(struct conn_limits *cl, unsigned worker);

/* Would one more connection from ip, to be taken by worker, exceed a limit?  Returns NULL
 * if not, else the reason (also when the worker's table has no room for it). */
const char *conn_limits_check(struct conn_limits *cl, unsigned worker, const char *ip,
                              unsigned max_total, unsigned max_per_host);
/* Connections from ip open in all workers together. */
unsigned conn_limits_host_count(struct conn_limits *cl, const char *ip);
void conn_limits_add(struct conn_limits *cl, unsigned worker, const char *ip);
void conn_limits_remove(struct conn_limits *cl, unsigned worker, const char *ip);
/* How many addresses worker's table holds, and in how many slots (it grows and shrinks). */
void conn_limits_table_size(struct conn_limits *cl, unsigned worker, unsigned *naddr,
                            unsigned *slots);

#endif
