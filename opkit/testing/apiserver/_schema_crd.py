"""CustomResourceDefinition validation and defaulting (CRD-1), in apiextensions' words.

Rules and texts follow apiextensions-apiserver ``apis/apiextensions/validation`` and the
structural-schema checks of ``apiserver/schema``; field paths use apimachinery's notation
(``spec.versions[0].schema.openAPIV3Schema.properties[spec].type``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from opkit._validation import dns1035_label_errors as _dns1035
from opkit._validation import dns1123_subdomain_errors as _dns1123_subdomain

from ._fielderrors import FieldError
from ._jsonvalue import json_equal
from ._schema_structural import compile_pattern, prune_value, validate_value

__all__ = ["default_crd", "stored_versions", "validate_crd"]

Obj = dict[str, Any]

_MISSING: Any = object()

_OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_PRINTER_TYPES = "boolean,date,integer,number,string"
_PRINTER_FORMATS = "byte,date,date-time,double,float,int32,int64,password"
_ALLOWED_AT_STATUS_ROOT = {
    "description": "Description",
    "type": "Type",
    "format": "Format",
    "title": "Title",
    "maximum": "Maximum",
    "exclusiveMaximum": "ExclusiveMaximum",
    "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum",
    "maxLength": "MaxLength",
    "minLength": "MinLength",
    "pattern": "Pattern",
    "maxItems": "MaxItems",
    "minItems": "MinItems",
    "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf",
    "required": "Required",
    "items": "Items",
    "properties": "Properties",
    "externalDocs": "ExternalDocs",
    "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}
_ALLOWED_AT_STATUS_ROOT_TEXT = "[" + " ".join(_ALLOWED_AT_STATUS_ROOT.values()) + "]"
_META_FIELDS = ("metadata", "kind", "apiVersion")
_VALIDATION_REASONS = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
]

# JSON shape of schema keywords; a wrong shape would fail JSON decoding upstream.
_KEYWORD_SHAPES: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "format": (str,),
    "title": (str,),
    "description": (str,),
    "pattern": (str,),
    "required": (list,),
    "enum": (list,),
    "properties": (dict,),
    "additionalProperties": (dict, bool),
    "items": (dict, list),
    "allOf": (list,),
    "anyOf": (list,),
    "oneOf": (list,),
    "not": (dict,),
    "nullable": (bool,),
    "uniqueItems": (bool,),
    "exclusiveMinimum": (bool,),
    "exclusiveMaximum": (bool,),
    "minimum": (int, float),
    "maximum": (int, float),
    "multipleOf": (int, float),
    "minLength": (int,),
    "maxLength": (int,),
    "minItems": (int,),
    "maxItems": (int,),
    "minProperties": (int,),
    "maxProperties": (int,),
    "x-kubernetes-preserve-unknown-fields": (bool,),
    "x-kubernetes-embedded-resource": (bool,),
    "x-kubernetes-int-or-string": (bool,),
    "x-kubernetes-list-type": (str,),
    "x-kubernetes-list-map-keys": (list,),
    "x-kubernetes-map-type": (str,),
    "x-kubernetes-validations": (list,),
}
_SHAPE_NAMES = {str: "string", list: "array", dict: "object", bool: "boolean", int: "integer"}


def _d(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _versions_summary(versions: list[Any]) -> list[Obj]:
    """What a ``spec.versions`` Invalid error shows instead of Go's struct dump."""
    return [
        {k: v[k] for k in ("name", "served", "storage") if k in v}
        for v in versions
        if isinstance(v, dict)
    ]


# --------------------------------------------------------------------------- defaulting


