/* spool_record.c - framing of message-file records: writing them into a buffer, and reading
 * them back from a file strictly (bounded lengths, exact terminators, no guessing). */
#include "spool_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REC_LEN_DIGITS 6 /* enough for REC_PAYLOAD_MAX */

/* rec_header - the "<type><len>:" prefix of a record */
size_t rec_header(char hdr[REC_HDR_MAX], char type, size_t len)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + len % 10);
        len /= 10;
    } while (len);
    size_t h = 0;
    hdr[h++] = type;
    while (n)
        hdr[h++] = digits[--n];
    hdr[h++] = ':';
    return h;
}

/* rec_put - append one framed record */
void rec_put(struct sbuf *b, char type, const void *p, size_t len)
{
    char hdr[REC_HDR_MAX];
    if (len > REC_PAYLOAD_MAX)
        fatalx("spool record '%c' of %zu bytes", type, len);
    sbuf_add(b, hdr, rec_header(hdr, type, len));
    sbuf_add(b, p, len);
    sbuf_addch(b, '\n');
}

/* rec_put_str - a record holding a C string */
void rec_put_str(struct sbuf *b, char type, const char *s)
{
    rec_put(b, type, s, strlen(s));
}

/* rec_put_num - a record holding a decimal number */
void rec_put_num(struct sbuf *b, char type, uint64_t v)
{
    char num[24];
    str_fmt(num, sizeof(num), "%llu", (unsigned long long)v);
    rec_put_str(b, type, num);
}

/* rec_in_init - a record reader over fd, which must be at offset 0 */
void rec_in_init(struct rec_in *in, int fd)
{
    in->fd = fd;
    in->off = 0;
    in->pos = in->len = 0;
    in->payload = xmalloc(REC_PAYLOAD_MAX + 1);
}

/* rec_in_free - release the payload buffer (the fd is the caller's) */
void rec_in_free(struct rec_in *in)
{
    free(in->payload);
    in->payload = NULL;
}

/* read_some - read(2) that retries on EINTR */
static ssize_t read_some(int fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* fill - make at least one byte available in buf; 1, 0 at end of file, -1 on error */
static int fill(struct rec_in *in)
{
    if (in->pos < in->len)
        return 1;
    ssize_t r = read_some(in->fd, in->buf, sizeof(in->buf));
    if (r < 0)
        return -1;
    in->pos = 0;
    in->len = (size_t)r;
    return r > 0;
}

/* bad - fail with EBADMSG: the file does not follow the format */
static int bad(void)
{
    errno = EBADMSG;
    return -1;
}

/* get_byte - next byte; 1, 0 at end of file, -1 on error */
static int get_byte(struct rec_in *in, unsigned char *c)
{
    int f = fill(in);
    if (f <= 0)
        return f;
    *c = in->buf[in->pos++];
    in->off++;
    return 1;
}

/* get_exact - exactly n bytes into dst; a premature end of file is EBADMSG */
static int get_exact(struct rec_in *in, unsigned char *dst, size_t n)
{
    size_t have = in->len - in->pos;
    size_t k = have < n ? have : n;
    memcpy(dst, in->buf + in->pos, k);
    in->pos += k;
    in->off += k;
    while (k < n) {
        ssize_t r = read_some(in->fd, dst + k, n - k);
        if (r < 0)
            return -1;
        if (r == 0)
            return bad();
        k += (size_t)r;
        in->off += (uint64_t)r;
    }
    return 0;
}

/* skip - pass over n bytes without reading them (an overrun shows at the next read) */
static int skip(struct rec_in *in, size_t n)
{
    size_t have = in->len - in->pos;
    if (n <= have) {
        in->pos += n;
        in->off += n;
        return 0;
    }
    return rec_in_seek(in, in->off + n);
}

/* rec_in_seek - drop the buffer and continue at file offset off */
int rec_in_seek(struct rec_in *in, uint64_t off)
{
    if (off > (uint64_t)INT64_MAX)
        return bad();
    if (lseek(in->fd, (off_t)off, SEEK_SET) < 0)
        return -1;
    in->pos = in->len = 0;
    in->off = off;
    return 0;
}

/* rec_in_magic - the file must start with REC_MAGIC */
int rec_in_magic(struct rec_in *in)
{
    unsigned char m[sizeof(REC_MAGIC) - 1];
    if (get_exact(in, m, sizeof(m)) < 0)
        return -1;
    return memcmp(m, REC_MAGIC, sizeof(m)) == 0 ? 0 : bad();
}

/* get_length - the decimal length up to ':'; strict: 1..6 digits, no leading zero */
static int get_length(struct rec_in *in, size_t *len)
{
    size_t v = 0;
    for (int ndig = 0;; ndig++) {
        unsigned char c;
        int g = get_byte(in, &c);
        if (g <= 0)
            return g < 0 ? -1 : bad();
        if (c == ':' && ndig > 0)
            break;
        if (c < '0' || c > '9' || ndig == REC_LEN_DIGITS || (ndig == 1 && v == 0))
            return bad();
        v = v * 10 + (size_t)(c - '0');
    }
    if (v > REC_PAYLOAD_MAX)
        return bad();
    *len = v;
    return 0;
}

/* rec_next - read one record strictly: type, length, payload, newline */
int rec_next(struct rec_in *in, struct rec *r, bool skip_data)
{
    unsigned char type, nl;
    r->off = in->off;
    int g = get_byte(in, &type);
    if (g <= 0)
        return g; /* a clean end of file falls between records */
    r->type = (char)type;
    r->data = NULL;
    if (get_length(in, &r->len) < 0)
        return -1;
    if (skip_data && r->type == REC_DATA) {
        if (skip(in, r->len) < 0)
            return -1;
    } else {
        if (get_exact(in, in->payload, r->len) < 0)
            return -1;
        in->payload[r->len] = '\0'; /* string payloads can be used in place */
        r->data = in->payload;
    }
    g = get_byte(in, &nl);
    if (g < 0)
        return -1;
    return g == 1 && nl == '\n' ? 1 : bad();
}

/* rec_num - a canonical decimal (no sign, no leading zero) not above max */
bool rec_num(const struct rec *r, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (r->data == NULL || r->len == 0 || r->len > 20 || (r->len > 1 && r->data[0] == '0'))
        return false;
    for (size_t i = 0; i < r->len; i++) {
        unsigned char c = r->data[i];
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* rec_str - the payload as a C string when it holds no NUL */
const char *rec_str(const struct rec *r)
{
    if (r->data == NULL || memchr(r->data, '\0', r->len) != NULL)
        return NULL;
    return (const char *)r->data;
}
