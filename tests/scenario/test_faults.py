"""Crashes and disk faults while accepting mail (issue "Hostile input, faults and crashes").

strace's syscall tampering makes them happen at an exact step of the worker's work:
``-e inject=fsync:signal=KILL:when=3`` kills it on entry to its third fsync,
``-e inject=fsync:error=EIO:when=1`` makes its first fsync fail.  The worker is traced with
``strace -p`` while the daemon runs; the parent restarts a killed worker.

Invariants: a message that got 250 is in input/ exactly once, complete (END record) and
readable after a restart; one that did not is either absent or complete (never partial), and
nothing is left in tmp/ after the restart; a disk error gives the client 451/452 and leaves no
file in tmp/ or input/.

Accepting a message, in the worker, is this sequence (strace of one lockstep message):
    sendmsg(client, "250 ... MAIL")  sendmsg(client, "250 ... RCPT")  openat(tmp/ID, O_EXCL)
    sendmsg(client, "354 ...")       writev(tmp/ID: envelope, content, trailer, END)
    fsync(tmp/ID)  renameat2(tmp/ID, input/ID, NOREPLACE)  openat(input/)  fsync(input/)
    write(mainlog, "<= ...")         sendmsg(client, "250 2.0.0 OK id=...")
(Replies go out with sendmsg, src/bev_direct.c; writev is left to the spool files.)
The delivery side (journal, removal) is covered at the end, once `tandem queue` exists.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import SmtpConn, SmtpError, read_spool, tmp_leftovers, wait_until, queued_relay
from harness.configs import relay_config
from harness.daemon import SANITIZER_ENV

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

RELAY = queued_relay()
BODY = b"Subject: fault\r\n\r\nbody\r\n"


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def worker_pids(t):
    """The daemon's workers: the children holding its listening socket (the scheduler does
    not)."""
    inodes = listening_inodes(t.port)

    def holds_listener(pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            return False
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
        return False
    return wait_until(lambda: [p for p in children(t.pid) if holds_listener(p)] or None, 5,
                      "a worker holding the listening socket")


class Strace:
    """strace attached to a running process (or -f: with its future children) until stop()."""

    def __init__(self, pid, args, follow=False):
        cmd = ["strace", "-o", "/dev/null", *(["-f"] if follow else []), *args, "-p", str(pid)]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()            # "strace: Process N attached"
        assert "attached" in line, f"strace did not attach: {line!r}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)       # detaches, the tracee goes on
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def send_lockstep(t, n, body=BODY):
    """Send up to n messages, one command at a time, until the connection dies.
    Returns (ids acknowledged with 250, the last reply or the error)."""
    acked, last = [], None
    try:
        with t.connect() as c:
            c.ehlo()
            for i in range(n):
                c.expect(250, "MAIL FROM:<a@b.test>")
                c.expect(250, f"RCPT TO:<r{i}@example.test>")
                last = c.data(body)
                if last[0] != 250:
                    return acked, last
                acked.append(re.search(r"id=(\S+)", last[1][0]).group(1))
            c.quit()
    except (SmtpError, OSError) as exc:
        last = exc
    return acked, last


def assert_spool_sound(t, acked, stored_extra):
    """Every acknowledged message once, complete; `stored_extra` more (complete) messages;
    tmp/ empty."""
    ids = t.spool_ids()
    assert set(acked) <= set(ids) and len(set(acked)) == len(acked)
    assert len(ids) == len(acked) + stored_extra, (ids, acked)
    for msg_id in ids:
        msg = read_spool(t.spool, msg_id)             # raises on a partial file
        assert msg.body() == b"body\r\n"
    assert tmp_leftovers(t.spool) == []


# Kill points while the second of three messages is being accepted, and what the crash
# leaves of it: nothing, a file in tmp/ (removed at restart), or the committed message in
# input/ (without its 250: the client will send it again).  sendmsg counts: banner, EHLO, then
# four per message (MAIL, RCPT, 354, the 250); writev: one per message (the spool file).
KILL_POINTS = [
    ("sendmsg", 7, "none"),      # the 250 to MAIL: no transaction yet
    ("openat", 3, "none"),       # creating tmp/ID (1: msg 1's tmp/ID, 2: input/ for its fsync)
    ("sendmsg", 9, "tmp"),       # the 354: tmp/ID created, empty
    ("writev", 2, "tmp"),        # writing tmp/ID
    ("fsync", 3, "tmp"),         # fsync of the written tmp/ID: not durable, not renamed
    ("renameat2", 2, "tmp"),     # the rename into input/
    ("fsync", 4, "stored"),      # fsync of input/ after the rename: the name is there
    ("write", 2, "stored"),      # the "<=" log line: committed, not yet acknowledged
    ("sendmsg", 10, "stored"),   # the 250 itself
]


@pytest.mark.parametrize("syscall,when,left", KILL_POINTS,
                         ids=[f"{s}-{w}" for s, w, _ in KILL_POINTS])
def test_worker_killed_at_each_step_of_accepting(tandem, syscall, when, left):
    t = tandem(RELAY, expect_panic=True)
    [worker] = worker_pids(t)
    with Strace(worker, ["-e", f"trace={syscall}",
                         "-e", f"inject={syscall}:signal=KILL:when={when}"]):
        acked, last = send_lockstep(t, 3)
    assert isinstance(last, SmtpError), f"the worker was not killed: {last}"
    assert len(acked) == 1                             # the first message, and only it
    t.wait_log(rf"worker process {worker} killed by signal 9", log="paniclog")
    tmp = os.listdir(os.path.join(t.spool, "tmp"))           # a worker's reusable file too
    assert len(tmp) == (1 if left == "tmp" else 0), tmp
    t.stop()
    t.restart()                                        # removes what tmp/ holds
    assert_spool_sound(t, acked, 1 if left == "stored" else 0)
    if left == "tmp":
        t.wait_log(rf"removed incomplete message .*/tmp/{tmp[0]}$")
    acked2, last = send_lockstep(t, 1)                 # and the daemon serves again
    assert len(acked2) == 1, last
    assert_spool_sound(t, acked + acked2, 1 if left == "stored" else 0)


def test_kill9_of_the_whole_daemon_mid_data_leaves_nothing_partial(tandem):
    t = tandem(RELAY)
    acked, _ = send_lockstep(t, 2)
    c = t.connect()
    c.ehlo()
    c.expect(250, "MAIL FROM:<a@b.test>")
    c.expect(250, "RCPT TO:<x@example.test>")
    c.expect(354, "DATA")
    c.send(b"Subject: cut\r\n\r\n" + b"x" * 200000 + b"\r\n")   # a 64 KiB record is written
    wait_until(lambda: any(os.path.getsize(os.path.join(t.spool, "tmp", n)) > 0
                           for n in os.listdir(os.path.join(t.spool, "tmp"))), 5,
               "a partly written message in tmp/")
    t.kill9()
    c.close()
    t.restart()
    assert_spool_sound(t, acked, 0)
    t.wait_log(r"removed incomplete message")


# Disk errors: the client gets 451 or 452 and nothing is left in tmp/ or input/.  The first
# writev is the spool file (replies go out with sendmsg).
DISK_ERRORS = [
    ("fsync", 1, "EIO", False, 451, "4.3.0"),       # fsync of the message file
    ("fsync", 2, "EIO", False, 451, "4.3.0"),       # fsync of input/ after the rename
    ("renameat2", 1, "EIO", False, 451, "4.3.0"),
    ("renameat2", 1, "ENOSPC", False, 452, "4.3.1"),
    ("writev", 1, "ENOSPC", False, 452, "4.3.1"),   # the whole file in one write at the end
    ("writev", 1, "EIO", False, 451, "4.3.0"),
    ("writev", 1, "ENOSPC", True, 452, "4.3.1"),    # a 200 KB message: its first 64 KiB record
    ("openat", 1, "ENOSPC", False, 451, "4.3.0"),   # creating tmp/ID: refused at DATA
]


@pytest.mark.parametrize("syscall,when,err,big,code,ecode", DISK_ERRORS,
                         ids=[f"{s}-{w}-{e}{'-big' if b else ''}" for s, w, e, b, _, _ in
                              DISK_ERRORS])
def test_disk_errors_give_4xx_and_leave_no_file(tandem, syscall, when, err, big, code, ecode):
    t = tandem(RELAY, expect_panic=True)
    [worker] = worker_pids(t)
    body = BODY if not big else b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 200 + b"body\r\n"
    with Strace(worker, ["-e", f"trace={syscall}",
                         "-e", f"inject={syscall}:error={err}:when={when}"]):
        with t.connect() as c:
            c.ehlo()
            c.expect(250, "MAIL FROM:<a@b.test>")
            c.expect(250, "RCPT TO:<x@example.test>")
            if syscall == "openat":
                got = c.cmd("DATA")
            else:
                got = c.data(body)
            assert got[0] == code and got[1][0].startswith(ecode), got
            assert tmp_leftovers(t.spool) == []
            assert os.listdir(os.path.join(t.spool, "input")) == []
            c.expect(250, "RSET")                      # the session goes on, and so does
            c.expect(250, "MAIL FROM:<a@b.test>")      # the next message (once only)
            c.expect(250, "RCPT TO:<x@example.test>")
            code2, lines = c.data(b"Subject: fault\r\n\r\nbody\r\n")
            assert code2 == 250
            c.quit()
    assert_spool_sound(t, [re.search(r"id=(\S+)", lines[0]).group(1)], 0)
    assert children(t.pid) and worker in children(t.pid)   # no crash
    panics = t.paniclog().splitlines()
    assert len(panics) == 1 and re.search(r"spool (write|commit) failed|cannot create spool file",
                                          panics[0]), panics


def test_sigterm_while_a_child_starts_is_not_lost(tandem):
    """A child used to inherit the parent's libevent signal handler until it installed its
    own: a SIGTERM in between went to the parent's loop and the child ran on (35 s, until the
    parent's kill timer).  strace holds each new child in its first system call (glibc's
    set_robust_list in fork), inside that window.  Every process exits while traced, where
    LeakSanitizer cannot run (it aborts): a sanitized build checks no leaks here."""
    asan = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV["ASAN_OPTIONS"]) + ":detect_leaks=0"
    t = tandem(RELAY, env={"ASAN_OPTIONS": asan})
    with Strace(t.pid, ["-e", "trace=set_robust_list",
                         "-e", "inject=set_robust_list:delay_exit=1500000"],
                follow=True):
        os.kill(t.pid, signal.SIGHUP)                   # reload: new worker and scheduler
        t.wait_log(r"configuration reloaded")
        time.sleep(0.3)
        os.killpg(t.pid, signal.SIGTERM)
        wait_until(lambda: not t.running(), 12, "the daemon to stop")   # not the 35 s timer
    assert not t.killed_hard
    assert "still running after shutdown timeout" not in t.mainlog()


# ---- the delivery side ------------------------------------------------------------------
# In the scheduler (strace of one delivery to a NextHop; if this changes, so must the table):
#   sendmsg(hop, "EHLO")  sendmsg(hop, "MAIL/RCPT/DATA")  sendmsg(hop, body)
#   openat(input/ID-J, O_EXCL)  writev(ID-J, "d0")  fsync(ID-J)  fsync(input/)
#   write(mainlog, "=> ...")  unlink(input/ID)  unlink(input/ID-J)  fsync(input/)
#   write(mainlog, "Completed")
# Killed before the journal records the delivery, the message goes out again after the restart
# (at least once is the promise, and the next hop already had it); killed after, it is never
# delivered twice (the journal was once removed before the message: killed between the two
# unlinks, a message left without the journal that said it was delivered went out again); and
# in every case it is never lost.

DELIVERY_KILLS = [
    ("writev", 1, 2),     # writing the journal record: delivered again
    ("fsync", 1, 1),      # fsync of the journal
    ("fsync", 2, 1),      # fsync of input/ (the journal's name)
    ("write", 1, 1),      # the "=>" line, after the journal
    ("unlink", 1, 1),     # removing the message (before its journal)
    ("unlink", 2, 1),     # removing the journal, the message gone: a stray journal is left
    ("fsync", 3, 1),      # fsync of input/ after the removal
    ("write", 2, 1),      # the "Completed" line
]


@pytest.mark.parametrize("syscall,when,deliveries", DELIVERY_KILLS,
                         ids=[f"{s}-{w}" for s, w, _ in DELIVERY_KILLS])
def test_delivery_killed_at_each_step_never_loses_or_repeats_mail(tandem, nexthop, syscall,
                                                                   when, deliveries):
    hop = nexthop()
    t = tandem(relay_config(hop), expect_panic=True)
    workers = worker_pids(t)
    [sched] = [p for p in children(t.pid) if p not in workers]
    t.wait_log(rf"scheduler started: pid={sched}")     # its own writes come before ours
    with Strace(sched, ["-e", f"trace={syscall}",
                        "-e", f"inject={syscall}:signal=KILL:when={when}"]):
        acked, last = send_lockstep(t, 1)
        assert len(acked) == 1, last
        t.wait_log(rf"scheduler process {sched} killed by signal 9", log="paniclog")
    hop.wait_accepted(1)
    t.stop()
    t.restart()
    wait_until(lambda: t.spool_ids() == [], 20, "the message to be delivered and removed")
    assert len(hop.accepted) == deliveries, [m.rcpts for m in hop.accepted]
    assert all(m.rcpts == ["r0@example.test"] for m in hop.accepted)
    assert tmp_leftovers(t.spool) == []
    stray = [acked[0] + "-J"] if (syscall, when) == ("unlink", 2) else []
    assert os.listdir(os.path.join(t.spool, "input")) == stray


DELIVERY_DISK_ERRORS = [("fsync", 1, "EIO"), ("fsync", 2, "EIO"), ("unlink", 1, "EIO"),
                        ("fsync", 3, "EIO")]


@pytest.mark.parametrize("syscall,when,err", DELIVERY_DISK_ERRORS,
                         ids=[f"{s}-{w}-{e}" for s, w, e in DELIVERY_DISK_ERRORS])
def test_delivery_disk_errors_never_lose_mail(tandem, nexthop, syscall, when, err):
    """A failing journal or removal after the next hop's 250: the message may go out again
    (at least once), the scheduler does not crash, and the spool ends up empty."""
    hop = nexthop()
    t = tandem(relay_config(hop), options={"retry_intervals": "1s"}, expect_panic=True)
    workers = worker_pids(t)
    [sched] = [p for p in children(t.pid) if p not in workers]
    t.wait_log(rf"scheduler started: pid={sched}")
    with Strace(sched, ["-e", f"trace={syscall}",
                        "-e", f"inject={syscall}:error={err}:when={when}"]):
        acked, last = send_lockstep(t, 1)
        assert len(acked) == 1, last
        hop.wait_accepted(1)
        time.sleep(0.5)
    t.run("queue deliver-all", timeout=30)
    wait_until(lambda: t.spool_ids() == [], 20, "the message to be delivered and removed")
    assert 1 <= len(hop.accepted) <= 2
    assert sched in children(t.pid)                          # no crash
    assert "killed by signal" not in t.paniclog()
    assert re.search(r"cannot (journal recipient 0|remove the spool file)", t.paniclog())
