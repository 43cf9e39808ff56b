"""Fixtures for the outbound integration tests: the drivers (built by `make drivers`), a test
CA with server certificates made by the openssl command line, and a run helper.

TANDEM_BUILD picks the build directory (default build/): TANDEM_BUILD=build/asan runs the
tests against the ASan+UBSan drivers (`make asan-drivers`), where any sanitizer report, a
leak at a driver's exit included, fails the test."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, os.environ.get("TANDEM_BUILD") or "build")
sys.path.insert(0, HERE)

# A sanitized driver stops at its first report, leaks included (values in the environment win).
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_stacktrace=1",
}
SANITIZER_ERROR = re.compile(r"ERROR: (Address|Leak|Memory)Sanitizer|runtime error:")


def driver(name):
    path = os.path.join(BUILD, "drivers", name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not built (make drivers)")
    return path


class Run:
    """The output of one driver run, as lines and as a lookup by first word."""

    def __init__(self, proc):
        self.out = proc.stdout
        self.err = proc.stderr
        self.lines = proc.stdout.splitlines()
        self.rc = proc.returncode

    def first(self, word):
        for l in self.lines:
            if l.split(" ", 1)[0] == word:
                return l
        return None

    def all(self, word):
        return [l for l in self.lines if l.split(" ", 1)[0] == word]

    def __repr__(self):
        return f"<rc={self.rc}\n{self.out}\nstderr:\n{self.err}>"


def run_driver(name, *args, timeout=60, valgrind=False):
    cmd = [driver(name), *map(str, args)]
    if valgrind or os.environ.get("TANDEM_VALGRIND"):
        cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**SANITIZER_ENV, **os.environ})
    assert proc.returncode != 99, f"valgrind found errors:\n{proc.stderr}"
    assert not SANITIZER_ERROR.search(proc.stderr), f"{name}: sanitizer report:\n{proc.stderr}"
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stderr}"
    return Run(proc)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Certs:
    def __init__(self, d):
        self.dir = str(d)
        self.ca = os.path.join(self.dir, "ca.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Test CA",
                 cwd=self.dir)

    def issue(self, name, sans, self_signed=False):
        key, csr, crt = f"{name}.key", f"{name}.csr", f"{name}.pem"
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\n")
        if self_signed:
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-out", crt, "-days", "3650", "-subj", f"/CN={name}",
                     "-addext", "subjectAltName=" + ",".join(sans), cwd=self.dir)
        else:
            _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-out", csr, "-subj", f"/CN={name}", cwd=self.dir)
            _openssl("x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", ext, cwd=self.dir)
        return os.path.join(self.dir, crt), os.path.join(self.dir, key)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    c = Certs(tmp_path_factory.mktemp("certs"))
    c.mx = c.issue("mx", ["DNS:mx.test", "IP:127.0.0.1"])
    c.other = c.issue("other", ["DNS:other.test"])
    c.untrusted = c.issue("untrusted", ["DNS:mx.test", "IP:127.0.0.1"], self_signed=True)
    return c
