/* metrics_proc.c - the metrics process: libevent's evhttp on the metrics_listen socket, which
 * the parent bound.  It runs as the unprivileged user, in its own process: an HTTP request
 * (input from the network) is never parsed by the root parent, and a scrape never costs a
 * worker or the scheduler anything but the relaxed atomic adds they do anyway.  It only reads
 * the shared counter slots (metrics.c) and formats their sums. */
#include "metrics_proc.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define HTTP_TIMEOUT_S 10
#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY 0

/* serve_metrics - GET /metrics: the exposition of every slot summed */
static void serve_metrics(struct evhttp_request *req, void *arg)
{
    const struct metrics *m = arg;
    struct sbuf text;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL)
        fatalx("evbuffer_new");
    sbuf_init(&text);
    metrics_format(m, &text);
    evbuffer_add(out, text.s ? text.s : "", text.len);
    sbuf_free(&text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

/* serve_other - anything but /metrics */
static void serve_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

void metrics_proc_run(int fd, const struct metrics *m)
{
    log_set_process("tandem-metrics");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (http == NULL || evhttp_accept_socket(http, fd) != 0)
        fatalx("evhttp set-up on the metrics socket");
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(http, HTTP_TIMEOUT_S);
    evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(http, HTTP_MAX_BODY);
    evhttp_set_cb(http, "/metrics", serve_metrics, (void *)m);
    evhttp_set_gencb(http, serve_other, NULL);
    struct event *term = evsignal_new(base, SIGTERM, sigterm_cb, base);
    evsignal_add(term, NULL);
    if (getppid() == 1)
        raise(SIGTERM);
    event_base_dispatch(base);
    _exit(0);
}
