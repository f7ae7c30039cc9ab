/* BatchNorm (training and inference, forward and backward, fused ReLU / Leaky ReLU)
 * and the per-channel diagnostics, for float, double and float16 (math in float).
 *
 * Layouts.  The host reshapes every call to one of two views of contiguous data:
 *   NCS  (N, C, S), S > 1: channel axis 1 of NCHW-like data; channel c's elements are
 *        N runs of S contiguous elements, C*S apart.
 *   NC   (R, C): channels last (or axis 1 of 2-D data); channel c is a column.
 *
 * Pipeline (every kernel is deterministic: the partition and the order of every sum
 * depend on the shape alone, never on the device or on pointer alignment):
 *   reduce_ncs / reduce_nc   per-channel partials, one per (split, channel), then the
 *                            last block of each channel (group) to finish -- found with
 *                            a per-stream atomic counter after __threadfence -- merges
 *                            the partials in split order and finalises the channel:
 *     CYR_RED_STATS  forward training: each thread keeps (n, mean, M2) of its elements
 *                    (shifted sums in double, shift = the thread's first element),
 *                    merged with Chan et al.'s formula in a fixed tree order; then the
 *                    mean, biased var, invstd, the running stats (each one given), the
 *                    coefficients of the apply pass.
 *     CYR_RED_GRAD   backward: g = dy gated by the activation (its derivative looked up
 *                    on the forward output y, or, where the forward's bias is given, at
 *                    the pre-activation z recomputed from x; its parameters in alpha
 *                    and thr); sums of g and g * (x - mean); then grad_weight,
 *                    grad_bias and the dx coefficients (and z's shift, see below).
 *     CYR_RED_ALIVE  count of elements with !(x <= threshold)  (NaN counts as alive)
 *     CYR_RED_ZEROS  count of elements == 0
 *   eval_coef                forward inference: the coefficients from running stats
 *   apply                    the elementwise pass (normalise + activation, or dx)
 *
 * Per-channel parameters (weight, bias, running stats, gradients) are float or double,
 * each independently (the CPU path's rule), also for float16 data: they are passed as
 * untyped pointers with a kind each (0 absent, 1 float, 2 double), packed 2 bits per
 * pointer into `kinds`, so one kernel serves every combination.
 *
 * Coefficients (4 per channel, in the math type A; float for float/float16 data):
 *   forward:        (mean, invstd * weight, bias, -)     y  = act((x - c0) * c1 + c2)
 *   backward train: (mean, mean(g), sum(g*(x-mean)) * invstd^2 / M, weight * invstd)
 *                                                        dx = (g - (x - c0) * c2 - c1) * c3
 *   backward eval:  (mean, -, -, weight * invstd)        dx = g * c3
 * The backward from the pre-activation (bias given: p3 of the reduction, the apply pass's
 * `shift`): z = (x - c0) * c3 + shift[c], the forward's apply arithmetic with the saved
 * statistics (c3 = weight * invstd is the forward's scale, from save_invstd as saved),
 * shift[c] = bias[c] in the math type, written by the reduction's last block after the 4C
 * coefficients; the activation's derivative is taken at z, for every activation (on y
 * it is only read for those whose derivative the output gives: relu, leaky_relu with a
 * positive slope, relu6, hardtanh, and elu (alpha > 0), celu and selu through the result
 * gate, bn_gate).
 * Float math is done with the non-flushing helpers of common.cuh (and without fused
 * multiply-adds): subnormals are kept, as on the CPU.
 *
 * Every kernel is a __device__ template with one extern "C" __global__ wrapper per
 * instantiation (CYR_KERNEL_* below; the loader appends the instantiations), so CuPy
 * finds the kernels by plain name and keeps the compiled module in its disk cache.
 */
#include "common.cuh"

/* ACT: the fused activation, a CYR_ACT_* code of the activation table (common.cuh);
 * CYR_ACT_NONE for none. */

#define CYR_RED_STATS 0
#define CYR_RED_GRAD 1
#define CYR_RED_ALIVE 2
#define CYR_RED_ZEROS 3

#define CYR_APPLY_FWD 0
#define CYR_APPLY_BWD_TRAIN 1
#define CYR_APPLY_BWD_EVAL 2

/* threads per block of reduce_ncs and apply; rows per block of reduce_nc
 * (blockDim = (32, CYR_NC_ROWS)) */
