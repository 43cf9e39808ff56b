"""Policy checks through `tandem session --no-deliver --client IP` (the policy issue): one
process per scripted session, no daemon, so a table of many cases stays fast.

- every condition (hosts, domains, local_parts, senders, recipients) with named lists,
  wildcards, IPv4 and IPv6 CIDR, negation and the null sender;
- verify = recipient, sender and helo (with a DNS server for HELO names);
- the modifiers' texts: message (with and without its own code, of the right and the wrong
  class), log_message, logwrite, the eight variables, and that nothing else is ever
  evaluated, neither in the configuration nor in what a client sends;
- `tandem check-config` on a configuration with several ACL errors.
"""
import re
import subprocess

import pytest

from aclkit import log_lines, policy_box

pytestmark = pytest.mark.needs_tandem

CONDITIONS = r"""
hostlist    friends       = 192.0.2.0/28 : 2001:db8:f::/48 : +more_friends
hostlist    more_friends  = 198.51.100.77
hostlist    enemies       = <; 203.0.113.0/24 ; 2001:db8:bad::/64
domainlist  local_domains = example.test : *.example.test
domainlist  relay_domains = +local_domains : relay.test
addresslist vips          = boss@corp.test : *@vip.test : *-owner@lists.test : bob@+local_domains
addresslist spammers      = *@spam.test : bulk@*

acl_smtp_rcpt = c_rcpt

begin routes
*  [127.0.0.2]:1

begin acl
c_rcpt:
  # hosts
  accept  local_parts = hosts-named
          hosts       = +friends
  accept  local_parts = hosts-cidr
          hosts       = 10.0.0.0/8 : 2001:db8:a::/48
  accept  local_parts = hosts-single
          hosts       = 192.0.2.55 : ::1
  accept  local_parts = hosts-not
          !hosts      = +enemies
  accept  local_parts = hosts-except
          hosts       = !192.0.2.66
  accept  local_parts = hosts-any
          hosts       = *
  accept  local_parts = hosts-empty
          hosts       = :
  accept  local_parts = hosts-name
          hosts       = *.example.test
  # domains
  accept  local_parts = domains-named
          domains     = +relay_domains
  accept  local_parts = domains-wild
          domains     = *.sub.test : exact.test
  accept  local_parts = domains-not
          !domains    = +local_domains
  # local_parts
  accept  local_parts = lp-exact : *-suffix : CaSe
  accept  local_parts = !nobody : !*-bounce
          domains     = lp.test
  # senders
  accept  local_parts = senders-named
          senders     = +vips
  accept  local_parts = senders-null
          senders     = :
  accept  local_parts = senders-not
          !senders    = +spammers
  accept  local_parts = senders-any
          senders     = *
  accept  local_parts = senders-domain
          senders     = corp.test : *.corp.test
  # recipients
  accept  recipients  = rcpt-exact@example.test : *@vip.example.test : *-list@example.test
  accept  recipients  = rcpt-user@* : +vips
  # everything else
  deny    message     = 550 5.7.1 no rule for <$local_part@$domain> from <$sender_address> at $sender_host_address
"""


