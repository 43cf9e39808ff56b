/* hints_rec.c - encode and decode hints values (see store/store.h). */
#include "store.h"

#include <string.h>

#include "core/core.h"

#define HREC_STR_MAX 0xffffu /* strings carry a 16-bit length */

void hrec_w_init(struct hrec_w *w, uint8_t version)
{
    w->buf[0] = version;
    w->len = 1;
    w->bad = false;
}

/* put_le - append the n low bytes of v, least significant first */
static void put_le(struct hrec_w *w, uint64_t v, size_t n)
{
    if (w->bad || sizeof(w->buf) - w->len < n) {
        w->bad = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        w->buf[w->len++] = (unsigned char)(v >> (8 * i));
}

void hrec_put_u32(struct hrec_w *w, uint32_t v)
{
    put_le(w, v, 4);
}

void hrec_put_i64(struct hrec_w *w, int64_t v)
{
    put_le(w, (uint64_t)v, 8);
}

void hrec_put_str(struct hrec_w *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > HREC_STR_MAX) {
        w->bad = true;
        return;
    }
    put_le(w, n, 2);
    if (w->bad || sizeof(w->buf) - w->len < n) {
        w->bad = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

bool hrec_r_init(struct hrec_r *r, const void *p, size_t len, uint8_t version)
{
    r->p = p;
    r->len = len;
    r->off = 1;
    r->bad = len < 1 || r->p[0] != version;
    return !r->bad;
}

/* get_le - read n bytes, least significant first; 0 and bad when short */
static uint64_t get_le(struct hrec_r *r, size_t n)
{
    uint64_t v = 0;
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off++] << (8 * i);
    return v;
}

uint32_t hrec_get_u32(struct hrec_r *r)
{
    return (uint32_t)get_le(r, 4);
}

int64_t hrec_get_i64(struct hrec_r *r)
{
    return (int64_t)get_le(r, 8);
}

void hrec_get_str(struct hrec_r *r, char *out, size_t outsz)
{
    size_t n = (size_t)get_le(r, 2);
    if (outsz)
        out[0] = '\0';
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return;
    }
    if (outsz) {
        size_t k = n < outsz - 1 ? n : outsz - 1;
        memcpy(out, r->p + r->off, k);
        out[k] = '\0';
    }
    r->off += n;
}
