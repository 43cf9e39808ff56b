/* msgid.c - message ids: unique across processes (pid) and within one (never repeat or go
 * back, even when the clock does).  The alphabet is in ASCII order, so ids of equal width
 * compare like the numbers they encode. */
#include "msgid.h"
#include "store.h"

#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define B62_POW6 56800235584ULL /* 62^6: the range of a six-character field */

/* b62_put - write v as exactly width base-62 digits (v is reduced modulo 62^width) */
static void b62_put(char *out, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

/* b62_digit - value of one base-62 digit, or -1 */
static int b62_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

/* b62_get - decode width digits; false on a character outside the alphabet */
static bool b62_get(const char *s, int width, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++) {
        int d = b62_digit(s[i]);
        if (d < 0)
            return false;
        v = v * 62 + (uint64_t)d;
    }
    *out = v;
    return true;
}

void msgid_next(struct msgid_clock *last, uint64_t sec, long usec, unsigned long pid,
                char out[MSGID_LEN + 1])
{
    if (usec < 0 || usec >= 1000000)
        usec = 0;
    unsigned frac = (unsigned)((uint64_t)usec * MSGID_FRAC_MAX / 1000000);
    if (sec < last->sec || (sec == last->sec && frac <= last->frac)) {
        sec = last->sec;
        frac = last->frac + 1;
        if (frac == MSGID_FRAC_MAX) {
            sec++;
            frac = 0;
        }
    }
    last->sec = sec;
    last->frac = frac;
    b62_put(out, sec % B62_POW6, 6);
    out[6] = '-';
    b62_put(out + 7, pid % B62_POW6, 6);
    out[13] = '-';
    b62_put(out + 14, frac, 2);
    out[MSGID_LEN] = '\0';
}

/* msgid_new - a fresh id from the real clock and our pid */
void msgid_new(char out[MSGID_LEN + 1])
{
    static struct msgid_clock last; /* per process; a forked child has a new pid */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    msgid_next(&last, (uint64_t)tv.tv_sec, (long)tv.tv_usec, (unsigned long)getpid(), out);
}

/* msgid_parse - split an id into seconds, pid and fraction */
bool msgid_parse(const char *s, uint64_t *sec, unsigned long *pid, unsigned *frac)
{
    uint64_t t, p, f;
    if (s == NULL || strnlen(s, MSGID_LEN + 1) != MSGID_LEN || s[6] != '-' || s[13] != '-')
        return false;
    if (!b62_get(s, 6, &t) || !b62_get(s + 7, 6, &p) || !b62_get(s + 14, 2, &f))
        return false;
    if (sec)
        *sec = t;
    if (pid)
        *pid = (unsigned long)p;
    if (frac)
        *frac = (unsigned)f;
    return true;
}

/* msgid_valid - is s exactly an id (and so safe as a file name)? */
bool msgid_valid(const char *s)
{
    return msgid_parse(s, NULL, NULL, NULL);
}

/* msgid_cmp - issue order: seconds, then fraction, then pid */
int msgid_cmp(const char *a, const char *b)
{
    int c = memcmp(a, b, 6); /* seconds */
    if (c == 0)
        c = memcmp(a + 14, b + 14, 2); /* fraction */
    if (c == 0)
        c = memcmp(a + 7, b + 7, 6); /* pid */
    return c;
}

bool msgid_time(const char *id, uint64_t *sec)
{
    unsigned long pid;
    unsigned frac;
    return msgid_parse(id, sec, &pid, &frac);
}
