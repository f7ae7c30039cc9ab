/* BatchNorm (training and inference, forward and backward, fused ReLU / Leaky ReLU)
 * and the per-channel diagnostics, for float, double and float16 (math in float).
 *
 * Layouts.  The host reshapes every call to one of two C-contiguous views:
 *   NCS  (N, C, S), S > 1: channel axis 1 of NCHW-like data; channel c's elements are
 *        N runs of S contiguous elements, C*S apart.
 *   NC   (R, C): channels last (or axis 1 of 2-D data); channel c is a column.
 *
 * Pipeline (every kernel is deterministic: fixed partition, fixed summation order):
 *   reduce_ncs / reduce_nc   per-channel partial sums in double, one pair per
 *                            (split, channel) -> part[(split * C + c) * 2 + {0, 1}]
 *   finalize_stats           forward training (one warp per channel): mean, biased var,
 *                            invstd, running stats, the coefficients of the apply pass
 *   eval_coef                forward inference: the coefficients from running stats
 *   finalize_grad            backward: grad_weight, grad_bias and the dx coefficients
 *   sum_partials             diagnostics: per-channel totals
 *   apply                    the elementwise pass (normalise + activation, or dx)
 *
 * Reduction modes (MODE of reduce_*):
 *   CYR_RED_STATS  a = sum(x - K), b = sum((x - K)^2), K = the channel's first element
 *                  (0 if that is not finite).  Shifted sums in double: the variance
 *                  b/M - (a/M)^2 only loses the bits of (mean - K)^2 / var, and K is a
 *                  sample of the channel, so that ratio is small.
 *   CYR_RED_GRAD   g = dy gated by the activation (looked up on the forward output y);
 *                  a = sum(g), b = sum(g * (x - mean)).
 *   CYR_RED_ALIVE  a = count of elements with !(x <= threshold)  (NaN counts as alive)
 *   CYR_RED_ZEROS  a = count of elements == 0
 *
 * Per-channel parameters (weight, bias, running stats, gradients) are float or double,
 * each independently (the CPU path's rule), also for float16 data.
 *
 * Coefficients (4 per channel, in the math type A; float for float/float16 data):
 *   forward:        (mean, invstd * weight, bias, -)     y  = act((x - c0) * c1 + c2)
 *   backward train: (mean, mean(g), sum(g*(x-mean)) * invstd^2 / M, weight * invstd)
 *                                                        dx = (g - (x - c0) * c2 - c1) * c3
 *   backward eval:  (-, -, -, weight * invstd)           dx = g * c3
 */
#include "common.cuh"

#define CYR_ACT_NONE 0
#define CYR_ACT_RELU 1
#define CYR_ACT_LEAKY 2

#define CYR_RED_STATS 0
#define CYR_RED_GRAD 1
#define CYR_RED_ALIVE 2
#define CYR_RED_ZEROS 3

#define CYR_APPLY_FWD 0
#define CYR_APPLY_BWD_TRAIN 1
#define CYR_APPLY_BWD_EVAL 2

/* rows per block of reduce_nc (blockDim = (32, CYR_NC_ROWS)) */
#define CYR_NC_ROWS 8

template <int ACT, typename A> __device__ __forceinline__ A bn_act(A v, A a) {
    if (ACT == CYR_ACT_RELU) return cyr_fwd<CYR_OP_RELU>(v, a);
    if (ACT == CYR_ACT_LEAKY) return cyr_fwd<CYR_OP_LEAKY>(v, a);
    return v;
}

/* dy gated by the activation, on the forward's output y: relu_backward / leaky_relu_backward. */
template <int ACT, typename A> __device__ __forceinline__ A bn_gate(A g, A y, A a) {
    if (ACT == CYR_ACT_RELU) return cyr_bwd<CYR_OP_RELU>(g, y, a);
    if (ACT == CYR_ACT_LEAKY) return cyr_bwd<CYR_OP_LEAKY>(g, y, a);
    return g;
}

__device__ __forceinline__ bool cyr_finite(double v) { return v - v == 0.0; }

/* Shift of channel c's statistics: its first element, or 0 if that is inf/NaN. */
template <typename T> __device__ __forceinline__ double bn_shift(const T *x, long long off) {
    const double k = (double)cyr_traits<T>::load(x[off]);
    return cyr_finite(k) ? k : 0.0;
}

