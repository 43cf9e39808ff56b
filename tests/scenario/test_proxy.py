"""PROXY protocol (hosts_proxy, issue 15): the address a load balancer's header carries is the
client's everywhere (EHLO reply, logs, Received, ACL hosts, per-host limits); a listed host
without a valid header is closed and logged; a header from any other host is early talking.
The balancer here is 127.0.0.3 (the readiness probe comes from 127.0.0.1)."""
import socket
import ssl
import time

from harness import SmtpConn, free_port, relay_config
from proxyproto import v1, v2

BALANCER = "127.0.0.3"
BODY = b"Subject: via proxy\r\n\r\nhello\r\n"


def proxy_opts(**more):
    return {"hosts_proxy": BALANCER, **more}


def via_proxy(t, header, port=None):
    """Connect as the balancer, send the header, read the banner."""
    c = SmtpConn(port or t.port, banner=False, source=BALANCER)
    c.send(header)
    c.banner = c.reply()
    return c


def assert_dropped(t, header, why, **kw):
    """The header is refused: no banner, the connection closed, the reason logged."""
    c = SmtpConn(t.port, banner=False, source=BALANCER)
    c.send(header)
    c.assert_closed()
    assert not any(d == "S" for d, _ in c.transcript)
    t.wait_log(r"H=\[127\.0\.0\.3\] rejected connection: PROXY protocol: " + why, log="rejectlog")


def test_v1_client_address_everywhere(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop), options=proxy_opts())
    with via_proxy(t, v1("198.51.100.7", "127.0.0.1", 40001, t.port)) as c:
        assert c.banner[0] == 220
        code, lines = c.cmd("EHLO client.test")
        assert code == 250 and "[198.51.100.7]" in lines[0]
        r = c.send_mail("a@client.test", ["u@example.test"], BODY)
        assert r["final"][0] == 250
        c.quit()
    [m] = hop.wait_accepted(1)
    assert b"Received: from client.test ([198.51.100.7])" in m.data
    t.wait_log(r"<= a@client\.test H=\(client\.test\) \[198\.51\.100\.7\]")
    assert "127.0.0.3" not in t.mainlog()


def test_v2_ipv4_and_ipv6(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    with via_proxy(t, v2("192.0.2.44", "127.0.0.1", 5555, 25)) as c:
        assert "[192.0.2.44]" in c.cmd("EHLO a.test")[1][0]
        c.quit()
    with via_proxy(t, v2("2001:db8::44", "::1", 5555, 25)) as c:
        assert "[2001:db8::44]" in c.cmd("EHLO a.test")[1][0]
        c.quit()


def test_v2_with_tlvs_ignored(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    tlv = bytes([0x04, 0x00, 0x03]) + b"abc"           # PP2_TYPE_NOOP, 3 bytes
    with via_proxy(t, v2("192.0.2.45", "127.0.0.1", 1, 25, tlvs=tlv)) as c:
        assert "[192.0.2.45]" in c.cmd("EHLO a.test")[1][0]
        c.quit()


def test_local_and_unknown_keep_the_connection_address(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    for header in (v2(local=True), b"PROXY UNKNOWN\r\n", v2(None)):
        with via_proxy(t, header) as c:
            assert "[127.0.0.3]" in c.cmd("EHLO a.test")[1][0]
            c.quit()


def test_header_split_across_writes(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    h = v2("192.0.2.46", "127.0.0.1", 1, 25)
    c = SmtpConn(t.port, banner=False, source=BALANCER)
    for i in range(0, len(h), 5):
        c.send(h[i:i + 5])
        time.sleep(0.05)
    c.banner = c.reply()
    assert "[192.0.2.46]" in c.cmd("EHLO a.test")[1][0]
    c.quit()


def test_smtp_right_after_the_header_is_not_lost(tandem):
    """The header is read exactly: a pipelined EHLO in the same write is early talking, as
    from a direct client, not swallowed with the header."""
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    c = SmtpConn(t.port, banner=False, source=BALANCER)
    c.send(v1("198.51.100.9", "127.0.0.1", 1, 25) + b"EHLO early.test\r\n")
    code, lines = c.reply()
    assert code == 554 and "synchronization" in lines[0]
    t.wait_log(r"H=\[198\.51\.100\.9\] rejected connection: SMTP protocol synchronization error "
               r"\(input sent before banner\)", log="rejectlog")


def test_malformed_headers_are_dropped_and_logged(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    assert_dropped(t, b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "v1 header malformed")
    assert_dropped(t, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1 header not ended by CRLF")
    assert_dropped(t, b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", "v1 header: invalid address")
    assert_dropped(t, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "v1 header: invalid address")
    assert_dropped(t, b"PROXY TCP4 ::1 ::1 1 2\r\n", "v1 header: invalid address")
    assert_dropped(t, b"EHLO not-a-proxy.test\r\n", "not a PROXY protocol header")
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2)[:12] + b"\x31\x11\x00\x0c" + b"\0" * 12,
                   "v2 header: unknown version")
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2)[:12] + b"\x22\x11\x00\x0c" + b"\0" * 12,
                   "v2 header: unknown command")


def test_unknown_families_are_dropped(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    assert_dropped(t, v1("1.2.3.4", "5.6.7.8", 1, 2, family="TCP5"), "v1 header: unknown address family")
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2, fam=0x31),
                   "v2 header: unsupported address family")      # AF_UNIX stream
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2, fam=0x12),
                   "v2 header: unsupported address family")      # UDP over IPv4
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2, fam=0x41),
                   "v2 header: unsupported address family")      # no such family


