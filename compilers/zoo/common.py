"""What a zoo trainer returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Trained:
    model: Any  # a tf_keras Model
    representative: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    train_x: np.ndarray
    train_y: np.ndarray
    score: float
