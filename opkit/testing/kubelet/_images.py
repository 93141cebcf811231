"""The image table: which local program stands in for a container image.

No container runtime is available, so every image is *mapped* to programs installed on this
machine (see :mod:`._tools` for where they are found). An :class:`ImageSpec` says what an image
provides: its programs (``etcd``, ``etcdctl``...), the image's ``ENTRYPOINT``/``CMD``,
environment, working directory, and the writable directories and files its file system would
have (``/prometheus``, ``/etc/prometheus/prometheus.yml``), which the kubelet gives each
container privately so that nothing is written to the host.

Search order of :meth:`ImageTable.resolve` (first match wins):

1. rules added with :meth:`ImageTable.register` / :meth:`ImageTable.register_python_module`
   (latest first);
2. rules of the YAML config files loaded with :meth:`ImageTable.load_config` (the file named
   by ``$OPKIT_IMAGE_CONFIG`` is loaded by :meth:`ImageTable.default`), in file order;
3. the built-in rules: etcd (``quay.io/coreos/etcd``, ``gcr.io/etcd-development/etcd``,
   ``registry.k8s.io/etcd``; the tag picks the etcd major.minor), Prometheus, Alertmanager,
   config reloaders (``prometheus-config-reloader``, ``configmap-reload``; a small built-in
   reloader), ``busybox``/``alpine`` (the host's shell tools) and the ``python`` pseudo-image
   (the project's interpreter; ``args: [-m, module]`` runs ``python -m module``).

A pattern is an image reference without tag (``quay.io/coreos/etcd``: any tag), with a tag
(``python:3.11``), or a glob (``ghcr.io/acme/*``); short Docker Hub names are normalised
(``busybox`` is ``docker.io/library/busybox``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._tools import ProgramNotFound, etcd_version_for_image_tag, find_program

__all__ = [
    "CONFIG_ENV",
    "HOST_PATH",
    "ImageNotFound",
    "ImageRef",
    "ImageRule",
    "ImageSpec",
    "ImageTable",
    "builtin_rules",
    "container_argv",
    "parse_image",
    "program_links",
    "resolve_command",
]

CONFIG_ENV = "OPKIT_IMAGE_CONFIG"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_GLOB = set("*?[")


class ImageNotFound(LookupError):  # noqa: N818 (mirrors ProgramNotFound)
    """No local program stands in for an image (the kubelet reports ErrImagePull)."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``repository`` is normalised (``docker.io/library/x``)."""

    raw: str
    repository: str
    tag: str
    digest: str = ""

    @property
    def name(self) -> str:
        """The last path component (``etcd`` for ``quay.io/coreos/etcd``)."""
        return self.repository.rsplit("/", 1)[-1]


def parse_image(image: str) -> ImageRef:
    """Docker's normalisation: default registry ``docker.io``, ``library/`` for one-part names,
    tag ``latest`` unless a tag or digest is given."""
    raw = image.strip()
    if not raw:
        raise ImageNotFound("the container has no image")
    rest, _, digest = raw.partition("@")
    last = rest.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    parts = rest.split("/")
    if len(parts) == 1 or not ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if len(parts) == 1:
            parts = ["library", *parts]
        parts = ["docker.io", *parts]
    if parts[0] in ("index.docker.io", "registry-1.docker.io"):
        parts[0] = "docker.io"
    repository = "/".join(parts).lower()
    return ImageRef(raw, repository, tag or ("" if digest else "latest"), digest)


@dataclass(frozen=True)
class ImageSpec:
    """What an image provides locally.

    ``programs`` maps a program name (the basename a command uses: ``etcd`` for
    ``/usr/local/bin/etcd``) to the argv prefix that runs it here. ``entrypoint`` and ``cmd``
    are the image's ENTRYPOINT and CMD. With ``host_programs`` any other command is looked up
    on the host (shell images). ``dirs`` are writable directories of the image and ``files``
    its files (path -> content); each container gets private copies.
    """

    programs: Mapping[str, tuple[str, ...]]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""
    dirs: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    host_programs: bool = False
    description: str = ""

    @property
    def image_id(self) -> str:
        """A stable id for ``status.containerStatuses[].imageID``."""
        data = repr(sorted((k, v) for k, v in self.programs.items())).encode()
        return "sha256:" + hashlib.sha256(data).hexdigest()


