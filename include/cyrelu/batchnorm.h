/* BatchNorm kernels (statistics, normalisation with a fused activation, backward),
 * for float and double data, and float16 data computed in float (the float kernels
 * on converted tiles: batchnorm_half_template.h).
 *
 * The kernel bodies live once, in batchnorm_template.h, which is included below once
 * per element type (float, double) and instruction set (baseline; AVX2 and AVX-512
 * with gcc/clang on x86-64), as activations.h does; the cyr_bn_*_f32/_f64 entry
 * points pick the copy from cyr_isa_level() (common.h).
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
 * Sums are accumulated in double for every element type; a block's variance comes from
 * its sums shifted by a value near its mean, in one read (float64: then a second read in
 * cache, shifted by the mean), and blocks are combined with Chan et al.'s pairwise
 * update.  Work is partitioned by channel or by fixed row groups that do not depend on
 * the thread count, so results are bitwise identical for any number of threads.
 */
#ifndef CYRELU_BATCHNORM_H
#define CYRELU_BATCHNORM_H

#include <float.h>
#include <math.h>
#include "common.h"
#include "activations.h"
#include "vecd.h"

/* The fused activation is a CYR_ACT_* code of the activation table (activations.h,
 * cyrelu/cuda/activation_table.h), or CYR_ACT_NONE.  The switches over it list the
 * activations BatchNorm fuses (CYR_BN_FORWARD_ACTIVATIONS in the forward kernels,
 * CYR_BN_BACKWARD_ACTIVATIONS in the backward ones): any other code runs as
 * CYR_ACT_NONE, and the Python layer never passes one. */
#define CYR_BN_CASE_(name, NAME) \
    case CYR_ACT_##NAME: CYR_BN_CALL(CYR_ACT_##NAME); break;
/* The activations computed by activation_special.h's functions (the expensive ones,
 * CYR_SPECIAL_ACTIVATIONS), as a test that is an integer constant expression for a
 * literal code. */
#define CYR_BN_SPECIAL_BIT_(name, NAME) | (1u << CYR_ACT_##NAME)
#define CYR_BN_SPECIAL_MASK (0u CYR_SPECIAL_ACTIVATIONS(CYR_BN_SPECIAL_BIT_))
#define CYR_BN_IS_SPECIAL(act) ((unsigned)(act) < 32u && ((CYR_BN_SPECIAL_MASK >> (act)) & 1u))
/* The backward's gate: the activations of CYR_BN_BACKWARD_LOOP_ACTIVATIONS (the relu
 * family, hardsigmoid, hardswish) are compiled into the kernels' loops (one specialised
 * loop each); the smooth ones are taken at the pre-activation only (src = x, with the
 * forward's scale and shift), through L1 tiles: the pre-activation recomputed into the
 * tile, then the activation's own backward loop over it (bn_tile_gate), then the plain
 * kernel over the gated tile.  Their code is then compiled once per copy, not once per
 * kernel (hardsigmoid and hardswish in the loops cost 18% more code; see
 * activation_table.h). */
#define CYR_BN_BACKWARD_BIT_(name, NAME) | (1u << CYR_ACT_##NAME)
#define CYR_BN_BACKWARD_MASK (0u CYR_BN_BACKWARD_LOOP_ACTIVATIONS(CYR_BN_BACKWARD_BIT_))
#define CYR_BN_IS_TILED_BW(act)                                                            \
    ((act) > CYR_ACT_NONE && (act) < CYR_ACT_END_ && !((CYR_BN_BACKWARD_MASK >> (act)) & 1u))
/* The backward of float32/float64 data with a tiled activation keeps the gate in dx: the
 * first pass stores dy times the derivative into dx (written while the data is in
 * cache) and the second pass reads it back there, in place, instead of taking the
 * derivative again.  Taken twice, gelu's and mish's derivative made the fused backward
 * 5.1-6.3x BatchNorm's backward alone, slower than the activation's backward in a pass
 * of its own then BatchNorm's (3.2-3.9x; NCHW (32, 64, 56, 56), Zen 4).  float16 data
 * (whose dx holds halves) and the backward's two passes taken apart (Dask's
 * partial_sums / partial_dx, which have no dx in the first) take it twice. */
#define CYR_BN_KEEPS_GATE(act) CYR_BN_IS_TILED_BW(act)
/* The row layout keeps it for more: cyr_bn_keeps_gate_rows (below). */

/* The derivative of elu, celu and selu read from the forward's output y, as torch's
 * elu_backward with is_result: y > 0 ? pos : f * (y + s) (pos: selu's scale, else 1;
 * f and s: 1 and alpha for elu, 1 / alpha and alpha for celu, 1 and scale * alpha for
 * selu; the scale is activation_special.h's CYR_D_SELU_SCALE).  The Python layer adds CYR_BN_GATE_AT_OUTPUT to the activation's code and
 * passes f and s as the parameters a and b; the backward entry points take the flag off
 * the code (CYR_BN_ACT_OF) into the gate's parameters (at_y), and the tiled gate
 * (bn_tile_gate) takes the derivative from the tile, which then holds y (sc 1, sh 0). */
