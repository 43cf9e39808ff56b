/* test_spool.c - writing and reading message files: envelope and content round trips with
 * hostile values, write batching, short writes, and cleanup after every kind of commit
 * failure (write, fsync, rename, directory fsync, unwritable input/). */
#include "spool_fixture.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

/* Fault injection: these definitions take the place of libc's for the whole test binary. */
static struct {
    long writev_calls, writev_fail_from; /* fail every writev from call number N on */
    int writev_errno;
    size_t writev_max;                   /* clip each writev to this many bytes */
    bool writev_eintr;                   /* odd calls fail with EINTR */
    long fsync_calls, fsync_fail_at;     /* fail fsync call number N with EIO */
} inj;

/* clip_iov - the first max bytes of iov */
static int clip_iov(const struct iovec *iov, int n, struct iovec *out, size_t max)
{
    int k = 0;
    for (; k < n && k < 16 && max > 0; k++) {
        out[k] = iov[k];
        if (out[k].iov_len > max)
            out[k].iov_len = max;
        max -= out[k].iov_len;
    }
    return k;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct iovec clipped[16];
    long call = ++inj.writev_calls;
    if (inj.writev_fail_from && call >= inj.writev_fail_from) {
        errno = inj.writev_errno;
        return -1;
    }
    if (inj.writev_eintr && call % 2) {
        errno = EINTR;
        return -1;
    }
    if (inj.writev_max) {
        iovcnt = clip_iov(iov, iovcnt, clipped, inj.writev_max);
        iov = clipped;
    }
    return syscall(SYS_writev, fd, iov, iovcnt);
}

int fsync(int fd)
{
    if (++inj.fsync_calls == inj.fsync_fail_at) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int setup(void **state)
{
    memset(&inj, 0, sizeof(inj));
    return spool_fixture_setup(state);
}

/* assert_str_eq - equal strings, or both NULL */
static void assert_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* assert_env_equal - every stored envelope field survived */
static void assert_env_equal(const struct envelope *a, const struct envelope *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->arrival, b->arrival);
    assert_str_eq(a->sender, b->sender);
    assert_int_equal(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts; i++) {
        assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
        assert_str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
        assert_int_equal(b->rcpts[i].state, RCPT_PENDING);
    }
    assert_str_eq(a->client_ip, b->client_ip);
    assert_int_equal(a->client_port, b->client_port);
    assert_str_eq(a->helo, b->helo);
    assert_str_eq(a->protocol, b->protocol);
    assert_str_eq(a->tls, b->tls);
    assert_str_eq(a->envid, b->envid);
    assert_int_equal(a->ret, b->ret);
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_int_equal(a->size, b->size);
    assert_str_eq(a->message_id, b->message_id);
}

/* hostile_env - values that would break a line- or separator-based format */
static void hostile_env(struct envelope *env)
{
    envelope_init(env);
    env->arrival = 1700000123;
    envelope_set(&env->sender, "");
    envelope_add_rcpt(env, "a\r\nR5:evil\n@x", DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
                      "rfc822;a+0Db@x\r\n.\r\n");
    envelope_add_rcpt(env, "X0:\n", 0, NULL);
    envelope_add_rcpt(env, ":::", DSN_NOTIFY_NEVER, "");
    envelope_add_rcpt(env, "\xff\xfe\x80 8bit\x01@\x7f", 15, "D3:abc\nZ1:0\nX0:\n");
    envelope_add_rcpt(env, "", 0, "N2:15\n");
    envelope_set(&env->client_ip, "::1");
    env->client_port = 65535;
    envelope_set(&env->helo, "\r\nHELO evil\r\n\x01\x7f");
    envelope_set(&env->protocol, "esmtps");
    envelope_set(&env->tls, "TLS1.3:TLS_AES_256_GCM_SHA384:256");
    envelope_set(&env->envid, "abc+2Bdef\nI16:000000-000000-00\n");
    env->ret = DSN_RET_HDRS;
    env->body = BODY_BINARYMIME;
    env->smtputf8 = true;
    envelope_set(&env->message_id, "<x\r\ny@z>\nM3:abc\nX0:\n");
}

/* round_trip - commit env with content, read both back and compare */
static void round_trip(const char *dir, struct envelope *env, const void *content, size_t len,
                       size_t chunk)
{
    struct envelope back;
    size_t got;
    assert_true(commit_msg(dir, env, content, len, chunk));
    assert_true(msgid_valid(env->id));
    assert_int_equal(spool_read_envelope(dir, env->id, &back), 0);
    assert_env_equal(env, &back);
    envelope_free(&back);
    unsigned char *data = read_all(dir, env->id, &got, 4096);
    assert_non_null(data);
    assert_int_equal(got, len);
    assert_true(len == 0 || memcmp(data, content, len) == 0);
    free(data);
    assert_int_equal(count_files(dir, "tmp"), 0);
}

