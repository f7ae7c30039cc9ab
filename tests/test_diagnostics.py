"""dead_units, sparsity and fold_batch_norm against NumPy (and PyTorch) references."""

import sys
import types

import numpy as np
import pytest

import cyrelu
from cyrelu import _backend
from cyrelu.diagnostics import dead_units, fold_batch_norm, sparsity

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")

FLOATS = [np.float16, np.float32, np.float64]


# ---- references --------------------------------------------------------------------------


def ref_dead(x, axis, threshold=0.0):
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0).reshape(x.shape[axis], -1)
    return np.all(x <= threshold, axis=1)  # NaN <= t is False: a NaN channel is alive


def ref_sparsity(x, axis=None):
    if axis is None:
        return float(np.count_nonzero(x == 0)) / x.size
    x = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return np.count_nonzero(x == 0, axis=1) / x.shape[1]


def make_data(rng, shape, dtype, zero_frac=0.5, dead_channels=(), axis=1):
    x = rng.standard_normal(shape)
    x[rng.random(shape) < zero_frac] = 0.0
    x = x.astype(dtype)
    for c in dead_channels:
        idx = [slice(None)] * x.ndim
        idx[axis] = c
        x[tuple(idx)] = -np.abs(x[tuple(idx)])
    return x


SHAPE_AXES = [
    ((64, 10), 1),
    ((64, 10), 0),
    ((64, 10), -1),
    ((8, 6, 5, 4), 1),
    ((8, 6, 5, 4), 3),
    ((8, 6, 5, 4), 0),
    ((8, 6, 5, 4), -2),
    ((7,), 0),
    ((3, 1, 4), 1),
    ((1, 300), 1),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, axis", SHAPE_AXES)
def test_against_numpy(rng, dtype, shape, axis):
    x = make_data(rng, shape, dtype, dead_channels=(0,), axis=axis)
    np.testing.assert_array_equal(dead_units(x, axis=axis), ref_dead(x, axis))
    np.testing.assert_allclose(sparsity(x, axis=axis), ref_sparsity(x, axis), rtol=1e-15)
    assert sparsity(x) == pytest.approx(ref_sparsity(x), rel=1e-15)
    assert dead_units(x, axis=axis)[0]  # channel 0 was made non-positive
    for t in (-0.5, 0.3, 1e9, -np.inf, np.inf):
        np.testing.assert_array_equal(dead_units(x, axis=axis, threshold=t), ref_dead(x, axis, t))


def test_results_and_types(rng):
    x = rng.standard_normal((32, 5)).astype(np.float32)
    d = dead_units(x)
    assert d.dtype == np.bool_ and d.shape == (5,)
    s = sparsity(x)
    assert type(s) is float
    s = sparsity(x, axis=1)
    assert s.dtype == np.float64 and s.shape == (5,)
    assert cyrelu.dead_units is dead_units and cyrelu.sparsity is sparsity
    assert cyrelu.fold_batch_norm is fold_batch_norm


def test_special_values():
    x = np.array(
        [[0.0, -0.0, 1.0, np.nan], [-0.0, -1.0, np.inf, -np.inf], [0.0, -np.inf, -2.0, -1.0]],
        dtype=np.float32,
    )
    # exact zeros: -0.0 counts, NaN does not
    np.testing.assert_array_equal(sparsity(x, axis=0), [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(sparsity(x, axis=1), [1.0, 1 / 3, 0.0, 0.0])
    assert sparsity(x) == 4 / 12
    # dead: every value <= 0; a NaN is not <= 0 (alive), +inf is alive
    np.testing.assert_array_equal(dead_units(x, axis=0), [False, False, True])
    np.testing.assert_array_equal(dead_units(x, axis=1), [True, True, False, False])
    assert not dead_units(np.full((4, 2), np.nan))[0]
    assert dead_units(np.full((4, 2), np.nan), threshold=np.inf).tolist() == [False, False]
    assert dead_units(np.full((4, 2), 5.0), threshold=np.inf).tolist() == [True, True]


def test_threshold_is_exact_for_float32():
    v = np.float32(0.1)  # 0.100000001490116..., just above the double 0.1
    x = np.full((4, 1), v, dtype=np.float32)
    assert not dead_units(x, threshold=0.1)[0]
    assert dead_units(x, threshold=float(v))[0]
    assert not dead_units(x, threshold=np.nextafter(float(v), -1.0))[0]
    h = np.full((4, 1), np.float16(0.1), dtype=np.float16)
    assert dead_units(h, threshold=float(np.float16(0.1)))[0]
    assert not dead_units(h, threshold=0.09997)[0]
    # huge thresholds that float32 cannot hold
    big = np.array([[np.float32(3e38)], [np.inf]], dtype=np.float32)
    assert not dead_units(big, threshold=1e300)[0]
    assert dead_units(big[:1], threshold=1e300)[0]
    assert not dead_units(big[:1], threshold=-1e300)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_layouts(rng, dtype):
    base = make_data(rng, (40, 12, 9), dtype, dead_channels=(2, 5))
    views = [
        base[:, ::2],  # strided channels
        base[::-1],  # negative stride
        base.transpose(2, 1, 0),  # F order
        np.asfortranarray(base),
        base[:, :, 3],  # (N, C) with a gap
        base[:, :, 3].T,  # (C, N) transposed
        base.transpose(0, 2, 1)[:, ::3],  # mixed
    ]
    for v in views:
        for axis in range(v.ndim):
            np.testing.assert_array_equal(dead_units(v, axis=axis), ref_dead(v, axis))
            np.testing.assert_allclose(sparsity(v, axis=axis), ref_sparsity(v, axis))
        assert sparsity(v) == pytest.approx(ref_sparsity(v))


@pytest.mark.parametrize("shape, axis", [((40, 2500), 1), ((3, 1030, 2), 1), ((2500, 7), 0)])
def test_many_channels(rng, shape, axis):
    # more channels than one tile of counters (1024), in every loop shape
    x = make_data(rng, shape, np.float32, zero_frac=0.4, dead_channels=(0, 1023, 1024), axis=axis)
    for v in (x, np.moveaxis(np.moveaxis(x, axis, -1).copy(), -1, axis)):  # and channels-last
        np.testing.assert_array_equal(dead_units(v, axis=axis), ref_dead(v, axis))
        np.testing.assert_array_equal(sparsity(v, axis=axis), ref_sparsity(v, axis))
        for nt in (1, 2, 3):
            np.testing.assert_array_equal(
                dead_units(v, axis=axis, num_threads=nt), ref_dead(v, axis)
            )


def test_unaligned_input(rng):
    x = make_data(rng, (30, 7), np.float64, dead_channels=(1,))
    buf = np.zeros(x.nbytes + 1, dtype=np.uint8)
    u = np.frombuffer(buf[1:].data, dtype=np.float64).reshape(x.shape)
    u[...] = x
    assert not u.flags.aligned
    np.testing.assert_array_equal(dead_units(u), ref_dead(x, 1))
    np.testing.assert_allclose(sparsity(u, axis=1), ref_sparsity(x, 1))


def test_lists_and_scalars():
    assert dead_units([[-1.0, 2.0], [0.0, 3.0]]).tolist() == [True, False]
    assert sparsity([0.0, 1.0, 0.0, 2.0]) == 0.5
    assert sparsity(0.0) == 1.0
    assert sparsity(np.float32(3.0)) == 0.0


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((257, 300), 1),
        ((300, 257), 0),
        ((4, 64, 33, 31), 1),
        ((2, 3, 40000), 1),
        ((1, 150000), 1),
        ((150000, 2), 1),
    ],
)
def test_thread_count_does_not_change_results(rng, shape, axis):
    x = make_data(rng, shape, np.float32, zero_frac=0.3, dead_channels=(0,), axis=axis)
    d1 = dead_units(x, axis=axis, num_threads=1)
    s1 = sparsity(x, axis=axis, num_threads=1)
    a1 = sparsity(x, num_threads=1)
    np.testing.assert_array_equal(d1, ref_dead(x, axis))
    np.testing.assert_array_equal(s1, ref_sparsity(x, axis))
    for nt in (2, 3, 7):
        np.testing.assert_array_equal(dead_units(x, axis=axis, num_threads=nt), d1)
        np.testing.assert_array_equal(sparsity(x, axis=axis, num_threads=nt), s1)
        assert sparsity(x, num_threads=nt) == a1


def test_empty_inputs():
    assert dead_units(np.zeros((5, 0))).shape == (0,)
    assert sparsity(np.zeros((5, 0)), axis=1).shape == (0,)
    with pytest.raises(ValueError, match="no values"):
        dead_units(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="no values"):
        sparsity(np.zeros((0, 4)), axis=1)
    with pytest.raises(ValueError, match="empty"):
        sparsity(np.zeros((0, 4)))


def test_errors():
    x = np.zeros((4, 3), dtype=np.float32)
    for bad in (
        np.zeros((4, 3), dtype=np.int32),
        np.zeros((4, 3), dtype=bool),
        np.zeros((4, 3), dtype=np.complex64),
    ):
        with pytest.raises(TypeError, match="dtype"):
            dead_units(bad)
        with pytest.raises(TypeError, match="dtype"):
            sparsity(bad)
    with pytest.raises(TypeError, match="ndarray"):
        sparsity("abc")  # a str is not an array
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        dead_units(x, axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        sparsity(x, axis=-3)
    with pytest.raises(ValueError, match="out of range"):
        dead_units(np.float32(1.0), axis=0)
    with pytest.raises(TypeError, match="axis"):
        dead_units(x, axis=True)
    with pytest.raises(TypeError, match="axis"):
        sparsity(x, axis=1.0)
    with pytest.raises(ValueError, match="NaN"):
        dead_units(x, threshold=float("nan"))
    with pytest.raises(TypeError, match="threshold"):
        dead_units(x, threshold="0")
    with pytest.raises(ValueError, match="num_threads"):
        sparsity(x, num_threads=0)


def test_gpu_arrays_dispatch_to_the_backend(monkeypatch):
    """A registered GPU array type sends the call to its backend module, untouched."""
    calls = []
    fake = types.ModuleType("fakegpu_backend")
    fake.dead_units = lambda x, **kw: calls.append(("dead_units", kw)) or "dead"
    fake.sparsity = lambda x, **kw: calls.append(("sparsity", kw)) or "sparse"
    monkeypatch.setitem(sys.modules, "fakegpu_backend", fake)
    monkeypatch.setitem(_backend.BACKENDS, "fakegpu", "fakegpu_backend")
    arr_type = type("ndarray", (), {"__module__": "fakegpu.core"})
    a = arr_type()
    assert dead_units(a, axis=0, threshold=1.0) == "dead"
    assert sparsity(a, axis=2) == "sparse"
    assert calls == [
        ("dead_units", {"axis": 0, "threshold": 1.0, "num_threads": None}),
        ("sparsity", {"axis": 2, "num_threads": None}),
    ]


# ---- fold_batch_norm ---------------------------------------------------------------------


def bn_eval(z, mean, var, gamma, beta, eps, axis):
    shape = [1] * z.ndim
    shape[axis] = -1
    r = lambda v: np.asarray(v, dtype=np.float64).reshape(shape)  # noqa: E731
    return r(gamma) * (z - r(mean)) / np.sqrt(r(var) + eps) + r(beta)


def bn_params(rng, c):
    return (
        rng.standard_normal(c),
        rng.random(c) * 2 + 0.1,
        rng.standard_normal(c),
        rng.standard_normal(c),
    )


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_linear_torch_layout(rng, use_bias, affine):
    n_in, n_out, eps = 7, 5, 1e-3
    W = rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out) if use_bias else None
    mean, var, gamma, beta = bn_params(rng, n_out)
    if not affine:
        gamma = beta = None
    x = rng.standard_normal((20, n_in))
    z = x @ W.T + (b if use_bias else 0)
    expected = bn_eval(
        z, mean, var, 1 if gamma is None else gamma, 0 if beta is None else beta, eps, axis=1
    )
    Wf, bf = fold_batch_norm(W, b, mean, var, gamma, beta, eps)
    assert Wf.shape == W.shape and bf.shape == (n_out,)
    np.testing.assert_allclose(x @ Wf.T + bf, expected, rtol=1e-12, atol=1e-12)


def test_fold_linear_numpy_layout(rng):
    n_in, n_out = 6, 4
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)  # x @ W
    b = rng.standard_normal(n_out).astype(np.float32)
    mean, var, gamma, beta = bn_params(rng, n_out)
    x = rng.standard_normal((15, n_in)).astype(np.float32)
    expected = bn_eval(x.astype(np.float64) @ W + b, mean, var, gamma, beta, 1e-5, axis=1)
    Wf, bf = fold_batch_norm(W, b, mean, var, gamma, beta, axis=1)
    assert Wf.dtype == np.float32 and bf.dtype == np.float32
    np.testing.assert_allclose(x @ Wf + bf, expected, rtol=1e-5, atol=1e-5)
    # axis=-1 is the same axis
    Wf2, bf2 = fold_batch_norm(W, b, mean, var, gamma, beta, axis=-1)
    np.testing.assert_array_equal(Wf2, Wf)
    np.testing.assert_array_equal(bf2, bf)