#define CYR_BN_GATE_AT_OUTPUT 256
#define CYR_BN_ACT_OF(act) ((act) & (CYR_BN_GATE_AT_OUTPUT - 1))
static inline int cyr_bn_keeps_gate(int act) { return CYR_BN_KEEPS_GATE(CYR_BN_ACT_OF(act)); }

/* The forward's switches (their `a` is a cyr_bn_par_*: the activation's a and b) hold
 * the cheap activations only.  The expensive ones are sent, before any switch, through
 * L1 tiles to the activation's own loop (unary_plain, activations_template.h, which
 * also picks gelu's form and softplus's beta = 1 outside its loop): their code is then
 * compiled once per copy, not once per switch (BatchNorm's build took twice as long),
 * and on short rows the loop's setup is paid once per tile, not per row. */
#define CYR_BN_FCASE_(name, NAME) \
    case CYR_ACT_##NAME: if (!CYR_BN_IS_SPECIAL(CYR_ACT_##NAME)) CYR_BN_CALL(CYR_ACT_##NAME); break;

/* The fused activation's parameters through the forward kernels: its a and b (0 where
 * it has fewer; cyrelu/cuda/activation_table.h), in the arithmetic's type.
 * The backward's gate: the activation's a and b, and where its derivative is taken:
 * at src * sc[c] + sh[c] per channel (or column), src being the forward's output (sc 1,
 * sh 0) or x (sc and sh the forward's scale and shift: the pre-activation recomputed).
 * The pointers are the kernel's channel's (or first column's); always valid. */
#define CYR_BN_PARAM_TYPES(T)                                                              \
typedef struct { T a, b; } cyr_bn_par_##T;                                                 \
typedef struct { T a, b; const T *sc, *sh; int at_y; } cyr_bn_gatep_##T;                  \
static inline cyr_bn_par_##T cyr_bn_par_make_##T(T a, T b) {                               \
    cyr_bn_par_##T p;                                                                      \
    p.a = a;                                                                               \
    p.b = b;                                                                               \
    return p;                                                                              \
}                                                                                          \
static inline cyr_bn_gatep_##T cyr_bn_gatep_make_##T(int act, T a, T b, const T *sc,      \
                                                    const T *sh) {                         \
    cyr_bn_gatep_##T p;                                                                    \
    p.a = a;                                                                               \
    p.b = b;                                                                               \
    p.sc = sc;                                                                             \
    p.sh = sh;                                                                             \
    p.at_y = (act & CYR_BN_GATE_AT_OUTPUT) != 0;                                           \
    return p;                                                                              \
}
CYR_BN_PARAM_TYPES(float)
CYR_BN_PARAM_TYPES(double)
#undef CYR_BN_PARAM_TYPES
#define CYR_BN_CASE2_(name, NAME) \
    case 2 * CYR_ACT_##NAME + 1: CYR_BN_CALL(CYR_ACT_##NAME, 1); break; \
    case 2 * CYR_ACT_##NAME: CYR_BN_CALL(CYR_ACT_##NAME, 0); break;

/* Helpers are forced inline, so that every loop is compiled inside its kernel, for
 * that kernel's instruction set. */
#if defined(__GNUC__) || defined(__clang__)
#  define CYR_BN_INLINE static inline __attribute__((always_inline))
#else
#  define CYR_BN_INLINE static inline
#endif

/* Independent accumulators in the reductions: lanes the compiler can keep in
 * vector registers without reassociating a single sum (no -ffast-math needed). */
#define CYR_BN_LANES 16
/* elements gated at a time into an L1 buffer by the backward's reductions (bn_gate_run):
 * a multiple of CYR_BN_LANES */
#define CYR_BN_GATE_RUN 256

/* The lanes' total, added as a fixed binary tree. */
CYR_INLINE double cyr_bn_lanes_total(double *acc) {
    for (int h = CYR_BN_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; ++k) acc[k] += acc[k + h];
    return acc[0];
}

/* A channel's statistics, one read (bn_chan_shift_*, batchnorm_template.h): its sums
 * shifted by k, s1 = sum(x - k) and (but for float64 data) s2 = sum((x - k)**2), in
 * CYR_BN_CARRY doubles: the CYR_BN_LANES lanes of s1, those of s2, the tails of s1 and
 * s2, then k.  The training forward carries them from one channel to the next
 * (bn_train_channel). */