def conversation(sender, rcpt, helo="c.test"):
    return [f"EHLO {helo}", f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>"]


# (recipient, client, sender, accepted?)
COND_CASES = [
    # hosts: named list (v4 CIDR, v6 CIDR, nested list), inline CIDR, single addresses, negation
    ("hosts-named@example.test", "192.0.2.1", "a@s.test", True),
    ("hosts-named@example.test", "192.0.2.15", "a@s.test", True),
    ("hosts-named@example.test", "192.0.2.16", "a@s.test", False),
    ("hosts-named@example.test", "2001:db8:f:1::5", "a@s.test", True),
    ("hosts-named@example.test", "2001:db8:e::5", "a@s.test", False),
    ("hosts-named@example.test", "198.51.100.77", "a@s.test", True),
    ("hosts-cidr@example.test", "10.200.3.4", "a@s.test", True),
    ("hosts-cidr@example.test", "11.0.0.1", "a@s.test", False),
    ("hosts-cidr@example.test", "2001:db8:a:ffff::1", "a@s.test", True),
    ("hosts-cidr@example.test", "2001:db8:b::1", "a@s.test", False),
    ("hosts-cidr@example.test", "::ffff:10.1.2.3", "a@s.test", True),     # v4-mapped is v4
    ("hosts-single@example.test", "192.0.2.55", "a@s.test", True),
    ("hosts-single@example.test", "192.0.2.56", "a@s.test", False),
    ("hosts-single@example.test", "::1", "a@s.test", True),
    ("hosts-single@example.test", "::2", "a@s.test", False),
    ("hosts-not@example.test", "192.0.2.1", "a@s.test", True),
    ("hosts-not@example.test", "203.0.113.9", "a@s.test", False),
    ("hosts-not@example.test", "2001:db8:bad::9", "a@s.test", False),
    ("hosts-not@example.test", "2001:db8:bad:1::9", "a@s.test", True),
    ("hosts-except@example.test", "192.0.2.66", "a@s.test", False),  # "!x" alone = "!x : *"
    ("hosts-except@example.test", "192.0.2.67", "a@s.test", True),
    ("hosts-any@example.test", "2001:db8::1", "a@s.test", True),
    ("hosts-empty@example.test", "192.0.2.1", "a@s.test", False),  # only local submission
    ("hosts-name@example.test", "192.0.2.1", "a@s.test", False),   # no verified host name
    # domains
    ("domains-named@example.test", "192.0.2.1", "a@s.test", True),
    ("domains-named@deep.sub.example.test", "192.0.2.1", "a@s.test", True),
    ("domains-named@relay.test", "192.0.2.1", "a@s.test", True),
    ("domains-named@EXAMPLE.Test", "192.0.2.1", "a@s.test", True),
    ("domains-named@other.test", "192.0.2.1", "a@s.test", False),
    ("domains-wild@a.sub.test", "192.0.2.1", "a@s.test", True),
    ("domains-wild@sub.test", "192.0.2.1", "a@s.test", False),    # *.sub.test needs a label
    ("domains-wild@exact.test", "192.0.2.1", "a@s.test", True),
    ("domains-not@other.test", "192.0.2.1", "a@s.test", True),
    ("domains-not@example.test", "192.0.2.1", "a@s.test", False),
    # local_parts
    ("lp-exact@x.test", "192.0.2.1", "a@s.test", True),
    ("LP-Exact@x.test", "192.0.2.1", "a@s.test", True),
    ("list-suffix@x.test", "192.0.2.1", "a@s.test", True),
    ("case@x.test", "192.0.2.1", "a@s.test", True),
    ("lp-exactly@x.test", "192.0.2.1", "a@s.test", False),
    ("anyone@lp.test", "192.0.2.1", "a@s.test", True),
    ("nobody@lp.test", "192.0.2.1", "a@s.test", False),
    ("x-bounce@lp.test", "192.0.2.1", "a@s.test", False),
    # senders: named list with user@domain, *@domain, *suffix@domain, user@+domainlist
    ("senders-named@example.test", "192.0.2.1", "boss@corp.test", True),
    ("senders-named@example.test", "192.0.2.1", "BOSS@Corp.Test", True),
    ("senders-named@example.test", "192.0.2.1", "anyone@vip.test", True),
    ("senders-named@example.test", "192.0.2.1", "news-owner@lists.test", True),
    ("senders-named@example.test", "192.0.2.1", "bob@x.example.test", True),
    ("senders-named@example.test", "192.0.2.1", "bob@other.test", False),
    ("senders-named@example.test", "192.0.2.1", "clerk@corp.test", False),
    ("senders-named@example.test", "192.0.2.1", "", False),
    ("senders-null@example.test", "192.0.2.1", "", True),
    ("senders-null@example.test", "192.0.2.1", "a@s.test", False),
    ("senders-not@example.test", "192.0.2.1", "a@s.test", True),
    ("senders-not@example.test", "192.0.2.1", "x@spam.test", False),
    ("senders-not@example.test", "192.0.2.1", "bulk@anywhere.test", False),
    ("senders-not@example.test", "192.0.2.1", "", True),            # <> is not a spammer
    ("senders-any@example.test", "192.0.2.1", "a@s.test", True),
    ("senders-any@example.test", "192.0.2.1", "", False),           # * is any non-empty address
    ("senders-domain@example.test", "192.0.2.1", "a@corp.test", True),
    ("senders-domain@example.test", "192.0.2.1", "a@eu.corp.test", True),
    ("senders-domain@example.test", "192.0.2.1", "a@notcorp.test", False),
    # recipients
    ("rcpt-exact@example.test", "192.0.2.1", "a@s.test", True),
    ("rcpt-exact@other.test", "192.0.2.1", "a@s.test", False),
    ("anyone@vip.example.test", "192.0.2.1", "a@s.test", True),
    ("staff-list@example.test", "192.0.2.1", "a@s.test", True),
    ("rcpt-user@anywhere.test", "192.0.2.1", "a@s.test", True),
    ("someone@vip.test", "192.0.2.1", "a@s.test", True),            # via +vips
    ("nobody@example.test", "192.0.2.1", "a@s.test", False),
]


@pytest.fixture(scope="module")
def conditions_box(tmp_path_factory):
    return policy_box(tmp_path_factory.mktemp("conditions"), CONDITIONS)


@pytest.mark.parametrize("rcpt,client,sender,accepted", COND_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2] or 'null'}" for c in COND_CASES])
def test_condition(conditions_box, rcpt, client, sender, accepted):
    r = conditions_box.session(conversation(sender, rcpt), client=client)
    assert r.rc == 0 and r.answers[1][0] == 250, r
    code, lines = r.answers[2]
    if accepted:
        assert (code, lines) == (250, ["2.1.5 Accepted"]), r
        assert r.reject == "", r
    else:
        lp, dom = rcpt.rsplit("@", 1)
        text = f"5.7.1 no rule for <{lp}@{dom}> from <{sender}> at {client}"
        assert (code, lines) == (550, [text]), r
        host = re.escape(f"H=(c.test) [{client}]")
        line = rf"^{host} F=<{re.escape(sender)}> rejected RCPT <{re.escape(rcpt)}>: 550 {re.escape(text)}$"
        assert any(re.match(line, ln) for ln in log_lines(r.reject)), (line, r)
        assert any(re.match(line, ln) for ln in log_lines(r.main)), (line, r)


