"""kubectl against the embedded server: CRDs, custom resources, printing and discovery.

Each test runs the real kubectl (the dispatcher picks kubectl 1.32 from /version, ENV-1)
against a fresh server with its own HOME (ENV-2, HAR-1).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client

from opkit.testing import APIServer
from opkit.testing._pytest_plugin import Kubectl

pytestmark = pytest.mark.e2e

CRD_NAME = "gadgets.example.com"

GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "gadgets",
            "singular": "gadget",
            "kind": "Gadget",
            "shortNames": ["gd"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "string", "jsonPath": ".spec.size", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "size": {"type": "string"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def gadget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply(kubectl: Kubectl, *docs: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    """``kubectl apply -f -`` of the given documents; returns stdout."""
    text = yaml.safe_dump_all(list(docs))
    return kubectl("apply", "-f", "-", *extra, input=text).stdout


def install_gadgets(kubectl: Kubectl) -> None:
    out = apply(kubectl, GADGET_CRD)
    assert out.strip() == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} created"
    waited = kubectl("wait", "--for", "condition=established", f"crd/{CRD_NAME}", "--timeout=10s")
    assert "condition met" in waited.stdout


def rows(text: str) -> list[dict[str, str]]:
    """Parse kubectl's column output: cells start where their header starts."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    starts: list[int] = []
    names: list[str] = []
    i = 0
    while i < len(header):
        if header[i] != " " and (i == 0 or header[i - 1] == " "):
            starts.append(i)
            j = header.find(" ", i)
            names.append(header[i : j if j >= 0 else len(header)])
        i += 1
    out = []
    for line in lines[1:]:
        cells = {}
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(line)
            cells[names[k]] = line[start:end].strip()
        out.append(cells)
    return out


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


def headers(text: str) -> list[str]:
    return text.splitlines()[0].split()


def test_apply_crd_then_custom_resource_and_printer_columns(
    kubectl: Kubectl, apiserver: APIServer
) -> None:
    install_gadgets(kubectl)
    out = apply(kubectl, gadget("g1", replicas=2, color="red", size="large"))
    assert out.strip() == "gadget.example.com/g1 created"
    # kubectl found fieldValidation in /openapi/v3 and left validation to the server (OAPI-1..3)
    creates = [
        (p, q)
        for m, p, q, _ in logged(apiserver, lambda log: sum(r[0] == "POST" for r in log) >= 2)
        if m == "POST"
    ]
    assert [p for p, _ in creates] == [
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "/apis/example.com/v1/namespaces/default/gadgets",
    ]
    assert all("fieldValidation=Strict" in q for _, q in creates)
    apply(kubectl, gadget("g2", replicas=0, color="blue"))

    got = kubectl("get", "gadgets").stdout
    assert headers(got) == ["NAME", "REPLICAS", "COLOR", "AGE"]
    table = rows(got)
    assert [(r["NAME"], r["REPLICAS"], r["COLOR"]) for r in table] == [
        ("g1", "2", "red"),
        ("g2", "0", "blue"),
    ]
    assert all(r["AGE"].endswith("s") for r in table)  # human duration from the server

    # priority-1 columns only with -o wide (CRD-10); short name resolves (CRD-7)
    wide = kubectl("get", "gd", "-o", "wide").stdout
    assert headers(wide) == ["NAME", "REPLICAS", "COLOR", "SIZE", "AGE"]
    # a missing value is a null cell, which kubectl prints as blank
    assert [(r["NAME"], r["SIZE"]) for r in rows(wide)] == [("g1", "large"), ("g2", "")]

    single = kubectl("get", "gadget", "g1").stdout
    assert [r["REPLICAS"] for r in rows(single)] == ["2"]

    # the CRD object itself uses the default table: Name and Created At (CRD-10)
    crds = kubectl("get", "crd").stdout
    assert headers(crds) == ["NAME", "CREATED", "AT"]
    assert rows(crds)[0]["NAME"] == CRD_NAME


