"""The ESMTP server: greeting, extensions, state machine, pipelining, replies (issue 2)."""
import re

from harness import SmtpConn, pipelined, read_spool, queued_relay

RELAY = queued_relay(deny_others=True, relay_from_hosts="")

BODY = b"Subject: hello\r\n\r\nbody line\r\n"
ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3} ")


def test_banner_and_ehlo_extensions(tandem):
    t = tandem(RELAY, options={"message_size_limit": "10M"})
    with t.connect() as c:
        assert c.banner[0] == 220 and c.banner[1][0].startswith("tandem.test ESMTP")
        ext = c.ehlo("client.test")
        assert ext["SIZE"] == str(10 * 1024 * 1024)
        for name in ("8BITMIME", "PIPELINING", "DSN", "CHUNKING", "ENHANCEDSTATUSCODES", "SMTPUTF8", "HELP"):
            assert name in ext, name
        assert "STARTTLS" not in ext            # no certificate configured
        code, lines = c.cmd("HELO client.test")
        assert code == 250 and len(lines) == 1   # HELO: no extension list


def test_every_reply_after_greeting_has_an_enhanced_code(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        for cmd in ("NOOP", "RSET", "VRFY someone", "HELP", "EXPN list", "BOGUS", "MAIL FROM:<a@b.test>",
                    "RCPT TO:<x@example.test>", "RCPT TO:<x@elsewhere.test>", "MAIL FROM:<c@d.test>"):
            code, lines = c.cmd(cmd)
            assert ENHANCED.match(lines[-1]), (cmd, code, lines)
        c.quit()


def test_simple_commands(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        assert c.cmd("VRFY postmaster")[0] == 252
        assert c.cmd("HELP")[0] == 214
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("EXPN staff")[0] == 502
        assert c.cmd("XYZZY")[0] == 500
        assert c.cmd("AUTH PLAIN AAAA")[0] == 502
        c.quit()


def test_state_machine_503(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        assert c.cmd("MAIL FROM:<a@b.test>")[0] == 503        # before EHLO
        assert c.cmd("RCPT TO:<x@example.test>")[0] == 503
        c.ehlo()
        assert c.cmd("RCPT TO:<x@example.test>")[0] == 503    # before MAIL
        assert c.cmd("DATA")[0] == 503
        c.expect(250, "MAIL FROM:<a@b.test>")
        assert c.cmd("MAIL FROM:<a@b.test>")[0] == 503        # nested MAIL
        assert c.cmd("DATA")[0] == 503                        # no RCPT yet
        assert c.cmd("RCPT TO:<x@nowhere.test>")[0] == 550
        assert c.cmd("DATA")[0] == 554                        # every RCPT refused
        c.quit()


def test_rset_and_ehlo_reset_the_transaction(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")
        c.expect(250, "RSET")
        assert c.cmd("RCPT TO:<x@example.test>")[0] == 503
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.ehlo()
        assert c.cmd("RCPT TO:<x@example.test>")[0] == 503
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.quit()


def test_mail_and_rcpt_syntax_errors(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL a@b.test")[0] == 501
        assert c.cmd("MAIL FROM:a@b.test")[0] == 501            # brackets required
        assert c.cmd("MAIL FROM:<a@b.test> FOO=BAR")[0] == 555
        c.expect(250, "MAIL FROM:<a@b.test>")
        assert c.cmd("RCPT TO:<" + "x" * 65 + "@example.test>")[0] == 501
        c.expect(250, "RCPT TO:<" + "x" * 64 + "@example.test>")
        assert c.cmd("RCPT TO:<x@" + "a" * 64 + ".test>")[0] == 501
        assert c.cmd("RCPT TO:<x@example.test> NOTIFY=BOGUS")[0] == 501
        c.quit()


def test_pipelined_session_gets_every_reply_in_order(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        replies = pipelined(c, ["MAIL FROM:<a@b.test>", "RCPT TO:<x@example.test>",
                                "RCPT TO:<y@elsewhere.test>", "RCPT TO:<z@example.test>", "DATA"])
        assert [r[0] for r in replies] == [250, 250, 550, 250, 354]
        c.send(b"Subject: p\r\n\r\npipelined\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250
        msg_id = re.search(r"id=(\S+)", lines[-1]).group(1)
        # everything in one write, including QUIT
        c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<q@example.test>\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        assert [c.reply()[0] for _ in range(5)] == [250, 250, 250, 250, 221]
        c.assert_closed()
    msg = read_spool(t.spool, msg_id)
    assert [r["addr"] for r in msg.rcpts] == ["x@example.test", "z@example.test"]


def test_whole_session_in_one_write(tandem):
    t = tandem(RELAY)
    c = SmtpConn(t.port)
    c.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nQUIT\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 221]
    c.assert_closed()


def test_postmaster_without_domain_is_accepted_for_our_host(tandem):
    t = tandem(RELAY.replace("accept domains = +relay_to_domains",
                             "accept domains = +relay_to_domains : tandem.test"))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<Postmaster>")
        assert c.data(BODY)[0] == 250
        c.quit()
    [msg_id] = t.spool_ids()
    assert read_spool(t.spool, msg_id).rcpts[0]["addr"] == "postmaster@tandem.test"


def test_dsn_and_utf8_parameters_are_kept_in_the_envelope(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<ä@b.test> SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef SIZE=100")
        c.expect(250, "RCPT TO:<x@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40example.test")
        c.expect(250, "RCPT TO:<y@example.test> NOTIFY=NEVER")
        assert c.data(BODY)[0] == 250
        c.quit()
    [msg_id] = t.spool_ids()
    msg = read_spool(t.spool, msg_id)
    assert msg.sender == "ä@b.test"
    assert msg.fields["E"] == b"abc+2Bdef" and msg.fields["F"] == b"2" and msg.fields["U"] == b"1"
    assert msg.fields["B"] == b"2"
    assert msg.rcpts[0] == {"addr": "x@example.test", "notify": 6, "orcpt": "rfc822;x+40example.test"}
    assert msg.rcpts[1]["notify"] == 1
    t.wait_log(rf"{msg_id} <= ä@b\.test H=\(client\.test\) \[127\.0\.0\.1\] P=esmtp S=\d+")


def test_8bit_address_needs_smtputf8(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<ä@b.test>")[0] == 553
        c.quit()


def test_vrfy_and_helo_before_mail_on_plain_smtp(tandem):
    t = tandem(RELAY)
    with t.connect() as c:
        c.expect(250, "HELO client.test")
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")
        assert c.data(BODY)[0] == 250
        c.quit()
    [msg_id] = t.spool_ids()
    assert read_spool(t.spool, msg_id).fields["Y"] == b"smtp"
    assert b"with SMTP id" in read_spool(t.spool, msg_id).content
