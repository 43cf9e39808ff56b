/* dialer.c - THE way to an onward connection, one per process (see outbound/outbound.h): the
 * options of a hop (dialer_opts, the one place they are made), the watcher of every connection
 * it made (each outcome updates the host's health record, shared by all processes; the lease
 * under the per-host limit goes back when the connection is gone), and connections given back
 * to the pool.  One dial's walk over a route's hosts is dial.c. */
#include "dialer_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

/* ---- the dialer ------------------------------------------------------------------------- */

/* dialer_pool_key - what makes two connections interchangeable: address, port, TLS policy, name */
void dialer_pool_key(const struct next_hop *h, char *buf, size_t sz)
{
    char a[80];
    hop_addr_key(h, a, sizeof(a));
    str_fmt(buf, sz, "%s/%d/%s", a, (int)h->tls, h->name);
}

/* reclaim - another process waits for this pooled connection's host (conn_pool's question) */
static bool reclaim(void *arg, struct smtp_out *so)
{
    struct dialer *dr = arg;
    const struct dconn *dc = smtp_out_watcher(so);
    return dc && host_limit_wanted(dr->limit, dc->lease);
}

struct dialer *dialer_new(struct event_base *base, const struct conf *c, struct ssl_ctx_st *client_tls,
                          struct hints *hints, struct tlsp *tlsp)
{
    static const struct conn_pool_ops ops = { reclaim };
    char err[512];
    struct dialer *dr = xcalloc(1, sizeof(*dr));
    dr->base = base;
    dr->conf = c;
    dr->client_tls = client_tls;
    dr->hints = hints;
    dr->tlsp = tlsp;
    dr->leases = leases_open(c->spool_directory, err, sizeof(err));
    if (dr->leases == NULL)
        log_main("%s: callout_max_per_host is counted in this process only", err);
    dr->limit = host_limit_new(base, dr->leases, c->callout_max_per_host);
    dr->resume = tls_resume_new(client_tls);
    dr->pool = conn_pool_new(base, c->onward_pool_idle, c->onward_pool_size ? DIAL_POOL_MAX : 0,
                             &ops, dr);
    return dr;
}

void dialer_free(struct dialer *dr)
{
    if (dr == NULL)
        return;
    conn_pool_free(dr->pool);     /* QUITs; the replies come after we are gone */
    for (struct dconn *dc = dr->conns; dc; dc = dc->next) {
        host_limit_release(dr->limit, dc->lease);   /* given back now */
        dc->dr = NULL;
    }
    host_limit_free(dr->limit);
    dr->limit = NULL;
    tls_resume_free(dr->resume);
    leases_close(dr->leases);
    dr->leases = NULL;
    free(dr);
}

void dialer_close_pool(struct dialer *dr)
{
    if (dr)
        conn_pool_clear(dr->pool);
}

struct event_base *dialer_base(const struct dialer *dr) { return dr->base; }
const struct conf *dialer_conf(const struct dialer *dr) { return dr->conf; }
struct hints *dialer_hints(const struct dialer *dr) { return dr->hints; }
size_t dialer_pooled(const struct dialer *dr) { return conn_pool_count(dr->pool, NULL); }

void dialer_opts(const struct dialer *dr, const struct next_hop *hop, const struct dial_req *req,
                 const struct tls_req *treq, struct next_hop *dial, struct smtp_out_opts *o)
{
    const struct conf *c = dr->conf;
    memset(o, 0, sizeof(*o));
    *dial = *hop;
    o->helo = c->helo_data ? c->helo_data : c->hostname ? c->hostname : "localhost";
    o->tls = hop->tls;
    if (treq)
        tlsp_apply(treq, dial, o);      /* the hop's TLS requirement, as tls_policy decided */
    o->ssl_ctx = dr->client_tls;
    o->resume = dr->resume;
    if (req->use == DIAL_DELIVERY) {
        unsigned data = c->data_timeout ? c->data_timeout : 300;
        o->connect_timeout = c->connect_timeout ? c->connect_timeout : 30;
        o->command_timeout = data < DIAL_COMMAND_TIMEOUT ? data : DIAL_COMMAND_TIMEOUT;
        o->data_timeout = data;
    } else {
        unsigned t = req->timeout ? req->timeout : c->callout_timeout;
        o->connect_timeout = o->command_timeout = t ? t : 30;
        o->data_timeout = c->cutthrough_data_timeout ? c->cutthrough_data_timeout : 540;
    }
    if (o->ssl_ctx == NULL && o->tls == TLS_MAY)
        dial->tls = o->tls = TLS_NONE;
}

