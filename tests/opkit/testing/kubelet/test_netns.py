"""Pod network: connectivity matrix, private localhost, names inside pods, clean teardown."""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opkit.testing.kubelet._hosts import cluster_records, hosts_text, write_hosts_file
from opkit.testing.kubelet._netns import (
    PodNetwork,
    PodNetworkError,
    PodNetworkUnavailable,
    cleanup_leftovers,
)
from opkit.testing.kubelet._podexec import podexec_argv
from opkit.testing.kubelet._procs import Proc, ProcessRegistry, spawn

PY = sys.executable
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="pod networking needs root (CI runs as root)")

# Names and subnets of these tests, apart from a real cluster's opk0/127.200.0.0/16.
BRIDGE, SUBNET = "opkt0", "127.240.0.0/16"

SERVER = textwrap.dedent(
    """
    import socket, sys
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen()
    print("listening", flush=True)
    while True:
        c, addr = s.accept()
        c.sendall(f"{name} {addr[0]}".encode())
        c.close()
    """
)
CLIENT = textwrap.dedent(
    """
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        print(s.recv(200).decode())
    """
)


def _ask(host: str, port: int) -> str:
    """Connect from the host side and return what the server says."""
    with socket.create_connection((host, port), timeout=5) as s:
        return s.recv(200).decode()


