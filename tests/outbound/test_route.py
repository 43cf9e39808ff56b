"""DNS lookups and routing (dns.c, route.c) against a scripted DNS server."""
import re

import pytest

from conftest import run_driver
from dnsserver import DnsServer

ZONE = {
    "example.test": {"MX": [(20, "mx2.example.test"), (10, "mx1.example.test")]},
    "mx1.example.test": {"A": ["127.0.0.2"]},
    "mx2.example.test": {"A": ["127.0.0.3"], "AAAA": ["::1"]},
    "equal.test": {"MX": [(10, "a.equal.test"), (10, "b.equal.test"), (10, "c.equal.test"),
                          (5, "first.equal.test")]},
    "a.equal.test": {"A": ["127.0.1.1"]},
    "b.equal.test": {"A": ["127.0.1.2"]},
    "c.equal.test": {"A": ["127.0.1.3"]},
    "first.equal.test": {"A": ["127.0.1.0"]},
    "nullmx.test": {"MX": [(0, ".")]},
    "nomx.test": {"A": ["127.0.0.5"]},
    "nothing.test": {"TXT": []},
    "upper.test": {"MX": [(10, "MX1.Example.TEST.")]},
    "self.test": {"MX": [(10, "me.self.test"), (20, "other.self.test")]},
    "me.self.test": {"A": ["127.0.0.1"]},
    "other.self.test": {"A": ["127.0.0.2"]},
    "backup.test": {"MX": [(10, "primary.backup.test"), (20, "me.self.test"), (30, "third.backup.test")]},
    "primary.backup.test": {"A": ["127.0.0.7"]},
    "third.backup.test": {"A": ["127.0.0.8"]},
    "loop.test": {"MX": [(10, "me.self.test")]},
    "badmx.test": {"MX": [(10, "broken.test"), (20, "mx1.example.test")]},
    "allbad.test": {"MX": [(10, "broken.test")]},
    "ghost.test": {"MX": [(10, "gone.test")]},
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE, servfail={"broken.test"}, timeout={"slow.test"}) as d:
        yield d


def route(dns, domain, *args):
    return run_driver("route_drive", "--dns", dns.addr, *args, "route", domain)


def hosts(r):
    return [l.strip() for l in r.lines if l.strip().startswith("host ")]


def test_mx_lookup_parsing(dns):
    r = run_driver("route_drive", "--dns", dns.addr, "mx", "upper.test")
    assert r.lines[:2] == ["mx ok 1", '  10 "mx1.example.test"']
    r = run_driver("route_drive", "--dns", dns.addr, "mx", "nullmx.test")
    assert r.lines[:2] == ["mx ok 1", '  0 ""']
    assert run_driver("route_drive", "--dns", dns.addr, "mx", "nomx.test").lines[0] == "mx nodata 0"
    assert run_driver("route_drive", "--dns", dns.addr, "mx", "none.test").lines[0] == "mx nxdomain 0"
    assert run_driver("route_drive", "--dns", dns.addr, "mx", "broken.test").lines[0] == "mx tempfail 0"


def test_addr_lookup_combines_a_and_aaaa(dns):
    r = run_driver("route_drive", "--dns", dns.addr, "addr", "mx2.example.test")
    assert r.lines[:3] == ["addr ok 2", "  127.0.0.3", "  ::1"]
    r = run_driver("route_drive", "--dns", dns.addr, "addr", "127.0.0.9")
    assert r.lines[:2] == ["addr ok 1", "  127.0.0.9"]
    assert run_driver("route_drive", "--dns", dns.addr, "addr", "nothing.test").lines[0] == "addr nodata 0"
    assert run_driver("route_drive", "--dns", dns.addr, "addr", "none.test").lines[0] == "addr nxdomain 0"


def test_mx_route_order_and_ports(dns):
    r = route(dns, "Example.TEST", "--hop", "mx", "--port", "2526", "--tls", "verify")
    assert hosts(r) == ["host mx1.example.test [127.0.0.2] port=2526 pref=10 tls=verify",
                        "host mx2.example.test [127.0.0.3] port=2526 pref=20 tls=verify",
                        "host mx2.example.test [::1] port=2526 pref=20 tls=verify"]
    r = route(dns, "example.test", "--hop", "mx", "--remote-port", "2599")
    assert all("port=2599" in h and "tls=may" in h for h in hosts(r))


def test_equal_preferences_are_shuffled(dns):
    orders = set()
    for _ in range(12):
        h = hosts(route(dns, "equal.test", "--hop", "mx"))
        assert h[0].startswith("host first.equal.test")
        assert sorted(h[1:]) == [f"host {n}.equal.test [127.0.1.{i}] port=25 pref=10 tls=may"
                                 for i, n in enumerate("abc", 1)]
        orders.add(tuple(x.split()[1] for x in h[1:]))
    assert len(orders) > 1


