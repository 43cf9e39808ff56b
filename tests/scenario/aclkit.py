"""Helpers for the ACL scenario tests: run whole scripted SMTP sessions through
`tandem session --no-deliver --client IP` (one process per session, no daemon), parse the
replies, and see what each session added to the logs.

    box = policy_box(tmp_path, CONFIG)                # a config that is never served
    r = box.session(["EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<x@example.test>"],
                    client="192.0.2.1")
    r.codes            # [220, 250, 250, 550, 221]   (a QUIT is added unless quit=False)
    r.replies[3]       # (550, ["5.7.1 relay not permitted"])
    r.reply_to("RCPT TO:<x@example.test>")            # the reply to that step
    r.main, r.reject   # the lines this session added to mainlog / rejectlog
    r.closed_early     # the session ended before every step was answered (drop)

A step is a command line (str, CRLF added) or raw bytes sent as they are (a message body with
its final ".\r\n"): the replies are matched to the steps in order, the banner first (DATA is
answered by the 354, the body by the final reply).  daemon_session(t, steps, client) has the
same conversation with a running daemon over TCP, one step at a time.
"""
import os
import re
import time

from harness import SmtpConn, SmtpError, Tandem

REPLY_LINE = re.compile(r"^(\d{3})([ -])(.*)$")


def parse_replies(out):
    """Server output -> [(code, [text of each line])]; raises ValueError on a malformed line."""
    replies, lines = [], []
    for raw in out.split("\r\n"):
        if raw == "":
            continue
        m = REPLY_LINE.match(raw)
        if not m:
            raise ValueError(f"not an SMTP reply line: {raw!r}")
        lines.append(m.group(3))
        if m.group(2) == " ":
            replies.append((int(m.group(1)), lines))
            lines = []
    if lines:
        raise ValueError(f"unterminated multi-line reply: {lines!r}")
    return replies


class SessionResult:
    """What a scripted session got: the replies, one answer per step, and the log lines."""

    def __init__(self, steps, replies, main, reject, rc=0, out="", err=""):
        self.steps, self.replies, self.main, self.reject = steps, replies, main, reject
        self.rc, self.out, self.err = rc, out, err
        self.codes = [code for code, _ in replies]
        self.banner = replies[0] if replies else None
        # one answer per step, in order (None when the session ended first)
        rest = replies[1:]
        self.answers = [rest[i] if i < len(rest) else None for i in range(len(steps))]
        self.closed_early = bool(self.answers) and self.answers[-1] is None

    def reply_to(self, step):
        """The (code, lines) answering ``step`` (the first step equal to it), or None."""
        return self.answers[self.steps.index(step)]

    def __repr__(self):
        return (f"<session codes={self.codes} rc={self.rc}\n{self.replies}\n"
                f"--- main\n{self.main}--- reject\n{self.reject}{self.err}>")


def _script(steps):
    return b"".join(s if isinstance(s, (bytes, bytearray)) else s.encode() + b"\r\n"
                    for s in steps)


class _LogDelta:
    """The lines a daemon or a session appends to mainlog and rejectlog meanwhile."""

    def __init__(self, log_dir):
        self.paths = {n: os.path.join(log_dir, n + "log") for n in ("main", "reject")}
        self.start = {n: os.path.getsize(p) if os.path.exists(p) else 0
                      for n, p in self.paths.items()}

    def read(self, name):
        try:
            with open(self.paths[name], "rb") as f:
                f.seek(self.start[name])
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def daemon_session(t, steps, client="127.0.0.1", quit=True, timeout=10):
    """The same conversation as PolicyBox.session, over TCP with a running Tandem ``t``, one
    step at a time (each reply is read before the next step is sent), from source ``client``."""
    steps = list(steps) + (["QUIT"] if quit else [])
    logs = _LogDelta(t.log_dir)
    replies = []
    with SmtpConn(t.port, source=client, banner=False, timeout=timeout) as c:
        try:
            replies.append(c.reply())
            for step in steps:
                c.send(step if isinstance(step, (bytes, bytearray)) else step + "\r\n")
                replies.append(c.reply())
                if replies[-1][0] == 221:
                    break
            c.assert_closed()
        except (SmtpError, OSError):
            pass                                  # the server closed the connection
    time.sleep(0.05)                              # lines logged after the last reply
    return SessionResult(steps, replies, logs.read("main"), logs.read("reject"))


class PolicyBox(Tandem):
    """A Tandem whose config is written but never served (see the module docstring)."""

    def start(self):                     # noqa: D102 - nothing to start
        self.proc = None

    def session(self, steps, client="192.0.2.1", quit=True, no_deliver=True, timeout=30):
        """Run one scripted session (all steps written at once); returns a SessionResult."""
        steps = list(steps) + (["QUIT"] if quit else [])
        logs = _LogDelta(self.log_dir)
        args = ["session"] + (["--no-deliver"] if no_deliver else []) + ["--client", client]
        rc, out, err = self.run(args, input=_script(steps), timeout=timeout)
        return SessionResult(steps, parse_replies(out), logs.read("main"), logs.read("reject"),
                             rc, out, err)


def policy_box(directory, config, options=None):
    """A PolicyBox in ``directory`` (created) with the harness's default main options."""
    os.makedirs(directory, exist_ok=True)
    box = PolicyBox(directory, config, options=options)
    for name in ("mainlog", "rejectlog"):
        open(os.path.join(box.log_dir, name), "a").close()
    return box


def log_lines(text):
    """Log text -> lines without their timestamps."""
    return [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", ln) for ln in text.splitlines()]
