/* callout_cache.c - the callout cache on the hints database (see policy/policy.h).  Keys are
 * "KIND<TAB>address-or-domain<TAB>host": neither addresses nor host names can contain a TAB,
 * so keys built from client input cannot collide or spill into each other. */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "store/store.h"

/* make_key - the database key; false if it would be too long or ambiguous */
static bool make_key(char *out, size_t sz, enum cc_kind kind, const char *key, const char *host)
{
    if (strchr(key, '\t') || strchr(host, '\t'))
        return false;
    return str_fmt(out, sz, "%c\t%s\t%s", (char)kind, key, host);
}

bool cc_is_mailbox_refusal(int code, const char *ecode)
{
    if (code < 500 || code > 599)
        return false;
    if (ecode && ecode[0])
        return strncmp(ecode, "5.1.", 4) == 0;
    return code == 550;
}

/* parse_value - "r 1732460000 550 5.1.1 text" */
static bool parse_value(const char *v, size_t len, struct cc_entry *e)
{
    char buf[600];
    char *end;
    if (len < 4 || len >= sizeof(buf))
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    if ((buf[0] != CC_ACCEPTED && buf[0] != CC_REFUSED) || buf[1] != ' ')
        return false;
    e->result = (enum cc_result)buf[0];
    long long exp = strtoll(buf + 2, &end, 10);
    if (*end != ' ' && *end != '\0')
        return false;
    e->expires = (time_t)exp;
    str_copy(e->reason, *end ? end + 1 : "", sizeof(e->reason));
    return true;
}

/* split_key - fill kind/key/host from a database key */
static bool split_key(const char *k, struct cc_entry *e)
{
    const char *t1 = strchr(k, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (t1 != k + 1 || t2 == NULL)
        return false;
    e->kind = (enum cc_kind)k[0];
    size_t n = (size_t)(t2 - t1 - 1);
    if (n >= sizeof(e->key))
        return false;
    memcpy(e->key, t1 + 1, n);
    e->key[n] = '\0';
    str_copy(e->host, t2 + 1, sizeof(e->host));
    return true;
}

bool cc_get(struct hints *h, enum cc_kind kind, const char *key, const char *host, struct cc_entry *e)
{
    char k[HINTS_KEY_MAX + 1], v[600];
    size_t len;
    if (!make_key(k, sizeof(k), kind, key, host) || !hints_get(h, HINTS_CALLOUT, k, v, sizeof(v), &len))
        return false;
    memset(e, 0, sizeof(*e));
    if (!split_key(k, e) || !parse_value(v, len, e))
        return false;
    if (e->expires <= time(NULL)) {
        hints_del(h, HINTS_CALLOUT, k);
        return false;
    }
    return true;
}

bool cc_put(struct hints *h, const struct cc_entry *e)
{
    char k[HINTS_KEY_MAX + 1], v[600], reason[400];
    size_t j = 0;
    for (size_t i = 0; e->reason[i] && j + 1 < sizeof(reason); i++)   /* one line */
        reason[j++] = (e->reason[i] == '\n' || e->reason[i] == '\r') ? ' ' : e->reason[i];
    reason[j] = '\0';
    if (!make_key(k, sizeof(k), e->kind, e->key, e->host))
        return false;
    str_fmt(v, sizeof(v), "%c %lld %s", (char)e->result, (long long)e->expires, reason);
    return hints_put(h, HINTS_CALLOUT, k, v, strlen(v));
}

struct each_ctx {
    cc_each_fn fn;
    void *arg;
};

static bool each_cb(void *arg, const char *key, const void *val, size_t len)
{
    struct each_ctx *x = arg;
    struct cc_entry e;
    memset(&e, 0, sizeof(e));
    if (split_key(key, &e) && parse_value(val, len, &e))
        x->fn(x->arg, &e);
    return true;
}

bool cc_each(struct hints *h, cc_each_fn fn, void *arg)
{
    struct each_ctx x = { fn, arg };
    return hints_each(h, HINTS_CALLOUT, "", each_cb, &x);
}

struct purge_ctx {
    const char *domain;
    char **keys;
    size_t n, cap;
};

/* entry_domain - the domain an entry belongs to */
static const char *entry_domain(const struct cc_entry *e)
{
    const char *at = e->kind == CC_ADDRESS ? strrchr(e->key, '@') : NULL;
    return at ? at + 1 : e->key;
}

static void purge_collect(void *arg, const struct cc_entry *e)
{
    struct purge_ctx *p = arg;
    char k[HINTS_KEY_MAX + 1];
    if (p->domain && strcasecmp(entry_domain(e), p->domain) != 0)
        return;
    if (!make_key(k, sizeof(k), e->kind, e->key, e->host))
        return;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->keys = xreallocarray(p->keys, p->cap, sizeof(*p->keys));
    }
    p->keys[p->n++] = xstrdup(k);
}

size_t cc_purge(struct hints *h, const char *domain)
{
    struct purge_ctx p = { domain, NULL, 0, 0 };
    size_t removed = 0;
    if (domain == NULL)
        return hints_del_prefix(h, HINTS_CALLOUT, "");
    cc_each(h, purge_collect, &p);
    for (size_t i = 0; i < p.n; i++) {
        if (hints_del(h, HINTS_CALLOUT, p.keys[i]))
            removed++;
        free(p.keys[i]);
    }
    free(p.keys);
    return removed;
}
