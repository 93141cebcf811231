"""opkit.leaderelection: config, MicroTime, and the elector's semantics.

The first part drives electors on a FakeClock over an in-memory lock (deterministic, no
waiting); the second part runs them against the embedded API server, in threads and in separate
processes.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from helpers import wait_for

from opkit import errors
from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock, FakeClock
from opkit.leaderelection import (
    LeaderElectionRecord,
    LeaderElector,
    LeaseLock,
    LeaseNotRenewedError,
    format_micro_time,
    parse_micro_time,
)

# -- pure helpers ------------------------------------------------------------------------------


def test_format_micro_time() -> None:
    dt = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_micro_time(dt) == "2024-01-02T03:04:05.678901Z"
    assert format_micro_time(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00.000000Z"
    plus_two = datetime(2024, 1, 2, 5, 4, 5, 1, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    assert format_micro_time(plus_two) == "2024-01-02T05:04:05.000001Z"
    with pytest.raises(ValueError, match="timezone"):
        format_micro_time(datetime(2024, 1, 2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05.678901Z", datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05.5+00:00", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T01:04:05-02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_micro_time(text: str, expected: datetime) -> None:
    assert parse_micro_time(text) == expected


def test_parse_micro_time_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_micro_time("yesterday")


def test_record_round_trip_through_spec() -> None:
    now = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    record = LeaderElectionRecord("a", 15, now, now + timedelta(seconds=1), 3)
    spec = record.to_spec()
    assert spec == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2024-05-06T07:08:09.123456Z",
        "renewTime": "2024-05-06T07:08:10.123456Z",
        "leaseTransitions": 3,
    }
    assert LeaderElectionRecord.from_spec(spec) == record
    assert LeaderElectionRecord.from_spec(spec).raw() == record.raw()
    assert LeaderElectionRecord.from_spec(None) == LeaderElectionRecord()


class _NamedLock:
    def __init__(self, identity: str) -> None:
        self._identity = identity

    @property
    def identity(self) -> str:
        return self._identity

    def describe(self) -> str:
        return "ns/lock"

    def get(self, *, timeout: float | None = None) -> tuple[LeaderElectionRecord, bytes]:
        raise errors.NotFound(404, "NotFound", "none")

    def create(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        raise AssertionError("not used")

    def update(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        raise AssertionError("not used")


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "identity", "message"),
    [
        (10, 10, 2, "a", "leaseDuration must be greater than renewDeadline"),
        (5, 10, 2, "a", "leaseDuration must be greater than renewDeadline"),
        (15, 2.4, 2, "a", "renewDeadline must be greater than retryPeriod\\*JitterFactor"),
        (15, 10, 0, "a", "retryPeriod must be greater than zero"),
        (15, 10, -1, "a", "retryPeriod must be greater than zero"),
        (15, 10, 2, "", "Lock identity is empty"),
    ],
)
def test_config_validation(
    lease: float, renew: float, retry: float, identity: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LeaderElector(
            _NamedLock(identity), lease_duration=lease, renew_deadline=renew, retry_period=retry
        )


def test_defaults_are_client_go_defaults() -> None:
    elector = LeaderElector(_NamedLock("a"))
    assert (elector.lease_duration, elector.renew_deadline, elector.retry_period) == (15, 10, 2)
    LeaderElector(_NamedLock("a"), lease_duration=1.0, renew_deadline=0.6, retry_period=0.2)


# -- an in-memory lock with apiserver-like optimistic concurrency -------------------------------


@dataclass
class MemoryLease:
    """One stored record, a resourceVersion, and switches to make requests fail."""

    clock: FakeClock
    spec: dict[str, object] | None = None
    rv: int = 0
    failing: set[str] = field(default_factory=set)  # identities whose requests fail
    writes: list[tuple[float, str]] = field(default_factory=list)  # (fake time, holder)
    mutex: threading.Lock = field(default_factory=threading.Lock)


class MemoryLock:
    def __init__(self, lease: MemoryLease, identity: str) -> None:
        self.lease = lease
        self._identity = identity
        self._rv: int | None = None

    @property
    def identity(self) -> str:
        return self._identity

    def describe(self) -> str:
        return "default/memory"

    def _check(self) -> None:
        if self._identity in self.lease.failing:
            raise errors.ServerError(500, "InternalError", "injected")

    def get(self, *, timeout: float | None = None) -> tuple[LeaderElectionRecord, bytes]:
        with self.lease.mutex:
            self._check()
            if self.lease.spec is None:
                raise errors.NotFound(404, "NotFound", "leases not found")
            self._rv = self.lease.rv
            record = LeaderElectionRecord.from_spec(self.lease.spec)
        return record, record.raw()

    def create(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        with self.lease.mutex:
            self._check()
            if self.lease.spec is not None:
                raise errors.AlreadyExists(409, "AlreadyExists", "exists")
            self._write(record)

    def update(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        with self.lease.mutex:
            self._check()
            if self._rv is None:
                raise RuntimeError("lease not initialized, call get or create first")
            if self._rv != self.lease.rv:
                raise errors.Conflict(409, "Conflict", "stale")
            self._write(record)

    def _write(self, record: LeaderElectionRecord) -> None:
        self.lease.spec = record.to_spec()
        self.lease.rv += 1
        self._rv = self.lease.rv
        self.lease.writes.append((self.lease.clock.monotonic(), record.holder_identity))

    def holder(self) -> str:
        with self.lease.mutex:
            return str((self.lease.spec or {}).get("holderIdentity") or "")


class Timeline:
    """Leadership intervals of every candidate, on the fake clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.mutex = threading.Lock()
        self.started: dict[str, float] = {}
        self.stopped: dict[str, float] = {}
        self.intervals: list[tuple[str, float, float]] = []
        self.new_leaders: list[str] = []

    def callbacks(self, who: str) -> dict[str, Callable[..., None]]:
        def started(stop: threading.Event) -> None:
            with self.mutex:
                self.started[who] = self.clock.monotonic()

        def stopped() -> None:
            with self.mutex:
                t = self.clock.monotonic()
                self.stopped[who] = t
                self.intervals.append((who, self.started.get(who, t), t))

        def new_leader(identity: str) -> None:
            with self.mutex:
                self.new_leaders.append(identity)

        return {
            "on_started_leading": started,
            "on_stopped_leading": stopped,
            "on_new_leader": new_leader,
        }


