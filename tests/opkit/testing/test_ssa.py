"""Server-side apply and managedFields tracking (SSA-1..3, META-11)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from opkit.testing.apiserver._patch import (
    ApplyConflict,
    PatchError,
    builtin_list_keys,
    json_patch,
    merge_patch,
    record_update,
    render_path,
    schema_list_keys,
    server_side_apply,
    strategic_merge_patch,
)

CM = builtin_list_keys("", "ConfigMap")
DEPLOY = builtin_list_keys("apps", "Deployment")


def cm(data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    obj["metadata"].update(meta)
    if data is not None:
        obj["data"] = data
    return obj


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    now: str = "2024-01-01T00:00:00Z",
    lk: Any = CM,
    **kw: Any,
) -> dict[str, Any]:
    before_live, before_applied = copy.deepcopy(live), copy.deepcopy(applied)
    out = server_side_apply(
        live,
        applied,
        manager=manager,
        force=force,
        api_version=applied.get("apiVersion", "v1"),
        now=now,
        list_keys=lk,
        **kw,
    )
    assert live == before_live, "live was modified"
    assert applied == before_applied, "applied was modified"
    return out


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    now: str = "2024-01-02T00:00:00Z",
    lk: Any = CM,
    subresource: str = "",
) -> dict[str, Any]:
    record_update(
        old, new, manager=manager, api_version="v1", now=now, list_keys=lk, subresource=subresource
    )
    return new


def entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by ``manager/operation[/subresource]``."""
    out = {}
    for e in obj["metadata"].get("managedFields", []):
        key = f"{e['manager']}/{e['operation']}" + (
            f"/{e['subresource']}" if "subresource" in e else ""
        )
        out[key] = e
    return out


def fields(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return entries(obj)[key]["fieldsV1"]  # type: ignore[no-any-return]


# --- create and the managedFields format ----------------------------------------------


def test_apply_creates_missing_object_with_apply_entry() -> None:
    out = apply(None, cm({"a": "1"}, labels={"app": "x"}), "kubectl")
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["labels"] == {"app": "x"}
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2024-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
        }
    ]


def test_managed_fields_format_for_lists() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "finalizers": ["x/y"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx",
                            "args": ["a", "b"],
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }
                    ]
                },
            },
        },
    }
    out = apply(None, dep, "mgr", lk=DEPLOY)
    assert fields(out, "mgr/Apply") == {
        "f:metadata": {"f:finalizers": {'v:"x/y"': {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"c"}': {
                            ".": {},
                            "f:args": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                }
                            },
                            "f:resources": {},
                        }
                    }
                },
            },
        },
    }


def test_update_entries_mark_created_maps_and_skip_untracked_metadata() -> None:
    new = cm({"a": "1"}, labels={"app": "x"}, uid="u", resourceVersion="5")
    out = update(None, new, "kubectl-create")
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-01-02T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            },
        }
    ]
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1},
    }
    out = update(None, dep, "kubectl-create", lk=DEPLOY)
    assert fields(out, "kubectl-create/Update") == {"f:spec": {"f:replicas": {}}}


