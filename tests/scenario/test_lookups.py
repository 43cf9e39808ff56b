"""Lookups in lists (issue 12): `lsearch;/file` and `cdb;/file` items, as a backup MX uses them
to carry the primary's list of valid recipients.

The daemon runs with two workers.  Every list kind takes a lookup: `domains` and a named
`domainlist` (the relay domains, also the route's pattern), `local_parts`, `recipients` and a
named `addresslist` (the valid recipients, with `*@domain` entries), `senders`, and `hosts`
(`net-lsearch;`, keyed by the client's address).  cdb files are built with tinycdb's real
`cdb -c` (keys in lower case).  A file edited while the daemon runs is used without a restart;
a missing file makes the condition defer (451) — never a match, negated or not — and is logged
once per process, not per lookup; a route whose pattern's lookup fails defers the delivery.
"""
import os
import re
import subprocess
import time

import pytest

from harness import wait_until
from harness.daemon import tandem_binary

pytestmark = pytest.mark.needs_tandem

ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"
BODY = b"Subject: lookups\r\n\r\nhello\r\n"

DOMAINS = ["example.test", "catchall.test"]
RECIPIENTS = ["known@example.test", "Mixed.Case@Example.test", "*@catchall.test"]
LOCAL_PARTS = ["blocked"]
SENDERS = ["spammer@bad.test", "*@spam.test"]
HOSTS = ["127.0.0.66"]


def write_lsearch(path, keys, header="# written by test_lookups\n"):
    """An lsearch file: one key a line (some with a value), written atomically."""
    text = header + "".join(f"{k}: listed\n" if i % 2 else f"{k}\n" for i, k in enumerate(keys))
    tmp = f"{path}.new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def write_cdb(path, keys):
    """A cdb file built by tinycdb's `cdb -c -m` (it writes path.tmp and renames it)."""
    data = "".join(f"{k.lower()} listed\n" for k in keys)
    subprocess.run(["cdb", "-c", "-m", path], input=data.encode(), check=True)


def write_all(d, kind, extra_rcpts=()):
    """Every list file of one lookup type into directory d."""
    write = write_lsearch if kind == "lsearch" else write_cdb
    write(f"{d}/domains", DOMAINS)
    write(f"{d}/recipients", RECIPIENTS + list(extra_rcpts))
    write(f"{d}/local_parts", LOCAL_PARTS)
    write(f"{d}/senders", SENDERS)
    write(f"{d}/hosts", HOSTS)


def config(hop, d, kind, workers=2):
    return f"""
workers = {workers}
domainlist relay_domains = {kind};{d}/domains
addresslist valid = {kind};{d}/recipients
acl_smtp_connect = check_connect
acl_smtp_mail = check_mail
acl_smtp_rcpt = check_rcpt

begin routes
+relay_domains  {hop.route}

begin acl
check_connect:
  deny    message = 554 5.7.1 client listed
          hosts = net-{kind};{d}/hosts
  accept

check_mail:
  deny    message = 550 5.7.1 sender listed
          senders = {kind};{d}/senders
  accept

check_rcpt:
  deny    message = relay not permitted
          !domains = +relay_domains
  deny    message = 550 5.7.1 local part refused
          local_parts = {kind};{d}/local_parts
  deny    message = 550 5.1.1 no such user here
          !recipients = +valid
  accept  domains = {kind};{d}/domains
"""


def rcpt_replies(t, rcpts, sender="alice@client.test", source="127.0.0.1"):
    """{rcpt: (code, text)} for each RCPT of one transaction (then RSET and QUIT)."""
    out = {}
    with t.connect(source=source) as c:
        c.ehlo("client.test")
        c.expect(250, f"MAIL FROM:<{sender}>")
        for r in rcpts:
            code, lines = c.cmd(f"RCPT TO:<{r}>")
            out[r] = (code, " ".join(lines))
        c.quit()
    return out


def lookup_dir(tmp_path):
    d = tmp_path / "lists"
    d.mkdir()
    return str(d)