# -- verify ---------------------------------------------------------------------------------

VERIFY = r"""
acl_smtp_helo = c_helo
acl_smtp_mail = c_mail
acl_smtp_rcpt = c_rcpt
begin routes
example.test  [127.0.0.2]:1
*.route.test  [127.0.0.2]:1
begin acl
c_helo:
  warn    !verify = helo
          log_message = HELO $sender_helo_name not verified: $acl_verify_message
  accept
c_mail:
  deny    senders = *@unverified.test
          !verify = sender
          message = sender refused: $acl_verify_message
  deny    !verify = sender
  accept
c_rcpt:
  deny    local_parts = strict-helo
          !verify = helo
          message = HELO refused ($acl_verify_message)
  require verify = recipient
  accept
"""


@pytest.fixture
def verify_box(tmp_path, dns):
    d = dns({"good.example.net": {"A": "192.0.2.1", "AAAA": "2001:db8::1"},
             "other.example.net": {"A": "192.0.2.99"}})
    return policy_box(tmp_path / "verify", VERIFY, options={"dns_servers": f"127.0.0.1:{d.port}"})


@pytest.mark.parametrize("rcpt,code,text", [
    ("u@example.test", 250, "2.1.5 Accepted"),
    ("u@a.route.test", 250, "2.1.5 Accepted"),
    ("u@unrouted.test", 550, "5.1.2 Unrouteable address"),
    ("u@route.test", 550, "5.1.2 Unrouteable address"),
])
def test_verify_recipient(verify_box, rcpt, code, text):
    r = verify_box.session(conversation("a@example.test", rcpt, helo="good.example.net"))
    assert r.answers[2] == (code, [text]), r
    if code == 550:
        assert re.search(rf"F=<a@example\.test> rejected RCPT <{re.escape(rcpt)}>: .*Unrouteable address",
                         r.reject), r


