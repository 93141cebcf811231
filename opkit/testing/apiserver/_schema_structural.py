"""Compiled structural schemas for custom resources: pruning, defaulting, validation.

The algorithms follow apiextensions-apiserver (``schema/pruning``, ``schema/defaulting``,
``schema/objectmeta``, ``schema/listtype``) and the kube-openapi validator, and the error
texts are kube-openapi's as turned into field errors by ``kubeOpenAPIResultToFieldErrors``,
so a 422 from the fake reads like one from a real server. CEL rules are collected, not run.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlparse

from opkit._validation import DNS1035_LABEL_FMT, DNS1035_LABEL_MSG, is_dns1035_label, regex_error

from ._fielderrors import FieldError
from ._jsonpath import go_float
from ._jsonvalue import deep_copy, json_equal

__all__ = ["OBJECT_META_FIELDS", "StructuralSchema", "compile_schema", "go_value_text"]

Obj = dict[str, Any]

_MISSING: Any = object()

#: Fields of metav1.ObjectMeta; anything else under ``metadata`` is dropped.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_OWNER_REF_FIELDS = frozenset(
    {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}
)
_MANAGED_FIELDS_FIELDS = frozenset(
    {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"}
)


# --------------------------------------------------------------------------- Go-ish text


def go_value_text(v: Any) -> str:
    """Render a number the way Go's ``%v`` does (``1e+06`` for a large float64)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    return str(v)


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


def _hashable(v: Any) -> Any:
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", float(v)) if isinstance(v, float) and not v.is_integer() else ("n", int(v))
    if isinstance(v, dict):
        return ("o", tuple(sorted((k, _hashable(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("a", tuple(_hashable(x) for x in v))
    return (type(v).__name__, v)


# --------------------------------------------------------------------------- formats

_UUID_RE = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z")
_UUID3_RE = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z")
_UUID4_RE = re.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"
)
_UUID5_RE = re.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"
)
_HOST_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*\.?\Z")
_MAC_RE = re.compile(
    r"(?i)^([0-9a-f]{2}([:-])[0-9a-f]{2}(\2[0-9a-f]{2}){4}((\2[0-9a-f]{2}){2})?"
    r"((\2[0-9a-f]{2}){12})?|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"
    r"((\.[0-9a-f]{4})?|(\.[0-9a-f]{4}){7})?)\Z"
)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\Z")
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?\Z"
)
_DURATION_GO_RE = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)\Z")
_DURATION_WORDS_RE = re.compile(
    r"^\d+\s*(ns|nanoseconds?|us|µs|microseconds?|ms|milliseconds?|s|seconds?|m|mins?|"
    r"minutes?|h|hours?|d|days?|w|wk|weeks?)\Z"
)
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\Z|^[^<>]*<[^@\s<>]+@[^@\s<>]+>\Z")
_HEXCOLOR_RE = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_RGBCOLOR_RE = re.compile(r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)\Z")
_SSN_RE = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}\Z")
_ISBN10_RE = re.compile(r"^(?:[0-9]{9}X|[0-9]{10})\Z")
_ISBN13_RE = re.compile(r"^(?:[0-9]{13})\Z")
_CREDITCARD_RE = re.compile(
    r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}"
    r"|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11})\Z"
)
_BSON_RE = re.compile(r"^[0-9a-fA-F]{24}\Z")


def _valid_date(y: str, m: str, d: str) -> bool:
    try:
        date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def _fmt_datetime(s: str) -> bool:
    m = _DATETIME_RE.match(s)
    if not m or not _valid_date(m[1], m[2], m[3]):
        return False
    return int(m[4]) < 24 and int(m[5]) < 60 and (m[6] is None or int(m[6]) < 61)


def _fmt_date(s: str) -> bool:
    m = _DATE_RE.match(s)
    return m is not None and _valid_date(m[1], m[2], m[3])


def _fmt_byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except ValueError:
        return False
    return True


def _fmt_ip(version: int) -> Callable[[str], bool]:
    def check(s: str) -> bool:
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            return False
        return ip.version == 4 if version == 4 else ":" in s

    return check


def _fmt_cidr(s: str) -> bool:
    if "/" not in s:
        return False
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return True


def _fmt_uri(s: str) -> bool:
    if not s or s.startswith("*"):
        return False
    parsed = urlparse(s)
    return bool(parsed.scheme) or s.startswith("/")


