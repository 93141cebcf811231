"""Work queues with client-go semantics: Queue, DelayingQueue, RateLimitingQueue.

Guarantees (the reason controllers can run several workers safely):

* an item is handed to at most one worker at a time; adding it while it is being processed
  marks it dirty and it is queued again when the worker calls :meth:`Queue.done`;
* an item waiting in the queue is stored once, however often it is added;
* :meth:`Queue.get` blocks until an item is available or the queue shuts down; items queued
  before shutdown are still handed out, then ``get`` returns ``(None, True)``.

Delayed items are kept in a heap and moved into the queue lazily, by whichever thread next
touches the queue (a worker blocked in ``get`` waits on the clock until the earliest ready
time). There is no background thread, so nothing outlives the queue.

A queue created with ``name=...`` records the ``workqueue_*`` metrics on
:data:`opkit.metrics.REGISTRY`; an unnamed queue records none.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Hashable
from typing import Any, Generic, Literal, TypeVar

from . import metrics as _m
from ._ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
    default_item_based_rate_limiter,
)
from .clock import REAL_CLOCK, Clock, RealClock

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
    "default_item_based_rate_limiter",
    "update_unfinished_work",
]

T = TypeVar("T", bound=Hashable)

GetResult = tuple[T, Literal[False]] | tuple[None, Literal[True]]

_named_queues: weakref.WeakSet[Queue[Any]] = weakref.WeakSet()
_named_queues_lock = threading.Lock()


def update_unfinished_work() -> None:
    """Refresh the unfinished-work gauges of every live named queue (call periodically)."""
    with _named_queues_lock:
        queues = list(_named_queues)
    for q in queues:
        q.update_unfinished_work()


class _QueueMetrics(_m._WorkqueueCounts):
    """client-go's defaultQueueMetrics for one named queue; called with the queue lock held."""

    __slots__ = ("_add_times", "_name", "_now", "_start_times")

    def __init__(self, name: str, clock: Clock, queue: object) -> None:
        super().__init__()
        self._name = name
        self._now = time.monotonic if type(clock) is RealClock else clock.monotonic
        self._add_times: dict[Hashable, float] = {}
        self._start_times: dict[Hashable, float] = {}
        _m._track_workqueue(name, queue, self)

    def add(self, item: Hashable) -> None:
        self.adds += 1
        self.depth += 1
        add_times = self._add_times
        if item not in add_times:
            add_times[item] = self._now()

    def get(self, item: Hashable) -> None:
        now = self._now()
        self.depth -= 1
        self._start_times[item] = now
        added = self._add_times.pop(item, None)
        if added is not None:
            waited = now - added
            waited = waited if waited > 0.0 else 0.0  # max(0.0, waited) without the call
            self.queue_buckets[bisect_left(_BUCKETS, waited)] += 1
            self.queue_sum += waited

    def done(self, item: Hashable) -> None:
        started = self._start_times.pop(item, None)
        if started is not None:
            took = self._now() - started
            took = took if took > 0.0 else 0.0
            self.work_buckets[bisect_left(_BUCKETS, took)] += 1
            self.work_sum += took

    def retry(self) -> None:
        self.retries += 1

    def update_unfinished_work(self) -> None:
        now = self._now()
        ages = [max(0.0, now - t) for t in self._start_times.values()]
        _m._set_workqueue_unfinished_work(self._name, sum(ages), max(ages, default=0.0))


_BUCKETS = _m.WORKQUEUE_DURATION_BUCKETS
"""Upper bounds; ``bisect_left`` gives the first bucket an observation fits (le semantics)."""


