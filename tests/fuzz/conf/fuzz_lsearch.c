/* fuzz_lsearch.c - libFuzzer target for the lsearch file parser and its hash table.  Input: an
 * lsearch file.  Checks: every key in the table is found again and finds its own entry (the
 * first one of the file); lookups of pieces of the input never misbehave. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/lookup_int.h"
#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_slots - each stored key is found, at its own slot */
static void check_slots(const struct lookup_table *t)
{
    size_t n = 0;
    for (size_t i = 0; t->slots != NULL && i <= t->mask; i++) {
        if (t->slots[i].off1 == 0)
            continue;
        const char *k = t->arena + t->slots[i].off1 - 1;
        size_t klen = strlen(k);
        for (size_t j = 0; j < klen; j++)
            if (k[j] >= 'A' && k[j] <= 'Z')
                abort(); /* keys are stored in lower case */
        if (table_find(t, k, klen) != k + klen + 1)
            abort();
        n++;
    }
    if (n != t->nkeys)
        abort();
}

/* probe_pieces - look up each line's first word, lower-cased, and a few odd keys */
static void probe_pieces(const struct lookup_table *t, const uint8_t *data, size_t size)
{
    char key[LOOKUP_KEY_MAX];
    size_t k = 0;
    for (size_t i = 0; i <= size; i++) {
        char c = i < size ? (char)data[i] : '\n';
        if (c == '\n' || c == ' ' || c == ':' || c == '\0' || k + 1 >= sizeof(key)) {
            (void)table_find(t, key, k);
            k = 0;
            continue;
        }
        key[k++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    (void)table_find(t, "", 0);
    (void)table_find(t, "*@example.org", 13);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    struct lookup_table t;
    table_init(&t);
    if (!lsearch_parse((const char *)data, size, &t, err, sizeof(err)))
        abort(); /* only files over 4 GiB fail */
    table_build(&t);
    check_slots(&t);
    probe_pieces(&t, data, size);
    table_free(&t);
    return 0;
}
