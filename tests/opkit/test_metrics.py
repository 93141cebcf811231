"""Tests for opkit.metrics and the workqueue_* series recorded by named queues.

The registry is process-wide, so every test uses its own queue/controller name.
"""

from __future__ import annotations

import gc
import itertools

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opkit import metrics
from opkit.clock import FakeClock
from opkit.metrics import REGISTRY
from opkit.workqueue import DelayingQueue, Queue, RateLimitingQueue, update_unfinished_work

_names = itertools.count()


pytestmark = pytest.mark.usefixtures("no_leaked_threads")


@pytest.fixture
def name() -> str:
    return f"test-queue-{next(_names)}"


def value(metric: str, **labels: str) -> float | None:
    v = REGISTRY.get_sample_value(metric, labels)
    return None if v is None else float(v)


def family_names() -> set[str]:
    return {m.name for m in REGISTRY.collect()}


def test_registry_has_client_go_and_controller_runtime_families() -> None:
    names = family_names()
    for expected in (
        "workqueue_depth",
        "workqueue_adds",  # counters are reported without the _total suffix
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "workqueue_retries",
        "controller_runtime_reconcile",
        "controller_runtime_reconcile_errors",
        "controller_runtime_terminal_reconcile_errors",
        "controller_runtime_reconcile_panics",
        "controller_runtime_reconcile_timeouts",
        "controller_runtime_reconcile_time_seconds",
        "controller_runtime_max_concurrent_reconciles",
        "controller_runtime_active_workers",
        "leader_election_master_status",
        "leader_election_slowpath",
        "process_cpu_seconds",
    ):
        assert expected in names, expected


def test_named_queue_series_exist_at_zero(name: str) -> None:
    Queue[str](name=name)
    assert value("workqueue_depth", name=name) == 0
    assert value("workqueue_adds_total", name=name) == 0
    assert value("workqueue_retries_total", name=name) == 0
    assert value("workqueue_queue_duration_seconds_count", name=name) == 0


def test_adds_and_depth_follow_client_go(name: str) -> None:
    q: Queue[str] = Queue(name=name, clock=FakeClock())
    q.add("a")
    q.add("a")  # deduplicated: not counted
    q.add("b")
    assert value("workqueue_adds_total", name=name) == 2
    assert value("workqueue_depth", name=name) == 2
    item, _ = q.get()
    assert item == "a"
    assert value("workqueue_depth", name=name) == 1
    q.add("a")  # re-add while processing counts as an add and in depth (client-go)
    assert value("workqueue_adds_total", name=name) == 3
    assert value("workqueue_depth", name=name) == 2
    q.done("a")
    assert value("workqueue_depth", name=name) == 2
    q.get()
    q.get()
    assert value("workqueue_depth", name=name) == 0


def test_queue_and_work_durations(name: str) -> None:
    clock = FakeClock()
    q: Queue[str] = Queue(name=name, clock=clock)
    q.add("a")
    clock.step(2)
    q.add("a")  # dedup must not reset the add time
    clock.step(1)
    q.get()
    assert value("workqueue_queue_duration_seconds_count", name=name) == 1
    assert value("workqueue_queue_duration_seconds_sum", name=name) == pytest.approx(3)
    assert value("workqueue_queue_duration_seconds_bucket", name=name, le="1.0") == 0
    assert value("workqueue_queue_duration_seconds_bucket", name=name, le="10.0") == 1
    clock.step(0.25)
    q.done("a")
    assert value("workqueue_work_duration_seconds_count", name=name) == 1
    assert value("workqueue_work_duration_seconds_sum", name=name) == pytest.approx(0.25)


def test_unfinished_work_gauges(name: str) -> None:
    clock = FakeClock()
    q: Queue[str] = Queue(name=name, clock=clock)
    q.add("a")
    q.add("b")
    q.get()
    clock.step(3)
    q.get()
    clock.step(1)
    q.update_unfinished_work()
    assert value("workqueue_unfinished_work_seconds", name=name) == pytest.approx(5)
    assert value("workqueue_longest_running_processor_seconds", name=name) == pytest.approx(4)
    q.done("a")
    q.done("b")
    update_unfinished_work()  # the module-level refresh covers every named queue
    assert value("workqueue_unfinished_work_seconds", name=name) == 0
    assert value("workqueue_longest_running_processor_seconds", name=name) == 0


def test_retries_count_every_add_after(name: str) -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(name=name, clock=clock)
    q.add_after("a", 0)
    q.add_after("b", 1)
    q.add_after("b", 5)
    assert value("workqueue_retries_total", name=name) == 3
    assert value("workqueue_adds_total", name=name) == 1  # "b" is not added until ready
    clock.step(1)
    q.update_unfinished_work()  # any queue access moves due items in
    assert value("workqueue_adds_total", name=name) == 2
    assert value("workqueue_depth", name=name) == 2
    q.shut_down()
    q.add_after("c", 1)
    assert value("workqueue_retries_total", name=name) == 3


def test_rate_limited_adds_count_as_retries(name: str) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(name=name, clock=FakeClock())
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert value("workqueue_retries_total", name=name) == 2


