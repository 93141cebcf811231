"""Container environment: $(VAR) expansion, env, valueFrom, envFrom, configuration errors."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from opkit.testing.kubelet._env import (
    ConfigError,
    container_env,
    expand,
    field_value,
    parse_quantity,
    resource_value,
)

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-0",
        "namespace": "shop",
        "uid": "u-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {"nodeName": "opkit-node", "serviceAccountName": "builder"},
    "status": {"podIP": "127.200.0.9", "hostIP": "127.200.0.1"},
}
CONFIGMAPS = {("shop", "cfg"): {"data": {"LEVEL": "debug", "bad key": "x", "url": "http://x"}}}
SECRETS = {
    ("shop", "creds"): {
        "type": "Opaque",
        "data": {"password": base64.b64encode(b"s3cret").decode()},
    }
}


def _get(table: Mapping[tuple[str, str], Any]) -> Any:
    return lambda ns, name: table.get((ns, name))


def _env(container: dict[str, Any], **kw: Any) -> dict[str, str]:
    return container_env(
        POD, container, get_configmap=_get(CONFIGMAPS), get_secret=_get(SECRETS), **kw
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("cost: $5", "cost: $5"),
        ("$()", "$()"),
        ("trailing $", "trailing $"),
    ],
)
def test_expansion_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}.get) == expected


def test_env_values_refer_to_earlier_ones_and_service_variables() -> None:
    env = _env(
        {
            "env": [
                {"name": "HOST", "value": "db"},
                {"name": "URL", "value": "http://$(HOST):$(KUBERNETES_SERVICE_PORT)"},
                {"name": "LATER", "value": "$(AFTER)"},
                {"name": "AFTER", "value": "x"},
            ]
        },
        service_env={"KUBERNETES_SERVICE_HOST": "127.200.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert env["URL"] == "http://db:443"
    assert env["LATER"] == "$(AFTER)"  # only what is defined before counts
    assert env["KUBERNETES_SERVICE_HOST"] == "127.200.0.1"


def test_value_from_field_secret_and_configmap_refs() -> None:
    env = _env(
        {
            "env": [
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {
                    "name": "TIER",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}},
                },
                {
                    "name": "PW",
                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                },
                {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LEVEL"}}},
                {
                    "name": "OPT",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "nope", "key": "k", "optional": True}
                    },
                },
            ]
        },
        pod_ip="127.200.0.42",
    )
    assert env == {
        "NAME": "web-0",
        "NS": "shop",
        "IP": "127.200.0.42",
        "TIER": "front",
        "PW": "s3cret",
        "LVL": "debug",
    }


def test_env_from_applies_prefix_skips_invalid_names_and_env_wins() -> None:
    env = _env(
        {
            "envFrom": [
                {"configMapRef": {"name": "cfg"}, "prefix": "APP_"},
                {"secretRef": {"name": "creds"}},
            ],
            "env": [{"name": "APP_LEVEL", "value": "info"}],
        }
    )
    assert env == {"APP_LEVEL": "info", "APP_url": "http://x", "password": "s3cret"}


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ({"secretKeyRef": {"name": "missing", "key": "k"}}, 'secret "missing" not found'),
        (
            {"configMapKeyRef": {"name": "cfg", "key": "nokey"}},
            "couldn't find key nokey in Configmap shop/cfg",
        ),
        ({"fieldRef": {"fieldPath": "spec.nope"}}, 'unsupported fieldPath "spec.nope"'),
    ],
)
def test_missing_sources_are_configuration_errors(var: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _env({"env": [{"name": "X", "valueFrom": var}]})


def test_downward_labels_and_annotations_are_key_value_lines() -> None:
    assert field_value(POD, "metadata.labels") == 'app="web"\ntier="front"'
    assert field_value(POD, "metadata.annotations") == 'note="say \\"hi\\""'


def test_resource_field_refs_use_limits_then_node_capacity() -> None:
    container = {"resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}
    assert resource_value(container, {"resource": "limits.cpu"}) == "1"
    assert resource_value(container, {"resource": "limits.cpu", "divisor": "1m"}) == "500"
    assert resource_value(container, {"resource": "limits.memory", "divisor": "1Mi"}) == "64"
    assert int(resource_value({}, {"resource": "limits.cpu"})) >= 1
    assert resource_value({}, {"resource": "requests.memory"}) == "0"
    assert parse_quantity("1Gi") == 2**30
    with pytest.raises(ConfigError):
        parse_quantity("lots")
