"""Cluster DNS without a DNS server: names computed from informers, served as hosts files.

:class:`ClusterDNS` watches Services, EndpointSlices, Endpoints and Pods through a manager's
shared informers and recomputes :func:`._hosts.cluster_records` shortly after any change
(changes arriving together are batched). Listeners (the kubelets, which rewrite every pod's
private ``/etc/hosts``) are called with the new records, and :meth:`ClusterDNS.lookup` answers
the host-side resolver hook.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opkit.manager import Manager

from ._hosts import CLUSTER_DOMAIN, HostRecord, cluster_records, hosts_table, hosts_text

__all__ = ["ClusterDNS"]

_log = logging.getLogger("opkit.testing.kubelet")
Listener = Callable[[list[HostRecord]], None]
_KINDS = (
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("v1", "Endpoints"),
    ("v1", "Pod"),
)


class ClusterDNS:
    """The cluster's names, kept current from informers (see the module docstring)."""

    def __init__(self, *, cluster_domain: str = CLUSTER_DOMAIN, batch: float = 0.005) -> None:
        self.cluster_domain = cluster_domain
        self._batch = batch
        self._lock = threading.Lock()
        self._records: list[HostRecord] = []
        self._table: dict[str, list[str]] = {}
        self._listeners: list[Listener] = []
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._manager: Manager | None = None
        self._generation = 0
        self._done = threading.Condition()
        self._applied = 0

    def setup(self, manager: Manager) -> None:
        """Watch the kinds names are made of through ``manager``'s informers."""
        self._manager = manager

        def changed(*_args: Any) -> None:
            self.invalidate()

        for api_version, kind in _KINDS:
            manager.cache.informer_for(api_version, kind).add_event_handler(
                changed, lambda _old, _new: self.invalidate(), changed
            )

    def add_listener(self, fn: Listener) -> None:
        with self._lock:
            self._listeners.append(fn)

    def invalidate(self) -> None:
        """Recompute soon."""
        with self._done:
            self._generation += 1
        self._dirty.set()

    def start(self) -> ClusterDNS:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cluster-dns", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wait_current(self, timeout: float = 5.0) -> bool:
        """Wait until every change seen so far is reflected in the records (tests)."""
        with self._done:
            wanted = self._generation
            return self._done.wait_for(lambda: self._applied >= wanted, timeout)

    # -- queries ----------------------------------------------------------------------------------

    @property
    def records(self) -> list[HostRecord]:
        with self._lock:
            return list(self._records)

    def lookup(self, name: str) -> list[str] | None:
        """Addresses of a cluster name (any spelling a client outside pods may use)."""
        with self._lock:
            return self._table.get(name.rstrip(".").lower())

    def hosts_text(self, *, pod: dict[str, Any] | None = None, namespace: str | None = None) -> str:
        """A hosts file with the cluster's names (for a pod, or the host side)."""
        return hosts_text(
            self.records, pod=pod, namespace=namespace, cluster_domain=self.cluster_domain
        )

    # -- the worker -------------------------------------------------------------------------------

    def _compute(self) -> list[HostRecord]:
        assert self._manager is not None
        cache = self._manager.cache
        services = cache.list("v1", "Service", copy=False)
        pods = cache.list("v1", "Pod", copy=False)
        endpoints = [
            *cache.list("discovery.k8s.io/v1", "EndpointSlice", copy=False),
            *cache.list("v1", "Endpoints", copy=False),
        ]
        return cluster_records(services, pods, endpoints, cluster_domain=self.cluster_domain)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self._batch)
            self._dirty.clear()
            with self._done:
                generation = self._generation
            try:
                records = self._compute()
            except Exception:
                _log.exception("computing cluster names failed")
                self._stop.wait(0.5)
                self._dirty.set()
                continue
            table = hosts_table(records)
            with self._lock:
                changed = records != self._records
                self._records = records
                self._table = table
                listeners = list(self._listeners)
            if changed:
                for fn in listeners:
                    try:
                        fn(records)
                    except Exception:
                        _log.exception("a cluster DNS listener failed")
            with self._done:
                self._applied = max(self._applied, generation)
                self._done.notify_all()