def test_null_mx(dns):
    r = route(dns, "nullmx.test", "--hop", "mx")
    assert "status: null MX (550 5.1.10" in r.out


def test_nodata_falls_back_to_a(dns):
    r = route(dns, "nomx.test", "--hop", "mx")
    assert hosts(r) == ["host nomx.test [127.0.0.5] port=25 pref=0 tls=may"]


def test_nxdomain_and_servfail(dns):
    assert "status: no such domain (550 5.1.2" in route(dns, "none.test", "--hop", "mx").out
    assert "status: temporary DNS failure (451 4.4.3" in route(dns, "broken.test", "--hop", "mx").out
    # one MX host failing temporarily: the others are still used
    assert hosts(route(dns, "badmx.test", "--hop", "mx")) == [
        "host mx1.example.test [127.0.0.2] port=25 pref=20 tls=may"]
    assert "temporary DNS failure" in route(dns, "allbad.test", "--hop", "mx").out
    r = route(dns, "ghost.test", "--hop", "mx")
    assert "status: no usable hosts (451 4.4.4 no address found for gone.test)" in r.out


def test_dns_timeout_is_tempfail(dns):
    r = route(dns, "slow.test", "--hop", "mx")
    assert "status: temporary DNS failure" in r.out


def test_static_hosts_in_order_with_ports(dns):
    r = route(dns, "whatever.test", "--hop", "mx1.example.test:2600", "--hop", "[127.0.0.9]",
              "--hop", "[::1]:2601", "--port", "2602")
    assert hosts(r) == ["host mx1.example.test [127.0.0.2] port=2600 pref=0 tls=may",
                        "host 127.0.0.9 [127.0.0.9] port=2602 pref=0 tls=may literal",
                        "host ::1 [::1] port=2601 pref=0 tls=may literal"]


def test_self_is_skipped(dns):
    r = route(dns, "self.test", "--hop", "mx", "--port", "2525", "--listen", "127.0.0.1:2525")
    assert "status: no usable hosts (451 4.4.4 all hosts are this machine (mail loop))" in r.out
    r = route(dns, "loop.test", "--hop", "mx", "--port", "2525", "--listen", "0.0.0.0:2525")
    assert "mail loop" in r.out
    # other loopback addresses are ordinary hosts; other ports are not us
    r = route(dns, "x.test", "--hop", "[127.0.0.2]:2525", "--listen", "127.0.0.1:2525")
    assert hosts(r) == ["host 127.0.0.2 [127.0.0.2] port=2525 pref=0 tls=may literal"]
    r = route(dns, "x.test", "--hop", "[127.0.0.1]:2526", "--listen", "127.0.0.1:2525")
    assert hosts(r) == ["host 127.0.0.1 [127.0.0.1] port=2526 pref=0 tls=may literal"]
    r = route(dns, "x.test", "--hop", "[127.0.0.1]:2525", "--hop", "[127.0.0.3]:2525",
              "--listen", "[::]:2525")
    assert hosts(r) == ["host 127.0.0.3 [127.0.0.3] port=2525 pref=0 tls=may literal"]


def test_backup_mx_drops_hosts_at_or_above_own_preference(dns):
    r = route(dns, "backup.test", "--hop", "mx", "--port", "2525", "--listen", "127.0.0.1:2525")
    assert hosts(r) == ["host primary.backup.test [127.0.0.7] port=2525 pref=10 tls=may"]


def test_unroutable_and_key(dns):
    r = run_driver("route_drive", "--dns", dns.addr, "route", "x.test")
    assert "status: unroutable (550 5.1.2 Unrouteable address)" in r.out
    a = route(dns, "example.test", "--hop", "mx")
    key = [l for l in a.lines if l.startswith("  key ")][0]
    assert re.match(r"  key ok 127\.0\.0\.2:25/2/mx1\.example\.test 127\.0\.0\.3:25/2/mx2", key)


def test_many_concurrent_and_cancel(dns):
    r = run_driver("route_drive", "--dns", dns.addr, "--hop", "mx", "--repeat", "50", "route",
                   "example.test")
    assert r.out.count("status: ok, 3 next hops") == 50 and "exit outstanding=0" in r.out
    r = run_driver("route_drive", "--dns", dns.addr, "--hop", "mx", "--repeat", "20", "cancel",
                   "example.test")
    assert "status" not in r.out and "exit outstanding=0" in r.out
