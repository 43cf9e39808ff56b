/* fuzz_policy_values.c - libFuzzer target for the values of the dnslists and ratelimit
 * conditions (conf_dnsl.c, conf_ratelimit.c).  The first byte picks the parser; the rest is
 * the value.  Properties: no crash or leak (ASan); a dnslists value that parses has 1 to
 * DNSL_ZONES_MAX zones with valid lower-case names and bounded values, and its matching of
 * addresses taken from the input agrees with its own inversion; a ratelimit value that parses
 * has a finite non-negative limit and a positive period. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dnsl(const struct dnsl_spec *s, const uint8_t *data, size_t size)
{
    uint32_t addrs[4];
    size_t n = size / 4 > 4 ? 4 : size / 4;
    memcpy(addrs, data, n * 4);
    if (s->n == 0 || s->n > DNSL_ZONES_MAX)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        struct dnsl_zone z = s->zones[i];
        size_t len = strlen(z.zone);
        if (len == 0 || z.nvals > DNSL_VALUES_MAX || z.zone[0] == '.' || z.zone[len - 1] == '.')
            abort();
        for (size_t j = 0; j < len; j++)
            if (z.zone[j] >= 'A' && z.zone[j] <= 'Z')
                abort();
        bool m = dnsl_values_match(&z, addrs, n);
        if (z.match != DNSL_ANY_RECORD && n > 0) {
            z.invert = !z.invert;
            if (dnsl_values_match(&z, addrs, n) == m)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[200];
    if (data[0] & 1) {
        struct ratelimit_spec r;
        if (ratelimit_parse(&r, text, err, sizeof(err))) {
            if (!isfinite(r.limit) || r.limit < 0 || r.period == 0 || r.limit_text == NULL)
                abort();
            ratelimit_free(&r);
        }
    } else {
        struct dnsl_spec s;
        if (dnsl_parse(&s, text, err, sizeof(err))) {
            check_dnsl(&s, data, size);
            dnsl_free(&s);
        }
    }
    free(text);
    return 0;
}
