"""Clocks: every time-based part of opkit takes one so tests can replace real waiting.

A :class:`Clock` gives wall time (``now``), a monotonic reading for measuring intervals and
deadlines (``monotonic``), ``sleep`` and two condition-variable waits. The waits are what let a
delaying queue or a leader elector block "until time T or until notified" on either clock: with
:class:`RealClock` they are plain :meth:`threading.Condition.wait` calls, with :class:`FakeClock`
they block until another thread notifies the condition or a test calls :meth:`FakeClock.step`
past the deadline.

Deadlines are absolute :meth:`Clock.monotonic` readings. A caller that checks the time under its
own lock and then waits until an absolute deadline cannot miss a fake step that happens in
between, which a relative timeout computed from a stale reading could.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["REAL_CLOCK", "Clock", "FakeClock", "RealClock"]


@runtime_checkable
class Clock(Protocol):
    """Source of time and of timed waits."""

    def now(self) -> datetime:
        """Current wall time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` of this clock's time."""
        ...

    def wait(self, cond: threading.Condition, timeout: float | None) -> bool:
        """Like ``cond.wait(timeout)`` measured on this clock; the caller holds ``cond``.

        Returns False when the timeout elapsed, True when woken earlier (possibly spuriously:
        callers re-check their predicate, as with any condition variable).
        """
        ...

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> bool:
        """Like :meth:`wait` with an absolute :meth:`monotonic` deadline (None = no deadline)."""
        ...


class RealClock:
    """The process clocks: ``datetime.now(UTC)``, ``time.monotonic`` and real waits."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, cond: threading.Condition, timeout: float | None) -> bool:
        if timeout is None:
            return cond.wait()
        if timeout <= 0:
            return False
        return cond.wait(timeout)

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> bool:
        if deadline is None:
            return cond.wait()
        return self.wait(cond, deadline - time.monotonic())

    def __repr__(self) -> str:
        return "RealClock()"


REAL_CLOCK = RealClock()


class _Waiter:
    __slots__ = ("cond", "deadline")

    def __init__(self, cond: threading.Condition, deadline: float) -> None:
        self.cond = cond
        self.deadline = deadline


_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when a test calls :meth:`step`.

    Threads blocked in :meth:`sleep`, :meth:`wait` or :meth:`wait_until` are woken when a step
    reaches their deadline. :meth:`wait_for_waiters` lets a test wait (really, briefly) until the
    code under test is parked on the clock, so stepping is deterministic.

    ``auto_advance=True`` makes :meth:`sleep` advance the clock instead of blocking, for
    single-threaded code under test (retry loops) where no other thread could step.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        monotonic_start: float = 1000.0,
        auto_advance: bool = False,
    ) -> None:
        if start is None:
            start = _DEFAULT_START
        if start.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._mono_start = monotonic_start
        self._elapsed = 0.0
        self._auto_advance = auto_advance
        self._lock = threading.Lock()
        self._waiters_changed = threading.Condition(self._lock)
        self._waiters: list[_Waiter] = []

    # -- Clock protocol -------------------------------------------------------------------------

    def now(self) -> datetime:
        with self._lock:
            elapsed = self._elapsed
        return self._start + timedelta(seconds=elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._mono_start + self._elapsed

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._auto_advance:
            self.step(seconds)
            return
        cond = threading.Condition(threading.Lock())
        with cond:
            deadline = self.monotonic() + seconds
            while self.wait_until(cond, deadline):
                pass

    def wait(self, cond: threading.Condition, timeout: float | None) -> bool:
        if timeout is None:
            return self.wait_until(cond, None)
        return self.wait_until(cond, self.monotonic() + timeout)

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> bool:
        waiter = _Waiter(cond, math.inf if deadline is None else deadline)
        with self._lock:
            if self._mono_start + self._elapsed >= waiter.deadline:
                return False
            self._waiters.append(waiter)
            self._waiters_changed.notify_all()
        try:
            # step() notifies only after taking ``cond``'s lock, which the caller holds until
            # cond.wait() releases it, so a step racing with this registration is never lost.
            cond.wait()
        finally:
            with self._lock:
                self._waiters.remove(waiter)
                self._waiters_changed.notify_all()
                expired = self._mono_start + self._elapsed >= waiter.deadline
        return not expired

    # -- test controls --------------------------------------------------------------------------

    def step(self, seconds: float) -> None:
        """Advance both clocks by ``seconds`` and wake every waiter whose deadline passed."""
        if seconds < 0:
            raise ValueError("FakeClock cannot step backwards")
        with self._lock:
            self._elapsed += seconds
            now = self._mono_start + self._elapsed
            conds: dict[int, threading.Condition] = {}
            for w in self._waiters:
                if w.deadline <= now:
                    conds[id(w.cond)] = w.cond
        for cond in conds.values():
            with cond:
                cond.notify_all()

    def num_waiters(self) -> int:
        """Threads blocked on this clock whose deadline has not been reached yet."""
        with self._lock:
            return self._count_blocked()

    def has_waiters(self) -> bool:
        return self.num_waiters() > 0

    def wait_for_waiters(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block (in real time) until at least ``count`` threads are parked on this clock.

        Waiters whose deadline a step already reached do not count: they are about to wake.
        ``timeout`` is a real-time safety net; hitting it raises TimeoutError.
        """
        with self._waiters_changed:
            ok = self._waiters_changed.wait_for(lambda: self._count_blocked() >= count, timeout)
            if not ok:
                raise TimeoutError(
                    f"expected {count} waiter(s) on FakeClock, have {self._count_blocked()}"
                )

    def _count_blocked(self) -> int:
        now = self._mono_start + self._elapsed
        return sum(1 for w in self._waiters if w.deadline > now)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()})"
