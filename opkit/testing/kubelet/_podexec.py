"""Pod process wrapper: enter a pod's namespaces, install its private files, run the program.

The kubelet runs every container as ``python -I -S _podexec.py [options] -- program args...``.
Doing the namespace work in a helper that then ``exec``s (or forks and waits) keeps argv intact:
no shell, no quoting. It is run by file path and imports only the standard library, so it starts
in a few tens of milliseconds and does not depend on the environment of the program it runs.

What it can do, in this order:

* ``--netns NAME|PATH``: join a network namespace made by :mod:`._netns` (``/run/netns/NAME``).
* ``--hosts FILE`` / ``--resolv FILE``: a private mount namespace (nothing propagates back to the
  host) in which FILE is bind-mounted over ``/etc/hosts`` / ``/etc/resolv.conf``. The host's files
  are never written.
* ``--join PID``: enter the network, UTS, mount and PID namespaces of a running pod program
  (PID is its supervisor, i.e. the process the kubelet spawned); for exec probes. Implies
  ``--supervise`` so the command is forked inside the pod's PID namespace. A pod that is still
  being set up (its supervisor has not forked the program yet) is waited for.
* ``--bind SRC DST`` / ``--ro-bind SRC DST`` (repeatable): bind-mount a volume directory or
  file onto the path the container expects (``/var/lib/etcd``, ``/etc/prometheus``) in the
  private mount namespace. A missing mount point is never created on the host: its nearest
  existing parent is first *shadowed* by a tmpfs holding bind mounts of everything the parent
  had (``pivot_root`` when the parent is ``/``), and the mount point is made in the tmpfs.
  ``--scratch DIR`` names an existing empty directory for that tmpfs.
* ``--cwd DIR``: working directory of the program (after the mounts).
* ``--hostname NAME``: a private UTS namespace with that hostname, as a pod has.
* ``--pid-ns``: a private PID namespace in which the program is PID 1, with its own ``/proc``.
  When PID 1 exits the kernel kills everything else in the pod, as in a real container.
* ``--init`` (with ``--pid-ns``): PID 1 is a minimal init that forwards SIGTERM and friends
  to the program and reaps orphans, as with ``docker run --init`` or a pod sharing its process
  namespace; without it a program that installs no SIGTERM handler ignores SIGTERM as PID 1.
* ``--supervise`` (implied by ``--pid-ns``): stay as the program's parent. If the process that
  started us dies (the kubelet, or the test process hosting it, even by SIGKILL), the kernel
  signals us (PR_SET_PDEATHSIG) and we SIGKILL our whole process group, so programs that forked
  helpers leave no orphans. The program's exit status is passed on unchanged: a signal death is
  re-raised on ourselves.

Without root, the namespaces are created inside a new user namespace that maps the caller's own
uid/gid, so ``--hosts`` and friends also work for unprivileged users where the kernel allows
unprivileged user namespaces; ``--netns`` needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PODEXEC", "podexec_argv"]

PODEXEC = Path(__file__).resolve()

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_PR_SET_PDEATHSIG = 1
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}

# Sent to the supervisor when its parent dies; a real-time signal nobody sends by accident
# (SIGTERM cannot serve: the kubelet sends it to the whole group for graceful stops).
PARENT_DEATH_SIGNAL = signal.SIGRTMIN + 5
# Signals a process group receives from the kubelet or a terminal that the supervisor itself
# must survive: it waits for the program, which decides what they mean.
_IGNORED_BY_SUPERVISOR = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
# Python starts with these ignored; ignored dispositions survive exec, so reset them.
_RESET_BEFORE_EXEC = (signal.SIGPIPE, signal.SIGXFSZ, *_IGNORED_BY_SUPERVISOR)

EXIT_SETUP_FAILED = 126
EXIT_NOT_FOUND = 127


def podexec_argv(
    *,
    netns: str | None = None,
    hosts_file: str | os.PathLike[str] | None = None,
    resolv_file: str | os.PathLike[str] | None = None,
    hostname: str | None = None,
    pid_ns: bool = False,
    supervise: bool = False,
    python: str | None = None,
    binds: Sequence[tuple[str, str, bool]] = (),
    scratch: str | os.PathLike[str] | None = None,
    cwd: str | None = None,
    join: int | None = None,
    init: bool = False,
) -> list[str]:
    """The argv prefix that runs a command through this wrapper (append ``program, args...``).

    The caller's pid is recorded so that a supervisor whose parent died before it could arm its
    death signal notices and cleans up instead of running on as an orphan. ``binds`` are
    ``(source, target, read_only)`` triples.
    """
    argv = [python or sys.executable, "-I", "-S", str(PODEXEC)]
    if join is not None:
        argv += ["--join", str(join)]
        supervise = True
    if netns:
        argv += ["--netns", netns]
    if hosts_file is not None:
        argv += ["--hosts", os.fspath(hosts_file)]
    if resolv_file is not None:
        argv += ["--resolv", os.fspath(resolv_file)]
    for source, target, read_only in binds:
        argv += ["--ro-bind" if read_only else "--bind", os.fspath(source), target]
    if scratch is not None:
        argv += ["--scratch", os.fspath(scratch)]
    if cwd:
        argv += ["--cwd", cwd]
    if hostname:
        argv += ["--hostname", hostname]
    if pid_ns:
        argv.append("--pid-ns")
        if init:
            argv.append("--init")
    if supervise or pid_ns:
        argv += ["--supervise", "--parent", str(os.getpid())]
    argv.append("--")
    return argv


class _Options:
    def __init__(self) -> None:
        self.netns: str | None = None
        self.hosts: str | None = None
        self.resolv: str | None = None
        self.hostname: str | None = None
        self.pid_ns = False
        self.supervise = False
        self.parent: int | None = None
        self.join: int | None = None
        self.binds: list[tuple[str, str, bool]] = []
        self.scratch: str | None = None
        self.cwd: str | None = None
        self.init = False


class _SetupError(Exception):
    pass


def _parse(args: Sequence[str]) -> tuple[_Options, list[str]]:
    opts = _Options()
    valued = {"--netns", "--hosts", "--resolv", "--hostname", "--parent", "--join", "--scratch"}
    valued.add("--cwd")
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return opts, list(args[i + 1 :])
        if arg in ("--bind", "--ro-bind"):
            if i + 2 >= len(args) or "--" in (args[i + 1], args[i + 2]):
                raise _SetupError(f"{arg} needs a source and a target")
            opts.binds.append((args[i + 1], args[i + 2], arg == "--ro-bind"))
            i += 3
            continue
        if arg == "--pid-ns":
            opts.pid_ns = True
        elif arg == "--init":
            opts.init = True
        elif arg == "--supervise":
            opts.supervise = True
        elif arg in valued:
            if i + 1 >= len(args):
                raise _SetupError(f"{arg} needs a value")
            value = args[i + 1]
            i += 1
            if arg == "--netns":
                opts.netns = value
            elif arg == "--hosts":
                opts.hosts = value
            elif arg == "--resolv":
                opts.resolv = value
            elif arg == "--hostname":
                opts.hostname = value
            elif arg == "--join":
                opts.join = int(value)
                opts.supervise = True
            elif arg == "--scratch":
                opts.scratch = value
            elif arg == "--cwd":
                opts.cwd = value
            else:
                opts.parent = int(value)
        else:
            raise _SetupError(f"unknown option {arg!r} (usage: [options] -- program args...)")
        i += 1
    raise _SetupError("missing '--' before the program to run")


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise _SetupError(f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, what: str) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            None,
        ),
        what,
    )


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _wait_until_set_up(pid: int, limit: float = 30.0) -> None:
    """Wait until the supervisor ``pid`` has forked its program.

    It forks only once every namespace and mount is in place: joining it earlier enters the
    host's namespaces, a mount namespace without the volumes yet, or a PID namespace that has
    no process and cannot be entered, and a probe right after the start would see that.
    """
    children = f"/proc/{pid}/task/{pid}/children"
    deadline = time.monotonic() + limit
    delay = 0.001
    while True:
        try:
            with open(children) as f:
                if f.read().split():
                    return
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{pid}"):
                return  # a kernel without the children file: cannot tell, do not wait
            raise _SetupError(f"process {pid}: No such process") from None
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            state = "X"
        if state in ("Z", "X"):
            raise _SetupError(f"process {pid} has ended")
        if time.monotonic() >= deadline:
            raise _SetupError(f"process {pid} has not started its program")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _join(pid: int) -> None:
    """Enter the namespaces of a running pod program (``kubectl exec``-like, exec probes)."""
    _wait_until_set_up(pid)
    base = f"/proc/{pid}/ns"
    # The mount namespace last: entering it changes our root, and so what /proc/... means.
    for name, flag in (
        ("net", _CLONE_NEWNET),
        ("uts", _CLONE_NEWUTS),
        ("pid_for_children", _CLONE_NEWPID),
        ("mnt", _CLONE_NEWNS),
    ):
        try:
            fd = os.open(f"{base}/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _SetupError(f"process {pid}: {e.strerror}") from None
        try:
            _check(_libc.setns(fd, flag), f"joining the {name} namespace of process {pid}")
        finally:
            os.close(fd)


def _path_of(path: str) -> str:
    """A path that keeps naming ``path`` whatever is mounted later (an O_PATH descriptor)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise _SetupError(f"{path}: {e.strerror}") from None
    return f"/proc/self/fd/{fd}"


