"""ConfigMapMirror: copy labelled ConfigMaps into every labelled namespace, and clean up.

A ConfigMap labelled ``mirror.opkit.dev/enabled=true`` (a *source*) is copied, under the same
name, into every namespace labelled ``mirror.opkit.dev/target=true`` other than its own. A copy
(a *mirror*) carries the annotation ``mirror.opkit.dev/source: <namespace>/<name>`` and the label
``mirror.opkit.dev/mirror=true``. When the source changes, its mirrors follow; when it is deleted
or unlabelled, or a namespace loses the target label, the mirrors go away.

Why no ownerReferences: an owner reference cannot point across namespaces, so the garbage
collector cannot clean mirrors up. Instead the reconciler finds a source's mirrors through a
cache index on the source annotation, and every mirror event wakes its source: deleting a
source while the operator is down is still cleaned up at the next start, because the mirrors
left behind map back to a source that no longer exists. Nothing here keeps state in memory.

The reconciler only reads the cache and writes when something differs, so a converged cluster
costs no API writes however often it is reconciled.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping
from typing import Any

from opkit import cli, errors
from opkit.controller import Cache, Request, Result, Source
from opkit.events import EventRecorder
from opkit.manager import Manager
from opkit.predicates import Funcs, LabelChangedPredicate

__all__ = [
    "ENABLED_LABEL",
    "MIRROR_LABEL",
    "NAME",
    "SOURCE_ANNOTATION",
    "TARGET_LABEL",
    "MirrorReconciler",
    "main",
    "setup",
]

NAME = "configmap-mirror"
ENABLED_LABEL = "mirror.opkit.dev/enabled"
TARGET_LABEL = "mirror.opkit.dev/target"
MIRROR_LABEL = "mirror.opkit.dev/mirror"
SOURCE_ANNOTATION = "mirror.opkit.dev/source"
SOURCE_INDEX = "mirror-source"

CONFIGMAP = ("v1", "ConfigMap")
NAMESPACE = ("v1", "Namespace")

Obj = dict[str, Any]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def is_source(obj: Mapping[str, Any]) -> bool:
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return labels.get(ENABLED_LABEL) == "true" and SOURCE_ANNOTATION not in annotations


def source_of(obj: Mapping[str, Any]) -> str | None:
    """The ``namespace/name`` a mirror was copied from (None for other ConfigMaps)."""
    value = (_meta(obj).get("annotations") or {}).get(SOURCE_ANNOTATION)
    return value if isinstance(value, str) and "/" in value else None


def index_by_source(obj: Obj) -> list[str]:
    source = source_of(obj)
    return [source] if source else []


def is_target(namespace: Mapping[str, Any]) -> bool:
    meta = _meta(namespace)
    terminating = (namespace.get("status") or {}).get("phase") == "Terminating"
    if terminating or meta.get("deletionTimestamp"):
        return False
    return (meta.get("labels") or {}).get(TARGET_LABEL) == "true"


def desired_mirror(source: Mapping[str, Any], namespace: str, key: str) -> Obj:
    meta = _meta(source)
    mirror: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": meta["name"],
            "namespace": namespace,
            "labels": {MIRROR_LABEL: "true"},
            "annotations": {SOURCE_ANNOTATION: key},
        },
    }
    for field in ("data", "binaryData"):
        if source.get(field):
            mirror[field] = dict(source[field])
    if source.get("immutable"):
        mirror["immutable"] = True
    return mirror


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for field in ("data", "binaryData"):
        if (current.get(field) or {}) != (desired.get(field) or {}):
            return True
    if bool(current.get("immutable")) != bool(desired.get("immutable")):
        return True
    labels = _meta(current).get("labels") or {}
    annotations = _meta(current).get("annotations") or {}
    want = _meta(desired)
    return any(labels.get(k) != v for k, v in want["labels"].items()) or any(
        annotations.get(k) != v for k, v in want["annotations"].items()
    )


class MirrorReconciler:
    """Makes the mirrors of one source ConfigMap match it (the request names the source)."""

    def __init__(self, manager: Manager, recorder: EventRecorder) -> None:
        self.cache: Cache = manager.cache
        self.configmaps = manager.client.resource(*CONFIGMAP)
        self.recorder = recorder

    def reconcile(self, request: Request) -> Result | None:
        key = request.key
        source = self.cache.get(*CONFIGMAP, request.namespace, request.name)
        wanted: list[str] = []
        if source is not None and is_source(source) and not _meta(source).get("deletionTimestamp"):
            wanted = [
                str(_meta(ns)["name"])
                for ns in self.cache.list(*NAMESPACE, copy=False)
                if is_target(ns) and _meta(ns).get("name") != request.namespace
            ]
        existing = {
            str(_meta(m)["namespace"]): m
            for m in self.cache.by_index(*CONFIGMAP, SOURCE_INDEX, key)
        }
        created: list[str] = []
        updated: list[str] = []
        conflicts: list[str] = []
        for namespace in wanted:
            assert source is not None
            desired = desired_mirror(source, namespace, key)
            current = existing.pop(namespace, None)
            if current is None:
                if self.cache.get(*CONFIGMAP, namespace, request.name, copy=False) is not None:
                    conflicts.append(namespace)  # someone else's ConfigMap: leave it alone
                    continue
                try:
                    self.configmaps.create(desired, namespace)
                except errors.AlreadyExists:
                    return Result(requeue=True)  # our cache lags behind: look again shortly
                created.append(namespace)
            elif _differs(current, desired):
                if current.get("immutable"):
                    self.configmaps.delete(request.name, namespace)  # recreated next time
                    return Result(requeue=True)
                desired["metadata"]["resourceVersion"] = _meta(current)["resourceVersion"]
                self.configmaps.update(desired, namespace)  # Conflict -> retried with backoff
                updated.append(namespace)
        removed: list[str] = []
        for namespace in sorted(existing):
            with contextlib.suppress(errors.NotFound):
                self.configmaps.delete(request.name, namespace)
            removed.append(namespace)
        if source is not None:
            self._report(source, created, updated, removed, conflicts)
        return None

    def _report(
        self,
        source: Obj,
        created: list[str],
        updated: list[str],
        removed: list[str],
        conflicts: list[str],
    ) -> None:
        if created:
            self.recorder.normal(source, "Mirrored", f"copied to {', '.join(created)}")
        if updated:
            self.recorder.normal(source, "Updated", f"updated the copies in {', '.join(updated)}")
        if removed:
            self.recorder.normal(source, "Removed", f"removed the copies in {', '.join(removed)}")
        if conflicts:
            self.recorder.warning(
                source,
                "MirrorConflict",
                f"not copied to {', '.join(conflicts)}: a ConfigMap with this name that is "
                "not a mirror already exists there",
            )


def _sources_for_namespace(cache: Cache) -> Any:
    def mapper(_namespace: Obj) -> list[Request]:
        return [
            Request.from_object(cm)
            for cm in cache.list(*CONFIGMAP, label_selector={ENABLED_LABEL: "true"}, copy=False)
            if is_source(cm)
        ]

    return mapper


def _mirror_to_source(obj: Obj) -> list[Request]:
    source = source_of(obj)
    return [Request.from_key(source)] if source else []


def setup(manager: Manager) -> None:
    """Add the ConfigMapMirror controller to ``manager``."""
    manager.cache.add_indexers(*CONFIGMAP, {SOURCE_INDEX: index_by_source})
    reconciler = MirrorReconciler(manager, manager.event_recorder(NAME))
    sources_only = Funcs(
        create=is_source,
        update=lambda old, new: is_source(old) or is_source(new),
        delete=is_source,
    )
    manager.controller(
        NAME,
        reconciler,
        for_=Source(*CONFIGMAP, predicates=[sources_only]),
        watches=[
            Source(*CONFIGMAP, handler=_mirror_to_source),
            Source(
                *NAMESPACE,
                handler=_sources_for_namespace(manager.cache),
                predicates=[LabelChangedPredicate()],
            ),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the common operator flags, run until SIGTERM/SIGINT, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.configmap_mirror",
        description="Mirror ConfigMaps labelled mirror.opkit.dev/enabled=true into every "
        "namespace labelled mirror.opkit.dev/target=true.",
    )
    cli.add_common_flags(parser)
    options = cli.options_from_args(parser.parse_args(argv))
    if options.namespace:
        parser.error("configmap-mirror copies across namespaces: it cannot watch only one")
    manager = cli.build_manager(options, NAME)
    try:
        setup(manager)
        return manager.run()
    finally:
        manager.client.close()
