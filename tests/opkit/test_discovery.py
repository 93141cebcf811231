"""opkit.discovery: the RESTMapper over canned documents, then against the embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from opkit import errors
from opkit.client import Client
from opkit.clock import FakeClock
from opkit.discovery import APIResource, RESTMapper, split_api_version

if TYPE_CHECKING:
    from opkit.testing.apiserver.server import APIServer


def resource_list(gv: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "APIResourceList", "groupVersion": gv, "resources": list(resources)}


def res(name: str, kind: str, namespaced: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "namespaced": namespaced, "verbs": ["get"], **extra}


class Documents:
    """Discovery documents by path, counting every fetch."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {
            "/api": {"kind": "APIVersions", "versions": ["v1"]},
            "/apis": {
                "kind": "APIGroupList",
                "groups": [
                    {
                        "name": "apps",
                        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                    },
                    {
                        "name": "events.k8s.io",
                        "versions": [{"groupVersion": "events.k8s.io/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": "events.k8s.io/v1", "version": "v1"},
                    },
                ],
            },
            "/api/v1": resource_list(
                "v1",
                res("pods", "Pod", singularName="pod", shortNames=["po"], categories=["all"]),
                res("pods/status", "Pod"),
                res("pods/log", "Pod"),
                res("namespaces", "Namespace", False, singularName="namespace"),
                res("events", "Event", shortNames=["ev"]),
            ),
            "/apis/apps/v1": resource_list(
                "apps/v1",
                res("deployments", "Deployment", singularName="deployment", shortNames=["deploy"]),
                res("deployments/status", "Deployment"),
                res(
                    "deployments/scale",
                    "Scale",
                    group="autoscaling",
                    version="v1",
                    verbs=["get", "patch", "update"],
                ),
            ),
            "/apis/events.k8s.io/v1": resource_list("events.k8s.io/v1", res("events", "Event")),
        }
        self.fetches: list[str] = []

    def __call__(self, path: str) -> Any:
        self.fetches.append(path)
        if path not in self.docs:
            raise errors.NotFound(
                404, "NotFound", "the server could not find the requested resource"
            )
        return self.docs[path]

    def add_group(self, group: str, version: str, *resources: dict[str, Any]) -> None:
        gv = f"{group}/{version}"
        self.docs["/apis"]["groups"].append(
            {
                "name": group,
                "versions": [{"groupVersion": gv, "version": version}],
                "preferredVersion": {"groupVersion": gv, "version": version},
            }
        )
        self.docs[f"/apis/{gv}"] = resource_list(gv, *resources)


def test_split_api_version() -> None:
    assert split_api_version("v1") == ("", "v1")
    assert split_api_version("apps/v1") == ("apps", "v1")
    assert split_api_version("example.com/v1beta1") == ("example.com", "v1beta1")
    with pytest.raises(ValueError):
        split_api_version("")
    with pytest.raises(ValueError):
        split_api_version("/v1")


def test_resource_for_kind_reads_only_its_group_version() -> None:
    docs = Documents()
    mapper = RESTMapper(docs)
    deploy = mapper.resource_for_kind("apps/v1", "Deployment")
    assert deploy == mapper.resource_for_kind("apps/v1", "Deployment")
    assert docs.fetches == ["/apis/apps/v1"]
    assert (deploy.group, deploy.version, deploy.name, deploy.kind) == (
        "apps",
        "v1",
        "deployments",
        "Deployment",
    )
    assert deploy.namespaced
    assert deploy.api_version == "apps/v1"
    assert deploy.group_resource == "deployments.apps"
    assert deploy.short_names == ("deploy",)
    scale = deploy.subresource("scale")
    assert scale is not None
    assert (scale.kind, scale.api_version, scale.verbs) == (
        "Scale",
        "autoscaling/v1",
        ("get", "patch", "update"),
    )
    assert deploy.has_subresource("status")
    assert not deploy.has_subresource("log")
    pod = mapper.resource_for_kind("v1", "Pod")
    assert pod.api_version == "v1"
    assert {s.name for s in pod.subresources} == {"status", "log"}
    ns = mapper.resource_for_kind("v1", "Namespace")
    assert not ns.namespaced


def test_misses_refresh_at_most_every_interval() -> None:
    docs = Documents()
    clock = FakeClock()
    mapper = RESTMapper(docs, clock=clock, min_refresh_interval=5.0)
    mapper.resource_for_kind("apps/v1", "Deployment")
    with pytest.raises(errors.NoMatch, match='no matches for kind "StatefulSet"'):
        mapper.resource_for_kind("apps/v1", "StatefulSet")
    assert docs.fetches == ["/apis/apps/v1"]  # fetched just now: no refetch
    docs.docs["/apis/apps/v1"]["resources"].append(res("statefulsets", "StatefulSet"))
    clock.step(5.0)
    assert mapper.resource_for_kind("apps/v1", "StatefulSet").name == "statefulsets"
    assert docs.fetches == ["/apis/apps/v1", "/apis/apps/v1"]
    # A group-version the server does not have is remembered as missing for a while too.
    for _ in range(3):
        with pytest.raises(errors.NoMatch):
            mapper.resource_for_kind("example.com/v1", "Widget")
    assert docs.fetches.count("/apis/example.com/v1") == 1
    docs.add_group("example.com", "v1", res("widgets", "Widget"))
    clock.step(5.0)
    assert mapper.resource_for_kind("example.com/v1", "Widget").name == "widgets"


