"""The queue: the scheduler's first attempt, retries and give-up, bounces (RFC 3464), the
`tandem queue` commands with a running daemon (control socket) and without one (directly on
the spool), restarts and crashes, and the main log as eximstats reads it.

Every test here needs the real daemon with queued delivery (branch outbound's delivery.c).
"""
import email
import email.policy
import os
import re
import socket
import stat
import subprocess
import time

import pytest

from harness import MSGID, relay_config, seq, stall, wait_until

BODY = b"Subject: queued\r\nFrom: <alice@client.test>\r\nMessage-ID: <q1@client.test>\r\n\r\nhello\r\n"
FAST_RETRY = {"retry_intervals": "2s", "retry_give_up": "1h"}
SLOW_RETRY = {"retry_intervals": "1h", "retry_give_up": "5d"}
ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"


def submit(t, rcpts, sender="alice@client.test", body=BODY):
    """One message through SMTP; returns its queue id (from the 250 reply)."""
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail(sender, rcpts, body)
        c.quit()
    code, lines = r["final"]
    assert code == 250, r
    m = re.search(ID, " ".join(lines))
    assert m, lines
    return m.group(0)


def relay(hop, **options):
    """tandem relaying example.test (and client.test, where bounces go) to hop."""
    return relay_config(hop, domains="example.test : client.test"), options


def start(tandem, hop, options):
    config, _ = relay(hop)
    return tandem(config, options=options)


def queue(t, *args, timeout=30):
    return t.run(["queue", *args], timeout=timeout)


def bounces(hop):
    return [m for m in hop.accepted if m.mail_from == ""]