def test_subresource_is_recorded() -> None:
    old = update(None, cm({"a": "1"}), "creator")
    new = copy.deepcopy(old)
    new["status"] = {"phase": "x"}
    out = update(old, new, "ctrl", subresource="status")
    e = entries(out)["ctrl/Update/status"]
    assert e["subresource"] == "status"
    # top-level spec/status are structs that always exist upstream: no "." marker
    assert e["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_render_path() -> None:
    assert render_path(("f:data", "f:a")) == ".data.a"
    assert (
        render_path(("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"))
        == '.spec.containers[name="c"].image'
    )
    assert (
        render_path(("f:ports", 'k:{"port":80,"protocol":"TCP"}'))
        == '.ports[port=80,protocol="TCP"]'
    )
    assert render_path(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


# --- apply: update, conflicts, force ------------------------------------------------------


def test_reapply_by_same_manager_changes_value_without_conflict() -> None:
    live = apply(None, cm({"a": "1"}), "m")
    out = apply(live, cm({"a": "2"}), "m", now="T2")
    assert out["data"] == {"a": "2"}
    assert entries(out)["m/Apply"]["time"] == "T2"


def test_conflict_with_other_applier_and_force_moves_ownership() -> None:
    live = apply(None, cm({"a": "1", "b": "1"}), "alice")
    with pytest.raises(ApplyConflict) as info:
        apply(live, cm({"a": "2"}), "bob")
    err = info.value
    assert err.conflicts == [("alice", ".data.a")]
    assert err.message == 'Apply failed with 1 conflict: conflict with "alice": .data.a'
    assert err.causes() == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"}
    ]
    out = apply(live, cm({"a": "2"}), "bob", force=True)
    assert out["data"] == {"a": "2", "b": "1"}
    assert fields(out, "alice/Apply") == {"f:data": {"f:b": {}}}
    assert fields(out, "bob/Apply") == {"f:data": {"f:a": {}}}
    # alice re-applying her old config now conflicts with bob
    with pytest.raises(ApplyConflict) as again:
        apply(out, cm({"a": "1", "b": "1"}), "alice")
    assert again.value.conflicts == [("bob", ".data.a")]


def test_conflict_with_update_manager_says_using_api_version() -> None:
    created = update(None, cm({"a": "1", "b": "1"}), "kubectl-create")
    with pytest.raises(ApplyConflict) as info:
        apply(created, cm({"a": "2", "b": "2"}), "kubectl")
    err = info.value
    assert err.conflicts == [("kubectl-create", ".data.a"), ("kubectl-create", ".data.b")]
    assert err.causes()[0] == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-create" using v1',
        "field": ".data.a",
    }
    assert err.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using v1:\n'
        "- .data.a\n- .data.b"
    )


def test_conflicts_from_several_managers_are_grouped() -> None:
    live = apply(None, cm({"a": "1"}), "m1")
    live = apply(live, cm({"b": "1"}), "m2")
    with pytest.raises(ApplyConflict) as info:
        apply(live, cm({"a": "x", "b": "y"}), "m3")
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "m1":\n- .data.a\n'
        'conflicts with "m2":\n- .data.b'
    )


def test_applying_an_empty_map_owns_it() -> None:
    live = apply(None, cm({}), "m")
    assert live["data"] == {}
    assert fields(live, "m/Apply") == {"f:data": {}}


def test_same_value_is_shared_ownership_not_conflict() -> None:
    live = apply(None, cm({"a": "1"}), "m1")
    live = apply(live, cm({"a": "1", "b": "2"}), "m2")
    assert fields(live, "m1/Apply") == {"f:data": {"f:a": {}}}
    assert fields(live, "m2/Apply") == {"f:data": {"f:a": {}, "f:b": {}}}
    # m2 stops applying a: m1 still owns it, so it stays
    live = apply(live, cm({"b": "2"}), "m2")
    assert live["data"] == {"a": "1", "b": "2"}
    # m1 stops applying a too: nobody owns it now, it goes
    live = apply(live, cm(), "m1")
    assert live["data"] == {"b": "2"}
    assert "m1/Apply" not in entries(live)


def test_fields_dropped_from_config_are_removed() -> None:
    live = apply(None, cm({"a": "1", "b": "2"}, labels={"x": "1", "y": "2"}), "m")
    out = apply(live, cm({"a": "1"}, labels={"x": "1"}), "m")
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["labels"] == {"x": "1"}
    out = apply(out, cm(), "m")
    assert "data" not in out
    assert "labels" not in out["metadata"]
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["name"] == "c"


def test_fields_owned_by_an_updater_survive_removal() -> None:
    live = apply(None, cm({"a": "1", "b": "2"}), "applier")
    edited = json_patch(live, [{"op": "add", "path": "/data/c", "value": "3"}])
    edited = update(live, edited, "kubectl-edit")
    out = apply(edited, cm({"a": "1"}), "applier")
    assert out["data"] == {"a": "1", "c": "3"}
    # an updater that changed a field the applier owned took it over: re-applying
    # without it does not remove it
    edited2 = update(out, merge_patch(out, {"data": {"a": "9"}}), "kubectl-patch")
    assert "applier/Apply" not in entries(edited2)
    out2 = apply(edited2, cm({}), "applier")
    assert out2["data"] == {"a": "9", "c": "3"}


