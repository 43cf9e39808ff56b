/* test_queue.c - the queue engine on a real spool and hints, with a scripted delivery_start
 * standing in for the outbound engine: journal, retry, give-up, bounces, completion, locks,
 * quarantine, removal, parallelism and requests. */
#include "spool_fixture.h"

#include <event2/event.h>
#include <fcntl.h>

#include "conf/conf.h"
#include "core/core.h"
#include "queue/queue.h"
#include "store/store.h"

/* The scripted next hop: a recipient's local part says what happens to it. */
struct script {
    unsigned attempts;        /* delivery_start calls */
    unsigned running, max_running;
    bool tmp_recovers;        /* "tmp" recipients are delivered from the second attempt on */
    unsigned forced;          /* attempts with ignore_retry */
    struct sbuf bounce;       /* content of the last message from <> handed to delivery */
    unsigned bounces;
};
static struct script script;  /* test code: the fake delivery's state */

struct pending_dlv {
    const struct envelope *env;
    bool *attempt;
    delivery_done_cb cb;
    void *arg;
};

/* outcome - what the scripted next hop does with addr */
static void outcome(const char *addr, struct dlv_result *r)
{
    memset(r, 0, sizeof(*r));
    str_copy(r->host, "mx.example.net [192.0.2.7]:25", sizeof(r->host));
    if (strncmp(addr, "ok", 2) == 0 || strncmp(addr, "relay", 5) == 0 ||
        (strncmp(addr, "tmp", 3) == 0 && script.tmp_recovers && script.attempts > 1)) {
        r->outcome = DLV_DELIVERED;
        r->code = 250;
        r->relayed_without_dsn = strncmp(addr, "relay", 5) == 0;
        str_copy(r->text, "250 2.0.0 OK", sizeof(r->text));
    } else if (strncmp(addr, "bad", 3) == 0) {
        r->outcome = DLV_FAILED;
        r->code = 550;
        str_copy(r->ecode, "5.1.1", sizeof(r->ecode));
        str_copy(r->text, "550 5.1.1 no such user", sizeof(r->text));
    } else {
        r->outcome = DLV_DEFERRED;
        r->code = 451;
        str_copy(r->ecode, "4.3.0", sizeof(r->ecode));
        str_copy(r->text, "451 4.3.0 try again later", sizeof(r->text));
    }
}

/* answer - the scripted delivery's verdicts, from the event loop like the real one */
static void answer(evutil_socket_t fd, short what, void *arg)
{
    struct pending_dlv *p = arg;
    struct dlv_result *res = calloc(p->env->nrcpts + 1, sizeof(*res));
    (void)fd;
    (void)what;
    for (size_t i = 0; i < p->env->nrcpts; i++)
        if (p->attempt[i])
            outcome(p->env->rcpts[i].addr, &res[i]);
    script.running--;
    p->cb(p->arg, res);
    free(res);
    free(p->attempt);
    free(p);
}

/* The stand-in for delivery.c (this test links no outbound code). */
void delivery_start(const struct delivery_env *de, const struct envelope *env, const bool *attempt,
                    bool ignore_retry, delivery_final_cb final_cb, delivery_done_cb cb,
                    void *arg)
{
    struct pending_dlv *p = calloc(1, sizeof(*p));
    struct timeval tv = { 0, 20000 };
    (void)final_cb; /* the scripted outcomes are all reported at the end */
    p->env = env;
    p->attempt = xmemdup(attempt, env->nrcpts ? env->nrcpts : 1);
    p->cb = cb;
    p->arg = arg;
    script.attempts++;
    script.forced += ignore_retry;
    if (env->sender[0] == '\0') {
        char buf[4096];
        long n;
        struct spool_reader *r = spool_open_content(de->conf->spool_directory, env->id);
        sbuf_reset(&script.bounce);
        while (r && (n = spool_read_content(r, buf, sizeof(buf))) > 0)
            sbuf_add(&script.bounce, buf, (size_t)n);
        if (r)
            spool_close_content(r);
        script.bounces++;
    }
    if (++script.running > script.max_running)
        script.max_running = script.running;
    event_base_once(de->base, -1, EV_TIMEOUT, answer, p, &tv);
}

