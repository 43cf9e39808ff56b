"""ratelimit: Exim's smoothed rates, kept in the hints database that every worker shares.

The sessions of a test are pinned to chosen workers by stopping (SIGSTOP) the others while a
connection is accepted, and each session's worker is checked in /proc, so "across two workers"
is what the test sees, not what it hopes.
"""
import os
import signal
import time

from harness import relay_config, wait_until
from test_faults import worker_pids

BODY = b"Subject: rate\r\n\r\n" + b"x" * 500 + b"\r\n"


def socket_owner(t, client_port):
    """The pid of the daemon process holding the server side of the client's connection."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (int(local.rsplit(":", 1)[1], 16) == t.port and
                        int(remote.rsplit(":", 1)[1], 16) == client_port):
                    inode = fields[9]
    assert inode is not None, "no server socket for the connection"
    for pid in worker_pids(t):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def connect_on(t, worker, others):
    """A connection accepted by `worker`: the other workers are stopped meanwhile."""
    for p in others:
        os.kill(p, signal.SIGSTOP)
    try:
        c = t.connect()
        c.ehlo("client.test")
    finally:
        for p in others:
            os.kill(p, signal.SIGCONT)
    assert socket_owner(t, c.sock.getsockname()[1]) == worker
    return c


RATE_ACL = """\
  deny    ratelimit = {limit} / {period} / per_rcpt / $sender_host_address
          message = rate $sender_rate per $sender_rate_period is over $sender_rate_limit
          log_message = rate $sender_rate/$sender_rate_period
"""


def shown_rate(lines):
    """The rate in "5.7.1 rate R per ..." """
    return float(lines[0].split()[2])


def rate_config(limit=3, period="1h", workers=2):
    return relay_config("[127.0.0.2]:25", acl=RATE_ACL.format(limit=limit, period=period),
                        main=f"workers = {workers}")


def test_next_recipient_over_the_limit_refused_across_workers_and_sessions(tandem):
    t = tandem(rate_config(limit=3))
    a, b = worker_pids(t)
    with connect_on(t, a, [b]) as c:
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<r1@example.test>")
        c.expect(250, "RCPT TO:<r2@example.test>")
        c.quit()
    with connect_on(t, b, [a]) as c:
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<r3@example.test>")
        code, lines = c.cmd("RCPT TO:<r4@example.test>")
        assert code == 550 and lines[0].endswith(" per 1h is over 3"), lines
        assert 3.9 <= shown_rate(lines) <= 4.0       # the 4th of a burst: just under 4 per hour
        code, lines = c.cmd("RCPT TO:<r5@example.test>")       # leaky: refusals do not count
        assert code == 550 and 3.9 <= shown_rate(lines) <= 4.0, lines
        c.quit()
    t.wait_log(r"F=<s@client\.test> rejected RCPT <r4@example\.test>: rate (3\.9|4\.0)/1h$",
               log="rejectlog")


def test_state_survives_a_restart(tandem):
    t = tandem(rate_config(limit=2, workers=1))
    with t.connect() as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<r1@example.test>")
        c.expect(250, "RCPT TO:<r2@example.test>")
        c.expect(550, "RCPT TO:<r3@example.test>")
        c.quit()
    t.stop()
    t.restart()
    with t.connect() as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        code, lines = c.cmd("RCPT TO:<r4@example.test>")
        assert code == 550 and 2.9 <= shown_rate(lines) <= 3.0, lines
        c.quit()


def test_rate_decays(tandem):
    """A burst over 2 per 5s is refused; some seconds later the rate has decayed below 2."""
    t = tandem(rate_config(limit=2, period="5s", workers=1))
    with t.connect() as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<r1@example.test>")
        c.expect(250, "RCPT TO:<r2@example.test>")
        c.expect(550, "RCPT TO:<r3@example.test>")
        time.sleep(6)
        c.expect(250, "RCPT TO:<r4@example.test>")
        c.quit()


def test_per_byte_at_data_counts_the_message_size(tandem, nexthop):
    hop = nexthop()
    text = relay_config(hop, main="acl_smtp_data = check_data\nworkers = 1",
                        extra="check_data:\n"
                              "  deny ratelimit = 1K / 1h / per_byte / strict\n"
                              "       message = $sender_rate bytes per $sender_rate_period\n"
                              "  accept\n")
    t = tandem(text)
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail("s@client.test", ["a@example.test"], BODY)
        assert r["final"][0] == 250
        r = c.send_mail("s@client.test", ["b@example.test"], BODY)
        code, lines = r["final"]
        assert code == 550 and lines[0].endswith(" bytes per 1h"), lines
        size = float(lines[0].split()[1])
        assert 1024 <= size < 2 * 1500                  # two messages of about 600 bytes
        c.quit()
    hop.wait_accepted(1)
    wait_until(lambda: t.spool_ids() == [], 10, "the first message delivered")
    assert [m.rcpts for m in hop.accepted] == [["a@example.test"]]
