"""float16 BatchNorm: computed natively (no whole-array conversion), and bitwise what the
float32 path gives on the float32-converted inputs, rounded once to float16.

The float32 path is the independent oracle here: every output (y, grad_input), every
float32 statistic (save_mean, save_invstd, the running statistics, grad_weight,
grad_bias) must match it bit for bit, for both loop shapes, every fused activation,
in place and not, for any thread count; test_batchnorm.py compares float16 with the
float64 reference and checks the instruction-set copies."""

import numpy as np
import pytest

import cyrelu
from cyrelu import batch_norm, batch_norm_backward

from conftest import requires_torch, torch

F16, F32 = np.float16, np.float32


def _same(actual, expected):
    """The same dtype, shape and bits (NaN where NaN, whatever its payload)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan = np.isnan(actual)
    np.testing.assert_array_equal(nan, np.isnan(expected))
    ui = {2: np.uint16, 4: np.uint32, 8: np.uint64}[actual.dtype.itemsize]
    a = np.ascontiguousarray(actual).view(ui)
    e = np.ascontiguousarray(expected).view(ui)
    bad = (a != e) & ~nan
    assert not bad.any(), "%d of %d elements differ, first at %s: %r vs %r" % (
        bad.sum(),
        bad.size,
        np.argwhere(bad)[0],
        actual[tuple(np.argwhere(bad)[0])],
        expected[tuple(np.argwhere(bad)[0])],
    )


def _r16(a):
    """float32 results rounded once to float16 (overflow to inf is expected)."""
    with np.errstate(over="ignore"):
        return a.astype(F16)


def _data(rng, shape, scale=2.0, shift=1.0):
    return (rng.standard_normal(shape) * scale + shift).astype(F16)


# per-channel layout (inner >= 32) and row layout, odd sizes; rows longer than a tile,
# slabs reduced in chunks, wide rows cut into column tiles, several row groups
SHAPES = [
    ((3, 5, 37), 1),  # per channel, inner 37: one lane group + tail
    ((2, 3, 7, 11), 1),  # per channel, inner 77
    ((5, 2, 1100), 1),  # per channel, rows of several tiles
    ((700, 2, 400), 1),  # per channel, statistics in chunks of rows
    # per channel, rows over 8 KiB (read paced, the next row prefetched piece by piece),
    # not a whole number of pieces or lane groups; then in chunks too
    ((5, 2, 6151), 1),
    ((45, 2, 6151), 1),
    ((7, 5), 1),  # rows, w = 5
    ((9, 4, 5, 3), 1),  # rows, inner = 15
    ((13, 6, 7, 3), -1),  # channels-last
    ((33, 300), 1),  # rows, w = 300: column tiles
    ((6, 1500), 1),  # rows, w = 1500: rows cut in pieces
    ((3, 2, 2500), -1),  # rows, w = 2500, few rows
    ((20000, 3), 1),  # rows, several groups and blocks
    ((30001, 3, 2), 1),  # rows, inner 2, odd row count
]


def _forward_pair(
    x16, w, b, training, axis, act, alpha=0.2, momentum=0.1, num_threads=2, running=True, rng=None
):
    C = x16.shape[axis]
    if running:
        rm = (rng.standard_normal(C) * 0.1).astype(F32)
        rv = (rng.random(C) + 0.5).astype(F32)
    else:
        rm = rv = None
    rm16, rv16 = (None, None) if rm is None else (rm.copy(), rv.copy())
    rm32, rv32 = (None, None) if rm is None else (rm.copy(), rv.copy())
    got = batch_norm(
        x16,
        rm16,
        rv16,
        w,
        b,
        training,
        momentum,
        axis=axis,
        activation=act,
        alpha=alpha,
        return_stats=True,
        num_threads=num_threads,
    )
    ref = batch_norm(
        x16.astype(F32),
        rm32,
        rv32,
        w,
        b,
        training,
        momentum,
        axis=axis,
        activation=act,
        alpha=alpha,
        return_stats=True,
        num_threads=num_threads,
    )
    return got, ref, (rm16, rv16), (rm32, rv32)


@pytest.mark.parametrize("shape,axis", SHAPES)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu"])
def test_forward_backward_bitwise_float32_rounded(rng, shape, axis, activation):
    C = shape[axis]
    x16 = _data(rng, shape)
    dy16 = rng.standard_normal(shape).astype(F16)
    w = rng.standard_normal(C).astype(F32)
    b = rng.standard_normal(C).astype(F32)
    for training in (True, False):
        got, ref, run16, run32 = _forward_pair(x16, w, b, training, axis, activation, rng=rng)
        y16, m16, s16 = got
        assert y16.dtype == F16 and m16.dtype == F32 and s16.dtype == F32
        _same(y16, _r16(ref[0]))
        _same(m16, ref[1])
        _same(s16, ref[2])
        _same(run16[0], run32[0])
        _same(run16[1], run32[1])
        y = y16 if activation is not None else None
        for bw_training in (True, False):
            gi, gw, gb = batch_norm_backward(
                dy16,
                x16,
                m16,
                s16,
                w,
                training=bw_training,
                axis=axis,
                activation=activation,
                output=y,
                num_threads=2,
            )
            ri, rw, rb = batch_norm_backward(
                dy16.astype(F32),
                x16.astype(F32),
                m16,
                s16,
                w,
                training=bw_training,
                axis=axis,
                activation=activation,
                output=None if y is None else y.astype(F32),
                num_threads=2,
            )
            assert gi.dtype == F16 and gw.dtype == F32 and gb.dtype == F32
            _same(gi, _r16(ri))
            _same(gw, rw)
            _same(gb, rb)


@pytest.mark.parametrize("shape,axis", [((4, 3, 40), 1), ((9, 4, 5, 3), 1), ((6, 1500), 1)])
def test_backward_param_dtypes(rng, shape, axis):
    """grad_weight / grad_bias: weight's dtype, float32 without a weight."""
    C = shape[axis]
    x16, dy16 = _data(rng, shape), rng.standard_normal(shape).astype(F16)
    _y, m, s = batch_norm(x16, training=True, axis=axis, return_stats=True)
    for w, dt in ((None, F32), (np.ones(C, F32), F32), (np.ones(C, np.float64), np.float64)):
        gi, gw, gb = batch_norm_backward(dy16, x16, m, s, w, axis=axis)
        ri, rw, rb = batch_norm_backward(dy16.astype(F32), x16.astype(F32), m, s, w, axis=axis)
        assert gw.dtype == dt and gb.dtype == dt
        _same(gi, _r16(ri))
        _same(gw, rw)
        _same(gb, rb)


