/* Per-channel counts behind the ReLU diagnostics, for float and double.
 *
 * The kernel bodies live once, in diagnostics_template.h, included twice below
 * with CYR_T / CYR_SUFFIX set to (float, f32) and (double, f64).
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

/* Runs are counted in blocks of this many elements with a 32-bit counter. */
#define CYR_DIAG_BLOCK ((Py_ssize_t)1 << 30)

#define CYR_T float
#define CYR_SUFFIX f32
#include "diagnostics_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#define CYR_T double
#define CYR_SUFFIX f64
#include "diagnostics_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#endif /* CYRELU_DIAGNOSTICS_H */
