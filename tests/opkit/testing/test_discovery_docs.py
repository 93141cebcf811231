"""Discovery documents (legacy and aggregated v2), checked against the client's models."""

from __future__ import annotations

import copy
from typing import Any

from _server_fixtures import WIDGET_CRD
from kubernetes.client import models as _models

from opkit.testing.apiserver import _discovery
from opkit.testing.apiserver._registry import Registry

models: Any = _models  # the generated models are typed loosely; treat as dynamic


def _fake_compile(schema: dict[str, Any]) -> Any:
    return None


def _registry_with_crd() -> Registry:
    """The Widget CRD served as v1 (storage, status and scale) and as a plain v1beta1."""
    reg = Registry.builtin(compile_schema=_fake_compile)
    crd = copy.deepcopy(WIDGET_CRD)
    versions = crd["spec"]["versions"]
    plain = {"name": "v1beta1", "served": True, "storage": False, "schema": versions[0]["schema"]}
    versions.insert(0, plain)
    reg.add_crd(crd)
    return reg


def test_api_versions_parses() -> None:
    doc = _discovery.api_versions("127.0.0.1:6443")
    parsed = models.V1APIVersions.from_dict(doc)
    assert parsed is not None
    assert parsed.versions == ["v1"]
    assert parsed.server_address_by_client_cidrs[0].server_address == "127.0.0.1:6443"


def test_api_group_list() -> None:
    reg = _registry_with_crd()
    doc = _discovery.api_group_list(reg)
    parsed = models.V1APIGroupList.from_dict(doc)
    assert parsed is not None
    names = [g.name for g in parsed.groups]
    assert "" not in names
    assert names[0] == "apps"
    assert names[-1] == "example.com"
    widgets = parsed.groups[-1]
    assert [v.version for v in widgets.versions] == ["v1", "v1beta1"]
    assert widgets.preferred_version.group_version == "example.com/v1"


def test_api_group() -> None:
    reg = Registry.builtin()
    doc = _discovery.api_group(reg, "apps")
    assert doc is not None
    parsed = models.V1APIGroup.from_dict(doc)
    assert parsed is not None and parsed.preferred_version.version == "v1"
    assert _discovery.api_group(reg, "nope") is None
    assert _discovery.api_group(reg, "") is None


def test_core_resource_list() -> None:
    reg = Registry.builtin()
    doc = _discovery.api_resource_list(reg, "", "v1")
    assert doc is not None
    parsed = models.V1APIResourceList.from_dict(doc)
    assert parsed is not None and parsed.group_version == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["pods"]["categories"] == ["all"]
    assert by_name["pods"]["shortNames"] == ["po"]
    assert by_name["pods/status"] == {
        "name": "pods/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get", "patch", "update"],
    }
    assert by_name["pods/log"]["verbs"] == ["get"]
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    assert "deletecollection" not in by_name["namespaces"]["verbs"]
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)


def test_scale_subresource_entry() -> None:
    reg = Registry.builtin()
    doc = _discovery.api_resource_list(reg, "apps", "v1")
    assert doc is not None
    scale = next(r for r in doc["resources"] if r["name"] == "statefulsets/scale")
    assert scale == {
        "name": "statefulsets/scale",
        "singularName": "",
        "namespaced": True,
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
        "group": "autoscaling",
        "version": "v1",
    }
    assert models.V1APIResource.from_dict(scale) is not None


def test_unknown_group_version() -> None:
    reg = Registry.builtin()
    assert _discovery.api_resource_list(reg, "apps", "v2") is None
    assert _discovery.api_resource_list(reg, "example.com", "v1") is None


def test_crd_appears_and_disappears() -> None:
    reg = _registry_with_crd()
    doc = _discovery.api_resource_list(reg, "example.com", "v1")
    assert doc is not None
    names = {r["name"]: r for r in doc["resources"]}
    assert set(names) == {"widgets", "widgets/scale", "widgets/status"}
    assert names["widgets"]["shortNames"] == ["wd"]
    assert names["widgets"]["categories"] == ["all"]
    reg.remove_crd("widgets.example.com")
    assert _discovery.api_resource_list(reg, "example.com", "v1") is None
    groups = _discovery.api_group_list(reg)["groups"]
    assert "example.com" not in [g["name"] for g in groups]


def test_aggregated_core_parses() -> None:
    reg = Registry.builtin()
    doc = _discovery.aggregated(reg, True)
    parsed = models.V2APIGroupDiscoveryList.from_dict(doc)
    assert parsed is not None
    assert len(parsed.items) == 1
    item = parsed.items[0]
    assert item.metadata.name == ""
    version = item.versions[0]
    assert version.version == "v1" and version.freshness == "Current"
    pods = next(r for r in version.resources if r.resource == "pods")
    assert pods.scope == "Namespaced"
    assert pods.singular_resource == "pod"
    assert pods.response_kind.kind == "Pod" and pods.response_kind.group == ""
    assert pods.categories == ["all"] and pods.short_names == ["po"]
    assert {s.subresource for s in pods.subresources} == {"log", "status"}
    namespaces = next(r for r in version.resources if r.resource == "namespaces")
    assert namespaces.scope == "Cluster"


def test_aggregated_groups_parse_and_include_crds() -> None:
    reg = _registry_with_crd()
    doc = _discovery.aggregated(reg, False)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    parsed = models.V2APIGroupDiscoveryList.from_dict(doc)
    assert parsed is not None
    names = [i.metadata.name for i in parsed.items]
    assert names[0] == "apps" and names[-1] == "example.com"
    apps = parsed.items[0].versions[0]
    sts = next(r for r in apps.resources if r.resource == "statefulsets")
    scale = next(s for s in sts.subresources if s.subresource == "scale")
    assert (scale.response_kind.group, scale.response_kind.version, scale.response_kind.kind) == (
        "autoscaling",
        "v1",
        "Scale",
    )
    assert scale.verbs == ["get", "patch", "update"]
    widgets = parsed.items[-1]
    assert [v.version for v in widgets.versions] == ["v1", "v1beta1"]
    widget = widgets.versions[0].resources[0]
    assert widget.short_names == ["wd"] and widget.categories == ["all"]
    assert {s.subresource for s in widget.subresources} == {"scale", "status"}
    assert widgets.versions[1].resources[0].subresources is None


def test_aggregated_keys_are_known_fields() -> None:
    """The models drop unknown keys silently; make sure none are misspelled."""
    reg = _registry_with_crd()
    known = set(models.V2APIResourceDiscovery.attribute_map.values())
    sub_known = set(models.V2APISubresourceDiscovery.attribute_map.values())
    for item in _discovery.aggregated(reg, False)["items"]:
        for version in item["versions"]:
            for res in version["resources"]:
                assert set(res) <= known
                for sub in res.get("subresources", []):
                    assert set(sub) <= sub_known
