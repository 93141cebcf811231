"""The common shape of a built-in controller: set up on a Manager, reconcile from its cache."""

from __future__ import annotations

from typing import Any, ClassVar

from opkit import errors
from opkit.client import Client
from opkit.clock import REAL_CLOCK, Clock
from opkit.controller import Cache, Controller, Request, Result
from opkit.manager import Manager


class BuiltinController:
    """Base of the built-in controllers.

    Subclasses implement :meth:`setup` (register their :class:`~opkit.controller.Controller`
    on the manager and keep it in ``self._controller``) and :meth:`sync`. A conflict or an
    "already exists" answer means the cache was behind the server, and "forbidden" that the
    namespace is being terminated: the key is retried through the rate limiter without being
    logged as an error, since the next reconcile sees fresher state.
    """

    name: ClassVar[str] = ""

    def __init__(self, client: Client, *, clock: Clock | None = None) -> None:
        self.client = client
        self.clock: Clock = clock if clock is not None else REAL_CLOCK
        self._cache: Cache | None = None
        self._controller: Controller | None = None

    def setup(self, manager: Manager) -> None:
        raise NotImplementedError

    def sync(self, request: Request) -> Result | None:
        raise NotImplementedError

    def reconcile(self, request: Request) -> Result | None:
        try:
            return self.sync(request)
        except (errors.Conflict, errors.AlreadyExists, errors.Forbidden):
            return Result(requeue=True)

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            raise RuntimeError(f"{self.name} controller is not set up on a manager")
        return self._cache

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            raise RuntimeError(f"{self.name} controller is not set up on a manager")
        return self._controller

    def enqueue(self, namespace: str, name: str) -> None:
        """Reconcile ``namespace/name`` soon (from outside the watches)."""
        self.controller.enqueue(Request(namespace, name))

    def _bind(self, manager: Manager, controller: Controller) -> None:
        self._cache = manager.cache
        self._controller = controller

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def resource(client: Client, api_version: str, kind: str) -> Any:
    """A ResourceClient (typed ``Any`` so call sites stay short)."""
    return client.resource(api_version, kind)
