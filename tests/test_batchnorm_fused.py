"""BatchNorm's fused activations, by the table: the lists the kernels are built for
(activation_table.h's CYR_BN_FORWARD_ACTIVATIONS / CYR_BN_BACKWARD_ACTIVATIONS) follow
their rules, every listed activation is really applied on every layout and dtype (a code
the kernels were not built for would run as no activation), and every other one is
refused with a ValueError naming it."""

import numpy as np
import pytest

import cyrelu
from cyrelu import _activation_table as table

LAYOUTS = [((64, 24), 1), ((6, 5, 40), 1), ((6, 40, 5), -1), ((3, 4, 5, 6), 2)]
DTYPES = [np.float16, np.float32, np.float64]
TOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}
# parameters other than the defaults, for the activations with parameters besides alpha
NON_DEFAULT = {
    "gelu": {"approximate": "tanh"},
    "hardtanh": {"min_val": -0.5, "max_val": 2.0},
    "softplus": {"beta": 2.0, "threshold": 3.0},
}


def test_lists_follow_their_rules():
    def fuses(entry):  # at most two parameters (the kernels' a and b)
        return len(entry.params) <= 2

    def fuses_backward(name):  # its own backward reads it from the output; a and b
        entry = table.TABLE[name]
        return bool(entry.from_output) and len(entry.params) <= 2

    assert {n for n, e in table.TABLE.items() if fuses(e)} == table.BN_FORWARD
    assert set(table.TABLE) == table.BN_FORWARD  # every activation, today
    assert {n for n in table.BN_FORWARD if fuses_backward(n)} == table.BN_BACKWARD
    assert {"relu", "leaky_relu", "relu6", "hardtanh"} <= table.BN_BACKWARD


def _data(shape, axis, dtype, seed=3):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 0.5).astype(dtype)
    pdtype = np.float32 if dtype == np.float16 else dtype
    C = shape[axis]
    w = rng.uniform(0.5, 2, C).astype(pdtype)
    b = rng.uniform(-1, 1, C).astype(pdtype)
    rm = rng.standard_normal(C).astype(pdtype)
    rv = rng.uniform(0.5, 2, C).astype(pdtype)
    return x, w, b, rm, rv


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", LAYOUTS)
@pytest.mark.parametrize("name", sorted(table.BN_FORWARD))
def test_forward_applies_each_listed_activation(name, shape, axis, dtype, training):
    x, w, b, rm, rv = _data(shape, axis, dtype)
    kw = dict(weight=w, bias=b, training=training, axis=axis)
    plain = cyrelu.batch_norm(x, rm.copy(), rv.copy(), **kw)
    fused = cyrelu.batch_norm(x, rm.copy(), rv.copy(), activation=name, **kw)
    # the float64 reference applied to the unfused output (float16: both round once)
    want = getattr(cyrelu, name)(plain.astype(np.float64))
    tol = TOL[dtype]
    np.testing.assert_allclose(fused.astype(np.float64), want, rtol=tol, atol=tol)
    assert not np.allclose(fused.astype(np.float64), plain.astype(np.float64), atol=1e-2)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [*LAYOUTS, ((300, 64), 1), ((7, 9, 11, 48), -1)])
@pytest.mark.parametrize("name", sorted(table.BN_FORWARD))
def test_fused_is_the_two_calls_bit_for_bit(name, shape, axis, dtype, training):
    """float32/float64: the fused forward gives the bits of BatchNorm then the activation's
    own function (the pre-activation is rounded to the data's type either way), on every
    layout: the row layouts run the expensive activations over L1 tiles across row ends
    (rows of 64 and 48 columns, several tiles), the others within each row."""
    x, w, b, rm, rv = _data(shape, axis, dtype)
    kw = dict(weight=w, bias=b, training=training, axis=axis)
    # the parameters other than alpha reach the kernels (their a and b): not the defaults
    # in training, the defaults in evaluation
    ap = NON_DEFAULT.get(name) if training else None
    fused = cyrelu.batch_norm(x, rm.copy(), rv.copy(), activation=name, activation_params=ap, **kw)
    plain = cyrelu.batch_norm(x, rm.copy(), rv.copy(), **kw)
    want = getattr(cyrelu, name)(plain, **(ap or {}))
    np.testing.assert_array_equal(fused, want)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", LAYOUTS)
