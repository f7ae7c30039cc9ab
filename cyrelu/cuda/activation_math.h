/* The math of each activation, written once for every backend: the C kernels (scalar
 * and the AVX float16 vectors), BatchNorm's fused activation, and the CUDA kernels.
 *
 *   CYR_FWD_<name>(v, a, b)     the value at v (a, b: the parameters, see
 *                               activation_table.h; 0 where the activation has fewer)
 *   CYR_BWD_<name>(g, v, a, b)  the gradient g times the derivative at v
 *
 * Written only with these primitives, which each backend defines before expanding:
 *   CYR_SEL(CMP, x, c, t, f)  (x CMP c) ? t : f, CMP one of LT LE GT GE, c a numeric
 *                             literal; an ordered IEEE compare (false when x is NaN;
 *                             -0.0 == 0.0) and subnormals kept (no flush to zero)
 *   CYR_SELV(CMP, x, y, t, f) (x CMP y) ? t : f, y a value of the math type (a
 *                             parameter): the same ordered IEEE compare
 *   CYR_K(c)                  the constant c in the math type
 *   CYR_MUL(a, b)             a * b, rounded once
 *   CYR_ADD(a, b)             a + b, rounded once
 *   CYR_DIV(a, b)             a / b, rounded once (IEEE division, not a reciprocal)
 *   CYR_SPECIAL(fn, v, a, b)  cyr_<fn>_f(v, a, b) in float math, cyr_<fn>_d in double:
 *                             the smooth members' functions of activation_special.h
 *                             (exp, expm1, log1p, erfc by polynomials, accurate to a few
 *                             ulp; the CUDA kernels evaluate them in double, so they
 *                             are not bitwise the C kernels' results)
 * No fused multiply-add (the C kernels build with -ffp-contract=off) and no flush to
 * zero: every backend rounds each operation the same way, so they agree bit for bit.
 * Never min/max functions: fmax(NaN, 0) is 0, and NaN must propagate.  Where PyTorch
 * leaves NaN undefined (hardtanh_backward returns g or 0 depending on the lane), NaN
 * takes the scalar code's branch: every compare is false.
 */
#ifndef CYRELU_ACTIVATION_MATH_H
#define CYRELU_ACTIVATION_MATH_H

/* relu: x < 0 ? 0 : x (NaN, -0.0 kept); gradient 0 at x <= 0, g where x is NaN */
#define CYR_FWD_relu(v, a, b) CYR_SEL(LT, v, 0, CYR_K(0), v)
#define CYR_BWD_relu(g, v, a, b) CYR_SEL(LE, v, 0, CYR_K(0), g)

/* leaky_relu: x > 0 ? x : a * x; gradient a * g at x <= 0 and where x is NaN */
#define CYR_FWD_leaky_relu(v, a, b) CYR_SEL(GT, v, 0, v, CYR_MUL(a, v))
#define CYR_BWD_leaky_relu(g, v, a, b) CYR_SEL(GT, v, 0, g, CYR_MUL(a, g))

/* relu6 (torch hardtanh(x, 0, 6)): x < 0 ? 0 : x > 6 ? 6 : x (NaN, -0.0 kept);
 * gradient g where 0 < x < 6, 0 at x <= 0 and x >= 6, g where x is NaN */
#define CYR_FWD_relu6(v, a, b) CYR_SEL(LT, v, 0, CYR_K(0), CYR_SEL(GT, v, 6, CYR_K(6), v))
#define CYR_BWD_relu6(g, v, a, b) CYR_SEL(LE, v, 0, CYR_K(0), CYR_SEL(GE, v, 6, CYR_K(0), g))

/* hardsigmoid (torch's): x <= -3 ? 0 : x >= 3 ? 1 : (x + 3) / 6 (NaN kept); gradient
 * g / 6 where -3 < x < 3, else 0 (also at +-3 and, as torch, where x is NaN).  torch
 * computes min(max(x + 3, 0), 6) / 6, which is the same value for every x. */
#define CYR_FWD_hardsigmoid(v, a, b) \
    CYR_SEL(LT, v, -3, CYR_K(0), CYR_SEL(GT, v, 3, CYR_K(1), CYR_DIV(CYR_ADD(v, CYR_K(3)), CYR_K(6))))
