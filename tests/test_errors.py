"""One error contract: each kind of mistake raises one exception type everywhere,
and a failed call changes nothing."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cyrelu
from cyrelu import _activation_table as table, nn

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
HUGE = 2**1100  # an int too large for a float


# ---- numbers: out of range is a ValueError naming the argument ---------------------


@pytest.mark.parametrize("bad", [2**70, 2**31, 0, -1, True, 1.5, "2"])
def test_num_threads_out_of_range_is_a_value_error(bad):
    x = np.ones(10, np.float32)
    calls = [
        lambda: cyrelu.relu(x, num_threads=bad),
        lambda: cyrelu.relu(x[::2], num_threads=bad),
        lambda: cyrelu.leaky_relu(x, 0.1, num_threads=bad),
        lambda: cyrelu.relu_backward(x, x, num_threads=bad),
        lambda: cyrelu.batch_norm(x.reshape(5, 2), None, None, training=True, num_threads=bad),
        lambda: cyrelu.dead_units(x.reshape(5, 2), num_threads=bad),
        lambda: cyrelu.sparsity(x, num_threads=bad),
        lambda: cyrelu._parallel.effective_n_threads(bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="num_threads"):
            call()


def test_large_num_threads_within_range_is_fine():
    x = np.ones(100_000, np.float32)
    assert cyrelu.relu(x, num_threads=2**31 - 1).sum() == 100_000


def test_huge_scalars_are_value_errors_naming_the_argument():
    x = np.ones((4, 3), np.float32)
    cases = [
        ("alpha", lambda: cyrelu.leaky_relu(x, HUGE)),
        ("alpha", lambda: cyrelu.leaky_relu(x[:, ::2], HUGE)),
        ("alpha", lambda: cyrelu.leaky_relu_backward(x, x, HUGE)),
        (
            "alpha",
            lambda: cyrelu.batch_norm(
                x, None, None, training=True, activation="leaky_relu", alpha=HUGE
            ),
        ),
        ("eps", lambda: cyrelu.batch_norm(x, None, None, training=True, eps=HUGE)),
        ("momentum", lambda: cyrelu.batch_norm(x, None, None, training=True, momentum=HUGE)),
        ("threshold", lambda: cyrelu.dead_units(x, threshold=HUGE)),
        ("threshold", lambda: cyrelu.dead_units(x, threshold=-HUGE)),
        ("eps", lambda: cyrelu.fold_batch_norm(x, None, np.zeros(4), np.ones(4), eps=HUGE)),
        ("alpha", lambda: nn.LeakyReLU(HUGE)),
        ("eps", lambda: nn.BatchNorm(3, eps=HUGE)),
        ("momentum", lambda: nn.BatchNorm(3, momentum=HUGE)),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=name):
            call()


@pytest.mark.parametrize("a", [float("nan"), float("inf"), -float("inf"), HUGE, "0.1", True])
@pytest.mark.parametrize("fn", ["kaiming_uniform", "kaiming_normal"])
def test_kaiming_slope_not_a_finite_number_is_a_value_error(fn, a):
    with pytest.raises(ValueError, match="negative_slope"):
        getattr(cyrelu.init, fn)((4, 5), a=a)
    with pytest.raises(ValueError, match="negative_slope"):
        cyrelu.init.calculate_gain("leaky_relu", a)


# ---- the layers follow the functions' input rules ------------------------------------


class _ArrayLike:
    def __array__(self, dtype=None, copy=None):
        return np.ones(3, np.float32)


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.1)])
def test_activation_layers_reject_what_the_functions_reject(layer):
    fn = cyrelu.relu if isinstance(layer, nn.ReLU) else cyrelu.leaky_relu
    masked = np.ma.masked_array(np.ones(3, np.float32), mask=[0, 1, 0])
    for bad in (masked, _ArrayLike(), np.ones(3, np.int64), "abc"):
        with pytest.raises(TypeError) as from_fn:
            fn(bad)
        with pytest.raises(TypeError) as from_layer:
            layer(bad)
        assert str(from_layer.value) == str(from_fn.value)
    assert layer._x is None  # nothing was kept from the failed calls
    # what the functions accept, the layers accept (lists included)
    y = layer([1.0, -2.0])
    np.testing.assert_array_equal(
        layer.backward([1.0, 1.0]),
        cyrelu.relu_backward([1.0, 1.0], [1.0, -2.0])
        if isinstance(layer, nn.ReLU)
        else cyrelu.leaky_relu_backward([1.0, 1.0], [1.0, -2.0], 0.1),
    )
    assert y.shape == (2,)


_LAYERS = {
    "leaky_relu": nn.LeakyReLU,
    "hardtanh": nn.Hardtanh,
    "elu": nn.ELU,
    "celu": nn.CELU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
}
_PARAMETERISED = [(n, k, p[0]) for n, e in table.TABLE.items() for k, p in enumerate(e.params)]


@pytest.mark.parametrize("name,index,param", _PARAMETERISED)
def test_none_for_an_activation_parameter_is_a_type_error(name, index, param):
    """None is no number: a TypeError naming the parameter, from the functions (fast and
    general paths, forward and backward) and the layers, never the default."""
    defaults = [d for _, d, _ in table.TABLE[name].params]
    args = [*defaults[:index], None, *defaults[index + 1 :]]
    fwd, bwd = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
    x = np.linspace(-2, 2, 8, dtype=np.float32)
    calls = [
        lambda: fwd(x, *args),
        lambda: fwd(x[::2], *args),
        lambda: fwd(x.tolist(), *args),
        lambda: bwd(x, x, *args),
        lambda: bwd(x[::2], x[::2], *args),
        lambda: fwd(x, **{param: None}),
    ]
    calls.append(lambda: _LAYERS[name](**{param: None}))
    for call in calls:
        with pytest.raises(TypeError, match=param):
            call()


def test_activation_layers_reject_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.ones(3)
    for layer in (nn.ReLU(), nn.LeakyReLU()):
        with pytest.raises(TypeError):
            layer(t)


# ---- BatchNorm.load_state_dict: checked before anything is assigned ------------------


def _layer():
    layer = nn.BatchNorm(3)
    layer.weight[:] = [1, 2, 3]
    layer.running_mean[:] = [4, 5, 6]
    layer.num_batches_tracked = 7
    return layer


def _snapshot(layer):
    return {k: np.array(v, copy=True) for k, v in layer.state_dict().items()}


@pytest.mark.parametrize(
    "change,exc",
    [
        (None, TypeError),
        ("not a mapping", TypeError),
        ({"running_mean": np.array([1 + 2j, 0, 0])}, TypeError),
        ({"weight": np.array(["a", "b", "c"])}, TypeError),
        ({"bias": np.array([object(), None, 1], dtype=object)}, TypeError),
        ({"num_batches_tracked": np.array(2.7)}, ValueError),
        ({"num_batches_tracked": np.array(-1)}, ValueError),
        ({"num_batches_tracked": np.array(np.nan)}, ValueError),
        ({"num_batches_tracked": np.array(3 + 0j)}, TypeError),
        ({"num_batches_tracked": np.array([1, 2])}, ValueError),
        ({"running_var": np.ones(4)}, ValueError),
    ],
)
def test_load_state_dict_rejects_and_leaves_the_layer_unchanged(change, exc):
    layer = _layer()
    before = _snapshot(layer)
    if isinstance(change, dict):
        state = dict(before)
        state["weight"] = np.array([9.0, 9.0, 9.0])  # a valid change, listed first
        state.update(change)
    else:
        state = change
    with pytest.raises(exc):
        layer.load_state_dict(state)
    after = _snapshot(layer)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_load_state_dict_accepts_integral_values():
    layer = _layer()
    state = _snapshot(layer)
    state["num_batches_tracked"] = np.array(3.0)
    state["running_var"] = np.array([1, 2, 3])  # ints become the layer's float dtype
    layer.load_state_dict(state)
    assert layer.num_batches_tracked == 3 and type(layer.num_batches_tracked) is int
    assert layer.running_var.dtype == np.float32
    np.testing.assert_array_equal(layer.running_var, [1, 2, 3])


# ---- ndarray subclasses are accepted alike for every array argument ------------------


def test_batch_norm_accepts_memmap_for_every_argument(tmp_path, rng):
    C = 4
    x = rng.standard_normal((50, C)).astype(np.float32)

    def mm(name, a):
        m = np.memmap(tmp_path / name, dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        return m

    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    w, b = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    want, m_want, s_want = cyrelu.batch_norm(x, rm, rv, w, b, True, return_stats=True)
    rm_m, rv_m = mm("rm", np.zeros(C, np.float32)), mm("rv", np.ones(C, np.float32))
    got, m_got, s_got = cyrelu.batch_norm(
        mm("x", x), rm_m, rv_m, mm("w", w), mm("b", b), True, return_stats=True
    )
    np.testing.assert_array_equal(got, want)
    # the memmapped running statistics were updated in place
    np.testing.assert_array_equal(np.asarray(rm_m), rm)
    np.testing.assert_array_equal(np.asarray(rv_m), rv)
    gi = cyrelu.batch_norm_backward(x, x, mm("m", m_got), mm("s", s_got), mm("w2", w))
    gi_want = cyrelu.batch_norm_backward(x, x, m_want, s_want, w)
    for a, b_ in zip(gi, gi_want, strict=True):
        np.testing.assert_array_equal(a, b_)


def test_batch_norm_rejects_masked_per_channel_arrays():
    x = np.ones((5, 3), np.float32)
    masked = np.ma.masked_array(np.ones(3, np.float32), mask=[0, 1, 0])
    for kw in ("running_mean", "weight", "bias"):
        args = dict(running_mean=np.zeros(3, np.float32), running_var=np.ones(3, np.float32))
        args[kw] = masked
        with pytest.raises(TypeError, match="masked"):
            cyrelu.batch_norm(x, training=True, **args)


# ---- CYRELU_ISA ------------------------------------------------------------------------


def _run(code, **env):
    full = dict(os.environ)
    full.pop("CYRELU_ISA", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        cwd=_PKG_PARENT,
    )


def test_unknown_cyrelu_isa_warns_at_import_and_is_shown():
    res = _run(
        "import cyrelu, numpy as np; cyrelu.relu(np.ones(3)); cyrelu.show_config()",
        CYRELU_ISA="avx3000",
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("RuntimeWarning") == 1
    assert "avx3000" in res.stderr
    for accepted in ("base", "baseline", "avx2", "avx512", "avx-512"):
        assert accepted in res.stderr
    line = next(ln for ln in res.stdout.splitlines() if "cyrelu_isa" in ln)
    assert "'avx3000', not a known value: ignored" in line


@pytest.mark.parametrize(
    "value,request_",
    [(None, None), ("BASE", "BASE"), ("Avx2", "Avx2"), ("bogus", "invalid: bogus")],
)
def test_isa_request_in_build_info(value, request_):
    env = {} if value is None else {"CYRELU_ISA": value}
    res = _run(
        "import warnings; warnings.simplefilter('ignore'); import cyrelu; "
        "print(repr(cyrelu._parallel.build_info()['isa_request'])); "
        "print(cyrelu._parallel.build_info()['isa'])",
        **env,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == repr(request_)
    if value == "BASE":
        assert lines[1] == "baseline"
    if value is None:
        assert "Warning" not in res.stderr


def test_valid_cyrelu_isa_does_not_warn():
    res = _run("import cyrelu; cyrelu.show_config()", CYRELU_ISA="baseline")
    assert res.returncode == 0 and "Warning" not in res.stderr, res.stderr
    assert "simd_runtime    : baseline" in res.stdout
    assert "'baseline'" in next(ln for ln in res.stdout.splitlines() if "cyrelu_isa" in ln)
