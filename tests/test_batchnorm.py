"""BatchNorm forward and backward against a float64 NumPy reference (always) and
PyTorch's F.batch_norm and autograd (when installed)."""

import numpy as np
import pytest

import cyrelu
from cyrelu import batch_norm, batch_norm_backward

from conftest import requires_torch, torch

F64 = np.float64


# ---- float64 reference ---------------------------------------------------------------


def _bshape(ndim, axis, C):
    shape = [1] * ndim
    shape[axis] = C
    return tuple(shape)


def ref_forward(
    x,
    rm=None,
    rv=None,
    w=None,
    b=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    axis=1,
    activation=None,
    alpha=0.2,
):
    """(y, mean, invstd, new_rm, new_rv), all float64."""
    x64 = np.asarray(x, dtype=F64)
    axis = axis % x64.ndim
    C = x64.shape[axis]
    red = tuple(d for d in range(x64.ndim) if d != axis)
    bs = _bshape(x64.ndim, axis, C)
    n = x64.size // C
    new_rm = None if rm is None else np.asarray(rm, F64).copy()
    new_rv = None if rv is None else np.asarray(rv, F64).copy()
    if training:
        mean = x64.mean(axis=red)
        var = ((x64 - mean.reshape(bs)) ** 2).mean(axis=red)
        if new_rm is not None:
            new_rm = (1 - momentum) * new_rm + momentum * mean
        if new_rv is not None:
            new_rv = (1 - momentum) * new_rv + momentum * var * n / (n - 1)
    else:
        mean = np.asarray(rm, F64)
        var = np.asarray(rv, F64)
    invstd = 1.0 / np.sqrt(var + eps)
    w64 = np.ones(C) if w is None else np.asarray(w, F64)
    b64 = np.zeros(C) if b is None else np.asarray(b, F64)
    y = (x64 - mean.reshape(bs)) * (invstd * w64).reshape(bs) + b64.reshape(bs)
    if activation == "relu":
        y = np.where(y < 0, 0.0, y)
    elif activation == "leaky_relu":
        y = np.where(y > 0, y, alpha * y)
    return y, mean, invstd, new_rm, new_rv


def ref_backward(
    dy, x, mean, invstd, w=None, training=True, axis=1, activation=None, alpha=0.2, output=None
):
    """(grad_input, grad_weight, grad_bias) in float64."""
    dy64 = np.asarray(dy, F64)
    x64 = np.asarray(x, F64)
    axis = axis % x64.ndim
    C = x64.shape[axis]
    red = tuple(d for d in range(x64.ndim) if d != axis)
    bs = _bshape(x64.ndim, axis, C)
    n = x64.size // C
    if activation == "relu":
        dy64 = np.where(np.asarray(output) <= 0, 0.0, dy64)
    elif activation == "leaky_relu":
        dy64 = np.where(np.asarray(output) > 0, dy64, alpha * dy64)
    mean = np.asarray(mean, F64)
    invstd = np.asarray(invstd, F64)
    w64 = np.ones(C) if w is None else np.asarray(w, F64)
    xhat = (x64 - mean.reshape(bs)) * invstd.reshape(bs)
    gb = dy64.sum(axis=red)
    gw = (dy64 * xhat).sum(axis=red)
    if training:
        gi = (w64 * invstd).reshape(bs) * (
            dy64 - (gb / n).reshape(bs) - xhat * (gw / n).reshape(bs)
        )
    else:
        gi = dy64 * (w64 * invstd).reshape(bs)
    return gi, gw, gb


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if np.dtype(dtype) != F64 else dict(rtol=1e-10, atol=1e-10)


# shapes x channel axes: 2-D to 5-D, axis 1, -1 and a middle axis; both loop shapes
# (runs of >= 32 elements after the channel axis take the per-channel loops)
CASES = [
    ((7, 5), 1),
    ((7, 5), -1),
    ((4, 3, 10), 1),
    ((4, 10, 3), -1),
    ((2, 3, 40, 5), 1),  # inner = 200: per-channel loops
    ((2, 40, 5, 3), -1),  # channels-last: row loops
    ((3, 4, 5, 6), 2),  # middle axis, inner = 6
    ((2, 3, 4, 5, 6), 1),  # 5-D, inner = 120
    ((2, 4, 3, 5, 6), -1),
    ((2, 3, 4, 5, 6), 3),
]


def _params(rng, C, dtype, with_wb, with_running):
    w = rng.standard_normal(C).astype(dtype) if with_wb else None
    b = rng.standard_normal(C).astype(dtype) if with_wb else None
    rm = rng.standard_normal(C).astype(dtype) if with_running else None
    rv = (rng.random(C) + 0.5).astype(dtype) if with_running else None
    return w, b, rm, rv


@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("with_wb", [True, False])
def test_forward_backward_match_reference(rng, shape, axis, dtype, training, with_wb):
    C = shape[axis]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w, b, rm, rv = _params(rng, C, dtype, with_wb, True)
    ref_y, ref_m, ref_s, ref_rm, ref_rv = ref_forward(x, rm, rv, w, b, training, 0.1, 1e-5, axis)
    y, m, s = batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5, axis=axis, return_stats=True)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert m.dtype == s.dtype == (F64 if dtype == np.float64 else np.float32)
    np.testing.assert_allclose(y, ref_y, **tol(dtype))
    np.testing.assert_allclose(m, ref_m, **tol(dtype))
    np.testing.assert_allclose(s, ref_s, **tol(dtype))
    np.testing.assert_allclose(rm, ref_rm, **tol(dtype))
    np.testing.assert_allclose(rv, ref_rv, **tol(dtype))

    dy = rng.standard_normal(shape).astype(dtype)
    gi, gw, gb = batch_norm_backward(dy, x, m, s, w, training=training, axis=axis)
    ri, rw, rb = ref_backward(dy, x, m, s, w, training, axis)
    assert gi.dtype == x.dtype and gi.shape == x.shape
    np.testing.assert_allclose(gi, ri, **tol(dtype))
    np.testing.assert_allclose(
        gw, rw, rtol=tol(dtype)["rtol"], atol=1e-4 if dtype == np.float32 else 1e-9
    )
    np.testing.assert_allclose(
        gb, rb, rtol=tol(dtype)["rtol"], atol=1e-4 if dtype == np.float32 else 1e-9
    )


