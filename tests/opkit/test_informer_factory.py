"""InformerFactory against the embedded API server: sharing, start, sync waits, shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from helpers import wait_for

from opkit import errors
from opkit.client import Client
from opkit.informer import (
    NAMESPACE_INDEX,
    BackoffConfig,
    InformerFactory,
    InformerKey,
    Obj,
    ReflectorConfig,
    wait_for_cache_sync,
)
from opkit.testing import APIServer

FAST = ReflectorConfig(backoff=BackoffConfig(initial=0.02, cap=0.1, jitter=0.0))


def informer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("informer-")]


@pytest.fixture
def kube(apiserver: APIServer, kubeconfig: str) -> Iterator[Client]:
    c = Client.from_kubeconfig(kubeconfig)
    for ns in ("a", "b"):
        c.resource("v1", "Namespace").create({"metadata": {"name": ns}})
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def factory(kube: Client) -> Iterator[InformerFactory]:
    f = InformerFactory(kube, reflector_config=FAST)
    try:
        yield f
    finally:
        f.shutdown()
        assert informer_threads() == []


def cm(name: str, ns: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def test_one_informer_per_resource_and_scope(factory: InformerFactory) -> None:
    by_kind = factory.for_resource("v1", "ConfigMap")
    assert factory.for_resource("v1", "ConfigMap") is by_kind
    assert factory.for_resource(version="v1", plural="configmaps") is by_kind
    in_a = factory.for_resource("v1", "ConfigMap", namespace="a")
    assert in_a is not by_kind
    assert factory.for_resource(version="v1", plural="configmaps", namespace="a") is in_a
    selected = factory.for_resource("v1", "ConfigMap", label_selector="app=web")
    assert selected is not by_kind
    deployments = factory.for_resource(group="apps", version="v1", plural="deployments")
    assert factory.for_resource("apps/v1", "Deployment") is deployments
    # Cluster-scoped resources ignore the namespace.
    nodes = factory.for_resource("v1", "Node", namespace="a")
    assert factory.for_resource("v1", "Node") is nodes
    assert set(factory.informers()) == {
        InformerKey("", "v1", "configmaps", None),
        InformerKey("", "v1", "configmaps", "a"),
        InformerKey("", "v1", "configmaps", None, "app=web"),
        InformerKey("apps", "v1", "deployments", None),
        InformerKey("", "v1", "nodes", None),
    }
    assert str(InformerKey("apps", "v1", "deployments", "a")) == "apps/v1/deployments in a"


def test_unknown_resource_is_no_match(factory: InformerFactory) -> None:
    with pytest.raises(errors.NoMatch):
        factory.for_resource(version="v1", plural="nonsense")
    with pytest.raises(errors.NoMatch):
        factory.for_resource("v1", "Nonsense")
    with pytest.raises(TypeError):
        factory.for_resource("v1")


def test_handlers_share_one_watch(
    apiserver: APIServer, kube: Client, factory: InformerFactory
) -> None:
    rc = kube.resource("v1", "ConfigMap")
    rc.create(cm("x", "a"))
    seen: dict[str, list[str]] = {"ctl1": [], "ctl2": []}
    for names in seen.values():  # two "controllers" each ask the factory for the informer
        inf = factory.for_resource("v1", "ConfigMap", namespace="a")
        inf.add_event_handler(on_add=lambda o, names=names: names.append(o["metadata"]["name"]))
    factory.start()
    assert all(factory.wait_for_cache_sync(10.0).values())
    rc.create(cm("y", "a"))
    wait_for(lambda: all(len(v) >= 2 for v in seen.values()), "both handlers")
    assert seen["ctl1"] == seen["ctl2"]
    assert {"x", "y"} <= set(seen["ctl1"])
    assert apiserver.watch_count == 1
    lists = [
        r
        for r in apiserver.request_log
        if r[0] == "GET" and r[1].endswith("/configmaps") and "watch=" not in r[2]
    ]
    assert len(lists) == 1


def test_start_starts_only_new_informers_and_sync_covers_started_ones(
    kube: Client, factory: InformerFactory
) -> None:
    cms = factory.for_resource("v1", "ConfigMap")
    factory.start()
    synced = factory.wait_for_cache_sync(10.0)
    assert synced == {InformerKey("", "v1", "configmaps", None): True}
    secrets = factory.for_resource("v1", "Secret", namespace="b")
    assert not secrets.started
    assert InformerKey("", "v1", "secrets", "b") not in factory.wait_for_cache_sync(0.0)
    factory.start()
    assert secrets.started and cms.started
    assert factory.wait_for_cache_sync(10.0) == {
        InformerKey("", "v1", "configmaps", None): True,
        InformerKey("", "v1", "secrets", "b"): True,
    }
    assert wait_for_cache_sync(10.0, cms, secrets)


def test_wait_for_cache_sync_times_out_when_lists_fail(
    apiserver: APIServer, factory: InformerFactory
) -> None:
    apiserver.faults.fail(verb="list", resource="secrets", times=100_000, code=403)
    factory.for_resource("v1", "Secret")
    factory.start()
    result = factory.wait_for_cache_sync(0.3)
    assert result == {InformerKey("", "v1", "secrets", None): False}
    apiserver.faults.clear()
    assert all(factory.wait_for_cache_sync(10.0).values())


def test_label_selector_and_namespace_scope(kube: Client, factory: InformerFactory) -> None:
    rc = kube.resource("v1", "ConfigMap")
    rc.create(cm("web-a", "a", app="web"))
    rc.create(cm("db-a", "a", app="db"))
    rc.create(cm("web-b", "b", app="web"))
    web = factory.for_resource("v1", "ConfigMap", label_selector="app=web")
    only_a = factory.for_resource("v1", "ConfigMap", namespace="a")
    factory.start()
    assert all(factory.wait_for_cache_sync(10.0).values())
    assert sorted(web.store.list_keys()) == ["a/web-a", "b/web-b"]
    assert sorted(k for k in only_a.store.list_keys() if "-a" in k) == ["a/db-a", "a/web-a"]
    assert all(k.startswith("a/") for k in only_a.store.list_keys())


def test_factory_namespace_default_and_indexers(kube: Client) -> None:
    f = InformerFactory(kube, namespace="b", resync_period=30.0, reflector_config=FAST)
    try:
        by_app: dict[str, Callable[[Obj], list[str]]] = {
            "app": lambda o: [o["metadata"].get("labels", {}).get("app", "")]
        }
        inf = f.for_resource("v1", "ConfigMap", indexers=by_app)
        assert f.for_resource("v1", "ConfigMap", indexers=by_app) is inf  # same func: fine
        with pytest.raises(ValueError, match="different indexer"):
            f.for_resource("v1", "ConfigMap", indexers={"app": lambda o: []})
        assert set(inf.indexer.get_indexers()) == {NAMESPACE_INDEX, "app"}
        assert inf.resync_check_period == 30.0
        kube.resource("v1", "ConfigMap").create(cm("w", "b", app="web"))
        f.start()
        assert all(f.wait_for_cache_sync(10.0).values())
        assert inf.indexer.index_keys("app", "web") == ["b/w"]
        assert list(f.informers()) == [InformerKey("", "v1", "configmaps", "b")]
    finally:
        f.shutdown()
    assert informer_threads() == []


def test_shutdown_stops_everything_and_refuses_new_informers(kube: Client) -> None:
    f = InformerFactory(kube, reflector_config=FAST)
    with f:
        for kind in ("ConfigMap", "Secret", "Service"):
            f.for_resource("v1", kind).add_event_handler(on_add=lambda o: None)
        f.start()
        assert all(f.wait_for_cache_sync(10.0).values())
        assert len(informer_threads()) == 3 * 3  # reflector, processor, one handler each
    assert informer_threads() == []
    assert all(inf.stopped for inf in f.informers().values())
    with pytest.raises(RuntimeError):
        f.for_resource("v1", "ConfigMap")
    f.start()  # a no-op after shutdown
    assert informer_threads() == []
