"""The training forward's batch statistics on every path of test_batchnorm_paths.py (shapes
from the cache planner): their accuracy where a one-read sum would cancel, and the mean and
variance of channels holding infinities, as PyTorch (and a plain float64 sum) gives them.

The row layout takes each block's sums shifted by its first row (batchnorm_template.h,
bn_colshift_done), the per-channel layout each chunk's sums shifted by the mean of its
first rows (bn_chan_shift_begin); an outlier in those rows is the shift's worst case, so
the data here put one in the first row of every block and chunk, on a large offset."""

import numpy as np
import pytest
from test_batchnorm_paths import path_shapes

import cyrelu
from cyrelu import _batchnorm, batch_norm

PATHS = (
    "channel",
    "channel chunked",
    "channel pipelined",
    "channel paced",
    "rows cached",
    "rows folded",
    "rows blocked",
)


def _layout(path, dtype):
    shape, axis = path_shapes(np.dtype(dtype).itemsize)[path]
    C = shape[axis]
    red = tuple(d for d in range(len(shape)) if d != axis % len(shape))
    return shape, axis, C, red


def _stats(x, axis, C):
    """(mean, biased variance) from the running statistics with momentum 1, float64."""
    ptype = np.float32 if x.dtype == np.float16 else x.dtype  # float16's parameters: float32
    rm, rv = np.zeros(C, ptype), np.ones(C, ptype)
    batch_norm(x, rm, rv, training=True, momentum=1.0, axis=axis)
    n = x.size // C
    return rm.astype(np.float64), rv.astype(np.float64) * (n - 1) / n


def _block_starts(path, shape, dtype):
    """The first rows of the blocks of the statistics: of the row layout's (rows of w
    elements), each group's rows taken a block at a time (_batchnorm.stats_blocks); of
    the per-channel layout's (shape (outer, C, inner)), the chunks of rows that fit in
    the slab size (sized for float rows where the data are float16, as the kernels do)."""
    outer = shape[0]
    if path.startswith("channel"):
        row_bytes = shape[2] * max(np.dtype(dtype).itemsize, 4)
        slab = cyrelu._parallel.cache_info()["slab_bytes"]
        return list(range(0, outer, max(1, slab // row_bytes)))
    w = int(np.prod(shape[1:]))
    group_rows, block_rows = _batchnorm.stats_blocks(np.empty(1, dtype), outer, w, 1)
    return [
        b
        for g in range(0, outer, group_rows)
        for b in range(g, min(g + group_rows, outer), block_rows)
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outliers_on_an_offset(path, dtype):
    """The first row of every block and chunk an outlier 40 standard deviations out, on an
    offset of 10**6 standard deviations: mean and variance to within 1e-6 (float32) or 1e-10
    (float64) of the float64 reference (E[x**2] - E[x]**2 in float64 would be off by
    about 1e-4; merging the blocks' and groups' means, each rounded to 1e-16 of the
    offset, leaves about 1e-12)."""
    rng = np.random.default_rng(7)
    shape, axis, C, red = _layout(path, dtype)
    x = rng.standard_normal(shape) + 1e6
    outer = int(np.prod(shape[: axis % len(shape)]))
    rows = x.reshape(outer, -1)  # a view: the row layout's rows, the channels' outer rows
    rows[_block_starts(path, shape, dtype)] += 40.0
    x = x.astype(dtype)
    mean, var = _stats(x, axis, C)
    x64 = x.astype(np.float64)
    ref_mean = x64.mean(axis=red)
    ref_var = ((x64 - np.expand_dims(ref_mean, red)) ** 2).mean(axis=red)
    tol = 1e-6 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(mean, ref_mean, rtol=tol)
    np.testing.assert_allclose(var, ref_var, rtol=tol)


@pytest.mark.parametrize("path", PATHS)
def test_constant_channels_have_zero_variance(path):
    """A channel of one repeated value: variance exactly 0, mean exactly the value."""
    shape, axis, C, _ = _layout(path, np.float32)
    values = np.linspace(-3e5, 7e5, C, dtype=np.float32)
    x = np.empty(shape, np.float32)
    np.moveaxis(x, axis % len(shape), -1)[...] = values
    mean, var = _stats(x, axis, C)
    np.testing.assert_array_equal(mean, values)
    np.testing.assert_array_equal(var, 0.0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_infinite_values_give_pytorchs_mean_and_variance(path, where, dtype):
    """A channel with one +inf has mean +inf and variance NaN, with +inf and -inf mean
    NaN, with -inf mean -inf, wherever in the channel the infinity sits (the first
    element of a block or the last row, merged from another block, group or chunk):
    what one float64 sum gives, and PyTorch."""
    shape, axis, C, red = _layout(path, dtype)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    xm = np.moveaxis(x, axis % len(shape), 0)  # a view, channel first
    flat = [xm[c].reshape(-1) for c in range(3)]  # copies of the channels' values
    at = 0 if where == "first" else flat[0].size - 1
    flat[0][at] = np.inf
    flat[1][at], flat[1][flat[1].size // 2] = np.inf, -np.inf
    flat[2][at] = -np.inf
    for c in range(3):
        xm[c] = flat[c].reshape(xm[c].shape)
    mean, var = _stats(x, axis, C)
    with np.errstate(invalid="ignore"):
        x64 = x.astype(np.float64)
        ref_mean = x64.mean(axis=red)
        ref_var = ((x64 - np.expand_dims(ref_mean, red)) ** 2).mean(axis=red)
    np.testing.assert_array_equal(mean[:3], [np.inf, np.nan, -np.inf])
    np.testing.assert_array_equal(np.isnan(var[:3]), True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6)
    np.testing.assert_allclose(var, ref_var, rtol=1e-5)
