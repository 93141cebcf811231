"""Local kubelet of the embedded control plane.

Runs each Pod's containers as local processes, each Pod in its own network namespace with one
address in 127.0.0.0/8 and its own view of ``/etc/hosts``. Building blocks:

* :mod:`._netns`: the pod network (bridge, namespaces, veth pairs, addresses); needs root.
* :mod:`._podexec`: the wrapper that runs a program inside a pod's namespaces and mounts.
* :mod:`._procs`: spawning, stopping and reaping process groups without leaks.
* :mod:`._hosts`: cluster names as hosts files and a host-side resolver hook.
* :mod:`._tools`: where programs standing in for container images are found.
* :mod:`._images`: the image table (image -> local programs), user-extensible.
* :mod:`._env`, :mod:`._volumes`, :mod:`._probes`, :mod:`._logs`: what a container gets.
* :mod:`._dns`: cluster names kept current from informers.
* :mod:`._pki`: the cluster CA, the API server's TLS listener, service-account tokens.
* :mod:`._kubelet`: the kubelet controller itself.

See docs/kubelet-network.md and docs/embedded-cluster.md; most users want
:class:`opkit.testing.cluster.Cluster`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dns import ClusterDNS
    from ._images import ImageNotFound, ImageSpec, ImageTable
    from ._kubelet import Kubelet, KubeletConfig

__all__ = ["ClusterDNS", "ImageNotFound", "ImageSpec", "ImageTable", "Kubelet", "KubeletConfig"]

_WHERE = {
    "ClusterDNS": "._dns",
    "ImageNotFound": "._images",
    "ImageSpec": "._images",
    "ImageTable": "._images",
    "Kubelet": "._kubelet",
    "KubeletConfig": "._kubelet",
}


def __getattr__(name: str) -> Any:
    # Imported lazily: the foundation modules (and _podexec, run by path) stay light.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(name)
