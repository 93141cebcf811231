"""Strategic merge patch (PATCH-4) and the per-kind list/map strategies it shares with SSA.

Lists in built-in kinds carry a merge strategy in their Go tags (``patchStrategy``,
``patchMergeKey``) and a list type for server-side apply (``+listType=map`` with
``+listMapKey``). The tables below hold both, keyed by field path without list indices
(``("spec", "template", "spec", "containers", "env")``), for every kind the embedded server
serves. Anything not in a table behaves like JSON merge patch with atomic lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from ._jsonvalue import deep_copy, json_equal

__all__ = [
    "MISSING",
    "KindStrategies",
    "ListKeys",
    "PatchError",
    "SchemaStrategies",
    "builtin_list_keys",
    "builtin_strategies",
    "deep_copy",
    "json_equal",
    "object_meta_list_keys",
    "schema_list_keys",
    "show",
    "strategic_merge_patch",
]

ListKeys = Callable[[tuple[str, ...]], list[str] | None]
"""Merge keys of the list at a field path: ``None`` atomic, ``[]`` a set, else map keys."""

Path = tuple[str, ...]

MISSING: Final[Any] = object()


class PatchError(Exception):
    """A patch that cannot be applied: 422 (the patch does not fit the object) or 400."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- JSON helpers ---------------------------------------------------------------------


