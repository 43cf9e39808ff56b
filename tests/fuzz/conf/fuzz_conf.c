/* fuzz_conf.c - libFuzzer target: the input is a configuration file.  It is loaded (errors
 * collected), and when it loads, every ACL is evaluated once and a few domains are routed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "policy/policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64], logdir[64], mainlog[96];

/* remove_logs - delete the scratch log directory at exit */
static void remove_logs(void)
{
    static const char *const names[] = { "mainlog", "rejectlog", "paniclog" };
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", logdir, names[i]);
        unlink(p);
    }
    rmdir(logdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz_conf", 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    snprintf(logdir, sizeof(logdir), "/tmp/fuzz_conf_log.XXXXXX");
    if (memfd < 0 || mkdtemp(logdir) == NULL || !log_open(logdir))
        abort();
    snprintf(mainlog, sizeof(mainlog), "%s/mainlog", logdir);
    atexit(remove_logs);
    return 0;
}

/* verify_now - a verify hook that answers at once, alternating results */
static void verify_now(void *arg, struct acl_run *run, enum verify_what what,
                       const struct callout_opts *opts)
{
    unsigned *n = arg;
    (void)opts;
    acl_verify_done(run, (enum verify_result)((*n)++ % 3), what == VERIFY_HELO ? NULL : "550 5.1.1 no");
}

/* exercise - run every ACL at every stage and route a few domains */
static void exercise(const struct conf *c)
{
    static const struct acl_vars vars = {
        .sender_host_address = "192.0.2.1", .sender_helo_name = "helo.example",
        .sender_address = "a@sender.example", .local_part = "bob", .domain = "example.org",
        .message_id = "1tQxyz-000abc-Zz", .primary_hostname = "mx.example",
        .sender_host_name = "client.example.org",
    };
    unsigned n = 0;
    const struct acl_hooks hooks = { .verify = verify_now };
    for (size_t i = 0; i < c->nacls; i++) {
        struct acl_run *run = acl_run_new(&c->acls[i], (enum acl_stage)(i % ACL_NSTAGES), &vars,
                                          &hooks, &n, NULL, NULL, NULL);
        if (!acl_run_start(run))
            abort(); /* no event base, synchronous hook: must complete */
        acl_run_free(run);
    }
    static const char *const domains[] = { "example.org", "a.b.example", "", "x" };
    const struct route *r;
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
        (void)conf_route_find(c, domains[i], &r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sbuf errs;
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
        abort();
    sbuf_init(&errs);
    struct conf *c = conf_load(path, &errs);
    /* lookup items would open whatever files the input names: their parsing is fuzzed here,
     * the files' parsers by fuzz_lsearch and fuzz_cdb */
    if (c == NULL && errs.len == 0)
        abort(); /* a failed load always says why */
    if (c != NULL && memchr(data, ';', size) == NULL)
        exercise(c);
    conf_free(c);
    sbuf_free(&errs);
    if (truncate(mainlog, 0) != 0)
        abort();
    return 0;
}
