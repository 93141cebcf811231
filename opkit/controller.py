"""Controllers: informer events in, ``namespace/name`` keys through a work queue, reconciles out.

The flow (controller-runtime's): each watched resource has a shared informer; an event that
passes the predicates is mapped to one or more :class:`Request` keys (the object itself, its
controlling owner, or whatever a map function says) and added to a rate-limiting work queue.
``max_concurrent_reconciles`` worker threads take keys from the queue and call the
:class:`Reconciler`. The queue never hands the same key to two workers at once, and a key added
while it is being reconciled is reconciled once more afterwards, so reconcilers need no locking
of their own.

Reconcilers are level-triggered: they are told *which* object to look at, never *what*
happened, and read the current state from the :class:`Cache` (the informers' stores).

What happens after a reconcile follows controller-runtime exactly:

=========================================  ======================  ==========================
outcome                                    queue                   ``reconcile_total{result}``
=========================================  ======================  ==========================
raised an exception                        ``add_rate_limited``    ``error``
raised :class:`TerminalError`              ``forget`` (no retry)   ``error``
``Result(requeue_after=s)`` with s > 0     ``forget`` + ``add_after(s)``  ``requeue_after``
``Result(requeue=True)``                   ``add_rate_limited``    ``requeue``
anything else (``None``, ``Result()``)     ``forget``              ``success``
=========================================  ======================  ==========================

An exception never kills a worker.
"""

from __future__ import annotations

import copy as _copy
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from opkit import labels as _labels
from opkit import log as _log
from opkit import metrics as _metrics
from opkit.clock import REAL_CLOCK, Clock
from opkit.discovery import split_api_version
from opkit.informer import (
    DeletedFinalStateUnknown,
    EventHandlerRegistration,
    IndexFunc,
    InformerFactory,
    SharedInformer,
    split_key,
)
from opkit.predicates import Predicate
from opkit.workqueue import RateLimiter, RateLimitingQueue

__all__ = [
    "Cache",
    "CacheNotStartedError",
    "CacheSyncTimeoutError",
    "Controller",
    "EnqueueRequestForObject",
    "EnqueueRequestForOwner",
    "EnqueueRequestsFromMapFunc",
    "MapFunc",
    "ReconcileFunc",
    "Reconciler",
    "Request",
    "Result",
    "Source",
    "TerminalError",
]

Obj = dict[str, Any]
_ObjList = list[Obj]  # ``Cache.list`` shadows the builtin inside the class body

_SYNC_POLL = 0.02
"""Real seconds between checks while waiting for caches to sync (I/O bound, not a timer)."""

_logger = _log.get_logger(component="opkit.controller")


# -- requests and results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """Which object to reconcile. ``namespace`` is ``""`` for cluster-scoped objects."""

    namespace: str
    name: str

    @property
    def key(self) -> str:
        """The cache key: ``"namespace/name"``, or ``"name"`` for cluster-scoped objects."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def from_key(cls, key: str) -> Request:
        namespace, name = split_key(key)
        return cls(namespace, name)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Request:
        meta = obj.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for next (see the module docstring for the exact rules).

    ``requeue_after`` (seconds) reconciles the key again after that delay, without backoff;
    ``requeue=True`` retries it through the rate limiter (backoff) without counting an error.
    """

    requeue: bool = False
    requeue_after: float = 0.0


class TerminalError(Exception):
    """Raise from a reconcile for an error that retrying cannot fix (bad spec, ...).

    It is logged and counted like any error but the key is not requeued: the next change to
    the object (or a resync) reconciles it again.
    """


@runtime_checkable
class Reconciler(Protocol):
    """Drives the world toward the state one object asks for.

    Must be idempotent: it is called again after errors, on resyncs and for events that change
    nothing. Read from the cache; write through the client only when something differs.
    """

    def reconcile(self, request: Request) -> Result | None: ...


ReconcileFunc = Callable[[Request], "Result | None"]


# -- the cache ------------------------------------------------------------------------------------


