"""Load with reconciliation (issue "Hostile input, faults and crashes").

Inbound: Postfix's smtp-source sends LOAD_MESSAGES messages over LOAD_SESSIONS concurrent
sessions into tandem, which delivers them from its queue to Postfix's smtp-sink.  Every
message is accounted for: smtp-source's count = the "<=" lines = the messages smtp-sink got =
the "=>" lines = the "Completed" lines, ids unique, and the spool is empty at the end.

Cutthrough: a Python client (LOAD_CUT_SESSIONS concurrent sessions, LOAD_CUT_MESSAGES
messages) sends through tandem with cutthrough to a scripted next hop that misbehaves by
design, message by message (accept; refuse the recipient; refuse or defer at the final dot;
drop the connection after DATA); each message's outcome at the client, in the logs and at the
next hop is checked against what its script makes it.

Defaults fit CI (a few seconds each); the issue's full size:
    scripts/loadtest            (= LOAD_SESSIONS=500 LOAD_MESSAGES=20000
                                   LOAD_CUT_SESSIONS=500 LOAD_CUT_MESSAGES=20000 pytest ...)
"""
import hashlib
import os
import re
import socket
import threading
import time
from collections import Counter

import pytest

from harness import DROP, SmtpConn, relay_config, tmp_leftovers, wait_until
from harness.interop import have_postfix_tools, smtp_source

SESSIONS = int(os.environ.get("LOAD_SESSIONS", "200"))
MESSAGES = int(os.environ.get("LOAD_MESSAGES", "5000"))
CUT_SESSIONS = int(os.environ.get("LOAD_CUT_SESSIONS", "100"))
CUT_MESSAGES = int(os.environ.get("LOAD_CUT_MESSAGES", "2000"))
LIMITS = {"smtp_accept_max": str(max(SESSIONS, CUT_SESSIONS) * 2 + 10),
          "smtp_accept_max_per_host": str(max(SESSIONS, CUT_SESSIONS) * 2 + 10),
          "workers": "2", "remote_max_parallel": "50"}


def count(log, regex):
    return len(re.findall(regex, log, re.M))


@pytest.mark.skipif(not have_postfix_tools(), reason="postfix tools not extracted")
def test_inbound_load_every_message_accounted_for(tandem, smtp_sink):
    sink = smtp_sink()
    t = tandem(f"""
        domainlist relay_to_domains = example.test
        acl_smtp_rcpt = check_rcpt
        begin routes
        example.test  [127.0.0.1]:{sink.port}
        begin acl
        check_rcpt:
          accept  domains = +relay_to_domains
        """, options=LIMITS)
    start = time.monotonic()
    rc, out, err = smtp_source(t.port, count=MESSAGES, sessions=SESSIONS, size=2000, rcpts=1,
                               sender="load@client.test", to="x@example.test", reuse=True,
                               timeout=600)
    assert rc == 0, err
    sink.wait_count(MESSAGES, timeout=max(60, MESSAGES / 20))
    wait_until(lambda: t.spool_ids() == [], max(60, MESSAGES / 20), "the queue to drain",
               detail=lambda: f"{len(t.spool_ids())} left")
    t.wait_log(r"^\S+ \S+ \S+ Completed$", count=MESSAGES)   # logged after the removal
    elapsed = time.monotonic() - start
    log = t.mainlog()
    arrivals = re.findall(r"^\S+ \S+ (\S+) <= load@client\.test ", log, re.M)
    assert len(arrivals) == MESSAGES and len(set(arrivals)) == MESSAGES
    delivered = re.findall(r"^\S+ \S+ (\S+) => x@example\.test ", log, re.M)
    assert sorted(delivered) == sorted(arrivals)                  # each delivered once
    completed = re.findall(r"^\S+ \S+ (\S+) Completed$", log, re.M)
    assert sorted(completed) == sorted(arrivals)
    assert sink.count() == MESSAGES
    ids_at_sink = Counter(re.search(rb"\(tandem\) with \S+ id (\S+)", m).group(1).decode()
                          for m in sink.messages())                # tandem's Received: id
    assert set(ids_at_sink) == set(arrivals) and max(ids_at_sink.values()) == 1
    assert tmp_leftovers(t.spool) == []
    assert t.paniclog() == "" and count(log, r"\*\* |==") == 0
    print(f"\n{MESSAGES} messages over {SESSIONS} sessions in {elapsed:.1f}s")


# ---- cutthrough to a misbehaving next hop ---------------------------------------------------
# Each message has one recipient whose local part names what the next hop does with it:
#   ok       accepts                          client 250; ">>" (cutthrough), delivered once
#   rcpt550  refuses the recipient            client 550 to RCPT; nothing stored or sent
#   dot550   refuses the message at the dot   client 550; next hop has it refused, not stored
#   dot451   defers at the dot, then accepts  client 250 (defer=spool); "=>" from the queue
#   drop     closes after the DATA command    client 250 (spooled); "=>" from the queue
MODES = ["ok", "ok", "ok", "rcpt550", "dot550", "dot451", "drop"]


