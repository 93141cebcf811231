"""opkit.testing: an embedded control plane for tests and the local demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._pytest_plugin import Kubectl, KubectlError, make_kube_env
    from .apiserver._faults import FaultInjector
    from .apiserver.server import APIServer
    from .cluster import Cluster

__all__ = ["APIServer", "Cluster", "FaultInjector", "Kubectl", "KubectlError", "make_kube_env"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that loading the pytest plugin stays cheap.
    if name == "APIServer":
        from .apiserver.server import APIServer

        return APIServer
    if name == "Cluster":
        from .cluster import Cluster

        return Cluster
    if name == "FaultInjector":
        from .apiserver._faults import FaultInjector

        return FaultInjector
    if name in ("Kubectl", "KubectlError", "make_kube_env"):
        from . import _pytest_plugin

        return getattr(_pytest_plugin, name)
    raise AttributeError(name)