def default_crd(crd: Obj) -> None:
    """Apply apiextensions/v1 defaults in place: singular, listKind, conversion strategy."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = _s(names.get("kind"))
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    conversion = spec.get("conversion")
    if not isinstance(conversion, dict):
        spec["conversion"] = {"strategy": "None"}
    else:
        if not conversion.get("strategy"):
            conversion["strategy"] = "None"
        service = _d(_d(conversion.get("webhook")).get("clientConfig")).get("service")
        if isinstance(service, dict) and "port" not in service:
            service["port"] = 443


def stored_versions(crd: Obj, old: Obj | None = None) -> list[str]:
    """``status.storedVersions`` after a write: the old list plus the new storage version."""
    source = old if old is not None else crd
    stored = [v for v in _d(source.get("status")).get("storedVersions") or [] if isinstance(v, str)]
    for v in _d(crd.get("spec")).get("versions") or []:
        if isinstance(v, dict) and v.get("storage") is True:
            name = _s(v.get("name"))
            if name and name not in stored:
                stored.append(name)
    return stored


# --------------------------------------------------------------------------- CRD


def validate_crd(crd: Obj, old: Obj | None = None, *, subresource: str = "") -> list[FieldError]:
    """Every CRD-1 violation of ``crd`` (an update when ``old`` is given).

    With ``subresource="status"`` only the status is checked, as upstream does for
    ``/status`` writes, so a storage migration may trim ``status.storedVersions``.
    """
    errs: list[FieldError] = []
    if subresource == "status":
        accepted = _d(crd.get("status")).get("acceptedNames")
        if isinstance(accepted, dict):
            _validate_names(accepted, "status.acceptedNames", errs)
        return errs
    meta = _d(crd.get("metadata"))
    spec = _d(crd.get("spec"))
    names = _d(spec.get("names"))
    group = _s(spec.get("group"))
    plural = _s(names.get("plural"))

    name = meta.get("name")
    if not name:
        errs.append(FieldError.required("metadata.name", "name or generateName is required"))
    elif isinstance(name, str):
        for msg in _dns1123_subdomain(name):
            errs.append(FieldError.invalid("metadata.name", name, msg))
        if name != f"{plural}.{group}":
            errs.append(
                FieldError.invalid(
                    "metadata.name", name, 'must be spec.names.plural+"."+spec.group'
                )
            )

    _validate_spec(spec, errs, old)

    accepted = _d(crd.get("status")).get("acceptedNames")
    if isinstance(accepted, dict):
        _validate_names(accepted, "status.acceptedNames", errs)

    _validate_stored_versions(stored_versions(crd, old), spec, errs)
    _validate_api_approval(group, meta, errs)

    if spec.get("preserveUnknownFields") is True and not (
        old is not None and _d(old.get("spec")).get("preserveUnknownFields") is True
    ):
        errs.append(
            FieldError.invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                "spec.versions[*].schema instead",
            )
        )

    if old is not None:
        old_spec = _d(old.get("spec"))
        old_names = _d(old_spec.get("names"))
        for path, new, prev in (
            ("spec.scope", spec.get("scope"), old_spec.get("scope")),
            ("spec.names.kind", names.get("kind"), old_names.get("kind")),
            ("spec.group", spec.get("group"), old_spec.get("group")),
            ("spec.names.plural", names.get("plural"), old_names.get("plural")),
        ):
            if new != prev:
                errs.append(FieldError.invalid(path, new, "field is immutable"))
    return errs


def _validate_spec(spec: Obj, errs: list[FieldError], old: Obj | None) -> None:
    group = spec.get("group")
    if not group:
        errs.append(FieldError.required("spec.group"))
    elif isinstance(group, str):
        msgs = _dns1123_subdomain(group)
        if msgs:
            errs.append(FieldError.invalid("spec.group", group, ",".join(msgs)))
        elif len(group.split(".")) < 2:
            errs.append(
                FieldError.invalid("spec.group", group, "should be a domain with at least one dot")
            )

    scope = spec.get("scope")
    if not scope:
        errs.append(FieldError.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(FieldError.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))

    raw_versions = spec.get("versions")
    versions: list[Any] = raw_versions if isinstance(raw_versions, list) else []
    old_versions = _d(_d(old).get("spec")).get("versions") if old is not None else None
    require_schema = old is None or all(
        isinstance(v, dict) and _d(v.get("schema")).get("openAPIV3Schema") is not None
        for v in (old_versions if isinstance(old_versions, list) else [])
    )
    if require_schema:
        for i, v in enumerate(versions):
            if not isinstance(v, dict) or _d(v.get("schema")).get("openAPIV3Schema") is None:
                errs.append(
                    FieldError.required(
                        f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"
                    )
                )

    storage_count = 0
    seen: set[str] = set()
    unique = True
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            errs.append(FieldError.invalid(path, v, "must be an object"))
            continue
        if v.get("storage") is True:
            storage_count += 1
        vname = _s(v.get("name"))
        if vname in seen:
            unique = False
        seen.add(vname)
        msgs = _dns1035(vname)
        if msgs:
            errs.append(FieldError.invalid(f"{path}.name", v.get("name", ""), ",".join(msgs)))
        _validate_version(v, path, errs)

    if not unique:
        errs.append(
            FieldError.invalid(
                "spec.versions", _versions_summary(versions), "must contain unique version names"
            )
        )
    if storage_count != 1:
        errs.append(
            FieldError.invalid(
                "spec.versions",
                _versions_summary(versions),
                "must have exactly one version marked as storage version",
            )
        )

    names = _d(spec.get("names"))
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(FieldError.required(f"spec.names.{key}"))
    _validate_names(names, "spec.names", errs)
    _validate_conversion(spec.get("conversion"), errs)


def _validate_names(names: Obj, path: str, errs: list[FieldError]) -> None:
    for key in ("plural", "singular"):
        value = _s(names.get(key))
        msgs = _dns1035(value) if value else []
        if msgs:
            errs.append(FieldError.invalid(f"{path}.{key}", value, ",".join(msgs)))
    for key in ("kind", "listKind"):
        value = _s(names.get(key))
        msgs = _dns1035(value.lower()) if value else []
        if msgs:
            errs.append(
                FieldError.invalid(
                    f"{path}.{key}",
                    value,
                    "may have mixed case, but should otherwise match: " + ",".join(msgs),
                )
            )
    for key in ("shortNames", "categories"):
        entries = names.get(key)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            msgs = _dns1035(_s(entry))
            if msgs:
                errs.append(FieldError.invalid(f"{path}.{key}[{i}]", entry, ",".join(msgs)))
    kind = names.get("kind")
    if kind and kind == names.get("listKind"):
        errs.append(
            FieldError.invalid(f"{path}.listKind", kind, "kind and listKind may not be the same")
        )


def _validate_conversion(conversion: Any, errs: list[FieldError]) -> None:
    if not isinstance(conversion, dict):
        return
    path = "spec.conversion"
    strategy = conversion.get("strategy")
    if not strategy:
        errs.append(FieldError.required(f"{path}.strategy"))
    elif strategy not in ("None", "Webhook"):
        errs.append(FieldError.not_supported(f"{path}.strategy", strategy, ["None", "Webhook"]))
    webhook = conversion.get("webhook")
    if strategy == "Webhook":
        config = _d(webhook).get("clientConfig")
        if not isinstance(config, dict):
            errs.append(
                FieldError.required(
                    f"{path}.webhookClientConfig", "required when strategy is set to Webhook"
                )
            )
        elif ("url" in config) == ("service" in config):
            errs.append(
                FieldError.required(
                    f"{path}.webhookClientConfig", "exactly one of url or service is required"
                )
            )
        review = _d(webhook).get("conversionReviewVersions")
        if not isinstance(review, list) or not review:
            errs.append(FieldError.required(f"{path}.conversionReviewVersions"))
        elif not any(v in ("v1", "v1beta1") for v in review):
            errs.append(
                FieldError.invalid(
                    f"{path}.conversionReviewVersions",
                    review,
                    "must include at least one of v1, v1beta1",
                )
            )
    elif isinstance(webhook, dict):
        if webhook.get("clientConfig") is not None:
            errs.append(
                FieldError.forbidden(
                    f"{path}.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                )
            )
        if webhook.get("conversionReviewVersions"):
            errs.append(
                FieldError.forbidden(
                    f"{path}.conversionReviewVersions",
                    "should not be set when strategy is not set to Webhook",
                )
            )


def _validate_stored_versions(stored: list[str], spec: Obj, errs: list[FieldError]) -> None:
    path = "status.storedVersions"
    if not stored:
        errs.append(FieldError.invalid(path, stored, "must have at least one stored version"))
        return
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    remaining = {v: i for i, v in enumerate(stored)}
    for v in versions:
        vname = _s(v.get("name"))
        if v.get("storage") is True and vname not in remaining:
            errs.append(FieldError.invalid(path, stored, "must have the storage version " + vname))
        remaining.pop(vname, None)
    for gone, i in sorted(remaining.items(), key=lambda kv: kv[1]):
        errs.append(
            FieldError.invalid(
                f"{path}[{i}]",
                gone,
                f"missing from spec.versions; {gone} was previously a storage version, and must "
                f"remain in spec.versions until a storage migration ensures no data remains "
                f"persisted in {gone} and removes {gone} from status.storedVersions",
            )
        )


def _validate_api_approval(group: str, meta: Obj, errs: list[FieldError]) -> None:
    protected = group in ("k8s.io", "kubernetes.io") or group.endswith(
        (".k8s.io", ".kubernetes.io")
    )
    if not protected:
        return
    annotations = _d(meta.get("annotations"))
    if not annotations.get("api-approved.kubernetes.io"):
        errs.append(
            FieldError.required(
                "metadata.annotations[api-approved.kubernetes.io]",
                'protected groups must have approval annotation "api-approved.kubernetes.io", '
                "see https://github.com/kubernetes/enhancements/pull/1111",
            )
        )


def _validate_version(v: Obj, path: str, errs: list[FieldError]) -> None:
    deprecated = v.get("deprecated") is True
    warning = v.get("deprecationWarning", _MISSING)
    if warning is not _MISSING and warning is not None:
        wpath = f"{path}.deprecationWarning"
        if not deprecated:
            errs.append(
                FieldError.invalid(wpath, warning, "can only be set for deprecated versions")
            )
        elif isinstance(warning, str):
            if len(warning) > 256:
                errs.append(FieldError.invalid(wpath, warning, "must be <= 256 characters long"))
            if not warning:
                errs.append(FieldError.invalid(wpath, warning, "must not be an empty string"))
    subresources = _d(v.get("subresources"))
    schema = _d(v.get("schema")).get("openAPIV3Schema")
    if schema is not None:
        _SchemaChecker(f"{path}.schema.openAPIV3Schema", "status" in subresources).check(
            schema, errs
        )
    _validate_subresources(subresources, f"{path}.subresources", errs)
    columns = v.get("additionalPrinterColumns")
    for i, col in enumerate(columns if isinstance(columns, list) else []):
        _validate_column(_d(col), f"{path}.additionalPrinterColumns[{i}]", errs)
    selectable = v.get("selectableFields")
    for i, sf in enumerate(selectable if isinstance(selectable, list) else []):
        if not _s(_d(sf).get("jsonPath")):
            errs.append(FieldError.required(f"{path}.selectableFields[{i}].jsonPath"))


def _simple_json_path(s: str, path: str, errs: list[FieldError]) -> bool:
    if not s:
        errs.append(FieldError.invalid(path, s, "must not be empty"))
        return False
    if not s.startswith("."):
        errs.append(FieldError.invalid(path, s, "must be a simple json path starting with ."))
        return False
    return True


def _validate_subresources(sub: Obj, path: str, errs: list[FieldError]) -> None:
    scale = sub.get("scale")
    if not isinstance(scale, dict):
        return
    for key, prefix, text in (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec"),
        ("statusReplicasPath", (".status.",), "should be a json path under .status"),
    ):
        value = _s(scale.get(key))
        field = f"{path}.scale.{key}"
        if not value:
            errs.append(FieldError.required(field))
        elif _simple_json_path(value, field, errs) and not value.startswith(prefix):
            errs.append(FieldError.invalid(field, value, text))
    selector = _s(scale.get("labelSelectorPath"))
    if selector:
        field = f"{path}.scale.labelSelectorPath"
        if _simple_json_path(selector, field, errs) and not selector.startswith(
            (".spec.", ".status.")
        ):
            errs.append(
                FieldError.invalid(
                    field, selector, "should be a json path under either .spec or .status"
                )
            )


def _validate_column(col: Obj, path: str, errs: list[FieldError]) -> None:
    if not col.get("name"):
        errs.append(FieldError.required(f"{path}.name"))
    ctype = col.get("type")
    if not ctype:
        errs.append(FieldError.required(f"{path}.type", f"must be one of {_PRINTER_TYPES}"))
    elif ctype not in _PRINTER_TYPES.split(","):
        errs.append(FieldError.invalid(f"{path}.type", ctype, f"must be one of {_PRINTER_TYPES}"))
    fmt = col.get("format")
    if fmt and fmt not in _PRINTER_FORMATS.split(","):
        errs.append(FieldError.invalid(f"{path}.format", fmt, f"must be one of {_PRINTER_FORMATS}"))
    json_path = _s(col.get("jsonPath"))
    if not json_path:
        errs.append(FieldError.required(f"{path}.JSONPath"))
    else:
        _simple_json_path(json_path, f"{path}.JSONPath", errs)


# --------------------------------------------------------------------------- schemas


def _props(node: Obj) -> dict[str, Obj]:
    props = node.get("properties")
    if not isinstance(props, dict):
        return {}
    return {k: v for k, v in props.items() if isinstance(v, dict)}


def _sub_list(node: Obj, key: str) -> list[Obj]:
    v = node.get(key)
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


_NESTED_TESTS: dict[str, Any] = {
    "nonempty": bool,
    "set": lambda x: x is not None,
    "true": lambda x: x is True,
}
# Keys a value validation (inside anyOf/allOf/oneOf/not) may not use to stay structural.
_NESTED_FORBIDDEN = (
    ("type", "nonempty", "must be empty to be structural"),
    ("additionalProperties", "set", "must be undefined to be structural"),
    ("default", "set", "must be undefined to be structural"),
    ("title", "nonempty", "must be empty to be structural"),
    ("description", "nonempty", "must be empty to be structural"),
    ("nullable", "true", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "true", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "true", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "true", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "nonempty", "must be empty to be structural"),
    ("x-kubernetes-list-type", "set", "must be undefined to be structural"),
)


def _is_int_or_string_any_of(any_of: list[Obj]) -> bool:
    return len(any_of) == 2 and any_of[0] == {"type": "integer"} and any_of[1] == {"type": "string"}


class _SchemaChecker:
    """Structural-schema and OpenAPI checks for one version's ``openAPIV3Schema``."""

    def __init__(self, path: str, status_enabled: bool) -> None:
        self.path = path
        self.status_enabled = status_enabled

    def check(self, schema: Any, errs: list[FieldError]) -> None:
        path = self.path
        if not isinstance(schema, dict):
            errs.append(FieldError.invalid(path, schema, "must be an object"))
            return
        shape_errs: list[FieldError] = []
        self._shapes(schema, path, shape_errs)
        if shape_errs:
            errs.extend(shape_errs)
            return
        if self.status_enabled:
            for key, value in schema.items():
                if value in (None, "", False, 0, [], {}):
                    continue
                if key == "type":
                    if value != "object":
                        errs.append(
                            FieldError.invalid(
                                f"{path}.type",
                                value,
                                'only "object" is allowed as the type at the root of the schema '
                                "if the status subresource is enabled",
                            )
                        )
                        break
                    continue
                if key not in _ALLOWED_AT_STATUS_ROOT:
                    errs.append(
                        FieldError.invalid(
                            path,
                            key,
                            f"only {_ALLOWED_AT_STATUS_ROOT_TEXT} fields are allowed at the root "
                            "of the schema if the status subresource is enabled",
                        )
                    )
                    break
        if schema.get("nullable") is True:
            errs.append(
                FieldError.forbidden(f"{path}.nullable", "nullable cannot be true at the root")
            )

        structural: list[FieldError] = []
        self._invariants(schema, "root", path, structural)
        self._completeness(schema, path, structural)
        structural.sort(key=str)
        errs.extend(structural)
        if not structural:
            self._defaults(schema, path, errs, root=True)
        self._openapi(schema, path, errs, root=True, inside_meta=False, no_defaults="")

    # -- JSON shape

    def _shapes(self, node: Obj, path: str, errs: list[FieldError]) -> None:
        for key, kinds in _KEYWORD_SHAPES.items():
            if key not in node or node[key] is None:
                continue
            value = node[key]
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if not ok:
                want = _SHAPE_NAMES.get(kinds[0], "number")
                errs.append(FieldError.invalid(f"{path}.{key}", value, f"must be of type {want}"))
        for key, child in _props(node).items():
            self._shapes(child, f"{path}.properties[{key}]", errs)
        props = node.get("properties")
        if isinstance(props, dict):
            for key, child in props.items():
                if not isinstance(child, dict):
                    errs.append(
                        FieldError.invalid(
                            f"{path}.properties[{key}]", child, "must be of type object"
                        )
                    )
        for key in ("items", "additionalProperties", "not"):
            sub = node.get(key)
            if isinstance(sub, dict):
                self._shapes(sub, f"{path}.{key}", errs)
        for key in ("allOf", "anyOf", "oneOf"):
            for i, alt in enumerate(node.get(key) or []):
                if isinstance(alt, dict):
                    self._shapes(alt, f"{path}.{key}[{i}]", errs)
                else:
                    errs.append(
                        FieldError.invalid(f"{path}.{key}[{i}]", alt, "must be of type object")
                    )

    # -- structural invariants (schema/validation.go)

    def _invariants(self, s: Obj, lvl: str, path: str, errs: list[FieldError]) -> None:
        stype = _s(s.get("type"))
        items = s.get("items")
        if stype == "array" and not isinstance(items, dict):
            errs.append(FieldError.required(f"{path}.items", "must be specified"))
        if isinstance(items, dict):
            self._invariants(items, "item", f"{path}.items", errs)
        props = _props(s)
        for k, v in props.items():
            self._invariants(v, "field", f"{path}.properties[{k}]", errs)
        ap = s.get("additionalProperties")
        if ap is not None:
            if lvl == "root":
                errs.append(
                    FieldError.forbidden(
                        f"{path}.additionalProperties", "must not be used at the root"
                    )
                )
            if isinstance(ap, dict):
                self._invariants(ap, "field", f"{path}.additionalProperties", errs)
        ios = s.get("x-kubernetes-int-or-string") is True
        preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = s.get("x-kubernetes-embedded-resource") is True
        if ios and preserve:
            errs.append(
                FieldError.invalid(
                    f"{path}.x-kubernetes-preserve-unknown-fields",
                    True,
                    "must be false if x-kubernetes-int-or-string is true",
                )
            )
        if ios and embedded:
            errs.append(
                FieldError.invalid(
                    f"{path}.x-kubernetes-embedded-resource",
                    True,
                    "must be false if x-kubernetes-int-or-string is true",
                )
            )
        any_of = _sub_list(s, "anyOf")
        all_of = _sub_list(s, "allOf")
        skip_any = _is_int_or_string_any_of(any_of)
        skip_first_all = bool(all_of) and _is_int_or_string_any_of(_sub_list(all_of[0], "anyOf"))
        self._value_validation(
            s, skip_any=skip_any, skip_first_all_any=skip_first_all, lvl=lvl, path=path, errs=errs
        )

        if embedded and stype != "object":
            if not stype:
                errs.append(
                    FieldError.required(
                        f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"
                    )
                )
            else:
                errs.append(
                    FieldError.invalid(
                        f"{path}.type",
                        stype,
                        "must be object if x-kubernetes-embedded-resource is true",
                    )
                )
        elif not stype and not ios and not preserve:
            detail = {
                "root": "must not be empty at the root",
                "item": "must not be empty for specified array items",
                "field": "must not be empty for specified object fields",
            }[lvl]
            errs.append(FieldError.required(f"{path}.type", detail))
        if embedded and ap is not None:
            errs.append(
                FieldError.forbidden(
                    f"{path}.additionalProperties",
                    "must not be used if x-kubernetes-embedded-resource is set",
                )
            )
        if lvl == "root" and stype and stype != "object":
            errs.append(FieldError.invalid(f"{path}.type", stype, "must be object at the root"))
        if lvl == "root" or embedded:
            for key, want in (("kind", "string"), ("apiVersion", "string"), ("metadata", "object")):
                if key in props and props[key].get("type") != want:
                    errs.append(
                        FieldError.invalid(
                            f"{path}.properties[{key}].type",
                            _s(props[key].get("type")),
                            f"must be {want}",
                        )
                    )
        if lvl == "root" and "metadata" in props:
            meta = props["metadata"]
            meta_props = _props(meta)
            extra = {k for k in meta if k not in ("type", "default", "properties")}
            if (meta_props and not set(meta_props) <= {"name", "generateName"}) or extra:
                errs.append(
                    FieldError.forbidden(
                        f"{path}.properties[metadata]",
                        "must not specify anything other than name and generateName, but "
                        "metadata is implicitly specified",
                    )
                )
        if embedded and not preserve and not props:
            errs.append(
                FieldError.required(
                    f"{path}.properties",
                    "must not be empty if x-kubernetes-embedded-resource is true without "
                    "x-kubernetes-preserve-unknown-fields",
                )
            )

    def _value_validation(
        self,
        v: Obj,
        *,
        skip_any: bool,
        skip_first_all_any: bool,
        lvl: str,
        path: str,
        errs: list[FieldError],
    ) -> None:
        if not skip_any:
            for i, sub in enumerate(_sub_list(v, "anyOf")):
                self._nested(sub, False, lvl, f"{path}.anyOf[{i}]", errs)
        for i, sub in enumerate(_sub_list(v, "allOf")):
            self._nested(sub, skip_first_all_any and i == 0, lvl, f"{path}.allOf[{i}]", errs)
        for i, sub in enumerate(_sub_list(v, "oneOf")):
            self._nested(sub, False, lvl, f"{path}.oneOf[{i}]", errs)
        not_ = v.get("not")
        if isinstance(not_, dict):
            self._nested(not_, False, lvl, f"{path}.not", errs)
        pattern = v.get("pattern")
        if isinstance(pattern, str) and pattern and "\\p" not in pattern and "\\P" not in pattern:
            try:
                compile_pattern(pattern)
            except re.error as exc:
                errs.append(
                    FieldError.invalid(
                        f"{path}.pattern",
                        pattern,
                        f"must be a valid regular expression, but isn't: {exc}",
                    )
                )

    def _nested(self, v: Obj, skip_any: bool, lvl: str, path: str, errs: list[FieldError]) -> None:
        self._value_validation(
            v, skip_any=skip_any, skip_first_all_any=False, lvl=lvl, path=path, errs=errs
        )
        items = v.get("items")
        if isinstance(items, dict):
            self._nested(items, False, lvl, f"{path}.items", errs)
        for k, fld in _props(v).items():
            self._nested(fld, False, "field", f"{path}.properties[{k}]", errs)
        for key, test, detail in _NESTED_FORBIDDEN:
            if key in v and _NESTED_TESTS[test](v[key]):
                errs.append(FieldError.forbidden(f"{path}.{key}", detail))
        if "metadata" in _props(v):
            errs.append(
                FieldError.forbidden(
                    f"{path}.properties[metadata]", "must not be specified in a nested context"
                )
            )

    def _completeness(self, s: Obj, path: str, errs: list[FieldError]) -> None:
        """Fields named inside anyOf/allOf/oneOf/not must also exist structurally."""
        for key in ("allOf", "anyOf", "oneOf"):
            for i, v in enumerate(_sub_list(s, key)):
                self._nested_complete(v, s, path, f"{path}.{key}[{i}]", errs)
        not_ = s.get("not")
        if isinstance(not_, dict):
            self._nested_complete(not_, s, path, f"{path}.not", errs)
        items = s.get("items")
        if isinstance(items, dict):
            self._completeness(items, f"{path}.items", errs)
        for k, v in _props(s).items():
            self._completeness(v, f"{path}.properties[{k}]", errs)

    def _nested_complete(
        self, v: Obj, s: Obj | None, spath: str, vpath: str, errs: list[FieldError]
    ) -> None:
        if s is None:
            errs.append(FieldError.required(spath, f"because it is defined in {vpath}"))
            return
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(_sub_list(v, key)):
                self._nested_complete(sub, s, spath, f"{vpath}.{key}[{i}]", errs)
        not_ = v.get("not")
        if isinstance(not_, dict):
            self._nested_complete(not_, s, spath, f"{vpath}.not", errs)
        items = v.get("items")
        if isinstance(items, dict):
            s_items = s.get("items")
            self._nested_complete(
                items,
                s_items if isinstance(s_items, dict) else None,
                f"{spath}.items",
                f"{vpath}.items",
                errs,
            )
        s_props = _props(s)
        for k, fld in _props(v).items():
            if k not in s_props:
                errs.append(
                    FieldError.required(
                        f"{spath}.properties[{k}]",
                        f"because it is defined in {vpath}.properties[{k}]",
                    )
                )
            else:
                self._nested_complete(
                    fld, s_props[k], f"{spath}.properties[{k}]", f"{vpath}.properties[{k}]", errs
                )

    # -- defaults (schema/defaulting/validation.go)

    def _defaults(
        self, s: Obj, path: str, errs: list[FieldError], *, root: bool, inside_meta: bool = False
    ) -> None:
        embedded = s.get("x-kubernetes-embedded-resource") is True
        if embedded:
            inside_meta = False
        default = s.get("default", _MISSING)
        if default is not _MISSING and default is not None and not inside_meta:
            dpath = f"{path}.default"
            pruned = json.loads(json.dumps(default))
            prune_value(s, pruned, embedded=embedded)
            if not json_equal(pruned, default):
                errs.append(FieldError.invalid(dpath, default, "must not have unknown fields"))
            else:
                for e in validate_value(s, default, ""):
                    e.field = f"{dpath}.{e.field}" if e.field else dpath
                    errs.append(e)
        items = s.get("items")
        if isinstance(items, dict):
            self._defaults(items, f"{path}.items", errs, root=False, inside_meta=inside_meta)
        for k, v in _props(s).items():
            sub_meta = inside_meta or ((root or embedded) and k in _META_FIELDS)
            self._defaults(v, f"{path}.properties[{k}]", errs, root=False, inside_meta=sub_meta)

    # -- OpenAPI rules (ValidateCustomResourceDefinitionOpenAPISchema)

    def _openapi(
        self,
        s: Obj,
        path: str,
        errs: list[FieldError],
        *,
        root: bool,
        inside_meta: bool,
        no_defaults: str,
    ) -> None:
        stype = s.get("type")
        if isinstance(stype, str) and stype:
            if stype == "null":
                errs.append(
                    FieldError.forbidden(
                        f"{path}.type", "type cannot be set to null, use nullable as an alternative"
                    )
                )
            elif stype not in _OPENAPI_TYPES:
                errs.append(FieldError.not_supported(f"{path}.type", stype, _OPENAPI_TYPES))
        if s.get("default") is not None and no_defaults:
            errs.append(FieldError.forbidden(f"{path}.default", f"must not be set {no_defaults}"))
        forbidden = (
            ("id", "id is not supported"),
            ("additionalItems", "additionalItems is not supported"),
            ("patternProperties", "patternProperties is not supported"),
            ("definitions", "definitions is not supported"),
            ("dependencies", "dependencies is not supported"),
            ("$ref", "$ref is not supported"),
        )
        for key, detail in forbidden:
            if s.get(key):
                errs.append(FieldError.forbidden(f"{path}.{key}", detail))
        items = s.get("items")
        if isinstance(items, list) and items:
            errs.append(
                FieldError.forbidden(
                    f"{path}.items", "items must be a schema object and not an array"
                )
            )
        embedded = s.get("x-kubernetes-embedded-resource") is True
        if inside_meta and embedded:
            errs.append(
                FieldError.forbidden(
                    f"{path}.x-kubernetes-embedded-resource",
                    "must not be used inside of resource meta",
                )
            )
        if s.get("uniqueItems") is True:
            errs.append(
                FieldError.forbidden(
                    f"{path}.uniqueItems",
                    "uniqueItems cannot be set to true since the runtime complexity becomes "
                    "quadratic",
                )
            )
        props = _props(s)
        ap = s.get("additionalProperties")
        if ap is not None:
            if props and (ap is False or isinstance(ap, dict)):
                errs.append(
                    FieldError.forbidden(
                        f"{path}.additionalProperties",
                        "additionalProperties and properties are mutual exclusive",
                    )
                )
            if isinstance(ap, dict):
                sub_no_defaults = (
                    "inside additionalProperties applying to object metadata"
                    if inside_meta
                    else no_defaults
                )
                self._openapi(
                    ap,
                    f"{path}.additionalProperties",
                    errs,
                    root=False,
                    inside_meta=inside_meta,
                    no_defaults=sub_no_defaults,
                )
        for k, v in props.items():
            sub_meta = inside_meta
            sub_no_defaults = no_defaults
            if (root or embedded) and k in _META_FIELDS:
                sub_meta = True
                if root:
                    sub_no_defaults = f"in top-level {k}"
            self._openapi(
                v,
                f"{path}.properties[{k}]",
                errs,
                root=False,
                inside_meta=sub_meta,
                no_defaults=sub_no_defaults,
            )
        not_ = s.get("not")
        if isinstance(not_, dict):
            self._openapi(
                not_,
                f"{path}.not",
                errs,
                root=False,
                inside_meta=inside_meta,
                no_defaults=no_defaults,
            )
        for key in ("allOf", "oneOf", "anyOf"):
            for i, sub in enumerate(_sub_list(s, key)):
                self._openapi(
                    sub,
                    f"{path}.{key}[{i}]",
                    errs,
                    root=False,
                    inside_meta=inside_meta,
                    no_defaults=no_defaults,
                )
        if isinstance(items, dict):
            self._openapi(
                items,
                f"{path}.items",
                errs,
                root=False,
                inside_meta=inside_meta,
                no_defaults=no_defaults,
            )
        self._extensions(s, path, errs)

    def _extensions(self, s: Obj, path: str, errs: list[FieldError]) -> None:
        stype = _s(s.get("type"))
        if s.get("x-kubernetes-preserve-unknown-fields") is False:
            errs.append(
                FieldError.invalid(
                    f"{path}.x-kubernetes-preserve-unknown-fields",
                    False,
                    "must be true or undefined",
                )
            )
        map_type = s.get("x-kubernetes-map-type")
        if map_type is not None:
            if stype != "object":
                detail = "must be object if x-kubernetes-map-type is specified"
                errs.append(
                    FieldError.invalid(f"{path}.type", stype, detail)
                    if stype
                    else FieldError.required(f"{path}.type", detail)
                )
            if map_type not in ("atomic", "granular"):
                errs.append(
                    FieldError.not_supported(
                        f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]
                    )
                )
        list_type = s.get("x-kubernetes-list-type")
        items = s.get("items")
        item = items if isinstance(items, dict) else None
        if list_type is not None and stype != "array":
            detail = "must be array if x-kubernetes-list-type is specified"
            errs.append(
                FieldError.invalid(f"{path}.type", stype, detail)
                if stype
                else FieldError.required(f"{path}.type", detail)
            )
        elif list_type == "set" and item is not None:
            itype = item.get("type")
            if itype == "array" and item.get("x-kubernetes-list-type") not in (None, "atomic"):
                errs.append(
                    FieldError.invalid(
                        f"{path}.items.x-kubernetes-list-type",
                        item.get("x-kubernetes-list-type"),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )
            elif itype == "object" and item.get("x-kubernetes-map-type") != "atomic":
                errs.append(
                    FieldError.invalid(
                        f"{path}.items.x-kubernetes-map-type",
                        item.get("x-kubernetes-map-type"),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                )
        if list_type is not None and list_type not in ("atomic", "set", "map"):
            errs.append(
                FieldError.not_supported(
                    f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]
                )
            )
        keys = s.get("x-kubernetes-list-map-keys")
        keys = keys if isinstance(keys, list) else []
        if keys:
            if list_type is None:
                errs.append(
                    FieldError.required(
                        f"{path}.x-kubernetes-list-type",
                        "must be map if x-kubernetes-list-map-keys is non-empty",
                    )
                )
            elif list_type != "map":
                errs.append(
                    FieldError.invalid(
                        f"{path}.x-kubernetes-list-type",
                        list_type,
                        "must be map if x-kubernetes-list-map-keys is non-empty",
                    )
                )
        if list_type == "map":
            if not keys:
                errs.append(
                    FieldError.required(
                        f"{path}.x-kubernetes-list-map-keys",
                        "must not be empty if x-kubernetes-list-type is map",
                    )
                )
            if item is None:
                errs.append(
                    FieldError.required(
                        f"{path}.items", "must have a schema if x-kubernetes-list-type is map"
                    )
                )
            elif item.get("type") != "object":
                errs.append(
                    FieldError.invalid(
                        f"{path}.items.type",
                        _s(item.get("type")),
                        "must be object if parent array's x-kubernetes-list-type is map",
                    )
                )
            else:
                iprops = _props(item)
                seen: set[str] = set()
                for k in keys:
                    if k in iprops:
                        if iprops[k].get("type") in ("array", "object"):
                            errs.append(
                                FieldError.invalid(
                                    f"{path}.items.properties[{k}].type",
                                    "object",
                                    "must be a scalar type if parent array's "
                                    "x-kubernetes-list-type is map",
                                )
                            )
                    else:
                        errs.append(
                            FieldError.invalid(
                                f"{path}.x-kubernetes-list-map-keys",
                                keys,
                                "entries must all be names of item properties",
                            )
                        )
                    if k in seen:
                        errs.append(
                            FieldError.invalid(
                                f"{path}.x-kubernetes-list-map-keys",
                                keys,
                                "must not contain duplicate entries",
                            )
                        )
                    seen.add(k)
        if list_type in ("set", "map") and item is not None:
            if item.get("nullable") is True:
                errs.append(
                    FieldError.forbidden(
                        f"{path}.items.nullable",
                        f"cannot be nullable when x-kubernetes-list-type is {list_type}",
                    )
                )
            if list_type == "map":
                required = item.get("required")
                required = required if isinstance(required, list) else []
                iprops = _props(item)
                for k in keys:
                    prop = iprops.get(k)
                    if prop is None:
                        continue
                    if k not in required and prop.get("default") is None:
                        errs.append(
                            FieldError.required(
                                f"{path}.items.properties[{k}].default",
                                "this property is in x-kubernetes-list-map-keys, so it must have "
                                "a default or be a required property",
                            )
                        )
                    if prop.get("nullable") is True:
                        errs.append(
                            FieldError.forbidden(
                                f"{path}.items.properties[{k}].nullable",
                                "this property is in x-kubernetes-list-map-keys, so it cannot be "
                                "nullable",
                            )
                        )
        rules = s.get("x-kubernetes-validations")
        for i, entry in enumerate(rules if isinstance(rules, list) else []):
            rpath = f"{path}.x-kubernetes-validations[{i}]"
            rule = _d(entry)
            text = _s(rule.get("rule")).strip()
            message = _s(rule.get("message"))
            if not text:
                errs.append(FieldError.required(f"{rpath}.rule", "rule is not specified"))
            elif message and not message.strip():
                errs.append(
                    FieldError.invalid(
                        f"{rpath}.message", message, "message must be non-empty if specified"
                    )
                )
            elif "\n" in message.strip() or "\r" in message.strip():
                errs.append(
                    FieldError.invalid(
                        f"{rpath}.message", message, "message must not contain line breaks"
                    )
                )
            elif ("\n" in text or "\r" in text) and not message.strip():
                errs.append(
                    FieldError.required(
                        f"{rpath}.message", "message must be specified if rule contains line breaks"
                    )
                )
            reason = rule.get("reason")
            if reason is not None and reason not in _VALIDATION_REASONS:
                errs.append(
                    FieldError.not_supported(f"{rpath}.reason", reason, _VALIDATION_REASONS)
                )
