"""Program search order, version matching, and the programs `make tools` fetched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from opkit.testing.kubelet import _tools
from opkit.testing.kubelet._tools import (
    TOOLS_DIR_ENV,
    ProgramNotFound,
    etcd_version_for_image_tag,
    find_program,
    program_version,
)

REPO = Path(__file__).resolve().parents[4]


def _fake(path: Path, version: str, *, subcommand: bool = False) -> Path:
    """An executable that reports ``version`` like the real program would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if subcommand:
        body = f'[ "$1" = version ] && echo "etcdctl version: {version}" || exit 2\n'
    else:
        body = f'echo "{path.name} Version: {version}"\n'
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No repo .tools, no $OPKIT_TOOLS_DIR, an empty PATH: each test adds what it needs."""
    monkeypatch.setattr(_tools, "repo_tools_dir", lambda: tmp_path / "repo" / ".tools")
    monkeypatch.delenv(TOOLS_DIR_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return tmp_path


def test_search_order_explicit_then_env_then_repo_then_path(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, env_dir, repo = isolated / "explicit", isolated / "env", isolated / "repo" / ".tools"
    path_dir = isolated / "pathdir"
    monkeypatch.setenv("PATH", str(path_dir))
    monkeypatch.setenv(TOOLS_DIR_ENV, f"{isolated / 'missing'}{os.pathsep}{env_dir}")
    for d in (explicit, env_dir, repo):
        _fake(d / "etcd-3.5" / "etcd", "3.5.1")
    _fake(path_dir / "etcd", "3.5.9")

    assert find_program("etcd", "3.5", tools_dir=explicit) == explicit / "etcd-3.5" / "etcd"
    assert find_program("etcd", "3.5") == env_dir / "etcd-3.5" / "etcd"
    monkeypatch.delenv(TOOLS_DIR_ENV)
    assert find_program("etcd", "3.5") == repo / "etcd-3.5" / "etcd"
    (repo / "etcd-3.5" / "etcd").unlink()
    assert find_program("etcd", "3.5") == path_dir / "etcd"


def test_versioned_layouts_in_a_tools_dir(isolated: Path) -> None:
    d = isolated / "tools"
    _fake(d / "bin" / "etcd-3.4", "3.4.23")
    _fake(d / "etcd-3.5" / "bin" / "etcdctl", "3.5.1", subcommand=True)
    _fake(d / "etcd-3.6" / "etcd", "3.6.0")
    _fake(d / "bin" / "prometheus", "2.42.0")
    assert find_program("etcd", "3.4", tools_dir=d) == d / "bin" / "etcd-3.4"
    assert find_program("etcdctl", "3.5", tools_dir=d) == d / "etcd-3.5" / "bin" / "etcdctl"
    assert find_program("prometheus", tools_dir=d) == d / "bin" / "prometheus"
    # Unversioned: bin/ first, else the newest release directory.
    assert find_program("etcd", tools_dir=d) == d / "etcd-3.6" / "etcd"


def test_path_candidates_must_report_the_wanted_version(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = isolated / "a", isolated / "b"
    monkeypatch.setenv("PATH", f"{a}{os.pathsep}{b}")
    _fake(a / "etcd", "3.4.23")
    _fake(b / "etcd", "3.5.17")
    _fake(b / "etcdctl-3.4", "3.4.23", subcommand=True)
    assert find_program("etcd", "3.4") == a / "etcd"
    assert find_program("etcd", "3.5") == b / "etcd"
    assert find_program("etcd") == a / "etcd"
    assert find_program("etcdctl", "3.4") == b / "etcdctl-3.4"
    with pytest.raises(ProgramNotFound):
        find_program("etcd", "3.6")


def test_alertmanager_is_found_under_its_debian_name(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(isolated / "usr-bin"))
    _fake(isolated / "usr-bin" / "prometheus-alertmanager", "0.25.0")
    assert find_program("alertmanager") == isolated / "usr-bin" / "prometheus-alertmanager"


def test_not_found_is_one_clear_line(isolated: Path) -> None:
    with pytest.raises(ProgramNotFound) as err:
        find_program("etcd", "3.5", search_path=str(isolated / "nothing"))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("etcd 3.5 not found")
    assert "make tools" in msg
    assert TOOLS_DIR_ENV in msg


def test_version_argument_is_validated() -> None:
    with pytest.raises(ValueError, match=r"major\.minor"):
        find_program("etcd", "3.5.1")


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v3.5.17", "3.5"), ("3.4.23", "3.4"), ("v3.5", "3.5"), ("v3.5.0-rc.1", "3.5")],
)
def test_etcd_version_for_image_tag(tag: str, version: str) -> None:
    assert etcd_version_for_image_tag(tag) == version


@pytest.mark.parametrize("tag", ["latest", "", "v3"])
def test_etcd_version_for_image_tag_rejects_unversioned_tags(tag: str) -> None:
    with pytest.raises(ValueError, match="image tag"):
        etcd_version_for_image_tag(tag)


def test_program_version_probes_and_caches(tmp_path: Path) -> None:
    prog = _fake(tmp_path / "etcdctl", "3.5.1", subcommand=True)
    assert program_version(prog) == "3.5.1"
    assert program_version(tmp_path / "missing") is None


# --- the real programs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fetched() -> Path:
    """The repo's .tools, running scripts/tools.sh if it is not complete yet."""
    tools = _tools.repo_tools_dir()
    if not (tools / "etcd-3.5" / "etcd").exists() or not (tools / "bin" / "prometheus").exists():
        res = subprocess.run(
            ["bash", str(REPO / "scripts" / "tools.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if res.returncode != 0:
            pytest.skip(f".tools missing and scripts/tools.sh failed: {res.stderr.strip()}")
    return tools


@pytest.mark.parametrize(
    ("name", "version", "expect"),
    [
        ("etcd", "3.5", "3.5."),
        ("etcdctl", "3.5", "3.5."),
        ("etcd", "3.4", "3.4."),
        ("etcdctl", "3.4", "3.4."),
        ("prometheus", None, "2."),
        ("promtool", None, "2."),
        ("alertmanager", None, "0."),
    ],
)
def test_fetched_programs_run(fetched: Path, name: str, version: str | None, expect: str) -> None:
    path = find_program(name, version)
    args = ["version"] if name == "etcdctl" else ["--version"]
    res = subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert res.returncode == 0, res.stderr
    found = program_version(path, name)
    assert found is not None
    assert found.startswith(expect)


def test_tools_script_is_idempotent_and_prints_one_line(fetched: Path) -> None:
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "tools.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tools: ready")
    assert "etcd 3.5." in lines[0]
