"""Cutthrough in the field (issue 12): equal-preference MX hosts, a next hop that is down or
slow, `tandem session --no-deliver`, BDAT, SMTPUTF8, the wait for the final dot.  Each test
checks the client's replies, what the next hops saw, the spool and the log lines."""
import re
import subprocess
import threading
import time

import pytest

from harness import DROP, free_port, read_spool, relay_config, stall, wait_until

BODY = b"Subject: field\r\n\r\nthrough the tandem\r\n"


def send(c, rcpts, body=BODY, sender="s@client.test"):
    """One transaction; returns {"mail", "rcpt": [...], "data"} replies (data None if no DATA)."""
    out = {"mail": c.cmd(f"MAIL FROM:<{sender}>"), "rcpt": [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]}
    out["data"] = c.data(body) if any(code == 250 for code, _ in out["rcpt"]) else None
    return out


def two_mx(nexthop, dns, domains=("example.net",), prefs=(10, 10)):
    """Two next hops on one port (127.0.0.2 and .3) as MX hosts of domains, at prefs."""
    port = free_port("127.0.0.2", "127.0.0.3")
    hops = [nexthop(host="127.0.0.2", port=port), nexthop(host="127.0.0.3", port=port)]
    zone = {"mx1.example.net": {"A": "127.0.0.2"}, "mx2.example.net": {"A": "127.0.0.3"}}
    for dom in domains:
        zone[dom] = {"MX": [(prefs[0], "mx1.example.net"), (prefs[1], "mx2.example.net")]}
    return port, hops, dns(zone)


# -- link identity: the set of next hops ------------------------------------------------------

def test_equal_preference_mx_recipients_share_one_link(tandem, nexthop, dns):
    """50 recipients of one domain with two equal-preference MX hosts: no 452 (the shuffled
    order is not part of the link's identity), one onward transaction per message, and the
    same onward connection for several messages of one client connection."""
    port, hops, d = two_mx(nexthop, dns)
    t = tandem(relay_config("mx", domains="example.net", cutthrough=True,
                            main=f"{d.config_line}\nremote_port = {port}"),
               options={"workers": "2"})
    rcpts = [f"u{i}@example.net" for i in range(50)]
    with t.connect() as c:
        c.ehlo()
        results = [send(c, rcpts) for _ in range(3)]
        c.quit()
    for r in results:
        assert [code for code, _ in r["rcpt"]] == [250] * 50, r["rcpt"]
        assert r["data"][0] == 250 and "next hop: 250" in r["data"][1][0]
    wait_until(lambda: sum(len(h.accepted) for h in hops) == 3, timeout=10)
    assert all(m.rcpts == rcpts for h in hops for m in h.accepted)
    assert sum(h.connections for h in hops) == 1          # one onward connection for all three
    assert t.spool_ids() == []
    assert "4.5.3" not in t.mainlog() + t.rejectlog()


def test_two_domains_with_one_mx_set_share_one_link(tandem, nexthop, dns):
    port, hops, d = two_mx(nexthop, dns, domains=("example.net", "other.example.net"))
    t = tandem(relay_config("mx", domains="example.net : other.example.net", cutthrough=True,
                            main=f"{d.config_line}\nremote_port = {port}"))
    rcpts = ["a@example.net", "b@other.example.net", "c@example.net", "d@other.example.net"]
    with t.connect() as c:
        c.ehlo()
        r = send(c, rcpts)
        c.quit()
    assert [code for code, _ in r["rcpt"]] == [250] * 4 and r["data"][0] == 250
    wait_until(lambda: sum(len(h.accepted) for h in hops) == 1, timeout=10)
    [m] = [m for h in hops for m in h.accepted]
    assert m.rcpts == rcpts                  # one transaction, both domains
    assert sum(h.connections for h in hops) == 1
    assert t.spool_ids() == []


