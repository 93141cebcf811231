"""opkit.client: retry policy, watch stream parsing, and the client against the embedded server."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import urllib3

from opkit import errors
from opkit._retry import NO_RETRY, RetryPolicy, call_with_retries, is_retryable
from opkit.client import Client, WatchStream, _transport_error
from opkit.clock import FakeClock

# -- retry decisions ----------------------------------------------------------------------------


class RecordingClock(FakeClock):
    """A fake clock whose sleep advances time and remembers how long it was asked to wait."""

    def __init__(self) -> None:
        super().__init__(auto_advance=True)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


def api_error(code: int, reason: str = "", retry_after: float | None = None) -> errors.ApiError:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    body = json.dumps({"kind": "Status", "code": code, "reason": reason, "message": "x"})
    return errors.from_status(code, body, headers)


REFUSED = errors.ConnectionFailed("refused", request_sent=False)
RESET = errors.ConnectionFailed("reset", request_sent=True)
READ_TIMEOUT = errors.ReadTimeout("slow")


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (api_error(429, "TooManyRequests"), False, True),
        (api_error(429, "TooManyRequests", 1), False, True),
        (api_error(503, "ServiceUnavailable", 2), False, True),
        (api_error(503, "ServiceUnavailable"), False, False),
        (api_error(503, "ServiceUnavailable"), True, True),
        (api_error(500, "InternalError"), False, False),
        (api_error(500, "InternalError"), True, True),
        (api_error(500, "InternalError", 1), False, False),
        (api_error(504, "Timeout"), True, True),
        (api_error(502), False, False),
        (REFUSED, False, True),
        (REFUSED, True, True),
        (RESET, False, False),
        (RESET, True, True),
        (READ_TIMEOUT, False, False),
        (READ_TIMEOUT, True, True),
        (api_error(409, "Conflict"), True, False),
        (api_error(404, "NotFound"), True, False),
        (api_error(422, "Invalid"), True, False),
        (api_error(410, "Expired"), True, False),
        (ValueError("bug"), True, False),
    ],
)
def test_is_retryable(exc: BaseException, idempotent: bool, expected: bool) -> None:
    assert is_retryable(exc, idempotent=idempotent) is expected


def failing(excs: list[BaseException], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= len(excs):
            raise excs[len(calls) - 1]
        return result

    return fn, calls


def test_retry_after_is_honoured() -> None:
    clock = RecordingClock()
    fn, calls = failing(
        [api_error(429, "TooManyRequests", 3), api_error(429, "TooManyRequests", 1)]
    )
    assert call_with_retries(fn, policy=RetryPolicy(), clock=clock, idempotent=False) == "ok"
    assert len(calls) == 3
    assert clock.sleeps == [3.0, 1.0]


def test_exponential_backoff_with_jitter() -> None:
    clock = RecordingClock()
    policy = RetryPolicy(max_attempts=6, initial_backoff=0.5, max_backoff=3.0, rand=lambda: 0.5)
    fn, calls = failing([api_error(500, "InternalError")] * 5)
    assert call_with_retries(fn, policy=policy, clock=clock, idempotent=True) == "ok"
    assert len(calls) == 6
    # 0.5, 1, 2, 3 (capped), 3 -- each stretched by rand * jitter = 50 %.
    assert clock.sleeps == pytest.approx([0.75, 1.5, 3.0, 4.5, 4.5])


def test_attempts_are_bounded() -> None:
    clock = RecordingClock()
    policy = RetryPolicy(max_attempts=3, rand=lambda: 0.0)
    fn, calls = failing([api_error(503, "ServiceUnavailable")] * 10)
    with pytest.raises(errors.ServiceUnavailable):
        call_with_retries(fn, policy=policy, clock=clock, idempotent=True)
    assert len(calls) == 3
    assert len(clock.sleeps) == 2


def test_elapsed_time_is_bounded() -> None:
    clock = RecordingClock()
    policy = RetryPolicy(max_attempts=100, max_elapsed=10.0)
    fn, calls = failing([api_error(429, "TooManyRequests", 4)] * 10)
    with pytest.raises(errors.TooManyRequests) as info:
        call_with_retries(fn, policy=policy, clock=clock, idempotent=False)
    # Waits of 4 s: the third would end 12 s after the start, past the 10 s budget.
    assert clock.sleeps == [4.0, 4.0]
    assert len(calls) == 3
    assert info.value.retry_after == 4.0


def test_unsafe_failures_are_not_repeated() -> None:
    clock = RecordingClock()
    for exc in (READ_TIMEOUT, RESET, api_error(500, "InternalError")):
        fn, calls = failing([exc])
        with pytest.raises(type(exc)):
            call_with_retries(fn, policy=RetryPolicy(), clock=clock, idempotent=False)
        assert len(calls) == 1
    assert clock.sleeps == []


def test_no_retry_policy() -> None:
    clock = RecordingClock()
    fn, calls = failing([api_error(429, "TooManyRequests", 1)])
    with pytest.raises(errors.TooManyRequests):
        call_with_retries(fn, policy=NO_RETRY, clock=clock, idempotent=True)
    assert len(calls) == 1


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_backoff=-1)


def test_transport_error_classification() -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", 1)
    refused = urllib3.exceptions.NewConnectionError(pool, "refused")  # type: ignore[arg-type]
    assert isinstance(_transport_error(refused), errors.ConnectionFailed)
    assert _transport_error(refused).request_sent is False
    wrapped = urllib3.exceptions.MaxRetryError(pool, "/x", refused)
    assert _transport_error(wrapped).request_sent is False
    connect_timeout = urllib3.exceptions.ConnectTimeoutError(pool, "slow connect")
    assert _transport_error(connect_timeout).request_sent is False
    read_timeout = urllib3.exceptions.ReadTimeoutError(pool, "/x", "read timed out")
    assert isinstance(_transport_error(read_timeout), errors.ReadTimeout)
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    assert isinstance(_transport_error(reset), errors.ConnectionFailed)
    assert _transport_error(reset).request_sent is True
    assert isinstance(_transport_error(TimeoutError()), errors.ReadTimeout)


# -- WatchStream parsing over a scripted response ---------------------------------------------


class ScriptedResponse:
    """Stands in for urllib3's response: hands out the scripted chunks, then EOF."""

    def __init__(self, chunks: list[bytes | BaseException]) -> None:
        self.chunks = list(chunks)
        self.closed = False
        self.released = False
        self.shut = False

    def read1(self, amt: int) -> bytes:
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk

    def shutdown(self) -> None:
        self.shut = True

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


