"""The table of served resources: built-in kinds plus whatever CRDs register at runtime.

Everything that routes, discovers or documents a resource asks the :class:`Registry`, so a
CRD becomes visible everywhere (URLs, discovery, OpenAPI, tables) the moment it is added.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._event_views import event_core_to_v1, event_v1_to_core
from ._types import ResourceType, ScaleSpec

__all__ = [
    "BUILTIN_GROUP_ORDER",
    "Registry",
    "Subresource",
    "kube_version_key",
    "sort_versions",
]

Obj = dict[str, Any]

FULL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]

# Upstream lists built-in groups by descending group priority; CRD groups come after them.
BUILTIN_GROUP_ORDER = [
    "",
    "apps",
    "events.k8s.io",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
]


@dataclass(frozen=True)
class Subresource:
    """One ``{resource}/{name}`` endpoint and the kind it answers with."""

    name: str
    group: str
    version: str
    kind: str
    verbs: list[str] = field(default_factory=lambda: list(SUBRESOURCE_VERBS))


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?\Z")


def kube_version_key(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version priority (v2 > v1 > v1beta2 > v1alpha1 > foo)."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")


def sort_versions(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=kube_version_key)


def _compile_schema(schema: Obj) -> Any:
    from ._schema import compile_schema

    return compile_schema(schema)


def _builtin_types() -> list[ResourceType]:
    def rt(
        group: str,
        plural: str,
        kind: str,
        *,
        namespaced: bool = True,
        short: tuple[str, ...] = (),
        cats: tuple[str, ...] = (),
        verbs: list[str] | None = None,
        status: bool = False,
        scale: bool = False,
        gen: bool = False,
        version: str = "v1",
        singular: str | None = None,
    ) -> ResourceType:
        return ResourceType(
            group=group,
            version=version,
            plural=plural,
            singular=singular if singular is not None else kind.lower(),
            kind=kind,
            namespaced=namespaced,
            short_names=list(short),
            categories=list(cats),
            verbs=list(verbs or FULL_VERBS),
            has_status=status,
            scale=(
                ScaleSpec(".spec.replicas", ".status.replicas", ".spec.selector") if scale else None
            ),
            tracks_generation=gen,
        )

    def scalable(plural: str, kind: str, short: str) -> ResourceType:
        """An apps/v1 workload with /status and /scale."""
        return rt(
            "apps", plural, kind, short=(short,), cats=("all",), status=True, scale=True, gen=True
        )

    core_events = rt("", "events", "Event", short=("ev",))
    new_events = rt("events.k8s.io", "events", "Event", short=("ev",))
    new_events.storage = core_events.storage
    new_events.to_storage = event_v1_to_core
    new_events.from_storage = event_core_to_v1
    return [
        # core/v1
        rt("", "configmaps", "ConfigMap", short=("cm",)),
        rt("", "endpoints", "Endpoints", short=("ep",), singular="endpoints"),
        core_events,
        rt(
            "",
            "namespaces",
            "Namespace",
            namespaced=False,
            short=("ns",),
            verbs=[v for v in FULL_VERBS if v != "deletecollection"],
            status=True,
        ),
        rt("", "nodes", "Node", namespaced=False, short=("no",), status=True),
        rt("", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
        rt(
            "",
            "persistentvolumes",
            "PersistentVolume",
            namespaced=False,
            short=("pv",),
            status=True,
        ),
        rt("", "pods", "Pod", short=("po",), cats=("all",), status=True),
        rt("", "secrets", "Secret"),
        rt("", "serviceaccounts", "ServiceAccount", short=("sa",)),
        rt("", "services", "Service", short=("svc",), cats=("all",), status=True),
        # apps/v1
        rt("apps", "controllerrevisions", "ControllerRevision"),
        rt("apps", "daemonsets", "DaemonSet", short=("ds",), cats=("all",), status=True, gen=True),
        scalable("deployments", "Deployment", "deploy"),
        scalable("replicasets", "ReplicaSet", "rs"),
        scalable("statefulsets", "StatefulSet", "sts"),
        # events.k8s.io/v1: a second view of the core events bucket (EVT-1)
        new_events,
        # batch/v1
        rt("batch", "jobs", "Job", cats=("all",), status=True, gen=True),
        # policy/v1
        rt("policy", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), status=True),
        # rbac.authorization.k8s.io/v1
        rt(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "ClusterRoleBinding",
            namespaced=False,
        ),
        rt("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", namespaced=False),
        rt("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"),
        rt("rbac.authorization.k8s.io", "roles", "Role"),
        # apiextensions.k8s.io/v1
        rt(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            short=("crd", "crds"),
            cats=("api-extensions",),
            status=True,
            gen=True,
        ),
        # coordination.k8s.io/v1
        rt("coordination.k8s.io", "leases", "Lease"),
        # discovery.k8s.io/v1
        rt("discovery.k8s.io", "endpointslices", "EndpointSlice"),
    ]


# Subresources beyond /status and /scale that the server answers.
_EXTRA_SUBRESOURCES: dict[tuple[str, str], list[Subresource]] = {
    ("", "pods"): [Subresource("log", "", "v1", "Pod", ["get"])],
    ("", "namespaces"): [Subresource("finalize", "", "v1", "Namespace", ["update"])],
}


def _scale_spec(scale: Obj | None) -> ScaleSpec | None:
    if scale is None:
        return None
    return ScaleSpec(
        spec_replicas_path=str(scale.get("specReplicasPath") or ""),
        status_replicas_path=str(scale.get("statusReplicasPath") or ""),
        label_selector_path=scale.get("labelSelectorPath") or None,
    )


def _set_api_version(api_version: str) -> Callable[[Obj], Obj]:
    def convert(obj: Obj) -> Obj:
        if obj.get("apiVersion") == api_version:
            return obj
        return {**obj, "apiVersion": api_version}

    return convert


class Registry:
    """Thread-safe index of served resources by group/version/resource and by kind.

    ``generation`` increases on every change so discovery and OpenAPI caches (and the
    OpenAPI hashes kubectl caches by) can tell when to rebuild.
    """

    def __init__(
        self,
        types: Iterable[ResourceType] = (),
        *,
        compile_schema: Callable[[Obj], Any] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._types: list[ResourceType] = []
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._crds: dict[str, list[ResourceType]] = {}
        self._generation = 0
        self._compile: Callable[[Obj], Any] = compile_schema or _compile_schema
        for t in types:
            self.add(t)

    @classmethod
    def builtin(cls, *, compile_schema: Callable[[Obj], Any] | None = None) -> Registry:
        """A registry serving every built-in kind of the embedded server.

        ``compile_schema`` replaces ``_schema.compile_schema`` for CRD schemas (tests).
        """
        return cls(_builtin_types(), compile_schema=compile_schema)

    @property
    def generation(self) -> int:
        return self._generation

    # -- mutation ---------------------------------------------------------------------

    def add(self, rt: ResourceType) -> None:
        """Serve one more resource type (replacing one with the same group/version/plural)."""
        with self._lock:
            key = (rt.group, rt.version, rt.plural)
            old = self._by_gvr.get(key)
            if old is not None:
                self._drop(old)
            self._types.append(rt)
            self._by_gvr[key] = rt
            self._by_gvk[(rt.group, rt.version, rt.kind)] = rt
            self._generation += 1

    def _drop(self, rt: ResourceType) -> None:
        self._types = [t for t in self._types if t is not rt]
        self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        if self._by_gvk.get((rt.group, rt.version, rt.kind)) is rt:
            del self._by_gvk[(rt.group, rt.version, rt.kind)]

    def add_crd(self, crd: Obj) -> None:
        """(Re-)register every served version of a CRD.

        Versions share one storage bucket. With ``conversion: None`` the only difference
        between versions is ``apiVersion``, so the converters just rewrite it.
        """
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = str(spec.get("group") or "")
        kind = str(names.get("kind") or "")
        plural = str(names.get("plural") or "")
        name = str((crd.get("metadata") or {}).get("name") or f"{plural}.{group}")
        versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
        storage_version = next(
            (v.get("name") for v in spec.get("versions") or [] if v.get("storage")), None
        )
        multi = len(spec.get("versions") or []) > 1
        built: list[ResourceType] = []
        for v in versions:
            vname = str(v.get("name") or "")
            subresources = v.get("subresources") or {}
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            rt = ResourceType(
                group=group,
                version=vname,
                plural=plural,
                singular=str(names.get("singular") or kind.lower()),
                kind=kind,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                list_kind=str(names.get("listKind") or f"{kind}List"),
                short_names=list(names.get("shortNames") or []),
                categories=list(names.get("categories") or []),
                has_status="status" in subresources and subresources["status"] is not None,
                scale=_scale_spec(subresources.get("scale")),
                tracks_generation=True,
                is_custom=True,
                schema=self._compile(schema) if schema is not None else None,
                printer_columns=list(v.get("additionalPrinterColumns") or []),
                storage=f"{group}/{plural}",
                crd_name=name,
            )
            if multi:
                own = f"{group}/{vname}"
                stored = f"{group}/{storage_version}" if storage_version else own
                rt.from_storage = _set_api_version(own)
                if stored != own:
                    rt.to_storage = _set_api_version(stored)
            built.append(rt)
        with self._lock:
            for old in self._crds.pop(name, []):
                self._drop(old)
            # A CRD may never shadow a built-in resource.
            built = [
                rt
                for rt in built
                if (existing := self._by_gvr.get((rt.group, rt.version, rt.plural))) is None
                or existing.is_custom
            ]
            for rt in built:
                self.add(rt)
            self._crds[name] = built
            self._generation += 1

    def remove_crd(self, name: str) -> None:
        """Stop serving the custom resources of CRD ``name`` (no-op if unknown)."""
        with self._lock:
            for rt in self._crds.pop(name, []):
                self._drop(rt)
            self._generation += 1

    # -- queries ----------------------------------------------------------------------

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((group, version, kind))

    def custom_types(self, crd_name: str) -> list[ResourceType]:
        with self._lock:
            return list(self._crds.get(crd_name, []))

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types)

    def group_versions(self) -> list[tuple[str, list[str]]]:
        """Served groups in discovery order, each with its versions, preferred first."""
        with self._lock:
            versions: dict[str, set[str]] = {}
            for t in self._types:
                versions.setdefault(t.group, set()).add(t.version)
        known = [g for g in BUILTIN_GROUP_ORDER if g in versions]
        custom = sorted(g for g in versions if g not in BUILTIN_GROUP_ORDER)
        return [(g, sort_versions(versions[g])) for g in known + custom]

    def preferred_version(self, group: str) -> str | None:
        for g, versions in self.group_versions():
            if g == group:
                return versions[0]
        return None

    def resources(self, group: str, version: str) -> list[ResourceType]:
        """The types of one group/version, sorted by plural name."""
        with self._lock:
            found = [t for t in self._types if t.group == group and t.version == version]
        return sorted(found, key=lambda t: t.plural)

    def subresources(self, rt: ResourceType) -> list[Subresource]:
        """Subresources of a type: ``status``, ``scale`` (autoscaling/v1 Scale) and extras."""
        subs: list[Subresource] = []
        if rt.has_status:
            subs.append(Subresource("status", rt.group, rt.version, rt.kind))
        if rt.scale is not None:
            subs.append(Subresource("scale", "autoscaling", "v1", "Scale"))
        if not rt.is_custom:
            subs.extend(_EXTRA_SUBRESOURCES.get((rt.group, rt.plural), []))
        return sorted(subs, key=lambda s: s.name)

    def resolve(self, name: str) -> ResourceType | None:
        """Find a type the way humans name it: ``po``, ``pods``, ``pod``, ``Pod``,
        ``deployments.apps``, ``sts.v1.apps``; the preferred version wins."""
        text = name.strip().lower()
        resource, _, group_part = text.partition(".")
        version: str | None = None
        group: str | None = None
        if group_part:
            first, _, rest = group_part.partition(".")
            if rest and _KUBE_VERSION.match(first):
                version, group = first, rest
            else:
                group = group_part
        candidates: list[ResourceType] = []
        for g, versions in self.group_versions():
            if group is not None and g != group:
                continue
            for v in versions:
                if version is not None and v != version:
                    continue
                for t in self.resources(g, v):
                    if resource in (t.plural, t.singular, t.kind.lower()) or (
                        resource in t.short_names
                    ):
                        candidates.append(t)
                if candidates:
                    return candidates[0]
        return None