def test_different_preference_levels_are_different_links(tandem, nexthop, dns):
    """MX 10 mx1 / 20 mx2 and MX 10 mx2 / 20 mx1 are not the same next hops: the second
    domain's recipient gets 452 4.5.3 (split=defer) as before."""
    port = free_port("127.0.0.2", "127.0.0.3")
    hops = [nexthop(host="127.0.0.2", port=port), nexthop(host="127.0.0.3", port=port)]
    d = dns({"example.net": {"MX": [(10, "mx1.example.net"), (20, "mx2.example.net")]},
             "other.example.net": {"MX": [(10, "mx2.example.net"), (20, "mx1.example.net")]},
             "mx1.example.net": {"A": "127.0.0.2"}, "mx2.example.net": {"A": "127.0.0.3"}})
    t = tandem(relay_config("mx", domains="example.net : other.example.net", cutthrough=True,
                            main=f"{d.config_line}\nremote_port = {port}"))
    with t.connect() as c:
        c.ehlo()
        r = send(c, ["a@example.net", "b@other.example.net"])
        c.quit()
    assert r["rcpt"][0][0] == 250 and r["rcpt"][1][0] == 452 and r["data"][0] == 250
    [m] = hops[0].wait_accepted(1)
    assert m.rcpts == ["a@example.net"]


# -- defects -----------------------------------------------------------------------------------

def test_no_deliver_session_never_connects(tandem, nexthop):
    """`tandem session --no-deliver` with a cutthrough ACL and a recipient callout: nothing
    connects to the next hop; the callout counts as passed and the log says it was skipped."""
    hop = nexthop()
    t = tandem(relay_config(hop, cutthrough=True, callout="10s"))
    script = (b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<u@example.test>\r\n"
              b"DATA\r\n" + BODY + b".\r\nQUIT\r\n")
    rc, out, err = t.run(["session", "--no-deliver"], input=script)
    codes = re.findall(r"^(\d{3}) ", out, re.M)
    assert rc == 0 and codes == ["220", "250", "250", "250", "354", "250", "221"], (out, err)
    assert hop.connections == 0
    t.wait_log(r"recipient callout for <u@example\.test> skipped \(--no-deliver\)")
    t.wait_log(r"RCPT <u@example\.test>: cutthrough skipped \(--no-deliver\)")
    assert t.spool_ids() == []


def test_bdat_cut_through_carries_the_received_header(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop, cutthrough=True))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<u@example.test>")
        c.send(b"BDAT %d LAST\r\n" % len(BODY) + BODY)
        code, lines = c.reply()
        c.quit()
    assert code == 250 and "next hop: 250" in lines[0]
    [m] = hop.wait_accepted(1)
    assert m.data.startswith(b"Received: from client.test ([127.0.0.1])\r\n\tby tandem.test ")
    assert b"\r\nSubject: field\r\n" in m.data and m.data.endswith(b"\r\n\r\nthrough the tandem\r\n")


def test_no_reply_to_the_final_dot_says_a_duplicate_is_possible(tandem, nexthop):
    hop = nexthop(dot=stall(4, "250 too late"))
    t = tandem(relay_config(hop, cutthrough=True), options={"cutthrough_data_timeout": "1s"})
    with t.connect() as c:
        c.ehlo()
        r = send(c, ["u@example.test"])
        c.quit()
    assert r["data"][0] == 250                         # defer=spool: kept and queued
    t.wait_log(r"== u@example\.test .*cutthrough: timed out waiting for reply to end of data "
               r"\(the next hop may have taken the message: the queued copy may be a duplicate\)")


def test_refused_dot_is_no_duplicate(tandem, nexthop):
    hop = nexthop(dot="451 4.3.0 queue full")
    t = tandem(relay_config(hop, cutthrough=True), options={"retry_intervals": "1h"})
    with t.connect() as c:
        c.ehlo()
        assert send(c, ["u@example.test"])["data"][0] == 250
        c.quit()
    line = t.wait_log(r"== u@example\.test .*cutthrough: 451 4\.3\.0 queue full.*").group(0)
    assert "duplicate" not in line


# -- a next hop that cannot answer ------------------------------------------------------------

def backup_mx_config(hop_route, unknown, callout=False):
    """A backup MX: relays example.test to hop_route with cutthrough; vip@ is on a local list."""
    verify = "  require verify = recipient/callout=3s,defer_ok\n" if callout else ""
    return f"""
domainlist relay_to_domains = example.test
acl_smtp_rcpt = check_rcpt
begin routes
+relay_to_domains  {hop_route}
begin acl
check_rcpt:
  deny    message = relay not permitted
          !domains = +relay_to_domains
{verify}  accept  recipients = vip@example.test
          control = cutthrough_delivery/unknown={unknown}
  accept  control = cutthrough_delivery/unknown={unknown}
"""