def test_gelu_approximate_reaches_the_kernels(shape, axis, dtype, training):
    """gelu's approximate (activation_params) is the fused kernels' parameter: the tanh
    form is applied, not the erf form; BatchNorm's alpha is ignored, as for every
    activation without an alpha."""
    x, w, b, rm, rv = _data(shape, axis, dtype)
    kw = dict(weight=w, bias=b, training=training, axis=axis, activation="gelu")
    plain = cyrelu.batch_norm(x, rm.copy(), rv.copy(), **{**kw, "activation": None})
    erf = cyrelu.batch_norm(x, rm.copy(), rv.copy(), **kw)
    tanh = cyrelu.batch_norm(
        x, rm.copy(), rv.copy(), activation_params={"approximate": "tanh"}, **kw
    )
    tol = TOL[dtype]
    for got, approximate in ((erf, "none"), (tanh, "tanh")):
        want = cyrelu.gelu(plain.astype(np.float64), approximate)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
    if dtype != np.float16:  # the forms differ by up to about 5e-4
        assert not np.array_equal(erf, tanh)
    with_alpha = cyrelu.batch_norm(x, rm.copy(), rv.copy(), alpha=1.0, **kw)
    np.testing.assert_array_equal(with_alpha, erf)
    with pytest.raises(ValueError, match="approximate"):
        cyrelu.batch_norm(x, rm.copy(), rv.copy(), activation_params={"approximate": "x"}, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", LAYOUTS)
@pytest.mark.parametrize("name", sorted(table.BN_BACKWARD))
def test_backward_gates_by_each_listed_activation(name, shape, axis, dtype):
    x, w, b, _, _ = _data(shape, axis, dtype)
    y, mean, invstd = cyrelu.batch_norm(
        x, weight=w, bias=b, training=True, axis=axis, activation=name, return_stats=True
    )
    g = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    fused = cyrelu.batch_norm_backward(g, x, mean, invstd, w, axis=axis, activation=name, output=y)
    gated = getattr(cyrelu, name + "_backward")(g, y)
    unfused = cyrelu.batch_norm_backward(gated, x, mean, invstd, w, axis=axis)
    plain = cyrelu.batch_norm_backward(g, x, mean, invstd, w, axis=axis)
    tol = 10 * TOL[dtype]
    for a, r in zip(fused, unfused, strict=True):
        np.testing.assert_allclose(a.astype(np.float64), r.astype(np.float64), rtol=tol, atol=tol)
    assert not np.allclose(fused[0], plain[0])


def _backward_case(name, ap, shape, axis, dtype, seed):
    """Data, the training forward with activation ``name`` (parameters ``ap`` by name)
    and a grad_output: (x, w, b, y, mean, invstd, g)."""
    x, w, b, _, _ = _data(shape, axis, dtype)
    y, mean, invstd = cyrelu.batch_norm(
        x, weight=w, bias=b, training=True, axis=axis, activation=name, activation_params=ap,
        return_stats=True,
    )  # fmt: skip
    g = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return x, w, b, y, mean, invstd, g


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis", [*LAYOUTS, ((300, 64), 1), ((7, 9, 11, 48), -1), ((40, 300), 1), ((16, 200), 1)]
)
@pytest.mark.parametrize("name", sorted(table.BN_BACKWARD))
def test_fused_backward_is_the_two_calls_bit_for_bit(name, shape, axis, dtype, training):
    """float32/float64: the fused backward gives the bits of the activation's own backward
    on the output, then BatchNorm's backward, with the activation's parameters (a and b:
    hardtanh's bounds, leaky_relu's alpha) given by name, not the defaults.  The row
    layouts keep the gate in dx between the passes (include/cyrelu/batchnorm.h): rows of
    5 to 300 columns, short rows with their prefetch ahead, long ones without."""
    ap = NON_DEFAULT.get(name, {"alpha": 0.3} if name == "leaky_relu" else None)
    x, w, _, y, mean, invstd, g = _backward_case(name, ap, shape, axis, dtype, seed=6)
    kw = dict(training=training, axis=axis)
    fused = cyrelu.batch_norm_backward(
        g, x, mean, invstd, w, activation=name, activation_params=ap, output=y, **kw
    )
    gated = getattr(cyrelu, name + "_backward")(g, y, **(ap or {}))
    want = cyrelu.batch_norm_backward(gated, x, mean, invstd, w, **kw)
    for got, ref in zip(fused, want, strict=True):
        np.testing.assert_array_equal(got, ref)
    if name == "hardtanh":  # the bounds reached the kernels: not the defaults' gradient
        default = cyrelu.batch_norm_backward(
            g, x, mean, invstd, w, activation=name, output=y, **kw
        )
        assert not np.array_equal(default[0], fused[0])


