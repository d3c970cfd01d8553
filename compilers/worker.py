"""Process-pool plumbing: TensorFlow is imported only in spawned workers, with legacy Keras selected first.

``TF_USE_LEGACY_KERAS=1`` must be set before ``import tensorflow`` (tensorflow-model-optimization needs
tf_keras), so every worker runs :func:`init_worker` (after :func:`compilers.worker_log.capture_native_stderr`,
which keeps TensorFlow's C++ chatter off stderr) as its initializer.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from types import ModuleType


def init_worker() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bit-reproducible CPU math
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def worker_initializer() -> None:
    """First thing in every pool worker: TensorFlow's native stderr chatter is filtered, then legacy Keras."""
    from compilers.worker_log import capture_native_stderr

    capture_native_stderr()
    init_worker()


def make_executor(workers: int = 1) -> ProcessPoolExecutor:
    """A spawn-context pool (fork after TF or asyncio is unsafe) whose workers select legacy Keras."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_initializer
    )


def import_tf() -> ModuleType:
    """Import TensorFlow in a worker; refuses if it was already imported without legacy Keras."""
    if "tensorflow" not in sys.modules:
        init_worker()
    elif os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError("tensorflow was imported before TF_USE_LEGACY_KERAS=1; run compiles in a worker")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def seed_everything(seed: int) -> None:
    tf = import_tf()
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
