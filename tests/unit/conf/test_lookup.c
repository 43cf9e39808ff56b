/* test_lookup.c - lookups in lists: Exim's lsearch rules, the hash table, the cdb reader (with
 * corrupt files), the handle's reload and defer, list items of every kind, check-config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "conf/lookup_int.h"
#include "conf_testutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    str_copy(dir, "/tmp/tandem-lookup-XXXXXX", sizeof(dir));
    if (mkdtemp(dir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    str_fmt(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* path_of - a file name in the test directory (static buffer, one per slot) */
static const char *path_of(const char *name)
{
    static char bufs[4][128];
    static int next;
    char *b = bufs[next++ % 4];
    str_fmt(b, 128, "%s/%s", dir, name);
    return b;
}

/* put - write bytes to a file, atomically (write then rename, as an editor or cdb -c does) */
static void put(const char *name, const void *data, size_t len)
{
    char tmp[160];
    str_fmt(tmp, sizeof(tmp), "%s.tmp", path_of(name));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    assert_int_equal(rename(tmp, path_of(name)), 0);
}

static void put_text(const char *name, const char *text)
{
    put(name, text, strlen(text));
}

/* ---- lsearch rules */

/* parsed - the table of an lsearch text */
static struct lookup_table parsed(const char *text, size_t len)
{
    struct lookup_table t;
    char err[128];
    table_init(&t);
    assert_true(lsearch_parse(text, len, &t, err, sizeof(err)));
    table_build(&t);
    return t;
}

/* value_of - the value of key (lower case) in text, or NULL */
static char *value_of(const char *text, const char *key)
{
    struct lookup_table t = parsed(text, strlen(text));
    const char *v = table_find(&t, key, strlen(key));
    char *copy = v ? xstrdup(v) : NULL;
    table_free(&t);
    return copy;
}

static void want_value(const char *text, const char *key, const char *want)
{
    char *got = value_of(text, key);
    if (want == NULL && got != NULL)
        fail_msg("key \"%s\" found (\"%s\"), want none", key, got);
    if (want != NULL && got == NULL)
        fail_msg("key \"%s\" not found, want \"%s\"", key, want);
    if (want != NULL)
        assert_string_equal(got, want);
    free(got);
}

static void test_lsearch_keys(void **state)
{
    (void)state;
    const char *f = "# comment\n"
                    "\n"
                    "plain\n"
                    "Mixed@Case.Example: yes\n"
                    "spaced   value here  \n"
                    "colon:value\n"
                    "gap  :  after gap\n"
                    "  indented-not-a-key\n"
                    "dup: first\n"
                    "dup: second\n"
                    "crlf: v\r\n"
                    "tab\tafter tab\n"
                    "last-no-newline";
    want_value(f, "plain", "");
    want_value(f, "mixed@case.example", "yes");
    want_value(f, "spaced", "value here");
    want_value(f, "colon", "value");
    want_value(f, "gap", "after gap indented-not-a-key");  /* an indented line continues */
    want_value(f, "indented-not-a-key", NULL);
    want_value(f, "dup", "first");         /* the first line wins, as a linear search */
    want_value(f, "crlf", "v");
    want_value(f, "tab", "after tab");
    want_value(f, "last-no-newline", "");
    want_value(f, "# comment", NULL);
    want_value(f, "#", NULL);
    want_value(f, "", NULL);
    want_value(f, "missing", NULL);
}

static void test_lsearch_continuations(void **state)
{
    (void)state;
    const char *f = "alias: one,\n"
                    "   two,\n"
                    "# a comment inside the value is skipped\n"
                    "\n"
                    "\tthree\n"
                    "next: x\n"
                    "empty:\n"
                    "  later\n";
    want_value(f, "alias", "one, two, three");
    want_value(f, "next", "x");
    want_value(f, "empty", " later");       /* Exim joins with one space even here */
    want_value(f, "two,", NULL);
}

