"""A cell's own graph as its reference: the seed graph in float64 on PyTensor's pure-Python
linker, with no rewrites, so every op runs its NumPy ``perform``.

A user's cell has no hand-written oracle (:mod:`rnnperf.model.oracle`); what stands in for one
must not share the engines' compiled code, so it is the same symbolic graph evaluated op by op in
NumPy, in float64, untouched by any rewrite (a wrong rewrite or kernel then shows as a parity
mismatch). Its gradients come from ``grad``, so they are checked first against central finite
differences (:func:`finite_difference_error`). Also here, because they need the graph: the checks
of a step that loading a file cannot make (:func:`check_step`: how many states, their shapes and
dtypes), and the FLOPs counted from the step's graph (:func:`step_graph_flops`).

Imported only in a worker (it imports PyTensor).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode

from .. import cells
from ..errors import ConfigError
from .graph import GraphLib, build_seed_graph
from .recurrence import as_states
from .spec import param_names, param_shapes

#: every op's NumPy ``perform``, no rewrite
REFERENCE_MODE = Mode(linker="py", optimizer=None)


def pytensor_lib() -> GraphLib:
    """The seed graph's namespace over PyTensor (the seed formulation needs nothing more)."""
    def scan(fn, **kwargs):
        return pytensor.scan(fn, return_updates=False, **kwargs)
    return GraphLib(T=pt, scan=scan, grad=pytensor.grad, shared=pytensor.shared,
                    tensor=lambda name, dtype, shape: pt.tensor(name, dtype=dtype, shape=shape))


def _step_outputs(cell, dtype: str, batch: int | None, n_in: int = 3, n_hidden: int = 4):
    """The cell's step on symbolic inputs: ``(inputs, outputs, values)`` with zero-ish values
    for every input, a batch of ``batch`` rows or a single step (``None``)."""
    rng = np.random.default_rng(0)
    lead = () if batch is None else (batch,)
    x_t = pt.tensor("x_t", dtype=dtype, shape=lead + (n_in,))
    states = [pt.tensor(name, dtype=dtype, shape=lead + (n_hidden,)) for name in cell.states]
    shapes = cell.param_shapes(n_in, n_hidden)
    params = {name: pt.tensor(name, dtype=dtype, shape=tuple(shape))
              for name, shape in shapes.items()}
    out = cell.step(pt, x_t, tuple(states), cells.StepParams(params, shapes))
    inputs = [x_t, *states, *params.values()]
    values = [rng.standard_normal(v.type.shape).astype(dtype) * 0.3 for v in inputs]
    return inputs, out, values


def check_step(cell, dtype: str) -> None:
    """One :class:`ConfigError` line when the step returns the wrong number of states, or a
    state of the wrong shape or dtype, batched ``(B, I)`` or single ``(I,)``."""
    where = f"cell={cell.name}: {cell.source or 'built-in'}"
    for batch in (2, None):
        try:
            inputs, out, values = _step_outputs(cell, dtype, batch)
            out = as_states(cell, out)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}".replace(f"cell={cell.name}: cell=", "cell="))
        except Exception as exc:
            raise ConfigError(f"{where}: step failed on a {'batched' if batch else 'single'} "
                              f"step: {type(exc).__name__}: {exc}") from None
        want = ((batch,) if batch else ()) + (4,)
        fn = pytensor.function(inputs, out, mode=REFERENCE_MODE, on_unused_input="ignore")
        for name, var, value in zip(cell.states, out, fn(*values)):
            kind = "batched (B, I)" if batch else "single (I,)"
            if not hasattr(var, "dtype") or var.dtype != dtype:
                raise ConfigError(f"{where}: a {kind} step returns state {name!r} as "
                                  f"{getattr(var, 'dtype', type(var).__name__)}, not {dtype}")
            if np.shape(value) != want:
                raise ConfigError(f"{where}: a {kind} step returns state {name!r} of shape "
                                  f"{np.shape(value)}, expected {want}")


