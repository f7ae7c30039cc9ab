/* The activations, forward and backward, for float, double and float16 (math in float).
 *
 * Kernels (T = float | double | cyr_half, OP = a CYR_ACT_* code of activation_table.h,
 * I = the index type: int where every index fits, else long long; common.cuh):
 *
 *   unary_flat<T, OP, I>(x, y, n, head, alpha, beta)    y = f(x), contiguous
 *   binary_flat<T, OP, I>(g, x, out, n, head, alpha, beta)  out = f'(x) * g, contiguous
 *   unary_strided<T, OP, I>(x, y, n, d1, d2, d3, strides..., alpha, beta)
 *   binary_strided<T, OP, I>(g, x, out, n, d1, d2, d3, strides..., alpha, beta)
 *
 * Flat kernels: elements [0, head) and the tail after the last whole 16-byte pack
 * are done one at a time, everything between as 16-byte packs.  The host passes
 * head = the number of elements before the first 16-byte boundary when every
 * pointer has the same misalignment, or head = n (no packs) when they differ.
 * The output may be exactly one of the inputs (in place): every element is read
 * and written by the same thread, so no pointer is declared __restrict__.
 *
 * Strided kernels: up to 4 axes (outermost first, sizes d0..d3 with d0 implied by
 * n), strides in elements, any sign.  The host coalesces axes and falls back to
 * contiguous copies beyond 4.
 *
 * alpha and beta (the parameters) are float for float and float16 data, double for double.
 *
 * Each kernel is a __device__ template with one extern "C" __global__ wrapper per
 * instantiation (the CYR_KERNEL_* macros at the end; the loader appends the
 * instantiations it needs), so CuPy looks the kernels up by plain name and keeps the
 * compiled module in its disk cache.
 */
#include "common.cuh"

template <typename T, int OP, typename I>
__device__ __forceinline__ void unary_flat(const T *x, T *y, I n, I head,
                           typename cyr_traits<T>::acc alpha,
                           typename cyr_traits<T>::acc beta) {
    typedef cyr_traits<T> tr;
    typedef cyr_pack<T> P;
    const I tid = cyr_tid<I>(), nth = cyr_nthreads<I>();
    const I nv = (n - head) / P::N;
    const I tail = head + nv * P::N;
#pragma unroll 1
    for (I i = tid; i < head; i += nth)
        y[i] = tr::store(cyr_fwd<OP>(tr::load(x[i]), alpha, beta));
#pragma unroll 1
    for (I i = tail + tid; i < n; i += nth)
        y[i] = tr::store(cyr_fwd<OP>(tr::load(x[i]), alpha, beta));
    const T *xv = x + head;
    T *yv = y + head;
    /* two packs per thread per step, both loads issued before either store: more bytes
     * in flight per thread (the loop is bound by memory latency x bandwidth) */
    I i = tid;
    for (; i + nth < nv; i += 2 * nth) {
        P p = P::load(xv + i * P::N);
        P q = P::load(xv + (i + nth) * P::N);
#pragma unroll
        for (int k = 0; k < P::N; ++k) {
            p.v[k] = tr::store(cyr_fwd<OP>(tr::load(p.v[k]), alpha, beta));
            q.v[k] = tr::store(cyr_fwd<OP>(tr::load(q.v[k]), alpha, beta));
        }
        p.store(yv + i * P::N);
        q.store(yv + (i + nth) * P::N);
    }
    if (i < nv) {
        P p = P::load(xv + i * P::N);
#pragma unroll
        for (int k = 0; k < P::N; ++k) p.v[k] = tr::store(cyr_fwd<OP>(tr::load(p.v[k]), alpha, beta));
        p.store(yv + i * P::N);
    }
}

template <typename T, int OP, typename I>
__device__ __forceinline__ void binary_flat(const T *g, const T *x, T *out, I n, I head,
                            typename cyr_traits<T>::acc alpha,
                           typename cyr_traits<T>::acc beta) {
    typedef cyr_traits<T> tr;
    typedef cyr_pack<T> P;
    const I tid = cyr_tid<I>(), nth = cyr_nthreads<I>();
    const I nv = (n - head) / P::N;
    const I tail = head + nv * P::N;
#pragma unroll 1
    for (I i = tid; i < head; i += nth)
        out[i] = tr::store(cyr_bwd<OP>(tr::load(g[i]), tr::load(x[i]), alpha, beta));
#pragma unroll 1
    for (I i = tail + tid; i < n; i += nth)
        out[i] = tr::store(cyr_bwd<OP>(tr::load(g[i]), tr::load(x[i]), alpha, beta));
    const T *gv = g + head;
    const T *xv = x + head;
    T *ov = out + head;
    I i = tid;
    for (; i + nth < nv; i += 2 * nth) { /* two packs per step, as in unary_flat */
        P pg = P::load(gv + i * P::N);
        const P px = P::load(xv + i * P::N);
        P qg = P::load(gv + (i + nth) * P::N);
        const P qx = P::load(xv + (i + nth) * P::N);
#pragma unroll
        for (int k = 0; k < P::N; ++k) {
            pg.v[k] = tr::store(cyr_bwd<OP>(tr::load(pg.v[k]), tr::load(px.v[k]), alpha, beta));
            qg.v[k] = tr::store(cyr_bwd<OP>(tr::load(qg.v[k]), tr::load(qx.v[k]), alpha, beta));
        }
        pg.store(ov + i * P::N);
        qg.store(ov + (i + nth) * P::N);
    }
    if (i < nv) {
        P pg = P::load(gv + i * P::N);
        const P px = P::load(xv + i * P::N);
#pragma unroll
        for (int k = 0; k < P::N; ++k)
            pg.v[k] = tr::store(cyr_bwd<OP>(tr::load(pg.v[k]), tr::load(px.v[k]), alpha, beta));
        pg.store(ov + i * P::N);
    }
}

