"""Independent float64 NumPy references for the activation kernels.

Written from the semantics in the README (PyTorch's), by masking rather than by
the kernels' comparisons, and computed in float64 before rounding to the input's
dtype once: the product of a float32 alpha and a float32 x is exact in float64,
so rounding it gives the same bits as a float32 multiply.
"""

import numpy as np


def _alpha_in(dtype, alpha):
    # PyTorch converts the slope to the tensor's scalar type first.
    return float(np.asarray(alpha, dtype=np.float32 if dtype == np.float16 else dtype))


def relu_ref(x):
    x = np.asarray(x)
    out = x.astype(np.float64, copy=True)
    out[out < 0] = 0.0  # NaN and -0.0 are not < 0: they stay
    return out.astype(x.dtype)


def leaky_relu_ref(x, alpha):
    x = np.asarray(x)
    a = _alpha_in(x.dtype, alpha)
    x64 = x.astype(np.float64)
    out = x64.copy()
    neg = ~(x64 > 0)  # x <= 0 and NaN
    out[neg] = a * x64[neg]
    return out.astype(x.dtype)


def relu_backward_ref(g, x):
    g = np.asarray(g)
    x = np.asarray(x)
    out = g.astype(np.float64, copy=True)
    out[x.astype(np.float64) <= 0] = 0.0  # NaN is not <= 0: the gradient passes
    return out.astype(g.dtype)


def leaky_relu_backward_ref(g, x, alpha):
    g = np.asarray(g)
    x = np.asarray(x)
    a = _alpha_in(g.dtype, alpha)
    g64 = g.astype(np.float64)
    out = g64.copy()
    neg = ~(x.astype(np.float64) > 0)  # x <= 0 and NaN
    out[neg] = a * g64[neg]
    return out.astype(g.dtype)


def assert_same_bits(actual, expected):
    """Equal values, NaN where NaN, and the same sign on zeros; same dtype and shape."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))
