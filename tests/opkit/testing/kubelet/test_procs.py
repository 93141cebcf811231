"""Process supervision: group signals, exit codes, log rotation, and no orphans after a crash."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opkit.testing.kubelet import _procs
from opkit.testing.kubelet._podexec import podexec_argv
from opkit.testing.kubelet._procs import ProcessRegistry, previous_log_path, spawn

PY = sys.executable


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _read_pids(path: Path, count: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            words = path.read_text().split()
            if len(words) >= count:
                return [int(w) for w in words[:count]]
        time.sleep(0.02)
    raise AssertionError(f"{path} did not get {count} pids: {path.read_text()!r}")


@pytest.fixture
def registry() -> Iterator[ProcessRegistry]:
    reg = ProcessRegistry()
    yield reg
    reg.kill_all()


def test_exit_codes_follow_kubernetes_convention(registry: ProcessRegistry) -> None:
    assert spawn([PY, "-c", "raise SystemExit(3)"], registry=registry).wait(10) == 3
    p = spawn(["sleep", "30"], registry=registry)
    p.kill()
    assert p.wait(10) == 137
    assert p.term_signal == signal.SIGKILL
    assert p.returncode == -signal.SIGKILL
    assert registry.live() == []


def test_terminate_sends_sigterm_to_the_group_then_kills(registry: ProcessRegistry) -> None:
    graceful = spawn(
        [PY, "-c", "import signal,time\nsignal.signal(15, lambda *a: exit(0))\ntime.sleep(60)"],
        registry=registry,
    )
    time.sleep(0.3)  # let it install the handler
    assert graceful.terminate(grace=10) == 0

    stubborn = spawn(
        [
            PY,
            "-c",
            "import signal,time\nsignal.signal(15, signal.SIG_IGN)\nprint(1, flush=True)\n"
            "time.sleep(60)",
        ],
        registry=registry,
        stdout_path=None,
    )
    time.sleep(0.3)
    assert stubborn.terminate(grace=0.2) == 137
    assert stubborn.terminate() == 137  # idempotent on an ended program


def test_group_is_killed_when_the_main_process_exits(
    registry: ProcessRegistry, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    p = spawn(["sh", "-c", f"sleep 60 & echo $! > {pids}; exit 0"], registry=registry)
    (helper,) = _read_pids(pids, 1)
    assert p.wait(10) == 0
    assert _wait_gone([helper]) == []


def test_kill_reaches_grandchildren(registry: ProcessRegistry, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    p = spawn(["sh", "-c", f"sleep 60 & echo $! > {pids}; wait"], registry=registry)
    (helper,) = _read_pids(pids, 1)
    p.kill()
    assert p.wait(10) == 137
    assert _wait_gone([helper]) == []


def test_logs_rotate_per_restart_and_streams_can_share_a_file(
    registry: ProcessRegistry, tmp_path: Path
) -> None:
    log = tmp_path / "c" / "app.log"
    script = "import sys; print('out', sys.argv[1], flush=True); print('err', file=sys.stderr)"
    spawn([PY, "-c", script, "run1"], stdout_path=log, stderr_path=log, registry=registry).wait(10)
    spawn([PY, "-c", script, "run2"], stdout_path=log, stderr_path=log, registry=registry).wait(10)
    assert log.read_text().splitlines() == ["out run2", "err"]
    assert previous_log_path(log).read_text().splitlines() == ["out run1", "err"]


def test_env_and_cwd_are_applied(registry: ProcessRegistry, tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = spawn(
        [PY, "-c", "import os; print(os.environ['X'], os.getcwd())"],
        env={"X": "from-env"},
        cwd=tmp_path,
        stdout_path=out,
        registry=registry,
    )
    assert p.wait(10) == 0
    assert out.read_text().split() == ["from-env", str(tmp_path)]


def test_kill_all_ends_every_program_of_a_registry(registry: ProcessRegistry) -> None:
    procs = [spawn(["sleep", "60"], registry=registry) for _ in range(3)]
    assert len(registry.live()) == 3
    registry.kill_all(grace=5)
    assert registry.live() == []
    assert [p.exit_code for p in procs] == [143, 143, 143]


def test_missing_program_raises() -> None:
    with pytest.raises(FileNotFoundError):
        spawn(["/nonexistent/program"])


def test_spawn_from_a_short_lived_thread_survives_the_thread(registry: ProcessRegistry) -> None:
    # The parent-death signal follows the forking thread; spawn must not fork from this one.
    box: list[_procs.Proc] = []
    t = threading.Thread(target=lambda: box.append(spawn(["sleep", "60"], registry=registry)))
    t.start()
    t.join()
    (p,) = box
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=0.5)
    assert p.alive()
    p.terminate(grace=5)
    _procs._spawner.stop()


_INTERMEDIATE = textwrap.dedent(
    """
    import sys, time
    from opkit.testing.kubelet._procs import spawn
    from opkit.testing.kubelet._podexec import podexec_argv
    prefix = {
        "plain": [],
        "supervised": podexec_argv(supervise=True),
        "pid-ns": podexec_argv(pid_ns=True),
    }[sys.argv[1]]
    # The program forks a helper that stays in its process group, then both sleep.
    child = "import os, time\\nos.fork()\\ntime.sleep(120)\\n"
    spawn([sys.executable, "-c", child], prefix=prefix)
    print("spawned", flush=True)
    time.sleep(120)
    """
)


def _stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _session_of_child(parent: int) -> int | None:
    """The session led by the program ``parent`` spawned (its pid)."""
    for entry in os.listdir("/proc"):
        fields = _stat(entry) if entry.isdigit() else None
        if fields and int(fields[1]) == parent and int(fields[3]) == int(entry):
            return int(entry)
    return None


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        fields = _stat(entry) if entry.isdigit() else None
        if fields and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


@pytest.mark.parametrize(("mode", "size"), [("plain", 2), ("supervised", 3), ("pid-ns", 3)])
def test_killing_the_spawning_process_leaves_no_orphans(mode: str, size: int) -> None:
    """A stand-in kubelet spawns a program that forks; SIGKILL the kubelet, check survivors."""
    if mode == "pid-ns" and os.geteuid() != 0:
        probe = subprocess.run(["unshare", "-Urpf", "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip("PID namespaces need root or unprivileged user namespaces")
    inter = subprocess.Popen([PY, "-c", _INTERMEDIATE, mode], stdout=subprocess.PIPE, text=True)
    members: list[int] = []
    try:
        assert inter.stdout is not None
        assert inter.stdout.readline().strip() == "spawned"
        deadline = time.monotonic() + 10
        sid = None
        while time.monotonic() < deadline:
            sid = sid or _session_of_child(inter.pid)
            members = _session_members(sid) if sid else []
            if len(members) >= size:
                break
            time.sleep(0.02)
        assert sid is not None
        assert len(members) == size, members
        inter.kill()
        inter.wait()
        if mode == "plain":
            # The kernel's parent-death signal reaches the direct child only; its helper is
            # orphaned. That is why the kubelet runs every program supervised.
            assert _wait_gone([sid]) == []
            assert [p for p in members if not _gone(p)] != []
        else:
            assert _wait_gone(members) == []
    finally:
        inter.kill()
        inter.wait()
        if inter.stdout is not None:
            inter.stdout.close()
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_podexec_passes_exit_status_through() -> None:
    sup = podexec_argv(supervise=True)
    assert subprocess.run([*sup, "sh", "-c", "exit 7"], check=False).returncode == 7
    res = subprocess.run([*sup, "sh", "-c", "kill -TERM $$"], check=False)
    assert res.returncode == -signal.SIGTERM
    res = subprocess.run([*podexec_argv(), "/nonexistent"], capture_output=True, check=False)
    assert res.returncode == 127
    assert b"/nonexistent" in res.stderr
