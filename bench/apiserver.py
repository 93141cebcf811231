"""Benchmark of the embedded API server: creates/s, a 10,000-ConfigMap list, watch events/s.

Run with ``make bench`` (or ``python bench/apiserver.py``). Prints a Markdown table; with
``--write`` it replaces the API-server section of docs/benchmarks.md.

Every figure is measured through the same HTTP path real clients use (urllib3 with
keep-alive, JSON bodies), so it includes serialisation and the request pipeline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import urllib3
from _common import machine_line, write_section

from opkit.testing import APIServer

DATA_1K = "x" * 1000  # ~1 KiB ConfigMaps, as in the informer benchmark


def _cm(name: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"bench": "true"}},
            "data": {"payload": DATA_1K},
        }
    ).encode()


def bench_creates(http: urllib3.PoolManager, url: str, n: int, threads: int) -> float:
    """Creates/s of ~1 KiB ConfigMaps from ``threads`` keep-alive clients."""
    per = n // threads
    errors: list[str] = []

    def worker(t: int) -> None:
        for i in range(per):
            r = http.request(
                "POST",
                f"{url}/api/v1/namespaces/default/configmaps",
                body=_cm(f"cm-{t}-{i:05d}"),
                headers={"Content-Type": "application/json"},
            )
            if r.status != 201:
                errors.append(r.data.decode()[:200])

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"create failed: {errors[0]}")
    return per * threads / elapsed


def bench_list(http: urllib3.PoolManager, url: str, repeats: int) -> tuple[float, int, int]:
    """Median seconds and bytes of one unpaginated list of every ConfigMap."""
    times = []
    size = count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        r = http.request("GET", f"{url}/api/v1/namespaces/default/configmaps")
        body = r.data
        times.append(time.perf_counter() - start)
        size = len(body)
        count = len(json.loads(body)["items"])
    return statistics.median(times), size, count


def bench_watch(http: urllib3.PoolManager, url: str, n: int) -> float:
    """Events/s delivered to one watcher while one writer updates a ConfigMap ``n`` times."""
    r = http.request(
        "POST",
        f"{url}/api/v1/namespaces/default/configmaps",
        body=_cm("watched"),
        headers={"Content-Type": "application/json"},
    )
    rv = json.loads(r.data)["metadata"]["resourceVersion"]
    resp = http.request(
        "GET",
        f"{url}/api/v1/namespaces/default/configmaps",
        fields={"watch": "true", "resourceVersion": rv, "fieldSelector": "metadata.name=watched"},
        preload_content=False,
    )
    got = 0
    done = threading.Event()
    first: list[float] = []

    def reader() -> None:
        nonlocal got
        buf = b""
        for chunk in resp.stream(65536):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    json.loads(line)
                    if not first:
                        first.append(time.perf_counter())
                    got += 1
                    if got >= n:
                        done.set()
                        return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    start = time.perf_counter()
    for i in range(n):
        patch = json.dumps({"data": {"i": str(i)}}).encode()
        http.request(
            "PATCH",
            f"{url}/api/v1/namespaces/default/configmaps/watched",
            body=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
    done.wait(120)
    elapsed = time.perf_counter() - start
    resp.release_conn()
    if got < n:
        raise SystemExit(f"watch delivered {got}/{n} events")
    return n / elapsed


def run(objects: int, threads: int) -> dict[str, Any]:
    with APIServer() as api:
        http = urllib3.PoolManager(maxsize=threads + 2)
        creates = bench_creates(http, api.url, objects, threads)
        list_s, list_bytes, count = bench_list(http, api.url, 5)
        events = bench_watch(http, api.url, 2000)
        http.clear()
    return {
        "creates_per_s": creates,
        "list_seconds": list_s,
        "list_bytes": list_bytes,
        "list_items": count,
        "watch_events_per_s": events,
    }


def render(res: dict[str, Any], objects: int, threads: int) -> str:
    return "\n".join(
        [
            "## Embedded API server (`bench/apiserver.py`)",
            "",
            machine_line() + " Same HTTP path as real clients (keep-alive, JSON).",
            "",
            "| measure | result |",
            "| --- | --- |",
            f"| creates/s, ~1 KiB ConfigMaps, {threads} clients, {objects} objects "
            f"| {res['creates_per_s']:.0f} |",
            f"| list of {res['list_items']} ConfigMaps (median of 5) "
            f"| {res['list_seconds'] * 1000:.0f} ms, {res['list_bytes'] / 1e6:.1f} MB |",
            f"| watch events/s to one watcher (merge-patch writer, 2000 events) "
            f"| {res['watch_events_per_s']:.0f} |",
            "",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    res = run(args.objects, args.threads)
    section = render(res, args.objects, args.threads)
    print(section)
    if args.write:
        root = Path(__file__).resolve().parent.parent
        write_section(root / "docs" / "benchmarks.md", section, "## Embedded API server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
