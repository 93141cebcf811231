"""Embedded API server: selectors, paging and watch semantics via the official client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from _server_fixtures import core, new_watch, raw, status_body
from kubernetes import client

from opkit.testing import APIServer


def make_cms(v1: Any, specs: list[tuple[str, str, dict[str, str]]]) -> None:
    for ns, name, labels in specs:
        v1.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}})


def names(lst: Any) -> list[str]:
    return [i.metadata.name for i in lst.items]


def collect(
    v1: Any,
    stop_after: int,
    timeout: int = 5,
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Watch configmaps until ``stop_after`` events (bookmarks included) arrived."""
    w = new_watch()
    out: list[tuple[str, Any]] = []
    func = (
        v1.list_namespaced_config_map
        if "namespace" in kwargs
        else (v1.list_config_map_for_all_namespaces)
    )
    for ev in w.stream(func, timeout_seconds=timeout, **kwargs):
        out.append((ev["type"], ev["object"]))
        if len(out) >= stop_after:
            w.stop()
    return out


def test_label_and_field_selectors(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespace({"metadata": {"name": "other"}})
    make_cms(
        v1,
        [
            ("default", "a", {"app": "web", "tier": "fe"}),
            ("default", "b", {"app": "web", "tier": "be"}),
            ("default", "c", {"app": "db"}),
            ("other", "d", {"app": "web"}),
        ],
    )
    got = v1.list_namespaced_config_map("default", label_selector="app=web,tier in (fe, be)")
    assert names(got) == ["a", "b"]
    assert names(v1.list_namespaced_config_map("default", label_selector="tier!=fe")) == [
        "b",
        "c",
    ]
    assert names(v1.list_namespaced_config_map("default", label_selector="!tier")) == ["c"]
    assert names(v1.list_namespaced_config_map("default", label_selector="tier notin (be)")) == [
        "a",
        "c",
    ]
    everywhere = v1.list_config_map_for_all_namespaces(label_selector="app=web")
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [
        ("default", "a"),
        ("default", "b"),
        ("other", "d"),
    ]
    by_name = v1.list_config_map_for_all_namespaces(field_selector="metadata.name=d")
    assert names(by_name) == ["d"]
    not_default = v1.list_config_map_for_all_namespaces(
        field_selector="metadata.namespace!=default"
    )
    assert names(not_default) == ["d"]
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map("default", field_selector="data.x=1")
    assert ei.value.status == 400


def test_pod_and_event_field_selectors(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    for name, node in (("p1", "n1"), ("p2", "n2")):
        v1.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    assert names(v1.list_namespaced_pod("default", field_selector="spec.nodeName=n2")) == ["p2"]
    assert names(v1.list_namespaced_pod("default", field_selector="status.phase=Pending")) == [
        "p1",
        "p2",
    ]
    pod = v1.read_namespaced_pod("p1", "default")
    v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "p1.1"},
            "involvedObject": {
                "kind": "Pod",
                "name": "p1",
                "namespace": "default",
                "uid": pod.metadata.uid,
            },
            "reason": "Started",
            "message": "hello",
            "type": "Normal",
        },
    )
    sel = (
        "involvedObject.name=p1,involvedObject.namespace=default,"
        f"involvedObject.uid={pod.metadata.uid}"
    )
    assert names(v1.list_namespaced_event("default", field_selector=sel)) == ["p1.1"]


