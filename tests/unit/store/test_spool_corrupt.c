/* test_spool_corrupt.c - the reader against files that are damaged or forged: every
 * malformation is EBADMSG (never a crash, a hang or a half-read envelope), every truncation
 * of a good file is EBADMSG, and single-byte damage anywhere is either EBADMSG or a clean read. */
#include "spool_fixture.h"

#include "store/spool_record.h"

#define ID "1RVfZC-000Abc-0z"
#define MAGIC "tandem-spool 1\n"
#define HEAD MAGIC "I16:" ID "\nT10:1700000000\nS3:s@x\n"
#define TAIL "D5:hello\nZ1:5\nX0:\n"

/* read_status - spool_read_envelope and spool_open_content on the file agree: 0 or errno */
static int read_status(const char *dir)
{
    struct envelope env;
    int r = spool_read_envelope(dir, ID, &env);
    int err = r < 0 ? errno : 0;
    struct spool_reader *rd = spool_open_content(dir, ID);
    assert_int_equal(rd == NULL ? errno : 0, err);
    if (r == 0) {
        char buf[333];
        long n;
        uint64_t total = 0;
        while ((n = spool_read_content(rd, buf, sizeof(buf))) > 0)
            total += (uint64_t)n;
        assert_int_equal(n, 0);
        assert_int_equal(total, spool_content_length(&env));
        envelope_free(&env);
    } else {
        assert_null(env.sender); /* nothing half-read is left behind */
        assert_int_equal(env.nrcpts, 0);
    }
    spool_close_content(rd);
    return err;
}

/* status_of - write bytes as the message file and read it */
static int status_of(const char *dir, const void *p, size_t len)
{
    put_file(dir, "input", ID, p, len);
    return read_status(dir);
}

static void test_good_crafted_file(void **state)
{
    static const char good[] = HEAD "R3:a@x\nN1:6\nO10:rfc822;a@x\nR3:b@x\nO0:\nC3:::1\nP2:25\n"
                               "H4:helo\nY6:esmtps\nL3:TLS\nE2:id\nF1:1\nB1:2\nU1:1\n"
                               "D3:abc\nD1:\n\nD2:\r\n\nZ1:6\nM5:<a@b>\nX0:\n";
    struct envelope env;
    size_t len;
    put_file(fixture_dir(state), "input", ID, good, sizeof(good) - 1);
    assert_int_equal(spool_read_envelope(fixture_dir(state), ID, &env), 0);
    assert_int_equal(env.nrcpts, 2);
    assert_int_equal(env.rcpts[0].notify, 6);
    assert_string_equal(env.rcpts[0].orcpt, "rfc822;a@x");
    assert_string_equal(env.rcpts[1].orcpt, "");
    assert_string_equal(env.client_ip, "::1");
    assert_int_equal(env.client_port, 25);
    assert_int_equal(env.ret, DSN_RET_FULL);
    assert_int_equal(env.body, BODY_8BITMIME);
    assert_true(env.smtputf8);
    assert_int_equal(env.size, 6);
    assert_string_equal(env.message_id, "<a@b>");
    envelope_free(&env);
    unsigned char *c = read_all(fixture_dir(state), ID, &len, 1);
    assert_int_equal(len, 6);
    assert_memory_equal(c, "abc\n\r\n", 6);
    free(c);
}

/* test_added_headers_read_first - the A record's header lines are streamed before the
 * content, so the content is longer than the envelope's size by them (fuzz_spool's finding:
 * the property, not the reader, was wrong) */
static void test_added_headers_read_first(void **state)
{
    static const char good[] = HEAD "R3:a@x\nD5:hello\nZ1:5\nM5:<a@b>\nA16:X-A: 1\r\nX-B: 2\r\n\nX0:\n";
    struct envelope env;
    size_t len;
    put_file(fixture_dir(state), "input", ID, good, sizeof(good) - 1);
    assert_int_equal(read_status(fixture_dir(state)), 0);
    assert_int_equal(spool_read_envelope(fixture_dir(state), ID, &env), 0);
    assert_int_equal(env.size, 5);
    assert_string_equal(env.added_headers, "X-A: 1\r\nX-B: 2\r\n");
    assert_int_equal(spool_content_length(&env), 21);
    envelope_free(&env);
    unsigned char *c = read_all(fixture_dir(state), ID, &len, 1);
    assert_int_equal(len, 21);
    assert_memory_equal(c, "X-A: 1\r\nX-B: 2\r\nhello", 21);
    free(c);
}

