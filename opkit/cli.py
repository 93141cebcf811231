"""The command-line flags every opkit operator shares, and a Manager built from them.

The flags and defaults are the kubebuilder ones operators are expected to have::

    --kubeconfig PATH              (else $KUBECONFIG, ~/.kube/config, or in-cluster)
    --context NAME
    --namespace NS | --all-namespaces   (default: $WATCH_NAMESPACE, else all namespaces)
    --leader-elect
    --leader-election-id ID        (default: <operator name>.opkit.dev)
    --leader-election-namespace NS (default: the pod's namespace)
    --metrics-bind-address ADDR    (default :8080; "0" disables)
    --health-probe-bind-address ADDR (default :8081; "0" disables)
    --log-format json|console      (default console on a terminal, else json)
    --log-level debug|info|warning|error

Bad values are rejected by argparse: a one-line message and exit status 2.

A typical ``__main__``::

    parser = argparse.ArgumentParser(prog="my-operator")
    cli.add_common_flags(parser)
    options = cli.options_from_args(parser.parse_args())
    manager = cli.build_manager(options, "my-operator")
    ...add controllers...
    sys.exit(manager.run())
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal, cast

from opkit import log as _log
from opkit._validation import dns1123_label_errors, dns1123_subdomain_errors
from opkit.client import Client
from opkit.manager import Manager, parse_bind_address

__all__ = [
    "Options",
    "add_common_flags",
    "build_client",
    "build_manager",
    "configure_logging",
    "options_from_args",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
WATCH_NAMESPACE_ENV = "WATCH_NAMESPACE"


@dataclass(frozen=True)
class Options:
    """The parsed common flags."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    """The one namespace to watch; None = all namespaces."""
    leader_elect: bool = False
    leader_election_id: str | None = None
    leader_election_namespace: str | None = None
    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"


def _namespace(value: str) -> str:
    if dns1123_label_errors(value):
        raise argparse.ArgumentTypeError(
            f"invalid namespace {value!r}: must be a DNS label (lowercase letters, digits, '-')"
        )
    return value


def _lease_name(value: str) -> str:
    if dns1123_subdomain_errors(value):
        raise argparse.ArgumentTypeError(
            f"invalid leader election id {value!r}: must be a DNS subdomain name"
        )
    return value


def _bind_address(value: str) -> str:
    try:
        parse_bind_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _default_log_format() -> str:
    isatty = getattr(sys.stderr, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Add the shared operator flags to ``parser``."""
    conn = parser.add_argument_group("cluster connection")
    conn.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster config)",
    )
    conn.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    scope = conn.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        type=_namespace,
        metavar="NS",
        help=f"watch only this namespace (default: ${WATCH_NAMESPACE_ENV}, else all namespaces)",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace",
    )
    le = parser.add_argument_group("leader election")
    le.add_argument(
        "--leader-elect",
        action="store_true",
        help="run for leadership on a Lease; only the leader reconciles",
    )
    le.add_argument(
        "--leader-election-id",
        type=_lease_name,
        metavar="ID",
        help="name of the Lease (default: <operator>.opkit.dev)",
    )
    le.add_argument(
        "--leader-election-namespace",
        type=_namespace,
        metavar="NS",
        help="namespace of the Lease (default: the pod's namespace)",
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--metrics-bind-address",
        type=_bind_address,
        default=":8080",
        metavar="ADDR",
        help='address of /metrics, HOST:PORT or :PORT; "0" disables (default: %(default)s)',
    )
    serving.add_argument(
        "--health-probe-bind-address",
        type=_bind_address,
        default=":8081",
        metavar="ADDR",
        help='address of /healthz and /readyz; "0" disables (default: %(default)s)',
    )
    logging_ = parser.add_argument_group("logging")
    logging_.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=None,
        help="log line format (default: console on a terminal, else json)",
    )
    logging_.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="minimum level logged (default: %(default)s)",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    """The :class:`Options` of parsed arguments (from a parser with :func:`add_common_flags`)."""
    namespace: str | None = args.namespace
    if namespace is None and not args.all_namespaces:
        namespace = os.environ.get(WATCH_NAMESPACE_ENV) or None
    log_format = args.log_format or _default_log_format()
    return Options(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=namespace,
        leader_elect=bool(args.leader_elect),
        leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        log_format=cast(Literal["json", "console"], log_format),
        log_level=args.log_level,
    )


def configure_logging(options: Options) -> None:
    """Configure structlog (and stdlib logging) from the log flags."""
    _log.configure(options.log_format, options.log_level)


def build_client(options: Options) -> Client:
    """A client from ``--kubeconfig``/``--context``, else the environment (in-cluster or the
    default kubeconfig)."""
    if options.kubeconfig or options.context:
        return Client.from_kubeconfig(options.kubeconfig, context=options.context)
    return Client.auto()


def build_manager(
    options: Options,
    name: str,
    *,
    client: Client | None = None,
    setup_logging: bool = True,
    **manager_kwargs: Any,
) -> Manager:
    """A :class:`Manager` configured from ``options`` for the operator called ``name``.

    ``manager_kwargs`` pass through (``graceful_shutdown_timeout``, ``sync_period``, ...).
    """
    if setup_logging:
        configure_logging(options)
    own_client = client is None
    if client is None:
        client = build_client(options)
    try:
        return Manager(
            client,
            namespace=options.namespace,
            leader_election=options.leader_elect,
            leader_election_id=options.leader_election_id or f"{name}.opkit.dev",
            leader_election_namespace=options.leader_election_namespace,
            metrics_bind_address=options.metrics_bind_address,
            health_probe_bind_address=options.health_probe_bind_address,
            **manager_kwargs,
        )
    except BaseException:
        if own_client:
            client.close()
        raise
