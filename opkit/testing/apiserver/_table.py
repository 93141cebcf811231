"""``meta.k8s.io/v1`` Table rendering (TABLE-1..3, CRD-10, WATCH-9).

``kubectl get`` asks the server for a Table and prints its cells verbatim, so the columns
here are what users see: the upstream printers' columns for built-in kinds and the
``additionalPrinterColumns`` of custom resources.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import _jsonpath
from ._builtin_common import label_selector_string, parse_time
from ._event_views import event_v1_to_core
from ._types import ResourceType

__all__ = [
    "column_definitions",
    "human_duration",
    "to_table",
    "to_watch_table",
]

Obj = dict[str, Any]
Row = Callable[[Obj, datetime], list[Any]]

INCLUDE_OBJECT = ("None", "Metadata", "Object")


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``: ``5s``, ``3m20s``, ``5h``, ``2d3h``, ``3y``."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _since(value: Any, now: datetime) -> str:
    """Age of a timestamp string, ``<unknown>`` when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return "<unknown>"
    parsed = parse_time(value)
    if parsed is None:
        return "<unknown>"
    return human_duration((now - parsed).total_seconds())


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _col(
    name: str, type_: str = "string", *, fmt: str = "", priority: int = 0, desc: str = ""
) -> Obj:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": desc,
        "priority": priority,
    }


_NAME = _col("Name", fmt="name", desc="Name of the object, unique within its namespace.")
_AGE = _col("Age", desc="Time since the object was created.")


def _meta(obj: Obj) -> Obj:
    return _d(obj.get("metadata"))


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


def _format_labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _template_containers(spec: Obj) -> list[str]:
    """The Containers and Images cells of a workload's pod template."""
    containers = _dicts(_d(_d(spec.get("template")).get("spec")).get("containers"))
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return [names, images]


def _selector(spec: Obj) -> str:
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        return "<none>"
    text = label_selector_string(sel)
    return text or "<none>"


def _wide_template(spec: Obj) -> list[Any]:
    """The cells of the ``_WIDE_TEMPLATE`` columns."""
    return [*_template_containers(spec), _selector(spec)]


# -- Pods -------------------------------------------------------------------------------


def _last_restart(status: Obj, current: datetime | None) -> datetime | None:
    parsed = _time(_d(_d(status.get("lastState")).get("terminated")).get("finishedAt"))
    if parsed is not None and (current is None or parsed > current):
        return parsed
    return current


def _exit_reason(terminated: Obj) -> str:
    if terminated.get("reason"):
        return str(terminated["reason"])
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{_int(terminated.get('exitCode'))}"


