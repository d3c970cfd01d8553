"""The compile worker's stderr filter: TF/absl chatter dropped, real warnings and errors kept with their level."""

from __future__ import annotations

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