/* The engine under test, on a fresh spool. */
struct qfx {
    struct spool_fixture spool;
    struct conf conf;
    unsigned intervals[1];
    struct delivery_env de;
    struct queue *q;
    struct attempt_report last;
    char last_id[MSGID_LEN + 1];
    unsigned reports;
};

static void on_idle(void *arg)
{
    struct qfx *f = arg;
    event_base_loopbreak(f->de.base);
}

static int qsetup(void **state)
{
    char err[256];
    if (spool_fixture_setup(state) != 0)
        return -1;
    struct qfx *f = calloc(1, sizeof(*f));
    f->spool = *(struct spool_fixture *)*state;
    free(*state);
    *state = f;
    f->intervals[0] = 3600;
    f->conf.hostname = "tandem.test";
    f->conf.spool_directory = f->spool.dir;
    f->conf.retry_intervals = f->intervals;
    f->conf.nretry_intervals = 1;
    f->conf.retry_give_up = 5 * 86400;
    f->conf.remote_max_parallel = 20;
    f->de.base = event_base_new();
    f->de.conf = &f->conf;
    f->de.hints = hints_open(f->spool.dir, err, sizeof(err));
    f->q = queue_new(&f->de);
    queue_set_idle_cb(f->q, on_idle, f);
    memset(&script, 0, sizeof(script));
    return log_open(f->spool.dir) && f->de.hints ? 0 : -1;
}

static int qteardown(void **state)
{
    struct qfx *f = *state;
    sbuf_free(&script.bounce);
    queue_free(f->q);
    hints_close(f->de.hints);
    event_base_free(f->de.base);
    struct spool_fixture *s = malloc(sizeof(*s));
    *s = f->spool;
    *state = s;
    free(f);
    return spool_fixture_teardown(state);
}

/* new_message - spool a message from sender to the comma-separated recipients */
static void new_message(struct qfx *f, const char *sender, const char *rcpts, unsigned notify,
                        char id[MSGID_LEN + 1])
{
    struct envelope env;
    char list[256], *save = NULL;
    const char *content = "Subject: test\r\nMessage-ID: <t@example.org>\r\n\r\nbody\r\n";
    envelope_init(&env);
    env.arrival = time(NULL);
    envelope_set(&env.sender, sender);
    str_copy(list, rcpts, sizeof(list));
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
        envelope_add_rcpt(&env, a, notify, NULL);
    assert_true(commit_msg(f->spool.dir, &env, content, strlen(content), 0));
    str_copy(id, env.id, MSGID_LEN + 1);
    envelope_free(&env);
}

static void on_report(void *arg, const struct attempt_report *rep)
{
    struct qfx *f = arg;
    f->last = *rep;
    f->last.env = NULL;
    f->last.results = NULL;
    str_copy(f->last_id, rep->id, sizeof(f->last_id));
    f->reports++;
}

/* run - the loop until nothing runs and nothing is due */
static void run(struct qfx *f)
{
    struct timeval limit = { 10, 0 };
    event_base_loopexit(f->de.base, &limit);
    event_base_dispatch(f->de.base);
}

/* states - recipient states as ".df" letters; "gone" when the message left the spool */
static const char *states(struct qfx *f, const char *id)
{
    static char out[32];
    struct envelope env;
    if (spool_read_envelope(f->spool.dir, id, &env) != 0)
        return "gone";
    for (size_t i = 0; i < env.nrcpts && i < 31; i++)
        out[i] = ".df"[env.rcpts[i].state];
    out[env.nrcpts < 31 ? env.nrcpts : 31] = '\0';
    envelope_free(&env);
    return out;
}

/* mainlog - the whole main log */
static const char *mainlog(struct qfx *f)
{
    static char buf[65536];
    char path[256];
    str_fmt(path, sizeof(path), "%s/mainlog", f->spool.dir);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* other_ids - spool ids other than id (bounces); returns how many, first in out */
static size_t other_ids(struct qfx *f, const char *id, char out[MSGID_LEN + 1])
{
    char **ids;
    size_t n = spool_list(f->spool.dir, &ids), k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) != 0 && k++ == 0)
            str_copy(out, ids[i], MSGID_LEN + 1);
    spool_list_free(ids, n);
    return k;
}

