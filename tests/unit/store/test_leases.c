/* test_leases.c - the lease table every process shares: at most N leases per key, idle ones,
 * wants, several processes, the leases of a dead process taken back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

struct fx {
    char dir[64];
    struct leases *ls;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256], db[128];
    str_copy(f->dir, "/tmp/tandem-leases-test-XXXXXX", sizeof(f->dir));
    if (mkdtemp(f->dir) == NULL)
        return -1;
    str_fmt(db, sizeof(db), "%s/db", f->dir);
    mkdir(db, 0700);
    f->ls = leases_open(f->dir, err, sizeof(err));
    if (f->ls == NULL) {
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
    leases_close(f->ls);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void test_at_most_max(void **state)
{
    struct fx *f = *state;
    struct lease_count c;
    int a = leases_take(f->ls, "127.0.0.2:25", 2), b = leases_take(f->ls, "127.0.0.2:25", 2);
    assert_true(a >= 0 && b >= 0 && a != b);
    assert_int_equal(leases_take(f->ls, "127.0.0.2:25", 2), LEASE_FULL);
    assert_true(leases_take(f->ls, "127.0.0.3:25", 2) >= 0);   /* another key */
    leases_set_idle(f->ls, a, true);
    assert_true(leases_count(f->ls, "127.0.0.2:25", &c));
    assert_int_equal(c.held, 2);
    assert_int_equal(c.idle, 1);
    assert_int_equal(leases_take(f->ls, "127.0.0.2:25", 2), LEASE_FULL); /* idle ones count */
    leases_give(f->ls, a);
    int d = leases_take(f->ls, "127.0.0.2:25", 2);
    assert_true(d >= 0);
    assert_true(leases_count(f->ls, "127.0.0.2:25", &c));
    assert_int_equal(c.held, 2);
    assert_int_equal(c.idle, 0);
    assert_false(leases_count(f->ls, "192.0.2.1:25", &c));
    assert_int_equal(leases_take(NULL, "x", 1), LEASE_NONE);      /* no table: not enforced */
}

static void test_wants(void **state)
{
    struct fx *f = *state;
    int a = leases_take(f->ls, "k:1", 1);
    assert_false(leases_wanted(f->ls, a));
    int w = leases_want(f->ls, "k:1");
    assert_true(w >= 0);
    assert_true(leases_wanted(f->ls, a));
    leases_give(f->ls, w);
    assert_false(leases_wanted(f->ls, a));
    leases_give(f->ls, a);
    leases_give(f->ls, a);                 /* twice: ignored */
    assert_true(leases_take(f->ls, "k:1", 1) >= 0);
}

/* the leases of a process that died are taken back; a live process's are not */
static void test_other_processes(void **state)
{
    struct fx *f = *state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char err[256];
        struct leases *ls = leases_open(f->dir, err, sizeof(err));
        bool ok = ls && leases_take(ls, "h:25", 2) >= 0 && leases_take(ls, "h:25", 2) >= 0;
        (void)!write(pipefd[1], ok ? "y" : "n", 1);
        pause();
        _exit(0);
    }
    char c = 0;
    ssize_t n = read(pipefd[0], &c, 1);
    int full = leases_take(f->ls, "h:25", 2);
    kill(pid, SIGKILL);                 /* first: a failed assertion must not leave it behind */
    waitpid(pid, NULL, 0);
    assert_int_equal(n, 1);
    assert_int_equal(c, 'y');
    assert_int_equal(full, LEASE_FULL);                           /* the child held both */
    assert_true(leases_take(f->ls, "h:25", 2) >= 0);              /* taken back from the dead */
    assert_true(leases_take(f->ls, "h:25", 2) >= 0);
    assert_int_equal(leases_take(f->ls, "h:25", 2), LEASE_FULL);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_many_keys_reuse_entries(void **state)
{
    struct fx *f = *state;
    char key[64];
    for (int i = 0; i < 20000; i++) {   /* far more keys than entries: unused ones are reused */
        str_fmt(key, sizeof(key), "10.%d.%d.%d:25", i >> 16, (i >> 8) & 255, i & 255);
        int id = leases_take(f->ls, key, 1);
        assert_true(id >= 0);
        leases_give(f->ls, id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_at_most_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_keys_reuse_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
