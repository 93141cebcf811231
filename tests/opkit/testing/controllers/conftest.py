"""Fixtures for the built-in controller tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ctrl_helpers import PlaneFactory, PodEvents

from opkit.client import Client
from opkit.testing.controllers import BuiltinControllers


@pytest.fixture
def client(kubeconfig: str) -> Iterator[Client]:
    c = Client.from_kubeconfig(kubeconfig)
    yield c
    c.close()


@pytest.fixture
def start_plane(client: Client) -> Iterator[PlaneFactory]:
    """``start_plane(**options)`` -> started BuiltinControllers (stopped after the test).

    Defaults: pod simulation on, no periodic lease renewal (it would write)."""
    planes: list[BuiltinControllers] = []

    def start(**options: Any) -> BuiltinControllers:
        options.setdefault("simulate_pods", True)
        options.setdefault("lease_renew_interval", 3600.0)
        plane = BuiltinControllers(client, **options).start()
        planes.append(plane)
        assert plane.wait_ready(20)
        return plane

    yield start
    for plane in planes:
        plane.stop()


@pytest.fixture
def pod_events(client: Client) -> Iterator[Callable[[], PodEvents]]:
    recorders: list[PodEvents] = []

    def start() -> PodEvents:
        rec = PodEvents(client)
        recorders.append(rec)
        return rec

    yield start
    for rec in recorders:
        rec.close()
