"""The smtp_out engine against a scripted server: pipelining, replies, failures, timeouts,
STARTTLS policies, STARTTLS injection, BDAT, connection reuse."""
import socket
import threading

from conftest import run_driver
from scripted import DROP, Scripted, Stall


def send(srv, *extra, rcpts=("a@x.test",), body_size=1000, timeouts="5,5,10"):
    args = ["--port", srv.port, "--mail", "s@y.test", "--timeouts", timeouts,
            "--body-size", body_size]
    for r in rcpts:
        args += ["--rcpt", r]
    return run_driver("so_drive", *args, *extra)


def gen_body(n):
    out = bytearray()
    for i in range(n):
        out += b"\r" if i % 64 == 62 else b"\n" if i % 64 == 63 else b"." if i % 64 == 0 \
            else bytes([ord("a") + i % 26])
    return bytes(out)


def stuffed(b):
    if not b.endswith(b"\r\n"):
        b += b"\r\n"
    lines = b.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def test_plain_delivery_with_pipelining():
    with Scripted() as srv:
        r = send(srv, rcpts=("a@x.test", "b@x.test"), body_size=6400)
        assert r.first("ready").startswith("ready exts=PIPELINING,SIZE,8BITMIME,SMTPUTF8,DSN,")
        assert "size=10485760" in r.first("ready")
        assert [l.split()[1:3] for l in r.all("reply")] == [
            ["MAIL", "250"], ["RCPT", "250"], ["RCPT", "250"], ["DATA", "354"], ["DOT", "250"]]
        s = srv.sessions[0]
        assert s.commands[:5] == ["EHLO client.test", "MAIL FROM:<s@y.test> SIZE=6400",
                                  "RCPT TO:<a@x.test>", "RCPT TO:<b@x.test>", "DATA"]
        assert s.messages[0] == stuffed(gen_body(6400))
        assert s.commands[-1] == "QUIT"
        assert "done ready=yes" in r.lines


def test_pipelined_commands_arrive_in_one_write():
    """With PIPELINING, MAIL, RCPTs and DATA reach the server before it answers anything."""
    seen = []
    with Scripted(replies={"MAIL": Stall(0.3, "250 ok")}) as srv:
        orig = srv._cmd_mail

        def mail(conn, s, buf, text):
            seen.append(bytes(buf))
            return orig(conn, s, buf, text)
        srv._cmd_mail = mail
        r = send(srv, rcpts=("a@x.test", "b@x.test"))
        assert r.first("done")
    assert b"RCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n" in seen[0]


def test_without_pipelining_one_at_a_time():
    seen = []
    with Scripted(ehlo=["SIZE 1000000", "8BITMIME"]) as srv:
        orig = srv._cmd_mail

        def mail(conn, s, buf, text):
            seen.append(bytes(buf))
            return orig(conn, s, buf, text)
        srv._cmd_mail = mail
        r = send(srv, rcpts=("a@x.test", "b@x.test"))
        assert r.first("done")
        assert srv.sessions[0].messages[0] == stuffed(gen_body(1000))
    assert seen == [b""]


def test_multiline_replies_and_rcpt_refusals():
    with Scripted(replies={"RCPT": {"bad@x.test": "550-5.1.1 no such\n550-5.1.1 user\n550 5.1.1 here",
                                    "*": "250 2.1.5 ok"}}) as srv:
        r = send(srv, rcpts=("bad@x.test", "a@x.test"))
        assert "reply RCPT 550 5.1.1 no such\nuser\nhere\nreply RCPT 250 2.1.5 ok\n" in r.out
        assert r.first("done")


def test_helo_fallback_when_ehlo_refused():
    with Scripted(replies={"EHLO": "502 5.5.1 no EHLO here"}) as srv:
        r = send(srv)
        assert r.first("ready").startswith("ready exts= size=0")
        assert srv.sessions[0].commands[:2] == ["EHLO client.test", "HELO client.test"]
        assert srv.sessions[0].commands[2] == "MAIL FROM:<s@y.test>"
        assert r.first("done")


def test_greeting_554_and_421():
    for banner, code in (("554 5.7.1 go away", 554), ("421 4.3.2 busy", 421)):
        with Scripted(banner=banner) as srv:
            r = send(srv)
            assert r.first("failed").startswith(f"failed GREETING {code} SMTP error from remote "
                                                "mail server after initial connection")


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run_driver("so_drive", "--port", port, "--mail", "s@y.test", "--rcpt", "a@x.test")
    assert r.first("failed") == "failed CONNECT - Connection refused"


