"""StatefulSet controller against the embedded API server (pods simulated)."""

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
    get,
    pods_named,
    ready,
    statefulset,
    wait_for,
)

from opkit.client import Client
from opkit.clock import FakeClock
from opkit.testing import Kubectl

Obj = dict[str, Any]
STS = ("apps/v1", "StatefulSet")


def sts_status(client: Client, name: str = "web") -> Obj:
    obj = get(client, *STS, name)
    status: Obj = obj.get("status") or {}
    status["_generation"] = obj["metadata"]["generation"]
    return status


def settled(client: Client, replicas: int, name: str = "web") -> Obj | None:
    """The status once every replica is ready and the rollout is complete."""
    st = sts_status(client, name)
    done = (
        st.get("observedGeneration") == st["_generation"]
        and st.get("readyReplicas") == replicas
        and st.get("replicas") == replicas
        and st.get("updatedReplicas") == replicas
        and st.get("currentRevision") == st.get("updateRevision")
        and len(pods_named(client, f"{name}-")) == replicas
    )
    return st if done else None


def claims(client: Client) -> dict[str, Obj]:
    items = client.resource("v1", "PersistentVolumeClaim").list(NS)["items"]
    return {c["metadata"]["name"]: c for c in items}


def test_ordered_ready_creates_pods_in_order_with_identity_claims_and_status(
    client: Client, start_plane: PlaneFactory, pod_events: Callable[[], PodEvents]
) -> None:
    start_plane(pod_ready_delay=0.05)
    events = pod_events()
    created = client.resource(*STS).create(statefulset("web", 3))
    st = wait_for(lambda: settled(client, 3), "3 ready replicas")

    # OrderedReady: web-i is created only after web-(i-1) became Ready.
    assert events.first_ready("web-0") < events.added("web-1")
    assert events.first_ready("web-1") < events.added("web-2")

    revision = st["updateRevision"]
    assert revision.startswith("web-")
    assert st["currentRevision"] == revision
    assert st["observedGeneration"] == created["metadata"]["generation"]
    assert (st["replicas"], st["readyReplicas"], st["currentReplicas"]) == (3, 3, 3)
    assert (st["updatedReplicas"], st["availableReplicas"], st["collisionCount"]) == (3, 3, 0)

    uid = get(client, *STS, "web")["metadata"]["uid"]
    for i, pod in enumerate(
        sorted(pods_named(client, "web-").values(), key=lambda p: p["metadata"]["name"])
    ):
        name = f"web-{i}"
        assert pod["metadata"]["name"] == name
        assert pod["metadata"]["labels"] == {
            "app": "web",
            "statefulset.kubernetes.io/pod-name": name,
            "apps.kubernetes.io/pod-index": str(i),
            "controller-revision-hash": revision,
        }
        assert pod["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "web",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert pod["spec"]["hostname"] == name
        assert pod["spec"]["subdomain"] == "web"
        assert pod["spec"]["volumes"][0] == {
            "name": "data",
            "persistentVolumeClaim": {"claimName": f"data-web-{i}"},
        }
        assert ready(pod)

    pvcs = wait_for(
        lambda: (
            (found := claims(client))
            and all(c["status"].get("phase") == "Bound" for c in found.values())
            and found
        ),
        "bound claims",
    )
    assert sorted(pvcs) == ["data-web-0", "data-web-1", "data-web-2"]
    for pvc in pvcs.values():
        assert "ownerReferences" not in pvc["metadata"]  # Retain / Retain
        assert pvc["metadata"]["labels"] == {"app": "web"}
        assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"

    revisions = client.resource("apps/v1", "ControllerRevision").list(NS)["items"]
    assert [r["metadata"]["name"] for r in revisions] == [revision]
    rev = revisions[0]
    assert rev["revision"] == 1
    assert rev["metadata"]["ownerReferences"][0]["uid"] == uid
    assert rev["metadata"]["labels"]["app"] == "web"
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_scale_down_goes_highest_first_and_claims_outlive_pods_and_the_set(
    client: Client, start_plane: PlaneFactory, pod_events: Callable[[], PodEvents]
) -> None:
    start_plane(pod_terminate_delay=0.05)
    sts = client.resource(*STS)
    sts.create(statefulset("web", 3))
    wait_for(lambda: settled(client, 3), "3 ready replicas")
    events = pod_events()

    sts.scale("web", 1, NS)
    wait_for(lambda: settled(client, 1), "scaled down to 1")
    # one at a time, highest ordinal first, each waiting for the previous one to be gone
    assert events.deleted("web-2") < events.deletion_started("web-1")
    assert sorted(pods_named(client, "web-")) == ["web-0"]
    assert sorted(claims(client)) == ["data-web-0", "data-web-1", "data-web-2"]

    sts.scale("web", 2, NS)
    wait_for(lambda: settled(client, 2), "scaled back up to 2")
    pod = pods_named(client, "web-")["web-1"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-web-1"

    sts.delete("web", NS)
    wait_for(lambda: not pods_named(client, "web-"), "pods garbage-collected")
    assert sorted(claims(client)) == ["data-web-0", "data-web-1", "data-web-2"]


def test_parallel_creates_every_pod_at_once(client: Client, start_plane: PlaneFactory) -> None:
    plane = start_plane()
    assert plane.podsim is not None
    plane.podsim.pause()  # nothing becomes ready: OrderedReady would stop at web-0
    client.resource(*STS).create(statefulset("web", 3, podManagementPolicy="Parallel"))
    pods = wait_for(
        lambda: len(found := pods_named(client, "web-")) == 3 and found, "three pending pods"
    )
    assert not any(ready(p) for p in pods.values())
    st = sts_status(client)
    assert st.get("readyReplicas", 0) == 0
    plane.podsim.resume()
    wait_for(lambda: settled(client, 3), "3 ready replicas")


def test_deleted_and_failed_pods_come_back_with_the_same_name_and_claim(
    client: Client, start_plane: PlaneFactory
) -> None:
    plane = start_plane()
    assert plane.podsim is not None
    client.resource(*STS).create(statefulset("web", 2))
    wait_for(lambda: settled(client, 2), "2 ready replicas")
    before = pods_named(client, "web-")
    claim_uid = claims(client)["data-web-1"]["metadata"]["uid"]

    client.resource("v1", "Pod").delete("web-1", NS)

    def replaced(name: str) -> Obj | None:
        pod = pods_named(client, "web-").get(name)
        if pod and pod["metadata"]["uid"] != before[name]["metadata"]["uid"] and ready(pod):
            return pod
        return None

    pod = wait_for(lambda: replaced("web-1"), "web-1 recreated")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-web-1"
    assert claims(client)["data-web-1"]["metadata"]["uid"] == claim_uid

    plane.podsim.set_pod_failed(NS, "web-0")
    wait_for(lambda: replaced("web-0"), "failed web-0 replaced")
    wait_for(lambda: settled(client, 2), "2 ready replicas again")


def test_rolling_update_replaces_pods_highest_first_and_records_revisions(
    client: Client, start_plane: PlaneFactory, pod_events: Callable[[], PodEvents]
) -> None:
    start_plane(pod_ready_delay=0.02)
    sts = client.resource(*STS)
    sts.create(statefulset("web", 3))
    first = wait_for(lambda: settled(client, 3), "3 ready replicas")["updateRevision"]
    old = {n: p["metadata"]["uid"] for n, p in pods_named(client, "web-").items()}
    events = pod_events()

    sts.patch(
        "web",
        {"spec": {"template": {"spec": {"containers": [container(image="nginx:1.28")]}}}},
        NS,
        patch_type="strategic",
    )

    def rolled() -> Obj | None:
        st = settled(client, 3)
        return st if st and st["updateRevision"] != first else None

    st = wait_for(rolled, "rolling update finished")
    second = st["updateRevision"]
    assert st["currentRevision"] == second
    assert st["currentReplicas"] == st["updatedReplicas"] == 3
    pods = pods_named(client, "web-")
    for name, pod in pods.items():
        assert pod["metadata"]["uid"] != old[name]
        assert pod["metadata"]["labels"]["controller-revision-hash"] == second
        assert pod["spec"]["containers"][0]["image"] == "nginx:1.28"

    # highest ordinal first; the next one goes only once the replacement is Ready
    new = {n: p["metadata"]["uid"] for n, p in pods.items()}
    assert events.deletion_started("web-2", old["web-2"]) < events.first_ready(
        "web-2", new["web-2"]
    )
    assert events.first_ready("web-2", new["web-2"]) < events.deletion_started(
        "web-1", old["web-1"]
    )
    assert events.first_ready("web-1", new["web-1"]) < events.deletion_started(
        "web-0", old["web-0"]
    )

    revisions = {
        r["metadata"]["name"]: r["revision"]
        for r in client.resource("apps/v1", "ControllerRevision").list(NS)["items"]
    }
    assert revisions == {first: 1, second: 2}

    # rolling back to the first template renumbers its revision instead of creating one
    sts.patch(
        "web",
        {"spec": {"template": {"spec": {"containers": [container(image="nginx:1.27")]}}}},
        NS,
        patch_type="strategic",
    )
    st = wait_for(
        lambda: (s := settled(client, 3)) and s["updateRevision"] == first and s, "rollback"
    )
    revisions = {
        r["metadata"]["name"]: r["revision"]
        for r in client.resource("apps/v1", "ControllerRevision").list(NS)["items"]
    }
    assert revisions == {first: 3, second: 2}


def test_partition_and_on_delete_strategies(client: Client, start_plane: PlaneFactory) -> None:
    start_plane()
    sts = client.resource(*STS)
    sts.create(
        statefulset(
            "web",
            3,
            claims=False,
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        )
    )
    first = wait_for(lambda: settled(client, 3), "3 ready replicas")["updateRevision"]
    sts.patch(
        "web",
        {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}},
        NS,
        patch_type="merge",
    )

    def partitioned() -> Obj | None:
        st = sts_status(client)
        pods = pods_named(client, "web-")
        if (
            st.get("observedGeneration") == st["_generation"]
            and st.get("updatedReplicas") == 1
            and st.get("readyReplicas") == 3
            and len(pods) == 3
            and all(ready(p) and not deleting(p) for p in pods.values())
        ):
            return st
        return None

    st = wait_for(partitioned, "partitioned rollout")
    second = st["updateRevision"]
    assert second != first and st["currentRevision"] == first and st["currentReplicas"] == 2
    revs = {
        n: p["metadata"]["labels"]["controller-revision-hash"]
        for n, p in pods_named(client, "web-").items()
    }
    assert revs == {"web-0": first, "web-1": first, "web-2": second}

    # OnDelete: nothing is replaced until someone deletes a pod
    sts.patch("web", {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}}, NS)
    sts.patch("web", {"spec": {"template": {"metadata": {"annotations": {"v": "3"}}}}}, NS)
    third = wait_for(
        lambda: (
            (s := sts_status(client)).get("observedGeneration") == s["_generation"]
            and s["updateRevision"] not in (first, second)
            and s["updateRevision"]
        ),
        "third revision observed",
    )
    revs = {
        n: p["metadata"]["labels"]["controller-revision-hash"]
        for n, p in pods_named(client, "web-").items()
    }
    assert revs == {"web-0": first, "web-1": first, "web-2": second}
    old_uid = pods_named(client, "web-")["web-0"]["metadata"]["uid"]
    client.resource("v1", "Pod").delete("web-0", NS)
    pod = wait_for(
        lambda: (
            (p := pods_named(client, "web-").get("web-0"))
            and p["metadata"]["uid"] != old_uid
            and ready(p)
            and p
        ),
        "web-0 recreated",
    )
    assert pod["metadata"]["labels"]["controller-revision-hash"] == third