class _Mounter:
    """Bind mounts onto paths that may not exist, without ever creating anything on the host.

    A missing mount point is made inside a *shadow* of its nearest existing parent: a directory
    in the scratch tmpfs holding one bind mount per entry of the parent, itself bind-mounted over
    the parent (or made the new root with ``pivot_root`` when the parent is ``/``).
    """

    def __init__(self, scratch: str | None) -> None:
        self._root: str | None = None
        if scratch:
            # Mounted at once and used through a descriptor: later mounts may hide its path.
            _mount("tmpfs", scratch, "tmpfs", _MS_NOSUID | _MS_NODEV, "mounting scratch")
            self._root = _path_of(scratch)
        self._count = 0
        # Directories we may create entries in: shadows, what we made in them, rw volumes.
        self._writable: set[str] = set()

    def _new_scratch_dir(self) -> str:
        if self._root is None:
            raise _SetupError("a mount point is missing and no --scratch directory was given")
        self._count += 1
        path = f"{self._root}/s{self._count}"
        os.mkdir(path)
        return path

    def _shadow(self, parent: str) -> None:
        shadow = self._new_scratch_dir()
        st = os.stat(parent)
        os.chmod(shadow, st.st_mode & 0o7777)
        os.chown(shadow, st.st_uid, st.st_gid)
        for name in sorted(os.listdir(parent)):
            src, dst = os.path.join(parent, name), os.path.join(shadow, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            if os.path.isdir(src):
                os.mkdir(dst)
            else:
                open(dst, "w").close()  # files, sockets, devices: any non-directory will do
            _mount(src, dst, None, _MS_BIND | _MS_REC, f"bind-mounting {src} into a shadow")
        if parent == "/":
            self._pivot(shadow)
        else:
            _mount(shadow, parent, None, _MS_BIND | _MS_REC, f"shadowing {parent}")
        self._writable.add(parent)

    def shadow_root(self, scratch: str | None) -> None:
        """Shadow ``/`` (``pivot_root``) and reopen the scratch directory in the new root."""
        self._shadow("/")
        if scratch:
            self._root = _path_of(scratch)

    @staticmethod
    def _pivot(new_root: str) -> None:
        nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
        if nr is None:
            raise _SetupError(f"cannot shadow / on {os.uname().machine} (no pivot_root number)")
        _mount(new_root, new_root, None, _MS_BIND | _MS_REC, "making the new root a mount")
        os.chdir(new_root)
        old = ".opkit-old-root"
        os.mkdir(old)
        _check(_libc.syscall(nr, b".", old.encode()), "pivot_root")
        _check(_libc.umount2(old.encode(), _MNT_DETACH), "detaching the old root")
        os.rmdir(old)
        os.chdir("/")

    def mount_point(self, target: str, is_dir: bool) -> str:
        """The resolved ``target``, created (in a shadow) if missing, of the right type."""
        real = os.path.realpath(target)
        if os.path.exists(real):
            if os.path.isdir(real) != is_dir:
                kind = "directory" if is_dir else "file"
                raise _SetupError(f"cannot mount a {kind} on {target}: it exists as another type")
            return real
        missing = []
        parent = real
        while not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise _SetupError(f"cannot mount on {target}: {parent} is not a directory")
        if parent not in self._writable:
            self._shadow(parent)
        for path in reversed(missing):
            if path != real or is_dir:
                os.mkdir(path, 0o755)
            else:
                open(path, "w").close()
            self._writable.add(path)
        return real

    def bind(self, source: str, target: str, read_only: bool) -> None:
        is_dir = os.path.isdir(source)
        where = self.mount_point(target, is_dir)
        _mount(source, where, None, _MS_BIND | _MS_REC, f"bind-mounting {source} on {target}")
        if read_only:
            flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
            _mount(None, where, None, flags, f"making {target} read-only")
            self._writable.discard(where)
        elif is_dir:
            self._writable.add(where)


def _setup(opts: _Options) -> None:
    if opts.join is not None:
        _join(opts.join)
    if opts.netns:
        path = opts.netns if "/" in opts.netns else f"/run/netns/{opts.netns}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _SetupError(f"network namespace {path}: {e.strerror}") from None
        try:
            _check(_libc.setns(fd, _CLONE_NEWNET), f"joining network namespace {path}")
        finally:
            os.close(fd)

    mounts = bool(opts.hosts or opts.resolv or opts.pid_ns or opts.binds)
    flags = (
        (_CLONE_NEWNS if mounts else 0)
        | (_CLONE_NEWUTS if opts.hostname else 0)
        | (_CLONE_NEWPID if opts.pid_ns else 0)
    )
    if not flags:
        if opts.cwd:
            os.chdir(opts.cwd)
        return
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        flags |= _CLONE_NEWUSER
    _check(_libc.unshare(flags), "creating namespaces (unshare)")
    if uid != 0:
        # Map our own ids onto themselves: files keep their owners, and we hold the
        # capabilities (inside the new namespaces only) until exec.
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    if mounts:
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE, "making mounts private")
        mounter = _Mounter(opts.scratch)
        # A new root comes first: pivot_root detaches the old one, and nothing mounted from
        # it (or opened in it) can be used afterwards.
        targets = [t for _s, t, _ro in opts.binds] + ([opts.cwd] if opts.cwd else [])
        if any(_missing_under_root(t) for t in targets):
            mounter.shadow_root(opts.scratch)
        # Every source is opened before any bind: a later one (a private /tmp) may hide it.
        binds = [(_path_of(s), t, ro) for s, t, ro in opts.binds]
        etc_files = ((opts.hosts, "/etc/hosts"), (opts.resolv, "/etc/resolv.conf"))
        files = [(_path_of(f), etc) for f, etc in etc_files if f]
        # Parents before children, as a container runtime mounts them.
        for source, target, read_only in sorted(binds, key=lambda b: _depth(b[1])):
            mounter.bind(source, target, read_only)
        for file, etc in files:
            if not os.path.isfile(file):
                raise _SetupError(f"{file}: not a file")
            _mount(file, etc, None, _MS_BIND, f"bind-mounting {etc}")
        if opts.cwd:
            mounter.mount_point(opts.cwd, True)
    if opts.hostname:
        name = opts.hostname.encode()
        _check(_libc.sethostname(name, ctypes.c_size_t(len(name))), "setting hostname")
    if opts.cwd:
        os.chdir(opts.cwd)


