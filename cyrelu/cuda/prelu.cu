/* PReLU, forward and backward, for float, double and float16 (math in float).
 *
 * The data is contiguous and seen in memory order as (outer, C, inner), as on the CPU
 * (include/cyrelu/prelu.h): element i has channel (i / inner) % C; a single weight is one
 * channel (C = 1).  The weight is in the math type (float for float16 data).  Kernels
 * (T = float | double | cyr_half, I = the index type, int or long long; common.cuh):
 *
 *   prelu_fwd<T, I>(x, y, w, n, C, inner)        y = x > 0 ? x : w * x
 *   prelu_bwd<T, I>(g, x, out, w, n, C, inner)   out = x > 0 ? g : w * g
 *   prelu_wsum<T, I>(g, x, part, outer, C, inner, plen, pieces)
 *        part[p * C + c] = the sum, in double, of (x > 0 ? 0 : x * g) over piece p of
 *        channel c: its elements [p * plen, (p + 1) * plen) in memory order
 *   prelu_merge<T, I>(part, sums, C, pieces)    sums[c] = part[0][c] + part[1][c] + ...
 *
 * The element math is leaky_relu's (activation_math.h) with the channel's weight as
 * its slope: the same bit-level compares and multiply, exact under -ftz=true.  The
 * output may be exactly one of the inputs (in place).  The sums are deterministic: each
 * piece is one block's, each thread adds its elements in order and the block adds the
 * threads' sums in a fixed tree (cyr_block_sum); the pieces are added in order.
 */
#include "common.cuh"

template <typename T, typename I>
__device__ __forceinline__ void prelu_fwd(const T *x, T *y, const typename cyr_traits<T>::acc *w,
                                          I n, I C, I inner) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    const I nth = cyr_nthreads<I>();
    for (I i = cyr_tid<I>(); i < n; i += nth)
        y[i] = tr::store(cyr_fwd<CYR_ACT_LEAKY_RELU, A>(tr::load(x[i]), w[(i / inner) % C], A(0)));
}

template <typename T, typename I>
__device__ __forceinline__ void prelu_bwd(const T *g, const T *x, T *out,
                                          const typename cyr_traits<T>::acc *w, I n, I C,
                                          I inner) {
    typedef cyr_traits<T> tr;
    typedef typename tr::acc A;
    const I nth = cyr_nthreads<I>();
    for (I i = cyr_tid<I>(); i < n; i += nth)
        out[i] = tr::store(cyr_bwd<CYR_ACT_LEAKY_RELU, A>(tr::load(g[i]), tr::load(x[i]),
                                                          w[(i / inner) % C], A(0)));
}

/* x > 0 ? 0 : x * g in double (exact for float and float16 data); the product first,
 * then the select, as in the C kernels (include/cyrelu/prelu_template.h) */
__device__ __forceinline__ double cyr_prelu_term(float g, float v) {
    const double prod = cyr_f64(v) * cyr_f64(g);
    return cyr_gt0(v) ? 0.0 : prod;
}
__device__ __forceinline__ double cyr_prelu_term(double g, double v) {
    const double prod = v * g;
    return v > 0.0 ? 0.0 : prod;
}

template <typename T, typename I>
__device__ __forceinline__ void prelu_wsum(const T *g, const T *x, double *part, I outer, I C,
                                           I inner, I plen, I pieces) {
    typedef cyr_traits<T> tr;
    __shared__ double shared[32];
    const I len = outer * inner;
    for (I u = blockIdx.x; u < pieces * C; u += gridDim.x) {
        const I p = u / C, c = u % C;
        const I lo = p * plen, hi = lo + plen < len ? lo + plen : len;
        double s = 0.0;
        for (I idx = lo + (I)threadIdx.x; idx < hi; idx += (I)blockDim.x) {
            const I at = (idx / inner * C + c) * inner + idx % inner;
            s += cyr_prelu_term(tr::load(g[at]), tr::load(x[at]));
        }
        s = cyr_block_sum(s, shared);
        if (threadIdx.x == 0) part[u] = s;
    }
}

template <typename T, typename I>
__device__ __forceinline__ void prelu_merge(const double *part, double *sums, I C, I pieces) {
    const I nth = cyr_nthreads<I>();
    for (I c = cyr_tid<I>(); c < C; c += nth) {
        double s = 0.0;
        for (I p = 0; p < pieces; ++p) s += part[p * C + c];
        sums[c] = s;
    }
}

/* ---- the exported kernels: extern "C" names, one per instantiation -------------------- */
#define CYR_PRELU_THREADS 256
#define CYR_KERNEL_prelu_fwd(NAME, T, I)                                                    \
    extern "C" __global__ void __launch_bounds__(CYR_PRELU_THREADS)                         \
        NAME(const T *x, T *y, const cyr_traits<T>::acc *w, I n, I C, I inner) {            \
        prelu_fwd<T, I>(x, y, w, n, C, inner);                                              \
    }
#define CYR_KERNEL_prelu_bwd(NAME, T, I)                                                    \
    extern "C" __global__ void __launch_bounds__(CYR_PRELU_THREADS)                         \
        NAME(const T *g, const T *x, T *out, const cyr_traits<T>::acc *w, I n, I C,         \
             I inner) {                                                                     \
        prelu_bwd<T, I>(g, x, out, w, n, C, inner);                                         \
    }
#define CYR_KERNEL_prelu_wsum(NAME, T, I)                                                   \
    extern "C" __global__ void __launch_bounds__(CYR_PRELU_THREADS)                         \
        NAME(const T *g, const T *x, double *part, I outer, I C, I inner, I plen,           \
             I pieces) {                                                                    \
        prelu_wsum<T, I>(g, x, part, outer, C, inner, plen, pieces);                        \
    }
#define CYR_KERNEL_prelu_merge(NAME, T, I)                                                  \
    extern "C" __global__ void __launch_bounds__(CYR_PRELU_THREADS)                         \
        NAME(const double *part, double *sums, I C, I pieces) {                             \
        prelu_merge<T, I>(part, sums, C, pieces);                                           \
    }
