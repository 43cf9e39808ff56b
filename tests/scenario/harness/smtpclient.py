"""A strict, raw SMTP client for protocol tests against the daemon.

Unlike smtplib it never hides anything: every byte can be chosen (bare LF, pipelining groups,
early talking, half a command), and every reply is parsed strictly (CRLF line ends, three-digit
code repeated on every line, ``-`` continuation, at most 512 octets a line, no NUL or bare CR),
so a malformed reply from the daemon fails the test instead of being tolerated.

    from harness import SmtpConn, pipelined

    with SmtpConn(t.port) as c:                 # reads and checks the banner (c.banner)
        c.ehlo("client.test")                   # -> {"PIPELINING": "", "SIZE": "52428800", ...}
        c.expect(250, "MAIL FROM:<a@x.test>")   # send a command, assert the reply code
        code, lines = c.cmd("RCPT TO:<b@y.test>")
        c.expect(354, "DATA")
        c.send(dot_stuff(b"Subject: hi\\r\\n\\r\\nbody\\r\\n"))
        c.expect("2")                           # a code prefix: any 2xx
        replies = pipelined(c, ["RSET", "MAIL FROM:<>", "RCPT TO:<b@y.test>", "DATA"])
        c.cmd("QUIT"); c.assert_closed()

Failures raise SmtpError (an AssertionError) carrying the transcript tail.
"""
import re
import socket
import ssl
import time

REPLY_LINE = re.compile(rb"^(\d{3})(?:([ -])(.*))?$", re.S)
MAX_REPLY_LINE = 512


class SmtpError(AssertionError):
    """Unexpected or malformed SMTP traffic."""


class SmtpTimeout(SmtpError):
    """No complete reply within the time allowed."""


def dot_stuff(body):
    """DATA wire form of ``body`` (bytes with CRLF lines): leading dots doubled, CRLF.CRLF added.

    A body not ending in CRLF gets one, as every SMTP client must do.
    """
    if isinstance(body, str):
        body = body.encode()
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    stuffed = re.sub(rb"(^|\r\n)\.", rb"\1..", body)
    return stuffed + b".\r\n"


def _as_bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _code_matches(code, want):
    """``want`` is an int (exact), or a str of 1-3 digits matched as a prefix ("4", "25")."""
    if isinstance(want, int):
        return code == want
    return str(code).startswith(str(want))


