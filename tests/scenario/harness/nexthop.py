"""NextHop: a scripted, recording SMTP server standing in for the next hop (primary MX, relay).

It listens on a loopback address (any 127/8 address, default 127.0.0.2) and serves each
connection in its own thread, so 50+ concurrent sessions and load tests with thousands of
messages are fine.  Replies are written in batches (flushed whenever the input is drained), as
a real pipelining server does.

Quick start
-----------
    hop = NextHop()                                   # accepts everything
    hop = NextHop(rcpt={"bad@x.test": "550 5.1.1 no such user"},
                  dot="451 4.3.0 try later",          # reply to the final dot (alias data_reply=)
                  advertise={"CHUNKING": True, "PIPELINING": False},
                  stall={"RCPT": 5},                  # wait 5 s before answering each RCPT
                  drop_after={"DATA": 100})           # close after 100 bytes of message data
    route = hop.route                                 # "[127.0.0.2]:PORT", for `begin routes`
    hop.wait_accepted(1)                              # bounded wait; AssertionError on timeout
    m = hop.accepted[0]
    m.mail_from, m.rcpts, m.data, m.raw, m.session.ended_by
    hop.stop()                                        # or `with NextHop(...) as hop:`

Stages and what they answer
---------------------------
    keyword      stage         default reply
    banner=      CONNECT       220 <hostname> ESMTP NextHop
    ehlo=        EHLO          250-<hostname> + the advertised extensions
    helo=        HELO          250 <hostname>
    starttls=    STARTTLS      220 2.0.0 ready (454 4.7.0 when no tls= was given)
    mail=        MAIL          250 2.1.0 sender ok
    rcpt=        RCPT          250 2.1.5 recipient ok
    data=        DATA          354 go ahead  (the reply to the DATA command)
    dot=         DOT           250 2.0.0 OK queued as N  (end of data: final dot, BDAT LAST)
    bdat=        BDAT          250 2.0.0 N octets received  (each non-LAST chunk)
    rset= noop= quit= vrfy=    the obvious
    other=       OTHER         500 5.5.2 command not recognized

Sequence errors get realistic replies (503 for MAIL before EHLO, RCPT before MAIL; 554 to DATA
with no accepted recipient) and are noted in ``hop.violations()``.

Actions (the value given for a stage)
-------------------------------------
    "550 5.1.1 no such user"         one reply line (CRLF added)
    "451-first\\n451 second"          multi-line: lines split on \\n; the code of the first line
    "451 first\\nsecond"              is repeated with '-' / ' ' as needed
    b"250 raw\\x00bytes\\r\\n"          sent verbatim, nothing added (hostile replies: GARBAGE)
    DROP / RESET                     close without replying (RESET: TCP RST)
    stall(5) / stall(5, "451 late")  wait, then the default reply (or the given action)
    seq("451 busy", "250 ok")        one per use, shared by all sessions; the last repeats
    {"bad@x.test": a, "@y.test": b, "*": c}   MAIL/RCPT only: by address, then @domain, then *
    lambda session, arg: action      computed per command (arg: the address or argument)
A reply's code decides the protocol state: a 2xx to RCPT accepts the recipient, 220 to STARTTLS
starts TLS, 354 to DATA starts the data phase, and so on.

Shorthands:  stall={"RCPT": 5}  (seconds, any stage);  drop={"DATA", "DOT"}  (stages closed
without reply); drop_after={"DATA": 100}  (close after K bytes of message data; 0 = right after
the 354; also "BDAT");  stall_after={"DATA": (K, seconds)}  (stop reading after K bytes).

Extensions:  advertise={"CHUNKING": True, "PIPELINING": False, "SIZE": "1000"} merges with the
defaults PIPELINING, SIZE 52428800, 8BITMIME, SMTPUTF8, DSN, ENHANCEDSTATUSCODES (CHUNKING off),
and STARTTLS when tls= is given; ``extensions=[...]`` replaces the whole list.
tls=(certfile, keyfile) or an ssl.SSLContext enables STARTTLS; the SNI and TLS version are
recorded per session.  ``hop.set(**same_keywords)`` changes the script while running.

Records
-------
    hop.connections         number of accepted connections
    hop.sessions            [Session]: peer, helo, commands [str], pipelined [str] (commands
                            that came with more input behind them), transcript, tls, tls_version,
                            tls_resumed (the client resumed a TLS session),
                            sni, mails/rcpts [(address, params, code)], messages, ended_by
                            ("QUIT", "RSET" = closed after RSET without QUIT, "close" = other
                            client close, "drop" = scripted drop, "timeout", "error", "tls-failed")
    hop.messages            [Message] every data phase begun (complete or not)
    hop.received            complete ones (final dot / BDAT LAST read)
    hop.accepted            complete and answered 2xx
    Message: mail_from, mail_params, rcpts (accepted), via ("DATA"|"BDAT"), raw (wire bytes:
             dot-stuffed, with the terminating ".\\r\\n"; BDAT: the chunks), data (unstuffed),
             size, chunks [sizes], complete, reply (code, text) or None, session, email()
    hop.violations()        client protocol errors seen (pipelining without PIPELINING, bare LF,
                            data before 354, SMTPUTF8 not advertised, ...)
    hop.wait_accepted(n) / wait_received(n) / wait_sessions(n) / wait_idle() / wait_for(pred)
"""
import email
import email.policy
import hashlib
import re
import socket
import ssl
import struct
import threading
import time

