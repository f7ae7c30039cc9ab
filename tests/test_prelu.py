"""prelu / prelu_backward: torch bit for bit (forward and grad_input: every float16
pattern, random float32 patterns, float64; grad_weight within rounding of torch), a float64
NumPy reference, the weight and axis rules, layouts, out= and in place, thread counts,
the streaming-store path, and the layer nn.PReLU."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cyrelu

torch = pytest.importorskip("torch") if os.environ.get("CYRELU_REQUIRE_TORCH") else None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

SPECIAL = [-0.0, 0.0, np.nan, -1.0, 1.0, -2.5, 2.5, np.inf, -np.inf, 1e-45, -1e-45, 3e38]
DTYPES = [np.float16, np.float32, np.float64]


# ---- the float64 reference, written from the semantics ----------------------------------


def _channel_weight(w, shape, axis):
    """The weight broadcast to the data's shape (one value, or one per channel)."""
    w = np.asarray(w, np.float64).reshape(-1)
    if w.size == 1:
        return np.full(shape, w[0])
    view = [1] * len(shape)
    view[axis] = w.size
    return np.broadcast_to(w.reshape(view), shape)


def ref(x, w, axis=1):
    """x where x > 0, else w[c] * x: each product exact in float64 (the factors have at
    most 24 significant bits), rounded once to x's dtype."""
    x64 = np.asarray(x, np.float64)
    wb = _channel_weight(w, x64.shape, axis)
    with np.errstate(invalid="ignore"):  # inf * 0
        return np.where(x64 > 0, x64, wb * x64).astype(np.asarray(x).dtype)


def ref_backward(g, x, w, axis=1):
    """(grad_input, grad_weight in float64)."""
    x64 = np.asarray(x, np.float64)
    g64 = np.asarray(g, np.float64)
    wb = _channel_weight(w, x64.shape, axis)
    with np.errstate(invalid="ignore"):  # inf * 0, inf - inf
        gi = np.where(x64 > 0, g64, wb * g64).astype(np.asarray(x).dtype)
        terms = np.where(x64 > 0, 0.0, x64 * g64)
        if np.asarray(w).size == 1:
            gw = np.full(np.shape(w), terms.sum())
        else:
            gw = np.moveaxis(terms, axis, 0).reshape(np.asarray(w).size, -1).sum(axis=1)
    return gi, gw


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.dtype("u%d" % a.itemsize))


def _torch_prelu(x, g, w, axis=1):
    """torch's prelu forward and autograd backward, with the channel axis moved to 1."""
    nd = np.ndim(x)
    move = (lambda a: np.moveaxis(a, axis, 1)) if nd >= 2 else (lambda a: a)
    back = (lambda a: np.moveaxis(a, 1, axis)) if nd >= 2 else (lambda a: a)
    xt = torch.from_numpy(np.ascontiguousarray(move(x))).requires_grad_()
    wt = torch.from_numpy(np.array(w)).requires_grad_()
    yt = torch.nn.functional.prelu(xt, wt)
    yt.backward(torch.from_numpy(np.ascontiguousarray(move(g))))
    return back(yt.detach().numpy()), back(xt.grad.numpy()), wt.grad.numpy()


# ---- against torch ----------------------------------------------------------------------


@requires_torch
def test_torch_all_float16_patterns():
    x = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(256, 4, 64)
    g = np.linspace(-3, 3, x.size).astype(np.float16).reshape(x.shape)
    for w in (np.array([0.25, -1.5, 3.0, -0.0], np.float16), np.array([0.1], np.float16)):
        y, gi, _ = _torch_prelu(x, g, w)
        np.testing.assert_array_equal(bits(cyrelu.prelu(x, w)), bits(y))
        np.testing.assert_array_equal(bits(cyrelu.prelu_backward(g, x, w)[0]), bits(gi))


