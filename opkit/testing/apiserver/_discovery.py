"""Discovery documents: legacy (``APIVersions``/``APIGroupList``/``APIResourceList``) and
aggregated ``apidiscovery.k8s.io/v2`` (DISC-1..5).

Everything is computed from the registry on each call, so CRDs show up the moment they are
registered (DISC-4).
"""

from __future__ import annotations

from typing import Any

from ._registry import Registry
from ._types import ResourceType

__all__ = [
    "AGGREGATED_CONTENT_TYPE",
    "aggregated",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
]

Obj = dict[str, Any]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def api_versions(server_addr: str) -> Obj:
    """``GET /api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
    }


def _group_entry(group: str, versions: list[str]) -> Obj:
    return {
        "name": group,
        "versions": [{"groupVersion": _gv(group, v), "version": v} for v in versions],
        "preferredVersion": {"groupVersion": _gv(group, versions[0]), "version": versions[0]},
    }


def api_group_list(reg: Registry) -> Obj:
    """``GET /apis``: every named group, preferred version first."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in reg.group_versions() if g],
    }


def api_group(reg: Registry, group: str) -> Obj | None:
    """``GET /apis/{group}``."""
    for g, versions in reg.group_versions():
        if g == group and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, versions)}
    return None


def _resource_entry(rt: ResourceType) -> Obj:
    entry: Obj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def api_resource_list(reg: Registry, group: str, version: str) -> Obj | None:
    """``GET /api/v1`` or ``/apis/{g}/{v}``; ``None`` when the group/version is not served."""
    types = reg.resources(group, version)
    if not types:
        return None
    resources: list[Obj] = []
    for rt in types:
        resources.append(_resource_entry(rt))
        for sub in reg.subresources(rt):
            entry: Obj = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if (sub.group, sub.version) != (rt.group, rt.version):
                entry["group"] = sub.group
                entry["version"] = sub.version
            resources.append(entry)
    resources.sort(key=lambda r: str(r["name"]))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _gv(group, version),
        "resources": resources,
    }


def _aggregated_resource(reg: Registry, rt: ResourceType) -> Obj:
    entry: Obj = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = reg.subresources(rt)
    if subs:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": list(s.verbs),
            }
            for s in subs
        ]
    return entry


def aggregated(reg: Registry, core: bool) -> Obj:
    """``APIGroupDiscoveryList`` for ``/api`` (``core=True``) or ``/apis``."""
    items: list[Obj] = []
    for group, versions in reg.group_versions():
        if bool(group) == core:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _aggregated_resource(reg, rt) for rt in reg.resources(group, v)
                        ],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
