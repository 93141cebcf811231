"""The Manager: runs an operator's informers, controllers, leader election and HTTP endpoints.

Start-up order (controller-runtime's): the HTTP servers (``/metrics``, ``/healthz``,
``/readyz``), then the shared informers, which every replica keeps warm whether or not it leads;
once they have synced the manager is *ready*; then runnables that do not need leadership; then
-- at once, or after winning the Lease when electing -- the controllers and the other runnables.

If leadership is lost the controllers are halted before anything else happens (no reconcile
starts after that point, so two replicas never act together), the manager shuts down and
:meth:`Manager.run` returns 1: an operator should exit and let its Deployment restart it.

Shutdown (SIGTERM/SIGINT in :meth:`Manager.run`, or :meth:`Manager.stop`) is the reverse,
within ``graceful_shutdown_timeout``: runnables and controllers (running reconciles finish,
queued ones are dropped), event recorders flushed, informers stopped, HTTP servers closed, and
the Lease released last (if ``leader_election_release_on_cancel``). Nothing is left running:
every thread is joined and every socket closed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opkit import log as _log
from opkit import metrics as _metrics
from opkit import workqueue as _workqueue
from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock
from opkit.controller import (
    Cache,
    CacheSyncTimeoutError,
    Controller,
    MapFunc,
    ReconcileFunc,
    Reconciler,
    Source,
)
from opkit.events import EventRecorder
from opkit.informer import InformerFactory
from opkit.leaderelection import LeaderElector, LeaseLock
from opkit.predicates import Predicate
from opkit.workqueue import RateLimiter

__all__ = [
    "Checker",
    "LeaderElectionLostError",
    "Manager",
    "parse_bind_address",
]

_logger = _log.get_logger(component="opkit.manager")

Checker = Callable[[], "str | None"]
"""A health check: raise (any exception) to fail; may return a short detail for verbose output."""

DEFAULT_SYNC_PERIOD = 10 * 3600.0
"""controller-runtime's cache SyncPeriod: every object is re-reconciled this often."""

_SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_HEALTHZ_LEADER_TOLERANCE = 20.0


class LeaderElectionLostError(RuntimeError):
    """The manager lost its Lease; the process should exit (it is no longer allowed to act)."""


def parse_bind_address(address: str | None) -> tuple[str, int] | None:
    """``":8080"`` / ``"127.0.0.1:0"`` / ``"[::1]:9000"`` -> ``(host, port)``; ``"0"``/``""``/None
    -> None (disabled). An empty host means every interface. Raises ValueError if malformed."""
    if address is None:
        return None
    address = address.strip()
    if address in ("", "0"):
        return None
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ValueError(f"bind address {address!r} must look like HOST:PORT or :PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bind address {address!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bind address {address!r}: port {port} is out of range")
    return host, port


# -- health checks --------------------------------------------------------------------------------


class _Checks:
    """A named set of checks served like controller-runtime's ``pkg/healthz``."""

    def __init__(self, path: str) -> None:
        self.path = path  # "healthz" / "readyz"
        self.checks: dict[str, Checker] = {}

    def serve(self, sub: str, query: dict[str, list[str]]) -> tuple[int, str]:
        checks = self.checks or {"ping": _ping}
        if sub:
            check = checks.get(sub)
            if check is None:
                return 404, f"404 page not found: no {self.path} check named {sub!r}\n"
            try:
                check()
            except Exception as exc:
                return 500, f"internal server error: {exc}\n"
            return 200, "ok"
        excluded = {name for value in query.get("exclude", []) for name in value.split(",")}
        verbose = "verbose" in query
        lines: list[str] = []
        failed = False
        for name in sorted(checks):
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
                continue
            try:
                detail = checks[name]()
            except Exception as exc:
                failed = True
                _logger.info(f"{self.path} check failed", check=name, error=str(exc))
                lines.append(f"[-]{name} failed: reason withheld")
                continue
            lines.append(f"[+]{name} ok" + (f": {detail}" if detail else ""))
        if failed:
            return 500, "\n".join([*lines, f"{self.path} check failed"]) + "\n"
        if verbose:
            return 200, "\n".join([*lines, f"{self.path} check passed"]) + "\n"
        return 200, "ok"