def _fmt_isbn(s: str) -> bool:
    t = re.sub(r"[\s-]", "", s)
    return bool(_ISBN10_RE.match(t) or _ISBN13_RE.match(t))


_FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda s: bool(_BSON_RE.match(s)),
    "uri": _fmt_uri,
    "email": lambda s: bool(_EMAIL_RE.match(s)),
    "hostname": lambda s: len(s) <= 255 and bool(_HOSTNAME_RE.match(s)),
    "ipv4": _fmt_ip(4),
    "ipv6": _fmt_ip(6),
    "cidr": _fmt_cidr,
    "mac": lambda s: bool(_MAC_RE.match(s)),
    "uuid": lambda s: bool(_UUID_RE.match(s)),
    "uuid3": lambda s: bool(_UUID3_RE.match(s)),
    "uuid4": lambda s: bool(_UUID4_RE.match(s)),
    "uuid5": lambda s: bool(_UUID5_RE.match(s)),
    "isbn": _fmt_isbn,
    "isbn10": lambda s: bool(_ISBN10_RE.match(re.sub(r"[\s-]", "", s))),
    "isbn13": lambda s: bool(_ISBN13_RE.match(re.sub(r"[\s-]", "", s))),
    "creditcard": lambda s: bool(_CREDITCARD_RE.match(re.sub(r"\D", "", s))),
    "ssn": lambda s: bool(_SSN_RE.match(s)),
    "hexcolor": lambda s: bool(_HEXCOLOR_RE.match(s)),
    "rgbcolor": lambda s: bool(_RGBCOLOR_RE.match(s)),
    "byte": _fmt_byte,
    "password": lambda s: True,
    "date": _fmt_date,
    "duration": lambda s: bool(_DURATION_GO_RE.match(s) or _DURATION_WORDS_RE.match(s)),
    "datetime": _fmt_datetime,
}


def format_checker(fmt: str) -> Callable[[str], bool] | None:
    """The checker for a schema ``format``; None for formats upstream strips (int32, ...)."""
    return _FORMATS.get(fmt.replace("-", ""))


_MULTILINE_FLAG = re.compile(r"\(\?[a-zA-Z]*m")


