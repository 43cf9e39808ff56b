/* test_sanitize.c - text from peers made safe for log lines: str_sanitize escapes everything
 * but printable ASCII; str_sanitize_utf8 keeps valid UTF-8 except what breaks or disguises a
 * line (C1 controls, U+2028/U+2029, bidirectional controls). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/core.h"

static const char *utf8(const char *in)
{
    static char out[256];
    str_sanitize_utf8(out, sizeof(out), in, strlen(in));
    return out;
}

static void test_ascii(void **state)
{
    (void)state;
    char out[64];
    str_sanitize(out, sizeof(out), "a\"b\\c\r\n\x7f", 8);
    assert_string_equal(out, "a\\x22b\\x5cc\\x0d\\x0a\\x7f");
}

static void test_utf8_kept(void **state)
{
    (void)state;
    assert_string_equal(utf8("j\xc3\xb6rg@\xe4\xbe\x8b.test"), "j\xc3\xb6rg@\xe4\xbe\x8b.test");
    assert_string_equal(utf8("\xf0\x9f\x93\xa7"), "\xf0\x9f\x93\xa7");   /* U+1F4E7 */
    assert_string_equal(utf8("\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf"), "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf");
}

static void test_line_breaks_and_controls_escaped(void **state)
{
    (void)state;
    assert_string_equal(utf8("a\xe2\x80\xa8" "b"), "a\\xe2\\x80\\xa8b");     /* U+2028 */
    assert_string_equal(utf8("a\xe2\x80\xa9" "b"), "a\\xe2\\x80\\xa9b");     /* U+2029 */
    assert_string_equal(utf8("a\xc2\x85" "b"), "a\\xc2\\x85b");               /* NEL */
    assert_string_equal(utf8("\xc2\x80\xc2\x9f"), "\\xc2\\x80\\xc2\\x9f");    /* C1 ends */
    assert_string_equal(utf8("\xe2\x80\xae\xe2\x81\xa6"), "\\xe2\\x80\\xae\\xe2\\x81\\xa6");
    assert_string_equal(utf8("\"q\"\x1c"), "\\x22q\\x22\\x1c");
}

static void test_invalid_utf8_escaped(void **state)
{
    (void)state;
    assert_string_equal(utf8("\xc0\xaf"), "\\xc0\\xaf");                      /* overlong */
    assert_string_equal(utf8("\xed\xa0\x80"), "\\xed\\xa0\\x80");             /* surrogate */
    assert_string_equal(utf8("\xe2\x80"), "\\xe2\\x80");                      /* cut short */
}

static void test_truncation_never_splits(void **state)
{
    (void)state;
    char out[8];
    size_t used = str_sanitize_utf8(out, sizeof(out), "ab\xe2\x80\xa8" "cd", 7);
    assert_string_equal(out, "ab");           /* the 12-byte escape does not fit: stop before */
    assert_int_equal(used, 2);
    used = str_sanitize_utf8(out, sizeof(out), "a\xe4\xbe\x8b\xe4\xbe\x8b", 7);
    assert_string_equal(out, "a\xe4\xbe\x8b\xe4\xbe\x8b");
    assert_int_equal(used, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_utf8_kept),
        cmocka_unit_test(test_line_breaks_and_controls_escaped),
        cmocka_unit_test(test_invalid_utf8_escaped),
        cmocka_unit_test(test_truncation_never_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