#define CYR_THREADS 256
#define CYR_NC_ROWS 8
/* doubles per partial: (n, mean, M2) for the statistics, (sum g, sum g*(x-mean), -) for
 * the gradients, (count, -, -) for the diagnostics */
#define CYR_PART 3

template <int ACT, typename A> __device__ __forceinline__ A bn_act(A v, A a, A b) {
    return cyr_fwd<ACT>(v, a, b);
}

/* dy gated by the activation at v: the pre-activation z, or (at_y) the forward's output
 * y, where the derivative is read: the table's backward at y (relu, leaky_relu, relu6,
 * hardtanh), and for elu, celu and selu the result gate y > 0 ? pos : a * (y + b) (pos:
 * selu's scale CYR_D_SELU_SCALE, else 1; a and b: the factor and shift the host passes, as torch's
 * elu_backward with is_result and include/cyrelu/batchnorm.h's CYR_BN_GATE_AT_OUTPUT);
 * a and b: the activation's parameters otherwise. */
template <int ACT, typename A>
__device__ __forceinline__ A bn_gate(A g, A v, A a, A b, bool at_y) {
    if ((ACT == CYR_ACT_ELU || ACT == CYR_ACT_CELU || ACT == CYR_ACT_SELU) && at_y)
        return cyr_mul(g, cyr_gt0(v) ? (ACT == CYR_ACT_SELU ? A(CYR_D_SELU_SCALE) : A(1))
                                     : cyr_mul(a, cyr_add(v, b)));
    return cyr_bwd<ACT>(g, v, a, b);
}

/* The pre-activation of the backward from bias: z = (x - c0) * sc + sh (on: the call
 * gives the bias; else the derivative is read on the output). */
template <typename A> struct cyr_zc {
    bool on;
    A c0, sc, sh;
};
template <typename A> __device__ __forceinline__ A bn_z(A xv, const cyr_zc<A> &z) {
    return cyr_add(cyr_mul(cyr_sub(xv, z.c0), z.sc), z.sh);
}

__device__ __forceinline__ bool cyr_finite(double v) { return v - v == 0.0; }

/* per-channel parameter i of `kinds` (0 absent, 1 float, 2 double) */
__device__ __forceinline__ int cyr_kind(int kinds, int i) { return (kinds >> (2 * i)) & 3; }
__device__ __forceinline__ double cyr_param(const void *p, int kind, long long c, double dflt) {
    if (kind == 1) return cyr_f64(static_cast<const float *>(p)[c]);
    if (kind == 2) return static_cast<const double *>(p)[c];
    return dflt;
}
__device__ __forceinline__ void cyr_param_store(void *p, int kind, long long c, double v) {
    if (kind == 1) static_cast<float *>(p)[c] = cyr_f32(v);
    if (kind == 2) static_cast<double *>(p)[c] = v;
}

/* Channel c's z coefficients in a GRAD reduction: on where bias (p3) is given, with
 * weight p0; sc = weight * invstd rounded as bn_finish rounds the coefficient c3 */
template <int MODE, int ACT, typename A>
__device__ __forceinline__ cyr_zc<A> bn_zc(long long c, int kinds, const void *p0,
                                          const void *p3, const A *sm, const A *si) {
    cyr_zc<A> z;
    z.on = MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE && cyr_kind(kinds, 3) != 0;
    z.c0 = z.sc = z.sh = A(0);
    if (z.on) {
        z.c0 = sm[c];
        z.sc = cyr_from_f64<A>(cyr_param(p0, cyr_kind(kinds, 0), c, 1.0) * cyr_f64(si[c]));
        z.sh = cyr_from_f64<A>(cyr_param(p3, cyr_kind(kinds, 3), c, 0.0));
    }
    return z;
}

/* ---- per-thread accumulators ------------------------------------------------------------ */
/* (n, mean, M2) of a set of values, or plain sums (a, b) in the other modes */
struct cyr_acc3 {
    double n, a, b; /* STATS: (n, mean, M2); GRAD: (-, sum g, sum g*(x - mean)); counts: (-, count, -) */
};

/* Chan et al.: the statistics of the union of two disjoint sets. */
__device__ __forceinline__ cyr_acc3 cyr_chan(cyr_acc3 p, cyr_acc3 q) {
    if (q.n == 0.0) return p;
    if (p.n == 0.0) return q;
    const double n = p.n + q.n;
    const double d = q.a - p.a;
    cyr_acc3 r;
    r.n = n;
    r.a = p.a + d * (q.n / n);
    r.b = p.b + q.b + d * d * (p.n * q.n / n);
    return r;
}

