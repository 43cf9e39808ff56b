"""Queued delivery through the real daemon (the delivery issue): static and MX routes against a
real DNS server on loopback, byte-exact transfer with dot-stuffing, MX preference and failover,
null MX bounces, DNS trouble, crashes in the middle of a delivery, and `tandem route`.

Each test runs the daemon in queue mode (no cutthrough), a DnsServer for `example.net` names
(which always reach the forwarder; see harness/dns.py), and scripted next hops on 127.0.0.x
sharing one port where MX hosts are involved (`remote_port`).
"""
import email
import email.policy
import email.utils
import re
import time

import pytest

from harness import dot_stuff, free_port, relay_config, seq, stall, wait_until

ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"
FAST_RETRY = {"retry_intervals": "1s", "retry_give_up": "1h"}
SLOW_RETRY = {"retry_intervals": "1h", "retry_give_up": "5d"}

# A message that already has Date and Message-ID (so tandem adds only its Received line), a
# trace header of its own, and body lines that need dot-stuffing on the wire.
BODY = (b"Received: from earlier.example (earlier.example [192.0.2.1])\r\n"
        b"\tby client.test with SMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Date: Mon, 1 Jan 2024 00:00:01 +0000\r\n"
        b"Message-ID: <dots.1@client.test>\r\n"
        b"From: Alice <alice@client.test>\r\n"
        b"To: bob@example.net\r\n"
        b"Subject: dots\r\n"
        b"\r\n"
        b"first line\r\n"
        b".\r\n"
        b"..\r\n"
        b".x\r\n"
        b"...three\r\n"
        b" .not at the start\r\n"
        b"\r\n"
        b".\r\n"
        b"last line\r\n")


def submit(t, rcpts, sender="alice@client.test", body=BODY):
    """One message over SMTP; returns its queue id (from the 250 reply)."""
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail(sender, rcpts, body)
        c.quit()
    code, lines = r["final"]
    assert code == 250, r
    return re.search(ID, " ".join(lines)).group(0)


def split_received(data):
    """(first header field with its continuation lines, the rest) of a message."""
    m = re.match(rb"Received:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", data)
    assert m, data[:200]
    return m.group(0), data[m.end():]


def assert_exact_copy(m, qid, rcpt, body=BODY):
    """The next hop got exactly the client's message with one Received header in front."""
    received, rest = split_received(m.data)
    assert rest == body
    assert received.startswith(b"Received: from client.test ([127.0.0.1])")
    assert f"id {qid}".encode() in received
    assert (f"for <{rcpt}>".encode() in received) if rcpt else (b"for <" not in received)
    assert m.data.count(b"\r\nReceived:") + m.data.startswith(b"Received:") == \
        body.count(b"Received:") + 1
    # On the wire: dot-stuffed, CRLF.CRLF at the end, nothing else.
    assert m.raw == dot_stuff(m.data)
    assert m.raw.endswith(b"\r\nlast line\r\n.\r\n")
    for line in (b"\r\n..\r\n", b"\r\n...\r\n", b"\r\n..x\r\n", b"\r\n....three\r\n",
                 b"\r\n .not at the start\r\n"):
        assert line in m.raw, line
    assert m.data.count(b"\r\n.\r\n") == 2 and m.raw.count(b"\r\n.\r\n") == 1


def mx_zone(*mxs, domain="example.net"):
    """{domain: MX [(pref, mxN.example.net)], mxN.example.net: A addr} for (pref, addr) pairs."""
    zone = {domain: {"MX": []}}
    for n, (pref, addr) in enumerate(mxs, 1):
        name = f"mx{n}.{domain}"
        zone[domain]["MX"].append((pref, name))
        zone[name] = {"A": addr}
    return zone


def mx_config(dns, port, domains="example.net", extra_routes=""):
    """tandem relaying `domains` by MX (every MX host on `port`), bounces to client.test."""
    return f"""
domainlist relay_to_domains = {domains} : client.test
acl_smtp_rcpt = check_rcpt
{dns.config_line}
remote_port = {port}
begin routes
{extra_routes}
+relay_to_domains  mx
begin acl
check_rcpt:
  accept domains = +relay_to_domains
  deny   message = relay not permitted
"""


