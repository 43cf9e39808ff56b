/* lookup_cdb.c - read djb's constant database format (cdb(5), as tinycdb's `cdb -c` writes it)
 * from a file image in memory.  Every offset and length comes from the file, so each is checked
 * against the image before use; a corrupt file is reported, never read out of bounds.
 *
 * Layout (all numbers 32-bit little-endian): 256 (position, slots) pairs = 2048 bytes; records
 * (key length, value length, key, value); then the hash tables, each slot a (hash, record
 * position) pair, position 0 meaning empty.  The hash is h = 5381; h = (h * 33) ^ byte;
 * table h % 256, first slot (h / 256) % slots, then linear probing. */
#include "lookup_int.h"

#include <string.h>

/* u32 - a little-endian 32-bit number at p */
static inline uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* cdb_hash - the format's hash of a key */
static uint32_t cdb_hash(const char *key, size_t klen)
{
    uint32_t h = 5381;
    for (size_t i = 0; i < klen; i++)
        h = ((h << 5) + h) ^ (unsigned char)key[i];
    return h;
}

/* table_ok - hash table i lies inside the file */
static bool table_ok(const uint8_t *buf, size_t len, unsigned i)
{
    uint64_t pos = u32(buf + 8 * i), slots = u32(buf + 8 * i + 4);
    if (slots == 0)
        return true;
    return pos >= CDB_HEADER_SIZE && pos + slots * 8 <= len;
}

bool cdb_header_ok(const uint8_t *buf, size_t len)
{
    if (len < CDB_HEADER_SIZE)
        return false;
    for (unsigned i = 0; i < 256; i++)
        if (!table_ok(buf, len, i))
            return false;
    return true;
}

/* record_match - 1 if the record at pos has key, 0 if another key, -1 if it is out of bounds */
static int record_match(const uint8_t *buf, size_t len, uint64_t pos, const char *key,
                        size_t klen, const uint8_t **val, uint32_t *vlen)
{
    if (pos < CDB_HEADER_SIZE || pos + 8 > len)
        return -1;
    uint64_t rk = u32(buf + pos), rv = u32(buf + pos + 4);
    if (pos + 8 + rk + rv > len)
        return -1;
    if (rk != klen || memcmp(buf + pos + 8, key, klen) != 0)
        return 0;
    *val = buf + pos + 8 + rk;
    *vlen = (uint32_t)rv;
    return 1;
}

int cdb_get(const uint8_t *buf, size_t len, const char *key, size_t klen, const uint8_t **val,
            uint32_t *vlen)
{
    if (len < CDB_HEADER_SIZE)
        return -1;
    uint32_t h = cdb_hash(key, klen);
    unsigned t = h & 255;
    if (!table_ok(buf, len, t))
        return -1;
    uint64_t tpos = u32(buf + 8 * t), slots = u32(buf + 8 * t + 4);
    uint64_t start = (h >> 8) % (slots ? slots : 1);
    for (uint64_t i = 0; i < slots; i++) {
        const uint8_t *slot = buf + tpos + 8 * ((start + i) % slots);
        uint32_t shash = u32(slot), rpos = u32(slot + 4);
        if (rpos == 0)
            return 0;
        if (shash != h)
            continue;
        int m = record_match(buf, len, rpos, key, klen, val, vlen);
        if (m != 0)
            return m;
    }
    return 0;
}
