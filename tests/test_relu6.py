"""relu6 / relu6_backward: torch bit for bit, the float64 reference, BatchNorm fused,
the layer, and the activation table (CPU and CUDA agree, every entry reachable)."""

import os
import re
import subprocess

import numpy as np
import pytest

import cyrelu
from cyrelu import _activation_table as table

torch = pytest.importorskip("torch") if os.environ.get("CYRELU_REQUIRE_TORCH") else None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SPECIAL = [-0.0, 0.0, np.nan, -1.0, 6.0, 7.0, np.inf, -np.inf, 3.0, 5.999, 1e-45, -1e-45]
DTYPES = [np.float16, np.float32, np.float64]


def ref_relu6(x):
    x = np.asarray(x, np.float64)
    return np.where(x < 0, 0.0, np.where(x > 6, 6.0, x))


def ref_relu6_backward(g, x):
    x = np.asarray(x, np.float64)
    return np.where((x <= 0) | (x >= 6), 0.0, np.asarray(g, np.float64))


def bits(a):
    return np.asarray(a).view(np.dtype("u%d" % np.asarray(a).itemsize))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_special_values(dtype):
    x = np.array(SPECIAL * 5, dtype)
    np.testing.assert_array_equal(bits(cyrelu.relu6(x)), bits(ref_relu6(x).astype(dtype)))
    g = np.linspace(-3, 3, x.size).astype(dtype)
    np.testing.assert_array_equal(
        bits(cyrelu.relu6_backward(g, x)), bits(ref_relu6_backward(g, x).astype(dtype))
    )


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_torch_all_float16_patterns():
    x = np.arange(65536, dtype=np.uint16).view(np.float16)
    t = torch.from_numpy(x.copy())
    np.testing.assert_array_equal(
        bits(cyrelu.relu6(x)), bits(torch.nn.functional.relu6(t).numpy())
    )
    g = np.full_like(x, 1.5)
    ok = ~np.isnan(x)  # torch's hardtanh_backward gives g or 0 at NaN depending on the lane
    want = torch.ops.aten.hardtanh_backward(torch.from_numpy(g), t, 0.0, 6.0).numpy()
    np.testing.assert_array_equal(bits(cyrelu.relu6_backward(g, x))[ok], bits(want)[ok])


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_special_values(dtype):
    x = np.array(SPECIAL * 7, dtype)
    t = torch.from_numpy(x.copy())
    np.testing.assert_array_equal(
        bits(cyrelu.relu6(x)), bits(torch.nn.functional.relu6(t).numpy())
    )
    g = np.linspace(-3, 3, x.size).astype(dtype)
    ok = ~np.isnan(x)
    want = torch.ops.aten.hardtanh_backward(torch.from_numpy(g), t, 0.0, 6.0).numpy()
    np.testing.assert_array_equal(bits(cyrelu.relu6_backward(g, x))[ok], bits(want)[ok])


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_out_inplace_threads(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 41)) * 5).astype(dtype)
    want = ref_relu6(x).astype(dtype)
    np.testing.assert_array_equal(cyrelu.relu6(x.T), want.T)
    np.testing.assert_array_equal(cyrelu.relu6(x[:, ::-2]), want[:, ::-2])
    y = x.copy()
    assert cyrelu.relu6(y, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, want)
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(
        cyrelu.relu6_backward(g, x, num_threads=2), ref_relu6_backward(g, x).astype(dtype)
    )
    # the derivative read from the output is the same
    np.testing.assert_array_equal(cyrelu.relu6_backward(g, want), cyrelu.relu6_backward(g, x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_fused(dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 3, 5)) * 4).astype(dtype)
    plain, m, s = cyrelu.batch_norm(x, training=True, return_stats=True)
    y = cyrelu.batch_norm(x, training=True, activation="relu6")
    np.testing.assert_array_equal(y, cyrelu.relu6(plain))
    g = rng.standard_normal(x.shape).astype(dtype)
    dx = cyrelu.batch_norm_backward(g, x, m, s, activation="relu6", output=y)
    dx0 = cyrelu.batch_norm_backward(cyrelu.relu6_backward(g, y), x, m, s)
    for a, b in zip(dx, dx0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_layer():
    layer = cyrelu.nn.ReLU6()
    x = np.array([-1.0, 3.0, 9.0])
    np.testing.assert_array_equal(layer.forward(x), [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 1.0, 0.0])


def test_table_reachable_from_python():
    assert table.CODES[None] == table.NONE
    for name, entry in table.TABLE.items():
        fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
        x = np.array([-1.0, 0.5, 2.0])
        assert fwd(x).shape == x.shape and bwd(x, x).shape == x.shape
        assert len(entry.params) <= 2
        # BatchNorm's fused activations: tests/test_batchnorm_fused.py


def test_cuda_table_agrees():
    """The codes the CUDA compiler sees (the loader's program, preprocessed with the
    CUDA defines) are the CPU's, and every code has kernels."""
    from cyrelu.cuda import _loader

    text = _loader.source("common.cuh")
    text += "\n#define PRINT_(n, N, code, p, o) @@ n N code @@\nCYR_ACTIVATIONS(PRINT_)\n"
    out = subprocess.run(
        ["cpp", "-P", "-D__CUDACC__", "-D__NVCC__"], input=text, capture_output=True, text=True
    ).stdout
    seen = {m[0]: int(m[2]) for m in re.findall(r"@@ (\w+) (\w+) (\d+) @@", out)}
    assert seen == {n: e.code for n, e in table.TABLE.items()}
    ew = _loader.NAME_EXPRESSIONS["elementwise.cu"]
    for code in seen.values():
        for index in _loader.INDEX_TYPES:
            assert "unary_flat<float, %d, %s>" % (code, index) in ew
