"""Readiness, liveness and startup probes, run inside the pod's network namespace.

One :class:`ProbeWorker` thread per probe of a running container (the kubelet's probe worker):
the first check after ``initialDelaySeconds``, then one every ``periodSeconds``, each bounded by
``timeoutSeconds``; the result flips to success after ``successThreshold`` consecutive
successes and to failure after ``failureThreshold`` consecutive failures (a check that raises
is a failure). Readiness and startup start as failure, liveness as success. A startup probe
stops once it succeeded; liveness and startup probes stop once they failed, i.e. reached the
threshold (the kubelet then restarts the container, which gets new workers).

``httpGet`` and ``tcpSocket`` checks connect from a socket created in the pod's network
namespace (``setns`` on the probing thread only, then back), so ``localhost`` means the pod, as
in the pod; the default host is the pod IP. ``exec`` checks run through a callback (the
kubelet runs the command inside the container's namespaces). ``grpc`` checks are TCP connects.
Durations are real seconds: probes talk to real programs.
"""

from __future__ import annotations

import ctypes
import http.client
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ExecRunner",
    "ProbeSpec",
    "ProbeWorker",
    "check",
    "resolve_port",
    "socket_in_netns",
]

ExecRunner = Callable[[list[str], float], tuple[int, str]]
"""``run(argv, timeout) -> (exit code, output)``; exit code -1 means it timed out."""

_CLONE_NEWNET = 0x40000000
_log = logging.getLogger("opkit.testing.kubelet")
_libc = ctypes.CDLL(None, use_errno=True)
_MAX_BODY = 10 * 1024
USER_AGENT = "kube-probe/1.32"


