"""Unaligned arrays (C-contiguous views at an odd byte offset) as every array argument:
the kernels only ever see aligned memory (copies in, aligned temporaries out), and
the results are the same bits as with aligned arrays.  The sanitizer stage of .ci/run
runs these under UBSan, which reports any misaligned load or store."""

import numpy as np
import pytest

import cyrelu

DTYPES = [np.float16, np.float32, np.float64]


def unaligned(a):
    """A C-contiguous copy of ``a`` at byte offset 1 of a uint8 buffer: not aligned."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + a.itemsize, dtype=np.uint8)
    u = np.ndarray(a.shape, dtype=a.dtype, buffer=buf, offset=1)
    u[...] = a
    assert u.flags.c_contiguous and (a.itemsize == 1 or not u.flags.aligned)
    return u


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1000,), (70_001,), (37, 45)])
def test_activations_unaligned_every_argument(rng, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    cases = [
        (lambda x, g, out: cyrelu.relu(x, out=out), 1),
        (lambda x, g, out: cyrelu.leaky_relu(x, 0.3, out=out), 1),
        (lambda x, g, out: cyrelu.relu_backward(g, x, out=out), 2),
        (lambda x, g, out: cyrelu.leaky_relu_backward(g, x, 0.3, out=out), 2),
    ]
    for f, nargs in cases:
        want = f(x, g, None)
        same(f(unaligned(x), g, None), want)
        same(f(x, unaligned(g), None), want)
        out = unaligned(np.zeros(shape, dtype))
        assert f(x, g, out) is out
        same(out, want)
        if nargs == 1:  # in place, on unaligned memory
            xu = unaligned(x)
            assert f(xu, g, xu) is xu
            same(xu, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_diagnostics_unaligned(rng, dtype):
    x = np.maximum(rng.standard_normal((64, 8, 33)), 0).astype(dtype)
    x[:, 3] = 0
    assert (cyrelu.dead_units(unaligned(x)) == cyrelu.dead_units(x)).all()
    assert cyrelu.sparsity(unaligned(x)) == cyrelu.sparsity(x)
    assert (cyrelu.sparsity(unaligned(x), axis=1) == cyrelu.sparsity(x, axis=1)).all()
    w = rng.standard_normal((8, 5)).astype(dtype)
    args = [
        w,
        rng.standard_normal(8),
        rng.standard_normal(8),
        rng.random(8) + 0.5,
        rng.standard_normal(8),
        rng.standard_normal(8),
    ]
    want = cyrelu.fold_batch_norm(*args)
    for i in range(len(args)):
        got = cyrelu.fold_batch_norm(*[unaligned(a) if j == i else a for j, a in enumerate(args)])
        same(got[0], want[0])
        same(got[1], want[1])


# Both statistics loop shapes: per channel (inner >= 32) and per row (inner < 32).
BN_SHAPES = [(16, 6, 40), (200, 7)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pdtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_unaligned_every_argument(rng, dtype, pdtype, shape, training):
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    rm0 = rng.standard_normal(C).astype(pdtype)
    rv0 = (rng.random(C) + 0.5).astype(pdtype)
    w = rng.standard_normal(C).astype(pdtype)
    b = rng.standard_normal(C).astype(pdtype)

    def run(x, rm, rv, w, b, out=None):
        return cyrelu.batch_norm(
            x, rm, rv, w, b, training, 0.1, 1e-5, out=out, activation="relu", return_stats=True
        )

    rm_want, rv_want = rm0.copy(), rv0.copy()
    y_want, m_want, s_want = run(x, rm_want, rv_want, w, b)
    names = ["x", "running_mean", "running_var", "weight", "bias", "out"]
    for k, name in enumerate(names):
        args = [x, rm0.copy(), rv0.copy(), w, b, None]
        if name == "out":
            args[5] = unaligned(np.zeros(shape, dtype))
        else:
            args[k] = unaligned(args[k])
        y, m, s = run(*args)
        same(y, y_want)
        same(m, m_want)
        same(s, s_want)
        if name == "out":
            assert y is args[5]
        # the (possibly unaligned) running statistics received their update
        same(args[1], rm_want)
        same(args[2], rv_want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_unaligned_every_argument(rng, dtype, shape, training):
    C = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(np.float32)
    y, m, s = cyrelu.batch_norm(
        x, None, None, w, None, True, activation="leaky_relu", alpha=0.1, return_stats=True
    )
    dy = rng.standard_normal(shape).astype(dtype)

    def run(dy, x, m, s, w, y, out=None):
        return cyrelu.batch_norm_backward(
            dy,
            x,
            m,
            s,
            w,
            training=training,
            activation="leaky_relu",
            alpha=0.1,
            output=y,
            out=out,
        )

    want = run(dy, x, m, s, w, y)
    base = [dy, x, m, s, w, y]
    for k in range(len(base) + 1):
        args = [*base, None]
        if k == len(base):
            args[k] = unaligned(np.zeros(shape, dtype))
        else:
            args[k] = unaligned(args[k])
        got = run(*args)
        for a, b in zip(got, want, strict=True):
            same(a, b)
        if k == len(base):
            assert got[0] is args[k]


def test_nn_batchnorm_with_unaligned_input(rng):
    layer = cyrelu.nn.BatchNorm(5)
    ref = cyrelu.nn.BatchNorm(5)
    x = rng.standard_normal((30, 5, 3)).astype(np.float32)
    same(layer(unaligned(x)), ref(x))
    g = rng.standard_normal(x.shape).astype(np.float32)
    same(layer.backward(unaligned(g)), ref.backward(g))
    same(layer.running_var, ref.running_var)
