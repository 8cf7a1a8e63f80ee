"""Engines that run the seed graph's compiled functions: PyTensor's backends and legacy Theano.

Two layers:

* :class:`FunctionEngine`: the NumPy interface (forward, loss, gradients, train_step, parity,
  runner) over compiled functions looked up *by name* (``forward``, ``loss``, ``gradients``,
  ``parity``, ``train``) and *shape signature*; where the functions come from is the subclass's
  business (a compile, or :mod:`rnnperf.engines.function_cache`);
* :class:`GraphEngine`: functions compiled from :func:`rnnperf.model.build_seed_graph` by a
  library's ``function`` and mode, over shared variables created once, so every compiled function
  reads and updates the same parameters and a training loop compiles once and reuses; the peak
  probe's product (:meth:`GraphEngine.matmul_step`) is such a function too, ``dot`` compiled in
  the same library and mode.
"""

from __future__ import annotations

import abc

import numpy as np

from ..model.graph import GraphLib, SeedGraph, build_seed_graph
from .base import Engine, check_inputs, matmul_operands

#: the compiled functions of a seed graph, by name
FUNCTIONS = ("forward", "loss", "gradients", "parity", "train")


class FunctionEngine(Engine):
    """The NumPy interface over compiled functions of the seed graph, by name."""

    #: backends whose Scan needs the trip count at trace time compile one graph per input shape
    static_shapes = False

    @abc.abstractmethod
    def function(self, name: str, x):
        """The compiled function ``name`` (one of :data:`FUNCTIONS`) for inputs like ``x``."""

    def to_host(self, value) -> np.ndarray:
        return np.asarray(value)

    def sync(self, value):
        """Block until device work behind ``value`` is done (no-op for host backends)."""
        return value

    def _args(self, x, y, lengths, lr=None):
        x, y, lengths = check_inputs(x, y, lengths, self.n_in, self.n_out, self.dtype)
        args = [x] + ([lengths] if x.ndim == 3 else [])
        if y is not None:
            args.append(y)
        if lr is not None:
            args.append(np.asarray(lr, dtype=self.dtype))
        return x, args

    def forward(self, x, lengths=None):
        x, args = self._args(x, None, lengths)
        return self.to_host(self.function("forward", x)(*args))

    def loss(self, x, y, lengths=None):
        x, args = self._args(x, y, lengths)
        return float(self.to_host(self.function("loss", x)(*args)))

    def gradients(self, x, y, lengths=None):
        x, args = self._args(x, y, lengths)
        values = self.function("gradients", x)(*args)
        return {k: self.to_host(v) for k, v in zip(self.param_names, values)}

    def train_step(self, x, y, lr=0.1, lengths=None):
        x, args = self._args(x, y, lengths, lr)
        return float(self.to_host(self.function("train", x)(*args)))

    def parity_step(self, x, y, lr, lengths=None):
        x, args = self._args(x, y, lengths, lr)
        values = [self.to_host(v) for v in self.function("parity", x)(*args)]
        out = {"probs": values[0], "loss": values[1]}
        out.update({f"d{k}": v for k, v in zip(self.param_names, values[2:])})
        return out

    def runner(self, task, x, y, lengths, lr=0.01):
        """The inputs placed once (:meth:`place_inputs`), outside the closure, so a timed call
        copies nothing to the device; the closure calls :meth:`timed_function`'s function."""
        train = task == "train"
        x, args = self._args(x, y if train else None, lengths, lr if train else None)
        fn = self.timed_function("train" if train else "forward", x)
        args = self.place_inputs(args)
        return lambda: self.sync(fn(*args))

    def place_inputs(self, args: list) -> list:
        """The runner's inputs where its function reads them without a copy per call: NumPy,
        the host, by default (the C and Numba backends compute there)."""
        return args

    def timed_function(self, name: str, x):
        """The function the runner's closure calls with :meth:`place_inputs`'s arguments: the
        NumPy interface's own by default."""
        return self.function(name, x)