def test_421_mid_transaction():
    with Scripted(replies={"RCPT": ["250 ok", "421 4.3.0 shutting down"]}) as srv:
        r = send(srv, rcpts=("a@x.test", "b@x.test"))
        assert "reply RCPT 421 4.3.0 shutting down" in r.lines
        f = r.first("failed")
        assert f.startswith("failed LOST 421 connection closed by remote host after 421 reply to RCPT")
        assert r.first("done") is None


def test_drop_mid_data():
    with Scripted(drop_after_data=100000) as srv:
        r = send(srv, body_size=1000000)
        f = r.first("failed")
        assert f.startswith("failed LOST"), r
        assert r.first("done") is None


def test_stall_gives_timeout():
    with Scripted(replies={"RCPT": Stall(4)}) as srv:
        r = send(srv, timeouts="5,1,5")
        assert r.first("failed") == "failed TIMEOUT - timed out waiting for reply to RCPT"


def test_stall_at_dot_uses_data_timeout():
    with Scripted(replies={"DOT": Stall(3)}) as srv:
        r = send(srv, timeouts="5,1,2")
        assert r.first("failed") == "failed TIMEOUT - timed out waiting for reply to end of data"


def test_greeting_timeout():
    with Scripted(banner=Stall(3)) as srv:
        r = send(srv, timeouts="5,1,5")
        assert r.first("failed") == "failed TIMEOUT - timed out waiting for greeting"


def test_hostile_reply_is_protocol_error():
    for bad in (b"250 ok\r\n2x0 bad\r\n", b"250-a\r\n354 b\r\n", b"99 nope\r\n",
                b"250 " + b"x" * 5000 + b"\r\n"):
        with Scripted(replies={"MAIL": bad}) as srv:
            r = send(srv)
            assert r.first("failed").startswith(("failed PROTOCOL", "failed TIMEOUT")), (bad, r)


def test_data_refused_then_dot_gets_refusal():
    with Scripted(replies={"DATA": "554 5.5.1 no valid recipients"}) as srv:
        r = send(srv)
        assert "reply DATA 554 5.5.1 no valid recipients" in r.lines
        assert "reply DOT 554 5.5.1 no valid recipients" in r.lines
        assert r.first("done")


def test_several_messages_on_one_connection():
    with Scripted() as srv:
        r = send(srv, "--messages", 3)
        assert len(r.all("reply")) == 3 * 4
        assert len(srv.sessions) == 1 and len(srv.sessions[0].messages) == 3


def test_dsn_8bit_smtputf8_parameters():
    with Scripted() as srv:
        send(srv, "--dsn", "--8bit", "--smtputf8")
        c = srv.sessions[0].commands
        assert c[1] == "MAIL FROM:<s@y.test> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc+2Bdef"
        assert c[2] == "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y"
    with Scripted(ehlo=["PIPELINING"]) as srv:
        send(srv, "--dsn", "--8bit", "--smtputf8")
        c = srv.sessions[0].commands
        assert c[1] == "MAIL FROM:<s@y.test>" and c[2] == "RCPT TO:<a@x.test>"


def test_bdat_chunks():
    with Scripted(ehlo=["PIPELINING", "CHUNKING"]) as srv:
        r = send(srv, "--bdat", 4000, body_size=10000)
        assert [l.split()[1] for l in r.all("reply")] == ["MAIL", "RCPT", "BDAT", "BDAT", "BDAT"]
        assert srv.sessions[0].messages[0] == gen_body(10000)
        assert "BDAT 2000 LAST" in srv.sessions[0].commands


def test_large_body_back_pressure():
    with Scripted() as srv:
        r = send(srv, body_size=5_000_000, timeouts="5,5,30")
        assert r.first("done"), r
        assert srv.sessions[0].messages[0] == stuffed(gen_body(5_000_000))
        assert r.all("drained")


def test_free_inside_reply_callback():
    with Scripted() as srv:
        r = send(srv, "--free-on-reply", "RCPT", rcpts=("a@x.test", "b@x.test"))
        assert "freeing" in r.lines and r.first("failed") is None and "exit" in r.lines


# ---- STARTTLS -------------------------------------------------------------------------------

def tls_send(srv, policy, certs, *extra, name="mx.test"):
    args = ["--tls", policy, "--ca", certs.ca]
    if name:
        args += ["--name", name]
    return send(srv, *args, *extra)