def _always(value: float) -> Callable[[], float]:
    return lambda: value


def _first_write(lease: MemoryLease, holder: str) -> float:
    """Fake time at which ``holder`` first wrote the lease (when it became leader)."""
    return min(t for t, who in lease.writes if who == holder)


def _spec(lease: MemoryLease) -> dict[str, object]:
    assert lease.spec is not None
    return dict(lease.spec)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lease(clock: FakeClock) -> MemoryLease:
    return MemoryLease(clock)


@pytest.fixture
def electors() -> Iterator[list[LeaderElector]]:
    started: list[LeaderElector] = []
    yield started
    for e in started:
        e.stop(timeout=10)
    for e in started:
        assert e._thread is not None
        assert not e._thread.is_alive()


def _elector(
    lease: MemoryLease,
    who: str,
    clock: FakeClock,
    timeline: Timeline,
    electors: list[LeaderElector],
    **kwargs: object,
) -> LeaderElector:
    params: dict[str, object] = {
        "lease_duration": 15.0,
        "renew_deadline": 10.0,
        "retry_period": 2.0,
        "clock": clock,
        "rand": _always(0.0),
        **timeline.callbacks(who),
    }
    params.update(kwargs)
    elector = LeaderElector(MemoryLock(lease, who), **params)  # type: ignore[arg-type]
    electors.append(elector)
    return elector


def _lead(
    lease: MemoryLease,
    who: str,
    clock: FakeClock,
    timeline: Timeline,
    electors: list[LeaderElector],
    **kwargs: object,
) -> LeaderElector:
    """Start ``who`` on a free lease and wait until it is parked on the clock, leading."""
    elector = _elector(lease, who, clock, timeline, electors, **kwargs)
    elector.start()
    clock.wait_for_waiters(1)
    return elector


