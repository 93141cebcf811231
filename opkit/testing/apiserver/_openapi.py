"""OpenAPI v3 documents for kubectl (OAPI-1..3, and a useful part of OAPI-5).

kubectl reads these to decide whether the server validates fields (``fieldValidation`` on
the PATCH operation of a kind) and, for ``kubectl explain``, to describe fields. Patch
operations deliberately omit ``application/strategic-merge-patch+json`` so kubectl uses
its compiled-in patch metadata for built-ins and merge patches for custom resources.

Built-in schemas are derived from the ``kubernetes`` package's models; custom resources
use their CRD's ``openAPIV3Schema``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._registry import Registry, Subresource
from ._types import ResourceType

__all__ = ["document", "gv_path", "index", "schema_name"]

Obj = dict[str, Any]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_OBJECT_META = f"{_META}.ObjectMeta"
_LIST_META = f"{_META}.ListMeta"
_PATCH = f"{_META}.Patch"
_STATUS = f"{_META}.Status"
_DELETE_OPTIONS = f"{_META}.DeleteOptions"
_SCALE = "io.k8s.api.autoscaling.v1.Scale"

_GROUP_PACKAGES = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "batch": "io.k8s.api.batch",
    "policy": "io.k8s.api.policy",
    "events.k8s.io": "io.k8s.api.events",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "discovery.k8s.io": "io.k8s.api.discovery",
    "autoscaling": "io.k8s.api.autoscaling",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}


def gv_path(group: str, version: str) -> str:
    """The key of a group/version in the ``/openapi/v3`` index: ``api/v1``, ``apis/g/v``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(rt: ResourceType) -> str:
    """Component name of a kind: ``io.k8s.api.apps.v1.StatefulSet``, ``com.example.v1.Widget``."""
    package = _GROUP_PACKAGES.get(rt.group) if not rt.is_custom else None
    if package is None:
        package = ".".join(reversed(rt.group.split(".")))
    return f"{package}.{rt.version}.{rt.kind}"


def _ref(name: str) -> Obj:
    return {"$ref": f"#/components/schemas/{name}"}


def _gvk(group: str, version: str, kind: str) -> Obj:
    return {"group": group, "kind": kind, "version": version}


# -- Schemas from the kubernetes package's models ---------------------------------------

_WELL_KNOWN = {
    "V1ObjectMeta": _OBJECT_META,
    "V1ListMeta": _LIST_META,
    "V1Status": _STATUS,
    "V1DeleteOptions": _DELETE_OPTIONS,
    "V1Scale": _SCALE,
}
_PRIMITIVES: dict[str, Obj] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytes": {"type": "string", "format": "byte"},
    "bytearray": {"type": "string", "format": "byte"},
    "object": {},
}


def _model_class_name(rt: ResourceType) -> str:
    if rt.kind == "Event":
        return "CoreV1Event" if rt.group == "" else "EventsV1Event"
    return f"V1{rt.kind}"


def _split_generic(inner: str) -> tuple[str, str]:
    depth = 0
    for i, ch in enumerate(inner):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            return inner[:i].strip(), inner[i + 1 :].strip()
    return inner, ""


class _ModelSchemas:
    """Turns model classes into named component schemas, each class once."""

    def __init__(self, models: Any) -> None:
        self.models = models
        self.schemas: dict[str, Obj] = {}

    def name_for(self, cls_name: str) -> str:
        """Deterministic component names, so closures of different kinds agree."""
        if cls_name in _WELL_KNOWN:
            return _WELL_KNOWN[cls_name]
        if re.match(r"^V1[A-Z]", cls_name):
            return f"io.k8s.models.{cls_name[2:]}"
        return f"io.k8s.models.{cls_name}"

    def type_schema(self, text: str) -> Obj:
        text = text.strip()
        if text.startswith("List[") and text.endswith("]"):
            return {"type": "array", "items": self.type_schema(text[5:-1])}
        if text.startswith("Dict[") and text.endswith("]"):
            _, value = _split_generic(text[5:-1])
            return {"type": "object", "additionalProperties": self.type_schema(value or "object")}
        if text in _PRIMITIVES:
            return dict(_PRIMITIVES[text])
        if getattr(self.models, text, None) is None:
            return {}
        return _ref(self.model(text))

    def model(self, cls_name: str) -> str:
        name = self.name_for(cls_name)
        if name in self.schemas:
            return name
        cls = getattr(self.models, cls_name)
        schema: Obj = {"type": "object", "properties": {}}
        self.schemas[name] = schema
        required = []
        fields = getattr(cls, "model_fields", {})
        for attr, type_text in getattr(cls, "openapi_types", {}).items():
            json_name = cls.attribute_map.get(attr, attr)
            prop = self.type_schema(type_text)
            info = fields.get(attr)
            description = getattr(info, "description", None)
            if "$ref" in prop:
                prop = {"allOf": [prop]}
            if description:
                prop["description"] = description
            schema["properties"][json_name] = prop
            if info is not None and info.is_required():
                required.append(json_name)
        if required:
            schema["required"] = required
        return name


