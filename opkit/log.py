"""structlog configuration: one JSON object per line in a cluster, readable text locally.

:func:`configure` sets up structlog and (by default) routes the standard ``logging`` module
through the same renderer, so records of the kubernetes client or urllib3 do not break the
one-JSON-object-per-line stream a log pipeline expects. It can be called any number of times;
each call replaces the previous configuration. Until structlog is configured (by it or by the
application), :func:`get_logger` loggers stay quiet: INFO and above to standard error, or
through the standard ``logging`` module when the application set that up.

Per-reconcile context (``controller``, ``object``, ``reconcile_id``) is kept in context
variables, which are per thread, so every line a worker logs while reconciling carries them
without passing a logger around.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor

__all__ = [
    "LogFormat",
    "bind_context",
    "clear_context",
    "configure",
    "get_logger",
    "log_context",
    "new_reconcile_id",
    "reconcile_context",
    "reset",
    "unbind_context",
]

LogFormat = Literal["json", "console", "auto"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_handler: logging.Handler | None = None
_saved_root_level: int | None = None


def _parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}"
        ) from None


def _resolve_format(fmt: str, stream: TextIO) -> Literal["json", "console"]:
    if fmt == "auto":
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        isatty = getattr(stream, "isatty", None)
        return "console" if not in_cluster and callable(isatty) and isatty() else "json"
    if fmt not in ("json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; expected json, console or auto")
    return cast(Literal["json", "console"], fmt)


class _LineLogger:
    """Writes each rendered entry with a single ``write`` call.

    structlog's PrintLogger writes the message and the newline separately, which lets a line
    from the stdlib handler land in between when both write to the same stream.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def msg(self, message: str) -> None:
        self._file.write(message + "\n")
        self._file.flush()

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg


_LEADING = ("timestamp", "level", "event")


