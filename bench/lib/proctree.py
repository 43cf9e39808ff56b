"""The processes of one server, found from /proc: CPU time, resident memory, a peak sampler.

Every server runs under reaper.py (see its docstring), so its processes are exactly the
descendants of the reaper, however they fork, daemonise or change process group.

    tree = ProcTree(reaper_pid)
    snap = tree.snapshot()            # Snapshot(cpu_s, rss_kib, pss_kib, nproc, pids)
    with PeakSampler(tree) as peak:   # samples sum of RSS every 0.2 s, sum of PSS every 1 s
        ...
    peak.rss_kib, peak.pss_kib, peak.max_procs

CPU: reaper's cutime+cstime (everything already reaped) + each live descendant's
utime+stime+cutime+cstime.  Read at quiet moments (before the load starts, after the server
has settled) this is exact, to the 10 ms clock tick of each process.

Memory: RSS (statm resident pages) summed over the processes counts shared pages (libraries,
a pre-fork parent's heap) once per process; PSS (smaps_rollup) shares them out and is the
honest total for servers with many processes (Exim forks one per connection).  Both are
reported; PSS is sampled less often because smaps_rollup walks the page tables.
"""
import os
import threading
from collections import namedtuple

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

Snapshot = namedtuple("Snapshot", "cpu_s rss_kib pss_kib nproc pids")


def _stat(pid):
    """(ppid, own ticks, reaped children's ticks, rss pages) of one process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()   # fields from 3 (state) on
    # state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14 ... rss=21
    return (int(fields[1]), int(fields[11]) + int(fields[12]),
            int(fields[13]) + int(fields[14]), int(fields[21]))


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcTree:
    """The live descendants of one (reaper) process."""

    def __init__(self, root_pid):
        self.root = root_pid

    def _scan(self):
        """{pid: stat tuple} for every process on the machine."""
        out = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _stat(int(name))
                if st:
                    out[int(name)] = st
        return out

    def members(self):
        """{pid: stat tuple} of the root's descendants (the root itself excluded)."""
        allp = self._scan()
        children = {}
        for pid, st in allp.items():
            children.setdefault(st[0], []).append(pid)
        out, todo = {}, list(children.get(self.root, []))
        while todo:
            pid = todo.pop()
            if pid in allp and pid not in out:
                out[pid] = allp[pid]
                todo.extend(children.get(pid, []))
        return out

    def snapshot(self, pss=True):
        root = _stat(self.root)
        reaped = root[2] if root else 0
        procs = self.members()
        ticks = reaped + sum(st[1] + st[2] for st in procs.values())
        rss = sum(st[3] for st in procs.values()) * PAGE_KIB
        pss_total = sum(_pss_kib(p) for p in procs) if pss else 0
        return Snapshot(ticks / TICK, rss, pss_total, len(procs), sorted(procs))

    def settle(self, timeout=10.0, quiet=0.5):
        """Wait until the set of processes has not changed for `quiet` seconds."""
        import time
        end = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < end:
            pids = sorted(self.members())
            if pids != last:
                last, since = pids, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
            time.sleep(0.1)
        return False


class PeakSampler:
    """Background thread: the highest sum of RSS (every 0.2 s) and of PSS (every 1 s)."""

    def __init__(self, tree, interval=0.2, pss_every=5):
        self.tree, self.interval, self.pss_every = tree, interval, pss_every
        self.rss_kib = self.pss_kib = self.max_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        n = 0
        while True:
            procs = self.tree.members()
            self.rss_kib = max(self.rss_kib, sum(st[3] for st in procs.values()) * PAGE_KIB)
            self.max_procs = max(self.max_procs, len(procs))
            if n % self.pss_every == 0:
                self.pss_kib = max(self.pss_kib, sum(_pss_kib(p) for p in procs))
            n += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
