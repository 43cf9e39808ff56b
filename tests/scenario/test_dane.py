"""DANE for outbound SMTP (RFC 7672, issue 16): `tls=dane` against real DNSSEC-signed zones
served by NSD (harness/signed_dns.py, fresh keys and trust anchor per test), with scripted next
hops presenting certificates from the test CA.  Every case runs for queued delivery and for
cutthrough (defer=pass, so that the client hears the next hop's fate at RCPT), and checks the
client's replies, what the next hop received (never a MAIL in clear when DANE applies), and
the log lines (TA= on => and >>)."""
import hashlib
import os
import re
import subprocess

import pytest

from harness import relay_config
from harness.signed_dns import SignedDns

BODY = b"Subject: dane\r\n\r\nauthenticated by DNSSEC\r\n"
MODES = ["queued", "cutthrough"]


def spki_sha256(cert):
    """The SHA-256 of a certificate's SubjectPublicKeyInfo: the data of a `x 1 1` TLSA record."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def chain_file(certs, cert, name):
    """cert followed by the test CA: a next hop presenting it sends the chain DANE-TA needs."""
    path = os.path.join(certs.dir, f"{name}-chain.crt")
    with open(path, "w") as out:
        for part in (cert, certs.ca):
            with open(part) as f:
                out.write(f.read())
    return path


@pytest.fixture
def signed_dns(tmp_path):
    made = []

    def make(*args, **kwargs):
        z = SignedDns(tmp_path / f"z{len(made)}", *args, **kwargs)
        made.append(z)
        return z
    yield make
    for z in made:
        z.stop()


@pytest.fixture
def mx_cert(certs):
    """A certificate of the test CA for the MX host names used here."""
    return certs.issue("dane-mx", ["mx1.dane.test", "mx1.plain.test", "mx1.bogus.test"])


def zone(hop, tlsa=None, domain="dane.test", extra=None):
    """domain's MX mx1.DOMAIN at hop's address, with TLSA records for hop's port."""
    records = {domain: {"MX": (10, f"mx1.{domain}")}, f"mx1.{domain}": {"A": hop.host}}
    if tlsa:
        records[f"_{hop.port}._tcp.mx1.{domain}"] = {"TLSA": tlsa}
    records.update(extra or {})
    return records


def start(tandem, hop, z, mode, domains="dane.test", main=""):
    cut = mode == "cutthrough"
    return tandem(relay_config("mx", domains=domains, cutthrough=cut, defer="pass" if cut else None,
                               route_options=f"port={hop.port} tls=dane",
                               main=z.config_line + ("\n" + main if main else "")))


def send(t, rcpt):
    """One message to rcpt; returns (RCPT reply, DATA reply or None)."""
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        rcpt_reply = c.cmd(f"RCPT TO:<{rcpt}>")
        data = c.data(BODY) if rcpt_reply[0] == 250 else None
        c.quit()
    return rcpt_reply, data


def delivered(t, hop, mode, rcpt, ta):
    """The message reached hop over TLS and the delivery line says TA=ta."""
    rcpt_reply, data = send(t, rcpt)
    assert rcpt_reply[0] == 250 and data[0] == 250, (rcpt_reply, data)
    [m] = hop.wait_accepted(1)
    assert m.rcpts == [rcpt] and m.data.endswith(b"authenticated by DNSSEC\r\n")
    assert m.session.tls
    arrow = ">>" if mode == "cutthrough" else "=>"
    return t.wait_log(rf"{arrow} {re.escape(rcpt)} R=\S+ T=remote_smtp H=\S+ \[[0-9.]+\]:{hop.port} "
                      rf"X=TLS\S+ CV=(yes|no) TA={ta} C=\"250 ")


def transaction_commands(hop):
    return sum(cmd.upper().startswith(("MAIL", "RCPT", "DATA", "BDAT"))
               for s in hop.sessions for cmd in s.commands)


def deferred(t, hop, mode, rcpt, reason):
    """Nothing reached hop in clear (no MAIL at all); the deferral names reason."""
    before = transaction_commands(hop)
    rcpt_reply, data = send(t, rcpt)
    if mode == "cutthrough":
        assert rcpt_reply[0] == 451 and data is None, rcpt_reply
        t.wait_log(rf"temporarily rejected RCPT <{re.escape(rcpt)}>: .*{reason}", log="rejectlog")
        assert t.spool_ids() == []
    else:
        assert rcpt_reply[0] == 250 and data[0] == 250
        t.wait_log(rf"== {re.escape(rcpt)} R=\S+ T=remote_smtp defer \(-3[78]\) H=\S+ .*{reason}")
    assert transaction_commands(hop) == before, hop.summary()     # nothing went in clear
    assert hop.messages == []


