"""PersistentVolumeClaim binder with a built-in provisioner (CTRL-9).

A Pending claim gets its own PersistentVolume ``pvc-<claim uid>``: a ``hostPath`` directory
under ``data_dir`` (created by whoever runs the pod, i.e. the kubelet), capacity and access
modes from the claim, ``persistentVolumeReclaimPolicy: Delete`` and a ``claimRef``. The claim
gets ``spec.volumeName``, the bind annotations and ``status`` Bound. A claim that names an
existing volume (``spec.volumeName``) is bound to it. When a claim goes away, the volume it
was bound to is deleted (reclaim policy Delete) or marked Released (Retain), and
``on_volume_deleted(pv)`` is called so the kubelet can remove the directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from opkit import errors
from opkit.client import Client
from opkit.clock import Clock
from opkit.controller import Request, Result
from opkit.manager import Manager

from . import _common as c
from ._base import BuiltinController

__all__ = [
    "BIND_COMPLETED_ANNOTATION",
    "BOUND_BY_CONTROLLER_ANNOTATION",
    "PROVISIONED_BY_ANNOTATION",
    "PROVISIONER",
    "PVCBinder",
    "VolumeHook",
]

Obj = dict[str, Any]
VolumeHook = Callable[[Obj], object]

BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
PROVISIONER = "opkit.dev/hostpath"
_CLAIM_KEY_INDEX = "opkit.testing/claim-key"
_FIELD_MANAGER = "persistentvolume-binder"

_log = logging.getLogger("opkit.testing.controllers")


def _claim_key_index(pv: Obj) -> list[str]:
    ref = c.spec_of(pv).get("claimRef") or {}
    if not ref.get("name") or not ref.get("namespace"):
        return []
    return [f"{ref['namespace']}/{ref['name']}"]


def _pv_key(name: str) -> str:
    """Requests for volumes are queued with this prefix (claims are namespaced, volumes not)."""
    return f"pv:{name}"


class PVCBinder(BuiltinController):
    """Provisions and binds volumes for claims; reclaims volumes of deleted claims."""

    name = "pvc-binder"

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        data_dir: str = "/var/lib/opkit/volumes",
        on_volume_deleted: VolumeHook | None = None,
    ) -> None:
        super().__init__(client, clock=clock)
        self.data_dir = data_dir
        self.on_volume_deleted = on_volume_deleted
        self._claims = client.resource("v1", "PersistentVolumeClaim")
        self._volumes = client.resource("v1", "PersistentVolume")

    def setup(self, manager: Manager) -> None:
        manager.cache.add_indexers("v1", "PersistentVolume", {_CLAIM_KEY_INDEX: _claim_key_index})
        ctrl = manager.controller(
            "pvc-binder",
            self,
            for_=("v1", "PersistentVolumeClaim"),
            watches=[(("v1", "PersistentVolume"), self._volume_requests)],
            need_leader_election=False,
        )
        self._bind(manager, ctrl)

    @staticmethod
    def _volume_requests(pv: Obj) -> list[Request]:
        out = [Request("", _pv_key(c.name_of(pv)))]
        ref = c.spec_of(pv).get("claimRef") or {}
        if ref.get("name") and ref.get("namespace"):
            out.append(Request(str(ref["namespace"]), str(ref["name"])))
        return out

    def path_for(self, pv_name: str) -> str:
        return os.path.join(self.data_dir, pv_name)

    # -- reconcile ------------------------------------------------------------------------------

    def sync(self, request: Request) -> Result | None:
        if not request.namespace and request.name.startswith("pv:"):
            self._sync_volume(request.name[3:])
            return None
        claim = self.cache.get(
            "v1", "PersistentVolumeClaim", request.namespace, request.name, copy=False
        )
        if claim is None:
            for volume in self.cache.by_index(
                "v1", "PersistentVolume", _CLAIM_KEY_INDEX, request.key, copy=False
            ):
                self._sync_volume(c.name_of(volume))
            return None
        if c.is_deleting(claim):
            return None
        volume_name = c.spec_of(claim).get("volumeName")
        if volume_name:
            pv = self.cache.get("v1", "PersistentVolume", None, str(volume_name), copy=False)
            if pv is None:
                return None  # pre-bound to a volume that does not exist (yet): stay Pending
            self._bind_volume(pv, claim)
            self._bind_claim(claim, pv)
            return None
        pv = self._provision(claim)
        self._bind_claim(claim, pv)
        return None

    def _provision(self, claim: Obj) -> Obj:
        name = f"pvc-{c.uid_of(claim)}"
        existing = self.cache.get("v1", "PersistentVolume", None, name, copy=False)
        if existing is not None:
            return existing
        spec = c.spec_of(claim)
        storage = str(((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi")
        pv_spec: Obj = {
            "capacity": {"storage": storage},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": self.path_for(name), "type": "DirectoryOrCreate"},
            "claimRef": _claim_ref(claim),
        }
        if spec.get("storageClassName"):
            pv_spec["storageClassName"] = spec["storageClassName"]
        pv: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {PROVISIONED_BY_ANNOTATION: PROVISIONER},
            },
            "spec": pv_spec,
        }
        try:
            created: Obj = self._volumes.create(pv, field_manager=_FIELD_MANAGER)
        except errors.AlreadyExists:
            created = self._volumes.get(name)
        self._set_volume_phase(created, "Bound")
        return created

    def _bind_volume(self, pv: Obj, claim: Obj) -> None:
        ref = c.spec_of(pv).get("claimRef") or {}
        if ref.get("uid") and ref.get("uid") != c.uid_of(claim):
            return  # bound to another claim
        if ref.get("uid") != c.uid_of(claim):
            self._volumes.patch(
                c.name_of(pv),
                {"spec": {"claimRef": _claim_ref(claim)}},
                field_manager=_FIELD_MANAGER,
            )
        self._set_volume_phase(pv, "Bound")

    def _set_volume_phase(self, pv: Obj, phase: str) -> None:
        if c.status_of(pv).get("phase") == phase:
            return
        try:
            self._volumes.patch_status(
                c.name_of(pv), {"status": {"phase": phase}}, field_manager=_FIELD_MANAGER
            )
        except errors.NotFound:
            return

    def _bind_claim(self, claim: Obj, pv: Obj) -> None:
        pv_spec = c.spec_of(pv)
        ref = pv_spec.get("claimRef") or {}
        if ref.get("uid") and ref.get("uid") != c.uid_of(claim):
            return
        annotations = c.annotations_of(claim)
        ns, name = c.namespace_of(claim), c.name_of(claim)
        want_annotations = {BIND_COMPLETED_ANNOTATION: "yes"}
        if not c.spec_of(claim).get("volumeName"):
            want_annotations[BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
        patch: Obj = {}
        if c.spec_of(claim).get("volumeName") != c.name_of(pv):
            patch["spec"] = {"volumeName": c.name_of(pv)}
        missing = {k: v for k, v in want_annotations.items() if annotations.get(k) != v}
        if missing:
            patch["metadata"] = {"annotations": missing}
        if patch:
            try:
                self._claims.patch(name, patch, ns, field_manager=_FIELD_MANAGER)
            except errors.NotFound:
                return
        status: Obj = {
            "phase": "Bound",
            "accessModes": list(pv_spec.get("accessModes") or []),
            "capacity": dict(pv_spec.get("capacity") or {}),
        }
        if c.differs(c.status_of(claim), status):
            try:
                self._claims.patch_status(
                    name, {"status": status}, ns, field_manager=_FIELD_MANAGER
                )
            except errors.NotFound:
                return

    def _sync_volume(self, name: str) -> None:
        """Reclaim a volume whose claim is gone (``reclaimVolume``)."""
        pv = self.cache.get("v1", "PersistentVolume", None, name, copy=False)
        if pv is None or c.is_deleting(pv):
            return
        ref = c.spec_of(pv).get("claimRef") or {}
        if not ref.get("uid"):
            return
        claim = self.cache.get(
            "v1",
            "PersistentVolumeClaim",
            str(ref.get("namespace")),
            str(ref.get("name")),
            copy=False,
        )
        if claim is not None and c.uid_of(claim) == ref.get("uid"):
            return
        if claim is None:
            # the cache may be behind the server: make sure before reclaiming
            try:
                live = self._claims.get(str(ref.get("name")), str(ref.get("namespace")))
            except errors.NotFound:
                live = None
            if live is not None and c.uid_of(live) == ref.get("uid"):
                return
        policy = c.spec_of(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            if c.delete_quietly(self._volumes, pv) and self.on_volume_deleted is not None:
                try:
                    self.on_volume_deleted(dict(pv))
                except Exception:
                    _log.exception("on_volume_deleted hook failed for %s", name)
            return
        self._set_volume_phase(pv, "Released")


def _claim_ref(claim: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": c.namespace_of(claim),
        "name": c.name_of(claim),
        "uid": c.uid_of(claim),
        "resourceVersion": str(c.meta(claim).get("resourceVersion") or ""),
    }
