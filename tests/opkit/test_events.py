"""Tests for opkit.events.EventRecorder against the embedded API server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from opkit.client import Client, ResourceClient
from opkit.clock import FakeClock
from opkit.events import EventRecorder
from opkit.testing import APIServer

NS = "default"


@pytest.fixture
def events(client: Client) -> ResourceClient:
    return client.resource("v1", "Event")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def subject(client: Client) -> dict[str, Any]:
    return client.resource("v1", "ConfigMap").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "subject", "namespace": NS}}
    )


def all_events(events: ResourceClient, namespace: str = NS) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = events.list(namespace)["items"]
    return sorted(items, key=lambda e: e["metadata"]["name"])


def test_event_fields(
    client: Client, events: ResourceClient, clock: FakeClock, subject: dict[str, Any]
) -> None:
    rec = EventRecorder(client, "my-operator", instance="pod-1", clock=clock)
    rec.event(subject, "Normal", "Created", "made a thing", action="Create")
    [ev] = all_events(events)
    name = ev["metadata"]["name"]
    assert name.startswith("subject.") and int(name.split(".", 1)[1], 16) > 0
    assert ev["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "subject",
        "namespace": NS,
        "uid": subject["metadata"]["uid"],
        "resourceVersion": subject["metadata"]["resourceVersion"],
    }
    assert (ev["type"], ev["reason"], ev["message"], ev["action"]) == (
        "Normal",
        "Created",
        "made a thing",
        "Create",
    )
    assert ev["source"] == {"component": "my-operator", "host": "pod-1"}
    assert ev["reportingComponent"] == "my-operator" and ev["reportingInstance"] == "pod-1"
    assert ev["count"] == 1
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2024-01-01T00:00:00Z"


def test_identical_events_are_counted_on_one_event(
    client: Client, events: ResourceClient, clock: FakeClock, subject: dict[str, Any]
) -> None:
    rec = EventRecorder(client, "my-operator", clock=clock)
    for _ in range(3):
        rec.warning(subject, "Failed", "could not reach the database")
        clock.step(5)
    rec.warning(subject, "Failed", "another message")
    evs = all_events(events)
    assert len(evs) == 2
    counted = next(e for e in evs if e["message"] == "could not reach the database")
    assert counted["count"] == 3
    assert counted["firstTimestamp"] == "2024-01-01T00:00:00Z"
    assert counted["lastTimestamp"] == "2024-01-01T00:00:10Z"
    other = next(e for e in evs if e["message"] == "another message")
    assert other["count"] == 1


def test_window_and_cache_bound_start_new_events(
    client: Client, events: ResourceClient, clock: FakeClock, subject: dict[str, Any]
) -> None:
    rec = EventRecorder(client, "op", clock=clock, window=60, max_cache_size=2)
    rec.normal(subject, "A", "a")
    clock.step(61)
    rec.normal(subject, "A", "a")  # outside the window: a new Event
    assert [e["count"] for e in all_events(events)] == [1, 1]
    rec.normal(subject, "B", "b")
    rec.normal(subject, "C", "c")  # evicts the newest "A" from the LRU of 2
    rec.normal(subject, "A", "a")
    assert len(all_events(events)) == 5


def test_event_expired_on_the_server_is_recreated(
    client: Client, events: ResourceClient, clock: FakeClock, subject: dict[str, Any]
) -> None:
    rec = EventRecorder(client, "op", clock=clock)
    rec.normal(subject, "Synced", "ok")
    [ev] = all_events(events)
    events.delete(ev["metadata"]["name"], NS)
    rec.normal(subject, "Synced", "ok")
    [again] = all_events(events)
    assert again["count"] == 1 and again["metadata"]["name"] != ev["metadata"]["name"]


def test_cluster_scoped_objects_get_events_in_default(
    client: Client, events: ResourceClient, clock: FakeClock
) -> None:
    ns = client.resource("v1", "Namespace").create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    EventRecorder(client, "op", clock=clock).normal(ns, "Labelled", "labels applied")
    [ev] = all_events(events, "default")
    assert ev["involvedObject"]["kind"] == "Namespace"
    assert "namespace" not in ev["involvedObject"]


def test_failures_are_logged_not_raised(
    apiserver: APIServer,
    client: Client,
    events: ResourceClient,
    clock: FakeClock,
    subject: dict[str, Any],
) -> None:
    rec = EventRecorder(client, "op", clock=clock)
    apiserver.faults.fail(verb="create", resource="events", times=1, code=403)
    rec.normal(subject, "Lost", "the server refused this one")
    rec.event(subject, "Bogus", "BadType", "unsupported type is dropped")
    rec.normal({"metadata": {}}, "NoName", "an object without a name")
    assert all_events(events) == []
    rec.normal(subject, "Fine", "this one is posted")
    assert [e["reason"] for e in all_events(events)] == ["Fine"]


def test_long_messages_are_truncated(
    client: Client, events: ResourceClient, clock: FakeClock, subject: dict[str, Any]
) -> None:
    EventRecorder(client, "op", clock=clock).normal(subject, "Long", "x" * 5000)
    [ev] = all_events(events)
    assert len(ev["message"].encode()) <= 1024 and ev["message"].endswith("...")


def test_asynchronous_posting_flushes_on_close(
    client: Client, events: ResourceClient, subject: dict[str, Any]
) -> None:
    rec = EventRecorder(client, "async-op", asynchronous=True)
    assert any(t.name == "event-recorder-async-op" for t in threading.enumerate())
    for i in range(5):
        rec.normal(subject, f"Step{i}", "done")
    for _ in range(3):
        rec.normal(subject, "Repeated", "again")
    assert rec.flush(15)
    rec.close(15)
    rec.normal(subject, "Late", "after close: dropped")
    evs = all_events(events)
    assert len(evs) == 6
    assert next(e for e in evs if e["reason"] == "Repeated")["count"] == 3
    assert not any(t.name.startswith("event-") for t in threading.enumerate())