template <int MODE> __device__ __forceinline__ cyr_acc3 cyr_merge(cyr_acc3 p, cyr_acc3 q) {
    if (MODE == CYR_RED_STATS) return cyr_chan(p, q);
    p.n += q.n;
    p.a += q.a;
    p.b += q.b;
    return p;
}

/* One thread's running sums: STATS keeps shifted sums (shift k = its first value) and
 * turns them into (n, mean, M2) at the end; the others plain sums. */
struct cyr_thread_sums {
    double k, cnt, a, b;
    bool first;
    __device__ __forceinline__ cyr_thread_sums() : k(0.0), cnt(0.0), a(0.0), b(0.0), first(true) {}
};

template <int MODE, int ACT, typename A>
__device__ __forceinline__ void bn_accum(cyr_thread_sums &t, A xv, A dyv, A yv, double mean,
                                         A alpha, A thr, bool at_y) {
    if (MODE == CYR_RED_STATS) {
        const double v = cyr_f64(xv);
        if (t.first) {
            t.first = false;
            t.k = cyr_finite(v) ? v : 0.0;
        }
        const double d = v - t.k;
        t.cnt += 1.0;
        t.a += d;
        t.b += d * d;
    } else if (MODE == CYR_RED_GRAD) {
        const double g = cyr_f64(bn_gate<ACT>(dyv, yv, alpha, thr, at_y)); /* thr: the gradient's b */
        t.a += g;
        t.b += g * (cyr_f64(xv) - mean);
    } else if (MODE == CYR_RED_ALIVE) {
        t.a += cyr_le(xv, thr) ? 0.0 : 1.0;
    } else {
        t.a += cyr_eq0(xv) ? 1.0 : 0.0;
    }
}

template <int MODE> __device__ __forceinline__ cyr_acc3 cyr_thread_result(const cyr_thread_sums &t) {
    cyr_acc3 r;
    if (MODE == CYR_RED_STATS) {
        r.n = t.cnt;
        r.a = t.cnt > 0.0 ? t.k + t.a / t.cnt : 0.0;
        r.b = t.cnt > 0.0 ? t.b - t.a * (t.a / t.cnt) : 0.0;
        if (r.b < 0.0) r.b = 0.0; /* rounding only; NaN stays NaN */
    } else {
        r.n = 0.0;
        r.a = t.a;
        r.b = t.b;
    }
    return r;
}

/* Merge over a warp: a fixed tree (lane i takes lane i + 16, then i + 8, ...); the
 * result is in lane 0.  Every lane of the warp takes part. */
template <int MODE> __device__ __forceinline__ cyr_acc3 cyr_warp_merge(cyr_acc3 v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        cyr_acc3 o;
        o.n = __shfl_down_sync(0xffffffffu, v.n, off);
        o.a = __shfl_down_sync(0xffffffffu, v.a, off);
        o.b = __shfl_down_sync(0xffffffffu, v.b, off);
        if ((threadIdx.x & 31) + off < 32) v = cyr_merge<MODE>(v, o);
    }
    return v;
}

/* Merge over a 1-D block of CYR_THREADS threads: each warp, then the warps in order.
 * Valid in thread 0.  `sh` holds 32 entries. */
template <int MODE> __device__ __forceinline__ cyr_acc3 cyr_block_merge(cyr_acc3 v, cyr_acc3 *sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    v = cyr_warp_merge<MODE>(v);
    __syncthreads(); /* `sh` may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        cyr_acc3 z;
        z.n = z.a = z.b = 0.0;
        v = lane < nwarps ? sh[lane] : z;
        v = cyr_warp_merge<MODE>(v);
    }
    return v;
}

/* Partial `v` of (split, channel c) into part[]; returns true in the block that
 * arrives last for counter `ctr` (nsplit arrivals), which resets the counter for the
 * next launch on this stream.  Called by every thread of the block; `write` in the
 * threads that hold a partial. */
__device__ __forceinline__ bool cyr_last_block(unsigned *ctr, unsigned nsplit, int *flag) {
    __threadfence(); /* the partials are visible device-wide before the count */
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        const unsigned prev = atomicAdd(ctr, 1u);
        *flag = prev == nsplit - 1u;
        if (*flag) *ctr = 0u; /* every block of this group has arrived: ready for reuse */
    }
    __syncthreads();
    return *flag != 0;
}

