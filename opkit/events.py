"""EventRecorder: core/v1 Events about objects, aggregated like client-go's recorder.

Events are how an operator tells a human what it did ("kubectl describe" shows them). They
must never hurt the operator: a failure to post is logged, not raised, and repeated events do
not flood the API server -- the same (object, type, reason, message) seen again within
``window`` seconds increments ``count`` and ``lastTimestamp`` of the existing Event with one
PATCH instead of creating another (client-go's EventCorrelator, simplified: no similar-message
aggregation, no spam token bucket). The correlation cache is a bounded LRU.

With ``asynchronous=True`` events are posted by a background thread from a bounded queue
(full queue: the event is dropped with a warning, as client-go's broadcaster does), so a
reconcile never waits on the API server for an event; :meth:`EventRecorder.close` flushes and
joins it.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from opkit import errors
from opkit import log as _log
from opkit._closing import Closing
from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock

__all__ = [
    "EVENT_TYPE_NORMAL",
    "EVENT_TYPE_WARNING",
    "EventRecorder",
]

EVENT_TYPE_NORMAL: Final = "Normal"
EVENT_TYPE_WARNING: Final = "Warning"

_MAX_MESSAGE = 1024
_DEFAULT_NAMESPACE = "default"
_logger = _log.get_logger(component="opkit.events")

Obj = dict[str, Any]
_Key = tuple[str, ...]


def _timestamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    last_seen: float


@dataclass(frozen=True)
class _Pending:
    involved: dict[str, str]
    type: str
    reason: str
    message: str
    action: str | None


class _Stop:
    pass


_STOP = _Stop()


class EventRecorder(Closing):
    """Records Events for objects on behalf of ``component`` (the ``source.component``).

    ``instance`` (``reportingInstance``, default the host name) identifies this replica.
    ``window`` is how long (clock seconds) an identical event keeps counting into the same
    Event; ``max_cache_size`` bounds how many distinct events are remembered for that.
    """

    def __init__(
        self,
        client: Client,
        component: str,
        *,
        instance: str | None = None,
        clock: Clock | None = None,
        asynchronous: bool = False,
        window: float = 3600.0,
        max_cache_size: int = 4096,
        queue_size: int = 1000,
    ) -> None:
        if not component:
            raise ValueError("an EventRecorder needs a component name")
        self.component = component
        self.instance = instance or socket.gethostname()
        self.window = window
        self.max_cache_size = max_cache_size
        self._events = client.resource_for("", "v1", "events", True, "Event")
        self._clock = clock if clock is not None else REAL_CLOCK
        self._lock = threading.Lock()
        self._seen: OrderedDict[_Key, _Seen] = OrderedDict()
        self._last_nanos = 0
        self._closed = False
        self._idle = threading.Condition(threading.Lock())
        self._unposted = 0  # queued and not yet posted (asynchronous mode)
        self._queue: queue.Queue[_Pending | _Stop] | None = None
        self._thread: threading.Thread | None = None
        if asynchronous:
            self._queue = queue.Queue(maxsize=queue_size)
            self._thread = threading.Thread(
                target=self._drain, name=f"event-recorder-{component}", daemon=True
            )
            self._thread.start()

    # -- recording ------------------------------------------------------------------------------

    def event(
        self,
        obj: Mapping[str, Any],
        type: str,
        reason: str,
        message: str,
        action: str | None = None,
    ) -> None:
        """Record an event about ``obj`` (a Kubernetes object dict). Never raises."""
        try:
            pending = self._prepare(obj, type, reason, message, action)
        except Exception as exc:
            _logger.warning("event not recorded", reason=reason, error=str(exc))
            return
        if pending is None:
            return
        if self._queue is None:
            try:
                with self._lock:
                    self._post(pending)
            except Exception as exc:  # _post logs API failures; this is a last resort
                _logger.warning("event not posted", reason=reason, error=str(exc))
            return
        with self._idle:
            if self._closed:
                _logger.warning("event recorder is closed; event dropped", reason=reason)
                return
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                _logger.warning("event queue is full; event dropped", reason=reason)
                return
            self._unposted += 1

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, EVENT_TYPE_NORMAL, reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, EVENT_TYPE_WARNING, reason, message)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was posted (asynchronous mode); True if drained."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unposted == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Post what is queued (up to ``timeout`` seconds), then stop the posting thread."""
        with self._idle:
            if self._closed:
                return
            self._closed = True
        if self._queue is None or self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Out of time: drop what is left so the thread ends promptly.
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if not isinstance(item, _Stop):
                        self._done_one()
            self._queue.put(_STOP)
            self._thread.join()

    # -- internals ------------------------------------------------------------------------------

    def _prepare(
        self, obj: Mapping[str, Any], type: str, reason: str, message: str, action: str | None
    ) -> _Pending | None:
        if type not in (EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING):
            _logger.error("unsupported event type; event dropped", type=type, reason=reason)
            return None
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError("the object has no metadata.name")
        involved = {
            "apiVersion": str(obj.get("apiVersion") or ""),
            "kind": str(obj.get("kind") or ""),
            "name": str(name),
            "namespace": str(meta.get("namespace") or ""),
            "uid": str(meta.get("uid") or ""),
            "resourceVersion": str(meta.get("resourceVersion") or ""),
        }
        involved = {k: v for k, v in involved.items() if v}
        if len(message.encode()) > _MAX_MESSAGE:
            message = message.encode()[: _MAX_MESSAGE - 3].decode(errors="ignore") + "..."
        return _Pending(involved, type, reason, message, action)

    def _drain(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            item = q.get()
            if isinstance(item, _Stop):
                return
            try:
                with self._lock:
                    self._post(item)
            except Exception as exc:  # _post logs API failures; this is a last resort
                _logger.warning("event not posted", reason=item.reason, error=str(exc))
            finally:
                self._done_one()

    def _done_one(self) -> None:
        with self._idle:
            self._unposted -= 1
            if self._unposted == 0:
                self._idle.notify_all()

    def _event_name(self, obj_name: str, now: datetime) -> str:
        nanos = int(now.timestamp() * 1_000_000) * 1000
        if nanos <= self._last_nanos:
            nanos = self._last_nanos + 1
        self._last_nanos = nanos
        return f"{obj_name}.{nanos:x}"

    def _post(self, p: _Pending) -> None:
        """Create or count up the Event for ``p``; called with the lock held."""
        inv = p.involved
        key: _Key = (
            inv.get("apiVersion", ""),
            inv.get("kind", ""),
            inv.get("namespace", ""),
            inv["name"],
            inv.get("uid", ""),
            p.type,
            p.reason,
            p.message,
            p.action or "",
        )
        now = self._clock.now()
        mono = self._clock.monotonic()
        seen = self._seen.get(key)
        if seen is not None and mono - seen.last_seen <= self.window:
            patch = {"count": seen.count + 1, "lastTimestamp": _timestamp(now)}
            try:
                self._events.patch(seen.name, patch, seen.namespace)
            except errors.NotFound:
                del self._seen[key]  # expired on the server: start a new Event below
            except Exception as exc:
                _logger.warning("could not update event", event_name=seen.name, error=str(exc))
                return
            else:
                seen.count += 1
                seen.last_seen = mono
                self._seen.move_to_end(key)
                return
        namespace = inv.get("namespace") or _DEFAULT_NAMESPACE
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._event_name(inv["name"], now), "namespace": namespace},
            "involvedObject": dict(inv),
            "reason": p.reason,
            "message": p.message,
            "type": p.type,
            "source": {"component": self.component, "host": self.instance},
            "firstTimestamp": _timestamp(now),
            "lastTimestamp": _timestamp(now),
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
        if p.action:
            body["action"] = p.action
        try:
            created = self._events.create(body, namespace)
        except Exception as exc:
            _logger.warning(
                "could not create event",
                object=f"{namespace}/{inv['name']}",
                reason=p.reason,
                error=str(exc),
            )
            return
        name = str((created.get("metadata") or {}).get("name") or body["metadata"]["name"])
        self._seen[key] = _Seen(name, namespace, 1, mono)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_cache_size:
            self._seen.popitem(last=False)
