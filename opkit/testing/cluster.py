"""An embedded Kubernetes cluster in one process: API server, built-in controllers and a local
kubelet that runs pods as real processes.

Usage::

    with Cluster() as cluster:
        cluster.write_kubeconfig("kubeconfig")   # kubectl, the kubernetes client, opkit
        ...                                       # create a StatefulSet of etcd pods
        cluster.run(["etcdctl", "--endpoints", "etcd-0.etcd.default.svc:2379", "endpoint",
                     "health"])                    # with the cluster's names

or ``python -m opkit.testing cluster --kubeconfig PATH`` (foreground until SIGINT/SIGTERM), or
the ``cluster`` pytest fixture. Start order: the pod network (whose bridge address the API
server binds, so the host and the pods reach it at the same URL), the API server (plus a TLS
listener for in-cluster clients), the built-in controllers and the kubelet(s) on one manager,
then the host-side resolver hook; :meth:`Cluster.stop` undoes it in reverse and leaves no
process, namespace, link, mount or temporary directory behind. See docs/embedded-cluster.md.

Pod networking needs root. Otherwise the cluster still starts, but pods are refused with a
one-line explanation (``Cluster.refused``), or simulated with ``pods="simulated"``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from opkit import errors
from opkit import log as _log
from opkit.client import Client
from opkit.manager import Manager

from .apiserver._status import bad_request
from .apiserver.server import APIServer
from .kubelet._dns import ClusterDNS
from .kubelet._hosts import ResolverHook, install_resolver, run_with_cluster_dns
from .kubelet._images import ImageTable
from .kubelet._kubelet import Kubelet, KubeletConfig
from .kubelet._netns import PodNetwork, PodNetworkUnavailable
from .kubelet._pki import ClusterPKI, TLSListener
from .kubelet._procs import ProcessRegistry
from .kubelet._tools import find_program

__all__ = ["Cluster", "PodMode", "main_cluster"]

PodMode = Literal["local", "simulated", "none"]
_TEMP_PREFIX = "opkit-cluster-"
_LOCK_PREFIX = "\0opkit-cluster-"
_DATA_SUBDIRS = ("pods", "images", "volumes", "pki")
_DEFAULT_NODE = "opkit-node"


def _lock(path: Path) -> socket.socket | None:
    """Hold the liveness lock of a data directory (an abstract unix socket: it vanishes with
    the process, even after SIGKILL, so a crashed run's directory can be told apart)."""
    name = _LOCK_PREFIX + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:24]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(name)
    except OSError:
        s.close()
        return None
    return s


def cleanup_stale_data_dirs(parent: str | os.PathLike[str] | None = None) -> list[str]:
    """Remove the temporary data directories of crashed clusters; returns what was removed."""
    removed = []
    base = Path(parent or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for d in base.glob(_TEMP_PREFIX + "*"):
            if not d.is_dir():
                continue
            lock = _lock(d)
            if lock is None:
                continue  # alive
            try:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d))
            finally:
                lock.close()
    return removed


def _client(kubeconfig: str) -> Client:
    """An opkit client with a connection pool big enough for every controller and kubelet
    worker of the cluster (urllib3 otherwise discards connections and warns)."""
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    configuration.connection_pool_maxsize = 64
    return Client.from_configuration(configuration)


