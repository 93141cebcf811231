"""Tests for opkit.clock: RealClock basics and deterministic FakeClock waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from helpers import Bg

from opkit.clock import REAL_CLOCK, Clock, FakeClock, RealClock

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


# -- RealClock ----------------------------------------------------------------------------------


def test_real_clock_now_is_aware_utc() -> None:
    now = REAL_CLOCK.now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_real_clock_monotonic_never_goes_backwards() -> None:
    a = REAL_CLOCK.monotonic()
    b = REAL_CLOCK.monotonic()
    assert b >= a


def test_real_clock_wait_with_expired_timeout_returns_false_immediately() -> None:
    cond = threading.Condition()
    clock = RealClock()
    with cond:
        assert clock.wait(cond, 0) is False
        assert clock.wait(cond, -1) is False
        assert clock.wait_until(cond, clock.monotonic() - 1) is False
    clock.sleep(0)
    clock.sleep(-1)


def test_real_clock_wait_returns_true_when_notified() -> None:
    cond = threading.Condition()
    flag: list[bool] = []

    def waiter() -> bool:
        with cond:
            flag.append(True)
            cond.notify_all()
            return REAL_CLOCK.wait(cond, 30.0)

    with cond:
        bg = Bg(waiter)
        cond.wait_for(lambda: bool(flag), 10)
        cond.notify_all()  # waiter is inside wait(): we hold the lock it released
    assert bg.result() is True


def test_clocks_satisfy_protocol() -> None:
    assert isinstance(REAL_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)


# -- FakeClock ----------------------------------------------------------------------------------


def test_fake_clock_start_and_step() -> None:
    start = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    clock = FakeClock(start, monotonic_start=50.0)
    assert clock.now() == start
    assert clock.monotonic() == 50.0
    clock.step(1.5)
    assert clock.now() == start + timedelta(seconds=1.5)
    assert clock.monotonic() == 51.5
    clock.step(0)
    assert clock.monotonic() == 51.5


def test_fake_clock_rejects_naive_start_and_backwards_step() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().step(-1)


def test_fake_clock_now_is_converted_to_utc() -> None:
    from datetime import timezone

    start = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    now = FakeClock(start).now()
    assert now.utcoffset() == timedelta(0)
    assert now.hour == 10


def test_sleep_blocks_until_step_reaches_deadline() -> None:
    clock = FakeClock()
    bg = Bg(lambda: clock.sleep(5))
    clock.wait_for_waiters(1)
    assert clock.has_waiters()
    clock.step(4.999)
    assert clock.num_waiters() == 1  # still blocked: deadline not reached
    assert bg.thread.is_alive()
    clock.step(0.001)
    bg.result()
    assert not clock.has_waiters()


def test_step_wakes_only_due_sleepers() -> None:
    clock = FakeClock()
    woke: list[float] = []
    lock = threading.Lock()

    def sleeper(d: float) -> Callable[[], None]:
        def run() -> None:
            clock.sleep(d)
            with lock:
                woke.append(d)

        return run

    threads = [Bg(sleeper(d)) for d in (1.0, 2.0, 3.0)]
    clock.wait_for_waiters(3)
    clock.step(1)
    threads[0].result()
    assert woke == [1.0]
    assert clock.num_waiters() == 2
    clock.step(2)
    threads[1].result()
    threads[2].result()
    assert sorted(woke) == [1.0, 2.0, 3.0]


def test_sleep_zero_or_negative_returns_immediately() -> None:
    clock = FakeClock()
    clock.sleep(0)
    clock.sleep(-3)
    assert clock.monotonic() == 1000.0


def test_auto_advance_sleep_moves_time_instead_of_blocking() -> None:
    clock = FakeClock(auto_advance=True)
    t0 = clock.now()
    clock.sleep(2.5)
    assert clock.now() - t0 == timedelta(seconds=2.5)


def test_wait_returns_true_when_notified_before_deadline() -> None:
    clock = FakeClock()
    cond = threading.Condition()

    def waiter() -> bool:
        with cond:
            return clock.wait(cond, 10)

    bg = Bg(waiter)
    clock.wait_for_waiters(1)
    with cond:
        cond.notify_all()
    assert bg.result() is True
    assert clock.monotonic() == 1000.0


def test_wait_returns_false_when_step_reaches_deadline() -> None:
    clock = FakeClock()
    cond = threading.Condition()

    def waiter() -> bool:
        with cond:
            return clock.wait_until(cond, clock.monotonic() + 3)

    bg = Bg(waiter)
    clock.wait_for_waiters(1)
    clock.step(3)
    assert bg.result() is False


def test_wait_without_deadline_only_wakes_on_notify() -> None:
    clock = FakeClock()
    cond = threading.Condition()

    def waiter() -> bool:
        with cond:
            return clock.wait(cond, None)

    bg = Bg(waiter)
    clock.wait_for_waiters(1)
    clock.step(10_000)
    assert clock.num_waiters() == 1
    with cond:
        cond.notify_all()
    assert bg.result() is True


def test_wait_until_past_deadline_does_not_block() -> None:
    clock = FakeClock()
    cond = threading.Condition()
    with cond:
        assert clock.wait_until(cond, clock.monotonic()) is False
        assert clock.wait(cond, 0) is False
    assert not clock.has_waiters()


def test_wait_for_waiters_times_out() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError, match="expected 1 waiter"):
        clock.wait_for_waiters(1, timeout=0.01)


def test_wait_requires_holding_the_condition() -> None:
    clock = FakeClock()
    with pytest.raises(RuntimeError):
        clock.wait(threading.Condition(), 1)
    assert not clock.has_waiters()
