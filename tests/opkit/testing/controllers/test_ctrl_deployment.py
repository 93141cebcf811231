"""Deployment and ReplicaSet controllers against the embedded API server (pods simulated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ctrl_helpers import (
    NS,
    PlaneFactory,
    PodEvents,
    container,
    deleting,
    deployment,
    get,
    pods_named,
    ready,
    wait_for,
)

from opkit.client import Client
from opkit.testing import Kubectl

Obj = dict[str, Any]
DEPLOY = ("apps/v1", "Deployment")


def replicasets(client: Client) -> dict[str, Obj]:
    items = client.resource("apps/v1", "ReplicaSet").list(NS)["items"]
    return {rs["metadata"]["name"]: rs for rs in items}


def condition(obj: Obj, ctype: str) -> Obj:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return dict(cond)
    return {}


def complete(client: Client, replicas: int, name: str = "api") -> Obj | None:
    """The Deployment once its rollout is complete (what ``kubectl rollout status`` checks)."""
    dep = get(client, *DEPLOY, name)
    st = dep.get("status") or {}
    live = [p for p in pods_named(client, f"{name}-").values() if not deleting(p)]
    done = (
        st.get("observedGeneration") == dep["metadata"]["generation"]
        and st.get("updatedReplicas") == replicas
        and st.get("replicas") == replicas
        and st.get("availableReplicas") == replicas
        and condition(dep, "Progressing").get("reason") == "NewReplicaSetAvailable"
        and len(live) == replicas
    )
    return dep if done else None


def test_deployment_creates_a_replicaset_and_pods_and_reports_status(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    client.resource(*DEPLOY).create(deployment("api", 3))
    dep = wait_for(lambda: complete(client, 3), "rollout complete")
    st = dep["status"]
    assert st["readyReplicas"] == 3 and st["unavailableReplicas"] == 0
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    available = condition(dep, "Available")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    progressing = condition(dep, "Progressing")
    assert progressing["status"] == "True"

    (rs,) = replicasets(client).values()
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"api-{pod_hash}"
    assert progressing["message"] == f'ReplicaSet "api-{pod_hash}" has successfully progressed.'
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "api", "pod-template-hash": pod_hash}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    rs_status = rs["status"]
    assert rs_status == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": rs["metadata"]["generation"],
    }
    pods = pods_named(client, "api-")
    assert len(pods) == 3
    for name, pod in pods.items():
        assert name.startswith(f"api-{pod_hash}-") and len(name) == len(f"api-{pod_hash}-") + 5
        assert pod["metadata"]["generateName"] == f"api-{pod_hash}-"
        assert pod["metadata"]["labels"] == {"app": "api", "pod-template-hash": pod_hash}
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"]) == (
            "ReplicaSet",
            rs["metadata"]["name"],
            rs["metadata"]["uid"],
        )
        assert ready(pod)


def test_rolling_update_stays_within_surge_and_unavailability(
    client: Client, start_plane: PlaneFactory, pod_events: Callable[[], PodEvents]
) -> None:
    start_plane(pod_ready_delay=0.02)
    deployments = client.resource(*DEPLOY)
    deployments.create(deployment("api", 4))
    wait_for(lambda: complete(client, 4), "first rollout")
    (old_rs,) = replicasets(client)
    old_pods = pods_named(client, "api-")
    events = pod_events()

    deployments.patch(
        "api",
        {"spec": {"template": {"spec": {"containers": [container(image="nginx:1.28")]}}}},
        NS,
        patch_type="strategic",
    )
    dep = wait_for(
        lambda: (
            (d := complete(client, 4))
            and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
            and d
        ),
        "second rollout",
    )
    sets = replicasets(client)
    assert len(sets) == 2 and old_rs in sets
    (new_rs,) = (n for n in sets if n != old_rs)
    assert sets[old_rs]["spec"]["replicas"] == 0  # kept as history
    assert sets[new_rs]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    for pod in pods_named(client, "api-").values():
        if not deleting(pod):
            assert pod["metadata"]["labels"]["pod-template-hash"] == new_rs.split("-", 1)[1]
    assert dep["status"]["updatedReplicas"] == 4

    # Replay the pod events: with 25% of 4 there may be at most 5 pods (surge 1) and never
    # fewer than 3 ready ones (1 unavailable).
    state = {name: ready(pod) for name, pod in old_pods.items()}
    max_pods, min_ready = len(state), sum(state.values())
    for kind, obj in events.events:
        name = obj["metadata"]["name"]
        if kind == "DELETED" or deleting(obj):
            state.pop(name, None)
        else:
            state[name] = ready(obj)
        max_pods = max(max_pods, len(state))
        min_ready = min(min_ready, sum(state.values()))
    assert max_pods == 5
    assert min_ready >= 3


def test_scaling_up_and_down(client: Client, start_plane: PlaneFactory) -> None:
    start_plane()
    deployments = client.resource(*DEPLOY)
    deployments.create(deployment("api", 2))
    wait_for(lambda: complete(client, 2), "2 replicas")
    deployments.scale("api", 5, NS)
    dep = wait_for(lambda: complete(client, 5), "5 replicas")
    (rs,) = replicasets(client).values()
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    assert dep["status"]["readyReplicas"] == 5
    deployments.scale("api", 1, NS)
    wait_for(lambda: complete(client, 1), "1 replica")
    wait_for(lambda: len(pods_named(client, "api-")) == 1, "extra pods gone")


def test_recreate_removes_every_old_pod_before_creating_new_ones(
    client: Client, start_plane: PlaneFactory, pod_events: Callable[[], PodEvents]
) -> None:
    start_plane(pod_terminate_delay=0.05)
    deployments = client.resource(*DEPLOY)
    deployments.create(deployment("api", 3, strategy={"type": "Recreate"}))
    wait_for(lambda: complete(client, 3), "first rollout")
    old = set(pods_named(client, "api-"))
    events = pod_events()
    deployments.patch("api", {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}}, NS)
    wait_for(
        lambda: (
            (d := complete(client, 3))
            and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        ),
        "recreated",
    )
    new = set(pods_named(client, "api-")) - old
    assert len(new) == 3
    last_old_gone = max(events.deleted(name) for name in old)
    first_new = min(events.added(name) for name in new)
    assert last_old_gone < first_new


def test_deleting_a_pod_of_a_replicaset_replaces_it(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    client.resource(*DEPLOY).create(deployment("api", 2))
    wait_for(lambda: complete(client, 2), "2 replicas")
    victim = sorted(pods_named(client, "api-"))[0]
    client.resource("v1", "Pod").delete(victim, NS)
    pods = wait_for(
        lambda: (
            len(found := {n: p for n, p in pods_named(client, "api-").items() if ready(p)}) == 2
            and victim not in found
            and found
        ),
        "replacement pod",
    )
    assert victim not in pods
    wait_for(lambda: complete(client, 2), "status back to 2 available")


@pytest.mark.e2e
def test_kubectl_rollout_status_deployment(
    client: Client, start_plane: PlaneFactory, kubectl: Kubectl
) -> None:
    start_plane(pod_ready_delay=0.05)
    client.resource(*DEPLOY).create(deployment("api", 3))
    out = kubectl("rollout", "status", "deployment/api", "--timeout=60s").stdout
    assert 'deployment "api" successfully rolled out' in out
    kubectl("set", "image", "deployment/api", "app=nginx:1.28")
    out = kubectl("rollout", "status", "deployment/api", "--timeout=60s").stdout
    assert 'deployment "api" successfully rolled out' in out
    history = kubectl("rollout", "history", "deployment/api").stdout
    assert "1 " in history and "2 " in history


def test_paused_deployment_waits_for_resume(client: Client, start_plane: PlaneFactory) -> None:
    start_plane()
    deployments = client.resource(*DEPLOY)
    deployments.create(deployment("api", 2))
    wait_for(lambda: complete(client, 2), "first rollout")
    deployments.patch("api", {"spec": {"paused": True}}, NS)
    deployments.patch("api", {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}}, NS)
    dep = wait_for(
        lambda: (
            (d := get(client, *DEPLOY, "api"))["status"].get("observedGeneration")
            == d["metadata"]["generation"]
            and condition(d, "Progressing").get("reason") == "DeploymentPaused"
            and d
        ),
        "paused status",
    )
    assert condition(dep, "Progressing")["status"] == "Unknown"
    assert len(replicasets(client)) == 1  # no rollout while paused
    deployments.patch("api", {"spec": {"paused": False}}, NS)
    wait_for(
        lambda: (
            (d := complete(client, 2))
            and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        ),
        "rolled out after resume",
    )
    assert len(replicasets(client)) == 2