class CacheNotStartedError(RuntimeError):
    """The cache was read before the manager (or :meth:`Cache.start`) started it."""


class CacheSyncTimeoutError(TimeoutError):
    """An informer did not finish its first list in time."""


def _selector(selector: str | _labels.Selector | Mapping[str, str] | None) -> _labels.Selector:
    if selector is None:
        return _labels.Everything()
    if isinstance(selector, _labels.Selector):
        return selector
    if isinstance(selector, str):
        return _labels.parse(selector)
    return _labels.from_set(selector)


def _wait_synced(
    check: Callable[[], bool], timeout: float | None, stop: threading.Event | None
) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not check():
        if stop is not None and stop.is_set():
            return False
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if stop is not None:
            stop.wait(_SYNC_POLL)
        else:
            time.sleep(_SYNC_POLL)
    return True


class Cache:
    """A read-only view of API objects served from shared informers (controller-runtime's cache).

    Every resource read through it gets one informer from the :class:`InformerFactory`, shared
    with every controller watching the same resource. Reading a resource nobody watches yet
    starts its informer and waits for its first list (``sync_timeout`` seconds).

    Objects are deep-copied on the way out unless ``copy=False``; uncopied objects are shared
    with the cache and every other reader and must never be modified.
    """

    def __init__(self, factory: InformerFactory, *, sync_timeout: float = 120.0) -> None:
        self.factory = factory
        self.sync_timeout = sync_timeout
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._namespaced: dict[tuple[str, str], bool] = {}

    @property
    def client(self) -> Any:
        """The :class:`opkit.client.Client` the informers list and watch with."""
        return self.factory.client

    # -- lifecycle ------------------------------------------------------------------------------

    def informer_for(self, api_version: str, kind: str) -> SharedInformer:
        """The shared informer of a resource (created, not started, if new)."""
        return self.factory.for_resource(api_version, kind)

    def start(self) -> None:
        """Start every informer created so far (and later ones as they are first read)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("cache is stopped")
            self._started = True
        self.factory.start()

    @property
    def started(self) -> bool:
        return self._started

    def has_synced(self) -> bool:
        """True once every informer of the cache has completed its first list."""
        informers = self.factory.informers().values()
        return all(inf.has_synced() for inf in informers if inf.started)

    def wait_for_sync(
        self, timeout: float | None = None, *, stop: threading.Event | None = None
    ) -> bool:
        """Block until :meth:`has_synced` (False on timeout or when ``stop`` is set)."""
        return _wait_synced(self.has_synced, timeout, stop)

    def stop(self) -> None:
        """Stop every informer and wait for their threads."""
        with self._lock:
            self._stopped = True
        self.factory.shutdown()

    # -- reads ----------------------------------------------------------------------------------

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """Whether a kind is namespaced (from discovery, remembered)."""
        key = (api_version, kind)
        known = self._namespaced.get(key)
        if known is None:
            known = bool(self.client.resource(api_version, kind).namespaced)
            self._namespaced[key] = known
        return known

    def _synced_informer(self, api_version: str, kind: str) -> SharedInformer:
        if not self._started:
            raise CacheNotStartedError(
                f"the cache is not started; cannot read {kind}.{api_version} yet"
            )
        informer = self.factory.for_resource(api_version, kind)
        if not informer.started:
            self.factory.start()
        if not informer.has_synced() and not _wait_synced(
            informer.has_synced, self.sync_timeout, None
        ):
            raise CacheSyncTimeoutError(
                f"timed out waiting for the {kind}.{api_version} cache to sync"
            )
        return informer

    def get(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        copy: bool = True,
    ) -> Obj | None:
        """The cached object, or None if the cache does not have it.

        ``namespace`` is required for namespaced kinds and ignored for cluster-scoped ones.
        """
        informer = self._synced_informer(api_version, kind)
        if not self.is_namespaced(api_version, kind):
            key = name
        elif namespace:
            key = f"{namespace}/{name}"
        else:
            raise ValueError(f"{kind}.{api_version} is namespaced: a namespace is needed")
        obj = informer.store.get_by_key(key)
        if obj is None:
            return None
        return _copy.deepcopy(obj) if copy else obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | _labels.Selector | Mapping[str, str] | None = None,
        *,
        copy: bool = True,
    ) -> _ObjList:
        """Cached objects of a kind, optionally of one namespace and matching a label selector.

        ``label_selector`` is a selector string, an :class:`opkit.labels.Selector` or a
        ``{label: value}`` mapping (all must match). Sorted by namespace and name.
        """
        informer = self._synced_informer(api_version, kind)
        store = informer.store
        items = store.by_index("namespace", namespace) if namespace else store.list()
        selector = _selector(label_selector)
        if not selector.empty():
            items = [o for o in items if selector.matches(_labels_of(o))]
        items.sort(key=_sort_key)
        return [_copy.deepcopy(o) for o in items] if copy else items

    def by_index(
        self, api_version: str, kind: str, index_name: str, value: str, *, copy: bool = True
    ) -> _ObjList:
        """Cached objects whose index ``index_name`` contains ``value`` (see
        :meth:`add_indexers`). Sorted by namespace and name."""
        informer = self._synced_informer(api_version, kind)
        items = informer.store.by_index(index_name, value)
        items.sort(key=_sort_key)
        return [_copy.deepcopy(o) for o in items] if copy else items

    def add_indexers(self, api_version: str, kind: str, indexers: Mapping[str, IndexFunc]) -> None:
        """Install secondary indexes on a kind's informer (before or after it started)."""
        self.factory.for_resource(api_version, kind, indexers=indexers)


