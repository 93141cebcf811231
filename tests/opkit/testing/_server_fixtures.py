"""Fixtures shared by the test modules (a plugin: see ``tests/conftest.py``), and helpers
for the embedded API server tests (test_server_*.py)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from opkit.client import Client
from opkit.testing import APIServer


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fails the test if it ends with a different number of threads than it started with."""
    before = threading.active_count()
    yield
    assert threading.active_count() == before


@pytest.fixture(name="client")
def opkit_client(kubeconfig: str) -> Iterator[Client]:
    """An :class:`opkit.client.Client` for the ``apiserver`` fixture."""
    c = Client.from_kubeconfig(kubeconfig)
    yield c
    c.close()


@pytest.fixture
def k8s_api(apiserver: APIServer) -> Iterator[client.ApiClient]:
    """An official-client ApiClient talking to the ``apiserver`` fixture."""
    cfg = client.Configuration()
    cfg.host = apiserver.url
    cfg.api_key = {"authorization": apiserver.token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = client.ApiClient(cfg)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def core(api: client.ApiClient) -> Any:
    """CoreV1Api, untyped: the tests pass plain dicts where the models are declared."""
    return client.CoreV1Api(api)


def apps(api: client.ApiClient) -> Any:
    return client.AppsV1Api(api)


def custom(api: client.ApiClient) -> Any:
    return client.CustomObjectsApi(api)


def extensions(api: client.ApiClient) -> Any:
    return client.ApiextensionsV1Api(api)


def new_watch() -> Any:
    return watch.Watch()  # type: ignore[no-untyped-call]


def raw(
    server: APIServer,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request (for what a real client cannot express); parses JSON bodies."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data: bytes | None
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        payload = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        ctype = hdrs.get("content-type", "")
        parsed: Any = payload
        if payload and ctype.startswith("application/json"):
            parsed = json.loads(payload)
        return resp.status, hdrs, parsed
    finally:
        conn.close()


def status_body(exc: client.ApiException) -> dict[str, Any]:
    """The Status body of a client error."""
    body: dict[str, Any] = json.loads(exc.body or "{}")
    return body


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["all"],
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
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "size": {"type": "string"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                    "phase": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def install_widgets(api: client.ApiClient, crd: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create the Widget CRD and return the created object as a dict."""
    ext = extensions(api)
    created = ext.create_custom_resource_definition(json.loads(json.dumps(crd or WIDGET_CRD)))
    result: dict[str, Any] = api.sanitize_for_serialization(created)  # type: ignore[no-untyped-call]
    return result


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }
