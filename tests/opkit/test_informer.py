"""SharedInformer: handler semantics on an in-memory ListerWatcher, then fault scenarios against
the embedded API server."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import wait_for
from informer_fakes import FakeAPI, make_obj

from opkit import errors
from opkit.client import NO_RETRY, Client, ResourceClient
from opkit.clock import FakeClock
from opkit.informer import (
    NAMESPACE_INDEX,
    BackoffConfig,
    DeletedFinalStateUnknown,
    ListOptions,
    Obj,
    ReflectorConfig,
    SharedInformer,
    meta_namespace_key,
    wait_for_cache_sync,
)
from opkit.testing import APIServer

FAST = ReflectorConfig(backoff=BackoffConfig(initial=0.01, cap=0.05, jitter=0.0))


def name_of(o: Any) -> str:
    if isinstance(o, DeletedFinalStateUnknown):
        return f"tombstone:{o.key}"
    return str(o["metadata"]["name"])


class Recorder:
    """Event handler that records ("add"|"update"|"delete", details) tuples."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[Any, ...]] = []
        self.objects: list[Any] = []

    def on_add(self, obj: Obj, initial: bool) -> None:
        with self.lock:
            self.events.append(("add", name_of(obj), initial))
            self.objects.append(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        with self.lock:
            self.events.append(
                ("update", name_of(new), old["metadata"].get("resourceVersion"))
                if old is not new
                else ("update", name_of(new), "same-object")
            )
            self.objects.append(new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        with self.lock:
            self.events.append(("delete", name_of(obj)))
            self.objects.append(obj)

    def snapshot(self) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self.events)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.snapshot() if e[0] == kind)

    def handlers(self) -> dict[str, Any]:
        return {"on_add": self.on_add, "on_update": self.on_update, "on_delete": self.on_delete}


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and "process_request_thread" not in t.name
    ]
    assert not leaked, f"leaked threads: {[t.name for t in leaked]}"


@pytest.fixture
def informers(no_thread_leaks: None) -> Iterator[list[SharedInformer]]:
    made: list[SharedInformer] = []
    yield made
    for inf in made:
        inf.stop()


def new_informer(made: list[SharedInformer], source: Any, **kw: Any) -> SharedInformer:
    kw.setdefault("reflector_config", FAST)
    inf = SharedInformer(source, name="test", **kw)
    made.append(inf)
    return inf


def populated(n: int, namespaces: int = 2) -> FakeAPI:
    api = FakeAPI()
    for i in range(n):
        api.create(make_obj(f"o{i}", f"ns{i % namespaces}"))
    return api


# -- delivery ---------------------------------------------------------------------------------


def test_initial_list_then_live_events_reach_handlers(informers: list[SharedInformer]) -> None:
    api = populated(3)
    inf = new_informer(informers, api)
    rec = Recorder()
    reg = inf.add_event_handler(**rec.handlers())
    assert not reg.has_synced()
    inf.start()
    wait_for(reg.has_synced, "handler synced")
    assert inf.has_synced()
    assert sorted(rec.snapshot()) == [("add", f"o{i}", True) for i in range(3)]
    api.create(make_obj("late", "ns0"))
    old_rv = api.objects["ns0/o0"]["metadata"]["resourceVersion"]
    api.update("ns0/o0", x="1")
    api.delete("ns1/o1")
    wait_for(lambda: len(rec.snapshot()) == 6, "live events")
    assert rec.snapshot()[3:] == [
        ("add", "late", False),
        ("update", "o0", old_rv),
        ("delete", "o1"),
    ]
    assert sorted(inf.store.list_keys()) == ["ns0/late", "ns0/o0", "ns0/o2"]
    assert inf.last_sync_resource_version() == str(api.rv)
    assert sorted(inf.indexer.index_keys(NAMESPACE_INDEX, "ns0")) == [
        "ns0/late",
        "ns0/o0",
        "ns0/o2",
    ]