def test_unowned_fields_stay_when_applier_drops_its_own() -> None:
    live = cm({"a": "1", "keep": "x"})
    live["metadata"]["managedFields"] = [
        {
            "manager": "m",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "T0",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    out = apply(live, cm(), "m")
    assert out["data"] == {"keep": "x"}


def test_noop_apply_keeps_time_and_content() -> None:
    live = apply(None, cm({"a": "1"}), "m", now="T1")
    out = apply(live, cm({"a": "1"}), "m", now="T2")
    assert out == live


def test_applied_body_must_not_carry_managed_fields() -> None:
    body = cm({"a": "1"})
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(PatchError) as info:
        apply(None, body, "m")
    assert info.value.code == 400
    assert info.value.message == "metadata.managedFields must be nil"


def test_before_first_apply_owns_untracked_fields() -> None:
    live = cm({"a": "1"})
    with pytest.raises(ApplyConflict) as info:
        apply(live, cm({"a": "2"}), "kubectl")
    assert info.value.conflicts == [("before-first-apply", ".data.a")]
    out = apply(live, cm({"a": "1", "b": "2"}), "kubectl")
    assert set(entries(out)) == {"kubectl/Apply", "before-first-apply/Update"}


def test_ignore_fields_are_neither_merged_nor_owned() -> None:
    live = {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "status": {"s": 1}}
    body = {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"x": 1},
        "status": {"s": 2},
    }
    out = apply(None, body, "m", ignore_fields={"status"})
    assert "status" not in out
    assert fields(out, "m/Apply") == {"f:spec": {"f:x": {}}}
    out = apply(live, body, "m", ignore_fields={"status"})
    assert out["status"] == {"s": 1}


def test_status_subresource_apply_entry() -> None:
    live = apply(
        None,
        {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"x": 1}},
        "m",
    )
    out = apply(
        live,
        {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "status": {"ok": True}},
        "ctrl",
        subresource="status",
        ignore_fields={"spec"},
    )
    assert out["spec"] == {"x": 1}
    assert out["status"] == {"ok": True}
    assert entries(out)["ctrl/Apply/status"]["fieldsV1"] == {"f:status": {"f:ok": {}}}


# --- apply: lists and maps ------------------------------------------------------------------


def _dep(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": containers}}, **spec},
    }


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_list_map_items_merge_by_key_and_keep_others() -> None:
    live = apply(None, _dep([{"name": "a", "image": "a:1"}]), "m1", lk=DEPLOY)
    live = apply(live, _dep([{"name": "b", "image": "b:1"}]), "m2", lk=DEPLOY)
    assert [c["name"] for c in _containers(live)] == ["a", "b"]
    out = apply(
        live,
        _dep([{"name": "a", "image": "a:2", "env": [{"name": "E", "value": "1"}]}]),
        "m1",
        lk=DEPLOY,
    )
    assert _containers(out) == [
        {"name": "a", "image": "a:2", "env": [{"name": "E", "value": "1"}]},
        {"name": "b", "image": "b:1"},
    ]
    # m1 drops its env var and its container: only m1's things go
    out = apply(out, _dep([]), "m1", lk=DEPLOY)
    assert _containers(out) == [{"name": "b", "image": "b:1"}]
    # a change inside m2's container conflicts
    with pytest.raises(ApplyConflict) as info:
        apply(out, _dep([{"name": "b", "image": "b:2"}]), "m1", lk=DEPLOY)
    assert info.value.conflicts == [("m2", '.spec.template.spec.containers[name="b"].image')]


def test_port_key_defaults_protocol() -> None:
    live = apply(None, _dep([{"name": "a", "ports": [{"containerPort": 80}]}]), "m", lk=DEPLOY)
    # the server defaulted protocol; the next apply without it still hits the same item
    _containers(live)[0]["ports"][0]["protocol"] = "TCP"
    out = apply(
        live,
        _dep([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]),
        "m",
        lk=DEPLOY,
    )
    assert _containers(out)[0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"}
    ]