static void test_lsearch_quoted(void **state)
{
    (void)state;
    const char *f = "\"with space\": a\n"
                    "\"a:b\"  b\n"
                    "\"esc\\\"q\\x41\\101\\t\": c\n"
                    "\"unterminated key\n"
                    "\"2001:db8::1\": v6\n"
                    "\"trail\\\": d\n"
                    "\"nul\\0x\": e\n";
    want_value(f, "with space", "a");
    want_value(f, "a:b", "b");
    want_value(f, "esc\"qaa\t", "c");      /* keys are lower-cased: \x41 and \101 are 'A' */
    want_value(f, "unterminated key", "");
    want_value(f, "2001:db8::1", "v6");
    want_value(f, "trail\": d", "");       /* \" does not end the key */
    want_value(f, "nul", NULL);            /* a key with a NUL can never be looked up */
}

static void test_lsearch_nul_ends_line(void **state)
{
    (void)state;
    const char text[] = "ab\0cd: x\nef: y\n";
    struct lookup_table t = parsed(text, sizeof(text) - 1);
    assert_non_null(table_find(&t, "ab", 2));
    assert_null(table_find(&t, "cd", 2));
    assert_string_equal(table_find(&t, "ef", 2), "y");
    table_free(&t);
}

/* ---- the hash table at scale */

static void test_table_many(void **state)
{
    (void)state;
    struct lookup_table t;
    char key[64];
    table_init(&t);
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof(key), "User%d@Example%d.Test", i, i % 97);
        assert_true(table_add(&t, key, (size_t)n, "", 0));
    }
    table_build(&t);
    assert_int_equal(t.nkeys, 200000);
    assert_true(t.mask + 1 >= 200000 * 4 / 3);
    for (int i = 0; i < 200000; i += 7) {
        int n = snprintf(key, sizeof(key), "user%d@example%d.test", i, i % 97);
        assert_non_null(table_find(&t, key, (size_t)n));
        n = snprintf(key, sizeof(key), "user%d@example%d.test", i, (i + 1) % 97);
        assert_null(table_find(&t, key, (size_t)n));
    }
    table_free(&t);
}

static void test_table_empty(void **state)
{
    (void)state;
    struct lookup_table t = parsed("", 0);
    assert_int_equal(t.nkeys, 0);
    assert_null(table_find(&t, "x", 1));
    table_free(&t);
}

/* ---- cdb */

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static bool u32_zero(const uint8_t *p)
{
    return p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0;
}

static uint32_t djb(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = ((h << 5) + h) ^ (unsigned char)*s;
    return h;
}

/* cdb_build - the image cdb -c writes for these pairs (tables twice the size of their keys) */
static uint8_t *cdb_build(const char *const *kv, size_t n, size_t *len)
{
    size_t size = CDB_HEADER_SIZE, counts[256] = { 0 };
    for (size_t i = 0; i < n; i++) {
        size += 8 + strlen(kv[2 * i]) + strlen(kv[2 * i + 1]) + 16;
        counts[djb(kv[2 * i]) & 255]++;
    }
    uint8_t *b = xcalloc(1, size);
    uint32_t *rpos = xcalloc(n ? n : 1, sizeof(uint32_t));
    size_t pos = CDB_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(kv[2 * i]), vl = strlen(kv[2 * i + 1]);
        rpos[i] = (uint32_t)pos;
        le32(b + pos, (uint32_t)kl);
        le32(b + pos + 4, (uint32_t)vl);
        memcpy(b + pos + 8, kv[2 * i], kl);
        memcpy(b + pos + 8 + kl, kv[2 * i + 1], vl);
        pos += 8 + kl + vl;
    }
    for (unsigned t = 0; t < 256; t++) {
        uint32_t slots = (uint32_t)(counts[t] * 2);
        le32(b + 8 * t, (uint32_t)pos);
        le32(b + 8 * t + 4, slots);
        for (size_t i = 0; i < n; i++) {
            uint32_t h = djb(kv[2 * i]);
            if ((h & 255) != t)
                continue;
            for (uint32_t s = (h >> 8) % slots;; s = (s + 1) % slots)
                if (u32_zero(b + pos + 8 * s + 4)) {
                    le32(b + pos + 8 * s, h);
                    le32(b + pos + 8 * s + 4, rpos[i]);
                    break;
                }
        }
        pos += 8 * (size_t)slots;
    }
    free(rpos);
    *len = pos;
    return b;
}

