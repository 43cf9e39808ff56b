"""Log lines cannot be broken or forged by what a client sends (issue 18.7): Unicode line
breaks (U+2028, U+2029, NEL U+0085) and the other C1 controls in SMTPUTF8 addresses are
escaped in the main and reject logs, and every F=<sender> escapes '"' as the other fields do;
a tool that splits on Unicode line breaks (Python's str.splitlines) sees as many lines as
there are newlines."""
from harness import pipelined, relay_config

# Eight senders, each carrying one character that some tool takes for a line break or a
# control, in front of text that would pass for a log line of its own.
FORGED = " 1999-01-01 00:00:00 forged line"
SENDERS = [f"a{ch}{FORGED.replace(' ', '.').replace(':', '-')}@client.test" for ch in
           ["\u2028", "\u2029", "\u0085", "\u0080", "\u009f", "\u008d", "\u0095", "\u202e"]]
QUOTED = '"say \\"hi\\"\u2028"@client.test'      # a quoted local part: '"' and U+2028 inside


def physical_lines(text):
    """The log's lines as a newline-splitting reader sees them."""
    assert text.endswith("\n")
    return text[:-1].split("\n")


def assert_unbroken(text):
    lines = physical_lines(text)
    assert text.splitlines() == lines, [ln for ln in text.splitlines() if ln not in lines][:3]
    for ch in ("\u2028", "\u2029", "\u0085", "\u0080", "\u009f", "\u008d", "\u202e"):
        assert ch not in text


def test_unicode_line_breaks_are_escaped(tandem, nexthop):
    hop = nexthop()
    t = tandem(relay_config(hop))
    with t.connect() as c:
        c.ehlo()
        for sender in SENDERS:                      # RCPT refused: one reject line each
            c.expect(250, f"MAIL FROM:<{sender}> SMTPUTF8")
            code, _ = c.cmd("RCPT TO:<u@elsewhere.test>")
            assert code == 550
            c.expect(250, "RSET")
        c.expect(250, f"MAIL FROM:<{SENDERS[0]}> SMTPUTF8")   # accepted: "<=" in the main log
        c.expect(250, "RCPT TO:<u@example.test>")
        assert c.data(b"Subject: x\r\n\r\nx\r\n")[0] == 250
        c.quit()
    hop.wait_accepted(1)
    t.wait_log(r" Completed")
    reject = t.rejectlog()
    assert_unbroken(reject)
    refused = [ln for ln in physical_lines(reject) if "forged.line@client.test" in ln]
    assert len(refused) == 8 and all("rejected RCPT <u@elsewhere.test>" in ln for ln in refused)
    assert "F=<a\\xe2\\x80\\xa8.1999-01-01.00-00-00.forged.line@client.test>" in refused[0]
    assert "F=<a\\xc2\\x85." in refused[2]
    main = t.mainlog()
    assert_unbroken(main)
    assert "<= a\\xe2\\x80\\xa8.1999-01-01" in main


def test_sender_quotes_escaped_in_every_f_field(tandem, nexthop):
    """The two F=<sender> lines that printed the sender raw: a message refused after DATA
    (a bare LF), and data sent before the 354."""
    t = tandem(relay_config(nexthop()))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, f"MAIL FROM:<{QUOTED}> SMTPUTF8")
        c.expect(250, "RCPT TO:<u@example.test>")
        c.expect(354, "DATA")
        c.send(b"Subject: x\r\n\r\nbare\nLF\r\n.\r\n")
        assert c.reply()[0] // 100 == 5
        c.quit()
    with t.connect() as c:
        c.ehlo()
        replies = pipelined(c, [f"MAIL FROM:<{QUOTED}> SMTPUTF8", "RCPT TO:<u@example.test>",
                                "DATA\r\nSubject: early"])
        assert [r[0] for r in replies] == [250, 250, 554]
    t.wait_log(r"rejected DATA: SMTP synchronization error", log="rejectlog")
    reject = t.rejectlog()
    assert_unbroken(reject)
    lines = [ln for ln in physical_lines(reject) if " F=<" in ln]
    assert len(lines) == 2, lines
    for ln in lines:
        assert 'F=<\\x22say \\x5c\\x22hi\\x5c\\x22\\xe2\\x80\\xa8\\x22@client.test>' in ln, ln