def test_atomic_lists_and_maps_are_replaced_whole() -> None:
    live = apply(
        None,
        _dep([{"name": "a", "args": ["x", "y"]}], selector={"matchLabels": {"a": "1", "b": "2"}}),
        "m1",
        lk=DEPLOY,
    )
    out = apply(
        live,
        _dep([{"name": "a", "args": ["z"]}], selector={"matchLabels": {"c": "3"}}),
        "m1",
        lk=DEPLOY,
    )
    assert _containers(out)[0]["args"] == ["z"]
    assert out["spec"]["selector"] == {"matchLabels": {"c": "3"}}
    # an atomic field is one leaf: another manager changing any part conflicts on it
    with pytest.raises(ApplyConflict) as info:
        apply(out, _dep([{"name": "a"}], selector={"matchLabels": {"c": "4"}}), "m2", lk=DEPLOY)
    assert info.value.conflicts == [("m1", ".spec.selector")]


def test_sets_merge_and_items_are_owned_individually() -> None:
    live = apply(None, cm(finalizers=["a", "b"]), "m1")
    live = apply(live, cm(finalizers=["b", "c"]), "m2")
    assert live["metadata"]["finalizers"] == ["a", "b", "c"]
    out = apply(live, cm(finalizers=[]), "m1")
    assert out["metadata"]["finalizers"] == ["b", "c"]
    out = apply(out, cm(), "m2")
    assert "finalizers" not in out["metadata"]


def test_apply_list_order_follows_config_for_shared_items() -> None:
    live = apply(None, _dep([{"name": "a"}, {"name": "b"}, {"name": "c"}]), "m", lk=DEPLOY)
    out = apply(live, _dep([{"name": "c"}, {"name": "a"}, {"name": "b"}]), "m", lk=DEPLOY)
    assert [c["name"] for c in _containers(out)] == ["c", "a", "b"]


def test_custom_resource_with_schema_list_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "members": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["zone", "name"],
                        "items": {"type": "object"},
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set"},
                    "args": {"type": "array"},
                },
            }
        },
    }
    lk = schema_list_keys(schema)

    def cr(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "ex.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec}

    live = apply(
        None, cr(members=[{"zone": "a", "name": "x", "w": 1}], tags=["t1"], args=["1"]), "m1", lk=lk
    )
    live = apply(
        live,
        cr(members=[{"zone": "b", "name": "x"}], tags=["t2"], args=["2"]),
        "m2",
        lk=lk,
        force=True,
    )
    assert live["spec"]["members"] == [
        {"zone": "a", "name": "x", "w": 1},
        {"zone": "b", "name": "x"},
    ]
    assert live["spec"]["tags"] == ["t1", "t2"]
    assert live["spec"]["args"] == ["2"]
    assert fields(live, "m2/Apply")["f:spec"]["f:members"] == {
        'k:{"name":"x","zone":"b"}': {".": {}, "f:name": {}, "f:zone": {}}
    }
    assert fields(live, "m1/Apply")["f:spec"] == {
        "f:members": {
            'k:{"name":"x","zone":"a"}': {".": {}, "f:name": {}, "f:w": {}, "f:zone": {}}
        },
        "f:tags": {'v:"t1"': {}},
    }


# --- record_update ------------------------------------------------------------------------


def test_record_update_moves_changed_fields_to_the_updater() -> None:
    live = apply(None, cm({"a": "1", "b": "2"}), "applier", now="T1")
    new = merge_patch(live, {"data": {"a": "x", "b": None, "c": "3"}})
    out = update(live, new, "kubectl-patch", now="T2")
    assert "applier/Apply" not in entries(out)
    assert fields(out, "kubectl-patch/Update") == {"f:data": {"f:a": {}, "f:c": {}}}
    # a later update by the same manager merges into its entry
    newer = merge_patch(out, {"metadata": {"labels": {"l": "1"}}})
    out2 = update(out, newer, "kubectl-patch", now="T3")
    e = entries(out2)["kubectl-patch/Update"]
    assert e["time"] == "T3"
    assert e["fieldsV1"] == {
        "f:data": {"f:a": {}, "f:c": {}},
        "f:metadata": {"f:labels": {".": {}, "f:l": {}}},
    }


def test_record_update_without_changes_keeps_stored_entries() -> None:
    live = apply(None, cm({"a": "1"}), "m", now="T1")
    body = cm({"a": "1"}, resourceVersion="9")  # a PUT body without managedFields
    out = update(live, body, "kubectl-replace")
    assert out["metadata"]["managedFields"] == live["metadata"]["managedFields"]
    assert out["metadata"]["managedFields"] is not live["metadata"]["managedFields"]
    same = copy.deepcopy(live)
    assert update(live, same, "x") == live


def test_record_update_removal_drops_ownership_everywhere() -> None:
    live = apply(None, cm({"a": "1"}, labels={"k": "v"}), "m1")
    live = apply(live, cm({"a": "1"}), "m2")
    new = copy.deepcopy(live)
    del new["data"]
    out = update(live, new, "remover")
    assert set(entries(out)) == {"m1/Apply"}
    assert fields(out, "m1/Apply") == {"f:metadata": {"f:labels": {"f:k": {}}}}


def test_record_update_list_items() -> None:
    live = apply(None, _dep([{"name": "a", "image": "1"}]), "m", lk=DEPLOY)
    new = strategic_merge_patch(
        live,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "b"}]}}
            }
        },
        group="apps",
        kind="Deployment",
    )
    out = update(live, new, "editor", lk=DEPLOY)
    assert fields(out, "editor/Update") == {
        "f:spec": {
            "f:template": {
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"a"}': {"f:image": {}},
                        'k:{"name":"b"}': {".": {}, "f:name": {}},
                    }
                }
            }
        }
    }
    assert (
        "f:image"
        not in fields(out, "m/Apply")["f:spec"]["f:template"]["f:spec"]["f:containers"][
            'k:{"name":"a"}'
        ]
    )


