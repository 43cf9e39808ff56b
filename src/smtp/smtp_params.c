/* smtp_params.c - the arguments of MAIL FROM and RCPT TO: the path, then ESMTP parameters
 * (RFC 1870 SIZE, RFC 6152/3030 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET ENVID NOTIFY ORCPT).
 * Every refusal comes with its precise reply. */
#include "smtp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

#define SIZE_DIGITS_MAX 20
#define ENVID_MAX 100
#define ORCPT_MAX 500

/* One "KEYWORD[=VALUE]" token; val is NULL when there was no '='. */
struct param {
    const char *kw, *val;
    size_t kwlen, vlen;
};

/* What the parameter handlers read and fill. */
struct pctx {
    bool dsn_ok, utf8_ok;
    uint64_t size_limit;
    struct mail_params *mail;
    struct rcpt_params *rcpt;
    unsigned seen; /* bit i: parameter table row i was given */
};

typedef bool (*param_fn)(const struct param *p, struct pctx *c, struct parse_err *err);

enum { PF_DSN = 1, PF_UTF8 = 2 };

struct param_def {
    const char *kw;
    unsigned flags; /* PF_DSN: only when DSN is on; PF_UTF8: only when SMTPUTF8 is on */
    param_fn fn;
};

/* fail - fill err with a reply and return false */
static bool fail(struct parse_err *err, int code, const char *ecode, const char *text)
{
    err->code = code;
    err->ecode = ecode;
    err->text = text;
    return false;
}

static bool bad_value(struct parse_err *err, const char *text)
{
    return fail(err, 501, "5.5.4", text);
}

/* val_is - the parameter's value is word (case-insensitive) */
static bool val_is(const struct param *p, const char *word)
{
    return p->val != NULL && p->vlen == strlen(word) && strncasecmp(p->val, word, p->vlen) == 0;
}

/* p_size - RFC 1870 SIZE=digits, refused with 552 above the limit (0 = no limit) */
static bool p_size(const struct param *p, struct pctx *c, struct parse_err *err)
{
    uint64_t v = 0;
    bool overflow = false;
    if (p->val == NULL || p->vlen == 0 || p->vlen > SIZE_DIGITS_MAX)
        return bad_value(err, "Invalid SIZE value");
    for (size_t i = 0; i < p->vlen; i++) {
        uint64_t d = (uint64_t)(p->val[i] - '0');
        if (p->val[i] < '0' || p->val[i] > '9')
            return bad_value(err, "Invalid SIZE value");
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        v = overflow ? UINT64_MAX : v * 10 + d;
    }
    if (overflow || (c->size_limit != 0 && v > c->size_limit))
        return fail(err, 552, "5.3.4", "Message size exceeds fixed maximum message size");
    c->mail->size_given = true;
    c->mail->size = v;
    return true;
}

/* p_body - BODY=7BIT|8BITMIME|BINARYMIME */
static bool p_body(const struct param *p, struct pctx *c, struct parse_err *err)
{
    if (val_is(p, "7BIT"))
        c->mail->body = BODY_7BIT;
    else if (val_is(p, "8BITMIME"))
        c->mail->body = BODY_8BITMIME;
    else if (val_is(p, "BINARYMIME"))
        c->mail->body = BODY_BINARYMIME;
    else
        return bad_value(err, "Invalid BODY value");
    return true;
}

/* p_smtputf8 - SMTPUTF8, which takes no value */
static bool p_smtputf8(const struct param *p, struct pctx *c, struct parse_err *err)
{
    if (p->val != NULL)
        return bad_value(err, "SMTPUTF8 takes no value");
    c->mail->smtputf8 = true;
    return true;
}

/* p_ret - RET=FULL|HDRS */
static bool p_ret(const struct param *p, struct pctx *c, struct parse_err *err)
{
    if (val_is(p, "FULL"))
        c->mail->ret = DSN_RET_FULL;
    else if (val_is(p, "HDRS"))
        c->mail->ret = DSN_RET_HDRS;
    else
        return bad_value(err, "Invalid RET value");
    return true;
}

/* printable - decoded DSN values are printable ASCII (RFC 3461 4.2, 4.4): no CR LF (header
 * injection into a later DSN), no control or 8-bit bytes */
static bool printable(const char *s)
{
    for (; *s; s++) {
        if (*s < 0x20 || *s > 0x7e)
            return false;
    }
    return true;
}

/* xtext_printable - s[0..len) is xtext decoding to at most max printable characters */
static bool xtext_printable(const char *s, size_t len, size_t max)
{
    char dec[ORCPT_MAX + 1];
    if (max >= sizeof(dec))
        fatalx("xtext_printable: max %zu too big", max);
    return xtext_decode(s, len, dec, max + 1) && printable(dec);
}

