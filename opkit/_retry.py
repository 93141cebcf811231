"""When a failed API call may be repeated, and how long to wait first.

The rule that matters is idempotency: a request whose outcome is unknown (a 500, a read
timeout, a reset connection) is repeated only when doing it twice cannot do harm (reads,
writes guarded by a resourceVersion or a delete precondition, merge/strategic/apply patches).
Answers that prove the server did nothing -- 429, 503 with Retry-After, a connection that was
never made -- are repeated for every verb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from opkit import errors
from opkit.clock import Clock
from opkit.log import get_logger

__all__ = ["NO_RETRY", "RetryPolicy", "call_with_retries", "is_retryable"]

_log = get_logger(component="opkit.client")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and backoff for retrying one API call.

    ``max_attempts`` counts the first try. ``max_elapsed`` bounds the time from the first try
    to the start of the last one, waits included; a Retry-After that would cross it ends the
    retries instead. Backoff without Retry-After is ``initial_backoff * 2**n`` capped at
    ``max_backoff``, then jittered to ``d + rand * jitter * d`` (apimachinery ``wait.Jitter``).
    """

    max_attempts: int = 5
    max_elapsed: float = 30.0
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    jitter: float = 1.0
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_elapsed < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("durations must not be negative")
        if self.jitter < 0:
            raise ValueError("jitter must not be negative")

    def delay(self, exc: BaseException, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, errors.ApiError) and retry_after is not None:
            return max(0.0, float(retry_after))
        backoff: float = min(self.max_backoff, self.initial_backoff * (2 ** (failures - 1)))
        if self.jitter > 0:
            backoff += self.rand() * self.jitter * backoff
        return backoff


NO_RETRY = RetryPolicy(max_attempts=1)


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether repeating the call that raised ``exc`` is safe and may help."""
    if isinstance(exc, errors.TooManyRequests):
        return True
    if isinstance(exc, errors.ServerError):
        if exc.status == 503 and exc.retry_after is not None:
            return True
        return idempotent
    if isinstance(exc, errors.TransportError):
        return idempotent or not exc.request_sent
    return False


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    clock: Clock,
    idempotent: bool,
    what: str = "",
) -> T:
    """Run ``fn`` and repeat it under ``policy``; the last error is re-raised unchanged."""
    if policy.max_attempts <= 1:
        return fn()
    start = clock.monotonic()

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:
            return 0.0
        return policy.delay(exc, state.attempt_number)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        return clock.monotonic() - start + state.upcoming_sleep > policy.max_elapsed

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        _log.debug(
            "retrying request",
            request=what,
            attempt=state.attempt_number,
            delay=round(state.upcoming_sleep, 3),
            error=str(exc),
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: is_retryable(e, idempotent=idempotent)),
        wait=wait,
        stop=stop,
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