from .wait import WaitTimeout

STAGES = ("CONNECT", "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "DOT", "BDAT",
          "RSET", "NOOP", "QUIT", "VRFY", "OTHER")
_KEYWORDS = {"banner": "CONNECT", "data_reply": "DOT", **{s.lower(): s for s in STAGES}}

_DATA_STAGES = ("DATA", "BDAT")


def _stage(name, allowed=STAGES):
    """The stage a name designates ("banner" and "data_reply" are aliases), validated."""
    stage = _KEYWORDS.get(name.lower(), name.upper())
    if stage not in allowed:
        raise ValueError(f"NextHop: {name!r} is not one of {', '.join(allowed)}")
    return stage


# Hostile replies for robustness tests of the daemon's SMTP client.
GARBAGE = {
    "nul": b"250 2.0.0 OK\x00injected\r\n",
    "bare_cr": b"250 2.0.0 OK\rinjected\r\n",
    "bare_lf": b"250 2.0.0 OK\n",
    "overlong": b"250 " + b"x" * 10000 + b"\r\n",
    "not_smtp": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    "code_change": b"250-first line\r\n550 second line\r\n",
    "no_space": b"250OK\r\n",
    "starttls_inject": b"220 2.0.0 ready\r\n250 injected after 220\r\n",
}

DEFAULT_ADVERTISE = {"PIPELINING": True, "SIZE": "52428800", "8BITMIME": True, "SMTPUTF8": True,
                     "DSN": True, "ENHANCEDSTATUSCODES": True, "CHUNKING": False}


# -- actions ------------------------------------------------------------------------------
class _Drop:
    def __init__(self, rst):
        self.rst = rst

    def __repr__(self):
        return "RESET" if self.rst else "DROP"


DROP = _Drop(rst=False)
RESET = _Drop(rst=True)


class Stall:
    """Wait ``seconds`` (replies already due are flushed first), then perform ``then``."""

    def __init__(self, seconds, then=None):
        self.seconds, self.then = seconds, then

    def __repr__(self):
        return f"stall({self.seconds}, {self.then!r})"


def stall(seconds, then=None):
    return Stall(seconds, then)


