"""A small scripted SMTP server for the outbound engine's integration tests.

    srv = Scripted(replies={"RCPT": "550 5.1.1 no such user"}, ehlo=["PIPELINING", "SIZE 1000"])
    srv.port; srv.sessions[0].commands; srv.sessions[0].messages[0]; srv.stop()

A reply value is a string ("451 4.3.0 later", multi-line as "250-a\\n250 b"), raw bytes sent as
they are, DROP (close without reply), a Stall(seconds, then) or a list (one per use; the last
repeats).  ``tls=(cert, key)`` offers STARTTLS; ``inject`` bytes are sent right after the 220
to STARTTLS; ``drop_after_data`` closes after that many bytes of DATA content.
"""
import socket
import ssl
import threading
import time

DROP = "DROP"


class Stall:
    def __init__(self, seconds, then=None):
        self.seconds, self.then = seconds, then


class Session:
    def __init__(self):
        self.commands = []
        self.messages = []   # raw DATA bytes (dot-stuffed, without the final .CRLF) or BDAT bytes
        self.tls = False
        self.sni = None
        self.ended = None


class Scripted:
    DEFAULT_EHLO = ["PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"]

    def __init__(self, replies=None, ehlo=None, banner="220 scripted.test ESMTP", tls=None,
                 inject=b"", drop_after_data=None, host="127.0.0.1"):
        self.replies = dict(replies or {})
        self.ehlo = list(self.DEFAULT_EHLO if ehlo is None else ehlo)
        self.banner = banner
        self.inject = inject
        self.drop_after_data = drop_after_data
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
            self.ehlo.append("STARTTLS")
            self.ctx.sni_callback = self._sni
        self.sessions = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _sni(self, sslobj, name, ctx):
        sslobj.session_obj.sni = name

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            s = Session()
            with self.lock:
                self.sessions.append(s)
            threading.Thread(target=self._serve, args=(conn, s), daemon=True).start()

    def _reply(self, verb, default):
        v = self.replies.get(verb, default)
        if isinstance(v, list):
            with self.lock:
                r = v[0]
                if len(v) > 1:
                    v.pop(0)
            v = r
        return v

    def _send(self, conn, s, v, default):
        """Send a reply action; returns False when the connection is to be closed."""
        if isinstance(v, Stall):
            time.sleep(v.seconds)
            v = default if v.then is None else v.then
        if v == DROP:
            return False
        if isinstance(v, bytes):
            conn.sendall(v)
            return True
        lines = v.split("\n")
        conn.sendall("".join(l + "\r\n" for l in lines).encode())
        return True

    def _serve(self, conn, s):
        buf = bytearray()
        try:
            self._session(conn, s, buf)
        except (OSError, ssl.SSLError) as e:
            s.ended = s.ended or f"error {e}"
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _readline(self, conn, buf):
        while b"\n" not in buf:
            d = conn.recv(65536)
            if not d:
                return None
            buf += d
        i = buf.index(b"\n") + 1
        line = bytes(buf[:i])
        del buf[:i]
        return line

    def _readn(self, conn, buf, n):
        while len(buf) < n:
            d = conn.recv(65536)
            if not d:
                return None
            buf += d
        data = bytes(buf[:n])
        del buf[:n]
        return data

    def _session(self, conn, s, buf):
        if not self._send(conn, s, self.banner, "220 scripted.test ESMTP"):
            s.ended = "drop"
            return
        while True:
            line = self._readline(conn, buf)
            if line is None:
                s.ended = s.ended or "close"
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            s.commands.append(text)
            verb = text.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "MAIL" or verb == "RCPT":
                verb = text[:4].upper()
            handler = getattr(self, "_cmd_" + verb.lower(), None)
            if handler is None:
                ok = self._send(conn, s, self._reply(verb, "500 5.5.2 unknown"), None)
            else:
                ok = handler(conn, s, buf, text)
                if isinstance(ok, tuple):
                    conn = ok[1]
                    ok = ok[0]
            if not ok:
                s.ended = s.ended or "drop"
                return

    def _cmd_ehlo(self, conn, s, buf, text):
        exts = [e for e in self.ehlo if not (s.tls and e == "STARTTLS")]
        lines = ["scripted.test hello"] + exts
        default = "\n".join("250" + ("-" if i < len(lines) - 1 else " ") + l
                            for i, l in enumerate(lines))
        return self._send(conn, s, self._reply("EHLO", default), default)

    def _cmd_helo(self, conn, s, buf, text):
        return self._send(conn, s, self._reply("HELO", "250 scripted.test"), None)

    def _cmd_starttls(self, conn, s, buf, text):
        v = self._reply("STARTTLS", "220 2.0.0 go ahead" if self.ctx else "454 4.7.0 no TLS")
        if isinstance(v, str) and v.startswith("220") and self.inject:
            v = (v + "\r\n").encode() + self.inject  # one write: the reply and the injection
        if not self._send(conn, s, v, None):
            return False
        is220 = v.startswith(b"220" if isinstance(v, bytes) else "220")
        if not is220 or self.ctx is None:
            return True
        if buf:
            s.ended = "client sent data before the handshake"
            return False
        tconn = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        tconn.session_obj = s
        try:
            tconn.do_handshake()
        except (ssl.SSLError, OSError) as e:
            s.ended = f"tls-failed {e}"
            return False
        s.tls = True
        s.tls_version = tconn.version()
        return (True, tconn)

    def _cmd_mail(self, conn, s, buf, text):
        return self._send(conn, s, self._reply("MAIL", "250 2.1.0 sender ok"), None)

    def _cmd_rcpt(self, conn, s, buf, text):
        v = self.replies.get("RCPT", "250 2.1.5 recipient ok")
        if isinstance(v, dict):
            addr = text.split("<", 1)[1].split(">", 1)[0]
            v = v.get(addr, v.get("*", "250 2.1.5 recipient ok"))
        else:
            v = self._reply("RCPT", "250 2.1.5 recipient ok")
        return self._send(conn, s, v, "250 2.1.5 recipient ok")

    def _cmd_rset(self, conn, s, buf, text):
        return self._send(conn, s, self._reply("RSET", "250 2.0.0 reset"), None)

    def _cmd_noop(self, conn, s, buf, text):
        return self._send(conn, s, self._reply("NOOP", "250 2.0.0 ok"), None)

    def _cmd_quit(self, conn, s, buf, text):
        self._send(conn, s, self._reply("QUIT", "221 2.0.0 bye"), None)
        s.ended = "QUIT"
        return False

    def _cmd_data(self, conn, s, buf, text):
        v = self._reply("DATA", "354 go ahead")
        if not self._send(conn, s, v, "354 go ahead"):
            return False
        if not (isinstance(v, str) and v.startswith("354")) and not isinstance(v, Stall):
            return True
        data = bytearray()
        while not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
            d = conn.recv(65536) if not buf else bytes(buf)
            buf.clear()
            if not d:
                s.messages.append(bytes(data))
                return False
            data += d
            if self.drop_after_data is not None and len(data) >= self.drop_after_data:
                s.messages.append(bytes(data))  # closed without a verdict, even if complete
                s.ended = "drop"
                return False
        end = data.find(b"\r\n.\r\n")
        body, rest = (data[:end + 2], data[end + 5:]) if end >= 0 else (b"", data[3:])
        buf += rest
        s.messages.append(bytes(body))
        return self._send(conn, s, self._reply("DOT", "250 2.0.0 OK queued"), "250 2.0.0 OK queued")

    def _cmd_bdat(self, conn, s, buf, text):
        parts = text.split()
        n = int(parts[1])
        last = len(parts) > 2 and parts[2].upper() == "LAST"
        chunk = self._readn(conn, buf, n)
        if chunk is None:
            return False
        if not s.messages or getattr(s, "bdat_done", True):
            s.messages.append(b"")
            s.bdat_done = False
        s.messages[-1] += chunk
        if last:
            s.bdat_done = True
            return self._send(conn, s, self._reply("DOT", "250 2.0.0 OK queued"), None)
        return self._send(conn, s, self._reply("BDAT", f"250 2.0.0 {n} octets"), None)