class SmtpConn:
    """One client connection to an SMTP server on loopback (see the module docstring)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, banner=True,
                 source=None, max_line=MAX_REPLY_LINE):
        self.host, self.port, self.timeout, self.max_line = host, port, timeout, max_line
        addr = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=addr)
        self.buf = bytearray()
        self.transcript = []          # [("C" | "S", bytes)], in order
        self.extensions = {}          # from the last ehlo(): keyword -> parameters
        self.banner = self.reply() if banner else None

    # -- context manager ------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw I/O --------------------------------------------------------------------------
    def send(self, data):
        """Write ``data`` (bytes, or str encoded as UTF-8) exactly as given."""
        data = _as_bytes(data)
        self.transcript.append(("C", data))
        self.sock.sendall(data)

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if chunk:
            self.transcript.append(("S", chunk))
        return chunk

    def _line(self, deadline):
        """One line including CRLF; raises on EOF, timeout or an overlong line."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > self.max_line:
                self._fail(f"reply line longer than {self.max_line} octets")
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                raise SmtpTimeout(self._describe(
                    f"no complete reply within {self.timeout:g}s "
                    f"(partial: {bytes(self.buf)!r})")) from None
            except ConnectionError as exc:
                self._fail(f"connection error while reading a reply: {exc}")
            if not chunk:
                self._fail(f"connection closed by server (partial: {bytes(self.buf)!r})")
            self.buf += chunk

    def _describe(self, msg):
        tail = b"".join(d for _, d in self.transcript[-12:])
        return f"{msg}\n--- transcript tail ({self.host}:{self.port}) ---\n{tail!r}"

    def _fail(self, msg):
        raise SmtpError(self._describe(msg))

    # -- replies --------------------------------------------------------------------------
    def _parse_line(self, raw):
        if not raw.endswith(b"\r\n"):
            self._fail(f"reply line not ended by CRLF: {raw!r}")
        body = raw[:-2]
        if len(raw) > self.max_line:
            self._fail(f"reply line longer than {self.max_line} octets: {raw[:80]!r}...")
        if b"\r" in body or b"\n" in body or b"\0" in body:
            self._fail(f"bare CR/LF or NUL inside a reply line: {raw!r}")
        m = REPLY_LINE.match(body)
        if not m:
            self._fail(f"malformed reply line: {raw!r}")
        text = (m.group(3) or b"").decode("utf-8", "surrogateescape")
        return int(m.group(1)), m.group(2) == b"-", text

    def reply(self, timeout=None):
        """Read one (possibly multi-line) reply: (code, [text of each line])."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        code, lines = None, []
        while True:
            c, more, text = self._parse_line(self._line(deadline))
            if code is not None and c != code:
                self._fail(f"reply code changed inside a multi-line reply: {code} then {c}")
            code = c
            lines.append(text)
            if not more:
                return code, lines

    def replies(self, n, timeout=None):
        """Read ``n`` replies."""
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        """Send ``line`` + CRLF and return its reply (code, lines)."""
        self.send(_as_bytes(line) + b"\r\n")
        return self.reply(timeout)

    def expect(self, code, line=None, timeout=None):
        """Optionally send ``line``, read a reply and assert its code; returns the lines.

        ``code`` is an int (exact) or a string prefix such as "4" (any 4xx) or "55".
        """
        got, lines = self.cmd(line, timeout) if line is not None else self.reply(timeout)
        if not _code_matches(got, code):
            sent = f" to {line!r}" if line is not None else ""
            self._fail(f"expected {code}{sent}, got {got} {lines}")
        return lines

    # -- conveniences ---------------------------------------------------------------------
    def ehlo(self, name="client.test"):
        """EHLO, asserting 250; returns and stores the extensions {KEYWORD: params}."""
        lines = self.expect(250, f"EHLO {name}")
        self.extensions = {}
        for text in lines[1:]:
            key, _, params = text.partition(" ")
            self.extensions[key.upper()] = params
        return self.extensions

    def starttls(self, cafile=None, server_hostname=None, context=None):
        """STARTTLS (asserting 220) and the TLS handshake; returns the SSLSocket."""
        self.expect(220, "STARTTLS")
        if self.buf:
            self._fail(f"bytes after the 220 to STARTTLS: {bytes(self.buf)!r}")
        if context is None:
            context = ssl.create_default_context(cafile=cafile)
            if cafile is None:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.extensions = {}
        return self.sock

    def data(self, body, timeout=None):
        """DATA (asserting 354), then ``body`` dot-stuffed; returns the end-of-data reply."""
        self.expect(354, "DATA")
        self.send(dot_stuff(body))
        return self.reply(timeout)

    def send_mail(self, sender, rcpts, body, timeout=None):
        """One unpipelined transaction; returns a dict of the replies.

        Keys: "mail", "rcpt" (list, one per recipient), "data" (reply to DATA, or None if no
        recipient was accepted or MAIL failed) and "final" (end-of-data reply or None).
        """
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        out = {"mail": self.cmd(f"MAIL FROM:<{sender}>"), "rcpt": [], "data": None, "final": None}
        if out["mail"][0] != 250:
            return out
        out["rcpt"] = [self.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        if not any(c // 100 == 2 for c, _ in out["rcpt"]):
            return out
        out["data"] = self.cmd("DATA")
        if out["data"][0] == 354:
            self.send(dot_stuff(body))
            out["final"] = self.reply(timeout)
        return out

    def quit(self):
        """QUIT, asserting 221, and wait for the server to close."""
        self.expect(221, "QUIT")
        self.assert_closed()

    # -- end of connection ----------------------------------------------------------------
    def closed(self, timeout=5.0):
        """True if the server closes the connection within ``timeout`` with nothing more sent.

        Returns False if data arrives (kept in the buffer) or the wait runs out.
        """
        if self.buf:
            return False
        deadline = time.monotonic() + timeout
        try:
            chunk = self._recv(deadline)
        except socket.timeout:
            return False
        except ConnectionError:
            return True
        if chunk:
            self.buf += chunk
            return False
        return True

    def assert_closed(self, timeout=5.0):
        """Assert that the server closes the connection within ``timeout`` saying nothing more."""
        if not self.closed(timeout):
            what = f"unexpected data {bytes(self.buf)!r}" if self.buf else "still open"
            self._fail(f"expected the server to close the connection within {timeout:g}s: {what}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pipelined(conn, commands, timeout=None):
    """Write all ``commands`` in one send, then read one reply per command.

    Each str command gets CRLF appended; a bytes item is sent as is and also counts as one
    command (e.g. a dot-stuffed body: ``[..., "DATA"]`` then a second call with the body).
    Returns the list of (code, lines).
    """
    payload = b"".join(c if isinstance(c, (bytes, bytearray)) else _as_bytes(c) + b"\r\n"
                       for c in commands)
    conn.send(payload)
    return conn.replies(len(commands), timeout)