# parameters other than the defaults for the backward from bias=: leaky_relu's alpha
# negative (the output could not give the derivative), elu's and celu's other than 1
NON_DEFAULT_Z = {**NON_DEFAULT, "leaky_relu": {"alpha": -0.3}, "elu": {"alpha": 0.7},
                 "celu": {"alpha": 1.3}}  # fmt: skip


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis",
    [*LAYOUTS, ((300, 64), 1), ((7, 9, 11, 48), -1), ((40, 300), 1), ((3, 2, 2600), 1)],
)
@pytest.mark.parametrize("name", sorted(table.TABLE))
def test_fused_backward_at_the_preactivation_is_the_two_calls(
    name, shape, axis, dtype, training, monkeypatch
):
    """bias= without output: the kernels take the derivative at the pre-activation they
    recompute from x (the forward's scale and shift), bit for bit the composed path (the
    forward's normalising pass, the activation's own backward, then BatchNorm's), with
    the activation's parameters by name; leaky_relu's alpha may be negative there.
    Every activation: those outside BN_BACKWARD through the kernels' L1 tiles (rows
    wider than a tile's columns, channel runs longer than a tile), nothing composed."""
    from cyrelu import batchnorm as bn_module
    from cyrelu.batchnorm import _gated

    ap = NON_DEFAULT_Z.get(name)
    x, w, b, _, mean, invstd, g = _backward_case(name, ap, shape, axis, dtype, seed=7)
    kw = dict(training=training, axis=axis)
    with monkeypatch.context() as m:
        m.setattr(bn_module, "_gated", _refuse)  # the kernels take it, or this raises
        fused = cyrelu.batch_norm_backward(
            g, x, mean, invstd, w, activation=name, activation_params=ap, bias=b, **kw
        )
    values = tuple((ap or {}).values())  # in the table's order
    gated = _gated(name, values, g, x, mean, invstd, w, b, None, axis, None)
    want = cyrelu.batch_norm_backward(gated, x, mean, invstd, w, **kw)
    for got, ref in zip(fused, want, strict=True):
        np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(fused[0], cyrelu.batch_norm_backward(g, x, mean, invstd, w, **kw)[0])


def _refuse(*args, **kwargs):
    raise AssertionError("composed: the kernels did not take the activation")


