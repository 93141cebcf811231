"""JSON type checks for built-in kinds, mirroring Go's typed decoding (a 400 on mismatch).

A real server cannot store ``data: {"a": 1}`` in a ConfigMap: decoding into the Go struct
fails first. Storing it anyway would poison every later read by the strict pydantic models
of the Python client (ENV-3), so the embedded server checks JSON types against those same
models. Each model is compiled once into a small descriptor tree.
"""

from __future__ import annotations

import datetime
import threading
import types
import typing
from typing import Any

from ._schema_builtin import model_for

__all__ = ["go_json_type", "type_errors"]

Obj = dict[str, Any]
# ("any",) | ("str",) | ("int",) | ("bool",) | ("float",) | ("union", [descs])
# | ("list", desc) | ("dict", desc) | ("model", fields)
Desc = tuple[Any, ...]

_ANY: Desc = ("any",)
_lock = threading.RLock()
_compiled: dict[type, Desc] = {}
_GO_TYPE = {"str": "string", "int": "int64", "bool": "bool", "float": "float64"}


def _describe(annotation: Any) -> Desc:
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _describe(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        members = [_describe(a) for a in typing.get_args(annotation) if a is not type(None)]
        if any(m == _ANY for m in members):
            return _ANY
        return members[0] if len(members) == 1 else ("union", members)
    if origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
        args = typing.get_args(annotation)
        return ("list", _describe(args[0]) if args else _ANY)
    if origin in (dict, typing.Dict):  # noqa: UP006
        args = typing.get_args(annotation)
        return ("dict", _describe(args[1]) if len(args) == 2 else _ANY)
    if annotation is bool:
        return ("bool",)
    if annotation is int:
        return ("int",)
    if annotation is float:
        return ("float",)
    if annotation in (str, bytes, datetime.datetime, datetime.date):
        return ("str",)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model(annotation)
    return _ANY


def _model(cls: type) -> Desc:
    with _lock:
        desc = _compiled.get(cls)
        if desc is not None:
            return desc
        fields: dict[str, Desc] = {}
        desc = ("model", fields, cls.__name__)
        _compiled[cls] = desc  # before recursing: models refer to themselves
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            wire = info.serialization_alias or info.alias or name
            fields[wire] = _describe(info.annotation)
        return desc


def go_json_type(v: Any) -> str:
    """How Go's ``json: cannot unmarshal <type> into ...`` names the type of a JSON value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _fits(value: Any, desc: Desc) -> bool:
    tag = desc[0]
    if tag == "any":
        return True
    if tag == "str":
        return isinstance(value, str)
    if tag == "bool":
        return isinstance(value, bool)
    if tag == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tag == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tag == "union":
        return any(_fits(value, d) for d in desc[1])
    if tag == "list":
        return isinstance(value, list)
    return isinstance(value, dict)


def _go_name(desc: Desc) -> str:
    tag = desc[0]
    if tag in _GO_TYPE:
        return _GO_TYPE[tag]
    if tag == "list":
        return "[]" + _go_name(desc[1])
    if tag == "dict":
        return "map[string]" + _go_name(desc[1])
    if tag == "model":
        return "v1." + str(desc[2]).removeprefix("V1").removeprefix("Core")
    return "interface {}"


def _walk(value: Any, desc: Desc, path: str, kind: str, out: list[str]) -> None:
    if value is None or desc[0] == "any":
        return
    if not _fits(value, desc):
        out.append(
            f"json: cannot unmarshal {go_json_type(value)} into Go struct field "
            f"{kind}.{path} of type {_go_name(desc)}"
        )
        return
    tag = desc[0]
    if tag == "model":
        fields = desc[1]
        for k, v in value.items():
            sub = fields.get(k)
            if sub is not None:
                _walk(v, sub, f"{path}.{k}" if path else k, kind, out)
    elif tag == "list":
        for v in value:
            _walk(v, desc[1], path, kind, out)
    elif tag == "dict":
        for v in value.values():
            _walk(v, desc[1], path, kind, out)


def type_errors(obj: Obj, *, group: str, version: str, kind: str) -> list[str]:
    """Go decoding errors for ``obj`` as the built-in ``kind`` (empty when well typed)."""
    cls = model_for(group, version, kind)
    if cls is None:
        return []
    out: list[str] = []
    _walk(obj, _model(cls), "", kind, out)
    return out
