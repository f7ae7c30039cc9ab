"""BatchNorm with every activation of the table (issue: the ReLU family fused into
BatchNorm): the forward applies each, with its parameters (``alpha``,
``activation_params``), and the backward differentiates through it from the
pre-activation recomputed with ``bias=`` or, where it can, from ``output=``.  Checked
against float64 references written here (BatchNorm and each activation's formula and
derivative), on several layouts and dtypes, in training and evaluation."""

import math

import numpy as np
import pytest

import cyrelu
from cyrelu import _activation_table as table

F64 = np.float64
_ERF = np.vectorize(math.erf)
_SELU_A = 1.6732632423543772848170429916717
_SELU_S = 1.0507009873554804934193349852946
_GT_C = math.sqrt(2.0 / math.pi)


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus(z):
    return np.logaddexp(0.0, z)


# name -> (forward, derivative), float64, with the activation's parameters p (a dict)
REF = {
    "relu": (lambda z, p: np.maximum(z, 0), lambda z, p: (z > 0) * 1.0),
    "leaky_relu": (
        lambda z, p: np.where(z > 0, z, p["alpha"] * z),
        lambda z, p: np.where(z > 0, 1.0, p["alpha"]),
    ),
    "relu6": (lambda z, p: np.clip(z, 0, 6), lambda z, p: ((z > 0) & (z < 6)) * 1.0),
    "hardtanh": (
        lambda z, p: np.clip(z, p["min_val"], p["max_val"]),
        lambda z, p: ((z > p["min_val"]) & (z < p["max_val"])) * 1.0,
    ),
    "hardsigmoid": (
        lambda z, p: np.clip(z / 6 + 0.5, 0, 1),
        lambda z, p: np.where((z > -3) & (z < 3), 1 / 6, 0.0),
    ),
    "hardswish": (
        lambda z, p: z * np.clip(z + 3, 0, 6) / 6,
        lambda z, p: np.where(z < -3, 0.0, np.where(z > 3, 1.0, z / 3 + 0.5)),
    ),
    "elu": (
        lambda z, p: np.where(z > 0, z, p["alpha"] * np.expm1(z)),
        lambda z, p: np.where(z > 0, 1.0, p["alpha"] * np.exp(z)),
    ),
    "celu": (
        lambda z, p: np.where(z > 0, z, p["alpha"] * np.expm1(z / p["alpha"])),
        lambda z, p: np.where(z > 0, 1.0, np.exp(z / p["alpha"])),
    ),
    "selu": (
        lambda z, p: _SELU_S * np.where(z > 0, z, _SELU_A * np.expm1(z)),
        lambda z, p: _SELU_S * np.where(z > 0, 1.0, _SELU_A * np.exp(z)),
    ),
    "silu": (lambda z, p: z * _sig(z), lambda z, p: _sig(z) * (1 + z * (1 - _sig(z)))),
    "softplus": (
        lambda z, p: np.where(
            p["beta"] * z > p["threshold"], z, _softplus(p["beta"] * z) / p["beta"]
        ),
        lambda z, p: np.where(p["beta"] * z > p["threshold"], 1.0, _sig(p["beta"] * z)),
    ),
    "gelu": (
        lambda z, p: (
            0.5 * z * (1 + _ERF(z / math.sqrt(2)))
            if p["approximate"] == "none"
            else 0.5 * z * (1 + np.tanh(_GT_C * (z + 0.044715 * z**3)))
        ),
        lambda z, p: (
            0.5 * (1 + _ERF(z / math.sqrt(2))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            if p["approximate"] == "none"
            else 0.5 * (1 + np.tanh(_GT_C * (z + 0.044715 * z**3)))
            + 0.5
            * z
            * (1 - np.tanh(_GT_C * (z + 0.044715 * z**3)) ** 2)
            * _GT_C
            * (1 + 3 * 0.044715 * z * z)
        ),
    ),
    "mish": (
        lambda z, p: z * np.tanh(_softplus(z)),
        lambda z, p: np.tanh(_softplus(z)) + z * _sig(z) * (1 - np.tanh(_softplus(z)) ** 2),
    ),
}

# (name, alpha, activation_params): every activation, non-default parameters where it has them
CASES = [
    ("relu", None, None),
    ("leaky_relu", 0.1, None),
    ("relu6", None, None),
    ("hardtanh", None, {"min_val": -0.5, "max_val": 0.75}),
    ("hardsigmoid", None, None),
    ("hardswish", None, None),
    ("elu", 0.7, None),
    ("celu", None, {"alpha": 1.5}),
    ("selu", None, None),
    ("silu", None, None),
    ("softplus", None, {"beta": 2.0, "threshold": 3.0}),
    ("gelu", None, None),
    ("gelu", None, {"approximate": "tanh"}),
    ("mish", None, None),
]
LAYOUTS = [((48, 5), 1), ((6, 5, 40), 1), ((6, 40, 5), -1)]
TOL = {np.float16: 4e-3, np.float32: 2e-5, np.float64: 1e-10}


def test_cases_cover_every_activation():
    assert {c[0] for c in CASES} == set(table.TABLE) == set(REF)


def _params(name, alpha, ap):
    """The full parameter dict the reference takes (defaults filled in)."""
    p = {n: d for n, d, _ in table.TABLE[name].params}
    p.update(ap or {})
    if alpha is not None:
        p["alpha"] = alpha
    return p


def _data(shape, axis, dtype, seed=11):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype)
    C = shape[axis]
    pd = np.float64 if dtype == np.float64 else np.float32
    w = rng.uniform(0.5, 2.5, C).astype(pd)
    b = rng.uniform(-1.5, 1.5, C).astype(pd)
    rm = rng.standard_normal(C).astype(pd)
    rv = rng.uniform(0.5, 2, C).astype(pd)
    g = rng.standard_normal(shape).astype(dtype)
    return x, w, b, rm, rv, g