def prime_cache(t):
    """While the next hop is up: good@ is accepted, bad@ refused (5.1.1): both are cached."""
    with t.connect() as c:
        c.ehlo()
        r = send(c, ["good@example.test", "bad@example.test"])
        c.quit()
    assert r["rcpt"][0][0] == 250 and r["rcpt"][1] == (550, ["5.1.1 <bad@example.test>: no such user"])
    rc, out, _ = t.run("callout-cache list")
    assert re.search(r"^good@example\.test \S+ accepted ", out, re.M), out
    assert re.search(r"^bad@example\.test \S+ refused .*5\.1\.1", out, re.M), out


def hosts(t):
    rc, out, err = t.run("hosts list")
    assert rc == 0, err
    return out


def fifty_rcpts(c, unknown_code):
    """One transaction with 50 recipients: the cached good one, the listed one, the cached bad
    one and 47 nobody knows; returns the DATA reply."""
    c.expect(250, "MAIL FROM:<s@client.test>")
    assert c.cmd("RCPT TO:<good@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<bad@example.test>") == (550, ["5.1.1 <bad@example.test>: no such user"])
    for i in range(47):
        code, lines = c.cmd(f"RCPT TO:<u{i}@example.test>")
        assert code == unknown_code, (i, code, lines)
    return c.data(BODY)


@pytest.mark.parametrize("dead", ["refusing", "421-banner", "accept-then-close"])
@pytest.mark.parametrize("unknown", ["accept", "defer"])
def test_dead_next_hop_is_tried_once_and_knowledge_answers(tandem, nexthop, dead, unknown):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 <bad@example.test>: no such user"})
    t = tandem(backup_mx_config(hop.route, unknown),
               options={"workers": "2", "retry_intervals": "5s", "callout_timeout": "3s"})
    prime_cache(t)
    t.restart()                                     # no pooled connection to the live hop left
    port = hop.port
    if dead == "refusing":
        hop.stop()                                  # nothing listens: Connection refused
    else:
        hop.set(banner="421 4.3.2 Service not available, closing" if dead == "421-banner" else DROP)
    before = hop.connections
    unknown_code = 250 if unknown == "accept" else 451
    with t.connect() as first:                      # the first RCPT finds the host dead...
        first.ehlo()
        r1 = fifty_rcpts(first, unknown_code)
        first.quit()
    results = []

    def session():
        with t.connect() as c:
            c.ehlo()
            results.append(fifty_rcpts(c, unknown_code))
            c.quit()
    threads = [threading.Thread(target=session) for _ in range(4)]   # ...all workers skip it
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in [r1] + results:
        assert r[0] == 250, r                       # good, vip (and the unknown) are queued
    log = t.mainlog()
    attempts = (len(re.findall(r"next hop could not answer \(H=\[127\.0\.0\.2\]:\d+: Connection refused",
                               log + t.rejectlog()))
                if dead == "refusing" else hop.connections - before)
    assert attempts == 1, attempts                  # one attempt in the retry interval, 250 RCPTs
    assert "could not answer (retry time not reached for any host" in log
    assert re.search(r"RCPT <good@example\.test>: next hop could not answer .*: valid according to "
                     r"callout cache: accepted, queued", log)
    assert re.search(r"RCPT <vip@example\.test>: next hop could not answer .*: valid according to "
                     r"recipients = vip@example\.test \(ACL line \d+\): accepted", log)
    assert re.search(r"rejected RCPT <bad@example\.test>: next hop could not answer .*: invalid "
                     r"according to callout cache: 550 5\.1\.1", t.rejectlog())
    if unknown == "accept":
        assert re.search(r"RCPT <u0@example\.test>: .*unknown \(no local list, no cached callout\): "
                         r"accepted \(unknown=accept\)", log)
    else:
        assert re.search(r"temporarily rejected RCPT <u0@example\.test>: .*unknown \(no local list, "
                         r"no cached callout\): deferred \(unknown=defer\)", t.rejectlog())
    ids = t.spool_ids()
    assert len(ids) == 5
    m = read_spool(t.spool, ids[0])
    want = ["good@example.test", "vip@example.test"] + ([f"u{i}@example.test" for i in range(47)]
                                                        if unknown == "accept" else [])
    assert sorted(x["addr"] for x in m.rcpts) == sorted(want)
    out = hosts(t)
    assert re.search(rf"^127\.0\.0\.2:{port} down \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d \S", out, re.M), out
    # the host comes back: after its retry time one probe finds it up, and the queue delivers
    if dead == "refusing":
        hop = nexthop(host="127.0.0.2", port=port)
    else:
        hop.set(banner="220 nexthop.test ESMTP back")
    wait_until(lambda: re.search(rf"^127\.0\.0\.2:{port} up - -$", hosts(t), re.M), timeout=20,
               what="the host up again")
    hop.wait_accepted(len(ids), timeout=20)        # the queue delivers what was kept
    wait_until(lambda: t.spool_ids() == [], timeout=10)


