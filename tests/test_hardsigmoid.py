"""hardsigmoid / hardsigmoid_backward: torch bit for bit (every float16 pattern, 1e6
float32 patterns, special values), the float64 reference, layouts, the layer and
BatchNorm fused."""

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
    return np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (x + 3) / 6))


def ref_backward(g, x):
    x = np.asarray(x, np.float64)
    return np.where((x > -3) & (x < 3), np.asarray(g, np.float64) / 6, 0.0)


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
    np.testing.assert_array_equal(cyrelu.hardsigmoid(x), ref(x).astype(dtype))
    g = np.linspace(-3, 3, x.size).astype(dtype)
    want = ref_backward(g, x)
    if dtype == np.float16:  # float32 arithmetic rounded once: g * (1/6 in float32)
        want = (g.astype(np.float32) * np.float32(1 / 6)).astype(np.float16)
        want[~((x > -3) & (x < 3))] = 0
    np.testing.assert_allclose(
        cyrelu.hardsigmoid_backward(g, x), want, rtol=np.finfo(dtype).eps, atol=0
    )


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_all_float16_patterns():
    x = np.arange(65536, dtype=np.uint16).view(np.float16)
    t = torch.from_numpy(x.copy())
    np.testing.assert_array_equal(
        bits(cyrelu.hardsigmoid(x)), bits(torch.nn.functional.hardsigmoid(t).numpy())
    )
    g = np.full_like(x, 1.5)
    want = torch.ops.aten.hardsigmoid_backward(torch.from_numpy(g), t).numpy()
    np.testing.assert_array_equal(bits(cyrelu.hardsigmoid_backward(g, x)), bits(want))


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_float32_patterns():
    x = float32_patterns()
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(
        bits(cyrelu.hardsigmoid(x)), bits(torch.nn.functional.hardsigmoid(t).numpy())
    )
    g = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    want = torch.ops.aten.hardsigmoid_backward(torch.from_numpy(g), t).numpy()
    np.testing.assert_array_equal(bits(cyrelu.hardsigmoid_backward(g, x)), bits(want))


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_float64():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(100_000) * 4, SPECIAL])
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(
        bits(cyrelu.hardsigmoid(x)), bits(torch.nn.functional.hardsigmoid(t).numpy())
    )
    # torch's float64 gradient multiplies by float32's 1/6; cyrelu by float64's
    g = rng.standard_normal(x.size)
    want = torch.ops.aten.hardsigmoid_backward(torch.from_numpy(g), t).numpy()
    np.testing.assert_allclose(cyrelu.hardsigmoid_backward(g, x), want, rtol=1e-7, atol=0)
    np.testing.assert_allclose(
        cyrelu.hardsigmoid_backward(g, x), ref_backward(g, x), rtol=3e-16, atol=0
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_out_inplace_threads(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 41)) * 5).astype(dtype)
    want = cyrelu.hardsigmoid(x.copy(), num_threads=1)
    np.testing.assert_allclose(want, ref(x), rtol=np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(cyrelu.hardsigmoid(x.T), want.T)
    np.testing.assert_array_equal(cyrelu.hardsigmoid(x[:, ::-2]), want[:, ::-2])
    y = x.copy()
    assert cyrelu.hardsigmoid(y, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, want)
    g = rng.standard_normal(x.shape).astype(dtype)
    gw = cyrelu.hardsigmoid_backward(g, x, num_threads=1)
    np.testing.assert_array_equal(cyrelu.hardsigmoid_backward(g, x, num_threads=2), gw)
    np.testing.assert_array_equal(cyrelu.hardsigmoid_backward(g.T, x.T), gw.T)
    gi = g.copy()
    assert cyrelu.hardsigmoid_backward(gi, x, out=gi) is gi
    np.testing.assert_array_equal(gi, gw)


def test_errors():
    with pytest.raises(TypeError):
        cyrelu.hardsigmoid(np.arange(3))
    with pytest.raises(ValueError):
        cyrelu.hardsigmoid_backward(np.ones(3), np.ones(4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_fused(dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 3, 5)) * 4).astype(dtype)
    plain = cyrelu.batch_norm(x, training=True)
    y = cyrelu.batch_norm(x, training=True, activation="hardsigmoid")
    np.testing.assert_array_equal(y, cyrelu.hardsigmoid(plain))


def test_layer():
    layer = cyrelu.nn.Hardsigmoid()
    x = np.array([-4.0, 0.0, 1.5, 9.0])
    np.testing.assert_array_equal(layer.forward(x), [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(layer.backward(np.full(4, 6.0)), [0.0, 1.0, 1.0, 0.0])
    assert repr(layer) == "Hardsigmoid()"


def test_layer_state_dict():
    layer = cyrelu.nn.Hardsigmoid()
    assert layer.state_dict() == {}
    layer.load_state_dict({})
    with pytest.raises(KeyError):
        layer.load_state_dict({"weight": np.ones(1)})


def test_batch_norm_fused_float16():
    """float16 BatchNorm (AVX vectors over the table's math) is the float32 path rounded once."""
    rng = np.random.default_rng(3)
    for shape in [(64, 3, 50), (8, 5, 1000)]:
        x = (rng.standard_normal(shape) * 4).astype(np.float16)
        got = cyrelu.batch_norm(x, training=True, activation="hardsigmoid")
        want = cyrelu.batch_norm(x.astype(np.float32), training=True, activation="hardsigmoid")
        np.testing.assert_array_equal(bits(got), bits(want.astype(np.float16)))
