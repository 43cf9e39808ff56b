"""The machine and software a run measured: CPU, memory, kernel, spool disk, versions.

    describe(ctx) -> [(label, value)]
"""
import glob
import os
import platform
import re
import subprocess

from util import POSTFIX_DIR, REPO


def _run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout or p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0


def _spool_fs(path):
    src = _run(["findmnt", "-n", "-T", path, "-o", "SOURCE,FSTYPE,OPTIONS"])
    dev = src.split()[0] if src else ""
    model = ""
    name = os.path.basename(dev)
    for candidate in (f"/sys/block/{name}", f"/sys/class/block/{name}"):
        rot = os.path.join(candidate, "queue", "rotational")
        if os.path.exists(rot):
            with open(rot) as f:
                model = "the kernel says rotational" if f.read().strip() == "1" else "non-rotational"
            break
    if len(src.split()) > 1 and src.split()[1] == "ext4":
        journal = glob.glob(f"/proc/fs/jbd2/{name}-*")
        model += ", " if model else ""
        model += "with a journal" if journal else "no journal (no jbd2 for it)"
    return f"{src} ({model})" if model else src


def _postfix_version():
    debs = glob.glob(os.path.join(REPO, "build", "postfix-deb", "postfix_*.deb"))
    if debs:
        m = re.match(r"postfix_([^_]+)_", os.path.basename(debs[0]))
        if m:
            return f"Postfix {m.group(1)} (smtp-sink, smtp-source from {POSTFIX_DIR})"
    return "Postfix (version unknown)"


def describe(ctx):
    """Label/value pairs for the results file's machine section."""
    commit = _run(["git", "-C", REPO, "describe", "--always", "--dirty"])
    exim = _run(["exim", "-bV"]).splitlines()
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", f"{_mem_gib():.1f} GiB"),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("spool filesystem", _spool_fs(ctx.workdir)),
        ("durable write cost", f"{ctx.fsync_us:.0f} µs at the start, {ctx.fsync_us_end:.0f} µs "
                               "at the end (median of several: write 4 KiB, fsync, rename, "
                               "fsync the directory; one at a time, that is at most "
                               f"{1e6 / ctx.fsync_us:.0f}/s per process waiting for them)"),
        ("load average", f"{ctx.load_start[0]:.2f} at the start, {ctx.load_end[0]:.2f} at the "
                         "end (1 min; anything else running on the machine, its disk "
                         "included, makes the numbers noisier)"),
        ("tandem", f"{_run([ctx.tandem_bin, 'version'])} (source tree at git {commit}), "
                   f"{ctx.tandem_build}, workers = auto"),
        ("libevent, OpenSSL", f"{_run(['pkg-config', '--modversion', 'libevent'])}, "
                              f"{_run(['openssl', 'version'])}"),
        ("Exim", exim[0] if exim and "version" in exim[0] else "not installed"),
        ("Postfix", _postfix_version()),
    ]
