"""Built-in controllers of the embedded control plane, written as opkit controllers.

What kube-controller-manager, kube-scheduler and (optionally) a kubelet would do for the kinds
operators create: StatefulSets, Deployments and ReplicaSets, Endpoints and EndpointSlices,
PersistentVolumeClaim binding, the default ServiceAccount and ``kube-root-ca.crt`` of every
namespace, a Ready Node with its Lease, a scheduler, and -- when no real kubelet runs -- a
kwok-like pod simulator. Garbage collection, namespace and CRD lifecycle live in the API
server itself.

Usage::

    server = APIServer().start()
    client = Client.from_kubeconfig(server.write_kubeconfig(path))
    with start_builtin_controllers(client, simulate_pods=True) as plane:
        ...  # StatefulSets get Running, Ready pods; plane.podsim.set_pod_failed(ns, name)

Every controller runs on one :class:`~opkit.manager.Manager` (no leader election, metrics and
health endpoints off) unless a manager is passed in, in which case they are registered on it
and the caller runs it.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from types import TracebackType
from typing import Any

from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock
from opkit.manager import DEFAULT_SYNC_PERIOD, Manager

from ._base import BuiltinController
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .node import DEFAULT_NODE_NAME, NodeController
from .podsim import DEFAULT_POD_CIDR, PodSimulator
from .pvc import PVCBinder, VolumeHook
from .replicaset import ReplicaSetController
from .scheduler import DEFAULT_SCHEDULER_NAME, Scheduler
from .serviceaccount import ServiceAccountController
from .statefulset import StatefulSetController

__all__ = [
    "ALL_CONTROLLERS",
    "DEFAULT_NODE_NAME",
    "DEFAULT_POD_CIDR",
    "BuiltinController",
    "BuiltinControllers",
    "DeploymentController",
    "EndpointsController",
    "NodeController",
    "PVCBinder",
    "PodSimulator",
    "ReplicaSetController",
    "Scheduler",
    "ServiceAccountController",
    "StatefulSetController",
    "start_builtin_controllers",
]

ALL_CONTROLLERS = frozenset(
    {
        "statefulset",
        "deployment",
        "replicaset",
        "endpoints",
        "pvc-binder",
        "serviceaccount",
        "node",
        "scheduler",
    }
)
"""Names accepted by ``controllers=`` (``podsim`` is chosen with ``simulate_pods``)."""


class BuiltinControllers:
    """The built-in controllers of one control plane, on one manager.

    ``simulate_pods`` runs the :class:`PodSimulator` on the node (no real kubelet);
    ``controllers`` picks a subset of :data:`ALL_CONTROLLERS` (default: all). Without a
    scheduler, pods stay unscheduled and are deleted at once (envtest's behaviour).
    ``resync_period`` is how often every cached object is reconciled again.
    """

    def __init__(
        self,
        client: Client,
        *,
        simulate_pods: bool,
        clock: Clock | None = None,
        manager: Manager | None = None,
        controllers: Iterable[str] | None = None,
        resync_period: float = DEFAULT_SYNC_PERIOD,
        node_name: str = DEFAULT_NODE_NAME,
        node_address: str = "127.0.0.1",
        node_capacity: dict[str, str] | None = None,
        node_labels: dict[str, str] | None = None,
        lease_renew_interval: float = 10.0,
        status_report_interval: float = 300.0,
        scheduler_names: Collection[str] = (DEFAULT_SCHEDULER_NAME,),
        pod_cidr: str = DEFAULT_POD_CIDR,
        pod_start_delay: float = 0.0,
        pod_ready_delay: float = 0.0,
        pod_terminate_delay: float = 0.0,
        data_dir: str = "/var/lib/opkit/volumes",
        on_volume_deleted: VolumeHook | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        chosen = set(ALL_CONTROLLERS if controllers is None else controllers)
        unknown = chosen - ALL_CONTROLLERS
        if unknown:
            raise ValueError(
                f"unknown controllers {sorted(unknown)}; choose from {sorted(ALL_CONTROLLERS)}"
            )
        self.client = client
        self.clock: Clock = clock if clock is not None else REAL_CLOCK
        self._owns_manager = manager is None
        self.manager = (
            manager
            if manager is not None
            else Manager(client, sync_period=resync_period, clock=self.clock)
        )
        self.statefulsets = (
            StatefulSetController(client, clock=self.clock) if "statefulset" in chosen else None
        )
        self.deployments = (
            DeploymentController(client, clock=self.clock) if "deployment" in chosen else None
        )
        self.replicasets = (
            ReplicaSetController(client, clock=self.clock) if "replicaset" in chosen else None
        )
        self.endpoints = (
            EndpointsController(client, clock=self.clock) if "endpoints" in chosen else None
        )
        self.pvc_binder = (
            PVCBinder(
                client, data_dir=data_dir, on_volume_deleted=on_volume_deleted, clock=self.clock
            )
            if "pvc-binder" in chosen
            else None
        )
        self.serviceaccounts = (
            ServiceAccountController(client, ca_bundle=ca_bundle, clock=self.clock)
            if "serviceaccount" in chosen
            else None
        )
        self.node = (
            NodeController(
                client,
                node_name=node_name,
                address=node_address,
                capacity=node_capacity,
                labels=node_labels,
                lease_renew_interval=lease_renew_interval,
                status_report_interval=status_report_interval,
                clock=self.clock,
            )
            if "node" in chosen
            else None
        )
        self.scheduler = (
            Scheduler(client, scheduler_names=scheduler_names, clock=self.clock)
            if "scheduler" in chosen
            else None
        )
        self.podsim = (
            PodSimulator(
                client,
                node_name=node_name,
                host_ip=node_address,
                pod_cidr=pod_cidr,
                start_delay=pod_start_delay,
                ready_delay=pod_ready_delay,
                terminate_delay=pod_terminate_delay,
                clock=self.clock,
            )
            if simulate_pods
            else None
        )
        for ctrl in self.all():
            ctrl.setup(self.manager)
        self._started = False

    def all(self) -> list[BuiltinController]:
        """The controllers that run, in setup order."""
        found: list[BuiltinController | None] = [
            self.node,
            self.scheduler,
            self.podsim,
            self.serviceaccounts,
            self.pvc_binder,
            self.statefulsets,
            self.replicasets,
            self.deployments,
            self.endpoints,
        ]
        return [ctrl for ctrl in found if ctrl is not None]

    def start(self) -> BuiltinControllers:
        """Start the manager (only if this object created it); returns self."""
        if self._owns_manager and not self._started:
            self.manager.start()
        self._started = True
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the manager's informers have synced (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while not self.manager.ready:
            if time.monotonic() >= deadline or self.manager.error is not None:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop every controller and informer (only if this object created the manager)."""
        if self._owns_manager:
            self.manager.stop()

    def __enter__(self) -> BuiltinControllers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_builtin_controllers(
    client: Client,
    *,
    clock: Clock | None = None,
    simulate_pods: bool,
    **options: Any,
) -> BuiltinControllers:
    """Build and start :class:`BuiltinControllers`; call ``stop()`` on the result when done.

    ``options`` are the keyword arguments of :class:`BuiltinControllers`.
    """
    plane = BuiltinControllers(client, clock=clock, simulate_pods=simulate_pods, **options)
    return plane.start()