def show(value: Any, limit: int = 200) -> str:
    """Compact JSON for error messages."""
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar_key(value: Any) -> Hashable:
    """Identity of a scalar the way Go's ``==`` on decoded JSON sees it."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    return ("j", show(value, limit=1 << 30))


# --- strategy tables ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ListSpec:
    smp_key: str | None
    """SMP merge key; ``""`` merges primitives as a set; ``None`` replaces the list."""
    ssa_keys: tuple[str, ...] | None
    """SSA list-map keys; ``()`` is a set; ``None`` is atomic."""
    key_defaults: tuple[tuple[str, Any], ...] = ()
    retain_keys: bool = False


def _keyed(key: str, *, ssa: tuple[str, ...] | None = None, retain: bool = False) -> _ListSpec:
    return _ListSpec(key, ssa if ssa is not None else (key,), retain_keys=retain)


_SET = _ListSpec("", ())
_BY_NAME = _keyed("name")
_BY_TYPE = _keyed("type")
_TCP = (("protocol", "TCP"),)

_OBJECT_META: dict[Path, _ListSpec] = {
    ("finalizers",): _SET,
    ("ownerReferences",): _keyed("uid"),
}
_CONTAINER: dict[Path, _ListSpec] = {
    ("ports",): _ListSpec("containerPort", ("containerPort", "protocol"), _TCP),
    ("env",): _BY_NAME,
    ("volumeMounts",): _keyed("mountPath"),
    ("volumeDevices",): _keyed("devicePath"),
}
_POD_SPEC: dict[Path, _ListSpec] = {
    ("imagePullSecrets",): _BY_NAME,
    ("schedulingGates",): _BY_NAME,
    ("volumes",): _keyed("name", retain=True),
    ("resourceClaims",): _keyed("name", retain=True),
    ("hostAliases",): _keyed("ip"),
    ("topologySpreadConstraints",): _keyed("topologyKey", ssa=("topologyKey", "whenUnsatisfiable")),
}
for _field in ("containers", "initContainers", "ephemeralContainers"):
    _POD_SPEC[(_field,)] = _BY_NAME
    _POD_SPEC.update({(_field, *k): v for k, v in _CONTAINER.items()})
_POD_STATUS: dict[Path, _ListSpec] = {
    ("conditions",): _BY_TYPE,
    # merged by ip for SMP, but +listType=atomic for SSA
    ("podIPs",): _ListSpec("ip", None),
    ("hostIPs",): _ListSpec("ip", None),
}
_CONDITIONS: dict[Path, _ListSpec] = {("conditions",): _BY_TYPE}


@dataclass
class _Table:
    lists: dict[Path, _ListSpec]
    atomic_maps: set[Path]
    replace_maps: set[Path]
    retain_maps: set[Path]

    def add(self, prefix: Path, lists: Mapping[Path, _ListSpec]) -> None:
        self.lists.update({(*prefix, *k): v for k, v in lists.items()})

    def pod_template(self, prefix: Path) -> None:
        self.add((*prefix, "metadata"), _OBJECT_META)
        self.add((*prefix, "spec"), _POD_SPEC)
        self.atomic_maps.add((*prefix, "spec", "nodeSelector"))


def _table(group: str, kind: str) -> _Table:
    t = _Table({}, set(), set(), set())
    t.add(("metadata",), _OBJECT_META)
    key = (group, kind)
    if key == ("", "Pod"):
        t.add(("spec",), _POD_SPEC)
        t.atomic_maps.add(("spec", "nodeSelector"))
        t.add(("status",), _POD_STATUS)
    elif key == ("", "PodTemplate"):
        t.pod_template(("template",))
    elif key in {
        ("", "ReplicationController"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "ReplicaSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
    }:
        t.pod_template(("spec", "template"))
        t.add(("status",), _CONDITIONS)
        t.atomic_maps.add(("spec", "selector"))
        if kind == "Deployment":
            t.retain_maps.add(("spec", "strategy"))
    elif key == ("batch", "CronJob"):
        t.add(("spec", "jobTemplate", "metadata"), _OBJECT_META)
        t.pod_template(("spec", "jobTemplate", "spec", "template"))
        t.atomic_maps.add(("spec", "jobTemplate", "spec", "selector"))
    elif key == ("", "Service"):
        t.lists[("spec", "ports")] = _ListSpec("port", ("port", "protocol"), _TCP)
        t.add(("status",), _CONDITIONS)
        t.atomic_maps.add(("spec", "selector"))
    elif key == ("", "ServiceAccount"):
        t.lists[("secrets",)] = _BY_NAME
    elif key == ("", "Node"):
        t.lists[("spec", "podCIDRs")] = _SET
        t.add(("status",), _CONDITIONS)
        t.lists[("status", "addresses")] = _ListSpec("type", None)
    elif key in {("", "Namespace"), ("autoscaling", "HorizontalPodAutoscaler")}:
        t.add(("status",), _CONDITIONS)
    elif key == ("", "ComponentStatus"):
        t.add((), _CONDITIONS)
    elif key == ("", "PersistentVolumeClaim"):
        t.add(("status",), _CONDITIONS)
        t.atomic_maps.add(("spec", "selector"))
    elif key == ("policy", "PodDisruptionBudget"):
        t.add(("status",), _CONDITIONS)
        t.replace_maps.add(("spec", "selector"))
        t.atomic_maps.add(("spec", "selector"))
    elif key == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        # +listType=map but no patchStrategy tag: keyed for SSA, replaced by SMP.
        t.lists[("status", "conditions")] = _ListSpec(None, ("type",))
    return t


class KindStrategies:
    """List and map strategies of one kind; callable as a :data:`ListKeys`.

    Besides the SSA list keys it answers what SMP needs (merge key, ``replace`` maps) and
    what SSA needs beyond list keys (atomic maps such as label selectors, defaults for
    list-map key fields such as ``protocol: TCP``).
    """

    def __init__(self, table: _Table) -> None:
        self._lists = table.lists
        self._atomic_maps = frozenset(table.atomic_maps)
        self._replace_maps = frozenset(table.replace_maps)
        self.retain_maps = frozenset(table.retain_maps)
        self.retain_lists = frozenset(p for p, s in table.lists.items() if s.retain_keys)

    def __call__(self, path: Path) -> list[str] | None:
        spec = self._lists.get(path)
        if spec is None or spec.ssa_keys is None:
            return None
        return list(spec.ssa_keys)

    def atomic_map(self, path: Path) -> bool:
        return path in self._atomic_maps

    def key_defaults(self, path: Path) -> Mapping[str, Any]:
        spec = self._lists.get(path)
        return dict(spec.key_defaults) if spec is not None else {}

    def smp_list(self, path: Path) -> str | None:
        """SMP merge key for a list, ``""`` for a primitive set, ``None`` to replace."""
        spec = self._lists.get(path)
        return spec.smp_key if spec is not None else None

    def smp_replace_map(self, path: Path) -> bool:
        return path in self._replace_maps


@lru_cache(maxsize=128)
def builtin_strategies(group: str, kind: str) -> KindStrategies:
    """Strategies for a built-in kind; unknown kinds only know ObjectMeta's lists."""
    return KindStrategies(_table(group, kind))


def builtin_list_keys(group: str, kind: str) -> ListKeys:
    """SSA list keys of a built-in kind (``None`` atomic, ``[]`` set, else map keys)."""
    return builtin_strategies(group, kind)


