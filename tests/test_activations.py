"""ReLU / Leaky ReLU forward and backward against independent references.

The oracle is PyTorch where installed (bit-exact, including NaN and -0.0) and a
float64 NumPy reference always (tests/reference.py).
"""

import numpy as np
import pytest

import cyrelu

from conftest import requires_torch, torch
from reference import (
    assert_same_bits,
    leaky_relu_backward_ref,
    leaky_relu_ref,
    relu_backward_ref,
    relu_ref,
)

FLOATS = [np.float32, np.float64]
ALL_FLOATS = [np.float16, np.float32, np.float64]
SPECIALS = [
    0.0,
    -0.0,
    np.nan,
    -np.nan,
    np.inf,
    -np.inf,
    1.0,
    -1.0,
    1e-45,
    -1e-45,
    5e-324,
    -5e-324,
    1e-40,
    -1e-40,
    3.4e38,
    -3.4e38,
]


def special_array(dtype, n=333, seed=0):
    """Random values with every special value sprinkled in, in a length that is not a
    multiple of any vector width (so the kernels' tails are exercised)."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        specials = np.array(SPECIALS, dtype=dtype)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    idx = rng.choice(n, size=4 * len(specials), replace=False)
    x[idx] = np.tile(specials, 4)
    return x


# ---- forward / backward values -------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_relu_matches_reference(dtype):
    x = special_array(dtype)
    assert_same_bits(cyrelu.relu(x), relu_ref(x))


@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("alpha", [0.2, 0.01, 0.0, 1.0, 1.5, 3.0, -0.5, -2.0, 1e-30])
def test_leaky_relu_matches_reference(dtype, alpha):
    x = special_array(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = leaky_relu_ref(x, alpha)
    assert_same_bits(cyrelu.leaky_relu(x, alpha), expected)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_relu_backward_matches_reference(dtype):
    x = special_array(dtype, seed=1)
    g = special_array(dtype, seed=2)
    assert_same_bits(cyrelu.relu_backward(g, x), relu_backward_ref(g, x))


@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("alpha", [0.2, 0.01, 0.0, 1.5, -0.5])
def test_leaky_relu_backward_matches_reference(dtype, alpha):
    x = special_array(dtype, seed=3)
    g = special_array(dtype, seed=4)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = leaky_relu_backward_ref(g, x, alpha)
    assert_same_bits(cyrelu.leaky_relu_backward(g, x, alpha), expected)


def test_documented_special_values():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, -3.0, 2.0], dtype=np.float32)
    y = cyrelu.relu(x)
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 0 and not np.signbit(y[2])
    assert y[3] == 0 and np.signbit(y[3])  # -0.0 stays -0.0, as in torch.relu
    assert list(y[4:]) == [0.0, 0.0, 2.0]
    assert np.isnan(cyrelu.leaky_relu(x)[0])
    # alpha > 1: the textbook max(alpha*x, x) would give 2*(-3) -> -3; the right answer is -6
    assert cyrelu.leaky_relu(np.float64([-3.0]), 2.0)[0] == -6.0
    g = np.ones_like(x)
    assert list(cyrelu.relu_backward(g, x)) == [1, 1, 0, 0, 0, 0, 1]  # 0 at x == 0, 1 at NaN
    np.testing.assert_array_equal(
        cyrelu.leaky_relu_backward(g, x, 0.5), np.float32([0.5, 1, 0.5, 0.5, 0.5, 0.5, 1])
    )


def test_backward_accepts_forward_output():
    x = special_array(np.float64, seed=5)
    g = np.random.default_rng(6).standard_normal(x.shape)
    assert_same_bits(cyrelu.relu_backward(g, cyrelu.relu(x)), cyrelu.relu_backward(g, x))
    assert_same_bits(
        cyrelu.leaky_relu_backward(g, cyrelu.leaky_relu(x, 0.3), 0.3),
        cyrelu.leaky_relu_backward(g, x, 0.3),
    )


# ---- PyTorch as the oracle -------------------------------------------------------------


@requires_torch
@pytest.mark.parametrize("dtype", ALL_FLOATS)
@pytest.mark.parametrize("n", [1, 7, 333, 100_003])
def test_against_torch(dtype, n):
    x = special_array(dtype, n=max(n, 70), seed=n)[:n]
    g = special_array(dtype, n=max(n, 70), seed=n + 1)[:n]
    tx, tg = torch.from_numpy(x.copy()), torch.from_numpy(g.copy())
    assert_same_bits(cyrelu.relu(x), torch.relu(tx).numpy())
    for alpha in (0.2, 0.01, 1.5, -0.5):
        assert_same_bits(
            cyrelu.leaky_relu(x, alpha), torch.nn.functional.leaky_relu(tx, alpha).numpy()
        )
        assert_same_bits(
            cyrelu.leaky_relu_backward(g, x, alpha),
            torch.ops.aten.leaky_relu_backward(tg, tx, alpha, False).numpy(),
        )
    assert_same_bits(
        cyrelu.relu_backward(g, x), torch.ops.aten.threshold_backward(tg, tx, 0.0).numpy()
    )


# ---- shapes, layouts, array-likes --------------------------------------------------------


def _layouts(rng, dtype):
    base = rng.standard_normal((6, 7, 9)).astype(dtype)
    yield "C", base
    yield "F", np.asfortranarray(base)
    yield "transposed", base.transpose(2, 0, 1)
    yield "sliced", base[:, 1::2, ::3]
    yield "negative", base[::-1, :, ::-2]
    yield "broadcast", np.broadcast_to(base[:1], (4, 7, 9))
    yield "0-d", np.array(-1.5, dtype=dtype)
    yield "0-size", np.empty((3, 0, 2), dtype=dtype)
    yield "column", base[:, 3, 4]
    yield "4-d", rng.standard_normal((2, 3, 4, 5)).astype(dtype).transpose(3, 1, 0, 2)


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_any_layout(dtype, rng):
    for name, x in _layouts(rng, dtype):
        g = np.asarray(rng.standard_normal(x.shape), dtype=dtype)
        assert_same_bits(cyrelu.relu(x), relu_ref(x))
        assert_same_bits(cyrelu.leaky_relu(x, 0.1), leaky_relu_ref(x, 0.1))
        assert_same_bits(cyrelu.relu_backward(g, x), relu_backward_ref(g, x))
        assert_same_bits(cyrelu.leaky_relu_backward(g, x, 0.1), leaky_relu_backward_ref(g, x, 0.1))
        # a strided `out` is written element by element, leaving the gaps alone
        holder = np.full((*x.shape, 2), 7.0, dtype=dtype)
        out = holder[..., 0]
        assert cyrelu.relu_backward(g, x, out=out) is out
        assert_same_bits(out, relu_backward_ref(g, x))
        assert np.all(holder[..., 1] == 7.0), name


def test_mixed_layouts_between_inputs(rng):
    x = rng.standard_normal((40, 30))
    g = np.asfortranarray(rng.standard_normal((40, 30)))
    out = np.empty((30, 40)).T
    cyrelu.leaky_relu_backward(g, x, 0.3, out=out)
    assert_same_bits(out, leaky_relu_backward_ref(g, x, 0.3))


def test_array_likes():
    assert_same_bits(cyrelu.relu([-1.0, 2.0]), np.array([0.0, 2.0]))
    y = cyrelu.relu(-2.5)
    assert isinstance(y, np.ndarray) and y.shape == () and y == 0.0
    assert cyrelu.relu(np.float32(3.0)).dtype == np.float32
    assert_same_bits(cyrelu.relu_backward([1.0, 1.0], [-1.0, 1.0]), np.array([0.0, 1.0]))


def test_result_is_new_array_and_keeps_dtype():
    for dtype in ALL_FLOATS:
        x = np.array([-1, 2], dtype=dtype)
        y = cyrelu.relu(x)
        assert y.dtype == dtype and y is not x and x[0] == -1


def test_unaligned_arrays():
    raw = np.zeros(4 * 100 + 1, dtype=np.uint8)
    x = raw[1:].view(np.float32)
    assert not x.flags.aligned
    x[:] = np.linspace(-5, 5, 100, dtype=np.float32)
    assert_same_bits(cyrelu.relu(x), relu_ref(x))
    raw2 = np.zeros(4 * 100 + 1, dtype=np.uint8)
    out = raw2[1:].view(np.float32)
    cyrelu.leaky_relu(x, 0.5, out=out)
    assert_same_bits(out, leaky_relu_ref(x, 0.5))


# ---- out= and in place ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_FLOATS)
def test_out_and_in_place(dtype):
    x = special_array(dtype, n=100_000, seed=7)
    g = special_array(dtype, n=100_000, seed=8)
    out = np.empty_like(x)
    assert cyrelu.relu(x, out=out) is out
    assert_same_bits(out, relu_ref(x))

    y = x.copy()
    assert cyrelu.leaky_relu(y, 0.3, out=y) is y
    assert_same_bits(y, leaky_relu_ref(x, 0.3))

    gg = g.copy()
    assert cyrelu.relu_backward(gg, x, out=gg) is gg
    assert_same_bits(gg, relu_backward_ref(g, x))

    xx = x.copy()
    assert cyrelu.leaky_relu_backward(g, xx, 0.3, out=xx) is xx
    assert_same_bits(xx, leaky_relu_backward_ref(g, x, 0.3))


@pytest.mark.parametrize("shift", [1, -1, 5, -17, 1000])
@pytest.mark.parametrize("n", [50, 200_000])
def test_partially_overlapping_out(shift, n):
    rng = np.random.default_rng(abs(shift))
    buf = rng.standard_normal(n + abs(shift))
    x = buf[:n] if shift > 0 else buf[abs(shift) :]
    out = buf[shift:] if shift > 0 else buf[:n]
    x_before = x.copy()
    cyrelu.leaky_relu(x, 0.25, out=out)
    assert_same_bits(out, leaky_relu_ref(x_before, 0.25))

    buf = rng.standard_normal(n + abs(shift))
    g = rng.standard_normal(n)
    x = buf[:n] if shift > 0 else buf[abs(shift) :]
    out = buf[shift:] if shift > 0 else buf[:n]
    x_before = x.copy()
    cyrelu.relu_backward(g, x, out=out)
    assert_same_bits(out, relu_backward_ref(g, x_before))


def test_overlap_through_strided_view():
    buf = np.arange(-50, 50, dtype=np.float64)
    x = buf[::2]  # even elements
    out = buf[1::2][::-1]  # odd elements, reversed: shares the buffer, never the same element
    expected = relu_ref(x.copy())
    cyrelu.relu(x, out=out)
    assert_same_bits(out, expected)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.int32,
        np.int64,
        np.uint8,
        np.bool_,
        np.complex64,
        np.complex128,
        object,
        np.longdouble,
        "datetime64[s]",
    ],
)
def test_bad_dtypes_raise_type_error_naming_dtype(bad):
    x = np.zeros(4, dtype=bad)
    name = str(np.dtype(bad))
    for call in (
        lambda: cyrelu.relu(x),
        lambda: cyrelu.leaky_relu(x),
        lambda: cyrelu.relu_backward(x, x),
        lambda: cyrelu.leaky_relu_backward(x, x),
    ):
        with pytest.raises(TypeError, match=name.replace("[", r"\[").replace("]", r"\]")):
            call()


def test_integer_lists_are_not_silently_cast():
    with pytest.raises(TypeError, match="int64"):
        cyrelu.relu([1, -2])


def test_non_native_byte_order():
    x = np.zeros(4, dtype=">f4" if np.little_endian else "<f4")
    with pytest.raises(TypeError, match="byte order"):
        cyrelu.relu(x)


def test_foreign_arrays_and_masked_arrays():
    with pytest.raises(TypeError, match="masked"):
        cyrelu.relu(np.ma.masked_array([1.0, -1.0], mask=[0, 1]))

    class NotAnArray:
        pass

    with pytest.raises(TypeError, match="NotAnArray"):
        cyrelu.relu(NotAnArray())


@requires_torch
def test_torch_tensors_are_refused():
    with pytest.raises(TypeError, match="torch"):
        cyrelu.relu(torch.zeros(3))


def test_out_errors():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        cyrelu.relu(x, out=np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        cyrelu.relu(x, out=np.zeros((3, 4), dtype=np.float64))
    ro = np.zeros((3, 4), dtype=np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cyrelu.relu(x, out=ro)
    with pytest.raises(TypeError, match="ndarray"):
        cyrelu.relu(x, out=[0.0] * 12)
    with pytest.raises(ValueError, match="shape"):
        cyrelu.relu_backward(x, x, out=np.zeros(12, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        cyrelu.relu(x, out=np.zeros((1, 4), dtype=np.float32))  # no broadcasting into out


def test_grad_and_x_must_match():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="same shape"):
        cyrelu.relu_backward(np.zeros((1, 4), dtype=np.float32), x)
    with pytest.raises(ValueError, match="same shape"):
        cyrelu.leaky_relu_backward(np.zeros((4, 3), dtype=np.float32), x)
    with pytest.raises(TypeError, match="same dtype"):
        cyrelu.relu_backward(np.zeros((3, 4)), x)


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, "2", True, False, [2]])
def test_bad_num_threads(bad):
    x = np.zeros(10, dtype=np.float32)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.relu(x, num_threads=bad)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.leaky_relu_backward(x, x, num_threads=bad)
    with pytest.raises(ValueError, match="num_threads"):
        cyrelu.relu(np.asfortranarray(np.zeros((3, 3))), num_threads=bad)


@pytest.mark.parametrize(
    "bad,exc",
    [
        ("0.1", TypeError),
        (None, TypeError),
        (True, TypeError),
        (1 + 2j, TypeError),
        (np.nan, ValueError),
        (np.inf, ValueError),
    ],
)
def test_bad_alpha(bad, exc):
    x = np.zeros(10, dtype=np.float32)
    with pytest.raises(exc, match="alpha"):
        cyrelu.leaky_relu(x, bad)
    with pytest.raises(exc, match="alpha"):
        cyrelu.leaky_relu_backward(x, x, bad)


def test_numpy_scalar_alpha_and_threads():
    x = np.linspace(-1, 1, 11)
    assert_same_bits(
        cyrelu.leaky_relu(x, np.float32(0.5), num_threads=np.int64(2)),
        leaky_relu_ref(x, np.float32(0.5)),
    )


# ---- large outputs (written with streaming stores) -----------------------------------------


@pytest.mark.kernel_choice
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_large_outputs_any_alignment(dtype, offset):
    """Outputs of several MiB per thread take the streaming-store path; its head (up to a
    64-byte boundary), whole tiles and tail must all be right, for any output alignment.
    The size comes from the planner (cyrelu._parallel.cache_info()), so the streaming
    path is reached with one and two threads whatever the cache size."""
    stream_min = cyrelu._parallel.cache_info()["stream_min_bytes"]
    n = max(3_000_017, 2 * stream_min // np.dtype(dtype).itemsize + 17)
    assert n * np.dtype(dtype).itemsize // 2 >= stream_min
    x = special_array(dtype, n=n, seed=11)
    g = special_array(dtype, n=n, seed=12)
    buf = np.empty(n + 8, dtype=dtype)
    out = buf[offset : offset + n]
    for threads in (1, 2):
        cyrelu.relu(x, out=out, num_threads=threads)
        assert_same_bits(out, relu_ref(x))
        cyrelu.leaky_relu(x, 0.3, out=out, num_threads=threads)
        assert_same_bits(out, leaky_relu_ref(x, 0.3))
        cyrelu.relu_backward(g, x, out=out, num_threads=threads)
        assert_same_bits(out, relu_backward_ref(g, x))
        cyrelu.leaky_relu_backward(g, x, 0.3, out=out, num_threads=threads)
        assert_same_bits(out, leaky_relu_backward_ref(g, x, 0.3))