def _a_leads_then_b_joins(
    lease: MemoryLease,
    clock: FakeClock,
    timeline: Timeline,
    electors: list[LeaderElector],
    **a_kwargs: object,
) -> tuple[LeaderElector, LeaderElector]:
    """``a`` takes the lease, then candidate ``b`` starts."""
    a = _lead(lease, "a", clock, timeline, electors, **a_kwargs)
    b = _elector(lease, "b", clock, timeline, electors)
    b.start()
    return a, b


def _settle(clock: FakeClock, electors: list[LeaderElector], timeout: float = 10.0) -> None:
    """Wait (really, briefly) until every running elector is parked on the fake clock."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.001)):
        alive = sum(1 for e in electors if e._thread is not None and e._thread.is_alive())
        if clock.num_waiters() >= alive:
            return
        pause.wait(0.001)
    raise AssertionError("electors did not settle on the fake clock")


def _advance(
    clock: FakeClock, seconds: float, electors: list[LeaderElector], step: float = 0.05
) -> None:
    """Step the fake clock in small increments, each once every elector is parked on it."""
    for _ in range(round(seconds / step)):
        _settle(clock, electors)
        clock.step(step)
    _settle(clock, electors)


def test_first_candidate_creates_the_lease_and_leads(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a = _lead(lease, "a", clock, timeline, electors)
    assert a.is_leader()
    assert a.get_leader() == "a"
    wait_for(lambda: "a" in timeline.started and timeline.new_leaders == ["a"])
    spec = lease.spec
    assert spec is not None
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    # It renews every retry period, keeping acquireTime.
    _advance(clock, 4.0, electors)
    assert len(lease.writes) >= 2
    assert lease.spec is not None
    assert lease.spec["acquireTime"] == spec["acquireTime"]
    assert lease.spec["renewTime"] != spec["renewTime"]
    a.stop(timeout=10)
    assert not a.is_leader()
    assert timeline.stopped["a"] >= timeline.started["a"]


def test_second_candidate_waits_for_expiry_judged_on_its_own_clock(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    # A lease left behind by a dead leader whose renewTime is far in the future: the remote
    # timestamps must not matter, only how long *we* have seen the record unchanged.
    future = clock.now() + timedelta(days=365)
    lease.spec = LeaderElectionRecord("dead", 15, future, future, 4).to_spec()
    lease.rv = 1
    b = _elector(lease, "b", clock, timeline, electors)
    b.start()
    _advance(clock, 14.0, electors)
    assert not b.is_leader()
    assert b.get_leader() == "dead"
    _advance(clock, 5.0, electors)  # 15 s after first sight (+ up to one retry period)
    assert b.is_leader()
    assert lease.spec is not None
    assert lease.spec["leaseTransitions"] == 5
    wait_for(lambda: sorted(timeline.new_leaders) == ["b", "dead"])


def test_a_changing_record_keeps_the_lease_alive(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a, b = _a_leads_then_b_joins(lease, clock, timeline, electors)
    clock.wait_for_waiters(2)
    _advance(clock, 60.0, electors, step=0.25)
    assert a.is_leader()
    assert not b.is_leader()
    assert "b" not in timeline.started


def test_renewal_failure_stops_leading_before_the_lease_can_expire(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a, b = _a_leads_then_b_joins(lease, clock, timeline, electors)
    _advance(clock, 6.0, electors)
    lease.failing.add("a")
    last_write = max(t for t, holder in lease.writes if holder == "a")
    # Step until b has taken over; a's thread ends on its own when it gives up.
    for _ in range(600):
        if b.is_leader():
            break
        _advance(clock, 0.05, electors)
    assert b.is_leader()
    stopped = timeline.stopped["a"]
    # a gave up renew_deadline after the start of its last good renewal: before b could
    # possibly see the lease expire (lease_duration after that write).
    assert stopped < last_write + a.lease_duration
    assert stopped >= last_write + a.renew_deadline - 1e-6
    b_acquired = _first_write(lease, "b")
    assert b_acquired > stopped
    assert b_acquired >= last_write + a.lease_duration


def test_leader_that_sees_another_holder_stops_at_once(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a = _lead(lease, "a", clock, timeline, electors)
    lock = MemoryLock(lease, "intruder")
    record, _ = lock.get()
    lock.update(LeaderElectionRecord("intruder", 15, clock.now(), clock.now(), 9))
    _advance(clock, 2.5, electors)
    wait_for(lambda: "a" in timeline.stopped)
    assert timeline.stopped["a"] - _first_write(lease, "a") < 3.0
    assert not a.is_leader()
    assert a.get_leader() == "intruder"
    assert record.holder_identity == "a"


def test_release_on_cancel_hands_over_immediately(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a, b = _a_leads_then_b_joins(lease, clock, timeline, electors, release_on_cancel=True)
    _advance(clock, 3.0, electors)
    a.stop(timeout=10)
    assert lease.spec is not None
    assert lease.spec["holderIdentity"] == ""
    assert lease.spec["leaseDurationSeconds"] == 1
    assert lease.spec["leaseTransitions"] == 0
    # b acquires on its next attempt, far sooner than a lease duration.
    _advance(clock, 2.1, electors)
    assert b.is_leader()
    assert _first_write(lease, "b") - timeline.stopped["a"] <= 2.2
    assert _spec(lease)["leaseTransitions"] == 1


def test_stop_without_release_keeps_the_lease(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a = _lead(lease, "a", clock, timeline, electors)
    a.stop(timeout=10)
    assert lease.spec is not None
    assert lease.spec["holderIdentity"] == "a"
    assert "a" in timeline.stopped


def test_stopping_a_candidate_does_not_call_on_stopped_leading(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    lease.spec = LeaderElectionRecord("other", 15, clock.now(), clock.now()).to_spec()
    b = _elector(lease, "b", clock, timeline, electors)
    b.start()
    clock.wait_for_waiters(1)
    b.stop(timeout=10)
    assert timeline.stopped == {}
    wait_for(lambda: timeline.new_leaders == ["other"])


def test_check_reports_a_wedged_leader(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    a = _elector(lease, "a", clock, timeline, electors)
    a.check()  # not leading: healthy
    a.start()
    clock.wait_for_waiters(1)
    a.check()
    # Simulate the elector thread being stuck: time passes without renewals.
    with a._state:
        a._observed_time -= 20.0
    with pytest.raises(LeaseNotRenewedError):
        a.check(max_tolerable_expired_lease=1.0)
    a.check(max_tolerable_expired_lease=10.0)


def test_jittered_acquire_period(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    lease.spec = LeaderElectionRecord("other", 100, clock.now(), clock.now()).to_spec()
    gets: list[float] = []
    b = _elector(lease, "b", clock, timeline, electors, rand=_always(0.5))
    original = b.lock.get

    def counting_get(*, timeout: float | None = None) -> tuple[LeaderElectionRecord, bytes]:
        gets.append(clock.monotonic())
        return original(timeout=timeout)

    b.lock.get = counting_get  # type: ignore[method-assign]
    b.start()
    _advance(clock, 10.0, electors)
    gaps = [round(later - earlier, 2) for earlier, later in itertools.pairwise(gets)]
    # retry_period * (1 + 0.5 * 1.2) = 3.2 s between attempts.
    assert gaps and all(gap == pytest.approx(3.2, abs=0.06) for gap in gaps)


def test_exception_in_started_callback_gives_up_leadership(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    stopped = threading.Event()

    def boom(stop: threading.Event) -> None:
        raise RuntimeError("leader work failed")

    a = _elector(
        lease,
        "a",
        clock,
        timeline,
        electors,
        on_started_leading=boom,
        on_stopped_leading=stopped.set,
        release_on_cancel=True,
    )
    a.start()
    wait_for(stopped.is_set)
    assert lease.spec is not None
    assert lease.spec["holderIdentity"] == ""


# -- against the embedded API server (real time, short durations) ------------------------------

if TYPE_CHECKING:
    from opkit.testing.apiserver.server import APIServer


class RecordingLeaseLock(LeaseLock):
    """A LeaseLock that remembers when each successful write started."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ok_writes: list[float] = []

    def create(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        start = time.monotonic()
        super().create(record, timeout=timeout)
        self.ok_writes.append(start)

    def update(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        start = time.monotonic()
        super().update(record, timeout=timeout)
        self.ok_writes.append(start)


def _lease_elector(
    client: Client,
    who: str,
    timeline: Timeline,
    running: list[LeaderElector],
    *,
    lease: str = "election",
    **kwargs: Any,
) -> LeaderElector:
    params: dict[str, Any] = {
        "lease_duration": 1.0,
        "renew_deadline": 0.6,
        "retry_period": 0.2,
        **timeline.callbacks(who),
    }
    params.update(kwargs)
    elector = LeaderElector(RecordingLeaseLock(client, "default", lease, who), **params)
    running.append(elector)
    return elector


def _assert_no_overlap(intervals: list[tuple[str, float, float]]) -> None:
    ordered = sorted(intervals, key=lambda iv: iv[1])
    for (who, _start, end), (other, next_start, _end) in itertools.pairwise(ordered):
        assert end < next_start, f"{who} still led when {other} started"


def _lease_holder(client: Client, name: str = "election") -> str:
    leases = client.resource_for("coordination.k8s.io", "v1", "leases", True, "Lease")
    return str(leases.get(name, "default")["spec"].get("holderIdentity") or "")


def test_two_electors_on_one_lease_exactly_one_leads(
    client: Client, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(REAL_CLOCK)
    a = _lease_elector(client, "a", timeline, electors)
    b = _lease_elector(client, "b", timeline, electors)
    a.start()
    b.start()
    wait_for(lambda: a.is_leader() or b.is_leader())
    pause = threading.Event()
    for _ in range(15):  # a few lease durations of renewals
        assert a.is_leader() != b.is_leader()
        leader = "a" if a.is_leader() else "b"
        assert _lease_holder(client) == leader
        pause.wait(0.1)
    assert len(timeline.started) == 1
    lease = client.resource_for("coordination.k8s.io", "v1", "leases", True, "Lease").get(
        "election", "default"
    )
    spec = lease["spec"]
    assert spec["leaseDurationSeconds"] == 1
    assert parse_micro_time(spec["renewTime"]) >= parse_micro_time(spec["acquireTime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", spec["renewTime"])
    wait_for(lambda: set(timeline.new_leaders) == {leader})
    for e in (a, b):
        e.stop(timeout=10)
    _assert_no_overlap(timeline.intervals)


def test_release_on_cancel_hands_over_without_waiting_for_expiry(
    client: Client, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(REAL_CLOCK)
    # A 60 s lease: the successor can only lead within this test if the lease was released.
    kwargs: dict[str, Any] = {"lease_duration": 60.0, "renew_deadline": 1.0, "retry_period": 0.2}
    a = _lease_elector(client, "a", timeline, electors, release_on_cancel=True, **kwargs)
    a.start()
    wait_for(a.is_leader)
    b = _lease_elector(client, "b", timeline, electors, **kwargs)
    b.start()
    wait_for(lambda: b.get_leader() == "a")
    a.stop(timeout=10)
    assert not a.is_leader()
    wait_for(lambda: b.is_leader() and "b" in timeline.started)
    assert _lease_holder(client) == "b"
    b.stop(timeout=10)
    _assert_no_overlap(timeline.intervals)
    assert [who for who, _s, _e in sorted(timeline.intervals, key=lambda iv: iv[1])] == ["a", "b"]


def test_leader_gone_without_release_is_replaced_after_the_lease_duration(
    client: Client, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(REAL_CLOCK)
    a = _lease_elector(client, "a", timeline, electors)
    a.start()
    wait_for(a.is_leader)
    b = _lease_elector(client, "b", timeline, electors)
    b.start()
    wait_for(lambda: b.get_leader() == "a")
    a.stop(timeout=10)  # stops renewing but leaves its identity in the Lease
    lock = a.lock
    assert isinstance(lock, RecordingLeaseLock)
    last_renewal = lock.ok_writes[-1]
    wait_for(lambda: b.is_leader() and "b" in timeline.started)
    assert timeline.started["b"] >= last_renewal + a.lease_duration
    b.stop(timeout=10)
    _assert_no_overlap(timeline.intervals)


def test_leader_that_cannot_renew_stops_before_its_lease_expires(
    client: Client, apiserver: APIServer, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(REAL_CLOCK)
    kwargs: dict[str, Any] = {"lease_duration": 2.0, "renew_deadline": 1.0, "retry_period": 0.2}
    a = _lease_elector(client, "a", timeline, electors, **kwargs)
    a.start()
    wait_for(a.is_leader)
    b = _lease_elector(client, "b", timeline, electors, **kwargs)
    b.start()
    wait_for(lambda: b.get_leader() == "a")
    apiserver.faults.fail(verb="update", resource="leases", times=10**6, code=500)
    wait_for(lambda: "a" in timeline.stopped)
    lock = a.lock
    assert isinstance(lock, RecordingLeaseLock)
    last_renewal = lock.ok_writes[-1]
    # a gave up before anyone could consider its lease expired.
    assert timeline.stopped["a"] < last_renewal + a.lease_duration
    assert not a.is_leader()
    apiserver.faults.clear()
    wait_for(lambda: b.is_leader() and "b" in timeline.started)
    assert timeline.started["b"] >= last_renewal + a.lease_duration
    b.stop(timeout=10)
    _assert_no_overlap(timeline.intervals)


_CANDIDATE = """
import signal, sys, threading, time
from opkit.client import Client
from opkit.leaderelection import LeaderElector, LeaseLock

kubeconfig, identity = sys.argv[1], sys.argv[2]
client = Client.from_kubeconfig(kubeconfig)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

def started(leader_stop):
    print(f"EVENT started {identity} {time.monotonic()!r}", flush=True)

def stopped():
    print(f"EVENT stopped {identity} {time.monotonic()!r}", flush=True)

elector = LeaderElector(
    LeaseLock(client, "default", "processes", identity),
    lease_duration=1.0, renew_deadline=0.6, retry_period=0.2,
    on_started_leading=started, on_stopped_leading=stopped,
)
print(f"EVENT ready {identity} {time.monotonic()!r}", flush=True)
elector.run(stop)
client.close()
"""


class Candidate:
    """One elector in its own process, reporting on stdout."""

    def __init__(self, kubeconfig: str, identity: str) -> None:
        self.identity = identity
        self.events: list[tuple[str, float]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CANDIDATE, kubeconfig, identity],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "EVENT":
                self.events.append((parts[1], float(parts[3])))

    def saw(self, what: str) -> float | None:
        for kind, t in list(self.events):
            if kind == what:
                return t
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_electors_in_two_processes(kubeconfig: str, client: Client) -> None:
    candidates = [Candidate(kubeconfig, "p1"), Candidate(kubeconfig, "p2")]
    try:
        wait_for(lambda: all(c.saw("ready") is not None for c in candidates), timeout=60)
        wait_for(lambda: any(c.saw("started") is not None for c in candidates), timeout=30)
        leader = next(c for c in candidates if c.saw("started") is not None)
        other = next(c for c in candidates if c is not leader)
        # Several lease durations later, still exactly one leader.
        threading.Event().wait(2.5)
        assert other.saw("started") is None
        assert _lease_holder(client, "processes") == leader.identity

        killed_at = time.monotonic()
        leader.proc.kill()
        leader.proc.wait(10)
        wait_for(lambda: other.saw("started") is not None, timeout=30)
        taken_over = other.saw("started")
        assert taken_over is not None
        assert taken_over > killed_at
        assert _lease_holder(client, "processes") == other.identity

        other.proc.send_signal(signal.SIGTERM)
        assert other.proc.wait(30) == 0
        other.reader.join(10)
        stopped = other.saw("stopped")
        assert stopped is not None
        assert stopped >= taken_over
    finally:
        for c in candidates:
            c.close()


def test_stop_from_the_leader_callback_does_not_wait_for_itself(
    clock: FakeClock, lease: MemoryLease, electors: list[LeaderElector]
) -> None:
    timeline = Timeline(clock)
    returned = threading.Event()
    holder: list[LeaderElector] = []

    def lead_then_quit(stop: threading.Event) -> None:
        holder[0].stop()
        returned.set()

    a = _elector(
        lease,
        "a",
        clock,
        timeline,
        electors,
        on_started_leading=lead_then_quit,
        release_on_cancel=True,
    )
    holder.append(a)
    a.start()
    wait_for(returned.is_set)
    wait_for(lambda: "a" in timeline.stopped)
    assert _spec(lease)["holderIdentity"] == ""
