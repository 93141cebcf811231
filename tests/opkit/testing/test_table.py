"""Table rendering (TABLE-1..3, CRD-10, WATCH-9) and the JSONPath subset behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opkit.testing.apiserver import _jsonpath
from opkit.testing.apiserver._registry import Registry
from opkit.testing.apiserver._table import (
    column_definitions,
    human_duration,
    to_table,
    to_watch_table,
)
from opkit.testing.apiserver._types import ResourceType

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry.builtin()


def _rt(reg: Registry, group: str, plural: str) -> ResourceType:
    rt = reg.lookup(group, "v1", plural)
    assert rt is not None
    return rt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (2 * 365 * 86400, "2y"),
        (2 * 365 * 86400 + 10 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# -- JSONPath ---------------------------------------------------------------------------

DOC: dict[str, Any] = {
    "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "x"}},
    "spec": {"replicas": 3, "items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
    "status": {
        "conditions": [
            {"type": "Available", "status": "False"},
            {"type": "Ready", "status": "True", "count": 2},
        ]
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        ("$.spec.replicas", [3]),
        ("spec.replicas", [3]),
        (".spec.missing", []),
        (".spec.replicas.deeper", []),
        (".spec.items[0].name", ["a"]),
        (".spec.items[-1].name", ["c"]),
        (".spec.items[5].name", []),
        (".spec.items[*].name", ["a", "b", "c"]),
        (".spec.items[0:2].name", ["a", "b"]),
        (".spec.items[0,2].name", ["a", "c"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Ready')].status", ["True"]),
        ('.status.conditions[?(@.type != "Ready")].type', ["Available"]),
        (".status.conditions[?(@.count > 1)].type", ["Ready"]),
        (".status.conditions[?(@.count)].type", ["Ready"]),
        (".metadata.labels.app\\.kubernetes\\.io/name", ["x"]),
        (".metadata.labels['app.kubernetes.io/name']", ["x"]),
        ("..name", ["w", "a", "b", "c"]),
        (".spec.*", [3, [{"name": "a"}, {"name": "b"}, {"name": "c"}]]),
    ],
)
def test_jsonpath(expr: str, expected: list[Any]) -> None:
    assert _jsonpath.find(DOC, expr) == expected


def test_jsonpath_errors() -> None:
    with pytest.raises(_jsonpath.JSONPathError):
        _jsonpath.find(DOC, ".spec.items[abc]")
    with pytest.raises(_jsonpath.JSONPathError):
        _jsonpath.find(DOC, ".spec.items[0")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (True, "true"),
        (3, "3"),
        (1.5, "1.5"),
        (3.0, "3"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.25, "-2.25"),
        ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        (None, None),
    ],
)
def test_jsonpath_value_printing(value: Any, text: str | None) -> None:
    assert _jsonpath.format_value(value) == text


# -- Custom resources -------------------------------------------------------------------


def _widget_type(columns: list[dict[str, Any]]) -> ResourceType:
    return ResourceType(
        group="example.com",
        version="v1",
        plural="widgets",
        singular="widget",
        kind="Widget",
        namespaced=True,
        is_custom=True,
        printer_columns=columns,
    )


COLUMNS: list[dict[str, Any]] = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "description": "Paint."},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "First", "type": "string", "jsonPath": ".spec.items[0]"},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
    {"name": "Config", "type": "string", "jsonPath": ".spec.config", "priority": 1},
]


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": "7",
            "creationTimestamp": _ago(minutes=5),
        },
        "spec": spec,
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "startedAt": _ago(hours=3, minutes=20),
        },
    }


def test_cr_table_with_printer_columns() -> None:
    rt = _widget_type(COLUMNS)
    obj = _widget(
        "w1", replicas=3, color="red", items=["x", "y"], ratio=2, paused=True, config={"k": "v"}
    )
    table = to_table(rt, [obj], list_meta={"resourceVersion": "9"}, now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "9"}
    cols = table["columnDefinitions"]
    assert cols[0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": cols[0]["description"],
        "priority": 0,
    }
    assert [c["name"] for c in cols[1:]] == [c["name"] for c in COLUMNS]
    assert cols[2]["description"] == "Paint."
    assert cols[-1]["priority"] == 1
    row = table["rows"][0]
    assert row["cells"] == ["w1", 3, "red", "True", "x", 2.0, True, "3h20m", '{"k":"v"}']
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def test_cr_cells_missing_or_wrong_type_are_null() -> None:
    rt = _widget_type(COLUMNS)
    obj = _widget("w2", replicas="three", ratio="x", paused="yes", items=[])
    obj["status"] = {"startedAt": "not a time"}
    cells = to_table(rt, [obj], now=NOW)["rows"][0]["cells"]
    assert cells == ["w2", None, None, None, None, None, None, "<invalid>", None]


def test_cr_integer_column_truncates_floats_and_rejects_bools() -> None:
    rt = _widget_type([{"name": "N", "type": "integer", "jsonPath": ".spec.n"}])
    assert to_table(rt, [_widget("a", n=2.7)], now=NOW)["rows"][0]["cells"] == ["a", 2]
    assert to_table(rt, [_widget("b", n=True)], now=NOW)["rows"][0]["cells"] == ["b", None]


def test_cr_without_printer_columns_gets_age() -> None:
    rt = _widget_type([])
    table = to_table(rt, [_widget("w")], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    assert table["rows"][0]["cells"] == ["w", "5m"]


def test_include_object_modes() -> None:
    rt = _widget_type([])
    obj = _widget("w")
    assert "object" not in to_table(rt, [obj], include_object="None", now=NOW)["rows"][0]
    full = to_table(rt, [obj], include_object="Object", now=NOW)["rows"][0]["object"]
    assert full is obj
    with pytest.raises(ValueError, match="includeObject"):
        to_table(rt, [obj], include_object="Everything", now=NOW)


def test_watch_table() -> None:
    rt = _widget_type([])
    first = to_watch_table(rt, _widget("w"), with_definitions=True, now=NOW)
    later = to_watch_table(rt, _widget("w"), now=NOW)
    assert first["columnDefinitions"] and len(first["rows"]) == 1
    assert later["columnDefinitions"] is None
    assert later["metadata"] == {"resourceVersion": "7"}
    assert later["rows"][0]["cells"] == ["w", "5m"]


# -- Built-in printers ------------------------------------------------------------------


def _names(rt: ResourceType) -> list[str]:
    return [c["name"] for c in column_definitions(rt)]


def test_pod_columns_and_rows(reg: Registry) -> None:
    rt = _rt(reg, "", "pods")
    cols = column_definitions(rt)
    assert [c["name"] for c in cols if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert [c["name"] for c in cols if c["priority"] == 1][:2] == ["IP", "Node"]
    running: dict[str, Any] = {
        "metadata": {"name": "p", "creationTimestamp": _ago(hours=2)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"finishedAt": _ago(minutes=4)}},
                },
            ],
        },
    }
    pending: dict[str, Any] = {
        "metadata": {"name": "q"},
        "spec": {},
        "status": {"phase": "Pending"},
    }
    rows = to_table(rt, [running, pending], now=NOW)["rows"]
    assert rows[0]["cells"][:7] == [
        "p",
        "1/2",
        "CrashLoopBackOff",
        "2 (4m ago)",
        "120m",
        "10.0.0.5",
        "node-1",
    ]
    assert rows[1]["cells"][:6] == ["q", "0/0", "Pending", "0", "<unknown>", "<none>"]


def test_pod_terminating_and_init(reg: Registry) -> None:
    rt = _rt(reg, "", "pods")
    deleting: dict[str, Any] = {
        "metadata": {"name": "p", "deletionTimestamp": _ago(seconds=1)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running"},
    }
    init: dict[str, Any] = {
        "metadata": {"name": "i"},
        "spec": {"initContainers": [{"name": "x"}], "containers": [{"name": "a"}]},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [{"name": "x", "state": {"running": {}}}],
        },
    }
    rows = to_table(rt, [deleting, init], now=NOW)["rows"]
    assert rows[0]["cells"][2] == "Terminating"
    assert rows[1]["cells"][2] == "Init:0/1"


def test_service_row(reg: Registry) -> None:
    rt = _rt(reg, "", "services")
    assert _names(rt) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    svc: dict[str, Any] = {
        "metadata": {"name": "web", "creationTimestamp": _ago(seconds=30)},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.9",
            "clusterIPs": ["10.96.0.9"],
            "selector": {"app": "web", "tier": "fe"},
            "ports": [
                {"port": 80, "protocol": "TCP", "nodePort": 30080},
                {"port": 53, "protocol": "UDP"},
            ],
        },
    }
    lb: dict[str, Any] = {
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": "None", "ports": []},
        "status": {"loadBalancer": {}},
    }
    rows = to_table(rt, [svc, lb], now=NOW)["rows"]
    assert rows[0]["cells"] == [
        "web",
        "NodePort",
        "10.96.0.9",
        "<none>",
        "80:30080/TCP,53/UDP",
        "30s",
        "app=web,tier=fe",
    ]
    assert rows[1]["cells"][2:5] == ["None", "<pending>", "<none>"]


def test_workload_rows(reg: Registry) -> None:
    template = {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
    sts: dict[str, Any] = {
        "metadata": {"name": "db", "creationTimestamp": _ago(days=3)},
        "spec": {"replicas": 3, "template": template, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    sts_rt = _rt(reg, "apps", "statefulsets")
    assert _names(sts_rt) == ["Name", "Ready", "Age", "Containers", "Images"]
    assert to_table(sts_rt, [sts], now=NOW)["rows"][0]["cells"] == [
        "db",
        "2/3",
        "3d",
        "c",
        "nginx:1",
    ]
    dep_rt = _rt(reg, "apps", "deployments")
    assert _names(dep_rt)[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    dep = dict(sts, status={"readyReplicas": 1, "updatedReplicas": 3, "availableReplicas": 1})
    assert to_table(dep_rt, [dep], now=NOW)["rows"][0]["cells"] == [
        "db",
        "1/3",
        3,
        1,
        "3d",
        "c",
        "nginx:1",
        "a=b",
    ]


def test_simple_core_rows(reg: Registry) -> None:
    ns: dict[str, Any] = {
        "metadata": {"name": "team", "creationTimestamp": _ago(hours=50)},
        "status": {"phase": "Active"},
    }
    assert to_table(_rt(reg, "", "namespaces"), [ns], now=NOW)["rows"][0]["cells"] == [
        "team",
        "Active",
        "2d2h",
    ]
    secret: dict[str, Any] = {
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": "", "b": ""},
    }
    assert to_table(_rt(reg, "", "secrets"), [secret], now=NOW)["rows"][0]["cells"] == [
        "s",
        "Opaque",
        2,
        "<unknown>",
    ]
    cm: dict[str, Any] = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}}
    assert to_table(_rt(reg, "", "configmaps"), [cm], now=NOW)["rows"][0]["cells"][:2] == ["c", 2]
    lease: dict[str, Any] = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    lease_rt = _rt(reg, "coordination.k8s.io", "leases")
    assert _names(lease_rt) == ["Name", "Holder", "Age"]
    assert to_table(lease_rt, [lease], now=NOW)["rows"][0]["cells"][:2] == ["l", "me"]


def test_event_rows_for_both_views(reg: Registry) -> None:
    core_rt = _rt(reg, "", "events")
    new_rt = _rt(reg, "events.k8s.io", "events")
    cols = column_definitions(core_rt)
    assert [c["name"] for c in cols if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    core: dict[str, Any] = {
        "metadata": {"name": "p.1"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started",
        "message": " hi ",
        "type": "Normal",
        "firstTimestamp": _ago(minutes=10),
        "lastTimestamp": _ago(minutes=1),
        "count": 4,
        "source": {"component": "kubelet", "host": "node-1"},
    }
    assert to_table(core_rt, [core], now=NOW)["rows"][0]["cells"] == [
        "60s",
        "Normal",
        "Started",
        "pod/p",
        "",
        "kubelet, node-1",
        "hi",
        "10m",
        4,
        "p.1",
    ]
    new: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "w.1"},
        "regarding": {"kind": "Widget", "name": "w"},
        "eventTime": (NOW - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": "ctl",
        "reportingInstance": "i",
        "reason": "Scaled",
        "note": "x",
        "type": "Normal",
    }
    cells = to_table(new_rt, [new], now=NOW)["rows"][0]["cells"]
    assert cells[:6] == ["5s", "Normal", "Scaled", "widget/w", "", "ctl, i"]
    assert cells[8] == 1


def test_other_builtin_columns(reg: Registry) -> None:
    assert _names(_rt(reg, "", "persistentvolumeclaims"))[:4] == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
    ]
    assert _names(_rt(reg, "", "nodes"))[:5] == ["Name", "Status", "Roles", "Age", "Version"]
    crd_rt = _rt(reg, "apiextensions.k8s.io", "customresourcedefinitions")
    assert _names(crd_rt) == ["Name", "Created At"]
    crd: dict[str, Any] = {
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-01-02T03:04:05Z"}
    }
    assert to_table(crd_rt, [crd], now=NOW)["rows"][0]["cells"] == [
        "widgets.example.com",
        "2024-01-02T03:04:05Z",
    ]
    pvc: dict[str, Any] = {
        "metadata": {"name": "data"},
        "spec": {"volumeName": "pv1", "volumeMode": "Filesystem", "storageClassName": "std"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
        },
    }
    cells = to_table(_rt(reg, "", "persistentvolumeclaims"), [pvc], now=NOW)["rows"][0]["cells"]
    assert cells == [
        "data",
        "Bound",
        "pv1",
        "1Gi",
        "RWO",
        "std",
        "<unset>",
        "<unknown>",
        "Filesystem",
    ]
    node: dict[str, Any] = {
        "metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.32.4"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
        },
    }
    cells = to_table(_rt(reg, "", "nodes"), [node], now=NOW)["rows"][0]["cells"]
    assert cells[:6] == [
        "n",
        "Ready,SchedulingDisabled",
        "control-plane",
        "<unknown>",
        "v1.32.4",
        "10.0.0.1",
    ]
    # Every built-in type renders rows as wide as its columns, even for empty objects.
    for rt in reg.all():
        table = to_table(rt, [{"metadata": {"name": "x"}}], now=NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), rt.plural


def test_event_view_detected_without_api_version(reg: Registry) -> None:
    new = {"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p"}, "note": "n"}
    cells = to_table(_rt(reg, "events.k8s.io", "events"), [new], now=NOW)["rows"][0]["cells"]
    assert (cells[3], cells[6]) == ("pod/p", "n")


def test_jsonpath_brackets_inside_quotes() -> None:
    doc = {"items": [{"name": "x]y", "v": 1}, {"name": "c", "v": 2}]}
    assert _jsonpath.find(doc, '.items[?(@.name=="x]y")].v') == [1]
    assert _jsonpath.find(doc, ".items[?(@.name=='c')].v") == [2]
