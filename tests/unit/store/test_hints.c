/* test_hints.c - the LMDB hints: generic get/put/delete/iterate on named databases, the value
 * codec, retry records, the scheduler's queue state, several processes, a full map, stale
 * readers and an unusable data file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "queue/queue.h"
#include "store/store.h"

struct fx {
    char dir[64];
    struct hints *h;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    str_copy(f->dir, "/tmp/tandem-hints-test-XXXXXX", sizeof(f->dir));
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->h = hints_open(f->dir, err, sizeof(err));
    if (f->h == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hints_close(f->h);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char buf[64];
    size_t len = 0;
    assert_true(hints_put(f->h, HINTS_RETRY, "k1", "value-1", 7));
    assert_true(hints_get(f->h, HINTS_RETRY, "k1", buf, sizeof(buf), &len));
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "value-1", 7);
    assert_true(hints_put(f->h, HINTS_RETRY, "k1", "v2", 2));
    assert_true(hints_get(f->h, HINTS_RETRY, "k1", buf, sizeof(buf), &len));
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "v2", 2);
}

static void test_databases_are_separate(void **state)
{
    struct fx *f = *state;
    char buf[16];
    size_t len;
    assert_true(hints_put(f->h, HINTS_QUEUE, "same", "queue", 5));
    assert_true(hints_put(f->h, HINTS_RCPT, "same", "rcpt", 4));
    assert_false(hints_get(f->h, HINTS_RETRY, "same", buf, sizeof(buf), &len));
    assert_true(hints_get(f->h, HINTS_QUEUE, "same", buf, sizeof(buf), &len));
    assert_memory_equal(buf, "queue", 5);
    assert_true(hints_get(f->h, HINTS_RCPT, "same", buf, sizeof(buf), &len));
    assert_memory_equal(buf, "rcpt", 4);
    assert_string_equal(hints_db_name(HINTS_RCPT), "rcpt");
}

static void test_delete_and_misses(void **state)
{
    struct fx *f = *state;
    char buf[16];
    size_t len;
    assert_false(hints_get(f->h, HINTS_RETRY, "absent", buf, sizeof(buf), &len));
    assert_true(hints_del(f->h, HINTS_RETRY, "absent"));
    assert_true(hints_put(f->h, HINTS_RETRY, "x", "1", 1));
    assert_true(hints_del(f->h, HINTS_RETRY, "x"));
    assert_false(hints_get(f->h, HINTS_RETRY, "x", buf, sizeof(buf), &len));
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    char key[HINTS_KEY_MAX + 2], small[4];
    static char big[HINTS_VALUE_MAX + 1];
    size_t len;
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_false(hints_put(f->h, HINTS_RETRY, key, "v", 1));          /* key too long */
    key[HINTS_KEY_MAX] = '\0';
    assert_true(hints_put(f->h, HINTS_RETRY, key, "v", 1));           /* longest key */
    assert_false(hints_put(f->h, HINTS_RETRY, "", "v", 1));           /* empty key */
    assert_false(hints_put(f->h, HINTS_RETRY, "big", big, sizeof(big)));
    assert_true(hints_put(f->h, HINTS_RETRY, "max", big, HINTS_VALUE_MAX));
    assert_true(hints_put(f->h, HINTS_RETRY, "four", "abcd", 4));
    assert_false(hints_get(f->h, HINTS_RETRY, "four", small, 3, &len)); /* buffer too small */
}

static void test_null_handle(void **state)
{
    char buf[8];
    size_t len;
    struct retry_rec r;
    struct msg_state st;
    (void)state;
    assert_false(hints_put(NULL, HINTS_RETRY, "k", "v", 1));
    assert_false(hints_get(NULL, HINTS_RETRY, "k", buf, sizeof(buf), &len));
    assert_false(hints_del(NULL, HINTS_RETRY, "k"));
    assert_false(hints_retry_get(NULL, "k", &r));
    assert_false(qstate_get(NULL, "k", &st));
    assert_int_equal(hints_del_prefix(NULL, HINTS_RCPT, "x"), 0);
    qstate_forget(NULL, "k");
    hints_close(NULL);
}

struct collect {
    char keys[16][32];
    size_t n, stop_after;
};

static bool collect_cb(void *arg, const char *key, const void *val, size_t len)
{
    struct collect *c = arg;
    (void)val;
    (void)len;
    str_copy(c->keys[c->n++], key, sizeof(c->keys[0]));
    return c->n != c->stop_after && c->n < 16;
}

