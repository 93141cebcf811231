"""Tests for opkit.manager: lifecycle, probes, metrics, leader election, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from helpers import wait_for

from opkit import errors
from opkit.client import Client
from opkit.controller import Request, Result
from opkit.manager import LeaderElectionLostError, Manager, parse_bind_address
from opkit.testing import APIServer

NS = "default"
LOCAL = "127.0.0.1:0"
FAST_ELECTION: dict[str, Any] = {
    "leader_election": True,
    "leader_election_id": "test-operator",
    "leader_election_namespace": NS,
    "lease_duration": 1.0,
    "renew_deadline": 0.6,
    "retry_period": 0.1,
}


def http_get(address: tuple[str, int] | None, path: str) -> tuple[int, str]:
    assert address is not None
    url = f"http://127.0.0.1:{address[1]}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Recorder:
    def __init__(self, result: Result | None = None) -> None:
        self.calls: list[Request] = []
        self.lock = threading.Lock()
        self.result = result

    def reconcile(self, request: Request) -> Result | None:
        with self.lock:
            self.calls.append(request)
        return self.result

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def create_configmaps(client: Client, *names: str) -> None:
    cms = client.resource("v1", "ConfigMap")
    for name in names:
        cms.create({"metadata": {"name": name, "namespace": NS}, "data": {}})


# -- configuration --------------------------------------------------------------------------------


def test_parse_bind_address() -> None:
    assert parse_bind_address("0") is None
    assert parse_bind_address("") is None
    assert parse_bind_address(None) is None
    assert parse_bind_address(":8080") == ("", 8080)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:9000") == ("::1", 9000)
    for bad in ("8080", "host:port", ":70000"):
        with pytest.raises(ValueError):
            parse_bind_address(bad)


def test_configuration_errors(client: Client) -> None:
    with pytest.raises(ValueError, match="leader_election_id"):
        Manager(client, leader_election=True, leader_election_namespace=NS)
    with pytest.raises(ValueError, match="leaseDuration"):
        Manager(client, **{**FAST_ELECTION, "renew_deadline": 2.0})
    mgr = Manager(client)
    mgr.controller("dup", Recorder(), for_=("v1", "ConfigMap"))
    with pytest.raises(ValueError, match="already exists"):
        mgr.controller("dup", Recorder(), for_=("v1", "ConfigMap"))
    mgr.stop()  # never started: a no-op


# -- running ----------------------------------------------------------------------------------


def test_probes_metrics_and_clean_stop(apiserver: APIServer, kubeconfig: str) -> None:
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    client = Client.from_kubeconfig(kubeconfig)
    create_configmaps(client, "a", "b")
    rec = Recorder()
    mgr = Manager(client, metrics_bind_address=LOCAL, health_probe_bind_address=LOCAL)
    mgr.controller("probed", rec, for_=("v1", "ConfigMap"))
    apiserver.faults.delay(0.3, verb="list", resource="configmaps")
    mgr.start()
    health, metrics_addr = mgr.health_probe_address, mgr.metrics_address
    assert health is not None and metrics_addr is not None and health != metrics_addr

    assert http_get(health, "/healthz") == (200, "ok")
    status, body = http_get(health, "/readyz")  # the first list is still delayed
    assert status == 500 and "[-]informer-sync failed" in body
    apiserver.faults.clear()
    wait_for(lambda: mgr.ready, "caches synced")
    assert http_get(health, "/readyz") == (200, "ok")
    status, body = http_get(health, "/readyz?verbose")
    assert status == 200
    assert "[+]informer-sync ok" in body and "[+]leader-election ok: disabled" in body
    assert body.rstrip().endswith("readyz check passed")
    assert http_get(health, "/readyz/ping") == (200, "ok")
    assert http_get(health, "/healthz/nope")[0] == 404
    status, body = http_get(health, "/readyz?exclude=informer-sync&verbose")
    assert "[+]informer-sync excluded: ok" in body
    assert http_get(health, "/metrics")[0] == 404  # different address

    wait_for(lambda: rec.count() >= 2, "reconciles")
    status, text = http_get(metrics_addr, "/metrics")
    assert status == 200
    assert 'controller_runtime_reconcile_total{controller="probed",result="success"}' in text
    assert 'controller_runtime_reconcile_total{controller="probed",result="error"} 0.0' in text
    assert 'controller_runtime_max_concurrent_reconciles{controller="probed"} 1.0' in text
    assert 'workqueue_adds_total{name="probed"}' in text
    assert http_get(metrics_addr, "/healthz")[0] == 404

    mgr.stop()
    assert mgr.exit_code == 0
    for port in (health[1], metrics_addr[1]):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    client.close()
    # The API server's per-connection threads end once the client's connections close.
    wait_for(lambda: set(threading.enumerate()) == threads_before, "no leftover threads")
    wait_for(lambda: open_fds() == fds_before, "no leftover sockets")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_shared_bind_address_serves_everything(client: Client) -> None:
    address = f"127.0.0.1:{free_port()}"
    with Manager(client, metrics_bind_address=address, health_probe_bind_address=address) as mgr:
        assert mgr.metrics_address == mgr.health_probe_address  # one server, every path
        wait_for(lambda: mgr.ready, "ready (no informers)")
        assert http_get(mgr.metrics_address, "/healthz") == (200, "ok")
        assert http_get(mgr.metrics_address, "/metrics")[0] == 200
        assert http_get(mgr.metrics_address, "/nothing")[0] == 404


def test_port_in_use_fails_start(client: Client) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mgr = Manager(client, metrics_bind_address=f"127.0.0.1:{port}")
        with pytest.raises(OSError):
            mgr.start()
        mgr.stop()
        again = Manager(client, metrics_bind_address=f"127.0.0.1:{port}")
        assert again.run() == 1  # run() reports the failure as an exit status
        assert isinstance(again.error, OSError)


def test_graceful_stop_finishes_running_reconciles(client: Client) -> None:
    create_configmaps(client, "slow", "queued-1", "queued-2")
    started, finished = threading.Event(), threading.Event()
    names: list[str] = []

    def reconcile(req: Request) -> None:
        names.append(req.name)
        if req.name == "slow":
            started.set()
            time.sleep(0.2)
            finished.set()

    mgr = Manager(client, graceful_shutdown_timeout=10)
    ctrl = mgr.controller("graceful", reconcile, for_=("v1", "ConfigMap"))
    mgr.start()
    for name in ("slow", "queued-1", "queued-2"):  # make sure "slow" is first in the queue
        ctrl.enqueue(Request(NS, name))
    started.wait(15)
    mgr.stop()
    assert finished.is_set()  # the running reconcile completed before stop() returned
    assert not [t for t in threading.enumerate() if t.name.startswith("controller-graceful")]


def test_runnables_and_failure_exit_code(client: Client) -> None:
    ran: list[str] = []

    def always(stop: threading.Event) -> None:
        ran.append("always")
        stop.wait()

    def broken(stop: threading.Event) -> None:
        raise RuntimeError("runnable broke")

    mgr = Manager(client)
    mgr.add_runnable(always, needs_leader_election=False)
    mgr.add_runnable(broken)
    mgr.start()
    assert mgr.wait(15)
    assert mgr.exit_code == 1
    assert isinstance(mgr.error, RuntimeError) and str(mgr.error) == "runnable broke"
    assert ran == ["always"]
    mgr.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith(("runnable-", "manager"))]


def test_run_returns_zero_on_sigterm(client: Client) -> None:
    mgr = Manager(client)
    rec = Recorder()
    mgr.controller("signalled", rec, for_=("v1", "ConfigMap"))
    previous = signal.getsignal(signal.SIGTERM)

    def send() -> None:
        wait_for(mgr.elected.is_set, "started")
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send)
    sender.start()
    assert mgr.run() == 0
    sender.join()
    assert signal.getsignal(signal.SIGTERM) is previous


# -- leader election ----------------------------------------------------------------------------


def test_only_the_leader_reconciles_and_a_standby_takes_over(client: Client) -> None:
    create_configmaps(client, "x", "y")
    first, second = Recorder(), Recorder()
    a = Manager(client, identity="a", health_probe_bind_address=LOCAL, **FAST_ELECTION)
    b = Manager(client, identity="b", health_probe_bind_address=LOCAL, **FAST_ELECTION)
    a.controller("elected", first, for_=("v1", "ConfigMap"))
    b.controller("elected", second, for_=("v1", "ConfigMap"))
    try:
        a.start()
        wait_for(a.is_leader, "a leads")
        wait_for(lambda: first.count() >= 2, "the leader reconciles")
        b.start()
        wait_for(lambda: b.ready, "b synced (standby managers keep caches warm)")
        standby = "[+]leader-election ok: standby (leader: a)"
        wait_for(
            lambda: standby in http_get(b.health_probe_address, "/readyz?verbose")[1],
            "b observed the lease",
        )
        assert http_get(b.health_probe_address, "/readyz")[0] == 200  # a standby is ready
        assert (
            "leader-election ok: leading" in http_get(a.health_probe_address, "/readyz?verbose")[1]
        )
        time.sleep(0.3)  # several retry periods
        assert not b.is_leader() and second.count() == 0
        assert http_get(b.health_probe_address, "/healthz") == (200, "ok")

        a.stop()  # without release-on-cancel: b waits for the lease to expire
        assert a.exit_code == 0
        wait_for(b.is_leader, "b takes over")
        wait_for(lambda: second.count() >= 2, "the new leader reconciles everything")
        leases = client.resource("coordination.k8s.io/v1", "Lease")
        assert leases.get("test-operator", NS)["spec"]["holderIdentity"] == "b"
    finally:
        a.stop()
        b.stop()


def test_release_on_cancel_frees_the_lease(client: Client) -> None:
    mgr = Manager(
        client, identity="quitter", leader_election_release_on_cancel=True, **FAST_ELECTION
    )
    mgr.start()
    wait_for(mgr.is_leader, "leading")
    mgr.stop()
    lease = client.resource("coordination.k8s.io/v1", "Lease").get("test-operator", NS)
    assert lease["spec"].get("holderIdentity", "") == ""


def test_lost_lease_halts_controllers_and_exits_nonzero(client: Client) -> None:
    create_configmaps(client, "one")
    rec = Recorder()
    mgr = Manager(client, identity="victim", **FAST_ELECTION)
    ctrl = mgr.controller("victim", rec, for_=("v1", "ConfigMap"))
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(mgr.run()))
    runner.start()
    try:
        wait_for(lambda: rec.count() >= 1, "reconciling as leader")
        leases = client.resource("coordination.k8s.io/v1", "Lease")

        def steal() -> bool:
            lease = leases.get("test-operator", NS)
            lease["spec"]["holderIdentity"] = "thief"
            lease["spec"]["leaseDurationSeconds"] = 60
            try:
                leases.update(lease)
            except errors.Conflict:
                return False
            return True

        wait_for(steal, "lease stolen")
        runner.join(15)
        assert result == [1]
        assert isinstance(mgr.error, LeaderElectionLostError)
        calls = rec.count()
        ctrl.enqueue(Request(NS, "one"))  # the queue is shut down: nothing runs any more
        time.sleep(0.05)
        assert rec.count() == calls
    finally:
        mgr.stop()
        runner.join(15)
    assert not [t for t in threading.enumerate() if t.name.startswith(("controller-", "leader"))]