class Seq:
    """Actions used one per occurrence (across all sessions); the last one repeats."""

    def __init__(self, *actions):
        self._actions, self._i, self._lock = list(actions), 0, threading.Lock()

    def next(self):
        with self._lock:
            action = self._actions[min(self._i, len(self._actions) - 1)]
            self._i += 1
            return action


def seq(*actions):
    return Seq(*actions)


class _Dropped(Exception):
    """The script (or stop()) ends the session without a reply."""


class _ClientEOF(Exception):
    """The client closed the connection in the middle of a data phase."""


def format_reply(text):
    """Wire form of a reply given as text (see the module docstring)."""
    lines = text.split("\n")
    m = re.match(r"^(\d{3})[ -]?", lines[0])
    if not m:
        raise ValueError(f"reply without a code: {text!r}")
    code = m.group(1)
    bodies = [re.sub(r"^\d{3}[ -]?", "", ln) for ln in lines]
    out = [f"{code}-{b}" for b in bodies[:-1]]
    out.append(f"{code} {bodies[-1]}" if bodies[-1] else code)
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def _reply_code(wire):
    return int(wire[:3]) if wire[:3].isdigit() else None


def _addr_key(arg):
    """The mailbox of a MAIL/RCPT argument: "FROM:<a@b> X=y" -> ("a@b", "X=y")."""
    m = re.match(r"^(?:FROM|TO):\s*<([^>]*)>\s*(.*)$", arg, re.I)
    if m:
        return m.group(1), m.group(2)
    head, _, rest = arg.partition(":")[2].strip().partition(" ")
    return head, rest


def _lookup_address(table, address):
    low = address.lower()
    for key in (low, "@" + low.rpartition("@")[2], "*@" + low.rpartition("@")[2], "*"):
        for k, v in table.items():
            if k.lower() == key:
                return v, True
    return None, False


# -- records ------------------------------------------------------------------------------
class Message:
    """One mail transaction's data phase as the next hop saw it."""

    def __init__(self, session, mail_from, mail_params, rcpts, via):
        self.session, self.mail_from, self.mail_params = session, mail_from, mail_params
        self.rcpts, self.via = list(rcpts), via
        self.raw, self.data, self.size, self.sha256 = b"", b"", 0, None
        self.chunks, self.complete, self.reply = [], False, None

    def email(self):
        """The data parsed with the stdlib email package."""
        return email.message_from_bytes(self.data, policy=email.policy.SMTP)

    def header(self, name):
        return self.email().get(name)

    def __repr__(self):
        return (f"<Message from={self.mail_from!r} to={self.rcpts} via={self.via} "
                f"size={self.size} complete={self.complete} reply={self.reply}>")


class Session:
    """One connection to the next hop."""

    def __init__(self, number, peer):
        self.number, self.peer, self.started = number, peer, time.time()
        self.helo, self.last_reply = None, None
        self.commands, self.transcript, self.violations = [], [], []
        self.pipelined = []          # commands that arrived with more input behind them
        self.mails, self.rcpts, self.messages = [], [], []
        self.tls, self.tls_version, self.sni, self.tls_resumed = False, None, None, False
        self.ended_by, self.error, self.ended = None, None, None
        self.mail, self.accepted_rcpts, self.bdat = None, [], None   # transaction state

    @property
    def open(self):
        return self.ended is None

    def __repr__(self):
        return (f"<Session #{self.number} {self.peer} tls={self.tls} "
                f"commands={self.commands} ended_by={self.ended_by}>")


