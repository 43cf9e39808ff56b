/* mta_sts_parse.c - the pure parts of MTA-STS (RFC 8461): the `_mta-sts` TXT record (3.1),
 * the policy file (3.2) and the matching of MX host names against its `mx:` patterns (4.1).
 * Everything here reads untrusted text: lengths are bounded, nothing is trusted to be
 * terminated, and anything outside the grammar makes the whole record invalid. */
#include "tls_policy_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

const char *sts_mode_name(enum sts_mode m)
{
    static const char *const names[] = { "none", "testing", "enforce" };
    return (unsigned)m < ARRAY_LEN(names) ? names[m] : "?";
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* skip_wsp - the first position at or after i that is not a space or tab */
static size_t skip_wsp(const char *s, size_t len, size_t i)
{
    while (i < len && is_wsp(s[i]))
        i++;
    return i;
}

/* ext_name_ok - (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool ext_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* txt_field - one "name=value" field of the TXT record; the id goes to id (first one wins) */
static bool txt_field(const char *f, size_t n, char id[STS_ID_MAX + 1], bool *have_id)
{
    const char *eq = memchr(f, '=', n);
    if (eq == NULL)
        return false;
    size_t nlen = (size_t)(eq - f), vlen = n - nlen - 1;
    const char *v = eq + 1;
    if (!ext_name_ok(f, nlen) || vlen == 0)
        return false;
    for (size_t i = 0; i < vlen; i++)   /* %x21-3A / %x3C / %x3E-7E */
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e || v[i] == ';' || v[i] == '=')
            return false;
    if (nlen == 2 && memcmp(f, "id", 2) == 0) {
        if (vlen > STS_ID_MAX)
            return false;
        for (size_t i = 0; i < vlen; i++)
            if (!isalnum((unsigned char)v[i]))
                return false;
        if (!*have_id) {
            memcpy(id, v, vlen);
            id[vlen] = '\0';
            *have_id = true;
        }
    }
    return true;
}

bool sts_txt_is_sts(const char *text, size_t len)
{
    return len >= 7 && memcmp(text, "v=STSv1", 7) == 0;
}

/* sts_parse_txt - "v=STSv1; id=ID[; ext=value]...[;]" (RFC 8461 3.1); the id, or false */
bool sts_parse_txt(const char *text, size_t len, char id[STS_ID_MAX + 1])
{
    bool have_id = false;
    id[0] = '\0';
    if (!sts_txt_is_sts(text, len))
        return false;
    size_t i = 7;
    for (;;) {
        i = skip_wsp(text, len, i);
        if (i == len)
            return have_id;
        if (text[i] != ';')
            return false;
        i = skip_wsp(text, len, i + 1);
        if (i == len)
            return have_id;                  /* a trailing ";" */
        size_t start = i;
        while (i < len && text[i] != ';' && !is_wsp(text[i]))
            i++;
        if (!txt_field(text + start, i - start, id, &have_id))
            return false;
    }
}

/* mx_pattern_ok - ["*."] Domain: letters, digits, hyphens, dots between labels */
static bool mx_pattern_ok(const char *s, size_t n)
{
    if (n > 253)                          /* the whole pattern, "*." included, is a name */
        return false;
    if (n >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' && s[i + 1] == '.')
            return false;
        if (!isalnum(c) && c != '-' && c != '.')
            return false;
    }
    return true;
}

