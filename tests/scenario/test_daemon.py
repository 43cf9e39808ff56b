"""The process model, durability, `tandem session`, check-config, logs and interop (issue 2)."""
import os
import re
import signal
import smtplib
import subprocess
import tempfile
import time

import pytest

from harness import SmtpConn, SmtpError, read_spool, smtp_source, swaks, wait_until, queued_relay
from harness.daemon import SANITIZER_ENV
from harness.interop import have_postfix_tools, have_swaks

RELAY = queued_relay(deny_others=True)
BODY = b"Subject: hello\r\n\r\nbody\r\n"


def children(pid):
    """Pids of a process's direct children."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def send_one(t, rcpt="x@example.test"):
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, f"RCPT TO:<{rcpt}>")
        code, lines = c.data(BODY)
        c.quit()
    assert code == 250
    return re.search(r"id=(\S+)", lines[0]).group(1)


def test_workers_one_per_core_by_default(tandem):
    t = tandem(RELAY, options={"workers": "auto"})
    kids = wait_until(lambda: len(children(t.pid)) >= os.cpu_count() + 1 and children(t.pid),
                      5, "workers and scheduler")
    assert len(kids) == os.cpu_count() + 1           # workers + the scheduler
    t.wait_log(rf"daemon started: pid={t.pid}, {os.cpu_count()} workers")


def test_crashed_worker_is_restarted_and_logged(tandem):
    # A sanitized build would catch the SIGSEGV itself and report it: let it be a plain crash.
    asan = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV["ASAN_OPTIONS"]) + ":handle_segv=0"
    t = tandem(RELAY, options={"workers": "2"}, expect_panic=True, env={"ASAN_OPTIONS": asan})
    before = wait_until(lambda: len(children(t.pid)) == 3 and children(t.pid), 5, "children")
    victim = before[0]
    os.kill(victim, signal.SIGSEGV)
    t.wait_log(rf"process {victim} killed by signal 11; restarting", log="paniclog")
    wait_until(lambda: len(children(t.pid)) == 3 and victim not in children(t.pid), 5, "replacement")
    assert send_one(t)                                # still serving


def test_sigterm_finishes_a_message_in_progress_and_421s_idle_sessions(tandem):
    t = tandem(RELAY)
    idle = t.connect()
    idle.ehlo()
    busy = t.connect()
    busy.ehlo()
    busy.expect(250, "MAIL FROM:<a@b.test>")
    busy.expect(250, "RCPT TO:<x@example.test>")
    busy.expect(354, "DATA")
    busy.send(b"Subject: in flight\r\n\r\n")
    os.kill(t.pid, signal.SIGTERM)
    code, lines = idle.reply(timeout=5)
    assert code == 421 and lines[0].startswith("4.3.2")
    idle.assert_closed()
    busy.send(b"rest of body\r\n.\r\n")
    assert busy.reply()[0] == 250                     # the message in progress completes
    assert busy.reply(timeout=5)[0] == 421            # then the session ends
    wait_until(lambda: not t.running(), 10, "daemon exit")
    assert len(t.spool_ids()) == 1
    t.wait_log(r"daemon stopped")


def test_kill9_right_after_250_keeps_the_message(tandem):
    t = tandem(RELAY)
    ids = [send_one(t, f"r{i}@example.test") for i in range(3)]
    t.kill9()
    for msg_id in ids:
        msg = read_spool(t.spool, msg_id)             # complete, END record present
        assert msg.body() == b"body\r\n"
    t.restart()
    assert sorted(ids) == t.spool_ids()


def test_sighup_reloads_configuration(tandem):
    t = tandem(RELAY)
    with open(t.config_path) as f:
        text = f.read()
    with open(t.config_path, "w") as f:
        f.write(text.replace("domainlist relay_to_domains = example.test",
                             "domainlist relay_to_domains = other.test"))
    os.kill(t.pid, signal.SIGHUP)
    t.wait_log(r"configuration reloaded")
    def refused():
        with t.connect() as c:
            try:
                c.ehlo()
                c.expect(250, "MAIL FROM:<a@b.test>")
                code = c.cmd("RCPT TO:<x@example.test>")[0]
                c.quit()
            except SmtpError:
                return False     # an old worker, retiring, gave its idle session 421
            return code == 550
    wait_until(refused, 10, "new workers with the new config")


@pytest.mark.needs_tandem
def test_drops_privileges_to_user(tandem):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tempfile.mkdtemp(prefix="tandem-privs-")
    os.chmod(base, 0o755)
    t = tandem(RELAY, options={"user": "nobody", "workers": "2", "spool_directory": base + "/spool",
                               "log_directory": base + "/log"})
    kids = wait_until(lambda: len(children(t.pid)) == 3 and children(t.pid), 5, "children")
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    for pid in kids:
        with open(f"/proc/{pid}/status") as f:
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", f.read(), re.M).groups()
        assert set(map(int, uids)) == {nobody}, (pid, uids)
    assert send_one(t)                                # the unprivileged worker can spool


def test_session_on_stdin(tandem):
    t = tandem(RELAY)
    script = (b"EHLO script.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n"
              b"RCPT TO:<y@other.test>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    rc, out, err = t.run(["session", "--client", "192.0.2.9"], input=script)
    assert rc == 0, err
    codes = [int(l[:3]) for l in out.split("\r\n") if l[:3].isdigit() and l[3:4] == " "]
    assert codes == [220, 250, 250, 250, 550, 354, 250, 221]
    [msg_id] = t.spool_ids()
    assert read_spool(t.spool, msg_id).fields["C"] == b"192.0.2.9"
    t.wait_log(r"H=\(script\.test\) \[192\.0\.2\.9\] F=<a@b\.test> rejected RCPT <y@other\.test>: relay not permitted",
               log="rejectlog")


def test_session_no_deliver_spools_nothing(tandem):
    t = tandem(RELAY)
    script = b"EHLO s.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
    rc, out, _ = t.run(["session", "--no-deliver"], input=script)
    assert rc == 0 and "250 2.0.0 OK id=" in out
    assert t.spool_ids() == []


def test_check_config_reports_every_error_with_its_line(tandem):
    t = tandem(RELAY)
    bad = os.path.join(t.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("hostname = x.test\nbogus_option = 1\nmessage_size_limit = lots\n"
                "acl_smtp_rcpt = nowhere\nbegin acl\nacl1:\n  accept hosts = +undefined\n")
    p = subprocess.run([t.binary, "check-config", "-c", bad], capture_output=True, text=True)
    assert p.returncode == 1
    for line in (2, 3, 7):
        assert re.search(rf"^{re.escape(bad)}:{line}: ", p.stderr, re.M), p.stderr
    assert "bogus_option" in p.stderr and "message_size_limit" in p.stderr and "nowhere" in p.stderr
    ok = subprocess.run([t.binary, "check-config", "-c", t.config_path], capture_output=True, text=True)
    assert ok.returncode == 0


def test_smtplib_with_and_without_pipelining(tandem):
    t = tandem(RELAY)
    for esmtp in (True, False):
        with smtplib.SMTP("127.0.0.1", t.port) as s:
            if esmtp:
                s.ehlo("py.test")
            else:
                s.helo("py.test")
            assert s.sendmail("a@b.test", ["x@example.test", "y@example.test"], BODY) == {}
    assert len(t.spool_ids()) == 2


@pytest.mark.skipif(not have_swaks(), reason="swaks not installed")
def test_swaks_with_and_without_pipelining(tandem):
    t = tandem(RELAY)
    assert swaks(t.port, to="x@example.test", sender="a@b.test", args=["--pipeline"]).ok
    assert swaks(t.port, to="x@example.test", sender="a@b.test").ok
    assert len(t.spool_ids()) == 2


@pytest.mark.skipif(not have_postfix_tools(), reason="postfix tools not extracted")
def test_smtp_source_1000_messages_10_sessions(tandem):
    t = tandem(RELAY, options={"workers": "2"})
    rc, out, err = smtp_source(t.port, count=1000, sessions=10, size=1000, rcpts=1,
                               sender="a@b.test", to="x@example.test")
    assert rc == 0, err
    ids = t.spool_ids()
    assert len(ids) == 1000 and len(set(ids)) == 1000
    t.wait_log(r"<= a@b\.test", count=1000)


def test_eximstats_counts_received(tandem):
    t = tandem(RELAY)
    for i in range(5):
        send_one(t, f"r{i}@example.test")
    p = subprocess.run(["eximstats", "-txt", os.path.join(t.log_dir, "mainlog")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    m = re.search(r"Received\s+(\S+)\s+(\d+)", p.stdout)
    assert m and int(m.group(2)) == 5, p.stdout


def test_exigrep_shows_a_messages_story(tandem, nexthop):
    from harness import relay_config
    hop = nexthop()
    t = tandem(relay_config(hop))
    with t.connect() as c:
        c.ehlo()
        r = c.send_mail("a@b.test", ["x@example.test"], BODY)
        c.quit()
    mid = re.search(r"id=(\S+)", r["final"][1][0]).group(1)
    t.wait_log(rf"{mid} Completed")
    p = subprocess.run(["exigrep", mid, os.path.join(t.log_dir, "mainlog")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert any(" <= a@b.test " in l for l in lines)
    assert any(" => x@example.test " in l for l in lines)
    assert any(l.endswith(f"{mid} Completed") for l in lines)
