"""elu, celu, selu, silu, softplus, gelu (both forms) and mish, through the public
functions: float32 within 4 ulp of a float64 reference (itself checked against mpmath)
over the whole range (gradients within 8 ulp), every float16 pattern within 1 ulp,
float64 against mpmath, the special values, torch's gradient conventions, parameter
checks, layouts, threads, the layers and BatchNorm's fused forward."""

import math

import numpy as np
import pytest

import cyrelu

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
K = math.sqrt(2.0 / math.pi)
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sig(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _where_inf(x, y, at_neg, at_pos):
    return np.where(x == -np.inf, at_neg, np.where(x == np.inf, at_pos, y))


# name -> (kwargs, float64 value, float64 derivative); the derivative's zero, if any
def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), np.where(
        x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))
    )


def _celu(x, alpha=1.0):
    z = np.minimum(x, 0) / alpha
    return np.where(x > 0, x, alpha * np.expm1(z)), np.where(x > 0, 1.0, np.exp(z))


def _selu(x):
    v, d = _elu(x, SELU_ALPHA)
    return SELU_SCALE * v, SELU_SCALE * d


def _silu(x):
    s, r = _sig(x), _sig(-x)
    with np.errstate(invalid="ignore"):
        v = _where_inf(x, x * s, 0.0, np.inf)
        d = _where_inf(x, s * (1.0 + x * r), 0.0, 1.0)
    return v, d


def _softplus(x, beta=1.0, threshold=20.0):
    z = beta * x
    v = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / beta
    return np.where(z > threshold, x, v), np.where(z > threshold, 1.0, _sig(z))


