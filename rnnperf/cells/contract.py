"""What a recurrent cell is to rnnperf: one required part, several optional ones.

Like Keras's ``RNN(cell)`` (any object with ``state_size`` and ``call``) and Flax's
``nn.RNNCellBase``, the model around a cell is fixed (``softmax(Why h_T + by)``, cross-entropy,
SGD) and the cell is the recurrence alone. elman, gru and lstm are cells under this contract
(:mod:`.elman`, :mod:`.gru`, :mod:`.lstm`); so is a user's class in a file of theirs
(:mod:`.user`). Everything else in rnnperf looks a cell's parts up on the object
(:data:`PARTS`) and never branches on its name.

Required (:data:`REQUIRED`):

* ``states``: the names of the carried states; the first is the ``h`` the softmax head reads.
  Every state has ``H`` units and starts at zero; a finished sequence's states stop changing
  (the seed formulation's mask).
* ``param_shapes(n_in, n_hidden) -> {name: shape}``: the recurrent parameters. The head's
  ``Why``, ``by`` are the model's and may not be named here.
* ``step(T, x_t, states, params) -> new states``: one step, written once against ``T``, the
  engine library's tensor namespace (``pytensor.tensor``; on legacy Theano 1.0.5 a namespace with
  the same names, ``T.sigmoid`` included). ``x_t`` is ``(B, I)`` or a single ``(I,)``, each state
  ``(B, H)`` or ``(H,)``; ``params`` maps each recurrent parameter's name to its variable and
  carries ``params.shapes``, their numeric shapes (for slices with constant bounds, which JAX's
  conversion needs). It returns one new state per name in ``states``, in order.

Optional, each an attribute or method the cell may have (:data:`OPTIONAL`):

* ``init(shapes, rng, dtype) -> {name: array}``: default :func:`default_init` (weights
  ``randn * 0.01``, names starting with ``b`` zero, drawn from one generator in order);
* ``param_order``: every parameter's name, the head's included, in the order gradients, updates
  and the initial draws follow (default: the recurrent ones, then ``Why``, ``by``);
* ``flops(task, T, B, I, H, O) -> int``: the matrix-product FLOPs of one timed step (default:
  counted from the step's graph, :mod:`rnnperf.model.graph_flops`);
* ``oracle_step`` and ``oracle_backward``: a hand-written float64 forward step and BPTT
  (:mod:`rnnperf.model.oracle`'s interface); without them the reference is the step's own graph
  in float64 on PyTensor's pure-Python linker (:mod:`rnnperf.model.reference`);
* ``hoisted_last_state``: the hoisted formulation (one input GEMM, a hand-written pullback),
  and ``fused_ops``, the names of its C kernels (:mod:`rnnperf.model.fused_cells`);
* ``torch_module`` and ``torch_bias_hh``: the ``torch`` peer's module and how its second bias maps;
* ``jax_step``: the ``jax`` peer's step;
* ``lr_scale``: ``rnnperf train``'s default learning rate as a multiple of the Elman cell's.
"""

from __future__ import annotations

import numpy as np

#: the required parts of a cell
REQUIRED = ("states", "param_shapes", "step")
#: the optional parts, by what needs them: a formulation or engine that needs a part the cell
#: lacks refuses it in one line (:func:`rnnperf.cells.refusal`)
OPTIONAL = ("init", "param_order", "flops", "oracle_step", "oracle_backward",
            "hoisted_last_state", "fused_ops", "torch_module", "torch_bias_hh", "jax_step",
            "lr_scale")
PARTS = REQUIRED + OPTIONAL
#: the model's own parameters: the softmax head, whatever the cell
HEAD = ("Why", "by")


class StepParams(dict):
    """The recurrent parameters a step reads, by name, with ``shapes``: their numeric shapes."""

    def __init__(self, values, shapes):
        super().__init__(values)
        self.shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}


def default_init(shapes: dict, rng, dtype) -> dict:
    """The tutorial's initialisation: weights ``randn * 0.01``, biases (names starting with
    ``b``) zero, drawn in float64 in ``shapes``' order and then cast, so a float32 and a float64
    model of one seed are the same numbers up to rounding (parity depends on it)."""
    out = {}
    for name, shape in shapes.items():
        if name.startswith("b"):
            out[name] = np.zeros(shape, dtype=dtype)
        else:
            out[name] = (rng.standard_normal(shape) * 0.01).astype(dtype)
    return out


class Cell:
    """The base of rnnperf's cells (a user's class need not subclass it; :mod:`.user` adopts
    any object with the required parts). ``name`` is the ``cell=`` value that selects it;
    ``source`` and ``sha256`` say which file a user's cell came from (None for a built-in)."""

    name = ""
    states: tuple[str, ...] = ("h",)
    source: str | None = None
    sha256: str | None = None
    lr_scale = 1.0

    def param_shapes(self, n_in: int, n_hidden: int) -> dict:
        raise NotImplementedError

    def step(self, T, x_t, states, params):
        raise NotImplementedError

    @property
    def builtin(self) -> bool:
        return self.source is None

    def has(self, part: str) -> bool:
        """Whether the cell has ``part`` (an optional part set to None counts as absent)."""
        return getattr(self, part, None) is not None

    def all_param_names(self, n_in: int = 1, n_hidden: int = 1) -> tuple[str, ...]:
        """Every parameter, the head's included, in the order updates and draws follow."""
        order = getattr(self, "param_order", None)
        if order:
            return tuple(order)
        return tuple(self.param_shapes(n_in, n_hidden)) + HEAD

    def torch_bias_hh(self, torch, bias_hh, n_hidden: int) -> dict:
        """The ``torch`` peer's second bias, which the seed folds into ``bh``: zero and frozen by
        default, so that it neither trains nor shows up as a parameter. Returns the parameters
        it holds, name -> its rows (none here; the GRU's ``bhn``)."""
        bias_hh.requires_grad_(False)
        return {}

    def record(self) -> dict:
        """What a results or parity document says of the cell."""
        out = {"name": self.name}
        if not self.builtin:
            out.update(source=self.source, sha256=self.sha256)
        return out


def gate(a, k: int, n_hidden: int):
    """Gate ``k``'s block of stacked pre-activations ``a`` (last axis ``G*H``), for a batched
    ``(B, G*H)`` or a single ``(G*H,)`` step, with constant bounds."""
    if a.ndim == 1:
        return a[k * n_hidden:(k + 1) * n_hidden]
    return a[:, k * n_hidden:(k + 1) * n_hidden]
