"""What the fused C kernels share: the row-block product, the split of a batch over threads,
the OpenMP op they derive from and the C snippets for their inputs and outputs.

Each cell's kernels (:mod:`rnnperf.model.fused` for Elman) are written against these, so a
faster product or a better split serves every cell at once. Why the loops are written this way
(rows never mix in a recurrence, so threads meet once per loop) is in :mod:`rnnperf.model.fused`.
"""

from __future__ import annotations

from pytensor.link.c.op import OpenMPOp

TANH = {"float32": "tanhf", "float64": "tanh"}

#: C++ shared by both ops: the row-block product and the split of a batch over threads
SUPPORT = r"""
#include <string.h>
#include <math.h>
#if defined(__AVX512F__)
#define RNNPERF_VBYTES 64
#elif defined(__AVX__)
#define RNNPERF_VBYTES 32
#else
#define RNNPERF_VBYTES 16
#endif
#define RNNPERF_RB 8   /* rows per register block */
#define RNNPERF_NV 2   /* vectors per row in a register block */

/* Columns [j0, j1) of rows [b0, b1) of the product below, a row at a time (contiguous, so gcc
   vectorises the inner loop): the edges a register block does not cover, and a batch of 1. */
template <typename real>
static void rnnperf_axpy_rows(npy_intp b0, npy_intp b1, npy_intp j0, npy_intp j1, npy_intp N,
                              npy_intp K, const real* A, const real* WT, real* C, int accumulate) {
    for (npy_intp b = b0; b < b1; ++b) {
        real* c = C + b * N;
        if (!accumulate) for (npy_intp j = j0; j < j1; ++j) c[j] = 0;
        for (npy_intp k = 0; k < K; ++k) {
            const real a = A[b * K + k];
            const real* w = WT + k * N;
            for (npy_intp j = j0; j < j1; ++j) c[j] += a * w[j];
        }
    }
}

/* C (rows x N, ldc N) (+)= A (rows x K, lda K) . WT (K x N, ldw N): register blocks of
   RNNPERF_RB rows x RNNPERF_NV vectors, column panels outermost so a panel of WT stays in
   cache across every row block; plain loops for the edges. */
template <typename real>
static void rnnperf_gemm_rows(npy_intp rows, npy_intp N, npy_intp K, const real* A,
                              const real* WT, real* C, int accumulate) {
    typedef real vec __attribute__((vector_size(RNNPERF_VBYTES)));
    const npy_intp VW = RNNPERF_VBYTES / sizeof(real), NB = RNNPERF_NV * VW;
    npy_intp n = 0;
    for (; n + NB <= N; n += NB) {
        npy_intp b = 0;
        for (; b + RNNPERF_RB <= rows; b += RNNPERF_RB) {
            vec acc[RNNPERF_RB][RNNPERF_NV];
            for (int r = 0; r < RNNPERF_RB; ++r)
                for (int v = 0; v < RNNPERF_NV; ++v) {
                    if (accumulate) memcpy(&acc[r][v], C + (b + r) * N + n + v * VW, sizeof(vec));
                    else acc[r][v] = vec{};
                }
            for (npy_intp k = 0; k < K; ++k) {
                vec w[RNNPERF_NV];
                for (int v = 0; v < RNNPERF_NV; ++v)
                    memcpy(&w[v], WT + k * N + n + v * VW, sizeof(vec));
                for (int r = 0; r < RNNPERF_RB; ++r) {
                    const real a = A[(b + r) * K + k];
                    for (int v = 0; v < RNNPERF_NV; ++v) acc[r][v] += a * w[v];
                }
            }
            for (int r = 0; r < RNNPERF_RB; ++r)
                for (int v = 0; v < RNNPERF_NV; ++v)
                    memcpy(C + (b + r) * N + n + v * VW, &acc[r][v], sizeof(vec));
        }
        rnnperf_axpy_rows(b, rows, n, n + NB, N, K, A, WT, C, accumulate);  /* rows left over */
    }
    rnnperf_axpy_rows((npy_intp)0, rows, n, N, N, K, A, WT, C, accumulate);  /* columns left */
}

/* This thread's rows of a batch of B: whole register blocks, one contiguous range each. */
static void rnnperf_my_rows(npy_intp B, npy_intp* r0, npy_intp* r1) {
    int nt = 1, tid = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    tid = omp_get_thread_num();
#endif
    npy_intp blocks = (B + RNNPERF_RB - 1) / RNNPERF_RB;
    npy_intp per = (blocks + nt - 1) / nt;
    *r0 = tid * per * RNNPERF_RB < B ? tid * per * RNNPERF_RB : B;
    *r1 = (tid + 1) * per * RNNPERF_RB < B ? (tid + 1) * per * RNNPERF_RB : B;
}

/* Threads worth starting: no more than whole register blocks of rows (a batch of 1: one). */
static int rnnperf_threads(npy_intp B) {
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    npy_intp blocks = B / RNNPERF_RB;
    if (nt > blocks) nt = blocks > 1 ? (int)blocks : 1;
    return nt;
}
"""


class RowParallelOp(OpenMPOp):
    """OpenMP on (when the compiler has it) whatever PyTensor's ``openmp`` flag says: that
    flag governs PyTensor's Elemwise; these kernels follow ``threads=`` (OMP_NUM_THREADS)."""

    def __init__(self):
        super().__init__(openmp=True)

    def c_support_code(self, **kwargs):
        return SUPPORT

    def c_code_cache_version(self):
        return (4,)


def steps(states_ndim: int, shape) -> tuple[int, int, int]:
    """``(T, B, H)`` of a ``(T, B, H)`` or single-sequence ``(T, H)`` block of states."""
    if states_ndim == 3:
        return shape[0], shape[1], shape[2]
    return shape[0], 1, shape[1]


def contiguous(names: list[str]) -> str:
    """C: a C-contiguous new reference ``c_<name>`` for each input (released in ``_release``)."""
    return "\n".join(f"PyArrayObject* c_{n} = (PyArrayObject*)PyArray_GETCONTIGUOUS({n});"
                     for n in names)


def release(names: list[str]) -> str:
    return "\n".join(f"Py_XDECREF(c_{n});" for n in names)


def ensure_output(out: str, ndim: str, dims: str, typenum: str) -> str:
    """C: reuse ``out`` when it has the wanted shape and is C-contiguous, else allocate it."""
    return f"""
    if ({out} == NULL || PyArray_NDIM({out}) != {ndim} || !PyArray_IS_C_CONTIGUOUS({out})
        || !PyArray_CompareLists(PyArray_DIMS({out}), {dims}, {ndim})) {{
        Py_XDECREF({out});
        {out} = (PyArrayObject*)PyArray_EMPTY({ndim}, {dims}, {typenum}, 0);
    }}
    if ({out} == NULL) {{ err = 1; goto done; }}
    """
