/* lookups.c - what a lookup in a list costs: a list of ten addresses against one of a million,
 * as an lsearch file (hash table) and as a cdb file (built by tinycdb's `cdb -c`), next to a
 * plain list of ten literal items.  Each lookup goes through the list code as an ACL's
 * `recipients =` condition does (lower-casing, the whole address, then "*@domain" on a miss).
 *
 * Usage: lookups [-n ENTRIES] [-q QUERIES] [-r ROUNDS]      (make bench-lookups runs it)
 *   -n  entries of the big list (default 1000000)
 *   -q  distinct query keys per measurement, hits and misses each (default 200000)
 *   -r  rounds over those keys (default 5)
 *
 * Prints one table row per list: entries, load time, memory (growth of the process's resident
 * set while loading and querying; for cdb that is the file's pages mapped from the page
 * cache, shared by every process), and nanoseconds per lookup for hits and for misses, the
 * best of the rounds (other work on the machine only ever adds time).
 * Not a test: nothing fails on a number.  Files go to a temporary directory, removed after. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"

#define KEY_MAX 48

struct opts {
    unsigned entries, queries, rounds;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rss_mib - the process's resident set */
static double rss_mib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* key_of - the i-th address of a list (mixed case in the file, as people write them) */
static void key_of(char *buf, unsigned i, bool upper)
{
    snprintf(buf, KEY_MAX, upper ? "User%07u@Dom%03u.Example" : "user%07u@dom%03u.example", i,
             i % 997);
}

/* write_list - an lsearch file of n addresses */
static void write_list(const char *path, unsigned n)
{
    FILE *f = fopen(path, "w");
    char key[KEY_MAX];
    if (f == NULL)
        fatalx("%s: %s", path, strerror(errno));
    fprintf(f, "# %u valid recipients\n", n);
    for (unsigned i = 0; i < n; i++) {
        key_of(key, i, false);
        fprintf(f, "%s\n", key);
    }
    if (fclose(f) != 0)
        fatalx("%s: write failed", path);
}

/* make_cdb - `cdb -c -m CDB LIST` (the lsearch file's lines are "key" lines of cdb's map form) */
static void make_cdb(const char *cdb, const char *list)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("cdb", "cdb", "-c", "-m", cdb, list, (char *)NULL);
        fprintf(stderr, "cannot run cdb (Debian package tinycdb): %s\n", strerror(errno));
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fatalx("cdb -c -m %s %s failed", cdb, list);
}

/* queries - q hit keys spread over the n entries, and q misses (unknown user, unknown domain) */
static char (*queries(unsigned n, unsigned q, bool hits))[KEY_MAX]
{
    char (*k)[KEY_MAX] = xcalloc(q, KEY_MAX);
    for (unsigned i = 0; i < q; i++) {
        unsigned idx = (unsigned)(((uint64_t)i * 2654435761u) % n);
        if (hits)
            key_of(k[i], idx, i % 2 == 0);
        else
            snprintf(k[i], KEY_MAX, "nobody%07u@nowhere%03u.example", idx, idx % 997);
    }
    return k;
}

/* time_lookups - ns per list check over the keys: the fastest of r rounds (a busy machine
 * only ever adds time); every answer must be want */
static double time_lookups(const struct list *l, char (*keys)[KEY_MAX], unsigned q, unsigned r,
                           enum list_result want)
{
    double best = 0;
    for (unsigned round = 0; round < r; round++) {
        double t0 = now_s();
        for (unsigned i = 0; i < q; i++)
            if (list_check_address(l, keys[i], NULL) != want)
                fatalx("lookup of %s: not %s", keys[i], list_result_name(want));
        double ns = (now_s() - t0) * 1e9 / q;
        if (round == 0 || ns < best)
            best = ns;
    }
    return best;
}

/* measure - one row: load the list (its first lookup loads the file), then time it */
static void measure(const char *label, const char *list_text, unsigned n, const struct opts *o)
{
    struct list l;
    char err[256];
    double rss0 = rss_mib();
    if (!list_parse(&l, LIST_ADDRESS, list_text, NULL, 0, err, sizeof(err)))
        fatalx("%s: %s", list_text, err);
    char probe[KEY_MAX];
    key_of(probe, 0, false);
    double t0 = now_s();
    if (list_check_address(&l, probe, NULL) != LIST_MATCH)
        fatalx("%s: the first key is not found", label);
    double load_ms = (now_s() - t0) * 1e3;
    unsigned q = o->queries;
    char (*hits)[KEY_MAX] = queries(n, q, true);
    char (*misses)[KEY_MAX] = queries(n, q, false);
    double hit_ns = time_lookups(&l, hits, q, o->rounds, LIST_MATCH);
    double miss_ns = time_lookups(&l, misses, q, o->rounds, LIST_NO_MATCH);
    double grown = rss_mib() - rss0 - 2.0 * q * KEY_MAX / (1024.0 * 1024.0);
    printf("| %-28s | %9u | %9.1f | %9.1f | %8.0f | %8.0f |\n", label, n, load_ms,
           grown > 0 ? grown : 0.0, hit_ns, miss_ns);
    fflush(stdout);
    free(hits);
    free(misses);
    list_free(&l);
}

