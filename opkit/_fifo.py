"""DeltaFIFO: the queue between a reflector and the informer cache (client-go ``DeltaFIFO``).

For each object key it accumulates the changes (deltas) not yet processed, and hands keys out
in the order they first became dirty. ``replace`` (a relist) compares the new list with what
the cache knows and queues a ``Deleted`` delta carrying a :class:`DeletedFinalStateUnknown`
tombstone for every object that vanished while the watch was away: that is how handlers learn
about deletions they never saw an event for.

Invariants: a key is in the queue if and only if it has pending deltas; consecutive
``Deleted`` deltas collapse into one (the one with a real object beats a tombstone).

The very first list into an empty queue and cache has nothing to compare or merge with, so an
``initial_list`` consumer can take it whole instead of one queued delta per object: for 10,000
objects that is most of an informer's own start-up cost.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from enum import StrEnum
from itertools import chain
from typing import NamedTuple, Protocol

from opkit._store import (
    DeletedFinalStateUnknown,
    KeyFunc,
    Obj,
    Transform,
    deletion_handling_key,
    drop_managed_fields,
)

__all__ = [
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "FIFOClosedError",
    "InitialList",
    "InitialListHandler",
    "KnownObjects",
    "PoppedItem",
]


class DeltaType(StrEnum):
    ADDED = "Added"
    UPDATED = "Updated"
    DELETED = "Deleted"
    REPLACED = "Replaced"
    """The object was in a (re)list."""
    SYNC = "Sync"
    """Periodic resync from the cache (or a relist when ``emit_replaced`` is off)."""


class Delta(NamedTuple):
    type: DeltaType
    object: Obj | DeletedFinalStateUnknown


class PoppedItem(NamedTuple):
    key: str
    deltas: list[Delta]
    is_in_initial_list: bool


class KnownObjects(Protocol):
    """What the FIFO needs from the cache it feeds (to detect deletions and to resync)."""

    def list_keys(self) -> list[str]: ...

    def get_by_key(self, key: str) -> Obj | None: ...


class FIFOClosedError(Exception):
    """Raised by ``pop`` once the FIFO is closed."""


class InitialList(NamedTuple):
    """A first list taken whole (see :class:`DeltaFIFO`)."""

    objects: dict[str, Obj]
    """Key -> transformed object, in list order; keys are unique."""
    namespaces: dict[str, list[str]] | None
    """The keys by ``metadata.namespace`` (``""`` when unset) as read while keying them, so the
    cache can index them without reading every object again; None unless every key came from
    the default key function."""


InitialListHandler = Callable[[InitialList], None]

log = logging.getLogger("opkit.informer")

_ADDED = DeltaType.ADDED
_UPDATED = DeltaType.UPDATED
_DELETED = DeltaType.DELETED
_SYNC = DeltaType.SYNC
# NamedTuple construction runs Python code; building the tuple directly does not (per event).
_new_tuple = tuple.__new__


class DeltaFIFO:
    """Per-key delta accumulation with FIFO hand-out; see the module docstring.

    ``transform`` runs once per object as it enters (never on tombstones or resync deltas,
    whose objects already went through it).

    ``initial_list``, if given, takes the first list whole when nothing came before it (the
    queue and the cache are empty): instead of a ``Replaced`` delta per object it gets every
    listed object at once, keyed and transformed, called under the FIFO lock like a ``pop``
    ``process``; :meth:`has_synced` is true when it returns. The informer fills its cache that
    way in one pass. A list with a key twice takes the ordinary path.
    """

    def __init__(
        self,
        *,
        key_func: KeyFunc = deletion_handling_key,
        known_objects: KnownObjects | None = None,
        transform: Transform | None = None,
        emit_replaced: bool = True,
        initial_list: InitialListHandler | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0  # consumers blocked in pop: only they need a notify
        self._items: dict[str, list[Delta]] = {}
        self._queue: deque[str] = deque()
        self._key_func = key_func
        self._known = known_objects
        self._transform = transform
        self._replace_type = DeltaType.REPLACED if emit_replaced else DeltaType.SYNC
        self._initial_list = initial_list
        self._populated = False
        self._initial_population_count = 0
        self._closed = False

    # -- producer side (the reflector) ----------------------------------------------------------

    def add(self, obj: Obj) -> None:
        with self._lock:
            self._populated = True
            self._queue_new_locked(_ADDED, obj)

    def update(self, obj: Obj) -> None:
        with self._lock:
            self._populated = True
            self._queue_new_locked(_UPDATED, obj)

    def delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """Queue a deletion, unless neither the queue nor the cache knows the key."""
        key = self._key_func(obj)
        with self._lock:
            self._populated = True
            if key not in self._items and (
                self._known is None or self._known.get_by_key(key) is None
            ):
                return
            self._queue_action_locked(_DELETED, obj, key)

    def replace(self, items: Iterable[Obj], resource_version: str = "") -> None:
        """Queue a Replaced delta per listed object and a tombstone per vanished key."""
        del resource_version  # the FIFO does not track RVs; the reflector does
        action = self._replace_type
        with self._lock:
            queued = self._items
            queue = self._queue
            whole = (
                self._initial_list is not None
                and not self._populated
                and not queued
                and (self._known is None or not self._known.list_keys())
            )
            listed, rest, namespaces = self._take_list(items, whole)
            if whole and not rest and self._initial_list is not None:
                self._initial_list(InitialList(listed, namespaces))
                self._populated = True
                self._initial_population_count = 0
                return
            keys = set(listed)
            keys.update(key for key, _ in rest)
            new_delta = _new_tuple
            for key, obj in chain(listed.items(), rest):
                deltas = queued.get(key)
                if deltas is None:
                    queued[key] = [new_delta(Delta, (action, obj))]
                    queue.append(key)
                else:
                    deltas.append(new_delta(Delta, (action, obj)))
            # Keys still queued but absent from the new list.
            for key, deltas in list(self._items.items()):
                if key in keys:
                    continue
                newest = deltas[-1].object
                last = newest.obj if isinstance(newest, DeletedFinalStateUnknown) else newest
                self._queue_action_locked(_DELETED, DeletedFinalStateUnknown(key, last), key)
            # Keys the cache holds, with nothing queued, absent from the new list.
            if self._known is not None:
                for key in self._known.list_keys():
                    if key in keys or key in self._items:
                        continue
                    known = self._known.get_by_key(key)
                    self._queue_action_locked(_DELETED, DeletedFinalStateUnknown(key, known), key)
            if not self._populated:
                self._populated = True
                self._initial_population_count = len(self._queue)
            if self._waiting:
                self._cond.notify_all()

    def _take_list(
        self, items: Iterable[Obj], with_namespaces: bool
    ) -> tuple[dict[str, Obj], list[tuple[str, Obj]], dict[str, list[str]] | None]:
        """Key and transform listed objects: ``{key: object}`` in list order up to the first
        repeated key, the rest as pairs, and (if asked) :attr:`InitialList.namespaces`."""
        key_func = self._key_func
        transform = self._transform
        listed: dict[str, Obj] = {}
        rest: list[tuple[str, Obj]] = []
        # The hot loop of every (re)list: the default key function and transform inline.
        inline = key_func is deletion_handling_key and (
            transform is None or transform is drop_managed_fields
        )
        drop = transform is not None
        namespaces: dict[str, list[str]] | None = {} if inline and with_namespaces else None
        for item in items:
            meta = item.get("metadata") if inline and type(item) is dict else None
            name = meta.get("name") if type(meta) is dict else None
            namespace = meta.get("namespace") if type(meta) is dict else None
            if (
                type(name) is str
                and name
                and type(meta) is dict
                and (namespace is None or type(namespace) is str)
            ):
                key = f"{namespace}/{name}" if namespace else name
                if drop:
                    meta.pop("managedFields", None)
                obj = item
                if namespaces is not None:
                    ns_keys = namespaces.get(namespace or "")
                    if ns_keys is None:
                        namespaces[namespace or ""] = [key]
                    else:
                        ns_keys.append(key)
            else:
                namespaces = None
                try:
                    key = key_func(item)
                    obj = transform(item) if transform is not None else item
                except Exception:
                    log.exception("dropping a listed object the queue cannot take: %.200r", item)
                    continue
            if rest or key in listed:
                rest.append((key, obj))
            else:
                listed[key] = obj
        return listed, rest, namespaces

    def resync(self) -> None:
        """Queue a Sync delta for every cached object that has no pending deltas."""
        if self._known is None:
            return
        with self._lock:
            for key in self._known.list_keys():
                if key in self._items:
                    continue
                obj = self._known.get_by_key(key)
                if obj is not None:
                    self._queue_action_locked(_SYNC, obj, key)

    def _queue_new_locked(self, action: DeltaType, obj: Obj) -> None:
        """:meth:`_queue_action_locked` for the reflector's adds and updates (one event each)."""
        if obj.__class__ is not dict:
            self._queue_action_locked(action, obj)
            return
        key = self._key_func(obj)
        transform = self._transform
        if transform is not None:
            if transform is drop_managed_fields:  # the informers' default, inline
                meta = obj.get("metadata")
                if isinstance(meta, dict):
                    meta.pop("managedFields", None)
            else:
                obj = transform(obj)
        deltas = self._items.get(key)
        if deltas is None:
            self._items[key] = [_new_tuple(Delta, (action, obj))]
            self._queue.append(key)
            if self._waiting:
                self._cond.notify()
        else:
            deltas.append(_new_tuple(Delta, (action, obj)))

    def _queue_action_locked(
        self, action: DeltaType, obj: Obj | DeletedFinalStateUnknown, key: str | None = None
    ) -> str:
        if key is None:
            key = self._key_func(obj)
        if (
            self._transform is not None
            and action is not _SYNC
            and not isinstance(obj, DeletedFinalStateUnknown)
        ):
            obj = self._transform(obj)
        delta = _new_tuple(Delta, (action, obj))
        deltas = self._items.get(key)
        if deltas is None:
            self._items[key] = [delta]
            self._queue.append(key)
            if self._waiting:
                self._cond.notify()
            return key
        if action is _DELETED and deltas[-1].type is _DELETED:
            # Only back-to-back deletions are deduplicated; keep the more informative one.
            if isinstance(deltas[-1].object, DeletedFinalStateUnknown):
                deltas[-1] = delta
            return key
        deltas.append(delta)
        return key

    # -- consumer side (the informer) -----------------------------------------------------------

    def pop(self, process: Callable[[PoppedItem], None]) -> None:
        """Block until a key is queued, then call ``process`` on it under the FIFO lock.

        Holding the lock while processing keeps ``replace``/``resync`` from racing with the
        cache update that processing makes.
        """
        self.pop_batch(lambda batch: process(batch[0]), max_items=1)

    def pop_batch(self, process: Callable[[list[PoppedItem]], None], max_items: int = 256) -> None:
        """Like :meth:`pop` for up to ``max_items`` keys at once (one lock round-trip)."""
        with self._lock:
            while not self._queue:
                if self._closed:
                    raise FIFOClosedError("DeltaFIFO is closed")
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            batch: list[PoppedItem] = []
            queue = self._queue
            items = self._items
            take = min(len(queue), max_items)
            initial = min(take, self._initial_population_count)
            self._initial_population_count -= initial
            for i in range(take):
                key = queue.popleft()
                batch.append(_new_tuple(PoppedItem, (key, items.pop(key), i < initial)))
            process(batch)

    def close(self) -> None:
        """Wake consumers; ``pop`` raises :class:`FIFOClosedError` once the queue is empty."""
        with self._lock:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def has_synced(self) -> bool:
        """True once the first ``replace`` (or any write) happened and its items were popped."""
        with self._lock:
            return self._populated and self._initial_population_count == 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def list_keys(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def get_by_key(self, key: str) -> list[Delta] | None:
        """A copy of the pending deltas for ``key``, or None."""
        with self._lock:
            deltas = self._items.get(key)
            return list(deltas) if deltas is not None else None