@pytest.mark.parametrize(
    "shape,axis",
    [((4, 3, 40), 1), ((5, 2, 1100), 1), ((9, 4, 5, 3), 1), ((13, 6, 7, 3), -1), ((6, 1500), 1)],
)
def test_in_place_and_out(rng, shape, axis):
    C = shape[axis]
    x16 = _data(rng, shape)
    dy16 = rng.standard_normal(shape).astype(F16)
    w = rng.standard_normal(C).astype(F32)
    b = rng.standard_normal(C).astype(F32)
    ref_y, m, s = batch_norm(
        x16.astype(F32),
        None,
        None,
        w,
        b,
        True,
        axis=axis,
        activation="leaky_relu",
        alpha=0.1,
        return_stats=True,
    )
    # out=x: in place
    xi = x16.copy()
    y = batch_norm(
        xi, None, None, w, b, True, axis=axis, activation="leaky_relu", alpha=0.1, out=xi
    )
    assert y is xi
    _same(y, _r16(ref_y))
    # a separate out, at an odd address (not 64-byte aligned)
    buf = np.empty(x16.size + 3, F16)
    out = buf[3:].reshape(shape)
    assert (
        batch_norm(
            x16, None, None, w, b, True, axis=axis, activation="leaky_relu", alpha=0.1, out=out
        )
        is out
    )
    _same(out, _r16(ref_y))
    # backward into dy (out=grad_output) and into an unaligned out
    ri = batch_norm_backward(dy16.astype(F32), x16.astype(F32), m, s, w, axis=axis)[0]
    g = dy16.copy()
    gi = batch_norm_backward(g, x16, m, s, w, axis=axis, out=g)[0]
    assert gi is g
    _same(gi, _r16(ri))
    gi = batch_norm_backward(dy16, x16, m, s, w, axis=axis, out=out)[0]
    assert gi is out
    _same(gi, _r16(ri))