def test_unnamed_queue_records_nothing() -> None:
    def snapshot() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        return sorted(
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for fam in REGISTRY.collect()
            if fam.name.startswith("workqueue_")
            for s in fam.samples
        )

    before = snapshot()
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    q.add("a")
    q.get()
    clock.step(1)
    q.done("a")
    q.add_rate_limited("b")
    q.update_unfinished_work()
    assert snapshot() == before


def test_workqueue_histogram_buckets() -> None:
    buckets = metrics.WORKQUEUE_DURATION_BUCKETS
    assert buckets == pytest.approx([10.0**e for e in range(-8, 4)])
    assert len(buckets) == 12


def test_init_controller_metrics_pre_creates_series() -> None:
    ctrl = f"ctrl-{next(_names)}"
    metrics.init_controller_metrics(ctrl, max_concurrent_reconciles=4)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert value("controller_runtime_reconcile_total", controller=ctrl, result=result) == 0
    assert value("controller_runtime_reconcile_errors_total", controller=ctrl) == 0
    assert value("controller_runtime_active_workers", controller=ctrl) == 0
    assert value("controller_runtime_max_concurrent_reconciles", controller=ctrl) == 4
    assert value("controller_runtime_reconcile_time_seconds_count", controller=ctrl) == 0
    metrics.RECONCILE_TOTAL.labels(controller=ctrl, result="success").inc()
    metrics.RECONCILE_TIME_SECONDS.labels(controller=ctrl).observe(0.2)
    assert value("controller_runtime_reconcile_total", controller=ctrl, result="success") == 1
    assert value("controller_runtime_reconcile_time_seconds_bucket", controller=ctrl, le="0.2") == 1
    assert (
        value("controller_runtime_reconcile_time_seconds_bucket", controller=ctrl, le="60.0") == 1
    )


def test_leader_election_gauge() -> None:
    lease = f"lease-{next(_names)}"
    metrics.LEADER_ELECTION_MASTER_STATUS.labels(name=lease).set(1)
    assert value("leader_election_master_status", name=lease) == 1


def test_render_text_and_openmetrics(name: str) -> None:
    Queue[str](name=name).add("x")
    body, ctype = metrics.render()
    assert ctype.startswith("text/plain")
    assert f'workqueue_adds_total{{name="{name}"}} 1.0' in body.decode()
    body, ctype = metrics.render("application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_counts_outlive_their_queue_and_add_up_per_name(name: str) -> None:
    clock = FakeClock()
    q: Queue[str] = Queue(name=name, clock=clock)
    q.add("a")
    q.add("b")
    q.get()
    clock.step(1)
    q.done("a")
    del q
    gc.collect()
    # As with one shared series per name: a collected queue's counts stay (counters never drop).
    assert value("workqueue_adds_total", name=name) == 2
    assert value("workqueue_depth", name=name) == 1
    assert value("workqueue_work_duration_seconds_count", name=name) == 1
    again: Queue[str] = Queue(name=name, clock=clock)
    also: Queue[str] = Queue(name=name, clock=clock)
    again.add("c")
    also.add("c")
    assert value("workqueue_adds_total", name=name) == 4
    assert value("workqueue_depth", name=name) == 3
    assert value("workqueue_work_duration_seconds_count", name=name) == 1


def test_series_match_prometheus_client_metrics(name: str) -> None:
    """The collector's samples are what prometheus_client's own metric objects would report."""
    reference = CollectorRegistry()
    buckets = metrics.WORKQUEUE_DURATION_BUCKETS
    ref_queue = Histogram(
        "workqueue_queue_duration_seconds", "", ["name"], buckets=buckets, registry=reference
    ).labels(name=name)
    ref_work = Histogram(
        "workqueue_work_duration_seconds", "", ["name"], buckets=buckets, registry=reference
    ).labels(name=name)
    ref_adds = Counter("workqueue_adds_total", "", ["name"], registry=reference).labels(name=name)
    ref_depth = Gauge("workqueue_depth", "", ["name"], registry=reference).labels(name=name)
    clock = FakeClock()
    q: Queue[str] = Queue(name=name, clock=clock)
    for wait, work in ((0.0, 3e-9), (5e-9, 0.25), (3e-5, 7.0), (0.5, 0.0), (2000.0, 40.0)):
        q.add("x")
        ref_adds.inc()
        clock.step(wait)
        q.get()
        ref_queue.observe(wait)
        clock.step(work)
        q.done("x")
        ref_work.observe(work)
    q.add("left")
    ref_adds.inc()
    ref_depth.set(1)

    compared = {
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "workqueue_adds",
        "workqueue_depth",
    }

    def samples(registry: CollectorRegistry) -> dict[str, list[tuple[str, str, float]]]:
        out: dict[str, list[tuple[str, str, float]]] = {}
        for family in registry.collect():
            if family.name not in compared:
                continue
            assert family.type in ("histogram", "counter", "gauge")
            out[f"{family.name} {family.type}"] = [
                (s.name, s.labels.get("le", ""), 0.0 if s.name.endswith("_created") else s.value)
                for s in family.samples
                if s.labels.get("name") == name
            ]
        return out

    ours, theirs = samples(REGISTRY), samples(reference)
    assert ours.keys() == theirs.keys()
    for key, expected in theirs.items():
        got = ours[key]
        assert [(n, le) for n, le, _ in got] == [(n, le) for n, le, _ in expected], key
        assert [v for _, _, v in got] == pytest.approx([v for _, _, v in expected]), key