static void test_hostile_envelope(void **state)
{
    struct envelope env;
    hostile_env(&env);
    round_trip(fixture_dir(state), &env, "Subject: x\r\n\r\nbody\r\n", 21, 0);
    envelope_free(&env);
}

static void test_minimal_envelope(void **state)
{
    struct envelope env, back;
    envelope_init(&env); /* every optional field unset, no recipients, no sender at all */
    assert_true(commit_msg(fixture_dir(state), &env, "", 0, 0));
    assert_int_equal(spool_read_envelope(fixture_dir(state), env.id, &back), 0);
    assert_string_equal(back.sender, ""); /* a missing sender is stored as the null sender */
    envelope_set(&env.sender, "");
    assert_env_equal(&env, &back);
    envelope_free(&back);
    envelope_free(&env);
}

/* long_field - n bytes cycling through every value but NUL */
static char *long_field(size_t n)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + i % 255);
    s[n] = '\0';
    return s;
}

static void test_long_fields(void **state)
{
    struct envelope env;
    char *big = long_field(65536);
    hostile_env(&env);
    envelope_set(&env.helo, big);
    envelope_set(&env.sender, big);
    envelope_add_rcpt(&env, big, DSN_NOTIFY_SUCCESS, big);
    round_trip(fixture_dir(state), &env, "x", 1, 0);
    envelope_free(&env);
    free(big);
}

static void test_too_long_field(void **state)
{
    struct envelope env;
    char *big = long_field(65537);
    fill_env(&env, 1);
    envelope_set(&env.envid, big);
    errno = 0;
    assert_null(spool_create(fixture_dir(state), &env));
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(count_files(fixture_dir(state), "tmp"), 0);
    envelope_free(&env);
    free(big);
}

static void test_many_recipients(void **state)
{
    struct envelope env;
    char addr[64], orcpt[80];
    fill_env(&env, 0);
    for (unsigned i = 0; i < 10000; i++) {
        str_fmt(addr, sizeof(addr), "user%u@d%u.example", i, i % 97);
        str_fmt(orcpt, sizeof(orcpt), "rfc822;user%u@orig.example", i);
        envelope_add_rcpt(&env, addr, i % 16, i % 3 ? orcpt : NULL);
    }
    round_trip(fixture_dir(state), &env, "hello\r\n", 7, 0);
    envelope_free(&env);
}

/* random_bytes - n pseudo-random bytes (fixed seed, so failures repeat) */
static unsigned char *random_bytes(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    srandom(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)random();
    return p;
}

static void test_content_sizes(void **state)
{
    static const size_t sizes[] = { 0, 1, 2, 65535, 65536, 65537, 131072, 200000 };
    static const size_t chunks[] = { 0, 1, 78, 65536, 65537 };
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        unsigned char *data = random_bytes(sizes[i], (unsigned)i);
        for (size_t c = 0; c < ARRAY_LEN(chunks); c++) {
            struct envelope env;
            fill_env(&env, 2);
            round_trip(fixture_dir(state), &env, data, sizes[i], chunks[c]);
            envelope_free(&env);
        }
        free(data);
    }
}

static void test_content_5mb_random(void **state)
{
    const size_t n = 5 * 1024 * 1024;
    unsigned char *data = random_bytes(n, 42);
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    srandom(7);
    for (size_t off = 0; off < n;) { /* random-sized writes, 1 byte to 100 KB */
        size_t k = 1 + (size_t)random() % 100000;
        k = k < n - off ? k : n - off;
        assert_true(spool_write(w, data + off, k));
        off += k;
    }
    env.size = n;
    assert_true(spool_commit(w, &env, true));
    size_t got;
    unsigned char *back = read_all(fixture_dir(state), env.id, &got, 65536);
    assert_int_equal(got, n);
    assert_memory_equal(back, data, n);
    free(back);
    free(data);
    envelope_free(&env);
}

/* Content with CR, LF, NUL and lookalike records passes through untouched. */
static void test_content_hostile_bytes(void **state)
{
    static const char data[] = "D5:abcde\nZ1:5\nX0:\n\0\r\n.\r\n\r\0\n";
    struct envelope env;
    fill_env(&env, 1);
    round_trip(fixture_dir(state), &env, data, sizeof(data), 1);
    envelope_free(&env);
}

