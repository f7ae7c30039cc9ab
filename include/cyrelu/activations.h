/* ReLU and Leaky ReLU, forward and backward, for float and double.
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

#define CYR_T float
#define CYR_SUFFIX f32
#include "activations_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#define CYR_T double
#define CYR_SUFFIX f64
#include "activations_template.h"
#undef CYR_T
#undef CYR_SUFFIX

#endif /* CYRELU_ACTIVATIONS_H */
