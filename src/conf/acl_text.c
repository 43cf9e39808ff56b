/* acl_text.c - compile ACL text into literal and $variable segments, and expand it. */
#include "conf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const var_names[VAR_NVARS] = {
    [VAR_LOCAL_PART] = "local_part",
    [VAR_DOMAIN] = "domain",
    [VAR_SENDER_ADDRESS] = "sender_address",
    [VAR_SENDER_HOST_ADDRESS] = "sender_host_address",
    [VAR_SENDER_HELO_NAME] = "sender_helo_name",
    [VAR_PRIMARY_HOSTNAME] = "primary_hostname",
    [VAR_MESSAGE_ID] = "message_id",
    [VAR_ACL_VERIFY_MESSAGE] = "acl_verify_message",
    [VAR_TLS_IN_CIPHER] = "tls_in_cipher",
    [VAR_DNSLIST_DOMAIN] = "dnslist_domain",
    [VAR_DNSLIST_MATCHED] = "dnslist_matched",
    [VAR_DNSLIST_VALUE] = "dnslist_value",
    [VAR_DNSLIST_TEXT] = "dnslist_text",
    [VAR_SENDER_RATE] = "sender_rate",
    [VAR_SENDER_RATE_LIMIT] = "sender_rate_limit",
    [VAR_SENDER_RATE_PERIOD] = "sender_rate_period",
    [VAR_SPAM_SCORE] = "spam_score",
    [VAR_SPAM_SCORE_INT] = "spam_score_int",
    [VAR_SPAM_BAR] = "spam_bar",
    [VAR_SPAM_ACTION] = "spam_action",
    [VAR_SPAM_REPORT] = "spam_report",
};

/* var_lookup - the variable called name[0..len), or VAR_NVARS */
static enum acl_var var_lookup(const char *name, size_t len)
{
    for (int v = 0; v < VAR_NVARS; v++)
        if (strlen(var_names[v]) == len && strncmp(var_names[v], name, len) == 0)
            return (enum acl_var)v;
    return VAR_NVARS;
}

/* add_seg - append a literal (if lit is non-empty) or a variable segment */
static void add_seg(struct acl_text *t, struct sbuf *lit, bool is_var, enum acl_var v)
{
    if (!is_var && lit->len == 0)
        return;
    t->segs = xreallocarray(t->segs, t->n + 1, sizeof(*t->segs));
    struct acl_text_seg *seg = &t->segs[t->n++];
    seg->is_var = is_var;
    seg->var = is_var ? v : VAR_NVARS;
    seg->literal = is_var ? NULL : sbuf_steal(lit);
}

/* parse_var - after a '$' at *sp: "name" or "{name}"; returns VAR_NVARS with err set on error */
static enum acl_var parse_var(const char **sp, char *err, size_t errsz)
{
    const char *s = *sp;
    bool brace = *s == '{';
    const char *name = brace ? s + 1 : s;
    size_t len = 0;
    while (isalnum((unsigned char)name[len]) || name[len] == '_')
        len++;
    if (brace && (len == 0 || name[len] != '}')) {
        str_fmt(err, errsz, "string expansions are not supported: \"$%.40s\"", s);
        return VAR_NVARS;
    }
    if (len == 0) {
        str_fmt(err, errsz, "a lone '$' (write \\$ for a dollar sign)");
        return VAR_NVARS;
    }
    enum acl_var v = var_lookup(name, len);
    if (v == VAR_NVARS)
        str_fmt(err, errsz, "unknown variable \"$%.*s\"", (int)(len > 40 ? 40 : len), name);
    *sp = name + len + (brace ? 1 : 0);
    return v;
}

/* acl_text_compile - split text into literal and variable segments */
bool acl_text_compile(struct acl_text *t, const char *s, char *err, size_t errsz)
{
    struct sbuf lit;
    sbuf_init(&lit);
    t->segs = NULL;
    t->n = 0;
    while (*s != '\0') {
        if (s[0] == '\\' && s[1] == '$') {
            sbuf_addch(&lit, '$');
            s += 2;
        } else if (*s == '$') {
            s++;
            enum acl_var v = parse_var(&s, err, errsz);
            if (v == VAR_NVARS) {
                sbuf_free(&lit);
                acl_text_free(t);
                return false;
            }
            add_seg(t, &lit, false, VAR_NVARS);
            add_seg(t, &lit, true, v);
        } else {
            sbuf_addch(&lit, *s++);
        }
    }
    add_seg(t, &lit, false, VAR_NVARS);
    sbuf_free(&lit);
    return true;
}

void acl_text_free(struct acl_text *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->segs[i].literal);
    free(t->segs);
    t->segs = NULL;
    t->n = 0;
}

/* acl_text_expand - literals as they are, variables with control characters masked */
void acl_text_expand(const struct acl_text *t, const char *const vals[VAR_NVARS], struct sbuf *out)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct acl_text_seg *seg = &t->segs[i];
        if (!seg->is_var) {
            sbuf_addstr(out, seg->literal);
            continue;
        }
        const char *v = vals[seg->var] ? vals[seg->var] : "";
        for (; *v; v++)
            sbuf_addch(out, iscntrl((unsigned char)*v) ? '?' : *v);
    }
}
