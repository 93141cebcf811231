"""Field selectors (SEL-2) for the embedded API server.

Parsing follows ``fields.ParseSelector`` (comma-joined ``=``/``==``/``!=`` terms, values
escaped with ``\\,`` ``\\=`` ``\\\\``). Which fields a kind accepts, and the error for the
others, follow the apiserver's per-kind field-label conversion functions: kinds without
one get ``DefaultMetaV1FieldSelectorConversion`` and its message
``"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"``;
kinds with one (Pod, Node, Event, Secret, ...) and custom resources say
``field label not supported: foo.bar``. Field values are compared as the strings the
server's ``GetAttrs`` would produce (booleans ``true``/``false``, integers in decimal,
missing fields as their Go zero value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opkit.labels import SelectorError, go_quote

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "escape_value",
    "parse_field_selector",
    "supported_fields",
]

Getter = Callable[[Mapping[str, Any]], str]


class FieldRequirement(NamedTuple):
    """One term; ``op`` is ``"="`` (``==`` is normalised to it) or ``"!="``."""

    field: str
    op: str
    value: str


# --- reading fields out of plain-dict objects -------------------------------------------


def _walk(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _render(value: Any, zero: str) -> str:
    if value is None:
        return zero
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _at(*paths: str, zero: str = "") -> Getter:
    """Getter for the first of ``paths`` (dotted) that is set, else ``zero``."""
    split = tuple(tuple(p.split(".")) for p in paths)

    def get(obj: Mapping[str, Any]) -> str:
        for path in split:
            value = _walk(obj, path)
            if value is not None and value != "":
                return _render(value, zero)
        return zero

    return get


def _pod_ip(obj: Mapping[str, Any]) -> str:
    ips = _walk(obj, ("status", "podIPs"))
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
        ip = ips[0].get("ip")
        if isinstance(ip, str):
            return ip
    return _render(_walk(obj, ("status", "podIP")), "")


def _always_empty(obj: Mapping[str, Any]) -> str:
    return ""


_NAME = _at("metadata.name")
_NAMESPACE = _at("metadata.namespace")
_META: dict[str, Getter] = {"metadata.name": _NAME, "metadata.namespace": _NAMESPACE}


def _default_error(label: str) -> str:
    return (
        f'{go_quote(label)} is not a known field selector: only "metadata.name", '
        '"metadata.namespace"'
    )


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


@dataclass(frozen=True)
class _KindFields:
    getters: Mapping[str, Getter]
    error: Callable[[str], str]
    aliases: Mapping[str, str] = field(default_factory=dict)


_DEFAULT = _KindFields(_META, _default_error)

# Objects of either Event shape may reach us (core storage vs. the events.k8s.io view),
# so each Event getter reads the core field first and the events.k8s.io one second.
_EVENT_OBJECT_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")
_EVENT_REPORTING = _at("reportingComponent", "reportingController")
_EVENT_SOURCE = _at(
    "source.component", "deprecatedSource.component", "reportingComponent", "reportingController"
)


def _event_object_getters(prefix: str) -> dict[str, Getter]:
    return {
        f"{prefix}.{f}": _at(f"involvedObject.{f}", f"regarding.{f}")
        for f in (*_EVENT_OBJECT_FIELDS, "fieldPath")
    }


_KINDS: dict[tuple[str, str], _KindFields] = {
    ("", "Pod"): _KindFields(
        {
            **_META,
            "spec.nodeName": _at("spec.nodeName"),
            "spec.restartPolicy": _at("spec.restartPolicy"),
            "spec.schedulerName": _at("spec.schedulerName"),
            "spec.serviceAccountName": _at("spec.serviceAccountName", "spec.serviceAccount"),
            "spec.hostNetwork": _at("spec.hostNetwork", zero="false"),
            "status.phase": _at("status.phase"),
            "status.podIP": _pod_ip,
            # Accepted by upstream's conversion but absent from the pod's field set.
            "status.podIPs": _always_empty,
            "status.nominatedNodeName": _at("status.nominatedNodeName"),
        },
        _not_supported,
        {"spec.host": "spec.nodeName"},
    ),
    # Cluster-scoped core kinds with their own conversion accept no metadata.namespace.
    ("", "Node"): _KindFields(
        {"metadata.name": _NAME, "spec.unschedulable": _at("spec.unschedulable", zero="false")},
        _not_supported,
    ),
    ("", "Namespace"): _KindFields(
        {"metadata.name": _NAME, "status.phase": _at("status.phase")}, _not_supported
    ),
    ("", "ReplicationController"): _KindFields(
        {**_META, "status.replicas": _at("status.replicas", zero="0")}, _not_supported
    ),
    ("", "Secret"): _KindFields({**_META, "type": _at("type")}, _not_supported),
    ("", "Service"): _KindFields(
        {**_META, "spec.clusterIP": _at("spec.clusterIP"), "spec.type": _at("spec.type")},
        _not_supported,
    ),
    ("", "Event"): _KindFields(
        {
            **_META,
            **_event_object_getters("involvedObject"),
            "reason": _at("reason"),
            "reportingComponent": _EVENT_REPORTING,
            "source": _EVENT_SOURCE,
            "type": _at("type"),
        },
        _not_supported,
    ),
    ("events.k8s.io", "Event"): _KindFields(
        {
            **_META,
            **_event_object_getters("regarding"),
            "reason": _at("reason"),
            "reportingController": _EVENT_REPORTING,
            "type": _at("type"),
        },
        _not_supported,
    ),
    ("batch", "Job"): _KindFields(
        {**_META, "status.successful": _at("status.succeeded", zero="0")},
        lambda label: f"field label {go_quote(label)} not supported for batchv1.Job",
    ),
}


def _custom_fields(namespaced: bool, selectable: Iterable[str]) -> _KindFields:
    getters: dict[str, Getter] = {"metadata.name": _NAME}
    if namespaced:
        getters["metadata.namespace"] = _NAMESPACE
    for path in selectable:
        label = path.lstrip(".")
        getters[label] = _at(label)
    return _KindFields(getters, _not_supported)


def _kind_fields(
    group: str, kind: str, custom: bool, namespaced: bool, selectable: Iterable[str]
) -> _KindFields:
    if custom:
        return _custom_fields(namespaced, selectable)
    return _KINDS.get((group, kind), _DEFAULT)


def supported_fields(
    *,
    group: str,
    kind: str,
    custom: bool = False,
    namespaced: bool = True,
    selectable_fields: Iterable[str] = (),
) -> list[str]:
    """The field labels a kind accepts (sorted), for docs, discovery and tests."""
    return sorted(_kind_fields(group, kind, custom, namespaced, selectable_fields).getters)


# --- parsing ---------------------------------------------------------------------------


def escape_value(value: str) -> str:
    """``fields.EscapeValue``: make a value safe to embed in a selector term."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_value(s: str) -> str:
    if "\\" not in s and "," not in s and "=" not in s:
        return s
    out: list[str] = []
    in_slash = False
    for ch in s:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go prints the rune with %v, i.e. as its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas that are not backslash-escaped (the backslash stays in the term)."""
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(s):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


_TERM_OPERATORS = ("!=", "==", "=")


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the first operator; the field part cannot be escaped."""
    for i in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True)
