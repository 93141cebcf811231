"""Registry: the built-in resource table, CRD registration and lookups."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from opkit.testing.apiserver._registry import Registry, kube_version_key, sort_versions
from opkit.testing.apiserver._types import ScaleSpec


def _widget_crd(
    versions: list[dict[str, Any]] | None = None, *, scope: str = "Namespaced"
) -> dict[str, Any]:
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object"}, "status": {"type": "object"}},
        }
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wd"],
                "categories": ["all", "toys"],
            },
            "versions": versions
            or [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": schema,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}
                    ],
                }
            ],
        },
    }


@pytest.fixture
def reg() -> Registry:
    return Registry.builtin()


# Upstream names, scope and short names (kubectl api-resources on a 1.32 cluster).
EXPECTED = [
    ("", "configmaps", "ConfigMap", True, ["cm"]),
    ("", "endpoints", "Endpoints", True, ["ep"]),
    ("", "events", "Event", True, ["ev"]),
    ("", "namespaces", "Namespace", False, ["ns"]),
    ("", "nodes", "Node", False, ["no"]),
    ("", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
    ("", "persistentvolumes", "PersistentVolume", False, ["pv"]),
    ("", "pods", "Pod", True, ["po"]),
    ("", "secrets", "Secret", True, []),
    ("", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    ("", "services", "Service", True, ["svc"]),
    ("apps", "controllerrevisions", "ControllerRevision", True, []),
    ("apps", "daemonsets", "DaemonSet", True, ["ds"]),
    ("apps", "deployments", "Deployment", True, ["deploy"]),
    ("apps", "replicasets", "ReplicaSet", True, ["rs"]),
    ("apps", "statefulsets", "StatefulSet", True, ["sts"]),
    ("batch", "jobs", "Job", True, []),
    ("coordination.k8s.io", "leases", "Lease", True, []),
    ("discovery.k8s.io", "endpointslices", "EndpointSlice", True, []),
    ("events.k8s.io", "events", "Event", True, ["ev"]),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"]),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False, []),
    ("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False, []),
    ("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", True, []),
    ("rbac.authorization.k8s.io", "roles", "Role", True, []),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ["crd", "crds"],
    ),
]


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: f"{e[0]}/{e[1]}")
def test_builtin_names_match_upstream(
    reg: Registry, expected: tuple[str, str, str, bool, list[str]]
) -> None:
    group, plural, kind, namespaced, short = expected
    rt = reg.lookup(group, "v1", plural)
    assert rt is not None
    assert (rt.kind, rt.namespaced, rt.short_names) == (kind, namespaced, short)
    assert rt.list_kind == kind + "List"
    assert not rt.is_custom
    assert reg.by_kind(group, "v1", kind) is rt


def test_singular_names(reg: Registry) -> None:
    endpoints = reg.lookup("", "v1", "endpoints")
    assert endpoints is not None and endpoints.singular == "endpoints"
    pvc = reg.lookup("", "v1", "persistentvolumeclaims")
    assert pvc is not None and pvc.singular == "persistentvolumeclaim"


def test_categories_all_as_upstream(reg: Registry) -> None:
    in_all = sorted(rt.plural for rt in reg.all() if "all" in rt.categories)
    assert in_all == [
        "daemonsets",
        "deployments",
        "jobs",
        "pods",
        "replicasets",
        "services",
        "statefulsets",
    ]


def test_verbs(reg: Registry) -> None:
    ns = reg.lookup("", "v1", "namespaces")
    assert ns is not None and "deletecollection" not in ns.verbs
    for plural in ("events", "pods", "configmaps"):
        rt = reg.lookup("", "v1", plural)
        assert rt is not None and "deletecollection" in rt.verbs and "watch" in rt.verbs
    lease = reg.lookup("coordination.k8s.io", "v1", "leases")
    assert lease is not None and sorted(lease.verbs) == sorted(
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    )


def test_status_and_scale_subresources(reg: Registry) -> None:
    with_status = {(rt.group, rt.plural) for rt in reg.all() if rt.has_status}
    assert with_status == {
        ("", "pods"),
        ("", "services"),
        ("", "namespaces"),
        ("", "nodes"),
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("apps", "statefulsets"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("policy", "poddisruptionbudgets"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    }
    with_scale = {rt.plural for rt in reg.all() if rt.scale is not None}
    assert with_scale == {"statefulsets", "deployments", "replicasets"}
    sts = reg.lookup("apps", "v1", "statefulsets")
    assert sts is not None
    assert sts.scale == ScaleSpec(".spec.replicas", ".status.replicas", ".spec.selector")


def test_extra_subresources(reg: Registry) -> None:
    pods = reg.lookup("", "v1", "pods")
    ns = reg.lookup("", "v1", "namespaces")
    sts = reg.lookup("apps", "v1", "statefulsets")
    assert pods is not None and ns is not None and sts is not None
    assert [(s.name, s.verbs) for s in reg.subresources(pods)] == [
        ("log", ["get"]),
        ("status", ["get", "patch", "update"]),
    ]
    assert [s.name for s in reg.subresources(ns)] == ["finalize", "status"]
    scale = next(s for s in reg.subresources(sts) if s.name == "scale")
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")


def test_generation_tracking(reg: Registry) -> None:
    tracked = {(rt.group, rt.plural) for rt in reg.all() if rt.tracks_generation}
    assert tracked == {
        ("apps", "statefulsets"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    }


def test_event_views_share_storage(reg: Registry) -> None:
    core = reg.lookup("", "v1", "events")
    new = reg.lookup("events.k8s.io", "v1", "events")
    assert core is not None and new is not None
    assert core.storage == new.storage
    assert core.to_storage is None and core.from_storage is None
    assert new.to_storage is not None and new.from_storage is not None
    stored = new.to_storage({"metadata": {"name": "e"}, "note": "hi", "eventTime": "x"})
    assert stored["message"] == "hi" and stored["apiVersion"] == "v1"


def test_group_versions_order(reg: Registry) -> None:
    groups = [g for g, _ in reg.group_versions()]
    assert groups[0] == ""
    assert groups[1] == "apps"
    assert set(groups) == {
        "",
        "apps",
        "batch",
        "events.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
    }


def test_resolve(reg: Registry) -> None:
    cases = {
        "po": ("", "Pod"),
        "pods": ("", "Pod"),
        "pod": ("", "Pod"),
        "Pod": ("", "Pod"),
        "deploy": ("apps", "Deployment"),
        "statefulsets.apps": ("apps", "StatefulSet"),
        "sts.v1.apps": ("apps", "StatefulSet"),
        "ev": ("", "Event"),
        "events.events.k8s.io": ("events.k8s.io", "Event"),
        "crd": ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
    for name, (group, kind) in cases.items():
        rt = reg.resolve(name)
        assert rt is not None, name
        assert (rt.group, rt.kind) == (group, kind), name
    assert reg.resolve("nothing") is None
    assert reg.resolve("pods.apps") is None


def _fake_compile(schema: dict[str, Any]) -> Any:
    class Compiled:
        raw = schema

    return Compiled()


def test_add_crd_registers_every_served_version() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)
    before = reg.generation
    schema = {"openAPIV3Schema": {"type": "object"}}
    crd = _widget_crd(
        [
            {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
            {"name": "v1", "served": True, "storage": True, "schema": schema},
            {"name": "v1alpha1", "served": False, "storage": False, "schema": schema},
        ]
    )
    reg.add_crd(crd)
    assert reg.generation > before
    assert reg.lookup("example.com", "v1alpha1", "widgets") is None
    v1 = reg.lookup("example.com", "v1", "widgets")
    beta = reg.lookup("example.com", "v1beta1", "widgets")
    assert v1 is not None and beta is not None
    assert v1.storage == beta.storage == "example.com/widgets"
    assert v1.is_custom and v1.tracks_generation and v1.crd_name == "widgets.example.com"
    assert (v1.short_names, v1.categories) == (["wd"], ["all", "toys"])
    assert v1.schema.raw == {"type": "object"}
    assert ("example.com", ["v1", "v1beta1"]) in reg.group_versions()
    assert [t.version for t in reg.custom_types("widgets.example.com")] == ["v1beta1", "v1"]
    # Both views convert apiVersion to and from the storage version.
    assert beta.to_storage is not None and beta.from_storage is not None
    stored = beta.to_storage({"apiVersion": "example.com/v1beta1", "kind": "Widget"})
    assert stored["apiVersion"] == "example.com/v1"
    assert beta.from_storage(stored)["apiVersion"] == "example.com/v1beta1"
    assert v1.to_storage is None


def test_add_crd_subresources_and_columns() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)
    reg.add_crd(_widget_crd())
    rt = reg.lookup("example.com", "v1", "widgets")
    assert rt is not None
    assert rt.has_status
    assert rt.scale == ScaleSpec(".spec.replicas", ".status.replicas", ".status.selector")
    assert rt.printer_columns[0]["name"] == "Replicas"
    assert rt.from_storage is None  # single version: no conversion needed
    assert [s.name for s in reg.subresources(rt)] == ["scale", "status"]


def test_add_crd_uses_schema_module_by_default() -> None:
    reg = Registry.builtin()
    reg.add_crd(_widget_crd())
    rt = reg.lookup("example.com", "v1", "widgets")
    assert rt is not None and rt.schema is not None


def test_readd_crd_replaces_versions_and_remove() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)
    reg.add_crd(_widget_crd())
    schema = {"openAPIV3Schema": {"type": "object"}}
    reg.add_crd(_widget_crd([{"name": "v2", "served": True, "storage": True, "schema": schema}]))
    assert reg.lookup("example.com", "v1", "widgets") is None
    assert reg.lookup("example.com", "v2", "widgets") is not None
    generation = reg.generation
    reg.remove_crd("widgets.example.com")
    assert reg.generation > generation
    assert reg.lookup("example.com", "v2", "widgets") is None
    assert "example.com" not in [g for g, _ in reg.group_versions()]
    reg.remove_crd("unknown.example.com")  # no-op


def test_crd_cannot_shadow_builtin() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)
    crd = _widget_crd()
    crd["metadata"]["name"] = "pods."
    crd["spec"]["group"] = ""
    crd["spec"]["names"]["plural"] = "pods"
    reg.add_crd(crd)
    pods = reg.lookup("", "v1", "pods")
    assert pods is not None and not pods.is_custom


def test_cluster_scoped_crd() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)
    reg.add_crd(_widget_crd(scope="Cluster"))
    rt = reg.lookup("example.com", "v1", "widgets")
    assert rt is not None and not rt.namespaced


def test_kube_version_order() -> None:
    assert sort_versions(["v1alpha1", "v1", "foo", "v2beta1", "v1beta2", "v2", "v1beta1"]) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]
    assert kube_version_key("v10") < kube_version_key("v9")


def test_concurrent_crd_registration_is_safe() -> None:
    reg = Registry.builtin(compile_schema=_fake_compile)

    def worker(i: int) -> None:
        crd = _widget_crd()
        crd["metadata"]["name"] = f"w{i}s.example.com"
        crd["spec"]["names"]["plural"] = f"w{i}s"
        crd["spec"]["names"]["kind"] = f"W{i}"
        for _ in range(20):
            reg.add_crd(crd)
            reg.group_versions()
        reg.remove_crd(crd["metadata"]["name"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [rt for rt in reg.all() if rt.is_custom]
