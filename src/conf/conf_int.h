/* conf_int.h - state shared by the configuration parser's files (conf_parse.c reads lines and
 * sections, conf_options.c the main options, conf_route.c routes, conf_acl.c ACLs). */
#ifndef TANDEM_CONF_INT_H
#define TANDEM_CONF_INT_H

#include <stdio.h>

#include "conf.h"
#include "core/core.h"

#define CONF_MAX_OPTIONS 96  /* capacity of the per-option bookkeeping below */
#define CONF_MAX_PENDING 8   /* host-list options awaiting the named lists */
#define CONF_ERR_MAX 512     /* longest error message */

enum conf_section { SECT_MAIN, SECT_ROUTES, SECT_ACL, SECT_UNKNOWN };

/* A host-list option's text, compiled once every named list is known. */
struct pending_list {
    struct list *dst;
    char *text;
    const char *option;
    int line;
};

/* One error, kept until the end so that they can be reported in line order. */
struct conf_err {
    int line;
    size_t seq;
    char *msg;
};

struct conf_parser {
    struct conf *c;
    const char *path;
    struct conf_err *errv;
    size_t nerrs;
    int line;                          /* first physical line of the current logical line */
    enum conf_section section;
    bool main_done;                    /* named lists compiled, defaults applied */
    bool seen_routes, seen_acl;
    int opt_line[CONF_MAX_OPTIONS];    /* where each main option was set, 0 = default */
    struct pending_list pending[CONF_MAX_PENDING];
    size_t npending;
    char **list_text[3];               /* named lists' text per kind, compiled at main end */
    struct acl *cur_acl;               /* the ACL being parsed, NULL before the first name */
    bool acl_skip;                     /* ignore statements until the next ACL name */
};

/* Read and parse the whole file (conf_parse.c). */
void conf_read(struct conf_parser *p, FILE *f);

/* Record "FILE:LINE: message" (line 0 for errors not tied to a line). */
void conf_error(struct conf_parser *p, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Main options (conf_options.c): set one from "name = value", apply the defaults of those
 * not set, and check cross-references once the whole file is read. */
void conf_option_line(struct conf_parser *p, const char *name, const char *value);
void conf_options_defaults(struct conf_parser *p);
void conf_options_finish(struct conf_parser *p);
bool conf_is_option(const char *name);

/* Named lists (conf_parse.c): every named list, for resolving "+name". */
void conf_list_names(const struct conf *c, struct list_names *names);
/* Compile a list, reporting errors as "what: message" on the current line. */
bool conf_compile_list(struct conf_parser *p, struct list *l, enum list_kind kind,
                       const char *text, const char *what, int line);

/* Routes (conf_route.c) and ACLs (conf_acl.c): one logical line each. */
void conf_route_line(struct conf_parser *p, const char *line);
void conf_acl_line(struct conf_parser *p, const char *line);
/* After the stages are bound: conditions used in ACLs where they cannot work. */
void conf_acl_check_stages(struct conf_parser *p);
void conf_route_free(struct route *r);

/* Small shared helpers (conf_parse.c). */
/* Strip surrounding double quotes (\" inside is a quote); NULL if unterminated. */
char *conf_unquote(const char *value);
bool conf_parse_port(const char *s, uint16_t *port);
/* spamd_address (conf_spamd.c). */
bool conf_parse_spamd(struct spamd_addr *sa, const char *value, char *err, size_t errsz);
bool conf_hostname_ok(const char *s);

#endif
