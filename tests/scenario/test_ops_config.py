"""The scale-out and operations options as check-config sees them (issue 15)."""
import subprocess

from harness.daemon import tandem_binary


def check(tmp_path, text):
    conf = tmp_path / "t.conf"
    conf.write_text(text)
    r = subprocess.run([tandem_binary(), "check-config", "-c", str(conf)], capture_output=True,
                       text=True)
    return r.returncode, r.stdout + r.stderr


def test_valid_options(tmp_path):
    rc, out = check(tmp_path, "hosts_proxy = 10.0.0.0/8 : 192.0.2.7 : ::1\n"
                              "metrics_listen = [::1]:9125\nhints_backend = lmdb\n"
                              "transaction_log = /var/log/tandem/transactions.json\n")
    assert rc == 0, out


def test_errors_name_the_option(tmp_path):
    rc, out = check(tmp_path, "metrics_listen = localhost:9125\n"
                              "hints_backend = redis://127.0.0.1:6379/0\n"
                              "hosts_proxy = 10.0.0.0/99\n"
                              "transaction_log =\n")
    assert rc == 1
    assert "t.conf:1: metrics_listen:" in out and "not a numeric IP address" in out
    assert "t.conf:2: hints_backend: the redis backend is not available in this version" in out
    assert "t.conf:3: hosts_proxy:" in out
    assert "t.conf:4: transaction_log: empty value" in out
    rc, out = check(tmp_path, "metrics_listen = 127.0.0.1:9125/tls\nhints_backend = memcache\n")
    assert rc == 1 and "/tls is for SMTP listeners" in out and "expected lmdb or redis://" in out
