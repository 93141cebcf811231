"""Embedded API server: fault injection, test hooks, CLI entry point and kubectl smoke."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from _server_fixtures import core, new_watch, raw, status_body
from kubernetes import client

from opkit.testing import APIServer, Kubectl


def test_fail_with_429_and_retry_after(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    apiserver.faults.fail(verb="list", resource="configmaps", times=2, code=429, retry_after=3)
    for _ in range(2):
        code, headers, body = raw(apiserver, "GET", "/api/v1/namespaces/default/configmaps")
        assert code == 429 and headers["retry-after"] == "3"
        assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
    v1 = core(k8s_api)
    assert v1.list_namespaced_config_map("default").items == []
    # the official client (urllib3) honours Retry-After on 429 by itself
    apiserver.faults.fail(verb="get", resource="namespaces", code=429, retry_after=1)
    assert v1.read_namespace("default").metadata.name == "default"
    tries = [r for r in apiserver.request_log if r[1] == "/api/v1/namespaces/default"]
    assert [status for *_, status in tries] == [429, 200]
    # other verbs and resources were never affected
    apiserver.faults.fail(verb="create", resource="secrets", code=500)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "ok"}})
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    assert ei.value.status == 500 and status_body(ei.value)["reason"] == "InternalError"
    v1.create_namespaced_secret("default", {"metadata": {"name": "s"}})


def test_fail_any_code_and_subresource(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    apiserver.faults.fail(resource="pods/status", code=503, message="try later", retry_after=1)
    v1.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    with pytest.raises(client.ApiException) as ei:
        v1.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    body = status_body(ei.value)
    assert ei.value.status == 503 and body["message"] == "try later"
    headers = ei.value.headers
    assert headers is not None and headers["Retry-After"] == "1"
    assert v1.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})


def test_delay_requests(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    apiserver.faults.delay(0.3, verb="get")
    started = time.monotonic()
    v1.read_namespace("default")
    assert time.monotonic() - started >= 0.3
    apiserver.faults.clear()


def test_drop_watches(apiserver: APIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1")
    resp = conn.getresponse()
    assert resp.status == 200
    deadline = time.monotonic() + 5
    while apiserver.watch_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.faults.drop_watches("configmaps") == 1
    with pytest.raises(http.client.IncompleteRead):
        resp.read()  # the stream ends without its terminating chunk
    conn.close()
    deadline = time.monotonic() + 5
    while apiserver.watch_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.watch_count == 0


def test_stall_and_unstall_watches(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    apiserver.bookmark_interval = 0.1
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    apiserver.faults.stall_watches("configmaps")
    received: list[tuple[float, str]] = []

    def run() -> None:
        w = new_watch()
        for ev in w.stream(
            v1.list_namespaced_config_map,
            "default",
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=5,
        ):
            received.append((time.monotonic(), ev["type"]))
            if ev["type"] == "ADDED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    v1.create_namespaced_config_map("default", {"metadata": {"name": "late"}})
    time.sleep(0.5)
    assert received == []  # no events, no bookmarks while stalled
    unstalled_at = time.monotonic()
    apiserver.faults.unstall_watches()
    t.join(timeout=10)
    assert "ADDED" in [kind for _, kind in received]
    assert all(at >= unstalled_at for at, _ in received)


def test_compact_hook_and_request_log(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    before = apiserver.write_count
    v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    v1.read_namespaced_config_map("a", "default")
    assert apiserver.write_count == before + 1
    log = apiserver.request_log
    assert ("POST", "/api/v1/namespaces/default/configmaps", "", 201) in log
    assert log[-1] == ("GET", "/api/v1/namespaces/default/configmaps/a", "", 200)
    rev = apiserver.faults.compact()
    assert rev == apiserver.store.rev
    code, _, body = raw(
        apiserver, "GET", "/api/v1/namespaces/default/configmaps?limit=1&resourceVersion=1"
    )
    assert code == 410 and body["reason"] == "Expired"


def test_table_output_for_get_list_and_watch(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    core(k8s_api).create_namespaced_config_map("default", {"metadata": {"name": "t"}})
    accept = {
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;"
        "v=v1beta1;g=meta.k8s.io,application/json"
    }
    code, _, table = raw(
        apiserver, "GET", "/api/v1/namespaces/default/configmaps?limit=500", headers=accept
    )
    assert code == 200 and table["kind"] == "Table"
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert [r["cells"][0] for r in table["rows"]] == ["t"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    conn.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
        headers=accept,
    )
    lines = [json.loads(x) for x in conn.getresponse().read().splitlines() if x]
    conn.close()
    assert lines[0]["type"] == "ADDED" and lines[0]["object"]["kind"] == "Table"
    assert lines[0]["object"]["columnDefinitions"]


def test_discovery_documents(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    code, _, apis = raw(apiserver, "GET", "/api")
    assert apis["kind"] == "APIVersions" and apis["versions"] == ["v1"]
    assert apis["serverAddressByClientCIDRs"][0]["serverAddress"] == f"127.0.0.1:{apiserver.port}"
    code, _, groups = raw(apiserver, "GET", "/apis")
    names = [g["name"] for g in groups["groups"]]
    assert {"apps", "coordination.k8s.io", "apiextensions.k8s.io"} <= set(names)
    code, _, res = raw(apiserver, "GET", "/api/v1")
    pods = next(r for r in res["resources"] if r["name"] == "pods")
    assert "all" in pods["categories"]
    code, headers, agg = raw(
        apiserver,
        "GET",
        "/apis",
        headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"},
    )
    assert code == 200 and agg["kind"] == "APIGroupDiscoveryList"
    assert "as=APIGroupDiscoveryList" in headers["content-type"]
    code, _, index = raw(apiserver, "GET", "/openapi/v3")
    assert "api/v1" in index["paths"] and "apis/apps/v1" in index["paths"]
    # kubectl validates `kind: List` against v2: an empty document lets items through (OAPI-4)
    code, _, v2 = raw(apiserver, "GET", "/openapi/v2")
    assert code == 200 and v2["swagger"] == "2.0" and v2["definitions"] == {}


def test_server_stop_closes_everything() -> None:
    before = set(threading.enumerate())
    server = APIServer()
    server.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=1")
    resp = conn.getresponse()
    assert resp.status == 200
    keepalive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    keepalive.request("GET", "/version")
    keepalive.getresponse().read()
    server.stop()
    conn.close()
    keepalive.close()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_cli_entry_point(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opkit.testing", "apiserver", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cfg = yaml.safe_load(kubeconfig.read_text())
        server = cfg["clusters"][0]["cluster"]["server"]
        token = cfg["users"][0]["user"]["token"]
        assert server.startswith("http://127.0.0.1:") and token
        conf = client.Configuration()
        conf.host = server
        conf.api_key = {"authorization": token}
        conf.api_key_prefix = {"authorization": "Bearer"}
        with client.ApiClient(conf) as api:
            assert core(api).list_namespace().items[0].metadata.name == "default"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.e2e
def test_kubectl_smoke(kubectl: Kubectl, kube_env: dict[str, str], tmp_path: Path) -> None:
    assert os.path.isdir(kube_env["HOME"])
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["minor"] == "32"
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\n  labels:\n    a: b\n"
        "data:\n  k: v\n"
    )
    kubectl("apply", "-f", str(manifest))
    kubectl("label", "configmap", "smoke", "c=d")
    got: dict[str, Any] = json.loads(kubectl("get", "cm", "smoke", "-o", "json").stdout)
    assert got["metadata"]["labels"] == {"a": "b", "c": "d"}
    names = kubectl("get", "cm", "-l", "a=b", "-o", "name").stdout.split()
    assert names == ["configmap/smoke"]
    kubectl("delete", "cm", "smoke", "--wait=true")
    failed = kubectl("get", "cm", "smoke", check=False)
    assert failed.returncode != 0 and "not found" in failed.stderr


def test_cli_start_up_errors_are_one_line(tmp_path: Path) -> None:
    """A kubeconfig path that cannot be written, or a port in use: exit 1, one line, no trace."""
    blocked = tmp_path / "dir"
    (blocked / "inner").mkdir(parents=True)
    cmd = [sys.executable, "-m", "opkit.testing", "apiserver", "--kubeconfig", str(blocked)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"opkit apiserver: cannot write kubeconfig {blocked}: Is a directory"
    )

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kc = str(tmp_path / "kc")
        cmd = [sys.executable, "-m", "opkit.testing", "apiserver", "--kubeconfig", kc]
        done = subprocess.run(
            [*cmd, "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"opkit apiserver: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert not (tmp_path / "kc").exists()
