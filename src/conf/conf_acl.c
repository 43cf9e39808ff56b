/* conf_acl.c - the ACL section, in Exim's syntax: "name:" starts an ACL, a verb starts a
 * statement, and "[!]name = value" lines add conditions and modifiers to it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"

static const char *const verb_names[] = {
    [VERB_ACCEPT] = "accept", [VERB_DENY] = "deny", [VERB_DEFER] = "defer",
    [VERB_DISCARD] = "discard", [VERB_DROP] = "drop", [VERB_REQUIRE] = "require",
    [VERB_WARN] = "warn",
};

struct item_def {
    const char *name;
    enum acl_item_kind kind;
    bool is_condition;
};

static const struct item_def item_defs[] = {
    { "hosts", COND_HOSTS, true },
    { "domains", COND_DOMAINS, true },
    { "local_parts", COND_LOCAL_PARTS, true },
    { "senders", COND_SENDERS, true },
    { "recipients", COND_RECIPIENTS, true },
    { "verify", COND_VERIFY, true },
    { "dnslists", COND_DNSLISTS, true },
    { "ratelimit", COND_RATELIMIT, true },
    { "spam", COND_SPAM, true },
    { "encrypted", COND_ENCRYPTED, true },
    { "message", MOD_MESSAGE, false },
    { "log_message", MOD_LOG_MESSAGE, false },
    { "logwrite", MOD_LOGWRITE, false },
    { "add_header", MOD_ADD_HEADER, false },
    { "delay", MOD_DELAY, false },
    { "control", MOD_CONTROL, false },
};

/* callout_word - one comma-separated callout option: a timeout or a flag word */
static bool callout_word(struct callout_opts *co, const char *w, char *err, size_t errsz)
{
    if (isdigit((unsigned char)w[0])) {
        if (parse_time(w, &co->timeout) && co->timeout > 0)
            return true;
    } else if (strcmp(w, "defer_ok") == 0) {
        return co->defer_ok = true;
    } else if (strcmp(w, "use_sender") == 0) {
        return co->use_sender = true;
    } else if (strcmp(w, "use_postmaster") == 0) {
        return co->use_postmaster = true;
    } else if (strcmp(w, "random") == 0) {
        return co->random = true;
    } else if (strcmp(w, "no_cache") == 0) {
        return co->no_cache = true;
    }
    str_fmt(err, errsz, "invalid callout option \"%.40s\" (a time, defer_ok, use_sender, "
            "use_postmaster, random or no_cache)", w);
    return false;
}

/* parse_callout - "callout" or "callout=10s,defer_ok,..." */
static bool parse_callout(struct callout_opts *co, const char *s, char *err, size_t errsz)
{
    co->enabled = true;
    if (strcmp(s, "callout") == 0)
        return true;
    if (strncmp(s, "callout=", 8) != 0) {
        str_fmt(err, errsz, "unknown verify option \"%.40s\"", s);
        return false;
    }
    char *copy = xstrdup(s + 8), *w = copy;
    bool ok = true;
    for (char *next; ok && w != NULL; w = next) {
        next = strchr(w, ',');
        if (next != NULL)
            *next++ = '\0';
        ok = callout_word(co, w, err, errsz);
    }
    free(copy);
    return ok;
}

/* parse_verify - "helo", "sender[/callout...]", "recipient[/callout...]" */
static bool parse_verify(struct acl_item *it, const char *v, char *err, size_t errsz)
{
    static const char *const whats[] = { "helo", "sender", "recipient" };
    size_t n = strcspn(v, "/");
    size_t w = 0;
    while (w < ARRAY_LEN(whats) && (strlen(whats[w]) != n || strncmp(v, whats[w], n) != 0))
        w++;
    if (w == ARRAY_LEN(whats)) {
        str_fmt(err, errsz, "expected helo, sender or recipient, not \"%.*s\"",
                (int)(n > 40 ? 40 : n), v);
        return false;
    }
    it->verify = (enum verify_what)w;
    if (v[n] == '\0')
        return true;
    if (it->verify == VERIFY_HELO) {
        str_fmt(err, errsz, "verify = helo takes no options");
        return false;
    }
    if (strchr(v + n + 1, '/') != NULL) {
        str_fmt(err, errsz, "only one option (callout) may follow \"%s\"", whats[w]);
        return false;
    }
    return parse_callout(&it->callout, v + n + 1, err, errsz);
}