@lru_cache(maxsize=64)
def _model_closure(cls_name: str) -> tuple[str, str] | None:
    """(component name, JSON of all components it needs) for one model class, or None."""
    try:
        from kubernetes.client import models
    except ImportError:  # pragma: no cover - the package is a hard dependency
        return None
    if getattr(models, cls_name, None) is None:
        return None
    builder = _ModelSchemas(models)
    name = builder.model(cls_name)
    return name, json.dumps(builder.schemas)


def _object_meta_components() -> dict[str, Obj]:
    closure = _model_closure("V1ObjectMeta")
    if closure is None:
        return {_OBJECT_META: {"type": "object"}}
    schemas: dict[str, Obj] = json.loads(closure[1])
    return schemas


def _builtin_schema(rt: ResourceType, components: dict[str, Obj]) -> Obj:
    closure = _model_closure(_model_class_name(rt))
    if closure is None:
        return _minimal_schema(rt)
    model_name, text = closure
    schemas: dict[str, Obj] = json.loads(text)
    own = schemas.pop(model_name)
    for key, value in schemas.items():
        components.setdefault(key, value)
    return own


def _minimal_schema(rt: ResourceType) -> Obj:
    return {
        "type": "object",
        "description": f"{rt.kind} ({rt.api_version}).",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(_OBJECT_META)]},
            "spec": {"type": "object"},
            "status": {"type": "object"},
        },
    }


def _custom_schema(rt: ResourceType) -> Obj:
    raw = getattr(rt.schema, "raw", None)
    schema: Obj = copy.deepcopy(raw) if isinstance(raw, dict) else {"type": "object"}
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    if isinstance(props, dict):
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"allOf": [_ref(_OBJECT_META)]}
    return schema


def _kind_schema(rt: ResourceType, components: dict[str, Obj]) -> Obj:
    schema = _custom_schema(rt) if rt.is_custom else _builtin_schema(rt, components)
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt.group, rt.version, rt.kind)]
    return schema


def _list_schema(rt: ResourceType, item: str) -> Obj:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(_LIST_META)]},
            "items": {"type": "array", "items": _ref(item)},
        },
        "x-kubernetes-group-version-kind": [_gvk(rt.group, rt.version, rt.list_kind)],
    }


def _common_components() -> dict[str, Obj]:
    comps = _object_meta_components()
    comps[_LIST_META] = {
        "type": "object",
        "properties": {
            "continue": {"type": "string"},
            "remainingItemCount": {"type": "integer", "format": "int64"},
            "resourceVersion": {"type": "string"},
        },
    }
    comps[_PATCH] = {
        "type": "object",
        "description": "A patch document: JSON patch, JSON merge patch or apply configuration.",
    }
    comps[_STATUS] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "reason": {"type": "string"},
            "status": {"type": "string"},
            "details": {"type": "object"},
        },
        "x-kubernetes-group-version-kind": [_gvk("", "v1", "Status")],
    }
    comps[_DELETE_OPTIONS] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "dryRun": {"type": "array", "items": {"type": "string"}},
            "gracePeriodSeconds": {"type": "integer", "format": "int64"},
            "propagationPolicy": {"type": "string"},
            "preconditions": {"type": "object"},
        },
    }
    return comps


def _scale_schema() -> Obj:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(_OBJECT_META)]},
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            "status": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer"},
                    "selector": {"type": "string"},
                },
            },
        },
        "x-kubernetes-group-version-kind": [_gvk("autoscaling", "v1", "Scale")],
    }


# -- Paths ------------------------------------------------------------------------------


def _query(name: str, type_: str = "string", description: str = "") -> Obj:
    param: Obj = {"name": name, "in": "query", "schema": {"type": type_}, "uniqueItems": True}
    if description:
        param["description"] = description
    return param


def _path_param(name: str) -> Obj:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "uniqueItems": True,
    }