def test_single_argument_add_handler(informers: list[SharedInformer]) -> None:
    api = populated(2)
    inf = new_informer(informers, api)
    seen: list[str] = []
    reg = inf.add_event_handler(on_add=lambda obj: seen.append(name_of(obj)))
    inf.start()
    wait_for(reg.has_synced, "synced")
    assert sorted(seen) == ["o0", "o1"]


def test_cache_is_updated_before_handlers_hear(informers: list[SharedInformer]) -> None:
    api = populated(0)
    inf = new_informer(informers, api)
    found: list[bool] = []
    inf.add_event_handler(on_add=lambda o: found.append(inf.store.get(o) is not None))
    inf.start()
    wait_for(inf.has_synced, "synced")
    api.create(make_obj("x"))
    wait_for(lambda: found == [True], "add seen with cache populated")


def test_handler_added_late_gets_synthetic_adds_first(informers: list[SharedInformer]) -> None:
    api = populated(4)
    inf = new_informer(informers, api)
    inf.start()
    wait_for(inf.has_synced, "synced")
    rec = Recorder()
    reg = inf.add_event_handler(**rec.handlers())
    api.create(make_obj("after"))
    wait_for(lambda: len(rec.snapshot()) == 5, "replay plus live add")
    events = rec.snapshot()
    assert sorted(events[:4]) == [("add", f"o{i}", True) for i in range(4)]
    assert events[4] == ("add", "after", False)
    wait_for(reg.has_synced, "late handler synced")


def test_late_handler_has_synced_waits_for_its_replay(informers: list[SharedInformer]) -> None:
    api = populated(3)
    inf = new_informer(informers, api)
    inf.start()
    wait_for(inf.has_synced, "synced")
    gate = threading.Event()
    reg = inf.add_event_handler(on_add=lambda o, initial: gate.wait(10))
    assert inf.has_synced()
    assert not reg.has_synced()  # informer synced, but this handler has not seen the objects
    gate.set()
    wait_for(reg.has_synced, "replay delivered")


def test_slow_handler_does_not_block_others(informers: list[SharedInformer]) -> None:
    api = populated(1)
    inf = new_informer(informers, api)
    gate = threading.Event()
    slow: list[str] = []

    def slow_add(obj: Obj, initial: bool) -> None:
        gate.wait(10)
        slow.append(name_of(obj))

    fast = Recorder()
    inf.add_event_handler(on_add=slow_add)
    inf.add_event_handler(**fast.handlers())
    inf.start()
    for i in range(50):
        api.create(make_obj(f"n{i:02d}"))
    wait_for(lambda: fast.count("add") == 51, "fast handler got everything")
    assert slow == []
    gate.set()
    wait_for(lambda: len(slow) == 51, "slow handler caught up")
    assert slow[1:] == [f"n{i:02d}" for i in range(50)]  # in order


def test_handler_exception_is_logged_and_delivery_continues(
    informers: list[SharedInformer], caplog: pytest.LogCaptureFixture
) -> None:
    api = populated(0)
    inf = new_informer(informers, api)
    seen: list[str] = []

    def flaky(obj: Obj, initial: bool) -> None:
        if name_of(obj) == "bad":
            raise RuntimeError("handler bug")
        seen.append(name_of(obj))

    inf.add_event_handler(on_add=flaky)
    inf.start()
    wait_for(inf.has_synced, "synced")
    with caplog.at_level(logging.ERROR, logger="opkit.informer"):
        api.create(make_obj("good1"))
        api.create(make_obj("bad"))
        api.create(make_obj("good2"))
        wait_for(lambda: seen == ["good1", "good2"], "delivery after the exception")
    assert any("handler bug" in (r.exc_text or "") for r in caplog.records)