Resolver = Callable[[ImageRef], ImageSpec]


@dataclass(frozen=True)
class ImageRule:
    """One entry of the table: a pattern and what matching images stand for."""

    pattern: str
    resolve: Resolver
    description: str = ""
    origin: str = "api"

    def matches(self, ref: ImageRef) -> bool:
        pattern = self.pattern.strip()
        repo_pat, tag_pat = pattern, ""
        last = pattern.rsplit("/", 1)[-1]
        if ":" in last:
            repo_pat, tag_pat = pattern.rsplit(":", 1)
        if _GLOB & set(repo_pat):
            short = ref.raw.split("@")[0]
            short = short.rsplit(":", 1)[0] if ":" in short.rsplit("/", 1)[-1] else short
            if not (
                fnmatch.fnmatchcase(ref.repository, repo_pat.lower())
                or fnmatch.fnmatchcase(short.lower(), repo_pat.lower())
            ):
                return False
        elif parse_image(repo_pat).repository != ref.repository:
            return False
        return not tag_pat or fnmatch.fnmatchcase(ref.tag, tag_pat)


# -- built-in rules ---------------------------------------------------------------------------


def _program(name: str, version: str | None = None, tools_dir: str | None = None) -> str:
    return str(find_program(name, version, tools_dir=tools_dir))


def _optional(name: str, version: str | None, tools_dir: str | None) -> dict[str, tuple[str]]:
    try:
        return {name: (_program(name, version, tools_dir),)}
    except ProgramNotFound:
        return {}


def _etcd(tools_dir: str | None) -> Resolver:
    def resolve(ref: ImageRef) -> ImageSpec:
        try:
            version = etcd_version_for_image_tag(ref.tag)
        except ValueError as e:
            raise ImageNotFound(str(e)) from None
        programs: dict[str, tuple[str, ...]] = {"etcd": (_program("etcd", version, tools_dir),)}
        programs |= _optional("etcdctl", version, tools_dir)
        programs |= _optional("etcdutl", version, tools_dir)
        return ImageSpec(
            programs,
            cmd=("/usr/local/bin/etcd",),
            dirs=("/var/etcd", "/var/lib/etcd"),
            description=f"etcd {version}",
        )

    return resolve


_PROMETHEUS_YML = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""
_ALERTMANAGER_YML = """route:
  receiver: default
receivers:
  - name: default
"""


def _prometheus(tools_dir: str | None) -> Resolver:
    def resolve(ref: ImageRef) -> ImageSpec:
        programs = {"prometheus": (_program("prometheus", None, tools_dir),)}
        programs |= _optional("promtool", None, tools_dir)
        return ImageSpec(
            programs,
            entrypoint=("/bin/prometheus",),
            cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
            workdir="/prometheus",
            dirs=("/prometheus",),
            files={"/etc/prometheus/prometheus.yml": _PROMETHEUS_YML},
            description="prometheus",
        )

    return resolve


def _alertmanager(tools_dir: str | None) -> Resolver:
    def resolve(ref: ImageRef) -> ImageSpec:
        programs = {"alertmanager": (_program("alertmanager", None, tools_dir),)}
        programs |= _optional("amtool", None, tools_dir)
        return ImageSpec(
            programs,
            entrypoint=("/bin/alertmanager",),
            cmd=(
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
            ),
            workdir="/alertmanager",
            dirs=("/alertmanager",),
            files={"/etc/alertmanager/alertmanager.yml": _ALERTMANAGER_YML},
            description="alertmanager",
        )

    return resolve


_RELOADER = "opkit.testing.kubelet._reloader"


def _reloader(program: str) -> Resolver:
    def resolve(ref: ImageRef) -> ImageSpec:
        argv = (sys.executable, "-m", _RELOADER)
        return ImageSpec(
            {program: argv},
            entrypoint=(f"/bin/{program}",),
            description=f"{program} (opkit's built-in reloader)",
        )

    return resolve


def _python(ref: ImageRef) -> ImageSpec:
    argv = (sys.executable,)
    names = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")
    return ImageSpec(
        dict.fromkeys(names, argv),
        entrypoint=("python",),
        env={"PYTHONUNBUFFERED": "1"},
        host_programs=True,
        description=f"the project's Python ({sys.executable})",
    )


