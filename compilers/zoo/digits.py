"""``digits-cnn``: a small CNN on scikit-learn's bundled 8x8 digits (1,797 images, no download)."""

from __future__ import annotations

import numpy as np

from compilers.zoo.common import Trained


def load(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # (n, 8, 8, 1) in [0, 1]
    y = digits.target.astype(np.int32)
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_tr, y_tr, x_val, y_val


def train(seed: int, epochs: int) -> Trained:
    from compilers.worker import import_tf

    tf = import_tf()
    keras = tf.keras
    x_tr, y_tr, x_val, y_val = load(seed)
    model = keras.Sequential(
        [
            keras.layers.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    score = float(np.mean(np.argmax(model.predict(x_val, verbose=0), axis=1) == y_val))
    return Trained(model, x_tr[:200], x_val, y_val, x_tr, y_tr, score)
