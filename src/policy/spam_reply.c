/* spam_reply.c - rspamd's /checkv2 reply (JSON, parsed by jansson) into a verdict: score,
 * required score, action, and a one-line report of the symbols.  Untrusted input: every text
 * taken from it is bounded and made printable. */
#include "policy.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/core.h"

/* printable - copy text with anything but printable ASCII as '?' */
static void printable(char *out, size_t sz, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < sz; s++)
        out[n++] = (*s >= 32 && *s < 127) ? *s : '?';
    out[n] = '\0';
}

/* number - a JSON number (integer or real) that is finite */
static bool number(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

/* add_symbol - " NAME(score)" to the report, while it fits */
static void add_symbol(struct sbuf *b, const char *name, const json_t *sym)
{
    char n[80];
    double score = 0;
    number(json_object_get(sym, "score"), &score);
    printable(n, sizeof(n), name);
    if (b->len + strlen(n) + 16 < SPAM_REPORT_MAX)
        sbuf_printf(b, "%s%s(%.2f)", b->len && b->s[b->len - 1] != ' ' ? ", " : "", n, score);
}

/* build_report - "action=reject score=15.00/15.00 symbols: GTUBE(0.00), ..." */
static void build_report(const json_t *root, struct spam_verdict *v)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "action=%s score=%.2f/%.2f symbols: ", v->action, v->score, v->required);
    const json_t *syms = json_object_get(root, "symbols");
    const char *name;
    const json_t *sym;
    if (json_is_object(syms))
        json_object_foreach((json_t *)syms, name, sym)
            add_symbol(&b, name, sym);
    str_copy(v->report, b.s, sizeof(v->report));
    sbuf_free(&b);
}

bool spam_reply_parse(const char *body, size_t len, struct spam_verdict *v, char *err,
                      size_t errsz)
{
    json_error_t je;
    memset(v, 0, sizeof(*v));
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        str_fmt(err, errsz, "reply is not JSON (line %d: %.80s)", je.line, je.text);
        return false;
    }
    bool ok = json_is_object(root) && number(json_object_get(root, "score"), &v->score) &&
              number(json_object_get(root, "required_score"), &v->required) &&
              json_is_string(json_object_get(root, "action"));
    if (ok) {
        printable(v->action, sizeof(v->action), json_string_value(json_object_get(root, "action")));
        v->skipped = json_is_true(json_object_get(root, "is_skipped"));
        build_report(root, v);
    } else {
        const json_t *e = json_is_object(root) ? json_object_get(root, "error") : NULL;
        char why[120];
        printable(why, sizeof(why), json_is_string(e) ? json_string_value(e) : "");
        str_fmt(err, errsz, "reply without score, required_score and action%s%s",
                why[0] ? ": " : "", why);
    }
    json_decref(root);
    return ok;
}

/* spam_is_spam - the condition's test: rspamd says reject, or the score reached the threshold */
bool spam_is_spam(const struct spam_verdict *v)
{
    return strcmp(v->action, "reject") == 0 || v->score >= v->required;
}

/* spam_vars - the texts of $spam_score, $spam_score_int and $spam_bar (Exim's forms) */
void spam_vars(const struct spam_verdict *v, char score[32], char score_int[32], char bar[64])
{
    str_fmt(score, 32, "%.1f", v->score);
    str_fmt(score_int, 32, "%d", v->score > 1e8 ? 1000000000 : v->score < -1e8 ? -1000000000
                                                                : (int)(v->score * 10));
    int n = v->score >= 50 || v->score <= -50 ? 50 : (int)fabs(v->score);
    for (int i = 0; i < n; i++)
        bar[i] = v->score > 0 ? '+' : '-';
    bar[n] = '\0';
    if (n == 0)
        str_copy(bar, "/", 64);
}