struct bad_case {
    const char *name;
    const char *bytes;
    size_t len;
};

#define BAD(name, s) { name, s, sizeof(s) - 1 } /* sizeof: embedded NULs count */

static const struct bad_case bad_cases[] = {
    BAD("empty file", ""),
    BAD("magic only", MAGIC),
    BAD("wrong magic", "tandem-spool 2\nI16:" ID "\nT1:0\nS0:\n" TAIL),
    BAD("no magic", "I16:" ID "\nT1:0\nS0:\n" TAIL),
    BAD("no END record", HEAD "D5:hello\nZ1:5\n"),
    BAD("no size record", HEAD "D5:hello\nX0:\n"),
    BAD("END with payload", HEAD "D5:hello\nZ1:5\nX1:x\n"),
    BAD("bytes after END", HEAD TAIL "S3:s@x\n"),
    BAD("newline after END", HEAD TAIL "\n"),
    BAD("unknown type", HEAD "Q1:x\n" TAIL),
    BAD("lowercase type", HEAD "s3:s@x\n" TAIL),
    BAD("length overruns the file", HEAD "D99:hello\nZ1:5\nX0:\n"),
    BAD("huge length", HEAD "D9999999999999999999999:x\n" TAIL),
    BAD("length over the cap", HEAD "D65537:x\n" TAIL),
    BAD("length with a leading zero", HEAD "H03:abc\n" TAIL),
    BAD("empty length", HEAD "H:abc\n" TAIL),
    BAD("signed length", HEAD "H-3:abc\n" TAIL),
    BAD("length with a space", HEAD "H 3:abc\n" TAIL),
    BAD("missing colon", HEAD "H3abc\n" TAIL),
    BAD("wrong terminator", HEAD "H3:abcX" TAIL),
    BAD("CRLF terminator", HEAD "H3:abc\r\n" TAIL),
    BAD("length too short", HEAD "H2:abc\n" TAIL),
    BAD("end inside a length", HEAD "D12"),
    BAD("end inside a payload", HEAD "D12:hel"),
    BAD("end before a terminator", HEAD "D5:hello"),
    BAD("size mismatch", HEAD "D5:hello\nZ1:6\nX0:\n"),
    BAD("size not a number", HEAD "D5:hello\nZ1:x\nX0:\n"),
    BAD("size with a leading zero", HEAD "D5:hello\nZ2:05\nX0:\n"),
    BAD("size empty", HEAD "D5:hello\nZ0:\nX0:\n"),
    BAD("empty data record", HEAD "D0:\nD5:hello\nZ1:5\nX0:\n"),
    BAD("data after size", HEAD "D5:hello\nZ1:5\nD1:x\nX0:\n"),
    BAD("envelope after data", HEAD "D5:hello\nR3:a@x\nZ1:5\nX0:\n"),
    BAD("empty added headers", HEAD "D5:hello\nZ1:5\nA0:\nX0:\n"),
    BAD("added headers without CRLF", HEAD "D5:hello\nZ1:5\nA6:X-A: 1\nX0:\n"),
    BAD("added headers ending in LF", HEAD "D5:hello\nZ1:5\nA7:X-A: 1\n\nX0:\n"),
    BAD("added headers with a bare CR", HEAD "D5:hello\nZ1:5\nA11:X-A: 1\rX\r\n\nX0:\n"),
    BAD("added headers with a bare LF", HEAD "D5:hello\nZ1:5\nA11:X-A: 1\nX\r\n\nX0:\n"),
    BAD("added headers before Message-ID", HEAD "D5:hello\nZ1:5\nA8:X-A: 1\r\n\nM1:a\nX0:\n"),
    BAD("two Message-IDs", HEAD "D5:hello\nZ1:5\nM1:a\nM1:b\nX0:\n"),
    BAD("Message-ID with NUL", HEAD "D5:hello\nZ1:5\nM3:a\0b\nX0:\n"),
    BAD("two sizes", HEAD "D5:hello\nZ1:5\nZ1:5\nX0:\n"),
    BAD("duplicate sender", HEAD "S3:t@x\n" TAIL),
    BAD("duplicate time", HEAD "T1:5\n" TAIL),
    BAD("duplicate helo", HEAD "H1:a\nH1:b\n" TAIL),
    BAD("NUL in the sender", MAGIC "I16:" ID "\nT1:0\nS3:a\0b\n" TAIL),
    BAD("NUL in a recipient", HEAD "R3:a\0b\n" TAIL),
    BAD("NUL in an ORCPT", HEAD "R1:a\nO3:a\0b\n" TAIL),
    BAD("NOTIFY without a recipient", HEAD "N1:2\n" TAIL),
    BAD("NOTIFY after ORCPT", HEAD "R1:a\nO1:x\nN1:2\n" TAIL),
    BAD("two NOTIFY", HEAD "R1:a\nN1:2\nN1:4\n" TAIL),
    BAD("two ORCPT", HEAD "R1:a\nO1:x\nO1:y\n" TAIL),
    BAD("ORCPT without a recipient", HEAD "O1:x\n" TAIL),
    BAD("NOTIFY zero", HEAD "R1:a\nN1:0\n" TAIL),
    BAD("NOTIFY too big", HEAD "R1:a\nN2:16\n" TAIL),
    BAD("id mismatch", MAGIC "I16:1RVfZC-000Abc-0y\nT1:0\nS0:\n" TAIL),
    BAD("id too short", MAGIC "I15:1RVfZC-000Abc-0\nT1:0\nS0:\n" TAIL),
    BAD("id not first", MAGIC "T1:0\nI16:" ID "\nS0:\n" TAIL),
    BAD("id twice", HEAD "I16:" ID "\n" TAIL),
    BAD("no id", MAGIC "T1:0\nS0:\n" TAIL),
    BAD("no time", MAGIC "I16:" ID "\nS0:\n" TAIL),
    BAD("no sender", MAGIC "I16:" ID "\nT1:0\n" TAIL),
    BAD("time overflow", MAGIC "I16:" ID "\nT20:99999999999999999999\nS0:\n" TAIL),
    BAD("time negative", MAGIC "I16:" ID "\nT2:-1\nS0:\n" TAIL),
    BAD("port zero", HEAD "P1:0\n" TAIL),
    BAD("port too big", HEAD "P5:65536\n" TAIL),
    BAD("port with a space", HEAD "P3:25 \n" TAIL),
    BAD("RET out of range", HEAD "F1:3\n" TAIL),
    BAD("RET zero", HEAD "F1:0\n" TAIL),
    BAD("BODY out of range", HEAD "B1:4\n" TAIL),
    BAD("SMTPUTF8 zero", HEAD "U1:0\n" TAIL),
    BAD("SMTPUTF8 word", HEAD "U3:yes\n" TAIL),
    BAD("a record with no type", HEAD "3:abc\n" TAIL),
};

