/* metrics.c - counters, gauges and histograms for Prometheus, kept in shared memory: one slot
 * per process (each worker, the scheduler), created by the parent before it forks.  A process
 * writes only its own slot, with relaxed atomic adds and no lock; the metrics process sums the
 * slots when it is scraped.  Counters in a slot are never cleared, so a worker that crashes or
 * is replaced by a reload leaves its counts behind for the next one in the slot to add to:
 * the sums only grow.  Gauges (what is open now) are cleared with the process that held them. */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Upper bounds of the latency buckets, in microseconds (+Inf is implicit). */
static const uint64_t bucket_us[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
#define NBUCKETS (ARRAY_LEN(bucket_us) + 1)

struct hist_slot {
    _Atomic uint64_t bucket[NBUCKETS];   /* not cumulative; summed when formatted */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
};

struct metrics_slot {
    _Atomic uint64_t counter[M_NCOUNTERS];
    _Atomic int64_t gauge[G_NGAUGES];
    struct hist_slot hist[H_NHISTS];
};

struct metrics {
    unsigned nslots;
    struct metrics_slot slot[];
};

/* This process's slot; NULL (nothing counted) in the parent and the command-line tools. */
static struct metrics_slot *my_slot;

/* One exposed series: its family, its labels, and where its value comes from. */
struct series {
    const char *family;
    const char *labels;      /* `key="value"` pairs, or "" */
};

static const struct series counter_series[M_NCOUNTERS] = {
    [M_CONNECTIONS] = { "tandem_connections_total", "" },
    [M_CONNECTIONS_REFUSED] = { "tandem_connections_refused_total", "" },
    [M_PROXY_OK] = { "tandem_proxy_headers_total", "result=\"client\"" },
    [M_PROXY_LOCAL] = { "tandem_proxy_headers_total", "result=\"local\"" },
    [M_PROXY_BAD] = { "tandem_proxy_headers_total", "result=\"refused\"" },
    [M_MSG_RECEIVED] = { "tandem_messages_received_total", "" },
    [M_MSG_CUTTHROUGH] = { "tandem_messages_cutthrough_total", "" },
    [M_MSG_QUEUED] = { "tandem_messages_queued_total", "" },
    [M_DLV_QUEUE] = { "tandem_deliveries_total", "result=\"delivered\"" },
    [M_DLV_CUTTHROUGH] = { "tandem_deliveries_total", "result=\"cutthrough\"" },
    [M_DLV_DEFERRED] = { "tandem_deliveries_total", "result=\"deferred\"" },
    [M_DLV_FAILED] = { "tandem_deliveries_total", "result=\"failed\"" },
    [M_BOUNCES] = { "tandem_bounces_total", "" },
    [M_NH_RCPT_2XX] = { "tandem_nexthop_replies_total", "stage=\"rcpt\",outcome=\"accepted\"" },
    [M_NH_RCPT_4XX] = { "tandem_nexthop_replies_total", "stage=\"rcpt\",outcome=\"deferred\"" },
    [M_NH_RCPT_5XX] = { "tandem_nexthop_replies_total", "stage=\"rcpt\",outcome=\"refused\"" },
    [M_NH_DOT_2XX] = { "tandem_nexthop_replies_total", "stage=\"dot\",outcome=\"accepted\"" },
    [M_NH_DOT_4XX] = { "tandem_nexthop_replies_total", "stage=\"dot\",outcome=\"deferred\"" },
    [M_NH_DOT_5XX] = { "tandem_nexthop_replies_total", "stage=\"dot\",outcome=\"refused\"" },
    [M_NH_DOT_TIMEOUT] = { "tandem_nexthop_replies_total", "stage=\"dot\",outcome=\"timeout\"" },
    [M_NH_DOT_LOST] = { "tandem_nexthop_replies_total", "stage=\"dot\",outcome=\"lost\"" },
    [M_ONWARD_OPENED] = { "tandem_onward_connections_total", "how=\"opened\"" },
    [M_ONWARD_REUSED] = { "tandem_onward_connections_total", "how=\"reused\"" },
    [M_CALLOUT_CACHE_HIT] = { "tandem_callout_cache_lookups_total", "result=\"hit\"" },
    [M_CALLOUT_CACHE_MISS] = { "tandem_callout_cache_lookups_total", "result=\"miss\"" },
    [M_TLS_IN] = { "tandem_tls_sessions_total", "side=\"inbound\"" },
    [M_TLS_OUT] = { "tandem_tls_sessions_total", "side=\"outbound\"" },
};

static const struct series gauge_series[G_NGAUGES] = {
    [G_SESSIONS_OPEN] = { "tandem_sessions_open", "" },
    [G_ONWARD_OPEN] = { "tandem_onward_connections_open", "" },
    [G_QUEUE_MESSAGES] = { "tandem_queue_messages", "" },
    [G_QUEUE_OLDEST] = { "tandem_queue_oldest_seconds", "" },
};

static const struct series hist_series[H_NHISTS] = {
    [H_EOD_CLIENT] = { "tandem_end_of_data_seconds", "side=\"client\"" },
    [H_EOD_NEXTHOP] = { "tandem_end_of_data_seconds", "side=\"nexthop\"" },
};

/* HELP text per family, in the order families are first met. */
static const struct { const char *family, *type, *help; } families[] = {
    { "tandem_connections_total", "counter", "SMTP connections accepted (sessions started)" },
    { "tandem_connections_refused_total", "counter", "connections refused by smtp_accept_max or smtp_accept_max_per_host" },
    { "tandem_proxy_headers_total", "counter", "PROXY protocol headers from hosts_proxy hosts, by result" },
    { "tandem_messages_received_total", "counter", "messages accepted from clients (main log <= lines)" },
    { "tandem_messages_cutthrough_total", "counter", "messages every recipient of which the next hop took in the session" },
    { "tandem_messages_queued_total", "counter", "messages committed to the queue" },
    { "tandem_deliveries_total", "counter", "recipient outcomes: delivered (=> ->), cutthrough (>>), deferred (==), failed (**)" },
    { "tandem_bounces_total", "counter", "bounce messages (DSNs) created" },
    { "tandem_nexthop_replies_total", "counter", "the next hop's verdicts on RCPT (callouts, cutthrough, queue) and at the end of data" },
    { "tandem_onward_connections_total", "counter", "SMTP connections to next hops opened, or taken from the idle cache" },
    { "tandem_callout_cache_lookups_total", "counter", "callout cache lookups" },
    { "tandem_tls_sessions_total", "counter", "TLS sessions established" },
    { "tandem_sessions_open", "gauge", "inbound SMTP sessions open" },
    { "tandem_onward_connections_open", "gauge", "SMTP connections to next hops open" },
    { "tandem_queue_messages", "gauge", "messages in the queue" },
    { "tandem_queue_oldest_seconds", "gauge", "age of the oldest message in the queue" },
    { "tandem_end_of_data_seconds", "histogram", "from the final dot to its reply: the client's wait (side=client), the next hop's answer (side=nexthop)" },
};

struct metrics *metrics_create(unsigned nslots)
{
    size_t size = sizeof(struct metrics) + (size_t)nslots * sizeof(struct metrics_slot);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fatal("mmap metrics");
    struct metrics *m = p;
    m->nslots = nslots;
    return m;
}

void metrics_attach(struct metrics *m, unsigned slot)
{
    my_slot = m && slot < m->nslots ? &m->slot[slot] : NULL;
}

void metrics_reset_gauges(struct metrics *m, unsigned slot)
{
    if (m == NULL || slot >= m->nslots)
        return;
    for (int g = 0; g < G_NGAUGES; g++)
        atomic_store_explicit(&m->slot[slot].gauge[g], 0, memory_order_relaxed);
}

void metric_add(enum metric c, uint64_t n)
{
    if (my_slot)
        atomic_fetch_add_explicit(&my_slot->counter[c], n, memory_order_relaxed);
}

void metric_inc(enum metric c)
{
    metric_add(c, 1);
}

void gauge_add(enum gauge g, int64_t delta)
{
    if (my_slot)
        atomic_fetch_add_explicit(&my_slot->gauge[g], delta, memory_order_relaxed);
}

void gauge_set(enum gauge g, int64_t value)
{
    if (my_slot)
        atomic_store_explicit(&my_slot->gauge[g], value, memory_order_relaxed);
}

void metric_observe_us(enum hist h, uint64_t us)
{
    if (my_slot == NULL)
        return;
    size_t b = 0;
    while (b < ARRAY_LEN(bucket_us) && us > bucket_us[b])
        b++;
    struct hist_slot *hs = &my_slot->hist[h];
    atomic_fetch_add_explicit(&hs->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hs->sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&hs->count, 1, memory_order_relaxed);
}

/* sum_counter, sum_gauge - a series over every slot */
static uint64_t sum_counter(const struct metrics *m, int c)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < m->nslots; i++)
        v += atomic_load_explicit(&m->slot[i].counter[c], memory_order_relaxed);
    return v;
}

