"""float16 is a first-class dtype: every elementwise kernel is checked on all 65,536
float16 bit patterns against an independent reference, against PyTorch where it is
installed (bit for bit, NaN payloads included), and across the instruction-set copies
and thread counts (bit for bit).

The reference is PyTorch's arithmetic for half tensors on the CPU, written out in
float64: the value is widened exactly, the operation is done as float32 arithmetic
(the product of a float32 alpha and a half is exact in float64; rounding it to float32
is the float32 multiply), and the float32 result is rounded once to half.  NaN results
are compared as NaN (their payloads are checked against PyTorch and across copies).
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import cyrelu

from conftest import requires_torch, torch

HALF = np.float16
ALL_BITS = np.arange(1 << 16, dtype=np.uint16)
ALPHAS = [0.2, 0.01, 1.5, -0.5, 0.0]

pytestmark = pytest.mark.kernel_choice


def all_halves():
    return ALL_BITS.view(HALF).copy()


def partner_halves(seed):
    """Every bit pattern again, in another order: the other operand of the backwards."""
    return np.random.default_rng(seed).permutation(ALL_BITS).view(HALF)


def _round_like_torch(v64):
    """float64 values that are float32 results -> float32 -> float16 (two exact steps)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return v64.astype(np.float32).astype(HALF)


def ref_relu(x):
    v = x.astype(np.float64)
    return _round_like_torch(np.where(v < 0, 0.0, v))


def ref_leaky(x, alpha):
    a = float(np.float32(alpha))
    v = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return _round_like_torch(np.where(v > 0, v, a * v))


def ref_relu_backward(g, x):
    return _round_like_torch(np.where(x.astype(np.float64) <= 0, 0.0, g.astype(np.float64)))


def ref_leaky_backward(g, x, alpha):
    a = float(np.float32(alpha))
    gv = g.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return _round_like_torch(np.where(x.astype(np.float64) > 0, gv, a * gv))


def assert_same_values(actual, expected):
    """Same bits except that a NaN may be any NaN; -0.0 and +0.0 are told apart."""
    assert actual.dtype == HALF and actual.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan)
    a = actual.view(np.uint16)[~nan]
    e = expected.view(np.uint16)[~nan]
    bad = np.nonzero(a != e)[0]
    assert bad.size == 0, [(hex(int(a[i])), hex(int(e[i]))) for i in bad[:8]]


def test_every_bit_pattern_forward():
    x = all_halves()
    assert_same_values(cyrelu.relu(x), ref_relu(x))
    for alpha in ALPHAS:
        assert_same_values(cyrelu.leaky_relu(x, alpha), ref_leaky(x, alpha))


def test_every_bit_pattern_backward():
    x = all_halves()
    for seed in (1, 2):
        g = partner_halves(seed)
        assert_same_values(cyrelu.relu_backward(g, x), ref_relu_backward(g, x))
        assert_same_values(cyrelu.relu_backward(x, g), ref_relu_backward(x, g))
        for alpha in ALPHAS:
            assert_same_values(
                cyrelu.leaky_relu_backward(g, x, alpha), ref_leaky_backward(g, x, alpha)
            )


def test_every_bit_pattern_in_place_and_strided():
    """The in-place and strided loops give the same bits as the contiguous one."""
    x = all_halves()
    y = x.copy()
    cyrelu.leaky_relu(y, 0.3, out=y)
    np.testing.assert_array_equal(y.view(np.uint16), cyrelu.leaky_relu(x, 0.3).view(np.uint16))
    wide = np.repeat(x, 3)[1::3]
    np.testing.assert_array_equal(
        cyrelu.leaky_relu(wide, 0.3).view(np.uint16), cyrelu.leaky_relu(x, 0.3).view(np.uint16)
    )
    g = partner_halves(3)
    out = np.empty(3 * x.size, HALF)[::3]
    cyrelu.relu_backward(g, wide, out=out)
    np.testing.assert_array_equal(out.view(np.uint16), cyrelu.relu_backward(g, x).view(np.uint16))