def _labels_of(obj: Obj) -> Mapping[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("labels") or {}


def _sort_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# -- event handlers (object -> requests) ----------------------------------------------------------

MapFunc = Callable[[Obj], Iterable[Request]]
"""Maps an object of a watched kind to the requests it should wake."""


class EnqueueRequestForObject:
    """Enqueue the object's own ``namespace/name`` (used for ``for_``)."""

    def __call__(self, obj: Obj) -> list[Request]:
        req = Request.from_object(obj)
        return [req] if req.name else []

    def __repr__(self) -> str:
        return "EnqueueRequestForObject()"


class EnqueueRequestForOwner:
    """Enqueue the owner of the object named in its ownerReferences (used for ``owns``).

    Owners match by API group and kind (the version of the reference does not matter). With
    ``only_controller`` (the default) only the reference with ``controller: true`` counts.
    The request's namespace is the object's own, or ``""`` when the owner kind is cluster-scoped
    (``owner_namespaced=False``; None means "ask discovery", which the controller does).
    """

    def __init__(
        self,
        api_version: str,
        kind: str,
        *,
        only_controller: bool = True,
        owner_namespaced: bool | None = None,
    ) -> None:
        self.api_version = api_version
        self.group = split_api_version(api_version)[0]
        self.kind = kind
        self.only_controller = only_controller
        self.owner_namespaced = owner_namespaced

    def __call__(self, obj: Obj) -> list[Request]:
        meta = obj.get("metadata") or {}
        refs = meta.get("ownerReferences") or ()
        namespace = str(meta.get("namespace") or "") if self.owner_namespaced is not False else ""
        out: list[Request] = []
        for ref in refs:
            if not isinstance(ref, Mapping):
                continue
            if self.only_controller and not ref.get("controller"):
                continue
            if ref.get("kind") != self.kind or not ref.get("name"):
                continue
            try:
                group = split_api_version(str(ref.get("apiVersion") or ""))[0]
            except ValueError:
                continue
            if group == self.group:
                out.append(Request(namespace, str(ref["name"])))
        return out

    def __repr__(self) -> str:
        return f"EnqueueRequestForOwner({self.api_version!r}, {self.kind!r})"


class EnqueueRequestsFromMapFunc:
    """Enqueue whatever a function maps an object to (used for ``watches``)."""

    def __init__(self, func: MapFunc) -> None:
        self.func = func

    def __call__(self, obj: Obj) -> list[Request]:
        return list(self.func(obj))

    def __repr__(self) -> str:
        return f"EnqueueRequestsFromMapFunc({self.func!r})"


@dataclass(frozen=True)
class Source:
    """A watched kind with how its events become requests and which events count.

    ``handler`` maps an object to requests; on an update both the old and the new object are
    mapped (so an object that moved from one owner to another wakes both). Defaults:
    :class:`EnqueueRequestForObject` for ``for_``, :class:`EnqueueRequestForOwner` of the
    ``for_`` kind for ``owns``; ``watches`` needs one. ``predicates`` apply to this source only
    (all must pass), on top of the controller-wide ones.
    """

    api_version: str
    kind: str
    handler: MapFunc | None = None
    predicates: Sequence[Predicate] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "predicates", tuple(self.predicates))