def socket_in_netns(netns_path: str | None, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket living in another network namespace (only this thread switches)."""
    if not netns_path:
        return socket.socket(family, socket.SOCK_STREAM)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(target, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            try:
                return socket.socket(family, socket.SOCK_STREAM)
            finally:
                if _libc.setns(own, _CLONE_NEWNET) != 0:  # pragma: no cover (cannot happen)
                    os.abort()  # a thread stuck in a pod's namespace must not go on
        finally:
            os.close(target)
    finally:
        os.close(own)


def _connect(netns: str | None, host: str, port: int, timeout: float) -> socket.socket:
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    error: OSError | None = None
    for family, _type, _proto, _canon, addr in infos:
        sock = socket_in_netns(netns, family)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error or OSError(f"cannot resolve {host}")


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    return f"dial tcp {host}:{port}: {getattr(e, 'strerror', None) or e}"


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    text = str(port or "")
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or ():
        if p.get("name") == text and p.get("containerPort"):
            return int(p["containerPort"])
    raise ValueError(f"port {text!r} not found in the container's ports")


def _http(
    handler: Mapping[str, Any], netns: str | None, host: str, port: int, timeout: float
) -> tuple[bool, str]:
    scheme = str(handler.get("scheme") or "HTTP").lower()
    path = str(handler.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in handler.get("httpHeaders") or ():
        headers[str(h.get("name"))] = str(h.get("value") or "")
    try:
        sock = _connect(netns, host, port, timeout)
    except OSError as e:
        return False, f'Get "{url}": {_dial_error(host, port, e)}'
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=host)
        conn.sock = sock
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(_MAX_BODY)
    except (OSError, http.client.HTTPException) as e:
        return False, f'Get "{url}": {e or type(e).__name__}'
    finally:
        conn.close()
    if 200 <= resp.status < 400:
        return True, ""
    detail = body.decode(errors="replace").strip()
    return False, f"HTTP probe failed with statuscode: {resp.status}" + (
        f" ({detail[:200]})" if detail else ""
    )


def check(
    handler: Mapping[str, Any],
    *,
    container: Mapping[str, Any],
    pod_ip: str,
    netns: str | None,
    timeout: float,
    run_exec: ExecRunner | None,
) -> tuple[bool, str]:
    """Run one probe check: ``(success, failure message)``."""
    try:
        if handler.get("exec") is not None:
            command = [str(a) for a in handler["exec"].get("command") or ()]
            if run_exec is None or not command:
                return False, "exec probe has no command or cannot run here"
            code, output = run_exec(command, timeout)
            if code == 0:
                return True, ""
            if code < 0:
                return False, f"command {command!r} timed out"
            return False, output.strip()[:1024] or f"command {command!r} exited with {code}"
        if handler.get("httpGet") is not None:
            h = handler["httpGet"]
            port = resolve_port(h.get("port"), container)
            return _http(h, netns, str(h.get("host") or pod_ip), port, timeout)
        for kind in ("tcpSocket", "grpc"):
            if handler.get(kind) is not None:
                h = handler[kind]
                host = str(h.get("host") or pod_ip)
                port = resolve_port(h.get("port"), container)
                try:
                    _connect(netns, host, port, timeout).close()
                except OSError as e:
                    return False, _dial_error(host, port, e)
                return True, ""
    except ValueError as e:
        return False, str(e)
    return False, "probe has no handler (httpGet, tcpSocket, exec or grpc)"


@dataclass(frozen=True)
class ProbeSpec:
    """A probe with its defaults applied (seconds)."""

    kind: str  # "readiness" | "liveness" | "startup"
    handler: Mapping[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None

    @classmethod
    def from_probe(cls, kind: str, probe: Mapping[str, Any]) -> ProbeSpec:
        def num(key: str, default: float) -> float:
            value = probe.get(key)
            return float(value) if isinstance(value, int | float) and value > 0 else default

        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            kind=kind,
            handler=probe,
            initial_delay=max(0.0, float(probe.get("initialDelaySeconds") or 0)),
            period=num("periodSeconds", 10.0),
            timeout=num("timeoutSeconds", 1.0),
            success_threshold=1 if kind != "readiness" else int(num("successThreshold", 1)),
            failure_threshold=int(num("failureThreshold", 3)),
            termination_grace=float(grace) if isinstance(grace, int) else None,
        )

    @property
    def initial(self) -> bool:
        return self.kind == "liveness"


class ProbeWorker:
    """Runs one probe of one container instance on its own thread."""

    def __init__(
        self,
        spec: ProbeSpec,
        run_check: Callable[[], tuple[bool, str]],
        *,
        on_change: Callable[[ProbeWorker], None],
        on_failure: Callable[[ProbeWorker, str], None],
        name: str = "probe",
    ) -> None:
        self.spec = spec
        self._check = run_check
        self._on_change = on_change
        self._on_failure = on_failure
        self.result = spec.initial
        self.message = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ProbeWorker:
        self._thread.start()
        return self

    def stop(self, join: bool = True) -> None:
        self._stop.set()
        if join and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.spec.timeout + 5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        spec = self.spec
        successes = failures = 0
        if self._stop.wait(spec.initial_delay):
            return
        while not self._stop.is_set():
            try:
                ok, message = self._check()
            except Exception as e:  # a probe that cannot run has failed; the next one may not
                _log.warning("%s probe check raised", spec.kind, exc_info=True)
                ok, message = False, f"probe error: {e}"
            if self._stop.is_set():
                return
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                self._on_failure(self, message)
            verdict: bool | None = None
            if ok and successes >= spec.success_threshold:
                verdict = True
            elif not ok and failures >= spec.failure_threshold:
                verdict = False
            # A startup probe starts as failed, so its failures below the threshold are no
            # verdict, and reaching the threshold changes nothing but must still be reported.
            if verdict is not None and (verdict != self.result or spec.kind == "startup"):
                self.result = verdict
                self.message = message
                self._on_change(self)
            if spec.kind == "startup" and verdict is not None:
                return
            if spec.kind == "liveness" and verdict is False:
                return
            self._stop.wait(spec.period)