def test_paging_with_continue(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", f"cm-{i:02d}", {}) for i in range(7)])
    page1 = v1.list_namespaced_config_map("default", limit=3)
    assert names(page1) == ["cm-00", "cm-01", "cm-02"]
    assert page1.metadata.remaining_item_count == 4
    token = page1.metadata._continue
    assert token
    # a write between pages does not show up: the snapshot is fixed (PAGE-1)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm-00a"}})
    v1.delete_namespaced_config_map("cm-05", "default")
    page2 = v1.list_namespaced_config_map("default", limit=3, _continue=token)
    assert names(page2) == ["cm-03", "cm-04", "cm-05"]
    assert page2.metadata.resource_version == page1.metadata.resource_version
    page3 = v1.list_namespaced_config_map("default", limit=3, _continue=page2.metadata._continue)
    assert names(page3) == ["cm-06"]
    assert not page3.metadata._continue
    # selector-filtered paging
    page = v1.list_namespaced_config_map("default", limit=2, field_selector="metadata.name!=cm-01")
    assert names(page) == ["cm-00", "cm-00a"]
    # compaction makes the token expire (PAGE-2)
    apiserver.compact()
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map("default", limit=3, _continue=token)
    body = status_body(ei.value)
    assert ei.value.status == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")


def test_list_is_ordered_by_namespace_then_name(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespace({"metadata": {"name": "aaa"}})
    make_cms(v1, [("default", "z", {}), ("aaa", "y", {}), ("default", "a", {}), ("aaa", "b", {})])
    got = v1.list_config_map_for_all_namespaces()
    keys = [(i.metadata.namespace, i.metadata.name) for i in got.items]
    assert keys == sorted(keys)
    assert got.metadata.resource_version


def test_watch_from_now_sends_synthetic_added(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", "one", {}), ("default", "two", {})])
    events = collect(v1, 2, namespace="default")
    assert [(t, o.metadata.name) for t, o in events] == [("ADDED", "one"), ("ADDED", "two")]
    events = collect(v1, 2, namespace="default", resource_version="0")
    assert [t for t, _ in events] == ["ADDED", "ADDED"]


def test_watch_from_exact_revision(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", "one", {})])
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.patch_namespaced_config_map("one", "default", {"data": {"k": "v"}})
    v1.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    v1.delete_namespaced_config_map("one", "default")
    events = collect(v1, 3, namespace="default", resource_version=rv)
    assert [(t, o.metadata.name) for t, o in events] == [
        ("MODIFIED", "one"),
        ("ADDED", "two"),
        ("DELETED", "one"),
    ]
    revs = [int(o.metadata.resource_version) for _, o in events]
    assert revs == sorted(revs) and revs[0] > int(rv)
    assert events[2][1].data == {"k": "v"}  # DELETED carries the last state


def test_watch_bookmarks_only_when_asked(apiserver: APIServer) -> None:
    apiserver.bookmark_interval = 0.2
    base = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1"
    lines = _watch_lines(apiserver, base + "&allowWatchBookmarks=true&resourceVersion=1")
    kinds = [ev["type"] for ev in lines]
    assert kinds and set(kinds) == {"BOOKMARK"}
    bookmark = lines[0]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) == apiserver.store.rev
    assert _watch_lines(apiserver, base + "&resourceVersion=1") == []


def _watch_lines(apiserver: APIServer, path: str) -> list[dict[str, Any]]:
    """Raw watch until the server ends the stream; asserts a clean chunked end."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert resp.getheader("Content-Type") == "application/json"
        data = resp.read()  # returns only after the terminating chunk
        return [json.loads(line) for line in data.splitlines() if line]
    finally:
        conn.close()


def test_watch_timeout_ends_stream_cleanly(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    w = new_watch()
    seen = list(w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=1))
    assert seen == []  # the stream ended by itself: the server honoured timeoutSeconds
    assert apiserver.watch_count == 0


def test_watch_expired_history_sends_410_event(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", "one", {})])
    old = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    compacted = apiserver.compact()
    lines = _watch_lines(
        apiserver, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old}"
    )
    assert lines == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old} ({compacted})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    with pytest.raises(client.ApiException) as ei:
        collect(v1, 1, namespace="default", resource_version=old)
    assert ei.value.status == 410


def test_watch_from_future_revision_times_out(apiserver: APIServer) -> None:
    future = apiserver.store.rev + 50
    code, _, body = raw(
        apiserver,
        "GET",
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={future}",
    )
    assert code == 504 and body["reason"] == "Timeout"
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_watch_selector_enter_and_leave(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", "x", {"app": "a"})])
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"app": "b"}}})
    v1.patch_namespaced_config_map("x", "default", {"data": {"k": "1"}})
    v1.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"app": "a"}}})
    v1.patch_namespaced_config_map("x", "default", {"data": {"k": "2"}})
    events = collect(v1, 3, namespace="default", resource_version=rv, label_selector="app=a")
    assert [t for t, _ in events] == ["DELETED", "ADDED", "MODIFIED"]


def test_watch_all_namespaces_and_deprecated_prefix(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespace({"metadata": {"name": "w2"}})
    rv = v1.list_config_map_for_all_namespaces().metadata.resource_version
    make_cms(v1, [("default", "a", {}), ("w2", "b", {})])
    events = collect(v1, 2, resource_version=rv)
    assert [(o.metadata.namespace, o.metadata.name) for _, o in events] == [
        ("default", "a"),
        ("w2", "b"),
    ]
    lines = _watch_lines(
        apiserver, f"/api/v1/watch/namespaces/w2/configmaps?resourceVersion={rv}&timeoutSeconds=1"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "b")]
    lines = _watch_lines(
        apiserver,
        f"/api/v1/watch/namespaces/default/configmaps/a?resourceVersion={rv}&timeoutSeconds=1",
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "a")]


def test_send_initial_events(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    make_cms(v1, [("default", "a", {})])
    lines = _watch_lines(
        apiserver,
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    assert lines[0]["type"] == "ADDED" and lines[0]["object"]["metadata"]["name"] == "a"
    assert lines[1]["type"] == "BOOKMARK"
    assert lines[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    code, _, body = raw(
        apiserver, "GET", "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true"
    )
    assert code == 422 and body["details"]["kind"] == "ListOptions"


def test_closed_watch_frees_watcher(apiserver: APIServer) -> None:
    import socket

    sock = socket.create_connection(("127.0.0.1", apiserver.port))
    sock.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    assert apiserver.watch_count == 1
    sock.close()
    deadline = time.monotonic() + 5
    while apiserver.watch_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert apiserver.watch_count == 0
    assert apiserver.store.watcher_count() == 0


def test_concurrent_writers_and_watchers_see_every_event_in_order(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    start_rv = v1.list_namespaced_config_map("default").metadata.resource_version
    writers, per_writer, watchers = 4, 25, 3
    total = writers * per_writer * 2  # one create and one update each
    results: list[list[tuple[str, str, int]]] = [[] for _ in range(watchers)]

    def watcher(i: int) -> None:
        w = new_watch()
        cfg = client.Configuration()
        cfg.host = apiserver.url
        with client.ApiClient(cfg) as api:
            api_v1 = core(api)
            for ev in w.stream(
                api_v1.list_namespaced_config_map,
                "default",
                resource_version=start_rv,
                timeout_seconds=30,
            ):
                o = ev["object"]
                results[i].append((ev["type"], o.metadata.name, int(o.metadata.resource_version)))
                if len(results[i]) >= total:
                    w.stop()

    def writer(i: int) -> None:
        cfg = client.Configuration()
        cfg.host = apiserver.url
        with client.ApiClient(cfg) as api:
            api_v1 = core(api)
            for j in range(per_writer):
                name = f"w{i}-{j}"
                api_v1.create_namespaced_config_map("default", {"metadata": {"name": name}})
                api_v1.patch_namespaced_config_map(name, "default", {"data": {"j": str(j)}})

    threads = [threading.Thread(target=watcher, args=(i,)) for i in range(watchers)]
    for t in threads:
        t.start()
    wthreads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in wthreads:
        t.start()
    for t in wthreads + threads:
        t.join(timeout=60)
    expected = sorted(
        (ev.rev, ev.type)
        for ev in apiserver.store._history
        if ev.bucket == "/configmaps" and ev.rev > int(start_rv)
    )
    assert len(expected) == total
    for seen in results:
        revs = [r for _, _, r in seen]
        assert revs == sorted(revs) and len(set(revs)) == len(revs)
        assert [(r, t) for t, _, r in seen] == expected
