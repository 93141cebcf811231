"""The ``cluster`` pytest fixture: a fresh embedded cluster (API server, built-in controllers,
local kubelet) per test, with a short crash-loop back-off; stopped afterwards, leaving no
process behind. Its kubeconfig is ``cluster.kubeconfig``; ``cluster.client`` is an opkit
client. Pods run as processes when the tests run as root and are refused otherwise (see
``cluster.refused``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["cluster"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A started :class:`opkit.testing.cluster.Cluster`; stopped after the test."""
    from .cluster import Cluster

    with Cluster(backoff_base=1.0, backoff_max=5.0, retry_interval=2.0, stop_grace=2.0) as c:
        yield c