/* One element into the pair of sums. */
template <int MODE, int ACT, typename A>
__device__ __forceinline__ void bn_accum(double &a, double &b, A xv, A dyv, A yv, double k,
                                         A alpha, A thr) {
    if (MODE == CYR_RED_STATS) {
        const double d = (double)xv - k;
        a += d;
        b += d * d;
    } else if (MODE == CYR_RED_GRAD) {
        const double g = (double)bn_gate<ACT>(dyv, yv, alpha);
        a += g;
        b += g * ((double)xv - k);
    } else if (MODE == CYR_RED_ALIVE) {
        a += (xv <= thr) ? 0.0 : 1.0;
    } else {
        a += (xv == A(0)) ? 1.0 : 0.0;
    }
}

/* ---- reductions, NCS layout: grid (C, splits), 1-D blocks of a multiple of 32 threads --- */
/* `mean` (CYR_RED_GRAD only): the saved per-channel mean.  dy and y are only read by
 * CYR_RED_GRAD (y only with an activation); other modes may pass any pointer.
 * vec != 0: S is a multiple of the 16-byte pack and every pointer is 16-byte aligned. */
template <typename T, int MODE, int ACT>
__global__ void reduce_ncs(const T *x, const T *dy, const T *yo,
                           const typename cyr_traits<T>::acc *mean,
                           typename cyr_traits<T>::acc alpha, typename cyr_traits<T>::acc thr,
                           long long N, long long C, long long S, int vec, double *part) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    typedef cyr_pack<T> P;
    __shared__ double shared[32];
    const long long c = blockIdx.x;
    const long long split = blockIdx.y, nsplit = gridDim.y;
    double k = 0.0;
    if (MODE == CYR_RED_STATS) k = bn_shift(x, c * S);
    if (MODE == CYR_RED_GRAD) k = (double)mean[c];
    double a = 0.0, b = 0.0;

    const long long width = vec ? (long long)P::N : 1;  /* elements per unit */
    const long long Sv = S / width;                     /* units per run */
    const long long total = N * Sv;
    const long long G = nsplit * blockDim.x;
    long long j = split * blockDim.x + threadIdx.x;
    /* (n, s) of unit j, advanced by G units per step without dividing */
    long long n = j / Sv, s = j - n * Sv;
    const long long qS = G / Sv, rS = G - qS * Sv;
    const A zero = A(0);
    if (vec) {
        for (; j < total; j += G) {
            const long long off = (n * C + c) * S + s * width;
            const P px = P::load(x + off);
            P pd, py;
            if (MODE == CYR_RED_GRAD) pd = P::load(dy + off);
            if (MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE) py = P::load(yo + off);
#pragma unroll
            for (int e = 0; e < P::N; ++e)
                bn_accum<MODE, ACT, A>(a, b, tr::load(px.v[e]),
                                       MODE == CYR_RED_GRAD ? tr::load(pd.v[e]) : zero,
                                       MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE ? tr::load(py.v[e]) : zero,
                                       k, alpha, thr);
            s += rS;
            n += qS;
            if (s >= Sv) {
                s -= Sv;
                ++n;
            }
        }
    } else {
        for (; j < total; j += G) {
            const long long off = (n * C + c) * S + s;
            bn_accum<MODE, ACT, A>(a, b, tr::load(x[off]),
                                   MODE == CYR_RED_GRAD ? tr::load(dy[off]) : zero,
                                   MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE ? tr::load(yo[off]) : zero,
                                   k, alpha, thr);
            s += rS;
            n += qS;
            if (s >= Sv) {
                s -= Sv;
                ++n;
            }
        }
    }
    a = cyr_block_sum(a, shared);
    if (MODE == CYR_RED_STATS || MODE == CYR_RED_GRAD) b = cyr_block_sum(b, shared);
    if (threadIdx.x == 0) {
        part[(split * C + c) * 2] = a;
        part[(split * C + c) * 2 + 1] = b;
    }
}

/* ---- reductions, NC layout (R rows, C columns): blockDim (32, CYR_NC_ROWS), ----------
 * grid (ceil(C / 32), splits): a warp reads 32 neighbouring channels of one row. */
