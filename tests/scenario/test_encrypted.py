"""encrypted and $tls_in_cipher: a RCPT ACL that asks for TLS, and one cipher name."""
from harness import relay_config

ACL = """\
  warn    encrypted = *
          logwrite = cipher is $tls_in_cipher
  deny    local_parts = aes128
          !encrypted = TLS_AES_128_GCM_SHA256
          message = not AES-128 but $tls_in_cipher
  deny    local_parts = named
          encrypted = TLS_AES_256_GCM_SHA384 : TLS_CHACHA20_POLY1305_SHA256 : TLS_AES_128_GCM_SHA256
          message = a TLS 1.3 cipher: $tls_in_cipher
  deny    !encrypted = *
          message = TLS required (cipher "$tls_in_cipher")
"""


def test_encrypted_and_tls_in_cipher(tandem, certs):
    t = tandem(relay_config("[127.0.0.2]:1", acl=ACL),
               options={"tls_certificate": certs.server_cert, "tls_privatekey": certs.server_key})
    with t.connect() as c:
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        assert c.cmd("RCPT TO:<u@example.test>") == (550, ['5.7.1 TLS required (cipher "")'])
        c.quit()
    with t.connect() as c:
        c.ehlo("client.test")
        c.starttls(cafile=certs.ca, server_hostname="tandem.test")
        c.ehlo("client.test")
        c.expect(250, "MAIL FROM:<s@client.test>")
        c.expect(250, "RCPT TO:<u@example.test>")
        code, lines = c.cmd("RCPT TO:<aes128@example.test>")
        named = c.cmd("RCPT TO:<named@example.test>")
        c.quit()
    m = t.wait_log(r"cipher is (TLS1\.3:(TLS_\w+):\d+)$")
    assert code == 550 and lines == [f"5.7.1 not AES-128 but {m.group(1)}"]
    assert m.group(2) != "TLS_AES_128_GCM_SHA256"      # OpenSSL's default pick, not AES-128
    assert named == (550, [f"5.7.1 a TLS 1.3 cipher: {m.group(1)}"])
