"""pytest fixtures for tandem's scenario tests (the harness itself lives in harness/).

Fixtures (each factory cleans up what it made at teardown):
    tandem(config="", options=None, expect_panic=False, ready="banner") -> Tandem
        the daemon under test; at teardown it is stopped (SIGTERM, then SIGKILL) and the test
        fails if its paniclog is not empty, a sanitizer complained on stderr, or it crashed or
        hung at shutdown.  Tests using it are marked needs_tandem automatically; while the
        binary under test cannot serve, every needs_tandem test FAILS saying why (never a skip).
    nexthop(**script) -> NextHop          scripted next hop (default 127.0.0.2, free port)
    dns(zone=None, **failures) -> DnsServer
    certs                                 session-wide test CA and certificates (Certs)
    smtp_sink(**kw) -> SmtpSink           Postfix smtp-sink (skipped if not extracted)
    exim_peer(**kw) -> EximPeer           Exim peer (skipped if Exim is not installed)
    fake_tandem(...)                      like tandem, but runs harness/fake_tandem.py
"""
import os

import pytest

from harness import (Certs, DnsServer, EximPeer, NextHop, SmtpSink, Tandem, have_exim,
                     have_postfix_tools, tandem_unusable_reason)

FAKE_TANDEM = os.path.join(os.path.dirname(__file__), "harness", "fake_tandem.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_tandem: needs a build/tandem that can serve "
                                       "(fails otherwise)")


def pytest_collection_modifyitems(config, items):
    """Mark tests using the `tandem` fixture needs_tandem."""
    for item in items:
        if "tandem" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_tandem)


def pytest_runtest_setup(item):
    """A needs_tandem test fails at once when the binary under test cannot serve: a daemon
    that misbehaves (usage text and status 64, a crash, a hang) must never pass as a skip."""
    if item.get_closest_marker("needs_tandem"):
        reason = tandem_unusable_reason()             # probed once, then cached
        if reason:
            pytest.fail(f"the daemon under test is broken: {reason}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    """Say it once more at the end, where a reader looks first."""
    from harness.daemon import _unusable
    for reason in filter(None, _unusable.values()):
        terminalreporter.section("the daemon under test is broken", red=True, bold=True)
        terminalreporter.line(f"{reason}: every test that needs it FAILED", red=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach each daemon's stderr and log tails to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, daemon in enumerate(getattr(item, "_tandems", [])):
            report.sections.append((f"tandem #{i} (port {daemon.port})", daemon.describe("")))


class _DaemonFactory:
    """Starts Tandem instances in subdirectories of the test's tmp_path; stops them all."""

    def __init__(self, node, tmp_path, binary=None):
        self.node, self.tmp_path, self.binary = node, tmp_path, binary
        self.node._tandems = self.instances = []

    def __call__(self, config="", **kwargs):
        kwargs.setdefault("binary", self.binary)
        directory = self.tmp_path / f"tandem{len(self.instances)}"
        directory.mkdir()
        daemon = Tandem(directory, config, **kwargs)
        self.instances.append(daemon)
        return daemon

    def teardown(self):
        errors = []
        for daemon in self.instances:
            daemon.stop()
            try:
                daemon.check_teardown()
            except AssertionError as exc:
                errors.append(str(exc))
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def tandem(request, tmp_path):
    """Factory: tandem(config_text, options=None, expect_panic=False) -> a running Tandem."""
    factory = _DaemonFactory(request.node, tmp_path)
    yield factory
    factory.teardown()


@pytest.fixture
def fake_tandem(request, tmp_path):
    """The tandem factory running harness/fake_tandem.py (harness self-tests only)."""
    factory = _DaemonFactory(request.node, tmp_path, binary=FAKE_TANDEM)
    yield factory
    factory.teardown()


def _factory(cls, cleanup="stop"):
    made = []

    def make(*args, **kwargs):
        obj = cls(*args, **kwargs)
        made.append(obj)
        return obj
    return make, lambda: [getattr(o, cleanup)() for o in reversed(made)]


@pytest.fixture
def nexthop():
    """Factory: nexthop(**script) -> a running NextHop (see harness/nexthop.py)."""
    make, done = _factory(NextHop)
    yield make
    done()


@pytest.fixture
def dns():
    """Factory: dns(zone, servfail=..., timeout=..., nxdomain=...) -> a running DnsServer."""
    make, done = _factory(DnsServer)
    yield make
    done()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """Test CA, server/next-hop/untrusted certificates (see harness/certs.py)."""
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def smtp_sink():
    """Factory: smtp_sink(host=..., port=..., args=[...]) -> a running Postfix smtp-sink."""
    if not have_postfix_tools():
        pytest.skip("Postfix smtp-sink/smtp-source not extracted (scripts/install-deps --test)")
    make, done = _factory(SmtpSink)
    yield make
    done()


@pytest.fixture
def exim_peer():
    """Factory: exim_peer(domains=..., relay_to=..., tls=...) -> a running EximPeer."""
    if not have_exim():
        pytest.skip("Exim is not installed")
    make, done = _factory(EximPeer)
    yield make
    done()
