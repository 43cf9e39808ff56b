/* store/store.h - the contract of stable storage: the spool (message files, journals, locks) and the
 * LMDB hints databases.  May include: core, smtp. */
#ifndef TANDEM_STORE_H
#define TANDEM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "smtp/smtp.h"

/* ---- spool: message files: written to a temporary name, fsync'd, renamed, directory fsync'd;
 * read back; per-recipient delivery journal; message ids. */

/* Layout under spool_directory: input/ (committed messages ID and journals ID-J),
 * tmp/ (messages being received), corrupt/ (unreadable files moved aside), db/ (hints). */
bool spool_init_dirs(const char *spooldir, char *err, size_t errsz);
/* Remove what tmp/ holds: messages whose reception never finished (a crash mid-DATA); each
 * removal is logged.  For the parent at start, before any worker runs. */
void spool_clean_tmp(const char *spooldir);
/* Visit every path of the spool that a privileged process creates, opens or changes: the spool
 * directory, its subdirectories (is_dir) and the files in them the parent opens (the pid file,
 * the hints database's files).  Stops when fn returns false; returns false then, or when a path
 * is too long (path NULL). */
typedef bool (*spool_path_fn)(void *arg, const char *path, bool is_dir);
bool spool_each_path(const char *spooldir, spool_path_fn fn, void *arg);
/* spooldir/tandem.pid, the daemon's pid file.  False if the name is too long. */
bool spool_pid_path(char *buf, size_t sz, const char *spooldir);

/* A fresh message id, unique across processes and restarts (Exim's 16-character form). */
void msgid_new(char out[MSGID_LEN + 1]);
bool msgid_valid(const char *s);
/* When the message was received (seconds since the epoch), from its id; false if invalid. */
bool msgid_time(const char *id, uint64_t *sec);

struct spool_writer;

/* Create tmp/ID (O_EXCL, retrying with a new id on a clash), fill env->id, and write the
 * envelope records.  Returns NULL with errno set on failure. */
struct spool_writer *spool_create(const char *spooldir, struct envelope *env);
/* Append message content (decoded, CRLF lines).  Returns false on a write error (errno). */
bool spool_write(struct spool_writer *w, const void *data, size_t len);
/* Write the trailer (env->size, env->message_id) and the end record, fsync the file when
 * do_sync, rename into input/, fsync input/ when do_sync.  Frees w.  On failure the temporary
 * file is removed and false returned with errno set. */
bool spool_commit(struct spool_writer *w, const struct envelope *env, bool do_sync);
/* spool_commit, but keep the message locked (as by spool_lock) on success: *lock_fd gets an
 * fd to pass to spool_unlock, so the scheduler cannot take a message its receiver is still
 * delivering (cutthrough, immediate delivery).  *lock_fd is -1 on failure. */
bool spool_commit_locked(struct spool_writer *w, const struct envelope *env, bool do_sync,
                         int *lock_fd);
/* A process's pool of reusable temporary files (see spool_write.c). */
struct spool_pool;
struct spool_pool *spool_pool_new(const char *spooldir);
void spool_pool_free(struct spool_pool *pool);
/* spool_create on a file from pool: a discarded message's file is rewound and reused instead of
 * unlinked (no inode churn); a committed one is renamed into input/ as usual. */
struct spool_writer *spool_create_pooled(struct spool_pool *pool, struct envelope *env);

/* Discard a message that was delivered elsewhere (its next hop took it): a pooled file is
 * reused as it is.  Frees w. */
void spool_recycle(struct spool_writer *w);
/* Discard a message being written (unlink the temporary file, or empty it and return it to
 * its pool).  Frees w. */
void spool_abort(struct spool_writer *w);
/* Bytes of content written so far. */
uint64_t spool_written(const struct spool_writer *w);

/* Read a committed message's envelope (recipient states from its journal applied).
 * env is initialised here (not freed first); on failure it is left empty.
 * Returns 0, or -1 with errno (ENOENT: no such message; EBADMSG: unreadable file; EINVAL:
 * id is not a message id). */
int spool_read_envelope(const char *spooldir, const char *id, struct envelope *env);

/* Open a committed message's content for reading: the whole file is validated first, so
 * NULL with errno ENOENT, EINVAL or EBADMSG (as spool_read_envelope) if it is not sound. */
struct spool_reader;
struct spool_reader *spool_open_content(const char *spooldir, const char *id);
/* Read up to n (> 0) bytes of content; returns bytes read, 0 at the end, -1 on error (errno;
 * EBADMSG if the file changed since it was opened and validated). */
long spool_read_content(struct spool_reader *r, void *buf, size_t n);
void spool_close_content(struct spool_reader *r);
/* The bytes spool_read_content gives for a message with envelope env: the added headers,
 * then the content (env->size).  What a delivery sends, and declares as SIZE=. */
uint64_t spool_content_length(const struct envelope *env);

/* Journal: record recipient i as delivered or failed (fsync'd).  The caller holds the
 * message's lock.  false with errno (ENOENT: no such message; EINVAL: bad arguments). */
bool spool_journal(const char *spooldir, const char *id, size_t rcpt_index, enum rcpt_state st);
/* Journal: a delivery status notification covering recipient i is spooled (its failure, or
 * its relay to a next hop without DSN, was reported), so none is sent for it again. */
bool spool_journal_notified(const char *spooldir, const char *id, size_t rcpt_index);

/* Remove a message (file and journal; input/ fsync'd). */
bool spool_remove(const char *spooldir, const char *id);
/* Move an unreadable message to corrupt/. */
bool spool_quarantine(const char *spooldir, const char *id);

