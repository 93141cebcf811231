"""Tests for opkit.conditions (KEP-1623 helpers over plain dicts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.models import V1Condition

from opkit.conditions import (
    format_time,
    get_condition,
    get_conditions,
    is_false,
    is_status,
    is_true,
    is_unknown,
    remove_condition,
    set_condition,
    validate_condition,
)

T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def obj() -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"generation": 3}}


def test_set_creates_status_and_condition() -> None:
    o = obj()
    assert set_condition(o, "Ready", "False", "Waiting", "pods starting", now=T0) is True
    assert o["status"]["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": "2030-01-02T03:04:05Z",
            "reason": "Waiting",
            "message": "pods starting",
        }
    ]


def test_condition_is_accepted_by_the_kubernetes_model() -> None:
    o = obj()
    set_condition(o, "Ready", "True", "AllGood", "ok", observed_generation=3, now=T0)
    model = V1Condition.from_dict(o["status"]["conditions"][0])
    assert model is not None
    assert model.type == "Ready"
    assert model.status == "True"
    assert model.observed_generation == 3
    assert model.last_transition_time == T0.replace(microsecond=0)


def test_same_condition_again_changes_nothing() -> None:
    o = obj()
    set_condition(o, "Ready", "True", "AllGood", "ok", observed_generation=3, now=T0)
    before = [dict(c) for c in o["status"]["conditions"]]
    assert (
        set_condition(o, "Ready", "True", "AllGood", "ok", observed_generation=3, now=T1) is False
    )
    assert o["status"]["conditions"] == before


def test_status_change_moves_transition_time() -> None:
    o = obj()
    set_condition(o, "Ready", "False", "Waiting", now=T0)
    assert set_condition(o, "Ready", "True", "AllGood", now=T1) is True
    cond = get_condition(o, "Ready")
    assert cond is not None
    assert cond["status"] == "True"
    assert cond["lastTransitionTime"] == format_time(T1)


def test_reason_or_message_change_keeps_transition_time() -> None:
    o = obj()
    set_condition(o, "Ready", "False", "Waiting", "1 of 3", now=T0)
    assert set_condition(o, "Ready", "False", "Waiting", "2 of 3", now=T1) is True
    assert set_condition(o, "Ready", "False", "StillWaiting", "2 of 3", now=T1) is True
    cond = get_condition(o, "Ready")
    assert cond is not None
    assert cond["message"] == "2 of 3"
    assert cond["reason"] == "StillWaiting"
    assert cond["lastTransitionTime"] == format_time(T0)


def test_observed_generation_updates_and_removal() -> None:
    o = obj()
    set_condition(o, "Ready", "True", "AllGood", observed_generation=1, now=T0)
    assert set_condition(o, "Ready", "True", "AllGood", observed_generation=2, now=T0) is True
    assert o["status"]["conditions"][0]["observedGeneration"] == 2
    assert set_condition(o, "Ready", "True", "AllGood", now=T0) is True
    assert "observedGeneration" not in o["status"]["conditions"][0]


def test_bool_status_and_default_now() -> None:
    o = obj()
    set_condition(o, "Ready", True, "AllGood")
    set_condition(o, "Degraded", False, "AsExpected")
    assert is_true(o, "Ready")
    assert is_false(o, "Degraded")
    stamp = o["status"]["conditions"][0]["lastTransitionTime"]
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").year >= 2024


def test_several_conditions_keep_order_and_are_independent() -> None:
    o = obj()
    set_condition(o, "Available", "True", "MinimumReplicasAvailable", now=T0)
    set_condition(o, "Progressing", "True", "NewReplicaSetAvailable", now=T0)
    set_condition(o, "Available", "False", "MinimumReplicasUnavailable", now=T1)
    assert [c["type"] for c in get_conditions(o)] == ["Available", "Progressing"]
    assert is_false(o, "Available")
    assert is_true(o, "Progressing")
    progressing = get_condition(o, "Progressing")
    assert progressing is not None
    assert progressing["lastTransitionTime"] == format_time(T0)


def test_works_on_a_bare_conditions_list() -> None:
    conds: list[dict[str, Any]] = []
    assert set_condition(conds, "Ready", "Unknown", "Initializing", now=T0)
    assert is_unknown(conds, "Ready")
    assert is_status(conds, "Ready", "Unknown")
    assert not is_true(conds, "Ready")
    assert remove_condition(conds, "Ready") is True
    assert conds == []


def test_queries_on_objects_without_conditions() -> None:
    for o in (obj(), {"status": None}, {"status": {"conditions": None}}):
        assert get_condition(o, "Ready") is None
        assert not is_true(o, "Ready")
        assert not is_false(o, "Ready")
        assert is_unknown(o, "Ready")
        assert remove_condition(o, "Ready") is False


def test_set_replaces_malformed_status() -> None:
    o: dict[str, Any] = {"status": None}
    assert set_condition(o, "Ready", "True", "AllGood", now=T0)
    assert is_true(o, "Ready")


def test_remove_condition() -> None:
    o = obj()
    set_condition(o, "A", "True", "Yes", now=T0)
    set_condition(o, "B", "True", "Yes", now=T0)
    assert remove_condition(o, "A") is True
    assert remove_condition(o, "A") is False
    assert [c["type"] for c in get_conditions(o)] == ["B"]


@pytest.mark.parametrize(
    "reason", ["", "Not Ready", "1Bad", "Bad-Reason", "Trailing,", "x" * 1025, "Uni\u00e7ode"]
)
def test_invalid_reason_is_rejected(reason: str) -> None:
    o = obj()
    with pytest.raises(ValueError, match="reason"):
        set_condition(o, "Ready", "True", reason, now=T0)
    assert "status" not in o  # nothing written on error


@pytest.mark.parametrize("reason", ["A", "AllGood", "Reason_With_Underscore", "a:b,c_1", "ready"])
def test_valid_reasons(reason: str) -> None:
    assert set_condition([], "Ready", "True", reason, now=T0)


@pytest.mark.parametrize("ctype", ["", "has space", "-lead", "trail-", "a/b/c", "x" * 317])
def test_invalid_type_is_rejected(ctype: str) -> None:
    with pytest.raises(ValueError, match="type"):
        set_condition([], ctype, "True", "Ok", now=T0)


@pytest.mark.parametrize("ctype", ["Ready", "example.com/Ready", "Pod.Scheduled", "a_b"])
def test_valid_types(ctype: str) -> None:
    assert set_condition([], ctype, "True", "Ok", now=T0)


def test_invalid_status_generation_and_time() -> None:
    with pytest.raises(ValueError, match="True, False, Unknown"):
        set_condition([], "Ready", "true", "Ok", now=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="observedGeneration"):
        set_condition([], "Ready", "True", "Ok", observed_generation=-1, now=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        set_condition([], "Ready", "True", "Ok", now=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="message"):
        set_condition([], "Ready", "True", "Ok", "m" * 32769, now=T0)


def test_validate_condition_reports_every_problem() -> None:
    errs = validate_condition({"type": "", "status": "yes", "reason": "bad reason"})
    assert len(errs) == 4
    assert any(e.startswith("type:") for e in errs)
    assert any(e.startswith("status:") for e in errs)
    assert any(e.startswith("reason:") for e in errs)
    assert any(e.startswith("lastTransitionTime:") for e in errs)


def test_format_time_converts_to_utc_seconds() -> None:
    from datetime import timezone

    t = datetime(2030, 1, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(t) == "2030-01-01T17:00:00Z"
