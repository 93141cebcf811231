"""ReplicaSet controller (CTRL-7), following kube-controller-manager's ``replicaset`` package.

Keeps ``spec.replicas`` active pods named ``<rs>-<rand5>`` (the generateName scheme) that carry
the template and a controller reference. Its own creations and deletions are remembered until
the cache shows them (the role of client-go's expectations), so a reconcile running on a
cache that is a little behind never creates or deletes twice.
"""

from __future__ import annotations

from typing import Any

from opkit import errors
from opkit import labels as _labels
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result, TerminalError
from opkit.manager import Manager

from . import _common as c
from ._base import BuiltinController

__all__ = ["ReplicaSetController"]

Obj = dict[str, Any]

_KIND = "ReplicaSet"
_API_VERSION = "apps/v1"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """``ActivePods`` ordering: the pods to delete first sort first (unscheduled, pending,
    not ready, ready for the shortest time, most restarts, newest)."""
    spec = c.spec_of(pod)
    status = c.status_of(pod)
    ready = c.is_pod_ready(pod)
    ready_since = ""
    if ready:
        ready_since = str((c.pod_condition(pod, "Ready") or {}).get("lastTransitionTime") or "")
    restarts = sum(c.as_int(cs.get("restartCount")) for cs in status.get("containerStatuses") or ())
    created = str(c.meta(pod).get("creationTimestamp") or "")
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(c.phase_of(pod), 0),
        1 if ready else 0,
        _neg(ready_since),
        -restarts,
        _neg(created),
    )


def _neg(timestamp: str) -> tuple[int, ...]:
    """Sort key putting later RFC 3339 timestamps first."""
    return tuple(-ord(ch) for ch in timestamp)


