"""The edge policy kinds (bench/run --edge): tandem cutthrough with `dnslists`, and with `spam`
scanned by a real rspamd, beside plain cutthrough; and rspamd measured alone.

    KINDS                                      # "tandem-ct-dnsl", "tandem-ct-spam"
    t = start_tandem(kind, workdir, ctx, sink_port)   # t.stop() stops its DNS server / rspamd
    row = scanner_alone(ctx, scenario)         # rspamd alone: msg/s, latency, its own time

- dnslists: `deny dnslists = bl.bench` in the RCPT ACL, the zone served by the test harness's
  DNS server on loopback (answers cached by tandem's resolver for their TTL, 60 s, as a local
  caching resolver would).  The client is not listed: the usual case.  tandem keeps answers for
  the session, so the cost is one lookup per connection: the reused-connection scenarios show
  it spread over many messages, `4k-s50-newconn` pays it for every message.
- spam: `deny spam = nobody` in the data ACL, rspamd started with the tests' minimal config
  (tests/scenario/harness/rspamd.py: no Lua rules, only rspamd's built-in checks, one worker
  process), so the figure is tandem's cost plus the lightest possible scan.  Every message is
  streamed to rspamd during DATA and the final dot waits for its verdict.
- scanner_alone: the scenario's message size POSTed straight to /checkv2 by as many client
  threads as the scenario has sessions (at most 50), for the run's length: rspamd's own
  throughput and latency, and its own processing time (the `time_real` of its replies).  The
  client is Python, so at high rates it may be the limit; the row says how busy it was.
"""
import os
import statistics
import sys
import threading
import json
import time
import urllib.request

from servers import Tandem

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "scenario"))
from harness.dns import DnsServer          # noqa: E402
from harness.rspamd import Rspamd          # noqa: E402

KINDS = ("tandem-ct-dnsl", "tandem-ct-spam")
DNSL_TTL = 60


class EdgeTandem(Tandem):
    """tandem with a helper (DNS server or rspamd) that lives as long as it does."""

    def __init__(self, workdir, binary, sink_port, extra, helper):
        self.helper = helper
        try:
            super().__init__(workdir, binary, sink_port, cutthrough=True, extra=extra)
        except Exception:
            helper.stop()
            raise

    def stop(self, timeout=20):
        try:
            super().stop(timeout)
        finally:
            self.helper.stop()


def start_tandem(kind, workdir, ctx, sink_port):
    os.makedirs(workdir, exist_ok=True)
    if kind == "tandem-ct-dnsl":
        dns = DnsServer({"2.0.0.127.bl.bench": {"A": "127.0.0.2"}}, ttl=DNSL_TTL)
        extra = {"main": f"{dns.config_line}\n", "rcpt": "  deny dnslists = bl.bench\n"}
        return EdgeTandem(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink_port, extra, dns)
    r = Rspamd(os.path.join(workdir, "rspamd"))
    extra = {"main": f"{r.config_line} tmo=60s\nacl_smtp_data = check_data\n",
             "acls": "check_data:\n  deny spam = nobody\n  accept\n"}
    return EdgeTandem(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink_port, extra, r)


def _message(size):
    """A message of about `size` bytes shaped like smtp-source's (numbered lines of X), so that
    rspamd alone scans what it scans behind tandem."""
    head = (b"From: <bench@client.test>\r\nTo: <rcpt@example.test>\r\n"
            b"Date: Mon, 7 Dec 2026 23:04:33 +0000\r\nMessage-Id: <bench.1@client.test>\r\n\r\n")
    lines = [b"%d" % (i % 10) + b"X" * 77 + b"\r\n" for i in range(max(1, (size - len(head)) // 80))]
    return head + b"".join(lines)


def _post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/checkv2", data=body, method="POST")
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        reply = json.loads(r.read())
    return time.monotonic() - t0, float(reply.get("time_real", 0))


def scanner_alone(ctx, sc):
    """rspamd alone for scenario `sc` (see the module docstring); a result dict."""
    workdir = os.path.join(ctx.workdir, f"{sc.name}-rspamd-alone")
    r = Rspamd(workdir)
    body, threads = _message(sc.size), min(sc.sessions, 50)
    lat, real, errors = [], [], []
    stop = time.monotonic() + ctx.budget.run_s
    lock = threading.Lock()

    def client():
        while time.monotonic() < stop:
            try:
                one, own = _post(r.port, body)
            except Exception as exc:           # noqa: BLE001 - reported in the row
                with lock:
                    errors.append(str(exc))
                return
            with lock:
                lat.append(one)
                real.append(own)
    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        workers = [threading.Thread(target=client) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    finally:
        r.stop()
    if not lat:
        return {"scenario": sc.name, "error": errors[0] if errors else "no request completed"}
    lat.sort()
    return {"scenario": sc.name, "sessions": threads, "size": len(body), "count": len(lat),
            "rate": len(lat) / wall, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "time_real_ms": statistics.median(real) * 1000, "client_cpu_pct": 100 * cpu / wall,
            "errors": len(errors)}
