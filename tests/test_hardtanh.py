"""hardtanh / hardtanh_backward: torch bit for bit (every float16 pattern, 1e6 float32
patterns, float64, several bounds), the float64 reference, parameter checks, layouts,
the layer, and BatchNorm's refusal to fuse a two-parameter activation."""

import os

import numpy as np
import pytest

import cyrelu

torch = pytest.importorskip("torch") if os.environ.get("CYRELU_REQUIRE_TORCH") else None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SPECIAL = [-0.0, 0.0, np.nan, -1.0, 1.0, -2.0, 2.0, 0.5, np.inf, -np.inf, 1e-45, -1e-45]
DTYPES = [np.float16, np.float32, np.float64]
BOUNDS = [(-1.0, 1.0), (0.0, 6.0), (-0.3, 0.7), (2.0, 2.0), (-1e-40, 1e30), (-5.0, -2.5)]


def ref(x, lo, hi):
    x = np.asarray(x, np.float64)
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


def ref_backward(g, x, lo, hi):
    x = np.asarray(x, np.float64)
    return np.where((x <= lo) | (x >= hi), 0.0, np.asarray(g, np.float64))


def bits(a):
    return np.asarray(a).view(np.dtype("u%d" % np.asarray(a).itemsize))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_special_values(dtype):
    x = np.array(SPECIAL * 5, dtype)
    np.testing.assert_array_equal(bits(cyrelu.hardtanh(x)), bits(ref(x, -1, 1).astype(dtype)))
    np.testing.assert_array_equal(bits(cyrelu.hardtanh(x, 0.0, 6.0)), bits(cyrelu.relu6(x)))
    g = np.linspace(-3, 3, x.size).astype(dtype)
    np.testing.assert_array_equal(
        bits(cyrelu.hardtanh_backward(g, x, -2.0, 0.5)),
        bits(ref_backward(g, x, -2.0, 0.5).astype(dtype)),
    )


def _torch_check(x, g, lo, hi, nan_grad=True):
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(
        bits(cyrelu.hardtanh(x, lo, hi)), bits(torch.nn.functional.hardtanh(t, lo, hi).numpy())
    )
    want = torch.ops.aten.hardtanh_backward(torch.from_numpy(g), t, lo, hi).numpy()
    ok = ~np.isnan(x)  # torch gives g or 0 at NaN depending on the lane (see relu6)
    got = cyrelu.hardtanh_backward(g, x, lo, hi)
    np.testing.assert_array_equal(bits(got)[ok], bits(want)[ok])
    np.testing.assert_array_equal(got[~ok], g[~ok])


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("lo,hi", [b for b in BOUNDS if abs(b[1]) < 65504])
def test_torch_all_float16_patterns(lo, hi):
    """The bounds rounded to float16, as torch does."""
    x = np.arange(65536, dtype=np.uint16).view(np.float16)
    _torch_check(x, np.full_like(x, 1.5), lo, hi)


def test_float16_bounds_beyond_range():
    x = np.array([-np.inf, -65504.0, 0.5, 65504.0, np.inf, np.nan], np.float16)
    y = cyrelu.hardtanh(x, -1e30, 1e30)  # the bounds become +-inf (torch raises)
    np.testing.assert_array_equal(bits(y), bits(x))


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("lo,hi", BOUNDS)
def test_torch_float32_patterns(lo, hi):
    rng = np.random.default_rng(0)
    u = rng.integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate(
        [
            u,
            (rng.standard_normal(100_000) * 3).astype(np.float32),
            np.array([*SPECIAL, lo, hi], np.float32),
        ]
    )
    _torch_check(x, rng.standard_normal(x.size).astype(np.float32), lo, hi)


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("lo,hi", BOUNDS)
def test_torch_float64(lo, hi):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(100_000) * 3, SPECIAL, [lo, hi]])
    _torch_check(x, rng.standard_normal(x.size), lo, hi)


def test_parameter_checks_modify_nothing():
    x = np.linspace(-2, 2, 11)
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match="min_val"):
        cyrelu.hardtanh(x, 1.0, -1.0, out=out)
    with pytest.raises(ValueError, match="min_val"):
        cyrelu.hardtanh_backward(x, x, 1.0, -1.0, out=out)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError):
            cyrelu.hardtanh(x, bad, 1.0, out=out)
        with pytest.raises(ValueError):
            cyrelu.hardtanh_backward(x, x, -1.0, bad, out=out)
    with pytest.raises(TypeError):
        cyrelu.hardtanh(x, "a", 1.0, out=out)
    with pytest.raises(TypeError):
        cyrelu.hardtanh(np.arange(3))
    assert (out == 7.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_out_inplace_threads(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 41)) * 3).astype(dtype)
    want = ref(x, -0.5, 2.0).astype(dtype)
    np.testing.assert_array_equal(cyrelu.hardtanh(x.T, -0.5, 2.0), want.T)
    np.testing.assert_array_equal(cyrelu.hardtanh(x[:, ::-2], -0.5, 2.0), want[:, ::-2])
    y = x.copy()
    assert cyrelu.hardtanh(y, -0.5, 2.0, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, want)
    g = rng.standard_normal(x.shape).astype(dtype)
    gw = ref_backward(g, x, -0.5, 2.0).astype(dtype)
    np.testing.assert_array_equal(cyrelu.hardtanh_backward(g, x, -0.5, 2.0, num_threads=2), gw)
    np.testing.assert_array_equal(cyrelu.hardtanh_backward(g.T, x.T, -0.5, 2.0), gw.T)
    # the derivative read from the output is the same
    np.testing.assert_array_equal(cyrelu.hardtanh_backward(g, want, -0.5, 2.0), gw)
    # partial overlap
    z = np.concatenate([x.ravel(), x.ravel()[:5]])
    cyrelu.hardtanh(z[:-5], -0.5, 2.0, out=z[5:])
    np.testing.assert_array_equal(z[5:], want.ravel())


def test_batch_norm_takes_its_bounds():
    x = np.arange(24.0).reshape(4, 3, 2)
    kw = dict(training=True, activation="hardtanh")
    y = cyrelu.batch_norm(x, **kw, activation_params={"min_val": -0.5, "max_val": 0.25})
    assert y.min() == -0.5 and y.max() == 0.25
    with pytest.raises(ValueError, match="min_val"):
        cyrelu.batch_norm(x, **kw, activation_params={"min_val": 1.0, "max_val": 0.0})


def test_layer():
    layer = cyrelu.nn.Hardtanh(-0.5, 2.0)
    x = np.array([-4.0, 0.0, 1.5, 9.0])
    np.testing.assert_array_equal(layer.forward(x), [-0.5, 0.0, 1.5, 2.0])
    np.testing.assert_array_equal(layer.backward(np.ones(4)), [0.0, 1.0, 1.0, 0.0])
    assert repr(layer) == "Hardtanh(min_val=-0.5, max_val=2.0)"
    with pytest.raises(ValueError):
        cyrelu.nn.Hardtanh(1.0, 0.0)


def test_layer_state_dict():
    layer = cyrelu.nn.Hardtanh(-0.5, 2.0)
    assert layer.state_dict() == {}
    layer.load_state_dict({})
    with pytest.raises(KeyError):
        layer.load_state_dict({"weight": np.ones(1)})
