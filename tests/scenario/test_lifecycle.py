"""The daemon's life cycle at its edges: a reload (SIGHUP) with a broken configuration, the
shutdown timeout with a session that never finishes, and `tandem stop` on a daemon started
without --foreground (detached, as scripts/start runs it)."""
import glob
import os
import re
import signal
import subprocess

import pytest

from aclkit import policy_box
from harness import (SmtpConn, port_open, queued_relay, relay_config, stall, tmp_leftovers,
                     wait_until)
from harness.daemon import SANITIZER_ENV, tandem_binary, tandem_env

RELAY = queued_relay(deny_others=True)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def rcpt_code(t, rcpt):
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        code = c.cmd(f"RCPT TO:<{rcpt}>")[0]
        c.quit()
    return code


def test_reload_with_a_broken_config_keeps_the_old_one_serving(tandem):
    t = tandem(RELAY)
    kids = wait_until(lambda: len(children(t.pid)) == 2 and children(t.pid), 5, "children")
    with open(t.config_path) as f:
        good = f.read()
    changed = good.replace("relay_to_domains = example.test", "relay_to_domains = other.test")
    with open(t.config_path, "w") as f:
        f.write("no_such_option = 1\n" + changed)         # broken, and different
    os.kill(t.pid, signal.SIGHUP)
    t.wait_log(r"configuration reload failed, keeping the old one: +"
               + re.escape(t.config_path) + r":1: .*no_such_option")
    assert "configuration reloaded" not in t.mainlog()
    assert children(t.pid) == kids                        # nothing replaced
    assert rcpt_code(t, "x@example.test") == 250          # the old config still serves
    assert rcpt_code(t, "x@other.test") == 550
    with open(t.config_path, "w") as f:                   # mended: now it takes
        f.write(changed)
    os.kill(t.pid, signal.SIGHUP)
    t.wait_log(r"configuration reloaded")
    wait_until(lambda: rcpt_code(t, "x@other.test") == 250, 10, "the new config")
    assert rcpt_code(t, "x@example.test") == 550


def test_shutdown_timeout_ends_a_stuck_session(tandem):
    """A client that stops sending in the middle of its message: on SIGTERM its session may
    finish, but only for shutdown_timeout; then the worker leaves, the daemon exits cleanly
    (no SIGKILL), the client's connection is closed and no part of the message is kept."""
    t = tandem(RELAY, options={"shutdown_timeout": "1s"})
    sched = int(t.wait_log(r"scheduler started: pid=(\d+)").group(1))
    [worker] = wait_until(lambda: len(children(t.pid)) == 2 and
                          [p for p in children(t.pid) if p != sched], 5, "the worker")
    c = t.connect()
    c.ehlo()
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(250, "RCPT TO:<x@example.test>")
    c.expect(354, "DATA")
    c.send(b"Subject: stuck\r\n\r\nthe first half, and then noth")
    assert t.stop() == 0 and not t.killed_hard            # within the parent's kill timer
    assert t.shutdown_problems == []
    log = t.mainlog()
    assert re.search(rf"worker {worker}: 1 session\(s\) still open at shutdown timeout", log)
    assert "still running after shutdown timeout" not in log   # the parent's SIGKILL timer
    assert re.search(r"tandem daemon stopped", log)
    assert c.closed(timeout=5)
    c.close()
    assert t.spool_ids() == []
    t.restart()                                           # the half message is cleaned up
    assert t.spool_ids() == [] and tmp_leftovers(t.spool) == []


