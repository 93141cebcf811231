"""The write pipeline shared by HTTP handlers and the in-server controllers.

Create, update, patch and delete follow the order upstream's generic registry uses:
decode checks, admission (namespace lifecycle), system metadata, spec/status split,
unknown fields, defaulting, validation, generation, managed fields, then an optimistic
write to the store (retried when a concurrent writer won and the client gave no
resourceVersion). Everything here speaks plain dicts and raises ``APIError``.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from opkit import labels
from opkit.clock import Clock

from . import _builtins, _bytesfields, _patch, _schema, _typecheck, _yamlbody
from ._fielderrors import FieldError
from ._registry import Registry
from ._status import (
    APIError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    status_success,
)
from ._store import AlreadyExistsError, ConflictError, NotFoundError, Store, Stored, dumps
from ._types import ResourceType

__all__ = ["Backend", "DeleteOptions", "WriteContext"]

Obj = dict[str, Any]

_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SYSTEM_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generation",
)
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
CRD_GROUP = "apiextensions.k8s.io"
# Registries with ReturnDeletedObject: the deleted object, not a Status (ERR-3).
_RETURNS_DELETED = {
    ("", "pods"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
}
_WRITE_RETRIES = 32


@dataclass
class WriteContext:
    """Per-request write options and what happened (warnings, persisted)."""

    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    warnings: list[str] = field(default_factory=list)
    persisted: int = 0
    status_code: int = 200


@dataclass
class DeleteOptions:
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def parse_body(raw: bytes, content_type: str, *, strict: bool = False) -> Any:
    """Decode a JSON or YAML request body; malformed input is a 400."""
    if not raw.strip():
        raise bad_request("request body is empty")
    if content_type in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return _yamlbody.load(raw)
        except (yaml.YAMLError, _yamlbody.YAMLBodyError, RecursionError) as e:
            raise bad_request(f"error converting YAML to JSON: {e}") from e
    try:
        if strict:
            return json.loads(raw, object_pairs_hook=_no_duplicates)
        return json.loads(raw)
    except _DuplicateKeyError as e:
        raise bad_request(f'strict decoding error: json: duplicate field "{e.key}"') from e
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise bad_request(f"the object provided is unrecognized or malformed JSON: {e}") from e


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> Obj:
    out: Obj = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


def _check_meta_types(obj: Obj) -> None:
    """What Go's typed decoding would reject outright, as a 400."""
    meta = obj.get("metadata")
    if meta is None:
        return
    if not isinstance(meta, dict):
        raise bad_request(
            "json: cannot unmarshal into Go struct field of type v1.ObjectMeta: metadata "
            "must be an object"
        )
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        v = meta.get(key)
        if v is not None and not isinstance(v, str):
            raise _unmarshal_error(v, key, "string")
    for key in ("labels", "annotations"):
        v = meta.get(key)
        if v is None:
            continue
        if not isinstance(v, dict):
            raise _unmarshal_error(v, key, "map[string]string")
        for val in v.values():
            if not isinstance(val, str):
                raise _unmarshal_error(val, key, "string")
    for key, item_type, go_type in (
        ("finalizers", str, "[]string"),
        ("ownerReferences", dict, "[]v1.OwnerReference"),
    ):
        v = meta.get(key)
        if v is not None and (
            not isinstance(v, list) or not all(isinstance(x, item_type) for x in v)
        ):
            raise bad_request(
                f"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{key} "
                f"of type {go_type}"
            )


def _unmarshal_error(value: Any, key: str, go_type: str) -> APIError:
    return bad_request(
        f"json: cannot unmarshal {_typecheck.go_json_type(value)} into Go struct field "
        f"ObjectMeta.metadata.{key} of type {go_type}"
    )


def get_path(obj: Any, path: str) -> Any:
    """Value at a ``.spec.replicas`` style path, or None."""
    cur = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


