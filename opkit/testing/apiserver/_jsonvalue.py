"""Plain JSON values (dict, list, str, int, float, bool, None): copying and comparing."""

from __future__ import annotations

from typing import Any

__all__ = ["deep_copy", "json_equal"]


def deep_copy(value: Any) -> Any:
    """Copy a JSON value; much faster than copy.deepcopy for plain dicts and lists."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``; object key order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        return all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    if isinstance(b, dict | list | int | float):
        return False
    return bool(a == b)
