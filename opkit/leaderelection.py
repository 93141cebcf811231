"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Only one replica of an operator should act at a time. Candidates race to write their identity
into a Lease; the holder renews it every ``retry_period``. Others take over once they have seen
the Lease *unchanged* for its ``leaseDurationSeconds``, timed on their own monotonic clock from
the moment they last saw it change -- the timestamps inside the Lease are never trusted, so
clock skew between machines does not matter (a difference in clock *rate* would).

The safety rule: a leader that cannot renew gives up -- calls ``on_stopped_leading`` and sets the
stop event it handed to ``on_started_leading`` -- once ``renew_deadline`` has passed since the
start of its last successful renewal. Nobody else can judge the lease expired before
``lease_duration`` has passed since that renewal was written, and ``renew_deadline <
lease_duration``, so the old leader stops before a new one can start (as long as the callbacks
honour the stop event promptly). As in client-go there is no fencing: a process frozen for longer
than the lease (e.g. SIGSTOP) can still act late.

Differences from client-go, all on the side of safety: every request during renewal carries a
timeout of the time left before the deadline, so a hung request cannot push the give-up past it;
a leader that sees another holder in the Lease stops at once instead of at the deadline; the
record carries ``ceil(lease_duration)`` seconds (client-go truncates, which can undercut the
renew deadline); ``on_stopped_leading`` runs only if the elector led; and with
``release_on_cancel`` the Lease is released only after ``on_started_leading`` has returned.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from opkit import errors
from opkit._retry import NO_RETRY
from opkit.client import Client, Obj
from opkit.clock import REAL_CLOCK, Clock
from opkit.log import get_logger

__all__ = [
    "JITTER_FACTOR",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseLock",
    "LeaseNotRenewedError",
    "Lock",
    "format_micro_time",
    "parse_micro_time",
]

_log = get_logger(component="opkit.leaderelection")

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: acquire attempts come every ``retry_period * [1, 2.2)``."""

_POLL = 0.05
"""Longest stretch (clock seconds) a wait goes without looking at the caller's stop event."""


# -- MicroTime ------------------------------------------------------------------------------------


def format_micro_time(dt: datetime) -> str:
    """RFC 3339 with microseconds in UTC, as ``metav1.MicroTime`` marshals."""
    if dt.tzinfo is None:
        raise ValueError("MicroTime needs a timezone-aware datetime")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


def parse_micro_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (any fraction precision, ``Z`` or an offset) to UTC."""
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    dt = datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        dt = dt - offset if m.group(9) == "+" else dt + offset
    return dt


# -- the record and the lock ----------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderElectionRecord:
    """What the Lease spec says (client-go ``resourcelock.LeaderElectionRecord``)."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    leader_transitions: int = 0
    strategy: str | None = None
    preferred_holder: str | None = None

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.leader_transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        if self.strategy:
            spec["strategy"] = self.strategy
        if self.preferred_holder:
            spec["preferredHolder"] = self.preferred_holder
        return spec

    @classmethod
    def from_spec(cls, spec: Any) -> LeaderElectionRecord:
        if not isinstance(spec, dict):
            return cls()

        def when(key: str) -> datetime | None:
            value = spec.get(key)
            if not isinstance(value, str) or not value:
                return None
            try:
                return parse_micro_time(value)
            except ValueError:
                return None

        return cls(
            holder_identity=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=when("acquireTime"),
            renew_time=when("renewTime"),
            leader_transitions=int(spec.get("leaseTransitions") or 0),
            strategy=spec.get("strategy") or None,
            preferred_holder=spec.get("preferredHolder") or None,
        )

    def raw(self) -> bytes:
        """Canonical bytes: two reads of an unchanged Lease compare equal."""
        return json.dumps(self.to_spec(), sort_keys=True, separators=(",", ":")).encode()