static const char *const sample[] = { "a@example.test", "1", "example.test", "",
                                      "*@domain.test", "x", "b@example.test", "two" };

static void test_cdb_reader(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = cdb_build(sample, 4, &len);
    const uint8_t *v;
    uint32_t vl;
    assert_true(cdb_header_ok(b, len));
    assert_int_equal(cdb_get(b, len, "b@example.test", 14, &v, &vl), 1);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "two", 3);
    assert_int_equal(cdb_get(b, len, "example.test", 12, &v, &vl), 1);
    assert_int_equal(vl, 0);
    assert_int_equal(cdb_get(b, len, "c@example.test", 14, &v, &vl), 0);
    assert_int_equal(cdb_get(b, len, "", 0, &v, &vl), 0);
    free(b);
}

static void test_cdb_corrupt(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = cdb_build(sample, 4, &len);
    const uint8_t *v;
    uint32_t vl;
    assert_false(cdb_header_ok(b, CDB_HEADER_SIZE - 1));
    assert_int_equal(cdb_get(b, CDB_HEADER_SIZE - 1, "a", 1, &v, &vl), -1);
    /* cut off the hash tables: the header now points past the end */
    assert_false(cdb_header_ok(b, len - 8));
    uint32_t h = djb("a@example.test");
    /* a record length that runs past the end */
    uint8_t *c = xmemdup(b, len);
    le32(c + CDB_HEADER_SIZE, 0xffffff00u);
    assert_true(cdb_header_ok(c, len));
    assert_int_equal(cdb_get(c, len, "a@example.test", 14, &v, &vl), -1);
    /* a slot pointing into the header or past the end */
    memcpy(c, b, len);
    uint32_t tpos = b[8 * (h & 255)] | b[8 * (h & 255) + 1] << 8 | b[8 * (h & 255) + 2] << 16 |
                    (uint32_t)b[8 * (h & 255) + 3] << 24;
    uint32_t slots = b[8 * (h & 255) + 4];
    for (uint32_t s = 0; s < slots; s++)
        if (!u32_zero(c + tpos + 8 * s + 4))
            le32(c + tpos + 8 * s + 4, (uint32_t)len - 4);
    assert_int_equal(cdb_get(c, len, "a@example.test", 14, &v, &vl), -1);
    for (uint32_t s = 0; s < slots; s++)
        if (!u32_zero(c + tpos + 8 * s + 4))
            le32(c + tpos + 8 * s + 4, 100);
    assert_int_equal(cdb_get(c, len, "a@example.test", 14, &v, &vl), -1);
    /* a full table with no empty slot: bounded, not found */
    memcpy(c, b, len);
    for (uint32_t s = 0; s < slots; s++) {
        le32(c + tpos + 8 * s, 1);
        le32(c + tpos + 8 * s + 4, CDB_HEADER_SIZE);
    }
    assert_int_equal(cdb_get(c, len, "a@example.test", 14, &v, &vl), 0);
    free(c);
    free(b);
}

/* ---- the handle: load, change, missing file */

/* wait_next_check - the handle stats its file at most once a second */
static void wait_next_check(void)
{
    struct timespec ts = { 1, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

static enum lookup_status find(struct lookup *lk, const char *key)
{
    return lookup_find(lk, key, strlen(key));
}

static void test_handle_reload_and_defer(void **state)
{
    (void)state;
    struct lookup *lk = lookup_get(NULL, LOOKUP_LSEARCH, path_of("rcpts"), 3);
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_DEFER);          /* no file yet */
    assert_non_null(strstr(lookup_error(lk), "cannot open: No such file"));
    assert_non_null(strstr(lookup_error(lk), "lsearch;"));
    put_text("rcpts", "a@x.test\n");
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_DEFER);          /* not looked at again yet */
    wait_next_check();
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_FOUND);
    assert_int_equal(find(lk, "b@x.test"), LOOKUP_NOT_FOUND);
    put_text("rcpts", "a@x.test\nb@x.test\n");                     /* edited while in use */
    wait_next_check();
    assert_int_equal(find(lk, "b@x.test"), LOOKUP_FOUND);
    assert_int_equal(unlink(path_of("rcpts")), 0);
    wait_next_check();
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_DEFER);          /* never the stale table */
    assert_int_equal(mkdir(path_of("rcpts"), 0755), 0);
    wait_next_check();
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_DEFER);
    assert_non_null(strstr(lookup_error(lk), "not a regular file"));
    assert_int_equal(rmdir(path_of("rcpts")), 0);
    lookup_free(lk);
}

