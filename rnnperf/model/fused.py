"""The hoisted recurrence's two loops as C kernels for PyTensor's C backend.

# Why
On the C backend a ``Scan`` step is a trip through scan's Cython loop and the inner CVM: per
step it checks and allocates the inner outputs, calls one thunk per inner op, and broadcasts the
backward injection with PyTensor's strided scalar loop: at the reference workload that overhead
is larger than the step's arithmetic (docs/performance.md has the figures). These two ops run
each loop in C with nothing but the work in it:

    forward:   h_t = tanh(xw_t + h_{t-1} Whh^T)                       t = 0 .. T-1
    backward:  dh  = 0
               for t = T-1 .. 0:
                   dh   += g_b  for each b whose final state is h_t   (t = last_b)
                   dh   += dH_t                                       (when every state is read)
                   da_t  = dh * (1 - h_t^2)
                   dh    = da_t Whh
               returns da (every step) and dh (the gradient of h_0)

# The product inside the loop
Each step's product is small, ``(B, H) x (H, H)`` = 4 MFLOP at RW. OpenBLAS's threads meet at every
call, and on a shared box a late thread stalls the step, so a BLAS call per step is both slower and
noisier (docs/performance.md, "What each lever gave"). But the rows of a batch never mix in an Elman
recurrence: row b of ``h_t`` needs only row b of ``h_{t-1}``. So each thread (OpenMP, ``threads=``)
takes a block of rows through *all* T steps and the threads meet once per loop, not once per step;
each runs its own register-blocked product (8 rows x 2 vectors of accumulators, gcc vector
extensions, 512-bit where the CPU has AVX-512), faster on one core than OpenBLAS's product, with the
step's tanh included. ``tanh`` is a plain loop that gcc vectorises with glibc's libmvec under
``-D__FAST_MATH__`` (see ``vector_math_cxxflags``), the same flag and functions as PyTensor's
Elemwise. No BLAS is needed. The weight is packed once per call into contiguous column panels
(``rnnperf_pack_panels``): read in place, rows of a 1024-wide ``Whh^T`` are 4 KB apart and a
panel that fits L2 by size does not stay there.

A batch smaller than a register block (B < 8) gives a row split one thread and a product that
is a matrix-vector product, bound by how fast ``Whh`` streams from cache. There the threads
split each step's *columns* instead and meet once per step (``rnnperf_step_barrier``, a spinning
barrier that hands the rest of the loop to one thread when a meeting shows the other was not
running: a busy machine); small loops (``rnnperf_col_threads``) stay on one thread.

The gradient of these ops is :mod:`rnnperf.model.hoisted`'s pullback (the backward op *is* that
pullback's loop); each op also has a NumPy ``perform`` so that the graph runs anywhere and the
C code is checked against it.

PyTensor falls back to ``perform`` silently where it cannot make a C thunk, so each op counts its
``perform`` runs (``perform_calls``); parity's ``c_kernels`` checks that (and the thunks).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from .fused_support import (TANH, RowParallelOp, contiguous, ensure_output, release, steps)

#: this module's checksum: its C templates are in it (RowParallelOp.c_code_cache_version)
_SOURCE_CRC = zlib.crc32(Path(__file__).read_bytes())


class ElmanRecurrence(RowParallelOp):
    """Every state of ``h_t = tanh(xw_t + h_{t-1} Whh^T)``: ``(xw, h0, Whh) -> states``."""

    __props__ = ()
    #: runs of the NumPy ``perform`` in this process (0 while only the C code ran)
    perform_calls = 0

    def make_node(self, xw, h0, whh):
        xw, h0, whh = (pt.as_tensor_variable(v) for v in (xw, h0, whh))
        if xw.ndim not in (2, 3) or h0.ndim != xw.ndim - 1 or whh.ndim != 2:
            raise TypeError("ElmanRecurrence: want xw (T,[B,]H), h0 ([B,]H), Whh (H,H)")
        if len({xw.dtype, h0.dtype, whh.dtype}) != 1 or xw.dtype not in TANH:
            raise TypeError("ElmanRecurrence: xw, h0 and Whh must share float32 or float64")
        return Apply(self, [xw, h0, whh], [xw.type()])

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def c_code_cache_version(self):
        return super().c_code_cache_version() + (_SOURCE_CRC,)

    def perform(self, node, inputs, outputs):
        ElmanRecurrence.perform_calls += 1
        xw, h0, whh = inputs
        states = np.empty_like(xw)
        h = h0
        for t in range(xw.shape[0]):
            h = states[t] = np.tanh(xw[t] + h @ whh.T)
        outputs[0][0] = states

    def c_code(self, node, name, inputs, outputs, sub):
        xw, h0, whh = inputs
        (out,) = outputs
        tanh = TANH[node.inputs[0].dtype]
        ctype = f"dtype_{out}"
        names = [xw, h0, whh]
        return f"""
        {{
        int err = 0;
        {contiguous(names)}
        if (!c_{xw} || !c_{h0} || !c_{whh}) {{ err = 1; goto done; }}
        {{
        const int nd = PyArray_NDIM(c_{xw});
        const npy_intp T = PyArray_DIMS(c_{xw})[0];
        const npy_intp B = nd == 3 ? PyArray_DIMS(c_{xw})[1] : 1;
        const npy_intp H = PyArray_DIMS(c_{xw})[nd - 1];
        if (PyArray_DIMS(c_{whh})[0] != H || PyArray_DIMS(c_{whh})[1] != H
            || PyArray_SIZE(c_{h0}) != B * H) {{
            PyErr_Format(PyExc_ValueError, "ElmanRecurrence: xw (T,B,%ld) needs Whh "
                         "(%ld,%ld) and h0 (B,%ld)", (long)H, (long)H, (long)H, (long)H);
            err = 1; goto done;
        }}
        {ensure_output(out, "nd", f"PyArray_DIMS(c_{xw})", f"PyArray_TYPE(c_{xw})")}
        {{
        const {ctype}* xs = (const {ctype}*)PyArray_DATA(c_{xw});
        const {ctype}* w = (const {ctype}*)PyArray_DATA(c_{whh});
        {ctype}* states = ({ctype}*)PyArray_DATA({out});
        const {ctype}* prev = (const {ctype}*)PyArray_DATA(c_{h0});
        const npy_intp n = B * H;
        {_forward_loops(ctype, tanh)}
        }}
        }}
        done:
        {release(names)}
        if (err) {{ {sub['fail']} }}
        }}
        """

class ElmanRecurrenceGrad(RowParallelOp):
    """The backward loop: ``(states, Whh, g, last[, dstates]) -> (da, dh0)``.

    ``g[b]`` is the gradient of sequence b's final state ``states[last[b], b]``; ``dstates``
    (with ``with_dstates``) the gradient of every state.
    """

    __props__ = ("with_dstates",)
    #: runs of the NumPy ``perform`` in this process (0 while only the C code ran)
    perform_calls = 0

    def __init__(self, with_dstates: bool = False):
        super().__init__()
        self.with_dstates = bool(with_dstates)

    def make_node(self, states, whh, g, last, dstates=None):
        if (dstates is not None) != self.with_dstates:
            raise TypeError(f"ElmanRecurrenceGrad(with_dstates={self.with_dstates}): dstates "
                            f"{'missing' if dstates is None else 'given'}")
        inputs = [pt.as_tensor_variable(v) for v in (states, whh, g, last)
                  + ((dstates,) if self.with_dstates else ())]
        _check_grad_inputs(*inputs)
        return Apply(self, inputs, [inputs[0].type(), inputs[2].type()])

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[2]]

    def c_code_cache_version(self):
        return super().c_code_cache_version() + (_SOURCE_CRC,)

    def perform(self, node, inputs, outputs):
        ElmanRecurrenceGrad.perform_calls += 1
        states, whh, g, last = inputs[:4]
        dstates = inputs[4] if self.with_dstates else None
        T, B, H = steps(states.ndim, states.shape)
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

    def c_code(self, node, name, inputs, outputs, sub):
        states, whh, g, last = inputs[:4]
        dstates = inputs[4] if self.with_dstates else None
        da_out, dh_out = outputs
        ctype = f"dtype_{da_out}"
        names = [n for n in (states, whh, g, last, dstates) if n is not None]
        check_dstates = f"|| PyArray_SIZE(c_{dstates}) != T * n" if dstates else ""
        return f"""
        {{
        int err = 0;
        {contiguous(names)}
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
        {ensure_output(da_out, "nd", f"PyArray_DIMS(c_{states})", f"PyArray_TYPE(c_{states})")}
        {ensure_output(dh_out, "nd - 1", f"PyArray_DIMS(c_{g})", f"PyArray_TYPE(c_{g})")}
        {{
        const {ctype}* hs = (const {ctype}*)PyArray_DATA(c_{states});
        const {ctype}* w = (const {ctype}*)PyArray_DATA(c_{whh});
        const {ctype}* gs = (const {ctype}*)PyArray_DATA(c_{g});
        const npy_int64* lastp = (const npy_int64*)PyArray_DATA(c_{last});
        {ctype}* da = ({ctype}*)PyArray_DATA({da_out});
        {ctype}* dh = ({ctype}*)PyArray_DATA({dh_out});
        memset(dh, 0, n * sizeof({ctype}));
        {_backward_loops(ctype, dstates)}
        }}
        }}
        done:
        {release(names)}
        if (err) {{ {sub['fail']} }}
        }}
        """


def _check_grad_inputs(states, whh, g, last, dstates=None) -> None:
    """TypeError unless states (T,[B,]H), Whh (H,H), g ([B,]H) and dstates (like states) share
    float32 or float64, and last is an int64 vector (the C code reads ``npy_int64``)."""
    floats = {k: v for k, v in (("states", states), ("Whh", whh), ("g", g),
                                ("dstates", dstates)) if v is not None}
    if states.ndim not in (2, 3) or whh.ndim != 2 or g.ndim != states.ndim - 1 or last.ndim != 1 \
            or (dstates is not None and dstates.ndim != states.ndim):
        got = ", ".join(f"{k} {v.ndim}-D" for k, v in {**floats, "last": last}.items())
        raise TypeError("ElmanRecurrenceGrad: want states (T,[B,]H), Whh (H,H), g ([B,]H), "
                        f"last (B,) and dstates like states; got {got}")
    dtypes = {k: v.dtype for k, v in floats.items()}
    if len(set(dtypes.values())) != 1 or states.dtype not in TANH:
        got = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise TypeError("ElmanRecurrenceGrad: states, Whh, g and dstates must share float32 or "
                        f"float64; got {got}")
    if last.dtype != "int64":
        raise TypeError(f"ElmanRecurrenceGrad: last must be an int64 vector; got {last.dtype}")


def _forward_loops(ctype: str, tanh: str) -> str:
    """C: the forward loop, its columns split over threads for a batch smaller than a register
    block (a step per matrix-vector product, threads meeting once per step), else its rows
    (each thread's rows through every step, no meeting until the end)."""
    return f"""
        if (B < RNNPERF_RB) {{
            rnnperf_barrier_t bar = {{0, 0}};
            {_packed_alloc(ctype)}
            #pragma omp parallel num_threads(rnnperf_col_threads(H, H, T))
            {{
                /* Whh^T, packed, once per call (h_t = ... + h_{{t-1}} Whh^T) */
                rnnperf_pack_panels<{ctype}>(H, H, w, 1, pw);
                npy_intp j0, j1;
                rnnperf_my_cols(H, &j0, &j1);   /* these columns of every row, step by step */
                const {ctype}* p = prev;
                for (npy_intp t = 0; t < T; ++t) {{
                    {ctype}* s = states + t * n;
                    for (npy_intp b = 0; b < B; ++b)
                        memcpy(s + b * H + j0, xs + t * n + b * H + j0,
                               (j1 - j0) * sizeof({ctype}));
                    rnnperf_gemm_packed_cols<{ctype}>(B, j0, j1, H, H, p, pw, s, 1);
                    for (npy_intp b = 0; b < B; ++b)
                        for (npy_intp j = j0; j < j1; ++j) s[b * H + j] = {tanh}(s[b * H + j]);
                    p = s;
                    if (rnnperf_step_barrier(&bar)) {{   /* the next step reads every column */
                        if (rnnperf_thread_id() != 0) break;
                        j0 = 0; j1 = H;                   /* alone: every column */
                    }}
                }}
            }}
            free(pw);
        }} else {{
            {_packed_alloc(ctype)}
            #pragma omp parallel num_threads(rnnperf_threads(B))
            {{
                /* Whh^T, packed, once per call (h_t = ... + h_{{t-1}} Whh^T) */
                rnnperf_pack_panels<{ctype}>(H, H, w, 1, pw);
                npy_intp r0, r1;
                rnnperf_my_rows(B, &r0, &r1);       /* these rows, through every step */
                const npy_intp m = (r1 - r0) * H;
                const {ctype}* p = prev + r0 * H;
                for (npy_intp t = 0; t < T && m > 0; ++t) {{
                    {ctype}* s = states + t * n + r0 * H;
                    memcpy(s, xs + t * n + r0 * H, m * sizeof({ctype}));
                    rnnperf_gemm_packed<{ctype}>(r1 - r0, H, H, p, pw, s, 1);
                    for (npy_intp i = 0; i < m; ++i) s[i] = {tanh}(s[i]);
                    p = s;
                }}
            }}
            free(pw);
        }}
        """


def _backward_loops(ctype: str, dstates: str | None) -> str:
    """C: the backward loop, split over threads as :func:`_forward_loops` splits the forward."""
    ds = (f"const {ctype}* ds = (const {ctype}*)PyArray_DATA(c_{dstates}) + t * n;"
          if dstates else "")
    add_cols = "for (npy_intp j = j0; j < j1; ++j) d[j] += ds[b * H + j];" if dstates else ""
    add_rows = ("for (npy_intp i = 0; i < m; ++i) d[i] += ds[r0 * H + i];" if dstates else "")
    return f"""
        if (B < RNNPERF_RB) {{
            rnnperf_barrier_t bar = {{0, 0}};
            #pragma omp parallel num_threads(rnnperf_col_threads(H, H, T))
            {{
                npy_intp j0, j1;
                rnnperf_my_cols(H, &j0, &j1);   /* these columns of every row, step by step */
                for (npy_intp t = T - 1; t >= 0; --t) {{
                    const {ctype}* h = hs + t * n;
                    {ctype}* dat = da + t * n;
                    {ds}
                    for (npy_intp b = 0; b < B; ++b) {{
                        {ctype}* d = dh + b * H;
                        if (lastp[b] == t)
                            for (npy_intp j = j0; j < j1; ++j) d[j] += gs[b * H + j];
                        {add_cols}
                        for (npy_intp j = j0; j < j1; ++j)
                            dat[b * H + j] = d[j] * (1 - h[b * H + j] * h[b * H + j]);
                    }}
                    if (rnnperf_step_barrier(&bar)) {{   /* the product reads all of da_t */
                        if (rnnperf_thread_id() != 0) break;
                        j0 = 0; j1 = H;                   /* alone: every column */
                    }}
                    rnnperf_gemv_nn<{ctype}>(B, j0, j1, H, H, dat, w, dh, 0);
                }}
            }}
        }} else {{
            {_packed_alloc(ctype)}
            #pragma omp parallel num_threads(rnnperf_threads(B))
            {{
                rnnperf_pack_panels<{ctype}>(H, H, w, 0, pw);   /* dh = da_t Whh: Whh packed */
                npy_intp r0, r1;
                rnnperf_my_rows(B, &r0, &r1);       /* these rows, through every step */
                const npy_intp m = (r1 - r0) * H;
                {ctype}* d = dh + r0 * H;
                for (npy_intp t = T - 1; t >= 0 && m > 0; --t) {{
                    const {ctype}* h = hs + t * n + r0 * H;
                    {ctype}* dat = da + t * n + r0 * H;
                    {ds}
                    for (npy_intp b = r0; b < r1; ++b)
                        if (lastp[b] == t)
                            for (npy_intp j = 0; j < H; ++j) dh[b * H + j] += gs[b * H + j];
                    {add_rows}
                    for (npy_intp i = 0; i < m; ++i) dat[i] = d[i] * (1 - h[i] * h[i]);
                    rnnperf_gemm_packed<{ctype}>(r1 - r0, H, H, dat, pw, d, 0);
                }}
            }}
            free(pw);
        }}
        """


def _packed_alloc(ctype: str) -> str:
    """C: ``pw``, room for Whh packed in column panels (rnnperf_pack_panels)."""
    return (f"{ctype}* pw = ({ctype}*)malloc(rnnperf_packed_size(H, H, sizeof({ctype})) "
            f"* sizeof({ctype}));\n"
            "            if (!pw) { PyErr_NoMemory(); err = 1; goto done; }")