class SchemaStrategies:
    """List keys read from a CRD's OpenAPI v3 schema; callable as a :data:`ListKeys`.

    ``x-kubernetes-list-type: map`` lists are keyed by ``x-kubernetes-list-map-keys``,
    ``set`` lists merge as sets, other lists are atomic; ``x-kubernetes-map-type: atomic``
    objects are replaced whole. ``metadata`` lists follow ObjectMeta.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._root = schema
        self._nodes: dict[Path, Mapping[str, Any] | None] = {(): schema}

    def _node(self, path: Path) -> Mapping[str, Any] | None:
        if path in self._nodes:
            return self._nodes[path]
        parent = self._node(path[:-1])
        node = _schema_child(parent, path[-1]) if parent is not None else None
        self._nodes[path] = node
        return node

    def __call__(self, path: Path) -> list[str] | None:
        if path[:1] == ("metadata",):
            return object_meta_list_keys(path)
        node = self._node(path)
        if node is None:
            return None
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            return []
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys")
            if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
                return list(keys)
        return None

    def atomic_map(self, path: Path) -> bool:
        node = self._node(path) if path[:1] != ("metadata",) else None
        return node is not None and node.get("x-kubernetes-map-type") == "atomic"

    def key_defaults(self, path: Path) -> Mapping[str, Any]:
        node = self._node(path)
        items = node.get("items") if node is not None else None
        props = items.get("properties") if isinstance(items, dict) else None
        if not isinstance(props, dict):
            return {}
        return {
            k: p["default"]
            for k, p in props.items()
            if isinstance(p, dict) and p.get("default") is not None
        }


def _schema_child(node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The schema of field ``name`` of ``node``, looking through list items."""
    while node.get("type") == "array" or ("items" in node and "properties" not in node):
        items = node.get("items")
        if not isinstance(items, dict):
            return None
        node = items
    props = node.get("properties")
    if isinstance(props, dict):
        child = props.get(name)
        if isinstance(child, dict):
            return child
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def schema_list_keys(openapi_v3_schema: Mapping[str, Any]) -> ListKeys:
    """SSA list keys of a custom resource from its (structural) OpenAPI v3 schema."""
    return SchemaStrategies(openapi_v3_schema if isinstance(openapi_v3_schema, Mapping) else {})


def object_meta_list_keys(path: Path) -> list[str] | None:
    """List keys of ``metadata`` lists, which every kind (CRs too) shares."""
    spec = _OBJECT_META.get(path[1:]) if path[:1] == ("metadata",) else None
    if spec is None or spec.ssa_keys is None:
        return None
    return list(spec.ssa_keys)


# --- the merge ------------------------------------------------------------------------

_PATCH: Final = "$patch"
_RETAIN: Final = "$retainKeys"
_ORDER: Final = "$setElementOrder/"
_DELETE_FROM: Final = "$deleteFromPrimitiveList/"


def strategic_merge_patch(
    target: dict[str, Any] | None, patch: dict[str, Any], *, group: str, kind: str
) -> dict[str, Any]:
    """Apply a strategic merge patch to a built-in object; inputs are not modified.

    Every ``$`` directive is consumed and none survives in the result. Kinds without
    tagged lists (Scale, ConfigMap, ...) get plain merge-patch behaviour.
    """
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object", 400)
    base = deep_copy(target) if isinstance(target, dict) else {}
    return _Merger(builtin_strategies(group, kind)).merge_map(base, patch, ())


