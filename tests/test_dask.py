"""The Dask backend on a real dask.distributed cluster: two worker processes with one
thread each.  Every function against the in-memory NumPy path (bitwise where the
arithmetic is the same, a few ulp where the statistics are merged in another order) and
against float64 NumPy references; the statistics of an array larger than a worker's
memory, generated and reduced on the workers; argument errors raised at call time.
Skips when dask or distributed is not installed."""

import logging
import math
import os
import platform

import numpy as np
import pytest

import cyrelu
from cyrelu import _activation_table

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

F64 = np.float64


def _data(rng, shape, dtype=np.float32, loc=0.0, scale=1.0):
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def _close_ulps(got, want, ulps=4):
    """Within a few float32 ulp (float16's for float16 data) of the output's scale: a
    statistic that differs in its last bit moves an output near zero by an ulp of its
    neighbours, not of itself, and a float64 output by an ulp of ``x * invstd``."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    eps = np.finfo(np.float16 if want.dtype == np.float16 else np.float32).eps
    tol = ulps * eps * np.maximum(np.abs(want.astype(F64)), 1.0)
    err = np.abs(got.astype(F64) - want.astype(F64))
    assert np.all(err <= tol), float(np.max(err / tol))


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view("u%d" % a.itemsize)


# ---- the cluster does the work --------------------------------------------------------


def test_work_runs_on_the_worker_processes(client, rng):
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    x = da.from_array(_data(rng, (64, 8, 16)), chunks=(8, 8, 16))
    with distributed.get_task_stream(client) as ts:
        y = cyrelu.relu(x).compute()
        stats = cyrelu.batch_norm(x, training=True, return_stats=True)[1]
    assert y.shape == x.shape and stats.shape == (8,)
    names = {t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in ts.data}
    assert any(n.startswith("relu-") for n in names), names
    assert any(n.startswith("cyrelu-moments") for n in names), names
    workers = set(client.scheduler_info()["workers"])
    assert {t["worker"] for t in ts.data} <= workers


# ---- elementwise ----------------------------------------------------------------------

SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 6.0, -1e-30, 1e-30, 3.0])


def _elementwise_input(rng, dtype):
    x = _data(rng, (37, 21), F64, scale=4.0)
    x.flat[: SPECIAL.size] = SPECIAL
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", _activation_table.NAMES)
def test_every_activation_of_the_table(client, rng, name, dtype):
    forward, backward = getattr(cyrelu, name), getattr(cyrelu, name + "_backward")
    table_params = _activation_table.TABLE[name].params
    params = {p[0]: "tanh" if p[2] == "approximate" else 0.3 for p in table_params}
    xn = _elementwise_input(rng, dtype)
    gn = _data(rng, xn.shape, dtype)
    x = da.from_array(xn, chunks=(10, 8))
    y = forward(x, **params)
    assert isinstance(y, da.Array) and y.chunks == x.chunks and y.dtype == xn.dtype
    np.testing.assert_array_equal(_bits(y.compute()), _bits(forward(xn, **params)))
    # a gradient with other chunks is rechunked to x's; an in-memory one is cut into them
    for g in (da.from_array(gn, chunks=(7, 21)), gn):
        dx = backward(g, x, **params)
        assert isinstance(dx, da.Array) and dx.chunks == x.chunks
        np.testing.assert_array_equal(_bits(dx.compute()), _bits(backward(gn, xn, **params)))


def test_relu_against_a_numpy_reference(client, rng):
    xn = _elementwise_input(rng, np.float32)
    y = cyrelu.relu(da.from_array(xn, chunks=9)).compute()
    want = np.where(xn > 0, xn, np.where(np.isnan(xn), xn, np.float32(0)) * (xn < 0))
    want = np.where(xn == 0, xn, want)  # -0.0 stays -0.0
    np.testing.assert_array_equal(_bits(y), _bits(want.astype(np.float32)))


# ---- workers that keep freed memory ----------------------------------------------------

# docs/dask.md, "Worker memory": one malloc arena, no mmap'd chunks, no trimming below 4 GiB
KEEP_FREED_MEMORY = {
    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_MAX_": 0,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 4 << 30,
}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the MALLOC_* settings are glibc's")
def test_workers_that_keep_freed_memory():
    """Workers started with docs/dask.md's setting: relu's chunks larger than glibc's
    largest mmap threshold (32 MiB) are bitwise right, and a freed chunk stays with the
    worker's malloc (free bytes it holds, glibc's mallinfo2) for the next one."""
    import dask

    def free_after_a_chunk():
        import ctypes

        class MallInfo2(ctypes.Structure):
            names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks"
            _fields_ = [(f, ctypes.c_size_t) for f in [*names.split(), "keepcost"]]

        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = MallInfo2
        y = cyrelu.relu(np.ones(10_000_000, np.float32))
        del y
        return mallinfo2().fordblks

    environ = dict(os.environ)
    # the module's cluster left distributed's MALLOC_TRIM_THRESHOLD_ in this process's
    # environment, where it would win over the configuration
    for key in KEEP_FREED_MEMORY:
        os.environ.pop(key.rpartition(".")[2], None)
    try:
        with dask.config.set(KEEP_FREED_MEMORY):
            cluster = distributed.LocalCluster(
                n_workers=2,
                processes=True,
                threads_per_worker=1,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        os.environ.clear()
        os.environ.update(environ)
        with cluster, distributed.Client(cluster) as c:
            settings = c.run(
                lambda: [os.environ.get(k.rpartition(".")[2]) for k in KEEP_FREED_MEMORY]
            )
            assert all(v == ["1", "0", str(4 << 30)] for v in settings.values()), settings
            x = da.random.default_rng(0).standard_normal(
                20_000_000, chunks=10_000_000, dtype=np.float32
            )
            xn, y = c.compute([x, cyrelu.relu(x)], sync=True)
            want = np.where(xn > 0, xn, np.float32(0))
            want = np.where(xn == 0, xn, want)  # -0.0 (the generator makes a few) stays
            np.testing.assert_array_equal(_bits(y), _bits(want))
            # the 40 MB input and output, freed, are kept (glibc returns mmap'd ones)
            assert all(f >= 80_000_000 for f in c.run(free_after_a_chunk).values())
    finally:
        os.environ.clear()
        os.environ.update(environ)


# ---- BatchNorm ------------------------------------------------------------------------

LAYOUTS = [  # (shape, axis, chunks): the batch, the spatial axes and the channels split
    ((24, 6, 10, 12), 1, (7, 4, 5, 12)),
    ((24, 10, 12, 6), -1, (9, 10, 5, 4)),
    ((40, 5), 1, (13, 2)),
    ((6, 40, 3), 0, (4, 11, 2)),
]


def _reference(x64, axis, momentum, eps, rm, rv):
    red = tuple(d for d in range(x64.ndim) if d != axis)
    n = x64.size // x64.shape[axis]
    mean = x64.mean(axis=red)
    var = ((x64 - np.expand_dims(mean, red)) ** 2).mean(axis=red)
    new_rm = (1 - momentum) * rm + momentum * mean
    new_rv = (1 - momentum) * rv + momentum * var * n / (n - 1)
    return mean, var, 1.0 / np.sqrt(var + eps), new_rm, new_rv


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_training(client, rng, shape, axis, chunks, dtype):
    ax = axis % len(shape)
    C = shape[ax]
    xn = _data(rng, shape, dtype, scale=2.0)
    # one channel with mean 1e4 and std 1: its variance must survive the merge
    idx = [slice(None)] * len(shape)
    idx[ax] = 0
    xn[tuple(idx)] = _data(rng, xn[tuple(idx)].shape, dtype, loc=1e4)
    w = _data(rng, C, np.float32)
    b = _data(rng, C, np.float32)
    rm, rv = _data(rng, C, dtype), np.abs(_data(rng, C, dtype)) + 1
    rm_np, rv_np = rm.copy(), rv.copy()
    x = da.from_array(xn, chunks=chunks)
    y, mean, invstd = cyrelu.batch_norm(
        x, rm, rv, w, b, True, 0.2, 1e-3, axis=axis, activation="relu", return_stats=True
    )
    # statistics: computed and applied before the call returned
    ref_mean, _, ref_invstd, ref_rm, ref_rv = _reference(
        xn.astype(F64), ax, 0.2, 1e-3, rm_np.astype(F64), rv_np.astype(F64)
    )
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for got, want in ((mean, ref_mean), (invstd, ref_invstd), (rm, ref_rm), (rv, ref_rv)):
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=tol, atol=0)
    # y: lazy, x's chunks, the in-memory path's output to a few ulp
    assert isinstance(y, da.Array) and y.chunks == x.chunks
    y_np, mean_np, invstd_np = cyrelu.batch_norm(
        xn, rm_np, rv_np, w, b, True, 0.2, 1e-3, axis=axis, activation="relu", return_stats=True
    )
    _close_ulps(y.compute(), y_np)
    np.testing.assert_allclose(rm, rm_np, rtol=tol)
    np.testing.assert_allclose(rv, rv_np, rtol=tol)
    assert mean.dtype == mean_np.dtype and invstd.dtype == invstd_np.dtype


def test_batch_norm_statistics_need_no_cancellation(client):
    """Channels of mean 1e8 and std 1 (float64): E[x**2] - E[x]**2 would lose the
    variance entirely; the merged (count, mean, M2) keep it."""
    rng = np.random.default_rng(3)
    xn = rng.standard_normal((4000, 3)) + np.array([1e8, -1e8, 0.0])
    x = da.from_array(xn, chunks=(333, 2))
    _, _, invstd = cyrelu.batch_norm(x, training=True, eps=1e-12, return_stats=True)
    var = 1.0 / invstd**2
    ref = ((xn - xn.mean(axis=0)) ** 2).mean(axis=0)
    np.testing.assert_allclose(var, ref, rtol=1e-6)


def test_batch_norm_float16(client, rng):
    xn = _data(rng, (16, 4, 9, 9), np.float16)
    x = da.from_array(xn, chunks=(5, 3, 9, 4))
    y, mean, invstd = cyrelu.batch_norm(x, training=True, return_stats=True)
    y_np, mean_np, invstd_np = cyrelu.batch_norm(xn, training=True, return_stats=True)
    assert y.dtype == np.float16
    np.testing.assert_allclose(mean, mean_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(invstd, invstd_np, rtol=1e-6)
    _close_ulps(y.compute(), y_np, ulps=1)


@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_inference_is_lazy_and_bitwise(client, rng, shape, axis, chunks):
    C = shape[axis % len(shape)]
    xn = _data(rng, shape)
    rm, rv = _data(rng, C), np.abs(_data(rng, C)) + 0.5
    w = _data(rng, C)
    rm0, rv0 = rm.copy(), rv.copy()
    x = da.from_array(xn, chunks=chunks)
    y, m, s = cyrelu.batch_norm(
        x, rm, rv, w, None, axis=axis, activation="leaky_relu", alpha=0.1, return_stats=True
    )
    assert isinstance(y, da.Array) and y.chunks == x.chunks
    y_np, m_np, s_np = cyrelu.batch_norm(
        xn, rm, rv, w, None, axis=axis, activation="leaky_relu", alpha=0.1, return_stats=True
    )
    np.testing.assert_array_equal(_bits(y.compute()), _bits(y_np))
    np.testing.assert_array_equal(m, m_np)
    np.testing.assert_array_equal(s, s_np)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)


@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_backward_hardtanh_bounds(client, rng, shape, axis, chunks):
    """hardtanh's bounds (activation_params) reach every chunk's fused backward: the
    NumPy result, and not the default bounds' one."""
    C = shape[axis % len(shape)]
    xn, gn, w = _data(rng, shape), _data(rng, shape), _data(rng, C)
    ap = {"min_val": -0.5, "max_val": 0.25}
    kw = dict(axis=axis, activation="hardtanh", activation_params=ap)
    y_np, mean, invstd = cyrelu.batch_norm(xn, None, None, w, None, True, return_stats=True, **kw)
    x, g = da.from_array(xn, chunks=chunks), da.from_array(gn, chunks=chunks)
    y = da.from_array(y_np, chunks=chunks)
    gi, gw, gb = cyrelu.batch_norm_backward(g, x, mean, invstd, w, output=y, **kw)
    want = cyrelu.batch_norm_backward(gn, xn, mean, invstd, w, output=y_np, **kw)
    np.testing.assert_allclose(gi.compute(), want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, want[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, want[2], rtol=1e-5, atol=1e-5)
    kw["activation_params"] = None
    default = cyrelu.batch_norm_backward(g, x, mean, invstd, w, output=y, **kw)
    assert not np.allclose(default[2], gb, rtol=1e-3, atol=1e-3)


_ERF = np.vectorize(math.erf)
# the derivatives of test_batch_norm_backward_from_bias's cases, float64
_DERIVATIVE = {
    "relu": lambda z: (z > 0) * 1.0,
    "hardtanh": lambda z: ((z > -0.5) & (z < 0.25)) * 1.0,
    "leaky_relu": lambda z: np.where(z > 0, 1.0, -0.3),
    "hardswish": lambda z: np.where(z < -3, 0.0, np.where(z > 3, 1.0, z / 3 + 0.5)),
    "gelu": lambda z: (
        0.5 * (1 + _ERF(z / math.sqrt(2))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    ),
    "elu": lambda z: np.where(z > 0, 1.0, 0.7 * np.exp(z)),
    "softplus": lambda z: np.where(2 * z > 3, 1.0, 1 / (1 + np.exp(-2 * z))),
}


@pytest.mark.parametrize(
    "activation,ap", [("relu", None), ("hardtanh", {"min_val": -0.5, "max_val": 0.25}),
                      ("leaky_relu", {"alpha": -0.3}), ("leaky_relu", -0.3),
                      ("hardswish", None), ("gelu", None), ("elu", 0.7),
                      ("softplus", {"beta": 2.0, "threshold": 3.0})],
)  # fmt: skip
@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_backward_from_bias(client, rng, monkeypatch, shape, axis, chunks,
                                       activation, ap):  # fmt: skip
    """With bias= and no output=, each chunk's kernels take the activation's derivative at
    the pre-activation they recompute from x, the statistics, weight and bias: nothing
    is composed, and the public function gives the backend the call.  relu's and
    hardtanh's derivative at the output is the same, so the result is bitwise the
    backward from output= over the same chunks; leaky_relu with a negative slope, which
    the output cannot give, hardswish (in the kernels' loops) and the activations they
    take through L1 tiles (gelu, elu, softplus), against NumPy's backward with bias=."""
    from cyrelu.dask import batchnorm as dbn

    C = shape[axis % len(shape)]
    xn, gn, w, b = _data(rng, shape), _data(rng, shape), _data(rng, C), _data(rng, C)
    kw = dict(axis=axis, activation=activation)  # leaky_relu's slope by name, or as alpha=
    kw.update(dict(alpha=ap) if isinstance(ap, float) else dict(activation_params=ap))
    y_np, mean, invstd = cyrelu.batch_norm(xn, None, None, w, b, True, return_stats=True, **kw)
    want = cyrelu.batch_norm_backward(gn, xn, mean, invstd, w, bias=b, **kw)
    x, g = da.from_array(xn, chunks=chunks), da.from_array(gn, chunks=chunks)
    got, gw, gb = _backward_in_the_chunks(monkeypatch, g, x, mean, invstd, w, {"bias": b}, kw)
    if activation in ("relu", "hardtanh"):
        y = da.from_array(y_np, chunks=chunks)
        gi_y, gw_y, gb_y = dbn.batch_norm_backward(g, x, mean, invstd, w, output=y, **kw)
        np.testing.assert_array_equal(_bits(got), _bits(gi_y.compute()))
        np.testing.assert_array_equal(gw, gw_y)
        np.testing.assert_array_equal(gb, gb_y)
    _check_against(got, gw, gb, want, xn, gn, mean, invstd, w, b, axis, activation)


def _check_against(got, gw, gb, want, xn, gn, mean, invstd, w, b, axis, activation):
    """The chunks' gradients against NumPy's same call (``want``), and grad_bias against a
    float64 reference: dy gated at the pre-activation recomputed from x, the statistics,
    weight and bias."""
    np.testing.assert_allclose(gw, want[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, want[2], rtol=1e-5, atol=1e-5)
    scale = np.abs(want[0]).max()
    np.testing.assert_allclose(got, want[0], rtol=0, atol=8 * np.finfo(np.float32).eps * scale)
    ax = axis % xn.ndim
    red = tuple(d for d in range(xn.ndim) if d != ax)
    z = (xn.astype(F64) - np.expand_dims(mean.astype(F64), red)) * np.expand_dims(
        (invstd * w).astype(F64), red
    ) + np.expand_dims(b.astype(F64), red)
    g64 = gn.astype(F64) * _DERIVATIVE[activation](z)
    np.testing.assert_allclose(gb, g64.sum(axis=red), rtol=1e-4, atol=1e-4)


def _backward_in_the_chunks(monkeypatch, g, x, mean, invstd, w, src, kw):
    """The Dask backend's batch_norm_backward (``src``: bias= or output=) with nothing
    composed (the gating helper and the public function patched to raise), the same as
    the public function's (which hands the call over as it is: the same graph); returns
    (grad_input computed, grad_weight, grad_bias)."""
    from cyrelu import batchnorm as cbn
    from cyrelu.dask import batchnorm as dbn

    def composed(*args, **kwargs):
        raise AssertionError("composed (gated in a pass of its own)")

    monkeypatch.setattr(cbn, "_gated", composed)
    public = cyrelu.batch_norm_backward(g, x, mean, invstd, w, **src, **kw)
    monkeypatch.setattr(cyrelu, "batch_norm_backward", composed)
    gi, gw, gb = dbn.batch_norm_backward(g, x, mean, invstd, w, **src, **kw)
    got = gi.compute()
    np.testing.assert_array_equal(_bits(public[0].compute()), _bits(got))
    np.testing.assert_array_equal(public[1], gw)
    np.testing.assert_array_equal(public[2], gb)
    return got, gw, gb


_SELU_A, _SELU_S = 1.6732632423543772848, 1.0507009873554804934
_DERIVATIVE["celu"] = lambda z: np.where(z > 0, 1.0, np.exp(z / 1.3))
_DERIVATIVE["selu"] = lambda z: np.where(z > 0, _SELU_S, _SELU_S * _SELU_A * np.exp(z))


@pytest.mark.parametrize("activation,alpha", [("elu", 0.7), ("celu", 1.3), ("selu", None)])
@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_backward_from_the_output_of_elu_celu_selu(
    client, rng, monkeypatch, shape, axis, chunks, activation, alpha
):
    """output= without bias= for elu, celu and selu: each chunk's kernels read the
    derivative from the output (the NumPy kernels' result gate), nothing composed, and
    the public function gives the backend the call; against NumPy's same call, and
    grad_bias against a float64 reference gated at the pre-activation."""

    C = shape[axis % len(shape)]
    xn, gn, w, b = _data(rng, shape), _data(rng, shape), _data(rng, C), _data(rng, C)
    kw = dict(axis=axis, activation=activation, alpha=alpha)
    y_np, mean, invstd = cyrelu.batch_norm(xn, None, None, w, b, True, return_stats=True, **kw)
    want = cyrelu.batch_norm_backward(gn, xn, mean, invstd, w, output=y_np, **kw)
    x, g = da.from_array(xn, chunks=chunks), da.from_array(gn, chunks=chunks)
    y = da.from_array(y_np, chunks=chunks)
    got, gw, gb = _backward_in_the_chunks(monkeypatch, g, x, mean, invstd, w, {"output": y}, kw)
    _check_against(got, gw, gb, want, xn, gn, mean, invstd, w, b, axis, activation)


@pytest.mark.parametrize(
    "activation,training", [(None, True), ("relu", True), ("leaky_relu", False)]
)
@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_batch_norm_backward(client, rng, shape, axis, chunks, activation, training):
    ax = axis % len(shape)
    C = shape[ax]
    xn = _data(rng, shape)
    gn = _data(rng, shape)
    w = _data(rng, C)
    y_np, mean, invstd = cyrelu.batch_norm(
        xn, None, None, w, None, True, axis=axis, activation=activation, return_stats=True
    )
    x = da.from_array(xn, chunks=chunks)
    g = da.from_array(gn, chunks=[(s + 1) // 2 for s in shape])  # rechunked to x's
    output = None if activation is None else da.from_array(y_np, chunks=chunks)
    gi, gw, gb = cyrelu.batch_norm_backward(
        g, x, mean, invstd, w, training=training, axis=axis, activation=activation, output=output
    )
    gi_np, gw_np, gb_np = cyrelu.batch_norm_backward(
        gn, xn, mean, invstd, w, training=training, axis=axis, activation=activation, output=y_np
    )
    assert isinstance(gi, da.Array) and gi.chunks == x.chunks
    assert isinstance(gw, np.ndarray) and gw.dtype == gw_np.dtype
    # the parameter gradients against a float64 reference
    red = tuple(d for d in range(len(shape)) if d != ax)
    g64 = gn.astype(F64)
    if activation is not None:
        g64 = np.where(y_np > 0, g64, 0.0 if activation == "relu" else 0.2 * g64)
    centred = xn.astype(F64) - np.expand_dims(mean.astype(F64), red)
    np.testing.assert_allclose(gb, g64.sum(axis=red), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, (g64 * centred).sum(axis=red) * invstd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, gw_np, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb, gb_np, rtol=1e-6, atol=1e-6)
    got = gi.compute()
    scale = np.max(np.abs(gi_np))
    np.testing.assert_allclose(got, gi_np, rtol=0, atol=8 * np.finfo(np.float32).eps * scale)


@pytest.mark.parametrize(
    "activation,ap,source",
    [("elu", None, "output"), ("hardtanh", {"min_val": -0.5, "max_val": 0.5}, "output"),
     ("gelu", {"approximate": "tanh"}, "bias"), ("softplus", {"beta": 2.0}, "bias")],
)  # fmt: skip
def test_batch_norm_composed_activations(client, rng, activation, ap, source):
    """Activations with parameters besides alpha: each chunk's fused kernels take them
    (activation_params passed on by name), and the backward gated from output= or from
    the pre-activation recomputed with bias=, as on NumPy (the same steps, chunk by
    chunk)."""
    shape, axis, chunks = (64, 6, 10), 1, (16, 3, 5)
    xn, gn = _data(rng, shape), _data(rng, shape)
    w, b = _data(rng, 6) + 2, _data(rng, 6)
    kw = dict(training=True, axis=axis, activation=activation, activation_params=ap)
    y_np, mean, invstd = cyrelu.batch_norm(xn, None, None, w, b, return_stats=True, **kw)
    x = da.from_array(xn, chunks=chunks)
    y, m, _ = cyrelu.batch_norm(x, None, None, w, b, return_stats=True, **kw)
    assert isinstance(y, da.Array) and y.chunks == x.chunks
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_allclose(y.compute(), y_np, rtol=0, atol=4e-6 * np.abs(y_np).max())
    src = dict(bias=b) if source == "bias" else dict(output=da.from_array(y_np, chunks=chunks))
    src_np = dict(bias=b) if source == "bias" else dict(output=y_np)
    g = da.from_array(gn, chunks=chunks)
    gi, gw, gb = cyrelu.batch_norm_backward(g, x, mean, invstd, w, **kw, **src)
    want = cyrelu.batch_norm_backward(gn, xn, mean, invstd, w, **kw, **src_np)
    assert isinstance(gi, da.Array) and isinstance(gw, np.ndarray)
    np.testing.assert_allclose(gw, want[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, want[2], rtol=1e-5, atol=1e-5)
    scale = np.abs(want[0]).max()
    np.testing.assert_allclose(gi.compute(), want[0], rtol=0, atol=1e-5 * scale)


# ---- diagnostics ------------------------------------------------------------------------


@pytest.mark.parametrize("shape,axis,chunks", LAYOUTS)
def test_diagnostics(client, rng, shape, axis, chunks):
    ax = axis % len(shape)
    xn = cyrelu.relu(_data(rng, shape))
    idx = [slice(None)] * len(shape)
    idx[ax] = 1
    xn[tuple(idx)] = -np.abs(xn[tuple(idx)]) - 1  # a dead channel
    x = da.from_array(xn, chunks=chunks)
    red = tuple(d for d in range(len(shape)) if d != ax)
    dead = cyrelu.dead_units(x - 0.5, axis=axis, threshold=-0.5)
    assert isinstance(dead, np.ndarray) and dead.dtype == np.bool_
    np.testing.assert_array_equal(dead, np.all(xn <= 0, axis=red))
    np.testing.assert_array_equal(
        dead, cyrelu.dead_units(xn - np.float32(0.5), axis=axis, threshold=-0.5)
    )
    overall = cyrelu.sparsity(x)
    assert isinstance(overall, float) and overall == np.count_nonzero(xn == 0) / xn.size
    per = cyrelu.sparsity(x, axis=axis)
    assert isinstance(per, np.ndarray) and per.dtype == F64
    np.testing.assert_array_equal(per, cyrelu.sparsity(xn, axis=axis))
    np.testing.assert_array_equal(per, (xn == 0).sum(axis=red) / (xn.size // xn.shape[ax]))


# ---- the layers -----------------------------------------------------------------------


def test_layers_take_dask_arrays(client, rng):
    xn = _data(rng, (32, 4, 6, 6))
    gn = _data(rng, xn.shape)
    x = da.from_array(xn, chunks=(8, 2, 6, 6))
    for make in (cyrelu.nn.ReLU, cyrelu.nn.ReLU6, lambda: cyrelu.nn.LeakyReLU(0.1)):
        layer, ref = make(), make()
        y = layer(x)
        assert isinstance(y, da.Array)
        np.testing.assert_array_equal(y.compute(), ref(xn))
        np.testing.assert_array_equal(layer.backward(gn).compute(), ref.backward(gn))
    bn = cyrelu.nn.BatchNorm(4, activation="relu")
    ref = cyrelu.nn.BatchNorm(4, activation="relu")
    y = bn(x)
    _close_ulps(y.compute(), ref(xn))
    np.testing.assert_allclose(bn.running_mean, ref.running_mean, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, ref.running_var, rtol=1e-6)
    gi = bn.backward(gn)
    gi_ref = ref.backward(gn)
    assert isinstance(gi, da.Array)
    np.testing.assert_allclose(
        gi.compute(), gi_ref, rtol=0, atol=8 * np.finfo(np.float32).eps * np.max(np.abs(gi_ref))
    )
    np.testing.assert_allclose(bn.grad_weight, ref.grad_weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.grad_bias, ref.grad_bias, rtol=1e-5, atol=1e-6)
    bn.eval()
    ref.eval()
    np.testing.assert_array_equal(bn(x).compute(), ref(xn))


# ---- errors at call time --------------------------------------------------------------


def _boom(block):
    raise AssertionError("the graph was computed")


class _FakeCupyArray:
    """Stands for a CuPy array: only its type's module matters to the dispatch."""

    __module__ = "cupy"
    shape = (8, 4)
    dtype = np.dtype(np.float32)


def test_errors_come_at_call_time_before_any_graph(client, rng):
    # a graph that fails if computed: every error below must come before compute()
    x = da.from_array(_data(rng, (8, 4)), chunks=4).map_blocks(_boom, dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        cyrelu.relu_backward(np.zeros((8, 5), np.float32), x)
    with pytest.raises(ValueError, match="shape"):
        cyrelu.relu_backward(da.zeros((8, 5), dtype=np.float32, chunks=4), x)
    with pytest.raises(TypeError, match="dtype"):
        cyrelu.relu_backward(np.zeros((8, 4), np.float64), x)
    with pytest.raises(TypeError, match="cupy"):
        cyrelu.relu_backward(_FakeCupyArray(), x)
    with pytest.raises(TypeError, match="dtype"):
        cyrelu.relu(da.zeros((8, 4), dtype=np.int32, chunks=4))
    with pytest.raises(TypeError, match="out"):
        cyrelu.relu(x, out=np.empty((8, 4), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        cyrelu.leaky_relu(x, np.nan)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.relu(x, num_threads=0)
    with pytest.raises(ValueError, match="axis"):
        cyrelu.batch_norm(x, training=True, axis=2)
    with pytest.raises(TypeError, match="axis"):
        cyrelu.batch_norm(x, training=True, axis=1.0)
    with pytest.raises(ValueError, match="length C=4"):
        cyrelu.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), training=True)
    with pytest.raises(TypeError, match="weight"):
        cyrelu.batch_norm(x, weight=da.ones(4, chunks=2), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        cyrelu.batch_norm(x)
    with pytest.raises(ValueError, match="output"):
        cyrelu.batch_norm_backward(x, x, np.zeros(4), np.ones(4), activation="relu")
    with pytest.raises(ValueError, match="axis"):
        cyrelu.dead_units(x, axis=3)
    with pytest.raises(ValueError, match="axis"):
        cyrelu.sparsity(x, axis=-3)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cyrelu.relu(x[x > 0])


# ---- larger than a worker's memory ----------------------------------------------------

# (n, c, h, w) -> OFFSETS[c] + PATTERN[(n + h + w) % 4]: every channel holds each pattern
# value equally often (N is a multiple of 4), so its mean is OFFSETS[c] and its biased
# variance 2, exactly; channel 0 is zero where the pattern is 0 (half its values),
# channel 1 where it is -2 (a quarter).
PATTERN = np.array([-2.0, 0.0, 0.0, 2.0], dtype=np.float32)
OFFSETS = np.array([0.0, 2.0, 1e4, -3e4, 5.0, -7.0, 250.0, 1e3], dtype=np.float32)


def _pattern_block(block_info=None):
    info = block_info[None]
    (n0, n1), (c0, c1), (h0, h1), (w0, w1) = info["array-location"]
    k = (
        np.arange(n0, n1)[:, None, None]
        + np.arange(h0, h1)[None, :, None]
        + np.arange(w0, w1)[None, None, :]
    ) % 4
    return PATTERN[k][:, None] + OFFSETS[None, c0:c1, None, None]


def test_statistics_of_an_array_larger_than_a_worker_memory(client):
    shape = (800, 8, 250, 250)  # 1.6 GB of float32, in 64 MB chunks
    x = da.map_blocks(
        _pattern_block,
        chunks=da.core.normalize_chunks((32, 8, 250, 250), shape),
        dtype=np.float32,
        meta=np.empty((0,) * 4, np.float32),
    )
    limit = min(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
    assert x.nbytes > limit and x.nbytes / x.npartitions == 64_000_000
    rm, rv = np.zeros(8, np.float32), np.ones(8, np.float32)
    with distributed.get_task_stream(client) as ts:
        y, mean, invstd = cyrelu.batch_norm(
            x, rm, rv, training=True, momentum=1.0, return_stats=True
        )
        zeros = cyrelu.sparsity(x, axis=1)
    n = x.size // 8
    np.testing.assert_allclose(mean, OFFSETS, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(2.0 + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(rm, OFFSETS, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv, 2.0 * n / (n - 1), rtol=1e-6)
    np.testing.assert_array_equal(zeros, [0.5, 0.25, 0, 0, 0, 0, 0, 0])
    assert isinstance(y, da.Array)
    # reduced where the chunks were made: nothing spilled to disk
    actions = {s["action"] for t in ts.data for s in t["startstops"]}
    assert "disk-write" not in actions, actions