static void test_each_and_prefix_delete(void **state)
{
    struct fx *f = *state;
    struct collect c;
    const char *keys[] = { "a/2", "b/1", "a/1", "ab", "a/3" };
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        assert_true(hints_put(f->h, HINTS_RCPT, keys[i], "v", 1));
    memset(&c, 0, sizeof(c));
    assert_true(hints_each(f->h, HINTS_RCPT, "a/", collect_cb, &c));
    assert_int_equal(c.n, 3);
    assert_string_equal(c.keys[0], "a/1");   /* key order */
    assert_string_equal(c.keys[2], "a/3");
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_true(hints_each(f->h, HINTS_RCPT, "", collect_cb, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(hints_del_prefix(f->h, HINTS_RCPT, "a/"), 3);
    memset(&c, 0, sizeof(c));
    assert_true(hints_each(f->h, HINTS_RCPT, "", collect_cb, &c));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "ab");
    assert_string_equal(c.keys[1], "b/1");
    assert_int_equal(hints_del_prefix(f->h, HINTS_RCPT, "zzz"), 0);
}

static void test_codec(void **state)
{
    struct hrec_w w;
    struct hrec_r r;
    char s[8];
    (void)state;
    hrec_w_init(&w, 3);
    hrec_put_u32(&w, 0xdeadbeef);
    hrec_put_i64(&w, -5);
    hrec_put_str(&w, "hello world");
    assert_false(w.bad);
    assert_true(hrec_r_init(&r, w.buf, w.len, 3));
    assert_int_equal(hrec_get_u32(&r), 0xdeadbeef);
    assert_int_equal(hrec_get_i64(&r), -5);
    hrec_get_str(&r, s, sizeof(s));
    assert_string_equal(s, "hello w");        /* truncated to the buffer */
    assert_false(r.bad);
    assert_false(hrec_r_init(&r, w.buf, w.len, 4));   /* another version */
    assert_true(hrec_r_init(&r, w.buf, 7, 3));        /* truncated record */
    hrec_get_u32(&r);
    assert_int_equal(hrec_get_i64(&r), 0);
    assert_true(r.bad);
    assert_false(hrec_r_init(&r, w.buf, 0, 3));
}

static void test_codec_overflow(void **state)
{
    static char big[HINTS_VALUE_MAX];
    struct hrec_w w;
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    hrec_w_init(&w, 1);
    hrec_put_str(&w, big);
    assert_true(w.bad);
}

static void test_retry_records(void **state)
{
    struct fx *f = *state;
    struct retry_rec r, got;
    memset(&r, 0, sizeof(r));
    r.first_failure = 1700000000;
    r.last_try = 1700000100;
    r.next_try = 1700000400;
    r.failures = 3;
    memset(r.last_error, 'e', sizeof(r.last_error));   /* not terminated */
    assert_true(hints_retry_put(f->h, "192.0.2.1:25", &r));
    assert_true(hints_retry_get(f->h, "192.0.2.1:25", &got));
    assert_int_equal(got.first_failure, r.first_failure);
    assert_int_equal(got.last_try, r.last_try);
    assert_int_equal(got.next_try, r.next_try);
    assert_int_equal(got.failures, 3);
    assert_int_equal(strlen(got.last_error), sizeof(got.last_error) - 1);
    assert_true(hints_retry_del(f->h, "192.0.2.1:25"));
    assert_false(hints_retry_get(f->h, "192.0.2.1:25", &got));
    assert_false(hints_retry_get(f->h, "[2001:db8::1]:25", &got));
}

static void test_retry_record_of_another_version(void **state)
{
    struct fx *f = *state;
    struct retry_rec got;
    assert_true(hints_put(f->h, HINTS_RETRY, "h:25", "\x09garbage", 8));
    assert_false(hints_retry_get(f->h, "h:25", &got));
}

static void test_queue_state(void **state)
{
    struct fx *f = *state;
    struct msg_state st = { 4, 1700000100, 1700000400 }, got;
    struct rcpt_note n, gn;
    memset(&n, 0, sizeof(n));
    n.when = 1700000100;
    n.res.outcome = DLV_DEFERRED;
    n.res.code = 451;
    str_copy(n.res.ecode, "4.3.0", sizeof(n.res.ecode));
    str_copy(n.res.text, "451 4.3.0 try later", sizeof(n.res.text));
    str_copy(n.res.host, "mx.example.net [192.0.2.1]:25", sizeof(n.res.host));
    n.res.relayed_without_dsn = true;
    n.timed_out = true;
    assert_true(qstate_put(f->h, "AAAAAA-BBBBBB-CC", &st));
    assert_true(qstate_get(f->h, "AAAAAA-BBBBBB-CC", &got));
    assert_int_equal(got.attempts, 4);
    assert_int_equal(got.next_try, 1700000400);
    assert_true(qstate_note_put(f->h, "AAAAAA-BBBBBB-CC", 2, &n));
    assert_true(qstate_note_put(f->h, "AAAAAA-BBBBBB-CD", 0, &n));
    assert_true(qstate_note_get(f->h, "AAAAAA-BBBBBB-CC", 2, &gn));
    assert_int_equal(gn.res.outcome, DLV_DEFERRED);
    assert_int_equal(gn.res.code, 451);
    assert_string_equal(gn.res.ecode, "4.3.0");
    assert_string_equal(gn.res.text, n.res.text);
    assert_string_equal(gn.res.host, n.res.host);
    assert_true(gn.res.relayed_without_dsn);
    assert_true(gn.timed_out);
    assert_false(qstate_note_get(f->h, "AAAAAA-BBBBBB-CC", 1, &gn));
    qstate_forget(f->h, "AAAAAA-BBBBBB-CC");
    assert_false(qstate_get(f->h, "AAAAAA-BBBBBB-CC", &got));
    assert_false(qstate_note_get(f->h, "AAAAAA-BBBBBB-CC", 2, &gn));
    assert_true(qstate_note_get(f->h, "AAAAAA-BBBBBB-CD", 0, &gn));  /* another message's */
}

static void test_sweep_forgets_vanished_messages(void **state)
{
    struct fx *f = *state;
    struct msg_state st = { 1, 1, 2 }, got;
    struct rcpt_note n, gn;
    const char *ids[] = { "AAAAAA-AAAAAA-AA", "BBBBBB-BBBBBB-BB", "CCCCCC-CCCCCC-CC" };
    char *live[] = { (char *)"BBBBBB-BBBBBB-BB", (char *)"ZZZZZZ-ZZZZZZ-ZZ" };
    memset(&n, 0, sizeof(n));
    n.res.outcome = DLV_DEFERRED;
    for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
        assert_true(qstate_note_put(f->h, ids[i], 0, &n));
        assert_true(qstate_note_put(f->h, ids[i], 1, &n));
    }
    assert_true(qstate_put(f->h, ids[0], &st));
    assert_true(qstate_put(f->h, ids[1], &st));
    assert_int_equal(qstate_sweep(f->h, live, ARRAY_LEN(live)), 2);  /* A (state and notes), C */
    assert_false(qstate_get(f->h, ids[0], &got));
    assert_false(qstate_note_get(f->h, ids[0], 1, &gn));
    assert_false(qstate_note_get(f->h, ids[2], 0, &gn));
    assert_true(qstate_get(f->h, ids[1], &got));
    assert_true(qstate_note_get(f->h, ids[1], 1, &gn));
    assert_int_equal(qstate_sweep(f->h, live, ARRAY_LEN(live)), 0);
}

