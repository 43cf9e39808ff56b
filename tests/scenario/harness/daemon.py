"""Tandem: one tandem daemon under test, with its own config, spool and logs in a temp dir.

Normally obtained from the ``tandem`` factory fixture (conftest.py), which stops it at
teardown and fails the test if its paniclog has lines ``expect_panic`` does not account for
(True: one; N: N lines; a regex or a list of them: one line each), a sanitizer complained, or
any stop() found it dead, exiting non-zero, hung past SIGTERM or leaving children behind:

    t = tandem('''
        domainlist relay_to_domains = example.test
        acl_smtp_rcpt = check_rcpt
        begin routes
        example.test  [127.0.0.2]:%d
        begin acl
        check_rcpt:
          accept domains = +relay_to_domains
    ''' % hop.port)

The harness writes the main options it needs first (hostname, listen on a free 127.0.0.1 port,
spool_directory, log_directory, workers = 1); a main option that the caller's text sets itself
replaces the harness's line.  ``options={"name": "value"}`` adds or replaces main options too.

    t.port  t.spool  t.log_dir  t.config_path  t.dir  t.pid
    t.mainlog()  t.rejectlog()  t.paniclog()  t.stderr()       # text ("" if absent)
    t.wait_log(r"=> b@example.test", timeout=10, count=1, log="mainlog")  -> re.Match
    t.spool_ids()                  # message ids in spool/input (sorted)
    t.run(["queue", "list"])       # -> (rc, stdout, stderr): tandem queue -c FILE list
    t.connect()                    # SmtpConn to the daemon, banner read
    t.stop() -> rc   t.kill9()   t.restart()   t.running()
"""
import os
import re
import shlex
import signal
import subprocess
import textwrap
import time

from .ports import free_port
from .smtpclient import SmtpConn, SmtpError, SmtpTimeout
from .wait import wait_until

MSGID = re.compile(r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}$")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SANITIZER_ERROR = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:")


# Sanitizer settings for the daemon and the commands tests run (a sanitized build reads them;
# others ignore them).  A report is fatal (the worker aborts: the parent logs it in the
# paniclog and the harness finds it on stderr).  Leak checking is on for every process: the
# sanitizer build ends workers and the scheduler through exit() (-DTANDEM_LEAK_CHECK), and the
# parent and `tandem session` return from main().  Values already in the environment win.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_stacktrace=1",
    "LSAN_OPTIONS": "print_suppressions=0",
}


def tandem_binary():
    """The daemon under test: $TANDEM_BIN (relative to the repository), else build/tandem."""
    return os.path.join(REPO, os.environ.get("TANDEM_BIN") or os.path.join("build", "tandem"))


def tandem_env(extra=None):
    """The environment for running tandem: os.environ, sanitizer defaults, then ``extra``."""
    env = {**SANITIZER_ENV, **os.environ}
    env.update(extra or {})
    return env


_unusable = {}


def tandem_unusable_reason(binary=None):
    """None if ``binary`` looks able to serve; otherwise what is wrong with it.

    The probe runs ``serve`` on a config file that does not exist: a working binary complains
    about the file and exits 1 at once.  Usage text, status 64 (any option-parsing regression),
    another status, a crash or a hang mean the daemon under test is broken, and every test
    that needs it fails with this reason (it is never a skip: see conftest.py).
    """
    binary = binary or tandem_binary()
    if binary in _unusable:
        return _unusable[binary]
    reason = None
    if not os.access(binary, os.X_OK):
        reason = f"{binary} is not built or not executable (make all)"
    else:
        cmd = [binary, "serve", "-c", "/nonexistent/tandem.conf", "--foreground"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                               env=tandem_env())
            said = p.stderr.strip().splitlines()[:3]
            if p.returncode != 1 or "/nonexistent/tandem.conf" not in p.stderr:
                reason = (f"{binary} cannot serve: `{shlex.join(cmd[1:])}` exited with status "
                          f"{p.returncode} saying {said!r} (expected status 1 and a complaint "
                          "about the missing config file)")
        except subprocess.TimeoutExpired:
            reason = f"{binary} cannot serve: `serve` with a missing config file hung for 10s"
        except OSError as exc:
            reason = f"{binary} cannot be run: {exc}"
    _unusable[binary] = reason
    return reason


def _main_options(text):
    """Names of the main options (before the first `begin`) that ``text`` sets."""
    names = set()
    for line in text.splitlines():
        if re.match(r"^\s*begin\s+\w+", line):
            break
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if m:
            names.add(m.group(1))
    return names


def _live_members(pgid):
    """Pids of process group ``pgid`` that are not zombies (zombies hold no sockets, and
    whoever adopted them may reap them only now and then)."""
    live = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()     # state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(name))
    return live


