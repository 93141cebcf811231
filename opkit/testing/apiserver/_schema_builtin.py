"""Unknown-field detection for built-in kinds (VALID-2), from the kubernetes client models.

The pydantic models in ``kubernetes.client.models`` mirror the Go types field by field, so
their wire names (serialization aliases) are the fields a real server's strict decoder knows.
Each model is turned once into a plain lookup tree, so checking an object costs one dict walk.
"""

from __future__ import annotations

import threading
import types
import typing
from typing import Any

__all__ = ["builtin_unknown_fields", "model_for"]

Obj = dict[str, Any]

# A compiled type: None = anything goes; "M" = model fields; "L" = list of; "D" = map of.
_Desc = tuple[str, Any] | None

_lock = threading.Lock()
_model_fields: dict[type, dict[str, _Desc]] = {}
_kind_models: dict[tuple[str, str, str], type | None] = {}

_PLAIN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "extensions"})


def _models() -> Any:
    from kubernetes.client import models

    return models


def _is_builtin_group(group: str) -> bool:
    return group in _PLAIN_GROUPS or group.endswith(".k8s.io") or group == "k8s.io"


def model_for(group: str, version: str, kind: str) -> type | None:
    """The ``kubernetes.client`` model of a built-in kind (cached), or None."""
    key = (group, version, kind)
    if key in _kind_models:
        return _kind_models[key]
    cls: type | None = None
    if _is_builtin_group(group) and version and kind:
        from pydantic import BaseModel

        models = _models()
        ver = version[:1].upper() + version[1:]
        prefix = "Core" if not group else group.split(".", maxsplit=1)[0].capitalize()
        for name in (f"{prefix}{ver}{kind}", f"{ver}{kind}"):
            cand = getattr(models, name, None)
            if (
                isinstance(cand, type)
                and issubclass(cand, BaseModel)
                and "kind" in cand.model_fields
            ):
                cls = cand
                break
    _kind_models[key] = cls
    return cls


def _describe(annotation: Any) -> _Desc:
    """Reduce a field annotation to the shape that matters for unknown-field detection."""
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _describe(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _describe(members[0])
        return None
    if origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
        args = typing.get_args(annotation)
        inner = _describe(args[0]) if args else None
        return ("L", inner) if inner is not None else None
    if origin in (dict, typing.Dict):  # noqa: UP006
        args = typing.get_args(annotation)
        inner = _describe(args[1]) if len(args) == 2 else None
        return ("D", inner) if inner is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("M", annotation)
    return None


def _fields_of(cls: type) -> dict[str, _Desc]:
    fields = _model_fields.get(cls)
    if fields is not None:
        return fields
    with _lock:
        fields = _model_fields.get(cls)
        if fields is None:
            fields = {}
            for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
                wire = info.serialization_alias or info.alias or name
                fields[wire] = _describe(info.annotation)
            _model_fields[cls] = fields
    return fields


def _walk(value: Any, desc: _Desc, path: str, out: list[str]) -> None:
    if desc is None:
        return
    tag, inner = desc
    if tag == "M":
        if not isinstance(value, dict):
            return
        fields = _fields_of(inner)
        for k, v in value.items():
            sub = path + "." + k if path else k
            if k not in fields:
                out.append(sub)
                continue
            d = fields[k]
            if d is not None and v is not None:
                _walk(v, d, sub, out)
    elif tag == "L":
        if isinstance(value, list):
            for i, v in enumerate(value):
                if v is not None:
                    _walk(v, inner, f"{path}[{i}]", out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                _walk(v, inner, f"{path}.{k}", out)


def builtin_unknown_fields(obj: Obj, *, group: str, version: str, kind: str) -> list[str]:
    """Paths of fields the built-in type does not have (``spec.template.spec.foo``).

    Returns [] for kinds without a client model (custom resources, unknown kinds).
    """
    cls = model_for(group, version, kind)
    if cls is None:
        return []
    out: list[str] = []
    _walk(obj, ("M", cls), "", out)
    return out
