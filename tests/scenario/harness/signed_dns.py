"""SignedDns: real DNSSEC-signed zones, served by NSD on 127.0.0.1, for DANE tests.

The harness's DnsServer (dnslib) cannot sign, so DNSSEC tests use Debian's NSD as the
authoritative server and ldns-keygen/ldns-signzone (ldnsutils) to sign.  Every instance makes
fresh keys, signs its zones and writes its own trust anchor file (the DS records of the signed
zones), so nothing is shared between tests:

    z = SignedDns(tmp_path, {
        "dane.test":         {"MX": (10, "mx1.dane.test")},
        "mx1.dane.test":     {"A": "127.0.0.2"},
        "_25._tcp.mx1.dane.test": {"TLSA": "3 1 1 " + digest},
        "plain.test":        {"MX": (10, "mx1.plain.test")},          # unsigned zone
        "mx1.plain.test":    {"A": "127.0.0.2"},
    }, signed=["dane.test"], unsigned=["plain.test"],
       tamper={("_25._tcp.mx1.dane.test", "TLSA"): "3 1 1 " + "00" * 32})
    z.config_line      # "dns_servers = 127.0.0.1:PORT\\ndnssec_trust_anchor = FILE"
    z.port, z.trust_anchor, z.stop()

Each name belongs to the longest zone it is in.  ``tamper`` replaces the data of a record after
signing, keeping the old signature: a validating resolver finds it bogus.  Records use the
dict form of harness/dns.py (values, lists, MX tuples); TLSA and TXT data are written as given.
"""
import os
import signal
import socket
import subprocess
import time

from dnslib import DNSRecord

from .dns import _norm, dict_to_zone
from .ports import free_port

TTL = 5


def _zone_of(name, zones):
    """The longest zone in ``zones`` that ``name`` is in, or None."""
    best = None
    for z in zones:
        if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
            best = z
    return best


def _run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


class SignedDns:
    """See the module docstring."""

    def __init__(self, directory, records, signed=(), unsigned=(), tamper=None):
        self.dir = os.path.join(str(directory), "signed-dns")
        os.makedirs(self.dir, exist_ok=True)
        self.signed, self.unsigned = [_norm(z) for z in signed], [_norm(z) for z in unsigned]
        self.trust_anchor = os.path.join(self.dir, "trust-anchor.ds")
        self.proc = None
        zones = self.signed + self.unsigned
        by_zone = {z: {} for z in zones}
        for name, rrs in records.items():
            zone = _zone_of(_norm(name), zones)
            if zone is None:
                raise ValueError(f"{name} is in none of the zones {zones}")
            by_zone[zone][name] = rrs
        anchors = []
        for zone in zones:
            path = self._write_zone(zone, by_zone[zone])
            if zone in self.signed:
                anchors.append(self._sign(zone, path, tamper or {}))
        with open(self.trust_anchor, "w") as f:
            f.write("".join(anchors))
        self._start(zones)

    # -- zones --------------------------------------------------------------------------
    def _write_zone(self, zone, records):
        path = os.path.join(self.dir, f"{zone}.zone")
        head = (f"$TTL {TTL}\n{zone}. {TTL} IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 {TTL}\n"
                f"{zone}. {TTL} IN NS ns.{zone}.\nns.{zone}. {TTL} IN A 127.0.0.1\n")
        with open(path, "w") as f:
            f.write(head + dict_to_zone(records, TTL) + "\n")
        return path

    def _sign(self, zone, path, tamper):
        """Sign with a fresh ECDSA P-256 key; returns the DS record for the trust anchor."""
        key = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone], self.dir).strip()
        _run(["ldns-signzone", "-o", zone, path, key], self.dir)
        signed = path + ".signed"
        if tamper:
            self._tamper(signed, tamper)
        os.replace(signed, path)
        with open(os.path.join(self.dir, key + ".ds")) as f:
            return f.read()

    @staticmethod
    def _tamper(path, tamper):
        """Replace the data of the chosen records (their signatures stay as they were)."""
        want = {(_norm(n), t.upper()): v for (n, t), v in tamper.items()}
        out = []
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and (_norm(parts[0]), parts[3].upper()) in want:
                    line = "\t".join(parts[:4] + [want[(_norm(parts[0]), parts[3].upper())]]) + "\n"
                out.append(line)
        with open(path, "w") as f:
            f.writelines(out)

    # -- the server ---------------------------------------------------------------------
    def _config(self, zones):
        lines = ["server:", f"    ip-address: 127.0.0.1@{self.port}", f"    port: {self.port}",
                 '    username: ""', '    chroot: ""', f'    zonesdir: "{self.dir}"',
                 '    database: ""', f'    zonelistfile: "{self.dir}/zone.list"',
                 f'    pidfile: "{self.dir}/nsd.pid"', f'    xfrdfile: "{self.dir}/xfrd.state"',
                 f'    xfrdir: "{self.dir}"', f'    logfile: "{self.dir}/nsd.log"',
                 "    server-count: 1", "    verbosity: 1", "remote-control:",
                 "    control-enable: no"]
        for zone in zones:
            lines += ["zone:", f"    name: {zone}", f"    zonefile: {zone}.zone"]
        path = os.path.join(self.dir, "nsd.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _answers(self, zone):
        try:
            q = DNSRecord.question(zone, "SOA").pack()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                s.sendto(q, ("127.0.0.1", self.port))
                return DNSRecord.parse(s.recv(4096)).header.rcode == 0
        except OSError:
            return False

    def _start(self, zones):
        for _ in range(10):
            self.port = free_port(udp=True)
            conf = self._config(zones)
            self.proc = subprocess.Popen(["nsd", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(self._answers(z) for z in zones):
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"nsd did not start; see {self.dir}/nsd.log")

    @property
    def config_line(self):
        return f"dns_servers = 127.0.0.1:{self.port}\ndnssec_trust_anchor = {self.trust_anchor}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
