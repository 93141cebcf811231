"""Embedded API server: CRUD, metadata, concurrency and error semantics via real clients."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from _server_fixtures import apps, core, raw, status_body
from kubernetes import client

from opkit.testing import APIServer

RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": dict(data)}


def test_version_and_health(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    info = client.VersionApi(k8s_api).get_code()  # GET /version/ (ENV-4)
    assert (info.major, info.minor) == ("1", "32")
    assert info.git_version.startswith("v1.32.")
    code, headers, body = raw(apiserver, "GET", "/version")
    assert code == 200 and headers["cache-control"] == "no-cache, private"
    assert set(body) == {
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    }
    for path in ("/healthz", "/livez", "/readyz"):
        code, headers, text = raw(apiserver, "GET", path)
        assert (code, text) == (200, b"ok")
        assert headers["content-type"].startswith("text/plain")


def test_default_namespaces_and_kubernetes_service(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    names = [ns.metadata.name for ns in v1.list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    ns = v1.read_namespace("default")
    assert ns.spec.finalizers == ["kubernetes"] and ns.status.phase == "Active"
    svc = v1.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1"
    assert svc.spec.ports[0].port == 443


def test_create_sets_system_metadata(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    body = {
        "metadata": {
            "name": "c1",
            "uid": "client-uid",
            "resourceVersion": "999",
            "creationTimestamp": "2000-01-01T00:00:00Z",
            "selfLink": "/x",
        },
        "data": {"a": "b"},
    }
    created = v1.create_namespaced_config_map("default", body)
    meta = created.metadata
    assert str(uuid.UUID(meta.uid)) == meta.uid and meta.uid != "client-uid"
    assert meta.resource_version != "999" and int(meta.resource_version) > 0
    assert meta.creation_timestamp.year > 2000
    assert meta.self_link is None
    assert meta.namespace == "default"
    assert created.kind == "ConfigMap" and created.api_version == "v1"
    # raw wire format: whole-second RFC 3339 and string resourceVersion (META-1, META-7)
    _, _, apiserver_obj = raw(apiserver, "GET", "/api/v1/namespaces/default/configmaps/c1")
    assert RFC3339_SECONDS.match(apiserver_obj["metadata"]["creationTimestamp"])
    assert isinstance(apiserver_obj["metadata"]["resourceVersion"], str)


def test_global_revision_counter(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    a = v1.create_namespaced_config_map("default", cm("a"))
    b = v1.create_namespaced_secret("default", {"metadata": {"name": "b"}})
    c = v1.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    revs = [int(o.metadata.resource_version) for o in (a, b, c)]
    assert revs == sorted(revs) and len(set(revs)) == 3
    lst = v1.list_namespaced_config_map("default")
    assert int(lst.metadata.resource_version) == revs[-1]


def test_generate_name(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    obj = v1.create_namespaced_config_map("default", {"metadata": {"generateName": "job-"}})
    assert re.match(r"^job-[bcdfghjklmnpqrstvwxz2456789]{5}$", obj.metadata.name)
    assert obj.metadata.generate_name == "job-"
    long_prefix = "x" * 70
    obj = v1.create_namespaced_config_map("default", {"metadata": {"generateName": long_prefix}})
    assert len(obj.metadata.name) == 63
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("default", {"metadata": {}})
    assert ei.value.status == 422
    assert (
        "metadata.name: Required value: name or generateName is required"
        in status_body(ei.value)["message"]
    )


def test_invalid_names_are_422(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("default", cm("Bad_Name"))
    body = status_body(ei.value)
    assert ei.value.status == 422 and body["reason"] == "Invalid"
    assert "a lowercase RFC 1123 subdomain" in body["message"]
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_already_exists_and_not_found_bodies(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", cm("dup"))
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("default", cm("dup"))
    body = status_body(ei.value)
    assert ei.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "dup" already exists'
    with pytest.raises(client.ApiException) as ei:
        apps(k8s_api).read_namespaced_stateful_set("web", "default")
    body = status_body(ei.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'statefulsets.apps "web" not found',
        "reason": "NotFound",
        "details": {"name": "web", "group": "apps", "kind": "statefulsets"},
        "code": 404,
    }


def test_unknown_resource_and_bad_verb(apiserver: APIServer) -> None:
    for path in ("/apis/nope.io/v1/things", "/api/v2/pods", "/api/v1/nothings"):
        code, headers, body = raw(apiserver, "GET", path)
        assert code == 404
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }
        assert headers["cache-control"] == "no-cache, private"
    code, _, body = raw(apiserver, "PUT", "/api/v1/namespaces/default/configmaps", b"{}")
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    # POST on an item path is not a create (and must never touch the object)
    code, _, body = raw(apiserver, "POST", "/api/v1/namespaces/default", b"{}")
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    assert raw(apiserver, "GET", "/api/v1/namespaces/default")[0] == 200


def test_type_meta_fill_in_and_mismatch(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    created = v1.create_namespaced_config_map("default", cm("typed"))  # body has no kind
    assert created.kind == "ConfigMap"
    wrong_version = {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}}
    code, _, body = raw(apiserver, "POST", "/api/v1/namespaces/default/configmaps", wrong_version)
    assert code == 400 and body["reason"] == "BadRequest"
    assert body["message"] == (
        "the API version in the data (v2) does not match the expected API version (v1)"
    )
    wrong_kind = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    code, _, body = raw(apiserver, "POST", "/api/v1/namespaces/default/configmaps", wrong_kind)
    assert code == 400 and body["reason"] == "BadRequest"
    other_ns = {"metadata": {"name": "x", "namespace": "kube-system"}}
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("default", other_ns)
    assert ei.value.status == 400
    assert "does not match the namespace sent on the request" in status_body(ei.value)["message"]
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_config_map("typed", "default", cm("other"))
    assert ei.value.status == 400


def test_malformed_bodies_never_500(apiserver: APIServer) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    cases: list[tuple[bytes, str, int]] = [
        (b"{not json", "application/json", 400),
        (b"[1,2]", "application/json", 400),
        (b'"str"', "application/json", 400),
        (b"", "application/json", 400),
        (b"k8s\x00\x0a\x0f", "application/vnd.kubernetes.protobuf", 415),
        (b"<xml/>", "application/xml", 415),
        (b'{"metadata": {"name": 5}}', "application/json", 400),
        (b'{"metadata": {"name": "x", "labels": {"a": 1}}}', "application/json", 400),
        (b'{"metadata": {"name": "x"}, "data": {"a": 1}}', "application/json", 400),
        (b'{"metadata": {"name": "x"}, "data": ["a"]}', "application/json", 400),
        (b"[" * 50000 + b"]" * 50000, "application/json", 400),
        (b"metadata: [unclosed", "application/yaml", 400),
    ]
    for payload, ctype, want in cases:
        code, headers, body = raw(apiserver, "POST", path, payload, {"Content-Type": ctype})
        assert code == want, (payload, body)
        assert body["kind"] == "Status" and body["code"] == want
        assert int(headers["content-length"]) > 0
    code, _, body = raw(apiserver, "POST", path, {"metadata": {"name": "t"}, "data": {"a": 1}})
    assert body["message"] == (
        "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    )
    code, _, body = raw(
        apiserver,
        "POST",
        path,
        b"k8s\x00",
        {"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"
    )


def test_garbage_http_gets_status_body(apiserver: APIServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", apiserver.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Cache-Control: no-cache, private" in head
    assert json.loads(body)["kind"] == "Status"


def test_yaml_body_and_accept_negotiation(apiserver: APIServer) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\ndata:\n  k: v\n"
    code, _, body = raw(apiserver, "POST", path, doc, {"Content-Type": "application/yaml"})
    assert code == 201 and body["data"] == {"k": "v"}
    code, headers, _ = raw(
        apiserver, "GET", path, headers={"Accept": "application/vnd.kubernetes.protobuf"}
    )
    assert code == 406
    code, headers, body = raw(
        apiserver,
        "GET",
        path + "/fromyaml",
        headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"},
    )
    assert code == 200 and headers["content-type"] == "application/json"
    assert body["metadata"]["name"] == "fromyaml"
    code, headers, text = raw(
        apiserver, "GET", path + "/fromyaml", headers={"Accept": "application/yaml"}
    )
    assert code == 200 and b"name: fromyaml" in text


def test_optimistic_concurrency(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    first = v1.create_namespaced_config_map("default", cm("occ", a="1"))
    stale_rv = first.metadata.resource_version
    first.data = {"a": "2"}
    updated = v1.replace_namespaced_config_map("occ", "default", first)
    assert updated.metadata.resource_version != stale_rv
    first.data = {"a": "3"}
    first.metadata.resource_version = stale_rv
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_config_map("occ", "default", first)
    body = status_body(ei.value)
    assert ei.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "occ": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "occ", "kind": "configmaps"}
    # built-ins allow unconditional PUT (CONC-2)
    replaced = v1.replace_namespaced_config_map("occ", "default", cm("occ", a="4"))
    assert replaced.data == {"a": "4"}
    # PATCH carrying a stale resourceVersion conflicts (CONC-3)
    with pytest.raises(client.ApiException) as ei:
        v1.patch_namespaced_config_map(
            "occ", "default", {"metadata": {"resourceVersion": stale_rv}, "data": {"a": "5"}}
        )
    assert ei.value.status == 409
    # PUT/PATCH of a missing object is 404 (CONC-5)
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_config_map("missing", "default", cm("missing"))
    assert ei.value.status == 404
    with pytest.raises(client.ApiException) as ei:
        v1.patch_namespaced_config_map("missing", "default", {"data": {"a": "1"}})
    assert ei.value.status == 404


def test_noop_update_keeps_revision(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    created = v1.create_namespaced_config_map("default", cm("same", a="1"))
    rev = apiserver.store.rev
    writes = apiserver.write_count
    again = v1.replace_namespaced_config_map("same", "default", created)
    patched = v1.patch_namespaced_config_map("same", "default", {"data": {"a": "1"}})
    assert again.metadata.resource_version == created.metadata.resource_version
    assert patched.metadata.resource_version == created.metadata.resource_version
    assert apiserver.store.rev == rev and apiserver.write_count == writes


def test_immutable_metadata(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    created = v1.create_namespaced_config_map("default", cm("imm"))
    body = {"metadata": {"name": "imm", "uid": "0000-other"}, "data": {}}
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_config_map("imm", "default", body)
    assert ei.value.status == 422
    assert "metadata.uid" in status_body(ei.value)["message"]
    assert "field is immutable" in status_body(ei.value)["message"]
    # creationTimestamp sent back differently is silently preserved
    odd = {"metadata": {"name": "imm", "creationTimestamp": "2001-01-01T00:00:00Z"}}
    kept = v1.replace_namespaced_config_map("imm", "default", odd)
    assert kept.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert kept.metadata.uid == created.metadata.uid


def test_generation_tracking_builtin(k8s_api: client.ApiClient) -> None:
    appsv1 = apps(k8s_api)
    sts = {
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }
    created = appsv1.create_namespaced_stateful_set("default", sts)
    assert created.metadata.generation == 1
    assert created.status.replicas == 0  # required by the client model (ENV-3)
    assert created.spec.update_strategy.type == "RollingUpdate"  # CTRL-11 default
    labelled = appsv1.patch_namespaced_stateful_set(
        "web", "default", {"metadata": {"labels": {"x": "y"}}}
    )
    assert labelled.metadata.generation == 1
    scaled = appsv1.patch_namespaced_stateful_set("web", "default", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    status = appsv1.patch_namespaced_stateful_set_status(
        "web", "default", {"status": {"replicas": 3, "readyReplicas": 1}}
    )
    assert status.metadata.generation == 2 and status.status.ready_replicas == 1
    # main endpoint ignores status (STAT-1)
    ignored = appsv1.patch_namespaced_stateful_set("web", "default", {"status": {"replicas": 9}})
    assert ignored.status.replicas == 3


def test_dry_run_persists_nothing(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", cm("real", a="1"))
    rev = apiserver.store.rev
    made = v1.create_namespaced_config_map("default", cm("ghost"), dry_run="All")
    assert made.metadata.uid and made.metadata.name == "ghost"
    changed = v1.patch_namespaced_config_map("real", "default", {"data": {"a": "2"}}, dry_run="All")
    assert changed.data == {"a": "2"}
    replaced = v1.replace_namespaced_config_map("real", "default", cm("real", a="3"), dry_run="All")
    assert replaced.data == {"a": "3"}
    v1.delete_namespaced_config_map("real", "default", dry_run="All")
    assert apiserver.store.rev == rev
    assert v1.read_namespaced_config_map("real", "default").data == {"a": "1"}
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_config_map("ghost", "default")
    assert ei.value.status == 404
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("default", cm("x"), dry_run="Maybe")
    body = status_body(ei.value)
    assert ei.value.status == 422 and body["details"]["kind"] == "CreateOptions"
    assert 'dryRun[0]: Unsupported value: "Maybe": supported values: "All"' in body["message"]


def test_field_validation_modes(apiserver: APIServer) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    body = {"metadata": {"name": "fv1"}, "data": {"a": "b"}, "bogus": 1}
    code, _, resp = raw(apiserver, "POST", path + "?fieldValidation=Strict", body)
    assert code == 400 and resp["message"] == 'strict decoding error: unknown field "bogus"'
    code, headers, resp = raw(apiserver, "POST", path + "?fieldValidation=Warn", body)
    assert code == 201 and "bogus" not in resp
    assert headers["warning"] == '299 - "unknown field \\"bogus\\""'
    body["metadata"] = {"name": "fv2"}
    code, headers, resp = raw(apiserver, "POST", path + "?fieldValidation=Ignore", body)
    assert code == 201 and "bogus" not in resp and "warning" not in headers
    code, _, resp = raw(apiserver, "POST", path + "?fieldValidation=Loose", body)
    assert code == 422 and resp["details"]["kind"] == "CreateOptions"
    dup = b'{"metadata": {"name": "fv3"}, "data": {"a": "1", "a": "2"}}'
    code, _, resp = raw(apiserver, "POST", path + "?fieldValidation=Strict", dup)
    assert code == 400 and "duplicate field" in resp["message"]


def test_patch_types_on_builtin(k8s_api: client.ApiClient, apiserver: APIServer) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", cm("p", a="1", b="2"))
    merged = v1.patch_namespaced_config_map("p", "default", {"data": {"b": None, "c": "3"}})
    assert merged.data == {"a": "1", "c": "3"}
    ops = [{"op": "replace", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/c"}]
    jp = v1.patch_namespaced_config_map("p", "default", ops)
    assert jp.data == {"a": "9"}
    path = "/api/v1/namespaces/default/configmaps/p"
    code, _, body = raw(
        apiserver,
        "PATCH",
        path,
        {"data": {"m": "1"}},
        {"Content-Type": "application/merge-patch+json; charset=utf-8"},
    )
    assert code == 200 and body["data"] == {"a": "9", "m": "1"}
    code, _, body = raw(apiserver, "PATCH", path, b"{}", {"Content-Type": "text/plain"})
    assert code == 415
    bad_test = [{"op": "test", "path": "/data/a", "value": "nope"}]
    code, _, body = raw(
        apiserver, "PATCH", path, bad_test, {"Content-Type": "application/json-patch+json"}
    )
    assert code == 422 and body["kind"] == "Status"
    code, _, body = raw(
        apiserver,
        "PATCH",
        path + "?force=true",
        {"data": {}},
        {"Content-Type": "application/merge-patch+json"},
    )
    assert code == 422 and "force: Forbidden" in body["message"]


def test_server_side_apply_create_and_field_manager(
    k8s_api: client.ApiClient, apiserver: APIServer
) -> None:
    path = "/api/v1/namespaces/default/configmaps/applied"
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "1"},
    }
    headers = {"Content-Type": "application/apply-patch+yaml"}
    code, _, body = raw(apiserver, "PATCH", path, doc, headers)
    assert code == 422 and "fieldManager: Required value" in body["message"]
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=test", doc, headers)
    assert code == 201 and body["data"] == {"a": "1"}
    doc["data"] = {"a": "2"}
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=test&force=false", doc, headers)
    assert code == 200 and body["data"] == {"a": "2"}
    with_mf = {**doc, "metadata": {"name": "applied", "managedFields": []}}
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=test", with_mf, headers)
    assert code == 400 and body["message"] == "metadata.managedFields must be nil"


def test_get_and_list_resource_version_semantics(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", cm("rv", a="1"))
    old_rv = v1.read_namespaced_config_map("rv", "default").metadata.resource_version
    v1.patch_namespaced_config_map("rv", "default", {"data": {"a": "2"}})
    _, _, current = raw(
        apiserver, "GET", "/api/v1/namespaces/default/configmaps/rv?resourceVersion=0"
    )
    assert current["data"] == {"a": "2"}
    lst = v1.list_namespaced_config_map(
        "default", resource_version=old_rv, resource_version_match="Exact"
    )
    assert [i.data for i in lst.items if i.metadata.name == "rv"] == [{"a": "1"}]
    assert lst.metadata.resource_version == old_rv
    code, _, body = raw(
        apiserver,
        "GET",
        f"/api/v1/namespaces/default/configmaps/rv?resourceVersion={old_rv}"
        "&resourceVersionMatch=Exact",
    )
    assert code == 200 and body["data"] == {"a": "1"}
    apiserver.compact()
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map(
            "default", resource_version=old_rv, resource_version_match="Exact"
        )
    assert ei.value.status == 410 and status_body(ei.value)["reason"] == "Expired"
    future = str(apiserver.store.rev + 100)
    code, _, body = raw(
        apiserver, "GET", f"/api/v1/namespaces/default/configmaps?resourceVersion={future}"
    )
    assert code == 504 and body["reason"] == "Timeout"
    assert body["message"].startswith(f"Timeout: Too large resource version: {future}, current: ")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_list_options_validation(apiserver: APIServer) -> None:
    base = "/api/v1/namespaces/default/configmaps"
    cases = [
        "?resourceVersionMatch=Exact",
        "?resourceVersion=1&resourceVersionMatch=Sometimes",
        "?resourceVersion=0&resourceVersionMatch=Exact",
        "?sendInitialEvents=true",
    ]
    for q in cases:
        code, _, body = raw(apiserver, "GET", base + q)
        assert code == 422, q
        assert body["details"]["kind"] == "ListOptions" and body["reason"] == "Invalid"
    code, _, body = raw(apiserver, "GET", base + "?labelSelector=a%20in%20(")
    assert code == 400 and body["reason"] == "BadRequest"
    code, _, body = raw(apiserver, "GET", base + "?fieldSelector=foo.bar%3Dx")
    assert code == 400
    assert body["message"] == (
        '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    code, _, body = raw(apiserver, "GET", base + "?continue=garbage!")
    assert code == 400


def test_namespace_must_exist_and_not_terminate(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("nowhere", cm("x"))
    body = status_body(ei.value)
    assert ei.value.status == 404 and body["message"] == 'namespaces "nowhere" not found'
    for name in ("default", "kube-system", "kube-public"):
        with pytest.raises(client.ApiException) as ei:
            v1.delete_namespace(name)
        assert ei.value.status == 403
        assert "this namespace may not be deleted" in status_body(ei.value)["message"]


def test_server_side_apply_conflicts(apiserver: APIServer) -> None:
    path = "/api/v1/namespaces/default/configmaps/owned"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned"},
        "data": {"a": "1", "b": "1"},
    }
    assert raw(apiserver, "PATCH", path + "?fieldManager=alice", doc, headers)[0] == 201
    theirs = {**doc, "data": {"a": "2"}}
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=bob", theirs, headers)
    assert code == 409 and body["reason"] == "Conflict"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".data.a",
        }
    ]
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=bob&force=true", theirs, headers)
    assert code == 200 and body["data"] == {"a": "2", "b": "1"}
    managers = {m["manager"] for m in body["metadata"]["managedFields"]}
    assert managers == {"alice", "bob"}
    # alice stops applying b: it is removed since nobody else owns it (SSA-3)
    mine = {**doc, "data": {}}
    code, _, body = raw(apiserver, "PATCH", path + "?fieldManager=alice", mine, headers)
    assert code == 200 and body["data"] == {"a": "2"}


def test_concurrent_unconditional_patches_lose_nothing(apiserver: APIServer) -> None:
    import threading

    cfg = client.Configuration()
    cfg.host = apiserver.url

    def writer(i: int) -> None:
        with client.ApiClient(cfg) as api:
            v1 = core(api)
            for j in range(20):
                v1.patch_namespaced_config_map("hot", "default", {"data": {f"k{i}-{j}": "v"}})

    with client.ApiClient(cfg) as api:
        core(api).create_namespaced_config_map("default", cm("hot"))
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        data = core(api).read_namespaced_config_map("hot", "default").data
    assert len(data) == 120
