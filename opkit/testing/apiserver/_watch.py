"""Watch streams (WATCH-1..9): one chunked HTTP response of newline-delimited events.

A session owns a store :class:`Watcher` (its private queue), filters events through the
namespace, label and field selectors (objects entering or leaving the selection become
ADDED / DELETED, SEL-3), and writes each event as its own chunk. Deadlines use the
server clock; waits are short real-time polls so a closed client, a fault or a stop is
noticed quickly.
"""

from __future__ import annotations

import contextlib
import queue
import random
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from opkit.clock import Clock

from ._faults import FaultInjector
from ._store import ExpiredError, Store, Stored, StoreEvent, Watcher, dumps
from ._types import ResourceType

__all__ = ["WatchSession"]

Obj = dict[str, Any]
_POLL = 0.2
_FLUSH_BYTES = 64 * 1024


def _event_line(type_: str, raw: bytes) -> bytes:
    return b'{"type":"' + type_.encode() + b'","object":' + raw + b"}\n"


class WatchSession:
    """Streams one watch; :meth:`run` returns True when it ended cleanly."""

    def __init__(
        self,
        *,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        to_view: Callable[[ResourceType, Obj], Obj],
        matches: Callable[[Obj], bool] | None,
        start_rev: int | None,
        timeout: float | None,
        bookmarks: bool,
        bookmark_interval: float,
        send_initial_events: bool,
        table: Callable[[Obj, bool], Obj] | None,
        clock: Clock,
        faults: FaultInjector,
        resources: tuple[str, ...],
        write: Callable[[bytes], None],
        sock: socket.socket | None,
    ) -> None:
        self.store = store
        self.rt = rt
        self.namespace = namespace
        self.to_view = to_view
        self.matches = matches
        self.start_rev = start_rev
        self.timeout = timeout if timeout is not None else random.uniform(1800, 3600)
        self.bookmarks = bookmarks
        self.bookmark_interval = bookmark_interval
        self.send_initial_events = send_initial_events
        self.table = table
        self.clock = clock
        self.faults = faults
        self.resources = resources
        self._write_out = write
        self._buf: list[bytes] = []
        self._buffered = 0
        self.sock = sock
        self.dropped = threading.Event()
        self.ended = threading.Event()
        self._watcher: Watcher | None = None
        self._first_table = True

    # -- control from other threads -------------------------------------------------------

    def drop(self) -> None:
        """Close the stream abruptly (fault injection, server stop)."""
        self.dropped.set()
        self._wake()

    def end(self) -> None:
        """Finish the stream cleanly (the resource stopped being served)."""
        self.ended.set()
        self._wake()

    def _wake(self) -> None:
        w = self._watcher
        if w is not None:
            w.queue.put(None)

    def close(self) -> None:
        """Release the store watcher (idempotent)."""
        w = self._watcher
        if w is not None:
            w.stop()

    # -- the stream ----------------------------------------------------------------------------

    def start(self) -> tuple[list[Stored], int] | ExpiredError:
        """Register with the store before the response starts (so no event is missed)."""
        try:
            w, initial, rev = self.store.watch(self.rt.storage, self.namespace, self.start_rev)
        except ExpiredError as e:
            return e
        self._watcher = w
        return initial, rev

    def _write(self, line: bytes) -> None:
        """Queue one event line; lines go out together at the next :meth:`_flush`."""
        self._buf.append(line)
        self._buffered += len(line)
        if self._buffered >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._buffered = 0
            self._write_out(data)

    def send_expired(self, err: ExpiredError) -> None:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": str(err),
            "reason": "Expired",
            "code": 410,
        }
        self._write(_event_line("ERROR", dumps(status)))
        self._flush()

    def run(self, initial: list[Stored], rev: int) -> bool:
        w = self._watcher
        assert w is not None
        try:
            clean = self._loop(w, initial, rev)
            if clean:
                self._flush()
            return clean
        except (OSError, ValueError):
            return False
        finally:
            w.stop()

    def _loop(self, w: Watcher, initial: list[Stored], rev: int) -> bool:
        clock = self.clock
        start = clock.monotonic()
        deadline = start + self.timeout
        for stored in initial:
            view = self.to_view(self.rt, stored.obj)
            if self.matches is None or self.matches(view):
                self._send("ADDED", view, stored.raw if view is stored.obj else None)
        if self.send_initial_events:
            self._bookmark(rev, initial_end=True)
        self._flush()
        next_bookmark = start + self.bookmark_interval
        while True:
            if self.dropped.is_set():
                return False
            if self.ended.is_set():
                return True
            if self.faults.stalled(self.resources):
                self.faults.wait_stall_change(_POLL)
                if self._client_gone():
                    return False
                continue
            now = clock.monotonic()
            if now >= deadline:
                if self.bookmarks:
                    bm = w.bookmark_rev()
                    if bm is not None:
                        self._bookmark(bm)
                return True
            wait = min(_POLL, deadline - now)
            if self.bookmarks:
                wait = max(0.0, min(wait, next_bookmark - now))
            try:
                ev = w.queue.get(timeout=wait) if wait > 0 else w.queue.get_nowait()
            except queue.Empty:
                ev = None
            else:
                if ev is None:
                    return self.ended.is_set() and not self.dropped.is_set()
                self._deliver(ev)
                # Drain what is already queued without waiting.
                while not self.dropped.is_set() and not self.faults.stalled(self.resources):
                    try:
                        nxt = w.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        return self.ended.is_set() and not self.dropped.is_set()
                    self._deliver(nxt)
                self._flush()
            if self.bookmarks and clock.monotonic() >= next_bookmark:
                bm = w.bookmark_rev()
                if bm is not None:
                    self._bookmark(bm)
                    self._flush()
                    next_bookmark = clock.monotonic() + self.bookmark_interval
            if ev is None and self._client_gone():
                return False

    def _client_gone(self) -> bool:
        sock = self.sock
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _deliver(self, ev: StoreEvent) -> None:
        rt = self.rt
        view = self.to_view(rt, ev.obj)
        raw = ev.raw if view is ev.obj else None
        type_ = ev.type
        if self.matches is not None:
            if type_ == "ADDED":
                if not self.matches(view):
                    return
            elif type_ == "DELETED":
                prev = ev.prev
                was = self.matches(self.to_view(rt, prev.obj)) if prev is not None else True
                if not was:
                    return
            else:
                now_match = self.matches(view)
                prev = ev.prev
                was = self.matches(self.to_view(rt, prev.obj)) if prev is not None else False
                if now_match and not was:
                    type_ = "ADDED"
                elif was and not now_match:
                    type_ = "DELETED"
                elif not now_match:
                    return
        self._send(type_, view, raw)

    def _send(self, type_: str, view: Obj, raw: bytes | None) -> None:
        if self.table is not None:
            table = self.table(view, self._first_table)
            self._first_table = False
            self._write(_event_line(type_, dumps(table)))
            return
        self._write(_event_line(type_, raw if raw is not None else dumps(view)))

    def _bookmark(self, rev: int, *, initial_end: bool = False) -> None:
        meta: Obj = {"resourceVersion": str(rev)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta}
        self._write(_event_line("BOOKMARK", dumps(obj)))


def close_quietly(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
