/* hints.h - LMDB hints databases under spool_directory/db: per-host retry state, the
 * scheduler's per-message state (and, later, the callout cache).  One environment holds several
 * named databases.  Shared by processes; every process opens its own environment after fork
 * (an LMDB rule: an environment must not be used across fork).
 *
 * Hints are hints: losing them costs an early retry or a less precise bounce, never mail.  So
 * the environment is opened without fsync on commit (a power failure may undo the last
 * transactions, never corrupt the database), and every failure is logged and reported as a
 * miss instead of aborting the process. */
#ifndef TANDEM_HINTS_H
#define TANDEM_HINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct hints;

/* The named databases.  Adding one is a value here and its name in hints.c's table. */
enum hints_db {
    HINTS_RETRY,   /* "retry": next-hop retry state, key "ip:port" (below) */
    HINTS_QUEUE,   /* "queue": per-message retry state, key message id (queue_state.h) */
    HINTS_RCPT,    /* "rcpt": last outcome per recipient, key "ID/index" (queue_state.h) */
    HINTS_CALLOUT, /* "callout": the callout cache (callout_cache.h) */
    HINTS_NDB
};

#define HINTS_KEY_MAX 511       /* LMDB's compiled-in key limit */
#define HINTS_VALUE_MAX 4096    /* longest value the wrappers store */
#define HINTS_MAP_SIZE (64u << 20)

/* Open (creating) the environment in spooldir/db.  NULL with a message in err on failure. */
struct hints *hints_open(const char *spooldir, char *err, size_t errsz);
void hints_close(struct hints *h);
const char *hints_db_name(enum hints_db db);

/* Generic access to one named database.  Keys are strings of at most HINTS_KEY_MAX bytes,
 * values opaque byte strings of at most HINTS_VALUE_MAX bytes (see hints_rec.h for a codec).
 * h may be NULL (hints unavailable): gets miss, puts and deletes fail quietly. */

/* Copy the value into val (valsz bytes); *len gets its length.  False if absent or on error. */
bool hints_get(struct hints *h, enum hints_db db, const char *key, void *val, size_t valsz,
               size_t *len);
bool hints_put(struct hints *h, enum hints_db db, const char *key, const void *val, size_t len);
/* True when the key is gone afterwards (also when it was never there). */
bool hints_del(struct hints *h, enum hints_db db, const char *key);

/* Call cb for each entry whose key begins with prefix ("" = all), in key order, until it
 * returns false.  cb runs inside a read transaction and must not write to the hints.
 * Returns false on error. */
typedef bool (*hints_each_cb)(void *arg, const char *key, const void *val, size_t len);
bool hints_each(struct hints *h, enum hints_db db, const char *prefix, hints_each_cb cb,
                void *arg);
/* Delete every entry whose key begins with prefix (in small transactions, so that even a full
 * map can be emptied); returns how many. */
size_t hints_del_prefix(struct hints *h, enum hints_db db, const char *prefix);

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
