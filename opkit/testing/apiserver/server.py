"""APIServer: the embedded, in-memory Kubernetes API server over plain HTTP.

Usage::

    with APIServer() as api:
        api.write_kubeconfig(path)
        ...  # point kubectl / the kubernetes client / opkit at it

It serves on 127.0.0.1 with HTTP/1.1 keep-alive, one thread per connection. Garbage
collection, namespace finalization and CRD cleanup run on one background thread;
:meth:`APIServer.wait_idle` waits for them to drain.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import ssl
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

import yaml

from opkit.clock import Clock, RealClock
from opkit.log import get_logger

from . import _builtins
from ._faults import FaultInjector
from ._gc import Controllers
from ._handler import APIRequestHandler
from ._ops import Backend, WriteContext
from ._registry import Registry
from ._store import Store
from ._watch import WatchSession

__all__ = ["APIServer", "LogProvider"]

LogProvider = Callable[[str, str, str, bool, bool], Iterable[bytes]]
RequestRecord = tuple[str, str, str, int]

_REQUEST_LOG_MAX = 100_000
_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_KUBERNETES_SERVICE_IP = "10.96.0.1"


class _Core:
    """State shared by the request handlers of one server."""

    def __init__(
        self,
        *,
        registry: Registry,
        store: Store,
        backend: Backend,
        faults: FaultInjector,
        clock: Clock,
        bookmark_interval: float,
        watch_timeout: float | None,
        too_large_rv_wait: float,
    ) -> None:
        self.registry = registry
        self.store = store
        self.backend = backend
        self.faults = faults
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.too_large_rv_wait = too_large_rv_wait
        self.log_provider: LogProvider | None = None
        self.address = "127.0.0.1:0"
        self.request_log: deque[RequestRecord] = deque(maxlen=_REQUEST_LOG_MAX)
        self.write_count = 0
        self._lock = threading.Lock()
        self._sessions: set[WatchSession] = set()
        self._connections: set[socket.socket] = set()
        self.closing = False

    def server_address(self) -> str:
        return self.address

    def root_paths(self) -> list[str]:
        paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/openapi/v3"}
        paths.add("/version")
        for group, versions in self.registry.group_versions():
            if group:
                paths.add(f"/apis/{group}")
                for v in versions:
                    paths.add(f"/apis/{group}/{v}")
        return sorted(paths)

    def log_request(self, method: str, path: str, query: str, status: int, _secs: float) -> None:
        with self._lock:
            self.request_log.append((method, path, query, status))

    def count_write(self) -> None:
        with self._lock:
            self.write_count += 1

    def track_connection(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def add_session(self, s: WatchSession) -> None:
        with self._lock:
            self._sessions.add(s)
            closing = self.closing
        if closing:
            s.drop()

    def remove_session(self, s: WatchSession) -> None:
        with self._lock:
            self._sessions.discard(s)

    def drop_watches(self, resource: str | None) -> int:
        with self._lock:
            chosen = [s for s in self._sessions if resource is None or resource in s.resources]
        for s in chosen:
            s.drop()
        return len(chosen)

    def end_watches(self, group_resource: str) -> None:
        with self._lock:
            chosen = [s for s in self._sessions if group_resource in s.resources]
        for s in chosen:
            s.end()

    def close_all(self) -> None:
        with self._lock:
            self.closing = True
            sessions = list(self._sessions)
            conns = list(self._connections)
        for s in sessions:
            s.drop()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


_logger = get_logger(component="apiserver")


class _HTTPServer(ThreadingHTTPServer):
    """One daemon thread per connection, all of them joined on close.

    The standard mix-in only joins non-daemon threads; daemon threads keep a forgotten
    server from blocking interpreter exit, so they are tracked here instead.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[APIRequestHandler]) -> None:
        self._conn_threads: set[threading.Thread] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self._run_connection,
            args=(request, client_address),
            name="opkit-apiserver process_request_thread",
            daemon=True,
        )
        with self._conn_lock:
            self._conn_threads.add(t)
        t.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is routine; anything else is logged, not printed."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            return
        _logger.error("apiserver connection failed", client=str(client_address), exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        with self._conn_lock:
            threads = list(self._conn_threads)
        for t in threads:
            t.join(timeout=10)


class APIServer:
    """An in-memory Kubernetes API server for tests and local demos."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bookmark_interval: float = 60.0,
        history_window: float | None = 300.0,
        history_max_events: int = 200_000,
        clock: Clock | None = None,
        watch_timeout: float | None = None,
        too_large_rv_wait: float = 1.0,
        token: str | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.clock: Clock = clock or RealClock()
        self.token = token or secrets.token_hex(16)
        self.registry = registry or Registry.builtin()
        self.store = Store(
            history_seconds=history_window,
            history_max_events=history_max_events,
            monotonic=self.clock.monotonic,
        )
        self.ip_allocator = _builtins.IPAllocator()
        self.backend = Backend(self.store, self.registry, self.clock, self.ip_allocator)
        self.faults = FaultInjector()
        self._core = _Core(
            registry=self.registry,
            store=self.store,
            backend=self.backend,
            faults=self.faults,
            clock=self.clock,
            bookmark_interval=bookmark_interval,
            watch_timeout=watch_timeout,
            too_large_rv_wait=too_large_rv_wait,
        )
        self.faults.bind(self._core.drop_watches, self.compact)
        self.backend.on_crd_removed = self._core.end_watches
        self.controllers = Controllers(self.backend, self.store)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bootstrapped = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> APIServer:
        """Bind, bootstrap default objects and serve in a background thread."""
        if self._httpd is not None:
            return self
        if not self._bootstrapped:
            self._bootstrap()
            self._bootstrapped = True
        core = self._core
        handler = type("Handler", (APIRequestHandler,), {"core": core})
        httpd = _HTTPServer((self.host, self._requested_port), handler)
        self._httpd = httpd
        core.address = f"{self.host}:{httpd.server_address[1]}"
        self.controllers.start()
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"opkit-apiserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close watches and connections, join every thread."""
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        self._core.close_all()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.controllers.stop()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> APIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bootstrap(self) -> None:
        """NS-4: default namespaces and the default/kubernetes Service."""
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        svc_rt = self.registry.lookup("", "v1", "services")
        assert ns_rt is not None and svc_rt is not None
        for name in _DEFAULT_NAMESPACES:
            ctx = WriteContext(field_manager="kube-apiserver")
            self.backend.create(ns_rt, "", {"metadata": {"name": name}}, ctx)
        svc = {
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": _KUBERNETES_SERVICE_IP,
                "clusterIPs": [_KUBERNETES_SERVICE_IP],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                "sessionAffinity": "None",
            },
        }
        self.backend.create(svc_rt, "default", svc, WriteContext(field_manager="kube-apiserver"))

    # -- addresses and kubeconfig ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig_dict(self, context: str = "opkit") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> str:
        """Write the kubeconfig atomically (temp file + rename); returns the path."""
        target = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(target))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(self.kubeconfig_dict(), f, sort_keys=False)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    # -- test hooks -------------------------------------------------------------------------------

    def compact(self, rev: int | None = None) -> int:
        """Forget watch/list history up to ``rev`` (default: all); returns the compaction rev."""
        return self.store.compact(rev)

    @property
    def request_log(self) -> list[RequestRecord]:
        """(method, path, query, status) of the requests served so far (the last 100k)."""
        with self._core._lock:
            return list(self._core.request_log)

    def clear_request_log(self) -> None:
        with self._core._lock:
            self._core.request_log.clear()

    @property
    def write_count(self) -> int:
        """Client requests that persisted at least one change."""
        return self._core.write_count

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until garbage collection / namespace / CRD cleanup work is drained."""
        return self.controllers.wait_idle(timeout)

    def set_log_provider(self, fn: LogProvider | None) -> None:
        """Serve ``pods/log`` from ``fn(namespace, pod, container, previous, follow)``."""
        self._core.log_provider = fn

    @property
    def bookmark_interval(self) -> float:
        return self._core.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, value: float) -> None:
        self._core.bookmark_interval = value

    @property
    def watch_count(self) -> int:
        """Open watch streams (for leak checks)."""
        with self._core._lock:
            return len(self._core._sessions)
