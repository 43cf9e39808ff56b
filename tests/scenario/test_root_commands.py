"""Commands run as root next to a spool the unprivileged `user` owns (issue 18.3, 18.4, 18.6):
they must not write through what that user planted there, `tandem stop` must signal only the
daemon, and mail a root-run `tandem session` accepts must be the daemon's to deliver.

Each test creates a real system user of its own (useradd --system), runs the daemon as
`user = ` that user with the spool outside pytest's root-only tree, plays the user's part with
processes running under that uid, and checks what root's command did.  See doc/security.md.
"""
import fcntl
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from harness import free_port, relay_config

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
pytestmark = root_only

_names = itertools.count()


@pytest.fixture
def system_user():
    """A fresh unprivileged system user (and its group), removed afterwards."""
    name = f"tdm{os.getpid() % 100000}x{next(_names)}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def outside_tmp():
    """A directory the system user can traverse (pytest's own tree is root-only)."""
    d = tempfile.mkdtemp(prefix="tandem-root-cmds-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_user(user, args, **kw):
    """Run args under user's uid and gid (no supplementary groups)."""
    return subprocess.run(args, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          capture_output=True, text=True, **kw)


def victim(base):
    """A root-owned directory and file that nothing may touch; returns (dir, file, snapshot)."""
    d = os.path.join(base, "victim")
    os.makedirs(d)
    f = os.path.join(d, "file")
    with open(f, "w") as fh:
        fh.write("precious\n")

    def snapshot():
        st = os.stat(f)
        with open(f) as fh:
            return sorted(os.listdir(d)), fh.read(), st.st_size, st.st_uid
    return d, f, snapshot


def user_daemon(tandem, hop, user, base, **options):
    return tandem(relay_config(hop), options={"user": user.pw_name, "workers": "1",
                                              "spool_directory": os.path.join(base, "spool"),
                                              **options})


def plant_db_links(user, spool, vdir, vfile):
    """As the user: the hints database's files become symbolic links at root's victims."""
    db = os.path.join(spool, "db")
    script = (f"rm -f {db}/data.mdb {db}/lock.mdb && ln -s {vdir}/created {db}/data.mdb && "
              f"ln -s {vfile} {db}/lock.mdb")
    r = as_user(user, ["sh", "-c", script])
    assert r.returncode == 0, r.stderr


# ---- 18.3: root-run commands do not write through the user's symbolic links ----------------

@pytest.mark.parametrize("command", ["callout-cache list", "callout-cache purge", "session"])
def test_root_command_does_not_follow_the_users_links(tandem, nexthop, system_user, outside_tmp,
                                                      command):
    vdir, vfile, snapshot = victim(outside_tmp)
    before = snapshot()
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    t.stop()                                             # the spool and its db/ exist now
    plant_db_links(system_user, t.spool, vdir, vfile)
    if command == "session":
        rc, out, err = t.run(["session"], input=b"EHLO root.test\r\nQUIT\r\n")
        assert rc == 0 and out.startswith("220 ") and "221 " in out, (out, err)
    else:
        rc, out, err = t.run(command)
        assert rc == 1 and "callout cache" in err, (rc, out, err)   # refused, and says so
    assert snapshot() == before                          # not truncated, nothing created


def test_root_command_creates_the_users_files(tandem, nexthop, system_user, outside_tmp):
    """Without traps, `tandem callout-cache` as root works, and the database it creates is the
    user's, so the daemon can use it."""
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    t.stop()
    db = os.path.join(t.spool, "db")
    for name in os.listdir(db):
        os.unlink(os.path.join(db, name))
    rc, out, err = t.run("callout-cache list")
    assert rc == 0, err
    owners = {name: os.stat(os.path.join(db, name)).st_uid for name in os.listdir(db)}
    assert owners and set(owners.values()) == {system_user.pw_uid}, owners


def test_root_queue_command_refuses_a_foreign_control_socket(tandem, nexthop, system_user,
                                                             outside_tmp):
    """The control socket lies in the user's spool: a listener that is not the scheduler's
    user (here: root's, standing in for any other daemon's socket) is not talked to."""
    import socket
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    t.stop()
    path = os.path.join(t.spool, "control")
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        rc, out, err = t.run("queue deliver-all")
        assert rc == 1 and "refusing to talk to it" in err, (rc, out, err)
        srv.settimeout(0.5)
        conn, _ = srv.accept()                           # it connected, then said nothing
        conn.settimeout(1)
        assert conn.recv(100) == b""
    finally:
        srv.close()


# ---- 18.6: what a root-run `tandem session` accepts, the daemon delivers ---------------------

def test_root_session_message_is_delivered_by_the_daemon(tandem, nexthop, system_user,
                                                         outside_tmp):
    hop = nexthop()
    t = user_daemon(tandem, hop, system_user, outside_tmp)
    script = (b"EHLO root.test\r\nMAIL FROM:<root@client.test>\r\nRCPT TO:<u@example.test>\r\n"
              b"DATA\r\nSubject: from a root session\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    rc, out, err = t.run(["session"], input=script)
    assert rc == 0, err
    ok = re.search(r"250 2\.0\.0 OK id=(\S+)", out)
    assert ok, (out, err)
    mid = ok.group(1)
    st = os.stat(os.path.join(t.spool, "input", mid))
    assert (st.st_uid, st.st_gid) == (system_user.pw_uid, system_user.pw_gid)
    rc, out, err = t.run(["queue", "deliver", mid])      # the daemon's scheduler, now
    assert rc == 0, (out, err)
    [m] = hop.wait_accepted(1)
    assert m.rcpts == ["u@example.test"] and m.data.endswith(b"\r\nhello\r\n")
    t.wait_log(rf"{mid} Completed")
    assert t.spool_ids() == []


# ---- 18.4: `tandem stop` signals only the daemon ---------------------------------------------

def test_stop_stops_the_daemon(tandem, nexthop, system_user, outside_tmp):
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    rc, out, err = t.run("stop")
    assert rc == 0 and out.strip() == f"tandem: stopped (pid {t.pid})", (out, err)
    t.proc.wait(10)
    t.wait_log(r"tandem daemon stopped")


def test_a_second_daemon_on_the_same_spool_is_refused(tandem, nexthop, system_user, outside_tmp):
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    conf = os.path.join(outside_tmp, "second.conf")
    with open(t.config_path) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(re.sub(r"(?m)^listen = .*$", f"listen = 127.0.0.1:{free_port()}", text))
    p = subprocess.run([t.binary, "serve", "-c", conf], capture_output=True, text=True,
                       timeout=20, cwd=t.dir)
    assert p.returncode == 1 and f"is held by pid {t.pid}" in p.stderr, p.stderr
    assert t.running()


@pytest.mark.parametrize("locked", [False, True], ids=["planted", "planted-and-locked"])
def test_stop_does_not_signal_a_planted_pid(tandem, nexthop, system_user, outside_tmp, locked):
    """The user replaces the pid file with another process's pid (and, in the second case,
    holds a lock on it from a process of its own): stop fails, saying why; that process and
    the daemon live on."""
    t = user_daemon(tandem, nexthop(), system_user, outside_tmp)
    target = subprocess.Popen(["sleep", "300"])          # root's: what the user aims at
    pidfile = os.path.join(t.spool, "tandem.pid")
    holder = None
    try:
        r = as_user(system_user, ["sh", "-c", f"rm -f {pidfile} && echo {target.pid} > {pidfile}"])
        assert r.returncode == 0, r.stderr
        if locked:
            holder = subprocess.Popen(
                ["python3", "-c", "import fcntl,sys,time; f=open(sys.argv[1]); "
                 "fcntl.lockf(f, fcntl.LOCK_SH); print('locked', flush=True); time.sleep(300)",
                 pidfile], user=system_user.pw_uid, group=system_user.pw_gid, extra_groups=[],
                stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "locked"
        rc, out, err = t.run("stop")
        assert rc == 1, (out, err)
        why = (f"the pid file's lock is held by pid {holder.pid}" if locked
               else "no process holds the pid file's lock")
        assert f"names pid {target.pid}, but {why}" in err and "not signalling it" in err, err
        time.sleep(0.3)
        assert target.poll() is None                     # alive
        assert t.running()
        with t.connect() as c:                           # and still serving
            c.quit()
    finally:
        target.kill()
        target.wait()
        if holder:
            holder.kill()
            holder.wait()
