/* conf_parse.c - read the configuration file into logical lines (comments, continuations),
 * dispatch them by section, and collect and compile the named lists. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "conf_int.h"

#define CONF_LINE_MAX 65536 /* longest logical line, continuations included */

static const char *const list_kind_words[3] = { "domainlist", "hostlist", "addresslist" };

struct reader {
    FILE *f;
    char *buf;
    size_t cap;
    int phys; /* physical line number of buf */
};

/* strip_comment - cut at a '#' that starts the line or follows white space, outside quotes */
static void strip_comment(char *s)
{
    bool quoted = false;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '#' && !quoted && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

/* physical - read one physical line, newline and comment removed, blanks trimmed at the
 * end; sets *comment when the line was only a comment.  Returns NULL at end of file. */
static char *physical(struct conf_parser *p, struct reader *rd, bool *comment)
{
    ssize_t n = getline(&rd->buf, &rd->cap, rd->f);
    if (n < 0)
        return NULL;
    rd->phys++;
    char *s = rd->buf;
    if (memchr(s, '\0', (size_t)n) != NULL) {
        conf_error(p, rd->phys, "NUL byte in line");
        s[0] = '\0';
    }
    while (isspace((unsigned char)*s))
        s++;
    *comment = *s == '#';
    strip_comment(s);
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

/* logical - the next non-blank logical line: a line ending in '\' continues on the next
 * (whose leading blanks are dropped); comment lines inside a continuation are skipped and a
 * blank line ends it.  Returns false at end of file. */
static bool logical(struct conf_parser *p, struct reader *rd, struct sbuf *out)
{
    bool cont = false, comment, too_long = false;
    sbuf_reset(out);
    for (;;) {
        char *s = physical(p, rd, &comment);
        if (s == NULL)
            return cont;
        if (*s == '\0' && (comment || !cont))
            continue;
        if (*s == '\0')
            return true;
        if (!cont)
            p->line = rd->phys;
        size_t len = strlen(s);
        bool more = s[len - 1] == '\\';
        if (more)
            s[--len] = '\0';
        if (out->len + len > CONF_LINE_MAX && !too_long) {
            conf_error(p, p->line, "line longer than %d bytes", CONF_LINE_MAX);
            too_long = true;
        }
        if (!too_long)
            sbuf_add(out, s, len);
        if (!more) {
            if (too_long)
                sbuf_reset(out);
            return true;
        }
        cont = true;
    }
}

void conf_list_names(const struct conf *c, struct list_names *names)
{
    names->domains = c->domainlists;
    names->ndomains = c->ndomainlists;
    names->hosts = c->hostlists;
    names->nhosts = c->nhostlists;
    names->addresses = c->addresslists;
    names->naddresses = c->naddresslists;
    names->lookups = c->lookups;
    names->line = 0;
}

/* conf_compile_list - compile a list against every named list, reporting errors */
bool conf_compile_list(struct conf_parser *p, struct list *l, enum list_kind kind,
                       const char *text, const char *what, int line)
{
    char err[CONF_ERR_MAX];
    struct list_names names;
    conf_list_names(p->c, &names);
    names.line = line;
    if (list_parse_names(l, kind, text, &names, err, sizeof(err)))
        return true;
    conf_error(p, line, "%s: %s", what, err);
    return false;
}

/* named_array - the conf's array and count of named lists of one kind */
static void named_array(struct conf *c, int kind, struct named_list ***v, size_t **n)
{
    struct named_list **arrays[3] = { &c->domainlists, &c->hostlists, &c->addresslists };
    size_t *counts[3] = { &c->ndomainlists, &c->nhostlists, &c->naddresslists };
    *v = arrays[kind];
    *n = counts[kind];
}

/* name_ok - named list and ACL names: letters, digits, '_' and '-' */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* named_list_line - "domainlist NAME = items" (text kept until the main section ends) */
static void named_list_line(struct conf_parser *p, int kind, const char *rest)
{
    struct named_list **v;
    size_t *n;
    size_t len = strcspn(rest, " \t=");
    const char *eq = rest + len + strspn(rest + len, " \t");
    if (!name_ok(rest, len) || *eq != '=') {
        conf_error(p, p->line, "%s: expected \"%s NAME = items\"", list_kind_words[kind],
                   list_kind_words[kind]);
        return;
    }
    named_array(p->c, kind, &v, &n);
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i].name) == len && strncmp((*v)[i].name, rest, len) == 0) {
            conf_error(p, p->line, "%s \"%s\" is defined twice (first at line %d)",
                       list_kind_words[kind], (*v)[i].name, (*v)[i].line);
            return;
        }
    *v = xreallocarray(*v, *n + 1, sizeof(**v));
    p->list_text[kind] = xreallocarray(p->list_text[kind], *n + 1, sizeof(char *));
    struct named_list *nl = &(*v)[*n];
    memset(nl, 0, sizeof(*nl));
    nl->name = xstrndup(rest, len);
    nl->line = p->line;
    nl->list.kind = (enum list_kind)kind;
    p->list_text[kind][(*n)++] = xstrdup(eq + 1);
}

