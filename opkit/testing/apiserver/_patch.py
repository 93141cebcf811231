"""The patch engine: JSON merge patch (PATCH-3), JSON patch (PATCH-2), strategic merge
patch (PATCH-4) and server-side apply (SSA-3).

All functions are pure: they return new objects and never modify their inputs, so the
request pipeline can run them on stored objects directly. Failures raise
:class:`PatchError` (``.code`` 422 or 400) or, for apply, :class:`ApplyConflict` (409).
The strategic merge patch lives in ``_smp`` and server-side apply in ``_ssa``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ._smp import (
    MISSING,
    KindStrategies,
    ListKeys,
    PatchError,
    SchemaStrategies,
    builtin_list_keys,
    builtin_strategies,
    deep_copy,
    json_equal,
    schema_list_keys,
    strategic_merge_patch,
)
from ._ssa import ApplyConflict, record_update, render_path, server_side_apply

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "ApplyConflict",
    "KindStrategies",
    "ListKeys",
    "PatchError",
    "SchemaStrategies",
    "builtin_list_keys",
    "builtin_strategies",
    "json_equal",
    "json_patch",
    "merge_patch",
    "record_update",
    "render_path",
    "schema_list_keys",
    "server_side_apply",
    "strategic_merge_patch",
]

MAX_JSON_PATCH_OPERATIONS: Final = 10000


# --- RFC 7386 -------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``null`` deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    out = deep_copy(target) if isinstance(target, dict) else {}
    _merge_into(out, patch)
    return out


def _merge_into(out: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            cur = out.get(key)
            if not isinstance(cur, dict):
                cur = {}
            _merge_into(cur, value)
            out[key] = cur
        else:
            out[key] = deep_copy(value)


# --- RFC 6902 -------------------------------------------------------------------------

_OPS: Final = ("add", "remove", "replace", "move", "copy", "test")
_INDEX: Final = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE: Final = re.compile(r"~(?![01])")


class _Op:
    __slots__ = ("from_", "from_ptr", "name", "path", "ptr", "value")

    def __init__(self, number: int, op: Any) -> None:
        where = f"json patch operation {number}"
        if not isinstance(op, dict):
            raise PatchError(f"{where} is not an object: {_dump(op)}", 400)
        name = op.get("op")
        if not isinstance(name, str):
            raise PatchError(f'{where}: missing "op"', 400)
        if name not in _OPS:
            raise PatchError(f"{where}: unknown op {_dump(name)}", 400)
        self.name: str = name
        self.ptr, self.path = _pointer(op.get("path", MISSING), where, "path")
        self.value: Any = op.get("value", MISSING)
        if name in ("add", "replace", "test") and self.value is MISSING:
            raise PatchError(f'{where}: "{name}" needs a "value"', 400)
        self.from_ptr = ""
        self.from_: list[str] = []
        if name in ("move", "copy"):
            self.from_ptr, self.from_ = _pointer(op.get("from", MISSING), where, "from")


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _pointer(raw: Any, where: str, name: str) -> tuple[str, list[str]]:
    if raw is MISSING:
        raise PatchError(f'{where}: missing "{name}"', 400)
    if not isinstance(raw, str):
        raise PatchError(f'{where}: "{name}" must be a string, not {_dump(raw)}', 400)
    if raw == "":
        return raw, []
    if not raw.startswith("/") or _BAD_ESCAPE.search(raw):
        raise PatchError(f'{where}: "{name}" is not a JSON pointer: {_dump(raw)}', 400)
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in raw[1:].split("/")]
    return raw, tokens


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; the operations are checked before any is applied."""
    if not isinstance(ops, list):
        raise PatchError(f"a json patch must be a JSON array of operations, not {_dump(ops)}", 400)
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got: {len(ops)}"
        )
    parsed = [_Op(i, op) for i, op in enumerate(ops)]
    doc = deep_copy(target)
    for op in parsed:
        doc = _apply(doc, op)
    return doc


def _fail(op: str, detail: str) -> PatchError:
    return PatchError(f"jsonpatch {op} operation does not apply: {detail}")


def _missing(op: str, ptr: str) -> PatchError:
    return _fail(op, f"doc is missing path: {_dump(ptr)}")


def _index(op: str, ptr: str, token: str, size: int, *, inclusive: bool) -> int:
    if not _INDEX.fullmatch(token):
        raise _fail(op, f"invalid array index {_dump(token)} in path {_dump(ptr)}")
    index = int(token)
    if index > size or (index == size and not inclusive):
        raise _fail(op, f"index {index} out of bounds for list of length {size} at {_dump(ptr)}")
    return index


def _resolve(doc: Any, tokens: list[str], op: str, ptr: str) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise _missing(op, ptr)
            cur = cur[token]
        elif isinstance(cur, list):
            if token == "-" or not _INDEX.fullmatch(token) or int(token) >= len(cur):
                raise _missing(op, ptr)
            cur = cur[int(token)]
        else:
            raise _missing(op, ptr)
    return cur


def _add(doc: Any, tokens: list[str], value: Any, op: str, ptr: str) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], op, ptr)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(op, ptr, last, len(parent), inclusive=True), value)
    else:
        raise _missing(op, ptr)
    return doc


def _remove(doc: Any, tokens: list[str], op: str, ptr: str) -> Any:
    """Remove the value at ``tokens`` and return it."""
    if not tokens:
        raise _fail(op, "cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], op, ptr)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing(op, ptr)
        return parent.pop(last)
    if isinstance(parent, list):
        if last == "-":
            raise _missing(op, ptr)
        return parent.pop(_index(op, ptr, last, len(parent), inclusive=False))
    raise _missing(op, ptr)


def _apply(doc: Any, op: _Op) -> Any:
    name = op.name
    if name == "add":
        return _add(doc, op.path, deep_copy(op.value), name, op.ptr)
    if name == "remove":
        _remove(doc, op.path, name, op.ptr)
        return doc
    if name == "replace":
        if not op.path:
            return deep_copy(op.value)
        _remove(doc, op.path, name, op.ptr)
        return _add(doc, op.path, deep_copy(op.value), name, op.ptr)
    if name == "test":
        actual = _resolve(doc, op.path, name, op.ptr)
        if not json_equal(actual, op.value):
            raise _fail(name, f"is: {_dump(actual)}, expected: {_dump(op.value)}")
        return doc
    if name == "copy":
        value = deep_copy(_resolve(doc, op.from_, name, op.from_ptr))
        return _add(doc, op.path, value, name, op.ptr)
    # move
    if op.path[: len(op.from_)] == op.from_ and len(op.path) > len(op.from_):
        raise _fail(name, f"cannot move {_dump(op.from_ptr)} into its own child {_dump(op.ptr)}")
    if op.path == op.from_:
        _resolve(doc, op.from_, name, op.from_ptr)
        return doc
    value = _remove(doc, op.from_, name, op.from_ptr)
    return _add(doc, op.path, value, name, op.ptr)
