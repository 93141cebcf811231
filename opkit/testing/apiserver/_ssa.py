"""Server-side apply (SSA-3, honest minimum) and managedFields bookkeeping (META-11).

Ownership is a set of field paths per manager. A path is a tuple of FieldsV1 path elements:
``f:<field>`` for object fields, ``k:{"name":"c"}`` for items of list-maps, ``v:"x"`` for
items of sets. Leaves (scalars, atomic lists and maps, empty maps) are members; so are list
items and, for Update operations, objects and lists the update created, which FieldsV1 marks
with ``.``.

Like upstream only ``labels``, ``annotations``, ``finalizers`` and ``ownerReferences`` of
``metadata`` are tracked, and never ``apiVersion``/``kind``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from ._smp import MISSING, ListKeys, PatchError, deep_copy, json_equal, object_meta_list_keys

__all__ = ["ApplyConflict", "record_update", "server_side_apply"]

Path = tuple[str, ...]
_META_PATH: Final = ("f:metadata",)
_TRACKED_META: Final = ("labels", "annotations", "finalizers", "ownerReferences")
_UNTRACKED_TOP: Final = frozenset({"apiVersion", "kind", "metadata"})
_BEFORE_FIRST_APPLY: Final = "before-first-apply"
_DELETE: Final[Any] = object()


class ApplyConflict(Exception):  # noqa: N818 (name fixed by CONTRACTS.md)
    """An apply would change fields another manager owns (409 ``Conflict``)."""

    def __init__(self, conflicts: list[tuple[str, str, str]]) -> None:
        """``conflicts`` holds (manager, field, printed manager) triples."""
        ordered = sorted(conflicts, key=lambda c: (c[2], c[1]))
        self.conflicts: list[tuple[str, str]] = [(m, f) for m, f, _ in ordered]
        self._printed = [(who, f) for _, f, who in ordered]
        self.message = _conflict_message(self._printed)
        super().__init__(self.message)

    def causes(self) -> list[dict[str, str]]:
        """Status ``details.causes`` entries, one per conflicting field."""
        return [
            {"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": f}
            for who, f in self._printed
        ]


def _conflict_message(printed: list[tuple[str, str]]) -> str:
    if len(printed) == 1:
        who, f = printed[0]
        return f"Apply failed with 1 conflict: conflict with {who}: {f}"
    by_manager: dict[str, list[str]] = {}
    for who, f in printed:
        by_manager.setdefault(who, []).append(f)
    lines: list[str] = []
    for who in sorted(by_manager):
        lines.append(f"conflicts with {who}:")
        lines.extend(f"- {f}" for f in by_manager[who])
    return f"Apply failed with {len(printed)} conflicts: " + "\n".join(lines)


# --- path elements ----------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _canon(value: Any) -> str:
    return json.dumps(_norm(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=8192)
def _scalar_pe(prefix: str, items: tuple[tuple[str, str, Any], ...]) -> str:
    if prefix == "v:":
        return "v:" + _canon(items[0][2])
    return "k:" + _canon({k: v for k, _, v in items})


def _pe(prefix: str, value: Any) -> str:
    """``k:``/``v:`` path element of a list item identity (cached: it is on every path)."""
    if prefix == "v:":
        if isinstance(value, str | int | float | bool) or value is None:
            return _scalar_pe(prefix, (("", type(value).__name__, value),))
        return "v:" + _canon(value)
    if all(isinstance(v, str | int | float | bool) for v in value.values()):
        return _scalar_pe(prefix, tuple(sorted((k, type(v).__name__, v) for k, v in value.items())))
    return "k:" + _canon(value)


def _canon_pe(pe: str) -> str:
    """Normalise a path element read from stored FieldsV1 (key order, spacing)."""
    if pe[:2] in ("k:", "v:"):
        try:
            return pe[:2] + _canon(json.loads(pe[2:]))
        except ValueError:
            return pe
    return pe


def render_path(path: Path) -> str:
    """Upstream's printed form: ``.spec.containers[name="c"].image``, ``[="x"]``."""
    out: list[str] = []
    for pe in path:
        kind, body = pe[:2], pe[2:]
        if kind == "f:":
            out.append("." + body)
        elif kind == "k:":
            try:
                keys = json.loads(body)
                out.append("[" + ",".join(f"{k}={_canon(v)}" for k, v in keys.items()) + "]")
            except (ValueError, AttributeError):
                out.append("[" + body + "]")
        elif kind == "v:":
            out.append("[=" + body + "]")
        else:
            out.append("[" + body + "]")
    return "".join(out)