/* control_option - "defer=spool|pass", "split=defer|spool" or "unknown=accept|defer" */
static bool control_option(struct cutthrough_opts *cut, const char *o)
{
    if (strcmp(o, "defer=spool") == 0 || strcmp(o, "defer=pass") == 0)
        cut->defer = o[6] == 's' ? CUT_DEFER_SPOOL : CUT_DEFER_PASS;
    else if (strcmp(o, "split=defer") == 0 || strcmp(o, "split=spool") == 0)
        cut->split = o[6] == 'd' ? CUT_SPLIT_DEFER : CUT_SPLIT_SPOOL;
    else if (strcmp(o, "unknown=accept") == 0 || strcmp(o, "unknown=defer") == 0)
        cut->unknown = o[8] == 'a' ? CUT_UNKNOWN_ACCEPT : CUT_UNKNOWN_DEFER;
    else
        return false;
    return true;
}

/* parse_control - "cutthrough_delivery[/defer=spool|pass][/split=defer|spool]
 * [/unknown=accept|defer]" */
static bool parse_control(struct acl_item *it, const char *v, char *err, size_t errsz)
{
    size_t n = strcspn(v, "/");
    if (n != strlen("cutthrough_delivery") || strncmp(v, "cutthrough_delivery", n) != 0) {
        str_fmt(err, errsz, "unknown control \"%.*s\" (only cutthrough_delivery is supported)",
                (int)(n > 40 ? 40 : n), v);
        return false;
    }
    for (const char *o = v + n; *o == '/'; o += strcspn(o + 1, "/") + 1) {
        char opt[32];
        size_t len = strcspn(o + 1, "/");
        str_copy(opt, o + 1, len + 1 < sizeof(opt) ? len + 1 : sizeof(opt));
        if (len >= sizeof(opt) || !control_option(&it->cut, opt)) {
            str_fmt(err, errsz, "unknown cutthrough_delivery option \"%.*s\" (defer=spool|pass, "
                    "split=defer|spool, unknown=accept|defer)", (int)(len > 40 ? 40 : len), o + 1);
            return false;
        }
    }
    return true;
}

/* parse_text - a text value: optional double quotes, then $variables */
static bool parse_text(struct acl_item *it, const char *v, char *err, size_t errsz)
{
    char *s = conf_unquote(v);
    if (s == NULL) {
        str_fmt(err, errsz, "unterminated quoted string");
        return false;
    }
    bool ok = acl_text_compile(&it->text, s, err, errsz);
    free(s);
    return ok;
}

/* parse_spam - "NAME[:true][/defer_ok]" */
static bool parse_spam(struct acl_item *it, const char *v, char *err, size_t errsz)
{
    size_t n = strcspn(v, "/");
    if (v[n] == '/' && strcmp(v + n, "/defer_ok") != 0) {
        str_fmt(err, errsz, "unknown option \"%.40s\" (only /defer_ok)", v + n + 1);
        return false;
    }
    it->spam.defer_ok = v[n] == '/';
    if (n >= 5 && strncmp(v + n - 5, ":true", 5) == 0) {
        it->spam.always_true = true;
        n -= 5;
    }
    if (n == 0 || n > 64 || strcspn(v, " \t:") < n) {
        str_fmt(err, errsz, "expected a name, e.g. \"nobody\" or \"nobody:true\"");
        return false;
    }
    it->spam.name = xstrndup(v, n);
    return true;
}

/* list_kind_for - the kind of list a list condition takes */
static enum list_kind list_kind_for(enum acl_item_kind k)
{
    switch (k) {
    case COND_HOSTS: return LIST_HOST;
    case COND_LOCAL_PARTS:
    case COND_ENCRYPTED: return LIST_LOCAL_PART;   /* cipher names, "*" */
    case COND_SENDERS:
    case COND_RECIPIENTS: return LIST_ADDRESS;
    default: return LIST_DOMAIN;
    }
}

