"""Relaying between programs nobody here wrote: Postfix's smtp-source sends through tandem to
Postfix's smtp-sink (queue mode and cutthrough, 1,000 messages each), and Exim receives a
queued delivery from tandem.  Skipped when the tools are missing (scripts/install-deps --test).
"""
import collections
import re

import pytest

from harness import have_exim, have_postfix_tools, relay_config, smtp_source, wait_until

ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"
COUNT = 1000

needs_postfix = pytest.mark.skipif(not have_postfix_tools(),
                                   reason="Postfix smtp-sink/smtp-source not extracted")


def sink_ids(sink):
    """(tandem queue ids, smtp-source Message-Ids) of the messages smtp-sink dumped."""
    qids, mids = [], []
    for dump in sink.messages():
        m = re.search(rb"\n\tby tandem\.test \(tandem\) with E?SMTP id (" + ID.encode() + rb")", dump)
        assert m, dump[:600]
        qids.append(m.group(1).decode())
        mids.append(re.search(rb"\nMessage-Id: (<[^>]+>)", dump, re.I).group(1).decode())
    return qids, mids


def assert_each_once(t, sink, arrow):
    """smtp-sink holds each of the COUNT messages tandem accepted exactly once."""
    log = t.mainlog()
    accepted = re.findall(rf"^\S+ \S+ ({ID}) <= sender@client\.test ", log, re.M)
    assert len(accepted) == COUNT and len(set(accepted)) == COUNT
    qids, mids = sink_ids(sink)
    dup = [k for k, n in collections.Counter(qids).items() if n > 1]
    assert dup == [] and len(qids) == COUNT, f"{len(qids)} dumps, duplicated: {dup[:5]}"
    assert set(qids) == set(accepted)
    assert len(set(mids)) == COUNT                    # smtp-source's own ids, one each
    lines = re.findall(rf"^\S+ \S+ ({ID}) {re.escape(arrow)} user@example\.test ", log, re.M)
    assert sorted(lines) == sorted(accepted)          # one delivery line per message


@needs_postfix
def test_smtp_source_through_queue_to_smtp_sink(tandem, smtp_sink):
    sink = smtp_sink()
    t = tandem(relay_config(f"[127.0.0.1]:{sink.port}"),
               options={"workers": "2", "retry_intervals": "1s"})
    rc, out, err = smtp_source(t.port, count=COUNT, sessions=10, size=1000)
    assert rc == 0, err
    t.wait_log(r"Completed$", count=COUNT, timeout=120)
    sink.wait_count(COUNT, timeout=30)
    wait_until(lambda: t.spool_ids() == [], 10, "an empty spool")
    assert_each_once(t, sink, "=>")
    assert " == " not in t.mainlog() and " ** " not in t.mainlog()
    assert " >> " not in t.mainlog()


@needs_postfix
def test_smtp_source_cut_through_to_smtp_sink(tandem, smtp_sink):
    sink = smtp_sink()
    t = tandem(relay_config(f"[127.0.0.1]:{sink.port}", cutthrough=True),
               options={"workers": "2", "retry_intervals": "1s"})
    rc, out, err = smtp_source(t.port, count=COUNT, sessions=20, size=1000)
    assert rc == 0, err
    t.wait_log(r"Completed$", count=COUNT, timeout=60)
    sink.wait_count(COUNT, timeout=10)
    assert t.spool_ids() == []
    rc, out, _ = t.run("queue list --count")
    assert rc == 0 and out == "0\n"
    assert_each_once(t, sink, ">>")
    log = t.mainlog()
    assert " => " not in log and " == " not in log and " ** " not in log


@pytest.mark.skipif(not have_exim(), reason="Exim is not installed")
def test_exim_receives_a_queued_delivery(tandem, exim_peer):
    ex = exim_peer(domains="example.test")
    t = tandem(relay_config(f"[{ex.host}]:{ex.port}"), options={"retry_intervals": "1s"})
    body = (b"Date: Mon, 1 Jan 2024 00:00:01 +0000\r\nMessage-ID: <to-exim@client.test>\r\n"
            b"Subject: queued for Exim\r\n\r\n.\r\n..two dots\r\nlast\r\n")
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail("s@client.test", ["u@example.test", "v@example.test"], body)
        c.quit()
    assert r["final"][0] == 250
    qid = re.search(ID, " ".join(r["final"][1])).group(0)
    msgs = ex.wait_messages(2)
    t.wait_log(rf"{qid} => u@example\.test R=\+relay_to_domains T=remote_smtp "
               rf"H=\[127\.0\.0\.1\]:{ex.port} C=\"250 OK id=[0-9A-Za-z-]+\"")
    t.wait_log(rf"{qid} -> v@example\.test ")
    t.wait_log(rf"{qid} Completed")
    for msg in msgs:
        msg = msg.replace(b"\r\n", b"\n")
        assert b"\nReceived: from client.test ([127.0.0.1])\n\tby tandem.test (tandem) with ESMTP id " \
            + qid.encode() in msg
        assert msg.endswith(b"\nSubject: queued for Exim\n\n.\n..two dots\nlast\n")
    assert sorted(re.findall(rb"Envelope-to: (\S+)", b"".join(msgs))) == \
        [b"u@example.test", b"v@example.test"]
    # Exim logged one arrival from tandem, with both recipients delivered
    ex.wait_log(r"<= s@client\.test H=\(tandem\.test\) \[127\.0\.0\.1\] P=esmtp ")
    assert len(re.findall(r"<= s@client\.test ", ex.mainlog())) == 1
    assert t.spool_ids() == []
