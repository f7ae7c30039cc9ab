/* The activations, declared once, for the C kernels, the CUDA kernels and Python.
 *
 * Plain C99 / CUDA C++ (no includes): include/cyrelu/activations.h includes it by a
 * relative path, the CUDA sources through common.cuh (cyrelu/cuda/_loader.py inlines
 * it for NVRTC), and cyrelu/_activations.pyx exposes it to Python
 * (cyrelu/_activation_table.py).  Adding an activation: see CONTRIBUTING.md.
 *
 * CYR_ACTIVATIONS(X) calls X once per activation:
 *
 *   X(name, NAME, code, params, from_output)
 *
 *   name         the Python name; its math is CYR_FWD_<name> / CYR_BWD_<name>
 *                (activation_math.h)
 *   NAME         the code's C name: CYR_ACT_<NAME>
 *   code         op code (also the fused BatchNorm activation; 0 is CYR_ACT_NONE,
 *                the identity, which BatchNorm uses for "no activation")
 *   params       the scalar parameters, "" or "name=default:check[,name=default:check]"
 *                (check: real = any finite real; nonzero = a finite real other than
 *                0; approximate = gelu's "none" (0) or "tanh" (1); bound = a finite
 *                real rounded to the data's type, as a clamp's bounds are, and a second
 *                bound may not be below the first).  The kernels take at most two, `a`
 *                and `b` (0 where the activation has fewer), and so do the BatchNorm
 *                kernels, which fuse every activation (BatchNorm's alpha where the
 *                parameter is named alpha, the others from activation_params).
 *   from_output  when the derivative can be computed from the output instead of the
 *                input: "always", "" (never) or "<param>>0".
 */
#ifndef CYRELU_ACTIVATION_TABLE_H
#define CYRELU_ACTIVATION_TABLE_H

#define CYR_ACTIVATIONS(X)                                                                 \
    X(relu, RELU, 1, "", "always")                                                         \
    X(leaky_relu, LEAKY_RELU, 2, "alpha=0.2:real", "alpha>0")                              \
    X(relu6, RELU6, 3, "", "always")                                                       \
    X(hardsigmoid, HARDSIGMOID, 4, "", "")                                                 \
    X(hardswish, HARDSWISH, 5, "", "")                                                     \
    X(hardtanh, HARDTANH, 6, "min_val=-1.0:bound,max_val=1.0:bound", "always")             \
    X(elu, ELU, 7, "alpha=1.0:real", "")                                                   \
    X(celu, CELU, 8, "alpha=1.0:nonzero", "")                                              \
    X(selu, SELU, 9, "", "")                                                               \
    X(silu, SILU, 10, "", "")                                                              \
    X(softplus, SOFTPLUS, 11, "beta=1.0:nonzero,threshold=20.0:real", "")                  \
    X(gelu, GELU, 12, "approximate=none:approximate", "")                                  \
    X(mish, MISH, 13, "", "")

/* The activations whose math is activation_special.h's functions (CYR_SPECIAL), X(name,
 * NAME) each: the vector float16 kernels run these on float tiles through the float
 * kernels (include/cyrelu/activations_template.h; tests/test_special_math.py checks the
 * list against activation_math.h). */
#define CYR_SPECIAL_ACTIVATIONS(X)                                                         \
    X(elu, ELU) X(celu, CELU) X(selu, SELU) X(silu, SILU) X(softplus, SOFTPLUS)           \
    X(gelu, GELU) X(mish, MISH)

/* The activations BatchNorm fuses, X(name, NAME) each.
 *
 *   CYR_BN_FORWARD_ACTIVATIONS   into its forward: those with at most two parameters
 *                                (the kernels' a and b: BatchNorm's alpha for leaky_relu,
 *                                elu and celu, None there being the activation's
 *                                default; the others from activation_params), which is
 *                                every activation
 *   CYR_BN_BACKWARD_ACTIVATIONS  into its backward too: those whose derivative their own
 *                                backward function reads from the output (from_output
 *                                not ""), with the same a and b; the backward kernels
 *                                take it at the output, or at the pre-activation they
 *                                recompute from x with BatchNorm's bias, inside their
 *                                loops
 *   CYR_BN_BACKWARD_LOOP_ACTIVATIONS  those, and hardsigmoid and hardswish, whose
 *                                derivatives are as cheap but need the pre-activation
 *                                (bias=): the ones the CPU backward kernels compile into
 *                                their loops.  The CPU kernels take every other
 *                                activation at the pre-activation through L1 tiles and
 *                                the activation's own backward loop (CYR_BN_IS_TILED_BW,
 *                                include/cyrelu/batchnorm.h).  In the loops, hardsigmoid
 *                                and hardswish cost 18% more code in the BatchNorm
 *                                extension (3.04 -> 3.60 MB) and took their fused
 *                                backward on NCHW and channels-last data from 1.2-2.5x
 *                                BatchNorm's backward alone to 1.1-1.5x
 *                                (docs/performance.md).  The CUDA kernels are
 *                                instantiated for every activation (batchnorm.cu), and
 *                                take each at the pre-activation.
 *
 * The BatchNorm kernels are compiled for these only, and Python accepts or refuses an
 * `activation=` by them (cyrelu/_activation_table.py; tests/test_batchnorm_fused.py
 * checks them against the rules above). */
#define CYR_BN_FORWARD_ACTIVATIONS(X)                                                      \
    X(relu, RELU) X(leaky_relu, LEAKY_RELU) X(relu6, RELU6) X(hardsigmoid, HARDSIGMOID)   \
    X(hardswish, HARDSWISH) X(hardtanh, HARDTANH) X(elu, ELU) X(selu, SELU) X(celu, CELU) \
    X(silu, SILU) X(softplus, SOFTPLUS) X(gelu, GELU) X(mish, MISH)
#define CYR_BN_BACKWARD_ACTIVATIONS(X)                                                     \
    X(relu, RELU) X(leaky_relu, LEAKY_RELU) X(relu6, RELU6) X(hardtanh, HARDTANH)
#define CYR_BN_BACKWARD_LOOP_ACTIVATIONS(X)                                                \
    CYR_BN_BACKWARD_ACTIVATIONS(X) X(hardsigmoid, HARDSIGMOID) X(hardswish, HARDSWISH)

#define CYR_ACT_ENUM_(name, NAME, code, params, from_output) CYR_ACT_##NAME = code,
enum { CYR_ACT_NONE = 0, CYR_ACTIVATIONS(CYR_ACT_ENUM_) CYR_ACT_END_ };
#undef CYR_ACT_ENUM_

#include "activation_math.h"

#endif /* CYRELU_ACTIVATION_TABLE_H */