def mode_of(i):
    return MODES[int(hashlib.sha256(str(i).encode()).hexdigest(), 16) % len(MODES)]


class MisbehavingScript:
    """NextHop actions keyed on the recipient's local part; a dot451 recipient is deferred
    the first time and accepted after; a drop recipient is dropped the first time."""

    def __init__(self):
        self.lock, self.seen = threading.Lock(), Counter()

    def _first(self, key):
        with self.lock:
            self.seen[key] += 1
            return self.seen[key] == 1

    @staticmethod
    def _mode(session):
        rcpts = session.accepted_rcpts
        return rcpts[0].split("-", 1)[0] if rcpts else ""

    def rcpt(self, session, arg):
        if ":<rcpt550-" in arg:                      # arg is "TO:<address> params"
            return "550 5.1.1 no such user"
        return "250 2.1.5 recipient ok"

    def data(self, session, arg):
        if self._mode(session) == "drop" and self._first(("drop", session.accepted_rcpts[0])):
            return DROP
        return "354 go ahead"

    def dot(self, session, arg):
        mode = self._mode(session)
        if mode == "dot550":
            return "550 5.7.1 content refused"
        if mode == "dot451" and self._first(("dot451", session.accepted_rcpts[0])):
            return "451 4.3.0 try again later"
        return None                                   # the default 250


def cut_client(port, indexes, results):
    """One session sending the messages `indexes`; results[i] = (rcpt code, final code, id)."""
    c = SmtpConn(port, timeout=60)
    c.ehlo()
    for i in indexes:
        rcpt = f"{mode_of(i)}-{i}@example.test"
        c.expect(250, f"MAIL FROM:<load@client.test>")
        code, _ = c.cmd(f"RCPT TO:<{rcpt}>")
        if code != 250:
            c.expect(250, "RSET")
            results[i] = (code, None, None)
            continue
        final, lines = c.data(b"Subject: load %d\r\n\r\nmessage %d\r\n" % (i, i))
        m = re.search(r"id=(\S+)", lines[0])
        results[i] = (250, final, m.group(1) if m and final == 250 else None)
    c.quit()


def test_cutthrough_load_with_a_misbehaving_next_hop(tandem, nexthop):
    script = MisbehavingScript()
    hop = nexthop(rcpt=script.rcpt, data=script.data, dot=script.dot, keep_data=False)
    t = tandem(relay_config(hop, cutthrough=True),
               options={**LIMITS, "callout_max_per_host": "10000",
                        "smtp_max_errors": "1000"})    # refusals count as errors
    results = {}
    per = [list(range(s, CUT_MESSAGES, CUT_SESSIONS)) for s in range(CUT_SESSIONS)]
    threads = [threading.Thread(target=cut_client, args=(t.port, idx, results)) for idx in per]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    assert len(results) == CUT_MESSAGES
    wait_until(lambda: t.spool_ids() == [], max(60, CUT_MESSAGES / 20), "the queue to drain",
               detail=lambda: f"{len(t.spool_ids())} left: {t.spool_ids()[:5]}")
    kept = {r[2] for i, r in results.items() if mode_of(i) not in ("rcpt550", "dot550")}
    wait_until(lambda: kept <= set(re.findall(r"^\S+ \S+ (\S+) Completed$", t.mainlog(), re.M)),
               30, "a Completed line for each message (logged after its removal)")
    elapsed = time.monotonic() - start
    lines = Counter(re.findall(r"^\S+ \S+ (\S+) (>>|=>) (\S+) ", t.mainlog(), re.M))
    completed = Counter(re.findall(r"^\S+ \S+ (\S+) Completed$", t.mainlog(), re.M))
    accepted = Counter(m.rcpts[0] for m in hop.accepted)
    received = Counter(m.rcpts[0] for m in hop.received)
    for i, (rcpt_code, final, msg_id) in sorted(results.items()):
        mode, rcpt = mode_of(i), f"{mode_of(i)}-{i}@example.test"
        if mode == "rcpt550":
            assert (rcpt_code, final) == (550, None), (i, results[i])
            assert received[rcpt] == 0
            continue
        if mode == "dot550":
            assert (rcpt_code, final, received[rcpt], accepted[rcpt]) == (250, 550, 1, 0), i
            continue
        assert final == 250 and msg_id, (i, mode, results[i])
        assert accepted[rcpt] == 1, (i, mode, accepted[rcpt])     # delivered exactly once
        sign = ">>" if mode == "ok" else "=>"                     # cutthrough or queue
        assert lines[(msg_id, sign, rcpt)] == 1 and completed[msg_id] == 1, (i, mode)
    delivered = [i for i in results if mode_of(i) not in ("rcpt550", "dot550")]
    assert sum(accepted.values()) == len(delivered) == sum(lines.values())
    assert tmp_leftovers(t.spool) == []
    assert t.paniclog() == ""
    print(f"\n{CUT_MESSAGES} cutthrough messages over {CUT_SESSIONS} sessions in {elapsed:.1f}s")
