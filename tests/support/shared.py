"""Where ``../shared/models`` is: beside the repository root (CI clones main with shared/ beside it)."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [
    Path(os.environ["TINYMLAAS_SHARED"]) if os.environ.get("TINYMLAAS_SHARED") else None,
    _ROOT.parent / "shared",
    Path("/work/shared"),
]
SHARED = next((p for p in _CANDIDATES if p is not None and (p / "models").is_dir()), _ROOT.parent / "shared")
MLPERF = SHARED / "models" / "mlperf-tiny"
KWS = MLPERF / "kws_ref_model.tflite"