def _wait_listening(proc: Proc, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if log.exists() and "listening" in log.read_text():
            return
        if not proc.alive():
            break
        time.sleep(0.02)
    raise AssertionError(f"server did not start: {log.read_text() if log.exists() else ''}")


def _state() -> dict[str, list[str]]:
    """Everything of ours visible on the host: namespaces, links, routes, rules."""
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, check=True).stdout)
    routes = subprocess.run(
        ["ip", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    ).stdout
    rules = subprocess.run(["ip", "rule"], capture_output=True, text=True, check=True).stdout
    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    return {
        "netns": [n for n in netns if n.startswith("opkt")],
        "links": [link["ifname"] for link in links if link["ifname"].startswith("opkt")],
        "routes": [r for r in routes.splitlines() if "opkt" in r or "127.24" in r],
        "rules": rules.splitlines(),
    }


EMPTY: dict[str, list[str]] = {"netns": [], "links": [], "routes": []}


def _ours(state: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in state.items() if k != "rules"}


class Cluster:
    """Two pods, each with a server on 0.0.0.0:2379, and a server on the host's bridge address."""

    def __init__(self, net: PodNetwork, tmp: Path) -> None:
        self.net = net
        self.tmp = tmp
        self.registry = ProcessRegistry()
        self.a = net.add_pod("db/etcd-0")
        self.b = net.add_pod("db/etcd-1")
        self.host_port = 0
        for name, pod in (("A", self.a), ("B", self.b)):
            self._serve(name, "0.0.0.0", 2379, net.exec_prefix(pod.pod_id))
        with socket.socket() as probe:
            probe.bind((net.bridge_ip, 0))
            self.host_port = probe.getsockname()[1]
        self._serve("H", net.bridge_ip, self.host_port, [])

    def _serve(self, name: str, host: str, port: int, prefix: list[str]) -> None:
        log = self.tmp / f"{name}.log"
        proc = spawn(
            [PY, "-c", SERVER, name, host, str(port)],
            prefix=prefix,
            stdout_path=log,
            stderr_path=log,
            registry=self.registry,
        )
        _wait_listening(proc, log)

    def in_pod(self, pod_id: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.net.exec_prefix(pod_id), *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def ask_from(self, pod_id: str, host: str, port: int) -> str:
        res = self.in_pod(pod_id, PY, "-c", CLIENT, host, str(port))
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not ROOT:
        pytest.skip("pod networking needs root (CI runs as root)")
    rules_before = _state()["rules"]
    net = PodNetwork(bridge=BRIDGE, subnet=SUBNET).start()
    try:
        c = Cluster(net, tmp_path_factory.mktemp("podnet"))
        try:
            yield c
        finally:
            c.registry.kill_all()
    finally:
        net.teardown_all()
    after = _state()
    assert _ours(after) == EMPTY
    assert after["rules"] == rules_before


@needs_root
def test_addresses_are_in_the_pod_subnet(cluster: Cluster) -> None:
    assert cluster.net.bridge_ip == "127.240.0.1"
    assert cluster.a.ip.startswith("127.240.")
    assert cluster.b.ip.startswith("127.240.")
    assert cluster.a.ip != cluster.b.ip
    assert cluster.a.netns.startswith(BRIDGE + "-")
    assert len(cluster.a.host_veth) <= 15


@needs_root
def test_host_reaches_each_pod_and_both_listen_on_the_same_port(cluster: Cluster) -> None:
    assert _ask(cluster.a.ip, 2379) == f"A {cluster.net.bridge_ip}"
    assert _ask(cluster.b.ip, 2379) == f"B {cluster.net.bridge_ip}"


@needs_root
def test_pod_to_pod(cluster: Cluster) -> None:
    assert cluster.ask_from(cluster.a.pod_id, cluster.b.ip, 2379) == f"B {cluster.a.ip}"
    assert cluster.ask_from(cluster.b.pod_id, cluster.a.ip, 2379) == f"A {cluster.b.ip}"


@needs_root
def test_pod_to_host_via_the_bridge_address(cluster: Cluster) -> None:
    answer = cluster.ask_from(cluster.a.pod_id, cluster.net.bridge_ip, cluster.host_port)
    assert answer == f"H {cluster.a.ip}"


@needs_root
def test_localhost_inside_a_pod_is_the_pod(cluster: Cluster) -> None:
    assert cluster.ask_from(cluster.a.pod_id, "127.0.0.1", 2379) == "A 127.0.0.1"
    assert cluster.ask_from(cluster.b.pod_id, "localhost", 2379) == "B 127.0.0.1"
    assert cluster.ask_from(cluster.a.pod_id, cluster.a.ip, 2379) == f"A {cluster.a.ip}"
    # ... and on the host, nothing listens on 127.0.0.1:2379 because of the pods.
    res = subprocess.run(
        [PY, "-c", CLIENT, "127.0.0.1", "2379"], capture_output=True, text=True, check=False
    )
    assert res.returncode != 0 or not res.stdout.startswith(("A ", "B "))


@needs_root
def test_private_ranges_are_unreachable_from_pods_without_sending_anything(
    cluster: Cluster,
) -> None:
    probe = (
        "import socket, sys\n"
        "s = socket.socket(); s.settimeout(5)\n"
        "try:\n    s.connect((sys.argv[1], 443))\n"
        "except OSError as e:\n    print(e.errno)\n"
    )
    res = cluster.in_pod(cluster.a.pod_id, PY, "-c", probe, "10.96.0.1")
    assert res.stdout.strip() in ("101", "113")  # ENETUNREACH / EHOSTUNREACH, at once


@needs_root
def test_pod_sees_cluster_names_through_its_private_hosts_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    pods = [
        {
            "metadata": {"name": name, "namespace": "db"},
            "spec": {"hostname": name, "subdomain": "etcd"},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
        }
        for name, ip in (("etcd-0", cluster.a.ip), ("etcd-1", cluster.b.ip))
    ]
    services = [{"metadata": {"name": "etcd", "namespace": "db"}, "spec": {"clusterIP": "None"}}]
    endpoints = [
        {
            "metadata": {"name": "etcd", "namespace": "db"},
            "subsets": [{"addresses": [{"ip": cluster.a.ip}, {"ip": cluster.b.ip}]}],
        }
    ]
    hosts = tmp_path / "hosts"
    write_hosts_file(hosts, hosts_text(cluster_records(services, pods, endpoints), pod=pods[0]))
    before = Path("/etc/hosts").read_bytes()
    prefix = podexec_argv(netns=cluster.a.netns, hosts_file=hosts, hostname="etcd-0")
    res = subprocess.run(
        [*prefix, PY, "-c", CLIENT, "etcd-1.etcd", "2379"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"B {cluster.a.ip}"
    res = subprocess.run(
        [*prefix, "sh", "-c", "hostname; getent hosts etcd-0.etcd.db.svc.cluster.local"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.stdout.split()[:2] == ["etcd-0", cluster.a.ip]
    assert Path("/etc/hosts").read_bytes() == before


@needs_root
def test_supervised_program_in_a_pod_is_the_spawned_process(cluster: Cluster) -> None:
    # `ip netns exec` and the wrapper exec rather than fork, so the pid the kubelet holds
    # (and its parent-death signal) is the supervisor's; the program is its child, PID 1 of
    # the pod's PID namespace.
    proc = spawn(
        ["sleep", "60"],
        prefix=[*cluster.net.exec_prefix(cluster.a.pod_id), *podexec_argv(pid_ns=True)],
        registry=cluster.registry,
    )
    try:
        deadline = time.monotonic() + 10
        children: list[str] = []
        while time.monotonic() < deadline and not children:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            time.sleep(0.01)
        assert "_podexec.py" in Path(f"/proc/{proc.pid}/cmdline").read_text()
        (child,) = children
        assert Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        pod_ns = os.stat(cluster.a.netns_path)
        child_ns = os.stat(f"/proc/{child}/ns/net")
        assert (child_ns.st_dev, child_ns.st_ino) == (pod_ns.st_dev, pod_ns.st_ino)
    finally:
        assert proc.terminate(grace=0) == 137


@needs_root
def test_teardown_pod_frees_namespace_link_and_address(cluster: Cluster) -> None:
    pod = cluster.net.add_pod("db/short-lived")
    assert pod.netns in _state()["netns"]
    cluster.net.teardown_pod(pod.pod_id)
    state = _state()
    assert pod.netns not in state["netns"]
    assert pod.host_veth not in state["links"]
    assert cluster.net.get(pod.pod_id) is None
    cluster.net.teardown_pod(pod.pod_id)  # idempotent


@needs_root
def test_global_cleanup_leaves_a_live_network_alone(cluster: Cluster) -> None:
    removed = cleanup_leftovers()
    assert not [r for r in removed if BRIDGE in r]
    assert _ask(cluster.a.ip, 2379).startswith("A ")


CRASHING_KUBELET = textwrap.dedent(
    """
    import sys, time
    from opkit.testing.kubelet._netns import PodNetwork
    net = PodNetwork(bridge=sys.argv[1], subnet=sys.argv[2]).start()
    net.add_pod("db/orphan-0")
    net.add_pod("db/orphan-1")
    print("up", flush=True)
    time.sleep(120)
    """
)


@needs_root
def test_cleanup_leftovers_after_a_crashed_run() -> None:
    bridge, subnet = "opkt1", "127.241.0.0/16"
    proc = subprocess.Popen(
        [PY, "-c", CRASHING_KUBELET, bridge, subnet], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        # While its owner lives, the network is not a leftover.
        assert cleanup_leftovers(bridge) == []
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    state = _state()
    assert len([n for n in state["netns"] if n.startswith(bridge + "-")]) == 2
    assert bridge in state["links"]
    removed = cleanup_leftovers(bridge)
    assert f"link {bridge}" in removed
    assert len([r for r in removed if r.startswith("netns")]) == 2
    state = _state()
    assert not [n for n in state["netns"] if n.startswith(bridge)]
    assert not [link for link in state["links"] if link.startswith(bridge)]
    assert not [r for r in state["routes"] if "127.241." in r]


@needs_root
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")  # the point of the test
def test_dropped_manager_is_cleaned_at_the_next_start() -> None:
    bridge, subnet = "opkt2", "127.242.0.0/16"
    net = PodNetwork(bridge=bridge, subnet=subnet).start()
    pod = net.add_pod("db/left-behind")
    del net  # no teardown: what a crashed process leaves (its liveness lock dies with it)
    gc.collect()
    assert pod.netns in _state()["netns"]
    with PodNetwork(bridge=bridge, subnet=subnet) as again:
        state = _state()
        assert pod.netns not in state["netns"]
        assert again.add_pod("db/fresh").ip == "127.242.0.2"
    state = _state()
    assert not [n for n in state["netns"] if n.startswith(bridge)]
    assert bridge not in state["links"]


@needs_root
def test_a_bridge_or_subnet_in_use_is_refused(cluster: Cluster) -> None:
    with pytest.raises(PodNetworkError, match="in use"):
        PodNetwork(bridge=BRIDGE, subnet="127.243.0.0/16").start()
    with pytest.raises(PodNetworkError, match="in use"):
        PodNetwork(bridge="opkt3", subnet=SUBNET).start()
    assert "opkt3" not in _state()["links"]


def test_non_root_is_refused_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(PodNetworkUnavailable) as err:
        PodNetwork(bridge="opkt4", subnet="127.244.0.0/16").start()
    assert "needs root" in str(err.value)
    assert "\n" not in str(err.value)
    assert cleanup_leftovers() == []


@pytest.mark.parametrize(
    ("bridge", "subnet", "match"),
    [
        ("br0", None, "must be 'opk'"),
        ("opk-too-long-name", None, "must be 'opk'"),
        ("opk9", "10.0.0.0/16", "inside 127"),
        ("opk9", "127.200.0.0/24", "/16"),
        ("opk9", "127.0.0.0/16", "127.0.0.1"),
    ],
)
def test_invalid_names_and_subnets(bridge: str, subnet: str | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PodNetwork(bridge=bridge, subnet=subnet)