class Tandem:
    """A tandem daemon on a free loopback port (see the module docstring)."""

    def __init__(self, directory, config="", options=None, binary=None, ready="banner",
                 expect_panic=False, env=None):
        self.dir = str(directory)
        self.binary = binary or tandem_binary()
        self.expect_panic, self.ready, self.env = expect_panic, ready, env
        self.killed_hard = False   # set when SIGTERM was not enough at stop()
        self.reaped = False             # stop() or kill9() ended this run (kill9: on purpose)
        self.shutdown_problems = []     # crashes and hangs seen by stop(), for check_teardown
        self.port = free_port()
        self.spool = os.path.join(self.dir, "spool")
        self.log_dir = os.path.join(self.dir, "log")
        self.config_path = os.path.join(self.dir, "tandem.conf")
        os.makedirs(self.log_dir, exist_ok=True)
        self.write_config(config, options)
        self.proc = None
        self._stderr_path = os.path.join(self.dir, "stderr.log")
        self.start()

    # -- configuration ------------------------------------------------------------------
    def defaults(self):
        return {"hostname": "tandem.test", "listen": f"127.0.0.1:{self.port}",
                "spool_directory": self.spool, "log_directory": self.log_dir, "workers": "1"}

    def write_config(self, config="", options=None):
        """(Re)write the config file: harness defaults, ``options``, then the caller's text."""
        config = textwrap.dedent(config).strip("\n")
        own = _main_options(config)
        merged = {k: v for k, v in {**self.defaults(), **(options or {})}.items() if k not in own}
        # t.spool and t.log_dir follow spool_directory and log_directory given in options.
        self.spool = os.path.abspath(merged.get("spool_directory", self.spool))
        if merged.get("log_directory", "syslog") != "syslog":
            self.log_dir = os.path.abspath(merged["log_directory"])
        head = "".join(f"{k} = {v}\n" for k, v in merged.items())
        self.config_text = f"# written by the scenario test harness\n{head}\n{config}\n"
        with open(self.config_path, "w") as f:
            f.write(self.config_text)

    # -- process control ----------------------------------------------------------------
    def start(self):
        """Start the daemon and wait until it is ready (see ``ready``)."""
        env = tandem_env(self.env)
        self.reaped = False
        with open(self._stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "-c", self.config_path, "--foreground"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.dir, env=env,
                start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.kill9()
            raise

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if not self.running():
                raise AssertionError(self.describe(
                    f"tandem exited during startup with status {self.proc.returncode}"))
            if self._probe(deadline):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(self.describe(
                    f"tandem not ready on 127.0.0.1:{self.port} after {STARTUP_TIMEOUT:g}s"))
            time.sleep(0.02)

    def _probe(self, deadline):
        """True once the port accepts (ready="port") and a banner arrives (ready="banner")."""
        try:
            conn = SmtpConn(self.port, banner=False, timeout=max(deadline - time.monotonic(), 0.1))
        except OSError:
            return False
        with conn:
            if self.ready == "port":
                return True
            try:
                conn.reply()
            except SmtpError as exc:
                if not isinstance(exc, SmtpTimeout) and not any(d == "S" for d, _ in
                                                                 conn.transcript):
                    return False          # closed before saying anything: still starting
                raise AssertionError(self.describe(f"no valid banner from tandem: {exc}"))
            try:
                conn.cmd("QUIT", timeout=2)
            except (SmtpError, OSError):
                pass
            return True

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM the process group, wait, SIGKILL what is left; returns the exit status.

        A daemon that had already died (kill9() aside), exits non-zero, needs the
        SIGKILL, or leaves children behind is noted in shutdown_problems: the fixture's
        teardown then fails the test (check_teardown)."""
        if self.proc is None:
            return None
        if self.reaped:                       # stopped or killed already: nothing new
            return self.proc.returncode
        self.reaped = True
        if self.proc.poll() is not None:
            if self.proc.returncode != 0:
                self._problem(f"the daemon died before stop() with status "
                              f"{self._status(self.proc.returncode)}")
        else:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed_hard = True
                self._problem(f"the daemon hung at shutdown: still running {timeout:g}s after "
                              "SIGTERM (killed with SIGKILL)")
            else:
                if self.proc.returncode != 0:
                    self._problem(f"the daemon exited with status "
                                  f"{self._status(self.proc.returncode)} on SIGTERM")
                left = self._wait_group_gone(2.0)
                if left:
                    self._problem(f"processes {left} were still running after the daemon "
                                  "exited (killed with SIGKILL)")
        self._signal_group(signal.SIGKILL)
        self.proc.wait(5)
        self._wait_group_gone()
        return self.proc.returncode

    @staticmethod
    def _status(rc):
        return f"{rc} (signal {-rc})" if rc < 0 else str(rc)

    def _problem(self, text):
        self.shutdown_problems.append(text)

    def kill9(self):
        """SIGKILL the whole process group at once (a crash) and reap the parent."""
        if self.proc is not None:
            self.reaped = True
            self._signal_group(signal.SIGKILL)
            self.proc.wait(5)
            self._wait_group_gone()

    def _wait_group_gone(self, timeout=5.0):
        """Wait (bounded) until the workers and the scheduler have exited too (returns the pids
        still alive): a killed child
        can hold the listening socket a little longer than the parent (seen with ASan
        builds, whose big mappings take a while to tear down), and a restart on the same
        port would then fail with "Address already in use"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _live_members(self.proc.pid):
            time.sleep(0.01)
        return _live_members(self.proc.pid)

    def restart(self, config=None, options=None):
        """Stop (if running) and start again on the same port, spool and logs."""
        if self.running():
            self.stop()
        if config is not None or options is not None:
            self.write_config(config or "", options)
        self.start()

    # -- logs and spool -----------------------------------------------------------------
    def _read(self, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mainlog(self):
        return self._read(os.path.join(self.log_dir, "mainlog"))

    def rejectlog(self):
        return self._read(os.path.join(self.log_dir, "rejectlog"))

    def paniclog(self):
        return self._read(os.path.join(self.log_dir, "paniclog"))

    def stderr(self):
        return self._read(self._stderr_path)

    def wait_log(self, regex, timeout=10.0, count=1, log="mainlog"):
        """Poll a log until ``regex`` matches ``count`` lines; returns the last match."""
        pattern = re.compile(regex, re.M)
        reader = getattr(self, log)

        def found():
            matches = list(pattern.finditer(reader()))
            return matches[count - 1] if len(matches) >= count else None
        return wait_until(found, timeout, f"{log} to match {regex!r} ({count}x)",
                          detail=lambda: self.describe(""))

    def spool_ids(self):
        """Ids of the messages in spool/input (journals and temporary files excluded)."""
        try:
            names = os.listdir(os.path.join(self.spool, "input"))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if MSGID.match(n))

    def describe(self, headline, tail=40):
        """``headline`` plus the daemon's stderr and the tails of its logs."""
        parts = [headline] if headline else []
        for name, text in (("stderr", self.stderr()), ("mainlog", self.mainlog()),
                           ("paniclog", self.paniclog())):
            lines = text.splitlines()[-tail:]
            parts.append(f"--- {name} (last {len(lines)} lines) ---")
            parts.extend(lines)
        return "\n".join(parts)

    # -- other commands -----------------------------------------------------------------
    def run(self, args, input=None, timeout=30, config=True):
        """Run ``tandem SUBCOMMAND -c FILE REST...``; returns (rc, stdout, stderr).

        ``args`` is a list or a shell-like string ("queue list"); ``-c FILE`` goes right after
        the subcommand, as doc/config.md writes it (``config=False`` leaves it out, e.g. for
        ``version``).  ``input`` (bytes or str) is fed to stdin, e.g. for ``session``.
        """
        args = shlex.split(args) if isinstance(args, str) else list(args)
        conf = ["-c", self.config_path] if config else []
        cmd = [self.binary, args[0], *conf, *args[1:]]
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, cwd=self.dir,
                           env=tandem_env(self.env))
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def connect(self, **kwargs):
        """An SmtpConn to the daemon (banner read unless banner=False)."""
        return SmtpConn(self.port, **kwargs)

    def unexpected_panics(self):
        """Paniclog lines that ``expect_panic`` does not account for.

        ``expect_panic``: False (none), True (one line, whatever it says), a number of lines,
        or a regex or list of regexes, each accounting for one line.  A second panic (say a
        restarted scheduler crashing during recovery) is therefore never hidden by the first.
        """
        expected = self.expect_panic
        if expected is True or expected is False or isinstance(expected, int):
            patterns = [""] * int(expected)
        elif isinstance(expected, str):
            patterns = [expected]
        else:
            patterns = list(expected or [])
        patterns.sort(key=lambda p: p == "")          # the specific ones match first
        unexpected = []
        for line in filter(str.strip, self.paniclog().splitlines()):
            for i, pattern in enumerate(patterns):
                if re.search(pattern, line):
                    del patterns[i]
                    break
            else:
                unexpected.append(line)
        return unexpected

    def check_teardown(self):
        """Raise AssertionError if the paniclog or stderr shows something wrong, or the daemon
        crashed or hung at shutdown."""
        problems = list(self.shutdown_problems)
        unexpected = self.unexpected_panics()
        if unexpected:
            problems.append("paniclog is not empty" if not self.expect_panic else
                            f"unexpected panic(s) beyond expect_panic={self.expect_panic!r}: "
                            f"{unexpected}")
        if SANITIZER_ERROR.search(self.stderr()):
            problems.append("sanitizer error on stderr")
        if problems:
            raise AssertionError(self.describe("; ".join(problems)))


__all__ = ["Tandem", "tandem_binary", "tandem_env", "tandem_unusable_reason", "MSGID"]
