"""`wait_until`: the one poll-until-deadline loop of the tests."""

import time


def wait_until(predicate, *, timeout: float, interval: float = 0.5,
               what: str):
    """Calls `predicate()` every `interval` seconds until it returns a
    true value, and returns that value.

    The predicate may assert (a process that ended too early); what it
    raises ends the wait.

    Raises:
        AssertionError: `timeout` seconds passed first; the message says
            what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
