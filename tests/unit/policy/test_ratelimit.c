/* test_ratelimit.c - Exim's smoothed rate (rate_next), the shared store's update modes (leaky,
 * strict, read-only, concurrent processes), and the ratelimit condition's counting and memory
 * (per_rcpt, per_byte, per_conn across messages, per_mail within one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "policy/policy.h"
#include "store/store.h"

#define SEC 1000000LL

struct fx {
    char dir[64];
    struct hints *h;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    str_copy(f->dir, "/tmp/tandem-rate-test-XXXXXX", sizeof(f->dir));
    if (mkdtemp(f->dir) == NULL || (f->h = hints_open(f->dir, err, sizeof(err))) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hints_close(f->h);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void test_rate_next(void **state)
{
    (void)state;
    /* No record: the rate is the event's count. */
    assert_true(rate_next(0, 0, false, 1, 3600, 5 * SEC) == 1.0);
    /* A burst of N events in an instant reaches (just under) N per period. */
    double r = 1;
    int64_t t = 100 * SEC;
    for (int i = 2; i <= 10; i++) {
        r = rate_next(r, t, true, 1, 3600, t + 1000);
        t += 1000;
        assert_true(r > i - 0.01 && r <= i);
    }
    /* It decays: after one period about 1/e of it is left (plus the new event). */
    double later = rate_next(10, 0, true, 0, 60, 60 * SEC);
    assert_true(fabs(later - 10 / M_E) < 0.01);
    /* A long silence: an isolated event counts as itself, never less. */
    assert_true(rate_next(10, 0, true, 1, 60, 3600 * SEC) == 1.0);
    /* The clock going backwards gives a finite rate. */
    assert_true(isfinite(rate_next(3, 10 * SEC, true, 1, 60, 5 * SEC)));
    /* Sized events: count is bytes. */
    assert_true(rate_next(0, 0, false, 5000, 3600, SEC) == 5000);
}

struct got {
    int calls;
    struct rate_result r;
};

static void got_cb(void *arg, const struct rate_result *r)
{
    struct got *g = arg;
    g->calls++;
    g->r = *r;
}

/* update - one event on key; the callback must have run before the call returned */
static struct rate_result update(struct hints *h, const char *key, enum rate_mode mode,
                                 double limit, int64_t now)
{
    struct got g = { 0, { false, false, 0 } };
    struct rate_event ev = { 1, limit, 3600, mode, now };
    rate_store_update(h, key, &ev, got_cb, &g);
    assert_int_equal(g.calls, 1);
    assert_true(g.r.ok);
    return g.r;
}

static void test_store_modes(void **state)
{
    struct fx *f = *state;
    int64_t now = 1000 * SEC;
    /* leaky: refused events are not stored */
    assert_false(update(f->h, "leaky", RATE_LEAKY, 2, now).over);
    assert_false(update(f->h, "leaky", RATE_LEAKY, 2, now + 1).over);
    struct rate_result r = update(f->h, "leaky", RATE_LEAKY, 2, now + 2);
    assert_true(r.over && r.rate < 3);
    r = update(f->h, "leaky", RATE_LEAKY, 2, now + 3);
    assert_true(r.over && r.rate < 3);        /* still about 3: the refusal did not count */
    /* strict: every event is stored */
    for (int i = 0; i < 5; i++)
        r = update(f->h, "strict", RATE_STRICT, 2, now + i);
    assert_true(r.over && r.rate > 4.9);
    /* read-only: sees the stored rate (decayed), adds and stores nothing */
    r = update(f->h, "strict", RATE_READONLY, 2, now + 10);
    assert_true(r.over && r.rate > 4.9 && r.rate <= 5);
    r = update(f->h, "nothing", RATE_READONLY, 2, now);
    assert_true(!r.over && r.rate == 0);
    unsigned char buf[64];
    size_t len;
    assert_false(hints_get(f->h, HINTS_RATELIMIT, "nothing", buf, sizeof(buf), &len));
    /* no store: not ok (the condition defers) */
    struct got g = { 0, { true, false, 0 } };
    struct rate_event ev = { 1, 2, 3600, RATE_LEAKY, now };
    rate_store_update(NULL, "x", &ev, got_cb, &g);
    assert_int_equal(g.calls, 1);
    assert_false(g.r.ok);
}

