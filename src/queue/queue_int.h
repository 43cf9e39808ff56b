/* queue_int.h - what the queue engine's files share: the queue and its entries, the index by
 * id, the heap by due time, and the steps of an attempt. */
#ifndef TANDEM_QUEUE_INT_H
#define TANDEM_QUEUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue.h"

#define QUEUE_ENTRIES_MAX (1u << 20)   /* messages held in memory; more wait for a rescan */
#define QUEUE_LOCKED_RETRY 3           /* seconds before retrying a message locked elsewhere */
#define QUEUE_ERROR_RETRY 60           /* seconds before retrying after local trouble */
#define QUEUE_WAITERS_MAX 64           /* requests waiting on one message */
#define HEAP_NONE SIZE_MAX

struct event;

struct waiter {
    queue_report_cb cb;
    void *arg;
};

/* One queued message. */
struct qentry {
    char id[MSGID_LEN + 1];
    time_t due;                /* 0: requested, before everything else */
    uint64_t seq;              /* first come, first served among equal due times */
    size_t heap_idx;           /* HEAP_NONE while running */
    bool running;
    bool force;                /* the next attempt ignores retry times */
    bool force_again;          /* requested while running: attempt again right after */
    struct waiter *waiters;
    size_t nwaiters;
    struct qentry *next;       /* index chain */
    uint64_t arrival;          /* from the id: seconds since the epoch */
};

struct queue {
    const struct delivery_env *de;
    const struct conf *conf;
    struct qentry **buckets;   /* index by id */
    size_t nbuckets, nentries;
    struct qentry **heap;      /* entries waiting, by (due, seq) */
    size_t heap_len, heap_cap;
    uint64_t seq;
    size_t running;
    bool stopping;
    bool full_logged;
    uint64_t oldest;           /* the oldest entry's arrival (metrics), 0 when empty */
    bool oldest_stale;         /* it left; recomputed at most once a second */
    time_t oldest_scanned;
    struct event *timer;       /* the earliest due entry */
    struct event *kick;        /* dispatch from the loop, never re-entrantly */
    void (*idle_cb)(void *arg);
    void *idle_arg;
};

/* queue_index.c */
void index_init(struct queue *q);
void index_free(struct queue *q);
struct qentry *index_find(const struct queue *q, const char *id);
void index_insert(struct queue *q, struct qentry *e);
void index_remove(struct queue *q, struct qentry *e);
void heap_push(struct queue *q, struct qentry *e);
struct qentry *heap_top(const struct queue *q);
struct qentry *heap_pop(struct queue *q);
void heap_delete(struct queue *q, struct qentry *e);
/* The queue gauges for /metrics, the oldest arrival recomputed if it left. */
void queue_metrics_refresh(struct queue *q);

/* queue_attempt.c: start an attempt on e (running); it ends with queue_attempt_over. */
void attempt_start(struct queue *q, struct qentry *e);

/* queue.c: an attempt on e is over; reschedule it at next_due, or drop it when 0. */
void queue_attempt_over(struct queue *q, struct qentry *e, const struct attempt_report *rep,
                        time_t next_due);

/* queue_finish.c: every recipient of env is done: bounce, remove, log Completed.  results are
 * this attempt's (or NULL).  False when the bounce could not be spooled (the message stays). */
bool finish_message(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                    const bool *timed_out);

#endif
