"""The pod simulator (kwok-like stages and hooks) and the scheduler."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from ctrl_helpers import NS, PlaneFactory, container, get, ready, wait_for

from opkit import errors
from opkit.client import Client
from opkit.clock import FakeClock

Obj = dict[str, Any]


def make_pod(client: Client, name: str = "p", **spec: Any) -> Obj:
    spec.setdefault("containers", [container("app"), container("side", image="busybox")])
    pod: Obj = client.resource("v1", "Pod").create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }
    )
    return pod


def pod(client: Client, name: str = "p") -> Obj:
    return get(client, "v1", "Pod", name)


def conditions(obj: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in obj["status"].get("conditions") or []}


def test_scheduled_pod_runs_with_kubelet_like_status(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    created = make_pod(client)
    live = wait_for(lambda: ready(p := pod(client)) and p, "pod running")
    assert live["spec"]["nodeName"] == "opkit-node"
    status = live["status"]
    assert status["phase"] == "Running"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("127.200.0.0/16")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == "127.0.0.1" and status["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert status["startTime"]
    assert status["qosClass"] == "BestEffort"  # the server's, kept
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert all(c["status"] == "True" for c in status["conditions"])
    statuses = {cs["name"]: cs for cs in status["containerStatuses"]}
    assert set(statuses) == {"app", "side"}
    for cs in statuses.values():
        assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
        assert cs["state"]["running"]["startedAt"]
        assert cs["containerID"].startswith("opkit://")
        assert cs["imageID"]
    assert statuses["app"]["image"] == "nginx:1.27"
    assert statuses["side"]["imageID"].startswith("docker.io/library/busybox@sha256:")

    # graceful deletion (30 s by default) is finished by the simulated kubelet
    client.resource("v1", "Pod").delete("p", NS)

    def gone() -> bool:
        try:
            return bool(pod(client)["metadata"]["uid"] != created["metadata"]["uid"])
        except errors.NotFound:
            return True

    wait_for(gone, "pod deleted")


def test_pause_holds_pods_in_the_create_stage_and_resume_makes_them_ready(
    client: Client, start_plane: PlaneFactory
) -> None:
    plane = start_plane()
    assert plane.podsim is not None
    plane.podsim.pause()
    make_pod(client)
    live = wait_for(lambda: (p := pod(client))["status"].get("podIP") and p, "pod-create stage")
    assert live["status"]["phase"] == "Pending"
    conds = conditions(live)
    assert {t: c["status"] for t, c in conds.items()} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
        "PodScheduled": "True",
    }
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [app side]"
    for cs in live["status"]["containerStatuses"]:
        assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
        assert cs["ready"] is False and cs["started"] is False
    plane.podsim.resume()
    wait_for(lambda: ready(pod(client)), "pod ready after resume")


def test_hooks_fail_restart_and_unready_a_pod(client: Client, start_plane: PlaneFactory) -> None:
    plane = start_plane()
    sim = plane.podsim
    assert sim is not None
    make_pod(client, "a")
    make_pod(client, "b", restartPolicy="Never")
    wait_for(lambda: ready(pod(client, "a")) and ready(pod(client, "b")), "pods running")

    restarted = sim.restart_pod(NS, "a", container="app")
    statuses = {cs["name"]: cs for cs in restarted["status"]["containerStatuses"]}
    assert statuses["app"]["restartCount"] == 1 and statuses["side"]["restartCount"] == 0
    assert statuses["app"]["lastState"]["terminated"]["exitCode"] == 137
    assert ready(restarted)
    before = pod(client, "a")["status"]["containerStatuses"][0]["containerID"]
    assert before == statuses["app"]["containerID"]

    not_ready = sim.set_pod_not_ready(NS, "a")
    assert not ready(not_ready) and not_ready["status"]["phase"] == "Running"
    assert all(cs["started"] and not cs["ready"] for cs in not_ready["status"]["containerStatuses"])
    # the restart count survives the simulator's own writes
    assert {cs["name"]: cs["restartCount"] for cs in not_ready["status"]["containerStatuses"]} == {
        "app": 1,
        "side": 0,
    }
    assert ready(sim.set_pod_ready(NS, "a"))

    failed = sim.set_pod_failed(NS, "b")
    assert failed["status"]["phase"] == "Failed"
    for cs in failed["status"]["containerStatuses"]:
        assert cs["state"]["terminated"]["exitCode"] == 1
        assert cs["state"]["terminated"]["reason"] == "Error"
    assert conditions(failed)["Ready"]["status"] == "False"
    done = sim.set_pod_succeeded(NS, "a")
    assert done["status"]["phase"] == "Succeeded"


def test_delays_follow_the_injected_clock(client: Client, start_plane: PlaneFactory) -> None:
    clock = FakeClock()
    created_at = clock.now()
    start_plane(clock=clock, pod_start_delay=5.0, pod_ready_delay=10.0)
    make_pod(client)
    wait_for(lambda: pod(client)["spec"].get("nodeName"), "pod scheduled")

    def step_until(pred: Any, what: str) -> Obj:
        # one fake second at a time, giving the simulator a moment to act after each step
        for _ in range(100):
            clock.step(1.0)
            try:
                result: Obj = wait_for(pred, what, timeout=0.05)
                return result
            except AssertionError:
                continue
        raise AssertionError(f"never reached {what}")

    live = step_until(lambda: (p := pod(client))["status"].get("podIP") and p, "pod-create")
    assert live["status"]["phase"] == "Pending"
    live = step_until(lambda: ready(p := pod(client)) and p, "pod-ready")
    started = datetime.fromisoformat(live["status"]["startTime"].replace("Z", "+00:00"))
    ready_since = datetime.fromisoformat(
        conditions(live)["Ready"]["lastTransitionTime"].replace("Z", "+00:00")
    )
    # all timestamps come from the fake clock
    assert (started - created_at).total_seconds() >= 5.0
    assert (ready_since - started).total_seconds() >= 10.0


def test_scheduler_honours_node_selectors_and_reports_unschedulable(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    make_pod(client, "picky", nodeSelector={"disk": "ssd"})
    make_pod(client, "other-scheduler", schedulerName="custom")
    expected = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    # (until the node reports Ready the message says so; the node's change reschedules)
    cond = wait_for(
        lambda: (
            (c := conditions(pod(client, "picky")).get("PodScheduled"))
            and c.get("message") == expected
            and c
        ),
        "PodScheduled condition",
    )
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    client.resource("v1", "Node").patch("opkit-node", {"metadata": {"labels": {"disk": "ssd"}}})
    wait_for(lambda: ready(pod(client, "picky")), "picky pod scheduled and running")
    assert "nodeName" not in pod(client, "other-scheduler")["spec"]


def test_ip_pool_must_be_loopback(client: Client) -> None:
    from opkit.testing.controllers import PodSimulator

    try:
        PodSimulator(client, pod_cidr="10.0.0.0/16")
    except ValueError as exc:
        assert "127.0.0.0/8" in str(exc)
    else:
        raise AssertionError("a non-loopback pod CIDR was accepted")
