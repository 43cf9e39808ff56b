/* test_retry.c - when a deferred message is tried next, and when it is given up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "conf/conf.h"
#include "queue/retry.h"

#define T0 1700000000

/* conf_with - a configuration with only the retry options set */
static struct conf conf_with(unsigned *intervals, size_t n, unsigned give_up)
{
    struct conf c;
    memset(&c, 0, sizeof(c));
    c.retry_intervals = intervals;
    c.nretry_intervals = n;
    c.retry_give_up = give_up;
    return c;
}

static void test_kth_retry_uses_kth_interval(void **state)
{
    unsigned iv[] = { 300, 900, 1800, 3600 };
    struct conf c = conf_with(iv, 4, 5 * 86400);
    (void)state;
    assert_int_equal(retry_interval(&c, 1), 300);
    assert_int_equal(retry_interval(&c, 2), 900);
    assert_int_equal(retry_interval(&c, 3), 1800);
    assert_int_equal(retry_interval(&c, 4), 3600);
}

static void test_last_interval_repeats(void **state)
{
    unsigned iv[] = { 300, 900 };
    struct conf c = conf_with(iv, 2, 5 * 86400);
    (void)state;
    assert_int_equal(retry_interval(&c, 3), 900);
    assert_int_equal(retry_interval(&c, 1000), 900);
    assert_int_equal(retry_interval(&c, 0), 300);
}

static void test_zero_and_empty_intervals(void **state)
{
    unsigned iv[] = { 0 };
    struct conf c = conf_with(iv, 1, 100);
    struct conf e = conf_with(NULL, 0, 100);
    (void)state;
    assert_int_equal(retry_interval(&c, 1), 1);     /* never a busy loop */
    assert_true(retry_interval(&e, 1) > 0);
}

static void test_next_after_first_attempt(void **state)
{
    unsigned iv[] = { 300, 900 };
    struct conf c = conf_with(iv, 2, 86400);
    time_t next = 0;
    (void)state;
    assert_int_equal(retry_next(&c, T0, 1, T0 + 5, &next), RETRY_LATER);
    assert_int_equal(next, T0 + 5 + 300);
    assert_int_equal(retry_next(&c, T0, 2, T0 + 400, &next), RETRY_LATER);
    assert_int_equal(next, T0 + 400 + 900);
    assert_int_equal(retry_next(&c, T0, 7, T0 + 5000, &next), RETRY_LATER);
    assert_int_equal(next, T0 + 5000 + 900);
}

static void test_sequence_follows_schedule(void **state)
{
    unsigned iv[] = { 2, 4, 8 };
    struct conf c = conf_with(iv, 3, 1000);
    time_t now = T0, next;
    time_t want[] = { T0 + 2, T0 + 6, T0 + 14, T0 + 22, T0 + 30 };
    (void)state;
    for (unsigned k = 1; k <= 5; k++) {
        assert_int_equal(retry_next(&c, T0, k, now, &next), RETRY_LATER);
        assert_int_equal(next, want[k - 1]);
        now = next;
    }
}

static void test_last_attempt_lands_on_give_up_time(void **state)
{
    unsigned iv[] = { 3600 };
    struct conf c = conf_with(iv, 1, 5000);
    time_t next = 0;
    (void)state;
    assert_int_equal(retry_next(&c, T0, 2, T0 + 4000, &next), RETRY_LATER);
    assert_int_equal(next, T0 + 5000);
}

static void test_give_up(void **state)
{
    unsigned iv[] = { 60 };
    struct conf c = conf_with(iv, 1, 3600);
    time_t next = 0;
    (void)state;
    assert_int_equal(retry_next(&c, T0, 10, T0 + 3600, &next), RETRY_GIVE_UP);
    assert_int_equal(retry_next(&c, T0, 10, T0 + 999999, &next), RETRY_GIVE_UP);
    assert_int_equal(retry_next(&c, T0, 10, T0 + 3599, &next), RETRY_LATER);
    assert_int_equal(next, T0 + 3600);
}

static void test_give_up_on_first_attempt_when_old(void **state)
{
    unsigned iv[] = { 60 };
    struct conf c = conf_with(iv, 1, 10);
    time_t next = 0;
    (void)state;
    /* a message that waited in the spool while tandem was down gets one attempt, then fails */
    assert_int_equal(retry_next(&c, T0, 1, T0 + 86400, &next), RETRY_GIVE_UP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kth_retry_uses_kth_interval),
        cmocka_unit_test(test_last_interval_repeats),
        cmocka_unit_test(test_zero_and_empty_intervals),
        cmocka_unit_test(test_next_after_first_attempt),
        cmocka_unit_test(test_sequence_follows_schedule),
        cmocka_unit_test(test_last_attempt_lands_on_give_up_time),
        cmocka_unit_test(test_give_up),
        cmocka_unit_test(test_give_up_on_first_attempt_when_old),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
