"""Rspamd: a real rspamd (Debian's package) on a free 127.0.0.1 port, with a minimal config.

    r = Rspamd(tmp_dir)          # started and answering /checkv2; r.stop() at the end
    r.port; r.config_line        # "spamd_address = 127.0.0.1:PORT variant=rspamd"
    r.check(b"message")          # rspamd's JSON verdict, asked directly (for expectations)
    r.log()                      # rspamd's own log

The config loads no Lua rules or modules (filters = ""), so only rspamd's built-in checks run,
among them GTUBE: a message containing GTUBE (below) gets the action "reject" (the setting
`gtube_patterns = "all"`), anything else "no action".  Its TLD list is a tiny file and
Hyperscan is off, so it starts in about a second instead of twenty.
"""
import json
import os
import signal
import subprocess
import time
import urllib.request

from .ports import free_port

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
STARTUP_TIMEOUT = 30.0

CONFIG = """\
options {{
    pidfile = "{dir}/rspamd.pid";
    dbdir = "{dir}/db";
    filters = "";
    url_tld = "{dir}/tld.dat";
    disable_hyperscan = true;
    gtube_patterns = "all";
    dns {{ nameserver = ["127.0.0.1:1"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{dir}/rspamd.log"; level = "info"; }}
actions {{ reject = 15; add_header = 6; greylist = 4; }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
"""


class Rspamd:
    """See the module docstring."""

    def __init__(self, directory):
        self.dir = os.path.abspath(str(directory))
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "db"), 0o777)
        self.port = free_port()
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\ntest\n")
        self.conf = os.path.join(self.dir, "rspamd.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port))
        user = ["-u", "nobody", "-g", "nogroup"] if os.geteuid() == 0 else []
        self._err = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(["rspamd", "-c", self.conf, "-f", *user], stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rspamd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.check(b"Subject: probe\r\n\r\nprobe\r\n")
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"rspamd not answering on 127.0.0.1:{self.port}:\n{self.log()}")

    @property
    def config_line(self):
        return f"spamd_address = 127.0.0.1:{self.port} variant=rspamd"

    def check(self, message):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/checkv2", data=message,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._err.close()
