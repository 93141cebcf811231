"""``python -m opkit.testing apiserver --kubeconfig PATH [--port N]`` and
``python -m opkit.testing cluster --kubeconfig PATH [--data-dir DIR]`` (see
:func:`opkit.testing.cluster.main_cluster`).

Runs the embedded API server in the foreground. The kubeconfig is written (atomically)
only once the server is serving, so a script can wait for the file to appear. SIGINT and
SIGTERM stop it cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .apiserver.server import APIServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m opkit.testing")
    sub = p.add_subparsers(dest="command", required=True)
    api = sub.add_parser("apiserver", help="run the embedded Kubernetes API server")
    api.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    api.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    sub.add_parser(
        "cluster",
        help="run API server, built-in controllers and a local kubelet (see cluster --help)",
        add_help=False,
    )
    return p


def fail(command: str, what: str, exc: OSError) -> int:
    """Report a start-up failure as one line on stderr; the exit status is 1."""
    reason = exc.strerror or str(exc)
    print(f"opkit {command}: {what}: {reason}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cluster"]:
        from .cluster import main_cluster

        return main_cluster(argv[1:])
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = APIServer(args.host, args.port, bookmark_interval=args.bookmark_interval)
    try:
        server.start()
    except OSError as exc:
        return fail("apiserver", f"cannot listen on {args.host}:{args.port}", exc)
    try:
        try:
            server.write_kubeconfig(args.kubeconfig)
        except OSError as exc:
            return fail("apiserver", f"cannot write kubeconfig {args.kubeconfig}", exc)
        print(
            f"opkit apiserver serving at {server.url} (kubeconfig: {args.kubeconfig})", flush=True
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