@pytest.mark.parametrize("sender,code,text", [
    ("", 250, "2.1.0 OK"),                                  # the null sender always verifies
    ("a@example.test", 250, "2.1.0 OK"),
    ("a@b.route.test", 250, "2.1.0 OK"),
    ("a@nowhere.test", 550, "5.1.2 Sender verify failed: unrouteable address"),
    ("a@unverified.test", 550, "5.7.1 sender refused: 550 5.1.2 Sender verify failed: unrouteable address"),
])
def test_verify_sender(verify_box, sender, code, text):
    r = verify_box.session(conversation(sender, "u@example.test", helo="good.example.net"))
    assert r.answers[1] == (code, [text]), r
    if code == 550:
        assert re.search(rf"rejected MAIL <{re.escape(sender)}>: ", r.reject), r


@pytest.mark.parametrize("helo,client,ok", [
    ("good.example.net", "192.0.2.1", True),           # its A record is the client
    ("good.example.net", "2001:db8::1", True),         # its AAAA record
    ("good.example.net", "192.0.2.2", False),
    ("other.example.net", "192.0.2.1", False),
    ("missing.example.net", "192.0.2.1", False),       # NXDOMAIN
    ("[192.0.2.1]", "192.0.2.1", True),                # an address literal: must be the client's
    ("[192.0.2.9]", "192.0.2.1", False),
    ("[IPv6:2001:db8::1]", "2001:db8::1", True),
    ("[IPv6:2001:db8::2]", "2001:db8::1", False),
])
def test_verify_helo(verify_box, helo, client, ok):
    r = verify_box.session(conversation("a@example.test", "strict-helo@example.test", helo=helo),
                           client=client)
    assert r.answers[0][0] == 250, r                   # a warn never refuses
    if ok:
        assert r.answers[2] == (250, ["2.1.5 Accepted"]), r
        assert "not verified" not in r.main, r
    else:
        code, lines = r.answers[2]
        assert code == 550 and lines[0].startswith("5.7.1 HELO refused (550 5.7.1 HELO "), r
        assert re.search(rf"H=\({re.escape(helo)}\) \[{re.escape(client)}\] Warning: HELO "
                         rf"{re.escape(helo)} not verified: 550 5\.7\.1 ", r.main), r


# -- message, log_message, logwrite and the variables ---------------------------------------

TEXTS = r"""
acl_smtp_mail = c_mail
acl_smtp_rcpt = c_rcpt
acl_smtp_data = c_data
begin routes
example.test  [127.0.0.2]:1
begin acl
c_mail:
  warn    logwrite = MAIL lp=<$local_part> dom=<$domain> s=<$sender_address> id=<$message_id> v=<$acl_verify_message>
  accept
c_rcpt:
  warn    !verify = recipient
          logwrite = verify failed: $acl_verify_message
  deny    local_parts = vars
          message = lp=<$local_part> dom=<$domain> s=<$sender_address> ip=<$sender_host_address> helo=<${sender_helo_name}> host=<$primary_hostname> id=<$message_id> v=<$acl_verify_message>
  deny    local_parts = coded
          message = 551 5.1.6 <$local_part@$domain> has moved
  deny    local_parts = coded-plain
          message = 553 mailbox name not allowed
  deny    local_parts = wrong-class
          message = 451 4.7.1 wrong class on deny
  defer   local_parts = defer-coded
          message = 452 4.2.2 mailbox full
  defer   local_parts = defer-wrong
          message = 550 5.7.1 wrong class on defer
  drop    local_parts = drop-421
          message = 421 4.7.0 go away
  deny    local_parts = split
          message = for the client
          log_message = for the log of $local_part
  deny    local_parts = dollar
          message = costs \$5, ${domain}x and "$local_part"
  deny    local_parts = after-warn
  accept  local_parts = accept-verify
          verify = recipient
  deny    local_parts = accept-verify
  deny    local_parts = echo
          message = lp=$local_part s=$sender_address helo=$sender_helo_name
  accept
c_data:
  deny    senders = vars@*
          message = id=<$message_id> lp=<$local_part> s=<$sender_address>
  warn    logwrite = data ACL of $message_id
  accept
"""