def event(kind: str, name: str, rv: str) -> bytes:
    obj = {"kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": rv}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def stream(chunks: list[bytes | BaseException]) -> tuple[WatchStream, ScriptedResponse]:
    resp = ScriptedResponse(chunks)
    return WatchStream(resp, read_timeout=5.0, description="/api/v1/configmaps"), resp  # type: ignore[arg-type]


def test_watch_stream_splits_events_across_chunks() -> None:
    one, two = event("ADDED", "a", "5"), event("MODIFIED", "a", "6")
    bookmark = json.dumps(
        {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "9"}}}
    ).encode()
    data = one + two + b"\n" + bookmark  # a blank line, and a last event without newline
    w, resp = stream([data[:7], data[7:40], data[40:]])
    got = list(w)
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED", "BOOKMARK"]
    assert got[1]["object"]["metadata"]["resourceVersion"] == "6"
    assert w.resource_version == "9"
    assert w.closed
    assert resp.closed
    assert resp.released


def test_watch_stream_raises_gone_with_the_status() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": "too old resource version: 1 (5)",
        "reason": "Expired",
        "code": 410,
    }
    error_line = json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
    w, resp = stream([event("ADDED", "a", "5") + error_line])
    assert next(w)["type"] == "ADDED"
    with pytest.raises(errors.Gone) as info:
        next(w)
    assert info.value.body == status
    assert info.value.message == "too old resource version: 1 (5)"
    assert resp.released
    with pytest.raises(StopIteration):
        next(w)


def test_watch_stream_read_timeout_is_a_stall() -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", 1)
    timeout = urllib3.exceptions.ReadTimeoutError(pool, "/x", "Read timed out.")
    w, resp = stream([event("ADDED", "a", "5"), timeout])
    assert next(w)["type"] == "ADDED"
    with pytest.raises(errors.WatchStalled):
        next(w)
    assert resp.closed
    assert resp.released


def test_watch_stream_broken_connection() -> None:
    reset = urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError())
    w, resp = stream([reset])
    with pytest.raises(errors.ConnectionFailed):
        next(w)
    assert resp.released


