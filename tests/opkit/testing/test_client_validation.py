"""Decoding and validation rules of built-in kinds, through the official client and kubectl.

Secret ``stringData`` and base64 ``[]byte`` fields, config keys and size limits, the update
rules that freeze most of a Pod/PVC/Service/StatefulSet spec, ObjectMeta finalizers and
owner references, ``pods/binding``, YAML request bodies and end-of-text anchors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from _server_fixtures import apps, core, extensions, status_body
from kubernetes import client

from opkit.testing import APIServer
from opkit.testing._pytest_plugin import Kubectl

NS = "default"


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as ei:
        fn(*args, **kwargs)
    return int(ei.value.status), status_body(ei.value)


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.get("field", ""), c.get("message", "")) for c in body["details"]["causes"]]


def post_raw(
    api: client.ApiClient, path: str, body: Any, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    """A request through the official client's transport, bypassing its typed methods, which
    refuse bodies their models reject before sending anything. A ``str`` body is sent as is;
    anything else as JSON."""
    resp = api.call_api(
        "POST",
        api.configuration.host + path,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
    )
    resp.read()  # type: ignore[no-untyped-call]
    return int(resp.status), json.loads(resp.data or b"{}")


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}], **spec},
    }


# ---------------------------------------------------------------------------------------
# A5: Secret stringData


def test_string_data_is_merged_on_every_kind_of_write(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_secret(NS, {"metadata": {"name": "s"}, "stringData": {"a": "1"}})
    put = v1.replace_namespaced_secret(
        "s",
        NS,
        {"metadata": {"name": "s"}, "data": {"a": "MQ=="}, "stringData": {"b": "2"}},
    )
    assert (put.data, put.string_data) == ({"a": "MQ==", "b": "Mg=="}, None)
    merged = v1.patch_namespaced_secret(
        "s", NS, {"stringData": {"c": "3"}}, _content_type="application/merge-patch+json"
    )
    assert merged.data["c"] == "Mw==" and merged.string_data is None
    jsonpatch = v1.patch_namespaced_secret(
        "s", NS, [{"op": "add", "path": "/stringData", "value": {"a": "new"}}]
    )
    assert jsonpatch.data == {"a": "bmV3", "b": "Mg==", "c": "Mw=="}
    applied = v1.patch_namespaced_secret(
        "s",
        NS,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"d": "4"}},
        field_manager="op",
        _content_type="application/apply-patch+yaml",
    )
    assert applied.data["d"] == "NA==" and applied.string_data is None
    stored = v1.read_namespaced_secret("s", NS)
    assert stored.string_data is None and set(stored.data) == {"a", "b", "c", "d"}


def test_string_data_on_an_immutable_secret_is_a_data_change(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_secret(
        NS, {"metadata": {"name": "frozen"}, "data": {"a": "MQ=="}, "immutable": True}
    )
    code, body = api_error(v1.patch_namespaced_secret, "frozen", NS, {"stringData": {"a": "2"}})
    assert code == 422
    assert ("data", "Forbidden: field is immutable when `immutable` is set") in causes(body)


def test_kubectl_apply_of_a_string_data_secret(kubectl: Kubectl) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": "first"},
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    doc["stringData"] = {"password": "second"}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    got = json.loads(kubectl("get", "secret", "creds", "-o", "json").stdout)
    assert got["data"] == {"password": "c2Vjb25k"} and "stringData" not in got


# ---------------------------------------------------------------------------------------
# A6: []byte fields, config keys, size limits


@pytest.mark.parametrize(
    ("kind", "field", "value", "offset"),
    [
        ("Secret", "data", "not base64!", 3),
        ("Secret", "data", "YQ", 0),
        ("Secret", "data", "YQ=", 3),
        ("ConfigMap", "binaryData", "YQ==x", 4),
    ],
)
def test_byte_fields_must_be_base64(
    k8s_api: client.ApiClient, kind: str, field: str, value: str, offset: int
) -> None:
    v1 = core(k8s_api)
    create = v1.create_namespaced_secret if kind == "Secret" else v1.create_namespaced_config_map
    code, body = api_error(create, NS, {"metadata": {"name": "x"}, field: {"k": value}})
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        f'{kind} in version "v1" cannot be handled as a {kind}: '
        f"illegal base64 data at input byte {offset}"
    )


def test_byte_fields_are_stored_canonically_and_bad_patches_are_invalid(
    k8s_api: client.ApiClient,
) -> None:
    v1 = core(k8s_api)
    # Go's decoder skips CR/LF and ignores non-zero trailing bits; the value is re-encoded
    made = v1.create_namespaced_secret(
        NS, {"metadata": {"name": "s"}, "data": {"a": "YW\nJj", "b": "YR=="}}
    )
    assert made.data == {"a": "YWJj", "b": "YQ=="}
    code, body = api_error(
        v1.patch_namespaced_config_map,
        "cm",
        NS,
        {"binaryData": {"k": "%%%"}},
    )
    assert code == 404  # sanity: nothing named cm yet
    v1.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}})
    code, body = api_error(v1.patch_namespaced_config_map, "cm", NS, {"binaryData": {"k": "%%%"}})
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "patch"
    assert "illegal base64 data at input byte 0" in body["message"]


def test_config_keys_are_validated(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    msg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    for key in ("bad key", "trailing\n", ".."):
        code, body = api_error(
            v1.create_namespaced_config_map, NS, {"metadata": {"name": "c"}, "data": {key: "v"}}
        )
        assert code == 422, key
        assert body["details"]["causes"][0]["field"] == f"data[{key}]"
    code, body = api_error(
        v1.create_namespaced_secret, NS, {"metadata": {"name": "s"}, "stringData": {"a b": "v"}}
    )
    assert code == 422
    assert causes(body)[0][0] == "data[a b]" and msg in causes(body)[0][1]
    code, body = api_error(
        v1.create_namespaced_config_map,
        NS,
        {"metadata": {"name": "c"}, "data": {"k": "v"}, "binaryData": {"k": "dg=="}},
    )
    assert causes(body) == [
        ("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')
    ]


def test_data_may_hold_at_most_one_mebibyte(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    limit = 1024 * 1024
    v1.create_namespaced_config_map(NS, {"metadata": {"name": "full"}, "data": {"k": "x" * limit}})
    code, body = api_error(
        v1.create_namespaced_config_map,
        NS,
        {"metadata": {"name": "over"}, "data": {"k": "x" * limit, "l": "y"}},
    )
    assert code == 422 and "Too long: may not be more than 1048576 bytes" in body["message"]
    code, body = api_error(
        v1.create_namespaced_secret,
        NS,
        {"metadata": {"name": "over"}, "stringData": {"k": "x" * (limit + 1)}},
    )
    assert code == 422
    assert causes(body) == [("data", "Too long: may not be more than 1048576 bytes")]


# ---------------------------------------------------------------------------------------
# A7: update rules


def test_pod_updates_keep_their_permitted_changes(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_pod(
        NS,
        pod(
            "p",
            activeDeadlineSeconds=100,
            tolerations=[{"key": "a", "operator": "Exists", "effect": "NoSchedule"}],
        ),
    )
    got = v1.patch_namespaced_pod(
        "p",
        NS,
        {
            "metadata": {"labels": {"role": "x"}, "annotations": {"note": "y"}},
            "spec": {
                "activeDeadlineSeconds": 50,
                # tolerations is an atomic list: the patch carries the old one plus one more
                "tolerations": [
                    {"key": "a", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "b", "operator": "Exists"},
                ],
                "containers": [{"name": "c", "image": "nginx:2"}],
            },
        },
    )
    assert got.metadata.labels == {"role": "x"}
    assert got.spec.active_deadline_seconds == 50
    assert [t.key for t in got.spec.tolerations][:2] == ["a", "b"]
    code, body = api_error(
        v1.patch_namespaced_pod, "p", NS, {"spec": {"activeDeadlineSeconds": 60}}
    )
    assert code == 422
    assert causes(body) == [
        (
            "spec.activeDeadlineSeconds",
            "Invalid value: 60: must be less than or equal to previous value",
        )
    ]
    code, body = api_error(
        v1.patch_namespaced_pod,
        "p",
        NS,
        [{"op": "replace", "path": "/spec/tolerations/0/effect", "value": "NoExecute"}],
    )
    assert code == 422
    assert causes(body)[0] == (
        "spec.tolerations",
        "Forbidden: existing toleration can not be modified except its tolerationSeconds",
    )
    code, body = api_error(
        v1.patch_namespaced_pod,
        "p",
        NS,
        {"spec": {"containers": [{"name": "c", "image": "nginx:2"}, {"name": "d", "image": "x"}]}},
    )
    assert causes(body) == [
        ("spec.containers", "Forbidden: pod updates may not add or remove containers")
    ]
    code, body = api_error(v1.patch_namespaced_pod, "p", NS, {"spec": {"hostname": "h"}})
    [(field, message)] = causes(body)
    assert field == "spec"
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
        "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
        "be set to 1 if it was previously negative)\n"
    )
    assert 'hostname: "h"' in message


def test_service_cluster_ip_may_not_change(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    svc = v1.create_namespaced_service(
        NS, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    ip = svc.spec.cluster_ip
    code, body = api_error(
        v1.patch_namespaced_service, "s", NS, {"spec": {"clusterIP": "10.96.0.99"}}
    )
    assert code == 422
    assert causes(body) == [
        ("spec.clusterIPs[0]", 'Invalid value: ["10.96.0.99"]: may not change once set')
    ]
    # the refused IP was given back: another service can have it
    other = v1.create_namespaced_service(
        NS, {"metadata": {"name": "t"}, "spec": {"clusterIP": "10.96.0.99", "ports": [{"port": 1}]}}
    )
    assert other.spec.cluster_ip == "10.96.0.99"
    assert v1.read_namespaced_service("s", NS).spec.cluster_ips == [ip]


def test_claim_spec_is_frozen_except_a_first_volume_name_and_bound_storage(
    k8s_api: client.ApiClient,
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    code, body = api_error(
        v1.patch_namespaced_persistent_volume_claim,
        "data",
        NS,
        {"spec": {"resources": {"requests": {"storage": "2Gi"}}}},
    )
    assert code == 422 and "spec is immutable after creation" in body["message"]
    # the PV binder sets volumeName once, on an unbound claim, and a class may be filled in
    bound = v1.patch_namespaced_persistent_volume_claim(
        "data", NS, {"spec": {"volumeName": "pv-1", "storageClassName": "standard"}}
    )
    assert bound.spec.volume_name == "pv-1"
    code, body = api_error(
        v1.patch_namespaced_persistent_volume_claim, "data", NS, {"spec": {"volumeName": "pv-2"}}
    )
    assert code == 422
    assert causes(body)[0][1].startswith(
        "Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims\n"
    )
    v1.patch_namespaced_persistent_volume_claim_status(
        "data", NS, {"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    )
    grown = v1.patch_namespaced_persistent_volume_claim(
        "data", NS, {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    )
    assert grown.spec.resources.requests == {"storage": "2Gi"}
    code, body = api_error(
        v1.patch_namespaced_persistent_volume_claim,
        "data",
        NS,
        {"spec": {"resources": {"requests": {"storage": "512Mi"}}}},
    )
    assert causes(body) == [
        (
            "spec.resources.requests.storage",
            "Forbidden: field can not be less than status.capacity",
        )
    ]


def test_statefulset_spec_outside_the_mutable_fields_is_forbidden(
    k8s_api: client.ApiClient,
) -> None:
    a = apps(k8s_api)
    a.create_namespaced_stateful_set(
        NS,
        {
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": "postgres:16"}]},
                },
            },
        },
    )
    scaled = a.patch_namespaced_stateful_set(
        "db", NS, {"spec": {"replicas": 3, "minReadySeconds": 5}}
    )
    assert scaled.spec.replicas == 3
    # v1.32: revisionHistoryLimit is not (yet) among the mutable fields
    for change in ({"serviceName": "other"}, {"revisionHistoryLimit": 3}):
        code, body = api_error(a.patch_namespaced_stateful_set, "db", NS, {"spec": change})
        assert code == 422, change
        assert causes(body) == [
            (
                "spec",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                "and 'minReadySeconds' are forbidden",
            )
        ]


def test_workload_selectors_are_immutable(k8s_api: client.ApiClient) -> None:
    a = apps(k8s_api)
    template = {
        "metadata": {"labels": {"app": "web", "tier": "x"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }
    a.create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
        },
    )
    code, body = api_error(
        a.patch_namespaced_deployment,
        "web",
        NS,
        {"spec": {"selector": {"matchLabels": {"tier": "x"}}}},
    )
    assert code == 422
    assert [f for f, m in causes(body) if m.endswith("field is immutable")] == ["spec.selector"]


def test_immutable_config_map_keeps_its_data(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_config_map(
        NS, {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True}
    )
    assert v1.patch_namespaced_config_map("c", NS, {"metadata": {"labels": {"x": "y"}}})
    code, body = api_error(
        v1.patch_namespaced_config_map, "c", NS, {"data": {"a": "2"}, "immutable": False}
    )
    assert code == 422
    assert causes(body) == [
        ("immutable", "Forbidden: field is immutable when `immutable` is set"),
        ("data", "Forbidden: field is immutable when `immutable` is set"),
    ]


# ---------------------------------------------------------------------------------------
# A8: ObjectMeta finalizers and ownerReferences


def test_owner_references_and_finalizers_are_validated(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1"}
    for meta, expected in (
        (
            {"ownerReferences": [{"kind": "ConfigMap"}]},
            [
                (
                    "metadata.ownerReferences.apiVersion",
                    'Invalid value: "": version must not be empty',
                ),
                ("metadata.ownerReferences.name", 'Invalid value: "": name must not be empty'),
                ("metadata.ownerReferences.uid", 'Invalid value: "": uid must not be empty'),
            ],
        ),
        (
            {"ownerReferences": [{**ref, "apiVersion": "v1", "kind": "Event"}]},
            [("metadata.ownerReferences", "/v1, Kind=Event is disallowed from being an owner")],
        ),
        (
            {"finalizers": ["example.com/ok", "-bad-"]},
            [("metadata.finalizers", 'Invalid value: "-bad-": name part must consist of')],
        ),
        (
            {"finalizers": ["orphan", "foregroundDeletion"]},
            [
                (
                    "metadata.finalizers",
                    "finalizer orphan and foregroundDeletion cannot be both set",
                )
            ],
        ),
    ):
        code, body = post_raw(
            k8s_api,
            f"/api/v1/namespaces/{NS}/configmaps",
            {"metadata": {"name": "x", **meta}},
        )
        assert code == 422, meta
        got = causes(body)
        assert [f for f, _ in got] == [f for f, _ in expected], body
        for (_, message), (_, text) in zip(got, expected, strict=True):
            assert text in message
    # updates are checked too: a second controller reference is refused (real owners, or
    # the garbage collector would remove the dependent)
    owners = [
        {
            **ref,
            "name": n,
            "uid": v1.create_namespaced_config_map(NS, {"metadata": {"name": n}}).metadata.uid,
        }
        for n in ("o", "o2")
    ]
    v1.create_namespaced_config_map(
        NS, {"metadata": {"name": "y", "ownerReferences": [{**owners[0], "controller": True}]}}
    )
    code, body = api_error(
        v1.patch_namespaced_config_map,
        "y",
        NS,
        {"metadata": {"ownerReferences": [{**owners[1], "controller": True}]}},
    )
    assert code == 422
    # (the strategic merge puts the patch's new reference first, as upstream's does)
    assert causes(body)[0][1].endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ConfigMap/o2 and ConfigMap/o"
    )


# ---------------------------------------------------------------------------------------
# C3: pods/binding


def test_binding_sets_node_name_condition_and_annotations_in_one_write(
    apiserver: APIServer, k8s_api: client.ApiClient
) -> None:
    v1 = core(k8s_api)
    v1.create_namespaced_pod(NS, pod("p"))
    before = apiserver.write_count
    v1.create_namespaced_pod_binding(
        "p",
        NS,
        client.V1Binding(
            metadata=client.V1ObjectMeta(name="p", annotations={"bound-by": "test"}),
            target=client.V1ObjectReference(kind="Node", name="n1"),
        ),
    )
    assert apiserver.write_count == before + 1
    got = v1.read_namespaced_pod("p", NS)
    assert got.spec.node_name == "n1"
    assert got.metadata.annotations == {"bound-by": "test"}
    [cond] = [c for c in got.status.conditions if c.type == "PodScheduled"]
    assert cond.status == "True" and cond.last_transition_time is not None
    code, body = api_error(
        v1.create_namespaced_pod_binding,
        "p",
        NS,
        client.V1Binding(
            metadata=client.V1ObjectMeta(name="p"),
            target=client.V1ObjectReference(kind="Node", name="n2"),
        ),
    )
    assert (code, body["message"]) == (
        409,
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"',
    )
    v1.create_namespaced_pod(NS, pod("gated", schedulingGates=[{"name": "wait"}]))
    code, body = api_error(
        v1.create_namespaced_pod_binding,
        "gated",
        NS,
        client.V1Binding(
            metadata=client.V1ObjectMeta(name="gated"),
            target=client.V1ObjectReference(kind="Node", name="n1"),
        ),
    )
    assert code == 409 and "has non-empty .spec.schedulingGates" in body["message"]


# ---------------------------------------------------------------------------------------
# YAML request bodies


def test_yaml_bodies_convert_like_the_apiserver(k8s_api: client.ApiClient) -> None:
    text = (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: from-yaml\n"
        "  annotations:\n"
        "    when: 2024-01-02T03:04:05Z\n"
        "    day: 2024-01-02\n"
        "    ratio: 1:20\n"
        "    eq: =\n"
        "data:\n"
        "  on: plain\n"
        "  1: one\n"
    )
    code, body = post_raw(k8s_api, f"/api/v1/namespaces/{NS}/configmaps", text, "application/yaml")
    assert code == 201, body
    assert body["metadata"]["annotations"] == {
        "when": "2024-01-02T03:04:05Z",
        "day": "2024-01-02",
        "ratio": "1:20",
        "eq": "=",
    }
    # go-yaml v2 reads `on` as a boolean key, which the JSON conversion spells "true"
    assert body["data"] == {"true": "plain", "1": "one"}
    code, body = post_raw(
        k8s_api,
        f"/api/v1/namespaces/{NS}/configmaps",
        "metadata:\n  name: z\ndata:\n  flag: yes\n",
        "application/yaml",
    )
    assert code == 400 and "cannot unmarshal bool" in body["message"]


# ---------------------------------------------------------------------------------------
# `$` anchors: a trailing newline is not the end of the text


def test_a_trailing_newline_does_not_pass_anchored_checks(k8s_api: client.ApiClient) -> None:
    v1 = core(k8s_api)
    code, body = api_error(
        v1.create_namespaced_service,
        NS,
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http\n"}]}},
    )
    assert code == 422 and causes(body)[0][0] == "spec.ports[0].targetPort"
    code, body = post_raw(
        k8s_api,
        f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
        {"metadata": {"name": "l"}, "spec": {"renewTime": "2024-01-02T03:04:05.000000Z\n"}},
    )
    assert code == 422 and causes(body)[0][0] == "spec.renewTime"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "tags.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "tags", "singular": "tag", "kind": "Tag"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "word": {"type": "string", "pattern": "^[a-z]+$"},
                                        "id": {"type": "string", "format": "uuid"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    extensions(k8s_api).create_custom_resource_definition(crd)
    objects = client.CustomObjectsApi(k8s_api)

    def tag(name: str, **spec: str) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Tag",
            "metadata": {"name": name},
            "spec": spec,
        }

    objects.create_namespaced_custom_object("example.com", "v1", NS, "tags", tag("ok", word="abc"))
    for name, spec, field in (
        ("w", {"word": "abc\n"}, "spec.word"),
        ("i", {"id": "123e4567-e89b-12d3-a456-426614174000\n"}, "spec.id"),
    ):
        code, body = api_error(
            objects.create_namespaced_custom_object,
            "example.com",
            "v1",
            NS,
            "tags",
            tag(name, **spec),
        )
        assert code == 422, spec
        assert causes(body)[0][0] == field