# -- connection I/O -----------------------------------------------------------------------
class _Conn:
    """Buffered socket: replies are queued and flushed when the input runs dry."""

    def __init__(self, sock, timeout):
        self.sock, self.timeout = sock, timeout
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.sock.settimeout(timeout)

    def write(self, data):
        self.outbuf += data

    def flush(self):
        if self.outbuf:
            self.sock.sendall(self.outbuf)
            self.outbuf.clear()

    def fill(self):
        """Read more input (flushing replies first); False at EOF."""
        self.flush()
        chunk = self.sock.recv(262144)
        if not chunk:
            return False
        self.inbuf += chunk
        return True

    def readline(self, limit=65536):
        """One line with its ending, or None at EOF (a partial last line is returned)."""
        while True:
            end = self.inbuf.find(b"\n")
            if end >= 0 or len(self.inbuf) > limit:
                end = end if end >= 0 else limit - 1
                line = bytes(self.inbuf[:end + 1])
                del self.inbuf[:end + 1]
                return line
            if not self.fill():
                return bytes(self.inbuf) if self.inbuf else None

    def read_exact(self, n):
        while len(self.inbuf) < n:
            if not self.fill():
                raise _ClientEOF()
        data = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        return data


# -- the server ---------------------------------------------------------------------------
class NextHop:
    """A scripted SMTP next hop; see the module docstring for the whole API."""

    def __init__(self, host="127.0.0.2", port=0, hostname="nexthop.test", tls=None,
                 timeout=60.0, keep_data=True, **script):
        self.host, self.hostname, self.timeout, self.keep_data = host, hostname, timeout, keep_data
        self.tls_context = self._tls_context(tls)
        self.sessions, self.messages, self.received, self.accepted = [], [], [], []
        self.connections = 0
        self._cond = threading.Condition()
        self._msg_counter = 0
        self._threads, self._conns = set(), set()
        self._stopping, self._stop_event = False, threading.Event()
        self.set(**script)
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(1024)
        self.port = self._lsock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"nexthop-{host}:{self.port}")
        self._acceptor.start()

    # -- configuration ------------------------------------------------------------------
    @staticmethod
    def _tls_context(tls):
        if tls is None or isinstance(tls, ssl.SSLContext):
            return tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        ctx.sni_callback = _remember_sni
        return ctx

    def set(self, advertise=None, extensions=None, stall=None, drop=None, drop_after=None,
            stall_after=None, **actions):
        """(Re)define the script; keywords as for the constructor.  Unset stages use defaults."""
        table = {}
        for key, action in actions.items():
            if key not in _KEYWORDS:
                raise TypeError(f"NextHop: unknown keyword {key!r}")
            table[_KEYWORDS[key]] = action
        for name in drop or ():
            table[_stage(name)] = DROP
        for name, seconds in (stall or {}).items():
            table[_stage(name)] = Stall(seconds, table.get(_stage(name)))
        adv = dict(DEFAULT_ADVERTISE, STARTTLS=self.tls_context is not None)
        adv.update({k.upper(): v for k, v in (advertise or {}).items()})
        with self._cond:
            self._actions = table
            self._advertise, self._extensions = adv, extensions
            self._drop_after = {_stage(k, _DATA_STAGES): v for k, v in (drop_after or {}).items()}
            self._stall_after = {_stage(k, _DATA_STAGES): v
                                 for k, v in (stall_after or {}).items()}

    def advertised(self, name, session=None):
        """Whether extension ``name`` is offered (STARTTLS only before TLS)."""
        if self._extensions is not None:
            return any(e.split()[0].upper() == name for e in self._extensions)
        if name == "STARTTLS" and session is not None and session.tls:
            return False
        return bool(self._advertise.get(name))

    def _ehlo_lines(self, session, arg):
        if self._extensions is not None:
            exts = list(self._extensions)
        else:
            exts = []
            for name, value in self._advertise.items():
                if value and self.advertised(name, session):
                    exts.append(name if value is True else f"{name} {value}")
        return [f"250-{self.hostname} hello {arg}"] + exts

    # -- properties and waits -----------------------------------------------------------
    @property
    def route(self):
        """The next hop as written in a route: "[127.0.0.2]:PORT"."""
        return f"[{self.host}]:{self.port}"

    def violations(self):
        return [f"session #{s.number}: {v}" for s in self.sessions for v in s.violations]

    def all_commands(self):
        return [c for s in self.sessions for c in s.commands]

    def summary(self):
        """Human-readable record of every session, for failure messages."""
        out = [f"NextHop {self.route}: {self.connections} connections, "
               f"{len(self.messages)} messages"]
        for s in self.sessions:
            out.append(f"  #{s.number} ended_by={s.ended_by} tls={s.tls} error={s.error}")
            out.extend(f"    {d} {t}" for d, t in s.transcript[-40:])
        return "\n".join(out)

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        """Wait until ``predicate(self)`` is true; AssertionError with a summary on timeout."""
        with self._cond:
            if self._cond.wait_for(lambda: predicate(self), timeout):
                return
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}\n{self.summary()}")

    def wait_accepted(self, n=1, timeout=10.0):
        self.wait_for(lambda h: len(h.accepted) >= n, timeout, f"{n} accepted message(s)")
        return list(self.accepted)

    def wait_received(self, n=1, timeout=10.0):
        self.wait_for(lambda h: len(h.received) >= n, timeout, f"{n} received message(s)")
        return list(self.received)

    def wait_sessions(self, n=1, timeout=10.0):
        self.wait_for(lambda h: len(h.sessions) >= n, timeout, f"{n} session(s)")
        return list(self.sessions)

    def wait_idle(self, timeout=10.0):
        """Wait until every session so far has ended."""
        self.wait_for(lambda h: all(not s.open for s in h.sessions), timeout, "all sessions ended")

    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Stop listening and cut every open session; bounded."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_event.set()
        for s in [self._lsock] + [c.sock for c in list(self._conns)]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._lsock.close()
        self._acceptor.join(5)
        for t in list(self._threads):
            t.join(5)

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, peer = self._lsock.accept()
            except OSError:
                return
            with self._cond:
                self.connections += 1
                session = Session(self.connections, peer)
                self.sessions.append(session)
                self._cond.notify_all()
            conn = _Conn(sock, self.timeout)
            self._conns.add(conn)
            t = threading.Thread(target=self._run_session, args=(conn, session), daemon=True)
            self._threads.add(t)
            t.start()

    def _run_session(self, conn, session):
        try:
            session.ended_by = self._converse(conn, session)
            conn.flush()
        except _Dropped:
            session.ended_by = "drop"
        except _ClientEOF:
            session.ended_by = "close"
        except socket.timeout:
            session.ended_by = "timeout"
        except ssl.SSLError as exc:
            session.ended_by, session.error = "tls-failed", str(exc)
        except (OSError, ValueError) as exc:
            session.ended_by, session.error = "error", str(exc)
        finally:
            self._conns.discard(conn)
            try:
                conn.sock.close()
            except OSError:
                pass
            session.ended = time.time()
            self._threads.discard(threading.current_thread())
            self._notify()

    # -- the conversation ---------------------------------------------------------------
    def _converse(self, conn, session):
        self._respond(conn, session, "CONNECT", "", self._default_banner)
        while True:
            raw = conn.readline()
            if raw is None:
                last = session.commands[-1].split(" ")[0].upper() if session.commands else ""
                return "RSET" if last == "RSET" else "close"
            line = self._record_command(conn, session, raw)
            verb, _, arg = line.partition(" ")
            handler = getattr(self, f"_cmd_{verb.upper()}", None) if verb.isalpha() else None
            outcome = (handler or self._cmd_OTHER)(conn, session, arg.strip())
            self._notify()
            if outcome == "QUIT":
                return "QUIT"

    def _record_command(self, conn, session, raw):
        if not raw.endswith(b"\r\n"):
            session.violations.append(f"command not ended by CRLF: {raw!r}")
        line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
        if conn.inbuf:
            session.pipelined.append(line)
            if not self.advertised("PIPELINING", session):
                session.violations.append(f"pipelined without PIPELINING: {line!r}")
        session.commands.append(line)
        session.transcript.append(("C", line))
        return line

    def _resolve(self, conn, session, stage, arg, default):
        """Turn the scripted action for ``stage`` into wire bytes (or raise _Dropped)."""
        action = self._actions.get(stage)
        while True:
            if isinstance(action, Seq):
                action = action.next()
            elif isinstance(action, dict):
                action, _ = _lookup_address(action, _addr_key(arg)[0])
            elif isinstance(action, Stall):
                self._sleep(conn, action.seconds)
                action = action.then
            elif isinstance(action, _Drop):
                self._drop(conn, action.rst)
            elif callable(action):
                action = action(session, arg)
            elif action is None:
                return default(session, arg)
            elif isinstance(action, (bytes, bytearray)):
                return bytes(action)
            else:
                return format_reply(str(action))

    def _sleep(self, conn, seconds):
        """Stall: flush what is due, then wait (cut short by stop())."""
        conn.flush()
        if self._stop_event.wait(seconds):
            raise _Dropped()

    def _drop(self, conn, rst):
        conn.flush()
        if rst:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise _Dropped()

    def _respond(self, conn, session, stage, arg, default):
        """Send the reply for ``stage`` (None: not scriptable); returns its code or None."""
        wire = self._resolve(conn, session, stage, arg, default)
        conn.write(wire)
        session.last_reply = wire.decode("utf-8", "surrogateescape").rstrip("\r\n")
        session.transcript.append(("S", session.last_reply))
        return _reply_code(wire)

    # -- default replies ----------------------------------------------------------------
    def _default_banner(self, session, arg):
        return format_reply(f"220 {self.hostname} ESMTP NextHop")

    @staticmethod
    def _fixed(text):
        return lambda session, arg: format_reply(text)

    def _default_dot(self, session, arg):
        with self._cond:
            self._msg_counter += 1
            n = self._msg_counter
        return format_reply(f"250 2.0.0 OK queued as {n}")

    # -- commands -----------------------------------------------------------------------
    def _cmd_EHLO(self, conn, session, arg):
        default = lambda s, a: format_reply("\n".join(self._ehlo_lines(s, a)))
        if self._respond(conn, session, "EHLO", arg, default) == 250:
            session.helo, session.mail, session.accepted_rcpts = arg, None, []

    def _cmd_HELO(self, conn, session, arg):
        if self._respond(conn, session, "HELO", arg, self._fixed(f"250 {self.hostname}")) == 250:
            session.helo, session.mail, session.accepted_rcpts = arg, None, []

    def _cmd_STARTTLS(self, conn, session, arg):
        ok = self.tls_context is not None and not session.tls
        default = self._fixed("220 2.0.0 ready to start TLS" if ok else "454 4.7.0 TLS not available")
        if self._respond(conn, session, "STARTTLS", arg, default) != 220 or not ok:
            return
        if conn.inbuf:
            session.violations.append(f"data after STARTTLS before the 220: {bytes(conn.inbuf)!r}")
            conn.inbuf.clear()
        conn.flush()
        self._handshake(conn, session)

    def _handshake(self, conn, session):
        conn.sock = self.tls_context.wrap_socket(conn.sock, server_side=True)
        session.tls, session.tls_version = True, conn.sock.version()
        session.tls_resumed = conn.sock.session_reused     # an abbreviated handshake
        session.sni = getattr(conn.sock, "nexthop_sni", None)
        session.helo, session.mail, session.accepted_rcpts = None, None, []

    def _cmd_MAIL(self, conn, session, arg):
        address, params = _addr_key(arg)
        if session.helo is None or session.mail is not None:
            session.violations.append(f"MAIL out of sequence: {arg!r}")
            code = self._respond(conn, session, None, arg, self._fixed("503 5.5.1 bad sequence"))
        else:
            self._check_mail_params(session, params)
            code = self._respond(conn, session, "MAIL", arg, self._fixed("250 2.1.0 sender ok"))
        session.mails.append((address, params, code))
        if code is not None and code // 100 == 2 and session.helo is not None:
            session.mail, session.accepted_rcpts = (address, params), []

    def _check_mail_params(self, session, params):
        for word in params.upper().split():
            key = word.partition("=")[0]
            need = {"SMTPUTF8": "SMTPUTF8", "BODY": "8BITMIME", "SIZE": "SIZE", "RET": "DSN",
                    "ENVID": "DSN"}.get(key)
            if need and not self.advertised(need, session):
                session.violations.append(f"MAIL parameter {word} but {need} not advertised")

    def _cmd_RCPT(self, conn, session, arg):
        address, params = _addr_key(arg)
        if session.mail is None:
            session.violations.append(f"RCPT without MAIL: {arg!r}")
            code = self._respond(conn, session, None, arg, self._fixed("503 5.5.1 need MAIL"))
        else:
            if ("NOTIFY=" in params.upper() or "ORCPT=" in params.upper()) \
                    and not self.advertised("DSN", session):
                session.violations.append(f"RCPT DSN parameters but DSN not advertised: {params}")
            code = self._respond(conn, session, "RCPT", arg,
                                 self._fixed("250 2.1.5 recipient ok"))
            if code is not None and code // 100 == 2:
                session.accepted_rcpts.append(address)
        session.rcpts.append((address, params, code))

    def _cmd_DATA(self, conn, session, arg):
        if conn.inbuf:
            session.violations.append(f"data sent before the 354: {bytes(conn.inbuf[:60])!r}")
        if session.mail is None or not session.accepted_rcpts:
            text = "554 5.5.1 no valid recipients" if session.mail else "503 5.5.1 need MAIL"
            self._respond(conn, session, None, arg, self._fixed(text))
            return
        if self._respond(conn, session, "DATA", arg, self._fixed("354 go ahead")) != 354:
            return
        msg = self._begin_message(session, "DATA")
        self._read_dot_data(conn, session, msg)
        self._end_message(conn, session, msg)

    def _begin_message(self, session, via):
        msg = Message(session, session.mail[0], session.mail[1], session.accepted_rcpts, via)
        with self._cond:
            self.messages.append(msg)
            session.messages.append(msg)
        return msg

    def _end_message(self, conn, session, msg):
        """The whole message is in: record it, then answer the final dot (or BDAT LAST)."""
        self._store(msg, msg.raw)
        msg.complete = True
        with self._cond:
            self.received.append(msg)
            self._cond.notify_all()
        code = self._respond(conn, session, "DOT", "", self._default_dot)
        msg.reply = (code, session.last_reply)
        session.mail, session.accepted_rcpts, session.bdat = None, [], None
        if code is not None and code // 100 == 2:
            with self._cond:
                self.accepted.append(msg)
                self._cond.notify_all()

    def _store(self, msg, raw):
        data = raw if msg.via == "BDAT" else _unstuff(raw)
        msg.size, msg.sha256 = len(data), hashlib.sha256(data).hexdigest()
        if self.keep_data:
            msg.raw, msg.data = bytes(raw), data
        else:
            msg.raw = msg.data = b""

    def _read_dot_data(self, conn, session, msg):
        """Read up to and including CRLF.CRLF; msg.raw gets the wire bytes."""
        acc, searched, stalled = bytearray(b"\r\n"), 0, False
        conn.flush()
        while True:
            acc += conn.inbuf
            conn.inbuf.clear()
            end = acc.find(b"\r\n.\r\n", max(searched - 4, 0))
            stalled = self._stall_mid_data(conn, "DATA", len(acc) - 2, stalled)
            limit = self._drop_after.get("DATA")
            if limit is not None and len(acc) - 2 >= limit and (end < 0 or end + 3 > limit):
                self._abort_data(conn, session, msg, bytes(acc[2:2 + limit]))
            if end >= 0:
                conn.inbuf[:0] = acc[end + 5:]
                msg.raw = bytes(acc[2:end + 5])
                self._check_bare_newlines(session, msg.raw)
                return
            searched = len(acc)
            if not conn.fill():
                self._abort_data(conn, session, msg, bytes(acc[2:]), dropped=False)

    def _stall_mid_data(self, conn, stage, received, stalled):
        spec = self._stall_after.get(stage)
        if spec and not stalled and received >= spec[0]:
            self._sleep(conn, spec[1])
            return True
        return stalled

    def _abort_data(self, conn, session, msg, raw, dropped=True):
        """The data phase ends without a complete message (scripted drop or client EOF)."""
        msg.raw = raw
        msg.size = len(raw)
        self._notify()
        if dropped:
            self._drop(conn, False)
        raise _ClientEOF()

    @staticmethod
    def _check_bare_newlines(session, raw):
        if re.search(rb"(?<!\r)\n|\r(?!\n)", raw):
            session.violations.append("bare CR or LF in DATA")

    def _cmd_BDAT(self, conn, session, arg):
        m = re.match(r"^(\d+)(\s+LAST)?\s*$", arg, re.I)
        if not self.advertised("CHUNKING", session):
            session.violations.append("BDAT without CHUNKING advertised")
        if not m:
            self._respond(conn, session, None, arg, self._fixed("501 5.5.4 bad BDAT syntax"))
            return
        size, last = int(m.group(1)), bool(m.group(2))
        chunk = self._read_chunk(conn, session, size)
        if session.mail is None or not session.accepted_rcpts:
            self._respond(conn, session, None, arg, self._fixed("554 5.5.1 no valid recipients"))
            return
        msg = session.bdat or self._begin_message(session, "BDAT")
        session.bdat = msg
        msg.raw += chunk
        msg.chunks.append(size)
        if last:
            self._end_message(conn, session, msg)
        else:
            self._respond(conn, session, "BDAT", arg, self._fixed(f"250 2.0.0 {size} octets received"))

    def _read_chunk(self, conn, session, size):
        """Read one BDAT chunk, applying drop_after / stall_after for BDAT."""
        before = sum(session.bdat.chunks) if session.bdat else 0
        limit = self._drop_after.get("BDAT")
        if limit is not None and before + size > limit:
            part = conn.read_exact(max(limit - before, 0))
            if session.mail is None:
                self._drop(conn, False)
            msg = session.bdat or self._begin_message(session, "BDAT")
            self._abort_data(conn, session, msg, msg.raw + part)
        spec = self._stall_after.get("BDAT")
        if spec and before <= spec[0] < before + size:
            self._sleep(conn, spec[1])
        return conn.read_exact(size)

    def _cmd_RSET(self, conn, session, arg):
        self._respond(conn, session, "RSET", arg, self._fixed("250 2.0.0 OK"))
        session.mail, session.accepted_rcpts, session.bdat = None, [], None

    def _cmd_NOOP(self, conn, session, arg):
        self._respond(conn, session, "NOOP", arg, self._fixed("250 2.0.0 OK"))

    def _cmd_VRFY(self, conn, session, arg):
        self._respond(conn, session, "VRFY", arg, self._fixed("252 2.5.2 cannot VRFY"))

    def _cmd_QUIT(self, conn, session, arg):
        self._respond(conn, session, "QUIT", arg, self._fixed(f"221 2.0.0 {self.hostname} bye"))
        return "QUIT"

    def _cmd_OTHER(self, conn, session, arg):
        self._respond(conn, session, "OTHER", arg, self._fixed("500 5.5.2 command not recognized"))


def _remember_sni(sslsock, name, ctx):
    """SNI callback: keep the name the client asked for on its socket."""
    sslsock.nexthop_sni = name


def _unstuff(raw):
    """Message data from DATA wire bytes (with the terminating dot line)."""
    body = raw[:-3] if raw.endswith(b".\r\n") else raw
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")
