"""KEP-1623 status conditions over plain dicts (``metav1.Condition`` shape).

Each helper takes either a whole object (conditions live in ``obj["status"]["conditions"]``)
or the conditions list itself. Conditions are dicts with ``type``, ``status``
(``"True"|"False"|"Unknown"``), ``lastTransitionTime`` (RFC 3339, second precision, ``Z``),
``reason`` (CamelCase), ``message`` and optionally ``observedGeneration``.

:func:`set_condition` moves ``lastTransitionTime`` only when the status changes and reports
whether anything changed, so a reconciler can skip a status write in steady state.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, MutableSequence
from datetime import UTC, datetime
from typing import Any, Literal

from opkit._validation import DNS1123_SUBDOMAIN_FMT, QUALIFIED_NAME_FMT

__all__ = [
    "CONDITION_STATUSES",
    "ConditionStatus",
    "Conditions",
    "format_time",
    "get_condition",
    "get_conditions",
    "is_false",
    "is_status",
    "is_true",
    "is_unknown",
    "remove_condition",
    "set_condition",
    "validate_condition",
]

ConditionStatus = Literal["True", "False", "Unknown"]
CONDITION_STATUSES: tuple[str, ...] = ("True", "False", "Unknown")

Conditions = MutableSequence[dict[str, Any]]
Target = MutableMapping[str, Any] | MutableSequence[dict[str, Any]]

# Patterns and limits of metav1.Condition's OpenAPI validation.
_TYPE_RE = re.compile(f"({DNS1123_SUBDOMAIN_FMT}/)?({QUALIFIED_NAME_FMT})")
_TYPE_MAX = 316
_REASON_RE = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_REASON_MAX = 1024
_MESSAGE_MAX = 32768


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with second precision, as ``metav1.Time`` serialises."""
    if t.tzinfo is None:
        raise ValueError("condition times must be timezone-aware")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_conditions(target: Target) -> Conditions:
    """The conditions list of ``target`` (read-only view if the object has none)."""
    if isinstance(target, MutableSequence):
        return target
    status = target.get("status")
    if not isinstance(status, MutableMapping):
        return []
    conds = status.get("conditions")
    return conds if isinstance(conds, MutableSequence) else []


def _conditions_for_write(target: Target) -> Conditions:
    if isinstance(target, MutableSequence):
        return target
    status = target.get("status")
    if not isinstance(status, MutableMapping):
        status = target["status"] = {}
    conds = status.get("conditions")
    if not isinstance(conds, MutableSequence):
        conds = status["conditions"] = []
    return conds


def get_condition(target: Target, type: str) -> dict[str, Any] | None:
    """The condition of ``type``, or None."""
    for cond in get_conditions(target):
        if isinstance(cond, dict) and cond.get("type") == type:
            return cond
    return None


def is_status(target: Target, type: str, status: str) -> bool:
    cond = get_condition(target, type)
    return cond is not None and cond.get("status") == status


def is_true(target: Target, type: str) -> bool:
    return is_status(target, type, "True")


def is_false(target: Target, type: str) -> bool:
    return is_status(target, type, "False")


def is_unknown(target: Target, type: str) -> bool:
    """True when the condition is ``Unknown`` or absent (absent means "not known yet")."""
    cond = get_condition(target, type)
    return cond is None or cond.get("status") == "Unknown"


def _status_text(status: str | bool) -> str:
    if isinstance(status, bool):
        return "True" if status else "False"
    if status not in CONDITION_STATUSES:
        raise ValueError(f"condition status must be one of True, False, Unknown, not {status!r}")
    return status


def validate_condition(cond: MutableMapping[str, Any]) -> list[str]:
    """Problems the API server's ``metav1.Condition`` validation would report (empty if fine)."""
    errs: list[str] = []
    ctype = cond.get("type")
    if not isinstance(ctype, str) or not ctype:
        errs.append("type: Required value")
    elif len(ctype) > _TYPE_MAX or not _TYPE_RE.fullmatch(ctype):
        errs.append(
            f"type: Invalid value: {ctype!r}: must be a qualified name of at most 316 chars"
        )
    if cond.get("status") not in CONDITION_STATUSES:
        errs.append(f"status: Unsupported value: {cond.get('status')!r}")
    reason = cond.get("reason")
    if not isinstance(reason, str) or not reason:
        errs.append("reason: Required value")
    elif len(reason) > _REASON_MAX or not _REASON_RE.fullmatch(reason):
        errs.append(
            f"reason: Invalid value: {reason!r}: must be CamelCase: start with a letter and "
            "contain only letters, digits, '_', ',' and ':'"
        )
    message = cond.get("message", "")
    if not isinstance(message, str) or len(message) > _MESSAGE_MAX:
        errs.append("message: must be a string of at most 32768 characters")
    gen = cond.get("observedGeneration")
    if gen is not None and (not isinstance(gen, int) or isinstance(gen, bool) or gen < 0):
        errs.append(f"observedGeneration: Invalid value: {gen!r}: must be a non-negative integer")
    if not isinstance(cond.get("lastTransitionTime"), str):
        errs.append("lastTransitionTime: Required value")
    return errs


def set_condition(
    target: Target,
    type: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Add or update the condition ``type``; returns True if anything changed.

    ``lastTransitionTime`` is set to ``now`` only when the condition is new or its status
    changes. ``observed_generation=None`` leaves the field out (and removes a stale one).
    Raises ValueError for values the API server would reject (e.g. a reason not in CamelCase).
    """
    new: dict[str, Any] = {
        "type": type,
        "status": _status_text(status),
        "lastTransitionTime": format_time(now or datetime.now(UTC)),
        "reason": reason,
        "message": message,
    }
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    errs = validate_condition(new)
    if errs:
        raise ValueError("invalid condition: " + "; ".join(errs))

    conds = _conditions_for_write(target)
    existing = get_condition(conds, type)
    if existing is None:
        conds.append(new)
        return True
    changed = False
    if existing.get("status") != new["status"]:
        existing["status"] = new["status"]
        existing["lastTransitionTime"] = new["lastTransitionTime"]
        changed = True
    elif not isinstance(existing.get("lastTransitionTime"), str):
        existing["lastTransitionTime"] = new["lastTransitionTime"]
        changed = True
    for key in ("reason", "message"):
        if existing.get(key) != new[key]:
            existing[key] = new[key]
            changed = True
    if observed_generation is None:
        if "observedGeneration" in existing:
            del existing["observedGeneration"]
            changed = True
    elif existing.get("observedGeneration") != observed_generation:
        existing["observedGeneration"] = observed_generation
        changed = True
    return changed


def remove_condition(target: Target, type: str) -> bool:
    """Remove the condition ``type``; returns True if it was present."""
    conds = get_conditions(target)
    for i, cond in enumerate(conds):
        if isinstance(cond, dict) and cond.get("type") == type:
            del conds[i]
            return True
    return False
