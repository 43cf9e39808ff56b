"""Cutthrough and callouts moving on between next hops: several hosts on a static route, or the
MX hosts of a domain from the harness's DNS server.  The first host refuses the connection,
answers 421 at the banner, or says nothing until the timeout; the next host then gets the
recipient check and the message, in the same client session."""
import re

import pytest

from harness import free_port, relay_config, stall

BODY = b"Subject: failover\r\n\r\nto whichever host answers\r\n"


def same_message(m):
    """The next hop got the client's message (tandem adds Received, Date, Message-ID)."""
    return m.header("Subject") == "failover" and \
        m.data.endswith(b"\r\n\r\nto whichever host answers\r\n")
FAILURES = ["refused", "421-banner", "silent"]
TIMEOUT = {"callout_timeout": "1s"}       # a silent host costs one second


def failing_host(nexthop, failure, host="127.0.0.2", port=0):
    """A first next hop that fails as ``failure`` says; returns (its route text, NextHop or
    None when nothing listens)."""
    if failure == "refused":
        port = port or free_port(host)
        return f"[{host}]:{port}", None
    script = {"banner": "421 4.3.2 too busy"} if failure == "421-banner" else \
             {"banner": stall(5)}
    hop = nexthop(host=host, port=port, **script)
    return hop.route, hop


def assert_untouched(bad):
    """The failing host took no transaction (it may have seen a connection)."""
    if bad is not None:
        bad.wait_idle()
        assert bad.accepted == [] and all(not s.mails for s in bad.sessions)


@pytest.mark.parametrize("failure", FAILURES)
def test_cutthrough_moves_on_to_the_next_host(tandem, nexthop, failure):
    route1, bad = failing_host(nexthop, failure)
    good = nexthop(host="127.0.0.3", rcpt={"nobody@example.test": "550 5.1.1 no such user"})
    t = tandem(relay_config(f"{route1} {good.route}", cutthrough=True), options=TIMEOUT)
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        assert c.cmd("RCPT TO:<nobody@example.test>") == (550, ["5.1.1 no such user"])
        c.expect(250, "RCPT TO:<u@example.test>")
        final = c.data(BODY)
        c.quit()
    assert final[0] == 250 and "(next hop: 250 2.0.0 OK queued as" in final[1][0], final
    [m] = good.wait_accepted(1)
    assert m.rcpts == ["u@example.test"] and same_message(m)
    t.wait_log(rf">> u@example\.test R=\+relay_to_domains T=remote_smtp "
               rf"H=\[127\.0\.0\.3\]:{good.port} C=\"250 ")
    assert t.spool_ids() == []                             # cut through: nothing queued
    assert_untouched(bad)


@pytest.mark.parametrize("failure", FAILURES)
def test_callout_moves_on_to_the_next_host(tandem, nexthop, failure):
    route1, bad = failing_host(nexthop, failure)
    good = nexthop(host="127.0.0.3", rcpt={"nobody@example.test": "550 5.1.1 no such user"})
    t = tandem(relay_config(f"{route1} {good.route}", callout="1s"))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        assert c.cmd("RCPT TO:<nobody@example.test>") == (550, ["5.1.1 no such user"])
        c.expect(250, "RCPT TO:<ok@example.test>")
        c.quit()
    good.wait_idle()
    asked = [r[0] for s in good.sessions for r in s.rcpts]
    assert sorted(asked) == ["nobody@example.test", "ok@example.test"]
    rc, out, _ = t.run("callout-cache list")
    assert rc == 0 and re.search(r"^nobody@example\.test \S+ refused ", out, re.M), out
    t.wait_log(r"rejected RCPT <nobody@example\.test>: 550 5\.1\.1 no such user",
               log="rejectlog")
    assert_untouched(bad)


def test_every_host_failing_defers_the_recipient(tandem, nexthop):
    """No host answers: the callout gives 451 and says why, naming the last host tried."""
    route1, _ = failing_host(nexthop, "refused")
    route2, bad = failing_host(nexthop, "421-banner", host="127.0.0.3")
    t = tandem(relay_config(f"{route1} {route2}", callout="1s"))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        code, lines = c.cmd("RCPT TO:<u@example.test>")
        c.quit()
    assert code == 451, lines
    assert_untouched(bad)


MX_ZONE = {"example.net": {"MX": [(20, "mx2.example.net"), (10, "mx1.example.net")]},
           "mx1.example.net": {"A": "127.0.0.2"}, "mx2.example.net": {"A": "127.0.0.3"}}


@pytest.mark.parametrize("primary", ["answers", "refused", "421-banner"])
def test_cutthrough_over_an_mx_route(tandem, nexthop, dns, primary):
    """The MX hosts come from DNS, lowest preference first: mx1 takes the message; when it
    fails, mx2 does, in the same session."""
    port = free_port("127.0.0.2", "127.0.0.3")
    if primary == "answers":
        first = nexthop(host="127.0.0.2", port=port)
    else:
        _, first = failing_host(nexthop, primary, port=port)
    second = nexthop(host="127.0.0.3", port=port)
    d = dns(MX_ZONE)
    t = tandem(relay_config("mx", domains="example.net", cutthrough=True,
                            main=f"{d.config_line}\nremote_port = {port}"), options=TIMEOUT)
    with t.connect() as c:
        c.ehlo()
        r = c.send_mail("s@client.test", ["u@example.net"], BODY)
        c.quit()
    assert r["final"][0] == 250, r
    taker, other = (first, second) if primary == "answers" else (second, first)
    name, addr = ("mx1", "2") if primary == "answers" else ("mx2", "3")
    [m] = taker.wait_accepted(1)
    assert m.rcpts == ["u@example.net"] and same_message(m)
    t.wait_log(rf">> u@example\.net R=\+relay_to_domains T=remote_smtp "
               rf"H={name}\.example\.net \[127\.0\.0\.{addr}\]:{port} C=\"250 ")
    assert_untouched(other)
    assert d.queried("example.net", "MX") and t.spool_ids() == []
