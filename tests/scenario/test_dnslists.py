"""dnslists: DNS block and allow lists looked up through the harness's DNS server on loopback.

Clients connect from chosen loopback addresses (127.0.0.5 is listed, 127.0.0.6 is not), so the
names looked up are 5.0.0.127.ZONE and 6.0.0.127.ZONE; the IPv6 client ::1 is looked up in
nibble form.  Every test asserts on the client's replies, the reject log and the DNS queries.
"""
from harness import relay_config

LISTED, CLEAN = "127.0.0.5", "127.0.0.6"
V6_NIBBLES = ".".join("1" + "0" * 31)          # ::1 reversed, nibble by nibble
TXT = "Listed for testing, see http://bl.test/q?127.0.0.5"


def zone(**extra):
    z = {f"5.0.0.127.bl.test": {"A": "127.0.0.2", "TXT": TXT},
         f"5.0.0.127.multi.test": {"A": ["127.0.0.2", "127.0.0.3"]},
         f"5.0.0.127.b.test": {"A": "127.0.0.4", "TXT": "listed in b"},
         f"5.0.0.127.wl.test": {"A": "127.0.0.2"},
         f"{V6_NIBBLES}.bl.test": {"A": "127.0.0.9", "TXT": "v6 listed"},
         "5.0.0.127.other.test": {"A": "192.0.2.1"}}
    z.update(extra)
    return z


def config(d, rcpt_acl, main=""):
    return relay_config(
        "[127.0.0.2]:25", cutthrough=False,
        main=f"{d.config_line}\ndnslist_timeout = 2s\n{main}",
        acl=rcpt_acl)


DENY = """\
  deny    dnslists = {lists}
          message = $sender_host_address is listed at $dnslist_domain ($dnslist_value): $dnslist_text
          log_message = listed at $dnslist_domain: $dnslist_value
  accept
"""


def rcpt(t, source, to="u@example.test", host="127.0.0.1"):
    """One transaction up to RCPT from source; returns the RCPT reply."""
    with t.connect(source=source, host=host) as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<a@client.test>")
        got = c.cmd(f"RCPT TO:<{to}>")
        c.quit()
    return got


def test_listed_client_refused_with_txt(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="bl.test")))
    code, lines = rcpt(t, LISTED)
    assert code == 550
    assert lines == [f"5.7.1 127.0.0.5 is listed at bl.test (127.0.0.2): {TXT}"]
    t.wait_log(r"F=<a@client\.test> rejected RCPT <u@example\.test>: listed at bl\.test: 127\.0\.0\.2$",
               log="rejectlog")
    assert d.queried("5.0.0.127.bl.test", "A") and d.queried("5.0.0.127.bl.test", "TXT")


def test_not_listed_client_accepted(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="bl.test")))
    assert rcpt(t, CLEAN)[0] == 250
    assert d.queried("6.0.0.127.bl.test", "A")
    assert not d.queried("6.0.0.127.bl.test", "TXT")      # TXT only for a listed client
    assert "rejected RCPT" not in t.rejectlog()


def test_value_mismatch_is_not_listed(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="bl.test=127.0.0.3 : multi.test==127.0.0.2")))
    assert rcpt(t, LISTED)[0] == 250          # 127.0.0.2 is not 127.0.0.3; .3 is not only .2
    assert d.queried("5.0.0.127.multi.test", "A")


def test_value_and_netmask_match(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="multi.test=127.0.0.0/30")))
    code, lines = rcpt(t, LISTED)
    assert code == 550 and lines[0] in ("5.7.1 127.0.0.5 is listed at multi.test (127.0.0.2, 127.0.0.3): ",
                                        "5.7.1 127.0.0.5 is listed at multi.test (127.0.0.3, 127.0.0.2): ")
    t2 = tandem(config(d, DENY.format(lists="multi.test=127.0.1.0/24 : multi.test&0.0.0.3")))
    code, lines = rcpt(t2, LISTED)           # the first item does not match, the bit mask does
    assert code == 550 and "at multi.test" in lines[0]