@requires_torch
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_torch_float32_patterns(axis):
    rng = np.random.default_rng(0)
    u = rng.integers(0, 2**32, 299_940, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([u, np.array(SPECIAL * 4 + [0.0] * 12, np.float32)])
    x = x.reshape(50, 40, -1) if axis != -1 else x.reshape(-1, 40)
    C = x.shape[axis]
    g = rng.standard_normal(x.shape).astype(np.float32)
    w = np.concatenate([[0.25, -0.0, 2.0, -np.inf, np.inf], rng.standard_normal(C - 5)])
    w = w.astype(np.float32)
    y, gi, gw = _torch_prelu(x, g, w, axis % x.ndim)
    np.testing.assert_array_equal(bits(cyrelu.prelu(x, w, axis=axis)), bits(y))
    got_gi, got_gw = cyrelu.prelu_backward(g, x, w, axis=axis)
    np.testing.assert_array_equal(bits(got_gi), bits(gi))
    finite = np.isfinite(gw)
    np.testing.assert_allclose(got_gw[finite], gw[finite], rtol=1e-4)
    np.testing.assert_array_equal(np.isfinite(got_gw), finite)


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,axis,nw",
    [((), 1, 1), ((7,), 1, 1), ((5, 3), 1, 3), ((4, 6, 5), 1, 1), ((2, 3, 4, 5), 1, 3),
     ((2, 3, 4, 5), 3, 5), ((200, 16, 33), -2, 16)],
)  # fmt: skip
def test_torch_shapes(dtype, shape, axis, nw):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    x.reshape(-1)[::5] = 0
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(nw).astype(dtype)
    ax = axis % max(len(shape), 1) if len(shape) >= 2 else 1
    y, gi, gw = _torch_prelu(x, g, w, ax)
    np.testing.assert_array_equal(bits(cyrelu.prelu(x, w, axis=axis)), bits(y))
    got_gi, got_gw = cyrelu.prelu_backward(g, x, w, axis=axis)
    np.testing.assert_array_equal(bits(got_gi), bits(gi))
    assert got_gw.shape == w.shape and got_gw.dtype == np.dtype(dtype)
    tol = {np.float16: 2e-2, np.float32: 1e-4, np.float64: 1e-10}[dtype]
    np.testing.assert_allclose(got_gw.astype(np.float64), gw, rtol=tol, atol=tol)