template <typename T, int MODE, int ACT>
__global__ void reduce_nc(const T *x, const T *dy, const T *yo,
                          const typename cyr_traits<T>::acc *mean,
                          typename cyr_traits<T>::acc alpha, typename cyr_traits<T>::acc thr,
                          long long R, long long C, double *part) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    __shared__ double sa[CYR_NC_ROWS][32];
    __shared__ double sb[CYR_NC_ROWS][32];
    const long long c = (long long)blockIdx.x * 32 + threadIdx.x;
    const long long split = blockIdx.y;
    double a = 0.0, b = 0.0;
    if (c < C) {
        double k = 0.0;
        if (MODE == CYR_RED_STATS) k = bn_shift(x, c);
        if (MODE == CYR_RED_GRAD) k = (double)mean[c];
        const long long rs = (long long)gridDim.y * CYR_NC_ROWS;
        long long r = split * CYR_NC_ROWS + threadIdx.y;
        const A zero = A(0);
        /* four rows in flight per thread */
        for (; r + 3 * rs < R; r += 4 * rs) {
            A xv[4], dv[4], yv[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const long long off = (r + u * rs) * C + c;
                xv[u] = tr::load(x[off]);
                dv[u] = MODE == CYR_RED_GRAD ? tr::load(dy[off]) : zero;
                yv[u] = MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE ? tr::load(yo[off]) : zero;
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) bn_accum<MODE, ACT, A>(a, b, xv[u], dv[u], yv[u], k, alpha, thr);
        }
        for (; r < R; r += rs) {
            const long long off = r * C + c;
            bn_accum<MODE, ACT, A>(a, b, tr::load(x[off]),
                                   MODE == CYR_RED_GRAD ? tr::load(dy[off]) : zero,
                                   MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE ? tr::load(yo[off]) : zero,
                                   k, alpha, thr);
        }
    }
    sa[threadIdx.y][threadIdx.x] = a;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int u = 1; u < CYR_NC_ROWS; ++u) {
            a += sa[u][threadIdx.x];
            b += sb[u][threadIdx.x];
        }
        part[(split * C + c) * 2] = a;
        part[(split * C + c) * 2 + 1] = b;
    }
}

/* ---- per-channel finalisation: one warp per channel ------------------------------------
 * blockDim.x a multiple of 32; the host launches ceil(C / warps per block) blocks.  The
 * lanes of a warp add the channel's partials with a stride of 32 splits, then combine
 * with shuffles (fixed order: deterministic); lane 0 finishes the channel.  A warp owns
 * whole channels, so every shuffle has all 32 lanes. */
__device__ __forceinline__ long long cyr_warp_id() {
    return ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
}
__device__ __forceinline__ long long cyr_nwarps() {
    return ((long long)gridDim.x * blockDim.x) >> 5;
}

__device__ __forceinline__ void cyr_channel_sums(const double *part, int nsplit, long long C,
                                                 long long c, double &s, double &q) {
    const int lane = threadIdx.x & 31;
    s = 0.0;
    q = 0.0;
    for (int sp = lane; sp < nsplit; sp += 32) {
        s += part[(sp * C + c) * 2];
        q += part[(sp * C + c) * 2 + 1];
    }
    s = cyr_warp_sum(s);
    q = cyr_warp_sum(q);
}


/* Forward training.  M = elements per channel; kstride = offset of channel c's first
 * element / c (S for NCS, 1 for NC).  P = dtype of the running stats, W = dtype of
 * weight and bias (float or double each; a pointer whose flag is 0 is never read).
 * Running stats: running = (1 - momentum) * running + momentum * batch, with the
 * unbiased variance var * M / (M - 1) (the host rejects M == 1). */