class _Merger:
    def __init__(self, strategies: KindStrategies) -> None:
        self.s = strategies

    def merge_map(self, orig: dict[str, Any], patch: dict[str, Any], path: Path) -> dict[str, Any]:
        """Merge ``patch`` into ``orig`` (which we own and may change) and return it."""
        directive = patch.get(_PATCH, MISSING)
        if directive is not MISSING:
            if directive == "replace":
                rest = {k: v for k, v in patch.items() if k != _PATCH}
                return self.merge_map({}, rest, path)
            if directive == "delete":
                return {}
            if directive != "merge":
                raise PatchError(
                    f"unknown patch type: {show(directive)} in map: {show(patch)}", 400
                )
        retain = patch.get(_RETAIN, MISSING)
        if retain is not MISSING:
            self._retain_keys(orig, patch, retain)
        ordered: set[str] = set()
        for key, value in patch.items():
            if key.startswith(_ORDER):
                name = key[len(_ORDER) :]
                if not name:
                    raise PatchError(f"invalid patch format of {_ORDER}<field>: {key!r}", 400)
                self._set_element_order(orig, patch, name, value, path)
                ordered.add(name)
        for key, value in patch.items():
            if key.startswith("$") or key in ordered:
                continue
            if value is None:
                orig.pop(key, None)
                continue
            sub = (*path, key)
            cur = orig.get(key, MISSING)
            if isinstance(value, dict):
                if isinstance(cur, dict) and not self.s.smp_replace_map(sub):
                    orig[key] = self.merge_map(cur, value, sub)
                else:
                    orig[key] = self.merge_map({}, value, sub)
            elif isinstance(value, list):
                orig[key] = self.merge_list(cur if isinstance(cur, list) else [], value, sub)
            else:
                orig[key] = value
        for key, value in patch.items():
            if key.startswith(_DELETE_FROM):
                self._delete_from_primitive_list(orig, key, value)
        return orig

    def _retain_keys(self, orig: dict[str, Any], patch: dict[str, Any], retain: Any) -> None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise PatchError("invalid patch format of $retainKeys: must be a list of strings", 400)
        keep = set(retain)
        for key, value in patch.items():
            if value is not None and not key.startswith("$") and key not in keep:
                raise PatchError(
                    f"invalid patch format of $retainKeys: {key!r} is in the patch "
                    f"but not in the $retainKeys list {show(retain)}",
                    400,
                )
        for key in [k for k in orig if k not in keep]:
            del orig[key]

    def _delete_from_primitive_list(self, orig: dict[str, Any], key: str, value: Any) -> None:
        name = key[len(_DELETE_FROM) :]
        if not name or not isinstance(value, list):
            raise PatchError(f"invalid patch format of {key}: must be a list", 400)
        cur = orig.get(name)
        if isinstance(cur, list):
            gone = {_scalar_key(v) for v in value}
            orig[name] = [v for v in cur if _scalar_key(v) not in gone]

    def merge_list(self, orig: list[Any], patch: list[Any], path: Path) -> list[Any]:
        """Merge a patch list into ``orig`` (owned by us) following the field's strategy."""
        key = self.s.smp_list(path)
        if key is None:
            return self._replace_list(patch, path)
        if key == "":
            return self._merge_primitives(orig, patch)
        return self._merge_keyed(orig, patch, key, path)

    def _replace_list(self, patch: list[Any], path: Path) -> list[Any]:
        out: list[Any] = []
        for item in patch:
            if isinstance(item, dict):
                directive = item.get(_PATCH, MISSING)
                if directive is not MISSING and (directive == "delete" or len(item) == 1):
                    continue
                rest = {k: v for k, v in item.items() if k != _PATCH}
                out.append(self.merge_map({}, rest, path))
            else:
                out.append(deep_copy(item))
        return out

    def _merge_primitives(self, orig: list[Any], patch: list[Any]) -> list[Any]:
        values: list[Any] = []
        for item in patch:
            if isinstance(item, dict) and item.get(_PATCH) == "replace":
                return [deep_copy(v) for v in patch if not isinstance(v, dict)]
            if isinstance(item, dict | list):
                raise PatchError(
                    f"list element types are not identical: cannot merge {show(item)} "
                    "into a list of primitives"
                )
            values.append(item)
        merged: list[Any] = []
        seen: set[Hashable] = set()
        for v in [*orig, *values]:
            k = _scalar_key(v)
            if k not in seen:
                seen.add(k)
                merged.append(v)
        return _order(merged, values, orig, "")

    def _merge_keyed(self, orig: list[Any], patch: list[Any], key: str, path: Path) -> list[Any]:
        for item in orig:
            if not isinstance(item, dict):
                raise PatchError(
                    f"cannot merge by {key!r}: the list at {'.'.join(path)} holds {show(item)}, "
                    "not an object"
                )
        plain: list[dict[str, Any]] = []
        replace = False
        for item in patch:
            if not isinstance(item, dict):
                raise PatchError(
                    f"cannot merge by {key!r}: patch element {show(item)} at "
                    f"{'.'.join(path)} is not an object"
                )
            directive = item.get(_PATCH, MISSING)
            if directive is MISSING:
                plain.append(item)
            elif directive == "delete":
                if key not in item:
                    raise PatchError(
                        f"map: {show(item)} does not contain declared merge key: {key}"
                    )
                gone = _scalar_key(item[key])
                orig = [o for o in orig if key not in o or _scalar_key(o[key]) != gone]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                plain.append({k: v for k, v in item.items() if k != _PATCH})
            else:
                raise PatchError(f"unknown patch type: {show(directive)} in map: {show(item)}", 400)
        if replace:
            return [self.merge_map({}, item, path) for item in plain]
        merged = list(orig)
        where: dict[Hashable, int] = {}
        for i, item in enumerate(merged):
            if key in item:
                where.setdefault(_scalar_key(item[key]), i)
        for item in plain:
            if key not in item:
                raise _no_merge_key(item, key)
            k = _scalar_key(item[key])
            at = where.get(k)
            if at is None:
                where[k] = len(merged)
                merged.append(self.merge_map({}, item, path))
            else:
                merged[at] = self.merge_map(merged[at], item, path)
        return _order(merged, plain, orig, key)

    def _set_element_order(
        self, orig: dict[str, Any], patch: dict[str, Any], name: str, order: Any, path: Path
    ) -> None:
        if not isinstance(order, list):
            raise PatchError(f"invalid patch format of {_ORDER}{name}: must be a list", 400)
        sub = (*path, name)
        key = self.s.smp_list(sub) or ""
        if key:
            for item in order:
                if not isinstance(item, dict) or key not in item:
                    raise PatchError(
                        f"{_ORDER}{name}: element {show(item)} does not contain "
                        f"declared merge key: {key}"
                    )
        cur = orig.get(name, MISSING)
        cur_list: list[Any] | None = cur if isinstance(cur, list) else None
        plist = patch.get(name, MISSING)
        if plist is not MISSING and not isinstance(plist, list):
            raise PatchError(f"{_ORDER}{name} is given but {name} is not a list", 400)
        if plist is not MISSING:
            _check_order(plist, order, key, name)
        if plist is MISSING:
            if cur_list is None:
                return
            merged = cur_list
        else:
            merged = self.merge_list(cur_list if cur_list is not None else [], plist, sub)
        orig[name] = _order(merged, order, cur_list or [], key)