/* A message written line by line still goes to disk in 64 KiB records, few syscalls. */
static void test_write_batching(void **state)
{
    char line[80];
    struct envelope env;
    struct spool_writer *w;
    memset(line, 'x', sizeof(line) - 2);
    memcpy(line + sizeof(line) - 2, "\r\n", 2);
    fill_env(&env, 3);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    for (int i = 0; i < 20000; i++) /* 1.6 MB in 80-byte lines */
        assert_true(spool_write(w, line, sizeof(line)));
    assert_true(spool_commit(w, &env, true));
    long expect = (long)(20000 * sizeof(line) / 65536) + 1;
    assert_true(inj.writev_calls <= expect);
    assert_int_equal(inj.fsync_calls, 2); /* the file, then input/ */
    size_t len;
    unsigned char *file = get_file(fixture_dir(state), "input", env.id, &len);
    assert_true(len < 20000 * sizeof(line) + 2000); /* little framing overhead */
    free(file);
    envelope_free(&env);
}

/* A small message costs exactly one write. */
static void test_small_message_one_write(void **state)
{
    struct envelope env;
    fill_env(&env, 2);
    assert_true(commit_msg(fixture_dir(state), &env, "a\r\nb\r\n", 6, 1));
    assert_int_equal(inj.writev_calls, 1);
    envelope_free(&env);
}

static void test_short_writes_and_eintr(void **state)
{
    unsigned char *data = random_bytes(300000, 3);
    struct envelope env;
    inj.writev_max = 777;
    inj.writev_eintr = true;
    hostile_env(&env);
    round_trip(fixture_dir(state), &env, data, 300000, 1000);
    envelope_free(&env);
    free(data);
}

/* assert_nothing_left - a failed commit left no file anywhere */
static void assert_nothing_left(const char *dir)
{
    assert_int_equal(count_files(dir, "tmp"), 0);
    assert_int_equal(count_files(dir, "input"), 0);
}

static void test_fail_fsync_file(void **state)
{
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    assert_true(spool_write(w, "data\r\n", 6));
    inj.fsync_fail_at = 1;
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, EIO);
    assert_nothing_left(fixture_dir(state));
    envelope_free(&env);
}

static void test_fail_fsync_dir(void **state)
{
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    inj.fsync_fail_at = 2; /* the file succeeds, input/ does not */
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, EIO);
    assert_nothing_left(fixture_dir(state));
    envelope_free(&env);
}

static void test_fail_write_at_commit(void **state)
{
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    assert_true(spool_write(w, "small", 5)); /* buffered: nothing written yet */
    inj.writev_fail_from = 1;
    inj.writev_errno = ENOSPC;
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, ENOSPC);
    assert_nothing_left(fixture_dir(state));
    envelope_free(&env);
}

static void test_fail_write_midway(void **state)
{
    unsigned char *data = random_bytes(400000, 5);
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    inj.writev_fail_from = 3;
    inj.writev_errno = EDQUOT;
    bool ok = true;
    for (size_t off = 0; off < 400000 && ok; off += 1000)
        ok = spool_write(w, data + off, 1000);
    assert_false(ok);
    assert_int_equal(errno, EDQUOT);
    assert_false(spool_write(w, "more", 4)); /* the error is latched */
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, EDQUOT);
    assert_nothing_left(fixture_dir(state));
    envelope_free(&env);
    free(data);
}

static void test_fail_rename_no_input_dir(void **state)
{
    char path[4096];
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    str_fmt(path, sizeof(path), "%s/input", fixture_dir(state));
    assert_int_equal(rmdir(path), 0);
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(count_files(fixture_dir(state), "tmp"), 0);
    envelope_free(&env);
}

/* An existing message is never overwritten, even with the same id. */
static void test_fail_rename_exists(void **state)
{
    struct envelope env;
    struct spool_writer *w;
    size_t len;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    put_file(fixture_dir(state), "input", env.id, "precious", 8);
    assert_false(spool_commit(w, &env, true));
    assert_int_equal(errno, EEXIST);
    assert_int_equal(count_files(fixture_dir(state), "tmp"), 0);
    unsigned char *p = get_file(fixture_dir(state), "input", env.id, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(p, "precious", 8);
    free(p);
    envelope_free(&env);
}

/* chown_entry - nftw callback: give the file to the unprivileged test user */
static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, 65534, 65534);
}

/* unwritable_child - as an unprivileged user, commit into a read-only input/; exit status
 * 0 when the commit failed with EACCES and left nothing behind */
