"""Server-side behaviour of built-in kinds: defaulting, status reset, IP allocation.

A real API server fills in defaults (CTRL-11), allocates Service IPs (CTRL-5) and resets
status on create (STAT-2). Operators compare desired and live specs, so these must match
upstream closely enough that a controller that converges on a real cluster also converges
here. Validation lives in ``_builtin_validation`` and the Event views in ``_event_views``;
this module re-exports both, so it remains the one entry point for built-in kinds.
"""

from __future__ import annotations

import ipaddress
import threading
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from opkit._validation import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
)

from ._builtin_common import (
    as_dict,
    as_int,
    as_list,
    dicts_in,
    format_micro_time,
    format_time,
    label_selector_string,
    parse_time,
    scale_selector,
)
from ._builtin_validation import validate
from ._event_views import default_core_event, event_core_to_v1, event_v1_to_core
from ._fielderrors import FieldError
from ._status import internal_error, invalid
from ._types import ResourceType

__all__ = [
    "IPAllocator",
    "apply_defaults",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "event_core_to_v1",
    "event_v1_to_core",
    "format_micro_time",
    "format_time",
    "label_selector_string",
    "label_value_errors",
    "parse_time",
    "qualified_name_errors",
    "quantity_from_number",
    "release_allocations",
    "reset_status_on_create",
    "scale_selector",
    "validate",
]

Obj = dict[str, Any]


def _norm_time(value: str) -> str:
    dt = parse_time(value)
    return format_time(dt) if dt is not None else value


def _norm_micro(value: str) -> str:
    dt = parse_time(value)
    return format_micro_time(dt) if dt is not None else value


# metav1.Time fields of built-in kinds, by JSON name.
_TIME_KEYS = frozenset(
    {
        "creationTimestamp",
        "deletionTimestamp",
        "lastTransitionTime",
        "lastProbeTime",
        "lastUpdateTime",
        "lastHeartbeatTime",
        "startTime",
        "startedAt",
        "finishedAt",
        "firstTimestamp",
        "lastTimestamp",
        "completionTime",
        "lastScheduleTime",
        "lastSuccessfulTime",
        "lastPhaseTransitionTime",
    }
)
# metav1.MicroTime fields.
_MICRO_KEYS = frozenset({"acquireTime", "renewTime", "eventTime", "lastObservedTime"})


# ---------------------------------------------------------------------------------------
# Quantities (META-10)

_QUANTITY_MAPS = frozenset(
    {"requests", "limits", "capacity", "allocatable", "overhead", "allocatedResources"}
)
_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P"}
_DECIMAL_SUFFIX[18] = "E"


