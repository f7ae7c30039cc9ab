"""cyrelu.init: torch.nn.init's gains and fans, the distributions, rng handling, errors."""

import math

import numpy as np
import pytest

from cyrelu import init

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")

SHAPES = [(3, 5), (64, 32), (16, 8, 3), (8, 4, 3, 3), (2, 3, 2, 2, 2)]


# ---- gain and fans ---------------------------------------------------------------------


@requires_torch
@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose1d", None),
        ("conv_transpose2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("selu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 0),
        ("leaky_relu", 3),
        ("leaky_relu", -0.5),
        ("relu", 0.3),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    got = init.calculate_gain(nonlinearity, param)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-15, abs=0)


def test_calculate_gain_values():
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("tanh") == 5.0 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2.0 / 1.04)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", np.float32(0.5)) == math.sqrt(2.0 / 1.25)


@pytest.mark.parametrize("name", ["ReLU", "gelu", "", None, 3])
def test_calculate_gain_unknown(name):
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain(name)


@pytest.mark.parametrize("param", [True, "0.1", [0.1]])
def test_calculate_gain_bad_slope(param):
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", param)


@requires_torch
@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(shape) == expected
    assert init.calculate_fan_in_and_fan_out(list(shape)) == expected
    assert init.calculate_fan_in_and_fan_out(np.array(shape)) == expected


# ---- the distributions: exact parameters and statistics --------------------------------


def _fans(shape):
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf


