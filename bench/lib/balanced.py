"""HAProxy (Debian's haproxy, TCP mode, PROXY protocol v2) in front of tandem nodes, measured
as one server: the cost of the proxy hop, and one node against two on the same machine.

    b = Balanced(workdir, tandem_bin, sink_port, nodes=1 | 2)
    b.port            HAProxy's frontend (what the load connects to)
    b.tree            CPU and memory of HAProxy and every node together (MultiTree)
    b.log_count(">>") summed over the nodes;  b.node_counts(">>") per node;  b.stop()

Each node is bench's usual cutthrough tandem (servers.Tandem, workers = auto) with
`hosts_proxy = 127.0.0.3`, the address HAProxy connects from (so that bench's readiness probe
from 127.0.0.1 still gets a banner); HAProxy balances round robin and sends each node a PROXY
v2 header.
"""
import os
import shutil
import subprocess

from proctree import Snapshot
from servers import Server, Tandem
from util import free_port, wait_until, banner_ok

HAPROXY_CONFIG = """global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend smtp
    bind 127.0.0.1:{port}
    maxconn 9000
    backlog 4096
    default_backend nodes
backend nodes
    balance roundrobin
    source 127.0.0.3
{servers}
"""


def have_haproxy():
    return shutil.which("haproxy") is not None or os.path.exists("/usr/sbin/haproxy")


class MultiTree:
    """Several ProcTrees read as one: CPU, memory and processes added up."""

    def __init__(self, trees):
        self.trees = trees

    def snapshot(self, pss=True):
        snaps = [t.snapshot(pss) for t in self.trees]
        return Snapshot(sum(s.cpu_s for s in snaps), sum(s.rss_kib for s in snaps),
                        sum(s.pss_kib for s in snaps), sum(s.nproc for s in snaps),
                        sorted(p for s in snaps for p in s.pids))

    def members(self):
        out = {}
        for t in self.trees:
            out.update(t.members())
        return out

    def settle(self, timeout=10.0, quiet=0.5):
        return all(t.settle(timeout, quiet) for t in self.trees)


class HAProxy(Server):
    name = "haproxy"

    def __init__(self, workdir, node_ports):
        self.port = free_port()
        os.makedirs(workdir, exist_ok=True)
        servers = "\n".join(f"    server n{i} 127.0.0.1:{p} send-proxy-v2"
                            for i, p in enumerate(node_ports))
        cfg = os.path.join(workdir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        check = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c: {check.stdout}{check.stderr}")
        self._launch(["haproxy", "-f", cfg, "-db"], os.path.join(workdir, "haproxy.out"))


class Balanced:
    """HAProxy plus `nodes` tandem nodes (cutthrough to the sink)."""

    def __init__(self, workdir, binary, sink_port, nodes=1):
        self.name = f"haproxy + {nodes} tandem node{'s' if nodes > 1 else ''}"
        self.nodes, self.haproxy = [], None
        try:
            for i in range(nodes):
                self.nodes.append(Tandem(os.path.join(workdir, f"node{i}"), binary, sink_port,
                                         cutthrough=True, extra="hosts_proxy = 127.0.0.3\n"))
            self.haproxy = HAProxy(os.path.join(workdir, "haproxy"), [n.port for n in self.nodes])
        except Exception:
            self.stop()
            raise
        self.port = self.haproxy.port
        self.tree = MultiTree([self.haproxy.tree] + [n.tree for n in self.nodes])
        wait_until(lambda: banner_ok("127.0.0.1", self.port), 10, "a banner through haproxy")

    def log_count(self, marker):
        return sum(self.node_counts(marker))

    def node_counts(self, marker):
        return [n.log_count(marker) for n in self.nodes]

    def paniclog(self):
        return "".join(n.paniclog() for n in self.nodes)

    def stop(self, timeout=20):
        if self.haproxy:
            self.haproxy.stop(timeout)
        for n in self.nodes:
            n.stop(timeout)
