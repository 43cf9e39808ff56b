/* fuzz_mta_sts.c - libFuzzer target for the MTA-STS parsers (mta_sts_parse.c).  The input is
 * taken as a `_mta-sts` TXT record and as a policy file.  Properties: no crash or
 * out-of-bounds read (ASan); an accepted TXT record yields an id of 1 to 32 letters and
 * digits; an accepted policy has a known mode, max_age within the RFC's ceiling, at most
 * STS_MX_MAX patterns, each lower case, non-empty and terminated, and at least one unless the
 * mode is none; a host equal to a literal pattern matches it; "*.rest" matches "x.rest" but
 * not "rest" nor "x.y.rest" (unless another pattern says so); a refusal says why. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/tls_policy_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* has_pattern - p lists exactly this pattern */
static bool has_pattern(const struct sts_policy *p, const char *pat)
{
    for (size_t i = 0; i < p->nmx; i++)
        if (strcmp(p->mx[i], pat) == 0)
            return true;
    return false;
}

/* check_wildcard - "*.rest": one more label matches, none or two more do not */
static void check_wildcard(const struct sts_policy *p, const char *rest)
{
    char host[600], pat[600];
    snprintf(host, sizeof(host), "x.%s", rest);
    if (!sts_mx_match(p, host))
        abort();
    snprintf(pat, sizeof(pat), "*.y.%s", rest);
    snprintf(host, sizeof(host), "x.y.%s", rest);
    if (sts_mx_match(p, host) && !has_pattern(p, pat) && !has_pattern(p, host))
        abort();
    if (sts_mx_match(p, rest) && !has_pattern(p, rest)) {
        const char *dot = strchr(rest, '.');
        snprintf(pat, sizeof(pat), "*.%s", dot ? dot + 1 : "");
        if (dot == NULL || !has_pattern(p, pat))
            abort();
    }
}

static void check_policy(const struct sts_policy *p)
{
    if (p->mode > STS_ENFORCE || p->max_age > STS_MAX_AGE_MAX || p->nmx > STS_MX_MAX)
        abort();
    if (p->mode != STS_NONE && p->nmx == 0)
        abort();
    for (size_t i = 0; i < p->nmx; i++) {
        size_t len = strnlen(p->mx[i], sizeof(p->mx[i]));
        if (len == 0 || len == sizeof(p->mx[i]))
            abort();
        for (size_t j = 0; j < len; j++)
            if (isupper((unsigned char)p->mx[i][j]))
                abort();
        if (p->mx[i][0] != '*' && !sts_mx_match(p, p->mx[i]))
            abort();
        if (p->mx[i][0] == '*')
            check_wildcard(p, p->mx[i] + 2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char id[STS_ID_MAX + 1], why[200];
    if (sts_parse_txt(s, size, id)) {
        size_t len = strlen(id);
        if (len == 0 || len > STS_ID_MAX)
            abort();
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)id[i]))
                abort();
    }
    struct sts_policy *p = malloc(sizeof(*p));
    if (p == NULL)
        return 0;
    if (sts_parse_policy(s, size, p, why, sizeof(why)))
        check_policy(p);
    else if (strnlen(why, sizeof(why)) == 0) {
        abort();                                   /* a refusal always says why */
    }
    free(p);
    return 0;
}
