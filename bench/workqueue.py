"""Work-queue benchmark: add/get/done cycles per second, single thread and with 4 workers.

Run alone with ``python bench/workqueue.py [--write]``; ``bench/run_all.py`` runs it too.

One *op* is one item's full trip: ``add``, ``get``, ``done`` (for the baseline, a plain
``queue.Queue``: ``put``, ``get``). Items are distinct, so the queue's dirty/processing
bookkeeping is exercised but never short-circuits anything. Single thread: add every item,
then get and finish each. Four workers: the main thread adds while four threads get and
finish, until the queue is shut down and drained.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import _common as c

from opkit.workqueue import Queue, RateLimitingQueue

WORKERS = 4


def _make(variant: str) -> Queue[int]:
    if variant == "plain":
        return Queue()
    if variant == "named":
        return Queue(name="bench_named")
    return RateLimitingQueue(name="bench_ratelimiting")


def single_opkit(variant: str, n: int) -> float:
    q = _make(variant)
    add, get, done = q.add, q.get, q.done
    start = time.perf_counter()
    for i in range(n):
        add(i)
    for _ in range(n):
        item, _shutdown = get()
        assert item is not None
        done(item)
    return n / (time.perf_counter() - start)


def single_baseline(n: int) -> float:
    q: queue.Queue[int] = queue.Queue()
    put, get = q.put, q.get
    start = time.perf_counter()
    for i in range(n):
        put(i)
    for _ in range(n):
        get()
    return n / (time.perf_counter() - start)


def workers_opkit(variant: str, n: int) -> float:
    q = _make(variant)
    counts = [0] * WORKERS

    def worker(w: int) -> None:
        get, done = q.get, q.done
        while True:
            item, shutdown = get()
            if shutdown or item is None:
                return
            done(item)
            counts[w] += 1

    return _run_workers(worker, q.add, q.shut_down, n, counts)


def workers_baseline(n: int) -> float:
    q: queue.Queue[int | None] = queue.Queue()
    counts = [0] * WORKERS

    def worker(w: int) -> None:
        get = q.get
        while True:
            if get() is None:
                return
            counts[w] += 1

    def stop() -> None:
        for _ in range(WORKERS):
            q.put(None)

    return _run_workers(worker, q.put, stop, n, counts)


def _run_workers(
    worker: Callable[[int], None],
    add: Callable[[int], Any],
    stop: Callable[[], None],
    n: int,
    counts: list[int],
) -> float:
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for i in range(n):
        add(i)
    stop()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if sum(counts) != n:
        raise SystemExit(f"workers handled {sum(counts)} of {n} items")
    return n / elapsed


VARIANTS = (
    ("plain", "`Queue()` (no metrics)"),
    ("named", "`Queue(name=...)` (Prometheus metrics)"),
    ("ratelimiting", "`RateLimitingQueue(name=...)` (what controllers use)"),
)


def run(n: int, runs: int) -> dict[str, dict[str, float]]:
    res: dict[str, dict[str, list[float]]] = {
        v: {"single": [], "workers": []} for v, _ in (*VARIANTS, ("baseline", ""))
    }
    for _ in range(runs):
        res["baseline"]["single"].append(single_baseline(n))
        res["baseline"]["workers"].append(workers_baseline(n))
        for v, _label in VARIANTS:
            res[v]["single"].append(single_opkit(v, n))
            res[v]["workers"].append(workers_opkit(v, n))
    for v, r in res.items():
        print(f"  {v}: {r}", file=sys.stderr)
    return {v: {k: c.median(xs) for k, xs in r.items()} for v, r in res.items()}


def render(res: dict[str, dict[str, float]], n: int, runs: int) -> str:
    base = res["baseline"]
    lines = [
        "## Work queue (`bench/workqueue.py`)",
        "",
        c.machine_line(),
        "",
        f"Ops/s where one op is an item's full trip through the queue (opkit: `add` + `get` + "
        f"`done`; baseline `queue.Queue`: `put` + `get`), {n:,} distinct items, medians of "
        f"{runs} runs. *1 thread*: add all, then get and finish each. *{WORKERS} workers*: the "
        f"main thread adds while {WORKERS} threads get and finish (one interpreter, so the "
        "threads share the GIL: this measures contention, not parallelism).",
        "",
        f"| queue | 1 thread ops/s | / baseline | {WORKERS} workers ops/s | / baseline |",
        "| --- | --- | --- | --- | --- |",
        f"| baseline: `queue.Queue` | {base['single']:,.0f} | 1.00x "
        f"| {base['workers']:,.0f} | 1.00x |",
    ]
    for v, label in VARIANTS:
        r = res[v]
        lines.append(
            f"| opkit {label} | {r['single']:,.0f} | {c.ratio(r['single'], base['single'])} "
            f"| {r['workers']:,.0f} | {c.ratio(r['workers'], base['workers'])} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    res = run(args.items, args.runs)
    section = render(res, args.items, args.runs)
    print(section)
    if args.write:
        c.write_section(c.DOCS, section, "## Work queue")
    return 0


if __name__ == "__main__":
    sys.exit(main())