def test_callout_limit_is_one_limit_for_the_daemon(tandem, nexthop):
    """callout_max_per_host = 2 with two workers and 20 concurrent sessions to a slow next hop:
    never more than 2 connections open at the next hop (cutthrough links, queued deliveries and
    pooled connections alike); the sessions that find the limit reached are answered from what
    tandem knows after a 5 s wait (unknown=accept: queued), and every message arrives."""
    hop = nexthop(dot=stall(2, "250 2.0.0 ok"))   # one message a second through 2 connections
    t = tandem(relay_config(hop, cutthrough=True),
               options={"workers": "2", "callout_max_per_host": "2", "smtp_accept_max_per_host": "50"})
    peak, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], sum(1 for s in hop.sessions
                                       if s.ended_by is None and "QUIT" not in s.commands))
            time.sleep(0.01)
    watcher = threading.Thread(target=watch)
    watcher.start()
    replies = []

    def session(i):
        with t.connect() as c:
            c.ehlo()
            replies.append(send(c, [f"r{i}@example.test"])["data"][0])
            c.quit()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        hop.wait_accepted(20, timeout=60)
    finally:
        stop.set()
        watcher.join()
    assert replies == [250] * 20
    assert sorted(r for m in hop.accepted for r in m.rcpts) == sorted(f"r{i}@example.test" for i in range(20))
    assert peak[0] <= 2, peak[0]
    assert 1 <= len(re.findall(r" >> r\d+@example\.test ", t.mainlog()))     # some cut through
    assert "connection limit (callout_max_per_host) reached" in t.mainlog()   # some could not


def test_smtputf8_to_a_next_hop_without_it_is_refused_in_the_session(tandem, nexthop):
    """RFC 6531: a message that needs SMTPUTF8 must not go out without it.  Under cutthrough the
    client hears 553 5.6.7 at RCPT (as the queue would fail it with 5.6.7, but without a bounce
    days later); an ASCII message on the same link goes through."""
    hop = nexthop(advertise={"SMTPUTF8": False})
    t = tandem(relay_config(hop, cutthrough=True))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<j\u00f6rg@client.test> SMTPUTF8")
        code, lines = c.cmd("RCPT TO:<u@example.test>")
        assert (code, lines[0][:5]) == (553, "5.6.7"), (code, lines)
        c.expect(554, "DATA")                      # no valid recipients
        c.expect(250, "RSET")
        r = send(c, ["u@example.test"])
        c.quit()
    assert r["data"][0] == 250
    [m] = hop.wait_accepted(1)
    assert m.mail_from == "s@client.test" and hop.violations() == []
    assert t.spool_ids() == []


# -- callout options on a cutthrough link ------------------------------------------------------

