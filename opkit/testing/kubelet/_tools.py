"""Where the kubelet finds the programs that stand in for container images.

Search order for ``find_program(name, version)`` (first hit wins):

1. The ``tools_dir`` argument, then each directory in ``$OPKIT_TOOLS_DIR`` (``os.pathsep``
   separated).
2. The ``.tools/`` directory of the opkit checkout (filled by ``make tools``).
3. ``$PATH``.

In a tools directory ``D`` a versioned request (``find_program("etcd", "3.5")``) looks at
``D/bin/etcd-3.5``, ``D/etcd-3.5/etcd`` and ``D/etcd-3.5/bin/etcd``; the layout states the
version, so those are trusted without running them. An unversioned request looks at
``D/bin/NAME``, then the newest ``D/<family>-X.Y/NAME``. On ``$PATH`` a versioned request tries
``NAME-X.Y`` and then ``NAME``, and accepts a binary only if its ``--version`` output reports that
major.minor. ``alertmanager`` is also found under Debian's name ``prometheus-alertmanager``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "TOOLS_DIR_ENV",
    "ProgramNotFound",
    "etcd_version_for_image_tag",
    "find_program",
    "program_version",
    "repo_tools_dir",
    "tools_dirs",
]

TOOLS_DIR_ENV = "OPKIT_TOOLS_DIR"

# Programs that ship together and share a versioned directory (etcd-3.5/{etcd,etcdctl}).
_FAMILY = {"etcdctl": "etcd", "etcdutl": "etcd", "promtool": "prometheus", "amtool": "alertmanager"}
_ALIASES = {"alertmanager": ("prometheus-alertmanager",)}
# Programs that print their version with a subcommand rather than a flag.
_VERSION_ARGS = {"etcdctl": ("version",), "etcdutl": ("version",)}
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_MAJOR_MINOR_RE = re.compile(r"^\d+\.\d+$")


class ProgramNotFound(LookupError):  # noqa: N818 (name fixed by the kubelet brief)
    """A program the kubelet needs is not installed anywhere it looks."""


def repo_tools_dir() -> Path:
    """``.tools/`` of the opkit source checkout this module lives in (may not exist)."""
    return Path(__file__).resolve().parents[3] / ".tools"


def tools_dirs(tools_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The tools directories searched before ``$PATH``, in order (existing ones only)."""
    dirs: list[Path] = []
    if tools_dir is not None:
        dirs.append(Path(tools_dir))
    dirs += [Path(d) for d in os.environ.get(TOOLS_DIR_ENV, "").split(os.pathsep) if d]
    dirs.append(repo_tools_dir())
    seen: set[Path] = set()
    out = []
    for d in dirs:
        key = d.resolve()
        if key not in seen and d.is_dir():
            seen.add(key)
            out.append(d)
    return out


def _is_exe(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def _version_key(dirname: str) -> tuple[int, ...]:
    return tuple(int(x) for x in dirname.rsplit("-", 1)[1].split("."))


def _in_tools_dir(d: Path, names: Sequence[str], family: str, version: str | None) -> Path | None:
    if version is not None:
        for name in names:
            for cand in (
                d / "bin" / f"{name}-{version}",
                d / f"{family}-{version}" / name,
                d / f"{family}-{version}" / "bin" / name,
            ):
                if _is_exe(cand):
                    return cand
        return None
    for name in names:
        if _is_exe(d / "bin" / name):
            return d / "bin" / name
    pattern = re.compile(re.escape(family) + r"-\d+\.\d+")
    versioned = [p for p in d.glob(f"{family}-*") if pattern.fullmatch(p.name)]
    for vdir in sorted(versioned, key=lambda p: _version_key(p.name), reverse=True):
        for name in names:
            for cand in (vdir / name, vdir / "bin" / name):
                if _is_exe(cand):
                    return cand
    return None


@functools.lru_cache(maxsize=64)
def _probe_version(path: str, mtime_ns: int, args: tuple[str, ...]) -> str | None:
    try:
        res = subprocess.run(
            [path, *args], capture_output=True, timeout=20, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION_RE.search((res.stdout + res.stderr).decode(errors="replace"))
    return m.group(0) if m else None


def program_version(path: str | os.PathLike[str], name: str | None = None) -> str | None:
    """The ``X.Y.Z`` a program reports about itself (cached per file), or None."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    args = _VERSION_ARGS.get(name or p.name.split("-")[0], ("--version",))
    return _probe_version(str(p), mtime, args)


def _on_path(names: Sequence[str], version: str | None, search_path: str) -> Path | None:
    dirs = [Path(d) for d in search_path.split(os.pathsep) if d]
    if version is None:
        for name in names:
            for d in dirs:
                if _is_exe(d / name):
                    return d / name
        return None
    for name in names:
        for candidate_name in (f"{name}-{version}", name):
            for d in dirs:
                cand = d / candidate_name
                if not _is_exe(cand):
                    continue
                found = program_version(cand, names[0])
                if found is not None and found.startswith(version + "."):
                    return cand
    return None


def find_program(
    name: str,
    version: str | None = None,
    *,
    tools_dir: str | os.PathLike[str] | None = None,
    search_path: str | None = None,
) -> Path:
    """Locate ``name`` (optionally at ``version`` = ``"major.minor"``) by the module's order.

    ``search_path`` replaces ``$PATH`` for the last step. Raises :class:`ProgramNotFound`.
    """
    if version is not None and not _MAJOR_MINOR_RE.match(version):
        raise ValueError(f"version must be major.minor like '3.5', not {version!r}")
    names = (name, *_ALIASES.get(name, ()))
    family = _FAMILY.get(name, name)
    dirs = tools_dirs(tools_dir)
    for d in dirs:
        found = _in_tools_dir(d, names, family, version)
        if found is not None:
            return found
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    found = _on_path(names, version, path)
    if found is not None:
        return found
    what = f"{name} {version}" if version else name
    looked = ", ".join([*(str(d) for d in dirs), "$PATH"])
    raise ProgramNotFound(
        f"{what} not found (looked in {looked}; ${TOOLS_DIR_ENV} adds directories); "
        "run `make tools` to fetch it"
    )


def etcd_version_for_image_tag(tag: str) -> str:
    """``"v3.5.17"`` -> ``"3.5"``: the etcd release line an image tag asks for."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$", tag.strip())
    if not m:
        raise ValueError(f"cannot tell the etcd version from image tag {tag!r} (want vX.Y.Z)")
    return f"{int(m.group(1))}.{int(m.group(2))}"