def _pod_row(pod: Obj, now: datetime) -> list[Any]:
    spec = _d(pod.get("spec"))
    status = _d(pod.get("status"))
    init_specs = _dicts(spec.get("initContainers"))
    total = len(_dicts(spec.get("containers")))
    total += sum(1 for c in init_specs if c.get("restartPolicy") == "Always")
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    reason = str(status.get("reason") or status.get("phase") or "")
    conditions = {c.get("type"): c.get("status") for c in _dicts(status.get("conditions"))}

    initializing = False
    init_statuses = _dicts(status.get("initContainerStatuses"))
    for i, cs in enumerate(init_statuses):
        restarts += _int(cs.get("restartCount"))
        last_restart = _last_restart(cs, last_restart)
        sidecar = i < len(init_specs) and init_specs[i].get("restartPolicy") == "Always"
        if sidecar:
            sidecar_restarts += _int(cs.get("restartCount"))
        state = _d(cs.get("state"))
        terminated = _d(state.get("terminated"))
        waiting = _d(state.get("waiting"))
        if state.get("terminated") is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if state.get("terminated") is not None:
            reason = "Init:" + _exit_reason(terminated)
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or conditions.get("Initialized") == "True":
        restarts = sidecar_restarts
        has_running = False
        for cs in reversed(_dicts(status.get("containerStatuses"))):
            restarts += _int(cs.get("restartCount"))
            last_restart = _last_restart(cs, last_restart)
            state = _d(cs.get("state"))
            waiting = _d(state.get("waiting"))
            terminated = _d(state.get("terminated"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif state.get("terminated") is not None:
                reason = _exit_reason(terminated)
            elif cs.get("ready") is True and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if conditions.get("Ready") == "True" else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp")
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    pod_ips = _dicts(status.get("podIPs"))
    ip = pod_ips[0].get("ip") if pod_ips else status.get("podIP")
    gates = _dicts(spec.get("readinessGates"))
    gates_text = "<none>"
    if gates:
        true_gates = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_text = f"{true_gates}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        ip or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


_POD_COLUMNS = [
    _NAME,
    _col("Ready", desc="Ready containers out of all containers."),
    _col("Status", desc="The aggregate status of the containers in this pod."),
    _col("Restarts", desc="Container restarts, and how long ago the last one was."),
    _AGE,
    _col("IP", priority=1, desc="IP address allocated to the pod."),
    _col("Node", priority=1, desc="Node the pod is scheduled on."),
    _col("Nominated Node", priority=1, desc="Node nominated for preemption."),
    _col("Readiness Gates", priority=1, desc="Readiness gates satisfied."),
]

# -- Services ---------------------------------------------------------------------------


def _service_external_ip(spec: Obj, status: Obj) -> str:
    svc_type = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        ingress = _dicts(_d(status.get("loadBalancer")).get("ingress"))
        lb = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
        lb = [x for x in lb if x]
        if external:
            return ",".join(external + lb)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_row(svc: Obj, now: datetime) -> list[Any]:
    spec = _d(svc.get("spec"))
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in _dicts(spec.get("ports")):
        protocol = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{protocol}")
        else:
            ports.append(f"{p.get('port')}/{protocol}")
    return [
        _name(svc),
        spec.get("type") or "ClusterIP",
        ips[0] if ips else "<none>",
        _service_external_ip(spec, _d(svc.get("status"))),
        ",".join(ports) if ports else "<none>",
        _age(svc, now),
        _format_labels(spec.get("selector")),
    ]


_SERVICE_COLUMNS = [
    _NAME,
    _col("Type", desc="How the service is exposed."),
    _col("Cluster-IP", desc="The cluster-internal IP of the service."),
    _col("External-IP", desc="Externally reachable addresses."),
    _col("Port(s)", desc="Exposed ports."),
    _AGE,
    _col("Selector", priority=1, desc="Pods this service routes to."),
]

# -- Workloads --------------------------------------------------------------------------


def _statefulset_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    ready = f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}"
    return [_name(obj), ready, _age(obj, now), *_template_containers(spec)]


_STATEFULSET_COLUMNS = [
    _NAME,
    _col("Ready", desc="Ready replicas out of desired replicas."),
    _AGE,
    _col("Containers", priority=1, desc="Names of each container in the template."),
    _col("Images", priority=1, desc="Images referenced by each container in the template."),
]


def _deployment_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        *_wide_template(spec),
    ]


_WIDE_TEMPLATE = [
    _col("Containers", priority=1, desc="Names of each container in the template."),
    _col("Images", priority=1, desc="Images referenced by each container in the template."),
    _col("Selector", priority=1, desc="Label selector of the pods."),
]
_DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", desc="Ready replicas out of desired replicas."),
    _col("Up-to-date", "integer", desc="Replicas running the current template."),
    _col("Available", "integer", desc="Replicas available to users."),
    _AGE,
    *_WIDE_TEMPLATE,
]


def _replicaset_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    return [
        _name(obj),
        _int(spec.get("replicas"), 1),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        *_wide_template(spec),
    ]


_REPLICASET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", desc="Desired replicas."),
    _col("Current", "integer", desc="Current replicas."),
    _col("Ready", "integer", desc="Ready replicas."),
    _AGE,
    *_WIDE_TEMPLATE,
]


def _daemonset_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    node_selector = _d(_d(spec.get("template")).get("spec")).get("nodeSelector")
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        _format_labels(node_selector),
        _age(obj, now),
        *_wide_template(spec),
    ]


_DAEMONSET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", desc="Nodes that should run the daemon pod."),
    _col("Current", "integer", desc="Nodes running the daemon pod."),
    _col("Ready", "integer", desc="Nodes with a ready daemon pod."),
    _col("Up-to-date", "integer", desc="Nodes running the current template."),
    _col("Available", "integer", desc="Nodes with an available daemon pod."),
    _col("Node Selector", desc="Node selector of the pod template."),
    _AGE,
    *_WIDE_TEMPLATE,
]


