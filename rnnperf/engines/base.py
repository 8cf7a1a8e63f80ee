"""The contract every engine implements, and the input checks they all share.

An engine owns the model's parameters on its own side (a device array, a shared variable, a
tensor) between calls, so a training loop never round-trips through NumPy. Everything crossing
this interface is NumPy; :meth:`Engine.runner` is the exception the benchmark harness uses: it
places the data once and returns a closure that runs one synchronised step.
"""

from __future__ import annotations

import abc
from typing import Callable

import numpy as np

from ..errors import ConfigError, Unavailable
from ..flags import Config
from ..model.spec import param_names, param_shapes
from .registry import get as spec_of


class Engine(abc.ABC):
    """One compiled model. Subclasses compile each function once per shape signature."""

    def __init__(self, config: Config, n_in: int, n_hidden: int, n_out: int,
                 params: dict[str, np.ndarray]):
        spec = spec_of(config.engine)
        #: the registry's name and devices (what device= this engine can honour)
        self.name, self.devices = spec.name, spec.devices
        self.config = config
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        self.dtype = np.dtype(config.floatX)
        #: the recurrent cell (``elman``, ``gru``, ``lstm``) and its parameters' names, in order
        self.cell = config.cell
        self.param_names = param_names(self.cell)
        kind = "cuda" if config.wants_gpu else "cpu"
        if kind not in self.devices:
            raise Unavailable(f"engine {self.name} cannot honour device={config.device} "
                              f"(it runs on {', '.join(self.devices)} only); not falling back")
        self.check_params(params)
        self.setup()
        self.set_params(params)

    # --- to implement ----------------------------------------------------------------------------
    @classmethod
    def variant_for(cls, config: Config) -> type:
        """The class that runs ``config`` (:func:`rnnperf.engines.load`): this one by default."""
        return cls

    @classmethod
    def import_libraries(cls, config: Config) -> None:
        """Apply the profile's settings that must precede the import, then import the library.

        The harness times this apart from compile (``import_s``); :meth:`setup` calls it again,
        so it must be idempotent. Nothing to import by default.
        """

    #: seconds :meth:`setup` or a compile spent importing libraries that :meth:`import_libraries`
    #: left for later (an import only some paths need); the harness moves them to ``import_s``
    late_import_s = 0.0
    #: where the compiled functions came from: ``None`` for an engine without a function cache;
    #: ``hit``, ``miss``, ``off`` or ``unavailable`` for one with it (:mod:`rnnperf.function_cache`)
    function_cache: str | None = None

    def setup(self) -> None:
        """Import the library, pin threads and pick the device; raise Unavailable if impossible."""

    @abc.abstractmethod
    def set_params(self, params: dict[str, np.ndarray]) -> None: ...

    @abc.abstractmethod
    def get_params(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def forward(self, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray: ...

    @abc.abstractmethod
    def loss(self, x, y, lengths) -> float: ...

    @abc.abstractmethod
    def gradients(self, x, y, lengths) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def train_step(self, x, y, lr: float, lengths) -> float: ...

    @abc.abstractmethod
    def device_actual(self) -> str:
        """Where the parameters live, read from the arrays themselves (e.g. ``cuda:0``)."""

    def runner(self, task: str, x, y, lengths, lr: float = 0.01) -> Callable[[], object]:
        """A closure running one synchronised step of ``task``; data placed once, outside it.

        The default goes through the NumPy interface; engines with device arrays override it so
        that the timed loop holds no host transfer.
        """
        if task == "forward":
            return lambda: self.forward(x, lengths)
        return lambda: self.train_step(x, y, lr, lengths)

    def matmul_step(self, n: int) -> Callable[[], object]:
        """One synchronised ``(n, n) x (n, n)`` product in this engine's own library: the peak
        probe's unit (:func:`rnnperf.bench.peak.peak_gflops`).

        Same library, dtype, device, flags and threads as the engine's step; the operands
        (:func:`matmul_operands`) are placed once, outside the closure, and each call returns the
        product once it is computed. The default is NumPy's ``a @ b``; engines computing in
        another library override it (and :meth:`matmul_label`).
        """
        a, b = matmul_operands(n, self.dtype)
        return lambda: a @ b

    def matmul_label(self) -> str:
        """What :meth:`matmul_step` runs, for the record (``torch.mm on cuda:0``)."""
        return f"numpy matmul ({numpy_blas_name()})"

    def parity_step(self, x, y, lr: float, lengths) -> dict[str, np.ndarray]:
        """Probabilities, loss and gradients at the current parameters, then one SGD step.

        What :mod:`rnnperf.parity` compares. Engines that compile may do it in one function
        (outputs are computed before updates apply), which keeps cold compiles to one per variant.
        """
        out = {"probs": np.asarray(self.forward(x, lengths)),
               "loss": np.asarray(self.loss(x, y, lengths))}
        out.update({f"d{k}": v for k, v in self.gradients(x, y, lengths).items()})
        self.train_step(x, y, lr, lengths)
        return out

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {}

    # --- shared helpers --------------------------------------------------------------------------
    def check_params(self, params: dict[str, np.ndarray]) -> None:
        expected = param_shapes(self.n_in, self.n_hidden, self.n_out, self.cell)
        if set(params) != set(self.param_names):
            raise ConfigError(f"params: cell={self.cell} expects keys "
                              f"{', '.join(self.param_names)}, "
                              f"got {', '.join(sorted(params))}")
        for name, shape in expected.items():
            got = np.shape(params[name])
            if got != shape:
                raise ConfigError(f"params: {name} has shape {got}, expected {shape}")
            if not np.all(np.isfinite(params[name])):
                raise ConfigError(f"params: {name} contains NaN or Inf")


def matmul_operands(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The peak probe's two ``(n, n)`` operands: seeded standard normals in ``dtype``.

    Every engine's :meth:`Engine.matmul_step` places these same values on its own device, so a
    product can be checked against NumPy whatever computed it.
    """
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    return rng.standard_normal((n, n), dtype=dtype), rng.standard_normal((n, n), dtype=dtype)


def numpy_blas_name() -> str:
    """The BLAS NumPy was built with (``scipy-openblas 0.3.27``), or ``?``."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # NumPy < 1.25 (the legacy venv's) has no mode="dicts"
        return "?"


def check_lr(lr) -> float:
    """A learning rate as a float: finite and not negative, or one ConfigError line (a NaN
    would otherwise be written into every parameter by the step it is given to)."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ConfigError(f"lr: {lr!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"lr: {lr!r} must be a finite number >= 0")
    return value


def check_inputs(x, y, lengths, n_in: int, n_out: int | None, dtype) -> tuple:
    """Validate and normalise ``x``, ``y``, ``lengths``; one clear line on any mismatch.

    Returns ``(x, y, lengths)`` as arrays of the engine's dtype; ``lengths`` is filled with ``T``
    for a batch given without it and stays ``None`` for a single sequence.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ConfigError(f"x: expected (T, I) or (T, B, I), got shape {x.shape}")
    if x.shape[0] < 1:
        raise ConfigError("x: a sequence needs at least one time step")
    if x.shape[-1] != n_in:
        raise ConfigError(f"x: last axis has {x.shape[-1]} features, the model has n_in={n_in}")
    if not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"x: not numeric (dtype {x.dtype})")
    if not np.all(np.isfinite(x)):
        raise ConfigError("x: contains NaN or Inf")
    x = x.astype(dtype, copy=False)
    batched = x.ndim == 3
    if batched:
        n_steps, batch = x.shape[0], x.shape[1]
        if lengths is None:
            lengths = np.full(batch, n_steps, dtype=np.int64)
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,):
            raise ConfigError(f"lengths: shape {lengths.shape} does not match batch size {batch}")
        if not np.issubdtype(lengths.dtype, np.integer):
            if not np.all(np.mod(lengths, 1) == 0):
                raise ConfigError("lengths: must be integers")
        lengths = lengths.astype(np.int64)
        if lengths.size and (lengths.min() < 1 or lengths.max() > n_steps):
            raise ConfigError(f"lengths: every length must be in 1..{n_steps} (T)")
    elif lengths is not None:
        raise ConfigError("lengths: only meaningful for a batch x of shape (T, B, I)")
    if y is not None:
        y = np.asarray(y)
        want = (x.shape[1],) if batched else ()
        if y.shape != want:
            raise ConfigError(f"y: shape {y.shape}, expected {want or 'a scalar int'}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise ConfigError("y: class labels must be integers")
        y = y.astype(np.int64)
        if n_out is not None and y.size and (y.min() < 0 or y.max() >= n_out):
            raise ConfigError(f"y: labels must be in 0..{n_out - 1}, got {int(y.min())}.."
                              f"{int(y.max())}")
    return x, y, lengths