def test_delete_retention_policies_give_claims_owners(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    sts = client.resource(*STS)
    sts.create(
        statefulset(
            "db",
            2,
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"},
        )
    )
    wait_for(lambda: settled(client, 2, "db"), "2 ready replicas")
    uid = get(client, *STS, "db")["metadata"]["uid"]
    for pvc in claims(client).values():
        refs = pvc["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [
            ("StatefulSet", uid, True)
        ]

    sts.scale("db", 1, NS)
    wait_for(lambda: sorted(claims(client)) == ["data-db-0"], "scaled-down claim deleted")

    sts.delete("db", NS)
    wait_for(lambda: not claims(client), "claims deleted with the set")


def test_min_ready_seconds_gates_availability_and_the_next_ordinal(
    client: Client, start_plane: PlaneFactory
) -> None:
    clock = FakeClock()
    start_plane(clock=clock)

    def fake_wait(pred: Callable[[], Any], what: str) -> Any:
        # nudge the fake clock along so short backoffs (conflict retries) still fire
        def check() -> Any:
            value = pred()
            if not value:
                clock.step(0.01)
            return value

        return wait_for(check, what)

    client.resource(*STS).create(statefulset("web", 2, claims=False, minReadySeconds=30))
    st = fake_wait(lambda: (s := sts_status(client)).get("readyReplicas") == 1 and s, "web-0 ready")
    assert st.get("availableReplicas", 0) == 0
    assert sorted(pods_named(client, "web-")) == ["web-0"]  # web-1 waits for web-0 to be available

    clock.step(31.0)
    st = fake_wait(
        lambda: (s := sts_status(client)).get("availableReplicas") == 1 and s, "web-0 available"
    )
    fake_wait(lambda: sts_status(client).get("readyReplicas") == 2, "web-1 ready")
    clock.step(31.0)
    st = fake_wait(
        lambda: (s := sts_status(client)).get("availableReplicas") == 2 and s, "both available"
    )
    assert st["readyReplicas"] == 2


@pytest.mark.e2e
def test_kubectl_rollout_status_statefulset(
    client: Client, start_plane: PlaneFactory, kubectl: Kubectl
) -> None:
    start_plane(pod_ready_delay=0.05)
    client.resource(*STS).create(statefulset("web", 3, claims=False))
    out = kubectl("rollout", "status", "statefulset/web", "--timeout=60s").stdout
    assert "partitioned roll out complete: 3 new pods have been updated" in out
    kubectl("set", "image", "statefulset/web", "app=nginx:1.28")
    out = kubectl("rollout", "status", "statefulset/web", "--timeout=60s").stdout
    assert "partitioned roll out complete: 3 new pods have been updated" in out
    st = sts_status(client)
    assert st["currentRevision"] == st["updateRevision"]
