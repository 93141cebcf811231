"""Helpers shared by the benchmark scripts: a server process, memory probes, children, Markdown.

Benchmarks that compare memory run every variant in a fresh interpreter (a ``--child`` mode of
the same script) so one variant's leftovers never inflate another's RSS; the API server runs
in its own process too, so the measured process holds only client-side memory.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import urllib3
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DATA_1K = "x" * 1000
"""Payload of the ~1 KiB ConfigMaps every benchmark uses."""
LOAD_AT_START = os.getloadavg()[0]
"""The 1-minute load average when the benchmark script started: other work on the machine
skews every figure, so each table reports it."""


# -- reporting -------------------------------------------------------------------------------------


def machine_line() -> str:
    """One line describing where the figures come from (kept next to every table)."""
    return (
        f"Machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"load average {LOAD_AT_START:.2f} when the script started."
    )


def write_section(path: Path, section: str, heading: str) -> None:
    """Replace the ``heading`` section of docs/benchmarks.md (or append it), keeping one blank
    line between sections."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    body = section.strip("\n") + "\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(heading))
        rest = "" if end < 0 else "\n" + text[end + 1 :]
        text = text[:start] + body + rest
    path.write_text(text)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23x`` (or ``n/a`` when ``b`` is zero)."""
    return f"{a / b:.2f}x" if b else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# -- memory ----------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_kib() -> int:
    """Resident set size of this process now (``VmRSS``), in KiB."""
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    """Peak resident set size since start or :func:`reset_peak_rss` (``VmHWM``), in KiB."""
    return _status_kib("VmHWM")


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs``); ignored where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


# -- timing ----------------------------------------------------------------------------------------


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.001) -> bool:
    """Poll ``pred`` every ``step`` seconds (fine-grained, unlike informer sync waits)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


# -- child processes -------------------------------------------------------------------------------


def run_child(script: str | Path, args: Sequence[str], timeout: float = 300.0) -> dict[str, Any]:
    """Run ``python script args`` and return the JSON object on its last stdout line."""
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"child {script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def emit(result: dict[str, Any]) -> None:
    """A child's answer to :func:`run_child`."""
    print(json.dumps(result), flush=True)


# -- the API server --------------------------------------------------------------------------------


class ServerProcess:
    """``python -m opkit.testing apiserver`` in a child process, for a ``with`` block."""

    def __init__(self, startup_timeout: float = 60.0) -> None:
        self._startup_timeout = startup_timeout
        self._dir = tempfile.mkdtemp(prefix="opkit-bench-")
        self.kubeconfig = os.path.join(self._dir, "kubeconfig")
        self.url = ""
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "opkit.testing", "apiserver", "--kubeconfig", self.kubeconfig],
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        deadline = time.monotonic() + self._startup_timeout
        while not os.path.exists(self.kubeconfig):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the API server process did not start")
            time.sleep(0.02)
        with open(self.kubeconfig, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        self.url = config["clusters"][0]["cluster"]["server"]
        self.token = config["users"][0]["user"].get("token", "")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def headers(token: str, content_type: str | None = None) -> dict[str, str]:
    h = {"Accept": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    if content_type:
        h["Content-Type"] = content_type
    return h


def configmap(name: str, namespace: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "true"}},
            "data": {"payload": DATA_1K},
        }
    ).encode()


def ensure_namespace(http: urllib3.PoolManager, url: str, token: str, namespace: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    r = http.request(
        "POST",
        f"{url}/api/v1/namespaces",
        body=body.encode(),
        headers=headers(token, "application/json"),
    )
    if r.status not in (201, 409):
        raise RuntimeError(f"cannot create namespace {namespace}: {r.status} {r.data[:200]!r}")


def populate(url: str, token: str, namespace: str, count: int, threads: int = 4) -> None:
    """Create ``count`` ~1 KiB ConfigMaps named ``cm-00000``... in ``namespace``."""
    http = urllib3.PoolManager(maxsize=threads + 1)
    ensure_namespace(http, url, token, namespace)
    errors: list[str] = []
    hdrs = headers(token, "application/json")

    def worker(first: int) -> None:
        for i in range(first, count, threads):
            r = http.request(
                "POST",
                f"{url}/api/v1/namespaces/{namespace}/configmaps",
                body=configmap(f"cm-{i:05d}", namespace),
                headers=hdrs,
            )
            if r.status != 201:
                errors.append(f"{r.status} {r.data[:200]!r}")
                return

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    http.clear()
    if errors:
        raise RuntimeError(f"populating {namespace} failed: {errors[0]}")


def current_resource_version(url: str, token: str, namespace: str) -> str:
    """The collection RV of ``namespace``'s ConfigMaps (a quorum read, one item)."""
    http = urllib3.PoolManager()
    r = http.request(
        "GET", f"{url}/api/v1/namespaces/{namespace}/configmaps?limit=1", headers=headers(token)
    )
    http.clear()
    rv: str = json.loads(r.data)["metadata"]["resourceVersion"]
    return rv
