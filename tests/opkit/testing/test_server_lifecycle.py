"""Embedded API server: deletion, finalizers, GC, namespaces, CRDs and subresources."""

from __future__ import annotations

import json
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
    raw,
    status_body,
    widget,
)
from kubernetes import client, dynamic

from opkit.testing import APIServer

GROUP, VERSION, PLURAL = "example.com", "v1", "widgets"


def owner_ref(obj: Any, *, block: bool = False, controller: bool = True) -> dict[str, Any]:
    meta = obj.metadata
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def exists(v1: Any, name: str, ns: str = "default") -> bool:
    try:
        v1.read_namespaced_config_map(name, ns)
        return True
    except client.ApiException as e:
        assert e.status == 404
        return False


def test_finalizers_hold_deletion(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}
    )
    deleted = v1.delete_namespaced_config_map("f", "default")
    # 200 with the object when it still exists (ERR-3); the client hands back a dict
    assert deleted["kind"] == "ConfigMap"
    assert deleted["metadata"]["deletionTimestamp"]
    assert deleted["metadata"]["deletionGracePeriodSeconds"] == 0
    live = v1.read_namespaced_config_map("f", "default")
    assert live.metadata.deletion_timestamp is not None
    # a second delete changes nothing
    again = v1.delete_namespaced_config_map("f", "default")
    assert again["metadata"]["resourceVersion"] == live.metadata.resource_version
    # finalizers may only be removed while deleting (DEL-3)
    with pytest.raises(client.ApiException) as ei:
        v1.patch_namespaced_config_map(
            "f", "default", {"metadata": {"finalizers": ["example.com/hold", "new/one"]}}
        )
    assert ei.value.status == 422
    assert (
        "no new finalizers can be added if the object is being deleted"
        in (status_body(ei.value)["message"])
    )
    rv = live.metadata.resource_version
    v1.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    assert not exists(v1, "f")
    # the DELETED event carries the last state at the deletion revision (WATCH-3)
    lines = _watch(apiserver, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
    assert [e["type"] for e in lines] == ["DELETED"]
    assert int(lines[0]["object"]["metadata"]["resourceVersion"]) > int(rv)


def _watch(apiserver: APIServer, path: str) -> list[dict[str, Any]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    try:
        conn.request("GET", path + "&timeoutSeconds=1")
        data = conn.getresponse().read()
        return [json.loads(line) for line in data.splitlines() if line]
    finally:
        conn.close()


def test_delete_response_shapes(k8s_api: client.ApiClient, apiserver: APIServer) -> None:
    v1 = core(k8s_api)
    cmap = v1.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
    code, _, body = raw(apiserver, "DELETE", "/api/v1/namespaces/default/configmaps/gone")
    assert code == 200
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "gone", "kind": "configmaps", "uid": cmap.metadata.uid}
    v1.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    # kubectl sends DeleteOptions in the body of DELETE (HTTP-1, DEL-1)
    code, _, body = raw(
        apiserver,
        "DELETE",
        "/api/v1/namespaces/default/pods/p",
        {"propagationPolicy": "Background"},
        {"Content-Type": "application/json"},
    )
    assert code == 200 and body["kind"] == "Pod"  # pods return the deleted object
    code, _, body = raw(
        apiserver,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/x?propagationPolicy=Sideways",
    )
    assert code == 422 and body["details"]["kind"] == "DeleteOptions"
    # an undecodable DeleteOptions body is rejected, never ignored (DEL-1)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "keep"}})
    rev = apiserver.store.rev
    for payload in ('{"dryRun": ["All"]', '["All"]', '{"preconditions": 5}'):
        code, _, body = raw(
            apiserver,
            "DELETE",
            "/api/v1/namespaces/default/configmaps/keep",
            payload,
            {"Content-Type": "application/json"},
        )
        assert (code, body["reason"]) == (400, "BadRequest"), payload
    assert apiserver.store.rev == rev
    # service accounts (like pods, services, PVCs, PVs) return the deleted object
    v1.create_namespaced_service_account("default", {"metadata": {"name": "sa"}})
    gone = v1.delete_namespaced_service_account("sa", "default")
    assert gone.kind == "ServiceAccount" and gone.metadata.name == "sa"


def test_delete_preconditions(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "pre"}})
    with pytest.raises(client.ApiException) as ei:
        v1.delete_namespaced_config_map("pre", "default", body={"preconditions": {"uid": "nope"}})
    assert ei.value.status == 409
    assert "Precondition failed: UID in precondition: nope" in status_body(ei.value)["message"]
    assert exists(v1, "pre")


