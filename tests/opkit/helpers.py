"""Helpers shared by the opkit test modules (importable as ``helpers``: see pytest pythonpath).

Fixtures shared across modules live in ``tests/opkit/testing/_server_fixtures.py``, which
``tests/conftest.py`` registers as a plugin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")


def wait_for(
    pred: Callable[[], object],
    what: str = "condition",
    timeout: float = 20.0,
    interval: float = 0.005,
) -> None:
    """Wait (really) until ``pred()`` is truthy; the timeout is only a safety net for hangs."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class Bg(Generic[R]):
    """Run ``fn`` in a thread; ``result()`` joins it (real-time safety net only)."""

    def __init__(self, fn: Callable[[], R]) -> None:
        self._value: list[R] = []
        self._error: list[BaseException] = []

        def run() -> None:
            try:
                self._value.append(fn())
            except BaseException as e:
                self._error.append(e)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 10.0) -> R:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call did not finish"
        if self._error:
            raise self._error[0]
        return self._value[0]