/* p_envid - ENVID=xtext, at most 100 printable characters once decoded */
static bool p_envid(const struct param *p, struct pctx *c, struct parse_err *err)
{
    if (p->val == NULL || p->vlen == 0 || !xtext_printable(p->val, p->vlen, ENVID_MAX) ||
        p->vlen >= sizeof(c->mail->envid))
        return bad_value(err, "Invalid ENVID value");
    memcpy(c->mail->envid, p->val, p->vlen);
    c->mail->envid[p->vlen] = '\0';
    return true;
}

/* notify_bit - the DSN_NOTIFY_* bit for one NOTIFY list element, 0 if unknown */
static unsigned notify_bit(const char *s, size_t len)
{
    static const struct { const char *name; unsigned bit; } words[] = {
        { "NEVER", DSN_NOTIFY_NEVER }, { "SUCCESS", DSN_NOTIFY_SUCCESS },
        { "FAILURE", DSN_NOTIFY_FAILURE }, { "DELAY", DSN_NOTIFY_DELAY },
    };
    for (size_t i = 0; i < ARRAY_LEN(words); i++) {
        if (len == strlen(words[i].name) && strncasecmp(s, words[i].name, len) == 0)
            return words[i].bit;
    }
    return 0;
}

/* p_notify - NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (no repeats) */
static bool p_notify(const struct param *p, struct pctx *c, struct parse_err *err)
{
    unsigned bits = 0;
    size_t start = 0;
    if (p->val == NULL)
        return bad_value(err, "Invalid NOTIFY value");
    for (size_t i = 0; i <= p->vlen; i++) {
        if (i < p->vlen && p->val[i] != ',')
            continue;
        unsigned bit = notify_bit(p->val + start, i - start);
        if (bit == 0 || (bits & bit) != 0)
            return bad_value(err, "Invalid NOTIFY value");
        bits |= bit;
        start = i + 1;
    }
    if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
        return bad_value(err, "NOTIFY=NEVER cannot be combined with other values");
    c->rcpt->notify = bits;
    return true;
}

/* is_atext - RFC 5322 atext (ASCII) */
static bool is_atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* p_orcpt - ORCPT=addr-type;xtext (addr-type an atom such as rfc822 or utf-8), at most 500
 * as received, the address printable once decoded */
static bool p_orcpt(const struct param *p, struct pctx *c, struct parse_err *err)
{
    size_t t = 0;
    if (p->val == NULL || p->vlen > ORCPT_MAX)
        return bad_value(err, "Invalid ORCPT value");
    while (t < p->vlen && is_atext(p->val[t]))
        t++;
    if (t == 0 || t + 1 >= p->vlen || p->val[t] != ';' ||
        !xtext_printable(p->val + t + 1, p->vlen - t - 1, ORCPT_MAX))
        return bad_value(err, "Invalid ORCPT value");
    memcpy(c->rcpt->orcpt, p->val, p->vlen);
    c->rcpt->orcpt[p->vlen] = '\0';
    return true;
}

static const struct param_def mail_defs[] = {
    { "SIZE", 0, p_size },
    { "BODY", 0, p_body },
    { "SMTPUTF8", PF_UTF8, p_smtputf8 },
    { "RET", PF_DSN, p_ret },
    { "ENVID", PF_DSN, p_envid },
};

static const struct param_def rcpt_defs[] = {
    { "NOTIFY", PF_DSN, p_notify },
    { "ORCPT", PF_DSN, p_orcpt },
};

/* keyword_valid - esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool keyword_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || ch != '-'))
            return false;
    }
    return len > 0;
}

/* apply_param - check one parameter against the table and let its handler take the value */
static bool apply_param(const struct param *p, const struct param_def *defs, size_t ndefs,
                        struct pctx *c, struct parse_err *err)
{
    if (!keyword_valid(p->kw, p->kwlen))
        return fail(err, 501, "5.5.4", "Syntax error in parameters");
    for (size_t i = 0; i < ndefs; i++) {
        if (p->kwlen != strlen(defs[i].kw) || strncasecmp(p->kw, defs[i].kw, p->kwlen) != 0)
            continue;
        if (((defs[i].flags & PF_DSN) && !c->dsn_ok) || ((defs[i].flags & PF_UTF8) && !c->utf8_ok))
            break;
        if (c->seen & (1u << i))
            return fail(err, 501, "5.5.4", "Duplicate parameter");
        c->seen |= 1u << i;
        return defs[i].fn(p, c, err);
    }
    return fail(err, 555, "5.5.4", "Unsupported parameter");
}

