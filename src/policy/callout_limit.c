/* callout_limit.c - at most N callouts in flight to one next hop from this process, so that a
 * dictionary attack against tandem does not become one against the primary.  Callouts over
 * the limit wait their turn (bounded by their own timeout). */
#include "callout_int.h"

#include <stdlib.h>
#include <string.h>

struct limit_slot {
    char host[256];
    unsigned active;
    TAILQ_HEAD(, callout) waiting;
};

struct callout_limiter {
    unsigned max;
    struct limit_slot **slots;   /* individually allocated: queues never move */
    size_t n, cap;
};

struct callout_limiter *callout_limiter_new(unsigned max_per_host)
{
    struct callout_limiter *l = xcalloc(1, sizeof(*l));
    l->max = max_per_host ? max_per_host : 1;
    return l;
}

void callout_limiter_free(struct callout_limiter *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->slots[i]);
    free(l->slots);
    free(l);
}

/* slot_for - the host's slot, created on first use (an idle slot is reused) */
static struct limit_slot *slot_for(struct callout_limiter *l, const char *host)
{
    struct limit_slot *idle = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->slots[i]->host, host) == 0)
            return l->slots[i];
        if (!idle && l->slots[i]->active == 0 && TAILQ_EMPTY(&l->slots[i]->waiting))
            idle = l->slots[i];
    }
    if (idle == NULL) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 8;
            l->slots = xreallocarray(l->slots, l->cap, sizeof(*l->slots));
        }
        idle = l->slots[l->n++] = xcalloc(1, sizeof(*idle));
        TAILQ_INIT(&idle->waiting);
    }
    str_copy(idle->host, host, sizeof(idle->host));
    idle->active = 0;
    return idle;
}

bool callout_limit_acquire(struct callout_limiter *l, struct callout *c)
{
    struct limit_slot *s = slot_for(l, c->host);
    if (s->active < l->max) {
        s->active++;
        return true;
    }
    TAILQ_INSERT_TAIL(&s->waiting, c, wait_entry);
    c->waiting = true;
    return false;
}

void callout_limit_release(struct callout_limiter *l, const char *host)
{
    for (size_t i = 0; i < l->n; i++) {
        struct limit_slot *s = l->slots[i];
        if (strcmp(s->host, host) != 0)
            continue;
        struct callout *next = TAILQ_FIRST(&s->waiting);
        if (next) {
            TAILQ_REMOVE(&s->waiting, next, wait_entry);
            next->waiting = false;
            callout_proceed(next);    /* takes over the slot */
        } else if (s->active > 0) {
            s->active--;
        }
        return;
    }
}

void callout_limit_forget(struct callout_limiter *l, struct callout *c)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->slots[i]->host, c->host) == 0 && c->waiting) {
            TAILQ_REMOVE(&l->slots[i]->waiting, c, wait_entry);
            c->waiting = false;
            return;
        }
}
