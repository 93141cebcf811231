"""Tolerant field access, timestamps and label selectors shared by the built-in kinds' logic.

Objects reach the server in any shape clients send, so the accessors never raise on a wrong
type: they answer as if the field were absent and leave rejecting it to validation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "as_dict",
    "as_int",
    "as_list",
    "dicts_in",
    "format_micro_time",
    "format_time",
    "label_selector_string",
    "parse_time",
    "scale_selector",
    "selector_matches",
]

Obj = dict[str, Any]


def as_dict(value: Any) -> Obj:
    """``value`` if it is a dict, else an empty dict (tolerate malformed input)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts_in(value: Any) -> list[Obj]:
    return [v for v in as_list(value) if isinstance(v, dict)]


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# ---------------------------------------------------------------------------------------
# Timestamps (META-7)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?\Z"
)


def parse_time(text: str) -> datetime | None:
    """Parse RFC 3339 with any offset; naive times are taken as UTC. None if unparsable."""
    m = _RFC3339.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    micros = int((frac + "000000")[:6]) if frac else 0
    try:
        dt = datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError:
        return None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        dt = dt - offset if m.group(9) == "+" else dt + offset
    return dt


def format_time(dt: datetime) -> str:
    """metav1.Time wire form: whole seconds, ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(dt: datetime) -> str:
    """metav1.MicroTime wire form: six decimals, ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------
# Label selectors


def _requirement_strings(sel: Obj) -> list[tuple[str, str]]:
    reqs: list[tuple[str, str]] = []
    for key, value in sorted(as_dict(sel.get("matchLabels")).items()):
        reqs.append((str(key), f"{key}={value}"))
    for expr in dicts_in(sel.get("matchExpressions")):
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = sorted(str(v) for v in as_list(expr.get("values")))
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    return reqs


def label_selector_string(sel: Any) -> str:
    """metav1.LabelSelector as the selector string ``LabelSelectorAsSelector`` prints."""
    if not isinstance(sel, dict):
        return ""
    reqs = _requirement_strings(sel)
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def selector_matches(sel: Obj, labels: Obj) -> bool:
    for key, value in as_dict(sel.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in dicts_in(sel.get("matchExpressions")):
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in as_list(expr.get("values"))]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def scale_selector(obj: Obj, path: str | None) -> str:
    """``status.selector`` of a Scale: the string at ``path`` or a rendered LabelSelector."""
    if not path:
        return ""
    node: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return label_selector_string(node)
    return ""