static void test_bad_cases(void **state)
{
    static const char template[] = HEAD TAIL;
    assert_int_equal(status_of(fixture_dir(state), template, sizeof(template) - 1), 0);
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        int st = status_of(fixture_dir(state), c->bytes, c->len);
        if (st != EBADMSG)
            fail_msg("case \"%s\": status %d, want EBADMSG", c->name, st);
    }
}

/* recipients_status - read a file with n recipient records */
static int recipients_status(const char *dir, size_t n)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_addstr(&b, HEAD);
    for (size_t i = 0; i < n; i++)
        sbuf_addstr(&b, "R1:a\n");
    sbuf_addstr(&b, TAIL);
    int st = status_of(dir, b.s, b.len);
    sbuf_free(&b);
    return st;
}

static void test_recipient_cap(void **state)
{
    assert_int_equal(recipients_status(fixture_dir(state), 100000), 0);
    assert_int_equal(recipients_status(fixture_dir(state), 100001), EBADMSG);
}

/* writer_file - a real file from the writer: hostile envelope, content over two records */
static unsigned char *writer_file(const char *dir, size_t *len)
{
    struct envelope env;
    static unsigned char content[70000];
    for (size_t i = 0; i < sizeof(content); i++)
        content[i] = (unsigned char)(i * 7 + 3);
    fill_env(&env, 3);
    env.rcpts[1].notify = DSN_NOTIFY_SUCCESS;
    envelope_set(&env.rcpts[2].orcpt, "rfc822;x\r\n@y");
    envelope_set(&env.helo, "he\nlo");
    envelope_set(&env.message_id, "<m@x>");
    env.body = BODY_8BITMIME;
    assert_true(commit_msg(dir, &env, content, sizeof(content), 0));
    unsigned char *p = get_file(dir, "input", env.id, len);
    spool_remove(dir, env.id);
    /* rename its id to ours (same length), so that the file fits the name ID */
    unsigned char *at = memmem(p, *len, env.id, MSGID_LEN);
    assert_non_null(at);
    memcpy(at, ID, MSGID_LEN);
    envelope_free(&env);
    return p;
}

