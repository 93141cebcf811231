"""Helpers for the built-in controller tests: polling, a pod event recorder, object builders."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from opkit.client import Client
from opkit.testing.controllers import BuiltinControllers

Obj = dict[str, Any]
NS = "default"
PlaneFactory = Callable[..., BuiltinControllers]


def wait_for(pred: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll until ``pred()`` is truthy and return it (the timeout only guards against hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conds
    )


def deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


class PodEvents:
    """Pod watch events of one namespace, recorded from a background thread."""

    def __init__(self, client: Client, namespace: str = NS) -> None:
        pods = client.resource("v1", "Pod")
        rv = pods.list(namespace)["metadata"]["resourceVersion"]
        self._stream = pods.watch(namespace, resource_version=rv, allow_watch_bookmarks=False)
        self._lock = threading.Lock()
        self._events: list[tuple[str, Obj]] = []
        self._thread = threading.Thread(target=self._run, name="test-pod-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                with self._lock:
                    self._events.append((event["type"], event["object"]))
        except Exception:
            return

    @property
    def events(self) -> list[tuple[str, Obj]]:
        with self._lock:
            return list(self._events)

    def index(self, pred: Callable[[str, Obj], bool]) -> int:
        """Position of the first event matching ``pred`` (AssertionError if none)."""
        for i, (kind, obj) in enumerate(self.events):
            if pred(kind, obj):
                return i
        raise AssertionError("no such event")

    def first_ready(self, name: str, uid: str | None = None) -> int:
        return self.index(
            lambda k, o: (
                o["metadata"]["name"] == name
                and (uid is None or o["metadata"]["uid"] == uid)
                and ready(o)
                and not deleting(o)
            )
        )

    def added(self, name: str, uid: str | None = None) -> int:
        return self.index(
            lambda k, o: (
                k == "ADDED"
                and o["metadata"]["name"] == name
                and (uid is None or o["metadata"]["uid"] == uid)
            )
        )

    def deletion_started(self, name: str, uid: str | None = None) -> int:
        return self.index(
            lambda k, o: (
                o["metadata"]["name"] == name
                and (uid is None or o["metadata"]["uid"] == uid)
                and (k == "DELETED" or deleting(o))
            )
        )

    def deleted(self, name: str, uid: str | None = None) -> int:
        return self.index(
            lambda k, o: (
                k == "DELETED"
                and o["metadata"]["name"] == name
                and (uid is None or o["metadata"]["uid"] == uid)
            )
        )

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def pod_template(labels: dict[str, str], **spec: Any) -> Obj:
    spec.setdefault("containers", [container()])
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def statefulset(
    name: str = "web",
    replicas: int = 3,
    *,
    claims: bool = True,
    **spec: Any,
) -> Obj:
    body: Obj = {
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template({"app": name}),
    }
    if claims:
        body["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ]
    body.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def deployment(name: str = "api", replicas: int = 3, **spec: Any) -> Obj:
    body: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template({"app": name}),
    }
    body.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def pods_named(client: Client, prefix: str) -> dict[str, Obj]:
    items = client.resource("v1", "Pod").list(NS)["items"]
    return {p["metadata"]["name"]: p for p in items if p["metadata"]["name"].startswith(prefix)}


def get(client: Client, api_version: str, kind: str, name: str, namespace: str | None = NS) -> Obj:
    obj: Obj = client.resource(api_version, kind).get(name, namespace)
    return obj
