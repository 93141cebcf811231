"""The local kubelet with real processes: env, volumes, init containers, probes, restarts,
back-off, image and configuration errors, graceful deletion, logs, in-cluster access, chaos.

Each test gets a fresh cluster (the ``cluster`` fixture). Pods use the ``busybox`` image
(the host's shell tools) and the ``python`` pseudo-image.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opkit.testing._pytest_plugin import Kubectl, make_kube_env
from opkit.testing.cluster import Cluster
from opkit.testing.kubelet._kubelet import _signal_main
from opkit.testing.kubelet._podexec import podexec_argv
from opkit.testing.kubelet._procs import ProcessRegistry, spawn

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="pods run as processes only as root"),
]

Obj = dict[str, Any]
Events = list[tuple[str, str, str]]


def _pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"test": name}},
        "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 5, **spec},
    }


def _sh(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def _create(cluster: Cluster, obj: Obj) -> Obj:
    assert cluster.client is not None
    created: Obj = cluster.client.resource_for_object(obj).create(obj, "default")
    return created


def _get(cluster: Cluster, name: str) -> Obj:
    assert cluster.client is not None
    pod: Obj = cluster.client.resource("v1", "Pod").get(name, "default")
    return pod


def _wait_pod(cluster: Cluster, name: str, check: Callable[[Obj], Any], timeout: float = 30) -> Obj:
    def probe() -> Obj | None:
        pod = _get(cluster, name)
        return pod if check(pod) else None

    try:
        result: Obj = cluster.wait_for(probe, timeout)
    except TimeoutError:
        status = json.dumps(_get(cluster, name).get("status"), indent=1)
        raise AssertionError(f"pod {name} never matched; status: {status}") from None
    return result


def _condition(pod: Obj, kind: str) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return ""


def _ready(pod: Obj) -> bool:
    return _condition(pod, "Ready") == "True"


def _container(pod: Obj, index: int = 0) -> Obj:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    status: Obj = statuses[index]
    return status


def _kubectl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    return Kubectl(make_kube_env(kubeconfig, tmp_path / "home"))


def _events(cluster: Cluster, name: str) -> Events:
    assert cluster.client is not None
    items = cluster.client.resource("v1", "Event").list("default")["items"]
    return [
        (e.get("type"), e.get("reason"), e.get("message"))
        for e in items
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def _wait_events(cluster: Cluster, name: str, check: Callable[[Events], Any]) -> Events:
    """The pod's events once ``check`` accepts them: the kubelet posts events on a thread of
    their own, so they may trail the status that the test saw."""

    def matched() -> Events | None:
        events = _events(cluster, name)
        return events if check(events) else None

    try:
        result: Events = cluster.wait_for(matched, 30)
    except TimeoutError:
        raise AssertionError(f"events of {name}: {_events(cluster, name)}") from None
    return result


def test_a_pod_gets_its_ip_env_volumes_and_runs_init_containers_first(
    cluster: Cluster, tmp_path: Path
) -> None:
    assert cluster.client is not None
    cluster.client.resource("v1", "ConfigMap").create(
        {"metadata": {"name": "cfg"}, "data": {"greeting": "hello", "app.conf": "level=1"}},
        "default",
    )
    cluster.client.resource("v1", "Secret").create(
        {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}, "default"
    )
    env = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
    ]
    mounts = [
        {"name": "work", "mountPath": "/work"},
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "info", "mountPath": "/etc/podinfo"},
    ]
    script = (
        'echo "msg=$MESSAGE pw=$PASSWORD ip=$POD_IP host=$(hostname)"; cat /work/init-marker; '
        "cat /etc/app/app.conf; echo; cat /etc/podinfo/labels; echo; "
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
        "(touch /etc/app/x 2>/dev/null && echo rw) || echo ro; sleep 600"
    )
    pod = _pod(
        "full",
        _sh("main", script, env=env, volumeMounts=mounts),
        initContainers=[
            _sh("first", "echo first > /work/init-marker", volumeMounts=mounts[:1]),
            _sh("second", "grep -q first /work/init-marker", volumeMounts=mounts[:1]),
        ],
        volumes=[
            {"name": "work", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                },
            },
        ],
    )
    _create(cluster, pod)
    live = _wait_pod(cluster, "full", _ready)
    status = live["status"]
    ip = status["podIP"]
    assert ip.startswith("127.") and status["hostIP"] == cluster.network.bridge_ip  # type: ignore[union-attr]
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert all(c["status"] == "True" for c in status["conditions"])
    inits = status["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    main = _container(live)
    assert main["ready"] and main["started"] and main["restartCount"] == 0
    assert "running" in main["state"] and main["containerID"].startswith("opkit://")

    kubectl = _kubectl(cluster, tmp_path)

    def logged() -> str:
        out = kubectl("logs", "full", "-c", "main", check=False).stdout
        return out if "\nro" in out else ""

    lines = cluster.wait_for(logged, 20).splitlines()
    assert lines == [
        f"msg=hello from full pw=s3cret ip={ip} host=full",
        "first",
        "level=1",
        'test="full"',
        "default",
        "ro",
    ]


def test_a_configmap_change_reaches_a_running_pod_without_a_restart(cluster: Cluster) -> None:
    assert cluster.client is not None
    cms = cluster.client.resource("v1", "ConfigMap")
    cms.create({"metadata": {"name": "live"}, "data": {"value": "v1"}}, "default")
    pod = _pod(
        "watcher",
        _sh(
            "main",
            "sleep 600",
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/live"}],
            readinessProbe={
                "exec": {"command": ["grep", "-q", "v2", "/etc/live/value"]},
                "periodSeconds": 1,
            },
        ),
        volumes=[{"name": "cfg", "configMap": {"name": "live"}}],
    )
    _create(cluster, pod)
    _wait_pod(cluster, "watcher", lambda p: _container(p).get("started"))
    assert not _ready(_get(cluster, "watcher"))  # the probe reads v1 inside the pod
    cms.patch("live", {"data": {"value": "v2"}}, "default")
    live = _wait_pod(cluster, "watcher", _ready)  # ... and then v2, through the same mount
    assert _container(live)["restartCount"] == 0


def test_a_crashing_container_backs_off_and_keeps_its_previous_log(
    cluster: Cluster, tmp_path: Path
) -> None:
    _create(cluster, _pod("crasher", _sh("main", "echo run-$RANDOM; exit 3")))
    live = _wait_pod(
        cluster,
        "crasher",
        lambda p: (
            _container(p).get("restartCount", 0) >= 2
            and "waiting" in _container(p).get("state", {})
        ),
    )
    status = _container(live)
    waiting = status["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"].startswith("back-off ")
    assert "restarting failed container=main pod=crasher_default(" in waiting["message"]
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert live["status"]["phase"] == "Running"  # restartPolicy Always
    assert not _ready(live)
    previous = _kubectl(cluster, tmp_path)("logs", "crasher", "--previous").stdout
    assert previous.startswith("run-")
    expected = {"Pulled", "Created", "Started", "BackOff"}
    _wait_events(cluster, "crasher", lambda events: expected <= {r for _t, r, _m in events})


def test_a_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    script = "if [ -f /state/once ]; then sleep 600; fi; touch /state/once; sleep 600"
    pod = _pod(
        "sick",
        _sh(
            "main",
            script,
            volumeMounts=[{"name": "state", "mountPath": "/state"}],
            livenessProbe={
                "exec": {"command": ["test", "-f", "/state/healthy"]},
                "periodSeconds": 1,
                "failureThreshold": 2,
                "terminationGracePeriodSeconds": 1,
            },
        ),
        volumes=[{"name": "state", "emptyDir": {}}],
    )
    _create(cluster, pod)
    live = _wait_pod(cluster, "sick", lambda p: _container(p).get("restartCount") == 1, 40)
    assert "terminated" in _container(live)["lastState"]

    def killed_for_liveness(events: Events) -> bool:
        messages = [m for _t, r, m in events if r in ("Killing", "Unhealthy")]
        return "Container main failed liveness probe, will be restarted" in messages and any(
            m.startswith("Liveness probe failed") for m in messages
        )

    _wait_events(cluster, "sick", killed_for_liveness)


@pytest.mark.parametrize(
    ("policy", "script", "phase", "code"),
    [("Never", "exit 4", "Failed", 4), ("OnFailure", "exit 0", "Succeeded", 0)],
)
def test_restart_policy_decides_the_final_phase(
    cluster: Cluster, policy: str, script: str, phase: str, code: int
) -> None:
    _create(cluster, _pod("once", _sh("main", script), restartPolicy=policy))
    live = _wait_pod(cluster, "once", lambda p: p["status"].get("phase") == phase)
    terminated = _container(live)["state"]["terminated"]
    assert terminated["exitCode"] == code
    assert _container(live)["restartCount"] == 0


def test_an_unknown_image_leaves_the_pod_pending_with_a_clear_reason(cluster: Cluster) -> None:
    _create(cluster, _pod("mystery", {"name": "main", "image": "nginx:1.25"}))
    live = _wait_pod(cluster, "mystery", lambda p: "waiting" in _container(p).get("state", {}))
    waiting = _container(live)["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "no local program stands in for image 'nginx:1.25'" in waiting["message"]
    assert live["status"]["phase"] == "Pending"
    failed = ("Warning", "Failed")
    events = _wait_events(cluster, "mystery", lambda ev: any(e[:2] == failed for e in ev))
    first = next(m for t, r, m in events if (t, r) == failed)
    assert first.startswith("Failed to pull image 'nginx:1.25': ")


def test_a_missing_secret_blocks_the_container_until_it_exists(cluster: Cluster) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    _create(cluster, _pod("patient", _sh("main", "sleep 600", env=env)))
    live = _wait_pod(cluster, "patient", lambda p: "waiting" in _container(p).get("state", {}))
    waiting = _container(live)["state"]["waiting"]
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "later" not found',
    }
    assert cluster.client is not None
    cluster.client.resource("v1", "Secret").create(
        {"metadata": {"name": "later"}, "stringData": {"token": "t"}}, "default"
    )
    _wait_pod(cluster, "patient", _ready)  # the Secret's event wakes the pod up


def test_deletion_sends_sigterm_and_kills_after_the_grace_period(
    cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    volume = [{"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}]
    mount = [{"name": "out", "mountPath": "/out"}]
    # Each tells when its trap is set: a SIGTERM before that ends a shell, Ready or not.
    polite = "trap 'echo term > /out/polite; exit 0' TERM; : > /out/polite.set; "
    polite += "while true; do sleep 0.05; done"
    stubborn = "trap 'echo ignored > /out/stubborn' TERM; : > /out/stubborn.set; "
    stubborn += "while true; do sleep 0.05; done"
    _create(cluster, _pod("polite", _sh("main", polite, volumeMounts=mount), volumes=volume))
    _create(
        cluster,
        _pod(
            "stubborn",
            _sh("main", stubborn, volumeMounts=mount),
            volumes=volume,
            terminationGracePeriodSeconds=1,
        ),
    )
    for name in ("polite", "stubborn"):
        _wait_pod(cluster, name, _ready)
    cluster.wait_for(lambda: (out / "polite.set").exists() and (out / "stubborn.set").exists(), 30)
    assert cluster.client is not None
    pods = cluster.client.resource("v1", "Pod")
    for name in ("polite", "stubborn"):
        pods.delete(name, "default")
    cluster.wait_for(lambda: not pods.list("default")["items"], 30)
    finished = {f["pod"]: f for f in cluster.kubelet().finished}
    assert (out / "polite").read_text() == "term\n"
    assert finished["polite"]["exitCode"] == 0
    assert (out / "stubborn").read_text() == "ignored\n"
    assert finished["stubborn"]["exitCode"] == 137  # SIGKILL once the grace period was over


def test_a_stop_right_after_the_start_reaches_the_program_through_the_pods_init() -> None:
    registry = ProcessRegistry()
    try:
        for _ in range(5):  # the race is with the wrapper's own set-up: try it a few times
            proc = spawn(
                ["sleep", "60"], prefix=podexec_argv(pid_ns=True, init=True), registry=registry
            )
            _signal_main(proc, signal.SIGTERM, time.monotonic() + 10)
            # the program died of it (the init reports 128 + 15); the wrapper was not killed
            assert (proc.wait(10), proc.term_signal) == (143, None)
    finally:
        registry.kill_all()


def test_in_cluster_clients_reach_the_api_over_tls_with_the_service_account(
    cluster: Cluster, tmp_path: Path
) -> None:
    module = tmp_path / "lister.py"
    module.write_text(
        textwrap.dedent(
            """
            import os
            from kubernetes import client, config
            config.load_incluster_config()
            pods = client.CoreV1Api().list_namespaced_pod("default").items
            names = [p.metadata.name for p in pods]
            print("host", os.environ["KUBERNETES_SERVICE_HOST"], "pods", names, flush=True)
            """
        )
    )
    container = {
        "name": "main",
        "image": "python",
        "args": ["-m", "lister"],
        "env": [{"name": "PYTHONPATH", "value": str(tmp_path)}],
    }
    _create(cluster, _pod("lister", container, restartPolicy="Never"))
    live = _wait_pod(
        cluster, "lister", lambda p: p["status"].get("phase") in ("Succeeded", "Failed")
    )
    logs = "".join(
        chunk.decode()
        for chunk in cluster.kubelet().logs("default", "lister", "main", False, False)
    )
    assert live["status"]["phase"] == "Succeeded", logs
    assert cluster.network is not None
    assert logs.strip() == f"host {cluster.network.bridge_ip} pods ['lister']"
    assert cluster.in_cluster_url.startswith(f"https://{cluster.network.bridge_ip}:")


def test_chaos_kill_restarts_and_a_failed_node_recovers(cluster: Cluster) -> None:
    _create(cluster, _pod("victim", _sh("main", "sleep 600")))
    _wait_pod(cluster, "victim", _ready)
    # The program first, then what it started (the shell may fork `sleep`).
    pids = cluster.wait_for(lambda: cluster.pod_pids("default", "victim"), 10)
    assert cluster.kill_pod("default", "victim") == 1
    live = _wait_pod(
        cluster, "victim", lambda p: _container(p).get("restartCount") == 1 and _ready(p)
    )
    assert _container(live)["lastState"]["terminated"]["exitCode"] == 137
    assert not set(pids) & set(cluster.pod_pids("default", "victim"))

    cluster.fail_node()
    assert cluster.client is not None
    node = cluster.client.resource("v1", "Node").get("opkit-node")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert {t["key"] for t in node["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    assert not _ready(_get(cluster, "victim"))
    cluster.wait_for(lambda: not cluster.pod_pids("default", "victim"), 10)

    cluster.recover_node()
    live = _wait_pod(
        cluster, "victim", lambda p: _container(p).get("restartCount") == 2 and _ready(p)
    )
    node = cluster.client.resource("v1", "Node").get("opkit-node")
    assert not node["spec"].get("taints")


def test_kubectl_logs_follows_a_container_until_it_ends(cluster: Cluster, tmp_path: Path) -> None:
    script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done"
    _create(cluster, _pod("talker", _sh("main", script), restartPolicy="Never"))
    _wait_pod(cluster, "talker", lambda p: {"running", "terminated"} & set(_container(p)["state"]))
    kubectl = _kubectl(cluster, tmp_path)
    followed = kubectl("logs", "-f", "talker", timeout=30).stdout
    assert followed == "".join(f"line{i}\n" for i in range(1, 6))


def test_a_startup_probe_holds_back_readiness_and_liveness(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    pod = _pod(
        "slowstart",
        _sh(
            "main",
            "sleep 600",
            volumeMounts=[{"name": "gate", "mountPath": "/gate"}],
            startupProbe={
                "exec": {"command": ["test", "-f", "/gate/open"]},
                "periodSeconds": 1,
                "failureThreshold": 600,
            },
            readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
            livenessProbe={"exec": {"command": ["false"]}, "initialDelaySeconds": 3600},
        ),
        volumes=[{"name": "gate", "hostPath": {"path": str(gate), "type": "Directory"}}],
    )
    _create(cluster, pod)
    live = _wait_pod(cluster, "slowstart", lambda p: "running" in _container(p).get("state", {}))
    assert _container(live)["started"] is False and not _ready(live)

    def a_check_failed(events: Events) -> bool:
        return any(r == "Unhealthy" and m.startswith("Startup probe failed") for _, r, m in events)

    # The gate opens only after a failed check: failures below the threshold go on probing.
    _wait_events(cluster, "slowstart", a_check_failed)
    (gate / "open").touch()
    live = _wait_pod(cluster, "slowstart", _ready)
    assert _container(live)["started"] is True
    assert _container(live)["restartCount"] == 0


def test_a_claims_directory_outlives_its_pod_and_goes_with_the_claim(cluster: Cluster) -> None:
    assert cluster.client is not None and cluster.data_dir is not None
    claims = cluster.client.resource("v1", "PersistentVolumeClaim")
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    claims.create({"metadata": {"name": "data"}, "spec": spec}, "default")
    volume = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mount = [{"name": "data", "mountPath": "/var/lib/app"}]
    script = "echo kept > /var/lib/app/file; sleep 600"
    _create(cluster, _pod("writer", _sh("main", script, volumeMounts=mount), volumes=volume))
    _wait_pod(cluster, "writer", _ready)
    claim = claims.get("data", "default")
    directory = cluster.data_dir / "volumes" / claim["spec"]["volumeName"]
    cluster.wait_for((directory / "file").exists, 10)
    pods = cluster.client.resource("v1", "Pod")
    pods.delete("writer", "default")
    cluster.wait_for(lambda: not pods.list("default")["items"], 30)
    assert (directory / "file").read_text() == "kept\n"  # outlives the pod
    claims.delete("data", "default")
    cluster.wait_for(lambda: not directory.exists(), 30)  # removed with the claim's volume