def _missing_under_root(target: str) -> bool:
    """Whether ``target`` is missing and ``/`` is its nearest existing ancestor."""
    path = os.path.realpath(target)
    if os.path.exists(path):
        return False
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path == "/"


def _depth(path: str) -> int:
    return len([p for p in os.path.normpath(path).split("/") if p])


def _exec(argv: list[str]) -> None:
    for sig in _RESET_BEFORE_EXEC:
        signal.signal(sig, signal.SIG_DFL)
    # Dispositions first: a signal that waited, blocked, for the program now acts as on it.
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(f"podexec: {argv[0]}: {e.strerror}\n")
        sys.stderr.flush()
        os._exit(EXIT_NOT_FOUND if isinstance(e, FileNotFoundError) else EXIT_SETUP_FAILED)


_FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)


def _init(argv: list[str]) -> int:
    """PID 1 of a pod: run the program as PID 2, forward signals to it, reap every orphan,
    and exit with the program's status (128 + N for a death by signal N).

    The signals stay blocked (the supervisor forked us so) and are taken with
    ``sigtimedwait``: a Python handler could run too late, when we already sleep in ``wait``.
    """
    taken = {*_FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, taken)
    pid = os.fork()
    if pid == 0:
        try:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            _exec(argv)
        finally:
            os._exit(EXIT_SETUP_FAILED)
    while True:
        status = _reap(pid)
        if status is not None:
            break
        info = signal.sigtimedwait(taken, 1.0)  # the timeout only guards against surprises
        if info is not None and info.si_signo != signal.SIGCHLD:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, info.si_signo)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _reap(program: int) -> int | None:
    """Reap every child that ended (orphans included); the program's wait status, if it ended."""
    found = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            # Nobody left: the program was reaped (found) or cannot be waited for.
            return found if found is not None else EXIT_SETUP_FAILED << 8
        if pid == 0:
            return found
        if pid == program:
            found = status


