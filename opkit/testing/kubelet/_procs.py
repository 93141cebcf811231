"""Process supervision primitives for the local kubelet: spawn, stop, kill, reap, never leak.

Every program runs in its own session and process group, so one signal reaches it and every
helper it forked. Three layers make sure nothing outlives the cluster:

* :meth:`ProcessRegistry.kill_all` at cluster stop, and :func:`kill_all` from ``atexit``.
* ``PR_SET_PDEATHSIG(SIGKILL)``, armed between fork and exec, so the kernel kills the program
  when the Python process dies without running ``atexit`` (SIGKILL, a crash). The kernel ties
  that signal to the *thread* that forked, not the process: a child forked by a worker thread
  would be killed when that thread ends. :func:`spawn` therefore forks only from the main thread
  or from one long-lived spawner thread, whichever thread calls it.
* The death signal reaches only the direct child. Grandchildren are covered by running the
  program under the pod wrapper with ``supervise=True`` (:func:`._podexec.podexec_argv`), which
  kills its whole group when its parent dies; the kubelet always does that.

When a program's main process exits, the rest of its group is killed before the exit is
reaped, as a container's processes die with it; the dead leader's pid still names the group at
that moment, so the signal cannot hit an unrelated process that reused the number.

Real time is used for grace periods because the waits are on real processes.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "Proc",
    "ProcessRegistry",
    "default_registry",
    "kill_all",
    "previous_log_path",
    "rotate_log",
    "spawn",
]

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl

T = TypeVar("T")


def previous_log_path(path: str | os.PathLike[str]) -> Path:
    """Where the log of the previous run of a restarted program is kept (``kubectl logs -p``)."""
    p = Path(path)
    return p.with_name(p.name + ".previous")


def rotate_log(path: str | os.PathLike[str]) -> Path | None:
    """Move an existing log aside as the previous run's log; returns its new path, if any."""
    p = Path(path)
    if not p.exists():
        return None
    prev = previous_log_path(p)
    os.replace(p, prev)
    return prev


def _exit_code(returncode: int) -> int:
    """Shell/Kubernetes convention: a death by signal N is exit code 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Proc:
    """A spawned program and its process group (pgid == pid)."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        argv: Sequence[str],
        registry: ProcessRegistry,
        *,
        kill_group_on_exit: bool,
        stdout_path: Path | None,
        stderr_path: Path | None,
    ) -> None:
        self._popen = popen
        self.argv = list(argv)
        self.pid = popen.pid
        self.pgid = popen.pid
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self._registry = registry
        self._kill_group_on_exit = kill_group_on_exit
        self._lock = threading.Lock()
        self._returncode: int | None = None
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:
            self._pidfd = None

    def __repr__(self) -> str:
        state = "running" if self._returncode is None else f"exit={self.exit_code}"
        return f"<Proc pid={self.pid} {state} {self.argv[0]!r}>"

    @property
    def returncode(self) -> int | None:
        """Popen convention (``-N`` for a death by signal N); None while running/unreaped."""
        return self._returncode

    @property
    def exit_code(self) -> int | None:
        """Exit code as Kubernetes reports it (137 for SIGKILL, 143 for SIGTERM)."""
        return None if self._returncode is None else _exit_code(self._returncode)

    @property
    def term_signal(self) -> int | None:
        """The signal that ended the program, if one did."""
        rc = self._returncode
        return -rc if rc is not None and rc < 0 else None

    def _exited(self, timeout: float | None) -> bool:
        """Whether the main process has exited, waiting up to ``timeout``; does not reap."""
        if self._returncode is not None:
            return True
        with self._lock:
            # A private copy: another thread may reap and close the original meanwhile.
            pidfd = os.dup(self._pidfd) if self._pidfd is not None else None
        if pidfd is not None:
            try:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                ms = None if timeout is None else max(0, int(timeout * 1000))
                return bool(poller.poll(ms))
            finally:
                os.close(pidfd)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return True
            except ChildProcessError:
                return True  # already reaped
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay if deadline is None else min(delay, deadline - time.monotonic()))
            delay = min(delay * 2, 0.05)

    def _reap(self) -> int:
        with self._lock:
            if self._returncode is None:
                if self._kill_group_on_exit:
                    # The unreaped leader keeps the group id reserved: safe to signal.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.pgid, signal.SIGKILL)
                self._returncode = self._popen.wait()
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
                self._registry._discard(self)
                _LIVE.discard(self)
            return self._returncode

    def poll(self) -> int | None:
        """The exit code if the program has ended (reaping it), else None."""
        if self._exited(0):
            return _exit_code(self._reap())
        return None

    def alive(self) -> bool:
        """Whether the main process is still running."""
        return not self._exited(0)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the program to end; returns its exit code (Kubernetes convention).

        Raises :class:`subprocess.TimeoutExpired` if it is still running after ``timeout``.
        """
        if not self._exited(timeout):
            raise subprocess.TimeoutExpired(self.argv, timeout or 0.0)
        return _exit_code(self._reap())

    def send_signal(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False if the program has already ended."""
        with self._lock:
            if self._returncode is not None:
                return False
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                return False
            return True

    def kill(self) -> None:
        """SIGKILL the whole group without waiting (chaos tests; the exit is reaped later)."""
        self.send_signal(signal.SIGKILL)

    def terminate(self, grace: float = 30.0, sig: int = signal.SIGTERM) -> int:
        """Graceful stop: ``sig`` to the group, up to ``grace`` seconds, then SIGKILL.

        Returns the exit code. Safe to call on an ended program.
        """
        if self._returncode is not None:
            return _exit_code(self._returncode)
        if grace > 0 and self.send_signal(sig) and self._exited(grace):
            return _exit_code(self._reap())
        self.kill()
        return self.wait()