class Backend:
    """Object operations with full API semantics, independent of HTTP."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        ip_alloc: Any,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.ip_alloc = ip_alloc
        self._list_keys: dict[tuple[Any, ...], _patch.ListKeys] = {}
        self._lk_lock = threading.Lock()
        self.crd_rt = registry.lookup(CRD_GROUP, "v1", "customresourcedefinitions")
        # Called with "plural.group" when a CRD's endpoints go away (ends their watches).
        self.on_crd_removed: Callable[[str], None] | None = None
        ns_rt = registry.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        self.ns_rt = ns_rt

    # -- helpers ---------------------------------------------------------------------------

    def now_str(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def list_keys(self, rt: ResourceType) -> _patch.ListKeys:
        key = (rt.group, rt.version, rt.kind, id(rt.schema))
        with self._lk_lock:
            lk = self._list_keys.get(key)
            if lk is None:
                if rt.is_custom and rt.schema is not None:
                    lk = _patch.schema_list_keys(rt.schema.raw)
                else:
                    lk = _patch.builtin_list_keys(rt.group, rt.kind)
                self._list_keys[key] = lk
            return lk

    @staticmethod
    def to_view(rt: ResourceType, obj: Obj) -> Obj:
        """The stored object as seen through ``rt`` (may be the stored dict itself)."""
        if rt.from_storage is not None:
            return rt.from_storage(obj)
        if obj.get("apiVersion") != rt.api_version:
            out = dict(obj)
            out["apiVersion"] = rt.api_version
            return out
        return obj

    @staticmethod
    def view_raw(rt: ResourceType, stored: Stored) -> bytes:
        if rt.from_storage is None and stored.obj.get("apiVersion") == rt.api_version:
            return stored.raw
        return dumps(Backend.to_view(rt, stored.obj))

    def view_copy(self, rt: ResourceType, stored: Stored) -> Obj:
        obj = stored.copy_obj()
        if rt.from_storage is not None:
            return rt.from_storage(obj)
        obj["apiVersion"] = rt.api_version
        return obj

    @staticmethod
    def to_storage(rt: ResourceType, obj: Obj) -> Obj:
        return rt.to_storage(obj) if rt.to_storage is not None else obj

    def rt_for_bucket(self, bucket: str) -> ResourceType | None:
        best: ResourceType | None = None
        for rt in self.registry.all():
            if rt.storage == bucket:
                if rt.from_storage is None:
                    return rt
                best = best or rt
        return best

    def check_namespace_for_create(self, rt: ResourceType, ns: str, name: str) -> None:
        """NS-1: the namespace must exist and must not be terminating."""
        if not rt.namespaced:
            return
        nso = self.store.get(self.ns_rt.storage, "", ns)
        if nso is None:
            raise not_found("namespaces", "", ns)
        if _meta(nso.obj).get("deletionTimestamp"):
            msg = f"unable to create new content in namespace {ns} because it is being terminated"
            raise forbidden(
                rt.plural,
                rt.group,
                name,
                msg,
                [{"reason": "NamespaceTerminating", "message": msg, "field": "metadata.namespace"}],
            )

    def check_type_meta(self, rt: ResourceType, obj: Obj, *, require_kind: bool = False) -> None:
        """META-6 / CRD-7: fill in apiVersion and kind, or reject a mismatch."""
        if not isinstance(obj, dict):
            raise bad_request(
                f"the object provided is unrecognized or malformed: expected a {rt.kind} object"
            )
        _check_meta_types(obj)
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if require_kind and not kind:
            body = json.dumps(obj, separators=(",", ":"))
            raise bad_request(f"Object 'Kind' is missing in '{body}'")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if not kind or not api_version:
            # Keep apiVersion and kind first, as the real server does.
            rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            obj.clear()
            obj["apiVersion"] = rt.api_version
            obj["kind"] = rt.kind
            obj.update(rest)

    @staticmethod
    def decode_typed(rt: ResourceType, obj: Any, *, patched: bool = False) -> None:
        """What decoding into the Go type does to a body (Secret/ConfigMap ``[]byte`` fields).

        A request body that cannot be decoded is a 400; a patch whose result cannot be is a
        422 on ``patch`` (apiserver ``handlers/patch.go``).
        """
        if rt.is_custom or rt.group != "" or not isinstance(obj, dict):
            return
        detail = _bytesfields.decode_bytes_fields(rt.kind, obj)
        if detail is None:
            return
        if patched:
            raise invalid(
                "",
                "",
                "",
                [FieldError.invalid("patch", json.dumps(obj, separators=(",", ":")), detail)],
            )
        raise bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}'
        )

    def _check_namespace(self, rt: ResourceType, ns: str, obj: Obj) -> None:
        meta = _meta(obj)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)

    def _unknown_fields(self, rt: ResourceType, obj: Obj, ctx: WriteContext) -> None:
        """VALID-2: prune/drop unknown fields; Strict rejects, Warn warns."""
        if rt.is_custom:
            if rt.schema is None:
                return
            paths = rt.schema.prune(obj)
        else:
            paths = _schema.builtin_unknown_fields(
                obj, group=rt.group, version=rt.version, kind=rt.kind
            )
            if paths:
                _schema.drop_paths(obj, paths)
        if not paths:
            return
        if ctx.field_validation == "Strict":
            raise bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)
            )
        if ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{p}"' for p in paths)

    def _admit(
        self, rt: ResourceType, obj: Obj, old: Obj | None, ctx: WriteContext, sub: str = ""
    ) -> None:
        """Unknown fields, defaulting and validation (raises 400/422)."""
        self._unknown_fields(rt, obj, ctx)
        name = _meta(obj).get("name", "")
        errs: list[FieldError] = []
        if rt.is_custom:
            if rt.schema is not None:
                rt.schema.apply_defaults(obj)
                errs.extend(rt.schema.validate(obj, subtree="status" if sub == "status" else None))
        else:
            try:
                _builtins.apply_defaults(
                    rt, obj, ip_alloc=self.ip_alloc, old=old, dry_run=ctx.dry_run
                )
            except (TypeError, AttributeError, ValueError, KeyError):
                self._check_types(rt, obj)  # a badly typed object: answer 400
                raise
            self._check_types(rt, obj)
            if rt.group == CRD_GROUP and rt.kind == "CustomResourceDefinition":
                _schema.default_crd(obj)
                errs.extend(_schema.validate_crd(obj, old))
        errs = _builtins.validate(rt, obj, old) + errs
        if errs:
            self.release(rt, obj, keep=old, ctx=ctx)
            raise invalid(rt.kind, rt.group, name, errs)

    @staticmethod
    def _check_types(rt: ResourceType, obj: Obj) -> None:
        problems = _typecheck.type_errors(obj, group=rt.group, version=rt.version, kind=rt.kind)
        if problems:
            raise bad_request(problems[0])

    def release(
        self, rt: ResourceType, obj: Obj, *, keep: Obj | None, ctx: WriteContext | None = None
    ) -> None:
        """Give back Service IPs / node ports ``obj`` holds and ``keep`` does not."""
        if ctx is not None and ctx.dry_run:
            return
        if rt.group == "" and rt.kind == "Service":
            _builtins.release_allocations(rt, obj, ip_alloc=self.ip_alloc, keep=keep)

    def _manager(self, ctx: WriteContext) -> str:
        return ctx.field_manager or "unknown"

    # -- create ----------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        ns: str,
        obj: Obj,
        ctx: WriteContext,
        *,
        applied: bool = False,
    ) -> Obj | Stored:
        """POST semantics (META-2, META-4, STAT-1/2, GEN-1, NS-1, CRD-1/2)."""
        self.check_type_meta(rt, obj, require_kind=rt.is_custom)
        self.decode_typed(rt, obj)
        self._check_namespace(rt, ns, obj)
        meta = _meta(obj)
        name = meta.get("name") or ""
        generate = meta.get("generateName") or ""
        self.check_namespace_for_create(rt, ns, name)
        if rt.is_custom and self.crd_rt is not None:
            crd = self.store.get(self.crd_rt.storage, "", rt.crd_name)
            if crd is not None and _meta(crd.obj).get("deletionTimestamp"):
                raise APIError(
                    405,
                    "create not allowed while custom resource definition is terminating",
                    "MethodNotAllowed",
                    {"group": rt.group, "kind": rt.plural},
                )
        if not name and not generate:
            raise invalid(
                rt.kind,
                rt.group,
                "",
                [FieldError.required("metadata.name", "name or generateName is required")],
            )
        for key in _SYSTEM_META:
            meta.pop(key, None)
        if not applied:
            meta.pop("managedFields", None)
        if not name:
            meta["name"] = self._generate(generate)
        if rt.has_status:
            if rt.is_custom:
                obj.pop("status", None)
            else:
                _builtins.reset_status_on_create(rt, obj)
        self._admit(rt, obj, None, ctx)
        now = self.now_str()
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now
        if rt.tracks_generation or rt.is_custom:
            meta["generation"] = 1
        if self.crd_rt is not None and rt.storage == self.crd_rt.storage:
            self._crd_status(obj, None)
            fins = meta.setdefault("finalizers", [])
            if CRD_CLEANUP not in fins:
                fins.append(CRD_CLEANUP)
        if not applied:
            _patch.record_update(
                None,
                obj,
                manager=self._manager(ctx),
                api_version=rt.api_version,
                now=now,
                list_keys=self.list_keys(rt),
            )
        ctx.status_code = 201
        if ctx.dry_run:
            return obj
        stored_obj = self.to_storage(rt, obj)
        for _ in range(8):
            try:
                stored = self.store.create(
                    rt.storage, ns if rt.namespaced else "", meta["name"], stored_obj
                )
                break
            except AlreadyExistsError:
                if not generate or name:
                    self.release(rt, obj, keep=None)
                    raise already_exists(rt.plural, rt.group, meta["name"]) from None
                meta["name"] = self._generate(generate)
                _meta(stored_obj)["name"] = meta["name"]
        else:
            raise already_exists(
                rt.plural,
                rt.group,
                meta["name"],
                ", the server was not able to generate a unique name for the object",
            )
        ctx.persisted += 1
        self._after_write(rt, stored)
        return stored

    @staticmethod
    def _generate(prefix: str) -> str:
        return prefix[:58] + "".join(random.choice(_GENERATE_CHARS) for _ in range(5))

    def _crd_status(self, crd: Obj, old: Obj | None) -> None:
        """CRD-2: names accepted and established straight away."""
        spec = crd.get("spec") or {}
        status = crd.setdefault("status", {}) if isinstance(crd.get("status"), dict) else {}
        crd["status"] = status
        status["acceptedNames"] = _copy(spec.get("names") or {})
        storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
        stored_versions = list((old or {}).get("status", {}).get("storedVersions") or [])
        for v in storage:
            if v and v not in stored_versions:
                stored_versions.append(v)
        status["storedVersions"] = stored_versions
        now = self.now_str()
        old_conds = {
            c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)
        }

        def cond(type_: str, reason: str, message: str) -> Obj:
            prev = old_conds.get(type_)
            when = prev.get("lastTransitionTime") if prev and prev.get("status") == "True" else now
            return {
                "type": type_,
                "status": "True",
                "lastTransitionTime": when or now,
                "reason": reason,
                "message": message,
            }

        conds = [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ]
        terminating = old_conds.get("Terminating")
        if terminating is not None:
            conds.append(terminating)
        status["conditions"] = conds

    def _after_write(self, rt: ResourceType, stored: Stored) -> None:
        if self.crd_rt is not None and rt.storage == self.crd_rt.storage:
            self.registry.add_crd(_copy(stored.obj))

    def on_removed(self, bucket: str, obj: Obj) -> None:
        """Side effects of an object leaving the store for good."""
        if self.crd_rt is not None and bucket == self.crd_rt.storage:
            name = _meta(obj).get("name", "")
            types = self.registry.custom_types(name)
            self.registry.remove_crd(name)
            for t in types:
                self.store.drop_bucket(t.storage)
            if types and self.on_crd_removed is not None:
                self.on_crd_removed(types[0].group_resource)
        elif obj.get("kind") == "Service" and obj.get("apiVersion") == "v1":
            rt = self.registry.lookup("", "v1", "services")
            if rt is not None:
                self.release(rt, obj, keep=None)

    # -- update ----------------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Obj,
        ctx: WriteContext,
        *,
        sub: str = "",
    ) -> Obj | Stored:
        """PUT semantics on the object, ``/status`` or ``/finalize``."""
        self.check_type_meta(rt, body, require_kind=rt.is_custom)
        meta = _meta(body)
        body_name = meta.get("name")
        if body_name is not None and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._check_namespace(rt, ns, body)
        body_rv = meta.get("resourceVersion") or ""
        if not body_rv and rt.is_custom:
            raise invalid(
                rt.kind,
                rt.group,
                name,
                [
                    FieldError(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "0x0: must be specified for an update",
                    )
                ],
            )
        self.decode_typed(rt, body)
        frozen = json.dumps(body)
        for _ in range(_WRITE_RETRIES):
            cur = self._current(rt, ns, name)
            if body_rv and body_rv != str(cur.rev):
                raise conflict(rt.plural, rt.group, name)
            old = self.view_copy(rt, cur)
            new = json.loads(frozen)
            new = self.prepare_update(rt, old, new, ctx, sub=sub)
            try:
                return self.commit_update(rt, ns, name, cur=cur, new=new, ctx=ctx)
            except ConflictError:
                if body_rv:
                    raise conflict(rt.plural, rt.group, name) from None
        raise conflict(rt.plural, rt.group, name)

    def _current(self, rt: ResourceType, ns: str, name: str) -> Stored:
        cur = self.store.get(rt.storage, ns if rt.namespaced else "", name)
        if cur is None:
            raise not_found(rt.plural, rt.group, name)
        return cur

    def prepare_update(
        self,
        rt: ResourceType,
        old: Obj,
        new: Obj,
        ctx: WriteContext,
        *,
        sub: str = "",
        record: bool = True,
    ) -> Obj:
        """Turn a would-be new state into the state to store (everything but the write)."""
        self.check_type_meta(rt, new, require_kind=rt.is_custom)
        ometa = _meta(old)
        nmeta = _meta(new)
        if nmeta.get("name") != ometa.get("name"):
            raise invalid(
                rt.kind,
                rt.group,
                ometa.get("name", ""),
                [FieldError.invalid("metadata.name", nmeta.get("name"), "field is immutable")],
            )
        if rt.namespaced and nmeta.get("namespace", ometa.get("namespace")) != ometa.get(
            "namespace"
        ):
            raise invalid(
                rt.kind,
                rt.group,
                ometa.get("name", ""),
                [
                    FieldError.invalid(
                        "metadata.namespace", nmeta.get("namespace"), "field is immutable"
                    )
                ],
            )
        if sub in ("status", "finalize"):
            base = _copy(old)
            if sub == "status":
                if "status" in new:
                    base["status"] = new["status"]
                else:
                    base.pop("status", None)
            else:
                fins = (new.get("spec") or {}).get("finalizers")
                spec = base.setdefault("spec", {})
                if fins is None:
                    spec.pop("finalizers", None)
                else:
                    spec["finalizers"] = fins
            bmeta = _meta(base)
            if "managedFields" in nmeta:
                bmeta["managedFields"] = nmeta["managedFields"]
            new, nmeta = base, bmeta
        else:
            if rt.has_status:
                if "status" in old:
                    new["status"] = _copy(old["status"])
                else:
                    new.pop("status", None)
            if rt.group == "" and rt.kind == "Namespace":
                spec = new.setdefault("spec", {})
                ofins = (old.get("spec") or {}).get("finalizers")
                if ofins is None:
                    spec.pop("finalizers", None)
                else:
                    spec["finalizers"] = list(ofins)
        uid = nmeta.get("uid")
        if uid and uid != ometa.get("uid"):
            raise invalid(
                rt.kind,
                rt.group,
                ometa.get("name", ""),
                [FieldError.invalid("metadata.uid", uid, "field is immutable")],
            )
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in ometa:
                nmeta[key] = ometa[key]
            else:
                nmeta.pop(key, None)
        nmeta.pop("selfLink", None)
        if "managedFields" not in nmeta and "managedFields" in ometa:
            nmeta["managedFields"] = ometa["managedFields"]
        if ometa.get("deletionTimestamp"):
            old_f = set(ometa.get("finalizers") or [])
            added = [f for f in nmeta.get("finalizers") or [] if f not in old_f]
            if added:
                go_list = "[]string{" + ", ".join(json.dumps(f) for f in added) + "}"
                raise invalid(
                    rt.kind,
                    rt.group,
                    ometa.get("name", ""),
                    [
                        FieldError.forbidden(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {go_list}",
                        )
                    ],
                )
        if self.crd_rt is not None and rt.storage == self.crd_rt.storage and sub == "":
            new["status"] = _copy(old.get("status") or {})
        self._admit(rt, new, old, ctx, sub)
        if self.crd_rt is not None and rt.storage == self.crd_rt.storage and sub == "":
            self._crd_status(new, old)
        if (rt.tracks_generation or rt.is_custom) and sub != "status":
            skip = {"metadata", "apiVersion", "kind"}
            if rt.has_status:
                skip.add("status")
            if {k: v for k, v in new.items() if k not in skip} != {
                k: v for k, v in old.items() if k not in skip
            }:
                nmeta["generation"] = int(ometa.get("generation") or 0) + 1
        if record:
            _patch.record_update(
                old,
                new,
                manager=self._manager(ctx),
                api_version=rt.api_version,
                now=self.now_str(),
                list_keys=self.list_keys(rt),
                subresource=sub if sub in ("status", "scale") else "",
            )
        return new

    @staticmethod
    def _deletes_on_update(rt: ResourceType, new: Obj) -> bool:
        meta = _meta(new)
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if int(meta.get("deletionGracePeriodSeconds") or 0) != 0:
            return False
        return not (
            rt.group == "" and rt.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")
        )

    def commit_update(
        self, rt: ResourceType, ns: str, name: str, *, cur: Stored, new: Obj, ctx: WriteContext
    ) -> Obj | Stored:
        """Write ``new`` over ``cur`` (ConflictError when ``cur`` is no longer current)."""
        key_ns = ns if rt.namespaced else ""
        if self._deletes_on_update(rt, new):
            if ctx.dry_run:
                return new
            stored = self.store.delete(rt.storage, key_ns, name, expect_rev=cur.rev)
            ctx.persisted += 1
            self.on_removed(rt.storage, stored.obj)
            return stored
        if ctx.dry_run:
            _meta(new)["resourceVersion"] = str(cur.rev)
            return new
        try:
            stored, changed = self.store.update(
                rt.storage, key_ns, name, self.to_storage(rt, new), expect_rev=cur.rev
            )
        except ConflictError:
            self.release(rt, new, keep=cur.obj)
            raise
        if changed:
            ctx.persisted += 1
            self.release(rt, cur.obj, keep=new)
            self._after_write(rt, stored)
        return stored

    # -- patch -----------------------------------------------------------------------------

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        ctx: WriteContext,
        sub: str = "",
        force: bool = False,
    ) -> Obj | Stored:
        """PATCH semantics for json, merge, strategic and apply patches (PATCH-*, SSA-*)."""
        if patch_type == "apply":
            if not isinstance(patch, dict):
                raise bad_request("the apply patch must be an object")
            if "managedFields" in (patch.get("metadata") or {}):
                raise bad_request("metadata.managedFields must be nil")
            self.check_type_meta(rt, patch)
            pmeta = _meta(patch)
            if pmeta.get("name") not in (None, name):
                raise bad_request(
                    f"the name of the object ({pmeta.get('name')}) does not match the name on "
                    f"the URL ({name})"
                )
        elif patch_type == "json":
            if not isinstance(patch, list):
                raise bad_request(
                    "the provided JSON patch is not a list of operations: "
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                )
        elif not isinstance(patch, dict):
            raise bad_request("the provided patch is not a JSON object")
        conditional = False
        for _ in range(_WRITE_RETRIES):
            cur = self.store.get(rt.storage, ns if rt.namespaced else "", name)
            if cur is None:
                if patch_type == "apply" and sub == "":
                    return self._apply_create(rt, ns, name, patch, ctx=ctx, force=force)
                raise not_found(rt.plural, rt.group, name)
            old = self.view_copy(rt, cur)
            if sub == "scale":
                target: Obj = self.scale_of(rt, old)
            else:
                target = _copy(old)
            patched = self._apply_patch(
                rt, target, patch_type, patch, ctx=ctx, force=force, old=old, sub=sub
            )
            prv = _meta(patched).get("resourceVersion") if isinstance(patched, dict) else None
            if prv and prv != str(cur.rev):
                raise conflict(rt.plural, rt.group, name)
            conditional = bool(prv) and patch_type != "apply" and _patch_sets_rv(patch)
            if sub == "scale":
                new = self._scale_into(rt, old, patched)
                new = self.prepare_update(rt, old, new, ctx, sub="scale")
            else:
                if not isinstance(patched, dict):
                    raise bad_request("the patched object is not a JSON object")
                self.decode_typed(rt, patched, patched=True)
                new = self.prepare_update(
                    rt, old, patched, ctx, sub=sub, record=patch_type != "apply"
                )
            try:
                result = self.commit_update(rt, ns, name, cur=cur, new=new, ctx=ctx)
            except ConflictError:
                if conditional:
                    raise conflict(rt.plural, rt.group, name) from None
                continue
            if sub == "scale":
                obj = result if isinstance(result, dict) else self.to_view(rt, result.obj)
                return self.scale_of(rt, obj)
            return result
        raise conflict(rt.plural, rt.group, name)

    def _apply_patch(
        self,
        rt: ResourceType,
        target: Obj,
        patch_type: str,
        patch: Any,
        *,
        ctx: WriteContext,
        force: bool,
        old: Obj,
        sub: str,
    ) -> Any:
        try:
            if patch_type == "json":
                return _patch.json_patch(target, patch)
            if patch_type == "merge":
                return _patch.merge_patch(target, patch)
            if patch_type == "strategic":
                group, kind = ("autoscaling", "Scale") if sub == "scale" else (rt.group, rt.kind)
                return _patch.strategic_merge_patch(target, patch, group=group, kind=kind)
            if sub == "scale":
                return _patch.merge_patch(target, patch)
            return _patch.server_side_apply(
                target,
                patch,
                manager=self._manager(ctx),
                force=force,
                api_version=rt.api_version,
                now=self.now_str(),
                list_keys=self.list_keys(rt),
            )
        except _patch.ApplyConflict as e:
            raise APIError(
                409,
                f"Apply failed with {len(e.conflicts)} conflict"
                f"{'s' if len(e.conflicts) != 1 else ''}: {e.message}"
                if not e.message.startswith("Apply failed")
                else e.message,
                "Conflict",
                {
                    "name": _meta(old).get("name", ""),
                    **({"group": rt.group} if rt.group else {}),
                    "kind": rt.plural,
                    "causes": e.causes(),
                },
            ) from e
        except _patch.PatchError as e:
            raise APIError(e.code, e.message) from e

    def _apply_create(
        self, rt: ResourceType, ns: str, name: str, patch: Obj, *, ctx: WriteContext, force: bool
    ) -> Obj | Stored:
        """SSA-1: an apply patch on a missing object creates it."""
        try:
            obj = _patch.server_side_apply(
                None,
                _copy(patch),
                manager=self._manager(ctx),
                force=force,
                api_version=rt.api_version,
                now=self.now_str(),
                list_keys=self.list_keys(rt),
            )
        except _patch.PatchError as e:
            raise APIError(e.code, e.message) from e
        _meta(obj)["name"] = name
        return self.create(rt, ns, obj, ctx, applied=True)

    # -- scale -----------------------------------------------------------------------------

    def scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        """CRD-9: the autoscaling/v1 Scale view of an object."""
        spec = rt.scale
        if spec is None:
            raise not_found(rt.plural, rt.group, _meta(obj).get("name", ""))
        meta = _meta(obj)
        smeta = {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        }
        replicas = get_path(obj, spec.spec_replicas_path)
        status_replicas = get_path(obj, spec.status_replicas_path)
        selector: Any = ""
        if spec.label_selector_path:
            sel = get_path(obj, spec.label_selector_path)
            if isinstance(sel, dict):
                try:
                    selector = str(labels.from_label_selector(sel))
                except labels.SelectorError:
                    selector = ""
            elif isinstance(sel, str):
                selector = sel
        scale: Obj = {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": smeta,
            "spec": {},
            "status": {"replicas": status_replicas if isinstance(status_replicas, int) else 0},
        }
        if isinstance(replicas, int) and not isinstance(replicas, bool):
            scale["spec"]["replicas"] = replicas
        elif rt.is_custom:
            raise APIError(
                500,
                f'Internal error occurred: the spec replicas field "{spec.spec_replicas_path}" '
                "does not exist",
                "InternalError",
            )
        else:
            scale["spec"]["replicas"] = 0
        if selector:
            scale["status"]["selector"] = selector
        return scale

    def _scale_into(self, rt: ResourceType, old: Obj, scale: Any) -> Obj:
        name = _meta(old).get("name", "")
        if not isinstance(scale, dict):
            raise bad_request("the provided Scale is not a JSON object")
        kind = scale.get("kind")
        if kind and kind != "Scale":
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind (Scale)"
            )
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [FieldError.invalid("spec.replicas", replicas, "must be an integer")],
            )
        if replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    FieldError.invalid(
                        "spec.replicas", replicas, "must be greater than or equal to 0"
                    )
                ],
            )
        new: Obj = _copy(old)
        assert rt.scale is not None
        set_path(new, rt.scale.spec_replicas_path, replicas)
        return new

    def update_scale(
        self, rt: ResourceType, ns: str, name: str, body: Any, ctx: WriteContext
    ) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the provided Scale is not a JSON object")
        api_version = body.get("apiVersion")
        if api_version and api_version != "autoscaling/v1":
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                "version (autoscaling/v1)"
            )
        body_rv = (body.get("metadata") or {}).get("resourceVersion") or ""
        for _ in range(_WRITE_RETRIES):
            cur = self._current(rt, ns, name)
            if body_rv and body_rv != str(cur.rev):
                raise conflict(rt.plural, rt.group, name)
            old = self.view_copy(rt, cur)
            self.scale_of(rt, old)
            new = self._scale_into(rt, old, body)
            new = self.prepare_update(rt, old, new, ctx, sub="scale")
            try:
                result = self.commit_update(rt, ns, name, cur=cur, new=new, ctx=ctx)
            except ConflictError:
                if body_rv:
                    raise conflict(rt.plural, rt.group, name) from None
                continue
            obj = result if isinstance(result, dict) else self.to_view(rt, result.obj)
            return self.scale_of(rt, obj)
        raise conflict(rt.plural, rt.group, name)

    # -- delete ----------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        opts: DeleteOptions,
        ctx: WriteContext,
    ) -> tuple[int, Obj | Stored]:
        """DEL-2 / DEL-4 / ERR-3: returns (HTTP code, object or Status)."""
        is_ns = rt.group == "" and rt.kind == "Namespace"
        if is_ns and name in PROTECTED_NAMESPACES:
            raise forbidden(rt.plural, rt.group, name, "this namespace may not be deleted")
        key_ns = ns if rt.namespaced else ""
        for _ in range(_WRITE_RETRIES):
            cur = self._current(rt, ns, name)
            meta = _meta(cur.obj)
            if opts.precondition_uid is not None and opts.precondition_uid != meta.get("uid"):
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid', '')}",
                )
            if opts.precondition_rv is not None and opts.precondition_rv != str(cur.rev):
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{opts.precondition_rv}, ResourceVersion in object meta: {cur.rev}",
                )
            obj = cur.copy_obj()
            m = _meta(obj)
            fins = list(m.get("finalizers") or [])
            policy = opts.propagation_policy
            if policy is None and opts.orphan_dependents is not None:
                policy = "Orphan" if opts.orphan_dependents else "Background"
            if policy == "Orphan":
                fins = [f for f in fins if f != FOREGROUND]
                if ORPHAN not in fins:
                    fins.append(ORPHAN)
            elif policy == "Foreground":
                fins = [f for f in fins if f != ORPHAN]
                if FOREGROUND not in fins:
                    fins.append(FOREGROUND)
            elif policy == "Background":
                fins = [f for f in fins if f not in (ORPHAN, FOREGROUND)]
            grace = self._grace_period(rt, obj, opts)
            pending = bool(m.get("deletionTimestamp"))
            ns_fins = is_ns and bool((obj.get("spec") or {}).get("finalizers"))
            accepted = 202 if opts.orphan_dependents is False else 200
            if pending:
                changed = fins != list(m.get("finalizers") or [])
                old_grace = int(m.get("deletionGracePeriodSeconds") or 0)
                if grace < old_grace:
                    m["deletionGracePeriodSeconds"] = grace
                    when = self.clock.now() + timedelta(seconds=grace)
                    m["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                    changed = True
                if fins:
                    m["finalizers"] = fins
                else:
                    m.pop("finalizers", None)
                if not fins and not ns_fins and int(m.get("deletionGracePeriodSeconds") or 0) == 0:
                    removed = self._remove(rt, key_ns, name, cur=cur, obj=obj, ctx=ctx)
                    if removed is None:
                        continue
                    return removed
                if not changed:
                    return accepted, self.to_view(rt, cur.obj)
                result = self._store_update(rt, key_ns, name, cur=cur, obj=obj, ctx=ctx)
                if result is None:
                    continue
                return accepted, result
            if fins or grace > 0 or ns_fins:
                now = self.clock.now()
                when = now + timedelta(seconds=grace)
                m["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                m["deletionGracePeriodSeconds"] = grace
                if fins:
                    m["finalizers"] = fins
                else:
                    m.pop("finalizers", None)
                if int(m.get("generation") or 0) > 0:
                    m["generation"] = int(m["generation"]) + 1
                if is_ns:
                    obj.setdefault("status", {})["phase"] = "Terminating"
                result = self._store_update(rt, key_ns, name, cur=cur, obj=obj, ctx=ctx)
                if result is None:
                    continue
                return accepted, result
            removed = self._remove(rt, key_ns, name, cur=cur, obj=obj, ctx=ctx)
            if removed is None:
                continue
            return removed
        raise conflict(rt.plural, rt.group, name)

    def _store_update(
        self, rt: ResourceType, key_ns: str, name: str, *, cur: Stored, obj: Obj, ctx: WriteContext
    ) -> Obj | Stored | None:
        if ctx.dry_run:
            return self.to_view(rt, obj)
        try:
            stored, changed = self.store.update(rt.storage, key_ns, name, obj, expect_rev=cur.rev)
        except ConflictError:
            return None
        if changed:
            ctx.persisted += 1
        return stored

    def _remove(
        self, rt: ResourceType, key_ns: str, name: str, *, cur: Stored, obj: Obj, ctx: WriteContext
    ) -> tuple[int, Obj | Stored] | None:
        if ctx.dry_run:
            final: Obj | Stored = self.to_view(rt, obj)
        else:
            try:
                final = self.store.delete(rt.storage, key_ns, name, expect_rev=cur.rev)
            except (ConflictError, NotFoundError):
                return None  # lost a race: the caller looks again
            ctx.persisted += 1
            self.on_removed(rt.storage, final.obj)
        if rt.is_custom or (rt.group, rt.plural) in _RETURNS_DELETED:
            return 200, final
        return 200, status_success(rt.plural, rt.group, name, _meta(cur.obj).get("uid", ""))

    @staticmethod
    def _grace_period(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> int:
        """DEL-4: only scheduled, unfinished pods delete gracefully."""
        if not (rt.group == "" and rt.kind == "Pod"):
            return 0
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period_seconds is not None:
            return max(0, int(opts.grace_period_seconds))
        tgps = spec.get("terminationGracePeriodSeconds")
        return int(tgps) if isinstance(tgps, int) else 30

    # -- internal helpers for controllers ----------------------------------------------------

    def mutate(
        self,
        bucket: str,
        ns: str,
        name: str,
        fn: Callable[[Obj], bool],
    ) -> bool:
        """Apply ``fn`` to a copy of a stored object and write it back (controllers).

        ``fn`` returns False to skip the write. Removing the last finalizer of an object
        being deleted removes it, as for clients (DEL-3). Returns whether anything was
        written.
        """
        rt = self.rt_for_bucket(bucket)
        for _ in range(_WRITE_RETRIES):
            cur = self.store.get(bucket, ns, name)
            if cur is None:
                return False
            obj = cur.copy_obj()
            if not fn(obj):
                return False
            try:
                meta = _meta(obj)
                deleting = (
                    meta.get("deletionTimestamp")
                    and not meta.get("finalizers")
                    and int(meta.get("deletionGracePeriodSeconds") or 0) == 0
                    and not (
                        obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers")
                    )
                )
                if deleting:
                    stored = self.store.delete(bucket, ns, name, expect_rev=cur.rev)
                    self.on_removed(bucket, stored.obj)
                    return True
                _, changed = self.store.update(bucket, ns, name, obj, expect_rev=cur.rev)
                return changed
            except ConflictError:
                continue
            except NotFoundError:
                return False
        if rt is None:
            return False
        return False

    def delete_internal(self, bucket: str, ns: str, name: str, policy: str | None = None) -> None:
        """A controller's DELETE (GC, namespace and CRD cleanup)."""
        rt = self.rt_for_bucket(bucket)
        if rt is None:
            return
        with contextlib.suppress(APIError):
            self.delete(
                rt,
                ns,
                name,
                DeleteOptions(propagation_policy=policy),
                WriteContext(field_manager="system"),
            )


def _patch_sets_rv(patch: Any) -> bool:
    if isinstance(patch, dict):
        return bool((patch.get("metadata") or {}).get("resourceVersion"))
    if isinstance(patch, list):
        return any(
            isinstance(op, dict) and str(op.get("path", "")).startswith("/metadata/resourceVersion")
            for op in patch
        )
    return False
