"""What the fused C kernels share: the row-block product, the split of a batch over threads,
the OpenMP op they derive from and the C snippets for their inputs and outputs.

Each cell's kernels (:mod:`rnnperf.model.fused` for Elman) are written against these, so a
faster product or a better split serves every cell at once. Why the loops are written this way
(rows never mix in a recurrence, so threads meet once per loop) is in :mod:`rnnperf.model.fused`.
"""

from __future__ import annotations

import zlib

from pytensor.link.c.op import OpenMPOp

TANH = {"float32": "tanhf", "float64": "tanh"}

#: C++ shared by both ops: the row-block product and the split of a batch over threads
SUPPORT = r"""
#include <string.h>
#include <math.h>
#include <sched.h>
#include <time.h>
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

/* ---- Small batches (fewer rows than a register block): columns split over threads ----
   With B < RNNPERF_RB a step is a matrix-vector product per row, bound by how fast the weights
   stream from cache, and a row split leaves one thread working. So the threads split the
   *columns* (outputs) of each step's product instead, each streaming its share of the weights,
   and meet once per step at rnnperf_step_barrier (the next step reads every column). */

/* C[r, j] (+)= sum_k A[r, k] WT[k, j], j in [j0, j1): WT is K x N (ldw N), its rows streamed
   over [j0, j1), four at a time so that each pass over C's row does four products. */
template <typename real>
static void rnnperf_gemv_nn(npy_intp rows, npy_intp j0, npy_intp j1, npy_intp N, npy_intp K,
                            const real* A, const real* WT, real* C, int accumulate) {
    if (!accumulate)
        for (npy_intp r = 0; r < rows; ++r) memset(C + r * N + j0, 0, (j1 - j0) * sizeof(real));
    npy_intp k = 0;
    for (; k + 4 <= K; k += 4) {
        const real* __restrict__ w0 = WT + k * N;
        const real* __restrict__ w1 = w0 + N;
        const real* __restrict__ w2 = w1 + N;
        const real* __restrict__ w3 = w2 + N;
        for (npy_intp r = 0; r < rows; ++r) {
            const real a0 = A[r * K + k], a1 = A[r * K + k + 1], a2 = A[r * K + k + 2],
                       a3 = A[r * K + k + 3];
            real* __restrict__ c = C + r * N;
            for (npy_intp j = j0; j < j1; ++j)
                c[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
        }
    }
    for (; k < K; ++k)
        for (npy_intp r = 0; r < rows; ++r) {
            const real a = A[r * K + k];
            const real* __restrict__ w = WT + k * N;
            real* __restrict__ c = C + r * N;
            for (npy_intp j = j0; j < j1; ++j) c[j] += a * w[j];
        }
}

/* Weight elements per thread and step below which a column split costs more (a meeting per
   step) than it saves, and per call below which waking the threads does. */
#ifndef RNNPERF_COL_MIN_WORK
#define RNNPERF_COL_MIN_WORK 32768
#endif
#ifndef RNNPERF_COL_MIN_CALL
#define RNNPERF_COL_MIN_CALL (1L << 22)
#endif

/* Threads worth starting for a column split of `steps` products with an N x K weight. */
static int rnnperf_col_threads(npy_intp N, npy_intp K, npy_intp steps) {
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    if (steps * N * K < RNNPERF_COL_MIN_CALL) return 1;
    npy_intp most = N * K / RNNPERF_COL_MIN_WORK, chunks = N / 32;
    if (most > chunks) most = chunks;
    if (nt > most) nt = most > 1 ? (int)most : 1;
    return nt;
}

/* This thread's columns [j0, j1) of N: contiguous, in multiples of 32 (whole packed panels, and
   whole cache lines of a row, for every vector width and float type). */
static void rnnperf_my_cols(npy_intp N, npy_intp* j0, npy_intp* j1) {
    int nt = 1, tid = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    tid = omp_get_thread_num();
#endif
    npy_intp chunks = (N + 31) / 32, per = chunks / nt, extra = chunks % nt;
    npy_intp c0 = tid * per + (tid < extra ? tid : extra);
    npy_intp c1 = c0 + per + (tid < extra ? 1 : 0);
    *j0 = c0 * 32 < N ? c0 * 32 : N;
    *j1 = c1 * 32 < N ? c1 * 32 : N;
}

/* Where a column split's threads meet once per step: declared (zeroed) before the parallel
   region, shared by its threads. A spinning barrier, not `omp barrier`: under
   OMP_WAIT_POLICY=PASSIVE (rnnperf's default for these kernels) OpenMP's barrier sleeps in the
   kernel at every step. A meeting is only cheap while every thread has a core: when the first
   thread waited more than RNNPERF_SOLO_NS for the last (a busy machine: the other thread was
   not running), the last one says so and thread 0 finishes the loop alone (returns 1 from then
   on, the same to every thread; the others then leave the loop). */
#ifndef RNNPERF_SOLO_NS
#define RNNPERF_SOLO_NS 50000
#endif
typedef struct { int count; int gen; int solo; long long first; } rnnperf_barrier_t;

static int rnnperf_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static long long rnnperf_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int rnnperf_step_barrier(rnnperf_barrier_t* bar) {
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_num_threads();
#endif
    if (nt < 2 || __atomic_load_n(&bar->solo, __ATOMIC_ACQUIRE)) return 1;
    const int gen = __atomic_load_n(&bar->gen, __ATOMIC_ACQUIRE);
    const int arrived = __atomic_add_fetch(&bar->count, 1, __ATOMIC_ACQ_REL);
    if (arrived == 1) __atomic_store_n(&bar->first, rnnperf_now_ns(), __ATOMIC_RELEASE);
    if (arrived == nt) {
        while (__atomic_load_n(&bar->first, __ATOMIC_ACQUIRE) == 0) {}
        if (rnnperf_now_ns() - __atomic_load_n(&bar->first, __ATOMIC_ACQUIRE) > RNNPERF_SOLO_NS)
            __atomic_store_n(&bar->solo, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&bar->first, 0LL, __ATOMIC_RELAXED);
        __atomic_store_n(&bar->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&bar->gen, gen + 1, __ATOMIC_RELEASE);
        return __atomic_load_n(&bar->solo, __ATOMIC_RELAXED);
    }
    for (long spins = 0; __atomic_load_n(&bar->gen, __ATOMIC_ACQUIRE) == gen; ++spins) {
        if (spins < (1L << 12)) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
    return __atomic_load_n(&bar->solo, __ATOMIC_RELAXED);
}

/* ---- Packed weights: column panels stored contiguously ----
   rnnperf_gemm_rows reads a panel of RNNPERF_NV vectors from each of the K rows of WT, N apart:
   at N = 1024 floats those rows are 4 KB apart and map to a few cache sets, so a panel that fits
   L2 by size does not stay there. Packed, each panel is K x NB contiguous. */

/* Elements of the packed form of an N-column weight with K rows (panels padded to NB). */
static npy_intp rnnperf_packed_size(npy_intp N, npy_intp K, npy_intp elem) {
    const npy_intp NB = RNNPERF_NV * (RNNPERF_VBYTES / elem);
    return ((N + NB - 1) / NB) * NB * (K > 0 ? K : 1);
}

/* P[p][k][c] = WT[k][p NB + c] (zero past N) for WT = src (K x N), or WT = src^T when src is
   N x K (trans): a transposed weight packs without a transposed copy. Panels are shared out
   over the threads of an enclosing parallel region, which they leave together. */
template <typename real>
static void rnnperf_pack_panels(npy_intp N, npy_intp K, const real* src, int trans, real* P) {
    const npy_intp NB = RNNPERF_NV * (RNNPERF_VBYTES / sizeof(real));
    const npy_intp panels = (N + NB - 1) / NB;
    #pragma omp for schedule(static)
    for (npy_intp p = 0; p < panels; ++p) {
        real* dst = P + p * K * NB;
        const npy_intp cols = N - p * NB < NB ? N - p * NB : NB;
        if (!trans) {
            for (npy_intp k = 0; k < K; ++k)
                for (npy_intp c = 0; c < NB; ++c)
                    dst[k * NB + c] = c < cols ? src[k * N + p * NB + c] : 0;
        } else {   /* 16 of K at a time: the panel's lines being written stay in L1 */
            for (npy_intp k0 = 0; k0 < K; k0 += 16) {
                const npy_intp k1 = k0 + 16 < K ? k0 + 16 : K;
                for (npy_intp c = 0; c < NB; ++c)
                    for (npy_intp k = k0; k < k1; ++k)
                        dst[k * NB + c] = c < cols ? src[(p * NB + c) * K + k] : 0;
            }
        }
    }
}

/* One block of R rows x one panel (cols <= NB valid columns) of rnnperf_gemm_packed. */
template <typename real, int R>
static inline void rnnperf_packed_block(npy_intp K, const real* A, npy_intp lda, const real* P,
                                        real* C, npy_intp N, npy_intp cols, int accumulate) {
    typedef real vec __attribute__((vector_size(RNNPERF_VBYTES)));
    enum { VW = RNNPERF_VBYTES / sizeof(real), NB = RNNPERF_NV * VW };
    vec acc[R][RNNPERF_NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < RNNPERF_NV; ++v) {
            if (accumulate && cols == NB) {
                memcpy(&acc[r][v], C + r * N + v * VW, sizeof(vec));
            } else {
                acc[r][v] = vec{};
                for (int l = 0; accumulate && l < VW && v * VW + l < cols; ++l)
                    acc[r][v][l] = C[r * N + v * VW + l];
            }
        }
    for (npy_intp k = 0; k < K; ++k) {
        vec w[RNNPERF_NV];
        for (int v = 0; v < RNNPERF_NV; ++v) memcpy(&w[v], P + k * NB + v * VW, sizeof(vec));
        for (int r = 0; r < R; ++r) {
            const real a = A[r * lda + k];
            for (int v = 0; v < RNNPERF_NV; ++v) acc[r][v] += a * w[v];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < RNNPERF_NV; ++v) {
            if (cols == NB) {
                memcpy(C + r * N + v * VW, &acc[r][v], sizeof(vec));
            } else {
                for (int l = 0; l < VW && v * VW + l < cols; ++l)
                    C[r * N + v * VW + l] = acc[r][v][l];
            }
        }
}

/* Columns [n0, n1) (n0 a multiple of the panel width) of rnnperf_gemm_rows's product against a
   packed weight (rnnperf_pack_panels): register blocks of RNNPERF_RB rows, then the rows left
   over one at a time (a batch of 1: a matrix-vector product streaming each panel); K in chunks of
   RNNPERF_KC so that a block's rows of A stay in L1 while a panel streams past them. */
#ifndef RNNPERF_KC
#define RNNPERF_KC 256
#endif
template <typename real>
static void rnnperf_gemm_packed_cols(npy_intp rows, npy_intp n0, npy_intp n1, npy_intp N,
                                     npy_intp K, const real* A, const real* P, real* C,
                                     int accumulate) {
    const npy_intp NB = RNNPERF_NV * (RNNPERF_VBYTES / sizeof(real));
    for (npy_intp k0 = 0; k0 < K || k0 == 0; k0 += RNNPERF_KC) {
        const npy_intp kc = K - k0 < RNNPERF_KC ? K - k0 : RNNPERF_KC;
        const int acc = accumulate || k0 > 0;
        for (npy_intp n = n0; n < n1; n += NB) {
            const npy_intp cols = n1 - n < NB ? n1 - n : NB;
            const real* panel = P + (n / NB) * K * NB + k0 * NB;
            npy_intp b = 0;
            for (; b + RNNPERF_RB <= rows; b += RNNPERF_RB)
                rnnperf_packed_block<real, RNNPERF_RB>(kc, A + b * K + k0, K, panel,
                                                       C + b * N + n, N, cols, acc);
            for (; b < rows; ++b)
                rnnperf_packed_block<real, 1>(kc, A + b * K + k0, K, panel, C + b * N + n, N,
                                              cols, acc);
        }
    }
}

/* C (+)= A . WT over every column, WT packed: rnnperf_gemm_rows's product. */
template <typename real>
static void rnnperf_gemm_packed(npy_intp rows, npy_intp N, npy_intp K, const real* A,
                                const real* P, real* C, int accumulate) {
    rnnperf_gemm_packed_cols(rows, (npy_intp)0, N, N, K, A, P, C, accumulate);
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
        """PyTensor reuses a compiled module whose key (with this version) matches without
        reading its source again, so the version carries a checksum of the C text: an edit to
        it compiles afresh instead of running the stale module."""
        return (5, zlib.crc32(SUPPORT.encode()))


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
