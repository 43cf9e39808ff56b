/* queue_report.c - attempt reports as text (see queue/queue.h). */
#include "queue.h"

#include <string.h>
#include <time.h>

static const char *const outcome_words[] = {
    [DLV_NOT_TRIED] = "not tried", [DLV_DELIVERED] = "delivered",
    [DLV_DEFERRED] = "deferred", [DLV_FAILED] = "failed",
};

void report_rcpt_lines(const struct attempt_report *rep, struct sbuf *out)
{
    char addr[600];
    if (rep->env == NULL || rep->results == NULL)
        return;
    for (size_t i = 0; i < rep->env->nrcpts; i++) {
        const struct dlv_result *r = &rep->results[i];
        if (r->outcome == DLV_NOT_TRIED || (unsigned)r->outcome >= ARRAY_LEN(outcome_words))
            continue;
        const char *a = rep->env->rcpts[i].addr;
        str_sanitize(addr, sizeof(addr), a, strlen(a));
        sbuf_printf(out, "<%s>: %s", addr, outcome_words[r->outcome]);
        if (r->outcome == DLV_DELIVERED && r->host[0])
            sbuf_printf(out, " to %.*s", (int)strnlen(r->host, sizeof(r->host)), r->host);
        else if (r->outcome != DLV_DELIVERED && r->text[0])
            sbuf_printf(out, ": %.*s", (int)strnlen(r->text, sizeof(r->text)), r->text);
        sbuf_addch(out, '\n');
    }
}

void report_summary(const struct attempt_report *rep, struct sbuf *out)
{
    char when[32];
    if (rep->status != ATT_DONE) {
        sbuf_printf(out, "%s: %s", rep->id, attempt_status_name(rep->status));
        return;
    }
    sbuf_printf(out, "%s: %u delivered, %u deferred, %u failed", rep->id, rep->delivered,
                rep->deferred, rep->failed);
    if (rep->completed) {
        sbuf_addstr(out, "; completed");
    } else if (rep->next_try) {
        fmt_age(when, sizeof(when), (long)(rep->next_try - time(NULL)));
        sbuf_printf(out, "; next attempt in %s", when);
    }
}

bool report_is_error(const struct attempt_report *rep, bool single)
{
    switch (rep->status) {
    case ATT_DONE:
        return false;
    case ATT_LOCKED:
    case ATT_GONE:
        return single;   /* for deliver-all, a message taken or finished meanwhile is fine */
    default:
        return true;
    }
}
