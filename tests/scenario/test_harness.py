"""Self-tests of the scenario harness: each helper is proven against smtplib, dnslib's client,
openssl, swaks, Postfix's tools or Exim before tandem's own tests rely on it.  Nothing here
needs build/tandem except test_tandem_smoke (marked needs_tandem: it fails while the binary
cannot serve).
"""
import os
import re
import signal
import socket
import smtplib
import ssl
import subprocess
import sys
import threading
import time

import pytest
from dnslib import RCODE, DNSRecord

from harness import (DROP, GARBAGE, MSGID, RESET, SmtpConn, SmtpError, SmtpTimeout, dot_stuff,
                     free_port, have_swaks, pipelined, relay_config, seq, smtp_source, stall,
                     swaks, swaks_has_tls)

BODY = b"Subject: harness\r\nFrom: <a@client.test>\r\n\r\nline one\r\n.leading dot\r\nend\r\n"


def smtp(hop, **kwargs):
    return smtplib.SMTP(hop.host, hop.port, local_hostname="client.test", timeout=10, **kwargs)


# -- NextHop with smtplib -----------------------------------------------------------------
def test_nexthop_accepts_and_records_bytes(nexthop):
    hop = nexthop()
    with smtp(hop) as s:
        assert s.sendmail("a@client.test", ["b@example.test"], BODY) == {}
    hop.wait_idle()
    [msg] = hop.accepted
    assert (msg.mail_from, msg.rcpts, msg.via) == ("a@client.test", ["b@example.test"], "DATA")
    assert msg.data == BODY
    assert msg.raw == BODY.replace(b"\r\n.leading", b"\r\n..leading") + b".\r\n"
    assert msg.header("Subject") == "harness"
    session = hop.sessions[0]
    assert session.helo == "client.test" and session.ended_by == "QUIT"
    assert session.commands[0] == "ehlo client.test"
    assert hop.connections == 1 and hop.violations() == []


