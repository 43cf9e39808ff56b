"""Inbound TLS certificates: an RSA and an ECDSA certificate side by side, chosen by the
client's signature algorithms; session resumption with stateless tickets shared by every worker;
the pairing of tls_certificate and tls_privatekey (issue 14).  The client is openssl s_client."""
import re
import subprocess
import time

from harness import tandem_binary

NAMES = ["tandem.test", "localhost", "IP:127.0.0.1"]


def s_client(port, *args, wait=0.5):
    """openssl s_client with STARTTLS on port; QUIT after wait seconds; returns its output"""
    p = subprocess.Popen(["openssl", "s_client", "-starttls", "smtp", "-connect",
                          f"127.0.0.1:{port}", "-servername", "tandem.test", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(wait)            # a TLS 1.3 ticket arrives after the handshake
    out, _ = p.communicate(b"QUIT\r\n", timeout=20)
    return out.decode("utf-8", "replace")


def pair_config(certs, rsa_first=True):
    rsa = certs.issue("srv-rsa", NAMES, kind="rsa")
    ec = certs.issue("srv-ec", NAMES)
    first, second = (rsa, ec) if rsa_first else (ec, rsa)
    return (f"tls_certificate = {first[0]} : {second[0]}\n"
            f"tls_privatekey = {first[1]}:{second[1]}\n")


def test_rsa_and_ecdsa_certificates_chosen_by_signature_algorithms(tandem, certs):
    t = tandem(pair_config(certs))
    ec = s_client(t.port, "-sigalgs", "ECDSA+SHA256")
    assert "Peer signature type: ECDSA" in ec and "Server public key is 256 bit" in ec, ec
    rsa = s_client(t.port, "-sigalgs", "rsa_pss_rsae_sha256")
    assert "Peer signature type: RSA-PSS" in rsa and "Server public key is 2048 bit" in rsa, rsa
    # TLS 1.2 with RSA-only cipher suites gets the RSA certificate too
    rsa12 = s_client(t.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert "Server public key is 2048 bit" in rsa12, rsa12


def test_single_certificate_still_valid_and_key_in_certificate_file(tandem, certs, tmp_path):
    cert, key = certs.issue("srv-combined", NAMES)
    combined = tmp_path / "combined.pem"
    combined.write_text(open(cert).read() + open(key).read())
    t = tandem(f"tls_certificate = {combined}\n")          # no tls_privatekey: in the same file
    out = s_client(t.port)
    assert re.search(r"^New, TLSv1\.3", out, re.M), out


def test_resumption_with_tickets_across_workers(tandem, certs, tmp_path):
    t = tandem(pair_config(certs, rsa_first=False), options={"workers": "2"})
    for version in ("-tls1_3", "-tls1_2"):
        sess = str(tmp_path / f"sess{version}")
        first = s_client(t.port, version, "-sess_out", sess)
        assert re.search(r"^New, TLSv1\.[23]", first, re.M), first
        # several connections: whichever worker accepts one resumes the ticket another issued
        for _ in range(6):
            again = s_client(t.port, version, "-sess_in", sess, wait=0.2)
            assert re.search(r"^Reused, TLSv1\.[23]", again, re.M), again


def test_unpaired_certificates_and_keys_are_a_config_error(tandem, certs, tmp_path):
    rsa = certs.issue("srv-rsa", NAMES, kind="rsa")
    ec = certs.issue("srv-ec", NAMES)
    path = tmp_path / "bad.conf"
    path.write_text(f"spool_directory = {tmp_path}/spool\nlog_directory = {tmp_path}/log\n"
                    f"tls_certificate = {rsa[0]} : {ec[0]}\n"
                    f"tls_privatekey = {rsa[1]}\n")
    p = subprocess.run([tandem_binary(), "check-config", "-c", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert re.search(rf"{re.escape(str(path))}:4: tls_privatekey: 1 file\(s\) for 2 "
                     r"certificate\(s\)", p.stdout + p.stderr), p.stdout + p.stderr
