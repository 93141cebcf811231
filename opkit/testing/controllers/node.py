"""The control plane's one Node (default ``opkit-node``) and its heartbeat Lease.

The Node is Ready, addressed at ``127.0.0.1``, with the capacity of this machine and the
labels a kubelet sets; it is recreated if deleted. Its Lease in ``kube-node-lease`` is renewed
every ``lease_renew_interval`` seconds and the Ready condition's ``lastHeartbeatTime`` every
``status_report_interval`` seconds (the kubelet's defaults: 10 s and 5 min).
"""

from __future__ import annotations

import os
import platform
import shutil
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Controller, Request, Result, Source
from opkit.manager import Manager
from opkit.predicates import new_predicate_funcs

from . import _common as c
from ._base import BuiltinController

__all__ = ["DEFAULT_NODE_NAME", "NODE_LEASE_NAMESPACE", "NodeController"]

Obj = dict[str, Any]

DEFAULT_NODE_NAME = "opkit-node"
NODE_LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.4"
_FIELD_MANAGER = "kubelet"
_LEASE_KEY = "lease"

_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)  # fmt: skip


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def default_capacity() -> dict[str, str]:
    """This machine's CPUs, memory and root disk, and the kubelet's default of 110 pods."""
    capacity = {"cpu": str(os.cpu_count() or 1), "pods": "110"}
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        capacity["memory"] = f"{memory // 1024}Ki"
    except (ValueError, OSError, AttributeError):
        capacity["memory"] = "8Gi"
    try:
        capacity["ephemeral-storage"] = f"{shutil.disk_usage('/').total // 1024}Ki"
    except OSError:
        capacity["ephemeral-storage"] = "100Gi"
    return capacity


