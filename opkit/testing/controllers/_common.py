"""Helpers shared by the built-in controllers: owner references, pod state, hashes, names,
semantic comparison and create/delete expectations.

Everything here works on plain object dicts and never mutates what it is given (objects from
the informer cache are shared with every other reader).
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from opkit import errors
from opkit import labels as _labels
from opkit.clock import Clock

Obj = dict[str, Any]

FIELD_MANAGER = "kube-controller-manager"
"""The field manager upstream's controllers write as."""

CONTROLLER_UID_INDEX = "opkit.testing/controller-uid"
"""Cache index: the uid of an object's controlling owner."""

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
"""apimachinery ``util/rand`` alphabet: no vowels (no words) and no look-alike characters."""

_rng = random.SystemRandom()


# -- metadata ---------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def key_of(obj: Mapping[str, Any]) -> str:
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    lbls = meta(obj).get("labels")
    return dict(lbls) if isinstance(lbls, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    ann = meta(obj).get("annotations")
    return dict(ann) if isinstance(ann, Mapping) else {}


def generation_of(obj: Mapping[str, Any]) -> int:
    return int(meta(obj).get("generation") or 0)


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    s = obj.get("spec")
    return s if isinstance(s, Mapping) else {}


def status_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    s = obj.get("status")
    return s if isinstance(s, Mapping) else {}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def controller_uid_index(obj: Obj) -> list[str]:
    """Index function for :data:`CONTROLLER_UID_INDEX` (one module-level function, so every
    controller installing it passes the same object to the informer factory)."""
    ref = controller_ref(obj)
    uid = ref.get("uid") if ref is not None else None
    return [str(uid)] if uid else []


def new_controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    """``metav1.NewControllerRef``: controller and blockOwnerDeletion set."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid_of(owner)


def selector_of(obj: Mapping[str, Any]) -> _labels.Selector:
    """The object's ``spec.selector`` (a LabelSelector); raises SelectorError if invalid."""
    sel = spec_of(obj).get("selector")
    return _labels.from_label_selector(sel if isinstance(sel, Mapping) else None)


# -- time -------------------------------------------------------------------------------------


def format_time(t: datetime) -> str:
    """``metav1.Time``: RFC 3339, seconds, UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(t: datetime) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds, UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def now(clock: Clock) -> str:
    return format_time(clock.now())


# -- pods -------------------------------------------------------------------------------------


def pod_condition(pod: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for cond in status_of(pod).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == ctype:
            return cond
    return None


def phase_of(pod: Mapping[str, Any]) -> str:
    return str(status_of(pod).get("phase") or "")


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    return phase_of(pod) == "Running" and is_pod_ready(pod)


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return phase_of(pod) in ("Succeeded", "Failed")


def is_active(pod: Mapping[str, Any]) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return not is_terminal(pod) and not is_deleting(pod)


def available_after(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime) -> float | None:
    """Seconds until a ready pod counts as available (0 = available now); None if not ready.

    ``podutil.IsPodAvailable``: ready for at least ``minReadySeconds`` (from the Ready
    condition's lastTransitionTime).
    """
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    cond = pod_condition(pod, "Ready") or {}
    since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return 0.0
    remaining = min_ready_seconds - (at - since).total_seconds()
    return max(0.0, remaining)


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime) -> bool:
    return available_after(pod, min_ready_seconds, at) == 0.0


def pod_from_template(template: Mapping[str, Any], namespace: str, owner_ref: Obj | None) -> Obj:
    """``controller.GetPodFromTemplate``: labels, annotations, finalizers and spec of the
    template, plus the controller reference."""
    tmeta = meta(template)
    metadata: Obj = {"namespace": namespace}
    for field in ("labels", "annotations"):
        value = tmeta.get(field)
        if isinstance(value, Mapping) and value:
            metadata[field] = dict(value)
    if tmeta.get("finalizers"):
        metadata["finalizers"] = list(tmeta["finalizers"])
    if owner_ref is not None:
        metadata["ownerReferences"] = [owner_ref]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(dict(spec_of(template))),
    }


# -- hashes and names -------------------------------------------------------------------------

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv32(data: bytes) -> int:
    """FNV-1 (what ``hash/fnv.New32`` computes; ControllerRevision hashes use it)."""
    h = _FNV_OFFSET
    for b in data:
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
        h ^= b
    return h


def fnv32a(data: bytes) -> int:
    """FNV-1a (``hash/fnv.New32a``; pod-template-hash uses it)."""
    h = _FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: map every byte onto :data:`ALPHANUMS`."""
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in text.encode())


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def template_hash(template: Any, collision_count: int | None) -> str:
    """``controller.ComputeHash`` for a pod template (pod-template-hash label)."""
    data = canonical_json(template)
    if collision_count is not None:
        data += int(collision_count & 0xFFFFFFFF).to_bytes(8, "little")
    return safe_encode(str(fnv32a(data)))


def revision_hash(data: Any, collision_count: int | None) -> str:
    """``history.HashControllerRevision``."""
    raw = canonical_json(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def random_suffix(length: int = 5) -> str:
    """The random part of a generateName (``rand.String(5)``)."""
    return "".join(_rng.choice(ALPHANUMS) for _ in range(length))


def generated_name(prefix: str) -> str:
    """``<prefix><rand5>`` with the prefix cut so the name stays within 63 characters."""
    base = prefix if len(prefix) <= 58 else prefix[:58]
    return base + random_suffix()


# -- numbers ----------------------------------------------------------------------------------


def int_or_percent(value: Any, total: int, *, round_up: bool, default: int = 0) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        try:
            pct = int(text[:-1])
        except ValueError:
            return default
        scaled = pct * total
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(text)
    except ValueError:
        return default


def as_int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- comparison -------------------------------------------------------------------------------


def normalized(value: Any) -> Any:
    """A value with every null, empty map and empty list removed, recursively (what Go's
    ``omitempty`` serialisation would not distinguish)."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            nv = normalized(v)
            if nv is None or nv in ({}, []):
                continue
            out[k] = nv
        return out
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Semantic equality: null, missing and empty are the same."""
    return bool(normalized(a) == normalized(b))


def differs(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether any key of ``desired`` differs semantically from ``live``."""
    return any(not same(live.get(k), v) for k, v in desired.items())


# -- API calls --------------------------------------------------------------------------------


def delete_quietly(
    resource: Any, obj: Mapping[str, Any], *, grace_period_seconds: int | None = None
) -> bool:
    """Delete exactly this object (uid precondition); False if it is already gone or replaced."""
    try:
        resource.delete(
            name_of(obj),
            namespace_of(obj) or None,
            preconditions={"uid": uid_of(obj)},
            grace_period_seconds=grace_period_seconds,
        )
    except (errors.NotFound, errors.Conflict):
        return False
    return True


# -- expectations -----------------------------------------------------------------------------


class Expectations:
    """Names a controller has just created (or deleted) that its cache may not show yet.

    client-go's ControllerExpectations count adds and deletes per controller; this keeps the
    names instead, so an expectation is settled by looking at the cache (``satisfied``) or by
    an informer event for that name (:meth:`observe`), and a lost event cannot wedge a
    controller: every expectation also expires after ``ttl`` seconds.
    """

    def __init__(self, clock: Clock, ttl: float = 300.0) -> None:
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._by_owner: dict[str, dict[str, float]] = {}

    def expect(self, owner: str, key: str) -> None:
        with self._lock:
            self._by_owner.setdefault(owner, {})[key] = self._clock.monotonic() + self._ttl

    def forget(self, owner: str, key: str) -> None:
        with self._lock:
            entries = self._by_owner.get(owner)
            if entries is not None:
                entries.pop(key, None)
                if not entries:
                    del self._by_owner[owner]

    def observe(self, key: str) -> None:
        """An informer event mentioned ``key``: expectations about it are met."""
        with self._lock:
            for owner in [o for o, entries in self._by_owner.items() if key in entries]:
                entries = self._by_owner[owner]
                del entries[key]
                if not entries:
                    del self._by_owner[owner]

    def clear(self, owner: str) -> None:
        with self._lock:
            self._by_owner.pop(owner, None)

    def pending(self, owner: str, satisfied: Callable[[str], bool]) -> set[str]:
        """Keys still expected for ``owner``; settled and expired ones are dropped."""
        now = self._clock.monotonic()
        with self._lock:
            entries = self._by_owner.get(owner)
            if not entries:
                return set()
            for key in list(entries):
                if entries[key] <= now or satisfied(key):
                    del entries[key]
            if not entries:
                del self._by_owner[owner]
                return set()
            return set(entries)


def sorted_by_name(objs: Iterable[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: (namespace_of(o), name_of(o)))


# -- adoption ---------------------------------------------------------------------------------


def adopt(resource: Any, obj: Mapping[str, Any], owner_ref: Obj) -> Obj | None:
    """Make ``owner_ref`` the controller of an orphan (``ClaimObject``'s adopt step).

    The patch carries the object's resourceVersion, so it applies only to the exact version
    that was judged an orphan. Returns the updated object, or None if it changed meanwhile.
    """
    refs = [r for r in meta(obj).get("ownerReferences") or () if isinstance(r, Mapping)]
    patch = {
        "metadata": {
            "resourceVersion": meta(obj).get("resourceVersion"),
            "ownerReferences": [*refs, owner_ref],
        }
    }
    try:
        result: Obj = resource.patch(
            name_of(obj), patch, namespace_of(obj) or None, field_manager=FIELD_MANAGER
        )
    except (errors.NotFound, errors.Conflict):
        return None
    return result
