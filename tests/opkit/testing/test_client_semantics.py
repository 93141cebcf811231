"""Official `kubernetes` client against the embedded server: MUST items CORE's tests leave open.

Typed APIs (CoreV1Api, AppsV1Api, CustomObjectsApi, ApiextensionsV1Api, CoordinationV1Api,
EventsV1Api), the dynamic client, Watch, SharedInformer and the leader-election lock, each
used the way an operator would.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _server_fixtures import (
    WIDGET_CRD,
    apps,
    core,
    custom,
    extensions,
    install_widgets,
    new_watch,
    raw,
    status_body,
    widget,
)
from kubernetes import client, dynamic
from kubernetes.informer.informer import SharedInformer
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from opkit.testing import APIServer

G, V, P = "example.com", "v1", "widgets"
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as ei:
        fn(*args, **kwargs)
    return int(ei.value.status), status_body(ei.value)


def as_dict(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return out


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}], **spec},
    }


def statefulset(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


# -- URLs and discovery ------------------------------------------------------------------------


def test_cluster_scoped_nodes_and_persistent_volumes(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    node = v1.create_node({"metadata": {"name": "n1", "labels": {"zone": "a"}}})
    assert node.metadata.namespace is None and node.kind == "Node"
    now = datetime.now(UTC)
    v1.patch_node_status(
        "n1",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "ok",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "capacity": {"cpu": 4, "memory": "8Gi"},
            }
        },
    )
    got = v1.read_node_status("n1")
    assert got.status.conditions[0].type == "Ready"
    assert got.status.capacity == {"cpu": "4", "memory": "8Gi"}  # quantities as strings
    assert [n.metadata.name for n in v1.list_node(label_selector="zone=a").items] == ["n1"]
    pv = v1.create_persistent_volume(
        {
            "metadata": {"name": "pv1"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/pv1"},
            },
        }
    )
    assert pv.spec.capacity == {"storage": "1Gi"}
    assert [p.metadata.name for p in v1.list_persistent_volume().items] == ["pv1"]
    v1.delete_node("n1")
    assert v1.list_node().items == []
    code, _, _ = raw(apiserver, "GET", "/api/v1/namespaces/default/persistentvolumes")
    assert code == 404


def test_all_namespaces_lists_and_watches(k8s_api: client.ApiClient) -> None:
    v1, a = core(k8s_api), apps(k8s_api)
    v1.create_namespace({"metadata": {"name": "team-b"}})
    rv = a.list_stateful_set_for_all_namespaces().metadata.resource_version
    for ns in ("team-b", "default"):
        v1.create_namespaced_pod(ns, pod("p"))
        a.create_namespaced_stateful_set(ns, statefulset("web"))
    pods = v1.list_pod_for_all_namespaces()
    assert [(p.metadata.namespace, p.metadata.name) for p in pods.items] == [
        ("default", "p"),
        ("team-b", "p"),
    ]
    sts = a.list_stateful_set_for_all_namespaces()
    assert [s.metadata.namespace for s in sts.items] == ["default", "team-b"]
    w = new_watch()
    seen = []
    for ev in w.stream(
        a.list_stateful_set_for_all_namespaces, resource_version=rv, timeout_seconds=5
    ):
        seen.append((ev["type"], ev["object"].metadata.namespace))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "team-b"), ("ADDED", "default")]


def test_discovery_through_the_typed_clients(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    versions = client.CoreApi(k8s_api).get_api_versions()
    assert versions.versions == ["v1"]
    assert (
        versions.server_address_by_client_cidrs[0].server_address == f"127.0.0.1:{apiserver.port}"
    )
    groups: dict[str, Any] = {g.name: g for g in client.ApisApi(k8s_api).get_api_versions().groups}
    for name in (
        "apps",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
        "discovery.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
    ):
        assert groups[name].preferred_version.version == "v1", name
    core_res: dict[str, Any] = {
        r.name: r for r in client.CoreV1Api(k8s_api).get_api_resources().resources
    }
    assert set(core_res["pods"].verbs) == {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert core_res["pods"].namespaced and core_res["pods"].kind == "Pod"
    assert core_res["pods"].singular_name == "pod" and core_res["pods"].short_names == ["po"]
    assert "all" in core_res["pods"].categories and "all" in core_res["services"].categories
    assert core_res["pods/status"].kind == "Pod" and core_res["pods/status"].singular_name == ""
    assert "pods/log" in core_res
    assert not core_res["namespaces"].namespaced
    apps_res: dict[str, Any] = {
        r.name: r for r in client.AppsV1Api(k8s_api).get_api_resources().resources
    }
    scale = apps_res["statefulsets/scale"]
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert sorted(scale.verbs) == ["get", "patch", "update"]
    for name in ("statefulsets", "deployments", "replicasets", "daemonsets"):
        assert "all" in apps_res[name].categories, name  # DISC-3
    install_widgets(k8s_api)
    crd_res = {r.name: r for r in custom(k8s_api).get_api_resources(G, V).resources}
    assert crd_res["widgets"].short_names == ["wd"] and crd_res["widgets"].categories == ["all"]
    assert crd_res["widgets"].kind == "Widget" and crd_res["widgets"].singular_name == "widget"
    assert crd_res["widgets/scale"].kind == "Scale"
    assert crd_res["widgets/status"].kind == "Widget"


def test_dynamic_client_finds_a_crd_created_after_it_started(
    k8s_api: client.ApiClient, tmp_path: Path
) -> None:
    dyn: Any = dynamic.DynamicClient(  # type: ignore[no-untyped-call]
        k8s_api, cache_file=str(tmp_path / "discovery.json")
    )
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(body={"metadata": {"name": "x"}}, namespace="default")
    install_widgets(k8s_api)
    # a miss throws the cached discovery away and refetches (DISC-4)
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    made = widgets.create(body=widget("w1", replicas=2), namespace="default")
    assert made.metadata.generation == 1 and made.spec.replicas == 2
    applied = widgets.server_side_apply(
        body=widget("w1", color="red"), name="w1", namespace="default", field_manager="dyn"
    )
    assert applied.spec.color == "red" and applied.spec.replicas == 2
    listed = widgets.get(namespace="default")
    assert [i.metadata.name for i in listed.items] == ["w1"]
    assert listed.kind == "WidgetList" and listed.items[0].kind == "Widget"
    widgets.delete(name="w1", namespace="default")
    assert widgets.get(namespace="default").items == []


# -- metadata, lists, generation, status -------------------------------------------------------


def test_list_shapes(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    core(k8s_api).create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    install_widgets(k8s_api)
    custom(k8s_api).create_namespaced_custom_object(G, V, "default", P, widget("w"))
    for path, kind, api_version in (
        ("/api/v1/namespaces/default/configmaps", "ConfigMapList", "v1"),
        ("/apis/apps/v1/deployments", "DeploymentList", "apps/v1"),
        ("/apis/example.com/v1/namespaces/default/widgets", "WidgetList", "example.com/v1"),
        ("/api/v1/namespaces", "NamespaceList", "v1"),
    ):
        code, _, body = raw(apiserver, "GET", path)
        assert code == 200
        assert (body["kind"], body["apiVersion"]) == (kind, api_version)
        assert body["metadata"]["resourceVersion"] == str(apiserver.store.rev)
        assert isinstance(body["items"], list)
    _, _, body = raw(apiserver, "GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert body["items"][0]["kind"] == "Widget"
    assert body["items"][0]["apiVersion"] == "example.com/v1"


def test_quantities_are_strings(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    body = pod("q")
    body["spec"]["containers"][0]["resources"] = {
        "requests": {"memory": 1, "cpu": 0.5},
        "limits": {"memory": 1073741824},
    }
    code, _, created = raw(apiserver, "POST", "/api/v1/namespaces/default/pods", body)
    assert code == 201
    res = created["spec"]["containers"][0]["resources"]
    assert all(isinstance(v, str) for part in res.values() for v in part.values())
    assert res["requests"]["memory"] == "1"
    typed = v1.read_namespaced_pod("q", "default")  # the strict model parses it (ENV-3)
    assert typed.spec.containers[0].resources.requests["memory"] == "1"
    pvc = v1.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert pvc.spec.resources.requests == {"storage": "1Gi"}
    assert pvc.spec.volume_mode == "Filesystem" and pvc.status.phase == "Pending"


def test_status_put_without_status_clears_it(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    co.create_namespaced_custom_object(G, V, "default", P, widget("w", replicas=2))
    co.patch_namespaced_custom_object_status(G, V, "default", P, "w", {"status": {"phase": "Up"}})
    full = co.get_namespaced_custom_object_status(G, V, "default", P, "w")
    assert full["status"] == {"phase": "Up"}
    del full["status"]
    full["spec"]["replicas"] = 9  # ignored: a status write changes only status
    cleared = co.replace_namespaced_custom_object_status(G, V, "default", P, "w", full)
    assert "status" not in cleared or cleared["status"] in ({}, None)
    assert cleared["spec"]["replicas"] == 2 and cleared["metadata"]["generation"] == 1


def test_deletion_bumps_generation_once(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    co.create_namespaced_custom_object(
        G,
        V,
        "default",
        P,
        {**widget("w"), "metadata": {"name": "w", "finalizers": ["example.com/hold"]}},
    )
    first = co.delete_namespaced_custom_object(G, V, "default", P, "w")
    assert first["metadata"]["generation"] == 2  # GEN-2
    stamp = first["metadata"]["deletionTimestamp"]
    assert SECONDS.match(stamp)
    second = co.delete_namespaced_custom_object(G, V, "default", P, "w")
    assert second["metadata"]["generation"] == 2
    assert second["metadata"]["deletionTimestamp"] == stamp
    dep = apps(k8s_api).create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "d", "finalizers": ["example.com/hold"]},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        },
    )
    assert dep.metadata.generation == 1
    apps(k8s_api).delete_namespaced_deployment("d", "default")
    live = apps(k8s_api).read_namespaced_deployment("d", "default")
    assert live.metadata.generation == 2 and live.metadata.deletion_timestamp is not None
    apps(k8s_api).patch_namespaced_deployment("d", "default", {"metadata": {"finalizers": None}})
    code, _ = api_error(apps(k8s_api).read_namespaced_deployment, "d", "default")
    assert code == 404


def test_scale_subresource_preconditions_and_statefulset_smp(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    co.create_namespaced_custom_object(G, V, "default", P, widget("w", replicas=1))
    scale = co.get_namespaced_custom_object_scale(G, V, "default", P, "w")
    co.patch_namespaced_custom_object_scale(G, V, "default", P, "w", {"spec": {"replicas": 2}})
    scale["spec"]["replicas"] = 7  # scale still carries the old resourceVersion
    code, body = api_error(
        co.replace_namespaced_custom_object_scale, G, V, "default", P, "w", scale
    )
    assert code == 409 and body["reason"] == "Conflict"
    assert co.get_namespaced_custom_object(G, V, "default", P, "w")["spec"]["replicas"] == 2
    # PYCLIENT sends a strategic merge patch to a built-in /scale (PATCH-4)
    a = apps(k8s_api)
    a.create_namespaced_stateful_set("default", statefulset("web"))
    scaled = a.patch_namespaced_stateful_set_scale("web", "default", {"spec": {"replicas": 2}})
    assert scaled.spec.replicas == 2 and scaled.status.replicas == 0
    assert scaled.status.selector == "app=web"
    assert a.read_namespaced_stateful_set("web", "default").metadata.generation == 2


# -- CRDs -------------------------------------------------------------------------------------


def _crd_error(k8s_api: client.ApiClient, mutate: Callable[[dict[str, Any]], None]) -> str:
    crd = copy.deepcopy(WIDGET_CRD)
    mutate(crd)
    code, body = api_error(extensions(k8s_api).create_custom_resource_definition, crd)
    assert code == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "CustomResourceDefinition"
    assert body["details"]["group"] == "apiextensions.k8s.io"
    message: str = body["message"]
    return message


def test_crd_validation(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    def bad_scope(c: dict[str, Any]) -> None:
        c["spec"]["scope"] = "Global"

    def two_storage(c: dict[str, Any]) -> None:
        v2 = copy.deepcopy(c["spec"]["versions"][0])
        v2["name"] = "v2"
        c["spec"]["versions"].append(v2)

    def no_storage(c: dict[str, Any]) -> None:
        c["spec"]["versions"][0]["storage"] = False

    def no_schema(c: dict[str, Any]) -> None:
        del c["spec"]["versions"][0]["schema"]

    assert 'spec.scope: Unsupported value: "Global"' in _crd_error(k8s_api, bad_scope)
    assert "must have exactly one version marked as storage version" in _crd_error(
        k8s_api, two_storage
    )
    assert "must have exactly one version marked as storage version" in _crd_error(
        k8s_api, no_storage
    )
    assert "schema" in _crd_error(k8s_api, no_schema)
    # (the typed client refuses a CRD without names.kind itself)
    no_kind = copy.deepcopy(WIDGET_CRD)
    del no_kind["spec"]["names"]["kind"]
    code, _, body = raw(
        apiserver, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", no_kind
    )
    assert code == 422 and "spec.names.kind: Required value" in body["message"]
    # nothing got registered along the way
    assert extensions(k8s_api).list_custom_resource_definition().items == []


def test_crd_update_reregisters_versions_and_columns(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    ext, co = extensions(k8s_api), custom(k8s_api)
    install_widgets(k8s_api)
    co.create_namespaced_custom_object(G, V, "default", P, widget("w", replicas=3))
    crd = as_dict(k8s_api, ext.read_custom_resource_definition("widgets.example.com"))
    v2 = copy.deepcopy(crd["spec"]["versions"][0])
    v2.update(name="v2", storage=False)
    v2["additionalPrinterColumns"] = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}
    ]
    crd["spec"]["versions"].append(v2)
    ext.replace_custom_resource_definition("widgets.example.com", crd)
    # the same stored object is served at the new version (CRD-3)
    got = co.get_namespaced_custom_object(G, "v2", "default", P, "w")
    assert got["apiVersion"] == "example.com/v2" and got["spec"]["replicas"] == 3
    assert {r.name for r in co.get_api_resources(G, "v2").resources} >= {"widgets"}
    table_accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    code, _, table = raw(
        apiserver, "GET", "/apis/example.com/v2/namespaces/default/widgets", headers=table_accept
    )
    assert code == 200
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas"]
    assert table["rows"][0]["cells"] == ["w", 3]
    # no longer serving v1 removes its endpoints
    crd = as_dict(k8s_api, ext.read_custom_resource_definition("widgets.example.com"))
    crd["spec"]["versions"][0]["served"] = False
    ext.replace_custom_resource_definition("widgets.example.com", crd)
    code, _, body = raw(apiserver, "GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert code == 404 and body["message"] == "the server could not find the requested resource"
    assert co.get_namespaced_custom_object(G, "v2", "default", P, "w")["metadata"]["name"] == "w"


def test_custom_resource_error_texts(k8s_api: client.ApiClient) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"] = [
        "size"
    ]
    install_widgets(k8s_api, crd)
    co = custom(k8s_api)
    code, body = api_error(
        co.create_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        widget("w", replicas=-1, color="green"),
    )
    assert code == 422
    by_field = {c["field"]: c for c in body["details"]["causes"]}
    assert by_field["spec.size"] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.size",
    }
    assert by_field["spec.color"]["message"] == (
        'Unsupported value: "green": supported values: "red", "blue"'
    )
    assert by_field["spec.replicas"]["message"] == (
        "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
    )
    assert body["message"].startswith('Widget.example.com "w" is invalid: [')
    for text in ("spec.size: Required value", 'spec.color: Unsupported value: "green"'):
        assert text in body["message"]
    code, body = api_error(
        co.create_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        widget("w", size="s", replicas="two"),
    )
    assert code == 422
    assert body["details"]["causes"][0]["message"] == (
        'Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )


# -- patch ------------------------------------------------------------------------------------


def test_json_patch_operations_on_a_custom_resource(k8s_api: client.ApiClient) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["tags"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    install_widgets(k8s_api, crd)
    co = custom(k8s_api)
    co.create_namespaced_custom_object(
        G, V, "default", P, widget("w", replicas=1, color="red", tags={"a/b": "1", "c~d": "2"})
    )
    ops = [
        {"op": "test", "path": "/spec/tags/a~1b", "value": "1"},
        {"op": "test", "path": "/spec/tags/c~0d", "value": "2"},
        {"op": "copy", "from": "/spec/tags/a~1b", "path": "/spec/tags/e"},
        {"op": "move", "from": "/spec/tags/c~0d", "path": "/spec/tags/f~1g"},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "remove", "path": "/spec/color"},
        {"op": "add", "path": "/spec/size", "value": "xl"},
    ]
    out = co.patch_namespaced_custom_object(
        G, V, "default", P, "w", ops, _content_type="application/json-patch+json"
    )
    assert out["spec"] == {
        "replicas": 4,
        "size": "xl",
        "tags": {"a/b": "1", "e": "1", "f/g": "2"},
    }
    assert out["metadata"]["generation"] == 2
    code, body = api_error(
        co.patch_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        "w",
        [{"op": "remove", "path": "/spec/missing"}],
        _content_type="application/json-patch+json",
    )
    assert code == 422 and body["kind"] == "Status"
    code, body = api_error(
        co.patch_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        "w",
        [{"op": "test", "path": "/spec/size", "value": "s"}],
        _content_type="application/json-patch+json",
    )
    assert code == 422
    assert co.get_namespaced_custom_object(G, V, "default", P, "w")["spec"]["size"] == "xl"


def test_patch_runs_the_whole_write_path(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    made = co.create_namespaced_custom_object(G, V, "default", P, widget("w", replicas=1))
    rv = made["metadata"]["resourceVersion"]
    # validation (CRD-4) after merging
    code, body = api_error(
        co.patch_namespaced_custom_object, G, V, "default", P, "w", {"spec": {"replicas": -3}}
    )
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.replicas"
    # a stale resourceVersion in the body (CONC-3)
    co.patch_namespaced_custom_object(G, V, "default", P, "w", {"spec": {"color": "red"}})
    code, body = api_error(
        co.patch_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        "w",
        {"metadata": {"resourceVersion": rv}, "spec": {"color": "blue"}},
    )
    assert code == 409 and body["reason"] == "Conflict"
    # a no-op patch (META-9), a dry run (DRY-1) and status through the main endpoint (STAT-1)
    current = co.get_namespaced_custom_object(G, V, "default", P, "w")
    rev = apiserver.store.rev
    same = co.patch_namespaced_custom_object(G, V, "default", P, "w", {"spec": {"color": "red"}})
    assert same["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    dry = co.patch_namespaced_custom_object(
        G, V, "default", P, "w", {"spec": {"color": "blue"}}, dry_run="All"
    )
    assert dry["spec"]["color"] == "blue"
    ignored = co.patch_namespaced_custom_object(
        G, V, "default", P, "w", {"status": {"phase": "Hacked"}}
    )
    assert "status" not in ignored
    assert apiserver.store.rev == rev
    # defaulting (CRD-6) runs on patches too
    cleared = co.patch_namespaced_custom_object(
        G, V, "default", P, "w", {"spec": {"replicas": None}}
    )
    assert cleared["spec"]["replicas"] == 1
    # strict field validation on a patch (VALID-2)
    code, _, body = raw(
        apiserver,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w?fieldValidation=Strict",
        {"spec": {"extra": 1}},
        {"Content-Type": "application/merge-patch+json"},
    )
    assert code == 400 and body["message"] == 'strict decoding error: unknown field "spec.extra"'


def test_server_side_apply_on_custom_resources(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)

    def ssa(body: dict[str, Any], manager: str, force: bool = False) -> int:
        _, code, _ = co.patch_namespaced_custom_object_with_http_info(
            G,
            V,
            "default",
            P,
            "w",
            body,
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )
        return int(code)

    def live() -> dict[str, Any]:
        obj: dict[str, Any] = co.get_namespaced_custom_object(G, V, "default", P, "w")
        return obj

    assert ssa(widget("w", replicas=2, color="red"), "alpha") == 201  # SSA-1
    assert ssa(widget("w", replicas=3, color="red"), "alpha") == 200
    assert live()["spec"]["replicas"] == 3
    with pytest.raises(client.ApiException) as ei:
        ssa(widget("w", color="blue"), "beta")
    body = status_body(ei.value)
    assert ei.value.status == 409 and body["reason"] == "Conflict"
    # an Apply manager is named bare (apiserver fieldmanager printManager)
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alpha"',
            "field": ".spec.color",
        }
    ]
    # an Update manager is named with its apiVersion (the identifier never holds a time)
    co.patch_namespaced_custom_object(
        G, V, "default", P, "w", {"spec": {"size": "m"}}, field_manager="editor"
    )
    with pytest.raises(client.ApiException) as ei:
        ssa(widget("w", size="l"), "beta")
    assert status_body(ei.value)["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "editor" using example.com/v1',
            "field": ".spec.size",
        }
    ]
    assert ssa(widget("w", color="blue"), "beta", force=True) == 200
    forced = live()
    assert forced["spec"] == {"replicas": 3, "color": "blue", "size": "m"}
    managers = {m["manager"]: m for m in forced["metadata"]["managedFields"]}
    assert managers["beta"]["operation"] == "Apply"
    assert managers["beta"]["fieldsV1"] == {"f:spec": {"f:color": {}}}
    assert managers["alpha"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


# -- selectors --------------------------------------------------------------------------------


def test_field_selectors_per_kind(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_secret("default", {"metadata": {"name": "plain"}})
    v1.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": "tls"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""},
        },
    )
    names = [
        s.metadata.name
        for s in v1.list_namespaced_secret("default", field_selector="type=kubernetes.io/tls").items
    ]
    assert names == ["tls"]
    names = [
        s.metadata.name
        for s in v1.list_namespaced_secret(
            "default", field_selector="type!=kubernetes.io/tls"
        ).items
    ]
    assert names == ["plain"]
    v1.create_namespace({"metadata": {"name": "gone", "finalizers": ["example.com/x"]}})
    v1.create_namespace({"metadata": {"name": "live"}})
    v1.delete_namespace("gone")
    terminating = v1.list_namespace(field_selector="status.phase=Terminating")
    assert [n.metadata.name for n in terminating.items] == ["gone"]
    v1.create_namespaced_pod("default", pod("a", restartPolicy="Never"))
    v1.create_namespaced_pod("default", pod("b", serviceAccountName="robot"))
    for sel, want in (
        ("spec.restartPolicy=Never", ["a"]),
        ("spec.serviceAccountName=robot", ["b"]),
        ("spec.schedulerName=default-scheduler", ["a", "b"]),
        ("spec.nodeName=", ["a", "b"]),
        ("metadata.name!=a,status.phase=Pending", ["b"]),
    ):
        got = [p.metadata.name for p in v1.list_namespaced_pod("default", field_selector=sel).items]
        assert got == want, sel
    for ev_name, reason, typ in (("e1", "Started", "Normal"), ("e2", "Failed", "Warning")):
        v1.create_namespaced_event(
            "default",
            {
                "metadata": {"name": ev_name},
                "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default"},
                "reason": reason,
                "type": typ,
                "message": "m",
                "source": {"component": "kubelet"},
            },
        )
    for sel, want in (
        ("reason=Failed", ["e2"]),
        ("type=Normal", ["e1"]),
        ("involvedObject.kind=Pod,involvedObject.name=a", ["e1", "e2"]),
        ("source=kubelet", ["e1", "e2"]),
    ):
        got = [
            e.metadata.name for e in v1.list_namespaced_event("default", field_selector=sel).items
        ]
        assert got == want, sel
    install_widgets(k8s_api)
    code, body = api_error(
        custom(k8s_api).list_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        field_selector="spec.color=red",
    )
    assert code == 400
    # the custom resource converter's wording (apiextensions ConvertFieldLabel)
    assert body["message"] == "field label not supported: spec.color"


def test_watch_custom_resources_with_selectors(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    rv = co.list_namespaced_custom_object(G, V, "default", P)["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(
        G, V, "default", P, {**widget("a"), "metadata": {"name": "a", "labels": {"t": "x"}}}
    )
    co.create_namespaced_custom_object(G, V, "default", P, widget("b"))
    co.patch_namespaced_custom_object(G, V, "default", P, "a", {"spec": {"replicas": 5}})
    co.delete_namespaced_custom_object(G, V, "default", P, "a")
    w = new_watch()
    events = []
    for ev in w.stream(
        co.list_namespaced_custom_object,
        G,
        V,
        "default",
        P,
        resource_version=rv,
        label_selector="t=x",
        timeout_seconds=5,
    ):
        events.append(
            (
                ev["type"],
                ev["object"]["metadata"]["name"],
                int(ev["object"]["metadata"]["resourceVersion"]),
            )
        )
        if len(events) == 3:
            w.stop()
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    revs = [r for _, _, r in events]
    assert revs == sorted(revs) and len(set(revs)) == 3


# -- services, leases, events -----------------------------------------------------------------


def test_service_ip_allocation_and_defaults(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    net = ipaddress.ip_network("10.96.0.0/12")
    a = v1.create_namespaced_service(
        "default",
        {"metadata": {"name": "a"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}},
    )
    b = v1.create_namespaced_service(
        "default", {"metadata": {"name": "b"}, "spec": {"ports": [{"port": 81, "name": "x"}]}}
    )
    for svc in (a, b):
        assert ipaddress.ip_address(svc.spec.cluster_ip) in net
        assert svc.spec.cluster_ips == [svc.spec.cluster_ip]
        assert svc.spec.type == "ClusterIP" and svc.spec.session_affinity == "None"
        assert svc.spec.ip_families == ["IPv4"] and svc.spec.ip_family_policy == "SingleStack"
        assert svc.spec.internal_traffic_policy == "Cluster"
    assert a.spec.cluster_ip != b.spec.cluster_ip != "10.96.0.1"
    assert a.spec.ports[0].protocol == "TCP" and a.spec.ports[0].target_port == 80
    headless = v1.create_namespaced_service(
        "default",
        {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}},
    )
    assert headless.spec.cluster_ip == "None"
    np = v1.create_namespaced_service(
        "default",
        {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}},
    )
    assert 30000 <= np.spec.ports[0].node_port <= 32767
    # an update keeps the allocation
    a.spec.selector = {"app": "b"}
    assert v1.replace_namespaced_service("a", "default", a).spec.cluster_ip == a.spec.cluster_ip


def test_leader_election_lease_lock(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    def candidate(identity: str) -> Any:
        lock: Any = LeaseLock("leader", "default", identity)  # type: ignore[no-untyped-call]
        lock.api_instance = client.CoordinationV1Api(k8s_api)
        config = electionconfig.Config(  # type: ignore[no-untyped-call]
            lock=lock,
            lease_duration=15,
            renew_deadline=10,
            retry_period=2,
            onstarted_leading=lambda: None,
            onstopped_leading=None,
        )
        return leaderelection.LeaderElection(config)  # type: ignore[no-untyped-call]

    a, b = candidate("a"), candidate("b")
    assert a.try_acquire_or_renew() is True  # read 404, then create
    assert b.try_acquire_or_renew() is False  # held and not expired
    assert a.try_acquire_or_renew() is True  # renew: PUT with the read resourceVersion
    leases: Any = client.CoordinationV1Api(k8s_api)
    lease = leases.read_namespaced_lease("leader", "default")
    assert lease.spec.holder_identity == "a" and lease.spec.lease_duration_seconds == 15
    # b read the lease before a's last renewal: its PUT must lose (CONC-1)
    stale_ok = b.election_config.lock.update("leader", "default", a.observed_record)
    assert stale_ok is False
    _, _, wire = raw(
        apiserver, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/leader"
    )
    assert MICRO.match(wire["spec"]["renewTime"]) and MICRO.match(wire["spec"]["acquireTime"])
    assert SECONDS.match(wire["metadata"]["creationTimestamp"])
    assert "generation" not in wire["metadata"] and "status" not in wire
    assert wire["spec"]["holderIdentity"] == "a"


def test_lease_times_and_validation(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    co: Any = client.CoordinationV1Api(k8s_api)
    aware = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    naive = datetime(2024, 1, 2, 3, 4, 6)
    co.create_namespaced_lease(
        "default",
        {
            "metadata": {"name": "l"},
            "spec": {
                "holderIdentity": "x",
                "leaseDurationSeconds": 10,
                "acquireTime": aware,
                "renewTime": naive,
                "leaseTransitions": 0,
            },
        },
    )
    _, _, wire = raw(apiserver, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l")
    assert wire["spec"]["acquireTime"] == "2024-01-02T03:04:05.123456Z"
    assert wire["spec"]["renewTime"] == "2024-01-02T03:04:06.000000Z"  # naive = UTC (META-7)
    for spec, field in (
        ({"leaseDurationSeconds": 0}, "spec.leaseDurationSeconds"),
        ({"leaseTransitions": -1}, "spec.leaseTransitions"),
    ):
        code, body = api_error(
            co.create_namespaced_lease, "default", {"metadata": {"name": "bad"}, "spec": spec}
        )
        assert code == 422 and body["details"]["causes"][0]["field"] == field


def test_event_views_map_every_field(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    ev1: Any = client.EventsV1Api(k8s_api)
    now = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "default", "uid": "u-1"}
    ev1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "new"},
            "eventTime": now,
            "regarding": ref,
            "note": "pulled",
            "reason": "Pulled",
            "type": "Normal",
            "action": "Pull",
            "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1",
        },
    )
    as_core = v1.read_namespaced_event("new", "default")  # EVT-1
    assert as_core.involved_object.name == "p" and as_core.involved_object.uid == "u-1"
    assert as_core.message == "pulled" and as_core.reporting_component == "example.com/ctl"
    assert as_core.reporting_instance == "ctl-1" and as_core.action == "Pull"
    assert as_core.event_time == now
    v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "old"},
            "involvedObject": ref,
            "message": "legacy",
            "reason": "Killing",
            "type": "Warning",
            "source": {"component": "kubelet", "host": "n1"},
            "count": 3,
            "firstTimestamp": now,
            "lastTimestamp": now,
        },
    )
    _, _, wire = raw(apiserver, "GET", "/apis/events.k8s.io/v1/namespaces/default/events/old")
    assert wire["regarding"]["name"] == "p" and wire["note"] == "legacy"
    assert wire["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert wire["deprecatedCount"] == 3
    assert wire["deprecatedFirstTimestamp"] == "2024-05-06T07:08:09Z"  # metav1.Time
    assert "involvedObject" not in wire and "message" not in wire
    # both lists show both, and the core model parses each (EVT-3)
    core_list = v1.list_namespaced_event("default")
    assert [e.metadata.name for e in core_list.items] == ["new", "old"]
    assert all(e.involved_object is not None for e in core_list.items)
    _, _, new_list = raw(apiserver, "GET", "/apis/events.k8s.io/v1/namespaces/default/events")
    assert [e["metadata"]["name"] for e in new_list["items"]] == ["new", "old"]
    _, _, core_wire = raw(apiserver, "GET", "/api/v1/namespaces/default/events/new")
    assert MICRO.match(core_wire["eventTime"])
    # a write through one view is visible through the other
    ev1.patch_namespaced_event("new", "default", {"series": {"count": 2, "lastObservedTime": now}})
    assert v1.read_namespaced_event("new", "default").series.count == 2


def test_event_validation(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    path = "/apis/events.k8s.io/v1/namespaces/default/events"
    base = {
        "metadata": {"name": "e"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "R",
        "action": "A",
        "type": "Normal",
        "reportingController": "example.com/c",
        "reportingInstance": "i",
    }
    for change, field in (
        ({"eventTime": None}, "eventTime"),
        ({"type": "Loud"}, "type"),
        ({"deprecatedCount": 2}, "count"),  # upstream reports the internal field names
        ({"deprecatedSource": {"component": "x"}}, "source"),
        ({"reportingController": None}, "reportingController"),
        (
            {"series": {"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}},
            "series.count",
        ),
    ):
        body: dict[str, Any] = {k: v for k, v in {**base, **change}.items() if v is not None}
        code, _, resp = raw(apiserver, "POST", path, body)
        assert code == 422, change
        assert field in [c["field"] for c in resp["details"]["causes"]], (change, resp)
    code, body = api_error(
        core(k8s_api).create_namespaced_event,
        "default",
        {
            "metadata": {"name": "x"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "elsewhere"},
        },
    )
    assert code == 422 and "involvedObject.namespace" in body["message"]


# -- informer ---------------------------------------------------------------------------------


def test_shared_informer_relists_after_expired_watch(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    informer: Any = SharedInformer(  # type: ignore[no-untyped-call]
        v1.list_namespaced_config_map, namespace="default", resync_period=1
    )
    errors: list[Any] = []
    informer.add_event_handler("ERROR", errors.append)

    def names() -> set[str]:
        return {o.metadata.name for o in informer.cache.list()}

    informer.start()
    try:
        v1.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        eventually(lambda: names() == {"a", "b"}, "the informer to see a and b")
        # hide changes from the open watch, forget history, then cut the watch: the
        # informer resumes from an old resourceVersion, gets 410 and re-lists (WATCH-4)
        apiserver.faults.stall_watches("configmaps")
        v1.delete_namespaced_config_map("a", "default")
        v1.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
        apiserver.compact()
        apiserver.faults.drop_watches("configmaps")
        eventually(lambda: names() == {"b", "c"}, "the informer to re-list")
        assert any(getattr(e, "status", None) == 410 for e in errors), errors
    finally:
        apiserver.faults.clear()
        informer.stop()


def test_watch_stream_survives_bookmarks_and_ends_on_timeout(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    apiserver.bookmark_interval = 0.1
    v1 = core(k8s_api)
    w = new_watch()
    seen: list[str] = []

    def write_later() -> None:
        time.sleep(0.3)
        v1.create_namespaced_config_map("default", {"metadata": {"name": "late"}})

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        for ev in w.stream(
            v1.list_namespaced_config_map, "default", timeout_seconds=1, allow_watch_bookmarks=True
        ):
            seen.append(ev["type"])
    finally:
        writer.join()
    # bookmarks update the client's resourceVersion and never reach the caller as objects
    assert "ADDED" in seen
    assert int(w.resource_version) >= int(
        v1.read_namespaced_config_map("late", "default").metadata.resource_version
    )
    assert apiserver.watch_count == 0


def test_datetimes_round_trip_through_models(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    install_widgets(k8s_api)
    # conditions with +00:00 offsets (ENV-4) come back as RFC 3339 'Z' seconds (META-7)
    now = datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    a = apps(k8s_api)
    a.create_namespaced_stateful_set("default", statefulset("s"))
    a.patch_namespaced_stateful_set_status(
        "s",
        "default",
        {
            "status": {
                "replicas": 0,
                "conditions": [
                    {
                        "type": "Custom",
                        "status": "True",
                        "reason": "R",
                        "message": "m",
                        "lastTransitionTime": now,
                    }
                ],
            }
        },
    )
    _, _, wire = raw(apiserver, "GET", "/apis/apps/v1/namespaces/default/statefulsets/s")
    assert wire["status"]["conditions"][0]["lastTransitionTime"] == "2024-02-03T04:05:06Z"
    typed = a.read_namespaced_stateful_set_status("s", "default")
    assert typed.status.conditions[0].last_transition_time == now.replace(microsecond=0)
    assert json.loads(json.dumps(wire))["metadata"]["resourceVersion"].isdigit()


def test_typed_deletes_of_kinds_that_return_the_object(k8s_api: client.ApiClient) -> None:
    """Pods and Services answer DELETE with the object (ERR-3) -- the generated client's
    return types (from upstream OpenAPI) demand it."""
    v1 = core(k8s_api)
    v1.create_namespaced_pod("default", pod("p"))
    v1.create_namespaced_service(
        "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert v1.delete_namespaced_pod("p", "default").metadata.name == "p"
    assert v1.delete_namespaced_service("s", "default").metadata.name == "s"
    # kinds whose typed delete returns `object` accept either shape
    v1.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    done = v1.delete_namespaced_config_map("c", "default")
    assert done["status"] == "Success" and done["details"]["name"] == "c"


def test_typed_deletes_of_volumes_and_service_accounts_return_the_object(
    k8s_api: client.ApiClient,
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_service_account("default", {"metadata": {"name": "sa"}})
    v1.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    v1.create_persistent_volume(
        {
            "metadata": {"name": "pv1"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/pv1"},
            },
        }
    )
    # upstream's ServiceAccount, PVC and PV stores set ReturnDeletedObject: the typed client
    # parses the object (and fails, or silently gets an empty object, on a Status)
    sa = v1.delete_namespaced_service_account("sa", "default")
    assert (sa.kind, sa.metadata.name) == ("ServiceAccount", "sa")
    assert v1.delete_namespaced_persistent_volume_claim("data", "default").metadata.name == "data"
    assert v1.delete_persistent_volume("pv1").metadata.name == "pv1"


def test_secret_string_data_is_merged_into_data(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    made = v1.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": "creds"},
            "stringData": {"user": "admin", "b": "wins"},
            "data": {"a": "d29ybGQ=", "b": "bG9zZXM="},
        },
    )
    # stringData is write-only: merged into data (base64, it wins on clashes), never stored
    assert made.data == {"a": "d29ybGQ=", "b": "d2lucw==", "user": "YWRtaW4="}
    assert made.string_data is None
    _, _, wire = raw(apiserver, "GET", "/api/v1/namespaces/default/secrets/creds")
    assert "stringData" not in wire and wire["data"]["user"] == "YWRtaW4="
    patched = v1.patch_namespaced_secret("creds", "default", {"stringData": {"pw": "s3cret"}})
    assert patched.data["pw"] == "czNjcmV0" and patched.string_data is None


def test_secret_and_configmap_binary_values_must_be_base64(apiserver: APIServer) -> None:
    for path, body in (
        ("secrets", {"metadata": {"name": "s"}, "data": {"a": "not base64!"}}),
        ("configmaps", {"metadata": {"name": "c"}, "binaryData": {"a": "not base64!"}}),
    ):
        code, _, resp = raw(apiserver, "POST", f"/api/v1/namespaces/default/{path}", body)
        assert code == 400, (path, resp)
        assert resp["reason"] == "BadRequest" and "illegal base64 data" in resp["message"]


def test_update_validation_of_builtin_kinds(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_pod(
        "default",
        pod("p", nodeName="n1", containers=[{"name": "c", "image": "nginx:1", "env": []}]),
    )
    # a pod's image may change; most of its spec may not
    assert (
        v1.patch_namespaced_pod(
            "p", "default", {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
        )
        .spec.containers[0]
        .image
        == "nginx:2"
    )
    for change in (
        {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}},
        {"spec": {"nodeName": "n2"}},
        {"spec": {"restartPolicy": "Never"}},
    ):
        code, body = api_error(v1.patch_namespaced_pod, "p", "default", change)
        assert code == 422, change
        assert "pod updates may not change fields other than" in body["message"], change
    svc = v1.create_namespaced_service(
        "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    code, body = api_error(
        v1.patch_namespaced_service, "s", "default", {"spec": {"clusterIP": "10.96.0.99"}}
    )
    assert code == 422 and "spec.clusterIP" in body["message"]
    assert v1.read_namespaced_service("s", "default").spec.cluster_ip == svc.spec.cluster_ip
    v1.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    code, body = api_error(
        v1.patch_namespaced_persistent_volume_claim,
        "data",
        "default",
        {"spec": {"accessModes": ["ReadWriteMany"]}},
    )
    assert code == 422 and "spec is immutable after creation" in body["message"]


def test_object_meta_validation_of_finalizers_and_owner_references(apiserver: APIServer) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "1", "controller": True}
    for meta, field, text in (
        # upstream's ValidateFinalizers reports the list's path, without an index
        ({"finalizers": ["bad name!"]}, "metadata.finalizers", "name part must consist of"),
        (
            {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o"}]},
            "metadata.ownerReferences.uid",
            "uid must not be empty",
        ),
        (
            {"ownerReferences": [owner, {**owner, "name": "o2", "uid": "2"}]},
            "metadata.ownerReferences",
            "Only one reference can have Controller set to true",
        ),
    ):
        # raw: the typed client would refuse the uid-less reference itself
        code, _, body = raw(
            apiserver,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "x", **meta}},
        )
        assert code == 422, meta
        assert body["details"]["causes"][0]["field"] == field, body
        assert text in body["message"], body