#define CYR_BN_CARRY (2 * CYR_BN_LANES + 3)
#define CYR_BN_SH_TAIL (2 * CYR_BN_LANES)
#define CYR_BN_SH_K (2 * CYR_BN_LANES + 2)

/* The elements a chunk of `rows` rows of `inner` takes its shift from
 * (bn_chan_shift_begin): the first cyr_bn_shift_cols of each of its first
 * CYR_BN_SHIFT_ROWS, at least a 256th of the chunk: ceil(rows / 256) rows, and of each
 * the share of the row that makes up that 256th, rounded up to whole lane groups.  A
 * chunk of a few long rows (NCHW (8, 32, 224, 224) under a 512 KiB L2: one row of
 * 50176) so takes its shift from a small piece, not a first read of its whole row. */
#define CYR_BN_SHIFT_ROWS(rows) (((rows) + 255) / 256)
CYR_INLINE Py_ssize_t cyr_bn_shift_cols(Py_ssize_t rows, Py_ssize_t inner) {
    const Py_ssize_t per = 256 * CYR_BN_SHIFT_ROWS(rows);
    const Py_ssize_t e = (rows * inner + per - 1) / per;
    const Py_ssize_t r = (e + CYR_BN_LANES - 1) / CYR_BN_LANES * CYR_BN_LANES;
    return r < inner ? r : inner;
}

/* The shift k of a chunk's sums from the plain sums h of its first e elements
 * (CYR_BN_LANES lanes, then the tail; totalled in place): their mean, or 0 where that is
 * not finite (an infinite or NaN shift would make every difference so).  The float and
 * float16 kernels take it alike, so their sums stay bitwise the same. */
CYR_INLINE double cyr_bn_shift_of(double *h, double e) {
    const double k = (cyr_bn_lanes_total(h) + h[CYR_BN_LANES]) / e;
    return fabs(k) <= DBL_MAX ? k : 0.0;
}

/* The mean of the n elements of shifted sums s (s: CYR_BN_CARRY doubles, its lanes
 * totalled in place) and, where m2 is not NULL, M2 = s2 - s1 * s1 / n, their sum of
 * squared deviations (clamped at 0: rounding's only; NaN stays).  The shift k is the
 * mean of e >= n / 256 of the chunk's elements (bn_chan_shift_begin, cyr_bn_shift_cols):
 * their squared deviations from the chunk's mean, a part of M2, are at least
 * e * (mean - k)**2, so s1 * s1 / n = n * (mean - k)**2 <= n / e * M2 <= 256 * M2 and the
 * subtraction magnifies the sums' rounding at most 513 times (9 of float64's 53 bits),
 * as the row layout's (bn_colshift_done).  Where the chunk is constant, k is its value
 * exactly (a sum of fewer than 2**29 copies of a float32 value is exact in double): M2
 * is 0. */
CYR_INLINE void cyr_bn_shift_done(double *s, double n, double *mean, double *m2) {
    const double s1 = cyr_bn_lanes_total(s) + s[CYR_BN_SH_TAIL];
    const double d = s1 / n;
    *mean = s[CYR_BN_SH_K] + d;
    if (m2 != NULL) {
        const double q = cyr_bn_lanes_total(s + CYR_BN_LANES) + s[CYR_BN_SH_TAIL + 1] - s1 * d;
        *m2 = q < 0.0 ? 0.0 : q;
    }
}

/* Software prefetch of the next rows of a channel: the per-channel loops jump
 * between rows `C * inner` elements apart, and rows of a few KiB are too short for
 * the hardware prefetcher to ramp up on. */
#define CYR_BN_PREFETCH_ROWS 2
/* ...and, within a run of the training forward's sums, this many elements ahead.  (The
 * backward's pass 1 has none: there they measured slower, the hardware prefetcher
 * keeping up with its two streams.) */
#define CYR_BN_PREFETCH_AHEAD 512
/* Longer rows (cyr_bn_wants_prefetch false) are too long to prefetch whole in one burst,
 * and still read slowly row by row: x and dy of NCHW (32, 64, 56, 56) float32 (rows of
 * 12 KiB, 784 KiB apart), read channel by channel, took 2.5x the time of the same bytes
 * read in order (one thread, Zen 5; benchmarks/bn_paced_rows.c).  So a channel's first
 * passes from memory (the forward's sums, the backward's pass 1) take such rows in pieces
 * of CYR_BN_PACE_BYTES, each preceded by a prefetch of the same piece of the next row.
 * Against no pacing, one thread: the statistics took 0.73-0.84x their time, the training
 * forward 0.78-0.90x, the backward's pass 1 0.53-0.59x, the whole backward 0.65-0.72x
 * (into L2 instead of L1: the same within the noise).  The callers spell the prefetches
 * out: GCC 12 at -O3 dropped some or all of those of a helper taking dy, x and y
 * (tests/test_c_kernels.py checks that they survive).  The pieces are whole lane groups
 * (a multiple of CYR_BN_LANES) taken in order, so each element joins the same lane (or
 * tail) as in one run over the row: the same bits.  (Not in the pipelined backward, whose
 * next channel's rows are read in its pieces: not measured where it runs with such rows,
 * on an L2 of 2 MiB.) */