def _gelu(x, approximate="none"):
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "none":
            v = 0.5 * x * _erfc(-x / math.sqrt(2.0))
            d = 0.5 * _erfc(-x / math.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / math.sqrt(
                2 * math.pi
            )
        else:
            u = 2 * K * (x + 0.044715 * x**3)
            s, r = _sig(u), _sig(-u)
            v = x * s
            d = s + x * 2 * s * r * K * (1 + 3 * 0.044715 * x * x)
        return _where_inf(x, v, 0.0, np.inf), _where_inf(x, d, 0.0, 1.0)


def _mish(x):
    sp = np.logaddexp(0.0, x)
    t = np.tanh(sp)
    with np.errstate(invalid="ignore", over="ignore"):
        v = x * t
        d = t + x * np.cosh(sp) ** -2.0 * _sig(x)
    return _where_inf(x, v, 0.0, np.inf), _where_inf(x, np.nan_to_num(d, nan=1.0), 0.0, 1.0)


CASES = [
    ("elu", {}, _elu, None),
    ("elu", {"alpha": 0.5}, _elu, None),
    ("celu", {"alpha": 2.5}, _celu, None),
    ("selu", {}, _selu, None),
    ("silu", {}, _silu, -1.2785),
    ("softplus", {}, _softplus, None),
    ("softplus", {"beta": 2.0, "threshold": 10.0}, _softplus, None),
    ("gelu", {}, _gelu, -0.7518),
    ("gelu", {"approximate": "tanh"}, _gelu, -0.7518),
    ("mish", {}, _mish, -1.1924),
]
IDS = ["%s%s" % (c[0], "".join("-%s" % v for v in c[1].values())) for c in CASES]


def _points32():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    dense = np.linspace(-20, 20, 200_001, dtype=np.float32)
    x = np.concatenate([x[np.isfinite(x)], dense])
    return x


X32 = _points32()


def _ulps(actual, ref, dtype, floor=0.0):
    """|actual - ref| in ulps of ref (rounded to dtype), at least of ``floor``."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.astype(dtype)
        scale = np.spacing(np.maximum(np.abs(want), dtype(floor)).astype(dtype))
    with np.errstate(invalid="ignore"):
        err = np.abs(actual.astype(np.float64) - ref) / np.abs(scale.astype(np.float64))
    same = (actual == want) | (np.isnan(actual) & np.isnan(ref))
    return np.where(same, 0.0, err)


@pytest.mark.parametrize("name,kw,ref,zero", CASES, ids=IDS)
def test_float32_within_4_ulp(name, kw, ref, zero):
    x = X32
    v, d = ref(x.astype(np.float64), **kw)
    y = getattr(cyrelu, name)(x, **kw)
    assert y.dtype == np.float32
    assert np.max(_ulps(y, v, np.float32)) <= 4.0
    g = getattr(cyrelu, name + "_backward")(np.ones_like(x), x, **kw)
    err = _ulps(g, d, np.float32)
    if zero is not None:  # near the derivative's zero: ulps of 1/4 (the terms' size)
        near = np.abs(x - zero) < 0.25
        err[near] = _ulps(g[near], d[near], np.float32, floor=0.25)
    # "a few ulp" for gradients: measured at most 6.9 (the tanh form's derivative near
    # x = -1.1, where its two terms partly cancel), 4.3 for silu', else below 4.2
    assert np.max(err) <= 8.0


@pytest.mark.parametrize("name,kw,ref,zero", CASES, ids=IDS)
def test_every_float16_pattern_within_1_ulp(name, kw, ref, zero):
    x = np.arange(2**16, dtype=np.uint16).view(np.float16)
    x = x[~np.isnan(x)]
    v, d = ref(x.astype(np.float64), **kw)
    y = getattr(cyrelu, name)(x, **kw)
    assert y.dtype == np.float16
    with np.errstate(over="ignore"):
        assert np.max(_ulps(y, v, np.float16)) <= 1.0
        g = getattr(cyrelu, name + "_backward")(np.ones_like(x), x, **kw)
        assert np.max(_ulps(g, d, np.float16, floor=0.25 if zero else 0.0)) <= 1.0


def _mp(name, kw, x):
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    mp.dps = 40
    x = mp.mpf(x)
    if name in ("elu", "celu", "selu"):
        alpha = {"selu": SELU_ALPHA}.get(name, kw.get("alpha", 1.0))
        s = SELU_SCALE if name == "selu" else 1.0
        q = x / alpha if name == "celu" else x
        if x > 0:
            return s * x, mp.mpf(s)
        return s * alpha * mp.expm1(q), s * alpha * mp.exp(q) * (
            1 / alpha if name == "celu" else 1
        )
    if name == "silu":
        sg = 1 / (1 + mp.exp(-x))
        return x * sg, sg * (1 + x * (1 - sg))
    if name == "softplus":
        beta, thr = kw.get("beta", 1.0), kw.get("threshold", 20.0)
        if beta * x > thr:
            return x, mp.mpf(1)
        return mp.log1p(mp.exp(beta * x)) / beta, 1 / (1 + mp.exp(-beta * x))
    if name == "gelu":
        if kw.get("approximate", "none") == "none":
            phi = mp.erfc(-x / mp.sqrt(2)) / 2
            return x * phi, phi + x * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)
        u = mp.sqrt(2 / mp.pi) * (x + mp.mpf(0.044715) * x**3)
        sg = 1 / (1 + mp.exp(-2 * u))  # (1 + tanh(u)) / 2, without cancelling
        du = mp.sqrt(2 / mp.pi) * (1 + 3 * mp.mpf(0.044715) * x**2)
        return x * sg, sg + x * 2 * sg * (1 - sg) * du
    sp = mp.log1p(mp.exp(x))
    t = mp.tanh(sp)
    return x * t, t + x * (1 - t * t) / (1 + mp.exp(-x))


@pytest.mark.parametrize("name,kw,ref,zero", CASES, ids=IDS)
def test_float64_and_the_reference_against_mpmath(name, kw, ref, zero):
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [
            rng.uniform(-30, 30, 300),
            np.sign(rng.uniform(-1, 1, 200)) * 10.0 ** rng.uniform(-30, 2.5, 200),
        ]
    )
    want = np.array([[float(v) for v in _mp(name, kw, xi)] for xi in x])
    y = getattr(cyrelu, name)(x, **kw)
    g = getattr(cyrelu, name + "_backward")(np.ones_like(x), x, **kw)
    scale_d = np.maximum(np.abs(want[:, 1]), 0.25 if zero else 0.0)
    tiny = np.finfo(np.float64).tiny
    assert np.all(np.abs(y - want[:, 0]) <= 1e-12 * np.abs(want[:, 0]) + tiny)
    assert np.all(np.abs(g - want[:, 1]) <= 1e-12 * scale_d + tiny)
    # the float32 test's float64 reference is itself right to far below a float32 ulp
    v, d = ref(x, **kw)
    assert np.all(np.abs(v - want[:, 0]) <= 1e-11 * np.abs(want[:, 0]) + tiny)
    assert np.all(np.abs(d - want[:, 1]) <= 1e-11 * scale_d + tiny)


LIMITS = {  # name: (f(-inf), f(+inf), f'(-inf), f'(+inf))
    "elu": (-1.0, np.inf, 0.0, 1.0),
    "celu": (-1.0, np.inf, 0.0, 1.0),
    "selu": (-SELU_SCALE * SELU_ALPHA, np.inf, 0.0, SELU_SCALE),
    "silu": (0.0, np.inf, 0.0, 1.0),
    "softplus": (0.0, np.inf, 0.0, 1.0),
    "gelu": (0.0, np.inf, 0.0, 1.0),
    "mish": (0.0, np.inf, 0.0, 1.0),
}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_special_values(name, dtype):
    fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
    x = np.array([-np.inf, np.inf, np.nan], dtype)
    y, g = fwd(x), bwd(np.ones_like(x), x)
    lo, hi, dlo, dhi = LIMITS[name]
    np.testing.assert_allclose(y[:2].astype(np.float64), [lo, hi], rtol=1e-3)
    np.testing.assert_allclose(g[:2].astype(np.float64), [dlo, dhi], rtol=1e-3)
    assert np.isnan(y[2]) and np.isnan(g[2])


def test_gradients_at_the_kinks_are_torchs():
    if torch is None:
        pytest.skip("torch not installed")
    import torch.nn.functional as F

    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30], dtype=torch.float64, requires_grad=True)
    for name, tf, kw in [
        ("elu", F.elu, {"alpha": 0.5}),
        ("celu", F.celu, {"alpha": 2.0}),
        ("selu", F.selu, {}),
        ("softplus", F.softplus, {"beta": 2.0, "threshold": 0.0}),
    ]:
        x.grad = None
        tf(x, **kw).sum().backward()
        got = getattr(cyrelu, name + "_backward")(np.ones(4), x.detach().numpy(), **kw)
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-15)


@pytest.mark.parametrize("name,kw,ref,zero", CASES, ids=IDS)
def test_against_torch_autograd_in_float64(name, kw, ref, zero):
    if torch is None:
        pytest.skip("torch not installed")
    xn = np.linspace(-6, 6, 2001)
    x = torch.tensor(xn, requires_grad=True)
    y = getattr(torch.nn.functional, name)(x, **kw)
    y.sum().backward()
    np.testing.assert_allclose(
        getattr(cyrelu, name)(xn, **kw), y.detach().numpy(), rtol=1e-12, atol=1e-15
    )
    g = getattr(cyrelu, name + "_backward")(np.ones_like(xn), xn, **kw)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_parameter_checks_modify_nothing():
    x = np.linspace(-2, 2, 11)
    out = np.full_like(x, 7.0)
    bad = [
        (cyrelu.celu, {"alpha": 0.0}, ValueError),
        (cyrelu.elu, {"alpha": np.inf}, ValueError),
        (cyrelu.elu, {"alpha": np.nan}, ValueError),
        (cyrelu.softplus, {"beta": 0.0}, ValueError),
        (cyrelu.softplus, {"beta": np.inf}, ValueError),
        (cyrelu.softplus, {"threshold": np.nan}, ValueError),
        (cyrelu.gelu, {"approximate": "erf"}, ValueError),
        (cyrelu.gelu, {"approximate": 1}, TypeError),
        (cyrelu.elu, {"alpha": "1"}, TypeError),
    ]
    for fn, kw, exc in bad:
        with pytest.raises(exc):
            fn(x, out=out, **kw)
        with pytest.raises(exc):
            getattr(cyrelu, fn.__name__ + "_backward")(x, x, out=out, **kw)
    with pytest.raises(TypeError):
        cyrelu.gelu(np.arange(3))
    with pytest.raises(ValueError):
        cyrelu.silu_backward(np.ones(3), np.ones(4))
    assert (out == 7.0).all()


@pytest.mark.parametrize(
    "name,params,fast",
    [
        ("hardtanh", (-0.5, 2), True),
        ("hardtanh", (0.25, 0.25), True),
        ("celu", (2,), True),
        ("celu", (-0.5,), True),
        ("softplus", (2.0, 3), True),
        ("gelu", ("tanh",), True),
        ("gelu", ("none",), True),
        ("hardtanh", (np.float64(-0.5), 2.0), False),  # a NumPy scalar: checked first
        ("celu", (np.float32(2.0),), False),
    ],
)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_plain_parameters_take_the_fast_entry(name, params, fast, dtype, monkeypatch):
    """hardtanh, celu, softplus and gelu with plain float/int parameters (and ordered
    bounds on data other than float16, whose bounds are rounded first) skip the Python
    checks, with the general path's results bit for bit; other parameter types, and
    hardtanh on float16 data, take the checks."""
    import cyrelu.activations as act

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(300) * 4).astype(dtype)
    g = rng.standard_normal(300).astype(dtype)
    want = act._forward(name, x, None, None, *params)
    want_b = act._backward(name, g, x, None, None, *params)
    takes_checks = not fast or (name == "hardtanh" and dtype == np.float16)
    calls = []
    general_f, general_b = act._forward, act._backward
    monkeypatch.setattr(act, "_forward", lambda *a: calls.append(a) or general_f(*a))
    monkeypatch.setattr(act, "_backward", lambda *a: calls.append(a) or general_b(*a))
    got = getattr(cyrelu, name)(x, *params)
    out = np.empty_like(x)
    got_b = getattr(cyrelu, name + "_backward")(g, x, *params, out=out)
    assert got_b is out
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_b, want_b)
    assert len(calls) == (2 if takes_checks else 0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name,kw,ref,zero", CASES, ids=IDS)
def test_layouts_out_inplace_threads(name, kw, ref, zero, dtype):
    fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((300, 401)) * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    want = fwd(x, **kw, num_threads=1)
    gw = bwd(g, x, **kw, num_threads=1)
    for t in (2, 3):  # bitwise the same for any thread count
        np.testing.assert_array_equal(fwd(x, **kw, num_threads=t), want)
        np.testing.assert_array_equal(bwd(g, x, **kw, num_threads=t), gw)
    np.testing.assert_array_equal(fwd(x.T, **kw), want.T)
    np.testing.assert_array_equal(fwd(x[:, ::-3], **kw), want[:, ::-3])
    np.testing.assert_array_equal(bwd(g.T, x.T, **kw), gw.T)
    y = x.copy()
    assert fwd(y, **kw, out=y) is y
    np.testing.assert_array_equal(y, want)
    h = g.copy()
    assert bwd(h, x, **kw, out=h) is h
    np.testing.assert_array_equal(h, gw)
    z = np.concatenate([x.ravel(), x.ravel()[:5]])
    fwd(z[:-5], **kw, out=z[5:])
    np.testing.assert_array_equal(z[5:], want.ravel())


@pytest.mark.parametrize(
    "layer,name,kw",
    [
        (cyrelu.nn.ELU(0.5), "elu", {"alpha": 0.5}),
        (cyrelu.nn.CELU(2.0), "celu", {"alpha": 2.0}),
        (cyrelu.nn.SELU(), "selu", {}),
        (cyrelu.nn.SiLU(), "silu", {}),
        (cyrelu.nn.Softplus(2.0, 5.0), "softplus", {"beta": 2.0, "threshold": 5.0}),
        (cyrelu.nn.GELU("tanh"), "gelu", {"approximate": "tanh"}),
        (cyrelu.nn.Mish(), "mish", {}),
    ],
)
def test_layers(layer, name, kw):
    x = np.linspace(-4, 4, 17, dtype=np.float32)
    g = np.linspace(1, 2, 17, dtype=np.float32)
    np.testing.assert_array_equal(layer(x), getattr(cyrelu, name)(x, **kw))
    np.testing.assert_array_equal(
        layer.backward(g), getattr(cyrelu, name + "_backward")(g, x, **kw)
    )
    assert layer.state_dict() == {}
    assert repr(layer).startswith(type(layer).__name__ + "(")


def test_layer_checks_its_parameters():
    with pytest.raises(ValueError):
        cyrelu.nn.CELU(0.0)
    with pytest.raises(ValueError):
        cyrelu.nn.GELU("exact")
    with pytest.raises(RuntimeError):
        cyrelu.nn.SiLU().backward(np.ones(3))


@pytest.mark.parametrize("name", ["elu", "celu", "gelu", "softplus"])
def test_batch_norm_takes_a_foreign_parameter_by_name(name):
    """Their parameters are not BatchNorm's alpha: BatchNorm composes them (values in
    tests/test_batchnorm_activations.py); a wrong parameter name is a ValueError."""
    x = np.arange(12.0).reshape(4, 3)
    assert cyrelu.batch_norm(x, training=True, activation=name).shape == x.shape
    with pytest.raises(ValueError, match=name):
        cyrelu.batch_norm(x, training=True, activation=name, activation_params={"p": 1.0})


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["selu", "silu", "mish"])
@pytest.mark.parametrize("shape,axis", [((64, 24), 1), ((8, 24, 5, 7), 1), ((8, 5, 7, 24), -1)])
def test_batch_norm_fuses_the_forward(name, dtype, shape, axis):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w = rng.uniform(0.5, 2, shape[axis]).astype(np.float32 if dtype == np.float16 else dtype)
    b = rng.uniform(-1, 1, shape[axis]).astype(w.dtype)
    plain, mean, invstd = cyrelu.batch_norm(
        x, weight=w, bias=b, training=True, axis=axis, return_stats=True
    )
    fused = cyrelu.batch_norm(x, weight=w, bias=b, training=True, axis=axis, activation=name)
    want = getattr(cyrelu, name)(plain.astype(np.float64))
    tol = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(fused.astype(np.float64), want, rtol=tol, atol=tol)
    kw = dict(activation=name, axis=axis)
    with_bias = cyrelu.batch_norm_backward(x, x, mean, invstd, w, bias=b, **kw)
    if name == "selu":  # its derivative is read from the output, y + scale * alpha below 0
        got = cyrelu.batch_norm_backward(x, x, mean, invstd, w, output=fused, **kw)
        for a, r in zip(got, with_bias, strict=True):
            scale = max(1.0, float(np.abs(r.astype(np.float64)).max()))
            np.testing.assert_allclose(a.astype(np.float64), r.astype(np.float64),
                                       rtol=0, atol=50 * tol * scale)  # fmt: skip
    else:
        with pytest.raises(ValueError, match="needs bias="):
            cyrelu.batch_norm_backward(x, x, mean, invstd, w, output=fused, **kw)
