"""One measurement: a scenario's load against one server kind, on fresh processes.

    row = measure(kind, scenario, ctx)     # a dict, one line of the results table

Steps, each server and sink started afresh (a clean spool for every measurement):
 1. warm-up with smtp-source (also the calibration: its rate sizes the timed run so that the
    timed run lasts about ctx.budget.run_s seconds);
 2. timed run: smtp-source sends N messages; msg/s = N / wall time.  For store-and-forward
    with delivery the clock stops when the sink has all N (end to end); without delivery it
    stops at the last 250 and the row says "accept only, no delivery".  CPU = the server's
    CPU time over the run (its processes and all their children, see proctree.py), read
    before and after, once the server has settled; peak memory sampled during the run;
 3. latency run: bench/latency (same sessions, size, recipients) for ctx.budget.latency_s
    seconds, timing each transaction from MAIL FROM to the reply to the final dot.
"""
import os
import subprocess
import time

import edge
from balanced import Balanced
from servers import Exim, OnwardCounted, Sink, Tandem, TlsRelayed
from noise import Noise, fsync_cost
from proctree import PeakSampler
from util import listen_overflows, log, postfix_env, postfix_tool

CUTTHROUGH_KINDS = ("tandem-ct", "tandem-ct-dnsl", "tandem-ct-spam", "exim-ct", "haproxy-1",
                    "haproxy-2", "tandem-ct-nopool", "tandem-ct-tls", "tandem-ct-tls-nopool")
NOPOOL = "onward_pool_size = 0\n"


def run_source(port, sc, count, timeout):
    """Postfix smtp-source; returns (ok, seconds, error text)."""
    cmd = [postfix_tool("smtp-source"), "-m", str(count), "-s", str(sc.sessions),
           "-l", str(sc.size), "-r", str(sc.rcpts), "-f", "bench@client.test",
           "-t", "rcpt@example.test", "-M", "client.test"]
    if sc.reuse:
        cmd.append("-d")
    cmd.append(f"127.0.0.1:{port}")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=postfix_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - t0, f"smtp-source timed out after {timeout:.0f}s"
    elapsed = time.monotonic() - t0
    err = (p.stderr or p.stdout).strip().splitlines()
    return p.returncode == 0, elapsed, (err[-1] if err else f"exit {p.returncode}")


def parse_kv(line):
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def run_latency(binary, port, sc, seconds, max_messages):
    """bench/latency in load mode; returns its key=value results (floats) or {'error': ...}."""
    cmd = [binary, "-s", str(sc.sessions), "-t", str(seconds), "-m", str(max_messages),
           "-l", str(sc.size), "-r", str(sc.rcpts), "-w", "60"]
    if not sc.reuse:
        cmd.append("-n")
    cmd.append(f"127.0.0.1:{port}")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": "latency client timed out"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("mode=load")]
    if not lines:
        return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1]}
    out = {k: float(v) for k, v in parse_kv(lines[-1]).items() if k != "mode"}
    if out.get("errors"):
        out["error"] = (p.stderr.strip().splitlines() or ["errors"])[0]
    return out


def start(kind, workdir, ctx):
    """(sink, server) for one measurement; the server is the sink itself for kind 'sink'."""
    sink = Sink(os.path.join(workdir, "sink"))
    try:
        if kind == "sink":
            return sink, sink
        if kind in edge.KINDS:
            return sink, edge.start_tandem(kind, workdir, ctx, sink.port)
        if kind.startswith("haproxy"):
            return sink, Balanced(os.path.join(workdir, "balanced"), ctx.tandem_bin, sink.port,
                                  nodes=int(kind[-1]))
        if kind.startswith("tandem-ct-tls"):
            return sink, TlsRelayed(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink.port,
                                    ctx.cert, extra=NOPOOL if kind.endswith("nopool") else "")
        if kind in ("tandem-ct", "tandem-ct-nopool"):    # onward connections counted too
            return sink, OnwardCounted(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink.port,
                                       extra=NOPOOL if kind.endswith("nopool") else "")
        if kind.startswith("tandem"):
            return sink, Tandem(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink.port,
                                cutthrough=kind == "tandem-ct")
        return sink, Exim(sink.port, cutthrough=kind == "exim-ct")
    except Exception:
        sink.stop()
        raise


def delivers(kind, ctx):
    """Does this server kind deliver to the sink (cutthrough aside)?"""
    if kind == "tandem-sf":
        return ctx.tandem_delivers
    return True