def _bshape(ndim, axis, C):
    s = [1] * ndim
    s[axis % ndim] = C
    return s


def _ref_preact(x, mean, invstd, w, b, axis):
    bs = _bshape(x.ndim, axis, len(w))
    xh = (x.astype(F64) - np.asarray(mean, F64).reshape(bs)) * np.asarray(invstd, F64).reshape(bs)
    return xh, xh * np.asarray(w, F64).reshape(bs) + np.asarray(b, F64).reshape(bs)


def _ref_backward(gz, xh, invstd, w, axis, training):
    ax = axis % xh.ndim
    red = tuple(d for d in range(xh.ndim) if d != ax)
    bs = _bshape(xh.ndim, axis, len(w))
    n = xh.size // len(w)
    gb = gz.sum(axis=red)
    gw = (gz * xh).sum(axis=red)
    k = (np.asarray(w, F64) * np.asarray(invstd, F64)).reshape(bs)
    if training:
        return k * (gz - (gb / n).reshape(bs) - xh * (gw / n).reshape(bs)), gw, gb
    return k * gz, gw, gb


def _close(actual, want, tol):
    np.testing.assert_allclose(np.asarray(actual, F64), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", LAYOUTS)
@pytest.mark.parametrize("name,alpha,ap", CASES)
def test_forward_applies_every_activation(name, alpha, ap, shape, axis, dtype, training):
    x, w, b, rm, rv, _ = _data(shape, axis, dtype)
    rm1, rv1 = rm.copy(), rv.copy()
    y, mean, _ = cyrelu.batch_norm(
        x, rm1, rv1, w, b, training, axis=axis, activation=name, alpha=alpha,
        activation_params=ap, return_stats=True,
    )  # fmt: skip
    assert y.dtype == x.dtype and y.shape == x.shape
    ax = axis % x.ndim
    red = tuple(d for d in range(x.ndim) if d != ax)
    if training:
        m64, v64 = x.astype(F64).mean(axis=red), x.astype(F64).var(axis=red)
        _close(mean, m64, TOL[dtype])
        n = x.size // x.shape[ax]
        _close(rv1, 0.9 * rv + 0.1 * v64 * n / (n - 1), 1e-4 if dtype != np.float64 else 1e-10)
    else:
        m64, v64 = rm, rv
    _, z = _ref_preact(x, m64, 1 / np.sqrt(np.asarray(v64, F64) + 1e-5), w, b, axis)
    if name not in table.BN_FORWARD:  # applied to the normalised output, in x's dtype
        z = z.astype(dtype).astype(F64)
    want = REF[name][0](z, _params(name, alpha, ap))
    _close(y, want, TOL[dtype])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", LAYOUTS)
@pytest.mark.parametrize("name,alpha,ap", CASES)
def test_backward_through_every_activation(name, alpha, ap, shape, axis, dtype, training):
    x, w, b, rm, rv, g = _data(shape, axis, dtype)
    y, mean, invstd = cyrelu.batch_norm(
        x, rm, rv, w, b, training, axis=axis, activation=name, alpha=alpha,
        activation_params=ap, return_stats=True,
    )  # fmt: skip
    xh, z = _ref_preact(x, mean, invstd, w, b, axis)
    gz = g.astype(F64) * REF[name][1](z, _params(name, alpha, ap))
    want = _ref_backward(gz, xh, invstd, w, axis, training)
    kw = dict(training=training, axis=axis, activation=name, alpha=alpha, activation_params=ap)
    sources = [{"bias": b}]
    if name in ("relu", "leaky_relu", "relu6", "hardtanh", "elu", "celu", "selu"):
        sources.append({"output": y})  # the derivative read from the output
    tol = {np.float16: 3e-2, np.float32: 2e-4, np.float64: 1e-9}[dtype]
    for src in sources:
        got = cyrelu.batch_norm_backward(g, x, mean, invstd, w, **kw, **src)
        assert got[0].dtype == x.dtype
        for a, r in zip(got, want, strict=True):
            scale = max(1.0, float(np.abs(r).max()))
            np.testing.assert_allclose(np.asarray(a, F64), r, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", ["hardsigmoid", "hardswish", "silu", "softplus", "gelu", "mish"])
def test_backward_needs_bias_where_output_cannot_serve(name):
    x, w, b, *_ = _data((8, 3, 5), 1, np.float32)
    y, m, s = cyrelu.batch_norm(x, None, None, w, b, True, activation=name, return_stats=True)
    with pytest.raises(ValueError, match="needs bias="):
        cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, output=y)
    with pytest.raises(ValueError, match=r"output=.*or bias="):
        cyrelu.batch_norm_backward(x, x, m, s, w, activation=name)
    cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, bias=b)  # works


