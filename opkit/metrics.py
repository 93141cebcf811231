"""The opkit Prometheus registry and the metric families of the framework.

Everything lives on one module-level :data:`REGISTRY` (not prometheus_client's global one) so
the manager serves exactly opkit's series plus the process/platform/GC collectors, and user code
can register its own metrics on the same registry. Names and labels follow client-go's
workqueue metrics (component-base style, ``name`` label) and controller-runtime's controller and
leader-election metrics, so existing dashboards and alerts work unchanged.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = [
    "CONTROLLER_ACTIVE_WORKERS",
    "CONTROLLER_MAX_CONCURRENT_RECONCILES",
    "LEADER_ELECTION_MASTER_STATUS",
    "LEADER_ELECTION_SLOWPATH_TOTAL",
    "RECONCILE_ERRORS_TOTAL",
    "RECONCILE_PANICS_TOTAL",
    "RECONCILE_RESULTS",
    "RECONCILE_TIMEOUTS_TOTAL",
    "RECONCILE_TIME_BUCKETS",
    "RECONCILE_TIME_SECONDS",
    "RECONCILE_TOTAL",
    "REGISTRY",
    "TERMINAL_RECONCILE_ERRORS_TOTAL",
    "WORKQUEUE_ADDS_TOTAL",
    "WORKQUEUE_DEPTH",
    "WORKQUEUE_DURATION_BUCKETS",
    "WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS",
    "WORKQUEUE_QUEUE_DURATION_SECONDS",
    "WORKQUEUE_RETRIES_TOTAL",
    "WORKQUEUE_UNFINISHED_WORK_SECONDS",
    "WORKQUEUE_WORK_DURATION_SECONDS",
    "init_controller_metrics",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry the manager serves on ``/metrics``."""

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# -- work queues (client-go util/workqueue, component-base names) ------------------------------
# Named queues record into plain counters (see _WorkqueueCounts) that one collector turns into
# these families at scrape time; the WORKQUEUE_* constants are the family names.

WORKQUEUE_DURATION_BUCKETS: tuple[float, ...] = tuple(10.0**e for e in range(-8, 4))
"""1e-8 s .. 1e3 s, ten-fold steps (``ExponentialBuckets(10e-9, 10, 12)``)."""

WORKQUEUE_DEPTH = "workqueue_depth"
WORKQUEUE_ADDS_TOTAL = "workqueue_adds_total"
WORKQUEUE_QUEUE_DURATION_SECONDS = "workqueue_queue_duration_seconds"
WORKQUEUE_WORK_DURATION_SECONDS = "workqueue_work_duration_seconds"
WORKQUEUE_UNFINISHED_WORK_SECONDS = "workqueue_unfinished_work_seconds"
WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS = "workqueue_longest_running_processor_seconds"
WORKQUEUE_RETRIES_TOTAL = "workqueue_retries_total"

_WORKQUEUE_HELP = {
    WORKQUEUE_DEPTH: "Current depth of the work queue.",
    WORKQUEUE_ADDS_TOTAL: "Total number of adds handled by the work queue.",
    WORKQUEUE_QUEUE_DURATION_SECONDS: (
        "Seconds an item waits in the work queue before a worker takes it."
    ),
    WORKQUEUE_WORK_DURATION_SECONDS: "Seconds a worker spends on an item, from get to done.",
    WORKQUEUE_UNFINISHED_WORK_SECONDS: (
        "Seconds of in-progress work not yet observed by work_duration; a steady climb means "
        "stuck workers (its rate of increase is the number of stuck workers)."
    ),
    WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS: (
        "Seconds the longest-running in-progress item has been processed."
    ),
    WORKQUEUE_RETRIES_TOTAL: "Total number of retries (delayed adds) handled by the work queue.",
}

_WORKQUEUE_BUCKET_COUNT = len(WORKQUEUE_DURATION_BUCKETS) + 1
"""Histogram slots of :class:`_WorkqueueCounts` (the buckets plus +Inf)."""


class _WorkqueueCounts:
    """The ``workqueue_*`` figures of one named queue, as plain numbers.

    The queue updates them under its own lock; a prometheus_client child would take a lock of
    its own on every update, which used to cost more than the queue operation itself. They are
    turned into series only when the registry is collected. Histogram slots are per bucket (not
    cumulative); the last one is +Inf.
    """

    __slots__ = (
        "adds",
        "depth",
        "queue_buckets",
        "queue_sum",
        "retries",
        "work_buckets",
        "work_sum",
    )

    def __init__(self) -> None:
        self.adds = 0
        self.depth = 0
        self.retries = 0
        self.queue_buckets = [0] * _WORKQUEUE_BUCKET_COUNT
        self.queue_sum = 0.0
        self.work_buckets = [0] * _WORKQUEUE_BUCKET_COUNT
        self.work_sum = 0.0

    def _fold(self, other: _WorkqueueCounts) -> None:
        self.adds += other.adds
        self.depth += other.depth
        self.retries += other.retries
        self.queue_sum += other.queue_sum
        self.work_sum += other.work_sum
        for i in range(_WORKQUEUE_BUCKET_COUNT):
            self.queue_buckets[i] += other.queue_buckets[i]
            self.work_buckets[i] += other.work_buckets[i]


