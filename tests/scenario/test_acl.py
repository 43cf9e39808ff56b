"""ACL verbs at every SMTP stage, as the client and the logs see them (the policy issue).

One policy (VERBS) has a statement for each verb at each stage, keyed on the client address
(connect, HELO), the sender (MAIL, predata, DATA) or the recipient's local part (RCPT).  Every
case of the table runs twice: through `tandem session --no-deliver --client IP` and against the
daemon over TCP from that source address, and must get the same replies and log lines.
The semantics are Exim's: implicit deny at the end of an ACL; `discard` accepts and drops
silently; `drop` replies and closes; `defer` gives 4xx; `warn` logs and goes on; `require`
denies when a condition fails.  Reject lines go to the main and the reject log alike, in
Exim's wording:

    H=[ip] rejected connection in "connect" ACL[: why]
    H=(helo) [ip] rejected EHLO or HELO helo[: why]
    H=(helo) [ip] rejected MAIL <sender>[: why]
    H=(helo) [ip] F=<sender> rejected RCPT <rcpt>[: why]
    H=(helo) [ip] rejected DATA[: why]
    ID H=(helo) [ip] F=<sender> rejected after DATA[: why]
    (temporarily rejected ... for defer)

The daemon-only tests below cover what needs a real connection or a spool: a dropped
connection is closed, discarded messages leave nothing behind, add_header reaches the stored
message and the next hop, delays, and IPv6 clients.
"""
import os
import re
import socket
import time

import pytest

from aclkit import daemon_session, log_lines, policy_box
from harness import MSGID, SmtpConn, Tandem, read_spool, relay_config

pytestmark = pytest.mark.needs_tandem

BODY = b"Subject: acl test\r\n\r\nhello\r\n.\r\n"
ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"

VERBS = r"""
acl_smtp_connect = c_connect
acl_smtp_helo    = c_helo
acl_smtp_mail    = c_mail
acl_smtp_rcpt    = c_rcpt
acl_smtp_predata = c_predata
acl_smtp_data    = c_data

begin routes
*  [127.0.0.2]:1

begin acl
c_connect:
  deny    hosts = 127.0.0.10
  deny    hosts = 127.0.0.11
          message = go away $sender_host_address
          log_message = connect refused for $sender_host_address
  drop    hosts = 127.0.0.12
          message = 554 5.7.1 dropped at connect
  defer   hosts = 127.0.0.13
  warn    hosts = 127.0.0.14
          log_message = connect warning for $sender_host_address
  discard hosts = 127.0.0.16
  require message = required at connect
          hosts = !127.0.0.15
  accept

c_helo:
  deny    hosts = 127.0.0.20
          message = no HELO $sender_helo_name from you
  drop    hosts = 127.0.0.21
  defer   hosts = 127.0.0.22
          message = 451 4.7.0 HELO later
  warn    hosts = 127.0.0.23
          log_message = helo warning $sender_helo_name
  discard hosts = 127.0.0.25
  require hosts = !127.0.0.24
  accept

c_mail:
  deny    senders = deny@*
          message = sender $sender_address refused
  drop    senders = drop@*
  defer   senders = defer@*
  discard senders = discard@*
  warn    senders = warn@*
          log_message = mail warning $sender_address
  require message = required sender
          senders = !require@*
  accept

c_rcpt:
  deny    local_parts = deny
          message = 550 5.1.1 <$local_part@$domain>: no such user
  drop    local_parts = drop
          message = 550 5.7.1 bye $local_part
  defer   local_parts = defer
          message = 450 4.2.0 $local_part is greylisted
  discard local_parts = discard
          log_message = rcpt discarded $local_part
  warn    local_parts = warn
          log_message = rcpt warning $local_part
  require message = required $local_part
          local_parts = !require
  accept  local_parts = accept : warn : ok

c_predata:
  deny    senders = pdeny@*
          message = no data for $sender_address
  drop    senders = pdrop@*
  defer   senders = pdefer@*
  discard senders = pdiscard@*
  warn    senders = pwarn@*
          log_message = predata warning $sender_address
  require senders = !preq@*
  accept

c_data:
  deny    senders = ddeny@*
          message = 550 5.7.1 content refused ($message_id)
  drop    senders = ddrop@*
  defer   senders = ddefer@*
  discard senders = ddiscard@*
          log_message = data discarded
  warn    senders = dwarn@*
          log_message = data warning $message_id
  require senders = !dreq@*
  accept
"""

