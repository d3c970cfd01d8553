import io
import json

import structlog

from lwm2m_server.logging import configure_logging


def test_json_lines_when_not_a_tty() -> None:
    buf = io.StringIO()
    configure_logging("info", "auto", stream=buf)
    structlog.get_logger("t").info("registered", endpoint="dev-1")
    structlog.get_logger("t").debug("hidden")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "registered" and lines[0]["endpoint"] == "dev-1"
    assert lines[0]["level"] == "info"


def test_console_format_is_not_json() -> None:
    buf = io.StringIO()
    configure_logging("debug", "console", stream=buf)
    structlog.get_logger("t").debug("hello", n=1)
    out = buf.getvalue()
    assert "hello" in out and "n=1" in out
    assert not out.lstrip().startswith("{")


def test_a_module_logger_follows_every_later_configuration() -> None:
    from lwm2m_server import logging as lw

    log = lw.get_logger("tests.module_level")  # as a module does at import time
    first = io.StringIO()
    configure_logging("info", "json", stream=first)
    log.info("one", n=1)
    assert log._logger() is log._logger()  # type: ignore[attr-defined]  # assembled once, then cached
    cached = log._logger()  # type: ignore[attr-defined]
    second = io.StringIO()
    configure_logging("warning", "json", stream=second)  # stream, level and format all change
    log.info("two")
    log.warning("three", n=3)
    assert log._logger() is not cached  # type: ignore[attr-defined]
    assert [json.loads(line)["event"] for line in first.getvalue().splitlines()] == ["one"]
    assert [json.loads(line)["event"] for line in second.getvalue().splitlines()] == ["three"]
    console = io.StringIO()
    configure_logging("debug", "console", stream=console)
    log.debug("four", n=4)
    assert "four" in console.getvalue() and not console.getvalue().lstrip().startswith("{")


def test_capture_logs_sees_a_logger_cached_before_a_reconfiguration() -> None:
    from lwm2m_server import logging as lw

    log = lw.get_logger("tests.captured")
    configure_logging("info", "json", stream=io.StringIO())
    log.info("before")
    configure_logging("info", "json", stream=io.StringIO())
    with structlog.testing.capture_logs() as logs:
        log.info("captured", x=1)
        log.bind(job=7).warning("bound")
    assert [(e["event"], e.get("x"), e.get("job")) for e in logs] == [("captured", 1, None), ("bound", None, 7)]
