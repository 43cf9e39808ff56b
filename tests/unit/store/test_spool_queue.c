/* test_spool_queue.c - the spool as a queue: directory layout, delivery journal (including
 * torn records), per-message locks between processes, listing order, removal, quarantine. */
#include "spool_fixture.h"

#include <fcntl.h>
#include <sys/wait.h>

#include "store/msgid.h"

/* new_msg - commit a message with n recipients; its id goes to id */
static void new_msg(const char *dir, size_t n, char id[MSGID_LEN + 1])
{
    struct envelope env;
    fill_env(&env, n);
    assert_true(commit_msg(dir, &env, "body\r\n", 6, 0));
    memcpy(id, env.id, MSGID_LEN + 1);
    envelope_free(&env);
}

/* states - the recipient states as a string: '.' pending, 'd' delivered, 'f' failed */
static int states(const char *dir, const char *id, char out[32])
{
    struct envelope env;
    if (spool_read_envelope(dir, id, &env) < 0)
        return -1;
    assert_true(env.nrcpts < 32);
    for (size_t i = 0; i < env.nrcpts; i++)
        out[i] = ".df"[env.rcpts[i].state];
    out[env.nrcpts] = '\0';
    envelope_free(&env);
    return 0;
}

static void test_init_dirs(void **state)
{
    static const char *subs[] = { "input", "tmp", "corrupt", "db" };
    char dir[4096], path[4096], err[256];
    struct stat st;
    mode_t old = umask(022);
    str_fmt(dir, sizeof(dir), "%s/fresh", fixture_dir(state));
    assert_true(spool_init_dirs(dir, err, sizeof(err)));
    assert_true(spool_init_dirs(dir, err, sizeof(err))); /* again: nothing to do */
    umask(old);
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        str_fmt(path, sizeof(path), "%s/%s", dir, subs[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
    }
    put_file(dir, "input", "../notadir", "x", 1); /* dir/notadir is a plain file */
    str_fmt(path, sizeof(path), "%s/notadir", dir);
    assert_false(spool_init_dirs(path, err, sizeof(err)));
    assert_non_null(strstr(err, "notadir"));
}

static void test_journal(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1], st[32];
    new_msg(dir, 4, id);
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "....");
    assert_true(spool_journal(dir, id, 0, RCPT_DELIVERED));
    assert_true(spool_journal(dir, id, 2, RCPT_FAILED));
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "d.f.");
    assert_true(spool_journal(dir, id, 3, RCPT_DELIVERED));
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "d.fd");
}

static void test_journal_torn_record(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1], jname[32], st[32];
    size_t len;
    new_msg(dir, 13, id);
    str_fmt(jname, sizeof(jname), "%s-J", id);
    put_file(dir, "input", jname, "d0\nf2\nd1", 8); /* crash while appending "d12\n" */
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "d.f..........");
    /* The next append cuts the torn bytes off first, so they cannot merge with it. */
    assert_true(spool_journal(dir, id, 3, RCPT_DELIVERED));
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "d.fd.........");
    unsigned char *p = get_file(dir, "input", jname, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(p, "d0\nf2\nd3\n", 9);
    free(p);
    put_file(dir, "input", jname, "d1", 2); /* torn first record */
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, ".............");
    assert_true(spool_journal(dir, id, 12, RCPT_FAILED));
    assert_int_equal(states(dir, id, st), 0);
    assert_string_equal(st, "............f");
}

static void test_journal_corrupt(void **state)
{
    static const char *bad[] = {
        "x1\n", "d\n", "d4\n", "d01\n", "d-1\n", "D1\n", "d1 \n", "\n", "d1\r\n",
        "d123456789\n", "d0\nd99999999999999999999", "d0\nq\n",
    };
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1], jname[32], st[32];
    new_msg(dir, 4, id);
    str_fmt(jname, sizeof(jname), "%s-J", id);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        put_file(dir, "input", jname, bad[i], strlen(bad[i]));
        if (states(dir, id, st) != -1 || errno != EBADMSG)
            fail_msg("journal \"%s\" accepted", bad[i]);
    }
}

static void test_journal_refusals(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1];
    new_msg(dir, 1, id);
    assert_false(spool_journal(dir, "000000-000000-00", 0, RCPT_DELIVERED));
    assert_int_equal(errno, ENOENT); /* no message, so no orphan journal either */
    assert_false(file_exists(dir, "input", "000000-000000-00-J"));
    assert_false(spool_journal(dir, "../x", 0, RCPT_DELIVERED));
    assert_int_equal(errno, EINVAL);
    assert_false(spool_journal(dir, id, 0, RCPT_PENDING));
    assert_int_equal(errno, EINVAL);
    assert_false(spool_journal(dir, id, 100000, RCPT_FAILED));
    assert_int_equal(errno, EINVAL);
}