# --- FieldsV1 -------------------------------------------------------------------------


def decode_fields(fields: Any) -> set[Path]:
    out: set[Path] = set()
    if isinstance(fields, dict):
        _decode_into(fields, (), out)
    return out


def _decode_into(node: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for key, child in node.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, _canon_pe(key))
        if isinstance(child, dict) and child:
            _decode_into(child, path, out)
        else:
            out.add(path)


_PE_RANK: Final = {"f:": 0, "k:": 1, "v:": 2, "i:": 3}


def encode_fields(paths: Collection[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
        node["."] = {}
    return _finish(root)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    children = sorted((k for k in node if k != "."), key=lambda k: (_PE_RANK.get(k[:2], 4), k))
    if not children:
        return {}
    out: dict[str, Any] = {".": {}} if "." in node else {}
    for k in children:
        out[k] = _finish(node[k])
    return out


# --- managedFields entries --------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str
    fields: set[Path]
    raw: dict[str, Any] | None = None
    dirty: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def printed(self) -> str:
        who = json.dumps(self.manager)
        if self.subresource:
            who = f"{who} with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            who = f"{who} using {self.api_version}"
        return who

    def encode(self) -> dict[str, Any]:
        if self.raw is not None and not self.dirty:
            raw: dict[str, Any] = deep_copy(self.raw)
            return raw
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def drop(self, doomed: Collection[Path]) -> None:
        if doomed:
            self.fields.difference_update(doomed)
            self.dirty = True


def _decode_entries(raw: Any) -> dict[tuple[str, str, str], _Entry]:
    entries: dict[tuple[str, str, str], _Entry] = {}
    if not isinstance(raw, list):
        return entries
    for item in raw:
        if not isinstance(item, dict):
            continue
        manager, operation = item.get("manager", ""), item.get("operation")
        if not isinstance(manager, str) or operation not in ("Apply", "Update"):
            continue
        if item.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        sub = item.get("subresource") or ""
        entry = _Entry(
            manager=manager,
            operation=operation,
            api_version=str(item.get("apiVersion") or ""),
            time=item.get("time") if isinstance(item.get("time"), str) else None,
            subresource=sub if isinstance(sub, str) else "",
            fields=decode_fields(item.get("fieldsV1")),
            raw=item,
        )
        prev = entries.get(entry.key)
        if prev is not None:
            prev.fields |= entry.fields
            prev.dirty = True
        else:
            entries[entry.key] = entry
    return entries


def _encode_entries(entries: Mapping[tuple[str, str, str], _Entry]) -> list[dict[str, Any]]:
    kept = [e for e in entries.values() if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.encode() for e in kept]


def _store_entries(obj: dict[str, Any], entries: Mapping[tuple[str, str, str], _Entry]) -> None:
    meta = obj.setdefault("metadata", {})
    encoded = _encode_entries(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


# --- walking objects ------------------------------------------------------------------


def _tracked(obj: Mapping[str, Any], ignore: Collection[str]) -> Iterator[tuple[Path, Any]]:
    """Top-level fields that ownership tracks, as (field-name path, value); nulls count as
    absent, as they do once upstream decodes an object into its Go type."""
    for key, value in obj.items():
        if key in _UNTRACKED_TOP or key in ignore or value is None:
            continue
        yield (key,), value
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _TRACKED_META:
            if meta.get(key) is not None:
                yield ("metadata", key), meta[key]


def _fp(spath: Path) -> Path:
    return tuple("f:" + s for s in spath)


def _under(path: Path, roots: Collection[Path]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one."""
    if not roots:
        return False
    return any(path[:i] in roots for i in range(1, len(path) + 1))


@dataclass
class _Diff:
    added: set[Path] = field(default_factory=set)
    """Every path the new object adds, containers marked, as an Update would own it."""
    added_roots: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed_roots: set[Path] = field(default_factory=set)

    def changed(self, path: Path) -> bool:
        return path in self.modified or _under(path, self.added_roots)


class _Walker:
    """Walks objects with a kind's list semantics (ListKeys plus optional extras)."""

    def __init__(self, list_keys: ListKeys) -> None:
        self._lk = list_keys
        self._atomic_map = getattr(list_keys, "atomic_map", None)
        self._key_defaults = getattr(list_keys, "key_defaults", None)
        self._keys: dict[Path, list[str] | None] = {}

    def keys(self, spath: Path) -> list[str] | None:
        try:
            return self._keys[spath]
        except KeyError:
            pass
        keys = self._lk(spath)
        if keys is None and spath[:1] == ("metadata",):
            keys = object_meta_list_keys(spath)
        self._keys[spath] = keys
        return keys

    def atomic_map(self, spath: Path) -> bool:
        return bool(self._atomic_map(spath)) if self._atomic_map is not None else False

    def item_pes(self, items: list[Any], spath: Path) -> list[str] | None:
        """Path elements of a list's items; ``None`` when the list is atomic."""
        keys = self.keys(spath)
        if keys is None:
            return None
        if not keys:
            if any(isinstance(x, dict | list) for x in items):
                return None
            return [_pe("v:", x) for x in items]
        defaults: Mapping[str, Any] = (
            self._key_defaults(spath) if self._key_defaults is not None else {}
        )
        out: list[str] = []
        for item in items:
            if not isinstance(item, dict):
                return None
            ident: dict[str, Any] = {}
            for k in keys:
                v = item.get(k)
                if v is None:
                    v = defaults.get(k)
                if v is not None:
                    ident[k] = v
            if not ident:
                return None
            out.append(_pe("k:", ident))
        return out

    # field sets

    def collect(
        self,
        value: Any,
        path: Path,
        spath: Path,
        out: set[Path],
        *,
        mark: bool,
        mark_self: bool | None = None,
    ) -> None:
        """Add the paths of ``value`` at ``path``. ``mark`` also adds objects and lists
        themselves (an Update creating them), as upstream's compare does."""
        me = mark if mark_self is None else mark_self
        if isinstance(value, dict) and not self.atomic_map(spath):
            if not value or me:
                out.add(path)
            for k, v in value.items():
                self.collect(v, (*path, "f:" + k), (*spath, k), out, mark=mark)
            return
        if isinstance(value, list):
            pes = self.item_pes(value, spath)
            if pes is not None:
                if me:
                    out.add(path)
                for pe, item in zip(pes, value, strict=True):
                    ip = (*path, pe)
                    out.add(ip)
                    if isinstance(item, dict):
                        for k, v in item.items():
                            self.collect(v, (*ip, "f:" + k), (*spath, k), out, mark=mark)
                return
        out.add(path)

    def applied_set(self, obj: Mapping[str, Any], ignore: Collection[str]) -> set[Path]:
        out: set[Path] = set()
        for spath, value in _tracked(obj, ignore):
            self.collect(value, _fp(spath), spath, out, mark=False)
        return out

    # comparison

    def diff_objects(
        self, old: Mapping[str, Any], new: Mapping[str, Any], ignore: Collection[str]
    ) -> _Diff:
        d = _Diff()
        before = dict(_tracked(old, ignore))
        for spath, value in _tracked(new, ignore):
            path = _fp(spath)
            prev = before.pop(spath, MISSING)
            if prev is MISSING:
                d.added_roots.add(path)
                top_struct = spath in (("spec",), ("status",))
                self.collect(value, path, spath, d.added, mark=True, mark_self=not top_struct)
            else:
                self.diff(prev, value, path, spath, d)
        d.removed_roots.update(_fp(spath) for spath in before)
        return d

    def diff(self, old: Any, new: Any, path: Path, spath: Path, d: _Diff) -> None:
        if old is new or (type(old) is type(new) and old == new):
            return
        if isinstance(old, dict) and isinstance(new, dict) and not self.atomic_map(spath):
            for k, nv in new.items():
                p, sp = (*path, "f:" + k), (*spath, k)
                ov = old.get(k, MISSING)
                if ov is MISSING:
                    d.added_roots.add(p)
                    self.collect(nv, p, sp, d.added, mark=True)
                else:
                    self.diff(ov, nv, p, sp, d)
            d.removed_roots.update((*path, "f:" + k) for k in old if k not in new)
            return
        if isinstance(old, list) and isinstance(new, list):
            old_pes, new_pes = self.item_pes(old, spath), self.item_pes(new, spath)
            if old_pes is not None and new_pes is not None:
                self._diff_items(
                    old=old, new=new, old_pes=old_pes, new_pes=new_pes, path=path, spath=spath, d=d
                )
                return
        if json_equal(old, new):
            return
        if type(old) is type(new) or (
            not isinstance(old, dict | list) and not isinstance(new, dict | list)
        ):
            d.modified.add(path)
            return
        d.removed_roots.add(path)
        d.added_roots.add(path)
        self.collect(new, path, spath, d.added, mark=True)

    def _diff_items(
        self,
        *,
        old: list[Any],
        new: list[Any],
        old_pes: list[str],
        new_pes: list[str],
        path: Path,
        spath: Path,
        d: _Diff,
    ) -> None:
        before: dict[str, Any] = {}
        for pe, item in zip(old_pes, old, strict=True):
            before.setdefault(pe, item)
        seen: set[str] = set()
        for pe, item in zip(new_pes, new, strict=True):
            if pe in seen:
                continue
            seen.add(pe)
            ip = (*path, pe)
            prev = before.get(pe, MISSING)
            if prev is MISSING:
                d.added_roots.add(ip)
                d.added.add(ip)
                if isinstance(item, dict):
                    for k, v in item.items():
                        self.collect(v, (*ip, "f:" + k), (*spath, k), d.added, mark=True)
            elif isinstance(item, dict):
                self.diff(prev, item, ip, spath, d)
        d.removed_roots.update((*path, pe) for pe in before if pe not in seen)

    # apply merge

    def merge_top(self, base: dict[str, Any], config: Mapping[str, Any]) -> None:
        """Merge an applied configuration into ``base`` (owned by us) in place."""
        for key, value in config.items():
            if key == "metadata" and isinstance(value, dict):
                meta = base.get("metadata")
                if not isinstance(meta, dict):
                    meta = base["metadata"] = {}
                for mk, mv in value.items():
                    if mk == "managedFields":
                        continue
                    if mk in _TRACKED_META:
                        self._put(meta, mk, self.merge(meta.get(mk, MISSING), mv, ("metadata", mk)))
                    elif mv is not None:
                        meta[mk] = deep_copy(mv)
                continue
            self._put(base, key, self.merge(base.get(key, MISSING), value, (key,)))

    @staticmethod
    def _put(container: dict[str, Any], key: str, value: Any) -> None:
        if value is _DELETE:
            container.pop(key, None)
        else:
            container[key] = value

    def merge(self, live: Any, cfg: Any, spath: Path) -> Any:
        if cfg is None:
            return _DELETE
        if isinstance(cfg, dict):
            if isinstance(live, dict) and not self.atomic_map(spath):
                for k, v in cfg.items():
                    self._put(live, k, self.merge(live.get(k, MISSING), v, (*spath, k)))
                return live
            return _without_nulls(cfg)
        if isinstance(cfg, list) and isinstance(live, list):
            cfg_pes, live_pes = self.item_pes(cfg, spath), self.item_pes(live, spath)
            if cfg_pes is not None and live_pes is not None:
                return self._merge_items(live, live_pes, cfg, cfg_pes, spath)
        return _without_nulls(cfg)

    def _merge_items(
        self, lhs: list[Any], lhs_pes: list[str], rhs: list[Any], rhs_pes: list[str], spath: Path
    ) -> list[Any]:
        """Merge list items by identity; applied items keep their relative order and live-only
        items stay where they were (structured-merge-diff's interleaving)."""
        seen_l: dict[str, Any] = {}
        for pe, item in zip(lhs_pes, lhs, strict=True):
            seen_l.setdefault(pe, item)
        seen_r: dict[str, Any] = {}
        for pe, item in zip(rhs_pes, rhs, strict=True):
            seen_r.setdefault(pe, item)

        def one(pe: str) -> Any:
            left, right = seen_l.get(pe, MISSING), seen_r[pe]
            if isinstance(right, dict):
                return self.merge(left if isinstance(left, dict) else MISSING, right, spath)
            return deep_copy(right)

        shared = iter([pe for pe in rhs_pes if pe in seen_l])
        next_shared = next(shared, None)
        done: set[str] = set()
        out: list[Any] = []
        li = ri = 0
        while li < len(lhs_pes) or ri < len(rhs_pes):
            if li < len(lhs_pes) and ri < len(rhs_pes):
                pe = lhs_pes[li]
                if pe == rhs_pes[ri]:
                    if pe not in done:
                        done.add(pe)
                        out.append(one(pe))
                    li += 1
                    ri += 1
                    next_shared = next(shared, None)
                    continue
                if pe in seen_r and next_shared is not None and next_shared != pe:
                    li += 1
                    continue
            if li < len(lhs_pes):
                pe = lhs_pes[li]
                if pe not in seen_r:
                    out.append(lhs[li])
                    li += 1
                    continue
                if pe in done:
                    li += 1
                    continue
            if ri < len(rhs_pes):
                pe = rhs_pes[ri]
                if pe not in done:
                    done.add(pe)
                    out.append(one(pe))
                ri += 1
                if next_shared is not None and next_shared == pe:
                    next_shared = next(shared, None)
        return [x for x in out if x is not _DELETE]

    # pruning

    def remove(self, obj: dict[str, Any], path: Path, owned: Collection[Path]) -> None:
        """Remove the field or list item at ``path``, then any container that this left empty
        and that nobody owns (upstream drops emptied named fields the same way)."""
        chain: list[tuple[Any, Any]] = []
        cur: Any = obj
        spath: Path = ()
        for pe in path:
            if pe.startswith("f:"):
                name = pe[2:]
                if not isinstance(cur, dict) or name not in cur:
                    return
                chain.append((cur, name))
                cur = cur[name]
                spath = (*spath, name)
            else:
                if not isinstance(cur, list):
                    return
                pes = self.item_pes(cur, spath)
                if pes is None or pe not in pes:
                    return
                index = pes.index(pe)
                chain.append((cur, index))
                cur = cur[index]
        container, where = chain[-1]
        del container[where]
        for i in range(len(chain) - 1, 0, -1):
            holder = chain[i][0]
            above = path[:i]
            if holder or not above[-1].startswith("f:") or above == _META_PATH or above in owned:
                break
            parent, where = chain[i - 1]
            del parent[where]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _prefixes(paths: Collection[Path]) -> set[Path]:
    """Every path in ``paths`` and every ancestor of one."""
    out: set[Path] = set()
    for path in paths:
        for i in range(len(path), 0, -1):
            head = path[:i]
            if head in out:
                break
            out.add(head)
    return out


def _same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from metadata.managedFields."""
    keys = set(a) | set(b)
    keys.discard("metadata")
    if any(a.get(k, MISSING) != b.get(k, MISSING) for k in keys):
        return False
    am, bm = a.get("metadata") or {}, b.get("metadata") or {}
    if not isinstance(am, dict) or not isinstance(bm, dict):
        return am == bm
    mkeys = set(am) | set(bm)
    mkeys.discard("managedFields")
    return all(am.get(k, MISSING) == bm.get(k, MISSING) for k in mkeys)


def _tracked_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = (set(a) | set(b)) - _UNTRACKED_TOP
    if any(a.get(k, MISSING) != b.get(k, MISSING) for k in keys):
        return False
    am, bm = a.get("metadata"), b.get("metadata")
    am = am if isinstance(am, dict) else {}
    bm = bm if isinstance(bm, dict) else {}
    return all(am.get(k, MISSING) == bm.get(k, MISSING) for k in _TRACKED_META)


# --- the two operations -----------------------------------------------------------------


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    list_keys: ListKeys,
    subresource: str = "",
    ignore_fields: Collection[str] = (),
) -> dict[str, Any]:
    """Apply ``applied`` for ``manager`` to ``live`` (``None``: create) and return the result
    with updated ``metadata.managedFields``. Inputs are not modified.

    ``ignore_fields`` are top-level fields this endpoint neither writes nor tracks (``status``
    on a main resource with a status subresource). Raises :class:`ApplyConflict` when the
    apply would change a field another manager owns and ``force`` is false.
    """
    if not isinstance(applied, dict):
        raise PatchError("an apply patch must be a JSON or YAML object", 400)
    ameta = applied.get("metadata")
    if isinstance(ameta, dict) and ameta.get("managedFields") is not None:
        raise PatchError("metadata.managedFields must be nil", 400)
    ignore = frozenset(ignore_fields)
    walker = _Walker(list_keys)
    old: dict[str, Any] = live if isinstance(live, dict) else {}
    meta = old.get("metadata")
    entries = _decode_entries(meta.get("managedFields") if isinstance(meta, dict) else None)
    if live is not None and not entries:
        # Whoever wrote an untracked object owns its fields (upstream's first-apply rule).
        first = walker.diff_objects({}, old, ignore).added
        if first:
            e = _Entry(_BEFORE_FIRST_APPLY, "Update", api_version, now, subresource, first)
            entries[e.key] = e

    merged = deep_copy(old)
    config = {k: v for k, v in applied.items() if k not in ignore}
    walker.merge_top(merged, config)

    key = (manager, "Apply", subresource)
    previous = entries.get(key)
    applied_set = walker.applied_set(config, ignore)
    mine = _Entry(manager, "Apply", api_version, now, subresource, applied_set, dirty=True)
    entries[key] = mine

    if previous is not None:
        gone = previous.fields - applied_set
        if gone:
            owned = _prefixes(set().union(*(e.fields for e in entries.values())))
            for path in sorted(gone, key=len):
                if path not in owned:
                    walker.remove(merged, path, owned)

    d = walker.diff_objects(old, merged, ignore)
    clashes: list[tuple[_Entry, list[Path]]] = []
    for k, e in entries.items():
        if k != key:
            hit = [p for p in e.fields if d.changed(p)]
            if hit:
                clashes.append((e, hit))
    if clashes and not force:
        raise ApplyConflict(
            [(e.manager, render_path(p), e.printed()) for e, hit in clashes for p in hit]
        )
    for e, hit in clashes:
        e.drop(hit)
    if d.removed_roots:
        for k, e in entries.items():
            if k != key:
                e.drop([p for p in e.fields if _under(p, d.removed_roots)])

    if previous is not None and live is not None and _same_content(old, merged):
        mine.time = previous.time
    _store_entries(merged, entries)
    result: dict[str, Any] = merged
    return result


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    list_keys: ListKeys,
    subresource: str = "",
) -> None:
    """Record a non-apply write (create, update, patch) in ``new``'s managedFields.

    Changed and added fields move to ``manager``'s Update entry (merged with its earlier
    one); other managers lose them, and everyone loses removed fields. A body that carries
    non-empty managedFields replaces the stored ones (how SSA-5 migrates them); ``[{}]``
    clears them. Subresource writes always start from the stored entries.
    """
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return
    old_meta = old.get("metadata") if old is not None else None
    stored = old_meta.get("managedFields") if isinstance(old_meta, dict) else None
    given = meta.get("managedFields")
    base: Any
    if not subresource and given == [{}]:
        base = []
    elif not subresource and isinstance(given, list) and _decode_entries(given):
        base = given
    else:
        base = stored

    if old is not None and _tracked_equal(old, new):
        if base is given:
            return
        if isinstance(base, list) and base:
            meta["managedFields"] = deep_copy(base)
        else:
            meta.pop("managedFields", None)
        return

    walker = _Walker(list_keys)
    d = walker.diff_objects(old or {}, new, ())
    entries = _decode_entries(base)
    for entry in entries.values():
        entry.drop([p for p in entry.fields if d.changed(p) or _under(p, d.removed_roots)])
    mine = d.added | d.modified
    if mine:
        key = (manager, "Update", subresource)
        prev = entries.get(key)
        if prev is None:
            entries[key] = _Entry(
                manager, "Update", api_version, now, subresource, mine, dirty=True
            )
        else:
            prev.fields |= mine
            prev.api_version, prev.time, prev.dirty = api_version, now, True
    _store_entries(new, entries)