def test_watch_stream_close_and_context_manager() -> None:
    w, resp = stream([event("ADDED", "a", "5"), event("ADDED", "b", "6")])
    with w:
        assert next(w)["object"]["metadata"]["name"] == "a"
    assert resp.shut
    assert resp.closed
    assert resp.released
    with pytest.raises(StopIteration):
        next(w)
    w.close()  # idempotent


def test_watch_stream_close_from_another_thread_unblocks_the_reader() -> None:
    a, b = socket.socketpair()
    try:
        reader_done = threading.Event()
        got: list[Any] = []

        class SocketResponse(ScriptedResponse):
            def read1(self, amt: int) -> bytes:
                try:
                    return b.recv(amt)
                except OSError:
                    return b""

            def shutdown(self) -> None:
                b.shutdown(socket.SHUT_RD)

        w = WatchStream(SocketResponse([]), read_timeout=5.0)  # type: ignore[arg-type]

        def read() -> None:
            got.extend(w)
            reader_done.set()

        t = threading.Thread(target=read)
        t.start()
        a.sendall(event("ADDED", "a", "5"))
        w.close()
        t.join(10)
        assert reader_done.is_set()
        assert len(got) <= 1
    finally:
        a.close()
        b.close()


def test_watch_stream_malformed_line() -> None:
    w, _ = stream([b"{not json}\n"])
    with pytest.raises(errors.ConnectionFailed, match="malformed"):
        next(w)


# -- against the embedded API server ------------------------------------------------------------

if TYPE_CHECKING:
    from opkit.testing.apiserver.server import APIServer


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
def client(kubeconfig: str, clock: RecordingClock) -> Iterator[Client]:
    c = Client.from_kubeconfig(kubeconfig, clock=clock)
    yield c
    c.close()


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def requests(server: APIServer, method: str, path: str) -> int:
    return sum(1 for m, p, _q, _s in server.request_log if m == method and p == path)


def assert_requests(server: APIServer, method: str, path: str, expected: int) -> None:
    """Exactly ``expected`` matching requests reached the server.

    The server appends to its request log after sending the answer, so the last request of a
    call that just returned may show up a moment later.
    """
    _eventually(lambda: requests(server, method, path) >= expected)
    assert requests(server, method, path) == expected


def test_kubeconfig_client_talks_to_the_server(client: Client, apiserver: APIServer) -> None:
    assert client.host == apiserver.url
    version = client.server_version()
    assert version["major"] == "1"
    ns = client.request("GET", "/api/v1/namespaces/default")
    assert ns["metadata"]["name"] == "default"