def _shell(ref: ImageRef) -> ImageSpec:
    return ImageSpec({}, cmd=("sh",), host_programs=True, description="the host's shell tools")


def builtin_rules(tools_dir: str | None = None) -> list[ImageRule]:
    """The default rules, in the order they are tried."""
    rules = [
        ImageRule(p, _etcd(tools_dir), "etcd by tag (vX.Y.Z -> etcd X.Y)", "builtin")
        for p in (
            "quay.io/coreos/etcd",
            "gcr.io/etcd-development/etcd",
            "registry.k8s.io/etcd",
            "k8s.gcr.io/etcd",
        )
    ]
    rules += [
        ImageRule(p, _prometheus(tools_dir), "prometheus", "builtin")
        for p in ("prom/prometheus", "quay.io/prometheus/prometheus")
    ]
    rules += [
        ImageRule(p, _alertmanager(tools_dir), "alertmanager", "builtin")
        for p in ("prom/alertmanager", "quay.io/prometheus/alertmanager")
    ]
    rules += [
        ImageRule(p, _reloader("prometheus-config-reloader"), "config reloader", "builtin")
        for p in (
            "quay.io/prometheus-operator/prometheus-config-reloader",
            "ghcr.io/prometheus-operator/prometheus-config-reloader",
        )
    ]
    rules += [
        ImageRule(p, _reloader("configmap-reload"), "config reloader", "builtin")
        for p in ("jimmidyson/configmap-reload", "ghcr.io/jimmidyson/configmap-reload")
    ]
    rules += [ImageRule(p, _shell, "host shell tools", "builtin") for p in ("busybox", "alpine")]
    rules.append(ImageRule("python", _python, "python -m with the project's Python", "builtin"))
    return rules


# -- the table --------------------------------------------------------------------------------


def _fixed(spec: ImageSpec) -> Resolver:
    def resolve(ref: ImageRef) -> ImageSpec:
        return spec

    return resolve


def _spec_from_config(entry: Mapping[str, Any], where: str) -> ImageSpec:
    """An ``images:`` entry of a config file (see docs/embedded-cluster.md)."""

    def strings(key: str) -> tuple[str, ...]:
        value = entry.get(key) or ()
        if isinstance(value, str) or not all(isinstance(v, str | int | float) for v in value):
            raise ValueError(f"{where}: {key} must be a list of strings")
        return tuple(str(v) for v in value)

    programs: dict[str, tuple[str, ...]] = {}
    for name, target in (entry.get("programs") or {}).items():
        argv = (target,) if isinstance(target, str) else tuple(str(t) for t in target)
        programs[str(name)] = argv
    entrypoint = strings("entrypoint")
    if entry.get("python_module"):
        programs.setdefault("python", (sys.executable,))
        entrypoint = entrypoint or ("python", "-m", str(entry["python_module"]))
    if entry.get("program"):
        program = str(entry["program"])
        if "/" not in program:
            program = _program(program, entry.get("version"))
        programs.setdefault(os.path.basename(program), (program,))
        entrypoint = entrypoint or (program,)
    return ImageSpec(
        programs,
        entrypoint=entrypoint,
        cmd=strings("cmd") or strings("args"),
        env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
        workdir=str(entry.get("workdir") or ""),
        dirs=strings("dirs"),
        files={str(k): str(v) for k, v in (entry.get("files") or {}).items()},
        host_programs=bool(entry.get("host_programs", False)),
        description=str(entry.get("description") or ""),
    )


