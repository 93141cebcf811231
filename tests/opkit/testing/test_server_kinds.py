"""Embedded API server: kind-specific behaviour that flows through the request pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from _server_fixtures import core, install_widgets, new_watch, raw, status_body, widget
from kubernetes import client

from opkit.testing import APIServer


def test_lease_leader_election_flow(k8s_api: client.ApiClient) -> None:
    leases: Any = client.CoordinationV1Api(k8s_api)
    now = dt.datetime.now(dt.UTC)
    body = {
        "metadata": {"name": "leader"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": now.isoformat(),  # "+00:00" offsets, as the client sends (META-7)
            "renewTime": now.isoformat(),
            "leaseTransitions": 0,
        },
    }
    created = leases.create_namespaced_lease("kube-system", body)
    assert created.spec.holder_identity == "a"
    assert created.metadata.generation is None  # leases do not track generation
    mine = leases.read_namespaced_lease("leader", "kube-system")
    theirs = leases.read_namespaced_lease("leader", "kube-system")
    mine.spec.renew_time = dt.datetime.now(dt.UTC)
    renewed = leases.replace_namespaced_lease("leader", "kube-system", mine)
    assert renewed.metadata.resource_version != theirs.metadata.resource_version
    theirs.spec.holder_identity = "b"
    with pytest.raises(client.ApiException) as ei:
        leases.replace_namespaced_lease("leader", "kube-system", theirs)
    assert ei.value.status == 409  # CONC-1 keeps two leaders from both winning
    bad = {"metadata": {"name": "bad"}, "spec": {"leaseDurationSeconds": 0}}
    with pytest.raises(client.ApiException) as ei:
        leases.create_namespaced_lease("kube-system", bad)
    assert ei.value.status == 422


def test_events_are_two_views_of_one_object(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    events: Any = client.EventsV1Api(k8s_api)
    v1 = core(k8s_api)
    start = v1.list_namespaced_event("default").metadata.resource_version
    events.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e1"},
            "eventTime": dt.datetime.now(dt.UTC).isoformat(),
            "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1",
            "action": "Sync",
            "reason": "Synced",
            "type": "Normal",
            "note": "all good",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        },
    )
    legacy = v1.read_namespaced_event("e1", "default")
    assert legacy.message == "all good" and legacy.involved_object.name == "p"
    assert legacy.reporting_component == "example.com/ctl"
    v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Started",
            "message": "legacy",
            "type": "Normal",
        },
    )
    modern = events.read_namespaced_event("e2", "default")
    assert modern.note == "legacy" and modern.regarding.name == "p"
    listed = events.list_namespaced_event("default")
    assert [e.metadata.name for e in listed.items] == ["e1", "e2"]
    # a watch through the events.k8s.io view sees converted objects
    w = new_watch()
    seen = []
    for ev in w.stream(
        events.list_namespaced_event, "default", resource_version=start, timeout_seconds=5
    ):
        seen.append((ev["type"], ev["object"].note))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "all good"), ("ADDED", "legacy")]


def test_custom_resource_table_uses_printer_columns(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    crd = install_widgets(k8s_api)
    assert crd["spec"]["names"]["categories"] == ["all"]
    co: Any = client.CustomObjectsApi(k8s_api)
    co.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget("w1", replicas=3)
    )
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    code, _, table = raw(
        apiserver, "GET", "/apis/example.com/v1/namespaces/default/widgets", headers=accept
    )
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"][0] == "w1"


def test_namespace_status_subresource(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespace({"metadata": {"name": "st"}})
    ns = v1.read_namespace_status("st")
    assert ns.status.phase == "Active"
    patched = v1.patch_namespace_status(
        "st", {"status": {"conditions": [{"type": "X", "status": "True"}]}}
    )
    assert [c.type for c in patched.status.conditions] == ["X"]


def test_go_style_booleans_and_unknown_params(apiserver: APIServer) -> None:
    base = "/api/v1/namespaces/default/configmaps"
    for value in ("false", "FALSE", "0"):
        code, headers, body = raw(apiserver, "GET", f"{base}?watch={value}&timeout=32s")
        assert code == 200 and body["kind"] == "ConfigMapList"
        assert "content-length" in headers
    code, headers, _ = raw(apiserver, "GET", f"{base}?watch=yes&timeoutSeconds=1")
    assert code == 200 and headers.get("transfer-encoding") == "chunked"


def test_unserved_groups_answer_clearly(apiserver: APIServer) -> None:
    code, _, body = raw(
        apiserver,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        b"k8s\x00\x0a",
        {"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert code == 404 and body["reason"] == "NotFound"


def test_pod_binding_sets_node(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    v1.create_namespaced_pod_binding(
        "p",
        "default",
        {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}},
    )
    assert v1.read_namespaced_pod("p", "default").spec.node_name == "node-1"
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_pod_binding(
            "p",
            "default",
            {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-2"}},
        )
    assert ei.value.status == 409
    assert "already assigned" in status_body(ei.value)["message"]


def test_fake_clock_drives_timestamps_and_watch_timeouts() -> None:
    import http.client
    import threading

    from opkit.clock import FakeClock

    start = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    clock = FakeClock(start)
    with APIServer(clock=clock) as server:
        code, _, body = raw(
            server, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "t"}}
        )
        assert code == 201 and body["metadata"]["creationTimestamp"] == "2030-01-02T03:04:05Z"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=60")
        resp = conn.getresponse()
        done = threading.Event()
        result: list[bytes] = []

        def read() -> None:
            result.append(resp.read())
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        assert not done.wait(0.3)  # 60 s of fake time have not passed
        clock.step(61)
        assert done.wait(10)
        reader.join()
        conn.close()
        assert b'"type":"ADDED"' in result[0]


def test_pod_log_follow_streams(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    import http.client

    core(k8s_api).create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    calls: list[tuple[str, str, str, bool, bool]] = []

    def provider(ns: str, pod: str, container: str, previous: bool, follow: bool) -> Any:
        calls.append((ns, pod, container, previous, follow))
        yield b"line 1\n"
        yield b""
        yield b"line 2\n"

    apiserver.set_log_provider(provider)
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/pods/p/log?follow=true")
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.read() == b"line 1\nline 2\n"
    conn.close()
    assert calls == [("default", "p", "c", False, True)]
