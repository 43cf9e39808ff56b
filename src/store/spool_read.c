/* spool_read.c - reading committed message files back: the whole file is validated
 * (magic, envelope, data records, size, END, nothing after) before anything is believed,
 * skipping over content with seeks; content is then streamed a record at a time. */
#include "spool_private.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spool_reader {
    struct rec_in in;
    const unsigned char *chunk; /* unread bytes of the current data record */
    size_t chunk_len;
    bool done;                  /* the size record was reached */
    char *prefix;               /* added headers, read out before the content */
    size_t prefix_len, prefix_off;
};

/* bad - fail with EBADMSG */
static int bad(void)
{
    errno = EBADMSG;
    return -1;
}

/* open_message - open input/ID read-only; EINVAL for a name that is not an id */
static int open_message(const char *spooldir, const char *id)
{
    char path[SPOOL_PATH_MAX];
    if (!msgid_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    if (!spool_path(path, sizeof(path), spooldir, "input", id, ""))
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* next_rec - the next record, where the end of the file is not allowed */
static int next_rec(struct rec_in *in, struct rec *r, bool skip_data)
{
    int g = rec_next(in, r, skip_data);
    return g == 1 ? 0 : g == 0 ? bad() : -1;
}

/* scan_envelope - decode records up to the first data or size record (left in *r) */
static int scan_envelope(struct rec_in *in, const char *id, struct envelope *env, struct rec *r)
{
    struct env_decoder d;
    env_decoder_init(&d, id, env);
    if (rec_in_magic(in) < 0)
        return -1;
    for (;;) {
        if (next_rec(in, r, true) < 0)
            return -1;
        if (r->type == REC_DATA || r->type == REC_SIZE)
            return env_decode_finish(&d);
        if (env_decode(&d, r) < 0)
            return -1;
    }
}

/* scan_data - pass over the data records, adding up their lengths; leaves the next in *r */
static int scan_data(struct rec_in *in, struct rec *r, uint64_t *total)
{
    *total = 0;
    while (r->type == REC_DATA) {
        if (r->len == 0)
            return bad();
        *total += r->len;
        if (next_rec(in, r, true) < 0)
            return -1;
    }
    return 0;
}

/* header_lines - p[0..len) is one or more CRLF-terminated lines with no other CR or LF, as
 * the writer stores added headers: anything else would run into the content's first line */
static bool header_lines(const unsigned char *p, size_t len)
{
    if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'))
            return false;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return false;
    }
    return true;
}

/* scan_trailer - size (must match the data), optional Message-ID, END, end of file */
static int scan_trailer(struct rec_in *in, struct rec *r, uint64_t total, struct envelope *env)
{
    uint64_t size;
    if (r->type != REC_SIZE || !rec_num(r, UINT64_MAX, &size) || size != total)
        return bad();
    env->size = size;
    if (next_rec(in, r, true) < 0)
        return -1;
    if (r->type == REC_MSGID) {
        const char *s = rec_str(r);
        if (s == NULL)
            return bad();
        envelope_set(&env->message_id, s);
        if (next_rec(in, r, true) < 0)
            return -1;
    }
    if (r->type == REC_HEADERS) {
        const char *s = rec_str(r);
        if (s == NULL || !header_lines(r->data, r->len))
            return bad();
        envelope_set(&env->added_headers, s);
        if (next_rec(in, r, true) < 0)
            return -1;
    }
    if (r->type != REC_END || r->len != 0)
        return bad();
    int g = rec_next(in, r, true);
    return g == 0 ? 0 : g < 0 ? -1 : bad();
}

/* scan_file - validate a whole message file into env; *content_off is where data starts */
static int scan_file(struct rec_in *in, const char *id, struct envelope *env,
                     uint64_t *content_off)
{
    struct rec r;
    uint64_t total;
    if (scan_envelope(in, id, env, &r) < 0)
        return -1;
    *content_off = r.off;
    if (scan_data(in, &r, &total) < 0)
        return -1;
    return scan_trailer(in, &r, total, env);
}

/* spool_read_envelope - validate the whole file, return its envelope with the journal applied */
int spool_read_envelope(const char *spooldir, const char *id, struct envelope *env)
{
    struct rec_in in;
    uint64_t off;
    envelope_init(env);
    int fd = open_message(spooldir, id);
    if (fd < 0)
        return -1;
    rec_in_init(&in, fd);
    int r = scan_file(&in, id, env, &off);
    if (r == 0)
        r = spool_journal_apply(spooldir, id, env);
    int saved = errno;
    rec_in_free(&in);
    close(fd);
    if (r < 0)
        envelope_free(env);
    errno = saved;
    return r;
}

/* spool_open_content - validate the whole file, then stand at its first data record */
struct spool_reader *spool_open_content(const char *spooldir, const char *id)
{
    struct envelope env;
    uint64_t off;
    int fd = open_message(spooldir, id);
    if (fd < 0)
        return NULL;
    struct spool_reader *r = xcalloc(1, sizeof(*r));
    rec_in_init(&r->in, fd);
    envelope_init(&env);
    bool ok = scan_file(&r->in, id, &env, &off) == 0 && rec_in_seek(&r->in, off) == 0;
    if (ok && env.added_headers) {
        r->prefix = env.added_headers;
        r->prefix_len = strlen(r->prefix);
        env.added_headers = NULL;
    }
    envelope_free(&env);
    if (!ok) {
        int saved = errno;
        spool_close_content(r);
        errno = saved;
        return NULL;
    }
    return r;
}

/* next_chunk - load the next data record; 1, 0 at the end of the content, -1 on error */
static int next_chunk(struct spool_reader *r)
{
    struct rec rec;
    if (r->done || next_rec(&r->in, &rec, false) < 0)
        return r->done ? 0 : -1;
    if (rec.type == REC_SIZE) {
        r->done = true;
        return 0;
    }
    if (rec.type != REC_DATA || rec.len == 0)
        return bad(); /* the file changed under us since it was validated */
    r->chunk = rec.data;
    r->chunk_len = rec.len;
    return 1;
}

/* spool_read_content - copy out of the current data record, loading the next as needed */
long spool_read_content(struct spool_reader *r, void *buf, size_t n)
{
    if (r->prefix_off < r->prefix_len) {
        size_t left = r->prefix_len - r->prefix_off;
        n = n < left ? n : left;
        memcpy(buf, r->prefix + r->prefix_off, n);
        r->prefix_off += n;
        return (long)n;
    }
    if (r->chunk_len == 0) {
        int g = next_chunk(r);
        if (g <= 0)
            return g;
    }
    if (n > r->chunk_len)
        n = r->chunk_len;
    if (n > LONG_MAX)
        n = LONG_MAX;
    memcpy(buf, r->chunk, n);
    r->chunk += n;
    r->chunk_len -= n;
    return (long)n;
}

/* spool_close_content - close a reader (NULL is fine) */
void spool_close_content(struct spool_reader *r)
{
    if (r == NULL)
        return;
    close(r->in.fd);
    rec_in_free(&r->in);
    free(r->prefix);
    free(r);
}

uint64_t spool_content_length(const struct envelope *env)
{
    return env->size + (env->added_headers ? strlen(env->added_headers) : 0);
}