def test_pod_graceful_deletion_only_when_scheduled(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    spec = {"containers": [{"name": "c", "image": "x"}]}
    v1.create_namespaced_pod("default", {"metadata": {"name": "unscheduled"}, "spec": spec})
    v1.delete_namespaced_pod("unscheduled", "default")
    with pytest.raises(client.ApiException):
        v1.read_namespaced_pod("unscheduled", "default")
    v1.create_namespaced_pod(
        "default",
        {"metadata": {"name": "running"}, "spec": {**spec, "nodeName": "node-1"}},
    )
    pod = v1.delete_namespaced_pod("running", "default")
    assert pod.metadata.deletion_grace_period_seconds == 30
    live = v1.read_namespaced_pod("running", "default")
    assert live.metadata.deletion_timestamp is not None
    # the kubelet finishes with gracePeriodSeconds=0
    v1.delete_namespaced_pod("running", "default", grace_period_seconds=0)
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_pod("running", "default")
    assert ei.value.status == 404


def test_gc_background(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    owner = v1.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    for i in range(3):
        v1.create_namespaced_config_map(
            "default",
            {"metadata": {"name": f"dep{i}", "ownerReferences": [owner_ref(owner)]}},
        )
    v1.delete_namespaced_config_map("owner", "default")
    assert apiserver.wait_idle(10)
    assert [exists(v1, f"dep{i}") for i in range(3)] == [False, False, False]


def test_gc_owner_judged_by_uid(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    owner = v1.create_namespaced_config_map("default", {"metadata": {"name": "o"}})
    ref = owner_ref(owner)
    v1.delete_namespaced_config_map("o", "default")
    v1.create_namespaced_config_map("default", {"metadata": {"name": "o"}})  # same name, new uid
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "orphaned", "ownerReferences": [ref]}}
    )
    assert apiserver.wait_idle(10)
    assert not exists(v1, "orphaned")
    # one live owner keeps a dependent; the dangling reference is dropped
    live = v1.read_namespaced_config_map("o", "default")
    v1.create_namespaced_config_map(
        "default",
        {"metadata": {"name": "kept", "ownerReferences": [ref, owner_ref(live, controller=False)]}},
    )
    assert apiserver.wait_idle(10)
    kept = v1.read_namespaced_config_map("kept", "default")
    assert [r.uid for r in kept.metadata.owner_references] == [live.metadata.uid]


def test_gc_foreground(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    owner = v1.create_namespaced_config_map("default", {"metadata": {"name": "fg"}})
    v1.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "blocker",
                "ownerReferences": [owner_ref(owner, block=True)],
                "finalizers": ["example.com/slow"],
            }
        },
    )
    deleting = v1.delete_namespaced_config_map("fg", "default", propagation_policy="Foreground")
    assert "foregroundDeletion" in deleting["metadata"]["finalizers"]
    assert apiserver.wait_idle(10)
    # owner stays (with deletionTimestamp) while a blocking dependent exists (GC-2)
    live = v1.read_namespaced_config_map("fg", "default")
    assert live.metadata.deletion_timestamp is not None
    blocker = v1.read_namespaced_config_map("blocker", "default")
    assert blocker.metadata.deletion_timestamp is not None
    v1.patch_namespaced_config_map("blocker", "default", {"metadata": {"finalizers": None}})
    assert apiserver.wait_idle(10)
    assert not exists(v1, "blocker")
    assert not exists(v1, "fg")