def test_get_output_yaml_and_json(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red"))
    as_yaml = yaml.safe_load(kubectl("get", "gadget", "g1", "-o", "yaml").stdout)
    as_json = json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)
    for obj in (as_yaml, as_json):
        assert obj["apiVersion"] == "example.com/v1" and obj["kind"] == "Gadget"
        meta = obj["metadata"]
        assert meta["name"] == "g1" and meta["namespace"] == "default"
        assert meta["generation"] == 1
        assert isinstance(meta["resourceVersion"], str) and int(meta["resourceVersion"]) > 0
        assert len(meta["uid"]) == 36
        assert meta["creationTimestamp"].endswith("Z")
        assert "kubectl.kubernetes.io/last-applied-configuration" in meta["annotations"]
        assert obj["spec"] == {"replicas": 1, "color": "red"}
    assert as_yaml == as_json
    listed = json.loads(kubectl("get", "gadgets", "-o", "json").stdout)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["g1"]
    names = kubectl("get", "gadgets", "-o", "name").stdout.split()
    assert names == ["gadget.example.com/g1"]


def test_apply_updates_custom_resource_with_merge_patch(
    kubectl: Kubectl, apiserver: APIServer
) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red", size="s"))
    apiserver.clear_request_log()
    out = apply(kubectl, gadget("g1", replicas=1, color="blue"))
    assert out.strip() == "gadget.example.com/g1 configured"
    log = logged(apiserver, lambda log: any(r[0] == "PATCH" for r in log))
    patches = [r for r in log if r[0] == "PATCH"]
    assert [(p[1], p[3]) for p in patches] == [
        ("/apis/example.com/v1/namespaces/default/gadgets/g1", 200)
    ]
    obj = json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)
    # size was dropped from the manifest, so client-side apply removes it
    assert obj["spec"] == {"replicas": 1, "color": "blue"}
    assert obj["metadata"]["generation"] == 2


def test_apply_rejects_schema_violation_and_unknown_field(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    bad = kubectl("apply", "-f", "-", input=yaml.safe_dump(gadget("g1", replicas=-1)), check=False)
    assert bad.returncode == 1
    assert 'The Gadget "g1" is invalid' in bad.stderr
    assert "spec.replicas: Invalid value: -1" in bad.stderr
    assert "should be greater than or equal to 0" in bad.stderr
    unknown = kubectl("apply", "-f", "-", input=yaml.safe_dump(gadget("g2", bogus=1)), check=False)
    assert unknown.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in unknown.stderr
    # --validate=warn: the server drops the field and says so in a Warning header (HTTP-6)
    warned = kubectl(
        "apply", "--validate=warn", "-f", "-", input=yaml.safe_dump(gadget("g4", bogus=1))
    )
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    # --validate=false sends fieldValidation=Ignore: the field is pruned instead
    kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(gadget("g3", bogus=1)))
    obj = json.loads(kubectl("get", "gadget", "g3", "-o", "json").stdout)
    assert obj["spec"] == {}


