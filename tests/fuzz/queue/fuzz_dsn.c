/* fuzz_dsn.c - libFuzzer target for the DSN builder: the input supplies the envelope's
 * ENVID, ORCPT, a recipient, the next hop's reply and host, the action and RET, and the
 * original message.  Oracles: every line ends in CRLF and has at most 998 characters, no bare
 * CR or LF or NUL anywhere, the boundary occurs exactly where the structure puts it, and the
 * header section holds exactly the fields the builder writes.
 * Input: flags byte, then five NUL-terminated fields (envid, orcpt, address, reply, host), then
 * the original content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "queue/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
    const char *p;
    size_t len, off;
    unsigned chunk;
};

/* mem_read - the content in small, varying pieces, like a spool reader might give it */
static long mem_read(void *arg, void *buf, size_t n)
{
    struct mem *m = arg;
    size_t k = m->len - m->off;
    size_t c = 1 + (m->chunk++ * 7919u) % 4096u;
    k = k < n ? k : n;
    k = k < c ? k : c;
    memcpy(buf, m->p + m->off, k);
    m->off += k;
    return (long)k;
}

/* field - the next NUL-terminated field (the rest of the input when there is no NUL) */
static const char *field(const uint8_t **p, size_t *n, char *buf, size_t sz)
{
    const uint8_t *end = memchr(*p, 0, *n);
    size_t len = end ? (size_t)(end - *p) : *n;
    size_t k = len < sz - 1 ? len : sz - 1;
    memcpy(buf, *p, k);
    buf[k] = '\0';
    *p += len + (end != NULL);
    *n -= len + (end != NULL);
    return buf;
}

/* check_lines - CRLF line ends only, no NUL, no line over the limit */
static void check_lines(const char *s, size_t len)
{
    size_t linelen = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || s[i] == '\n')
            abort();
        if (s[i] == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n' || linelen > DSN_LINE_MAX)
                abort();
            linelen = 0;
            i++;
        } else {
            linelen++;
        }
    }
    if (linelen != 0)
        abort();
}

/* count - occurrences of needle in s */
static size_t count(const char *s, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), needle, nl)) != NULL; p += nl)
        n++;
    return n;
}

/* check_structure - the boundary where it belongs, and only the builder's header fields */
static void check_structure(const struct dsn_output *out)
{
    static const char *names[] = { "From:", "To:", "Subject:", "Date:", "Message-ID:",
                                   "Auto-Submitted:", "MIME-Version:", "Content-Type:", "\t",
                                   "Content-Transfer-Encoding:" };
    const char *s = out->msg.s;
    const char *hdr_end = strstr(s, "\r\n\r\n");
    if (hdr_end == NULL)
        abort();
    for (const char *line = s; line < hdr_end; line = strstr(line, "\r\n") + 2) {
        size_t i = 0;
        while (i < ARRAY_LEN(names) && strncmp(line, names[i], strlen(names[i])) != 0)
            i++;
        if (i == ARRAY_LEN(names))
            abort();
    }
    const char *b = strstr(s, "boundary=\"");
    if (b == NULL)
        abort();
    char delim[160] = "\r\n--";
    size_t blen = strcspn(b + 10, "\"");
    if (blen > 120)
        abort();
    memcpy(delim + 4, b + 10, blen);
    delim[4 + blen] = '\0';
    size_t parts = count(s, out->msg.len, delim);
    if (parts < 3 || parts > 4 || count(s, out->msg.len, delim + 4) != parts + 1)
        abort();   /* 2 or 3 parts and the closing delimiter; once more in the header */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char envid[256], orcpt[256], addr[256], host[300];
    struct envelope env;
    struct dlv_result res;
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    memset(&res, 0, sizeof(res));
    envelope_init(&env);
    str_copy(env.id, "1AbCdE-FgHiJk-LM", sizeof(env.id));
    envelope_set(&env.sender, "alice@example.org");
    envelope_set(&env.envid, field(&p, &n, envid, sizeof(envid))[0] ? envid : NULL);
    field(&p, &n, orcpt, sizeof(orcpt));
    envelope_add_rcpt(&env, field(&p, &n, addr, sizeof(addr)), 0, orcpt[0] ? orcpt : NULL);
    field(&p, &n, res.text, sizeof(res.text));
    field(&p, &n, host, sizeof(host));
    str_copy(res.host, host, sizeof(res.host));
    res.code = (flags & 1) ? 550 : 0;
    str_copy(res.ecode, (flags & 2) ? "4.2.2" : "5.1.1", sizeof(res.ecode));
    env.ret = (enum dsn_ret)((flags >> 2) % 3);
    struct dsn_entry e = { &env.rcpts[0], (flags & 16) ? DSN_RELAYED : DSN_FAILED,
                           (flags & 32) ? NULL : &res, (flags & 64) ? 1700000000 : 0,
                           (flags & 128) != 0 };
    struct dsn_report r = { "tandem.test", &env, &e, 1, 1700000500, 0x1234, 86400 };
    struct mem m = { (const char *)p, n, 0, flags };
    struct dsn_source src = { mem_read, &m };
    struct dsn_output out;
    dsn_build(&r, &src, &out);
    check_lines(out.msg.s, out.msg.len);
    check_structure(&out);
    sbuf_free(&out.msg);
    envelope_free(&env);
    return 0;
}