def test_remove_event_handler_stops_delivery(informers: list[SharedInformer]) -> None:
    api = populated(0)
    inf = new_informer(informers, api)
    a, b = Recorder(), Recorder()
    reg_a = inf.add_event_handler(**a.handlers())
    inf.add_event_handler(**b.handlers())
    inf.start()
    api.create(make_obj("one"))
    wait_for(lambda: a.count("add") == 1 and b.count("add") == 1, "both got one")
    inf.remove_event_handler(reg_a)
    api.create(make_obj("two"))
    wait_for(lambda: b.count("add") == 2, "b got two")
    assert a.count("add") == 1


def test_deleted_while_disconnected_arrives_as_tombstone(informers: list[SharedInformer]) -> None:
    api = populated(3)
    inf = new_informer(informers, api)
    rec = Recorder()
    inf.add_event_handler(**rec.handlers())
    inf.start()
    wait_for(inf.has_synced, "synced")
    wait_for(lambda: len(api.open_streams()) == 1, "watching")
    last_seen = api.objects["ns1/o1"]["metadata"]["resourceVersion"]
    o0_rv = api.objects["ns0/o0"]["metadata"]["resourceVersion"]
    # Disconnect, and keep the server unreachable while things change and history is compacted.
    api.refuse_watches = True
    api.break_watches(errors.WatchStalled("silent"))
    wait_for(lambda: len(api.watch_calls) >= 3, "reconnects refused")
    api.delete("ns1/o1")
    api.update("ns0/o0", changed="yes")
    api.compact()
    api.refuse_watches = False
    wait_for(lambda: inf.reflector.lists == 2, "relist after 410")
    wait_for(lambda: ("delete", "tombstone:ns1/o1") in rec.snapshot(), "tombstone")
    tomb = next(o for o in rec.objects if isinstance(o, DeletedFinalStateUnknown))
    assert tomb.key == "ns1/o1"
    assert tomb.obj is not None and tomb.obj["metadata"]["resourceVersion"] == last_seen
    wait_for(lambda: ("update", "o0", o0_rv) in rec.snapshot(), "update seen via relist")
    assert sorted(inf.store.list_keys()) == sorted(api.snapshot())


def test_relist_of_unchanged_objects_is_not_an_update(informers: list[SharedInformer]) -> None:
    api = populated(2)
    inf = new_informer(informers, api)
    rec = Recorder()
    inf.add_event_handler(**rec.handlers())
    inf.start()
    wait_for(lambda: len(api.open_streams()) == 1, "watching")
    api.break_watches(errors.Gone(410, "Expired", "too old"))
    wait_for(lambda: inf.reflector.lists == 2 and len(api.open_streams()) == 1, "relisted")
    api.create(make_obj("marker"))
    wait_for(lambda: rec.count("add") == 3, "marker")
    assert rec.count("update") == 0


# -- the first list (filled in one pass, no per-object queueing) ------------------------------


def by_parity(o: Obj) -> list[str]:
    return ["odd" if int(o["metadata"]["name"][1:]) % 2 else "even"]


def test_first_list_fills_cache_and_indexes_before_handlers_hear(
    informers: list[SharedInformer],
) -> None:
    api = populated(6, namespaces=3)
    inf = new_informer(informers, api, indexers={"parity": by_parity})
    seen_by_first: list[tuple[str, bool, int, list[str]]] = []
    plain: list[str] = []

    def on_add(o: Obj, initial: bool) -> None:
        seen_by_first.append(
            (
                name_of(o),
                initial,
                len(inf.store.list_keys()),
                sorted(inf.indexer.index_keys("parity", "odd")),
            )
        )

    first = inf.add_event_handler(on_add=on_add)
    second = inf.add_event_handler(on_add=lambda o: plain.append(name_of(o)))
    inf.start()
    wait_for(lambda: first.has_synced() and second.has_synced(), "both handlers synced")
    listed = [f"o{i}" for i in sorted(range(6), key=lambda i: f"ns{i % 3}/o{i}")]
    odd = ["ns0/o3", "ns1/o1", "ns2/o5"]
    assert seen_by_first == [(name, True, 6, odd) for name in listed]  # in list order
    assert plain == listed
    assert sorted(inf.indexer.index_keys(NAMESPACE_INDEX, "ns1")) == ["ns1/o1", "ns1/o4"]
    api.create(make_obj("o7", "ns1"))
    wait_for(lambda: len(plain) == 7, "a live add")
    assert seen_by_first[-1] == ("o7", False, 7, [*odd[:2], "ns1/o7", odd[2]])


