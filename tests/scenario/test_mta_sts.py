"""MTA-STS for outbound SMTP (RFC 8461, issue 16): `tls=dane` routes to domains without DANE
follow the domain's MTA-STS policy, fetched from a real HTTPS server on port 443 with a
certificate of the test CA (harness/sts_server.py), its TXT record served by the harness's DNS
server.  Each case runs for queued delivery and for cutthrough (defer=pass): the client's
replies, what the next hop received (never a MAIL in clear under `enforce`), the fetches the
policy server saw, and the log lines (TA=mta-sts on => and >>)."""
import re

import pytest

from harness import relay_config
from harness.sts_server import StsServer

BODY = b"Subject: sts\r\n\r\nauthenticated by MTA-STS\r\n"
MODES = ["queued", "cutthrough"]
DOMAIN = "sts.test"


def policy(mode="enforce", mx=("mx1.sts.test",), max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join(f"mx: {m}\r\n" for m in mx), max_age)


@pytest.fixture
def sts_server(certs):
    made = []

    def make(*args, **kwargs):
        s = StsServer(certs, *args, **kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def mx_cert(certs):
    return certs.issue("sts-mx", ["mx1.sts.test"])


def start(tandem, dns, hop, sts, mode, txt_id="1", mx_host="mx1.sts.test"):
    d = dns({DOMAIN: {"MX": (10, mx_host)}, mx_host: {"A": hop.host},
             f"_mta-sts.{DOMAIN}": {"TXT": f"v=STSv1; id={txt_id};"},
             f"mta-sts.{DOMAIN}": {"A": sts.ip}})
    cut = mode == "cutthrough"
    t = tandem(relay_config("mx", domains=DOMAIN, cutthrough=cut, defer="pass" if cut else None,
                            route_options=f"port={hop.port} tls=dane",
                            main=f"{d.config_line}\ntls_outbound_ca = {sts.ca}"))
    return t, d


def send(t, rcpt):
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        rcpt_reply = c.cmd(f"RCPT TO:<{rcpt}>")
        data = c.data(BODY) if rcpt_reply[0] == 250 else None
        c.quit()
    return rcpt_reply, data


def delivered(t, hop, mode, rcpt, ta, n=1):
    rcpt_reply, data = send(t, rcpt)
    assert rcpt_reply[0] == 250 and data[0] == 250, (rcpt_reply, data)
    m = hop.wait_accepted(n)[n - 1]
    assert m.rcpts == [rcpt] and m.data.endswith(b"authenticated by MTA-STS\r\n")
    arrow = ">>" if mode == "cutthrough" else "=>"
    return t.wait_log(rf"{arrow} {re.escape(rcpt)} R=\S+ T=remote_smtp H=\S+ \[[0-9.]+\]:{hop.port} "
                      rf"(X=TLS\S+ CV=(yes|no) )?TA={ta} C=\"250 ")


def transaction_commands(hop):
    return sum(cmd.upper().startswith(("MAIL", "RCPT", "DATA", "BDAT"))
               for s in hop.sessions for cmd in s.commands)


def deferred(t, hop, mode, rcpt, reason):
    before = transaction_commands(hop)
    rcpt_reply, data = send(t, rcpt)
    if mode == "cutthrough":
        assert rcpt_reply[0] == 451 and data is None, rcpt_reply
        t.wait_log(rf"temporarily rejected RCPT <{re.escape(rcpt)}>: .*{reason}", log="rejectlog")
    else:
        assert rcpt_reply[0] == 250 and data[0] == 250
        t.wait_log(rf"== {re.escape(rcpt)} R=\S+ T=remote_smtp defer \(-3[78]\) H=\S+ .*{reason}")
    assert transaction_commands(hop) == before, hop.summary()     # nothing went in clear


@pytest.mark.parametrize("mode", MODES)
def test_enforce_matching_mx_valid_certificate_delivers(tandem, dns, nexthop, sts_server, certs,
                                                        mx_cert, mode):
    hop = nexthop(tls=mx_cert)
    sts = sts_server(DOMAIN, policy=policy())
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, mode)
    m = delivered(t, hop, mode, "u@sts.test", "mta-sts")
    assert "CV=yes" in m.group(0)
    assert sts.requests == [("/.well-known/mta-sts.txt", "mta-sts.sts.test")]
    assert hop.sessions[0].sni == "mx1.sts.test"
    t.wait_log(r"MTA-STS policy of sts\.test fetched: id=1 mode=enforce max_age=86400")


