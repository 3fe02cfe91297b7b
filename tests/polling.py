"""Waiting for a condition, never for a fixed time: poll it until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], seconds: float = 20.0, what: str = "the condition", every: float = 0.05) -> T:
    """Return `check()`'s first true value; TimeoutError naming `what` if none came within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {seconds} s")
        time.sleep(every)
