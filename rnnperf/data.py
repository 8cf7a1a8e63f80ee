"""Data sets for ``rnnperf train``: both ship inside the package or are generated; no downloads.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, BSD licence, copied into
  ``rnnperf/data/digits.csv.gz``). Each image is read as a sequence of its 8 rows, 8 features each
  (pixel values 0..16 scaled to 0..1), 10 classes.
* ``synthetic``: a sequence task whose answer is known by construction: the label is the channel
  whose values sum highest over the sequence. Any accuracy below 100 % is the model's error.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np

from .errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
DATASETS = ("digits", "synthetic")


@dataclasses.dataclass
class Dataset:
    name: str
    X_train: np.ndarray   # (N, T, I)
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_in(self) -> int:
        return self.X_train.shape[2]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    path = DATA_DIR / "digits.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    images, labels = table[:, :64], table[:, 64].astype(np.int64)
    return images.reshape(-1, 8, 8) / 16.0, labels


def make_synthetic(n: int = 1200, n_steps: int = 12, n_in: int = 4, seed: int = 0):
    """Noise plus a drift of 0.5 on one hidden channel; the label is the argmax of the sums.

    The drift keeps most samples away from the decision boundary, so a small RNN learns it in a
    few epochs; the label is still computed from the data, so the answer is exact.
    """
    rng = np.random.default_rng(seed)
    drift = np.eye(n_in)[rng.integers(0, n_in, n)][:, None, :] * 0.5
    X = rng.standard_normal((n, n_steps, n_in)) + drift
    y = np.argmax(X.sum(axis=1), axis=1).astype(np.int64)
    return X, y


def load(name: str, dtype: str = "float32", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    if name == "digits":
        X, y = load_digits()
    elif name == "synthetic":
        X, y = make_synthetic(seed=seed)
    else:
        raise ConfigError(f"--data: unknown data set {name!r} (choose {', '.join(DATASETS)})")
    order = np.random.default_rng(seed).permutation(len(X))
    X, y = X[order].astype(dtype), y[order]
    n_test = int(round(len(X) * test_fraction))
    return Dataset(name, X[n_test:], y[n_test:], X[:n_test], y[:n_test], int(y.max()) + 1)