def step_graph_flops(cell, task: str, T: int, B: int, I: int, H: int, O: int) -> int:  # noqa
    """Matrix-product FLOPs of one timed step, counted from the cell's step graph with
    :mod:`rnnperf.bench.flops`' convention: each product ``(m, k) x (k, n)`` is ``2mkn`` forward;
    backward, ``2mkn`` more for each operand that needs a gradient (it depends on a parameter or
    a state; ``x_t`` needs none), the minimal implementation's count; the head adds ``2BHO``
    forward and ``2·2BHO`` backward. Per step times ``T``."""
    inputs, out, _ = _step_outputs(cell, "float64", B, I, H)
    x_t = inputs[0]
    forward = backward = 0
    for node in pytensor.graph.traversal.applys_between(inputs, as_states(cell, out)):
        if not _is_product(node):
            continue
        a, b = node.inputs[:2]
        m_k, k_n = a.type.shape, b.type.shape
        if None in m_k + k_n:
            raise ConfigError(f"cell={cell.name}: a product in its step has no static shape")
        work = 2 * int(np.prod(node.outputs[0].type.shape)) * int(m_k[-1])
        forward += work
        backward += work * sum(_needs_grad(v, x_t) for v in (a, b))
    fwd = T * forward + 2 * B * H * O
    if task == "forward":
        return fwd
    return fwd + T * backward + 2 * (2 * B * H * O)


def _is_product(node) -> bool:
    op = node.op
    core = getattr(op, "core_op", op)            # matmul's Blockwise(Dot)
    return type(core).__name__ in ("Dot", "Dot22", "Dot22Scalar", "Gemv", "Gemm", "Ger",
                                   "Dot22Scalar", "BatchedDot", "_dot")


def _needs_grad(var, x_t) -> bool:
    """Whether ``var`` depends on anything but ``x_t`` (a parameter or a state)."""
    from pytensor.graph.traversal import graph_inputs
    return any(v is not x_t and not isinstance(v, pytensor.graph.basic.Constant)
               for v in graph_inputs([var]))


def reference_case(cell, params: dict, x, y, lengths, lr: float) -> dict[str, np.ndarray]:
    """Probabilities, loss, every gradient and every parameter after one SGD step, in float64 on
    the reference linker (``x`` ``(T, I)`` with ``lengths`` None, or ``(T, B, I)``)."""
    graph, _ = _graph(cell, params, x.ndim == 3)
    names = param_names(cell)
    fn = pytensor.function(graph.inputs(with_y=True),
                           [graph.probs, graph.loss] + [graph.grads[k] for k in names],
                           mode=REFERENCE_MODE)
    args = [x.astype(np.float64)] + ([np.asarray(lengths)] if lengths is not None else [])
    values = fn(*args, np.asarray(y))
    out = {"probs": values[0], "loss": np.asarray(values[1])}
    out.update({f"d{k}": v for k, v in zip(names, values[2:])})
    out.update({f"{k}+": params[k].astype(np.float64) - lr * out[f"d{k}"] for k in names})
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def _graph(cell, params: dict, batched: bool):
    """The seed graph of ``cell`` over float64 shared copies of ``params``."""
    shared = {k: pytensor.shared(np.asarray(v, dtype=np.float64), name=k)
              for k, v in params.items()}
    graph = build_seed_graph(pytensor_lib(), shared, batched=batched, formulation="seed",
                             dtype="float64", cell=cell)
    return graph, shared


def finite_difference_error(cell, n_in: int = 3, n_hidden: int = 4, n_out: int = 3,
                            n_steps: int = 4, batch: int = 3, eps: float = 1e-6,
                            seed: int = 0) -> float:
    """The reference's gradients against central finite differences of its loss, in float64 at
    a small batched shape with ragged lengths: the largest error relative to each gradient's
    scale (``max|fd - grad| / max|grad|``), over every parameter."""
    rng = np.random.default_rng(seed)
    shapes = param_shapes(n_in, n_hidden, n_out, cell)
    params = {k: rng.normal(0, 0.5, s) for k, s in shapes.items()}
    x = rng.standard_normal((n_steps, batch, n_in))
    y = rng.integers(0, n_out, batch)
    lengths = np.array([n_steps, 1, n_steps - 1][:batch])
    graph, shared = _graph(cell, params, True)
    names = param_names(cell)
    inputs = graph.inputs(with_y=True)
    loss = pytensor.function(inputs, graph.loss, mode=REFERENCE_MODE)
    grads = pytensor.function(inputs, [graph.grads[k] for k in names], mode=REFERENCE_MODE)
    worst = 0.0
    for name, grad in zip(names, grads(x, lengths, y)):
        value = shared[name].get_value()
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                bumped = value.copy()
                bumped[index] += sign * eps
                shared[name].set_value(bumped)
                numeric[index] += sign * float(loss(x, lengths, y)) / (2 * eps)
        shared[name].set_value(value)
        scale = float(np.max(np.abs(grad))) or 1.0
        worst = max(worst, float(np.max(np.abs(numeric - grad))) / scale)
    return worst
