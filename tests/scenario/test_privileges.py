"""Privileges and files (issue "Hostile input, faults and crashes"): started as root with
`user = nobody`, only the parent keeps root, also after a reload and a crash restart; spool
and log paths someone else planted (symbolic links, hard links, foreign owners) are refused
at startup; every descriptor of every process is close-on-exec.

test_daemon.py::test_drops_privileges_to_user checks the workers' uids after a plain start.
"""
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from harness import free_port, wait_until
from harness.configs import relay_config
from harness.daemon import tandem_binary, tandem_env

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

O_CLOEXEC = 0o2000000


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    ids = {k: [int(x) for x in re.search(rf"^{k}:[ \t]*(.*)$", text, re.M).group(1).split()]
           for k in ("Uid", "Gid", "Groups")}
    ids["CapEff"] = int(re.search(r"^CapEff:\s*([0-9a-f]+)", text, re.M).group(1), 16)
    ids["CapPrm"] = int(re.search(r"^CapPrm:\s*([0-9a-f]+)", text, re.M).group(1), 16)
    return ids


@pytest.fixture
def outside_tmp():
    """A directory outside pytest's root-only tree, so that `nobody` can reach the spool (the
    logs can stay inside: the root parent opens them and the children inherit them)."""
    d = tempfile.mkdtemp(prefix="tandem-privs-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def assert_unprivileged(pids, uid, gid):
    for pid in pids:
        st = status(pid)
        assert set(st["Uid"]) == {uid} and set(st["Gid"]) == {gid}, (pid, st)
        assert st["Groups"] == [gid], (pid, st)          # no supplementary groups kept
        assert st["CapEff"] == 0 and st["CapPrm"] == 0, (pid, st)


@root_only
def test_only_the_parent_keeps_root_also_after_reload_and_restart(tandem, nexthop, outside_tmp):
    hop = nexthop()
    nobody = pwd.getpwnam("nobody")
    t = tandem(relay_config(hop), expect_panic=True,
               options={"user": "nobody", "workers": "2", "spool_directory": outside_tmp + "/spool"})
    kids = wait_until(lambda: len(children(t.pid)) == 3 and children(t.pid), 5, "children")
    assert status(t.pid)["Uid"][1] == 0                  # the parent: root (to bind, reload)
    assert_unprivileged(kids, nobody.pw_uid, nobody.pw_gid)
    os.kill(t.pid, signal.SIGHUP)                        # reload: new workers and scheduler
    t.wait_log(r"configuration reloaded")
    after = wait_until(lambda: (len(children(t.pid)) == 3 and not set(children(t.pid)) & set(kids)
                                and children(t.pid)), 10, "replaced children")
    assert_unprivileged(after, nobody.pw_uid, nobody.pw_gid)
    os.kill(after[0], signal.SIGKILL)                    # a crash: the restarted one too
    t.wait_log(rf"process {after[0]} killed by signal 9", log="paniclog")
    again = wait_until(lambda: len(children(t.pid)) == 3 and after[0] not in children(t.pid)
                       and children(t.pid), 5, "the restarted child")
    assert_unprivileged(again, nobody.pw_uid, nobody.pw_gid)
    with t.connect() as c:                               # and they can do their jobs
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")
        assert c.data(b"Subject: p\r\n\r\nbody\r\n")[0] == 250
        c.quit()
    hop.wait_accepted(1)
    wait_until(lambda: t.spool_ids() == [], 10, "delivery and removal by the scheduler")
    for name in ("input", "tmp", "db"):
        assert os.stat(os.path.join(t.spool, name)).st_uid == nobody.pw_uid   # t.spool follows
    assert os.stat(os.path.join(t.log_dir, "mainlog")).st_uid == 0


# ---- planted paths are refused at startup ---------------------------------------------------

def serve_once(directory, spool, log):
    """Run `tandem serve --foreground` on a config using spool and log; (rc, stderr) if it
    refuses to start within 10 s (it is stopped if it does start)."""
    conf = os.path.join(directory, "tandem.conf")
    with open(conf, "w") as f:
        f.write(f"hostname = tandem.test\nlisten = 127.0.0.1:0\nspool_directory = {spool}\n"
                f"log_directory = {log}\nworkers = 1\nuser = nobody\n".replace(
                    "127.0.0.1:0", f"127.0.0.1:{free_port()}"))
    p = subprocess.Popen([tandem_binary(), "serve", "-c", conf, "--foreground"],
                         stderr=subprocess.PIPE, text=True, env=tandem_env(),
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None, "it started"
    return p.returncode, err


def plant(base, what, victim):
    """Set up one trap in base (spool: base/spool, logs: base/log) aimed at victim."""
    spool, log = os.path.join(base, "spool"), os.path.join(base, "log")
    os.makedirs(log)
    if what == "spool is a symlink":
        os.symlink(victim, spool)
        return spool
    os.makedirs(os.path.join(spool, "input"))
    if what in ("input is a symlink", "tmp is a symlink", "db is a symlink"):
        sub = os.path.join(spool, what.split()[0])
        if os.path.isdir(sub):
            os.rmdir(sub)
        os.symlink(victim, sub)
        return sub
    if what == "log directory is a symlink":
        os.rmdir(log)
        os.symlink(victim, log)
        return log
    if what == "mainlog is a symlink":
        os.symlink(os.path.join(victim, "file"), os.path.join(log, "mainlog"))
        return os.path.join(log, "mainlog")
    if what == "paniclog is a hard link":
        os.link(os.path.join(victim, "file"), os.path.join(log, "paniclog"))
        return os.path.join(log, "paniclog")
    if what == "pid file is a hard link":
        os.link(os.path.join(victim, "file"), os.path.join(spool, "tandem.pid"))
        return os.path.join(spool, "tandem.pid")
    if what == "spool owned by another user":
        os.chown(spool, 4242, 4242)
        return spool
    if what == "log directory owned by another user":
        os.chown(log, 4242, 4242)
        return log
    raise ValueError(what)


TRAPS = ["spool is a symlink", "input is a symlink", "tmp is a symlink", "db is a symlink",
         "log directory is a symlink", "mainlog is a symlink", "paniclog is a hard link",
         "pid file is a hard link", "spool owned by another user",
         "log directory owned by another user"]


@root_only
@pytest.mark.needs_tandem
@pytest.mark.parametrize("what", TRAPS)
def test_planted_spool_and_log_paths_are_refused(outside_tmp, what):
    victim = os.path.join(outside_tmp, "victim")        # e.g. /etc: must stay untouched
    os.makedirs(victim)
    with open(os.path.join(victim, "file"), "w") as f:
        f.write("precious\n")
    before = sorted(os.listdir(victim)), os.stat(victim).st_uid
    trap = plant(os.path.join(outside_tmp, "t"), what, victim)
    rc, err = serve_once(outside_tmp, os.path.join(outside_tmp, "t", "spool"),
                         os.path.join(outside_tmp, "t", "log"))
    assert rc == 1, (rc, err)
    assert f"refusing {trap}: it " in err, err
    assert (sorted(os.listdir(victim)), os.stat(victim).st_uid) == before   # not chowned, no
    with open(os.path.join(victim, "file")) as f:                          # input/ made in it,
        assert f.read() == "precious\n"                                    # nothing written


@root_only
@pytest.mark.needs_tandem
def test_existing_files_of_root_and_the_user_are_accepted(outside_tmp):
    """The check is not in the way of an ordinary restart: directories owned by the user,
    logs by root, a pid file left behind."""
    nobody = pwd.getpwnam("nobody")
    spool, log = os.path.join(outside_tmp, "spool"), os.path.join(outside_tmp, "log")
    for sub in ("input", "tmp", "corrupt", "db"):
        os.makedirs(os.path.join(spool, sub))
        os.chown(os.path.join(spool, sub), nobody.pw_uid, nobody.pw_gid)
    os.makedirs(log)
    for name in ("mainlog", "tandem.pid"):
        with open(os.path.join(log if name == "mainlog" else spool, name), "w") as f:
            f.write("old\n")
    rc, err = serve_once(outside_tmp, spool, log)
    assert rc is None, err


# ---- close-on-exec ----------------------------------------------------------------------------

def open_fds(pid):
    """{fd: (target, flags)} of a process."""
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = int(re.search(r"^flags:\s*([0-7]+)", f.read(), re.M).group(1), 8)
        except (OSError, AttributeError):
            continue                                     # closed meanwhile
        fds[int(fd)] = (target, flags)
    return fds


def test_every_descriptor_of_every_process_is_close_on_exec(tandem, nexthop):
    """After a session in progress, a callout and a delivery (LMDB hints open in the worker
    and the scheduler), no descriptor but 0, 1 and 2 would survive an exec."""
    hop = nexthop()
    t = tandem(relay_config(hop, callout="5s"))
    busy = t.connect()                                   # a session stays open meanwhile
    busy.ehlo()
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<a@b.test>")
        c.expect(250, "RCPT TO:<x@example.test>")       # a callout to the next hop
        assert c.data(b"Subject: fds\r\n\r\nbody\r\n")[0] == 250
        c.quit()
    hop.wait_accepted(1)
    wait_until(lambda: t.spool_ids() == [], 10, "delivery")
    leaks = []
    for pid in [t.pid] + children(t.pid):
        for fd, (target, flags) in sorted(open_fds(pid).items()):
            if fd > 2 and not flags & O_CLOEXEC:
                leaks.append((pid, fd, target, oct(flags)))
    assert leaks == []
    busy.quit()