class ImageTable:
    """Image -> :class:`ImageSpec`, user-extensible (see the module docstring). Thread-safe."""

    def __init__(self, *, builtins: bool = True, tools_dir: str | None = None) -> None:
        self._lock = threading.Lock()
        self._user: list[ImageRule] = []
        self._config: list[ImageRule] = []
        self._builtin = builtin_rules(tools_dir) if builtins else []

    @classmethod
    def default(cls, config: str | os.PathLike[str] | None = None) -> ImageTable:
        """Built-ins plus ``config`` (else the file named by ``$OPKIT_IMAGE_CONFIG``)."""
        table = cls()
        path = config if config is not None else os.environ.get(CONFIG_ENV)
        if path:
            table.load_config(path)
        return table

    @property
    def rules(self) -> list[ImageRule]:
        """Every rule in search order."""
        with self._lock:
            return [*self._user, *self._config, *self._builtin]

    def register(
        self,
        pattern: str,
        spec: ImageSpec | Resolver,
        *,
        description: str = "",
    ) -> ImageRule:
        """Map images matching ``pattern`` to ``spec`` (or to what ``spec(ref)`` returns).

        Later registrations win over earlier ones, config files and built-ins.
        """
        resolve = _fixed(spec) if isinstance(spec, ImageSpec) else spec
        rule = ImageRule(pattern, resolve, description, "api")
        with self._lock:
            self._user.insert(0, rule)
        return rule

    def register_python_module(
        self,
        pattern: str,
        module: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> ImageRule:
        """Images matching ``pattern`` run ``python -m module args...`` (an operator image)."""
        spec = ImageSpec(
            {"python": (sys.executable,), "python3": (sys.executable,)},
            entrypoint=("python", "-m", module),
            cmd=tuple(args),
            env={"PYTHONUNBUFFERED": "1", **(env or {})},
            host_programs=True,
            description=f"python -m {module}",
        )
        return self.register(pattern, spec, description=spec.description)

    def unregister(self, rule: ImageRule) -> None:
        with self._lock:
            if rule in self._user:
                self._user.remove(rule)

    def load_config(self, path: str | os.PathLike[str]) -> None:
        """Add the ``images:`` entries of a YAML file (each needs ``image:``, the pattern)."""
        text = Path(path).read_text()
        doc = yaml.safe_load(text) or {}
        entries = doc.get("images") if isinstance(doc, Mapping) else doc
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a list under 'images:'")
        rules = []
        for i, entry in enumerate(entries):
            where = f"{path}: images[{i}]"
            if not isinstance(entry, Mapping) or not entry.get("image"):
                raise ValueError(f"{where}: each entry needs an 'image:' pattern")
            spec = _spec_from_config(entry, where)
            rules.append(ImageRule(str(entry["image"]), _fixed(spec), spec.description, str(path)))
        with self._lock:
            self._config.extend(rules)

    def resolve(self, image: str) -> ImageSpec:
        """The spec for ``image``; raises :class:`ImageNotFound` with a one-line reason."""
        ref = parse_image(image)
        for rule in self.rules:
            if rule.matches(ref):
                try:
                    return rule.resolve(ref)
                except ProgramNotFound as e:
                    raise ImageNotFound(str(e)) from None
        raise ImageNotFound(
            f"no local program stands in for image {image!r}: add an entry to the image table "
            f"(ImageTable.register(), or an 'images:' entry in ${CONFIG_ENV}; see "
            "docs/embedded-cluster.md)"
        )


def container_argv(
    spec: ImageSpec, command: Sequence[str] | None, args: Sequence[str] | None
) -> list[str]:
    """Kubernetes' rule: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD (and a given
    ``command`` drops CMD)."""
    if command:
        return [*command, *(args or ())]
    if args:
        return [*spec.entrypoint, *args]
    return [*spec.entrypoint, *spec.cmd]


def resolve_command(
    spec: ImageSpec, argv: Sequence[str], search_path: str = HOST_PATH
) -> list[str]:
    """Map ``argv[0]`` to a program on this machine (raises FileNotFoundError like exec does).

    The image's programs win by basename (``/usr/local/bin/etcd`` is the image's etcd); an
    absolute path that exists on the host is kept (``/bin/sh``); other bare names are searched
    on ``search_path`` when the image allows host programs or the name is a shell.
    """
    if not argv:
        raise FileNotFoundError("no command specified")
    prog = argv[0]
    mapped = spec.programs.get(os.path.basename(prog))
    if mapped is not None:
        return [*mapped, *argv[1:]]
    if "/" in prog:
        if os.path.isfile(prog) and os.access(prog, os.X_OK):
            return list(argv)
        raise FileNotFoundError(f'exec: "{prog}": stat {prog}: no such file or directory')
    if spec.host_programs or prog in ("sh", "bash", "env", "true", "sleep", "cat"):
        found = shutil.which(prog, path=search_path)
        if found is not None:
            return [found, *argv[1:]]
    raise FileNotFoundError(f'exec: "{prog}": executable file not found in $PATH')


def program_links(spec: ImageSpec) -> Iterable[tuple[str, tuple[str, ...]]]:
    """(name, argv prefix) of each program, for the per-image ``bin`` directory on PATH."""
    return sorted(spec.programs.items())