/* child_writes - in a new process: open the hints (after fork) and write n keys */
static void child_writes(const char *dir, const char *tag, int n)
{
    char err[256], key[64];
    struct hints *h = hints_open(dir, err, sizeof(err));
    if (h == NULL)
        _exit(2);
    for (int i = 0; i < n; i++) {
        str_fmt(key, sizeof(key), "%s-%04d", tag, i);
        if (!hints_put(h, HINTS_RETRY, key, tag, strlen(tag)))
            _exit(3);
    }
    hints_close(h);
    _exit(0);
}

static bool count_cb(void *arg, const char *key, const void *val, size_t len)
{
    (void)key;
    (void)val;
    (void)len;
    (*(int *)arg)++;
    return true;
}

static void test_two_processes(void **state)
{
    struct fx *f = *state;
    char buf[16];
    size_t len;
    int status, n = 0;
    pid_t a = fork();
    if (a == 0)
        child_writes(f->dir, "a", 300);
    pid_t b = fork();
    if (b == 0)
        child_writes(f->dir, "b", 300);
    assert_int_equal(waitpid(a, &status, 0), a);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(waitpid(b, &status, 0), b);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* this process's environment, opened before the forks, sees what the children wrote */
    assert_true(hints_get(f->h, HINTS_RETRY, "a-0299", buf, sizeof(buf), &len));
    assert_memory_equal(buf, "a", 1);
    assert_true(hints_get(f->h, HINTS_RETRY, "b-0000", buf, sizeof(buf), &len));
    assert_true(hints_each(f->h, HINTS_RETRY, "", count_cb, &n));
    assert_int_equal(n, 600);
}

