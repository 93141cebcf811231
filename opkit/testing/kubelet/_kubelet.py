"""The local kubelet: runs the Pods bound to its node as local processes.

It is an opkit controller (``kubelet-<node>``) over the Pods whose ``spec.nodeName`` is its
node; ConfigMap, Secret, PVC and PV events wake the pods that use them. A reconcile is
level-triggered and never blocks for long: it makes sure the pod has its sandbox (network
namespace, hosts file, volumes), starts the containers that should run (init containers first,
in order; restarts with crash-loop back-off), and writes the pod's status when it changed.
Processes end on their own threads (one waiter per process, one worker per probe), which record
what happened and enqueue the pod again. Deletion runs on a thread per pod: SIGTERM to every
container, ``deletionGracePeriodSeconds`` (else ``terminationGracePeriodSeconds``), SIGKILL,
sandbox removal, and only then the final ``DELETE`` with ``gracePeriodSeconds=0``.

Containers run under :mod:`._podexec` in the pod's network namespace, in their own PID
namespace (behind a minimal init), in a private mount namespace where volumes, the image's
directories and files, the service-account token and the pod's ``/etc/hosts`` and
``/etc/resolv.conf`` are bind-mounted over the host's file system, which programs otherwise see
as it is (so ``python -m`` finds modules anywhere, ``/tmp`` included). ``HOME`` and the default
working directory are a private directory of the container. Nothing is written on the host
outside the kubelet's data directory (and PV/hostPath directories).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock
from opkit.controller import Request, Result, Source
from opkit.events import EventRecorder
from opkit.manager import Manager
from opkit.predicates import new_predicate_funcs
from opkit.testing.apiserver._status import bad_request

from ._dns import ClusterDNS
from ._env import ConfigError, container_env, expand
from ._hosts import CLUSTER_DOMAIN, HostRecord, hosts_text, resolv_conf_text, write_hosts_file
from ._images import (
    HOST_PATH,
    ImageNotFound,
    ImageSpec,
    ImageTable,
    container_argv,
    program_links,
    resolve_command,
)
from ._logs import read_log
from ._netns import PodInterface, PodNetwork, PodNetworkError
from ._pki import service_account_token
from ._podexec import podexec_argv
from ._probes import ProbeSpec, ProbeWorker, check
from ._procs import Proc, ProcessRegistry, previous_log_path, spawn
from ._volumes import ALWAYS_READ_ONLY, PodVolumes, VolumeContext, VolumeError, atomic_write

__all__ = ["SERVICE_ACCOUNT_DIR", "Kubelet", "KubeletConfig"]

Obj = dict[str, Any]
TokenSource = Callable[[str, str, str, int], str]
_log = logging.getLogger("opkit.testing.kubelet")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IMAGE_BIN_DIR = "/usr/local/opkit/bin"
_FIELD_MANAGER = "kubelet"
_FORCE_DELETE_GRACE = 2.0  # the kubelet's minimum when a pod vanished from the API
_REFS_INDEX = "opkit.testing/kubelet-refs"
_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


@dataclass
class KubeletConfig:
    """Settings of one kubelet. Durations are seconds.

    ``backoff_base``/``backoff_max``: crash-loop back-off (10 s doubling to 300 s upstream);
    ``backoff_reset``: a container that ran this long starts over at the base (default twice
    the maximum: 10 minutes). ``retry_interval``: how often image and configuration errors are
    retried. ``stop_grace``: the grace period pods get when the kubelet stops.
    ``api_host``/``api_port``: what pods get as ``KUBERNETES_SERVICE_HOST``/``_PORT``;
    ``ca_pem`` is their ``ca.crt``. ``refuse``: if set, pods are not run and this one-line
    reason is reported instead (no root for pod networking).
    """

    node_name: str = "opkit-node"
    data_dir: str | os.PathLike[str] = ""
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float | None = None
    retry_interval: float = 10.0
    stop_grace: float = 5.0
    api_host: str = ""
    api_port: int = 0
    ca_pem: bytes | None = None
    token: TokenSource | None = None
    cluster_domain: str = CLUSTER_DOMAIN
    workers: int = 8
    heartbeat: float | None = 10.0
    refuse: str | None = None


def _now(clock: Clock) -> str:
    return clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _pod_refs(pod: Obj) -> list[str]:
    """Index: ``cm:ns/name``, ``secret:ns/name``, ``pvc:ns/name`` of what a pod uses."""
    ns = str(_meta(pod).get("namespace") or "")
    spec = _spec(pod)
    refs: set[str] = set()
    for vol in spec.get("volumes") or ():
        if vol.get("configMap"):
            refs.add(f"cm:{ns}/{vol['configMap'].get('name')}")
        if vol.get("secret"):
            refs.add(f"secret:{ns}/{vol['secret'].get('secretName')}")
        if vol.get("persistentVolumeClaim"):
            refs.add(f"pvc:{ns}/{vol['persistentVolumeClaim'].get('claimName')}")
        for src in (vol.get("projected") or {}).get("sources") or ():
            if src.get("configMap"):
                refs.add(f"cm:{ns}/{src['configMap'].get('name')}")
            if src.get("secret"):
                refs.add(f"secret:{ns}/{src['secret'].get('name')}")
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for source in c.get("envFrom") or ():
            if source.get("configMapRef"):
                refs.add(f"cm:{ns}/{source['configMapRef'].get('name')}")
            if source.get("secretRef"):
                refs.add(f"secret:{ns}/{source['secretRef'].get('name')}")
        for var in c.get("env") or ():
            vf = var.get("valueFrom") or {}
            if vf.get("configMapKeyRef"):
                refs.add(f"cm:{ns}/{vf['configMapKeyRef'].get('name')}")
            if vf.get("secretKeyRef"):
                refs.add(f"secret:{ns}/{vf['secretKeyRef'].get('name')}")
    return sorted(refs)


def _covered(path: str, mount_paths: Iterable[str]) -> bool:
    p = os.path.normpath(path)
    return any(p == m or p.startswith(m.rstrip("/") + "/") for m in mount_paths)


class _Container:
    """What the kubelet knows about one container of a pod (across its restarts)."""

    def __init__(self, spec: Mapping[str, Any], *, init: bool, log_dir: Path) -> None:
        self.spec: Mapping[str, Any] = spec
        self.name = str(spec.get("name") or "")
        self.init = init
        self.log_path = log_dir / f"{self.name}.log"
        self.proc: Proc | None = None
        self.attempts = 0
        self.restart_count = 0
        self.container_id = ""
        self.started_at = ""
        self.started_mono = 0.0
        self.last_term: Obj | None = None
        self.finished_mono = 0.0
        self.waiting: tuple[str, str] | None = None
        self.retry_at = 0.0
        self.failures = 0  # consecutive image/config failures
        self.backoff = 0.0
        self.backoff_updated: float | None = None
        self.probes: dict[str, ProbeWorker] = {}
        self.ready = False
        self.started = False
        self.kill_reason = ""
        self.waiter: threading.Thread | None = None
        self.image_id = ""

    @property
    def running(self) -> bool:
        return self.proc is not None

    @property
    def succeeded(self) -> bool:
        return self.proc is None and self.last_term is not None and self.last_term["exitCode"] == 0


class _PodRuntime:
    """A pod being run: its sandbox, containers and threads."""

    def __init__(self, pod: Mapping[str, Any], root: Path) -> None:
        meta = _meta(pod)
        self.uid = str(meta.get("uid") or "")
        self.namespace = str(meta.get("namespace") or "default")
        self.name = str(meta.get("name") or "")
        self.key = f"{self.namespace}/{self.name}"
        self.pod_id = f"{self.namespace}-{self.name}-{self.uid[:8]}"
        self.dir = root / self.uid
        self.pod: Mapping[str, Any] = pod
        self.lock = threading.RLock()
        self.iface: PodInterface | None = None
        self.volumes = PodVolumes(self.dir / "volumes")
        self.volume_paths: dict[str, str] = {}
        self.sa_dir: Path | None = None
        logs = self.dir / "logs"
        spec = _spec(pod)
        self.init = [
            _Container(c, init=True, log_dir=logs) for c in spec.get("initContainers") or ()
        ]
        self.main = [_Container(c, init=False, log_dir=logs) for c in spec.get("containers") or ()]
        self.start_time = ""
        self.terminating = False
        self.done = threading.Event()
        self.final_phase = ""
        self.hosts_text = ""
        self.noted: set[str] = set()  # one-shot events already sent
        self.volume_error = ""

    @property
    def containers(self) -> list[_Container]:
        return [*self.init, *self.main]

    @property
    def hostname(self) -> str:
        return str(_spec(self.pod).get("hostname") or self.name)[:63]

    def find(self, name: str) -> _Container | None:
        return next((c for c in self.containers if c.name == name), None)

    def initialized(self) -> bool:
        return all(c.succeeded for c in self.init)


class Kubelet:
    """Runs the pods of one node (see the module docstring).

    Call :meth:`setup` with the :class:`~opkit.manager.Manager` whose cache it should share
    before the manager starts, then :meth:`start`; :meth:`stop` ends every pod's processes.
    Without a :class:`PodNetwork` (no root) pods are refused with ``config.refuse``.
    Back-off and retry schedules and timestamps follow ``clock``; grace periods and probe
    periods are real seconds, since they wait on real processes.
    """

    def __init__(
        self,
        client: Client,
        *,
        config: KubeletConfig,
        network: PodNetwork | None,
        images: ImageTable | None = None,
        dns: ClusterDNS | None = None,
        registry: ProcessRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.network = network
        self.images = images or ImageTable.default()
        self.dns = dns or ClusterDNS(cluster_domain=config.cluster_domain)
        self._own_dns = dns is None
        self.registry = registry or ProcessRegistry()
        self.clock: Clock = clock or REAL_CLOCK
        self.node_name = config.node_name
        self.data_dir = Path(config.data_dir or "/var/lib/opkit-kubelet")
        self._pods_dir = self.data_dir / "pods"
        self._images_dir = self.data_dir / "images"
        self._pods = client.resource("v1", "Pod")
        self._nodes = client.resource("v1", "Node")
        self._lock = threading.Lock()
        self._runtimes: dict[str, _PodRuntime] = {}
        self._terminators: list[threading.Thread] = []
        self._last_status: dict[str, Obj] = {}
        self._stopping = False
        self._failed = False
        self._stop = threading.Event()
        self._manager: Manager | None = None
        self._recorder: EventRecorder | None = None
        self._controller: Any = None
        self._heartbeat: threading.Thread | None = None
        self._bin_dirs: dict[str, Path] = {}
        self.finished: deque[Obj] = deque(maxlen=1000)
        """The last container runs that ended: namespace, pod, uid, container, exitCode..."""
        self._image_cache: dict[str, ImageSpec] = {}

    # -- wiring -----------------------------------------------------------------------------------

    def _mine(self, pod: Obj) -> bool:
        return _spec(pod).get("nodeName") == self.node_name

    def setup(self, manager: Manager) -> None:
        """Register the kubelet's controller (and, if it owns it, the DNS) on ``manager``."""
        self._manager = manager
        manager.cache.add_indexers("v1", "Pod", {_REFS_INDEX: _pod_refs})

        def users(prefix: str) -> Callable[[Obj], list[Request]]:
            def mapper(obj: Obj) -> list[Request]:
                key = f"{prefix}:{_meta(obj).get('namespace')}/{_meta(obj).get('name')}"
                pods = manager.cache.by_index("v1", "Pod", _REFS_INDEX, key, copy=False)
                return [Request.from_object(p) for p in pods if self._mine(p)]

            return mapper

        def volume_users(pv: Obj) -> list[Request]:
            ref = _spec(pv).get("claimRef") or {}
            if not ref.get("name"):
                return []
            claim = {"metadata": {"namespace": ref.get("namespace"), "name": ref.get("name")}}
            return users("pvc")(claim)

        self._controller = manager.controller(
            f"kubelet-{self.node_name}",
            self,
            for_=Source("v1", "Pod", predicates=[new_predicate_funcs(self._mine)]),
            watches=[
                (("v1", "ConfigMap"), users("cm")),
                (("v1", "Secret"), users("secret")),
                (("v1", "PersistentVolumeClaim"), users("pvc")),
                (("v1", "PersistentVolume"), volume_users),
            ],
            max_concurrent_reconciles=self.config.workers,
            need_leader_election=False,
        )
        self._recorder = manager.event_recorder("kubelet")
        if self._own_dns:
            self.dns.setup(manager)
        self.dns.add_listener(self._on_dns)

    def start(self) -> Kubelet:
        """Register the Node and start the background work (call after the manager started)."""
        self._pods_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self._pods_dir.iterdir():  # a crashed run's pods
            shutil.rmtree(leftover, ignore_errors=True)
        if self._own_dns:
            self.dns.start()
        self._register_node(ready=True)
        if self.config.heartbeat:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name=f"kubelet-{self.node_name}-lease", daemon=True
            )
            self._heartbeat.start()
        return self

    def stop(self) -> None:
        """End every pod's processes (``stop_grace``), remove their sandboxes, join threads.

        Pod objects are left as they are: the control plane is stopping too.
        """
        self._stopping = True
        self._stop.set()
        with self._lock:
            runtimes = list(self._runtimes.values())
        for rt in runtimes:
            grace = min(self._grace(rt.pod), self.config.stop_grace)
            self._begin_termination(rt, grace, delete=False)
        for t in self._threads():
            t.join(timeout=self.config.stop_grace + 30)
        self.registry.kill_all()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
        if self._own_dns:
            self.dns.stop()

    def _threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._terminators)

    def enqueue(self, namespace: str, name: str) -> None:
        if self._controller is not None and not self._stopping:
            self._controller.enqueue(Request(namespace, name))

    # -- events -----------------------------------------------------------------------------------

    def _event(self, rt: _PodRuntime | Mapping[str, Any], kind: str, reason: str, msg: str) -> None:
        if self._recorder is None:
            return
        pod = rt.pod if isinstance(rt, _PodRuntime) else rt
        ref = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": _meta(pod).get("name"),
                "namespace": _meta(pod).get("namespace"),
                "uid": _meta(pod).get("uid"),
                "resourceVersion": _meta(pod).get("resourceVersion"),
            },
        }
        self._recorder.event(ref, kind, reason, msg)

    def _note_once(self, rt: _PodRuntime, kind: str, reason: str, msg: str) -> None:
        key = f"{reason}:{msg}"
        if key not in rt.noted:
            rt.noted.add(key)
            self._event(rt, kind, reason, msg)

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(self, request: Request) -> Result | None:
        if self._stopping:
            return None
        assert self._manager is not None
        pod = self._manager.cache.get("v1", "Pod", request.namespace, request.name, copy=False)
        mine = pod is not None and self._mine(pod)
        uid = str(_meta(pod).get("uid") or "") if pod is not None and mine else ""
        with self._lock:
            stale = [
                rt for rt in self._runtimes.values() if rt.key == request.key and rt.uid != uid
            ]
            rt = self._runtimes.get(uid) if uid else None
        for old in stale:
            if not old.terminating:  # gone from the API (force-deleted) or replaced
                self._begin_termination(old, _FORCE_DELETE_GRACE, delete=False)
        if pod is None or not mine or self._failed:
            return None
        if _meta(pod).get("deletionTimestamp"):
            if rt is None:
                self._delete_pod_object(pod)
            else:
                self._begin_termination(rt, self._grace(pod), delete=True)
            return None
        if self.config.refuse is not None or self.network is None:
            self._refuse(pod)
            return None
        if rt is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None
            if any(not old.done.is_set() for old in stale):
                return Result(requeue_after=0.1)  # the previous pod of that name is stopping
            rt = _PodRuntime(pod, self._pods_dir)
            with self._lock:
                self._runtimes[rt.uid] = rt
        with rt.lock:
            if rt.terminating:
                return None
            rt.pod = pod
            return self._sync(rt)

    def _grace(self, pod: Mapping[str, Any]) -> float:
        meta = _meta(pod)
        value = meta.get("deletionGracePeriodSeconds")
        if value is None:
            value = _spec(pod).get("terminationGracePeriodSeconds")
        try:
            return max(0.0, float(value if value is not None else 30))
        except (TypeError, ValueError):
            return 30.0

    def _refuse(self, pod: Mapping[str, Any]) -> None:
        reason = self.config.refuse or "pod networking is not available"
        status = self._base_status(pod, None, pending_reason=reason)
        self._write_status(pod, status)
        uid = str(_meta(pod).get("uid") or "")
        if uid not in self._last_status or "refused" not in self._last_status[uid]:
            self._event(pod, "Warning", "FailedCreatePodSandBox", reason)
            self._last_status.setdefault(uid, {})["refused"] = True

    # -- the pod's sandbox ------------------------------------------------------------------------

    def _sync(self, rt: _PodRuntime) -> Result | None:
        now = self.clock.monotonic()
        wake: list[float] = []
        pod = rt.pod
        if not rt.start_time:
            rt.start_time = str((pod.get("status") or {}).get("startTime") or _now(self.clock))
        if rt.iface is None and not rt.final_phase:
            try:
                self._create_sandbox(rt)
            except (PodNetworkError, OSError) as e:
                msg = f"failed to create the pod sandbox: {e}"
                self._note_once(rt, "Warning", "FailedCreatePodSandBox", msg)
                self._write_status(pod, self._base_status(pod, None, pending_reason=msg))
                return Result(requeue_after=self.config.retry_interval)
        try:
            rt.volume_paths = rt.volumes.sync(pod, self._volume_context(rt))
            rt.sa_dir = self._service_account_dir(rt)
            rt.volume_error = ""
        except VolumeError as e:
            rt.volume_error = str(e)
            self._note_once(rt, "Warning", "FailedMount", str(e))
            self._write_status(pod, self._status(rt))
            return Result(requeue_after=self.config.retry_interval)
        if not rt.final_phase:
            policy = str(_spec(pod).get("restartPolicy") or "Always")
            for c in rt.init:
                if c.succeeded:
                    continue
                if not c.running:
                    self._maybe_start(rt, c, "OnFailure" if policy == "Always" else policy, wake)
                break
            if rt.initialized():
                for c in rt.main:
                    self._check_image_change(rt, c)
                    if not c.running:
                        self._maybe_start(rt, c, policy, wake)
        status = self._status(rt)
        if status["phase"] in ("Succeeded", "Failed") and not rt.final_phase:
            rt.final_phase = status["phase"]
            self._release_sandbox(rt)
        self._write_status(pod, status)
        if wake:
            return Result(requeue_after=max(0.01, min(wake) - now))
        return None

    def _create_sandbox(self, rt: _PodRuntime) -> None:
        assert self.network is not None
        rt.dir.mkdir(parents=True, exist_ok=True)
        (rt.dir / "logs").mkdir(exist_ok=True)
        iface = self.network.add_pod(rt.pod_id)
        hosts = rt.dir / "hosts"
        rt.hosts_text = self._hosts_for(rt, self.dns.records, iface.ip)
        write_hosts_file(hosts, rt.hosts_text)
        hosts.chmod(0o644)
        (rt.dir / "resolv.conf").write_text(
            resolv_conf_text(rt.namespace, cluster_domain=self.config.cluster_domain)
        )
        rt.iface = iface

    def _release_sandbox(self, rt: _PodRuntime) -> None:
        for c in rt.containers:
            self._stop_probes(c)
        if rt.iface is not None and self.network is not None:
            self.network.teardown_pod(rt.pod_id)
        rt.iface = None

    def _hosts_for(self, rt: _PodRuntime, records: list[HostRecord], ip: str) -> str:
        view = {
            "metadata": {"name": rt.name, "namespace": rt.namespace},
            "spec": {"hostname": rt.hostname, "subdomain": _spec(rt.pod).get("subdomain")},
            "status": {"podIP": ip},
        }
        return hosts_text(records, pod=view, cluster_domain=self.config.cluster_domain)

    def _on_dns(self, records: list[HostRecord]) -> None:
        with self._lock:
            runtimes = list(self._runtimes.values())
        for rt in runtimes:
            iface = rt.iface
            if iface is None or rt.terminating:
                continue
            text = self._hosts_for(rt, records, iface.ip)
            if text != rt.hosts_text:
                rt.hosts_text = text
                with contextlib.suppress(OSError):
                    write_hosts_file(rt.dir / "hosts", text)

    def _get(self, kind: str) -> Callable[[str, str], Mapping[str, Any] | None]:
        assert self._manager is not None
        cache = self._manager.cache

        def get(namespace: str, name: str) -> Mapping[str, Any] | None:
            obj = cache.get("v1", kind, namespace, name, copy=False)
            root_ca = kind == "ConfigMap" and name == "kube-root-ca.crt"
            if obj is None and root_ca and self.config.ca_pem:
                return {"data": {"ca.crt": self.config.ca_pem.decode()}}
            return obj

        return get

    def _token(self, namespace: str, sa: str, audience: str, expiration: int) -> str:
        source = self.config.token or service_account_token
        return source(namespace, sa, audience, expiration)

    def _volume_context(self, rt: _PodRuntime) -> VolumeContext:
        assert self._manager is not None
        cache = self._manager.cache
        return VolumeContext(
            get_configmap=self._get("ConfigMap"),
            get_secret=self._get("Secret"),
            get_pvc=self._get("PersistentVolumeClaim"),
            get_pv=lambda name: cache.get("v1", "PersistentVolume", None, name, copy=False),
            token=self._token,
            pod_ip=rt.iface.ip if rt.iface else "",
            host_ip=self._host_ip,
        )

    @property
    def _host_ip(self) -> str:
        return self.network.bridge_ip if self.network is not None else "127.0.0.1"

    def _service_account_dir(self, rt: _PodRuntime) -> Path | None:
        spec = _spec(rt.pod)
        if spec.get("automountServiceAccountToken") is False:
            return None
        sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        path = rt.dir / "serviceaccount"
        if path.is_dir() and rt.sa_dir is not None:
            return path
        payload = {
            "token": (self._token(rt.namespace, sa, "", 3607).encode(), 0o644),
            "namespace": (rt.namespace.encode(), 0o644),
        }
        if self.config.ca_pem:
            payload["ca.crt"] = (self.config.ca_pem, 0o644)
        atomic_write(path, payload)
        return path

    # -- containers -------------------------------------------------------------------------------

    def _maybe_start(self, rt: _PodRuntime, c: _Container, policy: str, wake: list[float]) -> None:
        now = self.clock.monotonic()
        if c.last_term is None and c.attempts and c.waiting is not None:
            # An image or configuration error: retried on its own schedule (and on events).
            if now < c.retry_at:
                wake.append(c.retry_at)
                return
        elif c.last_term is not None:
            code = int(c.last_term["exitCode"])
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            reset = self.config.backoff_reset or 2 * self.config.backoff_max
            entry = c.backoff_updated is not None and now - c.backoff_updated <= reset
            if entry and now - c.finished_mono < c.backoff:
                until = c.finished_mono + c.backoff
                pod_ref = f"{rt.name}_{rt.namespace}({rt.uid})"
                if c.waiting is None or c.waiting[0] != "CrashLoopBackOff":
                    self._event(
                        rt,
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {c.name} in pod {pod_ref}",
                    )
                c.waiting = (
                    "CrashLoopBackOff",
                    f"back-off {_duration(c.backoff)} restarting failed container={c.name} "
                    f"pod={pod_ref}",
                )
                wake.append(until)
                return
            c.backoff = (
                min(c.backoff * 2, self.config.backoff_max) if entry else self.config.backoff_base
            )
            c.backoff_updated = now
        self._start_container(rt, c, wake)

    def _image(self, image: str) -> ImageSpec:
        spec = self._image_cache.get(image)
        if spec is None:
            spec = self.images.resolve(image)
            self._image_cache[image] = spec
        return spec

    def _bin_dir(self, spec: ImageSpec) -> Path:
        key = spec.image_id.split(":", 1)[1][:16]
        found = self._bin_dirs.get(key)
        if found is not None:
            return found
        bin_dir = self._images_dir / key / "bin"
        if bin_dir.exists():
            shutil.rmtree(bin_dir)
        bin_dir.mkdir(parents=True)
        for name, argv in program_links(spec):
            link = bin_dir / name
            if len(argv) == 1:
                link.symlink_to(argv[0])
            else:
                quoted = " ".join(f"'{a}'" for a in argv)
                link.write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
                link.chmod(0o755)
        self._bin_dirs[key] = bin_dir
        return bin_dir

    def _start_container(self, rt: _PodRuntime, c: _Container, wake: list[float]) -> None:
        assert rt.iface is not None
        image = str(c.spec.get("image") or "")
        c.attempts += 1
        try:
            spec = self._image(image)
        except ImageNotFound as e:
            c.failures += 1
            reason = "ErrImagePull" if c.failures == 1 else "ImagePullBackOff"
            msg = f"Failed to pull image {image!r}: {e}"
            if reason == "ImagePullBackOff":
                msg = f"Back-off pulling image {image!r}: {e}"
            c.waiting = (reason, msg)
            c.retry_at = self.clock.monotonic() + self.config.retry_interval
            wake.append(c.retry_at)
            self._event(rt, "Warning", "Failed", msg)
            return
        c.image_id = spec.image_id
        try:
            env = self._container_env(rt, c, spec)
        except ConfigError as e:
            c.failures += 1
            c.waiting = ("CreateContainerConfigError", str(e))
            c.retry_at = self.clock.monotonic() + self.config.retry_interval
            wake.append(c.retry_at)
            self._event(rt, "Warning", "Failed", f"Error: {e}")
            return
        c.failures = 0
        self._note_once(
            rt, "Normal", "Pulled", f'Container image "{image}" already present on machine'
        )
        restart = c.last_term is not None
        started_at = _now(self.clock)
        digest = hashlib.sha1(f"{rt.uid}/{c.name}/{c.attempts}".encode()).hexdigest()
        c.container_id = f"opkit://{digest[:32]}"
        try:
            lookup = env.get
            argv = [
                expand(str(a), lookup)
                for a in container_argv(spec, c.spec.get("command"), c.spec.get("args"))
            ]
            program = resolve_command(spec, argv)
            prefix = self._podexec(rt, c, spec, env)
            proc = spawn(
                program,
                prefix=prefix,
                env=env,
                stdout_path=c.log_path,
                stderr_path=c.log_path,
                registry=self.registry,
            )
        except (OSError, ValueError, ConfigError) as e:
            message = str(e.args[0]) if isinstance(e, FileNotFoundError) and e.args else str(e)
            c.last_term = {
                "exitCode": 128,
                "reason": "StartError",
                "message": f"failed to start container {c.name!r}: {message}",
                "startedAt": started_at,
                "finishedAt": started_at,
                "containerID": c.container_id,
            }
            c.finished_mono = self.clock.monotonic()
            if restart:
                c.restart_count += 1
            c.waiting = None
            self._event(rt, "Warning", "Failed", f"Error: {message}")
            # The restart decision (and back-off) happens on the next pass.
            wake.append(self.clock.monotonic())
            return
        if restart:
            c.restart_count += 1
        c.proc = proc
        c.waiting = None
        c.started_at = started_at
        c.started_mono = self.clock.monotonic()
        c.kill_reason = ""
        c.ready = False
        c.started = "startupProbe" not in c.spec or not c.spec.get("startupProbe")
        self._event(rt, "Normal", "Created", f"Created container {c.name}")
        self._event(rt, "Normal", "Started", f"Started container {c.name}")
        waiter = threading.Thread(
            target=self._wait_container,
            args=(rt, c, proc),
            name=f"kubelet-wait-{rt.name}-{c.name}",
            daemon=True,
        )
        c.waiter = waiter
        waiter.start()
        self._start_probes(rt, c)

    def _container_env(self, rt: _PodRuntime, c: _Container, spec: ImageSpec) -> dict[str, str]:
        service_env: dict[str, str] = {}
        if self.config.api_host and self.config.api_port:
            host, port = self.config.api_host, str(self.config.api_port)
            service_env = {
                "KUBERNETES_SERVICE_HOST": host,
                "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port,
                "KUBERNETES_PORT": f"tcp://{host}:{port}",
                f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
                f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
                f"KUBERNETES_PORT_{port}_TCP_PORT": port,
                f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
            }
        own = container_env(
            rt.pod,
            c.spec,
            get_configmap=self._get("ConfigMap"),
            get_secret=self._get("Secret"),
            service_env=service_env,
            pod_ip=rt.iface.ip if rt.iface else "",
            host_ip=self._host_ip,
        )
        env = {
            "PATH": f"{IMAGE_BIN_DIR}:{HOST_PATH}",
            "HOSTNAME": rt.hostname,
            "HOME": str(self._home(rt, c)),
            **spec.env,
        }
        env.update(own)
        return env

    @staticmethod
    def _home(rt: _PodRuntime, c: _Container) -> Path:
        """The container's private directory: ``HOME`` and the default working directory (a
        program writing relative paths must not write into the host's ``/``)."""
        home = rt.dir / "containers" / c.name / "home"
        home.mkdir(parents=True, exist_ok=True)
        return home

    def _podexec(
        self, rt: _PodRuntime, c: _Container, spec: ImageSpec, env: Mapping[str, str]
    ) -> list[str]:
        assert rt.iface is not None
        cdir = rt.dir / "containers" / c.name
        (cdir / "scratch").mkdir(parents=True, exist_ok=True)
        mounts = [m for m in c.spec.get("volumeMounts") or () if m.get("mountPath")]
        mount_paths = [os.path.normpath(str(m["mountPath"])) for m in mounts]
        binds: list[tuple[str, str, bool]] = []
        # The image's own file system first: volumes mounted over it hide it, as they would.
        for d in spec.dirs:
            if not _covered(d, mount_paths):
                host = cdir / "image" / d.lstrip("/")
                host.mkdir(parents=True, exist_ok=True)
                binds.append((str(host), d, False))
        for path, content in spec.files.items():
            if not _covered(path, mount_paths):
                host = cdir / "image-files" / path.lstrip("/")
                host.parent.mkdir(parents=True, exist_ok=True)
                if not host.exists():
                    host.write_text(content)
                binds.append((str(host), path, False))
        if spec.programs:
            binds.append((str(self._bin_dir(spec)), IMAGE_BIN_DIR, True))
        volumes = {str(v.get("name")): v for v in _spec(rt.pod).get("volumes") or ()}
        for m in mounts:
            name = str(m.get("name") or "")
            source = rt.volume_paths.get(name)
            if source is None:
                raise ConfigError(f'volumeMount "{name}" names no volume of the pod')
            sub = str(m.get("subPath") or "")
            if m.get("subPathExpr"):
                sub = expand(str(m["subPathExpr"]), env.get)
            if sub:
                if sub.startswith("/") or ".." in sub.split("/"):
                    raise ConfigError(f"invalid subPath {sub!r}")
                candidate = Path(source) / sub
                if not candidate.exists():
                    candidate.mkdir(parents=True, exist_ok=True)
                source = str(candidate.resolve())
            kinds = set(volumes.get(name, {})) - {"name"}
            read_only = bool(m.get("readOnly")) or bool(kinds & ALWAYS_READ_ONLY)
            binds.append((source, str(m["mountPath"]), read_only))
        if rt.sa_dir is not None and not _covered(SERVICE_ACCOUNT_DIR, mount_paths):
            binds.append((str(rt.sa_dir), SERVICE_ACCOUNT_DIR, True))
        cwd = str(c.spec.get("workingDir") or spec.workdir or self._home(rt, c))
        return podexec_argv(
            netns=rt.iface.netns,
            hosts_file=rt.dir / "hosts",
            resolv_file=rt.dir / "resolv.conf",
            hostname=rt.hostname,
            pid_ns=True,
            init=True,
            binds=binds,
            scratch=cdir / "scratch",
            cwd=cwd,
        )

    def _check_image_change(self, rt: _PodRuntime, c: _Container) -> None:
        specs = {str(s.get("name")): s for s in _spec(rt.pod).get("containers") or ()}
        new = specs.get(c.name)
        if new is None or new.get("image") == c.spec.get("image"):
            return
        c.spec = new
        if c.proc is not None:
            self._event(
                rt, "Normal", "Killing", f"Container {c.name} definition changed, will be restarted"
            )
            self._kill_async(rt, c, self._grace(rt.pod), "definition changed")

    def _wait_container(self, rt: _PodRuntime, c: _Container, proc: Proc) -> None:
        code = proc.wait()
        finished = _now(self.clock)
        with rt.lock:
            if c.proc is proc:
                c.proc = None
                c.ready = False
                term: Obj = {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": c.started_at,
                    "finishedAt": finished,
                    "containerID": c.container_id,
                }
                if proc.term_signal:
                    term["signal"] = int(proc.term_signal)
                c.last_term = term
                c.finished_mono = self.clock.monotonic()
                self.finished.append(
                    {
                        "namespace": rt.namespace,
                        "pod": rt.name,
                        "uid": rt.uid,
                        "container": c.name,
                        **term,
                    }
                )
                # Under the lock: once it is released, a sync may restart the container, and
                # the new run's probes must not be the ones stopped.
                self._stop_probes(c, join=False)
        self.enqueue(rt.namespace, rt.name)

    def _kill_async(self, rt: _PodRuntime, c: _Container, grace: float, why: str) -> None:
        proc = c.proc
        if proc is None:
            return
        c.kill_reason = why
        threading.Thread(
            target=_stop_proc,
            args=(proc, grace),
            name=f"kubelet-kill-{rt.name}-{c.name}",
            daemon=True,
        ).start()

    # -- probes -----------------------------------------------------------------------------------

    def _start_probes(self, rt: _PodRuntime, c: _Container) -> None:
        kinds = ("startup",) if not c.started else ("readiness", "liveness")
        for kind in kinds:
            probe = c.spec.get(f"{kind}Probe")
            if probe and not c.init and c.proc is not None and rt.iface is not None:
                worker = self._probe_worker(
                    rt, c, c.proc, rt.iface, ProbeSpec.from_probe(kind, probe)
                )
                c.probes[kind] = worker
                worker.start()
        if not c.spec.get("readinessProbe") and c.started:
            c.ready = True

    def _probe_worker(
        self, rt: _PodRuntime, c: _Container, proc: Proc, iface: PodInterface, spec: ProbeSpec
    ) -> ProbeWorker:
        netns = str(iface.netns_path)
        container = c.spec

        def run_exec(argv: list[str], timeout: float) -> tuple[int, str]:
            return self._exec_in(rt, c, proc, argv, timeout)

        def run_check() -> tuple[bool, str]:
            return check(
                spec.handler,
                container=container,
                pod_ip=iface.ip,
                netns=netns,
                timeout=spec.timeout,
                run_exec=run_exec,
            )

        def on_change(worker: ProbeWorker) -> None:
            self._probe_changed(rt, c, worker)

        def on_failure(worker: ProbeWorker, message: str) -> None:
            kind = worker.spec.kind.capitalize()
            self._event(rt, "Warning", "Unhealthy", f"{kind} probe failed: {message}")

        return ProbeWorker(
            spec,
            run_check,
            on_change=on_change,
            on_failure=on_failure,
            name=f"probe-{spec.kind}-{rt.name}-{c.name}",
        )

    def _stop_probes(self, c: _Container, join: bool = True) -> None:
        workers = list(c.probes.values())
        c.probes.clear()
        for w in workers:
            w.stop(join=join)

    def _probe_changed(self, rt: _PodRuntime, c: _Container, worker: ProbeWorker) -> None:
        with rt.lock:
            if c.probes.get(worker.spec.kind) is not worker or rt.terminating:
                return
            kind = worker.spec.kind
            if kind == "readiness":
                c.ready = worker.result
            elif kind == "startup" and worker.result:
                c.started = True
                c.probes.pop("startup", None)
                self._start_probes(rt, c)
            if kind in ("liveness", "startup") and not worker.result:
                self._event(
                    rt,
                    "Normal",
                    "Killing",
                    f"Container {c.name} failed {kind} probe, will be restarted",
                )
                grace = worker.spec.termination_grace
                self._kill_async(
                    rt, c, grace if grace is not None else self._grace(rt.pod), f"{kind} probe"
                )
        self.enqueue(rt.namespace, rt.name)

    def _exec_in(
        self, rt: _PodRuntime, c: _Container, proc: Proc, argv: list[str], timeout: float
    ) -> tuple[int, str]:
        try:
            spec = self._image(str(c.spec.get("image") or ""))
            program = resolve_command(spec, argv)
            env = self._container_env(rt, c, spec)
        except (ImageNotFound, ConfigError, OSError) as e:
            return 126, str(e)
        try:
            probe = subprocess.Popen(
                [*podexec_argv(join=proc.pid), *program],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            return 126, f"cannot run {argv!r}: {e}"
        with probe:
            try:
                out, err = probe.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The command and whatever it started: they share the wrapper's new session.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(probe.pid, signal.SIGKILL)
                probe.wait()  # not the pipes: an escaped daemon may hold them open
                return -1, ""
        return probe.returncode, (out + err).decode(errors="replace")

    # -- status -----------------------------------------------------------------------------------

    def _container_status(self, rt: _PodRuntime, c: _Container, blocked: str) -> Obj:
        image = str(c.spec.get("image") or "")
        out: Obj = {
            "name": c.name,
            "image": image,
            "imageID": c.image_id,
            "ready": bool(c.running and c.ready and c.started),
            "restartCount": c.restart_count,
            "started": bool(c.running and c.started),
            "state": {},
            "lastState": {},
        }
        if c.container_id:
            out["containerID"] = c.container_id
        if c.running:
            out["state"] = {"running": {"startedAt": c.started_at}}
            if c.last_term is not None:
                out["lastState"] = {"terminated": dict(c.last_term)}
        elif c.waiting is not None:
            reason, message = c.waiting
            out["state"] = {"waiting": {"reason": reason, "message": message}}
            if c.last_term is not None:
                out["lastState"] = {"terminated": dict(c.last_term)}
        elif c.last_term is not None:
            out["state"] = {"terminated": dict(c.last_term)}
        else:
            waiting: Obj = {"reason": blocked}
            if blocked == "ContainerCreating" and rt.volume_error:
                waiting["message"] = rt.volume_error
            out["state"] = {"waiting": waiting}
        if c.init:
            out.pop("started", None)
        return out

    def _phase(self, rt: _PodRuntime) -> str:
        """The kubelet's ``getPhase``."""
        if rt.final_phase:
            return rt.final_phase
        policy = str(_spec(rt.pod).get("restartPolicy") or "Always")
        for c in rt.init:
            failed = c.last_term is not None and c.last_term["exitCode"] != 0 and not c.running
            if failed and policy == "Never":
                return "Failed"
        if not rt.initialized():
            return "Pending"
        running = waiting = stopped = succeeded = 0
        for c in rt.main:
            if c.running:
                running += 1
            elif c.last_term is not None:
                stopped += 1
                if c.last_term["exitCode"] == 0:
                    succeeded += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            if policy == "Never":
                return "Failed"
            return "Running"
        return "Pending"

    def _status(self, rt: _PodRuntime) -> Obj:
        pod = rt.pod
        phase = self._phase(rt)
        initialized = rt.initialized()
        init_blocked = "PodInitializing" if not rt.volume_error else "ContainerCreating"
        blocked = "ContainerCreating" if rt.volume_error or rt.iface is None else init_blocked
        init_statuses = [
            self._container_status(rt, c, "PodInitializing" if i else blocked)
            for i, c in enumerate(rt.init)
        ]
        statuses = [
            self._container_status(rt, c, blocked if initialized else "PodInitializing")
            for c in rt.main
        ]
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        terminal = phase in ("Succeeded", "Failed")
        conds: dict[str, tuple[str, str, str]] = {
            "PodReadyToStartContainers": (
                "True" if rt.iface is not None or terminal else "False",
                "",
                "",
            ),
            "Initialized": ("True", "", "")
            if initialized
            else (
                "False",
                "ContainersNotInitialized",
                "containers with incomplete status: "
                f"[{' '.join(c.name for c in rt.init if not c.succeeded)}]",
            ),
        }
        if terminal and phase == "Succeeded":
            conds["Ready"] = ("False", "PodCompleted", "")
            conds["ContainersReady"] = ("False", "PodCompleted", "")
        elif not_ready:
            msg = f"containers with unready status: [{' '.join(not_ready)}]"
            conds["Ready"] = ("False", "ContainersNotReady", msg)
            conds["ContainersReady"] = ("False", "ContainersNotReady", msg)
        else:
            conds["Ready"] = ("True", "", "")
            conds["ContainersReady"] = ("True", "", "")
        status = self._base_status(pod, rt.iface.ip if rt.iface else None, conditions=conds)
        status["phase"] = phase
        status["startTime"] = rt.start_time
        status["containerStatuses"] = statuses
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        return status

    def _base_status(
        self,
        pod: Mapping[str, Any],
        ip: str | None,
        *,
        conditions: dict[str, tuple[str, str, str]] | None = None,
        pending_reason: str = "",
    ) -> Obj:
        """Conditions (keeping transition times), IPs and, for a pod that cannot start,
        waiting container statuses explaining why."""
        current = {str(c.get("type")): c for c in (pod.get("status") or {}).get("conditions") or ()}
        if conditions is None:
            conditions = {
                "PodReadyToStartContainers": ("False", "", pending_reason),
                "Initialized": ("True", "", ""),
                "Ready": ("False", "ContainersNotReady", pending_reason),
                "ContainersReady": ("False", "ContainersNotReady", pending_reason),
            }
        now = _now(self.clock)
        out: list[Obj] = []
        for ctype in _CONDITION_ORDER:
            state, reason, message = conditions[ctype]
            cond: Obj = {"type": ctype, "status": state, "lastProbeTime": None}
            old = current.get(ctype)
            cond["lastTransitionTime"] = (
                old.get("lastTransitionTime") if old and old.get("status") == state else now
            )
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            out.append(cond)
        scheduled = dict(current.get("PodScheduled") or {})
        if scheduled.get("status") != "True":
            scheduled = {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
        out.append(scheduled)
        status: Obj = {
            "conditions": out,
            "hostIP": self._host_ip,
            "hostIPs": [{"ip": self._host_ip}],
            "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
        }
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        if pending_reason:
            reason = pending_reason
            status["phase"] = "Pending"
            status["containerStatuses"] = [
                {
                    "name": str(c.get("name")),
                    "image": str(c.get("image") or ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "waiting": {"reason": "ContainerCreating", "message": pending_reason}
                    },
                    "lastState": {},
                }
                for c in _spec(pod).get("containers") or ()
            ]
        return status

    def _write_status(self, pod: Mapping[str, Any], status: Obj) -> None:
        uid = str(_meta(pod).get("uid") or "")
        last = self._last_status.get(uid)
        if last is not None and last.get("status") == status:
            return
        try:
            self._pods.patch(
                str(_meta(pod).get("name")),
                {"metadata": {"uid": uid}, "status": status},
                str(_meta(pod).get("namespace")),
                subresource="status",
                field_manager=_FIELD_MANAGER,
            )
        except (errors.NotFound, errors.Conflict, errors.Invalid):
            return
        entry = self._last_status.setdefault(uid, {})
        entry["status"] = status

    # -- termination ------------------------------------------------------------------------------

    def _begin_termination(self, rt: _PodRuntime, grace: float, *, delete: bool) -> None:
        with rt.lock:
            if rt.terminating:
                return
            rt.terminating = True
        t = threading.Thread(
            target=self._terminate,
            args=(rt, grace, delete),
            name=f"kubelet-terminate-{rt.name}",
            daemon=True,
        )
        with self._lock:
            self._terminators = [x for x in self._terminators if x.is_alive()]
            self._terminators.append(t)
        t.start()

    def _terminate(self, rt: _PodRuntime, grace: float, delete: bool) -> None:
        try:
            with rt.lock:
                for c in rt.containers:
                    for w in c.probes.values():
                        w.stop(join=False)
                procs = [c.proc for c in rt.containers if c.proc is not None]
                if procs and delete:
                    for c in rt.containers:
                        if c.proc is not None:
                            self._event(rt, "Normal", "Killing", f"Stopping container {c.name}")
            deadline = time.monotonic() + grace
            for p in procs:
                _signal_main(p, signal.SIGTERM, deadline)
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(max(0.0, deadline - time.monotonic()))
            for p in procs:
                p.terminate(0)
            for c in rt.containers:
                self._stop_probes(c)
                if c.waiter is not None:
                    c.waiter.join(timeout=10)
            if rt.iface is not None and self.network is not None:
                with contextlib.suppress(PodNetworkError, OSError):
                    self.network.teardown_pod(rt.pod_id)
                rt.iface = None
            shutil.rmtree(rt.dir, ignore_errors=True)
            if delete:
                self._delete_pod_object(rt.pod)
        except Exception:
            _log.exception("terminating pod %s failed", rt.key)
        finally:
            with self._lock:
                self._runtimes.pop(rt.uid, None)
            self._last_status.pop(rt.uid, None)
            rt.done.set()
            self.enqueue(rt.namespace, rt.name)

    def _delete_pod_object(self, pod: Mapping[str, Any]) -> None:
        meta = _meta(pod)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self._pods.delete(
                str(meta.get("name")),
                str(meta.get("namespace")),
                grace_period_seconds=0,
                preconditions={"uid": str(meta.get("uid") or "")},
            )

    # -- node -------------------------------------------------------------------------------------

    def _node_status(self, ready: bool) -> Obj:
        now = _now(self.clock)
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
        except (ValueError, OSError):
            memory = 8 * 1024 * 1024
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{memory}Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        ready_cond: Obj = {
            "type": "Ready",
            "status": "True" if ready else "Unknown",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status"
            if ready
            else "Kubelet stopped posting node status.",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        kinds = (
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        )
        pressure = [
            {
                "type": t,
                "status": "False" if ready else "Unknown",
                "reason": r,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for t, r in kinds
        ]
        return {
            "conditions": [*pressure, ready_cond],
            "addresses": [
                {"type": "InternalIP", "address": self._host_ip},
                {"type": "Hostname", "address": self.node_name},
            ],
            "capacity": capacity,
            "allocatable": dict(capacity),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "operatingSystem": "linux",
                "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                    platform.machine(), platform.machine()
                ),
                "containerRuntimeVersion": "opkit://local-processes",
                "osImage": platform.platform(),
                "kernelVersion": platform.release(),
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }

    def _register_node(self, *, ready: bool) -> None:
        taints = [
            {"key": "node.kubernetes.io/unreachable", "effect": e, "timeAdded": _now(self.clock)}
            for e in ("NoSchedule", "NoExecute")
            if not ready
        ]
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "opkit-local",
                },
            },
            "spec": {"taints": taints} if taints else {},
        }
        try:
            self._nodes.create(node, field_manager=_FIELD_MANAGER)
        except errors.AlreadyExists:
            self._nodes.patch(
                self.node_name, {"spec": {"taints": taints or None}}, field_manager=_FIELD_MANAGER
            )
        self._nodes.patch(
            self.node_name,
            {"status": self._node_status(ready)},
            subresource="status",
            field_manager=_FIELD_MANAGER,
        )

    def _heartbeat_loop(self) -> None:
        leases = self.client.resource("coordination.k8s.io/v1", "Lease")
        interval = float(self.config.heartbeat or 10.0)
        while not self._stop.is_set():
            if not self._failed:
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                lease = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                    "spec": {
                        "holderIdentity": self.node_name,
                        "leaseDurationSeconds": 40,
                        "renewTime": now,
                    },
                }
                try:
                    try:
                        leases.patch(self.node_name, {"spec": lease["spec"]}, "kube-node-lease")
                    except errors.NotFound:
                        leases.create(lease, "kube-node-lease")
                except errors.ApiError as e:
                    _log.debug("node lease update failed: %s", e)
                except errors.TransportError:
                    pass
            self._stop.wait(interval)

    # -- test hooks -------------------------------------------------------------------------------

    def _runtime(self, namespace: str, name: str) -> _PodRuntime | None:
        with self._lock:
            found = [rt for rt in self._runtimes.values() if rt.key == f"{namespace}/{name}"]
        live = [rt for rt in found if not rt.terminating]
        chosen = live or found
        return chosen[-1] if chosen else None

    def has_pod(self, namespace: str, name: str) -> bool:
        return self._runtime(namespace, name) is not None

    def container_pids(self, namespace: str, name: str, container: str | None = None) -> list[int]:
        """Host pids of the programs (not their supervisors) running in a pod's containers."""
        rt = self._runtime(namespace, name)
        if rt is None:
            return []
        pids: list[int] = []
        for c in rt.containers:
            if (container is None or c.name == container) and c.proc is not None:
                pids += [p for p in _descendants(c.proc.pid) if not _is_podexec(p)]
        return pids

    def kill_pod(
        self, namespace: str, name: str, container: str | None = None, sig: int = signal.SIGKILL
    ) -> int:
        """Chaos: signal the process groups of a pod's containers (default SIGKILL), as if they
        crashed. The kubelet notices and restarts them per ``restartPolicy``. Returns how many
        containers were hit."""
        rt = self._runtime(namespace, name)
        if rt is None:
            return 0
        hit = 0
        with rt.lock:
            for c in rt.containers:
                chosen = container is None or c.name == container
                if chosen and c.proc is not None and c.proc.send_signal(sig):
                    hit += 1
        return hit

    @property
    def failed(self) -> bool:
        return self._failed

    def fail(self) -> None:
        """Chaos: the node fails. Every process is killed abruptly, nothing is restarted or
        reported any more, the Node turns ``Ready=Unknown`` (tainted unreachable) and its pods
        ``Ready=False``, as the node lifecycle controller would mark them."""
        self._failed = True
        with self._lock:
            runtimes = list(self._runtimes.values())
        for rt in runtimes:
            with rt.lock:
                for c in rt.containers:
                    for w in c.probes.values():
                        w.stop(join=False)
                    if c.proc is not None:
                        c.proc.kill()
        with contextlib.suppress(errors.ApiError):
            self._register_node(ready=False)
        for rt in runtimes:
            pod = rt.pod
            conds = []
            for old in (pod.get("status") or {}).get("conditions") or ():
                cond = dict(old)
                if cond.get("type") in ("Ready", "ContainersReady"):
                    cond.update(
                        status="False",
                        reason="NodeNotReady",
                        message="Node is not ready",
                        lastTransitionTime=_now(self.clock),
                    )
                conds.append(cond)
            with contextlib.suppress(errors.ApiError):
                self._pods.patch(
                    rt.name,
                    {"status": {"conditions": conds}},
                    rt.namespace,
                    subresource="status",
                    field_manager="node-controller",
                )
            self._last_status.pop(rt.uid, None)

    def recover(self) -> None:
        """Undo :meth:`fail`: the node is Ready again and its pods' containers are restarted."""
        self._failed = False
        self._register_node(ready=True)
        with self._lock:
            runtimes = list(self._runtimes.values())
        for rt in runtimes:
            self.enqueue(rt.namespace, rt.name)
        assert self._manager is not None
        for pod in self._manager.cache.list("v1", "Pod", copy=False):
            if self._mine(pod):
                self.enqueue(str(_meta(pod).get("namespace")), str(_meta(pod).get("name")))

    # -- logs -------------------------------------------------------------------------------------

    def logs(
        self, namespace: str, name: str, container: str, previous: bool, follow: bool
    ) -> Iterable[bytes]:
        """The ``pods/log`` provider (raises an API error the server turns into a 400)."""
        rt = self._runtime(namespace, name)
        c = rt.find(container) if rt is not None else None
        if rt is None or c is None:
            raise bad_request(f'container "{container}" in pod "{name}" is not available')
        if previous:
            path = previous_log_path(c.log_path)
            if not path.exists():
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{name}" not found'
                )
            return read_log(path)
        if not c.log_path.exists():
            reason = c.waiting[0] if c.waiting else "ContainerCreating"
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        proc = c.proc

        def alive() -> bool:
            return proc is not None and c.proc is proc and proc.alive()

        return read_log(c.log_path, follow=follow, alive=alive, stop=self._stop)


def _signal_main(proc: Proc, sig: int, deadline: float) -> None:
    """Signal a container's main process as a runtime does: the pod's init (which passes it
    on to the program), not the whole group (the program would get it twice).

    A container that was just started may still be in its wrapper's set-up, where a signal
    to the group kills the wrapper before the program runs: the signal waits (until
    ``deadline``, ``time.monotonic()``) for the init, which is forked with the signals
    blocked and so loses none, to be there to pass it on.
    """
    delay = 0.002
    while True:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        if len(children) == 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(children[0]), sig)
                return
        if time.monotonic() >= deadline or not proc.alive():
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    proc.send_signal(sig)


def _stop_proc(proc: Proc, grace: float) -> None:
    """SIGTERM to the container, up to ``grace`` seconds, then SIGKILL to its whole group."""
    if grace > 0 and proc.alive():
        deadline = time.monotonic() + grace
        _signal_main(proc, signal.SIGTERM, deadline)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    proc.terminate(0)


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            out.append(int(child))
            todo.append(int(child))
    return out


def _is_podexec(pid: int) -> bool:
    try:
        return b"_podexec.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _duration(seconds: float) -> str:
    """Go's duration formatting for the back-off message (``10s``, ``2m40s``, ``500ms``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
