"""SharedInformer: one list+watch feeding one cache and any number of event handlers.

Pipeline: Reflector -> DeltaFIFO -> (cache update + notification) -> one buffer and one thread
per handler. The cache is updated before handlers hear about a change, so a handler that reads
the cache sees at least the state it was told about. Each handler's buffer is unbounded, so a
slow handler delays only itself; its notifications arrive in order; an exception it raises is
logged and the next notification is delivered.

The first list skips the per-object queueing: the FIFO hands it over whole, the cache is filled
in one pass and each handler gets one buffer entry for all its initial adds (the same
notifications, in list order). Threads are woken only when they wait, never per event.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from opkit._fifo import (
    Delta,
    DeltaFIFO,
    DeltaType,
    FIFOClosedError,
    InitialList,
    PoppedItem,
)
from opkit._reflector import (
    ListerWatcher,
    Reflector,
    ReflectorConfig,
    ResourceClientListerWatcher,
    _StopSignal,
)
from opkit._store import (
    DeletedFinalStateUnknown,
    IndexFunc,
    Obj,
    Store,
    Transform,
    drop_managed_fields,
)
from opkit.client import ResourceClient
from opkit.clock import REAL_CLOCK, Clock

__all__ = [
    "MINIMUM_RESYNC_PERIOD",
    "EventHandlerRegistration",
    "SharedInformer",
    "wait_for_cache_sync",
]

log = logging.getLogger("opkit.informer")

MINIMUM_RESYNC_PERIOD = 1.0
"""Handlers asking for a shorter (non-zero) resync period get this (client-go)."""

SYNCED_POLL_PERIOD = 0.1
"""How often :func:`wait_for_cache_sync` checks (client-go ``syncedPollPeriod``)."""

_JOIN_TIMEOUT = 30.0

AddFunc = Callable[..., object]
UpdateFunc = Callable[[Obj, Obj], object]
DeleteFunc = Callable[[Obj | DeletedFinalStateUnknown], object]

_DELETED = DeltaType.DELETED
_ADD = 0
_UPDATE = 1
_DELETE = 2
_ADD_INITIAL = 3
# (kind, a, b): add -> (obj, is_in_initial_list); update -> (old, new); delete -> (obj, None);
# add_initial -> (list of objects, None): an initial-list add for each, in one buffer entry.
_Note = tuple[int, Any, Any]


def _wants_initial_flag(func: Callable[..., object]) -> bool:
    """Whether an add handler takes ``(obj, is_in_initial_list)`` rather than just ``(obj)``.

    Only *required* positional parameters count, so ``lambda o, sink=sink: ...`` gets one
    argument.
    """
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return True
    required = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            required += 1
    return required >= 2


class _Listener:
    """One handler: an unbounded buffer drained by a dedicated thread."""

    def __init__(
        self,
        *,
        on_add: AddFunc | None,
        on_update: UpdateFunc | None,
        on_delete: DeleteFunc | None,
        requested_resync: float,
        resync_period: float,
        clock: Clock,
        name: str,
    ) -> None:
        self.on_add = on_add
        self.add_takes_flag = on_add is not None and _wants_initial_flag(on_add)
        self.on_update = on_update
        self.on_delete = on_delete
        self.requested_resync = requested_resync
        self.resync_period = resync_period
        self.next_resync = clock.monotonic() + resync_period
        self.name = name
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle = False  # the thread waits for notifications: only then is a notify needed
        self._buffer: deque[_Note] = deque()
        # pending initial-list notifications = added - delivered; ``_initial_delivered`` has a
        # single writer (this listener's thread), so delivery takes no lock per notification.
        self._initial_added = 0
        self._initial_delivered = 0
        self._stopped = False
        self.thread: threading.Thread | None = None

    def add(self, notes: list[_Note], initial: int) -> None:
        if not notes:
            return
        with self._lock:
            if self._stopped:
                return
            self._buffer.extend(notes)
            self._initial_added += initial
            if self._idle:
                self._cond.notify()

    def add_initial(self, objs: list[Obj]) -> None:
        """An initial-list add for each object, as one buffer entry."""
        if objs:
            self.add([(_ADD_INITIAL, objs, None)], len(objs))

    def pending_initial(self) -> int:
        with self._lock:
            return self._initial_added - self._initial_delivered

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._buffer.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        cond = self._cond
        on_add, on_update, on_delete = self.on_add, self.on_update, self.on_delete
        add_flag = self.add_takes_flag
        while True:
            with self._lock:
                while not self._buffer and not self._stopped:
                    self._idle = True
                    cond.wait()
                    self._idle = False
                if self._stopped:
                    return
                batch = self._buffer
                self._buffer = deque()
            for kind, a, b in batch:
                if self._stopped:
                    return
                if kind == _ADD_INITIAL:
                    if not self._deliver_initial(a):
                        return
                    continue
                try:
                    if kind == _ADD:
                        if on_add is not None:
                            if add_flag:
                                on_add(a, b)
                            else:
                                on_add(a)
                    elif kind == _UPDATE:
                        if on_update is not None:
                            on_update(a, b)
                    elif on_delete is not None:
                        on_delete(a)
                except Exception:
                    log.exception("%s: event handler raised; notification skipped", self.name)
                if kind == _ADD and b:
                    self._initial_delivered += 1

    def _deliver_initial(self, objs: list[Obj]) -> bool:
        """``on_add(obj, True)`` for each; False if the listener stopped meanwhile."""
        on_add = self.on_add
        if on_add is None:
            self._initial_delivered += len(objs)
            return True
        add_flag = self.add_takes_flag
        for obj in objs:
            if self._stopped:
                return False
            try:
                if add_flag:
                    on_add(obj, True)
                else:
                    on_add(obj)
            except Exception:
                log.exception("%s: event handler raised; notification skipped", self.name)
            self._initial_delivered += 1
        return True


class EventHandlerRegistration:
    """Returned by :meth:`SharedInformer.add_event_handler`; pass it back to remove the handler."""

    def __init__(self, informer: SharedInformer, listener: _Listener) -> None:
        self._informer = informer
        self._listener = listener

    def has_synced(self) -> bool:
        """The informer synced and this handler has been handed every initial-list object."""
        return self._informer.has_synced() and self._listener.pending_initial() == 0

    @property
    def resync_period(self) -> float:
        """The effective resync period after the minimum/check-period rules (0 = never)."""
        return self._listener.resync_period


class _Synced(Protocol):
    def has_synced(self) -> bool: ...


class SharedInformer:
    """A cache of one resource collection kept current by a reflector, with many handlers.

    ``source`` is a :class:`ListerWatcher` or an ``opkit.client.ResourceClient`` (then
    ``namespace`` and the selectors choose the collection). ``resync_period`` is the default
    for handlers and the resync check period (0 = no resyncs). ``transform`` runs on each
    object before it enters the cache; the default drops ``metadata.managedFields`` and None
    keeps objects untouched. Objects in the cache and in notifications are shared: do not
    mutate them.
    """

    def __init__(
        self,
        source: ListerWatcher | ResourceClient,
        *,
        resync_period: float = 0.0,
        indexers: Mapping[str, IndexFunc] | None = None,
        transform: Transform | None = drop_managed_fields,
        clock: Clock | None = None,
        name: str = "",
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        reflector_config: ReflectorConfig | None = None,
    ) -> None:
        if not isinstance(source, ResourceClient):
            if namespace is not None or label_selector or field_selector:
                raise TypeError(
                    "namespace/label_selector/field_selector apply to a ResourceClient source; "
                    "a ListerWatcher chooses its own collection"
                )
            lister_watcher: ListerWatcher = source
        else:
            lister_watcher = ResourceClientListerWatcher(
                source, namespace, label_selector=label_selector, field_selector=field_selector
            )
        self.name = name or _describe_source(source, namespace)
        self._clock = clock if clock is not None else REAL_CLOCK
        self._default_resync = max(float(resync_period), 0.0)
        self._resync_check_period = self._default_resync
        self._indexer = Store(indexers)
        self._fifo = DeltaFIFO(
            known_objects=self._indexer,
            transform=transform,
            initial_list=self._process_initial_list,
        )
        self.reflector = Reflector(
            lister_watcher,
            self._fifo,
            name=self.name,
            clock=self._clock,
            config=reflector_config,
        )
        self._lock = threading.Lock()  # started/stopped flags and the listener set
        self._block_deltas = threading.Lock()  # processing vs. a handler joining mid-stream
        self._listeners: dict[_Listener, bool] = {}  # listener -> is due for resync
        self._started = False
        self._stopped = False
        self._stop_signal = _StopSignal(self._clock)
        self._threads: list[threading.Thread] = []
        self._listener_seq = 0

    # -- handlers -------------------------------------------------------------------------------

    def add_event_handler(
        self,
        on_add: AddFunc | None = None,
        on_update: UpdateFunc | None = None,
        on_delete: DeleteFunc | None = None,
        resync_period: float | None = None,
    ) -> EventHandlerRegistration:
        """Register callbacks; each runs on this handler's own thread, in event order.

        ``on_add(obj, is_in_initial_list)`` (or ``on_add(obj)``), ``on_update(old, new)``,
        ``on_delete(obj_or_tombstone)`` where the tombstone is a
        :class:`DeletedFinalStateUnknown`. A handler added after :meth:`start` first receives an
        add for every cached object. ``resync_period`` defaults to the informer's.
        """
        requested = self._default_resync if resync_period is None else max(resync_period, 0.0)
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"informer {self.name} has stopped; handler not added")
            period = requested
            if period > 0:
                if period < MINIMUM_RESYNC_PERIOD:
                    log.warning(
                        "%s: resync period %.3gs raised to the minimum %.3gs",
                        self.name,
                        period,
                        MINIMUM_RESYNC_PERIOD,
                    )
                    period = MINIMUM_RESYNC_PERIOD
                if period < self._resync_check_period:
                    if self._started:
                        log.warning(
                            "%s: resync period %.3gs raised to the check period %.3gs because "
                            "the informer already started",
                            self.name,
                            period,
                            self._resync_check_period,
                        )
                        period = self._resync_check_period
                    else:
                        self._resync_check_period = period
                        for other in self._listeners:
                            other.resync_period = _determine_resync_period(
                                other.requested_resync, period
                            )
            self._listener_seq += 1
            listener = _Listener(
                on_add=on_add,
                on_update=on_update,
                on_delete=on_delete,
                requested_resync=period,
                resync_period=_determine_resync_period(period, self._resync_check_period),
                clock=self._clock,
                name=f"informer-{self.name}-handler-{self._listener_seq}",
            )
            started = self._started
            if not started:
                self._listeners[listener] = False
        if started:
            with self._block_deltas:
                with self._lock:
                    if self._stopped:  # stop() won the race; it would not join this thread
                        raise RuntimeError(f"informer {self.name} has stopped; handler not added")
                    self._listeners[listener] = False
                listener.add_initial(self._indexer.list())
                listener.start()
        return EventHandlerRegistration(self, listener)

    def remove_event_handler(self, registration: EventHandlerRegistration) -> None:
        """Stop delivering to a handler; its undelivered notifications are dropped."""
        listener = registration._listener
        with self._lock:
            if self._listeners.pop(listener, None) is None:
                return
        listener.stop()
        if listener.thread is not None and listener.thread is not threading.current_thread():
            listener.thread.join(_JOIN_TIMEOUT)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reflector, the processing thread and every handler's thread; returns."""
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"informer {self.name} was stopped and cannot restart")
            if self._started:
                return
            self._started = True
            listeners = list(self._listeners)
        for listener in listeners:
            listener.start()
        self._spawn(self.reflector.run, "reflector")
        self._spawn(self._process_loop, "process")
        if self._resync_check_period > 0:
            self._spawn(self._resync_loop, "resync")

    def run(self, stop_event: threading.Event) -> None:
        """Start, block until ``stop_event`` is set (or :meth:`stop` is called), then stop."""
        self.start()
        while not stop_event.wait(SYNCED_POLL_PERIOD):
            if self._stop_signal.is_set():
                break
        self.stop()

    def stop(self) -> None:
        """Stop every thread of this informer and wait for them to finish."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            listeners = list(self._listeners)
        self._stop_signal.set()
        self.reflector.stop()
        self._fifo.close()
        for listener in listeners:
            listener.stop()
        current = threading.current_thread()
        threads = self._threads + [lst.thread for lst in listeners if lst.thread is not None]
        for thread in threads:
            if thread is current:
                continue
            thread.join(_JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("%s: thread %s did not stop in time", self.name, thread.name)

    @property
    def started(self) -> bool:
        return self._started

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"informer-{self.name}-{what}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- state ----------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """True once the first full list has been applied to the cache."""
        return self._fifo.has_synced()

    @property
    def store(self) -> Store:
        return self._indexer

    @property
    def indexer(self) -> Store:
        return self._indexer

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self._indexer.add_indexers(indexers)

    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version()

    @property
    def resync_check_period(self) -> float:
        return self._resync_check_period

    # -- processing -----------------------------------------------------------------------------

    def _process_loop(self) -> None:
        while not self._stop_signal.is_set():
            try:
                self._fifo.pop_batch(self._process_batch)
            except FIFOClosedError:
                return
            except Exception:
                log.exception("%s: processing deltas failed", self.name)

    def _process_batch(self, batch: list[PoppedItem]) -> None:
        """Apply popped deltas to the cache and queue the notifications (client-go
        ``processDeltas``), one cache lock round-trip per batch."""
        if self._stop_signal.is_set():
            return
        indexer = self._indexer
        full: list[_Note] = []
        sync_only: list[int] = []  # positions in ``full`` meant for resyncing handlers only
        initial = 0
        with self._block_deltas:
            with indexer._lock:
                put = indexer._put_locked
                remove = indexer._remove_locked
                for key, deltas, in_initial in batch:
                    for dtype, obj in deltas:
                        try:
                            if dtype is _DELETED:
                                remove(key)
                                full.append((_DELETE, obj, None))
                                continue
                            if isinstance(obj, DeletedFinalStateUnknown):
                                continue  # only Deleted deltas carry tombstones
                            old = put(key, obj)
                        except Exception:
                            log.exception("%s: cannot apply %s to the cache", self.name, key)
                            continue
                        if old is None:
                            full.append((_ADD, obj, in_initial))
                            if in_initial:
                                initial += 1
                        else:
                            # Same resourceVersion: a resync, not a change.
                            old_meta = old.get("metadata")
                            new_meta = obj.get("metadata")
                            if (
                                old_meta.get("resourceVersion")
                                if isinstance(old_meta, dict)
                                else None
                            ) == (
                                new_meta.get("resourceVersion")
                                if isinstance(new_meta, dict)
                                else None
                            ):
                                sync_only.append(len(full))
                            full.append((_UPDATE, old, obj))
            if sync_only:
                skip = set(sync_only)
                regular = [n for i, n in enumerate(full) if i not in skip]
            else:
                regular = full
            with self._lock:
                targets = list(self._listeners.items())
            for listener, syncing in targets:
                listener.add(full if syncing else regular, initial)

    def _process_initial_list(self, first: InitialList) -> None:
        """The first list, whole (the FIFO calls this instead of queueing it, under its lock):
        fill the empty cache in one pass and hand each handler one batch of adds."""
        if self._stop_signal.is_set():
            return
        indexer = self._indexer
        if len(indexer):  # written to directly meanwhile: take the general path
            replaced = DeltaType.REPLACED
            self._process_batch(
                [
                    PoppedItem(key, [Delta(replaced, obj)], True)
                    for key, obj in first.objects.items()
                ]
            )
            return

        def failed(key: str, err: Exception) -> None:
            log.error("%s: cannot apply %s to the cache", self.name, key, exc_info=err)

        with self._block_deltas:
            with indexer._lock:
                added = indexer._add_all_locked(first.objects, failed, first.namespaces)
            with self._lock:
                targets = list(self._listeners)
            for listener in targets:
                listener.add_initial(added)

    def _resync_loop(self) -> None:
        period = self._resync_check_period
        while not self._stop_signal.wait(period):
            if self._fifo.has_synced() and self._should_resync():
                self._fifo.resync()

    def _should_resync(self) -> bool:
        now = self._clock.monotonic()
        due = False
        with self._lock:
            for listener in self._listeners:
                syncing = listener.resync_period > 0 and now >= listener.next_resync
                self._listeners[listener] = syncing
                if syncing:
                    due = True
                    listener.next_resync = now + listener.resync_period
        return due


def _determine_resync_period(desired: float, check: float) -> float:
    if desired == 0:
        return 0.0
    if check == 0:
        log.warning("resync period %.3gs ignored: this informer does not resync", desired)
        return 0.0
    return max(desired, check)


def _describe_source(source: Any, namespace: str | None) -> str:
    if isinstance(source, ResourceClient):
        name = source.resource.group_resource
        return f"{namespace}/{name}" if namespace else name
    return type(source).__name__


def wait_for_cache_sync(
    timeout: float | None, *informers: _Synced, clock: Clock | None = None
) -> bool:
    """Poll every 100 ms (of ``clock`` time) until all ``has_synced()``; False on timeout."""
    clock = clock if clock is not None else REAL_CLOCK
    cond = threading.Condition(threading.Lock())
    deadline = None if timeout is None else clock.monotonic() + timeout
    with cond:
        while True:
            if all(inf.has_synced() for inf in informers):
                return True
            now = clock.monotonic()
            if deadline is not None and now >= deadline:
                return False
            step = SYNCED_POLL_PERIOD
            if deadline is not None:
                step = min(step, deadline - now)
            clock.wait_until(cond, now + step)
