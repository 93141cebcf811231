"""Merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch (PATCH-2..4)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from opkit.testing.apiserver._patch import (
    PatchError,
    SchemaStrategies,
    builtin_list_keys,
    json_patch,
    merge_patch,
    schema_list_keys,
    strategic_merge_patch,
)

# --- RFC 7386 -------------------------------------------------------------------------

RFC7386_APPENDIX_A: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_APPENDIX_A)
def test_merge_patch_rfc7386_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == before


def test_merge_patch_rfc7386_section3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target = {"spec": {"list": [{"a": 1}]}, "keep": {"x": [1]}}
    patch = {"spec": {"new": {"b": [2]}}}
    out = merge_patch(target, patch)
    out["keep"]["x"].append(2)
    out["spec"]["list"][0]["a"] = 5
    out["spec"]["new"]["b"].append(3)
    assert target == {"spec": {"list": [{"a": 1}]}, "keep": {"x": [1]}}
    assert patch == {"spec": {"new": {"b": [2]}}}


def test_merge_patch_kubectl_finalizers_null_and_scale() -> None:
    cm = {"metadata": {"name": "cf", "finalizers": ["a/b"]}, "data": {"k": "v"}}
    assert merge_patch(cm, {"metadata": {"finalizers": None}}) == {
        "metadata": {"name": "cf"},
        "data": {"k": "v"},
    }
    scale = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


# --- RFC 6902 -------------------------------------------------------------------------

RFC6902_APPENDIX_A_OK: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], None),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], None),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], None),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], None),
    (
        "A.5",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        None,
    ),
    (
        "A.6",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        None,
    ),
    (
        "A.7",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        None,
    ),
    (
        "A.8",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        None,
    ),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}], None),
    (
        "A.11",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        None,
    ),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], None),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], None),
]
RFC6902_RESULTS: dict[str, Any] = {
    "A.1": {"baz": "qux", "foo": "bar"},
    "A.2": {"foo": ["bar", "qux", "baz"]},
    "A.3": {"foo": "bar"},
    "A.4": {"foo": ["bar", "baz"]},
    "A.5": {"baz": "boo", "foo": "bar"},
    "A.6": {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    "A.7": {"foo": ["all", "cows", "eat", "grass"]},
    "A.8": {"baz": "qux", "foo": ["a", 2, "c"]},
    "A.10": {"foo": "bar", "child": {"grandchild": {}}},
    "A.11": {"foo": "bar", "baz": "qux"},
    "A.14": {"/": 9, "~1": 10},
    "A.16": {"foo": ["bar", ["abc", "def"]]},
}


@pytest.mark.parametrize(("name", "doc", "ops", "_"), RFC6902_APPENDIX_A_OK)
def test_json_patch_rfc6902_appendix_a(name: str, doc: Any, ops: Any, _: Any) -> None:
    before = copy.deepcopy(doc)
    assert json_patch(doc, ops) == RFC6902_RESULTS[name]
    assert doc == before


@pytest.mark.parametrize(
    ("doc", "ops", "message"),
    [
        # A.9 test error
        (
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            'jsonpatch test operation does not apply: is: "qux", expected: "bar"',
        ),
        # A.12 adding to a nonexistent target
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            'jsonpatch add operation does not apply: doc is missing path: "/baz/bat"',
        ),
        # A.15 comparing strings and numbers
        (
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": "10"}],
            'jsonpatch test operation does not apply: is: 10, expected: "10"',
        ),
    ],
)
def test_json_patch_rfc6902_appendix_a_errors(doc: Any, ops: Any, message: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch(doc, ops)
    assert info.value.code == 422
    assert info.value.message == message


def test_json_patch_test_uses_json_equality() -> None:
    doc = {"a": 1, "b": True, "c": {"x": [1, {"y": 2.0}]}}
    assert json_patch(doc, [{"op": "test", "path": "/a", "value": 1.0}]) == doc
    assert json_patch(doc, [{"op": "test", "path": "/c", "value": {"x": [1.0, {"y": 2}]}}]) == doc
    for wrong in (1, "true", None):
        with pytest.raises(PatchError, match="test operation does not apply"):
            json_patch(doc, [{"op": "test", "path": "/b", "value": wrong}])
    with pytest.raises(PatchError, match="test operation does not apply"):
        json_patch(doc, [{"op": "test", "path": "/a", "value": True}])
    with pytest.raises(PatchError, match='doc is missing path: "/nope"'):
        json_patch(doc, [{"op": "test", "path": "/nope", "value": None}])


def test_json_patch_pointer_escapes_and_root() -> None:
    doc = {"a/b": 1, "m~n": 2}
    ops = [
        {"op": "replace", "path": "/a~1b", "value": 10},
        {"op": "remove", "path": "/m~0n"},
        {"op": "add", "path": "/~0~1", "value": 3},
    ]
    assert json_patch(doc, ops) == {"a/b": 10, "~/": 3}
    assert json_patch(doc, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert json_patch(doc, [{"op": "add", "path": "", "value": {"z": 1}}]) == {"z": 1}


def test_json_patch_copy_and_move() -> None:
    doc = {"a": {"b": [1, 2]}, "c": {}}
    out = json_patch(
        doc,
        [
            {"op": "copy", "from": "/a/b", "path": "/c/b"},
            {"op": "add", "path": "/c/b/-", "value": 3},
            {"op": "move", "from": "/a", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/d"},
        ],
    )
    assert out == {"c": {"b": [1, 2, 3]}, "d": {"b": [1, 2]}}
    with pytest.raises(PatchError, match="own child"):
        json_patch(doc, [{"op": "move", "from": "/a", "path": "/a/b/x"}])
    with pytest.raises(PatchError, match='doc is missing path: "/x"'):
        json_patch(doc, [{"op": "move", "from": "/x", "path": "/y"}])


@pytest.mark.parametrize(
    ("ops", "fragment"),
    [
        ([{"op": "add", "path": "/l/4", "value": 0}], "index 4 out of bounds for list of length 3"),
        ([{"op": "remove", "path": "/l/3"}], "index 3 out of bounds for list of length 3"),
        ([{"op": "replace", "path": "/l/-", "value": 0}], 'doc is missing path: "/l/-"'),
        ([{"op": "add", "path": "/l/01", "value": 0}], 'invalid array index "01"'),
        ([{"op": "add", "path": "/l/-1", "value": 0}], 'invalid array index "-1"'),
        ([{"op": "remove", "path": "/missing"}], 'doc is missing path: "/missing"'),
        ([{"op": "replace", "path": "/s/x", "value": 0}], 'doc is missing path: "/s/x"'),
        ([{"op": "add", "path": "/s/x", "value": 0}], 'doc is missing path: "/s/x"'),
        ([{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ],
)
def test_json_patch_bad_paths_are_422(ops: Any, fragment: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"l": [1, 2, 3], "s": "str"}, ops)
    assert info.value.code == 422
    assert fragment in info.value.message


def test_json_patch_array_bounds_inclusive_for_add() -> None:
    assert json_patch({"l": [1]}, [{"op": "add", "path": "/l/1", "value": 2}]) == {"l": [1, 2]}
    assert json_patch({"l": [1]}, [{"op": "add", "path": "/l/0", "value": 0}]) == {"l": [0, 1]}


@pytest.mark.parametrize(
    ("ops", "fragment"),
    [
        ({"op": "add"}, "JSON array"),
        ([["add"]], "operation 0 is not an object"),
        ([{"path": "/a"}], 'missing "op"'),
        ([{"op": "frob", "path": "/a"}], 'unknown op "frob"'),
        ([{"op": "remove"}], 'missing "path"'),
        ([{"op": "add", "path": "/a"}], 'needs a "value"'),
        ([{"op": "copy", "path": "/a"}], 'missing "from"'),
        ([{"op": "remove", "path": "a"}], "not a JSON pointer"),
        ([{"op": "remove", "path": "/a~2"}], "not a JSON pointer"),
        ([{"op": "remove", "path": 5}], "must be a string"),
    ],
)
def test_json_patch_malformed_is_400(ops: Any, fragment: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, ops)
    assert info.value.code == 400
    assert fragment in info.value.message


def test_json_patch_malformed_op_rejected_before_anything_applies() -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}, {"op": "nope"}])
    assert info.value.code == 400


def test_json_patch_operation_limit() -> None:
    ok = [{"op": "test", "path": "/a", "value": 1}] * 10000
    assert json_patch({"a": 1}, ok) == {"a": 1}
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, [*ok, ok[0]])
    assert info.value.code == 422
    assert "maximum operations in a JSON patch is 10000, got: 10001" in info.value.message


def test_json_patch_null_value_and_ssa_migration_shape() -> None:
    obj = {"metadata": {"resourceVersion": "7", "managedFields": [{"manager": "a"}]}}
    out = json_patch(
        obj,
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
            {"op": "replace", "path": "/metadata/managedFields", "value": [{"manager": "b"}]},
            {"op": "add", "path": "/metadata/x", "value": None},
        ],
    )
    assert out["metadata"] == {
        "resourceVersion": "7",
        "managedFields": [{"manager": "b"}],
        "x": None,
    }
    assert obj["metadata"]["managedFields"] == [{"manager": "a"}]


# --- strategic merge patch ------------------------------------------------------------


def _no_directives(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not k.startswith("$") and _no_directives(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_directives(v) for v in value)
    return True


def smp(target: dict[str, Any], patch: dict[str, Any], kind: str = "Pod", group: str = "") -> Any:
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    out = strategic_merge_patch(target, patch, group=group, kind=kind)
    assert target == before_t, "target was modified"
    assert patch == before_p, "patch was modified"
    assert _no_directives(out), out
    return out


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}, "spec": spec}


def test_smp_kubectl_apply_env_change_keeps_image_and_other_env() -> None:
    """The patch kubectl 1.32 sent in Appendix A (plus a second env var it must keep)."""
    live = _pod(
        containers=[
            {
                "name": "c",
                "image": "nginx",
                "imagePullPolicy": "Always",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}],
            }
        ]
    )
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{..}"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    "env": [{"name": "A", "value": "2"}],
                    "name": "c",
                }
            ],
        },
    }
    out = smp(live, patch)
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{..}"
    }
    assert out["spec"]["containers"] == [
        {
            "name": "c",
            "image": "nginx",
            "imagePullPolicy": "Always",
            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "b"}],
        }
    ]
    # As a plain merge patch the same body would lose the image.
    assert "image" not in merge_patch(live, patch)["spec"]["containers"][0]


def test_smp_env_removed_by_kubectl_apply() -> None:
    live = _pod(containers=[{"name": "c", "image": "i", "env": [{"name": "A"}, {"name": "B"}]}])
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "name": "c",
                }
            ],
        }
    }
    assert smp(live, patch)["spec"]["containers"] == [
        {"name": "c", "image": "i", "env": [{"name": "A"}]}
    ]


def test_smp_containers_merge_by_name_in_workload_templates() -> None:
    template = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "containers": [
                {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "b:1"},
            ]
        },
    }
    patch_tpl = {
        "spec": {
            "containers": [
                {"name": "b", "image": "b:2"},
                {"name": "c", "image": "c:1"},
                {"name": "a", "ports": [{"containerPort": 81}]},
            ]
        }
    }
    for group, kind in [
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "ReplicaSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("", "ReplicationController"),
    ]:
        obj = {"spec": {"replicas": 1, "template": copy.deepcopy(template)}}
        out = smp(obj, {"spec": {"template": patch_tpl}}, kind=kind, group=group)
        containers = out["spec"]["template"]["spec"]["containers"]
        assert containers == [
            {"name": "b", "image": "b:2"},
            {"name": "c", "image": "c:1"},
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 81}, {"containerPort": 80}]},
        ], kind
    cron = {"spec": {"jobTemplate": {"spec": {"template": copy.deepcopy(template)}}}}
    out = smp(
        cron, {"spec": {"jobTemplate": {"spec": {"template": patch_tpl}}}}, "CronJob", "batch"
    )
    assert [
        c["name"] for c in out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ] == [
        "b",
        "c",
        "a",
    ]
    pt = smp({"template": copy.deepcopy(template)}, {"template": patch_tpl}, "PodTemplate")
    assert pt["template"]["spec"]["containers"][2]["image"] == "a:1"


def test_smp_same_patch_replaces_lists_for_unknown_kinds() -> None:
    obj = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["y"]}]}}}}
    out = smp(obj, patch, kind="Widget", group="example.com")
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "args": ["y"]}]


def test_smp_upstream_ordering_cases() -> None:
    sa = {"secrets": [{"name": "1"}, {"name": "2", "v": "b"}, {"name": "3"}]}
    # "preserve the order from the patch in a merging list"
    out = smp(sa, {"secrets": [{"name": "3", "v": "c"}, {"name": "1", "v": "a"}]}, "ServiceAccount")
    assert out["secrets"] == [
        {"name": "2", "v": "b"},
        {"name": "3", "v": "c"},
        {"name": "1", "v": "a"},
    ]
    # "$setElementOrder contains item that is not present in the list to be merged"
    out = smp(
        {"secrets": [{"name": "1"}, {"name": "3"}]},
        {
            "$setElementOrder/secrets": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
            "secrets": [{"name": "3", "v": "3"}, {"name": "1", "v": "1"}],
        },
        "ServiceAccount",
    )
    assert out["secrets"] == [{"name": "3", "v": "3"}, {"name": "1", "v": "1"}]
    # $setElementOrder alone reorders; a new element lands where the order says
    out = smp(
        {"secrets": [{"name": "a"}, {"name": "b"}]},
        {
            "$setElementOrder/secrets": [{"name": "b"}, {"name": "new"}, {"name": "a"}],
            "secrets": [{"name": "new"}],
        },
        "ServiceAccount",
    )
    assert out["secrets"] == [{"name": "b"}, {"name": "new"}, {"name": "a"}]


def test_smp_new_items_without_order_directive_go_first_like_upstream() -> None:
    """Upstream interleaves by the live order and puts unknown items first; kubectl apply
    always sends $setElementOrder, so only hand-written patches see this."""
    live = _pod(containers=[{"name": "a"}, {"name": "b"}])
    out = smp(live, {"spec": {"containers": [{"name": "new"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["new", "a", "b"]
    out = smp(live, {"spec": {"containers": [{"name": "b", "x": 1}, {"name": "new"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b", "new"]
    fin = {"metadata": {"finalizers": ["1", "2"]}}
    assert smp(fin, {"metadata": {"finalizers": ["2", "3"]}})["metadata"]["finalizers"] == [
        "1",
        "2",
        "3",
    ]


def test_smp_set_element_order_mismatch_is_rejected() -> None:
    with pytest.raises(PatchError, match="doesn't match"):
        smp(
            {"secrets": [{"name": "a"}]},
            {
                "$setElementOrder/secrets": [{"name": "a"}],
                "secrets": [{"name": "b"}],
            },
            "ServiceAccount",
        )


def test_smp_patch_delete_on_list_element_removes_all_matches() -> None:
    live = _pod(containers=[{"name": "a"}, {"name": "b"}, {"name": "a", "image": "dup"}])
    out = smp(live, {"spec": {"containers": [{"$patch": "delete", "name": "a"}]}})
    assert out["spec"]["containers"] == [{"name": "b"}]


def test_smp_patch_replace_on_list_and_map() -> None:
    live = _pod(
        containers=[{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]}],
        nodeSelector={"a": "1", "b": "2"},
    )
    out = smp(
        live,
        {
            "spec": {
                "containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}],
                "nodeSelector": {"$patch": "replace", "c": "3"},
            }
        },
    )
    assert out["spec"]["containers"] == [{"name": "z", "image": "z"}]
    assert out["spec"]["nodeSelector"] == {"c": "3"}
    # a list of just the directive empties it
    out = smp(live, {"spec": {"containers": [{"$patch": "replace"}]}})
    assert out["spec"]["containers"] == []
    # replace on a nested element's list
    out = smp(
        live,
        {
            "spec": {
                "containers": [
                    {"name": "a", "env": [{"$patch": "replace"}, {"name": "F", "value": "2"}]}
                ]
            }
        },
    )
    assert out["spec"]["containers"][0] == {
        "name": "a",
        "image": "x",
        "env": [{"name": "F", "value": "2"}],
    }


def test_smp_patch_delete_and_merge_on_maps() -> None:
    obj = {"data": {"a": "1"}, "metadata": {"labels": {"x": "y"}}}
    assert smp(obj, {"data": {"$patch": "delete"}}, "ConfigMap") == {
        "data": {},
        "metadata": {"labels": {"x": "y"}},
    }
    assert smp(obj, {"data": {"$patch": "merge", "b": "2"}}, "ConfigMap")["data"] == {
        "a": "1",
        "b": "2",
    }
    assert smp(obj, {"$patch": "replace", "data": {"z": "1"}}, "ConfigMap") == {"data": {"z": "1"}}


def test_smp_retain_keys_on_volumes() -> None:
    live = _pod(
        containers=[{"name": "c"}],
        volumes=[
            {"name": "v", "emptyDir": {"medium": "Memory"}},
            {"name": "w", "hostPath": {"path": "/x"}},
        ],
    )
    patch = {
        "spec": {
            "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
            "volumes": [
                {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "v"}
            ],
        }
    }
    out = smp(live, patch)
    assert out["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cm"}},
        {"name": "w", "hostPath": {"path": "/x"}},
    ]
    # a new volume with $retainKeys is stored without the directive
    out = smp(
        live,
        {"spec": {"volumes": [{"$retainKeys": ["name", "secret"], "name": "s", "secret": {}}]}},
    )
    assert {"name": "s", "secret": {}} in out["spec"]["volumes"]


def test_smp_retain_keys_on_deployment_strategy() -> None:
    dep = {
        "spec": {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            }
        }
    }
    out = smp(
        dep,
        {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}
            }
        },
        "Deployment",
        "apps",
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # without the directive the map merges
    out = smp(dep, {"spec": {"strategy": {"type": "Recreate"}}}, "Deployment", "apps")
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_smp_retain_keys_must_cover_the_patch() -> None:
    with pytest.raises(PatchError) as info:
        smp(
            {"spec": {"strategy": {}}},
            {"spec": {"strategy": {"$retainKeys": ["type"], "x": 1}}},
            "Deployment",
            "apps",
        )
    assert info.value.code == 400
    with pytest.raises(PatchError) as info:
        smp({"spec": {}}, {"spec": {"strategy": {"$retainKeys": "type"}}}, "Deployment", "apps")
    assert info.value.code == 400


def test_smp_finalizers_merge_as_set_and_delete_from_primitive_list() -> None:
    obj = {"metadata": {"name": "x", "finalizers": ["a", "b", "c"]}}
    assert smp(obj, {"metadata": {"finalizers": ["c", "d"]}}, "ConfigMap")["metadata"][
        "finalizers"
    ] == ["a", "b", "c", "d"]
    out = smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}}, "ConfigMap")
    assert out["metadata"]["finalizers"] == ["a"]
    # kubectl apply replacing b by e: deletion list + addition + order
    out = smp(
        obj,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "$setElementOrder/finalizers": ["a", "e", "c"],
                "finalizers": ["e"],
            }
        },
        "Secret",
    )
    assert out["metadata"]["finalizers"] == ["a", "e", "c"]
    # order of a primitive merge list follows the patch (upstream test case)
    out = smp(
        {"metadata": {"finalizers": ["1", "2", "3"]}}, {"metadata": {"finalizers": ["3", "1"]}}
    )
    assert out["metadata"]["finalizers"] == ["2", "3", "1"]


def test_smp_node_pod_cidrs_merge_and_taints_replace() -> None:
    node = {"spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]}}
    out = smp(
        node,
        {"spec": {"podCIDRs": ["fd00::/64"], "taints": [{"key": "b", "effect": "NoSchedule"}]}},
        "Node",
    )
    assert out["spec"]["podCIDRs"] == ["fd00::/64", "10.0.0.0/24"]
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]


def test_smp_owner_references_merge_by_uid() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    out = smp(
        obj, {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}}, "ConfigMap"
    )
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "1", "name": "a"},
        {"uid": "2", "name": "b", "controller": True},
    ]
    out = smp(
        obj,
        {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}},
        "Lease",
        "coordination.k8s.io",
    )
    assert out["metadata"]["ownerReferences"] == [{"uid": "2", "name": "b"}]


def test_smp_status_conditions_merge_by_type() -> None:
    conds = [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    for group, kind in [
        ("", "Pod"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "Service"),
        ("", "PersistentVolumeClaim"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("policy", "PodDisruptionBudget"),
    ]:
        out = smp({"status": {"conditions": copy.deepcopy(conds)}}, patch, kind, group)
        assert out["status"]["conditions"] == [
            {"type": "Ready", "status": "True"},
            {"type": "Scheduled", "status": "True"},
        ], kind
    # CRD conditions carry no patch strategy: replaced
    out = smp(
        {"status": {"conditions": conds}}, patch, "CustomResourceDefinition", "apiextensions.k8s.io"
    )
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}]


def test_smp_service_ports_and_pdb_selector() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, "Service")
    assert out["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}
    pdb = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    out = smp(
        pdb, {"spec": {"selector": {"matchLabels": {"b": "2"}}}}, "PodDisruptionBudget", "policy"
    )
    assert out["spec"] == {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}


def test_smp_lists_without_strategy_are_replaced() -> None:
    live = _pod(
        containers=[{"name": "c", "args": ["a", "b"], "command": ["x"]}],
        tolerations=[{"key": "k"}],
    )
    out = smp(
        live,
        {"spec": {"containers": [{"name": "c", "args": ["z"]}], "tolerations": [{"key": "j"}]}},
    )
    assert out["spec"]["containers"] == [{"name": "c", "args": ["z"], "command": ["x"]}]
    assert out["spec"]["tolerations"] == [{"key": "j"}]
    sts = {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "a"}}]}}
    out = smp(
        sts,
        {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "b"}}]}},
        "StatefulSet",
        "apps",
    )
    assert out["spec"]["volumeClaimTemplates"] == [{"metadata": {"name": "b"}}]


def test_smp_nulls_type_changes_and_plain_maps() -> None:
    cm = {"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "1"}}}
    out = smp(
        cm,
        {"data": {"a": None, "c": "3"}, "metadata": {"labels": None}, "extra": {"n": None, "k": 1}},
        "ConfigMap",
    )
    assert out == {"data": {"b": "2", "c": "3"}, "metadata": {}, "extra": {"k": 1}}
    assert smp({"a": [1]}, {"a": {"b": 1}}, "Thing") == {"a": {"b": 1}}
    assert smp({"a": {"b": 1}}, {"a": [1]}, "Thing") == {"a": [1]}


def test_smp_on_scale_is_a_plain_merge() -> None:
    scale = {"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "a=b"}}
    out = smp(scale, {"spec": {"replicas": 2}}, "Scale", "autoscaling")
    assert out == {
        "kind": "Scale",
        "spec": {"replicas": 2},
        "status": {"replicas": 1, "selector": "a=b"},
    }


def test_smp_directives_inside_new_values_are_consumed() -> None:
    live = _pod(containers=[{"name": "a"}])
    out = smp(
        live,
        {
            "spec": {
                "containers": [
                    {
                        "name": "b",
                        "$setElementOrder/env": [{"name": "X"}, {"name": "Y"}],
                        "env": [{"name": "X"}, {"$patch": "delete", "name": "Z"}, {"name": "Y"}],
                        "resources": {"$patch": "replace", "limits": {"cpu": "1"}},
                    }
                ],
                "volumes": [{"name": "gone", "$patch": "delete"}],
            }
        },
    )
    assert out["spec"]["containers"][0] == {
        "name": "b",
        "env": [{"name": "X"}, {"name": "Y"}],
        "resources": {"limits": {"cpu": "1"}},
    }
    assert out["spec"]["volumes"] == []


@pytest.mark.parametrize(
    ("patch", "code", "fragment"),
    [
        (
            {"spec": {"containers": [{"image": "x"}]}},
            422,
            "does not contain declared merge key: name",
        ),
        ({"spec": {"containers": [{"$patch": "delete"}]}}, 422, "declared merge key: name"),
        ({"spec": {"containers": ["x"]}}, 422, "is not an object"),
        ({"spec": {"containers": [{"name": "a", "$patch": "frob"}]}}, 400, "unknown patch type"),
        ({"spec": {"$patch": "frob"}}, 400, "unknown patch type"),
        ({"spec": {"$setElementOrder/containers": {"name": "a"}}}, 400, "must be a list"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, 400, "must be a list"),
        ({"metadata": {"finalizers": [{"a": 1}]}}, 422, "not identical"),
    ],
)
def test_smp_errors(patch: dict[str, Any], code: int, fragment: str) -> None:
    with pytest.raises(PatchError) as info:
        strategic_merge_patch(_pod(containers=[{"name": "a"}]), patch, group="", kind="Pod")
    assert info.value.code == code
    assert fragment in info.value.message


def test_smp_patch_must_be_an_object() -> None:
    with pytest.raises(PatchError) as info:
        strategic_merge_patch({}, [{"op": "add"}], group="", kind="Pod")  # type: ignore[arg-type]
    assert info.value.code == 400


# --- list keys ------------------------------------------------------------------------


def test_builtin_list_keys_table() -> None:
    pod = builtin_list_keys("", "Pod")
    assert pod(("spec", "containers")) == ["name"]
    assert pod(("spec", "initContainers", "env")) == ["name"]
    assert pod(("spec", "containers", "ports")) == ["containerPort", "protocol"]
    assert pod(("spec", "containers", "volumeMounts")) == ["mountPath"]
    assert pod(("spec", "ephemeralContainers", "volumeDevices")) == ["devicePath"]
    assert pod(("spec", "volumes")) == ["name"]
    assert pod(("spec", "topologySpreadConstraints")) == ["topologyKey", "whenUnsatisfiable"]
    assert pod(("status", "conditions")) == ["type"]
    assert pod(("status", "podIPs")) is None  # SMP merges by ip, SSA treats it atomic
    assert pod(("metadata", "finalizers")) == []
    assert pod(("metadata", "ownerReferences")) == ["uid"]
    assert pod(("spec", "tolerations")) is None
    assert pod(("spec", "containers", "args")) is None
    cron = builtin_list_keys("batch", "CronJob")
    assert cron(("spec", "jobTemplate", "spec", "template", "spec", "containers", "env")) == [
        "name"
    ]
    assert builtin_list_keys("", "Service")(("spec", "ports")) == ["port", "protocol"]
    assert builtin_list_keys("", "Node")(("spec", "podCIDRs")) == []
    assert builtin_list_keys("", "ConfigMap")(("metadata", "finalizers")) == []
    assert builtin_list_keys("example.com", "Widget")(("spec", "items")) is None


def test_schema_list_keys_from_openapi() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "integer"},
                                "protocol": {"type": "string", "default": "TCP"},
                                "tags": {"type": "array", "x-kubernetes-list-type": "set"},
                            },
                        },
                    },
                    "args": {"type": "array", "x-kubernetes-list-type": "atomic"},
                    "plain": {"type": "array"},
                    "groups": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "members": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["name"],
                                }
                            },
                        },
                    },
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                },
            }
        },
    }
    lk = schema_list_keys(schema)
    assert lk(("spec", "ports")) == ["port", "protocol"]
    assert lk(("spec", "ports", "tags")) == []
    assert lk(("spec", "args")) is None
    assert lk(("spec", "plain")) is None
    assert lk(("spec", "groups", "anything", "members")) == ["name"]
    assert lk(("spec", "nope", "deeper")) is None
    assert lk(("metadata", "finalizers")) == []
    assert lk(("metadata", "ownerReferences")) == ["uid"]
    assert isinstance(lk, SchemaStrategies)
    assert lk.atomic_map(("spec", "selector")) is True
    assert lk.atomic_map(("spec", "groups")) is False
    assert lk.key_defaults(("spec", "ports")) == {"protocol": "TCP"}
    assert schema_list_keys({})(("spec", "x")) is None


def test_smp_set_element_order_on_untyped_list_is_not_validated() -> None:
    obj = {"spec": {"items": [{"id": 1, "v": "a"}]}}
    out = smp(
        obj,
        {"spec": {"$setElementOrder/items": [{"id": 2}], "items": [{"id": 2, "v": "b"}]}},
        "Widget",
        "example.com",
    )
    assert out == {"spec": {"items": [{"id": 2, "v": "b"}]}}
