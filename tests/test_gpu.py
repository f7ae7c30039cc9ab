"""The CuPy backend against the CPU path (and torch CUDA where present).

Skipped as a whole without CuPy or without a usable CUDA device.  Every GPU result is
compared with the same call on ``.get()`` copies through the NumPy path: bit for bit for
the activations (the math is the same comparisons and one multiply), to rounding for
BatchNorm (also against a float64 NumPy reference in this file, so the BatchNorm tests
run before the CPU BatchNorm lands).
"""

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")


def _device_count():
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy without a driver raises several kinds of errors
        return 0


pytestmark = pytest.mark.skipif(_device_count() == 0, reason="no usable CUDA device")

import cyrelu  # noqa: E402
import cyrelu.cuda as gpu  # noqa: E402  (importing it is what the dispatcher does)
from cyrelu import _activation_table as _table  # noqa: E402

try:
    import torch

    TORCH_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - environment dependent
    torch = None
    TORCH_CUDA = False
requires_torch_cuda = pytest.mark.skipif(not TORCH_CUDA, reason="torch with CUDA not available")

DTYPES = [np.float16, np.float32, np.float64]
SPECIALS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    np.inf,
    -np.inf,
    np.nan,
    -np.nan,
    1e-40,
    -1e-40,
    1e-310,
    -1e-310,
    65504.0,
    -65504.0,
    3.0e38,
    -3.0e38,
    0.5,
    -2.5,
]


def _data(rng, shape, dtype, specials=True):
    x = rng.standard_normal(shape).astype(dtype)
    if specials and x.size:
        flat = x.reshape(-1)
        with np.errstate(over="ignore"):
            sp = np.array(SPECIALS).astype(dtype)
        k = min(flat.size, sp.size)
        idx = rng.choice(flat.size, size=k, replace=False)
        flat[idx] = sp[:k]
    return x


# the smooth members: the GPU evaluates their double functions and rounds once, the CPU
# the float ones for float16/float32 (each a few ulp from exact): close, not bitwise
SMOOTH = {"elu", "celu", "selu", "silu", "softplus", "gelu", "mish"}


def _agree(name, a, b):
    if name.split("_")[0].split("-")[0] not in SMOOTH:
        _same_bits(a, b)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    rtol = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-13}[a.dtype.type]
    ok = ~np.isnan(a)
    # absolute near a zero of a derivative (the terms cancel there)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=rtol)


