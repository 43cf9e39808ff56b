"""Test certificates made with the ``openssl`` command line (EC P-256: fast to generate).

    certs = Certs(directory)          # the session fixture `certs` does this once per run
    certs.ca                          # CA certificate (PEM) - use for tls_outbound_ca / cafile
    certs.server_cert, .server_key    # for tandem: tandem.test, localhost, 127.0.0.1, ::1
    certs.nexthop_cert, .nexthop_key  # for next hops: nexthop.test, *.example.test,
                                      #   *.example.net, mx.test, mx1.test..mx3.test,
                                      #   localhost, 127.0.0.1-.9
    certs.untrusted_cert, .untrusted_key   # self-signed, same names as the next hop's
    cert, key = certs.issue("name", ["other.test", "IP:127.0.0.5"])   # more, signed by the CA
    cert, key = certs.issue("rsa", ["tandem.test"], kind="rsa")        # RSA-2048 instead of EC

Every certificate is valid for ten years from now.  Files are PEM; keys are
unencrypted and mode 0644 so that peers dropping privileges (Exim) can read them.
"""
import os
import subprocess

NEXTHOP_NAMES = ["nexthop.test", "*.example.test", "*.example.net", "mx.test", "mx1.test", "mx2.test",
                 "mx3.test", "localhost"] + [f"IP:127.0.0.{i}" for i in range(1, 10)]
SERVER_NAMES = ["tandem.test", "localhost", "IP:127.0.0.1", "IP:::1"]


def _openssl(*args, cwd=None):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _san(names):
    items = []
    for n in names:
        items.append(n if n.startswith(("IP:", "DNS:")) else f"DNS:{n}")
    return "subjectAltName=" + ",".join(items)


class Certs:
    """A test CA and the certificates signed by it (see the module docstring)."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.ca, self.ca_key = self._self_signed("ca", "tandem test CA", ca=True)
        self.server_cert, self.server_key = self.issue("server", SERVER_NAMES)
        self.nexthop_cert, self.nexthop_key = self.issue("nexthop", NEXTHOP_NAMES)
        self.untrusted_cert, self.untrusted_key = self._self_signed(
            "untrusted", "nexthop.test", names=NEXTHOP_NAMES)

    def _path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")

    def _newkey(self, name, kind="ec"):
        key = self._path(name, "key")
        if kind == "rsa":
            _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        else:
            _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", key)
        os.chmod(key, 0o644)
        return key

    def _self_signed(self, name, cn, ca=False, names=None):
        key, cert = self._newkey(name), self._path(name, "crt")
        ext = ["-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign"] if ca else []
        if names:
            ext += ["-addext", _san(names)]
        _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "3650",
                 "-subj", f"/CN={cn}", *ext)
        return cert, key

    def issue(self, name, names, cn=None, kind="ec"):
        """A certificate for ``names`` (DNS names, or "IP:addr"), signed by the test CA; kind
        "rsa" for an RSA-2048 key instead of EC P-256."""
        cert = self._path(name, "crt")
        if os.path.exists(cert):
            return cert, self._path(name, "key")
        key, csr = self._newkey(name, kind), self._path(name, "csr")
        extfile = self._path(name, "ext")
        cn = cn or next((n for n in names if not n.startswith("IP:")), name)
        _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}")
        with open(extfile, "w") as f:
            f.write(_san(names) + "\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "3650", "-extfile", extfile)
        return cert, key
