"""Volumes: the atomic writer's layout and swaps, and every supported volume source."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from opkit.testing.kubelet._volumes import (
    PodVolumes,
    VolumeContext,
    VolumeError,
    atomic_write,
    read_payload,
)


def _ctx(**objects: Any) -> VolumeContext:
    cms = objects.get("configmaps", {})
    secrets = objects.get("secrets", {})
    pvcs = objects.get("pvcs", {})
    pvs = objects.get("pvs", {})
    return VolumeContext(
        get_configmap=lambda ns, n: cms.get(n),
        get_secret=lambda ns, n: secrets.get(n),
        get_pvc=lambda ns, n: pvcs.get(n),
        get_pv=pvs.get,
        token=lambda ns, sa, aud, exp: f"token-for-{ns}-{sa}-{aud}",
        pod_ip="127.200.0.7",
    )


def _pod(*volumes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"volumes": list(volumes), "containers": [{"name": "c"}], **spec},
    }


def test_atomic_writer_layout_symlinks_and_swap(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    assert atomic_write(vol, {"a.txt": (b"one", 0o644), "sub/b.txt": (b"two", 0o600)})
    data = os.readlink(vol / "..data")
    assert data.startswith("..") and (vol / data).is_dir()
    assert os.readlink(vol / "a.txt") == "..data/a.txt"
    assert os.readlink(vol / "sub") == "..data/sub"
    assert (vol / "sub" / "b.txt").read_bytes() == b"two"
    assert (vol / "sub" / "b.txt").stat().st_mode & 0o777 == 0o600

    assert not atomic_write(vol, {"a.txt": (b"one", 0o644), "sub/b.txt": (b"two", 0o600)})
    assert os.readlink(vol / "..data") == data  # unchanged content: nothing rewritten

    assert atomic_write(vol, {"a.txt": (b"uno", 0o644), "c.txt": (b"new", 0o644)})
    assert os.readlink(vol / "..data") != data
    assert not (vol / data).exists()  # the old version is gone
    assert not (vol / "sub").is_symlink()  # a removed key's link is gone
    assert (vol / "a.txt").read_text() == "uno"
    versions = [p.name for p in vol.iterdir() if p.name.startswith("..") and p.name != "..data"]
    assert len(versions) == 1
    assert read_payload(vol / versions[0]) == {"a.txt": (b"uno", 0o644), "c.txt": (b"new", 0o644)}


def test_atomic_writer_rejects_escaping_paths(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="invalid volume item path"):
        atomic_write(tmp_path / "v", {"../etc/passwd": (b"x", 0o644)})


def test_configmap_and_secret_volumes_with_items_and_modes(tmp_path: Path) -> None:
    ctx = _ctx(
        configmaps={"cfg": {"data": {"app.yaml": "a: 1", "other": "x"}}},
        secrets={"tls": {"type": "Opaque", "data": {"key": base64.b64encode(b"K").decode()}}},
    )
    item = {"key": "app.yaml", "path": "conf/app.yaml", "mode": 0o600}
    pod = _pod(
        {"name": "cfg", "configMap": {"name": "cfg", "items": [item]}},
        {"name": "tls", "secret": {"secretName": "tls", "defaultMode": 0o400}},
    )
    vols = PodVolumes(tmp_path)
    paths = vols.sync(pod, ctx)
    cfg, tls = Path(paths["cfg"]), Path(paths["tls"])
    assert (cfg / "conf" / "app.yaml").read_text() == "a: 1"
    assert not (cfg / "other").exists()
    assert (cfg / "conf" / "app.yaml").stat().st_mode & 0o777 == 0o600
    assert (tls / "key").read_bytes() == b"K"
    assert (tls / "key").stat().st_mode & 0o777 == 0o400


def test_configmap_changes_are_written_through_the_same_directory(tmp_path: Path) -> None:
    cms = {"cfg": {"data": {"k": "v1"}}}
    ctx = _ctx(configmaps=cms)
    pod = _pod({"name": "cfg", "configMap": {"name": "cfg"}})
    vols = PodVolumes(tmp_path)
    path = Path(vols.sync(pod, ctx)["cfg"])
    reader = open(path / "k")  # noqa: SIM115 (a reader holding the old version)
    cms["cfg"] = {"data": {"k": "v2"}}
    assert vols.sync(pod, ctx)["cfg"] == str(path)
    assert (path / "k").read_text() == "v2"
    assert reader.read() == "v1"
    reader.close()


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"configMap": {"name": "gone"}}, 'volume "v" : configmap "gone" not found'),
        ({"secret": {"secretName": "gone"}}, 'secret "gone" not found'),
        (
            {"configMap": {"name": "cfg", "items": [{"key": "nokey", "path": "x"}]}},
            "configmap references non-existent config key: nokey",
        ),
        (
            {"persistentVolumeClaim": {"claimName": "gone"}},
            'persistentvolumeclaim "gone" not found',
        ),
        ({"persistentVolumeClaim": {"claimName": "pending"}}, "is not bound yet"),
        ({"nfs": {"server": "x", "path": "/"}}, "volume type nfs is not supported locally"),
    ],
)
def test_missing_sources_fail_the_mount_clearly(
    tmp_path: Path, volume: dict[str, Any], message: str
) -> None:
    ctx = _ctx(configmaps={"cfg": {"data": {}}}, pvcs={"pending": {"spec": {}}})
    with pytest.raises(VolumeError, match=message):
        PodVolumes(tmp_path).sync(_pod({"name": "v", **volume}), ctx)


def test_optional_missing_sources_give_empty_volumes(tmp_path: Path) -> None:
    pod = _pod({"name": "v", "configMap": {"name": "gone", "optional": True}})
    path = Path(PodVolumes(tmp_path).sync(pod, _ctx())["v"])
    assert [p.name for p in path.iterdir() if not p.name.startswith("..")] == []


def test_downward_api_and_projected_sources(tmp_path: Path) -> None:
    ctx = _ctx(configmaps={"root": {"data": {"ca.crt": "CA"}}})

    def field(path: str, field_path: str) -> dict[str, Any]:
        return {"path": path, "fieldRef": {"fieldPath": field_path}}

    sources = [
        {"serviceAccountToken": {"path": "token", "audience": "vault"}},
        {"configMap": {"name": "root", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [field("namespace", "metadata.namespace")]}},
    ]
    pod = _pod(
        {
            "name": "info",
            "downwardAPI": {
                "items": [field("labels", "metadata.labels"), field("ip", "status.podIP")]
            },
        },
        {"name": "api", "projected": {"sources": sources}},
        serviceAccountName="robot",
    )
    paths = PodVolumes(tmp_path).sync(pod, ctx)
    info, api = Path(paths["info"]), Path(paths["api"])
    assert (info / "labels").read_text() == 'a="b"'
    assert (info / "ip").read_text() == "127.200.0.7"
    assert (api / "token").read_text() == "token-for-ns-robot-vault"
    assert (api / "ca.crt").read_text() == "CA"
    assert (api / "namespace").read_text() == "ns"


def test_claims_use_their_bound_volume_directory_which_outlives_the_pod(tmp_path: Path) -> None:
    data = tmp_path / "volumes" / "pvc-1"
    ctx = _ctx(
        pvcs={"data": {"metadata": {}, "spec": {"volumeName": "pvc-1"}}},
        pvs={"pvc-1": {"spec": {"hostPath": {"path": str(data)}}}},
    )
    vols = PodVolumes(tmp_path / "pod")
    pod = _pod(
        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "e", "emptyDir": {}}
    )
    paths = vols.sync(pod, ctx)
    assert paths["d"] == str(data) and data.is_dir()
    assert Path(paths["e"]).is_dir()
    vols.remove()
    assert data.is_dir() and not (tmp_path / "pod").exists()