@pytest.mark.parametrize("kind", ["lsearch", "cdb"])
def test_every_list_kind(tandem, nexthop, tmp_path, kind):
    d = lookup_dir(tmp_path)
    write_all(d, kind)
    hop = nexthop()
    t = tandem(config(hop, d, kind))
    got = rcpt_replies(t, ["known@example.test", "KNOWN@example.TEST", "mixed.case@example.test",
                           "unknown@example.test", "anyone@catchall.test", "x@sub.catchall.test",
                           "blocked@catchall.test", "known@other.test"])
    assert got["known@example.test"][0] == 250
    assert got["KNOWN@example.TEST"][0] == 250                     # keys compared without case
    assert got["mixed.case@example.test"][0] == 250
    assert got["unknown@example.test"] == (550, "5.1.1 no such user here")   # named addresslist
    assert got["anyone@catchall.test"][0] == 250                   # "*@domain" key
    assert got["x@sub.catchall.test"] == (550, "5.7.1 relay not permitted")  # a key is no wildcard
    assert got["blocked@catchall.test"] == (550, "5.7.1 local part refused")  # local_parts
    assert got["known@other.test"] == (550, "5.7.1 relay not permitted")  # named domainlist
    # senders: a listed address and a "*@domain" key
    with t.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<spammer@bad.test>") == (550, ["5.7.1 sender listed"])
        assert c.cmd("MAIL FROM:<anyone@spam.test>") == (550, ["5.7.1 sender listed"])
        c.expect(250, "MAIL FROM:<fine@bad.test>")
        c.quit()
    # hosts: net-TYPE keyed by the client's address
    with t.connect(source="127.0.0.66", banner=False) as c:
        assert c.reply() == (554, ["5.7.1 client listed"])
    # the route's pattern is the named domainlist: a message reaches the next hop
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail("alice@client.test", ["known@example.test", "anyone@catchall.test"], BODY)
        c.quit()
    assert r["final"][0] == 250, r
    [m] = hop.wait_accepted(1)
    assert sorted(m.rcpts) == ["anyone@catchall.test", "known@example.test"]
    assert b"Subject: lookups\r\n" in m.data and m.data.endswith(b"\r\n\r\nhello\r\n")
    t.wait_log(r"=> known@example\.test R=\+relay_domains ")
    t.wait_log(rf"lookup {kind};{re.escape(d)}/recipients loaded: ")
    assert "failed:" not in t.mainlog()
    assert hop.violations() == []


@pytest.mark.parametrize("kind", ["lsearch", "cdb"])
def test_file_edited_while_running(tandem, nexthop, tmp_path, kind):
    d = lookup_dir(tmp_path)
    write_all(d, kind)
    t = tandem(config(nexthop(), d, kind))
    assert rcpt_replies(t, ["new@example.test"])["new@example.test"][0] == 550
    start = t.mainlog().count("recipients loaded")
    (write_lsearch if kind == "lsearch" else write_cdb)(f"{d}/recipients",
                                                       RECIPIENTS + ["new@example.test"])

    # each worker re-checks its files at most once a second; both must take the new entry
    def accepted_everywhere():
        return all(rcpt_replies(t, ["new@example.test"])["new@example.test"][0] == 250
                   for _ in range(6))
    wait_until(accepted_everywhere, timeout=15, what="the new recipient accepted by every worker",
               detail=t.mainlog)
    assert t.mainlog().count("recipients loaded") > start         # reloaded, not restarted
    # an entry taken out is refused again
    (write_lsearch if kind == "lsearch" else write_cdb)(f"{d}/recipients", RECIPIENTS)

    def refused_everywhere():
        return all(rcpt_replies(t, ["new@example.test"])["new@example.test"][0] == 550
                   for _ in range(6))
    wait_until(refused_everywhere, timeout=15, what="the removed recipient refused again",
               detail=t.mainlog)


def test_lsearch_appended_in_place(tandem, nexthop, tmp_path):
    """An operator who appends to the file (no rename) is seen too: size and mtime change."""
    d = lookup_dir(tmp_path)
    write_all(d, "lsearch")
    t = tandem(config(nexthop(), d, "lsearch", workers=1))
    assert rcpt_replies(t, ["late@example.test"])["late@example.test"][0] == 550
    with open(f"{d}/recipients", "a") as f:
        f.write("late@example.test\n")
    wait_until(lambda: rcpt_replies(t, ["late@example.test"])["late@example.test"][0] == 250,
               timeout=15, what="the appended recipient accepted", detail=t.mainlog)


