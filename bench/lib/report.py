"""The results: one Markdown table of the loads, the targets, memory, profile, machine.

    text = render(results, machine, opts)    # the whole results file
    table(results)                           # just the main table (also printed)

`results` is a dict: rows (from load.measure), idle (list from idle.idle_memory), ctmax
(from idle.cutthrough_max or a reason string), probes, profile (list), duration_s.
"""
from scenarios import SCENARIOS, SERVER_LABELS, describe

COLUMNS = ["scenario", "server", "msg/s", "p50 ms", "p99 ms", "CPU s/1k msg", "peak RSS MiB",
           "peak PSS MiB", "× sink", "× Exim", "CPU × Exim", "noise", "notes"]
TARGET_COLUMNS = ["target", "measured", "result"]
PEER = {"tandem-ct": "exim-ct", "tandem-sf": "exim-sf"}


def _f(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def _md(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _find(rows, scenario, server):
    for r in rows:
        if r["scenario"] == scenario and r["server"] == server and r["status"] == "ok":
            return r
    return None


def _ratio(a, b, key):
    if a and b and a.get(key) and b.get(key):
        return a[key] / b[key]
    return None


def _accept_only(row):
    return bool(row) and any("accept only" in n for n in row["notes"])


def _noise(row):
    """'12% 0.4' = 12 % of the machine's CPU used by others, 0.4 ms per durable write."""
    if row.get("other_cpu_pct") is None:
        return ""
    return f"{row['other_cpu_pct']:.0f}% {row['fsync_us'] / 1000:.1f}"


def _vs_plain(rows, r):
    """For the edge kinds: msg/s and CPU beside plain cutthrough in the same scenario."""
    if not r["server"].startswith("tandem-ct-") or r["status"] != "ok":
        return []
    plain = _find(rows, r["scenario"], "tandem-ct")
    rate, cpu = _ratio(r, plain, "rate"), _ratio(r, plain, "cpu_per_1k")
    if rate is None:
        return []
    return [f"{rate:.2f}× plain cutthrough msg/s, {_f(cpu)}× its CPU"]


def table(rows):
    """The main table: one line per scenario and server."""
    lines = []
    for r in rows:
        ok = r["status"] == "ok"
        sink = _find(rows, r["scenario"], "sink")
        # accepting without delivering is not comparable with Exim's delivering
        peer = None if _accept_only(r) else _find(rows, r["scenario"], PEER.get(r["server"], ""))
        me = r if ok else None
        lines.append([
            r["scenario"], SERVER_LABELS.get(r["server"], r["server"]),
            _f(me and me.get("rate"), "{:.0f}"), _f(me and me.get("p50_ms")),
            _f(me and me.get("p99_ms")), _f(me and me.get("cpu_per_1k")),
            _f(me and me.get("rss_mib"), "{:.1f}"), _f(me and me.get("pss_mib"), "{:.1f}"),
            "" if r["server"] == "sink" else _f(_ratio(me, sink, "rate")),
            _f(_ratio(me, peer, "rate")) if r["server"] in PEER else "",
            _f(_ratio(me, peer, "cpu_per_1k")) if r["server"] in PEER else "",
            _noise(r),
            ("" if ok else f"{r['status']}: ") + "; ".join(_vs_plain(rows, r) + r["notes"]),
        ])
    return _md(COLUMNS, lines)


def summary(res):
    """What bench/run prints: the main table and the targets."""
    return table(res["rows"]) + "\n\n" + _md(TARGET_COLUMNS, targets(res))


def _verdict(value, ok):
    if value is None:
        return "n.a."
    return "PASS" if ok else "FAIL"


def targets(res):
    """The issue's targets: (target, measured, PASS/FAIL/n.a.) rows."""
    rows, out = res["rows"], []
    ct, sink = _find(rows, "4k-s50", "tandem-ct"), _find(rows, "4k-s50", "sink")
    ex_ct = _find(rows, "4k-s50", "exim-ct")
    r = _ratio(ct, ex_ct, "rate")
    out.append(["tandem cutthrough ≥ 3× Exim cutthrough (4k-s50, msg/s)",
                f"{r:.2f}× ({ct['rate']:.0f} vs {ex_ct['rate']:.0f})" if r else
                _why(ct, ex_ct, "exim-ct"), _verdict(r, r and r >= 3)])
    r = _ratio(ct, sink, "rate")
    out.append(["tandem cutthrough ≥ 0.5× the sink's own rate (4k-s50)",
                f"{r:.2f}× ({ct['rate']:.0f} vs {sink['rate']:.0f})" if r else
                _why(ct, sink, "sink"), _verdict(r, r and r >= 0.5)])
    ct1, sink1 = _find(rows, "4k-s1", "tandem-ct"), _find(rows, "4k-s1", "sink")
    added = None
    if ct1 and sink1 and ct1.get("p50_ms") is not None and sink1.get("p50_ms") is not None:
        added = ct1["p50_ms"] - sink1["p50_ms"]
    out.append(["median added latency over the direct sink ≤ 1 ms (4k-s1, cutthrough)",
                f"{added:+.3f} ms ({ct1['p50_ms']:.3f} vs {sink1['p50_ms']:.3f})"
                if added is not None else _why(ct1, sink1, "sink"),
                _verdict(added, added is not None and added <= 1.0)])
    mine = [i for i in res.get("idle", []) if i["server"] == "tandem"]
    plain = [i for i in mine if not i.get("tls") and i.get("rss_per_session_kib")]
    worst = max((i["rss_per_session_kib"] for i in plain), default=None)
    out.append(["≤ 64 KiB resident per idle plaintext session",
                f"{worst:.1f} KiB (worst of {', '.join(str(i['sessions']) for i in plain)})"
                if worst is not None else "not measured", _verdict(worst, worst and worst <= 64)])
    big = [i for i in mine if not i.get("tls") and i["sessions"] >= 10000]
    held = big[0] if big else None
    out.append(["10,000 idle sessions held",
                f"{held['held']} held, {held['failed']} failed, {held['lost']} lost"
                if held else "not measured",
                _verdict(held, held and held["held"] >= 10000 and not held["lost"])])
    sf, ex_sf = _find(rows, "4k-s50", "tandem-sf"), _find(rows, "4k-s50", "exim-sf")
    r = None if _accept_only(sf) else _ratio(sf, ex_sf, "rate")
    if r:
        measured = f"{r:.2f}× ({sf['rate']:.0f} vs {ex_sf['rate']:.0f})"
    elif _accept_only(sf):
        measured = f"tandem accepts only (no delivery yet): {sf['rate']:.0f} msg/s accepted"
        if ex_sf:
            measured += f", Exim {ex_sf['rate']:.0f} msg/s delivered"
    else:
        measured = _why(sf, ex_sf, "exim-sf")
    out.append(["store-and-forward ≥ 2× Exim's queue mode (4k-s50, end to end)", measured,
                _verdict(r, r and r >= 2)])
    return out


def _why(mine, other, other_kind):
    if not mine:
        return "tandem: n/a"
    if not other:
        return f"{SERVER_LABELS[other_kind]} not measured" + (
            " (run with --vs-exim)" if other_kind.startswith("exim") else "")
    return "n/a"


def idle_table(idle):
    rows = []
    for i in idle:
        rows.append([i["server"], i["sessions"], "STARTTLS" if i.get("tls") else "plain",
                     i.get("held", "n/a"), _f(i.get("rss_per_session_kib"), "{:.1f}"),
                     _f(i.get("pss_per_session_kib"), "{:.1f}"),
                     _f(i.get("rss_during_mib"), "{:.1f}"), i.get("error", i.get("note", ""))])
    return _md(["server", "sessions", "mode", "held", "RSS KiB/session", "PSS KiB/session",
                "server RSS MiB (held)", "notes"], rows)


def _profile_md(p):
    out = [f"### {SERVER_LABELS.get(p['kind'], p['kind'])}, scenario {p['scenario']}, "
           f"{p['count']} messages, {p['pids']} processes", ""]
    if p.get("syscalls_per_msg") is not None:
        out.append(f"perf stat: **{p['syscalls_per_msg']:.1f} syscalls/message**, "
                   f"{p['ctxsw_per_msg']:.2f} context switches/message, "
                   f"{p['cpu_ms_per_msg']:.3f} ms CPU/message (task-clock)")
        out.append("")
    if p.get("strace"):
        out.append(f"strace -f -c -w ({p['strace_count']} messages; wall time inside each "
                   "call, inflated by strace itself):")
        out.append("")
        out.append(_md(["syscall", "calls/msg", "µs/call", "ms/msg", "errors"],
                       [[n, f"{c:.2f}", f"{u:.1f}", f"{m:.3f}", e or ""]
                        for n, c, u, m, e in p["strace"][:16]]))
        out.append("")
    for key, title in (("dsos", "perf record, by object"), ("symbols", "perf record, top symbols")):
        lines = p.get("perf", {}).get(key)
        if lines:
            out += [f"{title}:", "", "```", *lines, "```", ""]
    return "\n".join(out)


METHOD = """\
- Everything runs on loopback on this machine: the load generator, the server and the sink
  share its cores, so msg/s is what the whole setup sustains; the sink row is the ceiling.
- Throughput: Postfix smtp-source (no pipelining), `-d` (a session's messages share one
  connection) unless the scenario says "newconn"; N sized from a warm-up to last about
  {run_s:g} s; msg/s = N / wall time.  Store-and-forward rows stop the clock when the sink has
  all N messages (end to end) — or at the last 250 when tandem cannot deliver yet ("accept
  only").
- Latency: bench/latency (C, epoll, one thread) with the same sessions, size and recipients
  for {latency_s:g} s; each transaction timed from MAIL FROM to the reply to the final dot.
- CPU s/1k msg: the server's processes only (not the sink, not the client), all of them,
  including children that came and went: each server runs under bench/lib/reaper.py, a child
  subreaper whose cutime/cstime (RUSAGE_CHILDREN) collects every reaped descendant, plus the
  live descendants' utime+stime+cutime+cstime, read before and after the timed run at quiet
  moments.  Exim forks per connection and per delivery; this counts all of it.
- Peak memory: the sum over the server's processes of RSS (every 0.2 s) and of PSS (every
  1 s).  RSS counts shared pages once per process (Exim's many processes look bigger than they
  are); PSS divides them between the processes sharing them.
- Idle sessions: bench/latency -H holds N sessions after EHLO (or after STARTTLS and the
  second EHLO), from 127.0.0.10 onward (1,000 per address), at most 100 being set up at once;
  memory per session = growth of the server's summed RSS (PSS) / sessions held.
- Noise column, "N% F": during the timed run N % of the machine's CPU (steal included) went
  to processes other than the server, the sink and the load generator; F ms was the cost of
  one durable 4 KiB write (write, fsync, rename, fsync dir) just before the row.  Rows with a
  large N or F were measured on a busy machine: store-and-forward moves with F, everything
  with N.
- Exim 4 holds each QUIT reply 200 ms and sleeps ~5 ms between messages on one connection;
  its msg/s at low parallelism shows that, its CPU per message does not.
"""


SCANNER_COLUMNS = ["scenario", "client threads", "message bytes", "msg/s", "p50 ms", "p99 ms",
                   "rspamd time_real ms (median)", "client CPU %", "errors"]


def scanner_table(rows):
    """rspamd alone, for comparison with the `+ spam` rows (bench/lib/edge.py)."""
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["scenario"], "", "", "", "", "", "", "", r["error"]])
            continue
        lines.append([r["scenario"], r["sessions"], r["size"], _f(r["rate"], "{:.0f}"),
                      _f(r["p50_ms"]), _f(r["p99_ms"]), _f(r["time_real_ms"]),
                      _f(r["client_cpu_pct"], "{:.0f}"), r["errors"]])
    return _md(SCANNER_COLUMNS, lines)