def _identity(item: Any, key: str) -> Hashable:
    if key and isinstance(item, dict):
        return _scalar_key(item.get(key))
    return _scalar_key(item)


def _no_merge_key(item: Any, key: str) -> PatchError:
    return PatchError(f"map: {show(item)} does not contain declared merge key: {key}")


def _order(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], key: str
) -> list[Any]:
    """Order a merged list like upstream: patch items in patch order, server-only items in
    their old order, interleaved where the old list puts them (patch order wins)."""
    in_patch: dict[Hashable, int] = {}
    for i, item in enumerate(patch_order):
        in_patch.setdefault(_identity(item, key), i)
    server_pos: dict[Hashable, int] = {}
    for i, item in enumerate(server_order):
        server_pos.setdefault(_identity(item, key), i)
    from_patch = [m for m in merged if _identity(m, key) in in_patch]
    server_only = [m for m in merged if _identity(m, key) not in in_patch]
    from_patch.sort(key=lambda m: in_patch[_identity(m, key)])
    server_only.sort(key=lambda m: server_pos.get(_identity(m, key), len(server_order)))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(from_patch):
        if i >= len(server_only):
            out.append(from_patch[j])
            j += 1
        elif j >= len(from_patch):
            out.append(server_only[i])
            i += 1
        else:
            left = server_pos.get(_identity(server_only[i], key), -1)
            right = server_pos.get(_identity(from_patch[j], key), -1)
            if 0 <= left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(from_patch[j])
                j += 1
    return out


def _check_order(plist: list[Any], order: list[Any], key: str, name: str) -> None:
    """The patch list must follow the relative order of ``$setElementOrder`` (as upstream)."""
    items = [p for p in plist if not (isinstance(p, dict) and _PATCH in p)]
    if not items or not order or (not key and any(isinstance(p, dict) for p in items)):
        return
    i = 0
    for o in order:
        if i < len(items) and _identity(items[i], key) == _identity(o, key):
            i += 1
    if i < len(items):
        raise PatchError(
            f"the order in patch list {show(plist)} doesn't match {_ORDER}{name} list {show(order)}"
        )
