"""hardswish / hardswish_backward: torch bit for bit below 3 (every float16 pattern,
1e6 float32 patterns, special values) and x itself above (where torch's x * 6 / 6 can be
an ulp off or overflow), the float64 reference, layouts, the layer and BatchNorm fused."""

import os

import numpy as np
import pytest

import cyrelu

torch = pytest.importorskip("torch") if os.environ.get("CYRELU_REQUIRE_TORCH") else None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SPECIAL = [-0.0, 0.0, np.nan, -3.0, 3.0, -2.5, 2.9, -7.0, 7.0, np.inf, -np.inf, 1e-45, -1e-45]
DTYPES = [np.float16, np.float32, np.float64]


def ref(x):
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x <= -3, -0.0, np.where(x >= 3, x, x * (x + 3) / 6))


def ref_backward(g, x):
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    return np.where(x <= -3, 0.0, np.where(x >= 3, g, g * (x / 3 + 0.5)))


def bits(a):
    """The bit patterns, every NaN made one (NaN payloads are not specified)."""
    a = np.array(a)
    a[np.isnan(a)] = np.nan
    return a.view(np.dtype("u%d" % a.itemsize))


def float32_patterns(n=1_000_000, seed=0):
    """n random float32 bit patterns over the whole range (NaN, inf and subnormals
    included), plus the neighbourhood of the kinks."""
    u = np.random.default_rng(seed).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    near = np.array([-3.0, 3.0], np.float32).view(np.uint32)
    near = (near[:, None] + np.arange(-50, 51, dtype=np.int64).astype(np.uint32)).ravel()
    return np.concatenate([u, near]).view(np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_special_values(dtype):
    x = np.array(SPECIAL * 5, dtype)
    y = cyrelu.hardswish(x)
    np.testing.assert_array_equal(bits(y), bits(ref(x).astype(dtype)))
    assert y[np.isneginf(x)].tolist() == [0.0] * 5  # torch gives NaN at -inf
    g = np.linspace(-3, 3, x.size).astype(dtype)
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(
        cyrelu.hardswish_backward(g, x), ref_backward(g, x), rtol=tol, atol=0
    )


def _check_torch(x, g):
    t = torch.from_numpy(x)
    y = cyrelu.hardswish(x)
    want = torch.nn.functional.hardswish(t).numpy()
    below = ~(x >= 3) & ~np.isneginf(x)  # NaN included
    np.testing.assert_array_equal(bits(y)[below], bits(want)[below])
    np.testing.assert_array_equal(y[x >= 3], x[x >= 3])  # x itself, also where torch overflows
    assert np.all(y[np.isneginf(x)] == 0)
    want = torch.ops.aten.hardswish_backward(torch.from_numpy(g), t).numpy()
    ok = ~np.isnan(x)  # torch's float16 kernel gives g at NaN, its float32 kernel NaN
    got = cyrelu.hardswish_backward(g, x)
    np.testing.assert_array_equal(bits(got)[ok], bits(want)[ok])
    assert np.isnan(got[~ok]).all()


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_all_float16_patterns():
    x = np.arange(65536, dtype=np.uint16).view(np.float16)
    _check_torch(x, np.full_like(x, 1.5))


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_float32_patterns():
    x = float32_patterns()
    g = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    _check_torch(x, g)


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_float64_autograd():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(100_000) * 4, [-2.5, 0.0, 2.5]])
    t = torch.from_numpy(x).requires_grad_()
    y = torch.nn.functional.hardswish(t)
    g = rng.standard_normal(x.size)
    y.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(cyrelu.hardswish(x)[x < 3], y.detach().numpy()[x < 3])
    np.testing.assert_array_equal(cyrelu.hardswish_backward(g, x), t.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_out_inplace_threads(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 41)) * 5).astype(dtype)
    want = cyrelu.hardswish(x.copy(), num_threads=1)
    np.testing.assert_allclose(
        want, ref(x), rtol=2 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny
    )
    np.testing.assert_array_equal(cyrelu.hardswish(x.T), want.T)
    np.testing.assert_array_equal(cyrelu.hardswish(x[:, ::-2]), want[:, ::-2])
    y = x.copy()
    assert cyrelu.hardswish(y, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, want)
    g = rng.standard_normal(x.shape).astype(dtype)
    gw = cyrelu.hardswish_backward(g, x, num_threads=1)
    np.testing.assert_array_equal(cyrelu.hardswish_backward(g, x, num_threads=2), gw)
    np.testing.assert_array_equal(cyrelu.hardswish_backward(g.T, x.T), gw.T)
    xi = x.copy()
    assert cyrelu.hardswish_backward(g, xi, out=xi) is xi
    np.testing.assert_array_equal(xi, gw)


def test_errors():
    with pytest.raises(TypeError):
        cyrelu.hardswish(np.arange(3))
    with pytest.raises(ValueError):
        cyrelu.hardswish_backward(np.ones(3), np.ones(4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_fused(dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 3, 5)) * 4).astype(dtype)
    plain, m, s = cyrelu.batch_norm(x, training=True, return_stats=True)
    y = cyrelu.batch_norm(x, training=True, activation="hardswish")
    np.testing.assert_array_equal(y, cyrelu.hardswish(plain))
    # the derivative cannot be read from the output: the fused backward says so
    with pytest.raises(ValueError, match="hardswish"):
        cyrelu.batch_norm_backward(np.ones_like(x), x, m, s, activation="hardswish", output=y)


def test_layer():
    layer = cyrelu.nn.Hardswish()
    x = np.array([-4.0, 0.0, 1.5, 9.0])
    np.testing.assert_array_equal(layer.forward(x), [-0.0, 0.0, 1.125, 9.0])
    np.testing.assert_array_equal(layer.backward(np.ones(4)), [0.0, 0.5, 1.0, 1.0])
    assert repr(layer) == "Hardswish()"


def test_layer_state_dict():
    layer = cyrelu.nn.Hardswish()
    assert layer.state_dict() == {}
    layer.load_state_dict({})
    with pytest.raises(KeyError):
        layer.load_state_dict({"weight": np.ones(1)})


def test_batch_norm_fused_float16():
    """float16 BatchNorm (AVX vectors over the table's math) is the float32 path rounded once."""
    rng = np.random.default_rng(3)
    for shape in [(64, 3, 50), (8, 5, 1000)]:
        x = (rng.standard_normal(shape) * 4).astype(np.float16)
        got = cyrelu.batch_norm(x, training=True, activation="hardswish")
        want = cyrelu.batch_norm(x.astype(np.float32), training=True, activation="hardswish")
        np.testing.assert_array_equal(bits(got), bits(want.astype(np.float16)))
