"""CRD validation/defaulting, CR structural schemas and built-in unknown fields (_schema)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from opkit.testing.apiserver._fielderrors import FieldError
from opkit.testing.apiserver._schema import (
    StructuralSchema,
    builtin_unknown_fields,
    compile_schema,
    default_crd,
    drop_paths,
    stored_versions,
    validate_crd,
)
from opkit.testing.apiserver._schema_structural import go_value_text

Obj = dict[str, Any]


def texts(errs: list[FieldError]) -> list[str]:
    return [str(e) for e in errs]


# --------------------------------------------------------------------------- fixtures

SCHEMA_PATH = "spec.versions[0].schema.openAPIV3Schema"


def etcd_schema() -> Obj:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "version": {
                        "type": "string",
                        "pattern": r"^3\.\d+\.\d+$",
                        "default": "3.5.9",
                    },
                    "pod": {
                        "type": "object",
                        "properties": {
                            "labels": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "resources": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    },
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "phase": {"type": "string", "enum": ["Creating", "Running", "Failed"]},
                    "selector": {"type": "string"},
                    "members": {
                        "type": "array",
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "set",
                    },
                },
            },
        },
    }


def etcd_crd() -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "etcdclusters.etcd.database.coreos.com"},
        "spec": {
            "group": "etcd.database.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": "etcdclusters", "kind": "EtcdCluster", "shortNames": ["etcd"]},
            "versions": [
                {
                    "name": "v1beta2",
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.size",
                            "statusReplicasPath": ".status.size",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {"openAPIV3Schema": etcd_schema()},
                }
            ],
        },
    }


def prometheus_schema() -> Obj:
    """Prometheus-operator style: free-form subtrees with declared fields inside."""
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "format": "int32"},
                    "retention": {"type": "string", "default": "24h"},
                    "podMetadata": {
                        "type": "object",
                        "properties": {
                            "labels": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                    "containers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "x-kubernetes-preserve-unknown-fields": True,
                            "properties": {
                                "name": {"type": "string"},
                                "securityContext": {
                                    "type": "object",
                                    "properties": {"runAsUser": {"type": "integer"}},
                                },
                            },
                        },
                    },
                    "additionalScrapeConfigs": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {
                            "key": {"type": "string"},
                            "secret": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                    "thanos": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    },
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"image": {"type": "string"}},
                            },
                        },
                    },
                    "port": {
                        "x-kubernetes-int-or-string": True,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    },
                },
            },
        },
    }


def crd_with_schema(schema: Obj, *, status: bool = False) -> Obj:
    crd: Obj = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
    if status:
        crd["spec"]["versions"][0]["subresources"] = {"status": {}}
    default_crd(crd)
    return crd


def spec_schema(**props: Obj) -> Obj:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


def crd_errors(schema: Obj, **kw: Any) -> list[str]:
    return texts(validate_crd(crd_with_schema(schema, **kw)))


# --------------------------------------------------------------------------- default_crd


def test_default_crd_fills_names_and_conversion_only() -> None:
    crd = etcd_crd()
    before_versions = copy.deepcopy(crd["spec"]["versions"])
    default_crd(crd)
    names = crd["spec"]["names"]
    assert names["singular"] == "etcdcluster"
    assert names["listKind"] == "EtcdClusterList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["spec"]["versions"] == before_versions  # served/storage/schema untouched


def test_default_crd_keeps_explicit_values() -> None:
    crd = etcd_crd()
    crd["spec"]["names"].update(singular="etcd1", listKind="Etcds")
    crd["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {"service": {"name": "conv", "namespace": "ns"}},
            "conversionReviewVersions": ["v1"],
        },
    }
    default_crd(crd)
    assert crd["spec"]["names"]["singular"] == "etcd1"
    assert crd["spec"]["names"]["listKind"] == "Etcds"
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443


def test_default_crd_tolerates_missing_spec() -> None:
    crd: Obj = {"metadata": {"name": "x"}}
    default_crd(crd)
    assert crd == {"metadata": {"name": "x"}}


# --------------------------------------------------------------------------- validate_crd


def test_realistic_crds_are_valid() -> None:
    crd = etcd_crd()
    default_crd(crd)
    assert validate_crd(crd) == []
    assert crd_errors(prometheus_schema()) == []


def test_name_must_be_plural_dot_group() -> None:
    crd = etcd_crd()
    default_crd(crd)
    crd["metadata"]["name"] = "etcd.database.coreos.com"
    assert texts(validate_crd(crd)) == [
        'metadata.name: Invalid value: "etcd.database.coreos.com": '
        'must be spec.names.plural+"."+spec.group'
    ]


def test_name_required_and_dns_subdomain() -> None:
    crd = etcd_crd()
    default_crd(crd)
    crd["metadata"] = {}
    assert "metadata.name: Required value: name or generateName is required" in texts(
        validate_crd(crd)
    )
    crd["metadata"] = {"name": "Bad_Name"}
    errs = texts(validate_crd(crd))
    assert any("a lowercase RFC 1123 subdomain must consist of" in e for e in errs)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("", "spec.group: Required value"),
        (
            "example",
            'spec.group: Invalid value: "example": should be a domain with at least one dot',
        ),
        ("Example.com", 'spec.group: Invalid value: "Example.com": a lowercase RFC 1123'),
    ],
)
def test_group_rules(group: str, expected: str) -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["group"] = group
    crd["metadata"]["name"] = f"widgets.{group}"
    assert any(e.startswith(expected) for e in texts(validate_crd(crd)))


def test_scope_must_be_namespaced_or_cluster() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["scope"] = "Global"
    assert texts(validate_crd(crd)) == [
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'
    ]
    del crd["spec"]["scope"]
    assert texts(validate_crd(crd)) == ["spec.scope: Required value"]


def test_exactly_one_storage_version() -> None:
    crd = crd_with_schema(spec_schema())
    second = copy.deepcopy(crd["spec"]["versions"][0])
    second["name"] = "v2"
    crd["spec"]["versions"].append(second)
    errs = validate_crd(crd)
    assert [e.field for e in errs] == ["spec.versions"]
    assert str(errs[0]).endswith(": must have exactly one version marked as storage version")
    assert errs[0].cause()["reason"] == "FieldValueInvalid"

    crd["spec"]["versions"][0]["storage"] = False
    crd["spec"]["versions"][1]["storage"] = False
    assert any(
        e.endswith("must have exactly one version marked as storage version")
        for e in texts(validate_crd(crd))
    )


def test_at_least_one_version() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["versions"] = []
    errs = texts(validate_crd(crd))
    assert (
        "spec.versions: Invalid value: []: must have exactly one version marked as storage version"
        in errs
    )


def test_version_names_valid_and_unique() -> None:
    crd = crd_with_schema(spec_schema())
    second = copy.deepcopy(crd["spec"]["versions"][0])
    second["storage"] = False
    crd["spec"]["versions"].append(second)
    assert any(
        e.field == "spec.versions" and e.detail == "must contain unique version names"
        for e in validate_crd(crd)
    )
    crd["spec"]["versions"] = crd["spec"]["versions"][:1]
    crd["spec"]["versions"][0]["name"] = "V1"
    errs = texts(validate_crd(crd))
    assert errs[0].startswith('spec.versions[0].name: Invalid value: "V1": a DNS-1035 label')


def test_every_version_needs_a_schema() -> None:
    crd = crd_with_schema(spec_schema())
    del crd["spec"]["versions"][0]["schema"]
    assert texts(validate_crd(crd)) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    ]


def test_names_required_and_valid() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["names"] = {}
    crd["metadata"]["name"] = ".example.com"
    errs = texts(validate_crd(crd))
    for key in ("plural", "singular", "kind", "listKind"):
        assert f"spec.names.{key}: Required value" in errs

    crd = crd_with_schema(spec_schema())
    crd["spec"]["names"].update(plural="Widgets", kind="Wid_get", shortNames=["W"])
    crd["metadata"]["name"] = "Widgets.example.com"
    errs = texts(validate_crd(crd))
    assert any(
        e.startswith('spec.names.plural: Invalid value: "Widgets": a DNS-1035') for e in errs
    )
    assert any(
        e.startswith(
            'spec.names.kind: Invalid value: "Wid_get": may have mixed case, but should otherwise '
            "match: a DNS-1035 label"
        )
        for e in errs
    )
    assert any(e.startswith('spec.names.shortNames[0]: Invalid value: "W"') for e in errs)


def test_kind_and_list_kind_differ() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["names"]["listKind"] = "Widget"
    assert texts(validate_crd(crd)) == [
        'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'
    ]


def test_protected_group_needs_approval_annotation() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["group"] = "widgets.k8s.io"
    crd["metadata"]["name"] = "widgets.widgets.k8s.io"
    assert texts(validate_crd(crd)) == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must "
        'have approval annotation "api-approved.kubernetes.io", see '
        "https://github.com/kubernetes/enhancements/pull/1111"
    ]
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    assert validate_crd(crd) == []
    crd["spec"]["group"] = "cluster.x-k8s.io"  # x-k8s.io is not protected
    crd["metadata"] = {"name": "widgets.cluster.x-k8s.io"}
    assert validate_crd(crd) == []


def test_preserve_unknown_fields_true_rejected() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["preserveUnknownFields"] = True
    assert texts(validate_crd(crd)) == [
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set "
        "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"
    ]


def test_conversion_rules() -> None:
    crd = crd_with_schema(spec_schema())
    crd["spec"]["conversion"] = {"strategy": "Magic"}
    assert texts(validate_crd(crd)) == [
        'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook"'
    ]
    crd["spec"]["conversion"] = {"strategy": "Webhook"}
    errs = texts(validate_crd(crd))
    assert (
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to "
        "Webhook" in errs
    )
    assert "spec.conversion.conversionReviewVersions: Required value" in errs


# -- subresources and printer columns


def test_scale_paths() -> None:
    crd = etcd_crd()
    default_crd(crd)
    scale = crd["spec"]["versions"][0]["subresources"]["scale"]
    scale.pop("specReplicasPath")
    scale["statusReplicasPath"] = ".spec.size"
    scale["labelSelectorPath"] = "status.selector"
    prefix = "spec.versions[0].subresources.scale"
    assert texts(validate_crd(crd)) == [
        f"{prefix}.specReplicasPath: Required value",
        f'{prefix}.statusReplicasPath: Invalid value: ".spec.size": should be a json path under '
        ".status",
        f'{prefix}.labelSelectorPath: Invalid value: "status.selector": must be a simple json path '
        "starting with .",
    ]
    scale.update(specReplicasPath="spec.size", statusReplicasPath=".status.size")
    scale["labelSelectorPath"] = ".metadata.labels"
    assert texts(validate_crd(crd)) == [
        f'{prefix}.specReplicasPath: Invalid value: "spec.size": must be a simple json path '
        "starting with .",
        f'{prefix}.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path '
        "under either .spec or .status",
    ]
    scale["specReplicasPath"] = ".status.size"
    scale["labelSelectorPath"] = ".spec.selector"
    assert texts(validate_crd(crd)) == [
        f'{prefix}.specReplicasPath: Invalid value: ".status.size": should be a json path under '
        ".spec"
    ]


def test_printer_columns() -> None:
    crd = etcd_crd()
    default_crd(crd)
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "A", "type": "float", "jsonPath": ".spec.a"},
        {"name": "B", "type": "integer", "format": "uint8", "jsonPath": "spec.b"},
        {"type": "string"},
        {"name": "D", "jsonPath": ".spec.d"},
    ]
    p = "spec.versions[0].additionalPrinterColumns"
    assert texts(validate_crd(crd)) == [
        f'{p}[0].type: Invalid value: "float": must be one of boolean,date,integer,number,string',
        f'{p}[1].format: Invalid value: "uint8": must be one of '
        "byte,date,date-time,double,float,int32,int64,password",
        f'{p}[1].JSONPath: Invalid value: "spec.b": must be a simple json path starting with .',
        f"{p}[2].name: Required value",
        f"{p}[2].JSONPath: Required value",
        f"{p}[3].type: Required value: must be one of boolean,date,integer,number,string",
    ]


def test_status_subresource_restricts_root_schema() -> None:
    schema = spec_schema()
    schema["anyOf"] = [{"required": ["spec"]}]
    errs = crd_errors(schema, status=True)
    assert len(errs) == 1
    assert errs[0].startswith(f'{SCHEMA_PATH}: Invalid value: "anyOf": only [Description Type')
    assert errs[0].endswith(
        "fields are allowed at the root of the schema if the status subresource is enabled"
    )
    assert crd_errors(schema, status=False) == []


# -- structural schema rules


def test_root_type_required_and_object() -> None:
    assert crd_errors({"properties": {}}) == [
        f"{SCHEMA_PATH}.type: Required value: must not be empty at the root"
    ]
    assert crd_errors({"type": "string"}) == [
        f'{SCHEMA_PATH}.type: Invalid value: "string": must be object at the root'
    ]


def test_type_required_everywhere_except_extensions() -> None:
    schema = spec_schema(
        notype={"description": "no type"},
        list={"type": "array", "items": {"properties": {"a": {"type": "string"}}}},
        ios={"x-kubernetes-int-or-string": True},
        free={"x-kubernetes-preserve-unknown-fields": True},
    )
    p = f"{SCHEMA_PATH}.properties[spec].properties"
    assert crd_errors(schema) == [
        f"{p}[list].items.type: Required value: must not be empty for specified array items",
        f"{p}[notype].type: Required value: must not be empty for specified object fields",
    ]


def test_arrays_need_items() -> None:
    assert crd_errors(spec_schema(tags={"type": "array"})) == [
        f"{SCHEMA_PATH}.properties[spec].properties[tags].items: Required value: must be specified"
    ]


def test_additional_properties_rules() -> None:
    both = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": {"type": "string"},
    }
    assert crd_errors(spec_schema(both=both)) == [
        f"{SCHEMA_PATH}.properties[spec].properties[both].additionalProperties: Forbidden: "
        "additionalProperties and properties are mutual exclusive"
    ]
    root = {"type": "object", "additionalProperties": {"type": "string"}}
    assert crd_errors(root) == [
        f"{SCHEMA_PATH}.additionalProperties: Forbidden: must not be used at the root"
    ]


def test_metadata_may_only_restrict_name() -> None:
    ok = spec_schema()
    ok["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}},
    }
    assert crd_errors(ok) == []
    bad = spec_schema()
    bad["properties"]["metadata"] = {
        "type": "object",
        "properties": {"labels": {"type": "object"}},
    }
    assert crd_errors(bad) == [
        f"{SCHEMA_PATH}.properties[metadata]: Forbidden: must not specify anything other than name "
        "and generateName, but metadata is implicitly specified"
    ]


def test_value_validations_must_stay_structural() -> None:
    schema = spec_schema(a={"type": "string"})
    schema["properties"]["spec"]["anyOf"] = [
        {"properties": {"a": {"type": "string"}}},
        {"properties": {"zzz": {"minLength": 1}}},
    ]
    p = f"{SCHEMA_PATH}.properties[spec]"
    assert crd_errors(schema) == [
        f"{p}.anyOf[0].properties[a].type: Forbidden: must be empty to be structural",
        f"{p}.properties[zzz]: Required value: because it is defined in "
        f"{p}.anyOf[1].properties[zzz]",
    ]


def test_int_or_string_anyof_pattern_allowed() -> None:
    schema = spec_schema(
        port={
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    )
    assert crd_errors(schema) == []
    bad = spec_schema(
        port={"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}
    )
    assert crd_errors(bad) == [
        f"{SCHEMA_PATH}.properties[spec].properties[port].x-kubernetes-preserve-unknown-fields: "
        "Invalid value: true: must be false if x-kubernetes-int-or-string is true"
    ]


def test_extension_rules() -> None:
    schema = spec_schema(
        a={"type": "object", "x-kubernetes-preserve-unknown-fields": False},
        e={"x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True},
    )
    p = f"{SCHEMA_PATH}.properties[spec].properties"
    assert crd_errors(schema) == [
        f"{p}[e].type: Required value: must be object if x-kubernetes-embedded-resource is true",
        f"{p}[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or "
        "undefined",
    ]


def test_list_type_rules() -> None:
    p = f"{SCHEMA_PATH}.properties[spec].properties"
    no_key_default = spec_schema(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        }
    )
    assert crd_errors(no_key_default) == [
        f"{p}[ports].items.properties[name].default: Required value: this property is in "
        "x-kubernetes-list-map-keys, so it must have a default or be a required property"
    ]
    ok = copy.deepcopy(no_key_default)
    ok["properties"]["spec"]["properties"]["ports"]["items"]["required"] = ["name"]
    assert crd_errors(ok) == []
    keys_without_type = spec_schema(
        tags={"type": "array", "x-kubernetes-list-map-keys": ["a"], "items": {"type": "string"}}
    )
    assert crd_errors(keys_without_type) == [
        f"{p}[tags].x-kubernetes-list-type: Required value: must be map if "
        "x-kubernetes-list-map-keys is non-empty"
    ]
    bad_type = spec_schema(
        tags={"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}
    )
    assert crd_errors(bad_type) == [
        f'{p}[tags].x-kubernetes-list-type: Unsupported value: "bag": supported values: '
        '"atomic", "set", "map"'
    ]
    set_of_objects = spec_schema(
        s={
            "type": "array",
            "x-kubernetes-list-type": "set",
            "items": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
    )
    assert crd_errors(set_of_objects)[0].startswith(
        f"{p}[s].items.x-kubernetes-map-type: Invalid value"
    )


def test_forbidden_openapi_features() -> None:
    schema = spec_schema(
        u={"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        r={"type": "string", "$ref": "#/definitions/x"},
        t={"type": "int"},
    )
    p = f"{SCHEMA_PATH}.properties[spec].properties"
    assert crd_errors(schema) == [
        f"{p}[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
        "complexity becomes quadratic",
        f"{p}[r].$ref: Forbidden: $ref is not supported",
        f'{p}[t].type: Unsupported value: "int": supported values: "array", "boolean", '
        '"integer", "number", "object", "string"',
    ]


def test_invalid_pattern_rejected() -> None:
    errs = crd_errors(spec_schema(a={"type": "string", "pattern": "(unclosed"}))
    assert len(errs) == 1
    assert errs[0].startswith(
        f'{SCHEMA_PATH}.properties[spec].properties[a].pattern: Invalid value: "(unclosed": '
        "must be a valid regular expression, but isn't:"
    )


def test_wrongly_shaped_keywords_reported_not_crashing() -> None:
    errs = crd_errors({"type": "object", "properties": {"spec": {"type": 5, "required": "a"}}})
    assert errs == [
        f"{SCHEMA_PATH}.properties[spec].type: Invalid value: 5: must be of type string",
        f'{SCHEMA_PATH}.properties[spec].required: Invalid value: "a": must be of type array',
    ]


def test_defaults_must_validate_and_be_pruned() -> None:
    p = f"{SCHEMA_PATH}.properties[spec].properties"
    assert crd_errors(spec_schema(n={"type": "integer", "default": "x"})) == [
        f'{p}[n].default: Invalid value: "string":  in body must be of type integer: "string"'
    ]
    unpruned = spec_schema(o={"type": "object", "properties": {"a": {"type": "string"}}})
    unpruned["properties"]["spec"]["properties"]["o"]["default"] = {"a": "x", "b": 1}
    assert crd_errors(unpruned) == [
        f'{p}[o].default: Invalid value: {{"a":"x","b":1}}: must not have unknown fields'
    ]
    nested = spec_schema(o={"type": "object", "properties": {"a": {"type": "integer"}}})
    nested["properties"]["spec"]["properties"]["o"]["default"] = {"a": "x"}
    assert crd_errors(nested) == [
        f'{p}[o].default.a: Invalid value: "string": a in body must be of type integer: "string"'
    ]


def test_defaults_forbidden_in_top_level_metadata() -> None:
    schema = spec_schema()
    schema["properties"]["metadata"] = {"type": "object", "default": {"name": "x"}}
    assert crd_errors(schema) == [
        f"{SCHEMA_PATH}.properties[metadata].default: Forbidden: must not be set in top-level "
        "metadata"
    ]


def test_cel_rules_checked_for_shape_only() -> None:
    schema = spec_schema()
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.size > 0", "message": "size must be positive"},
        {"rule": "  "},
    ]
    assert crd_errors(schema) == [
        f"{SCHEMA_PATH}.properties[spec].x-kubernetes-validations[1].rule: Required value: rule is "
        "not specified"
    ]


# -- updates and stored versions


def test_update_immutable_fields() -> None:
    old = crd_with_schema(spec_schema())
    old["status"] = {"storedVersions": ["v1"]}
    assert validate_crd(copy.deepcopy(old), old) == []
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"]["kind"] = "Gadget"
    new["spec"]["names"]["listKind"] = "GadgetList"
    assert texts(validate_crd(new, old)) == [
        'spec.scope: Invalid value: "Cluster": field is immutable',
        'spec.names.kind: Invalid value: "Gadget": field is immutable',
    ]


def test_update_may_not_drop_stored_version() -> None:
    old = crd_with_schema(spec_schema())
    old["status"] = {"storedVersions": ["v1"]}
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["name"] = "v2"
    new.pop("status")  # a spec update's status is ignored: the old stored versions count
    assert texts(validate_crd(new, old)) == [
        'status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was '
        "previously a storage version, and must remain in spec.versions until a storage "
        "migration ensures no data remains persisted in v1 and removes v1 from "
        "status.storedVersions"
    ]
    # keeping v1 served-but-not-storage is fine, and v2 joins storedVersions
    v1 = copy.deepcopy(old["spec"]["versions"][0])
    v1["storage"] = False
    new["spec"]["versions"].append(v1)
    assert validate_crd(new, old) == []
    assert stored_versions(new, old) == ["v1", "v2"]


def test_status_write_checks_only_status() -> None:
    old = crd_with_schema(spec_schema())
    old["status"] = {"storedVersions": ["v0", "v1"]}
    new = copy.deepcopy(old)
    new["status"]["storedVersions"] = ["v1"]  # storage migration finished
    assert validate_crd(new, old, subresource="status") == []
    new["status"]["acceptedNames"] = {"plural": "Bad_Plural", "kind": "Widget"}
    errs = texts(validate_crd(new, old, subresource="status"))
    assert errs[0].startswith('status.acceptedNames.plural: Invalid value: "Bad_Plural"')


def test_stored_versions_on_create() -> None:
    crd = etcd_crd()
    assert stored_versions(crd) == ["v1beta2"]


# --------------------------------------------------------------------------- pruning


def test_prune_unknown_fields_reports_paths() -> None:
    s = compile_schema(etcd_schema())
    obj = {
        "apiVersion": "etcd.database.coreos.com/v1beta2",
        "kind": "EtcdCluster",
        "metadata": {"name": "a", "namespace": "ns", "bogus": 1, "labels": {"x": "y"}},
        "spec": {"size": 3, "foo": {"bar": 1}, "pod": {"labels": {"a": "b"}, "junk": []}},
        "top": 1,
    }
    assert s.prune(obj) == ["metadata.bogus", "spec.foo", "spec.pod.junk", "top"]
    assert obj == {
        "apiVersion": "etcd.database.coreos.com/v1beta2",
        "kind": "EtcdCluster",
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "y"}},
        "spec": {"size": 3, "pod": {"labels": {"a": "b"}}},
    }


def test_prune_keeps_type_meta_only_when_strings() -> None:
    s = compile_schema(spec_schema())
    obj: Obj = {"apiVersion": 5, "kind": "X", "metadata": {"name": "a"}}
    assert s.prune(obj) == ["apiVersion"]
    assert obj == {"kind": "X", "metadata": {"name": "a"}}


def test_prune_object_meta_nested_entries() -> None:
    s = compile_schema(spec_schema())
    obj = {
        "metadata": {
            "name": "a",
            "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "u", "x": 1}],
            "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}, "y": 2}],
        }
    }
    assert s.prune(obj) == [
        "metadata.ownerReferences[0].x",
        "metadata.managedFields[0].y",
    ]
    assert obj["metadata"]["managedFields"] == [{"manager": "m", "fieldsV1": {"f:spec": {}}}]


def test_prune_preserve_unknown_fields_nested() -> None:
    s = compile_schema(prometheus_schema())
    obj: Obj = {
        "spec": {
            "containers": [
                {
                    "name": "sidecar",
                    "image": "busybox",  # unknown but preserved by the items schema
                    "securityContext": {"runAsUser": 1000, "bogus": True},
                }
            ],
            "additionalScrapeConfigs": {
                "key": "k",
                "anything": {"deep": [1, 2]},
                "secret": {"name": "s", "junk": 1},
            },
            "thanos": {"image": "t", "objectStorageConfig": {"key": "x"}},
            "podMetadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
        }
    }
    assert s.prune(obj) == [
        "spec.containers[0].securityContext.bogus",
        "spec.additionalScrapeConfigs.secret.junk",
        "spec.podMetadata.annotations",
    ]
    assert obj["spec"]["containers"][0] == {
        "name": "sidecar",
        "image": "busybox",
        "securityContext": {"runAsUser": 1000},
    }
    assert obj["spec"]["additionalScrapeConfigs"] == {
        "key": "k",
        "anything": {"deep": [1, 2]},
        "secret": {"name": "s"},
    }
    assert obj["spec"]["thanos"] == {"image": "t", "objectStorageConfig": {"key": "x"}}


def test_prune_embedded_resource_keeps_type_and_object_meta() -> None:
    s = compile_schema(prometheus_schema())
    obj = {
        "spec": {
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "labels": {"a": "b"}, "weird": 1},
                "spec": {"image": "x", "other": 2},
                "status": {},
            }
        }
    }
    assert s.prune(obj) == [
        "spec.template.metadata.weird",
        "spec.template.spec.other",
        "spec.template.status",
    ]
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"image": "x"},
    }


def test_prune_additional_properties_schema_applies_to_values() -> None:
    schema = spec_schema(
        m={
            "type": "object",
            "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
    )
    s = compile_schema(schema)
    obj = {"spec": {"m": {"k1": {"a": "x", "b": 1}, "k2": {}}}}
    assert s.prune(obj) == ["spec.m.k1.b"]
    assert obj == {"spec": {"m": {"k1": {"a": "x"}, "k2": {}}}}


def test_prune_array_items() -> None:
    schema = spec_schema(
        items={
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        }
    )
    s = compile_schema(schema)
    obj = {"spec": {"items": [{"name": "a"}, {"name": "b", "x": 1}, "scalar"]}}
    assert s.prune(obj) == ["spec.items[1].x"]


# --------------------------------------------------------------------------- defaulting


def defaults_schema() -> Obj:
    return spec_schema(
        version={"type": "string", "default": "3.5.9"},
        replicas={"type": "integer", "default": 1},
        nullableWithDefault={"type": "string", "nullable": True, "default": "d"},
        noDefault={"type": "string"},
        nullableNoDefault={"type": "string", "nullable": True},
        storage={
            "type": "object",
            "properties": {
                "class": {"type": "string", "default": "standard"},
                "size": {"type": "string", "default": "1Gi"},
            },
        },
        backup={
            "type": "object",
            "default": {},
            "properties": {"schedule": {"type": "string", "default": "@daily"}},
        },
        members={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"port": {"type": "integer", "default": 2379}},
            },
        },
        labels={"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
        withJunk={
            "type": "object",
            "properties": {"a": {"type": "integer"}},
            "default": {"a": 1, "junk": 2},
        },
    )


def test_defaults_only_fill_absent_fields() -> None:
    s = compile_schema(defaults_schema())
    obj: Obj = {"spec": {"version": "3.4.0"}}
    s.apply_defaults(obj)
    assert obj["spec"]["version"] == "3.4.0"
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["backup"] == {"schedule": "@daily"}  # parent default, then nested
    assert "storage" not in obj["spec"]  # nested defaults need the parent to exist
    assert "noDefault" not in obj["spec"]


def test_nested_defaults_apply_when_parent_exists() -> None:
    s = compile_schema(defaults_schema())
    obj: Obj = {"spec": {"storage": {"size": "5Gi"}, "members": [{}, {"port": 1}]}}
    s.apply_defaults(obj)
    assert obj["spec"]["storage"] == {"size": "5Gi", "class": "standard"}
    assert obj["spec"]["members"] == [{"port": 2379}, {"port": 1}]


def test_null_handling_in_defaulting() -> None:
    s = compile_schema(defaults_schema())
    obj: Obj = {
        "spec": {
            "replicas": None,  # non-nullable with default -> default
            "nullableWithDefault": None,  # nullable: null is a value
            "noDefault": None,  # non-nullable, no default -> dropped
            "nullableNoDefault": None,
            "labels": {"a": None, "b": "y"},
        }
    }
    s.apply_defaults(obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["nullableWithDefault"] is None
    assert "noDefault" not in obj["spec"]
    assert obj["spec"]["nullableNoDefault"] is None
    assert obj["spec"]["labels"] == {"a": "x", "b": "y"}
    assert s.validate(obj) == []


def test_default_values_are_pruned_and_copied() -> None:
    s = compile_schema(defaults_schema())
    first: Obj = {"spec": {}}
    s.apply_defaults(first)
    assert first["spec"]["withJunk"] == {"a": 1}
    first["spec"]["backup"]["schedule"] = "changed"
    second: Obj = {"spec": {}}
    s.apply_defaults(second)
    assert second["spec"]["backup"] == {"schedule": "@daily"}


def test_prune_then_default_then_validate_order() -> None:
    """A pruned unknown field is not resurrected, and defaults are validated like input."""
    s = compile_schema(etcd_schema())
    obj: Obj = {"spec": {"size": 3, "versionn": "typo"}}
    assert s.prune(obj) == ["spec.versionn"]
    s.apply_defaults(obj)
    assert obj["spec"] == {"size": 3, "version": "3.5.9"}
    assert s.validate(obj) == []


# --------------------------------------------------------------------------- validation


def check(schema_props: Obj, value: Any) -> list[str]:
    s = compile_schema(spec_schema(x=schema_props))
    return texts(s.validate({"spec": {"x": value}}))


@pytest.mark.parametrize(
    ("props", "value", "expected"),
    [
        (
            {"type": "integer"},
            "string",
            'spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"',
        ),
        (
            {"type": "integer"},
            1.5,
            'spec.x: Invalid value: "number": spec.x in body must be of type integer: "number"',
        ),
        (
            {"type": "integer"},
            True,
            'spec.x: Invalid value: "boolean": spec.x in body must be of type integer: "boolean"',
        ),
        (
            {"type": "string"},
            {"a": 1},
            'spec.x: Invalid value: "object": spec.x in body must be of type string: "object"',
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            "a",
            'spec.x: Invalid value: "string": spec.x in body must be of type array: "string"',
        ),
        (
            {"type": "string"},
            None,
            'spec.x: Invalid value: "null": spec.x in body must be of type string: "null"',
        ),
        (
            {"x-kubernetes-int-or-string": True},
            True,
            'spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: '
            '"boolean"',
        ),
        (
            {"type": "string", "enum": ["red", "blue"]},
            "green",
            'spec.x: Unsupported value: "green": supported values: "red", "blue"',
        ),
        (
            {"type": "integer", "enum": [1, 2]},
            3,
            'spec.x: Unsupported value: 3: supported values: "1", "2"',
        ),
        (
            {"type": "integer", "minimum": 0},
            -1,
            "spec.x: Invalid value: -1: spec.x in body should be greater than or equal to 0",
        ),
        (
            {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
            0,
            "spec.x: Invalid value: 0: spec.x in body should be greater than 0",
        ),
        (
            {"type": "integer", "maximum": 10},
            11,
            "spec.x: Invalid value: 11: spec.x in body should be less than or equal to 10",
        ),
        (
            {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
            1.5,
            "spec.x: Invalid value: 1.5: spec.x in body should be less than 1.5",
        ),
        (
            {"type": "number", "maximum": 1000000},
            2000000.5,
            "spec.x: Invalid value: 2000000.5: spec.x in body should be less than or equal to "
            "1e+06",
        ),
        (
            {"type": "integer", "multipleOf": -5},
            3,
            "spec.x: Invalid value: -5: factor MultipleOf declared for spec.x must be positive: -5",
        ),
        (
            {"type": "integer", "multipleOf": 5},
            7,
            "spec.x: Invalid value: 7: spec.x in body should be a multiple of 5",
        ),
        (
            {"type": "number", "minimum": 0.5},
            0.25,
            "spec.x: Invalid value: 0.25: spec.x in body should be greater than or equal to 0.5",
        ),
        (
            {"type": "string", "minLength": 3},
            "ab",
            'spec.x: Invalid value: "ab": spec.x in body should be at least 3 chars long',
        ),
        (
            {"type": "string", "maxLength": 3},
            "abcd",
            "spec.x: Too long: may not be more than 3 bytes",
        ),
        (
            {"type": "string", "maxLength": 1},
            "ab",
            "spec.x: Too long: may not be more than 1 byte",
        ),
        (
            {"type": "string", "pattern": "^[a-z]+$"},
            "ABC",
            "spec.x: Invalid value: \"ABC\": spec.x in body should match '^[a-z]+$'",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            [],
            "spec.x: Invalid value: 0: spec.x in body should have at least 1 items",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            ["a", "b", "c"],
            "spec.x: Too many: 3: must have at most 2 items",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            ["a", "a"],
            'spec.x: Invalid value: "": spec.x in body shouldn\'t contain duplicates',
        ),
        (
            {"type": "object", "minProperties": 1},
            {},
            "spec.x: Invalid value: 0: spec.x in body should have at least 1 properties",
        ),
        (
            {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
            {"a": "1", "b": "2"},
            "spec.x: Too many: 2: must have at most 1 item",
        ),
        (
            {"type": "string", "format": "date-time"},
            "yesterday",
            'spec.x: Invalid value: "yesterday": spec.x in body must be of type date-time: '
            '"yesterday"',
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
            },
            {"a": "x", "b": "y"},
            'spec.x: Invalid value: "b": spec.x.b in body is a forbidden property',
        ),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            {"k": "v"},
            'spec.x.k: Invalid value: "string": spec.x.k in body must be of type integer: "string"',
        ),
        (
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
            [{"name": "a"}, {}],
            "spec.x[1].name: Required value",
        ),
    ],
)
def test_validation_messages(props: Obj, value: Any, expected: str) -> None:
    assert check(props, value) == [expected]


@pytest.mark.parametrize(
    ("props", "value"),
    [
        ({"type": "integer"}, 2.0),
        ({"type": "number"}, 3),
        ({"type": "number", "minimum": 0.5}, 1),
        ({"type": "integer", "minimum": 0.5}, 0),  # kube-openapi truncates the bound to int64
        ({"x-kubernetes-int-or-string": True}, 8080),
        ({"x-kubernetes-int-or-string": True}, "http"),
        ({"type": "string", "nullable": True}, None),
        ({"type": "string", "maxLength": 5}, "héllo"),  # runes, not bytes
        ({"type": "string", "pattern": r"^\d+$"}, "123"),
        ({"type": "integer", "format": "int32"}, 2**40),  # upstream strips int32
        ({"type": "string", "format": "date-time"}, "2024-01-02T03:04:05Z"),
        ({"type": "string", "format": "date-time"}, "2024-01-02T03:04:05.123+02:00"),
        ({"type": "string", "format": "date"}, "2024-02-29"),
        ({"type": "string", "format": "byte"}, "aGVsbG8="),
        ({"type": "string", "format": "uuid"}, "123e4567-e89b-12d3-a456-426614174000"),
        ({"type": "string", "format": "hostname"}, "web-0.example.com"),
        ({"type": "string", "format": "ipv4"}, "10.0.0.1"),
        ({"type": "string", "format": "ipv6"}, "fe80::1"),
        ({"type": "string", "format": "cidr"}, "10.0.0.0/8"),
        ({"type": "string", "format": "duration"}, "1h30m"),
        ({"type": "string", "format": "not-a-format"}, "anything"),
        ({"type": "integer", "enum": [1, 2]}, 2.0),
    ],
)
def test_values_accepted(props: Obj, value: Any) -> None:
    assert check(props, value) == []


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("date", "2023-02-29"),
        ("byte", "not base64!"),
        ("uuid", "123"),
        ("ipv4", "10.0.0.256"),
        ("ipv6", "10.0.0.1"),
        ("hostname", "-bad-.example"),
        ("cidr", "10.0.0.1"),
    ],
)
def test_formats_rejected(fmt: str, value: str) -> None:
    assert check({"type": "string", "format": fmt}, value) == [
        f'spec.x: Invalid value: "{value}": spec.x in body must be of type {fmt}: "{value}"'
    ]


def test_required_and_root_paths() -> None:
    s = compile_schema(etcd_schema())
    assert texts(s.validate({"spec": {}})) == ["spec.size: Required value"]
    root = compile_schema({"type": "object", "required": ["spec"], "properties": {}})
    assert texts(root.validate({})) == ["spec: Required value"]


def test_all_failures_are_collected() -> None:
    s = compile_schema(etcd_schema())
    obj = {
        "spec": {"size": 0, "version": "4.0", "pod": {"labels": {"a": 1}}},
        "status": {"phase": "Lost", "members": ["a", "a"]},
    }
    assert texts(s.validate(obj)) == [
        "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        'spec.version: Invalid value: "4.0": spec.version in body should match '
        "'^3\\.\\d+\\.\\d+$'",
        'spec.pod.labels.a: Invalid value: "integer": spec.pod.labels.a in body must be of type '
        'string: "integer"',
        'status.phase: Unsupported value: "Lost": supported values: "Creating", "Running", '
        '"Failed"',
        'status.members[1]: Duplicate value: "a"',
    ]


def test_validate_status_subtree_only() -> None:
    s = compile_schema(etcd_schema())
    obj = {"spec": {"size": -5}, "status": {"size": "three"}}
    assert texts(s.validate(obj, subtree="status")) == [
        'status.size: Invalid value: "string": status.size in body must be of type integer: '
        '"string"'
    ]
    assert s.validate({"spec": {"size": -5}}, subtree="status") == []
    assert len(s.validate(obj)) == 2


def test_list_map_duplicates() -> None:
    schema = spec_schema(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "protocol"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "protocol": {"type": "string", "default": "TCP"},
                    "port": {"type": "integer"},
                },
            },
        }
    )
    s = compile_schema(schema)
    obj = {
        "spec": {
            "ports": [
                {"name": "a", "port": 1},
                {"name": "a", "protocol": "UDP", "port": 2},
                {"name": "a", "protocol": "TCP", "port": 3},
            ]
        }
    }
    errs = s.validate(obj)
    assert texts(errs) == ['spec.ports[2]: Duplicate value: {"name":"a","protocol":"TCP"}']
    assert errs[0].cause()["reason"] == "FieldValueDuplicate"


def test_composition_keywords() -> None:
    s = compile_schema(
        spec_schema(
            a={"type": "string", "anyOf": [{"pattern": "^x"}, {"pattern": "^y"}]},
            o={"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
            al={"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 10}]},
            n={"type": "string", "not": {"enum": ["forbidden"]}},
        )
    )
    assert s.validate({"spec": {"a": "xx", "o": -5, "al": 5, "n": "ok"}}) == []
    errs = texts(s.validate({"spec": {"a": "zz", "o": 5, "al": 11, "n": "forbidden"}}))
    assert 'Invalid value: "": "spec.a" must validate at least one schema (anyOf)' in errs
    assert (
        'Invalid value: "": "spec.o" must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives" in errs
    )
    assert "spec.al: Invalid value: 11: spec.al in body should be less than or equal to 10" in errs
    assert 'Invalid value: "": "spec.al" must validate all the schemas (allOf)' in errs
    assert 'Invalid value: "": "spec.n" must not validate the schema (not)' in errs


def test_int_or_string_with_any_of() -> None:
    s = compile_schema(prometheus_schema())
    assert s.validate({"spec": {"port": 9090}}) == []
    assert s.validate({"spec": {"port": "web"}}) == []
    errs = texts(s.validate({"spec": {"port": 1.5}}))
    assert errs[0] == (
        'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: '
        '"number"'
    )


def test_embedded_resource_needs_type_meta() -> None:
    s = compile_schema(prometheus_schema())
    assert texts(s.validate({"spec": {"template": {"spec": {"image": "x"}}}})) == [
        "spec.template.apiVersion: Required value: must not be empty",
        "spec.template.kind: Required value: must not be empty",
    ]
    ok = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {}}}}
    assert s.validate(ok) == []


def test_cel_rules_are_collected_not_run() -> None:
    schema = spec_schema(
        items={
            "type": "array",
            "items": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self != 'x'"}],
            },
        }
    )
    schema["x-kubernetes-validations"] = [{"rule": "has(self.spec)"}]
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.items.size() < 3", "message": "too many"}
    ]
    s = compile_schema(schema)
    assert s.cel_rules() == [
        ("", {"rule": "has(self.spec)"}),
        ("spec", {"rule": "self.items.size() < 3", "message": "too many"}),
        ("spec.items[*]", {"rule": "self != 'x'"}),
    ]
    assert s.validate({"spec": {"items": ["x", "x", "x", "x"]}}) == []


def test_subschema_and_raw() -> None:
    raw = etcd_schema()
    s = compile_schema(raw)
    assert isinstance(s, StructuralSchema)
    assert s.raw is raw
    assert s.subschema(("spec", "size")) == {"type": "integer", "minimum": 1}
    assert s.subschema(("status", "members", "*")) == {"type": "string"}
    assert s.subschema(("spec", "pod", "labels", "anykey")) == {"type": "string"}
    assert s.subschema(("spec", "nope")) is None
    assert s.subschema(()) is raw


def test_go_value_text() -> None:
    assert go_value_text(1000000.0) == "1e+06"
    assert go_value_text(123456.0) == "123456"
    assert go_value_text(1.5) == "1.5"
    assert go_value_text(0.0001) == "0.0001"
    assert go_value_text(0.00001) == "1e-05"
    assert go_value_text(1e21) == "1e+21"
    assert go_value_text(1234567.0) == "1.234567e+06"
    assert go_value_text(-2.5e-7) == "-2.5e-07"
    assert go_value_text(7) == "7"


# --------------------------------------------------------------------------- built-ins


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "any.key/works": "x"},
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u", "controller": True}
            ],
            "managedFields": [
                {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {".": {}}}}
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}},
                            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                        }
                    ],
                },
            },
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }


def test_builtin_valid_deployment_has_no_unknown_fields() -> None:
    assert builtin_unknown_fields(deployment(), group="apps", version="v1", kind="Deployment") == []


def test_builtin_deployment_unknown_fields() -> None:
    d = deployment()
    d["spec"]["foo"] = 1
    d["metadata"]["bogus"] = True
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = "x"
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPortt"] = 1
    d["status"]["conditions"][0]["why"] = "?"
    assert builtin_unknown_fields(d, group="apps", version="v1", kind="Deployment") == [
        "metadata.bogus",
        "spec.template.spec.containers[0].ports[0].hostPortt",
        "spec.template.spec.containers[0].bogus",
        "spec.foo",
        "status.conditions[0].why",
    ]


def test_builtin_pod_unknown_fields() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}],
            "volumes": [{"name": "v", "emptyDir": {}, "hostPathh": {}}],
            "restartPolicyy": "Never",
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    }
    assert builtin_unknown_fields(pod, group="", version="v1", kind="Pod") == [
        "spec.volumes[0].hostPathh",
        "spec.restartPolicyy",
    ]


def test_builtin_group_specific_models() -> None:
    core = {"metadata": {"name": "e"}, "involvedObject": {"name": "x"}, "note": "n"}
    assert builtin_unknown_fields(core, group="", version="v1", kind="Event") == ["note"]
    events = {"metadata": {"name": "e"}, "note": "n", "regarding": {"name": "x"}}
    assert builtin_unknown_fields(events, group="events.k8s.io", version="v1", kind="Event") == []
    cm = {"metadata": {"name": "c"}, "data": {"any.key": "v"}, "binaryData": {"b": "AA=="}}
    assert builtin_unknown_fields(cm, group="", version="v1", kind="ConfigMap") == []
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "leaseDurationSecs": 1}}
    assert builtin_unknown_fields(
        lease, group="coordination.k8s.io", version="v1", kind="Lease"
    ) == ["spec.leaseDurationSecs"]


def test_builtin_crd_object_walks_schema_maps() -> None:
    crd = etcd_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["bad"] = 1
    assert builtin_unknown_fields(
        crd, group="apiextensions.k8s.io", version="v1", kind="CustomResourceDefinition"
    ) == ["spec.versions[0].schema.openAPIV3Schema.properties.spec.bad"]


def test_builtin_unknown_kinds_and_custom_groups() -> None:
    obj = {"spec": {"anything": 1}}
    assert builtin_unknown_fields(obj, group="", version="v1", kind="Nope") == []
    assert builtin_unknown_fields(obj, group="example.com", version="v1", kind="Pod") == []
    assert builtin_unknown_fields(obj, group="apps", version="v9", kind="Deployment") == []


def test_builtin_tolerates_wrong_shapes() -> None:
    odd = {"metadata": "nope", "spec": {"containers": "x", "volumes": [None, 5]}}
    assert builtin_unknown_fields(odd, group="", version="v1", kind="Pod") == []


# --------------------------------------------------------------------------- drop_paths


def test_drop_paths() -> None:
    d = deployment()
    d["spec"]["foo"] = 1
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = "x"
    d["spec"]["odd.key"] = 2
    paths = builtin_unknown_fields(d, group="apps", version="v1", kind="Deployment")
    drop_paths(d, [*paths, "spec.missing.deeper", "spec.template.spec.containers[5].x"])
    assert d == {**deployment()}


def test_drop_paths_from_pruned_list_items() -> None:
    obj: Obj = {"spec": {"items": [{"a": 1, "b": 2}, {"b": 3}]}, "x": 1}
    drop_paths(obj, ["spec.items[0].b", "spec.items[1].b", "x", "spec.items[9].b"])
    assert obj == {"spec": {"items": [{"a": 1}, {}]}}