__device__ __forceinline__ cyr_acc3 cyr_load_part(const double *part, long long i) {
    const volatile double *p = part + i * CYR_PART; /* written by other blocks: not from L1 */
    cyr_acc3 r;
    r.n = p[0];
    r.a = p[1];
    r.b = p[2];
    return r;
}
__device__ __forceinline__ void cyr_store_part(double *part, long long i, cyr_acc3 v) {
    part[i * CYR_PART] = v.n;
    part[i * CYR_PART + 1] = v.a;
    part[i * CYR_PART + 2] = v.b;
}

/* What the last block does with a channel's total `t`.
 *   STATS: M = elements per channel; p0..p3 = running_mean, running_var, weight, bias;
 *          sm, si = save_mean, save_invstd (written); coef written.
 *   GRAD:  p0 = weight, p1 = grad_weight, p2 = grad_bias (written), p3 = bias (the
 *          backward from the pre-activation: shift written); sm, si read.
 *   counts: p0 = the double output. */
template <typename A, int MODE>
__device__ __forceinline__ void bn_finish(cyr_acc3 t, long long c, double M, double eps,
                                          double momentum, int training, int kinds, void *p0,
                                          void *p1, void *p2, void *p3, A *sm, A *si, A *coef,
                                          A *shift) {
    if (MODE == CYR_RED_STATS) {
        const double mean = t.a;
        double var = t.b / M;
        if (var < 0.0) var = 0.0;
        const double invstd = 1.0 / sqrt(var + eps);
        sm[c] = cyr_from_f64<A>(mean);
        si[c] = cyr_from_f64<A>(invstd);
        /* running = (1 - momentum) * running + momentum * batch, with the unbiased
         * variance (the host rejects M == 1); each statistic that is given */
        if (cyr_kind(kinds, 0))
            cyr_param_store(p0, cyr_kind(kinds, 0), c,
                            (1.0 - momentum) * cyr_param(p0, cyr_kind(kinds, 0), c, 0.0) +
                                momentum * mean);
        if (cyr_kind(kinds, 1))
            cyr_param_store(p1, cyr_kind(kinds, 1), c,
                            (1.0 - momentum) * cyr_param(p1, cyr_kind(kinds, 1), c, 0.0) +
                                momentum * (t.b / (M - 1.0)));
        const double wc = cyr_param(p2, cyr_kind(kinds, 2), c, 1.0);
        const double bc = cyr_param(p3, cyr_kind(kinds, 3), c, 0.0);
        coef[c * 4] = cyr_from_f64<A>(mean);
        coef[c * 4 + 1] = cyr_from_f64<A>(invstd * wc);
        coef[c * 4 + 2] = cyr_from_f64<A>(bc);
        coef[c * 4 + 3] = A(0);
    } else if (MODE == CYR_RED_GRAD) {
        const double s1 = t.a, s2 = t.b;
        const double invstd = cyr_f64(si[c]);
        const double wc = cyr_param(p0, cyr_kind(kinds, 0), c, 1.0);
        cyr_param_store(p2, cyr_kind(kinds, 2), c, s1);
        cyr_param_store(p1, cyr_kind(kinds, 1), c, s2 * invstd);
        coef[c * 4] = sm[c];
        coef[c * 4 + 1] = training ? cyr_from_f64<A>(s1 / M) : A(0);
        coef[c * 4 + 2] = training ? cyr_from_f64<A>(s2 * invstd * invstd / M) : A(0);
        coef[c * 4 + 3] = cyr_from_f64<A>(wc * invstd);
        if (cyr_kind(kinds, 3)) shift[c] = cyr_from_f64<A>(cyr_param(p3, cyr_kind(kinds, 3), c, 0.0));
    } else {
        static_cast<double *>(p0)[c] = t.a;
    }
}

#define CYR_RED_PARAMS                                                                      \
    double M, double eps, double momentum, int training, int kinds, void *p0, void *p1,      \
        void *p2, void *p3
#define CYR_RED_ARGS M, eps, momentum, training, kinds, p0, p1, p2, p3

/* ---- reductions, NCS layout: grid (C, nsplit), CYR_THREADS threads ----------------------
 * `width` elements per unit: the 16-byte pack when S is a multiple of it, else 1 -- a
 * property of the shape; VEC (pointers 16-byte aligned) only changes how a unit is loaded,
 * not which thread sums it nor in what order.  Unit j of the channel (j = n * Sv + s) is
 * summed by thread j % (nsplit * CYR_THREADS) of the channel's blocks.  I = int or long
 * long: the index type (int when every offset fits). */
