"""A real HAProxy in front of two tandem nodes (issue 15), with PROXY v1 and v2: both nodes log
the real client address, an ACL on that address takes effect, and the per-host limit counts
the real client, not HAProxy.  Clients use different 127.0.0.x source addresses; HAProxy
talks to the nodes from 127.0.0.3, the only host in hosts_proxy."""
import re
import urllib.request

import pytest

from harness import SmtpConn, free_port, relay_config, wait_until
from haproxy import HAProxy

CONNECT_ACL = """check_connect:
  deny    message = blocked client $sender_host_address
          hosts = 127.0.0.66
  accept
"""
BODY = b"Subject: through haproxy\r\n\r\nhello\r\n"


@pytest.fixture
def haproxy(tmp_path):
    started = []

    def make(*args, **kw):
        hp = HAProxy(str(tmp_path / f"haproxy{len(started)}"), *args, **kw)
        started.append(hp)
        return hp
    yield make
    for hp in started:
        hp.stop()


def two_nodes(tandem, hop, **opts):
    options = {"hosts_proxy": "127.0.0.3", "acl_smtp_connect": "check_connect", **opts}
    return [tandem(relay_config(hop, extra=CONNECT_ACL), options=options) for _ in range(2)]


@pytest.mark.parametrize("proxy", ["v1", "v2"])
def test_nodes_see_the_real_client(tandem, nexthop, haproxy, proxy):
    hop = nexthop()
    nodes = two_nodes(tandem, hop)
    hp = haproxy([("n1", "127.0.0.1", nodes[0].port), ("n2", "127.0.0.1", nodes[1].port)], proxy=proxy)
    clients = [f"127.0.0.{i}" for i in range(10, 18)]
    for ip in clients:
        with SmtpConn(hp.port, source=ip) as c:
            assert c.banner[0] == 220
            code, lines = c.cmd("EHLO client.test")
            assert code == 250 and f"[{ip}]" in lines[0]
            r = c.send_mail(f"from-{ip}@client.test", ["u@example.test"], BODY)
            assert r["final"][0] == 250
            c.quit()
    hop.wait_accepted(len(clients))
    logged = {}
    for n, t in enumerate(nodes):
        t.wait_log(r"<= from-", count=1)       # round robin: each node took some
        for ip in clients:
            if f"<= from-{ip}@client.test H=(client.test) [{ip}]" in t.mainlog():
                logged[ip] = n
        assert "[127.0.0.3]" not in t.mainlog()
    assert sorted(logged) == clients and set(logged.values()) == {0, 1}
    for m in hop.accepted:
        ip = m.mail_from[len("from-"):].split("@")[0]
        assert f"Received: from client.test ([{ip}])".encode() in m.data

    # an ACL on the client's address
    c = SmtpConn(hp.port, source="127.0.0.66")
    assert c.banner == (554, ["5.7.1 blocked client 127.0.0.66"])
    c.assert_closed()
    wait_until(lambda: any("H=[127.0.0.66] rejected connection in \"connect\" ACL" in t.rejectlog()
                           for t in nodes), 10, "the refusal logged")


@pytest.mark.parametrize("proxy", ["v1", "v2"])
def test_per_host_limit_counts_the_client(tandem, nexthop, haproxy, proxy):
    hop = nexthop()
    nodes = two_nodes(tandem, hop, smtp_accept_max_per_host="2")
    # balance source: one client always reaches the same node
    hp = haproxy([("n1", "127.0.0.1", nodes[0].port), ("n2", "127.0.0.1", nodes[1].port)],
                 proxy=proxy, balance="source")
    held = [SmtpConn(hp.port, source="127.0.0.20") for _ in range(2)]
    assert all(c.banner[0] == 220 for c in held)
    third = SmtpConn(hp.port, source="127.0.0.20", banner=False)
    code, lines = third.reply()
    assert code == 421 and "4.7.0" in lines[0]
    third.assert_closed()
    refusal = ("H=[127.0.0.20] rejected connection: Too many concurrent SMTP connections from "
               "this IP address")
    wait_until(lambda: sum(refusal in t.rejectlog() for t in nodes) == 1, 10, "the refusal logged")
    # HAProxy already holds 2 connections to that node: other clients are not counted with them
    others = [SmtpConn(hp.port, source=f"127.0.0.{i}") for i in range(21, 29)]
    assert all(c.banner[0] == 220 for c in others)
    for c in held + others:
        c.quit()
    with SmtpConn(hp.port, source="127.0.0.20") as again:      # a slot is free again
        assert again.banner[0] == 220
        again.quit()


@pytest.mark.parametrize("proxy", ["v1", "v2"])
def test_health_checks_with_their_own_header(tandem, nexthop, haproxy, proxy):
    """option smtpchk + check-send-proxy: HAProxy's checks arrive with a PROXY header of their
    own (v2: LOCAL, naming no client); the nodes serve them and stay UP, and count them."""
    hop = nexthop()
    ports = [free_port("127.0.0.1") for _ in range(2)]
    nodes = [tandem(relay_config(hop, extra=CONNECT_ACL),
                    options={"hosts_proxy": "127.0.0.3", "acl_smtp_connect": "check_connect",
                             "metrics_listen": f"127.0.0.1:{p}"}) for p in ports]
    hp = haproxy([("n1", "127.0.0.1", nodes[0].port), ("n2", "127.0.0.1", nodes[1].port)],
                 proxy=proxy, checks=True)
    kind = "local" if proxy == "v2" else "client"     # v1 checks name HAProxy's own address
    for p in ports:
        wait_until(lambda: _proxy_headers(p, kind) >= 3, 10, f"3 health checks ({kind}) served")
        assert _proxy_headers(p, "refused") == 0
    assert "is DOWN" not in hp.log(), hp.log()
    assert all(t.rejectlog() == "" for t in nodes)
    with SmtpConn(hp.port, source="127.0.0.30") as c:  # and mail still flows
        assert "[127.0.0.30]" in c.cmd("EHLO client.test")[1][0]
        c.quit()


def _proxy_headers(port, result):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r'^tandem_proxy_headers_total\{result="%s"\} (\d+)$' % result, text, re.M)
    return int(m.group(1))