@pytest.mark.parametrize("mode", MODES)
def test_dane_ee_matching_delivers(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    hop = nexthop(tls=mx_cert)
    z = signed_dns(zone(hop, "3 1 1 " + spki_sha256(mx_cert[0])), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    m = delivered(t, hop, mode, "u@dane.test", "dane")
    assert "CV=yes" in m.group(0)
    assert hop.sessions[0].sni == "mx1.dane.test"


@pytest.mark.parametrize("mode", MODES)
def test_dane_ee_not_matching_defers_nothing_in_clear(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    hop = nexthop(tls=mx_cert)
    z = signed_dns(zone(hop, "3 1 1 " + "ab" * 32), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    deferred(t, hop, mode, "u@dane.test", "TLS session failure: certificate verification failed")
    assert hop.sessions and all(s.tls is False or s.ended_by == "tls-failed" for s in hop.sessions)


@pytest.mark.parametrize("mode", MODES)
def test_dane_ta_with_chain_delivers(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    hop = nexthop(tls=(chain_file(certs, mx_cert[0], "dane-mx"), mx_cert[1]))
    z = signed_dns(zone(hop, "2 1 1 " + spki_sha256(certs.ca)), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    delivered(t, hop, mode, "u@dane.test", "dane")


@pytest.mark.parametrize("mode", MODES)
def test_dane_ta_wrong_anchor_defers(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    hop = nexthop(tls=(chain_file(certs, mx_cert[0], "dane-mx"), mx_cert[1]))
    z = signed_dns(zone(hop, "2 1 1 " + spki_sha256(certs.untrusted_cert)), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    deferred(t, hop, mode, "u@dane.test", "certificate verification failed")


@pytest.mark.parametrize("mode", MODES)
def test_bogus_tlsa_signature_defers(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    """The TLSA record is replaced after signing by the one that would match: its signature no
    longer verifies, so it is bogus and never used - and the hop is not tried in clear."""
    hop = nexthop(tls=mx_cert)
    good = "3 1 1 " + spki_sha256(mx_cert[0])
    z = signed_dns(zone(hop, "3 1 1 " + "cd" * 32), signed=["dane.test"],
                   tamper={(f"_{hop.port}._tcp.mx1.dane.test", "TLSA"): good})
    t = start(tandem, hop, z, mode)
    deferred(t, hop, mode, "u@dane.test", "TLSA lookup for .* failed \\(DNSSEC validation failed\\)")
    assert hop.connections == 0


@pytest.mark.parametrize("mode", MODES)
def test_bogus_mx_defers(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    """A bogus MX answer is a temporary failure: the domain is not routed at all (cutthrough,
    as for any routing failure, leaves the message to the queue)."""
    hop = nexthop(tls=mx_cert)
    z = signed_dns(zone(hop, "3 1 1 " + spki_sha256(mx_cert[0])), signed=["dane.test"],
                   tamper={("dane.test", "MX"): "10 mx1.evil.example."})
    t = start(tandem, hop, z, mode)
    rcpt_reply, data = send(t, "u@dane.test")
    assert rcpt_reply[0] == 250 and data[0] == 250
    t.wait_log(r"== u@dane\.test R=\S+ defer \(-36\): DNS lookup for dane\.test gave a temporary error")
    assert hop.connections == 0


@pytest.mark.parametrize("mode", MODES)
def test_insecure_zone_tlsa_ignored_falls_back(tandem, nexthop, signed_dns, certs, mode):
    """TLSA records in an unsigned zone are not used: opportunistic TLS (`may`) as before, here
    with a certificate nothing would authenticate."""
    hop = nexthop(tls=(certs.untrusted_cert, certs.untrusted_key))
    z = signed_dns(zone(hop, "3 1 1 " + "ef" * 32, domain="plain.test"), signed=["dane.test"],
                   unsigned=["plain.test"])
    t = start(tandem, hop, z, mode, domains="plain.test")
    m = delivered(t, hop, mode, "u@plain.test", "none")
    assert "CV=no" in m.group(0)


@pytest.mark.parametrize("mode", MODES)
def test_no_starttls_under_dane_defers_nothing_in_clear(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    hop = nexthop()                                   # no tls=: STARTTLS is not offered
    z = signed_dns(zone(hop, "3 1 1 " + spki_sha256(mx_cert[0])), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    deferred(t, hop, mode, "u@dane.test", "TLS is required but the server does not offer STARTTLS")
    assert hop.connections >= 1


@pytest.mark.parametrize("mode", MODES)
def test_unusable_tlsa_means_tls_without_authentication(tandem, nexthop, signed_dns, certs, mode):
    """Only PKIX-EE(1) records, which RFC 7672 makes unusable for SMTP: TLS is still mandatory
    (2.2), without authentication - so an untrusted certificate is accepted, clear text not."""
    hop = nexthop(tls=(certs.untrusted_cert, certs.untrusted_key))
    z = signed_dns(zone(hop, "1 1 1 " + spki_sha256(certs.untrusted_cert)), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    m = delivered(t, hop, mode, "u@dane.test", "none")
    assert "CV=no" in m.group(0)


@pytest.mark.parametrize("mode", MODES)
def test_unusable_tlsa_and_no_starttls_defers(tandem, nexthop, signed_dns, certs, mode):
    hop = nexthop()
    z = signed_dns(zone(hop, "0 0 1 " + "12" * 32), signed=["dane.test"])
    t = start(tandem, hop, z, mode)
    deferred(t, hop, mode, "u@dane.test", "TLS is required but the server does not offer STARTTLS")


def test_route_shows_dane_records(tandem, nexthop, signed_dns, certs, mx_cert):
    hop = nexthop(tls=mx_cert)
    digest = spki_sha256(mx_cert[0])
    z = signed_dns(zone(hop, ["3 1 1 " + digest, "1 1 1 " + digest], domain="dane.test"),
                   signed=["dane.test"])
    t = start(tandem, hop, z, "queued")
    rc, out, err = t.run(["route", "u@dane.test"])
    assert rc == 0, err
    assert f"  host mx1.dane.test [{hop.host}] port={hop.port} pref=10 tls=dane dnssec\n" in out
    assert (f"  tls mx1.dane.test [{hop.host}]:{hop.port}: dane: 1 usable TLSA record for "
            f"_{hop.port}._tcp.mx1.dane.test: 3 1 1 {digest[:16]}...\n") in out


@pytest.mark.parametrize("mode", MODES)
def test_dane_wins_over_mta_sts(tandem, nexthop, signed_dns, certs, mx_cert, mode):
    """Secure TLSA records and an MTA-STS policy that would refuse this MX: DANE applies, and
    the policy is not even fetched."""
    from harness.sts_server import StsServer
    hop = nexthop(tls=mx_cert)
    sts = StsServer(certs, "dane.test", policy="version: STSv1\nmode: enforce\n"
                                               "mx: *.elsewhere.test\nmax_age: 86400\n")
    try:
        z = signed_dns(zone(hop, "3 1 1 " + spki_sha256(mx_cert[0]), extra={
            "_mta-sts.dane.test": {"TXT": "v=STSv1; id=1;"}, "mta-sts.dane.test": {"A": sts.ip}}),
            signed=["dane.test"])
        t = start(tandem, hop, z, mode, main=f"tls_outbound_ca = {certs.ca}")
        delivered(t, hop, mode, "u@dane.test", "dane")
        assert sts.requests == []
    finally:
        sts.stop()


@pytest.mark.parametrize("matching", [True, False])
def test_dane_applies_to_callouts(tandem, nexthop, signed_dns, certs, mx_cert, matching):
    """A recipient callout dials through the same decision: verified over DANE, or not at all."""
    hop = nexthop(tls=mx_cert)
    digest = spki_sha256(mx_cert[0]) if matching else "99" * 32
    z = signed_dns(zone(hop, "3 1 1 " + digest), signed=["dane.test"])
    t = tandem(relay_config("mx", domains="dane.test", callout="10s",
                            route_options=f"port={hop.port} tls=dane", main=z.config_line))
    with t.connect() as c:
        c.ehlo()
        c.expect(250, "MAIL FROM:<s@client.test>")
        code, lines = c.cmd("RCPT TO:<u@dane.test>")
        c.quit()
    if matching:
        assert code == 250
        assert hop.sessions[0].tls and any(cmd.startswith("RCPT TO:<u@dane.test>")
                                           for cmd in hop.sessions[0].commands)
    else:
        assert code == 451, lines
        assert transaction_commands(hop) == 0
