"""How disturbed a measurement was by the rest of the machine.

    n = Noise(); n.start(); ...; n.stop(measured_cpu_s) -> percent of the machine's CPU used
                                                         by anything but the measurement
    fsync_cost(directory, n) -> median µs of one durable 4 KiB write

Other CPU: busy time of all CPUs from /proc/stat (user, nice, system, irq, softirq, steal)
over the window, minus the CPU of what is being measured (server and sink, passed in), of
this process and of its waited-for children (smtp-source).  Steal counts as other: on a VM it
is another guest running on our core.

Durable write: write 4 KiB, fsync, rename, fsync the directory - what a spool pays per
message when it commits one message at a time.  Other writers on the same disk change it by
an order of magnitude, so it is measured before every row, not once.
"""
import os
import resource
import statistics
import time

TICK = os.sysconf("SC_CLK_TCK")


def _busy_s():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def _own_s():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Noise:
    def start(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), _busy_s(), _own_s()

    def stop(self, measured_cpu_s):
        window = (time.monotonic() - self.t0) * (os.cpu_count() or 1)
        other = _busy_s() - self.busy0 - (_own_s() - self.own0) - measured_cpu_s
        return max(0.0, 100.0 * other / window) if window > 0 else 0.0


def fsync_cost(directory, n=200):
    """Median µs of one durable 4 KiB write (see the module docstring)."""
    work = os.path.join(directory, "fsync-probe")
    os.makedirs(work, exist_ok=True)
    dfd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    times, data = [], b"x" * 4096
    try:
        for i in range(n):
            t0 = time.perf_counter()
            tmp, final = os.path.join(work, f"t{i}"), os.path.join(work, f"m{i}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, final)
            os.fsync(dfd)
            times.append((time.perf_counter() - t0) * 1e6)
    finally:
        os.close(dfd)
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)
    return statistics.median(times)