class Lock(Protocol):
    """Where the record lives. ``timeout`` bounds each request (seconds, None = default)."""

    @property
    def identity(self) -> str: ...

    def describe(self) -> str: ...

    def get(self, *, timeout: float | None = None) -> tuple[LeaderElectionRecord, bytes]:
        """The record and its raw bytes; raises :class:`errors.NotFound` if there is none."""
        ...

    def create(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None: ...

    def update(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        """Write over the last read or written version (optimistic: Conflict if it changed)."""
        ...


class LeaseLock:
    """A :class:`Lock` on a ``coordination.k8s.io/v1`` Lease.

    Updates carry the resourceVersion of the Lease last read or written, so a write based on
    a stale view fails with Conflict instead of clobbering another candidate. Requests are not
    retried here: the elector's own loop is the retry.
    """

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        *,
        labels: dict[str, str] | None = None,
    ) -> None:
        self._client = client.with_options(retry=NO_RETRY)
        self.namespace = namespace
        self.name = name
        self._identity = identity
        self._labels = dict(labels or {})
        self._lease: Obj | None = None
        self._mutex = threading.Lock()

    @property
    def identity(self) -> str:
        return self._identity

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _leases(self, timeout: float | None) -> Any:
        client = self._client if timeout is None else self._client.with_options(timeout=timeout)
        return client.resource_for("coordination.k8s.io", "v1", "leases", True, "Lease")

    def get(self, *, timeout: float | None = None) -> tuple[LeaderElectionRecord, bytes]:
        lease = self._leases(timeout).get(self.name, self.namespace)
        with self._mutex:
            self._lease = lease
        record = LeaderElectionRecord.from_spec(lease.get("spec"))
        return record, record.raw()

    def create(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self._labels:
            meta["labels"] = dict(self._labels)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": record.to_spec(),
        }
        lease = self._leases(timeout).create(body, self.namespace)
        with self._mutex:
            self._lease = lease

    def update(self, record: LeaderElectionRecord, *, timeout: float | None = None) -> None:
        with self._mutex:
            if self._lease is None:
                raise RuntimeError("lease not initialized, call get or create first")
            lease = copy.deepcopy(self._lease)
        lease["spec"] = record.to_spec()
        updated = self._leases(timeout).update(lease, self.namespace)
        with self._mutex:
            self._lease = updated


# -- the elector ----------------------------------------------------------------------------------


class LeaseNotRenewedError(RuntimeError):
    """:meth:`LeaderElector.check` failed: we lead but have not renewed for too long."""


def _master_status(name: str, value: int) -> None:
    with contextlib.suppress(Exception):
        from opkit import metrics

        gauge = getattr(metrics, "LEADER_ELECTION_MASTER_STATUS", None)
        if gauge is not None:
            gauge.labels(name=name).set(value)


def _slowpath(name: str) -> None:
    with contextlib.suppress(Exception):
        from opkit import metrics

        counter = getattr(metrics, "LEADER_ELECTION_SLOWPATH_TOTAL", None)
        if counter is not None:
            counter.labels(name=name).inc()


class LeaderElector:
    """Runs for leadership on a :class:`Lock` and calls back when it starts and stops leading.

    ``on_started_leading(stop_event)`` runs on its own thread when this process becomes the
    leader; ``stop_event`` is set when leadership ends and the work must stop.
    ``on_stopped_leading()`` runs on the elector's thread when leadership ends for any reason
    (lost, stopped); it is not called if the elector never led. ``on_new_leader(identity)``
    runs on a short-lived thread whenever the observed holder changes.
    """

    def __init__(
        self,
        lock: Lock,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[threading.Event], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        release_on_cancel: bool = False,
        clock: Clock = REAL_CLOCK,
        name: str = "",
        rand: Callable[[], float] = random.random,
    ) -> None:
        if lease_duration <= renew_deadline:
            raise ValueError("leaseDuration must be greater than renewDeadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("renewDeadline must be greater than retryPeriod*JitterFactor")
        if lease_duration <= 0:
            raise ValueError("leaseDuration must be greater than zero")
        if renew_deadline <= 0:
            raise ValueError("renewDeadline must be greater than zero")
        if retry_period <= 0:
            raise ValueError("retryPeriod must be greater than zero")
        if lock is None:
            raise ValueError("Lock must not be nil.")
        if not lock.identity:
            raise ValueError("Lock identity is empty")
        self.lock = lock
        self.lease_duration = float(lease_duration)
        self.renew_deadline = float(renew_deadline)
        self.retry_period = float(retry_period)
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self.name = name or lock.describe()
        self._rand = rand
        self._lease_seconds = max(1, math.ceil(self.lease_duration))

        self._state = threading.Lock()
        self._observed = LeaderElectionRecord()
        self._observed_raw = b""
        self._observed_time = 0.0
        self._reported_leader = ""
        self._leading = False
        self._renew_start = 0.0

        self._wake = threading.Condition(threading.Lock())
        self._stop_event = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._helpers: list[threading.Thread] = []
        self._leader_thread: threading.Thread | None = None

    # -- status -------------------------------------------------------------------------------

    @property
    def identity(self) -> str:
        return self.lock.identity

    def is_leader(self) -> bool:
        """True between becoming leader and the end of leadership (before on_stopped_leading)."""
        with self._state:
            return self._leading and self._observed.holder_identity == self.identity

    def get_leader(self) -> str:
        """The holder identity last observed ("" if none)."""
        with self._state:
            return self._observed.holder_identity

    def check(self, max_tolerable_expired_lease: float = 0.0) -> None:
        """Health check for ``/healthz`` (client-go ``HealthzAdaptor``).

        Raises :class:`LeaseNotRenewedError` if we lead but the last successful renewal is older
        than ``lease_duration + max_tolerable_expired_lease`` (a wedged elector). Candidates
        are always healthy.
        """
        with self._state:
            if not self._leading or self._observed.holder_identity != self.identity:
                return
            age = self.clock.monotonic() - self._observed_time
        if age > self.lease_duration + max_tolerable_expired_lease:
            raise LeaseNotRenewedError(
                f"failed election to renew leadership on lease {self.lock.describe()}"
            )

    # -- thread helpers -----------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Run the election on a new (daemon) thread; :meth:`stop` ends it."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("leader elector already running")
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=self.run,
            args=(self._stop_event,),
            name=f"leader-elector-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        """Ask the election to end and wait (up to ``timeout`` real seconds) for it."""
        self._stop_event.set()
        self._interrupt()
        thread = self._thread
        current = threading.current_thread()
        # Called from a callback, joining would wait for ourselves.
        if thread is not None and current not in (thread, self._leader_thread):
            thread.join(timeout)

    def _interrupt(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- the run loop -------------------------------------------------------------------------

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Campaign, lead, and return when ``stop_event`` is set or leadership is lost."""
        stop = stop_event if stop_event is not None else threading.Event()
        self._stop_event = stop
        self._abort.clear()
        _master_status(self.name, 0)
        leader_stop = threading.Event()
        started: threading.Thread | None = None
        led = False
        lost = False
        try:
            if not self._acquire(stop):
                return
            led = True
            started = threading.Thread(
                target=self._run_started,
                args=(leader_stop,),
                name=f"leader-{self.name}",
                daemon=True,
            )
            self._leader_thread = started
            started.start()
            lost = self._renew(stop)
        finally:
            if led:
                self._finish(leader_stop, started, lost=lost)
            self._join_helpers()

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._abort.is_set()

    def _sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds`` of clock time; True if asked to stop meanwhile."""
        deadline = self.clock.monotonic() + seconds
        with self._wake:
            while not self._stopping(stop):
                now = self.clock.monotonic()
                if now >= deadline:
                    return False
                self.clock.wait_until(self._wake, min(deadline, now + _POLL))
        return True

    def _acquire(self, stop: threading.Event) -> bool:
        desc = self.lock.describe()
        _log.info("attempting to acquire leader lease", lease=desc, identity=self.identity)
        while not self._stopping(stop):
            start = self.clock.monotonic()
            ok = self._try_acquire_or_renew(timeout=max(1.0, self.renew_deadline / 2))
            self._maybe_report_transition()
            if ok:
                with self._state:
                    self._leading = True
                    self._renew_start = start
                _master_status(self.name, 1)
                _log.info("successfully acquired lease", lease=desc, identity=self.identity)
                return True
            delay = self.retry_period * (1.0 + self._rand() * JITTER_FACTOR)
            if self._sleep(delay, stop):
                return False
        return False

    def _renew(self, stop: threading.Event) -> bool:
        """Keep the lease; returns True if leadership was lost, False if asked to stop."""
        desc = self.lock.describe()
        while True:
            if self._sleep(self.retry_period, stop):
                return False
            while True:
                deadline = self._renew_start + self.renew_deadline
                now = self.clock.monotonic()
                if now >= deadline:
                    _log.warning("failed to renew lease: deadline passed", lease=desc)
                    return True
                ok = self._try_acquire_or_renew(timeout=deadline - now)
                self._maybe_report_transition()
                if ok:
                    self._renew_start = now
                    break
                holder = self.get_leader()
                if holder and holder != self.identity:
                    _log.warning("lease taken over", lease=desc, holder=holder)
                    return True
                if self._stopping(stop):
                    return False
                wait = min(self.retry_period, deadline - self.clock.monotonic())
                if wait > 0 and self._sleep(wait, stop):
                    return False

    def _finish(
        self, leader_stop: threading.Event, started: threading.Thread | None, *, lost: bool
    ) -> None:
        leader_stop.set()
        with self._state:
            self._leading = False
        _master_status(self.name, 0)
        if lost:
            self._call_stopped()
            if started is not None:
                started.join(self.lease_duration)
            return
        released = False
        if self.release_on_cancel:
            # Release only once the leader's work has ended, and only while the lease is
            # surely still ours (before the renew deadline of the last renewal).
            if started is not None:
                remaining = self._renew_start + self.renew_deadline - self.clock.monotonic()
                started.join(max(0.0, remaining))
            if started is None or not started.is_alive():
                released = self._release()
            else:
                _log.warning("leader callback still running; not releasing the lease")
        self._call_stopped()
        if started is not None and started.is_alive():
            started.join(self.lease_duration)
        _log.info("stopped leading", lease=self.lock.describe(), released=released)

    def _run_started(self, leader_stop: threading.Event) -> None:
        if self.on_started_leading is None:
            return
        try:
            self.on_started_leading(leader_stop)
        except Exception:
            _log.exception("on_started_leading failed; giving up leadership")
            self._abort.set()
            self._interrupt()

    def _call_stopped(self) -> None:
        if self.on_stopped_leading is None:
            return
        try:
            self.on_stopped_leading()
        except Exception:
            _log.exception("on_stopped_leading failed")

    def _join_helpers(self) -> None:
        for t in self._helpers:
            t.join(1.0)
        self._helpers = [t for t in self._helpers if t.is_alive()]

    # -- one attempt ----------------------------------------------------------------------------

    def _lease_valid(self, now: float) -> bool:
        return self._observed_time + self._observed.lease_duration_seconds > now

    def _set_observed(self, record: LeaderElectionRecord, raw: bytes | None = None) -> None:
        with self._state:
            self._observed = record
            self._observed_raw = raw if raw is not None else record.raw()
            self._observed_time = self.clock.monotonic()

    def _try_acquire_or_renew(self, timeout: float | None) -> bool:
        """client-go ``tryAcquireOrRenew``; ``timeout`` is the time left for this attempt."""
        attempt_deadline = None if timeout is None else self.clock.monotonic() + timeout

        def left() -> float | None:
            if attempt_deadline is None:
                return None
            return max(0.001, attempt_deadline - self.clock.monotonic())

        now_wall = self.clock.now()
        record = LeaderElectionRecord(
            holder_identity=self.identity,
            lease_duration_seconds=self._lease_seconds,
            acquire_time=now_wall,
            renew_time=now_wall,
        )
        with self._state:
            observed = self._observed
            leader = observed.holder_identity == self.identity
            valid = self._lease_valid(self.clock.monotonic())

        # 1. Fast path: we lead and the lease is valid -- write over our cached copy.
        if leader and valid:
            mine = replace(
                record,
                acquire_time=observed.acquire_time,
                leader_transitions=observed.leader_transitions,
            )
            try:
                self.lock.update(mine, timeout=left())
            except (errors.KubernetesError, RuntimeError) as exc:
                _log.info(
                    "optimistic lease update failed, falling back to slow path", error=str(exc)
                )
            else:
                self._set_observed(mine)
                return True

        # 2. Slow path: read the lease (create it if it does not exist).
        try:
            current, raw = self.lock.get(timeout=left())
        except errors.NotFound:
            try:
                self.lock.create(record, timeout=left())
            except errors.KubernetesError as exc:
                _log.info("error initially creating leader election record", error=str(exc))
                return False
            self._set_observed(record)
            return True
        except errors.KubernetesError as exc:
            _log.info("error retrieving lease", lease=self.lock.describe(), error=str(exc))
            return False

        # 3. A changed record restarts our view of its age.
        with self._state:
            if raw != self._observed_raw:
                self._observed = current
                self._observed_raw = raw
                self._observed_time = self.clock.monotonic()
            leader = self._observed.holder_identity == self.identity
            valid = self._lease_valid(self.clock.monotonic())
        if current.holder_identity and valid and not leader:
            _log.debug(
                "lock is held and has not yet expired",
                lease=self.lock.describe(),
                holder=current.holder_identity,
            )
            return False

        # 4. Take or keep it.
        if leader:
            record = replace(
                record,
                acquire_time=current.acquire_time,
                leader_transitions=current.leader_transitions,
            )
            _slowpath(self.name)
        else:
            record = replace(record, leader_transitions=current.leader_transitions + 1)
        try:
            self.lock.update(record, timeout=left())
        except (errors.KubernetesError, RuntimeError) as exc:
            _log.info("failed to update lease", lease=self.lock.describe(), error=str(exc))
            return False
        self._set_observed(record)
        return True

    def _maybe_report_transition(self) -> None:
        with self._state:
            holder = self._observed.holder_identity
            if holder == self._reported_leader:
                return
            self._reported_leader = holder
        if holder:
            _log.info("new leader elected", lease=self.lock.describe(), leader=holder)
        if holder and self.on_new_leader is not None:
            callback = self.on_new_leader

            def report() -> None:
                try:
                    callback(holder)
                except Exception:
                    _log.exception("on_new_leader failed")

            t = threading.Thread(target=report, name=f"leader-report-{self.name}", daemon=True)
            self._helpers = [h for h in self._helpers if h.is_alive()]
            self._helpers.append(t)
            t.start()

    def _release(self) -> bool:
        """Clear the holder so a successor need not wait out the lease (ReleaseOnCancel)."""
        deadline = self.clock.monotonic() + self.renew_deadline
        while self.clock.monotonic() < deadline:
            timeout = max(0.001, deadline - self.clock.monotonic())
            try:
                current, _ = self.lock.get(timeout=timeout)
            except errors.KubernetesError as exc:
                _log.info("failed to read lease for release", error=str(exc))
                return False
            if current.holder_identity != self.identity:
                return True
            now_wall = self.clock.now()
            released = LeaderElectionRecord(
                holder_identity="",
                lease_duration_seconds=1,
                acquire_time=now_wall,
                renew_time=now_wall,
                leader_transitions=current.leader_transitions,
            )
            try:
                self.lock.update(released, timeout=max(0.001, deadline - self.clock.monotonic()))
            except errors.Conflict:
                continue
            except errors.KubernetesError as exc:
                _log.info("failed to release lease", error=str(exc))
                return False
            self._set_observed(released)
            _log.info("released lease", lease=self.lock.describe())
            return True
        return False