/* killed_mid_read - a process that dies inside a read transaction */
static bool killed_mid_read(void *arg, const char *key, const void *val, size_t len)
{
    (void)arg;
    (void)key;
    (void)val;
    (void)len;
    kill(getpid(), SIGKILL);
    return false;
}

/* holder - a process that keeps the environment open until it is killed (so that the next
 * opener is not the first, which would reset the reader table without checking it) */
static pid_t holder(const char *dir, int ready[2])
{
    char err[256];
    pid_t pid = fork();
    if (pid == 0) {
        struct hints *h = hints_open(dir, err, sizeof(err));
        (void)!write(ready[1], h ? "y" : "n", 1);
        pause();
        _exit(0);
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    return pid;
}

static void test_stale_reader_is_cleared(void **state)
{
    struct fx *f = *state;
    char err[256], path[128], log[4096] = "";
    int status, ready[2];
    assert_true(hints_put(f->h, HINTS_RETRY, "k", "v", 1));
    hints_close(f->h);   /* LMDB: one environment per process */
    f->h = NULL;
    assert_int_equal(pipe(ready), 0);
    pid_t hold = holder(f->dir, ready);
    pid_t pid = fork();
    if (pid == 0) {
        struct hints *h = hints_open(f->dir, err, sizeof(err));
        hints_each(h, HINTS_RETRY, "", killed_mid_read, NULL);
        _exit(1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(log_open(f->dir));
    f->h = hints_open(f->dir, err, sizeof(err));
    assert_non_null(f->h);
    kill(hold, SIGKILL);
    waitpid(hold, &status, 0);
    close(ready[0]);
    close(ready[1]);
    str_fmt(path, sizeof(path), "%s/mainlog", f->dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, log, sizeof(log) - 1) > 0);
    close(fd);
    assert_non_null(strstr(log, "stale reader"));
}

static void test_unusable_file_is_moved_aside(void **state)
{
    struct fx *f = *state;
    char path[128], err[256], buf[8];
    size_t len;
    struct stat st;
    hints_close(f->h);
    str_fmt(path, sizeof(path), "%s/db/data.mdb", f->dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "this is not an lmdb file, not at all....", 40), 40);
    close(fd);
    f->h = hints_open(f->dir, err, sizeof(err));
    assert_non_null(f->h);
    assert_true(hints_put(f->h, HINTS_RETRY, "k", "v", 1));
    assert_true(hints_get(f->h, HINTS_RETRY, "k", buf, sizeof(buf), &len));
    str_fmt(path, sizeof(path), "%s/db/data.mdb.bad", f->dir);
    assert_int_equal(stat(path, &st), 0);
}

static void test_full_map_is_not_fatal(void **state)
{
    struct fx *f = *state;
    static char val[HINTS_VALUE_MAX], big[HINTS_VALUE_MAX];
    char key[32];
    size_t len;
    int stored = 0, i;
    memset(val, 'v', sizeof(val));
    for (i = 0; i < (int)(HINTS_MAP_SIZE / HINTS_VALUE_MAX) + 100; i++) {
        str_fmt(key, sizeof(key), "fill-%06d", i);
        if (!hints_put(f->h, HINTS_RCPT, key, val, sizeof(val)))
            break;
        stored++;
    }
    assert_true(stored > 1000);
    assert_true(i < (int)(HINTS_MAP_SIZE / HINTS_VALUE_MAX) + 100);   /* it did fill up */
    assert_false(hints_put(f->h, HINTS_RCPT, "one-more", val, sizeof(val)));
    assert_true(hints_get(f->h, HINTS_RCPT, "fill-000000", big, sizeof(big), &len));
    assert_int_equal(len, sizeof(val));   /* what was stored before is intact */
    /* deleting makes room again */
    assert_true(hints_del_prefix(f->h, HINTS_RCPT, "fill-") == (size_t)stored);
    assert_true(hints_put(f->h, HINTS_RCPT, "one-more", val, sizeof(val)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_databases_are_separate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test(test_null_handle),
        cmocka_unit_test_setup_teardown(test_each_and_prefix_delete, setup, teardown),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_codec_overflow),
        cmocka_unit_test_setup_teardown(test_retry_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_record_of_another_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_forgets_vanished_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_reader_is_cleared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_file_is_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_map_is_not_fatal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
