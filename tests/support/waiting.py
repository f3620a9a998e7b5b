"""Waiting for something no event announces (a log line, a process state) with a deadline, never spinning."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float, what: str, every_s: float = 0.02) -> T:
    """`check()`'s first truthy value, asked again every `every_s` until `timeout`; else AssertionError."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        pause.wait(every_s)
