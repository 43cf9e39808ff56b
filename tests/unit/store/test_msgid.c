/* test_msgid.c - message ids: form, validation, ordering, uniqueness within a process and
 * across forked processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/msgid.h"
#include "store/store.h"

#define MANY 100000
#define CHILDREN 4
#define PER_CHILD 20000

/* matches_form - the id matches Exim's classic regular expression */
static bool matches_form(const char *id)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}$",
                             REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, id, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void test_form(void **state)
{
    (void)state;
    char id[MSGID_LEN + 1];
    uint64_t sec;
    unsigned long pid;
    msgid_new(id);
    assert_int_equal(strlen(id), MSGID_LEN);
    assert_true(matches_form(id));
    assert_true(msgid_valid(id));
    assert_true(msgid_parse(id, &sec, &pid, NULL));
    assert_int_equal(pid, (unsigned long)getpid());
    assert_true(sec + 5 >= (uint64_t)time(NULL) && sec <= (uint64_t)time(NULL) + 5);
}

static void test_known_values(void **state)
{
    (void)state;
    struct msgid_clock c = { 0, 0 };
    char id[MSGID_LEN + 1];
    msgid_next(&c, 62, 999999, 61, id); /* 62 s, pid 61, fraction 3843 */
    assert_string_equal(id, "000010-00000z-zz");
    c = (struct msgid_clock){ 0, 0 };
    msgid_next(&c, 1700000000, 500000, 4194304, id);
    uint64_t sec;
    unsigned long pid;
    unsigned frac;
    assert_true(msgid_parse(id, &sec, &pid, &frac));
    assert_int_equal(sec, 1700000000);
    assert_int_equal(pid, 4194304);
    assert_int_equal(frac, 1922);
}

static void test_valid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "1RVfZC-000Abc-0", "1RVfZC-000Abc-0zz", "1RVfZC_000Abc-0z", "1RVfZC-000Abc_0z",
        "1RVfZC-000Ab!-0z", "../../etc/passwd", "1RVfZC-000Abc-0z-J", "1RVfZC-000Abc-0\n",
        "1RVfZC 000Abc 0z",
    };
    assert_true(msgid_valid("1RVfZC-000Abc-0z"));
    assert_true(msgid_valid("000000-000000-00"));
    assert_true(msgid_valid("zzzzzz-zzzzzz-zz"));
    assert_false(msgid_valid(NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(msgid_valid(bad[i]));
}

/* Within one second the fraction is bumped; at its top it carries into the seconds. */
static void test_bump_and_carry(void **state)
{
    (void)state;
    struct msgid_clock c = { 100, MSGID_FRAC_MAX - 2 };
    char a[MSGID_LEN + 1], b[MSGID_LEN + 1];
    msgid_next(&c, 100, 0, 7, a);
    assert_int_equal(c.sec, 100);
    assert_int_equal(c.frac, MSGID_FRAC_MAX - 1);
    msgid_next(&c, 100, 0, 7, b);
    assert_int_equal(c.sec, 101);
    assert_int_equal(c.frac, 0);
    assert_true(msgid_cmp(a, b) < 0);
    assert_true(strcmp(a, b) < 0);
    /* The clock going back does not make ids go back. */
    msgid_next(&c, 50, 0, 7, a);
    assert_int_equal(c.sec, 101);
    assert_int_equal(c.frac, 1);
    assert_true(msgid_cmp(b, a) < 0);
    /* A later clock is used as is. */
    msgid_next(&c, 200, 500000, 7, b);
    assert_int_equal(c.sec, 200);
    assert_int_equal(c.frac, 1922);
}

static void test_cmp_order(void **state)
{
    (void)state;
    /* Same second: fraction decides before pid. */
    assert_true(msgid_cmp("1RVfZC-zzzzzz-01", "1RVfZC-000000-02") < 0);
    assert_true(msgid_cmp("1RVfZB-zzzzzz-zz", "1RVfZC-000000-00") < 0);
    assert_true(msgid_cmp("1RVfZC-000001-05", "1RVfZC-000002-05") < 0);
    assert_int_equal(msgid_cmp("1RVfZC-000001-05", "1RVfZC-000001-05"), 0);
}

/* by_id - qsort comparator on string pointers */
static int by_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* assert_unique - sort n ids and check that no two are equal */
static void assert_unique(char **ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), by_id);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
}

static void test_unique_in_process(void **state)
{
    (void)state;
    char *buf = malloc((size_t)MANY * (MSGID_LEN + 1));
    char **ids = malloc(MANY * sizeof(*ids));
    for (size_t i = 0; i < MANY; i++) {
        ids[i] = buf + i * (MSGID_LEN + 1);
        msgid_new(ids[i]);
        assert_true(msgid_valid(ids[i]));
        if (i > 0)
            assert_true(msgid_cmp(ids[i - 1], ids[i]) < 0); /* strictly increasing */
    }
    assert_unique(ids, MANY);
    free(ids);
    free(buf);
}

/* child_ids - in a forked child: generate ids and write them to fd, then exit */
static void child_ids(int fd)
{
    char id[MSGID_LEN + 1];
    for (int i = 0; i < PER_CHILD; i++) {
        msgid_new(id);
        if (write(fd, id, MSGID_LEN) != MSGID_LEN)
            _exit(1);
    }
    _exit(0);
}

/* read_ids - read exactly n ids of MSGID_LEN bytes from fd into buf */
static void read_ids(int fd, char *buf, size_t n, char **ids)
{
    for (size_t i = 0; i < n; i++) {
        size_t got = 0;
        while (got < MSGID_LEN) {
            ssize_t r = read(fd, buf + i * (MSGID_LEN + 1) + got, MSGID_LEN - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
        buf[i * (MSGID_LEN + 1) + MSGID_LEN] = '\0';
        ids[i] = buf + i * (MSGID_LEN + 1);
    }
}

static void test_unique_across_fork(void **state)
{
    (void)state;
    const size_t total = (size_t)CHILDREN * PER_CHILD + PER_CHILD;
    char *buf = malloc(total * (MSGID_LEN + 1));
    char **ids = malloc(total * sizeof(*ids));
    char warm[MSGID_LEN + 1];
    msgid_new(warm); /* the parent's clock state is inherited by the children */
    int fds[CHILDREN];
    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            close(p[0]);
            child_ids(p[1]);
        }
        close(p[1]);
        fds[c] = p[0];
    }
    for (size_t i = 0; i < PER_CHILD; i++) { /* the parent competes at the same time */
        ids[i] = buf + i * (MSGID_LEN + 1);
        msgid_new(ids[i]);
    }
    for (int c = 0; c < CHILDREN; c++) {
        size_t base = PER_CHILD + (size_t)c * PER_CHILD;
        read_ids(fds[c], buf + base * (MSGID_LEN + 1), PER_CHILD, ids + base);
        close(fds[c]);
        int st;
        assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_unique(ids, total);
    free(ids);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_bump_and_carry),
        cmocka_unit_test(test_cmp_order),
        cmocka_unit_test(test_unique_in_process),
        cmocka_unit_test(test_unique_across_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
