/* fuzz_spam_reply.c - libFuzzer target for rspamd's reply parser (spam_reply.c): arbitrary
 * bytes as a /checkv2 body.  Properties: no crash, leak or out-of-bounds read (ASan); on
 * success the score and threshold are finite, the action and report printable ASCII within
 * their bounds, and the derived variables well-formed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == max)
        abort();
    for (size_t i = 0; i < n; i++)
        if (s[i] < 32 || s[i] > 126)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spam_verdict v;
    char err[200], score[32], si[32], bar[64];
    if (!spam_reply_parse((const char *)data, size, &v, err, sizeof(err))) {
        if (strnlen(err, sizeof(err)) == sizeof(err))
            abort();
        return 0;
    }
    if (!isfinite(v.score) || !isfinite(v.required))
        abort();
    check_printable(v.action, sizeof(v.action));
    check_printable(v.report, sizeof(v.report));
    spam_vars(&v, score, si, bar);
    if (strlen(bar) > 50 || strlen(bar) == 0 || strlen(score) >= 32 || strlen(si) >= 32)
        abort();
    (void)spam_is_spam(&v);
    return 0;
}