/* Per-message exclusive lock (flock on the message file) held while it is being delivered.
 * Returns an fd (>= 0) or -1 if it is locked by someone else (errno EWOULDBLOCK) or gone. */
int spool_lock(const char *spooldir, const char *id);
void spool_unlock(int fd);

/* List committed message ids (sorted by age); returns count, *ids malloc'd array of strings.
 * On error (input/ unreadable) returns 0 with *ids NULL and errno set. */
size_t spool_list(const char *spooldir, char ***ids);
void spool_list_free(char **ids, size_t n);

/* ---- hints: LMDB hints databases under spool_directory/db: per-host retry state, the
 * scheduler's per-message state (and, later, the callout cache).  One environment holds several
 * named databases.  Shared by processes; every process opens its own environment after fork
 * (an LMDB rule: an environment must not be used across fork).
 *
 * Hints are hints: losing them costs an early retry or a less precise bounce, never mail.  So
 * the environment is opened without fsync on commit (a power failure may undo the last
 * transactions, never corrupt the database), and every failure is logged and reported as a
 * miss instead of aborting the process. */

struct hints;

/* The named databases.  Adding one is a value here and its name in hints.c's table. */
enum hints_db {
    HINTS_RETRY,   /* "retry": next-hop retry state, key "ip:port" (below) */
    HINTS_QUEUE,   /* "queue": per-message retry state, key message id (queue/queue.h) */
    HINTS_RCPT,    /* "rcpt": last outcome per recipient, key "ID/index" (queue/queue.h) */
    HINTS_CALLOUT, /* "callout": the callout cache (policy/policy.h) */
    HINTS_MTA_STS, /* "mta-sts": MTA-STS policies by domain (outbound/mta_sts_cache.c) */
    HINTS_RATELIMIT, /* "ratelimit": smoothed rates of the ratelimit condition (policy.h) */
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
 * values opaque byte strings of at most HINTS_VALUE_MAX bytes (see store/store.h for a codec).
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
/* Read-modify-write one entry in a single write transaction, so that processes updating the
 * same key never lose an update: fn gets the current value (NULL, 0 when absent) and writes the
 * new one into out (at most HINTS_VALUE_MAX bytes, length in *outlen); it returns false to
 * leave the entry as it was.  False on error (then nothing is stored). */
typedef bool (*hints_update_fn)(void *arg, const void *old, size_t oldlen, void *out,
                                size_t *outlen);
bool hints_update(struct hints *h, enum hints_db db, const char *key, hints_update_fn fn,
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

/* Retry state of a next hop in its codec, for hints_update callers. */
bool retry_rec_decode(const void *val, size_t len, struct retry_rec *r);
size_t retry_rec_encode(const struct retry_rec *r, void *out, size_t outsz);

/* ---- leases: counted leases shared by every process of one spool (spool_directory/db/leases):
 * at most N holders of a key at once, whatever process they are in.  This is the per-host
 * connection limit (callout_max_per_host) of the whole daemon.  Each lease records its
 * holder's pid; the leases of a process that died are taken back when someone finds the key
 * full.  A lease is active or idle (a pooled connection); a process waiting for a key that is
 * full registers a want, which tells the holders of idle leases to give one up. */

struct leases;

#define LEASE_KEY_MAX 63
#define LEASE_FULL (-1)  /* leases_take: the key has max holders */
#define LEASE_NONE (-2)  /* leases_take: the table cannot track this (no table, no room): go on */

/* Map the table (created when missing).  NULL with a message in err on failure. */
struct leases *leases_open(const char *spooldir, char *err, size_t errsz);
void leases_close(struct leases *ls);
/* Take one of at most max leases on key: its id (>= 0), LEASE_FULL, or LEASE_NONE. */
int leases_take(struct leases *ls, const char *key, unsigned max);
/* Give a lease (or a want) back; ids this process does not hold are ignored. */
void leases_give(struct leases *ls, int id);
void leases_set_idle(struct leases *ls, int id, bool idle);
/* Register a wait for key (give it back with leases_give): an id, or LEASE_NONE. */
int leases_want(struct leases *ls, const char *key);
/* Does anybody wait for the key of lease id? */
bool leases_wanted(struct leases *ls, int id);
struct lease_count {
    unsigned held, idle, want;
};
/* The counts of key; false when the key is unknown. */
bool leases_count(struct leases *ls, const char *key, struct lease_count *c);

/* ---- hints_rec: a small codec for hints values: a version byte, then little-endian integers
 * and length-prefixed strings, so records survive a change of struct layout or compiler. */

/* Writer: fields are appended; overflowing HINTS_VALUE_MAX sets bad. */
struct hrec_w {
    unsigned char buf[HINTS_VALUE_MAX];
    size_t len;
    bool bad;
};
void hrec_w_init(struct hrec_w *w, uint8_t version);
void hrec_put_u32(struct hrec_w *w, uint32_t v);
void hrec_put_i64(struct hrec_w *w, int64_t v);
void hrec_put_str(struct hrec_w *w, const char *s);

/* Reader: a short or malformed record sets bad; reads after that return zero/empty. */
struct hrec_r {
    const unsigned char *p;
    size_t len, off;
    bool bad;
};
/* False (and bad) when the record is empty or of another version. */
bool hrec_r_init(struct hrec_r *r, const void *p, size_t len, uint8_t version);
uint32_t hrec_get_u32(struct hrec_r *r);
int64_t hrec_get_i64(struct hrec_r *r);
/* Copy a string into out (truncated to outsz - 1 bytes; always terminated). */
void hrec_get_str(struct hrec_r *r, char *out, size_t outsz);

#endif
