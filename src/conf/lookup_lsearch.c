/* lookup_lsearch.c - Exim's lsearch format, read once into a hash table instead of searched
 * line by line.  The rules are Exim's: a line that is empty, starts with '#' or starts with
 * white space is not a key line; a key ends at ':' or white space, or is "quoted" with
 * backslash escapes; after the key come optional blanks, an optional ':' and the value; lines
 * that start with white space continue the value (joined by one space; empty and '#' lines in
 * between are skipped); trailing white space is dropped; the first line with a key wins.
 * As with Exim's fgets(), a NUL byte ends the text of its line. */
#include "lookup_int.h"

#include <string.h>

#include "core/core.h"

/* A physical line: [s, e), trailing white space already dropped. */
struct line {
    const char *s, *e;
};

/* is_space - isspace() in the C locale */
static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* next_line - the physical line at *pos (its text ends at '\n' or a NUL), trimmed at the end */
static bool next_line(const char *text, size_t len, size_t *pos, struct line *ln)
{
    if (*pos >= len)
        return false;
    const char *s = text + *pos, *end = text + len;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *stop = nl ? nl : end;
    const char *nul = memchr(s, '\0', (size_t)(stop - s));
    const char *e = nul ? nul : stop;
    while (e > s && is_space(e[-1]))
        e--;
    *pos = (size_t)((nl ? nl + 1 : end) - text);
    ln->s = s;
    ln->e = e;
    return true;
}

/* hex_value - a hex digit's value, or -1 */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* escape - Exim's backslash escapes: up to 3 octal digits, \xHH, \b \f \n \r \t \v, any other
 * character stands for itself; a backslash at the end of the line is itself.  *p is at the
 * backslash and is left on the last character used. */
static char escape(const char **p, const char *e)
{
    const char *s = *p;
    if (s + 1 >= e)
        return '\\';
    char c = *++s;
    int v;
    if (c >= '0' && c <= '7') {
        v = c - '0';
        for (int i = 0; i < 2 && s + 1 < e && s[1] >= '0' && s[1] <= '7'; i++)
            v = v * 8 + (*++s - '0');
        c = (char)v;
    } else if (c == 'x') {
        v = 0;
        for (int i = 0; i < 2 && s + 1 < e && hex_value(s[1]) >= 0; i++)
            v = v * 16 + hex_value(*++s);
        c = (char)v;
    } else {
        static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
        const char *f = memchr(from, c, 6);
        if (f != NULL)
            c = to[f - from];
    }
    *p = s;
    return c;
}

/* read_key - the key at the start of ln into key; returns where the key ends in the line */
static const char *read_key(const struct line *ln, struct sbuf *key)
{
    const char *s = ln->s;
    sbuf_reset(key);
    if (*s != '"') {
        while (s < ln->e && *s != ':' && !is_space(*s))
            s++;
        sbuf_add(key, ln->s, (size_t)(s - ln->s));
        return s;
    }
    for (s++; s < ln->e && *s != '"'; s++)
        sbuf_addch(key, *s == '\\' ? escape(&s, ln->e) : *s);
    return s < ln->e ? s + 1 : s;
}

/* value_start - skip the blanks after the key and one optional ':' with its blanks */
static const char *value_start(const char *s, const char *e)
{
    while (s < e && is_space(*s))
        s++;
    if (s < e && *s == ':')
        for (s++; s < e && is_space(*s); s++)
            ;
    return s;
}

/* read_continuations - append the lines that continue a value; *pos ends at the next key line */
static void read_continuations(const char *text, size_t len, size_t *pos, struct sbuf *val)
{
    struct line ln;
    size_t at = *pos;
    while (next_line(text, len, &at, &ln)) {
        if (ln.s == ln.e || ln.s[0] == '#') {
            *pos = at;
            continue;
        }
        if (!is_space(ln.s[0]))
            return; /* a key line: left for the caller */
        const char *s = ln.s;
        while (s < ln.e && is_space(*s))
            s++;
        sbuf_addch(val, ' ');
        sbuf_add(val, s, (size_t)(ln.e - s));
        *pos = at;
    }
}

bool lsearch_parse(const char *text, size_t len, struct lookup_table *t, char *err, size_t errsz)
{
    struct sbuf key, val;
    struct line ln;
    size_t pos = 0;
    bool ok = true;
    sbuf_init(&key);
    sbuf_init(&val);
    while (ok && next_line(text, len, &pos, &ln)) {
        if (ln.s == ln.e || ln.s[0] == '#' || is_space(ln.s[0]))
            continue;
        const char *s = value_start(read_key(&ln, &key), ln.e);
        sbuf_reset(&val);
        sbuf_add(&val, s, (size_t)(ln.e - s));
        read_continuations(text, len, &pos, &val);
        if (memchr(key.s ? key.s : "", '\0', key.len) != NULL)
            continue; /* an escaped NUL: no lookup key can ever equal it */
        ok = table_add(t, key.s ? key.s : "", key.len, val.s ? val.s : "", val.len);
    }
    sbuf_free(&key);
    sbuf_free(&val);
    if (!ok)
        str_fmt(err, errsz, "too large for an lsearch table (use cdb)");
    return ok;
}