def test_output_rules_of_leaky_relu_and_elu():
    """leaky_relu and elu read their derivative from the output only with alpha > 0
    (else the output's sign is not the input's); bias= serves for any alpha."""
    x, w, b, *_ = _data((8, 3, 5), 1, np.float32)
    for name in ("leaky_relu", "elu"):
        y, m, s = cyrelu.batch_norm(
            x, None, None, w, b, True, activation=name, alpha=-0.5, return_stats=True
        )
        with pytest.raises(ValueError, match="alpha > 0"):
            cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, alpha=-0.5, output=y)
        cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, alpha=-0.5, bias=b)


def test_parameter_errors_change_nothing():
    x, w, b, rm, rv, _ = _data((8, 3, 5), 1, np.float32)
    out = np.full_like(x, 7.0)
    rm0, rv0 = rm.copy(), rv.copy()
    bad = [
        (dict(activation="hardtanh", activation_params={"min_val": 2.0, "max_val": 1.0}),
         ValueError, "min_val"),
        (dict(activation="gelu", activation_params={"approximate": "fast"}), ValueError,
         "approximate"),
        (dict(activation="softplus", activation_params={"beta": 0.0}), ValueError, "beta"),
        (dict(activation="softplus", activation_params={"gamma": 1.0}), ValueError,
         "no parameter 'gamma'"),
        (dict(activation="elu", alpha=1.0, activation_params={"alpha": 2.0}), ValueError,
         "twice"),
        (dict(activation=None, activation_params={"alpha": 2.0}), ValueError,
         "without an activation"),
        (dict(activation="gelu", activation_params=["tanh"]), TypeError, "mapping"),
        (dict(activation="hardtanh", activation_params={"min_val": None}), TypeError,
         "min_val"),
        (dict(activation="celu", alpha="1"), TypeError, "alpha"),
        (dict(activation="swish"), ValueError, "activation"),
        (dict(activation=["relu"]), ValueError, "activation"),
    ]  # fmt: skip
    for kw, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            cyrelu.batch_norm(x, rm, rv, w, b, True, out=out, **kw)
        np.testing.assert_array_equal(out, 7.0)
        np.testing.assert_array_equal(rm, rm0)
        np.testing.assert_array_equal(rv, rv0)
        with pytest.raises(exc, match=msg):
            cyrelu.batch_norm_backward(x, x, rm, 1 / np.sqrt(rv), w, bias=b, out=out, **kw)
        np.testing.assert_array_equal(out, 7.0)
    with pytest.raises(ValueError, match="bias"):
        cyrelu.batch_norm_backward(x, x, rm, rv, w, activation="gelu", bias=b[:2])
    with pytest.raises(ValueError, match="bias"):  # checked where output serves, too
        cyrelu.batch_norm_backward(x, x, rm, rv, w, activation="relu", output=x, bias=b[:2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_in_place_and_strided(dtype):
    """out= (also x itself) and non-contiguous input, with an activation applied after
    the normalisation and with the backward's gate."""
    x, w, b, rm, rv, g = _data((6, 40, 5), -1, dtype)
    kw = dict(axis=-1, activation="gelu", activation_params={"approximate": "tanh"})
    want = cyrelu.batch_norm(x, rm, rv, w, b, **kw)
    xc = x.copy()
    assert cyrelu.batch_norm(xc, rm, rv, w, b, out=xc, **kw) is xc
    np.testing.assert_array_equal(xc, want)
    xs = np.asfortranarray(x)[:, ::1, :]
    np.testing.assert_array_equal(cyrelu.batch_norm(xs, rm, rv, w, b, **kw), want)
    s = 1 / np.sqrt(rv + 1e-5)
    want_b = cyrelu.batch_norm_backward(g, x, rm, s, w, training=False, bias=b, **kw)
    gc = g.copy()
    got = cyrelu.batch_norm_backward(gc, x, rm, s, w, training=False, bias=b, out=gc, **kw)
    assert got[0] is gc
    for a, r in zip(got, want_b, strict=True):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("name,alpha,ap", [c for c in CASES if c[0] not in table.BN_BACKWARD])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_forward_backward(name, alpha, ap, affine):
    """nn.BatchNorm with every activation: the functions' results, the backward taking
    the pre-activation from the layer's bias (zeros without affine)."""
    x, w, b, *_, g = _data((16, 3, 5), 1, np.float32)
    layer = cyrelu.nn.BatchNorm(3, activation=name, alpha=alpha, activation_params=ap,
                                affine=affine)  # fmt: skip
    if affine:
        layer.weight[:], layer.bias[:] = w, b
    layer.train()
    y = layer(x)
    wf, bf = (w, b) if affine else (None, np.zeros(3, np.float32))
    y0, m, s = cyrelu.batch_norm(x, None, None, wf, bf, True, activation=name, alpha=alpha,
                                 activation_params=ap, return_stats=True)  # fmt: skip
    np.testing.assert_array_equal(y, y0)
    gi = layer.backward(g)
    want = cyrelu.batch_norm_backward(g, x, m, s, wf, activation=name, alpha=alpha,
                                      activation_params=ap, bias=bf)  # fmt: skip
    np.testing.assert_array_equal(gi, want[0])
    if affine:
        np.testing.assert_array_equal(layer.grad_weight, want[1])
        np.testing.assert_array_equal(layer.grad_bias, want[2])
    with pytest.raises(ValueError, match="no parameter"):
        cyrelu.nn.BatchNorm(3, activation=name, activation_params={"nope": 1.0})


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,axis", LAYOUTS)
def test_recomputed_preactivation_is_the_forwards(shape, axis, training):
    """float64 data (the saved statistics are the forward's own doubles): the backward's
    recomputed pre-activation is the forward's normalised output bit for bit, and the gate
    is the activation's backward at it."""
    from cyrelu import _batchnorm

    x, w, b, rm, rv, g = _data(shape, axis, np.float64)
    y, m, s = cyrelu.batch_norm(x, rm, rv, w, b, training, axis=axis, return_stats=True)
    xm = np.moveaxis(x, axis, 1)
    x3 = np.ascontiguousarray(xm.reshape(xm.shape[0], xm.shape[1], -1))
    z3 = np.empty_like(x3)
    _batchnorm.preactivation(x3, z3, x3.shape[0], x3.shape[1], x3.shape[2], m, s, w, b, None)
    ym = np.moveaxis(y, axis, 1)
    np.testing.assert_array_equal(z3, ym.reshape(z3.shape))
    kw = dict(training=training, axis=axis, activation="gelu")
    got = cyrelu.batch_norm_backward(g, x, m, s, w, bias=b, **kw)
    want = cyrelu.batch_norm_backward(cyrelu.gelu_backward(g, y), x, m, s, w, training=training,
                                      axis=axis)  # fmt: skip
    for a, r in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, r)