static int unwritable_child(const char *dir)
{
    char path[4096];
    struct envelope env;
    if (geteuid() == 0 && (nftw(dir, chown_entry, 16, FTW_PHYS) != 0 || setgid(65534) != 0 ||
                           setuid(65534) != 0))
        return 10;
    fill_env(&env, 1);
    struct spool_writer *w = spool_create(dir, &env);
    str_fmt(path, sizeof(path), "%s/input", dir);
    int r = 0;
    if (w == NULL)
        r = 11;
    else if (chmod(path, 0500) != 0)
        r = 12;
    if (w && (spool_commit(w, &env, true) || errno != EACCES) && r == 0)
        r = 13;
    envelope_free(&env); /* no leaks: valgrind's exit status would hide ours */
    if (r == 0 && (count_files(dir, "tmp") != 0 || count_files(dir, "input") != 0))
        r = 14;
    return r;
}

static void test_fail_input_unwritable(void **state)
{
    int st;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(unwritable_child(fixture_dir(state)));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_create_fails_without_tmp(void **state)
{
    char path[4096];
    struct envelope env;
    fill_env(&env, 1);
    str_fmt(path, sizeof(path), "%s/tmp", fixture_dir(state));
    assert_int_equal(rmdir(path), 0);
    assert_null(spool_create(fixture_dir(state), &env));
    assert_int_equal(errno, ENOENT);
    envelope_free(&env);
}

static void test_abort(void **state)
{
    struct envelope env;
    struct spool_writer *w;
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    assert_true(spool_write(w, "x", 1));
    assert_int_equal(count_files(fixture_dir(state), "tmp"), 1);
    spool_abort(w);
    assert_nothing_left(fixture_dir(state));
    envelope_free(&env);
}

/* The file is born 0640, and a committed message can be kept locked by its writer. */
static void test_commit_locked(void **state)
{
    char path[4096];
    struct envelope env;
    struct spool_writer *w;
    struct stat st;
    int fd;
    mode_t old = umask(022);
    fill_env(&env, 1);
    assert_non_null(w = spool_create(fixture_dir(state), &env));
    assert_true(spool_commit_locked(w, &env, true, &fd));
    umask(old);
    assert_true(fd >= 0);
    assert_int_equal(spool_lock(fixture_dir(state), env.id), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    spool_unlock(fd);
    fd = spool_lock(fixture_dir(state), env.id);
    assert_true(fd >= 0);
    spool_unlock(fd);
    str_fmt(path, sizeof(path), "%s/input/%s", fixture_dir(state), env.id);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    envelope_free(&env);
}

/* test_clean_tmp_not_through_a_link - the root parent empties tmp/ at start: files there go,
 * but when the user has made tmp/ a symbolic link, what it points at is left alone */
static void test_clean_tmp_not_through_a_link(void **state)
{
    char path[300], elsewhere[300], tmp[300];
    struct stat st;
    str_fmt(path, sizeof(path), "%s/tmp/1RVfZC-000Abc-0z", fixture_dir(state));
    put_file(fixture_dir(state), "tmp", "1RVfZC-000Abc-0z", "x", 1);
    spool_clean_tmp(fixture_dir(state));
    assert_int_equal(stat(path, &st), -1);                   /* an ordinary leftover: gone */
    str_fmt(elsewhere, sizeof(elsewhere), "%s/elsewhere", fixture_dir(state));
    str_fmt(tmp, sizeof(tmp), "%s/tmp", fixture_dir(state));
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(symlink(elsewhere, tmp), 0);
    put_file(fixture_dir(state), "elsewhere", "precious", "x", 1);
    spool_clean_tmp(fixture_dir(state));
    str_fmt(path, sizeof(path), "%s/precious", elsewhere);
    assert_int_equal(stat(path, &st), 0);                    /* not removed through the link */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, spool_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_hostile_envelope),
        T(test_minimal_envelope),
        T(test_long_fields),
        T(test_too_long_field),
        T(test_many_recipients),
        T(test_content_sizes),
        T(test_content_5mb_random),
        T(test_content_hostile_bytes),
        T(test_write_batching),
        T(test_small_message_one_write),
        T(test_short_writes_and_eintr),
        T(test_fail_fsync_file),
        T(test_fail_fsync_dir),
        T(test_fail_write_at_commit),
        T(test_fail_write_midway),
        T(test_fail_rename_no_input_dir),
        T(test_fail_rename_exists),
        T(test_fail_input_unwritable),
        T(test_create_fails_without_tmp),
        T(test_abort),
        T(test_commit_locked),
        T(test_clean_tmp_not_through_a_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
