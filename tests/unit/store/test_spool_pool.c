/* test_spool_pool.c - reusable temporary files: a recycled file is reused, a committed message
 * reads back exactly even when written over a longer earlier one, an aborted one leaves an
 * empty file, and freeing the pool removes its files. */
#include "spool_fixture.h"

/* tmp_files - how many files tmp/ holds, and their total size */
static size_t tmp_files(const char *dir, off_t *total)
{
    char path[256];
    size_t n = 0;
    *total = 0;
    str_fmt(path, sizeof(path), "%s/tmp", dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char p[600];
        if (de->d_name[0] == '.')
            continue;
        str_fmt(p, sizeof(p), "%s/%s", path, de->d_name);
        stat(p, &st);
        *total += st.st_size;
        n++;
    }
    closedir(d);
    return n;
}

static struct spool_writer *start(struct spool_pool *pool, struct envelope *env, const char *body)
{
    envelope_init(env);
    env->sender = xstrdup("s@example.test");
    env->arrival = 1700000000;
    envelope_add_rcpt(env, "r@example.test", 0, NULL);
    struct spool_writer *w = spool_create_pooled(pool, env);
    assert_non_null(w);
    assert_true(spool_write(w, body, strlen(body)));
    return w;
}

static void test_recycle_then_commit_shorter(void **state)
{
    const char *dir = fixture_dir(state);
    struct spool_pool *pool = spool_pool_new(dir);
    struct envelope env;
    off_t total;
    static char big[100000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    spool_recycle(start(pool, &env, big));          /* delivered elsewhere: file kept as is */
    envelope_free(&env);
    assert_int_equal(tmp_files(dir, &total), 1);
    assert_true(total > 65536);                     /* one full record went out */
    struct spool_writer *w = start(pool, &env, "short\r\n");   /* reuses that file */
    assert_int_equal(tmp_files(dir, &total), 1);
    assert_true(spool_commit(w, &env, true));
    assert_int_equal(tmp_files(dir, &total), 0);
    struct envelope back;
    assert_int_equal(spool_read_envelope(dir, env.id, &back), 0);   /* no stale tail */
    assert_int_equal(back.size, 7);
    struct spool_reader *r = spool_open_content(dir, env.id);
    char buf[64];
    long n = spool_read_content(r, buf, sizeof(buf));
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "short\r\n", 7);
    spool_close_content(r);
    envelope_free(&back);
    envelope_free(&env);
    spool_pool_free(pool);
}

static void test_abort_empties_and_free_removes(void **state)
{
    const char *dir = fixture_dir(state);
    struct spool_pool *pool = spool_pool_new(dir);
    struct envelope env;
    off_t total;
    spool_abort(start(pool, &env, "secret partial message\r\n"));
    envelope_free(&env);
    assert_int_equal(tmp_files(dir, &total), 1);
    assert_int_equal(total, 0);                     /* nothing of it left on disk */
    spool_pool_free(pool);
    assert_int_equal(tmp_files(dir, &total), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recycle_then_commit_shorter, spool_fixture_setup,
                                        spool_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_abort_empties_and_free_removes, spool_fixture_setup,
                                        spool_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
