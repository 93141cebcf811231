"""Deployment controller (CTRL-7), following kube-controller-manager's ``deployment`` package.

One ReplicaSet per pod template, named ``<deployment>-<pod-template-hash>``. ``RollingUpdate``
scales the new set up and the old ones down within ``maxSurge``/``maxUnavailable``;
``Recreate`` removes every old pod before the new set scales up. Status and the ``Available``
and ``Progressing`` conditions follow upstream, so ``kubectl rollout status deployment`` works.
"""

from __future__ import annotations

import copy
from typing import Any

from opkit import errors
from opkit import labels as _labels
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result, TerminalError
from opkit.manager import Manager

from . import _common as c
from ._base import BuiltinController

__all__ = [
    "DESIRED_REPLICAS_ANNOTATION",
    "MAX_REPLICAS_ANNOTATION",
    "POD_TEMPLATE_HASH_LABEL",
    "REVISION_ANNOTATION",
    "DeploymentController",
]

Obj = dict[str, Any]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"

_KIND = "Deployment"
_API_VERSION = "apps/v1"

# Condition reasons (``deploymentutil``).
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def _replicas(obj: Obj) -> int:
    return max(0, c.as_int(c.spec_of(obj).get("replicas"), 1))


def _status_int(obj: Obj, field: str) -> int:
    return c.as_int(c.status_of(obj).get(field))


def _available(rs: Obj) -> int:
    """Available replicas of a set, never more than it is scaled to: right after a scale-down
    its status still counts the pods about to go, and trusting that would scale further down
    than ``maxUnavailable`` allows."""
    return min(_status_int(rs, "availableReplicas"), _replicas(rs))


def _revision(rs: Obj) -> int:
    return c.as_int(c.annotations_of(rs).get(REVISION_ANNOTATION))


def _template_without_hash(template: Any) -> Obj:
    tmpl = copy.deepcopy(dict(template or {}))
    tmeta = tmpl.get("metadata")
    if isinstance(tmeta, dict) and isinstance(tmeta.get("labels"), dict):
        tmeta["labels"].pop(POD_TEMPLATE_HASH_LABEL, None)
    return tmpl