template <typename T, typename P, typename W>
__global__ void finalize_stats(const double *part, int nsplit, const T *x, long long C,
                               long long kstride, double M, double eps, double momentum,
                               int has_running, P *rmean, P *rvar, int has_w, const W *w,
                               int has_b, const W *bias,
                               typename cyr_traits<T>::acc *save_mean,
                               typename cyr_traits<T>::acc *save_invstd,
                               typename cyr_traits<T>::acc *coef) {
    typedef typename cyr_traits<T>::acc A;
    for (long long c = cyr_warp_id(); c < C; c += cyr_nwarps()) {
        double s, q;
        cyr_channel_sums(part, nsplit, C, c, s, q);
        if ((threadIdx.x & 31) != 0) continue;
        const double dm = s / M;
        const double mean = bn_shift(x, c * kstride) + dm;
        double var = q / M - dm * dm;
        if (var < 0.0) var = 0.0; /* rounding only; NaN stays NaN */
        const double invstd = 1.0 / sqrt(var + eps);
        save_mean[c] = (A)mean;
        save_invstd[c] = (A)invstd;
        if (has_running) {
            const double rm = (double)rmean[c];
            const double rv = (double)rvar[c];
            rmean[c] = (P)((1.0 - momentum) * rm + momentum * mean);
            rvar[c] = (P)((1.0 - momentum) * rv + momentum * (var * M / (M - 1.0)));
        }
        const double wc = has_w ? (double)w[c] : 1.0;
        const double bc = has_b ? (double)bias[c] : 0.0;
        coef[c * 4] = (A)mean;
        coef[c * 4 + 1] = (A)(invstd * wc);
        coef[c * 4 + 2] = (A)bc;
        coef[c * 4 + 3] = A(0);
    }
}

/* Forward inference: normalise with the running stats (one thread per channel). */
template <typename T, typename P, typename W>
__global__ void eval_coef(long long C, const P *rmean, const P *rvar, double eps, int has_w,
                          const W *w, int has_b, const W *bias,
                          typename cyr_traits<T>::acc *save_mean,
                          typename cyr_traits<T>::acc *save_invstd,
                          typename cyr_traits<T>::acc *coef) {
    typedef typename cyr_traits<T>::acc A;
    const long long nth = cyr_nthreads();
    for (long long c = cyr_tid(); c < C; c += nth) {
        const double mean = (double)rmean[c];
        const double invstd = 1.0 / sqrt((double)rvar[c] + eps);
        const double wc = has_w ? (double)w[c] : 1.0;
        const double bc = has_b ? (double)bias[c] : 0.0;
        save_mean[c] = (A)mean;
        save_invstd[c] = (A)invstd;
        coef[c * 4] = (A)mean;
        coef[c * 4 + 1] = (A)(invstd * wc);
        coef[c * 4 + 2] = (A)bc;
        coef[c * 4 + 3] = A(0);
    }
}

/* Backward: grad_bias = sum(g), grad_weight = sum(g * (x - mean)) * invstd (written in
 * G, the gradients' dtype), and the dx coefficients.  W = weight's dtype. */
template <typename T, typename W, typename G>
__global__ void finalize_grad(const double *part, int nsplit, long long C, double M,
                              int training, const typename cyr_traits<T>::acc *save_mean,
                              const typename cyr_traits<T>::acc *save_invstd, int has_w,
                              const W *w, G *grad_weight, G *grad_bias,
                              typename cyr_traits<T>::acc *coef) {
    typedef typename cyr_traits<T>::acc A;
    for (long long c = cyr_warp_id(); c < C; c += cyr_nwarps()) {
        double s1, s2;
        cyr_channel_sums(part, nsplit, C, c, s1, s2);
        if ((threadIdx.x & 31) != 0) continue;
        const double invstd = (double)save_invstd[c];
        const double wc = has_w ? (double)w[c] : 1.0;
        grad_bias[c] = (G)s1;
        grad_weight[c] = (G)(s2 * invstd);
        coef[c * 4] = save_mean[c];
        coef[c * 4 + 1] = training ? (A)(s1 / M) : A(0);
        coef[c * 4 + 2] = training ? (A)(s2 * invstd * invstd / M) : A(0);
        coef[c * 4 + 3] = (A)(wc * invstd);
    }
}

/* Diagnostics: total of the first sum per channel. */
__global__ void sum_partials(const double *part, int nsplit, long long C, double *out) {
    for (long long c = cyr_warp_id(); c < C; c += cyr_nwarps()) {
        double s, q;
        cyr_channel_sums(part, nsplit, C, c, s, q);
        if ((threadIdx.x & 31) == 0) out[c] = s;
    }
}