static int64_t sum_gauge(const struct metrics *m, int g)
{
    int64_t v = 0;
    for (unsigned i = 0; i < m->nslots; i++)
        v += atomic_load_explicit(&m->slot[i].gauge[g], memory_order_relaxed);
    return v;
}

/* format_hist - one histogram series: cumulative buckets, sum, count */
static void format_hist(const struct metrics *m, int h, struct sbuf *out)
{
    const struct series *s = &hist_series[h];
    uint64_t cum = 0, sum_us = 0, count = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (unsigned i = 0; i < m->nslots; i++)
            cum += atomic_load_explicit(&m->slot[i].hist[h].bucket[b], memory_order_relaxed);
        if (b < ARRAY_LEN(bucket_us))
            sbuf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", s->family, s->labels,
                        (double)bucket_us[b] / 1e6, (unsigned long long)cum);
        else
            sbuf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", s->family, s->labels,
                        (unsigned long long)cum);
    }
    for (unsigned i = 0; i < m->nslots; i++) {
        sum_us += atomic_load_explicit(&m->slot[i].hist[h].sum_us, memory_order_relaxed);
        count += atomic_load_explicit(&m->slot[i].hist[h].count, memory_order_relaxed);
    }
    /* Read apart from the buckets, count may run ahead of them by a scrape: keep it equal to
     * the +Inf bucket, as the format requires. */
    (void)count;
    sbuf_printf(out, "%s_sum{%s} %.6f\n", s->family, s->labels, (double)sum_us / 1e6);
    sbuf_printf(out, "%s_count{%s} %llu\n", s->family, s->labels, (unsigned long long)cum);
}

