"""The GRU and LSTM recurrences' two loops as C kernels for PyTensor's C backend.

The same kernels as Elman's (:mod:`rnnperf.model.fused`, whose docstring says why a loop in C
beats a ``Scan`` and why threads split the batch's rows), for cells whose step is ``G`` gates wide
(:mod:`rnnperf.model.spec`): the step's product is ``h_{t-1} (rows, H) x Whh^T (H, G*H)`` forward
and ``da (rows, G*H) x Whh (G*H, H)`` backward, and the gates' maths runs on the rows the product
has just written. The C++ is :mod:`rnnperf.model.fused_cells_kernels`.

The loops run every step of every sequence (no mask): a sequence's final state is read at its
``last`` step, and the backward loop injects that state's gradient there, so the steps after it
get no gradient, as in Elman's kernels. Shapes are ``(T, B, ...)`` or, for a single sequence,
``(T, ...)``; ``h0``/``c0``/``g`` are ``(B, H)`` or ``(H,)``:

* ``LSTMRecurrence()(xw, h0, c0, Whh) -> (states, cells, gates)``: gates ``i, f, g, o`` after their
  nonlinearity; ``states[t]``, ``cells[t]`` are ``h_{t+1}``, ``c_{t+1}``.
* ``LSTMRecurrenceGrad(with_dstates)(states, cells, gates, h0, c0, Whh, g, last[, dstates])
  -> (da, dh0)``: ``da`` the gradient of every step's pre-activations.
* ``GRURecurrence()(xw, h0, Whh, bhn) -> (states, gates, hn)``: gates ``r, z, n``,
  ``hn[t] = h_t W_hn^T + bhn``.
* ``GRURecurrenceGrad(with_dstates)(states, gates, hn, h0, Whh, g, last[, dstates])
  -> (dxw, dhw, dh0)``: ``dhw`` is ``dxw`` but for the ``n`` block, ``dxw_n * r``.

Each op has a NumPy ``perform`` (the reference the C code is tested against) that counts its runs
(``perform_calls``), since PyTensor falls back to it silently where it cannot build a C thunk.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from .fused_cells_kernels import KERNELS, VERSION
from .fused_support import SUPPORT, TANH, RowParallelOp, contiguous, ensure_output, release
from ..cells.numeric import sigmoid

#: an input or output: (name, kind, width); kinds ``seq`` (T,[B,]W), ``row`` ([B,]W),
#: ``mat`` (G*H, H), ``vec`` (H,), ``last`` (B,) int64; widths ``H`` or ``G`` (G*H)
Arg = tuple[str, str, str]
_WANT = {"seq": "(T,[B,]{})", "row": "([B,]{})", "mat": "(GH,H)", "vec": "(H,)", "last": "(B,)"}


class _CellOp(RowParallelOp):
    """What the four ops share: the checks of ``make_node``, ``infer_shape`` and a C body that
    unpacks the arrays, checks their shapes, and calls the op's C++ ``KERNEL``."""

    GATES = 0                  # G: 4 for the LSTM, 3 for the GRU
    INPUTS: tuple[Arg, ...] = ()
    OUTPUTS: tuple[Arg, ...] = ()
    KERNEL = ""
    with_dstates = False

    def c_support_code(self, **kwargs):
        return SUPPORT + KERNELS

    def c_code_cache_version(self):
        return super().c_code_cache_version() + (VERSION,)

    def _inputs(self) -> tuple[Arg, ...]:
        return self.INPUTS + ((("dstates", "seq", "H"),) if self.with_dstates else ())

    def _signature(self) -> str:
        return ", ".join(f"{n} {_WANT[k].format(w.replace('G', 'GH'))}"
                         for n, k, w in self._inputs())

    def make_node(self, *args):
        spec = self._inputs()
        name = type(self).__name__
        if len(args) != len(spec):
            raise TypeError(f"{name}: want {len(spec)} inputs ({self._signature()}); "
                            f"got {len(args)}")
        inputs = [pt.as_tensor_variable(v) for v in args]
        nd = inputs[0].ndim
        ranks = {"seq": nd, "row": nd - 1, "mat": 2, "vec": 1, "last": 1}
        if nd not in (2, 3) or any(v.ndim != ranks[k] for v, (_, k, _) in zip(inputs, spec)):
            got = ", ".join(f"{n} {v.ndim}-D" for v, (n, _, _) in zip(inputs, spec))
            raise TypeError(f"{name}: want {self._signature()}; got {got}")
        floats = {n: v.dtype for v, (n, k, _) in zip(inputs, spec) if k != "last"}
        if len(set(floats.values())) != 1 or inputs[0].dtype not in TANH:
            got = ", ".join(f"{n} {d}" for n, d in floats.items())
            raise TypeError(f"{name}: the float inputs must share float32 or float64; got {got}")
        for v, (n, k, _) in zip(inputs, spec):
            if k == "last" and v.dtype != "int64":
                raise TypeError(f"{name}: {n} must be an int64 vector; got {v.dtype}")
        dtype = inputs[0].dtype
        outputs = [pt.tensor(dtype=dtype, shape=(None,) * ranks[k]) for _, k, _ in self.OUTPUTS]
        return Apply(self, inputs, outputs)

    def infer_shape(self, fgraph, node, shapes):
        spec = self._inputs()
        whh = shapes[next(i for i, (_, k, _) in enumerate(spec) if k == "mat")]
        steps = tuple(shapes[0][:-1])
        width = {"H": whh[1], "G": whh[0]}
        return [(steps if k == "seq" else steps[1:]) + (width[w],) for _, k, w in self.OUTPUTS]

    def c_code(self, node, name, inputs, outputs, sub):
        return _c_code(self, inputs, outputs, sub)


