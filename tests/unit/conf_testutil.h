/* conf_testutil.h - helpers for the configuration, list and ACL unit tests: write a config
 * text to a temporary file and load it. */
#ifndef TANDEM_CONF_TESTUTIL_H
#define TANDEM_CONF_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"

/* Write text to a new temporary file; returns its path (static buffer). */
static inline const char *tu_write(const char *text)
{
    static char path[64];
    str_copy(path, "/tmp/tandem-test-XXXXXX", sizeof(path));
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        abort();
    close(fd);
    return path;
}

/* Load text as a configuration; errors (if any) go to *errs, which the caller frees. */
static inline struct conf *tu_load(const char *text, struct sbuf *errs)
{
    const char *path = tu_write(text);
    sbuf_init(errs);
    struct conf *c = conf_load(path, errs);
    unlink(path);
    return c;
}

/* The errors of loading text, with the temporary file name replaced by "F", as one string
 * ("F:3: message\n..."); the caller frees it.  Returns NULL if text loaded fine. */
static inline char *tu_errors(const char *text)
{
    struct sbuf errs, out;
    const char *path = tu_write(text);
    sbuf_init(&errs);
    sbuf_init(&out);
    struct conf *c = conf_load(path, &errs);
    unlink(path);
    if (c != NULL) {
        conf_free(c);
        sbuf_free(&errs);
        return NULL;
    }
    size_t plen = strlen(path);
    for (const char *s = errs.s; s && *s;) {
        if (strncmp(s, path, plen) == 0) {
            sbuf_addch(&out, 'F');
            s += plen;
        } else {
            sbuf_addch(&out, *s++);
        }
    }
    sbuf_free(&errs);
    return sbuf_steal(&out);
}

#endif
