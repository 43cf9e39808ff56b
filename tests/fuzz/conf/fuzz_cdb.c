/* fuzz_cdb.c - libFuzzer target for the cdb reader.  Input: a cdb file image (any bytes).
 * Every slot of every hash table is followed and the key of each record it points to (when
 * the record lies inside the image) is looked up; every answer must stay inside the image. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/lookup_int.h"
#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS_MAX 4096 /* slots followed per input: keeps each run short */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* lookup - cdb_get, with its answer checked against the image's bounds */
static void lookup(const uint8_t *data, size_t size, const char *key, size_t klen)
{
    const uint8_t *v = NULL;
    uint32_t vl = 0;
    int r = cdb_get(data, size, key, klen, &v, &vl);
    if (r < -1 || r > 1)
        abort();
    if (r == 1 && (v < data || v > data + size || vl > (size_t)(data + size - v)))
        abort();
}

/* record_keys - look up the key of every in-bounds record the tables point to */
static void record_keys(const uint8_t *data, size_t size)
{
    size_t followed = 0;
    for (unsigned t = 0; t < 256 && followed < SLOTS_MAX; t++) {
        uint64_t pos = le32(data + 8 * t), slots = le32(data + 8 * t + 4);
        for (uint64_t s = 0; s < slots && followed < SLOTS_MAX; s++, followed++) {
            uint64_t at = pos + 8 * s;
            if (at + 8 > size)
                break;
            uint64_t rpos = le32(data + at + 4);
            if (rpos + 8 > size)
                continue;
            uint64_t klen = le32(data + rpos);
            if (rpos + 8 + klen <= size && klen < LOOKUP_KEY_MAX)
                lookup(data, size, (const char *)data + rpos + 8, (size_t)klen);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so that ASan sees any read past the end */
    uint8_t *img = xmalloc(size ? size : 1);
    memcpy(img, data, size);
    bool ok = cdb_header_ok(img, size);
    lookup(img, size, "a@example.org", 13);
    lookup(img, size, "", 0);
    if (ok)
        record_keys(img, size);
    free(img);
    return 0;
}
