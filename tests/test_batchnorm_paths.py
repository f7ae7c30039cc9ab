"""Every kernel path of the BatchNorm training forward and backward, each reached through a
shape derived from the cache planner's sizes (cyrelu._parallel.cache_info(), which
CYRELU_L2_BYTES / CYRELU_L3_BYTES override), never from this CPU's: per channel with the
slab in cache, per channel with the statistics in L2-sized row chunks, the pipelined
per-channel backward, and the row layout with its output kept in cache or streamed, with its
backward's group sums folded by several threads, and with its statistics taken in several
blocks per row group.  Each
is checked against the float64 NumPy reference and for the same bits with 1, 2 and 3
threads; the whole set is run again in fresh processes under a 512 KiB and a 2 MiB L2."""

import os
import subprocess
import sys

import numpy as np
import pytest
from test_batchnorm import pipelined_shape, ref_backward, ref_forward

import cyrelu
from cyrelu import _batchnorm, batch_norm, batch_norm_backward

THREADS = (1, 2, 3)
# rows of a channel longer than this are read paced (cyr_bn_wants_prefetch, batchnorm.h)
PACED_ROW_BYTES = 8192


def path_shapes(itemsize):
    """{path: (shape, axis)} for data of this itemsize, from the sizes in force."""
    plan = cyrelu._parallel.cache_info()
    slab, smin = plan["slab_bytes"], plan["stream_min_bytes"]
    inner = 400
    paced = 3 * PACED_ROW_BYTES // (2 * itemsize) + 7
    rows_c = 48
    return {
        # a channel's slab within half the slab size: one chunk in cache
        "channel": ((max(2, slab // 2 // (inner * itemsize)), 6, inner), 1),
        # slabs of 2.5 slab sizes: three row chunks, the last one partial
        "channel chunked": ((5 * slab // (2 * inner * itemsize) + 3, 3, inner), 1),
        "channel pipelined": (pipelined_shape(itemsize, False), 1),
        # rows over PACED_ROW_BYTES, not a whole number of pieces or lane groups: the
        # first passes read them paced, the next row prefetched piece by piece; chunked
        # like "channel chunked", so chunks end and start on paced rows
        "channel paced": ((5 * slab // (2 * paced * itemsize) + 3, 3, paced), 1),
        # row layout, output under the streaming threshold of one thread: kept in cache
        "rows cached": ((max(8, smin // 2 // (rows_c * itemsize)), rows_c), 1),
        # row layout (channels-last), output over the threshold of three threads: streamed
        "rows streamed": ((3 * smin // (3 * rows_c * itemsize) + 5, 3, rows_c), -1),
        # row layout with enough row groups and columns that the backward folds the
        # groups' sums in parallel slices of columns (the planner's constants, not the
        # cache's: checked below)
        "rows folded": ((1021, 1024), 1),
        # row layout whose groups each take their statistics in two blocks and part of a
        # third, merged in block order (checked below)
        "rows blocked": (blocked_shape(itemsize), 1),
    }


def blocked_shape(itemsize):
    """(rows, 16): the fewest rows (in steps of 37) that make several row groups, each of
    more than two blocks of the statistics and not a whole number of them."""
    dtype = {2: np.float16, 4: np.float32, 8: np.float64}[itemsize]
    w = 16
    block_rows = _batchnorm.stats_blocks(np.empty(1, dtype), 1, w, 1)[1]
    for rows in range(3 * block_rows, 400 * block_rows, 37):
        group_rows = _batchnorm.stats_blocks(np.empty(1, dtype), rows, w, 1)[0]
        if rows > group_rows > 2 * block_rows and group_rows % block_rows:
            return (rows, w)
    raise AssertionError("no shape with groups of several blocks")


def check_path(path, dtype, rng):
    """The training forward, the backward and the inference forward (which shares the
    normalising pass) of one path: where the planner sends it, the same bits for every
    thread count (and for outputs one element off alignment), the reference."""
    itemsize = np.dtype(dtype).itemsize
    shape, axis = path_shapes(itemsize)[path]
    plan = cyrelu._parallel.cache_info()
    C = shape[axis]
    outer = int(np.prod(shape[: axis % len(shape)]))
    inner = int(np.prod(shape[axis % len(shape) + 1 :]))
    nbytes = int(np.prod(shape)) * itemsize
    if path.startswith("channel"):
        assert _batchnorm.uses_channel_layout(inner), (path, shape)
    else:
        assert not _batchnorm.uses_channel_layout(inner), (path, shape)
    if path in ("channel chunked", "channel paced"):
        assert outer * inner * itemsize > 2 * plan["slab_bytes"], (path, shape, plan)
    if path == "channel paced":
        assert inner * itemsize > PACED_ROW_BYTES, (path, shape)
    if path == "channel":
        assert outer * inner * itemsize <= plan["slab_bytes"], (path, shape, plan)
    if path == "rows cached":
        assert nbytes < plan["stream_min_bytes"], (path, shape, plan)
    if path == "rows streamed":
        assert nbytes >= 3 * plan["stream_min_bytes"], (path, shape, plan)
    if path == "rows folded":
        folds = [_batchnorm.backward_fold_threads(np.empty(1, dtype), outer, C, inner, nt)
                 for nt in THREADS]  # fmt: skip
        assert folds == list(THREADS), (path, shape, folds)
    if path == "rows blocked":
        group_rows, block_rows = _batchnorm.stats_blocks(np.empty(1, dtype), outer, C, inner)
        assert outer > group_rows > 2 * block_rows and group_rows % block_rows, (path, shape)
    if path == "channel pipelined":
        for nt in THREADS:
            assert _batchnorm.backward_pipelined(np.empty(1, dtype), outer, C, inner, False, nt)

    x = (rng.standard_normal(shape) * 3 + 7).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    results = []
    for nt, offset in [(nt, 0) for nt in THREADS] + [(2, 1)]:
        rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
        buf = np.empty(x.size + 1, dtype)
        y = buf[offset : offset + x.size].reshape(shape)
        y, m, s = batch_norm(
            x, rm, rv, w, b, True, axis=axis, out=y, return_stats=True, num_threads=nt
        )
        buf = np.empty(x.size + 1, dtype)
        dx = buf[offset : offset + x.size].reshape(shape)
        gi, gw, gb = batch_norm_backward(dy, x, m, s, w, axis=axis, out=dx, num_threads=nt)
        buf = np.empty(x.size + 1, dtype)
        ye = buf[offset : offset + x.size].reshape(shape)
        ye = batch_norm(x, rm, rv, w, b, False, axis=axis, out=ye, num_threads=nt)
        results.append((y, m, s, rm, rv, gi, gw, gb, ye))
    for other in results[1:]:
        for a, b_ in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b_)

    y, m, s, rm, rv, gi, gw, gb, ye = results[0]
    ry, rmean, rinv, rrm, rrv = ref_forward(x, np.zeros(C), np.ones(C), w, b, True, axis=axis)
    f32 = dtype == np.float32
    t = dict(rtol=1e-4, atol=1e-4) if f32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m, rmean, rtol=1e-6 if f32 else 1e-12)
    np.testing.assert_allclose(s, rinv, rtol=1e-6 if f32 else 1e-10)
    np.testing.assert_allclose(rm, rrm, rtol=1e-6 if f32 else 1e-12, atol=1e-7)
    np.testing.assert_allclose(rv, rrv, rtol=1e-6 if f32 else 1e-10)
    np.testing.assert_allclose(y, ry, **t)
    np.testing.assert_allclose(ye, ref_forward(x, rm, rv, w, b, False, axis=axis)[0], **t)
    ri, rw, rb = ref_backward(dy, x, m, s, w, True, axis, None, 0.2, None)
    np.testing.assert_allclose(gi, ri, **t)
    n = x.size / C
    np.testing.assert_allclose(gw, rw, rtol=t["rtol"], atol=t["atol"] * np.sqrt(n))
    np.testing.assert_allclose(gb, rb, rtol=t["rtol"], atol=t["atol"] * np.sqrt(n))


def _needs_threads():
    if cyrelu._parallel.openmp_version() == 0:
        pytest.skip("serial build")
    if cyrelu._parallel.build_info()["isa"] == "baseline":
        pytest.skip("the pipelined backward runs with the AVX2 / AVX-512 kernels")


PATHS = [
    "channel",
    "channel chunked",
    "channel pipelined",
    "channel paced",
    "rows cached",
    "rows streamed",
    "rows folded",
    "rows blocked",
]


@pytest.mark.kernel_choice
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", PATHS)
def test_each_path(rng, path, dtype):
    _needs_threads()
    check_path(path, dtype, rng)


@pytest.mark.kernel_choice
@pytest.mark.sweeps_itself
@pytest.mark.parametrize("l2", ["512K", "2M"])
def test_each_path_under_other_cache_sizes(l2):
    """The same checks in a fresh process planning for another L2 (and an L3 of four
    times it, so that the streamed shapes stay small): float32, every path."""
    _needs_threads()
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    l2_bytes = int(l2[:-1]) << (10 if l2.endswith("K") else 20)
    env.update(CYRELU_L2_BYTES=l2, CYRELU_L3_BYTES=str(4 * l2_bytes))
    # the cyrelu under test (installed, or built in place) first: a source tree's
    # uncompiled package must not shadow an installed one
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([parent, here])
    code = (
        "import numpy as np, cyrelu, test_batchnorm_paths as t\n"
        "assert cyrelu._parallel.cache_info()['l2_bytes'] == %d\n"
        "for p in t.PATHS:\n"
        "    t.check_path(p, np.float32, np.random.default_rng(3))\n"
        "print('ok')\n" % l2_bytes
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=parent,
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


@pytest.mark.kernel_choice
@pytest.mark.parametrize("path", [p for p in PATHS if p != "channel pipelined"])
@pytest.mark.parametrize(
    "activation,ap,dtype",
    [("silu", None, np.float32), ("silu", None, np.float64),
     ("gelu", {"approximate": "tanh"}, np.float32), ("softplus", {"beta": 2.0}, np.float32),
     ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, np.float64)],
)  # fmt: skip
def test_each_forward_path_fuses_the_activations(rng, path, dtype, activation, ap):
    """The activations of activation_special.h run over whole L1 tiles (across row ends in
    the row layout, and as the streamed tile), the others within each row; both
    parameters reach the kernels: on every forward path, the training and the inference
    forward give the bits of BatchNorm then the activation's own function, for every
    thread count and for an output one element off alignment."""
    _needs_threads()
    shape, axis = path_shapes(np.dtype(dtype).itemsize)[path]
    C = shape[axis]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    fn = getattr(cyrelu, activation)
    for training in (True, False):
        rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
        want = fn(batch_norm(x, rm.copy(), rv.copy(), w, b, training, axis=axis), **(ap or {}))
        for nt, offset in [(1, 0), (2, 0), (3, 0), (2, 1)]:
            buf = np.empty(x.size + 1, dtype)
            y = buf[offset : offset + x.size].reshape(shape)
            batch_norm(x, rm.copy(), rv.copy(), w, b, training, axis=axis, out=y,
                       activation=activation, activation_params=ap, num_threads=nt)  # fmt: skip
            np.testing.assert_array_equal(y, want)


@pytest.mark.kernel_choice
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "activation,ap,source,dtype",
    [("relu", None, "output", np.float32),
     ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, "output", np.float64),
     ("leaky_relu", {"alpha": -0.2}, "bias", np.float64), ("hardtanh", None, "bias", np.float32)],
)  # fmt: skip
def test_each_backward_path_gates_by_the_activations(rng, path, dtype, activation, ap, source):
    """The fused backward on every backward path (pipelined included): the derivative read
    at the output, or at the pre-activation the kernels recompute from x and bias=, gives
    the bits of the composed path (the activation's own backward at the output or at the
    forward's pre-activation, then BatchNorm's backward), for 1 and 3 threads and for an
    output one element off alignment."""
    from cyrelu.batchnorm import _gated

    _needs_threads()
    shape, axis = path_shapes(np.dtype(dtype).itemsize)[path]
    C = shape[axis]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y, m, s = batch_norm(x, None, None, w, b, True, axis=axis, activation=activation,
                         activation_params=ap, return_stats=True)  # fmt: skip
    values = tuple((ap or {}).values())
    src = dict(output=y) if source == "output" else dict(bias=b)
    gated = _gated(activation, values, dy, x, m, s, w, b if source == "bias" else None,
                   y if source == "output" else None, axis, None)  # fmt: skip
    for training in (True, False):
        want = batch_norm_backward(gated, x, m, s, w, training=training, axis=axis)
        for nt, offset in [(1, 0), (3, 0), (2, 1)]:
            buf = np.empty(x.size + 1, dtype)
            dx = buf[offset : offset + x.size].reshape(shape)
            got = batch_norm_backward(dy, x, m, s, w, training=training, axis=axis, out=dx,
                                      activation=activation, activation_params=ap,
                                      num_threads=nt, **src)  # fmt: skip
            for a, r in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, r)
