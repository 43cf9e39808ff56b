"""Recipient verification callouts and their cache (issue 8)."""
import re
import time

import pytest

from harness import relay_config, stall

BODY = b"Subject: c\r\n\r\ncallout\r\n"


def asked(hop, n):
    """Wait until the next hop has been asked n RCPTs (on one pooled connection or several)."""
    hop.wait_for(lambda h: sum(len(s.rcpts) for s in h.sessions) >= n, 10, f"{n} RCPTs")


def rcpt(t, addr, sender="s@client.test"):
    with t.connect() as c:
        c.ehlo()
        c.expect(250, f"MAIL FROM:<{sender}>")
        res = c.cmd(f"RCPT TO:<{addr}>")
        c.quit()
    return res


def test_callout_accepted_then_answered_from_cache(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop, callout="10s"))
    assert rcpt(t, "ok@example.test")[0] == 250
    hop.wait_sessions(1)
    s = hop.sessions[0]
    assert s.mails[0][0] == "" and s.rcpts[0][0] == "ok@example.test"   # MAIL FROM:<>
    assert rcpt(t, "ok@example.test")[0] == 250
    time.sleep(0.3)
    assert hop.connections == 1                       # the cache answered
    rc, out, _ = t.run("callout-cache list")
    assert rc == 0 and re.search(r"^ok@example\.test \S+ accepted expires=", out, re.M), out


def test_callout_unknown_user_is_refused_with_next_hop_text_and_cached(tandem, nexthop):
    hop = nexthop(rcpt={"nobody@example.test": "550 5.1.1 <nobody@example.test>: user unknown"})
    t = tandem(relay_config(hop, callout="10s"))
    code, lines = rcpt(t, "nobody@example.test")
    assert code == 550 and lines == ["5.1.1 <nobody@example.test>: user unknown"]
    assert rcpt(t, "nobody@example.test")[0] == 550
    time.sleep(0.3)
    assert hop.connections == 1
    rc, out, _ = t.run("callout-cache list")
    assert "nobody@example.test" in out and " refused " in out and "5.1.1" in out
    t.wait_log(r"rejected RCPT <nobody@example\.test>: 550 5\.1\.1", log="rejectlog")


def test_policy_refusal_is_not_cached_as_unknown_user(tandem, nexthop):
    hop = nexthop(rcpt={"x@example.test": "550 5.7.1 relaying denied for your IP"})
    t = tandem(relay_config(hop, callout="10s"))
    assert rcpt(t, "x@example.test")[0] == 550
    assert rcpt(t, "x@example.test")[0] == 550
    asked(hop, 2)                                     # asked again: nothing cached
    rc, out, _ = t.run("callout-cache list")
    assert "x@example.test" not in out


@pytest.mark.parametrize("script", [{"rcpt": "451 4.3.0 try later"},
                                    {"rcpt": stall(5)},
                                    {"banner": "421 4.3.2 busy"}],
                         ids=["451", "timeout", "421-banner"])
def test_temporary_callout_failures_give_451(tandem, nexthop, script):
    hop = nexthop(**script)
    t = tandem(relay_config(hop, callout="2s"))
    code, lines = rcpt(t, "u@example.test")
    assert code == 451, (code, lines)


def test_connection_refused_gives_451_and_defer_ok_accepts(tandem):
    cfg = relay_config("[127.0.0.2]:1", callout="2s")
    t = tandem(cfg)
    assert rcpt(t, "u@example.test")[0] == 451
    t2 = tandem(relay_config("[127.0.0.2]:1", callout="2s,defer_ok"))
    assert rcpt(t2, "u@example.test")[0] == 250


def test_random_catch_all_domain(tandem, nexthop):
    hop = nexthop()                                   # accepts any local part
    t = tandem(relay_config(hop, callout="10s,random"))
    assert rcpt(t, "first@example.test")[0] == 250
    hop.wait_sessions(1)
    asked = [r[0] for r in hop.sessions[0].rcpts]
    assert len(asked) == 1 and asked[0].startswith("tandem-verify-")   # no callout of its own
    assert rcpt(t, "second@example.test")[0] == 250
    time.sleep(0.3)
    assert hop.connections == 1                       # the domain is known as accept-all
    rc, out, _ = t.run("callout-cache list")
    assert re.search(r"^\*@example\.test \S+ accept-all", out, re.M), out
    assert "first@example.test" not in out


def test_use_sender_and_no_cache(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop, callout="10s,use_sender,no_cache"))
    assert rcpt(t, "u@example.test", sender="real@client.test")[0] == 250
    assert rcpt(t, "u@example.test", sender="real@client.test")[0] == 250
    asked(hop, 2)
    assert hop.sessions[0].mails[0][0] == "real@client.test"


def test_cache_expires_and_purge(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop, callout="10s"), options={"callout_cache_positive": "1s"})
    assert rcpt(t, "a@example.test")[0] == 250
    time.sleep(1.2)
    assert rcpt(t, "a@example.test")[0] == 250
    asked(hop, 2)                                     # expired: asked again
    assert rcpt(t, "b@example.test")[0] == 250
    rc, out, _ = t.run("callout-cache purge example.test")
    assert rc == 0 and re.search(r"[12] entr", out)
    rc, out, _ = t.run("callout-cache list")
    assert "example.test" not in out


def test_callouts_per_host_are_limited(tandem, nexthop):
    hop = nexthop(rcpt=stall(1, "250 ok"))
    t = tandem(relay_config(hop, callout="10s,no_cache"), options={"callout_max_per_host": "2",
                                                                    "smtp_accept_max_per_host": "20"})
    import threading
    results = []
    def one(i):
        results.append(rcpt(t, f"u{i}@example.test")[0])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    peak = 0
    deadline = time.time() + 8
    while any(th.is_alive() for th in threads) and time.time() < deadline:
        # callouts in progress: a finished one's slot is free once it has sent QUIT, while
        # its connection may take a moment to close (more so under the sanitizers)
        peak = max(peak, sum(1 for s in hop.sessions
                             if s.ended_by is None and "QUIT" not in s.commands))
        time.sleep(0.05)
    for th in threads:
        th.join()
    assert results == [250] * 6
    assert peak <= 2, peak
