"""The pod wrapper's mounts, working directory, init and joining a running pod.

Everything happens in private mount namespaces: the tests check that the host's file system
never changes, even when a mount point has to be made where the host has nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opkit.testing.kubelet._podexec import podexec_argv

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces with binds need root")


def _run(argv: list[str], script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, "sh", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("vol", "cfg", "scratch", "home")}
    for d in out.values():
        d.mkdir()
    (out["cfg"] / "app.conf").write_text("setting=1\n")
    return out


@needs_root
def test_binds_reach_paths_the_host_does_not_have(dirs: dict[str, Path]) -> None:
    top = Path("/opkit-test-top-level")
    deep = Path("/etc/opkit-test-config")
    assert not top.exists() and not deep.exists()
    argv = podexec_argv(
        binds=[(str(dirs["vol"]), str(top), False), (str(dirs["cfg"]), str(deep), True)],
        scratch=dirs["scratch"],
        pid_ns=True,
        init=True,
    )
    res = _run(
        argv,
        f"cat {deep}/app.conf && echo data > {top}/f && "
        f"(touch {deep}/x 2>/dev/null && echo writable || echo read-only) && "
        "test -f /etc/hostname && ls /usr >/dev/null && echo host-files-visible",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["setting=1", "read-only", "host-files-visible"]
    assert (dirs["vol"] / "f").read_text() == "data\n"
    assert not top.exists() and not deep.exists()  # nothing was created on the host


@needs_root
def test_working_directory_is_made_in_the_private_view(dirs: dict[str, Path]) -> None:
    argv = podexec_argv(
        binds=[(str(dirs["vol"]), "/var/lib/opkit-test-data", False)],
        scratch=dirs["scratch"],
        cwd="/var/lib/opkit-test-data",
        pid_ns=True,
    )
    res = _run(argv, "pwd && echo relative > written")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "/var/lib/opkit-test-data"
    assert (dirs["vol"] / "written").read_text() == "relative\n"
    assert not Path("/var/lib/opkit-test-data").exists()


@needs_root
def test_a_later_bind_cannot_hide_an_earlier_source(dirs: dict[str, Path], tmp_path: Path) -> None:
    # The sources live under tmp_path; binding something over /tmp must not break them.
    hosts = tmp_path / "hosts"
    hosts.write_text("127.9.9.9 cluster-name\n")
    argv = podexec_argv(
        binds=[(str(dirs["home"]), "/tmp", False), (str(dirs["cfg"]), "/srv/opkit-cfg", True)],
        hosts_file=hosts,
        scratch=dirs["scratch"],
    )
    res = _run(argv, "cat /srv/opkit-cfg/app.conf && getent hosts cluster-name && ls -A /tmp")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["setting=1", "127.9.9.9", "cluster-name"]


@needs_root
def test_init_forwards_sigterm_to_a_program_without_a_handler(dirs: dict[str, Path]) -> None:
    # As PID 1 without a handler, `sleep` would ignore SIGTERM; behind the init it dies of it.
    proc = subprocess.Popen(
        [*podexec_argv(pid_ns=True, init=True), "sleep", "60"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        children: list[str] = []
        while not children and time.monotonic() < deadline:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            time.sleep(0.01)
        (init,) = children
        os.kill(int(init), signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@needs_root
def test_join_enters_a_running_pods_namespaces(dirs: dict[str, Path]) -> None:
    pod = subprocess.Popen(
        [
            *podexec_argv(
                binds=[(str(dirs["vol"]), "/opkit-test-joined", False)],
                scratch=dirs["scratch"],
                hostname="joined-pod",
                pid_ns=True,
                init=True,
            ),
            "sleep",
            "60",
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        res = None
        while time.monotonic() < deadline:
            res = _run(podexec_argv(join=pod.pid), "hostname; ls /opkit-test-joined; echo $$")
            if res.returncode == 0 and "joined-pod" in res.stdout:
                break
            time.sleep(0.05)
        assert res is not None and res.returncode == 0, res and res.stderr
        (dirs["vol"] / "marker").touch()
        res = _run(podexec_argv(join=pod.pid), "hostname; ls /opkit-test-joined; ps -o pid= -p 1")
        lines = res.stdout.split()
        assert lines[:2] == ["joined-pod", "marker"]
        assert lines[2] == "1"  # the pod's PID namespace, where its init is PID 1
    finally:
        os.killpg(pod.pid, signal.SIGKILL)
        pod.wait()


@needs_root
def test_join_right_after_the_start_waits_until_the_pod_is_set_up(
    dirs: dict[str, Path],
) -> None:
    (dirs["vol"] / "marker").touch()
    for _ in range(5):  # the race is with the pod's own set-up: try it a few times
        pod = subprocess.Popen(
            [
                *podexec_argv(
                    binds=[(str(dirs["vol"]), "/opkit-test-joined", False)],
                    scratch=dirs["scratch"],
                    hostname="joined-pod",
                    pid_ns=True,
                    init=True,
                ),
                "sleep",
                "60",
            ],
            start_new_session=True,
        )
        try:
            # No retries: an exec probe runs as soon as the container was spawned.
            res = _run(podexec_argv(join=pod.pid), "hostname; ls /opkit-test-joined")
            assert (res.returncode, res.stdout.split()) == (0, ["joined-pod", "marker"]), res
        finally:
            os.killpg(pod.pid, signal.SIGKILL)
            pod.wait()
    never = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    gone = _run(podexec_argv(join=never), "true")  # no waiting for what does not exist
    assert gone.returncode == 126 and f"process {never}: No such process" in gone.stderr


def test_options_are_validated() -> None:
    res = subprocess.run(
        [*podexec_argv()[:-1], "--bind", "only-one", "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 126
    assert "needs a source and a target" in res.stderr
    assert sys.executable in podexec_argv()[0]