def test_gc_orphan(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    owner = v1.create_namespaced_config_map("default", {"metadata": {"name": "parent"}})
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "child", "ownerReferences": [owner_ref(owner)]}}
    )
    v1.delete_namespaced_config_map("parent", "default", propagation_policy="Orphan")
    assert apiserver.wait_idle(10)
    assert not exists(v1, "parent")
    child = v1.read_namespaced_config_map("child", "default")
    assert not child.metadata.owner_references


def test_gc_across_kinds_and_custom_resources(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    w = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w1"))
    ref = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "w1",
        "uid": w["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    v1 = core(k8s_api)
    v1.create_namespaced_secret("default", {"metadata": {"name": "s", "ownerReferences": [ref]}})
    co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
    assert apiserver.wait_idle(10)
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_secret("s", "default")
    assert ei.value.status == 404


def test_namespace_deletion_lifecycle(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    ns = v1.create_namespace({"metadata": {"name": "doomed"}})
    assert ns.spec.finalizers == ["kubernetes"] and ns.status.phase == "Active"
    v1.create_namespaced_config_map("doomed", {"metadata": {"name": "plain"}})
    v1.create_namespaced_config_map(
        "doomed", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    terminating = v1.delete_namespace("doomed")
    assert terminating["status"]["phase"] == "Terminating"
    assert apiserver.wait_idle(10)
    live = v1.read_namespace("doomed")
    assert live.metadata.deletion_timestamp is not None
    conds = {c.type: c for c in live.status.conditions}
    assert conds["NamespaceFinalizersRemaining"].status == "True"
    assert not exists(v1, "plain", "doomed")
    # creating in a terminating namespace is forbidden (NS-1)
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    body = status_body(ei.value)
    assert ei.value.status == 403
    assert "because it is being terminated" in body["message"]
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    v1.patch_namespaced_config_map("held", "doomed", {"metadata": {"finalizers": None}})
    assert apiserver.wait_idle(10)
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespace("doomed")
    assert ei.value.status == 404


def test_namespace_finalize_endpoint(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespace(
        {"metadata": {"name": "fin"}, "spec": {"finalizers": ["kubernetes", "example.com/x"]}}
    )
    ns = v1.read_namespace("fin")
    ns.spec.finalizers = ["kubernetes"]
    done = v1.replace_namespace_finalize("fin", ns)
    assert done.spec.finalizers == ["kubernetes"]
    # PUT on the main endpoint cannot change spec.finalizers
    ns = v1.read_namespace("fin")
    ns.spec.finalizers = []
    kept = v1.replace_namespace("fin", ns)
    assert kept.spec.finalizers == ["kubernetes"]


def test_crd_lifecycle(apiserver: APIServer, k8s_api: client.ApiClient, tmp_path: Path) -> None:
    crd = install_widgets(k8s_api)
    conds = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conds["Established"]["status"] == "True"
    assert conds["NamesAccepted"]["reason"] == "NoConflicts"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    # discovery immediately (DISC-4) -- the dynamic client uses legacy discovery
    # (its discovery cache goes under tmp_path, not a file left in $TMPDIR)
    dyn: Any = dynamic.DynamicClient(  # type: ignore[no-untyped-call]
        k8s_api, cache_file=str(tmp_path / "discovery.json")
    )
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    widgets.create(body=widget("w1", replicas=2), namespace="default")
    co = custom(k8s_api)
    got = co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
    assert got["metadata"]["generation"] == 1
    held = {**widget("held"), "metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, held)
    ext = extensions(k8s_api)
    ext.delete_custom_resource_definition("widgets.example.com")
    assert apiserver.wait_idle(10)
    # CRD-3: instances are deleted first; the CRD waits, Terminating, for their finalizers
    live = ext.read_custom_resource_definition("widgets.example.com")
    assert live.metadata.deletion_timestamp is not None
    assert "Terminating" in [c.type for c in live.status.conditions]
    with pytest.raises(client.ApiException) as ei:
        co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
    assert ei.value.status == 404
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("new"))
    assert ei.value.status == 405
    co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "held", {"metadata": {"finalizers": None}}
    )
    assert apiserver.wait_idle(10)
    with pytest.raises(client.ApiException) as ei:
        ext.read_custom_resource_definition("widgets.example.com")
    assert ei.value.status == 404
    code, _, body = raw(apiserver, "GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert code == 404 and body["message"] == "the server could not find the requested resource"
    # re-creating starts empty
    install_widgets(k8s_api)
    assert co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"] == []


def test_crd_validation_errors(k8s_api: client.ApiClient) -> None:
    bad = json.loads(json.dumps(WIDGET_CRD))
    bad["metadata"]["name"] = "wrong.example.com"
    with pytest.raises(client.ApiException) as ei:
        install_widgets(k8s_api, bad)
    assert ei.value.status == 422


def test_custom_resource_schema_semantics(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    # defaults and pruning (CRD-5, CRD-6)
    created = co.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, {**widget("w1", color="red"), "junk": 1}
    )
    assert created["spec"] == {"color": "red", "replicas": 1}
    assert "junk" not in created
    # validation (CRD-4)
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, widget("w2", replicas=-1, color="green")
        )
    body = status_body(ei.value)
    assert ei.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "Widget"
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.color", "spec.replicas"]
    # kind is required for custom resources (CRD-7)
    no_kind = {"apiVersion": "example.com/v1", "metadata": {"name": "w3"}}
    code, _, body = raw(
        apiserver, "POST", "/apis/example.com/v1/namespaces/default/widgets", no_kind
    )
    assert code == 400 and body["message"].startswith("Object 'Kind' is missing in")
    # strict field validation reports pruned fields (VALID-2)
    code, _, body = raw(
        apiserver,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
        {**widget("w4"), "spec": {"nope": 1}},
    )
    assert code == 400 and body["message"] == 'strict decoding error: unknown field "spec.nope"'
    # custom resources need a resourceVersion on PUT (CONC-2)
    no_rv = widget("w1", color="blue")
    with pytest.raises(client.ApiException) as ei:
        co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1", no_rv)
    assert ei.value.status == 422
    assert status_body(ei.value)["message"] == (
        'Widget.example.com "w1" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )
    # strategic merge patch is not accepted for custom resources (PATCH-1)
    code, _, body = raw(
        apiserver,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
        {"spec": {"color": "blue"}},
        {"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert code == 415
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_custom_resource_status_and_generation(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    w = co.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, {**widget("w1", replicas=1), "status": {"phase": "x"}}
    )
    assert "status" not in w and w["metadata"]["generation"] == 1  # STAT-1, GEN-1
    w = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "w1", {"metadata": {"labels": {"a": "b"}}}
    )
    assert w["metadata"]["generation"] == 1
    w = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "w1", {"spec": {"replicas": 2}, "status": {"phase": "y"}}
    )
    assert w["metadata"]["generation"] == 2 and "status" not in w
    st = co.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "w1",
        {"status": {"phase": "Ready"}, "spec": {"replicas": 7}, "metadata": {"labels": {"c": "d"}}},
    )
    assert st["status"] == {"phase": "Ready"}
    assert st["spec"]["replicas"] == 2 and st["metadata"]["labels"] == {"a": "b"}
    assert st["metadata"]["generation"] == 2
    full = co.get_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "w1")
    full["status"] = {"phase": "Done"}
    replaced = co.replace_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "w1", full
    )
    assert replaced["status"] == {"phase": "Done"}
    stale = dict(full)
    stale["status"] = {"phase": "Stale"}
    with pytest.raises(client.ApiException) as ei:
        co.replace_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "w1", stale)
    assert ei.value.status == 409


def test_custom_resource_scale(k8s_api: client.ApiClient) -> None:
    install_widgets(k8s_api)
    co = custom(k8s_api)
    co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w1", replicas=2))
    scale = co.get_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "w1")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["replicas"] == 0
    scaled = co.patch_namespaced_custom_object_scale(
        GROUP, VERSION, "default", PLURAL, "w1", {"spec": {"replicas": 5}}
    )
    assert scaled["spec"]["replicas"] == 5
    w = co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
    assert w["spec"]["replicas"] == 5 and w["metadata"]["generation"] == 2


