/* util.h - allocation that aborts on failure, bounded strings, growable buffers, panics. */
#ifndef TANDEM_UTIL_H
#define TANDEM_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TANDEM_VERSION "0.1.0"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

/* Allocation: failure is a broken environment we cannot serve in; abort loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

/* Panics (defined in log.c): log to the panic log and exit; the parent restarts workers.
 * fatal() appends strerror(errno). */
NORETURN void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Bounded strings.  str_copy has strlcpy semantics (returns strlen(src)); str_fmt returns
 * false when the output was truncated (the buffer still holds a terminated prefix). */
size_t str_copy(char *dst, const char *src, size_t size);
bool str_fmt(char *dst, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
bool str_vfmt(char *dst, size_t size, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);
bool str_ieq(const char *a, const char *b);
bool str_iprefix(const char *s, const char *prefix);
void str_lower(char *s);

/* Replace anything that is not printable ASCII (or is a backslash or double quote) with a
 * \xNN escape, so peer-supplied text is safe to log or echo.  Output is always terminated;
 * returns the number of input bytes consumed (less than inlen when out was too small). */
size_t str_sanitize(char *out, size_t outsz, const char *in, size_t inlen);

/* As str_sanitize, but valid UTF-8 sequences are kept as they are (SMTPUTF8 addresses),
 * except those that could break or disguise a log line: C1 controls (U+0080-U+009F),
 * U+2028, U+2029 and the bidirectional controls are escaped byte by byte. */
size_t str_sanitize_utf8(char *out, size_t outsz, const char *in, size_t inlen);

/* Growable byte buffer, always NUL-terminated for convenience (len excludes the NUL). */
struct sbuf {
    char *s;
    size_t len, cap;
};
void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
void sbuf_add(struct sbuf *b, const void *p, size_t n);
void sbuf_addstr(struct sbuf *b, const char *s);
void sbuf_addch(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
char *sbuf_steal(struct sbuf *b);

/* Parse a size ("50M", "4096", K/M/G = 1024 powers) or a time ("1h30m", s/m/h/d/w; a bare
 * number is seconds).  Return false on syntax error or overflow. */
bool parse_size(const char *s, uint64_t *out);
bool parse_time(const char *s, unsigned *out_seconds);

/* Format an age or time span compactly ("45s", "5m", "2h", "3d"), and a size ("812", "4.2K", "1.1M"). */
void fmt_age(char *buf, size_t sz, long seconds);
void fmt_size(char *buf, size_t sz, uint64_t bytes);

/* Seconds and microseconds since the epoch, and a monotonic clock in milliseconds. */
double now_real(void);
uint64_t now_mono_ms(void);

/* Set O_NONBLOCK / FD_CLOEXEC; return -1 on error. */
int fd_nonblock(int fd);
int fd_cloexec(int fd);

#endif
