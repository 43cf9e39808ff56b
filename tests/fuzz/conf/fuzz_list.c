/* fuzz_list.c - libFuzzer target for list parsing and matching.  Input: one byte choosing the
 * list kind, then the list text, then (after a newline) subjects to match, one per line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* match_all - match one subject against the list in every way its kind allows */
static void match_all(const struct list *l, const char *s)
{
    switch (l->kind) {
    case LIST_DOMAIN: (void)list_check_domain(l, s, NULL); break;
    case LIST_LOCAL_PART: (void)list_check_local_part(l, s, NULL); break;
    case LIST_ADDRESS: (void)list_check_address(l, s, NULL); break;
    case LIST_HOST:
        (void)list_check_host(l, s, "host.example.org", NULL);
        (void)list_check_host(l, "192.0.2.1", s, NULL);
        (void)list_check_host(l, NULL, NULL, NULL);
        break;
    }
}

/* has_lookup - a lookup item would open the file the input names: parse it, do not match */
static bool has_lookup(const struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].type == ITEM_LOOKUP)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size < 1)
        return 0;
    enum list_kind kind = (enum list_kind)(data[0] % 4);
    char *text = xstrndup((const char *)data + 1, size - 1); /* stops at a NUL */
    char *subjects = strchr(text, '\n');
    if (subjects != NULL)
        *subjects++ = '\0';
    /* a named list of the same kind, for "+n" items */
    static const char *const named_text[] = { "a.example : !*.b.example", "192.0.2.0/24 : ::1",
                                              "x@y.example : *@*.z.example", "postmaster" };
    struct named_list named = { .name = "n" };
    struct list_names names = { 0 };
    if (!list_parse(&named.list, kind, named_text[kind], NULL, 0, err, sizeof(err)))
        abort();
    names.domains = names.hosts = names.addresses = &named;
    names.ndomains = names.nhosts = names.naddresses = 1;
    struct list l;
    if (list_parse_names(&l, kind, text, &names, err, sizeof(err))) {
        for (char *s = has_lookup(&l) ? NULL : subjects, *next; s != NULL; s = next) {
            next = strchr(s, '\n');
            if (next != NULL)
                *next++ = '\0';
            match_all(&l, s);
        }
        if (!has_lookup(&l))
            match_all(&l, "");
        list_free(&l);
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort(); /* every failure has a message */
    }
    list_free(&named.list);
    free(text);
    return 0;
}
