"""A trivial scheduler (the scheduling half of CTRL-4), shared by the pod simulator and the
process kubelet.

A pod without ``spec.nodeName`` whose ``schedulerName`` is ours is bound (``pods/binding``,
as kube-scheduler does) to the Ready, schedulable node that fits it (nodeSelector, required
node affinity, taints) and runs the fewest pods. A pod that fits nowhere gets
``PodScheduled=False`` (reason ``Unschedulable``) and is retried when nodes change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result, Source
from opkit.manager import Manager
from opkit.predicates import new_predicate_funcs

from . import _common as c
from ._base import BuiltinController

__all__ = ["DEFAULT_SCHEDULER_NAME", "Scheduler", "node_fits"]

Obj = dict[str, Any]

DEFAULT_SCHEDULER_NAME = "default-scheduler"
NODE_NAME_INDEX = "opkit.testing/node-name"
_FIELD_MANAGER = "kube-scheduler"


def _node_name_index(pod: Obj) -> list[str]:
    node = c.spec_of(pod).get("nodeName")
    return [str(node)] if node else []


def _unscheduled(pod: Obj) -> bool:
    return not c.spec_of(pod).get("nodeName")


def _tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        effect = tol.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        operator = tol.get("operator") or "Equal"
        key = tol.get("key")
        if not key:
            if operator == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if operator == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expression(expr: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key = str(expr.get("key") or "")
    operator = expr.get("operator")
    wanted = [str(v) for v in expr.get("values") or ()]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _affinity_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    required = ((c.spec_of(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    node_labels = c.labels_of(node)
    fields = {"metadata.name": c.name_of(node)}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_match_expression(e, node_labels) for e in exprs) and all(
            _match_expression(e, fields) for e in field_exprs
        ):
            return True
    return False


def node_fits(pod: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """Why ``pod`` cannot run on ``node`` (upstream's filter wording), or None if it can."""
    ready = c.pod_condition(node, "Ready")
    if c.is_deleting(node) or ready is None or ready.get("status") != "True":
        return "node(s) were not ready"
    if c.spec_of(node).get("unschedulable"):
        return "node(s) were unschedulable"
    node_labels = c.labels_of(node)
    selector = c.spec_of(pod).get("nodeSelector") or {}
    if any(node_labels.get(k) != v for k, v in selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    if not _affinity_matches(pod, node):
        return "node(s) didn't match Pod's node affinity/selector"
    tolerations = c.spec_of(pod).get("tolerations") or []
    for taint in c.spec_of(node).get("taints") or ():
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not _tolerates(tolerations, taint):
            shown = f"{{{taint.get('key')}: {taint.get('value') or ''}}}"
            return f"node(s) had untolerated taint {shown}"
    return None


class Scheduler(BuiltinController):
    """Binds unscheduled pods to nodes."""

    name = "scheduler"

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        scheduler_names: Iterable[str] = (DEFAULT_SCHEDULER_NAME,),
    ) -> None:
        super().__init__(client, clock=clock)
        self.scheduler_names = frozenset(scheduler_names)
        self._pods = client.resource("v1", "Pod")

    def setup(self, manager: Manager) -> None:
        manager.cache.add_indexers("v1", "Pod", {NODE_NAME_INDEX: _node_name_index})
        ctrl = manager.controller(
            "scheduler",
            self,
            # only unscheduled pods concern the scheduler; node events map to them directly
            for_=Source("v1", "Pod", predicates=[new_predicate_funcs(_unscheduled)]),
            watches=[(("v1", "Node"), self._unscheduled_pods)],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    def _unscheduled_pods(self, _node: Obj) -> list[Request]:
        return [
            Request.from_object(p)
            for p in self.cache.list("v1", "Pod", copy=False)
            if _unscheduled(p) and not c.is_deleting(p)
        ]

    def sync(self, request: Request) -> Result | None:
        pod = self.cache.get("v1", "Pod", request.namespace, request.name, copy=False)
        if pod is None or not _unscheduled(pod) or c.is_deleting(pod) or c.is_terminal(pod):
            return None
        if (c.spec_of(pod).get("schedulerName") or DEFAULT_SCHEDULER_NAME) not in (
            self.scheduler_names
        ):
            return None
        nodes = self.cache.list("v1", "Node", copy=False)
        fitting: list[Obj] = []
        reasons: dict[str, int] = {}
        for node in nodes:
            why = node_fits(pod, node)
            if why is None:
                fitting.append(node)
            else:
                reasons[why] = reasons.get(why, 0) + 1
        if not fitting:
            detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
            message = f"0/{len(nodes)} nodes are available" + (f": {detail}." if detail else ".")
            self._set_scheduled(pod, "False", "Unschedulable", message)
            return None
        chosen = min(
            fitting,
            key=lambda n: (
                len(self.cache.by_index("v1", "Pod", NODE_NAME_INDEX, c.name_of(n), copy=False)),
                c.name_of(n),
            ),
        )
        try:
            self._pods.create(
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": c.name_of(pod), "namespace": c.namespace_of(pod)},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": c.name_of(chosen)},
                },
                c.namespace_of(pod),
                subresource="binding",
                name=c.name_of(pod),
                field_manager=_FIELD_MANAGER,
            )
        except (errors.NotFound, errors.Conflict):
            return None  # gone, or someone else bound it
        # The binding itself set PodScheduled=True, as upstream's BindingREST does.
        return None

    def _set_scheduled(self, pod: Obj, status: str, reason: str, message: str) -> None:
        """``PodScheduled`` as the scheduler sets it when no node fits."""
        current = c.pod_condition(pod, "PodScheduled") or {}
        if (
            current.get("status") == status
            and (current.get("reason") or "") == reason
            and (current.get("message") or "") == message
        ):
            return
        cond: Obj = {"type": "PodScheduled", "status": status}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        cond["lastTransitionTime"] = (
            current.get("lastTransitionTime")
            if current.get("status") == status
            else c.now(self.clock)
        )
        try:
            self._pods.patch_status(
                c.name_of(pod),
                {"status": {"conditions": [cond]}},
                c.namespace_of(pod),
                patch_type="strategic",
                field_manager=_FIELD_MANAGER,
            )
        except errors.NotFound:
            return
