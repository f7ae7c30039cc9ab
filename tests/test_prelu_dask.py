"""prelu / prelu_backward on dask arrays, on a dask.distributed cluster of two worker
processes: the forward and grad_input lazy with x's chunks and bitwise the in-memory
path's, grad_weight reduced on the cluster (float64 sums, rounded once) against the
in-memory result and a float64 reference; argument errors at call time.  Skips when
dask or distributed is not installed."""

import numpy as np
import pytest

import cyrelu

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view("u%d" % a.itemsize)


LAYOUTS = [  # (shape, axis, chunks, weights): channels split across chunks, or not
    ((24, 6, 10, 12), 1, (7, 4, 5, 12), 6),
    ((24, 10, 12, 6), -1, (9, 10, 5, 4), 6),
    ((40, 5), 1, (13, 2), 5),
    ((6, 40, 3), 0, (4, 11, 2), 6),
    ((24, 6, 10), 1, (7, 4, 5), 1),
    ((50,), 1, (12,), 1),
]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,chunks,nw", LAYOUTS)
def test_prelu_on_dask(client, shape, axis, chunks, nw, dtype):
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(shape).astype(dtype)
    xn.reshape(-1)[::9] = 0
    gn = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(nw).astype(dtype)
    x = da.from_array(xn, chunks=chunks)
    y = cyrelu.prelu(x, w, axis=axis)
    assert isinstance(y, da.Array) and y.chunks == x.chunks and y.dtype == xn.dtype
    np.testing.assert_array_equal(_bits(y.compute()), _bits(cyrelu.prelu(xn, w, axis=axis)))
    # a gradient with other chunks is rechunked to x's; an in-memory one is cut into them
    want_gi, want_gw = cyrelu.prelu_backward(gn, xn, w, axis=axis)
    for g in (da.from_array(gn, chunks=3), gn):
        gi, gw = cyrelu.prelu_backward(g, x, w, axis=axis)
        assert isinstance(gi, da.Array) and gi.chunks == x.chunks
        np.testing.assert_array_equal(_bits(gi.compute()), _bits(want_gi))
        assert isinstance(gw, np.ndarray) and gw.shape == w.shape and gw.dtype == xn.dtype
        # float64 sums merged in another order: the same after rounding, but for ties
        tol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dtype]
        np.testing.assert_allclose(gw.astype(np.float64), want_gw.astype(np.float64), rtol=tol)
    x64, g64 = xn.astype(np.float64), gn.astype(np.float64)
    terms = np.where(x64 > 0, 0.0, x64 * g64)
    ax = axis % len(shape)
    ref = terms.sum() if nw == 1 else np.moveaxis(terms, ax, 0).reshape(nw, -1).sum(axis=1)
    tol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(gw.astype(np.float64), ref, rtol=tol, atol=tol)


def test_layer_takes_dask_arrays(client):
    rng = np.random.default_rng(1)
    xn = rng.standard_normal((16, 4, 8)).astype(np.float32)
    layer = cyrelu.nn.PReLU(4)
    layer.weight[:] = [0.1, 0.2, -0.3, 2.0]
    y = layer(da.from_array(xn, chunks=(5, 3, 8)))
    np.testing.assert_array_equal(y.compute(), cyrelu.prelu(xn, layer.weight))
    gi = layer.backward(da.ones_like(y))
    np.testing.assert_array_equal(
        gi.compute(), cyrelu.prelu_backward(np.ones_like(xn), xn, layer.weight)[0]
    )
    assert layer.grad_weight.dtype == np.float32


def _boom(block):
    raise AssertionError("the graph was computed")


def test_errors_come_at_call_time(client):
    x = da.from_array(np.ones((8, 4), np.float32), chunks=4).map_blocks(_boom, dtype=np.float32)
    w = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="dtype float64, but x has dtype float32"):
        cyrelu.prelu(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="3 values, but x has 4 channels"):
        cyrelu.prelu(x, w[:3])
    with pytest.raises(ValueError, match="axis"):
        cyrelu.prelu(x, w, axis=2)
    with pytest.raises(TypeError, match="not a dask array"):
        cyrelu.prelu(x, da.from_array(w))
    with pytest.raises(TypeError, match="out"):
        cyrelu.prelu(x, w, out=np.empty((8, 4), np.float32))
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.prelu_backward(x, x, w, num_threads=0)
    with pytest.raises(ValueError, match="shape"):
        cyrelu.prelu_backward(np.zeros((8, 5), np.float32), x, w)
    with pytest.raises(ValueError, match="channels"):
        cyrelu.prelu_backward(x, x, w[:2])
