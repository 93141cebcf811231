"""The ConfigMapMirror example operator against the embedded API server.

Once in-process through ``main()`` (stopped with SIGTERM like a pod), once as a real
``python -m examples.configmap_mirror`` subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from opkit import errors
from opkit.client import Client, ResourceClient

REPO = Path(__file__).resolve().parents[2]
# ``examples`` is not installed; without the repository root on sys.path ``import examples``
# would find this test directory (tests/examples) as a namespace package instead.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from examples.configmap_mirror import (  # noqa: E402
    ENABLED_LABEL,
    MIRROR_LABEL,
    SOURCE_ANNOTATION,
    TARGET_LABEL,
    main,
)

QUIET = ["--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-level=warning"]


class Cluster:
    def __init__(self, client: Client) -> None:
        self.namespaces = client.resource("v1", "Namespace")
        self.configmaps = client.resource("v1", "ConfigMap")
        self.events: ResourceClient = client.resource("v1", "Event")

    def namespace(self, name: str, target: bool) -> None:
        labels = {TARGET_LABEL: "true"} if target else {}
        self.namespaces.create({"metadata": {"name": name, "labels": labels}})

    def mirror(self, namespace: str, name: str = "settings") -> dict[str, Any] | None:
        try:
            return self.configmaps.get(name, namespace)
        except errors.NotFound:
            return None

    def mirrored_in(self, name: str = "settings") -> set[str]:
        items = self.configmaps.list(label_selector=f"{MIRROR_LABEL}=true")["items"]
        return {i["metadata"]["namespace"] for i in items if i["metadata"]["name"] == name}

    def reasons(self, namespace: str = "src") -> set[str]:
        return {e["reason"] for e in self.events.list(namespace)["items"]}


def source(data: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "settings", "namespace": "src", "labels": {ENABLED_LABEL: "true"}},
        "data": data,
    }


def exercise(k: Cluster) -> None:
    """The behaviour every run checks: convergence, changes, conflicts, cleanup."""
    wait_for(lambda: k.mirrored_in() == {"t1", "t2"}, "mirrors in the target namespaces")
    m = k.mirror("t1")
    assert m is not None
    assert m["data"] == {"level": "info"}
    assert m["metadata"]["annotations"][SOURCE_ANNOTATION] == "src/settings"
    assert k.mirror("plain") is None
    wait_for(lambda: "Mirrored" in k.reasons(), "a Mirrored event on the source")

    # The source changes: every mirror follows.
    k.configmaps.patch("settings", {"data": {"level": "debug"}}, "src")
    wait_for(
        lambda: all((k.mirror(ns) or {}).get("data") == {"level": "debug"} for ns in ("t1", "t2")),
        "mirrors updated",
    )
    # A namespace gains the label; another loses it.
    k.namespace("t3", target=True)
    k.namespaces.patch("t2", {"metadata": {"labels": {TARGET_LABEL: None}}})
    wait_for(lambda: k.mirrored_in() == {"t1", "t3"}, "mirrors follow namespace labels")
    # A mirror edited or deleted by hand is put back.
    k.configmaps.patch("settings", {"data": {"level": "tampered"}}, "t1")
    k.configmaps.delete("settings", "t3")
    wait_for(
        lambda: all((k.mirror(ns) or {}).get("data") == {"level": "debug"} for ns in ("t1", "t3")),
        "mirrors repaired",
    )
    # Someone else's ConfigMap of the same name is left alone (and reported).
    k.namespace("taken", target=False)
    k.configmaps.create({"metadata": {"name": "settings", "namespace": "taken"}, "data": {}})
    k.namespaces.patch("taken", {"metadata": {"labels": {TARGET_LABEL: "true"}}})
    wait_for(lambda: "MirrorConflict" in k.reasons(), "a conflict warning")
    assert (k.mirror("taken") or {}).get("data") == {}
    # The source goes: so do its mirrors.
    k.configmaps.delete("settings", "src")
    wait_for(lambda: k.mirrored_in() == set(), "mirrors removed with their source")
    assert k.mirror("taken") is not None


def seed(k: Cluster) -> None:
    k.namespace("src", target=True)  # its own namespace never gets a copy
    k.namespace("t1", target=True)
    k.namespace("t2", target=True)
    k.namespace("plain", target=False)
    k.configmaps.create(source({"level": "info"}))


def test_in_process_main(client: Client, kubeconfig: str) -> None:
    k = Cluster(client)
    seed(k)
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            exercise(k)
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # main() shuts down and returns 0

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        status = main(["--kubeconfig", kubeconfig, *QUIET])
    finally:
        driver.join(60)
    if failure:
        raise failure[0]
    assert status == 0
    leftovers = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    assert not [n for n in leftovers if n.startswith(("controller-", "informer-", "manager"))]


def test_as_a_subprocess(client: Client, kube_env: dict[str, str]) -> None:
    k = Cluster(client)
    seed(k)
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.configmap_mirror", "--log-format=json", *QUIET],
        cwd=REPO,
        env=kube_env,  # KUBECONFIG comes from the environment
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exercise(k)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    for line in stderr.splitlines():  # warnings and up, one JSON object per line
        assert json.loads(line)["level"] in ("warning", "error")


def test_refuses_a_single_namespace(kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--kubeconfig", kubeconfig, "--namespace", "src", *QUIET])
    assert exc.value.code == 2
    assert "cannot watch only one" in capsys.readouterr().err