static void test_mixed_outcomes_then_retry(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1], bid[MSGID_LEN + 1];
    struct msg_state st;
    struct rcpt_note note;
    script.tmp_recovers = true;
    new_message(f, "alice@example.org", "ok@example.net,tmp@example.net,bad@example.net", 0, id);
    queue_add(f->q, id);
    run(f);
    assert_string_equal(states(f, id), "d.f");
    assert_true(qstate_get(f->de.hints, id, &st));
    assert_int_equal(st.attempts, 1);
    assert_true(st.next_try >= time(NULL) + 3500);        /* the first interval */
    assert_true(qstate_note_get(f->de.hints, id, 1, &note));
    assert_string_equal(note.res.text, "451 4.3.0 try again later");
    assert_int_equal(other_ids(f, id, bid), 0);           /* no bounce while one is pending */
    assert_int_equal(script.forced, 0);
    queue_request(f->q, id, on_report, f);                 /* `deliver ID` */
    run(f);
    assert_int_equal(script.forced, 1);
    assert_int_equal(f->reports, 1);
    assert_int_equal(f->last.status, ATT_DONE);
    assert_true(f->last.completed);
    assert_int_equal(f->last.delivered, 1);
    assert_string_equal(states(f, id), "gone");
    assert_false(qstate_get(f->de.hints, id, &st));      /* state forgotten */
    assert_int_equal(other_ids(f, id, bid), 1);
    struct envelope b;
    assert_int_equal(spool_read_envelope(f->spool.dir, bid, &b), 0);
    assert_string_equal(b.sender, "");
    assert_string_equal(b.rcpts[0].addr, "alice@example.org");
    envelope_free(&b);
    assert_int_equal(script.bounces, 1);                  /* the bounce was attempted at once */
    assert_non_null(strstr(script.bounce.s, "Final-Recipient: rfc822; bad@example.net\r\n"));
    assert_non_null(strstr(script.bounce.s, "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
    assert_null(strstr(script.bounce.s, "ok@example.net\r\n"));
    assert_non_null(strstr(mainlog(f), " Completed"));
    assert_non_null(strstr(mainlog(f), " <= <> R="));
}

static void test_give_up(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    f->conf.retry_give_up = 0;   /* any deferral is past the give-up time */
    new_message(f, "ok-sender@example.org", "ok@example.net,tmp@example.net", 0, id);
    queue_add(f->q, id);
    run(f);
    assert_string_equal(states(f, id), "gone");
    assert_non_null(strstr(mainlog(f), "** tmp@example.net: retry timeout exceeded"));
    assert_int_equal(script.bounces, 1);
    assert_non_null(strstr(script.bounce.s, "retry timeout exceeded"));
    assert_non_null(strstr(script.bounce.s, "Final-Recipient: rfc822; tmp@example.net\r\n"));
    assert_non_null(strstr(script.bounce.s, "Status: 4.3.0\r\n"));
    assert_null(strstr(script.bounce.s, "Final-Recipient: rfc822; ok@example.net"));
}

static void test_null_sender_never_bounced(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1], bid[MSGID_LEN + 1];
    new_message(f, "", "bad@example.net", 0, id);
    queue_add(f->q, id);
    run(f);
    assert_string_equal(states(f, id), "gone");
    assert_int_equal(other_ids(f, id, bid), 0);
    assert_non_null(strstr(mainlog(f), "no bounce sent for 1 address(es): the sender is <>"));
}

static void test_relayed_dsn(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    new_message(f, "alice@example.org", "relay@example.net", DSN_NOTIFY_SUCCESS, id);
    queue_add(f->q, id);
    run(f);
    assert_string_equal(states(f, id), "gone");
    assert_int_equal(script.bounces, 1);
    assert_non_null(strstr(script.bounce.s, "Action: relayed\r\n"));
}

