"""The C++ of the GRU and LSTM loops (:mod:`rnnperf.model.fused_cells`), one template per loop.

Each loop is Elman's (:mod:`rnnperf.model.fused`): each OpenMP thread takes a block of batch rows
through all T steps, the step's product is :mod:`rnnperf.model.fused_support`'s register-blocked
product (``rnnperf_gemm_rows``'s, as ``rnnperf_cells_gemm``, over weights packed once per call in
contiguous column panels; why, at ``rnnperf_cells_pack``), and the gates' elementwise maths runs
right after it on the rows the product just wrote, while they are in cache. The gate loops are
written for gcc's vectoriser: one ``__restrict__`` pointer per gate block, and ``tanh``/``exp``
through overloads that inline to glibc's ``tanhf``/``expf``, whose SIMD variants (libmvec) gcc
calls under ``-D__FAST_MATH__``
(``vector_math_cxxflags``). The sigmoid is ``1/(1+exp(-a))``: a vector ``exp`` is cheaper than a
vector ``tanh``, and ``exp`` overflowing to inf still gives the right 0.

Templates rather than per-op strings, so that float32 and float64 are one text and the ops' C code
is only the unpacking of arrays (:func:`rnnperf.model.fused_cells._c_code`).
"""

from __future__ import annotations

#: bump with any change below: PyTensor reuses a compiled module while its version is unchanged
VERSION = 5

