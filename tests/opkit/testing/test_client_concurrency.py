"""Official client under load: concurrent watchers and writers (HTTP-2, META-1, WATCH-3).

Five `watch.Watch().stream` consumers and four writer threads (200 writes each) share one
server. Every watcher must see every event, in revision order, with nothing lost or
duplicated, and the revisions must be exactly the global counter's consecutive values.
"""

from __future__ import annotations

import threading
from typing import Any

from _server_fixtures import core, new_watch
from kubernetes import client

from opkit.testing import APIServer

WATCHERS = 5
WRITERS = 4
ROUNDS = 50  # create + patch + replace + delete = 4 writes per round
TOTAL = WRITERS * ROUNDS * 4

Event = tuple[str, str, int]  # type, name, resourceVersion


def _api(apiserver: APIServer) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = apiserver.url
    cfg.api_key = {"authorization": apiserver.token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


def test_watchers_see_every_write_in_order(apiserver: APIServer, k8s_api: client.ApiClient) -> None:
    start_rv = int(core(k8s_api).list_namespaced_config_map("default").metadata.resource_version)
    seen: list[list[Event]] = [[] for _ in range(WATCHERS)]
    bookmarks: list[list[int]] = [[] for _ in range(WATCHERS)]
    written: list[list[tuple[str, str, int | None]]] = [[] for _ in range(WRITERS)]
    errors: list[BaseException] = []
    ready = threading.Barrier(WATCHERS + WRITERS)

    def watcher(i: int) -> None:
        try:
            with _api(apiserver) as api:
                v1: Any = client.CoreV1Api(api)
                w = new_watch()
                ready.wait(timeout=30)
                for ev in w.stream(
                    v1.list_namespaced_config_map,
                    "default",
                    resource_version=str(start_rv),
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                ):
                    obj = ev["object"]
                    if ev["type"] == "BOOKMARK":
                        bookmarks[i].append(int(w.resource_version))
                        continue
                    rv = int(obj.metadata.resource_version)
                    seen[i].append((ev["type"], obj.metadata.name, rv))
                    if len(seen[i]) >= TOTAL:
                        w.stop()
        except BaseException as e:
            errors.append(e)

    def writer(i: int) -> None:
        try:
            with _api(apiserver) as api:
                v1: Any = client.CoreV1Api(api)
                log = written[i]
                ready.wait(timeout=30)
                for j in range(ROUNDS):
                    name = f"w{i}-{j:03d}"
                    made = v1.create_namespaced_config_map(
                        "default", {"metadata": {"name": name}, "data": {"n": "0"}}
                    )
                    log.append(("ADDED", name, int(made.metadata.resource_version)))
                    patched = v1.patch_namespaced_config_map(name, "default", {"data": {"n": "1"}})
                    log.append(("MODIFIED", name, int(patched.metadata.resource_version)))
                    patched.data = {"n": "2"}
                    replaced = v1.replace_namespaced_config_map(name, "default", patched)
                    log.append(("MODIFIED", name, int(replaced.metadata.resource_version)))
                    v1.delete_namespaced_config_map(name, "default")
                    log.append(("DELETED", name, None))
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=watcher, args=(i,), name=f"watcher-{i}") for i in range(WATCHERS)
    ] + [threading.Thread(target=writer, args=(i,), name=f"writer-{i}") for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not [t.name for t in threads if t.is_alive()]
    assert not errors, errors

    # the global revision counter moved by exactly one per write (META-1)
    assert apiserver.store.rev == start_rv + TOTAL
    reference = seen[0]
    assert [rv for _, _, rv in reference] == list(range(start_rv + 1, start_rv + TOTAL + 1))
    for i in range(1, WATCHERS):
        assert seen[i] == reference, f"watcher {i} differs"
    # every write a client was told about is the event at that revision
    by_rv = {rv: (typ, name) for typ, name, rv in reference}
    for log in written:
        for typ, name, rv in log:
            if rv is not None:
                assert by_rv[rv] == (typ, name)
    # per object: ADDED, MODIFIED, MODIFIED, DELETED
    per_name: dict[str, list[str]] = {}
    for typ, name, _ in reference:
        per_name.setdefault(name, []).append(typ)
    assert len(per_name) == WRITERS * ROUNDS
    assert {tuple(v) for v in per_name.values()} == {("ADDED", "MODIFIED", "MODIFIED", "DELETED")}
    for marks in bookmarks:
        assert marks == sorted(marks)
    assert not [r for r in apiserver.request_log if r[3] >= 500]
    assert apiserver.watch_count == 0 or _drained(apiserver)


def _drained(apiserver: APIServer) -> bool:
    """Watches closed by the clients are released shortly after (WATCH-5)."""
    import time

    deadline = time.monotonic() + 10
    while apiserver.watch_count and time.monotonic() < deadline:
        time.sleep(0.02)
    return apiserver.watch_count == 0