/* child_try_lock - in a forked child: exit 0 if locked, 1 if EWOULDBLOCK, 2 otherwise */
static int child_try_lock(const char *dir, const char *id)
{
    pid_t pid = fork();
    int st;
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = spool_lock(dir, id);
        _exit(fd >= 0 ? 0 : errno == EWOULDBLOCK ? 1 : 2);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_lock_between_processes(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1];
    new_msg(dir, 1, id);
    int fd = spool_lock(dir, id);
    assert_true(fd >= 0);
    assert_int_equal(child_try_lock(dir, id), 1);
    assert_int_equal(spool_lock(dir, id), -1); /* a second open in this process too */
    assert_int_equal(errno, EWOULDBLOCK);
    spool_unlock(fd);
    assert_int_equal(child_try_lock(dir, id), 0);
    /* The lock is not inherited by exec'd programs. */
    fd = spool_lock(dir, id);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    spool_unlock(fd);
}

static void test_lock_gone(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1];
    assert_int_equal(spool_lock(dir, "000000-000000-00"), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_lock(dir, "bad"), -1);
    assert_int_equal(errno, EINVAL);
    new_msg(dir, 1, id);
    assert_true(spool_remove(dir, id));
    assert_int_equal(spool_lock(dir, id), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_list_order(void **state)
{
    const char *dir = fixture_dir(state);
    struct msgid_clock c = { 0, 0 };
    char ids[6][MSGID_LEN + 1], name[40];
    char **list;
    /* Out of creation order on disk: (time, fraction) decides, then pid. */
    msgid_next(&c, 1700000500, 0, 9, ids[4]);
    msgid_next(&c, 1700000500, 0, 1, ids[5]);
    c = (struct msgid_clock){ 0, 0 };
    msgid_next(&c, 1600000000, 999999, 999999, ids[0]);
    msgid_next(&c, 1700000000, 0, 5, ids[1]);
    c = (struct msgid_clock){ 0, 0 };
    msgid_next(&c, 1700000000, 0, 6, ids[2]);
    msgid_next(&c, 1700000001, 0, 1, ids[3]);
    static const int create_order[] = { 3, 5, 0, 4, 2, 1 };
    for (size_t i = 0; i < ARRAY_LEN(create_order); i++)
        put_file(dir, "input", ids[create_order[i]], "x", 1);
    str_fmt(name, sizeof(name), "%s-J", ids[2]);
    put_file(dir, "input", name, "d0\n", 3); /* journals, strays and tmp are not listed */
    put_file(dir, "input", "README", "x", 1);
    put_file(dir, "input", "1RVfZC-000Abc-0z.tmp", "x", 1);
    put_file(dir, "tmp", "1RVfZC-000Abc-0y", "x", 1);
    size_t n = spool_list(dir, &list);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i], ids[i]);
    spool_list_free(list, n);
}

static void test_list_committed(void **state)
{
    const char *dir = fixture_dir(state);
    char ids[20][MSGID_LEN + 1];
    char **list;
    assert_int_equal(spool_list(dir, &list), 0);
    spool_list_free(list, 0);
    for (int i = 0; i < 20; i++)
        new_msg(dir, 1, ids[i]);
    size_t n = spool_list(dir, &list);
    assert_int_equal(n, 20);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i], ids[i]);
    spool_list_free(list, n);
    assert_int_equal(spool_list("/nonexistent/spool", &list), 0);
    assert_null(list);
}

static void test_remove(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1], id2[MSGID_LEN + 1];
    new_msg(dir, 2, id);
    new_msg(dir, 2, id2);
    assert_true(spool_journal(dir, id, 1, RCPT_DELIVERED));
    assert_true(spool_remove(dir, id));
    assert_int_equal(count_files(dir, "input"), 1);
    assert_true(spool_remove(dir, id2)); /* without a journal */
    assert_int_equal(count_files(dir, "input"), 0);
    assert_false(spool_remove(dir, id));
    assert_int_equal(errno, ENOENT);
    assert_false(spool_remove(dir, "../../etc/passw"));
    assert_int_equal(errno, EINVAL);
}

static void test_quarantine(void **state)
{
    const char *dir = fixture_dir(state);
    char id[MSGID_LEN + 1], name[40];
    new_msg(dir, 2, id);
    assert_true(spool_journal(dir, id, 0, RCPT_FAILED));
    assert_true(spool_quarantine(dir, id));
    assert_int_equal(count_files(dir, "input"), 0);
    assert_true(file_exists(dir, "corrupt", id));
    str_fmt(name, sizeof(name), "%s-J", id);
    assert_true(file_exists(dir, "corrupt", name));
    /* The same id again (say, restored by hand) does not overwrite the first. */
    put_file(dir, "input", id, "junk", 4);
    assert_true(spool_quarantine(dir, id));
    str_fmt(name, sizeof(name), "%s.1", id);
    assert_true(file_exists(dir, "corrupt", name));
    assert_int_equal(count_files(dir, "corrupt"), 3);
    assert_false(spool_quarantine(dir, id));
    assert_int_equal(errno, ENOENT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, spool_fixture_setup, spool_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_init_dirs),
        T(test_journal),
        T(test_journal_torn_record),
        T(test_journal_corrupt),
        T(test_journal_refusals),
        T(test_lock_between_processes),
        T(test_lock_gone),
        T(test_list_order),
        T(test_list_committed),
        T(test_remove),
        T(test_quarantine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
