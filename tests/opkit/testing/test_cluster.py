"""The embedded cluster with real programs: a 3-member etcd StatefulSet reached by DNS names,
crash and deletion recovery with the same volume, Prometheus scraping etcd by Service name, a
Deployment running ``python -m`` with ``kubectl logs``, and nothing left running afterwards.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opkit.testing._pytest_plugin import Kubectl, make_kube_env
from opkit.testing.cluster import Cluster
from opkit.testing.kubelet._tools import ProgramNotFound, find_program

Obj = dict[str, Any]
NS = "default"


def _installed(name: str, version: str | None = None) -> bool:
    try:
        find_program(name, version)
    except ProgramNotFound:
        return False
    return True


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="pods run as processes only as root"),
    pytest.mark.skipif(not _installed("etcd", "3.5"), reason="etcd 3.5 missing (make tools)"),
]


def etcd_objects(replicas: int = 3, image: str = "quay.io/coreos/etcd:v3.5.17") -> list[Obj]:
    """A headless Service and an etcd StatefulSet whose peers find each other by DNS name."""
    peers = ",".join(
        f"etcd-{i}=http://etcd-{i}.etcd.$(POD_NAMESPACE).svc:2380" for i in range(replicas)
    )
    me = "$(POD_NAME).etcd.$(POD_NAMESPACE).svc"
    container = {
        "name": "etcd",
        "image": image,
        "command": ["/usr/local/bin/etcd"],
        "args": [
            "--name=$(POD_NAME)",
            "--data-dir=/var/lib/etcd",
            "--listen-peer-urls=http://0.0.0.0:2380",
            "--listen-client-urls=http://0.0.0.0:2379",
            f"--advertise-client-urls=http://{me}:2379",
            f"--initial-advertise-peer-urls=http://{me}:2380",
            f"--initial-cluster={peers}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=opkit-test",
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "ports": [
            {"name": "client", "containerPort": 2379},
            {"name": "peer", "containerPort": 2380},
        ],
        "readinessProbe": {"tcpSocket": {"port": "client"}, "periodSeconds": 1},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/etcd"}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "etcd", "namespace": NS},
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": {"app": "etcd"},
                "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "etcd", "namespace": NS},
            "spec": {
                "serviceName": "etcd",
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "etcd"}},
                "template": {
                    "metadata": {"labels": {"app": "etcd"}},
                    "spec": {"terminationGracePeriodSeconds": 10, "containers": [container]},
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
    ]


def _create(cluster: Cluster, *objs: Obj) -> None:
    assert cluster.client is not None
    for obj in objs:
        cluster.client.resource_for_object(obj).create(obj, obj["metadata"].get("namespace"))


def _ready_replicas(cluster: Cluster) -> int:
    assert cluster.client is not None
    sts = cluster.client.resource("apps/v1", "StatefulSet").get("etcd", NS)
    return int((sts.get("status") or {}).get("readyReplicas") or 0)


def _endpoint(i: int) -> str:
    return f"etcd-{i}.etcd.{NS}.svc:2379"


def _etcdctl(cluster: Cluster, i: int, *args: str) -> str:
    res = cluster.run(["etcdctl", "--endpoints", _endpoint(i), "--command-timeout=10s", *args])
    assert res.returncode == 0, f"etcdctl {' '.join(args)} on etcd-{i}: {res.stderr}"
    return str(res.stdout)


def _healthy(cluster: Cluster, i: int) -> bool:
    res = cluster.run(["etcdctl", "--endpoints", _endpoint(i), "endpoint", "health"])
    return res.returncode == 0 and "is healthy" in res.stdout


def _all_healthy(cluster: Cluster) -> None:
    cluster.wait_for(lambda: _ready_replicas(cluster) == 3, 60)
    for i in range(3):
        cluster.wait_for(functools.partial(_healthy, cluster, i), 60)


def _pod(cluster: Cluster, name: str) -> Obj:
    assert cluster.client is not None
    pod: Obj = cluster.client.resource("v1", "Pod").get(name, NS)
    return pod


def _running_pids(cluster: Cluster) -> set[int]:
    """Every process the cluster's kubelets run right now (supervisors, inits, programs)."""
    pids: set[int] = set()
    for kubelet in cluster.kubelets.values():
        for proc in kubelet.registry.live():
            pids.add(proc.pid)
            todo = [proc.pid]
            while todo:
                pid = todo.pop()
                try:
                    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                except OSError:
                    continue
                pids.update(int(c) for c in children)
                todo.extend(int(c) for c in children)
    return pids


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            alive.add(pid)
    return alive


