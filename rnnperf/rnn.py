"""``rnnperf.RNN``: the in-process API over any engine.

A thin facade: it resolves the profile (every source, as the CLI does), builds the engine the
profile names, and forwards calls. Parameters stay on the engine's side between calls; ``.params``
copies them out. Each engine compiles a function once per shape signature and reuses it.
"""

from __future__ import annotations

import numpy as np

from . import flags as flagslib
from .engines.base import check_lr
from .engines.threads import limit_pools, pools
from .errors import ConfigError
from .model.spec import init_params
from .ui import progress_bar


class RNN:
    """The seed RNN compiled by the engine a profile names.

    >>> net = RNN(8, 32, 10, flags="engine=numpy,floatX=float64")
    >>> net.forward(np.zeros((8, 8))).shape
    (10,)
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, flags: str | None = None,
                 seed: int = 0, rc: str | None = None, use_env: bool = True):
        from .engines import load
        self.config = flagslib.load(flags=flags, rc=rc, use_env=use_env)
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        params = init_params(n_in, n_hidden, n_out, seed=seed, dtype=self.config.floatX,
                             cell=self.config.cell)
        engine_class = load(self.config.engine, self.config)
        self.engine = engine_class(self.config, n_in, n_hidden, n_out, params)
        self._pinned: set[str] = set()
        self._pin("construction")

    def _pin(self, what: str) -> None:
        """After the first call of each function (a compile may load a BLAS or OpenMP runtime),
        every pool to the profile's ``threads=`` (rnnperf.engines.threads)."""
        if self.config.threads and what not in self._pinned:
            limit_pools(self.config.threads)
            self._pinned.add(what)

    @property
    def pools(self) -> dict[str, int]:
        """The threads each pool loaded in this process would use now (read back)."""
        return pools()

    def __repr__(self):
        return (f"RNN({self.n_in}, {self.n_hidden}, {self.n_out}, "
                f"flags={self.config.profile()!r})")

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.engine.get_params()

    @params.setter
    def params(self, values: dict[str, np.ndarray]) -> None:
        self.engine.check_params(values)
        self.engine.set_params(values)

    @property
    def device(self) -> str:
        """Where the parameters actually live, read from the arrays."""
        return self.engine.device_actual()

    def forward(self, x, lengths=None) -> np.ndarray:
        out = self.engine.forward(x, lengths)
        self._pin("forward")
        return out

    def loss(self, x, y, lengths=None) -> float:
        out = self.engine.loss(x, y, lengths)
        self._pin("loss")
        return out

    def gradients(self, x, y, lengths=None) -> dict[str, np.ndarray]:
        out = self.engine.gradients(x, y, lengths)
        self._pin("gradients")
        return out

    def train_step(self, x, y, lr: float = 0.1, lengths=None) -> float:
        loss = self.engine.train_step(x, y, check_lr(lr), lengths)
        self._pin("train_step")
        if not np.isfinite(loss):
            from .errors import CheckFailed
            raise CheckFailed(f"train_step: loss became {loss} (diverged; lower lr?)")
        return loss

    def predict(self, x, lengths=None) -> np.ndarray | int:
        probs = self.forward(x, lengths)
        return int(np.argmax(probs)) if probs.ndim == 1 else np.argmax(probs, axis=-1)

    def fit(self, X, y, epochs: int = 10, batch_size: int = 32, lr: float = 0.1,
            lengths=None, seed: int = 0, progress: bool = True, on_epoch=None) -> list[float]:
        """Minibatch SGD over ``X`` of shape ``(N, T, I)`` (sequence-major inside each batch).

        Returns the mean loss of each epoch. The last partial batch is padded by reusing
        samples, so every batch has the same shape and is compiled once.
        """
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 3 or len(X) != len(y):
            raise ConfigError(f"fit: X must be (N, T, I) with one label each, got X {X.shape}, "
                              f"y {y.shape}")
        if epochs < 1 or batch_size < 1:
            raise ConfigError("fit: epochs and batch_size must be positive")
        lr = check_lr(lr)
        n = len(X)
        batch_size = min(batch_size, n)
        lengths = None if lengths is None else np.asarray(lengths)
        rng = np.random.default_rng(seed)
        history = []
        bar = progress_bar(epochs * -(-n // batch_size), "training", enabled=progress)
        try:
            for epoch in range(epochs):
                order = rng.permutation(n)
                pad = (-n) % batch_size
                order = np.concatenate([order, order[:pad]])
                losses = []
                for start in range(0, len(order), batch_size):
                    idx = order[start:start + batch_size]
                    xb = np.ascontiguousarray(X[idx].transpose(1, 0, 2))
                    lb = None if lengths is None else lengths[idx]
                    losses.append(self.train_step(xb, y[idx], lr, lb))
                    if bar:
                        bar.advance(bar.task_ids[0])
                history.append(float(np.mean(losses)))
                if on_epoch:
                    on_epoch(epoch, history[-1])
        finally:
            if bar:
                bar.stop()
        return history

    def accuracy(self, X, y, batch_size: int = 256) -> float:
        X = np.asarray(X)
        correct = 0
        for start in range(0, len(X), batch_size):
            xb = np.ascontiguousarray(X[start:start + batch_size].transpose(1, 0, 2))
            correct += int(np.sum(self.predict(xb) == y[start:start + batch_size]))
        return correct / len(X)

