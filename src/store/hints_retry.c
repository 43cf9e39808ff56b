/* hints_retry.c - next-hop retry state in the "retry" hints database. */
#include "store.h"

#include <string.h>

#include "core/core.h"

#define RETRY_REC_VERSION 1

bool hints_retry_get(struct hints *h, const char *key, struct retry_rec *r)
{
    unsigned char buf[HINTS_VALUE_MAX];
    size_t len;
    struct hrec_r rd;
    if (!hints_get(h, HINTS_RETRY, key, buf, sizeof(buf), &len) ||
        !hrec_r_init(&rd, buf, len, RETRY_REC_VERSION))
        return false;
    r->first_failure = (time_t)hrec_get_i64(&rd);
    r->last_try = (time_t)hrec_get_i64(&rd);
    r->next_try = (time_t)hrec_get_i64(&rd);
    r->failures = hrec_get_u32(&rd);
    hrec_get_str(&rd, r->last_error, sizeof(r->last_error));
    return !rd.bad;
}

bool hints_retry_put(struct hints *h, const char *key, const struct retry_rec *r)
{
    struct hrec_w w;
    char err[sizeof(r->last_error)];
    memcpy(err, r->last_error, sizeof(err)); /* the caller's copy need not be terminated */
    err[sizeof(err) - 1] = '\0';
    hrec_w_init(&w, RETRY_REC_VERSION);
    hrec_put_i64(&w, r->first_failure);
    hrec_put_i64(&w, r->last_try);
    hrec_put_i64(&w, r->next_try);
    hrec_put_u32(&w, r->failures);
    hrec_put_str(&w, err);
    return !w.bad && hints_put(h, HINTS_RETRY, key, w.buf, w.len);
}

bool hints_retry_del(struct hints *h, const char *key)
{
    return hints_del(h, HINTS_RETRY, key);
}
