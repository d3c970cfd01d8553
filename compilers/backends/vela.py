"""Arm Ethos-U backend: runs ``ethos-u-vela`` on the int8 build for the accelerator the device reports.

Records Vela's own SRAM/flash/cycle estimates, the ops left on the CPU and a latency estimate from the cycle
count at Vela's NPU clock (the planner rescales it when the device's clock is known).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compilers.artifact import Artifact
from compilers.backends.tflite import failed
from compilers.base import CompileError, ModelSource, finish_artifact
from compilers.registry import register

if TYPE_CHECKING:
    from compilers.target import Target

NPU_OP = "ethos-u"
_OPS_RE = re.compile(r"^(CPU|NPU) operators = (\d+)", re.MULTILINE)


def run_vela(tflite: bytes, accelerator: str, timeout_s: float = 300.0) -> tuple[bytes, dict[str, Any]]:
    """Compile with the ``vela`` CLI (a subprocess: Vela keeps global state); returns (tflite, summary)."""
    with tempfile.TemporaryDirectory(prefix="vela-") as tmp:
        src = Path(tmp) / "model.tflite"
        src.write_bytes(tflite)
        out_dir = Path(tmp) / "out"
        cmd = [
            sys.executable, "-c", "import sys; from ethosu.vela.vela import main; sys.exit(main())",
            "--accelerator-config", accelerator, "--output-dir", str(out_dir), str(src),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise CompileError(f"vela failed ({accelerator}): {' | '.join(tail)}")
        compiled = out_dir / "model_vela.tflite"
        summaries = list(out_dir.glob("model_summary_*.csv"))
        if not compiled.exists() or not summaries:
            raise CompileError("vela produced no output")
        with summaries[0].open(newline="") as fh:
            row = next(csv.DictReader(fh))
        counts = {kind: int(n) for kind, n in _OPS_RE.findall(proc.stdout)}
        summary = {
            "accelerator": accelerator,
            "system_config": row["system_config"],
            "core_clock_hz": float(row["core_clock"]),
            "cycles": int(float(row["cycles_total"])),
            "sram_bytes": round(float(row["sram_memory_used"]) * 1024),
            "flash_bytes": round(
                (float(row["off_chip_flash_memory_used"]) + float(row["on_chip_flash_memory_used"])) * 1024
            ),
            "inference_time_s": float(row["inference_time"]),
            "macs": int(float(row["nn_macs"])),
            "npu_op_count": counts.get("NPU", 0),
            "cpu_op_count": counts.get("CPU", 0),
        }
        return compiled.read_bytes(), summary


@register
class VelaCompiler:
    name = "vela"
    version = f"1+vela{pkg_version('ethos-u-vela')}"
    order = 20

    def applies(self, source: ModelSource, target: Target) -> bool:
        return target.accelerator != "none"

    def target_key(self, target: Target) -> str:
        return target.accelerator

    def compile(self, source: ModelSource, target: Target, prior: Sequence[Artifact]) -> list[Artifact]:
        base = next((a for a in prior if a.variant == "int8" and "error" not in a.notes), None)
        if base is None:
            return [failed("int8-vela", self.name, "no int8 build to give Vela")]
        t0 = time.perf_counter()
        try:
            data, summary = run_vela(base.data, target.accelerator)
            cpu_ops = [op for op in _ops(data) if op != NPU_OP]
            notes = {
                "vela": summary,
                "cpu_ops": cpu_ops,
                "accuracy_source": "int8 build (NPU not simulated; Vela keeps int8 semantics)",
                "compile_s": round(time.perf_counter() - t0, 3),
            }
            latency = summary["cycles"] / (summary["core_clock_hz"] / 1e6)
            return [
                finish_artifact(
                    "int8-vela", self.name, data, accuracy=base.accuracy, latency_us=latency, notes=notes, expect="int8"
                )
            ]
        except (CompileError, ValueError, subprocess.TimeoutExpired) as exc:
            return [failed("int8-vela", self.name, str(exc))]


def _ops(data: bytes) -> list[str]:
    from compilers.tflite_info import inspect_tflite

    return inspect_tflite(data).ops