/* ---- the elementwise pass ---------------------------------------------------------------
 * Over the whole contiguous array in units of one element, or of one 16-byte pack when
 * vec != 0 (NCS: S a multiple of the pack; NC: C a multiple of the pack; every pointer
 * 16-byte aligned).  nc != 0: NC layout (rows N, channels C, S ignored).
 * Each thread walks units u = tid, tid + G, ... and tracks (position in row, channel)
 * incrementally, so there is no division in the loop. */
template <typename A> struct __align__(16) cyr_coef4 {
    A v[4];
};

template <int MODE, int ACT, typename A>
__device__ __forceinline__ A bn_elem(A xv, A dyv, A yv, const cyr_coef4<A> &k, A alpha) {
    if (MODE == CYR_APPLY_FWD) return bn_act<ACT>((xv - k.v[0]) * k.v[1] + k.v[2], alpha);
    const A g = bn_gate<ACT>(dyv, yv, alpha);
    if (MODE == CYR_APPLY_BWD_TRAIN) return (g - (xv - k.v[0]) * k.v[2] - k.v[1]) * k.v[3];
    return g * k.v[3];
}

template <typename T, int MODE, int ACT>
__global__ void apply(const T *x, const T *dy, const T *yo, T *out,
                      const typename cyr_traits<T>::acc *coef, typename cyr_traits<T>::acc alpha,
                      long long N, long long C, long long S, int nc, int vec) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    typedef cyr_pack<T> P;
    typedef cyr_coef4<A> K4;
    const K4 *kc = reinterpret_cast<const K4 *>(coef);
    CYR_CHECK_ALIGNED(coef, 16);
    const bool need_x = MODE != CYR_APPLY_BWD_EVAL;
    const bool need_dy = MODE != CYR_APPLY_FWD;
    const bool need_y = MODE != CYR_APPLY_FWD && ACT != CYR_ACT_NONE;
    const A zero = A(0);

    const long long width = vec ? (long long)P::N : 1;
    const long long rows = nc ? N : N * C;
    const long long Sv = (nc ? C : S) / width; /* units per row */
    const long long U = rows * Sv;
    const long long G = cyr_nthreads();
    long long u = cyr_tid();
    long long row = u / Sv, s = u - row * Sv;
    const long long qS = G / Sv, rS = G - qS * Sv;
    /* NCS: channel = row % C, advanced with the row */
    long long ch = nc ? 0 : row % C;
    const long long cstep = nc ? 0 : qS % C;
    for (; u < U; u += G) {
        const long long off = u * width;
        if (vec) {
            P px, pd, py;
            if (need_x) px = P::load(x + off);
            if (need_dy) pd = P::load(dy + off);
            if (need_y) py = P::load(yo + off);
            P po;
            if (nc) {
#pragma unroll
                for (int e = 0; e < P::N; ++e) {
                    const K4 k = kc[s * P::N + e];
                    po.v[e] = tr::store(bn_elem<MODE, ACT, A>(
                        need_x ? tr::load(px.v[e]) : zero, need_dy ? tr::load(pd.v[e]) : zero,
                        need_y ? tr::load(py.v[e]) : zero, k, alpha));
                }
            } else {
                const K4 k = kc[ch];
#pragma unroll
                for (int e = 0; e < P::N; ++e)
                    po.v[e] = tr::store(bn_elem<MODE, ACT, A>(
                        need_x ? tr::load(px.v[e]) : zero, need_dy ? tr::load(pd.v[e]) : zero,
                        need_y ? tr::load(py.v[e]) : zero, k, alpha));
            }
            po.store(out + off);
        } else {
            const K4 k = kc[nc ? s : ch];
            out[off] = tr::store(bn_elem<MODE, ACT, A>(
                need_x ? tr::load(x[off]) : zero, need_dy ? tr::load(dy[off]) : zero,
                need_y ? tr::load(yo[off]) : zero, k, alpha));
        }
        s += rS;
        long long carry = 0;
        if (s >= Sv) {
            s -= Sv;
            carry = 1;
        }
        if (!nc) {
            ch += cstep + carry; /* < 2C */
            if (ch >= C) ch -= C;
        }
    }
}