#ifndef CYR_BN_PACE_BYTES  /* 0 turns the pacing off (a test compiles so, to compare) */
#  define CYR_BN_PACE_BYTES 1024
#endif
#define CYR_BN_PACE_N(T) ((Py_ssize_t)(CYR_BN_PACE_BYTES / sizeof(T)))
/* Row o of [o, o1) is read paced (the next row prefetched piece by piece) where the rows
 * are long (prefetch == 0: cyr_bn_wants_prefetch false) and a next row follows. */
CYR_INLINE int cyr_bn_paces(int prefetch, Py_ssize_t o, Py_ssize_t o1) {
    return CYR_BN_PACE_BYTES > 0 && !prefetch && o + 1 < o1;
}
/* The end of the piece of a paced row that starts at i (of n): CYR_BN_PACE_N(T) on, or
 * the row's end where less than that is left. */
#define CYR_BN_PACE_END(i, n, T) ((n) - (i) < CYR_BN_PACE_N(T) ? (n) : (i) + CYR_BN_PACE_N(T))
/* Row layout: rows shorter than CYR_BN_SHORT_ROW_BYTES (where the hardware prefetcher
 * falls behind, as measured) prefetch the bytes CYR_BN_AHEAD_BYTES ahead of the current
 * row; longer rows are left to the hardware. */
#define CYR_BN_AHEAD_BYTES 4096
#define CYR_BN_SHORT_ROW_BYTES 1024
/* The row layout's first passes over rows of at least CYR_BN_SHORT_ROW_BYTES (the
 * statistics' one read, bn_colshift_acc, and the backward's sums, bn_dot_cols_impl) read
 * four rows at a time, four streams per array, each as long as a row; the hardware
 * prefetchers stop at every 4 KiB page and had to learn each again.  Those passes
 * prefetch this far ahead of each sweep of four rows, in memory order, a line for each
 * line they read.  (4096, 1024) float32, one thread, Zen 5, from memory: the one-read
 * statistics took 0.56-0.58x the time without it (from the L3 0.72-0.89x); 4 KiB ahead
 * gained a quarter as much, 32 and 64 KiB the same as 16. */
#ifndef CYR_BN_ROWS_AHEAD_BYTES /* 0 (tests/test_c_kernels.py) compiles it out */
#define CYR_BN_ROWS_AHEAD_BYTES 16384
#endif
/* ...or one sweep ahead, where a sweep's four rows (sweep_bytes) are longer */
#define CYR_BN_ROWS_AHEAD(sweep_bytes) \
    ((sweep_bytes) > CYR_BN_ROWS_AHEAD_BYTES ? (sweep_bytes) : CYR_BN_ROWS_AHEAD_BYTES)

/* The row layout keeps the gate of every activation in dx too (float32/float64 data;
 * the Python layer passes dx to the first pass, which gates dy into it with
 * bn_gate_rows, then runs the second in place), except relu at the pre-activation on
 * rows shorter than CYR_BN_SHORT_ROW_BYTES.  Taking the relu family's gate in both
 * passes (the pre-activation's per-column scale and shift, two more arrays, in each)
 * made relu's backward from bias= 1.7-2.3x the plain backward's time on (4096, 1024),
 * (8192, 512) and (16384, 256) float32 (2 threads, Zen 4), 1.02-1.13x kept.  On
 * channels-last (32, 56, 56, 64) kept: relu6 and leaky_relu from bias= 1.45-1.66x ->
 * 1.24-1.29x, relu and relu6 from output= 1.71-2.17x -> 1.50-1.69x (the second pass
 * reads the output no more); relu from bias= 1.07-1.15x -> 1.20-1.37x (its gate, a
 * masked load, is cheaper than the kept pass's store and reload). */
static inline int cyr_bn_keeps_gate_rows(int act, int at_z, Py_ssize_t row_bytes) {
    const int a = CYR_BN_ACT_OF(act);
    if (a == CYR_ACT_NONE) return 0;
    return !(a == CYR_ACT_RELU && at_z && row_bytes < CYR_BN_SHORT_ROW_BYTES);
}

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

/* Into L2 only (prefetcht1): data for the next step, while L1 serves this one. */
#if defined(__GNUC__) || defined(__clang__)
#  define CYR_BN_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#else
#  define CYR_BN_PREFETCH_L2(p) ((void)(p))
#endif

