"""Reflector unit tests against an in-memory ListerWatcher, with a FakeClock where time matters."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import wait_for
from informer_fakes import FakeAPI, FakeStream, gone, make_obj

from opkit import errors
from opkit._reflector import _Backoff
from opkit.clock import FakeClock
from opkit.informer import (
    BackoffConfig,
    ListOptions,
    Obj,
    Reflector,
    ReflectorConfig,
    Store,
)

NO_JITTER = BackoffConfig(initial=0.8, factor=2.0, cap=30.0, jitter=0.0, reset_after=120.0)


class Running:
    """A reflector on its own thread, stopped and joined by the fixture."""

    def __init__(self, reflector: Reflector) -> None:
        self.reflector = reflector
        self.thread = threading.Thread(target=reflector.run, name="test-reflector")
        self.thread.start()

    def stop(self) -> None:
        self.reflector.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def _start(
        lw: Any,
        store: Any | None = None,
        *,
        clock: FakeClock | None = None,
        **config: Any,
    ) -> Running:
        config.setdefault("backoff", NO_JITTER)
        r = Reflector(
            lw,
            store if store is not None else Store(),
            name="test",
            clock=clock if clock is not None else FakeClock(),
            config=ReflectorConfig(**config),
            rng=random.Random(7),
        )
        run = Running(r)
        running.append(run)
        return run

    yield _start
    for run in running:
        run.stop()


def keys(store: Store) -> list[str]:
    return sorted(store.list_keys())


def populate(api: FakeAPI, n: int) -> None:
    for i in range(n):
        api.create(make_obj(f"cm{i:04d}", f"ns{i % 3}"))


def open_stream(api: FakeAPI, count: int = 1) -> FakeStream:
    wait_for(lambda: len(api.open_streams()) >= 1 and len(api.watch_calls) >= count, "a watch")
    return api.open_streams()[-1]


# -- list -------------------------------------------------------------------------------------


def test_initial_list_pages_of_500_from_rv_0_then_watch_from_list_rv(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 1200)
    store = Store()
    run = start(api, store)
    open_stream(api)
    assert len(api.list_calls) == 3
    first, second, third = api.list_calls
    assert (first.resource_version, first.limit, first.continue_) == ("0", 500, None)
    # Continue pages carry the token and no RV (the token pins the snapshot).
    assert second.continue_ and second.resource_version == "" and second.limit == 500
    assert third.continue_ and third.resource_version == ""
    assert len(store) == 1200
    assert run.reflector.list_requests == 3 and run.reflector.lists == 1
    [watch] = api.watch_calls
    assert watch.resource_version == str(api.rv) == run.reflector.last_sync_resource_version()
    assert watch.allow_watch_bookmarks is True
    assert watch.timeout_seconds is not None and 300 <= watch.timeout_seconds <= 600
    assert watch.read_timeout == 75.0


def test_list_items_get_kind_and_api_version(start: Callable[..., Running]) -> None:
    api = FakeAPI(kind="Secret")
    populate(api, 2)
    store = Store()
    start(api, store)
    open_stream(api)
    item = store.get_by_key("ns0/cm0000")
    assert item is not None
    assert (item["kind"], item["apiVersion"]) == ("Secret", "v1")


def test_expired_continue_token_falls_back_to_one_full_list(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 1100)

    def compact_after_first_page(options: ListOptions) -> None:
        if len(api.list_calls) == 2:  # after the first page was served
            api.create(make_obj("late"))
            api.compact()

    api.on_list = compact_after_first_page
    store = Store()
    run = start(api, store)
    open_stream(api)
    assert len(api.list_calls) == 3
    full = api.list_calls[2]
    assert (full.limit, full.continue_, full.resource_version) == (None, None, "0")
    assert len(store) == 1101
    assert run.reflector.lists == 1


def test_list_410_retries_at_once_with_empty_rv(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    populate(api, 3)
    api.list_errors.append(gone())
    store = Store()
    start(api, store)
    open_stream(api)
    assert [c.resource_version for c in api.list_calls] == ["0", ""]
    assert len(store) == 3


def test_list_too_large_rv_retries_with_empty_rv(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    populate(api, 1)
    api.list_errors.append(
        errors.Timeout(504, "Timeout", "Too large resource version: 900, current: 101")
    )
    start(api, Store())
    open_stream(api)
    assert [c.resource_version for c in api.list_calls] == ["0", ""]


def test_failed_list_backs_off_on_the_clock_then_retries(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    populate(api, 2)
    api.list_errors.extend([errors.ServerError(500, "InternalError", "boom")] * 2)
    clock = FakeClock()
    store = Store()
    start(api, store, clock=clock)
    clock.wait_for_waiters(1)
    assert len(api.list_calls) == 1
    clock.step(0.79)
    assert len(api.list_calls) == 1  # still waiting out the 0.8 s
    clock.step(0.01)
    clock.wait_for_waiters(1)
    assert len(api.list_calls) == 2
    clock.step(1.6)
    open_stream(api)
    assert len(api.list_calls) == 3
    assert len(store) == 2


# -- watch ------------------------------------------------------------------------------------


def test_watch_events_reach_store_and_advance_rv(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    populate(api, 2)
    store = Store()
    run = start(api, store)
    open_stream(api)
    api.create(make_obj("new", "ns0"))
    api.update("ns0/cm0000", k="v")
    api.delete("ns1/cm0001")
    wait_for(lambda: run.reflector.last_sync_resource_version() == str(api.rv), "rv")
    assert keys(store) == ["ns0/cm0000", "ns0/new"]
    updated = store.get_by_key("ns0/cm0000")
    assert updated is not None and updated["data"] == {"k": "v"}


def test_bookmarks_advance_the_resume_rv(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    run = start(api, Store())
    open_stream(api)
    api.bookmark()
    wait_for(lambda: run.reflector.last_sync_resource_version() == str(api.rv), "bookmark rv")
    api.drop_watches()
    open_stream(api, count=2)
    assert api.watch_calls[1].resource_version == str(api.rv)


def test_normal_close_rewatches_from_last_rv_without_relisting(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 3)
    store = Store()
    run = start(api, store)
    open_stream(api)
    api.update("ns0/cm0000", a="1")
    wait_for(lambda: run.reflector.last_sync_resource_version() == str(api.rv), "event")
    for n in range(2, 5):
        api.drop_watches()
        open_stream(api, count=n)
        assert api.watch_calls[-1].resource_version == str(api.rv)
        api.update("ns0/cm0000", a=str(n))  # an event keeps the next drop a "normal" one
        wait_for(lambda: run.reflector.last_sync_resource_version() == str(api.rv), "event")
    assert len(api.list_calls) == 1
    assert run.reflector.lists == 1 and run.reflector.relists == 0
    assert run.reflector.watches == 4


def test_watch_410_relists_from_last_rv_after_backoff(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    populate(api, 3)
    clock = FakeClock()
    store = Store()
    run = start(api, store, clock=clock)
    r = run.reflector
    open_stream(api)
    api.delete("ns0/cm0000")
    wait_for(lambda: r.last_sync_resource_version() == str(api.rv), "delete")
    last = r.last_sync_resource_version()
    api.break_watches(gone())
    clock.wait_for_waiters(1)  # backing off before the relist, like client-go
    clock.step(0.8)
    open_stream(api, count=2)
    # Relist at the last RV ("not older than"), not "" and not "0"; exact-RV relists of a
    # collection that was not paginated go unpaged.
    assert [(c.resource_version, c.limit) for c in api.list_calls] == [
        ("0", 500),
        (last, None),
    ]
    assert r.relists == 1
    assert keys(store) == ["ns1/cm0001", "ns2/cm0002"]


def test_watch_410_on_compacted_history_relists_and_converges(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 3)
    clock = FakeClock()
    store = Store()
    run = start(api, store, clock=clock)
    r = run.reflector
    open_stream(api)
    # The watch dies and the reconnect is refused, so the reflector is away...
    api.watch_errors.append(errors.ConnectionFailed("refused", request_sent=False))
    api.break_watches(errors.WatchStalled("silent"))
    clock.wait_for_waiters(1)
    # ...while objects change and the server compacts its history past our RV.
    api.delete("ns1/cm0001")
    api.create(make_obj("born", "ns0"))
    api.compact()
    clock.step(0.8)  # re-watch from the old RV -> 410 -> back off -> relist
    clock.wait_for_waiters(1)
    clock.step(1.6)
    wait_for(lambda: r.lists == 2, "relist")
    open_stream(api, count=4)
    assert keys(store) == sorted(api.snapshot())
    assert api.list_calls[1].resource_version == api.watch_calls[0].resource_version


def test_retriable_watch_start_errors_back_off_and_rewatch_without_relist(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 1)
    api.watch_errors.extend(
        [
            errors.TooManyRequests(429, "TooManyRequests", "slow down"),
            errors.ConnectionFailed("connection refused", request_sent=False),
            errors.ServerError(500, "InternalError", "oops"),
        ]
    )
    clock = FakeClock()
    start(api, Store(), clock=clock)
    for n, delay in enumerate([0.8, 1.6, 3.2], start=1):
        clock.wait_for_waiters(1)
        assert len(api.watch_calls) == n
        clock.step(delay)
    open_stream(api, count=4)
    assert len(api.list_calls) == 1
    assert {c.resource_version for c in api.watch_calls} == {str(api.rv)}


def test_retry_after_longer_than_backoff_is_honoured(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    api.watch_errors.append(
        errors.TooManyRequests(429, "TooManyRequests", "slow down", retry_after=5.0)
    )
    clock = FakeClock()
    start(api, Store(), clock=clock)
    clock.wait_for_waiters(1)
    clock.step(4.9)
    clock.wait_for_waiters(1)
    assert len(api.watch_calls) == 1
    clock.step(0.1)
    open_stream(api, count=2)


def test_non_retriable_watch_start_error_relists_after_backoff(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    api.watch_errors.append(errors.Forbidden(403, "Forbidden", "no"))
    clock = FakeClock()
    start(api, Store(), clock=clock)
    clock.wait_for_waiters(1)
    clock.step(0.8)
    open_stream(api, count=2)
    assert len(api.list_calls) == 2


def test_stalled_watch_rewatches_immediately_without_relist(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    populate(api, 1)
    run = start(api, Store())
    open_stream(api)
    api.break_watches(errors.WatchStalled("silent for 75s"))
    open_stream(api, count=2)  # no clock step needed: no backoff for a stall
    assert len(api.list_calls) == 1
    assert run.reflector.watches == 2


def test_error_event_mid_stream_backs_off_and_rewatches(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    clock = FakeClock()
    start(api, Store(), clock=clock)
    stream = open_stream(api)
    with api.cond:
        stream.pending.append(
            {
                "type": "ERROR",
                "object": {"kind": "Status", "code": 500, "reason": "InternalError"},
            }
        )
        api.cond.notify_all()
    clock.wait_for_waiters(1)
    clock.step(0.8)
    open_stream(api, count=2)
    assert len(api.list_calls) == 1


def test_broken_connection_after_events_rewatches_at_once(
    start: Callable[..., Running],
) -> None:
    api = FakeAPI()
    run = start(api, Store())
    open_stream(api)
    api.create(make_obj("a"))
    wait_for(lambda: run.reflector.watch_events == 1, "event")
    api.break_watches(errors.ConnectionFailed("reset by peer"))
    open_stream(api, count=2)
    assert len(api.list_calls) == 1


def test_very_short_empty_watch_backs_off(start: Callable[..., Running]) -> None:
    api = FakeAPI()
    clock = FakeClock()
    start(api, Store(), clock=clock)
    open_stream(api)
    api.drop_watches()  # closed at once with no events: suspicious, back off
    clock.wait_for_waiters(1)
    assert len(api.watch_calls) == 1
    clock.step(0.8)
    open_stream(api, count=2)
    assert len(api.list_calls) == 1


class _NoRVLister:
    """Lists without a resourceVersion, so the watch starts from "" (synthetic ADDEDs)."""

    def __init__(self) -> None:
        self.stream_events: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.closed = threading.Event()

    def list(self, options: ListOptions) -> dict[str, Any]:
        return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": []}

    def watch(self, options: ListOptions) -> _NoRVLister:
        assert options.resource_version == ""
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        def gen() -> Iterator[dict[str, Any]]:
            yield from self.stream_events[:2]
            self.gate.wait(10)
            yield from self.stream_events[2:]
            self.closed.wait(10)

        return gen()

    def close(self) -> None:
        self.closed.set()


def test_rv_propagation_waits_for_first_non_added_event_when_watching_from_zero(
    start: Callable[..., Running],
) -> None:
    def ev(kind: str, name: str, rv: str) -> dict[str, Any]:
        o: Obj = make_obj(name)
        o["metadata"]["resourceVersion"] = rv
        return {"type": kind, "object": o}

    lw = _NoRVLister()
    lw.stream_events = [ev("ADDED", "b", "9"), ev("ADDED", "a", "5"), ev("MODIFIED", "a", "12")]
    store = Store()
    run = start(lw, store)
    wait_for(lambda: len(store) == 2, "synthetic adds")
    assert run.reflector.last_sync_resource_version() == ""
    lw.gate.set()
    wait_for(lambda: run.reflector.last_sync_resource_version() == "12", "rv after MODIFIED")


# -- stop and backoff -------------------------------------------------------------------------


def test_stop_closes_the_open_watch_promptly() -> None:
    api = FakeAPI()
    r = Reflector(api, Store(), clock=FakeClock())
    run = Running(r)
    stream = open_stream(api)
    r.stop()
    run.thread.join(5)
    assert not run.thread.is_alive()
    assert stream.closed
    assert r.stopped


def test_stop_interrupts_a_backoff_wait() -> None:
    api = FakeAPI()
    api.list_errors.append(errors.ServerError(500, "InternalError", "boom"))
    clock = FakeClock()
    r = Reflector(api, Store(), clock=clock)
    run = Running(r)
    clock.wait_for_waiters(1)
    run.stop()  # the clock never moved: stop alone must end the wait


def test_backoff_sequence_doubles_to_cap() -> None:
    clock = FakeClock()
    b = _Backoff(NO_JITTER, clock, random.Random(1))
    delays = [b.step() for _ in range(9)]
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0])


def test_backoff_jitter_stays_within_one_to_two_times() -> None:
    clock = FakeClock()
    b = _Backoff(BackoffConfig(), clock, random.Random(3))
    base = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for d in base:
        got = b.step()
        assert d <= got < 2 * d


def test_backoff_resets_after_two_quiet_minutes() -> None:
    clock = FakeClock()
    b = _Backoff(NO_JITTER, clock, random.Random(1))
    for _ in range(4):
        b.step()
    clock.step(119)
    assert b.step() == pytest.approx(12.8)  # not quiet long enough
    clock.step(120.5)
    assert b.step() == pytest.approx(0.8)
