"""Where tandem's time goes under the 50-session load: perf and strace, attached to its processes.

    prof = profile(ctx, kind, scenario, count) -> dict

Three passes over the same load (smtp-source, `count` messages), each attached to every
process of the running tandem:
 1. `perf stat` with software events only (this VM has no hardware counters):
    raw_syscalls:sys_enter, context-switches, task-clock -> per message;
 2. `strace -f -c -w` (slows tandem down, but counts are counts, and -w gives the wall time
    spent in each call, which is what fsync costs) -> the syscall table per message;
 3. `perf record -e cpu-clock` (flat, no call graphs: the build has no frame pointers) ->
    the top symbols and the split between the kernel, libc, libevent and tandem itself.
"""
import os
import re
import shutil
import signal
import subprocess
import time

from load import run_source, start
from util import log


def have_perf():
    if not shutil.which("perf"):
        return False
    p = subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True)
    return p.returncode == 0


def _attached(cmd, run_load, settle=0.5):
    """Start an attaching tool, run the load, stop the tool with SIGINT; (load result, stderr)."""
    tool = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(settle)
    try:
        res = run_load()
    finally:
        tool.send_signal(signal.SIGINT)
        try:
            out, err = tool.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            tool.kill()
            out, err = tool.communicate()
    return res, out + err


def _perf_stat(pids, run_load, count):
    events = "raw_syscalls:sys_enter,context-switches,task-clock"
    cmd = ["perf", "stat", "-x", ",", "-e", events, "-p", ",".join(map(str, pids))]
    _res, text = _attached(cmd, run_load)
    out = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[0].replace(".", "").isdigit():
            out[parts[2]] = float(parts[0]) / count
    return {"syscalls_per_msg": out.get("raw_syscalls:sys_enter"),
            "ctxsw_per_msg": out.get("context-switches"),
            "cpu_ms_per_msg": out.get("task-clock")}            # perf reports it in msec


def _strace(pids, run_load, count, path):
    if not shutil.which("strace"):
        return None
    cmd = ["strace", "-f", "-c", "-w", "-o", path]
    for pid in pids:
        cmd += ["-p", str(pid)]
    _attached(cmd, run_load, settle=1.0)
    rows = []
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$",
                             line)
                if m:
                    secs, calls, name = float(m.group(2)), int(m.group(4)), m.group(6)
                    rows.append((name, calls / count, secs / calls * 1e6 if calls else 0,
                                 secs / count * 1e3, m.group(5) and int(m.group(5))))
    except OSError:
        return None
    rows.sort(key=lambda r: -r[3])
    return rows


def _perf_record(pids, run_load, path):
    cmd = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-o", path,
           "-p", ",".join(map(str, pids))]
    _attached(cmd, run_load)
    report = {}
    for key, sort in (("symbols", "dso,symbol"), ("dsos", "dso")):
        p = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                            "--sort", sort, "--percent-limit", "0.7"],
                           capture_output=True, text=True)
        lines = [ln.rstrip() for ln in p.stdout.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        report[key] = lines[:30]
    return report


def profile(ctx, kind, sc, count):
    """perf stat, strace and perf record of `kind` (a tandem) under scenario `sc`."""
    workdir = os.path.join(ctx.workdir, f"profile-{kind}")
    sink, server = start(kind, workdir, ctx)
    try:
        run_source(server.port, sc, max(count // 5, 100), timeout=300)       # warm-up
        pids = sorted(server.tree.members())
        result = {"kind": kind, "scenario": sc.name, "count": count, "pids": len(pids)}

        def load(n=count):
            return run_source(server.port, sc, n, timeout=600)
        if have_perf():
            result.update(_perf_stat(pids, load, count))
            result["perf"] = _perf_record(pids, load, os.path.join(workdir, "perf.data"))
        small = max(count // 4, 200)
        result["strace_count"] = small
        result["strace"] = _strace(pids, lambda: load(small), small,
                                   os.path.join(workdir, "strace.txt"))
        log(f"  profile {kind}: {result.get('syscalls_per_msg') or 0:.1f} syscalls/msg")
        return result
    finally:
        server.stop()
        sink.stop()