/* ---- the watcher: health and leases of every connection the dialer made ---------------- */

static void watch_outcome(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct dconn *dc = arg;
    (void)so;
    if (dc->dr == NULL || dc->dr->hints == NULL || dc->idle || dc->checking)
        return;
    if (f == NULL)
        health_ok(dc->dr->hints, &dc->hop);
    else if (f->in_session && f->kind != SOF_TIMEOUT)
        health_noted(dc->dr->hints, &dc->hop, f->text);   /* the host works: this session did not */
    else
        health_failed(dc->dr->hints, dc->dr->conf, &dc->hop, f->text);
}

static void watch_closed(void *arg, struct smtp_out *so)
{
    struct dconn *dc = arg;
    (void)so;
    if (dc->dr) {
        host_limit_release(dc->dr->limit, dc->lease);
        if (dc->prev)
            dc->prev->next = dc->next;
        else
            dc->dr->conns = dc->next;
        if (dc->next)
            dc->next->prev = dc->prev;
    }
    free(dc);
}

static const struct smtp_out_watch dconn_watch = { watch_outcome, watch_closed };

void dialer_watch(struct dialer *dr, struct smtp_out *so, const struct next_hop *hop, int lease)
{
    struct dconn *dc = xcalloc(1, sizeof(*dc));
    dc->dr = dr;
    dc->hop = *hop;
    dc->lease = lease;
    dc->next = dr->conns;
    if (dc->next)
        dc->next->prev = dc;
    dr->conns = dc;
    smtp_out_watch(so, &dconn_watch, dc);
}

void dialer_release(struct dialer *dr, struct smtp_out *so)
{
    struct dconn *dc = so ? smtp_out_watcher(so) : NULL;
    char key[400];
    if (so == NULL)
        return;
    if (dc && smtp_out_is_ready(so) && dr->conf->onward_pool_size > 0) {
        dialer_pool_key(&dc->hop, key, sizeof(key));
        /* onward_pool_size per next hop in this process: a process keeps what its own load
         * needs (the daemon's total stays under callout_max_per_host, and a process waiting at
         * that limit makes the others give idle ones up) */
        bool room = conn_pool_count(dr->pool, key) < dr->conf->onward_pool_size;
        if (room && !host_limit_wanted(dr->limit, dc->lease)) {
            dc->idle = true;
            host_limit_set_idle(dr->limit, dc->lease, true);
            if (conn_pool_put(dr->pool, so, key))
                return;
            dc->idle = false;
            host_limit_set_idle(dr->limit, dc->lease, false);
        }
    }
    smtp_out_quit(so);
}

static void recycle_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                          const struct smtp_reply *r)
{
    (void)tag;
    if (cmd != SOC_RSET)
        return;
    if (r->code >= 200 && r->code < 300)
        dialer_release(arg, so);
    else
        smtp_out_quit(so);
}

static void recycle_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    (void)arg;
    (void)f;
    smtp_out_free(so);
}

void dialer_recycle(struct dialer *dr, struct smtp_out *so)
{
    static const struct smtp_out_cbs cbs = { NULL, recycle_reply, recycle_failed, NULL };
    if (so == NULL)
        return;
    if (smtp_out_is_ready(so) || dr->conf->onward_pool_size == 0 || !smtp_out_can_reset(so)) {
        dialer_release(dr, so);          /* pooled, or QUIT (abruptly closed mid-data) */
        return;
    }
    smtp_out_set_cbs(so, &cbs, dr);
    smtp_out_rset(so, NULL);
}
