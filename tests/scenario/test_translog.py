"""The transaction log (transaction_log = FILE, issue 15): one JSON object a line per
transaction, with the client leg and the onward (cut-through) leg linked, for accepted,
refused-by-the-next-hop and queued messages; reopened on SIGUSR1 like the other logs."""
import json
import pwd
import shutil
import tempfile
import os
import signal

import pytest

from harness import relay_config, wait_until

BODY = b"Subject: t\r\n\r\nhello\r\n"


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_both_legs_in_one_record(tandem, nexthop, certs, tmp_path):
    hop = nexthop(tls=(certs.nexthop_cert, certs.nexthop_key),
                  dot=lambda sess, arg: "554 5.7.1 no spam here" if b"spam" in sess.messages[-1].data
                  else "250 2.0.0 queued as ABC")
    path = str(tmp_path / "transactions.json")
    t = tandem(relay_config(hop, cutthrough=True),
               options={"tls_certificate": certs.server_cert, "tls_privatekey": certs.server_key,
                        "transaction_log": path})
    with t.connect() as c:
        c.ehlo("client.test")
        c.starttls(cafile=certs.ca, server_hostname="tandem.test")
        c.ehlo("client.test")
        r = c.send_mail("a@client.test", ["u@example.test", "v@example.test"], BODY)
        assert r["final"] and r["final"][0] == 250, r
        r = c.send_mail("a@client.test", ["u@example.test"], b"Subject: spam\r\n\r\nspam\r\n")
        assert r["final"][0] == 554
        c.quit()
    wait_until(lambda: len(records(path)) == 2, 10, "two records")
    ok, spam = records(path)
    assert ok["result"] == "accepted" and ok["queued"] == 0
    assert ok["client"]["ip"] == "127.0.0.1" and ok["client"]["helo"] == "client.test"
    assert ok["client"]["tls"].startswith("TLS1.")
    assert ok["client"]["sender"] == "a@client.test"
    assert ok["client"]["rcpts"] == ["u@example.test", "v@example.test"]
    assert ok["client"]["size"] > len(BODY) and ok["client"]["reply_code"] == 250
    assert ok["id"] in ok["client"]["reply"]
    assert ok["onward"]["host"].endswith(f"[127.0.0.2]:{hop.port}")
    assert ok["onward"]["tls"].startswith("X=TLS1.")
    assert ok["onward"]["reply"] == "250 2.0.0 queued as ABC"
    assert ok["onward"]["rcpts_accepted"] == 2
    assert isinstance(ok["client"]["eod_to_reply_ms"], int)
    assert t.wait_log(ok["id"] + r" >> u@example\.test")
    assert spam["result"] == "refused" and spam["client"]["reply_code"] == 554
    assert spam["onward"]["reply"] == "554 5.7.1 no spam here"


def test_queued_message_and_reopen_on_sigusr1(tandem, nexthop, tmp_path):
    hop = nexthop(dot="451 4.3.0 busy")
    path = str(tmp_path / "transactions.json")
    t = tandem(relay_config(hop, cutthrough=True), options={"transaction_log": path})
    with t.connect() as c:
        c.ehlo("client.test")
        assert c.send_mail("a@client.test", ["u@example.test"], BODY)["final"][0] == 250
        c.quit()
    wait_until(lambda: len(records(path)) == 1, 10, "a record")
    [rec] = records(path)
    assert rec["result"] == "accepted" and rec["queued"] == 1
    assert rec["onward"]["reply"] == "451 4.3.0 busy"
    # logrotate: move the files away, SIGUSR1, and new lines go to new files
    os.rename(path, path + ".1")
    os.rename(os.path.join(t.log_dir, "mainlog"), os.path.join(t.log_dir, "mainlog.1"))
    os.kill(t.pid, signal.SIGUSR1)
    wait_until(lambda: os.path.exists(os.path.join(t.log_dir, "mainlog")), 10, "new mainlog")
    t.wait_log(r"log files reopened")
    hop.set(dot="250 ok")
    with t.connect() as c:
        c.ehlo("client.test")
        assert c.send_mail("b@client.test", ["w@example.test"], BODY)["final"][0] == 250
        c.quit()
    t.wait_log(r"<= b@client\.test")                     # the worker writes to the new mainlog
    wait_until(lambda: os.path.exists(path) and len(records(path)) == 1, 10, "record in new file")
    assert records(path)[0]["client"]["sender"] == "b@client.test"
    assert len(records(path + ".1")) == 1
    assert "<= b@client.test" not in open(os.path.join(t.log_dir, "mainlog.1")).read()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_unprivileged_children_reopen_after_rotation(tandem, nexthop):
    """With `user`, the children (not root) reopen the rotated logs themselves."""
    hop = nexthop()
    top = tempfile.mkdtemp(prefix="tandem-rotate-")
    os.chmod(top, 0o755)
    try:
        t = tandem(relay_config(hop), options={
            "user": "nobody", "spool_directory": top + "/spool", "log_directory": top + "/log",
            "transaction_log": top + "/log/transactions.json"})
        log = top + "/log/"
        for name in ("mainlog", "transactions.json"):
            os.rename(log + name, log + name + ".1")
        os.kill(t.pid, signal.SIGUSR1)
        t.wait_log(r"log files reopened")
        st = os.stat(log + "mainlog")                   # root's, the children's group may write
        assert st.st_uid == 0 and st.st_gid == pwd.getpwnam("nobody").pw_gid
        assert st.st_mode & 0o777 == 0o660
        with t.connect() as c:
            c.ehlo("client.test")
            assert c.send_mail("c@client.test", ["x@example.test"], BODY)["final"][0] == 250
            c.quit()
        t.wait_log(r"<= c@client\.test")
        wait_until(lambda: len(records(log + "transactions.json")) == 1, 10, "record")
        assert "<= c@client.test" not in open(log + "mainlog.1").read()
        t.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)