def test_nexthop_refuses_one_recipient(nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    with smtp(hop) as s:
        refused = s.sendmail("a@client.test", ["ok@example.test", "bad@example.test"], BODY)
    assert refused == {"bad@example.test": (550, b"5.1.1 no such user")}
    hop.wait_accepted(1)
    assert hop.accepted[0].rcpts == ["ok@example.test"]
    assert [(a, c) for a, _, c in hop.sessions[0].rcpts] == [("ok@example.test", 250),
                                                             ("bad@example.test", 550)]


def test_nexthop_domain_and_default_recipient_rules(nexthop):
    hop = nexthop(rcpt={"@deny.test": "550 5.7.1 domain", "*": "451 4.3.0 later",
                        "vip@deny.test": "250 2.1.5 vip"})
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<>")
        assert c.cmd("RCPT TO:<x@deny.test>")[0] == 550
        assert c.cmd("RCPT TO:<VIP@deny.test>")[0] == 250
        assert c.cmd("RCPT TO:<x@other.test>")[0] == 451


def test_nexthop_multiline_replies(nexthop):
    hop = nexthop(rcpt="451-4.3.0 first line\n451 4.3.0 second line",
                  mail="250 2.1.0 ok\nsecond\nthird")
    with SmtpConn(hop.port, hop.host) as c:
        assert c.banner == (220, ["nexthop.test ESMTP NextHop"])
        assert "PIPELINING" in c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.test>") == (250, ["2.1.0 ok", "second", "third"])
        assert c.cmd("RCPT TO:<b@example.test>") == (451, ["4.3.0 first line",
                                                          "4.3.0 second line"])


def test_nexthop_drops_mid_data(nexthop):
    hop = nexthop(drop_after={"DATA": 100})
    with pytest.raises(smtplib.SMTPServerDisconnected), smtp(hop) as s:
        s.sendmail("a@client.test", ["b@example.test"], b"x" * 5000 + b"\r\n")
    hop.wait_idle()
    [msg] = hop.messages
    assert not msg.complete and msg.raw == b"x" * 100 and msg.reply is None
    assert hop.sessions[0].ended_by == "drop" and hop.accepted == []


def test_nexthop_drops_right_after_354(nexthop):
    hop = nexthop(drop_after={"DATA": 0})
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        pipelined(c, ["MAIL FROM:<a@client.test>", "RCPT TO:<b@example.test>"])
        c.expect(354, "DATA")
        c.assert_closed()
    hop.wait_idle()
    assert hop.messages[0].raw == b"" and hop.sessions[0].ended_by == "drop"


def test_nexthop_drop_at_final_dot_and_reset(nexthop):
    hop = nexthop(dot=DROP)
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        pipelined(c, ["MAIL FROM:<a@client.test>", "RCPT TO:<b@example.test>"])
        c.expect(354, "DATA")
        c.send(dot_stuff(BODY))
        c.assert_closed()
    hop.wait_idle()
    assert hop.received[0].data == BODY and hop.received[0].reply is None
    rst = nexthop(mail=RESET)
    with SmtpConn(rst.port, rst.host) as c:
        c.ehlo()
        c.send("MAIL FROM:<a@client.test>\r\n")
        with pytest.raises(SmtpError, match="connection (error|closed)"):
            c.reply()


def test_nexthop_stalls(nexthop):
    hop = nexthop(stall={"RCPT": 0.6})
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@client.test>")
        started = time.monotonic()
        c.send("RCPT TO:<b@example.test>\r\n")
        with pytest.raises(SmtpTimeout):
            c.reply(timeout=0.2)
        assert c.reply()[0] == 250
        assert time.monotonic() - started >= 0.55
    slow = nexthop(dot=stall(0.3, "452 4.3.1 slow and full"))
    with smtp(slow) as s, pytest.raises(smtplib.SMTPDataError) as err:
        s.sendmail("a@client.test", ["b@example.test"], BODY)
    assert err.value.smtp_code == 452


def test_nexthop_sequence_across_connections(nexthop):
    hop = nexthop(mail=seq("451 4.3.0 first attempt deferred", "250 2.1.0 ok"))
    for expected in (451, 250, 250):
        with SmtpConn(hop.port, hop.host) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<a@client.test>")[0] == expected
            c.quit()
    hop.wait_idle()
    assert [s.ended_by for s in hop.sessions] == ["QUIT"] * 3


def test_nexthop_set_changes_script(nexthop):
    hop = nexthop(rcpt="550 5.1.1 nobody")
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<>")
        c.expect(550, "RCPT TO:<b@example.test>")
        hop.set(rcpt=lambda session, arg: f"250 2.1.5 ok {arg}")
        assert c.cmd("RCPT TO:<b@example.test>") == (250, ["2.1.5 ok TO:<b@example.test>"])


def test_nexthop_extensions_and_bdat(nexthop):
    hop = nexthop(advertise={"CHUNKING": True, "PIPELINING": False, "SIZE": "1000"})
    with SmtpConn(hop.port, hop.host) as c:
        ext = c.ehlo()
        assert "CHUNKING" in ext and "PIPELINING" not in ext and ext["SIZE"] == "1000"
        c.expect(250, "MAIL FROM:<a@client.test>")
        c.expect(250, "RCPT TO:<b@example.test>")
        c.send(b"BDAT 6\r\nhello\n")
        c.expect(250)
        c.send(b"BDAT 3 LAST\r\n.x\r")
        assert c.reply()[1][0].startswith("2.0.0 OK queued as")
    hop.wait_accepted(1)
    msg = hop.accepted[0]
    assert (msg.via, msg.data, msg.chunks) == ("BDAT", b"hello\n.x\r", [6, 3])
    only = nexthop(extensions=["8BITMIME"])
    with SmtpConn(only.port, only.host) as c:
        assert c.ehlo() == {"8BITMIME": ""}


def test_nexthop_notes_client_violations(nexthop):
    hop = nexthop(advertise={"PIPELINING": False, "SMTPUTF8": False})
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        pipelined(c, ["MAIL FROM:<a@client.test> SMTPUTF8", "RCPT TO:<b@example.test>"])
        c.send(b"DATA\r\n" + dot_stuff(b"bare\nnewline\r\n"))
        c.replies(2)
    hop.wait_idle()
    text = "\n".join(hop.violations())
    for expected in ("pipelined without PIPELINING", "SMTPUTF8 not advertised",
                     "data sent before the 354", "bare CR or LF in DATA"):
        assert expected in text


def test_nexthop_hostile_replies_fail_strict_client(nexthop):
    for name in ("nul", "bare_cr", "bare_lf", "overlong", "code_change", "no_space"):
        hop = nexthop(banner=GARBAGE[name])
        with pytest.raises(SmtpError):
            with SmtpConn(hop.port, hop.host, timeout=2):
                pass


def test_nexthop_hostile_starttls_and_banner_drop(nexthop, certs):
    hop = nexthop(tls=(certs.nexthop_cert, certs.nexthop_key),
                  starttls=GARBAGE["starttls_inject"])
    with SmtpConn(hop.port, hop.host) as c:
        c.ehlo()
        with pytest.raises(SmtpError, match="bytes after the 220 to STARTTLS"):
            c.starttls()
    silent = nexthop(drop={"banner"})
    with SmtpConn(silent.port, silent.host, banner=False) as c:
        c.assert_closed()
    silent.wait_idle()
    assert silent.sessions[0].ended_by == "drop"
    with pytest.raises(ValueError):
        nexthop(drop_after={"RCPT": 1})


def test_nexthop_many_concurrent_sessions(nexthop):
    hop = nexthop(stall={"MAIL": 0.2})
    errors = []

    def client(i):
        try:
            with smtp(hop) as s:
                s.sendmail(f"s{i}@client.test", [f"r{i}@example.test"], BODY)
        except Exception as exc:          # collected and reported below
            errors.append(exc)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert time.monotonic() - started < 5, "sessions were not served concurrently"
    hop.wait_accepted(60)
    assert hop.connections == 60
    assert sorted(m.mail_from for m in hop.accepted) == sorted(f"s{i}@client.test" for i in range(60))


def test_nexthops_share_one_port(nexthop):
    port = free_port("127.0.0.2", "127.0.0.3")
    hops = [nexthop(host=h, port=port, banner=f"220 {h}") for h in ("127.0.0.2", "127.0.0.3")]
    for hop in hops:
        with SmtpConn(port, hop.host) as c:
            assert c.banner == (220, [hop.host])
    assert [h.connections for h in hops] == [1, 1]


# -- TLS ----------------------------------------------------------------------------------
def test_nexthop_starttls_with_test_ca(nexthop, certs):
    hop = nexthop(tls=(certs.nexthop_cert, certs.nexthop_key))
    ctx = ssl.create_default_context(cafile=certs.ca)
    with SmtpConn(hop.port, hop.host) as c:
        assert "STARTTLS" in c.ehlo()
        c.starttls(context=ctx, server_hostname="mx1.example.test")
        assert "STARTTLS" not in c.ehlo()
        assert c.send_mail("a@client.test", "b@example.test", BODY)["final"][0] == 250
    hop.wait_accepted(1)
    session = hop.sessions[0]
    assert session.tls and session.sni == "mx1.example.test"
    assert session.tls_version in ("TLSv1.2", "TLSv1.3")
    with smtp(hop) as s:                  # smtplib too, verifying the IP address
        s.starttls(context=ssl.create_default_context(cafile=certs.ca))
        assert s.noop()[0] == 250


def test_untrusted_certificate_is_refused(nexthop, certs):
    hop = nexthop(tls=(certs.untrusted_cert, certs.untrusted_key))
    with smtp(hop) as s, pytest.raises(ssl.SSLCertVerificationError):
        s.starttls(context=ssl.create_default_context(cafile=certs.ca))


def test_certificates_chain_to_the_test_ca(certs):
    def verify(cert):
        return subprocess.run(["openssl", "verify", "-CAfile", certs.ca, cert],
                              capture_output=True, text=True).returncode
    assert verify(certs.server_cert) == 0 and verify(certs.nexthop_cert) == 0
    assert verify(certs.untrusted_cert) != 0
    extra, key = certs.issue("extra", ["extra.test", "IP:127.0.0.42"])
    assert verify(extra) == 0
    sans = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", extra],
                          capture_output=True, text=True).stdout
    assert "DNS:extra.test" in sans and "IP Address:127.0.0.42" in sans


