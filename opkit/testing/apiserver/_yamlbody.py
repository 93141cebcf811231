"""YAML request bodies read the way the apiserver reads them (sigs.k8s.io/yaml, go-yaml v2).

PyYAML's safe loader is YAML 1.1 with extras the apiserver does not have: it turns
unquoted timestamps into ``datetime`` objects (which then are not JSON), reads ``1:20`` as
the base-60 number 80 and ``=`` as an unconstructible "value" tag, and does not know
go-yaml's ``y``/``n`` booleans or ``1e3`` floats. Here the scalars resolve as go-yaml v2
resolves them, timestamps stay strings (go-yaml keeps them as text when decoding into
``interface{}``), and map keys become strings as sigs.k8s.io/yaml's JSON conversion makes them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

__all__ = ["YAMLBodyError", "load"]

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = re.compile(
    r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)\Z"
)
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
# strconv.ParseInt(s, 0, 64) after go-yaml drops every "_".
_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)\Z")
# go-yaml's yamlStyleFloat, plus its .inf/.nan spellings.
_FLOAT = re.compile(
    r"(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_NULL = re.compile(r"(?:~|null|Null|NULL|)\Z")

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_REPLACED = {_INT_TAG, _FLOAT_TAG, _BOOL_TAG, _NULL_TAG, "tag:yaml.org,2002:timestamp"}
_REPLACED.add("tag:yaml.org,2002:value")


class YAMLBodyError(ValueError):
    """The body is not YAML that converts to JSON."""


class _Loader(_BASE):  # type: ignore[valid-type,misc]
    """Safe loading with go-yaml v2's implicit scalar types."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[str, Any]:
        # Keys become strings right away: ``true`` and ``1`` are distinct keys in Go.
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(self.construct_object(key_node, deep=deep))
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL_TAG, _BOOL, list("yYnNtTfFoO"))
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(_NULL_TAG, _NULL, ["~", "n", "N", ""])


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """``strconv.ParseInt(s, 0, 64)``; what it refuses (``08``) go-yaml reads as a float."""
    text = str(loader.construct_scalar(node))
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    prefix = digits[:2].lower()
    try:
        if prefix in ("0x", "0o", "0b"):
            return sign * int(digits[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)
        return sign * int(digits)
    except ValueError:
        pass
    try:
        value = float(plain)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    lowered = text.lower()
    if lowered.endswith(".inf") or lowered == ".nan":
        raise YAMLBodyError(f"json: unsupported value: {text}")
    value = float(text)
    # JSON has no separate float type: 1e3 is 1000, as Go's json.Marshal writes it.
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return str(loader.construct_scalar(node)) in _TRUE


def _text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return str(loader.construct_scalar(node))


_Loader.add_constructor(_INT_TAG, _int)
_Loader.add_constructor(_FLOAT_TAG, _float)
_Loader.add_constructor(_BOOL_TAG, _bool)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return "NaN" if math.isnan(key) else repr(key)
    raise YAMLBodyError(f"unsupported map key of type: {type(key).__name__}, key: {key!r}")


def _jsonable(value: Any) -> Any:
    """sigs.k8s.io/yaml's ``convertToJSONableObject``: string keys, JSON values only."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_key(k): None for k in value}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        raise YAMLBodyError(f"json: unsupported value: {value}")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def load(raw: bytes) -> Any:
    """The JSON value of a YAML document; ``yaml.YAMLError`` or :class:`YAMLBodyError`."""
    return _jsonable(yaml.load(raw, Loader=_Loader))