def _c_code(op: _CellOp, inputs, outputs, sub) -> str:
    """C: contiguous inputs, T, B, H from the first input and ``Whh``, every shape checked,
    outputs reused or allocated, then ``op.KERNEL<dtype>(T, B, H, inputs..., outputs...)``."""
    spec = op._inputs()
    ctype = f"dtype_{outputs[0]}"
    whh = inputs[next(i for i, (_, k, _) in enumerate(spec) if k == "mat")]
    bad = []
    for var, (_, kind, w) in zip(inputs, spec):
        width = "H" if w == "H" else "GH"
        bad.append({"seq": f"!rnnperf_shape_is(c_{var}, nd, T, B, {width}, 0)",
                    "row": f"!rnnperf_shape_is(c_{var}, nd, T, B, {width}, 1)",
                    "mat": f"PyArray_DIMS(c_{var})[0] != GH",
                    "vec": f"PyArray_DIMS(c_{var})[0] != H",
                    "last": f"PyArray_DIMS(c_{var})[0] != B"}[kind])
    allocate = []
    for i, (out, (_, kind, w)) in enumerate(zip(outputs, op.OUTPUTS)):
        width, row = ("H" if w == "H" else "GH"), int(kind == "row")
        allocate.append(f"npy_intp d_{i}[3]; rnnperf_dims(nd, T, B, {width}, d_{i});"
                        + ensure_output(out, f"nd - {row}", f"d_{i} + {row}",
                                        f"PyArray_TYPE(c_{inputs[0]})"))
    args = [f"(const npy_int64*)PyArray_DATA(c_{v})" if k == "last"
            else f"(const {ctype}*)PyArray_DATA(c_{v})" for v, (_, k, _) in zip(inputs, spec)]
    if any(k == "last" for _, k, _ in spec) and not op.with_dstates:
        args.append(f"(const {ctype}*)NULL")
    args += [f"({ctype}*)PyArray_DATA({out})" for out in outputs]
    op_name = type(op).__name__
    unique = list(dict.fromkeys(inputs))    # the graph may pass one variable twice (h0 is c0)
    return f"""
    {{
    int err = 0;
    {contiguous(unique)}
    if ({" || ".join(f"!c_{n}" for n in unique)}) {{ err = 1; goto done; }}
    {{
    const int nd = PyArray_NDIM(c_{inputs[0]});
    const npy_intp T = PyArray_DIMS(c_{inputs[0]})[0];
    const npy_intp B = nd == 3 ? PyArray_DIMS(c_{inputs[0]})[1] : 1;
    const npy_intp H = PyArray_DIMS(c_{whh})[1];
    const npy_intp GH = {op.GATES} * H;
    if ({" || ".join(bad)}) {{
        PyErr_SetString(PyExc_ValueError, "{op_name}: shapes disagree; want {op._signature()}");
        err = 1; goto done;
    }}
    {"".join(allocate)}
    if ({op.KERNEL}<{ctype}>(T, B, H, {", ".join(args)})) {{
        PyErr_NoMemory(); err = 1; goto done;
    }}
    }}
    done:
    {release(unique)}
    if (err) {{ {sub['fail']} }}
    }}
    """