class NodeController(BuiltinController):
    """Keeps one Ready Node and renews its Lease."""

    name = "node"

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        node_name: str = DEFAULT_NODE_NAME,
        address: str = "127.0.0.1",
        capacity: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        lease_duration_seconds: int = 40,
        lease_renew_interval: float = 10.0,
        status_report_interval: float = 300.0,
    ) -> None:
        super().__init__(client, clock=clock)
        self.node_name = node_name
        self.address = address
        self.capacity = dict(capacity) if capacity is not None else default_capacity()
        self.extra_labels = dict(labels or {})
        self.lease_duration_seconds = lease_duration_seconds
        self.lease_renew_interval = lease_renew_interval
        self.status_report_interval = status_report_interval
        self._nodes = client.resource("v1", "Node")
        self._leases = client.resource("coordination.k8s.io/v1", "Lease")
        self._lease_controller: Controller | None = None

    def setup(self, manager: Manager) -> None:
        def is_ours(obj: Obj) -> bool:
            return c.name_of(obj) == self.node_name

        ctrl = manager.controller(
            "node",
            self,
            for_=Source("v1", "Node", predicates=[new_predicate_funcs(is_ours)]),
            need_leader_election=False,
        )
        lease_ctrl = manager.controller(
            "node-lease",
            self._reconcile_lease,
            for_=Source(
                "coordination.k8s.io/v1",
                "Lease",
                handler=lambda obj: [Request("", _LEASE_KEY)],
                predicates=[
                    new_predicate_funcs(
                        lambda obj: is_ours(obj) and c.namespace_of(obj) == NODE_LEASE_NAMESPACE
                    )
                ],
            ),
            watches=[
                Source(
                    "v1",
                    "Node",
                    handler=lambda obj: [Request("", _LEASE_KEY)],
                    predicates=[new_predicate_funcs(is_ours)],
                )
            ],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)
        self._lease_controller = lease_ctrl
        # Nothing may exist yet to produce an event: start both loops once.
        ctrl.enqueue(Request("", self.node_name))
        lease_ctrl.enqueue(Request("", _LEASE_KEY))

    # -- the Node -------------------------------------------------------------------------------

    def _labels(self) -> dict[str, str]:
        arch = _arch()
        out = {
            "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "type": "opkit",
        }
        out.update(self.extra_labels)
        return out

    def _status(self, live: Obj | None, heartbeat: str) -> Obj:
        previous = {
            cond.get("type"): cond
            for cond in (c.status_of(live).get("conditions") if live else None) or ()
        }
        conditions = []
        for ctype, status, reason, message in _CONDITIONS:
            prev = previous.get(ctype) or {}
            transition = (
                prev.get("lastTransitionTime") if prev.get("status") == status else None
            ) or heartbeat
            conditions.append(
                {
                    "type": ctype,
                    "status": status,
                    "lastHeartbeatTime": heartbeat,
                    "lastTransitionTime": transition,
                    "reason": reason,
                    "message": message,
                }
            )
        return {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.capacity),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.address},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": c.fnv32a(self.node_name.encode()).to_bytes(4, "big").hex() * 8,
                "systemUUID": c.fnv32(self.node_name.encode()).to_bytes(4, "big").hex() * 4,
                "bootID": c.fnv32a(platform.node().encode()).to_bytes(4, "big").hex() * 4,
                "kernelVersion": platform.release(),
                "osImage": "opkit embedded node",
                "containerRuntimeVersion": "opkit://0.1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": _arch(),
            },
        }

    def sync(self, request: Request) -> Result | None:
        if request.name != self.node_name:
            return None
        node = self.cache.get("v1", "Node", None, self.node_name, copy=False)
        now = self.clock.now()
        heartbeat = c.format_time(now)
        if node is None:
            try:
                node = self._nodes.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {
                            "name": self.node_name,
                            "labels": self._labels(),
                            "annotations": {
                                "node.alpha.kubernetes.io/ttl": "0",
                                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                            },
                        },
                        "spec": {},
                    },
                    field_manager=_FIELD_MANAGER,
                )
            except errors.AlreadyExists:
                node = self._nodes.get(self.node_name)
        assert node is not None
        wanted_labels = self._labels()
        have_labels = c.labels_of(node)
        missing = {k: v for k, v in wanted_labels.items() if have_labels.get(k) != v}
        if missing:
            self._nodes.patch(
                self.node_name, {"metadata": {"labels": missing}}, field_manager=_FIELD_MANAGER
            )
        live_status = c.status_of(node)
        ready = c.pod_condition(node, "Ready") or {}
        last = c.parse_time(ready.get("lastHeartbeatTime"))
        age = (now - last).total_seconds() if last is not None else None
        keep = str(ready.get("lastHeartbeatTime") or heartbeat)
        desired = self._status(node, keep)
        if age is None or age >= self.status_report_interval or c.differs(live_status, desired):
            desired = self._status(node, heartbeat)
            self._nodes.patch_status(
                self.node_name, {"status": desired}, field_manager=_FIELD_MANAGER
            )
            age = 0.0
        return Result(requeue_after=max(self.status_report_interval - age, 1.0))

    # -- the Lease ------------------------------------------------------------------------------

    def _reconcile_lease(self, request: Request) -> Result | None:
        try:
            return self._sync_lease()
        except (errors.Conflict, errors.AlreadyExists):
            return Result(requeue=True)

    def _sync_lease(self) -> Result | None:
        node = self.cache.get("v1", "Node", None, self.node_name, copy=False)
        if node is None:
            return None  # the Node's creation wakes this loop again
        now = self.clock.now()
        lease = self.cache.get(
            "coordination.k8s.io/v1", "Lease", NODE_LEASE_NAMESPACE, self.node_name, copy=False
        )
        spec: Obj = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "renewTime": c.format_micro_time(now),
        }
        if lease is None:
            try:
                self._leases.create(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {
                            "name": self.node_name,
                            "namespace": NODE_LEASE_NAMESPACE,
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": self.node_name,
                                    "uid": c.uid_of(node),
                                }
                            ],
                        },
                        "spec": spec,
                    },
                    field_manager=_FIELD_MANAGER,
                )
            except errors.NotFound:
                return Result(requeue_after=1.0)  # kube-node-lease is missing
            return Result(requeue_after=self.lease_renew_interval)
        lease_spec = c.spec_of(lease)
        renewed = c.parse_time(lease_spec.get("renewTime"))
        age = (now - renewed).total_seconds() if renewed is not None else None
        stale = (
            lease_spec.get("holderIdentity") != self.node_name
            or c.as_int(lease_spec.get("leaseDurationSeconds")) != self.lease_duration_seconds
        )
        if age is not None and age < self.lease_renew_interval and not stale:
            return Result(requeue_after=self.lease_renew_interval - age)
        self._leases.patch(
            self.node_name,
            {"metadata": {"resourceVersion": c.meta(lease).get("resourceVersion")}, "spec": spec},
            NODE_LEASE_NAMESPACE,
            field_manager=_FIELD_MANAGER,
        )
        return Result(requeue_after=self.lease_renew_interval)
