"""Waiting in tests: on a condition with a deadline, never a fixed sleep and then a count."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import gevent

#: How often the conditions are checked (seconds).
POLL_INTERVAL = 0.01


def _describe(predicate: Callable[[], Any], message: str | None) -> str:
    """The message, else the predicate's source line (a lambda shows what was awaited)."""
    if message:
        return message
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, message: str | None = None) -> None:
    """Wait until `predicate()` is true; fail the test if it is not within `timeout` seconds.

    Other greenlets run while waiting (the check yields every `POLL_INTERVAL`).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout:g} s: {_describe(predicate, message)}")
        gevent.sleep(POLL_INTERVAL)


def assert_stays(predicate: Callable[[], Any], seconds: float, message: str | None = None) -> None:
    """Check that `predicate()` stays true for a whole observation window of `seconds`.

    For asserting that something does NOT happen (no frames while paused), where a fixed
    window cannot be avoided: first wait for a positive condition that proves the system
    is in the state being checked, then observe.
    """
    deadline = time.monotonic() + seconds
    while True:
        if not predicate():
            raise AssertionError(f"condition stopped holding within {seconds:g} s: {_describe(predicate, message)}")
        if time.monotonic() >= deadline:
            return
        gevent.sleep(POLL_INTERVAL)