@pytest.mark.needs_tandem
def test_stop_command_stops_a_detached_daemon(tmp_path):
    box = policy_box(tmp_path / "box", RELAY, options={"workers": "2"})
    asan_log = str(tmp_path / "asan")                     # stderr is /dev/null once detached
    env = tandem_env({"ASAN_OPTIONS": tandem_env()["ASAN_OPTIONS"] + f":log_path={asan_log}"})
    binary = tandem_binary()
    pidfile = os.path.join(box.spool, "tandem.pid")
    p = subprocess.run([binary, "serve", "-c", box.config_path], capture_output=True, text=True,
                       timeout=30, env=env, cwd=box.dir)
    assert p.returncode == 0, p.stderr
    pid = int(open(pidfile).read())
    try:
        assert re.search(rf"tandem: started, pid {pid}, listening on 127\.0\.0\.1:{box.port}",
                         p.stderr), p.stderr
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid     # detached: own session
        kids = wait_until(lambda: len(children(pid)) == 3 and children(pid), 5, "children")
        with SmtpConn(box.port) as c:
            c.ehlo()
            c.quit()
        s = subprocess.run([binary, "stop", "-c", box.config_path], capture_output=True,
                           text=True, timeout=70, env=env, cwd=box.dir)
        assert (s.returncode, s.stdout) == (0, f"tandem: stopped (pid {pid})\n"), s.stderr
        assert not os.path.exists(pidfile)
        assert not port_open("127.0.0.1", box.port)
        for proc in [pid] + kids:
            assert not os.path.exists(f"/proc/{proc}") or \
                open(f"/proc/{proc}/stat").read().split(") ")[1][0] == "Z", proc
        assert re.search(rf"tandem daemon stopped \(pid={pid}\)", box.mainlog())
        assert box.paniclog() == ""
        assert glob.glob(asan_log + "*") == []            # no sanitizer report, leaks included
        again = subprocess.run([binary, "stop", "-c", box.config_path], capture_output=True,
                               text=True, timeout=30, env=env, cwd=box.dir)
        assert again.returncode == 1 and "no running daemon" in again.stderr
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_stop_waits_for_a_next_hops_reply_to_quit(tandem, nexthop):
    """A cut-through session has just ended and its onward link is waiting for the reply to
    QUIT when the daemon is told to stop: the worker lets that exchange finish (or time out)
    before it exits and frees the link, instead of cutting the next hop off mid-QUIT."""
    hop = nexthop(quit=stall(2, "221 2.0.0 bye"))
    t = tandem(relay_config(hop, cutthrough=True))
    with t.connect() as c:
        c.ehlo()
        assert c.send_mail("s@client.test", ["u@example.test"], b"Subject: q\r\n\r\nq\r\n")[
            "final"][0] == 250
        c.quit()
    wait_until(lambda: any("QUIT" in s.commands for s in hop.sessions), 5, "the QUIT (polled:"
               " the next hop's notice comes only after its reply)")
    assert t.stop() == 0 and t.shutdown_problems == []
    assert hop.sessions[0].transcript[-1] == ("S", "221 2.0.0 bye")   # answered first
    hop.wait_idle()
    assert [s.ended_by for s in hop.sessions] == ["QUIT"], hop.summary()


def test_a_worker_crashing_while_the_daemon_stops_is_a_panic(tandem):
    """A child that crashes on its way out is logged in the paniclog like any crash (it was
    silent: the parent ignored how stopping children ended), so the test fails on it."""
    asan = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV["ASAN_OPTIONS"]) + ":handle_segv=0"
    t = tandem(RELAY, options={"shutdown_timeout": "10s"}, env={"ASAN_OPTIONS": asan},
               expect_panic=r"worker process \d+ killed by signal 11 while stopping$")
    sched = int(t.wait_log(r"scheduler started: pid=(\d+)").group(1))
    [worker] = wait_until(lambda: len(children(t.pid)) == 2 and
                          [p for p in children(t.pid) if p != sched], 5, "the worker")
    c = t.connect()                                       # a busy session keeps the worker
    c.ehlo()                                              # alive after SIGTERM
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(250, "RCPT TO:<x@example.test>")
    c.expect(354, "DATA")
    os.kill(t.pid, signal.SIGTERM)
    t.wait_log(r"tandem daemon stopping on signal 15")
    os.kill(worker, signal.SIGSEGV)
    t.wait_log(rf"worker process {worker} killed by signal 11 while stopping$", log="paniclog")
    wait_until(lambda: not t.running(), 10, "the daemon to stop")
    c.close()
    assert t.stop() == 0 and t.unexpected_panics() == []


def test_stop_waits_for_the_reply_to_the_schedulers_quit(tandem, nexthop):
    """The same for a connection the scheduler keeps open after a queued delivery: at stop
    it says QUIT and waits for the answer before it exits."""
    hop = nexthop(quit=stall(2, "221 2.0.0 bye"))
    t = tandem(relay_config(hop))
    with t.connect() as c:
        c.ehlo()
        assert c.send_mail("s@client.test", ["u@example.test"], b"Subject: q\r\n\r\nq\r\n")[
            "final"][0] == 250
        c.quit()
    hop.wait_accepted(1)
    t.wait_log(r"=> u@example\.test ")
    assert t.stop() == 0 and t.shutdown_problems == []
    assert hop.sessions[0].transcript[-1] == ("S", "221 2.0.0 bye")   # answered first
    hop.wait_idle()
    assert [s.ended_by for s in hop.sessions] == ["QUIT"], hop.summary()