def wait_sink(sink, target, timeout):
    """Wait until the sink has counted `target` messages; returns when (monotonic) or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sink.count() >= target:
            return time.monotonic()
        time.sleep(0.02)
    return None


def measure(kind, sc, ctx):
    """Run scenario `sc` against server `kind`; returns a result row (dict)."""
    row = {"scenario": sc.name, "server": kind, "status": "ok", "notes": []}
    workdir = os.path.join(ctx.workdir, f"{sc.name}-{kind}")
    sink, server = start(kind, workdir, ctx)
    try:
        _measure(kind, sc, ctx, sink, server, row)
    except Exception as exc:           # a failed measurement is a row, not a crash
        row["status"] = "error"
        row["notes"].append(f"{type(exc).__name__}: {exc}")
    finally:
        if hasattr(server, "paniclog") and server.paniclog().strip():
            row["notes"].append("paniclog: " + server.paniclog().strip().splitlines()[-1])
        if server is not sink:
            server.stop()
        sink.stop()
    return row


def _measure(kind, sc, ctx, sink, server, row):
    b = ctx.budget
    end_to_end = kind in ("tandem-sf", "exim-sf") and delivers(kind, ctx)
    accept_only = kind == "tandem-sf" and not ctx.tandem_delivers
    if accept_only:
        row["notes"].append("accept only, no delivery")

    # 1. warm-up and calibration
    warm = b.fixed_count or max(2 * sc.sessions, 200 if sc.size < 65536 else 4 * sc.sessions)
    warm = min(warm, b.warm_max)
    base = sink.count()
    ok, secs, err = run_source(server.port, sc, warm, timeout=120)
    if not ok:
        raise RuntimeError(f"warm-up: {err}")
    if kind in CUTTHROUGH_KINDS and sink.count() - base == 0:
        row["status"] = "n/a"
        row["notes"].append(f"cutthrough unavailable: the sink received 0 of {warm} messages "
                            f"during the sessions")
        return
    if end_to_end:
        wait_sink(sink, base + warm, 60)
    if b.fixed_count:
        count = b.fixed_count
    else:
        count = int(warm / max(secs, 1e-3) * b.run_s)
        count = max(count, 2 * sc.sessions, 20)
        count = min(count, b.max_count)

    # 2. timed run
    row["fsync_us"] = fsync_cost(ctx.workdir, 30)
    server.tree.settle(timeout=15)
    noise = Noise()
    noise.start()
    before = server.tree.snapshot(pss=False)
    sink_before = sink.tree.snapshot(pss=False) if sink is not server else before
    base = sink.count()
    ct_before = server.log_count(">>") if kind in CUTTHROUGH_KINDS else 0
    onward_before = server.onward() if hasattr(server, "onward") else None
    overflows = listen_overflows()
    with PeakSampler(server.tree) as peak:
        t0 = time.monotonic()
        ok, secs, err = run_source(server.port, sc, count,
                                   timeout=max(120, 20 * b.run_s))
        t_end = time.monotonic()
        if ok and end_to_end:
            done = wait_sink(sink, base + count, max(60, 5 * (t_end - t0)))
            if done is None:
                row["notes"].append(f"not drained: the sink has {sink.count() - base} of {count}")
            else:
                t_end = done
    overflows = listen_overflows() - overflows
    if not ok:
        raise RuntimeError(f"smtp-source: {err}")
    if overflows:
        row["notes"].append(f"{overflows} connection(s) dropped by a full listen queue")
    server.tree.settle(timeout=15)
    after = server.tree.snapshot(pss=False)
    sink_after = sink.tree.snapshot(pss=False) if sink is not server else after
    measured = after.cpu_s - before.cpu_s
    if sink is not server:
        measured += sink_after.cpu_s - sink_before.cpu_s
    row["other_cpu_pct"] = noise.stop(measured)
    elapsed = t_end - t0
    row.update(count=count, elapsed=elapsed, rate=count / elapsed,
               cpu_per_1k=(after.cpu_s - before.cpu_s) / count * 1000,
               rss_mib=peak.rss_kib / 1024, pss_mib=peak.pss_kib / 1024,
               procs=peak.max_procs, sink_got=sink.count() - base)
    if end_to_end:
        row["notes"].append(f"end to end (accepted at {count / secs:.0f} msg/s)")
    onward_after = server.onward() if onward_before else None
    if onward_after:
        opened, reused, tls = (a - b for a, b in zip(onward_after, onward_before))
        row["onward"] = {"opened": opened, "reused": reused, "tls": tls}
        row["notes"].append(f"{count} messages: {opened} onward connections opened, {reused} "
                            f"reused, {tls} TLS handshakes")
    if kind in CUTTHROUGH_KINDS:
        cut = server.log_count(">>") - ct_before
        row["cut_through"] = cut
        if hasattr(server, "node_counts"):
            row["notes"].append("per node (>> lines since start): " +
                                " / ".join(str(n) for n in server.node_counts(">>")))
        if cut < count:
            row["notes"].append(f"cut through: {cut} of {count} (>> lines)")

    # 3. latency
    lat = run_latency(ctx.latency_bin, server.port, sc, b.latency_s,
                      b.fixed_count or b.max_count)
    if "error" in lat:
        row["notes"].append(f"latency client: {lat['error']}")
    row.update(p50_ms=lat.get("p50_ms"), p99_ms=lat.get("p99_ms"),
               lat_rate=lat.get("rate"), lat_count=lat.get("messages"))
    if row["lat_rate"] and not end_to_end and row["lat_rate"] > 1.5 * row["rate"]:
        row["notes"].append(f"bench/latency sustained {row['lat_rate']:.0f} msg/s")
    log(f"  {sc.name:15} {kind:10} {row['rate']:8.0f} msg/s  p50 {row['p50_ms'] or 0:.2f} ms  "
        f"cpu {row['cpu_per_1k']:.2f} s/1k  (other cpu {row['other_cpu_pct']:.0f}%, fsync "
        f"{row['fsync_us'] / 1000:.1f} ms)  {'; '.join(row['notes'])}")