/* format_family - HELP, TYPE and every series of one family */
static void format_family(const struct metrics *m, size_t f, struct sbuf *out)
{
    const char *name = families[f].family;
    sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, families[f].help, name, families[f].type);
    for (int c = 0; c < M_NCOUNTERS; c++)
        if (strcmp(counter_series[c].family, name) == 0)
            sbuf_printf(out, "%s%s%s%s %llu\n", name, counter_series[c].labels[0] ? "{" : "",
                        counter_series[c].labels, counter_series[c].labels[0] ? "}" : "",
                        (unsigned long long)sum_counter(m, c));
    for (int g = 0; g < G_NGAUGES; g++)
        if (strcmp(gauge_series[g].family, name) == 0) {
            int64_t v = sum_gauge(m, g);
            if (g == G_QUEUE_OLDEST)        /* kept as the oldest's arrival time */
                v = v > 0 ? (int64_t)time(NULL) - v : 0;
            sbuf_printf(out, "%s %lld\n", name, (long long)(v < 0 ? 0 : v));
        }
    for (int h = 0; h < H_NHISTS; h++)
        if (strcmp(hist_series[h].family, name) == 0)
            format_hist(m, h, out);
}

void metrics_format(const struct metrics *m, struct sbuf *out)
{
    for (size_t f = 0; f < ARRAY_LEN(families); f++)
        format_family(m, f, out);
}
