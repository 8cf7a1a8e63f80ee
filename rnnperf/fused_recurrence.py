"""The hoisted recurrence's two loops as C kernels for PyTensor's C backend.

# Why
On the C backend a ``Scan`` step is a trip through scan's Cython loop and the inner CVM: per
step it checks and allocates the inner outputs, calls one thunk per inner op, and broadcasts the
backward injection with PyTensor's strided scalar loop (2-5 ns per element). At the reference
workload (T=100, B=32, H=256) that is 53 us per forward step and 82 us per backward step around
a 25-33 us GEMM (``docs/performance.md``). These two ops run each loop in C with nothing but
the work in it: per step one BLAS GEMM, one memcpy and one vectorised elementwise pass.

    forward:   h_t = tanh(xw_t + h_{t-1} Whh^T)                       t = 0 .. T-1
    backward:  dh  = 0
               for t = T-1 .. 0:
                   dh   += g_b  for each b whose final state is h_t   (t = last_b)
                   dh   += dH_t                                       (when every state is read)
                   da_t  = dh * (1 - h_t^2)
                   dh    = da_t Whh
               returns da (every step) and dh (the gradient of h_0)

Rows are C-contiguous ``(B, H)`` blocks; BLAS is column-major, so ``h Whh^T`` is the GEMM
``Whh (col-major view Whh^T, op T) x h^T`` and ``da Whh`` is ``Whh^T (op N) x da^T``. The BLAS
is the one PyTensor links (``blas__ldflags``), with PyTensor's own declarations. ``tanh`` is a
plain loop that gcc vectorises with glibc's libmvec under ``-D__FAST_MATH__`` (see
``vector_math_cxxflags``), the same flag and the same functions as PyTensor's Elemwise.

The gradient of these ops is :mod:`rnnperf.hoisted`'s pullback (the backward op *is* that
pullback's loop); each op also has a NumPy ``perform`` so that the graph runs anywhere and the
C code is checked against it.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.tensor.blas_c import BaseBLAS
from pytensor.tensor.blas_headers import blas_header_version

_GEMM = {"float32": ("sgemm_", "tanhf"), "float64": ("dgemm_", "tanh")}


def _steps(states_ndim: int, shape) -> tuple[int, int, int]:
    """``(T, B, H)`` of a ``(T, B, H)`` or single-sequence ``(T, H)`` block of states."""
    if states_ndim == 3:
        return shape[0], shape[1], shape[2]
    return shape[0], 1, shape[1]


def _contiguous(names: list[str]) -> str:
    """C: a C-contiguous new reference ``c_<name>`` for each input (released in ``_release``)."""
    return "\n".join(f"PyArrayObject* c_{n} = (PyArrayObject*)PyArray_GETCONTIGUOUS({n});"
                     for n in names)


def _release(names: list[str]) -> str:
    return "\n".join(f"Py_XDECREF(c_{n});" for n in names)


def _ensure_output(out: str, ndim: str, dims: str, typenum: str) -> str:
    """C: reuse ``out`` when it has the wanted shape and is C-contiguous, else allocate it."""
    return f"""
    if ({out} == NULL || PyArray_NDIM({out}) != {ndim} || !PyArray_IS_C_CONTIGUOUS({out})
        || !PyArray_CompareLists(PyArray_DIMS({out}), {dims}, {ndim})) {{
        Py_XDECREF({out});
        {out} = (PyArrayObject*)PyArray_EMPTY({ndim}, {dims}, {typenum}, 0);
    }}
    if ({out} == NULL) {{ err = 1; goto done; }}
    """


class ElmanRecurrence(BaseBLAS):
    """Every state of ``h_t = tanh(xw_t + h_{t-1} Whh^T)``: ``(xw, h0, Whh) -> states``."""

    __props__ = ()

    def make_node(self, xw, h0, whh):
        xw, h0, whh = (pt.as_tensor_variable(v) for v in (xw, h0, whh))
        if xw.ndim not in (2, 3) or h0.ndim != xw.ndim - 1 or whh.ndim != 2:
            raise TypeError("ElmanRecurrence: want xw (T,[B,]H), h0 ([B,]H), Whh (H,H)")
        if len({xw.dtype, h0.dtype, whh.dtype}) != 1 or xw.dtype not in _GEMM:
            raise TypeError("ElmanRecurrence: xw, h0 and Whh must share float32 or float64")
        return Apply(self, [xw, h0, whh], [xw.type()])

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def perform(self, node, inputs, outputs):
        xw, h0, whh = inputs
        states = np.empty_like(xw)
        h = h0
        for t in range(xw.shape[0]):
            h = states[t] = np.tanh(xw[t] + h @ whh.T)
        outputs[0][0] = states

    def c_code_cache_version(self):
        return (1, *blas_header_version())

    def c_code(self, node, name, inputs, outputs, sub):
        xw, h0, whh = inputs
        (out,) = outputs
        gemm, tanh = _GEMM[node.inputs[0].dtype]
        ctype = f"dtype_{out}"
        names = [xw, h0, whh]
        return f"""
        {{
        int err = 0;
        {_contiguous(names)}
        if (!c_{xw} || !c_{h0} || !c_{whh}) {{ err = 1; goto done; }}
        {{
        const int nd = PyArray_NDIM(c_{xw});
        const npy_intp T = PyArray_DIMS(c_{xw})[0];
        const npy_intp B = nd == 3 ? PyArray_DIMS(c_{xw})[1] : 1;
        const npy_intp H = PyArray_DIMS(c_{xw})[nd - 1];
        if (PyArray_DIMS(c_{whh})[0] != H || PyArray_DIMS(c_{whh})[1] != H
            || PyArray_SIZE(c_{h0}) != B * H) {{
            PyErr_Format(PyExc_ValueError, "ElmanRecurrence: xw (T,B,%%ld) needs Whh "
                         "(%%ld,%%ld) and h0 (B,%%ld)", (long)H, (long)H, (long)H, (long)H);
            err = 1; goto done;
        }}
        {_ensure_output(out, "nd", f"PyArray_DIMS(c_{xw})", f"PyArray_TYPE(c_{xw})")}
        {{
        const {ctype}* xs = (const {ctype}*)PyArray_DATA(c_{xw});
        const {ctype}* w = (const {ctype}*)PyArray_DATA(c_{whh});
        {ctype}* states = ({ctype}*)PyArray_DATA({out});
        const {ctype}* prev = (const {ctype}*)PyArray_DATA(c_{h0});
        const npy_intp n = B * H;
        int iH = (int)H, iB = (int)B;
        {ctype} one = 1;
        char opT = 'T', opN = 'N';
        for (npy_intp t = 0; t < T; ++t) {{
            {ctype}* s = states + t * n;
            memcpy(s, xs + t * n, n * sizeof({ctype}));
            if (n > 0)
                {gemm}(&opT, &opN, &iH, &iB, &iH, &one, w, &iH, prev, &iH, &one, s, &iH);
            for (npy_intp i = 0; i < n; ++i) s[i] = {tanh}(s[i]);
            prev = s;
        }}
        }}
        }}
        done:
        {_release(names)}
        if (err) {{ {sub['fail']} }}
        }}
        """

class ElmanRecurrenceGrad(BaseBLAS):
    """The backward loop: ``(states, Whh, g, last[, dstates]) -> (da, dh0)``.

    ``g[b]`` is the gradient of sequence b's final state ``states[last[b], b]``; ``dstates``
    (with ``with_dstates``) the gradient of every state.
    """

    __props__ = ("with_dstates",)

    def __init__(self, with_dstates: bool = False):
        self.with_dstates = bool(with_dstates)

    def make_node(self, states, whh, g, last, dstates=None):
        states, whh, g, last = (pt.as_tensor_variable(v) for v in (states, whh, g, last))
        inputs = [states, whh, g, last]
        if self.with_dstates:
            inputs.append(pt.as_tensor_variable(dstates))
        if states.ndim not in (2, 3) or g.ndim != states.ndim - 1 or last.ndim != 1:
            raise TypeError("ElmanRecurrenceGrad: want states (T,[B,]H), g ([B,]H), last (B,)")
        if last.dtype != "int64":
            raise TypeError("ElmanRecurrenceGrad: last must be int64")
        return Apply(self, inputs, [states.type(), g.type()])

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[2]]

    def perform(self, node, inputs, outputs):
        states, whh, g, last = inputs[:4]
        dstates = inputs[4] if self.with_dstates else None
        T, B, H = _steps(states.ndim, states.shape)
        hs = states.reshape(T, B, H)
        gs = g.reshape(B, H)
        da = np.empty_like(hs)
        dh = np.zeros((B, H), dtype=states.dtype)
        for t in range(T - 1, -1, -1):
            dh[last == t] += gs[last == t]
            if dstates is not None:
                dh += dstates.reshape(T, B, H)[t]
            da[t] = dh * (1 - hs[t] * hs[t])
            dh = da[t] @ whh
        outputs[0][0] = da.reshape(states.shape)
        outputs[1][0] = dh.reshape(g.shape)

    def c_code_cache_version(self):
        return (1, *blas_header_version())

    def c_code(self, node, name, inputs, outputs, sub):
        states, whh, g, last = inputs[:4]
        dstates = inputs[4] if self.with_dstates else None
        da_out, dh_out = outputs
        gemm, _ = _GEMM[node.inputs[0].dtype]
        ctype = f"dtype_{da_out}"
        names = [n for n in (states, whh, g, last, dstates) if n is not None]
        add_dstates = (f"const {ctype}* ds = (const {ctype}*)PyArray_DATA(c_{dstates}) + t * n;"
                       f"for (npy_intp i = 0; i < n; ++i) dh[i] += ds[i];"
                       if dstates else "")
        check_dstates = (f"|| PyArray_SIZE(c_{dstates}) != T * n" if dstates else "")
        return f"""
        {{
        int err = 0;
        {_contiguous(names)}
        if ({" || ".join(f"!c_{n}" for n in names)}) {{ err = 1; goto done; }}
        {{
        const int nd = PyArray_NDIM(c_{states});
        const npy_intp T = PyArray_DIMS(c_{states})[0];
        const npy_intp B = nd == 3 ? PyArray_DIMS(c_{states})[1] : 1;
        const npy_intp H = PyArray_DIMS(c_{states})[nd - 1];
        const npy_intp n = B * H;
        if (PyArray_DIMS(c_{whh})[0] != H || PyArray_DIMS(c_{whh})[1] != H
            || PyArray_SIZE(c_{g}) != n || PyArray_SIZE(c_{last}) != B {check_dstates}) {{
            PyErr_SetString(PyExc_ValueError, "ElmanRecurrenceGrad: states (T,B,H) need "
                            "Whh (H,H), g (B,H), last (B,) and dstates (T,B,H)");
            err = 1; goto done;
        }}
        {_ensure_output(da_out, "nd", f"PyArray_DIMS(c_{states})", f"PyArray_TYPE(c_{states})")}
        {_ensure_output(dh_out, "nd - 1", f"PyArray_DIMS(c_{g})", f"PyArray_TYPE(c_{g})")}
        {{
        const {ctype}* hs = (const {ctype}*)PyArray_DATA(c_{states});
        const {ctype}* w = (const {ctype}*)PyArray_DATA(c_{whh});
        const {ctype}* gs = (const {ctype}*)PyArray_DATA(c_{g});
        const npy_int64* lastp = (const npy_int64*)PyArray_DATA(c_{last});
        {ctype}* da = ({ctype}*)PyArray_DATA({da_out});
        {ctype}* dh = ({ctype}*)PyArray_DATA({dh_out});
        int iH = (int)H, iB = (int)B;
        {ctype} one = 1, zero = 0;
        char opN = 'N';
        memset(dh, 0, n * sizeof({ctype}));
        for (npy_intp t = T - 1; t >= 0; --t) {{
            const {ctype}* h = hs + t * n;
            {ctype}* dat = da + t * n;
            for (npy_intp b = 0; b < B; ++b)
                if (lastp[b] == t)
                    for (npy_intp j = 0; j < H; ++j) dh[b * H + j] += gs[b * H + j];
            {add_dstates}
            for (npy_intp i = 0; i < n; ++i) dat[i] = dh[i] * (one - h[i] * h[i]);
            if (n > 0)
                {gemm}(&opN, &opN, &iH, &iB, &iH, &one, w, &iH, dat, &iH, &zero, dh, &iH);
        }}
        }}
        }}
        done:
        {_release(names)}
        if (err) {{ {sub['fail']} }}
        }}
        """