def test_truncated_and_oversized_headers(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts())
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2, length=4), "v2 header: IPv4 address block truncated")
    assert_dropped(t, v2("2001:db8::1", "::1", 1, 2, length=12), "v2 header: IPv6 address block truncated")
    assert_dropped(t, v2("192.0.2.1", "127.0.0.1", 1, 2, length=2000), "v2 header too long")
    assert_dropped(t, b"PROXY TCP4 " + b"1" * 120 + b"\r\n", "v1 header longer than 107 bytes")
    # a header cut short by the balancer closing
    c = SmtpConn(t.port, banner=False, source=BALANCER)
    c.send(b"PROXY TCP4 1.2.3.4 ")
    c.sock.shutdown(socket.SHUT_WR)
    c.assert_closed()
    t.wait_log(r"H=\[127\.0\.0\.3\] rejected connection: PROXY protocol: connection closed before "
               r"a complete header", log="rejectlog")


def test_no_header_within_the_receive_timeout(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts(smtp_receive_timeout="2s"))
    silent = SmtpConn(t.port, banner=False, source=BALANCER)
    partial = SmtpConn(t.port, banner=False, source=BALANCER)
    partial.send(b"PROXY TCP4 1.2.3.4")          # and a byte now and then: the limit is overall
    for _ in range(6):
        time.sleep(0.5)
        try:
            partial.send(b" ")
        except OSError:
            break
    silent.assert_closed(timeout=10)
    partial.assert_closed(timeout=10)
    t.wait_log(r"H=\[127\.0\.0\.3\] rejected connection: PROXY protocol: no complete header within 2s",
               log="rejectlog", count=2)