_WRITE_PARAMS = [
    _query(
        "dryRun", description="When present, indicates that modifications should not be persisted."
    ),
    _query("fieldManager", description="Name of the actor making the change."),
    _query(
        "fieldValidation",
        description="How to treat unknown or duplicate fields: Ignore, Warn or Strict.",
    ),
]
_PATCH_PARAMS = [
    *_WRITE_PARAMS,
    _query("force", "boolean", "Force an apply, taking ownership of conflicting fields."),
]
_LIST_PARAMS = [
    _query("allowWatchBookmarks", "boolean"),
    _query("continue"),
    _query("fieldSelector"),
    _query("labelSelector"),
    _query("limit", "integer"),
    _query("resourceVersion"),
    _query("resourceVersionMatch"),
    _query("sendInitialEvents", "boolean"),
    _query("timeoutSeconds", "integer"),
    _query("watch", "boolean"),
]
_DELETE_PARAMS = [
    _query("dryRun"),
    _query("gracePeriodSeconds", "integer"),
    _query("propagationPolicy"),
]


def _content(
    schema_ref: str, types: tuple[str, ...] = ("application/json", "application/yaml")
) -> Obj:
    return {t: {"schema": _ref(schema_ref)} for t in types}


def _operation_id(verb: str, rt: ResourceType, scope: str, suffix: str = "") -> str:
    group = rt.group.removesuffix(".k8s.io") if rt.group else "core"
    group_word = "".join(p[:1].upper() + p[1:] for p in re.split(r"[.-]", group) if p)
    version = rt.version[:1].upper() + rt.version[1:]
    return f"{verb}{group_word}{version}{scope}{rt.kind}{suffix}"


def _patch_body() -> Obj:
    return {
        "content": {
            "application/json-patch+json": {"schema": _ref(_PATCH)},
            "application/merge-patch+json": {"schema": _ref(_PATCH)},
            "application/apply-patch+yaml": {"schema": _ref(_PATCH)},
        },
        "required": True,
    }


def _body(ref: str) -> Obj:
    return {"content": {"*/*": {"schema": _ref(ref)}}, "required": True}


@dataclass(frozen=True)
class _Ops:
    """Builds the operations of one kind's paths, which share its scope, GVK and tag."""

    rt: ResourceType
    scope: str
    gvk: Obj
    tag: str

    def op(
        self,
        action: str,
        verb: str,
        response: str,
        *,
        suffix: str = "",
        params: list[Obj] | None = None,
        body: Obj | None = None,
        created: bool = False,
    ) -> Obj:
        responses: Obj = {"200": {"description": "OK", "content": _content(response)}}
        if created:
            responses["201"] = {"description": "Created", "content": _content(response)}
        op: Obj = {
            "tags": [self.tag] if self.tag else [],
            "description": f"{action} {self.gvk['kind']}",
            "operationId": _operation_id(verb, self.rt, self.scope, suffix),
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": dict(self.gvk),
        }
        if params:
            op["parameters"] = [dict(p) for p in params]
        if body is not None:
            op["requestBody"] = body
        return op

    def object_ops(self, verbs: Iterable[str], ref: str, suffix: str = "") -> Obj:
        """``get``/``put``/``patch`` of one object or subresource answering with ``ref``."""
        ops: Obj = {}
        if "get" in verbs:
            ops["get"] = self.op("get", "read", ref, suffix=suffix)
        if "update" in verbs:
            ops["put"] = self.op(
                "put",
                "replace",
                ref,
                suffix=suffix,
                params=_WRITE_PARAMS,
                body=_body(ref),
                created=True,
            )
        if "patch" in verbs:
            ops["patch"] = self.op(
                "patch",
                "patch",
                ref,
                suffix=suffix,
                params=_PATCH_PARAMS,
                body=_patch_body(),
                created=True,
            )
        return ops


