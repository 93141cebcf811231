"""Endpoints and EndpointSlice controllers against the embedded API server (pods simulated)."""

from __future__ import annotations

from typing import Any

from ctrl_helpers import NS, PlaneFactory, container, get, ready, wait_for

from opkit import errors
from opkit.client import Client

Obj = dict[str, Any]
SLICE = ("discovery.k8s.io/v1", "EndpointSlice")


def make_pod(client: Client, name: str, labels: dict[str, str], **spec: Any) -> Obj:
    spec.setdefault(
        "containers",
        [container(ports=[{"name": "http", "containerPort": 8080}])],
    )
    meta: Obj = {"name": name, "namespace": NS, "labels": labels}
    if "finalizers" in spec:
        meta["finalizers"] = spec.pop("finalizers")
    pod: Obj = client.resource("v1", "Pod").create(
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    )
    return pod


def make_service(client: Client, name: str = "api", **spec: Any) -> Obj:
    spec.setdefault("selector", {"app": "api"})
    spec.setdefault("ports", [{"name": "web", "port": 80, "targetPort": "http"}])
    svc: Obj = client.resource("v1", "Service").create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "labels": {"team": "a"}},
            "spec": spec,
        }
    )
    return svc


def endpoints(client: Client, name: str = "api") -> Obj | None:
    try:
        return get(client, "v1", "Endpoints", name)
    except errors.NotFound:
        return None


def slices(client: Client, name: str = "api") -> list[Obj]:
    items: list[Obj] = client.resource(*SLICE).list(
        NS, label_selector=f"kubernetes.io/service-name={name}"
    )["items"]
    return items


def slice_endpoints(client: Client, name: str = "api") -> dict[str, Obj]:
    """Endpoints of every slice of a Service, by pod name."""
    return {
        ep["targetRef"]["name"]: ep for s in slices(client, name) for ep in s.get("endpoints") or []
    }


def addresses(ep: Obj | None, field: str = "addresses") -> list[str]:
    if ep is None:
        return []
    return sorted(
        a["targetRef"]["name"]
        for subset in ep.get("subsets") or []
        for a in subset.get(field) or []
    )


def wait_ready_pods(client: Client, *names: str) -> dict[str, Obj]:
    def check() -> dict[str, Obj] | None:
        pods = {n: get(client, "v1", "Pod", n) for n in names}
        return pods if all(ready(p) for p in pods.values()) else None

    result: dict[str, Obj] = wait_for(check, f"pods {names} ready")
    return result