@pytest.mark.parametrize("shape,axis", [*LAYOUTS, ((40, 300), 1)])
@pytest.mark.parametrize("name", sorted(table.TABLE))
def test_fused_backward_at_the_preactivation_float16(name, shape, axis, monkeypatch):
    """float16 data, channel and row layouts: bias= gives the derivative at the
    pre-activation the kernels compute in float (as the forward does, before rounding
    to float16), so the reference gates float32 copies of the data (gating at the
    float16-rounded value would differ next to the kinks: hardtanh's 0.9999 -> 1.0).
    The activations outside BN_BACKWARD the public function composes for float16 data
    (faster there); their kernels' path (the float kernels' tiles, the derivative taken
    in both passes, which Dask's chunks run) is reached by lifting that rule."""
    from cyrelu import _bn_activation
    from cyrelu.batchnorm import _gated

    assert _bn_activation.fused_backward_z(name, 0.0, np.dtype(np.float32))
    assert _bn_activation.fused_backward_z(name, 0.0, np.dtype(np.float16)) == (
        name in table.BN_BACKWARD
    )
    monkeypatch.setattr(_bn_activation, "fused_backward_z", lambda *args: True)

    x, w, b, _, _ = _data(shape, axis, np.float16)
    _, mean, invstd = cyrelu.batch_norm(
        x, weight=w, bias=b, training=True, axis=axis, return_stats=True
    )
    g = np.random.default_rng(8).standard_normal(shape).astype(np.float16)
    ap = NON_DEFAULT_Z.get(name)
    fused = cyrelu.batch_norm_backward(
        g, x, mean, invstd, w, axis=axis, activation=name, activation_params=ap, bias=b
    )
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    values = tuple((ap or {}).values())
    gated = _gated(name, values, g32, x32, mean, invstd, w, b, None, axis, None)
    want = cyrelu.batch_norm_backward(gated, x32, mean, invstd, w, axis=axis)
    tol = 10 * TOL[np.float16]
    for got, ref in zip(fused, want, strict=True):
        np.testing.assert_allclose(
            got.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol
        )


# elu, celu and selu: the derivative read from the output (elu with alpha > 0)
RESULT_GATE = {"elu": {"alpha": 0.7}, "celu": {"alpha": 1.3}, "selu": None}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,axis",
    [*LAYOUTS, ((300, 64), 1), ((7, 9, 11, 48), -1), ((40, 300), 1), ((3, 2, 2600), 1)],
)
@pytest.mark.parametrize("name", sorted(RESULT_GATE))
def test_fused_backward_from_the_output_of_elu_celu_selu(
    name, shape, axis, dtype, training, monkeypatch
):
    """output= alone for elu, celu and selu: the kernels read the derivative from the
    output in their L1 tiles (y > 0 ? pos : f * (y + s), torch's elu_backward with
    is_result=True), nothing composed.  float32/float64: bit for bit the composed path
    (the same expression, then BatchNorm's backward); float16: within its rounding of
    the composed path on float32 copies (the kernels keep the gate in float).  And,
    derived independently, within a few roundings of the derivative at the
    pre-activation (bias=: the activation's own exponential)."""
    from cyrelu import batchnorm as bn_module
    from cyrelu.batchnorm import _gated

    ap = RESULT_GATE[name]
    x, w, b, y, mean, invstd, g = _backward_case(name, ap, shape, axis, dtype, seed=9)
    kw = dict(training=training, axis=axis)
    akw = dict(activation=name, alpha=None if ap is None else ap["alpha"])
    with monkeypatch.context() as m:
        m.setattr(bn_module, "_gated", _refuse)  # the kernels take it, or this raises
        fused = cyrelu.batch_norm_backward(g, x, mean, invstd, w, output=y, **akw, **kw)
    values = tuple((ap or {}).values())
    if dtype == np.float16:
        g32, x32, y32 = (a.astype(np.float32) for a in (g, x, y))
        gated = _gated(name, values, g32, x32, mean, invstd, w, None, y32, axis, None)
        want = cyrelu.batch_norm_backward(gated, x32, mean, invstd, w, **kw)
    else:
        gated = _gated(name, values, g, x, mean, invstd, w, None, y, axis, None)
        want = cyrelu.batch_norm_backward(gated, x, mean, invstd, w, **kw)
    at_z = cyrelu.batch_norm_backward(g, x, mean, invstd, w, bias=b, **akw, **kw)
    tol = 10 * TOL[dtype]
    for got, ref, ref_z in zip(fused, want, at_z, strict=True):
        got64 = got.astype(np.float64)
        if dtype == np.float16:
            scale = np.abs(ref).max()
            np.testing.assert_allclose(got64, ref.astype(np.float64), atol=tol * scale)
        else:
            np.testing.assert_array_equal(got, ref)
        scale = np.abs(ref_z).max()
        np.testing.assert_allclose(got64, ref_z.astype(np.float64), rtol=0, atol=tol * scale)
    plain = cyrelu.batch_norm_backward(g, x, mean, invstd, w, **kw)
    assert not np.allclose(fused[0], plain[0])


