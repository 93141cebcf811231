"""Container logs for ``kubectl logs`` (``-f``, ``--previous``) from the kubelet's log files.

Each container run writes stdout and stderr to one file; a restart moves it aside as
``<file>.previous`` (:func:`._procs.rotate_log`). :func:`read_log` serves a whole file, or
follows it while the container run that writes it is alive. A follower keeps its open file
across that rotation (it holds the inode), reads to the end once the run is over, and then
stops, as ``kubectl logs -f`` does when a container terminates. It yields ``b""`` now and then
while idle so the API server notices departed clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["read_log"]

_CHUNK = 64 * 1024


def read_log(
    path: str | Path,
    *,
    follow: bool = False,
    alive: Callable[[], bool] = lambda: False,
    stop: threading.Event | None = None,
    poll: float = 0.1,
) -> Iterator[bytes]:
    """The content of ``path``; with ``follow``, then what is appended while ``alive()``."""
    stop = stop or threading.Event()
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed in finally; the generator may pause long)
    except FileNotFoundError:
        return
    try:
        while True:
            data = f.read(_CHUNK)
            if data:
                yield data
                continue
            if not follow or stop.is_set():
                return
            if not alive():
                rest = f.read()
                if rest:
                    yield rest
                return
            yield b""
            stop.wait(poll)
    finally:
        f.close()