def test_builtin_scale_subresource(k8s_api: client.ApiClient) -> None:
    appsv1 = apps(k8s_api)
    appsv1.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
    )
    scale = appsv1.read_namespaced_deployment_scale("d", "default")
    assert scale.spec.replicas == 1 and scale.status.selector == "app=d"
    scale.spec.replicas = 4
    appsv1.replace_namespaced_deployment_scale("d", "default", scale)
    assert appsv1.read_namespaced_deployment("d", "default").spec.replicas == 4
    with pytest.raises(client.ApiException) as ei:
        appsv1.patch_namespaced_deployment_scale("d", "default", {"spec": {"replicas": -1}})
    assert ei.value.status == 422


def test_deletecollection_with_selector(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        v1.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"app": app}}}
        )
    v1.delete_collection_namespaced_config_map("default", label_selector="app=x")
    left = [i.metadata.name for i in v1.list_namespaced_config_map("default").items]
    assert left == ["c"]


def test_pod_log_and_unsupported_streams(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    assert v1.read_namespaced_pod_log("p", "default") == ""
    apiserver.set_log_provider(
        lambda ns, pod, container, previous, follow: iter([f"{pod}/{container}\n".encode()])
    )
    assert v1.read_namespaced_pod_log("p", "default", container="c") == "p/c\n"
    code, headers, text = raw(apiserver, "GET", "/api/v1/namespaces/default/pods/p/log")
    assert text == b"p/c\n"
    assert code == 200 and headers["content-type"].startswith("text/plain")
    code, _, body = raw(apiserver, "POST", "/api/v1/namespaces/default/pods/p/exec?command=ls")
    assert code == 400 and "not supported" in body["message"]


def test_crd_removal_ends_its_watches(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    import http.client

    install_widgets(k8s_api)
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    conn.request("GET", "/apis/example.com/v1/widgets?watch=1&timeoutSeconds=30")
    resp = conn.getresponse()
    assert resp.status == 200
    extensions(k8s_api).delete_custom_resource_definition("widgets.example.com")
    assert resp.read() == b""  # ends with the terminating chunk, no error
    conn.close()


def test_custom_resource_without_status_subresource(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    del crd["spec"]["versions"][0]["subresources"]
    install_widgets(k8s_api, crd)
    co = custom(k8s_api)
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g"},
        "spec": {"replicas": 1},
        "status": {"phase": "New"},
    }
    created = co.create_namespaced_custom_object(GROUP, VERSION, "default", "gadgets", body)
    assert created["status"] == {"phase": "New"}  # an ordinary field (STAT-1)
    patched = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", "gadgets", "g", {"status": {"phase": "Old"}}
    )
    assert patched["status"] == {"phase": "Old"}
    assert patched["metadata"]["generation"] == 2  # GEN-1 without a status subresource
    code, _, _ = raw(apiserver, "GET", "/apis/example.com/v1/namespaces/default/gadgets/g/status")
    assert code == 404
    code, _, _ = raw(apiserver, "GET", "/apis/example.com/v1/namespaces/default/gadgets/g/scale")
    assert code == 404
