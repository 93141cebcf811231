"""A simulated kubelet (CTRL-4), in the manner of kwok's pod stages.

For pods bound to its node it plays the kubelet's part without running anything:

* ``pod-create``: after ``start_delay`` the pod gets ``hostIP``, a ``podIP`` from a loopback
  pool (``127.200.0.0/16`` by default), ``startTime``, containers ``ContainerCreating`` and the
  conditions ``PodReadyToStartContainers``/``Initialized``/``PodScheduled`` True,
  ``Ready``/``ContainersReady`` False;
* ``pod-ready``: ``ready_delay`` later, ``phase: Running``, every container running and ready,
  and all five conditions True (with both delays 0 this is a single write);
* ``pod-delete``: a pod with a ``deletionTimestamp`` is deleted with ``gracePeriodSeconds=0``
  after ``terminate_delay`` (the API server then waits for its finalizers, if any).

Test hooks: :meth:`PodSimulator.set_pod_failed`, :meth:`~PodSimulator.set_pod_succeeded`,
:meth:`~PodSimulator.set_pod_not_ready` / :meth:`~PodSimulator.set_pod_ready`,
:meth:`~PodSimulator.restart_pod`, and :meth:`~PodSimulator.pause` /
:meth:`~PodSimulator.resume` of automatic readiness. Hooks write through the API at once (and
retry on conflicts), so their effect is visible when they return.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Mapping
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result, Source
from opkit.manager import Manager
from opkit.predicates import new_predicate_funcs

from . import _common as c
from ._base import BuiltinController

__all__ = ["DEFAULT_POD_CIDR", "PodSimulator"]

Obj = dict[str, Any]

DEFAULT_POD_CIDR = "127.200.0.0/16"
_FIELD_MANAGER = "kubelet"
_CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)
_HOOK_RETRIES = 10

# What the simulated containers are doing.
_CREATING = "creating"
_RUNNING = "running"  # started, not ready
_READY = "ready"


class _IPPool:
    """Pod IPs from a loopback network, remembered per pod uid."""

    def __init__(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(
            ipaddress.IPv4Network("127.0.0.0/8")
        ):
            raise ValueError(f"pod CIDR {cidr} must be inside 127.0.0.0/8")
        self.network = network
        self._lock = threading.Lock()
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()
        self._next = 0
        self._hosts = network.num_addresses - 2 if network.num_addresses > 2 else 1

    def reserve(self, uid: str, ip: str) -> None:
        with self._lock:
            self._by_uid.setdefault(uid, ip)
            self._used.add(ip)

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    def allocate(self, uid: str) -> str:
        with self._lock:
            ip = self._by_uid.get(uid)
            if ip is not None:
                return ip
            base = int(self.network.network_address) + (1 if self.network.num_addresses > 2 else 0)
            for _ in range(self._hosts):
                candidate = str(ipaddress.IPv4Address(base + self._next))
                self._next = (self._next + 1) % self._hosts
                if candidate not in self._used:
                    self._used.add(candidate)
                    self._by_uid[uid] = candidate
                    return candidate
        raise RuntimeError(f"pod network {self.network} is exhausted")

    def release(self, uid: str) -> None:
        with self._lock:
            ip = self._by_uid.pop(uid, None)
            if ip is not None:
                self._used.discard(ip)


def _container_id(pod_uid: str, name: str, restarts: int) -> str:
    digest = hashlib.sha256(f"{pod_uid}/{name}/{restarts}".encode()).hexdigest()
    return f"opkit://{digest}"


def _image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: repo.rfind(":")]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in repo.split("/", 1)[0] and ":" not in repo.split("/", 1)[0]:
        repo = f"docker.io/{repo}"
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class PodSimulator(BuiltinController):
    """Moves the pods of one node through kwok-like lifecycle stages."""

    name = "podsim"

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        node_name: str = "opkit-node",
        host_ip: str = "127.0.0.1",
        pod_cidr: str = DEFAULT_POD_CIDR,
        start_delay: float = 0.0,
        ready_delay: float = 0.0,
        terminate_delay: float = 0.0,
    ) -> None:
        super().__init__(client, clock=clock)
        self.node_name = node_name
        self.host_ip = host_ip
        self.start_delay = start_delay
        self.ready_delay = ready_delay
        self.terminate_delay = terminate_delay
        self._pool = _IPPool(pod_cidr)
        self._pods = client.resource("v1", "Pod")
        self._lock = threading.Lock()
        self._paused = False
        self._not_ready: set[str] = set()
        self._seen: dict[str, float] = {}  # uid -> first seen on this node
        self._started: dict[str, float] = {}  # uid -> when containers started
        self._terminating: dict[str, float] = {}  # uid -> first seen terminating
        self._uid_of_key: dict[str, str] = {}
        self._pool_seeded = False

    def setup(self, manager: Manager) -> None:
        ctrl = manager.controller(
            "podsim",
            self,
            for_=Source("v1", "Pod", predicates=[new_predicate_funcs(self._ours)]),
            max_concurrent_reconciles=4,
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _ours(self, pod: Obj) -> bool:
        return c.spec_of(pod).get("nodeName") == self.node_name

    # -- test hooks -----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop making pods ready (pods already ready stay ready)."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Make pods ready again (those waiting are made ready now)."""
        with self._lock:
            self._paused = False
        self._enqueue_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_pod_not_ready(self, namespace: str, name: str) -> Obj:
        """Mark a pod not ready (as a failing readiness probe would) until
        :meth:`set_pod_ready`."""
        pod = self._get(namespace, name)
        with self._lock:
            self._not_ready.add(c.uid_of(pod))
        return self._write_fresh(namespace, name, self._desired_status)

    def set_pod_ready(self, namespace: str, name: str) -> Obj:
        """Undo :meth:`set_pod_not_ready` (the pod becomes ready unless paused and never was)."""
        pod = self._get(namespace, name)
        with self._lock:
            self._not_ready.discard(c.uid_of(pod))
            self._started.setdefault(c.uid_of(pod), self.clock.monotonic() - self.ready_delay)
        return self._write_fresh(namespace, name, self._desired_status)

    def set_pod_failed(
        self, namespace: str, name: str, *, reason: str = "Error", exit_code: int = 1
    ) -> Obj:
        """Every container exits with ``exit_code``: phase Failed (terminal)."""
        return self._write_fresh(
            namespace, name, lambda pod: self._terminated_status(pod, "Failed", reason, exit_code)
        )

    def set_pod_succeeded(self, namespace: str, name: str) -> Obj:
        """Every container exits 0: phase Succeeded (a finished Job pod)."""
        return self._write_fresh(
            namespace, name, lambda pod: self._terminated_status(pod, "Succeeded", "Completed", 0)
        )

    def restart_pod(self, namespace: str, name: str, container: str | None = None) -> Obj:
        """Restart a pod's containers (or one): restartCount+1, lastState terminated, new
        containerID, running since now; readiness as before."""
        return self._write_fresh(
            namespace, name, lambda pod: self._restarted_status(pod, container)
        )

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        pod = self.cache.get("v1", "Pod", request.namespace, request.name, copy=False)
        if pod is None or not self._ours(pod):
            self._forget(request.key)
            return None
        uid = c.uid_of(pod)
        with self._lock:
            old_uid = self._uid_of_key.get(request.key)
            self._uid_of_key[request.key] = uid
        if old_uid is not None and old_uid != uid:
            self._release(old_uid)
        if c.is_deleting(pod):
            return self._finish_deletion(pod)
        if c.is_terminal(pod):
            return None
        now = self.clock.monotonic()
        with self._lock:
            seen = self._seen.setdefault(uid, now)
        wait = self.start_delay - (now - seen)
        if wait > 0 and not c.status_of(pod).get("startTime"):
            return Result(requeue_after=wait)
        status, later = self._desired_status_and_wait(pod)
        if c.differs(c.status_of(pod), status):
            self._pods.patch_status(
                c.name_of(pod),
                {
                    "metadata": {"resourceVersion": c.meta(pod).get("resourceVersion")},
                    "status": status,
                },
                c.namespace_of(pod),
                field_manager=_FIELD_MANAGER,
            )
        if later is not None:
            return Result(requeue_after=max(later, 0.01))
        return None

    def _finish_deletion(self, pod: Obj) -> Result | None:
        if c.as_int(c.meta(pod).get("deletionGracePeriodSeconds")) == 0:
            return None  # already told the API server; finalizers hold it
        now = self.clock.monotonic()
        with self._lock:
            since = self._terminating.setdefault(c.uid_of(pod), now)
        wait = self.terminate_delay - (now - since)
        if wait > 0:
            return Result(requeue_after=wait)
        c.delete_quietly(self._pods, pod, grace_period_seconds=0)
        return None

    def _forget(self, key: str) -> None:
        with self._lock:
            uid = self._uid_of_key.pop(key, None)
        if uid is not None:
            self._release(uid)

    def _release(self, uid: str) -> None:
        with self._lock:
            self._seen.pop(uid, None)
            self._started.pop(uid, None)
            self._terminating.pop(uid, None)
            self._not_ready.discard(uid)
        self._pool.release(uid)

    def _enqueue_all(self) -> None:
        if self._controller is None or self._cache is None or not self.cache.started:
            return
        for pod in self.cache.list("v1", "Pod", copy=False):
            if self._ours(pod):
                self.controller.enqueue(Request.from_object(pod))

    # -- status building ------------------------------------------------------------------------

    def _pod_ip(self, pod: Obj) -> str:
        if c.spec_of(pod).get("hostNetwork"):
            return self.host_ip
        existing = str(c.status_of(pod).get("podIP") or "")
        if existing:
            if self._pool.contains(existing):
                self._pool.reserve(c.uid_of(pod), existing)
            return existing
        if not self._pool_seeded and self._cache is not None and self.cache.started:
            for other in self.cache.list("v1", "Pod", copy=False):
                ip = str(c.status_of(other).get("podIP") or "")
                if ip and self._pool.contains(ip) and not c.spec_of(other).get("hostNetwork"):
                    self._pool.reserve(c.uid_of(other), ip)
            self._pool_seeded = True
        return self._pool.allocate(c.uid_of(pod))

    def _desired_status(self, pod: Obj) -> Obj:
        return self._desired_status_and_wait(pod)[0]

    def _desired_status_and_wait(self, pod: Obj) -> tuple[Obj, float | None]:
        """The status this kubelet reports, and when to look again (a pending ready stage)."""
        uid = c.uid_of(pod)
        now = self.clock.monotonic()
        live = c.status_of(pod)
        was_running = live.get("phase") == "Running"
        was_ready = was_running and c.is_pod_ready(pod)
        later: float | None = None
        with self._lock:
            held = uid in self._not_ready
            paused = self._paused
            # the containers "start" with the first status this kubelet writes
            started = self._started.setdefault(uid, now)
        not_ready = _RUNNING if was_running else _CREATING
        if held:
            state = not_ready
        elif was_ready:
            state = _READY
        elif paused:
            state = not_ready
        else:
            wait = self.ready_delay - (now - started)
            state = not_ready if wait > 0 else _READY
            later = wait if wait > 0 else None
        return self._status(pod, state), later

    def _status(self, pod: Obj, state: str) -> Obj:
        live = c.status_of(pod)
        spec = c.spec_of(pod)
        now = c.now(self.clock)
        uid = c.uid_of(pod)
        ready = state == _READY
        running = state in (_READY, _RUNNING)
        previous = {
            cs.get("name"): cs for cs in live.get("containerStatuses") or () if isinstance(cs, dict)
        }
        statuses = []
        for container in spec.get("containers") or ():
            cname = str(container.get("name") or "")
            prev = previous.get(cname) or {}
            restarts = c.as_int(prev.get("restartCount"))
            entry: Obj = {
                "name": cname,
                "image": container.get("image") or "",
                "imageID": prev.get("imageID") or _image_id(str(container.get("image") or "")),
                "ready": ready,
                "restartCount": restarts,
                "started": running,
            }
            if running:
                started_at = ((prev.get("state") or {}).get("running") or {}).get("startedAt")
                entry["state"] = {"running": {"startedAt": started_at or now}}
                entry["containerID"] = prev.get("containerID") or _container_id(
                    uid, cname, restarts
                )
            else:
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
            entry["lastState"] = prev.get("lastState") or {}
            statuses.append(entry)
        init_statuses = []
        start_time = live.get("startTime") or now
        for container in spec.get("initContainers") or ():
            cname = str(container.get("name") or "")
            sidecar = container.get("restartPolicy") == "Always"
            entry = {
                "name": cname,
                "image": container.get("image") or "",
                "imageID": _image_id(str(container.get("image") or "")),
                "ready": ready if sidecar else True,
                "restartCount": 0,
                "started": running if sidecar else False,
                "containerID": _container_id(uid, cname, 0),
                "lastState": {},
            }
            if sidecar:
                entry["state"] = {"running": {"startedAt": start_time}}
            else:
                entry["state"] = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": start_time,
                        "finishedAt": start_time,
                        "containerID": entry["containerID"],
                    }
                }
            init_statuses.append(entry)
        unready = [str(cs["name"]) for cs in statuses if not cs["ready"]]
        wanted = {
            "PodReadyToStartContainers": ("True", "", ""),
            "Initialized": ("True", "", ""),
            "Ready": (
                ("True", "", "")
                if ready
                else (
                    "False",
                    "ContainersNotReady",
                    f"containers with unready status: [{' '.join(unready)}]",
                )
            ),
            "ContainersReady": (
                ("True", "", "")
                if ready
                else (
                    "False",
                    "ContainersNotReady",
                    f"containers with unready status: [{' '.join(unready)}]",
                )
            ),
            "PodScheduled": ("True", "", ""),
        }
        conditions = _conditions(live, wanted, now)
        ip = self._pod_ip(pod)
        status: Obj = {
            "phase": "Running" if running else "Pending",
            "conditions": conditions,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": start_time,
            "containerStatuses": statuses,
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        return status

    def _terminated_status(self, pod: Obj, phase: str, reason: str, exit_code: int) -> Obj:
        status = self._status(pod, _RUNNING)
        now = c.now(self.clock)
        for cs in status["containerStatuses"]:
            started_at = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or now
            cs["state"] = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started_at,
                    "finishedAt": now,
                    "containerID": cs.get("containerID"),
                }
            }
            cs["ready"] = False
            cs["started"] = False
        names = " ".join(str(cs["name"]) for cs in status["containerStatuses"])
        wanted = {
            "PodReadyToStartContainers": ("False", "", ""),
            "Initialized": ("True", "", ""),
            "Ready": ("False", "PodCompleted" if phase == "Succeeded" else "PodFailed", ""),
            "ContainersReady": (
                "False",
                "PodCompleted" if phase == "Succeeded" else "PodFailed",
                "",
            ),
            "PodScheduled": ("True", "", ""),
        }
        if not names:
            wanted.pop("PodReadyToStartContainers")
        status["conditions"] = _conditions(c.status_of(pod), wanted, now)
        status["phase"] = phase
        return status

    def _restarted_status(self, pod: Obj, container: str | None) -> Obj:
        live = c.status_of(pod)
        ready = c.is_running_and_ready(pod)
        status = self._status(pod, _READY if ready else _RUNNING)
        now = c.now(self.clock)
        for cs in status["containerStatuses"]:
            if container is not None and cs["name"] != container:
                continue
            old_started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or (
                live.get("startTime") or now
            )
            restarts = c.as_int(cs.get("restartCount")) + 1
            cs["lastState"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "Error",
                    "startedAt": old_started,
                    "finishedAt": now,
                    "containerID": cs.get("containerID"),
                }
            }
            cs["restartCount"] = restarts
            cs["containerID"] = _container_id(c.uid_of(pod), str(cs["name"]), restarts)
            cs["state"] = {"running": {"startedAt": now}}
            cs["started"] = True
        return status

    # -- writing from hooks ---------------------------------------------------------------------

    def _get(self, namespace: str, name: str) -> Obj:
        pod: Obj = self._pods.get(name, namespace)
        return pod

    def _write_fresh(self, namespace: str, name: str, build: Any) -> Obj:
        """Read the pod from the API server, build its status, write it with the read
        resourceVersion; retry on conflicts."""
        for _ in range(_HOOK_RETRIES):
            pod = self._get(namespace, name)
            status = build(pod)
            if not c.differs(c.status_of(pod), status):
                return pod
            try:
                result: Obj = self._pods.patch_status(
                    name,
                    {
                        "metadata": {"resourceVersion": c.meta(pod).get("resourceVersion")},
                        "status": status,
                    },
                    namespace,
                    field_manager=_FIELD_MANAGER,
                )
                return result
            except errors.Conflict:
                continue
        raise errors.Conflict(409, "Conflict", f"pod {namespace}/{name} kept changing")


def _conditions(
    live: Mapping[str, Any], wanted: Mapping[str, tuple[str, str, str]], now: str
) -> list[Obj]:
    """Pod conditions in kubelet order, keeping transition times of unchanged ones."""
    previous = {
        cond.get("type"): cond for cond in live.get("conditions") or () if isinstance(cond, dict)
    }
    out = []
    for ctype in _CONDITION_ORDER:
        if ctype not in wanted:
            continue
        status, reason, message = wanted[ctype]
        prev = previous.get(ctype) or {}
        cond: Obj = {"type": ctype, "status": status}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        cond["lastProbeTime"] = None
        cond["lastTransitionTime"] = (
            prev.get("lastTransitionTime")
            if prev.get("status") == status and prev.get("lastTransitionTime")
            else now
        )
        out.append(cond)
    for other_type, other in previous.items():
        if other_type not in _CONDITION_ORDER:
            out.append(dict(other))  # readiness gates and others belong to someone else
    return out
