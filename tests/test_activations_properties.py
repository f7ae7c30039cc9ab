"""Property tests: random shapes, strides, dtypes, alphas and special values.

``CYRELU_HYPOTHESIS_PROFILE=sanitizer`` (tools/check_sanitizers.sh) runs a fifth of the
examples: under ASan and UBSan everything runs several times slower."""

import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import cyrelu  # noqa: E402

from reference import (  # noqa: E402
    assert_same_bits,
    leaky_relu_backward_ref,
    leaky_relu_ref,
    relu_backward_ref,
    relu_ref,
)

_SCALE = 0.2 if os.environ.get("CYRELU_HYPOTHESIS_PROFILE") == "sanitizer" else 1.0


def _examples(n):
    return max(10, int(n * _SCALE))


DTYPES = st.sampled_from([np.float16, np.float32, np.float64])


def _elements(dtype):
    width = {np.float16: 16, np.float32: 32, np.float64: 64}[dtype]
    return st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@st.composite
def arrays_and_views(draw, n_arrays=1):
    """Arrays of one shape, each possibly a strided / transposed / reversed view."""
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
    out = []
    for _ in range(n_arrays):
        # draw a bigger base array, then take a view of `shape` out of it
        steps = [draw(st.sampled_from([1, 2, -1, -3])) for _ in shape]
        base_shape = tuple(max(1, n * abs(s)) for n, s in zip(shape, steps, strict=True))
        base = draw(hnp.arrays(dtype, base_shape, elements=_elements(dtype)))
        view = base[tuple(slice(None, None, s) for s in steps)] if shape else base
        view = view[tuple(slice(0, n) for n in shape)] if shape else view
        if view.ndim >= 2 and draw(st.booleans()):
            perm = draw(st.permutations(range(view.ndim)))
            view = np.ascontiguousarray(view.transpose(perm)).transpose(np.argsort(perm))
        out.append(view)
    return out


ALPHAS = st.one_of(st.floats(-4, 4, allow_nan=False), st.sampled_from([0.0, 1.0, 0.2, 0.01]))


@settings(max_examples=_examples(150), deadline=None)
@given(arrays_and_views(1), ALPHAS)
def test_forward_properties(arrays, alpha):
    (x,) = arrays
    assert_same_bits(cyrelu.relu(x), relu_ref(x))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        expected = leaky_relu_ref(x, alpha)
    assert_same_bits(cyrelu.leaky_relu(x, alpha), expected)


@settings(max_examples=_examples(150), deadline=None)
@given(arrays_and_views(2), ALPHAS)
def test_backward_properties(arrays, alpha):
    g, x = arrays
    if g.dtype != x.dtype:
        g = g.astype(x.dtype)
    assert_same_bits(cyrelu.relu_backward(g, x), relu_backward_ref(g, x))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        expected = leaky_relu_backward_ref(g, x, alpha)
    assert_same_bits(cyrelu.leaky_relu_backward(g, x, alpha), expected)


@settings(max_examples=_examples(100), deadline=None)
@given(arrays_and_views(1))
def test_in_place_equals_out_of_place(arrays):
    (x,) = arrays
    expected = relu_ref(x)
    y = x.copy()
    cyrelu.relu(y, out=y)
    assert_same_bits(y, expected)