@pytest.mark.parametrize("shape,axis", [((6, 4), 1), ((2, 3, 40, 5), 1), ((3, 5, 2, 4), -1)])
def test_training_without_running_stats(rng, shape, axis):
    x = rng.standard_normal(shape)
    y = batch_norm(x, training=True, axis=axis)
    np.testing.assert_allclose(
        y, ref_forward(x, training=True, axis=axis)[0], rtol=1e-10, atol=1e-10
    )
    # one running statistic alone is updated alone
    C = shape[axis]
    rm = np.zeros(C)
    batch_norm(x, rm, None, training=True, axis=axis, momentum=1.0)
    np.testing.assert_allclose(
        rm, ref_forward(x, training=True, axis=axis)[1], rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "activation,alpha", [("relu", 0.2), ("leaky_relu", 0.2), ("leaky_relu", 3.0)]
)
@pytest.mark.parametrize("shape,axis", [((4, 3, 40), 1), ((5, 4, 3), -1), ((3, 4, 5, 6), 2)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_activation(rng, activation, alpha, shape, axis, training):
    C = shape[axis]
    x = rng.standard_normal(shape)
    w, b, rm, rv = _params(rng, C, F64, True, True)
    y, m, s = batch_norm(
        x,
        rm.copy(),
        rv.copy(),
        w,
        b,
        training,
        axis=axis,
        activation=activation,
        alpha=alpha,
        return_stats=True,
    )
    ref_y = ref_forward(x, rm, rv, w, b, training, axis=axis, activation=activation, alpha=alpha)[
        0
    ]
    np.testing.assert_allclose(y, ref_y, rtol=1e-12, atol=1e-12)
    plain = batch_norm(x, rm.copy(), rv.copy(), w, b, training, axis=axis)
    if activation == "relu":
        np.testing.assert_array_equal(y, cyrelu.relu(plain))
    else:
        np.testing.assert_array_equal(y, cyrelu.leaky_relu(plain, alpha))
    dy = rng.standard_normal(shape)
    gi, gw, gb = batch_norm_backward(
        dy, x, m, s, w, training=training, axis=axis, activation=activation, alpha=alpha, output=y
    )
    ri, rw, rb = ref_backward(dy, x, m, s, w, training, axis, activation, alpha, y)
    np.testing.assert_allclose(gi, ri, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-10)
    # gating really happened: without it the answer differs
    gi0 = batch_norm_backward(dy, x, m, s, w, training=training, axis=axis)[0]
    assert not np.allclose(gi0, gi)


def test_fused_activation_nan_semantics():
    x = np.array([[np.nan, -1.0], [1.0, 2.0], [-3.0, np.nan]])
    rm, rv = np.zeros(2), np.ones(2)
    y = batch_norm(x, rm, rv, eps=1e-300, activation="relu")
    np.testing.assert_array_equal(y, [[np.nan, 0.0], [1.0, 2.0], [0.0, np.nan]])
    y = batch_norm(x, rm, rv, eps=1e-300, activation="leaky_relu", alpha=0.5)
    np.testing.assert_array_equal(y, [[np.nan, -0.5], [1.0, 2.0], [-1.5, np.nan]])


def test_running_stats_several_steps(rng):
    C = 6
    rm = np.zeros(C, np.float32)
    rv = np.ones(C, np.float32)
    ref_rm, ref_rv = rm.astype(F64), rv.astype(F64)
    for step in range(5):
        x = (rng.standard_normal((8, C, 5)) * (step + 1) + step).astype(np.float32)
        batch_norm(x, rm, rv, training=True, momentum=0.3)
        _, _, _, ref_rm, ref_rv = ref_forward(x, ref_rm, ref_rv, training=True, momentum=0.3)
    np.testing.assert_allclose(rm, ref_rm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rv, ref_rv, rtol=1e-5, atol=1e-5)
    # momentum 0 leaves them alone, momentum 1 replaces them
    before = rm.copy()
    batch_norm(x, rm, rv, training=True, momentum=0.0)
    np.testing.assert_array_equal(rm, before)


@pytest.mark.parametrize(
    "shape,axis", [((16, 3, 64, 64), 1), ((16, 64, 64, 3), -1), ((4096, 3), 1), ((700, 3, 400), 1)]
)
def test_cancellation_large_mean(rng, shape, axis):
    """A float32 channel with mean 1e4 and std 1: variance within 1e-4 of float64's."""
    x64 = rng.standard_normal(shape)
    bs = _bshape(len(shape), axis % len(shape), 3)
    x64 = x64 + np.array([0.0, 1e4, -3e3]).reshape(bs)
    x = x64.astype(np.float32)
    rv = np.zeros(3)  # float64 running_var receives the unbiased variance exactly
    _, m, _s = batch_norm(x, None, rv, training=True, momentum=1.0, axis=axis, return_stats=True)
    xr = x.astype(F64)
    red = tuple(d for d in range(len(shape)) if d != axis % len(shape))
    var64 = xr.var(axis=red, ddof=1)
    np.testing.assert_allclose(rv, var64, rtol=1e-4)
    np.testing.assert_allclose(rv, var64, rtol=1e-9)  # in fact: double accumulation
    np.testing.assert_allclose(m, xr.mean(axis=red), rtol=1e-7)


@pytest.mark.parametrize(
    "shape,axis",
    [
        ((8, 16, 32, 32), 1),
        ((8, 32, 32, 16), -1),
        ((1024, 96), 1),
        ((16, 8, 40, 20), 2),
        ((40000, 4), 1),
        ((30000, 3, 2), 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_thread_counts_bitwise_identical(rng, shape, axis, dtype):
    if cyrelu._parallel.openmp_version() == 0:
        pytest.skip("serial build")
    C = shape[axis]
    pdtype = np.float32 if dtype == np.float16 else dtype  # per-channel arrays
    x = (rng.standard_normal(shape) + 3).astype(dtype)
    w, b, _, _ = _params(rng, C, pdtype, True, False)
    dy = rng.standard_normal(shape).astype(dtype)
    res = []
    for nt in (1, 2, 3):
        rm, rv = np.zeros(C, pdtype), np.ones(C, pdtype)
        y, m, s = batch_norm(
            x, rm, rv, w, b, True, axis=axis, activation="relu", return_stats=True, num_threads=nt
        )
        ye = batch_norm(x, rm, rv, w, b, False, axis=axis, num_threads=nt)
        g = batch_norm_backward(
            dy, x, m, s, w, axis=axis, activation="relu", output=y, num_threads=nt
        )
        res.append((y, m, s, rm, rv, ye, *g))
    for other in res[1:]:
        for a, b_ in zip(res[0], other, strict=True):
            np.testing.assert_array_equal(a, b_)
    # and the multi-threaded answer is right
    t = (
        tol(dtype)
        if dtype == F64
        else dict(rtol=1e-4, atol=1e-4)
        if dtype == np.float32
        else dict(rtol=4e-3, atol=4e-3)
    )
    np.testing.assert_allclose(
        res[1][0], ref_forward(x, None, None, w, b, True, axis=axis, activation="relu")[0], **t
    )


def test_threadpoolctl_limit(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    expected = batch_norm(x, training=True, num_threads=1)
    with threadpoolctl.threadpool_limits(1):
        np.testing.assert_array_equal(batch_norm(x, training=True), expected)


def test_float16_data(rng):
    x = rng.standard_normal((6, 4, 5)).astype(np.float16)
    w = rng.standard_normal(4).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y, m, s = batch_norm(x, rm, rv, w, None, True, return_stats=True)
    assert y.dtype == np.float16 and m.dtype == np.float32
    ref = ref_forward(x, None, None, w, None, True)
    np.testing.assert_allclose(y.astype(F64), ref[0], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(m, ref[1], rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(x.shape).astype(np.float16)
    gi, gw, _gb = batch_norm_backward(dy, x, m, s, w)
    assert gi.dtype == np.float16 and gw.dtype == np.float32
    ri, rw, _rb = ref_backward(dy, x, m, s, w)
    np.testing.assert_allclose(gi.astype(F64), ri, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(gw, rw, rtol=1e-4, atol=1e-4)


def test_layouts_and_out(rng):
    x_nhwc = rng.standard_normal((4, 6, 7, 5))
    x = x_nhwc.transpose(0, 3, 1, 2)  # NCHW-shaped view of channels-last data
    ref = ref_forward(x, training=True)[0]
    y = batch_norm(x, training=True)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert y.strides == np.empty_like(x).strides  # the result keeps x's layout
    # a non-contiguous slice is copied, still correct
    big = rng.standard_normal((8, 6, 10))
    xs = big[::2, :, 1:8]
    np.testing.assert_allclose(
        batch_norm(xs, training=True), ref_forward(xs, training=True)[0], rtol=1e-12, atol=1e-12
    )
    # out, in place and a strided out
    out = np.empty_like(xs)
    assert batch_norm(xs, training=True, out=out) is out
    np.testing.assert_allclose(out, ref_forward(xs, training=True)[0], rtol=1e-12, atol=1e-12)
    xc = xs.copy()
    batch_norm(xc, training=True, out=xc)
    np.testing.assert_allclose(xc, out, rtol=1e-12, atol=1e-12)
    xl = rng.standard_normal((7, 3))
    expected = ref_forward(xl, training=True)[0]
    xl_inplace = xl.copy()
    batch_norm(xl_inplace, training=True, out=xl_inplace)
    np.testing.assert_allclose(xl_inplace, expected, rtol=1e-12, atol=1e-12)
    strided_out = np.empty((7, 6))[:, ::2]
    batch_norm(xl, training=True, out=strided_out)
    np.testing.assert_allclose(strided_out, expected, rtol=1e-12, atol=1e-12)
    # backward with out, and out == grad_output
    dy = rng.standard_normal(xl.shape)
    _, m, s = batch_norm(xl, training=True, return_stats=True)
    expected_gi = ref_backward(dy, xl, m, s)[0]
    gout = np.empty_like(dy)
    assert batch_norm_backward(dy, xl, m, s, out=gout)[0] is gout
    np.testing.assert_allclose(gout, expected_gi, rtol=1e-12, atol=1e-12)
    dyc = dy.copy()
    batch_norm_backward(dyc, xl, m, s, out=dyc)
    np.testing.assert_allclose(dyc, expected_gi, rtol=1e-12, atol=1e-12)
    # array-likes
    np.testing.assert_allclose(batch_norm(xl.tolist(), training=True), expected, rtol=1e-12)


def test_eval_stats_describe_running(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    rm = np.array([1.0, 2.0, 3.0], np.float32)
    rv = np.array([4.0, 0.25, 1.0], np.float32)
    _y, m, s = batch_norm(x, rm, rv, eps=1e-5, return_stats=True)
    np.testing.assert_array_equal(m, rm)
    np.testing.assert_allclose(s, 1 / np.sqrt(rv.astype(F64) + 1e-5), rtol=1e-7)


def test_empty_batch_eval():
    x = np.zeros((0, 3))
    y = batch_norm(x, np.zeros(3), np.ones(3))
    assert y.shape == (0, 3)


# ---- finite differences ----------------------------------------------------------


@pytest.mark.parametrize("shape,axis", [((3, 2, 4), 1), ((5, 3), -1), ((2, 3, 2, 3), 2)])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
@pytest.mark.parametrize("training", [True, False])
def test_finite_difference_gradients(rng, shape, axis, activation, training):
    C = shape[axis]
    x = rng.standard_normal(shape)
    w = rng.standard_normal(C)
    b = rng.standard_normal(C) * 0.1
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    r = rng.standard_normal(shape)

    def loss(x_, w_, b_):
        y_ = (
            batch_norm(x_, rm, rv, w_, b_, False, axis=axis, activation=activation, alpha=0.3)
            if not training
            else batch_norm(
                x_, None, None, w_, b_, True, axis=axis, activation=activation, alpha=0.3
            )
        )
        return float((y_ * r).sum())

    y, m, s = batch_norm(
        x,
        None if training else rm,
        None if training else rv,
        w,
        b,
        training,
        axis=axis,
        activation=activation,
        alpha=0.3,
        return_stats=True,
    )
    gi, gw, gb = batch_norm_backward(
        r, x, m, s, w, training=training, axis=axis, activation=activation, alpha=0.3, output=y
    )
    h = 1e-6

    def numgrad(arr, f):
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            fp = f()
            arr[idx] = old - h
            fm = f()
            arr[idx] = old
            g[idx] = (fp - fm) / (2 * h)
        return g

    np.testing.assert_allclose(gi, numgrad(x, lambda: loss(x, w, b)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gw, numgrad(w, lambda: loss(x, w, b)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb, numgrad(b, lambda: loss(x, w, b)), rtol=1e-5, atol=1e-6)


# ---- PyTorch --------------------------------------------------------------------


def _torch_bn(x, rm, rv, w, b, training, momentum, eps, axis, activation, alpha, dy):
    """PyTorch's forward (+ activation) and autograd backward, in cyrelu's axis order."""
    F = torch.nn.functional
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, axis, 1))).requires_grad_()
    wt = None if w is None else torch.from_numpy(w.copy()).requires_grad_()
    bt = None if b is None else torch.from_numpy(b.copy()).requires_grad_()
    rmt = None if rm is None else torch.from_numpy(rm)
    rvt = None if rv is None else torch.from_numpy(rv)
    yt = F.batch_norm(xt, rmt, rvt, wt, bt, training, momentum, eps)
    if activation == "relu":
        yt = F.relu(yt)
    elif activation == "leaky_relu":
        yt = F.leaky_relu(yt, alpha)
    yt.backward(torch.from_numpy(np.ascontiguousarray(np.moveaxis(dy, axis, 1))))
    back = lambda a: np.moveaxis(a.detach().numpy(), 1, axis)  # noqa: E731
    return (
        back(yt),
        back(xt.grad),
        None if wt is None else wt.grad.numpy(),
        None if bt is None else bt.grad.numpy(),
    )


@requires_torch
@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
def test_against_torch(rng, shape, axis, dtype, training, activation):
    C = shape[axis]
    x = (rng.standard_normal(shape) * 1.5 - 0.3).astype(dtype)
    w, b, rm, rv = _params(rng, C, dtype, True, True)
    dy = rng.standard_normal(shape).astype(dtype)
    rm_t, rv_t = rm.copy(), rv.copy()
    ty, tgi, tgw, tgb = _torch_bn(
        x, rm_t, rv_t, w, b, training, 0.2, 1e-3, axis, activation, 0.2, dy
    )
    y, m, s = batch_norm(
        x, rm, rv, w, b, training, 0.2, 1e-3, axis=axis, activation=activation, return_stats=True
    )
    gi, gw, gb = batch_norm_backward(
        dy, x, m, s, w, training=training, axis=axis, activation=activation, output=y
    )
    t = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty, **t)
    np.testing.assert_allclose(rm, rm_t, **t)
    np.testing.assert_allclose(rv, rv_t, **t)
    np.testing.assert_allclose(gi, tgi, **t)
    np.testing.assert_allclose(gw, tgw, **t)
    np.testing.assert_allclose(gb, tgb, **t)


@requires_torch
def test_running_stats_several_steps_torch(rng):
    C = 4
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    rmt, rvt = torch.zeros(C), torch.ones(C)
    for step in range(6):
        x = (rng.standard_normal((5, C, 7)) * (step + 1) - step).astype(np.float32)
        batch_norm(x, rm, rv, training=True, momentum=0.1)
        torch.nn.functional.batch_norm(torch.from_numpy(x), rmt, rvt, training=True, momentum=0.1)
    np.testing.assert_allclose(rm, rmt.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, rvt.numpy(), rtol=1e-5, atol=1e-6)


@requires_torch
def test_too_few_values_like_torch():
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="more than 1 value"):
        batch_norm(x, training=True)
    with pytest.raises(ValueError):
        torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)


# ---- errors ---------------------------------------------------------------------


def test_errors(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(TypeError, match="int32"):
        batch_norm(x.astype(np.int32), rm, rv)
    with pytest.raises(TypeError, match="complex"):
        batch_norm(x.astype(np.complex64), rm, rv)
    with pytest.raises(TypeError):
        batch_norm(x, rm.astype(np.int64), rv)
    with pytest.raises(TypeError):
        batch_norm(x, rm, rv, weight=np.ones(3, np.float16))
    with pytest.raises(TypeError):
        batch_norm(x, rm, rv, bias=np.zeros(3, np.int32))
    with pytest.raises(TypeError):
        batch_norm(x, [0.0] * 3, rv)  # running stats must be arrays
    with pytest.raises(TypeError):
        batch_norm(x, rm, rv, out=np.empty((4, 3), np.float64))
    with pytest.raises(TypeError):
        batch_norm(x, rm, rv, out=[0.0] * 12)
    with pytest.raises(TypeError):
        batch_norm(x, rm, rv, momentum="0.1")
    with pytest.raises(ValueError, match="at least 2"):
        batch_norm(x[0], rm, rv)
    with pytest.raises(ValueError, match="length"):
        batch_norm(x, np.zeros(4, np.float32), rv)
    with pytest.raises(ValueError, match="length"):
        batch_norm(x, rm, rv, weight=np.ones((3, 1), np.float32))
    with pytest.raises(ValueError, match="length"):
        batch_norm(x, rm, rv, bias=np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        batch_norm(x, rm, rv, out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="read-only"):
        batch_norm(x, rm, rv, out=_readonly(np.empty((4, 3), np.float32)))
    for bad_axis in (2, -3):
        with pytest.raises(ValueError, match="axis"):
            batch_norm(x, rm, rv, axis=bad_axis)
    for bad_axis in (1.0, "1", True):  # not an int: a TypeError, as everywhere
        with pytest.raises(TypeError, match="axis"):
            batch_norm(x, rm, rv, axis=bad_axis)
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="momentum"):
            batch_norm(x, rm, rv, training=True, momentum=bad)
    for bad in (0.0, -1e-5, float("inf")):
        with pytest.raises(ValueError, match="eps"):
            batch_norm(x, rm, rv, eps=bad)
    with pytest.raises(ValueError, match="required"):
        batch_norm(x, rm, None, training=False)
    with pytest.raises(ValueError, match="required"):
        batch_norm(x)
    with pytest.raises(ValueError, match="read-only"):
        batch_norm(x, _readonly(rm), rv, training=True)
    with pytest.raises(ValueError, match="read-only"):
        batch_norm(x, rm, _readonly(rv), training=True)
    batch_norm(x, _readonly(rm), _readonly(rv), training=False)  # fine: not updated
    with pytest.raises(ValueError, match="more than 1 value"):
        batch_norm(x[:1], training=True)
    with pytest.raises(ValueError, match="more than 1 value"):
        batch_norm(np.ones((3, 1, 1)), training=True, axis=0)
    with pytest.raises(ValueError, match="activation"):
        batch_norm(x, rm, rv, activation="swish")
    with pytest.raises(ValueError, match="activation"):
        batch_norm(x, rm, rv, activation=1)
    with pytest.raises(TypeError, match="alpha"):
        batch_norm(x, rm, rv, activation="leaky_relu", alpha="x")
    with pytest.raises(ValueError, match="num_threads"):
        batch_norm(x, rm, rv, num_threads=0)


def test_backward_errors(rng):
    x = rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 3))
    m, s = np.zeros(3), np.ones(3)
    with pytest.raises(TypeError, match="dtype"):
        batch_norm_backward(dy.astype(np.float32), x, m, s)
    with pytest.raises(ValueError, match="shape"):
        batch_norm_backward(dy[:3], x, m, s)
    with pytest.raises(TypeError):
        batch_norm_backward(dy.astype(np.int64), x.astype(np.int64), m, s)
    with pytest.raises(ValueError, match="length"):
        batch_norm_backward(dy, x, np.zeros(4), s)
    with pytest.raises(ValueError, match="length"):
        batch_norm_backward(dy, x, m, s, np.ones(2))
    with pytest.raises(TypeError):
        batch_norm_backward(dy, x, m.astype(np.int32), s)
    with pytest.raises(ValueError, match="output"):
        batch_norm_backward(dy, x, m, s, activation="relu")
    with pytest.raises(ValueError, match="alpha > 0"):
        batch_norm_backward(dy, x, m, s, activation="leaky_relu", alpha=0.0, output=x)
    with pytest.raises(ValueError, match="alpha > 0"):
        batch_norm_backward(dy, x, m, s, activation="leaky_relu", alpha=-0.5, output=x)
    with pytest.raises(ValueError, match="shape"):
        batch_norm_backward(dy, x, m, s, activation="relu", output=x[:2])
    with pytest.raises(ValueError, match="axis"):
        batch_norm_backward(dy, x, m, s, axis=5)
    with pytest.raises(ValueError, match="activation"):
        batch_norm_backward(dy, x, m, s, activation="tanh", output=x)
    with pytest.raises(ValueError, match="read-only"):
        batch_norm_backward(dy, x, m, s, out=_readonly(np.empty_like(x)))


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("inner", [3, 40])  # the row and the per-channel layout
@pytest.mark.parametrize("pdtype", [np.float32, np.float64])
def test_read_only_strided_per_channel_arguments(rng, inner, pdtype):
    """Per-channel arguments are read where they lie: read-only and strided ones work
    (against a float64 NumPy reference)."""
    C = 4
    x = rng.standard_normal((6, C, inner))
    dy = rng.standard_normal(x.shape)

    def param(values):  # every other element of a read-only array
        a = np.repeat(values.astype(pdtype), 2)
        a.flags.writeable = False
        return a[::2]

    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    w64, b64, rm64, rv64 = (v.astype(pdtype).astype(np.float64) for v in (w, b, rm, rv))

    def col(v):  # per channel, broadcast over (N, C, inner)
        return v[:, None]

    y = batch_norm(x, param(rm), param(rv), param(w), param(b), False, eps=1e-5)
    ref = (x - col(rm64)) / np.sqrt(col(rv64) + 1e-5) * col(w64) + col(b64)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    mean = x.mean(axis=(0, 2))
    invstd = 1.0 / np.sqrt(x.var(axis=(0, 2)) + 1e-5)
    dx, gw, gb = batch_norm_backward(dy, x, param(mean), param(invstd), param(w))
    m64, s64 = mean.astype(pdtype).astype(np.float64), invstd.astype(pdtype).astype(np.float64)
    xhat = (x - col(m64)) * col(s64)
    ref_gb = dy.sum(axis=(0, 2))
    ref_gw = (dy * (x - col(m64))).sum(axis=(0, 2)) * s64
    n = x.shape[0] * inner
    ref_dx = col(w64 * s64) * (dy - col(ref_gb) / n - xhat * col(ref_gw / n))
    np.testing.assert_allclose(gb, ref_gb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, ref_gw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-5)


def test_public_exports():
    assert cyrelu.batch_norm is batch_norm
    assert cyrelu.batch_norm_backward is batch_norm_backward
    assert "batch_norm" in cyrelu.__all__ and "nn" in cyrelu.__all__


# ---- every loop shape of the kernels ----------------------------------------------


def _loop_shape(x, axis):
    from cyrelu import _batchnorm as k

    inner = int(np.prod(x.shape[axis % x.ndim + 1 :]))
    return "channel" if k.uses_channel_layout(inner) else "rows"


@pytest.mark.kernel_choice
@pytest.mark.parametrize(
    "shape,axis,expected",
    [
        ((4, 3, 40), 1, "channel"),
        ((3, 5, 2, 33), 2, "channel"),
        ((700, 2, 400), 1, "channel"),  # slab > 1 MiB in float32: statistics in chunks
        ((64, 5), 1, "rows"),
        ((9, 4, 5, 3), 1, "rows"),  # inner = 15: columns folded per channel
        ((20000, 3), 1, "rows"),  # several row groups, several blocks per group
        ((30000, 3, 2), 1, "rows"),
        ((20000, 2, 3), 2, "rows"),  # channels-last, 40000 rows
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "leaky_relu"])
def test_each_loop_shape(rng, shape, axis, expected, dtype, activation):
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    assert _loop_shape(x, axis) == expected
    C = shape[axis]
    w, b, rm, rv = _params(rng, C, dtype, True, True)
    y, m, s = batch_norm(
        x, rm, rv, w, b, True, axis=axis, activation=activation, return_stats=True, num_threads=2
    )
    ry, rmean, rinv, _rrm, _rrv = ref_forward(
        x, rm, rv, w, b, True, axis=axis, activation=activation
    )
    t = tol(dtype) if dtype == F64 else dict(rtol=5e-5, atol=5e-5)
    np.testing.assert_allclose(y, ry, **t)
    np.testing.assert_allclose(m, rmean, **t)
    np.testing.assert_allclose(s, rinv, **t)
    dy = rng.standard_normal(shape).astype(dtype)
    for training in (True, False):
        gi, gw, gb = batch_norm_backward(
            dy,
            x,
            m,
            s,
            w,
            training=training,
            axis=axis,
            activation=activation,
            output=y,
            num_threads=2,
        )
        ri, rw, rb = ref_backward(dy, x, m, s, w, training, axis, activation, 0.2, y)
        np.testing.assert_allclose(gi, ri, **t)
        np.testing.assert_allclose(gw, rw, rtol=t["rtol"], atol=1e-3 if dtype != F64 else 1e-8)
        np.testing.assert_allclose(gb, rb, rtol=t["rtol"], atol=1e-3 if dtype != F64 else 1e-8)
    ye = batch_norm(x, rm, rv, w, b, False, axis=axis, activation=activation)
    np.testing.assert_allclose(
        ye, ref_forward(x, rm, rv, w, b, False, axis=axis, activation=activation)[0], **t
    )


@pytest.mark.kernel_choice
def test_chunked_channel_statistics(rng):
    """A channel slab larger than the planner's slab size (half the L2 in force) has its
    statistics taken in row chunks, each read once in cache, merged with Chan's update:
    the shape is derived from cyrelu._parallel.cache_info(), so the chunked path is
    reached whatever the cache size; checked against the float64 reference, for mean
    1e4 and standard deviation 1 (no cancellation), the same bits for 1 and 2 threads."""
    slab = cyrelu._parallel.cache_info()["slab_bytes"]
    inner = 400
    for dtype in (np.float32, np.float64):
        itemsize = np.dtype(dtype).itemsize
        outer = 3 * slab // (inner * itemsize) + 7  # three chunks and a partial one
        assert outer * inner * itemsize > 2 * slab
        x = (rng.standard_normal((outer, 2, inner)) + 1e4).astype(dtype)
        res = [
            batch_norm(x, None, None, None, None, True, return_stats=True, num_threads=nt)
            for nt in (1, 2)
        ]
        for a, b_ in zip(*res, strict=True):
            np.testing.assert_array_equal(a, b_)
        ry, rmean, rinv = ref_forward(x, None, None, None, None, True)[:3]
        # save_mean/save_invstd are float32 for float32 data: one rounding of the
        # float64 statistics (a cancelling E[x^2] - E[x]^2 would be off by far more)
        f32 = dtype == np.float32
        np.testing.assert_allclose(res[0][1], rmean, rtol=1e-7 if f32 else 1e-12)
        np.testing.assert_allclose(res[0][2], rinv, rtol=2e-7 if f32 else 1e-9)
        np.testing.assert_allclose(res[0][0], ry, rtol=1e-3, atol=2e-3)


# ---- the instruction-set copies ----------------------------------------------------


@pytest.mark.kernel_choice
@pytest.mark.sweeps_itself
def test_instruction_set_copies_give_identical_bits():
    """CYRELU_ISA caps the runtime dispatch: every compiled copy of the BatchNorm kernels
    (baseline, AVX2, AVX-512 where the CPU has them) must give the same bits, for
    float32, float64 and float16 data, the backward's derivative taken from the output
    and from ``bias=`` (relu and hardswish in the kernels' loops; gelu through its L1
    tiles).  The row-layout shapes have widths with whole vectors of
    columns and a remainder, and more columns than one gated run (64) of the row
    backward's reduction.  The last two shapes (from the planner's cache sizes) take
    the pipelined backward with the AVX2/AVX-512 copies (whose lane loops are
    intrinsics) and the plain per-channel backward with the baseline copy."""
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, numpy as np, cyrelu\n"
        "h = hashlib.sha256()\n"
        "rng = np.random.default_rng(7)\n"
        "for shape, axis in (((4, 6, 9, 11), 1), ((300, 6), 1), ((5, 7, 6), -1),"
        " ((203, 37), 1), ((101, 150), 1), ((6, 9, 70), -1),"
        " ((700, 2, 400), 1), (%r, 1), (%r, 1)):\n"
        "    for dt in (np.float32, np.float64, np.float16):\n"
        "        pt = np.float32 if dt == np.float16 else dt\n"
        "        x = (rng.standard_normal(shape) * 3 + 100).astype(dt)\n"
        "        dy = rng.standard_normal(shape).astype(dt)\n"
        "        C = shape[axis]\n"
        "        w = rng.standard_normal(C).astype(pt)\n"
        "        rm, rv = np.zeros(C, pt), np.ones(C, pt)\n"
        "        y, m, s = cyrelu.batch_norm(x, rm, rv, w, None, True, axis=axis,\n"
        "                                    activation='leaky_relu', return_stats=True)\n"
        "        yb = cyrelu.batch_norm(x, rm, rv, w, w, True, axis=axis, activation='relu')\n"
        "        for a in (y, m, s, rm, rv, yb) + cyrelu.batch_norm_backward(\n"
        "                dy, x, m, s, w, axis=axis, activation='leaky_relu', output=y) + (\n"
        "                cyrelu.batch_norm_backward(\n"
        "                dy, x, m, s, w, axis=axis, activation='relu', bias=w)) + (\n"
        "                cyrelu.batch_norm_backward(\n"
        "                dy, x, m, s, w, axis=axis, activation='hardswish', bias=w)) + (\n"
        "                cyrelu.batch_norm_backward(\n"
        "                dy, x, m, s, w, axis=axis, activation='gelu', bias=w)) + (\n"
        "                cyrelu.batch_norm(x, rm, rv, w, w, axis=axis),):\n"
        "            h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())\n"
    ) % (pipelined_shape(4, True), pipelined_shape(8, True))
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    procs = {  # the three copies side by side (one process each)
        isa: subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, CYRELU_ISA=isa),
            cwd=parent,
        )
        for isa in ("base", "avx2", "avx512")
    }
    digests = {}
    for isa, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (isa, err[-2000:])
        digests[isa] = out.strip()
    assert len(set(digests.values())) == 1, digests
    assert len(hashlib.sha256().hexdigest()) == len(digests["base"])


@pytest.mark.kernel_choice
def test_large_outputs_streamed(rng):
    """Outputs of several MiB per thread in long runs are written with streaming stores
    (per-channel layout): same answers, same bits for 1 and 2 threads."""
    x = (rng.standard_normal((16, 8, 128, 128)) * 2 + 3).astype(np.float32)  # 8 MiB
    dy = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.standard_normal(8).astype(np.float32)
    res = []
    for nt in (1, 2):
        y, m, s = batch_norm(
            x,
            None,
            None,
            w,
            None,
            True,
            axis=1,
            activation="relu",
            return_stats=True,
            num_threads=nt,
        )
        g = batch_norm_backward(dy, x, m, s, w, activation="relu", output=y, num_threads=nt)
        res.append((y, m, s, *g))
    for a, b_ in zip(*res, strict=True):
        np.testing.assert_array_equal(a, b_)
    y, m, s, gi, gw, _gb = res[0]
    np.testing.assert_allclose(
        y, ref_forward(x, None, None, w, None, True, activation="relu")[0], rtol=1e-4, atol=1e-4
    )
    ri, rw, _rb = ref_backward(dy, x, m, s, w, True, 1, "relu", 0.2, y)
    np.testing.assert_allclose(gi, ri, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, rw, rtol=1e-4, atol=1e-2)


@pytest.mark.kernel_choice
def test_large_inference_outputs_streamed(rng):
    """Inference on outputs of several MiB per thread (per-channel layout) streams its
    output: the same answers, any output alignment, the same bits for 1 and 2 threads."""
    x = (rng.standard_normal((16, 8, 128, 128)) * 2 + 3).astype(np.float32)  # 8 MiB
    rm = rng.standard_normal(8).astype(np.float32)
    rv = (rng.random(8) + 0.5).astype(np.float32)
    w = rng.standard_normal(8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    expected = ref_forward(x, rm, rv, w, b, False, activation="leaky_relu", alpha=0.1)[0]
    outs = []
    for nt, offset in ((1, 0), (2, 0), (2, 1)):
        buf = np.empty(x.size + 1, dtype=np.float32)
        out = buf[offset : offset + x.size].reshape(x.shape)
        y = batch_norm(
            x, rm, rv, w, b, False, activation="leaky_relu", alpha=0.1, out=out, num_threads=nt
        )
        assert y is out
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        outs.append(y.copy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


# ---- the pipelined per-channel backward ----------------------------------------------


def pipelined_shape(itemsize, fused, threads=3):
    """An NCHW shape that the planner sends to the pipelined backward on this machine's
    cache sizes (cyrelu._parallel.cache_info(), which CYRELU_L2_BYTES overrides): rows of
    2112 elements (not a multiple of 64 bytes; runs long enough to stream), few enough
    rows per channel that the slabs of two channels (dy, x, and y when fused) fit in 7/8
    of the L2, and enough channels that dx streams with `threads` threads."""
    plan = cyrelu._parallel.cache_info()
    inner = 2112
    arrays = 3 if fused else 2
    outer = max(1, plan["l2_bytes"] * 7 // 16 // (inner * itemsize * arrays))
    outer = min(outer, 8)
    channel_bytes = outer * inner * itemsize
    C = max(2 * threads, -(-2 * threads * plan["stream_min_bytes"] // channel_bytes))
    return (outer, C, 32, inner // 32)


def _pipelined_runs(call, x):
    """``call(dx, nt)`` for 1, 2 and 3 threads into an aligned dx, and for 2 threads into
    an unaligned one: the results."""
    res = []
    for nt, offset in ((1, 0), (2, 0), (3, 0), (2, 1)):
        buf = np.empty(x.size + 1, dtype=x.dtype)
        res.append(call(buf[offset : offset + x.size].reshape(x.shape), nt))
    return res


@pytest.mark.kernel_choice
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
@pytest.mark.parametrize("training", [True, False])
def test_pipelined_backward(rng, dtype, activation, training):
    """Per-channel data whose slabs are small and whose dx streams takes the pipelined
    kernel (dx of one channel alternating with pass 1 of the next): right answers, the
    same bits for 1, 2 and 3 threads (each thread pipelines its own run of channels),
    and for an unaligned out.  The shape comes from the planner's cache sizes, so the
    kernel is reached on any CPU (and under any CYRELU_L2_BYTES)."""
    if cyrelu._parallel.openmp_version() == 0:
        pytest.skip("serial build")
    from cyrelu import _batchnorm

    shape = pipelined_shape(np.dtype(dtype).itemsize, activation is not None)
    outer, C = shape[0], shape[1]
    inner = shape[2] * shape[3]
    x = (rng.standard_normal(shape) * 2 + 5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    y, m, s = batch_norm(x, None, None, w, None, True, activation=activation, return_stats=True)
    out = None if activation is None else y
    if cyrelu._parallel.build_info()["isa"] == "baseline":
        pytest.skip("the pipelined backward runs with the AVX2 / AVX-512 kernels")
    for nt in (1, 2, 3):
        assert _batchnorm.backward_pipelined(x, outer, C, inner, out is not None, nt), (
            shape,
            cyrelu._parallel.cache_info(),
        )
    kw = dict(training=training, activation=activation, output=out)
    res = _pipelined_runs(
        lambda dx, nt: batch_norm_backward(dy, x, m, s, w, out=dx, num_threads=nt, **kw), x
    )
    for other in res[1:]:
        for a, b_ in zip(res[0], other, strict=True):
            np.testing.assert_array_equal(a, b_)
    ri, rw, rb = ref_backward(dy, x, m, s, w, training, 1, activation, 0.2, out)
    t = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res[0][0], ri, **t)
    np.testing.assert_allclose(res[0][1], rw, rtol=t["rtol"], atol=t["atol"] * 100)
    np.testing.assert_allclose(res[0][2], rb, rtol=t["rtol"], atol=t["atol"] * 100)


@pytest.mark.kernel_choice
@pytest.mark.parametrize("activation,dtype", [("silu", np.float32), ("gelu", np.float64)])
@pytest.mark.parametrize("training", [True, False])
def test_pipelined_backward_keeps_the_gate(rng, dtype, activation, training, monkeypatch):
    """The pipelined backward with an activation taken through L1 tiles from bias= (its
    gate kept in dx between the passes, pass 1 of one channel alternating with dx of the
    previous): bitwise the composed path (the activation's own backward at the
    recomputed pre-activation, then BatchNorm's), for 1, 2 and 3 threads and an
    unaligned out.  The shape comes from the planner's cache sizes (dx being a third
    array in cache), so the kernel is reached on any CPU."""
    if cyrelu._parallel.openmp_version() == 0:
        pytest.skip("serial build")
    if cyrelu._parallel.build_info()["isa"] == "baseline":
        pytest.skip("the pipelined backward runs with the AVX2 / AVX-512 kernels")
    from cyrelu import _batchnorm, batchnorm as bn_module

    shape = pipelined_shape(np.dtype(dtype).itemsize, True)
    outer, C = shape[0], shape[1]
    inner = shape[2] * shape[3]
    x = (rng.standard_normal(shape) * 2 + 5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    _, m, s = batch_norm(x, None, None, w, b, True, return_stats=True)
    for nt in (1, 2, 3):
        assert _batchnorm.backward_pipelined(x, outer, C, inner, True, nt), shape
    kw = dict(training=training, activation=activation, bias=b)
    with monkeypatch.context() as mp:
        mp.setattr(bn_module, "_gated", lambda *a, **k: pytest.fail("composed"))
        res = _pipelined_runs(
            lambda dx, nt: batch_norm_backward(dy, x, m, s, w, out=dx, num_threads=nt, **kw), x
        )
    gated = bn_module._gated(activation, (), dy, x, m, s, w, b, None, 1, None)
    want = batch_norm_backward(gated, x, m, s, w, training=training)
    for got in res:
        for a, b_ in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b_)


def test_running_stats_any_stride(rng):
    """Strided running_mean/running_var views are read and updated in place, in training
    and in evaluation, as contiguous ones are."""
    x = rng.standard_normal((6, 4, 5)).astype(np.float32)
    for dtype in (np.float32, np.float64):
        rm_c = rng.standard_normal(4).astype(dtype)
        rv_c = (rng.random(4) + 0.5).astype(dtype)
        base_m = np.zeros(8, dtype)
        base_v = np.zeros(12, dtype)
        rm_s, rv_s = base_m[::2], base_v[::3]
        rm_s[...] = rm_c
        rv_s[...] = rv_c
        erm, erv = ref_forward(x, rm_c, rv_c, training=True, momentum=0.3)[3:5]
        batch_norm(x, rm_s, rv_s, training=True, momentum=0.3)
        np.testing.assert_allclose(rm_s, erm, rtol=1e-6)
        np.testing.assert_allclose(rv_s, erv, rtol=1e-6)
        assert not base_m[1::2].any() and not base_v[1::3].any()  # nothing between touched
        y = batch_norm(x, rm_s, rv_s, training=False)
        np.testing.assert_allclose(y, ref_forward(x, rm_s, rv_s)[0], rtol=1e-5, atol=1e-5)