GVK = tuple[str, str]


def _as_source(spec: GVK | Source, default_handler: MapFunc | None, what: str) -> Source:
    if isinstance(spec, Source):
        src = spec
    elif isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
        src = Source(spec[0], spec[1])
    else:
        raise TypeError(f"{what}: expected (api_version, kind) or Source, got {spec!r}")
    if src.handler is None:
        if default_handler is None:
            raise TypeError(f"{what}: {src.kind} needs a handler (map function)")
        src = Source(src.api_version, src.kind, default_handler, src.predicates)
    return src


def _watch_source(spec: tuple[GVK, MapFunc] | Source) -> Source:
    if isinstance(spec, Source):
        return _as_source(spec, None, "watches")
    if isinstance(spec, tuple) and len(spec) == 2 and callable(spec[1]):
        gvk, mapper = spec
        return _as_source(gvk, EnqueueRequestsFromMapFunc(mapper), "watches")
    raise TypeError(f"watches: expected ((api_version, kind), map_func) or Source, got {spec!r}")


def _stub(key: str, src: Source) -> Obj:
    namespace, name = split_key(key)
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": src.api_version, "kind": src.kind, "metadata": meta}


# -- the controller -------------------------------------------------------------------------------


class Controller:
    """Watches kinds, queues requests, and runs a reconciler on worker threads.

    ``for_`` is the primary kind: its own events enqueue its own key. ``owns`` are kinds it
    creates with a controller ownerReference to a ``for_`` object: their events enqueue the
    owner. ``watches`` are ``((api_version, kind), map_func)`` pairs (or :class:`Source`)
    for anything else. ``predicates`` filter the events of every source.

    Usually added to a :class:`opkit.manager.Manager`, which binds the shared :attr:`cache`,
    starts the controller once caches are synced (and leadership acquired) and stops it.
    ``rate_limiter`` defaults to client-go's controller rate limiter (per-item exponential
    5 ms .. 1000 s, overall 10 qps burst 100).
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler | ReconcileFunc,
        *,
        for_: GVK | Source,
        owns: Sequence[GVK | Source] = (),
        watches: Sequence[tuple[GVK, MapFunc] | Source] = (),
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Request] | None = None,
        predicates: Sequence[Predicate] = (),
        clock: Clock | None = None,
        cache_sync_timeout: float = 120.0,
        need_leader_election: bool = True,
    ) -> None:
        if not name:
            raise ValueError("a controller needs a name (it labels its metrics and logs)")
        if max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be at least 1")
        if isinstance(reconciler, Reconciler):
            self._reconcile: ReconcileFunc = reconciler.reconcile
        elif callable(reconciler):
            self._reconcile = reconciler
        else:
            raise TypeError("reconciler must have a reconcile(request) method or be callable")
        self.name = name
        self.reconciler = reconciler
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.need_leader_election = need_leader_election
        self.cache_sync_timeout = cache_sync_timeout
        self.predicates: tuple[Predicate, ...] = tuple(predicates)
        self._clock = clock if clock is not None else REAL_CLOCK

        self.for_ = _as_source(for_, EnqueueRequestForObject(), "for_")
        owner = EnqueueRequestForOwner(self.for_.api_version, self.for_.kind)
        self.owns = [_as_source(o, owner, "owns") for o in owns]
        self.watches = [_watch_source(w) for w in watches]

        self.queue: RateLimitingQueue[Request] = RateLimitingQueue(
            rate_limiter, name=name, clock=self._clock
        )
        self._cache: Cache | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._halted = threading.Event()  # no new reconciles may begin
        self._workers: list[threading.Thread] = []
        self._registrations: list[tuple[SharedInformer, EventHandlerRegistration]] = []
        _metrics.init_controller_metrics(name, max_concurrent_reconciles)

    # -- wiring ---------------------------------------------------------------------------------

    @property
    def sources(self) -> list[Source]:
        """Every watched source: ``for_``, then ``owns``, then ``watches``."""
        return [self.for_, *self.owns, *self.watches]

    def bind(self, cache: Cache) -> None:
        """Use ``cache`` for watching and reading (the manager calls this)."""
        with self._lock:
            if self._cache is not None and self._cache is not cache:
                raise RuntimeError(f"controller {self.name} is already bound to a cache")
            self._cache = cache

    @property
    def cache(self) -> Cache:
        """The cache reconcilers should read from."""
        if self._cache is None:
            raise RuntimeError(f"controller {self.name} is not bound to a cache yet")
        return self._cache

    def enqueue(self, request: Request) -> None:
        """Queue a request from outside the watches (a timer, a webhook, a test)."""
        self.queue.add(request)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, cache: Cache | None = None) -> None:
        """Register the event handlers, wait for them to sync, then start the workers.

        Blocks until the workers run (or :meth:`halt`/:meth:`stop` is called meanwhile);
        raises :class:`CacheSyncTimeoutError` if a source does not sync in
        ``cache_sync_timeout`` seconds. Starts the cache if nobody did.
        """
        if cache is not None:
            self.bind(cache)
        cache = self.cache
        with self._lock:
            if self._stopped:
                return
            if self._started:
                raise RuntimeError(f"controller {self.name} was already started")
            self._started = True
        for src in self.sources:
            handler = src.handler
            if isinstance(handler, EnqueueRequestForOwner) and handler.owner_namespaced is None:
                handler.owner_namespaced = cache.is_namespaced(handler.api_version, handler.kind)
        informers = [(src, cache.informer_for(src.api_version, src.kind)) for src in self.sources]
        with self._lock:
            if self._stopped:
                return
            for src, informer in informers:
                reg = self._register(src, informer)
                self._registrations.append((informer, reg))
        if not cache.started:
            cache.start()
        else:
            cache.factory.start()  # informers first used by this controller

        def synced() -> bool:
            return all(reg.has_synced() for _, reg in self._registrations)

        if not _wait_synced(synced, self.cache_sync_timeout, self._halted):
            if self._halted.is_set():
                return
            raise CacheSyncTimeoutError(
                f"controller {self.name}: timed out waiting for caches to sync"
            )
        with self._lock:
            if self._stopped:
                return
            for i in range(self.max_concurrent_reconciles):
                t = threading.Thread(
                    target=self._worker, name=f"controller-{self.name}-worker-{i}", daemon=True
                )
                self._workers.append(t)
                t.start()
        _logger.info(
            "controller started", controller=self.name, workers=self.max_concurrent_reconciles
        )

    def halt(self) -> None:
        """Stop reconciling at once: no reconcile starts after this returns (lease lost).

        Reconciles already running finish; nothing waits for them here.
        """
        self._halted.set()
        self.queue.shut_down()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop: no new reconciles, wait up to ``timeout`` seconds for running ones, and
        detach from the informers. Returns True if every worker has ended."""
        with self._lock:
            self._stopped = True
            registrations = list(self._registrations)
            self._registrations.clear()
            workers = list(self._workers)
        self.halt()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in workers:
            if t is threading.current_thread():
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for informer, reg in registrations:
            if not informer.stopped:
                informer.remove_event_handler(reg)
        alive = [t.name for t in workers if t.is_alive()]
        if alive:
            _logger.warning(
                "reconciles still running after shutdown timeout",
                controller=self.name,
                workers=alive,
            )
        return not alive

    @property
    def started(self) -> bool:
        return self._started

    # -- event handling -------------------------------------------------------------------------

    def _register(self, src: Source, informer: SharedInformer) -> EventHandlerRegistration:
        predicates = (*self.predicates, *src.predicates)
        handler = src.handler
        assert handler is not None
        queue = self.queue
        name = self.name

        def enqueue(objs: Iterable[Obj]) -> None:
            seen: set[Request] = set()
            for obj in objs:
                try:
                    requests = handler(obj)
                except Exception:
                    _logger.exception("event handler failed", controller=name, kind=src.kind)
                    continue
                for req in requests:
                    if req not in seen:
                        seen.add(req)
                        queue.add(req)

        def on_add(obj: Obj, _initial: bool) -> None:
            if all(p.create(obj) for p in predicates):
                enqueue((obj,))

        def on_update(old: Obj, new: Obj) -> None:
            if all(p.update(old, new) for p in predicates):
                enqueue((new, old))

        def on_delete(obj: Obj | DeletedFinalStateUnknown) -> None:
            if isinstance(obj, DeletedFinalStateUnknown):
                obj = obj.obj if obj.obj is not None else _stub(obj.key, src)
            if all(p.delete(obj) for p in predicates):
                enqueue((obj,))

        return informer.add_event_handler(on_add, on_update, on_delete)

    # -- workers --------------------------------------------------------------------------------

    def _worker(self) -> None:
        queue = self.queue
        while True:
            request, shutdown = queue.get()
            if shutdown or request is None:
                return
            try:
                if self._halted.is_set():
                    return
                self._reconcile_handler(request)
            finally:
                queue.done(request)

    def _reconcile_handler(self, request: Request) -> None:
        name = self.name
        active = _metrics.CONTROLLER_ACTIVE_WORKERS.labels(controller=name)
        with _log.reconcile_context(name, request.key):
            active.inc()
            started = self._clock.monotonic()
            try:
                result = self._reconcile(request)
            except TerminalError as exc:
                self.queue.forget(request)
                _metrics.RECONCILE_TOTAL.labels(controller=name, result="error").inc()
                _metrics.RECONCILE_ERRORS_TOTAL.labels(controller=name).inc()
                _metrics.TERMINAL_RECONCILE_ERRORS_TOTAL.labels(controller=name).inc()
                _logger.error("reconciler error (terminal, not requeued)", error=str(exc))
                return
            except Exception:
                self.queue.add_rate_limited(request)
                _metrics.RECONCILE_TOTAL.labels(controller=name, result="error").inc()
                _metrics.RECONCILE_ERRORS_TOTAL.labels(controller=name).inc()
                _logger.exception("reconciler error")
                return
            finally:
                elapsed = max(0.0, self._clock.monotonic() - started)
                _metrics.RECONCILE_TIME_SECONDS.labels(controller=name).observe(elapsed)
                active.dec()
            self._after(request, result)

    def _after(self, request: Request, result: object) -> None:
        name = self.name
        if result is None:
            result = Result()
        if not isinstance(result, Result):
            _logger.warning(
                "reconcile returned something other than a Result; treated as success",
                returned=repr(result),
            )
            result = Result()
        if result.requeue_after > 0:
            self.queue.forget(request)
            self.queue.add_after(request, result.requeue_after)
            outcome = "requeue_after"
        elif result.requeue:
            self.queue.add_rate_limited(request)
            outcome = "requeue"
        else:
            self.queue.forget(request)
            outcome = "success"
        _metrics.RECONCILE_TOTAL.labels(controller=name, result=outcome).inc()
        _logger.debug("reconcile done", result=outcome)

    def __repr__(self) -> str:
        return f"Controller({self.name!r}, for_={self.for_.kind}.{self.for_.api_version})"
