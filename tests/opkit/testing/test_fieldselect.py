"""Field selectors (SEL-2): parsing, escapes, per-kind fields and upstream error texts."""

from __future__ import annotations

from typing import Any

import pytest

from opkit.labels import SelectorError
from opkit.testing.apiserver._fieldselect import (
    FieldRequirement,
    FieldSelector,
    escape_value,
    parse_field_selector,
    supported_fields,
)


def cm(name: str = "c1", namespace: str = "default") -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def parse_cm(s: str) -> FieldSelector:
    return parse_field_selector(s, group="", kind="ConfigMap")


# --- grammar ---------------------------------------------------------------------------


def test_empty_selectors() -> None:
    for s in ("", ",", ",,,"):
        sel = parse_cm(s)
        assert sel.empty()
        assert sel.matches(cm())
        assert str(sel) == ""
        assert sel.exact_name() is None


@pytest.mark.parametrize(
    ("s", "reqs"),
    [
        ("metadata.name=a", [("metadata.name", "=", "a")]),
        ("metadata.name==a", [("metadata.name", "=", "a")]),
        ("metadata.name!=a", [("metadata.name", "!=", "a")]),
        ("metadata.name=", [("metadata.name", "=", "")]),
        ("metadata.name!=", [("metadata.name", "!=", "")]),
        (
            "metadata.namespace=ns,metadata.name=a",
            [("metadata.name", "=", "a"), ("metadata.namespace", "=", "ns")],
        ),
        (
            "metadata.name=a,,metadata.name=b",
            [("metadata.name", "=", "a"), ("metadata.name", "=", "b")],
        ),
        ("metadata.name=a!b", [("metadata.name", "=", "a!b")]),
    ],
)
def test_terms(s: str, reqs: list[tuple[str, str, str]]) -> None:
    sel = parse_cm(s)
    assert [tuple(r) for r in sel.requirements] == reqs
    assert all(isinstance(r, FieldRequirement) for r in sel.requirements)
    assert not sel.empty()


def test_escaped_values() -> None:
    sel = parse_cm(r"metadata.name=a\,b\=c\\d,metadata.namespace=x")
    assert sel.requirements[0] == FieldRequirement("metadata.name", "=", "a,b=c\\d")
    assert sel.exact_name() == "a,b=c\\d"
    assert sel.matches(cm("a,b=c\\d", "x"))
    assert not sel.matches(cm("a", "x"))
    # The canonical string re-escapes, so it parses back to the same selector.
    assert str(sel) == r"metadata.name=a\,b\=c\\d,metadata.namespace=x"
    assert parse_cm(str(sel)) == sel


def test_escape_value_round_trip() -> None:
    raw = "we\\ird,na=me"
    assert escape_value(raw) == r"we\\ird\,na\=me"
    assert parse_cm("metadata.name=" + escape_value(raw)).exact_name() == raw


