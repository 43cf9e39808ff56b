"""A real HAProxy (Debian's haproxy) in TCP mode in front of tandem nodes, for tests and bench.

    hp = HAProxy(tmp_dir, [("n1", 127.0.0.1, port1), ("n2", "127.0.0.1", port2)],
                 proxy="v1" | "v2", balance="roundrobin" | "source", source="127.0.0.3")
    hp.port                   # where clients connect
    hp.log()                  # what HAProxy said (server state changes among it)
    hp.stop()

HAProxy connects to the nodes from ``source`` (the address to put in hosts_proxy) and sends
each node a PROXY header (send-proxy / send-proxy-v2) naming the client.  No health checks:
both nodes are up from the start.
"""
import os
import shutil
import subprocess
import time

from harness import free_port
from harness.ports import port_open

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

CONFIG = """global
    maxconn {maxconn}
    log stderr format short local0 notice
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout check 5s
frontend smtp
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    default_backend nodes
backend nodes
    balance {balance}
    source {source}{check_option}
{servers}
"""


class HAProxy:
    def __init__(self, directory, nodes, proxy="v1", balance="roundrobin", source="127.0.0.3",
                 maxconn=4000, checks=False):
        self.port = free_port("127.0.0.1")
        send = "send-proxy" if proxy == "v1" else "send-proxy-v2"
        if checks:                     # SMTP health checks, with a PROXY header of their own
            send += " check check-send-proxy inter 200ms"
        servers = "\n".join(f"    server {name} {host}:{port} {send}" for name, host, port in nodes)
        os.makedirs(directory, exist_ok=True)
        self.config_path = os.path.join(directory, "haproxy.cfg")
        with open(self.config_path, "w") as f:
            f.write(CONFIG.format(check_option="\n    option smtpchk EHLO haproxy.test" if checks else "",
                                  maxconn=maxconn, port=self.port, balance=balance, source=source, servers=servers))
        self.log_path = os.path.join(directory, "haproxy.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-f", self.config_path, "-db"],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("haproxy did not start:\n" + open(self.log_path).read())
            time.sleep(0.05)

    def log(self):
        self.log_file.flush()
        return open(self.log_path).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
