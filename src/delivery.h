/* delivery.h - deliver one message's pending recipients to their next hops: route them,
 * group recipients with the same next hops into one transaction, try the hops in order,
 * stream the content from the spool, and report a result per recipient.  Logs the Exim
 * delivery lines (=> -> == **) itself; the scheduler logs Completed and sends bounces. */
#ifndef TANDEM_DELIVERY_H
#define TANDEM_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

struct event_base;
struct conf;
struct dns_ctx;
struct ssl_ctx_st;
struct hints;
struct conn_cache;

/* What deliveries share inside one process (the scheduler, or `tandem queue` run directly). */
struct delivery_env {
    struct event_base *base;
    const struct conf *conf;
    struct dns_ctx *dns;
    struct ssl_ctx_st *client_tls;
    struct hints *hints;          /* per-host retry state */
    struct conn_cache *cache;     /* idle connections kept for reuse (may be NULL) */
};

enum dlv_outcome { DLV_NOT_TRIED = 0, DLV_DELIVERED, DLV_DEFERRED, DLV_FAILED };

struct dlv_result {
    enum dlv_outcome outcome;
    int code;                 /* the deciding SMTP reply code, 0 if none (connection trouble) */
    char ecode[16];
    char text[512];           /* sanitized, one line: the reply or what went wrong */
    char host[300];           /* "name [ip]:port" of the next hop that answered, "" if none */
    bool relayed_without_dsn; /* delivered to a next hop that does not offer DSN */
};

/* results has env->nrcpts entries; only the attempted ones are filled.  They are valid during
 * the callback only (copy what you keep).  The callback always runs from the event loop. */
typedef void (*delivery_done_cb)(void *arg, struct dlv_result *results);

/* Called as soon as recipient i is delivered or failed, before its log line and while the
 * attempt goes on (other hosts, later batches), so that the caller can journal it at once:
 * a crash later in the attempt must not deliver it a second time.  result is valid during
 * the call only.  Deferrals are reported by delivery_done_cb alone. */
typedef void (*delivery_final_cb)(void *arg, size_t i, const struct dlv_result *result);

/* Attempt the recipients with attempt[i] set (pending ones).  ignore_retry: try hosts even if
 * their retry time has not come (`queue deliver`).  The spool content is read as needed.
 * env must stay valid until cb runs.  final_cb (may be NULL) and cb get arg. */
void delivery_start(const struct delivery_env *de, const struct envelope *env, const bool *attempt,
                    bool ignore_retry, delivery_final_cb final_cb, delivery_done_cb cb,
                    void *arg);

#endif