@pytest.fixture(scope="module")
def etcd_cluster() -> Iterator[Cluster]:
    """One cluster with a formed 3-member etcd StatefulSet, shared by the tests of this module
    (each leaves it with three healthy members)."""
    with Cluster(backoff_base=1.0, backoff_max=5.0, stop_grace=5.0) as cluster:
        _create(cluster, *etcd_objects())
        _all_healthy(cluster)
        yield cluster


def test_etcd_statefulset_forms_one_cluster_reachable_by_pod_dns_names(
    etcd_cluster: Cluster,
) -> None:
    cluster = etcd_cluster
    members = _etcdctl(cluster, 0, "member", "list").splitlines()
    assert len(members) == 3 and all(", started, " in m for m in members)
    assert {m.split(", ")[2] for m in members} == {"etcd-0", "etcd-1", "etcd-2"}
    _etcdctl(cluster, 0, "put", "greeting", "hello")
    assert _etcdctl(cluster, 2, "get", "greeting", "--print-value-only").strip() == "hello"
    # The host side resolves the same names (resolver hook), without touching /etc/hosts.
    ip = _pod(cluster, "etcd-1")["status"]["podIP"]
    assert cluster.resolve(f"etcd-1.etcd.{NS}.svc.cluster.local") == [ip]
    assert socket.gethostbyname(f"etcd-1.etcd.{NS}.svc") == ip
    assert "etcd-1.etcd" not in Path("/etc/hosts").read_text()
    with urllib.request.urlopen(f"http://etcd-1.etcd.{NS}.svc:2379/health", timeout=10) as r:
        assert json.load(r)["health"] == "true"


def test_a_killed_member_is_restarted_with_its_data_and_rejoins(etcd_cluster: Cluster) -> None:
    cluster = etcd_cluster
    _etcdctl(cluster, 0, "put", "before-crash", "kept")
    uid = _pod(cluster, "etcd-1")["metadata"]["uid"]
    restarts = _pod(cluster, "etcd-1")["status"]["containerStatuses"][0]["restartCount"]
    (etcd_pid, *_rest) = cluster.wait_for(lambda: cluster.pod_pids(NS, "etcd-1"), 10)
    os.kill(etcd_pid, 9)  # kill -9 of the member's process

    def restarted() -> Obj | None:
        pod = _pod(cluster, "etcd-1")
        status = pod["status"]["containerStatuses"][0]
        return pod if status["restartCount"] == restarts + 1 and status["ready"] else None

    pod = cluster.wait_for(restarted, 30)
    assert pod["metadata"]["uid"] == uid  # the same pod, its container restarted
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137
    cluster.wait_for(lambda: _healthy(cluster, 1), 30)
    assert _etcdctl(cluster, 1, "get", "before-crash", "--print-value-only").strip() == "kept"
    _etcdctl(cluster, 1, "put", "after-crash", "written-on-1")
    assert _etcdctl(cluster, 0, "get", "after-crash", "--print-value-only").strip() == (
        "written-on-1"
    )


