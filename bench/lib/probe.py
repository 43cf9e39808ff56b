"""What the tandem under test can do yet: cutthrough, delivery, STARTTLS.

Each probe starts a sink and a tandem, sends one message (or reads the EHLO reply) and looks
at what happened, so bench/run reports "n/a" for what has not landed instead of numbers that
mean something else.

    probe_cutthrough(ctx) -> (bool, why)   the sink got the message during the session and
                                            the main log has its ">>" line
    probe_delivery(ctx)   -> (bool, why)   store-and-forward: the sink got the message
                                            within 10 s of the 250
    probe_starttls(ctx, cert, key) -> (bool, why)   EHLO advertises STARTTLS
    make_cert(dir) -> (cert, key)           a self-signed certificate (openssl req)
"""
import os
import subprocess
import time

from servers import Sink, Tandem


def _one_message(ctx, tandem):
    p = subprocess.run([ctx.latency_bin, "-s", "1", "-m", "1", "-w", "30",
                        f"127.0.0.1:{tandem.port}"], capture_output=True, text=True, timeout=60)
    return p.returncode == 0, (p.stderr.strip().splitlines() or [""])[0]


def _with_tandem(ctx, name, cutthrough, fn, tls=None):
    workdir = os.path.join(ctx.workdir, f"probe-{name}")
    sink = Sink(os.path.join(workdir, "sink"))
    try:
        tandem = Tandem(os.path.join(workdir, "tandem"), ctx.tandem_bin, sink.port,
                        cutthrough=cutthrough, tls=tls)
        try:
            return fn(sink, tandem)
        finally:
            tandem.stop()
    finally:
        sink.stop()


def probe_cutthrough(ctx):
    def check(sink, tandem):
        ok, err = _one_message(ctx, tandem)
        if not ok:
            return False, f"the message was refused: {err}"
        got = sink.count()          # read at once: a cut-through message is already there
        cut = tandem.log_count(">>")
        if got and cut:
            return True, "the sink had the message at the 250, with a >> log line"
        return False, (f"the sink had {got} message(s) at the 250 and the main log "
                       f"{cut} >> line(s)")
    return _with_tandem(ctx, "cutthrough", True, check)


def probe_delivery(ctx, timeout=10):
    def check(sink, tandem):
        ok, err = _one_message(ctx, tandem)
        if not ok:
            return False, f"the message was refused: {err}"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sink.count():
                return True, "delivered to the sink"
            time.sleep(0.05)
        return False, (f"nothing reached the sink within {timeout}s of the 250 "
                       f"({tandem.spool_count()} file(s) in the spool)")
    return _with_tandem(ctx, "delivery", False, check)


def probe_starttls(ctx, cert, key):
    def check(_sink, tandem):
        words = tandem.ehlo_keywords()
        if "STARTTLS" in words:
            return True, "EHLO advertises STARTTLS"
        return False, "EHLO does not advertise STARTTLS: " + " ".join(words)
    try:
        return _with_tandem(ctx, "starttls", False, check, tls=(cert, key))
    except RuntimeError as exc:
        return False, f"tandem did not start with a certificate: {exc}"


def make_cert(directory):
    """A throwaway self-signed RSA-2048 certificate for tandem.bench."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=tandem.bench", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key
