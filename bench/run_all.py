"""Run every benchmark, each in its own interpreter; with ``--write``, refresh docs/benchmarks.md.

Usage: ``.venv/bin/python bench/run_all.py [--write]`` (about two minutes on 2 cores). Each
script is also runnable alone and writes only its own ``## ...`` sections.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _common as c

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("apiserver.py", "informer.py", "workqueue.py", "controller.py", "cluster.py")

PREAMBLE = """# Benchmarks

Figures from `.venv/bin/python bench/run_all.py --write` (each script in `bench/` also runs
alone). Every table states its machine and sits next to the baseline it was measured against
in the same run; ratios compare the two. Absolute figures vary by tens of percent between
runs and machines, more so when other work shares the cores (each table gives the load average
at its start): compare ratios, not absolute figures.
"""


def write_preamble(path: Path) -> None:
    """Put :data:`PREAMBLE` above the ``## `` sections, one blank line between sections."""
    text = path.read_text() if path.exists() else ""
    parts = text.split("\n## ")[1:]
    sections = ["## " + part.strip("\n") + "\n" for part in parts]
    path.write_text("\n".join([PREAMBLE, *sections]))


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    failed: list[str] = []
    total = time.monotonic()
    for script in SCRIPTS:
        start = time.monotonic()
        print(f"== {script}", flush=True)
        cmd = [sys.executable, str(BENCH / script), *(["--write"] if args.write else [])]
        code = subprocess.call(cmd, cwd=c.ROOT)
        print(f"== {script}: exit {code} in {time.monotonic() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(script)
    if args.write:
        write_preamble(c.DOCS)
    print(f"== all done in {time.monotonic() - total:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
