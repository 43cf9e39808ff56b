"""smtp_receive_timeout bounds a whole command line, the idle time between commands and a
whole TLS handshake: a client trickling bytes is closed with 421 at the timeout, however
often it sends one; an honest slow client within the limit is still served (issue 18.2)."""
import socket
import ssl
import time

import pytest

from harness import SmtpConn, free_port, relay_config

TIMEOUT = 4                # seconds of smtp_receive_timeout
STEP = 0.5                 # a trickler sends one byte this often: never idle for long


def trickle_until_reply(c, data):
    """Send data one byte every STEP seconds, stopping as soon as the server says something;
    returns (bytes sent, the reply as raw bytes up to EOF)."""
    c.sock.setblocking(False)
    sent = 0
    got = b""
    for b in data:
        try:
            chunk = c.sock.recv(4096)
            if chunk:
                got += chunk
                break
        except BlockingIOError:
            pass
        try:
            c.sock.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        time.sleep(STEP)
    c.sock.settimeout(10)
    try:
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return sent, got


def timeout_options(**extra):
    opts = {"smtp_receive_timeout": f"{TIMEOUT}s", "smtp_max_errors": "100"}
    opts.update(extra)
    return opts


def test_trickled_ehlo_is_closed_at_the_timeout(tandem, nexthop):
    t = tandem(relay_config(nexthop()), options=timeout_options())
    c = t.connect()
    line = b"EHLO trickling-client.example.test\r\n"            # 36 bytes: 18 s at this pace
    sent, got = trickle_until_reply(c, line)
    assert got.startswith(b"421 4.4.2 "), got
    assert sent < len(line)                                   # cut off before it was complete
    t.wait_log(r"SMTP command timeout on connection from H=\[127\.0\.0\.1\] during init")


def test_trickled_command_is_closed_at_the_timeout(tandem, nexthop):
    t = tandem(relay_config(nexthop()), options=timeout_options())
    c = t.connect()
    c.ehlo("client.test")
    line = b"MAIL FROM:<someone-slow@client.example.test>\r\n"
    sent, got = trickle_until_reply(c, line)
    assert got.startswith(b"421 4.4.2 "), got
    assert sent < len(line)
    t.wait_log(r"SMTP command timeout on connection from H=\(client\.test\) \[127\.0\.0\.1\] "
               r"during ready")


def test_tricklers_do_not_hold_the_connection_slots(tandem, nexthop):
    """Eight tricklers against smtp_accept_max = 8: once the timeout has passed they are gone,
    and a new client gets its banner instead of 421 Too many concurrent SMTP connections."""
    t = tandem(relay_config(nexthop()), options=timeout_options(smtp_accept_max="8"))
    tricklers = [SmtpConn(t.port, source=f"127.0.1.{i + 1}") for i in range(8)]
    deadline = time.monotonic() + 4 * TIMEOUT
    closed = set()
    while len(closed) < 8 and time.monotonic() < deadline:
        for i, c in enumerate(tricklers):
            if i in closed:
                continue
            try:
                c.sock.send(b"N")                          # one byte of a NOOP that never ends
            except OSError:
                closed.add(i)
                continue
            c.sock.settimeout(0.01)
            try:
                if c.sock.recv(4096).startswith(b"421"):
                    closed.add(i)
            except (socket.timeout, ConnectionResetError):
                pass
        time.sleep(STEP)
    assert len(closed) == 8
    with t.connect() as c:                                  # banner 220, checked by connect
        c.ehlo()
        c.quit()


def clienthello():
    """The bytes of a real TLS ClientHello (Python's ssl, memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="tandem.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_trickled_starttls_handshake_is_closed_at_the_timeout(tandem, nexthop, certs):
    t = tandem(relay_config(nexthop()), options=timeout_options(
        tls_certificate=certs.server_cert, tls_privatekey=certs.server_key))
    c = t.connect()
    c.ehlo("client.test")
    c.expect(220, "STARTTLS")
    hello = clienthello()
    sent, got = trickle_until_reply(c, hello)
    assert got.startswith(b"421 4.4.2 "), got
    assert sent < len(hello)
    t.wait_log(r"TLS error on connection from H=\(client\.test\) \[127\.0\.0\.1\] \(SSL_accept\): "
               r"timed out after 4s \(smtp_receive_timeout\)")


def test_trickled_implicit_tls_handshake_is_closed_at_the_timeout(tandem, nexthop, certs):
    port = free_port("127.0.0.1")
    t = tandem(relay_config(nexthop()), options=timeout_options(
        tls_certificate=certs.server_cert, tls_privatekey=certs.server_key))
    t.restart(options=timeout_options(tls_certificate=certs.server_cert,
                                      tls_privatekey=certs.server_key,
                                      listen=f"127.0.0.1:{t.port} 127.0.0.1:{port}/tls"))
    c = SmtpConn(port, banner=False)
    hello = clienthello()
    sent, got = trickle_until_reply(c, hello)
    assert got.startswith(b"421 4.4.2 "), got
    assert sent < len(hello)
    t.wait_log(r"TLS error on connection from H=\[127\.0\.0\.1\] \(SSL_accept\): timed out")


def test_slow_but_honest_client_is_served(tandem, nexthop):
    """Every command line, with the wait before it, completes within the timeout, in pieces
    and with pauses, and the whole session lasts several times the timeout: the message goes
    through."""
    hop = nexthop()
    t = tandem(relay_config(hop), options=timeout_options())
    c = t.connect()

    def slowly(line):
        for piece in (line[:len(line) // 2], line[len(line) // 2:]):
            c.send(piece)
            time.sleep(TIMEOUT / 4)
        return c.reply()

    assert slowly(b"EHLO slow.client.test\r\n")[0] == 250
    assert slowly(b"MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert slowly(b"RCPT TO:<u@example.test>\r\n")[0] == 250
    time.sleep(TIMEOUT / 4)                 # idle: with the next line, less than the limit
    assert slowly(b"DATA\r\n")[0] == 354
    c.send(b"Subject: slow\r\n\r\nslow")
    time.sleep(TIMEOUT / 2)
    c.send(b" but honest\r\n.\r\n")
    assert c.reply()[0] == 250
    c.quit()
    [m] = hop.wait_accepted(1)
    assert m.data.endswith(b"slow but honest\r\n")
