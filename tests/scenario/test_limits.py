"""Limits from the configuration, each with its reply, and the session usable afterwards where
RFC 5321 says it should be (issue 2)."""
import socket
import time

from harness import SmtpConn, queued_relay

RELAY = queued_relay()


def test_overlong_command_gets_exactly_one_500(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 3000 + b"@b.test>\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[0].startswith("5.5.2")
        assert c.cmd("NOOP")[0] == 250               # exactly one reply, then usable
        c.send(b"X" * 5000)                          # in pieces, no line end yet
        time.sleep(0.2)
        c.send(b"Y" * 5000 + b"\r\nNOOP\r\n")
        assert c.reply()[0] == 500
        assert c.reply()[0] == 250
        c.quit()


def test_recipients_max(tandem):
    t = tandem(RELAY, options={"recipients_max": "3"})
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        for i in range(3):
            c.expect(250, f"RCPT TO:<r{i}@example.test>")
        code, lines = c.cmd("RCPT TO:<r4@example.test>")
        assert code == 452 and lines[0].startswith("4.5.3")
        assert c.data(b"Subject: x\r\n\r\nx\r\n")[0] == 250
        c.quit()


def test_accept_max_per_host(tandem):
    t = tandem(RELAY, options={"smtp_accept_max_per_host": "2"})
    a, b = t.connect(), t.connect()
    c = SmtpConn(t.port, banner=False)
    code, lines = c.reply()
    assert code == 421 and "4.7.0" in lines[0]
    c.assert_closed()
    d = SmtpConn(t.port, source="127.0.0.9")          # another client address is fine
    d.quit()
    a.quit()
    time.sleep(0.2)
    e = t.connect()                                   # a slot is free again
    e.quit()
    b.quit()
    t.wait_log(r"rejected connection: Too many concurrent SMTP connections from this IP", log="rejectlog")


def test_accept_max_total(tandem):
    t = tandem(RELAY, options={"smtp_accept_max": "2"})
    a = t.connect()
    b = SmtpConn(t.port, source="127.0.0.7")
    c = SmtpConn(t.port, source="127.0.0.8", banner=False)
    assert c.reply()[0] == 421
    c.assert_closed()
    a.quit()
    b.quit()


def test_command_timeout(tandem):
    t = tandem(RELAY, options={"smtp_receive_timeout": "1s"})
    with t.connect() as c:
        c.ehlo()
        code, lines = c.reply(timeout=5)
        assert code == 421 and lines[0].startswith("4.4.2")
        c.assert_closed()
    t.wait_log(r"SMTP command timeout on connection from H=\(client\.test\) \[127\.0\.0\.1\]")


def test_data_timeout(tandem):
    t = tandem(RELAY, options={"smtp_receive_timeout": "1s"})
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")
        c.expect(354, "DATA")
        c.send(b"Subject: slow\r\n\r\npart")
        assert c.reply(timeout=5)[0] == 421
        c.assert_closed()
    assert t.spool_ids() == []


def test_too_many_errors_closes(tandem):
    t = tandem(RELAY, options={"smtp_max_errors": "3"})
    with t.connect() as c:
        for _ in range(3):
            assert c.cmd("BOGUS")[0] == 500
        assert c.cmd("BOGUS")[0] == 500               # the fourth error is still answered,
        code, lines = c.reply()                       # then the session ends
        assert code == 421
        c.assert_closed()


def test_early_talker_before_banner(tandem):
    t = tandem(RELAY.replace("begin acl\n", "begin acl\ncheck_connect:\n  accept delay = 1s\n"),
               options={"acl_smtp_connect": "check_connect"})
    s = socket.create_connection(("127.0.0.1", t.port))
    s.sendall(b"EHLO eager.test\r\n")
    s.settimeout(5)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1000)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"554 5.5.0"), data
    assert s.recv(100) == b""
    t.wait_log(r"rejected connection: SMTP protocol synchronization error", log="rejectlog")
    with t.connect() as c:                          # a patient client is fine
        c.ehlo()
        c.quit()


def test_nul_and_control_characters_in_commands(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.send(b"EHLO a\x00b\r\n")
        assert c.reply()[0] == 500
        c.send(b"NOOP\x01\r\n")
        assert c.reply()[0] == 500
        c.ehlo()
        c.quit()


def _children_shmem_kb(pid):
    """Shared memory resident in the daemon's children (the workers map the connection
    tables there), in kB, from /proc."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(k) for k in f.read().split()]
    total = 0
    for k in kids:
        with open(f"/proc/{k}/status") as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith("RssShmem:"))
    return total


def _distinct_sources(n):
    """n distinct loopback addresses, none of them 127.0.0.x (the harness's own)."""
    out = []
    for i in range(n):
        out.append(f"127.{1 + i // 64516}.{1 + i // 254 % 254}.{1 + i % 254}")
    return out


def test_per_host_limit_holds_after_many_clients(tandem):
    """The per-address counts are freed when an address's last connection closes: after more
    client addresses than the old fixed table had slots (8,192), the per-host limit still
    holds, and the workers' shared memory for the table has not grown with them."""
    t = tandem(RELAY, options={"smtp_accept_max_per_host": "2"})
    for src in _distinct_sources(20):
        SmtpConn(t.port, source=src).sock.close()
    before = _children_shmem_kb(t.pid)
    sources = _distinct_sources(8300)
    for src in sources:
        c = SmtpConn(t.port, source=src)                # banner read: the session was counted
        c.sock.close()
    time.sleep(0.5)                                     # the last closes reach the worker
    after = _children_shmem_kb(t.pid)
    a = SmtpConn(t.port, source="127.250.0.1")
    b = SmtpConn(t.port, source="127.250.0.1")
    c = SmtpConn(t.port, source="127.250.0.1", banner=False)
    code, lines = c.reply()
    assert code == 421 and "from this IP address" in lines[0]
    c.assert_closed()
    assert after - before < 16, (before, after)         # kB: no page per past client
    for src in sources[-3:]:                            # a past client is an ordinary one
        SmtpConn(t.port, source=src).quit()
    a.quit()
    b.quit()
    t.wait_log(r"H=\[127\.250\.0\.1\] rejected connection: Too many concurrent SMTP "
               r"connections from this IP address", log="rejectlog")