class DuplicatingAPI(FakeAPI):
    """Lists one object twice (second copy newer), as no server should but a fake might."""

    def list(self, options: ListOptions) -> dict[str, Any]:
        page = super().list(options)
        extra = dict(page["items"][0], metadata=dict(page["items"][0]["metadata"]))
        extra["metadata"]["resourceVersion"] = "999"
        page["items"].append(extra)
        return page


def test_first_list_with_a_repeated_key_is_an_add_then_an_update(
    informers: list[SharedInformer],
) -> None:
    api = DuplicatingAPI()
    api.create(make_obj("a"))
    api.create(make_obj("b"))
    inf = new_informer(informers, api)
    rec = Recorder()
    reg = inf.add_event_handler(**rec.handlers())
    inf.start()
    wait_for(reg.has_synced, "synced")
    wait_for(lambda: len(rec.snapshot()) == 3, "three notifications")
    first_rv = api.objects["default/a"]["metadata"]["resourceVersion"]
    assert rec.snapshot() == [("add", "a", True), ("update", "a", first_rv), ("add", "b", True)]
    cached = inf.store.get_by_key("default/a")
    assert cached is not None and cached["metadata"]["resourceVersion"] == "999"


def test_first_list_object_an_indexer_rejects_is_cached_but_not_announced(
    informers: list[SharedInformer], caplog: pytest.LogCaptureFixture
) -> None:
    def picky(o: Obj) -> list[str]:
        if o["metadata"]["name"] == "o1":
            raise RuntimeError("indexer bug")
        return ["all"]

    api = populated(3, namespaces=1)
    inf = new_informer(informers, api, indexers={"picky": picky})
    rec = Recorder()
    reg = inf.add_event_handler(**rec.handlers())
    with caplog.at_level(logging.ERROR, logger="opkit.informer"):
        inf.start()
        wait_for(reg.has_synced, "synced")
    assert rec.snapshot() == [("add", "o0", True), ("add", "o2", True)]
    assert sorted(inf.store.list_keys()) == ["ns0/o0", "ns0/o1", "ns0/o2"]
    assert sorted(inf.indexer.index_keys("picky", "all")) == ["ns0/o0", "ns0/o2"]
    assert any("cannot apply ns0/o1" in r.getMessage() for r in caplog.records)


def test_handler_removed_during_initial_delivery_gets_no_more(
    informers: list[SharedInformer],
) -> None:
    api = populated(5)
    inf = new_informer(informers, api)
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def blocking(o: Obj, initial: bool) -> None:
        seen.append(name_of(o))
        entered.set()
        release.wait(10)

    reg = inf.add_event_handler(on_add=blocking)
    other = Recorder()
    other_reg = inf.add_event_handler(**other.handlers())
    inf.start()
    assert entered.wait(10)
    remover = threading.Thread(target=inf.remove_event_handler, args=(reg,))
    remover.start()
    wait_for(lambda: reg._listener._stopped, "listener stopped")
    release.set()
    remover.join(10)
    assert not remover.is_alive()
    assert len(seen) == 1
    wait_for(other_reg.has_synced, "the other handler synced")
    assert other.count("add") == 5


# -- resync -----------------------------------------------------------------------------------