def im2col(x, kh, kw):
    """(N, C, H, W) -> (N, OH, OW, C*kh*kw), valid padding, stride 1."""
    n, c, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    cols = np.empty((n, oh, ow, c, kh, kw))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, :, i, j] = x[:, :, i : i + oh, j : j + ow].transpose(0, 2, 3, 1)
    return cols.reshape(n, oh, ow, c * kh * kw)


def conv2d(x, W, b):
    out_c = W.shape[0]
    y = im2col(x, W.shape[2], W.shape[3]) @ W.reshape(out_c, -1).T  # (N, OH, OW, out)
    if b is not None:
        y = y + b
    return y.transpose(0, 3, 1, 2)


def test_fold_conv_as_matmul(rng):
    W = rng.standard_normal((4, 3, 3, 2))  # (out, in, kh, kw)
    b = rng.standard_normal(4)
    mean, var, gamma, beta = bn_params(rng, 4)
    x = rng.standard_normal((2, 3, 6, 5))
    expected = bn_eval(conv2d(x, W, b), mean, var, gamma, beta, 1e-5, axis=1)
    Wf, bf = fold_batch_norm(W, b, mean, var, gamma, beta)
    assert Wf.shape == W.shape
    np.testing.assert_allclose(conv2d(x, Wf, bf), expected, rtol=1e-12, atol=1e-12)
    Wf0, bf0 = fold_batch_norm(W, None, mean, var, gamma, beta)
    np.testing.assert_allclose(
        conv2d(x, Wf0, bf0),
        bn_eval(conv2d(x, W, None), mean, var, gamma, beta, 1e-5, 1),
        rtol=1e-12,
        atol=1e-12,
    )