def test_endpoints_and_slices_follow_pod_readiness(
    client: Client, start_plane: PlaneFactory
) -> None:
    plane = start_plane()
    assert plane.podsim is not None
    svc = make_service(client)
    pods = {n: make_pod(client, n, {"app": "api"}) for n in ("api-a", "api-b")}
    make_pod(client, "other", {"app": "other"})
    live = wait_ready_pods(client, "api-a", "api-b")
    ep = wait_for(
        lambda: addresses(e := endpoints(client)) == ["api-a", "api-b"] and e, "two ready addresses"
    )
    (subset,) = ep["subsets"]
    assert subset["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    by_name = {a["targetRef"]["name"]: a for a in subset["addresses"]}
    for name, pod in live.items():
        assert by_name[name] == {
            "ip": pod["status"]["podIP"],
            "nodeName": "opkit-node",
            "targetRef": {
                "kind": "Pod",
                "namespace": NS,
                "name": name,
                "uid": pods[name]["metadata"]["uid"],
            },
        }
    assert ep["metadata"]["labels"]["team"] == "a"

    eps = wait_for(lambda: len(found := slice_endpoints(client)) == 2 and found, "slice endpoints")
    (es,) = slices(client)
    assert es["metadata"]["name"].startswith("api-") and len(es["metadata"]["name"]) == 9
    assert es["metadata"]["labels"] == {
        "team": "a",
        "kubernetes.io/service-name": "api",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    owner = es["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "Service",
        svc["metadata"]["uid"],
        True,
    )
    assert eps["api-a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["api-a"]["addresses"] == [live["api-a"]["status"]["podIP"]]
    assert eps["api-a"]["nodeName"] == "opkit-node"

    plane.podsim.set_pod_not_ready(NS, "api-b")
    wait_for(lambda: addresses(endpoints(client)) == ["api-a"], "api-b out of addresses")
    assert addresses(endpoints(client), "notReadyAddresses") == ["api-b"]
    conds = wait_for(
        lambda: (c := slice_endpoints(client)["api-b"]["conditions"])["ready"] is False and c,
        "api-b not ready in the slice",
    )
    assert conds == {"ready": False, "serving": False, "terminating": False}

    plane.podsim.set_pod_ready(NS, "api-b")
    wait_for(lambda: addresses(endpoints(client)) == ["api-a", "api-b"], "api-b back")
    wait_for(lambda: slice_endpoints(client)["api-b"]["conditions"]["ready"], "api-b ready again")


def test_publish_not_ready_addresses_lists_unready_pods_as_ready(
    client: Client, start_plane: PlaneFactory
) -> None:
    plane = start_plane()
    assert plane.podsim is not None
    plane.podsim.pause()
    make_service(client, publishNotReadyAddresses=True)
    make_pod(client, "api-a", {"app": "api"})
    ep = wait_for(lambda: addresses(e := endpoints(client)) == ["api-a"] and e, "address")
    assert not ready(get(client, "v1", "Pod", "api-a"))
    assert "notReadyAddresses" not in ep["subsets"][0]
    conds = wait_for(lambda: slice_endpoints(client).get("api-a"), "slice endpoint")["conditions"]
    assert conds == {"ready": True, "serving": False, "terminating": False}


def test_headless_service_hostnames_and_terminating_pods(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    make_service(client, "db", clusterIP="None", selector={"app": "db"})
    hold = "test.opkit.dev/hold"
    for name in ("db-0", "db-1"):
        make_pod(client, name, {"app": "db"}, hostname=name, subdomain="db", finalizers=[hold])
    make_pod(client, "db-x", {"app": "db"}, hostname="db-x", subdomain="elsewhere")
    wait_ready_pods(client, "db-0", "db-1", "db-x")
    ep = wait_for(
        lambda: addresses(e := endpoints(client, "db")) == ["db-0", "db-1", "db-x"] and e,
        "three addresses",
    )
    hostnames = {a["targetRef"]["name"]: a.get("hostname") for a in ep["subsets"][0]["addresses"]}
    assert hostnames == {"db-0": "db-0", "db-1": "db-1", "db-x": None}
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    eps = wait_for(lambda: len(found := slice_endpoints(client, "db")) == 3 and found, "slices")
    assert {n: e.get("hostname") for n, e in eps.items()} == hostnames
    (es,) = slices(client, "db")
    assert es["metadata"]["labels"]["service.kubernetes.io/headless"] == ""

    # A terminating pod (held by its finalizer) leaves Endpoints and is marked in the slice.
    pods = client.resource("v1", "Pod")
    pods.delete("db-1", NS)
    wait_for(lambda: addresses(endpoints(client, "db")) == ["db-0", "db-x"], "db-1 removed")
    conds = wait_for(
        lambda: (c := slice_endpoints(client, "db")["db-1"]["conditions"])["terminating"] and c,
        "db-1 terminating in the slice",
    )
    assert conds == {"ready": False, "serving": True, "terminating": True}
    pods.patch("db-1", {"metadata": {"finalizers": None}}, NS)
    wait_for(lambda: "db-1" not in slice_endpoints(client, "db"), "db-1 gone from the slice")
    pods.patch("db-0", {"metadata": {"finalizers": None}}, NS)


def test_service_without_pods_and_service_deletion(
    client: Client, start_plane: PlaneFactory
) -> None:
    start_plane()
    make_service(client)
    ep = wait_for(lambda: endpoints(client), "empty Endpoints")
    assert not ep.get("subsets")
    (placeholder,) = wait_for(lambda: slices(client), "placeholder slice")
    assert not placeholder.get("endpoints")

    make_pod(client, "api-a", {"app": "api"})
    wait_for(lambda: addresses(endpoints(client)) == ["api-a"], "address")
    (es,) = wait_for(lambda: (s := slices(client)) and s[0].get("endpoints") and s, "filled slice")
    assert es["metadata"]["name"] == placeholder["metadata"]["name"]  # reused, not replaced

    client.resource("v1", "Service").delete("api", NS)
    wait_for(lambda: endpoints(client) is None, "Endpoints deleted")
    wait_for(lambda: not slices(client), "slices garbage-collected")
    # a Service without a selector is left alone (its Endpoints are the user's)
    make_service(client, "manual", selector=None)
    client.resource("v1", "Endpoints").create(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "manual", "namespace": NS},
            "subsets": [{"addresses": [{"ip": "127.0.0.9"}], "ports": [{"port": 80}]}],
        }
    )
    # barrier: a later Service is handled after the controller saw "manual" (one FIFO queue)
    make_service(client, "later")
    wait_for(lambda: endpoints(client, "later"), "Endpoints of a later Service")
    manual = endpoints(client, "manual")
    assert manual is not None
    assert manual["subsets"][0]["addresses"] == [{"ip": "127.0.0.9"}]
    assert not slices(client, "manual")


def test_named_ports_resolve_per_pod(client: Client, start_plane: PlaneFactory) -> None:
    start_plane()
    make_service(client)
    make_pod(client, "api-a", {"app": "api"})
    make_pod(
        client,
        "api-b",
        {"app": "api"},
        containers=[container(ports=[{"name": "http", "containerPort": 9090}])],
    )
    make_pod(client, "api-c", {"app": "api"}, containers=[container()])  # no such port
    wait_ready_pods(client, "api-a", "api-b", "api-c")
    ep = wait_for(
        lambda: len((e := endpoints(client) or {}).get("subsets") or []) == 2 and e, "two subsets"
    )
    by_port = {
        s["ports"][0]["port"]: [a["targetRef"]["name"] for a in s["addresses"]]
        for s in ep["subsets"]
    }
    assert by_port == {8080: ["api-a"], 9090: ["api-b"]}
    # slices keep a pod whose port cannot be resolved, in a slice without ports (upstream)
    found = wait_for(lambda: len(s := slices(client)) == 3 and s, "one slice per port set")
    by_slice = {
        (s.get("ports") or [{}])[0].get("port"): [e["targetRef"]["name"] for e in s["endpoints"]]
        for s in found
    }
    assert by_slice == {8080: ["api-a"], 9090: ["api-b"], None: ["api-c"]}