/* rewrite_in_place - truncate and write, keeping the inode (an editor without a rename) */
static void rewrite_in_place(const char *name, const char *text)
{
    int fd = open(path_of(name), O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_handle_in_place_edit(void **state)
{
    (void)state;
    put_text("inplace", "a@x.test\n");
    struct lookup *lk = lookup_get(NULL, LOOKUP_LSEARCH, path_of("inplace"), 1);
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_FOUND);
    wait_next_check();
    rewrite_in_place("inplace", "b@x.test\n");
    /* checked now, but written less than a second ago: the copy in hand still answers */
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_FOUND);
    assert_int_equal(find(lk, "b@x.test"), LOOKUP_NOT_FOUND);
    wait_next_check();
    assert_int_equal(find(lk, "b@x.test"), LOOKUP_FOUND);
    assert_int_equal(find(lk, "a@x.test"), LOOKUP_NOT_FOUND);
    lookup_free(lk);
}

static void test_handle_cdb(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = cdb_build(sample, 4, &len);
    put("db.cdb", b, len);
    struct lookup *lk = lookup_get(NULL, LOOKUP_CDB, path_of("db.cdb"), 1);
    assert_int_equal(find(lk, "a@example.test"), LOOKUP_FOUND);
    assert_int_equal(find(lk, "z@example.test"), LOOKUP_NOT_FOUND);
    put("db.cdb", b, CDB_HEADER_SIZE - 1);                            /* replaced by junk */
    wait_next_check();
    assert_int_equal(find(lk, "a@example.test"), LOOKUP_DEFER);
    assert_non_null(strstr(lookup_error(lk), "not a cdb file"));
    uint8_t *c = xmemdup(b, len);
    le32(c + CDB_HEADER_SIZE, 0xffffff00u);                           /* a corrupt record */
    put("db.cdb", c, len);
    wait_next_check();
    assert_int_equal(find(lk, "b@example.test"), LOOKUP_FOUND);       /* other records fine */
    assert_int_equal(find(lk, "a@example.test"), LOOKUP_DEFER);
    assert_non_null(strstr(lookup_error(lk), "corrupt"));
    assert_int_equal(find(lk, "b@example.test"), LOOKUP_DEFER);       /* until it changes */
    lookup_free(lk);
    free(c);
    free(b);
}

static void test_set_shares(void **state)
{
    (void)state;
    struct lookup_set *set = lookup_set_new();
    struct lookup *a = lookup_get(set, LOOKUP_LSEARCH, "/x/a", 1);
    assert_ptr_equal(lookup_get(set, LOOKUP_LSEARCH, "/x/a", 9), a);
    assert_ptr_not_equal(lookup_get(set, LOOKUP_CDB, "/x/a", 9), a);
    assert_ptr_not_equal(lookup_get(set, LOOKUP_LSEARCH, "/x/b", 9), a);
    lookup_set_free(set);
}

/* ---- list items */

static struct list list_of(enum list_kind kind, const char *text)
{
    struct list l;
    char err[256];
    if (!list_parse(&l, kind, text, NULL, 0, err, sizeof(err)))
        fail_msg("\"%s\": %s", text, err);
    return l;
}

static const char *parse_error(enum list_kind kind, const char *text)
{
    static char err[256];
    struct list l;
    if (list_parse(&l, kind, text, NULL, 0, err, sizeof(err)))
        fail_msg("\"%s\" parsed", text);
    return err;
}

