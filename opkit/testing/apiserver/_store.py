"""The MVCC object store behind the embedded API server.

One global revision counter (META-1) orders every write of every kind, like etcd. Objects
live in buckets (``ResourceType.storage``) keyed by ``(namespace, name)``; each stored
object keeps its parsed dict *and* its serialized JSON so reads never re-encode. Stored
dicts are treated as immutable: writers always hand over a fresh dict.

A bounded event history (WATCH-6) backs three things: watches that start at a past
revision, lists at an exact past revision, and continue tokens (PAGE-1). Past states are
rebuilt by undoing history events, so anything older than the compaction point is gone
(410 Expired).
"""

from __future__ import annotations

import builtins
import json
import queue
import threading
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "ExpiredError",
    "NotFoundError",
    "Store",
    "StoreEvent",
    "Stored",
    "Watcher",
    "dumps",
]

Obj = dict[str, Any]
Key = tuple[str, str]

_MAX_KEY_CHAR = "\U0010ffff"


def dumps(obj: Any) -> bytes:
    """Compact JSON as the server sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class AlreadyExistsError(Exception):
    pass


class NotFoundError(Exception):
    pass


class ConflictError(Exception):
    """The stored revision differs from the one the writer expected."""


class ExpiredError(Exception):
    """The requested revision is older than the retained history."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


class Stored:
    """An object as stored at one revision: dict, serialized bytes and revision."""

    __slots__ = ("obj", "raw", "rev")

    def __init__(self, obj: Obj, raw: bytes, rev: int) -> None:
        self.obj = obj
        self.raw = raw
        self.rev = rev

    def copy_obj(self) -> Obj:
        """A private deep copy that the caller may mutate."""
        result: Obj = json.loads(self.raw)
        return result


class StoreEvent:
    """One history entry. ``obj``/``raw`` is the new state (the last state with the
    deletion revision for DELETED); ``prev`` the state before (None for ADDED)."""

    __slots__ = ("bucket", "key", "obj", "prev", "raw", "rev", "time", "type")

    def __init__(
        self,
        rev: int,
        type_: str,
        bucket: str,
        key: Key,
        *,
        stored: Stored,
        prev: Stored | None,
        at: float,
    ) -> None:
        self.rev = rev
        self.type = type_
        self.bucket = bucket
        self.key = key
        self.obj = stored.obj
        self.raw = stored.raw
        self.prev = prev
        self.time = at


class Watcher:
    """A per-watch queue of store events; writers never block on it."""

    def __init__(self, store: Store, bucket: str, namespace: str | None, min_rev: int) -> None:
        self.store = store
        self.bucket = bucket
        self.namespace = namespace
        self.min_rev = min_rev
        self.queue: queue.SimpleQueue[StoreEvent | None] = queue.SimpleQueue()
        self.stopped = False

    def wants(self, ev: StoreEvent) -> bool:
        return ev.rev > self.min_rev and (self.namespace is None or ev.key[0] == self.namespace)

    def stop(self) -> None:
        """Unregister and wake the consumer (it receives ``None``)."""
        if not self.stopped:
            self.stopped = True
            self.store._remove_watcher(self)
            self.queue.put(None)

    def bookmark_rev(self) -> int | None:
        """The store revision if every event up to it has been taken from the queue."""
        return self.store._bookmark_rev(self)


class _Bucket:
    __slots__ = ("items", "sorted_keys")

    def __init__(self) -> None:
        self.items: dict[Key, Stored] = {}
        self.sorted_keys: list[Key] | None = []

    def keys(self) -> list[Key]:
        if self.sorted_keys is None:
            self.sorted_keys = sorted(self.items)
        return self.sorted_keys


def _ns_range(keys: list[Key], namespace: str | None, after: Key | None) -> tuple[int, int]:
    lo, hi = 0, len(keys)
    if namespace is not None:
        lo = bisect_left(keys, (namespace, ""))
        hi = bisect_left(keys, (namespace, _MAX_KEY_CHAR))
    if after is not None:
        lo = max(lo, bisect_left(keys, (after[0], after[1] + "\x00")))
    return lo, hi


def _with_rv(obj: Obj, rev: int) -> Obj:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["resourceVersion"] = str(rev)
    out["metadata"] = meta
    return out


