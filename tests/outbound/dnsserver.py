"""A tiny authoritative DNS server on 127.0.0.1 (UDP and TCP) with dnslib, for MX tests.

    dns = DnsServer({"example.test": {"MX": [(10, "mx1.example.test")]},
                     "mx1.example.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]}},
                    servfail={"broken.test"}, timeout={"slow.test"})
    dns.addr  -> "127.0.0.1:PORT";  dns.queries -> [(name, type)];  dns.stop()

Unknown names are NXDOMAIN; known names without the asked type are NODATA (with an SOA, TTL 0).
"""
import threading

from dnslib import QTYPE, RCODE, RR, SOA, A, AAAA, MX, DNSLabel, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Resolver(BaseResolver):
    def __init__(self, owner):
        self.owner = owner

    def resolve(self, request, handler):
        o = self.owner
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        with o.lock:
            o.queries.append((name, qtype))
        reply = request.reply()
        if name in o.timeout:
            raise DNSError("no answer (scripted timeout)")  # dnslib then sends nothing
        if name in o.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        recs = o.zone.get(name)
        if recs is None:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(o.soa())
            return reply
        for v in recs.get(qtype, []):
            if qtype == "MX":
                pref, host = v
                reply.add_answer(RR(q.qname, QTYPE.MX, ttl=0, rdata=MX(host if host.endswith(".") else host + ".", pref)))
            elif qtype == "A":
                reply.add_answer(RR(q.qname, QTYPE.A, ttl=0, rdata=A(v)))
            elif qtype == "AAAA":
                reply.add_answer(RR(q.qname, QTYPE.AAAA, ttl=0, rdata=AAAA(v)))
        if not reply.rr:
            reply.add_auth(o.soa())
        return reply


class _Logger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class DnsServer:
    def __init__(self, zone, servfail=(), timeout=()):
        self.zone = {k.lower(): v for k, v in zone.items()}
        self.servfail = set(servfail)
        self.timeout = set(timeout)
        self.queries = []
        self.lock = threading.Lock()
        resolver = _Resolver(self)
        for attempt in range(20):  # a UDP port whose TCP twin is free too
            self.udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=_Logger())
            self.port = self.udp.server.server_address[1]
            try:
                self.tcp = DNSServer(resolver, address="127.0.0.1", port=self.port, tcp=True,
                                     logger=_Logger())
                break
            except OSError:
                self.udp.server.server_close()
        else:
            raise OSError("no free port pair for the DNS server")
        self.udp.start_thread()
        self.tcp.start_thread()
        self.addr = f"127.0.0.1:{self.port}"

    def soa(self):
        return RR("test.", QTYPE.SOA, ttl=0,
                  rdata=SOA("ns.test.", "hostmaster.test.", (1, 0, 0, 0, 0)))

    def stop(self):
        self.udp.stop()
        self.tcp.stop()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()
