"""Install and run like a daemon (issue 15): `make install` puts exactly the files the README
lists; systemd-analyze accepts the unit; both manual pages render and match the docs they are
generated from; the unit's capability set and NoNewPrivileges are enough to serve (under
setpriv, with sd_notify's READY/RELOADING/STOPPING); the logrotate snippet rotates with
SIGUSR1."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness import SmtpConn, relay_config, wait_until
from harness.daemon import REPO, tandem_binary

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
UNIT = os.path.join(REPO, "etc", "tandem.service")


def readme_install_list():
    """The file list in README.md's install section: paths with PREFIX/SYSCONFDIR/SYSTEMDDIR."""
    text = open(os.path.join(REPO, "README.md")).read()
    block = text.split("make install DESTDIR=", 1)[1].split("```", 2)[1]
    return [ln.split()[0] for ln in block.strip().splitlines()]


def expand(path, prefix="/usr/local", sysconf="/etc", systemd=None):
    systemd = systemd or prefix + "/lib/systemd/system"
    return (path.replace("SYSTEMDDIR", systemd).replace("SYSCONFDIR", sysconf)
            .replace("PREFIX", prefix))


def make_install(*args):
    r = subprocess.run(["make", "-s", "install", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def files_under(top):
    return sorted(os.path.relpath(os.path.join(d, f), top)
                  for d, _, fs in os.walk(top) for f in fs)


def test_make_install_into_an_empty_directory_installs_what_the_readme_lists(tmp_path):
    listed = readme_install_list()
    assert len(listed) == 6
    daemon_md = open(os.path.join(REPO, "doc", "daemon.md")).read()
    assert all(p in daemon_md for p in listed)           # doc/daemon.md says the same
    dest = tmp_path / "dest"
    dest.mkdir()
    make_install(f"DESTDIR={dest}")
    want = sorted(expand(p).lstrip("/") for p in listed)
    assert files_under(dest) == want
    conf = (dest / "etc/tandem/tandem.conf").read_text()
    assert "spool_directory = /var/lib/tandem" in conf and "\nuser = tandem\n" in conf
    unit = (dest / "usr/local/lib/systemd/system/tandem.service").read_text()
    assert "ExecStart=/usr/local/sbin/tandem serve -c /etc/tandem/tandem.conf --foreground" in unit
    assert os.access(dest / "usr/local/sbin/tandem", os.X_OK)
    # PREFIX and SYSCONFDIR move them; an existing configuration is kept
    other = tmp_path / "other"
    (other / "cfg/tandem").mkdir(parents=True)
    (other / "cfg/tandem/tandem.conf").write_text("# mine\n")
    make_install(f"DESTDIR={other}", "PREFIX=/opt/tandem", "SYSCONFDIR=/cfg")
    assert files_under(other) == sorted(expand(p, "/opt/tandem", "/cfg").lstrip("/") for p in listed)
    assert (other / "cfg/tandem/tandem.conf").read_text() == "# mine\n"


def test_installed_configuration_is_valid(tmp_path):
    make_install(f"DESTDIR={tmp_path}")
    r = subprocess.run([tandem_binary(), "check-config", "-c", str(tmp_path / "etc/tandem/tandem.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    make_install(f"PREFIX={tmp_path}/usr", f"SYSCONFDIR={tmp_path}/etc")
    unit = tmp_path / "usr/lib/systemd/system/tandem.service"
    env = {**os.environ, "MANPATH": str(tmp_path / "usr/share/man")}   # Documentation=man:...
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    text = unit.read_text()
    for option in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                   "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID"):
        assert option in text
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=40", str(unit)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]


@pytest.mark.parametrize("page", ["tandem.8", "tandem.conf.5"])
def test_man_pages_render_without_warnings(page):
    subprocess.run(["make", "-s", "man"], cwd=REPO, check=True, timeout=120)
    path = os.path.join(REPO, "build", "man", page)
    r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "0"}, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    out = re.sub(r".\x08", "", r.stdout)       # grotty's overstrikes (bold, underline)
    out = re.sub(r"\s+", " ", re.sub("\u2010\n\\s*", "", out))   # hyphenation, justification
    assert out.startswith("TANDEM")
    if page == "tandem.conf.5":        # every option of doc/config.md's tables is there
        config_md = open(os.path.join(REPO, "doc", "config.md")).read()
        options = set(re.findall(r"^\| `([a-z_]+)`", config_md, re.M))
        assert len(options) > 30
        missing = [o for o in options if o not in out]
        assert missing == []
    else:
        for word in ("tandem serve", "SIGUSR1", "Type=notify", "make install", "tandem.service"):
            assert word in out


# ---- running under the unit's restrictions ----------------------------------------------------

def unit_capabilities():
    line = next(ln for ln in open(UNIT) if ln.startswith("CapabilityBoundingSet="))
    return [c.lower().replace("cap_", "") for c in line.split("=", 1)[1].split()]


def low_port():
    for p in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    pytest.fail("no free port below 1024")


class Notifications:
    """A NOTIFY_SOCKET, as systemd gives a Type=notify service."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(15)

    def expect(self, state):
        got = self.sock.recv(4096).decode()
        assert got == state
        return got


@root_only
def test_serves_under_the_units_capabilities_with_sd_notify(nexthop, tmp_path):
    hop = nexthop()
    top = tempfile.mkdtemp(prefix="tandem-unit-")
    os.chmod(top, 0o755)
    port = low_port()
    conf = os.path.join(top, "tandem.conf")
    with open(conf, "w") as f:
        f.write(f"hostname = tandem.test\nlisten = 127.0.0.1:{port}\nuser = nobody\nworkers = 1\n"
                f"spool_directory = {top}/spool\nlog_directory = {top}/log\n"
                + relay_config(hop))
    notify = Notifications(str(tmp_path / "notify"))
    caps = ",".join("+" + c for c in unit_capabilities())
    proc = subprocess.Popen(
        ["setpriv", "--bounding-set", "-all," + caps, "--inh-caps", "-all", "--no-new-privs",
         tandem_binary(), "serve", "-c", conf, "--foreground"],
        env={**os.environ, "NOTIFY_SOCKET": notify.path}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        notify.expect("READY=1")                         # listening, children started
        with SmtpConn(port) as c:
            c.ehlo("client.test")
            assert c.send_mail("a@client.test", ["u@example.test"], b"Subject: u\r\n\r\nx\r\n")["final"][0] == 250
            c.quit()
        hop.wait_accepted(1)                            # delivered by the scheduler, as nobody
        mainlog = os.path.join(top, "log", "mainlog")
        wait_until(lambda: " Completed" in open(mainlog).read(), 10, "Completed")
        kids = subprocess.run(["ps", "-o", "user=", "--ppid", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
        assert kids and set(kids) == {"nobody"}
        os.kill(proc.pid, signal.SIGHUP)
        notify.expect("RELOADING=1")
        notify.expect("READY=1")
        wait_until(lambda: "configuration reloaded" in open(mainlog).read(), 10, "reload")
        os.rename(mainlog, mainlog + ".1")
        os.kill(proc.pid, signal.SIGUSR1)
        wait_until(lambda: os.path.exists(mainlog) and "log files reopened" in open(mainlog).read(),
                   10, "reopened")
        os.kill(proc.pid, signal.SIGTERM)
        notify.expect("STOPPING=1")
        assert proc.wait(30) == 0
        assert "daemon stopped" in open(mainlog).read()
        paniclog = os.path.join(top, "log", "paniclog")
        assert not os.path.exists(paniclog) or open(paniclog).read() == ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(top, ignore_errors=True)


@root_only
def test_logrotate_snippet_rotates_and_tandem_reopens(tandem, nexthop, tmp_path):
    hop = nexthop()
    t = tandem(relay_config(hop), options={"transaction_log": str(tmp_path / "t.json")})
    snippet = open(os.path.join(REPO, "etc", "tandem.logrotate")).read()
    snippet = (snippet.replace("/var/log/tandem/*.json", str(tmp_path / "*.json"))
               .replace("/var/log/tandem", t.log_dir)
               .replace("/var/lib/tandem", t.spool))
    conf = tmp_path / "logrotate.conf"
    conf.write_text(snippet)
    with t.connect() as c:
        c.ehlo("client.test")
        assert c.send_mail("a@client.test", ["u@example.test"], b"Subject: 1\r\n\r\nx\r\n")["final"][0] == 250
        c.quit()
    t.wait_log(r"<= a@client\.test")
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(os.path.join(t.log_dir, "mainlog.1"))
    assert os.path.exists(str(tmp_path / "t.json.1"))
    t.wait_log(r"log files reopened")
    with t.connect() as c:
        c.ehlo("client.test")
        assert c.send_mail("b@client.test", ["u@example.test"], b"Subject: 2\r\n\r\nx\r\n")["final"][0] == 250
        c.quit()
    t.wait_log(r"<= b@client\.test")
    assert "<= a@client.test" not in t.mainlog()
    wait_until(lambda: os.path.exists(tmp_path / "t.json"), 10, "new transaction log")
