"""Local refusals after DATA while the body is being cut through to the next hop: the message
grows past message_size_limit, has a bare LF or CR, or carries more Received headers than
received_headers_max (a mail loop).  The next hop has been receiving the body all along; tandem
refuses the message to the client with its own reply, and the next hop ends up with nothing
(never the final dot): no copy is delivered, none is kept, the log says why."""
import re

import pytest

from harness import relay_config, tmp_leftovers

LINE = b"x" * 78 + b"\r\n"
BIG = LINE * 4000                              # 320 KB: well past the link's buffers


def body_with(defect):
    head = b"Subject: refused while streaming\r\n"
    if defect == "loop":
        head = b"".join(b"Received: from hop%d.test by hop%d.test; Mon, 1 Jan 2024 00:00:00 "
                        b"+0000\r\n" % (i, i + 1) for i in range(31)) + head
    body = head + b"\r\n" + BIG
    if defect == "bare-lf":
        body += b"a bare\nline feed\r\n" + LINE * 10
    if defect == "bare-cr":
        body += b"a bare\rcarriage return\r\n" + LINE * 10
    return body


CASES = {   # defect: (main options, reply code, enhanced code and text)
    "size": ({"message_size_limit": "100k"}, 552,
             "5.3.4 Message size exceeds fixed maximum message size"),
    "bare-lf": ({}, 554, "5.6.0 Message contains a bare CR or LF (RFC 5321 2.3.8)"),
    "bare-cr": ({}, 554, "5.6.0 Message contains a bare CR or LF (RFC 5321 2.3.8)"),
    "loop": ({}, 554, '5.4.6 Too many "Received" headers - suspected mail loop'),
}


@pytest.mark.parametrize("defect", list(CASES))
def test_local_refusal_mid_body_leaves_the_next_hop_nothing(tandem, nexthop, defect):
    options, code, text = CASES[defect]
    hop = nexthop()
    t = tandem(relay_config(hop, cutthrough=True), options=options)
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<u@example.test>")
        c.expect(354, "DATA")
        c.send(body_with(defect).replace(b"\r\n.", b"\r\n..") + b".\r\n")
        assert c.reply(timeout=30) == (code, [text])
        c.expect(250, "RSET")                           # the session goes on
        c.quit()
    hop.wait_idle()
    assert hop.received == [] and hop.accepted == []     # never the final dot
    assert all(not m.complete for m in hop.messages)
    if defect != "loop":                                 # the body was on its way
        assert sum(len(m.raw) for m in hop.messages) > 0, hop.sessions
    logged = text.split(" ", 1)[1].replace('"', "\\x22")   # the log escapes quotes (issue 18)
    t.wait_log(r"F=<s@client\.test> rejected after DATA: " + re.escape(logged), log="rejectlog")
    assert ">>" not in t.mainlog() and t.spool_ids() == [] and tmp_leftovers(t.spool) == []
