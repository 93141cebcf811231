"""Informer benchmarks: initial sync of 10,000 ConfigMaps, and watch events/s to a handler.

Run alone with ``python bench/informer.py [--write]``; ``bench/run_all.py`` runs it too.

Initial sync compares three variants, each in a fresh interpreter (``--child``) against an API
server in its own process that already holds the ConfigMaps, so RSS growth is client memory:

* ``opkit``: :class:`opkit.informer.SharedInformer` on ``client.resource("v1", "ConfigMap")``
  (all namespaces, default transform) with one no-op add handler;
* ``official``: ``kubernetes.informer.SharedInformer`` on
  ``CoreV1Api.list_config_map_for_all_namespaces`` with one no-op ADDED handler;
* ``floor``: the request opkit's reflector sends (``GET /api/v1/configmaps?limit=500&
  resourceVersion=0``; the server answers a ``resourceVersion=0`` list whole, like upstream's
  watch cache) read with urllib3 and ``json.loads``-ed, nothing else.

Time runs from start until the handler has been called for every object (the cache is filled
before handlers are called in both informers), memory is VmRSS after that minus VmRSS before
start (imports, client and discovery are in the baseline). Medians of ``--runs`` runs.

Watch throughput measures MODIFIED events/s reaching a handler of an opkit SharedInformer:
*live*, while a writer process merge-patches the objects as fast as the server takes it, and
*backlog*, replaying a backlog of events the server already holds (the informer lists at an
older RV, then watches from it), which is what bounds a client that has fallen behind. The
baseline is a raw urllib3 watch of the same events, split into lines and ``json.loads``-ed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import _common as c
import urllib3

SCRIPT = Path(__file__).resolve()
SYNC_VARIANTS = ("floor", "opkit", "official")
WATCH_NAMESPACE = "watch"
TIMEOUT = 120.0


# -- children: initial sync ------------------------------------------------------------------------


def _measure(start: Any, synced: Any, done: threading.Event, expect: int) -> dict[str, Any]:
    """Run ``start()``, note when ``synced()`` turns true and when ``done`` is set."""
    gc.collect()
    rss0 = c.rss_kib()
    c.reset_peak_rss()
    t0 = time.perf_counter()
    start()
    if not c.wait_until(synced, TIMEOUT):
        raise SystemExit("cache did not sync")
    t_synced = time.perf_counter()
    if not done.wait(TIMEOUT):
        raise SystemExit(f"handler did not see {expect} objects")
    t_done = time.perf_counter()
    return {
        "synced_s": t_synced - t0,
        "seconds": t_done - t0,
        "rss_growth_kib": c.rss_kib() - rss0,
        "peak_growth_kib": c.peak_rss_kib() - rss0,
    }


def _counter(expect: int) -> tuple[threading.Event, Any]:
    done = threading.Event()
    seen = [0]

    def on_add(obj: Any) -> None:
        seen[0] += 1
        if seen[0] >= expect:
            done.set()

    return done, on_add


def child_sync_opkit(kubeconfig: str, expect: int) -> dict[str, Any]:
    from opkit.client import Client
    from opkit.informer import ListOptions, ResourceClientListerWatcher, SharedInformer

    class TimedListerWatcher(ResourceClientListerWatcher):
        """What ``SharedInformer(resource_client)`` builds, plus a stopwatch on ``list``."""

        list_seconds = 0.0

        def list(self, options: ListOptions) -> dict[str, Any]:
            start = time.perf_counter()
            try:
                return super().list(options)
            finally:
                self.list_seconds += time.perf_counter() - start

    client = Client.from_kubeconfig(kubeconfig)
    lw = TimedListerWatcher(client.resource("v1", "ConfigMap"))
    informer = SharedInformer(lw)
    done, on_add = _counter(expect)
    informer.add_event_handler(on_add=on_add)
    result = _measure(informer.start, informer.has_synced, done, expect)
    result["cached"] = len(informer.store.list_keys())
    result["list_s"] = lw.list_seconds
    return result


def child_sync_official(kubeconfig: str, expect: int) -> dict[str, Any]:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.informer import ADDED, SharedInformer

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    api = k8s.CoreV1Api(k8s.ApiClient(configuration))
    list_seconds = [0.0]

    def list_func(**kwargs: Any) -> Any:
        if kwargs.get("watch"):
            return api.list_config_map_for_all_namespaces(**kwargs)
        start = time.perf_counter()
        try:
            return api.list_config_map_for_all_namespaces(**kwargs)
        finally:
            list_seconds[0] += time.perf_counter() - start

    informer = SharedInformer(list_func)  # type: ignore[no-untyped-call]
    done, on_add = _counter(expect)
    informer.add_event_handler(ADDED, on_add)  # type: ignore[no-untyped-call]

    def synced() -> bool:
        return len(informer.cache.list_keys()) >= expect

    result = _measure(informer.start, synced, done, expect)
    result["cached"] = len(informer.cache.list_keys())
    result["list_s"] = list_seconds[0]
    return result


def child_sync_floor(kubeconfig: str, expect: int) -> dict[str, Any]:
    import yaml

    # Unused, but it gives the interpreter the same heap as the opkit child: the cyclic GC
    # runs while json.loads builds the objects, and its cost grows with the heap.
    import opkit.client
    import opkit.informer

    del opkit

    with open(kubeconfig, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    url = config["clusters"][0]["cluster"]["server"]
    hdrs = c.headers(config["users"][0]["user"].get("token", ""))
    http = urllib3.PoolManager()
    http.request("GET", f"{url}/version", headers=hdrs)  # connection set up, as for the others
    held: list[Any] = []
    done = threading.Event()

    def start() -> None:
        query: dict[str, str] = {"limit": "500", "resourceVersion": "0"}
        while True:
            r = http.request("GET", f"{url}/api/v1/configmaps", fields=query, headers=hdrs)
            page = json.loads(r.data)
            held.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
            query = {"limit": "500", "continue": token}
        if len(held) >= expect:
            done.set()

    result = _measure(start, done.is_set, done, expect)
    result["cached"] = len(held)
    result["list_s"] = result["seconds"]
    return result


# -- children: watch -------------------------------------------------------------------------------


def child_writer(url: str, token: str, objects: int, updates: int, threads: int) -> dict[str, Any]:
    """Merge-patch ``updates`` times, round-robin over the objects, from ``threads`` clients."""
    http = urllib3.PoolManager(maxsize=threads + 1)
    hdrs = c.headers(token, "application/merge-patch+json")
    base = f"{url}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps"
    errors: list[str] = []
    # A write that changes nothing emits no event, so every value is new, run after run.
    nonce = time.time_ns()

    def worker(first: int) -> None:
        for i in range(first, updates, threads):
            body = json.dumps({"data": {"i": f"{nonce}-{i}"}}).encode()
            r = http.request("PATCH", f"{base}/cm-{i % objects:05d}", body=body, headers=hdrs)
            if r.status != 200:
                errors.append(f"{r.status} {r.data[:200]!r}")
                return

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    end = time.monotonic()
    if errors:
        raise SystemExit(f"writer failed: {errors[0]}")
    return {"start": start, "end": end, "rate": updates / (end - start)}


class _GatedListerWatcher:
    """Lists at a fixed RV (``Exact``) and opens the watch only once ``gate`` is set."""

    def __init__(self, inner: Any, rv: str | None, gate: threading.Event) -> None:
        self._inner = inner
        self._rv = rv
        self._gate = gate

    def list(self, options: Any) -> dict[str, Any]:
        if self._rv is not None:
            options = replace(
                options, resource_version=self._rv, resource_version_match="Exact", limit=None
            )
        page: dict[str, Any] = self._inner.list(options)
        return page

    def watch(self, options: Any) -> Any:
        self._gate.wait()
        return self._inner.watch(options)


def child_watch_opkit(kubeconfig: str, expect: int, rv: str | None) -> dict[str, Any]:
    """Live (``rv`` None): report ready, then count updates as they happen. Backlog: list at
    ``rv``, report ready, and on "go" open the watch and drain the backlog."""
    from opkit.client import Client
    from opkit.informer import ResourceClientListerWatcher, SharedInformer

    client = Client.from_kubeconfig(kubeconfig)
    gate = threading.Event()
    if rv is None:
        gate.set()
    lw = _GatedListerWatcher(
        ResourceClientListerWatcher(client.resource("v1", "ConfigMap"), WATCH_NAMESPACE), rv, gate
    )
    informer = SharedInformer(lw)
    done = threading.Event()
    times: list[float] = []

    def on_update(old: Any, new: Any) -> None:
        times.append(time.monotonic())
        if len(times) >= expect:
            done.set()

    reg = informer.add_event_handler(on_update=on_update)
    informer.start()
    if not c.wait_until(reg.has_synced, TIMEOUT):
        raise SystemExit("informer did not sync")
    if rv is None:
        time.sleep(0.2)  # let the watch request reach the server before the writer starts
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    gate.set()
    if not done.wait(TIMEOUT):
        raise SystemExit(f"handler saw {len(times)}/{expect} updates")
    return {"go": t0, "first": times[0], "last": times[expect - 1]}


def child_watch_raw(url: str, token: str, expect: int, rv: str | None) -> dict[str, Any]:
    """The floor: one urllib3 watch, lines split and ``json.loads``-ed, nothing else.

    Live (``rv`` None): watch from now, report ready. Backlog: report ready, and on "go" open
    the watch at ``rv``.
    """
    http = urllib3.PoolManager()
    backlog = rv is not None
    start_rv = rv if rv is not None else c.current_resource_version(url, token, WATCH_NAMESPACE)

    def open_watch() -> Any:
        return http.request(
            "GET",
            f"{url}/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps",
            fields={"watch": "true", "resourceVersion": start_rv, "allowWatchBookmarks": "true"},
            headers=c.headers(token),
            preload_content=False,
        )

    resp = None if backlog else open_watch()
    if not backlog:
        time.sleep(0.2)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    if resp is None:
        resp = open_watch()
    times: list[float] = []
    buf = b""
    for chunk in resp.stream(65536):
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        for line in lines:
            if line and json.loads(line)["type"] == "MODIFIED":
                times.append(time.monotonic())
        if len(times) >= expect:
            break
    resp.release_conn()
    if len(times) < expect:
        raise SystemExit(f"raw watch saw {len(times)}/{expect} updates")
    return {"go": t0, "first": times[0], "last": times[expect - 1]}


# -- parent ----------------------------------------------------------------------------------------


def _warm_up(srv: c.ServerProcess) -> None:
    """One list first, so no variant pays for the server's first big response."""
    http = urllib3.PoolManager()
    http.request(
        "GET", f"{srv.url}/api/v1/configmaps?resourceVersion=0", headers=c.headers(srv.token)
    )
    http.clear()


