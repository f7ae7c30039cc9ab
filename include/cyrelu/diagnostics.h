/* Per-channel counts behind the ReLU diagnostics, for float16, float and double.
 *
 * The kernel bodies live once, in diagnostics_template.h, included below once
 * per element type (float, double) and instruction set (baseline; AVX2 and
 * AVX-512 where common.h enables runtime dispatch).
 *
 * The data is seen as a 3-D box (outer, C, inner) with byte strides
 * (so, sc, si) of any sign: C is the channel axis, `outer` every axis before
 * it and `inner` every axis after it.  A call adds, for each channel c of a
 * sub-box [o0, o1) x [c0, c1) x [i0, i1), the number of elements that satisfy
 * one predicate to acc[c]:
 *
 *   CYR_DIAG_ZEROS  v == 0            -0.0 counts as zero, NaN does not
 *   CYR_DIAG_ALIVE  !(v <= t)         values above the threshold t, and NaN
 *
 * Counts are integers, so the per-thread partial counts add up to exactly the
 * same result whatever the thread count.
 */
#ifndef CYRELU_DIAGNOSTICS_H
#define CYRELU_DIAGNOSTICS_H

#include "common.h"

/* Operation codes shared with the Cython layer (cyrelu/_diagnostics.pyx). */
#define CYR_DIAG_ZEROS 0
#define CYR_DIAG_ALIVE 1

/* Runs (and rows of channel tiles) are counted in blocks of this many with 32-bit counters. */
#define CYR_DIAG_BLOCK ((Py_ssize_t)1 << 30)
/* Channels counted together (32-bit counters on the stack) when they are innermost. */
#define CYR_DIAG_TILE 1024

/* One copy of the template per (type, ISA), as for the activations (common.h). */
#define CYR_TEMPLATE "diagnostics_template.h"
#define CYR_TEMPLATE_HALF 1
#include "instantiate.h"
#undef CYR_TEMPLATE

/* ---- entry points used by Cython: one per type, dispatching on the ISA ------------ */
#define CYR_DIAG_ENTRY(T, S, TT)                                                               \
CYR_INLINE void cyr_diag_count_##S(int op, const char *x, Py_ssize_t so, Py_ssize_t sc,    \
                                   Py_ssize_t si, Py_ssize_t o0, Py_ssize_t o1,            \
                                   Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t i0,            \
                                   Py_ssize_t i1, TT t, Py_ssize_t *acc) {                  \
    CYR_DIAG_DISPATCH(S, (op, x, so, sc, si, o0, o1, c0, c1, i0, i1, t, acc));             \
}

#if CYR_ISA_DISPATCH
#define CYR_DIAG_DISPATCH(S, args)                                                         \
    do {                                                                                   \
        int level_ = cyr_isa_level();                                                      \
        if (level_ >= CYR_ISA_AVX512) cyr_diag_count_##S##_avx512 args;                     \
        else if (level_ == CYR_ISA_AVX2) cyr_diag_count_##S##_avx2 args;                    \
        else cyr_diag_count_##S##_base args;                                               \
    } while (0)
#else
#define CYR_DIAG_DISPATCH(S, args) cyr_diag_count_##S##_base args
#endif

CYR_DIAG_ENTRY(float, f32, float)
CYR_DIAG_ENTRY(double, f64, double)
CYR_DIAG_ENTRY(cyr_half, f16, float)

#endif /* CYRELU_DIAGNOSTICS_H */