CYR_INLINE void cyr_bn_prefetch_l2_run(const void *p, Py_ssize_t bytes) {
    const char *c = (const char *)p;
    for (Py_ssize_t off = 0; off < bytes; off += 64) CYR_BN_PREFETCH_L2(c + off);
}

#if defined(__GNUC__) || defined(__clang__)
#  define CYR_BN_PREFETCHW(p) __builtin_prefetch((p), 1, 3)
#else
#  define CYR_BN_PREFETCHW(p) ((void)(p))
#endif

/* The same for lines about to be written (their read-for-ownership starts early). */
CYR_INLINE void cyr_bn_prefetchw_run(void *p, Py_ssize_t bytes) {
    char *c = (char *)p;
    for (Py_ssize_t off = 0; off < bytes; off += 64) CYR_BN_PREFETCHW(c + off);
}

/* A channel slab larger than cyr_slab_bytes() (half the per-core L2, cache.h) is
 * reduced in chunks of rows of at most that size.  The pipelined backward needs two
 * channels' slabs to fit in the L2 (cyr_l2_bytes()). */

/* Streaming output tiles (see common.h): small, as the per-channel runs can be short. */
#define CYR_BN_TILE_BYTES 512
#define CYR_BN_TILE_N(T) ((Py_ssize_t)(CYR_BN_TILE_BYTES / sizeof(T)))
/* the L1 tile of the expensive activations (CYR_BN_IS_SPECIAL), in bn_affine and
 * bn_affine_cols_wrap and as the streamed tile: their vector loop's setup is paid once
 * per tile (with 512-byte streamed tiles, BatchNorm fused with gelu took longer than
 * the two calls, BatchNorm then gelu: 3.6-4.0x against 3.2-3.5x BatchNorm alone's
 * time, NCHW (32, 64, 56, 56) float32, 2 threads, Zen 4) */
#define CYR_BN_ACT_TILE_BYTES 4096
#define CYR_BN_ACT_TILE_N(T) ((Py_ssize_t)(CYR_BN_ACT_TILE_BYTES / sizeof(T)))
/* The row layout's per-column arrays (the forward's scale and shift, the backward's four
 * parameters of dx and its gate's sc and sh: the Python layer's _row_coefs) hold
 * CYR_BN_COEF_EXT_BYTES more than their w columns, repeating them (element w + j is
 * element j), and where the output streams they start at its offset within a 64-byte
 * line: a streamed tile that wraps from one row into the next then runs as one loop
 * over coefficients on its lines instead of one loop per row piece (an output one
 * 16-byte step off the line, as NumPy allocates large arrays, took 1.37x the aligned
 * time with 64 columns, one thread, Zen 5). */
#define CYR_BN_COEF_EXT_BYTES 4096
#define CYR_BN_COEF_EXT_N(T) ((Py_ssize_t)(CYR_BN_COEF_EXT_BYTES / sizeof(T)))
#define CYR_BN_STREAM_TILE_N_(act) \
    (CYR_BN_IS_SPECIAL(act) ? CYR_BN_ACT_TILE_N(CYR_T) : CYR_BN_TILE_N(CYR_T))
/* The pipelined backward alternates dx and pass 1 in pieces of this many bytes (a
 * multiple of CYR_BN_TILE_BYTES and of the lane groups).  As measured, pieces of 64 to
 * 512 bytes alternate best; 4 KiB pieces gave back half the gain, whole rows nearly
 * all of it. */
#define CYR_BN_PIPE_BYTES 512
#define CYR_BN_PIPE_N(T) ((Py_ssize_t)(CYR_BN_PIPE_BYTES / sizeof(T)))
#define CYR_BN_HEAD_N(p, T) ((Py_ssize_t)(((64 - ((size_t)(p) & 63)) & 63) / sizeof(T)))

/* dx of one element in training from its gated dy g, its x and its channel's (or
 * column's) coefficients below: the expression every scalar dx loop rounds (the
 * float16 copy's vectors spell it in intrinsics); in evaluation dx = g * A. */
#define CYR_BN_DX_TRAIN(g, xv, mean, k, mdy, A) (((g) - ((xv) - (mean)) * (k) - (mdy)) * (A))

/* The input gradient's coefficients from a channel's sums (sum(g), sum(g * (x - mean))
 * over n values): k = sum(g * (x - mean)) / n * invstd**2 and mdy = sum(g) / n (both
 * zero unless training), and A = w * invstd; dx = (g - (x - mean) * k - mdy) * A.  One
 * definition for both loop shapes. */
CYR_INLINE void cyr_bn_dx_coefs(const double *sums, double n, double invstd, double w,
                                int train, double *k, double *mdy, double *A) {
    *k = 0.0;
    *mdy = 0.0;
    if (train && n > 0) {
        *mdy = sums[0] / n;
        *k = sums[1] / n * invstd * invstd;
    }
    *A = w * invstd;
}