@pytest.mark.parametrize("name", sorted(table.BN_FORWARD - table.BN_BACKWARD))
def test_backward_of_the_forward_only_ones_needs_bias(name):
    x, w, b, *_ = _data((4, 3, 5), 1, np.float32)
    y, m, s = cyrelu.batch_norm(x, None, None, w, b, True, activation=name, return_stats=True)
    # elu, celu and selu: the kernels read the derivative from the output
    if name not in RESULT_GATE:
        with pytest.raises(ValueError, match="needs bias="):
            cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, output=y)
    got = cyrelu.batch_norm_backward(x, x, m, s, w, activation=name, bias=b)
    assert got[0].shape == x.shape


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,axis", [((64, 24), 1), ((6, 40, 5), -1)])
def test_alpha_none_is_the_activations_default(shape, axis, training):
    """alpha=None (the default) is the fused activation's own default: leaky_relu's 0.2,
    bit for bit, forward and backward, through the functions and the layer."""
    x, w, b, rm, rv = _data(shape, axis, np.float32)
    kw = dict(weight=w, bias=b, training=training, axis=axis, activation="leaky_relu")
    y0, m0, s0 = cyrelu.batch_norm(x, rm.copy(), rv.copy(), return_stats=True, **kw)
    y1 = cyrelu.batch_norm(x, rm.copy(), rv.copy(), alpha=0.2, **kw)
    y2 = cyrelu.batch_norm(x, rm.copy(), rv.copy(), alpha=0.3, **kw)
    np.testing.assert_array_equal(y0, y1)
    assert not np.array_equal(y0, y2)  # alpha is used
    g = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    bkw = dict(training=training, axis=axis, activation="leaky_relu", output=y0)
    for a, b_ in zip(
        cyrelu.batch_norm_backward(g, x, m0, s0, w, **bkw),
        cyrelu.batch_norm_backward(g, x, m0, s0, w, alpha=0.2, **bkw),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b_)
    layer = cyrelu.nn.BatchNorm(shape[axis], axis=axis, activation="leaky_relu")
    assert layer.alpha is None
    layer.weight[:], layer.bias[:] = w, b
    layer.running_mean[:], layer.running_var[:] = rm, rv
    layer.train(training)
    np.testing.assert_array_equal(layer(x), y1)
    # activations without a parameter: alpha=None, or any alpha, changes nothing
    plain = cyrelu.batch_norm(x, rm.copy(), rv.copy(), **{**kw, "activation": "relu"})
    other = cyrelu.batch_norm(x, rm.copy(), rv.copy(), alpha=5.0, **{**kw, "activation": "relu"})
    np.testing.assert_array_equal(plain, other)


@pytest.mark.parametrize("bad,exc", [("0.2", TypeError), (True, TypeError), (np.nan, ValueError)])
def test_alpha_still_checked(bad, exc):
    x, *_ = _data((4, 3, 5), 1, np.float32)
    with pytest.raises(exc, match="alpha"):
        cyrelu.batch_norm(x, training=True, activation="leaky_relu", alpha=bad)
    with pytest.raises(exc, match="alpha"):
        cyrelu.nn.BatchNorm(3, activation="leaky_relu", alpha=bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((128, 64), 1), ((6, 5, 40), 1), ((6, 40, 5), -1)])
