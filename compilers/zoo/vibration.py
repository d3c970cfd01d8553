"""``vibration-anomaly``: a dense autoencoder on synthetic accelerometer windows (no download).

Healthy machines: shaft harmonics (sums of sines with random amplitude and phase) plus noise.
Faulty machines add a bearing-fault harmonic (a non-integer multiple of the shaft speed) and periodic
impulses. The model sees the log-magnitude spectrum of a 256-sample window (64 bands), as a device would
compute it with a small FFT; it is trained on healthy windows only and scored by reconstruction error (AUC).
"""

from __future__ import annotations

import numpy as np

from compilers.zoo.common import Trained

WINDOW = 256
BANDS = 64
RATE_HZ = 1000.0


def _window(rng: np.random.Generator, faulty: bool) -> np.ndarray:
    t = np.arange(WINDOW) / RATE_HZ
    shaft = rng.uniform(20.0, 30.0)
    sig = np.zeros(WINDOW)
    for k in (1, 2, 3):
        sig += rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * k * shaft * t + rng.uniform(0, 2 * np.pi))
    sig += rng.normal(0, rng.uniform(0.2, 0.4), WINDOW)
    if faulty:
        bpfo = shaft * rng.uniform(3.4, 3.8)  # outer-race fault frequency, not a shaft harmonic
        sig += rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * bpfo * t)
        period = int(RATE_HZ / bpfo)
        start = int(rng.integers(0, period))
        sig[start::period] += rng.uniform(0.3, 1.2) * rng.choice([-1.0, 1.0])
    return sig


def features(sig: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(sig * np.hanning(WINDOW)))[1 : 1 + 2 * BANDS]
    bands = spec.reshape(BANDS, 2).mean(axis=1)
    return (np.log1p(bands) / 3.0).astype(np.float32)


def make(rng: np.random.Generator, n: int, faulty: bool) -> np.ndarray:
    return np.stack([features(_window(rng, faulty)) for _ in range(n)])


def train(seed: int, epochs: int) -> Trained:
    from compilers.evaluate import roc_auc
    from compilers.worker import import_tf

    tf = import_tf()
    keras = tf.keras
    rng = np.random.default_rng(seed)
    x_tr = make(rng, 1200, faulty=False)
    val_x = np.concatenate([make(rng, 200, False), make(rng, 200, True)])
    val_y = np.concatenate([np.zeros(200, np.int32), np.ones(200, np.int32)])
    model = keras.Sequential(
        [
            keras.layers.Input(shape=(BANDS,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(BANDS),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    model.fit(x_tr, x_tr, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    err = np.mean((model.predict(val_x, verbose=0) - val_x) ** 2, axis=1)
    return Trained(model, x_tr[:200], val_x, val_y, x_tr, np.zeros(len(x_tr), np.int32), roc_auc(err, val_y))
