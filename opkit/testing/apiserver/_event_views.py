"""The two views of an Event (EVT-1): core/v1 and events.k8s.io/v1 share one storage bucket."""

from __future__ import annotations

import copy
from typing import Any

from ._builtin_common import as_dict, format_micro_time, parse_time

__all__ = ["default_core_event", "event_core_to_v1", "event_v1_to_core"]

Obj = dict[str, Any]


def default_core_event(obj: Obj) -> None:
    """The fields a stored core/v1 Event always has (null or empty when unset)."""
    obj.setdefault("involvedObject", {})
    obj.setdefault("source", {})
    obj.setdefault("firstTimestamp", None)
    obj.setdefault("lastTimestamp", None)
    obj.setdefault("eventTime", None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_TO_V1 = {v: k for k, v in _V1_TO_CORE.items()}
_SHARED_EVENT_FIELDS = (
    "eventTime",
    "series",
    "action",
    "reason",
    "related",
    "reportingInstance",
    "type",
)


def event_core_to_v1(obj: Obj) -> Obj:
    """core/v1 Event -> events.k8s.io/v1 Event (a new dict; ``obj`` is not changed).

    ``eventTime`` is required by events.k8s.io/v1 clients; legacy events without one show
    their first/last timestamp (or creation time) there instead.
    """
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    if "metadata" in obj:
        out["metadata"] = copy.deepcopy(obj["metadata"])
    for core_key, v1_key in _CORE_TO_V1.items():
        value = obj.get(core_key)
        if value in (None, "", 0) and core_key != "involvedObject":
            continue
        if core_key == "source" and not value:
            continue
        out[v1_key] = copy.deepcopy(value) if value is not None else {}
    for key in _SHARED_EVENT_FIELDS:
        value = obj.get(key)
        if value not in (None, ""):
            out[key] = copy.deepcopy(value)
    if not out.get("eventTime"):
        fallback = (
            obj.get("firstTimestamp")
            or obj.get("lastTimestamp")
            or as_dict(obj.get("metadata")).get("creationTimestamp")
        )
        parsed = parse_time(fallback) if isinstance(fallback, str) else None
        out["eventTime"] = format_micro_time(parsed) if parsed else None
    return out


def event_v1_to_core(obj: Obj) -> Obj:
    """events.k8s.io/v1 Event -> core/v1 Event in the shape the core API serializes."""
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    if "metadata" in obj:
        out["metadata"] = copy.deepcopy(obj["metadata"])
    for v1_key, core_key in _V1_TO_CORE.items():
        if v1_key in obj and obj[v1_key] is not None:
            out[core_key] = copy.deepcopy(obj[v1_key])
    for key in _SHARED_EVENT_FIELDS:
        if key in obj and obj[key] is not None:
            out[key] = copy.deepcopy(obj[key])
    default_core_event(out)
    return out
