"""Pod volumes as directories on the host, mounted into the pod by :mod:`._podexec`.

* ``emptyDir``: a directory of the pod, removed with it.
* ``configMap``, ``secret``, ``downwardAPI``, ``projected``: written the way the kubelet's
  AtomicWriter does it, so programs that watch them see the same thing as in a cluster::

      volume/..2024_05_01_10_00_00.123456789/<key>   the payload of one version
      volume/..data -> ..2024_05_01_10_00_00.123456789
      volume/<key> -> ..data/<key>

  An update writes a new version directory and swaps ``..data`` with one ``rename`` (readers
  see the old or the new version, never a mix), then removes the old one. They are mounted
  read-only and kept in sync when the objects change, without restarting the pod.
* ``persistentVolumeClaim``: the bound PersistentVolume's ``hostPath`` directory (the built-in
  provisioner makes one per claim), which outlives the pod and is removed with the volume.
* ``hostPath``: the host path itself (``DirectoryOrCreate``/``FileOrCreate`` create it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._env import ConfigError, Getter, field_value, object_data, resource_value

__all__ = [
    "ALWAYS_READ_ONLY",
    "Payload",
    "PodVolumes",
    "VolumeContext",
    "VolumeError",
    "atomic_write",
    "read_payload",
]

Obj = dict[str, Any]
Payload = dict[str, tuple[bytes, int]]
"""Relative path -> (content, file mode)."""
TokenSource = Callable[[str, str, str, int], str]
"""``token(namespace, service_account, audience, expiration_seconds)``."""

ALWAYS_READ_ONLY = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_DATA = "..data"
_DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up yet (``FailedMount``); retried when its sources change."""


# -- the atomic writer ------------------------------------------------------------------------


def _check_path(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or ".." in parts or any(p.startswith("..") for p in parts):
        raise VolumeError(f"invalid volume item path {rel!r}")
    return rel


def read_payload(directory: str | os.PathLike[str]) -> Payload:
    """The files of one version directory (what :func:`atomic_write` wrote)."""
    root = Path(directory)
    out: Payload = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mode & 0o777)
    return out


def _version_name() -> str:
    now = datetime.now(UTC)
    return now.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{time.time_ns() % 10**9:09d}"


