"""InformerFactory: one informer (one list+watch) per resource and scope, shared by all callers.

Every controller that asks for ConfigMaps in namespace ``a`` gets the same :class:`SharedInformer`
and adds its own handler to it, so the API server sees one watch instead of one per controller.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import NamedTuple

from opkit import errors
from opkit._reflector import ReflectorConfig
from opkit._shared_informer import SYNCED_POLL_PERIOD, SharedInformer
from opkit._store import IndexFunc, Transform, drop_managed_fields
from opkit.client import Client, ResourceClient
from opkit.clock import REAL_CLOCK, Clock

__all__ = ["InformerFactory", "InformerKey"]


class InformerKey(NamedTuple):
    """What makes two informers different: the resource and the slice of it that is watched."""

    group: str
    version: str
    resource: str
    namespace: str | None
    label_selector: str | None = None
    field_selector: str | None = None

    def __str__(self) -> str:
        gv = f"{self.group}/{self.version}" if self.group else self.version
        text = f"{gv}/{self.resource}"
        if self.namespace:
            text += f" in {self.namespace}"
        if self.label_selector:
            text += f" labels={self.label_selector}"
        if self.field_selector:
            text += f" fields={self.field_selector}"
        return text


class _Unset:
    pass


_UNSET = _Unset()


class InformerFactory:
    """Creates, shares, starts and stops informers for one client.

    ``namespace`` (None = all namespaces) and ``resync_period`` are defaults for every
    informer; :meth:`for_resource` can override them per informer.
    """

    def __init__(
        self,
        client: Client,
        *,
        namespace: str | None = None,
        resync_period: float = 0.0,
        clock: Clock | None = None,
        transform: Transform | None = drop_managed_fields,
        reflector_config: ReflectorConfig | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.resync_period = resync_period
        self._clock = clock if clock is not None else REAL_CLOCK
        self._transform = transform
        self._reflector_config = reflector_config
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started: set[InformerKey] = set()
        self._shutting_down = False

    def for_resource(
        self,
        api_version: str | None = None,
        kind: str | None = None,
        *,
        group: str | None = None,
        version: str | None = None,
        plural: str | None = None,
        namespace: str | _Unset | None = _UNSET,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> SharedInformer:
        """The shared informer for a resource: by ``(api_version, kind)`` or by
        ``group=, version=, plural=``. ``indexers`` are added to an existing informer."""
        resource_client = self._resource_client(api_version, kind, group, version, plural)
        res = resource_client.resource
        ns = self.namespace if isinstance(namespace, _Unset) else namespace
        if not res.namespaced:
            ns = None
        key = InformerKey(
            res.group, res.version, res.name, ns or None, label_selector or None, field_selector
        )
        with self._lock:
            if self._shutting_down:
                raise RuntimeError("informer factory is shut down")
            informer = self._informers.get(key)
            if informer is None:
                informer = SharedInformer(
                    resource_client,
                    resync_period=self.resync_period if resync_period is None else resync_period,
                    indexers=indexers,
                    transform=self._transform,
                    clock=self._clock,
                    name=str(key),
                    namespace=key.namespace,
                    label_selector=key.label_selector,
                    field_selector=key.field_selector,
                    reflector_config=self._reflector_config,
                )
                self._informers[key] = informer
                return informer
        if indexers:
            existing = informer.indexer.get_indexers()
            missing = {}
            for name, func in indexers.items():
                if name not in existing:
                    missing[name] = func
                elif existing[name] is not func:
                    raise ValueError(f"informer {key} already has a different indexer {name!r}")
            if missing:
                informer.add_indexers(missing)
        return informer

    def _resource_client(
        self,
        api_version: str | None,
        kind: str | None,
        group: str | None,
        version: str | None,
        plural: str | None,
    ) -> ResourceClient:
        if api_version is not None and kind is not None:
            if group is not None or version is not None or plural is not None:
                raise TypeError("give either (api_version, kind) or group/version/plural")
            return self.client.resource(api_version, kind)
        if version is None or plural is None or api_version is not None or kind is not None:
            raise TypeError("give either (api_version, kind) or group/version/plural")
        gv = f"{group}/{version}" if group else version
        for res in self.client.mapper.resources_for(gv):
            if res.name == plural:
                return ResourceClient(self.client, res)
        raise errors.NoMatch(f'the server doesn\'t have a resource type "{plural}" in {gv}')

    def informers(self) -> dict[InformerKey, SharedInformer]:
        with self._lock:
            return dict(self._informers)

    def start(self) -> None:
        """Start every informer not started yet (non-blocking)."""
        with self._lock:
            if self._shutting_down:
                return
            pending = [(k, i) for k, i in self._informers.items() if k not in self._started]
            self._started.update(k for k, _ in pending)
        for _, informer in pending:
            informer.start()

    def wait_for_cache_sync(self, timeout: float | None = None) -> dict[InformerKey, bool]:
        """Wait for the started informers to sync; polls every 100 ms of the factory's clock."""
        with self._lock:
            started = {k: self._informers[k] for k in self._started}
        cond = threading.Condition(threading.Lock())
        clock = self._clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        with cond:
            while True:
                result = {k: inf.has_synced() for k, inf in started.items()}
                if all(result.values()):
                    return result
                now = clock.monotonic()
                if deadline is not None and now >= deadline:
                    return result
                if all(inf.stopped for inf in started.values() if not inf.has_synced()):
                    return result
                step = SYNCED_POLL_PERIOD
                if deadline is not None:
                    step = min(step, deadline - now)
                clock.wait_until(cond, now + step)

    def shutdown(self) -> None:
        """Stop every informer and wait for their threads."""
        with self._lock:
            self._shutting_down = True
            informers = list(self._informers.values())
        for informer in informers:
            informer.stop()

    def __enter__(self) -> InformerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