def _kill_group(signum: int = 0, frame: object = None) -> None:
    os.kill(0, signal.SIGKILL)


def _supervise(argv: list[str], opts: _Options) -> int:
    signal.signal(PARENT_DEATH_SIGNAL, _kill_group)
    _check(_libc.prctl(_PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0), "prctl")
    if opts.parent is not None and os.getppid() != opts.parent:
        _kill_group()  # the parent died before the death signal was armed
    for sig in _IGNORED_BY_SUPERVISOR:
        signal.signal(sig, signal.SIG_IGN)
    me = os.getpid()
    # The child is born with the forwarded signals blocked, so none is lost before it is
    # ready for them (the init takes them blocked; anything else unblocks them at exec).
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    pid = os.fork()
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    if pid == 0:
        try:
            signal.signal(PARENT_DEATH_SIGNAL, signal.SIG_DFL)
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() not in (me, 0):  # 0: we are PID 1 and the parent is outside
                os._exit(EXIT_SETUP_FAILED)
            if opts.pid_ns:
                _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "mount /proc")
            if opts.init and os.getpid() == 1:
                os._exit(_init(argv))
            _exec(argv)
        except BaseException as e:
            sys.stderr.write(f"podexec: {e}\n")
            sys.stderr.flush()
        os._exit(EXIT_SETUP_FAILED)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        termsig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(termsig, signal.SIG_DFL)
        os.kill(me, termsig)
        return 128 + termsig
    return os.waitstatus_to_exitcode(status)


def main(args: Sequence[str]) -> int:
    try:
        opts, argv = _parse(args)
        if not argv:
            raise _SetupError("no program given after '--'")
        _setup(opts)
    except (_SetupError, OSError, ValueError) as e:
        sys.stderr.write(f"podexec: {e}\n")
        return EXIT_SETUP_FAILED
    if opts.supervise or opts.pid_ns:
        try:
            return _supervise(argv, opts)
        except _SetupError as e:
            sys.stderr.write(f"podexec: {e}\n")
            return EXIT_SETUP_FAILED
    _exec(argv)
    return EXIT_SETUP_FAILED  # not reached: _exec replaces the process or exits


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