@pytest.mark.parametrize("kind", ["slice", "transpose", "fortran"])
def test_non_contiguous(rng, kind):
    base = _data(rng, (6, 8, 9, 40))
    dbase = rng.standard_normal(base.shape).astype(F16)
    if kind == "slice":
        x16, dy16, axis = base[:, ::2], dbase[:, ::2], 1
    elif kind == "transpose":  # channels-last data seen as NCHW
        x16, dy16, axis = base.transpose(0, 3, 1, 2), dbase.transpose(0, 3, 1, 2), 1
    else:
        x16, dy16, axis = np.asfortranarray(base), np.asfortranarray(dbase), 1
    assert not x16.flags.c_contiguous
    C = x16.shape[axis]
    w = rng.standard_normal(C).astype(F32)
    y, m, s = batch_norm(
        x16, None, None, w, None, True, axis=axis, activation="relu", return_stats=True
    )
    ry, rm, rs = batch_norm(
        x16.astype(F32), None, None, w, None, True, axis=axis, activation="relu", return_stats=True
    )
    _same(y, _r16(ry))
    _same(m, rm)
    _same(s, rs)
    g = batch_norm_backward(dy16, x16, m, s, w, axis=axis, activation="relu", output=y)
    r = batch_norm_backward(
        dy16.astype(F32),
        x16.astype(F32),
        m,
        s,
        w,
        axis=axis,
        activation="relu",
        output=y.astype(F32),
    )
    _same(g[0], _r16(r[0]))
    _same(g[1], r[1])
    _same(g[2], r[2])


@pytest.mark.parametrize("shape,axis", [((4, 6, 50), 1), ((40, 6), 1), ((5, 7, 6), -1)])
def test_special_values(rng, shape, axis):
    """NaN, +-inf, subnormals, -0.0 and values near the float16 maximum (outputs that
    overflow to inf, subnormal outputs): still bitwise the float32 path rounded."""
    C = shape[axis]
    x16 = _data(rng, shape)
    xm = np.moveaxis(x16, axis, 0)  # a view: channel first
    xm[0].flat[3] = np.nan
    xm[1].flat[5] = np.inf
    xm[2].flat[:] = (rng.standard_normal(xm[2].size) * 3e-6).astype(F16).reshape(xm[2].shape)
    xm[2].flat[1] = -0.0
    xm[3].flat[0] = 6e4  # one huge value: its normalised output is moderate...
    xm[4].flat[:] = 0.0  # constant channel: zero variance
    xm[5].flat[::2] = F16(2.0**-24)  # the smallest subnormal
    w = np.array([1, 1, 1, 3e4, 1, 7e4][:C], F32)  # ...scaled past float16's range
    b = np.array([0, 0, 1e-7, 0, -0.0, 0][:C], F32)
    dy16 = rng.standard_normal(shape).astype(F16)
    np.moveaxis(dy16, axis, 0)[2].flat[:4] = F16(6e-8)
    for act in (None, "relu", "leaky_relu"):
        for training in (True, False):
            rm = np.zeros(C, F32)
            rv = np.ones(C, F32)
            y, m, s = batch_norm(
                x16,
                rm.copy(),
                rv.copy(),
                w,
                b,
                training,
                axis=axis,
                activation=act,
                return_stats=True,
            )
            ry, rmean, rs = batch_norm(
                x16.astype(F32),
                rm.copy(),
                rv.copy(),
                w,
                b,
                training,
                axis=axis,
                activation=act,
                return_stats=True,
            )
            _same(y, _r16(ry))
            _same(m, rmean)
            _same(s, rs)
            out = y if act is not None else None
            for bt in (True, False):
                g = batch_norm_backward(
                    dy16, x16, m, s, w, training=bt, axis=axis, activation=act, output=out
                )
                r = batch_norm_backward(
                    dy16.astype(F32),
                    x16.astype(F32),
                    m,
                    s,
                    w,
                    training=bt,
                    axis=axis,
                    activation=act,
                    output=None if out is None else out.astype(F32),
                )
                _same(g[0], _r16(r[0]))
                _same(g[1], r[1])
                _same(g[2], r[2])
    assert np.isinf(y).any() or np.isnan(y).any()


@pytest.mark.parametrize(
    "shape,axis",
    [
        ((8, 16, 32, 32), 1),
        ((8, 32, 32, 16), -1),
        ((1024, 96), 1),
        ((40000, 4), 1),
        ((30000, 3, 2), 1),
        ((4, 8, 64, 200), 1),
    ],
)
def test_thread_counts_bitwise_identical(rng, shape, axis):
    if cyrelu._parallel.openmp_version() == 0:
        pytest.skip("serial build")
    C = shape[axis]
    x16 = _data(rng, shape, shift=3.0)
    dy16 = rng.standard_normal(shape).astype(F16)
    w = rng.standard_normal(C).astype(F32)
    b = rng.standard_normal(C).astype(F32)
    res = []
    for nt in (1, 2, 3):
        rm, rv = np.zeros(C, F32), np.ones(C, F32)
        y, m, s = batch_norm(
            x16,
            rm,
            rv,
            w,
            b,
            True,
            axis=axis,
            activation="relu",
            return_stats=True,
            num_threads=nt,
        )
        ye = batch_norm(x16, rm, rv, w, b, False, axis=axis, num_threads=nt)
        g = batch_norm_backward(
            dy16, x16, m, s, w, axis=axis, activation="relu", output=y, num_threads=nt
        )
        res.append((y, m, s, rm, rv, ye, *g))
    for other in res[1:]:
        for a, b_ in zip(res[0], other, strict=True):
            _same(a, b_)
    # and that is the float32 path, rounded
    rm, rv = np.zeros(C, F32), np.ones(C, F32)
    ry = batch_norm(
        x16.astype(F32), rm, rv, w, b, True, axis=axis, activation="relu", num_threads=3
    )
    _same(res[0][0], _r16(ry))
    _same(res[0][3], rm)


