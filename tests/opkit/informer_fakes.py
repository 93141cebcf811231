"""An in-memory ListerWatcher for informer unit tests: RVs, history, paging, scripted faults."""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from opkit import errors
from opkit.informer import ListOptions, Obj


def make_obj(name: str, namespace: str | None = "default", **data: str) -> Obj:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "data": dict(data)}


def gone(message: str = "too old resource version") -> errors.Gone:
    return errors.Gone(410, "Expired", message)


class FakeStream:
    """One watch: replays history after ``start_rv`` and then live events until closed."""

    def __init__(self, api: FakeAPI, start_rv: int, initial: list[dict[str, Any]]) -> None:
        self.api = api
        self.pos = start_rv
        self.pending: deque[dict[str, Any]] = deque(initial)
        self.closed = False
        self.ended = False  # server side ended the stream (normal close)
        self.fail: Exception | None = None  # raise this on the next read

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        api = self.api
        with api.cond:
            while True:
                if self.closed:
                    raise StopIteration
                if self.fail is not None:
                    err, self.fail = self.fail, None
                    self.closed = True
                    raise err
                if self.pending:
                    return self.pending.popleft()
                if self.pos < api.compacted_rv:
                    self.closed = True
                    raise gone(f"too old resource version: {self.pos} ({api.compacted_rv})")
                for rv, kind, obj in api.history:
                    if rv > self.pos:
                        self.pos = rv
                        return {"type": kind, "object": copy.deepcopy(obj)}
                if self.ended:
                    self.closed = True
                    raise StopIteration
                api.cond.wait()

    def close(self) -> None:
        with self.api.cond:
            self.closed = True
            self.api.cond.notify_all()


class FakeAPI:
    """A single collection of objects with a global resourceVersion (implements ListerWatcher).

    Faults: push exceptions onto ``list_errors`` / ``watch_errors`` (raised by the next calls),
    ``compact()`` history, ``drop_watches()`` (normal close), ``break_watches(err)``.
    """

    def __init__(self, kind: str = "ConfigMap", api_version: str = "v1") -> None:
        self.kind = kind
        self.api_version = api_version
        self.cond = threading.Condition()
        self.rv = 100
        self.objects: dict[str, Obj] = {}
        self.history: list[tuple[int, str, Obj]] = []
        self.compacted_rv = 0
        self.list_calls: list[ListOptions] = []
        self.watch_calls: list[ListOptions] = []
        self.list_errors: deque[Exception] = deque()
        self.watch_errors: deque[Exception] = deque()
        self.streams: list[FakeStream] = []
        self.on_list: Callable[[ListOptions], None] | None = None
        self.refuse_watches = False  # while set, every watch start fails (server unreachable)

    # -- mutations ------------------------------------------------------------------------------

    def _key(self, obj: Obj) -> str:
        meta = obj["metadata"]
        ns = meta.get("namespace")
        return f"{ns}/{meta['name']}" if ns else str(meta["name"])

    def _record(self, kind: str, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, kind, copy.deepcopy(obj)))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, obj: Obj) -> Obj:
        with self.cond:
            obj = copy.deepcopy(obj)
            obj.setdefault("kind", self.kind)
            obj.setdefault("apiVersion", self.api_version)
            key = self._key(obj)
            assert key not in self.objects, key
            self.objects[key] = obj
            return self._record("ADDED", obj)

    def update(self, key: str, **data: str) -> Obj:
        with self.cond:
            obj = self.objects[key]
            obj["data"] = dict(data)
            return self._record("MODIFIED", obj)

    def delete(self, key: str) -> Obj:
        with self.cond:
            obj = self.objects.pop(key)
            return self._record("DELETED", obj)

    def bookmark(self) -> None:
        with self.cond:
            self.rv += 1
            self.history.append(
                (
                    self.rv,
                    "BOOKMARK",
                    {
                        "kind": self.kind,
                        "apiVersion": self.api_version,
                        "metadata": {"resourceVersion": str(self.rv)},
                    },
                )
            )
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget history: watches from older RVs and old continue tokens now get 410."""
        with self.cond:
            self.compacted_rv = self.rv
            self.history.clear()
            self.cond.notify_all()

    def drop_watches(self) -> None:
        with self.cond:
            for s in self.streams:
                s.ended = True
            self.cond.notify_all()

    def break_watches(self, err: Exception) -> None:
        with self.cond:
            for s in self.streams:
                if not s.closed:
                    s.fail = err
            self.cond.notify_all()

    def open_streams(self) -> list[FakeStream]:
        with self.cond:
            return [s for s in self.streams if not s.closed]

    def snapshot(self) -> dict[str, Obj]:
        with self.cond:
            return copy.deepcopy(self.objects)

    # -- ListerWatcher --------------------------------------------------------------------------

    def list(self, options: ListOptions) -> dict[str, Any]:
        with self.cond:
            self.list_calls.append(options)
            if self.on_list is not None:
                self.on_list(options)
            if self.list_errors:
                raise self.list_errors.popleft()
            if options.continue_:
                state = json.loads(base64.b64decode(options.continue_))
                if state["rv"] < self.compacted_rv:
                    raise gone("The provided continue parameter is too old")
                rv, start = state["rv"], state["start"]
            else:
                rv, start = self.rv, 0
            keys = sorted(self.objects)
            end = len(keys) if not options.limit else start + options.limit
            page = [copy.deepcopy(self.objects[k]) for k in keys[start:end]]
            for item in page:  # real lists carry no per-item kind/apiVersion
                item.pop("kind", None)
                item.pop("apiVersion", None)
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if end < len(keys):
                token = json.dumps({"rv": rv, "start": end}).encode()
                meta["continue"] = base64.b64encode(token).decode()
            return {
                "kind": f"{self.kind}List",
                "apiVersion": self.api_version,
                "metadata": meta,
                "items": page,
            }

    def watch(self, options: ListOptions) -> FakeStream:
        with self.cond:
            self.watch_calls.append(options)
            if self.watch_errors:
                raise self.watch_errors.popleft()
            if self.refuse_watches:
                raise errors.ConnectionFailed("connection refused", request_sent=False)
            initial: list[dict[str, Any]] = []
            if options.resource_version in ("", "0"):
                start = self.rv
                initial = [
                    {"type": "ADDED", "object": copy.deepcopy(o)} for o in self.objects.values()
                ]
            else:
                start = int(options.resource_version)
            stream = FakeStream(self, start, initial)
            self.streams.append(stream)
            return stream
