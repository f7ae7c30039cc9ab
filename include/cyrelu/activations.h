/* The elementwise activations, forward and backward, for float16, float and double.
 *
 * Which activations exist, their op codes (CYR_ACT_*) and their math are declared once,
 * in cyrelu/cuda/activation_table.h and activation_math.h (shared with the CUDA
 * kernels).  The kernel bodies live once, in activations_template.h, instantiated per
 * (type, instruction set) by instantiate.h; they choose the activation by a switch over
 * the table's codes.  Semantics are PyTorch's; see activation_math.h.
 */
#ifndef CYRELU_ACTIVATIONS_H
#define CYRELU_ACTIVATIONS_H

#include "common.h"

/* The table: CYR_ACTIVATIONS(X), the codes CYR_ACT_*, the math CYR_FWD_* / CYR_BWD_*.
 * The Cython layer (cyrelu/_activations.pyx) reads the codes and cyr_act_table below. */
#include "../../cyrelu/cuda/activation_table.h"

/* The math's primitives for scalar C (see activation_math.h): plain IEEE compares in
 * the template's type CYR_T (the float copy's for float16). */
#define CYR_CMP_LT <
#define CYR_CMP_LE <=
#define CYR_CMP_GT >
#define CYR_CMP_GE >=
#define CYR_SEL(CMP, x, c, t, f) ((x) CYR_CMP_##CMP (CYR_T)(c) ? (t) : (f))
#define CYR_SELV(CMP, x, y, t, f) ((x) CYR_CMP_##CMP (y) ? (t) : (f))
#define CYR_K(c) ((CYR_T)(c))
#define CYR_MUL(a, b) ((a) * (b))
#define CYR_ADD(a, b) ((a) + (b))
#define CYR_DIV(a, b) ((a) / (b))
/* the smooth members' functions (activation_special.h), in the template's type CYR_T */
#define CYR_SPECIAL(fn, v, a, b)                                                           \
    (sizeof(CYR_T) == sizeof(double)                                                       \
         ? (CYR_T)cyr_##fn##_d((double)(v), (double)(a), (double)(b))                      \
         : (CYR_T)cyr_##fn##_f((float)(v), (float)(a), (float)(b)))

/* The table for Python: one entry per activation, in code order. */
typedef struct {
    const char *name;
    int code;
    const char *params;
    const char *from_output;
} cyr_act_info;
#define CYR_ACT_INFO_(name, NAME, code, params, from_output) {#name, code, params, from_output},
static const cyr_act_info cyr_act_table[] = {CYR_ACTIVATIONS(CYR_ACT_INFO_)};
#undef CYR_ACT_INFO_
#define CYR_ACT_TABLE_LEN ((int)(sizeof cyr_act_table / sizeof cyr_act_table[0]))
/* The activations BatchNorm fuses (forward; backward too), as space-separated names. */
#define CYR_ACT_NAME_(name, NAME) #name " "
static const char cyr_bn_forward_names[] = CYR_BN_FORWARD_ACTIVATIONS(CYR_ACT_NAME_) "";
static const char cyr_bn_backward_names[] = CYR_BN_BACKWARD_ACTIVATIONS(CYR_ACT_NAME_) "";
#undef CYR_ACT_NAME_

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
CYR_INLINE void cyr_unary_##S(int op, const T *x, T *y, Py_ssize_t n, AT a, AT b) {               \
    CYR_DISPATCH(unary, S, (op, x, y, n, a, b));                                              \
}                                                                                          \
CYR_INLINE void cyr_unary_strided_##S(int op, const char *x, Py_ssize_t sx, char *y,       \
                                      Py_ssize_t sy, Py_ssize_t n, AT a, AT b) {                  \
    CYR_DISPATCH(unary_strided, S, (op, x, sx, y, sy, n, a, b));                              \
}                                                                                          \
CYR_INLINE void cyr_binary_##S(int op, const T *g, const T *x, T *out, Py_ssize_t n,       \
                               AT a, AT b) {                                                      \
    CYR_DISPATCH(binary, S, (op, g, x, out, n, a, b));                                        \
}                                                                                          \
CYR_INLINE void cyr_binary_strided_##S(int op, const char *g, Py_ssize_t sg,               \
                                       const char *x, Py_ssize_t sx, char *out,            \
                                       Py_ssize_t so, Py_ssize_t n, AT a, AT b) {                 \
    CYR_DISPATCH(binary_strided, S, (op, g, sg, x, sx, out, so, n, a, b));                    \
}

CYR_ENTRY_POINTS(float, f32, float)
CYR_ENTRY_POINTS(double, f64, double)
CYR_ENTRY_POINTS(cyr_half, f16, float)

#endif /* CYRELU_ACTIVATIONS_H */
