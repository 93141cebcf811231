"""Official `kubernetes` client against the embedded server: bad requests and HTTP basics.

Every malformed request must come back as a Status error with the upstream code and
reason (ERR-1), never a 500 and never a dropped keep-alive connection (HTTP-1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from _server_fixtures import apps, core, custom, install_widgets, status_body, widget
from kubernetes import client

from opkit.testing import APIServer

NOT_FOUND_BODY = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {},
    "code": 404,
}
UNKNOWN_FORMAT = "the body of the request was in an unknown format - accepted media types include: "


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def send(
    api: client.ApiClient,
    method: str,
    path: str,
    body: str | bytes | None = None,
    content_type: str | None = None,
    *,
    accept: str | None = None,
) -> Reply:
    """Raw bytes through the official client's transport (its urllib3 pool manager).

    The client's own ``call_api`` re-encodes every body sent as JSON, so malformed
    payloads have to go one layer down.
    """
    headers = {"Authorization": api.configuration.api_key.get("authorization", "")}
    headers["Authorization"] = "Bearer " + headers["Authorization"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    resp = api.rest_client.pool_manager.request(
        method, api.configuration.host + path, body=body, headers=headers, timeout=10
    )
    data: bytes = resp.data
    hdrs = {k.lower(): v for k, v in resp.headers.items()}
    parsed: Any = data
    if hdrs.get("content-type", "") == "application/json" and data and b"\n{" not in data:
        parsed = json.loads(data)
    return Reply(resp.status, hdrs, parsed)


def connections_made(api: client.ApiClient) -> int:
    pool = api.rest_client.pool_manager.connection_from_url(api.configuration.host)
    return int(pool.num_connections)


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as ei:
        fn(*args, **kwargs)
    return int(ei.value.status), status_body(ei.value)


def assert_status(body: dict[str, Any], code: int, reason: str) -> None:
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason), body


def test_bad_requests_are_status_errors_on_one_connection(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1, co = core(k8s_api), custom(k8s_api)
    install_widgets(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "exists"}})
    cms = "/api/v1/namespaces/default/configmaps"
    before = connections_made(k8s_api)

    # malformed JSON
    r = send(k8s_api, "POST", cms, "{not json", "application/json")
    assert r.status == 400
    assert_status(r.body, 400, "BadRequest")
    # the wrong kind for the URL
    code, body = api_error(
        v1.create_namespaced_config_map,
        "default",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}},
    )
    assert code == 400
    assert_status(body, 400, "BadRequest")
    # an unknown resource: the exact upstream body (URL-6)
    code, body = api_error(co.list_namespaced_custom_object, "nope.io", "v1", "default", "things")
    assert (code, body) == (404, NOT_FOUND_BODY)
    code, body = api_error(co.get_cluster_custom_object, "example.com", "v1", "gizmos", "g")
    assert (code, body) == (404, NOT_FOUND_BODY)
    # an invalid label selector
    code, body = api_error(v1.list_namespaced_config_map, "default", label_selector="a in (")
    assert code == 400
    assert_status(body, 400, "BadRequest")
    code, body = api_error(v1.list_namespaced_config_map, "default", label_selector="Bad Key=1")
    assert code == 400
    # a custom resource that fails its schema: 422 with one cause per field
    code, body = api_error(
        co.create_namespaced_custom_object,
        "example.com",
        "v1",
        "default",
        "widgets",
        widget("w1", replicas="three", color="green"),
    )
    assert code == 422
    assert_status(body, 422, "Invalid")
    assert body["details"]["name"] == "w1" and body["details"]["kind"] == "Widget"
    assert body["details"]["group"] == "example.com"
    causes = {c["field"]: c for c in body["details"]["causes"]}
    assert set(causes) == {"spec.replicas", "spec.color"}
    assert causes["spec.color"]["reason"] == "FieldValueNotSupported"
    assert causes["spec.color"]["message"] == (
        'Unsupported value: "green": supported values: "red", "blue"'
    )
    assert causes["spec.replicas"]["reason"] == "FieldValueTypeInvalid"
    assert body["message"].startswith('Widget.example.com "w1" is invalid: [')
    # unsupported media types, protobuf included (HTTP-3, PROTO-1)
    r = send(k8s_api, "POST", cms, "a=b", "text/plain")
    assert r.status == 415
    assert_status(r.body, 415, "UnsupportedMediaType")
    assert r.body["message"] == UNKNOWN_FORMAT + "application/json, application/yaml"
    r = send(k8s_api, "POST", cms, b"k8s\x00\n\x04\n\x02v1", "application/vnd.kubernetes.protobuf")
    assert r.status == 415
    assert r.body["message"] == UNKNOWN_FORMAT + "application/json, application/yaml"
    r = send(k8s_api, "PATCH", cms + "/exists", "{}", "application/apply-patch+cbor")
    assert r.status == 415
    assert r.body["message"] == UNKNOWN_FORMAT + (
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
    )
    # an unknown field under fieldValidation=Strict (VALID-2)
    dep = {
        "metadata": {"name": "d"},
        "spec": {
            "foo": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    # (the typed client refuses unknown fields itself, so this goes raw, as kubectl sends it)
    r = send(
        k8s_api,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict",
        json.dumps(dep),
        "application/json",
    )
    assert r.status == 400
    assert_status(r.body, 400, "BadRequest")
    assert r.body["message"] == 'strict decoding error: unknown field "spec.foo"'
    with pytest.raises(client.ApiException) as ei:
        apps(k8s_api).read_namespaced_deployment("d", "default")
    assert ei.value.status == 404
    # a method the resource does not support
    r = send(k8s_api, "PATCH", cms, "{}", "application/merge-patch+json")
    assert r.status == 405
    assert_status(r.body, 405, "MethodNotAllowed")
    # only unacceptable response types
    r = send(k8s_api, "GET", cms, accept="application/vnd.kubernetes.protobuf")
    assert r.status == 406
    assert_status(r.body, 406, "NotAcceptable")
    assert r.body["message"].startswith("only the following media types are accepted: ")
    # a JSON patch that is not a list, and malformed query values
    r = send(k8s_api, "PATCH", cms + "/exists", '{"op":"add"}', "application/json-patch+json")
    assert r.status in (400, 422)
    r = send(k8s_api, "GET", cms + "?watch=1&timeoutSeconds=soon")
    assert r.status == 400
    assert_status(r.body, 400, "BadRequest")
    r = send(k8s_api, "GET", cms + "?limit=-1x")
    assert r.status == 400
    # an unknown subresource
    r = send(k8s_api, "GET", cms + "/exists/status")
    assert (r.status, r.body) == (404, NOT_FOUND_BODY)

    # the server kept the same connection open through all of it
    assert connections_made(k8s_api) == before
    assert not [rec for rec in apiserver.request_log if rec[3] >= 500]
    assert v1.read_namespaced_config_map("exists", "default").metadata.name == "exists"


def test_every_error_response_is_keep_alive_with_length_and_cache_control(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    cases = [
        ("GET", "/nope", None, None),
        ("GET", "/api/v1/namespaces/default/configmaps/missing", None, None),
        ("POST", "/api/v1/namespaces/default/configmaps", "[]", "application/json"),
        ("POST", "/api/v1/namespaces/nowhere/configmaps", '{"metadata":{"name":"x"}}', None),
        ("DELETE", "/api/v1/namespaces/default", None, None),
    ]
    for method, path, body, ctype in cases:
        r = send(k8s_api, method, path, body, ctype)
        assert 400 <= r.status < 500, (method, path, r.status)
        assert r.headers["cache-control"] == "no-cache, private"  # ENV-2
        assert int(r.headers["content-length"]) == len(json.dumps(r.body, separators=(",", ":")))
        assert r.headers.get("connection", "").lower() != "close"
        assert r.body["code"] == r.status
    assert connections_made(k8s_api) == 1


def test_query_values_are_decoded_and_extras_ignored(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    cms = "/api/v1/namespaces/default/configmaps"
    # Go booleans are case-insensitive (HTTP-5)
    r = send(k8s_api, "GET", f"{cms}?watch=False")
    assert r.status == 200 and r.body["kind"] == "ConfigMapList"
    r = send(k8s_api, "GET", f"{cms}?watch=True&timeoutSeconds=1")
    raw_lines = r.body if isinstance(r.body, bytes) else json.dumps(r.body).encode()
    assert [json.loads(line)["type"] for line in raw_lines.splitlines() if line] == ["ADDED"]
    # unknown parameters (kubectl's timeout=32s, pretty) are ignored on single GETs too
    r = send(k8s_api, "GET", f"{cms}/b?timeout=32s&pretty=true&whatever=1")
    assert r.status == 200 and r.body["metadata"]["name"] == "b"
    # percent-encoded selectors
    r = send(k8s_api, "GET", f"{cms}?fieldSelector=metadata.name%3Db&labelSelector=%21x")
    assert [i["metadata"]["name"] for i in r.body["items"]] == ["b"]


def test_missing_content_type_is_json_and_yaml_is_accepted(k8s_api: client.ApiClient) -> None:
    cms = "/api/v1/namespaces/default/configmaps"
    r = send(k8s_api, "POST", cms, '{"metadata":{"name":"plain"},"data":{"a":"1"}}')
    assert r.status == 201 and r.body["data"] == {"a": "1"}
    assert r.body["kind"] == "ConfigMap" and r.body["apiVersion"] == "v1"  # META-6
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\ndata:\n  a: '2'\n"
    r = send(k8s_api, "POST", cms, doc, "application/yaml")
    assert r.status == 201 and r.body["data"] == {"a": "2"}
    # PUT in YAML too (YAML-1)
    live = core(k8s_api).read_namespaced_config_map("yml", "default")
    doc = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\n"
        f"  resourceVersion: '{live.metadata.resource_version}'\ndata:\n  a: '3'\n"
    )
    r = send(k8s_api, "PUT", cms + "/yml", doc, "application/yaml; charset=utf-8")
    assert r.status == 200 and r.body["data"] == {"a": "3"}


def test_unknown_group_version_and_name_paths(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    for path in (
        "/apis/apps/v2/deployments",
        "/apis/apps/v1/namespaces/default/gizmos",
        "/api/v1/namespaces/default/nodes",  # nodes are cluster-scoped (URL-3)
        "/api/v1/namespaces/default/configmaps/a/b/c",
        "/apis/example.com/v1/namespaces/default/widgets",  # no such CRD yet
    ):
        r = send(k8s_api, "GET", path)
        assert (r.status, r.body) == (404, NOT_FOUND_BODY), path
    assert not [rec for rec in apiserver.request_log if rec[3] >= 500]


def test_delete_with_malformed_options_body_is_rejected(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "keep"}})
    rev = apiserver.store.rev
    path = "/api/v1/namespaces/default/configmaps/keep"
    # DeleteOptions arrive in the body (DEL-1); one that cannot be decoded must not be
    # ignored -- it may have carried dryRun or preconditions
    for payload in ('{"dryRun": ["All"]', "{oops", '["All"]', '{"preconditions": 5}'):
        r = send(k8s_api, "DELETE", path, payload, "application/json")
        assert r.status == 400, payload
        assert_status(r.body, 400, "BadRequest")
    assert apiserver.store.rev == rev
    assert v1.read_namespaced_config_map("keep", "default").metadata.name == "keep"


def test_post_on_an_item_path_is_405_and_changes_nothing(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "keep"}})
    install_widgets(k8s_api)
    custom(k8s_api).create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget("w1")
    )
    rev = apiserver.store.rev
    for path in (
        "/api/v1/namespaces/default/configmaps/keep",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
        "/api/v1/namespaces/default",
    ):
        r = send(k8s_api, "POST", path, '{"metadata":{"name":"x"}}', "application/json")
        assert r.status == 405, (path, r.body)
        assert_status(r.body, 405, "MethodNotAllowed")
    assert apiserver.store.rev == rev
    assert v1.read_namespaced_config_map("keep", "default").metadata.name == "keep"