/* policy_value_ok - printable ASCII, no leading or trailing blank (3.2: sts-policy-ext-value) */
static bool policy_value_ok(const char *v, size_t n)
{
    if (n == 0 || is_wsp(v[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

/* parse_max_age - 1*10DIGIT, values above the RFC's ceiling taken as the ceiling */
static bool parse_max_age(const char *v, size_t n, uint32_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX : (uint32_t)x;
    return true;
}

enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_MAX_AGE = 4 };

/* bad - say why the policy is invalid; false */
static bool bad(char *why, size_t whysz, const char *text)
{
    str_copy(why, text, whysz);
    return false;
}

/* policy_mode - "testing" / "enforce" / "none" */
static bool policy_mode(const char *v, size_t n, enum sts_mode *m)
{
    static const enum sts_mode modes[] = { STS_NONE, STS_TESTING, STS_ENFORCE };
    for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
        const char *name = sts_mode_name(modes[i]);
        if (strlen(name) == n && memcmp(v, name, n) == 0) {
            *m = modes[i];
            return true;
        }
    }
    return false;
}

/* policy_field - one "name: value" line; the first of each field but mx wins */
static bool policy_field(struct sts_policy *p, unsigned *seen, const char *name, size_t nlen,
                         const char *v, size_t vlen, char *why, size_t whysz)
{
#define FIELD(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (FIELD("version")) {
        if (!(*seen & SEEN_VERSION) && !(vlen == 5 && memcmp(v, "STSv1", 5) == 0))
            return bad(why, whysz, "version is not STSv1");
        *seen |= SEEN_VERSION;
    } else if (FIELD("mode")) {
        if (!(*seen & SEEN_MODE) && !policy_mode(v, vlen, &p->mode))
            return bad(why, whysz, "mode is not enforce, testing or none");
        *seen |= SEEN_MODE;
    } else if (FIELD("max_age")) {
        if (!(*seen & SEEN_MAX_AGE) && !parse_max_age(v, vlen, &p->max_age))
            return bad(why, whysz, "max_age is not a number of seconds");
        *seen |= SEEN_MAX_AGE;
    } else if (FIELD("mx")) {
        if (!mx_pattern_ok(v, vlen))
            return bad(why, whysz, "mx is not a host name pattern");
        if (p->nmx < STS_MX_MAX) {
            memcpy(p->mx[p->nmx], v, vlen);
            p->mx[p->nmx][vlen] = '\0';
            str_lower(p->mx[p->nmx++]);
        }
    } else if (!ext_name_ok(name, nlen)) {
        return bad(why, whysz, "a line is not a \"name: value\" field");
    }
    return true;
#undef FIELD
}

/* policy_line - split "name:" *WSP value and hand it to policy_field */
static bool policy_line(struct sts_policy *p, unsigned *seen, const char *l, size_t n, char *why,
                        size_t whysz)
{
    while (n > 0 && is_wsp(l[n - 1]))   /* *WSP before the line end */
        n--;
    const char *colon = memchr(l, ':', n);
    if (colon == NULL)
        return bad(why, whysz, "a line is not a \"name: value\" field");
    size_t nlen = (size_t)(colon - l);
    size_t v = skip_wsp(l, n, nlen + 1);
    if (!policy_value_ok(l + v, n - v))
        return bad(why, whysz, "a field has no value or a bad character");
    return policy_field(p, seen, l, nlen, l + v, n - v, why, whysz);
}

/* sts_parse_policy - the policy file (RFC 8461 3.2): version, mode and max_age once (the first
 * of each counts), mx patterns (needed unless the mode is none), other fields ignored; lines
 * end in LF or CRLF, blank lines are skipped */
bool sts_parse_policy(const char *body, size_t len, struct sts_policy *p, char *why, size_t whysz)
{
    unsigned seen = 0;
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(body + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - body) : len;
        size_t n = end - i;
        if (n > 0 && body[i + n - 1] == '\r')
            n--;
        if (memchr(body + i, '\r', n) != NULL || memchr(body + i, '\0', n) != NULL)
            return bad(why, whysz, "a line holds a bare CR or a NUL");
        if (n > 0 && !policy_line(p, &seen, body + i, n, why, whysz))
            return false;
        i = end + 1;
    }
    if (seen != (SEEN_VERSION | SEEN_MODE | SEEN_MAX_AGE))
        return bad(why, whysz, "version, mode or max_age is missing");
    if (p->mode != STS_NONE && p->nmx == 0)
        return bad(why, whysz, "no mx patterns");
    return true;
}

/* sts_mx_match - whether host (an MX host name) matches a pattern of p: the same name without
 * regard to case, or "*.rest" when host is one more label in front of rest (RFC 8461 4.1) */
bool sts_mx_match(const struct sts_policy *p, const char *host)
{
    char h[256];
    str_copy(h, host, sizeof(h));
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == '.')
        h[--n] = '\0';
    str_lower(h);
    const char *dot = strchr(h, '.');
    for (size_t i = 0; i < p->nmx && n > 0; i++) {
        const char *pat = p->mx[i];
        if (strcmp(pat, h) == 0)
            return true;
        if (pat[0] == '*' && pat[1] == '.' && dot != NULL && dot != h && strcmp(dot + 1, pat + 2) == 0)
            return true;
    }
    return false;
}

/* sts_mx_list - the patterns as one line for logs: "mx1.example, *.example.net" */
void sts_mx_list(const struct sts_policy *p, char *buf, size_t sz)
{
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 0; i < p->nmx; i++)
        sbuf_printf(&b, "%s%s", i ? ", " : "", p->mx[i]);
    str_copy(buf, b.s ? b.s : "", sz);
    sbuf_free(&b);
}