@pytest.mark.parametrize(
    ("s", "message"),
    [
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
        ("metadata.name===a", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name!==a", "invalid field selector: unescaped character in value: 61"),
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "metadata.name=a,oops",
            "invalid selector: 'metadata.name=a,oops'; can't understand 'oops'",
        ),
    ],
)
def test_syntax_errors(s: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_cm(s)
    assert str(exc.value) == message


def test_escaped_comma_does_not_split_terms() -> None:
    sel = parse_cm(r"metadata.name=a\,metadata.namespace\=b")
    assert [tuple(r) for r in sel.requirements] == [
        ("metadata.name", "=", "a,metadata.namespace=b")
    ]


def test_whitespace_is_not_trimmed() -> None:
    # Upstream keeps spaces, so " metadata.name" is an unknown field.
    with pytest.raises(SelectorError) as exc:
        parse_cm("metadata.name=a, metadata.namespace=b")
    assert str(exc.value) == (
        '" metadata.namespace" is not a known field selector: only "metadata.name", '
        '"metadata.namespace"'
    )
    assert parse_cm("metadata.name= a ").exact_name() == " a "


# --- semantics -------------------------------------------------------------------------


def test_equality_and_inequality() -> None:
    assert parse_cm("metadata.name=c1").matches(cm())
    assert parse_cm("metadata.name==c1").matches(cm())
    assert not parse_cm("metadata.name=c2").matches(cm())
    assert parse_cm("metadata.name!=c2").matches(cm())
    assert not parse_cm("metadata.name!=c1").matches(cm())
    assert parse_cm("metadata.namespace!=default").matches(cm(namespace="kube-system"))
    both = parse_cm("metadata.name=c1,metadata.namespace=ns")
    assert both.matches(cm("c1", "ns"))
    assert not both.matches(cm("c1", "other"))
    assert not parse_cm("metadata.name=a,metadata.name=b").matches(cm("a"))


def test_missing_fields_compare_as_empty() -> None:
    no_ns = {"metadata": {"name": "x"}}
    assert parse_cm("metadata.namespace=").matches(no_ns)
    assert not parse_cm("metadata.namespace!=").matches(no_ns)
    assert parse_cm("metadata.namespace!=a").matches(no_ns)
    assert parse_cm("metadata.name=").matches({})


def test_exact_name_and_namespace() -> None:
    sel = parse_cm("metadata.namespace=ns,metadata.name==n")
    assert sel.exact_name() == "n"
    assert sel.exact_namespace() == "ns"
    assert parse_cm("metadata.name!=n").exact_name() is None
    assert parse_cm("metadata.namespace=ns").exact_name() is None
    assert parse_cm("metadata.name=a,metadata.name=b").exact_name() == "a"
    assert sel.requires_exact_match("metadata.namespace") == "ns"


def test_selector_is_hashable_and_comparable() -> None:
    a = parse_cm("metadata.namespace=ns,metadata.name=n")
    b = parse_cm("metadata.name==n,metadata.namespace=ns")
    assert a == b
    assert hash(a) == hash(b)
    assert str(a) == str(b) == "metadata.name=n,metadata.namespace=ns"


# --- per-kind supported fields and messages -------------------------------------------------

DEFAULT_MSG = '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("coordination.k8s.io", "Lease"),
        ("networking.k8s.io", "Ingress"),
        ("example.com", "Widget"),
    ],
)
def test_default_kinds(group: str, kind: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector("foo.bar=baz", group=group, kind=kind)
    assert str(exc.value) == DEFAULT_MSG
    assert supported_fields(group=group, kind=kind) == ["metadata.name", "metadata.namespace"]


def test_unsupported_field_reported_in_sorted_term_order() -> None:
    with pytest.raises(SelectorError) as exc:
        parse_cm("zzz=1,aaa=2")
    assert str(exc.value).startswith('"aaa" is not a known field selector')


def test_unsupported_label_is_go_quoted() -> None:
    with pytest.raises(SelectorError) as exc:
        parse_cm('we"ird=1')
    assert str(exc.value).startswith('"we\\"ird" is not a known field selector')


@pytest.mark.parametrize(
    ("group", "kind", "label", "message"),
    [
        ("", "Pod", "foo.bar", "field label not supported: foo.bar"),
        ("", "Event", "regarding.name", "field label not supported: regarding.name"),
        ("events.k8s.io", "Event", "source", "field label not supported: source"),
        ("", "Secret", "data.x", "field label not supported: data.x"),
        ("", "Namespace", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Node", "metadata.namespace", "field label not supported: metadata.namespace"),
        ("", "Service", "spec.ports", "field label not supported: spec.ports"),
        ("", "ReplicationController", "spec.replicas", "field label not supported: spec.replicas"),
        (
            "batch",
            "Job",
            "status.active",
            'field label "status.active" not supported for batchv1.Job',
        ),
    ],
)
def test_kind_specific_errors(group: str, kind: str, label: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(f"{label}=x", group=group, kind=kind)
    assert str(exc.value) == message


def test_pod_fields() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "sa",
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "podIPs": [{"ip": "10.0.0.9"}],
            "nominatedNodeName": "n2",
        },
    }
    s = (
        "spec.nodeName=n1,spec.restartPolicy=Always,spec.schedulerName=default-scheduler,"
        "spec.serviceAccountName=sa,spec.hostNetwork=false,status.phase=Running,"
        "status.podIP=10.0.0.9,status.nominatedNodeName=n2,metadata.name=p,metadata.namespace=ns"
    )
    sel = parse_field_selector(s, group="", kind="Pod")
    assert sel.matches(pod)
    assert not sel.matches({**pod, "status": {"phase": "Pending"}})

    def pod_sel(expr: str) -> FieldSelector:
        return parse_field_selector(expr, group="", kind="Pod")

    assert pod_sel("spec.hostNetwork=true").matches({"spec": {"hostNetwork": True}})
    assert pod_sel("spec.hostNetwork=false").matches({"spec": {}})
    assert not pod_sel("spec.hostNetwork=true").matches({})
    assert pod_sel("spec.nodeName=").matches({"spec": {}})
    assert pod_sel("spec.nodeName!=").matches(pod)
    assert pod_sel("status.podIP=10.1.1.1").matches({"status": {"podIP": "10.1.1.1"}})
    assert pod_sel("spec.serviceAccountName=old").matches({"spec": {"serviceAccount": "old"}})
    assert pod_sel("status.podIPs=").matches(pod)


def test_pod_spec_host_is_an_alias_for_node_name() -> None:
    sel = parse_field_selector("spec.host=n1", group="", kind="Pod")
    assert sel.requirements == (FieldRequirement("spec.nodeName", "=", "n1"),)
    assert sel.matches({"spec": {"nodeName": "n1"}})


def test_core_event_fields_as_kubectl_describe_sends_them() -> None:
    event: dict[str, Any] = {
        "metadata": {"name": "e1", "namespace": "ns"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": "ns",
            "name": "web-0",
            "uid": "u-1",
            "apiVersion": "v1",
            "resourceVersion": "42",
            "fieldPath": "spec.containers{app}",
        },
        "reason": "Started",
        "source": {"component": "kubelet"},
        "reportingComponent": "kubelet",
        "type": "Normal",
    }
    sel = parse_field_selector(
        "involvedObject.name=web-0,involvedObject.namespace=ns,involvedObject.uid=u-1",
        group="",
        kind="Event",
    )
    assert sel.matches(event)
    assert not sel.matches({**event, "involvedObject": {"name": "web-1"}})
    full = parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.apiVersion=v1,involvedObject.resourceVersion=42,"
        r"involvedObject.fieldPath=spec.containers{app},reason=Started,source=kubelet,"
        "reportingComponent=kubelet,type=Normal",
        group="",
        kind="Event",
    )
    assert full.matches(event)
    # "source" falls back to the reporting controller when source.component is empty.
    src = parse_field_selector("source=ctrl", group="", kind="Event")
    assert src.matches({"reportingComponent": "ctrl"})
    assert not src.matches({"source": {"component": "kubelet"}, "reportingComponent": "ctrl"})


