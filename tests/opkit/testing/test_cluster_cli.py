"""``python -m opkit.testing cluster``: a foreground process whose children never outlive it
(SIGTERM or SIGKILL), whose leftovers are cleaned by the next start, and which refuses pods
with one line when pod networking is unavailable (not root).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opkit.testing._pytest_plugin import Kubectl, make_kube_env
from opkit.testing.cluster import Cluster

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="pods run as processes only as root")

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper", "namespace": "default"},
    "spec": {
        "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}],
        "terminationGracePeriodSeconds": 2,
    },
}


def _descendants(pid: int) -> set[int]:
    """Every descendant (children of any thread: the kubelet forks from a spawner thread)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        children: list[str] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    children += (task / "children").read_text().split()
        out.update(int(c) for c in children)
        todo.extend(int(c) for c in children)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            alive.add(pid)
    return alive


def _wait_gone(pids: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Kubectl]]:
    """The CLI running in the foreground, once its kubeconfig exists."""
    kubeconfig = tmp_path / "kubeconfig"
    with open(tmp_path / "stderr", "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opkit.testing", "cluster", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            assert proc.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline, "the cluster did not write its kubeconfig"
            time.sleep(0.05)
        yield proc, Kubectl(make_kube_env(kubeconfig, tmp_path / "home"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _run_pod(kubectl: Kubectl, cli_pid: int) -> set[int]:
    """Start the pod; returns the CLI's descendants once ``sleep`` runs among them."""
    kubectl("apply", "-f", "-", input=json.dumps(POD))
    kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=60s")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = _alive(_descendants(cli_pid))
        for pid in children:
            with contextlib.suppress(OSError):
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                if argv0.endswith(b"/sleep"):
                    return children
        time.sleep(0.02)
    raise AssertionError("the pod's program never ran")


@pytest.mark.e2e
@needs_root
def test_sigterm_stops_the_cluster_and_every_process_it_started(
    cli: tuple[subprocess.Popen[str], Kubectl],
) -> None:
    proc, kubectl = cli
    children = _run_pod(kubectl, proc.pid)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("opkit cluster serving at http://127.")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert _wait_gone(children, timeout=1) == set()


@pytest.mark.e2e
@needs_root
def test_after_sigkill_nothing_survives_and_the_next_start_cleans_up(
    cli: tuple[subprocess.Popen[str], Kubectl],
) -> None:
    proc, kubectl = cli
    children = _run_pod(kubectl, proc.pid)
    cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in children]

    def option(name: bytes) -> str:
        return next(a.decode() for c in cmdlines for i, a in enumerate(c) if i and c[i - 1] == name)

    data_dir = Path(option(b"--hosts")).parents[4]  # <data>/nodes/<node>/pods/<uid>/hosts
    netns = Path("/run/netns") / option(b"--netns")
    assert data_dir.name.startswith("opkit-cluster-") and netns.exists()
    os.killpg(proc.pid, signal.SIGKILL)  # the whole CLI process group, as a crashed test run
    proc.wait()
    assert _wait_gone(children) == set()  # parent-death signals reach every pod
    assert data_dir.exists() and netns.exists()  # a crash leaves its directory and netns...
    with Cluster():
        assert not data_dir.exists()  # ... which the next start removes
        assert not netns.exists()


def test_without_root_pods_are_refused_in_one_line_and_nothing_is_touched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    hosts_before = Path("/etc/hosts").read_bytes()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    with Cluster() as cluster:
        assert cluster.refused is not None
        assert "needs root" in cluster.refused and "\n" not in cluster.refused
        assert cluster.network is None and cluster.url.startswith("http://127.0.0.1:")
        assert cluster.client is not None
        pods = cluster.client.resource("v1", "Pod")
        pods.create(POD, "default")

        def refused() -> dict[str, object] | None:
            pod = pods.get("sleeper", "default")
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            return pod if statuses else None

        pod = cluster.wait_for(refused, 30)
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting == {"reason": "ContainerCreating", "message": cluster.refused}
        assert pod["status"]["phase"] == "Pending"
        assert not cluster.pod_pids("default", "sleeper")

        def event() -> list[str]:
            items = cluster.client.resource("v1", "Event").list("default")["items"]  # type: ignore[union-attr]
            return [e["message"] for e in items if e.get("reason") == "FailedCreatePodSandBox"]

        assert cluster.wait_for(event, 10) == [cluster.refused]
    assert Path("/etc/hosts").read_bytes() == hosts_before
    netns_after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert netns_after == netns_before
