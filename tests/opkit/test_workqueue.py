"""Tests for opkit.workqueue: Queue, DelayingQueue and RateLimitingQueue semantics.

Blocking is made deterministic with FakeClock: every blocked get()/drain waits on the queue's
clock, so ``clock.wait_for_waiters(n)`` tells when n threads are parked.
"""

from __future__ import annotations

import queue as stdlib_queue
import threading
from collections.abc import Hashable

import pytest
from helpers import Bg

from opkit.clock import FakeClock
from opkit.workqueue import (
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Queue,
    RateLimitingQueue,
)

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def take(q: Queue[str]) -> str:
    item, shutdown = q.get()
    assert not shutdown
    assert item is not None
    return item


# -- Queue --------------------------------------------------------------------------------------


def test_fifo_order() -> None:
    q: Queue[str] = Queue()
    for x in ("a", "b", "c"):
        q.add(x)
    assert len(q) == 3
    assert q.len() == 3
    assert [take(q) for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


def test_dedup_while_queued() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    q.add("a")
    q.add("a")
    assert len(q) == 2
    assert take(q) == "a"
    assert take(q) == "b"
    assert len(q) == 0


def test_re_add_while_processing_is_deferred_until_done() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    assert take(q) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed out while still processing
    q.done("a")
    assert len(q) == 1  # re-queued exactly once
    assert take(q) == "a"
    q.done("a")
    assert len(q) == 0


def test_done_without_re_add_does_not_requeue() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    assert take(q) == "a"
    q.done("a")
    assert len(q) == 0


def test_done_of_unknown_item_is_ignored() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.done("a")  # queued but not processing: must not duplicate it
    q.done("zzz")
    assert len(q) == 1
    assert take(q) == "a"


def test_item_being_processed_is_not_given_to_a_second_worker(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    q.add("x")
    assert take(q) == "x"
    q.add("x")
    second = Bg(lambda: take(q))
    clock.wait_for_waiters(1)  # the second worker is parked although "x" is dirty
    assert len(q) == 0
    q.done("x")
    assert second.result() == "x"


def test_get_blocks_until_add(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    bg = Bg(lambda: take(q))
    clock.wait_for_waiters(1)
    q.add("a")
    assert bg.result() == "a"


def test_parallel_workers_never_process_the_same_item_twice() -> None:
    q: Queue[int] = Queue()
    in_flight: set[int] = set()
    processed: dict[int, int] = {}
    violations: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            assert item is not None
            with lock:
                if item in in_flight:
                    violations.append(item)
                in_flight.add(item)
                processed[item] = processed.get(item, 0) + 1
            q.add(item)  # re-add while processing: must be deferred, not handed out
            with lock:
                in_flight.discard(item)
            q.done(item)

    items = list(range(50))
    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for _ in range(3):
        for i in items:
            q.add(i)
    q.shut_down()
    for w in workers:
        w.join(10)
        assert not w.is_alive()
    assert violations == []
    assert set(processed) == set(items)


def test_len_does_not_count_items_being_processed() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    take(q)
    assert len(q) == 1


# -- shutdown -----------------------------------------------------------------------------------


def test_get_after_shutdown_on_empty_queue_returns_shutdown() -> None:
    q: Queue[str] = Queue()
    assert not q.shutting_down()
    q.shut_down()
    assert q.shutting_down()
    assert q.get() == (None, True)
    assert q.get() == (None, True)


def test_add_after_shutdown_is_ignored() -> None:
    q: Queue[str] = Queue()
    q.shut_down()
    q.add("a")
    assert len(q) == 0
    assert q.get() == (None, True)


def test_queued_items_are_still_handed_out_after_shutdown() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    q.shut_down()
    assert take(q) == "a"
    assert take(q) == "b"
    assert q.get() == (None, True)


def test_shutdown_wakes_all_blocked_getters(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    getters = [Bg(q.get) for _ in range(3)]
    clock.wait_for_waiters(3)
    q.shut_down()
    assert [g.result() for g in getters] == [(None, True)] * 3


def test_dirty_item_is_requeued_by_done_even_after_shutdown() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    take(q)
    q.add("a")
    q.shut_down()
    q.done("a")
    assert take(q) == "a"
    q.done("a")
    assert q.get() == (None, True)


def test_shutdown_with_drain_waits_for_processing_items(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    q.add("a")
    q.add("b")
    take(q)
    take(q)
    drain = Bg(q.shut_down_with_drain)
    clock.wait_for_waiters(1)
    assert q.shutting_down()
    q.add("c")  # ignored while shutting down
    q.done("a")
    assert drain.thread.is_alive()  # "b" is still being processed
    clock.wait_for_waiters(1)
    q.done("b")
    assert drain.result() is True
    assert q.get() == (None, True)


def test_shutdown_with_drain_returns_at_once_when_idle() -> None:
    q: Queue[str] = Queue()
    assert q.shut_down_with_drain() is True
    assert q.get() == (None, True)


def test_shutdown_with_drain_timeout(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    q.add("a")
    take(q)
    drain = Bg(lambda: q.shut_down_with_drain(timeout=30))
    clock.wait_for_waiters(1)
    clock.step(29)
    assert clock.num_waiters() == 1
    clock.step(1)
    assert drain.result() is False


def test_shutdown_forces_a_pending_drain_to_return(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    q.add("a")
    take(q)
    drain = Bg(q.shut_down_with_drain)
    clock.wait_for_waiters(1)
    q.shut_down()
    assert drain.result() is False
    q.done("a")


def test_drain_lets_workers_finish_queued_items(clock: FakeClock) -> None:
    q: Queue[str] = Queue(clock=clock)
    q.add("a")
    take(q)
    q.add("a")  # dirty: comes back at done
    drain = Bg(q.shut_down_with_drain)
    clock.wait_for_waiters(1)
    q.done("a")
    assert drain.result() is True
    assert take(q) == "a"
    q.done("a")
    assert q.get() == (None, True)


# -- DelayingQueue ------------------------------------------------------------------------------


def test_add_after_orders_by_ready_time(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("c", 3)
    q.add_after("a", 1)
    q.add_after("b", 2)
    assert len(q) == 0
    clock.step(1)
    assert len(q) == 1
    assert take(q) == "a"
    clock.step(1)
    assert take(q) == "b"
    clock.step(0.5)
    assert len(q) == 0
    clock.step(0.5)
    assert take(q) == "c"


def test_items_ready_together_keep_insertion_order(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    for x in ("x", "y", "z"):
        q.add_after(x, 2)
    clock.step(5)
    assert [take(q) for _ in range(3)] == ["x", "y", "z"]


def test_re_add_after_with_earlier_time_wins(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 2)
    clock.step(2)
    assert len(q) == 1
    assert take(q) == "a"
    q.done("a")
    clock.step(8)
    assert len(q) == 0  # the superseded 10 s entry does not fire again


def test_re_add_after_with_later_time_is_ignored(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("b", 2)
    q.add_after("b", 10)
    clock.step(2)
    assert take(q) == "b"


def test_add_after_zero_or_negative_adds_now(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 0)
    q.add_after("b", -5)
    assert len(q) == 2


def test_ready_delayed_item_is_deduplicated_with_queued_one(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add("a")
    q.add_after("a", 1)
    clock.step(1)
    assert len(q) == 1


def test_blocked_get_wakes_at_ready_time(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    bg = Bg(lambda: take(q))
    clock.wait_for_waiters(1)
    q.add_after("a", 5)
    clock.wait_for_waiters(1)
    clock.step(4)
    assert bg.thread.is_alive()
    clock.step(1)
    assert bg.result() == "a"


def test_several_blocked_getters_each_get_a_delayed_item(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    results: stdlib_queue.Queue[str] = stdlib_queue.Queue()
    getters = [Bg(lambda: results.put(take(q))) for _ in range(2)]
    clock.wait_for_waiters(2)
    q.add_after("late", 5)
    q.add_after("early", 3)
    clock.step(3)
    assert results.get(timeout=10) == "early"
    clock.step(2)
    assert results.get(timeout=10) == "late"
    for g in getters:
        g.result()


def test_shutdown_drops_waiting_items(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 5)
    q.shut_down()
    clock.step(5)
    assert len(q) == 0
    assert q.get() == (None, True)


def test_shutdown_keeps_items_whose_time_has_come(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("due", 1)
    q.add_after("later", 10)
    clock.step(1)
    q.shut_down()
    assert take(q) == "due"
    assert q.get() == (None, True)


def test_add_after_is_ignored_after_shutdown(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.shut_down()
    q.add_after("a", 0)
    q.add_after("b", 1)
    clock.step(1)
    assert q.get() == (None, True)


def test_delayed_re_add_while_processing_is_deferred(clock: FakeClock) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add("a")
    take(q)
    q.add_after("a", 1)
    clock.step(1)
    assert len(q) == 0
    q.done("a")
    assert take(q) == "a"


def test_real_clock_delayed_item_is_delivered() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("a", 0.001)  # a tiny real delay exercises RealClock.wait_until
    assert take(q) == "a"


def test_real_clock_workers_receive_every_delayed_item() -> None:
    q: DelayingQueue[int] = DelayingQueue()
    got: set[int] = set()
    lock = threading.Lock()
    all_seen = threading.Event()
    n = 200

    def worker() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            assert item is not None
            with lock:
                got.add(item)
                if len(got) == n:
                    all_seen.set()
            q.done(item)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for i in range(n):
        q.add_after(i, (i % 3) * 0.001)
    assert all_seen.wait(10), f"missing {set(range(n)) - got}"
    q.shut_down()
    for w in workers:
        w.join(10)
        assert not w.is_alive()


# -- RateLimitingQueue --------------------------------------------------------------------------


def test_rate_limited_adds_back_off_per_item(clock: FakeClock) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(
        ItemExponentialFailureRateLimiter(1.0, 100.0), clock=clock
    )
    q.add_rate_limited("a")
    assert len(q) == 0
    clock.step(1)
    assert take(q) == "a"
    q.add_rate_limited("a")
    q.done("a")
    clock.step(1.5)
    assert len(q) == 0
    clock.step(0.5)
    assert take(q) == "a"
    q.done("a")
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("a")
    clock.step(1)
    assert len(q) == 1


def test_rate_limiting_queue_uses_default_controller_limiter(clock: FakeClock) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    assert isinstance(q.rate_limiter, MaxOfRateLimiter)
    q.add_rate_limited("a")
    clock.step(0.004)
    assert len(q) == 0
    clock.step(0.001)
    assert len(q) == 1
    assert q.num_requeues("a") == 1


def test_custom_rate_limiter_protocol(clock: FakeClock) -> None:
    class Fixed:
        def __init__(self) -> None:
            self.forgotten: list[Hashable] = []

        def when(self, item: str) -> float:
            return 7.0

        def forget(self, item: str) -> None:
            self.forgotten.append(item)

        def num_requeues(self, item: str) -> int:
            return 42

    limiter = Fixed()
    q: RateLimitingQueue[str] = RateLimitingQueue(limiter, clock=clock)
    q.add_rate_limited("a")
    clock.step(7)
    assert take(q) == "a"
    q.forget("a")
    assert limiter.forgotten == ["a"]
    assert q.num_requeues("a") == 42