def test_large_streamed_outputs(rng):
    """Outputs large enough to stream (per-channel layout, several MiB per thread), at an
    unaligned address too: the same bits as the float32 path, for 1 and 2 threads."""
    shape = (16, 8, 128, 130)
    x16 = _data(rng, shape)
    dy16 = rng.standard_normal(shape).astype(F16)
    w = rng.standard_normal(8).astype(F32)
    b = rng.standard_normal(8).astype(F32)
    ry, m, s = batch_norm(x16.astype(F32), None, None, w, b, True, return_stats=True)
    rg = batch_norm_backward(dy16.astype(F32), x16.astype(F32), m, s, w)
    rm, rv = np.zeros(8, F32), np.ones(8, F32)
    re = batch_norm(x16.astype(F32), rm, rv, w, b, False)
    for nt, offset in ((1, 0), (2, 0), (2, 1)):
        buf = np.empty(x16.size + 1, F16)
        out = buf[offset : offset + x16.size].reshape(shape)
        batch_norm(x16, None, None, w, b, True, out=out, num_threads=nt)
        _same(out, _r16(ry))
        batch_norm(x16, rm, rv, w, b, False, out=out, num_threads=nt)
        _same(out, _r16(re))
        gi, gw, gb = batch_norm_backward(dy16, x16, m, s, w, out=out, num_threads=nt)
        _same(gi, _r16(rg[0]))
        _same(gw, rg[1])
        _same(gb, rg[2])


def test_no_whole_array_conversion(rng, monkeypatch):
    """The float16 path converts no array to float32 in Python (the kernels convert
    tiles): ndarray.astype is not reachable from the wrappers' float16 path."""
    import cyrelu.batchnorm as bn

    x16 = _data(rng, (4, 3, 40))
    dy16 = rng.standard_normal(x16.shape).astype(F16)
    calls = []
    real = np.ndarray.astype

    class Spy(np.ndarray):
        def astype(self, dtype, *a, **k):  # pragma: no cover - only on failure
            calls.append(np.dtype(dtype))
            return real(self, dtype, *a, **k)

    xs, dys = x16.view(Spy), dy16.view(Spy)
    monkeypatch.setattr(bn, "as_float_array", lambda a, name: a)
    _y, m, s = batch_norm(xs, None, None, None, None, True, return_stats=True)
    batch_norm_backward(dys, xs, m, s, None)
    assert calls == []


@requires_torch
@pytest.mark.parametrize("shape,axis", [((4, 6, 50), 1), ((64, 12), 1), ((3, 5, 4, 6), 1)])
@pytest.mark.parametrize("training", [True, False])
def test_against_torch_float16(rng, shape, axis, training):
    """PyTorch's float16 batch_norm on CPU (it accumulates in float too): close."""
    C = shape[axis]
    x16 = _data(rng, shape)
    w = rng.standard_normal(C).astype(F32)
    b = rng.standard_normal(C).astype(F32)
    rm = (rng.standard_normal(C) * 0.1).astype(F32)
    rv = (rng.random(C) + 0.5).astype(F32)
    y = batch_norm(x16, rm.copy(), rv.copy(), w, b, training, axis=axis)
    try:
        yt = torch.nn.functional.batch_norm(
            torch.from_numpy(x16),
            torch.from_numpy(rm.copy()),
            torch.from_numpy(rv.copy()),
            torch.from_numpy(w),
            torch.from_numpy(b),
            training,
        ).numpy()
    except RuntimeError as e:  # pragma: no cover - depends on the torch build
        pytest.skip("torch float16 batch_norm on CPU: %s" % e)
    np.testing.assert_allclose(y.astype(F32), yt.astype(F32), rtol=2e-3, atol=4e-3)
