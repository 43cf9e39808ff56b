#!/usr/bin/env python3
"""gen_session_corpus.py - write the seed corpus of fuzz_session (tests/fuzz/corpus/session).

Each seed is: flags byte, chunk-seed byte, then what the client sends (see fuzz_session.c for
the flags).  Regenerate with: python3 tests/fuzz/gen_session_corpus.py
"""
import os

LINES, CONF_B, BANNER, NO_DELIVER, IPV6, INTERACTIVE, CLOSE, LAZY = 1, 2, 4, 8, 16, 32, 64, 128
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "session")

HELLO = b"EHLO client.test\r\n"
TXN = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
BODY = b"Subject: s\r\nMessage-ID: <m@b.test>\r\n\r\nbody\r\n..dot\r\n.\r\n"
QUIT = b"QUIT\r\n"

SEEDS = {
    "plain": (LINES | BANNER, HELLO + TXN + b"DATA\r\n" + BODY + QUIT),
    "pipelined": (BANNER, HELLO + TXN + b"DATA\r\n" + BODY + QUIT),
    "helo": (LINES | BANNER, b"HELO client.test\r\n" + TXN + b"DATA\r\n" + BODY + QUIT),
    "two_messages": (LINES | BANNER, HELLO + (TXN + b"DATA\r\n" + BODY) * 2 + QUIT),
    "bdat": (LINES | BANNER, HELLO + TXN + b"BDAT 12\r\nSubject: x\r\nBDAT 6 LAST\r\n\r\nhi\r\n" + QUIT),
    "bdat_bad": (LINES | BANNER, HELLO + b"BDAT 5 LAST\r\nMAIL \r\nBDAT x\r\n" + QUIT),
    "bdat_b": (LINES | BANNER | CONF_B | IPV6, HELLO + TXN + b"BDAT 0 LAST\r\n" + QUIT),
    "starttls": (LINES | BANNER, HELLO + b"STARTTLS\r\n\x16\x03\x01\x00\x05hello"),
    "starttls_pipelined": (BANNER, HELLO + b"STARTTLS\r\nMAIL FROM:<a@b.test>\r\n"),
    "smuggle_lf": (LINES | BANNER | CONF_B, HELLO + TXN + b"DATA\r\nx\n.\nMAIL FROM:<e@b.test>\r\n.\r\n" + QUIT),
    "smuggle_cr": (LINES | BANNER, HELLO + TXN + b"DATA\r\nx\r.\rRCPT TO:<v@example.test>\r\n.\r\n" + QUIT),
    "utf8": (LINES | BANNER, HELLO + "MAIL FROM:<ü@b.test> SMTPUTF8\r\nRCPT TO:<ö@example.test>\r\n"
             "DATA\r\n".encode() + BODY + QUIT),
    "dsn": (LINES | BANNER, HELLO + b"MAIL FROM:<a@b.test> RET=HDRS ENVID=x+2By SIZE=100 BODY=8BITMIME\r\n"
            b"RCPT TO:<x@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y\r\nDATA\r\n" + BODY + QUIT),
    "many_rcpts": (LINES | BANNER, HELLO + b"MAIL FROM:<a@b.test>\r\n" +
                   b"".join(b"RCPT TO:<r%d@example.test>\r\n" % i for i in range(8)) + b"DATA\r\n" + BODY),
    "errors": (BANNER, b"BOGUS\r\n" * 12),
    "misc": (LINES | BANNER, HELLO + b"NOOP\r\nVRFY x\r\nEXPN x\r\nHELP\r\nAUTH PLAIN\r\nRSET\r\n"
             b"RCPT TO:<x@example.test>\r\nDATA\r\n" + QUIT),
    "early_talker": (0, HELLO + QUIT),
    "interactive": (INTERACTIVE, HELLO + TXN + b"DATA\r\n" + BODY + QUIT),
    "no_deliver": (LINES | BANNER | NO_DELIVER, HELLO + TXN + b"DATA\r\n" + BODY + QUIT),
    "acl_words": (LINES | BANNER, HELLO + b"MAIL FROM:<deny@x.test>\r\nMAIL FROM:<defer@x.test>\r\n"
                  b"MAIL FROM:<discard@x.test>\r\nRCPT TO:<deny@example.test>\r\nRCPT TO:<discard@example.test>\r\n"
                  b"RCPT TO:<defer@example.test>\r\nRCPT TO:<x@[192.0.2.1]>\r\nDATA\r\n" + BODY + QUIT),
    "acl_drop": (LINES | BANNER, HELLO + b"MAIL FROM:<a@b.test>\r\nRCPT TO:<drop@example.test>\r\n" + QUIT),
    "relay_v6": (LINES | BANNER | IPV6, HELLO + b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@other.test>\r\n"
                 b"RCPT TO:<user%other.test@example.test>\r\nRCPT TO:<@example.test:u@other.test>\r\n" + QUIT),
    "long_line": (LINES | BANNER, HELLO + b"MAIL FROM:<" + b"a" * 600 + b"@b.test>\r\nNOOP\r\n" + QUIT),
    "size_limit": (LINES | BANNER, HELLO + TXN + b"DATA\r\n" + b"x" * 70 + b"\r\n" + (b"y" * 998 + b"\r\n") * 17 + b".\r\n" + QUIT),
    "loop": (LINES | BANNER, HELLO + TXN + b"DATA\r\n" + b"Received: x\r\n" * 4 + b"\r\nb\r\n.\r\n" + QUIT),
    "close_mid_data": (LINES | BANNER | CLOSE, HELLO + TXN + b"DATA\r\nSubject: cut\r\n\r\npartial"),
    "lazy": (BANNER | LAZY, (b"NOOP\r\n" * 200) + QUIT),
    "lazy_ehlo": (BANNER | LAZY, (b"EHLO x\r\n" * 600) + QUIT),
    "data_acl": (LINES | BANNER, HELLO + b"MAIL FROM:<baddata@x.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n" + BODY +
                 b"MAIL FROM:<nodata@x.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n" + QUIT),
    "nul_8bit": (LINES | BANNER, b"EHLO a\x00b\r\nEHLO \xff\xfe\r\n" + HELLO + TXN + b"DATA\r\n\x00\xff\r\n.\r\n" + QUIT),
}

os.makedirs(OUT, exist_ok=True)
for name, (flags, stream) in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([flags, 0x5a]) + stream)
print(f"{len(SEEDS)} seeds in {OUT}")
