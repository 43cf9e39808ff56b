"""`tandem route` (cli_route.c) against a scripted DNS server: route, status, next hops."""
import os
import subprocess

import pytest

from conftest import BUILD, SANITIZER_ENV, SANITIZER_ERROR
from dnsserver import DnsServer

ZONE = {
    "example.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
    "mx1.example.test": {"A": ["127.0.0.2"]},
    "mx2.example.test": {"A": ["127.0.0.3"], "AAAA": ["::1"]},
    "nullmx.test": {"MX": [(0, ".")]},
    "static.example": {"A": ["127.0.0.9"]},
}


def tandem_route(tmp_path, dns, *addrs):
    binary = os.path.join(BUILD, "tandem")
    if not os.path.exists(binary):
        pytest.skip("build/tandem not built")
    conf = tmp_path / "t.conf"
    conf.write_text(f"listen = 127.0.0.1:2525\nspool_directory = {tmp_path}/spool\n"
                    f"log_directory = {tmp_path}/log\ndns_servers = {dns.addr}\n"
                    "tls_outbound = encrypt\n"
                    "begin routes\n"
                    "loop.test  [127.0.0.1]:2525\n"
                    "static.test  static.example:2600  [127.0.0.8]  port=2601 tls=verify\n"
                    "*.test  mx  port=2525\n")
    p = subprocess.run([binary, "route", "-c", str(conf), *addrs], capture_output=True,
                       text=True, timeout=60, env={**SANITIZER_ENV, **os.environ})
    assert not SANITIZER_ERROR.search(p.stderr), p.stderr
    return p


def test_route_cli(tmp_path):
    with DnsServer(ZONE, servfail={"broken.test"}) as dns:
        p = tandem_route(tmp_path, dns, "u@example.test", "v@static.test")
        assert p.returncode == 0, p.stderr
        assert p.stdout == (
            "u@example.test\n"
            "  route: *.test (line 9)\n"
            "  status: ok, 3 next hops\n"
            "  host mx1.example.test [127.0.0.2] port=2525 pref=10 tls=encrypt\n"
            "  host mx2.example.test [127.0.0.3] port=2525 pref=20 tls=encrypt\n"
            "  host mx2.example.test [::1] port=2525 pref=20 tls=encrypt\n"
            "v@static.test\n"
            "  route: static.test (line 8)\n"
            "  status: ok, 2 next hops\n"
            "  host static.example [127.0.0.9] port=2600 pref=0 tls=verify\n"
            "  host 127.0.0.8 [127.0.0.8] port=2601 pref=0 tls=verify literal\n")


def test_route_cli_failures(tmp_path):
    with DnsServer(ZONE, servfail={"broken.test"}) as dns:
        p = tandem_route(tmp_path, dns, "a@nullmx.test", "b@loop.test", "c@broken.test",
                         "d@nowhere.example", "e@none.test", "not-an-address")
        assert p.returncode == 2
        out = p.stdout
        assert "a@nullmx.test\n  route: *.test (line 9)\n  status: null MX (550 5.1.10" in out
        assert "b@loop.test\n  route: loop.test (line 7)\n  status: no usable hosts (451 4.4.4 " \
               "all hosts are this machine (mail loop))" in out
        assert "c@broken.test\n  route: *.test (line 9)\n  status: temporary DNS failure (451 4.4.3" in out
        assert "d@nowhere.example\n  route: none\n  status: unroutable (550 5.1.2 Unrouteable address)" in out
        assert "e@none.test\n  route: *.test (line 9)\n  status: no such domain (550 5.1.2" in out
        assert "not-an-address\n  status: bad address" in out
