"""Endpoints and EndpointSlice controllers (CTRL-6), as kube-controller-manager's ``endpoint``
and ``endpointslice`` controllers.

For every Service with a selector: an ``Endpoints`` object named like the Service (ready pods
under ``addresses``, the others under ``notReadyAddresses``, unless
``publishNotReadyAddresses``) and EndpointSlices ``<svc>-<rand5>`` (every pod with an IP,
terminating ones included, each with ``ready``/``serving``/``terminating`` conditions).
Target ports are resolved per pod (named container ports), so pods exposing different port
numbers land in different subsets / slices. Nothing is written when nothing changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from opkit import errors
from opkit import labels as _labels
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result
from opkit.manager import Manager

from . import _common as c
from ._base import BuiltinController

__all__ = [
    "HEADLESS_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MAX_ENDPOINTS_PER_SLICE",
    "SERVICE_NAME_LABEL",
    "SKIP_MIRROR_LABEL",
    "EndpointsController",
]

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MAX_ENDPOINTS_PER_SLICE = 100

PortKey = tuple[tuple[str, int, str, str], ...]


def _is_headless(svc: Mapping[str, Any]) -> bool:
    return c.spec_of(svc).get("clusterIP") == "None"


def _find_port(pod: Mapping[str, Any], svc_port: Mapping[str, Any]) -> int | None:
    """``podutil.FindPort``: a number is used as is; a name is looked up in the pod's container
    ports (and restartable init containers) with the same protocol."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str) or not target:
        return None
    protocol = svc_port.get("protocol") or "TCP"
    spec = c.spec_of(pod)
    containers = list(spec.get("containers") or ())
    containers += [
        ic for ic in spec.get("initContainers") or () if ic.get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return c.as_int(port.get("containerPort")) or None
    return None


def _pod_ports(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> PortKey:
    out = []
    for svc_port in c.spec_of(svc).get("ports") or ():
        number = _find_port(pod, svc_port)
        if number is None:
            continue
        out.append(
            (
                str(svc_port.get("name") or ""),
                number,
                str(svc_port.get("protocol") or "TCP"),
                str(svc_port.get("appProtocol") or ""),
            )
        )
    return tuple(sorted(out))


def _port_dicts(key: PortKey) -> list[Obj]:
    ports = []
    for name, number, protocol, app_protocol in key:
        port: Obj = {}
        if name:
            port["name"] = name
        port["port"] = number
        port["protocol"] = protocol
        if app_protocol:
            port["appProtocol"] = app_protocol
        ports.append(port)
    return ports


def _should_include(pod: Mapping[str, Any], include_terminating: bool) -> bool:
    """``endpointutil.ShouldPodBeInEndpoints``."""
    status = c.status_of(pod)
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    if not include_terminating and c.is_deleting(pod):
        return False
    policy = c.spec_of(pod).get("restartPolicy") or "Always"
    phase = c.phase_of(pod)
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def _pod_ipv4(pod: Mapping[str, Any]) -> str:
    status = c.status_of(pod)
    ips = [str(p.get("ip")) for p in status.get("podIPs") or () if isinstance(p, Mapping)]
    ips = ips or [str(status.get("podIP") or "")]
    return next((ip for ip in ips if ip and ":" not in ip), "")


def _target_ref(pod: Mapping[str, Any]) -> Obj:
    return {
        "kind": "Pod",
        "namespace": c.namespace_of(pod),
        "name": c.name_of(pod),
        "uid": c.uid_of(pod),
    }


def _hostname(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> str:
    """``ShouldSetHostname``: the pod's hostname when its subdomain is this Service."""
    spec = c.spec_of(pod)
    if (
        spec.get("hostname")
        and spec.get("subdomain") == c.name_of(svc)
        and c.namespace_of(pod) == c.namespace_of(svc)
    ):
        return str(spec["hostname"])
    return ""


class EndpointsController(BuiltinController):
    """Maintains Endpoints and EndpointSlices of selector Services."""

    name = "endpoints"

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        super().__init__(client, clock=clock)
        self._endpoints = client.resource("v1", "Endpoints")
        self._slices = client.resource("discovery.k8s.io/v1", "EndpointSlice")
        self._creates = c.Expectations(self.clock)

    def setup(self, manager: Manager) -> None:
        ctrl = manager.controller(
            "endpoints",
            self,
            for_=("v1", "Service"),
            watches=[
                (("v1", "Pod"), self._pod_to_services),
                (("v1", "Endpoints"), self._same_name),
                (("discovery.k8s.io/v1", "EndpointSlice"), self._slice_to_service),
            ],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _pod_to_services(self, pod: Obj) -> list[Request]:
        ns = c.namespace_of(pod)
        pod_labels = c.labels_of(pod)
        out = []
        for svc in self.cache.list("v1", "Service", ns, copy=False):
            selector = c.spec_of(svc).get("selector")
            if selector and _labels.from_set(selector).matches(pod_labels):
                out.append(Request(ns, c.name_of(svc)))
        return out

    @staticmethod
    def _same_name(obj: Obj) -> list[Request]:
        return [Request(c.namespace_of(obj), c.name_of(obj))]

    def _slice_to_service(self, obj: Obj) -> list[Request]:
        self._creates.observe(c.key_of(obj))
        svc = c.labels_of(obj).get(SERVICE_NAME_LABEL)
        return [Request(c.namespace_of(obj), svc)] if svc else []

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        ns, name = request.namespace, request.name
        svc = self.cache.get("v1", "Service", ns, name, copy=False)
        if svc is None:
            self._creates.clear(request.key)
            # Only Endpoints this controller made (marked skip-mirror) go with their Service: a
            # cache that has not seen a brand-new Service yet must not cost a user's Endpoints.
            ep = self.cache.get("v1", "Endpoints", ns, name, copy=False)
            if ep is not None and c.labels_of(ep).get(SKIP_MIRROR_LABEL) == "true":
                c.delete_quietly(self._endpoints, ep)
            return None  # the slices are owned by the Service: the garbage collector has them
        spec = c.spec_of(svc)
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName" or c.is_deleting(svc):
            return None
        pods = self.cache.list("v1", "Pod", ns, _labels.from_set(selector), copy=False)
        self._sync_endpoints(svc, pods)
        self._sync_slices(svc, request.key, pods)
        return None

    # -- Endpoints ------------------------------------------------------------------------------

    def _sync_endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        tolerate = bool(c.spec_of(svc).get("publishNotReadyAddresses"))
        no_ports_ok = _is_headless(svc) and not c.spec_of(svc).get("ports")
        groups: dict[PortKey, tuple[list[Obj], list[Obj]]] = {}
        for pod in pods:
            if not _should_include(pod, tolerate):
                continue
            ip = _pod_ipv4(pod)
            if not ip:
                continue
            ports = _pod_ports(pod, svc)
            if not ports and not no_ports_ok:
                continue
            address: Obj = {"ip": ip}
            hostname = _hostname(pod, svc)
            if hostname:
                address["hostname"] = hostname
            if c.spec_of(pod).get("nodeName"):
                address["nodeName"] = c.spec_of(pod)["nodeName"]
            address["targetRef"] = _target_ref(pod)
            ready, not_ready = groups.setdefault(ports, ([], []))
            if tolerate or c.is_pod_ready(pod):
                ready.append(address)
            else:
                not_ready.append(address)
        subsets = []
        for key in sorted(groups):
            ready, not_ready = groups[key]
            subset: Obj = {}
            if ready:
                subset["addresses"] = sorted(ready, key=_address_order)
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
            if key:
                subset["ports"] = _port_dicts(key)
            subsets.append(subset)
        ep_labels = dict(c.labels_of(svc))
        ep_labels[SKIP_MIRROR_LABEL] = "true"
        if _is_headless(svc):
            ep_labels[HEADLESS_LABEL] = ""
        ns, name = c.namespace_of(svc), c.name_of(svc)
        live = self.cache.get("v1", "Endpoints", ns, name, copy=False)
        if live is None:
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": ep_labels},
            }
            if subsets:
                body["subsets"] = subsets
            # AlreadyExists: the cache is behind; the add event brings us back
            with contextlib.suppress(errors.AlreadyExists):
                self._endpoints.create(body, field_manager=c.FIELD_MANAGER)
            return
        if c.same(live.get("subsets"), subsets) and c.same(c.labels_of(live), ep_labels):
            return
        updated = {k: v for k, v in live.items() if k != "subsets"}
        updated["metadata"] = dict(c.meta(live))
        updated["metadata"]["labels"] = ep_labels
        if subsets:
            updated["subsets"] = subsets
        try:
            self._endpoints.update(updated, field_manager=c.FIELD_MANAGER)
        except errors.NotFound:
            return

    # -- EndpointSlices -------------------------------------------------------------------------

    def _sync_slices(self, svc: Obj, key: str, pods: list[Obj]) -> None:
        publish_not_ready = bool(c.spec_of(svc).get("publishNotReadyAddresses"))
        groups: dict[PortKey, list[Obj]] = {}
        for pod in pods:
            if not _should_include(pod, True):
                continue
            ip = _pod_ipv4(pod)
            if not ip:
                continue
            serving = c.is_pod_ready(pod)
            terminating = c.is_deleting(pod)
            endpoint: Obj = {
                "addresses": [ip],
                "conditions": {
                    "ready": publish_not_ready or (serving and not terminating),
                    "serving": serving,
                    "terminating": terminating,
                },
            }
            hostname = _hostname(pod, svc)
            if hostname:
                endpoint["hostname"] = hostname
            endpoint["targetRef"] = _target_ref(pod)
            if c.spec_of(pod).get("nodeName"):
                endpoint["nodeName"] = c.spec_of(pod)["nodeName"]
            groups.setdefault(_pod_ports(pod, svc), []).append(endpoint)

        desired: list[tuple[PortKey, list[Obj]]] = []
        for ports in sorted(groups):
            endpoints = sorted(groups[ports], key=_endpoint_order)
            for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
                desired.append((ports, endpoints[i : i + MAX_ENDPOINTS_PER_SLICE]))
        placeholder = not desired
        if placeholder:
            desired.append(((), []))

        ns, name = c.namespace_of(svc), c.name_of(svc)
        slice_labels = {
            k: v
            for k, v in c.labels_of(svc).items()
            if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
        }
        slice_labels[SERVICE_NAME_LABEL] = name
        slice_labels[MANAGED_BY_LABEL] = MANAGED_BY
        if _is_headless(svc):
            slice_labels[HEADLESS_LABEL] = ""
        existing = [
            s
            for s in self.cache.list(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                ns,
                {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
                copy=False,
            )
            if s.get("addressType", "IPv4") == "IPv4" and not c.is_deleting(s)
        ]

        def in_cache(slice_key: str) -> bool:
            return (
                self.cache.get(
                    "discovery.k8s.io/v1", "EndpointSlice", ns, slice_key.split("/", 1)[1]
                )
                is not None
            )

        if self._creates.pending(key, in_cache):
            return  # our last creations are not visible yet; their events bring us back

        owner = c.new_controller_ref(svc, "v1", "Service")
        unused = sorted(existing, key=c.name_of)
        for ports, endpoints in desired:
            match = next((s for s in unused if _slice_ports(s) == ports), None)
            if match is None:
                match = next((s for s in unused if placeholder or not s.get("endpoints")), None)
            body_ports = _port_dicts(ports)
            if match is not None:
                unused.remove(match)
                self._update_slice(match, slice_labels, owner, endpoints, body_ports)
                continue
            slice_name = c.generated_name(f"{name}-")
            body: Obj = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name,
                    "generateName": f"{name}-",
                    "namespace": ns,
                    "labels": slice_labels,
                    "ownerReferences": [owner],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
            }
            if body_ports:
                body["ports"] = body_ports
            self._creates.expect(key, f"{ns}/{slice_name}")
            try:
                self._slices.create(body, field_manager=c.FIELD_MANAGER)
            except BaseException:
                self._creates.forget(key, f"{ns}/{slice_name}")
                raise
        for leftover in unused:
            c.delete_quietly(self._slices, leftover)

    def _update_slice(
        self,
        live: Obj,
        slice_labels: dict[str, str],
        owner: Obj,
        endpoints: list[Obj],
        ports: list[Obj],
    ) -> None:
        live_refs = c.meta(live).get("ownerReferences") or []
        if (
            c.same(live.get("endpoints"), endpoints)
            and c.same(live.get("ports"), ports)
            and c.same(c.labels_of(live), slice_labels)
            and c.same(live_refs, [owner])
        ):
            return
        updated = {k: v for k, v in live.items() if k not in ("endpoints", "ports")}
        updated["metadata"] = dict(c.meta(live))
        updated["metadata"]["labels"] = slice_labels
        updated["metadata"]["ownerReferences"] = [owner]
        updated["endpoints"] = endpoints
        if ports:
            updated["ports"] = ports
        try:
            self._slices.update(updated, field_manager=c.FIELD_MANAGER)
        except errors.NotFound:
            return


def _slice_ports(obj: Mapping[str, Any]) -> PortKey:
    out = []
    for port in obj.get("ports") or ():
        out.append(
            (
                str(port.get("name") or ""),
                c.as_int(port.get("port")),
                str(port.get("protocol") or "TCP"),
                str(port.get("appProtocol") or ""),
            )
        )
    return tuple(sorted(out))


def _address_order(address: Obj) -> tuple[tuple[int, ...], str]:
    return (_ip_key(str(address.get("ip") or "")), str((address.get("targetRef") or {}).get("uid")))


def _endpoint_order(endpoint: Obj) -> tuple[tuple[int, ...], str]:
    ip = str((endpoint.get("addresses") or [""])[0])
    return (_ip_key(ip), str((endpoint.get("targetRef") or {}).get("name")))


def _ip_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ip.split("."))
    except ValueError:
        return ()