class _WorkqueueSeries:
    """Everything reported under one queue name (several queues may share a name)."""

    def __init__(self) -> None:
        self.created = time.time()
        self.retired = _WorkqueueCounts()
        """What queues of this name that no longer exist counted (counters never go back)."""
        self.live: list[_WorkqueueCounts] = []
        self.unfinished = 0.0
        self.longest = 0.0


_workqueue_lock = threading.Lock()
_workqueue_series: dict[str, _WorkqueueSeries] = {}
# Counts of collected queues, waiting to be folded into their series' totals. A finalizer may
# run in any thread, even one holding ``_workqueue_lock``, so it only appends here (no lock).
_workqueue_retiring: deque[tuple[_WorkqueueSeries, _WorkqueueCounts]] = deque()


def _fold_retiring_locked() -> None:
    while _workqueue_retiring:
        series, counts = _workqueue_retiring.popleft()
        series.live.remove(counts)
        series.retired._fold(counts)


def _track_workqueue(name: str, queue: object, counts: _WorkqueueCounts) -> None:
    """Report ``counts`` under ``name`` from now on (every series starts at zero).

    When ``queue`` is garbage collected its counts stay in the name's totals, as they would in
    a shared prometheus_client child.
    """
    with _workqueue_lock:
        _fold_retiring_locked()
        series = _workqueue_series.get(name)
        if series is None:
            series = _workqueue_series[name] = _WorkqueueSeries()
        series.live.append(counts)
    weakref.finalize(queue, _workqueue_retiring.append, (series, counts)).atexit = False


def _set_workqueue_unfinished_work(name: str, unfinished: float, longest: float) -> None:
    """Set the two unfinished-work gauges of ``name`` (the last queue to report wins)."""
    series = _workqueue_series.get(name)
    if series is not None:
        series.unfinished = unfinished
        series.longest = longest


class _WorkqueueCollector:
    """Builds the ``workqueue_*`` families (client-go names, ``name`` label) at scrape time."""

    def describe(self) -> list[Metric]:
        return self._families([])

    def collect(self) -> list[Metric]:
        rows: list[tuple[str, _WorkqueueSeries, _WorkqueueCounts]] = []
        with _workqueue_lock:
            _fold_retiring_locked()
            for name, series in _workqueue_series.items():
                total = _WorkqueueCounts()
                total._fold(series.retired)
                for counts in series.live:
                    total._fold(counts)
                rows.append((name, series, total))
        return self._families(rows)

    @staticmethod
    def _families(rows: list[tuple[str, _WorkqueueSeries, _WorkqueueCounts]]) -> list[Metric]:
        created = getattr(_prometheus_metrics, "_use_created", True)
        h = _WORKQUEUE_HELP
        depth = GaugeMetricFamily(WORKQUEUE_DEPTH, h[WORKQUEUE_DEPTH], labels=["name"])
        adds = CounterMetricFamily(WORKQUEUE_ADDS_TOTAL, h[WORKQUEUE_ADDS_TOTAL], labels=["name"])
        queue_duration = HistogramMetricFamily(
            WORKQUEUE_QUEUE_DURATION_SECONDS,
            h[WORKQUEUE_QUEUE_DURATION_SECONDS],
            labels=["name"],
        )
        work_duration = HistogramMetricFamily(
            WORKQUEUE_WORK_DURATION_SECONDS, h[WORKQUEUE_WORK_DURATION_SECONDS], labels=["name"]
        )
        unfinished = GaugeMetricFamily(
            WORKQUEUE_UNFINISHED_WORK_SECONDS,
            h[WORKQUEUE_UNFINISHED_WORK_SECONDS],
            labels=["name"],
        )
        longest = GaugeMetricFamily(
            WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS,
            h[WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS],
            labels=["name"],
        )
        retries = CounterMetricFamily(
            WORKQUEUE_RETRIES_TOTAL, h[WORKQUEUE_RETRIES_TOTAL], labels=["name"]
        )
        for name, series, total in rows:
            stamp = series.created if created else None
            depth.add_metric([name], float(total.depth))
            adds.add_metric([name], float(total.adds), created=stamp)
            _add_histogram(queue_duration, name, total.queue_buckets, total.queue_sum, stamp)
            _add_histogram(work_duration, name, total.work_buckets, total.work_sum, stamp)
            unfinished.add_metric([name], series.unfinished)
            longest.add_metric([name], series.longest)
            retries.add_metric([name], float(total.retries), created=stamp)
        return [depth, adds, queue_duration, work_duration, unfinished, longest, retries]


