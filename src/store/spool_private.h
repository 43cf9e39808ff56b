/* spool_private.h - what the spool's source files share and nobody else needs: file names,
 * careful I/O, the envelope record codec and the journal. */
#ifndef TANDEM_SPOOL_PRIVATE_H
#define TANDEM_SPOOL_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "spool_record.h"
#include "core/core.h"
#include "smtp/smtp.h"

#define SPOOL_PATH_MAX 4096
#define SPOOL_FILE_MODE 0640
#define SPOOL_DIR_MODE 0750
#define SPOOL_FIELD_MAX REC_PAYLOAD_MAX /* bytes in one envelope string */
#define SPOOL_RCPTS_MAX 100000          /* recipients in one message */
#define JOURNAL_SUFFIX "-J"

/* spool_fs.c: "<spooldir>/<sub>/<id><suffix>" into buf (suffix and id may be ""); false
 * with errno ENAMETOOLONG when it does not fit. */
bool spool_path(char *buf, size_t sz, const char *spooldir, const char *sub, const char *id,
                const char *suffix);
/* Write all of iov, resuming after short writes and EINTR.  0, or -1 with errno. */
int fs_writev_all(int fd, struct iovec *iov, int iovcnt);
/* fsync the directory <spooldir>/<sub>.  0, or -1 with errno. */
int fs_fsync_subdir(const char *spooldir, const char *sub);
/* Rename that never replaces an existing target (EEXIST); link+unlink where the file
 * system lacks RENAME_NOREPLACE.  0, or -1 with errno. */
int fs_rename_noreplace(const char *from, const char *to);
/* Does path exist (without following a final symlink)? */
bool fs_exists(const char *path);

/* spool_envelope.c: the envelope as records, and back. */
/* false (errno EMSGSIZE) when a field or the recipient count is over the limits. */
bool spool_envelope_fits(const struct envelope *env);
void spool_envelope_encode(struct sbuf *out, const struct envelope *env);

struct env_decoder {
    const char *id;      /* the id the file must carry (its name) */
    struct envelope *env;
    unsigned seen;       /* bit per singleton record type already read */
    char prev;           /* type of the previous record, to place N and O */
};
void env_decoder_init(struct env_decoder *d, const char *id, struct envelope *env);
/* Apply one envelope record.  0, or -1 with errno EBADMSG. */
int env_decode(struct env_decoder *d, const struct rec *r);
/* Check that the required records were present.  0, or -1 with errno EBADMSG. */
int env_decode_finish(const struct env_decoder *d);

/* spool_journal.c: apply input/ID-J to env's recipients.  0, or -1 with errno (EBADMSG). */
int spool_journal_apply(const char *spooldir, const char *id, struct envelope *env);

#endif
