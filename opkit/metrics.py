"""The opkit Prometheus registry and the metric families of the framework.

Everything lives on one module-level :data:`REGISTRY` (not prometheus_client's global one) so
the manager serves exactly opkit's series plus the process/platform/GC collectors, and user code
can register its own metrics on the same registry. Names and labels follow client-go's
workqueue metrics (component-base style, ``name`` label) and controller-runtime's controller and
leader-election metrics, so existing dashboards and alerts work unchanged.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

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

WORKQUEUE_DURATION_BUCKETS: tuple[float, ...] = tuple(10.0**e for e in range(-8, 4))
"""1e-8 s .. 1e3 s, ten-fold steps (``ExponentialBuckets(10e-9, 10, 12)``)."""

WORKQUEUE_DEPTH = Gauge(
    "workqueue_depth", "Current depth of the work queue.", ["name"], registry=REGISTRY
)
WORKQUEUE_ADDS_TOTAL = Counter(
    "workqueue_adds_total",
    "Total number of adds handled by the work queue.",
    ["name"],
    registry=REGISTRY,
)
WORKQUEUE_QUEUE_DURATION_SECONDS = Histogram(
    "workqueue_queue_duration_seconds",
    "Seconds an item waits in the work queue before a worker takes it.",
    ["name"],
    buckets=WORKQUEUE_DURATION_BUCKETS,
    registry=REGISTRY,
)
WORKQUEUE_WORK_DURATION_SECONDS = Histogram(
    "workqueue_work_duration_seconds",
    "Seconds a worker spends on an item, from get to done.",
    ["name"],
    buckets=WORKQUEUE_DURATION_BUCKETS,
    registry=REGISTRY,
)
WORKQUEUE_UNFINISHED_WORK_SECONDS = Gauge(
    "workqueue_unfinished_work_seconds",
    "Seconds of in-progress work not yet observed by work_duration; a steady climb means stuck "
    "workers (its rate of increase is the number of stuck workers).",
    ["name"],
    registry=REGISTRY,
)
WORKQUEUE_LONGEST_RUNNING_PROCESSOR_SECONDS = Gauge(
    "workqueue_longest_running_processor_seconds",
    "Seconds the longest-running in-progress item has been processed.",
    ["name"],
    registry=REGISTRY,
)
WORKQUEUE_RETRIES_TOTAL = Counter(
    "workqueue_retries_total",
    "Total number of retries (delayed adds) handled by the work queue.",
    ["name"],
    registry=REGISTRY,
)

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
