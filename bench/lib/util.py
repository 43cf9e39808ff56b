"""Small helpers shared by the bench modules: paths, ports, waiting, logging."""
import os
import random
import socket
import sys
import time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
POSTFIX_DIR = os.environ.get("POSTFIX_DIR") or os.path.join(REPO, "build", "postfix")
BUILD = os.path.join(REPO, "build", "bench")
REAPER = os.path.join(BENCH, "lib", "reaper.py")
PYTHON = "/usr/bin/python3"


def log(msg):
    """Progress on stderr (the table goes to stdout)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def postfix_tool(name):
    return os.path.join(POSTFIX_DIR, "usr", "sbin", name)


def postfix_env():
    return dict(os.environ, LD_LIBRARY_PATH=os.path.join(POSTFIX_DIR, "usr", "lib", "postfix"))


def free_port(host="127.0.0.1"):
    """A TCP port free on host, below the ephemeral range (so no client can take it)."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def banner_ok(host, port, timeout=1.0):
    """True if host:port answers with a 220 banner."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            ok = s.recv(512).startswith(b"220")
            s.sendall(b"QUIT\r\n")
            return ok
    except OSError:
        return False


def wait_until(pred, timeout, what, interval=0.05):
    """Poll pred() until true; RuntimeError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def read_tail(path, nbytes=4096):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def listen_overflows():
    """The kernel's count of connections dropped because an accept queue was full
    (TcpExt ListenOverflows: the client believes it is connected, the server never sees it)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return 0