/* linear_ns - what Exim's lsearch does for each lookup: read the file's lines in order until
 * one starts with the key (here from memory, without Exim's stdio: a lower bound) */
static double linear_ns(const char *path, unsigned n, unsigned q)
{
    FILE *f = fopen(path, "r");
    struct sbuf text;
    char buf[65536], key[KEY_MAX];
    size_t got;
    sbuf_init(&text);
    while (f != NULL && (got = fread(buf, 1, sizeof(buf), f)) > 0)
        sbuf_add(&text, buf, got);
    if (f)
        fclose(f);
    double t0 = now_s();
    for (unsigned i = 0; i < q; i++) {
        key_of(key, (unsigned)(((uint64_t)i * 2654435761u) % n), false);
        size_t klen = strlen(key);
        const char *s = text.s, *end = text.s + text.len;
        while (s < end && !(strncasecmp(s, key, klen) == 0 && (s[klen] == '\n' || s[klen] == ':')))
            s = (s = memchr(s, '\n', (size_t)(end - s))) ? s + 1 : end;
        if (s >= end)
            fatalx("linear scan: %s not found", key);
    }
    double ns = (now_s() - t0) * 1e9 / q;
    sbuf_free(&text);
    return ns;
}

static bool parse_opts(int argc, char **argv, struct opts *o)
{
    int c;
    while ((c = getopt(argc, argv, "n:q:r:")) != -1) {
        unsigned long v = strtoul(optarg ? optarg : "0", NULL, 10);
        if (v == 0 || v > 100000000)
            return false;
        if (c == 'n')
            o->entries = (unsigned)v;
        else if (c == 'q')
            o->queries = (unsigned)v;
        else if (c == 'r')
            o->rounds = (unsigned)v;
        else
            return false;
    }
    return o->entries >= 10;
}

int main(int argc, char **argv)
{
    struct opts o = { 1000000, 200000, 5 };
    char dir[] = "/tmp/tandem-bench-lookups-XXXXXX", path[6][128], text[512];
    if (!parse_opts(argc, argv, &o)) {
        fprintf(stderr, "usage: lookups [-n ENTRIES] [-q QUERIES] [-r ROUNDS]\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL)
        fatalx("mkdtemp: %s", strerror(errno));
    unsigned sizes[3] = { 10, 10000, o.entries };
    for (int i = 0; i < 3; i++) {
        str_fmt(path[i], sizeof(path[i]), "%s/list%u", dir, sizes[i]);
        str_fmt(path[3 + i], sizeof(path[3 + i]), "%s/list%u.cdb", dir, sizes[i]);
        write_list(path[i], sizes[i]);
        make_cdb(path[3 + i], path[i]);
    }
    printf("ns per `recipients =` check, the best of %u rounds over %u keys (a miss also looks "
           "up \"*@domain\")\n\n", o.rounds, o.queries);
    printf("| list                         |   entries |   load ms |  mem MiB |  hit ns |  miss ns |\n");
    printf("|---|---|---|---|---|---|\n");
    struct sbuf lit;
    sbuf_init(&lit);
    for (unsigned i = 0; i < 10; i++) {
        char key[KEY_MAX];
        key_of(key, i, false);
        sbuf_printf(&lit, "%s%s", i ? " : " : "", key);
    }
    measure("10 literal items (no lookup)", lit.s, 10, &o);
    sbuf_free(&lit);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 3; i++) {
            char label[64];
            str_fmt(label, sizeof(label), "%s", t ? "cdb" : "lsearch");
            str_fmt(text, sizeof(text), "%s;%s", label, path[3 * t + i]);
            measure(label, text, sizes[i], &o);
        }
    printf("| %-28s | %9u |           |          | %7.0f |          |\n",
           "linear scan (Exim's lsearch)", o.entries, linear_ns(path[2], o.entries, 20));
    struct stat st;
    if (stat(path[2], &st) == 0)
        printf("\nbig lsearch file: %.1f MiB", (double)st.st_size / (1024.0 * 1024.0));
    if (stat(path[5], &st) == 0)
        printf("; big cdb file: %.1f MiB\n", (double)st.st_size / (1024.0 * 1024.0));
    for (int i = 0; i < 6; i++)
        unlink(path[i]);
    rmdir(dir);
    return 0;
}
