"""Controller benchmark: reconciles/s of a no-op controller over 1,000 ConfigMaps.

Run alone with ``python bench/controller.py [--write]``; ``bench/run_all.py`` runs it too.

The API server runs in its own process, pre-populated. Each run builds a fresh
:class:`opkit.manager.Manager` with one controller (``for_`` ConfigMap, one namespace) whose
reconciler only counts calls, and measures:

* *first pass*: from ``Manager.start()`` until every object has been reconciled once (list,
  informer sync, handler -> queue -> worker for each object);
* *steady re-enqueue*: ``controller.enqueue`` of every object's request, ``--rounds`` times,
  waiting for each round to be reconciled (queue -> worker -> reconciler -> result handling,
  with the reconcile metrics and log context of every reconcile), with 1 and 4 workers.

The baseline is a plain loop calling the same reconciler once per request.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from typing import Any

import _common as c

from opkit import log as opkit_log
from opkit.client import Client
from opkit.controller import Request, Result
from opkit.manager import Manager

NAMESPACE = "bench"
TIMEOUT = 120.0


class _Counter:
    """The no-op reconciler: counts calls and wakes the benchmark at a target count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.target = 0
        self.reached = threading.Event()

    def expect(self, target: int) -> None:
        with self._lock:
            self.target = target
            self.reached.clear()
            if self.calls >= target:
                self.reached.set()

    def __call__(self, request: Request) -> Result | None:
        with self._lock:
            self.calls += 1
            if self.calls >= self.target:
                self.reached.set()
        return None


def run_once(kubeconfig: str, objects: int, rounds: int, workers: int) -> dict[str, float]:
    client = Client.from_kubeconfig(kubeconfig)
    client.resource("v1", "ConfigMap")  # discovery outside the timed part
    counter = _Counter()
    counter.expect(objects)
    manager = Manager(client, namespace=NAMESPACE)
    ctrl = manager.controller(
        "bench", counter, for_=("v1", "ConfigMap"), max_concurrent_reconciles=workers
    )
    try:
        start = time.perf_counter()
        manager.start()
        if not c.wait_until(lambda: manager.ready, TIMEOUT):
            raise SystemExit("the manager's caches did not sync")
        ready = time.perf_counter() - start
        if not counter.reached.wait(TIMEOUT):
            raise SystemExit(f"first pass: {counter.calls}/{objects} reconciled")
        first = time.perf_counter() - start
        requests = [Request(NAMESPACE, f"cm-{i:05d}") for i in range(objects)]
        start = time.perf_counter()
        for r in range(rounds):
            counter.expect(objects * (r + 2))
            for req in requests:
                ctrl.enqueue(req)
            if not counter.reached.wait(TIMEOUT):
                raise SystemExit(f"round {r}: {counter.calls} reconciled")
        steady = objects * rounds / (time.perf_counter() - start)
    finally:
        manager.stop()
        client.close()
    return {"ready_s": ready, "first_pass_s": first, "steady_rate": steady}


def baseline(objects: int, rounds: int) -> float:
    counter = _Counter()
    counter.expect(objects * rounds)
    requests = [Request(NAMESPACE, f"cm-{i:05d}") for i in range(objects)]
    start = time.perf_counter()
    for _ in range(rounds):
        for req in requests:
            counter(req)
    return objects * rounds / (time.perf_counter() - start)


def run(objects: int, rounds: int, runs: int) -> dict[str, Any]:
    # A realistic operator logs at info; reconcile debug lines are filtered, not printed.
    opkit_log.configure(format="json", level="info", stream=io.StringIO())
    results: dict[int, list[dict[str, float]]] = {1: [], 4: []}
    base: list[float] = []
    with c.ServerProcess() as srv:
        c.populate(srv.url, srv.token, NAMESPACE, objects)
        for _ in range(runs):
            for workers, runs_so_far in results.items():
                res = run_once(srv.kubeconfig, objects, rounds, workers)
                print(f"  controller workers={workers}: {res}", file=sys.stderr)
                runs_so_far.append(res)
            base.append(baseline(objects, rounds))
    summary: dict[str, Any] = {
        str(w): {k: c.median([r[k] for r in rs]) for k in rs[0]} for w, rs in results.items()
    }
    summary["baseline"] = c.median(base)
    return summary


def render(res: dict[str, Any], objects: int, rounds: int, runs: int) -> str:
    base = res["baseline"]
    base_call = 1 / base
    lines = [
        "## Controller reconciles (`bench/controller.py`)",
        "",
        c.machine_line(),
        "",
        f"A `Manager` with one controller (`for_` ConfigMap, one namespace of {objects:,} "
        "~1 KiB ConfigMaps on the embedded API server, in another process) whose reconciler "
        f"only counts calls; medians of {runs} runs. *First pass*: from `Manager.start()` "
        "until every object was reconciled once (list, sync, handler, queue, worker); *ready* "
        "is when the manager reported its caches synced. "
        f"*Steady*: `controller.enqueue` of all {objects:,} requests, {rounds} rounds, each "
        "round reconciled before the next (queue, worker, metrics, log context, result "
        "handling). Baseline: a plain loop calling the same reconciler once per request. "
        "*Overhead* is the framework's time per reconcile (opkit time per object minus the "
        "baseline's time per call). With several workers the threads share the GIL.",
        "",
        "| measure | workers | opkit | baseline: plain loop | opkit time / baseline time "
        "| overhead per reconcile |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for w in ("1", "4"):
        r = res[w]
        per = r["first_pass_s"] / objects
        lines.append(
            f"| first pass, {objects:,} objects | {w} | {r['first_pass_s'] * 1000:.0f} ms "
            f"(ready at {r['ready_s'] * 1000:.0f} ms) | {objects * base_call * 1000:.2f} ms "
            f"| {per / base_call:,.0f}x | {(per - base_call) * 1e6:.0f} µs |"
        )
    for w in ("1", "4"):
        r = res[w]
        per = 1 / r["steady_rate"]
        lines.append(
            f"| steady reconciles/s | {w} | {r['steady_rate']:,.0f} | {base:,.0f} "
            f"| {per / base_call:,.0f}x | {(per - base_call) * 1e6:.1f} µs |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    res = run(args.objects, args.rounds, args.runs)
    section = render(res, args.objects, args.rounds, args.runs)
    print(section)
    if args.write:
        c.write_section(c.DOCS, section, "## Controller reconciles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