/* Chan et al.: merge (nb, mean_b, m2_b) into (na, mean_a, m2_a), elementwise over w.
 * Where a mean is infinite the difference is not finite, and the mean is the weighted
 * sum instead, as a single sum would give it: +inf with finite data (PyTorch's mean),
 * NaN with both infinities (M2 is then NaN, as a block's deviation from an infinite
 * mean is). */
CYR_INLINE void cyr_bn_chan_merge(double na, double *CYR_RESTRICT mean_a,
                                  double *CYR_RESTRICT m2_a, double nb,
                                  const double *CYR_RESTRICT mean_b,
                                  const double *CYR_RESTRICT m2_b, Py_ssize_t w) {
    const double n = na + nb;
    const double fa = na / n, fb = nb / n, fab = na * nb / n;
    for (Py_ssize_t j = 0; j < w; ++j) {
        const double d = mean_b[j] - mean_a[j];
        if (fabs(d) <= DBL_MAX)
            mean_a[j] += d * fb;
        else
            mean_a[j] = mean_a[j] * fa + mean_b[j] * fb;
        m2_a[j] += m2_b[j] + d * d * fab;
    }
}

/* One copy of the template per (type, ISA), as in activations.h.  Results are bitwise
 * identical across the copies: every reduction has a fixed association order, and
 * a * b + c is never contracted into a fused multiply-add (the AVX-512 target has FMA,
 * and gcc would contract by default), so every copy rounds the same way. */
#if defined(__clang__)
#  pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#  pragma GCC push_options
#  pragma GCC optimize("fp-contract=off")
#endif
#define CYR_TEMPLATE "batchnorm_template.h"
#define CYR_TEMPLATE_HALF 1
#include "instantiate.h"
#undef CYR_TEMPLATE

#if !defined(__clang__) && defined(__GNUC__)
#  pragma GCC pop_options
#endif

/* ---- entry points used by Cython: one per (kernel, type), dispatching on the ISA ---- */
/* the fused activation's parameters a and b of an entry point, as the kernels take them */
#define CYR_BN_PAR_OF(T) CYR_CAT(bn_par_make, T)(a, b)
/* the backward's gate parameters: a, b, the per-channel (or per-column) sc, sh and the
 * flag CYR_BN_GATE_AT_OUTPUT of the entry point's act, which passes on CYR_BN_ACT_OF(act) */
