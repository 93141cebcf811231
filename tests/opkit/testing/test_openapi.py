"""OpenAPI v3 index and per-group-version documents (OAPI-1..3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opkit.testing.apiserver import _openapi
from opkit.testing.apiserver._registry import Registry
from opkit.testing.apiserver._types import ResourceType

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A widget.",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"replicas": {"type": "integer", "description": "How many."}},
        },
        "status": {"type": "object"},
    },
}


class _Compiled:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw


def _crd(versions: tuple[str, ...] = ("v1",)) -> dict[str, Any]:
    return {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                }
                for i, v in enumerate(versions)
            ],
        },
    }


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry.builtin(compile_schema=_Compiled)


def _item_path(rt: ResourceType) -> str:
    prefix = "/" + _openapi.gv_path(rt.group, rt.version)
    if rt.namespaced:
        return f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
    return f"{prefix}/{rt.plural}/{{name}}"


def _supports_field_validation(doc: dict[str, Any], group: str, version: str, kind: str) -> bool:
    """kubectl's ``supportsQueryParamV3``: every PATCH for the GVK must declare the param."""
    want = {"group": group, "version": version, "kind": kind}
    found = False
    for item in doc["paths"].values():
        op = item.get("patch")
        if not op or op.get("x-kubernetes-group-version-kind") != want:
            continue
        found = True
        params = [p for p in op.get("parameters", []) if p.get("in") == "query"]
        if "fieldValidation" not in [p["name"] for p in params]:
            return False
    return found


def test_index_lists_every_builtin_group_version(reg: Registry) -> None:
    idx = _openapi.index(reg)
    expected = {_openapi.gv_path(g, v) for g, versions in reg.group_versions() for v in versions}
    assert set(idx["paths"]) == expected
    assert "api/v1" in idx["paths"]
    url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert len(url.rsplit("=", 1)[1]) == 128


@pytest.mark.parametrize(
    "path",
    [_openapi.gv_path(g, v) for g, vs in Registry.builtin().group_versions() for v in vs],
)
def test_every_builtin_patch_path_exists(reg: Registry, path: str) -> None:
    doc = _openapi.document(reg, path)
    assert doc is not None
    assert doc["openapi"].startswith("3.")
    group, version = ("", "v1") if path == "api/v1" else tuple(path.split("/")[1:])
    for rt in reg.resources(group, version):
        op = doc["paths"][_item_path(rt)]["patch"]
        assert op["x-kubernetes-group-version-kind"] == {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        }
        assert {"name": "fieldValidation", "in": "query"}.items() <= op["parameters"][2].items()
        assert sorted(op["requestBody"]["content"]) == [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
        ]
        assert _supports_field_validation(doc, rt.group, rt.version, rt.kind)
        schema = doc["components"]["schemas"][_openapi.schema_name(rt)]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ]


def test_no_strategic_merge_patch_anywhere(reg: Registry) -> None:
    for path in _openapi.index(reg)["paths"]:
        text = json.dumps(_openapi.document(reg, path))
        assert "strategic-merge-patch" not in text


def test_namespace_patch_path_in_core(reg: Registry) -> None:
    doc = _openapi.document(reg, "api/v1")
    assert doc is not None
    op = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {
        "group": "",
        "version": "v1",
        "kind": "Namespace",
    }
    assert "/api/v1/namespaces/{name}/finalize" in doc["paths"]
    assert "put" in doc["paths"]["/api/v1/namespaces/{name}/finalize"]


def test_subresource_paths(reg: Registry) -> None:
    doc = _openapi.document(reg, "apis/apps/v1")
    assert doc is not None
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    status = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/status"]
    assert status["patch"]["x-kubernetes-group-version-kind"]["kind"] == "StatefulSet"
    assert "/apis/apps/v1/statefulsets" in doc["paths"]
    core = _openapi.document(reg, "api/v1")
    assert core is not None
    assert "get" in core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]


def test_refs_resolve(reg: Registry) -> None:
    for path in _openapi.index(reg)["paths"]:
        doc = _openapi.document(reg, path)
        assert doc is not None
        schemas = doc["components"]["schemas"]
        text = json.dumps(doc)
        for ref in set(text.split('"#/components/schemas/')[1:]):
            name = ref.split('"', 1)[0]
            assert name in schemas, (path, name)


def test_builtin_schema_describes_fields(reg: Registry) -> None:
    doc = _openapi.document(reg, "apis/apps/v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    sts = schemas["io.k8s.api.apps.v1.StatefulSet"]
    assert set(sts["properties"]) >= {"apiVersion", "kind", "metadata", "spec", "status"}
    spec_ref = sts["properties"]["spec"]["allOf"][0]["$ref"].rsplit("/", 1)[1]
    assert "replicas" in schemas[spec_ref]["properties"]
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    assert "name" in meta["properties"]


def test_unknown_document() -> None:
    reg = Registry.builtin()
    assert _openapi.document(reg, "apis/example.com/v1") is None
    assert _openapi.document(reg, "api/v2") is None
    assert _openapi.document(reg, "version") is None


def test_crd_documents_and_hashes() -> None:
    reg = Registry.builtin(compile_schema=_Compiled)
    before = _openapi.index(reg)["paths"]
    assert "apis/example.com/v1" not in before
    reg.add_crd(_crd())
    after = _openapi.index(reg)["paths"]
    assert "apis/example.com/v1" in after
    # Built-in documents keep their hash; the CRD's changes when the CRD changes.
    assert after["api/v1"] == before["api/v1"]
    doc = _openapi.document(reg, "apis/example.com/v1")
    assert doc is not None
    item = "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"
    assert _supports_field_validation(doc, "example.com", "v1", "Widget")
    assert "patch" in doc["paths"][item + "/scale"]
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    assert schema["description"] == "A widget."
    assert schema["properties"]["spec"]["properties"]["replicas"]["description"] == "How many."
    assert "metadata" in schema["properties"]
    assert WIDGET_SCHEMA["properties"].keys() == {"spec", "status"}  # not mutated

    same = _crd(("v1", "v2"))
    reg.add_crd(same)
    again = _openapi.index(reg)["paths"]
    assert again["apis/example.com/v1"] == after["apis/example.com/v1"]  # content unchanged
    assert "apis/example.com/v2" in again
    changed = _crd()
    changed["spec"]["versions"][0]["schema"] = {
        "openAPIV3Schema": {**WIDGET_SCHEMA, "description": "Changed."}
    }
    reg.add_crd(changed)
    assert _openapi.index(reg)["paths"]["apis/example.com/v1"] != after["apis/example.com/v1"]
    reg.remove_crd("widgets.example.com")
    assert "apis/example.com/v1" not in _openapi.index(reg)["paths"]
    assert _openapi.document(reg, "apis/example.com/v1") is None


def test_crd_without_schema_still_documents() -> None:
    reg = Registry.builtin(compile_schema=_Compiled)
    crd = _crd()
    del crd["spec"]["versions"][0]["schema"]
    reg.add_crd(crd)
    doc = _openapi.document(reg, "apis/example.com/v1")
    assert doc is not None
    assert doc["components"]["schemas"]["com.example.v1.Widget"]["type"] == "object"