template <typename T, int MODE, int ACT, int VEC, typename I>
__device__ __forceinline__ void reduce_ncs(const T *x, const T *dy, const T *yo,
                                           typename cyr_traits<T>::acc alpha,
                                           typename cyr_traits<T>::acc thr, I N, I C, I S,
                                           int width, double *part, unsigned *counter,
                                           typename cyr_traits<T>::acc *sm,
                                           typename cyr_traits<T>::acc *si,
                                           typename cyr_traits<T>::acc *coef, CYR_RED_PARAMS) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    typedef cyr_pack<T> P;
    __shared__ cyr_acc3 sh[32];
    __shared__ int flag;
    const I c = blockIdx.x;
    const I split = blockIdx.y, nsplit = gridDim.y;
    const double mean = MODE == CYR_RED_GRAD ? cyr_f64(sm[c]) : 0.0;
    const cyr_zc<A> z = bn_zc<MODE, ACT, A>(c, kinds, p0, p3, sm, si);
    cyr_thread_sums t;
    const I Sv = S / width; /* units per run */
    const I total = N * Sv;
    const I G = nsplit * CYR_THREADS;
    I j = split * CYR_THREADS + threadIdx.x;
    /* (n, s) of unit j, advanced by G units per step without dividing */
    I n = j / Sv, s = j - n * Sv;
    const I qS = G / Sv, rS = G - qS * Sv;
    const A zero = A(0);
    const bool need_dy = MODE == CYR_RED_GRAD;
    const bool need_y = MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE && !z.on;
    for (; j < total; j += G) {
        const I off = (n * C + c) * S + s * width;
        if (VEC) {
            const P px = P::load(x + off);
            P pd, py;
            if (need_dy) pd = P::load(dy + off);
            if (need_y) py = P::load(yo + off);
#pragma unroll
            for (int e = 0; e < P::N; ++e) {
                const A xv = tr::load(px.v[e]);
                bn_accum<MODE, ACT, A>(t, xv, need_dy ? tr::load(pd.v[e]) : zero,
                                       need_y ? tr::load(py.v[e]) : (z.on ? bn_z(xv, z) : zero),
                                       mean, alpha, thr, need_y);
            }
        } else {
#pragma unroll 1
            for (int e = 0; e < width; ++e) {
                const A xv = tr::load(x[off + e]);
                bn_accum<MODE, ACT, A>(t, xv, need_dy ? tr::load(dy[off + e]) : zero,
                                       need_y ? tr::load(yo[off + e]) : (z.on ? bn_z(xv, z) : zero),
                                       mean, alpha, thr, need_y);
            }
        }
        s += rS;
        n += qS;
        if (s >= Sv) {
            s -= Sv;
            ++n;
        }
    }
    cyr_acc3 v = cyr_block_merge<MODE>(cyr_thread_result<MODE>(t), sh);
    if (threadIdx.x == 0) cyr_store_part(part, (long long)split * C + c, v);
    if (!cyr_last_block(counter + c, (unsigned)nsplit, &flag)) return;
    /* the last block: the channel's partials in split order (thread i takes splits
     * i, i + CYR_THREADS, ...), then the block tree */
    cyr_acc3 w;
    w.n = w.a = w.b = 0.0;
    for (I sp = threadIdx.x; sp < nsplit; sp += CYR_THREADS)
        w = cyr_merge<MODE>(w, cyr_load_part(part, (long long)sp * C + c));
    w = cyr_block_merge<MODE>(w, sh);
    if (threadIdx.x == 0) bn_finish<A, MODE>(w, c, M, eps, momentum, training, kinds, p0, p1,
                                              p2, p3, sm, si, coef, coef + 4 * (long long)C);
}

/* ---- reductions, NC layout (R rows, C columns): blockDim (32, CYR_NC_ROWS), ------------
 * grid (ceil(C / 32), nsplit): a warp reads 32 neighbouring channels of one row; thread
 * (x, y) of split b sums rows b * CYR_NC_ROWS + y + k * nsplit * CYR_NC_ROWS. */
