"""Built-in kinds: defaulting, allocation, status reset, validation and event views."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import models as _models

from opkit.testing.apiserver import _builtins as b
from opkit.testing.apiserver._registry import Registry
from opkit.testing.apiserver._status import APIError
from opkit.testing.apiserver._types import ResourceType

REG = Registry.builtin()

models: Any = _models  # the generated models are typed loosely; treat as dynamic


def rt(group: str, plural: str) -> ResourceType:
    found = REG.lookup(group, "v1", plural)
    assert found is not None
    return found


STS = rt("apps", "statefulsets")
DEPLOY = rt("apps", "deployments")
POD = rt("", "pods")
SVC = rt("", "services")
LEASE = rt("coordination.k8s.io", "leases")
CORE_EVENT = rt("", "events")
NEW_EVENT = rt("events.k8s.io", "events")


def _sts() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": 0.5, "memory": 1024}},
                            "readinessProbe": {"httpGet": {"port": 80}},
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": 1000000000}},
                    },
                }
            ],
        },
    }


# -- Defaults ---------------------------------------------------------------------------


def test_statefulset_defaults() -> None:
    obj = _sts()
    b.apply_defaults(STS, obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["schedulerName"] == "default-scheduler"
    assert pod["securityContext"] == {}
    assert "serviceAccountName" not in pod  # admission defaults only real Pods
    c = pod["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1024"}
    assert c["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1G"
    assert (claim["apiVersion"], claim["kind"], claim["status"]) == (
        "v1",
        "PersistentVolumeClaim",
        {"phase": "Pending"},
    )
    again = copy.deepcopy(obj)
    b.apply_defaults(STS, again)
    assert again == obj  # idempotent
    b.reset_status_on_create(STS, obj)
    parsed = models.V1StatefulSet.from_dict(obj)
    assert parsed is not None and parsed.status.replicas == 0


def test_existing_values_are_kept() -> None:
    obj = _sts()
    obj["spec"].update(
        replicas=0,
        podManagementPolicy="Parallel",
        updateStrategy={"type": "OnDelete"},
    )
    b.apply_defaults(STS, obj)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["podManagementPolicy"] == "Parallel"
    assert obj["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_deployment_defaults() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    b.apply_defaults(DEPLOY, obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    b.reset_status_on_create(DEPLOY, obj)
    assert obj["status"] == {}
    assert models.V1Deployment.from_dict(obj) is not None


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:abcd", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    b.apply_defaults(POD, pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_defaults_and_status() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1",
                    "env": [
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                    ],
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                    "volumeMounts": [{"name": "cfg", "mountPath": "/c"}],
                }
            ],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"name": "scratch"}],
        },
        "status": {"phase": "Running"},
    }
    b.apply_defaults(POD, pod)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert {t["key"] for t in spec["tolerations"]} == {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }
    env = spec["containers"][0]["env"][0]
    assert env["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["containers"][0]["resources"]["limits"]["cpu"] == "1"
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
    assert spec["volumes"][1]["emptyDir"] == {}
    b.reset_status_on_create(POD, pod)
    assert pod["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    assert models.V1Pod.from_dict(pod) is not None
    assert not b.validate(POD, pod)


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "1"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ],
)
def test_qos_class(resources: dict[str, Any], qos: str) -> None:
    pod: dict[str, Any] = {
        "spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]}
    }
    b.reset_status_on_create(POD, pod)
    assert pod["status"]["qosClass"] == qos


def test_small_kind_defaults() -> None:
    secret: dict[str, Any] = {"metadata": {"name": "s"}}
    b.apply_defaults(rt("", "secrets"), secret)
    assert secret["type"] == "Opaque"
    pvc: dict[str, Any] = {
        "metadata": {"name": "c"},
        "spec": {"resources": {"requests": {"storage": 5}}},
    }
    b.apply_defaults(rt("", "persistentvolumeclaims"), pvc)
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5"
    ns: dict[str, Any] = {"metadata": {"name": "team"}}
    b.apply_defaults(rt("", "namespaces"), ns)
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    b.reset_status_on_create(rt("", "namespaces"), ns)
    assert ns["status"] == {"phase": "Active"}
    updated: dict[str, Any] = {"metadata": {"name": "team"}, "spec": {"finalizers": []}}
    b.apply_defaults(rt("", "namespaces"), updated, old=ns)
    assert updated["spec"]["finalizers"] == []  # only create adds the finalizer
    binding: dict[str, Any] = {
        "metadata": {"name": "rb"},
        "subjects": [{"kind": "ServiceAccount", "name": "a"}, {"kind": "User", "name": "u"}],
    }
    b.apply_defaults(rt("rbac.authorization.k8s.io", "rolebindings"), binding)
    assert [s["apiGroup"] for s in binding["subjects"]] == ["", "rbac.authorization.k8s.io"]


@pytest.mark.parametrize(
    ("plural", "group", "status", "model"),
    [
        ("statefulsets", "apps", {"replicas": 0, "availableReplicas": 0}, "V1StatefulSetStatus"),
        ("replicasets", "apps", {"replicas": 0}, "V1ReplicaSetStatus"),
        ("daemonsets", "apps", None, "V1DaemonSetStatus"),
        ("poddisruptionbudgets", "policy", None, "V1PodDisruptionBudgetStatus"),
        ("persistentvolumeclaims", "", {"phase": "Pending"}, "V1PersistentVolumeClaimStatus"),
        ("services", "", {"loadBalancer": {}}, "V1ServiceStatus"),
    ],
)
def test_status_reset_keeps_required_zeros(
    plural: str, group: str, status: dict[str, Any] | None, model: str
) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x"}, "status": {"junk": True}}
    b.reset_status_on_create(rt(group, plural), obj)
    if status is not None:
        assert obj["status"] == status
    assert getattr(models, model).from_dict(obj["status"]) is not None


def test_custom_resource_status_dropped_on_create() -> None:
    cr = ResourceType(
        "example.com", "v1", "widgets", "widget", "Widget", True, is_custom=True, has_status=True
    )
    obj: dict[str, Any] = {"spec": {}, "status": {"x": 1}}
    b.reset_status_on_create(cr, obj)
    assert "status" not in obj
    b.apply_defaults(cr, obj)  # custom resources are defaulted by their schema instead
    assert obj == {"spec": {}}


# -- Quantities and timestamps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1, "1"),
        (0, "0"),
        (0.5, "500m"),
        (1.5, "1500m"),
        (1000, "1k"),
        (1500, "1500"),
        (2000000, "2M"),
        (1024, "1024"),
        (0.1, "100m"),
        (-2, "-2"),
        (1e-10, "1n"),
        (3.0, "3"),
    ],
)
def test_quantity_from_number(number: float, text: str) -> None:
    assert b.quantity_from_number(number) == text


def test_quantities_at_usual_paths() -> None:
    pod: dict[str, Any] = {
        "spec": {
            "overhead": {"cpu": 0.25},
            "initContainers": [
                {"name": "i", "image": "x", "resources": {"limits": {"memory": 64}}}
            ],
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": 2}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": 100}}],
        }
    }
    b.apply_defaults(POD, pod)
    spec = pod["spec"]
    assert spec["overhead"] == {"cpu": "250m"}
    assert spec["initContainers"][0]["resources"]["limits"] == {"memory": "64"}
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "2"}
    assert spec["volumes"][0]["emptyDir"]["sizeLimit"] == "100"
    node: dict[str, Any] = {
        "metadata": {"name": "n"},
        "status": {"capacity": {"cpu": 4, "pods": 110}},
    }
    b.apply_defaults(rt("", "nodes"), node)
    assert node["status"]["allocatable"] == {"cpu": "4", "pods": "110"}


@pytest.mark.parametrize(
    ("given", "time", "micro"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000000Z"),
        ("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000000Z"),
        (
            "2024-01-02T05:04:05.123456789+02:00",
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123456Z",
        ),
        ("2024-01-02T03:04:05.5", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.500000Z"),
        ("2024-01-01T23:30:00-04:30", "2024-01-02T04:00:00Z", "2024-01-02T04:00:00.000000Z"),
    ],
)
def test_time_normalisation(given: str, time: str, micro: str) -> None:
    lease: dict[str, Any] = {
        "metadata": {"name": "l"},
        "spec": {"acquireTime": given, "renewTime": given},
    }
    b.apply_defaults(LEASE, lease)
    assert lease["spec"]["acquireTime"] == micro
    assert lease["spec"]["renewTime"] == micro
    sts = _sts()
    sts["status"] = {"conditions": [{"type": "X", "status": "True", "lastTransitionTime": given}]}
    b.apply_defaults(STS, sts)
    assert sts["status"]["conditions"][0]["lastTransitionTime"] == time


def test_unparsable_time_is_left_for_validation() -> None:
    lease: dict[str, Any] = {"metadata": {"name": "l"}, "spec": {"renewTime": "yesterday"}}
    b.apply_defaults(LEASE, lease)
    assert lease["spec"]["renewTime"] == "yesterday"
    errs = b.validate(LEASE, lease)
    assert [e.field for e in errs] == ["spec.renewTime"]


def test_parse_and_format_time() -> None:
    dt = b.parse_time("2024-01-02T03:04:05.25Z")
    assert dt == datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    assert b.format_time(dt) == "2024-01-02T03:04:05Z"
    assert b.format_micro_time(dt) == "2024-01-02T03:04:05.250000Z"
    assert b.parse_time("2024-02-30T00:00:00Z") is None
    assert b.parse_time("not a time") is None


def test_lease_round_trips_through_client_model() -> None:
    lease: dict[str, Any] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": "default", "resourceVersion": "3"},
        "spec": {
            "holderIdentity": "me",
            "leaseDurationSeconds": 15,
            "acquireTime": "2024-01-02T03:04:05.123+00:00",
            "renewTime": "2024-01-02T03:04:06",
            "leaseTransitions": 0,
        },
    }
    b.apply_defaults(LEASE, lease)
    assert not b.validate(LEASE, lease)
    parsed = models.V1Lease.from_dict(lease)
    assert parsed is not None
    assert parsed.spec.renew_time == datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC)


# -- Services and the allocator (CTRL-5) ------------------------------------------------


def _svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"metadata": {"name": name, "namespace": "default"}, "spec": base}


def test_service_defaults_and_allocation() -> None:
    alloc = b.IPAllocator()
    svc = _svc()
    b.apply_defaults(SVC, svc, ip_alloc=alloc)
    spec = svc["spec"]
    assert spec["clusterIP"] == "10.96.0.1" and spec["clusterIPs"] == ["10.96.0.1"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert "externalTrafficPolicy" not in spec
    assert alloc.in_use("10.96.0.1")
    b.reset_status_on_create(SVC, svc)
    assert models.V1Service.from_dict(svc) is not None
    assert not b.validate(SVC, svc)


def test_headless_and_external_name() -> None:
    alloc = b.IPAllocator()
    headless = _svc(clusterIP="None")
    b.apply_defaults(SVC, headless, ip_alloc=alloc)
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "SingleStack"
    no_selector = _svc(clusterIP="None")
    del no_selector["spec"]["selector"]
    b.apply_defaults(SVC, no_selector, ip_alloc=alloc)
    assert no_selector["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    ext = _svc(type="ExternalName", externalName="example.com", ports=[])
    b.apply_defaults(SVC, ext, ip_alloc=alloc)
    assert "clusterIP" not in ext["spec"] and "ipFamilies" not in ext["spec"]
    assert not b.validate(SVC, ext)
    assert alloc.allocate(dry_run=True) == "10.96.0.1"  # nothing was claimed


def test_node_ports_and_load_balancer() -> None:
    alloc = b.IPAllocator()
    np = _svc(
        type="NodePort",
        ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30500}],
    )
    b.apply_defaults(SVC, np, ip_alloc=alloc)
    assert [p["nodePort"] for p in np["spec"]["ports"]] == [30000, 30500]
    assert np["spec"]["externalTrafficPolicy"] == "Cluster"
    lb = _svc("lb", type="LoadBalancer")
    b.apply_defaults(SVC, lb, ip_alloc=alloc)
    assert lb["spec"]["ports"][0]["nodePort"] == 30001
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    taken = _svc("other", type="NodePort", ports=[{"port": 80, "nodePort": 30500}])
    with pytest.raises(APIError) as info:
        b.apply_defaults(SVC, taken, ip_alloc=alloc)
    assert info.value.code == 422
    assert "spec.ports[0].nodePort: Invalid value: 30500: provided port is already allocated" in (
        info.value.message
    )
    # The failed create gave back the cluster IP it had taken.
    assert not alloc.in_use("10.96.0.3")


def test_requested_cluster_ip() -> None:
    alloc = b.IPAllocator()
    first = _svc("a", clusterIP="10.96.0.50")
    b.apply_defaults(SVC, first, ip_alloc=alloc)
    assert first["spec"]["clusterIPs"] == ["10.96.0.50"]
    again = copy.deepcopy(first)  # the same Service re-admitted: not a conflict
    b.apply_defaults(SVC, again, ip_alloc=alloc)
    clash = _svc("b", clusterIP="10.96.0.50")
    with pytest.raises(APIError, match="provided IP is already allocated"):
        b.apply_defaults(SVC, clash, ip_alloc=alloc)
    outside = _svc("c", clusterIP="192.168.0.1")
    with pytest.raises(APIError, match="not in the valid range"):
        b.apply_defaults(SVC, outside, ip_alloc=alloc)


def test_service_update_keeps_allocations() -> None:
    alloc = b.IPAllocator()
    old = _svc(type="NodePort")
    b.apply_defaults(SVC, old, ip_alloc=alloc)
    new = _svc(type="NodePort")  # a PUT without clusterIP or nodePort
    b.apply_defaults(SVC, new, ip_alloc=alloc, old=old)
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert not b.validate(SVC, new, old)
    changed = copy.deepcopy(new)
    changed["spec"]["clusterIPs"] = ["10.96.0.77"]
    errs = b.validate(SVC, changed, old)
    assert [str(e) for e in errs] == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.77"]: may not change once set'
    ]


def test_dry_run_and_release() -> None:
    alloc = b.IPAllocator()
    dry = _svc()
    b.apply_defaults(SVC, dry, ip_alloc=alloc, dry_run=True)
    assert dry["spec"]["clusterIP"] == "10.96.0.1"
    assert not alloc.in_use("10.96.0.1")
    real = _svc(type="NodePort")
    b.apply_defaults(SVC, real, ip_alloc=alloc)
    assert alloc.in_use("10.96.0.1")
    b.release_allocations(SVC, real, ip_alloc=alloc, keep=real)
    assert alloc.in_use("10.96.0.1")
    b.release_allocations(SVC, real, ip_alloc=alloc)
    assert not alloc.in_use("10.96.0.1")
    assert alloc.reserve_node_port(30000)
    b.release_allocations(POD, real, ip_alloc=alloc)  # not a Service: no-op


def test_ip_allocator() -> None:
    alloc = b.IPAllocator("10.0.0.0/29")  # .1 - .6 usable
    ips = [alloc.allocate() for _ in range(6)]
    assert ips == [f"10.0.0.{i}" for i in range(1, 7)]
    with pytest.raises(RuntimeError):
        alloc.allocate()
    alloc.release("10.0.0.3")
    assert alloc.allocate() == "10.0.0.3"
    assert not alloc.reserve("10.0.0.3")
    assert not alloc.reserve("10.0.0.0")  # network address
    assert not alloc.reserve("10.0.1.1")
    alloc.release("garbage")
    assert alloc.cidr == "10.0.0.0/29"
    assert not alloc.reserve_node_port(80)


# -- Validation -------------------------------------------------------------------------

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def test_name_validation_messages() -> None:
    cm: dict[str, Any] = {"metadata": {"name": "Bad_Name"}}
    errs = b.validate(rt("", "configmaps"), cm)
    assert [str(e) for e in errs] == [f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}']
    long_name: dict[str, Any] = {"metadata": {"name": "a" * 254}}
    msgs = [e.detail for e in b.validate(rt("", "configmaps"), long_name)]
    assert msgs == ["must be no more than 253 characters"]
    ns: dict[str, Any] = {"metadata": {"name": "a.b"}}
    assert [e.detail for e in b.validate(rt("", "namespaces"), ns)] == ["must not contain dots"]
    ns_bad: dict[str, Any] = {"metadata": {"name": "A"}}
    assert b.validate(rt("", "namespaces"), ns_bad)[0].detail == (
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
        "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
        "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )
    svc = _svc("1web")
    assert b.validate(SVC, svc)[0].detail.startswith("a DNS-1035 label must consist")
    role: dict[str, Any] = {"metadata": {"name": "system:controller:x"}}
    assert not b.validate(rt("rbac.authorization.k8s.io", "clusterroles"), role)
    assert (
        b.validate(rt("rbac.authorization.k8s.io", "roles"), {"metadata": {"name": "a/b"}})[
            0
        ].detail
        == "may not contain '/'"
    )
    event: dict[str, Any] = {
        "metadata": {"name": "Pod.ABC", "namespace": "default"},
        "involvedObject": {},
    }
    assert not b.validate(CORE_EVENT, event)  # legacy events keep their names
    cr = ResourceType("example.com", "v1", "widgets", "widget", "Widget", True, is_custom=True)
    assert b.validate(cr, {"metadata": {"name": "UP"}})[0].field == "metadata.name"


def test_label_validation() -> None:
    cm: dict[str, Any] = {
        "metadata": {"name": "c", "labels": {"ok/key": "v", "bad key": "v", "k": "-bad-"}}
    }
    errs = b.validate(rt("", "configmaps"), cm)
    assert [(e.field, e.value) for e in errs] == [
        ("metadata.labels", "bad key"),
        ("metadata.labels", "-bad-"),
    ]
    assert errs[0].detail.startswith("name part must consist of alphanumeric characters")


def test_lease_validation() -> None:
    lease: dict[str, Any] = {
        "metadata": {"name": "l"},
        "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1},
    }
    assert [str(e) for e in b.validate(LEASE, lease)] == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_statefulset_selector_must_match_template() -> None:
    obj = _sts()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    errs = b.validate(STS, obj)
    assert [str(e) for e in errs] == [
        'spec.template.metadata.labels: Invalid value: {"app":"other"}: '
        "`selector` does not match template `labels`"
    ]
    missing = _sts()
    del missing["spec"]["selector"]
    assert [str(e) for e in b.validate(STS, missing)] == ["spec.selector: Required value"]
    empty = _sts()
    empty["spec"]["selector"] = {}
    assert b.validate(STS, empty)[0].detail == "empty selector is invalid for statefulset"


def test_statefulset_update_forbidden_fields() -> None:
    old = _sts()
    b.apply_defaults(STS, old)
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert not b.validate(STS, scaled, old)
    renamed = copy.deepcopy(old)
    renamed["spec"]["serviceName"] = "other"
    errs = b.validate(STS, renamed, old)
    assert [e.reason for e in errs] == ["FieldValueForbidden"]
    assert errs[0].detail.startswith("updates to statefulset spec for fields other than")


def test_deployment_validation() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c"}], "restartPolicy": "Never"},
            },
        },
    }
    errs = b.validate(DEPLOY, obj)
    assert [str(e) for e in errs] == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.template.spec.containers[0].image: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]
    old = copy.deepcopy(obj)
    obj["spec"]["selector"] = {"matchLabels": {"a": "b", "c": "d"}}
    assert "spec.selector" in [e.field for e in b.validate(DEPLOY, obj, old)]


def test_pod_validation() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "c", "image": "x", "ports": [{"containerPort": 70000}]},
                {"name": "c", "volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
            ]
        },
    }
    assert [str(e) for e in b.validate(POD, pod)] == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
        "65535, inclusive",
        'spec.containers[1].name: Duplicate value: "c"',
        "spec.containers[1].image: Required value",
        'spec.containers[1].volumeMounts[0].name: Not found: "missing"',
    ]
    assert [str(e) for e in b.validate(POD, {"metadata": {"name": "p"}})] == [
        "spec.containers: Required value"
    ]


def test_service_validation() -> None:
    svc = _svc(ports=[{"port": 80}, {"port": 0, "name": "b", "protocol": "HTTP"}])
    assert [str(e) for e in b.validate(SVC, svc)] == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ]
    assert [str(e) for e in b.validate(SVC, _svc(ports=[]))] == ["spec.ports: Required value"]
    assert not b.validate(SVC, _svc(ports=[], clusterIP="None"))
    node_port = _svc(ports=[{"port": 80, "nodePort": 30001}])
    assert b.validate(SVC, node_port)[0].reason == "FieldValueForbidden"


def test_configmap_and_secret_validation() -> None:
    cm: dict[str, Any] = {"metadata": {"name": "c"}, "data": {"good.key": "", "bad key": ""}}
    errs = b.validate(rt("", "configmaps"), cm)
    assert [e.field for e in errs] == ["data[bad key]"]
    immutable: dict[str, Any] = {"metadata": {"name": "c"}, "immutable": True, "data": {"a": "1"}}
    changed: dict[str, Any] = {"metadata": {"name": "c"}, "immutable": True, "data": {"a": "2"}}
    assert [e.field for e in b.validate(rt("", "configmaps"), changed, immutable)] == ["data"]
    tls: dict[str, Any] = {
        "metadata": {"name": "t"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": ""},
    }
    assert [str(e) for e in b.validate(rt("", "secrets"), tls)] == ["data[tls.key]: Required value"]
    retyped: dict[str, Any] = {"metadata": {"name": "t"}, "type": "Other"}
    assert [e.field for e in b.validate(rt("", "secrets"), retyped, {"type": "Opaque"})] == ["type"]


# -- Events (EVT-1/2/3) -----------------------------------------------------------------


def _v1_event(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "w.1", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.000001Z",
        "type": "Normal",
        "reason": "Scaled",
        "action": "Scale",
        "note": "scaled",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "regarding": {"kind": "Widget", "name": "w", "namespace": "default"},
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000000Z"},
        "related": {"kind": "Pod", "name": "p"},
    }
    obj.update(extra)
    return obj


def test_event_round_trip() -> None:
    v1 = _v1_event()
    core = b.event_v1_to_core(v1)
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"] == v1["regarding"]
    assert core["message"] == "scaled"
    assert core["reportingComponent"] == "example.com/ctl"
    assert core["firstTimestamp"] is None and core["source"] == {}
    assert models.CoreV1Event.from_dict(core) is not None
    back = b.event_core_to_v1(core)
    assert back == v1
    assert models.EventsV1Event.from_dict(back) is not None


def test_legacy_event_in_new_view() -> None:
    core: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "p.1",
            "namespace": "default",
            "creationTimestamp": "2024-01-02T03:00:00Z",
        },
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "message": "hi",
        "source": {"component": "kubelet"},
        "firstTimestamp": "2024-01-02T03:04:05Z",
        "lastTimestamp": "2024-01-02T03:05:05Z",
        "count": 3,
        "type": "Normal",
    }
    view = b.event_core_to_v1(core)
    assert view["eventTime"] == "2024-01-02T03:04:05.000000Z"  # required by the new API
    assert view["deprecatedCount"] == 3
    assert view["deprecatedSource"] == {"component": "kubelet"}
    assert view["note"] == "hi"
    assert models.EventsV1Event.from_dict(view) is not None
    assert core["message"] == "hi" and "note" not in core  # input untouched


def test_new_event_validation() -> None:
    assert not b.validate(NEW_EVENT, _v1_event())
    bad = _v1_event(type="Bogus", deprecatedCount=2, series={"count": 1})
    del bad["eventTime"]
    del bad["reportingController"]
    assert [str(e) for e in b.validate(NEW_EVENT, bad)] == [
        'series.count: Invalid value: "": should be at least 2',
        "series.lastObservedTime: Required value",
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Bogus',
        'count: Invalid value: "": needs to be unset',
    ]
    old = _v1_event()
    new = _v1_event(note="changed")
    assert [str(e) for e in b.validate(NEW_EVENT, new, old)] == [
        'message: Invalid value: "changed": field is immutable'
    ]
    stored_old = b.event_v1_to_core(old)  # old given in storage form is understood too
    assert [e.field for e in b.validate(NEW_EVENT, new, stored_old)] == ["message"]
    assert not b.validate(NEW_EVENT, _v1_event(), stored_old)


def test_core_event_validation() -> None:
    ok: dict[str, Any] = {
        "metadata": {"name": "e", "namespace": "team"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "team"},
    }
    assert not b.validate(CORE_EVENT, ok)
    mismatch = copy.deepcopy(ok)
    mismatch["involvedObject"]["namespace"] = "other"
    assert [str(e) for e in b.validate(CORE_EVENT, mismatch)] == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]
    new_style = copy.deepcopy(ok)
    new_style["eventTime"] = "2024-01-02T03:04:05.000000Z"
    errs = b.validate(CORE_EVENT, new_style)
    assert [(e.reason, e.field) for e in errs] == [
        ("FieldValueRequired", "reportingController"),
        ("FieldValueInvalid", "reportingController"),
        ("FieldValueInvalid", "reportingController"),
        ("FieldValueRequired", "reportingInstance"),
        ("FieldValueRequired", "action"),
        ("FieldValueRequired", "reason"),
    ]
    cluster_scoped = {
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Node"},
    }
    assert not b.validate(CORE_EVENT, cluster_scoped)


def test_core_event_defaults_match_wire_shape() -> None:
    ev: dict[str, Any] = {"metadata": {"name": "e"}, "eventTime": "2024-01-02T03:04:05+00:00"}
    b.apply_defaults(CORE_EVENT, ev)
    assert ev["involvedObject"] == {} and ev["reportingComponent"] == ""
    assert ev["eventTime"] == "2024-01-02T03:04:05.000000Z"
    assert models.CoreV1Event.from_dict(ev) is not None


# -- Selectors --------------------------------------------------------------------------


def test_label_selector_string_and_scale_selector() -> None:
    sel = {
        "matchLabels": {"tier": "fe", "app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "gone", "operator": "DoesNotExist"},
            {"key": "has", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b", "a"]},
        ],
    }
    assert b.label_selector_string(sel) == (
        "app=web,env in (dev,prod),!gone,has,tier=fe,zone notin (a,b)"
    )
    assert b.label_selector_string({}) == ""
    assert b.label_selector_string(None) == ""
    obj: dict[str, Any] = {
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
        "status": {"selector": "x=y"},
    }
    assert b.scale_selector(obj, ".spec.selector") == "app=web"
    assert b.scale_selector(obj, ".status.selector") == "x=y"
    assert b.scale_selector(obj, ".status.missing") == ""
    assert b.scale_selector(obj, None) == ""


def test_malformed_input_does_not_crash() -> None:
    for target in REG.all():
        for obj in (
            {"metadata": {"name": "x"}, "spec": "oops", "status": 3},
            {"metadata": {"name": "x"}, "spec": {"template": [], "containers": {}, "ports": "x"}},
            {"metadata": "nope"},
        ):
            b.apply_defaults(target, obj, ip_alloc=b.IPAllocator())
            b.validate(target, obj)
            b.validate(target, obj, obj)


def test_crd_schema_untouched_by_defaults() -> None:
    crd: dict[str, Any] = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "versions": [
                {
                    "schema": {
                        "openAPIV3Schema": {
                            "properties": {
                                "requests": {"type": "object", "maxProperties": 5},
                                "lastTimestamp": {
                                    "type": "string",
                                    "default": "2024-01-01T00:00:00+00:00",
                                },
                            }
                        }
                    }
                }
            ]
        },
        "status": {
            "conditions": [
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": "2024-01-02T03:04:05+00:00",
                }
            ]
        },
    }
    spec_before = copy.deepcopy(crd["spec"])
    b.apply_defaults(rt("apiextensions.k8s.io", "customresourcedefinitions"), crd)
    assert crd["spec"] == spec_before
    assert crd["status"]["conditions"][0]["lastTransitionTime"] == "2024-01-02T03:04:05Z"