@requires_torch
def test_fold_against_torch_modules():
    torch.manual_seed(0)
    lin, bn = torch.nn.Linear(8, 6).double(), torch.nn.BatchNorm1d(6).double()
    conv, bn2 = torch.nn.Conv2d(3, 5, 3).double(), torch.nn.BatchNorm2d(5, eps=1e-3).double()
    for m in (bn, bn2):
        m.running_mean.uniform_(-1, 1)
        m.running_var.uniform_(0.2, 3)
        m.weight.data.uniform_(-2, 2)
        m.bias.data.uniform_(-1, 1)
        m.eval()
    with torch.no_grad():
        x = torch.randn(10, 8, dtype=torch.float64)
        args = [
            t.detach().numpy()
            for t in (lin.weight, lin.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias)
        ]
        Wf, bf = fold_batch_norm(*args, eps=bn.eps)
        np.testing.assert_allclose(
            x.numpy() @ Wf.T + bf, bn(lin(x)).numpy(), rtol=1e-12, atol=1e-12
        )
        xi = torch.randn(2, 3, 7, 6, dtype=torch.float64)
        args = [
            t.detach().numpy()
            for t in (
                conv.weight,
                conv.bias,
                bn2.running_mean,
                bn2.running_var,
                bn2.weight,
                bn2.bias,
            )
        ]
        Wf, bf = fold_batch_norm(*args, eps=bn2.eps)
        folded = torch.nn.functional.conv2d(xi, torch.from_numpy(Wf), torch.from_numpy(bf))
        np.testing.assert_allclose(folded.numpy(), bn2(conv(xi)).numpy(), rtol=1e-11, atol=1e-11)