class ProcessRegistry:
    """The live programs of one cluster, so that stopping it can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[Proc] = set()

    def _add(self, proc: Proc) -> None:
        with self._lock:
            self._procs.add(proc)

    def _discard(self, proc: Proc) -> None:
        with self._lock:
            self._procs.discard(proc)

    def live(self) -> list[Proc]:
        """Programs spawned through this registry and not yet reaped."""
        with self._lock:
            return list(self._procs)

    def kill_all(self, grace: float = 0.0) -> None:
        """End every program: SIGTERM and up to ``grace`` seconds in all, then SIGKILL; reap."""
        procs = self.live()
        if grace > 0:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for p in procs:
                p._exited(max(0.0, deadline - time.monotonic()))
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


# Every unreaped program of this process, whatever its registry (kept alive for atexit).
_LIVE: set[Proc] = set()
default_registry = ProcessRegistry()


def kill_all(grace: float = 0.0) -> None:
    """End every program spawned by this Python process (all registries)."""
    everything = ProcessRegistry()
    everything._procs = set(_LIVE)
    everything.kill_all(grace)


atexit.register(kill_all)


class _Spawner:
    """One long-lived thread that forks on behalf of other non-main threads (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is threading.main_thread():
            return fn()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="opkit-kubelet-spawner", daemon=True
                )
                self._thread.start()
        if threading.current_thread() is self._thread:
            return fn()
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def _loop(self) -> None:
        while True:
            fn, fut = self._queue.get()
            if fut is _STOP:
                return
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

    def stop(self) -> None:
        """End the spawner thread (tests). Programs it forked get their death signal."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put((lambda: None, _STOP))
            thread.join()


_STOP: Future[Any] = Future()


_spawner = _Spawner()


def _preexec(parent: int) -> Callable[[], None]:
    def arm() -> None:
        # Runs in the child between fork and exec: keep it to two system calls.
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent:  # parent died before the signal was armed
            os._exit(137)

    return arm


def _open_log(path: Path, rotate: bool) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rotate:
        rotate_log(path)
    return open(path, "ab")


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout_path: str | os.PathLike[str] | None = None,
    stderr_path: str | os.PathLike[str] | None = None,
    prefix: Sequence[str] = (),
    rotate_logs: bool = True,
    kill_group_on_exit: bool = True,
    registry: ProcessRegistry | None = None,
) -> Proc:
    """Start ``prefix + argv`` in a new session with its parent-death signal armed.

    ``stdout_path``/``stderr_path`` receive the output (the same path for both interleaves them
    in one file, like ``kubectl logs``); an existing file is first moved to
    :func:`previous_log_path` unless ``rotate_logs`` is false. None discards the stream. stdin
    is ``/dev/null``. ``env`` replaces the environment (None inherits ours); name programs by
    absolute path when it has no PATH. Raises OSError (e.g. FileNotFoundError) if the program
    cannot be started.
    """
    full = [*prefix, *argv]
    if not full:
        raise ValueError("spawn: empty argv")
    out_p = Path(stdout_path) if stdout_path is not None else None
    err_p = Path(stderr_path) if stderr_path is not None else None
    reg = registry or default_registry

    def start() -> Proc:
        files: list[IO[bytes]] = []
        try:
            out: IO[bytes] | int = subprocess.DEVNULL
            err: IO[bytes] | int = subprocess.DEVNULL
            if out_p is not None:
                out = _open_log(out_p, rotate_logs)
                files.append(out)
            if err_p is not None:
                if out_p is not None and err_p.resolve() == out_p.resolve():
                    err = out
                else:
                    err = _open_log(err_p, rotate_logs)
                    files.append(err)
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_preexec(os.getpid()),  # noqa: PLW1509 (see module doc)
            )
        finally:
            for f in files:
                f.close()
        proc = Proc(
            popen,
            full,
            reg,
            kill_group_on_exit=kill_group_on_exit,
            stdout_path=out_p,
            stderr_path=err_p,
        )
        reg._add(proc)
        _LIVE.add(proc)
        return proc

    return _spawner.run(start)