_float_to_go: Callable[[float], str] = floatToGoString  # how prometheus_client writes "le"
_BUCKET_LABELS = (*(_float_to_go(b) for b in WORKQUEUE_DURATION_BUCKETS), "+Inf")


def _add_histogram(
    family: HistogramMetricFamily,
    name: str,
    slots: list[int],
    total: float,
    created: float | None,
) -> None:
    cumulative: list[tuple[str, float]] = []
    count = 0
    for label, n in zip(_BUCKET_LABELS, slots, strict=True):
        count += n
        cumulative.append((label, float(count)))
    family.add_metric([name], cumulative, total)
    if created is not None:
        family.samples.append(Sample(family.name + "_created", {"name": name}, created, None))


REGISTRY.register(_WorkqueueCollector())

# -- controllers (controller-runtime pkg/internal/controller/metrics) ---------------------------

RECONCILE_RESULTS: tuple[str, ...] = ("success", "error", "requeue", "requeue_after")
"""Values of the ``result`` label of :data:`RECONCILE_TOTAL`."""

RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller.",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS_TOTAL = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller.",
    ["controller"],
    registry=REGISTRY,
)
TERMINAL_RECONCILE_ERRORS_TOTAL = Counter(
    "controller_runtime_terminal_reconcile_errors_total",
    "Total number of terminal (not requeued) reconciliation errors per controller.",
    ["controller"],
    registry=REGISTRY,
)
RECONCILE_PANICS_TOTAL = Counter(
    "controller_runtime_reconcile_panics_total",
    "Total number of reconciliations that raised an unexpected exception per controller.",
    ["controller"],
    registry=REGISTRY,
)
RECONCILE_TIMEOUTS_TOTAL = Counter(
    "controller_runtime_reconcile_timeouts_total",
    "Total number of reconciliations that exceeded their timeout per controller.",
    ["controller"],
    registry=REGISTRY,
)
RECONCILE_TIME_SECONDS = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller.",
    ["controller"],
    buckets=RECONCILE_TIME_BUCKETS,
    registry=REGISTRY,
)
CONTROLLER_MAX_CONCURRENT_RECONCILES = Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller.",
    ["controller"],
    registry=REGISTRY,
)
CONTROLLER_ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of workers currently reconciling, per controller.",
    ["controller"],
    registry=REGISTRY,
)

# -- leader election (controller-runtime pkg/metrics/leaderelection.go) ------------------------

LEADER_ELECTION_MASTER_STATUS = Gauge(
    "leader_election_master_status",
    "1 while this process holds the lease identified by 'name', 0 while it is a candidate.",
    ["name"],
    registry=REGISTRY,
)
LEADER_ELECTION_SLOWPATH_TOTAL = Counter(
    "leader_election_slowpath_total",
    "Total number of lease renewals that had to re-read the lease (slow path).",
    ["name"],
    registry=REGISTRY,
)


def init_controller_metrics(controller: str, max_concurrent_reconciles: int | None = None) -> None:
    """Create every per-controller series at zero, as controller-runtime does on start.

    Pre-initialised series make ``rate()`` and absent-alerts behave from the first scrape.
    """
    for result in RECONCILE_RESULTS:
        RECONCILE_TOTAL.labels(controller=controller, result=result)
    RECONCILE_ERRORS_TOTAL.labels(controller=controller)
    TERMINAL_RECONCILE_ERRORS_TOTAL.labels(controller=controller)
    RECONCILE_PANICS_TOTAL.labels(controller=controller)
    RECONCILE_TIMEOUTS_TOTAL.labels(controller=controller)
    RECONCILE_TIME_SECONDS.labels(controller=controller)
    CONTROLLER_ACTIVE_WORKERS.labels(controller=controller).set(0)
    if max_concurrent_reconciles is not None:
        CONTROLLER_MAX_CONCURRENT_RECONCILES.labels(controller=controller).set(
            max_concurrent_reconciles
        )


def render(accept: str | None = None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """Serialise ``registry`` for an HTTP ``Accept`` header; returns (body, content type)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