template <typename T, int MODE, int ACT, typename I>
__device__ __forceinline__ void reduce_nc(const T *x, const T *dy, const T *yo,
                                          typename cyr_traits<T>::acc alpha,
                                          typename cyr_traits<T>::acc thr, I R, I C,
                                          double *part, unsigned *counter,
                                          typename cyr_traits<T>::acc *sm,
                                          typename cyr_traits<T>::acc *si,
                                          typename cyr_traits<T>::acc *coef, CYR_RED_PARAMS) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    __shared__ cyr_acc3 sh[CYR_NC_ROWS][32];
    __shared__ int flag;
    const I c = (I)blockIdx.x * 32 + threadIdx.x;
    const I split = blockIdx.y, nsplit = gridDim.y;
    const A zero = A(0);
    const bool need_dy = MODE == CYR_RED_GRAD;
    cyr_thread_sums t;
    if (c < C) {
        const double mean = MODE == CYR_RED_GRAD ? cyr_f64(sm[c]) : 0.0;
        const cyr_zc<A> z = bn_zc<MODE, ACT, A>(c, kinds, p0, p3, sm, si);
        const bool need_y = MODE == CYR_RED_GRAD && ACT != CYR_ACT_NONE && !z.on;
        const I rs = nsplit * CYR_NC_ROWS;
        I r = split * CYR_NC_ROWS + threadIdx.y;
        /* four rows in flight per thread */
        for (; r + 3 * rs < R; r += 4 * rs) {
            A xv[4], dv[4], yv[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const I off = (r + u * rs) * C + c;
                xv[u] = tr::load(x[off]);
                dv[u] = need_dy ? tr::load(dy[off]) : zero;
                yv[u] = need_y ? tr::load(yo[off]) : (z.on ? bn_z(xv[u], z) : zero);
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) bn_accum<MODE, ACT, A>(t, xv[u], dv[u], yv[u], mean, alpha, thr, need_y);
        }
        for (; r < R; r += rs) {
            const I off = r * C + c;
            const A xv1 = tr::load(x[off]);
            bn_accum<MODE, ACT, A>(t, xv1, need_dy ? tr::load(dy[off]) : zero,
                                   need_y ? tr::load(yo[off]) : (z.on ? bn_z(xv1, z) : zero),
                                   mean, alpha, thr, need_y);
        }
    }
    sh[threadIdx.y][threadIdx.x] = cyr_thread_result<MODE>(t);
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        cyr_acc3 v = sh[0][threadIdx.x];
        for (int u = 1; u < CYR_NC_ROWS; ++u) v = cyr_merge<MODE>(v, sh[u][threadIdx.x]);
        cyr_store_part(part, (long long)split * C + c, v);
    }
    if (!cyr_last_block(counter + blockIdx.x, (unsigned)nsplit, &flag)) return;
    /* the last block: thread (x, y) merges splits y, y + CYR_NC_ROWS, ... of channel c,
     * then row 0 merges the CYR_NC_ROWS results in order */
    cyr_acc3 w;
    w.n = w.a = w.b = 0.0;
    if (c < C)
        for (I sp = threadIdx.y; sp < nsplit; sp += CYR_NC_ROWS)
            w = cyr_merge<MODE>(w, cyr_load_part(part, (long long)sp * C + c));
    __syncthreads(); /* every thread of the block has read sh above */
    sh[threadIdx.y][threadIdx.x] = w;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        w = sh[0][threadIdx.x];
        for (int u = 1; u < CYR_NC_ROWS; ++u) w = cyr_merge<MODE>(w, sh[u][threadIdx.x]);
        bn_finish<A, MODE>(w, c, M, eps, momentum, training, kinds, p0, p1, p2, p3, sm, si, coef,
                           coef + 4 * (long long)C);
    }
}

/* Forward inference: the coefficients from the running stats (one thread per channel);
 * p0..p3 = running_mean, running_var, weight, bias. */
template <typename T>
__device__ __forceinline__ void eval_coef(long long C, double eps, int kinds, const void *p0,
                                          const void *p1, const void *p2, const void *p3,
                                          typename cyr_traits<T>::acc *sm,
                                          typename cyr_traits<T>::acc *si,
                                          typename cyr_traits<T>::acc *coef) {
    typedef typename cyr_traits<T>::acc A;
    const long long nth = cyr_nthreads();
    for (long long c = cyr_tid(); c < C; c += nth) {
        const double mean = cyr_param(p0, cyr_kind(kinds, 0), c, 0.0);
        const double invstd = 1.0 / sqrt(cyr_param(p1, cyr_kind(kinds, 1), c, 0.0) + eps);
        const double wc = cyr_param(p2, cyr_kind(kinds, 2), c, 1.0);
        const double bc = cyr_param(p3, cyr_kind(kinds, 3), c, 0.0);
        sm[c] = cyr_from_f64<A>(mean);
        si[c] = cyr_from_f64<A>(invstd);
        coef[c * 4] = cyr_from_f64<A>(mean);
        coef[c * 4 + 1] = cyr_from_f64<A>(invstd * wc);
        coef[c * 4 + 2] = cyr_from_f64<A>(bc);
        coef[c * 4 + 3] = A(0);
    }
}

