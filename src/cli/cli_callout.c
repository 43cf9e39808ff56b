/* cli_callout.c - `tandem callout-cache list | purge [DOMAIN]`: the callout cache, one entry a
 * line (key, next-hop host, result, reason, expiry), and its removal. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "policy/policy.h"
#include "store/store.h"

/* print_entry - "key host result expiry reason" (expired entries are skipped) */
static void print_entry(void *arg, const struct cc_entry *e)
{
    char key[700], host[600], reason[900], when[32];
    struct tm tm;
    unsigned *count = arg;
    if (e->expires <= time(NULL))
        return;
    localtime_r(&e->expires, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    str_sanitize_utf8(key, sizeof(key), e->key, strlen(e->key));
    str_sanitize(host, sizeof(host), e->host, strlen(e->host));
    str_sanitize(reason, sizeof(reason), e->reason, strlen(e->reason));
    printf("%s%s %s %s expires=%s reason=\"%s\"\n", e->kind == CC_DOMAIN_ACCEPT_ALL ? "*@" : "", key,
           host, e->result == CC_ACCEPTED ? (e->kind == CC_DOMAIN_ACCEPT_ALL ? "accept-all" : "accepted")
                                          : "refused", when, reason);
    (*count)++;
}

int cli_callout_cache(const char *conf_path, int argc, char **argv)
{
    char err[512];
    int rc = 0;
    if (argc < 1 || (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "purge") != 0) ||
        (strcmp(argv[0], "list") == 0 && argc != 1) || argc > 2) {
        fputs("usage: tandem callout-cache [-c FILE] list | purge [DOMAIN]\n", stderr);
        return 64;
    }
    struct conf *c = conf_load_or_report(conf_path);
    if (c == NULL)
        return 1;
    if (!cli_become_user(c)) {
        conf_free(c);
        return 1;
    }
    struct hints *h = hints_open(c->spool_directory, err, sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "tandem: callout cache: %s\n", err);
        conf_free(c);
        return 1;
    }
    if (strcmp(argv[0], "list") == 0) {
        unsigned count = 0;
        if (!cc_each(h, print_entry, &count))
            rc = 1;
    } else {
        size_t n = cc_purge(h, argc == 2 ? argv[1] : NULL);
        printf("%zu entr%s removed\n", n, n == 1 ? "y" : "ies");
    }
    hints_close(h);
    conf_free(c);
    return rc;
}