/* compile_item - the value of one condition or modifier */
static bool compile_item(struct conf_parser *p, struct acl_item *it, const char *name,
                         const char *v)
{
    char err[CONF_ERR_MAX];
    bool ok;
    switch (it->kind) {
    case COND_VERIFY: ok = parse_verify(it, v, err, sizeof(err)); break;
    case MOD_CONTROL: ok = parse_control(it, v, err, sizeof(err)); break;
    case COND_DNSLISTS: ok = dnsl_parse(&it->dnsl, v, err, sizeof(err)); break;
    case COND_RATELIMIT: ok = ratelimit_parse(&it->rate, v, err, sizeof(err)); break;
    case COND_SPAM: ok = parse_spam(it, v, err, sizeof(err)); break;
    case MOD_DELAY:
        ok = parse_time(v, &it->delay);
        if (!ok)
            str_fmt(err, sizeof(err), "invalid time \"%.40s\"", v);
        break;
    case MOD_MESSAGE:
    case MOD_LOG_MESSAGE:
    case MOD_LOGWRITE:
    case MOD_ADD_HEADER: ok = parse_text(it, v, err, sizeof(err)); break;
    default: return conf_compile_list(p, &it->list, list_kind_for(it->kind), v, name, p->line);
    }
    if (!ok)
        conf_error(p, p->line, "%s: %s", name, err);
    return ok;
}

/* item_free - what one condition or modifier holds */
static void item_free(struct acl_item *it)
{
    list_free(&it->list);
    acl_text_free(&it->text);
    if (it->kind == COND_DNSLISTS)
        dnsl_free(&it->dnsl);
    if (it->kind == COND_RATELIMIT)
        ratelimit_free(&it->rate);
    free(it->spam.name);
}

/* find_item_def - a condition or modifier by name */
static const struct item_def *find_item_def(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(item_defs); i++)
        if (strlen(item_defs[i].name) == len && strncmp(item_defs[i].name, name, len) == 0)
            return &item_defs[i];
    return NULL;
}

/* current_stmt - the statement items are added to, or NULL after reporting why not */
static struct acl_stmt *current_stmt(struct conf_parser *p, const char *name)
{
    if (p->acl_skip)
        return NULL;
    if (p->cur_acl == NULL) {
        conf_error(p, p->line, "\"%s\" before any ACL name (expected \"name:\")", name);
        p->acl_skip = true;
    } else if (p->cur_acl->n == 0)
        conf_error(p, p->line, "\"%s\" without a verb (accept, deny, defer, discard, drop, "
                   "require or warn)", name);
    else
        return &p->cur_acl->stmts[p->cur_acl->n - 1];
    return NULL;
}

/* looks_like_item - s starts with "[!]name =" (what may follow a verb) */
static bool looks_like_item(const char *s)
{
    if (*s == '!')
        s += 1 + strspn(s + 1, " \t");
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    return n > 0 && s[n + strspn(s + n, " \t")] == '=';
}

/* item_line - "[!]name = value" added to the current statement */
static void item_line(struct conf_parser *p, const char *s)
{
    bool negate = *s == '!';
    if (negate)
        s += 1 + strspn(s + 1, " \t");
    size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *eq = s + len + strspn(s + len, " \t");
    char name[32];
    str_copy(name, s, len + 1 < sizeof(name) ? len + 1 : sizeof(name));
    const struct item_def *def = find_item_def(s, len);
    if (len > 0 && !negate && (s[len] == ' ' || s[len] == '\t') && *eq != '=' && looks_like_item(eq)) {
        conf_error(p, p->line, "unknown ACL verb \"%s\" (accept, deny, defer, discard, drop, "
                   "require or warn)", name);
        return;
    }
    if (len == 0 || *eq != '=') {
        conf_error(p, p->line, "syntax error: expected \"[!]name = value\", got \"%.40s\"", s);
        return;
    }
    struct acl_stmt *st = current_stmt(p, name);
    if (st == NULL)
        return;
    if (def == NULL) {
        conf_error(p, p->line, "unknown ACL condition or modifier \"%s\"", name);
        return;
    }
    if (negate && !def->is_condition) {
        conf_error(p, p->line, "\"!\" negates conditions only, and %s is a modifier", name);
        return;
    }
    struct acl_item it;
    memset(&it, 0, sizeof(it));
    it.kind = def->kind;
    it.negate = negate;
    it.line = p->line;
    if (!compile_item(p, &it, name, eq + 1 + strspn(eq + 1, " \t"))) {
        item_free(&it);
        return;
    }
    st->items = xreallocarray(st->items, st->n + 1, sizeof(*st->items));
    st->items[st->n++] = it;
}

