"""Programs nobody here wrote, as peers: swaks, Postfix's smtp-source/smtp-sink, and Exim.

    r = swaks(port, to="u@example.test", args=["--pipeline"])     # SwaksResult(rc, transcript)
    r.ok; r.replies -> ["220 ...", "250 ...", ...]
    p = smtp_source(port, count=100, sessions=5, to="u@example.test")   # (rc, stdout, stderr)
    with SmtpSink() as sink:                  # 127.0.0.1:<free port>, every message dumped
        ...; sink.wait_count(100); sink.messages() -> [bytes]
    with EximPeer() as exim:                  # Exim accepting all mail into one maildir
        ...; exim.wait_messages(1); exim.messages() -> [bytes]; exim.mainlog()
    with EximPeer(relay_to=t.port) as exim:   # Exim relaying every message to tandem
        exim.send("a@client.test", ["b@example.test"], b"Subject: x\\r\\n\\r\\nhi\\r\\n")

Postfix tools come from <repo>/build/postfix (``scripts/install-deps --test`` extracts them)
and run with LD_LIBRARY_PATH pointing at its libraries.  smtp-sink refuses to run as root
without ``-u nobody``; to let it write its dump files without any directory being opened up
to ``nobody``, it is started chrooted (``-R``) into a dump directory owned by nobody.

Exim (Debian's exim4-daemon-heavy) runs as ``exim -C FILE -bdf -oX PORT``.  Debian's Exim
keeps root privilege for a ``-C`` file only if that file is listed in
/etc/exim4/trusted_configs; otherwise it logs "exim user lost privilege" and carries on as
Debian-exim.  Every delivery runs as Debian-exim anyway (uid 0 is in its never_users), so the
peer's directory (spool, log, maildir, TLS files) lives outside pytest's root-only tmp tree,
owned by Debian-exim, and listing the config as trusted is opt-in (``trusted=True``, root
only; the entry is removed at stop).
"""
import fcntl
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import textwrap

from .ports import free_port, port_open
from .wait import wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
POSTFIX_DIR = os.environ.get("POSTFIX_DIR") or os.path.join(REPO, "build", "postfix")
EXIM_TRUSTED_CONFIGS = "/etc/exim4/trusted_configs"
EXIM_USER = "Debian-exim"


def _postfix_tool(name):
    return os.path.join(POSTFIX_DIR, "usr", "sbin", name)


def _postfix_env():
    return dict(os.environ, LD_LIBRARY_PATH=os.path.join(POSTFIX_DIR, "usr", "lib", "postfix"))


def have_postfix_tools():
    return all(os.access(_postfix_tool(n), os.X_OK) for n in ("smtp-sink", "smtp-source"))


def have_swaks():
    return shutil.which("swaks") is not None


def swaks_has_tls():
    """swaks --tls needs Perl's Net::SSLeay (Debian: libnet-ssleay-perl)."""
    return have_swaks() and subprocess.run(["perl", "-MNet::SSLeay", "-e", "1"],
                                           capture_output=True).returncode == 0


def have_exim():
    return shutil.which("exim") is not None or os.access("/usr/sbin/exim", os.X_OK)


