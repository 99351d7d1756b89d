"""Helpers every kind of test shares (unit, integration, system): import them from here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, *, limit: float = 30.0, every: float = 0.05) -> T:
    """
    Look at ``condition()`` every ``every`` seconds until it holds, and return what it returned.

    The test goes on at the event itself (the condition holding), never after a guessed sleep.
    ``limit`` only stops a test whose event never comes: it then fails, naming ``what`` it waited for.
    ``condition`` may assert, to fail at once on what rules the event out (a child process that died).
    """
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {limit:g} s waiting for {what}")
        time.sleep(every)
