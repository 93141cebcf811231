"""The informer cache: a thread-safe keyed store of raw object dicts plus secondary indexes.

Objects are the dicts that came off the wire, shared by reference with every reader: the cache
never copies them, so readers must treat them as read-only (copy before mutating). This is what
keeps a 10k-object cache close to the memory and CPU cost of the JSON it was parsed from.

Keys follow client-go's ``MetaNamespaceKeyFunc``: ``"<namespace>/<name>"`` for namespaced
objects and ``"<name>"`` for cluster-scoped ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NAMESPACE_INDEX",
    "DeletedFinalStateUnknown",
    "IndexFunc",
    "Indexer",
    "KeyFunc",
    "Obj",
    "Store",
    "Transform",
    "deletion_handling_key",
    "drop_managed_fields",
    "meta_namespace_index_func",
    "meta_namespace_key",
    "split_key",
]

Obj = dict[str, Any]
"""A Kubernetes object as decoded JSON."""

KeyFunc = Callable[[Any], str]
IndexFunc = Callable[[Obj], list[str]]
Transform = Callable[[Obj], Obj]

NAMESPACE_INDEX = "namespace"
"""Name of the built-in index mapping a namespace to the keys of the objects in it."""


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """Stands in for an object that was deleted while the watch was disconnected.

    The relist that noticed the deletion never saw the final state, so ``obj`` is the last state
    the cache knew (it may be stale, or None). Delete handlers must be ready for this wrapper;
    :func:`deletion_handling_key` unwraps it.
    """

    key: str
    obj: Obj | None


def meta_namespace_key(obj: Any) -> str:
    """``"ns/name"`` or ``"name"`` for an object dict (client-go ``MetaNamespaceKeyFunc``)."""
    try:
        meta = obj["metadata"]
        name = meta["name"]
    except (KeyError, TypeError):
        raise ValueError(f"object has no metadata.name: {_describe(obj)}") from None
    if not isinstance(name, str) or not name:
        raise ValueError(f"object has no metadata.name: {_describe(obj)}")
    namespace = meta.get("namespace")
    if namespace:
        return f"{namespace}/{name}"
    return name


def deletion_handling_key(obj: Any) -> str:
    """Like :func:`meta_namespace_key` but returns the stored key of a tombstone."""
    # Runs for every event: the common case (a dict with a string name) in one frame.
    try:
        meta = obj["metadata"]
        name = meta["name"]
    except (KeyError, TypeError):
        if isinstance(obj, DeletedFinalStateUnknown):
            return obj.key
        raise ValueError(f"object has no metadata.name: {_describe(obj)}") from None
    if name.__class__ is not str or not name:
        return meta_namespace_key(obj)  # a str subclass, or the error
    namespace = meta.get("namespace")
    if namespace:
        return f"{namespace}/{name}"
    return name


def split_key(key: str) -> tuple[str, str]:
    """Split a store key into ``(namespace, name)``; namespace is ``""`` for cluster scope."""
    parts = key.split("/")
    if len(parts) == 1 and parts[0]:
        return "", parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")


def meta_namespace_index_func(obj: Obj) -> list[str]:
    """Index function for :data:`NAMESPACE_INDEX` (``""`` for cluster-scoped objects)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [""]
    return [meta.get("namespace") or ""]