def test_every_bit_pattern_diagnostics():
    x = all_halves()
    v = x.astype(np.float64)
    assert cyrelu.sparsity(x) == np.count_nonzero(v == 0) / x.size
    per_channel = cyrelu.sparsity(x.reshape(256, 256), axis=1)
    np.testing.assert_array_equal(per_channel, (v.reshape(256, 256) == 0).mean(axis=0))
    for threshold in (0.0, -1.0, 1e-7, 65504.0, -np.inf, np.inf):
        dead = cyrelu.dead_units(x.reshape(1024, 64), axis=1, threshold=threshold)
        expected = (v.reshape(1024, 64) <= threshold).all(axis=0)
        np.testing.assert_array_equal(dead, expected)
    # a channel of subnormals, zeros and one NaN: NaN is never dead, subnormals are not 0
    tiny = np.array([[0.0, 2.0**-24], [-0.0, -(2.0**-24)], [np.nan, 0.0]], HALF)
    np.testing.assert_array_equal(cyrelu.dead_units(tiny, axis=1, threshold=0.0), [False, False])
    np.testing.assert_array_equal(cyrelu.sparsity(tiny, axis=1), [2 / 3, 1 / 3])


@requires_torch
def test_every_bit_pattern_against_torch():
    """PyTorch's CPU half kernels, bit for bit, NaN payloads included."""
    x = all_halves()
    tx = torch.from_numpy(x.copy())

    def same(a, b):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))

    same(cyrelu.relu(x), torch.relu(tx).numpy())
    for alpha in ALPHAS:
        same(cyrelu.leaky_relu(x, alpha), torch.nn.functional.leaky_relu(tx, alpha).numpy())
    g = partner_halves(1)
    tg = torch.from_numpy(g.copy())
    same(cyrelu.relu_backward(g, x), torch.ops.aten.threshold_backward(tg, tx, 0.0).numpy())
    for alpha in ALPHAS:
        same(
            cyrelu.leaky_relu_backward(g, x, alpha),
            torch.ops.aten.leaky_relu_backward(tg, tx, alpha, False).numpy(),
        )


_DIGEST = r"""
import hashlib, sys, numpy as np, cyrelu
bits = np.arange(1 << 16, dtype=np.uint16)
# large enough to run in parallel and to stream: every pattern, repeated, odd length
n = max(1_000_003, 3 * cyrelu._parallel.cache_info()["stream_min_bytes"] // 2 + 5)
x = np.resize(bits, n).view(np.float16)
g = np.random.default_rng(5).permutation(x)
h = hashlib.sha256()
for nt in (1, 2, 3):
    outs = [cyrelu.relu(x, num_threads=nt), cyrelu.leaky_relu(x, 0.1, num_threads=nt),
            cyrelu.relu_backward(g, x, num_threads=nt),
            cyrelu.leaky_relu_backward(g, x, -0.5, num_threads=nt),
            cyrelu.leaky_relu(x[::-2], 0.1, num_threads=nt),
            cyrelu.sparsity(x.reshape(-1, 1)[:n - n % 64].reshape(-1, 64), axis=1,
                            num_threads=nt),
            cyrelu.dead_units(x[:n - n % 64].reshape(-1, 64), axis=1, num_threads=nt)]
    d = hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in outs)).hexdigest()
    if nt == 1:
        first = d
    assert d == first, "thread count %d changed the bits" % nt
print(first)
"""


@pytest.mark.sweeps_itself
def test_identical_bits_across_instruction_sets_and_threads():
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    digests = {}
    for isa in ("base", "avx2", "avx512"):
        env = dict(os.environ, CYRELU_ISA=isa)
        res = subprocess.run(
            [sys.executable, "-c", _DIGEST], capture_output=True, text=True, env=env, cwd=parent
        )
        assert res.returncode == 0, res.stderr
        digests[isa] = res.stdout.strip()
    assert len(set(digests.values())) == 1, digests
    assert len(digests["base"]) == len(hashlib.sha256().hexdigest())


def test_no_silent_cast():
    x = all_halves()
    with pytest.raises(TypeError):
        cyrelu.relu(x, out=np.empty(x.shape, np.float32))
    with pytest.raises(TypeError):
        cyrelu.relu_backward(x, x.astype(np.float32))
    before = x.copy()
    with pytest.raises(TypeError):
        cyrelu.leaky_relu(x, 0.1, out=np.empty(x.shape, np.float64))
    np.testing.assert_array_equal(x.view(np.uint16), before.view(np.uint16))
