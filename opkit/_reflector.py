"""Reflector: keeps a store in step with the API server by listing once and then watching.

The rules are client-go's (``tools/cache/reflector.go``), because every one of them exists to
spare the API server or to avoid going back in time:

* The first list asks for ``resourceVersion="0"`` (any cached state will do) in pages of 500;
  a relist after a watch ended asks for the last seen RV ("not older than"), and only after a
  list got 410/"too large" does it ask for ``""`` (a quorum read).
* The watch starts at the list RV with bookmarks on and a random server timeout of 300-600 s
  (spreading reconnects), and a client read timeout so a silently dead stream is noticed.
* A watch that ends (server timeout, dropped connection, read timeout) is reopened from the
  last seen RV without relisting. Only 410 Gone ("too old resource version") forces a relist.
* Failures back off 0.8 s doubling to 30 s with full jitter, reset after 2 quiet minutes.

The reflector talks to a small :class:`ListerWatcher` protocol so it can be driven by an
in-memory fake in tests; :class:`ResourceClientListerWatcher` adapts ``opkit.client``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from opkit import errors
from opkit._store import DeletedFinalStateUnknown, Obj
from opkit.client import DEFAULT_WATCH_READ_TIMEOUT, ResourceClient
from opkit.clock import REAL_CLOCK, Clock

__all__ = [
    "BackoffConfig",
    "ListOptions",
    "ListerWatcher",
    "Reflector",
    "ReflectorConfig",
    "ReflectorStore",
    "ResourceClientListerWatcher",
    "WatchStream",
]

log = logging.getLogger("opkit.informer")


# -- the seam to the API --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListOptions:
    """Query options for one list or watch call (``metav1.ListOptions`` plus a read timeout).

    ``resource_version=""`` means "not set" (the most recent state, a quorum read).
    """

    resource_version: str = ""
    resource_version_match: str | None = None
    limit: int | None = None
    continue_: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    timeout_seconds: int | None = None
    allow_watch_bookmarks: bool = False
    read_timeout: float | None = None
    """Client-side inactivity limit of a watch; expiry raises ``errors.WatchStalled``."""


@runtime_checkable
class WatchStream(Protocol):
    """An open watch: iterates ``{"type": ..., "object": ...}`` events; ``close`` may be called
    from another thread to unblock the reader."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


@runtime_checkable
class ListerWatcher(Protocol):
    """What a reflector needs: list (one page) and watch one resource collection."""

    def list(self, options: ListOptions) -> dict[str, Any]: ...

    def watch(self, options: ListOptions) -> WatchStream: ...


