"""Cluster names: records from cluster state, hosts files, the resolver hook, private /etc/hosts."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from opkit.testing.kubelet._hosts import (
    HostRecord,
    cluster_records,
    hosts_table,
    hosts_text,
    install_resolver,
    parse_hosts,
    resolv_conf_text,
    run_with_cluster_dns,
    write_hosts_file,
)


def _pod(
    name: str,
    ip: str | None,
    *,
    ns: str = "db",
    labels: dict[str, str] | None = None,
    ready: bool = True,
    hostname: str | None = None,
    subdomain: str | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": spec,
        "status": status,
    }


def _svc(name: str, *, ns: str = "db", headless: bool = False, **spec: Any) -> dict[str, Any]:
    spec.setdefault("clusterIP", "None" if headless else "10.96.0.10")
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def _endpoints(name: str, addresses: list[dict[str, Any]], ns: str = "db") -> dict[str, Any]:
    return {
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns},
        "subsets": [{"addresses": addresses, "ports": [{"port": 2379}]}],
    }


def _names(records: list[HostRecord]) -> dict[str, tuple[str, ...]]:
    return {r.names[0]: r.ips for r in records}


def test_cluster_ip_service_maps_to_ready_endpoint_pod_ips_not_the_fake_vip() -> None:
    recs = cluster_records(
        [_svc("client")],
        [],
        [_endpoints("client", [{"ip": "127.200.0.9"}, {"ip": "127.200.0.3"}])],
    )
    assert recs == [
        HostRecord(
            namespace="db",
            names=("client.db.svc.cluster.local", "client.db.svc", "client.db"),
            ips=("127.200.0.3", "127.200.0.9"),
            short=("client",),
        )
    ]


def test_headless_service_publishes_pod_hostnames() -> None:
    pods = [
        _pod("etcd-0", "127.200.0.5", hostname="etcd-0", subdomain="etcd"),
        _pod("etcd-1", "127.200.0.6", hostname="etcd-1", subdomain="etcd"),
    ]
    # The endpoints carry hostnames for one pod only; the other comes from its pod spec.
    eps = [_endpoints("etcd", [{"ip": "127.200.0.5", "hostname": "etcd-0"}, {"ip": "127.200.0.6"}])]
    recs = _names(cluster_records([_svc("etcd", headless=True)], pods, eps))
    assert recs == {
        "etcd.db.svc.cluster.local": ("127.200.0.5", "127.200.0.6"),
        "etcd-0.etcd.db.svc.cluster.local": ("127.200.0.5",),
        "etcd-1.etcd.db.svc.cluster.local": ("127.200.0.6",),
    }


def test_endpoint_slices_skip_not_ready_endpoints() -> None:
    slice_ = {
        "kind": "EndpointSlice",
        "metadata": {
            "name": "etcd-abc",
            "namespace": "db",
            "labels": {"kubernetes.io/service-name": "etcd"},
        },
        "endpoints": [
            {"addresses": ["127.200.0.5"], "conditions": {"ready": True}, "hostname": "etcd-0"},
            {"addresses": ["127.200.0.6"], "conditions": {"ready": False}, "hostname": "etcd-1"},
            {"addresses": ["127.200.0.7"], "conditions": {}},
        ],
    }
    recs = _names(cluster_records([_svc("etcd", headless=True)], [], [slice_]))
    assert recs == {
        "etcd.db.svc.cluster.local": ("127.200.0.5", "127.200.0.7"),
        "etcd-0.etcd.db.svc.cluster.local": ("127.200.0.5",),
    }


def test_without_endpoints_the_selector_picks_ready_pods() -> None:
    pods = [
        _pod("a", "127.200.0.2", labels={"app": "etcd"}, hostname="a", subdomain="etcd"),
        _pod(
            "b", "127.200.0.3", labels={"app": "etcd"}, ready=False, hostname="b", subdomain="etcd"
        ),
        _pod("c", "127.200.0.4", labels={"app": "other"}),
        _pod("d", "127.200.0.8", labels={"app": "etcd"}, ns="elsewhere"),
        _pod("e", None, labels={"app": "etcd"}),
        _pod("f", "127.200.0.9", labels={"app": "etcd"}, phase="Failed"),
    ]
    strict = _names(cluster_records([_svc("etcd", headless=True, selector={"app": "etcd"})], pods))
    assert strict == {
        "etcd.db.svc.cluster.local": ("127.200.0.2",),
        "a.etcd.db.svc.cluster.local": ("127.200.0.2",),
    }
    publish = _svc("etcd", headless=True, selector={"app": "etcd"}, publishNotReadyAddresses=True)
    assert _names(cluster_records([publish], pods)) == {
        "etcd.db.svc.cluster.local": ("127.200.0.2", "127.200.0.3"),
        "a.etcd.db.svc.cluster.local": ("127.200.0.2",),
        "b.etcd.db.svc.cluster.local": ("127.200.0.3",),
    }


def test_services_without_backends_and_external_names_do_not_resolve() -> None:
    services = [
        _svc("empty", selector={"app": "none"}),
        _svc("ext", type="ExternalName", externalName="example.invalid"),
    ]
    assert cluster_records(services, [_pod("p", "127.200.0.2")]) == []


def test_hosts_text_adds_short_names_only_for_the_pods_namespace() -> None:
    recs = cluster_records(
        [_svc("etcd", headless=True), _svc("web", ns="front")],
        [_pod("etcd-0", "127.200.0.5", hostname="etcd-0", subdomain="etcd")],
        [
            _endpoints("etcd", [{"ip": "127.200.0.5"}]),
            _endpoints("web", [{"ip": "127.200.0.9"}], "front"),
        ],
    )
    me = _pod("etcd-0", "127.200.0.5", hostname="etcd-0", subdomain="etcd")
    text = hosts_text(recs, pod=me)
    table = parse_hosts(text)
    assert table["localhost"] == ["127.0.0.1", "::1"]
    assert table["etcd-0"] == ["127.200.0.5"]  # the pod's own entry, as the kubelet writes it
    assert table["etcd"] == ["127.200.0.5"]
    assert table["etcd-0.etcd"] == ["127.200.0.5"]
    assert table["web.front"] == ["127.200.0.9"]
    assert table["web.front.svc.cluster.local"] == ["127.200.0.9"]
    assert "web" not in table  # another namespace's short name would need a search domain

    host_side = hosts_table(recs)
    assert host_side["etcd-0.etcd.db.svc"] == ["127.200.0.5"]
    assert "etcd" not in host_side
    assert hosts_table(recs, namespace="front")["web"] == ["127.200.0.9"]


def test_resolv_conf_has_the_cluster_search_path() -> None:
    text = resolv_conf_text("db")
    assert "search db.svc.cluster.local svc.cluster.local cluster.local\n" in text
    assert "nameserver 127.0.0.1\n" in text


def test_write_hosts_file_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write_hosts_file(path, "127.200.0.2\ta-long-name.example\n")
    inode = path.stat().st_ino
    write_hosts_file(path, "127.200.0.3\tb\n")
    assert path.read_text() == "127.200.0.3\tb\n"
    assert path.stat().st_ino == inode


# --- host-side resolver hook -------------------------------------------------------------------


def test_resolver_hook_maps_cluster_names_and_uninstall_restores() -> None:
    originals = (socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex)
    table = {"etcd-0.etcd.db.svc": ["127.200.0.5"], "multi.db.svc": ["127.200.0.2", "127.200.0.3"]}
    hook = install_resolver(table.get)
    try:
        infos = socket.getaddrinfo("ETCD-0.etcd.db.svc.", 2379, type=socket.SOCK_STREAM)
        assert {ai[4] for ai in infos} == {("127.200.0.5", 2379)}
        assert socket.gethostbyname("etcd-0.etcd.db.svc") == "127.200.0.5"
        assert socket.gethostbyname_ex("multi.db.svc")[2] == ["127.200.0.2", "127.200.0.3"]
        multi = socket.getaddrinfo("multi.db.svc", 80, socket.AF_INET, socket.SOCK_STREAM)
        assert [ai[4][0] for ai in multi] == ["127.200.0.2", "127.200.0.3"]
        canon = socket.getaddrinfo(
            "multi.db.svc", 80, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME
        )
        assert canon[0][3] == "multi.db.svc"
        with pytest.raises(socket.gaierror):  # an IPv4 answer to an IPv6-only question
            socket.getaddrinfo("etcd-0.etcd.db.svc", 1, socket.AF_INET6)
        # Names the hook does not know fall through to the system resolver.
        assert socket.gethostbyname("localhost") in ("127.0.0.1", "127.0.1.1")
        assert socket.getaddrinfo("127.0.0.1", 1, socket.AF_INET)[0][4] == ("127.0.0.1", 1)
    finally:
        hook.uninstall()
    assert (socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex) == originals


def test_resolver_hooks_nest_and_connect_works_through_them() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        with (
            install_resolver({"outer.svc": "127.0.0.2"}.get),
            install_resolver({"api.default.svc": "127.0.0.1", "outer.svc": "127.0.0.1"}.get),
        ):
            with socket.create_connection(("api.default.svc", port), timeout=5):
                conn, _ = server.accept()
                conn.close()
            assert socket.gethostbyname("outer.svc") == "127.0.0.1"  # latest hook first
    finally:
        server.close()


def test_resolver_hook_is_thread_safe() -> None:
    original = socket.getaddrinfo
    errors: list[BaseException] = []

    def churn(i: int) -> None:
        try:
            for _ in range(50):
                with install_resolver({f"t{i}.svc": "127.0.0.1"}.get):
                    assert socket.gethostbyname(f"t{i}.svc") == "127.0.0.1"
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert socket.getaddrinfo is original


# --- private /etc/hosts for subprocesses -------------------------------------------------------


def _userns_or_root() -> bool:
    if os.geteuid() == 0:
        return True
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _userns_or_root(), reason="needs root or user namespaces")
def test_run_with_cluster_dns_sees_the_private_mapping_and_host_file_is_untouched() -> None:
    before = Path("/etc/hosts").read_bytes()
    text = "127.200.0.7\tetcd-0.etcd.db.svc.cluster.local etcd-0.etcd.db.svc\n"
    res = run_with_cluster_dns(["getent", "hosts", "etcd-0.etcd.db.svc"], text, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [
        "127.200.0.7",
        "etcd-0.etcd.db.svc.cluster.local",
        "etcd-0.etcd.db.svc",
    ]
    # The host's own entries stay visible by default.
    res = run_with_cluster_dns(["getent", "hosts", "localhost"], text, timeout=30)
    assert res.returncode == 0
    assert Path("/etc/hosts").read_bytes() == before
    outside = run_with_cluster_dns(["true"], "", include_host_entries=False, timeout=30)
    assert outside.returncode == 0
    assert Path("/etc/hosts").read_bytes() == before