def test_a_deleted_member_stops_gracefully_and_comes_back_with_its_claim(
    etcd_cluster: Cluster,
) -> None:
    cluster = etcd_cluster
    assert cluster.client is not None
    old = _pod(cluster, "etcd-2")
    claim = cluster.client.resource("v1", "PersistentVolumeClaim").get("data-etcd-2", NS)
    _etcdctl(cluster, 0, "put", "before-delete", "kept")
    cluster.client.resource("v1", "Pod").delete("etcd-2", NS)

    def replaced() -> Obj | None:
        pod = _pod(cluster, "etcd-2")
        fresh = pod["metadata"]["uid"] != old["metadata"]["uid"]
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
        )
        return pod if fresh and ready else None

    new = cluster.wait_for(replaced, 60)
    ended = [f for f in cluster.kubelet().finished if f["uid"] == old["metadata"]["uid"]]
    # Ended by the SIGTERM it re-raises after its clean shutdown, not by SIGKILL (137).
    assert [f["exitCode"] for f in ended] == [143]
    volumes = {v["name"]: v for v in new["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "data-etcd-2"
    same = cluster.client.resource("v1", "PersistentVolumeClaim").get("data-etcd-2", NS)
    assert same["metadata"]["uid"] == claim["metadata"]["uid"]
    cluster.wait_for(lambda: _healthy(cluster, 2), 30)
    assert _etcdctl(cluster, 2, "get", "before-delete", "--print-value-only").strip() == "kept"
    members = _etcdctl(cluster, 0, "member", "list").splitlines()
    assert len(members) == 3  # it rejoined as itself, from its own data


@pytest.mark.skipif(not _installed("prometheus"), reason="prometheus missing (make tools)")
def test_prometheus_scrapes_etcd_by_service_name(etcd_cluster: Cluster) -> None:
    cluster = etcd_cluster
    config = textwrap.dedent(
        """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: etcd
            static_configs:
              - targets: ["etcd-client:2379"]
        """
    )
    _create(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "etcd-client", "namespace": NS},
            "spec": {"selector": {"app": "etcd"}, "ports": [{"name": "client", "port": 2379}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "prometheus", "namespace": NS},
            "data": {"prometheus.yml": config},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "prometheus", "namespace": NS},
            "spec": {
                "containers": [
                    {
                        "name": "prometheus",
                        "image": "prom/prometheus:v2.42.0",
                        "readinessProbe": {
                            "httpGet": {"path": "/-/ready", "port": 9090},
                            "periodSeconds": 1,
                        },
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"}],
                    }
                ],
                "volumes": [{"name": "config", "configMap": {"name": "prometheus"}}],
            },
        },
    )

    def targets() -> list[Obj] | None:
        ip = _pod(cluster, "prometheus")["status"].get("podIP")
        if not ip:
            return None
        url = f"http://{ip}:9090/api/v1/targets"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                active: list[Obj] = json.load(resp)["data"]["activeTargets"]
        except OSError:
            return None  # not listening yet
        return active if active and all(t["health"] == "up" for t in active) else None

    active = cluster.wait_for(targets, 60)
    assert [t["labels"]["instance"] for t in active] == ["etcd-client:2379"]
    assert active[0]["scrapeUrl"] == "http://etcd-client:2379/metrics"


def test_a_python_deployment_becomes_available_and_kubectl_shows_its_logs(
    tmp_path: Path,
) -> None:
    module = tmp_path / "tinyapp.py"
    module.write_text(
        textwrap.dedent(
            """
            import http.server
            print("tinyapp is up", flush=True)

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"hi")

                def log_message(self, *args):
                    pass

            http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
            """
        )
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "tiny", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "tiny"}},
            "template": {
                "metadata": {"labels": {"app": "tiny"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "python",
                            "args": ["-m", "tinyapp"],
                            "env": [{"name": "PYTHONPATH", "value": str(tmp_path)}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8080},
                                "periodSeconds": 1,
                            },
                        }
                    ]
                },
            },
        },
    }
    with Cluster(stop_grace=2.0) as cluster:
        kubectl = Kubectl(
            make_kube_env(cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "home")
        )
        _create(cluster, deployment)
        kubectl("wait", "--for=condition=Available", "deployment/tiny", "--timeout=60s")
        pods = json.loads(kubectl("get", "pods", "-l", "app=tiny", "-o", "json").stdout)["items"]
        assert len(pods) == 2
        for pod in pods:
            assert kubectl("logs", pod["metadata"]["name"]).stdout == "tinyapp is up\n"
        assert kubectl("logs", "deployment/tiny").stdout == "tinyapp is up\n"
        pids = _running_pids(cluster)
        assert len(pids) >= 6  # two pods: supervisor, init and python each
    assert not _alive(pids)


def test_stopping_the_cluster_leaves_no_process_namespace_or_directory() -> None:
    cluster = Cluster(stop_grace=5.0).start()
    try:
        _create(cluster, *etcd_objects(replicas=1))
        cluster.wait_for(lambda: _ready_replicas(cluster) == 1, 60)
        pids = _running_pids(cluster)
        assert cluster.network is not None and cluster.data_dir is not None
        bridge, data_dir = cluster.network.bridge, cluster.data_dir
        netns = {p.netns for p in cluster.network.pods()}
        assert netns and all(Path(f"/run/netns/{n}").exists() for n in netns)
    finally:
        cluster.stop()
    assert pids and not _alive(pids)
    # ... and the process table agrees: no etcd and no pod wrapper of this cluster remains
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert str(data_dir).encode() not in cmdline, cmdline
    assert not any(Path(f"/run/netns/{n}").exists() for n in netns)
    assert not Path(f"/sys/class/net/{bridge}").exists()
    assert not data_dir.exists()