def same_content(a: Obj, b: Obj) -> bool:
    """Equality that, unlike ``==``, tells ``1`` from ``1.0`` and ``True``."""
    if a != b:
        return False
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Store:
    """Thread-safe MVCC store with history, snapshots and per-watcher queues."""

    def __init__(
        self,
        *,
        history_seconds: float | None = 300.0,
        history_max_events: int = 200_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._rev_changed = threading.Condition(self._lock)
        self._rev = 0
        self._buckets: dict[str, _Bucket] = {}
        self._history: deque[StoreEvent] = deque()
        self._compacted = 0
        self._watchers: dict[str, set[Watcher]] = {}
        self._listeners: list[Callable[[StoreEvent], None]] = []
        self.history_seconds = history_seconds
        self.history_max_events = history_max_events
        self._monotonic = monotonic

    # -- reads -------------------------------------------------------------------------

    @property
    def rev(self) -> int:
        return self._rev

    @property
    def compacted_rev(self) -> int:
        """Highest revision no longer in the history; watches must start at or above."""
        return self._compacted

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def get(self, bucket: str, namespace: str, name: str) -> Stored | None:
        b = self._buckets.get(bucket)
        return None if b is None else b.items.get((namespace, name))

    def get_at(self, bucket: str, namespace: str, name: str, rev: int) -> Stored | None:
        """The object as it was at ``rev`` (ExpiredError when compacted away)."""
        with self._lock:
            self._check_rev(rev)
            key = (namespace, name)
            b = self._buckets.get(bucket)
            state = None if b is None else b.items.get(key)
            for ev in reversed(self._history):
                if ev.rev <= rev:
                    break
                if ev.bucket == bucket and ev.key == key:
                    state = ev.prev
            return state

    def list(
        self,
        bucket: str,
        namespace: str | None = None,
        *,
        rev: int | None = None,
        after: Key | None = None,
    ) -> tuple[list[Stored], int]:
        """Objects sorted by (namespace, name), optionally at a past revision and after a
        key; returns the revision the list reflects."""
        with self._lock:
            b = self._buckets.get(bucket)
            if rev is None or rev >= self._rev:
                if b is None:
                    return [], self._rev
                keys = b.keys()
                lo, hi = _ns_range(keys, namespace, after)
                items = b.items
                return [items[k] for k in keys[lo:hi]], self._rev
            self._check_rev(rev)
            snap = dict(b.items) if b is not None else {}
            for ev in reversed(self._history):
                if ev.rev <= rev:
                    break
                if ev.bucket != bucket:
                    continue
                if ev.prev is None:
                    snap.pop(ev.key, None)
                else:
                    snap[ev.key] = ev.prev
            keys = sorted(snap)
            lo, hi = _ns_range(keys, namespace, after)
            return [snap[k] for k in keys[lo:hi]], rev

    def count(self, bucket: str, namespace: str | None = None) -> int:
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None:
                return 0
            if namespace is None:
                return len(b.items)
            lo, hi = _ns_range(b.keys(), namespace, None)
            return hi - lo

    def bucket_names(self) -> builtins.list[str]:
        with self._lock:
            return [name for name, b in self._buckets.items() if b.items]

    def _check_rev(self, rev: int) -> None:
        if rev < self._compacted:
            raise ExpiredError(rev, self._compacted)

    # -- writes ------------------------------------------------------------------------

    def create(self, bucket: str, namespace: str, name: str, obj: Obj) -> Stored:
        """Store a new object; sets ``metadata.resourceVersion`` in ``obj``."""
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None:
                b = self._buckets[bucket] = _Bucket()
            key = (namespace, name)
            if key in b.items:
                raise AlreadyExistsError(name)
            rev = self._rev + 1
            obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
            stored = Stored(obj, dumps(obj), rev)
            b.items[key] = stored
            if b.sorted_keys is not None:
                insort(b.sorted_keys, key)
            self._commit(rev, "ADDED", bucket, key, stored=stored, prev=None)
            return stored

    def update(
        self,
        bucket: str,
        namespace: str,
        name: str,
        obj: Obj,
        *,
        expect_rev: int | None = None,
    ) -> tuple[Stored, bool]:
        """Replace an object. Returns ``(stored, changed)``; a write that leaves the
        object's content identical keeps the old revision and emits nothing (META-9)."""
        with self._lock:
            b, key, cur = self._current(bucket, namespace, name, expect_rev)
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(cur.rev)
            if same_content(obj, cur.obj):
                return cur, False
            rev = self._rev + 1
            meta["resourceVersion"] = str(rev)
            stored = Stored(obj, dumps(obj), rev)
            b.items[key] = stored
            self._commit(rev, "MODIFIED", bucket, key, stored=stored, prev=cur)
            return stored, True

    def delete(
        self, bucket: str, namespace: str, name: str, *, expect_rev: int | None = None
    ) -> Stored:
        """Remove an object; returns its last state carrying the deletion revision."""
        with self._lock:
            b, key, cur = self._current(bucket, namespace, name, expect_rev)
            rev = self._rev + 1
            last = _with_rv(cur.obj, rev)
            stored = Stored(last, dumps(last), rev)
            del b.items[key]
            if b.sorted_keys is not None:
                i = bisect_left(b.sorted_keys, key)
                del b.sorted_keys[i]
            self._commit(rev, "DELETED", bucket, key, stored=stored, prev=cur)
            return stored

    def _current(
        self, bucket: str, namespace: str, name: str, expect_rev: int | None
    ) -> tuple[_Bucket, Key, Stored]:
        """The live object to replace or remove (lock held); NotFound / Conflict otherwise."""
        b = self._buckets.get(bucket)
        key = (namespace, name)
        cur = None if b is None else b.items.get(key)
        if cur is None or b is None:
            raise NotFoundError(name)
        if expect_rev is not None and cur.rev != expect_rev:
            raise ConflictError(name)
        return b, key, cur

    def _commit(
        self, rev: int, type_: str, bucket: str, key: Key, *, stored: Stored, prev: Stored | None
    ) -> None:
        self._rev = rev
        now = self._monotonic()
        ev = StoreEvent(rev, type_, bucket, key, stored=stored, prev=prev, at=now)
        hist = self._history
        hist.append(ev)
        self._trim(now)
        for w in self._watchers.get(bucket, ()):
            if w.wants(ev):
                w.queue.put(ev)
        for listener in self._listeners:
            listener(ev)
        self._rev_changed.notify_all()

    def _trim(self, now: float) -> None:
        hist = self._history
        while len(hist) > self.history_max_events:
            self._compacted = hist.popleft().rev
        if self.history_seconds is not None:
            horizon = now - self.history_seconds
            while hist and hist[0].time < horizon:
                self._compacted = hist.popleft().rev

    def compact(self, rev: int | None = None) -> int:
        """Forget history up to ``rev`` (default: everything); returns the new
        compaction revision. Watches and lists older than that now get 410."""
        with self._lock:
            target = self._rev if rev is None else min(rev, self._rev)
            hist = self._history
            while hist and hist[0].rev <= target:
                hist.popleft()
            self._compacted = max(self._compacted, target)
            return self._compacted

    def wait_for_rev(self, rev: int, timeout: float) -> bool:
        """Block until the store reaches ``rev`` or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._rev < rev:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._rev_changed.wait(left)
            return True

    def drop_bucket(self, bucket: str) -> None:
        """Forget an (empty) bucket, e.g. when a CRD goes away."""
        with self._lock:
            b = self._buckets.get(bucket)
            if b is not None and not b.items:
                del self._buckets[bucket]

    # -- watch and listeners -------------------------------------------------------------

    def add_listener(self, fn: Callable[[StoreEvent], None]) -> None:
        """``fn`` runs under the store lock for every event; it must only enqueue."""
        with self._lock:
            self._listeners.append(fn)

    def watch(
        self, bucket: str, namespace: str | None, from_rev: int | None
    ) -> tuple[Watcher, builtins.list[Stored], int]:
        """Register a watcher.

        ``from_rev=None``: returns the current objects (for synthetic ADDED events) and
        delivers later changes. ``from_rev=X``: delivers every change after X from
        history, then live ones (ExpiredError if X is compacted away).
        """
        with self._lock:
            if from_rev is None:
                current, rev = self.list(bucket, namespace)
                w = Watcher(self, bucket, namespace, rev)
                self._watchers.setdefault(bucket, set()).add(w)
                return w, current, rev
            self._check_rev(from_rev)
            w = Watcher(self, bucket, namespace, from_rev)
            if from_rev < self._rev:
                for ev in self._history:
                    if ev.bucket == bucket and w.wants(ev):
                        w.queue.put(ev)
            self._watchers.setdefault(bucket, set()).add(w)
            return w, [], from_rev

    def _remove_watcher(self, w: Watcher) -> None:
        with self._lock:
            ws = self._watchers.get(w.bucket)
            if ws is not None:
                ws.discard(w)

    def _bookmark_rev(self, w: Watcher) -> int | None:
        with self._lock:
            if not w.queue.empty():
                return None
            return max(self._rev, w.min_rev)

    def watcher_count(self) -> int:
        with self._lock:
            return sum(len(ws) for ws in self._watchers.values())