def _job_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    conditions = {
        c.get("type") for c in _dicts(status.get("conditions")) if c.get("status") == "True"
    }
    state = "Running"
    for cond, text in (("Complete", "Complete"), ("Failed", "Failed")):
        if cond in conditions:
            state = text
            break
    else:
        if _meta(obj).get("deletionTimestamp"):
            state = "Terminating"
        else:
            for cond in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
                if cond in conditions:
                    state = cond
                    break
    succeeded = _int(status.get("succeeded"))
    completions = spec.get("completions")
    parallelism = _int(spec.get("parallelism"), 1)
    if isinstance(completions, int):
        done = f"{succeeded}/{completions}"
    elif parallelism > 1:
        done = f"{succeeded}/1 of {parallelism}"
    else:
        done = f"{succeeded}/1"
    start = _time(status.get("startTime"))
    end = _time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    return [_name(obj), state, done, duration, _age(obj, now), *_wide_template(spec)]


_JOB_COLUMNS = [
    _NAME,
    _col("Status", desc="Status of the job."),
    _col("Completions", desc="Succeeded pods out of desired completions."),
    _col("Duration", desc="Time the job took to complete."),
    _AGE,
    *_WIDE_TEMPLATE,
]

# -- Simple core kinds ------------------------------------------------------------------


def _namespace_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _d(obj.get("status")).get("phase") or "", _age(obj, now)]


def _secret_row(obj: Obj, now: datetime) -> list[Any]:
    data = _d(obj.get("data"))
    return [_name(obj), obj.get("type") or "", len(data), _age(obj, now)]


