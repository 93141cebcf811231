"""In-server controllers: garbage collector, namespace lifecycle and CRD cleanup.

They react to store events (a listener that only enqueues, under the store lock) and do
their work on one background thread through the same write pipeline clients use, so
every step bumps revisions and emits watch events like a real control plane. Owners
are judged by uid (GC-1): an owner recreated under the same name counts as absent.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ._ops import CRD_CLEANUP, FOREGROUND, ORPHAN, Backend
from ._store import Store, StoreEvent

__all__ = ["Controllers"]

log = logging.getLogger("opkit.testing.apiserver.gc")

Obj = dict[str, Any]
Key = tuple[str, str, str]  # bucket, namespace, name
Item = tuple[str, Any]


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _owner_uids(obj: Obj) -> list[str]:
    return [
        str(r.get("uid"))
        for r in _meta(obj).get("ownerReferences") or []
        if isinstance(r, dict) and r.get("uid")
    ]


def _drop_owner_refs(uids: set[str]) -> Callable[[Obj], bool]:
    """A mutation removing the ownerReferences to ``uids`` (False when there are none)."""

    def mutate(obj: Obj) -> bool:
        m = obj.setdefault("metadata", {})
        before = m.get("ownerReferences") or []
        after = [r for r in before if str(r.get("uid") or "") not in uids]
        if len(after) == len(before):
            return False
        if after:
            m["ownerReferences"] = after
        else:
            m.pop("ownerReferences", None)
        return True

    return mutate


class Controllers:
    """Garbage collector (GC-1..4), namespace controller (NS-2/3), CRD cleanup (CRD-3)."""

    def __init__(self, backend: Backend, store: Store) -> None:
        self.backend = backend
        self.store = store
        self._cond = threading.Condition()
        self._queue: deque[Item] = deque()
        self._queued: set[Item] = set()
        self._busy = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Indexes maintained from store events.
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = {}
        self._owners_of: dict[Key, list[str]] = {}
        self._crd_buckets: dict[str, str] = {}
        self.ns_bucket = backend.ns_rt.storage
        self.crd_bucket = backend.crd_rt.storage if backend.crd_rt is not None else ""
        store.add_listener(self._on_event)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="opkit-apiserver-controllers", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no work is queued or running; False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- event intake (runs under the store lock) ---------------------------------------------

    def _enqueue(self, item: Item) -> None:
        with self._cond:
            if item in self._queued:
                return
            self._queued.add(item)
            self._queue.append(item)
            self._cond.notify_all()

    def _owner_deleting(self, uid: str) -> Key | None:
        key = self._by_uid.get(uid)
        if key is None:
            return None
        cur = self.store.get(*key)
        if cur is None or not _meta(cur.obj).get("deletionTimestamp"):
            return None
        return key

    def _on_event(self, ev: StoreEvent) -> None:
        bucket = ev.bucket
        ns, name = ev.key
        key: Key = (bucket, ns, name)
        meta = _meta(ev.obj)
        uid = str(meta.get("uid") or "")
        old_owners = self._owners_of.get(key, [])
        if ev.type == "DELETED":
            if uid and self._by_uid.get(uid) == key:
                del self._by_uid[uid]
            for o in old_owners:
                deps = self._dependents.get(o)
                if deps is not None:
                    deps.discard(key)
                    if not deps:
                        del self._dependents[o]
                okey = self._owner_deleting(o)
                if okey is not None:
                    self._enqueue(("owner", okey))
            self._owners_of.pop(key, None)
            for dep in list(self._dependents.get(uid, ())):
                self._enqueue(("dep", dep))
            if ns and bucket != self.ns_bucket:
                nso = self.store.get(self.ns_bucket, "", ns)
                if nso is not None and _meta(nso.obj).get("deletionTimestamp"):
                    self._enqueue(("ns", ns))
            crd = self._crd_buckets.get(bucket)
            if crd is not None:
                self._enqueue(("crd", crd))
            if bucket == self.crd_bucket:
                for b, n in list(self._crd_buckets.items()):
                    if n == name:
                        del self._crd_buckets[b]
            return
        if uid:
            self._by_uid[uid] = key
        owners = _owner_uids(ev.obj)
        if owners != old_owners:
            for o in old_owners:
                if o not in owners:
                    deps = self._dependents.get(o)
                    if deps is not None:
                        deps.discard(key)
                        if not deps:
                            del self._dependents[o]
            for o in owners:
                self._dependents.setdefault(o, set()).add(key)
            if owners:
                self._owners_of[key] = owners
            else:
                self._owners_of.pop(key, None)
            if owners:
                self._enqueue(("dep", key))
            for o in set(old_owners) | set(owners):
                okey = self._owner_deleting(o)
                if okey is not None:
                    self._enqueue(("owner", okey))
        deleting = bool(meta.get("deletionTimestamp"))
        if deleting:
            fins = meta.get("finalizers") or []
            if ORPHAN in fins or FOREGROUND in fins:
                self._enqueue(("owner", key))
            if bucket == self.ns_bucket:
                self._enqueue(("ns", name))
            elif bucket == self.crd_bucket and CRD_CLEANUP in fins:
                self._enqueue(("crd", name))
            for o in owners:
                okey = self._owner_deleting(o)
                if okey is not None:
                    self._enqueue(("owner", okey))
            if ns and bucket != self.ns_bucket:
                nso = self.store.get(self.ns_bucket, "", ns)
                if nso is not None and _meta(nso.obj).get("deletionTimestamp"):
                    self._enqueue(("ns", ns))
        elif owners:
            for o in owners:
                if self._owner_deleting(o) is not None:
                    self._enqueue(("dep", key))
                    break

    # -- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                item = self._queue.popleft()
                self._queued.discard(item)
                self._busy += 1
            try:
                self._process(item)
            except Exception:
                log.exception("controller work item %r failed", item)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _process(self, item: Item) -> None:
        kind, arg = item
        if kind == "dep":
            self._dependent(arg)
        elif kind == "owner":
            self._owner(arg)
        elif kind == "ns":
            self._namespace(arg)
        elif kind == "crd":
            self._crd(arg)

    # -- garbage collector ----------------------------------------------------------------------

    def _resolve(self, dep_ns: str, uid: str) -> Obj | None:
        """The live owner with ``uid`` that a dependent in ``dep_ns`` may reference."""
        with self.store.lock:
            key = self._by_uid.get(uid)
        if key is None:
            return None
        owner_ns = key[1]
        if owner_ns and owner_ns != dep_ns:
            return None
        cur = self.store.get(*key)
        if cur is None or _meta(cur.obj).get("uid") != uid:
            return None
        return cur.obj

    def _dependent(self, key: Key) -> None:
        bucket, ns, name = key
        cur = self.store.get(bucket, ns, name)
        if cur is None:
            return
        refs = [r for r in _meta(cur.obj).get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs:
            return
        solid: list[str] = []
        dangling: list[str] = []
        waiting: list[str] = []
        for r in refs:
            uid = str(r.get("uid") or "")
            owner = self._resolve(ns, uid)
            if owner is None:
                dangling.append(uid)
                continue
            ometa = _meta(owner)
            if ometa.get("deletionTimestamp") and FOREGROUND in (ometa.get("finalizers") or []):
                waiting.append(uid)
            else:
                solid.append(uid)
        if solid:
            drop = set(dangling) | set(waiting)
            if drop:
                self.backend.mutate(bucket, ns, name, _drop_owner_refs(drop))
            return
        if _meta(cur.obj).get("deletionTimestamp"):
            return
        uid = str(_meta(cur.obj).get("uid") or "")
        with self.store.lock:
            has_dependents = bool(self._dependents.get(uid))
        policy = "Foreground" if waiting and has_dependents else "Background"
        self.backend.delete_internal(bucket, ns, name, policy)

    def _owner(self, key: Key) -> None:
        bucket, ns, name = key
        cur = self.store.get(bucket, ns, name)
        if cur is None:
            return
        meta = _meta(cur.obj)
        if not meta.get("deletionTimestamp"):
            return
        uid = str(meta.get("uid") or "")
        fins = meta.get("finalizers") or []
        deps = []
        with self.store.lock:
            dependents = list(self._dependents.get(uid, ()))
        for dkey in dependents:
            d = self.store.get(*dkey)
            if d is None:
                continue
            for r in _meta(d.obj).get("ownerReferences") or []:
                if isinstance(r, dict) and str(r.get("uid")) == uid:
                    deps.append((dkey, d.obj, r))
                    break
        if ORPHAN in fins:
            for dkey, _, _ in deps:
                self.backend.mutate(*dkey, _drop_owner_refs({uid}))
            self._remove_finalizer(key, ORPHAN)
            return
        if FOREGROUND in fins:
            blocking = 0
            for dkey, dobj, ref in deps:
                if not _meta(dobj).get("deletionTimestamp"):
                    self._dependent(dkey)
                if ref.get("blockOwnerDeletion") and self.store.get(*dkey) is not None:
                    blocking += 1
            if blocking == 0:
                self._remove_finalizer(key, FOREGROUND)

    def _remove_finalizer(self, key: Key, finalizer: str) -> None:
        def remove(obj: Obj) -> bool:
            m = obj.setdefault("metadata", {})
            fins = m.get("finalizers") or []
            if finalizer not in fins:
                return False
            rest = [f for f in fins if f != finalizer]
            if rest:
                m["finalizers"] = rest
            else:
                m.pop("finalizers", None)
            return True

        self.backend.mutate(*key, remove)

    # -- namespace controller -------------------------------------------------------------------

    def _namespace(self, name: str) -> None:
        nso = self.store.get(self.ns_bucket, "", name)
        if nso is None or not _meta(nso.obj).get("deletionTimestamp"):
            return
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for bucket in self.store.bucket_names():
            rt = self.backend.rt_for_bucket(bucket)
            if rt is None or not rt.namespaced:
                continue
            items, _ = self.store.list(bucket, name)
            for s in items:
                m = _meta(s.obj)
                if not m.get("deletionTimestamp"):
                    self.backend.delete_internal(bucket, name, m.get("name", ""), None)
            items, _ = self.store.list(bucket, name)
            if items:
                remaining[rt.group_resource] = len(items)
                for s in items:
                    for f in _meta(s.obj).get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        now = self.backend.now_str()

        def conditions(ns: Obj) -> bool:
            status = ns.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
            by_type = {c.get("type"): c for c in conds}
            changed = False

            def put(type_: str, true: bool, reason: str, message: str) -> None:
                nonlocal changed
                want = {
                    "type": type_,
                    "status": "True" if true else "False",
                    "reason": reason,
                    "message": message,
                }
                old = by_type.get(type_)
                if old is not None and all(old.get(k) == v for k, v in want.items()):
                    return
                want["lastTransitionTime"] = now
                if old is not None:
                    conds[conds.index(old)] = want
                else:
                    conds.append(want)
                changed = True

            if remaining:
                parts = ", ".join(f"{k} has {v} resource instances" for k, v in remaining.items())
                put(
                    "NamespaceContentRemaining",
                    True,
                    "SomeResourcesRemain",
                    f"Some resources are remaining: {parts}",
                )
            else:
                put(
                    "NamespaceContentRemaining",
                    False,
                    "ContentDeleted",
                    "All content successfully deleted, may be waiting on finalization",
                )
            if finalizers:
                parts = ", ".join(f"{k} in {v} resource instances" for k, v in finalizers.items())
                put(
                    "NamespaceFinalizersRemaining",
                    True,
                    "SomeFinalizersRemain",
                    f"Some content in the namespace has finalizers remaining: {parts}",
                )
            else:
                put(
                    "NamespaceFinalizersRemaining",
                    False,
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished",
                )
            if changed:
                status["conditions"] = conds
            return changed

        self.backend.mutate(self.ns_bucket, "", name, conditions)
        if remaining:
            return

        def finalize(ns: Obj) -> bool:
            spec = ns.setdefault("spec", {})
            fins = spec.get("finalizers") or []
            if "kubernetes" not in fins:
                return False
            spec["finalizers"] = [f for f in fins if f != "kubernetes"]
            return True

        self.backend.mutate(self.ns_bucket, "", name, finalize)

    # -- CRD cleanup ------------------------------------------------------------------------------

    def _crd(self, name: str) -> None:
        cur = self.store.get(self.crd_bucket, "", name)
        if cur is None:
            return
        meta = _meta(cur.obj)
        if not meta.get("deletionTimestamp") or CRD_CLEANUP not in (meta.get("finalizers") or []):
            return
        spec = cur.obj.get("spec") or {}
        group = spec.get("group", "")
        plural = (spec.get("names") or {}).get("plural", "")
        bucket = f"{group}/{plural}"
        types = self.backend.registry.custom_types(name)
        if types:
            bucket = types[0].storage
        with self.store.lock:
            self._crd_buckets[bucket] = name
        now = self.backend.now_str()

        def terminating(crd: Obj) -> bool:
            status = crd.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
            if any(c.get("type") == "Terminating" for c in conds):
                return False
            conds.append(
                {
                    "type": "Terminating",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "InstanceDeletionInProgress",
                    "message": "CustomResource deletion is in progress",
                }
            )
            status["conditions"] = conds
            return True

        self.backend.mutate(self.crd_bucket, "", name, terminating)
        items, _ = self.store.list(bucket)
        for s in items:
            m = _meta(s.obj)
            if not m.get("deletionTimestamp"):
                self.backend.delete_internal(bucket, m.get("namespace", ""), m.get("name", ""))
        if self.store.count(bucket):
            return
        self._remove_finalizer((self.crd_bucket, "", name), CRD_CLEANUP)
