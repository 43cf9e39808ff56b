/* conf_ratelimit.c - the value of a ratelimit condition, in Exim's syntax:
 *   LIMIT / PERIOD / [per_conn|per_mail|per_rcpt|per_byte|per_cmd] [/leaky|/strict|/readonly]
 *         [/count=N] / [KEY]
 * Options may come in any order; what is not an option is the key (segments joined with '/'),
 * text with $variables; no key means $sender_host_address. */
#include "conf.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define RATE_TEXT_MAX 2048   /* longest ratelimit value */

static const char *const per_names[] = {
    [RATE_PER_MAIL] = "per_mail", [RATE_PER_CONN] = "per_conn", [RATE_PER_RCPT] = "per_rcpt",
    [RATE_PER_BYTE] = "per_byte", [RATE_PER_CMD] = "per_cmd",
};

const char *rate_per_name(enum rate_per p)
{
    return (unsigned)p < ARRAY_LEN(per_names) ? per_names[p] : "?";
}

/* parse_number - a non-negative finite number with an optional K, M or G (1024-based) */
static bool parse_number(const char *s, double *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return false;
    double v = strtod(s, &end);
    switch (tolower((unsigned char)*end)) {
    case 'k': v *= 1024.0; end++; break;
    case 'm': v *= 1024.0 * 1024.0; end++; break;
    case 'g': v *= 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
    }
    if (*end != '\0' || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

/* trim - a segment without blanks at either end (in place) */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* set_per - one per_* option; a second, different one is a conflict */
static bool set_per(struct ratelimit_spec *r, bool *per_given, enum rate_per p, char *err,
                    size_t errsz)
{
    if (*per_given && r->per != p) {
        str_fmt(err, errsz, "conflicting per_* options (%s and %s)", per_names[r->per], per_names[p]);
        return false;
    }
    r->per = p;
    *per_given = true;
    return true;
}

/* set_mode - leaky, strict or readonly (noupdate is readonly, as in Exim) */
static bool set_mode(struct ratelimit_spec *r, bool *mode_seen, enum rate_mode m, char *err,
                     size_t errsz)
{
    if (*mode_seen && r->mode != m) {
        str_fmt(err, errsz, "conflicting update modes (leaky, strict, readonly)");
        return false;
    }
    r->mode = m;
    *mode_seen = true;
    r->mode_given = m != RATE_READONLY;
    return true;
}

/* option - one option segment; *is_key is set when the segment is not an option */
static bool option(struct ratelimit_spec *r, const char *o, bool *per_given, bool *mode_seen,
                   bool *is_key, char *err, size_t errsz)
{
    *is_key = false;
    for (size_t p = 0; p < ARRAY_LEN(per_names); p++)
        if (strcmp(o, per_names[p]) == 0)
            return set_per(r, per_given, (enum rate_per)p, err, errsz);
    if (strcmp(o, "leaky") == 0)
        return set_mode(r, mode_seen, RATE_LEAKY, err, errsz);
    if (strcmp(o, "strict") == 0)
        return set_mode(r, mode_seen, RATE_STRICT, err, errsz);
    if (strcmp(o, "readonly") == 0 || strcmp(o, "noupdate") == 0)
        return set_mode(r, mode_seen, RATE_READONLY, err, errsz);
    if (strncmp(o, "count=", 6) == 0) {
        r->count_given = true;
        if (parse_number(o + 6, &r->count))
            return true;
        str_fmt(err, errsz, "\"%.40s\" is not a positive number", o);
        return false;
    }
    if (strcmp(o, "per_addr") == 0 || strncmp(o, "unique=", 7) == 0) {
        str_fmt(err, errsz, "\"%.40s\" is not supported", o);
        return false;
    }
    *is_key = true;
    return true;
}

/* parse_limits - the first two segments: LIMIT and PERIOD */
static bool parse_limits(struct ratelimit_spec *r, char *limit, char *period, char *err,
                         size_t errsz)
{
    if (limit == NULL || !parse_number(limit, &r->limit)) {
        str_fmt(err, errsz, "\"%.40s\" is not a positive number (the limit)", limit ? limit : "");
        return false;
    }
    if (period == NULL || !parse_time(period, &r->period) || r->period == 0) {
        str_fmt(err, errsz, "\"%.40s\" is not a time (the period, e.g. 1h)", period ? period : "");
        return false;
    }
    r->limit_text = xstrdup(limit);
    r->period_text = xstrdup(period);
    return true;
}

/* parse_rest - the options and key segments after LIMIT / PERIOD */
static bool parse_rest(struct ratelimit_spec *r, char **segs, size_t n, char *err, size_t errsz)
{
    bool per_given = false, mode_seen = false, is_key;
    struct sbuf key;
    sbuf_init(&key);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (segs[i][0] == '\0')
            continue;
        ok = option(r, segs[i], &per_given, &mode_seen, &is_key, err, errsz);
        if (ok && is_key) {
            if (key.len)
                sbuf_addch(&key, '/');
            sbuf_addstr(&key, segs[i]);
        }
    }
    if (ok && key.len)
        ok = acl_text_compile(&r->key, key.s, err, errsz);
    sbuf_free(&key);
    return ok;
}

bool ratelimit_parse(struct ratelimit_spec *r, const char *text, char *err, size_t errsz)
{
    char buf[RATE_TEXT_MAX], *segs[64];
    size_t n = 0;
    memset(r, 0, sizeof(*r));
    r->count = 1.0;
    if (str_copy(buf, text, sizeof(buf)) >= sizeof(buf)) {
        str_fmt(err, errsz, "value too long");
        return false;
    }
    for (char *s = buf; s != NULL;) {
        char *slash = strchr(s, '/');
        if (n == ARRAY_LEN(segs)) {
            str_fmt(err, errsz, "too many '/'-separated parts");
            return false;
        }
        if (slash)
            *slash = '\0';
        segs[n++] = trim(s);
        s = slash ? slash + 1 : NULL;
    }
    bool ok = parse_limits(r, n > 0 ? segs[0] : NULL, n > 1 ? segs[1] : NULL, err, errsz) &&
              parse_rest(r, segs + 2, n > 2 ? n - 2 : 0, err, errsz);
    if (!ok)
        ratelimit_free(r);
    return ok;
}

void ratelimit_free(struct ratelimit_spec *r)
{
    free(r->limit_text);
    free(r->period_text);
    acl_text_free(&r->key);
    r->limit_text = r->period_text = NULL;
}

/* ratelimit_counts_in - can a per_* option count events in this ACL?  (Exim: per_mail and
 * per_byte from MAIL on, per_rcpt from RCPT on, per_conn and per_cmd anywhere.)  Elsewhere the
 * condition is read-only: it checks the stored rate without adding to it. */
bool ratelimit_counts_in(enum rate_per per, enum acl_stage stage)
{
    switch (per) {
    case RATE_PER_MAIL:
    case RATE_PER_BYTE: return stage >= ACL_MAIL;
    case RATE_PER_RCPT: return stage >= ACL_RCPT;
    default: return true;
    }
}