class Cluster:
    """API server + built-in controllers + local kubelet(s); a context manager.

    ``pods``: ``"local"`` runs pods as processes (root needed; otherwise they are refused with
    one line), ``"simulated"`` fakes their lifecycle (kwok-like), ``"none"`` leaves them
    Pending. ``nodes``: how many kubelets (nodes ``opkit-node`` or ``opkit-node-0``...).
    ``data_dir``: where pods, volumes and certificates live (default: a temporary directory
    removed at stop). ``images``/``image_config``: the image table (see
    :mod:`opkit.testing.kubelet._images`). ``backoff_base``/``backoff_max``: crash-loop
    back-off (short values suit tests). ``stop_grace``: SIGTERM grace of pods at stop.
    """

    def __init__(
        self,
        *,
        pods: PodMode = "local",
        nodes: int = 1,
        data_dir: str | os.PathLike[str] | None = None,
        images: ImageTable | None = None,
        image_config: str | os.PathLike[str] | None = None,
        bridge: str | None = None,
        subnet: str | None = None,
        api_port: int = 0,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        backoff_reset: float | None = None,
        retry_interval: float = 10.0,
        stop_grace: float = 5.0,
        bookmark_interval: float = 60.0,
        resolver: bool = True,
    ) -> None:
        if pods not in ("local", "simulated", "none"):
            raise ValueError(f"pods must be 'local', 'simulated' or 'none', not {pods!r}")
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.pods: PodMode = pods
        self.node_names = (
            [_DEFAULT_NODE] if nodes == 1 else [f"{_DEFAULT_NODE}-{i}" for i in range(nodes)]
        )
        self._requested_data_dir = Path(data_dir) if data_dir is not None else None
        self.images = images or ImageTable.default(image_config)
        self._bridge, self._subnet = bridge, subnet
        self._api_port = api_port
        self._kubelet_options = {
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
            "backoff_reset": backoff_reset,
            "retry_interval": retry_interval,
            "stop_grace": stop_grace,
        }
        self._bookmark_interval = bookmark_interval
        self._want_resolver = resolver
        self.registry = ProcessRegistry()
        self.refused: str | None = None
        self.data_dir: Path | None = None
        self.network: PodNetwork | None = None
        self.api: APIServer | None = None
        self.pki: ClusterPKI | None = None
        self.tls: TLSListener | None = None
        self.client: Client | None = None
        self.manager: Manager | None = None
        self.controllers: Any = None
        self.dns = ClusterDNS()
        self.kubelets: dict[str, Kubelet] = {}
        self.kubeconfig = ""
        self._temp = False
        self._lock_socket: socket.socket | None = None
        self._hook: ResolverHook | None = None
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Cluster:
        """Start everything; on failure, whatever started is stopped again."""
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        cleanup_stale_data_dirs()
        if self._requested_data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
            self._temp = True
        else:
            self.data_dir = self._requested_data_dir.resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_socket = _lock(self.data_dir)
        if self._lock_socket is None:
            raise RuntimeError(f"data directory {self.data_dir} is used by another live cluster")
        for sub in _DATA_SUBDIRS:  # a crashed run's pods, volumes and certificates
            shutil.rmtree(self.data_dir / sub, ignore_errors=True)

        host = "127.0.0.1"
        if self.pods == "local":
            try:
                self.network = PodNetwork(bridge=self._bridge, subnet=self._subnet).start()
                host = self.network.bridge_ip
            except PodNetworkUnavailable as e:
                self.refused = str(e)
        self.api = APIServer(host, self._api_port, bookmark_interval=self._bookmark_interval)
        self.api.start()
        tls_port = 0
        if self.network is not None:
            self.pki = ClusterPKI.create(
                self.data_dir / "pki", ips=(host, "10.96.0.1", "127.0.0.1")
            )
            self.tls = self._start_tls(host)
            tls_port = self.tls.port
        self.kubeconfig = self.api.write_kubeconfig(self.data_dir / "kubeconfig")
        self.client = _client(self.kubeconfig)
        if self.tls is not None:
            self._publish_api_endpoints(host, tls_port)
        self.manager = Manager(self.client, graceful_shutdown_timeout=10.0)
        self._setup_controllers(host)
        self.dns.setup(self.manager)
        ca_pem = self.pki.ca_pem if self.pki is not None else None
        if self.pods == "local":
            for node in self.node_names:
                config = KubeletConfig(
                    node_name=node,
                    data_dir=self.data_dir / "nodes" / node,
                    api_host=host,
                    api_port=tls_port,
                    ca_pem=ca_pem,
                    refuse=self.refused,
                    **self._kubelet_options,  # type: ignore[arg-type]
                )
                kubelet = Kubelet(
                    self.client,
                    config=config,
                    network=self.network,
                    images=self.images,
                    dns=self.dns,
                    registry=self.registry,
                )
                kubelet.setup(self.manager)
                self.kubelets[node] = kubelet
        for kubelet in self.kubelets.values():
            kubelet.start()
        self.dns.start()
        self.manager.start()
        deadline = time.monotonic() + 60
        while not self.manager.ready:
            if self.manager.error is not None:
                raise RuntimeError(f"the cluster's controllers failed: {self.manager.error}")
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster's informers did not sync in 60 s")
            time.sleep(0.01)
        self.api.set_log_provider(self._logs)
        if self._want_resolver:
            self._hook = install_resolver(self.dns.lookup)

    def _start_tls(self, host: str) -> TLSListener:
        assert self.api is not None and self.pki is not None
        context = self.pki.server_context()
        for port in (443, 0):  # the default/kubernetes Service's port when it is free
            try:
                return TLSListener(self.api, host, port, context).start()
            except OSError:
                if port == 0:
                    raise
        raise AssertionError("unreachable")

    def _publish_api_endpoints(self, host: str, port: int) -> None:
        """Endpoints of default/kubernetes: the TLS listener (``kubernetes.default.svc``)."""
        assert self.client is not None
        ports = [{"name": "https", "port": port, "protocol": "TCP"}]
        self.client.resource("v1", "Endpoints").create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": host}], "ports": ports}],
            },
            "default",
        )
        self.client.resource("discovery.k8s.io/v1", "EndpointSlice").create(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {
                        "kubernetes.io/service-name": "kubernetes",
                        "endpointslice.kubernetes.io/managed-by": "kube-apiserver",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
                "ports": ports,
            },
            "default",
        )

    def _setup_controllers(self, host: str) -> None:
        from .controllers import ALL_CONTROLLERS, BuiltinControllers

        assert self.client is not None and self.data_dir is not None
        volumes = self.data_dir / "volumes"
        volumes.mkdir(parents=True, exist_ok=True)
        chosen = set(ALL_CONTROLLERS)
        if self.pods == "local":
            chosen.discard("node")  # each kubelet registers its own Node
        self.controllers = BuiltinControllers(
            self.client,
            simulate_pods=self.pods == "simulated",
            manager=self.manager,
            controllers=chosen,
            node_name=self.node_names[0],
            node_address=host,
            data_dir=str(volumes),
            on_volume_deleted=self._volume_deleted,
            ca_bundle=self.pki.ca_pem.decode() if self.pki is not None else None,
        )

    def _volume_deleted(self, pv: Mapping[str, Any]) -> None:
        """A claim's volume was deleted: remove its directory (only ours, never elsewhere)."""
        path = str(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or "")
        if not path or self.data_dir is None:
            return
        target = Path(path).resolve()
        if (self.data_dir / "volumes").resolve() in target.parents:
            shutil.rmtree(target, ignore_errors=True)

    def stop(self) -> None:
        """Stop everything in reverse order; every process the cluster started is ended."""
        if self._hook is not None:
            self._hook.uninstall()
            self._hook = None
        for kubelet in self.kubelets.values():
            with contextlib.suppress(Exception):
                kubelet.stop()
        if self.manager is not None:
            with contextlib.suppress(Exception):
                self.manager.stop()
        self.dns.stop()
        self.registry.kill_all()
        if self.network is not None:
            with contextlib.suppress(Exception):
                self.network.teardown_all()
        if self.api is not None:
            self.api.set_log_provider(None)
        if self.tls is not None:
            self.tls.stop()
        if self.api is not None:
            self.api.stop()
        if self.client is not None:
            self.client.close()
        if self.data_dir is not None and self._temp:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._lock_socket is not None:
            self._lock_socket.close()
            self._lock_socket = None
        self.kubelets = {}
        self.network = self.api = self.tls = self.client = self.manager = None
        self._started = False

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- access -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API server's URL (plain HTTP; the same from the host and from pods)."""
        assert self.api is not None, "cluster not started"
        return self.api.url

    @property
    def in_cluster_url(self) -> str:
        """``https://KUBERNETES_SERVICE_HOST:PORT`` as pods see it ('' without a pod network)."""
        return self.tls.url if self.tls is not None else ""

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> str:
        """Write a kubeconfig for this cluster atomically; returns the path."""
        assert self.api is not None, "cluster not started"
        return self.api.write_kubeconfig(path)

    def kubelet(self, node: str | None = None) -> Kubelet:
        if not self.kubelets:
            raise RuntimeError("this cluster runs no local kubelet")
        return self.kubelets[node or self.node_names[0]]

    def _kubelet_of(self, namespace: str, name: str) -> Kubelet | None:
        return next((k for k in self.kubelets.values() if k.has_pod(namespace, name)), None)

    def _logs(
        self, namespace: str, name: str, container: str, previous: bool, follow: bool
    ) -> Iterable[bytes]:
        kubelet = self._kubelet_of(namespace, name)
        if kubelet is None:
            raise bad_request(f'container "{container}" in pod "{name}" is not running')
        return kubelet.logs(namespace, name, container, previous, follow)

    # -- names ------------------------------------------------------------------------------------

    def resolve(self, name: str) -> list[str] | None:
        """Addresses of a cluster name (``etcd-0.etcd.default.svc``...), or None."""
        return self.dns.lookup(name)

    def hosts_text(self) -> str:
        """The cluster's names as a hosts file (what :meth:`run` gives programs)."""
        self.dns.wait_current()
        return self.dns.hosts_text()

    def run(self, argv: Sequence[str], *, timeout: float | None = 60, **kwargs: Any) -> Any:
        """Run a program with the cluster's name resolution (a private ``/etc/hosts``).

        A bare ``etcdctl``/``promtool``/... is looked up like the kubelet's programs
        (``.tools/`` first). Returns a ``subprocess.CompletedProcess`` with text output.
        """
        argv = list(argv)
        if argv and "/" not in argv[0]:
            with contextlib.suppress(LookupError):
                argv[0] = str(find_program(argv[0]))
        return run_with_cluster_dns(argv, self.hosts_text(), timeout=timeout, **kwargs)

    # -- chaos ------------------------------------------------------------------------------------

    def kill_pod(
        self, namespace: str, name: str, container: str | None = None, sig: int = signal.SIGKILL
    ) -> int:
        """Kill a pod's processes abruptly (SIGKILL by default); the kubelet restarts them."""
        kubelet = self._kubelet_of(namespace, name)
        return kubelet.kill_pod(namespace, name, container, sig) if kubelet else 0

    def pod_pids(self, namespace: str, name: str, container: str | None = None) -> list[int]:
        """Host pids of the programs running in a pod (for ``kill -9`` from a test)."""
        kubelet = self._kubelet_of(namespace, name)
        return kubelet.container_pids(namespace, name, container) if kubelet else []

    def fail_node(self, node: str | None = None) -> None:
        """Make a node fail: its processes die, it stops reporting, it turns NotReady."""
        self.kubelet(node).fail()

    def recover_node(self, node: str | None = None) -> None:
        self.kubelet(node).recover()

    # -- waiting ----------------------------------------------------------------------------------

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy (returned) or time runs out.

        API errors count as "not yet". Raises TimeoutError with the last value or error.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = predicate()
                if last:
                    return last
            except (errors.ApiError, errors.TransportError, LookupError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met in {timeout} s (last: {last!r})")
            time.sleep(interval)

    def ready_pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        """The Ready pods of a namespace (optionally matching a label selector)."""
        assert self.client is not None
        items = self.client.resource("v1", "Pod").list(namespace, label_selector=selector)
        return [
            p
            for p in items.get("items") or ()
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or ()
            )
            and not (p.get("metadata") or {}).get("deletionTimestamp")
        ]


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m opkit.testing cluster",
        description="Run an embedded cluster (API server, controllers, local kubelet).",
    )
    p.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    p.add_argument(
        "--data-dir", default=None, help="pods, volumes and certificates (default: temp)"
    )
    p.add_argument("--image-config", default=None, help="YAML file with extra image mappings")
    p.add_argument("--port", type=int, default=0, help="API server port (default: any free port)")
    p.add_argument("--nodes", type=int, default=1, help="number of nodes (kubelets)")
    p.add_argument("--log-level", default="warning", help="debug, info, warning (default) or error")
    p.add_argument(
        "--pods",
        choices=("local", "simulated", "none"),
        default="local",
        help="run pods as processes (default), simulate them, or leave them Pending",
    )
    return p


def main_cluster(argv: Sequence[str] | None = None) -> int:
    """``python -m opkit.testing cluster --kubeconfig PATH [--data-dir DIR]``: run in the
    foreground; the kubeconfig is written (atomically) once the cluster is ready; SIGINT or
    SIGTERM stops it and every process it started."""
    from .__main__ import fail

    args = _parser().parse_args(list(argv) if argv is not None else None)
    _log.configure("console", level=args.log_level)  # logs on stderr; stdout has one line
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    cluster = Cluster(
        pods=args.pods,
        nodes=args.nodes,
        data_dir=args.data_dir,
        image_config=args.image_config,
        api_port=args.port,
    )
    try:
        try:
            cluster.start()
        except OSError as exc:
            return fail("cluster", "cannot start", exc)
        if stop.is_set():
            return 0
        try:
            cluster.write_kubeconfig(args.kubeconfig)
        except OSError as exc:
            return fail("cluster", f"cannot write kubeconfig {args.kubeconfig}", exc)
        print(f"opkit cluster serving at {cluster.url} (kubeconfig: {args.kubeconfig})", flush=True)
        if cluster.refused:
            print(f"opkit cluster: pods will not run: {cluster.refused}", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main_cluster())