@pytest.mark.parametrize("mode", MODES)
def test_enforce_mx_not_in_policy_defers(tandem, dns, nexthop, sts_server, certs, mx_cert, mode):
    hop = nexthop(tls=mx_cert)
    sts = sts_server(DOMAIN, policy=policy(mx=("*.elsewhere.test",)))
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, mode)
    deferred(t, hop, mode, "u@sts.test", r"MX host mx1\.sts\.test is not in the MTA-STS policy")
    assert hop.connections == 0


@pytest.mark.parametrize("mode", MODES)
def test_enforce_invalid_certificate_defers(tandem, dns, nexthop, sts_server, certs, mode):
    hop = nexthop(tls=(certs.untrusted_cert, certs.untrusted_key))
    sts = sts_server(DOMAIN, policy=policy())
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, mode)
    deferred(t, hop, mode, "u@sts.test", "certificate verification failed")


@pytest.mark.parametrize("mode", MODES)
def test_enforce_starttls_stripped_defers(tandem, dns, nexthop, sts_server, certs, mode):
    """A next hop (or an attacker in front of it) that does not offer STARTTLS."""
    hop = nexthop()
    sts = sts_server(DOMAIN, policy=policy())
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, mode)
    deferred(t, hop, mode, "u@sts.test", "TLS is required but the server does not offer STARTTLS")
    assert hop.connections >= 1


@pytest.mark.parametrize("mode", MODES)
def test_testing_delivers_and_logs(tandem, dns, nexthop, sts_server, certs, mode):
    """`testing`: what enforce would refuse (an MX not in the policy, a certificate nothing
    vouches for) is logged, and the message goes as under `may`."""
    hop = nexthop(tls=(certs.untrusted_cert, certs.untrusted_key))
    sts = sts_server(DOMAIN, policy=policy(mode="testing", mx=("*.elsewhere.test",)))
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, mode)
    m = delivered(t, hop, mode, "u@sts.test", "none")
    assert "CV=no" in m.group(0)
    t.wait_log(r"MTA-STS testing policy for sts\.test: MX host mx1\.sts\.test is not in the policy "
               r"\(enforce would defer; delivering anyway\)")
    t.wait_log(r"H=mx1\.sts\.test \[127\.0\.0\.2\]:\d+ MTA-STS testing policy: certificate "
               r"verification failed: .*\(enforce would defer; delivering anyway\)")


@pytest.mark.parametrize("mode", MODES)
def test_policy_cached_refreshed_on_new_id_enforced_when_server_down(
        tandem, dns, nexthop, sts_server, certs, mx_cert, mode):
    hop = nexthop(tls=mx_cert)
    sts = sts_server(DOMAIN, policy=policy())
    sts.ca = certs.ca
    t, d = start(tandem, dns, hop, sts, mode)
    delivered(t, hop, mode, "a@sts.test", "mta-sts", n=1)
    delivered(t, hop, mode, "b@sts.test", "mta-sts", n=2)
    assert len(sts.requests) == 1                     # the second used the cached policy

    # a new policy, announced by a new id: fetched again, and it applies at once
    sts.set(policy=policy(mx=("*.elsewhere.test",)))
    d.remove(f"_mta-sts.{DOMAIN}", "TXT")
    d.add(f"_mta-sts.{DOMAIN}", "TXT", "v=STSv1; id=2;")
    deferred(t, hop, mode, "c@sts.test", r"MX host mx1\.sts\.test is not in the MTA-STS policy")
    assert len(sts.requests) == 2
    t.wait_log(r"MTA-STS policy of sts\.test fetched: id=2 mode=enforce")

    # the policy server is down and the id changes again: the cached policy (id=2) still applies
    sts.stop()
    d.remove(f"_mta-sts.{DOMAIN}", "TXT")
    d.add(f"_mta-sts.{DOMAIN}", "TXT", "v=STSv1; id=3;")
    deferred(t, hop, mode, "d@sts.test", r"MX host mx1\.sts\.test is not in the MTA-STS policy "
             r"of sts\.test \(id=2 mode=enforce .*; cached, as the fetch from mta-sts\.sts\.test "
             r"failed: ")
    t.wait_log(r"MTA-STS policy of sts\.test: the fetch from mta-sts\.sts\.test failed: ")
    assert len(hop.accepted) == 2