def run_sync(objects: int, runs: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in SYNC_VARIANTS}
    with c.ServerProcess() as srv:
        c.populate(srv.url, srv.token, "default", objects)
        _warm_up(srv)
        for _ in range(runs):
            for variant in SYNC_VARIANTS:
                res = c.run_child(
                    SCRIPT,
                    [
                        "--child",
                        f"sync-{variant}",
                        "--kubeconfig",
                        srv.kubeconfig,
                        "--expect",
                        str(objects),
                    ],
                )
                if res["cached"] != objects:
                    raise SystemExit(f"{variant}: cached {res['cached']} of {objects}")
                results[variant].append(res)
                print(f"  sync {variant}: {res}", file=sys.stderr)
    summary: dict[str, Any] = {}
    for variant, rs in results.items():
        summary[variant] = {
            key: c.median([r[key] for r in rs])
            for key in ("seconds", "synced_s", "list_s", "rss_growth_kib", "peak_growth_kib")
        }
    return summary


def _watch_child(args: list[str], writer: list[str] | None) -> dict[str, Any]:
    """Start a watching child, wait for "ready", say "go", run the writer (if any), collect."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=c.ROOT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            ready = proc.stdout.readline().strip() == "ready"
            if ready:
                proc.stdin.write("go\n")
                proc.stdin.flush()
                wrote = c.run_child(SCRIPT, writer) if writer is not None else {}
                out, _ = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if not ready or proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"watch child {args[1]} failed: {err.read()[-3000:]}")
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res["writer"] = wrote
    return res


def _conn(variant: str, srv: c.ServerProcess) -> list[str]:
    if variant == "opkit":
        return ["--kubeconfig", srv.kubeconfig]
    return ["--url", srv.url, "--token", srv.token]


def run_watch(objects: int, updates: int, runs: int) -> dict[str, Any]:
    live: dict[str, list[float]] = {"opkit": [], "raw": []}
    wrote: dict[str, list[float]] = {"opkit": [], "raw": []}
    lag: dict[str, list[float]] = {"opkit": [], "raw": []}
    backlog: dict[str, list[float]] = {"opkit": [], "raw": []}
    with c.ServerProcess() as srv:
        c.populate(srv.url, srv.token, WATCH_NAMESPACE, objects)
        writer = [
            "--child", "writer", "--url", srv.url, "--token", srv.token,
            "--objects", str(objects), "--expect", str(updates),
        ]  # fmt: skip
        rv0 = c.current_resource_version(srv.url, srv.token, WATCH_NAMESPACE)
        for _ in range(runs):
            for variant in ("opkit", "raw"):
                args = ["--child", f"watch-{variant}", *_conn(variant, srv)]
                res = _watch_child([*args, "--expect", str(updates)], writer)
                live[variant].append(updates / (res["last"] - res["writer"]["start"]))
                lag[variant].append(res["last"] - res["writer"]["end"])
                wrote[variant].append(res["writer"]["rate"])
                print(f"  live {variant}: {res}", file=sys.stderr)
        # Every write above is now a backlog the server can replay from rv0.
        events = 2 * runs * updates
        for _ in range(runs):
            for variant in ("opkit", "raw"):
                args = ["--child", f"watch-{variant}", *_conn(variant, srv)]
                res = _watch_child([*args, "--expect", str(events), "--rv", rv0], None)
                backlog[variant].append(events / (res["last"] - res["go"]))
                print(f"  backlog {variant}: {res}", file=sys.stderr)
    return {
        "live": {k: c.median(v) for k, v in live.items()},
        "writer": {k: c.median(v) for k, v in wrote.items()},
        "lag": {k: c.median(v) for k, v in lag.items()},
        "backlog": {k: c.median(v) for k, v in backlog.items()},
        "backlog_events": events,
    }


# -- rendering -------------------------------------------------------------------------------------


def render_sync(res: dict[str, Any], objects: int, runs: int) -> str:
    o, off, fl = res["opkit"], res["official"], res["floor"]
    vs_floor = o["seconds"] / fl["seconds"]
    speedup = off["seconds"] / o["seconds"]
    memory = o["rss_growth_kib"] / off["rss_growth_kib"]

    def row(name: str, r: dict[str, float]) -> str:
        return (
            f"| {name} | {r['seconds'] * 1000:.0f} ms | {r['synced_s'] * 1000:.0f} ms "
            f"| {r['list_s'] * 1000:.0f} ms "
            f"| {r['rss_growth_kib'] / 1024:.1f} MiB | {r['peak_growth_kib'] / 1024:.1f} MiB "
            f"| {c.ratio(r['seconds'], fl['seconds'])} "
            f"| {c.ratio(r['rss_growth_kib'], fl['rss_growth_kib'])} |"
        )

    return "\n".join(
        [
            "## Informer initial sync (`bench/informer.py`)",
            "",
            c.machine_line(),
            "",
            f"{objects:,} ConfigMaps (~1 KiB of data each, ~1.5 KiB as JSON with managedFields) "
            "listed from the embedded API server running in another process. Each variant runs "
            f"in a fresh interpreter; medians of {runs} runs. *Time* runs from start until a "
            "no-op handler has been called for every object; *cache* is when the cache first "
            "held them all (opkit: `has_synced()`); *list call* is the part spent inside the "
            "list request, reading and decoding the response (the official client also builds "
            "its models there). *Memory* is VmRSS after sync minus VmRSS "
            "before start (imports, client and discovery excluded); *peak* is VmHWM minus the "
            "same baseline. opkit's time beyond its *list call* is its own work: keying and "
            "transforming every object, filling the indexed cache in one pass (the first list "
            "into an empty informer skips the per-object DeltaFIFO queueing), and handing one "
            "batch of notifications to the handler's thread.",
            "",
            "The floor is the exact request opkit's reflector sends, "
            "`GET /api/v1/configmaps?limit=500&resourceVersion=0` (answered unpaginated, as "
            "upstream's watch cache does for RV 0), read with urllib3 and `json.loads`-ed into "
            "a list that is kept. It keeps `managedFields`, which opkit's default transform "
            "drops; its process imports the same modules as opkit's, because the garbage "
            "collector's passes during `json.loads` cost more with a bigger heap. The official "
            "client lists without `limit` (one unpaginated GET) into its typed models.",
            "",
            "| variant | time | cache | list call | memory | peak | time / floor "
            "| memory / floor |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            row("floor: urllib3 + `json.loads`", fl),
            row("opkit `SharedInformer`", o),
            row("official `kubernetes.informer.SharedInformer`", off),
            "",
            "| goal (from the issue) | target | measured | status |",
            "| --- | --- | --- | --- |",
            f"| opkit time / floor time | ≤ 1.5x | {vs_floor:.2f}x "
            f"| {c.verdict(vs_floor <= 1.5)} |",
            f"| official time / opkit time | ≥ 2x | {speedup:.2f}x | {c.verdict(speedup >= 2)} |",
            f"| opkit memory / official memory | ≤ 0.7x | {memory:.2f}x "
            f"| {c.verdict(memory <= 0.7)} |",
            "",
        ]
    )


def _ms(seconds: float) -> str:
    """A lag: below a millisecond (clock jitter across processes can make it negative) is 0."""
    return f"{max(seconds, 0.0) * 1000:.0f} ms"


def render_watch(res: dict[str, Any], objects: int, updates: int, runs: int) -> str:
    live, lag, backlog, wrote = res["live"], res["lag"], res["backlog"], res["writer"]
    return "\n".join(
        [
            "## Informer watch throughput (`bench/informer.py`)",
            "",
            c.machine_line(),
            "",
            "MODIFIED events/s reaching an `on_update` handler of an opkit `SharedInformer` "
            f"watching {objects:,} ~1 KiB ConfigMaps in one namespace, in its own process; "
            f"medians of {runs} runs. Baseline: a raw urllib3 watch of the same events (lines "
            "split, `json.loads`), nothing else.",
            "",
            f"*Live*: a writer process (4 keep-alive clients) merge-patches the objects "
            f"{updates:,} times while the watcher runs; rate = events / (last event - writer "
            "start), *lag* = last event - last write. Server, writer and watcher share the "
            "cores, so the live rate is the server's write rate whenever the watcher keeps up "
            "(lag near zero); a hungrier watcher shows up as a slower writer. "
            f"*Backlog*: the watcher lists at an RV {res['backlog_events']:,} updates in the "
            "past, then watches from it, so the server replays them as fast as both ends go: "
            "the client's capacity when it has fallen behind.",
            "",
            "| measure | opkit informer | baseline: raw watch | opkit / baseline |",
            "| --- | --- | --- | --- |",
            f"| live events/s | {live['opkit']:,.0f} | {live['raw']:,.0f} "
            f"| {c.ratio(live['opkit'], live['raw'])} |",
            f"| writer's writes/s meanwhile | {wrote['opkit']:,.0f} | {wrote['raw']:,.0f} "
            f"| {c.ratio(wrote['opkit'], wrote['raw'])} |",
            f"| live lag after the last write | {_ms(lag['opkit'])} | {_ms(lag['raw'])} | |",
            f"| backlog events/s | {backlog['opkit']:,.0f} | {backlog['raw']:,.0f} "
            f"| {c.ratio(backlog['opkit'], backlog['raw'])} |",
            "",
        ]
    )


# -- main ------------------------------------------------------------------------------------------


def child_main(args: argparse.Namespace) -> int:
    mode = args.child
    result: dict[str, Any]
    if mode == "sync-opkit":
        result = child_sync_opkit(args.kubeconfig, args.expect)
    elif mode == "sync-official":
        result = child_sync_official(args.kubeconfig, args.expect)
    elif mode == "sync-floor":
        result = child_sync_floor(args.kubeconfig, args.expect)
    elif mode == "writer":
        result = child_writer(args.url, args.token, args.objects, args.expect, 4)
    elif mode == "watch-opkit":
        result = child_watch_opkit(args.kubeconfig, args.expect, args.rv)
    elif mode == "watch-raw":
        result = child_watch_raw(args.url, args.token, args.expect, args.rv)
    else:
        raise SystemExit(f"unknown child mode {mode}")
    c.emit(result)
    sys.stdout.flush()
    os._exit(0)  # skip teardown: background watch threads would only delay the exit


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--objects", type=int, default=10_000, help="ConfigMaps for the sync bench")
    ap.add_argument("--runs", type=int, default=7, help="runs of each sync variant")
    ap.add_argument("--watch-runs", type=int, default=3)
    ap.add_argument("--watch-objects", type=int, default=1_000)
    ap.add_argument("--updates", type=int, default=5_000, help="writes per live watch run")
    ap.add_argument("--only", choices=("sync", "watch"), help="run one of the two benches")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--token", default="", help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--rv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    sections: list[tuple[str, str]] = []
    if args.only in (None, "sync"):
        res = run_sync(args.objects, args.runs)
        sections.append((render_sync(res, args.objects, args.runs), "## Informer initial sync"))
    if args.only in (None, "watch"):
        wres = run_watch(args.watch_objects, args.updates, args.watch_runs)
        sections.append(
            (
                render_watch(wres, args.watch_objects, args.updates, args.watch_runs),
                "## Informer watch throughput",
            )
        )
    for section, heading in sections:
        print(section)
        if args.write:
            c.write_section(c.DOCS, section, heading)
    return 0


if __name__ == "__main__":
    sys.exit(main())
