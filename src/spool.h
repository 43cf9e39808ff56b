/* spool.h - message files: written to a temporary name, fsync'd, renamed, directory fsync'd;
 * read back; per-recipient delivery journal; message ids. */
#ifndef TANDEM_SPOOL_H
#define TANDEM_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "envelope.h"

/* Layout under spool_directory: input/ (committed messages ID and journals ID-J),
 * tmp/ (messages being received), corrupt/ (unreadable files moved aside), db/ (hints). */
bool spool_init_dirs(const char *spooldir, char *err, size_t errsz);

/* A fresh message id, unique across processes and restarts (Exim's 16-character form). */
void msgid_new(char out[MSGID_LEN + 1]);
bool msgid_valid(const char *s);

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

#endif
