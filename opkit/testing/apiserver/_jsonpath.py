"""The subset of kubectl/client-go JSONPath that CRD printer columns use.

Supported: ``.field`` (``\\.`` escapes a dot), ``['field']``, ``[n]`` (negative counts from
the end), ``[a,b]``, ``[start:end:step]``, ``[*]`` / ``.*``, ``..field`` and filters
``[?(@.type=="Ready")]`` with ``== != < <= > >=`` or a bare existence test. Missing keys
yield no result instead of an error, as with ``AllowMissingKeys(true)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__ = ["JSONPath", "JSONPathError", "compile_path", "find", "format_value", "go_float"]


class JSONPathError(ValueError):
    """The expression is outside the supported subset or malformed."""


@dataclass(frozen=True)
class _Field:
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Indices:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None
    step: int | None


@dataclass(frozen=True)
class _Recursive:
    name: str | None  # None: every descendant


@dataclass(frozen=True)
class _Filter:
    left: tuple[Any, ...]
    op: str | None
    right_path: tuple[Any, ...] | None
    right_value: Any


_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")


def _read_name(expr: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and i + 1 < len(expr):
            out.append(expr[i + 1])
            i += 2
            continue
        if ch in ".[":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip(), i


def _matching_bracket(expr: str, i: int) -> int:
    depth = 0
    quote = ""
    escaped = False
    for j in range(i, len(expr)):
        ch = expr[j]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unclosed bracket in {expr!r}")


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    quote = ""
    start = 0
    for j, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == sep:
            parts.append(text[start:j])
            start = j + 1
    parts.append(text[start:])
    return parts


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_filter(body: str) -> _Filter:
    body = body.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise JSONPathError(f"bad filter {body!r}")
    inner = body[1:-1].strip()
    quote = ""
    for j, ch in enumerate(inner):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
            continue
        for op in _OPERATORS:
            if inner.startswith(op, j):
                left, right = inner[:j].strip(), inner[j + len(op) :].strip()
                return _Filter(
                    _parse_relative(left),
                    op,
                    _parse_relative(right) if right.startswith("@") else None,
                    None if right.startswith("@") else _literal(right),
                )
    return _Filter(_parse_relative(inner), None, None, None)


def _parse_relative(text: str) -> tuple[Any, ...]:
    if not text.startswith("@"):
        raise JSONPathError(f"filter operand must start with '@': {text!r}")
    return _parse_segments(text[1:])


def _parse_bracket(body: str) -> Any:
    body = body.strip()
    if body == "*":
        return _Wildcard()
    if body.startswith("?"):
        return _parse_filter(body[1:])
    if body[:1] in "'\"":
        names = tuple(_literal(p) for p in _split_outside_quotes(body, ","))
        return _Field(tuple(str(n) for n in names))
    if ":" in body:
        parts = body.split(":")
        if len(parts) > 3:
            raise JSONPathError(f"bad slice [{body}]")
        nums = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
        return _Slice(nums[0], nums[1], nums[2])
    try:
        return _Indices(tuple(int(p) for p in body.split(",")))
    except ValueError as exc:
        raise JSONPathError(f"bad index [{body}]") from exc


def _parse_segments(expr: str) -> tuple[Any, ...]:
    segments: list[Any] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == ".":
            if expr.startswith("..", i):
                name, i = _read_name(expr, i + 2)
                segments.append(_Recursive(None if name in ("", "*") else name))
                continue
            name, i = _read_name(expr, i + 1)
            if name == "*":
                segments.append(_Wildcard())
            elif name:
                segments.append(_Field((name,)))
            continue
        if ch == "[":
            end = _matching_bracket(expr, i)
            segments.append(_parse_bracket(expr[i + 1 : end]))
            i = end + 1
            continue
        if ch.isspace():
            i += 1
            continue
        # A bare leading name ("spec.replicas") is accepted like ".spec.replicas".
        name, i = _read_name(expr, i)
        if not name:
            raise JSONPathError(f"unexpected {ch!r} in {expr!r}")
        segments.append(_Field((name,)))
    return tuple(segments)


class JSONPath:
    """A compiled expression; :meth:`find` returns every match (possibly none)."""

    def __init__(self, expr: str) -> None:
        text = expr.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].strip()
        if text.startswith("$"):
            text = text[1:]
        self.expr = expr
        self.segments = _parse_segments(text)

    def find(self, obj: Any) -> list[Any]:
        return _evaluate(self.segments, [obj])


@lru_cache(maxsize=512)
def compile_path(expr: str) -> JSONPath:
    return JSONPath(expr)


def find(obj: Any, expr: str) -> list[Any]:
    return compile_path(expr).find(obj)


def _descendants(value: Any) -> list[Any]:
    out: list[Any] = []
    children = (
        list(value.values())
        if isinstance(value, dict)
        else value
        if isinstance(value, list)
        else []
    )
    for child in children:
        out.append(child)
        out.extend(_descendants(child))
    return out


def _compare(left: Any, op: str, right: Any) -> bool:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if op == "==":
        return bool(left == right) if numeric or type(left) is type(right) else False
    if op == "!=":
        return not (bool(left == right) if numeric or type(left) is type(right) else False)
    if not (numeric or (isinstance(left, str) and isinstance(right, str))):
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _apply(segment: Any, value: Any) -> list[Any]:
    if isinstance(segment, _Field):
        if not isinstance(value, dict):
            return []
        return [value[n] for n in segment.names if n in value]
    if isinstance(segment, _Wildcard):
        if isinstance(value, dict):
            return list(value.values())
        return list(value) if isinstance(value, list) else []
    if isinstance(segment, _Indices):
        if not isinstance(value, list):
            return []
        out = []
        for idx in segment.indices:
            if -len(value) <= idx < len(value):
                out.append(value[idx])
        return out
    if isinstance(segment, _Slice):
        if not isinstance(value, list):
            return []
        return value[segment.start : segment.end : segment.step]
    if isinstance(segment, _Recursive):
        found = [value, *_descendants(value)]
        if segment.name is None:
            return found[1:]
        return [v[segment.name] for v in found if isinstance(v, dict) and segment.name in v]
    if isinstance(segment, _Filter):
        if not isinstance(value, list):
            return []
        matched = []
        for item in value:
            lefts = _evaluate(segment.left, [item])
            if segment.op is None:
                if lefts:
                    matched.append(item)
                continue
            if segment.right_path is not None:
                rights = _evaluate(segment.right_path, [item])
            else:
                rights = [segment.right_value]
            if lefts and rights and _compare(lefts[0], segment.op, rights[0]):
                matched.append(item)
        return matched
    raise JSONPathError(f"unsupported segment {segment!r}")


def _evaluate(segments: tuple[Any, ...], values: list[Any]) -> list[Any]:
    for segment in segments:
        nxt: list[Any] = []
        for value in values:
            nxt.extend(_apply(segment, value))
        values = nxt
        if not values:
            break
    return values


def go_float(value: float) -> str:
    """Go's ``%v`` for float64: shortest digits, exponent form outside [1e-4, 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    point = len(text) + int(exp)
    sci = point - 1
    prefix = "-" if sign else ""
    if sci < -4 or sci >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mant}e{'-' if sci < 0 else '+'}{abs(sci):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


def format_value(value: Any) -> str | None:
    """Render one JSONPath result as kubectl prints it; ``None`` for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