/* parse_params - the parameters after the path: s must be empty or start with a space */
static bool parse_params(const char *s, const struct param_def *defs, size_t ndefs,
                         struct pctx *c, struct parse_err *err)
{
    if (*s != '\0' && *s != ' ')
        return fail(err, 501, "5.5.4", "Syntax error in parameters");
    for (;;) {
        struct param p = { 0 };
        while (*s == ' ')
            s++;
        if (*s == '\0')
            return true;
        for (p.kw = s; *s != '\0' && *s != ' ' && *s != '='; s++)
            p.kwlen++;
        if (*s == '=') {
            for (p.val = ++s; *s != '\0' && *s != ' '; s++)
                p.vlen++;
        }
        if (!apply_param(&p, defs, ndefs, c, err))
            return false;
    }
}

/* path_fail - the reply for a bad sender (5.1.7) or recipient (5.1.3) path */
static bool path_fail(enum addr_err e, bool sender, bool utf8_allowed, struct parse_err *err)
{
    const char *ec = sender ? "5.1.7" : "5.1.3";
    switch (e) {
    case ADDR_ERR_UTF8:
        if (!utf8_allowed)
            return fail(err, 553, "5.6.7", sender ? "Non-ASCII sender address needs SMTPUTF8"
                                                  : "Non-ASCII recipient address needs SMTPUTF8");
        return fail(err, 501, ec, sender ? "Invalid UTF-8 in sender address"
                                         : "Invalid UTF-8 in recipient address");
    case ADDR_ERR_LOCAL_LEN:
        return fail(err, 501, ec, sender ? "Sender local part too long"
                                         : "Recipient local part too long");
    case ADDR_ERR_DOMAIN_LEN:
        return fail(err, 501, ec, sender ? "Sender domain too long" : "Recipient domain too long");
    case ADDR_ERR_PATH_LEN:
        return fail(err, 501, ec, sender ? "Sender path too long" : "Recipient path too long");
    default:
        return fail(err, 501, ec, sender ? "Bad sender address syntax"
                                         : "Bad recipient address syntax");
    }
}

static bool has_8bit(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80)
            return true;
    }
    return false;
}

/* arg_copy - a NUL-terminated heap copy of the argument; NULL if it holds a NUL byte */
static char *arg_copy(const char *arg, size_t len)
{
    if (memchr(arg, '\0', len) != NULL)
        return NULL;
    char *s = xmalloc(len + 1);
    memcpy(s, arg, len);
    s[len] = '\0';
    return s;
}

/* mail_parse - smtp_parse_mail on a NUL-terminated argument */
static bool mail_parse(const char *s, struct pctx *c, struct parse_err *err)
{
    const char *end;
    struct mail_params *m = c->mail;
    enum addr_err e = addr_parse_path(s, true, c->utf8_ok, m->sender, sizeof(m->sender), &end);
    if (e != ADDR_OK)
        return path_fail(e, true, c->utf8_ok, err);
    if (!parse_params(end, mail_defs, ARRAY_LEN(mail_defs), c, err))
        return false;
    if (!m->smtputf8 && has_8bit(m->sender))
        return path_fail(ADDR_ERR_UTF8, true, false, err);
    return true;
}

bool smtp_parse_mail(const char *arg, size_t len, bool dsn_ok, bool utf8_ok, uint64_t size_limit,
                     struct mail_params *out, struct parse_err *err)
{
    struct pctx c = { .dsn_ok = dsn_ok, .utf8_ok = utf8_ok, .size_limit = size_limit,
                      .mail = out };
    memset(out, 0, sizeof(*out));
    char *s = arg_copy(arg, len);
    if (s == NULL)
        return path_fail(ADDR_ERR_SYNTAX, true, utf8_ok, err);
    bool ok = mail_parse(s, &c, err);
    free(s);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

/* rcpt_parse - smtp_parse_rcpt on a NUL-terminated argument */
static bool rcpt_parse(const char *s, struct pctx *c, struct parse_err *err)
{
    const char *end;
    struct rcpt_params *r = c->rcpt;
    static const char pm[] = "<postmaster>";
    if (strncasecmp(s, pm, sizeof(pm) - 1) == 0) {
        str_copy(r->rcpt, "postmaster", sizeof(r->rcpt));
        end = s + sizeof(pm) - 1;
    } else {
        enum addr_err e = addr_parse_path(s, false, c->utf8_ok, r->rcpt, sizeof(r->rcpt), &end);
        if (e != ADDR_OK)
            return path_fail(e, false, c->utf8_ok, err);
    }
    return parse_params(end, rcpt_defs, ARRAY_LEN(rcpt_defs), c, err);
}

bool smtp_parse_rcpt(const char *arg, size_t len, bool dsn_ok, bool utf8_ok,
                     struct rcpt_params *out, struct parse_err *err)
{
    struct pctx c = { .dsn_ok = dsn_ok, .utf8_ok = utf8_ok, .rcpt = out };
    memset(out, 0, sizeof(*out));
    char *s = arg_copy(arg, len);
    if (s == NULL)
        return path_fail(ADDR_ERR_SYNTAX, false, utf8_ok, err);
    bool ok = rcpt_parse(s, &c, err);
    free(s);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}