def _same_bits(a, b, signed_zero=True):
    """Equal including NaN positions and (unless signed_zero=False) the sign of zero."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_array_equal(a[ok], b[ok])
    if signed_zero:
        np.testing.assert_array_equal(np.signbit(a[ok]), np.signbit(b[ok]))


# ---- activations ---------------------------------------------------------------------

UNARY = [
    ("relu", lambda f, x, **kw: f.relu(x, **kw)),
    ("leaky0.2", lambda f, x, **kw: f.leaky_relu(x, 0.2, **kw)),
    ("leaky1.5", lambda f, x, **kw: f.leaky_relu(x, 1.5, **kw)),
    ("leaky-0.3", lambda f, x, **kw: f.leaky_relu(x, -0.3, **kw)),
]
BINARY = [
    ("relu_backward", lambda f, g, x, **kw: f.relu_backward(g, x, **kw)),
    ("leaky_backward0.01", lambda f, g, x, **kw: f.leaky_relu_backward(g, x, 0.01, **kw)),
    ("leaky_backward-2", lambda f, g, x, **kw: f.leaky_relu_backward(g, x, -2.0, **kw)),
]
# every other activation of the table without a parameter (relu6, hardsigmoid, ...)
_PLAIN = [n for n, e in _table.TABLE.items() if not e.params and n != "relu"]
UNARY += [(n, lambda f, x, _n=n, **kw: getattr(f, _n)(x, **kw)) for n in _PLAIN]
BINARY += [
    (n + "_backward", lambda f, g, x, _n=n, **kw: getattr(f, _n + "_backward")(g, x, **kw))
    for n in _PLAIN
]
UNARY += [("hardtanh-0.5,2", lambda f, x, **kw: f.hardtanh(x, -0.5, 2.0, **kw))]
BINARY += [
    ("hardtanh_backward-3,0.25", lambda f, g, x, **kw: f.hardtanh_backward(g, x, -3.0, 0.25, **kw))
]
SHAPES = [(0,), (1,), (7,), (33,), (1000003,), (33, 65), (4, 5, 6, 7), (2, 0, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,op", UNARY)
def test_unary_matches_cpu(rng, dtype, shape, name, op):
    x = _data(rng, shape, dtype)
    xd = cupy.asarray(x)
    y = op(cyrelu, xd)
    assert isinstance(y, cupy.ndarray) and y.device.id == xd.device.id
    _agree(name, y.get(), op(cyrelu, x))
    _same_bits(xd.get(), x)  # input untouched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,op", BINARY)
def test_binary_matches_cpu(rng, dtype, shape, name, op):
    g = _data(rng, shape, dtype)
    x = _data(rng, shape, dtype)
    y = op(cyrelu, cupy.asarray(g), cupy.asarray(x))
    _agree(name, y.get(), op(cyrelu, g, x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_exact(dtype):
    with np.errstate(over="ignore"):
        x = np.array(SPECIALS, dtype=dtype)
    xd = cupy.asarray(x)
    y = cyrelu.relu(xd).get()
    assert np.isnan(y[np.isnan(x)]).all(), "relu must keep NaN (the fmaxf bug)"
    assert np.signbit(y[1]) and y[1] == 0, "relu(-0.0) is -0.0"
    _same_bits(y, cyrelu.relu(x))
    g = np.ones_like(x)
    gb = cyrelu.relu_backward(cupy.asarray(g), xd).get()
    assert (gb[np.isnan(x)] == 1).all(), "relu_backward passes g where x is NaN"
    assert gb[0] == 0 and gb[1] == 0, "gradient at x == 0 is 0"
    lb = cyrelu.leaky_relu_backward(cupy.asarray(g), xd, 0.25).get()
    assert (lb[np.isnan(x)] == np.asarray(0.25, dtype)).all()


def _layouts(rng, dtype):
    """(name, make(base) -> view) pairs covering every kernel path."""
    return [
        ("step2", lambda a: a[::2]),
        ("transposed", lambda a: a.T),
        ("reversed", lambda a: a[::-1, ::-1]),
        ("offset1", lambda a: a.reshape(-1)[1:]),  # misaligned start: scalar head
        ("offset3_2d", lambda a: a.reshape(-1)[3 : 3 + 40 * 49].reshape(40, 49)),
        (
            "fortran",
            lambda a: a.T.copy().T if isinstance(a, np.ndarray) else cupy.asfortranarray(a),
        ),
        ("cols", lambda a: a[:, 1:-1]),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", range(7))
def test_layouts_inputs(rng, dtype, layout):
    base = _data(rng, (96, 50), dtype)
    _name, view = _layouts(rng, dtype)[layout]
    xd = view(cupy.asarray(base))
    x = view(base.copy())
    _same_bits(cyrelu.relu(xd).get(), cyrelu.relu(x))
    _same_bits(cyrelu.leaky_relu(xd, 0.1).get(), cyrelu.leaky_relu(x, 0.1))
    gbase = _data(rng, (96, 50), dtype)
    gd = view(cupy.asarray(gbase))
    g = view(gbase.copy())
    _same_bits(cyrelu.relu_backward(gd, xd).get(), cyrelu.relu_backward(g, x))
    _same_bits(
        cyrelu.leaky_relu_backward(gd, xd, 0.3).get(), cyrelu.leaky_relu_backward(g, x, 0.3)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_axes_fall_back(rng, dtype):
    # 6 axes that cannot be merged: more than the strided kernel's 4
    base = _data(rng, (3, 4, 5, 6, 7, 8), dtype)
    xd = cupy.asarray(base).transpose(5, 3, 1, 0, 2, 4)[:, ::2]
    x = base.transpose(5, 3, 1, 0, 2, 4)[:, ::2]
    _same_bits(cyrelu.relu(xd).get(), cyrelu.relu(x))
    outd = cupy.empty(x.shape[::-1], dtype=dtype).T
    cyrelu.leaky_relu(xd, 0.5, out=outd)
    _same_bits(outd.get(), cyrelu.leaky_relu(x, 0.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_noncontiguous_and_in_place(rng, dtype):
    x = _data(rng, (64, 33), dtype)
    ref = cyrelu.relu(x)
    big = cupy.full((64, 66), 7, dtype=dtype)
    out = big[:, ::2]
    r = cyrelu.relu(cupy.asarray(x), out=out)
    assert r is out
    _same_bits(out.get(), ref)
    assert (big[:, 1::2] == 7).all(), "gaps of a strided out are not written"
    xd = cupy.asarray(x)
    r = cyrelu.relu(xd, out=xd)
    assert r is xd
    _same_bits(xd.get(), ref)
    # in place on a strided view
    base = cupy.asarray(_data(rng, (64, 66), dtype))
    expect = cyrelu.leaky_relu(base.get()[:, ::2], 0.2)
    v = base[:, ::2]
    cyrelu.leaky_relu(v, 0.2, out=v)
    _same_bits(v.get(), expect)
    # backward in place on g and on x
    g = cupy.asarray(_data(rng, (1001,), dtype))
    x2 = cupy.asarray(_data(rng, (1001,), dtype))
    expect = cyrelu.relu_backward(g.get(), x2.get())
    cyrelu.relu_backward(g, x2, out=g)
    _same_bits(g.get(), expect)
    g = cupy.asarray(_data(rng, (1001,), dtype))
    expect = cyrelu.leaky_relu_backward(g.get(), x2.get(), 0.1)
    cyrelu.leaky_relu_backward(g, x2, 0.1, out=x2)
    _same_bits(x2.get(), expect)


@pytest.mark.parametrize("dtype", DTYPES)
def test_partial_overlap(rng, dtype):
    a = cupy.asarray(_data(rng, (1000,), dtype))
    host = a.get()
    expect = cyrelu.leaky_relu(host[1:], 0.5)
    cyrelu.leaky_relu(a[1:], 0.5, out=a[:-1])
    _same_bits(a[:-1].get(), expect)


def test_errors_match_cpu():
    x = cupy.zeros(5, dtype=np.float32)
    with pytest.raises(TypeError, match="unsupported dtype int32"):
        cyrelu.relu(cupy.zeros(5, dtype=np.int32))
    with pytest.raises(TypeError, match="mix"):
        cyrelu.relu(x, out=np.zeros(5, dtype=np.float32))
    with pytest.raises(TypeError, match="mix"):
        cyrelu.relu_backward(np.zeros(5, dtype=np.float32), x)
    with pytest.raises(TypeError, match="dtype"):
        cyrelu.relu(x, out=cupy.zeros(5, dtype=np.float64))
    with pytest.raises(ValueError, match="shape"):
        cyrelu.relu(x, out=cupy.zeros(6, dtype=np.float32))
    with pytest.raises(ValueError, match="same shape"):
        cyrelu.relu_backward(cupy.zeros(4, dtype=np.float32), x)
    with pytest.raises(TypeError, match="same dtype"):
        cyrelu.relu_backward(cupy.zeros(5, dtype=np.float64), x)
    with pytest.raises(ValueError):
        cyrelu.relu(x, num_threads=0)
    with pytest.raises(ValueError, match="finite"):
        cyrelu.leaky_relu(x, float("nan"))
    with pytest.raises(TypeError):
        cyrelu.leaky_relu(x, "0.1")


def test_table_generated_pairs_take_parameters_as_the_cpu_functions_do(rng):
    # hardtanh's CuPy pair is generated from the table: its parameters by position or by
    # name, out= by position or by name, the table's checks (a bound below the other, a
    # non-finite bound) and float16 rounding of the bounds, as on the CPU
    for dtype in (np.float16, np.float32, np.float64):
        xh = _data(rng, (257,), dtype)
        x = cupy.asarray(xh)
        want = cyrelu.hardtanh(xh, -0.3, 0.7)
        _same_bits(cyrelu.hardtanh(x, -0.3, 0.7).get(), want)
        _same_bits(cyrelu.hardtanh(x, max_val=0.7, min_val=-0.3).get(), want)
        o = cupy.empty_like(x)
        assert cyrelu.hardtanh(x, -0.3, 0.7, o) is o
        _same_bits(o.get(), want)
        g = cupy.asarray(_data(rng, (257,), dtype, specials=False))
        _same_bits(
            cyrelu.hardtanh_backward(g, x, min_val=-0.3, out=o).get(),
            cyrelu.hardtanh_backward(g.get(), xh, min_val=-0.3),
        )
    x = cupy.zeros(5, dtype=np.float32)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        cyrelu.hardtanh(x, 1.0, -1.0)
    with pytest.raises(ValueError, match="finite"):
        cyrelu.hardtanh(x, float("nan"))
    with pytest.raises(TypeError):
        gpu.hardtanh(x, -1.0, 1.0, None, 5)
    with pytest.raises(TypeError):
        gpu.hardtanh(x, min_value=0.0)
    with pytest.raises(TypeError):
        gpu.hardtanh(x, 0.0, min_val=0.0)


def test_out_on_other_device():
    if _device_count() < 2:
        pytest.skip("needs two GPUs")
    x = cupy.zeros(5, dtype=np.float32)
    with cupy.cuda.Device(1):
        out = cupy.zeros(5, dtype=np.float32)
    with pytest.raises(ValueError, match="GPU"):
        cyrelu.relu(x, out=out)
    # work on another device than the current one stays on the arrays' device
    with cupy.cuda.Device(1):
        x1 = cupy.asarray(np.array([-1.0, 2.0, np.nan], dtype=np.float32))
        x2 = cupy.asarray(np.random.default_rng(0).standard_normal((8, 3, 5)))
    for y in (cyrelu.relu(x1), cyrelu.relu(x1[::2]), cyrelu.leaky_relu(x1, 0.1)):
        assert y.device.id == 1
    _same_bits(cyrelu.relu(x1).get(), np.array([0.0, 2.0, np.nan], dtype=np.float32))
    y, sm, si = gpu.batch_norm(x2, training=True, return_stats=True)
    assert y.device.id == 1 and sm.device.id == 1
    ref = _ref_bn(x2.get(), None, None, None, None, True, 0.1, 1e-5, 1, None, 0)[0]
    _close(y.get(), ref, np.float64)
    gi, gw, _gb = gpu.batch_norm_backward(x2, x2, sm, si)
    assert gi.device.id == 1 and gw.device.id == 1
    assert gpu.dead_units(x2).device.id == 1


def test_kernels_cached_per_device():
    from cyrelu.cuda import _loader

    x = cupy.ones(10, dtype=np.float32)
    cyrelu.relu(x)
    n = len(_loader._modules)
    cyrelu.relu(x)
    cyrelu.leaky_relu(x, 0.1)
    assert len(_loader._modules) == n


@requires_torch_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_match_torch(rng, dtype):
    x = _data(rng, (4099,), dtype)
    g = _data(rng, (4099,), dtype)
    xd, gd = cupy.asarray(x), cupy.asarray(g)
    xt, gt = torch.as_tensor(xd, device="cuda"), torch.as_tensor(gd, device="cuda")
    F = torch.nn.functional
    # torch's CUDA relu is clamp_min, a max(): it may give +0.0 for -0.0, where cyrelu
    # (on either device) and torch on the CPU keep -0.0; NaN must agree
    _same_bits(cyrelu.relu(xd).get(), torch.relu(xt).cpu().numpy(), signed_zero=False)
    _same_bits(cyrelu.leaky_relu(xd, 0.01).get(), F.leaky_relu(xt, 0.01).cpu().numpy())
    _same_bits(
        cyrelu.relu_backward(gd, xd).get(),
        torch.ops.aten.threshold_backward(gt, xt, 0).cpu().numpy(),
    )
    _same_bits(
        cyrelu.leaky_relu_backward(gd, xd, 0.01).get(),
        torch.ops.aten.leaky_relu_backward(gt, xt, 0.01, False).cpu().numpy(),
    )


# ---- BatchNorm -----------------------------------------------------------------------

TOL = {
    np.float16: dict(rtol=4e-3, atol=4e-3),
    np.float32: dict(rtol=2e-5, atol=2e-5),
    np.float64: dict(rtol=1e-11, atol=1e-12),
}
CPU_BN = getattr(cyrelu, "batch_norm", None)
CPU_BN_BACKWARD = getattr(cyrelu, "batch_norm_backward", None)


def _gpu_bn(*args, **kw):
    """Through the public function when the CPU BatchNorm has landed, else the backend."""
    fn = CPU_BN if CPU_BN is not None else gpu.batch_norm
    return fn(*args, **kw)


def _gpu_bn_backward(*args, **kw):
    fn = CPU_BN_BACKWARD if CPU_BN_BACKWARD is not None else gpu.batch_norm_backward
    return fn(*args, **kw)


def _act(y, activation, alpha):
    if activation == "relu":
        return np.where(y < 0, 0, y)
    if activation == "leaky_relu":
        return np.where(y > 0, y, alpha * y)
    return y


def _gate(dy, y, activation, alpha):
    if activation == "relu":
        return np.where(y <= 0, 0, dy)
    if activation == "leaky_relu":
        return np.where(y > 0, dy, alpha * dy)
    if activation == "hardtanh":  # the default bounds; 0 at them, as torch
        return np.where((y > -1.0) & (y < 1.0), dy, 0.0)
    return dy


def _ref_bn(x, rm, rv, w, b, training, momentum, eps, axis, activation, alpha):
    """float64 NumPy reference: (y, save_mean, save_invstd, new_rm, new_rv)."""
    x64 = x.astype(np.float64)
    ax = axis % x.ndim
    red = tuple(d for d in range(x.ndim) if d != ax)
    bshape = [1] * x.ndim
    bshape[ax] = x.shape[ax]
    C = x.shape[ax]
    w = np.ones(C) if w is None else w.astype(np.float64)
    b = np.zeros(C) if b is None else b.astype(np.float64)
    if training:
        mean = x64.mean(axis=red)
        var = x64.var(axis=red)
        m = x.size // C
        new_rm = None if rm is None else (1 - momentum) * rm + momentum * mean
        new_rv = None if rv is None else (1 - momentum) * rv + momentum * var * m / (m - 1)
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
        new_rm, new_rv = rm, rv
    invstd = 1.0 / np.sqrt(var + eps)
    y = (x64 - mean.reshape(bshape)) * (invstd * w).reshape(bshape) + b.reshape(bshape)
    return _act(y, activation, alpha), mean, invstd, new_rm, new_rv


def _ref_bn_backward(dy, x, mean, invstd, w, training, axis, activation, alpha, y):
    ax = axis % x.ndim
    red = tuple(d for d in range(x.ndim) if d != ax)
    bshape = [1] * x.ndim
    bshape[ax] = x.shape[ax]
    C = x.shape[ax]
    w = np.ones(C) if w is None else w.astype(np.float64)
    g = dy.astype(np.float64)
    if activation is not None:
        g = _gate(g, y.astype(np.float64), activation, alpha)
    xhat = (x.astype(np.float64) - mean.reshape(bshape)) * invstd.reshape(bshape)
    gb = g.sum(axis=red)
    gw = (g * xhat).sum(axis=red)
    k = (w * invstd).reshape(bshape)
    if training:
        m = x.size // C
        gi = k * (g - gb.reshape(bshape) / m - xhat * gw.reshape(bshape) / m)
    else:
        gi = k * g
    return gi, gw, gb


def _close(got, want, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), want, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale
    )


BN_CASES = [
    # shape, axis: NCS with S a multiple of the pack, NCS odd S, NC (2-D), channels last
    ((8, 16, 4, 8), 1),
    ((5, 7, 5, 7), 1),
    ((64, 33), 1),
    ((64, 32), -1),
    ((3, 6, 5, 12), -1),
    ((3, 4, 5, 6), 2),
    ((2, 3, 1000), 1),
    ((40, 3), 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", BN_CASES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
def test_batch_norm_forward(rng, dtype, shape, axis, training, activation):
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    C = shape[axis]
    rm = rng.standard_normal(C).astype(np.float32)
    rv = (rng.random(C) + 0.5).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32 if dtype != np.float64 else np.float64)
    b = rng.standard_normal(C).astype(w.dtype)
    rm_d, rv_d = cupy.asarray(rm), cupy.asarray(rv)
    y, sm, si = _gpu_bn(
        cupy.asarray(x),
        rm_d,
        rv_d,
        cupy.asarray(w),
        cupy.asarray(b),
        training,
        0.1,
        1e-5,
        axis=axis,
        activation=activation,
        alpha=0.2,
        return_stats=True,
    )
    assert isinstance(y, cupy.ndarray) and y.dtype == dtype and y.shape == shape
    acc = np.float64 if dtype == np.float64 else np.float32
    assert sm.dtype == acc and si.dtype == acc
    ry, rmean, rinv, nrm, nrv = _ref_bn(
        x, rm, rv, w, b, training, 0.1, 1e-5, axis, activation, 0.2
    )
    _close(y.get(), ry, dtype, scale=4.0)
    _close(sm.get(), rmean, dtype)
    _close(si.get(), rinv, dtype)
    _close(rm_d.get(), nrm, np.float32)
    _close(rv_d.get(), nrv, np.float32)
    if CPU_BN is not None:
        rm2, rv2 = rm.copy(), rv.copy()
        cy, csm, _csi = CPU_BN(
            x,
            rm2,
            rv2,
            w,
            b,
            training,
            0.1,
            1e-5,
            axis=axis,
            activation=activation,
            alpha=0.2,
            return_stats=True,
        )
        _close(y.get(), cy.astype(np.float64), dtype, scale=4.0)
        _close(sm.get(), csm.astype(np.float64), dtype)
        _close(rm_d.get(), rm2.astype(np.float64), np.float32)
        _close(rv_d.get(), rv2.astype(np.float64), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", BN_CASES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "hardtanh"])
def test_batch_norm_backward(rng, dtype, shape, axis, training, activation):
    x = (rng.standard_normal(shape) * 2 - 0.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    C = shape[axis]
    w = rng.standard_normal(C).astype(np.float32)
    rm = rng.standard_normal(C).astype(np.float32)
    rv = (rng.random(C) + 0.5).astype(np.float32)
    xd = cupy.asarray(x)
    y, sm, si = _gpu_bn(
        xd,
        cupy.asarray(rm),
        cupy.asarray(rv),
        cupy.asarray(w),
        None,
        training,
        0.1,
        1e-5,
        axis=axis,
        activation=activation,
        alpha=0.2,
        return_stats=True,
    )
    gi, gw, gb = _gpu_bn_backward(
        cupy.asarray(dy),
        xd,
        sm,
        si,
        cupy.asarray(w),
        training=training,
        axis=axis,
        activation=activation,
        alpha=0.2,
        output=y if activation else None,
    )
    assert gi.dtype == dtype and gw.dtype == np.float32 and gb.dtype == np.float32
    rgi, rgw, rgb = _ref_bn_backward(
        dy,
        x,
        sm.get().astype(np.float64),
        si.get().astype(np.float64),
        w,
        training,
        axis,
        activation,
        0.2,
        y.get(),
    )
    scale = np.sqrt(x.size / C)  # sums of M terms
    _close(gi.get(), rgi, dtype, scale=8.0)
    _close(gw.get(), rgw, np.float32, scale=scale)  # weight's dtype
    _close(gb.get(), rgb, np.float32, scale=scale)
    if CPU_BN_BACKWARD is not None:
        cgi, cgw, cgb = CPU_BN_BACKWARD(
            dy,
            x,
            sm.get(),
            si.get(),
            w,
            training=training,
            axis=axis,
            activation=activation,
            alpha=0.2,
            output=y.get() if activation else None,
        )
        _close(gi.get(), cgi.astype(np.float64), dtype, scale=8.0)
        _close(gw.get(), cgw.astype(np.float64), np.float32, scale=scale)
        _close(gb.get(), cgb.astype(np.float64), np.float32, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "activation,alpha,ap",
    [("elu", 0.5, None), ("hardtanh", None, {"min_val": -0.5, "max_val": 0.5}),
     ("gelu", None, {"approximate": "tanh"}), ("softplus", None, {"beta": 2.0}),
     ("silu", None, None), ("hardswish", None, None)],
)  # fmt: skip
def test_batch_norm_composed_activations(rng, dtype, activation, alpha, ap):
    """Activations with parameters besides alpha, fused into BatchNorm on CuPy arrays:
    the parameters reach the kernels (gelu's two forms, hardtanh's bounds, softplus's
    beta change the result by far more than the tolerance), and the backward gates
    grad_output at the pre-activation recomputed with bias= (or from output=), as on
    NumPy; hardswish's and silu's backward (not fused) too."""
    x = rng.standard_normal((16, 4, 9)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    pd = np.float64 if dtype == np.float64 else np.float32
    w, b = (rng.uniform(0.5, 2, 4).astype(pd), rng.uniform(-1, 1, 4).astype(pd))
    kw = dict(training=True, activation=activation, alpha=alpha, activation_params=ap)
    y, m, s = cyrelu.batch_norm(x, None, None, w, b, return_stats=True, **kw)
    wd, bd = cupy.asarray(w), cupy.asarray(b)
    yd, md, sd = cyrelu.batch_norm(cupy.asarray(x), None, None, wd, bd, return_stats=True, **kw)
    assert isinstance(yd, cupy.ndarray)
    _close(yd.get(), y.astype(np.float64), dtype, scale=4.0)
    want = cyrelu.batch_norm_backward(g, x, m, s, w, bias=b, **kw)
    got = cyrelu.batch_norm_backward(cupy.asarray(g), cupy.asarray(x), md, sd, wd, bias=bd, **kw)
    for a, r in zip(got, want, strict=True):
        assert isinstance(a, cupy.ndarray)
        _close(a.get(), np.asarray(r, np.float64), dtype, scale=8.0 * max(1.0, np.abs(r).max()))
    if activation in ("elu", "hardtanh"):  # the derivative from the output
        got = cyrelu.batch_norm_backward(cupy.asarray(g), cupy.asarray(x), md, sd, wd,
                                         output=yd, **kw)  # fmt: skip
        want = cyrelu.batch_norm_backward(g, x, m, s, w, output=y, **kw)
        _close(got[0].get(), want[0].astype(np.float64), dtype, scale=8.0)


# every activation of the table with parameters that differ from the defaults where it
# has them (a parameter not reaching the kernels changes the result beyond tolerance)
_FROM_BIAS_PARAMS = {
    "hardtanh": {"min_val": -0.5, "max_val": 0.75},
    "elu": {"alpha": 0.7},
    "celu": {"alpha": 1.5},
    "softplus": {"beta": 2.0, "threshold": 3.0},
    "gelu": {"approximate": "tanh"},
}


# the layouts: NCS with S a multiple of the 16-byte pack, NCS odd, NC (channels last)
_FROM_BIAS_LAYOUTS = [((8, 16, 4, 8), 1), ((5, 7, 5, 7), 1), ((64, 33), -1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(_table.TABLE))
def test_batch_norm_backward_from_bias_in_the_kernels(rng, dtype, activation, monkeypatch):
    """bias= on CuPy arrays: the reduction and the apply pass take the activation's
    derivative at the pre-activation they recompute (nothing composed: the composing
    helper raises), for every activation and dtype, training and evaluation, through
    the general path and the per-call fast path, also with out=; against the NumPy
    path's bias= backward (leaky_relu's slope here is negative: output could not give
    its derivative).  Each case takes one of the layouts in turn, so that every layout
    meets every dtype and about a third of the activations (the emulation runs each
    case in about a second)."""
    names = sorted(_table.TABLE)
    k = names.index(activation) + DTYPES.index(dtype)
    alpha = -0.3 if activation == "leaky_relu" else None
    _check_backward_in_the_kernels(rng, dtype, activation, alpha, k, "bias", monkeypatch)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["celu", "elu", "selu"])
def test_batch_norm_backward_result_gate_in_the_kernels(rng, dtype, activation, monkeypatch):
    """output= alone on CuPy arrays for elu, celu and selu: the reduction and the apply
    pass read the derivative from the output (the result gate, y > 0 ? pos : a * (y + b)),
    nothing composed, as above; against the NumPy path's same call (its kernels' result
    gate)."""
    k = ["celu", "elu", "selu"].index(activation) + DTYPES.index(dtype)
    _check_backward_in_the_kernels(rng, dtype, activation, None, k, "output", monkeypatch)


def _check_backward_in_the_kernels(rng, dtype, activation, alpha, k, source, monkeypatch):
    """batch_norm_backward on CuPy arrays with ``activation`` and its derivative from
    ``source`` ("bias" or "output") against the NumPy path's same call, on layout k of
    _FROM_BIAS_LAYOUTS (in turn), with the composing helper patched to raise: training
    and evaluation, the general path then the fast path, and out=."""
    import cyrelu.batchnorm as bn_module

    shape, axis = _FROM_BIAS_LAYOUTS[k % len(_FROM_BIAS_LAYOUTS)]
    x = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    C = shape[axis]
    pd = np.float64 if dtype == np.float64 else np.float32
    w = rng.uniform(0.5, 2.0, C).astype(pd)
    b = rng.uniform(-1.0, 1.0, C).astype(np.float32)  # the bias's own dtype: float32 always
    x = _away_from_kinks(x, axis, w, b)
    ap = _FROM_BIAS_PARAMS.get(activation)
    xd, gd, wd, bd = (cupy.asarray(a) for a in (x, g, w, b))
    for training in (True, False):
        kw = dict(
            training=training, axis=axis, activation=activation, alpha=alpha, activation_params=ap
        )
        rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
        y, m, s = cyrelu.batch_norm(x, rm, rv, w, b, return_stats=True, **kw)
        md, sd = cupy.asarray(m), cupy.asarray(s)
        src, src_d = ({"bias": b}, {"bias": bd}) if source == "bias" else (
            {"output": y}, {"output": cupy.asarray(y)})  # fmt: skip
        want = cyrelu.batch_norm_backward(g, x, m, s, w, **src, **kw)
        tol = [8.0 * max(1.0, float(np.abs(r).max())) for r in want]
        with monkeypatch.context() as mp:
            mp.setattr(bn_module, "_gated", _refuse_composed)
            for _ in range(2):  # the general path, then the fast path
                got = cyrelu.batch_norm_backward(gd, xd, md, sd, wd, **src_d, **kw)
                for a, r, t in zip(got, want, tol, strict=True):
                    assert isinstance(a, cupy.ndarray)
                    _close(a.get(), np.asarray(r, np.float64), dtype, scale=t)
            out = cupy.full(shape, np.nan, dtype)
            gi = cyrelu.batch_norm_backward(gd, xd, md, sd, wd, out=out, **src_d, **kw)[0]
            assert gi is out
            _close(out.get(), np.asarray(want[0], np.float64), dtype, scale=tol[0])
    # the activation's gate is there: the plain backward differs
    plain = cyrelu.batch_norm_backward(gd, xd, md, sd, wd, training=False, axis=axis)[0]
    assert not np.allclose(plain.get(), got[0].get(), rtol=1e-2, atol=1e-2)


def _away_from_kinks(x, axis, w, b):
    """x with the elements whose pre-activation (in training, from the batch's
    statistics; in evaluation, from running statistics 0 and 1) lies within 0.01 of a
    kink of the activations above moved off it: there the two paths' roundings of the
    pre-activation may fall on either side (float16 data lands there)."""
    kinks = np.array([0.0, 6.0, -3.0, 3.0, -0.5, 0.75])
    shape = [1] * x.ndim
    shape[axis] = -1
    w64, b64 = w.astype(np.float64).reshape(shape), b.astype(np.float64).reshape(shape)
    others = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    for _ in range(5):
        x64 = x.astype(np.float64)
        mean, var = x64.mean(axis=others, keepdims=True), x64.var(axis=others, keepdims=True)
        near = np.zeros(x.shape, bool)
        for z in ((x64 - mean) / np.sqrt(var + 1e-5), x64 / np.sqrt(1.0 + 1e-5)):
            near |= (np.abs((z * w64 + b64)[..., None] - kinks) < 0.01).any(axis=-1)
        if not near.any():
            return x
        x = np.where(near, x + 0.05, x).astype(x.dtype)
    raise AssertionError("could not move the data off the kinks")


def _refuse_composed(*args, **kwargs):
    raise AssertionError("composed: the CUDA kernels did not take the activation")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_large_channels_and_splits(rng, dtype):
    # many blocks per channel (the split reduction) and an offset mean
    x = (rng.standard_normal((64, 3, 48, 40)) + 100.0).astype(dtype)
    y, sm, si = _gpu_bn(cupy.asarray(x), None, None, None, None, True, return_stats=True)
    ry, rmean, rinv, _, _ = _ref_bn(x, None, None, None, None, True, 0.1, 1e-5, 1, None, 0)
    _close(sm.get(), rmean, dtype)
    _close(si.get(), rinv, dtype, scale=100.0 if dtype == np.float32 else 1.0)
    _close(y.get(), ry, dtype, scale=100.0 if dtype == np.float32 else 1.0)
    # channels last, many rows
    x = rng.standard_normal((70000, 24)).astype(dtype)
    y = _gpu_bn(cupy.asarray(x), None, None, None, None, True, axis=-1)
    _close(y.get(), _ref_bn(x, None, None, None, None, True, 0.1, 1e-5, -1, None, 0)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_layouts_and_out(rng, dtype):
    base = rng.standard_normal((6, 9, 10, 8)).astype(dtype)
    x = base.transpose(0, 3, 1, 2)  # NCHW view of channels-last data: (6, 8, 9, 10)
    ref = _ref_bn(x, None, None, None, None, True, 0.1, 1e-5, 1, "relu", 0)[0]
    xd = cupy.asarray(base).transpose(0, 3, 1, 2)
    big = cupy.full((6, 8, 9, 20), 5, dtype=dtype)
    out = big[..., ::2]
    r = _gpu_bn(xd, None, None, None, None, True, activation="relu", out=out)
    assert r is out
    _close(out.get(), ref, dtype, scale=4.0)
    assert (big[..., 1::2] == 5).all()
    # in place
    xd2 = cupy.ascontiguousarray(xd)
    r = _gpu_bn(xd2, None, None, None, None, True, activation="relu", out=xd2)
    assert r is xd2
    _close(xd2.get(), ref, dtype, scale=4.0)


def test_batch_norm_nan_stays_in_its_channel(rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    x[1, 1, 2] = np.nan
    y = _gpu_bn(cupy.asarray(x), None, None, None, None, True, activation="relu").get()
    assert np.isnan(y[:, 1]).all()
    assert not np.isnan(y[:, [0, 2]]).any()


def test_batch_norm_errors():
    x = cupy.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="required when training=False"):
        _gpu_bn(x)
    with pytest.raises(ValueError, match="more than 1 value"):
        _gpu_bn(cupy.zeros((1, 3), dtype=np.float32), training=True)
    with pytest.raises(TypeError, match="unsupported dtype"):
        _gpu_bn(x, cupy.zeros(3, dtype=np.float16), cupy.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="length C=3"):
        _gpu_bn(x, cupy.zeros(4, dtype=np.float32), cupy.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="activation"):
        _gpu_bn(x, None, None, training=True, activation="swish")
    with pytest.raises(ValueError, match="output"):
        _gpu_bn_backward(
            x,
            x,
            cupy.zeros(3, dtype=np.float32),
            cupy.ones(3, dtype=np.float32),
            activation="relu",
        )
    # through the public function the dispatcher refuses the mix; the backend on its
    # own (before the CPU BatchNorm lands) refuses the NumPy arrays
    with pytest.raises(TypeError, match="mix" if CPU_BN is not None else "cupy.ndarray"):
        _gpu_bn(x, np.zeros(3, dtype=np.float32), np.ones(3, dtype=np.float32))


@requires_torch_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(rng, dtype, training):
    F = torch.nn.functional
    x = rng.standard_normal((16, 32, 9, 11)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    pdt = np.float32 if dtype == np.float16 else dtype
    w = rng.standard_normal(32).astype(pdt)
    b = rng.standard_normal(32).astype(pdt)
    rm = rng.standard_normal(32).astype(pdt)
    rv = (rng.random(32) + 0.5).astype(pdt)
    xd, dyd = cupy.asarray(x), cupy.asarray(dy)
    rm_d, rv_d = cupy.asarray(rm), cupy.asarray(rv)
    y, sm, si = _gpu_bn(
        xd, rm_d, rv_d, cupy.asarray(w), cupy.asarray(b), training, return_stats=True
    )
    xt = torch.as_tensor(x, device="cuda").requires_grad_(True)
    wt = torch.as_tensor(w, device="cuda").requires_grad_(True)
    bt = torch.as_tensor(b, device="cuda").requires_grad_(True)
    rmt, rvt = torch.as_tensor(rm, device="cuda"), torch.as_tensor(rv, device="cuda")
    yt = F.batch_norm(xt, rmt, rvt, wt, bt, training, 0.1, 1e-5)
    yt.backward(torch.as_tensor(dy, device="cuda"))
    _close(y.get(), yt.detach().cpu().numpy().astype(np.float64), dtype, scale=4.0)
    _close(rm_d.get(), rmt.cpu().numpy().astype(np.float64), pdt)
    _close(rv_d.get(), rvt.cpu().numpy().astype(np.float64), pdt)
    gi, gw, gb = _gpu_bn_backward(dyd, xd, sm, si, cupy.asarray(w), training=training)
    scale = np.sqrt(x.size / 32)
    _close(gi.get(), xt.grad.cpu().numpy().astype(np.float64), dtype, scale=8.0)
    if dtype == np.float16 and not training:
        # torch's float16 inference backward differs by up to 3% in grad_weight and
        # grad_bias on an H200 (every channel off a little: it does not sum in float32
        # or better); these sums are checked against the float64 reference in
        # test_batch_norm_backward instead
        return
    _close(gw.get(), wt.grad.cpu().numpy().astype(np.float64), pdt, scale=scale * 4)
    _close(gb.get(), bt.grad.cpu().numpy().astype(np.float64), pdt, scale=scale * 4)


# ---- diagnostics ---------------------------------------------------------------------


def test_diagnostics_empty():
    with pytest.raises(ValueError, match="empty"):
        gpu.sparsity(cupy.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="no values"):
        gpu.dead_units(cupy.zeros((0, 3), dtype=np.float32), axis=1)
    assert gpu.sparsity(cupy.zeros((4, 0), dtype=np.float32), axis=1).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,axis", [((6, 5, 7), 1), ((40, 9), -1), ((3, 4, 8), 2), ((50, 8), 0)]
)
def test_dead_units_and_sparsity(rng, dtype, shape, axis):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::3] = 0.0
    ax = axis % x.ndim
    idx = [slice(None)] * x.ndim
    idx[ax] = 1
    x[tuple(idx)] = -np.abs(x[tuple(idx)])  # channel 1 dead (zeros included)
    idx[ax] = 2
    x[tuple(idx)] = -1.0
    one = [0] * x.ndim
    one[ax] = 2
    x[tuple(one)] = np.nan  # NaN is not <= 0: channel 2 alive
    red = tuple(d for d in range(x.ndim) if d != ax)
    xd = cupy.asarray(x)
    dead = gpu.dead_units(xd, axis=axis)
    assert dead.dtype == np.bool_
    np.testing.assert_array_equal(dead.get(), np.all(x <= 0, axis=red))
    for t in (0.5, 0.1, -0.3, np.inf, -np.inf):  # exact comparison, 0.1 not rounded up
        np.testing.assert_array_equal(
            gpu.dead_units(xd, axis=axis, threshold=t).get(),
            np.all(x.astype(np.float64) <= t, axis=red),
        )
    s = gpu.sparsity(xd)
    assert isinstance(s, float) and s == np.count_nonzero(x == 0) / x.size
    per = gpu.sparsity(xd, axis=axis).get()
    np.testing.assert_allclose(per, (x == 0).sum(axis=red) / (x.size // x.shape[ax]))
    with pytest.raises(ValueError, match="NaN"):
        gpu.dead_units(xd, axis=axis, threshold=float("nan"))
    with pytest.raises(TypeError, match="axis"):
        gpu.sparsity(xd, axis=1.0)
    with pytest.raises(ValueError, match="out of range"):
        gpu.dead_units(xd, axis=x.ndim)
    cpu_dead = getattr(cyrelu, "dead_units", None)
    if cpu_dead is not None:
        for t in (0.0, 0.1, -0.3):
            np.testing.assert_array_equal(
                cyrelu.dead_units(xd, axis=axis, threshold=t).get(),
                cpu_dead(x, axis=axis, threshold=t),
            )
        assert cyrelu.sparsity(xd) == cyrelu.sparsity(x)
        np.testing.assert_allclose(
            np.asarray(cyrelu.sparsity(xd, axis=axis).get()),
            np.asarray(cyrelu.sparsity(x, axis=axis)),
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_counts_with_many_splits(rng, dtype):
    # enough data for many blocks per channel (more splits than a warp has lanes)
    x = rng.standard_normal(400_003).astype(dtype)
    x[::7] = 0
    assert gpu.sparsity(cupy.asarray(x)) == np.count_nonzero(x == 0) / x.size
    x2 = x[:400_000].reshape(-1, 8)
    x2[:, 3] = -1.0
    np.testing.assert_array_equal(
        gpu.dead_units(cupy.asarray(x2), axis=1).get(), np.all(x2 <= 0, axis=0)
    )
    np.testing.assert_allclose(
        gpu.sparsity(cupy.asarray(x2), axis=-1).get(), (x2 == 0).mean(axis=0)
    )


# ---- float32 subnormals (CuPy compiles with -ftz=true), per-statistic updates ---------

EMULATED = getattr(cupy, "__version__", "").endswith("emulated")
requires_real_gpu = pytest.mark.skipif(EMULATED, reason="needs a real GPU (not the emulation)")


def test_float32_subnormals_are_kept():
    x = np.array([-1e-40, 1e-40, -1e-45, 1e-45, 0.0, -0.0, 1.0, -1.0], dtype=np.float32)
    xd = cupy.asarray(x)
    _same_bits(cyrelu.relu(xd).get(), cyrelu.relu(x))
    assert cyrelu.relu(xd).get()[0] == 0 and cyrelu.relu(xd).get()[1] == np.float32(1e-40)
    _same_bits(cyrelu.leaky_relu(xd, 0.5).get(), cyrelu.leaky_relu(x, 0.5))
    assert cyrelu.leaky_relu(xd, 0.5).get()[1] == np.float32(1e-40)
    # a subnormal product of two normal numbers
    tiny = np.array([1e-30, -1e-30], dtype=np.float32)
    _same_bits(cyrelu.leaky_relu(cupy.asarray(tiny), 1e-12).get(), cyrelu.leaky_relu(tiny, 1e-12))
    g = np.ones_like(x)
    _same_bits(cyrelu.relu_backward(cupy.asarray(g), xd).get(), cyrelu.relu_backward(g, x))
    assert cyrelu.relu_backward(cupy.asarray(g), xd).get()[1] == 1
    _same_bits(
        cyrelu.leaky_relu_backward(cupy.asarray(g), xd, 0.3).get(),
        cyrelu.leaky_relu_backward(g, x, 0.3),
    )
    assert cyrelu.sparsity(xd) == cyrelu.sparsity(x) == 2 / x.size
    x2 = x.reshape(2, 4)
    np.testing.assert_array_equal(
        cyrelu.sparsity(cupy.asarray(x2), axis=1).get(), cyrelu.sparsity(x2, axis=1)
    )
    d = np.array([[1e-40, -1e-40], [0.0, -1e-40]], dtype=np.float32)
    np.testing.assert_array_equal(
        cyrelu.dead_units(cupy.asarray(d), axis=1).get(), cyrelu.dead_units(d, axis=1)
    )
    np.testing.assert_array_equal(
        cyrelu.dead_units(cupy.asarray(d), axis=1, threshold=-1e-41).get(),
        cyrelu.dead_units(d, axis=1, threshold=-1e-41),
    )


@pytest.mark.parametrize("which", ["running_mean", "running_var"])
@pytest.mark.parametrize("rdtype", [np.float32, np.float64])
def test_batch_norm_one_running_stat(rng, which, rdtype):
    """Training with one running statistic updates that one (the CPU path's rule)."""
    x = rng.standard_normal((6, 3, 5)).astype(np.float32) * 2 + 1
    r = (np.zeros(3) if which == "running_mean" else np.ones(3)).astype(rdtype)
    kw = {which: r.copy()}
    kwd = {which: cupy.asarray(r)}
    y = cyrelu.batch_norm(x, training=True, momentum=0.25, **kw)
    yd = cyrelu.batch_norm(cupy.asarray(x), training=True, momentum=0.25, **kwd)
    _close(yd.get(), y, np.float32)
    assert not np.array_equal(kw[which], r)
    np.testing.assert_allclose(kwd[which].get(), kw[which], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((3, 4, 40), 1), ((300, 24), 1), ((2, 5, 8), -1)])