def test_auto_uses_kubeconfig_env_and_leaves_the_default_configuration_alone(
    kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with Client.auto() as c:
        assert c.server_version()["major"] == "1"
    assert Configuration.get_default_copy().host == before


def test_crud_round_trip(client: Client) -> None:
    cms = client.resource("v1", "ConfigMap")
    created = cms.create(configmap("one", {"a": "1"}, app="x"))
    assert created["metadata"]["resourceVersion"]
    assert created["metadata"]["uid"]
    with pytest.raises(errors.AlreadyExists):
        cms.create(configmap("one"))
    got = cms.get("one", "default")
    assert got["data"] == {"a": "1"}

    got["data"]["b"] = "2"
    updated = cms.update(got)
    assert updated["data"] == {"a": "1", "b": "2"}
    with pytest.raises(errors.Conflict):
        cms.update(got)  # stale resourceVersion

    cms.create(configmap("two", app="y"))
    listed = cms.list("default", label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
    assert listed["metadata"]["resourceVersion"]
    everywhere = cms.list()
    assert {"one", "two"} <= {i["metadata"]["name"] for i in everywhere["items"]}

    deleted = cms.delete("one", "default")
    assert deleted["kind"] in ("Status", "ConfigMap")
    with pytest.raises(errors.NotFound) as info:
        cms.get("one", "default")
    assert info.value.details.get("name") == "one"
    with pytest.raises(ValueError, match="namespace"):
        cms.get("two")


def test_paging(client: Client) -> None:
    cms = client.resource("v1", "ConfigMap")
    for i in range(7):
        cms.create(configmap(f"cm-{i}", paged="yes"))
    first = cms.list("default", label_selector="paged=yes", limit=3)
    assert len(first["items"]) == 3
    token = first["metadata"]["continue"]
    assert token
    second = cms.list("default", label_selector="paged=yes", limit=3, continue_=token)
    assert len(second["items"]) == 3
    everything = cms.list_all("default", label_selector="paged=yes", page_size=3)
    names = [i["metadata"]["name"] for i in everything["items"]]
    assert names == [f"cm-{i}" for i in range(7)]
    assert "continue" not in everything["metadata"]
    assert everything["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_watch_streams_events_and_closes_cleanly(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    rv = cms.list("default")["metadata"]["resourceVersion"]
    with cms.watch("default", resource_version=rv, read_timeout=10.0) as w:
        cms.create(configmap("w", {"a": "1"}))
        cms.patch("w", {"data": {"a": "2"}}, "default")
        cms.delete("w", "default")
        seen: list[tuple[str, str]] = []
        for ev in w:
            if ev["type"] == "BOOKMARK":
                continue
            seen.append((ev["type"], ev["object"]["data"]["a"]))
            if ev["type"] == "DELETED":
                break
        assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
        assert w.resource_version is not None
    assert w.closed
    _eventually(lambda: apiserver.watch_count == 0)


def test_watch_bookmarks_advance_the_resource_version(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    rv = cms.list("default")["metadata"]["resourceVersion"]
    client.resource("v1", "Secret").create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}}
    )
    with cms.watch("default", resource_version=rv, read_timeout=10.0) as w:
        ev = next(w)
    assert ev["type"] == "BOOKMARK"
    assert int(w.resource_version or 0) >= int(rv)


def test_watch_server_timeout_ends_the_stream(client: Client) -> None:
    cms = client.resource("v1", "ConfigMap")
    rv = cms.list("default")["metadata"]["resourceVersion"]
    w = cms.watch("default", resource_version=rv, timeout_seconds=1, allow_watch_bookmarks=False)
    assert list(w) == []
    assert w.closed


def test_stalled_watch_raises_watch_stalled(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    rv = cms.list("default")["metadata"]["resourceVersion"]
    apiserver.faults.stall_watches("configmaps")
    w = cms.watch("default", resource_version=rv, read_timeout=0.5)
    with pytest.raises(errors.WatchStalled):
        next(w)
    assert w.closed
    apiserver.faults.unstall_watches()
    _eventually(lambda: apiserver.watch_count == 0)


def test_watch_from_a_compacted_revision_raises_gone(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    old = cms.create(configmap("old"))["metadata"]["resourceVersion"]
    cms.patch("old", {"data": {"x": "1"}}, "default")
    cms.patch("old", {"data": {"x": "2"}}, "default")
    apiserver.compact()
    with pytest.raises(errors.Gone) as info:
        w = cms.watch("default", resource_version=old, read_timeout=10.0)
        list(w)
    assert info.value.status == 410
    assert info.value.body.get("kind") == "Status"
    _eventually(lambda: apiserver.watch_count == 0)


def test_watch_from_another_thread_can_be_closed(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    w = cms.watch("default", allow_watch_bookmarks=False, read_timeout=30.0)
    done = threading.Event()

    def consume() -> None:
        for _ in w:
            pass
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    _eventually(lambda: apiserver.watch_count == 1)
    w.close()
    t.join(10)
    assert done.is_set()
    _eventually(lambda: apiserver.watch_count == 0)


def test_many_watches_do_not_overflow_the_connection_pool(
    client: Client, apiserver: APIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator's informers each hold a pooled connection for their watch (BUGS.md C1)."""
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    cms = client.resource("v1", "ConfigMap")
    rv = cms.list("default")["metadata"]["resourceVersion"]
    watches = [cms.watch("default", resource_version=rv, read_timeout=30.0) for _ in range(16)]
    try:
        _eventually(lambda: apiserver.watch_count == 16)
        for i in range(4):
            cms.create(configmap(f"pool-{i}"))
            cms.get(f"pool-{i}", "default")
    finally:
        for w in watches:
            w.close()
    _eventually(lambda: apiserver.watch_count == 0)
    cms.get("pool-0", "default")
    full = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert full == []


def test_connection_pool_size_is_configurable(kubeconfig: str) -> None:
    from opkit.client import DEFAULT_POOL_MAXSIZE

    with Client.from_kubeconfig(kubeconfig) as c:
        assert c.api_client.configuration.connection_pool_maxsize == DEFAULT_POOL_MAXSIZE
        assert c.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] == 64
    with Client.from_kubeconfig(kubeconfig, pool_maxsize=3) as c:
        assert c.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] == 3
    with pytest.raises(ValueError, match="pool_maxsize"):
        Client.from_kubeconfig(kubeconfig, pool_maxsize=0)


def test_patch_types(client: Client) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("p", {"a": "1", "b": "2"}))
    merged = cms.patch("p", {"data": {"a": "10", "b": None}}, "default")
    assert merged["data"] == {"a": "10"}
    patched = cms.patch(
        "p",
        [
            {"op": "add", "path": "/data/c", "value": "3"},
            {"op": "test", "path": "/data/a", "value": "10"},
        ],
        "default",
        patch_type="json",
    )
    assert patched["data"] == {"a": "10", "c": "3"}
    with pytest.raises(errors.Invalid):
        cms.patch(
            "p", [{"op": "test", "path": "/data/a", "value": "nope"}], "default", patch_type="json"
        )
    strategic = cms.patch("p", {"data": {"d": "4"}}, "default", patch_type="strategic")
    assert strategic["data"]["d"] == "4"
    with pytest.raises(ValueError):
        cms.patch("p", {"data": {}}, "default", patch_type="json")
    with pytest.raises(ValueError):
        cms.patch("p", {"data": {}}, "default", patch_type="apply")
    with pytest.raises(ValueError):
        cms.patch("p", {"data": {}}, "default", force=True)


def test_strategic_merge_keeps_list_entries_by_key(client: Client) -> None:
    deps = client.resource("apps/v1", "Deployment")
    deps.create(deployment("web"))
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.36"}]}}
        }
    }
    result = deps.patch("web", patch, "default", patch_type="strategic")
    names = [c["name"] for c in result["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["app", "sidecar"]


def test_server_side_apply(client: Client) -> None:
    cms = client.resource("v1", "ConfigMap")
    applied = cms.apply(configmap("ssa", {"a": "1"}), field_manager="alice")
    assert applied["data"] == {"a": "1"}
    managers = {m["manager"] for m in applied["metadata"].get("managedFields", [])}
    assert "alice" in managers
    with pytest.raises(errors.Conflict) as info:
        cms.apply(configmap("ssa", {"a": "2"}), field_manager="bob")
    assert info.value.causes
    forced = cms.apply(configmap("ssa", {"a": "2"}), field_manager="bob", force=True)
    assert forced["data"] == {"a": "2"}
    dry = cms.apply(configmap("ssa", {"a": "3"}), field_manager="bob", dry_run=True)
    assert dry["data"] == {"a": "3"}
    assert cms.get("ssa", "default")["data"] == {"a": "2"}


def test_status_and_scale_subresources(client: Client) -> None:
    deps = client.resource("apps/v1", "Deployment")
    assert deps.resource.has_subresource("status")
    assert deps.resource.has_subresource("scale")
    created = deps.create(deployment("api", replicas=2))
    status_update = dict(created)
    status_update["status"] = {"observedGeneration": 1, "replicas": 2}
    status_update["spec"] = dict(created["spec"], replicas=9)  # ignored by /status
    after = deps.update_status(status_update)
    assert after["status"]["replicas"] == 2
    assert after["spec"]["replicas"] == 2
    patched = deps.patch_status("api", {"status": {"readyReplicas": 1}}, "default")
    assert patched["status"]["readyReplicas"] == 1

    scale = deps.get_scale("api", "default")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 2
    assert deps.scale("api", 5, "default")["spec"]["replicas"] == 5
    assert deps.get("api", "default")["spec"]["replicas"] == 5
    scale = deps.get_scale("api", "default")
    scale["spec"]["replicas"] = 3
    assert deps.update_scale(scale)["spec"]["replicas"] == 3
    assert deps.patch_scale("api", {"spec": {"replicas": 4}}, "default")["spec"]["replicas"] == 4


def test_delete_options(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    created = cms.create(configmap("d"))
    cms.delete("d", "default", dry_run=True)
    assert cms.get("d", "default")
    with pytest.raises(errors.Conflict):
        cms.delete("d", "default", preconditions={"uid": "not-the-uid"})
    with pytest.raises(errors.Conflict):
        cms.delete("d", "default", preconditions={"resourceVersion": "1"})
    cms.delete(
        "d",
        "default",
        preconditions={
            "uid": created["metadata"]["uid"],
            "resourceVersion": created["metadata"]["resourceVersion"],
        },
        propagation_policy="Background",
        grace_period_seconds=0,
    )
    with pytest.raises(errors.NotFound):
        cms.get("d", "default")
    with pytest.raises(ValueError, match="precondition"):
        cms.delete("d", "default", preconditions={"name": "d"})

    # Foreground deletion of an object with a finalizer leaves it, marked for deletion.
    obj = configmap("f")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    cms.create(obj)
    answer = cms.delete("f", "default", propagation_policy="Foreground")
    assert answer["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in answer["metadata"]["finalizers"]
    cms.patch("f", {"metadata": {"finalizers": None}}, "default")
    _eventually(lambda: _gone(cms, "f"))

    cms.create(configmap("c1", coll="yes"))
    cms.create(configmap("c2", coll="yes"))
    cms.delete_collection("default", label_selector="coll=yes")
    assert cms.list("default", label_selector="coll=yes")["items"] == []
    deletes = [q for m, p, q, _s in apiserver.request_log if m == "DELETE"]
    assert deletes


def test_request_escape_hatch(client: Client) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hatch"}}
    created = client.request("POST", "/api/v1/namespaces", body=body)
    assert created["metadata"]["name"] == "hatch"
    listed = client.request("GET", "/api/v1/namespaces", query={"labelSelector": None})
    assert "hatch" in {i["metadata"]["name"] for i in listed["items"]}
    patched = client.request(
        "PATCH",
        "/api/v1/namespaces/hatch",
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert patched["metadata"]["labels"]["x"] == "y"
    with pytest.raises(errors.NotFound):
        client.request("GET", "/api/v1/namespaces/nope")


def test_resource_for_without_discovery(client: Client, apiserver: APIServer) -> None:
    apiserver.clear_request_log()
    leases = client.resource_for("coordination.k8s.io", "v1", "leases", True, "Lease")
    assert leases.path("ns", "x") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x"
    assert leases.list("default")["items"] == []
    assert not any(
        p.startswith("/apis/coordination.k8s.io/v1") and p.endswith("v1")
        for _m, p, _q, _s in apiserver.request_log
    )


def test_unknown_kind_is_no_match(client: Client) -> None:
    with pytest.raises(errors.NoMatch):
        client.resource("v1", "Nope")


# -- retries against injected faults ---------------------------------------------------------


def test_reads_are_retried_on_500(
    client: Client, apiserver: APIServer, clock: RecordingClock
) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("r"))
    apiserver.clear_request_log()
    apiserver.faults.fail(verb="get", resource="configmaps", times=2, code=500)
    assert cms.get("r", "default")["metadata"]["name"] == "r"
    assert_requests(apiserver, "GET", "/api/v1/namespaces/default/configmaps/r", 3)
    assert len(clock.sleeps) == 2
    assert 0.2 <= clock.sleeps[0] <= 0.4  # initial backoff with up to 100 % jitter
    assert 0.4 <= clock.sleeps[1] <= 0.8


def test_429_retry_after_is_honoured_even_for_create(
    client: Client, apiserver: APIServer, clock: RecordingClock
) -> None:
    cms = client.resource("v1", "ConfigMap")
    apiserver.faults.fail(verb="create", resource="configmaps", times=2, code=429, retry_after=3)
    cms.create(configmap("limited"))
    assert_requests(apiserver, "POST", "/api/v1/namespaces/default/configmaps", 3)
    assert clock.sleeps == [3.0, 3.0]


def test_503_with_retry_after_is_retried_for_create(
    client: Client, apiserver: APIServer, clock: RecordingClock
) -> None:
    cms = client.resource("v1", "ConfigMap")
    apiserver.faults.fail(verb="create", resource="configmaps", times=1, code=503, retry_after=1)
    cms.create(configmap("later"))
    assert_requests(apiserver, "POST", "/api/v1/namespaces/default/configmaps", 2)
    assert clock.sleeps == [1.0]


def test_create_is_not_retried_after_a_500(
    client: Client, apiserver: APIServer, clock: RecordingClock
) -> None:
    cms = client.resource("v1", "ConfigMap")
    apiserver.faults.fail(verb="create", resource="configmaps", times=1, code=500)
    with pytest.raises(errors.ServerError):
        cms.create(configmap("once"))
    assert_requests(apiserver, "POST", "/api/v1/namespaces/default/configmaps", 1)
    assert clock.sleeps == []


def test_create_is_not_retried_after_a_read_timeout(
    kubeconfig: str, apiserver: APIServer, clock: RecordingClock
) -> None:
    # The server is slow but does create the object: repeating the POST would fail with
    # AlreadyExists (or create a second object with generateName).
    apiserver.faults.delay(1.0, verb="create", resource="configmaps")
    with Client.from_kubeconfig(kubeconfig, clock=clock, timeout=(5.0, 0.3)) as c:
        cms = c.resource("v1", "ConfigMap")
        obj = configmap("")
        del obj["metadata"]["name"]
        obj["metadata"]["generateName"] = "slow-"
        with pytest.raises(errors.ReadTimeout):
            cms.create(obj)
        assert clock.sleeps == []
        apiserver.faults.clear()
        _eventually(lambda: len(cms.list("default")["items"]) == 1)
    assert_requests(apiserver, "POST", "/api/v1/namespaces/default/configmaps", 1)


def test_update_with_resource_version_is_retried_on_500(
    client: Client, apiserver: APIServer
) -> None:
    cms = client.resource("v1", "ConfigMap")
    obj = cms.create(configmap("u"))
    obj["data"] = {"k": "v"}
    apiserver.faults.fail(verb="update", resource="configmaps", times=1, code=500)
    assert cms.update(obj)["data"] == {"k": "v"}
    assert_requests(apiserver, "PUT", "/api/v1/namespaces/default/configmaps/u", 2)
    # Without a resourceVersion the PUT is unconditional: not repeated.
    obj = cms.get("u", "default")
    del obj["metadata"]["resourceVersion"]
    apiserver.faults.fail(verb="update", resource="configmaps", times=1, code=500)
    with pytest.raises(errors.ServerError):
        cms.update(obj)
    assert_requests(apiserver, "PUT", "/api/v1/namespaces/default/configmaps/u", 3)


def test_json_patch_is_not_retried_but_merge_patch_is(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    cms.create(configmap("jp"))
    path = "/api/v1/namespaces/default/configmaps/jp"
    apiserver.faults.fail(verb="patch", resource="configmaps", times=1, code=500)
    with pytest.raises(errors.ServerError):
        cms.patch(
            "jp", [{"op": "add", "path": "/data/x", "value": "1"}], "default", patch_type="json"
        )
    assert_requests(apiserver, "PATCH", path, 1)
    apiserver.faults.fail(verb="patch", resource="configmaps", times=1, code=500)
    cms.patch("jp", {"data": {"x": "1"}}, "default")
    assert_requests(apiserver, "PATCH", path, 3)


def test_delete_is_retried_only_with_preconditions(client: Client, apiserver: APIServer) -> None:
    cms = client.resource("v1", "ConfigMap")
    uid = cms.create(configmap("del"))["metadata"]["uid"]
    path = "/api/v1/namespaces/default/configmaps/del"
    apiserver.faults.fail(verb="delete", resource="configmaps", times=1, code=500)
    with pytest.raises(errors.ServerError):
        cms.delete("del", "default")
    assert_requests(apiserver, "DELETE", path, 1)
    apiserver.faults.fail(verb="delete", resource="configmaps", times=1, code=500)
    cms.delete("del", "default", preconditions={"uid": uid})
    assert_requests(apiserver, "DELETE", path, 3)


def test_retries_are_bounded(client: Client, apiserver: APIServer, clock: RecordingClock) -> None:
    apiserver.faults.fail(verb="list", resource="configmaps", times=100, code=503)
    with pytest.raises(errors.ServiceUnavailable):
        client.resource("v1", "ConfigMap").list("default")
    assert_requests(apiserver, "GET", "/api/v1/namespaces/default/configmaps", 5)
    assert len(clock.sleeps) == 4


def test_connection_refused_is_retried_even_for_create(clock: RecordingClock) -> None:
    from kubernetes.client import Configuration

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configuration = Configuration(host=f"http://127.0.0.1:{port}")
    with Client.from_configuration(configuration, clock=clock) as c:
        cms = c.resource_for("", "v1", "configmaps", True, "ConfigMap")
        with pytest.raises(errors.ConnectionFailed) as info:
            cms.create(configmap("x"))
    assert info.value.request_sent is False
    assert len(clock.sleeps) == 4


def _gone(cms: Any, name: str) -> bool:
    try:
        cms.get(name, "default")
    except errors.NotFound:
        return True
    return False


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    raise AssertionError("condition not reached in time")
