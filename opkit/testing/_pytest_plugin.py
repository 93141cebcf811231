"""pytest fixtures for the embedded control plane.

Enable with ``pytest_plugins = ["opkit.testing._pytest_plugin"]`` in a conftest.py.
``apiserver`` is a fresh server per test; ``kubeconfig`` points at it; ``kube_env`` is an
environment for subprocesses with that KUBECONFIG and a private HOME (kubectl caches
/version and discovery under ~/.kube, ENV-2); ``kubectl`` runs kubectl in it. ``cluster`` is
a whole embedded cluster with a local kubelet (:mod:`opkit.testing._cluster_fixture`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._cluster_fixture import cluster

if TYPE_CHECKING:
    from .apiserver.server import APIServer

__all__ = [
    "Kubectl",
    "KubectlError",
    "apiserver",
    "cluster",
    "kube_env",
    "kubeconfig",
    "kubectl",
]


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(self.cmd) if isinstance(self.cmd, list | tuple) else str(self.cmd)
        return f"kubectl failed (exit {self.returncode}): {cmd}\n{self.stderr}"


class Kubectl:
    """Runs kubectl against one server with an isolated environment."""

    def __init__(self, env: dict[str, str], binary: str = "kubectl", timeout: float = 60.0) -> None:
        self.env = env
        self.binary = binary
        self.timeout = timeout

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv: Sequence[str] = [self.binary, *args]
        proc = subprocess.run(
            argv,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc


def make_kube_env(
    kubeconfig_path: str | os.PathLike[str], home: str | os.PathLike[str]
) -> dict[str, str]:
    """An environment for kubectl and clients: KUBECONFIG plus a fresh HOME."""
    env = dict(os.environ)
    env["KUBECONFIG"] = os.fspath(kubeconfig_path)
    env["HOME"] = os.fspath(home)
    Path(home).mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture
def apiserver() -> Iterator[APIServer]:
    """A fresh, started embedded API server; stopped after the test."""
    from .apiserver.server import APIServer

    server = APIServer(bookmark_interval=1.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(apiserver: APIServer, tmp_path: Path) -> str:
    """Path of a kubeconfig (in tmp_path) for the ``apiserver`` fixture."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube_env(kubeconfig: str, tmp_path: Path) -> dict[str, str]:
    """Environment with KUBECONFIG and a private HOME for subprocesses."""
    return make_kube_env(kubeconfig, tmp_path / "home")


@pytest.fixture
def kubectl(kube_env: dict[str, str]) -> Kubectl:
    """``kubectl("get", "pods", "-o", "json")`` -> CompletedProcess; raises on failure
    unless ``check=False``."""
    return Kubectl(kube_env)
