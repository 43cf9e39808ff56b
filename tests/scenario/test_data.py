"""DATA that a relay can trust: strict end of data, bare CR/LF, dot-unstuffing, trace and
missing headers, loops, NUL bytes, size limit, BDAT (issue 2)."""
import re

import pytest

from harness import SmtpConn, read_spool, queued_relay

RELAY = queued_relay()


def start_txn(c, rcpts=("x@example.test",)):
    c.ehlo()
    c.expect(250, "MAIL FROM:<a@b.test>")
    for r in rcpts:
        c.expect(250, f"RCPT TO:<{r}>")


def send_raw_data(c, raw):
    """DATA, then raw bytes exactly as given (the test supplies the terminator)."""
    c.expect(354, "DATA")
    c.send(raw)
    return c.reply()


def tmp_is_clean(t):
    """Nothing of a message is left in spool/tmp: at most empty reusable files."""
    import os
    tmp = os.path.join(t.spool, "tmp")
    return all(name.startswith("pool-") and os.path.getsize(os.path.join(tmp, name)) == 0
               for name in os.listdir(tmp))


def only_message(t):
    ids = t.spool_ids()
    assert len(ids) == 1, ids
    return read_spool(t.spool, ids[0])


def test_message_stored_with_received_date_and_message_id_added(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        code, lines = send_raw_data(c, b"Subject: s\r\n\r\nline 1\r\n..leading dot\r\n.\r\n")
        assert code == 250 and re.search(r"id=[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}", lines[0])
        c.quit()
    msg = only_message(t)
    first = msg.content.split(b"\r\n", 1)[0]
    assert first.startswith(b"Received: from client.test ([127.0.0.1])")
    assert b"by tandem.test (tandem) with ESMTP id " + msg.id.encode() in msg.content
    assert b"for <x@example.test>;" in msg.content
    assert msg.header("Message-ID") == [f"<{msg.id}@tandem.test>".encode()]
    assert len(msg.header("Date")) == 1
    assert msg.body() == b"line 1\r\n.leading dot\r\n"       # unstuffed
    assert int(msg.fields["Z"]) == len(msg.content)
    t.wait_log(rf"{msg.id} <= a@b\.test H=\(client\.test\) \[127\.0\.0\.1\] P=esmtp S={len(msg.content)}"
               rf" id={re.escape(msg.id)}@tandem\.test$")


def test_existing_date_and_message_id_are_kept(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        hdrs = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID:\r\n <abc@client.test>\r\n"
        assert send_raw_data(c, hdrs + b"\r\nbody\r\n.\r\n")[0] == 250
        c.quit()
    msg = only_message(t)
    assert msg.header("Date") == [b"Mon, 1 Jan 2024 00:00:00 +0000"]
    assert len(msg.header("Message-ID")) == 1
    t.wait_log(rf"{msg.id} <= .* id=abc@client\.test$")


def test_header_section_without_blank_line_keeps_the_first_body_line(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        assert send_raw_data(c, b"Subject: s\r\nthis is not a header\r\nmore\r\n.\r\n")[0] == 250
        c.quit()
    msg = only_message(t)
    assert msg.body() == b"this is not a header\r\nmore\r\n"
    assert len(msg.header("Message-ID")) == 1


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r\r\n", b"\r.\r\n", b"\n.\r"]


@pytest.mark.parametrize("fake_end", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
def test_smuggling_never_makes_two_messages(tandem, fake_end):
    t = tandem(RELAY, options={"bare_newline": "space"})
    smuggled = (b"MAIL FROM:<evil@b.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nsmuggled\r\n")
    with t.connect() as c:
        start_txn(c)
        code, _ = send_raw_data(c, b"Subject: first\r\n\r\nfirst" + fake_end + smuggled + b".\r\n")
        assert code == 250
        assert c.cmd("NOOP")[0] == 250          # nothing else was answered in between
        c.quit()
    msg = only_message(t)
    assert [r["addr"] for r in msg.rcpts] == ["x@example.test"]
    assert b"smuggled" in msg.body()            # the fake commands are content, not commands
    assert b"\n." not in msg.body().replace(b"\r\n", b"")  # no line break was made of them


@pytest.mark.parametrize("fake_end", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
def test_bare_newline_rejected_by_default(tandem, fake_end):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        code, lines = send_raw_data(c, b"Subject: first\r\n\r\nfirst" + fake_end +
                                    b"MAIL FROM:<evil@b.test>\r\n.\r\n")
        assert code == 554 and lines[0].startswith("5.6.0")
        assert c.cmd("NOOP")[0] == 250
        c.quit()
    assert t.spool_ids() == []
    t.wait_log(r"rejected after DATA: Message contains a bare CR or LF", log="rejectlog")


def test_bare_newline_space_mode_replaces_with_a_space(tandem):
    t = tandem(RELAY, options={"bare_newline": "space"})
    with t.connect() as c:
        start_txn(c)
        assert send_raw_data(c, b"Subject: s\r\n\r\na\nb\rc\r\n.\r\n")[0] == 250
        c.quit()
    assert only_message(t).body() == b"a b c\r\n"


def test_nul_bytes_are_kept(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        assert send_raw_data(c, b"Subject: s\r\n\r\na\x00b\x00\r\n\x00\r\n.\r\n")[0] == 250
        c.quit()
    assert only_message(t).body() == b"a\x00b\x00\r\n\x00\r\n"


def test_loop_detected_by_received_count(tandem):
    t = tandem(RELAY, options={"received_headers_max": "5"})
    with t.connect() as c:
        start_txn(c)
        line = b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        assert send_raw_data(c, line * 5 + b"\r\nok\r\n.\r\n")[0] == 250
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")
        code, lines = send_raw_data(c, line * 6 + b"\r\nloop\r\n.\r\n")
        assert code == 554 and lines[0].startswith("5.4.6")
        c.quit()
    assert len(t.spool_ids()) == 1


def test_size_limit_at_mail_and_after_data(tandem):
    t = tandem(RELAY, options={"message_size_limit": "2K"})
    with t.connect() as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<a@b.test> SIZE=5000")
        assert code == 552 and lines[0].startswith("5.3.4")
        c.expect(250, "MAIL FROM:<a@b.test> SIZE=100")
        c.expect(250, "RCPT TO:<x@example.test>")
        code, lines = send_raw_data(c, b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 1 + (b"y" * 78 + b"\r\n") * 60 + b".\r\n")
        assert code == 552 and lines[0].startswith("5.3.4")
        assert c.cmd("NOOP")[0] == 250            # data read to its end; session usable
        c.quit()
    assert t.spool_ids() == []
    assert tmp_is_clean(t)


def test_client_disconnect_mid_data_leaves_nothing(tandem):
    t = tandem(RELAY)
    c = SmtpConn(t.port)
    start_txn(c)
    c.expect(354, "DATA")
    c.send(b"Subject: s\r\n\r\n" + b"partial line\r\n" * 1000)
    c.close()
    t.wait_log(r"unexpected disconnection while reading SMTP DATA")
    assert t.spool_ids() == []
    assert tmp_is_clean(t)


def test_early_data_before_354_is_refused(tandem):
    t = tandem(RELAY)
    c = SmtpConn(t.port)
    start_txn(c)
    c.send(b"DATA\r\nSubject: too early\r\n\r\nbody\r\n.\r\n")
    code, lines = c.reply()
    assert code == 554
    c.assert_closed()
    assert t.spool_ids() == []


def test_bdat_chunks(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        start_txn(c)
        part1 = b"Subject: chunked\r\n\r\nfirst "
        part2 = b"second\r\n.not stuffed\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, lines = c.reply()
        assert code == 250 and "id=" in lines[0]
        c.quit()
    msg = only_message(t)
    assert msg.body() == b"first second\r\n.not stuffed\r\n"


def test_bdat_out_of_sequence_chunk_is_skipped(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        chunk = b"MAIL FROM:<evil@b.test>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert c.reply()[0] == 503
        assert c.cmd("NOOP")[0] == 250         # the chunk was not read as a command
        c.quit()
    assert t.spool_ids() == []


def test_data_acl_add_header_goes_before_the_content(tandem):
    t = tandem(RELAY.replace("begin acl\n", "begin acl\ncheck_data:\n  warn add_header = X-Checked: by $primary_hostname\n  accept\n"),
               options={"acl_smtp_data": "check_data"})
    with t.connect() as c:
        start_txn(c)
        assert send_raw_data(c, b"Subject: s\r\n\r\nbody\r\n.\r\n")[0] == 250
        c.quit()
    [mid] = t.spool_ids()
    rc, out, err = t.run(["queue", "show", "--raw", mid])
    assert rc == 0, err
    assert out.startswith("X-Checked: by tandem.test\r\nReceived: "), out[:200]