def _batched(x, nd, row=False):
    """A single sequence's arrays as a batch of one, so that perform has one code path."""
    if nd == 3:
        return x
    return x[None] if row else x[:, None]


class LSTMRecurrence(_CellOp):
    """Every step of the LSTM: ``(xw, h0, c0, Whh) -> (states, cells, gates)``."""

    __props__ = ()
    GATES, KERNEL = 4, "rnnperf_lstm_forward"
    INPUTS = (("xw", "seq", "G"), ("h0", "row", "H"), ("c0", "row", "H"), ("Whh", "mat", "H"))
    OUTPUTS = (("states", "seq", "H"), ("cells", "seq", "H"), ("gates", "seq", "G"))
    #: runs of the NumPy ``perform`` in this process (0 while only the C code ran)
    perform_calls = 0

    def perform(self, node, inputs, outputs):
        LSTMRecurrence.perform_calls += 1
        xw, h0, c0, whh = inputs
        nd = xw.ndim
        xw, h, c = _batched(xw, nd), _batched(h0, nd, True), _batched(c0, nd, True)
        H = whh.shape[1]
        states, cells, gates = (np.empty(xw.shape[:2] + (w,), xw.dtype) for w in (H, H, 4 * H))
        for t in range(xw.shape[0]):
            a = xw[t] + h @ whh.T
            i, f, g, o = (sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]),
                          sigmoid(a[:, 3 * H:]))
            gates[t] = np.concatenate([i, f, g, o], axis=-1)
            c = cells[t] = f * c + i * g
            h = states[t] = o * np.tanh(c)
        for out, value in zip(outputs, (states, cells, gates)):
            out[0] = value if nd == 3 else value[:, 0]


class LSTMRecurrenceGrad(_CellOp):
    """The LSTM's backward loop: ``(states, cells, gates, h0, c0, Whh, g, last[, dstates]) ->
    (da, dh0)``; ``g[b]`` is the gradient of ``states[last[b], b]``."""

    __props__ = ("with_dstates",)
    GATES, KERNEL = 4, "rnnperf_lstm_backward"
    INPUTS = (("states", "seq", "H"), ("cells", "seq", "H"), ("gates", "seq", "G"),
              ("h0", "row", "H"), ("c0", "row", "H"), ("Whh", "mat", "H"), ("g", "row", "H"),
              ("last", "last", ""))
    OUTPUTS = (("da", "seq", "G"), ("dh0", "row", "H"))
    perform_calls = 0

    def __init__(self, with_dstates: bool = False):
        super().__init__()
        self.with_dstates = bool(with_dstates)

    def perform(self, node, inputs, outputs):
        LSTMRecurrenceGrad.perform_calls += 1
        states, cells, gates, _, c0, whh, g, last = inputs[:8]
        nd = states.ndim
        cells, gates, c0 = _batched(cells, nd), _batched(gates, nd), _batched(c0, nd, True)
        ds = _batched(inputs[8], nd) if self.with_dstates else None
        T, B, H = cells.shape
        da = np.empty_like(gates)
        dh = np.zeros((B, H), dtype=cells.dtype)
        dc = np.zeros_like(dh)
        for t in range(T - 1, -1, -1):
            dh = _inject(dh, t, last, _batched(g, nd, True), ds)
            i, f, gg, o = np.split(gates[t], 4, axis=-1)
            c_prev = cells[t - 1] if t > 0 else c0
            tanh_c = np.tanh(cells[t])
            dc = dc + dh * o * (1 - tanh_c ** 2)
            da[t] = np.concatenate([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f),
                                    dc * i * (1 - gg ** 2), dh * tanh_c * o * (1 - o)], axis=-1)
            dc = dc * f
            dh = da[t] @ whh
        outputs[0][0] = da if nd == 3 else da[:, 0]
        outputs[1][0] = dh if nd == 3 else dh[0]


