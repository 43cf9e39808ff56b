"""Many sessions held open at once: memory per idle session, the most cutthrough sessions.

    idle_memory(ctx, server, n, tls=False) -> dict
        bench/latency -H ehlo (or -H tls: after STARTTLS and the second EHLO) holds n
        sessions; the server's resident memory (sum of RSS, and of PSS, over its processes)
        is read before and while they are held: per session = growth / sessions held.
    cutthrough_max(ctx, server, ladder) -> dict
        for n in the ladder: n sessions each stopped after MAIL and RCPT (so each has its
        cutthrough connection to the sink open), then each sends its message; a step passes
        when every RCPT got 250 and every message 250.  Reports the largest step passed.

Clients bind to 127.0.0.10, .11, ... (1,000 sessions per address), so per-host limits and
ephemeral ports are never what is measured.
"""
import math
import subprocess
import time

from load import parse_kv
from util import log

PER_SOURCE = 1000


class Holder:
    """bench/latency in hold mode: start, wait until the sessions are held, then finish."""

    def __init__(self, ctx, port, n, stage, size=4096):
        sources = max(1, math.ceil(n / PER_SOURCE))
        cmd = [ctx.latency_bin, "-H", stage, "-s", str(n), "-b", "127.0.0.10", "-B",
               str(sources), "-c", "200", "-w", "120", "-l", str(size), f"127.0.0.1:{port}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.hold = parse_kv(line) if line.startswith("mode=hold") else {}
        self.held = int(self.hold.get("held", 0))
        self.failed = int(self.hold.get("failed", n if not self.hold else 0))

    def finish(self, timeout=300):
        try:
            out, err = self.proc.communicate("go\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        lines = [ln for ln in out.splitlines() if ln.startswith("mode=finish")]
        self.errors = err.strip().splitlines()
        return parse_kv(lines[-1]) if lines else {}


def idle_memory(ctx, server, n, tls=False):
    """Memory per idle session; server is a running tandem (or other Server)."""
    server.tree.settle(timeout=10)
    before = server.tree.snapshot()
    holder = Holder(ctx, server.port, n, "tls" if tls else "ehlo")
    time.sleep(1.0)                       # let the server finish its side of the handshakes
    during = server.tree.snapshot()
    fin = holder.finish()
    res = {"sessions": n, "held": holder.held, "failed": holder.failed,
           "lost": int(fin.get("lost_while_idle", 0)) + int(fin.get("failed", 0)),
           "rss_before_mib": before.rss_kib / 1024, "rss_during_mib": during.rss_kib / 1024}
    if holder.held:
        res["rss_per_session_kib"] = (during.rss_kib - before.rss_kib) / holder.held
        res["pss_per_session_kib"] = (during.pss_kib - before.pss_kib) / holder.held
    if holder.failed or res["lost"]:
        res["error"] = (holder.errors or ["?"])[0]
    log(f"  idle {'TLS' if tls else 'plain'} x{n}: held {holder.held}, "
        f"{res.get('rss_per_session_kib', 0):.1f} KiB RSS/session")
    return res


def cutthrough_max(ctx, server, sink, ladder):
    """Largest number of concurrent cutthrough sessions held without an error."""
    best, failure = 0, None
    for n in ladder:
        server.tree.settle(timeout=20)
        base = sink.count()
        holder = Holder(ctx, server.port, n, "rcpt")
        fin = holder.finish()
        ok = int(fin.get("ok", 0))
        got = sink.count() - base
        log(f"  cutthrough x{n}: held {holder.held}, failed {holder.failed}, "
            f"messages accepted {ok}, sink got {got}")
        if holder.failed or ok != n or got < n:
            failure = (f"at {n}: {holder.held} held, {holder.failed} failed before holding, "
                       f"{ok} accepted, sink got {got}; "
                       f"{(holder.errors or ['no client error'])[0]}")
            break
        best = n
    return {"max": best, "failure": failure, "ladder": list(ladder)}