@pytest.mark.parametrize(
    ("name", "api_version", "kind"),
    [
        ("pods", "v1", "Pod"),
        ("pod", "v1", "Pod"),
        ("po", "v1", "Pod"),
        ("Pod", "v1", "Pod"),
        ("deploy", "apps/v1", "Deployment"),
        ("deployments.apps", "apps/v1", "Deployment"),
        ("deployments.v1.apps", "apps/v1", "Deployment"),
        ("events", "v1", "Event"),
        ("events.events.k8s.io", "events.k8s.io/v1", "Event"),
    ],
)
def test_kind_for(name: str, api_version: str, kind: str) -> None:
    found = RESTMapper(Documents()).kind_for(name)
    assert (found.api_version, found.kind) == (api_version, kind)


def test_kind_for_finds_new_groups_after_a_miss() -> None:
    docs = Documents()
    clock = FakeClock()
    mapper = RESTMapper(docs, clock=clock, min_refresh_interval=5.0)
    with pytest.raises(errors.NoMatch, match="widgets"):
        mapper.kind_for("widgets")
    docs.add_group("example.com", "v1", res("widgets", "Widget", singularName="widget"))
    with pytest.raises(errors.NoMatch):
        mapper.kind_for("widget")  # the group list is fresh: no refetch yet
    clock.step(5.0)
    assert mapper.kind_for("widget").group_resource == "widgets.example.com"


def test_all_resources_and_invalidate() -> None:
    docs = Documents()
    mapper = RESTMapper(docs)
    names = {r.group_resource for r in mapper.all_resources()}
    assert names == {"pods", "namespaces", "events", "deployments.apps", "events.events.k8s.io"}
    assert mapper.preferred_version("apps") == "v1"
    assert mapper.preferred_version("nope") is None
    assert [r.name for r in mapper.resources_for("apps/v1")] == ["deployments"]
    count = len(docs.fetches)
    mapper.invalidate()
    mapper.resource_for_kind("v1", "Pod")
    assert len(docs.fetches) == count + 1


def test_api_resource_defaults() -> None:
    r = APIResource("", "v1", "configmaps", "ConfigMap", True)
    assert r.api_version == "v1"
    assert r.plural == "configmaps"
    assert r.subresource("status") is None


# -- against the embedded API server --------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(kubeconfig: str, clock: FakeClock) -> Iterator[Client]:
    c = Client.from_kubeconfig(kubeconfig, clock=clock)
    yield c
    c.close()


def test_builtin_mapping(client: Client) -> None:
    deploy = client.mapper.resource_for_kind("apps/v1", "Deployment")
    assert (deploy.name, deploy.namespaced, deploy.api_version) == ("deployments", True, "apps/v1")
    scale = deploy.subresource("scale")
    assert scale is not None
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert deploy.has_subresource("status")
    assert "deploy" in deploy.short_names
    assert "all" in deploy.categories
    ns = client.mapper.resource_for_kind("v1", "Namespace")
    assert not ns.namespaced
    lease = client.mapper.resource_for_kind("coordination.k8s.io/v1", "Lease")
    assert lease.name == "leases"
    assert client.mapper.kind_for("cm").kind == "ConfigMap"
    assert client.mapper.kind_for("statefulsets.apps").kind == "StatefulSet"
    assert client.mapper.kind_for("sts").api_version == "apps/v1"
    with pytest.raises(errors.NoMatch):
        client.mapper.kind_for("nosuchthings")


def test_lookups_are_cached(client: Client, apiserver: APIServer) -> None:
    client.resource("apps/v1", "Deployment")
    apiserver.clear_request_log()
    for _ in range(5):
        client.resource("apps/v1", "Deployment")
        client.resource("apps/v1", "StatefulSet")
    assert apiserver.request_log == []


def crd(
    group: str = "example.com", kind: str = "Widget", plural: str = "widgets"
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": ["wd"],
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
                        },
                    },
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"replicas": {"type": "integer"}},
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"replicas": {"type": "integer"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_registered_at_runtime_is_found_after_a_miss(
    client: Client, clock: FakeClock, apiserver: APIServer
) -> None:
    with pytest.raises(errors.NoMatch):
        client.resource("example.com/v1", "Widget")
    crds = client.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    crds.create(crd())
    # The miss is remembered for the refresh interval: no request storm for unknown kinds.
    apiserver.clear_request_log()
    with pytest.raises(errors.NoMatch):
        client.resource("example.com/v1", "Widget")
    assert apiserver.request_log == []
    clock.step(5.0)
    widgets = client.resource("example.com/v1", "Widget")
    assert widgets.resource.name == "widgets"
    assert widgets.resource.has_subresource("status")
    assert widgets.resource.has_subresource("scale")
    assert client.mapper.kind_for("wd").kind == "Widget"

    created = widgets.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "default"},
            "spec": {"replicas": 1},
        }
    )
    created["status"] = {"replicas": 1}
    assert widgets.update_status(created)["status"] == {"replicas": 1}
    assert widgets.scale("w1", 3, "default")["spec"]["replicas"] == 3
    assert widgets.get("w1", "default")["spec"]["replicas"] == 3
    with pytest.raises(errors.UnsupportedMediaType):
        widgets.patch("w1", {"spec": {"replicas": 2}}, "default", patch_type="strategic")
