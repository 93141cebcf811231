"""Embedded cluster benchmark: a 3-member etcd StatefulSet from creation to all Ready.

Run alone with ``python bench/cluster.py [--write] [--runs N]`` (root: pods are processes).

Each run starts a fresh :class:`opkit.testing.cluster.Cluster`, creates a headless Service and
an etcd 3.5 StatefulSet (``OrderedReady``, one PVC per member, peers found by DNS name, a
``tcpSocket`` readiness probe every second), and times from the StatefulSet's creation until
its status reports 3 ready replicas; then it checks that the three members formed one cluster
(``etcdctl member list`` through the cluster's names). Also reported: when each pod turned
Ready, the cluster's own start time, and one pod (``busybox``, no probe) from creation to Ready.
Medians of ``--runs`` runs (default 3). The target is under 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import _common as c

sys.path.insert(0, str(c.ROOT))

from opkit.testing.cluster import Cluster

HEADING = "## Embedded cluster"
TARGET = 15.0
Obj = dict[str, Any]


def etcd_objects(image: str = "quay.io/coreos/etcd:v3.5.17") -> list[Obj]:
    peers = ",".join(f"etcd-{i}=http://etcd-{i}.etcd.$(POD_NAMESPACE).svc:2380" for i in range(3))
    me = "$(POD_NAME).etcd.$(POD_NAMESPACE).svc"
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
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
        ],
        "env": env,
        "ports": [{"name": "client", "containerPort": 2379}],
        "readinessProbe": {"tcpSocket": {"port": "client"}, "periodSeconds": 1},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/etcd"}],
    }
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "etcd", "namespace": "default"},
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
            "metadata": {"name": "etcd", "namespace": "default"},
            "spec": {
                "serviceName": "etcd",
                "replicas": 3,
                "selector": {"matchLabels": {"app": "etcd"}},
                "template": {
                    "metadata": {"labels": {"app": "etcd"}},
                    "spec": {"containers": [container]},
                },
                "volumeClaimTemplates": [claim],
            },
        },
    ]


def _ready(pod: Obj) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (pod.get("status") or {}).get("conditions") or ()
    )


def one_run() -> dict[str, Any]:
    t0 = time.perf_counter()
    with Cluster() as cluster:
        started = time.perf_counter() - t0
        assert cluster.client is not None
        pods = cluster.client.resource("v1", "Pod")
        sets = cluster.client.resource("apps/v1", "StatefulSet")

        t1 = time.perf_counter()
        busybox = {"name": "c", "image": "busybox", "command": ["sleep", "60"]}
        pods.create(
            {"metadata": {"name": "probe-pod"}, "spec": {"containers": [busybox]}}, "default"
        )
        if not c.wait_until(lambda: _ready(pods.get("probe-pod", "default")), 30, 0.005):
            raise RuntimeError("a single pod did not become Ready in 30 s")
        single = time.perf_counter() - t1

        service, statefulset = etcd_objects()
        cluster.client.resource("v1", "Service").create(service, "default")
        ready_at: dict[str, float] = {}
        t2 = time.perf_counter()
        sets.create(statefulset, "default")

        def all_ready() -> bool:
            now = time.perf_counter() - t2
            for pod in pods.list("default", label_selector="app=etcd")["items"]:
                if _ready(pod):
                    ready_at.setdefault(pod["metadata"]["name"], now)
            status = sets.get("etcd", "default").get("status") or {}
            return int(status.get("readyReplicas") or 0) == 3

        if not c.wait_until(all_ready, 120, 0.01):
            raise RuntimeError("the etcd StatefulSet did not become Ready in 120 s")
        elapsed = time.perf_counter() - t2
        members = cluster.run(
            ["etcdctl", "--endpoints", "etcd-0.etcd.default.svc:2379", "member", "list"]
        )
        formed = members.returncode == 0 and members.stdout.count(", started, ") == 3
    return {
        "start": started,
        "single": single,
        "etcd": elapsed,
        "pods": [ready_at.get(f"etcd-{i}", elapsed) for i in range(3)],
        "formed": formed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/cluster.py: skipped, pods run as processes only as root", file=sys.stderr)
        return 0
    runs = []
    for i in range(args.runs):
        result = one_run()
        runs.append(result)
        print(
            f"run {i + 1}: etcd StatefulSet all Ready in {result['etcd']:.2f} s "
            f"(pods at {', '.join(f'{t:.2f}' for t in result['pods'])} s), "
            f"formed={result['formed']}, one pod {result['single']:.2f} s, "
            f"cluster start {result['start']:.2f} s",
            flush=True,
        )
    etcd = c.median([r["etcd"] for r in runs])
    pod_ready = [c.median([r["pods"][i] for r in runs]) for i in range(3)]
    formed = "yes" if all(r["formed"] for r in runs) else "**no**"
    section = f"""{HEADING}

`bench/cluster.py`: a 3-member etcd 3.5 StatefulSet (`OrderedReady`, a PVC per member, peers
by DNS name, `tcpSocket` readiness probe every 1 s) on a fresh `opkit.testing.cluster.Cluster`
with the local kubelet, from the StatefulSet's creation until `readyReplicas == 3`. Medians of
{len(runs)} runs.

| measurement | median | runs |
| --- | --- | --- |
| etcd StatefulSet, 3 members all Ready | {etcd:.2f} s | {", ".join(f"{r['etcd']:.2f}" for r in runs)} |
| etcd-0 / etcd-1 / etcd-2 Ready after | {" / ".join(f"{t:.2f}" for t in pod_ready)} s | |
| one pod (`busybox`, no probe), create to Ready | {c.median([r["single"] for r in runs]):.2f} s | {", ".join(f"{r['single']:.2f}" for r in runs)} |
| cluster start (network, API server, TLS, controllers) | {c.median([r["start"] for r in runs]):.2f} s | {", ".join(f"{r['start']:.2f}" for r in runs)} |

- Target, all Ready in under {TARGET:.0f} s on 2 cores: {c.verdict(etcd < TARGET)}.
- The three members formed one etcd cluster in every run: {formed}.
- With `OrderedReady` a member is created only once the previous one is Ready, so the time is
  three pod starts in a row, each mostly waiting for its second readiness check (the first one
  runs as the container starts, before etcd listens; the next comes one period later).

{c.machine_line()}
"""  # noqa: E501
    print(section)
    if args.write:
        c.write_section(c.DOCS, section, HEADING)
    return 0 if etcd < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