/* acl_name_line - "name:" starts a new ACL; false if the line is not one */
static bool acl_name_line(struct conf_parser *p, const char *line)
{
    struct conf *c = p->c;
    size_t len = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    if (len == 0 || line[len] != ':' || line[len + 1 + strspn(line + len + 1, " \t")] != '\0')
        return false;
    char *name = xstrndup(line, len);
    const struct acl *old = conf_find_acl(c, name);
    if (old != NULL) {
        conf_error(p, p->line, "ACL \"%s\" defined twice (first at line %d)", name, old->line);
        free(name);
        p->cur_acl = NULL;
        p->acl_skip = true;
        return true;
    }
    c->acls = xreallocarray(c->acls, c->nacls + 1, sizeof(*c->acls));
    p->cur_acl = &c->acls[c->nacls++];
    memset(p->cur_acl, 0, sizeof(*p->cur_acl));
    p->cur_acl->name = name;
    p->cur_acl->line = p->line;
    p->acl_skip = false;
    return true;
}

/* verb_line - a verb starts a statement; what follows it on the line is its first item */
static bool verb_line(struct conf_parser *p, const char *line)
{
    size_t len = strcspn(line, " \t");
    size_t v = 0;
    while (v < ARRAY_LEN(verb_names) &&
           (strlen(verb_names[v]) != len || strncmp(line, verb_names[v], len) != 0))
        v++;
    if (v == ARRAY_LEN(verb_names))
        return false;
    if (p->cur_acl == NULL) {
        if (!p->acl_skip)
            conf_error(p, p->line, "\"%s\" before any ACL name (expected \"name:\")", verb_names[v]);
        p->acl_skip = true; /* one error until the next ACL name */
        return true;
    }
    struct acl *a = p->cur_acl;
    a->stmts = xreallocarray(a->stmts, a->n + 1, sizeof(*a->stmts));
    memset(&a->stmts[a->n], 0, sizeof(a->stmts[0]));
    a->stmts[a->n].verb = (enum acl_verb)v;
    a->stmts[a->n++].line = p->line;
    const char *rest = line + len + strspn(line + len, " \t");
    if (*rest != '\0')
        item_line(p, rest);
    return true;
}

/* conf_acl_line - an ACL name, a statement, or a condition/modifier line */
void conf_acl_line(struct conf_parser *p, const char *line)
{
    if (acl_name_line(p, line) || verb_line(p, line))
        return;
    item_line(p, line);
}

/* acl_free - release what an ACL holds */
void acl_free(struct acl *acl)
{
    for (size_t s = 0; s < acl->n; s++) {
        for (size_t i = 0; i < acl->stmts[s].n; i++)
            item_free(&acl->stmts[s].items[i]);
        free(acl->stmts[s].items);
    }
    free(acl->stmts);
    free(acl->name);
    acl->stmts = NULL;
    acl->name = NULL;
    acl->n = 0;
}

/* stage_item_check - a condition that makes no sense in the stage's ACL */
static void stage_item_check(struct conf_parser *p, enum acl_stage st, const struct acl *a,
                             const struct acl_item *it)
{
    static const char *const stage_opts[] = { "acl_smtp_connect", "acl_smtp_helo",
        "acl_smtp_mail", "acl_smtp_rcpt", "acl_smtp_predata", "acl_smtp_data" };
    if (it->kind == COND_SPAM && st != ACL_DATA)
        conf_error(p, it->line, "spam: usable in the data ACL only (ACL \"%s\" is %s)", a->name,
                   stage_opts[st]);
    else if (it->kind == COND_SPAM && p->c->spamd.host == NULL)
        conf_error(p, it->line, "spam: spamd_address is not set");
    else if (it->kind == COND_RATELIMIT && it->rate.mode_given &&
             !ratelimit_counts_in(it->rate.per, st))
        conf_error(p, it->line, "ratelimit: %s cannot count in ACL \"%s\" (%s): drop /leaky or "
                   "/strict to read the rate only", rate_per_name(it->rate.per), a->name,
                   stage_opts[st]);
}

/* conf_acl_check_stages - once ACLs are bound to stages: spam only in the data ACL (with a
 * scanner configured), a ratelimit that counts only where its per_* option can count */
void conf_acl_check_stages(struct conf_parser *p)
{
    for (int st = 0; st < ACL_NSTAGES; st++) {
        const struct acl *a = p->c->acl_for_stage[st];
        for (size_t i = 0; a != NULL && i < a->n; i++)
            for (size_t j = 0; j < a->stmts[i].n; j++)
                stage_item_check(p, (enum acl_stage)st, a, &a->stmts[i].items[j]);
    }
}