/* ---- the elementwise pass ---------------------------------------------------------------
 * Over the whole contiguous array in units of one element, or of one 16-byte pack when
 * VEC (NCS: S a multiple of the pack; NC: C a multiple of the pack; every pointer
 * 16-byte aligned).  NC: the NC layout (rows N, channels C, S ignored).  I: the index
 * type (int when the size plus the grid fits in it; common.cuh).  Layout, packs and
 * index type are template parameters, so each instantiation is one straight loop.
 * Each thread walks units u = tid, tid + G, ... and tracks (position in row, channel)
 * incrementally, so there is no division in the loop. */
template <typename A> struct __align__(16) cyr_coef4 {
    A v[4];
};

template <int MODE, int ACT, typename A>
__device__ __forceinline__ A bn_elem(A xv, A dyv, A yv, const cyr_coef4<A> &k, A alpha, A beta,
                                     bool at_y) {
    /* the helpers round each operation on its own (no FMA contraction, no flush); alpha
     * and beta: the fused activation's a and b */
    if (MODE == CYR_APPLY_FWD)
        return bn_act<ACT>(cyr_add(cyr_mul(cyr_sub(xv, k.v[0]), k.v[1]), k.v[2]), alpha, beta);
    const A g = bn_gate<ACT>(dyv, yv, alpha, beta, at_y);
    if (MODE == CYR_APPLY_BWD_TRAIN)
        return cyr_mul(cyr_sub(cyr_sub(g, cyr_mul(cyr_sub(xv, k.v[0]), k.v[2])), k.v[1]), k.v[3]);
    return cyr_mul(g, k.v[3]);
}

/* z of the apply pass: the backward coefficients (c0 = mean, c3 = the forward's scale) */
template <typename A>
__device__ __forceinline__ A bn_z_at(A xv, const cyr_coef4<A> &k, A sh) {
    cyr_zc<A> z;
    z.on = true;
    z.c0 = k.v[0];
    z.sc = k.v[3];
    z.sh = sh;
    return bn_z(xv, z);
}

/* shift: z's shift per channel for the backward from the pre-activation (the derivative
 * taken at z = (x - c0) * c3 + shift[c]), else null (read on yo) */
template <typename T, int MODE, int ACT, int NC, int VEC, typename I>
__device__ __forceinline__ void apply(const T *x, const T *dy, const T *yo, T *out,
                      const typename cyr_traits<T>::acc *coef,
                      const typename cyr_traits<T>::acc *shift, typename cyr_traits<T>::acc alpha,
                      typename cyr_traits<T>::acc beta, I N, I C, I S) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    typedef cyr_pack<T> P;
    typedef cyr_coef4<A> K4;
    const K4 *kc = reinterpret_cast<const K4 *>(coef);
    CYR_CHECK_ALIGNED(coef, 16);
    const bool zon = MODE != CYR_APPLY_FWD && ACT != CYR_ACT_NONE && shift != nullptr;
    const bool need_x = MODE != CYR_APPLY_BWD_EVAL || zon;
    const bool need_dy = MODE != CYR_APPLY_FWD;
    const bool need_y = MODE != CYR_APPLY_FWD && ACT != CYR_ACT_NONE && !zon;
    const A zero = A(0);

    const I width = VEC ? (I)P::N : 1;
    const I rows = NC ? N : N * C;
    const I Sv = (NC ? C : S) / width; /* units per row */
    const I U = rows * Sv;
    const I G = cyr_nthreads<I>();
    I u = cyr_tid<I>();
    I row = u / Sv, s = u - row * Sv;
    const I qS = G / Sv, rS = G - qS * Sv;
    /* NCS: channel = row % C, advanced with the row */
    I ch = NC ? 0 : row % C;
    const I cstep = NC ? 0 : qS % C;
    for (; u < U; u += G) {
        const I off = u * width;
        if (VEC) {
            P px, pd, py;
            if (need_x) px = P::load(x + off);
            if (need_dy) pd = P::load(dy + off);
            if (need_y) py = P::load(yo + off);
            P po;
            if (NC) {
#pragma unroll
                for (int e = 0; e < P::N; ++e) {
                    const K4 k = kc[s * P::N + e];
                    const A xv = need_x ? tr::load(px.v[e]) : zero;
                    po.v[e] = tr::store(bn_elem<MODE, ACT, A>(
                        xv, need_dy ? tr::load(pd.v[e]) : zero,
                        need_y ? tr::load(py.v[e]) : (zon ? bn_z_at(xv, k, shift[s * P::N + e]) : zero),
                        k, alpha, beta, need_y));
                }
            } else {
                const K4 k = kc[ch];
                const A sh = zon ? shift[ch] : zero;
#pragma unroll
                for (int e = 0; e < P::N; ++e) {
                    const A xv = need_x ? tr::load(px.v[e]) : zero;
                    po.v[e] = tr::store(bn_elem<MODE, ACT, A>(
                        xv, need_dy ? tr::load(pd.v[e]) : zero,
                        need_y ? tr::load(py.v[e]) : (zon ? bn_z_at(xv, k, sh) : zero), k, alpha,
                        beta, need_y));
                }
            }
            po.store(out + off);
        } else {
            const I kx = NC ? s : ch;
            const K4 k = kc[kx];
            const A xv = need_x ? tr::load(x[off]) : zero;
            out[off] = tr::store(bn_elem<MODE, ACT, A>(
                xv, need_dy ? tr::load(dy[off]) : zero,
                need_y ? tr::load(yo[off]) : (zon ? bn_z_at(xv, k, shift[kx]) : zero), k, alpha,
                beta, need_y));
        }
        s += rS;
        I carry = 0;
        if (s >= Sv) {
            s -= Sv;
            carry = 1;
        }
        if (!NC) {
            ch += cstep + carry; /* < 2C */
            if (ch >= C) ch -= C;
        }
    }
}

