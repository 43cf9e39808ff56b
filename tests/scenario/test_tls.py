"""TLS in both directions (issue 5): STARTTLS in, implicit TLS, STARTTLS out per policy, and a
cutthrough holding two TLS sessions at once."""
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading

import pytest

from harness import SmtpConn, free_port, read_spool, relay_config, swaks
from harness.interop import have_exim, have_swaks, swaks_has_tls

BODY = b"Subject: tls\r\n\r\nover TLS\r\n"


def tls_options(certs, **extra):
    opts = {"tls_certificate": certs.server_cert, "tls_privatekey": certs.server_key}
    opts.update(extra)
    return opts


def starttls_session(t, certs):
    c = t.connect()
    assert "STARTTLS" in c.ehlo()
    c.starttls(cafile=certs.ca, server_hostname="tandem.test")
    return c


def test_starttls_then_message_logged_as_esmtps(tandem, nexthop, certs):
    hop = nexthop(rcpt="451 4.3.0 later")               # the message stays in the spool
    t = tandem(relay_config(hop), options=tls_options(certs))
    c = starttls_session(t, certs)
    ext = c.ehlo()
    assert "STARTTLS" not in ext                        # capabilities start over
    assert c.send_mail("s@client.test", ["u@example.test"], BODY)["final"][0] == 250
    c.quit()
    m = t.wait_log(r"(\S+) <= s@client\.test H=\(client\.test\) \[127\.0\.0\.1\] P=esmtps "
                   r"X=TLS1\.3:(TLS_\w+):(\d+) CV=no S=\d+")
    mid = m.group(1)
    t.wait_log(rf"{mid} == u@example\.test .*451 4\.3\.0 later")
    msg = read_spool(t.spool, mid)
    assert msg.fields["L"].decode().startswith("TLS1.3:")
    assert b"with ESMTPS id" in msg.content and b"(TLS1.3:" in msg.content


def test_starttls_sequence_errors(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1"), options=tls_options(certs))
    with t.connect() as c:
        assert c.cmd("STARTTLS")[0] == 503                # before EHLO
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        assert c.cmd("STARTTLS")[0] == 503                # mid-transaction
        c.expect(250, "RSET")
        assert c.cmd("STARTTLS x")[0] == 501
        c.starttls(cafile=certs.ca, server_hostname="tandem.test")
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 503                # twice
        c.quit()


def test_starttls_injection_is_discarded(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1"), options=tls_options(certs))
    c = t.connect()
    c.ehlo()
    c.send(b"STARTTLS\r\nRSET\r\n")                      # RSET smuggled in the plaintext
    code, _ = c.reply()
    assert code == 220
    ctx = ssl.create_default_context(cafile=certs.ca)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="tandem.test")
    c.buf = bytearray()
    assert c.cmd("NOOP")[0] == 250                      # the first reply is NOOP's, not RSET's
    c.quit()
    t.wait_log(r"bytes of pipelined plaintext after STARTTLS discarded")


def test_no_starttls_without_certificate_or_for_other_hosts(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1"))
    with t.connect() as c:
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("STARTTLS")[0] == 502
    t2 = tandem(relay_config("[127.0.0.2]:1"), options=tls_options(certs, tls_advertise_hosts="192.0.2.1"))
    with t2.connect() as c:
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("STARTTLS")[0] == 454


def test_openssl_s_client(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1"), options=tls_options(certs))
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}", "-starttls", "smtp",
                        "-CAfile", certs.ca, "-verify_return_error", "-servername", "tandem.test"],
                       input=b"QUIT\r\n", capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out
    assert re.search(r"Protocol\s*: TLSv1\.[23]", out) or "TLSv1.3" in out


@pytest.mark.skipif(not have_swaks() or not swaks_has_tls(), reason="swaks without TLS")
def test_swaks_tls(tandem, nexthop, certs):
    hop = nexthop()
    t = tandem(relay_config(hop), options=tls_options(certs))
    r = swaks(t.port, to="u@example.test", sender="s@client.test", args=["--tls"])
    assert r.ok, r.transcript
    t.wait_log(r"<= s@client\.test .* P=esmtps X=TLS")


def test_implicit_tls_listener(tandem, nexthop, certs):
    hop = nexthop()
    port = free_port("127.0.0.1")
    t = tandem(relay_config(hop), options=tls_options(certs))
    t.restart(options=tls_options(certs, listen=f"127.0.0.1:{t.port} 127.0.0.1:{port}/tls"))
    ctx = ssl.create_default_context(cafile=certs.ca)
    import socket
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="tandem.test")
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    s.sendall(b"EHLO c.test\r\n")
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if line[3:4] == b" ":
            break
    assert not any(b"STARTTLS" in l for l in lines)
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221")
    s.close()


def test_certificate_reloaded_on_sighup(tandem, certs, tmp_path):
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    shutil.copy(certs.server_cert, cert)
    shutil.copy(certs.server_key, key)
    t = tandem(relay_config("[127.0.0.2]:1"), options={"tls_certificate": cert, "tls_privatekey": key})
    old = starttls_session(t, certs)                    # a session open across the reload
    new_cert, new_key = certs.issue("reloaded", ["tandem.test", "reloaded.test"])
    shutil.copy(new_cert, cert)
    shutil.copy(new_key, key)
    os.kill(t.pid, signal.SIGHUP)
    t.wait_log(r"configuration reloaded")
    import time
    deadline = time.time() + 10
    while True:
        c = starttls_session(t, certs)
        sans = [v for k, v in c.sock.getpeercert().get("subjectAltName", ())]
        c.quit()
        if "reloaded.test" in sans or time.time() > deadline:
            break
        time.sleep(0.2)
    assert "reloaded.test" in sans
    old.ehlo()                                          # the old session still works
    assert old.cmd("NOOP")[0] == 250
    old.quit()


