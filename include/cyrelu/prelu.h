/* PReLU, forward and backward, for float16, float and double.
 *
 * The data is contiguous and seen in memory order as (outer, C, inner): C channels, each
 * a run of `inner` consecutive elements, repeated `outer` times.  A weight of length 1
 * is one channel (C = 1, inner = the whole array).  A call covers the elements
 * [pos, pos + n) of that order, so the Cython layer can share an array out across
 * threads in flat chunks; the weight for element i is w[(i / inner) % C].
 *
 *   cyr_prelu_S(x, y, n, pos, C, inner, w)          y = x > 0 ? x : w * x
 *   cyr_prelu_backward_S(g, x, out, n, pos, ...)    out = x > 0 ? g : w * g
 *   cyr_prelu_wsum_S(g, x, outer, C, inner, ...)    per-channel sums of
 *                                                   (x > 0 ? 0 : x * g), see below
 *   cyr_prelu_backward_fused_S(g, x, out, w, ...)   both in one pass (float, double)
 *
 * Semantics are PyTorch's (prelu's kernels): NaN in x takes the w * x / w * g branch.
 * float16 is stored as its bits (cyr_half) with the weight in float: tiles are
 * converted, computed in float and rounded once.  Exact aliasing of the output with an
 * input is allowed.
 *
 * grad_weight: each channel's elements, in memory order, are cut into pieces of `plen`
 * elements (the last shorter), `plen` fixed by the shape alone (the Cython layer takes
 * CYR_PRELU_PIECE, or with the channels last, whole rows holding about that many
 * elements); a piece's sum is accumulated in double in a fixed order (along a run: 16
 * lanes, then a fixed tree; channels last: row after row), and the pieces are added in
 * order.  So the result does not depend on the thread count (threads take whole
 * pieces) nor on the instruction set (no reassociation: -ffp-contract=off and no
 * fast-math; tests/test_prelu.py compares the copies).
 */
#ifndef CYRELU_PRELU_H
#define CYRELU_PRELU_H

#include "common.h"
#include "vecd.h"
#include "../../cyrelu/cuda/activation_special.h" /* cyr_sel_f_, cyr_sel_d_ */

/* A piece of one channel's elements for the grad_weight sums (see above); the sums'
 * lanes; the terms computed at a time and the one-pass backward's tiles (multiples of
 * the lanes). */
#define CYR_PRELU_PIECE ((Py_ssize_t)16384)
#define CYR_PRELU_LANES 16
#define CYR_PRELU_TERMS 256
#define CYR_PRELU_FUSED_TILE 512

/* One copy of the template per (type, ISA), as for the activations (common.h). */
#define CYR_TEMPLATE "prelu_template.h"
#define CYR_TEMPLATE_HALF 1
#include "instantiate.h"
#undef CYR_TEMPLATE

/* ---- entry points used by Cython: one per type, dispatching on the ISA ------------ */
#if CYR_ISA_DISPATCH
#define CYR_PRELU_DISPATCH(name, S, args)                                                  \
    do {                                                                                   \
        int level_ = cyr_isa_level();                                                      \
        if (level_ >= CYR_ISA_AVX512) cyr_##name##_##S##_avx512 args;                       \
        else if (level_ == CYR_ISA_AVX2) cyr_##name##_##S##_avx2 args;                      \
        else cyr_##name##_##S##_base args;                                                 \
    } while (0)
#else
#define CYR_PRELU_DISPATCH(name, S, args) cyr_##name##_##S##_base args
#endif

#define CYR_PRELU_ENTRY(T, S, WT)                                                          \
CYR_INLINE void cyr_prelu_##S(const T *x, T *y, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t C, \
                              Py_ssize_t inner, const WT *w) {                             \
    CYR_PRELU_DISPATCH(prelu, S, (x, y, n, pos, C, inner, w));                             \
}                                                                                          \
CYR_INLINE void cyr_prelu_backward_##S(const T *g, const T *x, T *out, Py_ssize_t n,       \
                                       Py_ssize_t pos, Py_ssize_t C, Py_ssize_t inner,     \
                                       const WT *w) {                                      \
    CYR_PRELU_DISPATCH(prelu_backward, S, (g, x, out, n, pos, C, inner, w));               \
}

CYR_PRELU_ENTRY(float, f32, float)
CYR_PRELU_ENTRY(double, f64, double)
CYR_PRELU_ENTRY(cyr_half, f16, float)

/* grad_weight's piece sums, float and double data (float16 data is converted to float
 * by the caller: exact, and the products in double are exact for both) */
#define CYR_PRELU_WSUM_ENTRY(T, S)                                                         \
CYR_INLINE void cyr_prelu_wsum_##S(const T *g, const T *x, Py_ssize_t outer, Py_ssize_t C,  \
                                   Py_ssize_t inner, Py_ssize_t plen, Py_ssize_t p,        \
                                   Py_ssize_t c0, Py_ssize_t c1, double *acc) {            \
    CYR_PRELU_DISPATCH(prelu_wsum, S, (g, x, outer, C, inner, plen, p, c0, c1, acc));      \
}
CYR_PRELU_WSUM_ENTRY(float, f32)
CYR_PRELU_WSUM_ENTRY(double, f64)

/* prelu_backward in one pass over the same pieces (float and double data): the piece
 * sums as cyr_prelu_wsum_S's, bit for bit, and grad_input written to out (which may be
 * g or x) for the piece's elements */
#define CYR_PRELU_FUSED_ENTRY(T, S)                                                        \
CYR_INLINE void cyr_prelu_backward_fused_##S(const T *g, const T *x, T *out, const T *w,   \
                                             Py_ssize_t outer, Py_ssize_t C,               \
                                             Py_ssize_t inner, Py_ssize_t plen,            \
                                             Py_ssize_t p, Py_ssize_t c0, Py_ssize_t c1,   \
                                             double *acc) {                                \
    CYR_PRELU_DISPATCH(prelu_backward_fused, S,                                            \
                       (g, x, out, w, outer, C, inner, plen, p, c0, c1, acc));             \
}
CYR_PRELU_FUSED_ENTRY(float, f32)
CYR_PRELU_FUSED_ENTRY(double, f64)

#endif /* CYRELU_PRELU_H */
