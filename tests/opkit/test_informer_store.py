"""Unit tests of the informer cache (Store/indexers), the key helpers and the DeltaFIFO."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from opkit.informer import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Delta,
    DeltaFIFO,
    DeltaType,
    FIFOClosedError,
    InitialList,
    Obj,
    Store,
    deletion_handling_key,
    drop_managed_fields,
    meta_namespace_key,
    split_key,
)


def obj(name: str, ns: str | None = "default", rv: str = "1", **labels: str) -> Obj:
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    return {"metadata": meta}


def by_app(o: Obj) -> list[str]:
    labels = o["metadata"].get("labels") or {}
    return [labels["app"]] if "app" in labels else []


def by_all_labels(o: Obj) -> list[str]:
    return sorted(f"{k}={v}" for k, v in (o["metadata"].get("labels") or {}).items())


# -- keys -------------------------------------------------------------------------------------


def test_keys_for_namespaced_and_cluster_scoped_objects() -> None:
    assert meta_namespace_key(obj("a", "ns")) == "ns/a"
    assert meta_namespace_key(obj("node1", None)) == "node1"
    assert meta_namespace_key({"metadata": {"name": "x", "namespace": ""}}) == "x"


def test_key_of_object_without_name_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        meta_namespace_key({"metadata": {}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        meta_namespace_key({"kind": "Status"})


def test_deletion_handling_key_unwraps_tombstones() -> None:
    tomb = DeletedFinalStateUnknown("ns/gone", None)
    assert deletion_handling_key(tomb) == "ns/gone"
    assert deletion_handling_key(obj("a", "ns")) == "ns/a"


@pytest.mark.parametrize(
    ("key", "expected"), [("ns/a", ("ns", "a")), ("a", ("", "a")), ("x/y", ("x", "y"))]
)
def test_split_key(key: str, expected: tuple[str, str]) -> None:
    assert split_key(key) == expected


@pytest.mark.parametrize("key", ["", "a/b/c", "/a", "a/"])
def test_split_key_rejects_malformed(key: str) -> None:
    with pytest.raises(ValueError, match="unexpected key format"):
        split_key(key)


def test_drop_managed_fields_transform() -> None:
    o = obj("a")
    o["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert drop_managed_fields(o) is o
    assert "managedFields" not in o["metadata"]
    assert drop_managed_fields({"kind": "X"}) == {"kind": "X"}


# -- store ------------------------------------------------------------------------------------


def test_store_add_update_delete_get() -> None:
    s = Store()
    a = obj("a")
    s.add(a)
    assert s.get_by_key("default/a") is a  # shared by reference, never copied
    assert s.get(obj("a")) is a
    a2 = obj("a", rv="2")
    s.update(a2)
    assert s.get_by_key("default/a") is a2
    assert len(s) == 1
    assert "default/a" in s
    s.delete(obj("a"))
    assert s.get_by_key("default/a") is None
    s.delete(obj("a"))  # deleting a missing key is fine
    assert s.list() == []


def test_store_delete_accepts_tombstone() -> None:
    s = Store()
    s.add(obj("a"))
    s.delete(DeletedFinalStateUnknown("default/a", None))
    assert s.list_keys() == []


def test_store_list_and_list_keys() -> None:
    s = Store()
    s.add(obj("a"))
    s.add(obj("b", "other"))
    s.add(obj("n1", None))
    assert sorted(s.list_keys()) == ["default/a", "n1", "other/b"]
    assert sorted(o["metadata"]["name"] for o in s.list()) == ["a", "b", "n1"]


def test_namespace_index_is_built_in() -> None:
    s = Store()
    s.add(obj("a", "ns1"))
    s.add(obj("b", "ns1"))
    s.add(obj("c", "ns2"))
    s.add(obj("node", None))
    assert sorted(s.index_keys(NAMESPACE_INDEX, "ns1")) == ["ns1/a", "ns1/b"]
    assert [o["metadata"]["name"] for o in s.by_index(NAMESPACE_INDEX, "ns2")] == ["c"]
    assert s.index_keys(NAMESPACE_INDEX, "") == ["node"]
    assert sorted(s.list_index_func_values(NAMESPACE_INDEX)) == ["", "ns1", "ns2"]
    assert NAMESPACE_INDEX not in Store(namespace_index=False).get_indexers()


def test_index_follows_updates_and_deletes() -> None:
    s = Store({"app": by_app})
    s.add(obj("a", app="web"))
    s.add(obj("b", app="web"))
    assert sorted(s.index_keys("app", "web")) == ["default/a", "default/b"]
    s.update(obj("a", rv="2", app="db"))
    assert s.index_keys("app", "web") == ["default/b"]
    assert s.index_keys("app", "db") == ["default/a"]
    s.update(obj("a", rv="3"))  # label removed
    assert s.index_keys("app", "db") == []
    assert "db" not in s.list_index_func_values("app")  # empty buckets are dropped
    s.delete(obj("b"))
    assert s.list_index_func_values("app") == []


def test_multi_value_index_and_index_query() -> None:
    s = Store({"labels": by_all_labels})
    s.add(obj("a", app="web", tier="fe"))
    s.add(obj("b", app="web", tier="be"))
    s.add(obj("c", app="db", tier="be"))
    assert sorted(s.index_keys("labels", "tier=be")) == ["default/b", "default/c"]
    probe = obj("probe", app="db", tier="fe")  # matches a (tier=fe) and c (app=db)
    assert sorted(o["metadata"]["name"] for o in s.index("labels", probe)) == ["a", "c"]
    s.update(obj("b", rv="2", app="web", tier="fe"))
    assert sorted(s.index_keys("labels", "tier=fe")) == ["default/a", "default/b"]
    assert s.index_keys("labels", "tier=be") == ["default/c"]


def test_add_indexers_after_items_exist() -> None:
    s = Store()
    s.add(obj("a", app="web"))
    s.add(obj("b", app="db"))
    s.add_indexers({"app": by_app})
    assert s.index_keys("app", "web") == ["default/a"]
    s.add(obj("c", app="web"))
    assert sorted(s.index_keys("app", "web")) == ["default/a", "default/c"]
    assert set(s.get_indexers()) == {NAMESPACE_INDEX, "app"}


def test_add_indexers_conflict_installs_nothing() -> None:
    s = Store({"app": by_app})
    with pytest.raises(ValueError, match="indexer conflict: app"):
        s.add_indexers({"app": by_app, "labels": by_all_labels})
    assert "labels" not in s.get_indexers()


def test_unknown_index_name() -> None:
    s = Store()
    with pytest.raises(KeyError, match="does not exist"):
        s.by_index("nope", "x")
    with pytest.raises(KeyError):
        s.index_keys("nope", "x")


def test_replace_swaps_content_and_rebuilds_indexes() -> None:
    s = Store({"app": by_app})
    s.add(obj("a", app="web"))
    s.add(obj("b", app="web"))
    s.replace([obj("b", app="db"), obj("c", "other", app="web")], "10")
    assert sorted(s.list_keys()) == ["default/b", "other/c"]
    assert s.index_keys("app", "web") == ["other/c"]
    assert s.index_keys("app", "db") == ["default/b"]
    assert s.index_keys(NAMESPACE_INDEX, "default") == ["default/b"]


def test_store_transform_hook() -> None:
    seen: list[str] = []

    def tag(o: Obj) -> Obj:
        seen.append(o["metadata"]["name"])
        o["metadata"]["annotations"] = {"transformed": "yes"}
        return o

    s = Store(transform=tag)
    s.add(obj("a"))
    s.replace([obj("b")])
    assert seen == ["a", "b"]
    got = s.get_by_key("default/b")
    assert got is not None
    assert got["metadata"]["annotations"] == {"transformed": "yes"}


def test_store_is_thread_safe_under_concurrent_writers() -> None:
    s = Store({"app": by_app})

    def writer(n: int) -> None:
        for i in range(300):
            s.add(obj(f"o{n}-{i}", app=f"a{i % 7}"))
            if i % 3 == 0:
                s.delete(obj(f"o{n}-{i}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s) == 4 * 200
    indexed = sum(len(s.index_keys("app", v)) for v in s.list_index_func_values("app"))
    assert indexed == len(s)


# -- DeltaFIFO --------------------------------------------------------------------------------


def pop_all(f: DeltaFIFO) -> list[tuple[str, list[Delta], bool]]:
    out: list[tuple[str, list[Delta], bool]] = []
    while len(f):
        f.pop(lambda item: out.append((item.key, item.deltas, item.is_in_initial_list)))
    return out


def types(deltas: list[Delta]) -> list[DeltaType]:
    return [d.type for d in deltas]


def test_fifo_accumulates_deltas_per_key_in_first_dirty_order() -> None:
    f = DeltaFIFO()
    f.add(obj("a"))
    f.add(obj("b"))
    f.update(obj("a", rv="2"))
    assert f.list_keys() == ["default/a", "default/b"]
    popped = pop_all(f)
    assert [k for k, _, _ in popped] == ["default/a", "default/b"]
    assert types(popped[0][1]) == [DeltaType.ADDED, DeltaType.UPDATED]
    assert types(popped[1][1]) == [DeltaType.ADDED]


def test_fifo_dedups_only_consecutive_deletions() -> None:
    f = DeltaFIFO()
    f.add(obj("a"))
    f.delete(obj("a", rv="2"))
    f.delete(obj("a", rv="3"))
    deltas = f.get_by_key("default/a")
    assert deltas is not None
    assert types(deltas) == [DeltaType.ADDED, DeltaType.DELETED]
    deleted = deltas[1].object
    assert isinstance(deleted, dict)
    assert deleted["metadata"]["resourceVersion"] == "2"  # the first real one is kept


def test_fifo_dedup_prefers_real_object_over_tombstone() -> None:
    f = DeltaFIFO()
    f.add(obj("a"))
    f.delete(DeletedFinalStateUnknown("default/a", obj("a")))
    f.delete(obj("a", rv="5"))
    deltas = f.get_by_key("default/a")
    assert deltas is not None
    assert types(deltas) == [DeltaType.ADDED, DeltaType.DELETED]
    assert isinstance(deltas[1].object, dict)
    # ...and a tombstone after a real deletion is dropped.
    f.delete(DeletedFinalStateUnknown("default/a", None))
    deltas = f.get_by_key("default/a")
    assert deltas is not None
    assert isinstance(deltas[-1].object, dict)
    assert len(deltas) == 2


def test_fifo_ignores_delete_of_unknown_key() -> None:
    known = Store()
    f = DeltaFIFO(known_objects=known)
    f.delete(obj("ghost"))
    assert len(f) == 0
    known.add(obj("cached"))
    f.delete(obj("cached"))
    assert f.list_keys() == ["default/cached"]


def test_fifo_replace_queues_replaced_and_tombstones_for_vanished_objects() -> None:
    known = Store()
    known.add(obj("kept"))
    known.add(obj("vanished", rv="7"))
    f = DeltaFIFO(known_objects=known)
    f.add(obj("queued-only"))  # queued but not yet processed, also gone from the new list
    f.replace([obj("kept", rv="9"), obj("new")], "20")
    got = {k: d for k, d, _ in pop_all(f)}
    assert types(got["default/kept"]) == [DeltaType.REPLACED]
    assert types(got["default/new"]) == [DeltaType.REPLACED]
    vanished = got["default/vanished"]
    assert types(vanished) == [DeltaType.DELETED]
    tomb = vanished[0].object
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/vanished"
    assert tomb.obj is not None
    assert tomb.obj["metadata"]["resourceVersion"] == "7"  # last known state
    queued = got["default/queued-only"]
    assert types(queued) == [DeltaType.ADDED, DeltaType.DELETED]
    qtomb = queued[1].object
    assert isinstance(qtomb, DeletedFinalStateUnknown)
    assert qtomb.obj is not None
    assert qtomb.obj["metadata"]["name"] == "queued-only"  # newest queued state


def test_fifo_replace_without_replaced_type_emits_sync() -> None:
    f = DeltaFIFO(emit_replaced=False)
    f.replace([obj("a")])
    [(_, deltas, _)] = pop_all(f)
    assert types(deltas) == [DeltaType.SYNC]


def test_fifo_has_synced_after_initial_population_popped() -> None:
    f = DeltaFIFO()
    assert not f.has_synced()
    f.replace([obj("a"), obj("b")], "1")
    assert not f.has_synced()
    f.add(obj("c"))  # arrives after the list: not part of the initial population
    flags: list[tuple[str, bool]] = []
    f.pop(lambda item: flags.append((item.key, item.is_in_initial_list)))
    assert not f.has_synced()
    f.pop(lambda item: flags.append((item.key, item.is_in_initial_list)))
    assert f.has_synced()
    f.pop(lambda item: flags.append((item.key, item.is_in_initial_list)))
    assert flags == [("default/a", True), ("default/b", True), ("default/c", False)]


def test_fifo_empty_initial_list_is_synced_immediately() -> None:
    f = DeltaFIFO()
    f.replace([], "5")
    assert f.has_synced()


def test_fifo_resync_skips_keys_with_pending_deltas() -> None:
    known = Store()
    known.add(obj("a"))
    known.add(obj("b"))
    f = DeltaFIFO(known_objects=known)
    f.update(obj("a", rv="2"))
    f.resync()
    got = {k: types(d) for k, d, _ in pop_all(f)}
    assert got == {"default/a": [DeltaType.UPDATED], "default/b": [DeltaType.SYNC]}


def test_fifo_transform_runs_once_and_never_on_tombstones_or_syncs() -> None:
    calls: list[str] = []

    def transform(o: Obj) -> Obj:
        calls.append(o["metadata"]["name"])
        return drop_managed_fields(o)

    known = Store()
    known.add(obj("cached"))
    f = DeltaFIFO(known_objects=known, transform=transform)
    fresh = obj("fresh")
    fresh["metadata"]["managedFields"] = [{"manager": "x"}]
    f.add(fresh)
    f.resync()  # Sync for "cached" must not be transformed again
    f.delete(DeletedFinalStateUnknown("default/cached", None))
    assert calls == ["fresh"]
    deltas = f.get_by_key("default/fresh")
    assert deltas is not None
    popped_obj = deltas[0].object
    assert isinstance(popped_obj, dict)
    assert "managedFields" not in popped_obj["metadata"]


def test_fifo_pop_batch_and_close() -> None:
    f = DeltaFIFO()
    for i in range(5):
        f.add(obj(f"o{i}"))
    batches: list[list[str]] = []
    f.pop_batch(lambda b: batches.append([i.key for i in b]), max_items=3)
    f.pop_batch(lambda b: batches.append([i.key for i in b]), max_items=3)
    assert batches == [["default/o0", "default/o1", "default/o2"], ["default/o3", "default/o4"]]
    f.close()
    assert f.closed
    with pytest.raises(FIFOClosedError):
        f.pop(lambda item: None)


def test_fifo_pop_blocks_until_an_item_arrives() -> None:
    f = DeltaFIFO()
    got: list[str] = []
    t = threading.Thread(target=lambda: f.pop(lambda item: got.append(item.key)))
    t.start()
    f.add(obj("late"))
    t.join(5)
    assert got == ["default/late"]
    assert not t.is_alive()


# -- the first list taken whole -----------------------------------------------------------------


def test_key_functions_fast_path_matches_the_rules() -> None:
    class Name(str):
        pass

    assert deletion_handling_key({"metadata": {"name": Name("n"), "namespace": "ns"}}) == "ns/n"
    assert deletion_handling_key({"metadata": {"name": "n", "namespace": ""}}) == "n"
    assert deletion_handling_key(DeletedFinalStateUnknown("ns/gone", None)) == "ns/gone"
    bad: object
    for bad in ({}, {"metadata": {}}, {"metadata": {"name": ""}}, {"metadata": {"name": 5}}, 7):
        with pytest.raises(ValueError, match=r"no metadata\.name"):
            deletion_handling_key(bad)


def test_fifo_first_list_into_empty_queue_and_cache_goes_to_the_initial_list_handler() -> None:
    taken: list[InitialList] = []
    f = DeltaFIFO(known_objects=Store(), transform=drop_managed_fields, initial_list=taken.append)
    a = obj("a")
    a["metadata"]["managedFields"] = [{"manager": "x"}]
    cluster_scoped, other = obj("b", ns=None), obj("c", ns="other")
    assert not f.has_synced()
    f.replace([a, cluster_scoped, other], "5")
    [first] = taken
    assert list(first.objects) == ["default/a", "b", "other/c"]  # list order
    assert first.objects["default/a"] is a
    assert "managedFields" not in a["metadata"]  # transformed once, on the way in
    assert first.namespaces == {"default": ["default/a"], "": ["b"], "other": ["other/c"]}
    assert len(f) == 0
    assert f.has_synced()
    # Everything after the first list is queued as usual.
    f.update(obj("a", rv="2"))
    [(key, deltas, initial)] = pop_all(f)
    assert (key, types(deltas), initial) == ("default/a", [DeltaType.UPDATED], False)


def test_fifo_initial_list_namespaces_are_left_out_unless_default_keys() -> None:
    taken: list[InitialList] = []
    f = DeltaFIFO(initial_list=taken.append, transform=lambda o: o)
    f.replace([obj("a")])
    odd = obj("b")
    odd["metadata"]["namespace"] = 5  # not a string: keyed by the key function itself
    g = DeltaFIFO(initial_list=taken.append)
    g.replace([obj("a"), odd])
    assert [(list(t.objects), t.namespaces) for t in taken] == [
        (["default/a"], None),
        (["default/a", "5/b"], None),
    ]


@pytest.mark.parametrize("before", ["cached", "queued", "populated", "duplicate"])
def test_fifo_first_list_takes_the_queue_when_not_the_first_thing(before: str) -> None:
    taken: list[InitialList] = []
    known = Store()
    f = DeltaFIFO(known_objects=known, initial_list=taken.append)
    listed = [obj("a"), obj("b")]
    if before == "cached":
        known.add(obj("gone", rv="3"))
    elif before == "queued":
        f.add(obj("early"))
    elif before == "populated":
        f.add(obj("a"))
        pop_all(f)
    else:
        listed.append(obj("a", rv="2"))
    f.replace(listed, "9")
    assert taken == []
    got = {k: (types(d), initial) for k, d, initial in pop_all(f)}
    replaced = DeltaType.REPLACED
    expected: dict[str, tuple[list[DeltaType], bool]] = {
        "cached": {
            "default/a": ([replaced], True),
            "default/b": ([replaced], True),
            "default/gone": ([DeltaType.DELETED], True),
        },
        "queued": {
            "default/early": ([DeltaType.ADDED, DeltaType.DELETED], False),
            "default/a": ([replaced], False),
            "default/b": ([replaced], False),
        },
        "populated": {"default/a": ([replaced], False), "default/b": ([replaced], False)},
        "duplicate": {"default/a": ([replaced, replaced], True), "default/b": ([replaced], True)},
    }[before]
    assert got == expected
    assert f.has_synced()


def test_fifo_first_list_drops_objects_without_a_key(caplog: pytest.LogCaptureFixture) -> None:
    taken: list[InitialList] = []
    f = DeltaFIFO(initial_list=taken.append)
    f.replace([{"metadata": {}}, obj("a")])
    assert [list(t.objects) for t in taken] == [["default/a"]]
    assert "dropping a listed object" in caplog.text


def test_store_add_all_matches_one_add_per_object() -> None:
    objects = {
        f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}".lstrip("/"): o
        for o in (obj("a", app="x"), obj("b", ns="other"), obj("c", ns=None, app="y"))
    }

    def indexes(s: Store) -> dict[str, dict[str, list[str]]]:
        return {
            name: {v: sorted(s.index_keys(name, v)) for v in s.list_index_func_values(name)}
            for name in s.get_indexers()
        }

    one_by_one = Store({"app": by_app})
    for o in objects.values():
        one_by_one.add(o)
    namespaces = {"default": ["default/a"], "other": ["other/b"], "": ["c"]}

    def unexpected(key: str, err: Exception) -> None:
        raise AssertionError(f"{key}: {err}")

    for indexers, hint in (({"app": by_app}, None), ({}, None), ({}, namespaces)):
        s = Store(indexers)
        with s._lock:
            added = s._add_all_locked(objects, unexpected, hint)
        assert added == list(objects.values())
        assert s.list_keys() == list(objects)
        expected = indexes(one_by_one)
        if not indexers:
            del expected["app"]
        assert indexes(s) == expected


def test_store_add_all_reports_objects_an_indexer_rejects() -> None:
    def picky(o: Obj) -> list[str]:
        if o["metadata"]["name"] == "bad":
            raise RuntimeError("indexer bug")
        return ["ok"]

    s = Store({"picky": picky})
    errors: list[tuple[str, str]] = []
    good, bad = obj("good"), obj("bad")
    with s._lock:
        added = s._add_all_locked(
            {"default/good": good, "default/bad": bad},
            lambda key, err: errors.append((key, str(err))),
        )
    assert added == [good]
    assert errors == [("default/bad", "indexer bug")]
    assert sorted(s.list_keys()) == ["default/bad", "default/good"]  # stored, like add()
    assert s.index_keys("picky", "ok") == ["default/good"]
