/* mta_sts_cache.c - MTA-STS policies kept in the hints ("mta-sts" database, key: the domain),
 * shared by every process, so that a policy fetched once is enforced by all of them for its
 * max_age even when the policy server is down (RFC 8461 5.1). */
#include "tls_policy_int.h"

#include <string.h>

#include "core/core.h"
#include "store/store.h"

#define STS_REC_VERSION 1

bool sts_policy_fresh(const struct sts_policy *p, int64_t now)
{
    return now >= p->fetched && now - p->fetched < (int64_t)p->max_age;
}

/* cache_key - the domain in lower case, without a trailing dot */
static bool cache_key(const char *domain, char *key, size_t sz)
{
    if (str_copy(key, domain, sz) >= sz || key[0] == '\0')
        return false;
    str_lower(key);
    size_t n = strlen(key);
    while (n > 0 && key[n - 1] == '.')
        key[--n] = '\0';
    return n > 0;
}

bool sts_cache_get(struct hints *h, const char *domain, struct sts_policy *p)
{
    unsigned char val[HINTS_VALUE_MAX];
    char key[256];
    size_t len;
    struct hrec_r r;
    memset(p, 0, sizeof(*p));
    if (!cache_key(domain, key, sizeof(key)) || !hints_get(h, HINTS_MTA_STS, key, val, sizeof(val), &len))
        return false;
    if (!hrec_r_init(&r, val, len, STS_REC_VERSION))
        return false;
    hrec_get_str(&r, p->id, sizeof(p->id));
    p->mode = (enum sts_mode)hrec_get_u32(&r);
    p->max_age = hrec_get_u32(&r);
    p->fetched = hrec_get_i64(&r);
    uint32_t nmx = hrec_get_u32(&r);
    for (uint32_t i = 0; i < nmx && i < STS_MX_MAX; i++)
        hrec_get_str(&r, p->mx[p->nmx++], sizeof(p->mx[0]));
    if (r.bad || p->mode > STS_ENFORCE || p->max_age > STS_MAX_AGE_MAX || nmx > STS_MX_MAX) {
        memset(p, 0, sizeof(*p));
        return false;
    }
    return true;
}

void sts_cache_put(struct hints *h, const char *domain, const struct sts_policy *p)
{
    char key[256];
    struct hrec_w w;
    if (!cache_key(domain, key, sizeof(key)))
        return;
    hrec_w_init(&w, STS_REC_VERSION);
    hrec_put_str(&w, p->id);
    hrec_put_u32(&w, (uint32_t)p->mode);
    hrec_put_u32(&w, p->max_age);
    hrec_put_i64(&w, p->fetched);
    hrec_put_u32(&w, (uint32_t)p->nmx);
    for (size_t i = 0; i < p->nmx; i++)
        hrec_put_str(&w, p->mx[i]);
    if (w.bad)
        log_main("MTA-STS policy of %s is too large to be cached", key);
    else
        hints_put(h, HINTS_MTA_STS, key, w.buf, w.len);
}
