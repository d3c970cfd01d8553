"""Compile workers keep TensorFlow's native chatter off the terminal and out of the JSON log.

TensorFlow, absl and the TFLite converter write straight to file descriptor 2 from C++ (``cudart_stub``,
``absl::InitializeLog``, ``fully_quantize: …``), beyond the reach of Python logging and ``TF_CPP_MIN_LOG_LEVEL``.
:func:`capture_native_stderr` runs first in every worker, before TensorFlow loads: it points fd 2 at a pipe and a
thread reads it line by line. Known chatter is dropped; anything else (a real warning, an error, a traceback) is
re-emitted through structlog on the real stderr: JSON lines when stderr is not a terminal, as ``tinymlaas serve``
logs, so its log stays one JSON object per line.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, TextIO

import structlog

NOISE = re.compile(
    r"absl::InitializeLog|cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|cuInit|CUDA error"
    r"|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|rebuild TensorFlow with the appropriate compiler flags"
    r"|This TensorFlow binary is optimized|TF-TRT Warning|Unable to register cu(?:DNN|FFT|BLAS) factory"
    r"|computation placer already registered|fully_quantize: |Estimated count of arithmetic ops"
    r"|Saved artifact at|Ignored output_format|Ignored drop_control_dependency|Output_tensor:|Input_tensor:"
    r"|Captures:|tf_tfl_flatbuffer_helpers|flatbuffer_export|Sourcing ops from|MLIR V1 optimization pass"
    r"|disabling MLIR crash reproducer|^\s*$"
)
"""Lines of TensorFlow/absl/converter start-up and conversion chatter that carry nothing for an operator."""
_NATIVE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] (.*)$")
_LEVELS = {"I": "debug", "W": "warning", "E": "error", "F": "critical"}

_lock = threading.Lock()
_captured = False


def classify(line: str) -> tuple[str, str] | None:
    """``(level, message)`` for a stderr line worth keeping, None for chatter."""
    if NOISE.search(line):
        return None
    native = _NATIVE.match(line)
    if native:
        return _LEVELS[native.group(1)], native.group(2)
    return "warning", line


def _logger(out: TextIO) -> Any:
    pretty = out.isatty()
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if pretty else structlog.processors.JSONRenderer()
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    renderer],
        wrapper_class=structlog.make_filtering_bound_logger(20),  # info and up
    ).bind(logger="compile_worker", pid=os.getpid())


def _pump(read_fd: int, log: Any) -> None:
    """Drain the pipe for the life of the worker; a failure to log one line never stops the draining (a full pipe
    would block the worker on its next write to stderr)."""
    with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as pipe:
        for raw in pipe:
            kept = classify(raw.rstrip("\n"))
            if kept is None:
                continue
            level, message = kept
            try:
                getattr(log, level)("worker_stderr", line=message)
            except Exception:  # e.g. the real stderr is closed: keep draining
                continue


def capture_native_stderr() -> None:
    """Route this process's fd 2 through the filter (idempotent). Call before TensorFlow is imported."""
    global _captured
    with _lock:
        if _captured:
            return
        _captured = True
        real = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        threading.Thread(target=_pump, args=(read_fd, _logger(real)), name="worker-stderr", daemon=True).start()