#define CYR_BWD_hardsigmoid(g, v, a, b) \
    CYR_SEL(GT, v, -3, CYR_SEL(LT, v, 3, CYR_MUL(g, CYR_K(1.0 / 6.0)), CYR_K(0)), CYR_K(0))

/* hardswish: x <= -3 ? -0.0 : x >= 3 ? x : x * (x + 3) / 6 (NaN kept); gradient 0 at
 * x <= -3, g at x >= 3, else g * (x / 3 + 0.5), NaN where x is NaN.  torch computes
 * x * min(max(x + 3, 0), 6) / 6: the same bits for x < 3; above, x * 6 / 6 is x or
 * one ulp off and overflows to inf beyond 5.6e37 (float32), and -inf gives NaN, where
 * this gives x exactly and -0.0. */
#define CYR_FWD_hardswish(v, a, b)                                                            \
    CYR_SEL(LE, v, -3, CYR_K(-0.0),                                                        \
            CYR_SEL(GE, v, 3, v, CYR_DIV(CYR_MUL(v, CYR_ADD(v, CYR_K(3))), CYR_K(6))))
#define CYR_BWD_hardswish(g, v, a, b)                                                         \
    CYR_SEL(LE, v, -3, CYR_K(0),                                                           \
            CYR_SEL(GE, v, 3, g, CYR_MUL(g, CYR_ADD(CYR_DIV(v, CYR_K(3)), CYR_K(0.5)))))

/* hardtanh (torch's, clamp(x, min_val, max_val)): x < a ? a : x > b ? b : x (NaN,
 * -0.0 kept); gradient g where a < x < b, 0 at x <= a and x >= b, g where x is NaN
 * (torch's scalar hardtanh_backward; see relu6) */
#define CYR_FWD_hardtanh(v, a, b) CYR_SELV(LT, v, a, a, CYR_SELV(GT, v, b, b, v))
#define CYR_BWD_hardtanh(g, v, a, b) \
    CYR_SELV(LE, v, a, CYR_K(0), CYR_SELV(GE, v, b, CYR_K(0), g))

/* The smooth members: each is its function in activation_special.h (the value and the
 * derivative d/dx at v; the gradient is g times the derivative, rounded once more).
 * elu: v > 0 ? v : a * expm1(v), derivative a * exp(v) at v <= 0 (a at 0, as torch);
 * celu: v > 0 ? v : a * expm1(v / a), derivative exp(v / a) at v <= 0;
 * selu: scale * elu(v, alpha) with torch's constants; silu: v * sigmoid(v);
 * softplus: (a v > b) ? v : log1p(exp(a v)) / a (a = beta, b = threshold);
 * gelu: a == 0: v * Phi(v) (the erf form), else the tanh form; mish: v * tanh(softplus(v)).
 * NaN gives NaN; at -inf silu, gelu and mish give 0 (torch: NaN). */
#include "activation_special.h"
#define CYR_FWD_elu(v, a, b) CYR_SPECIAL(elu_fwd, v, a, b)
#define CYR_BWD_elu(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(elu_grad, v, a, b))
#define CYR_FWD_celu(v, a, b) CYR_SPECIAL(celu_fwd, v, a, b)
#define CYR_BWD_celu(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(celu_grad, v, a, b))
#define CYR_FWD_selu(v, a, b) CYR_SPECIAL(selu_fwd, v, a, b)
#define CYR_BWD_selu(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(selu_grad, v, a, b))
#define CYR_FWD_silu(v, a, b) CYR_SPECIAL(silu_fwd, v, a, b)
#define CYR_BWD_silu(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(silu_grad, v, a, b))
#define CYR_FWD_softplus(v, a, b) CYR_SPECIAL(softplus_fwd, v, a, b)
#define CYR_BWD_softplus(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(softplus_grad, v, a, b))
#define CYR_FWD_gelu(v, a, b) CYR_SPECIAL(gelu_fwd, v, a, b)
#define CYR_BWD_gelu(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(gelu_grad, v, a, b))
#define CYR_FWD_mish(v, a, b) CYR_SPECIAL(mish_fwd, v, a, b)
#define CYR_BWD_mish(g, v, a, b) CYR_MUL(g, CYR_SPECIAL(mish_grad, v, a, b))

#endif /* CYRELU_ACTIVATION_MATH_H */