def test_callout_cache_is_read_and_fed_under_cutthrough(tandem, nexthop):
    """With verify = recipient/callout in a cutthrough ACL the mirrored RCPT is the callout: its
    verdicts are cached, and a cached refusal is answered without asking the next hop again."""
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 <bad@example.test>: no such user"})
    t = tandem(relay_config(hop, cutthrough=True, callout="10s"))
    for _ in range(2):
        with t.connect() as c:
            c.ehlo()
            r = send(c, ["good@example.test", "bad@example.test"])
            c.quit()
        assert r["rcpt"][1] == (550, ["5.1.1 <bad@example.test>: no such user"]) and r["data"][0] == 250
    hop.wait_accepted(2)
    asked = [a for s in hop.sessions for a, _, _ in s.rcpts]
    assert asked.count("bad@example.test") == 1            # the second time, from the cache
    rc, out, _ = t.run("callout-cache list")
    assert re.search(r"^bad@example\.test \S+ refused ", out, re.M), out
    assert re.search(r"^good@example\.test \S+ accepted ", out, re.M), out


def test_no_cache_keeps_link_verdicts_out_of_the_cache(tandem, nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    t = tandem(relay_config(hop, cutthrough=True, callout="10s,no_cache"))
    with t.connect() as c:
        c.ehlo()
        assert send(c, ["good@example.test", "bad@example.test"])["data"][0] == 250
        c.quit()
    hop.wait_accepted(1)
    rc, out, _ = t.run("callout-cache list")
    assert rc == 0 and "example.test" not in out


@pytest.mark.parametrize("option", ["use_postmaster", "random"])
def test_callouts_that_cannot_carry_the_message_run_on_their_own(tandem, nexthop, option):
    """A callout from postmaster, or one that first tries a random local part, cannot be the
    message's transaction: it runs on its own, and the RCPT is then mirrored with the real
    sender; the message carries only the real recipient."""
    hop = nexthop()
    t = tandem(relay_config(hop, cutthrough=True, callout=f"10s,{option}"))
    with t.connect() as c:
        c.ehlo()
        r = send(c, ["u@example.test"])
        c.quit()
    assert r["rcpt"][0][0] == 250 and r["data"][0] == 250
    [m] = hop.wait_accepted(1)
    assert m.mail_from == "s@client.test" and m.rcpts == ["u@example.test"]
    mails = [a for s in hop.sessions for a, _, _ in s.mails]
    rcpts = [a for s in hop.sessions for a, _, _ in s.rcpts]
    if option == "use_postmaster":
        assert "postmaster@tandem.test" in mails
    else:
        assert any(a.startswith("tandem-verify-") for a in rcpts)
    assert t.spool_ids() == []


def test_callout_timeout_applies_to_the_link(tandem, nexthop):
    """The callout's own timeout (2s) is the link's: a next hop silent at RCPT is given up after
    it, not after callout_timeout (60s here), and the recipient is answered by unknown=."""
    hop = nexthop(rcpt=stall(8))
    t = tandem(relay_config(hop, cutthrough=True, callout="2s,defer_ok"),
               options={"callout_timeout": "60s"})
    with t.connect(timeout=30) as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        start = time.monotonic()
        code, _ = c.cmd("RCPT TO:<u@example.test>")
        waited = time.monotonic() - start
        c.quit()
    assert code == 250 and waited < 30, waited           # not the 60s of callout_timeout
    t.wait_log(r"timed out waiting for reply to RCPT")


# -- the pool of onward connections -------------------------------------------------------------

POOL = 20


def test_pool_serves_one_message_per_client_connection(tandem, nexthop, certs):
    """1,000 messages, each on a client connection of its own, 20 at a time, cut through to one
    next hop over TLS (verified): the onward connections (and full TLS handshakes) stay near the
    pool size instead of one per message, and every message arrives once."""
    hop = nexthop(tls=(certs.nexthop_cert, certs.nexthop_key))
    t = tandem(relay_config(hop, cutthrough=True, route_options="tls=verify"),
               options={"workers": "2", "tls_outbound_ca": certs.ca,
                        "onward_pool_size": str(POOL), "callout_max_per_host": str(2 * POOL),
                        "smtp_accept_max_per_host": "100"})
    n, errors = 1000, []

    def client(k):
        for i in range(k, n, POOL):
            try:
                with t.connect() as c:
                    c.ehlo()
                    r = send(c, [f"m{i}@example.test"])
                    c.quit()
                if r["data"] is None or r["data"][0] != 250 or "next hop: 250" not in r["data"][1][0]:
                    errors.append((i, r))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((i, repr(e)))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(POOL)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert errors == []
    hop.wait_accepted(n, timeout=60)
    got = sorted(r for m in hop.accepted for r in m.rcpts)
    assert got == sorted(f"m{i}@example.test" for i in range(n))       # each exactly once
    sessions = list(hop.sessions)
    full = [s for s in sessions if s.tls and not s.tls_resumed]
    print(f"\n{n} messages: {len(sessions)} onward connections, {len(full)} full TLS handshakes, "
          f"{sum(s.tls_resumed for s in sessions)} resumed")
    assert all(s.tls for s in sessions)
    assert len(sessions) <= 2 * POOL, len(sessions)                    # not one per message
    assert len(full) <= 2 * POOL
    assert any(s.tls_resumed for s in sessions)                         # sessions are resumed
    assert t.spool_ids() == []


def test_pooled_connection_closed_by_the_next_hop_is_replaced(tandem, nexthop):
    """A pooled connection the next hop closed meanwhile (FIN while idle), or that fails its
    RSET check, is replaced by a new one: the client notices nothing and no message is lost."""
    hop = nexthop()
    port = hop.port
    t = tandem(relay_config(hop, cutthrough=True))

    def one(i):
        with t.connect() as c:
            c.ehlo()
            r = send(c, [f"p{i}@example.test"])
            c.quit()
        assert r["data"][0] == 250 and "next hop: 250" in r["data"][1][0], r

    one(0)
    hop.wait_accepted(1)
    assert hop.connections == 1
    one(1)                                          # the pooled connection serves a new client
    hop.wait_accepted(2)
    assert hop.connections == 1 and hop.sessions[0].commands.count("RSET") == 1
    hop.set(rset="421 4.4.2 idle too long, closing")  # fails its check: replaced
    one(2)
    hop.wait_accepted(3)
    assert hop.connections == 2
    hop.stop()                                       # closes the pooled one (FIN while idle)
    hop2 = nexthop(host="127.0.0.2", port=port)
    time.sleep(0.3)
    one(3)
    [m] = hop2.wait_accepted(1)
    assert m.rcpts == ["p3@example.test"]
    assert t.spool_ids() == []
    assert not re.search(r"^127\.0\.0\.2:\d+ down", hosts(t), re.M)   # not the host's fault


# -- a local lookup answers when the next hop cannot ----------------------------------------------

@pytest.mark.parametrize("kind", ["lsearch", "cdb"])
def test_lookup_the_acl_requires_answers_for_a_dead_next_hop(tandem, tmp_path, kind):
    """A backup MX with the primary's list of valid recipients (Postfix's
    relay_recipient_maps): with the next hop down, a listed recipient is accepted and queued
    although unknown=defer (the lookup knows it, and the log names the lookup); an unlisted one
    is refused by the ACL that requires the list."""
    path = str(tmp_path / "recipients")
    keys = ["listed@example.test", "other@example.test"]
    if kind == "lsearch":
        with open(path, "w") as f:
            f.write("# the primary's recipients\n" + "".join(f"{k}\n" for k in keys))
    else:
        subprocess.run(["cdb", "-c", "-m", path], check=True,
                       input="".join(f"{k} x\n" for k in keys).encode())
    t = tandem(f"""
domainlist relay_to_domains = example.test
acl_smtp_rcpt = check_rcpt
begin routes
+relay_to_domains  [127.0.0.2]:1
begin acl
check_rcpt:
  deny    message = relay not permitted
          !domains = +relay_to_domains
  deny    message = 550 5.1.1 unknown user
          !recipients = {kind};{path}
  accept  control = cutthrough_delivery/unknown=defer
""", options={"callout_timeout": "3s"})
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        assert c.cmd("RCPT TO:<listed@example.test>")[0] == 250
        assert c.cmd("RCPT TO:<nobody@example.test>") == (550, ["5.1.1 unknown user"])
        assert c.data(BODY)[0] == 250
        c.quit()
    [mid] = t.spool_ids()
    assert [x["addr"] for x in read_spool(t.spool, mid).rcpts] == ["listed@example.test"]
    t.wait_log(rf"RCPT <listed@example\.test>: next hop could not answer \(.*Connection refused\): "
               rf"valid according to recipients = {kind};{re.escape(path)} \(ACL line \d+\): "
               r"accepted, queued for delivery")
