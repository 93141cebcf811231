"""Schemas for the embedded API server: CRD checks, CR structural schemas, unknown fields.

The pieces live in ``_schema_crd`` (CRD validation/defaulting), ``_schema_structural``
(pruning, defaulting and validation of custom resources) and ``_schema_builtin`` (unknown
fields of built-in kinds); this module is the one the registry and request pipeline import.
"""

from __future__ import annotations

import re
from typing import Any

from ._schema_builtin import builtin_unknown_fields
from ._schema_crd import default_crd, stored_versions, validate_crd
from ._schema_structural import StructuralSchema, compile_schema

__all__ = [
    "StructuralSchema",
    "builtin_unknown_fields",
    "compile_schema",
    "default_crd",
    "drop_paths",
    "stored_versions",
    "validate_crd",
]

_TOKEN_RE = re.compile(r"\[(\d+)\]|([^.\[]+)")


def _tokens(path: str) -> list[str | int]:
    return [int(m[1]) if m[1] is not None else m[2] for m in _TOKEN_RE.finditer(path)]


def _drop(node: Any, tokens: list[str | int], i: int) -> None:
    tok = tokens[i]
    last = i == len(tokens) - 1
    if isinstance(tok, int):
        if isinstance(node, list) and 0 <= tok < len(node) and not last:
            _drop(node[tok], tokens, i + 1)
        return
    if not isinstance(node, dict):
        return
    # A key may itself contain dots ("spec.my.key"), so try ever longer joins.
    key = tok
    j = i
    while True:
        if key in node:
            if j == len(tokens) - 1:
                del node[key]
            else:
                _drop(node[key], tokens, j + 1)
            return
        j += 1
        if j >= len(tokens) or not isinstance(tokens[j], str):
            return
        key = f"{key}.{tokens[j]}"


def drop_paths(obj: dict[str, Any], paths: list[str]) -> None:
    """Delete the fields at ``paths`` (``spec.foo``, ``spec.items[0].bar``) from ``obj``.

    Missing paths are ignored, so the result of :func:`builtin_unknown_fields` can be fed
    straight back in for ``fieldValidation=Ignore|Warn``.
    """
    for path in paths:
        tokens = _tokens(path)
        if tokens:
            _drop(obj, tokens, 0)