def _fenceposts(dep: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge rounded up, maxUnavailable rounded down); never both 0."""
    strategy = c.spec_of(dep).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = _replicas(dep)
    surge = c.int_or_percent(rolling.get("maxSurge"), replicas, round_up=True, default=1)
    unavailable = c.int_or_percent(
        rolling.get("maxUnavailable"), replicas, round_up=False, default=0
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _max_unavailable(dep: Obj) -> int:
    """``MaxUnavailable``: bounded by replicas; 0 for Recreate or no replicas."""
    strategy = c.spec_of(dep).get("strategy") or {}
    replicas = _replicas(dep)
    if strategy.get("type") != "RollingUpdate" and strategy.get("type") is not None:
        return 0
    if replicas == 0:
        return 0
    return min(_fenceposts(dep)[1], replicas)


class DeploymentController(BuiltinController):
    """Reconciles Deployments into ReplicaSets (which the ReplicaSet controller fills)."""

    name = "deployment"

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        super().__init__(client, clock=clock)
        self._deployments = client.resource(_API_VERSION, _KIND)
        self._sets = client.resource(_API_VERSION, "ReplicaSet")

    def setup(self, manager: Manager) -> None:
        index = {c.CONTROLLER_UID_INDEX: c.controller_uid_index}
        manager.cache.add_indexers(_API_VERSION, "ReplicaSet", index)
        manager.cache.add_indexers("v1", "Pod", index)
        ctrl = manager.controller(
            "deployment",
            self,
            for_=(_API_VERSION, _KIND),
            owns=[(_API_VERSION, "ReplicaSet")],
            watches=[(("v1", "Pod"), self._pod_to_deployment)],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _pod_to_deployment(self, pod: Obj) -> list[Request]:
        """Recreate waits for old pods to go: their events wake the Deployment."""
        ref = c.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        ns = c.namespace_of(pod)
        rs = self.cache.get(_API_VERSION, "ReplicaSet", ns, str(ref.get("name")), copy=False)
        if rs is None:
            return []
        owner = c.controller_ref(rs)
        if owner is None or owner.get("kind") != _KIND:
            return []
        return [Request(ns, str(owner.get("name") or ""))]

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        dep = self.cache.get(_API_VERSION, _KIND, request.namespace, request.name, copy=False)
        if dep is None:
            return None
        try:
            selector = c.selector_of(dep)
        except _labels.SelectorError as exc:
            raise TerminalError(f"invalid selector: {exc}") from exc
        if c.is_deleting(dep):
            return None
        if selector.empty():
            # upstream refuses to act on a selector that matches every pod
            return None
        sets = self._sets_of(dep, selector)
        spec = c.spec_of(dep)
        new_rs = self._find_new(dep, sets)
        old = [rs for rs in sets if new_rs is None or c.uid_of(rs) != c.uid_of(new_rs)]
        if spec.get("paused"):
            return self._sync_status(dep, sets, new_rs, created=False)
        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        created = False
        if strategy == "Recreate":
            if self._scale_down_for_recreate(dep, old):
                return self._sync_status(dep, sets, new_rs, created=False)
            if self._old_pods_running(old):
                return self._sync_status(dep, sets, new_rs, created=False)
            if new_rs is None:
                new_rs, created = self._create_new(dep, old, _replicas(dep))
            else:
                new_rs = self._sync_revision(dep, new_rs, old)
            sets = [*old, new_rs]
            if _replicas(new_rs) != _replicas(dep):
                new_rs = self._scale(dep, new_rs, _replicas(dep))
                sets = [*old, new_rs]
        else:
            if new_rs is None:
                # ``NewRSNewReplicas``: as many as maxSurge allows next to the old pods
                surge, _ = _fenceposts(dep)
                old_count = sum(_replicas(rs) for rs in old)
                first = min(_replicas(dep), max(0, _replicas(dep) + surge - old_count))
                new_rs, created = self._create_new(dep, old, first)
                sets = [*old, new_rs]
            else:
                new_rs = self._sync_revision(dep, new_rs, old)
                sets = [*old, new_rs]
            scaled, new_rs = self._reconcile_new(dep, sets, new_rs)
            sets = [*old, new_rs]
            if not scaled:
                old = self._reconcile_old(dep, sets, new_rs, old)
                sets = [*old, new_rs]
        self._annotate_deployment(dep, new_rs)
        self._cleanup(dep, old)
        return self._sync_status(dep, sets, new_rs, created=created)

    def _sets_of(self, dep: Obj, selector: _labels.Selector) -> list[Obj]:
        owned = list(
            self.cache.by_index(
                _API_VERSION, "ReplicaSet", c.CONTROLLER_UID_INDEX, c.uid_of(dep), copy=False
            )
        )
        owner_ref = c.new_controller_ref(dep, _API_VERSION, _KIND)
        for rs in self.cache.list(_API_VERSION, "ReplicaSet", c.namespace_of(dep), selector):
            if c.controller_ref(rs) is None and not c.is_deleting(rs):
                adopted = c.adopt(self._sets, rs, owner_ref)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    def _find_new(self, dep: Obj, sets: list[Obj]) -> Obj | None:
        """``FindNewReplicaSet``: the oldest set whose template equals the Deployment's."""
        want = _template_without_hash(c.spec_of(dep).get("template"))
        matches = [
            rs for rs in sets if c.same(_template_without_hash(c.spec_of(rs).get("template")), want)
        ]
        if not matches:
            return None
        matches.sort(key=lambda rs: (str(c.meta(rs).get("creationTimestamp") or ""), c.name_of(rs)))
        return matches[0]

    def _max_revision(self, sets: list[Obj]) -> int:
        return max((_revision(rs) for rs in sets), default=0)

    def _rs_annotations(self, dep: Obj, revision: int) -> dict[str, str]:
        annotations = {
            k: v
            for k, v in c.annotations_of(dep).items()
            if k not in (REVISION_ANNOTATION, "kubectl.kubernetes.io/last-applied-configuration")
        }
        surge, _ = _fenceposts(dep)
        annotations[REVISION_ANNOTATION] = str(revision)
        annotations[DESIRED_REPLICAS_ANNOTATION] = str(_replicas(dep))
        annotations[MAX_REPLICAS_ANNOTATION] = str(_replicas(dep) + surge)
        return annotations

    def _create_new(self, dep: Obj, old: list[Obj], replicas: int) -> tuple[Obj, bool]:
        """Create the ReplicaSet of the current template (``getNewReplicaSet``)."""
        spec = c.spec_of(dep)
        template = copy.deepcopy(dict(spec.get("template") or {}))
        collision = c.status_of(dep).get("collisionCount")
        collision_count = c.as_int(collision) if collision is not None else None
        ns = c.namespace_of(dep)
        while True:
            digest = c.template_hash(_template_without_hash(template), collision_count)
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH_LABEL] = (
                digest
            )
            selector = copy.deepcopy(dict(spec.get("selector") or {}))
            selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH_LABEL] = digest
            rs_labels = dict(c.labels_of(tmpl))
            rs: Obj = {
                "apiVersion": _API_VERSION,
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{c.name_of(dep)}-{digest}",
                    "namespace": ns,
                    "labels": rs_labels,
                    "annotations": self._rs_annotations(dep, self._max_revision(old) + 1),
                    "ownerReferences": [c.new_controller_ref(dep, _API_VERSION, _KIND)],
                },
                "spec": {
                    "replicas": replicas,
                    "minReadySeconds": c.as_int(spec.get("minReadySeconds")),
                    "selector": selector,
                    "template": tmpl,
                },
            }
            try:
                created: Obj = self._sets.create(rs, field_manager=c.FIELD_MANAGER)
                return created, True
            except errors.AlreadyExists:
                existing: Obj = self._sets.get(rs["metadata"]["name"], ns)
                if c.is_controlled_by(existing, dep) and c.same(
                    _template_without_hash(c.spec_of(existing).get("template")),
                    _template_without_hash(template),
                ):
                    return existing, False
                # a hash collision: bump collisionCount and try another name
                collision_count = (collision_count or 0) + 1
                self._deployments.patch_status(
                    c.name_of(dep),
                    {"status": {"collisionCount": collision_count}},
                    ns,
                    field_manager=c.FIELD_MANAGER,
                )

    def _sync_revision(self, dep: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
        """The new set carries the highest revision (a rollback renumbers it)."""
        max_old = self._max_revision(old)
        revision = _revision(new_rs)
        if revision > max_old:
            return new_rs
        annotations = {REVISION_ANNOTATION: str(max_old + 1)}
        updated: Obj = self._sets.patch(
            c.name_of(new_rs),
            {"metadata": {"annotations": annotations}},
            c.namespace_of(new_rs),
            field_manager=c.FIELD_MANAGER,
        )
        return updated

    def _scale(self, dep: Obj, rs: Obj, replicas: int) -> Obj:
        """Set a ReplicaSet's replicas and the deployment annotations upstream keeps on it."""
        surge, _ = _fenceposts(dep)
        annotations = {
            DESIRED_REPLICAS_ANNOTATION: str(_replicas(dep)),
            MAX_REPLICAS_ANNOTATION: str(_replicas(dep) + surge),
        }
        have = c.annotations_of(rs)
        patch: Obj = {}
        if _replicas(rs) != replicas:
            patch["spec"] = {"replicas": replicas}
        changed = {k: v for k, v in annotations.items() if have.get(k) != v}
        if changed:
            patch["metadata"] = {"annotations": changed}
        if not patch:
            return rs
        updated: Obj = self._sets.patch(
            c.name_of(rs), patch, c.namespace_of(rs), field_manager=c.FIELD_MANAGER
        )
        return updated

    # -- rolling update -------------------------------------------------------------------------

    def _reconcile_new(self, dep: Obj, sets: list[Obj], new_rs: Obj) -> tuple[bool, Obj]:
        """``reconcileNewReplicaSet``: scale the new set up within maxSurge."""
        want = _replicas(dep)
        have = _replicas(new_rs)
        if have == want:
            return False, self._scale(dep, new_rs, want)
        if have > want:
            return True, self._scale(dep, new_rs, want)
        surge, _ = _fenceposts(dep)
        current = sum(_replicas(rs) for rs in sets)
        max_total = want + surge
        if current >= max_total:
            return False, new_rs
        target = have + min(max_total - current, want - have)
        return True, self._scale(dep, new_rs, target)

    def _reconcile_old(self, dep: Obj, sets: list[Obj], new_rs: Obj, old: list[Obj]) -> list[Obj]:
        """``reconcileOldReplicaSets``: scale old sets down, keeping minAvailable pods."""
        old_count = sum(_replicas(rs) for rs in old)
        if old_count == 0:
            return old
        all_count = sum(_replicas(rs) for rs in sets)
        max_unavailable = _max_unavailable(dep)
        min_available = _replicas(dep) - max_unavailable
        new_unavailable = _replicas(new_rs) - _available(new_rs)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return old
        old = sorted(old, key=lambda rs: (str(c.meta(rs).get("creationTimestamp") or ""),))
        # first the unhealthy replicas of old sets (they do not count toward availability)
        result: list[Obj] = []
        cleaned = 0
        for rs in old:
            if cleaned >= max_scaled_down or _replicas(rs) == 0:
                result.append(rs)
                continue
            unhealthy = _replicas(rs) - _available(rs)
            if unhealthy <= 0:
                result.append(rs)
                continue
            down = min(max_scaled_down - cleaned, unhealthy)
            result.append(self._scale(dep, rs, _replicas(rs) - down))
            cleaned += down
        old = result
        # then healthy ones, while more than minAvailable pods are available
        available = sum(_available(rs) for rs in [*old, new_rs])
        if available <= min_available:
            return old
        total_down = available - min_available
        done = 0
        result = []
        for rs in old:
            if done >= total_down or _replicas(rs) == 0:
                result.append(rs)
                continue
            down = min(_replicas(rs), total_down - done)
            result.append(self._scale(dep, rs, _replicas(rs) - down))
            done += down
        return result

    # -- recreate -------------------------------------------------------------------------------

    def _scale_down_for_recreate(self, dep: Obj, old: list[Obj]) -> bool:
        scaled = False
        for rs in old:
            if _replicas(rs) != 0:
                self._scale(dep, rs, 0)
                scaled = True
        return scaled

    def _old_pods_running(self, old: list[Obj]) -> bool:
        for rs in old:
            if _status_int(rs, "replicas") > 0:
                return True
            pods = self.cache.by_index(
                "v1", "Pod", c.CONTROLLER_UID_INDEX, c.uid_of(rs), copy=False
            )
            if any(not c.is_terminal(p) for p in pods):
                return True
        return False

    # -- bookkeeping ----------------------------------------------------------------------------

    def _annotate_deployment(self, dep: Obj, new_rs: Obj | None) -> None:
        if new_rs is None:
            return
        revision = c.annotations_of(new_rs).get(REVISION_ANNOTATION)
        if not revision or c.annotations_of(dep).get(REVISION_ANNOTATION) == revision:
            return
        try:
            self._deployments.patch(
                c.name_of(dep),
                {"metadata": {"annotations": {REVISION_ANNOTATION: revision}}},
                c.namespace_of(dep),
                field_manager=c.FIELD_MANAGER,
            )
        except errors.NotFound:
            return

    def _cleanup(self, dep: Obj, old: list[Obj]) -> None:
        """``cleanupDeployment``: keep ``revisionHistoryLimit`` scaled-down old sets."""
        limit = c.as_int(c.spec_of(dep).get("revisionHistoryLimit"), 10)
        idle = [
            rs
            for rs in old
            if _replicas(rs) == 0
            and _status_int(rs, "replicas") == 0
            and not c.is_deleting(rs)
            and c.generation_of(rs) <= _status_int(rs, "observedGeneration")
        ]
        if len(idle) <= limit:
            return
        idle.sort(key=lambda rs: (_revision(rs), c.name_of(rs)))
        for rs in idle[: len(idle) - limit]:
            c.delete_quietly(self._sets, rs)

    # -- status ---------------------------------------------------------------------------------

    def _sync_status(
        self, dep: Obj, sets: list[Obj], new_rs: Obj | None, *, created: bool
    ) -> Result | None:
        """``syncRolloutStatus``: counts and the Available / Progressing conditions."""
        spec = c.spec_of(dep)
        live = c.status_of(dep)
        want = _replicas(dep)
        available = sum(_status_int(rs, "availableReplicas") for rs in sets)
        total = sum(_replicas(rs) for rs in sets)
        status: Obj = {
            "observedGeneration": c.generation_of(dep),
            "replicas": sum(_status_int(rs, "replicas") for rs in sets),
            "updatedReplicas": _status_int(new_rs, "replicas") if new_rs is not None else 0,
            "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in sets),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        if live.get("collisionCount") is not None:
            status["collisionCount"] = live["collisionCount"]
        conditions = [dict(cond) for cond in live.get("conditions") or ()]
        now = c.now(self.clock)

        if available >= want - _max_unavailable(dep):
            _set_condition(
                conditions, "Available", "True", MIN_AVAILABLE,
                "Deployment has minimum availability.", now=now,
            )  # fmt: skip
        else:
            _set_condition(
                conditions, "Available", "False", MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.", now=now,
            )  # fmt: skip

        rs_name = c.name_of(new_rs) if new_rs is not None else ""
        deadline = spec.get("progressDeadlineSeconds")
        requeue: float | None = None
        if deadline is None:
            conditions = [cond for cond in conditions if cond.get("type") != "Progressing"]
        elif spec.get("paused"):
            _set_condition(
                conditions, "Progressing", "Unknown", PAUSED, "Deployment is paused", now=now
            )
        else:
            progressing = _get(conditions, "Progressing")
            if progressing is not None and progressing.get("reason") == PAUSED:
                _set_condition(
                    conditions, "Progressing", "Unknown", RESUMED, "Deployment is resumed", now=now
                )
                progressing = _get(conditions, "Progressing")
            if created:
                _set_condition(
                    conditions, "Progressing", "True", NEW_RS_CREATED,
                    f'Created new replica set "{rs_name}"', now=now,
                )  # fmt: skip
            elif new_rs is not None and progressing is None:
                _set_condition(
                    conditions, "Progressing", "True", FOUND_NEW_RS,
                    f'Found new replica set "{rs_name}"', now=now,
                )  # fmt: skip
            progressing = _get(conditions, "Progressing")
            complete_before = (
                progressing is not None
                and progressing.get("reason") == NEW_RS_AVAILABLE
                and status["replicas"] == status["updatedReplicas"]
            )
            if not complete_before:
                requeue = self._progress(dep, status, conditions, rs_name, now)
        status["conditions"] = _ordered(conditions)
        if c.differs(live, status):
            try:
                self._deployments.patch_status(
                    c.name_of(dep),
                    {
                        "metadata": {"resourceVersion": c.meta(dep).get("resourceVersion")},
                        "status": status,
                    },
                    c.namespace_of(dep),
                    field_manager=c.FIELD_MANAGER,
                )
            except errors.NotFound:
                return None
        if requeue is not None:
            return Result(requeue_after=max(requeue, 0.05))
        return None

    def _progress(
        self, dep: Obj, status: Obj, conditions: list[Obj], rs_name: str, now: str
    ) -> float | None:
        """The Progressing condition while a rollout is under way; returns when to check
        the progress deadline again."""
        want = _replicas(dep)
        live = c.status_of(dep)
        complete = (
            status["updatedReplicas"] == want
            and status["replicas"] == want
            and status["availableReplicas"] == want
            and status["observedGeneration"] >= c.generation_of(dep)
        )
        if complete:
            _set_condition(
                conditions, "Progressing", "True", NEW_RS_AVAILABLE,
                f'ReplicaSet "{rs_name}" has successfully progressed.', now=now,
            )  # fmt: skip
            return None
        old_before = c.as_int(live.get("replicas")) - c.as_int(live.get("updatedReplicas"))
        old_now = status["replicas"] - status["updatedReplicas"]
        progressed = (
            status["updatedReplicas"] > c.as_int(live.get("updatedReplicas"))
            or old_now < old_before
            or status["readyReplicas"] > c.as_int(live.get("readyReplicas"))
            or status["availableReplicas"] > c.as_int(live.get("availableReplicas"))
        )
        current = _get(conditions, "Progressing")
        if progressed:
            transition = now
            if current is not None and current.get("status") == "True":
                transition = str(current.get("lastTransitionTime") or now)
            conditions[:] = [cond for cond in conditions if cond.get("type") != "Progressing"]
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": now,
                    "lastTransitionTime": transition,
                    "reason": RS_UPDATED,
                    "message": f'ReplicaSet "{rs_name}" is progressing.',
                }
            )
            current = conditions[-1]
        if current is None or current.get("reason") == TIMED_OUT:
            return None
        deadline = c.as_int(c.spec_of(dep).get("progressDeadlineSeconds"), 600)
        since = c.parse_time(current.get("lastUpdateTime"))
        if since is None:
            return None
        left = deadline - (self.clock.now() - since).total_seconds()
        if left < 0:
            _set_condition(
                conditions, "Progressing", "False", TIMED_OUT,
                f'ReplicaSet "{rs_name}" has timed out progressing.', now=now,
            )  # fmt: skip
            return None
        return left + 0.5


def _get(conditions: list[Obj], ctype: str) -> Obj | None:
    return next((cond for cond in conditions if cond.get("type") == ctype), None)


def _set_condition(
    conditions: list[Obj], ctype: str, status: str, reason: str, message: str, *, now: str
) -> None:
    """``SetDeploymentCondition``: nothing changes when status and reason are the same."""
    current = _get(conditions, ctype)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        return
    transition = now
    if current is not None and current.get("status") == status:
        transition = str(current.get("lastTransitionTime") or now)
    conditions[:] = [cond for cond in conditions if cond.get("type") != ctype]
    conditions.append(
        {
            "type": ctype,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }
    )


def _ordered(conditions: list[Obj]) -> list[Obj]:
    order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
    return sorted(conditions, key=lambda cond: order.get(str(cond.get("type")), 9))
