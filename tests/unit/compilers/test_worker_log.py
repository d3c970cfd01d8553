"""The compile worker's stderr filter: TF/absl chatter dropped, real warnings and errors kept with their level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compilers.worker_log import classify

CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796300210.704601   27220 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796300207.892938   26913 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    "I0000 00:00:1796300207.107304   26913 port.cc:153] oneDNN custom operations are on.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
    "",
]


@pytest.mark.parametrize("line", CHATTER)
def test_chatter_is_dropped(line: str) -> None:
    assert classify(line) is None


def test_what_is_worth_keeping_keeps_its_level() -> None:
    assert classify("W0000 00:00:1.5   1 convert.cc:99] op FOO is not supported by TFLM") == (
        "warning", "op FOO is not supported by TFLM")
    assert classify("E0000 00:00:1.5   1 flatbuffer.cc:12] tensor too large") == ("error", "tensor too large")
    assert classify("Traceback (most recent call last):") == ("warning", "Traceback (most recent call last):")


def test_a_worker_s_native_stderr_is_filtered_and_kept_lines_are_json(tmp_path: Path) -> None:
    """A real process: 2 MB of chatter written straight to fd 2 (as C++ does) never blocks it and never shows;
    the one real warning comes out as one JSON line."""
    script = (
        "import os, time\n"
        "from compilers.worker_log import capture_native_stderr\n"
        "capture_native_stderr()\n"
        "chatter = b'I0000 00:00:1.0   1 cudart_stub.cc:31] Could not find cuda drivers\\n'\n"
        "for _ in range(30000):\n"
        "    os.write(2, chatter)\n"
        "os.write(2, b'W0000 00:00:1.0   1 convert.cc:9] op FOO is not supported\\n')\n"
        "time.sleep(1.0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    record = json.loads(lines[0])
    assert record["level"] == "warning" and record["line"] == "op FOO is not supported"
    assert record["event"] == "worker_stderr" and record["logger"] == "compile_worker"