def test_scale_custom_resource(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red"))
    out = kubectl("scale", "gadget", "g1", "--replicas=4").stdout
    assert out.strip() == "gadget.example.com/g1 scaled"
    obj = json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 4
    assert obj["metadata"]["generation"] == 2
    # precondition on the current replica count
    failed = kubectl("scale", "gadget", "g1", "--current-replicas=2", "--replicas=5", check=False)
    assert failed.returncode != 0
    assert failed.stderr.strip() == "error: Expected replicas to be 2, was 4"
    got = kubectl("get", "gadget", "g1", "-o", "jsonpath={.spec.replicas}").stdout
    assert got == "4"


def test_patch_custom_resource_merge_json_and_strategic_is_415(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red", size="s"))
    merged = kubectl("patch", "gadget", "g1", "--type=merge", "-p", '{"spec":{"color":"blue"}}')
    assert merged.stdout.strip() == "gadget.example.com/g1 patched"
    ops = json.dumps(
        [
            {"op": "replace", "path": "/spec/size", "value": "xl"},
            {"op": "remove", "path": "/spec/replicas"},
        ]
    )
    kubectl("patch", "gadget", "g1", "--type=json", "-p", ops)
    obj = json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)
    assert obj["spec"] == {"color": "blue", "size": "xl"}

    # kubectl's default patch type is strategic, which custom resources refuse (PATCH-1)
    smp = kubectl("patch", "gadget", "g1", "-p", '{"spec":{"color":"red"}}', check=False)
    assert smp.returncode == 1
    assert smp.stderr.strip() == (
        "error: application/strategic-merge-patch+json is not supported by "
        "example.com/v1, Kind=Gadget: the body of the request was in an unknown format - "
        "accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml"
    )
    # a failing JSON patch test op is a clean error
    bad = kubectl(
        "patch",
        "gadget",
        "g1",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/spec/color","value":"green"}]',
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("The request is invalid: ")  # kubectl's text for a 422
    assert "test operation does not apply" in bad.stderr
    assert json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)["spec"]["color"] == (
        "blue"
    )


def test_api_resources_lists_builtin_and_crd_kinds(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    out = kubectl("api-resources").stdout
    assert headers(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    table = {(r["NAME"], r["APIVERSION"]): r for r in rows(out)}
    expected = {
        ("pods", "v1"): ("po", "true", "Pod"),
        ("configmaps", "v1"): ("cm", "true", "ConfigMap"),
        ("namespaces", "v1"): ("ns", "false", "Namespace"),
        ("services", "v1"): ("svc", "true", "Service"),
        ("statefulsets", "apps/v1"): ("sts", "true", "StatefulSet"),
        ("deployments", "apps/v1"): ("deploy", "true", "Deployment"),
        ("leases", "coordination.k8s.io/v1"): ("", "true", "Lease"),
        ("customresourcedefinitions", "apiextensions.k8s.io/v1"): (
            "crd,crds",
            "false",
            "CustomResourceDefinition",
        ),
        ("gadgets", "example.com/v1"): ("gd", "true", "Gadget"),
    }
    for key, (short, namespaced, kind) in expected.items():
        row = table[key]
        assert (row["SHORTNAMES"], row["NAMESPACED"], row["KIND"]) == (short, namespaced, kind)
    # subresources are not listed as resources
    assert not any("/" in name for name, _ in table)
    grouped = kubectl("api-resources", "--api-group=example.com", "-o", "name").stdout
    assert grouped.split() == ["gadgets.example.com"]


def test_explain_does_not_crash_or_hang(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    for kind in ("gadget", "pods", "statefulsets.apps"):
        proc = kubectl("explain", kind, check=False, timeout=20)
        if proc.returncode == 0:
            assert "KIND:" in proc.stdout
        else:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "panic" not in proc.stderr and "goroutine" not in proc.stderr


def test_get_all_and_all_namespaces(kubectl: Kubectl) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red"))
    apply(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "conf", "namespace": "other"},
            "data": {"k": "v"},
        },
    )
    kubectl(
        "run",
        "p1",
        "--image=nginx",
        "--restart=Never",
    )
    # categories: ["all"] on built-ins (DISC-3) and copied from the CRD
    everything = kubectl("get", "all", "-o", "name").stdout.split()
    assert "pod/p1" in everything
    assert "service/kubernetes" in everything
    assert "gadget.example.com/g1" in everything
    assert not any(n.startswith("configmap/") for n in everything)

    listed = kubectl("get", "cm", "-A").stdout
    assert headers(listed) == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert ("other", "conf", "1") in [(r["NAMESPACE"], r["NAME"], r["DATA"]) for r in rows(listed)]
    gadgets = rows(kubectl("get", "gadgets", "--all-namespaces").stdout)
    assert [(r["NAMESPACE"], r["NAME"], r["COLOR"]) for r in gadgets] == [("default", "g1", "red")]
    all_ns = kubectl("get", "all", "-A").stdout
    assert "default     pod/p1" in all_ns or any(
        r.get("NAMESPACE") == "default" and r.get("NAME") == "pod/p1" for r in rows(all_ns)
    )


def test_pod_table_columns_and_wide(kubectl: Kubectl) -> None:
    kubectl("run", "p1", "--image=nginx", "--restart=Never", "--labels=app=x")
    got = kubectl("get", "pods").stdout
    assert headers(got) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [(r["NAME"], r["READY"], r["STATUS"], r["RESTARTS"]) for r in rows(got)] == [
        ("p1", "0/1", "Pending", "0")
    ]
    wide = kubectl("get", "pods", "-o", "wide", "--show-labels").stdout
    assert headers(wide)[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    row = rows(wide)[0]
    assert row["LABELS"] == "app=x"


def test_crd_update_status_conditions_and_removal(
    kubectl: Kubectl, apiserver: APIServer, k8s_api: Any
) -> None:
    install_gadgets(kubectl)
    apply(kubectl, gadget("g1", replicas=1, color="red"))
    crd = copy.deepcopy(GADGET_CRD)
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"].insert(
        0, {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
    )
    version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"].update(
        phase={"type": "string"},
        conditions={
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    )
    # a CRD update is a merge patch from kubectl and re-registers the kind (CRD-3)
    out = apply(kubectl, crd)
    assert out.strip() == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} configured"
    assert headers(kubectl("get", "gadgets").stdout) == [
        "NAME",
        "PHASE",
        "REPLICAS",
        "COLOR",
        "AGE",
    ]

    # an operator reports Ready through /status while kubectl waits on a watch
    errors: list[BaseException] = []

    def report_ready() -> None:
        try:
            deadline = time.monotonic() + 15
            while apiserver.watch_count < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object_status(
                "example.com",
                "v1",
                "default",
                "gadgets",
                "g1",
                {
                    "status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True"}],
                    }
                },
            )
        except BaseException as e:
            errors.append(e)

    reporter = threading.Thread(target=report_ready)
    reporter.start()
    try:
        waited = kubectl("wait", "--for=condition=Ready", "gadget/g1", "--timeout=20s", timeout=30)
    finally:
        reporter.join(timeout=20)
    assert not errors
    assert waited.stdout.strip() == "gadget.example.com/g1 condition met"
    jp = kubectl("wait", "--for=jsonpath={.status.phase}=Running", "gadget/g1", "--timeout=5s")
    assert jp.stdout.strip() == "gadget.example.com/g1 condition met"
    assert [(r["NAME"], r["PHASE"]) for r in rows(kubectl("get", "gadgets").stdout)] == [
        ("g1", "Running")
    ]
    status = json.loads(kubectl("get", "gadget", "g1", "--subresource=status", "-o", "json").stdout)
    assert status["status"]["phase"] == "Running"
    scale = json.loads(kubectl("get", "gadget", "g1", "--subresource=scale", "-o", "json").stdout)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 1}

    # deleting the CRD takes its objects and endpoints with it
    out = kubectl("delete", "crd", CRD_NAME, timeout=30).stdout
    assert out.strip() == f'customresourcedefinition.apiextensions.k8s.io "{CRD_NAME}" deleted'
    assert apiserver.wait_idle(10)
    gone = kubectl("get", "gadgets", check=False)
    assert gone.returncode == 1 and "the server could not find the requested resource" in (
        gone.stderr
    )


def test_unsupported_commands_fail_fast_and_cleanly(kubectl: Kubectl) -> None:
    kubectl("run", "p1", "--image=nginx")
    for args, text in (
        (("exec", "p1", "--", "ls"), "pods/exec is not supported"),
        (("top", "pods"), "Metrics API not available"),
        (("port-forward", "p1", "18080:80"), "pod is not running"),
        (("auth", "whoami"), "selfsubjectreviews API is not enabled"),
    ):
        proc = kubectl(*args, check=False, timeout=20)
        assert proc.returncode == 1, args
        assert text in proc.stderr, (args, proc.stderr)
    info = kubectl("cluster-info").stdout
    assert "Kubernetes control plane is running at http://127.0.0.1:" in info
