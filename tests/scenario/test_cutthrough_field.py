"""Cutthrough in the field (issue 12): equal-preference MX hosts, a next hop that is down or
slow, `tandem session --no-deliver`, BDAT, SMTPUTF8, the wait for the final dot.  Each test
checks the client's replies, what the next hops saw, the spool and the log lines."""
import re

import pytest

from harness import free_port, relay_config, stall, wait_until

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