KERNELS = r"""
static inline float rnnperf_tanh(float x) { return tanhf(x); }
static inline double rnnperf_tanh(double x) { return tanh(x); }
static inline float rnnperf_sig(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline double rnnperf_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* dims of a (T,[B,]W) block of steps (nd 3 or 2): d[0..nd) */
static void rnnperf_dims(int nd, npy_intp T, npy_intp B, npy_intp W, npy_intp* d) {
    d[0] = T;
    if (nd == 3) d[1] = B;
    d[nd - 1] = W;
}

/* whether a is a (T,[B,]W) block of steps or, with row, a ([B,]W) block of rows */
static int rnnperf_shape_is(PyArrayObject* a, int nd, npy_intp T, npy_intp B, npy_intp W,
                            int row) {
    npy_intp d[3];
    rnnperf_dims(nd, T, B, W, d);
    return PyArray_NDIM(a) == nd - row && PyArray_CompareLists(PyArray_DIMS(a), d + row, nd - row);
}

/* The step's weights packed in column panels for rnnperf_cells_gemm: element (k, n) of the K x N
   right-hand side, read at src[k * sk + n * sn], goes to panel n / NB, each K x NB contiguous
   (the last, N % NB wide, K x (N % NB)). rnnperf_gemm_rows reads its K x N operand N apart: at
   N = 4H = 1024 floats, 4 KB, all in a few cache sets. Packed, in a one-thread microbenchmark
   at H=256, B=16, the forward LSTM step's product ran 2.4x faster, the backward one's 1.2x.
   (fused_support's rnnperf_gemm_packed, written meanwhile for the same reason, ran 2.5-4x
   slower than this one there; the loops can take it once it is as fast.) */
template <typename real>
static real* rnnperf_cells_pack(npy_intp K, npy_intp N, const real* src, npy_intp sk,
                                npy_intp sn) {
    const npy_intp NB = RNNPERF_NV * RNNPERF_VBYTES / sizeof(real);
    real* wp = (real*)malloc((K * N > 0 ? K * N : 1) * sizeof(real));
    if (!wp) return NULL;
    for (npy_intp n0 = 0; n0 < N; n0 += NB) {
        const npy_intp nb = N - n0 < NB ? N - n0 : NB;
        real* p = wp + n0 * K;
        for (npy_intp j = 0; j < nb; ++j)
            for (npy_intp k = 0; k < K; ++k) p[k * nb + j] = src[k * sk + (n0 + j) * sn];
    }
    return wp;
}

/* C (rows x N) (+)= A (rows x K) . WP (K x N, packed by rnnperf_cells_pack): rnnperf_gemm_rows's
   register blocks (RNNPERF_RB rows x RNNPERF_NV vectors) over contiguous panels. */
template <typename real>
static void rnnperf_cells_gemm(npy_intp rows, npy_intp N, npy_intp K, const real* A,
                               const real* WP, real* C, int accumulate) {
    typedef real vec __attribute__((vector_size(RNNPERF_VBYTES)));
    const npy_intp VW = RNNPERF_VBYTES / sizeof(real), NB = RNNPERF_NV * VW;
    for (npy_intp n = 0; n < N; n += NB) {
        const npy_intp nb = N - n < NB ? N - n : NB;
        const real* wp = WP + n * K;
        npy_intp b = 0;
        for (; nb == NB && b + RNNPERF_RB <= rows; b += RNNPERF_RB) {
            vec acc[RNNPERF_RB][RNNPERF_NV];
            for (int r = 0; r < RNNPERF_RB; ++r)
                for (int v = 0; v < RNNPERF_NV; ++v) {
                    if (accumulate) memcpy(&acc[r][v], C + (b + r) * N + n + v * VW, sizeof(vec));
                    else acc[r][v] = vec{};
                }
            for (npy_intp k = 0; k < K; ++k) {
                vec w[RNNPERF_NV];
                for (int v = 0; v < RNNPERF_NV; ++v)
                    memcpy(&w[v], wp + k * NB + v * VW, sizeof(vec));
                for (int r = 0; r < RNNPERF_RB; ++r) {
                    const real a = A[(b + r) * K + k];
                    for (int v = 0; v < RNNPERF_NV; ++v) acc[r][v] += a * w[v];
                }
            }
            for (int r = 0; r < RNNPERF_RB; ++r)
                for (int v = 0; v < RNNPERF_NV; ++v)
                    memcpy(C + (b + r) * N + n + v * VW, &acc[r][v], sizeof(vec));
        }
        for (; b < rows; ++b) {             /* rows left over, and a narrow last panel */
            real* __restrict__ c = C + b * N + n;
            if (!accumulate) for (npy_intp j = 0; j < nb; ++j) c[j] = 0;
            for (npy_intp k = 0; k < K; ++k) {
                const real a = A[b * K + k];
                const real* __restrict__ w = wp + k * nb;
                for (npy_intp j = 0; j < nb; ++j) c[j] += a * w[j];
            }
        }
    }
}

/* The backward loops' injections at step t into this thread's rows of dh: g[b] where the
   sequence's final state is step t, and dstates[t] (when every state is read). */
template <typename real>
static void rnnperf_inject(npy_intp t, npy_intp r0, npy_intp r1, npy_intp B, npy_intp H,
                           const npy_int64* last, const real* g, const real* dstates, real* dh) {
    for (npy_intp b = r0; b < r1; ++b)
        if (last[b] == t)
            for (npy_intp j = 0; j < H; ++j) dh[b * H + j] += g[b * H + j];
    if (dstates) {
        const real* ds = dstates + (t * B + r0) * H;
        real* d = dh + r0 * H;
        for (npy_intp i = 0; i < (r1 - r0) * H; ++i) d[i] += ds[i];
    }
}

/* One LSTM row: pre-activations a (i,f,g,o blocks) become the gates, in place; c and h. */
template <typename real>
static inline void rnnperf_lstm_row(npy_intp H, real* __restrict__ ai, real* __restrict__ af,
                                    real* __restrict__ ag, real* __restrict__ ao,
                                    const real* __restrict__ cp, real* __restrict__ c,
                                    real* __restrict__ h) {
    for (npy_intp j = 0; j < H; ++j) {
        const real i = rnnperf_sig(ai[j]), f = rnnperf_sig(af[j]);
        const real g = rnnperf_tanh(ag[j]), o = rnnperf_sig(ao[j]);
        const real cn = f * cp[j] + i * g;
        ai[j] = i; af[j] = f; ag[j] = g; ao[j] = o;
        c[j] = cn;
        h[j] = o * rnnperf_tanh(cn);
    }
}

template <typename real>
static int rnnperf_lstm_forward(npy_intp T, npy_intp B, npy_intp H, const real* xw,
                                const real* h0, const real* c0, const real* whh,
                                real* states, real* cells, real* gates) {
    const npy_intp G = 4 * H;
    real* wt = rnnperf_cells_pack<real>(H, G, whh, 1, H);    /* Whh^T (H, 4H): h_{t-1} Whh^T */
    if (!wt) return -1;
    #pragma omp parallel num_threads(rnnperf_threads(B))
    {
        npy_intp r0, r1;
        rnnperf_my_rows(B, &r0, &r1);       /* these rows, through every step */
        const real* hp = h0 + r0 * H;
        const real* cp = c0 + r0 * H;
        for (npy_intp t = 0; t < T && r1 > r0; ++t) {
            real* a = gates + (t * B + r0) * G;
            real* c = cells + (t * B + r0) * H;
            real* h = states + (t * B + r0) * H;
            memcpy(a, xw + (t * B + r0) * G, (r1 - r0) * G * sizeof(real));
            rnnperf_cells_gemm<real>(r1 - r0, G, H, hp, wt, a, 1);
            for (npy_intp b = 0; b < r1 - r0; ++b) {
                real* ab = a + b * G;
                rnnperf_lstm_row<real>(H, ab, ab + H, ab + 2 * H, ab + 3 * H, cp + b * H,
                                       c + b * H, h + b * H);
            }
            hp = h;
            cp = c;
        }
    }
    free(wt);
    return 0;
}

/* One LSTM row backwards: dh (this step's h gradient), dc (in: from step t+1, out: to t-1). */
template <typename real>
static inline void rnnperf_lstm_back_row(npy_intp H, const real* __restrict__ gi,
                                         const real* __restrict__ gf,
                                         const real* __restrict__ gg,
                                         const real* __restrict__ go,
                                         const real* __restrict__ c, const real* __restrict__ cp,
                                         const real* __restrict__ dh, real* __restrict__ dc,
                                         real* __restrict__ di, real* __restrict__ df,
                                         real* __restrict__ dg, real* __restrict__ dout) {
    for (npy_intp j = 0; j < H; ++j) {
        const real i = gi[j], f = gf[j], g = gg[j], o = go[j];
        const real tc = rnnperf_tanh(c[j]);
        const real dcn = dc[j] + dh[j] * o * (1 - tc * tc);
        di[j] = dcn * g * i * (1 - i);
        df[j] = dcn * cp[j] * f * (1 - f);
        dg[j] = dcn * i * (1 - g * g);
        dout[j] = dh[j] * tc * o * (1 - o);
        dc[j] = dcn * f;
    }
}

template <typename real>
static int rnnperf_lstm_backward(npy_intp T, npy_intp B, npy_intp H, const real* states,
                                 const real* cells, const real* gates, const real* h0,
                                 const real* c0, const real* whh, const real* g,
                                 const npy_int64* last, const real* dstates, real* da,
                                 real* dh) {
    const npy_intp G = 4 * H;
    real* dcs = (real*)calloc(B * H > 0 ? B * H : 1, sizeof(real));
    real* wp = rnnperf_cells_pack<real>(G, H, whh, H, 1);    /* Whh (4H, H): da Whh */
    if (!dcs || !wp) { free(dcs); free(wp); return -1; }
    memset(dh, 0, B * H * sizeof(real));
    #pragma omp parallel num_threads(rnnperf_threads(B))
    {
        npy_intp r0, r1;
        rnnperf_my_rows(B, &r0, &r1);
        for (npy_intp t = T - 1; t >= 0 && r1 > r0; --t) {
            rnnperf_inject<real>(t, r0, r1, B, H, last, g, dstates, dh);
            const real* cp = t > 0 ? cells + ((t - 1) * B + r0) * H : c0 + r0 * H;
            const real* c = cells + (t * B + r0) * H;
            const real* a = gates + (t * B + r0) * G;
            real* d = da + (t * B + r0) * G;
            for (npy_intp b = 0; b < r1 - r0; ++b) {
                const real* ab = a + b * G;
                real* db = d + b * G;
                rnnperf_lstm_back_row<real>(H, ab, ab + H, ab + 2 * H, ab + 3 * H, c + b * H,
                                            cp + b * H, dh + (r0 + b) * H, dcs + (r0 + b) * H,
                                            db, db + H, db + 2 * H, db + 3 * H);
            }
            rnnperf_cells_gemm<real>(r1 - r0, H, G, d, wp, dh + r0 * H, 0);
        }
    }
    free(dcs);
    free(wp);
    return 0;
}

/* One GRU row: hw (r,z,n blocks of h_{t-1} Whh^T) become the gates r, z, n in place. */
template <typename real>
static inline void rnnperf_gru_row(npy_intp H, const real* __restrict__ xr,
                                   const real* __restrict__ xz, const real* __restrict__ xn,
                                   real* __restrict__ ar, real* __restrict__ az,
                                   real* __restrict__ an, const real* __restrict__ bhn,
                                   const real* __restrict__ hp, real* __restrict__ hn,
                                   real* __restrict__ h) {
    for (npy_intp j = 0; j < H; ++j) {
        const real r = rnnperf_sig(xr[j] + ar[j]), z = rnnperf_sig(xz[j] + az[j]);
        const real n_h = an[j] + bhn[j];
        const real n = rnnperf_tanh(xn[j] + r * n_h);
        ar[j] = r; az[j] = z; an[j] = n;
        hn[j] = n_h;
        h[j] = (1 - z) * n + z * hp[j];
    }
}

template <typename real>
static int rnnperf_gru_forward(npy_intp T, npy_intp B, npy_intp H, const real* xw,
                               const real* h0, const real* whh, const real* bhn,
                               real* states, real* gates, real* hns) {
    const npy_intp G = 3 * H;
    real* wt = rnnperf_cells_pack<real>(H, G, whh, 1, H);    /* Whh^T (H, 3H): h_{t-1} Whh^T */
    if (!wt) return -1;
    #pragma omp parallel num_threads(rnnperf_threads(B))
    {
        npy_intp r0, r1;
        rnnperf_my_rows(B, &r0, &r1);
        const real* hp = h0 + r0 * H;
        for (npy_intp t = 0; t < T && r1 > r0; ++t) {
            const real* x = xw + (t * B + r0) * G;
            real* a = gates + (t * B + r0) * G;
            real* hn = hns + (t * B + r0) * H;
            real* h = states + (t * B + r0) * H;
            rnnperf_cells_gemm<real>(r1 - r0, G, H, hp, wt, a, 0);
            for (npy_intp b = 0; b < r1 - r0; ++b) {
                const real* xb = x + b * G;
                real* ab = a + b * G;
                rnnperf_gru_row<real>(H, xb, xb + H, xb + 2 * H, ab, ab + H, ab + 2 * H, bhn,
                                      hp + b * H, hn + b * H, h + b * H);
            }
            hp = h;
        }
    }
    free(wt);
    return 0;
}

/* One GRU row backwards: dh in (this step's h gradient), out: its part through z (dh * z). */
template <typename real>
static inline void rnnperf_gru_back_row(npy_intp H, const real* __restrict__ gr,
                                        const real* __restrict__ gz,
                                        const real* __restrict__ gn,
                                        const real* __restrict__ hn, const real* __restrict__ hp,
                                        real* __restrict__ dh, real* __restrict__ xr,
                                        real* __restrict__ xz, real* __restrict__ xn,
                                        real* __restrict__ hr, real* __restrict__ hz,
                                        real* __restrict__ hnd) {
    for (npy_intp j = 0; j < H; ++j) {
        const real r = gr[j], z = gz[j], n = gn[j], d = dh[j];
        const real dan = d * (1 - z) * (1 - n * n);
        const real dar = dan * hn[j] * r * (1 - r);
        const real daz = d * (hp[j] - n) * z * (1 - z);
        xr[j] = dar; xz[j] = daz; xn[j] = dan;
        hr[j] = dar; hz[j] = daz; hnd[j] = dan * r;
        dh[j] = d * z;
    }
}

template <typename real>
static int rnnperf_gru_backward(npy_intp T, npy_intp B, npy_intp H, const real* states,
                                const real* gates, const real* hns, const real* h0,
                                const real* whh, const real* g, const npy_int64* last,
                                const real* dstates, real* dxw, real* dhw, real* dh) {
    const npy_intp G = 3 * H;
    real* wp = rnnperf_cells_pack<real>(G, H, whh, H, 1);    /* Whh (3H, H): dhw Whh */
    if (!wp) return -1;
    memset(dh, 0, B * H * sizeof(real));
    #pragma omp parallel num_threads(rnnperf_threads(B))
    {
        npy_intp r0, r1;
        rnnperf_my_rows(B, &r0, &r1);
        for (npy_intp t = T - 1; t >= 0 && r1 > r0; --t) {
            rnnperf_inject<real>(t, r0, r1, B, H, last, g, dstates, dh);
            const real* hp = t > 0 ? states + ((t - 1) * B + r0) * H : h0 + r0 * H;
            const real* a = gates + (t * B + r0) * G;
            const real* hn = hns + (t * B + r0) * H;
            real* dx = dxw + (t * B + r0) * G;
            real* dw = dhw + (t * B + r0) * G;
            for (npy_intp b = 0; b < r1 - r0; ++b) {
                const real* ab = a + b * G;
                real* xb = dx + b * G;
                real* wb = dw + b * G;
                rnnperf_gru_back_row<real>(H, ab, ab + H, ab + 2 * H, hn + b * H, hp + b * H,
                                           dh + (r0 + b) * H, xb, xb + H, xb + 2 * H,
                                           wb, wb + H, wb + 2 * H);
            }
            rnnperf_cells_gemm<real>(r1 - r0, H, G, dw, wp, dh + r0 * H, 1);
        }
    }
    free(wp);
    return 0;
}
"""
