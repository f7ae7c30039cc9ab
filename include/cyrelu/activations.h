/* ReLU and Leaky ReLU, forward and backward, for float16, float and double.
 *
 * The kernel bodies live once, in activations_template.h, which is included
 * twice below with CYR_T / CYR_SUFFIX set to (float, f32) and (double, f64).
 *
 * Semantics are PyTorch's (aten threshold / leaky_relu and their backwards):
 *   relu(x)                = x < 0 ? 0 : x           NaN stays NaN, -0.0 stays -0.0
 *   leaky_relu(x, a)       = x > 0 ? x : a * x        NaN stays NaN, any a
 *   relu_backward(g, x)    = x <= 0 ? 0 : g           gradient 0 at x == 0, g where x is NaN
 *   leaky_backward(g, x, a)= x > 0 ? g : a * g        a*g at x == 0 and where x is NaN
 */
#ifndef CYRELU_ACTIVATIONS_H
#define CYRELU_ACTIVATIONS_H

#include "common.h"

/* Operation codes shared with the Cython layer (cyrelu/_activations.pxd). */
#define CYR_OP_RELU 0
#define CYR_OP_LEAKY_RELU 1

/* One copy of the template per (type, ISA): CYR_SUFFIX names it, CYR_TARGET is the
 * function attribute that selects the instruction set. */
#define CYR_TEMPLATE "activations_template.h"
#define CYR_TEMPLATE_HALF 1
#include "instantiate.h"
#undef CYR_TEMPLATE

/* ---- entry points used by Cython: one per (shape, type), dispatching on the ISA ---- */
#if CYR_ISA_DISPATCH
#define CYR_DISPATCH(name, T, args)                                                        \
    do {                                                                                   \
        int level_ = cyr_isa_level();                                                      \
        if (level_ >= CYR_ISA_AVX512) cyr_##name##_##T##_avx512 args;                       \
        else if (level_ == CYR_ISA_AVX2) cyr_##name##_##T##_avx2 args;                      \
        else cyr_##name##_##T##_base args;                                                 \
    } while (0)
#else
#define CYR_DISPATCH(name, T, args) cyr_##name##_##T##_base args
#endif

#define CYR_ENTRY_POINTS(T, S, AT)                                                             \
CYR_INLINE void cyr_unary_##S(int op, const T *x, T *y, Py_ssize_t n, AT a) {               \
    CYR_DISPATCH(unary, S, (op, x, y, n, a));                                              \
}                                                                                          \
CYR_INLINE void cyr_unary_strided_##S(int op, const char *x, Py_ssize_t sx, char *y,       \
                                      Py_ssize_t sy, Py_ssize_t n, AT a) {                  \
    CYR_DISPATCH(unary_strided, S, (op, x, sx, y, sy, n, a));                              \
}                                                                                          \
CYR_INLINE void cyr_binary_##S(int op, const T *g, const T *x, T *out, Py_ssize_t n,       \
                               AT a) {                                                      \
    CYR_DISPATCH(binary, S, (op, g, x, out, n, a));                                        \
}                                                                                          \
CYR_INLINE void cyr_binary_strided_##S(int op, const char *g, Py_ssize_t sg,               \
                                       const char *x, Py_ssize_t sx, char *out,            \
                                       Py_ssize_t so, Py_ssize_t n, AT a) {                 \
    CYR_DISPATCH(binary_strided, S, (op, g, sg, x, sx, out, so, n, a));                    \
}

CYR_ENTRY_POINTS(float, f32, float)
CYR_ENTRY_POINTS(double, f64, double)
CYR_ENTRY_POINTS(cyr_half, f16, float)

#endif /* CYRELU_ACTIVATIONS_H */
