"""Shared compile fixtures: the zoo (tiny epochs) is trained and compiled once per session, for real.

Every backend runs in a real spawn-context worker; later tests re-check the resulting artifacts
against different targets (selection is pure and cheap).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compilers.artifact import Artifact
from compilers.base import ModelSource
from compilers.cache import CompileCache
from compilers.planner import CompileRunner
from compilers.target import Target
from compilers.worker import make_executor
from compilers.zoo import ZooModel, build_model
from tests.support.shared import MLPERF  # noqa: F401  (re-exported to the test modules)

TINY_EPOCHS = {"digits-cnn": 4, "vibration-anomaly": 8}
NPU = Target(ram_bytes=1 << 20, flash_bytes=4 << 20, fpu=True, accelerator="ethos-u55-128")


@pytest.fixture(scope="session")
def compile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compile")


@pytest.fixture(scope="session")
def runner(compile_root: Path) -> Iterator[CompileRunner]:
    run = CompileRunner(CompileCache(compile_root / "cache"), lambda: make_executor(1))
    yield run
    run.shutdown()


@pytest.fixture(scope="session")
def zoo(compile_root: Path, runner: CompileRunner) -> dict[str, ZooModel]:
    pool = runner.executor()  # one worker: TensorFlow is imported once for training and compiling
    return {name: build_model(name, compile_root / "zoo", epochs=e, executor=pool) for name, e in TINY_EPOCHS.items()}


def source_of(model: ZooModel) -> ModelSource:
    return model.source(fine_tune_epochs=1)


@pytest.fixture(scope="session")
def zoo_artifacts(zoo: dict[str, ZooModel], runner: CompileRunner) -> dict[str, list[Artifact]]:
    """Every variant (float32, int8, pruned50/80, vela u55-128) of both zoo models."""
    return {name: runner.artifacts(source_of(m), NPU) for name, m in zoo.items()}