class GRURecurrence(_CellOp):
    """Every step of the GRU: ``(xw, h0, Whh, bhn) -> (states, gates, hn)``."""

    __props__ = ()
    GATES, KERNEL = 3, "rnnperf_gru_forward"
    INPUTS = (("xw", "seq", "G"), ("h0", "row", "H"), ("Whh", "mat", "H"), ("bhn", "vec", "H"))
    OUTPUTS = (("states", "seq", "H"), ("gates", "seq", "G"), ("hn", "seq", "H"))
    perform_calls = 0

    def perform(self, node, inputs, outputs):
        GRURecurrence.perform_calls += 1
        xw, h0, whh, bhn = inputs
        nd = xw.ndim
        xw, h = _batched(xw, nd), _batched(h0, nd, True)
        H = whh.shape[1]
        states, gates, hns = (np.empty(xw.shape[:2] + (w,), xw.dtype) for w in (H, 3 * H, H))
        for t in range(xw.shape[0]):
            xr, xz, xn = np.split(xw[t], 3, axis=-1)
            hr, hz, hn = np.split(h @ whh.T, 3, axis=-1)
            hn = hns[t] = hn + bhn
            r, z = sigmoid(xr + hr), sigmoid(xz + hz)
            n = np.tanh(xn + r * hn)
            gates[t] = np.concatenate([r, z, n], axis=-1)
            h = states[t] = (1 - z) * n + z * h
        for out, value in zip(outputs, (states, gates, hns)):
            out[0] = value if nd == 3 else value[:, 0]


class GRURecurrenceGrad(_CellOp):
    """The GRU's backward loop: ``(states, gates, hn, h0, Whh, g, last[, dstates]) ->
    (dxw, dhw, dh0)``; ``g[b]`` is the gradient of ``states[last[b], b]``."""

    __props__ = ("with_dstates",)
    GATES, KERNEL = 3, "rnnperf_gru_backward"
    INPUTS = (("states", "seq", "H"), ("gates", "seq", "G"), ("hn", "seq", "H"),
              ("h0", "row", "H"), ("Whh", "mat", "H"), ("g", "row", "H"), ("last", "last", ""))
    OUTPUTS = (("dxw", "seq", "G"), ("dhw", "seq", "G"), ("dh0", "row", "H"))
    perform_calls = 0

    def __init__(self, with_dstates: bool = False):
        super().__init__()
        self.with_dstates = bool(with_dstates)

    def perform(self, node, inputs, outputs):
        GRURecurrenceGrad.perform_calls += 1
        states, gates, hns, h0, whh, g, last = inputs[:7]
        nd = states.ndim
        states, gates, hns = _batched(states, nd), _batched(gates, nd), _batched(hns, nd)
        ds = _batched(inputs[7], nd) if self.with_dstates else None
        T, B, H = states.shape
        dxw, dhw = np.empty_like(gates), np.empty_like(gates)
        dh = np.zeros((B, H), dtype=states.dtype)
        for t in range(T - 1, -1, -1):
            dh = _inject(dh, t, last, _batched(g, nd, True), ds)
            r, z, n = np.split(gates[t], 3, axis=-1)
            h_prev = states[t - 1] if t > 0 else _batched(h0, nd, True)
            dan = dh * (1 - z) * (1 - n ** 2)
            dar = dan * hns[t] * r * (1 - r)
            daz = dh * (h_prev - n) * z * (1 - z)
            dxw[t] = np.concatenate([dar, daz, dan], axis=-1)
            dhw[t] = np.concatenate([dar, daz, dan * r], axis=-1)
            dh = dh * z + dhw[t] @ whh
        for out, value in zip(outputs, (dxw, dhw)):
            out[0] = value if nd == 3 else value[:, 0]
        outputs[2][0] = dh if nd == 3 else dh[0]


def _inject(dh, t, last, g, dstates):
    """``dh`` plus the gradients read at step ``t``: ``g[b]`` where ``last[b] == t``, and
    ``dstates[t]``."""
    dh = dh + np.where((last == t)[:, None], g, 0)
    return dh if dstates is None else dh + dstates[t]
