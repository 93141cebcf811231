"""Tests for opkit.log: JSON/console output shape, levels, context and re-configuration."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from opkit import log


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    before = threading.active_count()
    yield
    log.reset()
    assert threading.active_count() == before


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_shape() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    log.get_logger(component="test").info("hello world", count=3, ok=True)
    [rec] = lines(out)
    assert list(rec)[:3] == ["timestamp", "level", "event"]
    assert rec["level"] == "info"
    assert rec["event"] == "hello world"
    assert rec["component"] == "test"
    assert rec["count"] == 3
    assert rec["ok"] is True
    assert rec["timestamp"].endswith("Z")
    assert datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).tzinfo is not None


def test_one_object_per_line_even_with_newlines_in_values() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    log.get_logger().warning("multi\nline", detail="a\nb")
    assert len(out.getvalue().splitlines()) == 1
    assert lines(out)[0]["detail"] == "a\nb"


def test_level_filtering() -> None:
    out = io.StringIO()
    log.configure("json", "warning", stream=out)
    logger = log.get_logger()
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    assert [r["level"] for r in lines(out)] == ["warning", "error"]


def test_debug_level_and_numeric_level() -> None:
    out = io.StringIO()
    log.configure("json", "DEBUG", stream=out)
    log.get_logger().debug("d")
    out2 = io.StringIO()
    log.configure("json", logging.ERROR, stream=out2)
    log.get_logger().warning("dropped")
    assert [r["event"] for r in lines(out)] == ["d"]
    assert out2.getvalue() == ""


def test_exception_is_rendered_into_the_json_line() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.get_logger().exception("reconcile failed")
    [rec] = lines(out)
    assert rec["level"] == "error"
    assert "RuntimeError: boom" in rec["exception"]


def test_reconcile_context_binds_and_restores() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    logger = log.get_logger()
    with log.reconcile_context("etcd", "default/cluster-a") as rid:
        logger.info("inside")
    logger.info("outside")
    inside, outside = lines(out)
    assert inside["controller"] == "etcd"
    assert inside["object"] == "default/cluster-a"
    assert inside["reconcile_id"] == rid
    assert len(rid) == 36
    for key in ("controller", "object", "reconcile_id"):
        assert key not in outside


def test_reconcile_context_with_explicit_id_and_nesting() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    with log.log_context(controller="outer"):
        with log.reconcile_context("inner", "x", reconcile_id="r-1"):
            log.get_logger().info("a")
        log.get_logger().info("b")
    a, b = lines(out)
    assert (a["controller"], a["reconcile_id"]) == ("inner", "r-1")
    assert b["controller"] == "outer"
    assert "reconcile_id" not in b


def test_bind_unbind_clear_context() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    log.bind_context(controller="c", extra=1)
    log.get_logger().info("one")
    log.unbind_context("extra")
    log.get_logger().info("two")
    log.clear_context()
    log.get_logger().info("three")
    one, two, three = lines(out)
    assert one["extra"] == 1
    assert two["controller"] == "c"
    assert "extra" not in two
    assert "controller" not in three


def test_context_is_per_thread() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    log.bind_context(controller="main-thread")

    def other() -> None:
        log.get_logger().info("from thread")

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    log.clear_context()
    [rec] = lines(out)
    assert "controller" not in rec


def test_stdlib_logging_is_rendered_as_json() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)
    with log.log_context(controller="c"):
        logging.getLogger("urllib3.connectionpool").warning("retrying %s", "GET /x")
    logging.getLogger("quiet").debug("below level")
    [rec] = lines(out)
    assert list(rec)[:3] == ["timestamp", "level", "event"]
    assert rec["event"] == "retrying GET /x"
    assert rec["level"] == "warning"
    assert rec["logger"] == "urllib3.connectionpool"
    assert rec["controller"] == "c"


def test_configure_repeatedly_replaces_previous_setup() -> None:
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    first = io.StringIO()
    second = io.StringIO()
    log.configure("json", "info", stream=first)
    log.configure("json", "info", stream=second)
    log.configure("json", "info", stream=second)
    assert len(root.handlers) == len(handlers_before) + 1
    log.get_logger().info("structured")
    logging.getLogger("lib").warning("stdlib")
    assert first.getvalue() == ""
    assert [r["event"] for r in lines(second)] == ["structured", "stdlib"]
    log.reset()
    assert root.handlers == handlers_before


def test_capture_stdlib_can_be_disabled() -> None:
    root = logging.getLogger()
    handlers_before = list(root.handlers)
    log.configure("json", "info", stream=io.StringIO(), capture_stdlib=False)
    assert root.handlers == handlers_before


def test_console_format_is_human_readable() -> None:
    out = io.StringIO()
    log.configure("console", "info", stream=out)
    log.get_logger().info("cluster ready", members=3)
    text = out.getvalue()
    assert "cluster ready" in text
    assert "members=3" in text
    assert "[info" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colours when the stream is not a terminal


def test_auto_format_picks_json_for_non_terminals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    out = io.StringIO()
    log.configure("auto", "info", stream=out)
    log.get_logger().info("x")
    assert lines(out)[0]["event"] == "x"


def test_auto_format_is_json_in_cluster_even_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    log.configure("auto", "info", stream=out)
    log.get_logger().info("x")
    assert lines(out)[0]["event"] == "x"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    monkeypatch.setenv("NO_COLOR", "1")
    out2 = Tty()
    log.configure("auto", "info", stream=out2)
    log.get_logger().info("y")
    assert not out2.getvalue().startswith("{")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="log level"):
        log.configure("json", "loud")
    with pytest.raises(ValueError, match="log format"):
        log.configure("xml", "info")  # type: ignore[arg-type]


def test_concurrent_structlog_and_stdlib_lines_never_interleave() -> None:
    out = io.StringIO()
    log.configure("json", "info", stream=out)

    def worker(n: int) -> None:
        for i in range(200):
            if i % 2:
                log.get_logger(worker=n).info("structlog", i=i)
            else:
                logging.getLogger(f"w{n}").warning("stdlib %d", i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    recs = lines(out)  # every line parses as one JSON object
    assert len(recs) == 800


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure("json", "info")
    log.get_logger().info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err.splitlines()[-1])["event"] == "to stderr"


# -- without configure(): quiet by default (BUGS.md C2) ------------------------------------------

_UNCONFIGURED = """
import sys
from opkit import log
logger = log.get_logger(component="opkit.controller").bind(controller="c")
logger.debug("reconcile done")
logger.info("controller started", workers=1)
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