def _leading_keys(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Put timestamp, level and event first so JSON lines read well in ``kubectl logs``."""
    ordered = {k: event_dict.pop(k) for k in _LEADING if k in event_dict}
    ordered.update(event_dict)
    return ordered


def configure(
    format: LogFormat = "auto",
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
    capture_stdlib: bool = True,
) -> None:
    """Configure structlog (and stdlib logging) for the whole process.

    ``format="json"`` writes one JSON object per line with ``timestamp`` (ISO 8601 UTC),
    ``level``, ``event`` and the bound key-values; ``"console"`` writes aligned, human-readable
    lines; ``"auto"`` picks console for a terminal outside a cluster, JSON otherwise.
    ``stream`` defaults to standard error (looked up when a logger is created).
    """
    global _handler, _saved_root_level
    min_level = _parse_level(level)
    fmt = _resolve_format(format, stream if stream is not None else sys.stderr)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    final: list[Processor]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        final = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _leading_keys,
            renderer,
        ]
    else:
        target = stream if stream is not None else sys.stderr
        isatty = getattr(target, "isatty", None)
        colors = bool(callable(isatty) and isatty() and not os.environ.get("NO_COLOR"))
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
        final = [structlog.processors.StackInfoRenderer(), renderer]

    def logger_factory(*_args: Any) -> _LineLogger:
        return _LineLogger(stream if stream is not None else sys.stderr)

    structlog.configure(
        processors=[*shared, *final],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=logger_factory,
        context_class=dict,
        cache_logger_on_first_use=False,
    )

    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    if capture_stdlib:
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *(final if fmt == "json" else [renderer]),
            ],
        )
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(formatter)
        handler.setLevel(min_level)
        root.addHandler(handler)
        _handler = handler
        if _saved_root_level is None:
            _saved_root_level = root.level
        root.setLevel(min_level)


def reset() -> None:
    """Undo :func:`configure`: structlog defaults, stdlib root handler and level restored."""
    global _handler, _saved_root_level
    structlog.reset_defaults()
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    if _saved_root_level is not None:
        root.setLevel(_saved_root_level)
        _saved_root_level = None
    structlog.contextvars.clear_contextvars()


class _StderrLogger(_LineLogger):
    """A :class:`_LineLogger` on whatever ``sys.stderr`` is at write time (test capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def msg(self, message: str) -> None:
        self._file = sys.stderr
        super().msg(message)

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg


def _fallback_logger(initial: dict[str, Any], via_stdlib: bool) -> Any:
    """What opkit logs through while nobody configured structlog.

    structlog's own default prints every level, debug included, to stdout: one line per
    reconcile in any program or test that never called :func:`configure`. Instead, when the
    application set up the standard ``logging`` module (root handlers exist, as under
    pytest), lines go through it, named after their component, so its levels and handlers
    apply; otherwise INFO and above go to standard error.
    """
    base: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.StackInfoRenderer(),
    ]
    if via_stdlib:
        name = str(initial.get("component") or "opkit")
        return structlog.wrap_logger(
            logging.getLogger(name),
            processors=[
                structlog.stdlib.filter_by_level,
                *base,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        ).bind(**initial)
    return structlog.wrap_logger(
        _StderrLogger(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *base,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        context_class=dict,
        cache_logger_on_first_use=False,
    ).bind(**initial)


class _Logger:
    """The logger :func:`get_logger` hands out: structlog's configuration once there is one
    (from :func:`configure` or the application), a quiet default until then."""

    __slots__ = ("_fallback", "_initial", "_proxy")

    def __init__(self, initial: dict[str, Any]) -> None:
        self._initial = initial
        self._proxy: Any = None
        self._fallback: dict[bool, Any] = {}

    def _target(self) -> Any:
        if structlog.is_configured():
            if self._proxy is None:
                self._proxy = structlog.get_logger(**self._initial)
            return self._proxy
        via_stdlib = bool(logging.getLogger().handlers)
        target = self._fallback.get(via_stdlib)
        if target is None:
            target = self._fallback[via_stdlib] = _fallback_logger(self._initial, via_stdlib)
        return target

    def bind(self, **kv: Any) -> _Logger:
        return _Logger({**self._initial, **kv})

    def new(self, **kv: Any) -> _Logger:
        return _Logger(dict(kv))

    def unbind(self, *keys: str) -> _Logger:
        for key in keys:
            if key not in self._initial:
                raise KeyError(key)
        return self.try_unbind(*keys)

    def try_unbind(self, *keys: str) -> _Logger:
        return _Logger({k: v for k, v in self._initial.items() if k not in keys})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


def get_logger(**initial: Any) -> FilteringBoundLogger:
    """A logger with ``initial`` key-values bound; follows later :func:`configure` calls.

    Until structlog is configured (by :func:`configure` or by the application itself), it
    logs INFO and above to standard error, or through the standard ``logging`` module when
    that has handlers; debug lines never land on stdout.
    """
    return cast(FilteringBoundLogger, _Logger(dict(initial)))


def bind_context(**kv: Any) -> None:
    """Bind key-values to every log line of the current thread/context."""
    structlog.contextvars.bind_contextvars(**kv)


def unbind_context(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def log_context(**kv: Any) -> Iterator[None]:
    """Bind key-values for the duration of a ``with`` block, restoring previous values."""
    with structlog.contextvars.bound_contextvars(**kv):
        yield


def new_reconcile_id() -> str:
    return str(uuid.uuid4())


@contextmanager
def reconcile_context(
    controller: str, object: str, reconcile_id: str | None = None
) -> Iterator[str]:
    """Bind ``controller``, ``object`` (``ns/name``) and a ``reconcile_id`` for one reconcile.

    Yields the reconcile id (a fresh UUID unless given), so it can be reported elsewhere.
    """
    rid = reconcile_id or new_reconcile_id()
    with structlog.contextvars.bound_contextvars(
        controller=controller, object=object, reconcile_id=rid
    ):
        yield rid