def test_record_update_takes_managed_fields_from_the_body() -> None:
    live = apply(None, cm({"a": "1"}), "kubectl-client-side-apply")
    # SSA-5 migration: kubectl replaces managedFields with a JSON patch
    migrated = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "T9",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    new = json_patch(
        live, [{"op": "replace", "path": "/metadata/managedFields", "value": migrated}]
    )
    out = update(live, new, "kubectl")
    assert out["metadata"]["managedFields"] == migrated
    # [{}] resets them
    reset = merge_patch(out, {"metadata": {"managedFields": [{}]}})
    out = update(out, reset, "kubectl-patch")
    assert "managedFields" not in out["metadata"]
    # a subresource write never takes them from the body
    sub = merge_patch(live, {"metadata": {"managedFields": migrated}, "status": {"x": 1}})
    out = update(live, sub, "ctrl", subresource="status")
    assert set(entries(out)) == {"kubectl-client-side-apply/Apply", "ctrl/Update/status"}


def test_record_update_then_apply_roundtrip_fieldsv1_with_foreign_formatting() -> None:
    live = cm({"a": "1"}, finalizers=["f"])
    live["metadata"]["managedFields"] = [
        {
            "manager": "other",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:finalizers": {".": {}, 'v:"f"': {}}},
                "f:data": {".": {}, "f:a": {}},
            },
        }
    ]
    with pytest.raises(ApplyConflict) as info:
        apply(live, cm({"a": "2"}, finalizers=["g"]), "me")
    assert info.value.conflicts == [("other", ".data.a")]
    out = apply(live, cm({"b": "2"}, finalizers=["f"]), "me")
    assert fields(out, "me/Apply") == {
        "f:data": {"f:b": {}},
        "f:metadata": {"f:finalizers": {'v:"f"': {}}},
    }
    assert entries(out)["other/Update"] == live["metadata"]["managedFields"][0]


def test_entries_are_sorted_apply_first_then_time() -> None:
    live = update(None, cm({"a": "1"}), "creator", now="T1")
    live = apply(live, cm({"b": "1"}), "applier", now="T2")
    new = merge_patch(live, {"data": {"c": "1"}})
    live = update(live, new, "editor", now="T0")
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == [
        "applier",
        "editor",
        "creator",
    ]


def test_untracked_metadata_and_nulls() -> None:
    live = apply(None, cm({"a": "1"}), "m")
    live["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    live["metadata"]["uid"] = "u1"
    body = cm({"a": "1", "n": None}, creationTimestamp=None, labels=None)  # type: ignore[dict-item]
    out = apply(live, body, "m")
    assert out["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert out["metadata"]["uid"] == "u1"
    assert out["data"] == {"a": "1"}
    assert fields(out, "m/Apply") == {"f:data": {"f:a": {}, "f:n": {}}}
    # nested nulls inside a new subtree are not stored
    out = apply(out, {**cm({"a": "1"}), "spec": {"x": {"y": None, "z": 1}}}, "m")
    assert out["spec"] == {"x": {"z": 1}}
