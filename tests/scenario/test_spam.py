"""spam: the data ACL's content scan by a real rspamd (started on loopback with a minimal config,
harness/rspamd.py), in queue mode and under cutthrough, with the scanner down, too slow, and a
20 MB message streamed to it while the worker's memory stays bounded.

Under cutthrough the final dot waits for the data ACL: a message refused for its content must
leave the next hop with nothing (the link is abandoned mid-DATA), one accepted gets the next
hop's verdict.  Data-ACL headers cannot reach a next hop that already has the header section;
they go into the copy tandem queues.
"""
import os
import socket
import threading
import time

import pytest

from harness import free_port, relay_config, wait_until
from harness.daemon import SANITIZER_ENV
from harness.rspamd import GTUBE, Rspamd
from test_faults import worker_pids

HAM = b"From: a@client.test\r\nTo: u@example.test\r\nSubject: ham\r\n\r\nhello, this is fine\r\n"
SPAM = b"From: a@client.test\r\nTo: u@example.test\r\nSubject: spam\r\n\r\n" + GTUBE + b"\r\n"

DATA_ACL = """\
check_data:
  deny  spam = nobody{opts}
        message = spam: score $spam_score, action $spam_action
        log_message = spam $spam_score_int $spam_report
  warn  spam = nobody:true{opts}
        add_header = X-Spam-Score: $spam_score ($spam_bar) $spam_action
  accept
"""


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    r = Rspamd(tmp_path_factory.mktemp("rspamd"))
    yield r
    r.stop()


def spam_config(hop, spamd_line, cutthrough=False, opts="", tmo="5s", defer=None):
    return relay_config(hop, cutthrough=cutthrough, defer=defer,
                        main=f"{spamd_line} tmo={tmo}\nacl_smtp_data = check_data\nworkers = 1",
                        extra=DATA_ACL.format(opts=opts))


def send(t, body, rcpts=("u@example.test",)):
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail("a@client.test", list(rcpts), body, timeout=60)
        c.quit()
    return r["final"]


def test_rspamd_sees_gtube_as_reject(rspamd):
    """The setting the other tests rely on: rspamd's own verdicts for the two messages."""
    assert rspamd.check(SPAM)["action"] == "reject"
    assert rspamd.check(HAM)["action"] == "no action"


def test_queue_mode_ham_accepted_with_header(tandem, nexthop, rspamd):
    hop = nexthop()
    t = tandem(spam_config(hop, rspamd.config_line))
    code, lines = send(t, HAM)
    assert code == 250
    [m] = hop.wait_accepted(1)
    assert m.header("X-Spam-Score") == "0.0 (/) no action"
    assert m.data.startswith(b"X-Spam-Score: ") and m.header("Subject") == "ham"
    assert m.data.endswith(b"\r\n\r\nhello, this is fine\r\n")


def test_queue_mode_spam_refused(tandem, nexthop, rspamd):
    hop = nexthop()
    t = tandem(spam_config(hop, rspamd.config_line))
    code, lines = send(t, SPAM)
    assert (code, lines) == (550, ["5.7.1 spam: score 15.0, action reject"])
    t.wait_log(r"F=<a@client\.test> rejected after DATA: spam 150 action=reject score=15\.00/15\.00 "
               r"symbols: GTUBE\(0\.00\)$", log="rejectlog")
    assert t.spool_ids() == []
    time.sleep(0.5)
    assert hop.received == [] and hop.sessions == []


def test_cutthrough_spam_leaves_next_hop_with_nothing(tandem, nexthop, rspamd):
    hop = nexthop()
    t = tandem(spam_config(hop, rspamd.config_line, cutthrough=True))
    code, lines = send(t, SPAM)
    assert (code, lines) == (550, ["5.7.1 spam: score 15.0, action reject"])
    wait_until(lambda: hop.sessions and hop.sessions[0].ended_by is not None, 10,
               "the next hop's session to end")
    assert len(hop.messages) == 1                # the data phase began: the body went out ...
    assert hop.received == [] and hop.accepted == []    # ... but never its final dot
    assert hop.sessions[0].ended_by in ("close", "drop")
    assert SPAM.split(b"\r\n\r\n")[1][:20] in hop.messages[0].raw
    assert t.spool_ids() == []
    assert hop.violations() == []