/* test_concurrent_processes - four processes counting one key lose no event (strict) */
static void test_concurrent_processes(void **state)
{
    struct fx *f = *state;
    enum { PROCS = 4, EACH = 50 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            char err[256];
            struct hints *h = hints_open(f->dir, err, sizeof(err));
            for (int i = 0; i < EACH && h; i++) {
                struct got g = { 0, { false, false, 0 } };
                struct rate_event ev = { 1, 1e9, 1000000, RATE_STRICT, 5000 * SEC };
                rate_store_update(h, "shared", &ev, got_cb, &g);
            }
            hints_close(h);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++)
        wait(NULL);
    /* All at one instant: each event adds 1, so the rate is the number of events. */
    struct rate_result r = update(f->h, "shared", RATE_READONLY, 1e9, 5000 * SEC);
    assert_true(fabs(r.rate - PROCS * EACH) < 0.5);
}

struct cond_got {
    int calls;
    struct rate_outcome o;
};

static void cond_cb(void *arg, const struct rate_outcome *o)
{
    struct cond_got *g = arg;
    g->calls++;
    g->o = *o;
}

/* check - one ratelimit condition evaluation */
static struct rate_outcome check(struct rate_memo *m, const char *text, enum acl_stage st,
                                 uint64_t size, unsigned nrcpts)
{
    const char *key = strrchr(text, '/') + 1;        /* the tests' keys are literal */
    struct ratelimit_spec spec;
    char err[200];
    assert_true(ratelimit_parse(&spec, text, err, sizeof(err)));
    struct rate_check_req q = { &spec, st, key, size, nrcpts };
    struct cond_got g = { 0, { false, false, 0 } };
    ratelimit_check(m, &q, cond_cb, &g);
    ratelimit_free(&spec);
    assert_int_equal(g.calls, 1);
    assert_true(g.o.ok);
    return g.o;
}

static void test_condition_counts_and_memory(void **state)
{
    struct fx *f = *state;
    struct rate_memo *m = rate_memo_new(f->h);
    /* per_rcpt in the RCPT ACL: one each command */
    for (int i = 1; i <= 3; i++) {
        rate_memo_new_command(m);
        struct rate_outcome o = check(m, "2/1h/per_rcpt/strict/k1", ACL_RCPT, 0, 0);
        assert_true(o.over == (i >= 3));
    }
    /* per_rcpt at DATA: every recipient at once */
    rate_memo_new_command(m);
    assert_true(check(m, "5/1h/per_rcpt/strict/k2", ACL_DATA, 0, 7).over);
    /* per_byte: the size */
    rate_memo_new_command(m);
    struct rate_outcome o = check(m, "1K/1h/per_byte/strict/k6", ACL_DATA, 3000, 1);
    assert_true(o.over && o.rate == 3000);
    /* per_mail, twice for one message: counted once (the memory), again for the next */
    rate_memo_new_message(m);
    rate_memo_new_command(m);
    assert_true(check(m, "10/1h/per_mail/k3", ACL_MAIL, 0, 0).rate == 1);
    rate_memo_new_command(m);
    assert_true(check(m, "10/1h/per_mail/k3", ACL_RCPT, 0, 0).rate == 1);
    rate_memo_new_message(m);
    rate_memo_new_command(m);
    assert_true(check(m, "10/1h/per_mail/k3", ACL_MAIL, 0, 0).rate > 1.9);
    /* per_conn: once for the connection, whatever the messages */
    rate_memo_new_command(m);
    double c1 = check(m, "10/1h/per_conn/k4", ACL_CONNECT, 0, 0).rate;
    rate_memo_new_message(m);
    rate_memo_new_command(m);
    assert_true(check(m, "10/1h/per_conn/k4", ACL_MAIL, 0, 0).rate == c1);
    /* per_mail in the connect ACL cannot count: read-only */
    rate_memo_new_command(m);
    assert_true(check(m, "10/1h/per_mail/k5", ACL_CONNECT, 0, 0).rate == 0);
    rate_memo_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_next),
        cmocka_unit_test_setup_teardown(test_store_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_counts_and_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