#define CYR_BN_GATEP_OF(T) CYR_CAT(bn_gatep_make, T)(act, a, b, sc, sh)
#define CYR_BN_ENTRY_POINTS(T, S)                                                          \
CYR_INLINE void cyr_bn_train_channel_##S(const T *x, T *y, Py_ssize_t outer, Py_ssize_t C, \
                                         Py_ssize_t inner, Py_ssize_t c, double w,         \
                                         double b, double eps, int act, T a, T pb,         \
                                         int stream, const double *carry_in,               \
                                         double *carry_out, double *mean_out,              \
                                         double *var_out) {                                \
    CYR_DISPATCH(bn_train_channel, S, (x, y, outer, C, inner, c, w, b, eps, act,           \
                                       CYR_CAT(bn_par_make, T)(a, pb), stream, carry_in,   \
                                       carry_out, mean_out, var_out));                     \
}                                                                                          \
CYR_INLINE void cyr_bn_channel_stats_##S(const T *x, Py_ssize_t outer, Py_ssize_t C,       \
                                         Py_ssize_t inner, Py_ssize_t c, double *mean,     \
                                         double *m2) {                                     \
    CYR_DISPATCH(bn_channel_stats, S, (x, outer, C, inner, c, mean, m2));                  \
}                                                                                          \
CYR_INLINE void cyr_bn_affine_chan_rows_##S(int act, const T *x, T *y, Py_ssize_t r0,      \
                                            Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner, \
                                            const T *scale, const T *shift, T a, T b,      \
                                            int stream) {                                  \
    CYR_DISPATCH(bn_affine_chan_rows, S, (act, x, y, r0, r1, C, inner, scale, shift,       \
                                          CYR_BN_PAR_OF(T), stream));                      \
}                                                                                          \
CYR_INLINE void cyr_bn_affine_rows_##S(int act, const T *x, T *y, Py_ssize_t rows,         \
                                       Py_ssize_t w, const T *scale, const T *shift, T a,  \
                                       T b) {                                              \
    CYR_DISPATCH(bn_affine_rows, S,                                                        \
                 (act, x, y, rows, w, scale, shift, CYR_BN_PAR_OF(T)));                    \
}                                                                                          \
CYR_INLINE void cyr_bn_affine_rows_stream_##S(int act, const T *x, T *y, Py_ssize_t rows,  \
                                              Py_ssize_t w, const T *scale, const T *shift, \
                                              T a, T b) {                                  \
    CYR_DISPATCH(bn_affine_rows_stream, S,                                                 \
                 (act, x, y, rows, w, scale, shift, CYR_BN_PAR_OF(T)));                    \
}                                                                                          \
CYR_INLINE void cyr_bn_group_colstats_##S(const T *x, Py_ssize_t rows, Py_ssize_t w,       \
                                          Py_ssize_t block_rows, double *gmean,            \
                                          double *gm2, double *t) {                        \
    CYR_DISPATCH(bn_group_colstats, S, (x, rows, w, block_rows, gmean, gm2, t));           \
}                                                                                          \
CYR_INLINE void cyr_bn_backward_channel_##S(const T *dy, const T *x, const T *y, T *dx,    \
                                            Py_ssize_t outer, Py_ssize_t C,                \
                                            Py_ssize_t inner, Py_ssize_t c, double mean,   \
                                            double invstd, double w, int train, int act,   \
                                            T a, T b, const T *sc, const T *sh, int stream, double *sums) { \
    CYR_DISPATCH(bn_backward_channel, S, (dy, x, y, dx, outer, C, inner, c, mean, invstd,  \
                                          w, train, CYR_BN_ACT_OF(act), CYR_BN_GATEP_OF(T), \
                                          stream, sums));                                  \
}                                                                                          \
CYR_INLINE void cyr_bn_channel_dx_##S(const T *dy, const T *x, const T *y, T *dx,          \
                                      Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,    \
                                      Py_ssize_t c, double mean, double invstd, double w,  \
                                      const double *sums, double n, int train, int act,    \
                                      T a, T b, const T *sc, const T *sh, int stream) {    \
    CYR_DISPATCH(bn_channel_dx, S, (dy, x, y, dx, outer, C, inner, c, mean, invstd, w,     \
                                    sums, n, train, CYR_BN_ACT_OF(act), CYR_BN_GATEP_OF(T), \
                                    stream));                                              \
}                                                                                          \
CYR_INLINE void cyr_bn_backward_channels_piped_##S(const T *dy, const T *x, const T *y,    \
                                                   T *dx, Py_ssize_t outer, Py_ssize_t C,  \
                                                   Py_ssize_t inner, Py_ssize_t c0,        \
                                                   Py_ssize_t c1, const double *mean,      \
                                                   const double *invstd, const double *w,  \
                                                   int train, int act, T a, T b, const T *sc, const T *sh, \
                                                   double *sums) {                         \
    CYR_DISPATCH(bn_backward_channels_piped, S, (dy, x, y, dx, outer, C, inner, c0, c1,    \
                                                 mean, invstd, w, train, CYR_BN_ACT_OF(act), \
                                                 CYR_BN_GATEP_OF(T), sums));               \
}                                                                                          \
CYR_INLINE void cyr_bn_dot_cols_##S(int act, const T *dy, const T *x, const T *y,          \
                                    Py_ssize_t rows, Py_ssize_t w, const double *mean,     \
                                    T a, T b, const T *sc, const T *sh, double *s0, double *s1, \
                                    T *gs) {                                               \
    CYR_DISPATCH(bn_dot_cols, S, (CYR_BN_ACT_OF(act), dy, x, y, rows, w, mean,           \
                                  CYR_BN_GATEP_OF(T), s0, s1, gs));                        \
}                                                                                          \
CYR_INLINE void cyr_bn_dx_cols_##S(int act, int train, const T *dy, const T *x,            \
                                   const T *y, T *dx, Py_ssize_t rows, Py_ssize_t w,       \
                                   const T *mean, const T *k, const T *mdy, const T *A,    \
                                   T a, T b, const T *sc, const T *sh) {                   \
    CYR_DISPATCH(bn_dx_cols, S, (CYR_BN_ACT_OF(act), train, dy, x, y, dx, rows, w, mean, k, \
                                 mdy, A, CYR_BN_GATEP_OF(T)));                             \
}                                                                                          \
CYR_INLINE void cyr_bn_dx_cols_stream_##S(int act, int train, const T *dy, const T *x,     \
                                          const T *y, T *dx, Py_ssize_t rows, Py_ssize_t w, \
                                          const T *mean, const T *k, const T *mdy,         \
                                          const T *A, T a, T b, const T *sc, const T *sh) { \
    CYR_DISPATCH(bn_dx_cols_stream, S,                                                     \
                 (CYR_BN_ACT_OF(act), train, dy, x, y, dx, rows, w, mean, k, mdy, A,      \
                  CYR_BN_GATEP_OF(T)));                                                    \
}

CYR_BN_ENTRY_POINTS(float, f32)
CYR_BN_ENTRY_POINTS(double, f64)

