/* fuzz_spool.c - libFuzzer target for the spool reader: the input becomes a message file in
 * a scratch spool (and, after a "~~journal~~\n" line, its journal); then the envelope, the
 * content and the journal are read, and one journal append is made over the fuzzed journal.
 * The id is taken from the file's own id record when it is one, so writer output is a seed. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

#define JOURNAL_MARK "~~journal~~\n"
#define ID_AT 19 /* after "tandem-spool 1\nI16:" */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];

/* remove_scratch - at exit: the (by then empty) scratch spool */
static void remove_scratch(void)
{
    static const char *subs[] = { "input", "tmp", "corrupt", "db" };
    char path[4096];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        str_fmt(path, sizeof(path), "%s/%s", scratch, subs[i]);
        rmdir(path);
    }
    rmdir(scratch);
}

/* scratch_spool - a spool directory for this fuzzing process, made once */
static const char *scratch_spool(void)
{
    char *dir = scratch;
    char err[256];
    if (dir[0])
        return dir;
    str_copy(dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/fuzz-spool-XXXXXX"
                                                 : "/tmp/fuzz-spool-XXXXXX", sizeof(scratch));
    if (mkdtemp(dir) == NULL || !spool_init_dirs(dir, err, sizeof(err)))
        abort();
    atexit(remove_scratch);
    return dir;
}

/* put - replace <dir>/input/<name> with the bytes; len (size_t)-1 removes it */
static void put(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    str_fmt(path, sizeof(path), "%s/input/%s", dir, name);
    unlink(path);
    if (len == (size_t)-1)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, p, len) != (ssize_t)len)
        abort();
    close(fd);
}

/* pick_id - the id the input claims for itself, or a fixed one */
static void pick_id(const uint8_t *data, size_t size, char id[MSGID_LEN + 1])
{
    str_copy(id, "000000-000000-00", MSGID_LEN + 1);
    if (size >= ID_AT + MSGID_LEN) {
        char cand[MSGID_LEN + 1];
        memcpy(cand, data + ID_AT, MSGID_LEN);
        cand[MSGID_LEN] = '\0';
        if (msgid_valid(cand))
            memcpy(id, cand, MSGID_LEN + 1);
    }
}

/* read_content - stream the content in odd-sized pieces and check its length: the added
 * headers (an A record) come first, then the data records' content */
static void read_content(const char *dir, const char *id, uint64_t expect)
{
    static char buf[3001];
    struct spool_reader *r = spool_open_content(dir, id);
    uint64_t total = 0;
    long n;
    if (r == NULL)
        abort(); /* the envelope was readable, so the content must be */
    while ((n = spool_read_content(r, buf, (total % 3000) + 1)) > 0)
        total += (uint64_t)n;
    if (n < 0 || total != expect)
        abort();
    spool_close_content(r);
}

/* read_all - envelope (with journal) then content; returns the recipient count or -1 */
static long read_all(const char *dir, const char *id)
{
    struct envelope env;
    if (spool_read_envelope(dir, id, &env) < 0) {
        if (errno != EBADMSG)
            abort();
        struct spool_reader *r = spool_open_content(dir, id);
        if (r != NULL && errno != EBADMSG)
            abort();
        spool_close_content(r);
        return -1;
    }
    long n = (long)env.nrcpts;
    read_content(dir, id, spool_content_length(&env));
    envelope_free(&env);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = scratch_spool();
    char id[MSGID_LEN + 1], jname[MSGID_LEN + 3];
    const uint8_t *mark = memmem(data, size, JOURNAL_MARK, strlen(JOURNAL_MARK));
    size_t msg_len = mark ? (size_t)(mark - data) : size;
    pick_id(data, msg_len, id);
    str_fmt(jname, sizeof(jname), "%s-J", id);
    put(dir, id, data, msg_len);
    if (mark)
        put(dir, jname, mark + strlen(JOURNAL_MARK),
            size - msg_len - strlen(JOURNAL_MARK));
    else
        put(dir, jname, NULL, (size_t)-1);
    long nrcpts = read_all(dir, id);
    /* An append repairs any torn tail, so a message that was readable still is. */
    if (nrcpts > 0 && spool_journal(dir, id, (size_t)nrcpts - 1, RCPT_FAILED) &&
        read_all(dir, id) != nrcpts)
        abort();
    put(dir, jname, NULL, (size_t)-1);
    put(dir, id, NULL, (size_t)-1);
    return 0;
}