def test_answer_outside_127_is_ignored(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="other.test")))
    assert rcpt(t, LISTED)[0] == 250
    t.wait_log(r"dnslists: 5\.0\.0\.127\.other\.test returned 192\.0\.2\.1, outside 127\.0\.0\.0/8: ignored")


def test_two_zones_first_listed_in_list_order_wins(tandem, dns):
    d = dns(zone())
    t = tandem(config(d, DENY.format(lists="nothere.test : b.test : bl.test")))
    code, lines = rcpt(t, LISTED)
    assert code == 550 and lines == ["5.7.1 127.0.0.5 is listed at b.test (127.0.0.4): listed in b"]
    for z in ("nothere.test", "b.test", "bl.test"):            # all looked up at once
        assert d.queried(f"5.0.0.127.{z}", "A"), z
    assert not d.queried("5.0.0.127.bl.test", "TXT")


def test_ipv6_client_nibble_form(tandem, dns):
    d = dns(zone())
    cfg = config(d, DENY.format(lists="bl.test"))
    t = tandem(cfg)
    t.restart(config=cfg, options={"listen": f"127.0.0.1:{t.port} [::1]:{t.port}"})
    code, lines = rcpt(t, None, host="::1")
    assert code == 550 and lines == ["5.7.1 ::1 is listed at bl.test (127.0.0.9): v6 listed"]
    assert d.queried(f"{V6_NIBBLES}.bl.test", "A")


def test_timeout_and_servfail_are_not_listed_and_logged(tandem, dns):
    d = dns(zone(), servfail=["5.0.0.127.broken.test"], timeout=["5.0.0.127.slow.test"])
    t = tandem(config(d, DENY.format(lists="slow.test : broken.test")))
    assert rcpt(t, LISTED)[0] == 250
    t.wait_log(r"dnslists: A lookup of 5\.0\.0\.127\.slow\.test timed out: treated as not listed")
    t.wait_log(r"dnslists: A lookup of 5\.0\.0\.127\.broken\.test failed \(SERVFAIL or bad answer\): "
               r"treated as not listed")


def test_defer_unknown_gives_451(tandem, dns):
    d = dns(zone(), servfail=["5.0.0.127.broken.test"])
    t = tandem(config(d, DENY.format(lists="+defer_unknown : broken.test")))
    code, lines = rcpt(t, LISTED)
    assert code == 451 and lines[0].startswith("4.7.1 ")


def test_allowlist_accepts(tandem, dns):
    d = dns(zone())
    acl = """\
  accept  dnslists = wl.test
  deny    message = not on the allow list
"""
    t = tandem(config(d, acl))
    assert rcpt(t, LISTED)[0] == 250
    assert rcpt(t, CLEAN) == (550, ["5.7.1 not on the allow list"])


def test_answers_kept_for_the_session(tandem, dns):
    """The same zone in the MAIL and RCPT ACLs (and twice in RCPT): one lookup a session."""
    d = dns(zone())
    text = relay_config("[127.0.0.2]:25", cutthrough=False,
                        main=f"{d.config_line}\nacl_smtp_mail = check_mail",
                        acl="warn dnslists = bl.test\n log_message = rcpt: $dnslist_domain\n"
                            "accept dnslists = bl.test\n",
                        extra="check_mail:\n  warn dnslists = bl.test\n"
                              "       log_message = mail: $dnslist_domain\n  accept\n")
    t = tandem(text)
    with t.connect(source=LISTED) as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<a@client.test>")
        c.expect(250, "RCPT TO:<u@example.test>")
        c.expect(250, "RCPT TO:<v@example.test>")
        c.quit()
    t.wait_log(r"Warning: mail: bl\.test$")
    t.wait_log(r"Warning: rcpt: bl\.test$", count=2)
    assert len(d.queried("5.0.0.127.bl.test", "A")) == 1
    assert len(d.queried("5.0.0.127.bl.test", "TXT")) == 1