def test_resync_replays_cache_to_due_handlers_without_api_calls(
    informers: list[SharedInformer],
) -> None:
    api = populated(2)
    clock = FakeClock()
    inf = new_informer(informers, api, resync_period=10.0, clock=clock)
    every10, never, every30 = Recorder(), Recorder(), Recorder()
    inf.add_event_handler(**every10.handlers())
    inf.add_event_handler(**never.handlers(), resync_period=0)
    inf.add_event_handler(**every30.handlers(), resync_period=30.0)
    inf.start()
    wait_for(inf.has_synced, "synced")
    calls = (len(api.list_calls), len(api.watch_calls))
    for n in range(1, 4):
        clock.wait_for_waiters(1)
        clock.step(10.0)

        # (A resync skips objects whose previous deltas are still queued, so let each finish.)
        def resynced(n: int = n) -> bool:
            return every10.count("update") == 2 * n

        wait_for(resynced, f"resync {n} of two objects")
    wait_for(lambda: every30.count("update") == 2, "one resync")
    clock.wait_for_waiters(1)
    assert never.count("update") == 0
    # A resync hands the cached object as both old and new.
    assert {e[2] for e in every10.snapshot() if e[0] == "update"} == {"same-object"}
    assert (len(api.list_calls), len(api.watch_calls)) == calls


def test_resync_period_rules() -> None:
    api = FakeAPI()
    inf = SharedInformer(api, resync_period=10.0, name="rules")
    assert inf.resync_check_period == 10.0
    assert inf.add_event_handler(resync_period=0.2).resync_period == 1.0  # 1 s minimum
    assert inf.resync_check_period == 1.0  # not started: the check period follows
    assert inf.add_event_handler(resync_period=0).resync_period == 0.0
    assert inf.add_event_handler().resync_period == 10.0

    no_resync = SharedInformer(api, name="no-resync")
    # An informer built without resync never resyncs, whatever a handler asks for.
    assert no_resync.add_event_handler(resync_period=5.0).resync_period == 0.0


def test_short_resync_after_start_is_raised_to_check_period(
    informers: list[SharedInformer],
) -> None:
    api = populated(0)
    inf = new_informer(informers, api, resync_period=5.0, clock=FakeClock())
    inf.start()
    reg = inf.add_event_handler(resync_period=2.0)
    assert reg.resync_period == 5.0
    assert inf.resync_check_period == 5.0


# -- transform --------------------------------------------------------------------------------


