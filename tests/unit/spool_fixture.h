/* spool_fixture.h - helpers shared by the spool unit tests: a temporary spool directory,
 * writing and reading whole messages, and putting arbitrary bytes into spool files. */
#ifndef TANDEM_TEST_SPOOL_FIXTURE_H
#define TANDEM_TEST_SPOOL_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp/smtp.h"
#include "store/store.h"
#include "core/core.h"

struct spool_fixture {
    char dir[64];
};

static inline int spool_fixture_setup(void **state)
{
    struct spool_fixture *f = calloc(1, sizeof(*f));
    char err[256];
    str_copy(f->dir, "/tmp/tandem-spool-test-XXXXXX", sizeof(f->dir));
    if (mkdtemp(f->dir) == NULL || !spool_init_dirs(f->dir, err, sizeof(err)))
        return -1;
    *state = f;
    return 0;
}

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int spool_fixture_teardown(void **state)
{
    struct spool_fixture *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static inline const char *fixture_dir(void **state)
{
    return ((struct spool_fixture *)*state)->dir;
}

/* A small ordinary envelope with n recipients. */
static inline void fill_env(struct envelope *env, size_t n)
{
    char addr[64];
    envelope_init(env);
    env->arrival = 1700000000;
    envelope_set(&env->sender, "sender@example.org");
    for (size_t i = 0; i < n; i++) {
        str_fmt(addr, sizeof(addr), "rcpt%zu@example.net", i);
        envelope_add_rcpt(env, addr, 0, NULL);
    }
}

/* Write content in chunks of chunk bytes (0: all at once) and commit; returns success. */
static inline bool commit_msg(const char *dir, struct envelope *env, const void *content,
                              size_t len, size_t chunk)
{
    struct spool_writer *w = spool_create(dir, env);
    if (w == NULL)
        return false;
    const unsigned char *p = content;
    for (size_t off = 0; off < len;) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        if (!spool_write(w, p + off, n)) {
            spool_abort(w);
            return false;
        }
        off += n;
    }
    assert_int_equal(spool_written(w), len);
    env->size = len;
    return spool_commit(w, env, false);
}

/* The whole content of a committed message, read bufsz bytes at a time (caller frees). */
static inline unsigned char *read_all(const char *dir, const char *id, size_t *len, size_t bufsz)
{
    struct spool_reader *r = spool_open_content(dir, id);
    if (r == NULL)
        return NULL;
    struct sbuf b;
    unsigned char *buf = malloc(bufsz);
    long n;
    sbuf_init(&b);
    while ((n = spool_read_content(r, buf, bufsz)) > 0)
        sbuf_add(&b, buf, (size_t)n);
    free(buf);
    spool_close_content(r);
    assert_int_equal(n, 0);
    *len = b.len;
    return (unsigned char *)sbuf_steal(&b);
}

/* Number of entries (other than . and ..) in <dir>/<sub>. */
static inline size_t count_files(const char *dir, const char *sub)
{
    char path[4096];
    size_t n = 0;
    str_fmt(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Create or replace <dir>/<sub>/<name> with exactly these bytes. */
static inline void put_file(const char *dir, const char *sub, const char *name, const void *p,
                            size_t len)
{
    char path[4096];
    str_fmt(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* The bytes of <dir>/<sub>/<name> (caller frees); NULL if unreadable. */
static inline unsigned char *get_file(const char *dir, const char *sub, const char *name,
                                      size_t *len)
{
    char path[4096];
    str_fmt(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    struct sbuf b;
    char buf[65536];
    size_t n;
    sbuf_init(&b);
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        sbuf_add(&b, buf, n);
    fclose(fp);
    *len = b.len;
    return (unsigned char *)sbuf_steal(&b);
}

/* Does <dir>/<sub>/<name> exist? */
static inline bool file_exists(const char *dir, const char *sub, const char *name)
{
    char path[4096];
    struct stat st;
    str_fmt(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    return lstat(path, &st) == 0;
}

#endif