static void test_bounce_is_attempted_too(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    new_message(f, "okay@example.org", "bad@example.net", 0, id);
    queue_add(f->q, id);
    run(f);
    /* the original, then its bounce to okay@ (delivered by the scripted hop) */
    assert_int_equal(script.attempts, 2);
    char **ids;
    size_t n = spool_list(f->spool.dir, &ids);
    assert_int_equal(n, 0);
    spool_list_free(ids, n);
}

static void test_locked_message_is_skipped(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    new_message(f, "alice@example.org", "ok@example.net", 0, id);
    int fd = spool_lock(f->spool.dir, id);    /* as a cutthrough or `tandem queue` would */
    assert_true(fd >= 0);
    queue_request(f->q, id, on_report, f);
    run(f);
    assert_int_equal(f->last.status, ATT_LOCKED);
    assert_int_equal(script.attempts, 0);
    assert_string_equal(states(f, id), ".");
    spool_unlock(fd);
    queue_request(f->q, id, on_report, f);
    run(f);
    assert_int_equal(f->last.status, ATT_DONE);
    assert_string_equal(states(f, id), "gone");
}

static void test_corrupt_file_is_quarantined(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1], path[256];
    struct stat st;
    new_message(f, "alice@example.org", "ok@example.net", 0, id);
    str_fmt(path, sizeof(path), "%s/input/%s", f->spool.dir, id);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "garbage", 7), 7);
    close(fd);
    queue_request(f->q, id, on_report, f);
    run(f);
    assert_int_equal(f->last.status, ATT_CORRUPT);
    assert_int_equal(stat(path, &st), -1);
    str_fmt(path, sizeof(path), "%s/corrupt/%s", f->spool.dir, id);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(script.attempts, 0);
}

static void test_unknown_id(void **state)
{
    struct qfx *f = *state;
    queue_request(f->q, "AAAAAA-BBBBBB-CC", on_report, f);
    run(f);
    assert_int_equal(f->last.status, ATT_GONE);
    queue_request(f->q, "../../etc/passwd", on_report, f);
    assert_int_equal(f->last.status, ATT_GONE);
    assert_int_equal(queue_length(f->q), 0);
}

static void test_remove(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1], err[256];
    new_message(f, "alice@example.org", "tmp@example.net", 0, id);
    queue_add(f->q, id);
    run(f);
    assert_string_equal(states(f, id), ".");
    assert_true(queue_remove(f->q, id, "root", err, sizeof(err)));
    assert_string_equal(states(f, id), "gone");
    assert_non_null(strstr(mainlog(f), " removed by root"));
    assert_false(queue_remove(f->q, id, "root", err, sizeof(err)));
    assert_non_null(strstr(err, "no such message"));
    assert_int_equal(queue_length(f->q), 0);
}

static void test_parallel_limit_and_deliver_all(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    f->conf.remote_max_parallel = 2;
    for (int i = 0; i < 6; i++)
        new_message(f, "alice@example.org", "tmp@example.net", 0, id);
    assert_int_equal(queue_scan(f->q), 6);
    run(f);
    assert_int_equal(script.attempts, 6);
    assert_int_equal(script.max_running, 2);
    f->reports = 0;
    assert_int_equal(queue_request_all(f->q, on_report, f), 6);   /* `deliver-all` */
    run(f);
    assert_int_equal(f->reports, 6);
    assert_int_equal(script.attempts, 12);
    assert_int_equal(script.forced, 6);
    assert_int_equal(queue_scan(f->q), 0);                          /* all known */
}

static void test_stop_answers_waiting_requests(void **state)
{
    struct qfx *f = *state;
    char id[MSGID_LEN + 1];
    new_message(f, "alice@example.org", "ok@example.net", 0, id);
    queue_stop(f->q);
    queue_request(f->q, id, on_report, f);
    assert_int_equal(f->last.status, ATT_STOPPED);
    run(f);
    assert_int_equal(script.attempts, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mixed_outcomes_then_retry, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_give_up, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_null_sender_never_bounced, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_relayed_dsn, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_bounce_is_attempted_too, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_locked_message_is_skipped, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_is_quarantined, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_unknown_id, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_remove, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_parallel_limit_and_deliver_all, qsetup, qteardown),
        cmocka_unit_test_setup_teardown(test_stop_answers_waiting_requests, qsetup, qteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