def test_fold_dtypes_and_precision(rng):
    W = rng.standard_normal((5, 3))
    mean, var, gamma, beta = bn_params(rng, 5)
    for dt in (np.float16, np.float32):
        Wf, bf = fold_batch_norm(W.astype(dt), None, mean.astype(dt), var, gamma, beta)
        assert Wf.dtype == dt and bf.dtype == dt
        # computed in float64 from the (rounded) inputs, rounded once
        exp_w, exp_b = fold_batch_norm(
            W.astype(dt).astype(np.float64),
            None,
            mean.astype(dt).astype(np.float64),
            var,
            gamma,
            beta,
        )
        np.testing.assert_array_equal(Wf, exp_w.astype(dt))
        np.testing.assert_array_equal(bf, exp_b.astype(dt))
    # inputs are not modified, outputs are new arrays
    W0 = W.copy()
    Wf, _ = fold_batch_norm(W, None, mean, var)
    np.testing.assert_array_equal(W, W0)
    assert not np.shares_memory(Wf, W)
    np.testing.assert_allclose(Wf, W / np.sqrt(var + 1e-5)[:, None])


def test_fold_errors(rng):
    W = rng.standard_normal((4, 3))
    v = np.ones(4)
    with pytest.raises(ValueError, match=r"running_mean has shape \(3,\); expected \(4,\)"):
        fold_batch_norm(W, None, np.zeros(3), v)
    with pytest.raises(ValueError, match="bias has shape"):
        fold_batch_norm(W, np.zeros(3), v, v)
    with pytest.raises(ValueError, match=r"bn_weight has shape \(4,\); expected \(3,\)"):
        fold_batch_norm(W, None, np.zeros(3), np.ones(3), v, axis=1)
    with pytest.raises(ValueError, match="bn_bias"):
        fold_batch_norm(W, None, v, v, v, np.zeros((4, 1)))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        fold_batch_norm(W, None, v, -v)
    with pytest.raises(ValueError, match="eps"):
        fold_batch_norm(W, None, v, v, eps=-1.0)
    with pytest.raises(ValueError, match="eps"):
        fold_batch_norm(W, None, v, v, eps=float("inf"))
    with pytest.raises(ValueError, match="running_var \\+ eps is 0"):
        fold_batch_norm(W, None, v, np.zeros(4), eps=0.0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        fold_batch_norm(W, None, v, v, axis=2)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        fold_batch_norm(np.float64(1.0), None, v, v)
    with pytest.raises(TypeError, match="dtype"):
        fold_batch_norm(W.astype(np.int64), None, v, v)
    with pytest.raises(TypeError, match="dtype"):
        fold_batch_norm(W, None, np.arange(4), v)
    with pytest.raises(TypeError, match="required"):
        fold_batch_norm(W, None, None, v)
