"""DnsServer: an authoritative-style DNS server on 127.0.0.1 for MX and TLS tests (dnslib).

It answers on one port over UDP and TCP, from a zone given as a dict or as zone-file text, and
can be told to fail for chosen names.  Point the daemon at it with
``dns_servers = 127.0.0.1:<dns.port>`` (``dns.config_line`` is exactly that).

    dns = DnsServer({
        "example.test":     {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
        "mx1.example.test": {"A": "127.0.0.2"},
        "mx2.example.test": {"A": ["127.0.0.3"], "AAAA": "::1"},
        "nullmx.test":      {"MX": "0 ."},                       # RFC 7505 null MX
        "txt.test":         {"TXT": "v=spf1 -all"},
        "alias.test":       {"CNAME": "mx1.example.test"},
    }, servfail=["broken.test"], timeout=["slow.test"], nxdomain=["gone.example.test"])
    dns = DnsServer('''
        example.test.  300 IN MX 10 mx1.example.test.
        mx1.example.test. 300 IN A 127.0.0.2
    ''')
    dns.port; dns.queries      # [(qname without the final dot, qtype e.g. "MX", "udp"|"tcp")]
    dns.add("new.test", "A", "127.0.0.4"); dns.servfail.add("example.test"); dns.stop()

Names are case-insensitive; a trailing dot is optional everywhere.  Failure sets take a name
(all types) or a (name, type) pair.  A name with no records is NXDOMAIN; a name with records
but none of the asked type is an empty NOERROR answer (NODATA); both carry a synthetic SOA in
the authority section so that resolvers cache them negatively for the zone's ``ttl``.  ``ttl``
defaults to 0, so a resolver never caches across a change made with ``add``/``remove``.

Seen with libunbound (checked against this server): unbound answers names under its default
local zones (test., invalid., localhost., onion., home.arpa.) NXDOMAIN itself, without asking
the forwarder, unless the resolver calls ``ub_ctx_zone_add(ctx, "test.", "nodefault")`` after
``ub_ctx_set_fwd(ctx, "127.0.0.1@PORT")``; names under example.net, example.com or .example
always reach this server.  Unbound retries a SERVFAIL 5 times (5 queries here), and gives up on
a ``timeout`` name after about 17 s with SERVFAIL: keep DNS-timeout tests few.
"""
import threading

from dnslib import QTYPE, RCODE, RR, SOA, DNSLabel, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from .ports import free_port


def _norm(name):
    return str(name).rstrip(".").lower()


def _values(value):
    return value if isinstance(value, (list, tuple)) and not _is_mx_tuple(value) else [value]


def _is_mx_tuple(value):
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)


def _rdata_text(rtype, value):
    """Zone-file rdata for one value of the dict form."""
    if rtype == "MX" and _is_mx_tuple(value):
        value = f"{value[0]} {value[1]}"
    text = str(value)
    if rtype == "TXT" and not text.startswith('"'):
        text = '"' + text.replace('"', '\\"') + '"'
    if rtype in ("MX", "CNAME", "NS", "PTR") and not text.endswith("."):
        text += "."
    return text


def dict_to_zone(zone, ttl=0):
    """Zone-file text for the dict form of a zone."""
    lines = []
    for name, records in zone.items():
        for rtype, value in records.items():
            for v in _values(value):
                lines.append(f"{_norm(name)}. {ttl} IN {rtype.upper()} {_rdata_text(rtype.upper(), v)}")
    return "\n".join(lines)


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)


class _Handler(DNSHandler):
    """dnslib's handler, except that a resolver answer of None means: send nothing."""

    def get_reply(self, data):
        reply = self.server.resolver.resolve(DNSRecord.parse(data), self)
        if reply is None:
            if self.protocol == "tcp":          # hold the connection open, say nothing
                self.server.resolver.owner.stopped.wait(30)
            raise DNSError("dropped on purpose (scripted timeout)")
        return reply.pack()


class _Resolver(BaseResolver):
    def __init__(self, owner):
        self.owner = owner

    def resolve(self, request, handler):
        return self.owner._answer(request, handler.protocol)


