"""PVC binder, ServiceAccount controller, the Node and its Lease, and the control plane as a
whole: steady state, clean stop, subsets, an external manager."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest
from ctrl_helpers import NS, PlaneFactory, deployment, get, statefulset, wait_for

from opkit import errors, metrics
from opkit.client import Client
from opkit.manager import Manager
from opkit.testing import APIServer
from opkit.testing.controllers import BuiltinControllers

Obj = dict[str, Any]


def maybe(fn: Any, *args: Any) -> Obj | None:
    try:
        result: Obj = fn(*args)
        return result
    except errors.NotFound:
        return None


def test_pvc_binding_provisions_a_volume_and_reclaims_it(
    client: Client, start_plane: PlaneFactory
) -> None:
    deleted: list[Obj] = []
    start_plane(data_dir="/srv/opkit-volumes", on_volume_deleted=deleted.append)
    pvcs = client.resource("v1", "PersistentVolumeClaim")
    claim = pvcs.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}},
            },
        }
    )
    bound = wait_for(
        lambda: (c := pvcs.get("data", NS))["status"].get("phase") == "Bound" and c, "bound"
    )
    pv_name = f"pvc-{claim['metadata']['uid']}"
    assert bound["spec"]["volumeName"] == pv_name
    assert bound["status"]["capacity"] == {"storage": "2Gi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
    assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    pv = wait_for(
        lambda: (
            (v := get(client, "v1", "PersistentVolume", pv_name, None))["status"].get("phase")
            == "Bound"
            and v
        ),
        "volume bound",
    )
    assert pv["spec"]["hostPath"] == {
        "path": f"/srv/opkit-volumes/{pv_name}",
        "type": "DirectoryOrCreate",
    }
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    ref = pv["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"], ref["uid"]) == (NS, "data", claim["metadata"]["uid"])

    pvcs.delete("data", NS)
    volumes = client.resource("v1", "PersistentVolume")
    wait_for(lambda: maybe(volumes.get, pv_name) is None, "volume deleted")
    wait_for(lambda: deleted, "hook called")
    assert [d["metadata"]["name"] for d in deleted] == [pv_name]


def test_every_namespace_gets_a_default_service_account_and_root_ca(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    client.resource("v1", "Namespace").create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    accounts = client.resource("v1", "ServiceAccount")
    sa = wait_for(lambda: maybe(accounts.get, "default", "team-a"), "default SA")
    cm = wait_for(
        lambda: maybe(client.resource("v1", "ConfigMap").get, "kube-root-ca.crt", "team-a"),
        "root CA ConfigMap",
    )
    assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(partial(maybe, accounts.get, "default", ns), f"default SA in {ns}")

    accounts.delete("default", "team-a")
    wait_for(
        lambda: (
            (s := maybe(accounts.get, "default", "team-a"))
            and s["metadata"]["uid"] != sa["metadata"]["uid"]
        ),
        "default SA recreated",
    )
    client.resource("v1", "ConfigMap").patch(
        "kube-root-ca.crt", {"data": {"ca.crt": "x"}}, "team-a"
    )
    wait_for(
        lambda: (
            get(client, "v1", "ConfigMap", "kube-root-ca.crt", "team-a")["data"]["ca.crt"]
            == cm["data"]["ca.crt"]
        ),
        "CA bundle restored",
    )


def test_node_is_ready_and_its_lease_is_renewed(client: Client, start_plane: PlaneFactory) -> None:
    start_plane(lease_renew_interval=0.2)
    node = wait_for(
        lambda: (
            (n := maybe(client.resource("v1", "Node").get, "opkit-node"))
            and n.get("status", {}).get("conditions")
            and n
        ),
        "node with status",
    )
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["MemoryPressure"]["status"] == "False"
    assert node["status"]["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.1"},
        {"type": "Hostname", "address": "opkit-node"},
    ]
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "opkit-node"
    leases = client.resource("coordination.k8s.io/v1", "Lease")
    lease = wait_for(lambda: maybe(leases.get, "opkit-node", "kube-node-lease"), "lease")
    assert lease["spec"]["holderIdentity"] == "opkit-node"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    first = lease["spec"]["renewTime"]
    wait_for(
        lambda: leases.get("opkit-node", "kube-node-lease")["spec"]["renewTime"] != first,
        "lease renewed",
    )

    client.resource("v1", "Node").delete("opkit-node")
    wait_for(
        lambda: (
            (n := maybe(client.resource("v1", "Node").get, "opkit-node"))
            and n["metadata"]["uid"] != node["metadata"]["uid"]
            and n.get("status", {}).get("conditions")
        ),
        "node recreated",
    )


def reconciles(controller: str) -> float:
    total = 0.0
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if (
                sample.name == "controller_runtime_reconcile_total"
                and sample.labels.get("controller") == controller
            ):
                total += sample.value
    return total


def test_steady_state_makes_no_writes(
    apiserver: APIServer, client: Client, start_plane: PlaneFactory
) -> None:
    start_plane(resync_period=1.0)
    client.resource("apps/v1", "StatefulSet").create(statefulset("web", 2))
    client.resource("apps/v1", "Deployment").create(deployment("api", 2))
    client.resource("v1", "Service").create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        }
    )

    def converged() -> bool:
        sts = get(client, "apps/v1", "StatefulSet", "web")["status"]
        dep = get(client, "apps/v1", "Deployment", "api")["status"]
        ep = maybe(client.resource("v1", "Endpoints").get, "web", NS) or {}
        addresses = [a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return (
            sts.get("readyReplicas") == 2
            and dep.get("availableReplicas") == 2
            and len(addresses) == 2
        )

    wait_for(converged, "everything converged")
    # Let the last status writes land, then watch a quiet period spanning several resyncs.
    stable = threading.Event()
    last = apiserver.write_count
    while not stable.wait(1.2):
        now = apiserver.write_count
        if now == last:
            break
        last = now
    before = apiserver.write_count
    counted = {name: reconciles(name) for name in ("statefulset", "deployment", "endpoints")}
    threading.Event().wait(3.5)
    assert apiserver.write_count == before
    # the quiet period really saw resyncs: every controller reconciled again
    for name, count in counted.items():
        assert reconciles(name) > count, name


def test_stop_leaves_no_threads(client: Client) -> None:
    before = {t.ident for t in threading.enumerate()}
    plane = BuiltinControllers(client, simulate_pods=True, lease_renew_interval=3600.0).start()
    assert plane.wait_ready(20)
    client.resource("apps/v1", "StatefulSet").create(statefulset("web", 1, claims=False))
    wait_for(
        lambda: (
            get(client, "apps/v1", "StatefulSet", "web").get("status", {}).get("readyReplicas") == 1
        ),
        "a working plane",
    )
    plane.stop()
    # (the API server's own connection threads belong to the apiserver fixture)
    leaked = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not t.name.startswith("opkit-apiserver")
    ]
    assert leaked == []


def test_controllers_can_be_registered_on_a_given_manager(client: Client) -> None:
    manager = Manager(client)
    plane = BuiltinControllers(
        client, simulate_pods=False, manager=manager, controllers={"serviceaccount"}
    )
    assert plane.all() == [plane.serviceaccounts]
    assert {c.name for c in manager.controllers} == {"serviceaccount"}
    plane.start()  # the caller runs the manager
    assert not manager.ready
    manager.start()
    try:
        wait_for(
            lambda: maybe(client.resource("v1", "ServiceAccount").get, "default", "kube-public"),
            "default SA",
        )
    finally:
        manager.stop()
    plane.stop()


def test_unknown_controller_names_are_rejected(client: Client) -> None:
    with pytest.raises(ValueError, match="unknown controllers"):
        BuiltinControllers(client, simulate_pods=False, controllers={"statefulsets"})


def test_without_a_scheduler_pods_stay_pending(client: Client, start_plane: PlaneFactory) -> None:
    plane = start_plane(simulate_pods=False, controllers={"node", "deployment", "replicaset"})
    assert plane.podsim is None and plane.scheduler is None
    client.resource("apps/v1", "Deployment").create(deployment("api", 2))
    rs = wait_for(
        lambda: (
            (d := get(client, "apps/v1", "Deployment", "api").get("status", {})).get("replicas")
            == 2
            and d
        ),
        "pods created",
    )
    assert rs.get("availableReplicas", 0) == 0
    pods = client.resource("v1", "Pod").list(NS)["items"]
    assert len(pods) == 2
    assert all(p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName") for p in pods)