ADMIN = "5.7.1 Administrative prohibition"
LATER = "4.7.1 Temporary local problem - please try later"



def txn(sender, rcpts=("accept@example.test",), data=True, body=True):
    steps = ["EHLO c.test", f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in rcpts]
    if data:
        steps.append("DATA")
        if body:
            steps.append(BODY)
    return steps


# (id, client, steps, [(step index, code, first line or None)], closed, main-log regexes,
#  reject-log regexes (each also required in the main log), and None = "nothing rejected")
# {ip} is the client, {id} a message id (the same one throughout a case).
CASES = [
    # -- connect
    ("connect-accept", "127.0.0.1", ["EHLO c.test"], [(-1, 220, None), (0, 250, None)], False,
     [], None),
    ("connect-deny", "127.0.0.10", ["EHLO c.test"], [(-1, 554, ADMIN)], True,
     [], [r'^H=\[{ip}\] rejected connection in "connect" ACL$']),
    ("connect-deny-message", "127.0.0.11", ["EHLO c.test"],
     [(-1, 554, "5.7.1 go away 127.0.0.11")], True,
     [], [r'^H=\[{ip}\] rejected connection in "connect" ACL: connect refused for {ip}$']),
    ("connect-drop", "127.0.0.12", ["EHLO c.test"], [(-1, 554, "5.7.1 dropped at connect")], True,
     [], [r'^H=\[{ip}\] rejected connection in "connect" ACL: 554 5\.7\.1 dropped at connect$']),
    ("connect-defer", "127.0.0.13", ["EHLO c.test"], [(-1, 451, LATER)], True,
     [], [r'^H=\[{ip}\] temporarily rejected connection in "connect" ACL$']),
    ("connect-warn", "127.0.0.14", ["EHLO c.test"], [(-1, 220, None), (0, 250, None)], False,
     [r"^H=\[{ip}\] Warning: connect warning for {ip}$"], None),
    ("connect-discard", "127.0.0.16", ["EHLO c.test"], [(-1, 220, None), (0, 250, None)], False,
     [], None),                                       # acts as accept (Exim refuses it here)
    ("connect-require", "127.0.0.15", ["EHLO c.test"], [(-1, 554, "5.7.1 required at connect")],
     True, [], [r'^H=\[{ip}\] rejected connection in "connect" ACL: required at connect$']),
    # -- HELO/EHLO: a refused greeting leaves the client unGreeted
    ("helo-deny", "127.0.0.20", ["EHLO h.test", "MAIL FROM:<a@s.test>"],
     [(0, 550, "5.7.1 no HELO h.test from you"), (1, 503, "5.5.1 EHLO or HELO first")], False,
     [], [r"^H=\(h\.test\) \[{ip}\] rejected EHLO or HELO h\.test: no HELO h\.test from you$"]),
    ("helo-drop", "127.0.0.21", ["EHLO h.test", "NOOP"], [(0, 550, ADMIN)], True,
     [], [r"^H=\(h\.test\) \[{ip}\] rejected EHLO or HELO h\.test$"]),
    ("helo-defer", "127.0.0.22", ["HELO h.test", "MAIL FROM:<a@s.test>"],
     [(0, 451, "4.7.0 HELO later"), (1, 503, None)], False,
     [], [r"^H=\(h\.test\) \[{ip}\] temporarily rejected EHLO or HELO h\.test: 451 4\.7\.0 HELO later$"]),
    ("helo-warn", "127.0.0.23", ["EHLO h.test", "MAIL FROM:<a@s.test>"],
     [(0, 250, None), (1, 250, None)], False,
     [r"^H=\(h\.test\) \[{ip}\] Warning: helo warning h\.test$"], None),
    ("helo-discard", "127.0.0.25", ["EHLO h.test", "MAIL FROM:<a@s.test>"],
     [(0, 250, None), (1, 250, None)], False, [], None),
    ("helo-require", "127.0.0.24", ["EHLO h.test"], [(0, 550, ADMIN)], False,
     [], [r"^H=\(h\.test\) \[{ip}\] rejected EHLO or HELO h\.test$"]),
    # -- MAIL: a refused sender leaves no transaction
    ("mail-deny", "127.0.0.1", txn("deny@s.test", data=False),
     [(1, 550, "5.7.1 sender deny@s.test refused"), (2, 503, "5.5.1 MAIL first")], False,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected MAIL <deny@s\.test>: sender deny@s\.test refused$"]),
    ("mail-drop", "127.0.0.1", txn("drop@s.test", data=False), [(1, 550, ADMIN)], True,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected MAIL <drop@s\.test>$"]),
    ("mail-defer", "127.0.0.1", txn("defer@s.test", data=False),
     [(1, 451, LATER), (2, 503, None)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] temporarily rejected MAIL <defer@s\.test>$"]),
    ("mail-discard", "127.0.0.1", txn("discard@s.test", rcpts=("accept@example.test", "deny@example.test")),
     [(1, 250, None), (2, 250, None), (3, 250, None), (5, 250, None)], False,
     [r"^{id} <= discard@s\.test H=\(c\.test\) \[{ip}\] P=esmtp S=\d+",
      r"^{id} => blackhole \(MAIL ACL discarded recipients\)$", r"^{id} Completed$"],
     [r"^H=\(c\.test\) \[{ip}\] F=<discard@s\.test> RCPT <accept@example\.test>: discarded by MAIL ACL$",
      r"^H=\(c\.test\) \[{ip}\] F=<discard@s\.test> RCPT <deny@example\.test>: discarded by MAIL ACL$"]),
    ("mail-warn", "127.0.0.1", txn("warn@s.test", data=False), [(1, 250, None), (2, 250, None)], False,
     [r"^H=\(c\.test\) \[{ip}\] Warning: mail warning warn@s\.test$"], None),
    ("mail-require", "127.0.0.1", txn("require@s.test", data=False),
     [(1, 550, "5.7.1 required sender")], False,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected MAIL <require@s\.test>: required sender$"]),
    ("mail-null-sender", "127.0.0.1", txn("", data=False), [(1, 250, "2.1.0 OK")], False, [], None),
    # -- RCPT
    ("rcpt-accept", "127.0.0.1", txn("a@s.test", rcpts=("accept@example.test", "ok@example.test")),
     [(2, 250, "2.1.5 Accepted"), (3, 250, None), (4, 354, None), (5, 250, None)], False,
     [r"^{id} <= a@s\.test H=\(c\.test\) \[{ip}\] P=esmtp S=\d+"], None),
    ("rcpt-deny", "127.0.0.1", txn("a@s.test", rcpts=("deny@example.test",), data=False),
     [(2, 550, "5.1.1 <deny@example.test>: no such user")], False,
     [], [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> rejected RCPT <deny@example\.test>: "
          r"550 5\.1\.1 <deny@example\.test>: no such user$"]),
    ("rcpt-drop", "127.0.0.1", txn("a@s.test", rcpts=("drop@example.test", "accept@example.test")),
     [(2, 550, "5.7.1 bye drop")], True,
     [], [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> rejected RCPT <drop@example\.test>: 550 5\.7\.1 bye drop$"]),
    ("rcpt-defer", "127.0.0.1", txn("a@s.test", rcpts=("defer@example.test", "accept@example.test"), data=False),
     [(2, 450, "4.2.0 defer is greylisted"), (3, 250, None)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> temporarily rejected RCPT <defer@example\.test>: "
          r"450 4\.2\.0 defer is greylisted$"]),
    ("rcpt-discard-one", "127.0.0.1", txn("a@s.test", rcpts=("discard@example.test", "accept@example.test")),
     [(2, 250, "2.1.5 Accepted"), (3, 250, None), (5, 250, None)], False,
     [r"^{id} <= a@s\.test "],
     [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> RCPT <discard@example\.test>: discarded by RCPT ACL: "
      r"rcpt discarded discard$"]),
    ("rcpt-discard-all", "127.0.0.1", txn("a@s.test", rcpts=("discard@example.test",)),
     [(2, 250, "2.1.5 Accepted"), (3, 354, None), (4, 250, None)], False,
     [r"^{id} <= a@s\.test ", r"^{id} => blackhole \(RCPT ACL discarded recipients\)$", r"^{id} Completed$"],
     [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> RCPT <discard@example\.test>: discarded by RCPT ACL: "
      r"rcpt discarded discard$"]),
    ("rcpt-warn", "127.0.0.1", txn("a@s.test", rcpts=("warn@example.test",), data=False),
     [(2, 250, None)], False, [r"^H=\(c\.test\) \[{ip}\] Warning: rcpt warning warn$"], None),
    ("rcpt-require", "127.0.0.1", txn("a@s.test", rcpts=("require@example.test",), data=False),
     [(2, 550, "5.7.1 required require")], False,
     [], [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> rejected RCPT <require@example\.test>: required require$"]),
    ("rcpt-implicit-deny", "127.0.0.1", txn("a@s.test", rcpts=("other@example.test",), data=False),
     [(2, 550, ADMIN)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] F=<a@s\.test> rejected RCPT <other@example\.test>$"]),
    ("rcpt-all-refused-then-data", "127.0.0.1", txn("a@s.test", rcpts=("other@example.test",), body=False),
     [(2, 550, None), (3, 554, "5.5.1 No valid recipients")], False, [], [r"rejected RCPT <other@"]),
    # -- predata
    ("predata-deny", "127.0.0.1", txn("pdeny@s.test", body=False) + ["RSET"],
     [(3, 550, "5.7.1 no data for pdeny@s.test"), (4, 250, None)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected DATA: no data for pdeny@s\.test$"]),
    ("predata-drop", "127.0.0.1", txn("pdrop@s.test", body=False) + ["RSET"], [(3, 550, ADMIN)], True,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected DATA$"]),
    ("predata-defer", "127.0.0.1", txn("pdefer@s.test", body=False) + ["RSET"],
     [(3, 451, LATER), (4, 250, None)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] temporarily rejected DATA$"]),
    ("predata-discard", "127.0.0.1", txn("pdiscard@s.test"), [(3, 354, None), (4, 250, None)], False,
     [r"^{id} <= pdiscard@s\.test ", r"^{id} => blackhole \(PREDATA ACL discarded recipients\)$"], None),
    ("predata-warn", "127.0.0.1", txn("pwarn@s.test"), [(3, 354, None), (4, 250, None)], False,
     [r"^H=\(c\.test\) \[{ip}\] Warning: predata warning pwarn@s\.test$", r"^{id} <= pwarn@s\.test "], None),
    ("predata-require", "127.0.0.1", txn("preq@s.test", body=False), [(3, 550, ADMIN)], False,
     [], [r"^H=\(c\.test\) \[{ip}\] rejected DATA$"]),
    # -- DATA (the message ACL): the message id is known, and every line carries it
    ("data-accept", "127.0.0.1", txn("d@s.test"), [(4, 250, None)], False,
     [r"^{id} <= d@s\.test H=\(c\.test\) \[{ip}\] P=esmtp S=\d+"], None),
    ("data-deny", "127.0.0.1", txn("ddeny@s.test") + ["NOOP"],
     [(4, 550, None), (5, 250, None)], False,
     [], [r"^{id} H=\(c\.test\) \[{ip}\] F=<ddeny@s\.test> rejected after DATA: 550 5\.7\.1 content refused \((?P=id)\)$"]),
    ("data-drop", "127.0.0.1", txn("ddrop@s.test") + ["NOOP"], [(4, 550, ADMIN)], True,
     [], [r"^{id} H=\(c\.test\) \[{ip}\] F=<ddrop@s\.test> rejected after DATA$"]),
    ("data-defer", "127.0.0.1", txn("ddefer@s.test") + ["NOOP"], [(4, 451, LATER), (5, 250, None)], False,
     [], [r"^{id} H=\(c\.test\) \[{ip}\] F=<ddefer@s\.test> temporarily rejected after DATA$"]),
    ("data-discard", "127.0.0.1", txn("ddiscard@s.test"), [(4, 250, None)], False,
     [r"^{id} <= ddiscard@s\.test ", r"^{id} => blackhole \(DATA ACL discarded recipients\): data discarded$",
      r"^{id} Completed$"], None),
    ("data-warn", "127.0.0.1", txn("dwarn@s.test"), [(4, 250, None)], False,
     [r"^{id} H=\(c\.test\) \[{ip}\] Warning: data warning (?P=id)$"], None),
    ("data-require", "127.0.0.1", txn("dreq@s.test"), [(4, 550, ADMIN)], False,
     [], [r"^{id} H=\(c\.test\) \[{ip}\] F=<dreq@s\.test> rejected after DATA$"]),
]


def _pattern(regex, ip, seen_id):
    regex = regex.replace("{ip}", re.escape(ip))
    if "{id}" in regex:
        regex = regex.replace("{id}", f"(?P<id>{ID})" if not seen_id else re.escape(seen_id))
        if seen_id:
            regex = regex.replace("(?P=id)", re.escape(seen_id))
    return regex


def check_case(r, case):
    name, ip, steps, expect, closed, main_res, reject_res = case
    for index, code, first in expect:
        got = r.banner if index == -1 else r.answers[index]
        assert got is not None, (f"{name}: step {index} ({steps[index]!r}) got no reply", r)
        assert got[0] == code, (name, index, got, r)
        if first is not None:
            assert got[1][0] == first, (name, index, got, r)
    assert r.closed_early == closed, (name, "closed early" if r.closed_early else "not closed", r)
    main, reject = log_lines(r.main), log_lines(r.reject)
    seen_id = None
    for regex in main_res + (reject_res or []):
        pat = re.compile(_pattern(regex, ip, seen_id))
        hits = [m for m in map(pat.search, main) if m]
        assert hits, (name, "mainlog lacks", pat.pattern, r)
        seen_id = seen_id or hits[0].groupdict().get("id")
    for regex in reject_res or []:
        pat = re.compile(_pattern(regex, ip, seen_id))
        assert any(map(pat.search, reject)), (name, "rejectlog lacks", pat.pattern, r)
    if reject_res is None:
        assert reject == [], (name, "unexpected reject lines", r)


@pytest.fixture(scope="module")
def verbs_box(tmp_path_factory):
    return policy_box(tmp_path_factory.mktemp("verbs-session"), VERBS)


@pytest.fixture(scope="module")
def verbs_daemon(tmp_path_factory):
    t = Tandem(tmp_path_factory.mktemp("verbs-daemon"), VERBS)
    yield t
    t.stop()
    t.check_teardown()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verb_in_session(verbs_box, case):
    r = verbs_box.session(case[2], client=case[1])
    assert r.rc == 0, r
    check_case(r, case)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verb_in_daemon(verbs_daemon, case):
    r = daemon_session(verbs_daemon, case[2], client=case[1])
    check_case(r, case)


# -- what needs a real daemon ----------------------------------------------------------------

DISCARD = """
acl_smtp_mail    = c_mail
acl_smtp_rcpt    = c_rcpt
acl_smtp_predata = c_predata
acl_smtp_data    = c_data
begin routes
*  {route}
begin acl
c_mail:
  discard senders = mdis@*
  accept
c_rcpt:
  discard local_parts = discard
  accept
c_predata:
  discard senders = pdis@*
  accept
c_data:
  discard senders = ddis@*
  accept
"""


def test_discarded_mail_is_neither_kept_nor_delivered(tandem, nexthop):
    hop = nexthop()
    t = tandem(DISCARD.format(route=hop.route))
    msg = b"Subject: d\r\n\r\ndiscard me\r\n"
    with t.connect() as c:
        c.ehlo()
        for sender, rcpts in (("mdis@s.test", ["a@example.test", "b@example.test"]),
                              ("a@s.test", ["discard@example.test"]),
                              ("pdis@s.test", ["a@example.test"]),
                              ("ddis@s.test", ["a@example.test"])):
            r = c.send_mail(sender, rcpts, msg)
            assert r["mail"][0] == 250 and [x[0] for x in r["rcpt"]] == [250] * len(rcpts), r
            assert r["final"][0] == 250 and MSGID.match(r["final"][1][0].split("id=")[1]), r
        # one discarded recipient among others: the others get the message
        r = c.send_mail("a@s.test", ["discard@example.test", "keep@example.test"], msg)
        assert r["final"][0] == 250
        c.quit()
    [m] = hop.wait_accepted(1)
    assert m.rcpts == ["keep@example.test"]
    t.wait_log(r"=> keep@example\.test ")
    main = t.mainlog()
    for by in ("MAIL", "RCPT", "PREDATA", "DATA"):
        assert re.search(rf"^\S+ \S+ {ID} => blackhole \({by} ACL discarded recipients\)$", main, re.M), by
    time.sleep(0.3)
    assert len(hop.messages) == 1 and len(hop.sessions) == 1
    assert t.spool_ids() == [] and os.listdir(os.path.join(t.spool, "tmp")) == []
    assert "==" not in main and "**" not in main


def test_discard_at_predata_and_data_with_cutthrough(tandem, nexthop):
    """The cutthrough link's transaction is abandoned: the next hop keeps nothing, and the
    message is not logged as deferred."""
    hop = nexthop()
    t = tandem(relay_config(hop, cutthrough=True,
                            main="acl_smtp_predata = p\nacl_smtp_data = d",
                            extra="p:\n  discard senders = pdis@*\n  accept\n"
                                  "d:\n  discard senders = ddis@*\n  accept\n"))
    with t.connect() as c:
        c.ehlo()
        for sender in ("pdis@s.test", "ddis@s.test", "keep@s.test"):
            r = c.send_mail(sender, ["u@example.test"], b"Subject: c\r\n\r\nbody\r\n")
            assert r["final"][0] == 250, r
        c.quit()
    [m] = hop.wait_accepted(1)
    assert m.mail_from == "keep@s.test"
    t.wait_log(r">> u@example\.test ")
    assert len(re.findall(r"=> blackhole", t.mainlog())) == 2
    assert " == " not in t.mainlog() and t.spool_ids() == [] and hop.violations() == []


HEADERS = """
acl_smtp_mail    = c_mail
acl_smtp_rcpt    = c_rcpt
acl_smtp_predata = c_predata
begin routes
*  {route}
begin acl
c_mail:
  warn    add_header = X-Mail: from $sender_address
  accept
c_rcpt:
  warn    add_header = X-Seen: yes
  warn    add_header = X-Rcpt: $local_part@$domain
  warn    add_header = not a header line
  warn    message = X-Warn-Message: set by a warn statement's message
  deny    local_parts = refused
  accept
c_predata:
  accept  add_header = X-Predata: helo=$sender_helo_name ip=$sender_host_address
"""
ADDED = [("X-Mail", b"from s@client.test"), ("X-Seen", b"yes"), ("X-Rcpt", b"a@example.test"),
         ("X-ACL-Warn", b"not a header line"),
         ("X-Warn-Message", b"set by a warn statement's message"),
         ("X-Rcpt", b"b@example.test"), ("X-Predata", b"helo=h.test ip=127.0.0.1")]


def send_for_headers(t):
    with t.connect() as c:
        c.ehlo("h.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<a@example.test>")
        c.expect(550, "RCPT TO:<refused@example.test>")
        c.expect(250, "RCPT TO:<b@example.test>")
        assert c.data(b"Subject: h\r\n\r\nheaders\r\n")[0] == 250
        c.quit()


def test_add_header_lines_are_stored_once_after_received(tandem):
    t = tandem(HEADERS.format(route="[127.0.0.2]:1"))   # refused: the message stays queued
    send_for_headers(t)
    [msg_id] = t.spool_ids()
    headers = read_spool(t.spool, msg_id).headers()
    assert headers[0][0] == "Received"
    assert headers[1:1 + len(ADDED)] == ADDED, headers
    assert headers[1 + len(ADDED)][0] == "Subject"


def test_add_header_lines_reach_the_next_hop(tandem, nexthop):
    hop = nexthop()
    t = tandem(HEADERS.format(route=hop.route))
    send_for_headers(t)
    [m] = hop.wait_accepted(1)
    assert m.rcpts == ["a@example.test", "b@example.test"]
    got = [(n, v.encode()) for n, v in m.email().items() if n.startswith("X-")]
    assert got == ADDED, got


def test_add_header_in_the_data_acl(tandem, nexthop):
    """Stored beside the content (the spool's A record) and sent before it."""
    config = (HEADERS.replace("c_predata:", "c_data:\n  warn    add_header = X-Data: $message_id\n"
                              "  warn    add_header = X-Mail: from $sender_address\n  accept\nc_predata:")
              .replace("acl_smtp_predata", "acl_smtp_data    = c_data\nacl_smtp_predata"))
    t = tandem(config.format(route="[127.0.0.2]:1"))
    send_for_headers(t)
    [msg_id] = t.spool_ids()
    rc, out, err = t.run(["queue", "show", "--raw", msg_id])
    assert rc == 0 and f"X-Data: {msg_id}\r\n" in out, (out, err)
    hop = nexthop()
    t2 = tandem(config.format(route=hop.route))
    send_for_headers(t2)
    [m] = hop.wait_accepted(1)
    msg_id = t2.wait_log(rf"({ID}) <= s@client\.test").group(1)
    assert m.email().get_all("X-Data") == [msg_id]
    assert m.email().get_all("X-Mail") == ["from s@client.test"]     # once, as the MAIL ACL's


DELAYS = """
acl_smtp_connect = c_connect
acl_smtp_rcpt    = c_rcpt
begin routes
*  [127.0.0.2]:1
begin acl
c_connect:
  accept  hosts = 127.0.0.30
          delay = 1s
  accept
c_rcpt:
  warn    logwrite = rcpt for $local_part
  warn    local_parts = d
          logwrite = before the delay for $local_part
          delay = 2s
          logwrite = after the delay for $local_part
  accept
"""


def test_delay_holds_the_reply_but_not_other_sessions(tandem):
    t = tandem(DELAYS)
    start = time.monotonic()
    with t.connect(source="127.0.0.30") as slow:
        assert slow.banner[0] == 220 and time.monotonic() - start >= 0.9   # held, not skipped
    with t.connect() as c, t.connect() as other:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@s.test>")
        c.send("RCPT TO:<d@example.test>\r\n")
        start = time.monotonic()
        t.wait_log(r"before the delay for d$")
        other.ehlo()                                  # the (one) worker serves another
        other.expect(250, "MAIL FROM:<a@s.test>")     # session during the delay
        other.expect(250, "RCPT TO:<e@example.test>")
        assert c.reply()[0] == 250 and time.monotonic() - start >= 1.9
        log = t.mainlog()
        assert re.search(r"before the delay for d\n(.*\n)*.*rcpt for e\n(.*\n)*"
                         r".*after the delay for d\n", log), log
        other.quit()
        c.quit()


def test_input_during_a_connect_delay_is_early_talking(tandem):
    t = tandem(DELAYS)
    with t.connect(source="127.0.0.30", banner=False) as c:
        c.send("EHLO eager.test\r\n")
        assert c.reply(timeout=5) == (554, ["5.5.0 SMTP synchronization error"])
        c.assert_closed()
    t.wait_log(r"H=\[127\.0\.0\.30\] rejected connection: SMTP protocol synchronization error",
               log="rejectlog")


def test_missing_rcpt_acl_refuses_every_recipient(tandem):
    t = tandem("acl_smtp_mail = m\nbegin routes\n*  [127.0.0.2]:1\nbegin acl\nm:\n  accept\n")
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@s.test>")
        for rcpt in ("x@example.test", "postmaster"):
            assert c.cmd(f"RCPT TO:<{rcpt}>") == (550, [ADMIN])
        assert c.cmd("DATA") == (554, ["5.5.1 No valid recipients"])
        c.quit()
    t.wait_log(r"^\S+ \S+ H=\(client\.test\) \[127\.0\.0\.1\] F=<a@s\.test> rejected RCPT "
               r"<x@example\.test>$", log="rejectlog")
    t.wait_log(r"rejected RCPT <postmaster@tandem\.test>$", log="rejectlog")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = """
hostlist v6_friends = ::1 : 2001:db8::/32
acl_smtp_connect = c_connect
acl_smtp_rcpt    = c_rcpt
begin routes
*  [127.0.0.2]:1
begin acl
c_connect:
  warn    logwrite = connection from $sender_host_address
  accept
c_rcpt:
  deny    local_parts = any6
          hosts = ::/0
          message = IPv6 client $sender_host_address
  deny    local_parts = named6
          hosts = +v6_friends
          message = friend $sender_host_address
  deny    local_parts = any4
          hosts = 0.0.0.0/0
          message = IPv4 client $sender_host_address
  deny    local_parts = not6
          !hosts = ::1/128
          message = not ::1
  accept
"""


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_client_and_cidr(tandem):
    t = tandem(IPV6)
    t.restart(config=IPV6, options={"listen": f"127.0.0.1:{t.port} [::1]:{t.port}"})
    expect = {"::1": {"any6": (550, "5.7.1 IPv6 client ::1"), "named6": (550, "5.7.1 friend ::1"),
                      "any4": (250, None), "not6": (250, None)},
              "127.0.0.1": {"any6": (250, None), "named6": (250, None),
                            "any4": (550, "5.7.1 IPv4 client 127.0.0.1"), "not6": (550, "5.7.1 not ::1")}}
    for host, cases in expect.items():
        with t.connect(host=host) as c:
            c.ehlo("v6.test")
            c.expect(250, "MAIL FROM:<a@s.test>")
            for lp, (code, text) in cases.items():
                got = c.cmd(f"RCPT TO:<{lp}@example.test>")
                assert got[0] == code and (text is None or got[1] == [text]), (host, lp, got)
            c.quit()
    t.wait_log(r"^\S+ \S+ connection from ::1$")
    t.wait_log(r"^\S+ \S+ H=\(v6\.test\) \[::1\] F=<a@s\.test> rejected RCPT <any6@example\.test>: "
               r"IPv6 client ::1$", log="rejectlog")


def test_host_names_from_forward_confirmed_reverse_dns(tandem, dns):
    """`hosts = *.example.net` needs the client's name: PTR, then confirmed by the name's own
    address; a PTR name whose address is not the client's is not believed."""
    d = dns({"5.0.0.127.in-addr.arpa": {"PTR": "client.example.net"},
             "6.0.0.127.in-addr.arpa": {"PTR": "liar.example.net"},
             "client.example.net": {"A": "127.0.0.5"},
             "liar.example.net": {"A": "192.0.2.66"}})
    cfg = f"""
{d.config_line}
acl_smtp_rcpt = check_rcpt
begin routes
*  [127.0.0.2]:2599
begin acl
check_rcpt:
  accept hosts = *.example.net
  deny   message = not a known host
"""
    t = tandem(cfg)
    for source, ok in (("127.0.0.5", True), ("127.0.0.6", False)):
        c = SmtpConn(t.port, source=source)
        c.ehlo("helo.test")
        c.expect(250, "MAIL FROM:<a@b.test>")
        code, _ = c.cmd("RCPT TO:<x@example.test>")
        c.quit()
        assert (code == 250) == ok, (source, code)
    t.wait_log(r"H=liar\.example\.net|H=\(helo\.test\) \[127\.0\.0\.6\] F=<a@b\.test> rejected RCPT",
               log="rejectlog")
    assert "liar.example.net" not in t.rejectlog()
    with SmtpConn(t.port, source="127.0.0.5") as c:
        c.ehlo("helo.test")
        r = c.send_mail("a@b.test", ["x@example.test"], b"Subject: n\r\n\r\nname\r\n")
        c.quit()
    assert r["final"][0] == 250
    t.wait_log(r"<= a@b\.test H=client\.example\.net \(helo\.test\) \[127\.0\.0\.5\] P=esmtp")