def _expected_std(kind, shape, gain=1.0, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = _fans(shape)
    if kind.startswith("xavier"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    fan = fan_in if mode == "fan_in" else fan_out
    return init.calculate_gain(nonlinearity, a) / math.sqrt(fan)


CASES = [
    ("xavier_uniform", (256, 128), {}),
    ("xavier_uniform", (64, 32, 3, 3), {"gain": 5.0 / 3}),
    ("xavier_normal", (256, 128), {}),
    ("xavier_normal", (64, 32, 3, 3), {"gain": math.sqrt(2)}),
    ("kaiming_uniform", (256, 128), {}),
    ("kaiming_uniform", (256, 128), {"nonlinearity": "relu"}),
    ("kaiming_uniform", (64, 32, 3, 3), {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal", (256, 128), {"nonlinearity": "relu"}),
    ("kaiming_normal", (64, 32, 3, 3), {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal", (128, 512), {"nonlinearity": "tanh", "mode": "FAN_OUT"}),
]


@pytest.mark.parametrize("kind, shape, kwargs", CASES)
def test_distribution_statistics(kind, shape, kwargs):
    w = getattr(init, kind)(shape, **kwargs, rng=0)
    assert w.shape == shape and w.dtype == np.float32
    kw = dict(kwargs)
    if "mode" in kw:
        kw["mode"] = kw["mode"].lower()
    std = _expected_std(kind, shape, **kw)
    n = w.size
    w64 = w.astype(np.float64)
    # mean of n iid samples: standard error std / sqrt(n); allow 5 of them
    assert abs(w64.mean()) < 5 * std / math.sqrt(n)
    assert w64.std() == pytest.approx(std, rel=0.03)
    if kind.endswith("uniform"):
        bound = math.sqrt(3.0) * std
        assert np.abs(w64).max() <= bound * (1 + 1e-6)
        assert np.abs(w64).max() > 0.99 * bound  # the whole interval is used
        # uniform: a quarter of the samples in each quarter of the interval
        hist, _ = np.histogram(w64, bins=4, range=(-bound, bound))
        assert np.allclose(hist / n, 0.25, atol=0.02)
    else:
        # normal: about 68.3% within one std, 95.4% within two
        assert np.mean(np.abs(w64) < std) == pytest.approx(0.6827, abs=0.02)
        assert np.mean(np.abs(w64) < 2 * std) == pytest.approx(0.9545, abs=0.01)


@requires_torch
@pytest.mark.parametrize("kind, shape, kwargs", CASES)
def test_std_matches_torch_formula(kind, shape, kwargs):
    """Our std matches the one torch derives: compare the statistics of both draws."""
    t = torch.empty(shape)
    torch.manual_seed(0)
    torch_kwargs = dict(kwargs)
    getattr(torch.nn.init, kind + "_")(t, **torch_kwargs)
    ours = getattr(init, kind)(shape, **kwargs, rng=1).astype(np.float64)
    assert ours.std() == pytest.approx(float(t.double().std()), rel=0.05)
    if kind.endswith("uniform"):
        assert np.abs(ours).max() == pytest.approx(float(t.abs().max()), rel=0.01)


def test_uniform_bound_formulas():
    # the bound is the one documented: xavier gain*sqrt(6/(fi+fo)), kaiming gain*sqrt(3/fan)
    w = init.xavier_uniform((10, 30), gain=2.0, rng=3, dtype=np.float64)
    assert np.abs(w).max() <= 2.0 * math.sqrt(6.0 / 40)
    w = init.kaiming_uniform((10, 30), nonlinearity="relu", rng=3, dtype=np.float64)
    assert np.abs(w).max() <= math.sqrt(2.0) * math.sqrt(3.0 / 30)
    w = init.kaiming_uniform(
        (10, 30), mode="fan_out", nonlinearity="relu", rng=3, dtype=np.float64
    )
    assert np.abs(w).max() <= math.sqrt(2.0) * math.sqrt(3.0 / 10)
    assert np.abs(w).max() > math.sqrt(2.0) * math.sqrt(3.0 / 30)  # the fan_out bound is wider


# ---- rng, dtype, new arrays ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]
)
def test_rng_reproducible(kind):
    f = getattr(init, kind)
    a = f((20, 10), rng=42)
    b = f((20, 10), rng=42)
    c = f((20, 10), rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(f((20, 10), rng=g1), f((20, 10), rng=g2))
    # a Generator is advanced: the next draw differs
    assert not np.array_equal(f((20, 10), rng=g1), f((20, 10), rng=np.random.default_rng(7)))
    # None: fresh entropy, still the right shape
    assert f((20, 10)).shape == (20, 10)
    assert not np.array_equal(f((20, 10)), f((20, 10)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "float64"])
def test_dtypes(dtype):
    w = init.kaiming_normal((8, 4), rng=0, dtype=dtype)
    assert w.dtype == np.dtype(dtype)
    assert w.flags.c_contiguous and w.flags.writeable and w.flags.owndata
    ref = init.kaiming_normal((8, 4), rng=0, dtype=np.float64)
    np.testing.assert_array_equal(w, ref.astype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool, np.complex64, "U3"])
def test_non_float_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match="dtype"):
        init.xavier_uniform((4, 4), dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        init.kaiming_normal((4, 4), dtype=dtype)


def test_transposed_for_x_at_w_layout():
    """(n_out, n_in) drawn then transposed: fan_in is n_in, as the docs say."""
    n_in, n_out = 400, 50
    W = init.kaiming_normal((n_out, n_in), nonlinearity="relu", rng=0).T
    assert W.shape == (n_in, n_out)
    assert W.astype(np.float64).std() == pytest.approx(math.sqrt(2.0 / n_in), rel=0.03)
    x = np.random.default_rng(1).standard_normal((2000, n_in)).astype(np.float32)
    y = np.maximum(x @ W, 0)
    # Kaiming keeps E[y^2] = E[x^2] = 1 through a ReLU layer
    assert float(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=0.1)


# ---- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]
)
@pytest.mark.parametrize("shape", [(5,), 5, (), (0, 3), (3, 0), (3, 4, 0), (-1, 3)])
def test_bad_shapes(kind, shape):
    with pytest.raises(ValueError, match=r"shape|dimension"):
        getattr(init, kind)(shape)


@pytest.mark.parametrize("shape", [(2.5, 3), ("a", 3), None, True])
def test_shape_not_ints(shape):
    with pytest.raises(TypeError, match="shape"):
        init.xavier_normal(shape)


@pytest.mark.parametrize("kind", ["kaiming_uniform", "kaiming_normal"])
def test_bad_mode_and_nonlinearity(kind):
    f = getattr(init, kind)
    with pytest.raises(ValueError, match="mode"):
        f((4, 4), mode="fan_avg")
    with pytest.raises(ValueError, match="mode"):
        f((4, 4), mode=None)
    with pytest.raises(ValueError, match="nonlinearity"):
        f((4, 4), nonlinearity="swish")
    with pytest.raises(ValueError, match="negative_slope"):
        f((4, 4), a="x")


@pytest.mark.parametrize("rng", [1.5, "seed", True, np.random.RandomState(0)])
def test_bad_rng(rng):
    with pytest.raises(TypeError, match="rng"):
        init.xavier_uniform((3, 3), rng=rng)


def test_negative_seed_and_bad_gain():
    with pytest.raises(ValueError, match="seed"):
        init.xavier_uniform((3, 3), rng=-1)
    with pytest.raises(TypeError, match="gain"):
        init.xavier_uniform((3, 3), gain="1")
    with pytest.raises(ValueError, match="gain"):
        init.xavier_normal((3, 3), gain=float("nan"))