def _resource_paths(reg: Registry, rt: ResourceType, prefix: str, paths: dict[str, Obj]) -> None:
    kind_ref = schema_name(rt)
    list_ref = kind_ref + "List"
    ops = _Ops(
        rt,
        "Namespaced" if rt.namespaced else "",
        _gvk(rt.group, rt.version, rt.kind),
        gv_path(rt.group, rt.version).replace("/", "_"),
    )
    ns_params = [_path_param("namespace")] if rt.namespaced else []
    base = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    verbs = set(rt.verbs)

    collection: Obj = {"parameters": [*ns_params, _query("pretty")]}
    if "list" in verbs:
        collection["get"] = ops.op("list", "list", list_ref, params=_LIST_PARAMS)
    if "create" in verbs:
        collection["post"] = ops.op(
            "post", "create", kind_ref, params=_WRITE_PARAMS, body=_body(kind_ref), created=True
        )
    if "deletecollection" in verbs:
        collection["delete"] = ops.op(
            "deletecollection",
            "deletecollection",
            _STATUS,
            params=[*_DELETE_PARAMS, *_LIST_PARAMS],
        )
    paths[base] = collection

    item: Obj = {"parameters": [_path_param("name"), *ns_params, _query("pretty")]}
    item.update(ops.object_ops(verbs, kind_ref))
    if "delete" in verbs:
        item["delete"] = ops.op(
            "delete",
            "delete",
            _STATUS,
            params=_DELETE_PARAMS,
            body={"content": {"*/*": {"schema": _ref(_DELETE_OPTIONS)}}},
        )
    paths[f"{base}/{{name}}"] = item

    if rt.namespaced and "list" in verbs:
        all_namespaces = _Ops(rt, "", ops.gvk, ops.tag)
        paths[f"{prefix}/{rt.plural}"] = {
            "parameters": [_query("pretty")],
            "get": all_namespaces.op(
                "list", "list", list_ref, suffix="ForAllNamespaces", params=_LIST_PARAMS
            ),
        }

    for sub in reg.subresources(rt):
        paths[f"{base}/{{name}}/{sub.name}"] = _subresource_path(ops, sub, ns_params)


def _subresource_path(ops: _Ops, sub: Subresource, ns_params: list[Obj]) -> Obj:
    rt = ops.rt
    suffix = sub.name[:1].upper() + sub.name[1:]
    sub_ops = _Ops(rt, ops.scope, _gvk(sub.group, sub.version, sub.kind), ops.tag)
    ref = _SCALE if sub.kind == "Scale" and sub.group == "autoscaling" else schema_name(rt)
    entry: Obj = {"parameters": [_path_param("name"), *ns_params, _query("pretty")]}
    if sub.name == "log":
        entry["get"] = {
            "tags": [ops.tag],
            "operationId": _operation_id("read", rt, ops.scope, "Log"),
            "parameters": [
                _query("container"),
                _query("follow", "boolean"),
                _query("tailLines", "integer"),
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
            "x-kubernetes-action": "get",
            "x-kubernetes-group-version-kind": dict(sub_ops.gvk),
        }
        return entry
    entry.update(sub_ops.object_ops(sub.verbs, ref, suffix))
    return entry


def _build(reg: Registry, group: str, version: str) -> Obj | None:
    types = reg.resources(group, version)
    if not types:
        return None
    prefix = "/" + gv_path(group, version)
    paths: dict[str, Obj] = {}
    components = _common_components()
    for rt in types:
        name = schema_name(rt)
        components[name] = _kind_schema(rt, components)
        components[name + "List"] = _list_schema(rt, name)
        if rt.scale is not None:
            components[_SCALE] = _scale_schema()
        _resource_paths(reg, rt, prefix, paths)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(components.items()))},
    }


# -- Cache and public API ---------------------------------------------------------------


class _Cached:
    __slots__ = ("doc", "hash", "key")

    def __init__(self, key: tuple[Any, ...], doc: Obj, digest: str) -> None:
        self.key = key
        self.doc = doc
        self.hash = digest


_lock = threading.Lock()
_cache: weakref.WeakKeyDictionary[Registry, dict[str, _Cached]] = weakref.WeakKeyDictionary()


def _cache_key(reg: Registry, group: str, version: str) -> tuple[Any, ...]:
    types = reg.resources(group, version)
    custom = any(t.is_custom for t in types)
    return (tuple(id(t) for t in types), reg.generation if custom else 0)


def _entry(reg: Registry, group: str, version: str) -> _Cached | None:
    path = gv_path(group, version)
    key = _cache_key(reg, group, version)
    with _lock:
        hit = _cache.get(reg, {}).get(path)
    if hit is not None and hit.key == key:
        return hit
    doc = _build(reg, group, version)
    if doc is None:
        return None
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    entry = _Cached(key, doc, hashlib.sha512(text.encode()).hexdigest().upper())
    with _lock:
        _cache.setdefault(reg, {})[path] = entry
    return entry


def index(reg: Registry) -> Obj:
    """``GET /openapi/v3``: every served group/version with a content hash (OAPI-1)."""
    paths: Obj = {}
    for group, versions in reg.group_versions():
        for version in versions:
            entry = _entry(reg, group, version)
            if entry is None:
                continue
            path = gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={entry.hash}"}
    return {"paths": paths}


def document(reg: Registry, path: str) -> Obj | None:
    """``GET /openapi/v3/{path}`` (``api/v1`` or ``apis/{group}/{version}``), or None.

    The returned dict is shared with the cache: serialise it, don't modify it.
    """
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    else:
        return None
    entry = _entry(reg, group, version)
    return entry.doc if entry is not None else None