def _stop_process(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- swaks --------------------------------------------------------------------------------
class SwaksResult:
    """swaks' exit status and transcript (stdout and stderr together)."""

    def __init__(self, rc, transcript):
        self.rc, self.transcript = rc, transcript

    @property
    def ok(self):
        return self.rc == 0

    @property
    def replies(self):
        """Server lines of the transcript ("<-  250 OK" / "<** 550 ..."), without the arrow."""
        return [m.group(1) for m in re.finditer(r"^<[-*~]+\s+(.*)$", self.transcript, re.M)]

    def __repr__(self):
        return f"SwaksResult(rc={self.rc})\n{self.transcript}"


def swaks(port, to="user@example.test", sender="sender@client.test", host="127.0.0.1",
          helo="client.test", args=(), timeout=60):
    """Run swaks against host:port; returns SwaksResult (rc 0 = message accepted)."""
    cmd = ["swaks", "--server", f"{host}:{port}", "--to", to, "--from", sender,
           "--helo", helo, "--timeout", "30", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return SwaksResult(p.returncode, p.stdout + p.stderr)


# -- Postfix smtp-source / smtp-sink ------------------------------------------------------
def smtp_source(port, count=1, sessions=1, to="user@example.test", sender="sender@client.test",
                host="127.0.0.1", size=None, rcpts=None, reuse=False, args=(), timeout=300):
    """Run Postfix's smtp-source; returns (rc, stdout, stderr).

    ``count`` messages over ``sessions`` parallel sessions; ``size`` bytes of body; ``rcpts``
    recipients per message; ``reuse`` sends the messages of a session over one connection.
    """
    cmd = [_postfix_tool("smtp-source"), "-m", str(count), "-s", str(sessions),
           "-f", sender, "-t", to, "-M", "client.test"]
    if size is not None:
        cmd += ["-l", str(size)]
    if rcpts is not None:
        cmd += ["-r", str(rcpts)]
    if reuse:
        cmd.append("-d")
    cmd += [*args, f"{host}:{port}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_postfix_env(),
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


class SmtpSink:
    """Postfix's smtp-sink on host:port, dumping each message to a file (``dump=True``)."""

    def __init__(self, host="127.0.0.1", port=None, dump=True, args=(), backlog=256):
        self.host, self.port = host, port or free_port(host)
        self.work = tempfile.mkdtemp(prefix="tandem-sink-")
        self.dump_dir = os.path.join(self.work, "dump") if dump else None
        cmd = [_postfix_tool("smtp-sink"), "-u", "nobody", *args]
        if dump:
            os.mkdir(self.dump_dir)
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)
            cmd += ["-R", self.dump_dir, "-d", "/msg."]
        cmd += [f"{self.host}:{self.port}", str(backlog)]
        self.log_path = os.path.join(self.work, "sink.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=_postfix_env(),
                                         stdin=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.host, self.port) or self.proc.poll() is not None,
                   10, "smtp-sink to listen", detail=self.log)
        if self.proc.poll() is not None:
            raise RuntimeError(f"smtp-sink exited: {self.log()}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def files(self):
        if not self.dump_dir:
            return []
        return sorted(glob.glob(os.path.join(self.dump_dir, "msg.*")))

    def count(self):
        return len(self.files())

    def wait_count(self, n, timeout=30):
        wait_until(lambda: self.count() >= n, timeout, f"{n} messages in smtp-sink",
                   detail=lambda: f"{self.count()} so far")

    def messages(self):
        """Each dump file: smtp-sink's X-Client-Addr/X-Mail-Args/... headers, then the message."""
        out = []
        for path in self.files():
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        _stop_process(self.proc)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# -- Exim ---------------------------------------------------------------------------------
EXIM_CONFIG = """\
# Exim peer for tandem's scenario tests (written by harness/interop.py)
keep_environment =
primary_hostname = {hostname}
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
local_interfaces = {host}
host_lookup =
rfc1413_hosts =
smtp_accept_queue_per_connection = 0
smtp_accept_max = 500
smtp_accept_max_per_host = 500
domainlist local_domains = {domains}
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
{tls}
{extra_main}

begin acl
acl_rcpt:
{rcpt_acl}
acl_data:
  accept

begin routers
{router}

begin transports
maildir:
  driver = appendfile
  directory = {dir}/mail
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = {user}
  group = {user}
  mode = 0644
to_next_hop:
  driver = smtp
  port = {relay_port}
  allow_localhost
  hosts_try_chunking = {chunking}
{transport_extra}

begin retry
*  *  F,1h,1m
"""

LOCAL_ROUTER = """\
local_all:
  driver = accept
  transport = maildir"""

RELAY_ROUTER = """\
relay_all:
  driver = manualroute
  route_list = * {relay_host}
  self = send
  transport = to_next_hop
  no_more"""


class EximPeer:
    """Exim 4 as a next hop (delivering into a maildir) or as a client relay (``relay_to``).

    ``domains`` (Exim list) are accepted, everything else gets 550; ``tls=(cert, key)``
    offers STARTTLS; ``rcpt_acl`` replaces the RCPT ACL body; ``extra_main`` and
    ``transport_extra`` (lines for the to_next_hop smtp transport) are added verbatim.
    """

    def __init__(self, host="127.0.0.1", port=None, domains="*", relay_to=None,
                 relay_host="127.0.0.1", tls=None, rcpt_acl=None, extra_main="",
                 transport_extra="", chunking=False, trusted=False, hostname="exim-peer.test"):
        self.host, self.port = host, port or free_port(host)
        self.trusted = trusted and os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="tandem-exim-")
        self.config_path = os.path.join(self.dir, "exim.conf")
        self.maildir = os.path.join(self.dir, "mail")
        self._prepare_dir()
        settings = dict(
            hostname=hostname, dir=self.dir, host=host, domains=domains,
            tls=self._tls_lines(tls), extra_main=textwrap.dedent(extra_main),
            rcpt_acl=textwrap.indent(textwrap.dedent(rcpt_acl or "accept domains = +local_domains\n"
                                                     "deny message = relay not permitted"), "  "),
            router=RELAY_ROUTER.format(relay_host=relay_host) if relay_to else LOCAL_ROUTER,
            user=EXIM_USER, relay_port=relay_to or 25, chunking="*" if chunking else "",
            transport_extra=textwrap.indent(textwrap.dedent(transport_extra), "  "))
        self._write_config(EXIM_CONFIG.format(**settings))
        self._start()

    def _prepare_dir(self):
        uid, gid = pwd.getpwnam(EXIM_USER).pw_uid, grp.getgrnam(EXIM_USER).gr_gid
        os.chmod(self.dir, 0o755)
        for sub in ("spool", "log", "mail"):
            os.makedirs(os.path.join(self.dir, sub))
        for path in [self.dir] + [os.path.join(self.dir, s) for s in ("spool", "log", "mail")]:
            os.chown(path, uid, gid)

    def _tls_lines(self, tls):
        if not tls:
            return "tls_advertise_hosts ="
        cert, key = (shutil.copy(src, os.path.join(self.dir, name))
                     for src, name in zip(tls, ("tls.crt", "tls.key")))
        os.chmod(key, 0o644)
        return f"tls_advertise_hosts = *\ntls_certificate = {cert}\ntls_privatekey = {key}"

    def _write_config(self, text):
        """Root-owned, not group/world-writable: what Exim requires of a -C file."""
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o644)
        if self.trusted:
            _trusted_configs(add=self.config_path)

    def _start(self):
        self.out_path = os.path.join(self.dir, "exim.out")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                ["exim", "-C", self.config_path, "-bdf", "-oX", str(self.port)],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: port_open(self.host, self.port) or self.proc.poll() is not None,
                   15, "Exim to listen", detail=self.describe)
        if self.proc.poll() is not None:
            raise RuntimeError(self.describe())

    # -- results ------------------------------------------------------------------------
    def _read(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mainlog(self):
        return self._read("log/mainlog")

    def paniclog(self):
        return self._read("log/paniclog")

    def describe(self):
        return (f"--- exim output ---\n{self._read('exim.out')}\n--- exim mainlog ---\n"
                f"{self.mainlog()}\n--- exim paniclog ---\n{self.paniclog()}")

    def message_files(self):
        return sorted(glob.glob(os.path.join(self.maildir, "new", "*")) +
                      glob.glob(os.path.join(self.maildir, "cur", "*")))

    def messages(self):
        """The delivered messages (Return-path, Envelope-to, Delivery-date headers added)."""
        out = []
        for path in self.message_files():
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, n=1, timeout=20):
        wait_until(lambda: len(self.message_files()) >= n, timeout,
                   f"{n} message(s) in the Exim peer's maildir", detail=self.describe)
        return self.messages()

    def wait_log(self, regex, timeout=20):
        return wait_until(lambda: re.search(regex, self.mainlog(), re.M), timeout,
                          f"Exim mainlog to match {regex!r}", detail=self.describe)

    def send(self, sender, rcpts, body, timeout=30):
        """Submit one message to this Exim over SMTP; returns smtplib's refused dict."""
        with smtplib.SMTP(self.host, self.port, local_hostname="client.test",
                          timeout=timeout) as s:
            return s.sendmail(sender, rcpts, body)

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self, keep=False):
        """Stop the daemon (and its delivery children) and remove its directory."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.trusted:
            _trusted_configs(remove=self.config_path)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _trusted_configs(add=None, remove=None):
    """Add or remove one line of Exim's trusted_configs, under an exclusive lock."""
    fd = os.open(EXIM_TRUSTED_CONFIGS, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = [ln for ln in f.read().splitlines() if ln and ln != remove]
        if add and add not in lines:
            lines.append(add)
        f.seek(0)
        f.truncate()
        f.write("".join(ln + "\n" for ln in lines))
