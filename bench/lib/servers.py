"""The servers bench/run measures, each started under reaper.py on a loopback port.

    sink = Sink(workdir)                       # Postfix smtp-sink: the physical reference
    t = Tandem(workdir, binary, sink.port, cutthrough=True, tls=(cert, key))
    e = Exim(workdir, sink.port, cutthrough=False)
    server.port; server.tree (ProcTree); server.stop()
    sink.count()                               # messages the sink has received (its -c counter)
    t.log_count(">>"); t.spool_count(); t.ehlo_keywords()

smtp-sink throws every message away (no dump files: disk would make it the bottleneck) and
prints running counters (-c), which tell how many messages reached it.  It refuses to run as
root without -u nobody, and handles at most -m connections at once (default 256: raised).
"""
import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from proctree import ProcTree
from util import (PYTHON, REAPER, banner_ok, free_port, postfix_env, postfix_tool, read_tail,
                  wait_until)
import configs

EXIM_TRUSTED_CONFIGS = "/etc/exim4/trusted_configs"
EXIM_USER = "Debian-exim"


class Server:
    """A command run under reaper.py, listening on 127.0.0.1:port."""

    name = "server"

    def _launch(self, cmd, out_path, env=None):
        self.out_path = out_path
        with open(out_path, "wb") as out:
            self.proc = subprocess.Popen([PYTHON, REAPER, *cmd], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        self.tree = ProcTree(self.proc.pid)
        try:
            wait_until(lambda: self.proc.poll() is not None or banner_ok("127.0.0.1", self.port),
                       20, f"{self.name} to answer on port {self.port}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {read_tail(out_path)}")
        except RuntimeError:
            self.stop()                 # and whatever stop() tidies (Exim's trusted config)
            raise

    def stop(self, timeout=20):
        """SIGTERM (the reaper passes it on), then SIGKILL whatever is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in self.tree.members():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait(5)

    def output(self):
        return read_tail(self.out_path)

    def ehlo_keywords(self):
        """The EHLO keywords this server advertises (upper case)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rwb")
            f.readline()
            f.write(b"EHLO client.test\r\n")
            f.flush()
            words = []
            while True:
                line = f.readline().decode("ascii", "replace")
                words.append(line[4:].split(" ")[0].strip().upper())
                if len(line) < 4 or line[3] != "-":
                    break
            f.write(b"QUIT\r\n")
            f.flush()
            return words[1:]


class Sink(Server):
    """Postfix smtp-sink on 127.0.0.1, counting and discarding messages."""

    name = "smtp-sink"

    def __init__(self, workdir, max_conns=30000, backlog=4096):
        self.port = free_port()
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        root = ["-u", "nobody"] if os.geteuid() == 0 else []   # it refuses root without -u
        cmd = [postfix_tool("smtp-sink"), *root, "-c", "-m", str(max_conns),
               "-t", "300", f"127.0.0.1:{self.port}", str(backlog)]
        self._launch(cmd, os.path.join(workdir, "sink.out"), env=postfix_env())

    def count(self):
        """Messages received so far (the last 'mesg=N' of smtp-sink's counter line)."""
        found = re.findall(r"mesg=(\d+)", read_tail(self.out_path, 256))
        return int(found[-1]) if found else 0


class Tandem(Server):
    """tandem relaying to the sink, with cutthrough or store-and-forward."""

    def __init__(self, workdir, binary, sink_port, cutthrough=True, tls=None, extra=""):
        self.name = "tandem " + ("cutthrough" if cutthrough else "store-and-forward")
        self.dir, self.port = workdir, free_port()
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        self.config_path = os.path.join(workdir, "tandem.conf")
        with open(self.config_path, "w") as f:
            f.write(configs.tandem_config(workdir, self.port, sink_port, cutthrough, tls, extra))
        check = subprocess.run([binary, "check-config", "-c", self.config_path],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"tandem check-config: {check.stdout}{check.stderr}")
        self._launch([binary, "serve", "-c", self.config_path, "--foreground"],
                     os.path.join(workdir, "tandem.out"))

    def mainlog(self):
        try:
            with open(os.path.join(self.dir, "log", "mainlog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_count(self, marker):
        """Main-log lines carrying `marker` (">>" cutthrough, "=>" delivery, "<=" arrival)."""
        return sum(1 for line in self.mainlog().splitlines() if f" {marker} " in line)

    def spool_count(self):
        try:
            return len(os.listdir(os.path.join(self.dir, "spool", "input")))
        except OSError:
            return 0

    def paniclog(self):
        return read_tail(os.path.join(self.dir, "log", "paniclog"))


class Exim(Server):
    """Exim 4 (exim -C FILE -bdf -oX PORT) relaying to the sink, spool in its own directory.

    The directory lives under /tmp, owned by Debian-exim (Exim delivers as that user; uid 0 is
    in its never_users).  The config is listed in /etc/exim4/trusted_configs while the daemon
    runs, so that it keeps root privilege as an installed Exim would.
    """

    def __init__(self, sink_port, cutthrough=True, extra=""):
        self.name = "exim " + ("cutthrough" if cutthrough else "store-and-forward")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="tandem-bench-exim-")
        uid, gid = pwd.getpwnam(EXIM_USER).pw_uid, grp.getgrnam(EXIM_USER).gr_gid
        os.chmod(self.dir, 0o755)
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        for path in (self.dir, os.path.join(self.dir, "spool"), os.path.join(self.dir, "log")):
            os.chown(path, uid, gid)
        self.config_path = os.path.join(self.dir, "exim.conf")
        with open(self.config_path, "w") as f:
            f.write(configs.exim_config(self.dir, self.port, sink_port, cutthrough, extra))
        os.chmod(self.config_path, 0o644)
        self.trusted = os.geteuid() == 0
        if self.trusted:
            _trusted_configs(add=self.config_path)
        self._launch(["exim", "-C", self.config_path, "-bdf", "-oX", str(self.port)],
                     os.path.join(self.dir, "exim.out"))

    def mainlog(self):
        try:
            with open(os.path.join(self.dir, "log", "mainlog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_count(self, marker):
        return sum(1 for line in self.mainlog().splitlines() if f" {marker} " in line)

    def paniclog(self):
        return read_tail(os.path.join(self.dir, "log", "paniclog"))

    def spool_count(self):
        """Messages still in Exim's spool (one -H file each)."""
        n = 0
        for _root, _dirs, files in os.walk(os.path.join(self.dir, "spool", "input")):
            n += sum(1 for f in files if f.endswith("-H"))
        return n

    def stop(self, timeout=20):
        super().stop(timeout)
        if self.trusted:
            _trusted_configs(remove=self.config_path)
        shutil.rmtree(self.dir, ignore_errors=True)


def _trusted_configs(add=None, remove=None):
    """Add or remove one line of Exim's trusted_configs, under an exclusive lock (the scenario
    tests edit the same file)."""
    fd = os.open(EXIM_TRUSTED_CONFIGS, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = [ln for ln in f.read().splitlines() if ln and ln != remove]
        if add and add not in lines:
            lines.append(add)
        f.seek(0)
        f.truncate()
        f.write("".join(ln + "\n" for ln in lines))


def have_exim():
    return shutil.which("exim") is not None


def wait_settled(server, sink=None, expect=None, timeout=30):
    """After a load: wait for the sink to have `expect` messages (if given) and for the
    server's processes to stop changing.  Returns the time it took."""
    t0 = time.monotonic()
    if sink is not None and expect:
        end = t0 + timeout
        while sink.count() < expect and time.monotonic() < end:
            time.sleep(0.05)
    server.tree.settle(timeout=10)
    return time.monotonic() - t0