def test_batch_norm_bits_do_not_depend_on_alignment(rng, dtype, shape, axis):
    """The partition of the sums is the shape's: a misaligned copy of the same data (no
    16-byte loads) gives the same bits, and so does a second call."""
    x = _data(rng, shape, dtype, specials=False)
    buf = cupy.zeros(x.size + 1, dtype=dtype)
    mis = buf[1:].reshape(shape)
    mis[...] = cupy.asarray(x)
    a = cyrelu.batch_norm(cupy.asarray(x), training=True, axis=axis, return_stats=True)
    b = cyrelu.batch_norm(mis, training=True, axis=axis, return_stats=True)
    c = cyrelu.batch_norm(cupy.asarray(x), training=True, axis=axis, return_stats=True)
    for u, v, w in zip(a, b, c, strict=False):
        _same_bits(u.get(), v.get())
        _same_bits(u.get(), w.get())


def test_default_stream_and_non_blocking_stream(rng):
    x = _data(rng, (4, 6, 33), np.float32, specials=False)
    want = cyrelu.relu(x)
    wbn = cyrelu.batch_norm(x, training=True)
    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        xd = cupy.asarray(x)
        y = cyrelu.relu(xd)
        bn = cyrelu.batch_norm(xd, training=True)
        rm = cupy.zeros(6, dtype=np.float32)
        cyrelu.batch_norm(xd, rm, training=True)
        s.synchronize()
        _same_bits(y.get(), want)
        _close(bn.get(), wbn, np.float32)
        assert np.abs(rm.get()).max() > 0