def test_header_from_an_unlisted_host_is_early_talking(tandem):
    """As in Exim: a host not in hosts_proxy gets no PROXY processing, so the header is input
    before the banner: 554 and closed; the reject log says it was a PROXY header."""
    t = tandem(relay_config("[127.0.0.2]:1", extra="slow_connect:\n  accept delay = 1s\n"),
               options=proxy_opts(acl_smtp_connect="slow_connect"))
    for header in (v1("198.51.100.7", "127.0.0.1", 1, 25), v2("198.51.100.7", "127.0.0.1", 1, 25)):
        c = SmtpConn(t.port, banner=False, source="127.0.0.5")
        c.send(header)
        code, lines = c.reply()
        assert code == 554 and "5.5.0" in lines[0]
        c.assert_closed()
    t.wait_log(r"H=\[127\.0\.0\.5\] rejected connection: SMTP protocol synchronization error \(input "
               r"sent before banner: a PROXY protocol header, and the host is not in hosts_proxy\)",
               log="rejectlog", count=2)
    # After the banner it is an unknown command, as in Exim.
    with SmtpConn(t.port, source="127.0.0.5") as c:
        assert c.cmd("PROXY TCP4 198.51.100.7 127.0.0.1 1 25")[0] == 500
        c.quit()


def test_acl_hosts_sees_the_client(tandem):
    acl = """
begin acl
check_connect:
  deny    message = no mail from 198.51.100.66
          hosts = 198.51.100.66
  accept
"""
    t = tandem(relay_config("[127.0.0.2]:1") + acl.replace("begin acl\n", ""),
               options=proxy_opts(acl_smtp_connect="check_connect"))
    c = via_proxy(t, v1("198.51.100.66", "127.0.0.1", 1, 25))
    assert c.banner == (554, ["5.7.1 no mail from 198.51.100.66"])
    c.assert_closed()
    with via_proxy(t, v1("198.51.100.67", "127.0.0.1", 1, 25)) as ok:
        assert ok.banner[0] == 220
        ok.quit()
    t.wait_log(r"H=\[198\.51\.100\.66\] rejected connection in \"connect\" ACL", log="rejectlog")


def test_per_host_limit_counts_the_client_not_the_balancer(tandem):
    t = tandem(relay_config("[127.0.0.2]:1"), options=proxy_opts(smtp_accept_max_per_host="2"))
    held = [via_proxy(t, v1("198.51.100.1", "127.0.0.1", 1, 25)),
            via_proxy(t, v1("198.51.100.1", "127.0.0.1", 2, 25))]
    third = via_proxy(t, v1("198.51.100.1", "127.0.0.1", 3, 25))
    assert third.banner[0] == 421 and "4.7.0" in third.banner[1][0]
    third.assert_closed()
    t.wait_log(r"H=\[198\.51\.100\.1\] rejected connection: Too many concurrent SMTP connections "
               r"from this IP address", log="rejectlog")
    others = [via_proxy(t, v1(f"198.51.100.{i}", "127.0.0.1", 1, 25)) for i in range(2, 6)]
    assert all(o.banner[0] == 220 for o in others)      # 6 connections from one balancer
    for c in held + others:
        c.quit()


def test_starttls_after_proxy(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1"),
               options=proxy_opts(tls_certificate=certs.server_cert, tls_privatekey=certs.server_key))
    c = via_proxy(t, v2("192.0.2.50", "127.0.0.1", 1, 25))
    assert "STARTTLS" in c.ehlo("a.test")
    c.starttls(cafile=certs.ca, server_hostname="tandem.test")
    code, lines = c.cmd("EHLO a.test")
    assert code == 250 and "[192.0.2.50]" in lines[0]
    c.quit()


def test_implicit_tls_listener_behind_proxy(tandem, certs):
    """HAProxy in TCP mode passes the TLS bytes through after its header."""
    port = free_port("127.0.0.1")
    opts = proxy_opts(tls_certificate=certs.server_cert, tls_privatekey=certs.server_key)
    t = tandem(relay_config("[127.0.0.2]:1"), options=opts)
    t.restart(options={**opts, "listen": f"127.0.0.1:{t.port} 127.0.0.1:{port}/tls"})
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(BALANCER, 0))
    raw.sendall(v1("198.51.100.80", "127.0.0.1", 1, port))
    s = ssl.create_default_context(cafile=certs.ca).wrap_socket(raw, server_hostname="tandem.test")
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    s.sendall(b"EHLO c.test\r\n")
    assert b"[198.51.100.80]" in f.readline()
    s.close()
