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