# ---- the float64 reference ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_special_values(dtype):
    with np.errstate(over="ignore"):  # 3e38 is inf in float16
        x = np.array(SPECIAL * 4, dtype).reshape(4, 3, 4)
    g = np.linspace(-3, 3, x.size).astype(dtype).reshape(x.shape)
    w = np.array([0.25, -2.0, 0.0], dtype)
    np.testing.assert_array_equal(bits(cyrelu.prelu(x, w)), bits(ref(x, w)))
    gi, gw = cyrelu.prelu_backward(g, x, w)
    want_gi, want_gw = ref_backward(g, x, w)
    np.testing.assert_array_equal(bits(gi), bits(want_gi))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(gw, want_gw.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,axis,nw",
    [((64, 3, 129), 1, 3), ((3000, 7), -1, 7), ((3000, 7), 1, 1), ((5, 2, 40_000), 1, 2),
     ((1, 1, 200_001), 2, 1), ((30, 70_000), 0, 30), ((900, 2, 3), 2, 3), ((2, 150_000), 0, 1),
     ((7000, 21), -1, 21), ((400, 5, 37), 1, 5)],
)  # fmt: skip
def test_reference_and_threads(dtype, shape, axis, nw):
    """Runs cut at any point (thread chunks, tiles), channels last, a single weight, pieces
    of the grad_weight sums: the reference's values and the same bits for any thread count."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(nw).astype(dtype)
    want_gi, want_gw = ref_backward(g, x, w, axis)
    y1 = cyrelu.prelu(x, w, axis=axis, num_threads=1)
    np.testing.assert_array_equal(bits(y1), bits(ref(x, w, axis)))
    gi1, gw1 = cyrelu.prelu_backward(g, x, w, axis=axis, num_threads=1)
    np.testing.assert_array_equal(bits(gi1), bits(want_gi))
    tol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(gw1.astype(np.float64), want_gw, rtol=tol, atol=tol * x.size)
    for nt in (2, 3, 8):
        np.testing.assert_array_equal(
            bits(cyrelu.prelu(x, w, axis=axis, num_threads=nt)), bits(y1)
        )
        gi, gw = cyrelu.prelu_backward(g, x, w, axis=axis, num_threads=nt)
        np.testing.assert_array_equal(bits(gi), bits(gi1))
        np.testing.assert_array_equal(bits(gw), bits(gw1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((300, 29), -1), ((30, 3, 77), 1)])
def test_reference_special_values_in_vectors(dtype, shape, axis):
    """The special values at every place of the grad_weight sums' vector loops (channels
    last: 29 channels, vectors and a remainder; runs of 77: lanes, tiles and a tail):
    grad_input bit for bit, grad_weight NaN, infinite or finite where the reference is,
    and within rounding of it where finite."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape)
    pick = rng.random(shape) < 0.05
    x[pick] = rng.choice(SPECIAL, int(pick.sum()))
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[axis]).astype(dtype)
    want_gi, want_gw = ref_backward(g, x, w, axis)
    gi, gw = cyrelu.prelu_backward(g, x, w, axis=axis)
    np.testing.assert_array_equal(bits(gi), bits(want_gi))
    gw = gw.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(want_gw))
    np.testing.assert_array_equal(np.isinf(gw), np.isinf(want_gw))
    finite = np.isfinite(want_gw) & (np.abs(want_gw) < 1e30)
    tol = {np.float16: 1e-2, np.float32: 1e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(gw[finite], want_gw[finite], rtol=tol, atol=tol * x.size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_weight(dtype):
    """A NaN weight gives NaN wherever it is used (which NaN, where x is NaN too, differs
    between torch's own kernels: its float32 code returns either operand's payload)."""
    x = np.array([[-1.0, 0.0, 2.0, np.nan, -np.inf, np.inf]], dtype)
    w = np.array([np.nan], dtype)
    y = cyrelu.prelu(x, w)
    np.testing.assert_array_equal(np.isnan(y), [[True, True, False, True, True, False]])
    np.testing.assert_array_equal(y[0, [2, 5]], x[0, [2, 5]])
    gi, gw = cyrelu.prelu_backward(np.ones_like(x), x, w)
    np.testing.assert_array_equal(np.isnan(gi), np.isnan(y))
    assert np.isnan(gw).all()


def test_grad_weight_is_summed_in_double():
    """Terms that cancel in float32 order: only a wider accumulator gets the exact sum."""
    x = np.full((2, 1, 100_001), -1.0, np.float32)
    g = np.ones_like(x)
    g[0, 0, 0] = 2.0**25
    g[1, 0, 0] = -(2.0**25)
    _, gw = cyrelu.prelu_backward(g, x, np.array([0.5], np.float32))
    assert gw[0] == -(2 * 100_000)


_ISA_CODE = """
import hashlib, numpy as np, cyrelu
rng = np.random.default_rng(7)
parts = []
for dt in (np.float16, np.float32, np.float64):
    for shape, axis, nw in (((100003,), 1, 1), ((5000, 7), -1, 7), ((3, 2, 20001), 1, 2),
                            ((3000, 29), -1, 29), ((300, 3, 77), 1, 3)):
        x = rng.standard_normal(shape).astype(dt)
        g = rng.standard_normal(shape).astype(dt)
        w = rng.standard_normal(nw).astype(dt)
        gi, gw = cyrelu.prelu_backward(g, x, w, axis=axis)
        parts += [cyrelu.prelu(x, w, axis=axis).tobytes(), gi.tobytes(), gw.tobytes()]
print(hashlib.sha256(b"".join(parts)).hexdigest())
"""


@pytest.mark.kernel_choice
@pytest.mark.sweeps_itself
def test_every_instruction_set_copy_gives_the_same_bits():
    """CYRELU_ISA caps the kernels' instruction set: every copy gives the same bits,
    grad_weight's sums included (on CPUs without a level, the cap falls back)."""
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    digests = set()
    for isa in ("base", "avx2", "avx512"):
        env = dict(os.environ, CYRELU_ISA=isa)
        res = subprocess.run(
            [sys.executable, "-c", _ISA_CODE], capture_output=True, text=True, env=env,
            cwd=parent, check=True,
        )  # fmt: skip
        digests.add(res.stdout.strip())
    assert len(digests) == 1, digests


# ---- layouts, out=, in place ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_out_inplace(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5, 40)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(5).astype(dtype)
    want = ref(x, w)
    want_gi, want_gw = ref_backward(g, x, w)
    gw_c = cyrelu.prelu_backward(g, x, w)[1]
    # Fortran order, transposed views, reversed strides
    xf, gf = np.asfortranarray(x), np.asfortranarray(g)
    np.testing.assert_array_equal(cyrelu.prelu(xf, w), want)
    gi, gw = cyrelu.prelu_backward(gf, xf, w)
    np.testing.assert_array_equal(gi, want_gi)
    np.testing.assert_allclose(gw.astype(np.float64), want_gw, rtol=2e-3)
    np.testing.assert_array_equal(cyrelu.prelu(x.T, w, axis=1), want.T)
    np.testing.assert_array_equal(cyrelu.prelu(x[::-1, :, ::3], w), want[::-1, :, ::3])
    np.testing.assert_array_equal(cyrelu.prelu_backward(g[:, :, ::2], x[:, :, ::2], w)[0],
                                  want_gi[:, :, ::2])  # fmt: skip
    # out=, also strided and unaligned
    out = np.empty_like(x)
    assert cyrelu.prelu(x, w, out=out) is out
    np.testing.assert_array_equal(out, want)
    big = np.empty((6, 5, 80), dtype)
    cyrelu.prelu(x, w, out=big[:, :, ::2])
    np.testing.assert_array_equal(big[:, :, ::2], want)
    raw = np.empty(x.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(dtype).reshape(x.shape)
    cyrelu.prelu(x, w, out=unaligned)
    np.testing.assert_array_equal(unaligned, want)
    # in place, and grad_input over grad_output or over x (grad_weight from the inputs)
    y = x.copy()
    assert cyrelu.prelu(y, w, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, want)
    for target in ("g", "x"):
        g2, x2 = g.copy(), x.copy()
        gi, gw = cyrelu.prelu_backward(g2, x2, w, out=g2 if target == "g" else x2)
        assert gi is (g2 if target == "g" else x2)
        np.testing.assert_array_equal(gi, want_gi)
        np.testing.assert_array_equal(bits(gw), bits(gw_c))
    # partial overlap of out with x
    z = np.concatenate([x.ravel(), x.ravel()[:7]])
    cyrelu.prelu(z[:-7].reshape(x.shape), w, out=z[7:].reshape(x.shape))
    np.testing.assert_array_equal(z[7:], want.ravel())


def test_weight_layouts_and_lists():
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    w = np.array([0.5, 9.0, -1.0, 2.0, 0.25, 7.0])[::2]  # strided weight
    np.testing.assert_array_equal(cyrelu.prelu(x, w), ref(x, w))
    np.testing.assert_array_equal(cyrelu.prelu(x, [0.5, -1.0, 0.25]), ref(x, w))
    np.testing.assert_array_equal(cyrelu.prelu(x, np.float64(0.5)), ref(x, [0.5]))
    assert cyrelu.prelu_backward(x, x, np.float64(0.5))[1].shape == ()


def test_weight_sharing_memory_with_out():
    buf = np.array([-1.0, -2.0, 3.0, 0.5])
    w = buf[3:]
    cyrelu.prelu(buf, w, out=buf)
    np.testing.assert_array_equal(buf, [-0.5, -1.0, 3.0, 0.5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_outputs_stream(dtype):
    """Outputs large enough for streaming stores (the planner's size, per thread)."""
    stream_min = cyrelu._parallel.cache_info()["stream_min_bytes"]
    n = max(2_000_003, 2 * stream_min // np.dtype(dtype).itemsize + 17)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    for shape, axis, nw in (((n,), 1, 1), ((1, n), 0, 1), ((n // 7, 7), 1, 7)):
        xs, gs = x[: int(np.prod(shape))].reshape(shape), g[: int(np.prod(shape))].reshape(shape)
        w = rng.standard_normal(nw).astype(dtype)
        for nt in (1, 2):
            np.testing.assert_array_equal(
                bits(cyrelu.prelu(xs, w, axis=axis, num_threads=nt)), bits(ref(xs, w, axis))
            )
            gi = cyrelu.prelu_backward(gs, xs, w, axis=axis, num_threads=nt)[0]
            np.testing.assert_array_equal(bits(gi), bits(ref_backward(gs, xs, w, axis)[0]))


def test_empty():
    x = np.empty((0, 3, 2), np.float32)
    w = np.ones(3, np.float32)
    assert cyrelu.prelu(x, w).shape == (0, 3, 2)
    gi, gw = cyrelu.prelu_backward(x, x, w)
    assert gi.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros(3, np.float32))
    gi, gw = cyrelu.prelu_backward(np.empty((2, 0)), np.empty((2, 0)), np.empty(0))
    assert gw.shape == (0,)


# ---- argument rules (torch's), nothing modified -------------------------------------------


def test_argument_errors_modify_nothing():
    x = np.linspace(-2, 2, 24).reshape(2, 3, 4).astype(np.float32)
    w = np.ones(3, np.float32)
    out = np.full_like(x, 7.0)
    cases = [
        (TypeError, "dtype float64, but x has dtype float32", (x, w.astype(np.float64)), {}),
        (TypeError, "unsupported dtype int64", (x, np.ones(3, np.int64)), {}),
        (ValueError, "weight has 2 values, but x has 3 channels along axis 1", (x, w[:2]), {}),
        (ValueError, "3 values, but x has 4 channels along axis 2", (x, w), {"axis": -1}),
        (ValueError, "weight must be 1-D", (x, w.reshape(1, 3)), {}),
        (ValueError, "axis 3 is out of range", (x, w), {"axis": 3}),
        (TypeError, "axis must be an int", (x, w), {"axis": 1.0}),
        (TypeError, "axis must be an int", (x, w), {"axis": True}),
        (ValueError, "a 0-d x has a single channel", (np.float32(1.0), w), {}),
        (ValueError, "a 1-d x has a single channel", (x[0, 0], w), {}),
        (TypeError, "axis must be an int", (x[0, 0], w[:1]), {"axis": "1"}),
        (TypeError, "unsupported dtype int64", (np.arange(3), np.ones(1)), {}),
    ]  # fmt: skip
    for exc, msg, args, kw in cases:
        with pytest.raises(exc, match=msg):
            cyrelu.prelu(*args, out=out if np.shape(args[0]) == x.shape else None, **kw)
        with pytest.raises(exc, match=msg):
            cyrelu.prelu_backward(args[0], *args, **kw)
    with pytest.raises(ValueError, match="same shape"):
        cyrelu.prelu_backward(x[:1], x, w, out=out)
    with pytest.raises(TypeError, match="same dtype"):
        cyrelu.prelu_backward(x.astype(np.float64), x, w, out=out)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        cyrelu.prelu(x, w, out=ro)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.prelu(x, w, out=out, num_threads=0)
    assert (out == 7.0).all()
    # what torch accepts: one weight for a 0-d or 1-D x, whatever its axis
    np.testing.assert_array_equal(cyrelu.prelu(x[0, 0], w[:1], axis=5), ref(x[0, 0], [1.0]))
    assert cyrelu.prelu(np.float32(-2.0), np.float32([0.5])) == -1.0


# ---- the layer --------------------------------------------------------------------------------


@requires_torch
def test_layer_against_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 4, 5)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    layer = cyrelu.nn.PReLU(4, init=0.1)
    layer.weight[:] = [0.1, -0.5, 2.0, 0.0]
    tl = torch.nn.PReLU(4, init=0.1)
    with torch.no_grad():
        tl.weight[:] = torch.from_numpy(layer.weight)
    xt = torch.from_numpy(x).requires_grad_()
    yt = tl(xt)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(layer(x), yt.detach().numpy())
    np.testing.assert_array_equal(layer.backward(g), xt.grad.numpy())
    np.testing.assert_allclose(layer.grad_weight, tl.weight.grad.numpy(), rtol=1e-5)


def test_layer():
    layer = cyrelu.nn.PReLU()
    assert repr(layer) == "PReLU(num_parameters=1, axis=1, init=0.25)"
    assert layer.weight.dtype == np.float32 and layer.weight.tolist() == [0.25]
    x = np.array([[-4.0, 0.0, 2.0]], np.float32)
    np.testing.assert_array_equal(layer.forward(x), [[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[0.25, 0.25, 1.0]])
    np.testing.assert_array_equal(layer.grad_weight, [-4.0])  # overwritten by each backward
    layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(layer.grad_weight, [-4.0])
    cl = cyrelu.nn.PReLU(3, axis=-1, init=0.5, dtype=np.float64)
    np.testing.assert_array_equal(cl(np.array([[-2.0, -4.0, 1.0]])), [[-1.0, -2.0, 1.0]])
    with pytest.raises(TypeError, match="float64"):
        cl(np.ones((2, 3), np.float32))
    with pytest.raises(RuntimeError):
        cyrelu.nn.PReLU().backward(x)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            cyrelu.nn.PReLU(bad)
    with pytest.raises(TypeError):
        cyrelu.nn.PReLU(axis=1.0)
    with pytest.raises(TypeError):
        cyrelu.nn.PReLU(dtype=np.int32)
    with pytest.raises(ValueError):
        cyrelu.nn.PReLU(init=np.nan)


def test_layer_state_dict(tmp_path):
    layer = cyrelu.nn.PReLU(3, init=0.1)
    layer.weight[:] = [1.0, 2.0, 3.0]
    state = layer.state_dict()
    assert list(state) == ["weight"]
    state["weight"][0] = 9.0  # a copy
    assert layer.weight[0] == 1.0
    np.savez(tmp_path / "p.npz", **layer.state_dict())
    other = cyrelu.nn.PReLU(3)
    other.load_state_dict(np.load(tmp_path / "p.npz"))
    np.testing.assert_array_equal(other.weight, [1.0, 2.0, 3.0])
    assert other.weight.dtype == np.float32
    for bad, exc in (
        ({"weight": np.ones(2)}, ValueError),
        ({"weight": np.array(["a", "b", "c"])}, TypeError),
        ({"weight": np.ones(3), "bias": np.ones(3)}, KeyError),
        ({}, KeyError),
        ([1, 2, 3], TypeError),
    ):
        with pytest.raises(exc):
            other.load_state_dict(bad)
    np.testing.assert_array_equal(other.weight, [1.0, 2.0, 3.0])
    other.load_state_dict({}, strict=False)
    other.load_state_dict({"weight": np.zeros(3), "extra": 1}, strict=False)
    np.testing.assert_array_equal(other.weight, [0.0, 0.0, 0.0])