static void test_list_kinds(void **state)
{
    (void)state;
    char text[256];
    put_text("rcpts", "Known@Example.test\n*@wild.test\nexample.org\npostmaster\n"
                      "client.example.net\n192.0.2.7\n\"2001:db8::5\"\n198.51.100.0/24\n"
                      "2001.0db8.0000.0000.0000.0000.0000.0000/32\n");
    str_fmt(text, sizeof(text), "lsearch;%s", path_of("rcpts"));
    struct list l = list_of(LIST_ADDRESS, text);
    assert_int_equal(list_check_address(&l, "known@example.test", NULL), LIST_MATCH);
    assert_int_equal(list_check_address(&l, "KNOWN@EXAMPLE.TEST", NULL), LIST_MATCH);
    assert_int_equal(list_check_address(&l, "other@example.test", NULL), LIST_NO_MATCH);
    assert_int_equal(list_check_address(&l, "anyone@wild.test", NULL), LIST_MATCH);
    assert_int_equal(list_check_address(&l, "anyone@sub.wild.test", NULL), LIST_NO_MATCH);
    assert_int_equal(list_check_address(&l, "", NULL), LIST_NO_MATCH);   /* null sender */
    list_free(&l);
    l = list_of(LIST_DOMAIN, text);
    assert_int_equal(list_check_domain(&l, "Example.ORG", NULL), LIST_MATCH);
    assert_int_equal(list_check_domain(&l, "www.example.org", NULL), LIST_NO_MATCH);
    list_free(&l);
    l = list_of(LIST_LOCAL_PART, text);
    assert_int_equal(list_check_local_part(&l, "PostMaster", NULL), LIST_MATCH);
    assert_int_equal(list_check_local_part(&l, "root", NULL), LIST_NO_MATCH);
    list_free(&l);
    l = list_of(LIST_HOST, text);                          /* by verified host name */
    assert_int_equal(list_check_host(&l, "192.0.2.7", "Client.Example.Net.", NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "192.0.2.7", NULL, NULL), LIST_NO_MATCH);
    assert_true(list_has_host_names(&l));
    list_free(&l);
    str_fmt(text, sizeof(text), "net-lsearch;%s", path_of("rcpts"));
    l = list_of(LIST_HOST, text);                          /* by address */
    assert_false(list_has_host_names(&l));
    assert_int_equal(list_check_host(&l, "192.0.2.7", NULL, NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "::ffff:192.0.2.7", NULL, NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "2001:db8:0::5", NULL, NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "192.0.2.8", NULL, NULL), LIST_NO_MATCH);
    assert_int_equal(list_check_host(&l, NULL, NULL, NULL), LIST_NO_MATCH);
    list_free(&l);
    str_fmt(text, sizeof(text), "net24-lsearch;%s : net32-lsearch;%s", path_of("rcpts"),
            path_of("rcpts"));
    l = list_of(LIST_HOST, text);                          /* by network */
    assert_int_equal(list_check_host(&l, "198.51.100.99", NULL, NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "2001:db8:ffff::1", NULL, NULL), LIST_MATCH);
    assert_int_equal(list_check_host(&l, "198.51.101.1", NULL, NULL), LIST_NO_MATCH);
    list_free(&l);
}

static void test_list_defer(void **state)
{
    (void)state;
    char text[512];
    const char *why = NULL;
    put_text("ok", "a@x.test\n");
    str_fmt(text, sizeof(text), "lsearch;%s : lsearch;%s", path_of("ok"), path_of("missing"));
    struct list l = list_of(LIST_ADDRESS, text);
    assert_int_equal(list_check_address(&l, "a@x.test", &why), LIST_MATCH); /* decided first */
    assert_int_equal(list_check_address(&l, "b@x.test", &why), LIST_DEFER);
    assert_non_null(strstr(why, path_of("missing")));
    list_free(&l);
    /* negated: a deferral is never "not in the list" */
    str_fmt(text, sizeof(text), "!cdb;%s", path_of("missing.cdb"));
    l = list_of(LIST_DOMAIN, text);
    assert_int_equal(list_check_domain(&l, "x.test", NULL), LIST_DEFER);
    list_free(&l);
    str_fmt(text, sizeof(text), "net-lsearch;%s", path_of("missing"));
    l = list_of(LIST_HOST, text);
    assert_int_equal(list_check_host(&l, "192.0.2.1", NULL, NULL), LIST_DEFER);
    assert_int_equal(list_check_host(&l, NULL, NULL, NULL), LIST_NO_MATCH); /* no key at all */
    list_free(&l);
}

