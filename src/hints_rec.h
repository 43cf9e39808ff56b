/* hints_rec.h - a small codec for hints values: a version byte, then little-endian integers
 * and length-prefixed strings, so records survive a change of struct layout or compiler. */
#ifndef TANDEM_HINTS_REC_H
#define TANDEM_HINTS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hints.h"

/* Writer: fields are appended; overflowing HINTS_VALUE_MAX sets bad. */
struct hrec_w {
    unsigned char buf[HINTS_VALUE_MAX];
    size_t len;
    bool bad;
};
void hrec_w_init(struct hrec_w *w, uint8_t version);
void hrec_put_u32(struct hrec_w *w, uint32_t v);
void hrec_put_i64(struct hrec_w *w, int64_t v);
void hrec_put_str(struct hrec_w *w, const char *s);

/* Reader: a short or malformed record sets bad; reads after that return zero/empty. */
struct hrec_r {
    const unsigned char *p;
    size_t len, off;
    bool bad;
};
/* False (and bad) when the record is empty or of another version. */
bool hrec_r_init(struct hrec_r *r, const void *p, size_t len, uint8_t version);
uint32_t hrec_get_u32(struct hrec_r *r);
int64_t hrec_get_i64(struct hrec_r *r);
/* Copy a string into out (truncated to outsz - 1 bytes; always terminated). */
void hrec_get_str(struct hrec_r *r, char *out, size_t outsz);

#endif
