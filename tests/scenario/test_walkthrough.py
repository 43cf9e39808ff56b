"""README.md's walkthrough, run as written (issue 15: the front door must not rot): after
`scripts/start` (here: the same `build/tandem serve -c etc/tandem.conf` in a scratch directory,
on free ports), the pasted commands show a message cut through to the next hop and a
recipient refused in the session, and the log lines the README quotes."""
import os
import re
import subprocess

import pytest

from harness import free_port, wait_until
from harness.daemon import REPO, tandem_binary
from harness.ports import port_open


def walkthrough_commands():
    text = open(os.path.join(REPO, "README.md")).read()
    block = text.split("<!-- walkthrough", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return block


@pytest.mark.needs_tandem
def test_readme_walkthrough(tmp_path):
    smtp, hop = free_port("127.0.0.1"), free_port("127.0.0.1")
    conf = open(os.path.join(REPO, "etc", "tandem.conf")).read()
    assert "listen = 127.0.0.1:2525" in conf and "[127.0.0.1]:2626" in conf
    conf = conf.replace("127.0.0.1:2525", f"127.0.0.1:{smtp}").replace("2626", str(hop))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "tandem.conf").write_text(conf)
    (tmp_path / "build").mkdir()
    os.symlink(tandem_binary(), tmp_path / "build" / "tandem")
    (tmp_path / "scripts").mkdir()
    os.symlink(os.path.join(REPO, "scripts", "nexthop"), tmp_path / "scripts" / "nexthop")
    commands = walkthrough_commands().replace("2525", str(smtp)).replace("2626", str(hop))
    # what scripts/start ends with, after installing and building
    r = subprocess.run(["build/tandem", "serve", "-c", "etc/tandem.conf"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        r = subprocess.run(["bash", "-c", commands], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
        out = r.stdout + r.stderr
        assert re.search(r"<-  250 2\.0\.0 OK id=\S+ \(next hop: 250 2\.0\.0 Ok: queued as 1\)", out), out
        assert "<** 550 5.1.1 <nobody@example.org>: no such user here" in out, out
        assert re.search(r" <= you@example\.com H=\(\S+\) \[127\.0\.0\.1\] P=esmtp S=\d+", out), out
        assert re.search(rf" >> alice@example\.org R=\+relay_to_domains T=remote_smtp "
                         rf"H=\[127\.0\.0\.1\]:{hop} C=\"250 2\.0\.0 Ok: queued as 1\"", out), out
        assert re.search(r"rejected RCPT <nobody@example\.org>: .*550 5\.1\.1 <nobody@example\.org>: "
                         r"no such user here", out), out
        assert "nexthop: message 1 from <you@example.com> for alice@example.org" in out, out
        assert "tandem: stopped" in out, out                 # the walkthrough's last line
        wait_until(lambda: not port_open("127.0.0.1", hop), 10, "the next hop stopped")
        assert os.listdir(tmp_path / "var" / "spool" / "input") == []   # nothing was queued
    finally:
        subprocess.run(["build/tandem", "stop", "-c", "etc/tandem.conf"], cwd=tmp_path,
                       capture_output=True, timeout=60)