def test_starttls_may_uses_tls(certs):
    with Scripted(tls=certs.mx) as srv:
        r = tls_send(srv, "may", certs)
        ready = r.first("ready")
        assert "tls=TLS1.3:TLS_AES_256_GCM_SHA384:256" in ready and "verified=yes" in ready, r
        s = srv.sessions[0]
        assert s.tls and s.commands[:3] == ["EHLO client.test", "STARTTLS", "EHLO client.test"]
        assert s.sni == "mx.test"
        assert r.first("done")


def test_starttls_may_without_offer_goes_clear(certs):
    with Scripted() as srv:
        r = tls_send(srv, "may", certs)
        assert "tls=none" in r.first("ready") and r.first("done")


def test_starttls_may_refused_goes_clear(certs):
    with Scripted(tls=certs.mx, replies={"STARTTLS": "454 4.7.0 not now"}) as srv:
        r = tls_send(srv, "may", certs)
        assert "tls=none" in r.first("ready") and r.first("done")
        assert "STARTTLS refused" in r.err


def test_starttls_may_handshake_failure_retries_in_clear(certs):
    """A server whose TLS is broken: the engine reconnects and delivers in clear."""
    with Scripted(tls=certs.mx) as srv:
        def broken(conn, s, buf, text):
            conn.sendall(b"220 go\r\n")
            conn.recv(1024)  # the ClientHello
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: handshake failure
            return False
        srv._cmd_starttls = broken
        r = tls_send(srv, "may", certs)
        assert "fellback=yes" in r.first("ready"), r
        assert "TLS error on connection" in r.err and "retrying in clear" in r.err
        assert len(srv.sessions) == 2 and "STARTTLS" not in srv.sessions[1].commands
        assert r.first("done")


def test_starttls_encrypt_required_not_offered(certs):
    with Scripted() as srv:
        r = tls_send(srv, "encrypt", certs)
        assert r.first("failed").startswith("failed TLS - TLS is required but the server does "
                                            "not offer STARTTLS")
        assert "MAIL" not in " ".join(srv.sessions[0].commands)


def test_starttls_encrypt_accepts_untrusted_cert(certs):
    with Scripted(tls=certs.untrusted) as srv:
        r = tls_send(srv, "encrypt", certs)
        assert "verified=no" in r.first("ready") and r.first("done")


def test_starttls_verify_good_and_bad(certs):
    with Scripted(tls=certs.mx) as srv:
        r = tls_send(srv, "verify", certs)
        assert "verified=yes" in r.first("ready") and r.first("done")
    with Scripted(tls=certs.untrusted) as srv:
        r = tls_send(srv, "verify", certs)
        assert r.first("failed").startswith("failed TLS - TLS session failure: certificate "
                                            "verification failed"), r
        assert not any(c.startswith("MAIL") for c in srv.sessions[0].commands)
    with Scripted(tls=certs.other) as srv:  # trusted, wrong name
        r = tls_send(srv, "verify", certs)
        assert "failed TLS" in r.first("failed") and "hostname mismatch" in r.first("failed"), r


def test_starttls_verify_ip_literal(certs):
    with Scripted(tls=certs.mx) as srv:
        r = tls_send(srv, "verify", certs, "--literal", name=None)
        assert "verified=yes" in r.first("ready"), r
        assert srv.sessions[0].sni is None
    with Scripted(tls=certs.other) as srv:
        r = tls_send(srv, "verify", certs, "--literal", name=None)
        assert "failed TLS" in r.first("failed")


def test_starttls_injection_is_refused(certs):
    with Scripted(tls=certs.mx, inject=b"250 injected\r\n") as srv:
        r = tls_send(srv, "may", certs)
        assert r.first("failed").startswith("failed PROTOCOL 220 unexpected data after the reply "
                                            "to STARTTLS"), r


def test_starttls_injection_in_a_later_packet_never_reaches_smtp(certs):
    """Bytes after the 220 that arrive separately go into the handshake and break it."""
    with Scripted(tls=certs.mx) as srv:
        def late(conn, s, buf, text):
            conn.sendall(b"220 go ahead\r\n")
            import time
            time.sleep(0.2)
            conn.sendall(b"250 injected\r\n")
            time.sleep(0.5)
            return False
        srv._cmd_starttls = late
        r = tls_send(srv, "verify", certs)
        assert r.first("failed").startswith("failed TLS - TLS session failure"), r
        assert "injected" not in r.out


def test_starttls_required_refused(certs):
    with Scripted(tls=certs.mx, replies={"STARTTLS": "454 4.7.0 not now"}) as srv:
        r = tls_send(srv, "verify", certs)
        assert r.first("failed").startswith("failed TLS 454")