def test_default_transform_drops_managed_fields(informers: list[SharedInformer]) -> None:
    api = FakeAPI()
    o = make_obj("mf")
    o["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    api.create(o)
    inf = new_informer(informers, api)
    inf.start()
    wait_for(inf.has_synced, "synced")
    cached = inf.store.get_by_key("default/mf")
    assert cached is not None and "managedFields" not in cached["metadata"]

    keep = new_informer(informers, api, transform=None)
    keep.start()
    wait_for(keep.has_synced, "synced")
    cached = keep.store.get_by_key("default/mf")
    assert cached is not None and "managedFields" in cached["metadata"]


def test_custom_transform_applies_to_watch_events(informers: list[SharedInformer]) -> None:
    api = FakeAPI()

    def slim(o: Obj) -> Obj:
        o.pop("data", None)
        return o

    inf = new_informer(informers, api, transform=slim)
    rec = Recorder()
    inf.add_event_handler(**rec.handlers())
    inf.start()
    wait_for(inf.has_synced, "synced")
    api.create(make_obj("a", k="v"))
    wait_for(lambda: rec.count("add") == 1, "add")
    assert "data" not in rec.objects[0]


# -- lifecycle --------------------------------------------------------------------------------


def test_stop_joins_every_thread(no_thread_leaks: None) -> None:
    api = populated(2)
    inf = SharedInformer(api, resync_period=30.0, name="lifecycle", reflector_config=FAST)
    for _ in range(3):
        inf.add_event_handler(on_add=lambda o: None)
    inf.start()
    wait_for(inf.has_synced, "synced")
    assert sum(t.name.startswith("informer-lifecycle") for t in threading.enumerate()) == 6
    inf.stop()
    assert not any(t.name.startswith("informer-lifecycle") for t in threading.enumerate())
    inf.stop()  # idempotent
    with pytest.raises(RuntimeError):
        inf.add_event_handler(on_add=lambda o: None)
    with pytest.raises(RuntimeError):
        inf.start()


def test_run_blocks_until_stop_event(no_thread_leaks: None) -> None:
    api = populated(1)
    inf = SharedInformer(api, name="run", reflector_config=FAST)
    stop = threading.Event()
    t = threading.Thread(target=inf.run, args=(stop,))
    t.start()
    wait_for(inf.has_synced, "synced")
    assert t.is_alive()
    stop.set()
    t.join(10)
    assert not t.is_alive()
    assert inf.stopped


def test_wait_for_cache_sync(informers: list[SharedInformer]) -> None:
    api = populated(3)
    a = new_informer(informers, api)
    reg = a.add_event_handler(on_add=lambda o: None)
    a.start()
    assert wait_for_cache_sync(10.0, a, reg)
    never_started = new_informer(informers, FakeAPI())
    clock = FakeClock()
    result: list[bool] = []
    t = threading.Thread(
        target=lambda: result.append(wait_for_cache_sync(1.0, never_started, clock=clock))
    )
    t.start()
    for _ in range(10):  # polls every 100 ms of clock time
        clock.wait_for_waiters(1)
        clock.step(0.1)
    t.join(10)
    assert result == [False]


def test_resource_client_selectors_are_rejected_for_lister_watcher() -> None:
    with pytest.raises(TypeError):
        SharedInformer(FakeAPI(), namespace="x")


# -- against the embedded API server -----------------------------------------------------------

NS = "inf"


@pytest.fixture
def kube(apiserver: APIServer, kubeconfig: str) -> Iterator[Client]:
    """A client without its own retries, so the reflector's backoff is what is exercised."""
    c = Client.from_kubeconfig(kubeconfig, retry=NO_RETRY)
    c.resource("v1", "Namespace").create({"metadata": {"name": NS}})
    try:
        yield c
    finally:
        c.close()


def cm(name: str, **data: str) -> Obj:
    return {"metadata": {"name": name, "namespace": NS}, "data": dict(data)}


def rvs(items: list[Obj]) -> dict[str, str]:
    return {meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in items}


def assert_converges(inf: SharedInformer, rc: ResourceClient, namespace: str | None = NS) -> None:
    """The cache ends up equal (keys and RVs) to a fresh list from the server."""

    def same() -> bool:
        fresh = rc.list(namespace)["items"]
        return rvs(inf.store.list()) == rvs(fresh)

    wait_for(same, "cache to equal a fresh list")


def list_requests(server: APIServer, plural: str = "configmaps") -> int:
    return sum(
        1
        for method, path, query, _ in server.request_log
        if method == "GET" and path.endswith(f"/{plural}") and "watch=" not in query
    )


def watch_requests(server: APIServer, plural: str = "configmaps") -> int:
    return sum(
        1
        for method, path, query, _ in server.request_log
        if method == "GET" and path.endswith(f"/{plural}") and "watch=" in query
    )


def server_informer(
    made: list[SharedInformer], rc: ResourceClient, **config: Any
) -> tuple[SharedInformer, Recorder]:
    config.setdefault("backoff", BackoffConfig(initial=0.02, cap=0.1, jitter=0.0))
    clock = config.pop("clock", None)
    inf = SharedInformer(
        rc, namespace=NS, name="cms", clock=clock, reflector_config=ReflectorConfig(**config)
    )
    made.append(inf)
    rec = Recorder()
    inf.add_event_handler(**rec.handlers())
    return inf, rec


def test_server_list_watch_and_paging(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    rc = kube.resource("v1", "ConfigMap")
    for i in range(5):
        rc.create(cm(f"c{i}"))
    apiserver.clear_request_log()
    inf, rec = server_informer(informers, rc, page_size=2)
    inf.start()
    wait_for(lambda: rec.count("add") == 5, "initial adds")
    lists = [
        q
        for m, p, q, _ in apiserver.request_log
        if m == "GET" and "watch=" not in q and p.endswith("/configmaps")
    ]
    # The server may ignore the limit for resourceVersion=0 (as the watch cache does).
    assert "resourceVersion=0" in lists[0] and "limit=2" in lists[0]
    assert all("continue=" in q and "resourceVersion" not in q for q in lists[1:])
    first = rc.get("c0", NS)
    first["data"] = {"x": "y"}
    rc.update(first)
    rc.delete("c1", NS)
    rc.create(cm("c9"))
    wait_for(lambda: len(rec.snapshot()) == 8, "live events")
    assert [e[0] for e in rec.snapshot()[5:]] == ["update", "delete", "add"]
    assert_converges(inf, rc)


def test_server_timeout_and_bookmarks_move_the_watch_forward(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    apiserver.bookmark_interval = 0.2
    rc = kube.resource("v1", "ConfigMap")
    inf, _ = server_informer(informers, rc, min_watch_timeout=1.0, max_watch_timeout=1.0)
    inf.start()
    wait_for(inf.has_synced, "synced")
    # A write elsewhere moves the global RV; only a bookmark can tell this watch about it.
    secret = kube.resource("v1", "Secret").create({"metadata": {"name": "s", "namespace": NS}})
    target = int(secret["metadata"]["resourceVersion"])
    wait_for(lambda: int(inf.last_sync_resource_version()) >= target, "bookmark RV")
    # The server ends each watch after timeoutSeconds=1; the reflector just watches again.
    wait_for(lambda: inf.reflector.watches >= 2, "a second watch after the server timeout")
    rc.create(cm("after-timeout"))
    assert_converges(inf, rc)
    assert inf.reflector.lists == 1
    watch_queries = [q for m, p, q, _ in apiserver.request_log if "watch=" in q]
    assert watch_queries and all("timeoutSeconds=1" in q for q in watch_queries)
    assert all("allowWatchBookmarks=true" in q for q in watch_queries)


def test_server_dropped_watches_rewatch_without_relist(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    rc = kube.resource("v1", "ConfigMap")
    rc.create(cm("a"))
    inf, rec = server_informer(informers, rc)
    inf.start()
    wait_for(inf.has_synced, "synced")
    apiserver.clear_request_log()
    for n in range(3):
        wait_for(lambda: apiserver.watch_count >= 1, "a watch is open")
        before = watch_requests(apiserver)
        assert apiserver.faults.drop_watches("configmaps") >= 1
        rc.create(cm(f"after-drop-{n}"))

        def rewatched(before: int = before) -> bool:
            return watch_requests(apiserver) > before

        wait_for(rewatched, "re-watch")
    wait_for(lambda: rec.count("add") == 4, "every add delivered")
    assert list_requests(apiserver) == 0  # re-watched from the last RV every time
    assert_converges(inf, rc)
    assert inf.reflector.lists == 1
    watch_queries = [q for m, p, q, _ in apiserver.request_log if "watch=" in q]
    assert all("resourceVersion=" in q and "resourceVersion=0" not in q for q in watch_queries)


def test_server_stalled_watch_is_detected_and_recovered(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    apiserver.bookmark_interval = 0.2  # well inside the 1 s read timeout when healthy
    rc = kube.resource("v1", "ConfigMap")
    inf, rec = server_informer(informers, rc, read_timeout=1.0)
    inf.start()
    wait_for(inf.has_synced, "synced")
    watches = inf.reflector.watches
    apiserver.faults.stall_watches("configmaps")
    rc.create(cm("during-stall"))
    # The silent stream is noticed (WatchStalled after 1 s) and a new watch is opened.
    wait_for(lambda: inf.reflector.watches > watches, "stall detected, re-watch")
    apiserver.faults.unstall_watches()
    wait_for(lambda: rec.count("add") == 1, "event after the stall")
    assert_converges(inf, rc)
    assert inf.reflector.lists == 1


def test_server_watch_410_relists_and_tombstones_deleted_objects(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    rc = kube.resource("v1", "ConfigMap")
    for name in ("keep", "doomed", "changed"):
        rc.create(cm(name))
    inf, rec = server_informer(informers, rc)
    inf.start()
    wait_for(inf.has_synced, "synced")
    last_doomed = rc.get("doomed", NS)
    # Disconnect: refuse new watches, close the open one, change things, compact history.
    apiserver.faults.fail(verb="watch", resource="configmaps", times=10_000, code=503)
    apiserver.faults.drop_watches("configmaps")
    rc.delete("doomed", NS)
    changed = rc.get("changed", NS)
    changed["data"] = {"v": "2"}
    rc.update(changed)
    rc.create(cm("born"))
    apiserver.compact()
    apiserver.faults.clear()
    wait_for(lambda: inf.reflector.relists == 1, "relist after 410")
    assert_converges(inf, rc)
    wait_for(lambda: ("delete", "tombstone:inf/doomed") in rec.snapshot(), "tombstone")
    tomb = next(o for o in rec.objects if isinstance(o, DeletedFinalStateUnknown))
    assert tomb.obj is not None
    assert tomb.obj["metadata"]["resourceVersion"] == last_doomed["metadata"]["resourceVersion"]
    events = rec.snapshot()
    assert ("add", "born", False) in events
    assert any(e[:2] == ("update", "changed") for e in events)
    # The relist asked for "not older than" the last RV (not "0", not a quorum read), unpaged.
    list_queries = [
        q
        for m, p, q, _ in apiserver.request_log
        if m == "GET" and p.endswith("/configmaps") and "watch=" not in q
    ]
    assert "resourceVersion=0" in list_queries[0]
    # (assert_converges' own lists send no resourceVersion at all)
    relists = [q for q in list_queries[1:] if "resourceVersion" in q]
    assert len(relists) == 1
    assert re.fullmatch(r"resourceVersion=[1-9]\d*", relists[0]), relists


def test_server_error_bursts_back_off_on_the_clock_then_converge(
    apiserver: APIServer, kube: Client, informers: list[SharedInformer]
) -> None:
    rc = kube.resource("v1", "ConfigMap")
    rc.create(cm("a"))
    clock = FakeClock()
    apiserver.faults.fail(verb="list", resource="configmaps", times=3, code=500)
    apiserver.faults.fail(verb="watch", resource="configmaps", times=3, code=429, retry_after=1)
    apiserver.clear_request_log()
    inf, rec = server_informer(
        informers, rc, clock=clock, backoff=BackoffConfig(initial=0.8, jitter=0.0)
    )
    inf.start()
    # Each failure parks the reflector on the (fake) clock; nothing is retried until it moves.
    for expected_lists in (1, 2, 3):
        clock.wait_for_waiters(1)
        assert inf.reflector.list_requests == expected_lists
        clock.step(5.0)
    wait_for(inf.has_synced, "synced after the list errors")
    for expected_watches in (1, 2, 3):
        clock.wait_for_waiters(1)
        assert inf.reflector.watches == expected_watches
        clock.step(30.0)  # the backoff kept growing since the list failures (0.8 ... 25.6)
    wait_for(lambda: inf.reflector.watches == 4 and apiserver.watch_count == 1, "watching")
    rc.create(cm("b"))
    wait_for(lambda: rec.count("add") == 2, "live add")
    # 3 failed lists + 1; the 429s on watch did not cause relists.
    assert inf.reflector.list_requests == 4 and inf.reflector.lists == 1
    assert list_requests(apiserver) == 4
    assert_converges(inf, rc)
