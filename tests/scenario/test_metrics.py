"""Prometheus metrics (metrics_listen, issue 15): /metrics scraped during a load run parses with
promtool (Debian's prometheus package) and its counters reconcile with the main log; each
outcome lands in its own counter; workers' counters are summed and survive a worker's crash."""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import SmtpConn, free_port, relay_config, wait_until
from harness.interop import have_postfix_tools, smtp_source

BODY = b"Subject: m\r\n\r\nhello\r\n"
SERIES = re.compile(r'^(tandem_[a-z_]+)(\{[^}]*\})? (\S+)$', re.M)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def parse(text):
    """{'name{labels}': value}"""
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in SERIES.finditer(text)}


def promtool_ok(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def count(log, regex):
    return len(re.findall(regex, log, re.M))


def metrics_tandem(tandem, config, **opts):
    port = free_port("127.0.0.1")
    t = tandem(config, options={"metrics_listen": f"127.0.0.1:{port}", **opts})
    t.metrics_port = port
    wait_until(lambda: _up(port), 10, "metrics listening")
    return t


def _up(port):
    try:
        scrape(port)
        return True
    except OSError:
        return False


@pytest.mark.skipif(not have_postfix_tools(), reason="postfix tools not extracted")
def test_scraped_during_load_parses_and_reconciles(tandem, smtp_sink):
    sink = smtp_sink()
    t = metrics_tandem(tandem, f"""
        domainlist relay_to_domains = cut.test : queue.test
        acl_smtp_rcpt = check_rcpt
        begin routes
        +relay_to_domains  [127.0.0.1]:{sink.port}
        begin acl
        check_rcpt:
          accept  domains = cut.test
                  control = cutthrough_delivery
          accept  domains = queue.test
        """, workers="2", smtp_accept_max="200", smtp_accept_max_per_host="200")
    scrapes, stop = [], threading.Event()

    def scraper():
        while not stop.is_set():
            scrapes.append(scrape(t.metrics_port))
            time.sleep(0.1)
    th = threading.Thread(target=scraper)
    th.start()
    results = {}

    def load(to, n):
        results[to] = smtp_source(t.port, count=n, sessions=10, size=1500, rcpts=1,
                                  sender="load@client.test", to=to, reuse=True, timeout=300)
    loads = [threading.Thread(target=load, args=("x@cut.test", 600)),
             threading.Thread(target=load, args=("y@queue.test", 400))]
    for th_load in loads:
        th_load.start()
    for th_load in loads:
        th_load.join()
    assert all(r[0] == 0 for r in results.values()), results
    t.wait_log(r" Completed$", count=1000, timeout=120)
    stop.set()
    th.join()
    assert len(scrapes) >= 3
    for text in scrapes[:: max(1, len(scrapes) // 10)] + [scrapes[-1]]:
        promtool_ok(text)
    final = scrape(t.metrics_port)
    promtool_ok(final)
    m, log = parse(final), t.mainlog()
    assert m["tandem_messages_received_total"] == count(log, r" <= ") == 1000
    assert m['tandem_deliveries_total{result="cutthrough"}'] == count(log, r" >> ") == 600
    assert m['tandem_deliveries_total{result="delivered"}'] == count(log, r" (=>|->) ") == 400
    assert m['tandem_deliveries_total{result="deferred"}'] == count(log, r" == ") == 0
    assert m['tandem_deliveries_total{result="failed"}'] == count(log, r" \*\* ") == 0
    assert m["tandem_messages_cutthrough_total"] == 600
    assert m["tandem_messages_queued_total"] == 400
    assert m['tandem_nexthop_replies_total{stage="rcpt",outcome="accepted"}'] == 1000
    assert m['tandem_nexthop_replies_total{stage="dot",outcome="accepted"}'] == 1000
    assert m['tandem_end_of_data_seconds_count{side="client"}'] == 1000
    assert m['tandem_end_of_data_seconds_count{side="nexthop"}'] == 1000
    assert m['tandem_end_of_data_seconds_bucket{side="client",le="+Inf"}'] == 1000
    assert m["tandem_sessions_open"] == 0
    assert m["tandem_queue_messages"] == 0
    assert m["tandem_connections_total"] >= 20
    opened = m['tandem_onward_connections_total{how="opened"}']
    reused = m['tandem_onward_connections_total{how="reused"}']
    assert 0 < opened < 1000 and opened + reused >= 1000 - 400   # links are kept and reused
    # counters only grow between scrapes
    seq = [parse(s)["tandem_messages_received_total"] for s in scrapes]
    assert seq == sorted(seq)


def test_outcomes_cache_and_tls(tandem, nexthop, certs):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user",
                        "later@example.test": "451 4.3.0 try later"},
                  dot=lambda sess, arg: "554 5.7.1 refused at dot" if b"Subject: spam" in sess.messages[-1].data
                  else "250 2.0.0 ok")
    t = metrics_tandem(tandem, relay_config(hop, cutthrough=True, callout="10s"),
                       tls_certificate=certs.server_cert, tls_privatekey=certs.server_key)
    with t.connect() as c:
        c.ehlo()
        c.starttls(cafile=certs.ca, server_hostname="tandem.test")
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@client.test>")
        c.expect(550, "RCPT TO:<bad@example.test>")
        c.expect(550, "RCPT TO:<bad@example.test>")
        c.expect(250, "RCPT TO:<ok@example.test>")
        assert c.data(BODY)[0] == 250
        c.expect(250, "MAIL FROM:<a@client.test>")
        c.expect(250, "RCPT TO:<ok@example.test>")
        assert c.data(b"Subject: spam\r\n\r\nx\r\n")[0] == 554
        c.quit()
    t.wait_log(r">> ok@example\.test")
    m = parse(scrape(t.metrics_port))
    rcpt_codes = [code for sess in hop.sessions for _, _, code in sess.rcpts]
    assert m['tandem_nexthop_replies_total{stage="rcpt",outcome="refused"}'] == \
        sum(1 for code in rcpt_codes if code // 100 == 5) >= 1
    assert m['tandem_nexthop_replies_total{stage="rcpt",outcome="accepted"}'] == \
        sum(1 for code in rcpt_codes if code // 100 == 2)
    assert m['tandem_nexthop_replies_total{stage="dot",outcome="accepted"}'] == 1
    assert m['tandem_nexthop_replies_total{stage="dot",outcome="refused"}'] == 1
    assert m['tandem_tls_sessions_total{side="inbound"}'] == 1
    assert m["tandem_messages_received_total"] == 1 == m["tandem_messages_cutthrough_total"]
    assert m['tandem_end_of_data_seconds_count{side="client"}'] == 2
    assert m['tandem_deliveries_total{result="cutthrough"}'] == 1


def test_callout_cache_hits_and_misses(tandem, nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    t = metrics_tandem(tandem, relay_config(hop, callout="10s"))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@client.test>")
        c.expect(550, "RCPT TO:<bad@example.test>")        # asked: a miss
        c.expect(550, "RCPT TO:<bad@example.test>")        # remembered: a hit
        c.quit()
    m = parse(scrape(t.metrics_port))
    assert m['tandem_callout_cache_lookups_total{result="miss"}'] == 1
    assert m['tandem_callout_cache_lookups_total{result="hit"}'] == 1
    assert m['tandem_nexthop_replies_total{stage="rcpt",outcome="refused"}'] == 1


def test_counters_summed_across_workers_and_kept_after_a_crash(tandem, nexthop):
    hop = nexthop()
    t = metrics_tandem(tandem, relay_config(hop, cutthrough=True), workers="2")
    workers = set(re.findall(r"\d+", subprocess.run(["pgrep", "-P", str(t.pid)], capture_output=True,
                                                     text=True).stdout))
    held, by_worker = [], {}
    for _ in range(60):                              # until both workers hold sessions
        c = t.connect()
        held.append(c)
        owner = next(p for p in workers if _serves(p, [c]))
        by_worker.setdefault(owner, []).append(c)
        if len(by_worker) == 2 and all(len(v) >= 2 for v in by_worker.values()):
            break
        time.sleep(0.02)
    assert len(by_worker) == 2, "the kernel gave every connection to one worker"
    wait_until(lambda: parse(scrape(t.metrics_port))["tandem_sessions_open"] == len(held), 10, "open")
    sent = 0
    for conns in by_worker.values():
        for c in conns[:2]:
            c.ehlo()
            assert c.send_mail("a@client.test", [f"u{sent}@example.test"], BODY)["final"][0] == 250
            sent += 1
    m = parse(scrape(t.metrics_port))
    assert m["tandem_messages_received_total"] == sent == 4          # two workers' slots summed
    victim = sorted(by_worker)[0]
    os.kill(int(victim), signal.SIGKILL)            # its sessions die with it
    t.expect_panic = True
    left = len(held) - len(by_worker[victim])
    wait_until(lambda: parse(scrape(t.metrics_port))["tandem_sessions_open"] == left, 10, "gauge reset")
    m = parse(scrape(t.metrics_port))
    assert m["tandem_messages_received_total"] == 4          # the dead worker's counts stay
    assert m['tandem_deliveries_total{result="cutthrough"}'] == 4
    for c in held:
        c.close()


def _serves(pid, conns):
    """Does process pid hold one of the server ends of conns (by local port)?"""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
    ports = {c.sock.getsockname()[1] for c in conns}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            rport = int(parts[2].split(":")[1], 16)
            if rport in ports and f"socket:[{parts[9]}]" in inodes:
                return True
    return False
