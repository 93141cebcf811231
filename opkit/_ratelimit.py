"""Rate limiters for :class:`opkit.workqueue.RateLimitingQueue` (client-go default_rate_limiters).

A limiter answers "how long should this item wait before its next attempt" (:meth:`when`, which
also records the attempt), forgets an item's history once it succeeded (:meth:`forget`) and
reports how often it has been retried (:meth:`num_requeues`). All delays are float seconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from typing import Protocol, TypeVar

from .clock import REAL_CLOCK, Clock

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
    "default_item_based_rate_limiter",
]

_T_contra = TypeVar("_T_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[_T_contra]):
    """What a rate-limiting queue needs from a limiter."""

    def when(self, item: _T_contra) -> float:
        """Record a failure/attempt of ``item`` and return the seconds it should wait."""
        ...

    def forget(self, item: _T_contra) -> None:
        """Drop ``item``'s history (it succeeded); without this, per-item state grows forever."""
        ...

    def num_requeues(self, item: _T_contra) -> int:
        """How many times ``item`` has been rate limited since it was last forgotten."""
        ...


class _PerItemFailures:
    """The failure count of every item not yet forgotten (the per-item limiters' state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[Hashable, int] = {}

    def _count_failure(self, item: Hashable) -> int:
        """Record one more failure of ``item``; returns how many it had before."""
        with self._lock:
            before = self._failures.get(item, 0)
            self._failures[item] = before + 1
        return before

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class ItemExponentialFailureRateLimiter(_PerItemFailures):
    """Per-item exponential backoff: ``base_delay * 2**failures``, capped at ``max_delay``."""

    def __init__(self, base_delay: float, max_delay: float) -> None:
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        super().__init__()
        self.base_delay = base_delay
        self.max_delay = max_delay

    def when(self, item: Hashable) -> float:
        exp = self._count_failure(item)
        try:
            backoff = self.base_delay * 2.0**exp
        except OverflowError:
            return self.max_delay
        if not math.isfinite(backoff) or backoff > self.max_delay:
            return self.max_delay
        return backoff

    def __repr__(self) -> str:
        return f"ItemExponentialFailureRateLimiter({self.base_delay!r}, {self.max_delay!r})"


class ItemFastSlowRateLimiter(_PerItemFailures):
    """``fast_delay`` for an item's first ``max_fast_attempts`` failures, then ``slow_delay``."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        super().__init__()
        self.fast_delay = fast_delay
        self.slow_delay = slow_delay
        self.max_fast_attempts = max_fast_attempts

    def when(self, item: Hashable) -> float:
        n = self._count_failure(item) + 1
        return self.fast_delay if n <= self.max_fast_attempts else self.slow_delay

    def __repr__(self) -> str:
        return (
            f"ItemFastSlowRateLimiter({self.fast_delay!r}, {self.slow_delay!r}, "
            f"{self.max_fast_attempts!r})"
        )


class BucketRateLimiter:
    """Overall (not per-item) token bucket: ``qps`` tokens per second, ``burst`` capacity.

    Every :meth:`when` reserves a token, like ``rate.Limiter.Reserve().Delay()``: within the
    burst the delay is 0, beyond it each call is scheduled ``1/qps`` after the previous one, so
    a storm of failures is spread out instead of retried at once. The bucket starts full.
    """

    def __init__(self, qps: float, burst: int, *, clock: Clock | None = None) -> None:
        if not qps > 0:
            raise ValueError("qps must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock or REAL_CLOCK
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()

    def when(self, item: Hashable) -> float:
        if math.isinf(self.qps):
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            last = min(self._last, now)
            tokens = min(self._tokens + (now - last) * self.qps, float(self.burst))
            tokens -= 1.0
            self._tokens = tokens
            self._last = now
        return -tokens / self.qps if tokens < 0 else 0.0

    def forget(self, item: Hashable) -> None:
        """The bucket is shared by all items; there is nothing per item to forget."""

    def num_requeues(self, item: Hashable) -> int:
        return 0

    def __repr__(self) -> str:
        return f"BucketRateLimiter(qps={self.qps!r}, burst={self.burst!r})"


class MaxOfRateLimiter:
    """The longest delay of several limiters; every limiter sees every attempt."""

    def __init__(self, *limiters: RateLimiter[Hashable]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter[Hashable], ...] = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)

    def __repr__(self) -> str:
        return f"MaxOfRateLimiter({', '.join(map(repr, self.limiters))})"


class WithMaxWaitRateLimiter:
    """Caps another limiter's delay at ``max_delay``."""

    def __init__(self, limiter: RateLimiter[Hashable], max_delay: float) -> None:
        self.limiter = limiter
        self.max_delay = max_delay

    def when(self, item: Hashable) -> float:
        return min(self.limiter.when(item), self.max_delay)

    def forget(self, item: Hashable) -> None:
        self.limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.limiter.num_requeues(item)

    def __repr__(self) -> str:
        return f"WithMaxWaitRateLimiter({self.limiter!r}, {self.max_delay!r})"


def default_item_based_rate_limiter() -> ItemExponentialFailureRateLimiter:
    """client-go's ``DefaultItemBasedRateLimiter``: exponential 1 ms .. 1000 s."""
    return ItemExponentialFailureRateLimiter(0.001, 1000.0)


def default_controller_rate_limiter(*, clock: Clock | None = None) -> MaxOfRateLimiter:
    """client-go's ``DefaultControllerRateLimiter``.

    Per-item exponential backoff 5 ms .. 1000 s, combined with an overall 10 qps / burst 100
    bucket that only limits retry speed when many items fail at once.
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(10.0, 100, clock=clock),
    )