@pytest.mark.parametrize("mode", MODES)
def test_cached_enforce_policy_holds_when_server_down_and_txt_gone(
        tandem, dns, nexthop, sts_server, certs, mx_cert, mode):
    """Within max_age a cached enforce policy is applied even with no policy server and no TXT
    record: an attacker who blocks both cannot strip STARTTLS."""
    hop = nexthop(tls=mx_cert)
    sts = sts_server(DOMAIN, policy=policy())
    sts.ca = certs.ca
    t, d = start(tandem, dns, hop, sts, mode)
    delivered(t, hop, mode, "a@sts.test", "mta-sts")
    sts.stop()
    d.remove(f"_mta-sts.{DOMAIN}", "TXT")
    # STARTTLS stripped; the RSET that would reuse the verified connection is cut too
    hop.set(extensions=["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"], drop={"RSET"})
    deferred(t, hop, mode, "b@sts.test", "TLS is required but the server does not offer STARTTLS")
    assert len(hop.accepted) == 1


def test_no_policy_means_may(tandem, dns, nexthop, certs):
    """No `_mta-sts` record: opportunistic TLS, in clear when STARTTLS is not offered."""
    hop = nexthop()
    d = dns({DOMAIN: {"MX": (10, "mx1.sts.test")}, "mx1.sts.test": {"A": hop.host}})
    t = tandem(relay_config("mx", domains=DOMAIN, route_options=f"port={hop.port} tls=dane",
                            main=d.config_line))
    delivered(t, hop, "queued", "u@sts.test", "none")
    assert not hop.sessions[0].tls


def test_route_shows_policy(tandem, dns, nexthop, sts_server, certs, mx_cert):
    hop = nexthop(tls=mx_cert)
    sts = sts_server(DOMAIN, policy=policy(mx=("mx1.sts.test", "*.backup.test")))
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, "queued")
    rc, out, err = t.run(["route", "u@sts.test"])
    assert rc == 0, err
    assert (f"  tls mx1.sts.test [{hop.host}]:{hop.port}: verify: MTA-STS policy of sts.test "
            f"(id=1 mode=enforce max_age=86400 mx: mx1.sts.test, *.backup.test): MX host "
            f"mx1.sts.test matches; no DANE: MX or address records not DNSSEC-validated\n") in out


def test_policy_host_certificate_must_be_valid(tandem, dns, nexthop, sts_server, certs):
    """A policy served with a certificate not valid for mta-sts.DOMAIN is no policy at all (an
    attacker's policy must not count): the message goes under `may`, in clear here."""
    hop = nexthop()
    sts = sts_server(DOMAIN, policy=policy(), cert_names=["mta-sts.other.test"])
    sts.ca = certs.ca
    t, _ = start(tandem, dns, hop, sts, "queued")
    delivered(t, hop, "queued", "u@sts.test", "none")
    assert len(sts.requests) == 0                     # the handshake failed: no GET was made
    t.wait_log(r"MTA-STS policy of sts\.test: the fetch from mta-sts\.sts\.test failed: .*"
               r"(certificate|subject name)")
