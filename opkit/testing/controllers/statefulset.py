"""StatefulSet controller (CTRL-3), following kube-controller-manager's ``statefulset`` package.

Pods are ``<set>-<ordinal>`` with a stable identity (hostname, subdomain, identity labels) and
their own PersistentVolumeClaims ``<claim>-<set>-<ordinal>`` made from the claim templates.
``OrderedReady`` creates ordinal *i* only once 0..i-1 are Running and Ready, and removes pods
highest first, one at a time; ``Parallel`` does both at once. Template changes are recorded as
ControllerRevisions; ``RollingUpdate`` replaces pods from the highest ordinal down to the
partition, one at a time, waiting for each replacement to be Ready; ``OnDelete`` waits for
someone to delete them.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Mapping
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
    "POD_INDEX_LABEL",
    "POD_NAME_LABEL",
    "REVISION_LABEL",
    "StatefulSetController",
]

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
REVISION_HASH_LABEL = "controller.kubernetes.io/hash"

_ORDINAL = re.compile(r"^(.*)-([0-9]+)\Z")
_KIND = "StatefulSet"
_API_VERSION = "apps/v1"


def parent_and_ordinal(name: str) -> tuple[str, int]:
    """``getParentNameAndOrdinal``: ``("web", 2)`` for ``web-2``; ordinal -1 if none."""
    m = _ORDINAL.match(name)
    if m is None:
        return "", -1
    try:
        return m.group(1), int(m.group(2))
    except ValueError:
        return "", -1


def claim_name(claim_template: Mapping[str, Any], set_name: str, ordinal: int) -> str:
    return f"{c.name_of(claim_template)}-{set_name}-{ordinal}"


def _revision_patch(template: Mapping[str, Any]) -> Obj:
    """``getPatch``: what a ControllerRevision stores (a strategic patch replacing the template)."""
    tmpl = copy.deepcopy(dict(template))
    tmpl["$patch"] = "replace"
    return {"spec": {"template": tmpl}}


def _template_of(revision: Mapping[str, Any]) -> Obj:
    data = revision.get("data") or {}
    tmpl = dict(((data.get("spec") or {}).get("template")) or {})
    tmpl.pop("$patch", None)
    return tmpl


def _revision_number(revision: Mapping[str, Any]) -> int:
    return c.as_int(revision.get("revision"))


class _Set:
    """The parts of a StatefulSet (at one revision) that build pods."""

    def __init__(self, sts: Mapping[str, Any], template: Mapping[str, Any]) -> None:
        self.obj = sts
        self.name = c.name_of(sts)
        self.namespace = c.namespace_of(sts)
        self.spec = c.spec_of(sts)
        self.template = template

    def pod_name(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}"

    def claims(self, ordinal: int) -> list[Obj]:
        """``getPersistentVolumeClaims``: one claim per template, named for the ordinal."""
        match_labels = dict((self.spec.get("selector") or {}).get("matchLabels") or {})
        out: list[Obj] = []
        for tmpl in self.spec.get("volumeClaimTemplates") or ():
            tmeta = c.meta(tmpl)
            claim_labels = dict(tmeta.get("labels") or {})
            claim_labels.update(match_labels)
            metadata: Obj = {
                "name": claim_name(tmpl, self.name, ordinal),
                "namespace": self.namespace,
            }
            if claim_labels:
                metadata["labels"] = claim_labels
            if tmeta.get("annotations"):
                metadata["annotations"] = dict(tmeta["annotations"])
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": metadata,
                    "spec": copy.deepcopy(dict(c.spec_of(tmpl))),
                }
            )
        return out

    def new_pod(self, ordinal: int, revision: str) -> Obj:
        """``newStatefulSetPod`` + ``setPodRevision``."""
        owner = c.new_controller_ref(self.obj, _API_VERSION, _KIND)
        pod = c.pod_from_template(self.template, self.namespace, owner)
        name = self.pod_name(ordinal)
        pod["metadata"]["name"] = name
        pod_labels = pod["metadata"].setdefault("labels", {})
        pod_labels[POD_NAME_LABEL] = name
        pod_labels[POD_INDEX_LABEL] = str(ordinal)
        pod_labels[REVISION_LABEL] = revision
        spec = pod["spec"]
        spec["hostname"] = name
        if self.spec.get("serviceName"):
            spec["subdomain"] = self.spec["serviceName"]
        claim_volumes = []
        claim_templates = list(self.spec.get("volumeClaimTemplates") or ())
        claim_names = {c.name_of(t) for t in claim_templates}
        for tmpl in claim_templates:
            claim_volumes.append(
                {
                    "name": c.name_of(tmpl),
                    "persistentVolumeClaim": {"claimName": claim_name(tmpl, self.name, ordinal)},
                }
            )
        others = [v for v in spec.get("volumes") or () if v.get("name") not in claim_names]
        if claim_volumes or others:
            spec["volumes"] = claim_volumes + others
        return pod


class StatefulSetController(BuiltinController):
    """Reconciles StatefulSets into ordinal pods, claims and ControllerRevisions."""

    name = "statefulset"

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        super().__init__(client, clock=clock)
        self._sets = client.resource(_API_VERSION, _KIND)
        self._pods = client.resource("v1", "Pod")
        self._claims = client.resource("v1", "PersistentVolumeClaim")
        self._revisions = client.resource(_API_VERSION, "ControllerRevision")

    def setup(self, manager: Manager) -> None:
        index = {c.CONTROLLER_UID_INDEX: c.controller_uid_index}
        manager.cache.add_indexers("v1", "Pod", index)
        manager.cache.add_indexers(_API_VERSION, "ControllerRevision", index)
        ctrl = manager.controller(
            "statefulset",
            self,
            for_=(_API_VERSION, _KIND),
            owns=[("v1", "Pod"), (_API_VERSION, "ControllerRevision")],
            watches=[(("v1", "PersistentVolumeClaim"), self._claim_to_sets)],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _claim_to_sets(self, claim: Obj) -> list[Request]:
        """A claim named ``<template>-<set>-<ordinal>`` wakes the sets it could belong to (a
        deleted claim of a pending pod must be recreated)."""
        parent, ordinal = parent_and_ordinal(c.name_of(claim))
        if ordinal < 0:
            return []
        ns = c.namespace_of(claim)
        out = []
        for sts in self.cache.list(_API_VERSION, _KIND, ns, copy=False):
            name = c.name_of(sts)
            if parent.endswith("-" + name) and c.spec_of(sts).get("volumeClaimTemplates"):
                out.append(Request(ns, name))
        return out

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        sts = self.cache.get(_API_VERSION, _KIND, request.namespace, request.name, copy=False)
        if sts is None or c.is_deleting(sts):
            return None  # the garbage collector takes it from here
        try:
            selector = c.selector_of(sts)
        except _labels.SelectorError as exc:
            raise TerminalError(f"invalid selector: {exc}") from exc
        pods = self._pods_of(sts, selector)
        revisions = self._revisions_of(sts)
        status = dict(c.status_of(sts))
        collision = c.as_int(status.get("collisionCount"))
        update_rev, collision = self._update_revision(sts, revisions, collision)
        revisions = self._revisions_of(sts, extra=update_rev)
        current_rev = next(
            (r for r in revisions if c.name_of(r) == status.get("currentRevision")), update_rev
        )
        current_set = _Set(sts, _template_of(current_rev))
        update_set = _Set(sts, _template_of(update_rev))
        requeue_after = self._update_pods(
            sts,
            pods,
            current_set,
            update_set,
            current_rev=c.name_of(current_rev),
            update_rev=c.name_of(update_rev),
        )
        # Status counts what the cache shows now: the pods this pass created or deleted are
        # counted when their events arrive (and wake this set again).
        self._write_status(sts, pods, current_rev, update_rev, collision)
        self._truncate_history(sts, pods, revisions, current_rev, update_rev)
        if requeue_after is not None:
            return Result(requeue_after=max(requeue_after, 0.05))
        return None

    def _pods_of(self, sts: Obj, selector: _labels.Selector) -> list[Obj]:
        """Pods this set controls (adopting matching orphans, as ``ClaimPods`` does)."""
        name = c.name_of(sts)
        owned = [
            p
            for p in self.cache.by_index(
                "v1", "Pod", c.CONTROLLER_UID_INDEX, c.uid_of(sts), copy=False
            )
            if parent_and_ordinal(c.name_of(p))[0] == name
        ]
        if selector.empty():
            return owned
        owner_ref = c.new_controller_ref(sts, _API_VERSION, _KIND)
        for pod in self.cache.list("v1", "Pod", c.namespace_of(sts), selector, copy=False):
            if c.controller_ref(pod) is not None or c.is_deleting(pod):
                continue
            if parent_and_ordinal(c.name_of(pod))[0] != name:
                continue
            adopted = c.adopt(self._pods, pod, owner_ref)
            if adopted is not None:
                owned.append(adopted)
        return owned

    def _revisions_of(self, sts: Obj, extra: Obj | None = None) -> list[Obj]:
        revs = {
            c.name_of(r): r
            for r in self.cache.by_index(
                _API_VERSION,
                "ControllerRevision",
                c.CONTROLLER_UID_INDEX,
                c.uid_of(sts),
                copy=False,
            )
        }
        if extra is not None:
            revs[c.name_of(extra)] = extra
        return sorted(revs.values(), key=lambda r: (_revision_number(r), c.name_of(r)))

    def _update_revision(self, sts: Obj, revisions: list[Obj], collision: int) -> tuple[Obj, int]:
        """``getStatefulSetRevisions``: the revision of the current template, created (or
        renumbered, on a rollback) as needed."""
        data = _revision_patch(c.spec_of(sts).get("template") or {})
        next_number = _revision_number(revisions[-1]) + 1 if revisions else 1
        equal = [r for r in revisions if c.same(r.get("data"), data)]
        if equal and equal[-1] is revisions[-1]:
            return revisions[-1], collision
        if equal:
            rev = equal[-1]
            updated: Obj = self._revisions.patch(
                c.name_of(rev),
                {"revision": next_number},
                c.namespace_of(rev),
                field_manager=c.FIELD_MANAGER,
            )
            return updated, collision
        template_labels = c.labels_of(c.spec_of(sts).get("template") or {})
        while True:
            digest = c.revision_hash(data, collision)
            prefix = c.name_of(sts)[:223]
            rev_labels = dict(template_labels)
            rev_labels[REVISION_HASH_LABEL] = digest
            revision: Obj = {
                "apiVersion": _API_VERSION,
                "kind": "ControllerRevision",
                "metadata": {
                    "name": f"{prefix}-{digest}",
                    "namespace": c.namespace_of(sts),
                    "labels": rev_labels,
                    "ownerReferences": [c.new_controller_ref(sts, _API_VERSION, _KIND)],
                },
                "data": data,
                "revision": next_number,
            }
            annotations = c.annotations_of(sts)
            if annotations:
                revision["metadata"]["annotations"] = annotations
            try:
                created: Obj = self._revisions.create(revision, field_manager=c.FIELD_MANAGER)
                return created, collision
            except errors.AlreadyExists:
                existing: Obj = self._revisions.get(
                    revision["metadata"]["name"], c.namespace_of(sts)
                )
                if c.same(existing.get("data"), data):
                    return existing, collision
                collision += 1

    def _update_pods(
        self,
        sts: Obj,
        pods: list[Obj],
        current_set: _Set,
        update_set: _Set,
        *,
        current_rev: str,
        update_rev: str,
    ) -> float | None:
        """``updateStatefulSet``: create, fix, delete and replace pods. Returns a delay after
        which to look again (waiting for minReadySeconds), if any."""
        spec = c.spec_of(sts)
        count = max(0, c.as_int(spec.get("replicas"), 1))
        start = max(0, c.as_int((spec.get("ordinals") or {}).get("start")))
        min_ready = c.as_int(spec.get("minReadySeconds"))
        strategy = spec.get("updateStrategy") or {}
        strategy_type = strategy.get("type") or "RollingUpdate"
        partition = c.as_int((strategy.get("rollingUpdate") or {}).get("partition"))
        at = self.clock.now()

        replicas: list[Obj | None] = [None] * count
        condemned: list[Obj] = []
        for member in pods:
            ordinal = parent_and_ordinal(c.name_of(member))[1]
            if start <= ordinal < start + count:
                replicas[ordinal - start] = member
            elif ordinal >= 0:
                condemned.append(member)
        condemned.sort(key=lambda p: parent_and_ordinal(c.name_of(p))[1], reverse=True)

        def new_pod(ordinal: int) -> Obj:
            # ``newVersionedStatefulSetPod``: ordinals below the partition stay current.
            if strategy_type == "RollingUpdate" and ordinal < start + partition:
                return current_set.new_pod(ordinal, current_rev)
            return update_set.new_pod(ordinal, update_rev)

        def healthy(pod: Obj) -> bool:
            return c.is_running_and_ready(pod) and not c.is_deleting(pod)

        first_unhealthy: Obj | None = None
        for candidate in [p for p in replicas if p is not None] + condemned[::-1]:
            if not healthy(candidate):
                first_unhealthy = candidate
                break

        monotonic = spec.get("podManagementPolicy") != "Parallel"
        wait: float | None = None

        def note_wait(seconds: float | None) -> None:
            nonlocal wait
            if seconds is not None and seconds > 0:
                wait = seconds if wait is None else min(wait, seconds)

        # 1. every ordinal in range exists, is healthy (monotonic) and has its identity
        for i in range(count):
            ordinal = start + i
            pod = replicas[i]
            if pod is None:
                planned = new_pod(ordinal)
                self._create_claims(update_set, sts, ordinal)
                # AlreadyExists: the cache is behind; its add event brings us back
                with contextlib.suppress(errors.AlreadyExists):
                    self._pods.create(planned, field_manager=c.FIELD_MANAGER)
                if monotonic:
                    return wait
                continue
            if c.is_terminal(pod):
                if not c.is_deleting(pod):
                    c.delete_quietly(self._pods, pod)
                if monotonic:
                    return wait
                continue
            if c.phase_of(pod) == "Pending":
                self._create_claims(update_set, sts, ordinal)
            if monotonic:
                if c.is_deleting(pod) or not c.is_running_and_ready(pod):
                    return wait
                after = c.available_after(pod, min_ready, at)
                if after is None or after > 0:
                    note_wait(after)
                    return wait
            self._enforce_identity(update_set, sts, pod, ordinal)

        # 2. claims of condemned pods follow the retention policy before the pods go
        for gone in condemned:
            self._fix_claim_owners(update_set, sts, gone, scaled_down=True)

        # 3. scale down, highest ordinal first
        for gone in condemned:
            if c.is_deleting(gone):
                if monotonic:
                    return wait
                continue
            if monotonic and gone is not first_unhealthy:
                if not c.is_running_and_ready(gone):
                    return wait
                after = c.available_after(gone, min_ready, at)
                if after is None or after > 0:
                    note_wait(after)
                    return wait
            c.delete_quietly(self._pods, gone)
            if monotonic:
                return wait

        # 4. rolling update, highest ordinal first, down to the partition
        if strategy_type == "OnDelete":
            return wait
        for i in range(count - 1, partition - 1, -1):
            target = replicas[i]
            if target is None:
                return wait
            if c.labels_of(target).get(REVISION_LABEL) != update_rev and not c.is_deleting(target):
                c.delete_quietly(self._pods, target)
                return wait
            if not healthy(target):
                return wait
        return wait

    # -- pods and claims ------------------------------------------------------------------------

    def _create_claims(self, update_set: _Set, sts: Obj, ordinal: int) -> None:
        """``createPersistentVolumeClaims``: create the missing claims of one ordinal."""
        policy = c.spec_of(sts).get("persistentVolumeClaimRetentionPolicy") or {}
        for claim in update_set.claims(ordinal):
            live = self.cache.get(
                "v1",
                "PersistentVolumeClaim",
                claim["metadata"]["namespace"],
                claim["metadata"]["name"],
                copy=False,
            )
            if live is not None:
                continue
            if policy.get("whenDeleted") == "Delete":
                claim["metadata"]["ownerReferences"] = [
                    c.new_controller_ref(sts, _API_VERSION, _KIND)
                ]
            with contextlib.suppress(errors.AlreadyExists):
                self._claims.create(claim, field_manager=c.FIELD_MANAGER)

    def _enforce_identity(self, update_set: _Set, sts: Obj, pod: Obj, ordinal: int) -> None:
        """``identityMatches`` / ``updateIdentity`` (the labels; volumes are immutable) and the
        claims' retention owners."""
        want = {POD_NAME_LABEL: c.name_of(pod), POD_INDEX_LABEL: str(ordinal)}
        have = c.labels_of(pod)
        missing = {k: v for k, v in want.items() if have.get(k) != v}
        if missing:
            try:
                self._pods.patch(
                    c.name_of(pod),
                    {"metadata": {"labels": missing}},
                    c.namespace_of(pod),
                    field_manager=c.FIELD_MANAGER,
                )
            except errors.NotFound:
                return
        self._fix_claim_owners(update_set, sts, pod, scaled_down=False)

    def _fix_claim_owners(self, update_set: _Set, sts: Obj, pod: Obj, *, scaled_down: bool) -> None:
        """``updateClaimOwnerRefForSetAndPod``: claim owners per the retention policy.

        Retain/Retain: none. whenDeleted=Delete: the set (while the pod is in range).
        whenScaled=Delete: the pod once it is scaled down, so the claim goes with it.
        """
        policy = c.spec_of(sts).get("persistentVolumeClaimRetentionPolicy") or {}
        when_deleted = policy.get("whenDeleted") or "Retain"
        when_scaled = policy.get("whenScaled") or "Retain"
        set_uid, pod_uid = c.uid_of(sts), c.uid_of(pod)
        ordinal = parent_and_ordinal(c.name_of(pod))[1]
        for claim in update_set.claims(ordinal):
            live = self.cache.get(
                "v1",
                "PersistentVolumeClaim",
                claim["metadata"]["namespace"],
                claim["metadata"]["name"],
                copy=False,
            )
            if live is None or c.is_deleting(live):
                continue
            refs = [r for r in c.meta(live).get("ownerReferences") or () if isinstance(r, dict)]
            others = [r for r in refs if r.get("uid") not in (set_uid, pod_uid)]
            if any(r.get("controller") for r in others):
                continue  # someone else controls this claim: leave it alone
            wanted: list[Obj] = []
            if when_scaled == "Delete" and scaled_down:
                wanted.append(c.new_controller_ref(pod, "v1", "Pod"))
            elif when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down):
                wanted.append(c.new_controller_ref(sts, _API_VERSION, _KIND))
            ours = [r for r in refs if r.get("uid") in (set_uid, pod_uid)]
            if {r.get("uid") for r in ours} == {r["uid"] for r in wanted}:
                continue
            try:
                self._claims.patch(
                    c.name_of(live),
                    {
                        "metadata": {
                            "resourceVersion": c.meta(live).get("resourceVersion"),
                            "ownerReferences": others + wanted,
                        }
                    },
                    c.namespace_of(live),
                    field_manager=c.FIELD_MANAGER,
                )
            except errors.NotFound:
                continue

    # -- status and history ---------------------------------------------------------------------

    def _write_status(
        self, sts: Obj, pods: list[Obj], current_rev: Obj, update_rev: Obj, collision: int
    ) -> None:
        spec = c.spec_of(sts)
        min_ready = c.as_int(spec.get("minReadySeconds"))
        at = self.clock.now()
        current_name, update_name = c.name_of(current_rev), c.name_of(update_rev)
        replicas = ready = available = current = updated = 0
        for pod in pods:
            if not c.phase_of(pod):
                continue
            replicas += 1
            if c.is_running_and_ready(pod):
                ready += 1
                if c.is_pod_available(pod, min_ready, at):
                    available += 1
            if not c.is_deleting(pod):
                revision = c.labels_of(pod).get(REVISION_LABEL)
                if revision == current_name:
                    current += 1
                if revision == update_name:
                    updated += 1
        status: Obj = {
            "observedGeneration": c.generation_of(sts),
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": collision,
        }
        # ``completeRollingUpdate``
        strategy_type = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
        if strategy_type == "RollingUpdate" and updated == replicas and ready == replicas:
            status["currentReplicas"] = updated
            status["currentRevision"] = update_name
        live = c.status_of(sts)
        if not c.differs(live, status):
            return
        try:
            self._sets.patch_status(
                c.name_of(sts),
                {
                    "metadata": {"resourceVersion": c.meta(sts).get("resourceVersion")},
                    "status": status,
                },
                c.namespace_of(sts),
                field_manager=c.FIELD_MANAGER,
            )
        except errors.NotFound:
            return

    def _truncate_history(
        self, sts: Obj, pods: list[Obj], revisions: list[Obj], current: Obj, update: Obj
    ) -> None:
        live = {c.name_of(current), c.name_of(update)}
        live.update(c.labels_of(p).get(REVISION_LABEL, "") for p in pods)
        history = [r for r in revisions if c.name_of(r) not in live]
        limit = c.as_int(c.spec_of(sts).get("revisionHistoryLimit"), 10)
        for rev in history[: max(0, len(history) - limit)]:
            c.delete_quietly(self._revisions, rev)