/* float16 data (batchnorm_half_template.h): the per-channel and per-column parameters
 * and alpha in float; no pipelined backward. */
CYR_INLINE void cyr_bn_train_channel_f16(const cyr_half *x, cyr_half *y, Py_ssize_t outer,
                                         Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                                         double w, double b, double eps, int act, float a,
                                         float pb, int stream, double *mean_out,
                                         double *var_out) {
    CYR_DISPATCH(bn_train_channel, f16, (x, y, outer, C, inner, c, w, b, eps, act,
                                         cyr_bn_par_make_float(a, pb), stream, mean_out,
                                         var_out));
}
CYR_INLINE void cyr_bn_channel_stats_f16(const cyr_half *x, Py_ssize_t outer, Py_ssize_t C,
                                         Py_ssize_t inner, Py_ssize_t c, double *mean,
                                         double *m2) {
    CYR_DISPATCH(bn_channel_stats, f16, (x, outer, C, inner, c, mean, m2));
}
CYR_INLINE void cyr_bn_affine_chan_rows_f16(int act, const cyr_half *x, cyr_half *y,
                                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                                            Py_ssize_t inner, const float *scale,
                                            const float *shift, float a, float b, int stream) {
    CYR_DISPATCH(bn_affine_chan_rows, f16, (act, x, y, r0, r1, C, inner, scale, shift,
                                            cyr_bn_par_make_float(a, b), stream));
}
CYR_INLINE void cyr_bn_affine_rows_f16(int act, const cyr_half *x, cyr_half *y,
                                       Py_ssize_t rows, Py_ssize_t w, const float *scale,
                                       const float *shift, float a, float b) {
    CYR_DISPATCH(bn_affine_rows, f16,
                 (act, x, y, rows, w, scale, shift, cyr_bn_par_make_float(a, b)));
}
CYR_INLINE void cyr_bn_group_colstats_f16(const cyr_half *x, Py_ssize_t rows, Py_ssize_t w,
                                          Py_ssize_t block_rows, double *gmean,
                                          double *gm2, double *t) {
    CYR_DISPATCH(bn_group_colstats, f16, (x, rows, w, block_rows, gmean, gm2, t));
}
CYR_INLINE void cyr_bn_backward_channel_f16(const cyr_half *dy, const cyr_half *x,
                                            const cyr_half *y, cyr_half *dx,
                                            Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                            Py_ssize_t c, double mean, double invstd,
                                            double w, int train, int act, float a,
                                            float b, const float *sc, const float *sh, int stream, double *sums) {
    CYR_DISPATCH(bn_backward_channel, f16, (dy, x, y, dx, outer, C, inner, c, mean, invstd,
                                            w, train, CYR_BN_ACT_OF(act),
                                            cyr_bn_gatep_make_float(act, a, b, sc, sh), stream,
                                            sums));
}
CYR_INLINE void cyr_bn_channel_dx_f16(const cyr_half *dy, const cyr_half *x,
                                      const cyr_half *y, cyr_half *dx, Py_ssize_t outer,
                                      Py_ssize_t C, Py_ssize_t inner, Py_ssize_t c,
                                      double mean, double invstd, double w,
                                      const double *sums, double n, int train, int act,
                                      float a, float b, const float *sc, const float *sh, int stream) {
    CYR_DISPATCH(bn_channel_dx, f16, (dy, x, y, dx, outer, C, inner, c, mean, invstd, w,
                                      sums, n, train, CYR_BN_ACT_OF(act),
                                      cyr_bn_gatep_make_float(act, a, b, sc, sh), stream));
}
CYR_INLINE void cyr_bn_dot_cols_f16(int act, const cyr_half *dy, const cyr_half *x,
                                    const cyr_half *y, Py_ssize_t rows, Py_ssize_t w,
                                    const double *mean, float a, float b, const float *sc, const float *sh, double *s0, double *s1) {
    CYR_DISPATCH(bn_dot_cols, f16,
                 (CYR_BN_ACT_OF(act), dy, x, y, rows, w, mean,
                  cyr_bn_gatep_make_float(act, a, b, sc, sh), s0, s1));
}
CYR_INLINE void cyr_bn_dx_cols_f16(int act, int train, const cyr_half *dy, const cyr_half *x,
                                   const cyr_half *y, cyr_half *dx, Py_ssize_t rows,
                                   Py_ssize_t w, const float *mean, const float *k,
                                   const float *mdy, const float *A, float a, float b, const float *sc, const float *sh) {
    CYR_DISPATCH(bn_dx_cols, f16, (CYR_BN_ACT_OF(act), train, dy, x, y, dx, rows, w, mean, k,
                                   mdy, A,
                                   cyr_bn_gatep_make_float(act, a, b, sc, sh)));
}

#endif /* CYRELU_BATCHNORM_H */