def quantity_from_number(number: float) -> str:
    """Render a JSON number as the canonical decimal-SI quantity string the server returns.

    ``1`` -> ``"1"``, ``0.5`` -> ``"500m"``, ``1000`` -> ``"1k"``, ``1500`` -> ``"1500"``.
    """
    try:
        dec = Decimal(repr(number)) if isinstance(number, float) else Decimal(int(number))
    except (InvalidOperation, ValueError, OverflowError):
        return str(number)
    if not dec.is_finite():
        return str(number)
    if dec == 0:
        return "0"
    negative = dec < 0
    dec = abs(dec)
    # Quantities carry nano precision; anything finer rounds up.
    if int(dec.as_tuple().exponent) < -9:
        dec = (dec * Decimal(10**9)).to_integral_value(ROUND_CEILING) / Decimal(10**9)
    _, digits, exp = dec.normalize().as_tuple()
    mantissa = int("".join(str(d) for d in digits))
    exponent = int(exp)
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    suffix = _DECIMAL_SUFFIX.get(exponent)
    if suffix is None:
        suffix = f"e{exponent}"
    return f"{'-' if negative else ''}{mantissa}{suffix}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _normalize_wire(node: Any) -> None:
    """Quantities to strings and timestamps to their canonical form, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if key in _TIME_KEYS:
                    node[key] = _norm_time(value)
                elif key in _MICRO_KEYS:
                    node[key] = _norm_micro(value)
            elif isinstance(value, dict):
                if key in _QUANTITY_MAPS:
                    for qk, qv in value.items():
                        if _is_number(qv):
                            value[qk] = quantity_from_number(qv)
                elif key == "disruptedPods":
                    for pk, pv in value.items():
                        if isinstance(pv, str):
                            value[pk] = _norm_time(pv)
                _normalize_wire(value)
            elif isinstance(value, list):
                if key == "managedFields":
                    for entry in dicts_in(value):
                        if isinstance(entry.get("time"), str):
                            entry["time"] = _norm_time(entry["time"])
                for item in value:
                    if isinstance(item, dict | list):
                        _normalize_wire(item)
            elif key == "sizeLimit" and _is_number(value):
                node[key] = quantity_from_number(value)
    elif isinstance(node, list):
        for item in node:
            _normalize_wire(item)


# ---------------------------------------------------------------------------------------
# IP / node port allocation (CTRL-5)


class _Range:
    """Numbers ``first..last`` handed out in turn (wrapping), each held by an owner.

    Not thread-safe: :class:`IPAllocator` holds its lock around every call.
    """

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.last = last
        self._next = first
        self._held: dict[int, str] = {}

    def _after(self, n: int) -> int:
        return n + 1 if n < self.last else self.first

    def allocate(self, owner: str, dry_run: bool) -> int:
        candidate = self._next
        for _ in range(self.last - self.first + 1):
            if candidate not in self._held:
                if not dry_run:
                    self._held[candidate] = owner
                    self._next = self._after(candidate)
                return candidate
            candidate = self._after(candidate)
        raise RuntimeError("range is full")

    def reserve(self, n: int, owner: str, dry_run: bool) -> bool:
        """Claim ``n`` (in range); False if another owner holds it."""
        holder = self._held.get(n)
        if holder is not None and not (owner and holder == owner):
            return False
        if not dry_run:
            self._held[n] = owner
        return True

    def release(self, n: int) -> None:
        self._held.pop(n, None)

    def __contains__(self, n: int) -> bool:
        return n in self._held


class IPAllocator:
    """Hands out Service cluster IPs from 10.96.0.0/12 and node ports from 30000-32767.

    Allocation is sequential (deterministic in tests). Each address remembers its owner
    (``namespace/name``) so re-reserving an address for the same Service is not a conflict.
    """

    NODE_PORT_MIN = 30000
    NODE_PORT_MAX = 32767

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._net = ipaddress.IPv4Network(cidr)
        self._lock = threading.Lock()
        self._ips = _Range(int(self._net.network_address) + 1, int(self._net.broadcast_address) - 1)
        self._ports = _Range(self.NODE_PORT_MIN, self.NODE_PORT_MAX)

    @property
    def cidr(self) -> str:
        return str(self._net)

    def contains(self, ip: str) -> bool:
        addr = _ip_number(ip)
        return addr is not None and self._ips.first <= addr <= self._ips.last

    def allocate(self, owner: str = "", *, dry_run: bool = False) -> str:
        """The next free address; ``dry_run`` only peeks. Raises RuntimeError when full."""
        with self._lock:
            return str(ipaddress.IPv4Address(self._ips.allocate(owner, dry_run)))

    def reserve(self, ip: str, owner: str = "", *, dry_run: bool = False) -> bool:
        """Claim a specific address; False if it is outside the range or taken by another."""
        if not self.contains(ip):
            return False
        with self._lock:
            return self._ips.reserve(int(ipaddress.IPv4Address(ip)), owner, dry_run)

    def release(self, ip: str) -> None:
        addr = _ip_number(ip)
        if addr is not None:
            with self._lock:
                self._ips.release(addr)

    def in_use(self, ip: str) -> bool:
        addr = _ip_number(ip)
        if addr is None:
            return False
        with self._lock:
            return addr in self._ips

    def allocate_node_port(self, owner: str = "", *, dry_run: bool = False) -> int:
        with self._lock:
            return self._ports.allocate(owner, dry_run)

    def reserve_node_port(self, port: int, owner: str = "", *, dry_run: bool = False) -> bool:
        if not self.NODE_PORT_MIN <= port <= self.NODE_PORT_MAX:
            return False
        with self._lock:
            return self._ports.reserve(port, owner, dry_run)

    def release_node_port(self, port: int) -> None:
        with self._lock:
            self._ports.release(port)


def _ip_number(ip: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(ip))
    except ValueError:
        return None


def _owner(obj: Obj) -> str:
    meta = as_dict(obj.get("metadata"))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _service_ips(obj: Obj) -> set[str]:
    spec = as_dict(obj.get("spec"))
    ips = {str(ip) for ip in as_list(spec.get("clusterIPs")) if isinstance(ip, str)}
    if isinstance(spec.get("clusterIP"), str):
        ips.add(spec["clusterIP"])
    return {ip for ip in ips if ip and ip != "None"}


def _service_node_ports(obj: Obj) -> set[int]:
    ports = set()
    for p in dicts_in(as_dict(obj.get("spec")).get("ports")):
        n = as_int(p.get("nodePort"))
        if n:
            ports.add(n)
    hc = as_int(as_dict(obj.get("spec")).get("healthCheckNodePort"))
    if hc:
        ports.add(hc)
    return ports


def release_allocations(
    rt: ResourceType, obj: Obj, *, ip_alloc: IPAllocator, keep: Obj | None = None
) -> None:
    """Give back the cluster IPs and node ports of a Service, except those ``keep`` uses.

    Call on delete (``keep=None``), when a create fails after :func:`apply_defaults`, when an
    update fails (``keep=old``) and after a successful update (``obj=old, keep=new``).
    """
    if rt.group != "" or rt.kind != "Service":
        return
    kept_ips = _service_ips(keep) if keep else set()
    kept_ports = _service_node_ports(keep) if keep else set()
    for ip in _service_ips(obj) - kept_ips:
        ip_alloc.release(ip)
    for port in _service_node_ports(obj) - kept_ports:
        ip_alloc.release_node_port(port)


# ---------------------------------------------------------------------------------------
# Defaulting (CTRL-11, CTRL-5)


def _image_pull_policy(image: str) -> str:
    ref = image
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    last = ref.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_handler(probe)
    if isinstance(probe.get("grpc"), dict):
        probe["grpc"].setdefault("service", "")


def _default_handler(handler: Any) -> None:
    if not isinstance(handler, dict):
        return
    http = handler.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_field_ref(item: Any) -> None:
    ref = as_dict(item).get("fieldRef")
    if isinstance(ref, dict):
        ref.setdefault("apiVersion", "v1")


def _default_container(c: Obj, host_network: bool) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy") and isinstance(c.get("image"), str):
        c["imagePullPolicy"] = _image_pull_policy(c["image"])
    c.setdefault("resources", {})
    for port in dicts_in(c.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and not port.get("hostPort") and "containerPort" in port:
            port["hostPort"] = port["containerPort"]
    for env in dicts_in(c.get("env")):
        _default_field_ref(as_dict(env.get("valueFrom")))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = as_dict(c.get("lifecycle"))
    _default_handler(lifecycle.get("postStart"))
    _default_handler(lifecycle.get("preStop"))


_VOLUME_SOURCES = frozenset(
    {
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    }
)


def _default_volume(v: Obj) -> None:
    if not any(k in v for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict):
            src.setdefault("defaultMode", 420)
    for item in dicts_in(as_dict(v.get("downwardAPI")).get("items")):
        _default_field_ref(item)
    for source in dicts_in(as_dict(v.get("projected")).get("sources")):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        for item in dicts_in(as_dict(source.get("downwardAPI")).get("items")):
            _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    template = as_dict(as_dict(v.get("ephemeral")).get("volumeClaimTemplate"))
    if isinstance(template.get("spec"), dict):
        template["spec"].setdefault("volumeMode", "Filesystem")


_NOT_READY_TOLERATIONS = (
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
)


def _default_pod_spec(spec: Obj, *, is_pod: bool) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if is_pod:
        # Admission plugins (ServiceAccount, Priority, DefaultTolerationSeconds) on real Pods.
        spec.setdefault("serviceAccountName", "default")
        if not spec.get("priorityClassName"):
            spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        if isinstance(tolerations, list):
            for key in _NOT_READY_TOLERATIONS:
                if not any(
                    isinstance(t, dict)
                    and t.get("key") in (key, None, "")
                    and t.get("effect") in ("NoExecute", None, "")
                    and (t.get("key") == key or t.get("operator") == "Exists")
                    for t in tolerations
                ):
                    tolerations.append(
                        {
                            "key": key,
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": 300,
                        }
                    )
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in dicts_in(spec.get(key)):
            _default_container(c, host_network)
    for v in dicts_in(spec.get("volumes")):
        _default_volume(v)


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _default_pod_spec(template["spec"], is_pod=False)


def _default_pvc_spec(spec: Obj) -> None:
    spec.setdefault("volumeMode", "Filesystem")


def _default_statefulset(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            rolling.setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(policy, dict):
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
    _default_template(spec)
    for claim in dicts_in(spec.get("volumeClaimTemplates")):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        if isinstance(claim.get("spec"), dict):
            _default_pvc_spec(claim["spec"])
        status = claim.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("phase", "Pending")


def _default_deployment(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replicaset(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        _default_template(spec)


def _default_daemonset(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_job(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if "backoffLimit" not in spec:
        spec["backoffLimit"] = 2147483647 if "backoffLimitPerIndex" in spec else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault(
        "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    )
    template = as_dict(spec.get("template"))
    meta = obj.setdefault("metadata", {})
    template_labels = as_dict(template.get("metadata")).get("labels")
    if isinstance(meta, dict) and isinstance(template_labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    uid = as_dict(obj.get("metadata")).get("uid")
    name = as_dict(obj.get("metadata")).get("name")
    if uid and spec.get("manualSelector") is not True and "selector" not in spec:
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tmeta = template.setdefault("metadata", {})
        labels = tmeta.setdefault("labels", {})
        if isinstance(labels, dict):
            labels.setdefault("batch.kubernetes.io/controller-uid", uid)
            labels.setdefault("batch.kubernetes.io/job-name", name)
            labels.setdefault("controller-uid", uid)
            labels.setdefault("job-name", name)
    _default_template(spec)


def _needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _default_service(
    obj: Obj, *, ip_alloc: IPAllocator | None, old: Obj | None, dry_run: bool
) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    svc_type = spec["type"]
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        if isinstance(config, dict):
            client = config.setdefault("clientIP", {})
            if isinstance(client, dict):
                client.setdefault("timeoutSeconds", 10800)
    for port in dicts_in(spec.get("ports")):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    externally = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if svc_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if svc_type == "ExternalName":
        return

    old_spec = as_dict(as_dict(old).get("spec")) if old else {}
    if old and old_spec.get("type") != "ExternalName":
        # An update that omits allocated values keeps the old ones (patchAllocatedValues).
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        # normalizeClusterIPs: a client that changed only the singular field meant both
        # (validation then refuses the change of an allocated IP).
        if spec.get("clusterIP") != old_spec.get("clusterIP") and spec.get(
            "clusterIPs"
        ) == old_spec.get("clusterIPs"):
            if spec.get("clusterIP"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            else:
                spec.pop("clusterIPs", None)
        if _needs_node_ports(spec) and _needs_node_ports(old_spec):
            by_name = {
                p.get("name", ""): p.get("nodePort")
                for p in dicts_in(old_spec.get("ports"))
                if p.get("nodePort")
            }
            used = _service_node_ports(obj)
            for port in dicts_in(spec.get("ports")):
                if not port.get("nodePort"):
                    previous = by_name.get(port.get("name", ""))
                    if previous and previous not in used:
                        port["nodePort"] = previous

    headless = spec.get("clusterIP") == "None"
    if "ipFamilyPolicy" not in spec:
        spec["ipFamilyPolicy"] = (
            "RequireDualStack" if headless and not spec.get("selector") else "SingleStack"
        )
    spec.setdefault("ipFamilies", ["IPv4"])

    if ip_alloc is None:
        if headless:
            spec.setdefault("clusterIPs", ["None"])
        elif spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        return
    _allocate_service(obj, spec, ip_alloc=ip_alloc, old_spec=old_spec, dry_run=dry_run)


def _allocate_service(
    obj: Obj, spec: Obj, *, ip_alloc: IPAllocator, old_spec: Obj, dry_run: bool
) -> None:
    owner = _owner(obj)
    old_ips = {ip for ip in [old_spec.get("clusterIP"), *as_list(old_spec.get("clusterIPs"))] if ip}
    old_ports = {as_int(p.get("nodePort")) for p in dicts_in(old_spec.get("ports"))}
    taken_ips: list[str] = []
    taken_ports: list[int] = []
    errors: list[FieldError] = []

    def rollback() -> None:
        if dry_run:
            return
        for ip in taken_ips:
            ip_alloc.release(ip)
        for port in taken_ports:
            ip_alloc.release_node_port(port)

    try:
        ip = spec.get("clusterIP") or next(iter(as_list(spec.get("clusterIPs"))), "")
        if ip == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        elif not ip:
            ip = ip_alloc.allocate(owner, dry_run=dry_run)
            taken_ips.append(ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        else:
            spec["clusterIP"] = ip
            if not spec.get("clusterIPs"):
                spec["clusterIPs"] = [ip]
            if ip not in old_ips:
                if not ip_alloc.contains(str(ip)):
                    errors.append(
                        FieldError.invalid(
                            "spec.clusterIPs",
                            spec["clusterIPs"],
                            f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the "
                            f"valid range. The range of valid IPs is {ip_alloc.cidr}",
                        )
                    )
                elif not ip_alloc.reserve(str(ip), owner, dry_run=dry_run):
                    errors.append(
                        FieldError.invalid(
                            "spec.clusterIPs",
                            spec["clusterIPs"],
                            f"failed to allocate IP {ip}: provided IP is already allocated",
                        )
                    )
                else:
                    taken_ips.append(str(ip))
        if _needs_node_ports(spec):
            for i, port in enumerate(dicts_in(spec.get("ports"))):
                wanted = as_int(port.get("nodePort"))
                if not wanted:
                    n = ip_alloc.allocate_node_port(owner, dry_run=dry_run)
                    taken_ports.append(n)
                    port["nodePort"] = n
                elif wanted not in old_ports and not ip_alloc.reserve_node_port(
                    wanted, owner, dry_run=dry_run
                ):
                    path = f"spec.ports[{i}].nodePort"
                    if not IPAllocator.NODE_PORT_MIN <= wanted <= IPAllocator.NODE_PORT_MAX:
                        detail = (
                            "provided port is not in the valid range. The range of valid "
                            f"ports is {IPAllocator.NODE_PORT_MIN}-{IPAllocator.NODE_PORT_MAX}"
                        )
                    else:
                        detail = "provided port is already allocated"
                    errors.append(FieldError.invalid(path, wanted, detail))
                elif wanted not in old_ports:
                    taken_ports.append(wanted)
    except RuntimeError as exc:
        rollback()
        raise internal_error(f"failed to allocate a service IP or node port: {exc}") from exc
    if errors:
        rollback()
        meta = as_dict(obj.get("metadata"))
        raise invalid("Service", "", str(meta.get("name", "")), errors)


def _default_namespace(obj: Obj, old: Obj | None) -> None:
    meta = obj.setdefault("metadata", {})
    if isinstance(meta, dict) and meta.get("name"):
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
    if old is None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            finalizers = spec.get("finalizers")
            if not isinstance(finalizers, list):
                finalizers = spec["finalizers"] = []
            if "kubernetes" not in finalizers:
                finalizers.append("kubernetes")


def apply_defaults(
    rt: ResourceType,
    obj: Obj,
    *,
    ip_alloc: IPAllocator | None = None,
    old: Obj | None = None,
    dry_run: bool = False,
) -> None:
    """Fill in server-side defaults of a built-in object, in place.

    Call on every create and update of the main resource (``old`` = the stored object on
    update, so Services keep their allocated IPs and node ports). Also normalises
    quantities and timestamps. For Services this allocates from ``ip_alloc``; ``dry_run``
    allocates without claiming. Raises :class:`APIError` (422) when a requested IP or node
    port is taken — after undoing its own allocations.
    """
    if rt.is_custom or not isinstance(obj, dict):
        return
    key = (rt.group, rt.kind)
    spec = obj.get("spec")
    if key == ("", "Pod"):
        if isinstance(spec, dict):
            _default_pod_spec(spec, is_pod=True)
    elif key == ("apps", "StatefulSet"):
        _default_statefulset(obj)
    elif key == ("apps", "Deployment"):
        _default_deployment(obj)
    elif key == ("apps", "ReplicaSet"):
        _default_replicaset(obj)
    elif key == ("apps", "DaemonSet"):
        _default_daemonset(obj)
    elif key == ("batch", "Job"):
        _default_job(obj)
    elif key == ("", "Service"):
        _default_service(obj, ip_alloc=ip_alloc, old=old, dry_run=dry_run)
    elif key == ("", "PersistentVolumeClaim"):
        if isinstance(spec, dict):
            _default_pvc_spec(spec)
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("phase", "Pending")
    elif key == ("", "PersistentVolume"):
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("phase", "Pending")
    elif key == ("", "Secret"):
        if not obj.get("type"):
            obj["type"] = "Opaque"
    elif key == ("", "Namespace"):
        _default_namespace(obj, old)
    elif key == ("", "Node"):
        status = as_dict(obj.get("status"))
        if isinstance(status.get("capacity"), dict) and "allocatable" not in status:
            status["allocatable"] = dict(status["capacity"])
    elif key == ("", "Endpoints"):
        for subset in dicts_in(obj.get("subsets")):
            for port in dicts_in(subset.get("ports")):
                port.setdefault("protocol", "TCP")
    elif key == ("discovery.k8s.io", "EndpointSlice"):
        for port in dicts_in(obj.get("ports")):
            port.setdefault("protocol", "TCP")
    elif key == ("", "Event"):
        default_core_event(obj)
    elif rt.group == "rbac.authorization.k8s.io" and rt.kind.endswith("Binding"):
        for subject in dicts_in(obj.get("subjects")):
            if "apiGroup" not in subject:
                subject["apiGroup"] = (
                    "" if subject.get("kind") == "ServiceAccount" else "rbac.authorization.k8s.io"
                )
    if key == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        # The spec holds arbitrary schemas ("requests", "maxItems", ...): leave it alone.
        for part in ("metadata", "status"):
            _normalize_wire(obj.get(part))
    else:
        _normalize_wire(obj)


# ---------------------------------------------------------------------------------------
# Status reset on create (STAT-2)


def _qos_class(spec: Obj) -> str:
    containers = dicts_in(spec.get("containers")) + dicts_in(spec.get("initContainers"))
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    any_set = False
    guaranteed = True
    for c in containers:
        res = as_dict(c.get("resources"))
        req = {k: v for k, v in as_dict(res.get("requests")).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in as_dict(res.get("limits")).items() if k in ("cpu", "memory")}
        if req or lim:
            any_set = True
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
        for k, v in req.items():
            if str(lim.get(k, v)) != str(v):
                guaranteed = False
        requests.update(req)
        limits.update(lim)
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def reset_status_on_create(rt: ResourceType, obj: Obj) -> None:
    """What the create strategies do to ``status``: reset it, keeping required zeros."""
    if rt.is_custom:
        if rt.has_status:
            obj.pop("status", None)
        return
    key = (rt.group, rt.kind)
    if key == ("", "Pod"):
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(as_dict(obj.get("spec")))}
    elif key == ("apps", "StatefulSet"):
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
    elif key in (("apps", "Deployment"), ("batch", "Job")):
        obj["status"] = {}
    elif key == ("apps", "ReplicaSet"):
        obj["status"] = {"replicas": 0}
    elif key == ("apps", "DaemonSet"):
        obj["status"] = {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }
    elif key == ("", "Service"):
        obj["status"] = {"loadBalancer": {}}
    elif key in (("", "PersistentVolumeClaim"), ("", "PersistentVolume")):
        obj["status"] = {"phase": "Pending"}
    elif key == ("", "Namespace"):
        obj["status"] = {"phase": "Active"}
    elif key == ("policy", "PodDisruptionBudget"):
        obj["status"] = {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        }
