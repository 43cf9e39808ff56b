/* callout_int.h - private state of callouts (callout.c, callout_limit.c). */
#ifndef TANDEM_CALLOUT_INT_H
#define TANDEM_CALLOUT_INT_H

#include <stdbool.h>
#include <sys/queue.h>

#include "policy.h"
#include "smtp/smtp.h"

struct event;

struct callout {
    struct callout_env env;
    struct callout_req req;
    char address[ADDR_PATH_MAX + 1];
    char sender[ADDR_PATH_MAX + 1];
    char domain[ADDR_DOMAIN_MAX + 1];
    char random_addr[ADDR_PATH_MAX + 1];
    char host[256];                  /* the cache and limiter key: the first next hop */
    const struct route_result *route;
    callout_cb cb;
    void *arg;
    struct mail_out mail;
    struct upstream *up;
    struct smtp_out *so;
    bool holding_slot, waiting, random_sent;
    struct event *ev;                /* start and completion run from the loop */
    struct callout_outcome out;
    bool done;
    TAILQ_ENTRY(callout) wait_entry;
};

/* callout_limit.c */
bool callout_limit_acquire(struct callout_limiter *l, struct callout *c);
void callout_limit_release(struct callout_limiter *l, const char *host);
void callout_limit_forget(struct callout_limiter *l, struct callout *c);
/* callout.c: a waiting callout got its slot */
void callout_proceed(struct callout *c);

#endif