class ReplicaSetController(BuiltinController):
    """Reconciles ReplicaSets into pods."""

    name = "replicaset"

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        super().__init__(client, clock=clock)
        self._sets = client.resource(_API_VERSION, _KIND)
        self._pods = client.resource("v1", "Pod")
        self._creates = c.Expectations(self.clock)
        self._deletes = c.Expectations(self.clock)

    def setup(self, manager: Manager) -> None:
        manager.cache.add_indexers("v1", "Pod", {c.CONTROLLER_UID_INDEX: c.controller_uid_index})
        ctrl = manager.controller(
            "replicaset",
            self,
            for_=(_API_VERSION, _KIND),
            watches=[(("v1", "Pod"), self._pod_to_set)],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _pod_to_set(self, pod: Obj) -> list[Request]:
        # Runs on the informer's delivery thread before the request is queued, so by the time
        # the reconcile runs the expectation about this pod is settled.
        self._creates.observe(c.key_of(pod))
        ref = c.controller_ref(pod)
        if (
            ref is None
            or ref.get("kind") != _KIND
            or not str(ref.get("apiVersion", "")).startswith("apps/")
        ):
            return []
        return [Request(c.namespace_of(pod), str(ref.get("name") or ""))]

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        rs = self.cache.get(_API_VERSION, _KIND, request.namespace, request.name, copy=False)
        if rs is None:
            self._creates.clear(request.key)
            self._deletes.clear(request.key)
            return None
        try:
            selector = c.selector_of(rs)
        except _labels.SelectorError as exc:
            raise TerminalError(f"invalid selector: {exc}") from exc
        pods = self._pods_of(rs, selector)
        active = [p for p in pods if c.is_active(p)]
        if not c.is_deleting(rs):
            self._manage(rs, request.key, active)
        return self._write_status(rs, selector, active)

    def _pods_of(self, rs: Obj, selector: _labels.Selector) -> list[Obj]:
        owned = [
            p
            for p in self.cache.by_index(
                "v1", "Pod", c.CONTROLLER_UID_INDEX, c.uid_of(rs), copy=False
            )
            if selector.matches(c.labels_of(p))
        ]
        if c.is_deleting(rs) or selector.empty():
            return owned
        owner_ref = c.new_controller_ref(rs, _API_VERSION, _KIND)
        for pod in self.cache.list("v1", "Pod", c.namespace_of(rs), selector, copy=False):
            if c.controller_ref(pod) is None and c.is_active(pod):
                adopted = c.adopt(self._pods, pod, owner_ref)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    def _manage(self, rs: Obj, key: str, active: list[Obj]) -> None:
        """``manageReplicas``: create or delete pods toward ``spec.replicas``."""
        ns = c.namespace_of(rs)

        def in_cache(pod_key: str) -> bool:
            _, name = pod_key.split("/", 1)
            return self.cache.get("v1", "Pod", ns, name, copy=False) is not None

        def gone(pod_key: str) -> bool:
            _, name = pod_key.split("/", 1)
            pod = self.cache.get("v1", "Pod", ns, name, copy=False)
            return pod is None or not c.is_active(pod)

        pending_creates = self._creates.pending(key, in_cache)
        pending_deletes = self._deletes.pending(key, gone)
        counted = [p for p in active if c.key_of(p) not in pending_deletes]
        want = max(0, c.as_int(c.spec_of(rs).get("replicas"), 1))
        diff = len(counted) + len(pending_creates) - want
        if diff < 0:
            template = c.spec_of(rs).get("template") or {}
            owner = c.new_controller_ref(rs, _API_VERSION, _KIND)
            for _ in range(-diff):
                self._create_pod(rs, key, template, owner)
        elif diff > 0:
            victims = sorted(counted, key=_deletion_rank)[:diff]
            for pod in victims:
                self._deletes.expect(key, c.key_of(pod))
                if not c.delete_quietly(self._pods, pod):
                    self._deletes.forget(key, c.key_of(pod))

    def _create_pod(self, rs: Obj, key: str, template: Obj, owner: Obj) -> None:
        prefix = f"{c.name_of(rs)}-"
        for _ in range(5):
            pod = c.pod_from_template(template, c.namespace_of(rs), owner)
            name = c.generated_name(prefix)
            pod["metadata"]["name"] = name
            pod["metadata"]["generateName"] = prefix
            pod_key = f"{c.namespace_of(rs)}/{name}"
            self._creates.expect(key, pod_key)
            try:
                self._pods.create(pod, field_manager=c.FIELD_MANAGER)
                return
            except errors.AlreadyExists:
                self._creates.forget(key, pod_key)  # a random name taken: draw another
            except BaseException:
                self._creates.forget(key, pod_key)
                raise

    def _write_status(
        self, rs: Obj, selector: _labels.Selector, active: list[Obj]
    ) -> Result | None:
        """``calculateStatus``; writes only when it changed."""
        spec = c.spec_of(rs)
        min_ready = c.as_int(spec.get("minReadySeconds"))
        template_labels = c.labels_of(spec.get("template") or {})
        at = self.clock.now()
        ready = available = fully_labeled = 0
        wait: float | None = None
        for pod in active:
            pod_labels = c.labels_of(pod)
            if all(pod_labels.get(k) == v for k, v in template_labels.items()):
                fully_labeled += 1
            after = c.available_after(pod, min_ready, at)
            if after is None:
                continue
            ready += 1
            if after == 0:
                available += 1
            else:
                wait = after if wait is None else min(wait, after)
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": c.generation_of(rs),
        }
        live = c.status_of(rs)
        if c.differs(live, status):
            try:
                self._sets.patch_status(
                    c.name_of(rs),
                    {
                        "metadata": {"resourceVersion": c.meta(rs).get("resourceVersion")},
                        "status": status,
                    },
                    c.namespace_of(rs),
                    field_manager=c.FIELD_MANAGER,
                )
            except errors.NotFound:
                return None
        if wait is not None:
            return Result(requeue_after=max(wait, 0.05))
        return None
