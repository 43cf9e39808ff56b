"""skip_policy - pytest plugin for scripts/test: a skipped test fails the run unless its reason
is on the allow-list below.

A skip because a tool is missing, a binary was not built or the product misbehaved would turn
a test into a pass nobody asked for; only what the machine itself cannot offer (and neither
tandem nor scripts/install-deps can change) may skip.  Load it with

    PYTHONPATH=tests python3 -m pytest -p skip_policy -rs ...

It prints every skip with its reason and whether it is allowed, and sets the exit status to 1
when any skip is not.  Expected failures (xfail) count as skips too: the suite has none.
"""
import re

# (reason pattern, why it may skip).  Keep this short; each entry is documented in README.md.
ALLOWED = [
    (r"^no IPv6 loopback here$",
     "the machine has no ::1 (e.g. a container without IPv6); the IPv4 tests still run"),
]


def _reason(report):
    """The skip reason of a report ("Skipped: " prefix removed)."""
    if getattr(report, "wasxfail", None) is not None:
        return f"xfail: {report.wasxfail}"
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return re.sub(r"^Skipped: ", "", text)


def allowed(reason):
    """The allow-list entry's explanation if ``reason`` may skip, else None."""
    for pattern, why in ALLOWED:
        if re.search(pattern, reason):
            return why
    return None


class SkipPolicy:
    def __init__(self):
        self.skips = []              # (nodeid, reason, allowed-why or None)

    def _note(self, report):
        if report.skipped:
            reason = _reason(report)
            self.skips.append((report.nodeid, reason, allowed(reason)))

    def pytest_runtest_logreport(self, report):
        self._note(report)

    def pytest_collectreport(self, report):
        self._note(report)

    def unexpected(self):
        return [s for s in self.skips if s[2] is None]

    def pytest_sessionfinish(self, session):
        if self.unexpected() and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        bad = self.unexpected()
        tr.section("skip policy (tests/skip_policy.py)")
        tr.line(f"{len(self.skips)} skipped: {len(self.skips) - len(bad)} allowed, "
                f"{len(bad)} NOT allowed")
        for nodeid, reason, why in self.skips:
            verdict = f"allowed ({why})" if why else "NOT ALLOWED"
            tr.line(f"  {verdict}: {nodeid}: {reason}")
        if bad:
            tr.line("skip policy: FAILED - a skip that is not on the allow-list fails the run",
                    red=True, bold=True)


def pytest_configure(config):
    config.pluginmanager.register(SkipPolicy(), "skip_policy_instance")