def render(res, machine, opts):
    out = [f"# tandem bench — {res['date']}", "",
           f"`bench/run {' '.join(opts.argv)}` — {res['duration_s'] / 60:.1f} min", ""]
    out += ["## Machine", ""] + [f"- **{k}**: {v}" for k, v in machine] + [""]
    out += ["## Capabilities found", ""]
    out += [f"- **{k}**: {'yes' if ok else 'no'} — {why}" for k, (ok, why) in res["probes"].items()]
    out += ["", "## Throughput, latency, CPU and memory", "", table(res["rows"]), ""]
    out += ["Scenarios:", ""]
    names = {r["scenario"] for r in res["rows"]}
    out += [f"- `{s.name}`: {describe(s)}" for s in SCENARIOS if s.name in names] + [""]
    if res.get("scanner"):
        out += ["## The scanner alone (rspamd, `--edge`)", "",
                "The same message size POSTed straight to rspamd's /checkv2 (bench/lib/edge.py): "
                "its own throughput and time, to set beside the `+ spam` rows.", "",
                scanner_table(res["scanner"]), ""]
    out += ["## Targets", "", _md(TARGET_COLUMNS, targets(res)), ""]
    if res.get("idle"):
        out += ["## Idle sessions", "", idle_table(res["idle"]), ""]
    ct = res.get("ctmax")
    out += ["## Concurrent cutthrough sessions", ""]
    if isinstance(ct, dict):
        out.append(f"Largest number held without an error: **{ct['max']}** "
                   f"(ladder {', '.join(map(str, ct['ladder']))})" +
                   (f"; first failure {ct['failure']}" if ct.get("failure") else ""))
    else:
        out.append(f"n/a — {ct or 'not run'}")
    out.append("")
    if res.get("profile"):
        out += ["## Profile", ""] + [_profile_md(p) for p in res["profile"]]
    out += ["## Method", "", METHOD.format(run_s=opts.budget.run_s,
                                           latency_s=opts.budget.latency_s)]
    return "\n".join(out)