class GraphEngine(FunctionEngine):
    """Functions compiled from the seed graph over shared variables, one per signature."""

    @abc.abstractmethod
    def make_lib(self) -> GraphLib: ...

    @abc.abstractmethod
    def compile(self, inputs, outputs, updates=None):
        """Compile with this engine's mode; return a callable."""

    def setup(self):
        self.lib = self.make_lib()
        self._shared = None
        self._graphs: dict[tuple, SeedGraph] = {}
        self._fns: dict[tuple, object] = {}
        self._matmul_fn = None
        self.formulation = self.config.get("formulation", "seed")

    # --- parameters live in shared variables --------------------------------------------------
    def set_params(self, params):
        values = {k: np.asarray(params[k], dtype=self.dtype) for k in self.param_names}
        if self._shared is None:
            self._shared = {k: self.lib.shared(v.copy(), name=k) for k, v in values.items()}
        else:
            for k, v in values.items():
                self._shared[k].set_value(v.copy())

    def get_params(self):
        return {k: np.array(self.to_host(v.get_value()), dtype=self.dtype)
                for k, v in self._shared.items()}

    # --- one compiled function per (function, variant, shape) ---------------------------------
    def _graph(self, x) -> SeedGraph:
        batched = x.ndim == 3
        shape = tuple(x.shape) if self.static_shapes else None
        key = (batched, shape)
        if key not in self._graphs:
            self._graphs[key] = build_seed_graph(
                self.lib, self._shared, batched=batched, formulation=self.formulation,
                dtype=self.dtype.name, shape=shape, cell=self.cell)
        return self._graphs[key]

    def function(self, name: str, x):
        graph = self._graph(x)
        key = (name, x.ndim == 3, tuple(x.shape) if self.static_shapes else None)
        names = self.param_names
        if key not in self._fns:
            if name == "forward":
                fn = self.compile(graph.inputs(), graph.probs)
            elif name == "loss":
                fn = self.compile(graph.inputs(with_y=True), graph.loss)
            elif name == "gradients":
                fn = self.compile(graph.inputs(with_y=True), [graph.grads[k] for k in names])
            elif name == "parity":
                fn = self.compile(graph.inputs(with_y=True, with_lr=True),
                                  [graph.probs, graph.loss] + [graph.grads[k] for k in names],
                                  updates=graph.updates)
            elif name == "train":
                fn = self.compile(graph.inputs(with_y=True, with_lr=True), graph.loss,
                                  updates=graph.updates)
            else:
                raise KeyError(name)
            self._fns[key] = fn
        return self._fns[key]

    # --- the peak probe: dot compiled like every other function -----------------------------
    def matmul_step(self, n):
        """``dot(a, b)`` compiled by this engine's :meth:`compile` (its library, mode, flags and
        threads); the operands placed once by :meth:`place_operand`."""
        fn = self.runnable(self.matmul_function())
        a, b = (self.place_operand(v) for v in matmul_operands(n, self.dtype))
        return lambda: self.sync(fn(a, b))

    def runnable(self, fn):
        """How this engine calls a function it compiled (the step's and the peak probe's alike):
        the compiled function itself by default."""
        return fn

    def matmul_function(self):
        """The compiled ``dot`` of two matrices of the engine's dtype, any size (compiled once).

        Its inputs are trusted (``trust_input``): the operands are placed by
        :meth:`place_operand`, already of the right type and on the engine's device.
        """
        if self._matmul_fn is None:
            a, b = (self.lib.tensor(name, self.dtype.name, (None, None)) for name in "ab")
            self._matmul_fn = self.compile([a, b], self.lib.T.dot(a, b))
            self._matmul_fn.trust_input = True
        return self._matmul_fn

    def place_operand(self, value: np.ndarray):
        """An operand of the peak probe as the compiled function takes it (NumPy by default)."""
        return value

    def matmul_label(self):
        ops = sorted({type(node.op).__name__
                      for node in self.matmul_function().maker.fgraph.apply_nodes})
        origin, detail = self.matmul_origin()
        return f"{origin} {'+'.join(ops) or '(no op)'} ({detail})"

    @abc.abstractmethod
    def matmul_origin(self) -> tuple[str, str]:
        """``(library and mode, what its product runs on)`` for :meth:`matmul_label`:
        ``("pytensor CVM", "blas__ldflags=-lopenblas")``."""
