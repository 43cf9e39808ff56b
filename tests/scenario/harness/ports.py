"""Free loopback TCP/UDP ports for test servers and the daemon.

Ports are drawn at random from below the kernel's ephemeral range, so an outgoing connection
can never be given one of them between the probe and the real bind.  ``free_port`` checks that
the port is free on every address asked for (several next hops on 127.0.0.2, 127.0.0.3, ...
sharing one port, as MX hosts do) and, with ``udp=True``, for UDP too (the DNS server).
"""
import random
import socket

_LOW = 20000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host, port, kind):
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def free_port(*hosts, udp=False, attempts=200):
    """A TCP port (and UDP port when ``udp``) free on every one of ``hosts`` (default 127.0.0.1)."""
    hosts = hosts or ("127.0.0.1",)
    high = max(_ephemeral_low() - 1, _LOW + 1000)
    for _ in range(attempts):
        port = random.randrange(_LOW, high)
        ok = all(_bindable(h, port, socket.SOCK_STREAM) for h in hosts)
        if ok and udp:
            ok = all(_bindable(h, port, socket.SOCK_DGRAM) for h in hosts)
        if ok:
            return port
    raise RuntimeError(f"no free port on {hosts} after {attempts} attempts")


def port_open(host, port, timeout=0.2):
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
