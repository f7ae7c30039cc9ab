/* BatchNorm kernels (statistics, normalisation with a fused activation, backward),
 * for float and double data.
 *
 * The kernel bodies live once, in batchnorm_template.h, which is included twice
 * below with CYR_T / CYR_SUFFIX set to (float, f32) and (double, f64).
 *
 * Data is seen as a C-contiguous 3-D array (outer, C, inner): the channel axis in
 * the middle, every axis before it folded into `outer`, every axis after it into
 * `inner`.  Two loop shapes:
 *
 *   per channel  (inner large, e.g. NCHW): one channel's slab is `outer` rows of
 *                `inner` contiguous elements; a thread owns whole channels, so
 *                the statistics pass and the normalise pass run back to back on
 *                a slab that is still in cache.
 *   per row      (inner small, e.g. NHWC or (N, C)): the data is `rows` rows of
 *                W = C * inner contiguous columns; per-column accumulators
 *                (vectorised across columns) are kept for fixed blocks of rows
 *                and merged in a fixed order.
 *
 * Sums are accumulated in double for both element types; variances are two-pass
 * (mean, then the sum of squared deviations) within a block, and blocks are
 * combined with Chan et al.'s pairwise update.  Work is partitioned by channel or
 * by fixed row groups that do not depend on the thread count, so results are
 * bitwise identical for any number of threads.
 */
#ifndef CYRELU_BATCHNORM_H
#define CYRELU_BATCHNORM_H

#include <math.h>
#include "common.h"
#include "activations.h"

/* Fused activation codes shared with the Cython layer (cyrelu/_batchnorm.pyx). */
#define CYR_BN_ACT_NONE 0
#define CYR_BN_ACT_RELU 1
#define CYR_BN_ACT_LEAKY 2

/* The entry points the Cython layer calls (one per channel, row group or row range)
 * are compiled twice where the compiler can dispatch at load time (GCC on x86-64
 * Linux): for the baseline ISA and for AVX2, picked by the CPU the code runs on.
 * AVX2 doubles the width of the float->double conversions and double arithmetic
 * the reductions are made of.  FMA is not enabled, and the reductions have a
 * fixed association order, so both versions give bitwise identical results.
 * Define CYRELU_NO_ISA_CLONES to build only the baseline version. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(CYRELU_NO_ISA_CLONES)
#  define CYR_BN_KERNEL static __attribute__((target_clones("avx2", "default")))
#else
#  define CYR_BN_KERNEL static
#endif

/* Helpers are forced inline so that each load-time clone above gets its own copy of
 * every loop, compiled for its ISA (an out-of-line helper would be baseline code). */
#if defined(__GNUC__) || defined(__clang__)
#  define CYR_BN_INLINE static inline __attribute__((always_inline))
#else
#  define CYR_BN_INLINE static inline
#endif

/* Independent accumulators in the reductions: lanes the compiler can keep in
 * vector registers without reassociating a single sum (no -ffast-math needed). */
#define CYR_BN_LANES 16

/* The lanes' total, added as a fixed binary tree. */
CYR_INLINE double cyr_bn_lanes_total(double *acc) {
    for (int h = CYR_BN_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; ++k) acc[k] += acc[k + h];
    return acc[0];
}

/* Software prefetch of the next rows of a channel: the per-channel loops jump
 * between rows `C * inner` elements apart, and rows of a few KiB are too short for
 * the hardware prefetcher to ramp up on. */
#define CYR_BN_PREFETCH_ROWS 2
#if defined(__GNUC__) || defined(__clang__)
#  define CYR_BN_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#  define CYR_BN_PREFETCH(p) ((void)(p))
#endif

CYR_INLINE int cyr_bn_wants_prefetch(Py_ssize_t row_bytes) { return row_bytes <= 8192; }

CYR_INLINE void cyr_bn_prefetch_run(const void *p, Py_ssize_t bytes) {
    const char *c = (const char *)p;
    for (Py_ssize_t off = 0; off < bytes; off += 64) CYR_BN_PREFETCH(c + off);
}

/* A channel slab larger than this is reduced in chunks of rows of at most this size
 * (half of a typical per-core L2 cache). */
#define CYR_BN_SLAB_BYTES ((Py_ssize_t)1 << 20)

/* Chan et al.: merge (nb, mean_b, m2_b) into (na, mean_a, m2_a), elementwise over w. */
CYR_INLINE void cyr_bn_chan_merge(double na, double *CYR_RESTRICT mean_a,
                                  double *CYR_RESTRICT m2_a, double nb,
                                  const double *CYR_RESTRICT mean_b,
                                  const double *CYR_RESTRICT m2_b, Py_ssize_t w) {
    const double n = na + nb;
    const double fb = nb / n, fab = na * nb / n;
    for (Py_ssize_t j = 0; j < w; ++j) {
        const double d = mean_b[j] - mean_a[j];
        mean_a[j] += d * fb;
        m2_a[j] += m2_b[j] + d * d * fab;
    }
}

#define CYR_T float
#define CYR_SUFFIX f32
#include "batchnorm_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#define CYR_T double
#define CYR_SUFFIX f64
#include "batchnorm_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#endif /* CYRELU_BATCHNORM_H */
