"""Probes: defaults, thresholds, the three handlers; logs following; the config reloader."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opkit.testing.kubelet._logs import read_log
from opkit.testing.kubelet._probes import ProbeSpec, ProbeWorker, check, resolve_port


class _Handler(http.server.BaseHTTPRequestHandler):
    codes: dict[str, int] = {"/ok": 200, "/moved": 302, "/bad": 503}
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Handler.seen.append(dict(self.headers))
        self.send_response(self.codes.get(self.path, 404))
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"body")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(handler: dict[str, Any], **kw: Any) -> tuple[bool, str]:
    return check(
        handler,
        container=kw.get("container", {}),
        pod_ip="127.0.0.1",
        netns=None,
        timeout=2.0,
        run_exec=kw.get("run_exec"),
    )


def test_probe_defaults_follow_kubernetes() -> None:
    spec = ProbeSpec.from_probe("readiness", {"httpGet": {"port": 80}, "successThreshold": 2})
    assert (spec.initial_delay, spec.period, spec.timeout) == (0.0, 10.0, 1.0)
    assert (spec.success_threshold, spec.failure_threshold) == (2, 3)
    assert not spec.initial
    live = ProbeSpec.from_probe("liveness", {"successThreshold": 5, "periodSeconds": 2})
    assert live.success_threshold == 1  # must be 1 for liveness and startup
    assert live.initial and live.period == 2.0


def test_http_probe_success_range_headers_and_failures(http_port: int) -> None:
    _Handler.seen.clear()
    headers = [{"name": "X-Probe", "value": "yes"}]
    assert _check({"httpGet": {"path": "/ok", "port": http_port, "httpHeaders": headers}}) == (
        True,
        "",
    )
    assert _Handler.seen[0]["User-Agent"].startswith("kube-probe/")
    assert _Handler.seen[0]["X-Probe"] == "yes"
    assert _check({"httpGet": {"path": "/moved", "port": http_port}})[0]
    ok, message = _check({"httpGet": {"path": "/bad", "port": http_port}})
    assert not ok and message.startswith("HTTP probe failed with statuscode: 503")
    port = _free_port()
    ok, message = _check({"httpGet": {"path": "/", "port": port}})
    assert not ok
    assert message == (
        f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


def test_tcp_probe_and_named_ports(http_port: int) -> None:
    container = {"ports": [{"name": "web", "containerPort": http_port}]}
    assert _check({"tcpSocket": {"port": "web"}}, container=container) == (True, "")
    assert resolve_port("8080", {}) == 8080
    ok, message = _check({"tcpSocket": {"port": "nope"}}, container=container)
    assert not ok and "port 'nope' not found" in message


def test_exec_probe_uses_the_runner_and_reports_output() -> None:
    calls: list[list[str]] = []

    def runner(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        return (0, "") if argv[-1] == "good" else (1, "it is broken\n")

    assert _check({"exec": {"command": ["check", "good"]}}, run_exec=runner) == (True, "")
    assert _check({"exec": {"command": ["check", "bad"]}}, run_exec=runner) == (
        False,
        "it is broken",
    )
    assert calls == [["check", "good"], ["check", "bad"]]


def _run_worker(kind: str, results: list[bool], **probe: Any) -> list[bool]:
    """Feed ``results`` to a worker (then failures until stopped); the result changes seen."""
    changes: list[bool] = []
    failures: list[str] = []
    done = threading.Event()
    feed = iter(results)

    def run_check() -> tuple[bool, str]:
        value = next(feed, None)
        if value is None:
            done.set()
            return False, "exhausted"
        return value, "" if value else "failed"

    spec = ProbeSpec.from_probe(kind, {"periodSeconds": 0.001, **probe})
    worker = ProbeWorker(
        spec,
        run_check,
        on_change=lambda w: changes.append(w.result),
        on_failure=lambda w, msg: failures.append(msg),
    ).start()
    done.wait(10)
    worker.stop()
    assert failures  # every failed check is reported (the kubelet turns them into events)
    return changes


def test_readiness_flips_only_after_the_thresholds() -> None:
    changes = _run_worker(
        "readiness",
        [False, True, False, True, True, False, False],
        successThreshold=2,
        failureThreshold=3,
    )
    # ready after two successes in a row; not ready after three failures in a row
    assert changes == [True, False]


def test_liveness_fails_after_the_threshold_and_stops_probing() -> None:
    changes: list[bool] = []
    calls = []

    def run_check() -> tuple[bool, str]:
        calls.append(1)
        return False, "down"

    spec = ProbeSpec.from_probe("liveness", {"periodSeconds": 0.001, "failureThreshold": 2})
    worker = ProbeWorker(
        spec, run_check, on_change=lambda w: changes.append(w.result), on_failure=lambda w, m: None
    ).start()
    worker._thread.join(10)
    assert not worker._thread.is_alive()
    assert changes == [False] and len(calls) == 2


def test_a_startup_probe_keeps_probing_until_it_succeeds_then_stops() -> None:
    calls: list[int] = []
    results = iter([False, False, True])

    def run_check() -> tuple[bool, str]:
        calls.append(1)
        return (True, "") if next(results, True) else (False, "not yet")

    changes: list[bool] = []
    spec = ProbeSpec.from_probe("startup", {"periodSeconds": 0.001, "failureThreshold": 5})
    worker = ProbeWorker(
        spec, run_check, on_change=lambda w: changes.append(w.result), on_failure=lambda w, m: None
    ).start()
    worker._thread.join(10)
    assert not worker._thread.is_alive()
    # failures below the threshold are not a verdict: it starts as not started, and goes on
    assert changes == [True] and len(calls) == 3


def test_a_startup_probe_reports_failure_at_the_threshold_and_stops() -> None:
    calls: list[int] = []
    changes: list[bool] = []

    def run_check() -> tuple[bool, str]:
        calls.append(1)
        return False, "down"

    spec = ProbeSpec.from_probe("startup", {"periodSeconds": 0.001, "failureThreshold": 3})
    worker = ProbeWorker(
        spec, run_check, on_change=lambda w: changes.append(w.result), on_failure=lambda w, m: None
    ).start()
    worker._thread.join(10)
    assert not worker._thread.is_alive()
    # reported although the result stays False: the kubelet restarts the container on it
    assert changes == [False] and len(calls) == 3 and worker.message == "down"


def test_a_check_that_raises_is_a_failed_check_and_probing_goes_on() -> None:
    outcomes: list[Any] = [OSError(11, "Resource temporarily unavailable"), True]
    failures: list[str] = []
    changes: list[bool] = []

    def run_check() -> tuple[bool, str]:
        outcome = outcomes.pop(0) if outcomes else True
        if isinstance(outcome, Exception):
            raise outcome
        return outcome, ""

    spec = ProbeSpec.from_probe("startup", {"periodSeconds": 0.001})
    worker = ProbeWorker(
        spec,
        run_check,
        on_change=lambda w: changes.append(w.result),
        on_failure=lambda w, m: failures.append(m),
    ).start()
    worker._thread.join(10)
    assert not worker._thread.is_alive()
    assert failures == ["probe error: [Errno 11] Resource temporarily unavailable"]
    assert changes == [True]


def test_read_log_follows_until_the_run_ends(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_bytes(b"one\n")
    alive = threading.Event()
    alive.set()
    chunks = read_log(log, follow=True, alive=alive.is_set, poll=0.01)
    got = [next(chunks)]  # the file is open from here on
    reader = threading.Thread(target=lambda: got.extend(chunks))
    reader.start()
    with open(log, "ab") as f:
        f.write(b"two\n")
    os.replace(log, tmp_path / "c.log.previous")  # a restart rotates the file away
    with open(tmp_path / "c.log.previous", "ab") as f:
        f.write(b"three\n")
    alive.clear()
    reader.join(10)
    assert b"".join(got) == b"one\ntwo\nthree\n"
    assert list(read_log(tmp_path / "missing.log")) == []


def test_config_reloader_posts_when_a_watched_file_changes(tmp_path: Path) -> None:
    posts: list[str] = []
    got = threading.Event()

    class Reload(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(self.path)
            got.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Reload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    watched = tmp_path / "cfg"
    watched.mkdir()
    (watched / "a.yml").write_text("v1")
    url = f"http://127.0.0.1:{server.server_address[1]}/-/reload"
    argv = [
        *(sys.executable, "-m", "opkit.testing.kubelet._reloader"),
        *(f"--volume-dir={watched}", f"--webhook-url={url}"),
        *("--interval=0.02", "--unknown-flag=ignored"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "watching" in proc.stdout.readline()  # printed once it knows the first state
        assert not got.is_set()
        (watched / "a.yml").write_text("v2")
        assert got.wait(10)
        assert posts == ["/-/reload"]
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        server.shutdown()
        server.server_close()
        thread.join()