def _ping() -> None:
    return None


# -- HTTP -----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins request threads: nothing outlives stop()
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], manager: Manager, paths: set[str]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.manager = manager
        self.paths = paths


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10.0

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/", 1)
        root, sub = parts[0], parts[1] if len(parts) > 1 else ""
        query = parse_qs(url.query, keep_blank_values=True)
        mgr = self.server.manager
        if root == "metrics" and "metrics" in self.server.paths and not sub:
            _workqueue.update_unfinished_work()
            body, content_type = _metrics.render(self.headers.get("Accept"))
            self._send(200, body, content_type)
            return
        if root in ("healthz", "readyz") and root in self.server.paths:
            checks = mgr._healthz if root == "healthz" else mgr._readyz
            status, text = checks.serve(sub, query)
            self._send(status, text.encode(), "text/plain; charset=utf-8")
            return
        self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("http request", request=format % args)


@dataclass
class _HTTP:
    server: _Server
    thread: threading.Thread


# -- runnables ------------------------------------------------------------------------------------


@dataclass
class _Runnable:
    name: str
    fn: Callable[[threading.Event], object]
    needs_leader_election: bool
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


# -- the manager ----------------------------------------------------------------------------------


class Manager:
    """Owns the shared cache and runs controllers, runnables and the operator's endpoints.

    ``namespace`` limits every informer to one namespace (None = cluster-wide). ``sync_period``
    is how often every cached object is handed to the controllers again (resync). Durations
    are seconds. ``metrics_bind_address`` / ``health_probe_bind_address`` take ``"host:port"``
    or ``":port"``; ``"0"`` disables them (both default to disabled here; the CLI defaults are
    ``:8080`` and ``:8081``). Both may name the same port (one server then serves all paths).
    """

    def __init__(
        self,
        client: Client,
        *,
        namespace: str | None = None,
        sync_period: float = DEFAULT_SYNC_PERIOD,
        leader_election: bool = False,
        leader_election_id: str | None = None,
        leader_election_namespace: str | None = None,
        leader_election_release_on_cancel: bool = False,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        identity: str | None = None,
        metrics_bind_address: str | None = "0",
        health_probe_bind_address: str | None = "0",
        clock: Clock | None = None,
        graceful_shutdown_timeout: float = 30.0,
        cache_sync_timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.namespace = namespace or None
        self.clock = clock if clock is not None else REAL_CLOCK
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.cache_sync_timeout = cache_sync_timeout
        self.cache = Cache(
            InformerFactory(
                client, namespace=self.namespace, resync_period=sync_period, clock=self.clock
            ),
            sync_timeout=cache_sync_timeout,
        )
        self._metrics_addr = parse_bind_address(metrics_bind_address)
        self._health_addr = parse_bind_address(health_probe_bind_address)

        self.leader_election = leader_election
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self._elector: LeaderElector | None = None
        if leader_election:
            if not leader_election_id:
                raise ValueError("leader_election_id is required when leader_election is on")
            lock = LeaseLock(
                client,
                self._lease_namespace(leader_election_namespace),
                leader_election_id,
                self.identity,
            )
            self._elector = LeaderElector(
                lock,
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
                on_started_leading=self._on_started_leading,
                on_stopped_leading=self._on_stopped_leading,
                release_on_cancel=leader_election_release_on_cancel,
                clock=self.clock,
                name=leader_election_id,
            )

        self._lock = threading.Lock()
        self._controllers: list[Controller] = []
        self._runnables: list[_Runnable] = []
        self._recorders: dict[str, EventRecorder] = {}
        self._servers: list[_HTTP] = []
        self._thread: threading.Thread | None = None
        self._started = False
        self._stop_requested = False
        self._shutdown_started = False
        self._lease_lost = False
        self._done = threading.Event()  # something asked the manager to end
        self._shutdown_done = threading.Event()
        self._synced = threading.Event()
        self.elected = threading.Event()
        """Set once this manager may run leader-only work (at once when not electing)."""
        self.exit_code = 0
        self.error: BaseException | None = None

        self._healthz = _Checks("healthz")
        self._readyz = _Checks("readyz")
        self._healthz.checks["ping"] = _ping
        self._readyz.checks["ping"] = _ping
        self._readyz.checks["informer-sync"] = self._check_synced
        self._readyz.checks["leader-election"] = self._leader_status
        if self._elector is not None:
            self._healthz.checks["leader-election"] = self._check_lease

    # -- configuration --------------------------------------------------------------------------

    def _lease_namespace(self, explicit: str | None) -> str:
        if explicit:
            return explicit
        with contextlib.suppress(OSError):
            with open(_SA_NAMESPACE_FILE, encoding="utf-8") as f:
                ns = f.read().strip()
            if ns:
                return ns
        if self.namespace:
            return self.namespace
        raise ValueError(
            "leader_election_namespace is required when not running in a cluster "
            "(and no namespace is set)"
        )

    def add_controller(self, controller: Controller) -> Controller:
        """Run ``controller`` with this manager (before :meth:`start`); names must be unique."""
        with self._lock:
            if self._started:
                raise RuntimeError("add controllers before the manager starts")
            if any(c.name == controller.name for c in self._controllers):
                raise ValueError(f"a controller named {controller.name!r} already exists")
            controller.bind(self.cache)
            self._controllers.append(controller)
        return controller

    def controller(
        self,
        name: str,
        reconciler: Reconciler | ReconcileFunc,
        *,
        for_: tuple[str, str] | Source,
        owns: Sequence[tuple[str, str] | Source] = (),
        watches: Sequence[tuple[tuple[str, str], MapFunc] | Source] = (),
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Any] | None = None,
        predicates: Sequence[Predicate] = (),
        need_leader_election: bool = True,
    ) -> Controller:
        """Build a :class:`Controller` on this manager's clock and add it."""
        return self.add_controller(
            Controller(
                name,
                reconciler,
                for_=for_,
                owns=owns,
                watches=watches,
                max_concurrent_reconciles=max_concurrent_reconciles,
                rate_limiter=rate_limiter,
                predicates=predicates,
                clock=self.clock,
                cache_sync_timeout=self.cache_sync_timeout,
                need_leader_election=need_leader_election,
            )
        )

    @property
    def controllers(self) -> list[Controller]:
        with self._lock:
            return list(self._controllers)

    def add_runnable(
        self,
        fn: Callable[[threading.Event], object],
        *,
        needs_leader_election: bool = True,
        name: str | None = None,
    ) -> None:
        """Run ``fn(stop_event)`` on its own thread while the manager runs.

        It starts after the caches synced (and, if ``needs_leader_election``, once leading) and
        must return soon after ``stop_event`` is set. An exception stops the manager.
        """
        with self._lock:
            if self._started:
                raise RuntimeError("add runnables before the manager starts")
            label = name or str(getattr(fn, "__name__", "runnable"))
            self._runnables.append(_Runnable(label, fn, needs_leader_election))

    def add_healthz_check(self, name: str, check: Checker) -> None:
        """Add a liveness check served under ``/healthz`` (and ``/healthz/<name>``)."""
        self._healthz.checks[name] = check

    def add_readyz_check(self, name: str, check: Checker) -> None:
        """Add a readiness check served under ``/readyz`` (and ``/readyz/<name>``)."""
        self._readyz.checks[name] = check

    def event_recorder(self, component: str) -> EventRecorder:
        """An EventRecorder posting in the background; flushed and closed at shutdown."""
        with self._lock:
            recorder = self._recorders.get(component)
            if recorder is None:
                recorder = EventRecorder(
                    self.client,
                    component,
                    clock=self.clock,
                    asynchronous=True,
                )
                self._recorders[component] = recorder
            return recorder

    # -- status ---------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether leader-only work may run here (always True when not electing, once started)."""
        if self._elector is None:
            return self.elected.is_set()
        return self._elector.is_leader()

    @property
    def ready(self) -> bool:
        return self._synced.is_set()

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` of the metrics server once started (None if disabled)."""
        return self._bound("metrics")

    @property
    def health_probe_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` of the probe server once started (None if disabled)."""
        return self._bound("healthz")

    def _bound(self, path: str) -> tuple[str, int] | None:
        for http in self._servers:
            if path in http.server.paths:
                host, port = http.server.server_address[:2]
                return str(host), int(port)
        return None

    def _check_synced(self) -> str | None:
        if not self._synced.is_set():
            raise RuntimeError("informers have not synced yet")
        return None

    def _leader_status(self) -> str:
        if self._elector is None:
            return "disabled"
        if self._elector.is_leader():
            return "leading"
        leader = self._elector.get_leader()
        return f"standby (leader: {leader})" if leader else "standby"

    def _check_lease(self) -> None:
        assert self._elector is not None
        self._elector.check(_HEALTHZ_LEADER_TOLERANCE)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start everything in the background and return; errors binding ports raise here."""
        with self._lock:
            if self._started:
                raise RuntimeError("manager already started")
            self._started = True
            controllers = list(self._controllers)
        try:
            for ctrl in controllers:
                for src in ctrl.sources:
                    self.cache.informer_for(src.api_version, src.kind)
            self._start_http()
        except BaseException:
            self._done.set()
            self._shutdown()
            raise
        self._thread = threading.Thread(target=self._main, name="manager", daemon=True)
        self._thread.start()

    def run(self) -> int:
        """Start, block until SIGTERM/SIGINT, :meth:`stop` or a fatal error, then shut down.

        Returns the process exit status: 0 after a requested stop, 1 after an error or a lost
        Lease. A second signal exits the process at once with status 1.
        """
        restore = self._install_signal_handlers()
        try:
            if not self._started:
                try:
                    self.start()
                except Exception as exc:
                    _logger.error("manager failed to start", error=str(exc))
                    self._fail(exc)
            while not self._done.wait(0.5):
                pass
            self.stop()
        finally:
            for sig, handler in restore:
                signal.signal(sig, handler)
        return self.exit_code

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the manager has shut down (True) or ``timeout`` passed (False)."""
        return self._shutdown_done.wait(timeout)

    def stop(self) -> None:
        """Shut down (see the module docstring); returns when everything has stopped."""
        with self._lock:
            self._stop_requested = True
            started = self._started
        self._done.set()
        if not started:
            for recorder in list(self._recorders.values()):
                recorder.close(self.graceful_shutdown_timeout)
            return
        self._shutdown()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> Manager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _install_signal_handlers(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        received: list[int] = []

        def handler(signum: int, _frame: FrameType | None) -> None:
            if received:
                _logger.error("second signal received, exiting immediately", signal=signum)
                os._exit(1)
            received.append(signum)
            _logger.info("signal received, shutting down", signal=signal.Signals(signum).name)
            self._done.set()

        restore: list[tuple[int, Any]] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            restore.append((sig, signal.getsignal(sig)))
            signal.signal(sig, handler)
        return restore

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            self.exit_code = 1
        self._done.set()

    def _main(self) -> None:
        try:
            self._startup()
        except Exception as exc:
            if not self._done.is_set():
                _logger.error("manager failed to start", error=str(exc), exc_info=True)
                self._fail(exc)
        self._done.wait()
        with self._lock:
            requested = self._stop_requested
        if not requested:
            self._shutdown()

    def _startup(self) -> None:
        self.cache.start()
        if not self.cache.wait_for_sync(self.cache_sync_timeout, stop=self._done):
            if self._done.is_set():
                return
            raise CacheSyncTimeoutError("timed out waiting for the informers to sync")
        self._synced.set()
        _logger.info("caches synced")
        for r in self._runnables:
            if not r.needs_leader_election:
                self._start_runnable(r)
        for c in self._controllers:
            if not c.need_leader_election:
                c.start()
        if self._elector is not None:
            if not self._done.is_set():
                self._elector.start()
        else:
            self._start_leader_work()

    def _start_leader_work(self) -> None:
        if self._done.is_set():
            return
        self.elected.set()
        for r in self._runnables:
            if r.needs_leader_election:
                self._start_runnable(r)
        for c in self._controllers:
            if c.need_leader_election:
                c.start()

    def _on_started_leading(self, leader_stop: threading.Event) -> None:
        try:
            self._start_leader_work()
        except Exception as exc:
            _logger.error("starting leader work failed", error=str(exc), exc_info=True)
            self._fail(exc)
            return
        leader_stop.wait()
        self._on_stopped_leading()

    def _on_stopped_leading(self) -> None:
        with self._lock:
            if self._stop_requested or self._lease_lost or not self.elected.is_set():
                return
            self._lease_lost = True
        # Halt every controller before anything else: no reconcile may start once the Lease is
        # gone (another replica may already be acting).
        for c in self._controllers:
            c.halt()
        for r in self._runnables:
            if r.needs_leader_election:
                r.stop.set()
        _logger.error("leader election lost", identity=self.identity)
        self._fail(LeaderElectionLostError("leader election lost"))

    def _start_runnable(self, r: _Runnable) -> None:
        def target() -> None:
            try:
                r.fn(r.stop)
            except Exception as exc:
                _logger.error("runnable failed", runnable=r.name, error=str(exc), exc_info=True)
                self._fail(exc)

        r.thread = threading.Thread(target=target, name=f"runnable-{r.name}", daemon=True)
        r.thread.start()

    def _shutdown(self) -> None:
        with self._lock:
            wait = self._shutdown_started
            self._shutdown_started = True
        if wait:
            self._shutdown_done.wait()
            return
        try:
            self._shutdown_steps()
        finally:
            self._shutdown_done.set()

    def _shutdown_steps(self) -> None:
        timeout = self.graceful_shutdown_timeout
        deadline = None if timeout < 0 else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        _logger.info("stopping")
        # 1. runnables that run without leadership
        self._stop_runnables(needs_leader_election=False, left=left)
        # 2. controllers (halted together first, then waited for) and leader-only runnables
        for c in self._controllers:
            c.halt()
        for c in self._controllers:
            c.stop(left())
        self._stop_runnables(needs_leader_election=True, left=left)
        # 3. events still queued for posting
        for recorder in list(self._recorders.values()):
            recorder.close(left())
        # 4. informers
        self.cache.stop()
        # 5. HTTP servers
        self._stop_http()
        # 6. the Lease, last
        if self._elector is not None:
            self._elector.stop()
        self.elected.clear()
        _logger.info("stopped", exit_code=self.exit_code)

    def _stop_runnables(
        self, *, needs_leader_election: bool, left: Callable[[], float | None]
    ) -> None:
        chosen = [r for r in self._runnables if r.needs_leader_election is needs_leader_election]
        for r in chosen:
            r.stop.set()
        for r in chosen:
            if r.thread is not None and r.thread is not threading.current_thread():
                r.thread.join(left())
                if r.thread.is_alive():
                    _logger.warning("runnable did not stop in time", runnable=r.name)

    def _start_http(self) -> None:
        # One server per address; two ":0" (any free port) addresses stay two servers.
        wanted: list[tuple[tuple[str, int], set[str]]] = []
        if self._metrics_addr is not None:
            wanted.append((self._metrics_addr, {"metrics"}))
        if self._health_addr is not None:
            if wanted and wanted[0][0] == self._health_addr and self._health_addr[1] != 0:
                wanted[0][1].update(("healthz", "readyz"))
            else:
                wanted.append((self._health_addr, {"healthz", "readyz"}))
        for address, paths in wanted:
            server = _Server(address, self, paths)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"http-{'+'.join(sorted(paths))}",
                daemon=True,
            )
            self._servers.append(_HTTP(server, thread))
            thread.start()
            host, port = server.server_address[:2]
            _logger.info("serving", paths=sorted(paths), address=f"{host!s}:{port}")

    def _stop_http(self) -> None:
        servers, self._servers = self._servers, []
        for http in servers:
            if http.thread.is_alive():
                http.server.shutdown()
                http.thread.join()
            http.server.server_close()