/* Element offset of linear index i (row-major over d0 x d1 x d2 x d3) for strides s0..s3
 * (for I = int the host checks that every offset, of either sign, fits). */
template <typename I> struct cyr_idx4 {
    I i0, i1, i2, i3;
    __device__ __forceinline__ cyr_idx4(I i, I d1, I d2, I d3) {
        i3 = i % d3;
        i /= d3;
        i2 = i % d2;
        i /= d2;
        i1 = i % d1;
        i0 = i / d1;
    }
    __device__ __forceinline__ I off(I s0, I s1, I s2, I s3) const {
        return i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3;
    }
};

template <typename T, int OP, typename I>
__device__ __forceinline__ void unary_strided(const T *x, T *y, I n, I d1, I d2, I d3, I xs0,
                                              I xs1, I xs2, I xs3, I ys0, I ys1, I ys2, I ys3,
                                              typename cyr_traits<T>::acc alpha,
                                              typename cyr_traits<T>::acc beta) {
    typedef cyr_traits<T> tr;
    const I nth = cyr_nthreads<I>();
    for (I i = cyr_tid<I>(); i < n; i += nth) {
        const cyr_idx4<I> ix(i, d1, d2, d3);
        y[ix.off(ys0, ys1, ys2, ys3)] =
            tr::store(cyr_fwd<OP>(tr::load(x[ix.off(xs0, xs1, xs2, xs3)]), alpha, beta));
    }
}

template <typename T, int OP, typename I>
__device__ __forceinline__ void binary_strided(const T *g, const T *x, T *out, I n, I d1, I d2,
                                               I d3, I gs0, I gs1, I gs2, I gs3, I xs0, I xs1,
                                               I xs2, I xs3, I os0, I os1, I os2, I os3,
                                               typename cyr_traits<T>::acc alpha,
                                              typename cyr_traits<T>::acc beta) {
    typedef cyr_traits<T> tr;
    const I nth = cyr_nthreads<I>();
    for (I i = cyr_tid<I>(); i < n; i += nth) {
        const cyr_idx4<I> ix(i, d1, d2, d3);
        out[ix.off(os0, os1, os2, os3)] = tr::store(cyr_bwd<OP>(
            tr::load(g[ix.off(gs0, gs1, gs2, gs3)]), tr::load(x[ix.off(xs0, xs1, xs2, xs3)]),
            alpha, beta));
    }
}

/* ---- the exported kernels: extern "C" names, one per instantiation -------------------- */
#define CYR_EW_THREADS 256
#define CYR_KERNEL_unary_flat(NAME, T, OP, I)                                              \
    extern "C" __global__ void __launch_bounds__(CYR_EW_THREADS)                            \
        NAME(const T *x, T *y, I n, I head, cyr_traits<T>::acc alpha,                        \
             cyr_traits<T>::acc beta) {                                                      \
        unary_flat<T, OP, I>(x, y, n, head, alpha, beta);                                    \
    }
#define CYR_KERNEL_binary_flat(NAME, T, OP, I)                                             \
    extern "C" __global__ void __launch_bounds__(CYR_EW_THREADS)                            \
        NAME(const T *g, const T *x, T *out, I n, I head, cyr_traits<T>::acc alpha,          \
             cyr_traits<T>::acc beta) {                                                      \
        binary_flat<T, OP, I>(g, x, out, n, head, alpha, beta);                              \
    }
#define CYR_KERNEL_unary_strided(NAME, T, OP, I)                                           \
    extern "C" __global__ void __launch_bounds__(CYR_EW_THREADS)                            \
        NAME(const T *x, T *y, I n, I d1, I d2, I d3, I xs0, I xs1, I xs2, I xs3, I ys0,     \
             I ys1, I ys2, I ys3, cyr_traits<T>::acc alpha, cyr_traits<T>::acc beta) {       \
        unary_strided<T, OP, I>(x, y, n, d1, d2, d3, xs0, xs1, xs2, xs3, ys0, ys1, ys2, ys3, \
                                alpha, beta);                                                \
    }
#define CYR_KERNEL_binary_strided(NAME, T, OP, I)                                          \
    extern "C" __global__ void __launch_bounds__(CYR_EW_THREADS)                            \
        NAME(const T *g, const T *x, T *out, I n, I d1, I d2, I d3, I gs0, I gs1, I gs2,     \
             I gs3, I xs0, I xs1, I xs2, I xs3, I os0, I os1, I os2, I os3,                  \
             cyr_traits<T>::acc alpha, cyr_traits<T>::acc beta) {                            \
        binary_strided<T, OP, I>(g, x, out, n, d1, d2, d3, gs0, gs1, gs2, gs3, xs0, xs1,     \
                                 xs2, xs3, os0, os1, os2, os3, alpha, beta);                 \
    }
