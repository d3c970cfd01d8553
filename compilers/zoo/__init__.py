"""Model zoo: small models trained here with no downloads, cached on disk, reproducible from a seed.

``build_model(name, cache_dir)`` returns the cached model if its manifest matches (name, seed, epochs,
zoo version); otherwise it trains it in a spawned worker so TensorFlow never enters the caller's process.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compilers.base import ModelSource, Task

ZOO_VERSION = "1"
DEFAULT_SEED = 42
DEFAULT_EPOCHS = {"digits-cnn": 30, "vibration-anomaly": 60}
TASKS: dict[str, Task] = {"digits-cnn": "classification", "vibration-anomaly": "autoencoder"}
ZOO_NAMES = tuple(TASKS)


@dataclass
class ZooModel:
    name: str
    keras_path: Path
    task: Task
    representative: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    train_x: np.ndarray
    train_y: np.ndarray
    float_score: float  # Keras float accuracy (or AUC) on the held-out set
    seed: int
    epochs: int

    def source(self, fine_tune_epochs: int = 2) -> ModelSource:
        return ModelSource(
            path=self.keras_path,
            name=self.name,
            task=self.task,
            representative=self.representative,
            val_x=self.val_x,
            val_y=self.val_y,
            train_x=self.train_x,
            train_y=self.train_y,
            fine_tune_epochs=fine_tune_epochs,
        )


def _dir(cache_dir: Path, name: str, seed: int, epochs: int) -> Path:
    return Path(cache_dir) / f"{name}-v{ZOO_VERSION}-s{seed}-e{epochs}"


def _load(path: Path, name: str) -> ZooModel | None:
    meta_file = path / "meta.json"
    if not meta_file.exists():
        return None
    meta = json.loads(meta_file.read_text())
    data = np.load(path / "data.npz")
    return ZooModel(
        name=name,
        keras_path=path / "model.keras",
        task=TASKS[name],
        representative=data["representative"],
        val_x=data["val_x"],
        val_y=data["val_y"],
        train_x=data["train_x"],
        train_y=data["train_y"],
        float_score=float(meta["float_score"]),
        seed=int(meta["seed"]),
        epochs=int(meta["epochs"]),
    )


def train_into(name: str, path: Path, seed: int, epochs: int) -> None:
    """Worker entry point: train ``name`` and write model.keras, data.npz, meta.json (meta last = committed)."""
    from compilers.worker import seed_everything
    from compilers.zoo import digits, vibration

    seed_everything(seed)
    trainer = {"digits-cnn": digits.train, "vibration-anomaly": vibration.train}[name]
    path.mkdir(parents=True, exist_ok=True)
    result = trainer(seed, epochs)
    result.model.save(str(path / "model.keras"))
    np.savez(
        path / "data.npz",
        representative=result.representative,
        val_x=result.val_x,
        val_y=result.val_y,
        train_x=result.train_x,
        train_y=result.train_y,
    )
    meta = {"name": name, "seed": seed, "epochs": epochs, "zoo_version": ZOO_VERSION, "float_score": result.score}
    (path / "meta.json").write_text(json.dumps(meta, indent=2))


def build_model(
    name: str,
    cache_dir: Path | str,
    *,
    seed: int = DEFAULT_SEED,
    epochs: int | None = None,
    in_process: bool = False,
    executor: Executor | None = None,
) -> ZooModel:
    """Return the cached zoo model, training it first if needed (``KeyError`` for an unknown name).

    Training runs in ``executor`` (a pool from :func:`compilers.worker.make_executor`), else in a one-shot
    spawned worker, else (``in_process``) here -- only where TensorFlow may be imported.
    """
    if name not in TASKS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO_NAMES)}")
    epochs = DEFAULT_EPOCHS[name] if epochs is None else epochs
    path = _dir(Path(cache_dir), name, seed, epochs)
    cached = _load(path, name)
    if cached is not None:
        return cached
    if in_process:
        train_into(name, path, seed, epochs)
    elif executor is not None:
        executor.submit(train_into, name, path, seed, epochs).result()
    else:
        from compilers.worker import make_executor

        with make_executor(1) as pool:
            pool.submit(train_into, name, path, seed, epochs).result()
    model = _load(path, name)
    if model is None:
        raise RuntimeError(f"zoo build of {name} left no model in {path}")
    return model