@pytest.fixture(scope="module")
def texts_box(tmp_path_factory):
    return policy_box(tmp_path_factory.mktemp("texts"), TEXTS)


@pytest.mark.parametrize("rcpt,code,text,logged", [
    ("vars@unrouted.test", 550, "5.7.1 lp=<vars> dom=<unrouted.test> s=<a@s.test> ip=<192.0.2.1> "
     "helo=<c.test> host=<tandem.test> id=<> v=<550 5.1.2 Unrouteable address>", None),
    ("coded@example.test", 551, "5.1.6 <coded@example.test> has moved", "551 5.1.6 <coded@example.test> has moved"),
    ("coded-plain@example.test", 553, "5.7.1 mailbox name not allowed", "553 mailbox name not allowed"),
    ("wrong-class@example.test", 550, "5.7.1 wrong class on deny", "wrong class on deny"),
    ("defer-coded@example.test", 452, "4.2.2 mailbox full", "452 4.2.2 mailbox full"),
    ("defer-wrong@example.test", 451, "4.7.1 wrong class on defer", "wrong class on defer"),
    ("drop-421@example.test", 550, "5.7.1 go away", "go away"),
    ("split@example.test", 550, "5.7.1 for the client", "for the log of split"),
    ("dollar@example.test", 550, '5.7.1 costs $5, example.testx and "dollar"', None),
    # a warn's failed verification is not the reply of a later refusal, an accept's is (Exim)
    ("after-warn@unrouted.test", 550, "5.7.1 Administrative prohibition", ""),
    ("accept-verify@unrouted.test", 550, "5.1.2 Unrouteable address", "550 5.1.2 Unrouteable address"),
])
def test_message_texts_and_codes(texts_box, rcpt, code, text, logged):
    r = texts_box.session(conversation("a@s.test", rcpt))
    assert r.answers[2] == (code, [text]), r
    temp = "temporarily " if code < 500 else ""
    if logged is not None:
        why = f": {re.escape(logged)}" if logged else ""
        line = rf"F=<a@s\.test> {temp}rejected RCPT <{re.escape(rcpt)}>{why}$"
        for log in (r.main, r.reject):
            assert any(re.search(line, ln) for ln in log_lines(log)), (line, r)
    if "wrong" in rcpt or "421" in rcpt:
        assert re.search(r"configured error code starts with incorrect digit \(expected [45]\) in \"(451|550|421) ",
                         r.main), r
    if rcpt.startswith("split"):
        assert "for the client" not in r.main + r.reject, r


def test_logwrite_goes_to_the_main_log_only(texts_box):
    r = texts_box.session(conversation("a@s.test", "ok@unrouted.test"))
    main = log_lines(r.main)
    assert "MAIL lp=<> dom=<> s=<a@s.test> id=<> v=<>" in main, r
    assert "verify failed: 550 5.1.2 Unrouteable address" in main, r
    assert r.reject == "" and r.answers[2] == (250, ["2.1.5 Accepted"]), r


def test_message_id_in_the_data_acl(texts_box):
    body = b"Subject: v\r\n\r\nvars\r\n.\r\n"
    r = texts_box.session(["EHLO c.test", "MAIL FROM:<vars@s.test>", "RCPT TO:<ok@example.test>",
                           "DATA", body, "MAIL FROM:<other@s.test>", "RCPT TO:<ok@example.test>",
                           "DATA", body])
    code, lines = r.answers[4]
    m = re.fullmatch(r"5\.7\.1 id=<(\S+)> lp=<> s=<vars@s\.test>", lines[0])
    assert code == 550 and m, r
    first = m.group(1)
    assert re.search(rf"^{first} H=\(c\.test\) \[192\.0\.2\.1\] F=<vars@s\.test> rejected after DATA: "
                     rf"id=<{first}>", "\n".join(log_lines(r.reject)), re.M), r
    code, lines = r.answers[8]
    second = lines[0].split("id=")[1]
    assert code == 250 and second != first, r
    assert f"{second} data ACL of {second}" in log_lines(r.main), r