# -- DNS ----------------------------------------------------------------------------------
def ask(server, name, qtype, tcp=False):
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", server.port,
                                                                tcp=tcp, timeout=2))


def test_dns_answers_mx_a_txt(dns):
    server = dns({"example.test": {"MX": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
                  "mx1.example.test": {"A": "127.0.0.2", "AAAA": "::1"},
                  "txt.test": {"TXT": "v=spf1 -all"}})
    mx = ask(server, "example.test", "MX")
    assert sorted((r.rdata.preference, str(r.rdata.label)) for r in mx.rr) == \
        [(10, "mx1.example.test."), (20, "mx2.example.test.")]
    assert [str(r.rdata) for r in ask(server, "MX1.example.test", "A", tcp=True).rr] == ["127.0.0.2"]
    assert [str(r.rdata) for r in ask(server, "mx1.example.test", "AAAA").rr] == ["::1"]
    assert "v=spf1 -all" in str(ask(server, "txt.test", "TXT").rr[0].rdata)
    nodata = ask(server, "txt.test", "MX")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and nodata.auth
    assert ("example.test", "MX", "udp") in server.queries
    assert server.queried("mx1.example.test", "A") == [("mx1.example.test", "A", "tcp")]


def test_dns_null_mx_and_zone_text(dns):
    server = dns("nullmx.test. 0 IN MX 0 .\nhost.test. 0 IN A 127.0.0.7\n")
    [rr] = ask(server, "nullmx.test", "MX").rr
    assert rr.rdata.preference == 0 and str(rr.rdata.label) == "."
    server.add("later.test", "A", "127.0.0.8")
    assert str(ask(server, "later.test", "A").rr[0].rdata) == "127.0.0.8"
    server.remove("later.test")
    assert ask(server, "later.test", "A").header.rcode == RCODE.NXDOMAIN


def test_dns_scripted_failures(dns):
    server = dns({"ok.test": {"A": "127.0.0.2"}, "gone.test": {"A": "127.0.0.3"}},
                 servfail=["broken.test"], nxdomain=["gone.test"], timeout=[("ok.test", "MX")])
    assert ask(server, "broken.test", "MX").header.rcode == RCODE.SERVFAIL
    assert ask(server, "gone.test", "A").header.rcode == RCODE.NXDOMAIN
    assert ask(server, "nothing.test", "A").header.rcode == RCODE.NXDOMAIN
    assert ask(server, "ok.test", "A").header.rcode == RCODE.NOERROR
    with pytest.raises(socket.timeout):
        DNSRecord.question("ok.test", "MX").send("127.0.0.1", server.port, timeout=0.5)
    server.servfail.add("ok.test")
    assert ask(server, "ok.test", "A").header.rcode == RCODE.SERVFAIL
    assert server.queried("ok.test", "MX")


# -- interop peers ------------------------------------------------------------------------
needs_swaks = pytest.mark.skipif(not have_swaks(), reason="swaks not installed")


@needs_swaks
def test_swaks_to_nexthop(nexthop):
    hop = nexthop(rcpt={"bad@example.test": "550 5.1.1 no such user"})
    ok = swaks(hop.port, host=hop.host, to="b@example.test", args=["--pipeline"])
    assert ok.ok, ok
    assert ok.replies[-1].startswith("221")
    bad = swaks(hop.port, host=hop.host, to="bad@example.test")
    assert not bad.ok and any(r.startswith("550 5.1.1") for r in bad.replies)
    hop.wait_idle()
    assert len(hop.accepted) == 1 and hop.accepted[0].rcpts == ["b@example.test"]


def test_smtp_source_to_smtp_sink(smtp_sink):
    sink = smtp_sink()
    rc, out, err = smtp_source(sink.port, count=100, sessions=5, to="u@example.test")
    assert rc == 0, err
    sink.wait_count(100)
    assert sink.count() == 100
    assert b"X-Rcpt-Args: <u@example.test>" in sink.messages()[0]


def test_smtp_source_to_nexthop(nexthop, smtp_sink):
    hop = nexthop()
    rc, out, err = smtp_source(hop.port, host=hop.host, count=200, sessions=10, reuse=True,
                               size=2000)
    assert rc == 0, err
    hop.wait_accepted(200)
    assert hop.connections == 10 and hop.violations() == []
    assert all(m.size > 2000 for m in hop.accepted)


@needs_swaks
def test_swaks_to_exim_peer(exim_peer):
    exim = exim_peer(domains="example.test")
    result = swaks(exim.port, to="b@example.test", args=["--body", "hello exim"])
    assert result.ok, result
    [msg] = exim.wait_messages(1)
    assert b"Envelope-to: b@example.test" in msg and b"hello exim" in msg
    refused = swaks(exim.port, to="b@elsewhere.test")
    assert not refused.ok and any("relay not permitted" in r for r in refused.replies)


@pytest.mark.skipif(not swaks_has_tls(), reason="swaks without TLS (libnet-ssleay-perl)")
def test_exim_peer_offers_starttls(exim_peer, certs):
    exim = exim_peer(tls=(certs.nexthop_cert, certs.nexthop_key))
    result = swaks(exim.port, to="b@example.test", args=["--tls", "--tls-verify", "--tls-ca-path",
                                                          certs.ca, "--tls-sni", "mx1.test"])
    assert result.ok, result
    assert "TLS started" in result.transcript
    exim.wait_log(r"<= sender@client\.test .* X=TLS")


def test_exim_peer_relays_to_nexthop(exim_peer, nexthop):
    hop = nexthop(host="127.0.0.1")
    exim = exim_peer(relay_to=hop.port)
    assert exim.send("a@client.test", ["b@example.test"], BODY) == {}
    [msg] = hop.wait_accepted(1)
    assert msg.rcpts == ["b@example.test"] and msg.data.endswith(BODY.split(b"\r\n\r\n", 1)[1])
    assert hop.violations() == []


# -- the daemon fixture, with a stand-in binary --------------------------------------------
def test_relay_config_text(nexthop):
    hop = nexthop()
    text = relay_config(hop, cutthrough=True, callout="10s,defer_ok", defer="pass",
                        route_options="tls=none", acl="accept hosts = 127.0.0.9")
    assert f"+relay_to_domains  {hop.route}  tls=none\n" in text
    assert text.index("accept hosts = 127.0.0.9") < text.index("deny    message = relay")
    assert "  require verify = recipient/callout=10s,defer_ok\n" in text
    assert text.endswith("  accept  control = cutthrough_delivery/defer=pass\n")
    assert "callout" not in relay_config("mx") and relay_config("mx").endswith("  accept\n")



def test_daemon_fixture_lifecycle(fake_tandem):
    t = fake_tandem("workers = 3\nbegin routes\n*  mx\n", options={"remote_port": "2526"})
    assert t.config_text.count("workers") == 1 and "workers = 3" in t.config_text
    assert f"listen = 127.0.0.1:{t.port}" in t.config_text and "remote_port = 2526" in t.config_text
    with t.connect() as c:
        assert c.banner[0] == 220
        c.ehlo()
        final = c.send_mail("a@client.test", ["b@example.test"], BODY)["final"]
        assert final[0] == 250
    m = t.wait_log(r"^\S+ \S+ (\S+) <= a@client\.test")
    assert MSGID.match(m.group(1)) and t.spool_ids() == [m.group(1)]
    assert t.run(["queue", "list", "--count"]) == (0, "1\n", "")
    port, pid = t.port, t.pid
    t.kill9()
    assert not t.running()
    t.restart()
    assert t.port == port and t.pid != pid and t.running()
    assert t.stop() == 0 and not t.killed_hard


def test_daemon_fixture_paniclog_check(fake_tandem):
    t = fake_tandem(expect_panic=True)
    with t.connect() as c:
        c.ehlo()
        c.send_mail("a@client.test", ["b@example.test"], b"PANIC\r\n")
    t.wait_log("fake panic", log="paniclog")
    t.expect_panic = False
    with pytest.raises(AssertionError, match="paniclog is not empty"):
        t.check_teardown()
    t.expect_panic = True


def test_daemon_fixture_counts_panics(fake_tandem):
    """expect_panic accounts for so many lines: a second panic fails the test."""
    t = fake_tandem(expect_panic=True)
    for _ in range(2):
        with t.connect() as c:
            c.ehlo()
            c.send_mail("a@client.test", ["b@example.test"], b"PANIC\r\n")
    t.wait_log("fake panic", log="paniclog", count=2)
    with pytest.raises(AssertionError, match=r"unexpected panic\(s\) beyond expect_panic=True"):
        t.check_teardown()
    t.expect_panic = [r"fake panic requested", r"no such line"]
    with pytest.raises(AssertionError, match="unexpected panic"):
        t.check_teardown()
    t.expect_panic = 2
    t.check_teardown()
    t.expect_panic = [r"fake panic requested"] * 2
    t.check_teardown()


def test_daemon_fixture_fails_on_crash_or_hang_at_shutdown(fake_tandem):
    """stop() notes a non-zero exit on SIGTERM, a hang past it (SIGKILL), and a daemon that
    died by itself; the fixture's teardown fails the test on each."""
    cases = [({"fake_sigterm": "3"}, r"exited with status 3 on SIGTERM"),
             ({"fake_sigterm": "ignore"}, r"hung at shutdown: still running 0.5s after SIGTERM"),
             ({}, r"died before stop\(\) with status -9 \(signal 9\)")]
    for options, problem in cases:
        t = fake_tandem(options=options)
        if not options:
            os.kill(t.pid, signal.SIGKILL)            # a crash the test did not ask for
            t.proc.wait(5)
        t.stop(timeout=0.5)
        with pytest.raises(AssertionError, match=problem):
            t.check_teardown()
        t.shutdown_problems.clear()                   # seen; let the fixture pass
    t = fake_tandem()
    t.kill9()                                         # on purpose: no problem
    t.restart()
    assert t.stop() == 0 and t.shutdown_problems == []


def test_daemon_fixture_reports_startup_failure(fake_tandem):
    with pytest.raises(AssertionError, match="exited during startup"):
        fake_tandem(options={"listen": "256.0.0.1:1"})


def test_wait_log_times_out_with_context(fake_tandem):
    t = fake_tandem()
    with pytest.raises(AssertionError, match="(?s)never-logged.*mainlog.*daemon started"):
        t.wait_log("never-logged", timeout=0.2)


@pytest.mark.needs_tandem
def test_tandem_smoke(tandem):
    """The real daemon starts under the fixture, greets and answers EHLO and QUIT."""
    t = tandem()
    with t.connect() as c:
        assert c.banner[0] == 220
        c.ehlo()
        c.quit()


USAGE_ONLY = """#!/bin/sh
echo "usage: tandem serve [-c FILE] [--foreground]" >&2
exit 64
"""


def test_broken_daemon_fails_the_run(tmp_path):
    """A tandem that only prints its usage (exit 64) makes needs_tandem tests FAIL, naming
    why, in a pytest run of their own; it never turns them into skips."""
    fake = tmp_path / "usage-only-tandem"
    fake.write_text(USAGE_ONLY)
    fake.chmod(0o755)
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        f"{here}/test_harness.py::test_tandem_smoke"],
                       cwd=here, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TANDEM_BIN": str(fake)})
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert re.search(r"1 (failed|error)", out) and "skipped" not in out, out
    assert f"the daemon under test is broken: {fake} cannot serve" in out, out
    assert "exited with status 64 saying ['usage: tandem serve" in out, out


SKIPPING = """import pytest

@pytest.mark.skipif(True, reason="no IPv6 loopback here")
def test_allowed():
    pass

def test_missing_tool():
    pytest.skip("frobnicator not installed")
"""


def test_skip_policy_fails_a_run_with_an_unlisted_skip(tmp_path):
    """tests/skip_policy.py (scripts/test loads it): an allow-listed skip passes, any other
    skip fails the run, and the summary lists both with their reasons."""
    (tmp_path / "test_skips.py").write_text(SKIPPING)
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(*args):
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "skip_policy",
                            "-p", "no:cacheprovider", "test_skips.py", *args],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": tests_dir})
        return p.returncode, p.stdout
    rc, out = run()
    assert rc == 1, out
    assert "2 skipped: 1 allowed, 1 NOT allowed" in out, out
    assert "NOT ALLOWED: test_skips.py::test_missing_tool: frobnicator not installed" in out
    assert "allowed (" in out and "test_skips.py::test_allowed: no IPv6 loopback here" in out
    rc, out = run("-k", "allowed and not missing")
    assert rc == 0 and "1 skipped: 1 allowed, 0 NOT allowed" in out, out
