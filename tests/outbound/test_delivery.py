"""Queued delivery (delivery.c) end to end: a message in a scratch spool, real routing through a
scripted DNS server, scripted next hops; results per recipient, Exim log lines, eximstats."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import run_driver
from dnsserver import DnsServer
from scripted import DROP, Scripted, Stall


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Setup:
    def __init__(self, tmp, routes, dns=None, extra=""):
        self.dir = str(tmp)
        self.conf = os.path.join(self.dir, "tandem.conf")
        self.log = os.path.join(self.dir, "log")
        os.makedirs(self.log, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(f"listen = 127.0.0.1:{free_port()}\n"
                    f"spool_directory = {self.dir}/spool\n"
                    f"log_directory = {self.log}\n"
                    f"hostname = tandem.test\n"
                    f"connect_timeout = 3s\n"
                    f"data_timeout = 3s\n"
                    f"tls_outbound = none\n"
                    + (f"dns_servers = {dns.addr}\n" if dns else "")
                    + extra
                    + "begin routes\n" + routes + "\n")

    def run(self, *args):
        return run_driver("dlv_drive", "-c", self.conf, *args)

    def mainlog(self):
        """The log lines without the timestamp and the message id."""
        with open(os.path.join(self.log, "mainlog")) as f:
            return [l.rstrip("\n")[20:].split(" ", 1)[1] for l in f]


def results(r):
    """[outcome, code, ecode, "[host] text"] per recipient."""
    return [l.split(" ", 6)[3:] for l in r.all("result")]


def outcome(r):
    return [l.split()[3] for l in r.all("result")]


def test_delivery_one_host_two_recipients(tmp_path):
    with Scripted() as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "a@x.test", "--rcpt", "b@y.test", "--body-size", "5000")
        assert outcome(r) == ["delivered", "delivered"], r
        assert len(hop.sessions) == 1 and len(hop.sessions[0].messages) == 1
        cmds = hop.sessions[0].commands
        assert cmds[1].startswith("MAIL FROM:<sender@origin.test> SIZE=")
        assert cmds[2:5] == ["RCPT TO:<a@x.test>", "RCPT TO:<b@y.test>", "DATA"]
        msg = hop.sessions[0].messages[0]
        assert msg.startswith(b"Received: from test by dlv_drive\r\n")
        assert b"\r\n..line 5 of the body\r\n" in msg  # dot-stuffed on the wire
        log = s.mainlog()
        assert re.fullmatch(rf'=> a@x\.test R=\* T=remote_smtp H=\[127\.0\.0\.1\]:{hop.port} '
                            r'C="250 2\.0\.0 OK queued"', log[0]), log
        assert log[1].startswith(f"-> b@y.test R=* T=remote_smtp H=[127.0.0.1]:{hop.port} C=")
        with open(os.path.join(s.log, "mainlog")) as f:
            first = f.readline()
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2} => ", first)


def test_rcpt_refusals_and_deferrals(tmp_path):
    with Scripted(replies={"RCPT": {"bad@x.test": "550 5.1.1 no such user",
                                    "later@x.test": "451 4.3.0 try later"}}) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "bad@x.test", "--rcpt", "later@x.test", "--rcpt", "ok@x.test")
        assert outcome(r) == ["failed", "deferred", "delivered"]
        log = "\n".join(s.mainlog())
        assert (f"** bad@x.test R=* T=remote_smtp H=[127.0.0.1]:{hop.port}: SMTP error from remote "
                "mail server after RCPT TO:<bad@x.test>: 550 5.1.1 no such user") in log
        assert (f"== later@x.test R=* T=remote_smtp defer (-44) H=[127.0.0.1]:{hop.port}: SMTP "
                "error from remote mail server after RCPT TO:<later@x.test>: 451 4.3.0 try later") in log
        assert "=> ok@x.test" in log


def test_final_dot_verdicts(tmp_path):
    for reply, want in (("554 5.7.1 spam", "failed"), ("452 4.3.1 full", "deferred")):
        with Scripted(replies={"DOT": reply}) as hop:
            s = Setup(tmp_path / want, f"* [127.0.0.1]:{hop.port}")
            r = s.run("--rcpt", "a@x.test", "--rcpt", "b@x.test")
            assert outcome(r) == [want, want]
            assert "after end of data: " + reply in "\n".join(s.mainlog())


def test_next_host_on_connect_failure_and_greeting(tmp_path):
    dead = free_port()
    with Scripted(banner="554 5.7.1 not you") as bad, Scripted(banner="421 4.3.2 busy") as busy, \
            Scripted() as good:
        s = Setup(tmp_path, f"* [127.0.0.1]:{dead} [127.0.0.1]:{bad.port} [127.0.0.1]:{busy.port} "
                            f"[127.0.0.1]:{good.port}")
        r = s.run("--rcpt", "a@x.test")
        assert outcome(r) == ["delivered"]
        assert len(good.sessions[0].messages) == 1
        hints = r.all("hint")
        assert any(f"127.0.0.1:{dead} failures=1" in h and "Connection refused" in h for h in hints)
        assert any(f"127.0.0.1:{bad.port} failures=1" in h for h in hints)


def test_all_hosts_failed_and_retry_time(tmp_path):
    dead = free_port()
    s = Setup(tmp_path, f"* [127.0.0.1]:{dead}")
    r = s.run("--rcpt", "a@x.test")
    assert outcome(r) == ["deferred"]
    assert "== a@x.test R=* T=remote_smtp defer (111) H=[127.0.0.1]:%d: Connection refused" % dead \
        in s.mainlog()
    r = s.run("--rcpt", "a@x.test", "--retry-block", f"127.0.0.1:{dead}")
    assert "defer (-53): retry time not reached for any host" in s.mainlog()[-1]
    with Scripted() as hop:  # ignore_retry (queue deliver) tries anyway
        s2 = Setup(tmp_path / "2", f"* [127.0.0.1]:{hop.port}")
        r = s2.run("--rcpt", "a@x.test", "--retry-block", f"127.0.0.1:{hop.port}")
        assert outcome(r) == ["deferred"] and not hop.sessions
        r = s2.run("--rcpt", "a@x.test", "--retry-block", f"127.0.0.1:{hop.port}", "--ignore-retry")
        assert outcome(r) == ["delivered"]
        assert not r.all("hint")  # success clears the host's retry record


def test_lost_before_dot_tries_next_host_but_not_after_dot(tmp_path):
    with Scripted(replies={"DATA": DROP}) as dropper, Scripted() as good:
        s = Setup(tmp_path, f"* [127.0.0.1]:{dropper.port} [127.0.0.1]:{good.port}")
        r = s.run("--rcpt", "a@x.test", "--body-size", "400000")
        assert outcome(r) == ["delivered"] and len(good.sessions[0].messages) == 1
    # once the final dot is written the message may have arrived: defer, never a second copy
    with Scripted(drop_after_data=1000) as dropper, Scripted() as good:
        s = Setup(tmp_path / "1", f"* [127.0.0.1]:{dropper.port} [127.0.0.1]:{good.port}")
        r = s.run("--rcpt", "a@x.test", "--body-size", "3000")  # body and dot in one write
        assert outcome(r) == ["deferred"] and not good.sessions
    with Scripted(replies={"DOT": DROP}) as dropper, Scripted() as good:
        s = Setup(tmp_path / "2", f"* [127.0.0.1]:{dropper.port} [127.0.0.1]:{good.port}")
        r = s.run("--rcpt", "a@x.test")
        assert outcome(r) == ["deferred"] and not good.sessions
        assert "Remote host closed connection in response to end of data" in s.mainlog()[-1]


def test_timeout_defers(tmp_path):
    with Scripted(replies={"RCPT": Stall(5)}) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "a@x.test")
        assert outcome(r) == ["deferred"]
        assert "timed out waiting for reply to RCPT" in s.mainlog()[-1]


def test_smtputf8_needed_but_missing(tmp_path):
    with Scripted(ehlo=["PIPELINING", "8BITMIME"]) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--smtputf8", "--rcpt", "a@x.test")
        assert results(r)[0][:3] == ["failed", "550", "5.6.7"]
        assert not any(c.startswith("MAIL") for c in hop.sessions[0].commands)


def test_8bit_dsn_parameters_and_no_dsn_flag(tmp_path):
    with Scripted() as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        s.run("--dsn", "--8bit", "--rcpt", "a@x.test")
        c = hop.sessions[0].commands
        assert re.fullmatch(r"MAIL FROM:<sender@origin\.test> SIZE=\d+ BODY=8BITMIME RET=HDRS "
                            r"ENVID=env\+2Bid", c[1])
        assert c[2] == "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y.test"
    with Scripted(ehlo=["PIPELINING"]) as hop:
        s = Setup(tmp_path / "2", f"* [127.0.0.1]:{hop.port}")
        r = s.run("--dsn", "--8bit", "--rcpt", "a@x.test")
        assert hop.sessions[0].commands[1] == "MAIL FROM:<sender@origin.test>"
        assert r.first("result").endswith("(no DSN)")


def test_size_limit_of_next_hop(tmp_path):
    with Scripted(ehlo=["PIPELINING", "SIZE 1000"]) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "a@x.test", "--body-size", "5000")
        assert results(r)[0][:3] == ["failed", "552", "5.3.4"]


def test_connection_reuse_across_messages(tmp_path):
    with Scripted() as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "a@x.test", "--messages", "3")
        assert outcome(r) == ["delivered"] * 3
        assert len(hop.sessions) == 1
        assert hop.sessions[0].commands.count("RSET") == 2
        assert hop.sessions[0].commands[-1] == "QUIT"


def test_stale_cached_connection_reconnects(tmp_path):
    with Scripted(replies={"RSET": "421 4.3.2 closing"}) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        r = s.run("--rcpt", "a@x.test", "--messages", "2")
        assert outcome(r) == ["delivered"] * 2
        assert len(hop.sessions) == 2 and not r.all("hint")


def test_many_recipients_in_batches(tmp_path):
    with Scripted() as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        rc = []
        for i in range(60):
            rc += ["--rcpt", f"u{i}@x.test"]
        r = s.run(*rc)
        assert outcome(r) == ["delivered"] * 60


def test_routing_failures(tmp_path):
    zone = {"nullmx.test": {"MX": [(0, ".")]}, "mx.test": {"MX": [(10, "mx1.mx.test")]},
            "mx1.mx.test": {"A": ["127.0.0.1"]}}
    with DnsServer(zone, servfail={"broken.test"}) as dns, Scripted() as hop:
        s = Setup(tmp_path, f"*.test mx port={hop.port}", dns=dns)
        r = s.run("--rcpt", "a@nullmx.test", "--rcpt", "b@none.test", "--rcpt", "c@broken.test",
                  "--rcpt", "d@mx.test", "--rcpt", "e@unrouted.example")
        res = results(r)
        assert [x[:3] for x in res] == [["failed", "550", "5.1.10"], ["failed", "550", "5.1.2"],
                                        ["deferred", "451", "4.4.3"], ["delivered", "250", "2.0.0"],
                                        ["failed", "550", "5.1.2"]]
        log = "\n".join(s.mainlog())
        assert "** a@nullmx.test R=*.test: domain nullmx.test has a null MX" in log, log
        assert "** e@unrouted.example: Unrouteable address" in log
        assert "== c@broken.test R=*.test defer (-36): DNS lookup" in log
        assert f"=> d@mx.test R=*.test T=remote_smtp H=mx1.mx.test [127.0.0.1]:{hop.port}" in log


def test_tls_delivery_logs_x_and_cv(tmp_path, certs):
    with Scripted(tls=certs.mx) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port} tls=verify",
                  extra=f"tls_outbound_ca = {certs.ca}\n")
        r = s.run("--rcpt", "a@x.test")
        assert outcome(r) == ["delivered"]
        assert re.search(r"=> a@x\.test R=\* T=remote_smtp H=\[127\.0\.0\.1\]:\d+ "
                         r"X=TLS1\.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 ", s.mainlog()[0])
    with Scripted(tls=certs.untrusted) as bad, Scripted(tls=certs.mx) as good:
        s = Setup(tmp_path / "2", f"* [127.0.0.1]:{bad.port} [127.0.0.1]:{good.port} tls=verify",
                  extra=f"tls_outbound_ca = {certs.ca}\n")
        r = s.run("--rcpt", "a@x.test")
        assert outcome(r) == ["delivered"] and len(good.sessions[0].messages) == 1


@pytest.mark.skipif(shutil.which("eximstats") is None, reason="eximstats not installed")
def test_eximstats_reads_the_log(tmp_path):
    with Scripted(replies={"RCPT": {"bad@x.test": "550 5.1.1 no", "*": "250 ok"}}) as hop:
        s = Setup(tmp_path, f"* [127.0.0.1]:{hop.port}")
        s.run("--rcpt", "a@x.test", "--rcpt", "b@x.test", "--rcpt", "bad@x.test", "--messages", "2")
        out = subprocess.run(["eximstats", "-txt", "-nt", os.path.join(s.log, "mainlog")],
                             capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"Delivered\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)", out)
        assert m and m.groups() == ("2", "4", "1"), out
        assert re.search(r"\[127\.0\.0\.1\]:%d" % hop.port, out), out
        assert "Errors encountered: 2" in out, out
