"""Server-side behaviour of built-in kinds: defaulting, status reset, validation, events.

A real API server fills in defaults (CTRL-11), allocates Service IPs (CTRL-5), resets status
on create (STAT-2) and rejects invalid objects (META-5, LEASE-1, EVT-2). Operators compare
desired and live specs, so these must match upstream closely enough that a controller that
converges on a real cluster also converges here.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

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


def _d(value: Any) -> Obj:
    """``value`` if it is a dict, else an empty dict (tolerate malformed input)."""
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[Obj]:
    return [v for v in _l(value) if isinstance(v, dict)]


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# ---------------------------------------------------------------------------------------
# Timestamps (META-7)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_time(text: str) -> datetime | None:
    """Parse RFC 3339 with any offset; naive times are taken as UTC. None if unparsable."""
    m = _RFC3339.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    micros = int((frac + "000000")[:6]) if frac else 0
    try:
        dt = datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError:
        return None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        dt = dt - offset if m.group(9) == "+" else dt + offset
    return dt


def format_time(dt: datetime) -> str:
    """metav1.Time wire form: whole seconds, ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(dt: datetime) -> str:
    """metav1.MicroTime wire form: six decimals, ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
                    for entry in _dicts(value):
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
# Label selectors


def _requirement_strings(sel: Obj) -> list[tuple[str, str]]:
    reqs: list[tuple[str, str]] = []
    for key, value in sorted(_d(sel.get("matchLabels")).items()):
        reqs.append((str(key), f"{key}={value}"))
    for expr in _dicts(sel.get("matchExpressions")):
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = sorted(str(v) for v in _l(expr.get("values")))
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    return reqs


def label_selector_string(sel: Any) -> str:
    """metav1.LabelSelector as the selector string ``LabelSelectorAsSelector`` prints."""
    if not isinstance(sel, dict):
        return ""
    reqs = _requirement_strings(sel)
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def _selector_matches(sel: Obj, labels: Obj) -> bool:
    for key, value in _d(sel.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in _dicts(sel.get("matchExpressions")):
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in _l(expr.get("values"))]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def scale_selector(obj: Obj, path: str | None) -> str:
    """``status.selector`` of a Scale: the string at ``path`` or a rendered LabelSelector."""
    if not path:
        return ""
    node: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return label_selector_string(node)
    return ""


# ---------------------------------------------------------------------------------------
# IP / node port allocation (CTRL-5)


class IPAllocator:
    """Hands out Service cluster IPs from 10.96.0.0/12 and node ports from 30000-32767.

    Allocation is sequential (deterministic in tests). Each address remembers its owner
    (``namespace/name``) so re-reserving an address for the same Service is not a conflict.
    """

    NODE_PORT_MIN = 30000
    NODE_PORT_MAX = 32767

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._net = ipaddress.IPv4Network(cidr)
        self._first = int(self._net.network_address) + 1
        self._last = int(self._net.broadcast_address) - 1
        self._lock = threading.Lock()
        self._ips: dict[int, str] = {}
        self._next_ip = self._first
        self._ports: dict[int, str] = {}
        self._next_port = self.NODE_PORT_MIN

    @property
    def cidr(self) -> str:
        return str(self._net)

    def contains(self, ip: str) -> bool:
        try:
            addr = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        return self._first <= addr <= self._last

    def allocate(self, owner: str = "", *, dry_run: bool = False) -> str:
        """The next free address; ``dry_run`` only peeks. Raises RuntimeError when full."""
        with self._lock:
            size = self._last - self._first + 1
            candidate = self._next_ip
            for _ in range(size):
                if candidate not in self._ips:
                    if not dry_run:
                        self._ips[candidate] = owner
                        self._next_ip = candidate + 1 if candidate < self._last else self._first
                    return str(ipaddress.IPv4Address(candidate))
                candidate = candidate + 1 if candidate < self._last else self._first
        raise RuntimeError("range is full")

    def reserve(self, ip: str, owner: str = "", *, dry_run: bool = False) -> bool:
        """Claim a specific address; False if it is outside the range or taken by another."""
        if not self.contains(ip):
            return False
        addr = int(ipaddress.IPv4Address(ip))
        with self._lock:
            holder = self._ips.get(addr)
            if holder is not None and not (owner and holder == owner):
                return False
            if not dry_run:
                self._ips[addr] = owner
            return True

    def release(self, ip: str) -> None:
        try:
            addr = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return
        with self._lock:
            self._ips.pop(addr, None)

    def in_use(self, ip: str) -> bool:
        try:
            addr = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        with self._lock:
            return addr in self._ips

    def allocate_node_port(self, owner: str = "", *, dry_run: bool = False) -> int:
        with self._lock:
            candidate = self._next_port
            for _ in range(self.NODE_PORT_MAX - self.NODE_PORT_MIN + 1):
                if candidate not in self._ports:
                    if not dry_run:
                        self._ports[candidate] = owner
                        self._next_port = (
                            candidate + 1 if candidate < self.NODE_PORT_MAX else self.NODE_PORT_MIN
                        )
                    return candidate
                candidate = candidate + 1 if candidate < self.NODE_PORT_MAX else self.NODE_PORT_MIN
        raise RuntimeError("range is full")

    def reserve_node_port(self, port: int, owner: str = "", *, dry_run: bool = False) -> bool:
        if not self.NODE_PORT_MIN <= port <= self.NODE_PORT_MAX:
            return False
        with self._lock:
            holder = self._ports.get(port)
            if holder is not None and not (owner and holder == owner):
                return False
            if not dry_run:
                self._ports[port] = owner
            return True

    def release_node_port(self, port: int) -> None:
        with self._lock:
            self._ports.pop(port, None)


def _owner(obj: Obj) -> str:
    meta = _d(obj.get("metadata"))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _service_ips(obj: Obj) -> set[str]:
    spec = _d(obj.get("spec"))
    ips = {str(ip) for ip in _l(spec.get("clusterIPs")) if isinstance(ip, str)}
    if isinstance(spec.get("clusterIP"), str):
        ips.add(spec["clusterIP"])
    return {ip for ip in ips if ip and ip != "None"}


def _service_node_ports(obj: Obj) -> set[int]:
    ports = set()
    for p in _dicts(_d(obj.get("spec")).get("ports")):
        n = _int(p.get("nodePort"))
        if n:
            ports.add(n)
    hc = _int(_d(obj.get("spec")).get("healthCheckNodePort"))
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
    ref = _d(item).get("fieldRef")
    if isinstance(ref, dict):
        ref.setdefault("apiVersion", "v1")


def _default_container(c: Obj, host_network: bool) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy") and isinstance(c.get("image"), str):
        c["imagePullPolicy"] = _image_pull_policy(c["image"])
    c.setdefault("resources", {})
    for port in _dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and not port.get("hostPort") and "containerPort" in port:
            port["hostPort"] = port["containerPort"]
    for env in _dicts(c.get("env")):
        _default_field_ref(_d(env.get("valueFrom")))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = _d(c.get("lifecycle"))
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
    for item in _dicts(_d(v.get("downwardAPI")).get("items")):
        _default_field_ref(item)
    for source in _dicts(_d(v.get("projected")).get("sources")):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        for item in _dicts(_d(source.get("downwardAPI")).get("items")):
            _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    template = _d(_d(v.get("ephemeral")).get("volumeClaimTemplate"))
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
        for c in _dicts(spec.get(key)):
            _default_container(c, host_network)
    for v in _dicts(spec.get("volumes")):
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
    for claim in _dicts(spec.get("volumeClaimTemplates")):
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
    template = _d(spec.get("template"))
    meta = obj.setdefault("metadata", {})
    template_labels = _d(template.get("metadata")).get("labels")
    if isinstance(meta, dict) and isinstance(template_labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    uid = _d(obj.get("metadata")).get("uid")
    name = _d(obj.get("metadata")).get("name")
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
    for port in _dicts(spec.get("ports")):
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

    old_spec = _d(_d(old).get("spec")) if old else {}
    if old and old_spec.get("type") != "ExternalName":
        # An update that omits allocated values keeps the old ones (patchAllocatedValues).
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        if _needs_node_ports(spec) and _needs_node_ports(old_spec):
            by_name = {
                p.get("name", ""): p.get("nodePort")
                for p in _dicts(old_spec.get("ports"))
                if p.get("nodePort")
            }
            used = _service_node_ports(obj)
            for port in _dicts(spec.get("ports")):
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
    old_ips = {ip for ip in [old_spec.get("clusterIP"), *_l(old_spec.get("clusterIPs"))] if ip}
    old_ports = {_int(p.get("nodePort")) for p in _dicts(old_spec.get("ports"))}
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
        ip = spec.get("clusterIP") or next(iter(_l(spec.get("clusterIPs"))), "")
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
            for i, port in enumerate(_dicts(spec.get("ports"))):
                wanted = _int(port.get("nodePort"))
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
        meta = _d(obj.get("metadata"))
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


def _default_core_event(obj: Obj) -> None:
    obj.setdefault("involvedObject", {})
    obj.setdefault("source", {})
    obj.setdefault("firstTimestamp", None)
    obj.setdefault("lastTimestamp", None)
    obj.setdefault("eventTime", None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


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
        status = _d(obj.get("status"))
        if isinstance(status.get("capacity"), dict) and "allocatable" not in status:
            status["allocatable"] = dict(status["capacity"])
    elif key == ("", "Endpoints"):
        for subset in _dicts(obj.get("subsets")):
            for port in _dicts(subset.get("ports")):
                port.setdefault("protocol", "TCP")
    elif key == ("discovery.k8s.io", "EndpointSlice"):
        for port in _dicts(obj.get("ports")):
            port.setdefault("protocol", "TCP")
    elif key == ("", "Event"):
        _default_core_event(obj)
    elif rt.group == "rbac.authorization.k8s.io" and rt.kind.endswith("Binding"):
        for subject in _dicts(obj.get("subjects")):
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
    containers = _dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    any_set = False
    guaranteed = True
    for c in containers:
        res = _d(c.get("resources"))
        req = {k: v for k, v in _d(res.get("requests")).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in _d(res.get("limits")).items() if k in ("cpu", "memory")}
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
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(_d(obj.get("spec")))}
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


# ---------------------------------------------------------------------------------------
# Validation (META-5, LEASE-1, EVT-2, basic required fields)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError wording, double spaces included."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_QUALIFIED_RE = re.compile(f"^{_QUALIFIED_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_IANA_SVC_RE = re.compile(r"^[-a-z0-9]+$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _DNS1035_RE.match(value):
        errs.append(_regex_error(_DNS1035_MSG, _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def _path_segment_errors(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QUALIFIED_RE.match(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def _config_key_errors(key: str) -> list[str]:
    errs = []
    if len(key) > 253:
        errs.append(_max_len(253))
    if not _CONFIG_KEY_RE.match(key):
        errs.append(
            _regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _name_rule(rt: ResourceType) -> Any:
    if rt.group == "" and rt.kind == "Namespace":
        return dns1123_label_errors
    if rt.group == "" and rt.kind == "Service":
        return dns1035_label_errors
    if rt.group == "rbac.authorization.k8s.io":
        return _path_segment_errors
    return dns1123_subdomain_errors


_ANNOTATIONS_MAX = 256 * 1024


def _validate_meta(rt: ResourceType, obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = _d(obj.get("metadata"))
    name = meta.get("name")
    check_name = (rt.group, rt.kind) != ("", "Event") and rt.group != "apiextensions.k8s.io"
    if check_name and isinstance(name, str) and name:
        errs.extend(FieldError.invalid("metadata.name", name, m) for m in _name_rule(rt)(name))
    labels = meta.get("labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            errs.extend(
                FieldError.invalid("metadata.labels", key, m) for m in qualified_name_errors(key)
            )
            if isinstance(value, str):
                errs.extend(
                    FieldError.invalid("metadata.labels", value, m)
                    for m in label_value_errors(value)
                )
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        total = 0
        for key, value in annotations.items():
            errs.extend(
                FieldError.invalid("metadata.annotations", key, m)
                for m in qualified_name_errors(str(key).lower())
            )
            total += len(str(key)) + len(str(value))
        if total > _ANNOTATIONS_MAX:
            errs.append(
                FieldError(
                    "FieldValueTooLong",
                    "metadata.annotations",
                    f"must have at most {_ANNOTATIONS_MAX} bytes",
                )
            )
    return errs


def _port_range(path: str, value: Any, errs: list[FieldError]) -> None:
    port = _int(value)
    if port is None or not 1 <= port <= 65535:
        errs.append(FieldError.invalid(path, value, "must be between 1 and 65535, inclusive"))


_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _validate_containers(spec: Obj, path: str, errs: list[FieldError]) -> None:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        errs.append(FieldError.required(f"{path}.containers"))
    volumes = {v.get("name") for v in _dicts(spec.get("volumes"))}
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(_dicts(spec.get(group))):
            cpath = f"{path}.{group}[{i}]"
            name = c.get("name")
            if not name:
                errs.append(FieldError.required(f"{cpath}.name"))
            elif isinstance(name, str):
                errs.extend(
                    FieldError.invalid(f"{cpath}.name", name, m) for m in dns1123_label_errors(name)
                )
                if name in seen:
                    errs.append(FieldError.duplicate(f"{cpath}.name", name))
                seen.add(name)
            if not c.get("image"):
                errs.append(FieldError.required(f"{cpath}.image"))
            for j, port in enumerate(_dicts(c.get("ports"))):
                ppath = f"{cpath}.ports[{j}]"
                if not port.get("containerPort"):
                    errs.append(FieldError.required(f"{ppath}.containerPort"))
                else:
                    _port_range(f"{ppath}.containerPort", port["containerPort"], errs)
                if port.get("protocol") not in (None, *_PROTOCOLS):
                    errs.append(
                        FieldError.not_supported(f"{ppath}.protocol", port["protocol"], _PROTOCOLS)
                    )
            for j, mount in enumerate(_dicts(c.get("volumeMounts"))):
                mname = mount.get("name")
                if not mname:
                    errs.append(FieldError.required(f"{cpath}.volumeMounts[{j}].name"))
                elif mname not in volumes:
                    errs.append(
                        FieldError(
                            "FieldValueNotFound", f"{cpath}.volumeMounts[{j}].name", "", mname
                        )
                    )
                if not mount.get("mountPath"):
                    errs.append(FieldError.required(f"{cpath}.volumeMounts[{j}].mountPath"))
    seen_volumes: set[str] = set()
    for i, v in enumerate(_dicts(spec.get("volumes"))):
        vname = v.get("name")
        if not vname:
            errs.append(FieldError.required(f"{path}.volumes[{i}].name"))
        elif isinstance(vname, str):
            if vname in seen_volumes:
                errs.append(FieldError.duplicate(f"{path}.volumes[{i}].name", vname))
            seen_volumes.add(vname)
    policy = spec.get("restartPolicy")
    if policy not in (None, "Always", "OnFailure", "Never"):
        errs.append(
            FieldError.not_supported(
                f"{path}.restartPolicy", policy, ["Always", "OnFailure", "Never"]
            )
        )


def _validate_pod(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required("spec.containers")]
    _validate_containers(spec, "spec", errs)
    return errs


def _validate_selector_and_template(
    spec: Obj, kind_word: str, errs: list[FieldError], *, restart_always: bool = True
) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(FieldError.required("spec.selector"))
        selector = None
    elif not _d(selector.get("matchLabels")) and not _l(selector.get("matchExpressions")):
        errs.append(
            FieldError.invalid(
                "spec.selector", selector, f"empty selector is invalid for {kind_word}"
            )
        )
        selector = None
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(FieldError.required("spec.template"))
        return
    labels = _d(_d(template.get("metadata")).get("labels"))
    if selector is not None and not _selector_matches(selector, labels):
        errs.append(
            FieldError.invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        errs.append(FieldError.required("spec.template.spec.containers"))
        return
    _validate_containers(pod_spec, "spec.template.spec", errs)
    policy = pod_spec.get("restartPolicy")
    if restart_always and policy not in (None, "Always"):
        errs.append(
            FieldError.not_supported("spec.template.spec.restartPolicy", policy, ["Always"])
        )


def _validate_replicas(spec: Obj, errs: list[FieldError]) -> None:
    replicas = spec.get("replicas")
    if replicas is not None and (_int(replicas) is None or replicas < 0):
        errs.append(
            FieldError.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        )


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _validate_statefulset(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = _d(obj.get("spec"))
    _validate_replicas(spec, errs)
    policy = spec.get("podManagementPolicy")
    if policy not in (None, "OrderedReady", "Parallel"):
        errs.append(
            FieldError.invalid(
                "spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"
            )
        )
    strategy = _d(spec.get("updateStrategy")).get("type")
    if strategy not in (None, "RollingUpdate", "OnDelete"):
        errs.append(
            FieldError.invalid(
                "spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"
            )
        )
    _validate_selector_and_template(spec, "statefulset", errs)
    if old is not None:
        old_spec = _d(old.get("spec"))
        frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if frozen_new != frozen_old:
            errs.append(
                FieldError.forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'revisionHistoryLimit', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )
            )
    return errs


def _immutable_selector(obj: Obj, old: Obj | None, errs: list[FieldError]) -> None:
    if old is None:
        return
    new_sel = _d(obj.get("spec")).get("selector")
    old_sel = _d(old.get("spec")).get("selector")
    if new_sel != old_sel:
        errs.append(FieldError.invalid("spec.selector", new_sel, "field is immutable"))


def _validate_apps(kind_word: str) -> Any:
    def check(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = _d(obj.get("spec"))
        if kind_word != "daemonset":
            _validate_replicas(spec, errs)
        _validate_selector_and_template(spec, kind_word, errs)
        _immutable_selector(obj, old, errs)
        return errs

    return check


def _validate_job(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = _d(obj.get("spec"))
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return [FieldError.required("spec.template")]
    _validate_containers(template["spec"], "spec.template.spec", errs)
    policy = template["spec"].get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(
            FieldError.not_supported(
                "spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]
            )
        )
    return errs


_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _validate_service(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = _d(obj.get("spec"))
    svc_type = spec.get("type", "ClusterIP")
    if svc_type not in _SERVICE_TYPES:
        errs.append(FieldError.not_supported("spec.type", svc_type, _SERVICE_TYPES))
    headless = spec.get("clusterIP") == "None"
    ports = _dicts(spec.get("ports"))
    if svc_type == "ExternalName":
        if not spec.get("externalName"):
            errs.append(FieldError.required("spec.externalName"))
        if spec.get("clusterIP"):
            errs.append(
                FieldError.forbidden("spec.clusterIP", "may not be set for ExternalName services")
            )
    elif not ports and not headless:
        errs.append(FieldError.required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(FieldError.required(f"{path}.name"))
        elif isinstance(name, str) and name:
            errs.extend(
                FieldError.invalid(f"{path}.name", name, m) for m in dns1123_label_errors(name)
            )
            if name in names:
                errs.append(FieldError.duplicate(f"{path}.name", name))
            names.add(name)
        _port_range(f"{path}.port", port.get("port"), errs)
        if port.get("protocol") not in (None, *_PROTOCOLS):
            errs.append(FieldError.not_supported(f"{path}.protocol", port["protocol"], _PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, str):
            if not (len(target) <= 15 and _IANA_SVC_RE.match(target)) or target.isdigit():
                errs.append(
                    FieldError.invalid(
                        f"{path}.targetPort",
                        target,
                        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    )
                )
        elif target is not None:
            _port_range(f"{path}.targetPort", target, errs)
        if port.get("nodePort") and svc_type in ("ClusterIP", "ExternalName"):
            errs.append(
                FieldError.forbidden(
                    f"{path}.nodePort", f"may not be used when `type` is '{svc_type}'"
                )
            )
    if old is not None:
        old_spec = _d(old.get("spec"))
        if "ExternalName" not in (svc_type, old_spec.get("type", "ClusterIP")):
            old_ips = _l(old_spec.get("clusterIPs"))
            new_ips = _l(spec.get("clusterIPs"))
            for i, ip in enumerate(old_ips):
                if i < len(new_ips) and new_ips[i] != ip:
                    errs.append(
                        FieldError.invalid(
                            f"spec.clusterIPs[{i}]", new_ips, "may not change once set"
                        )
                    )
    return errs


def _validate_lease(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = _d(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None:
        if _int(duration) is None:
            errs.append(
                FieldError.type_invalid("spec.leaseDurationSeconds", duration, "must be an integer")
            )
        elif duration <= 0:
            errs.append(
                FieldError.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
    transitions = spec.get("leaseTransitions")
    if transitions is not None:
        if _int(transitions) is None:
            errs.append(
                FieldError.type_invalid("spec.leaseTransitions", transitions, "must be an integer")
            )
        elif transitions < 0:
            errs.append(
                FieldError.invalid(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or parse_time(value) is None):
            errs.append(FieldError.invalid(f"spec.{key}", value, "must be an RFC 3339 date-time"))
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        errs.append(FieldError.type_invalid("spec.holderIdentity", holder, "must be a string"))
    return errs


_REASON_LIMIT = 128
_ACTION_LIMIT = 128
_INSTANCE_LIMIT = 128
_NOTE_LIMIT = 1024


def _legacy_event_errors(core: Obj) -> list[FieldError]:
    """Rules every event must pass, whichever API wrote it (``legacyValidateEvent``).

    Field paths use the internal (core) names, as upstream reports them.
    """
    errs: list[FieldError] = []
    namespace = str(_d(core.get("metadata")).get("namespace") or "")
    involved_ns = str(_d(core.get("involvedObject")).get("namespace") or "")
    mismatch = FieldError.invalid(
        "involvedObject.namespace", involved_ns, "does not match event.namespace"
    )
    if not core.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.append(mismatch)
        elif namespace != involved_ns:
            errs.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(mismatch)
        controller = str(core.get("reportingComponent") or "")
        if not controller:
            errs.append(FieldError.required("reportingController"))
        errs.extend(
            FieldError.invalid("reportingController", controller, m)
            for m in qualified_name_errors(controller)
        )
        instance = str(core.get("reportingInstance") or "")
        if not instance:
            errs.append(FieldError.required("reportingInstance"))
        if len(instance) > _INSTANCE_LIMIT:
            errs.append(
                FieldError.invalid(
                    "reportingInstance", "", f"can have at most {_INSTANCE_LIMIT} characters"
                )
            )
        for key, limit in (("action", _ACTION_LIMIT), ("reason", _REASON_LIMIT)):
            value = str(core.get(key) or "")
            if not value:
                errs.append(FieldError.required(key))
            if len(value) > limit:
                errs.append(FieldError.invalid(key, "", f"can have at most {limit} characters"))
        if len(str(core.get("message") or "")) > _NOTE_LIMIT:
            errs.append(
                FieldError.invalid("message", "", f"can have at most {_NOTE_LIMIT} characters")
            )
    if namespace:
        errs.extend(
            FieldError.invalid("namespace", namespace, m)
            for m in dns1123_subdomain_errors(namespace)
        )
    return errs


def _series_errors(core: Obj) -> list[FieldError]:
    series = core.get("series")
    if not isinstance(series, dict):
        return []
    errs = []
    count = _int(series.get("count"))
    if count is None or count < 2:
        errs.append(FieldError.invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errs.append(FieldError.required("series.lastObservedTime"))
    return errs


# Fields an update through events.k8s.io/v1 may not change (core names).
_EVENT_IMMUTABLE = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)


def _empty(value: Any) -> bool:
    return value in (None, "", 0, {}, [])


def _as_core_event(obj: Obj) -> Obj:
    is_v1 = obj.get("apiVersion") == "events.k8s.io/v1" or (
        "involvedObject" not in obj and "regarding" in obj
    )
    return event_v1_to_core(obj) if is_v1 else obj


def _validate_event_v1(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """``ValidateEventCreate``/``ValidateEventUpdate`` for the events.k8s.io/v1 API."""
    core = event_v1_to_core(obj)
    errs = _legacy_event_errors(core)
    if old is None:
        errs.extend(_series_errors(core))
        if not core.get("eventTime"):
            errs.append(FieldError.required("eventTime"))
        event_type = core.get("type")
        if event_type not in ("Normal", "Warning"):
            errs.append(FieldError.invalid("type", "", f"has invalid value: {event_type or ''}"))
        for key in ("firstTimestamp", "lastTimestamp", "count"):
            if core.get(key):
                errs.append(FieldError.invalid(key, "", "needs to be unset"))
        source = _d(core.get("source"))
        if source.get("component") or source.get("host"):
            errs.append(FieldError.invalid("source", "", "needs to be unset"))
        return errs
    old_core = _as_core_event(old)
    if core.get("series") != old_core.get("series"):
        errs.extend(_series_errors(core))
    for key in _EVENT_IMMUTABLE:
        new_value, old_value = core.get(key), old_core.get(key)
        if new_value != old_value and not (_empty(new_value) and _empty(old_value)):
            path = "reportingController" if key == "reportingComponent" else key
            errs.append(FieldError.invalid(path, new_value, "field is immutable"))
    return errs


def _validate_event_core(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    return _legacy_event_errors(obj)


def _validate_data_keys(obj: Obj, errs: list[FieldError]) -> None:
    for field in ("data", "binaryData", "stringData"):
        for key in _d(obj.get(field)):
            errs.extend(
                FieldError.invalid(f"{field}[{key}]", key, m) for m in _config_key_errors(str(key))
            )


def _immutable_data(
    obj: Obj, old: Obj | None, fields: tuple[str, ...], errs: list[FieldError]
) -> None:
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.append(FieldError.forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            errs.append(FieldError.forbidden(field, "field is immutable when `immutable` is set"))


def _validate_configmap(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    _validate_data_keys(obj, errs)
    overlap = set(_d(obj.get("data"))) & set(_d(obj.get("binaryData")))
    for key in sorted(overlap):
        errs.append(FieldError.invalid("data", key, "duplicate of key present in binaryData"))
    _immutable_data(obj, old, ("data", "binaryData"), errs)
    return errs


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
}


def _validate_secret(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    _validate_data_keys(obj, errs)
    keys = set(_d(obj.get("data"))) | set(_d(obj.get("stringData")))
    for key in _SECRET_REQUIRED_KEYS.get(str(obj.get("type") or ""), ()):
        if key not in keys:
            errs.append(FieldError.required(f"data[{key}]"))
    if old is not None and (old.get("type") or "Opaque") != (obj.get("type") or "Opaque"):
        errs.append(FieldError.invalid("type", obj.get("type"), "field is immutable"))
    _immutable_data(obj, old, ("data",), errs)
    return errs


def _validate_pdb(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = _d(obj.get("spec"))
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [
            FieldError.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
        ]
    return []


_VALIDATORS: dict[tuple[str, str], Any] = {
    ("", "Pod"): _validate_pod,
    ("", "Service"): _validate_service,
    ("", "ConfigMap"): _validate_configmap,
    ("", "Secret"): _validate_secret,
    ("", "Event"): _validate_event_core,
    ("events.k8s.io", "Event"): _validate_event_v1,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    ("apps", "StatefulSet"): _validate_statefulset,
    ("apps", "Deployment"): _validate_apps("deployment"),
    ("apps", "ReplicaSet"): _validate_apps("replicaset"),
    ("apps", "DaemonSet"): _validate_apps("daemonset"),
    ("batch", "Job"): _validate_job,
    ("policy", "PodDisruptionBudget"): _validate_pdb,
}


def validate(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """Field errors for a create (``old=None``) or update of a main-resource write.

    Covers object names and labels for every kind (custom resources too) and the per-kind
    rules of built-ins. Run it after :func:`apply_defaults`.
    """
    errs = _validate_meta(rt, obj)
    if not rt.is_custom:
        check = _VALIDATORS.get((rt.group, rt.kind))
        if check is not None:
            errs.extend(check(rt, obj, old))
    return errs


# ---------------------------------------------------------------------------------------
# Event views (EVT-1)

_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_TO_V1 = {v: k for k, v in _V1_TO_CORE.items()}
_SHARED_EVENT_FIELDS = (
    "eventTime",
    "series",
    "action",
    "reason",
    "related",
    "reportingInstance",
    "type",
)


def event_core_to_v1(obj: Obj) -> Obj:
    """core/v1 Event -> events.k8s.io/v1 Event (a new dict; ``obj`` is not changed).

    ``eventTime`` is required by events.k8s.io/v1 clients; legacy events without one show
    their first/last timestamp (or creation time) there instead.
    """
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    if "metadata" in obj:
        out["metadata"] = copy.deepcopy(obj["metadata"])
    for core_key, v1_key in _CORE_TO_V1.items():
        value = obj.get(core_key)
        if value in (None, "", 0) and core_key != "involvedObject":
            continue
        if core_key == "source" and not value:
            continue
        out[v1_key] = copy.deepcopy(value) if value is not None else {}
    for key in _SHARED_EVENT_FIELDS:
        value = obj.get(key)
        if value not in (None, ""):
            out[key] = copy.deepcopy(value)
    if not out.get("eventTime"):
        fallback = (
            obj.get("firstTimestamp")
            or obj.get("lastTimestamp")
            or _d(obj.get("metadata")).get("creationTimestamp")
        )
        parsed = parse_time(fallback) if isinstance(fallback, str) else None
        out["eventTime"] = format_micro_time(parsed) if parsed else None
    return out


def event_v1_to_core(obj: Obj) -> Obj:
    """events.k8s.io/v1 Event -> core/v1 Event in the shape the core API serializes."""
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    if "metadata" in obj:
        out["metadata"] = copy.deepcopy(obj["metadata"])
    for v1_key, core_key in _V1_TO_CORE.items():
        if v1_key in obj and obj[v1_key] is not None:
            out[core_key] = copy.deepcopy(obj[v1_key])
    for key in _SHARED_EVENT_FIELDS:
        if key in obj and obj[key] is not None:
            out[key] = copy.deepcopy(obj[key])
    _default_core_event(out)
    return out
