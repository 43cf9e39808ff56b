"""Self-tests of the DANE and MTA-STS harness pieces, without tandem: SignedDns serves signed
zones with NSD (RRSIGs present, tampered records changed, unsigned zones unsigned, a trust
anchor written), and StsServer serves policies over HTTPS on port 443 with the test CA."""
import socket
import ssl
import urllib.request

from dnslib import DNSRecord, EDNS0

from harness.signed_dns import SignedDns
from harness.sts_server import StsServer


def ask(z, name, qtype):
    q = DNSRecord.question(name, qtype)
    q.add_ar(EDNS0(flags="do", udp_len=4096))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.pack(), ("127.0.0.1", z.port))
        return DNSRecord.parse(s.recv(65535))


def test_signed_dns(tmp_path):
    z = SignedDns(tmp_path, {"a.test": {"MX": (10, "mx.a.test")}, "mx.a.test": {"A": "127.0.0.2"},
                             "_25._tcp.mx.a.test": {"TLSA": "3 1 1 " + "ab" * 32},
                             "b.test": {"A": "127.0.0.3"}},
                  signed=["a.test"], unsigned=["b.test"],
                  tamper={("mx.a.test", "A"): "127.0.0.9"})
    try:
        r = ask(z, "_25._tcp.mx.a.test", "TLSA")
        types = sorted(str(rr.rtype) for rr in r.rr)
        assert types == ["46", "52"]                       # TLSA and its RRSIG
        r = ask(z, "mx.a.test", "A")
        assert [str(rr.rdata) for rr in r.rr if rr.rtype == 1] == ["127.0.0.9"]   # tampered
        assert any(rr.rtype == 46 for rr in r.rr)          # the old signature kept
        r = ask(z, "b.test", "A")
        assert [rr.rtype for rr in r.rr] == [1]            # unsigned zone: no RRSIG
        with open(z.trust_anchor) as f:
            anchor = f.read()
        assert anchor.startswith("a.test.") and "\tDS\t" in anchor and "b.test" not in anchor
        assert "dnssec_trust_anchor = " + z.trust_anchor in z.config_line
    finally:
        z.stop()


def test_sts_server(certs):
    sts = StsServer(certs, "x.test", policy="version: STSv1\nmode: none\nmax_age: 1\n")
    try:
        ctx = ssl.create_default_context(cafile=certs.ca)
        ctx.check_hostname = False                          # the name is checked below, by SNI
        url = f"https://{sts.ip}/.well-known/mta-sts.txt"
        with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/plain"
            assert r.read() == b"version: STSv1\nmode: none\nmax_age: 1\n"
        assert sts.requests == [("/.well-known/mta-sts.txt", None)]
        sts.stop()
        sts.start()                                         # the same address again
        assert sts.ip.startswith("127.") and not sts.ip.startswith("127.0.0.")
    finally:
        sts.stop()