/* compile_named - compile every named list now that all names are known, and check loops */
static void compile_named(struct conf_parser *p)
{
    char what[CONF_ERR_MAX];
    struct list_names names;
    for (int k = 0; k < 3; k++) {
        struct named_list **v;
        size_t *n;
        named_array(p->c, k, &v, &n);
        for (size_t i = 0; i < *n; i++) {
            str_fmt(what, sizeof(what), "%s %s", list_kind_words[k], (*v)[i].name);
            conf_compile_list(p, &(*v)[i].list, (enum list_kind)k, p->list_text[k][i], what,
                              (*v)[i].line);
            free(p->list_text[k][i]);
        }
        free(p->list_text[k]);
        p->list_text[k] = NULL;
    }
    const struct named_list *bad = NULL;
    conf_list_names(p->c, &names);
    if (!list_names_check(&names, &bad))
        conf_error(p, bad->line, "named list \"%s\" refers to itself, directly or through other "
                   "lists, or nests more than 16 deep", bad->name);
}

/* main_finish - end of the main options: defaults, named lists, host-list options */
static void main_finish(struct conf_parser *p)
{
    if (p->main_done)
        return;
    p->main_done = true;
    conf_options_defaults(p);
    compile_named(p);
    for (size_t i = 0; i < p->npending; i++) {
        struct pending_list *pl = &p->pending[i];
        conf_compile_list(p, pl->dst, LIST_HOST, pl->text, pl->option, pl->line);
        free(pl->text);
    }
    p->npending = 0;
}

/* main_line - "name = value", or a named list definition */
static void main_line(struct conf_parser *p, const char *line)
{
    size_t len = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *rest = line + len + strspn(line + len, " \t");
    char name[64];
    for (int k = 0; k < 3; k++)
        if (len == strlen(list_kind_words[k]) && strncmp(line, list_kind_words[k], len) == 0 &&
            rest != line + len) {
            named_list_line(p, k, rest);
            return;
        }
    if (len == 0 || *rest != '=') {
        conf_error(p, p->line, "syntax error: expected \"option = value\", got \"%.40s\"", line);
        return;
    }
    str_copy(name, line, len + 1 < sizeof(name) ? len + 1 : sizeof(name));
    rest++;
    rest += strspn(rest, " \t");
    conf_option_line(p, name, rest);
}

/* begin_line - "begin routes" / "begin acl" switch sections; false if not a begin line */
static bool begin_line(struct conf_parser *p, const char *line)
{
    if (strncmp(line, "begin", 5) != 0 || (line[5] != '\0' && !isspace((unsigned char)line[5])))
        return false;
    const char *name = line + 5 + strspn(line + 5, " \t");
    main_finish(p);
    p->cur_acl = NULL;
    p->acl_skip = false;
    if (strcmp(name, "routes") == 0 || strcmp(name, "acl") == 0) {
        bool *seen = name[0] == 'r' ? &p->seen_routes : &p->seen_acl;
        if (*seen)
            conf_error(p, p->line, "section \"%s\" begins twice", name);
        *seen = true;
        p->section = name[0] == 'r' ? SECT_ROUTES : SECT_ACL;
    } else {
        conf_error(p, p->line, "unknown section \"begin %.40s\" (expected routes or acl)", name);
        p->section = SECT_UNKNOWN;
    }
    return true;
}

/* misplaced - a named list or main option after the first begin */
static bool misplaced(struct conf_parser *p, const char *line)
{
    char word[64];
    size_t len = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
    if (p->section == SECT_MAIN || len == 0 || len >= sizeof(word))
        return false;
    str_copy(word, line, len + 1);
    for (int k = 0; k < 3; k++)
        if (strcmp(word, list_kind_words[k]) == 0 && isspace((unsigned char)line[len])) {
            conf_error(p, p->line, "%s: named lists must be defined before the first \"begin\"",
                       word);
            return true;
        }
    if (line[len + strspn(line + len, " \t")] != '=' || !conf_is_option(word))
        return false;
    conf_error(p, p->line, "%s: main options must come before the first \"begin\"", word);
    return true;
}

/* conf_read - parse the whole file */
void conf_read(struct conf_parser *p, FILE *f)
{
    struct reader rd = { .f = f };
    struct sbuf line;
    sbuf_init(&line);
    while (logical(p, &rd, &line)) {
        if (line.len == 0)
            continue;
        if (begin_line(p, line.s) || misplaced(p, line.s))
            continue;
        switch (p->section) {
        case SECT_MAIN: main_line(p, line.s); break;
        case SECT_ROUTES: conf_route_line(p, line.s); break;
        case SECT_ACL: conf_acl_line(p, line.s); break;
        case SECT_UNKNOWN: break;
        }
    }
    main_finish(p);
    sbuf_free(&line);
    free(rd.buf);
}

/* conf_unquote - a value without its enclosing double quotes */
char *conf_unquote(const char *value)
{
    size_t len = strlen(value);
    if (value[0] != '"')
        return xstrdup(value);
    if (len < 2 || value[len - 1] != '"' || value[len - 2] == '\\')
        return NULL;
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 1; i + 1 < len; i++) {
        if (value[i] == '\\' && value[i + 1] == '"' && i + 2 < len)
            i++;
        sbuf_addch(&b, value[i]);
    }
    return sbuf_steal(&b);
}

/* conf_parse_port - a TCP port, 1 to 65535 */
bool conf_parse_port(const char *s, uint16_t *port)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 5 || s[n] != '\0')
        return false;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* conf_hostname_ok - letters, digits, "-", "_" and non-empty dot-separated labels */
bool conf_hostname_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' || strstr(s, "..") != NULL)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
            return false;
    return true;
}
