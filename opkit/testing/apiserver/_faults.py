"""Fault injection for tests: failing or slow requests, dropped or stalled watches.

Rules match on the Kubernetes verb (get, list, watch, create, update, patch, delete,
deletecollection) and on the resource, given as ``pods``, ``statefulsets.apps`` or
``pods/status``; ``None`` matches everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._status import APIError, too_many_requests

__all__ = ["FaultInjector"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _matches(
    rule_verb: str | None, rule_resource: str | None, verb: str, resources: tuple[str, ...]
) -> bool:
    if rule_verb is not None and rule_verb != verb:
        return False
    return rule_resource is None or rule_resource in resources


@dataclass
class _FailRule:
    verb: str | None
    resource: str | None
    remaining: int
    code: int
    retry_after: int | None
    message: str | None


@dataclass
class _DelayRule:
    seconds: float
    verb: str | None
    resource: str | None


class FaultInjector:
    """Test hooks to make the embedded API server misbehave on purpose."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: list[_FailRule] = []
        self._delays: list[_DelayRule] = []
        self._stalled: set[str | None] = set()
        self._stall_changed = threading.Condition(self._lock)
        self._drop_hook: Callable[[str | None], int] | None = None
        self._compact_hook: Callable[[int | None], int] | None = None

    # -- public API ----------------------------------------------------------------------

    def fail(
        self,
        verb: str | None = None,
        resource: str | None = None,
        *,
        times: int = 1,
        code: int = 500,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> None:
        """Fail the next ``times`` matching requests with ``code`` (a Status body; 429
        and any rule with ``retry_after`` carry a Retry-After header)."""
        with self._lock:
            self._fails.append(_FailRule(verb, resource, times, code, retry_after, message))

    def delay(self, seconds: float, verb: str | None = None, resource: str | None = None) -> None:
        """Add latency to every matching request until :meth:`clear`."""
        with self._lock:
            self._delays.append(_DelayRule(seconds, verb, resource))

    def drop_watches(self, resource: str | None = None) -> int:
        """Close matching open watch connections abruptly; returns how many."""
        hook = self._drop_hook
        return hook(resource) if hook is not None else 0

    def stall_watches(self, resource: str | None = None) -> None:
        """Keep matching watches (open and future) connected but silent: no events and no
        bookmarks, until :meth:`unstall_watches` or :meth:`drop_watches`."""
        with self._lock:
            self._stalled.add(resource)
            self._stall_changed.notify_all()

    def unstall_watches(self) -> None:
        with self._lock:
            self._stalled.clear()
            self._stall_changed.notify_all()

    def compact(self, rev: int | None = None) -> int:
        """Compact the store's history (WATCH-6); returns the compaction revision."""
        hook = self._compact_hook
        return hook(rev) if hook is not None else 0

    def clear(self) -> None:
        """Remove every rule and unstall watches."""
        with self._lock:
            self._fails.clear()
            self._delays.clear()
            self._stalled.clear()
            self._stall_changed.notify_all()

    # -- used by the server ----------------------------------------------------------------

    def bind(
        self,
        drop_hook: Callable[[str | None], int],
        compact_hook: Callable[[int | None], int],
    ) -> None:
        self._drop_hook = drop_hook
        self._compact_hook = compact_hook

    def check(self, verb: str, resources: tuple[str, ...]) -> APIError | None:
        """Consume one matching failure rule and return its error."""
        with self._lock:
            for rule in self._fails:
                if rule.remaining > 0 and _matches(rule.verb, rule.resource, verb, resources):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._fails.remove(rule)
                    return _error(rule)
        return None

    def latency(self, verb: str, resources: tuple[str, ...]) -> float:
        with self._lock:
            return sum(
                d.seconds for d in self._delays if _matches(d.verb, d.resource, verb, resources)
            )

    def stalled(self, resources: tuple[str, ...]) -> bool:
        with self._lock:
            return any(r is None or r in resources for r in self._stalled)

    def wait_stall_change(self, timeout: float) -> None:
        with self._lock:
            self._stall_changed.wait(timeout)


def _error(rule: _FailRule) -> APIError:
    if rule.code == 429:
        return too_many_requests(
            rule.retry_after if rule.retry_after is not None else 1, rule.message or ""
        )
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        details["retryAfterSeconds"] = rule.retry_after
        headers["Retry-After"] = str(rule.retry_after)
    message = rule.message or f"injected fault (HTTP {rule.code})"
    if rule.code == 500 and not rule.message:
        message = "Internal error occurred: injected fault"
    return APIError(rule.code, message, _REASONS.get(rule.code, "Unknown"), details, headers)
