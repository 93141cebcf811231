"""Tests for opkit.cli: the shared operator flags and build_manager."""

from __future__ import annotations

import argparse
import io

import pytest

from opkit.cli import Options, add_common_flags, build_manager, options_from_args


def parse(*argv: str) -> Options:
    parser = argparse.ArgumentParser(prog="op")
    add_common_flags(parser)
    return options_from_args(parser.parse_args(list(argv)))


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    [message] = [line for line in err.splitlines() if line.startswith("op: error:")]
    return message


@pytest.fixture(autouse=True)
def no_watch_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCH_NAMESPACE", raising=False)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert parse() == Options(
        kubeconfig=None,
        context=None,
        namespace=None,
        leader_elect=False,
        leader_election_id=None,
        leader_election_namespace=None,
        metrics_bind_address=":8080",
        health_probe_bind_address=":8081",
        log_format="json",
        log_level="info",
    )


def test_console_logs_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert parse().log_format == "console"
    assert parse("--log-format", "json").log_format == "json"


def test_all_flags() -> None:
    opts = parse(
        "--kubeconfig=/tmp/kc",
        "--context=dev",
        "-n",
        "team-a",
        "--leader-elect",
        "--leader-election-id=my-op.example.com",
        "--leader-election-namespace=ops",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=127.0.0.1:9440",
        "--log-format=console",
        "--log-level=DEBUG",
    )
    assert opts == Options(
        kubeconfig="/tmp/kc",
        context="dev",
        namespace="team-a",
        leader_elect=True,
        leader_election_id="my-op.example.com",
        leader_election_namespace="ops",
        metrics_bind_address="0",
        health_probe_bind_address="127.0.0.1:9440",
        log_format="console",
        log_level="debug",
    )


def test_watch_namespace_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCH_NAMESPACE", "from-env")
    assert parse().namespace == "from-env"
    assert parse("--all-namespaces").namespace is None
    assert parse("--namespace", "flag").namespace == "flag"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--namespace", "a", "--all-namespaces"), "not allowed with argument"),
        (("--namespace", "Bad_NS"), "invalid namespace 'Bad_NS'"),
        (("--leader-election-id", "UPPER"), "invalid leader election id"),
        (("--metrics-bind-address", "8080"), "must look like HOST:PORT"),
        (("--health-probe-bind-address", ":http"), "is not a number"),
        (("--log-format", "xml"), "invalid choice: 'xml'"),
        (("--log-level", "loud"), "invalid choice: 'loud'"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    assert fragment in parse_error(capsys, *argv)


def test_build_manager(kubeconfig: str) -> None:
    opts = parse(
        "--kubeconfig",
        kubeconfig,
        "--namespace",
        "team-a",
        "--leader-elect",
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--health-probe-bind-address",
        "0",
    )
    mgr = build_manager(opts, "demo-operator", setup_logging=False, graceful_shutdown_timeout=5)
    try:
        assert mgr.namespace == "team-a"
        assert mgr.leader_election
        assert mgr.graceful_shutdown_timeout == 5
        elector = mgr._elector
        assert elector is not None
        assert elector.lock.describe() == "team-a/demo-operator.opkit.dev"
        assert mgr.client.resource("v1", "ConfigMap").list("default")["items"] == []
    finally:
        mgr.client.close()


def test_build_manager_needs_a_lease_namespace_out_of_cluster(kubeconfig: str) -> None:
    opts = parse("--kubeconfig", kubeconfig, "--leader-elect")
    with pytest.raises(ValueError, match="leader_election_namespace"):
        build_manager(opts, "demo", setup_logging=False)