static void test_truncated_everywhere(void **state)
{
    size_t len;
    unsigned char *p = writer_file(fixture_dir(state), &len);
    assert_int_equal(status_of(fixture_dir(state), p, len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* inside the 64 KiB record only every 997th offset; everywhere else, every one */
        if (cut > 600 && cut < len - 700 && cut % 997)
            continue;
        int st = status_of(fixture_dir(state), p, cut);
        if (st != EBADMSG)
            fail_msg("truncated at %zu of %zu: status %d", cut, len, st);
    }
    free(p);
}

/* Damage one byte at a time: either rejected or read cleanly, and the reader never loops. */
static void test_damaged_everywhere(void **state)
{
    static const unsigned char subst[] = { 0x00, '\n', ':', '9', '0', 'X', 'D', 0xff };
    const char *dir = fixture_dir(state);
    size_t len, clean = 0;
    unsigned char *p = writer_file(dir, &len);
    for (size_t at = 0; at < len; at++) {
        if (at > 600 && at < len - 700 && at % 991)
            continue;
        unsigned char keep = p[at];
        for (size_t s = 0; s < sizeof(subst); s++) {
            p[at] = subst[s];
            int st = status_of(dir, p, len);
            if (st != 0 && st != EBADMSG)
                fail_msg("byte %zu set to %#x: status %d", at, subst[s], st);
            clean += st == 0;
        }
        p[at] = keep;
    }
    assert_true(clean > 0); /* damage inside the content is not detectable, and is read */
    free(p);
}

static void test_missing_and_invalid_ids(void **state)
{
    struct envelope env;
    assert_int_equal(spool_read_envelope(fixture_dir(state), ID, &env), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(spool_open_content(fixture_dir(state), ID));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_read_envelope(fixture_dir(state), "../input/" ID, &env), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(spool_open_content(fixture_dir(state), "../../etc/passwd"));
    assert_int_equal(errno, EINVAL);
}

/* A symlink in input/ is not followed. */
static void test_symlink_refused(void **state)
{
    char path[4096];
    struct envelope env;
    str_fmt(path, sizeof(path), "%s/input/%s", fixture_dir(state), ID);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_int_equal(spool_read_envelope(fixture_dir(state), ID, &env), -1);
    assert_int_equal(errno, ELOOP);
}

#define T(f) cmocka_unit_test_setup_teardown(f, spool_fixture_setup, spool_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good_crafted_file),
        T(test_added_headers_read_first),
        T(test_bad_cases),
        T(test_recipient_cap),
        T(test_truncated_everywhere),
        T(test_damaged_everywhere),
        T(test_missing_and_invalid_ids),
        T(test_symlink_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