def test_events_k8s_io_fields_work_on_either_shape() -> None:
    sel = parse_field_selector(
        "regarding.name=web-0,regarding.kind=Pod,reportingController=kubelet,reason=Started,"
        "type=Warning",
        group="events.k8s.io",
        kind="Event",
    )
    v1_shape = {
        "regarding": {"name": "web-0", "kind": "Pod"},
        "reportingController": "kubelet",
        "reason": "Started",
        "type": "Warning",
    }
    core_shape = {
        "involvedObject": {"name": "web-0", "kind": "Pod"},
        "reportingComponent": "kubelet",
        "reason": "Started",
        "type": "Warning",
    }
    assert sel.matches(v1_shape)
    assert sel.matches(core_shape)
    assert not sel.matches({**v1_shape, "type": "Normal"})


def test_secret_namespace_node_service_rc_job() -> None:
    secret = parse_field_selector("type=kubernetes.io/tls", group="", kind="Secret")
    assert secret.matches({"type": "kubernetes.io/tls"})
    assert not secret.matches({"type": "Opaque"})

    ns = parse_field_selector(
        "status.phase=Terminating,metadata.name=x", group="", kind="Namespace"
    )
    assert ns.matches({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}})

    node = parse_field_selector("spec.unschedulable=false", group="", kind="Node")
    assert node.matches({"spec": {}})
    assert not node.matches({"spec": {"unschedulable": True}})

    svc = parse_field_selector("spec.type=NodePort,spec.clusterIP!=None", group="", kind="Service")
    assert svc.matches({"spec": {"type": "NodePort", "clusterIP": "10.96.0.5"}})
    assert not svc.matches({"spec": {"type": "NodePort", "clusterIP": "None"}})

    rc = parse_field_selector("status.replicas=0", group="", kind="ReplicationController")
    assert rc.matches({"status": {}})
    assert not rc.matches({"status": {"replicas": 2}})

    job = parse_field_selector("status.successful=3", group="batch", kind="Job")
    assert job.matches({"status": {"succeeded": 3}})
    assert not job.matches({"status": {}})


def test_custom_resources() -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector("foo.bar=1", group="example.com", kind="Widget", custom=True)
    assert str(exc.value) == "field label not supported: foo.bar"
    ok = parse_field_selector(
        "metadata.namespace=ns", group="example.com", kind="Widget", custom=True
    )
    assert ok.matches({"metadata": {"namespace": "ns"}})
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(
            "metadata.namespace=ns",
            group="example.com",
            kind="Cluster",
            custom=True,
            namespaced=False,
        )
    assert str(exc.value) == "field label not supported: metadata.namespace"
    sel = parse_field_selector(
        "spec.color=red,spec.size=3,spec.enabled=true",
        group="example.com",
        kind="Widget",
        custom=True,
        selectable_fields=[".spec.color", ".spec.size", ".spec.enabled"],
    )
    assert sel.matches({"spec": {"color": "red", "size": 3, "enabled": True}})
    assert not sel.matches({"spec": {"color": "blue", "size": 3, "enabled": True}})
    assert supported_fields(
        group="example.com", kind="Widget", custom=True, selectable_fields=[".spec.color"]
    ) == ["metadata.name", "metadata.namespace", "spec.color"]


def test_supported_fields_lists() -> None:
    assert supported_fields(group="", kind="Secret") == [
        "metadata.name",
        "metadata.namespace",
        "type",
    ]
    assert supported_fields(group="", kind="Node") == ["metadata.name", "spec.unschedulable"]
    assert "involvedObject.uid" in supported_fields(group="", kind="Event")
    assert "regarding.uid" in supported_fields(group="events.k8s.io", kind="Event")
