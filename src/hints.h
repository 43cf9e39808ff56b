/* hints.h - LMDB hints databases under spool_directory/db: per-host retry state (and, later,
 * the callout cache).  Shared by processes; every process opens its own environment after
 * fork. */
#ifndef TANDEM_HINTS_H
#define TANDEM_HINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct hints;

struct hints *hints_open(const char *spooldir, char *err, size_t errsz);
void hints_close(struct hints *h);

/* Retry state of a next hop; key is "ip:port" (or "[ipv6]:port"). */
struct retry_rec {
    time_t first_failure;
    time_t last_try;
    time_t next_try;
    unsigned failures;
    char last_error[200];
};
bool hints_retry_get(struct hints *h, const char *key, struct retry_rec *r);
bool hints_retry_put(struct hints *h, const char *key, const struct retry_rec *r);
bool hints_retry_del(struct hints *h, const char *key);

#endif
