"""kubectl against the embedded server: deletion, cascading, waiting and watching.

These exercise the in-server garbage collector and namespace controller (CTRL-1/2) and
the watch paths kubectl uses (`delete` waits, `wait --for=delete`, `get -w`).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import parse_qs

import pytest
import yaml
from _server_fixtures import core
from test_kubectl_crd import GADGET_CRD, gadget

from opkit.testing import APIServer
from opkit.testing._pytest_plugin import Kubectl

pytestmark = pytest.mark.e2e

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
        },
    },
}


def apply(kubectl: Kubectl, *docs: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(list(docs)))


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until ``check()`` holds; for state another thread or process must reach."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def exists(kubectl: Kubectl, *what: str) -> bool:
    proc = kubectl("get", *what, "-o", "name", check=False)
    if proc.returncode == 0:
        return True
    assert "NotFound" in proc.stderr, proc.stderr
    return False


def make_children(kubectl: Kubectl, owner_kind: str, owner_name: str, n: int = 2) -> None:
    """ConfigMaps owned by the given owner (blockOwnerDeletion so foreground waits)."""
    out = kubectl("get", owner_kind, owner_name, "-o", "jsonpath={.metadata.uid}").stdout
    api_version = {"deployment": "apps/v1", "configmap": "v1"}[owner_kind]
    kind = {"deployment": "Deployment", "configmap": "ConfigMap"}[owner_kind]
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"child{i}",
                "ownerReferences": [
                    {
                        "apiVersion": api_version,
                        "kind": kind,
                        "name": owner_name,
                        "uid": out,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {"i": str(i)},
        }
        for i in range(n)
    ]
    apply(kubectl, *docs)


def test_delete_background_cascade_is_the_default(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, DEPLOYMENT)
    make_children(kubectl, "deployment", "web")
    out = kubectl("delete", "deployment", "web").stdout
    assert out.strip() == 'deployment.apps "web" deleted'
    assert apiserver.wait_idle(10)
    assert not exists(kubectl, "cm", "child0")
    assert not exists(kubectl, "cm", "child1")


def test_delete_cascade_orphan_keeps_children(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, DEPLOYMENT)
    make_children(kubectl, "deployment", "web")
    kubectl("delete", "deployment", "web", "--cascade=orphan")
    assert apiserver.wait_idle(10)
    assert not exists(kubectl, "deployment", "web")
    for name in ("child0", "child1"):
        refs = kubectl("get", "cm", name, "-o", "jsonpath={.metadata.ownerReferences}").stdout
        assert refs == ""


def test_delete_cascade_foreground_waits_for_children(
    kubectl: Kubectl, apiserver: APIServer
) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "parent"}})
    make_children(kubectl, "configmap", "parent", n=3)
    out = kubectl("delete", "cm", "parent", "--cascade=foreground", timeout=30).stdout
    assert out.strip() == 'configmap "parent" deleted'
    # kubectl returned only once the owner was gone, which needs the children gone first
    names = kubectl("get", "cm", "-o", "name").stdout.split()
    assert not any(n in names for n in ("configmap/parent", "configmap/child0"))
    assert apiserver.wait_idle(10)
    assert kubectl("get", "cm", "-o", "name").stdout == ""


def _remove_finalizers_when_watched(
    apiserver: APIServer, k8s_api: Any, name: str, errors: list[BaseException]
) -> threading.Thread:
    """Once kubectl is watching, drop the finalizers (another client's job, DEL-3)."""

    def run() -> None:
        try:
            eventually(lambda: apiserver.watch_count >= 1, "kubectl to start watching")
            core(k8s_api).patch_namespaced_config_map(
                name, "default", {"metadata": {"finalizers": None}}
            )
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run, name="finalizer-remover")
    t.start()
    return t


def test_wait_for_delete(kubectl: Kubectl, apiserver: APIServer, k8s_api: Any) -> None:
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        },
    )
    out = kubectl("delete", "cm", "held", "--wait=false").stdout
    assert out.strip() == 'configmap "held" deleted'
    stamp = kubectl("get", "cm", "held", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout
    assert stamp.endswith("Z")
    errors: list[BaseException] = []
    remover = _remove_finalizers_when_watched(apiserver, k8s_api, "held", errors)
    try:
        waited = kubectl("wait", "--for=delete", "cm/held", "--timeout=30s", timeout=40)
    finally:
        remover.join(timeout=15)
    assert not errors
    assert waited.stdout.strip() == "configmap/held condition met"
    assert not exists(kubectl, "cm", "held")


def test_delete_waits_for_finalizers(kubectl: Kubectl, apiserver: APIServer, k8s_api: Any) -> None:
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cf", "finalizers": ["example.com/hold"]},
        },
    )
    errors: list[BaseException] = []
    remover = _remove_finalizers_when_watched(apiserver, k8s_api, "cf", errors)
    try:
        out = kubectl("delete", "cm", "cf", "--timeout=30s", timeout=40).stdout
    finally:
        remover.join(timeout=15)
    assert not errors
    assert out.strip() == 'configmap "cf" deleted'
    assert not exists(kubectl, "cm", "cf")


def test_delete_namespace_goes_away(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}})
    apply(kubectl, GADGET_CRD)
    kubectl("wait", "--for=condition=established", f"crd/{GADGET_CRD['metadata']['name']}")
    g = gadget("g1", replicas=1)
    apply(kubectl, {**g, "metadata": {**g["metadata"], "namespace": "scratch"}})
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "scratch"},
        },
        {**DEPLOYMENT, "metadata": {"name": "web", "namespace": "scratch"}},
    )
    status = kubectl("get", "ns", "scratch", "-o", "jsonpath={.status.phase}").stdout
    assert status == "Active"
    out = kubectl("delete", "ns", "scratch", timeout=30).stdout
    assert out.strip() == 'namespace "scratch" deleted'
    assert not exists(kubectl, "ns", "scratch")
    # everything in it went, custom resources included (NS-3)
    assert kubectl("get", "all,cm,gadgets", "-n", "scratch", "-o", "name").stdout == ""
    refused = kubectl("delete", "ns", "default", check=False)
    assert refused.returncode == 1 and "this namespace may not be deleted" in refused.stderr