class Queue(Generic[T]):
    """FIFO work queue with dirty/processing sets (client-go ``workqueue.Type``)."""

    def __init__(self, *, name: str | None = None, clock: Clock | None = None) -> None:
        self.name = name
        self._clock = clock or REAL_CLOCK
        # Public methods take the plain lock; the conditions share it. Waking costs a lot more
        # than the queue operation itself, so notifications go out only to parked threads
        # (``_getters`` counts workers blocked in get).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # workers waiting for an item
        self._drained = threading.Condition(self._lock)  # shut_down_with_drain waiting for done()
        self._getters = 0
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._drain = False
        self._metrics = _QueueMetrics(name, self._clock, self) if name else None
        if name:
            with _named_queues_lock:
                _named_queues.add(self)

    # -- public API -----------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing (no-op if already waiting or shutting down)."""
        with self._lock:
            self._add_locked(item)

    def get(self) -> GetResult[T]:
        """Block until an item is available: ``(item, False)``, or ``(None, True)`` on shutdown.

        The caller must call :meth:`done` with the item when it has finished with it.
        """
        with self._lock:
            while True:
                self._promote_locked()
                if self._queue:
                    break
                if self._shutting_down:
                    return None, True
                self._getters += 1
                try:
                    self._clock.wait_until(self._cond, self._next_ready_locked())
                finally:
                    self._getters -= 1
            item = self._queue.popleft()
            if self._metrics is not None:
                self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            if self._getters and (self._queue or self._has_waiting_locked()):
                # Other workers may be parked with a stale (later) deadline; let one re-check.
                self._cond.notify()
            return item, False

    def done(self, item: T) -> None:
        """Finish processing ``item``; if it was re-added meanwhile it is queued again now."""
        with self._lock:
            processing = self._processing
            if item not in processing:
                return
            if self._metrics is not None:
                self._metrics.done(item)
            processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                if self._getters:
                    self._cond.notify()
            if self._drain and not processing:
                self._drained.notify_all()

    def len(self) -> int:
        """Number of items waiting to be handed out (not counting those being processed)."""
        with self._lock:
            self._promote_locked()
            return len(self._queue)

    def __len__(self) -> int:
        return self.len()

    def shut_down(self) -> None:
        """Stop accepting adds; workers drain what is queued, then ``get`` reports shutdown.

        Also makes a concurrent :meth:`shut_down_with_drain` return without waiting further.
        """
        with self._lock:
            self._shut_down_locked(drain=False)
            self._drained.notify_all()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Like :meth:`shut_down`, then wait until every item being processed is done.

        ``timeout`` (seconds on the queue's clock, None = forever) bounds the wait. Returns True
        when nothing is being processed any more.
        """
        with self._lock:
            self._shut_down_locked(drain=True)
            deadline = None if timeout is None else self._clock.monotonic() + timeout
            while self._processing and self._drain:
                if not self._clock.wait_until(self._drained, deadline):
                    break  # timed out
            return not self._processing

    def shutting_down(self) -> bool:
        with self._lock:
            return self._shutting_down

    def update_unfinished_work(self) -> None:
        """Refresh ``workqueue_unfinished_work_seconds`` and the longest-running gauge."""
        with self._lock:
            self._promote_locked()
            if self._metrics is not None:
                self._metrics.update_unfinished_work()

    # -- internals (called with the lock held) --------------------------------------------------

    def _add_locked(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        if self._metrics is not None:
            self._metrics.add(item)
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        if self._getters:
            self._cond.notify()

    def _shut_down_locked(self, *, drain: bool) -> None:
        self._promote_locked()
        self._drop_waiting_locked()
        self._shutting_down = True
        self._drain = drain
        self._cond.notify_all()

    def _promote_locked(self) -> None:
        """Move delayed items whose time has come into the queue (DelayingQueue)."""

    def _next_ready_locked(self) -> float | None:
        """Monotonic time at which a waiting item becomes ready, None if none is waiting."""
        return None

    def _has_waiting_locked(self) -> bool:
        return False

    def _drop_waiting_locked(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class DelayingQueue(Queue[T]):
    """A :class:`Queue` that can also add an item after a delay (``AddAfter``)."""

    def __init__(self, *, name: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(name=name, clock=clock)
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, tuple[float, int]] = {}
        self._seq = itertools.count()

    def add_after(self, item: T, seconds: float) -> None:
        """Add ``item`` once ``seconds`` have passed; ``seconds <= 0`` adds it now.

        If ``item`` is already waiting, the earlier ready time wins: a later call never pushes
        an item further out. Waiting items are dropped at shutdown.
        """
        with self._lock:
            if self._shutting_down:
                return
            if self._metrics is not None:
                self._metrics.retry()
            if seconds <= 0:
                self._add_locked(item)
                return
            ready_at = self._clock.monotonic() + seconds
            current = self._waiting.get(item)
            if current is not None and current[0] <= ready_at:
                return
            seq = next(self._seq)
            self._waiting[item] = (ready_at, seq)
            heapq.heappush(self._heap, (ready_at, seq, item))
            if self._getters:
                self._cond.notify()  # a parked worker may need an earlier deadline

    def _promote_locked(self) -> None:
        if not self._heap:
            return
        now = self._clock.monotonic()
        promoted = 0
        while self._heap and self._heap[0][0] <= now:
            ready_at, seq, item = heapq.heappop(self._heap)
            if self._waiting.get(item) != (ready_at, seq):
                continue  # superseded by an earlier ready time
            del self._waiting[item]
            self._add_locked(item)
            promoted += 1
        if promoted and self._getters:
            self._cond.notify(promoted)

    def _next_ready_locked(self) -> float | None:
        while self._heap:
            ready_at, seq, item = self._heap[0]
            if self._waiting.get(item) == (ready_at, seq):
                return ready_at
            heapq.heappop(self._heap)
        return None

    def _has_waiting_locked(self) -> bool:
        return bool(self._waiting)

    def _drop_waiting_locked(self) -> None:
        self._heap.clear()
        self._waiting.clear()


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` whose retries are spaced by a :class:`RateLimiter`.

    Remember to call :meth:`forget` when an item succeeds, otherwise its failure history (and
    so its next delay) is kept forever.
    """

    def __init__(
        self,
        rate_limiter: RateLimiter[T] | None = None,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock)
        self.rate_limiter: RateLimiter[T] = (
            rate_limiter
            if rate_limiter is not None
            else default_controller_rate_limiter(clock=self._clock)
        )

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter assigns to it."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear ``item``'s failure history; :meth:`done` must still be called."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