class FieldSelector:
    """A parsed, kind-checked field selector (an AND of its requirements)."""

    requirements: tuple[FieldRequirement, ...] = ()
    _getters: tuple[Getter, ...] = field(default=(), compare=False, repr=False)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for req, get in zip(self.requirements, self._getters, strict=True):
            if (get(obj) == req.value) != (req.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field_label: str) -> str | None:
        """The value ``field_label`` must equal, when some ``=`` term pins it."""
        for req in self.requirements:
            if req.field == field_label and req.op == "=":
                return req.value
        return None

    def exact_name(self) -> str | None:
        """``metadata.name`` pinned by the selector: a store can fetch one key instead."""
        return self.requires_exact_match("metadata.name")

    def exact_namespace(self) -> str | None:
        return self.requires_exact_match("metadata.namespace")

    def __str__(self) -> str:
        return ",".join(f"{r.field}{r.op}{escape_value(r.value)}" for r in self.requirements)


def parse_field_selector(
    s: str,
    *,
    group: str,
    kind: str,
    custom: bool = False,
    namespaced: bool = True,
    selectable_fields: Iterable[str] = (),
) -> FieldSelector:
    """Parse ``s`` for objects of ``group``/``kind``; raises SelectorError (a 400 text).

    ``custom`` marks a custom resource: it accepts ``metadata.name``, ``metadata.namespace``
    when ``namespaced``, and the CRD version's ``selectableFields`` JSON paths
    (``.spec.color`` becomes the label ``spec.color``).
    """
    if not s:
        return FieldSelector()
    terms = sorted(_split_terms(s))
    parsed: list[tuple[str, str, str]] = []
    for term in terms:
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{term}'")
        lhs, op, rhs = split
        parsed.append((lhs, "!=" if op == "!=" else "=", _unescape_value(rhs)))
    if not parsed:
        return FieldSelector()
    kf = _kind_fields(group, kind, custom, namespaced, selectable_fields)
    reqs: list[FieldRequirement] = []
    getters: list[Getter] = []
    for lhs, op, value in parsed:
        label = kf.aliases.get(lhs, lhs)
        getter = kf.getters.get(label)
        if getter is None:
            raise SelectorError(kf.error(lhs))
        reqs.append(FieldRequirement(label, op, value))
        getters.append(getter)
    return FieldSelector(tuple(reqs), tuple(getters))