def test_client_text_is_never_evaluated(texts_box):
    """What a client sends is data: "${...}" and "$name" in a HELO name or an address stay
    literal in replies, and are shown sanitised (quotes as \\x22) in the logs."""
    helo = "${run{/bin/true}}"
    sender = '"$domain${run{x}}"@s.test'
    rcpt = '"${run{/bin/false}}$local_part"@example.test'
    r = texts_box.session([f"EHLO {helo}", f"MAIL FROM:<{sender}>", f"RCPT TO:<{rcpt}>",
                           'RCPT TO:<"echo"@example.test>', "RCPT TO:<echo@example.test>"])
    assert r.answers[1][0] == 250 and r.answers[2] == (250, ["2.1.5 Accepted"]), r
    assert r.answers[4] == (550, [f"5.7.1 lp=echo s={sender} helo={helo}"]), r
    assert f"MAIL lp=<> dom=<> s=<{sender}> id=<> v=<>" in log_lines(r.main), r
    assert any(ln.endswith(r'rejected RCPT <echo@example.test>: lp=echo s=\x22$domain${run{x}}\x22@s.test '
                           r'helo=${run{/bin/true}}') for ln in log_lines(r.reject)), r
    assert "/bin/true" in r.out and "Accepted" in r.out


# -- check-config ----------------------------------------------------------------------------

BAD = """\
hostname = tandem.test
acl_smtp_rcpt = check_rcpt
acl_smtp_data = no_such_acl
  hosts = 192.0.2.1
begin acl
  accept hosts = *
check_rcpt:
  accept  hosts = +no_such_list
  deny    frobnicate = yes
  deny    message = hello $no_such_variable
  allow   hosts = *
  deny    message = ${run{/bin/false}}
  deny    message = ${if eq{a}{b}{x}{y}}
  warn    logwrite = costs $5
  deny    !message = x
  accept  verify = sender/bogus
  accept  delay = soon
  deny    domains = +no_such_domains : ok.test
  accept  senders = +no_such_addresses
other:
  accept
"""


def test_check_config_reports_each_acl_error_with_its_line(tmp_path):
    box = policy_box(tmp_path / "box", "")
    path = str(tmp_path / "bad.conf")
    with open(path, "w") as f:
        f.write(BAD)
    p = subprocess.run([box.binary, "check-config", "-c", path], capture_output=True, text=True)
    assert p.returncode == 1, p
    errors = p.stderr.splitlines()
    assert all(ln.startswith(path + ":") for ln in errors), errors
    expect = {
        3: r'acl_smtp_data: ACL "no_such_acl" is not defined',
        4: r'syntax error|before any ACL name|unknown option',
        6: r'"accept" before any ACL name',
        8: r'hostlist "no_such_list" is not defined',
        9: r'unknown ACL condition or modifier "frobnicate"',
        10: r'unknown variable "\$no_such_variable"',
        11: r'unknown ACL verb "allow"',
        12: r'string expansions are not supported: "\$\{run\{/bin/false\}\}"',
        13: r'string expansions are not supported',
        14: r"lone '\$'|\$5",
        15: r'"!" negates conditions only',
        16: r'unknown verify option "bogus"',
        17: r'invalid time "soon"',
        18: r'domainlist "no_such_domains" is not defined',
        19: r'addresslist "no_such_addresses" is not defined',
    }
    for line, what in expect.items():
        hits = [e for e in errors if e.startswith(f"{path}:{line}: ")]
        assert len(hits) == 1 and re.search(what, hits[0]), (line, what, errors)
    assert len(errors) == len(expect), errors
    numbers = [int(e[len(path) + 1:].split(":")[0]) for e in errors]
    assert numbers == sorted(numbers), errors


@pytest.mark.parametrize("config", [CONDITIONS, VERIFY, TEXTS], ids=["conditions", "verify", "texts"])
def test_check_config_accepts_the_policies_used_here(tmp_path, config):
    box = policy_box(tmp_path / "box", config)
    rc, out, err = box.run("check-config")
    assert rc == 0, err
