/* lookup_int.h - lookups in lists, private to conf: an lsearch file loaded into a hash table
 * (lookup_table.c, lookup_lsearch.c), a cdb file mapped and read in place (lookup_cdb.c), and
 * the handle that keeps either fresh (lookup.c). */
#ifndef TANDEM_LOOKUP_INT_H
#define TANDEM_LOOKUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define LOOKUP_KEY_MAX 1024          /* longest key looked up (an address is at most 256) */
#define LSEARCH_FILE_MAX (1u << 30)  /* larger lsearch files are refused: use cdb */

/* ---- lookup_table: keys (lower case) and their values in one arena, found by hashing. */

struct lt_slot {
    uint32_t tag;   /* high bits of the key's hash: most misses never touch the arena */
    uint32_t off1;  /* arena offset + 1 of "key\0value\0"; 0 = empty slot */
};

struct lookup_table {
    char *arena;            /* "key\0value\0" entries, keys lower-cased */
    size_t len, cap;
    uint32_t *entries;      /* arena offsets in file order, until table_build */
    size_t nentries;
    struct lt_slot *slots;  /* open addressing, linear probing, a power of two */
    size_t mask;
    size_t nkeys;           /* distinct keys */
    bool arena_mapped, slots_mapped;  /* large ones are mappings (huge pages), not malloc */
};

void table_init(struct lookup_table *t);
/* Add an entry (the key is lower-cased here); false once the arena would pass 4 GiB. */
bool table_add(struct lookup_table *t, const char *key, size_t klen, const char *val, size_t vlen);
/* Build the index; the first entry of a key wins, as in a linear search of the file. */
void table_build(struct lookup_table *t);
/* The value of a key given in lower case, or NULL. */
const char *table_find(const struct lookup_table *t, const char *key, size_t klen);
/* Bytes the table holds (arena and slots). */
size_t table_bytes(const struct lookup_table *t);
void table_free(struct lookup_table *t);

/* ---- lookup_lsearch: Exim's lsearch file format, parsed into a table. */

/* Add every "key: value" of the file's text to t (then table_build).  False only when the
 * table would be too large (err says so). */
bool lsearch_parse(const char *text, size_t len, struct lookup_table *t, char *err, size_t errsz);

/* ---- lookup_cdb: the constant database format of cdb(5) (djb's, as tinycdb writes it). */

#define CDB_HEADER_SIZE 2048

/* Whether buf is a plausible cdb file: the header fits and each of its 256 hash tables lies
 * inside the file.  Records are checked when read. */
bool cdb_header_ok(const uint8_t *buf, size_t len);
/* Find key: 1 found (*val, *vlen point into buf), 0 not found, -1 the file is corrupt. */
int cdb_get(const uint8_t *buf, size_t len, const char *key, size_t klen, const uint8_t **val,
            uint32_t *vlen);

/* ---- list_lookup: list items that are lookups. */

/* Does text look like a lookup item ("TYPE;...")? */
bool list_is_lookup(const char *text);
/* Fill it for a lookup item of a list of kind; false with a message for an unknown type or a
 * path that is not absolute.  The file is shared through names->lookups when there is one. */
bool list_lookup_item(struct list_item *it, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz);

/* ---- lookup: one file named in the configuration, shared by every item that names it. */

enum lookup_type { LOOKUP_LSEARCH, LOOKUP_CDB };
enum lookup_status { LOOKUP_NOT_FOUND, LOOKUP_FOUND, LOOKUP_DEFER };

/* The lookup for type and path in set (a new one if the set has none yet; a private one,
 * owned by the caller, when set is NULL). */
struct lookup *lookup_get(struct lookup_set *set, enum lookup_type type, const char *path,
                          int line);
/* Release a lookup that lookup_get made with a NULL set. */
void lookup_free(struct lookup *lk);

/* Look key up (lower case already): a missing, unreadable or corrupt file defers.  The file
 * is checked for a change at most once a second and reloaded when it changed. */
enum lookup_status lookup_find(struct lookup *lk, const char *key, size_t klen);
/* Why the last lookup deferred: "lsearch;/path: cannot open: ...". */
const char *lookup_error(const struct lookup *lk);

/* The lookups of one configuration (conf.c owns the set). */
struct lookup_set *lookup_set_new(void);
void lookup_set_free(struct lookup_set *set);
/* Load every file now (a process about to serve), logging the failures. */
void lookup_set_open(struct lookup_set *set);
/* For check-config: a "CONF:LINE: warning: ..." line in out for each file that would defer
 * now.  Nothing is logged; the lookups' own state is left as it is. */
void lookup_set_check(struct lookup_set *set, const char *conf_path, struct sbuf *out);

#endif
