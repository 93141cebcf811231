"""kubectl against the embedded server: built-in workloads, apply/patch flavours, output commands.

Covers the HAR-3 smoke matrix for built-in kinds: client-side apply (strategic merge
patch computed by kubectl), server-side apply with conflicts, patch types, scale, replace,
diff (dry run), label/annotate, describe/events/logs, the protobuf 415 path and rollout
status.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from _server_fixtures import core
from kubernetes import client

from opkit.testing import APIServer
from opkit.testing._pytest_plugin import Kubectl

pytestmark = pytest.mark.e2e

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx:1.25",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}],
                        "ports": [{"containerPort": 80}],
                    },
                    {"name": "side", "image": "busybox:1"},
                ]
            },
        },
    },
}

STATEFULSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "db"},
    "spec": {
        "serviceName": "db",
        "replicas": 1,
        "selector": {"matchLabels": {"app": "db"}},
        "template": {
            "metadata": {"labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c", "image": "postgres:16"}]},
        },
    },
}


def apply(kubectl: Kubectl, doc: dict[str, Any], *extra: str) -> str:
    return kubectl("apply", "-f", "-", *extra, input=yaml.safe_dump(doc)).stdout.strip()


def get_json(kubectl: Kubectl, *what: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(kubectl("get", *what, "-o", "json").stdout)
    return obj


def logged(
    apiserver: APIServer, ready: Callable[[list[tuple[str, str, str, int]]], bool]
) -> list[tuple[str, str, str, int]]:
    """The request log once ``ready`` holds (entries land just after responses are sent)."""
    deadline = time.monotonic() + 10
    log = apiserver.request_log
    while not ready(log) and time.monotonic() < deadline:
        time.sleep(0.01)
        log = apiserver.request_log
    return log


def containers(dep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}


def test_apply_updates_deployment_without_losing_fields(
    kubectl: Kubectl, apiserver: APIServer
) -> None:
    assert apply(kubectl, DEPLOYMENT) == "deployment.apps/web created"
    first = get_json(kubectl, "deployment", "web")
    # server-side defaults (CTRL-11)
    assert first["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert first["spec"]["revisionHistoryLimit"] == 10
    assert first["spec"]["progressDeadlineSeconds"] == 600
    c = containers(first)["c"]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # a field written by someone else, not in the manifest
    kubectl("annotate", "deployment", "web", "team=blue")

    changed = copy.deepcopy(DEPLOYMENT)
    main = changed["spec"]["template"]["spec"]["containers"][0]
    main["image"] = "nginx:1.26"
    main["env"][0]["value"] = "2"
    apiserver.clear_request_log()
    assert apply(kubectl, changed) == "deployment.apps/web configured"

    def by_apply(log: list[tuple[str, str, str, int]]) -> list[str]:
        return [r[0] for r in log if "fieldManager=kubectl-client-side-apply" in r[2]]

    # one strategic merge patch, no replace (PATCH-4)
    assert by_apply(logged(apiserver, lambda log: bool(by_apply(log)))) == ["PATCH"]

    second = get_json(kubectl, "deployment", "web")
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["generation"] == 2
    assert second["metadata"]["annotations"]["team"] == "blue"
    got = containers(second)
    assert list(got) == ["c", "side"]  # merged by name, not replaced (PATCH-4)
    assert got["c"]["image"] == "nginx:1.26"
    assert got["c"]["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "x"}]
    assert got["c"]["imagePullPolicy"] == "IfNotPresent"
    assert got["c"]["terminationMessagePath"] == "/dev/termination-log"
    assert got["c"]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert got["side"]["image"] == "busybox:1"
    assert second["spec"]["strategy"] == first["spec"]["strategy"]
    assert second["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"

    # dropping entries from the manifest deletes them ($patch: delete directives)
    trimmed = copy.deepcopy(changed)
    trimmed["spec"]["template"]["spec"]["containers"] = [
        {**main, "env": [{"name": "A", "value": "2"}]}
    ]
    apply(kubectl, trimmed)
    third = get_json(kubectl, "deployment", "web")
    assert list(containers(third)) == ["c"]
    assert containers(third)["c"]["env"] == [{"name": "A", "value": "2"}]
    assert third["metadata"]["annotations"]["team"] == "blue"

    # re-applying the same manifest is a no-op: no new revision (META-9)
    rv = third["metadata"]["resourceVersion"]
    assert apply(kubectl, trimmed) == "deployment.apps/web unchanged"
    assert get_json(kubectl, "deployment", "web")["metadata"]["resourceVersion"] == rv


def test_patch_types_on_deployment(kubectl: Kubectl) -> None:
    apply(kubectl, DEPLOYMENT)
    smp = '{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}'
    out = kubectl("patch", "deployment", "web", "-p", smp).stdout
    assert out.strip() == "deployment.apps/web patched"
    dep = get_json(kubectl, "deployment", "web")
    assert containers(dep)["c"]["image"] == "nginx:2"
    assert containers(dep)["c"]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x"},
    ]
    assert "side" in containers(dep)

    # strategic delete directive on a merge-keyed list
    delete_side = (
        '{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}'
    )
    kubectl("patch", "deployment", "web", "--type=strategic", "-p", delete_side)
    assert list(containers(get_json(kubectl, "deployment", "web"))) == ["c"]

    jp = json.dumps(
        [
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/labels/x~1y", "value": "z"},
        ]
    )
    kubectl("patch", "deployment", "web", "--type=json", "-p", jp)
    dep = get_json(kubectl, "deployment", "web")
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["labels"]["x/y"] == "z"

    # a JSON merge patch replaces lists whole (PATCH-3)
    merge = '{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"alpine"}]}}}}'
    kubectl("patch", "deployment", "web", "--type=merge", "-p", merge)
    got = containers(get_json(kubectl, "deployment", "web"))
    assert list(got) == ["only"]
    assert got["only"]["imagePullPolicy"] == "Always"  # defaults run after every patch

    # an invalid result is rejected as a whole (PATCH-5)
    bad = kubectl(
        "patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"replicas":-1}}', check=False
    )
    assert bad.returncode == 1
    assert 'The Deployment "web" is invalid' in bad.stderr and "spec.replicas" in bad.stderr


def test_scale_statefulset_and_deployment(kubectl: Kubectl, apiserver: APIServer) -> None:
    apply(kubectl, STATEFULSET)
    apply(kubectl, DEPLOYMENT)
    apiserver.clear_request_log()
    assert kubectl("scale", "sts", "db", "--replicas=3").stdout.strip() == (
        "statefulset.apps/db scaled"
    )
    scale = ("PATCH", "/apis/apps/v1/namespaces/default/statefulsets/db/scale")
    log = logged(apiserver, lambda log: scale in [(m, p) for m, p, _, _ in log])
    assert scale in [(m, p) for m, p, _, _ in log]
    sts = get_json(kubectl, "sts", "db")
    assert sts["spec"]["replicas"] == 3 and sts["metadata"]["generation"] == 2
    kubectl("scale", "deployment", "web", "--replicas=0")
    assert get_json(kubectl, "deployment", "web")["spec"]["replicas"] == 0


def test_server_side_apply_conflicts_and_force(kubectl: Kubectl) -> None:
    def cm(**data: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data}

    assert apply(kubectl, cm(a="1", b="2"), "--server-side") == "configmap/ssa serverside-applied"
    live = get_json(kubectl, "cm", "ssa", "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]}
    assert managers == {("kubectl", "Apply")}

    apply(kubectl, cm(a="10", b="2"), "--server-side")
    assert get_json(kubectl, "cm", "ssa")["data"] == {"a": "10", "b": "2"}

    # another manager setting a different value conflicts (SSA-3)
    conflict = kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "-",
        input=yaml.safe_dump(cm(a="99")),
        check=False,
    )
    assert conflict.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl"' in conflict.stderr
    assert ".data.a" in conflict.stderr
    assert get_json(kubectl, "cm", "ssa")["data"] == {"a": "10", "b": "2"}

    # agreeing on a value is no conflict; a new field gets a co-owner
    apply(kubectl, cm(a="10", c="3"), "--server-side", "--field-manager=other")

    forced = apply(
        kubectl, cm(a="99"), "--server-side", "--field-manager=other", "--force-conflicts"
    )
    assert forced == "configmap/ssa serverside-applied"
    assert get_json(kubectl, "cm", "ssa")["data"] == {"a": "99", "b": "2"}

    # kubectl stops applying b: it goes; a now belongs to "other" and stays
    apply(kubectl, cm(), "--server-side")
    live = get_json(kubectl, "cm", "ssa", "--show-managed-fields")
    assert live["data"] == {"a": "99"}
    owners = {m["manager"]: m["fieldsV1"] for m in live["metadata"]["managedFields"]}
    assert owners["other"] == {"f:data": {"f:a": {}}}


def test_client_side_apply_migrates_to_server_side(kubectl: Kubectl) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "mig"},
        "data": {"a": "1", "b": "2"},
    }
    apply(kubectl, doc)
    live = get_json(kubectl, "cm", "mig", "--show-managed-fields")
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == [
        "kubectl-client-side-apply"
    ]
    # kubectl moves the client-side-apply ownership over with a JSON patch (SSA-5)
    assert apply(kubectl, doc, "--server-side") == "configmap/mig serverside-applied"
    live = get_json(kubectl, "cm", "mig", "--show-managed-fields")
    managers = {m["manager"]: m for m in live["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers
    assert managers["kubectl"]["fieldsV1"]["f:data"] == {"f:a": {}, "f:b": {}}
    # so dropping a key from the manifest now removes it
    apply(kubectl, {**doc, "data": {"a": "1", "c": "3"}}, "--server-side")
    assert get_json(kubectl, "cm", "mig")["data"] == {"a": "1", "c": "3"}


def test_server_side_apply_deployment_merges_containers(kubectl: Kubectl) -> None:
    assert apply(kubectl, DEPLOYMENT, "--server-side") == "deployment.apps/web serverside-applied"
    partial = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "side", "image": "busybox:2"}]},
            },
        },
    }
    apply(
        kubectl, partial, "--server-side", "--field-manager=sidecar-injector", "--force-conflicts"
    )
    got = containers(get_json(kubectl, "deployment", "web"))
    assert list(got) == ["c", "side"]
    assert got["side"]["image"] == "busybox:2" and got["c"]["image"] == "nginx:1.25"


def test_label_and_annotate(kubectl: Kubectl) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert kubectl("label", "cm", "x", "team=a", "tier=fe").stdout.strip() == "configmap/x labeled"
    assert kubectl("annotate", "cm", "x", "note=hi").stdout.strip() == "configmap/x annotated"
    meta = get_json(kubectl, "cm", "x")["metadata"]
    assert meta["labels"] == {"team": "a", "tier": "fe"}
    assert meta["annotations"]["note"] == "hi"
    clash = kubectl("label", "cm", "x", "team=b", check=False)
    assert clash.returncode == 1 and "already has a value (a)" in clash.stderr
    kubectl("label", "cm", "x", "team=b", "--overwrite")
    kubectl("label", "cm", "x", "tier-")
    kubectl("annotate", "cm", "x", "note-")
    meta = get_json(kubectl, "cm", "x")["metadata"]
    assert meta["labels"] == {"team": "b"}
    assert "note" not in meta.get("annotations", {})
    listed = kubectl("get", "cm", "-l", "team=b", "-o", "name").stdout.split()
    assert listed == ["configmap/x"]
    assert kubectl("get", "cm", "-l", "team=a", "-o", "name").stdout == ""


def test_get_pages_through_continue_tokens(kubectl: Kubectl, apiserver: APIServer) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}} for i in range(5)
    ]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    apiserver.clear_request_log()
    # Tables carry continue tokens too (TABLE-1, PAGE-1)
    table = kubectl("get", "cm", "--chunk-size=2").stdout
    assert [line.split()[0] for line in table.splitlines()[1:]] == [f"cm{i}" for i in range(5)]
    names = kubectl("get", "cm", "--chunk-size=2", "-o", "name").stdout.split()
    assert names == [f"configmap/cm{i}" for i in range(5)]
    log = logged(apiserver, lambda log: sum("continue=" in r[2] for r in log) >= 4)
    assert sum("continue=" in q for _, _, q, _ in log) >= 4


LIST_DOC = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"l{i}"},
            "data": {"i": str(i)},
        }
        for i in range(2)
    ],
}


def test_apply_a_list_document(kubectl: Kubectl) -> None:
    # `kubectl get ... -o yaml` of several objects is a v1 List; re-applying it is routine
    out = kubectl("apply", "-f", "-", input=yaml.safe_dump(LIST_DOC)).stdout
    assert out.split("\n")[:2] == ["configmap/l0 created", "configmap/l1 created"]
    dumped = kubectl("get", "cm", "l0", "l1", "-o", "yaml").stdout
    assert yaml.safe_load(dumped)["kind"] == "List"
    again = kubectl("apply", "-f", "-", input=dumped).stdout.split()
    assert again[0::2] == ["configmap/l0", "configmap/l1"]
    assert get_json(kubectl, "cm", "l1")["data"] == {"i": "1"}


def test_apply_a_list_document_without_client_validation(kubectl: Kubectl) -> None:
    out = kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(LIST_DOC)).stdout
    assert out.split() == ["configmap/l0", "created", "configmap/l1", "created"]
    assert get_json(kubectl, "cm", "l1")["data"] == {"i": "1"}


def test_replace_and_conflict(kubectl: Kubectl) -> None:
    apply(
        kubectl,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r"}, "data": {"a": "1"}},
    )
    live = get_json(kubectl, "cm", "r")
    live["data"] = {"a": "2"}
    out = kubectl("replace", "-f", "-", input=json.dumps(live)).stdout
    assert out.strip() == "configmap/r replaced"
    now = get_json(kubectl, "cm", "r")
    assert now["data"] == {"a": "2"}
    assert int(now["metadata"]["resourceVersion"]) > int(live["metadata"]["resourceVersion"])
    # the body still carries the old resourceVersion: optimistic concurrency (CONC-1)
    live["data"] = {"a": "3"}
    stale = kubectl("replace", "-f", "-", input=json.dumps(live), check=False)
    assert stale.returncode == 1
    assert (
        'Operation cannot be fulfilled on configmaps "r": the object has been modified; '
        "please apply your changes to the latest version and try again"
    ) in stale.stderr
    missing = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}}
    gone = kubectl("replace", "-f", "-", input=json.dumps(missing), check=False)
    assert gone.returncode == 1 and 'configmaps "nope" not found' in gone.stderr


def test_diff_is_a_dry_run(kubectl: Kubectl, apiserver: APIServer) -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": {"a": "1"}}
    apply(kubectl, doc)
    before = get_json(kubectl, "cm", "d")
    rev = apiserver.store.rev
    same = kubectl("diff", "-f", "-", input=yaml.safe_dump(doc))
    assert same.returncode == 0 and same.stdout == ""
    changed = {**doc, "data": {"a": "2"}}
    apiserver.clear_request_log()
    diff = kubectl("diff", "-f", "-", input=yaml.safe_dump(changed), check=False)
    assert diff.returncode == 1, diff.stderr  # 1 = differences found
    assert '-  a: "1"' in diff.stdout and '+  a: "2"' in diff.stdout
    dry = [
        r
        for r in logged(apiserver, lambda log: any(r[0] == "PATCH" for r in log))
        if r[0] == "PATCH"
    ]
    assert dry and all("dryRun=All" in r[2] and r[3] == 200 for r in dry)
    after = get_json(kubectl, "cm", "d")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == {"a": "1"} and apiserver.store.rev == rev
    # diff of a new object is a dry-run create
    new = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}
    created = kubectl("diff", "-f", "-", input=yaml.safe_dump(new), check=False)
    assert created.returncode == 1 and "+  name: new" in created.stdout
    assert kubectl("get", "cm", "new", check=False).returncode == 1
    assert apiserver.store.rev == rev


def test_create_configmap_protobuf_is_415_and_workaround(kubectl: Kubectl) -> None:
    proc = kubectl("create", "configmap", "x", "--from-literal=a=b", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: failed to create configmap: the body of the request was in an unknown format "
        "- accepted media types include: application/json, application/yaml"
    )
    manifest = kubectl(
        "create", "cm", "x", "--from-literal=a=b", "--dry-run=client", "-o", "yaml"
    ).stdout
    out = kubectl("apply", "-f", "-", input=manifest).stdout
    assert out.strip() == "configmap/x created"
    assert get_json(kubectl, "cm", "x")["data"] == {"a": "b"}
    # create -f sends JSON and works
    out = kubectl("create", "-f", "-", input=manifest.replace("name: x", "name: x2")).stdout
    assert out.strip() == "configmap/x2 created"


def test_describe_and_events(kubectl: Kubectl, apiserver: APIServer, k8s_api: Any) -> None:
    assert kubectl("run", "p1", "--image=nginx").stdout.strip() == "pod/p1 created"
    v1 = core(k8s_api)
    pod = v1.read_namespaced_pod("p1", "default")
    now = datetime.now(UTC)
    v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "p1.a1"},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "p1",
                "namespace": "default",
                "uid": pod.metadata.uid,
            },
            "reason": "Pulling",
            "message": "Pulling image nginx",
            "type": "Normal",
            "source": {"component": "kubelet"},
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
        },
    )
    events: Any = client.EventsV1Api(k8s_api)
    events.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "p1.b2"},
            "eventTime": now,
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "p1",
                "namespace": "default",
                "uid": pod.metadata.uid,
            },
            "reason": "BackOff",
            "note": "Back-off restarting",
            "type": "Warning",
            "action": "Restarting",
            "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1",
        },
    )
    apiserver.clear_request_log()
    described = kubectl("describe", "pod", "p1").stdout
    assert "Name:             p1" in described
    assert "Status:           Pending" in described
    events_part = described.split("Events:", 1)[1]
    assert "Pulling image nginx" in events_part and "Pulling" in events_part
    assert "Back-off restarting" in events_part
    log = logged(apiserver, lambda log: any(p.endswith("/events") for _, p, _, _ in log))
    queries = [q for m, p, q, _ in log if p.endswith("/events")]
    assert any(f"involvedObject.uid%3D{pod.metadata.uid}" in q for q in queries)

    kubectl(
        "apply",
        "-f",
        "-",
        input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n",
    )
    cm_text = kubectl("describe", "configmap", "c").stdout
    assert "Name:         c" in cm_text and "Events:  <none>" in cm_text

    listed = kubectl("events").stdout
    header = listed.splitlines()[0].split()
    assert header == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "Pulling" in listed and "Pod/p1" in listed and "Back-off restarting" in listed
    only_warnings = kubectl("events", "--types=Warning").stdout
    assert "BackOff" in only_warnings and "Pulling" not in only_warnings
    for_pod = kubectl("events", "--for", "pod/p1").stdout
    assert "Pulling image nginx" in for_pod
    table = kubectl("get", "events").stdout
    assert table.splitlines()[0].split()[:5] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT"]


def test_logs_return_quickly(kubectl: Kubectl, apiserver: APIServer) -> None:
    kubectl("run", "p1", "--image=nginx")
    logs = kubectl("logs", "p1", timeout=20)
    assert logs.stdout == ""
    apiserver.set_log_provider(lambda ns, pod, c, prev, follow: iter([b"line one\n"]))
    assert kubectl("logs", "p1", "-c", "p1", timeout=20).stdout == "line one\n"
    missing = kubectl("logs", "nope", check=False, timeout=20)
    assert missing.returncode == 1 and 'pods "nope" not found' in missing.stderr


def test_version_picks_kubectl_132(kubectl: Kubectl, apiserver: APIServer) -> None:
    out = json.loads(kubectl("version", "-o", "json").stdout)
    server = out["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")
    assert server["gitVersion"].startswith("v1.32.")
    assert apiserver.request_log[0][:2] == ("GET", "/version")


def test_auth_can_i_fails_cleanly(kubectl: Kubectl) -> None:
    # SelfSubjectAccessReview is protobuf-only in kubectl (PROTO-2): a clean answer, no hang
    proc = kubectl("auth", "can-i", "get", "pods", check=False, timeout=20)
    if proc.returncode == 0:
        assert proc.stdout.strip() == "yes"
    else:
        assert "panic" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(("Error from server", "error:"))


def test_rollout_status_statefulset(kubectl: Kubectl, k8s_api: Any) -> None:
    apply(kubectl, STATEFULSET)
    # no controllers: never ready, but the strategy default is there (CTRL-3, CTRL-11)
    waiting = kubectl("rollout", "status", "sts", "db", "--timeout=1s", check=False)
    assert waiting.returncode == 1
    assert "only available for RollingUpdate" not in waiting.stderr
    assert "timed out waiting for the condition" in waiting.stderr
    # what a StatefulSet controller would report makes kubectl finish
    client.AppsV1Api(k8s_api).patch_namespaced_stateful_set_status(
        "db",
        "default",
        {
            "status": {
                "observedGeneration": 1,
                "replicas": 1,
                "readyReplicas": 1,
                "currentReplicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
                "currentRevision": "db-5d8f",
                "updateRevision": "db-5d8f",
            }
        },
    )
    done = kubectl("rollout", "status", "sts", "db", "--timeout=10s")
    # the server defaults rollingUpdate.partition to 0, so kubectl reports a partitioned roll out
    assert done.stdout.strip() == "partitioned roll out complete: 1 new pods have been updated..."


def test_rollout_status_deployment(kubectl: Kubectl, k8s_api: Any) -> None:
    apply(kubectl, DEPLOYMENT)
    waiting = kubectl("rollout", "status", "deployment", "web", "--timeout=1s", check=False)
    assert waiting.returncode == 1
    assert "timed out waiting for the condition" in waiting.stderr
    now = datetime.now(UTC)
    client.AppsV1Api(k8s_api).patch_namespaced_deployment_status(
        "web",
        "default",
        {
            "status": {
                "observedGeneration": 1,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "message": "ok",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": "ok",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                ],
            }
        },
    )
    done = kubectl("rollout", "status", "deployment", "web", "--timeout=10s")
    assert 'deployment "web" successfully rolled out' in done.stdout