static void test_list_errors(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_error(LIST_DOMAIN, "dbm;/etc/x"), "unknown lookup type \"dbm\""));
    assert_non_null(strstr(parse_error(LIST_DOMAIN, "partial-lsearch;/etc/x"), "unknown lookup"));
    assert_non_null(strstr(parse_error(LIST_ADDRESS, "lsearch*@;/etc/x"), "unknown lookup"));
    assert_non_null(strstr(parse_error(LIST_DOMAIN, "net-lsearch;/etc/x"), "unknown lookup"));
    assert_non_null(strstr(parse_error(LIST_HOST, "net129-lsearch;/etc/x"), "unknown lookup"));
    assert_non_null(strstr(parse_error(LIST_HOST, "netx-cdb;/etc/x"), "unknown lookup"));
    assert_non_null(strstr(parse_error(LIST_DOMAIN, "lsearch;etc/x"), "absolute path"));
    assert_non_null(strstr(parse_error(LIST_DOMAIN, "lsearch;"), "absolute path"));
    assert_non_null(strstr(parse_error(LIST_ADDRESS, "*@lsearch;/etc/x"), "unknown lookup"));
    struct list l = list_of(LIST_DOMAIN, "lsearch; /etc/with space : cdb;/a::b.cdb");
    assert_int_equal(l.n, 2);
    assert_int_equal(l.items[0].type, ITEM_LOOKUP);
    list_free(&l);
}

/* ---- in a configuration */

static void test_conf_lookups(void **state)
{
    (void)state;
    char text[1024];
    struct sbuf errs, warn;
    put_text("doms", "lookup.test\n");
    str_fmt(text, sizeof(text),
            "domainlist ok = lsearch;%s\n"
            "domainlist gone = lsearch;%s\n"
            "begin routes\n"
            "+ok     [127.0.0.2]\n"
            "+gone   [127.0.0.3]\n"
            "*       mx\n",
            path_of("doms"), path_of("gone"));
    struct conf *c = tu_load(text, &errs);
    if (c == NULL)
        fail_msg("%s", errs.s);
    sbuf_free(&errs);
    const struct route *r;
    assert_int_equal(conf_route_find(c, "lookup.test", &r, NULL), LIST_MATCH);
    assert_string_equal(r->pattern, "+ok");
    assert_int_equal(conf_route_find(c, "other.test", &r, NULL), LIST_DEFER);  /* not "*" */
    assert_null(r);
    sbuf_init(&warn);
    conf_lookups_check(c, &warn);
    assert_non_null(strstr(warn.s, ":2: warning: lookup lsearch;"));
    assert_non_null(strstr(warn.s, "cannot open: No such file"));
    assert_null(strstr(warn.s, ":1:"));
    sbuf_free(&warn);
    conf_free(c);
}

static void test_conf_errors(void **state)
{
    (void)state;
    char *got = tu_errors("domainlist d = a.test : dbm;/etc/d\n"
                          "begin acl\n"
                          "rcpt:\n"
                          "  deny recipients = lsearch;relative/file\n");
    assert_non_null(got);
    assert_non_null(strstr(got, "F:1: "));
    assert_non_null(strstr(got, "unknown lookup type \"dbm\""));
    assert_non_null(strstr(got, "F:4: "));
    assert_non_null(strstr(got, "absolute path"));
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lsearch_keys),
        cmocka_unit_test(test_lsearch_continuations),
        cmocka_unit_test(test_lsearch_quoted),
        cmocka_unit_test(test_lsearch_nul_ends_line),
        cmocka_unit_test(test_table_many),
        cmocka_unit_test(test_table_empty),
        cmocka_unit_test(test_cdb_reader),
        cmocka_unit_test(test_cdb_corrupt),
        cmocka_unit_test(test_handle_reload_and_defer),
        cmocka_unit_test(test_handle_in_place_edit),
        cmocka_unit_test(test_handle_cdb),
        cmocka_unit_test(test_set_shares),
        cmocka_unit_test(test_list_kinds),
        cmocka_unit_test(test_list_defer),
        cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_conf_lookups),
        cmocka_unit_test(test_conf_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