@requires_real_gpu
def test_float16_relu_beyond_2_31_elements():
    n = 2**31 + 33
    try:
        x = cupy.full(n, -1.0, dtype=np.float16)
    except cupy.cuda.memory.OutOfMemoryError:
        pytest.skip("not enough GPU memory")
    x[-40:] = cupy.arange(40, dtype=np.float16) - 20
    x[:5] = 3.0
    y = cyrelu.relu(x, out=x)  # in place: one array of 4 GiB
    tail = y[-40:].get()
    np.testing.assert_array_equal(tail, np.maximum(np.arange(40, dtype=np.float16) - 20, 0))
    assert (y[:5].get() == 3).all()
    assert float(y[2**31 - 8 : 2**31 + 8].astype(np.float32).sum().get()) == 0.0
    del x, y
    cupy.get_default_memory_pool().free_all_blocks()


@requires_real_gpu
def test_second_process_does_not_recompile(tmp_path):
    """The kernels land in CuPy's disk cache: a second process compiles nothing."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy, cupy, cyrelu; x = cupy.ones((4, 3, 8), numpy.float32); "
        "cyrelu.relu(x); cyrelu.batch_norm(x, training=True); "
        "cupy.cuda.Device().synchronize()"
    )
    env = dict(os.environ, CUPY_CACHE_DIR=str(tmp_path / "cache"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])

    def run():  # from an empty directory: the source tree must not shadow the build
        subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, timeout=300, cwd=str(tmp_path)
        )
        return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())

    first = run()
    assert first, "CuPy wrote nothing to its kernel cache"
    assert run() == first, "the second process compiled again"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu"])
def test_batch_norm_channels_last_in_place(rng, dtype, activation):
    """NHWC data viewed as NCHW (axis=1) is read where it lies (the row kernels: channels
    fastest) and the results keep its layout; values as the CPU path's, and bitwise the
    same as the contiguous NHWC array with axis=-1 (the same kernels on the same memory)."""
    base = (rng.standard_normal((5, 6, 7, 8)) * 2 + 0.5).astype(dtype)
    dy = rng.standard_normal((5, 6, 7, 8)).astype(dtype)
    xd = cupy.asarray(base).transpose(0, 3, 1, 2)
    gd = cupy.asarray(dy).transpose(0, 3, 1, 2)
    y, sm, si = _gpu_bn(xd, None, None, None, None, True, activation=activation, return_stats=True)
    assert y.shape == xd.shape and y.strides == xd.strides
    y2, sm2, si2 = _gpu_bn(
        cupy.asarray(base),
        None,
        None,
        None,
        None,
        True,
        axis=-1,
        activation=activation,
        return_stats=True,
    )
    _same_bits(y.get(), y2.get().transpose(0, 3, 1, 2))
    _same_bits(sm.get(), sm2.get())
    ref = _ref_bn(
        np.ascontiguousarray(base.transpose(0, 3, 1, 2)),
        None,
        None,
        None,
        None,
        True,
        0.1,
        1e-5,
        1,
        activation,
        0.2,
    )
    _close(y.get(), ref[0], dtype, scale=4.0)
    _close(sm.get(), ref[1], dtype)
    gi, gw, gb = _gpu_bn_backward(
        gd,
        xd,
        sm,
        si,
        None,
        training=True,
        activation=activation,
        output=y if activation else None,
    )
    assert gi.strides == xd.strides
    gi2, gw2, gb2 = _gpu_bn_backward(
        cupy.asarray(dy),
        cupy.asarray(base),
        sm2,
        si2,
        None,
        training=True,
        axis=-1,
        activation=activation,
        output=y2 if activation else None,
    )
    _same_bits(gi.get(), gi2.get().transpose(0, 3, 1, 2))
    _same_bits(gw.get(), gw2.get())
    _same_bits(gb.get(), gb2.get())
    # grad_output in another layout: both go through C-contiguous copies, same values
    gi3, gw3, _ = _gpu_bn_backward(
        cupy.ascontiguousarray(gd),
        xd,
        sm,
        si,
        None,
        training=True,
        activation=activation,
        output=y if activation else None,
    )
    scale = np.sqrt(base.size / 8)
    _close(gi3.get(), gi.get().astype(np.float64), dtype, scale=8.0)
    _close(gw3.get(), gw.get().astype(np.float64), np.float32, scale=scale)
    # the counts read the same memory in place
    np.testing.assert_array_equal(
        gpu.sparsity(cyrelu.relu(xd), axis=1).get(), cyrelu.sparsity(cyrelu.relu(xd.get()), axis=1)
    )


# ---- the per-call fast path ------------------------------------------------------------
# A call with the array shapes, strides, dtypes, devices and alignments of an earlier one
# reuses that call's checks and launch plan; what such a call can still change (values
# of the real-valued arguments, overlaps between out and the inputs or between the
# running statistics) must give what the general path gives.


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_repeated_calls(rng, dtype, channels_last):
    shape = (6, 5, 4, 8)
    C = 5
    perm = (0, 3, 1, 2)
    for i, (training, momentum, eps, activation, alpha, with_out) in enumerate(
        [
            (True, 0.1, 1e-5, None, 0.2, False),
            (True, 0.3, 1e-3, None, 0.2, False),
            (True, 1.0, 2.0, None, 0.2, True),
            (True, 0.0, 1e-5, None, 0.2, True),
            (False, 0.1, 1e-5, "leaky_relu", 0.2, False),
            (False, 0.1, 0.5, "leaky_relu", -1.5, False),
        ]
    ):
        x = (rng.standard_normal(shape) * (i + 1) + i).astype(dtype)
        xd = cupy.asarray(x)
        if channels_last:  # NCHW view of channels-last data, read where it lies
            x = np.ascontiguousarray(x.transpose(perm)).transpose(0, 2, 3, 1)
            xd = cupy.ascontiguousarray(xd.transpose(perm)).transpose(0, 2, 3, 1)
        rm = rng.standard_normal(C).astype(np.float32)
        rv = (rng.random(C) + 0.5).astype(np.float32)
        w = rng.standard_normal(C).astype(np.float64)
        b = rng.standard_normal(C).astype(np.float64)
        rm_d, rv_d = cupy.asarray(rm), cupy.asarray(rv)
        out = cupy.empty_like(xd) if with_out else None
        y, sm, si = _gpu_bn(
            xd,
            rm_d,
            rv_d,
            cupy.asarray(w),
            cupy.asarray(b),
            training,
            momentum,
            eps,
            activation=activation,
            alpha=alpha,
            out=out,
            return_stats=True,
        )
        assert y is out if with_out else y.strides == xd.strides
        ry, rmean, rinv, nrm, nrv = _ref_bn(
            x, rm, rv, w, b, training, momentum, eps, 1, activation, alpha
        )
        _close(y.get(), ry, dtype, scale=8.0)
        _close(sm.get(), rmean, dtype)
        _close(si.get(), rinv, dtype)
        _close(rm_d.get(), nrm, np.float32)
        _close(rv_d.get(), nrv, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_backward_repeated_calls(rng, dtype):
    shape = (4, 6, 10)
    C = 6
    for training, activation, alpha, with_out in [
        (True, None, 0.2, False),
        (True, "leaky_relu", 0.5, True),
        (True, "leaky_relu", 3.0, True),
        (False, "relu", 0.2, False),
        (False, "relu", 0.2, True),
    ]:
        x = rng.standard_normal(shape).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal(C).astype(np.float32)
        xd = cupy.asarray(x)
        y, sm, si = _gpu_bn(
            xd,
            None,
            None,
            cupy.asarray(w),
            None,
            True,
            activation=activation,
            alpha=alpha,
            return_stats=True,
        )
        out = cupy.empty_like(xd) if with_out else None
        gi, gw, gb = _gpu_bn_backward(
            cupy.asarray(dy),
            xd,
            sm,
            si,
            cupy.asarray(w),
            training=training,
            activation=activation,
            alpha=alpha,
            output=y if activation else None,
            out=out,
        )
        assert gi is out if with_out else gi.shape == shape
        rgi, rgw, rgb = _ref_bn_backward(
            dy,
            x,
            sm.get().astype(np.float64),
            si.get().astype(np.float64),
            w,
            training,
            1,
            activation,
            alpha,
            y.get(),
        )
        _close(gi.get(), rgi, dtype, scale=8.0)
        _close(gw.get(), rgw, np.float32, scale=4.0)
        _close(gb.get(), rgb, np.float32, scale=4.0)


def test_batch_norm_repeated_calls_check_the_reals(rng):
    x = cupy.asarray(rng.standard_normal((4, 3, 8)).astype(np.float32))
    rm, rv = cupy.zeros(3, dtype=np.float32), cupy.ones(3, dtype=np.float32)
    y, sm, si = _gpu_bn(x, rm, rv, training=True, activation="leaky_relu", return_stats=True)
    for kw, err, match in [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"eps": float("nan")}, ValueError, "eps"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"momentum": True}, TypeError, "momentum"),
        ({"alpha": float("inf")}, ValueError, "alpha"),
        ({"alpha": "0.1"}, TypeError, "alpha"),
    ]:
        for _ in range(2):
            with pytest.raises(err, match=match):
                _gpu_bn(x, rm, rv, training=True, activation="leaky_relu", **kw)
    for _ in range(2):
        _gpu_bn_backward(x, x, sm, si, activation="leaky_relu", alpha=0.1, output=y)
        with pytest.raises(ValueError, match="alpha > 0"):
            _gpu_bn_backward(x, x, sm, si, activation="leaky_relu", alpha=-0.1, output=y)
        with pytest.raises(ValueError):
            _gpu_bn(x, rm, rv, training=True, num_threads=0)


def test_batch_norm_alpha_none_is_the_default(rng):
    """alpha=None is leaky_relu's 0.2, on the first call and on the repeated-call path."""
    x = cupy.asarray(rng.standard_normal((4, 3, 8)).astype(np.float32))
    for _ in range(2):
        y0, sm, si = _gpu_bn(x, training=True, activation="leaky_relu", return_stats=True)
        y1 = _gpu_bn(x, training=True, activation="leaky_relu", alpha=0.2)
        np.testing.assert_array_equal(y0.get(), y1.get())
        g0 = _gpu_bn_backward(x, x, sm, si, activation="leaky_relu", output=y0)
        g1 = _gpu_bn_backward(x, x, sm, si, activation="leaky_relu", alpha=0.2, output=y0)
        for a, b in zip(g0, g1, strict=True):
            np.testing.assert_array_equal(a.get(), b.get())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_repeated_calls_with_overlaps(rng, dtype):
    """The second call of each pair has the first's keys, but its out partly overlaps x
    (or its running statistics overlap): the result must be the general path's."""
    shape = (4, 3, 8)
    n = 4 * 3 * 8
    k = 16 // np.dtype(dtype).itemsize  # a shift keeping the 16-byte alignment
    x = rng.standard_normal(n + k).astype(dtype)
    for out_at in (None, k):  # a separate out, then out = x shifted by k elements
        buf = cupy.asarray(x)
        xd = buf[:n].reshape(shape)
        out = cupy.empty(shape, dtype) if out_at is None else buf[k : k + n].reshape(shape)
        ry = _ref_bn(x[:n].reshape(shape), None, None, None, None, True, 0.1, 1e-5, 1, None, 0)[0]
        _gpu_bn(xd, training=True, out=out)
        _close(out.get(), ry, dtype, scale=4.0)
    C = 8
    for shift in (C, 4):  # disjoint running statistics, then overlapping ones
        xr = rng.standard_normal((5, C, 3)).astype(np.float32)
        stats = (rng.random(2 * C) + 0.5).astype(np.float32)
        buf = cupy.asarray(stats)
        rm, rv = buf[:C], buf[shift : shift + C]
        _, _, _, nrm, nrv = _ref_bn(
            xr, stats[:C], stats[shift : shift + C], None, None, True, 0.1, 1e-5, 1, None, 0
        )
        _gpu_bn(cupy.asarray(xr), rm, rv, training=True)
        want = stats.astype(np.float64)
        want[:C] = nrm
        want[shift : shift + C] = nrv  # the running variance is written last
        _close(buf.get(), want, np.float32)
    # backward: out partly overlapping grad_output
    g = rng.standard_normal(n + k).astype(dtype)
    xs = rng.standard_normal(shape).astype(dtype)
    xd = cupy.asarray(xs)
    _, sm, si = _gpu_bn(xd, training=True, return_stats=True)
    for out_at in (None, k):
        buf = cupy.asarray(g)
        gd = buf[:n].reshape(shape)
        out = cupy.empty(shape, dtype) if out_at is None else buf[k : k + n].reshape(shape)
        rgi = _ref_bn_backward(
            g[:n].reshape(shape),
            xs,
            sm.get().astype(np.float64),
            si.get().astype(np.float64),
            None,
            True,
            1,
            None,
            0,
            None,
        )[0]
        _gpu_bn_backward(gd, xd, sm, si, out=out)
        _close(out.get(), rgi, dtype, scale=8.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_repeated_calls_with_overlaps(rng, dtype):
    n = 1000
    k = 16 // np.dtype(dtype).itemsize
    x = _data(rng, (n + k,), dtype)
    g = _data(rng, (n + k,), dtype)
    for out_at in (None, k):  # a separate aligned out, then x shifted by k elements
        buf = cupy.asarray(x)
        out = cupy.empty(n, dtype) if out_at is None else buf[k : k + n]
        cyrelu.leaky_relu(buf[:n], 0.25, out=out)
        _same_bits(out.get(), cyrelu.leaky_relu(x[:n], 0.25))
        gbuf = cupy.asarray(g)
        xd = cupy.asarray(x[:n])
        out = cupy.empty(n, dtype) if out_at is None else gbuf[k : k + n]
        cyrelu.relu_backward(gbuf[:n], xd, out=out)
        _same_bits(out.get(), cyrelu.relu_backward(g[:n], x[:n]))
    for alpha in (0.5, -2.0, 0.0):  # repeated calls with new arrays and new values
        xd = cupy.asarray(x)
        _same_bits(cyrelu.leaky_relu(xd, alpha).get(), cyrelu.leaky_relu(x, alpha))
        _same_bits(
            cyrelu.leaky_relu_backward(cupy.asarray(g), xd, alpha).get(),
            cyrelu.leaky_relu_backward(g, x, alpha),
        )


# ---- index types -----------------------------------------------------------------------
# The elementwise kernels, the reductions and BatchNorm's apply pass come in a 32-bit and
# a 64-bit index type; the host takes the 32-bit one when every index a launch computes
# fits (cyrelu.cuda._launch.index_type).  Lowering the private INDEX32_LIMIT to 0 makes
# every launch planned afterwards use the 64-bit kernels, so both run on small arrays.


def _clear_plans():
    from cyrelu.cuda import activations as gact, batchnorm as gbn

    for cache in (gact._PLANS, gact._FAST, gbn._plans, gbn._fast_forward, gbn._fast_backward):
        cache.clear()


def _kernels_used(monkeypatch, call):
    """(call's result, the kernel expressions its launch plans asked for)."""
    from cyrelu.cuda import _loader

    seen = []
    real = _loader.function

    def record(name, expr):
        seen.append(expr)
        return real(name, expr)

    _clear_plans()
    with monkeypatch.context() as m:
        m.setattr(_loader, "function", record)
        result = call()
    _clear_plans()
    return result, seen


def test_index_type_rule():
    from cyrelu.cuda import _launch

    t = 1056 * 256  # an H100's resident threads
    assert _launch.index_type(2**31 - 4 * t - 1, t) == ("int", np.int32)
    assert _launch.index_type(2**31 - 4 * t, t) == ("long long", np.int64)
    assert _launch.index_type(3 * 2**31, 256)[0] == "long long"


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_types_agree(rng, dtype, monkeypatch):
    """Each case once with the 32-bit kernels (what these sizes get) and once with the
    64-bit ones: the same bits, and the CPU path's (activations) or the float64
    reference's (BatchNorm) values; every layout and unit of the apply pass (NCS and NC,
    16-byte packs and single elements), flat and strided (negative strides)."""
    from cyrelu.cuda import _launch

    x = _data(rng, (6, 8, 5, 8), dtype, specials=False)
    g = _data(rng, (6, 8, 5, 8), dtype, specials=False)
    xo = _data(rng, (5, 7, 5, 7), dtype, specials=False)  # S = 35: no 16-byte packs
    x2 = _data(rng, (40, 24), dtype, specials=False)  # NC, C a multiple of the pack
    buf = cupy.zeros(40 * 24 + 1, dtype=dtype)
    x2_mis = buf[1:].reshape(40, 24)  # NC, misaligned: single elements
    x2_mis[...] = cupy.asarray(x2)
    xd, gd, xod, x2d = (cupy.asarray(a) for a in (x, g, xo, x2))
    rm = cupy.asarray(rng.standard_normal(24).astype(np.float32))
    rv = cupy.asarray((rng.random(24) + 0.5).astype(np.float32))
    _, sm, si = _gpu_bn(xd, training=True, return_stats=True)
    cases = {
        "relu flat": (lambda: cyrelu.relu(xd), lambda: cyrelu.relu(x)),
        "leaky_relu_backward strided": (
            lambda: cyrelu.leaky_relu_backward(gd[:, ::-2], xd[:, ::-2], 0.1),
            lambda: cyrelu.leaky_relu_backward(g[:, ::-2], x[:, ::-2], 0.1),
        ),
        "batch_norm NCS packs": (
            lambda: _gpu_bn(xd, training=True, activation="relu", return_stats=True),
            lambda: _ref_bn(x, None, None, None, None, True, 0.1, 1e-5, 1, "relu", 0)[:3],
        ),
        "batch_norm NCS elements": (
            lambda: _gpu_bn(xod, training=True, return_stats=True),
            lambda: _ref_bn(xo, None, None, None, None, True, 0.1, 1e-5, 1, None, 0)[:3],
        ),
        "batch_norm NC packs": (
            lambda: _gpu_bn(x2d, rm, rv, axis=-1),
            lambda: _ref_bn(x2, rm.get(), rv.get(), None, None, False, 0.1, 1e-5, -1, None, 0)[0],
        ),
        "batch_norm NC elements": (
            lambda: _gpu_bn(x2_mis, training=True, axis=-1, activation="leaky_relu"),
            lambda: _ref_bn(x2, None, None, None, None, True, 0.1, 1e-5, -1, "leaky_relu", 0.2)[0],
        ),
        "batch_norm_backward": (
            lambda: _gpu_bn_backward(gd, xd, sm, si),
            lambda: _ref_bn_backward(
                g,
                x,
                sm.get().astype(np.float64),
                si.get().astype(np.float64),
                None,
                True,
                1,
                None,
                0,
                None,
            ),
        ),
    }
    default = _launch.INDEX32_LIMIT
    for name, (call, want) in cases.items():
        got = {}
        for limit, index in ((default, "int"), (0, "long long")):
            monkeypatch.setattr(_launch, "INDEX32_LIMIT", limit)
            res, seen = _kernels_used(monkeypatch, call)
            indexed = [e for e in seen if not e.startswith("eval_coef")]
            assert indexed and all(e.endswith(", %s>" % index) for e in indexed), (name, seen)
            got[index] = [r.get() for r in (res if isinstance(res, tuple) else (res,))]
        for a, b in zip(got["int"], got["long long"], strict=False):
            _same_bits(a, b)
        ref = want()
        ref = ref if isinstance(ref, tuple) else (ref,)
        for a, r in zip(got["int"], ref, strict=False):
            if name.startswith(("relu", "leaky")):
                _same_bits(a, r)
            else:
                _close(a, np.asarray(r, dtype=np.float64), dtype, scale=8.0)


# ---- prelu (cyrelu/cuda/prelu.cu) -------------------------------------------------------

PRELU_CASES = [  # (shape, axis, weights)
    ((4, 6, 5, 7), 1, 6),
    ((300, 24), -1, 24),
    ((3, 5, 40), 1, 1),
    ((2, 3, 20_000), 1, 3),  # pieces of the grad_weight sums
    ((37,), 1, 1),
    ((), 1, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis,nw", PRELU_CASES)
def test_prelu_matches_cpu(rng, dtype, shape, axis, nw):
    """The forward and grad_input bit for bit the CPU path's; grad_weight to rounding
    (float64 sums, added in another order) and the same on every call."""
    x = _data(rng, shape, dtype)
    g = _data(rng, shape, dtype, specials=False)
    w = rng.standard_normal(nw).astype(dtype)
    xd, gd, wd = cupy.asarray(x), cupy.asarray(g), cupy.asarray(w)
    _same_bits(cyrelu.prelu(xd, wd, axis=axis).get(), cyrelu.prelu(x, w, axis=axis))
    gi, gw = cyrelu.prelu_backward(gd, xd, wd, axis=axis)
    want_gi, want_gw = cyrelu.prelu_backward(g, x, w, axis=axis)
    _same_bits(gi.get(), want_gi)
    assert gw.dtype == w.dtype and gw.shape == w.shape
    tol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(gw.get().astype(np.float64), want_gw.astype(np.float64), rtol=tol)
    again = cyrelu.prelu_backward(gd, xd, wd, axis=axis)[1]
    _same_bits(again.get(), gw.get())


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_layouts_out_and_in_place(rng, dtype):
    x = _data(rng, (6, 5, 8), dtype)
    g = _data(rng, (6, 5, 8), dtype, specials=False)
    w = rng.standard_normal(5).astype(dtype)
    xd, gd, wd = cupy.asarray(x), cupy.asarray(g), cupy.asarray(w)
    want = cyrelu.prelu(x, w)
    want_gi = cyrelu.prelu_backward(g, x, w)[0]
    _same_bits(cyrelu.prelu(cupy.asfortranarray(xd), wd).get(), want)
    _same_bits(cyrelu.prelu(xd[:, :, ::-2], wd).get(), want[:, :, ::-2])
    out = cupy.zeros((6, 5, 16), dtype=dtype)[:, :, ::2]
    assert cyrelu.prelu(xd, wd, out=out) is out
    _same_bits(out.get(), want)
    y = xd.copy()
    cyrelu.prelu(y, wd, out=y)
    _same_bits(y.get(), want)
    g2 = gd.copy()
    gi, _ = cyrelu.prelu_backward(g2, xd, wd, out=g2)
    assert gi is g2
    _same_bits(g2.get(), want_gi)
    z = cupy.zeros(x.size + 3, dtype=dtype)
    z[:-3] = xd.ravel()
    cyrelu.prelu(z[:-3].reshape(x.shape), wd, out=z[3:].reshape(x.shape))
    _same_bits(z[3:].get(), want.ravel())


def test_prelu_errors_match_cpu():
    xd = cupy.ones((4, 3, 2), dtype=np.float32)
    wd = cupy.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="dtype float64, but x has dtype float32"):
        cyrelu.prelu(xd, wd.astype(np.float64))
    with pytest.raises(ValueError, match="2 values, but x has 3 channels"):
        cyrelu.prelu(xd, wd[:2])
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        cyrelu.prelu(xd, wd, axis=3)
    with pytest.raises(TypeError, match="cannot mix"):
        cyrelu.prelu(xd, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="same shape"):
        cyrelu.prelu_backward(xd[:1], xd, wd)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.prelu(xd, wd, num_threads=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_index_types_agree(rng, dtype, monkeypatch):
    """The 32-bit kernels (what these sizes get) and the 64-bit ones: the same bits."""
    from cyrelu.cuda import _launch

    x = _data(rng, (6, 8, 5), dtype)
    g = _data(rng, (6, 8, 5), dtype, specials=False)
    w = rng.standard_normal(8).astype(dtype)
    xd, gd, wd = cupy.asarray(x), cupy.asarray(g), cupy.asarray(w)
    got = []
    for limit in (_launch.INDEX32_LIMIT, 0):
        monkeypatch.setattr(_launch, "INDEX32_LIMIT", limit)
        res = (cyrelu.prelu(xd, wd), *cyrelu.prelu_backward(gd, xd, wd))
        got.append([r.get() for r in res])
    for a, b in zip(*got, strict=True):
        _same_bits(a, b)