def _go_anchors(pattern: str) -> str:
    """RE2's ``$`` (without the ``m`` flag) and ``\\z`` match only at the very end of the
    text; Python's ``$`` also matches before a final newline. Both become ``\\Z``."""
    multiline = _MULTILINE_FLAG.search(pattern) is not None
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            # a "]" right after "[" or "[^" is a literal member
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                out.append(pattern[i : j + 1])
                i = j + 1
                continue
        elif ch == "$" and not multiline:
            out.append("\\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an (RE2/ECMA-flavoured) schema pattern with Python's ``re``.

    Go's ``\\d``/``\\w``/``\\s`` are ASCII-only, hence ``re.ASCII``; anchors follow RE2
    (see :func:`_go_anchors`). Raises ``re.error`` for patterns Python cannot express.
    """
    return re.compile(_go_anchors(pattern), re.ASCII)


# --------------------------------------------------------------------------- nodes


class _Node:
    """One compiled schema node. ``additional`` is a node, True/False, or None (absent)."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "default",
        "embedded",
        "enum",
        "excl_max",
        "excl_min",
        "fmt",
        "fmt_check",
        "int_or_string",
        "items",
        "list_keys",
        "list_type",
        "max_items",
        "max_length",
        "max_props",
        "maximum",
        "min_items",
        "min_length",
        "min_props",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_re",
        "preserve",
        "properties",
        "raw",
        "required",
        "types",
        "unique_items",
        "validations",
    )

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raw = {}
        self.raw: Obj = raw
        t = raw.get("type")
        self.int_or_string = raw.get("x-kubernetes-int-or-string") is True
        if self.int_or_string:
            self.types: tuple[str, ...] = ("integer", "string")
        elif isinstance(t, str) and t:
            self.types = (t,)
        else:
            self.types = ()
        self.nullable = raw.get("nullable") is True
        self.preserve = raw.get("x-kubernetes-preserve-unknown-fields") is True
        self.embedded = raw.get("x-kubernetes-embedded-resource") is True
        props = raw.get("properties")
        self.properties: dict[str, _Node] = (
            {k: _Node(v) for k, v in props.items()} if isinstance(props, dict) else {}
        )
        ap = raw.get("additionalProperties", _MISSING)
        self.additional: _Node | bool | None
        if ap is _MISSING or ap is None:
            self.additional = None
        elif isinstance(ap, bool):
            self.additional = ap
        else:
            self.additional = _Node(ap)
        items = raw.get("items")
        self.items: _Node | None = _Node(items) if isinstance(items, dict) else None
        self.default: Any = raw.get("default", _MISSING)
        req = raw.get("required")
        self.required: list[str] = (
            [r for r in req if isinstance(r, str)] if isinstance(req, list) else []
        )
        enum = raw.get("enum")
        self.enum: list[Any] | None = enum if isinstance(enum, list) and enum else None
        self.minimum = _num(raw.get("minimum"))
        self.maximum = _num(raw.get("maximum"))
        self.excl_min = raw.get("exclusiveMinimum") is True
        self.excl_max = raw.get("exclusiveMaximum") is True
        self.multiple_of = _num(raw.get("multipleOf"))
        self.min_length = _int(raw.get("minLength"))
        self.max_length = _int(raw.get("maxLength"))
        self.min_items = _int(raw.get("minItems"))
        self.max_items = _int(raw.get("maxItems"))
        self.min_props = _int(raw.get("minProperties"))
        self.max_props = _int(raw.get("maxProperties"))
        self.unique_items = raw.get("uniqueItems") is True
        pattern = raw.get("pattern")
        self.pattern: str | None = pattern if isinstance(pattern, str) and pattern else None
        self.pattern_re: re.Pattern[str] | None = None
        if self.pattern is not None:
            try:
                self.pattern_re = compile_pattern(self.pattern)
            except re.error:
                self.pattern_re = None
        fmt = raw.get("format")
        self.fmt: str = fmt if isinstance(fmt, str) else ""
        self.fmt_check = format_checker(self.fmt) if self.fmt else None
        self.all_of = _subnodes(raw.get("allOf"))
        self.any_of = _subnodes(raw.get("anyOf"))
        self.one_of = _subnodes(raw.get("oneOf"))
        not_ = raw.get("not")
        self.not_: _Node | None = _Node(not_) if isinstance(not_, dict) else None
        lt = raw.get("x-kubernetes-list-type")
        self.list_type: str = lt if isinstance(lt, str) else ""
        keys = raw.get("x-kubernetes-list-map-keys")
        self.list_keys: list[str] = (
            [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
        )
        vals = raw.get("x-kubernetes-validations")
        self.validations: list[Obj] = (
            [v for v in vals if isinstance(v, dict)] if isinstance(vals, list) else []
        )

    @property
    def additional_node(self) -> _Node | None:
        return self.additional if isinstance(self.additional, _Node) else None


def _subnodes(v: Any) -> list[_Node]:
    return [_Node(x) for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _num(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v if isinstance(v, int) else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------- pruning


class _Pruner:
    def __init__(self) -> None:
        self.pruned: list[str] = []

    def prune(self, x: Any, s: _Node | None, path: str, root: bool = False) -> None:
        if s is not None and s.preserve:
            self.skip_prune(x, s, path, root)
            return
        if isinstance(x, dict):
            if s is None:
                for k in list(x):
                    self.pruned.append(_join(path, k))
                    del x[k]
                return
            self._prune_fields(x, s, path, root, drop_unknown=True)
        elif isinstance(x, list):
            item = s.items if s is not None else None
            for i, v in enumerate(x):
                self.prune(v, item, f"{path}[{i}]")

    def skip_prune(self, x: Any, s: _Node, path: str, root: bool = False) -> None:
        """Below ``x-kubernetes-preserve-unknown-fields``: keep unknown fields, but still
        prune inside the ones the schema does specify."""
        if isinstance(x, dict):
            self._prune_fields(x, s, path, root, drop_unknown=False)
        elif isinstance(x, list) and s.items is not None:
            for i, v in enumerate(x):
                self.skip_prune(v, s.items, f"{path}[{i}]")

    def _prune_fields(self, x: Obj, s: _Node, path: str, root: bool, *, drop_unknown: bool) -> None:
        embedded = s.embedded or root
        for k in list(x):
            v = x[k]
            if embedded and self._meta_key(x, k, v, path):
                continue
            prop = s.properties.get(k)
            if prop is not None:
                self.prune(v, prop, _join(path, k))
            elif s.additional is not None:
                self.prune(v, s.additional_node, _join(path, k))
            elif drop_unknown:
                self.pruned.append(_join(path, k))
                del x[k]

    def _meta_key(self, x: Obj, k: str, v: Any, path: str) -> bool:
        """Handle TypeMeta/ObjectMeta of an (embedded) resource; True if ``k`` is done."""
        if k in ("apiVersion", "kind"):
            return isinstance(v, str)
        if k == "metadata" and isinstance(v, dict):
            self.prune_object_meta(v, _join(path, "metadata"))
            return True
        return False

    def prune_object_meta(self, meta: Obj, path: str) -> None:
        for k in list(meta):
            if k not in OBJECT_META_FIELDS:
                self.pruned.append(_join(path, k))
                del meta[k]
        for key, known in (
            ("ownerReferences", _OWNER_REF_FIELDS),
            ("managedFields", _MANAGED_FIELDS_FIELDS),
        ):
            entries = meta.get(key)
            if not isinstance(entries, list):
                continue
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    continue
                for k in list(entry):
                    if k not in known:
                        self.pruned.append(f"{path}.{key}[{i}].{k}")
                        del entry[k]


# --------------------------------------------------------------------------- defaulting


def _is_non_nullable_null(v: Any, s: _Node | None) -> bool:
    return v is None and s is not None and not s.nullable


def _default(x: Any, s: _Node | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        for k, prop in s.properties.items():
            if prop.default is _MISSING:
                continue
            if k not in x or _is_non_nullable_null(x[k], prop):
                x[k] = deep_copy(prop.default)
        ap = s.additional_node
        for k, v in list(x.items()):
            sub = s.properties.get(k)
            if sub is not None:
                _default(v, sub)
            elif ap is not None:
                value = v
                if _is_non_nullable_null(v, ap) and ap.default is not _MISSING:
                    x[k] = value = deep_copy(ap.default)
                _default(value, ap)
    elif isinstance(x, list):
        item = s.items
        for i, v in enumerate(x):
            value = v
            if item is not None and _is_non_nullable_null(v, item) and item.default is not _MISSING:
                x[i] = value = deep_copy(item.default)
            _default(value, item)


def _prune_nulls(x: Any, s: _Node | None) -> None:
    """Drop nulls of non-nullable fields without default (PruneNonNullableNullsWithoutDefaults)."""
    if s is None:
        return
    if isinstance(x, dict):
        ap = s.additional_node
        for k in list(x):
            v = x[k]
            sub = s.properties.get(k)
            if sub is None:
                sub = ap
                if sub is None:
                    continue
            if v is None and not sub.nullable and sub.default is _MISSING:
                del x[k]
            else:
                _prune_nulls(v, sub)
    elif isinstance(x, list):
        for v in x:
            _prune_nulls(v, s.items)


# --------------------------------------------------------------------------- validation


class _Validator:
    """kube-openapi's SchemaValidator, error texts included; errors are appended to ``errs``."""

    def __init__(self) -> None:
        self.errs: list[FieldError] = []

    def _invalid(self, name: str, value: Any, detail: str) -> None:
        self.errs.append(FieldError.invalid(name.lstrip("."), value, detail))

    def _composite(self, detail: str) -> None:
        # non-Validation kube-openapi errors lose their path (fldPath is nil upstream)
        self.errs.append(FieldError.invalid("", "", detail))

    def validate(self, s: _Node, data: Any, name: str) -> None:
        if data is None:
            if s.types and not s.nullable:
                self.errs.append(
                    FieldError.type_invalid(
                        name.lstrip("."),
                        "null",
                        f'{name} in body must be of type {",".join(s.types)}: "null"',
                    )
                )
            if s.enum is not None and not s.nullable:
                self._enum_fail(s, data, name)
            return
        kind = _json_type(data)
        if s.types:
            self._check_type(s, data, kind, name)
        if s.all_of or s.any_of or s.one_of or s.not_ is not None:
            self._schema_props(s, data, name)
        if kind == "string":
            self._string(s, data, name)
        elif kind in ("integer", "number"):
            self._number(s, data, name)
        elif kind == "array":
            self._slice(s, data, name)
        if s.enum is not None and not any(json_equal(data, e) for e in s.enum):
            self._enum_fail(s, data, name)
        if kind == "object":
            self._object(s, data, name)

    def _check_type(self, s: _Node, data: Any, kind: str, name: str) -> None:
        if kind in s.types:
            return
        if kind == "number" and "integer" in s.types and float(data).is_integer():
            return
        if kind == "integer" and "number" in s.types:
            return
        self.errs.append(
            FieldError.type_invalid(
                name.lstrip("."),
                kind,
                f"{name} in body must be of type {','.join(s.types)}: {_go_quote(kind)}",
            )
        )

    def _enum_fail(self, s: _Node, data: Any, name: str) -> None:
        assert s.enum is not None
        supported = [
            e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in s.enum
        ]
        self.errs.append(FieldError.not_supported(name.lstrip("."), data, supported))

    def _string(self, s: _Node, data: str, name: str) -> None:
        if s.max_length is not None and len(data) > s.max_length:
            unit = "byte" if s.max_length == 1 else "bytes"
            self.errs.append(
                FieldError(
                    "FieldValueTooLong",
                    name.lstrip("."),
                    f"may not be more than {s.max_length} {unit}",
                )
            )
            return
        if s.min_length is not None and len(data) < s.min_length:
            self._invalid(
                name, data, f"{name} in body should be at least {s.min_length} chars long"
            )
            return
        if s.pattern is not None and s.pattern_re is not None and not s.pattern_re.search(data):
            self._invalid(name, data, f"{name} in body should match '{s.pattern}'")
            return
        if s.fmt_check is not None and not s.fmt_check(data):
            self.errs.append(
                FieldError.type_invalid(
                    name.lstrip("."),
                    data,
                    f"{name} in body must be of type {s.fmt}: {_go_quote(data)}",
                )
            )

    def _number(self, s: _Node, data: float, name: str) -> None:
        is_int = isinstance(data, int)
        if s.multiple_of is not None:
            factor = s.multiple_of
            if factor < 0:
                shown = go_value_text(int(factor) if is_int else float(factor))
                self._invalid(
                    name, factor, f"factor MultipleOf declared for {name} must be positive: {shown}"
                )
            elif factor != 0:
                if is_int and float(factor).is_integer():
                    ok = data % int(factor) == 0
                    shown = go_value_text(int(factor))
                else:
                    mult = (1 / factor) * data if factor < 1 else data / factor
                    ok = float(mult).is_integer()
                    shown = go_value_text(float(factor))
                if not ok:
                    self._invalid(name, data, f"{name} in body should be a multiple of {shown}")
        # kube-openapi compares integer data with the bound converted to int64 (truncated)
        if s.maximum is not None:
            mx = int(s.maximum) if is_int else float(s.maximum)
            if (not s.excl_max and data > mx) or (s.excl_max and data >= mx):
                op = "less than" if s.excl_max else "less than or equal to"
                self._invalid(name, data, f"{name} in body should be {op} {go_value_text(mx)}")
        if s.minimum is not None:
            mn = int(s.minimum) if is_int else float(s.minimum)
            if (not s.excl_min and data < mn) or (s.excl_min and data <= mn):
                op = "greater than" if s.excl_min else "greater than or equal to"
                self._invalid(name, data, f"{name} in body should be {op} {go_value_text(mn)}")

    def _slice(self, s: _Node, data: list[Any], name: str) -> None:
        if s.items is not None:
            for i, v in enumerate(data):
                self.validate(s.items, v, f"{name}[{i}]")
        size = len(data)
        if s.min_items is not None and size < s.min_items:
            self._invalid(name, size, f"{name} in body should have at least {s.min_items} items")
        if s.max_items is not None and size > s.max_items:
            self._too_many(name, size, s.max_items)
        if s.unique_items:
            seen: set[Any] = set()
            for v in data:
                h = _hashable(v)
                if h in seen:
                    self._invalid(name, "", f"{name} in body shouldn't contain duplicates")
                    break
                seen.add(h)

    def _too_many(self, name: str, actual: int, limit: int) -> None:
        unit = "item" if limit == 1 else "items"
        self.errs.append(
            FieldError(
                "FieldValueTooMany", name.lstrip("."), f"must have at most {limit} {unit}", actual
            )
        )

    def _object(self, s: _Node, data: Obj, name: str) -> None:
        n = len(data)
        if s.min_props is not None and n < s.min_props:
            self._invalid(name, n, f"{name} in body should have at least {s.min_props} properties")
            return
        if s.max_props is not None and n > s.max_props:
            self._too_many(name, n, s.max_props)
            return
        if s.additional is False:
            for k in data:
                if k not in s.properties:
                    self._invalid(name, k, f"{name}.{k} in body is a forbidden property")
        else:
            ap = s.additional_node
            if ap is not None:
                for k, v in data.items():
                    if k not in s.properties:
                        self.validate(ap, v, f"{name}.{k}")
        for k, prop in s.properties.items():
            if k in data:
                self.validate(prop, data[k], f"{name}.{k}" if name else k)
        for k in s.required:
            if k not in data:
                self.errs.append(FieldError.required(f"{name}.{k}".lstrip(".")))

    def _sub(self, s: _Node, data: Any, name: str) -> list[FieldError]:
        sub = _Validator()
        sub.validate(s, data, name)
        return sub.errs

    def _schema_props(self, s: _Node, data: Any, name: str) -> None:
        quoted = _go_quote(name)
        if s.any_of:
            best: list[FieldError] | None = None
            ok = False
            for alt in s.any_of:
                errs = self._sub(alt, data, name)
                if not errs:
                    ok = True
                    break
                if best is None or len(errs) < len(best):
                    best = errs
            if not ok:
                self._composite(f"{quoted} must validate at least one schema (anyOf)")
                self.errs.extend(best or [])
        if s.one_of:
            valid = 0
            best = None
            for alt in s.one_of:
                errs = self._sub(alt, data, name)
                if not errs:
                    valid += 1
                elif valid == 0 and (best is None or len(errs) < len(best)):
                    best = errs
            if valid != 1:
                extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                self._composite(f"{quoted} must validate one and only one schema (oneOf). {extra}")
                if valid == 0:
                    self.errs.extend(best or [])
        if s.all_of:
            valid = 0
            for alt in s.all_of:
                errs = self._sub(alt, data, name)
                if not errs:
                    valid += 1
                self.errs.extend(errs)
            if valid != len(s.all_of):
                extra = ". None validated" if valid == 0 else ""
                self._composite(f"{quoted} must validate all the schemas (allOf){extra}")
        if s.not_ is not None and not self._sub(s.not_, data, name):
            self._composite(f"{quoted} must not validate the schema (not)")


def _post_checks(x: Any, s: _Node | None, path: str, errs: list[FieldError]) -> None:
    """x-kubernetes-list-type set/map uniqueness and embedded TypeMeta (schema/listtype)."""
    if s is None:
        return
    if isinstance(x, dict):
        if s.embedded and path:
            _embedded_type_meta(x, path, errs)
        ap = s.additional_node
        for k, v in x.items():
            sub = s.properties.get(k, ap)
            if sub is not None:
                _post_checks(v, sub, _join(path, k), errs)
    elif isinstance(x, list):
        if s.list_type == "set":
            seen: set[Any] = set()
            for i, v in enumerate(x):
                h = _hashable(v)
                if h in seen:
                    errs.append(FieldError.duplicate(f"{path}[{i}]", v))
                seen.add(h)
        elif s.list_type == "map" and s.list_keys and s.items is not None:
            seen_keys: set[Any] = set()
            item = s.items
            for i, v in enumerate(x):
                if not isinstance(v, dict):
                    continue
                key_vals: Obj = {}
                for k in s.list_keys:
                    if k in v:
                        key_vals[k] = v[k]
                    else:
                        prop = item.properties.get(k)
                        key_vals[k] = (
                            prop.default
                            if prop is not None and prop.default is not _MISSING
                            else None
                        )
                h = _hashable(key_vals)
                if h in seen_keys:
                    errs.append(FieldError.duplicate(f"{path}[{i}]", key_vals))
                seen_keys.add(h)
        for i, v in enumerate(x):
            _post_checks(v, s.items, f"{path}[{i}]", errs)


def _embedded_type_meta(x: Obj, path: str, errs: list[FieldError]) -> None:
    for key in ("apiVersion", "kind"):
        if key not in x:
            errs.append(FieldError.required(f"{path}.{key}", "must not be empty"))
    for key in ("apiVersion", "kind"):
        value = x.get(key, _MISSING)
        detail = None if value is _MISSING else _type_meta_problem(key, value)
        if detail is not None:
            errs.append(FieldError.invalid(f"{path}.{key}", value, detail))


def _type_meta_problem(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if key == "apiVersion":
        return f"unexpected GroupVersion string: {value}" if value.count("/") > 1 else None
    if is_dns1035_label(value.lower()) and len(value) <= 63:
        return None
    return "may have mixed case, but should otherwise match: " + DNS1035_MSG


DNS1035_MSG = regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123")


# --------------------------------------------------------------------------- public


class StructuralSchema:
    """A CRD version's ``openAPIV3Schema``, compiled once and applied to many objects.

    The request pipeline calls :meth:`prune`, then :meth:`apply_defaults`, then
    :meth:`validate` (CRD-4/5/6); ``raw`` is the schema exactly as given.
    """

    def __init__(self, raw: Obj) -> None:
        self.raw = raw
        self._root = _Node(raw)
        self._cel: list[tuple[str, Obj]] = []
        self._collect(self._root, "")
        self._prune_defaults(self._root)

    def _collect(self, s: _Node, path: str) -> None:
        for rule in s.validations:
            self._cel.append((path, rule))
        for k, p in s.properties.items():
            self._collect(p, _join(path, k))
        ap = s.additional_node
        if ap is not None:
            self._collect(ap, f"{path}[*]")
        if s.items is not None:
            self._collect(s.items, f"{path}[*]")

    def _prune_defaults(self, s: _Node) -> None:
        """Default values are pruned by their own schema, so defaulting adds no unknowns."""
        if s.default is not _MISSING and isinstance(s.default, dict | list):
            s.default = deep_copy(s.default)
            _Pruner().prune(s.default, s, "", root=s.embedded)
        for p in s.properties.values():
            self._prune_defaults(p)
        ap = s.additional_node
        if ap is not None:
            self._prune_defaults(ap)
        if s.items is not None:
            self._prune_defaults(s.items)

    def prune(self, obj: Obj) -> list[str]:
        """Remove unknown fields in place (CRD-5); return their paths (``spec.foo``)."""
        pruner = _Pruner()
        pruner.prune(obj, self._root, "", root=True)
        return pruner.pruned

    def apply_defaults(self, obj: Obj) -> None:
        """Apply ``default`` values (CRD-6), then drop remaining nulls of non-nullable fields."""
        _default(obj, self._root)
        _prune_nulls(obj, self._root)

    def validate(self, obj: Obj, *, subtree: str | None = None) -> list[FieldError]:
        """All schema violations of ``obj`` (or of only ``obj[subtree]``), upstream wording."""
        node: _Node | None = self._root
        data: Any = obj
        name = ""
        if subtree:
            for part in subtree.split("."):
                if node is None or not isinstance(data, dict) or part not in data:
                    return []
                node = node.properties.get(part)
                data = data[part]
                name = _join(name, part)
            if node is None:
                return []
        assert node is not None
        v = _Validator()
        v.validate(node, data, name)
        _post_checks(data, node, name, v.errs)
        return v.errs

    def subschema(self, path: tuple[str, ...]) -> Obj | None:
        """The raw schema at a field path; ``*`` or an index steps into array items or maps."""
        node: _Node | None = self._root
        for part in path:
            if node is None:
                return None
            if node.items is not None and (part == "*" or part.isdigit()):
                node = node.items
            elif part in node.properties:
                node = node.properties[part]
            else:
                node = node.additional_node
        return node.raw if node is not None else None

    def cel_rules(self) -> list[tuple[str, Obj]]:
        """``x-kubernetes-validations`` rules by path (``spec``, ``spec.items[*]``); not run."""
        return list(self._cel)


def compile_schema(openapi_v3_schema: Obj) -> StructuralSchema:
    """Compile a CRD version's ``openAPIV3Schema`` (assumed already validated)."""
    return StructuralSchema(openapi_v3_schema)


def validate_value(raw: Obj, value: Any, name: str) -> list[FieldError]:
    """Validate a standalone value (e.g. a ``default``) against a raw schema node."""
    node = _Node(raw)
    v = _Validator()
    v.validate(node, value, name)
    return v.errs


def prune_value(raw: Obj, value: Any, *, embedded: bool = False) -> list[str]:
    """Prune a standalone value in place against a raw schema node; return pruned paths."""
    pruner = _Pruner()
    pruner.prune(value, _Node(raw), "", root=embedded)
    return pruner.pruned