def test_unconfigured_logging_writes_info_and_up_to_stderr_only() -> None:
    out = _run(_UNCONFIGURED)
    assert out.stdout == ""
    assert "reconcile done" not in out.stderr
    assert "controller started" in out.stderr and "controller=c" in out.stderr


def test_unconfigured_logging_follows_the_applications_stdlib_setup() -> None:
    debug = _run(
        "import logging, sys\nlogging.basicConfig(level=logging.DEBUG, stream=sys.stdout)\n"
        + _UNCONFIGURED
    )
    assert "DEBUG:opkit.controller:reconcile done" in debug.stdout
    quiet = _run("import logging\nlogging.basicConfig(level=logging.WARNING)\n" + _UNCONFIGURED)
    assert (quiet.stdout, quiet.stderr) == ("", "")


def test_a_structlog_configuration_of_the_application_wins() -> None:
    code = (
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.KeyValueRenderer()])\n"
        + _UNCONFIGURED
    )
    out = _run(code)
    assert "event='reconcile done'" in out.stdout  # structlog's own logger prints to stdout


def test_loggers_made_before_configure_follow_it() -> None:
    early = log.get_logger(component="early")
    out = io.StringIO()
    log.configure("json", "debug", stream=out)
    early.debug("now visible")
    assert [(r["event"], r["component"]) for r in lines(out)] == [("now visible", "early")]