def test_cutthrough_ham_gets_the_next_hops_verdict(tandem, nexthop, rspamd):
    hop = nexthop(dot="250 2.0.0 queued as NH1")
    t = tandem(spam_config(hop, rspamd.config_line, cutthrough=True))
    code, lines = send(t, HAM)
    assert code == 250 and lines[0].endswith("(next hop: 250 2.0.0 queued as NH1)"), lines
    [m] = hop.wait_accepted(1)
    assert m.header("X-Spam-Score") is None       # the header section had gone out before the scan
    t.wait_log(r">> u@example\.test R=\S+ T=remote_smtp H=\[127\.0\.0\.2\]:\d+ ")
    assert t.spool_ids() == []


def test_cutthrough_deferred_copy_carries_data_acl_headers(tandem, nexthop, rspamd):
    """The next hop defers the final dot: the queued copy (delivered later) has the header."""
    from harness import seq
    hop = nexthop(dot=seq("451 4.3.0 try later", "250 ok"))
    t = tandem(spam_config(hop, rspamd.config_line, cutthrough=True))
    code, _ = send(t, HAM)
    assert code == 250
    [m] = hop.wait_accepted(1, timeout=20)
    assert m.header("X-Spam-Score") == "0.0 (/) no action"
    assert len(hop.received) == 2 and hop.received[0].header("X-Spam-Score") is None


def test_scanner_down_defers_or_accepts_with_defer_ok(tandem, nexthop):
    hop = nexthop()
    down = f"spamd_address = 127.0.0.1:{free_port()} variant=rspamd"
    t = tandem(spam_config(hop, down))
    code, lines = send(t, HAM)
    assert code == 451 and lines[0].startswith("4.7.1 "), lines
    t.wait_log(r"spam acl condition: (Couldn't connect to server|Could not connect to server)")
    assert hop.received == []
    t2 = tandem(spam_config(hop, down, opts="/defer_ok"))
    assert send(t2, HAM)[0] == 250
    t2.wait_log(r"spam acl condition: .*connect.* \(defer_ok: the condition is false\)")
    hop.wait_accepted(1)


class StallingScanner:
    """An HTTP server on loopback that reads requests and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.bytes, self.conns, self.stopped = 0, [], threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        conn.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                data = conn.recv(65536)
            except OSError:
                continue
            if not data:
                return
            self.bytes += len(data)

    def stop(self):
        self.stopped.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def test_scanner_too_slow_defers_or_accepts_with_defer_ok(tandem, nexthop):
    hop = nexthop()
    slow = StallingScanner()
    try:
        line = f"spamd_address = 127.0.0.1:{slow.port} variant=rspamd"
        t = tandem(spam_config(hop, line, tmo="2s"))
        code, lines = send(t, HAM)
        assert code == 451 and lines[0].startswith("4.7.1 "), lines
        t.wait_log(r"spam acl condition: no verdict in time \(spamd_address tmo\)$")
        assert slow.bytes > len(HAM)                 # it did get the (chunked) request
        t2 = tandem(spam_config(hop, line, tmo="2s", opts="/defer_ok"))
        assert send(t2, HAM)[0] == 250
        hop.wait_accepted(1)
    finally:
        slow.stop()


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_20mb_message_streamed_with_bounded_memory(tandem, nexthop, rspamd):
    """Streamed through the worker to rspamd and the next hop: its peak RSS grows by far less
    than the message (a sanitized build's quarantine of freed memory is kept small here, or
    it would hold on to every buffer the 20 MB passed through)."""
    hop = nexthop()
    asan = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV["ASAN_OPTIONS"]) + ":quarantine_size_mb=1"
    t = tandem(spam_config(hop, rspamd.config_line, cutthrough=True, tmo="60s"),
               env={"ASAN_OPTIONS": asan})
    [worker] = worker_pids(t)
    line = b"the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\r\n"
    body = b"From: a@client.test\r\nSubject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    assert send(t, HAM)[0] == 250                  # warm up: the worker's steady size
    before = vm_kib(worker, "VmRSS")
    code, lines = send(t, body)
    assert code == 250, lines
    peak = vm_kib(worker, "VmHWM")
    print(f"worker RSS before {before} KiB, peak {peak} KiB")
    [_, m] = hop.wait_accepted(2, timeout=60)
    assert m.size >= 20 * 1024 * 1024
    assert peak - before < 12 * 1024, (before, peak)    # KiB: far below the 20 MiB message