def _configmap_row(obj: Obj, now: datetime) -> list[Any]:
    count = len(_d(obj.get("data"))) + len(_d(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


def _serviceaccount_row(obj: Obj, now: datetime) -> list[Any]:
    secrets = obj.get("secrets")
    return [_name(obj), len(secrets) if isinstance(secrets, list) else 0, _age(obj, now)]


def _lease_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _d(obj.get("spec")).get("holderIdentity") or "", _age(obj, now)]


def _endpoints_row(obj: Obj, now: datetime) -> list[Any]:
    subsets = _dicts(obj.get("subsets"))
    if not subsets:
        return [_name(obj), "<none>", _age(obj, now)]
    shown: list[str] = []
    count = 0
    more = False
    for ss in subsets:
        addresses = [str(a.get("ip", "")) for a in _dicts(ss.get("addresses"))]
        ports = _dicts(ss.get("ports"))
        targets = (
            [f"{ip}:{p.get('port')}" for p in ports for ip in addresses] if ports else addresses
        )
        count += len(targets)
        for t in targets:
            if len(shown) == 3:
                more = True
                break
            shown.append(t)
    text = ",".join(shown)
    if more:
        text = f"{text} + {count - 3} more..."
    return [_name(obj), text, _age(obj, now)]


def _endpointslice_row(obj: Obj, now: datetime) -> list[Any]:
    ports = [str(p["port"]) for p in _dicts(obj.get("ports")) if p.get("port") is not None]
    addresses = [str(a) for e in _dicts(obj.get("endpoints")) for a in e.get("addresses") or []]
    if addresses:
        endpoints = ",".join(addresses[:3])
        if len(addresses) > 3:
            endpoints += f" + {len(addresses) - 3} more..."
    else:
        endpoints = "<unset>"
    return [
        _name(obj),
        obj.get("addressType") or "",
        ",".join(ports) if ports else "<unset>",
        endpoints,
        _age(obj, now),
    ]


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _access_modes(modes: Any) -> str:
    present = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _volume_phase(obj: Obj, status: Obj) -> str:
    return "Terminating" if _meta(obj).get("deletionTimestamp") else status.get("phase") or ""


def _pvc_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    phase = _volume_phase(obj, status)
    capacity = ""
    modes = ""
    if spec.get("volumeName"):
        modes = _access_modes(status.get("accessModes"))
        capacity = str(_d(status.get("capacity")).get("storage") or "0")
    storage_class = (
        _d(_meta(obj).get("annotations")).get("volume.beta.kubernetes.io/storage-class")
        or spec.get("storageClassName")
        or ""
    )
    return [
        _name(obj),
        phase,
        spec.get("volumeName") or "",
        capacity,
        modes,
        storage_class,
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _pv_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    claim = _d(spec.get("claimRef"))
    claim_text = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = _volume_phase(obj, status)
    return [
        _name(obj),
        str(_d(spec.get("capacity")).get("storage") or "0"),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "",
        phase,
        claim_text,
        spec.get("storageClassName") or "",
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason") or "",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _node_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    states = []
    for cond in _dicts(status.get("conditions")):
        if cond.get("type") == "Ready":
            states.append("Ready" if cond.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if spec.get("unschedulable") is True:
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in _d(_meta(obj).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key[24:]:
            roles.add(key[24:])
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    addresses = _dicts(status.get("addresses"))

    def address(kind: str) -> str:
        return next((str(a.get("address")) for a in addresses if a.get("type") == kind), "<none>")

    info = _d(status.get("nodeInfo"))
    return [
        _name(obj),
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        _age(obj, now),
        info.get("kubeletVersion") or "",
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_NODE_COLUMNS = [
    _NAME,
    _col("Status", desc="The status of the node."),
    _col("Roles", desc="The roles of the node."),
    _AGE,
    _col("Version", desc="Kubelet version."),
    _col("Internal-IP", priority=1, desc="Internal address."),
    _col("External-IP", priority=1, desc="External address."),
    _col("OS-Image", priority=1, desc="Operating system image."),
    _col("Kernel-Version", priority=1, desc="Kernel version."),
    _col("Container-Runtime", priority=1, desc="Container runtime version."),
]


def _event_row(obj: Obj, now: datetime) -> list[Any]:
    if obj.get("apiVersion") == "events.k8s.io/v1" or (
        "involvedObject" not in obj and "regarding" in obj
    ):
        obj = event_v1_to_core(obj)
    first = _since(obj.get("firstTimestamp"), now)
    if not obj.get("firstTimestamp"):
        first = _since(obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = _d(obj.get("involvedObject"))
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = _d(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type") or "",
        obj.get("reason") or "",
        target,
        involved.get("fieldPath") or "",
        f"{component}, {instance}" if instance else component,
        str(obj.get("message") or "").strip(),
        first,
        count,
        _name(obj),
    ]


_EVENT_COLUMNS = [
    _col("Last Seen", desc="Time since the event was last seen."),
    _col("Type", desc="Type of the event (Normal, Warning)."),
    _col("Reason", desc="Short machine-readable reason."),
    _col("Object", desc="The object the event is about."),
    _col("Subobject", priority=1, desc="Field path within the object."),
    _col("Source", priority=1, desc="Component that reported the event."),
    _col("Message", desc="Human-readable description."),
    _col("First Seen", priority=1, desc="Time since the event was first seen."),
    _col("Count", priority=1, desc="Number of occurrences."),
    _col("Name", priority=1, fmt="name", desc="Name of the event object."),
]


def _controllerrevision_row(obj: Obj, now: datetime) -> list[Any]:
    controller = "<none>"
    for ref in _dicts(_meta(obj).get("ownerReferences")):
        if ref.get("controller") is True:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", ""))
            qualified = f"{kind}.{group}" if group else kind
            controller = f"{qualified.lower()}/{ref.get('name', '')}"
            break
    return [_name(obj), controller, _int(obj.get("revision")), _age(obj, now)]


def _pdb_row(obj: Obj, now: datetime) -> list[Any]:
    spec = _d(obj.get("spec"))
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [
        _name(obj),
        "N/A" if min_available is None else str(min_available),
        "N/A" if max_unavailable is None else str(max_unavailable),
        _int(_d(obj.get("status")).get("disruptionsAllowed")),
        _age(obj, now),
    ]


def _created_at(obj: Obj) -> str:
    dt = _time(_meta(obj).get("creationTimestamp"))
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else ""


def _role_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _created_at(obj)]


def _binding_row(obj: Obj, now: datetime) -> list[Any]:
    ref = _d(obj.get("roleRef"))
    users, groups, accounts = [], [], []
    for subject in _dicts(obj.get("subjects")):
        kind = subject.get("kind")
        if kind == "User":
            users.append(str(subject.get("name", "")))
        elif kind == "Group":
            groups.append(str(subject.get("name", "")))
        elif kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(accounts),
    ]


_CREATED_AT = _col("Created At", "date", desc="Time the object was created.")
_BINDING_COLUMNS = [
    _NAME,
    _col("Role", desc="The role this binding grants."),
    _AGE,
    _col("Users", priority=1, desc="Users in the binding."),
    _col("Groups", priority=1, desc="Groups in the binding."),
    _col("ServiceAccounts", priority=1, desc="Service accounts in the binding."),
]

_PRINTERS: dict[tuple[str, str], tuple[list[Obj], Row]] = {
    ("", "Pod"): (_POD_COLUMNS, _pod_row),
    ("", "Service"): (_SERVICE_COLUMNS, _service_row),
    ("", "Namespace"): (
        [_NAME, _col("Status", desc="The status of the namespace."), _AGE],
        _namespace_row,
    ),
    ("", "Secret"): (
        [
            _NAME,
            _col("Type", desc="Type of the secret."),
            _col("Data", desc="Number of keys."),
            _AGE,
        ],
        _secret_row,
    ),
    ("", "ConfigMap"): ([_NAME, _col("Data", desc="Number of keys."), _AGE], _configmap_row),
    ("", "ServiceAccount"): (
        [_NAME, _col("Secrets", desc="Number of secrets."), _AGE],
        _serviceaccount_row,
    ),
    ("", "Endpoints"): (
        [_NAME, _col("Endpoints", desc="Endpoint addresses."), _AGE],
        _endpoints_row,
    ),
    ("", "Event"): (_EVENT_COLUMNS, _event_row),
    ("events.k8s.io", "Event"): (_EVENT_COLUMNS, _event_row),
    ("", "PersistentVolumeClaim"): (
        [
            _NAME,
            _col("Status", desc="Phase of the claim."),
            _col("Volume", desc="Bound volume."),
            _col("Capacity", desc="Capacity of the bound volume."),
            _col("Access Modes", desc="Access modes of the bound volume."),
            _col("StorageClass", desc="Storage class of the claim."),
            _col("VolumeAttributesClass", desc="Volume attributes class of the claim."),
            _AGE,
            _col("VolumeMode", priority=1, desc="Filesystem or Block."),
        ],
        _pvc_row,
    ),
    ("", "PersistentVolume"): (
        [
            _NAME,
            _col("Capacity", desc="Capacity of the volume."),
            _col("Access Modes", desc="Access modes."),
            _col("Reclaim Policy", desc="What happens when released."),
            _col("Status", desc="Phase of the volume."),
            _col("Claim", desc="Bound claim."),
            _col("StorageClass", desc="Storage class."),
            _col("VolumeAttributesClass", desc="Volume attributes class."),
            _col("Reason", desc="Reason for a failure."),
            _AGE,
            _col("VolumeMode", priority=1, desc="Filesystem or Block."),
        ],
        _pv_row,
    ),
    ("", "Node"): (_NODE_COLUMNS, _node_row),
    ("apps", "StatefulSet"): (_STATEFULSET_COLUMNS, _statefulset_row),
    ("apps", "Deployment"): (_DEPLOYMENT_COLUMNS, _deployment_row),
    ("apps", "ReplicaSet"): (_REPLICASET_COLUMNS, _replicaset_row),
    ("apps", "DaemonSet"): (_DAEMONSET_COLUMNS, _daemonset_row),
    ("apps", "ControllerRevision"): (
        [
            _NAME,
            _col("Controller", desc="Controller owning the revision."),
            _col("Revision", "integer", desc="Revision number."),
            _AGE,
        ],
        _controllerrevision_row,
    ),
    ("batch", "Job"): (_JOB_COLUMNS, _job_row),
    ("coordination.k8s.io", "Lease"): (
        [_NAME, _col("Holder", desc="Current holder of the lease."), _AGE],
        _lease_row,
    ),
    ("discovery.k8s.io", "EndpointSlice"): (
        [
            _NAME,
            _col("AddressType", desc="Type of the addresses."),
            _col("Ports", desc="Ports of the slice."),
            _col("Endpoints", desc="Endpoint addresses."),
            _AGE,
        ],
        _endpointslice_row,
    ),
    ("policy", "PodDisruptionBudget"): (
        [
            _NAME,
            _col("Min Available", desc="Minimum available pods."),
            _col("Max Unavailable", desc="Maximum unavailable pods."),
            _col("Allowed Disruptions", "integer", desc="Pods that may be disrupted now."),
            _AGE,
        ],
        _pdb_row,
    ),
    ("rbac.authorization.k8s.io", "Role"): ([_NAME, _CREATED_AT], _role_row),
    ("rbac.authorization.k8s.io", "ClusterRole"): ([_NAME, _CREATED_AT], _role_row),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_BINDING_COLUMNS, _binding_row),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_BINDING_COLUMNS, _binding_row),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ([_NAME, _CREATED_AT], _role_row),
}


def _default_row(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


# -- Custom resources (CRD-10) ----------------------------------------------------------

_DEFAULT_CR_COLUMNS = [
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "Time since the object was created.",
    }
]


def _cr_columns(rt: ResourceType) -> list[Obj]:
    return rt.printer_columns or _DEFAULT_CR_COLUMNS


def _cell(column: Obj, obj: Obj, now: datetime) -> Any:
    try:
        results = _jsonpath.find(obj, str(column.get("jsonPath") or ""))
    except _jsonpath.JSONPathError:
        return None
    if not results:
        return None
    value = results[0]
    kind = column.get("type")
    if value is None:
        return None
    if kind == "string":
        return _jsonpath.format_value(value)
    if kind == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        if not isinstance(value, str):
            return None
        if not value:
            return "<unknown>"
        parsed = parse_time(value)
        if parsed is None:
            return "<invalid>"
        return human_duration((now - parsed).total_seconds())
    return None


def column_definitions(rt: ResourceType) -> list[Obj]:
    """The Table ``columnDefinitions`` for a resource type."""
    if rt.is_custom:
        return [dict(_NAME)] + [
            {
                "name": str(c.get("name", "")),
                "type": str(c.get("type", "string")),
                "format": str(c.get("format", "")),
                "description": str(c.get("description", "")),
                "priority": int(c.get("priority", 0) or 0),
            }
            for c in _cr_columns(rt)
        ]
    printer = _PRINTERS.get((rt.group, rt.kind))
    cols = printer[0] if printer else [_NAME, _AGE]
    return [dict(c) for c in cols]


def _row_cells(rt: ResourceType, obj: Obj, now: datetime) -> list[Any]:
    if rt.is_custom:
        return [_name(obj)] + [_cell(c, obj, now) for c in _cr_columns(rt)]
    printer = _PRINTERS.get((rt.group, rt.kind))
    return printer[1](obj, now) if printer else _default_row(obj, now)


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {},
        }
    return None


def to_table(
    rt: ResourceType,
    objs: list[Obj],
    *,
    include_object: str = "Metadata",
    with_definitions: bool = True,
    list_meta: Obj | None = None,
    now: datetime,
) -> Obj:
    """Render objects (in ``rt``'s view) as a ``meta.k8s.io/v1`` Table.

    ``include_object`` is the ``includeObject`` parameter: ``None`` (no object),
    ``Metadata`` (PartialObjectMetadata, the default) or ``Object`` (the full object).
    ``with_definitions=False`` leaves ``columnDefinitions`` null, as watch events after
    the first one carry them (WATCH-9).
    """
    if include_object not in INCLUDE_OBJECT:
        raise ValueError(f"includeObject must be one of {', '.join(INCLUDE_OBJECT)}")
    rows = []
    for obj in objs:
        row: Obj = {"cells": _row_cells(rt, obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": column_definitions(rt) if with_definitions else None,
        "rows": rows,
    }


def to_watch_table(
    rt: ResourceType,
    obj: Obj,
    *,
    include_object: str = "Metadata",
    with_definitions: bool = False,
    now: datetime,
) -> Obj:
    """A one-row Table for a watch event; only the first event should carry definitions."""
    rv = _meta(obj).get("resourceVersion")
    return to_table(
        rt,
        [obj],
        include_object=include_object,
        with_definitions=with_definitions,
        list_meta={"resourceVersion": rv} if rv else {},
        now=now,
    )
