"""Bounded polling: the one way the harness waits for something to happen.

    from harness.wait import wait_until
    wait_until(lambda: len(hop.messages) == 3, timeout=5, what="3 messages at the next hop")

Every wait has a deadline and a failure message that says what was awaited; the optional
``detail`` callable adds context (a log tail, a transcript) to the failure.
"""
import time

POLL_INTERVAL = 0.02


class WaitTimeout(AssertionError):
    """A bounded wait ran out; an AssertionError so pytest shows it as a test failure."""


def wait_until(predicate, timeout=10.0, what="condition", detail=None, interval=POLL_INTERVAL):
    """Poll ``predicate`` until it returns a truthy value, which is returned.

    Raises WaitTimeout after ``timeout`` seconds naming ``what``; ``detail()`` (if given)
    is appended to the message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {what}"
            if detail is not None:
                msg += "\n" + str(detail())
            raise WaitTimeout(msg)
        time.sleep(interval)