class ResourceClientListerWatcher:
    """Adapts an ``opkit.client.ResourceClient`` (one namespace or all, optional selectors)."""

    def __init__(
        self,
        client: ResourceClient,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector

    def list(self, options: ListOptions) -> dict[str, Any]:
        return self.client.list(
            self.namespace,
            label_selector=options.label_selector or self.label_selector,
            field_selector=options.field_selector or self.field_selector,
            limit=options.limit or None,
            continue_=options.continue_ or None,
            resource_version=options.resource_version or None,
            resource_version_match=options.resource_version_match or None,
        )

    def watch(self, options: ListOptions) -> WatchStream:
        stream: WatchStream = self.client.watch(
            self.namespace,
            resource_version=options.resource_version or None,
            timeout_seconds=options.timeout_seconds,
            allow_watch_bookmarks=options.allow_watch_bookmarks,
            label_selector=options.label_selector or self.label_selector,
            field_selector=options.field_selector or self.field_selector,
            read_timeout=(
                DEFAULT_WATCH_READ_TIMEOUT if options.read_timeout is None else options.read_timeout
            ),
        )
        return stream


class ReflectorStore(Protocol):
    """Where a reflector puts what it sees (a DeltaFIFO, or a plain Store)."""

    def add(self, obj: Obj) -> None: ...

    def update(self, obj: Obj) -> None: ...

    def delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...

    def replace(self, items: Iterable[Obj], resource_version: str = "") -> None: ...


# -- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Exponential backoff with jitter (apimachinery ``wait.Backoff`` + ``DelayWithReset``).

    Delays before jitter are ``initial * factor**n`` capped at ``cap``; jitter ``j`` turns a
    delay ``d`` into a value in ``[d, d + j*d)``. After ``reset_after`` seconds without a
    failure the sequence starts over.
    """

    initial: float = 0.8
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 1.0
    reset_after: float = 120.0


@dataclass(frozen=True, slots=True)
class ReflectorConfig:
    """Tuning knobs; the defaults are client-go's. Tests shrink them to stay fast."""

    page_size: int = 500
    min_watch_timeout: float = 300.0
    max_watch_timeout: float = 600.0
    read_timeout: float = DEFAULT_WATCH_READ_TIMEOUT
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    very_short_watch: float = 1.0
    """A watch that ends within this many seconds having delivered nothing counts as a failure
    (backs off before the next one) instead of a normal close."""

    def with_(self, **changes: Any) -> ReflectorConfig:
        return replace(self, **changes)


class _Backoff:
    """Stateful delay generator; see :class:`BackoffConfig`."""

    def __init__(self, config: BackoffConfig, clock: Clock, rng: random.Random) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._next = config.initial
        self._last_step: float | None = None

    def step(self) -> float:
        cfg = self._config
        now = self._clock.monotonic()
        if self._last_step is not None and now - self._last_step > cfg.reset_after:
            self._next = cfg.initial
        self._last_step = now
        delay = self._next
        self._next = min(self._next * cfg.factor, cfg.cap) if cfg.factor > 0 else self._next
        if cfg.jitter > 0:
            delay += self._rng.random() * cfg.jitter * delay
        return delay


class _StopSignal:
    """A stop flag whose timed waits run on a :class:`Clock` (so FakeClock tests control them)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._set = False

    def set(self) -> None:
        with self._cond:
            self._set = True
            self._cond.notify_all()

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float | None) -> bool:
        """Sleep up to ``seconds`` of clock time (None = forever); True if stopped."""
        with self._cond:
            deadline = None if seconds is None else self._clock.monotonic() + seconds
            while not self._set:
                if not self._clock.wait_until(self._cond, deadline):
                    break
            return self._set


# -- the reflector --------------------------------------------------------------------------------


class _RelistError(Exception):
    """Internal: the watch hit 410; leave the watch loop so the outer loop relists."""


def _is_expired(err: BaseException) -> bool:
    return isinstance(err, errors.Gone) or (isinstance(err, errors.ApiError) and err.status == 410)


def _needs_relist(err: BaseException) -> bool:
    return _is_expired(err) or errors.is_too_large_resource_version(err)


def _is_retriable_watch_error(err: BaseException) -> bool:
    """Errors after which re-watching from the same RV (after a backoff) is the right move."""
    if isinstance(err, errors.TransportError):
        return True
    if isinstance(err, errors.ApiError):
        return err.status == 429 or err.status >= 500
    return isinstance(err, ConnectionError | TimeoutError)


def _error_from_event(obj: Any) -> Exception:
    if isinstance(obj, dict) and obj.get("kind") == "Status":
        code = obj.get("code")
        return errors.from_status(code if isinstance(code, int) else 500, json.dumps(obj))
    return errors.ServerError(500, "InternalError", f"watch ERROR event: {obj!r}")


def _retry_after(err: BaseException) -> float:
    value = getattr(err, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


class Reflector:
    """Lists and watches through a :class:`ListerWatcher` into a :class:`ReflectorStore`.

    :meth:`run` blocks until :meth:`stop`; counters (:attr:`lists`, :attr:`relists`,
    :attr:`watches`, :attr:`list_requests`) are there for tests and metrics.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        store: ReflectorStore,
        *,
        name: str = "",
        clock: Clock | None = None,
        config: ReflectorConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name or type(lister_watcher).__name__
        self._lw = lister_watcher
        self._store = store
        self._clock = clock if clock is not None else REAL_CLOCK
        self._config = config if config is not None else ReflectorConfig()
        self._rng = rng if rng is not None else random.Random()
        self._backoff = _Backoff(self._config.backoff, self._clock, self._rng)
        self._stop = _StopSignal(self._clock)
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._last_sync_rv = ""
        self._rv_unavailable = False
        self._paginated_result = False
        self.lists = 0
        """Completed lists (each may have taken several page requests)."""
        self.relists = 0
        """Completed lists after the first one."""
        self.list_requests = 0
        """List page requests sent, successful or not."""
        self.watches = 0
        """Watch requests sent, successful or not."""
        self.watch_events = 0

    # -- public ---------------------------------------------------------------------------------

    def last_sync_resource_version(self) -> str:
        """The RV of the last list or of the last watch event / bookmark applied."""
        return self._last_sync_rv

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to return; closes the open watch so a blocked read returns now."""
        self._stop.set()
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            self._close(stream)

    def run(self) -> None:
        """List and watch until stopped, backing off between failed cycles."""
        while not self._stop.is_set():
            try:
                self.list_and_watch()
            except Exception as err:
                if self._stop.is_set():
                    break
                self._log_failure("list and watch", err)
            if self._stop.wait(self._backoff.step()):
                break

    def list_and_watch(self) -> None:
        """One cycle: list (replacing the store), then watch until a relist is needed."""
        if not self._list():
            return
        self._watch()

    # -- list -----------------------------------------------------------------------------------

    def _relist_resource_version(self) -> str:
        if self._rv_unavailable:
            return ""
        return self._last_sync_rv or "0"

    def _list(self) -> bool:
        rv = self._relist_resource_version()
        try:
            items, list_rv = self._paged_list(rv)
        except Exception as err:
            if not _needs_relist(err) or rv == "":
                raise
            # The RV we asked for is compacted (or from the future): retry once at "now".
            log.debug("%s: list at RV %s failed (%s); relisting from etcd", self.name, rv, err)
            self._rv_unavailable = True
            items, list_rv = self._paged_list(self._relist_resource_version())
        if self._stop.is_set():
            return False
        self._rv_unavailable = False
        self._store.replace(items, list_rv)
        self._last_sync_rv = list_rv
        if self.lists:
            self.relists += 1
        self.lists += 1
        return True

    def _paged_list(self, rv: str) -> tuple[list[Obj], str]:
        """Follow ``continue`` tokens (client-go pager rules); returns items and the list RV."""
        cfg = self._config
        # Exact-RV relists go unpaged: the watch cache can serve them whole.
        limit = cfg.page_size if rv in ("", "0") or self._paginated_result else 0
        first = options = ListOptions(resource_version=rv, limit=limit or None)
        items: list[Obj] = []
        list_rv = ""
        paginated = False
        while True:
            self.list_requests += 1
            try:
                page = self._lw.list(options)
            except Exception as err:
                if not (_is_expired(err) and options.continue_):
                    raise
                # The snapshot behind the continue token was compacted: one full list instead.
                log.debug("%s: continue token expired; listing without paging", self.name)
                self.list_requests += 1
                page = self._lw.list(replace(first, limit=None))
                return self._page_items(page), self._page_rv(page)
            if not items and not paginated:
                list_rv = self._page_rv(page)
            items.extend(self._page_items(page))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            paginated = True
            # The token pins the snapshot; RV options are not allowed together with it.
            options = replace(options, continue_=token, resource_version="")
            if self._stop.is_set():
                break
        if rv == "0" and paginated:
            self._paginated_result = True
        return items, list_rv

    @staticmethod
    def _page_rv(page: dict[str, Any]) -> str:
        rv = (page.get("metadata") or {}).get("resourceVersion")
        return rv if isinstance(rv, str) else ""

    @staticmethod
    def _page_items(page: dict[str, Any]) -> list[Obj]:
        items = page.get("items") or []
        # List items come without apiVersion/kind on the wire; fill them in so handlers and
        # watch events see the same shape. Cheap: two dict stores per item, no copies.
        list_kind = page.get("kind")
        api_version = page.get("apiVersion")
        if isinstance(list_kind, str) and list_kind.endswith("List") and api_version:
            kind = list_kind[:-4]
            for item in items:
                if "kind" not in item:
                    item["kind"] = kind
                if "apiVersion" not in item:
                    item["apiVersion"] = api_version
        result: list[Obj] = items
        return result

    # -- watch ----------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Watch from the last RV until stopped or a relist is needed."""
        cfg = self._config
        while not self._stop.is_set():
            options = ListOptions(
                resource_version=self._last_sync_rv,
                timeout_seconds=max(
                    1, int(self._rng.uniform(cfg.min_watch_timeout, cfg.max_watch_timeout))
                ),
                allow_watch_bookmarks=True,
                read_timeout=cfg.read_timeout,
            )
            self.watches += 1
            try:
                stream = self._lw.watch(options)
            except Exception as err:
                if _needs_relist(err):
                    log.debug("%s: watch start: %s; relisting", self.name, err)
                    return
                if not _is_retriable_watch_error(err):
                    raise
                self._log_failure("watch", err)
                if self._stop.wait(max(self._backoff.step(), _retry_after(err))):
                    return
                continue
            try:
                backoff = self._consume(stream, options.resource_version)
            except _RelistError:
                return
            if backoff is not None and self._stop.wait(backoff):
                return

    def _consume(self, stream: WatchStream, start_rv: str) -> float | None:
        """Apply events from ``stream`` until it ends; returns a delay before re-watching."""
        with self._stream_lock:
            if self._stop.is_set():
                self._close(stream)
                return None
            self._stream = stream
        started = self._clock.monotonic()
        count = 0
        # Watching from "" or "0" starts with synthetic ADDED events in no RV order, so the RV
        # only becomes trustworthy with the first event that is not one of them.
        propagate_rv = start_rv not in ("", "0")
        store = self._store
        try:
            for event in stream:
                kind = event.get("type")
                obj = event.get("object")
                if kind == "ERROR":
                    raise _error_from_event(obj)
                if not isinstance(obj, dict):
                    log.warning("%s: watch event without object: %r", self.name, event)
                    continue
                count += 1
                self.watch_events += 1
                try:
                    if kind == "ADDED":
                        store.add(obj)
                    elif kind == "MODIFIED":
                        store.update(obj)
                    elif kind == "DELETED":
                        store.delete(obj)
                    elif kind != "BOOKMARK":
                        log.warning("%s: unknown watch event type %r", self.name, kind)
                        continue
                except Exception:
                    log.exception("%s: cannot apply %s event to the store", self.name, kind)
                if not propagate_rv and kind != "ADDED":
                    propagate_rv = True
                if propagate_rv:
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self._last_sync_rv = rv
        except Exception as err:
            if self._stop.is_set():
                return None
            if _needs_relist(err):
                log.debug("%s: watch ended: %s; relisting", self.name, err)
                raise _RelistError from err
            if isinstance(err, errors.WatchStalled):
                log.info("%s: watch stalled (%s); rewatching", self.name, err)
                return None
            if not _is_retriable_watch_error(err):
                raise
            if isinstance(err, errors.TransportError) and count:
                log.debug("%s: watch connection broke (%s); rewatching", self.name, err)
                return None
            self._log_failure("watch stream", err)
            return max(self._backoff.step(), _retry_after(err))
        finally:
            with self._stream_lock:
                if self._stream is stream:
                    self._stream = None
            self._close(stream)
        short = self._clock.monotonic() - started < self._config.very_short_watch
        if count == 0 and short and not self._stop.is_set():
            log.info("%s: very short watch (closed quickly, no events); backing off", self.name)
            return self._backoff.step()
        return None

    # -- helpers --------------------------------------------------------------------------------

    def _close(self, stream: WatchStream) -> None:
        try:
            stream.close()
        except Exception:
            log.debug("%s: closing watch stream failed", self.name, exc_info=True)

    def _log_failure(self, what: str, err: BaseException) -> None:
        if _is_expired(err):
            log.debug("%s: %s: %s", self.name, what, err)
        elif isinstance(err, errors.KubernetesError):
            log.warning("%s: %s failed: %s", self.name, what, err)
        else:
            log.error("%s: %s failed", self.name, what, exc_info=err)