def atomic_write(
    directory: str | os.PathLike[str], payload: Mapping[str, tuple[bytes, int]]
) -> bool:
    """Make ``directory`` show exactly ``payload``; False if it already did (nothing written)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for rel in payload:
        _check_path(rel)
    data_link = target / _DATA
    old = os.readlink(data_link) if data_link.is_symlink() else None
    if old is not None and (target / old).is_dir() and read_payload(target / old) == dict(payload):
        return False
    version = Path(tempfile.mkdtemp(prefix=_version_name() + "-", dir=target))
    version.chmod(0o755)
    for rel, (data, mode) in payload.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode & 0o777)
    tmp_link = target / (_DATA + "_tmp")
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(version.name, tmp_link)
    os.rename(tmp_link, data_link)
    visible = {rel.split("/", 1)[0] for rel in payload}
    for top in visible:
        link = target / top
        if link.is_symlink():
            continue
        if link.is_dir():
            shutil.rmtree(link)
        elif link.exists():
            link.unlink()
        os.symlink(f"{_DATA}/{top}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            if entry.name not in (_DATA, version.name) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            continue
        if entry.is_symlink() and entry.name not in visible:
            entry.unlink()
    return True


# -- sources ----------------------------------------------------------------------------------


@dataclass
class VolumeContext:
    """Where a pod's volume sources come from (the kubelet's caches) and pod facts."""

    get_configmap: Getter
    get_secret: Getter
    get_pvc: Getter
    get_pv: Callable[[str], Mapping[str, Any] | None]
    token: TokenSource | None = None
    pod_ip: str = ""
    host_ip: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _mode(value: Any, default: int) -> int:
    return int(value) & 0o777 if isinstance(value, int) and not isinstance(value, bool) else default


def _keyed(
    obj: Mapping[str, Any] | None,
    src: Mapping[str, Any],
    *,
    what: str,
    name: str,
    secret: bool,
    default_mode: int,
) -> Payload:
    optional = bool(src.get("optional"))
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{what} "{name}" not found')
    data = object_data(obj, secret=secret)
    items = src.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"{what} references non-existent config key: {key}")
        out[_check_path(str(item.get("path") or key))] = (
            data[key],
            _mode(item.get("mode"), default_mode),
        )
    return out


def _downward(
    pod: Mapping[str, Any], items: Sequence[Mapping[str, Any]], ctx: VolumeContext, mode: int
) -> Payload:
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or ()}
    out: Payload = {}
    try:
        for item in items:
            path = _check_path(str(item.get("path") or ""))
            if item.get("fieldRef") is not None:
                fp = str(item["fieldRef"].get("fieldPath") or "")
                text = field_value(pod, fp, pod_ip=ctx.pod_ip, host_ip=ctx.host_ip)
            elif item.get("resourceFieldRef") is not None:
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName")) or {}
                text = resource_value(container, ref)
            else:
                continue
            out[path] = (text.encode(), _mode(item.get("mode"), mode))
    except ConfigError as e:
        raise VolumeError(str(e)) from None
    return out


class PodVolumes:
    """The volumes of one pod under ``root`` (``<pod dir>/volumes``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._written: dict[str, str] = {}

    def sync(self, pod: Mapping[str, Any], ctx: VolumeContext) -> dict[str, str]:
        """Set up or refresh every volume; returns name -> host path. Raises
        :class:`VolumeError` for the first volume that cannot be set up."""
        out: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            name = str(vol.get("name") or "")
            try:
                out[name] = self._one(pod, vol, name, ctx)
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
            except OSError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
        return out

    def _write(self, name: str, payload: Payload) -> str:
        path = self.root / name
        digest = hashlib.sha256(
            repr(
                sorted((k, hashlib.sha256(v).hexdigest(), m) for k, (v, m) in payload.items())
            ).encode()
        ).hexdigest()
        if self._written.get(name) != digest or not (path / _DATA).is_symlink():
            atomic_write(path, payload)
            self._written[name] = digest
        return str(path)

    def _one(
        self, pod: Mapping[str, Any], vol: Mapping[str, Any], name: str, ctx: VolumeContext
    ) -> str:
        ns = str((pod.get("metadata") or {}).get("namespace") or "default")
        if "emptyDir" in vol:
            path = self.root / name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
            return str(path)
        if vol.get("configMap") is not None:
            src = vol["configMap"]
            cm = str(src.get("name") or "")
            mode = _mode(src.get("defaultMode"), _DEFAULT_MODE)
            obj = ctx.get_configmap(ns, cm)
            payload = _keyed(obj, src, what="configmap", name=cm, secret=False, default_mode=mode)
            return self._write(name, payload)
        if vol.get("secret") is not None:
            src = vol["secret"]
            sec = str(src.get("secretName") or "")
            mode = _mode(src.get("defaultMode"), _DEFAULT_MODE)
            obj = ctx.get_secret(ns, sec)
            payload = _keyed(obj, src, what="secret", name=sec, secret=True, default_mode=mode)
            return self._write(name, payload)
        if vol.get("downwardAPI") is not None:
            src = vol["downwardAPI"]
            mode = _mode(src.get("defaultMode"), _DEFAULT_MODE)
            return self._write(name, _downward(pod, src.get("items") or (), ctx, mode))
        if vol.get("projected") is not None:
            return self._write(name, self._projected(pod, vol["projected"], ns, ctx))
        if vol.get("persistentVolumeClaim") is not None:
            return self._claim(ns, vol["persistentVolumeClaim"], ctx)
        if vol.get("hostPath") is not None:
            return _host_path(vol["hostPath"])
        kinds = [k for k in vol if k != "name"]
        raise VolumeError(f"volume type {kinds[0] if kinds else '?'} is not supported locally")

    def _projected(
        self, pod: Mapping[str, Any], src: Mapping[str, Any], ns: str, ctx: VolumeContext
    ) -> Payload:
        mode = _mode(src.get("defaultMode"), _DEFAULT_MODE)
        payload: Payload = {}
        for source in src.get("sources") or ():
            if source.get("configMap") is not None:
                s = source["configMap"]
                cm = str(s.get("name") or "")
                payload |= _keyed(
                    ctx.get_configmap(ns, cm),
                    s,
                    what="configmap",
                    name=cm,
                    secret=False,
                    default_mode=mode,
                )
            elif source.get("secret") is not None:
                s = source["secret"]
                sec = str(s.get("name") or "")
                payload |= _keyed(
                    ctx.get_secret(ns, sec),
                    s,
                    what="secret",
                    name=sec,
                    secret=True,
                    default_mode=mode,
                )
            elif source.get("downwardAPI") is not None:
                payload |= _downward(pod, source["downwardAPI"].get("items") or (), ctx, mode)
            elif source.get("serviceAccountToken") is not None:
                s = source["serviceAccountToken"]
                if ctx.token is None:
                    raise VolumeError("service account tokens are not available")
                sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
                token = ctx.token(
                    ns, sa, str(s.get("audience") or ""), int(s.get("expirationSeconds") or 3607)
                )
                payload[_check_path(str(s.get("path") or "token"))] = (token.encode(), mode)
        return payload

    @staticmethod
    def _claim(ns: str, src: Mapping[str, Any], ctx: VolumeContext) -> str:
        claim_name = str(src.get("claimName") or "")
        claim = ctx.get_pvc(ns, claim_name)
        if claim is None:
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" is being deleted')
        volume = str((claim.get("spec") or {}).get("volumeName") or "")
        if not volume:
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" is not bound yet')
        pv = ctx.get_pv(volume)
        if pv is None:
            raise VolumeError(f'persistentvolume "{volume}" not found')
        spec = pv.get("spec") or {}
        source = spec.get("hostPath") or spec.get("local")
        if not source or not source.get("path"):
            raise VolumeError(f'persistentvolume "{volume}" has no local path (hostPath/local)')
        path = Path(str(source["path"]))
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def remove(self) -> None:
        """Delete every volume directory of the pod (PVC and hostPath data are elsewhere)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _host_path(src: Mapping[str, Any]) -> str:
    path = Path(str(src.get("path") or ""))
    kind = str(src.get("type") or "")
    if not path.is_absolute():
        raise VolumeError(f"hostPath {path} must be absolute")
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif not path.exists():
        raise VolumeError(f"hostPath {path} does not exist")
    return str(path)