/* ---- the exported kernels: extern "C" names, one per instantiation -------------------- */
#define CYR_REDUCE_ARGS_T(T)                                                                \
    const T *x, const T *dy, const T *yo, cyr_traits<T>::acc alpha, cyr_traits<T>::acc thr
#define CYR_OUT_ARGS_T(T)                                                                   \
    double *part, unsigned *counter, cyr_traits<T>::acc *sm, cyr_traits<T>::acc *si,          \
        cyr_traits<T>::acc *coef, CYR_RED_PARAMS

#define CYR_KERNEL_reduce_ncs(NAME, T, MODE, ACT, VEC, I)                                  \
    extern "C" __global__ void __launch_bounds__(CYR_THREADS)                               \
        NAME(CYR_REDUCE_ARGS_T(T), I N, I C, I S, int width, CYR_OUT_ARGS_T(T)) {          \
        reduce_ncs<T, MODE, ACT, VEC, I>(x, dy, yo, alpha, thr, N, C, S, width, part,       \
                                         counter, sm, si, coef, CYR_RED_ARGS);               \
    }
#define CYR_KERNEL_reduce_nc(NAME, T, MODE, ACT, I)                                        \
    extern "C" __global__ void __launch_bounds__(32 * CYR_NC_ROWS)                          \
        NAME(CYR_REDUCE_ARGS_T(T), I R, I C, CYR_OUT_ARGS_T(T)) {                            \
        reduce_nc<T, MODE, ACT, I>(x, dy, yo, alpha, thr, R, C, part, counter, sm, si, coef, \
                                   CYR_RED_ARGS);                                            \
    }
#define CYR_KERNEL_eval_coef(NAME, T)                                                      \
    extern "C" __global__ void NAME(long long C, double eps, int kinds, const void *p0,     \
                                    const void *p1, const void *p2, const void *p3,         \
                                    cyr_traits<T>::acc *sm, cyr_traits<T>::acc *si,         \
                                    cyr_traits<T>::acc *coef) {                             \
        eval_coef<T>(C, eps, kinds, p0, p1, p2, p3, sm, si, coef);                          \
    }
#define CYR_KERNEL_apply(NAME, T, MODE, ACT, NC, VEC, I)                                   \
    extern "C" __global__ void __launch_bounds__(CYR_THREADS)                               \
        NAME(const T *x, const T *dy, const T *yo, T *out, const cyr_traits<T>::acc *coef,  \
             const cyr_traits<T>::acc *shift, cyr_traits<T>::acc alpha,                      \
             cyr_traits<T>::acc beta, I N, I C, I S) {                                        \
        apply<T, MODE, ACT, NC, VEC, I>(x, dy, yo, out, coef, shift, alpha, beta, N, C, S);  \
    }