# ---- outbound: cutthrough with both sides on TLS, and the outbound policies ----

def tls_hop(nexthop, certs, untrusted=False, **kw):
    cert, key = (certs.untrusted_cert, certs.untrusted_key) if untrusted else (certs.nexthop_cert, certs.nexthop_key)
    return nexthop(tls=(cert, key), **kw)


def test_cutthrough_tls_both_sides_50_sessions(tandem, nexthop, certs):
    hop = tls_hop(nexthop, certs)
    t = tandem(relay_config(hop, cutthrough=True, route_options="tls=verify"),
               options=tls_options(certs, tls_outbound_ca=certs.ca, smtp_accept_max_per_host="100",
                                   workers="2"))
    errors = []

    def one(i):
        try:
            c = starttls_session(t, certs)
            c.ehlo()
            r = c.send_mail("s@client.test", [f"u{i}@example.test"], BODY)
            if r["final"][0] != 250:
                errors.append(r)
            c.quit()
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    hop.wait_accepted(50, timeout=30)
    assert all(s.tls for s in hop.sessions)             # the next hop saw TLS on every session
    t.wait_log(r">> u\d+@example\.test .* X=TLS1\.3:\S+ CV=yes C=\"250", count=50)
    t.wait_log(r"<= s@client\.test .* P=esmtps X=TLS1\.3", count=50)
    assert t.spool_ids() == []


@pytest.mark.parametrize("policy,offer,untrusted,expect_tls,expect_cut", [
    ("none", True, False, False, True),
    ("may", False, False, False, True),
    ("may", True, True, True, True),       # may: no verification, TLS used
    ("may", True, False, True, True),
    ("encrypt", False, False, None, False),  # required but not offered: never in clear
    ("encrypt", True, True, True, True),
    ("verify", True, True, None, False),   # untrusted certificate: refused
    ("verify", True, False, True, True),
    ("verify", False, False, None, False),
])
def test_outbound_tls_policies(tandem, nexthop, certs, policy, offer, untrusted, expect_tls, expect_cut):
    hop = tls_hop(nexthop, certs, untrusted=untrusted, advertise={"STARTTLS": offer})
    t = tandem(relay_config(hop, cutthrough=True, route_options=f"tls={policy}"),
               options={"tls_outbound_ca": certs.ca})
    with t.connect() as c:
        c.ehlo()
        r = c.send_mail("s@client.test", ["u@example.test"], BODY)
        c.quit()
    assert r["final"][0] == 250
    if expect_cut:
        [m] = hop.wait_accepted(1)
        assert bool(m.session.tls) == expect_tls
        assert t.spool_ids() == []
    else:
        assert hop.accepted == []
        assert all(not s.messages for s in hop.sessions)   # nothing was sent in clear
        [qid] = t.spool_ids()                  # kept (defer=spool) and never delivered:
        t.wait_log(rf"{qid} == u@example\.test .* defer .*H=\[127\.0\.0\.2\]:\d+: .*"
                   r"(STARTTLS|certificate)")           # the queue run defers it too
        assert f"{qid} =>" not in t.mainlog() and hop.accepted == []
        assert t.spool_ids() == [qid]



def test_next_hop_injecting_after_starttls_220(tandem, nexthop, certs):
    from harness import GARBAGE
    hop = tls_hop(nexthop, certs, starttls=GARBAGE["starttls_inject"])
    t = tandem(relay_config(hop, cutthrough=True, route_options="tls=encrypt"))
    with t.connect() as c:
        c.ehlo()
        r = c.send_mail("s@client.test", ["u@example.test"], BODY)
        c.quit()
    assert r["final"][0] == 250                         # queued (defer=spool), not sent
    assert hop.accepted == []
    assert len(t.spool_ids()) == 1


@pytest.mark.skipif(not have_exim(), reason="exim not installed")
def test_exim_as_tls_next_hop(tandem, certs, exim_peer):
    ex = exim_peer(domains="example.test", tls=(certs.nexthop_cert, certs.nexthop_key))
    t = tandem(relay_config(f"[{ex.host}]:{ex.port}", cutthrough=True, route_options="tls=encrypt"))
    with t.connect() as c:
        c.ehlo()
        assert c.send_mail("s@client.test", ["u@example.test"], BODY)["final"][0] == 250
        c.quit()
    ex.wait_messages(1)
    assert re.search(r"<= s@client\.test .* X=TLS", ex.mainlog())


@pytest.mark.skipif(not have_exim(), reason="exim not installed")
def test_exim_as_tls_client(tandem, nexthop, certs, exim_peer):
    hop = nexthop()
    t = tandem(relay_config(hop), options=tls_options(certs))
    ex = exim_peer(relay_to=t.port, transport_extra="hosts_require_tls = *\ntls_verify_certificates =")
    ex.send("s@client.test", ["u@example.test"], BODY)
    t.wait_log(r"<= s@client\.test .* P=esmtps X=TLS", timeout=20)
