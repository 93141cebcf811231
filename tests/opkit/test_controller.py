"""Tests for opkit.controller against the embedded API server.

Waits poll real time with a generous safety timeout; nothing asserts on durations. Backoff
and requeue delays are checked through the delays requested from the rate limiter or with a
FakeClock on the controller's queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import pytest
import structlog
from helpers import wait_for

from opkit import metrics
from opkit.client import Client
from opkit.clock import FakeClock
from opkit.controller import (
    Cache,
    CacheNotStartedError,
    Controller,
    EnqueueRequestForObject,
    EnqueueRequestForOwner,
    EnqueueRequestsFromMapFunc,
    Request,
    Result,
    Source,
    TerminalError,
)
from opkit.informer import DeletedFinalStateUnknown, InformerFactory
from opkit.predicates import GenerationChangedPredicate, LabelSelectorPredicate
from opkit.testing import APIServer
from opkit.workqueue import ItemExponentialFailureRateLimiter

NS = "default"
OUR_THREADS = ("controller-", "informer-")


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]


@pytest.fixture
def cache(client: Client) -> Iterator[Cache]:
    c = Cache(InformerFactory(client))
    yield c
    c.stop()
    assert our_threads() == []


@pytest.fixture
def controllers() -> Iterator[list[Controller]]:
    """Controllers appended here are stopped before the cache (so their threads end)."""
    made: list[Controller] = []
    yield made
    for c in made:
        assert c.stop(10.0)


def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, **meta},
        "data": data or {},
    }


class Recorder:
    """A reconciler that records requests and runs an optional behaviour per call."""

    def __init__(self, behaviour: Callable[[Request, int], Result | None] | None = None) -> None:
        self.calls: list[Request] = []
        self.lock = threading.Lock()
        self.behaviour = behaviour

    def reconcile(self, request: Request) -> Result | None:
        with self.lock:
            self.calls.append(request)
            n = sum(1 for r in self.calls if r == request)
        if self.behaviour is not None:
            return self.behaviour(request, n)
        return None

    def count(self, request: Request | None = None) -> int:
        with self.lock:
            return len(self.calls) if request is None else self.calls.count(request)


class RecordingLimiter:
    """Wraps a rate limiter and records every delay it hands out."""

    def __init__(self, base: float = 0.001, cap: float = 0.05) -> None:
        self.inner = ItemExponentialFailureRateLimiter(base, cap)
        self.delays: list[tuple[Hashable, float]] = []
        self.forgotten: list[Hashable] = []

    def when(self, item: Hashable) -> float:
        d = self.inner.when(item)
        self.delays.append((item, d))
        return d

    def forget(self, item: Hashable) -> None:
        self.forgotten.append(item)
        self.inner.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.inner.num_requeues(item)


def counter(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


# -- requests, results, handlers (no server) -----------------------------------------------------


def test_request_key_and_constructors() -> None:
    r = Request("ns", "a")
    assert r.key == "ns/a" and str(r) == "ns/a"
    assert Request("", "node-1").key == "node-1"
    assert Request.from_key("ns/a") == r
    assert Request.from_key("node-1") == Request("", "node-1")
    assert Request.from_object({"metadata": {"name": "a", "namespace": "ns"}}) == r
    assert len({r, Request("ns", "a"), Request("ns", "b")}) == 2
    with pytest.raises(AttributeError):
        r.name = "b"  # type: ignore[misc]
    assert Result() == Result(requeue=False, requeue_after=0.0)


def test_enqueue_for_owner_uses_controller_reference_group_and_kind() -> None:
    child = {
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "ownerReferences": [
                {"apiVersion": "example.com/v1", "kind": "Db", "name": "other", "uid": "1"},
                {
                    "apiVersion": "example.com/v2",
                    "kind": "Db",
                    "name": "main",
                    "uid": "2",
                    "controller": True,
                },
                {
                    "apiVersion": "other.io/v1",
                    "kind": "Db",
                    "name": "x",
                    "uid": "3",
                    "controller": True,
                },
            ],
        }
    }
    only_controller = EnqueueRequestForOwner("example.com/v1", "Db")
    assert only_controller(child) == [Request("ns", "main")]
    every_owner = EnqueueRequestForOwner("example.com/v1", "Db", only_controller=False)
    assert every_owner(child) == [Request("ns", "other"), Request("ns", "main")]
    cluster_owner = EnqueueRequestForOwner("example.com/v1", "Db", owner_namespaced=False)
    assert cluster_owner(child) == [Request("", "main")]
    assert only_controller({"metadata": {"name": "orphan", "namespace": "ns"}}) == []
    assert EnqueueRequestForObject()({"metadata": {"name": "a", "namespace": "ns"}}) == [
        Request("ns", "a")
    ]
    mapper = EnqueueRequestsFromMapFunc(lambda o: [Request("x", o["metadata"]["name"])])
    assert mapper({"metadata": {"name": "a"}}) == [Request("x", "a")]


def test_controller_validates_arguments() -> None:
    with pytest.raises(ValueError, match="name"):
        Controller("", Recorder(), for_=("v1", "ConfigMap"))
    with pytest.raises(ValueError, match="max_concurrent"):
        Controller("bad-workers", Recorder(), for_=("v1", "ConfigMap"), max_concurrent_reconciles=0)
    with pytest.raises(TypeError, match="handler"):
        Controller("bad-watch", Recorder(), for_=("v1", "ConfigMap"), watches=[Source("v1", "Pod")])
    with pytest.raises(TypeError):
        Controller("bad-for", Recorder(), for_=("v1",))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not bound"):
        _ = Controller("unbound", Recorder(), for_=("v1", "ConfigMap")).cache


class _StubInformer:
    """Captures the handlers a controller registers (to feed it tombstones directly)."""

    def __init__(self) -> None:
        self.handlers: tuple[Any, Any, Any] | None = None

    def add_event_handler(self, on_add: Any, on_update: Any, on_delete: Any) -> object:
        self.handlers = (on_add, on_update, on_delete)
        return object()


def test_delete_handler_accepts_tombstones() -> None:
    ctrl = Controller(
        "tombstones",
        Recorder(),
        for_=("v1", "ConfigMap"),
        owns=[Source("v1", "Secret", EnqueueRequestForOwner("v1", "ConfigMap"))],
    )
    for_stub, owned_stub = _StubInformer(), _StubInformer()
    ctrl._register(ctrl.for_, for_stub)  # type: ignore[arg-type]
    ctrl._register(ctrl.owns[0], owned_stub)  # type: ignore[arg-type]
    assert for_stub.handlers is not None and owned_stub.handlers is not None
    # A tombstone that lost the object still names the key.
    for_stub.handlers[2](DeletedFinalStateUnknown("ns/gone", None))
    # A tombstone with the last known state maps through the owner reference.
    last = {
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "controller": True}
            ],
        }
    }
    owned_stub.handlers[2](DeletedFinalStateUnknown("ns/s", last))
    got = {ctrl.queue.get()[0], ctrl.queue.get()[0]}
    assert got == {Request("ns", "gone"), Request("ns", "parent")}
    ctrl.queue.shut_down()


# -- against the API server ----------------------------------------------------------------------


def test_reconciles_on_create_update_delete_of_primary(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("existing"))
    seen: list[tuple[Request, dict[str, str] | None]] = []

    def reconcile(req: Request) -> None:
        obj = cache.get("v1", "ConfigMap", req.namespace, req.name)
        seen.append((req, None if obj is None else obj.get("data") or {}))

    ctrl = Controller("primary", reconcile, for_=("v1", "ConfigMap"))
    controllers.append(ctrl)
    ctrl.start(cache)
    a = Request(NS, "existing")
    wait_for(lambda: (a, {}) in seen, "initial list reconcile")
    cms.patch("existing", {"data": {"k": "v"}}, NS)
    wait_for(lambda: (a, {"k": "v"}) in seen, "update reconcile")
    cms.create(configmap("new"))
    wait_for(lambda: any(r == Request(NS, "new") for r, _ in seen), "create reconcile")
    cms.delete("existing", NS)
    wait_for(lambda: (a, None) in seen, "delete reconcile (object gone from cache)")
    assert counter("controller_runtime_reconcile_total", controller="primary", result="success")


def test_owned_objects_wake_their_controller_owner(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    secrets = client.resource("v1", "Secret")
    parent = cms.create(configmap("parent"))
    rec = Recorder()
    ctrl = Controller("owner", rec, for_=("v1", "ConfigMap"), owns=[("v1", "Secret")])
    controllers.append(ctrl)
    ctrl.start(cache)
    p = Request(NS, "parent")
    wait_for(lambda: rec.count(p) == 1, "initial reconcile")

    def owner_ref(controller: bool) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "parent",
            "uid": parent["metadata"]["uid"],
            "controller": controller,
        }

    child = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "child", "namespace": NS, "ownerReferences": [owner_ref(True)]},
        "stringData": {"a": "1"},
    }
    secrets.create(child)
    wait_for(lambda: rec.count(p) == 2, "reconcile for owned create")
    secrets.patch("child", {"stringData": {"a": "2"}}, NS)
    wait_for(lambda: rec.count(p) == 3, "reconcile for owned update")
    secrets.delete("child", NS)
    wait_for(lambda: rec.count(p) == 4, "reconcile for owned delete")
    # A non-controller owner reference does not count; the object itself is never enqueued.
    loose = dict(child)
    loose["metadata"] = {"name": "child", "namespace": NS, "ownerReferences": [owner_ref(False)]}
    secrets.create(loose)
    cms.patch("parent", {"data": {"x": "1"}}, NS)  # a marker event after the secret's
    wait_for(lambda: rec.count(p) == 5, "reconcile for the parent's own update")
    time.sleep(0.05)
    assert rec.count(p) == 5
    assert rec.count() == 5


def test_watches_map_other_kinds_and_predicates_filter(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    namespaces = client.resource("v1", "Namespace")
    rec = Recorder()

    def namespace_to_configmaps(ns: dict[str, Any]) -> list[Request]:
        return [
            Request.from_object(o)
            for o in cache.list("v1", "ConfigMap", label_selector={"watch": "me"}, copy=False)
        ]

    ctrl = Controller(
        "watcher",
        rec,
        for_=Source("v1", "ConfigMap", predicates=[LabelSelectorPredicate("watch=me")]),
        watches=[(("v1", "Namespace"), namespace_to_configmaps)],
    )
    controllers.append(ctrl)
    cms.create(configmap("watched", labels={"watch": "me"}))
    cms.create(configmap("ignored"))
    ctrl.start(cache)
    w = Request(NS, "watched")
    wait_for(lambda: rec.count(w) >= 1, "initial reconcile")
    before = rec.count(w)
    namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra"}})
    wait_for(lambda: rec.count(w) > before, "reconcile mapped from a Namespace event")
    assert rec.count(Request(NS, "ignored")) == 0


def test_generation_changed_predicate_skips_metadata_only_updates(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    deployments = client.resource("apps/v1", "Deployment")
    rec = Recorder()
    ctrl = Controller(
        "generations",
        rec,
        for_=("apps/v1", "Deployment"),
        predicates=[GenerationChangedPredicate()],
    )
    controllers.append(ctrl)
    ctrl.start(cache)
    labels = {"app": "web"}
    deployments.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }
    )
    web = Request(NS, "web")
    wait_for(lambda: rec.count(web) == 1, "create reconcile")
    deployments.patch("web", {"metadata": {"labels": {"extra": "label"}}}, NS)
    deployments.patch("web", {"spec": {"replicas": 2}}, NS)
    wait_for(lambda: rec.count(web) == 2, "spec change reconcile")
    time.sleep(0.05)
    assert rec.count(web) == 2


def test_error_requeues_with_rate_limited_backoff(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("flaky"))
    limiter = RecordingLimiter(base=0.001, cap=1.0)

    def behaviour(req: Request, n: int) -> Result | None:
        if n <= 3:
            raise RuntimeError(f"attempt {n} fails")
        return None

    rec = Recorder(behaviour)
    ctrl = Controller("flaky", rec, for_=("v1", "ConfigMap"), rate_limiter=limiter)
    controllers.append(ctrl)
    errors_before = counter("controller_runtime_reconcile_errors_total", controller="flaky")
    ctrl.start(cache)
    f = Request(NS, "flaky")
    wait_for(lambda: rec.count(f) == 4, "three failures then a success")
    wait_for(lambda: f in limiter.forgotten, "forget after success")
    assert limiter.delays == [(f, 0.001), (f, 0.002), (f, 0.004)]
    assert ctrl.queue.num_requeues(f) == 0
    after = counter("controller_runtime_reconcile_errors_total", controller="flaky")
    assert after - errors_before == 3
    assert counter("controller_runtime_reconcile_total", controller="flaky", result="error") == 3


def test_requeue_true_uses_the_rate_limiter_and_terminal_error_does_not_retry(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("again"))
    cms.create(configmap("broken"))
    limiter = RecordingLimiter()

    def behaviour(req: Request, n: int) -> Result | None:
        if req.name == "broken":
            raise TerminalError("spec can never work")
        return Result(requeue=True) if n == 1 else None

    rec = Recorder(behaviour)
    ctrl = Controller("requeue", rec, for_=("v1", "ConfigMap"), rate_limiter=limiter)
    controllers.append(ctrl)
    ctrl.start(cache)
    again, broken = Request(NS, "again"), Request(NS, "broken")
    wait_for(lambda: rec.count(again) == 2, "requeue")
    wait_for(lambda: rec.count(broken) == 1, "terminal error")
    assert [item for item, _ in limiter.delays] == [again]
    assert counter("controller_runtime_reconcile_total", controller="requeue", result="requeue")
    assert counter("controller_runtime_terminal_reconcile_errors_total", controller="requeue") == 1
    time.sleep(0.05)
    assert rec.count(broken) == 1


def test_requeue_after_forgets_and_waits_the_requested_time(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("timer"))
    clock = FakeClock()
    limiter = RecordingLimiter()
    rec = Recorder(lambda req, n: Result(requeue_after=30.0) if n == 1 else None)
    ctrl = Controller("timer", rec, for_=("v1", "ConfigMap"), rate_limiter=limiter, clock=clock)
    controllers.append(ctrl)
    ctrl.start(cache)
    t = Request(NS, "timer")
    wait_for(lambda: rec.count(t) == 1, "first reconcile")
    wait_for(lambda: t in limiter.forgotten, "forget before add_after")
    clock.wait_for_waiters(1)  # the worker waits for the delayed item on the fake clock
    clock.step(29.0)
    clock.wait_for_waiters(1)
    assert rec.count(t) == 1 and ctrl.queue.len() == 0
    clock.step(1.0)
    wait_for(lambda: rec.count(t) == 2, "reconcile after requeue_after")
    assert limiter.delays == []
    assert counter("controller_runtime_reconcile_total", controller="timer", result="requeue_after")


def test_workers_run_in_parallel_but_never_on_the_same_key(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    for i in range(8):
        cms.create(configmap(f"cm-{i}"))
    barrier = threading.Barrier(4, timeout=15)
    lock = threading.Lock()
    active: set[Request] = set()
    overlaps: list[Request] = []
    peak = [0]
    hold_same = threading.Event()

    def behaviour(req: Request, n: int) -> None:
        with lock:
            if req in active:
                overlaps.append(req)
            active.add(req)
            peak[0] = max(peak[0], len(active))
        try:
            if n == 1 and req.name in {"cm-0", "cm-1", "cm-2", "cm-3"}:
                barrier.wait()  # only passes if four reconciles run at the same time
            if req.name == "cm-7" and n == 1:
                hold_same.wait(15)
        finally:
            with lock:
                active.discard(req)

    rec = Recorder(behaviour)
    ctrl = Controller("parallel", rec, for_=("v1", "ConfigMap"), max_concurrent_reconciles=4)
    controllers.append(ctrl)
    ctrl.start(cache)
    seven = Request(NS, "cm-7")
    wait_for(lambda: rec.count(seven) == 1, "cm-7 in progress")
    for _ in range(5):
        ctrl.enqueue(seven)  # re-added while processing: deferred, not run concurrently
    hold_same.set()
    wait_for(lambda: rec.count(seven) == 2, "cm-7 once more after done()")
    wait_for(lambda: all(rec.count(Request(NS, f"cm-{i}")) >= 1 for i in range(8)), "all keys")
    assert overlaps == []
    assert peak[0] == 4
    assert counter("controller_runtime_max_concurrent_reconciles", controller="parallel") == 4
    wait_for(
        lambda: counter("controller_runtime_active_workers", controller="parallel") == 0,
        "idle workers",
    )


def test_exception_does_not_kill_the_worker(
    client: Client, cache: Cache, controllers: list[Controller]
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("boom"))
    limiter = RecordingLimiter(base=10.0, cap=10.0)  # the failed key stays away

    def behaviour(req: Request, n: int) -> None:
        if req.name == "boom":
            raise KeyError("unexpected")

    rec = Recorder(behaviour)
    ctrl = Controller("survivor", rec, for_=("v1", "ConfigMap"), rate_limiter=limiter)
    controllers.append(ctrl)
    ctrl.start(cache)
    wait_for(lambda: rec.count(Request(NS, "boom")) == 1, "failing reconcile")
    cms.create(configmap("fine"))
    wait_for(lambda: rec.count(Request(NS, "fine")) == 1, "the same worker goes on")
    assert [t for t in our_threads() if "survivor-worker" in t] == ["controller-survivor-worker-0"]


def test_reconcile_binds_log_context() -> None:
    contexts: list[dict[str, Any]] = []

    def reconcile(req: Request) -> None:
        contexts.append(structlog.contextvars.get_contextvars())

    ctrl = Controller("logctx", reconcile, for_=("v1", "ConfigMap"))
    ctrl._reconcile_handler(Request("ns", "a"))
    ctrl._reconcile_handler(Request("ns", "a"))
    assert contexts[0]["controller"] == "logctx"
    assert contexts[0]["object"] == "ns/a"
    assert contexts[0]["reconcile_id"] != contexts[1]["reconcile_id"]
    assert "controller" not in structlog.contextvars.get_contextvars()
    ctrl.queue.shut_down()


def test_steady_state_makes_no_writes_across_resyncs(
    apiserver: APIServer, client: Client, controllers: list[Controller]
) -> None:
    """An idempotent reconciler, woken by 20 resyncs, writes nothing after converging."""
    clock = FakeClock()  # drives the informers' resync timer
    cache = Cache(InformerFactory(client, resync_period=1.0, clock=clock))
    cms = client.resource("v1", "ConfigMap")
    secrets = client.resource("v1", "Secret")
    for i in range(3):
        cms.create(configmap(f"src-{i}", {"v": str(i)}))

    def reconcile(req: Request) -> None:
        src = cache.get("v1", "ConfigMap", req.namespace, req.name)
        if src is None:
            return
        want = {"copy": str((src.get("data") or {}).get("v", ""))}
        have = cache.get("v1", "Secret", req.namespace, req.name)
        if have is None:
            owner = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": req.name,
                "uid": src["metadata"]["uid"],
                "controller": True,
            }
            meta = {"name": req.name, "namespace": req.namespace, "ownerReferences": [owner]}
            secrets.create({"metadata": meta, "stringData": want})
        elif _decoded(have) != want:
            secrets.patch(req.name, {"stringData": want}, req.namespace)

    rec = Recorder(lambda req, n: reconcile(req))
    ctrl = Controller("steady", rec, for_=("v1", "ConfigMap"), owns=[("v1", "Secret")])
    controllers.append(ctrl)
    try:
        ctrl.start(cache)
        wait_for(lambda: len(cache.list("v1", "Secret", NS)) == 3, "children created")
        wait_for(lambda: ctrl.queue.len() == 0, "queue drained")
        time.sleep(0.05)
        writes = apiserver.write_count
        reconciles = rec.count()
        for _ in range(20):
            target = rec.count() + 3
            clock.wait_for_waiters(2)  # both informers' resync timers are parked
            clock.step(1.0)
            wait_for(lambda t=target: rec.count() >= t, "resync reconciles")  # type: ignore[misc]
        wait_for(lambda: ctrl.queue.len() == 0, "queue drained")
        assert rec.count() >= reconciles + 60
        assert apiserver.write_count == writes
    finally:
        ctrl.stop(10.0)
        cache.stop()


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    import base64

    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


# -- the cache reader ----------------------------------------------------------------------------


def test_cache_reads(client: Client, cache: Cache) -> None:
    cms = client.resource("v1", "ConfigMap")
    client.resource("v1", "Namespace").create({"metadata": {"name": "other"}})
    cms.create(configmap("a", {"k": "1"}, labels={"app": "x", "tier": "web"}))
    cms.create(configmap("b", labels={"app": "y"}))
    other_c = configmap("c", labels={"app": "x"})
    other_c["metadata"]["namespace"] = "other"
    cms.create(other_c)
    with pytest.raises(CacheNotStartedError):
        cache.get("v1", "ConfigMap", NS, "a")
    cache.add_indexers(
        "v1", "ConfigMap", {"app": lambda o: [o["metadata"].get("labels", {}).get("app", "")]}
    )
    cache.start()
    assert cache.wait_for_sync(15)
    got = cache.get("v1", "ConfigMap", NS, "a")
    assert got is not None and got["data"] == {"k": "1"}
    got["data"]["k"] = "mutated"  # a copy: the cache is unaffected
    again = cache.get("v1", "ConfigMap", NS, "a")
    assert again is not None and again["data"] == {"k": "1"}
    assert cache.get("v1", "ConfigMap", NS, "missing") is None
    with pytest.raises(ValueError, match="namespaced"):
        cache.get("v1", "ConfigMap", None, "a")

    def names(objs: list[dict[str, Any]]) -> list[str]:
        return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs]

    assert names(cache.list("v1", "ConfigMap", label_selector="app=x")) == ["default/a", "other/c"]
    assert names(cache.list("v1", "ConfigMap", NS, {"app": "x"})) == ["default/a"]
    assert names(cache.list("v1", "ConfigMap", "other")) == ["other/c"]
    assert names(cache.list("v1", "ConfigMap", NS, "app in (x,y),tier!=db")) == [
        "default/a",
        "default/b",
    ]
    assert names(cache.by_index("v1", "ConfigMap", "app", "x")) == ["default/a", "other/c"]
    # A kind nobody watched yet gets an informer on first read (cluster-scoped here).
    ns = cache.get("v1", "Namespace", None, "other")
    assert ns is not None and ns["metadata"]["name"] == "other"
    assert cache.has_synced()