def dsn_parts(msg):
    """(human text, per-message fields, [per-recipient fields], returned part) of a DSN."""
    m = email.message_from_bytes(msg.data, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    assert [p.get_content_type() for p in parts[:2]] == ["text/plain", "message/delivery-status"]
    text = parts[0].get_payload()
    groups = parts[1].get_payload()
    return m, text, groups[0], groups[1:], parts[2] if len(parts) > 2 else None


# -- first attempt, retries, failures, bounces ----------------------------------------------
def test_new_message_is_delivered_at_once(tandem, nexthop):
    hop = nexthop()
    t = start(tandem, hop, SLOW_RETRY)
    qid = submit(t, ["bob@example.test"])
    t.wait_log(rf"{qid} => bob@example\.test")
    t.wait_log(rf"{qid} Completed")
    [m] = hop.wait_accepted(1)
    assert m.rcpts == ["bob@example.test"] and m.data.endswith(b"\r\n\r\nhello\r\n")
    assert m.header("Subject") == "queued" and m.header("Received")
    assert t.spool_ids() == []


def test_accept_defer_fail_then_retry_and_bounce(tandem, nexthop):
    hop = nexthop(rcpt={"tmp@example.test": seq("451 4.3.0 mailbox busy", "250 2.1.5 ok"),
                        "bad@example.test": "550 5.1.1 no such user"})
    t = start(tandem, hop, FAST_RETRY)
    qid = submit(t, ["ok@example.test", "tmp@example.test", "bad@example.test"])
    t.wait_log(rf"{qid} => ok@example\.test")
    t.wait_log(rf"{qid} == tmp@example\.test")
    t.wait_log(rf"{qid} \*\* bad@example\.test")
    t.wait_log(rf"{qid} => tmp@example\.test", timeout=15)   # the retry, after 2s
    t.wait_log(rf"{qid} Completed")
    wait_until(lambda: bounces(hop), 10, "the bounce at the next hop")
    delivered = [r for m in hop.accepted if m.mail_from for r in m.rcpts]
    assert sorted(delivered) == ["ok@example.test", "tmp@example.test"]   # each exactly once
    [b] = bounces(hop)
    assert b.rcpts == ["alice@client.test"]
    m, text, per_msg, per_rcpt, returned = dsn_parts(b)
    assert m["From"] == "Mail Delivery System <MAILER-DAEMON@tandem.test>"
    assert m["To"] == "<alice@client.test>"
    assert m["Subject"] == "Mail delivery failed: returning message to sender"
    assert m["Auto-Submitted"] == "auto-replied"
    assert "bad@example.test" in text and "no such user" in text
    assert per_msg["Reporting-MTA"] == "dns; tandem.test"
    assert per_msg["Arrival-Date"]
    [r] = per_rcpt                                   # only the failed recipient
    assert r["Final-Recipient"] == "rfc822; bad@example.test"
    assert r["Action"] == "failed" and r["Status"] == "5.1.1"
    assert r["Diagnostic-Code"].startswith("smtp; 550")
    assert r["Last-Attempt-Date"]
    assert returned.get_content_type() == "text/rfc822-headers"   # no RET: headers only
    assert "Subject: queued" in returned.get_payload() and "hello" not in returned.get_payload()
    t.wait_log(rf"{ID} <= <> R={qid} ")
    wait_until(lambda: t.spool_ids() == [], 10, "an empty spool")


def test_failure_notice_comes_at_the_end_of_the_attempt(tandem, nexthop):
    """A recipient that fails while another one defers: the sender hears of the failure at the
    end of that attempt, not when the message completes (with the default retry_give_up, days
    later); once the other is delivered, no second notice (issue 12)."""
    hop = nexthop(rcpt={"tmp@example.test": "451 4.3.0 mailbox busy",
                        "bad@example.test": "550 5.1.1 no such user"})
    t = start(tandem, hop, SLOW_RETRY)
    qid = submit(t, ["tmp@example.test", "bad@example.test"])
    t.wait_log(rf"{qid} \*\* bad@example\.test")
    t.wait_log(rf"{qid} == tmp@example\.test")
    wait_until(lambda: bounces(hop), 10, "the failure notice of the first attempt")
    [b] = bounces(hop)
    _, text, _, per_rcpt, _ = dsn_parts(b)
    assert [r["Final-Recipient"] for r in per_rcpt] == ["rfc822; bad@example.test"]
    assert "tmp@example.test" not in text
    assert qid in t.spool_ids()                      # still queued for tmp@
    with open(os.path.join(t.spool, "input", qid + "-J"), "rb") as f:
        assert b"n1\n" in f.read()                   # journaled as reported
    hop.set(rcpt={"tmp@example.test": "250 2.1.5 ok"})
    rc, out, err = queue(t, "deliver", qid)
    assert rc == 0, (out, err)
    t.wait_log(rf"{qid} => tmp@example\.test")
    t.wait_log(rf"{qid} Completed")
    wait_until(lambda: t.spool_ids() == [], 10, "an empty spool")
    assert len(bounces(hop)) == 1                    # bad@ was reported once


def test_ret_full_and_notify_never(tandem, nexthop):
    hop = nexthop(rcpt={"@example.test": "550 5.1.1 no such user"})
    t = start(tandem, hop, FAST_RETRY)
    with t.connect() as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<alice@client.test> RET=FULL ENVID=env+2B1")
        c.expect(250, "RCPT TO:<bad@example.test> ORCPT=rfc822;orig+2Bbad@example.test")
        c.expect(250, "RCPT TO:<quiet@example.test> NOTIFY=NEVER")
        assert c.data(BODY)[0] == 250
        c.quit()
    wait_until(lambda: bounces(hop), 15, "the bounce")
    [b] = bounces(hop)
    _, _, per_msg, per_rcpt, returned = dsn_parts(b)
    assert per_msg["Original-Envelope-Id"] == "env+1"
    assert [r["Final-Recipient"] for r in per_rcpt] == ["rfc822; bad@example.test"]
    assert per_rcpt[0]["Original-Recipient"] == "rfc822; orig+bad@example.test"
    assert returned.get_content_type() == "message/rfc822"
    assert b"hello" in b.data


def test_null_sender_failure_is_logged_not_bounced(tandem, nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    t = start(tandem, hop, FAST_RETRY)
    qid = submit(t, ["bad@example.test"], sender="")
    t.wait_log(rf"{qid} \*\* bad@example\.test")
    t.wait_log(rf"{qid} no bounce sent for 1 address\(es\): the sender is <>")
    t.wait_log(rf"{qid} Completed")
    time.sleep(1)
    assert bounces(hop) == [] and t.spool_ids() == []
    assert "<= <> R=" not in t.mainlog()


def test_give_up_after_retry_give_up(tandem, nexthop):
    hop = nexthop(rcpt={"tmp@example.test": "451 4.3.0 mailbox busy"})
    t = start(tandem, hop, {"retry_intervals": "1s", "retry_give_up": "3s"})
    qid = submit(t, ["tmp@example.test"])
    t.wait_log(rf"{qid} \*\* tmp@example\.test: retry timeout exceeded", timeout=15)
    t.wait_log(rf"{qid} Completed")
    assert t.mainlog().count(f"{qid} == tmp@example.test") >= 2
    hop.set(rcpt={})
    wait_until(lambda: bounces(hop), 10, "the bounce")
    _, text, _, [r], _ = dsn_parts(bounces(hop)[0])
    assert "retry timeout exceeded" in text and r["Action"] == "failed"


# -- tandem queue with a daemon --------------------------------------------------------------
def deferred_message(tandem, nexthop, rcpts=("bob@example.test",)):
    hop = nexthop(rcpt={"*": "451 4.3.0 try later"})
    t = start(tandem, hop, SLOW_RETRY)
    qid = submit(t, list(rcpts))
    for r in rcpts:
        t.wait_log(rf"{qid} == {re.escape(r)}")
    return t, hop, qid


def test_control_socket_is_private(tandem, nexthop):
    t, _, _ = deferred_message(tandem, nexthop)
    st = os.stat(os.path.join(t.spool, "control"))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def control_lines(t, payload, n):
    """Send raw bytes to the control socket; return the first n reply lines."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(os.path.join(t.spool, "control"))
        s.sendall(payload)
        buf = b""
        while buf.count(b"\n") < n:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode().splitlines()


def test_control_protocol(tandem, nexthop):
    t, hop, qid = deferred_message(tandem, nexthop)
    lines = control_lines(t, b"bogus\r\nremove AAAAAA-BBBBBB-CC\ndeliver " + qid.encode() + b"\n", 4)
    assert lines[0].startswith("err unknown command")
    assert lines[1] == "err AAAAAA-BBBBBB-CC: no such message"
    assert lines[2] == "* <bob@example.test>: deferred: 451 4.3.0 try later"
    assert lines[3].startswith(f"ok {qid}: 0 delivered, 1 deferred, 0 failed; next attempt in")
    assert control_lines(t, b"x" * 600, 2) == ["err command line too long"]
    assert t.running() and t.spool_ids() == [qid]


def test_list_and_count(tandem, nexthop):
    t, _, qid = deferred_message(tandem, nexthop, ("bob@example.test", "carol@example.test"))
    rc, out, err = queue(t, "list")
    assert rc == 0, err
    assert re.match(rf"^ *\d+[smhd] +[\d.]+K? {qid} <alice@client\.test>\n"
                    r" +bob@example\.test\n +carol@example\.test\n\n$", out), out
    assert queue(t, "list", "--count")[:2] == (0, "1\n")


def test_show(tandem, nexthop):
    t, _, qid = deferred_message(tandem, nexthop)
    rc, out, err = queue(t, "show", qid)
    assert rc == 0, err
    assert f"Message:    {qid}" in out
    assert "Sender:     <alice@client.test>" in out
    assert "Client:     [127.0.0.1]" in out and "HELO=client.test" in out
    assert re.search(r"<bob@example\.test> pending", out)
    assert "451 4.3.0 try later" in out                # the last error, from the hints
    assert "Subject: queued" in out and "hello" not in out
    rc, raw, _ = queue(t, "show", "--raw", qid)
    assert rc == 0 and raw.startswith("Received: ") and raw.endswith("\r\n\r\nhello\r\n")
    assert "Subject: queued\r\n" in raw


def test_deliver_one_through_the_daemon(tandem, nexthop):
    t, hop, qid = deferred_message(tandem, nexthop)
    hop.set(rcpt={})
    rc, out, err = queue(t, "deliver", qid)
    assert rc == 0, err
    assert "<bob@example.test>: delivered" in out
    assert f"{qid}: 1 delivered, 0 deferred, 0 failed; completed" in out
    assert t.spool_ids() == []                            # it returned after the attempt
    t.wait_log(rf"{qid} Completed")


def test_deliver_all_through_the_daemon(tandem, nexthop):
    t, hop, q1 = deferred_message(tandem, nexthop)
    q2 = submit(t, ["dave@example.test"])
    t.wait_log(rf"{q2} == dave@example\.test")
    hop.set(rcpt={})
    rc, out, err = queue(t, "deliver-all")
    assert rc == 0, err
    assert out.strip().endswith("2 message(s) attempted")
    assert t.spool_ids() == []
    assert sorted(r for m in hop.accepted for r in m.rcpts) == ["bob@example.test",
                                                                 "dave@example.test"]


def test_deliver_still_deferred_and_unknown_id(tandem, nexthop):
    t, _, qid = deferred_message(tandem, nexthop)
    rc, out, _ = queue(t, "deliver", qid)
    assert rc == 0 and "<bob@example.test>: deferred: 451" in out and "next attempt in" in out
    rc, out, err = queue(t, "deliver", "AAAAAA-BBBBBB-CC")
    assert rc == 1 and "AAAAAA-BBBBBB-CC: no such message" in err
    rc, _, err = queue(t, "remove", "not-an-id")
    assert rc == 1 and "no such message" in err


def test_remove_through_the_daemon(tandem, nexthop):
    t, _, qid = deferred_message(tandem, nexthop)
    rc, out, err = queue(t, "remove", qid)
    assert rc == 0 and f"{qid} removed" in out, err
    t.wait_log(rf"{qid} removed by \S+")
    t.wait_log(rf"{qid} Completed")
    assert t.spool_ids() == []


# -- tandem queue without a daemon -----------------------------------------------------------
def test_queue_commands_without_a_daemon(tandem, nexthop):
    t, hop, qid = deferred_message(tandem, nexthop, ("bob@example.test",))
    q2 = submit(t, ["carol@example.test"])
    t.wait_log(rf"{q2} == carol@example\.test")
    t.stop()
    assert not os.path.exists(os.path.join(t.spool, "control"))
    rc, out, _ = queue(t, "list")
    assert rc == 0 and qid in out and q2 in out
    rc, out, _ = queue(t, "show", qid)
    assert rc == 0 and "<bob@example.test> pending" in out
    rc, out, err = queue(t, "remove", q2)
    assert rc == 0, err
    assert re.search(rf"{q2} removed by \S+", t.mainlog())
    hop.set(rcpt={})
    rc, out, err = queue(t, "deliver", qid)                # in-process, same delivery code
    assert rc == 0, err
    assert "<bob@example.test>: delivered" in out
    assert t.spool_ids() == []
    assert re.search(rf"{qid} => bob@example\.test", t.mainlog())
    assert [m.rcpts for m in hop.accepted] == [["bob@example.test"]]
    rc, _, err = queue(t, "deliver", qid)
    assert rc == 1 and "no such message" in err


def test_deliver_all_without_a_daemon(tandem, nexthop):
    t, hop, q1 = deferred_message(tandem, nexthop)
    q2 = submit(t, ["dave@example.test"])
    t.wait_log(rf"{q2} == dave@example\.test")
    t.stop()
    hop.set(rcpt={"dave@example.test": "550 5.1.1 gone"})
    rc, out, err = queue(t, "deliver-all")
    assert rc == 0, err
    assert "2 message(s) attempted" in out
    # bob delivered, dave failed; the bounce to alice was attempted in the same run
    assert t.spool_ids() == []
    assert [m.rcpts for m in bounces(hop)] == [["alice@client.test"]]


# -- restarts and crashes --------------------------------------------------------------------
def test_restart_picks_up_the_spool(tandem, nexthop):
    t, hop, qid = deferred_message(tandem, nexthop)
    t.stop()
    hop.set(rcpt={})
    t.restart()
    t.wait_log(rf"{qid} => bob@example\.test")
    t.wait_log(rf"{qid} Completed")
    assert t.spool_ids() == []


def test_kill9_during_delivery_then_restart(tandem, nexthop):
    hop = nexthop(dot=stall(30))          # the final dot is never answered
    t = start(tandem, hop, FAST_RETRY)
    qid = submit(t, ["bob@example.test", "carol@example.test"])
    hop.wait_received(1)
    t.kill9()
    hop.set(dot="250 2.0.0 ok")
    t.restart()
    t.wait_log(rf"{qid} Completed", timeout=20)
    delivered = sorted(r for m in hop.accepted for r in m.rcpts)
    assert delivered == ["bob@example.test", "carol@example.test"]   # once each
    # The window: the next hop had the whole first copy but never answered its dot, so it did
    # not take it.  (A next hop that answers 250 after the crash keeps both copies: see
    # test_queued_delivery.py's test_kill9_after_one_group_delivered_does_not_deliver_it_again.)
    assert len(hop.received) == 2 and hop.received[0].reply is None


def test_unreadable_spool_file_is_quarantined(tandem, nexthop):
    hop = nexthop()
    t = start(tandem, hop, SLOW_RETRY)
    t.stop()
    bad = "ZZZZZZ-ZZZZZZ-ZZ"
    with open(os.path.join(t.spool, "input", bad), "wb") as f:
        f.write(b"this is not a spool file\n")
    t.expect_panic = True
    t.restart()
    t.wait_log(rf"{bad}: spool file unreadable", log="paniclog")
    assert os.path.exists(os.path.join(t.spool, "corrupt", bad))
    assert t.spool_ids() == [] and t.running()


def test_sigterm_lets_the_running_delivery_finish(tandem, nexthop):
    hop = nexthop(dot=stall(2, "250 2.0.0 ok"))
    t = start(tandem, hop, SLOW_RETRY)
    qid = submit(t, ["bob@example.test"])
    hop.wait_received(1)
    assert t.stop() == 0 and not t.killed_hard
    assert re.search(rf"{qid} => bob@example\.test", t.mainlog())
    assert re.search(rf"{qid} Completed", t.mainlog())


# -- logs ------------------------------------------------------------------------------------
def test_eximstats_counts(tandem, nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    t = start(tandem, hop, FAST_RETRY)
    q1 = submit(t, ["a@example.test", "b@example.test"])
    q2 = submit(t, ["c@example.test"])
    q3 = submit(t, ["bad@example.test"])
    for q in (q1, q2, q3):
        t.wait_log(rf"{q} Completed")
    wait_until(lambda: bounces(hop), 10, "the bounce")
    t.wait_log(r"<= <> R=")
    bounce_id = re.search(rf"({ID}) <= <> R={q3}", t.mainlog()).group(1)
    t.wait_log(rf"{bounce_id} Completed")
    out = subprocess.run(["eximstats", "-txt", "-nvr", os.path.join(t.log_dir, "mainlog")],
                         capture_output=True, text=True, timeout=30).stdout
    # Grand total rows: Received volume, messages; Delivered volume, messages, addresses.
    # 4 messages received (3 over SMTP, the bounce locally); 3 messages delivered with 4
    # addresses (a and b share a transaction: one `=>` and one `->` line), 1 failed.
    received = re.search(r"^\s*Received\s+\S+\s+(\d+)", out, re.M)
    delivered = re.search(r"^\s*Delivered\s+\S+\s+(\d+)\s+(\d+)", out, re.M)
    assert received and delivered, out
    assert int(received.group(1)) == 4, out
    assert (int(delivered.group(1)), int(delivered.group(2))) == (3, 4), out
    assert re.search(r"^\s*Received.*\s1\s+25\.0%\s*$", out, re.M), out   # 1 failed