class _Lines:
    """Reads a process's stdout on a thread so the test can wait with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._t = threading.Thread(target=self._pump, args=(stream,), name="kubectl-reader")
        self._t.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def until(self, match: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line; got {self.seen}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"stream ended; got {self.seen}")
            self.seen.append(line)
            if match(line):
                return line

    def join(self) -> None:
        self._t.join(timeout=10)


def _popen(kubectl: Kubectl, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [kubectl.binary, *args],
        env=kubectl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def _watching(kubectl: Kubectl, *args: str) -> Iterator[tuple[subprocess.Popen[str], _Lines]]:
    proc = _popen(kubectl, *args)
    lines = _Lines(proc.stdout)  # type: ignore[arg-type]
    try:
        yield proc, lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        lines.join()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def test_get_watch_sees_changes(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}})
    with _watching(kubectl, "get", "cm", "-w", "--output-watch-events") as (proc, lines):
        header = lines.until(lambda s: s.startswith("EVENT"))
        assert header.split() == ["EVENT", "NAME", "DATA", "AGE"]
        first = lines.until(lambda s: "old" in s)
        assert first.split()[:3] == ["ADDED", "old", "0"]
        eventually(lambda: apiserver.watch_count >= 1, "kubectl get -w to start watching")
        apply(
            kubectl,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "fresh"},
                "data": {"a": "b"},
            },
        )
        added = lines.until(lambda s: "fresh" in s)
        assert added.split()[:3] == ["ADDED", "fresh", "1"]
        kubectl("patch", "cm", "fresh", "--type=merge", "-p", '{"data":{"c":"d"}}')
        modified = lines.until(lambda s: "fresh" in s)
        assert modified.split()[:3] == ["MODIFIED", "fresh", "2"]
        kubectl("delete", "cm", "fresh")
        deleted = lines.until(lambda s: "fresh" in s)
        assert deleted.split()[:2] == ["DELETED", "fresh"]
        assert proc.poll() is None  # still watching


def test_get_watch_single_object(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "solo"}})
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}})
    apiserver.clear_request_log()
    with _watching(kubectl, "get", "cm", "solo", "-w", "-o", "name") as (_proc, lines):
        assert lines.until(lambda s: s != "") == "configmap/solo"
        eventually(lambda: apiserver.watch_count >= 1, "kubectl get -w to start watching")
        kubectl("label", "cm", "other", "x=y")
        kubectl("label", "cm", "solo", "x=y")
        lines.until(lambda s: s == "configmap/solo")
    # a watch is logged when its stream ends
    eventually(lambda: any(_is_watch(r[2]) for r in apiserver.request_log), "the watch log")
    watches = [parse_qs(r[2]) for r in apiserver.request_log if _is_watch(r[2])]
    # one object is watched through a field selector on the collection (SEL-2, SEL-3)
    assert [w["fieldSelector"] for w in watches] == [["metadata.name=solo"]]
    assert "other" not in " ".join(lines.seen)


def _is_watch(query: str) -> bool:
    return parse_qs(query).get("watch") == ["true"]


def test_get_watch_custom_resources_prints_their_columns(
    kubectl: Kubectl, apiserver: APIServer
) -> None:
    apply(kubectl, GADGET_CRD)
    kubectl("wait", "--for=condition=established", f"crd/{GADGET_CRD['metadata']['name']}")
    apply(kubectl, gadget("g1", replicas=2, color="red"))
    with _watching(kubectl, "get", "gadgets", "-w") as (_proc, lines):
        header = lines.until(lambda s: s.startswith("NAME"))
        assert header.split() == ["NAME", "REPLICAS", "COLOR", "AGE"]
        assert lines.until(lambda s: s.startswith("g1")).split()[:3] == ["g1", "2", "red"]
        eventually(lambda: apiserver.watch_count >= 1, "kubectl get -w to start watching")
        kubectl("patch", "gadget", "g1", "--type=merge", "-p", '{"spec":{"color":"blue"}}')
        # watch events are Tables too, rendered with the printer columns (WATCH-9, CRD-10)
        assert lines.until(lambda s: s.startswith("g1")).split()[:3] == ["g1", "2", "blue"]
        kubectl("scale", "gadget", "g1", "--replicas=7")
        assert lines.until(lambda s: s.startswith("g1")).split()[:3] == ["g1", "7", "blue"]


def test_graceful_pod_deletion_and_force(kubectl: Kubectl) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1"}]},
    }
    apply(kubectl, pod)
    # a scheduled pod is only marked: something on the node has to finish it (DEL-4)
    kubectl("delete", "pod", "bound", "--wait=false")
    meta = json.loads(kubectl("get", "pod", "bound", "-o", "json").stdout)["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30 and meta["deletionTimestamp"].endswith("Z")
    status = kubectl("get", "pod", "bound").stdout.splitlines()[1].split()[2]
    assert status == "Terminating"
    forced = kubectl("delete", "pod", "bound", "--force", "--grace-period=0")
    assert forced.stdout.strip() == 'pod "bound" force deleted'
    assert "Immediate deletion does not wait" in forced.stderr
    assert not exists(kubectl, "pod", "bound")