class DnsServer:
    """See the module docstring."""

    def __init__(self, zone=None, servfail=(), timeout=(), nxdomain=(), ttl=0, port=None):
        self.ttl = ttl
        self.records = {}                 # name -> list of RR
        self.servfail, self.timeout, self.nxdomain = set(), set(), set()
        for target, names in ((self.servfail, servfail), (self.timeout, timeout),
                              (self.nxdomain, nxdomain)):
            target.update(self._key(n) for n in names)
        self.queries = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        if zone:
            self.load(zone)
        self._start(port)

    # -- zone ---------------------------------------------------------------------------
    @staticmethod
    def _key(item):
        if isinstance(item, tuple):
            return (_norm(item[0]), item[1].upper())
        return _norm(item)

    def load(self, zone):
        """Add records from a dict or from zone-file text."""
        text = dict_to_zone(zone, self.ttl) if isinstance(zone, dict) else zone
        with self._lock:
            for rr in RR.fromZone(text):
                self.records.setdefault(_norm(rr.rname), []).append(rr)

    def add(self, name, rtype, value):
        """Add one record set, e.g. add("x.test", "MX", [(10, "mx.x.test")])."""
        self.load({name: {rtype: value}})

    def remove(self, name, rtype=None):
        """Remove all records of ``name`` (only those of ``rtype`` if given)."""
        with self._lock:
            keep = [rr for rr in self.records.get(_norm(name), [])
                    if rtype is not None and QTYPE[rr.rtype] != rtype.upper()]
            if keep:
                self.records[_norm(name)] = keep
            else:
                self.records.pop(_norm(name), None)

    # -- answering ----------------------------------------------------------------------
    def _failure(self, name, qtype):
        for kind, names in (("timeout", self.timeout), ("servfail", self.servfail),
                            ("nxdomain", self.nxdomain)):
            if name in names or (name, qtype) in names:
                return kind
        return None

    def _answer(self, request, protocol):
        qname, qtype = _norm(request.q.qname), QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname, qtype, protocol))
        failure = self._failure(qname, qtype)
        if failure == "timeout":
            return None
        reply = request.reply()
        if failure == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if failure == "nxdomain":
            return self._negative(reply, qname, RCODE.NXDOMAIN)
        return self._lookup(reply, request.q.qname, qname, qtype)

    def _lookup(self, reply, asked, qname, qtype, depth=0):
        with self._lock:
            rrs = list(self.records.get(qname, []))
        if not rrs:
            return self._negative(reply, qname, RCODE.NXDOMAIN) if depth == 0 else reply
        for rr in rrs:
            if QTYPE[rr.rtype] in (qtype, "CNAME") or qtype == "ANY":
                rr = RR(asked if depth == 0 else rr.rname, rr.rtype, rr.rclass, rr.ttl, rr.rdata)
                reply.add_answer(rr)
                if QTYPE[rr.rtype] == "CNAME" and qtype != "CNAME" and depth < 8:
                    return self._lookup(reply, None, _norm(rr.rdata.label), qtype, depth + 1)
        if not reply.rr:
            return self._negative(reply, qname, RCODE.NOERROR)
        return reply

    def _negative(self, reply, qname, rcode):
        reply.header.rcode = rcode
        apex = ".".join(qname.split(".")[-2:]) or "."
        soa = SOA(f"ns.{apex}.", f"hostmaster.{apex}.", (1, 3600, 600, 86400, self.ttl))
        reply.add_auth(RR(DNSLabel(apex + "."), QTYPE.SOA, ttl=self.ttl, rdata=soa))
        return reply

    # -- lifecycle ----------------------------------------------------------------------
    def _start(self, port):
        for attempt in range(20):
            p = port or free_port(udp=True)
            servers = []
            try:
                for tcp in (False, True):
                    servers.append(DNSServer(_Resolver(self), "127.0.0.1", p, tcp=tcp,
                                             logger=_QuietLogger(), handler=_Handler))
            except OSError:
                for s in servers:
                    s.server.server_close()
                if port:
                    raise
                continue
            self.port, self._servers = p, servers
            for s in servers:
                s.thread = threading.Thread(target=s.server.serve_forever, args=(0.05,),
                                            daemon=True, name=f"dns-{p}")
                s.thread.start()
            return
        raise RuntimeError("DnsServer: no free port")

    @property
    def config_line(self):
        return f"dns_servers = 127.0.0.1:{self.port}"

    def queried(self, name, qtype=None):
        """Queries seen for ``name`` (and ``qtype``)."""
        return [q for q in self.queries
                if q[0] == _norm(name) and (qtype is None or q[1] == qtype.upper())]

    def stop(self):
        self.stopped.set()
        for s in self._servers:
            s.server.shutdown()
            s.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