def mx_hops(nexthop, n, **script):
    """n next hops on 127.0.0.2, 127.0.0.3, ... sharing one free port; returns (port, hops)."""
    hosts = [f"127.0.0.{2 + k}" for k in range(n)]
    port = free_port(*hosts)
    return port, [nexthop(host=h, port=port, **script) for h in hosts]


def delivered(hops, sender=None):
    """Recipients accepted by the hops (each occurrence), optionally for one sender."""
    return sorted(r for h in hops for m in h.accepted
                  if sender is None or m.mail_from == sender for r in m.rcpts)


# -- 1. static and MX routes: the exact bytes ---------------------------------------------
def test_static_route_delivers_exact_copy(tandem, nexthop):
    hop = nexthop()
    t = tandem(f"""
domainlist relay_to_domains = example.net
acl_smtp_rcpt = check_rcpt
begin routes
+relay_to_domains  {hop.route}
begin acl
check_rcpt:
  accept domains = +relay_to_domains
""", options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    [m] = hop.wait_accepted(1)
    assert m.mail_from == "alice@client.test" and m.rcpts == ["bob@example.net"]
    assert_exact_copy(m, qid, "bob@example.net")
    t.wait_log(rf"{qid} => bob@example\.net R=\+relay_to_domains T=remote_smtp "
               rf"H=\[127\.0\.0\.2\]:{hop.port} C=\"250 2\.0\.0 OK queued as 1\"")
    t.wait_log(rf"{qid} Completed")
    assert t.spool_ids() == [] and hop.violations() == []
    assert len(hop.sessions) == 1


def test_added_date_and_message_id_are_all_that_changes(tandem, nexthop):
    # Without Date and Message-ID the client's message gets them from tandem (RFC 5321 6.4);
    # take out those two and tandem's Received field, and what is left is what was sent.
    hop = nexthop()
    t = tandem(relay_config(hop, domains="example.net"), options=SLOW_RETRY)
    body = b"From: <alice@client.test>\r\nSubject: bare\r\n\r\n.\r\n..\r\n.x\r\nbye\r\n"
    qid = submit(t, ["bob@example.net"], body=body)
    [m] = hop.wait_accepted(1)
    received, rest = split_received(m.data)
    assert f"id {qid}".encode() in received
    head, sep, tail = rest.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")
    added = [f for f in fields if f.lower().startswith((b"date:", b"message-id:"))]
    assert sorted(f.split(b":")[0].lower() for f in added) == [b"date", b"message-id"]
    assert f"<{qid}@tandem.test>".encode() in b"".join(added)
    kept = b"\r\n".join(f for f in fields if f not in added)
    assert kept + sep + tail == body
    assert m.raw == dot_stuff(m.data) and b"\r\n...\r\n..x\r\nbye\r\n.\r\n" in m.raw


def test_mx_route_delivers_exact_copy(tandem, nexthop, dns):
    port, [hop] = mx_hops(nexthop, 1)
    d = dns(mx_zone((10, "127.0.0.2")))
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net", "carol@example.net"])
    [m] = hop.wait_accepted(1)
    assert m.rcpts == ["bob@example.net", "carol@example.net"]     # one transaction
    received, rest = split_received(m.data)
    assert rest == BODY and m.raw == dot_stuff(m.data)
    assert b"\r\n..\r\n" in m.raw and b"\r\n..x\r\n" in m.raw
    assert b"for <" not in received                                # two recipients
    t.wait_log(rf"{qid} => bob@example\.net R=\+relay_to_domains T=remote_smtp "
               rf"H=mx1\.example\.net \[127\.0\.0\.2\]:{port} C=\"250 ")
    t.wait_log(rf"{qid} -> carol@example\.net R=\+relay_to_domains T=remote_smtp "
               rf"H=mx1\.example\.net \[127\.0\.0\.2\]:{port}")
    t.wait_log(rf"{qid} Completed")
    assert d.queried("example.net", "MX") and d.queried("mx1.example.net", "A")
    assert t.spool_ids() == [] and hop.violations() == []


def test_dot_lines_across_spool_read_boundaries(tandem, nexthop):
    # Queued delivery reads the spool in 64 KiB pieces and dot-stuffs them as they go: with a
    # body of nothing but "." lines and three paddings, a piece boundary falls on the ".", on
    # the CR and on the LF of such lines.  The copies also exceed the engine's high-water mark.
    hop = nexthop()
    t = tandem(relay_config(hop, domains="example.net"), options=SLOW_RETRY)
    bodies = []
    for pad in range(3):
        body = (b"Date: Mon, 1 Jan 2024 00:00:01 +0000\r\n"
                b"Message-ID: <big.%d@client.test>\r\nX-Pad: %s\r\n\r\n" % (pad, b"p" * pad) +
                b".\r\n" * 150000 + b"..\r\n.x\r\nend\r\n")
        bodies.append(body)
        submit(t, [f"big{pad}@example.net"], body=body)
    msgs = hop.wait_accepted(3, timeout=30)
    for m in msgs:
        pad = int(m.rcpts[0][3])
        assert split_received(m.data)[1] == bodies[pad]
        assert m.raw == dot_stuff(m.data)
        assert m.raw.count(b"\r\n..\r\n") >= 75000 and b"\r\n...\r\n..x\r\nend\r\n.\r\n" in m.raw
    assert hop.violations() == []


# -- 2. MX preference, failover, equal preferences, null MX, DNS failure ------------------
def test_lowest_preference_first(tandem, nexthop, dns):
    port, [mx1, mx2] = mx_hops(nexthop, 2)
    # written in the "wrong" order: preference decides, not the order of the answer
    d = dns({"example.net": {"MX": [(20, "mx2.example.net"), (10, "mx1.example.net")]},
             "mx1.example.net": {"A": "127.0.0.2"}, "mx2.example.net": {"A": "127.0.0.3"}})
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    ids = [submit(t, [f"u{i}@example.net"]) for i in range(3)]
    for qid in ids:
        t.wait_log(rf"{qid} => u\d@example\.net .*H=mx1\.example\.net \[127\.0\.0\.2\]:{port} ")
    assert delivered([mx1]) == ["u0@example.net", "u1@example.net", "u2@example.net"]
    assert mx2.connections == 0


def test_failover_when_first_mx_refuses_connections(tandem, nexthop, dns):
    port = free_port("127.0.0.2", "127.0.0.3")
    mx2 = nexthop(host="127.0.0.3", port=port)          # nothing listens on 127.0.0.2:port
    d = dns(mx_zone((10, "127.0.0.2"), (20, "127.0.0.3")))
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    [m] = mx2.wait_accepted(1)
    assert_exact_copy(m, qid, "bob@example.net")
    t.wait_log(rf"{qid} => bob@example\.net .*H=mx2\.example\.net \[127\.0\.0\.3\]:{port} ")
    t.wait_log(rf"{qid} Completed")
    assert not re.search(rf"{qid} (==|\*\*)", t.mainlog())
    # mx1 is now in its retry period: the next message goes straight to mx2
    q2 = submit(t, ["carol@example.net"])
    t.wait_log(rf"{q2} => carol@example\.net .*H=mx2\.example\.net ")
    assert delivered([mx2]) == ["bob@example.net", "carol@example.net"]


def test_failover_when_first_mx_says_421_at_banner(tandem, nexthop, dns):
    port, [mx1, mx2] = mx_hops(nexthop, 2)
    mx1.set(banner="421 4.3.2 mx1.example.net too busy, try another")
    d = dns(mx_zone((10, "127.0.0.2"), (20, "127.0.0.3")))
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    [m] = mx2.wait_accepted(1)
    assert_exact_copy(m, qid, "bob@example.net")
    t.wait_log(rf"{qid} => bob@example\.net .*H=mx2\.example\.net \[127\.0\.0\.3\]:{port} ")
    t.wait_log(rf"{qid} Completed")
    assert mx1.connections == 1 and mx1.messages == []
    assert all(cmd.upper().startswith("QUIT") for s in mx1.sessions for cmd in s.commands)


@pytest.mark.parametrize("trouble", ["servfail", "nxdomain"])
def test_failover_when_first_mx_name_does_not_resolve(tandem, nexthop, dns, trouble):
    # One MX host's address lookup failing (temporarily or for good) does not stop the others.
    port, [mx1, mx2] = mx_hops(nexthop, 2)
    d = dns(mx_zone((10, "127.0.0.2"), (20, "127.0.0.3")),
            **{trouble: [("mx1.example.net", "A"), ("mx1.example.net", "AAAA")]})
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    t.wait_log(rf"{qid} => bob@example\.net .*H=mx2\.example\.net \[127\.0\.0\.3\]:{port} ")
    assert mx1.connections == 0 and delivered([mx2]) == ["bob@example.net"]
    assert d.queried("mx1.example.net", "A")


def test_equal_preferences_share_the_load(tandem, nexthop, dns):
    port, hops = mx_hops(nexthop, 2)
    d = dns(mx_zone((10, "127.0.0.2"), (10, "127.0.0.3")))
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    n = 16             # all on one host by chance: 2 * 2**-16
    ids = [submit(t, [f"u{i}@example.net"]) for i in range(n)]
    for qid in ids:
        t.wait_log(rf"{qid} Completed")
    assert delivered(hops) == sorted(f"u{i}@example.net" for i in range(n))   # once each
    counts = [len(delivered([h])) for h in hops]
    assert all(c >= 1 for c in counts), counts


def test_null_mx_bounces_with_5_1_10(tandem, nexthop, dns):
    back = nexthop()                                     # where the bounce to alice goes
    d = dns({"example.net": {"MX": "0 ."}})
    t = tandem(mx_config(d, 2599, extra_routes=f"client.test  {back.route}"),
               options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    t.wait_log(rf"{qid} \*\* bob@example\.net R=\+relay_to_domains: domain example\.net has a "
               r"null MX")
    t.wait_log(rf"{qid} Completed")
    [b] = back.wait_accepted(1)
    assert b.mail_from == "" and b.rcpts == ["alice@client.test"]
    t.wait_log(rf"({ID}) <= <> R={qid} ")
    check_dsn(b, qid, "bob@example.net", "5.1.10")
    wait_until(lambda: t.spool_ids() == [], 10, "an empty spool")


def check_dsn(b, qid, rcpt, status):
    """A well-formed RFC 3464 report about `rcpt` failing with `status`, returning headers."""
    assert b"\r\n" in b.data and b"\n" not in b.data.replace(b"\r\n", b"")   # CRLF only
    assert all(len(line) <= 998 for line in b.data.split(b"\r\n"))
    msg = email.message_from_bytes(b.data, policy=email.policy.compat32)
    assert msg.defects == []
    assert msg["MIME-Version"] == "1.0"
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@tandem.test>"
    assert msg["To"] == "<alice@client.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Date"] and msg["Message-ID"] and msg["Subject"]
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert all(p.defects == [] for p in msg.walk())
    assert rcpt in parts[0].get_payload()
    # message/delivery-status: per-message fields, blank line, per-recipient fields (RFC 3464 2.1)
    raw = parts[1].get_payload()
    if isinstance(raw, list):        # the email package parses it into header blocks
        groups = [dict(g.items()) for g in raw]
    else:
        groups = [dict(ln.split(": ", 1) for ln in blk.splitlines())
                  for blk in raw.strip().split("\n\n")]
    per_msg, per_rcpt = groups[0], groups[1:]
    assert per_msg["Reporting-MTA"] == "dns; tandem.test"
    assert per_msg["X-Tandem-Queue-ID"] == qid and per_msg["Arrival-Date"]
    [r] = per_rcpt
    assert r["Final-Recipient"] == f"rfc822; {rcpt}"
    assert r["Action"] == "failed" and r["Status"] == status
    assert email.utils.parsedate_to_datetime(r["Last-Attempt-Date"])
    assert "Remote-MTA" not in r                       # decided by routing, not by a server
    assert r.get("Diagnostic-Code", "smtp; 550").startswith("smtp; 550")
    returned = parts[2].get_payload()
    assert "Message-ID: <dots.1@client.test>" in returned and "first line" not in returned
    return msg, per_msg, r


def test_dns_servfail_defers_then_deliver_all_delivers(tandem, nexthop, dns):
    port, [hop] = mx_hops(nexthop, 1)
    d = dns(mx_zone((10, "127.0.0.2")), servfail=["example.net"])
    t = tandem(mx_config(d, port), options=SLOW_RETRY)
    qid = submit(t, ["bob@example.net"])
    failed_at = time.monotonic()
    t.wait_log(rf"{qid} == bob@example\.net R=\+relay_to_domains defer \(-36\): DNS lookup for "
               r"example\.net gave a temporary error", timeout=30)
    assert t.spool_ids() == [qid] and hop.connections == 0
    rc, out, _ = t.run("queue list")
    assert rc == 0 and qid in out and "bob@example.net" in out
    d.servfail.discard("example.net")
    # libunbound keeps a SERVFAIL answer for 5 s (its NORR_TTL) whatever the forwarder says
    # next, so an immediate forced attempt would still fail: let that time pass.
    time.sleep(max(0.0, 6.0 - (time.monotonic() - failed_at)))
    rc, out, err = t.run(["queue", "deliver-all"], timeout=60)
    assert rc == 0, err
    assert "<bob@example.net>: delivered" in out and "1 message(s) attempted" in out
    [m] = hop.wait_accepted(1)
    assert_exact_copy(m, qid, "bob@example.net")
    t.wait_log(rf"{qid} Completed")
    assert t.spool_ids() == []


# -- 3. kill -9 in the middle of a delivery ------------------------------------------------
# test_queue.py's test_kill9_during_delivery_then_restart covers a crash while the final dot
# waits for its reply and the next hop never answers it.  These cover the other windows.
def two_route_config(hop_a, hop_b, bounces_to=None):
    """a.example.net to hop_a, b.example.net to hop_b (and client.test to bounces_to)."""
    bounce_route = f"client.test  {bounces_to.route}" if bounces_to else ""
    return f"""
domainlist relay_to_domains = a.example.net : b.example.net : client.test
acl_smtp_rcpt = check_rcpt
begin routes
a.example.net  {hop_a.route}
b.example.net  {hop_b.route}
{bounce_route}
begin acl
check_rcpt:
  accept domains = +relay_to_domains
"""


def test_kill9_before_the_dot_then_restart_delivers_once(tandem, nexthop):
    # Window: the body is on its way and the next hop has not seen the final dot.  Nothing
    # can have been accepted, so after the restart each recipient arrives exactly once.
    hop = nexthop(stall_after={"DATA": (100, 30)})     # reads 100 bytes of data, then stalls
    t = tandem(two_route_config(hop, hop), options=FAST_RETRY)
    qid = submit(t, ["bob@a.example.net", "carol@a.example.net"])
    hop.wait_for(lambda h: h.messages, 10, "the data phase")
    time.sleep(0.5)                                      # all of it is sent, none of it read
    assert hop.received == []
    t.kill9()
    hop.set()                                            # accept everything now
    t.restart()
    t.wait_log(rf"{qid} Completed", timeout=20)
    assert delivered([hop]) == ["bob@a.example.net", "carol@a.example.net"]
    [m] = hop.accepted
    assert_exact_copy(m, qid, None)
    assert not hop.messages[0].complete and len(hop.messages) == 2
    assert t.spool_ids() == []


def test_kill9_after_one_group_delivered_does_not_deliver_it_again(tandem, nexthop):
    # Two next hops in one attempt: a's transaction is over (250 to its final dot, logged =>)
    # while b's final dot is still unanswered.  A crash now must not send a's copy again.
    # b is in the one window SMTP cannot close (RFC 1047): b takes the message (its 250
    # goes out after tandem died), tandem never saw that 250, so after the restart b gets a
    # second copy -- exactly one more, never more.
    hop_a = nexthop(host="127.0.0.2")
    hop_b = nexthop(host="127.0.0.3", dot=stall(2, "250 2.0.0 taken, but nobody listens"))
    t = tandem(two_route_config(hop_a, hop_b), options=FAST_RETRY)
    qid = submit(t, ["bob@a.example.net", "carol@b.example.net"])
    hop_a.wait_accepted(1)
    hop_b.wait_received(1)
    t.wait_log(rf"{qid} => bob@a\.example\.net ")
    t.kill9()
    hop_b.wait_accepted(1)                # its 250 went into a dead connection
    hop_b.set()
    t.restart()
    t.wait_log(rf"{qid} Completed", timeout=20)
    assert delivered([hop_a]) == ["bob@a.example.net"]                       # once
    assert delivered([hop_b]) == ["carol@b.example.net"] * 2                 # the window
    for m in hop_a.accepted + hop_b.accepted:
        assert split_received(m.data)[1] == BODY
    assert t.spool_ids() == []


def test_kill9_after_a_failure_keeps_it_failed_with_its_reason(tandem, nexthop):
    # a refuses its recipient for good while b's final dot is unanswered; after a crash the
    # refused recipient is not tried again, and the bounce still gives the next hop's reason.
    hop_a = nexthop(host="127.0.0.2", rcpt={"bad@a.example.net": "550 5.1.1 no such user"})
    hop_b = nexthop(host="127.0.0.3", dot=stall(60))
    t = tandem(two_route_config(hop_a, hop_b, bounces_to=hop_a), options=FAST_RETRY)
    qid = submit(t, ["bad@a.example.net", "carol@b.example.net"])
    hop_b.wait_received(1)
    t.wait_log(rf"{qid} \*\* bad@a\.example\.net ")
    t.kill9()
    hop_b.set()
    t.restart()
    t.wait_log(rf"{qid} Completed", timeout=20)
    assert delivered([hop_b]) == ["carol@b.example.net"]
    [b] = hop_a.wait_accepted(1)
    assert b.mail_from == "" and b.rcpts == ["alice@client.test"]
    assert [r for s in hop_a.sessions for r, _, _ in s.rcpts].count("bad@a.example.net") == 1
    assert t.mainlog().count(f"{qid} ** bad@a.example.net") == 1
    report = b.data.decode()
    assert "Final-Recipient: rfc822; bad@a.example.net" in report
    assert "Status: 5.1.1" in report
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user" in report


def test_kill9_between_batches_does_not_deliver_the_first_batch_again(tandem, nexthop):
    # 101 recipients go in two transactions on one connection (100 + 1).  The first is over
    # (250 to its dot) when tandem dies waiting for the second one's reply, which never comes.
    hop = nexthop(dot=seq("250 2.0.0 first batch ok", stall(60)))
    t = tandem(two_route_config(hop, hop), options=FAST_RETRY)
    rcpts = [f"r{i:03}@a.example.net" for i in range(101)]
    qid = submit(t, rcpts)
    hop.wait_received(2)
    assert [len(m.rcpts) for m in hop.received] == [100, 1] and len(hop.accepted) == 1
    t.wait_log(rf"{qid} -> r099@a\.example\.net ")
    t.kill9()
    hop.set()
    t.restart()
    t.wait_log(rf"{qid} Completed", timeout=20)
    assert delivered([hop]) == rcpts                        # each exactly once
    assert hop.accepted[-1].rcpts == ["r100@a.example.net"]
    assert t.spool_ids() == []


# -- 5. `tandem route` against the running daemon's config (4 is test_interop_relay.py) ---
# tests/outbound/test_cli_route.py checks the output format, static routes with ports, null
# MX, SERVFAIL and unroutable addresses on a config of its own.  Here: the daemon's config
# (`remote_port` for every MX host), the implicit MX, equal preferences, and tandem as a
# backup MX of its own domains -- then the daemon delivers accordingly.
ROUTE_ZONE = {
    "example.net": {"MX": [(20, "mx2.example.net"), (10, "mx1.example.net")]},
    "mx1.example.net": {"A": "127.0.0.2"},
    "mx2.example.net": {"A": "127.0.0.3", "AAAA": "::1"},    # A first, then AAAA
    "self.example.net": {"A": "127.0.0.1"},                     # tandem's own listener
    "backup.example.net": {"MX": [(10, "mx1.example.net"), (20, "self.example.net"),
                                  (30, "mx2.example.net")]},
    "bare.example.net": {"A": "127.0.0.3"},                     # no MX: the domain itself
    "loop.example.net": {"MX": [(10, "self.example.net")]},
    "eq.example.net": {"MX": [(10, "mx1.example.net"), (10, "mx2.example.net")]},
}


def test_route_cli_with_the_daemons_config(tandem, nexthop, dns):
    d = dns(ROUTE_ZONE)
    t = tandem("")                       # its port is the MX hosts' port: rewrite the config
    t.restart(config=mx_config(d, t.port, domains="*.example.net : example.net"),
              options=SLOW_RETRY)
    line = 1 + t.config_text.splitlines().index("+relay_to_domains  mx")
    route = f"  route: +relay_to_domains (line {line})\n"
    host = "  host {} [{}] port=%d pref={} tls=may\n" % t.port
    rc, out, err = t.run(["route", "u@example.net", "v@backup.example.net",
                          "w@bare.example.net"])
    assert rc == 0, err
    assert out == (
        "u@example.net\n" + route + "  status: ok, 3 next hops\n" +
        host.format("mx1.example.net", "127.0.0.2", 10) +
        host.format("mx2.example.net", "127.0.0.3", 20) +
        host.format("mx2.example.net", "::1", 20) +
        "v@backup.example.net\n" + route + "  status: ok, 1 next hop\n" +
        host.format("mx1.example.net", "127.0.0.2", 10) +
        "w@bare.example.net\n" + route + "  status: ok, 1 next hop\n" +
        host.format("bare.example.net", "127.0.0.3", 0))
    rc, out, _ = t.run(["route", "x@loop.example.net"])
    assert rc == 2
    assert out == ("x@loop.example.net\n" + route + "  status: no usable hosts (451 4.4.4 all "
                   "hosts are this machine (mail loop))\n")
    firsts = set()
    for _ in range(20):                  # equal preferences: both orders show up
        rc, out, _ = t.run(["route", "y@eq.example.net"])
        hosts = re.findall(r"^  host (\S+) \[([^\]]+)\] port=\d+ pref=10 ", out, re.M)
        assert rc == 0 and hosts in ([("mx1.example.net", "127.0.0.2"),
                                      ("mx2.example.net", "127.0.0.3"),
                                      ("mx2.example.net", "::1")],
                                     [("mx2.example.net", "127.0.0.3"),
                                      ("mx2.example.net", "::1"),
                                      ("mx1.example.net", "127.0.0.2")]), out
        firsts.add(hosts[0][0])
    assert firsts == {"mx1.example.net", "mx2.example.net"}      # all one way: 2 * 2**-20

    # The daemon does what `tandem route` said: as a backup MX it relays to mx1 only,
    # and it does not send mail to itself.
    mx1 = nexthop(host="127.0.0.2", port=t.port)
    mx2 = nexthop(host="127.0.0.3", port=t.port)
    q1 = submit(t, ["v@backup.example.net"])
    [m] = mx1.wait_accepted(1)
    assert m.rcpts == ["v@backup.example.net"] and mx2.connections == 0
    t.wait_log(rf"{q1} => v@backup\.example\.net .*H=mx1\.example\.net \[127\.0\.0\.2\]")
    q2 = submit(t, ["x@loop.example.net"])
    t.wait_log(rf"{q2} == x@loop\.example\.net R=\+relay_to_domains defer .*mail loop")
    assert t.spool_ids() == [q2]
    rc, out, _ = t.run(["route", "w@bare.example.net"])
    assert rc == 0 and f"host bare.example.net [127.0.0.3] port={t.port}" in out


def test_declared_size_counts_the_added_headers(tandem, nexthop):
    """A data ACL's add_header lines are sent before the content: the SIZE= a queued delivery
    declares counts them, so it is exactly the size of what the next hop then receives."""
    hop = nexthop()
    cfg = relay_config(hop, extra="check_data:\n  warn add_header = X-Checked: yes\n  accept\n")
    t = tandem(cfg, options={"acl_smtp_data": "check_data"})
    with t.connect() as c:
        c.ehlo()
        assert c.send_mail("a@client.test", ["u@example.test"], BODY)["final"][0] == 250
        c.quit()
    [m] = hop.wait_accepted(1)
    assert m.data.startswith(b"X-Checked: yes\r\n")
    size = re.search(r"SIZE=(\d+)", m.mail_params).group(1)
    assert int(size) == len(m.data)