@pytest.mark.parametrize(
    "activation,alpha,source",
    [(None, None, None), ("relu", None, "output"), ("leaky_relu", 0.1, "output"),
     ("relu", None, "bias"), ("leaky_relu", -0.3, "bias"), ("hardtanh", None, "bias"),
     ("elu", 0.7, "output"), ("celu", 1.3, "output"), ("selu", None, "output"),
     ("gelu", None, "bias"), ("celu", None, "bias")],
)  # fmt: skip
@pytest.mark.parametrize("with_weight,with_out", [(True, False), (False, True)])
def test_backward_fast_entry_is_the_general_path(
    dtype, shape, axis, activation, alpha, source, with_weight, with_out
):
    """batch_norm_backward's fast entry (plain arrays, checked at C speed) takes the
    common call, with the derivative from output (the kernels' own rule, or elu's, celu's
    and selu's result gate) or from bias (the pre-activation recomputed), and gives the
    general path's bits (the same kernels): the general path is forced by a training flag
    that is not a bool.  float16 data with a tiled activation from bias is left to the
    general path (which composes it)."""
    from cyrelu import _batchnorm

    x, w, b, _, _ = _data(shape, axis, dtype)
    y, m, s = cyrelu.batch_norm(
        x, weight=w, bias=b, training=True, axis=axis, activation=activation, alpha=alpha,
        return_stats=True,
    )  # fmt: skip
    g = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    wt = w if with_weight else None
    out = np.empty_like(x) if with_out else None
    src = {"output": y if source == "output" else None, "bias": b if source == "bias" else None}
    args = (g, x, m, s, wt, True, axis, activation, alpha, src["output"], src["bias"], out, None)
    fast = _batchnorm.backward_fast(*args)
    if dtype == np.float16 and source == "bias" and activation not in table.BN_BACKWARD:
        assert fast is None
        return
    assert fast is not None
    if with_out:
        assert fast[0] is out
    general = cyrelu.batch_norm_backward(
        g, x, m, s, wt, training=np.bool_(True), axis=axis, activation=activation,
        alpha=alpha, **src,
    )  # fmt: skip
    for a, r in zip(fast, general, strict=True):
        assert a.dtype == r.dtype
        np.testing.assert_array_equal(a, r)
    if activation is not None:  # the gate is applied
        assert not np.array_equal(
            fast[0], cyrelu.batch_norm_backward(g, x, m, s, wt, axis=axis)[0]
        )


def test_backward_fast_entry_leaves_the_rest_to_the_general_path():
    from cyrelu import _batchnorm

    x, w, *_ = _data((8, 3, 5), 1, np.float32)
    y, m, s = cyrelu.batch_norm(x, training=True, activation="leaky_relu", return_stats=True)
    base = [x, x, m, s, w, True, 1, "leaky_relu", None, y, None, None, None]
    for change in [
        {8: -0.1},  # leaky_relu's alpha must be > 0: the general path raises
        {8: 1},  # an int alpha: checked there
        {9: None},  # no output with an activation
        {7: "silu"},  # its derivative is not read from the output: the general path raises
        {7: "elu", 8: -0.5},  # nor elu's with alpha <= 0
        {7: "celu", 8: 0.0, 9: None, 10: w},  # celu's alpha 0, from bias
        {10: w},  # both output and bias: the general path chooses
        {7: None, 9: None, 10: w},  # bias without an activation
        {9: None, 10: w.astype(np.float16)},  # a float16 bias
        {5: 1},  # training not a bool
        {6: 1.0},  # axis not an int
        {6: 2**70},  # axis out of range (and of a C int)
        {4: w.astype(np.float16)},  # a float16 weight
        {11: x},  # out is an input
        {0: x[:, :, ::-1]},  # not contiguous
    ]:
        args = list(base)
        for k, v in change.items():
            args[k] = v
        assert _batchnorm.backward_fast(*args) is None, change
    with pytest.raises(ValueError, match="alpha > 0"):
        cyrelu.batch_norm_backward(x, x, m, s, activation="leaky_relu", alpha=-0.1, output=y)
    with pytest.raises(ValueError, match="output"):
        cyrelu.batch_norm_backward(x, x, m, s, activation="relu")
    # out may be an input: the general path writes a fresh array, then copies
    want = cyrelu.batch_norm_backward(x, x, m, s, w)
    got = x.copy()
    cyrelu.batch_norm_backward(got, x, m, s, w, out=got)
    np.testing.assert_array_equal(got, want[0])