def drop_managed_fields(obj: Obj) -> Obj:
    """Default transform: ``metadata.managedFields`` is large and almost never read by operators."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _describe(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 200 else text[:197] + "..."


_Index = dict[str, set[str]]
# Store defines a ``list`` method, which shadows the builtin inside the class body.
_ObjList = list[Obj]
_KeyList = list[str]


class Store:
    """Thread-safe cache of objects by key, with named secondary indexes (client-go ``Indexer``).

    ``transform`` (None by default here; informers transform earlier, in their queue) is applied
    to every object entering through :meth:`add`, :meth:`update` and :meth:`replace`.
    The namespace index (:data:`NAMESPACE_INDEX`) is installed unless ``namespace_index=False``.
    """

    def __init__(
        self,
        indexers: Mapping[str, IndexFunc] | None = None,
        *,
        key_func: KeyFunc = deletion_handling_key,
        transform: Transform | None = None,
        namespace_index: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, _Index] = {}
        self._key_func = key_func
        self._transform = transform
        # How writes maintain the indexes: the built-in namespace index inline (it is on every
        # informer's hot path), any other index through its function.
        self._ns_index: _Index | None = None
        self._other_indexes: list[tuple[IndexFunc, _Index]] = []
        if namespace_index:
            self._indexers[NAMESPACE_INDEX] = meta_namespace_index_func
            self._indices[NAMESPACE_INDEX] = {}
        self._plan_indexes_locked()
        if indexers:
            self.add_indexers(indexers)

    # -- writes ---------------------------------------------------------------------------------

    def key_of(self, obj: Any) -> str:
        return self._key_func(obj)

    def add(self, obj: Obj) -> None:
        """Insert or replace the object under its key."""
        if self._transform is not None:
            obj = self._transform(obj)
        key = self._key_func(obj)
        with self._lock:
            self._put_locked(key, obj)

    update = add

    def delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """Remove the object with the same key (tombstones are accepted); missing keys are fine."""
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else self._key_func(obj)
        with self._lock:
            self._remove_locked(key)

    def delete_by_key(self, key: str) -> Obj | None:
        """Remove ``key``; returns the object that was stored, if any."""
        with self._lock:
            return self._remove_locked(key)

    def replace(self, items: Iterable[Obj], resource_version: str = "") -> None:
        """Swap the whole content for ``items`` and rebuild every index."""
        del resource_version  # part of the reflector-facing signature; a plain store ignores it
        transform = self._transform
        new: dict[str, Obj] = {}
        for item in items:
            obj = transform(item) if transform is not None else item
            new[self._key_func(obj)] = obj
        with self._lock:
            self._items = new
            for name in self._indices:
                self._indices[name] = {}
            self._plan_indexes_locked()
            for key, obj in new.items():
                self._index_locked(None, obj, key)

    def resync(self) -> None:
        """No-op: a plain store has nothing to resync (the informer's queue does)."""

    # With the lock held (the informer batches deltas under it): put/remove by a known key,
    # returning the old object.
    def _put_locked(self, key: str, obj: Obj) -> Obj | None:
        items = self._items
        old = items.get(key)
        items[key] = obj
        ns_index = self._ns_index
        if ns_index is not None:
            # meta_namespace_index_func, inline
            meta = obj.get("metadata")
            ns = (meta.get("namespace") or "") if isinstance(meta, dict) else ""
            if old is None:
                keys = ns_index.get(ns)
                if keys is None:
                    ns_index[ns] = {key}
                else:
                    keys.add(key)
            else:
                meta = old.get("metadata")
                old_ns = (meta.get("namespace") or "") if isinstance(meta, dict) else ""
                if old_ns != ns:
                    _unindex(ns_index, old_ns, key)
                    keys = ns_index.get(ns)
                    if keys is None:
                        ns_index[ns] = {key}
                    else:
                        keys.add(key)
        for func, index in self._other_indexes:
            _reindex(func, index, old, obj, key)
        return old

    def _remove_locked(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            ns_index = self._ns_index
            if ns_index is not None:
                meta = old.get("metadata")
                _unindex(
                    ns_index, (meta.get("namespace") or "") if isinstance(meta, dict) else "", key
                )
            for func, index in self._other_indexes:
                _reindex(func, index, old, None, key)
        return old

    def _add_all_locked(
        self,
        objs: Mapping[str, Obj],
        on_error: Callable[[str, Exception], None],
        namespaces: Mapping[str, list[str]] | None = None,
    ) -> list[Obj]:
        """Insert objects under keys the store does not hold yet, indexing them as they go.

        One pass instead of a :meth:`_put_locked` per object (the informer fills its cache from
        the first list this way). ``namespaces``, if given, are the keys by the namespace index
        value of their objects. Returns the objects in order, except those whose indexing
        raised: ``on_error`` gets those (they stay stored, as with :meth:`_put_locked`).
        """
        items = self._items
        ns_index = self._ns_index
        if self._other_indexes or items:
            added: list[Obj] = []
            for key, obj in objs.items():
                try:
                    self._put_locked(key, obj)
                except Exception as err:
                    on_error(key, err)
                    continue
                added.append(obj)
            return added
        items.update(objs)
        if ns_index is None:
            return list(objs.values())
        if namespaces is not None:
            for ns, keys in namespaces.items():
                ns_keys = ns_index.get(ns)
                if ns_keys is None:
                    ns_index[ns] = set(keys)
                else:
                    ns_keys.update(keys)
            return list(objs.values())
        added = []
        for key, obj in objs.items():
            try:  # meta_namespace_index_func, inline
                meta = obj.get("metadata")
                ns = (meta.get("namespace") or "") if isinstance(meta, dict) else ""
                ns_keys = ns_index.get(ns)
                if ns_keys is None:
                    ns_index[ns] = {key}
                else:
                    ns_keys.add(key)
            except Exception as err:
                on_error(key, err)
                continue
            added.append(obj)
        return added

    def _plan_indexes_locked(self) -> None:
        self._ns_index = None
        self._other_indexes = []
        for position, (name, func) in enumerate(self._indexers.items()):
            # Only when first: indexes are still updated in the order they were installed.
            if position == 0 and name == NAMESPACE_INDEX and func is meta_namespace_index_func:
                self._ns_index = self._indices[name]
            else:
                self._other_indexes.append((func, self._indices[name]))

    def _index_locked(self, old: Obj | None, new: Obj | None, key: str) -> None:
        for name, func in self._indexers.items():
            _reindex(func, self._indices[name], old, new, key)

    # -- reads ----------------------------------------------------------------------------------

    def get(self, obj: Any) -> Obj | None:
        """The stored object with the same key as ``obj`` (or tombstone), or None."""
        return self.get_by_key(deletion_handling_key(obj))

    def get_by_key(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> _ObjList:
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> _KeyList:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    # -- indexes --------------------------------------------------------------------------------

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Install more indexes; existing objects are indexed immediately.

        Raises ValueError if a name is already taken (nothing is installed then).
        """
        with self._lock:
            taken = sorted(set(indexers) & set(self._indexers))
            if taken:
                raise ValueError(f"indexer conflict: {', '.join(taken)}")
            for name, func in indexers.items():
                index: _Index = {}
                for key, obj in self._items.items():
                    for value in func(obj):
                        keys = index.get(value)
                        if keys is None:
                            index[value] = {key}
                        else:
                            keys.add(key)
                self._indexers[name] = func
                self._indices[name] = index
            self._plan_indexes_locked()

    def get_indexers(self) -> dict[str, IndexFunc]:
        with self._lock:
            return dict(self._indexers)

    def index(self, index_name: str, obj: Obj) -> _ObjList:
        """Objects sharing any of ``obj``'s values of the named index."""
        with self._lock:
            func = self._indexer_locked(index_name)
            index = self._indices[index_name]
            values = func(obj)
            if len(values) == 1:
                keys: Iterable[str] = index.get(values[0], ())
            else:
                merged: set[str] = set()
                for value in values:
                    merged.update(index.get(value, ()))
                keys = merged
            return [self._items[k] for k in keys]

    def index_keys(self, index_name: str, value: str) -> _KeyList:
        """Keys of the objects whose named index includes ``value``."""
        with self._lock:
            self._indexer_locked(index_name)
            return list(self._indices[index_name].get(value, ()))

    def by_index(self, index_name: str, value: str) -> _ObjList:
        """Objects whose named index includes ``value``."""
        with self._lock:
            self._indexer_locked(index_name)
            items = self._items
            return [items[k] for k in self._indices[index_name].get(value, ())]

    def list_index_func_values(self, index_name: str) -> _KeyList:
        """Every value currently present in the named index."""
        with self._lock:
            self._indexer_locked(index_name)
            return list(self._indices[index_name])

    def _indexer_locked(self, index_name: str) -> IndexFunc:
        func = self._indexers.get(index_name)
        if func is None:
            raise KeyError(f"index with name {index_name!r} does not exist")
        return func


Indexer = Store
"""client-go's name for a store with indexes; the same class here."""


def _reindex(func: IndexFunc, index: _Index, old: Obj | None, new: Obj | None, key: str) -> None:
    old_values = func(old) if old is not None else []
    new_values = func(new) if new is not None else []
    if old_values == new_values:
        return
    for value in old_values:
        if value not in new_values:
            _unindex(index, value, key)
    for value in new_values:
        if value in old_values:
            continue
        keys = index.get(value)
        if keys is None:
            index[value] = {key}
        else:
            keys.add(key)


def _unindex(index: _Index, value: str, key: str) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]
