"""A small config reloader standing in for ``prometheus-config-reloader`` and
``configmap-reload`` images.

Watches directories (``--watched-dir`` / ``--volume-dir``, repeatable) and a config file
(``--config-file``, rendered with ``$(VAR)`` environment substitution to
``--config-envsubst-file``), and POSTs to ``--reload-url`` / ``--webhook-url`` whenever their
contents change, retrying until the reload is accepted. Unknown flags of the real programs are
accepted and ignored. With ``--listen-address`` / ``--web.listen-address`` it answers every
HTTP GET with 200, for probes.

Run as ``python -m opkit.testing.kubelet._reloader [flags]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    for root in paths:
        if os.path.isfile(root):
            files = [root]
        else:
            files = []
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".."))
                files += [os.path.join(dirpath, f) for f in sorted(filenames)]
        for f in files:
            try:
                with open(f, "rb") as fh:
                    h.update(f.encode() + b"\0" + fh.read())
            except OSError:
                continue
    return h.hexdigest()


def _render(src: str, dst: str) -> None:
    with open(src) as f:
        text = f.read()
    text = _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), text)
    tmp = dst + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, dst)


def _render_quietly(src: str, dst: str) -> None:
    try:
        _render(src, dst)
    except OSError as e:
        print(f"rendering {src} failed: {e}", file=sys.stderr, flush=True)


def _reload(url: str, method: str) -> bool:
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return 200 <= int(resp.status) < 300
    except OSError as e:
        print(f"reload via {url} failed: {e}", file=sys.stderr, flush=True)
        return False


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="config-reloader")
    p.add_argument("--watched-dir", "--volume-dir", dest="dirs", action="append", default=[])
    p.add_argument("--config-file", default="")
    p.add_argument("--config-envsubst-file", default="")
    p.add_argument("--reload-url", "--webhook-url", dest="url", default="")
    p.add_argument("--webhook-method", default="POST")
    p.add_argument("--listen-address", "--web.listen-address", dest="listen", default="")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    return p


def main(argv: list[str] | None = None) -> int:
    args, _unknown = _parser().parse_known_args(argv)
    url = args.url or "http://127.0.0.1:9090/-/reload"
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server: ThreadingHTTPServer | None = None
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), _Ok)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    watched = [*args.dirs, *([args.config_file] if args.config_file else [])]
    if args.config_file and args.config_envsubst_file:
        _render_quietly(args.config_file, args.config_envsubst_file)
    last = _digest(watched)  # what the server started with
    print(f"watching {watched}, reloading via {url}", flush=True)
    pending = False
    while not stop.wait(args.interval):
        current = _digest(watched)
        if current != last:
            if args.config_file and args.config_envsubst_file:
                _render_quietly(args.config_file, args.config_envsubst_file)
            pending = True
            last = current
        if pending and _reload(url, args.webhook_method):
            print("configuration reloaded", flush=True)
            pending = False
    if server is not None:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
