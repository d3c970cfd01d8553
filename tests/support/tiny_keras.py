"""A tiny Keras model, saved by a spawned compile worker (TensorFlow never loads in the test process)."""

from __future__ import annotations

from pathlib import Path


def _save(path: str) -> None:
    from compilers.worker import import_tf

    tf = import_tf()
    model = tf.keras.Sequential([tf.keras.layers.Input((8,)), tf.keras.layers.Dense(4, activation="relu"),
                                 tf.keras.layers.Dense(2, activation="softmax")])  # fmt: skip
    model.save(path)


def tiny_keras(path: Path) -> Path:
    """Write an 8 -> 4 -> 2 dense model to ``path`` (a .keras file) in a one-shot worker."""
    from compilers.worker import make_executor

    with make_executor(1) as pool:
        pool.submit(_save, str(path)).result(timeout=180)
    return path
