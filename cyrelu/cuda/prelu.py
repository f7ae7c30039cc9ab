""":func:`cyrelu.prelu` and :func:`cyrelu.prelu_backward` for CuPy arrays (prelu.cu).

Exact as on the CPU (leaky_relu's compares and multiply, with the channel's weight):
the forward and grad_input are the CPU path's bits.  grad_weight is summed in double,
deterministically (fixed pieces of each channel, one block each, added in order), so
it agrees with the CPU's to rounding.  The kernels walk contiguous data; any other
layout goes through contiguous copies, and a non-contiguous ``out`` is written in place
from a contiguous result.
"""

from __future__ import annotations

from typing import Any

from cyrelu._layout import prelu_box
from cyrelu._validation import check_same, prelu_axis
from cyrelu.cuda import _launch as L, _loader
from cyrelu.cuda._launch import cupy

__all__ = ["prelu", "prelu_backward"]

Array = Any  # a cupy.ndarray (CuPy ships no type information)

# a piece of one channel's elements for the grad_weight sums (one block's work), and
# the most blocks of that kernel (each loops over the pieces; any grid gives the same sums)
_PIECE = 16384
_WSUM_BLOCKS = 65535


def _fn(kind: str, x: Array, index: str) -> Any:
    return _loader.function("prelu.cu", "%s<%s, %s>" % (kind, L.CTYPE[x.dtype], index))


def _checked(
    arrays: list[tuple[object, str]], weight: object, axis: object, out: Array
) -> tuple[list[Array], Array, int]:
    """The data arrays (the last is x), the weight and the channel axis, checked; out
    checked against x."""
    data = [L.as_array(a, name) for a, name in arrays]
    x = data[-1]
    if len(data) == 2:
        check_same("grad_output", data[0], "x", x)
    w = L.as_array(weight, "weight")
    ax = prelu_axis(w, x, axis)
    dev = x.device.id
    for a, (_, name) in zip(data, arrays, strict=True):
        L.check_device(dev, name, a)
    L.check_device(dev, "weight", w)
    if out is not None:
        L.check_out(out, x.shape, x.dtype)
        L.check_device(dev, "out", out)
    return data, w, ax


def _launch(kind: str, arrays: list[Array], target: Array, w: Array, ax: int) -> None:
    """The elementwise kernel over contiguous arrays of one layout (target may be one)."""
    x = arrays[-1]
    n = x.size
    dev = x.device.id
    _, C, inner = prelu_box(x.shape, x.flags.c_contiguous, ax, w.size)
    index, it = L.index_type(n, L.blocks(n, L.grid_limit(dev)) * L.THREADS)
    fn = _fn(kind, x, index)
    grid = (L.blocks(n, L.grid_limit(dev, fn)),)
    fn(grid, (L.THREADS,), (*arrays, target, w, it(n), it(C), it(inner)))


def _contiguous(arrays: list[Array], out: Array) -> tuple[list[Array], Array]:
    """The inputs and the array to write: as they are when all are contiguous in one
    order (the inputs copied where out partly overlaps them); else C-contiguous copies
    and a new C-contiguous result."""
    arrays = [a.copy() if L.overlaps_partly(out, a) else a for a in arrays]
    if L.same_flat_layout(*arrays, out):
        return arrays, out
    return [cupy.ascontiguousarray(a) for a in arrays], cupy.empty(out.shape, out.dtype)


def prelu(
    x: Array,
    weight: Array,
    /,
    *,
    axis: int = 1,
    out: Array | None = None,
    num_threads: int | None = None,
) -> Array:
    """:func:`cyrelu.prelu` for CuPy arrays."""
    L.check_threads(num_threads)
    (x,), w, ax = _checked([(x, "x")], weight, axis, out)
    with L.CurrentDevice(x.device.id):
        if out is None:
            out = cupy.empty_like(x)
        wk = w.reshape(-1).astype(L.ACC[x.dtype])  # a new array: never out's memory
        if x.size == 0:
            return out
        (xs,), target = _contiguous([x], out)
        _launch("prelu_fwd", [xs], target, wk, ax)
        if target is not out:
            out[...] = target
    return out


def prelu_backward(
    grad_output: Array,
    x: Array,
    weight: Array,
    /,
    *,
    axis: int = 1,
    out: Array | None = None,
    num_threads: int | None = None,
) -> tuple[Array, Array]:
    """:func:`cyrelu.prelu_backward` for CuPy arrays."""
    L.check_threads(num_threads)
    (g, x), w, ax = _checked([(grad_output, "grad_output"), (x, "x")], weight, axis, out)
    with L.CurrentDevice(x.device.id):
        if out is None:
            out = cupy.empty_like(x)
        wk = w.reshape(-1).astype(L.ACC[x.dtype])
        if x.size == 0:
            return out, cupy.zeros(w.shape, x.dtype)
        (gs, xs), target = _contiguous([g, x], out)
        sums = _weight_sums(gs, xs, ax, wk.size)  # first: out may be grad_output or x
        _launch("prelu_bwd", [gs, xs], target, wk, ax)
        if target is not out:
            out[...] = target
    return out, sums.astype(x.dtype).reshape(w.shape)


def _weight_sums(g: Array, x: Array, ax: int, nw: int) -> Array:
    """Per-channel sums (float64) of x > 0 ? 0 : x * g over contiguous g and x."""
    outer, C, inner = prelu_box(x.shape, x.flags.c_contiguous, ax, nw)
    pieces = L.cdiv(outer * inner, _PIECE)
    dev = x.device.id
    part = cupy.empty((pieces, C), dtype="float64")
    sums = cupy.empty(C, dtype="float64")
    index, it = L.index_type(x.size, L.blocks(x.size, L.grid_limit(dev)) * L.THREADS)
    units = pieces * C
    fn = _fn("prelu_wsum", x, index)
    args = (g, x, part, it(outer), it(C), it(inner), it(_PIECE), it(pieces))
    fn((min(units, _WSUM_BLOCKS),), (L.THREADS,), args)
    fn = _fn("prelu_merge", x, index)
    fn((L.blocks(C, L.grid_limit(dev, fn)),), (L.THREADS,), (part, sums, it(C), it(pieces)))
    return sums
