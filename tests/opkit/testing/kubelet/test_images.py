"""The image table: normalisation, built-in rules, user rules, config files, commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from opkit.testing.kubelet._images import (
    CONFIG_ENV,
    ImageNotFound,
    ImageSpec,
    ImageTable,
    container_argv,
    parse_image,
    resolve_command,
)
from opkit.testing.kubelet._tools import ProgramNotFound, find_program


def _have(name: str, version: str | None = None) -> bool:
    try:
        find_program(name, version)
    except ProgramNotFound:
        return False
    return True


@pytest.mark.parametrize(
    ("image", "repository", "tag"),
    [
        ("busybox", "docker.io/library/busybox", "latest"),
        ("prom/prometheus:v2.42.0", "docker.io/prom/prometheus", "v2.42.0"),
        ("quay.io/coreos/etcd:v3.5.17", "quay.io/coreos/etcd", "v3.5.17"),
        ("localhost:5000/team/app:1", "localhost:5000/team/app", "1"),
        ("registry.k8s.io/etcd:3.5.12-0", "registry.k8s.io/etcd", "3.5.12-0"),
        ("index.docker.io/library/python:3.11", "docker.io/library/python", "3.11"),
    ],
)
def test_image_references_are_normalised_like_docker(image: str, repository: str, tag: str) -> None:
    ref = parse_image(image)
    assert (ref.repository, ref.tag) == (repository, tag)


def test_a_digest_is_kept_and_implies_no_tag() -> None:
    ref = parse_image("quay.io/coreos/etcd@sha256:abc")
    assert (ref.repository, ref.tag, ref.digest) == ("quay.io/coreos/etcd", "", "sha256:abc")


@pytest.mark.skipif(not _have("etcd", "3.5"), reason="etcd 3.5 not installed (make tools)")
@pytest.mark.parametrize(
    "image",
    [
        "quay.io/coreos/etcd:v3.5.17",
        "gcr.io/etcd-development/etcd:v3.5.9",
        "registry.k8s.io/etcd:3.5.12-0",
    ],
)
def test_etcd_images_map_to_the_etcd_of_their_tag(image: str) -> None:
    spec = ImageTable().resolve(image)
    assert spec.programs["etcd"] == (str(find_program("etcd", "3.5")),)
    assert "etcdctl" in spec.programs
    assert spec.cmd == ("/usr/local/bin/etcd",)
    assert "/var/lib/etcd" in spec.dirs  # the image's data directory, private per container


@pytest.mark.skipif(not _have("etcd", "3.4"), reason="etcd 3.4 not installed (make tools)")
def test_etcd_34_tags_get_etcd_34() -> None:
    spec = ImageTable().resolve("quay.io/coreos/etcd:v3.4.27")
    assert spec.programs["etcd"] == (str(find_program("etcd", "3.4")),)


def test_an_etcd_release_that_is_not_installed_is_an_image_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageNotFound, match=r"etcd 9\.9 not found"):
        ImageTable().resolve("quay.io/coreos/etcd:v9.9.0")
    with pytest.raises(ImageNotFound, match="cannot tell the etcd version"):
        ImageTable().resolve("quay.io/coreos/etcd:latest")


@pytest.mark.skipif(not _have("prometheus"), reason="prometheus not installed (make tools)")
def test_prometheus_image_brings_its_entrypoint_dirs_and_default_config() -> None:
    spec = ImageTable().resolve("prom/prometheus:v2.42.0")
    assert spec.entrypoint == ("/bin/prometheus",)
    assert "--storage.tsdb.path=/prometheus" in spec.cmd
    assert spec.dirs == ("/prometheus",)
    assert "scrape_configs" in spec.files["/etc/prometheus/prometheus.yml"]


def test_python_pseudo_image_runs_the_projects_interpreter() -> None:
    spec = ImageTable().resolve("python")
    assert spec.programs["python"] == (sys.executable,)
    argv = container_argv(spec, None, ["-m", "mymodule", "--flag"])
    assert resolve_command(spec, argv) == [sys.executable, "-m", "mymodule", "--flag"]


def test_config_reloader_images_run_the_builtin_reloader() -> None:
    spec = ImageTable().resolve("ghcr.io/jimmidyson/configmap-reload:v0.9.0")
    argv = resolve_command(spec, container_argv(spec, None, ["--volume-dir=/etc/cfg"]))
    assert argv == [
        sys.executable,
        "-m",
        "opkit.testing.kubelet._reloader",
        "--volume-dir=/etc/cfg",
    ]


def test_unknown_image_is_one_clear_line() -> None:
    with pytest.raises(ImageNotFound) as info:
        ImageTable().resolve("nginx:1.25")
    message = str(info.value)
    assert "\n" not in message
    assert "no local program stands in for image 'nginx:1.25'" in message
    assert "ImageTable.register()" in message


def test_registered_rules_win_over_builtins_and_can_be_removed() -> None:
    table = ImageTable()
    mine = ImageSpec({"python": ("/custom/python",)}, entrypoint=("python",))
    rule = table.register("python:3.*", mine)
    assert table.resolve("python:3.11").programs["python"] == ("/custom/python",)
    assert table.resolve("python:latest").programs["python"] == (sys.executable,)
    table.unregister(rule)
    assert table.resolve("python:3.11").programs["python"] == (sys.executable,)


def test_globs_match_whole_registries() -> None:
    table = ImageTable(builtins=False)
    table.register_python_module("ghcr.io/acme/*", "acme.operator", args=["--verbose"])
    spec = table.resolve("ghcr.io/acme/etcd-operator:v1.2.3")
    argv = resolve_command(spec, container_argv(spec, None, None))
    assert argv == [sys.executable, "-m", "acme.operator", "--verbose"]
    with pytest.raises(ImageNotFound):
        table.resolve("ghcr.io/other/thing")


def test_config_file_entries_come_after_api_rules_and_before_builtins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "images.yaml"
    config.write_text(
        "images:\n"
        "  - image: python\n"
        "    programs: {python: /from/config}\n"
        "    entrypoint: [python]\n"
        "  - image: example.com/tool\n"
        "    program: /bin/echo\n"
        "    args: [hello]\n"
        "    env: {GREETING: hi}\n"
        "    dirs: [/data]\n"
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    table = ImageTable.default()
    assert table.resolve("python").programs["python"] == ("/from/config",)
    tool = table.resolve("example.com/tool:1")
    assert resolve_command(tool, container_argv(tool, None, None)) == ["/bin/echo", "hello"]
    assert tool.env == {"GREETING": "hi"}
    assert tool.dirs == ("/data",)
    table.register("python", ImageSpec({"python": ("/from/api",)}))
    assert table.resolve("python").programs["python"] == ("/from/api",)
    assert [r.origin for r in table.rules][:3] == ["api", str(config), str(config)]


def test_config_file_errors_name_the_entry(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("images:\n  - programs: {a: /b}\n")
    with pytest.raises(ValueError, match=r"images\[0\]: each entry needs an 'image:' pattern"):
        ImageTable().load_config(config)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (None, None, ["/entry", "default"]),
        (None, ["a"], ["/entry", "a"]),
        (["cmd"], None, ["cmd"]),
        (["cmd"], ["a"], ["cmd", "a"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    command: list[str] | None, args: list[str] | None, expected: list[str]
) -> None:
    spec = ImageSpec({}, entrypoint=("/entry",), cmd=("default",))
    assert container_argv(spec, command, args) == expected


def test_commands_map_by_basename_then_host_paths() -> None:
    spec = ImageSpec({"etcd": ("/opt/etcd-3.5/etcd",)})
    assert resolve_command(spec, ["/usr/local/bin/etcd", "--name=a"]) == [
        "/opt/etcd-3.5/etcd",
        "--name=a",
    ]
    assert resolve_command(spec, ["/bin/sh", "-c", "true"])[0] == "/bin/sh"
    assert resolve_command(spec, ["sh", "-c", "true"])[0].endswith("/sh")
    with pytest.raises(FileNotFoundError, match=r'exec: "/no/such": stat /no/such'):
        resolve_command(spec, ["/no/such"])
    with pytest.raises(FileNotFoundError, match="executable file not found"):
        resolve_command(spec, ["grep", "x"])  # the etcd image has no host programs