@pytest.mark.parametrize("kind", ["lsearch", "cdb"])
def test_missing_file_defers(tandem, nexthop, tmp_path, kind):
    d = lookup_dir(tmp_path)
    write_all(d, kind)
    os.unlink(f"{d}/recipients")
    hop = nexthop()
    t = tandem(config(hop, d, kind))
    rcpts = [f"user{i}@example.test" for i in range(7)] + ["known@example.test"]
    got = rcpt_replies(t, rcpts)
    # "!recipients = +valid" must neither match nor fail to match: 451, for everyone
    assert all(code == 451 for code, _ in got.values()), got
    assert got["known@example.test"] == (451, "4.7.1 Temporary local problem - please try later")
    path = re.escape(f"{d}/recipients")
    t.wait_log(rf"F=<alice@client\.test> temporarily rejected RCPT <user3@example\.test>: "
               rf"{kind};{path}: cannot open: No such file or directory", log="rejectlog")
    # logged once per process that looked (two workers), not once per lookup
    failed = re.findall(rf"lookup {kind};{path} failed: cannot open: No such file", t.mainlog())
    assert 1 <= len(failed) <= 2, t.mainlog()
    rcpt_replies(t, rcpts)
    assert len(re.findall(rf"lookup {kind};{path} failed", t.mainlog())) == len(failed)
    assert t.spool_ids() == [] and hop.messages == []
    # the file comes back: no restart needed
    (write_lsearch if kind == "lsearch" else write_cdb)(f"{d}/recipients", RECIPIENTS)
    wait_until(lambda: rcpt_replies(t, ["known@example.test"])["known@example.test"][0] == 250
               and rcpt_replies(t, ["known@example.test"])["known@example.test"][0] == 250,
               timeout=15, what="the recipient accepted once the file is back", detail=t.mainlog)


def test_unreadable_cdb_defers(tandem, nexthop, tmp_path):
    """A file that is not a cdb file (here: an lsearch file named as cdb) defers too."""
    d = lookup_dir(tmp_path)
    write_all(d, "cdb")
    write_lsearch(f"{d}/recipients", RECIPIENTS)
    t = tandem(config(nexthop(), d, "cdb", workers=1))
    assert rcpt_replies(t, ["known@example.test"])["known@example.test"][0] == 451
    t.wait_log(rf"lookup cdb;{re.escape(d)}/recipients failed: not a cdb file")


def test_route_lookup_failure_defers_delivery(tandem, nexthop, tmp_path):
    """The route's pattern cannot be decided: the delivery is deferred (never "unroutable",
    never another route), and goes out once the file is back."""
    d = lookup_dir(tmp_path)
    hop = nexthop()
    t = tandem(f"""
acl_smtp_rcpt = check_rcpt
retry_intervals = 1s
domainlist routed = lsearch;{d}/routed
begin routes
+routed  {hop.route}
*        [127.0.0.1]:1
begin acl
check_rcpt:
  accept
""")
    with t.connect() as c:
        c.ehlo("client.test")
        r = c.send_mail("alice@client.test", ["bob@example.test"], BODY)
        c.quit()
    assert r["final"][0] == 250, r
    qid = re.search(ID, " ".join(r["final"][1])).group(0)
    t.wait_log(rf"{qid} == bob@example\.test .*defer .*Temporary local problem routing the "
               rf"address \(a lookup failed\)")
    t.wait_log(rf"lookup lsearch;{re.escape(d)}/routed failed: cannot open")
    assert "** bob@example.test" not in t.mainlog() and hop.messages == []
    assert "127.0.0.1]:1" not in t.mainlog()                      # "*" was not used instead
    rc, out, _ = t.run("route bob@example.test")
    assert "status: lookup deferred (451 4.4.3 Temporary local problem routing" in out, out
    write_lsearch(f"{d}/routed", ["example.test"])
    time.sleep(1.2)                                               # the next once-a-second check
    t.run("queue deliver-all")
    [m] = hop.wait_accepted(1, timeout=15)
    assert m.rcpts == ["bob@example.test"]
    t.wait_log(rf"{qid} => bob@example\.test R=\+routed ")


def test_check_config(tmp_path):
    d = lookup_dir(tmp_path)
    binary = tandem_binary()
    bad = tmp_path / "bad.conf"
    bad.write_text("domainlist a = example.test : dbm;/etc/x\n"
                   "addresslist b = lsearch;relative/file\n")
    p = subprocess.run([binary, "check-config", "-c", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{bad}:1: " in p.stderr and 'unknown lookup type "dbm"' in p.stderr
    assert f"{bad}:2: " in p.stderr and "absolute path" in p.stderr
    # a missing file is not an error (conditions defer at run time), but it is reported
    good = tmp_path / "good.conf"
    write_lsearch(f"{d}/present", ["example.test"])
    good.write_text(f"domainlist a = lsearch;{d}/present\n"
                    f"addresslist b = cdb;{d}/absent.cdb\n")
    p = subprocess.run([binary, "check-config", "-c", str(good)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"{good}:2: warning: lookup cdb;{d}/absent.cdb: cannot open" in p.stderr
    assert ":1:" not in p.stderr
    assert "configuration OK" in p.stdout
